"""Run many Alembic command lines in ONE Python interpreter (the oracle, batched).

Usage: .venv/bin/python scripts/alembic-batch.py JOBS.json OUTDIR

JOBS.json is a list of {"cwd": str, "argv": [str], "env": {str: str}, "unset": [str],
"snapshot": [src, dst]} ("unset" is applied before "env"; the optional "snapshot" copies the
file src to dst after the job, or removes dst when src does not exist: the migration tests
use it to see the database after every step).
For job i, OUTDIR/i.out gets the bytes Alembic wrote to stdout, OUTDIR/i.err its stderr and
OUTDIR/i.code the exit status the `alembic` console script would have exited with.

This is still the real Alembic: `alembic.config.main(argv=...)` is exactly what the console
script calls.  It only saves the ~0.5 s interpreter start per call.  To stay faithful:
  * stdout/stderr are redirected at the file-descriptor level, so the very same sys.stdout
    object (and encoding) the CLI would use does the writing;
  * cwd, os.environ and sys.path are restored before every job;
  * SystemExit is mapped to a status like the interpreter does (None -> 0, int -> n & 0xff,
    anything else -> printed to stderr, 1); an uncaught exception -> traceback, 1;
  * revision files are not cached between jobs (Alembic loads them without sys.modules) and
    no bytecode is written;
  * logging is reset before every job to what a fresh interpreter has (env.py's fileConfig
    would otherwise stay in force for later jobs, and decide which log lines they print);
  * so are the warnings already shown: Python shows a warning once per place, and a job
    must show what a fresh process would, even if an earlier job gave the same warning.
Run it with stdin redirected from /dev/null: Alembic sizes its message wrapping from the
terminal on fd 0, as the real CLI would in the tests.
"""
import json
import logging
import os
import shutil
import sys
import traceback
import warnings

sys.dont_write_bytecode = True
sys.argv[0] = "alembic"  # argparse takes prog from here, as with the console script

import alembic.config  # noqa: E402


def exit_status(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def reset_logging():
    """Loggers, handlers and levels as right after `import alembic` in a new process."""
    root = logging.getLogger()
    for h in root.handlers[:]:
        root.removeHandler(h)
    root.setLevel(logging.WARNING)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            for h in logger.handlers[:]:
                logger.removeHandler(h)
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            logger.disabled = False
    logging.getLogger("alembic").addHandler(logging.NullHandler())


def main():
    jobs_path, outdir = sys.argv[1], sys.argv[2]
    with open(jobs_path, encoding="utf-8") as f:
        jobs = json.load(f)
    base_env = dict(os.environ)
    base_path = list(sys.path)
    saved_out, saved_err = os.dup(1), os.dup(2)
    for i, job in enumerate(jobs):
        os.environ.clear()
        os.environ.update(base_env)
        for k in job.get("unset", []):
            os.environ.pop(k, None)
        os.environ.update(job.get("env", {}))
        sys.path[:] = base_path
        reset_logging()
        # Forgets every module's record of the warnings it has shown.
        warnings._filters_mutated()
        os.chdir(job["cwd"])
        sys.stdout.flush()
        sys.stderr.flush()
        out_fd = os.open(os.path.join(outdir, f"{i}.out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        err_fd = os.open(os.path.join(outdir, f"{i}.err"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        try:
            alembic.config.main(argv=job["argv"])
            code = 0
        except SystemExit as e:
            code = exit_status(e.code)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(out_fd)
            os.close(err_fd)
        snapshot = job.get("snapshot")
        if snapshot:
            src, dst = snapshot
            if os.path.exists(src):
                shutil.copyfile(src, dst)
            elif os.path.exists(dst):
                os.remove(dst)
        with open(os.path.join(outdir, f"{i}.code"), "w") as f:
            f.write(str(code))


if __name__ == "__main__":
    main()

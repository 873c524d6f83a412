//! `alembic upgrade`, `downgrade` and `stamp` (`command.py` plus what env.py's
//! `run_migrations_online/offline` and `MigrationContext.run_migrations` do for them).
//!
//! Online, the whole run is one SQLite transaction (one per revision with env.py's
//! `transaction_per_migration=True`), opened with `BEGIN IMMEDIATE` so concurrent runners
//! queue on SQLite's write lock; the version rows are read and the steps planned under that
//! lock. A failing body or statement rolls the unit back and exits 1. Offline (`--sql`), the
//! SQL is printed as Alembic prints it for SQLite.
//!
//! Differences from Alembic are listed in docs/compatibility.md ("upgrade, downgrade, stamp").

use std::collections::HashSet;
use std::time::Duration;

use super::{db, ids_arg, script_error_failure, Ctx, Failure, Revisions, ScriptDirectory};
use crate::alembic_compat::revision::{RevArg, ScriptRevisions};
use crate::alembic_compat::runtime::log::AlembicLog;
use crate::alembic_compat::runtime::pipeline::Failure as QueuedFailure;
use crate::alembic_compat::runtime::{
    BodyError, BodyRunner, ContextOptions, HeadMaintainer, MigrationContext, PlannedStep,
    RuntimeError, Step, COMMAND_ERROR, DEFAULT_LOCK_TIMEOUT,
};
use crate::alembic_compat::script::Script;

/// The body runner the command line uses.
pub fn default_runner() -> Box<dyn BodyRunner> {
    Box::new(crate::alembic_compat::eval::runner::EvalRunner::default())
}

/// Environment variable overriding how long to wait for another writer (seconds).
pub const LOCK_TIMEOUT_ENV: &str = "RALEMBIC_LOCK_TIMEOUT";

enum Verb {
    Upgrade(String),
    Downgrade(String),
    Stamp(Vec<String>),
}

struct Job<'a> {
    verb: Verb,
    sql: bool,
    tag: Option<&'a str>,
    purge: bool,
    starting_rev: Option<String>,
}

/// `revision.split(":", 2)` unpacked into two names.
fn split_two(rev: &str) -> Result<(String, String), Failure> {
    let parts: Vec<&str> = rev.splitn(3, ':').collect();
    match parts.as_slice() {
        [a, b] => Ok((a.to_string(), b.to_string())),
        _ => Err(Failure::python(
            "ValueError",
            "too many values to unpack (expected 2)",
        )),
    }
}

/// `alembic upgrade [--sql] [--tag TAG] REVISION`.
pub fn upgrade(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    revision: &str,
    sql: bool,
    tag: Option<&str>,
    runner: &dyn BodyRunner,
) -> Result<(), Failure> {
    let (starting_rev, revision) = if revision.contains(':') {
        if !sql {
            return Err(Failure::Command("Range revision not allowed".into()));
        }
        let (a, b) = split_two(revision)?;
        (Some(a), b)
    } else {
        (None, revision.to_string())
    };
    let job = Job {
        verb: Verb::Upgrade(revision),
        sql,
        tag,
        purge: false,
        starting_rev,
    };
    run(sd, ctx, job, runner)
}

/// `alembic downgrade [--sql] [--tag TAG] REVISION`.
pub fn downgrade(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    revision: &str,
    sql: bool,
    tag: Option<&str>,
    runner: &dyn BodyRunner,
) -> Result<(), Failure> {
    let (starting_rev, revision) = if revision.contains(':') {
        if !sql {
            return Err(Failure::Command("Range revision not allowed".into()));
        }
        let (a, b) = split_two(revision)?;
        (Some(a), b)
    } else if sql {
        return Err(Failure::Command(
            "downgrade with --sql requires <fromrev>:<torev>".into(),
        ));
    } else {
        (None, revision.to_string())
    };
    let job = Job {
        verb: Verb::Downgrade(revision),
        sql,
        tag,
        purge: false,
        starting_rev,
    };
    run(sd, ctx, job, runner)
}

/// `alembic stamp [--sql] [--tag TAG] [--purge] REVISION...`.
pub fn stamp(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    revisions: &[String],
    sql: bool,
    tag: Option<&str>,
    purge: bool,
    runner: &dyn BodyRunner,
) -> Result<(), Failure> {
    let mut destinations = Vec::new();
    let mut starting_rev: Option<String> = None;
    for r in revisions {
        if sql && r.contains(':') {
            let (start, dest) = split_two(r)?;
            match &starting_rev {
                None => starting_rev = Some(start),
                Some(s) if *s == start => {}
                Some(_) => return Err(Failure::Command(
                    "Stamp operation with --sql only supports a single starting revision at a time"
                        .into(),
                )),
            }
            destinations.push(dest);
        } else {
            destinations.push(r.clone());
        }
    }
    let job = Job {
        verb: Verb::Stamp(destinations),
        sql,
        tag,
        purge,
        starting_rev,
    };
    run(sd, ctx, job, runner)
}

fn lock_timeout() -> Duration {
    std::env::var(LOCK_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(DEFAULT_LOCK_TIMEOUT, Duration::from_secs_f64)
}

fn runtime_failure(e: RuntimeError) -> Failure {
    match e {
        RuntimeError::Command(m) => Failure::Command(m),
        other => Failure::python(other.python_class(), &other.to_string()),
    }
}

/// Writes what the context buffered: offline SQL to stdout (not silenced by `-q`, as in
/// Alembic, where it bypasses `print_stdout`), log lines to stderr.
fn flush(mctx: &mut MigrationContext, ctx: &mut Ctx) {
    let out = mctx.take_stdout();
    if !out.is_empty() {
        let _ = ctx.out.write_all(out.as_bytes());
        let _ = ctx.out.flush();
    }
    let err = mctx.take_stderr();
    if !err.is_empty() {
        let _ = ctx.err.write_all(err.as_bytes());
    }
}

/// What running env.py would set up: the context options and the logging.
pub(super) fn environment(
    sd: &ScriptDirectory,
    sql: bool,
    tag: Option<&str>,
) -> Result<(ContextOptions, AlembicLog), Failure> {
    let env_path = sd.dir().join("env.py");
    let source = match std::fs::read(&env_path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => {
            return Err(Failure::python(
                "ImportError",
                &format!("Can't find Python file {}", env_path.display()),
            ))
        }
    };
    let env = db::env_settings(&env_path.to_string_lossy(), &source, sql);
    let log = if env.file_config && sd.config.config_file_name.is_some() {
        AlembicLog::from_ini(sd.config.file_config())
    } else {
        AlembicLog::disabled()
    };
    let opts = ContextOptions {
        version_table: env.version_table,
        transaction_per_migration: env.transaction_per_migration,
        render_as_batch: env.render_as_batch,
        x_arguments: sd.config.x_arguments().to_vec(),
        tag: tag.map(str::to_string),
        lock_timeout: lock_timeout(),
        naming_convention: env.naming_convention,
    };
    Ok((opts, log))
}

fn run(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    job: Job,
    runner: &dyn BodyRunner,
) -> Result<(), Failure> {
    if !job.sql {
        // Read while the database is opened and its version rows read; `--sql` opens none.
        sd.prefetch_revisions();
    }
    let (opts, log) = environment(sd, job.sql, job.tag)?;
    let mut mctx = if job.sql {
        MigrationContext::offline(opts, log)
    } else {
        let url = sd.url(ctx)?;
        MigrationContext::open(&url, &sd.cwd, opts, log).map_err(runtime_failure)?
    };
    let result = drive(sd, ctx, &mut mctx, &job, runner);
    if result.is_err() {
        mctx.rollback();
    }
    if let (Err(Failure::Command(m)), false) = (&result, ctx.raiseerr) {
        // `util.err` logs the message before printing `FAILED:`.
        mctx.log.error("alembic.util.messaging", m);
    }
    flush(&mut mctx, ctx);
    result
}

/// The heads the run starts from: the version rows (online, read under the write lock), or
/// the `start:` of a `--sql` range.
fn starting_heads(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    mctx: &mut MigrationContext,
    job: &Job,
) -> Result<Vec<String>, Failure> {
    if mctx.is_offline() {
        if job.purge {
            return Err(Failure::Command("Can't use --purge with --sql mode".into()));
        }
        return match job.starting_rev.as_deref() {
            None | Some("base") => Ok(Vec::new()),
            Some(start) => {
                let r = sd.revisions(ctx, true)?;
                let found = ScriptRevisions::new(&r.map)
                    .get_revision(&RevArg::from(start))
                    .map_err(script_error_failure)?;
                match found {
                    Some(i) => Ok(vec![r.map.id(i).to_string()]),
                    None => Err(Failure::python(
                        "AttributeError",
                        "'NoneType' object has no attribute 'revision'",
                    )),
                }
            }
        };
    }
    mctx.begin().map_err(runtime_failure)?;
    if job.purge {
        mctx.ensure_version_table(true).map_err(runtime_failure)?;
        return Ok(Vec::new());
    }
    let heads = mctx.read_version_rows().map_err(runtime_failure)?;
    if heads.is_empty() {
        mctx.ensure_version_table(false).map_err(runtime_failure)?;
    }
    Ok(heads)
}

fn plan(r: &Revisions, verb: &Verb, heads: &[String]) -> Result<Vec<Step>, Failure> {
    let sr = ScriptRevisions::new(&r.map);
    let current = ids_arg(heads);
    Ok(match verb {
        Verb::Upgrade(dest) => sr
            .upgrade_revs(dest, &current)
            .map_err(script_error_failure)?
            .into_iter()
            .map(Step::Revision)
            .collect(),
        Verb::Downgrade(dest) => sr
            .downgrade_revs(dest, &current)
            .map_err(script_error_failure)?
            .into_iter()
            .map(Step::Revision)
            .collect(),
        Verb::Stamp(dests) => {
            let dests = RevArg::Seq(dests.iter().cloned().map(Some).collect());
            sr.stamp_revs(&dests, &current)
                .map_err(script_error_failure)?
                .into_iter()
                .map(Step::Stamp)
                .collect()
        }
    })
}

fn drive(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    mctx: &mut MigrationContext,
    job: &Job,
    runner: &dyn BodyRunner,
) -> Result<(), Failure> {
    flush(mctx, ctx);
    let heads = starting_heads(sd, ctx, mctx, job)?;
    let r = sd.revisions(ctx, true)?;
    let planned = plan(r, &job.verb, &heads);
    for w in r.map.take_warnings() {
        ctx.warn("alembic/script/revision.py", &w.to_string());
    }
    let steps = match planned {
        Ok(s) => s,
        Err(e) => {
            // Alembic has created the version table by now and keeps it; so do we.
            mctx.commit().map_err(runtime_failure)?;
            return Err(e);
        }
    };
    let planned: Vec<PlannedStep> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Revision(rs) => Some(PlannedStep {
                script: &r.scripts[rs.revision],
                upgrade: s.is_upgrade(),
            }),
            Step::Stamp(_) => None,
        })
        .collect();
    if let Err(errors) = runner.preflight(&planned, mctx) {
        let mut lines = vec![format!(
            "ralembic: {} revision bod{} cannot run; nothing was changed",
            errors.len(),
            if errors.len() == 1 { "y" } else { "ies" }
        )];
        lines.extend(errors.iter().map(|e| e.to_string()));
        return Err(Failure::Python { lines });
    }
    let per_migration = mctx.transaction_per_migration();
    if per_migration && !mctx.is_offline() && steps.len() > 1 {
        rehearse(ctx, mctx, r, &steps, &heads, runner)?;
    }
    let mut maintainer = HeadMaintainer::new(&heads);
    // With one transaction per revision every step commits, and so settles, anyway.
    mctx.set_defer_operations(!per_migration && steps.len() >= DEFER_FROM_STEPS);
    let scope = if mctx.is_offline() {
        ""
    } else if per_migration {
        "; this revision was rolled back, earlier ones are committed"
    } else {
        "; rolled back, the database is as before this command"
    };
    let describe = |k: usize| steps.get(k).map(|step| describe_step(r, step));
    for (k, step) in steps.iter().enumerate() {
        if !mctx.is_offline() && per_migration && k > 0 {
            mctx.begin().map_err(runtime_failure)?;
            check_unchanged(mctx, &maintainer)?;
        }
        mctx.start_step(u32::try_from(k).unwrap_or(u32::MAX));
        if mctx.is_offline() && maintainer.heads().is_empty() {
            let create = mctx.version_table().create_sql();
            mctx.execute(&create).map_err(runtime_failure)?;
        }
        let script = script_of(r, step);
        let described = describe_step(r, step);
        mctx.log
            .info("alembic.runtime.migration", &format!("Running {described}"));
        if mctx.is_offline() {
            mctx.static_output(&format!("-- Running {}", step.short_log(&r.map)));
        }
        // Shown before the body runs, as Alembic's logging does: a long data migration
        // should say what it is doing while it does it (unless an earlier step's statements
        // are still queued: if one fails, Alembic would not have got this far).
        flush_settled(mctx, ctx);
        let outcome: Result<(), Failure> = match script {
            Some(s) => runner.run(s, step.is_upgrade(), mctx).map_err(|e| {
                // Alembic's command line reports a CommandError as `FAILED:` wherever it
                // was raised, a revision body included (batch mode in --sql, ...).
                if e.python_class == COMMAND_ERROR {
                    Failure::Command(e.unlocated().to_string())
                } else {
                    Failure::Python {
                        lines: vec![e.to_string()],
                    }
                }
            }),
            None => Ok(()),
        }
        .and_then(|()| {
            maintainer
                .update_to_step(step, &r.map, mctx)
                .map_err(runtime_failure)
        });
        if outcome.is_err() {
            // An earlier step's statement may have failed first.
            let _ = mctx.settle();
        }
        if let Some(f) = mctx.queued_failure() {
            let body_lines = match outcome {
                Err(Failure::Python { lines }) if f.shows_params && f.step as usize == k => {
                    Some(lines)
                }
                _ => None,
            };
            return Err(queued_failure(mctx, ctx, f, body_lines, &describe, scope));
        }
        match outcome {
            Ok(()) => {}
            Err(e @ Failure::Command(_)) if script.is_some() => {
                mctx.rollback();
                flush(mctx, ctx);
                return Err(e);
            }
            Err(e @ (Failure::Command(_) | Failure::Quiet(_))) => return Err(e),
            Err(Failure::Python { lines }) => {
                mctx.rollback();
                return Err(step_failed(mctx, ctx, &described, scope, lines));
            }
        }
        if per_migration {
            mctx.commit().map_err(runtime_failure)?;
        }
        flush_settled(mctx, ctx);
    }
    if let Err(f) = mctx.settle() {
        return Err(queued_failure(mctx, ctx, f, None, &describe, scope));
    }
    mctx.commit().map_err(runtime_failure)?;
    flush(mctx, ctx);
    Ok(())
}

/// Runs of at least this many steps queue their operations' statements on a worker thread,
/// across revisions, while the interpreter goes on with the next bodies. A handoff between
/// threads costs tens of microseconds here, and every batch block (which reads the table
/// it rebuilds) waits for the worker: a short history gains nothing from it.
const DEFER_FROM_STEPS: usize = 24;

/// A queued statement failed: the run stops as it would have stopped had the statement run
/// in line, in the step that issued it. The output of the steps after that one is dropped
/// (Alembic would not have reached them), and the failure is reported for its own step.
fn queued_failure(
    mctx: &mut MigrationContext,
    ctx: &mut Ctx,
    f: QueuedFailure,
    body_lines: Option<Vec<String>>,
    describe: &dyn Fn(usize) -> Option<String>,
    scope: &str,
) -> Failure {
    mctx.discard_output_after(f.step);
    mctx.rollback();
    let error = f.error.to_runtime();
    if let RuntimeError::Command(m) = error {
        return Failure::Command(m);
    }
    let shown = body_lines.unwrap_or_else(|| {
        vec![BodyError {
            message: format!("{}: {error}", f.pos),
            python_class: error.python_class().to_string(),
        }
        .to_string()]
    });
    let described = describe(f.step as usize).unwrap_or_default();
    step_failed(mctx, ctx, &described, scope, shown)
}

/// A step's failure as the command reports it, once its unit is rolled back: which step,
/// what became of the database, then the error's lines; the output up to it is written.
fn step_failed(
    mctx: &mut MigrationContext,
    ctx: &mut Ctx,
    described: &str,
    scope: &str,
    lines: Vec<String>,
) -> Failure {
    let mut all = vec![format!("ralembic: Running {described} failed{scope}")];
    all.extend(lines);
    flush(mctx, ctx);
    Failure::Python { lines: all }
}

/// The revision file a step runs (none for a stamp).
fn script_of<'r>(r: &'r Revisions, step: &Step) -> Option<&'r Script> {
    match step {
        Step::Revision(rs) => Some(&r.scripts[rs.revision]),
        Step::Stamp(_) => None,
    }
}

/// "upgrade a -> b, message", as Alembic's log line names a step.
fn describe_step(r: &Revisions, step: &Step) -> String {
    step.describe(&r.map, script_of(r, step).map(|s| s.meta.doc()))
}

/// [`flush`], unless queued statements are still pending: what was logged after them is
/// held until they have run.
fn flush_settled(mctx: &mut MigrationContext, ctx: &mut Ctx) {
    if !mctx.has_pending() {
        flush(mctx, ctx);
    }
}

/// With one transaction per revision a failure in a later revision would come after earlier
/// ones committed. So the whole plan is first run inside a savepoint (bodies, SQL and version
/// rows, under the write lock we already hold) and rolled back: a failure anywhere is reported
/// before anything is committed. A successful rehearsal's output and log lines are discarded.
fn rehearse(
    ctx: &mut Ctx,
    mctx: &mut MigrationContext,
    r: &Revisions,
    steps: &[Step],
    heads: &[String],
    runner: &dyn BodyRunner,
) -> Result<(), Failure> {
    flush(mctx, ctx);
    mctx.execute("SAVEPOINT ralembic_rehearsal")
        .map_err(runtime_failure)?;
    let mut maintainer = HeadMaintainer::new(heads);
    let mut failure = None;
    for step in steps {
        let script = script_of(r, step);
        let described = describe_step(r, step);
        mctx.log
            .info("alembic.runtime.migration", &format!("Running {described}"));
        let outcome = match script {
            Some(s) => runner
                .run(s, step.is_upgrade(), mctx)
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
        .and_then(|()| {
            maintainer
                .update_to_step(step, &r.map, mctx)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = outcome {
            failure = Some(vec![
                format!(
                    "ralembic: Running {described} fails in a dry run of the whole plan; \
                     nothing was changed"
                ),
                e,
            ]);
            break;
        }
    }
    // The real run prints and logs all this again; a failed rehearsal is what the user sees.
    if failure.is_none() {
        let _ = mctx.take_stdout();
        mctx.discard_stderr();
    }
    mctx.execute("ROLLBACK TO SAVEPOINT ralembic_rehearsal")
        .and_then(|()| mctx.execute("RELEASE SAVEPOINT ralembic_rehearsal"))
        .map_err(runtime_failure)?;
    match failure {
        Some(lines) => {
            mctx.rollback();
            flush(mctx, ctx);
            Err(Failure::Python { lines })
        }
        None => Ok(()),
    }
}

/// With one transaction per revision another process may write between our units; refuse to
/// continue from heads we did not leave.
fn check_unchanged(mctx: &MigrationContext, maintainer: &HeadMaintainer) -> Result<(), Failure> {
    let rows: HashSet<String> = mctx
        .read_version_rows()
        .map_err(runtime_failure)?
        .into_iter()
        .collect();
    let ours: HashSet<String> = maintainer.heads().iter().cloned().collect();
    if rows == ours {
        return Ok(());
    }
    let mut rows: Vec<String> = rows.into_iter().collect();
    rows.sort();
    Err(Failure::Command(format!(
        "Version table '{}' was changed by another process during the migration (now: {}); stopping",
        mctx.version_table().table,
        if rows.is_empty() {
            "empty".to_string()
        } else {
            rows.join(", ")
        }
    )))
}

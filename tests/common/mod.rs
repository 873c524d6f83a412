//! Shared harness for the differential tests: run the Python Alembic oracle and `ralembic`
//! with the same cwd/argv/env and compare exit status + stdout byte for byte.
//!
//! `RALEMBIC_BIN=/path/to/.venv/bin/alembic cargo test` swaps the Rust binary for the real
//! CLI: every differential test must then pass, which proves the harness itself compares
//! correctly (self-check mode).
#![allow(dead_code)]

pub mod migrate;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The oracle. Missing venv is a loud failure, never a skip.
pub fn alembic_bin() -> PathBuf {
    let p = repo_root().join(".venv/bin/alembic");
    assert!(
        p.exists(),
        "Python Alembic oracle not found at {}: run scripts/setup-venv (or scripts/test)",
        p.display()
    );
    p
}

pub fn venv_python() -> PathBuf {
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/setup-venv (or scripts/test)",
        p.display()
    );
    p
}

/// The binary under test: `ralembic`, or whatever RALEMBIC_BIN names (self-check mode).
pub fn ralembic_bin() -> PathBuf {
    match std::env::var_os("RALEMBIC_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_ralembic")),
    }
}

pub fn self_check_mode() -> bool {
    std::env::var_os("RALEMBIC_BIN").is_some_and(|p| !p.is_empty())
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Environment shared by both sides. The parent environment is inherited (as a user's shell
/// would), minus ALEMBIC_CONFIG unless a case sets it, plus no bytecode writing so the two
/// tools never see each other's __pycache__ in the shared project directory.
#[derive(Clone, Debug, Default)]
pub struct CaseEnv {
    pub set: Vec<(String, String)>,
}

pub fn run_tool(bin: &Path, cwd: &Path, argv: &[String], env: &CaseEnv) -> Outcome {
    let mut cmd = Command::new(bin);
    cmd.args(argv)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .env_remove("ALEMBIC_CONFIG")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, v) in &env.set {
        cmd.env(k, v);
    }
    match cmd.output() {
        Ok(o) => Outcome {
            code: o.status.code(),
            stdout: o.stdout,
            stderr: o.stderr,
        },
        Err(e) => Outcome {
            code: None,
            stdout: Vec::new(),
            stderr: format!("could not start {}: {e}", bin.display()).into_bytes(),
        },
    }
}

/// What to compare for a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// exit status + stdout bytes; when the oracle fails with something on stderr, the
    /// candidate must also say something on stderr.
    Full,
    /// exit status only (e.g. --raiseerr, where Python prints a traceback).
    ExitOnly,
    /// exit status + stdout compared ignoring line order (see `unordered`): for `current`,
    /// whose rows Alembic prints in the order of a Python set.
    Unordered,
}

/// Python Alembic iterates sets in several places, so its output order there depends on
/// PYTHONHASHSEED (random per process): the children of a branch point (`Branches into:` and
/// the `->` lines of `branches`), branch labels (`Branch names:` and `(alpha, beta)` in
/// one-line entries), the rows of `current`, the walk order of some multi-base histories,
/// the duplicate-branch-label message.  Both sides are first put in canonical order at the
/// sites known to be set-ordered:
///   * the items of `Branches into: a, b` and `Branch names: x, y` lines are sorted;
///   * the items of a parenthesised list `(x, y)` are sorted;
///   * the two revisions of "Branch name 'x' in revision A already used by revision B";
///   * a run of consecutive `   -> child` lines (the `branches` listing) is sorted.
///
/// Anything else that varies is detected by running the oracle under several fixed hash
/// seeds (see `ORACLE_HASH_SEEDS`): if its canonical outputs still differ between seeds the
/// case is compared order-insensitively (sorted lines, sorted comma-separated items).
pub fn canonical(out: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(out);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut res: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    let is_arrow = |l: &str| l.trim_start().starts_with("-> ") && l.starts_with(' ');
    while i < lines.len() {
        let l = lines[i];
        if let Some((prefix, rest)) = ["Branches into: ", "Branch names: "]
            .iter()
            .find_map(|p| l.strip_prefix(p).map(|r| (*p, r)))
        {
            let (body, nl) = rest.strip_suffix('\n').map_or((rest, ""), |b| (b, "\n"));
            let mut items: Vec<&str> = body.split(", ").collect();
            items.sort_unstable();
            res.push(format!("{prefix}{}{nl}", items.join(", ")));
            i += 1;
        } else if is_arrow(l) {
            let mut block: Vec<String> = Vec::new();
            while i < lines.len() && is_arrow(lines[i]) {
                block.push(canonical_line(lines[i].trim_end_matches('\n')));
                i += 1;
            }
            let last_nl = lines[i - 1].ends_with('\n');
            block.sort();
            let n = block.len();
            for (k, b) in block.into_iter().enumerate() {
                res.push(if k + 1 < n || last_nl {
                    format!("{b}\n")
                } else {
                    b
                });
            }
        } else {
            res.push(canonical_line(l));
            i += 1;
        }
    }
    if String::from_utf8(out.to_vec()).is_err() {
        return out.to_vec(); // not text: compare raw
    }
    res.concat().into_bytes()
}

fn canonical_line(l: &str) -> String {
    use std::sync::OnceLock;
    static PAREN: OnceLock<regex::Regex> = OnceLock::new();
    static DUP: OnceLock<regex::Regex> = OnceLock::new();
    let paren = PAREN.get_or_init(|| regex::Regex::new(r"\(([^()]*, [^()]*)\)").unwrap());
    let dup = DUP.get_or_init(|| {
        regex::Regex::new(r"Branch name '([^']*)' in revision (\S+) already used by revision (\S+)")
            .unwrap()
    });
    let l = paren.replace_all(l, |c: &regex::Captures| {
        let mut items: Vec<&str> = c[1].split(", ").collect();
        items.sort_unstable();
        format!("({})", items.join(", "))
    });
    let l = dup.replace_all(&l, |c: &regex::Captures| {
        let (a, b) = if c[2] <= c[3] {
            (&c[2], &c[3])
        } else {
            (&c[3], &c[2])
        };
        format!(
            "Branch name '{}' in revision {a} already used by revision {b}",
            &c[1]
        )
    });
    l.into_owned()
}

/// Order-insensitive form for cases whose order Alembic itself does not fix.
pub fn unordered(out: &[u8]) -> Vec<String> {
    let canon = canonical(out);
    let text = String::from_utf8_lossy(&canon);
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut parts: Vec<&str> = l.split(", ").collect();
            parts.sort_unstable();
            parts.join(", ")
        })
        .collect();
    lines.sort();
    lines
}

/// Hash seeds the oracle runs under (first one is the reference output).
pub const ORACLE_HASH_SEEDS: &[&str] = &["0", "1", "2", "3"];

/// Further hash seeds, for the jobs `compare_multi` rejects under ORACLE_HASH_SEEDS alone.
/// In a history with several merges, Alembic's `history` and `branches` order can vary with
/// PYTHONHASHSEED in ways the first four seeds happen not to show: an extended random_dags
/// run (DAG_SEED=1795857530, 1,500 histories) failed five histories whose ralembic order
/// Alembic itself prints under seed 4, 6, 8 or 13.
pub const MORE_ORACLE_HASH_SEEDS: &[&str] = &[
    "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
];

/// Runs the oracle again, under MORE_ORACLE_HASH_SEEDS, for each job whose outcome
/// `compare_multi` rejects, and adds those outcomes to `py` (then compared as for any job
/// whose order varies with the seed). Only for jobs that leave nothing behind: each runs
/// again. Returns how many jobs were widened.
pub fn widen_oracle_seeds(
    jobs: &[BatchJob],
    py: &mut [Vec<Outcome>],
    rs: &[Outcome],
    check: Check,
    workdir: &Path,
) -> usize {
    let doubtful: Vec<usize> = (0..jobs.len())
        .filter(|&j| compare_multi(&py[j], &rs[j], check).is_err())
        .collect();
    if doubtful.is_empty() {
        return 0;
    }
    let again: Vec<BatchJob> = doubtful.iter().map(|&j| jobs[j].clone()).collect();
    for seed in MORE_ORACLE_HASH_SEEDS {
        let outcomes = run_oracle_batch_seeded(&again, 1, workdir, seed);
        for (&j, o) in doubtful.iter().zip(outcomes) {
            py[j].push(o);
        }
    }
    doubtful.len()
}

/// How a case was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Exact,
    /// Alembic's own output order varied with PYTHONHASHSEED; compared ignoring order.
    Unordered,
}

pub fn compare(py: &Outcome, rs: &Outcome, check: Check) -> Result<Verdict, String> {
    compare_multi(std::slice::from_ref(py), rs, check)
}

/// `py` holds the oracle's outcomes under the seeds of ORACLE_HASH_SEEDS (or just one).
pub fn compare_multi(py: &[Outcome], rs: &Outcome, check: Check) -> Result<Verdict, String> {
    let reference = &py[0];
    let mut problems = Vec::new();
    let codes_stable = py.iter().all(|o| o.code == reference.code);
    if codes_stable && reference.code != rs.code
        || !codes_stable && !py.iter().any(|o| o.code == rs.code)
    {
        problems.push(format!(
            "exit status differs: alembic {:?}, ralembic {:?}",
            reference.code, rs.code
        ));
    }
    let mut verdict = Verdict::Exact;
    if check != Check::ExitOnly {
        let ref_canon = canonical(&reference.stdout);
        let stable = check == Check::Full
            && codes_stable
            && py.iter().all(|o| canonical(&o.stdout) == ref_canon);
        let rs_canon = canonical(&rs.stdout);
        if stable {
            if rs_canon != ref_canon {
                problems.push(format!(
                    "stdout differs:\n{}",
                    unified_diff(&reference.stdout, &rs.stdout)
                ));
            }
        } else {
            verdict = Verdict::Unordered;
            if py
                .iter()
                .all(|o| unordered(&o.stdout) != unordered(&rs.stdout))
            {
                problems.push(format!(
                    "stdout differs (Alembic's own order varies with PYTHONHASHSEED here, so lines were compared \
                     ignoring order):\n{}",
                    unified_diff(&reference.stdout, &rs.stdout)
                ));
            }
        }
        if reference.code != Some(0)
            && !reference.stderr.is_empty()
            && rs.code != Some(0)
            && rs.stderr.is_empty()
        {
            problems.push("alembic wrote to stderr on failure, ralembic wrote nothing".into());
        }
    }
    if problems.is_empty() {
        Ok(verdict)
    } else {
        Err(problems.join("\n"))
    }
}

pub fn unified_diff(a: &[u8], b: &[u8]) -> String {
    let at = String::from_utf8_lossy(a);
    let bt = String::from_utf8_lossy(b);
    if at == bt {
        // differs only in invalid UTF-8 bytes: show the bytes
        return format!("  alembic  bytes: {:?}\n  ralembic bytes: {:?}", a, b);
    }
    let diff = similar::TextDiff::from_lines(at.as_ref(), bt.as_ref());
    let mut out = String::new();
    let _ = write!(
        out,
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header("alembic (expected)", "ralembic (actual)")
    );
    // make invisible differences visible (CR, trailing spaces, missing final newline)
    if at.replace("\r\n", "\n") == bt.replace("\r\n", "\n") || at.trim_end() == bt.trim_end() {
        let _ = write!(
            out,
            "\n  (whitespace-only difference)\n  alembic:  {at:?}\n  ralembic: {bt:?}"
        );
    }
    out
}

pub fn show(o: &Outcome) -> String {
    format!(
        "    exit: {:?}\n    stdout:\n{}    stderr:\n{}",
        o.code,
        indent(&String::from_utf8_lossy(&o.stdout)),
        indent(&String::from_utf8_lossy(&o.stderr))
    )
}

fn indent(s: &str) -> String {
    if s.is_empty() {
        return "      <empty>\n".into();
    }
    let mut out = String::new();
    for line in s.lines().take(60) {
        out.push_str("      | ");
        out.push_str(line);
        out.push('\n');
    }
    if s.lines().count() > 60 {
        out.push_str("      | ...\n");
    }
    out
}

/// Recursive copy (files and directories; symlinks are not expected in fixtures).
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display())) {
        let entry = entry.unwrap();
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() == "__pycache__" {
                continue;
            }
            copy_dir(&from, &to);
        } else {
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
    }
}

/// Split a case string on whitespace (our argv never needs quoting).
pub fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// Run the oracle CLI and the candidate for one case, in parallel threads, or sequentially
/// (candidate first) when the case touches the database and the two could race on it.
pub fn run_both(cwd: &Path, argv: &[String], env: &CaseEnv, parallel: bool) -> (Outcome, Outcome) {
    let py_bin = alembic_bin();
    let rs_bin = ralembic_bin();
    if parallel {
        std::thread::scope(|s| {
            let py = s.spawn(|| run_tool(&py_bin, cwd, argv, env));
            let rs = run_tool(&rs_bin, cwd, argv, env);
            (py.join().unwrap(), rs)
        })
    } else {
        let rs = run_tool(&rs_bin, cwd, argv, env);
        let py = run_tool(&py_bin, cwd, argv, env);
        (py, rs)
    }
}

/// Runs the real `alembic` CLI for setup (e.g. `stamp`) and panics loudly if it fails.
pub fn oracle_setup(cwd: &Path, args: &[&str]) {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let o = run_tool(&alembic_bin(), cwd, &argv, &CaseEnv::default());
    assert_eq!(
        o.code,
        Some(0),
        "setup `alembic {}` failed in {}:\n{}",
        args.join(" "),
        cwd.display(),
        show(&o)
    );
}

/// Collects mismatches so one run reports all of them.
#[derive(Default)]
pub struct Report {
    pub failures: Vec<String>,
    pub passed: usize,
    /// passed, but only order-insensitively (see `canonical`)
    pub unordered: usize,
}

impl Report {
    pub fn record(&mut self, label: &str, py: &Outcome, rs: &Outcome, check: Check) {
        self.record_multi(label, std::slice::from_ref(py), rs, check)
    }

    pub fn record_multi(&mut self, label: &str, pys: &[Outcome], rs: &Outcome, check: Check) {
        let py = &pys[0];
        match compare_multi(pys, rs, check) {
            Ok(v) => {
                self.passed += 1;
                if v == Verdict::Unordered {
                    self.unordered += 1;
                }
            }
            Err(why) => self.failures.push(format!(
                "=== MISMATCH {label}\n{why}\n  --- alembic (oracle)\n{}  --- ralembic ({})\n{}",
                show(py),
                ralembic_bin().display(),
                show(rs)
            )),
        }
    }

    pub fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    pub fn finish(self, what: &str) {
        if !self.failures.is_empty() {
            let n = self.failures.len();
            let mut text = self.failures.join("\n");
            if text.len() > 200_000 {
                text.truncate(200_000);
                text.push_str("\n... (report truncated)");
            }
            panic!(
                "{what}: {n} mismatch(es), {} case(s) agreed\n{text}\n{what}: {n} mismatch(es)",
                self.passed
            );
        }
        eprintln!(
            "{what}: all {} case(s) agreed ({} of them order-insensitively: Alembic's order varied with PYTHONHASHSEED)",
            self.passed, self.unordered
        );
    }
}

/// Minimal JSON string encoder for the batch driver's job file.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Clone)]
pub struct BatchJob {
    pub cwd: PathBuf,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// Runs jobs through scripts/alembic-batch.py (real Alembic, one interpreter per chunk),
/// `chunks` interpreters in parallel. Returns outcomes in job order.
pub fn run_oracle_batch(jobs: &[BatchJob], chunks: usize, workdir: &Path) -> Vec<Outcome> {
    run_oracle_batch_seeded(jobs, chunks, workdir, ORACLE_HASH_SEEDS[0])
}

/// Runs the batch once per seed of ORACLE_HASH_SEEDS; result[i] holds job i's outcomes.
pub fn run_oracle_seeds(jobs: &[BatchJob], chunks: usize, workdir: &Path) -> Vec<Vec<Outcome>> {
    let mut per_job: Vec<Vec<Outcome>> = jobs.iter().map(|_| Vec::new()).collect();
    for seed in ORACLE_HASH_SEEDS {
        for (i, o) in run_oracle_batch_seeded(jobs, chunks, workdir, seed)
            .into_iter()
            .enumerate()
        {
            per_job[i].push(o);
        }
    }
    per_job
}

pub fn run_oracle_batch_seeded(
    jobs: &[BatchJob],
    chunks: usize,
    workdir: &Path,
    seed: &str,
) -> Vec<Outcome> {
    run_oracle_batch_snapshots(jobs, &[], chunks, workdir, seed)
}

/// Like `run_oracle_batch_seeded`; `snapshots[i] = Some((db, copy))` has the driver copy the
/// file `db` to `copy` right after job i (missing entries: no snapshot). A chunk runs its jobs
/// in order, so a sequence of stateful commands must sit in one chunk.
pub fn run_oracle_batch_snapshots(
    jobs: &[BatchJob],
    snapshots: &[Option<(PathBuf, PathBuf)>],
    chunks: usize,
    workdir: &Path,
    seed: &str,
) -> Vec<Outcome> {
    let script = repo_root().join("scripts/alembic-batch.py");
    assert!(script.exists(), "{} missing", script.display());
    let python = venv_python();
    let chunks = chunks.max(1);
    let per = jobs.len().div_ceil(chunks).max(1);
    let parts: Vec<&[BatchJob]> = jobs.chunks(per).collect();
    let results: Vec<Vec<Outcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(ci, part)| {
                let python = &python;
                let script = &script;
                let first = ci * per;
                s.spawn(move || {
                    let dir = workdir.join(format!("oracle-batch-{seed}-{ci}"));
                    std::fs::create_dir_all(&dir).unwrap();
                    let mut json = String::from("[\n");
                    for (i, j) in part.iter().enumerate() {
                        if i > 0 {
                            json.push_str(",\n");
                        }
                        let args: Vec<String> = j.argv.iter().map(|a| json_str(a)).collect();
                        let env: Vec<String> =
                            j.env.iter().map(|(k, v)| format!("{}: {}", json_str(k), json_str(v))).collect();
                        let snapshot = match snapshots.get(first + i) {
                            Some(Some((db, copy))) => format!(
                                ", \"snapshot\": [{}, {}]",
                                json_str(&db.to_string_lossy()),
                                json_str(&copy.to_string_lossy())
                            ),
                            _ => String::new(),
                        };
                        let _ = write!(
                            json,
                            "{{\"cwd\": {}, \"argv\": [{}], \"env\": {{{}}}, \"unset\": [\"ALEMBIC_CONFIG\"]{snapshot}}}",
                            json_str(&j.cwd.to_string_lossy()),
                            args.join(", "),
                            env.join(", ")
                        );
                    }
                    json.push_str("\n]\n");
                    let jobs_file = dir.join("jobs.json");
                    std::fs::write(&jobs_file, json).unwrap();
                    let out = Command::new(python)
                        .arg(script)
                        .arg(&jobs_file)
                        .arg(&dir)
                        .stdin(Stdio::null())
                        .env("PYTHONDONTWRITEBYTECODE", "1")
                        .env("PYTHONHASHSEED", seed)
                        .output()
                        .expect("start the oracle batch driver");
                    assert!(
                        out.status.success(),
                        "oracle batch driver failed ({:?}):\n{}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    );
                    (0..part.len())
                        .map(|i| {
                            let read = |ext: &str| std::fs::read(dir.join(format!("{i}.{ext}"))).unwrap_or_default();
                            let code = String::from_utf8_lossy(&read("code")).trim().parse::<i32>().ok();
                            assert!(code.is_some(), "oracle batch driver wrote no exit code for job {i} in {}", dir.display());
                            Outcome { code, stdout: read("out"), stderr: read("err") }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("oracle batch thread panicked"))
            .collect()
    });
    results.into_iter().flatten().collect()
}

/// Runs the candidate for many jobs on `threads` threads. Returns outcomes in job order.
pub fn run_candidate_many(jobs: &[BatchJob], threads: usize) -> Vec<Outcome> {
    let bin = ralembic_bin();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Outcome>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= jobs.len() {
                    break;
                }
                let j = &jobs[i];
                let env = CaseEnv {
                    set: j.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                };
                *slots[i].lock().unwrap() = Some(run_tool(&bin, &j.cwd, &j.argv, &env));
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().unwrap().unwrap())
        .collect()
}

pub fn jobs_env() -> usize {
    std::env::var("MESHVIEW_TEST_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

pub fn os(s: &str) -> OsString {
    OsString::from(s)
}

/// splitmix64: seeded, reproducible randomness for generated test inputs.
/// A test's knob from the environment (a seed, a count), or its default when the variable
/// is unset or does not parse.
pub fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    pub fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_digit((self.next() % 16) as u32, 16).unwrap())
            .collect()
    }
}

/// `type name: sql` of every `sqlite_master` entry of a database file, in (type, name) order:
/// the exact schema text, for tests that compare two databases.
pub fn sqlite_master(db: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    let mut st = conn
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    st.query_map([], |r| {
        Ok(format!(
            "{} {}: {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?.unwrap_or_default()
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

//! Differential harness for the commands that write: `upgrade`, `downgrade`, `stamp`.
//!
//! A [`Sequence`] is a project and a list of command lines run one after another on the same
//! database. The oracle (real Alembic, batched through `scripts/alembic-batch.py`, which copies
//! the database after every job) and `ralembic` each run it on their own copy of the project;
//! after every step we observe exit status, stdout, stderr, the version rows (as a set) and
//! the `sqlite_master` text of the database ([`Observation`]).
//!
//! Alembic's output order depends on PYTHONHASHSEED where it iterates sets (merge points,
//! `--sql` step order on branchy histories), so the oracle runs every sequence under several
//! seeds; `ralembic` must equal one of them exactly, or, when they disagree among themselves,
//! match ignoring line order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{
    copy_dir, ralembic_bin, repo_root, run_oracle_batch_snapshots, run_tool, unified_diff,
    BatchJob, CaseEnv, Outcome, Report,
};

/// A project and the command lines to run on it in order.
#[derive(Clone, Debug)]
pub struct Sequence {
    pub label: String,
    /// A ready project directory (see [`prepare_project`]); copied per side and seed.
    pub project: PathBuf,
    /// The SQLite file the project's `sqlalchemy.url` names, relative to the project.
    pub db: String,
    /// The version table's name (to observe its rows).
    pub version_table: String,
    pub steps: Vec<Vec<String>>,
    /// Steps where Alembic fails after committing part of its work (a non-atomic run) while
    /// `ralembic` rolls back: exit status and output are compared, and `ralembic` must leave
    /// the database as the previous step left it. The sequence is not compared further.
    pub partial_in_alembic: Vec<usize>,
    /// Steps the `ralembic` side also runs with Python Alembic: revisions ralembic refuses,
    /// applied by Python as a mixed team would, so that the revisions after them are compared.
    pub alembic_steps: Vec<usize>,
}

/// What one step left behind.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    pub outcome: Outcome,
    /// `alembic_version` rows (of `version_table`), sorted; empty when there is no table.
    pub rows: Vec<String>,
    /// `type name: sql` for every `sqlite_master` entry, sorted.
    pub schema: Vec<String>,
}

/// How a fixture project is set up for a migration test.
#[derive(Clone, Debug, Default)]
pub struct ProjectSetup {
    /// Use `tests/fixtures/_migrate/env.py` (generic logging) and append the generic template's
    /// logging sections to alembic.ini, so Alembic prints its log lines.
    pub logging: bool,
    /// Extra literal keyword arguments for both `context.configure` calls, e.g.
    /// `version_table="my_version", transaction_per_migration=True`.
    pub configure_extra: String,
}

/// A copy of fixture `name` with logging on, in a temporary directory (its `p/`) kept while
/// the first value lives.
pub fn fixture_project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    prepare_project(
        &repo_root().join("tests/fixtures").join(name),
        &dir,
        &ProjectSetup {
            logging: true,
            configure_extra: String::new(),
        },
    );
    (tmp, dir)
}

/// Copies `fixture` to `dst` and applies `setup`.
pub fn prepare_project(fixture: &Path, dst: &Path, setup: &ProjectSetup) {
    copy_dir(fixture, dst);
    let _ = std::fs::remove_file(dst.join("test.db"));
    if setup.logging || !setup.configure_extra.is_empty() {
        let shared = repo_root().join("tests/fixtures/_migrate");
        let env = std::fs::read_to_string(shared.join("env.py")).unwrap();
        let extra = if setup.configure_extra.is_empty() {
            String::new()
        } else {
            format!("{},", setup.configure_extra)
        };
        let mut env = env.replace("CONFIGURE_EXTRA", &extra);
        if !setup.logging {
            env = env.replace("    fileConfig(config.config_file_name)", "    pass");
        }
        std::fs::write(dst.join("alembic/env.py"), env).unwrap();
        if setup.logging {
            let mut ini = std::fs::read_to_string(dst.join("alembic.ini")).unwrap();
            ini.push_str(&std::fs::read_to_string(shared.join("logging.ini")).unwrap());
            std::fs::write(dst.join("alembic.ini"), ini).unwrap();
        }
    }
}

/// A value a `server_default=sa.func.now()` wrote during this run: the two tools run seconds
/// apart, so these compare as equal.
fn is_recent_timestamp(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") else {
        return false;
    };
    let age = chrono::Utc::now().naive_utc() - t;
    age.num_minutes().abs() < 30
}

/// Version rows and schema of a database file (a missing file observes as empty).
pub fn observe_db(db: &Path, version_table: &str) -> (Vec<String>, Vec<String>) {
    if !db.exists() {
        return (Vec::new(), Vec::new());
    }
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master")
        .unwrap();
    let objects: Vec<(String, String, String)> = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut schema: Vec<String> = objects
        .iter()
        .map(|(kind, name, sql)| format!("{kind} {name}: {}", canonical_constraints(sql)))
        .collect();
    // The rows of every table but the version table, so data migrations and batch copies
    // are compared too.
    for (kind, name, _) in &objects {
        if kind != "table" || name == version_table {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{}\"", name.replace('"', "\"\"")))
            .unwrap();
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut cells = Vec::with_capacity(n);
                for i in 0..n {
                    let cell = r.get_ref(i)?;
                    cells.push(match cell {
                        // A type change may have cast it to a BLOB.
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t)
                            if is_recent_timestamp(t) =>
                        {
                            "<CURRENT_TIMESTAMP>".to_string()
                        }
                        _ => format!("{cell:?}"),
                    });
                }
                Ok(cells.join(", "))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        schema.extend(rows.into_iter().map(|r| format!("row {name}: {r}")));
    }
    schema.sort();
    let has = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [version_table],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        > 0;
    let mut rows: Vec<String> = Vec::new();
    if has {
        let sql = format!(
            "SELECT version_num FROM \"{}\"",
            version_table.replace('"', "\"\"")
        );
        let mut stmt = conn.prepare(&sql).unwrap();
        rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
    }
    (rows, schema)
}

/// A CREATE TABLE with its table-level constraint lines sorted. When batch mode rebuilds a
/// table, Alembic emits the reflected named constraints in Python set order (it varies with
/// PYTHONHASHSEED); columns keep their order.
fn canonical_constraints(sql: &str) -> String {
    if !sql.starts_with("CREATE TABLE") {
        return sql.to_string();
    }
    let lines: Vec<&str> = sql.split('\n').collect();
    let is_constraint = |l: &str| {
        let t = l.trim_start().trim_end_matches([',', ' ']);
        [
            "CONSTRAINT ",
            "PRIMARY KEY",
            "UNIQUE ",
            "UNIQUE(",
            "FOREIGN KEY",
            "CHECK ",
        ]
        .iter()
        .any(|p| t.starts_with(p))
    };
    let mut constraints: Vec<String> = lines
        .iter()
        .filter(|l| is_constraint(l))
        .map(|l| l.trim_end_matches([',', ' ']).to_string())
        .collect();
    constraints.sort();
    let mut out: Vec<String> = lines
        .iter()
        .filter(|l| !is_constraint(l))
        .map(|l| l.to_string())
        .collect();
    out.push(format!("constraints: {}", constraints.join(" | ")));
    out.join("\n")
}

/// Runs every sequence through the oracle under each seed: `result[seed][seq][step]`.
pub fn run_oracle(seqs: &[Sequence], seeds: &[&str], work: &Path) -> Vec<Vec<Vec<Observation>>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = seeds
            .iter()
            .map(|seed| {
                s.spawn(move || {
                    let base = work.join(format!("py-{seed}"));
                    let mut jobs = Vec::new();
                    let mut snaps = Vec::new();
                    let mut index = Vec::new();
                    for (qi, q) in seqs.iter().enumerate() {
                        let dir = base.join(qi.to_string());
                        copy_dir(&q.project, &dir);
                        for (si, argv) in q.steps.iter().enumerate() {
                            jobs.push(BatchJob {
                                cwd: dir.clone(),
                                argv: argv.clone(),
                                env: Default::default(),
                            });
                            let snap = dir.join(format!("snapshot-{si}.db"));
                            snaps.push(Some((dir.join(&q.db), snap.clone())));
                            index.push((qi, snap));
                        }
                    }
                    // One interpreter: the jobs of a sequence must run in order.
                    let outcomes = run_oracle_batch_snapshots(&jobs, &snaps, 1, &base, seed);
                    let mut per_seq: Vec<Vec<Observation>> =
                        seqs.iter().map(|_| Vec::new()).collect();
                    for ((qi, snap), outcome) in index.into_iter().zip(outcomes) {
                        let (rows, schema) = observe_db(&snap, &seqs[qi].version_table);
                        per_seq[qi].push(Observation {
                            outcome,
                            rows,
                            schema,
                        });
                    }
                    per_seq
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("oracle thread panicked"))
            .collect()
    })
}

/// Runs every sequence with `ralembic` (sequences in parallel, steps in order).
pub fn run_candidate(seqs: &[Sequence], work: &Path, threads: usize) -> Vec<Vec<Observation>> {
    let bin = ralembic_bin();
    let alembic = super::alembic_bin();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Vec<Observation>>> = seqs
        .iter()
        .map(|_| std::sync::Mutex::new(Vec::new()))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let qi = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(q) = seqs.get(qi) else { break };
                let dir = work.join("rs").join(qi.to_string());
                copy_dir(&q.project, &dir);
                let mut obs = Vec::new();
                for (si, argv) in q.steps.iter().enumerate() {
                    let tool = if q.alembic_steps.contains(&si) {
                        &alembic
                    } else {
                        &bin
                    };
                    let outcome = run_tool(tool, &dir, argv, &CaseEnv::default());
                    let (rows, schema) = observe_db(&dir.join(&q.db), &q.version_table);
                    obs.push(Observation {
                        outcome,
                        rows,
                        schema,
                    });
                }
                *slots[qi].lock().unwrap() = obs;
            });
        }
    });
    slots.into_iter().map(|m| m.into_inner().unwrap()).collect()
}

/// The log lines of a stderr (what survives when Python also printed a traceback).
fn log_lines(err: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(err)
        .lines()
        .filter(|l| {
            ["INFO  [", "ERROR [", "WARNI [", "DEBUG ["]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_owned)
        .collect()
}

fn sorted_lines(b: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(b)
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// Python's `warnings` output (`path:line: UserWarning: msg` and the source line after it)
/// reduced to `UserWarning: msg`: the origin is Python's file and line, not ours to copy.
fn normalize_warnings(err: &[u8]) -> Vec<u8> {
    use std::sync::OnceLock;
    static WARN: OnceLock<regex::Regex> = OnceLock::new();
    let re = WARN.get_or_init(|| regex::Regex::new(r"^\S.*?:\d*:? ?(\w*Warning: .*)$").unwrap());
    let text = String::from_utf8_lossy(err);
    let mut out = String::new();
    let mut skip_source = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if skip_source && line.starts_with("  ") {
            skip_source = false;
            continue;
        }
        skip_source = false;
        match re.captures(bare) {
            // SQLAlchemy's reflection warnings are not reproduced (docs/compatibility.md).
            Some(c) if c[1].starts_with("SAWarning: ") => skip_source = true,
            Some(c) if !bare.starts_with("INFO") && !bare.starts_with("ERROR") => {
                out.push_str(&c[1]);
                out.push('\n');
                skip_source = true;
            }
            _ => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// Exact match with one seed, or (when the seeds disagree) the same lines in any order.
fn matches_any(pys: &[&[u8]], rs: &[u8]) -> bool {
    if pys.contains(&rs) {
        return true;
    }
    let varies = pys.iter().any(|p| *p != pys[0]);
    varies && pys.iter().any(|p| sorted_lines(p) == sorted_lines(rs))
}

/// Compares one step; `Err` describes every difference.
/// The meaning of a `--sql` script for the version table: per `-- Running` block, its header,
/// its other statements in order, and the version rows after it; plus the rows the script
/// assumes at the start (rows it updates or deletes before inserting them).
#[derive(Debug, PartialEq, Eq)]
struct SqlMeaning {
    blocks: Vec<(String, Vec<String>, BTreeSet<String>)>,
    assumed: BTreeSet<String>,
}

fn sql_meaning(out: &[u8]) -> SqlMeaning {
    use std::sync::OnceLock;
    static RES: OnceLock<[regex::Regex; 3]> = OnceLock::new();
    let [ins, upd, del] = RES.get_or_init(|| {
        [
            regex::Regex::new(r"^INSERT INTO \S+ \(version_num\) VALUES \('([^']*)'\)").unwrap(),
            regex::Regex::new(r"^UPDATE \S+ SET version_num='([^']*)' WHERE \S+ = '([^']*)'")
                .unwrap(),
            regex::Regex::new(r"^DELETE FROM \S+ WHERE \S+ = '([^']*)'").unwrap(),
        ]
    });
    let text = String::from_utf8_lossy(out);
    let mut m = SqlMeaning {
        blocks: vec![(String::new(), Vec::new(), BTreeSet::new())],
        assumed: BTreeSet::new(),
    };
    let mut rows: BTreeSet<String> = BTreeSet::new();
    for stmt in text.split("\n\n").map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(h) = stmt.strip_prefix("-- Running ") {
            m.blocks.push((h.to_string(), Vec::new(), rows.clone()));
            continue;
        }
        let mut take = |v: &str, rows: &mut BTreeSet<String>| {
            if !rows.remove(v) {
                m.assumed.insert(v.to_string());
            }
        };
        if let Some(c) = ins.captures(stmt) {
            rows.insert(c[1].to_string());
        } else if let Some(c) = upd.captures(stmt) {
            take(&c[2], &mut rows);
            rows.insert(c[1].to_string());
        } else if let Some(c) = del.captures(stmt) {
            take(&c[1], &mut rows);
        } else if let Some(last) = m.blocks.last_mut() {
            last.1.push(stmt.to_string());
        }
        if let Some(last) = m.blocks.last_mut() {
            last.2 = rows.clone();
        }
    }
    m
}

/// `before`: the candidate's rows and schema before this step, when Alembic is known to
/// commit part of a failing run here (see [`Sequence::partial_in_alembic`]).
pub fn compare_step(
    pys: &[&Observation],
    rs: &Observation,
    before: Option<(&[String], &[String])>,
) -> Result<(), String> {
    let reference = pys[0];
    let mut problems = Vec::new();
    if !pys.iter().any(|p| p.outcome.code == rs.outcome.code) {
        problems.push(format!(
            "exit status: alembic {:?}, ralembic {:?}",
            reference.outcome.code, rs.outcome.code
        ));
    }
    let outs: Vec<&[u8]> = pys.iter().map(|p| p.outcome.stdout.as_slice()).collect();
    // Which parent row a merge updates (and which it deletes) comes from a Python set in
    // Alembic; `--sql` text may then differ while meaning the same rows.
    let same_meaning = || {
        rs.outcome.stdout.starts_with(b"-- Running")
            || rs.outcome.stdout.starts_with(b"CREATE TABLE")
    } && outs
        .iter()
        .any(|p| sql_meaning(p) == sql_meaning(&rs.outcome.stdout));
    if !matches_any(&outs, &rs.outcome.stdout) && !same_meaning() {
        problems.push(format!(
            "stdout differs:\n{}",
            unified_diff(&reference.outcome.stdout, &rs.outcome.stdout)
        ));
    }
    if reference.outcome.code == Some(1) {
        // A Python traceback: only the log lines are comparable, and we must say something.
        let want = log_lines(&reference.outcome.stderr);
        let got = log_lines(&rs.outcome.stderr);
        if want != got {
            problems.push(format!(
                "stderr log lines differ:\n  alembic:  {want:?}\n  ralembic: {got:?}"
            ));
        }
        if rs.outcome.stderr.is_empty() {
            problems.push("alembic printed a traceback, ralembic nothing on stderr".into());
        }
    } else {
        let errs: Vec<Vec<u8>> = pys
            .iter()
            .map(|p| normalize_warnings(&p.outcome.stderr))
            .collect();
        let errs: Vec<&[u8]> = errs.iter().map(Vec::as_slice).collect();
        if !matches_any(&errs, &normalize_warnings(&rs.outcome.stderr)) {
            problems.push(format!(
                "stderr differs:\n{}",
                unified_diff(&reference.outcome.stderr, &rs.outcome.stderr)
            ));
        }
    }
    if let Some((rows, schema)) = before {
        if rs.rows != rows || rs.schema != schema {
            problems.push(format!(
                "ralembic must leave the database unchanged here: rows {rows:?} -> {:?}, schema {schema:?} -> {:?}",
                rs.rows, rs.schema
            ));
        }
        return if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        };
    }
    let rows: BTreeSet<&Vec<String>> = pys.iter().map(|p| &p.rows).collect();
    if !rows.contains(&rs.rows) {
        problems.push(format!(
            "version rows: alembic {:?}, ralembic {:?}",
            reference.rows, rs.rows
        ));
    }
    if reference.schema != rs.schema {
        problems.push(format!(
            "schema:\n  alembic:  {:?}\n  ralembic: {:?}",
            reference.schema, rs.schema
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Runs `seqs` on both sides and compares every step. Stops comparing a sequence at its first
/// mismatch (later steps start from different states).
pub fn differential(seqs: &[Sequence], seeds: &[&str], work: &Path) -> Report {
    let (py, rs) = std::thread::scope(|s| {
        let py = s.spawn(|| run_oracle(seqs, seeds, work));
        let rs = run_candidate(seqs, work, 1);
        (py.join().expect("oracle panicked"), rs)
    });
    let mut report = Report::default();
    for (qi, q) in seqs.iter().enumerate() {
        for (si, argv) in q.steps.iter().enumerate() {
            let pys: Vec<&Observation> = py.iter().map(|seed| &seed[qi][si]).collect();
            let r = &rs[qi][si];
            let partial = q.partial_in_alembic.contains(&si);
            let before = match (partial, si.checked_sub(1).map(|p| &rs[qi][p])) {
                (false, _) => None,
                (true, Some(prev)) => Some((prev.rows.as_slice(), prev.schema.as_slice())),
                (true, None) => Some((&[][..], &[][..])),
            };
            match compare_step(&pys, r, before) {
                Ok(()) if partial => {
                    report.passed += 1;
                    break;
                }
                Ok(()) => report.passed += 1,
                Err(why) => {
                    report.fail(format!(
                        "=== MISMATCH {} step {si}: `alembic {}`\n{why}\n  --- alembic (oracle, seed {})\n{}  --- ralembic\n{}",
                        q.label,
                        argv.join(" "),
                        seeds[0],
                        super::show(&pys[0].outcome),
                        super::show(&r.outcome)
                    ));
                    break;
                }
            }
        }
    }
    report
}

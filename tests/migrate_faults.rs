//! What Alembic on SQLite does not promise and `ralembic` does: concurrent runners queue on
//! the write lock and re-plan from the rows they find, and a failing run changes nothing.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::migrate::{fixture_project, observe_db, prepare_project, ProjectSetup};
use common::{ralembic_bin, repo_root};
use meshview::alembic_compat::command::{migrate, Ctx, ScriptDirectory};
use meshview::alembic_compat::config::{Config, ConfigOptions};
use meshview::alembic_compat::runtime::{BodyError, BodyRunner, MigrationContext, PlannedStep};
use meshview::alembic_compat::script::Script;

const LINEAR_HEAD: &str = "ca515065d73b";

fn project(dir: &Path, configure_extra: &str) {
    prepare_project(
        &repo_root().join("tests/fixtures/linear"),
        dir,
        &ProjectSetup {
            logging: true,
            configure_extra: configure_extra.into(),
        },
    );
}

fn ralembic(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(ralembic_bin());
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("ALEMBIC_CONFIG");
    c
}

fn running_lines(stderr: &[u8]) -> usize {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("] Running "))
        .count()
}

/// `rounds` races of two runners, alternating `upgrade head` and `downgrade base` over a
/// history of `revisions` revisions ending at `head`: each revision applied (or reverted) by
/// exactly one of the two, neither failing, the version rows right after each race.
fn race(dir: &Path, rounds: usize, head: &str, revisions: usize) {
    for round in 0..rounds {
        let (args, rows): (&[&str], Vec<String>) = if round % 2 == 0 {
            (&["upgrade", "head"], vec![head.to_string()])
        } else {
            (&["downgrade", "base"], vec![])
        };
        let a = ralembic(dir, args).spawn().unwrap();
        let b = ralembic(dir, args).spawn().unwrap();
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        for o in [&a, &b] {
            assert!(
                o.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let applied = running_lines(&a.stderr) + running_lines(&b.stderr);
        assert_eq!(
            applied,
            revisions,
            "round {round}:\n--- a\n{}\n--- b\n{}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        );
        assert!(
            running_lines(&a.stderr) == 0 || running_lines(&b.stderr) == 0,
            "round {round}: the two runs interleaved"
        );
        assert_eq!(observe_db(&dir.join("test.db"), "alembic_version").0, rows);
    }
}

#[test]
fn concurrent_runners_apply_each_revision_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir, "");
    race(&dir, 100, LINEAR_HEAD, 5);
}

/// The same with thirty revisions, whose operations and version rows the winner queues on
/// its worker thread across revisions: the loser still waits for the commit and then finds
/// nothing to do.
#[test]
fn concurrent_runners_of_a_long_history_apply_each_revision_once() {
    let (_tmp, dir) = fixture_project("_long");
    race(&dir, 20, "l29", 30);
}

#[test]
fn a_refused_body_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir, "");
    let victim = dir.join("alembic/versions/3983f98c5b1b_index_packets.py");
    let src = std::fs::read_to_string(&victim).unwrap();
    let src = src.replacen(
        "def upgrade():\n    pass",
        "def upgrade():\n    from myapp.models import Packet\n    op.create_index('ix', 'packets', ['t'])",
        1,
    );
    std::fs::write(&victim, src).unwrap();
    let out = ralembic(&dir, &["upgrade", "head"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("3983f98c5b1b_index_packets.py:") && err.contains("NotImplementedError"),
        "{err}"
    );
    assert_eq!(running_lines(&out.stderr), 0, "{err}");
    let (rows, schema) = observe_db(&dir.join("test.db"), "alembic_version");
    assert!(rows.is_empty() && schema.is_empty(), "{rows:?} {schema:?}");
    // Up to the revision before the refused one still works.
    let out = ralembic(&dir, &["upgrade", "c5aa"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        observe_db(&dir.join("test.db"), "alembic_version").0,
        vec!["c5aa27d4f0c8"]
    );
}

#[test]
fn a_long_plan_reports_every_refused_body_and_writes_nothing() {
    // Past 64 revisions the files are parsed and checked on several threads: what each
    // check finds must still reach the one report, in plan order.
    let (_tmp, dir) = fixture_project("_long");
    let versions = dir.join("alembic/versions");
    for i in 30..80 {
        let body = match i {
            41 => "    from myapp.models import Note\n    op.drop_table(\"note\")",
            77 => "    import numpy\n    op.execute(\"DELETE FROM note\")",
            _ => "    op.execute(\"UPDATE note SET body = body WHERE id < 0\")",
        };
        std::fs::write(
            versions.join(format!("l{i}.py")),
            format!(
                "from alembic import op\n\nrevision = \"l{i}\"\ndown_revision = \"l{}\"\n\
                 branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n{body}\n\n\n\
                 def downgrade():\n    pass\n",
                i - 1
            ),
        )
        .unwrap();
    }
    let out = ralembic(&dir, &["upgrade", "head"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("2 revision bodies cannot run; nothing was changed"),
        "{err}"
    );
    let l41 = err.find("l41.py:10:").expect("l41's refusal");
    let l77 = err.find("l77.py:10:").expect("l77's refusal");
    assert!(l41 < l77, "{err}");
    assert_eq!(running_lines(&out.stderr), 0, "{err}");
    let (rows, schema) = observe_db(&dir.join("test.db"), "alembic_version");
    assert!(rows.is_empty() && schema.is_empty(), "{rows:?} {schema:?}");
}

#[test]
fn a_data_loop_failing_in_the_background_is_raised_where_it_ran() {
    // l2's loops run their UPDATEs on the worker thread (past the in-line start); in the
    // second loop the one of row 300 fails, and the body goes on to raise a RuntimeError at row 350
    // before the failure is noticed. Python would stop at row 300: so must we, in the
    // error, the output and the database.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    common::copy_dir(&repo_root().join("tests/fixtures/_loopfail"), &dir);
    let db = dir.join("test.db");
    let out = ralembic(&dir, &["upgrade", "l1"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = observe_db(&db, "alembic_version");
    let out = ralembic(&dir, &["upgrade", "head"])
        .env("RUST_LOG", "meshview=debug")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("statements run on a worker thread"),
        "the loop must have used the worker thread (this needs 2 cores): {err}"
    );
    assert!(
        err.contains("sqlalchemy.exc.IntegrityError: ")
            && err.contains(
                "l2_breaks.py:25:9: (sqlite3.IntegrityError) NOT NULL constraint failed: item.v"
            ),
        "{err}"
    );
    assert!(!err.contains("RuntimeError"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "row 0\nrow 50\nrow 100\nrow 150\nrow 200\n"
    );
    assert_eq!(observe_db(&db, "alembic_version"), before);
}

#[test]
fn a_failing_batch_copy_names_alembics_statement_and_changes_nothing() {
    // b4's copy runs as INSERT OR FAIL (no try can catch it): the error must still show
    // the statement Alembic runs, and the rollback must leave no trace of the copy.
    let (_tmp, dir) = fixture_project("_dberrors");
    let db = dir.join("test.db");
    let out = ralembic(&dir, &["upgrade", "b3"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = |db: &Path| -> Vec<(i64, Option<String>, i64)> {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut stmt = conn.prepare("SELECT id, v, w FROM t ORDER BY id").unwrap();
        let got = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        got
    };
    let before = (observe_db(&db, "alembic_version"), rows(&db));
    let out = ralembic(&dir, &["upgrade", "head"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "b4_uncaught.py:19:9: (sqlite3.IntegrityError) NOT NULL constraint failed: \
             _alembic_tmp_t.v\n[SQL: INSERT INTO _alembic_tmp_t (id, v, w) SELECT t.id, t.v, t.w \nFROM t]"
        ),
        "{err}"
    );
    assert!(!err.contains("OR FAIL"), "{err}");
    assert_eq!((observe_db(&db, "alembic_version"), rows(&db)), before);
}

#[test]
fn a_locked_database_fails_cleanly_after_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir, "");
    let db = dir.join("test.db");
    assert!(ralembic(&dir, &["upgrade", "+1"])
        .output()
        .unwrap()
        .status
        .success());
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let out = ralembic(&dir, &["upgrade", "head"])
        .env(migrate::LOCK_TIMEOUT_ENV, "0.5")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("database is locked"), "{err}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(observe_db(&db, "alembic_version").0, vec!["e33cded675f3"]);
    // Once the lock is gone the same command goes through.
    assert!(ralembic(&dir, &["upgrade", "head"])
        .output()
        .unwrap()
        .status
        .success());
}

/// Creates a table per revision through the context, and fails in the body of `fail_at`
/// (from its `fail_from`-th run on: 0 fails every time, 1 only after the dry run).
struct TableRunner {
    fail_at: &'static str,
    fail_from: usize,
    runs: std::cell::Cell<usize>,
}

impl TableRunner {
    fn failing(fail_at: &'static str) -> Self {
        TableRunner {
            fail_at,
            fail_from: 0,
            runs: std::cell::Cell::new(0),
        }
    }
}

impl BodyRunner for TableRunner {
    fn preflight(&self, _: &[PlannedStep<'_>], _: &MigrationContext) -> Result<(), Vec<BodyError>> {
        Ok(())
    }

    fn run(
        &self,
        script: &Script,
        upgrade: bool,
        ctx: &mut MigrationContext,
    ) -> Result<(), BodyError> {
        let table = format!("t_{}", script.revision);
        let sql = if upgrade {
            format!("CREATE TABLE {table} (id INTEGER)")
        } else {
            format!("DROP TABLE {table}")
        };
        ctx.execute(&sql).map_err(|e| BodyError {
            message: e.to_string(),
            python_class: e.python_class().into(),
        })?;
        if script.revision == self.fail_at {
            let run = self.runs.get();
            self.runs.set(run + 1);
            if run < self.fail_from {
                return Ok(());
            }
            return Err(BodyError {
                message: format!("{}:1:1: boom", script.path.display()),
                python_class: "RuntimeError".into(),
            });
        }
        Ok(())
    }
}

fn upgrade_in_process(dir: &Path, runner: &dyn BodyRunner) -> (bool, String) {
    let opts = ConfigOptions::from_cli(&[], None, Vec::new(), None, dir.to_path_buf()).unwrap();
    let config = Config::load(opts).unwrap();
    let sd = ScriptDirectory::from_config(config).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut ctx = Ctx::new(&mut out, &mut err, false);
    let r = migrate::upgrade(&sd, &mut ctx, "head", false, None, runner);
    drop(ctx);
    let failure = r
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    (
        r.is_ok(),
        format!("{}{failure}", String::from_utf8_lossy(&err)),
    )
}

fn tables(db: &Path) -> Vec<String> {
    observe_db(db, "alembic_version")
        .1
        .into_iter()
        .filter_map(|s| {
            s.strip_prefix("table ")
                .map(|t| t.split(':').next().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn a_failing_body_rolls_back_the_whole_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir, "");
    let (ok, err) = upgrade_in_process(&dir, &TableRunner::failing("f4894da35515"));
    assert!(!ok);
    assert!(
        err.contains("Running upgrade 3983f98c5b1b -> f4894da35515"),
        "{err}"
    );
    let db = dir.join("test.db");
    assert!(tables(&db).is_empty(), "{:?}", tables(&db));
    assert!(observe_db(&db, "alembic_version").0.is_empty());
    let (ok, _) = upgrade_in_process(&dir, &TableRunner::failing("none"));
    assert!(ok);
    assert_eq!(tables(&db).len(), 6, "{:?}", tables(&db));
}

#[test]
fn per_migration_dry_run_finds_a_failing_revision_before_any_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir, "transaction_per_migration=True");
    let (ok, err) = upgrade_in_process(&dir, &TableRunner::failing("f4894da35515"));
    assert!(!ok);
    assert!(
        err.contains("fails in a dry run of the whole plan; nothing was changed"),
        "{err}"
    );
    let db = dir.join("test.db");
    assert!(observe_db(&db, "alembic_version").0.is_empty());
    assert!(tables(&db).is_empty(), "{:?}", tables(&db));
}

#[test]
fn per_migration_transactions_keep_earlier_revisions() {
    // A failure the dry run did not see (it happens only on the real run): the revisions
    // before it stay committed, the failing one is rolled back.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    project(&dir, "transaction_per_migration=True");
    let runner = TableRunner {
        fail_from: 1,
        ..TableRunner::failing("f4894da35515")
    };
    let (ok, err) = upgrade_in_process(&dir, &runner);
    assert!(!ok);
    assert!(
        err.contains("this revision was rolled back, earlier ones are committed"),
        "{err}"
    );
    let db = dir.join("test.db");
    assert_eq!(observe_db(&db, "alembic_version").0, vec!["3983f98c5b1b"]);
    assert_eq!(
        tables(&db),
        vec![
            "alembic_version",
            "t_3983f98c5b1b",
            "t_c5aa27d4f0c8",
            "t_e33cded675f3"
        ]
    );
}

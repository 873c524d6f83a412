//! Crash safety: `kill -9` at random moments of a long `ralembic upgrade head` (batch copies
//! of 10,000 seeded rows in twelve revisions, then plain columns and indexes in eighteen, which
//! a run this long queues on its worker thread) must leave a database whose schema and data
//! are exactly those of the revision its `alembic_version` names, and a later run must finish
//! the job.
//!
//! Two projects: the default (the whole run is one transaction, so a killed run leaves the
//! database as it was) and `transaction_per_migration=True` (a killed run leaves the last
//! committed revision). The expected state per revision is recorded first by upgrading one
//! revision at a time.
//!
//! Knobs: CRASH_SEED, CRASH_KILLS (default 200, split between the two projects).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Revisions with a batch copy; the rest (up to `REVISIONS`) add a column and its index.
const BATCH_REVISIONS: usize = 12;
const REVISIONS: usize = 30;
const ROWS: usize = 10_000;

fn write_project(dir: &Path, per_migration: bool) {
    let versions = dir.join("alembic/versions");
    std::fs::create_dir_all(&versions).unwrap();
    let env = std::fs::read_to_string(repo_root().join("tests/fixtures/_common/env.py")).unwrap();
    let env = if per_migration {
        env.replace(
            "context.configure(connection=connection, target_metadata=target_metadata)",
            "context.configure(\n            connection=connection,\n            target_metadata=target_metadata,\n            transaction_per_migration=True,\n        )",
        )
    } else {
        env
    };
    assert!(!per_migration || env.contains("transaction_per_migration=True"));
    std::fs::write(dir.join("alembic/env.py"), env).unwrap();
    std::fs::write(
        dir.join("alembic.ini"),
        "[alembic]\nscript_location = %(here)s/alembic\nsqlalchemy.url = sqlite:///%(here)s/crash.db\n",
    )
    .unwrap();
    for i in 0..REVISIONS {
        let down = if i == 0 {
            "None".to_string()
        } else {
            format!("\"c{:02}\"", i - 1)
        };
        let body = if i >= BATCH_REVISIONS {
            format!(
                "    op.add_column(\"item\", sa.Column(\"y{i}\", sa.Integer(), server_default=\"{i}\"))\n    op.create_index(\"ix_item_y{i}\", \"item\", [\"y{i}\"])\n"
            )
        } else if i == 0 {
            format!(
                "    op.create_table(\n        \"item\",\n        sa.Column(\"id\", sa.Integer(), primary_key=True),\n        sa.Column(\"name\", sa.String(40), nullable=False),\n        sa.Column(\"ratio\", sa.Float()),\n    )\n    op.create_index(\"ix_item_name\", \"item\", [\"name\"])\n    op.execute(\n        \"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) \"\n        \"INSERT INTO item (id, name, ratio) SELECT i, 'item-' || i, i / 3.0 FROM n\"\n    )\n"
            )
        } else {
            format!(
                "    with op.batch_alter_table(\"item\", recreate=\"always\") as batch_op:\n        batch_op.add_column(sa.Column(\"x{i}\", sa.Integer(), nullable=False, server_default=\"{i}\"))\n        batch_op.alter_column(\"name\", existing_type=sa.String({}), type_=sa.String({}))\n    op.execute(\"UPDATE item SET ratio = ratio + {i} WHERE id % 7 = 0\")\n",
                38 + 2 * i,
                40 + 2 * i
            )
        };
        std::fs::write(
            versions.join(format!("c{i:02}.py")),
            format!(
                "\"\"\"step {i}\n\nRevision ID: c{i:02}\n\"\"\"\nfrom alembic import op\nimport sqlalchemy as sa\n\nrevision = \"c{i:02}\"\ndown_revision = {down}\nbranch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n{body}\n\ndef downgrade():\n    pass\n"
            ),
        )
        .unwrap();
    }
}

/// Version rows (joined) -> a digest of every user table's SQL and rows.
fn state(db: &Path) -> (String, String) {
    if !db.exists() {
        return (String::new(), String::new());
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "integrity_check of {}", db.display());
    let has_version: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        > 0;
    let version = if has_version {
        let mut st = conn
            .prepare("SELECT version_num FROM alembic_version ORDER BY 1")
            .unwrap();
        let rows: Vec<String> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.join(",")
    } else {
        String::new()
    };
    let mut digest = String::new();
    let mut st = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'alembic_version' AND name NOT LIKE 'sqlite_autoindex_alembic%' ORDER BY name")
        .unwrap();
    let objects: Vec<(String, String, Option<String>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (kind, name, sql) in &objects {
        digest.push_str(&format!(
            "{kind} {name}: {}\n",
            sql.as_deref().unwrap_or("")
        ));
        if kind == "table" {
            let (n, sum): (i64, f64) = conn
                .query_row(
                    &format!("SELECT count(*), coalesce(sum(ratio), 0) FROM \"{name}\""),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            digest.push_str(&format!("  rows {n} ratio-sum {sum:.3}\n"));
        }
    }
    (version, digest)
}

fn ralembic(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(ralembic_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn kill_9_leaves_a_database_that_matches_its_version() {
    let seed = knob("CRASH_SEED", 0x6b69_6c6c_u64);
    let kills: usize = knob("CRASH_KILLS", 200);
    eprintln!("migrate_crash: CRASH_SEED={seed} CRASH_KILLS={kills}");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (p, per_migration) in [false, true].into_iter().enumerate() {
        let dir = tmp.path().join(format!("p{p}"));
        write_project(&dir, per_migration);
        let db = dir.join("crash.db");

        // The state after each revision, one step at a time.
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        expected.insert(String::new(), state(&db).1);
        for _ in 0..REVISIONS {
            let out = ralembic(&dir, &["upgrade", "+1"]);
            assert!(
                out.status.success(),
                "upgrade +1: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let (v, d) = state(&db);
            expected.insert(v, d);
        }
        let head = state(&db);
        std::fs::remove_file(&db).unwrap();

        // How long a whole run takes, to spread the kills over it.
        let t0 = Instant::now();
        let out = ralembic(&dir, &["upgrade", "head"]);
        assert!(out.status.success());
        let full = t0.elapsed();
        eprintln!("migrate_crash: project {p}: a whole run takes {full:?}");
        assert_eq!(
            state(&db),
            head,
            "one-shot upgrade differs from step by step"
        );

        for k in 0..kills / 2 {
            for f in [
                "crash.db",
                "crash.db-journal",
                "crash.db-wal",
                "crash.db-shm",
            ] {
                let _ = std::fs::remove_file(dir.join(f));
            }
            let delay = Duration::from_micros(rng.next() % (full.as_micros() as u64 * 11 / 10 + 1));
            let mut child = Command::new(ralembic_bin())
                .args(["upgrade", "head"])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            let _ = child.kill(); // SIGKILL
            let status = child.wait().unwrap();
            let (version, digest) = state(&db);
            let want = expected.get(&version).unwrap_or_else(|| {
                panic!("kill {k} (project {p}, after {delay:?}): unknown version row {version:?}")
            });
            assert_eq!(
                &digest, want,
                "kill {k} (project {p}, after {delay:?}): schema/data do not match version {version:?}"
            );
            let finished = status.success();
            *outcomes
                .entry(format!(
                    "p{p} {}",
                    if finished {
                        "finished".into()
                    } else {
                        format!(
                            "killed at {}",
                            if version.is_empty() {
                                "<none>"
                            } else {
                                &version
                            }
                        )
                    }
                ))
                .or_default() += 1;
            // A later run picks up from there.
            if k % 10 == 0 {
                let out = ralembic(&dir, &["upgrade", "head"]);
                assert!(
                    out.status.success(),
                    "recovery run: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(state(&db), head, "recovery run did not reach head");
            }
        }
    }
    eprintln!("migrate_crash: outcomes {outcomes:?}");
    let killed: usize = outcomes
        .iter()
        .filter(|(k, _)| k.contains("killed"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        killed * 2 >= kills,
        "too few runs were actually killed mid-way ({killed} of {kills}); the test would prove little"
    );
}

//! `upgrade`, `downgrade` and `stamp` against the real Alembic: sequences of commands on the
//! fixture histories (bodies are `pass`), on `_ops` (every operation and type, batch mode, data
//! idioms) and on MeshView's own history over a seeded pre-Alembic database. Each step is
//! compared on exit status, stdout (including `--sql` output), stderr log lines, version rows,
//! the database schema and every table's rows. See `common/migrate.rs` for how the comparison
//! works.

mod common;

use common::migrate::{differential, prepare_project, ProjectSetup, Sequence};
use common::repo_root;

// A step written `!partial <command>` is one where Alembic fails after committing part of the
// run and ralembic rolls back (see `Sequence::partial_in_alembic`); it ends its sequence.

/// Seeds the oracle runs under; Alembic's order varies with them on branchy histories.
const SEEDS: &[&str] = &["0", "1", "2"];

fn steps(lines: &[&str]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn sequence(
    work: &std::path::Path,
    fixture: &str,
    label: &str,
    setup: &ProjectSetup,
    version_table: &str,
    lines: &[&str],
) -> Sequence {
    let project = work.join("projects").join(label);
    prepare_project(
        &repo_root().join("tests/fixtures").join(fixture),
        &project,
        setup,
    );
    Sequence {
        label: label.to_string(),
        project,
        db: "test.db".into(),
        version_table: version_table.into(),
        steps: steps(
            &lines
                .iter()
                .map(|l| l.trim_start_matches("!partial "))
                .collect::<Vec<_>>(),
        ),
        partial_in_alembic: lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with("!partial "))
            .map(|(i, _)| i)
            .collect(),
        alembic_steps: Vec::new(),
    }
}

fn logging() -> ProjectSetup {
    ProjectSetup {
        logging: true,
        configure_extra: String::new(),
    }
}

// linear: e33cded675f3 -> c5aa27d4f0c8 -> 3983f98c5b1b -> f4894da35515 -> ca515065d73b
const LINEAR: &[&str] = &[
    "upgrade +2",
    "upgrade +1",
    "downgrade -1",
    "upgrade head",
    "upgrade head",
    "downgrade base",
    "downgrade base",
    "upgrade c5aa",
    "upgrade 3983f98c5b1b",
    "downgrade e33c",
    "upgrade heads",
    "downgrade -2",
    "downgrade c5aa27d4f0c8+1",
    "upgrade c5aa@head",
    "downgrade 3983@-1",
    "upgrade -1",
    "downgrade +1",
    "downgrade head",
    "upgrade zzz",
    "downgrade zzz",
    "upgrade e33c:c5aa",
    "downgrade --sql base",
    "upgrade head --sql",
    "upgrade c5aa:head --sql",
    "upgrade c5aa:3983 --sql",
    "upgrade base:c5aa --sql",
    "upgrade e33c:c5aa:3983 --sql",
    "downgrade head:base --sql",
    "downgrade ca51:c5aa --sql",
    "downgrade ca51:-2 --sql",
    "stamp --sql c5aa",
    "stamp --sql c5aa:3983",
    "stamp --sql c5aa:3983 e33c:f489",
    "stamp --sql --purge head",
    "stamp base",
    "stamp heads",
    "stamp c5aa",
    "stamp ca51",
    "stamp --purge c5aa",
    "stamp --purge base",
    "-x foo=bar upgrade head --tag t1",
    "-q downgrade base",
    "stamp zzz",
    "--raiseerr upgrade zzz",
];

// merges: 60ee (a) -> b1 8159, b2 b575 -> m1 8a86; c1 feb2, c2 9cad -> m2 c0db;
// m1 + m2 -> m3 1a6b -> tail 5637 -> d1 9f60, d2 f28b, d3 c0ea -> m4 d58a
const MERGES: &[&str] = &[
    "upgrade 8159637a853d",
    "upgrade b575",
    "upgrade 8a86",
    "upgrade feb2",
    "upgrade heads",
    "downgrade 56373b1b6a88",
    "downgrade 9f60",
    "downgrade 1a6b",
    "downgrade 8159637a853d",
    "downgrade c0db@-1",
    "stamp heads",
    "downgrade base",
    "upgrade 9cad",
    "upgrade c0db",
    "upgrade +2",
    "stamp --purge 8159 b575",
    "upgrade heads",
    "stamp c0db",
    "stamp 8a86 c0db",
    "upgrade 60ee:1a6b --sql",
    "downgrade d58a:56373 --sql",
    "downgrade d58a:base --sql",
    "stamp --sql 8a86 c0db",
    "upgrade head --sql",
];

// labels: alpha a1 f679 -> a2 5b0e -> a3 d040; gamma c1 a4f0 (from a2) -> c2 b86c -> c3 a1b5;
// beta/bravo b1 2332 -> b2 66bc; m 16d6 merges a3 + b2.
const LABELS: &[&str] = &[
    "upgrade gamma@head",
    "upgrade beta@head",
    "upgrade alpha@head",
    "upgrade bravo@+1",
    "upgrade heads",
    "downgrade gamma@base",
    "downgrade beta@base",
    "downgrade alpha@-1",
    "stamp gamma@head",
    "downgrade base",
    "upgrade 5b0e@head",
    "upgrade a4f0@head",
    "downgrade gamma@-1",
    "upgrade gamma@+1",
    "stamp beta@head",
    "downgrade base",
    "upgrade heads --sql",
    "upgrade gamma@head --sql",
    "stamp --purge alpha@head",
];

// depends: three roots labelled one/two/three with depends_on across them.
const DEPENDS: &[&str] = &[
    "upgrade one@head",
    "upgrade two@head",
    "upgrade heads",
    "downgrade one@base",
    "downgrade base",
    "upgrade 546ab8f40333",
    "upgrade two@head",
    "downgrade 4b24e713be27",
    "stamp heads",
    "downgrade three@base",
    "downgrade base",
    "upgrade heads --sql",
    "upgrade 546ab8f40333",
    // Alembic: KeyError in HeadMaintainer after a1 is committed; we roll back.
    "!partial upgrade aa8110d61c5f",
];

// multihead: root 2450 -> branchpoint 980f -> c1 60ce, c2 f2a3 -> be5f, c3 fe2a;
// a second root ad40 -> 4d96.
const MULTIHEAD: &[&str] = &[
    "upgrade head",
    "upgrade heads",
    "downgrade 980f",
    "downgrade -1",
    "downgrade base",
    "upgrade ad40",
    "upgrade 60ce",
    "upgrade fe2a",
    "upgrade heads",
    "stamp base",
    "stamp 4d96 be5f",
    "downgrade ad40@base",
    "upgrade heads --sql",
];

// prefixes: ae1027a6acf0 -> ae1027a6a0b1 -> (ae10f0000002 -> abc -> abcdef), b0d1e5a7f9c3
const PREFIXES: &[&str] = &[
    "upgrade ae10",
    "upgrade ae1027a6a",
    "upgrade abc",
    "upgrade heads",
    "downgrade ae1027a6a0b1",
    "stamp b0d1",
    "downgrade base",
];

// env.py variants on the linear history: a quoted version table in an explicit schema, and
// one transaction per migration.
const VARIANT: &[&str] = &[
    "upgrade +2",
    "upgrade head",
    "downgrade c5aa",
    "stamp --purge 3983",
    "upgrade head --sql",
    "downgrade ca51:base --sql",
    "downgrade base",
];

// Every operation and type, one revision at a time up and down, then whole runs and --sql.
const OPS: &[&str] = &[
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "downgrade -1",
    "downgrade -1",
    "downgrade -1",
    "downgrade -1",
    "downgrade -1",
    "downgrade -1",
    "upgrade head",
    "downgrade base",
    "upgrade :a2 --sql",
    "upgrade a2",
    "downgrade a2:a1 --sql",
];

// MeshView's history over a database MeshView made before it used Alembic (no import_time_us
// columns yet), with rows whose timestamps the data migration converts.
const MESHVIEW: &[&str] = &[
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "upgrade +1",
    "current",
    "downgrade -1",
    "downgrade -1",
    "downgrade -1",
    "downgrade -1",
    "downgrade -1",
    "downgrade 1717fa5c6545",
    "upgrade head",
    "upgrade c88468b7ab0b:head --sql",
];

/// Rows whose timestamps the data migration (b7c3c2e3a1f0) converts, in the formats MeshView
/// databases hold.
const LEGACY_ROWS: &str = "
INSERT INTO node (id, node_id, long_name, short_name, last_update) VALUES
  ('!0000000a', 10, 'Alpha', 'A', '2025-03-04 05:06:07.123456'),
  ('!0000000b', 11, 'Bravo', 'B', '2025-03-04T05:06:07Z'),
  ('!0000000c', 12, 'Charlie', 'C', '2025-03-04 05:06:07+02:00'),
  ('!0000000d', 13, 'Delta', 'D', NULL),
  ('!0000000e', 14, 'Echo', 'E', '2025-03-04');
INSERT INTO packet VALUES
  (1, 1, 10, 11, X'0102', '2025-03-04 05:06:07.000001', 'LongFast'),
  (2, 3, 11, 4294967295, NULL, '2025-03-05 00:00:00', 'LongFast');
INSERT INTO packet_seen VALUES
  (1, 10, 1741064767, 3, 3, 'LongFast', -7.5, -101, 'msh/US', '2025-03-04 05:06:08'),
  (1, 11, 1741064768, 2, 3, 'LongFast', 4.25, -90, 'msh/US', '2025-03-04 05:06:09');
INSERT INTO traceroute VALUES (1, 2, 11, 1, X'00', '2025-03-05 00:00:01');
-- Enough nodes for b7c3c2e3a1f0's loops to hand their UPDATEs to the worker thread.
INSERT INTO node (id, node_id, long_name, short_name, last_update)
WITH RECURSIVE n(i, t) AS (
  SELECT 1, 1741000000 UNION ALL SELECT i + 1, t + 3607 FROM n WHERE i < 300
)
SELECT printf('!1%07x', i), 1000 + i, 'Node ' || i, 'N' || i,
  CASE
    WHEN i % 11 = 0 THEN strftime('%Y-%m-%dT%H:%M:%f', t, 'unixepoch')
    WHEN i % 5 = 0 THEN strftime('%Y-%m-%d %H:%M:%f', t, 'unixepoch')
    WHEN i % 5 = 1 THEN strftime('%Y-%m-%dT%H:%M:%SZ', t, 'unixepoch')
    WHEN i % 5 = 2 THEN datetime(t, 'unixepoch') || '+05:30'
    WHEN i % 5 = 3 THEN NULL
    ELSE date(t, 'unixepoch')
  END
FROM n;
";

/// A copy of the repository's alembic.ini + alembic/ (MeshView's history) over a seeded
/// pre-Alembic MeshView database.
fn meshview_sequence(work: &std::path::Path) -> Sequence {
    let project = work.join("projects").join("meshview");
    std::fs::create_dir_all(&project).unwrap();
    common::copy_dir(&repo_root().join("alembic"), &project.join("alembic"));
    std::fs::copy(repo_root().join("alembic.ini"), project.join("alembic.ini")).unwrap();
    let _ = std::fs::remove_dir_all(project.join("alembic/versions/__pycache__"));
    let db = project.join("meshview.db");
    let _ = std::fs::remove_file(&db);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let schema =
        std::fs::read_to_string(repo_root().join("tests/fixtures/_meshview/legacy_schema.sql"))
            .unwrap();
    conn.execute_batch(&schema).unwrap();
    conn.execute_batch(LEGACY_ROWS).unwrap();
    drop(conn);
    Sequence {
        label: "meshview".into(),
        project,
        db: "meshview.db".into(),
        version_table: "alembic_version".into(),
        steps: steps(MESHVIEW),
        partial_in_alembic: Vec::new(),
        alembic_steps: Vec::new(),
    }
}

#[test]
fn migrations_match_alembic() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let seqs = vec![
        sequence(w, "linear", "linear", &logging(), "alembic_version", LINEAR),
        sequence(
            w,
            "linear",
            "linear-nolog",
            &ProjectSetup::default(),
            "alembic_version",
            &LINEAR[..12],
        ),
        sequence(w, "merges", "merges", &logging(), "alembic_version", MERGES),
        sequence(w, "labels", "labels", &logging(), "alembic_version", LABELS),
        sequence(
            w,
            "depends",
            "depends",
            &logging(),
            "alembic_version",
            DEPENDS,
        ),
        sequence(
            w,
            "multihead",
            "multihead",
            &logging(),
            "alembic_version",
            MULTIHEAD,
        ),
        sequence(
            w,
            "prefixes",
            "prefixes",
            &logging(),
            "alembic_version",
            PREFIXES,
        ),
        sequence(
            w,
            "linear",
            "linear-quoted-table",
            &ProjectSetup {
                logging: true,
                configure_extra: "version_table='Version Table', version_table_schema='main'"
                    .into(),
            },
            "Version Table",
            VARIANT,
        ),
        sequence(
            w,
            "linear",
            "linear-per-migration",
            &ProjectSetup {
                logging: true,
                configure_extra: "transaction_per_migration=True, version_table='vt'".into(),
            },
            "vt",
            VARIANT,
        ),
        sequence(w, "_ops", "ops", &logging(), "alembic_version", OPS),
        sequence(
            w,
            "_ops",
            "ops-per-migration",
            &ProjectSetup {
                logging: true,
                configure_extra: "transaction_per_migration=True".into(),
            },
            "alembic_version",
            &OPS[..10],
        ),
        // Data statements' SQL text (grouping, negation, IN, LIKE forms) byte for byte in
        // --sql, then their effect on rows online.
        sequence(
            w,
            "_sqltext",
            "sqltext",
            &logging(),
            "alembic_version",
            &[
                "upgrade head --sql",
                "upgrade head",
                "downgrade head:base --sql",
                "downgrade base",
            ],
        ),
        // env.py's target_metadata carries a naming convention, built in place: the
        // constraints and indexes a revision leaves unnamed get its names.
        sequence(
            w,
            "_naming",
            "naming",
            &ProjectSetup::default(),
            "alembic_version",
            &[
                "upgrade head --sql",
                "upgrade head",
                "downgrade base",
                "upgrade head",
            ],
        ),
        meshview_sequence(w),
        // SQL that fails after DDL and a batch copy ran: Alembic keeps what it did, ralembic
        // rolls the unit back (the whole run, then just the failing revision).
        sequence(
            w,
            "_fail",
            "fail-whole-run",
            &logging(),
            "alembic_version",
            &["!partial upgrade head"],
        ),
        sequence(
            w,
            "_fail",
            "fail-second-revision",
            &logging(),
            "alembic_version",
            &["upgrade f1", "!partial upgrade head"],
        ),
        // Data loops long enough for their statements to run on the worker thread: the rows
        // they leave, what they print, and a statement that fails mid-loop.
        sequence(
            w,
            "_loopfail",
            "loopfail",
            &logging(),
            "alembic_version",
            &[
                "upgrade l1",
                "downgrade base",
                "upgrade l1",
                "!partial upgrade head",
            ],
        ),
        // Thirty revisions in one run: their operations' statements and version rows are
        // queued on a worker thread across revisions, with reflection, batch blocks, a data
        // loop, prints and log lines in between; shorter runs of the same history run in
        // line. Then failures found only after later revisions ran: a bad index (l14), and
        // a version row the body deleted (l19).
        sequence(
            w,
            "_long",
            "long",
            &logging(),
            "alembic_version",
            &[
                "upgrade head",
                "downgrade base",
                "upgrade l20",
                "upgrade head",
                "downgrade l03",
            ],
        ),
        sequence(
            w,
            "_long",
            "long-fail-op",
            &logging(),
            "alembic_version",
            &["!partial -x fail=op upgrade head"],
        ),
        sequence(
            w,
            "_long",
            "long-fail-row",
            &logging(),
            "alembic_version",
            &["!partial -x fail=row upgrade head"],
        ),
        // Database errors caught in the body (a batch copy's: Alembic drops the new table
        // before it raises; what `e.orig`, `e.statement`, `e.args` and `e.code` give), then a
        // batch copy that fails with nothing to catch it.
        sequence(
            w,
            "_dberrors",
            "dberrors",
            &logging(),
            "alembic_version",
            &[
                "upgrade b3",
                "downgrade base",
                "upgrade b3",
                "!partial upgrade head",
            ],
        ),
        // One transaction per revision: the dry run of the whole plan finds the failure before
        // f1 is committed.
        sequence(
            w,
            "_fail",
            "fail-per-migration",
            &ProjectSetup {
                logging: true,
                configure_extra: "transaction_per_migration=True".into(),
            },
            "alembic_version",
            &["!partial upgrade head"],
        ),
    ];
    differential(&seqs, SEEDS, w).finish("differential_migrate");
}

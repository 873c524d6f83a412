//! SQL override files: a revision that imports the application's models cannot run natively;
//! without an override ralembic refuses the whole run before writing anything, with the
//! import's position; with `o2.sqlite.sql` next to it the statements replace the body, in the
//! same transaction and version bookkeeping. The oracle is Python Alembic running the same
//! history with o2's body written as plain `op` calls (what the override does).

mod common;

use common::migrate::observe_db;
use common::*;
use std::path::Path;

const REFERENCE_O2: &str = r#""""profiles, from the application's models

Revision ID: o2
Revises: o1
Create Date: 2026-11-25 12:01:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = "o2"
down_revision = "o1"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("bio", sa.Text()),
    )
    op.execute("INSERT INTO profiles (user_id, bio) SELECT id, 'new' FROM users")


def downgrade():
    op.drop_table("profiles")
"#;

fn run(bin: &Path, dir: &Path, line: &str) -> Outcome {
    let argv: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    run_tool(bin, dir, &argv, &CaseEnv::default())
}

fn ok(bin: &Path, dir: &Path, line: &str) -> Outcome {
    let out = run(bin, dir, line);
    assert_eq!(
        out.code,
        Some(0),
        "{} {line}: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn override_replaces_the_body_and_matches_python() {
    let work = tempfile::tempdir().unwrap();
    let fixture = repo_root().join("tests/fixtures/_override");
    let rs_dir = work.path().join("rs");
    let py_dir = work.path().join("py");
    copy_dir(&fixture, &rs_dir);
    copy_dir(&fixture, &py_dir);
    std::fs::write(py_dir.join("alembic/versions/o2_profiles.py"), REFERENCE_O2).unwrap();
    std::fs::remove_file(py_dir.join("alembic/versions/o2.sqlite.sql")).unwrap();
    let (py, rs) = (alembic_bin(), ralembic_bin());

    // Seed a user so the override's data statement has something to copy.
    for (bin, dir) in [(&py, &py_dir), (&rs, &rs_dir)] {
        ok(bin, dir, "upgrade o1");
        let conn = rusqlite::Connection::open(dir.join("test.db")).unwrap();
        conn.execute("INSERT INTO users (id, email) VALUES (7, 'a@b.c')", [])
            .unwrap();
    }
    for line in [
        "upgrade head",
        "downgrade o1",
        "upgrade o2",
        "downgrade base",
    ] {
        ok(&py, &py_dir, line);
        ok(&rs, &rs_dir, line);
        assert_eq!(
            observe_db(&py_dir.join("test.db"), "alembic_version"),
            observe_db(&rs_dir.join("test.db"), "alembic_version"),
            "after `{line}`"
        );
    }
    // Offline, the override's statements are the revision's SQL.
    let py_sql = ok(&py, &py_dir, "upgrade o1:o3 --sql");
    let rs_sql = ok(&rs, &rs_dir, "upgrade o1:o3 --sql");
    let text = String::from_utf8_lossy(&rs_sql.stdout);
    assert!(
        text.contains("INSERT INTO profiles (user_id, bio) SELECT id, 'new' FROM users;"),
        "{text}"
    );
    assert!(text.contains("CREATE UNIQUE INDEX ix_users_email ON users (email);"));
    assert_eq!(
        String::from_utf8_lossy(&py_sql.stdout)
            .matches("UPDATE alembic_version")
            .count(),
        text.matches("UPDATE alembic_version").count()
    );
}

#[test]
fn without_the_override_nothing_is_written() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("p");
    copy_dir(&repo_root().join("tests/fixtures/_override"), &dir);
    std::fs::remove_file(dir.join("alembic/versions/o2.sqlite.sql")).unwrap();
    let out = run(&ralembic_bin(), &dir, "upgrade head");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.code, Some(1), "{err}");
    assert!(
        err.contains(
            "o2_profiles.py:9:1: `from myapp.models import Profile` is not supported by ralembic: \
             ralembic runs revision bodies without the application's or third-party modules; \
             write this revision's SQL in an override file (<revision>.sqlite.sql next to it)"
        ),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    let (rows, schema) = observe_db(&dir.join("test.db"), "alembic_version");
    assert!(
        rows.is_empty() && schema.iter().all(|s| s.contains("alembic_version")),
        "{rows:?} {schema:?}"
    );
}

#[test]
fn an_override_without_the_needed_section_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("p");
    copy_dir(&repo_root().join("tests/fixtures/_override"), &dir);
    std::fs::write(
        dir.join("alembic/versions/o2.sqlite.sql"),
        "-- upgrade\nCREATE TABLE profiles (user_id INTEGER);\n",
    )
    .unwrap();
    ok(&ralembic_bin(), &dir, "upgrade head");
    let out = run(&ralembic_bin(), &dir, "downgrade base");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.code, Some(1), "{err}");
    assert!(
        err.contains("o2.sqlite.sql: no '-- downgrade' section"),
        "{err}"
    );
    assert_eq!(
        observe_db(&dir.join("test.db"), "alembic_version").0,
        vec!["o3"]
    );
}

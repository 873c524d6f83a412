//! MeshView's schema declaration (`alembic/schema.sql`) and its history (`alembic/versions/`)
//! agree: a database upgraded to head by ralembic shows no drift to `ralembic check`, with the
//! target named by alembic.ini's `ralembic.target_sql` or by `--target-sql`, and none to
//! Python Alembic's `check` either (its env.py given a `target_metadata` reflected from the
//! same SQL). A schema edited without a revision is reported.

mod common;

use std::path::Path;

use common::*;

const NO_DRIFT: &str = "No new upgrade operations detected.\n";

fn project(work: &Path) -> std::path::PathBuf {
    let project = work.join("meshview");
    std::fs::create_dir_all(&project).unwrap();
    copy_dir(&repo_root().join("alembic"), &project.join("alembic"));
    std::fs::copy(repo_root().join("alembic.ini"), project.join("alembic.ini")).unwrap();
    let _ = std::fs::remove_dir_all(project.join("alembic/versions/__pycache__"));
    project
}

fn ralembic(dir: &Path, args: &str) -> Outcome {
    run_tool(&ralembic_bin(), dir, &argv(args), &CaseEnv::default())
}

#[test]
fn history_and_schema_sql_agree() {
    let work = tempfile::tempdir().unwrap();
    let p = project(work.path());
    let up = ralembic(&p, "upgrade head");
    assert_eq!(up.code, Some(0), "{}", show(&up));

    if !self_check_mode() {
        for args in ["check", "check --target-sql alembic/schema.sql"] {
            let o = ralembic(&p, args);
            assert_eq!(
                (o.code, String::from_utf8_lossy(&o.stdout).as_ref()),
                (Some(0), NO_DRIFT),
                "`{args}`: {}",
                show(&o)
            );
        }

        // The check has teeth: a declared index the history does not create is drift.
        let schema = std::fs::read_to_string(p.join("alembic/schema.sql")).unwrap();
        let edited = schema.replace("CREATE INDEX idx_example_name ON example (name);\n", "");
        assert_ne!(schema, edited);
        std::fs::write(p.join("edited.sql"), edited).unwrap();
        let o = ralembic(&p, "check --target-sql edited.sql");
        assert_eq!(o.code, Some(255), "{}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).starts_with(
                "FAILED: New upgrade operations detected: [('remove_index', Index('idx_example_name', "
            ),
            "{}",
            show(&o)
        );
    }

    // Python Alembic on the same database: env.py gets a target reflected from schema.sql.
    let conn = rusqlite::Connection::open(p.join("target.db")).unwrap();
    conn.execute_batch(&std::fs::read_to_string(p.join("alembic/schema.sql")).unwrap())
        .unwrap();
    drop(conn);
    let env = p.join("alembic/env.py");
    let text = std::fs::read_to_string(&env).unwrap();
    let patched = text.replace(
        "target_metadata = None\n",
        "from sqlalchemy import MetaData\n\
         target_metadata = MetaData()\n\
         target_metadata.reflect(create_engine(\"sqlite:///target.db\"))\n",
    );
    assert_ne!(
        text, patched,
        "env.py no longer sets target_metadata = None"
    );
    std::fs::write(&env, patched).unwrap();
    let py = run_tool(&alembic_bin(), &p, &argv("check"), &CaseEnv::default());
    assert_eq!(
        (py.code, String::from_utf8_lossy(&py.stdout).as_ref()),
        (Some(0), NO_DRIFT),
        "{}",
        show(&py)
    );
}

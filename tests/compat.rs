//! `ralembic compat`: one line per revision (native, override, unsupported with the place and
//! the reason), a summary, exit 1 while anything cannot run.

mod common;

use common::*;

fn compat(dir: &std::path::Path, verbose: bool) -> Outcome {
    let mut argv = vec!["compat".to_string()];
    if verbose {
        argv.push("-v".into());
    }
    run_tool(&ralembic_bin(), dir, &argv, &CaseEnv::default())
}

#[test]
fn every_fixture_revision_that_the_migration_tests_run_is_native() {
    for fixture in ["_ops", "_fail", "linear", "merges"] {
        let out = compat(&repo_root().join("tests/fixtures").join(fixture), false);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.code, Some(0), "{fixture}:\n{text}");
        assert!(text.contains(" 0 unsupported"), "{fixture}:\n{text}");
    }
    let out = compat(&repo_root(), false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.code, Some(0), "{text}");
    assert!(
        text.ends_with("10 revisions: 10 native, 0 override, 0 unsupported\n"),
        "{text}"
    );
    assert!(
        text.starts_with("c88468b7ab0b      native       Initial schema"),
        "{text}"
    );
}

#[test]
fn overrides_and_refusals_are_reported() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("p");
    copy_dir(&repo_root().join("tests/fixtures/_override"), &dir);
    let out = compat(&dir, false);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "o1  native       users\no2  override     o2.sqlite.sql\no3  native       index emails\n\
         3 revisions: 2 native, 1 override, 0 unsupported\n"
    );
    assert_eq!(out.code, Some(0));

    std::fs::remove_file(dir.join("alembic/versions/o2.sqlite.sql")).unwrap();
    // A second refused place in the same file, found by attribute.
    let o2 = dir.join("alembic/versions/o2_profiles.py");
    let src = std::fs::read_to_string(&o2).unwrap().replace(
        "def downgrade():\n",
        "def downgrade():\n    op.run_async(None)\n",
    );
    std::fs::write(&o2, src).unwrap();
    let out = compat(&dir, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.code, Some(1), "{text}");
    let line = text.lines().nth(1).unwrap();
    assert!(
        line.starts_with("o2  unsupported  ")
            && line.contains("o2_profiles.py:9:1: `from myapp.models import Profile` is not supported by ralembic")
            && line.ends_with("(and 1 more; -v lists them)"),
        "{line}"
    );
    let out = compat(&dir, true);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("o2  unsupported  2 places:\n"), "{text}");
    assert!(
        text.contains("o2_profiles.py:23:5: `op.run_async` is not supported by ralembic"),
        "{text}"
    );
    assert!(text.ends_with("3 revisions: 2 native, 0 override, 1 unsupported\n"));
}

/// What only shows when a body runs is found by running the upgrades on a throwaway
/// in-memory database: the revision is reported unsupported at the place, and the run stops
/// there (the revisions after it keep the static verdict).
#[test]
fn a_refusal_found_by_running_is_reported() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("p");
    copy_dir(&repo_root().join("tests/fixtures/_override"), &dir);
    let o3 = std::fs::read_dir(dir.join("alembic/versions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("o3"))
        .unwrap();
    let src = std::fs::read_to_string(&o3).unwrap().replace(
        "def upgrade():\n",
        "def upgrade():\n    label = \"Emails\".casefold()\n",
    );
    std::fs::write(&o3, src).unwrap();
    let out = compat(&dir, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.code, Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..2],
        ["o1  native       users", "o2  override     o2.sqlite.sql"],
        "{text}"
    );
    assert!(
        lines[2].starts_with("o3  unsupported  ")
            && lines[2].contains("o3_")
            && lines[2].contains("`str.casefold()` is not supported by ralembic"),
        "{text}"
    );
    assert_eq!(
        lines[3],
        "(the dry run of the upgrades stopped at o3, which cannot run; the revisions after it \
         were read, not run)"
    );
    assert_eq!(lines[4], "3 revisions: 1 native, 1 override, 1 unsupported");
    // The throwaway database is in memory: the project's own is not created.
    assert!(!dir.join("test.db").exists());
}

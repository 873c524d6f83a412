//! Python and Rust services share one history: either tool upgrades part of the way, the
//! other finishes, and both read and downgrade the result. Every mixed path must leave the
//! same schema, data and version rows as Python Alembic alone, and `current` must print the
//! same on both sides.

mod common;

use common::migrate::observe_db;
use common::*;
use std::path::{Path, PathBuf};

type State = (Vec<String>, Vec<String>);

fn tool(which: &str) -> PathBuf {
    match which {
        "py" => alembic_bin(),
        _ => ralembic_bin(),
    }
}

fn run(which: &str, dir: &Path, line: &str) -> Outcome {
    let argv: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    let out = run_tool(&tool(which), dir, &argv, &CaseEnv::default());
    assert_eq!(
        out.code,
        Some(0),
        "{which} {line} in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `path` (tool, command) pairs on a fresh copy of `fixture`, returning the state after
/// each step and what `current` printed on each side at the end.
fn walk(fixture: &Path, db: &str, work: &Path, name: &str, path: &[(&str, &str)]) -> Vec<State> {
    let dir = work.join(name);
    copy_dir(fixture, &dir);
    let mut states = Vec::new();
    for (which, line) in path {
        run(which, &dir, line);
        states.push(observe_db(&dir.join(db), "alembic_version"));
        let py = run("py", &dir, "current");
        let rs = run("rs", &dir, "current");
        assert_eq!(
            String::from_utf8_lossy(&py.stdout),
            String::from_utf8_lossy(&rs.stdout),
            "{name}: `current` differs after {which} {line}"
        );
    }
    states
}

fn check(fixture: &Path, db: &str, mid: &str) {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let reference = walk(
        fixture,
        db,
        w,
        "python-only",
        &[
            ("py", &format!("upgrade {mid}")),
            ("py", "upgrade head"),
            ("py", &format!("downgrade {mid}")),
            ("py", "downgrade base"),
        ],
    );
    let mixes: [[&str; 4]; 3] = [
        ["py", "rs", "py", "rs"],
        ["rs", "py", "rs", "py"],
        ["rs", "rs", "py", "py"],
    ];
    for (m, tools) in mixes.iter().enumerate() {
        let lines = [
            format!("upgrade {mid}"),
            "upgrade head".to_string(),
            format!("downgrade {mid}"),
            "downgrade base".to_string(),
        ];
        let path: Vec<(&str, &str)> = tools
            .iter()
            .zip(&lines)
            .map(|(t, l)| (*t, l.as_str()))
            .collect();
        let got = walk(fixture, db, w, &format!("mix{m}"), &path);
        for (i, (want, have)) in reference.iter().zip(&got).enumerate() {
            assert_eq!(
                want,
                have,
                "{}: mix {tools:?}, step {i} ({} {}) leaves a different database than Python alone",
                fixture.display(),
                path[i].0,
                path[i].1
            );
        }
    }
}

#[test]
fn ops_fixture_mixed_tools() {
    check(&repo_root().join("tests/fixtures/_ops"), "test.db", "a2");
}

#[test]
fn meshview_history_mixed_tools() {
    // Our own project: alembic.ini + alembic/ at the repository root.
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("meshview");
    std::fs::create_dir_all(&project).unwrap();
    copy_dir(&repo_root().join("alembic"), &project.join("alembic"));
    std::fs::copy(repo_root().join("alembic.ini"), project.join("alembic.ini")).unwrap();
    let _ = std::fs::remove_dir_all(project.join("alembic/versions/__pycache__"));
    let _ = std::fs::remove_file(project.join("meshview.db"));
    check(&project, "meshview.db", "2b5a61bb2b75");
}

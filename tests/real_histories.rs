//! Real-world histories from published PyPI packages (downloaded by scripts/fetch-histories
//! into .cache/histories/, never committed): for each manifest row, a temp project with our
//! own env.py/script.py.mako points `version_locations` at the unpacked versions dir(s), and
//! `heads`, `heads -v`, `branches`, `history`, `history -v` must agree between the oracle and
//! `ralembic`.

mod common;

use common::*;
use std::collections::BTreeMap;

struct Row {
    name: String,
    package: String,
    version: String,
    dirs: Vec<String>,
    sys_path: Option<String>,
}

fn manifest() -> Vec<Row> {
    let path = repo_root().join(".cache/histories/manifest.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run scripts/fetch-histories (scripts/test does it for you)",
            path.display()
        )
    });
    let rows: Vec<Row> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "bad manifest line in {}: {l:?}", path.display());
            Row {
                name: f[0].into(),
                package: f[1].into(),
                version: f[2].into(),
                dirs: f[3].split(';').map(String::from).collect(),
                sys_path: (f[4] != "-").then(|| f[4].to_string()),
            }
        })
        .collect();
    assert!(
        rows.len() >= 5,
        "manifest lists only {} histories: rerun scripts/fetch-histories",
        rows.len()
    );
    rows
}

#[test]
fn real_histories_agree() {
    let rows = manifest();
    let tmp = tempfile::Builder::new()
        .prefix("ralembic-real-")
        .tempdir()
        .unwrap();
    let common_dir = repo_root().join("tests/fixtures/_common");
    let mut jobs = Vec::new();
    let mut labels = Vec::new();
    for row in &rows {
        for d in &row.dirs {
            assert!(
                std::path::Path::new(d).is_dir(),
                "{d} (from the manifest) is gone: rerun scripts/fetch-histories"
            );
        }
        let proj = tmp.path().join(&row.name);
        std::fs::create_dir_all(proj.join("alembic")).unwrap();
        for f in ["env.py", "script.py.mako"] {
            std::fs::copy(common_dir.join(f), proj.join("alembic").join(f)).unwrap();
        }
        let mut ini =
            String::from("[alembic]\nscript_location = %(here)s/alembic\npath_separator = os\n");
        ini.push_str(&format!("version_locations = {}\n", row.dirs.join(":")));
        if let Some(p) = &row.sys_path {
            ini.push_str(&format!("prepend_sys_path = {p}\n"));
        }
        ini.push_str("sqlalchemy.url = sqlite:///%(here)s/test.db\n");
        std::fs::write(proj.join("alembic.ini"), ini).unwrap();
        for cmd in ["heads", "heads -v", "branches", "history", "history -v"] {
            jobs.push(BatchJob {
                cwd: proj.clone(),
                argv: argv(cmd),
                env: BTreeMap::new(),
            });
            labels.push(format!(
                "{} ({}=={}) argv=`alembic {cmd}` (cwd {})",
                row.name,
                row.package,
                row.version,
                proj.display()
            ));
        }
    }
    let (py, rs) = std::thread::scope(|s| {
        let py = s.spawn(|| run_oracle_seeds(&jobs, 1, tmp.path()));
        let rs = run_candidate_many(&jobs, 2);
        (py.join().expect("oracle thread"), rs)
    });
    let mut report = Report::default();
    for (i, label) in labels.iter().enumerate() {
        // the oracle itself must succeed here, or the corpus is broken (not ralembic)
        if py[i][0].code != Some(0) {
            report.fail(format!(
                "oracle failed on real history {label}:\n{}",
                show(&py[i][0])
            ));
            continue;
        }
        report.record_multi(label, &py[i], &rs[i], Check::Full);
    }
    report.finish("real_histories");
}

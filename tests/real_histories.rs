//! Real-world histories from published PyPI packages (downloaded by scripts/fetch-histories
//! into .cache/histories/, never committed): for each manifest row, a temp project with our
//! own env.py/script.py.mako points `version_locations` at the unpacked versions dir(s), and
//! `heads`, `heads -v`, `branches`, `history`, `history -v` must agree between the oracle and
//! `ralembic`; and every revision the interpreter runs natively is migrated one step at a time
//! up, then back down, by both tools, compared after each step (schema, rows, version rows,
//! output) for as long as Python Alembic itself can run the history on SQLite.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// A project with our own env.py and script.py.mako whose `version_locations` are the
/// history's unpacked versions directories.
fn make_project(row: &Row, root: &Path, common_dir: &Path) -> PathBuf {
    let proj = root.join(&row.name);
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
    proj
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
        let proj = make_project(row, tmp.path(), &common_dir);
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

/// Revision ids oldest first, each with whether `ralembic compat` says ralembic runs it
/// (natively or by an override file).
fn compat_verdicts(proj: &Path) -> Vec<(String, bool)> {
    let out = run_tool(&ralembic_bin(), proj, &argv("compat"), &CaseEnv::default());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut revs = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with(' ')) {
        let mut words = line.split_whitespace();
        let (Some(id), Some(verdict)) = (words.next(), words.next()) else {
            continue;
        };
        if matches!(verdict, "native" | "override" | "unsupported") {
            revs.push((id.to_string(), verdict != "unsupported"));
        }
    }
    revs
}

#[test]
fn real_histories_migrate_like_python() {
    use common::migrate::{differential, run_oracle, Sequence};
    let rows = manifest();
    let tmp = tempfile::Builder::new()
        .prefix("ralembic-real-migrate-")
        .tempdir()
        .unwrap();
    let common_dir = repo_root().join("tests/fixtures/_common");
    let mut full = Vec::new();
    let mut shares = Vec::new();
    let mut verdicts = Vec::new();
    for row in &rows {
        let proj = make_project(row, &tmp.path().join("projects"), &common_dir);
        let revs = compat_verdicts(&proj);
        let runs = revs.iter().filter(|r| r.1).count();
        shares.push(format!(
            "{}: {runs} of {} run by ralembic",
            row.name,
            revs.len()
        ));
        verdicts.push(revs.clone());
        if runs == 0 {
            continue;
        }
        // Up one revision at a time, then down. A revision ralembic refuses is applied (or
        // undone) on its side by Python Alembic too, as a mixed team would, so the revisions
        // after it are still compared.
        let mut steps: Vec<Vec<String>> = Vec::new();
        let mut alembic_steps = Vec::new();
        for (id, runs) in &revs {
            if !runs {
                alembic_steps.push(steps.len());
            }
            steps.push(argv(&format!("upgrade {id}")));
        }
        for k in (0..revs.len()).rev() {
            if !revs[k].1 {
                alembic_steps.push(steps.len());
            }
            let target = if k == 0 {
                "base"
            } else {
                revs[k - 1].0.as_str()
            };
            steps.push(argv(&format!("downgrade {target}")));
        }
        full.push(Sequence {
            label: row.name.clone(),
            project: proj,
            db: "test.db".into(),
            version_table: "alembic_version".into(),
            steps,
            partial_in_alembic: Vec::new(),
            alembic_steps,
        });
    }
    eprintln!("real_histories_migrate_like_python: {}", shares.join("; "));
    // Where Python itself stops (a traceback: PostgreSQL-only DDL, an application import...),
    // its database is half-migrated; the comparison ends there.
    let probe = run_oracle(&full, &["0"], &tmp.path().join("probe"));
    let mut seqs = Vec::new();
    let mut islands = Vec::new();
    let native: Vec<&Vec<(String, bool)>> =
        verdicts.iter().filter(|v| v.iter().any(|r| r.1)).collect();
    for ((q, obs), revs) in full.into_iter().zip(&probe[0]).zip(native) {
        let stop = obs
            .iter()
            .position(|o| !matches!(o.outcome.code, Some(0) | Some(255)));
        let mut q = q;
        if let Some(k) = stop {
            eprintln!(
                "real_histories_migrate_like_python: {}: Python Alembic fails at step {k} (`{}`); compared up to there",
                q.label,
                q.steps[k].join(" ")
            );
            if q.alembic_steps.contains(&k) {
                q.steps.truncate(k);
            } else {
                q.steps.truncate(k + 1);
                q.partial_in_alembic = vec![k];
            }
            // The native revisions past that point, each on its own from a database stamped
            // at its parent: up, then down. Those Python runs that way are compared too.
            if k < revs.len() {
                for j in (k + 1).max(1)..revs.len() {
                    if !revs[j].1 {
                        continue;
                    }
                    let parent = &revs[j - 1].0;
                    islands.push(Sequence {
                        label: format!("{} {} alone", q.label, revs[j].0),
                        project: q.project.clone(),
                        db: "test.db".into(),
                        version_table: q.version_table.clone(),
                        steps: vec![
                            argv(&format!("stamp {parent}")),
                            argv(&format!("upgrade {}", revs[j].0)),
                            argv(&format!("downgrade {parent}")),
                        ],
                        partial_in_alembic: Vec::new(),
                        alembic_steps: Vec::new(),
                    });
                }
            }
        }
        seqs.push(q);
    }
    let island_probe = run_oracle(&islands, &["0"], &tmp.path().join("probe-islands"));
    let mut alone = Vec::new();
    for (q, obs) in islands.into_iter().zip(&island_probe[0]) {
        if obs.iter().all(|o| matches!(o.outcome.code, Some(0))) {
            alone.push(q.label.clone());
            seqs.push(q);
        }
    }
    eprintln!(
        "real_histories_migrate_like_python: {} revisions past Python's stop compared alone: {}",
        alone.len(),
        alone.join(", ")
    );
    differential(&seqs, &["0"], &tmp.path().join("run"))
        .finish("real_histories_migrate_like_python");
}

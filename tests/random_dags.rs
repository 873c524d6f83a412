//! Random-history differential test: a seeded generator writes hundreds of Alembic projects
//! (chains, branches, merges, several bases, branch labels, depends_on by id and by label,
//! shared id prefixes, varied file syntax), then `heads`, `branches`, `history`, `history -v`,
//! some `show`s and `history -r` ranges run through the oracle and through `ralembic`.
//!
//! The oracle is the real Alembic, batched: scripts/alembic-batch.py calls
//! `alembic.config.main(argv=...)` for many projects in one interpreter (two in parallel).
//!
//! Knobs: DAG_SEED (default below), DAG_COUNT (default 300), DAG_KEEP_DIR (where failing
//! projects are copied; default target/dag-failures).  A failure prints the seed and the
//! history index; rerun with the same DAG_SEED to reproduce.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const DEFAULT_SEED: u64 = 0x6d65_7368_7669_6577; // "meshview"
const DEFAULT_COUNT: usize = 300;

#[derive(Clone)]
struct Rev {
    id: String,
    down: Vec<String>,
    labels: Vec<String>,
    deps: Vec<String>,
    subdir: String,
}

struct History {
    revs: Vec<Rev>,
    recursive: bool,
}

fn generate(rng: &mut Rng, size: usize) -> History {
    let recursive = rng.chance(10);
    let mut revs: Vec<Rev> = Vec::new();
    let mut heads: Vec<usize> = Vec::new();
    let mut used = std::collections::HashSet::new();
    for k in 0..size {
        // ids: mostly 12 hex; some share a prefix with an earlier id; a few are short
        let id = loop {
            let cand = if !revs.is_empty() && rng.chance(15) {
                let base = &rng.pick(&revs).id;
                let keep = 1 + rng.below(base.len().min(8));
                format!("{}{}", &base[..keep], rng.hex(12 - keep))
            } else if rng.chance(5) {
                {
                    let n = 3 + rng.below(4);
                    rng.hex(n)
                }
            } else {
                rng.hex(12)
            };
            if used.insert(cand.clone()) {
                break cand;
            }
        };
        let down: Vec<String> = if k == 0 || rng.chance(7) {
            vec![]
        } else if heads.len() >= 2 && rng.chance(18) {
            let mut hs = heads.clone();
            let want = if hs.len() >= 3 && rng.chance(25) {
                3
            } else {
                2
            };
            let mut chosen = Vec::new();
            for _ in 0..want {
                let i = rng.below(hs.len());
                chosen.push(revs[hs.remove(i)].id.clone());
            }
            chosen
        } else if !heads.is_empty() && rng.chance(65) {
            vec![revs[*rng.pick(&heads)].id.clone()]
        } else {
            vec![rng.pick(&revs).id.clone()]
        };
        let mut labels = Vec::new();
        if rng.chance(10) {
            labels.push(format!("lbl{k}"));
            if rng.chance(20) {
                labels.push(format!("alt{k}"));
            }
        }
        let mut deps = Vec::new();
        if k > 0 && rng.chance(10) {
            let target = rng.pick(&revs).clone();
            if !target.labels.is_empty() && rng.chance(40) {
                deps.push(target.labels[0].clone());
            } else {
                deps.push(target.id.clone());
            }
            if k > 3 && rng.chance(20) {
                let other = rng.pick(&revs).id.clone();
                if !deps.contains(&other) {
                    deps.push(other);
                }
            }
        }
        let subdir = if recursive && rng.chance(50) {
            rng.pick(&["a", "b/c", "2025"]).to_string()
        } else {
            String::new()
        };
        // maintain heads
        heads.retain(|&h| !down.contains(&revs[h].id));
        heads.push(k);
        revs.push(Rev {
            id,
            down,
            labels,
            deps,
            subdir,
        });
    }
    History { revs, recursive }
}

fn lit(rng: &mut Rng, quote: &str, v: &[String], allow_scalar: bool) -> String {
    let q = |s: &str| format!("{quote}{s}{quote}");
    match v.len() {
        0 => "None".into(),
        1 if allow_scalar && rng.chance(70) => q(&v[0]),
        1 => {
            if rng.chance(50) {
                format!("({},)", q(&v[0]))
            } else {
                format!("[{}]", q(&v[0]))
            }
        }
        _ => {
            let items: Vec<String> = v.iter().map(|s| q(s)).collect();
            if rng.chance(50) {
                format!("({})", items.join(", "))
            } else {
                format!("[{}]", items.join(", "))
            }
        }
    }
}

fn render(rng: &mut Rng, r: &Rev, idx: usize) -> Vec<u8> {
    let quote = *rng.pick(&["\"", "'", "\"\"\"", "'''"]);
    let typed = rng.chance(40);
    let msg = rng
        .pick(&[
            "add table",
            "drop column",
            "merge heads",
            "tweak index",
            "",
            "unicode café ✓",
        ])
        .to_string();
    let mut lines: Vec<String> = Vec::new();
    if rng.chance(20) {
        lines.push("# generated revision file".into());
    }
    match rng.below(5) {
        0 => {}
        1 => lines.push(format!("\"\"\"{msg} {idx}\"\"\"")),
        2 => lines.extend([
            format!("\"\"\"{msg} {idx}"),
            String::new(),
            format!("Revision ID: {}", r.id),
            format!("Revises: {}", r.down.join(", ")),
            "Create Date: 2025-01-02 03:04:05.000006".into(),
            String::new(),
            "\"\"\"".into(),
        ]),
        3 => lines.extend([
            format!("'''{msg} {idx}"),
            String::new(),
            "A second paragraph that history -v shows".into(),
            "    with an indented line.".into(),
            "'''".into(),
        ]),
        _ => lines.extend([
            format!("\"\"\"Revision {idx}: {msg}"),
            String::new(),
            format!("Revision ID: {}", r.id),
            "\"\"\"".into(),
        ]),
    }
    lines.push("from alembic import op".into());
    lines.push("import sqlalchemy as sa".into());
    if typed {
        lines.push("from typing import Sequence, Union".into());
    }
    lines.push(String::new());
    let down = lit(rng, quote, &r.down, true);
    let labels = lit(rng, quote, &r.labels, true);
    let deps = lit(rng, quote, &r.deps, true);
    if typed {
        lines.push(format!("revision: str = {quote}{}{quote}", r.id));
        lines.push(format!(
            "down_revision: Union[str, Sequence[str], None] = {down}"
        ));
        lines.push(format!(
            "branch_labels: Union[str, Sequence[str], None] = {labels}"
        ));
        lines.push(format!(
            "depends_on: Union[str, Sequence[str], None] = {deps}"
        ));
    } else {
        lines.push(format!("revision = {quote}{}{quote}", r.id));
        lines.push(format!("down_revision = {down}"));
        if !r.labels.is_empty() || rng.chance(50) {
            lines.push(format!("branch_labels = {labels}"));
        }
        if !r.deps.is_empty() || rng.chance(50) {
            lines.push(format!("depends_on = {deps}"));
        }
    }
    let ind = if rng.chance(10) { "\t" } else { "    " };
    lines.extend([
        "".into(),
        "".into(),
        "def upgrade():".into(),
        format!("{ind}pass"),
        "".into(),
    ]);
    lines.extend([
        "".into(),
        "def downgrade():".into(),
        format!("{ind}pass"),
        "".into(),
    ]);
    let eol = if rng.chance(8) { "\r\n" } else { "\n" };
    let mut bytes = Vec::new();
    if rng.chance(5) {
        bytes.extend_from_slice(b"\xEF\xBB\xBF");
    }
    bytes.extend_from_slice(lines.join(eol).as_bytes());
    bytes
}

fn write_project(rng: &mut Rng, h: &History, dir: &Path) {
    let common = repo_root().join("tests/fixtures/_common");
    std::fs::create_dir_all(dir.join("alembic/versions")).unwrap();
    for f in ["env.py", "script.py.mako"] {
        std::fs::copy(common.join(f), dir.join("alembic").join(f)).unwrap();
    }
    let mut ini = String::from("[alembic]\nscript_location = %(here)s/alembic\nsqlalchemy.url = sqlite:///%(here)s/test.db\n");
    if h.recursive {
        ini.push_str("recursive_version_locations = true\n");
    }
    std::fs::write(dir.join("alembic.ini"), ini).unwrap();
    for (i, r) in h.revs.iter().enumerate() {
        let vdir = dir.join("alembic/versions").join(&r.subdir);
        std::fs::create_dir_all(&vdir).unwrap();
        let name = if rng.chance(70) {
            format!("{}_rev_{i}.py", r.id)
        } else {
            format!("m{i:03}.py")
        };
        let bytes = render(rng, r, i);
        std::fs::write(vdir.join(name), bytes).unwrap();
    }
}

fn commands(rng: &mut Rng, h: &History) -> Vec<Vec<String>> {
    let mut cmds: Vec<String> = [
        "heads",
        "heads --resolve-dependencies",
        "branches",
        "history",
        "history -v",
    ]
    .map(String::from)
    .to_vec();
    let ids: Vec<&String> = h.revs.iter().map(|r| &r.id).collect();
    let a = ids[rng.below(ids.len())];
    let b = ids[rng.below(ids.len())];
    cmds.push(format!("show {a}"));
    cmds.push(format!("show {}", &b[..b.len().min(4)]));
    let range = match rng.below(6) {
        0 => format!("{a}:"),
        1 => format!(":{a}"),
        2 => format!("{a}:{b}"),
        3 => format!("base:{}", &a[..a.len().min(6)]),
        4 => format!("{a}:heads"),
        _ => "-2:".to_string(),
    };
    cmds.push(format!("history --rev-range={range}"));
    if let Some(r) = h.revs.iter().find(|r| !r.labels.is_empty()) {
        cmds.push(format!("show {}@head", r.labels[0]));
        cmds.push(format!("history -r {}@base:", r.labels[0]));
    }
    cmds.into_iter().map(|c| argv(&c)).collect()
}

#[test]
fn random_histories_agree() {
    let seed = knob("DAG_SEED", DEFAULT_SEED);
    let count = knob("DAG_COUNT", DEFAULT_COUNT);
    let keep_root = std::env::var_os("DAG_KEEP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/dag-failures"));
    eprintln!("random_dags: DAG_SEED={seed} DAG_COUNT={count}");

    let tmp = tempfile::Builder::new()
        .prefix("ralembic-dags-")
        .tempdir()
        .unwrap();
    let mut rng = Rng(seed);
    let mut jobs: Vec<BatchJob> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    let mut histories = Vec::new();
    for i in 0..count {
        // sizes 1-40, small ones more often
        let size = if rng.chance(50) {
            1 + rng.below(10)
        } else {
            1 + rng.below(40)
        };
        let h = generate(&mut rng, size);
        let dir = tmp.path().join(format!("h{i:04}"));
        write_project(&mut rng, &h, &dir);
        for argv in commands(&mut rng, &h) {
            jobs.push(BatchJob {
                cwd: dir.clone(),
                argv,
                env: BTreeMap::new(),
            });
            owner.push(i);
        }
        histories.push((dir, h.revs.len()));
    }
    eprintln!(
        "random_dags: {} histories, {} command lines per side",
        count,
        jobs.len()
    );

    let (mut py, rs) = std::thread::scope(|s| {
        let py = s.spawn(|| run_oracle_seeds(&jobs, 2, tmp.path()));
        let rs = run_candidate_many(&jobs, 2);
        (py.join().expect("oracle thread"), rs)
    });
    let widened = widen_oracle_seeds(&jobs, &mut py, &rs, Check::Full, tmp.path());
    eprintln!(
        "random_dags: {widened} command line(s) rerun under {} more hash seeds",
        MORE_ORACLE_HASH_SEEDS.len()
    );

    let mut report = Report::default();
    let mut failed_histories = std::collections::BTreeSet::new();
    let mut exit_codes: BTreeMap<Option<i32>, usize> = BTreeMap::new();
    for (j, job) in jobs.iter().enumerate() {
        *exit_codes.entry(py[j][0].code).or_default() += 1;
        let label = format!(
            "DAG_SEED={seed} history #{} ({} revisions) argv=`alembic {}` (cwd {})",
            owner[j],
            histories[owner[j]].1,
            job.argv.join(" "),
            job.cwd.display()
        );
        let before = report.failures.len();
        if failed_histories.len() < 20 || !failed_histories.contains(&owner[j]) {
            report.record_multi(&label, &py[j], &rs[j], Check::Full);
        } else if compare_multi(&py[j], &rs[j], Check::Full).is_err() {
            report.fail(format!("=== MISMATCH {label} (details omitted)"));
        } else {
            report.passed += 1;
        }
        if report.failures.len() > before {
            failed_histories.insert(owner[j]);
        }
    }
    // sanity: the generator must produce mostly valid histories, or the test proves little
    let ok = exit_codes.get(&Some(0)).copied().unwrap_or(0);
    let mut summary = String::new();
    let _ = write!(summary, "oracle exit statuses: {exit_codes:?}");
    eprintln!("random_dags: {summary}");
    assert!(
        ok * 10 >= jobs.len() * 6,
        "fewer than 60% of oracle runs succeeded ({summary}): generator is broken"
    );

    if !failed_histories.is_empty() {
        std::fs::create_dir_all(&keep_root).unwrap();
        let mut kept = Vec::new();
        for &i in &failed_histories {
            let dst = keep_root.join(format!("seed-{seed}-h{i:04}"));
            let _ = std::fs::remove_dir_all(&dst);
            copy_dir(&histories[i].0, &dst);
            kept.push(dst.display().to_string());
        }
        report.fail(format!(
            "DAG_SEED={seed}: {} failing histories kept for inspection (paths inside differ from the run's tmp dir):\n  {}",
            kept.len(),
            kept.join("\n  ")
        ));
    }
    report.finish(&format!("random_dags (DAG_SEED={seed})"));
}

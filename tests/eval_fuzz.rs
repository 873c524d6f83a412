//! The interpreter on mutated revision bodies: whatever the mutation, `ralembic upgrade head`
//! never panics, a failure is reported on stderr (positioned when it comes from a body), and a
//! failed run leaves the database exactly as it was. Endless loops stop at the step limit
//! (lowered here with RALEMBIC_STEP_LIMIT).
//!
//! Knobs: EVAL_FUZZ_SEED, EVAL_FUZZ_CASES (default 100).

mod common;

use common::migrate::observe_db;
use common::*;
use std::path::Path;

const MUTANTS: &[&str] = &[
    "None",
    "0",
    "-1",
    "''",
    "[]",
    "{}",
    "op",
    "sa",
    "x",
    "1 / 0",
    "op.get_bind()",
    "sa.text('SELECT')",
    "'node'",
    "True",
];

fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut lines: Vec<String> = src.lines().map(str::to_owned).collect();
    // Only touch the bodies: the module header keeps the revision graph intact.
    let Some(first_def) = lines.iter().position(|l| l.starts_with("def ")) else {
        return src.to_string();
    };
    let n = lines.len();
    let pick = |rng: &mut Rng| first_def + 1 + rng.below((n - first_def - 1).max(1));
    match rng.below(6) {
        0 => {
            let i = pick(rng);
            if i < lines.len() {
                lines.remove(i);
            }
        }
        1 => {
            let i = pick(rng);
            if i < lines.len() {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
        }
        2 => {
            let (i, j) = (pick(rng), pick(rng));
            if i < lines.len() && j < lines.len() {
                lines.swap(i, j);
            }
        }
        3 => {
            // Replace a string, number or name token inside a body line.
            let i = pick(rng);
            if let Some(line) = lines.get_mut(i) {
                let words: Vec<(usize, usize)> = line
                    .char_indices()
                    .filter(|(k, c)| {
                        (c.is_alphanumeric() || *c == '"')
                            && (*k == 0 || !line[..*k].ends_with(|p: char| p.is_alphanumeric()))
                    })
                    .map(|(k, _)| {
                        let end = line[k..]
                            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '"'))
                            .map_or(line.len(), |e| k + e);
                        (k, end)
                    })
                    .collect();
                if !words.is_empty() {
                    let (a, b) = words[rng.below(words.len())];
                    let m = rng.pick(MUTANTS);
                    line.replace_range(a..b, m);
                }
            }
        }
        4 => {
            let i = pick(rng);
            let indent = lines
                .get(i)
                .map(|l| l.len() - l.trim_start().len())
                .filter(|w| *w > 0)
                .unwrap_or(4);
            lines.insert(
                i.min(lines.len()),
                format!(
                    "{}while True:\n{}    pass",
                    " ".repeat(indent),
                    " ".repeat(indent)
                ),
            );
        }
        _ => {
            let i = pick(rng);
            let indent = lines
                .get(i)
                .map(|l| l.len() - l.trim_start().len())
                .filter(|w| *w > 0)
                .unwrap_or(4);
            let m = rng.pick(MUTANTS);
            lines.insert(
                i.min(lines.len()),
                format!(
                    "{}{m}.{}({m})",
                    " ".repeat(indent),
                    rng.pick(&[
                        "execute",
                        "create_table",
                        "add_column",
                        "drop_table",
                        "get",
                        "items",
                        "c",
                        "where"
                    ])
                ),
            );
        }
    }
    lines.join("\n") + "\n"
}

fn python_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    v.sort();
    v
}

#[test]
fn mutated_bodies_never_panic_nor_write_half() {
    let seed = knob("EVAL_FUZZ_SEED", 0x6576_616c_u64);
    let cases: usize = knob("EVAL_FUZZ_CASES", 100);
    eprintln!("eval_fuzz: EVAL_FUZZ_SEED={seed} EVAL_FUZZ_CASES={cases}");
    let mut rng = Rng(seed);
    let work = tempfile::tempdir().unwrap();
    let fixture = repo_root().join("tests/fixtures/_ops");
    let files = python_files(&fixture.join("alembic/versions"));
    // Mutated files would only fill the user's parse cache.
    let cache = work.path().join("cache");
    let env = CaseEnv {
        set: vec![
            ("RALEMBIC_STEP_LIMIT".into(), "200000".into()),
            ("RALEMBIC_CACHE_DIR".into(), cache.display().to_string()),
        ],
    };
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for case in 0..cases {
        let dir = work.path().join(format!("c{case}"));
        copy_dir(&fixture, &dir);
        // Start from the second revision so downgrades and data have something to work on.
        let out = run_tool(
            &ralembic_bin(),
            &dir,
            &["upgrade".into(), "a1".into()],
            &env,
        );
        assert_eq!(
            out.code,
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let victim = rng.pick(&files).clone();
        let name = victim.file_name().unwrap().to_owned();
        let target = dir.join("alembic/versions").join(&name);
        let src = std::fs::read_to_string(&target).unwrap();
        let mutated = mutate(&mut rng, &src);
        std::fs::write(&target, &mutated).unwrap();
        let before = observe_db(&dir.join("test.db"), "alembic_version");
        let out = run_tool(
            &ralembic_bin(),
            &dir,
            &["upgrade".into(), "head".into()],
            &env,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.code, Some(0 | 1 | 255)),
            "case {case} ({name:?}): exit {:?} (a panic?)\n{err}\n--- mutated file:\n{mutated}",
            out.code
        );
        assert!(!err.contains("panicked"), "case {case}: {err}");
        if out.code != Some(0) {
            assert!(
                !err.trim().is_empty() || !out.stdout.is_empty(),
                "case {case}: failed silently"
            );
            assert_eq!(
                observe_db(&dir.join("test.db"), "alembic_version"),
                before,
                "case {case} ({name:?}): a failed run changed the database\n{err}"
            );
        }
        // The exception class that ended the run, or the exit status.
        let kind = err
            .split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_'))
            .rfind(|w| w.ends_with("Error") || w.ends_with("Exception"))
            .map_or_else(|| format!("exit {:?}", out.code), str::to_string);
        *outcomes.entry(kind).or_default() += 1;
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!("eval_fuzz: outcomes {outcomes:?}");
}

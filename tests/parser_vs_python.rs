//! Our parser must read every file exactly as CPython does: for each Python file in the
//! fixtures, in the downloaded real histories (`.cache/histories`) and in any directory named
//! by `PARSER_CORPUS` (colon-separated; e.g. CPython's stdlib for a stress run), CPython's
//! `ast` (rendered by scripts/pyast-dump) and ours (rendered by `script::dump`) must be
//! identical, and a file CPython rejects must be rejected by us on the same line.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use meshview::alembic_compat::script::{dump::dump_module, parse::PARSER_STACK_SIZE, parse_module};

fn python() -> PathBuf {
    std::env::var_os("ALEMBIC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "py") {
            out.push(p);
        }
    }
}

#[derive(Debug)]
enum Py {
    Dump(String),
    Error(String),
    Unsupported,
}

fn python_dumps(files: &[PathBuf]) -> HashMap<String, Py> {
    let py = python();
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup-venv (scripts/test does)",
        py.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pyast-dump");
    let mut child = Command::new(&py)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run scripts/pyast-dump");
    let list: String = files.iter().map(|p| format!("{}\n", p.display())).collect();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(list.as_bytes()));
    let out = child.wait_with_output().expect("pyast-dump output");
    writer.join().expect("writer").expect("write paths");
    assert!(out.status.success(), "pyast-dump failed");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut map = HashMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let path = v["path"].as_str().unwrap_or_default().to_string();
        let r = if let Some(d) = v["dump"].as_str() {
            Py::Dump(d.to_string())
        } else if let Some(e) = v["error"].as_str() {
            Py::Error(e.to_string())
        } else {
            Py::Unsupported
        };
        map.insert(path, r);
    }
    map
}

#[test]
fn parser_reads_files_as_cpython_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("tests/fixtures"), &mut files);
    // The versions directories of the real histories (scripts/fetch-histories lists them).
    let manifest = root.join(".cache/histories/manifest.tsv");
    let manifest = std::fs::read_to_string(&manifest).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run scripts/fetch-histories (scripts/test does)",
            manifest.display()
        )
    });
    for line in manifest.lines().skip(1) {
        for dir in line.split('\t').nth(3).unwrap_or_default().split(';') {
            collect(Path::new(dir), &mut files);
        }
    }
    if let Some(extra) = std::env::var_os("PARSER_CORPUS") {
        for d in std::env::split_paths(&extra) {
            collect(&d, &mut files);
        }
    }
    assert!(
        files.len() > 20,
        "expected a corpus of Python files, found {}",
        files.len()
    );
    let py = python_dumps(&files);

    let files2 = files.clone();
    let ours: Vec<Result<String, (usize, String)>> = std::thread::Builder::new()
        .stack_size(PARSER_STACK_SIZE)
        .spawn(move || {
            files2
                .iter()
                .map(|p| {
                    let path = p.display().to_string();
                    let bytes = std::fs::read(p).unwrap_or_default();
                    let src = String::from_utf8_lossy(&bytes);
                    parse_module(&path, &src)
                        .map(|m| dump_module(&m))
                        .map_err(|e| (e.line, e.to_string()))
                })
                .collect()
        })
        .expect("spawn")
        .join()
        .expect("parser thread");

    let mut failures = Vec::new();
    let mut unsupported = 0;
    for (p, ours) in files.iter().zip(ours) {
        let key = p.display().to_string();
        match (py.get(&key), ours) {
            (Some(Py::Dump(a)), Ok(b)) if *a == b => {}
            (Some(Py::Dump(a)), Ok(b)) => {
                let i = a
                    .bytes()
                    .zip(b.bytes())
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.len().min(b.len()));
                let lo = i.saturating_sub(150);
                failures.push(format!(
                    "{key}: AST differs at byte {i}\n  python: ...{}\n  ours:   ...{}",
                    a.get(lo..(i + 150).min(a.len())).unwrap_or(""),
                    b.get(lo..(i + 150).min(b.len())).unwrap_or("")
                ));
            }
            (Some(Py::Dump(_)), Err((_, e))) => {
                failures.push(format!("{key}: python parses it, we fail: {e}"))
            }
            (Some(Py::Error(e)), Ok(_)) => {
                failures.push(format!("{key}: python rejects it ({e}), we accept it"))
            }
            (Some(Py::Error(e)), Err((line, ours))) => {
                let py_line: Option<usize> = e
                    .strip_prefix(&format!("{key}:"))
                    .and_then(|r| r.split(':').next())
                    .and_then(|l| l.parse().ok());
                if py_line != Some(line) {
                    failures.push(format!(
                        "{key}: error on another line\n  python: {e}\n  ours:   {ours}"
                    ));
                }
            }
            (Some(Py::Unsupported), _) => unsupported += 1,
            (None, _) => failures.push(format!("{key}: no answer from pyast-dump")),
        }
    }
    eprintln!(
        "parser_vs_python: {} files, {} outside the supported subset",
        files.len(),
        unsupported
    );
    assert!(
        failures.is_empty(),
        "{} of {} files differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

//! The parser never panics: real-looking revision files, mutated at random (bytes deleted,
//! inserted, replaced, lines duplicated or spliced from other files), either parse or give a
//! positioned error whose line and column lie inside the file.

use std::path::Path;

use meshview::alembic_compat::script::{parse::PARSER_STACK_SIZE, parse_module, ScriptMeta};
use proptest::prelude::*;

fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/_python_syntax");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/_python_syntax")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned())
        .collect()
}

/// Tokens that stress the grammar's edges when spliced in.
const SPLICES: &[&str] = &[
    "(", ")", "[", "]", "{", "}", "'", "\"", "\"\"\"", "'''", "\\\n", "\n", "\r\n", "\t", "    ",
    ":", "=", "f'{", "}", "#", "lambda", "if", "else", "elif", "def", "class", "yield", "*", "**",
    ",", ".", "@", "\u{feff}", "é", "0x", "1e", "j", "not", "in", "is", ";", "\\", "b'", "r'",
    "rb\"", "{{", "}}",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, usize),
    Replace(usize, usize),
    DuplicateLine(usize),
    SpliceFrom(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, t)| Mutation::Replace(a, t)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(f, a, b)| Mutation::SpliceFrom(f, a, b)),
    ]
}

fn floor_char(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(corpus: &[String], mut src: String, muts: &[Mutation]) -> String {
    for m in muts {
        let len = src.len().max(1);
        match *m {
            Mutation::Delete(a, n) => {
                let a = floor_char(&src, a % len);
                let b = floor_char(&src, a + n);
                src.replace_range(a..b, "");
            }
            Mutation::Insert(a, t) => {
                let a = floor_char(&src, a % len);
                src.insert_str(a, SPLICES[t % SPLICES.len()]);
            }
            Mutation::Replace(a, t) => {
                let a = floor_char(&src, a % len);
                let b = floor_char(&src, a + 1 + (t % 3));
                src.replace_range(a..b, SPLICES[t % SPLICES.len()]);
            }
            Mutation::DuplicateLine(l) => {
                let lines: Vec<&str> = src.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    let i = l % lines.len();
                    let mut out: String = lines[..=i].concat();
                    out.push_str(lines[i]);
                    out.push_str(&lines[i + 1..].concat());
                    src = out;
                }
            }
            Mutation::SpliceFrom(f, a, b) => {
                let other = &corpus[f % corpus.len()];
                let x = floor_char(other, a % other.len().max(1));
                let y = floor_char(other, x + b % 200);
                let at = floor_char(&src, a % len);
                src.insert_str(at, &other[x..y]);
            }
        }
    }
    src
}

fn check(path: &str, src: &str) {
    match parse_module(path, src) {
        Ok(module) => {
            let _ = ScriptMeta::from_module(path, src, &module);
        }
        Err(e) => {
            let lines = src.split('\n').count();
            assert!(
                e.line >= 1 && e.line <= lines,
                "line {} outside 1..={lines}: {e}",
                e.line
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("{path}:{}:{}: ", e.line, e.col)),
                "{e}"
            );
        }
    }
}

#[test]
fn mutated_revision_files_never_panic() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 5,
        "tests/fixtures/_python_syntax holds the seed corpus"
    );
    // The parser needs a deep stack for the nesting it accepts, like the loader gives it.
    let handle = std::thread::Builder::new()
        .stack_size(PARSER_STACK_SIZE)
        .spawn(move || {
            let config = ProptestConfig {
                cases: 1500,
                failure_persistence: None,
                ..ProptestConfig::default()
            };
            let mut runner = proptest::test_runner::TestRunner::new(config);
            let strategy = (0..corpus.len(), prop::collection::vec(mutation(), 1..6));
            let result = runner.run(&strategy, |(i, muts)| {
                let src = apply(&corpus, corpus[i].clone(), &muts);
                check("fuzz.py", &src);
                Ok(())
            });
            if let Err(e) = result {
                panic!("{e}");
            }
        })
        .expect("spawn");
    handle
        .join()
        .expect("the parser panicked on a mutated file");
}

#[test]
fn pathological_nesting_is_an_error_not_a_crash() {
    let handle = std::thread::Builder::new()
        .stack_size(PARSER_STACK_SIZE)
        .spawn(|| {
            let deep = format!("x = {}1{}\n", "(".repeat(500), ")".repeat(500));
            let e = parse_module("deep.py", &deep).expect_err("too deep");
            assert!(e.message.contains("too many nested parentheses"), "{e}");
            let ok = format!("x = {}1{}\n", "(".repeat(150), ")".repeat(150));
            parse_module("ok.py", &ok).expect("150 levels are fine, as in CPython");
            let nots = format!("x = {}True\n", "not ".repeat(2000));
            let _ = parse_module("nots.py", &nots);
            let unary = format!("x = {}1\n", "-".repeat(5000));
            let _ = parse_module("unary.py", &unary);
        })
        .expect("spawn");
    handle.join().expect("no stack overflow or panic");
}

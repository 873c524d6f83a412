//! The interpreter against CPython: every file in tests/fixtures/_eval defines `upgrade()`
//! that prints what it computes. CPython (the test venv's) runs it with `runpy`; ralembic's
//! interpreter runs it with a host that collects `print()` output. The outputs must match.

mod common;

use common::*;
use meshview::alembic_compat::eval::{run_revision_function, Host, HostError, QueryOutput};
use meshview::alembic_compat::ops::{Literal, Op, SourcePos};
use meshview::alembic_compat::script::parse_module;
use std::process::Command;

#[derive(Default)]
struct Collect {
    out: String,
}

impl Host for Collect {
    fn is_offline(&self) -> bool {
        false
    }
    fn apply(&mut self, op: &Op, _: &SourcePos, _: bool) -> Result<(), HostError> {
        self.out.push_str(&format!("<op {op:?}>\n"));
        Ok(())
    }
    /// No database here: every statement returns nothing.
    fn query(&mut self, _: &str, _: &[Literal]) -> Result<QueryOutput, HostError> {
        Ok(QueryOutput::default())
    }
    fn x_arguments(&self) -> Vec<String> {
        Vec::new()
    }
    fn print(&mut self, text: &str) {
        self.out.push_str(text);
    }
    fn log(&mut self, _: u32, _: &str, _: &str) {}
}

#[test]
fn interpreter_prints_what_cpython_prints() {
    let dir = repo_root().join("tests/fixtures/_eval");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "eval corpus missing");
    let mut failures = Vec::new();
    for f in &files {
        let py = Command::new(venv_python())
            .args([
                "-c",
                "import runpy, sys; runpy.run_path(sys.argv[1])['upgrade']()",
            ])
            .arg(f)
            .output()
            .expect("run python");
        assert!(
            py.status.success(),
            "{} fails under CPython: {}",
            f.display(),
            String::from_utf8_lossy(&py.stderr)
        );
        let expected = String::from_utf8_lossy(&py.stdout).into_owned();
        let src = std::fs::read_to_string(f).unwrap();
        let module = parse_module(&f.display().to_string(), &src).unwrap();
        let mut host = Collect::default();
        let result = run_revision_function(f, &src, &module, "upgrade", &mut host);
        if let Err(e) = result {
            failures.push(format!(
                "{}: interpreter failed: {e}\noutput so far:\n{}",
                f.display(),
                host.out
            ));
            continue;
        }
        if host.out != expected {
            failures.push(format!(
                "{}:\n{}",
                f.display(),
                unified_diff(expected.as_bytes(), host.out.as_bytes())
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What Python has and ralembic leaves out is refused at its position, never raised as the
/// AttributeError or NameError a body's `except` could take for Python's answer.
#[test]
fn unmodelled_python_is_refused_not_caught() {
    let cases = [
        ("\"Straße\".casefold()", "str.casefold"),
        ("hash(1)", "hash"),
        ("sa.select(sa.column('x')).subquery()", "subquery"),
        ("sa.column('x').op('||')('y')", ".op"),
        ("datetime.date(2024, 1, 1).toordinal()", "toordinal"),
        ("time.strftime('%Y')", "time.strftime"),
        ("textwrap.fill('a b')", "textwrap.fill"),
        ("math.fsum([0.1])", "math.fsum"),
        (
            "op.get_bind().execute(sa.text('SELECT 1')).lastrowid",
            "lastrowid",
        ),
        ("op.get_context().impl", "MigrationContext.impl"),
    ];
    for (expr, what) in cases {
        let src = format!(
            "import datetime\nimport math\nimport textwrap\nimport time\n\
             import sqlalchemy as sa\nfrom alembic import op\n\ndef upgrade():\n    try:\n        {expr}\n    \
             except (AttributeError, NameError, TypeError):\n        print('caught')\n"
        );
        let path = std::path::Path::new("refusal.py");
        let module = parse_module("refusal.py", &src).unwrap();
        let mut host = Collect::default();
        let outcome = run_revision_function(path, &src, &module, "upgrade", &mut host);
        match outcome {
            Err(meshview::alembic_compat::eval::EvalError::Unsupported {
                what: w, pos, ..
            }) => {
                assert!(w.contains(what), "{expr}: refused as {w:?}");
                assert_eq!((pos.line, pos.col), (10, 9), "{expr}: position");
            }
            other => panic!("{expr}: expected a refusal, got {other:?} ({:?})", host.out),
        }
    }
}

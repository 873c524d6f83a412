//! Differential tests of the history-writing commands (`init`, `list_templates`, `revision`,
//! `merge`): Python Alembic runs in one project directory, ralembic in a twin; after every
//! command the exit status, stdout (project paths replaced by `<P>`) and the whole project tree
//! (every file's bytes, with the `Create Date:` line normalised because both tools write the
//! current time) must be the same.
//!
//! Then a round trip: the history ralembic wrote is upgraded by Python Alembic and by ralembic
//! on separate SQLite databases, and every generated file must parse with Python's `ast` and
//! with our parser.
//!
//! Self-check: `RALEMBIC_BIN=$PWD/.venv/bin/alembic cargo test --test write_history`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Two twin projects: `py` is driven by Python Alembic, `rs` by ralembic.
struct Twins {
    _tmp: tempfile::TempDir,
    py: PathBuf,
    rs: PathBuf,
    failures: Vec<String>,
}

fn normalise_out(out: &[u8], dir: &Path) -> String {
    String::from_utf8_lossy(out).replace(&dir.display().to_string(), "<P>")
}

/// Dates both tools derive from "now": the `Create Date:` line and date/epoch tokens in file
/// names (`YYYY_MM_DD`, 10-digit epochs).
fn normalise_dates(s: &str) -> String {
    let create = regex::Regex::new(r"(?m)^Create Date: .*$").unwrap();
    let date = regex::Regex::new(r"\d{4}_\d{2}_\d{2}(_\d{4})?").unwrap();
    let epoch = regex::Regex::new(r"\b\d{10}\b").unwrap();
    let s = create.replace_all(s, "Create Date: <DATE>");
    let s = date.replace_all(&s, "<YMD>");
    epoch.replace_all(&s, "<EPOCH>").into_owned()
}

/// Every file under `dir` (relative path -> normalised content); `.db` files are skipped.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                if e.file_name() == "__pycache__" {
                    continue;
                }
                out.insert(format!("{}/", normalise_dates(&rel)), String::new());
                walk(root, &p, out);
            } else if !rel.ends_with(".db") {
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                out.insert(normalise_dates(&rel), normalise_dates(&text));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

impl Twins {
    fn new() -> Twins {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        // Each twin in its own parent, so `../x` differs between them too.
        let (py, rs) = (root.join("py/p"), root.join("rs/p"));
        std::fs::create_dir_all(&py).unwrap();
        std::fs::create_dir_all(&rs).unwrap();
        Twins {
            _tmp: tmp,
            py,
            rs,
            failures: Vec::new(),
        }
    }

    /// A project made by `init` on both sides (checked), with a SQLite URL.
    fn initialised() -> Twins {
        let mut t = Twins::new();
        t.step("init mig", Order::Exact);
        t.edit_ini(|ini| {
            ini.replace(
                "sqlalchemy.url = driver://user:pass@localhost/dbname",
                "sqlalchemy.url = sqlite:///t.db",
            )
        });
        t
    }

    fn edit_ini(&self, f: impl Fn(&str) -> String) {
        for d in [&self.py, &self.rs] {
            let p = d.join("alembic.ini");
            let text = std::fs::read_to_string(&p).unwrap();
            let new = f(&text);
            assert_ne!(text, new, "ini edit changed nothing");
            std::fs::write(&p, new).unwrap();
        }
    }

    fn write(&self, rel: &str, content: &str) {
        for d in [&self.py, &self.rs] {
            let p = d.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
    }

    /// Runs `args` with each tool in its own project and compares outcome and trees.
    fn step(&mut self, args: &str, order: Order) -> (Outcome, Outcome) {
        let argv = words(args);
        let env = CaseEnv {
            set: vec![("TZ".into(), "UTC".into())],
        };
        // The twins are separate directories, so both tools can run at once.
        let (py, rs) = std::thread::scope(|s| {
            let py = s.spawn(|| run_tool(&alembic_bin(), &self.py, &argv, &env));
            let rs = run_tool(&ralembic_bin(), &self.rs, &argv, &env);
            (py.join().unwrap(), rs)
        });
        let (po, ro) = (
            normalise_dates(&normalise_out(&py.stdout, &self.py)),
            normalise_dates(&normalise_out(&rs.stdout, &self.rs)),
        );
        let same_out = match order {
            Order::Exact => po == ro,
            // Alembic lists its template directory in file-system order.
            Order::Lines => {
                let sorted = |s: &str| {
                    let mut v: Vec<&str> = s.lines().collect();
                    v.sort_unstable();
                    v.join("\n")
                };
                sorted(&po) == sorted(&ro)
            }
        };
        if py.code != rs.code || !same_out {
            self.failures.push(format!(
                "`{args}`: exit alembic {:?} / ralembic {:?}\n{}\n--- ralembic stderr:\n{}",
                py.code,
                rs.code,
                unified_diff(po.as_bytes(), ro.as_bytes()),
                String::from_utf8_lossy(&rs.stderr)
            ));
        }
        let (tp, tr) = (tree(&self.py), tree(&self.rs));
        if tp != tr {
            let keys: std::collections::BTreeSet<&String> = tp.keys().chain(tr.keys()).collect();
            for k in keys {
                match (tp.get(k), tr.get(k)) {
                    (Some(a), Some(b)) if a == b => {}
                    (Some(a), Some(b)) => self.failures.push(format!(
                        "after `{args}`: {k} differs\n{}",
                        unified_diff(a.as_bytes(), b.as_bytes())
                    )),
                    (a, _) => self.failures.push(format!(
                        "after `{args}`: {k} only written by {}",
                        if a.is_some() { "alembic" } else { "ralembic" }
                    )),
                }
            }
        }
        (py, rs)
    }

    /// Runs a case and also requires the exit status the oracle gave to be `code`, so a
    /// fixture mistake cannot turn an error case into a trivially equal success.
    fn expect(&mut self, args: &str, code: i32) {
        let (py, _) = self.step(args, Order::Exact);
        if py.code != Some(code) {
            self.failures.push(format!(
                "fixture: alembic `{args}` exited {:?}, the case expects {code}\n{}",
                py.code,
                show(&py)
            ));
        }
    }

    fn finish(&mut self) {
        assert!(
            self.failures.is_empty(),
            "{} mismatches:\n\n{}",
            self.failures.len(),
            self.failures.join("\n\n")
        );
    }
}

/// `argv` with double-quoted words ("first step" is one argument).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[derive(Clone, Copy)]
enum Order {
    Exact,
    Lines,
}

#[test]
fn init_and_list_templates() {
    let mut t = Twins::new();
    t.step("init --package mig", Order::Lines);
    t.expect("init mig", 255); // exists and is not empty
                               // an empty existing directory is fine; alembic.ini exists now, so it is skipped
    for d in [&t.py, &t.rs] {
        std::fs::create_dir_all(d.join("empty")).unwrap();
    }
    t.step("init empty", Order::Lines);
    t.step("-c sub/other.ini init ../elsewhere/env", Order::Lines);

    // Templates we do not write fail on both sides (with different wording: Alembic names
    // its install directory), and list_templates lists at least `generic` the same way.
    for args in ["init -t nope x1", "init -t multidb x2"] {
        let rs = run_tool(&ralembic_bin(), &t.rs, &argv(args), &CaseEnv::default());
        assert_eq!(rs.code, Some(255), "{args}: {}", show(&rs));
        assert!(!t.rs.join(args.rsplit(' ').next().unwrap()).exists());
    }
    let rs = run_tool(
        &ralembic_bin(),
        &t.rs,
        &argv("list_templates"),
        &CaseEnv::default(),
    );
    let py = run_tool(
        &alembic_bin(),
        &t.py,
        &argv("list_templates"),
        &CaseEnv::default(),
    );
    let (rs_out, py_out) = (
        String::from_utf8_lossy(&rs.stdout),
        String::from_utf8_lossy(&py.stdout),
    );
    assert_eq!(rs.code, Some(0));
    for line in rs_out.lines() {
        assert!(
            py_out.lines().any(|l| l == line),
            "{line:?} not in\n{py_out}"
        );
    }
    assert!(rs_out.contains("generic - Generic single-database configuration.\n"));
    t.finish();
}

#[test]
fn revision_and_merge_match_alembic() {
    let mut t = Twins::initialised();
    t.expect("revision -m first --rev-id a1", 0);
    t.expect(
        "revision -m second:thing! --rev-id b2 --branch-label lab",
        0,
    );
    t.expect("revision -m x --rev-id c3 --head a1", 255); // not a head
    t.expect("revision -m x --rev-id c3 --head a1 --splice", 0);
    t.expect("revision -m y --rev-id d4", 255); // multiple heads
    t.expect("revision -m y --rev-id d-4 --head b2", 255); // forbidden character
    t.expect("revision --sql -m y --head b2", 255);
    // the database is not at head: Alembic refuses before looking for a target schema
    t.expect("revision --autogenerate -m y --head b2", 255);
    t.expect("check", 255);
    t.expect(
        "revision -m dep --rev-id e5 --head lab@head --depends-on c3 --depends-on lab",
        0,
    );
    t.expect(
        "revision -m dep --rev-id e6 --head e5 --depends-on zzzz",
        255,
    );
    t.expect("revision -m dup --rev-id e6 --head c3 --head e5", 0); // the last --head wins
    t.expect("merge -m joined --rev-id f7 e6 c3", 0);
    t.expect("merge -m again --rev-id f8 f7 f7", 255); // duplicate heads
    t.expect(
        "revision --rev-id g8 --head base -m another_root --branch-label second",
        0,
    );
    t.expect("merge --rev-id h9 -m all heads --branch-label both", 0);
    t.expect("revision --rev-id i10", 0); // no message: "empty message"
    t.expect("merge -m m c3", 255); // not a head
    t.expect("merge -m m --splice --rev-id j11 c3 a1", 0);
    t.expect("revision -m l --version-path elsewhere --rev-id k12", 255);
    t.expect(
        "revision -m taken --head i10 --branch-label second --rev-id l13",
        1,
    );
    t.finish();
}

#[test]
fn file_template_slug_timezone_and_locations() {
    let mut t = Twins::initialised();
    t.edit_ini(|ini| {
        ini.replacen(
            "[alembic]\n",
            "[alembic]\nfile_template = %%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s\n\
             truncate_slug_length = 12\ntimezone = UTC\n",
            1,
        )
    });
    t.expect(
        "revision --rev-id a1 -m Add_a_much_longer_message_than_twelve",
        0,
    );
    t.edit_ini(|ini| ini.replace("timezone = UTC", "timezone = utc"));
    t.expect("revision --rev-id b2 -m \"Ünïcode words, punctuation!\"", 0);
    t.edit_ini(|ini| ini.replace("timezone = utc", "timezone = Europe/Paris"));
    t.expect("revision --rev-id c3 -m paris", 0);
    t.edit_ini(|ini| ini.replace("timezone = Europe/Paris", "timezone = Nowhere/Special"));
    t.expect("revision --rev-id d4 -m nowhere", 255);
    t.edit_ini(|ini| {
        ini.replace("timezone = Nowhere/Special\n", "").replace(
            "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s",
            "%%(epoch)s/%%(rev)s_%%(slug)s",
        )
    });
    // a sub-directory per file: created by both
    t.expect("revision --rev-id e5 -m in_a_subdir", 0);
    t.edit_ini(|ini| ini.replace("%%(epoch)s/%%(rev)s_%%(slug)s", "%%(rev)s_%%(nokey)s"));
    t.expect("revision --rev-id f6 -m bad_key", 1);
    t.finish();

    // several version locations
    let mut t = Twins::initialised();
    t.edit_ini(|ini| {
        ini.replace(
            "# version_locations = %(here)s/bar:%(here)s/bat:%(here)s/alembic/versions",
            "version_locations = %(here)s/mig/versions %(here)s/other",
        )
        .replace("path_separator = os", "path_separator = space")
    });
    t.expect("revision -m root --rev-id a1", 255); // which location?
    t.expect("revision -m root --rev-id a1 --version-path other", 0); // created
    t.expect("revision -m next --rev-id b2", 0); // beside its head
    t.expect(
        "revision -m root2 --rev-id c3 --head base --version-path mig/versions",
        0,
    );
    t.expect("revision -m x --rev-id d4 --version-path nowhere", 255);
    t.finish();
}

/// A project template using the Mako features real templates use.
const CUSTOM_TEMPLATE: &str = r#"## a Mako comment line: not written
"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
<%doc>
    a documentation block, not written
</%doc>
"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}
% if branch_labels:
# labelled: ${", ".join(branch_labels)}
% elif depends_on:
# depends: ${depends_on | comma,n}
% else:
# plain revision
% endif
<%text>
# ${not_rendered} stays as written
</%text>
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}
MESSAGE = ${repr(message.upper())} \
    # joined by a backslash-newline
"""
%% a literal percent line, in a string
"""
% for i, part in enumerate(message.split()):
#   ${i}: ${part | trim} ${'<&>' | h}
% endfor


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
"#;

#[test]
fn custom_template_and_round_trip() {
    let mut t = Twins::initialised();
    t.write("mig/script.py.mako", CUSTOM_TEMPLATE);
    t.expect("revision -m \"first step\" --rev-id a1", 0);
    t.expect(
        "revision -m \"labelled one\" --rev-id b2 --branch-label lab",
        0,
    );
    t.expect(
        "revision -m side --rev-id c3 --head a1 --splice --depends-on lab",
        0,
    );
    t.expect("merge -m \"merge both\" --rev-id d4 heads", 0);
    t.edit_ini(|ini| ini.replacen("[alembic]\n", "[alembic]\nrevision_environment = true\n", 1));
    t.expect("revision -m \"with env\" --rev-id e5 --head d4", 0);
    t.expect(
        "revision --sql -m \"with env, offline\" --rev-id f6 --head e5",
        0,
    );
    // an unsupported construct fails with its position and writes nothing
    let bad = "${message}\n<% x = 1 %>\n";
    std::fs::write(t.rs.join("mig/script.py.mako"), bad).unwrap();
    let rs = run_tool(
        &ralembic_bin(),
        &t.rs,
        &words("revision -m nope --rev-id zz --head f6"),
        &CaseEnv::default(),
    );
    let err = String::from_utf8_lossy(&rs.stderr);
    if !self_check_mode() {
        assert_ne!(rs.code, Some(0));
        assert!(err.contains("script.py.mako:2:1:"), "{}", show(&rs));
        assert!(!t.rs.join("mig/versions/zz_nope.py").exists());
    }
    std::fs::write(t.rs.join("mig/script.py.mako"), CUSTOM_TEMPLATE).unwrap();
    t.finish();
    round_trip(&t.rs);

    // the default template, with plain, branch and merge revisions
    let mut t = Twins::initialised();
    t.expect("revision -m one --rev-id a1", 0);
    t.expect("revision -m two --rev-id b2 --branch-label lab", 0);
    t.expect("revision -m three --rev-id c3 --head a1 --splice", 0);
    t.expect("merge -m four --rev-id d4 heads", 0);
    t.expect("revision -m five --rev-id e5 --depends-on lab", 0);
    t.finish();
    round_trip(&t.rs);
}

/// The history in `project` (written by ralembic) runs the same under both tools, and each of
/// its files parses with Python and with our parser.
fn round_trip(project: &Path) {
    let versions = project.join("mig/versions");
    let mut files = Vec::new();
    for e in std::fs::read_dir(&versions).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "py") {
            let src = std::fs::read_to_string(&p).unwrap();
            let shown = p.display().to_string();
            if let Err(e) = meshview::alembic_compat::script::parse_module(&shown, &src) {
                panic!("our parser rejects {shown}: {e}");
            }
            files.push(p);
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    // one Python process parses them all
    let py = std::process::Command::new(venv_python())
        .args([
            "-c",
            "import ast,sys\nfor f in sys.argv[1:]: ast.parse(open(f).read(), f)",
        ])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "Python rejects a generated file: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    copy_dir(project, &a);
    copy_dir(project, &b);
    let env = CaseEnv::default();
    let py = run_tool(&alembic_bin(), &a, &argv("upgrade heads"), &env);
    let rs = run_tool(&ralembic_bin(), &b, &argv("upgrade heads"), &env);
    assert_eq!(py.code, Some(0), "{}", show(&py));
    assert_eq!(rs.code, Some(0), "{}", show(&rs));
    let rows = |d: &Path| {
        let c = rusqlite::Connection::open(d.join("t.db")).unwrap();
        let mut s = c
            .prepare("SELECT version_num FROM alembic_version ORDER BY 1")
            .unwrap();
        let v: Vec<String> = s
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        v
    };
    assert_eq!(rows(&a), rows(&b));
    assert!(!rows(&a).is_empty());
    // Step by step on fresh copies: every revision in turn, base first (the order `history`
    // lists them in, reversed), then all the way down; exit status and version rows must
    // agree after every step.
    let history = run_tool(&alembic_bin(), &a, &argv("history"), &env);
    let mut ids: Vec<String> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .filter_map(|l| l.split_once("-> ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split([' ', ',']).next().map(str::to_string))
        .collect();
    ids.reverse();
    assert_eq!(ids.len(), files.len(), "{}", show(&history));
    let (a2, b2) = (tmp.path().join("a2"), tmp.path().join("b2"));
    copy_dir(project, &a2);
    copy_dir(project, &b2);
    let steps = ids
        .iter()
        .map(|id| format!("upgrade {id}"))
        .chain(["downgrade base".to_string()]);
    for step in steps {
        let py = run_tool(&alembic_bin(), &a2, &argv(&step), &env);
        let rs = run_tool(&ralembic_bin(), &b2, &argv(&step), &env);
        assert_eq!(py.code, rs.code, "`{step}`:\n{}\n{}", show(&py), show(&rs));
        assert_eq!(rows(&a2), rows(&b2), "version rows after `{step}`");
    }
    assert!(rows(&a2).is_empty());
    for args in ["heads", "history"] {
        let py = run_tool(&alembic_bin(), &a, &argv(args), &env);
        let rs = run_tool(&ralembic_bin(), &b, &argv(args), &env);
        if let Err(e) = compare(&py, &rs, Check::Unordered) {
            panic!("`{args}` after the round trip:\n{e}");
        }
    }
}

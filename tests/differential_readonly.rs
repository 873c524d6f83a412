//! Differential test of the read-only commands: every fixture project under tests/fixtures/
//! is copied into a temp dir, then each argv case runs through the real `alembic` CLI and
//! through `ralembic` with the same cwd and environment; exit status and stdout must match
//! byte for byte (see common::compare for the stderr rule).
//!
//! To add a case: append to `standard_cases` (all fixtures) or to a fixture's `extra` list.
//! To add a fixture: create tests/fixtures/<name>/ and add a `Fixture` entry plus a #[test].
//!
//! Self-check: `RALEMBIC_BIN=$PWD/.venv/bin/alembic cargo test --test differential_readonly`.

mod common;

use common::*;
use std::path::Path;

struct Fixture {
    name: &'static str,
    /// every revision id, for `show <rev>` and prefix cases
    revs: &'static [&'static str],
    /// revisions to `alembic stamp` (Python) before the cases run; None = no database set-up
    stamp: Option<&'static [&'static str]>,
    /// extra cases for this fixture only
    extra: &'static [Case],
    /// broken histories fail early, so they run the short case list
    broken: bool,
}

#[derive(Clone, Copy)]
struct Case {
    argv: &'static str,
    env: &'static [(&'static str, &'static str)],
    check: Check,
    /// touches the database: run sequentially (candidate first) to avoid racing on the file
    db: bool,
}

const fn c(argv: &'static str) -> Case {
    Case {
        argv,
        env: &[],
        check: Check::Full,
        db: false,
    }
}
const fn db(argv: &'static str) -> Case {
    Case {
        argv,
        env: &[],
        check: Check::Full,
        db: true,
    }
}
const fn exit_only(argv: &'static str) -> Case {
    Case {
        argv,
        env: &[],
        check: Check::ExitOnly,
        db: false,
    }
}

/// Cases every fixture runs (valid histories and broken ones alike).
fn standard_cases(fx: &Fixture) -> Vec<Case> {
    if fx.broken {
        let mut v: Vec<Case> = [
            "heads",
            "heads -v",
            "branches",
            "history",
            "history -v",
            "history -r base:heads",
            "show head",
            "show heads",
        ]
        .into_iter()
        .map(c)
        .collect();
        v.extend(["current", "history -i"].into_iter().map(db));
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        v.extend(fx.revs.iter().map(|r| c(leak(format!("show {r}")))));
        v.extend(fx.extra.iter().copied());
        return v;
    }
    let mut v: Vec<Case> = [
        "heads",
        "heads -v",
        "heads --resolve-dependencies",
        "heads -v --resolve-dependencies",
        "branches",
        "branches -v",
        "history",
        "history -v",
        "history -r base:heads",
        "history -r base:",
        "history -r :heads",
        "history -r :head",
        "history -r heads:base",
        "history -r base:base",
        "history -r -1:",
        "history -r -2:heads", // argparse takes "-2:heads" for an option: exit 2
        "history -r-1:",
        "history --rev-range=-2:heads",
        "history -r-1:base",
        "history --rev-range=head-1:",
        "history -r nonexistent:",
        "history -r a:b:c",
        "history -r :",
        "show head",
        "show heads",
        "show base",
        "show feedfacecafe",
        "show head-1",
    ]
    .into_iter()
    .map(c)
    .collect();
    v.extend(
        [
            "current",
            "current -v",
            "current --check-heads",
            "history -i",
            "history -r current:",
            "history -r current:heads",
            "history -r :current",
            "history -v -i",
            "history -r-1:current",
            "history --rev-range=current-1:",
        ]
        .into_iter()
        .map(db),
    );
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    for (i, r) in fx.revs.iter().enumerate() {
        v.push(c(leak(format!("show {r}"))));
        if r.len() > 4 {
            v.push(c(leak(format!("show {}", &r[..4]))));
        }
        // a few ranges anchored on real ids (first, last, middle) and relative steps
        if i == 0 || i == fx.revs.len() - 1 || i == fx.revs.len() / 2 {
            v.push(c(leak(format!("history -r {r}:"))));
            v.push(c(leak(format!("history -r :{r}"))));
            v.push(c(leak(format!("history -r base:{r}"))));
            v.push(c(leak(format!("history -r {r}:heads"))));
            v.push(c(leak(format!("history -r {}:", &r[..r.len().min(5)]))));
            v.push(c(leak(format!("history -r {r}+1:"))));
            v.push(c(leak(format!("history -r {r}-1:{r}"))));
            v.push(c(leak(format!("show {r}-1"))));
        }
    }
    v.extend(fx.extra.iter().copied());
    v
}

fn run_fixture(fx: &Fixture) {
    let src = repo_root().join("tests/fixtures").join(fx.name);
    assert!(
        src.join("alembic.ini").exists(),
        "fixture {} has no alembic.ini",
        src.display()
    );
    let tmp = tempfile::Builder::new()
        .prefix(&format!("ralembic-{}-", fx.name))
        .tempdir()
        .unwrap();
    let proj = tmp.path().join(fx.name);
    copy_dir(&src, &proj);
    if let Some(revs) = fx.stamp {
        let mut args = vec!["stamp"];
        args.extend_from_slice(revs);
        oracle_setup(&proj, &args);
    }
    let cases = standard_cases(fx);
    let jobs: Vec<BatchJob> = cases
        .iter()
        .map(|case| BatchJob {
            cwd: proj.clone(),
            argv: argv(case.argv),
            env: case
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .collect();
    // Candidate first: database-free cases on 2 threads, then the database cases one by one,
    // then the oracle, so that neither side ever races the other on the sqlite file.
    let (dbless, dbful): (Vec<usize>, Vec<usize>) = (0..cases.len()).partition(|&i| !cases[i].db);
    let mut rs: Vec<Option<Outcome>> = vec![None; cases.len()];
    let pick = |idx: &[usize]| idx.iter().map(|&i| jobs[i].clone()).collect::<Vec<_>>();
    for (i, o) in dbless.iter().zip(run_candidate_many(&pick(&dbless), 2)) {
        rs[*i] = Some(o);
    }
    for (i, o) in dbful.iter().zip(run_candidate_many(&pick(&dbful), 1)) {
        rs[*i] = Some(o);
    }
    let py = run_oracle_seeds(&jobs, 1, tmp.path());
    let mut report = Report::default();
    for (i, case) in cases.iter().enumerate() {
        let envs: Vec<String> = case.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        let label = format!(
            "fixture={} argv=`{}alembic {}` (cwd {})",
            fx.name,
            envs.concat(),
            case.argv,
            proj.display()
        );
        // `current` prints the database's revisions in the order of a Python set
        let check = if case.check == Check::Full && argv(case.argv).iter().any(|a| a == "current") {
            Check::Unordered
        } else {
            case.check
        };
        report.record_multi(&label, &py[i], rs[i].as_ref().unwrap(), check);
    }
    report.finish(&format!("differential_readonly[{}]", fx.name));
}

// ---------------------------------------------------------------- fixtures

const LINEAR: Fixture = Fixture {
    name: "linear",
    revs: &[
        "e33cded675f3",
        "c5aa27d4f0c8",
        "3983f98c5b1b",
        "f4894da35515",
        "ca515065d73b",
    ],
    stamp: Some(&["3983f98c5b1b"]),
    extra: &[
        // prefix shared by two revisions (c5aa..., ca51...) -> ambiguous
        c("show c"),
        c("show deadbeef0000"), // lives in a dot-file, must not be found
        // global flags
        c("-c other.ini heads"),
        c("--config other.ini history -v"),
        db("-c other.ini current"),
        Case {
            argv: "heads",
            env: &[("ALEMBIC_CONFIG", "other.ini")],
            check: Check::Full,
            db: false,
        },
        Case {
            argv: "current",
            env: &[("ALEMBIC_CONFIG", "other.ini")],
            check: Check::Full,
            db: true,
        },
        Case {
            argv: "-c alembic.ini heads",
            env: &[("ALEMBIC_CONFIG", "other.ini")],
            check: Check::Full,
            db: false,
        },
        Case {
            argv: "heads",
            env: &[("ALEMBIC_CONFIG", "missing.ini")],
            check: Check::Full,
            db: false,
        },
        db("-c other.ini -n othersection current"),
        c("-c other.ini -n othersection heads"),
        db("-n othersection current"),
        c("-n nosuchsection heads"),
        c("-c missing.ini heads"),
        c("-c missing.ini -n othersection history"),
        c("-x a=b heads"),
        c("-x a=b -x c=d history"),
        db("-x a=b current"),
        c("-q heads"),
        db("-q current"),
        c("-q show feedfacecafe"),
        c("--quiet history -r nonexistent:"),
        exit_only("--raiseerr heads"),
        exit_only("--raiseerr show feedfacecafe"),
        exit_only("--raiseerr history -r a:b:c"),
        c("--raiseerr history"),
        // argparse-level errors (exit 2, usage on stderr, nothing on stdout)
        c(""),
        c("frobnicate"),
        c("heads --bogus"),
        c("show"),
        c("history -r"),
        c("-c"),
        c("--version"),
    ],
    broken: false,
};

const MULTIHEAD: Fixture = Fixture {
    name: "multihead",
    revs: &[
        "24505fbea6ab",
        "980f364bd416",
        "60ce7a077503",
        "f2a3eac2a9d9",
        "fe2a5197da0c",
        "be5f821fbcd9",
        "ad408337c39c",
        "4d9620e731c2",
        "2d82597c57f9",
    ],
    stamp: Some(&["60ce7a077503", "f2a3eac2a9d9", "4d9620e731c2"]),
    extra: &[
        c("show heads-1"),
        c("history -r 980f364bd416:be5f821fbcd9"),
        c("history -r be5f821fbcd9:980f364bd416"),
    ],
    broken: false,
};

const MERGES: Fixture = Fixture {
    name: "merges",
    revs: &[
        "60ee92bdedd8",
        "8159637a853d",
        "b575df951a9e",
        "8a86d752a50c",
        "feb21429b1e8",
        "9cadd8f1cb33",
        "c0dba7f40062",
        "1a6b1b6215dd",
        "56373b1b6a88",
        "9f605e3de060",
        "f28b2954f6f1",
        "c0ea71805685",
        "d58aaea4d3ca",
    ],
    stamp: Some(&["1a6b1b6215dd"]),
    extra: &[
        c("history -r 8159637a853d:56373b1b6a88"),
        c("history -r 56373b1b6a88:d58aaea4d3ca"),
    ],
    broken: false,
};

const LABELS: Fixture = Fixture {
    name: "labels",
    revs: &[
        "f67932c56a5f",
        "5b0e4544ce84",
        "d040914f30b2",
        "233239e24309",
        "66bc80a8b515",
        "a4f012fa0bf1",
        "b86cd768e2e2",
        "a1b5a3907d61",
        "16d6622a2e9a",
    ],
    stamp: Some(&["d040914f30b2", "b86cd768e2e2"]), // alpha@head, gamma@-1
    extra: &[
        c("show alpha@head"),
        c("show beta@head"),
        c("show bravo@head"),
        c("show gamma@head"),
        c("show alpha"),
        c("show gamma"),
        c("show nosuchlabel@head"),
        c("show alpha@base"),
        c("show gamma@f679"),
        c("show gamma@b86cd768e2e2"),
        c("show alpha@-1"),
        c("history -r alpha@base:alpha@head"),
        c("history -r gamma@base:"),
        c("history -r :gamma@head"),
        c("history -r beta@head:"),
        c("history -r alpha@head:heads"),
        c("history -r nosuchlabel@head:"),
        c("history -r gamma@-1:"),
        db("history -r gamma@current:"),
        db("current --check-heads -v"),
    ],
    broken: false,
};

const DEPENDS: Fixture = Fixture {
    name: "depends",
    revs: &[
        "0780628fde78",
        "4b24e713be27",
        "6592ec6c48f0",
        "75c05ba72e19",
        "ca12daf66ac2",
        "85dc3a98a5cf",
        "6b43347ac53f",
        "99c957151296",
        "99d3fe117f6f",
        "90ebf7cba924",
        "7149d893c2a9",
        "1ded28b009b7",
        "546ab8f40333",
        "aa8110d61c5f",
    ],
    stamp: Some(&["75c05ba72e19", "6b43347ac53f"]),
    extra: &[
        c("show one@head"),
        c("show two@head"),
        c("show three@head"),
        c("history -r three@base:three@head"),
        c("history -r base:aa8110d61c5f"),
        c("history -r two@base:"),
        c("show 99"),
    ],
    broken: false,
};

const PREFIXES: Fixture = Fixture {
    name: "prefixes",
    revs: &[
        "ae1027a6acf0",
        "ae1027a6a0b1",
        "ae10f0000002",
        "abc",
        "abcdef",
        "b0d1e5a7f9c3",
    ],
    stamp: Some(&["abc"]),
    extra: &[
        c("show a"),
        c("show ae"),
        c("show ae10"),
        c("show ae1027"),
        c("show ae1027a6a"),
        c("show ae1027a6ac"),
        c("show ae1027a6a0"),
        c("show ab"),
        c("show abcd"),
        c("show b0"),
        c("history -r ae1027a6a:"),
        c("history -r ae10f:abcd"),
        c("history -r abc:"),
        c("history -r ab:"),
    ],
    broken: false,
};

const EMPTY: Fixture = Fixture {
    name: "empty",
    revs: &[],
    stamp: None,
    extra: &[c("show 1234"), c("history -r base:heads")],
    broken: false,
};

const RECURSIVE: Fixture = Fixture {
    name: "recursive",
    revs: &[
        "e7645c494071",
        "f37d5d0de1c7",
        "c27d4df3a8b1",
        "5b2d33640e0c",
        "128e7efb51b5",
    ],
    stamp: Some(&["c27d4df3a8b1"]),
    extra: &[],
    broken: false,
};

const MULTILOC: Fixture = Fixture {
    name: "multiloc",
    revs: &[
        "400cf4411603",
        "15a01736345e",
        "94c9eae2d415",
        "ffce9fc4f5a4",
    ],
    stamp: Some(&["main@head"]),
    extra: &[
        c("show main@head"),
        c("show extra@head"),
        c("history -r extra@base:extra@head"),
    ],
    broken: false,
};

const ERR_EXTRA: &[Case] = &[
    exit_only("--raiseerr history"),
    exit_only("--raiseerr heads"),
];

const fn err_fixture(name: &'static str, revs: &'static [&'static str]) -> Fixture {
    Fixture {
        name,
        revs,
        stamp: None,
        extra: ERR_EXTRA,
        broken: true,
    }
}

const ERR_CYCLE: Fixture = err_fixture(
    "err_cycle",
    &[
        "c0c0c0000001",
        "c0c0c0000002",
        "c0c0c0000003",
        "c0c0c0000004",
    ],
);
const ERR_SELFLOOP: Fixture = err_fixture("err_selfloop", &["5e1f00000001", "5e1f00000002"]);
const ERR_DEPCYCLE: Fixture = err_fixture(
    "err_depcycle",
    &["dc0000000001", "dc0000000002", "dc0000000003"],
);
const ERR_MISSING_PARENT: Fixture = err_fixture(
    "err_missing_parent",
    &["4a0000000001", "4a0000000002", "4a0000000003"],
);
const ERR_DUPLICATE_ID: Fixture =
    err_fixture("err_duplicate_id", &["d0000000aaaa", "d0000000bbbb"]);
const ERR_DUPLICATE_LABEL: Fixture =
    err_fixture("err_duplicate_label", &["1a0000000001", "1a0000000002"]);
const ERR_SYNTAX: Fixture = err_fixture("err_syntax", &["5a0000000001", "5a0000000002"]);
const ERR_NONLITERAL: Fixture = err_fixture("err_nonliteral", &["0e0000000001", "0e0000000002"]);

#[test]
fn linear() {
    run_fixture(&LINEAR)
}
#[test]
fn multihead() {
    run_fixture(&MULTIHEAD)
}
#[test]
fn merges() {
    run_fixture(&MERGES)
}
#[test]
fn labels() {
    run_fixture(&LABELS)
}
#[test]
fn depends() {
    run_fixture(&DEPENDS)
}
#[test]
fn prefixes() {
    run_fixture(&PREFIXES)
}
#[test]
fn empty() {
    run_fixture(&EMPTY)
}
#[test]
fn recursive() {
    run_fixture(&RECURSIVE)
}
#[test]
fn multiloc() {
    run_fixture(&MULTILOC)
}
#[test]
fn err_cycle() {
    run_fixture(&ERR_CYCLE)
}
#[test]
fn err_selfloop() {
    run_fixture(&ERR_SELFLOOP)
}
#[test]
fn err_depcycle() {
    run_fixture(&ERR_DEPCYCLE)
}
#[test]
fn err_missing_parent() {
    run_fixture(&ERR_MISSING_PARENT)
}
#[test]
fn err_duplicate_id() {
    run_fixture(&ERR_DUPLICATE_ID)
}
#[test]
fn err_duplicate_label() {
    run_fixture(&ERR_DUPLICATE_LABEL)
}
#[test]
fn err_syntax() {
    run_fixture(&ERR_SYNTAX)
}
#[test]
fn err_nonliteral() {
    run_fixture(&ERR_NONLITERAL)
}

/// Every fixture directory must be exercised by a test above (catches forgotten fixtures).
#[test]
fn every_fixture_is_listed() {
    let listed = [
        &LINEAR,
        &MULTIHEAD,
        &MERGES,
        &LABELS,
        &DEPENDS,
        &PREFIXES,
        &EMPTY,
        &RECURSIVE,
        &MULTILOC,
        &ERR_CYCLE,
        &ERR_SELFLOOP,
        &ERR_DEPCYCLE,
        &ERR_MISSING_PARENT,
        &ERR_DUPLICATE_ID,
        &ERR_DUPLICATE_LABEL,
        &ERR_SYNTAX,
        &ERR_NONLITERAL,
    ]
    .map(|f| f.name);
    for e in std::fs::read_dir(repo_root().join("tests/fixtures")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        assert!(
            listed.contains(&name.as_str()),
            "tests/fixtures/{name} is not listed in differential_readonly.rs"
        );
    }
}

// ---------------------------------------------------------------- --help

/// Alembic's verbs, read from the oracle's own `--help`.
fn oracle_verbs(tmp: &Path) -> Vec<String> {
    let o = run_tool(&alembic_bin(), tmp, &argv("--help"), &CaseEnv::default());
    assert_eq!(o.code, Some(0), "alembic --help failed:\n{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    // "positional arguments:\n  {branches,check,...}"
    let start = text.find('{').expect("verb list in alembic --help");
    let end = text[start..].find('}').unwrap() + start;
    text[start + 1..end].split(',').map(str::to_owned).collect()
}

/// Option strings (`-x`, `--foo`) in an argparse help text's option list.
fn help_flags(help: &str) -> Vec<String> {
    let mut flags = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if !t.starts_with('-') || line.len() - t.len() > 4 {
            continue; // only option headings, not wrapped description lines
        }
        for tok in t.split([',', ' ']) {
            let tok = tok.trim();
            if tok.starts_with('-') && tok.len() > 1 && tok != "-h" && tok != "--help" {
                flags.push(tok.to_owned());
            }
        }
    }
    flags.sort();
    flags.dedup();
    flags
}

#[test]
fn help_exits_zero_and_mentions_every_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let mut report = Report::default();
    let mut checked = 0;
    // global options (`ralembic --help`) then each verb
    let mut verbs: Vec<Option<String>> = vec![None];
    verbs.extend(oracle_verbs(tmp.path()).into_iter().map(Some));
    for verb in verbs {
        let args: Vec<String> = verb.iter().cloned().chain(["--help".to_string()]).collect();
        let py = run_tool(&alembic_bin(), tmp.path(), &args, &CaseEnv::default());
        let rs = run_tool(&ralembic_bin(), tmp.path(), &args, &CaseEnv::default());
        let label = format!("`ralembic {}`", args.join(" "));
        if py.code != Some(0) {
            report.fail(format!(
                "oracle `alembic {}` did not exit 0:\n{}",
                args.join(" "),
                show(&py)
            ));
            continue;
        }
        if rs.code != Some(0) {
            report.fail(format!(
                "{label} exited {:?}, want 0\n{}",
                rs.code,
                show(&rs)
            ));
            continue;
        }
        let rs_text = String::from_utf8_lossy(&rs.stdout);
        let missing: Vec<String> = help_flags(&String::from_utf8_lossy(&py.stdout))
            .into_iter()
            .filter(|f| !rs_text.contains(f.as_str()))
            .collect();
        if !missing.is_empty() {
            report.fail(format!(
                "{label} does not mention {missing:?}\n{}",
                show(&rs)
            ));
        } else {
            report.passed += 1;
        }
        checked += 1;
    }
    assert!(
        checked > 5,
        "expected to check many verbs, checked {checked}"
    );
    report.finish("help_exits_zero_and_mentions_every_flag");
}

/// The normalisation of set-ordered output (common::canonical) does what it says.
#[test]
fn canonicalization_of_set_ordered_output() {
    let a = b"Rev: x (branchpoint)\nBranches into: c, a, b\nBranch names: zeta, alpha\n\nx\n   -> c\n   -> a (head)\nd, b -> e (zz, aa) (head), msg\n";
    let b = b"Rev: x (branchpoint)\nBranches into: a, b, c\nBranch names: alpha, zeta\n\nx\n   -> a (head)\n   -> c\nd, b -> e (aa, zz) (head), msg\n";
    assert_eq!(
        String::from_utf8(canonical(a)).unwrap(),
        String::from_utf8(canonical(b)).unwrap()
    );
    // the order of a merge's parents comes from the file, not a set: it stays significant
    assert_ne!(
        canonical(b"d, b -> e, msg\n"),
        canonical(b"b, d -> e, msg\n")
    );
    let m1 = b"FAILED: Branch name 'dup' in revision 1a2 already used by revision 1a1\n";
    let m2 = b"FAILED: Branch name 'dup' in revision 1a1 already used by revision 1a2\n";
    assert_eq!(canonical(m1), canonical(m2));
    assert_eq!(
        canonical(b"no newline at end"),
        b"no newline at end".to_vec()
    );
    // labels inside a `branches` arrow line are set-ordered too
    assert_eq!(
        canonical(b"a (l1, l2)\n   -> b (l2, l1)\n   -> c\n"),
        canonical(b"a (l2, l1)\n   -> c\n   -> b (l1, l2)\n")
    );
}

//! Differential tests of `revision --autogenerate` and `check` against Python Alembic.
//!
//! Each case under `tests/fixtures/_autogen/cases/<name>/` is a database schema (`db.sql`,
//! the database at head: the project has no revisions yet) and a target schema
//! (`schema.sql`). Python Alembic runs in a twin project whose env.py reflects
//! `target_metadata` from `target.db`, built from the same `schema.sql`; ralembic reads
//! `schema.sql` itself (by `--target-sql`, `--target-url` on a copy of target.db, or the
//! `ralembic.target_sql` ini option, depending on the case). Both then run:
//!
//! 1. `check` (stdout compared with object addresses normalised, exit status, and the
//!    logging lines of stderr, as for every command here);
//! 2. `revision --autogenerate -m auto --rev-id a1` (stdout, exit status, and the written
//!    file byte for byte apart from its `Create Date:` line);
//! 3. for cases whose revision can run on SQLite, `upgrade head` and `check` again: both
//!    tools must reach "No new upgrade operations detected." and the same schema.
//!
//! The oracle runs in one interpreter per chunk (scripts/alembic-batch.py) to keep the
//! target fast. Self-check: `RALEMBIC_BIN=$PWD/.venv/bin/alembic cargo test --test
//! autogenerate` (the flags ralembic needs are then dropped).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

#[derive(Clone, Copy)]
enum Via {
    Flag,
    Url,
    Ini,
}

struct Case {
    name: &'static str,
    /// The case directory under tests/fixtures/_autogen/cases (db.sql, schema.sql): a batch
    /// case shares its plain twin's.
    sql: &'static str,
    /// Keyword arguments added to the online `context.configure(...)` of
    /// tests/fixtures/_autogen/project/env.py (e.g. `render_as_batch=True`).
    configure: &'static str,
    /// The generated revision runs on SQLite (no plain `alter_column`, no unnamed drops).
    roundtrip: bool,
    via: Via,
}

const CASES: &[Case] = &[
    Case {
        name: "new_table",
        sql: "new_table",
        configure: "",
        roundtrip: true,
        via: Via::Flag,
    },
    Case {
        name: "dropped_table",
        sql: "dropped_table",
        configure: "",
        roundtrip: true,
        via: Via::Url,
    },
    Case {
        name: "columns",
        sql: "columns",
        configure: "",
        roundtrip: true,
        via: Via::Flag,
    },
    Case {
        name: "alter_batch",
        sql: "alter_plain",
        configure: "render_as_batch=True",
        roundtrip: true,
        via: Via::Ini,
    },
    Case {
        name: "alter_plain",
        sql: "alter_plain",
        configure: "",
        roundtrip: false,
        via: Via::Flag,
    },
    Case {
        name: "indexes",
        sql: "indexes",
        configure: "",
        roundtrip: true,
        via: Via::Flag,
    },
    Case {
        name: "uniques_batch",
        sql: "uniques_batch",
        configure: "render_as_batch=True",
        roundtrip: true,
        via: Via::Flag,
    },
    Case {
        name: "fks_batch",
        sql: "fks_batch",
        configure: "render_as_batch=True",
        roundtrip: true,
        via: Via::Ini,
    },
    Case {
        name: "nothing",
        sql: "nothing",
        configure: "",
        roundtrip: true,
        via: Via::Flag,
    },
    Case {
        name: "unique_unnamed",
        sql: "unique_unnamed",
        configure: "",
        roundtrip: false,
        via: Via::Flag,
    },
    Case {
        name: "type_affinity",
        sql: "type_affinity",
        configure: "",
        roundtrip: false,
        via: Via::Flag,
    },
    Case {
        name: "server_defaults",
        sql: "server_defaults",
        configure: "compare_type=False, compare_server_default=True",
        roundtrip: false,
        via: Via::Flag,
    },
    Case {
        name: "server_defaults_batch",
        sql: "server_defaults",
        configure: "render_as_batch=True, compare_server_default=True",
        roundtrip: true,
        via: Via::Flag,
    },
    Case {
        name: "checks",
        sql: "checks",
        configure: "",
        roundtrip: true,
        via: Via::Flag,
    },
    Case {
        name: "new_tables_order",
        sql: "new_tables_order",
        configure: "",
        roundtrip: true,
        via: Via::Url,
    },
    Case {
        name: "partial_index",
        sql: "partial_index",
        configure: "",
        roundtrip: true,
        via: Via::Flag,
    },
    Case {
        name: "table_options",
        sql: "table_options",
        configure: "",
        roundtrip: true,
        via: Via::Flag,
    },
    Case {
        name: "batch_tables",
        sql: "batch_tables",
        configure: "render_as_batch=True",
        roundtrip: true,
        via: Via::Flag,
    },
];

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/_autogen")
}

fn sqlite_from(sql_file: &Path, db: &Path) {
    let sql = std::fs::read_to_string(sql_file).unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&sql).unwrap();
}

/// Lays out the project for one tool. `python`: env.py reads target.db; otherwise the
/// case's way of naming the target for ralembic.
fn setup(case: &Case, dir: &Path, python: bool) {
    std::fs::create_dir_all(dir.join("versions")).unwrap();
    let project = fixtures().join("project");
    let env = std::fs::read_to_string(project.join("env.py")).unwrap();
    let online = "context.configure(connection=connection, target_metadata=target_metadata)";
    assert_eq!(
        env.matches(online).count(),
        1,
        "env.py's online configure call"
    );
    let env = if case.configure.is_empty() {
        env
    } else {
        env.replace(
            online,
            &format!(
                "context.configure(connection=connection, target_metadata=target_metadata, {})",
                case.configure
            ),
        )
    };
    std::fs::write(dir.join("env.py"), env).unwrap();
    std::fs::copy(project.join("script.py.mako"), dir.join("script.py.mako")).unwrap();
    let mut ini = std::fs::read_to_string(project.join("alembic.ini")).unwrap();
    let cdir = fixtures().join("cases").join(case.sql);
    sqlite_from(&cdir.join("db.sql"), &dir.join("t.db"));
    std::fs::copy(cdir.join("schema.sql"), dir.join("schema.sql")).unwrap();
    if python || self_check_mode() || matches!(case.via, Via::Url) {
        sqlite_from(&cdir.join("schema.sql"), &dir.join("target.db"));
    }
    if !python && matches!(case.via, Via::Ini) {
        ini = ini.replace(
            "[alembic]\n",
            "[alembic]\nralembic.target_sql = %(here)s/schema.sql\n",
        );
    }
    std::fs::write(dir.join("alembic.ini"), ini).unwrap();
}

/// The four commands of a case; ralembic's get the target flags.
fn commands(case: &Case, python: bool) -> Vec<Vec<String>> {
    let target: Vec<String> = match (python || self_check_mode(), case.via) {
        (true, _) | (false, Via::Ini) => vec![],
        (false, Via::Flag) => argv("--target-sql schema.sql"),
        (false, Via::Url) => argv("--target-url sqlite:///target.db"),
    };
    let with = |s: &str| {
        let mut v = argv(s);
        v.extend(target.iter().cloned());
        v
    };
    let (third, fourth) = if case.roundtrip {
        (argv("upgrade head"), with("check"))
    } else {
        (argv("heads"), argv("heads"))
    };
    vec![
        with("check"),
        with("revision --autogenerate -m auto --rev-id a1"),
        third,
        fourth,
    ]
}

fn normalise(out: &[u8], dir: &Path) -> String {
    let s = String::from_utf8_lossy(out).replace(&dir.display().to_string(), "<P>");
    let addr = regex::Regex::new(r"0x[0-9a-f]+").unwrap();
    addr.replace_all(&s, "0xADDR").into_owned()
}

/// The logging lines of stderr (Python's warnings, printed by the `warnings` module with
/// its own file paths, are not compared).
fn log_lines(err: &[u8], dir: &Path) -> String {
    normalise(err, dir)
        .lines()
        .filter(|l| {
            ["INFO  [", "WARNI [", "ERROR ["]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn revision_file(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("versions/a1_auto.py")).unwrap_or_default();
    let create = regex::Regex::new(r"(?m)^Create Date: .*$").unwrap();
    create
        .replace_all(&text, "Create Date: <DATE>")
        .into_owned()
}

#[test]
fn autogenerate_and_check_match_alembic() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let mut jobs = vec![];
    for case in CASES {
        let (py, rs) = (
            root.join("py").join(case.name),
            root.join("rs").join(case.name),
        );
        setup(case, &py, true);
        setup(case, &rs, false);
        for a in commands(case, true) {
            jobs.push(BatchJob {
                cwd: py.clone(),
                argv: a,
                env: BTreeMap::from([("TZ".to_string(), "UTC".to_string())]),
            });
        }
    }
    // A case's four commands must run in order in one interpreter: two interpreters, each
    // with whole cases.
    let half = CASES.len().div_ceil(2) * 4;
    let (first, second) = jobs.split_at(half);
    let oracle: Vec<Outcome> = std::thread::scope(|s| {
        let (r1, r2) = (root.join("oracle1"), root.join("oracle2"));
        let a = s.spawn(move || run_oracle_batch(first, 1, &r1));
        let b = run_oracle_batch(second, 1, &r2);
        let mut a = a.join().unwrap();
        a.extend(b);
        a
    });

    let mut failures = vec![];
    for (ci, case) in CASES.iter().enumerate() {
        let (py, rs) = (
            root.join("py").join(case.name),
            root.join("rs").join(case.name),
        );
        let env = CaseEnv {
            set: vec![("TZ".into(), "UTC".into())],
        };
        for (k, a) in commands(case, false).iter().enumerate() {
            let p = &oracle[ci * 4 + k];
            let r = run_tool(&ralembic_bin(), &rs, a, &env);
            let (po, ro) = (normalise(&p.stdout, &py), normalise(&r.stdout, &rs));
            if p.code != r.code || po != ro {
                failures.push(format!(
                    "{}: `{}`: exit alembic {:?} / ralembic {:?}\n{}\n--- alembic stderr:\n{}\n--- ralembic stderr:\n{}",
                    case.name,
                    a.join(" "),
                    p.code,
                    r.code,
                    unified_diff(po.as_bytes(), ro.as_bytes()),
                    String::from_utf8_lossy(&p.stderr),
                    String::from_utf8_lossy(&r.stderr)
                ));
            }
            let (pl, rl) = (log_lines(&p.stderr, &py), log_lines(&r.stderr, &rs));
            if pl != rl {
                failures.push(format!(
                    "{}: `{}`: log lines differ\n{}",
                    case.name,
                    a.join(" "),
                    unified_diff(pl.as_bytes(), rl.as_bytes())
                ));
            }
            // Fixture sanity: the oracle reports drift first, none at the end.
            let expect = match k {
                0 if case.name == "nothing" => Some(0),
                0 => Some(255),
                1 | 2 => Some(0),
                _ if case.roundtrip => Some(0),
                _ => None,
            };
            if expect.is_some() && p.code != expect {
                failures.push(format!(
                    "fixture {}: alembic `{}` exited {:?}\n{}",
                    case.name,
                    a.join(" "),
                    p.code,
                    show(p)
                ));
            }
            if k == 1 {
                let (pf, rf) = (revision_file(&py), revision_file(&rs));
                if pf != rf {
                    failures.push(format!(
                        "{}: the generated revision differs\n{}",
                        case.name,
                        unified_diff(pf.as_bytes(), rf.as_bytes())
                    ));
                }
            }
        }
        if case.roundtrip {
            let (ps, rs_) = (
                sqlite_master(&py.join("t.db")),
                sqlite_master(&rs.join("t.db")),
            );
            if ps != rs_ {
                failures.push(format!(
                    "{}: schema after upgrade differs\n{}",
                    case.name,
                    unified_diff(ps.join("\n").as_bytes(), rs_.join("\n").as_bytes())
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Where ralembic's flow meets Alembic's own errors, and ralembic's errors about the target.
#[test]
fn errors_before_and_about_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let (py, rs) = (root.join("py"), root.join("rs"));
    for dir in [&py, &rs] {
        std::fs::create_dir_all(dir.join("versions")).unwrap();
        let project = fixtures().join("project");
        // An env.py without target_metadata (Python) and no target named (ralembic).
        std::fs::copy(
            repo_root().join("tests/fixtures/_common/env.py"),
            dir.join("env.py"),
        )
        .unwrap();
        std::fs::copy(project.join("script.py.mako"), dir.join("script.py.mako")).unwrap();
        std::fs::copy(project.join("alembic.ini"), dir.join("alembic.ini")).unwrap();
    }
    std::fs::write(rs.join("bad.sql"), "CREATE TABLE (;").unwrap();
    // Alembic's messages where both tools fail the same way (the first words are shared: the
    // rest of "Can't proceed" names env.py in Python and ralembic's flags in ralembic).
    let shared = [
        (
            "revision --autogenerate --sql -m x",
            "FAILED: Using --sql with --autogenerate does not make any sense\n",
        ),
        (
            "revision --autogenerate -m x",
            "FAILED: Can't proceed with --autogenerate option; ",
        ),
        (
            "check",
            "FAILED: Can't proceed with --autogenerate option; ",
        ),
    ];
    let jobs: Vec<BatchJob> = shared
        .iter()
        .map(|(a, _)| BatchJob {
            cwd: py.clone(),
            argv: argv(a),
            env: BTreeMap::new(),
        })
        .collect();
    let oracle = run_oracle_batch(&jobs, 1, &root);
    for ((args, start), p) in shared.iter().zip(&oracle) {
        let r = run_tool(&ralembic_bin(), &rs, &argv(args), &CaseEnv::default());
        for o in [p, &r] {
            assert_eq!(o.code, Some(255), "`{args}`: {}", show(o));
            assert!(
                String::from_utf8_lossy(&o.stdout).starts_with(start),
                "`{args}`: {}",
                show(o)
            );
        }
    }
    if self_check_mode() {
        return;
    }
    for (args, out) in [
        (
            "check --target-sql nope.sql",
            "FAILED: cannot read target schema nope.sql: No such file or directory (os error 2)\n",
        ),
        (
            "check --target-sql bad.sql",
            "FAILED: target schema bad.sql does not run in SQLite: near \"(\": syntax error in CREATE TABLE (; at offset 13\n",
        ),
    ] {
        let r = run_tool(&ralembic_bin(), &rs, &argv(args), &CaseEnv::default());
        assert_eq!(
            (r.code, String::from_utf8_lossy(&r.stdout).as_ref()),
            (Some(255), out),
            "`{args}`"
        );
    }
    let r = run_tool(
        &ralembic_bin(),
        &rs,
        &argv("check --target-url sqlite:///typo.db"),
        &CaseEnv::default(),
    );
    assert_eq!(r.code, Some(255), "{}", show(&r));
    assert!(
        String::from_utf8_lossy(&r.stdout)
            .starts_with("FAILED: cannot read target schema sqlite:///typo.db: no database file"),
        "{}",
        show(&r)
    );
    assert!(!rs.join("typo.db").exists());
    // Nothing to compare against nothing: an empty declared schema and an empty database.
    std::fs::write(rs.join("empty.sql"), "").unwrap();
    let r = run_tool(
        &ralembic_bin(),
        &rs,
        &argv("check --target-sql empty.sql"),
        &CaseEnv::default(),
    );
    assert_eq!(
        (r.code, String::from_utf8_lossy(&r.stdout).as_ref()),
        (Some(0), "No new upgrade operations detected.\n")
    );
}

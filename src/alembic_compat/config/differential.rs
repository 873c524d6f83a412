//! Differential tests: the same tricky alembic.ini / pyproject.toml texts are resolved by the
//! real Python 3.11 configparser + Alembic 1.20.1 + SQLAlchemy (run once, in one process, from
//! `<CARGO_MANIFEST_DIR>/.venv/bin/python` or `$ALEMBIC_PYTHON`) and by this crate, and every
//! observed value or error message must be identical.
//!
//! A missing interpreter is a test *failure*, never a skip: these tests are the proof of
//! compatibility. Both sides print `case \t key \t OK|ERR \t hex(utf-8 text)` records so no
//! quoting can blur a difference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::alembic::{ini_and_toml_paths, Config, ConfigOptions};
use super::ini::IniParser;
use super::script::ScriptSettings;
use super::url::{obfuscate_url_pw, parse_sqlite_url, parse_url, SqliteDatabase};

/// One fixture: files written into a fresh directory that is also the CWD.
struct Case {
    name: &'static str,
    /// The `-c` value (relative to the case directory); the ini text is written there.
    ini_path: &'static str,
    ini: Option<&'static str>,
    toml: Option<&'static str>,
    section: &'static str,
    /// Extra directories to create (e.g. the script directory, a package).
    dirs: &'static [&'static str],
}

const fn case(name: &'static str, ini: &'static str) -> Case {
    Case {
        name,
        ini_path: "alembic.ini",
        ini: Some(ini),
        toml: None,
        section: "alembic",
        dirs: &[],
    }
}

const CASES: &[Case] = &[
    case("basic", "[alembic]\nscript_location = migrations\nsqlalchemy.url = sqlite:///app.db\n"),
    case("colon_delim", "[alembic]\nscript_location: mig\nkey = a:b\nother: x = y\n"),
    case("here_interp", "[alembic]\nscript_location = %(here)s/mig\nversion_locations = %(here)s/v1 %(here)s/v2\n"),
    case("percent_escape", "[alembic]\nscript_location = m\nfile_template = %%(year)d_%%(month).2d_%%(rev)s_%%(slug)s\n"),
    case("bad_percent", "[alembic]\nscript_location = m\nsqlalchemy.url = sqlite:///50%.db\n"),
    case("bad_ref", "[alembic]\nscript_location = m\nx = %(unclosed\n"),
    case("missing_ref", "[alembic]\nscript_location = %(nope)s/m\n"),
    case("depth", "[alembic]\na = %(b)s\nb = %(a)s\nscript_location = m\n"),
    case("depth_ok", "[alembic]\na1 = x%%\na2 = %(a1)s\na3 = %(a2)s\na4 = %(a3)s\na5 = %(a4)s\na6 = %(a5)s\na7 = %(a6)s\na8 = %(a7)s\na9 = %(a8)s\na10 = %(a9)s\na11 = %(a10)s\nscript_location = m\n"),
    case("continuation", "[alembic]\nscript_location = m\npath_separator = newline\nversion_locations =\n    v1\n\n    v2\n  # a comment\n\tv3\n\n\nnext = 1\n"),
    case("inline_comment_kept", "[alembic]\nscript_location = m # not a comment\n; real comment\n  # indented comment\n"),
    case("case_insensitive", "[alembic]\nScript_Location = m\nSQLAlchemy.URL = sqlite://\n[Alembic]\nX = 1\n"),
    case("default_section", "[DEFAULT]\nbase = /srv\n[alembic]\nscript_location = %(base)s/mig\n[other]\ny = %(base)s\n[DEFAULT]\nmore = 1\n"),
    case("default_overrides_here", "[DEFAULT]\nhere = /elsewhere\n[alembic]\nscript_location = %(here)s/m\n"),
    case("dup_section", "[alembic]\nscript_location = m\n[alembic]\n"),
    case("dup_option", "[alembic]\nscript_location = m\nSCRIPT_LOCATION = n\n"),
    case("dup_default_option", "[DEFAULT]\na = 1\n[alembic]\n[DEFAULT]\nA = 2\n"),
    case("missing_header", "# comment\n\nscript_location = m\n[alembic]\n"),
    case("parse_errors", "[alembic]\nscript_location = m\njunk line\n= novalue\n  cont\nmore junk"),
    case("empty_name_then_dup", "[alembic]\n= a\n: b\n"),
    case("header_quirks", "[alembic] trailing text\nscript_location = m\n[a]b]\nk=v\n[ spaced ]\nk=v\n"),
    case("crlf_and_cr", "[alembic]\r\nscript_location = m\r\nsqlalchemy.url = sqlite:////tmp/x.db\rversion_locations = a b\r\n"),
    case("bom", "\u{feff}[alembic]\nscript_location = m\n"),
    case("no_alembic_section", "[other]\nscript_location = m\n"),
    case("path_sep_os", "[alembic]\nscript_location = m\npath_separator = os\nversion_locations = a:b: c : :\nprepend_sys_path = .:lib\n"),
    case("path_sep_space", "[alembic]\nscript_location = m\npath_separator = space\nversion_locations = a  b\n"),
    case("path_sep_semicolon", "[alembic]\nscript_location = m\npath_separator = ;\nversion_locations = a;b\n"),
    case("path_sep_invalid", "[alembic]\nscript_location = m\npath_separator = comma\nversion_locations = a,b\n"),
    case("path_sep_empty", "[alembic]\nscript_location = m\npath_separator =\nversion_locations = a,b\n"),
    case("legacy_version_sep", "[alembic]\nscript_location = m\nversion_path_separator = os\nversion_locations = a:b\n"),
    case("legacy_split", "[alembic]\nscript_location = m\nversion_locations = a, b  c ,d\nprepend_sys_path = . lib:x\n"),
    case("truncate", "[alembic]\nscript_location = m\ntruncate_slug_length = 0\n"),
    case("truncate_bad", "[alembic]\nscript_location = m\ntruncate_slug_length = 4O\n"),
    case("truncate_underscore", "[alembic]\nscript_location = m\ntruncate_slug_length = -1_2\n"),
    case("booleans", "[alembic]\nscript_location = m\nsourceless = True\nrecursive_version_locations = true\nrevision_environment = YES\ntimezone = UTC\noutput_encoding = latin-1\n"),
    case("revenv_bad", "[alembic]\nscript_location = m\nrevision_environment = maybe\n"),
    case("hooks", "[alembic]\nscript_location = m\n[post_write_hooks]\nhooks = black,ruff  x\nblack.type = console_scripts\nblack.entrypoint = black\nruff.type = exec\n"),
    case("urls", "[alembic]\nscript_location = m\nsqlalchemy.url = sqlite+pysqlite:///../up/./x.db?mode=ro&timeout=3\n"),
    case("url_memory", "[alembic]\nscript_location = m\nsqlalchemy.url = sqlite:///:memory:\n"),
    case("url_uri", "[alembic]\nscript_location = m\nsqlalchemy.url = sqlite:///file:x.db?uri=true&mode=ro&cache=shared\n"),
    case("url_pg", "[alembic]\nscript_location = m\nsqlalchemy.url = postgresql://scott:tig%40er@db.example:5432/app?sslmode=require\n"),
    case("url_sqlite_host", "[alembic]\nscript_location = m\nsqlalchemy.url = sqlite://u:pw@host/x.db\n"),
    case("url_aiosqlite_unicode", "[alembic]\nscript_location = m\nsqlalchemy.url = sqlite+aiosqlite:///données é.db\n"),
    case("logging_format", "[alembic]\nscript_location = m\n[formatter_generic]\nformat = %(levelname)-5.5s [%(name)s] %(message)s\ndatefmt = %H:%M:%S\n"),
    case("unicode_keys", "[alembic]\nscript_location = m\nÄÖ = ü\nΣΑΣ = x\n"),
    case("ws_separators", "[alembic]\nscript_location\t=\tm\nkey\u{1c} = v\u{a0}\n"),
    Case {
        name: "script_dir_exists",
        dirs: &["mig/versions"],
        ..case("", "[alembic]\nscript_location = ./mig/\n")
    },
    Case {
        name: "named_section",
        section: "second",
        ..case("", "[alembic]\nscript_location = a\n[second]\nscript_location = b\nsqlalchemy.url = sqlite://\n")
    },
    Case {
        name: "missing_file",
        ini: None,
        ..case("", "")
    },
    Case {
        name: "missing_file_with_toml",
        ini: None,
        toml: Some("[tool.alembic]\nscript_location = \"%(here)s/alembic\"\nprepend_sys_path = [\".\"]\n"),
        ..case("", "")
    },
    Case {
        name: "ini_path_with_dotdot",
        ini_path: "sub/../conf/alembic.ini",
        dirs: &["sub", "conf"],
        ..case("", "[alembic]\nscript_location = %(here)s/m\n")
    },
    Case {
        name: "toml_and_ini",
        toml: Some("[tool.alembic]\nscript_location = \"%(here)s/from_toml\"\nfile_template = \"%%(rev)s\"\nversion_locations = [\"%(here)s/v\", \"w\"]\ntruncate_slug_length = 7\nsourceless = true\nrecursive_version_locations = false\ntimezone = \"UTC\"\n[[tool.alembic.post_write_hooks]]\nname = \"ruff\"\ntype = \"exec\"\nexecutable = \"%(here)s/ruff\"\n"),
        ..case("", "[alembic]\nfile_template = %%(slug)s\nsqlalchemy.url = sqlite:///t.db\n")
    },
    Case {
        name: "toml_bool_type_error",
        toml: Some("[tool.alembic]\nscript_location = \"m\"\nsourceless = \"yes\"\n"),
        ..case("", "[alembic]\n")
    },
    Case {
        name: "toml_float",
        toml: Some("[tool.alembic]\nscript_location = \"m\"\ntimezone = 1.5\n"),
        ..case("", "[alembic]\n")
    },
    Case {
        name: "toml_bad_format",
        toml: Some("[tool.alembic]\nscript_location = \"%(there)s/m\"\n"),
        ..case("", "[alembic]\n")
    },
    Case {
        name: "toml_incorrect_format",
        toml: Some("[tool]\nalembic = 3\n"),
        ..case("", "[alembic]\nscript_location = m\n")
    },
    Case {
        name: "package_resource",
        dirs: &["difftestpkg_a/migrations"],
        ..case("", "[alembic]\nscript_location = difftestpkg_a:migrations\nprepend_sys_path = .\npath_separator = os\n")
    },
];

/// The Python side: for each case directory (argv), resolve everything Alembic would and
/// print records. `os.access` is patched only for a second from_config call, to read the
/// fields of a ScriptDirectory whose directory does not exist.
const HARNESS: &str = r#"
import os, sys, warnings
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic import util
from sqlalchemy.engine import make_url

def emit(case, key, ok, text):
    sys.stdout.write("%s\t%s\t%s\t%s\n" % (case, key, "OK" if ok else "ERR", str(text).encode("utf-8").hex()))

def attempt(case, key, fn):
    try:
        v = fn()
    except Exception as e:
        emit(case, key, False, e)
        return None, False
    emit(case, key, True, v)
    return v, True

real_access = os.access
base_path = list(sys.path)
for d in sys.argv[1:]:
    os.chdir(d)
    sys.path[:] = base_path
    meta = dict(line.split("=", 1) for line in open(os.path.join(d, "meta")).read().splitlines())
    case = meta["name"]
    cfg = Config(file_=meta["ini"], toml_file="pyproject.toml", ini_section=meta["section"])
    fc, ok = attempt(case, "load", lambda: (cfg.file_config, "")[1])
    if not ok:
        continue
    fc = cfg.file_config
    emit(case, "sections", True, "\n".join(fc.sections()))
    for s in fc.sections():
        attempt(case, "items:" + s, lambda: "\n".join(k for k, _ in cfg.get_section(s).items()))
        for o in fc.options(s):
            attempt(case, "get:%s:%s" % (s, o), lambda: fc.get(s, o))
    for name in ["script_location", "sqlalchemy.url", "here", "nope"]:
        attempt(case, "main:" + name, lambda: repr(cfg.get_main_option(name)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        attempt(case, "script.error", lambda: (ScriptDirectory.from_config(cfg), "")[1])
    sys.path[:] = base_path
    os.access = lambda *a, **k: True
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                sd, ok = ScriptDirectory.from_config(cfg), True
                emit(case, "script.load", True, "<ScriptDirectory>")
            except Exception as e:
                ok = False
                emit(case, "script.load", False, e)
    finally:
        os.access = real_access
    if ok:
        emit(case, "script.dir", True, sd.dir)
        emit(case, "script.version_locations", True, "\n".join(sd.version_locations))
        emit(case, "script.version_dirs", True, "\n".join(str(p) for p in sd._version_locations))
        emit(case, "script.file_template", True, sd.file_template)
        emit(case, "script.truncate_slug_length", True, sd.truncate_slug_length)
        emit(case, "script.sourceless", True, sd.sourceless)
        emit(case, "script.recursive", True, sd.recursive_version_locations)
        emit(case, "script.output_encoding", True, sd.output_encoding)
        emit(case, "script.timezone", True, repr(sd.timezone))
        emit(case, "script.hooks", True, "\n".join("|".join("%s=%s" % kv for kv in h.items()) for h in sd.hooks))
        emit(case, "script.warnings", True, "\n".join(str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            emit(case, "script.prepend", True, "\n".join(cfg.get_prepend_sys_paths_list() or []))
    attempt(case, "revenv", lambda: util.asbool(cfg.get_alembic_option("revision_environment")))
    sys.path[:] = base_path
    try:
        url = cfg.get_main_option("sqlalchemy.url")
    except Exception:
        url = None
    if url:
        attempt(case, "url.obfuscated", lambda: make_url(url).render_as_string(hide_password=True))
        try:
            u = make_url(url)
        except Exception:
            u = None
        if u is not None and u.drivername.split("+")[0] == "sqlite":
            attempt(case, "url.sqlite", lambda: u.get_dialect()().create_connect_args(u)[0][0])
"#;

type Records = BTreeMap<(String, String), (bool, String)>;

fn python() -> PathBuf {
    std::env::var_os("ALEMBIC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

fn hex_decode(s: &str) -> String {
    let bytes: Vec<u8> = (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn run_python(args: &[PathBuf], script: &str, env: &[(&str, Option<&str>)]) -> Records {
    let py = python();
    assert!(
        py.exists(),
        "differential tests need the Python reference at {} (symlink the project venv to \
         <crate>/.venv or set ALEMBIC_PYTHON); refusing to skip",
        py.display()
    );
    let mut cmd = Command::new(&py);
    cmd.arg("-c").arg(script).args(args);
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    assert!(
        out.status.success(),
        "python harness failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut records = Records::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "bad harness line {line:?}");
        records.insert(
            (f[0].to_string(), f[1].to_string()),
            (f[2] == "OK", hex_decode(f[3])),
        );
    }
    records
}

fn py_bool(b: bool) -> String {
    if b { "True" } else { "False" }.to_string()
}

fn py_opt_repr(v: &Option<String>) -> String {
    v.as_deref()
        .map_or_else(|| "None".to_string(), super::pyutil::py_repr)
}

/// The Rust side of the harness, record for record.
fn rust_records(case: &Case, dir: &Path, out: &mut Records) {
    let name = case.name.to_string();
    let mut put = |key: &str, r: Result<String, String>| {
        let v = match r {
            Ok(v) => (true, v),
            Err(e) => (false, e),
        };
        out.insert((name.clone(), key.to_string()), v);
    };
    let cfg = Config::load(ConfigOptions {
        file: Some(case.ini_path.to_string()),
        toml_file: Some("pyproject.toml".into()),
        ini_section: case.section.to_string(),
        x_arguments: vec![],
        config_args: vec![],
        cwd: dir.to_path_buf(),
    });
    let cfg = match cfg {
        Ok(c) => {
            put("load", Ok(String::new()));
            c
        }
        Err(e) => return put("load", Err(e.to_string())),
    };
    let fc: &IniParser = cfg.file_config();
    let sections: Vec<String> = fc.sections().map(str::to_string).collect();
    put("sections", Ok(sections.join("\n")));
    for s in &sections {
        let items = cfg.get_section(s).map_err(|e| e.to_string());
        put(
            &format!("items:{s}"),
            items.map(|i| {
                i.unwrap_or_default()
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        );
        // ConfigParser.options(): the section's keys plus the defaults'.
        let raw_keys = fc.options(s).unwrap_or_default();
        for o in raw_keys {
            put(
                &format!("get:{s}:{o}"),
                fc.get(s, &o)
                    .map(|v| v.unwrap_or_default())
                    .map_err(|e| e.to_string()),
            );
        }
    }
    for n in ["script_location", "sqlalchemy.url", "here", "nope"] {
        put(
            &format!("main:{n}"),
            cfg.get_main_option(n)
                .map(|v| py_opt_repr(&v))
                .map_err(|e| e.to_string()),
        );
    }
    let settings = ScriptSettings::from_config(&cfg);
    put(
        "script.error",
        settings
            .as_ref()
            .map_err(|e| e.to_string())
            .and_then(|s| s.check_script_dir(dir).map_err(|e| e.to_string()))
            .map(|_| String::new()),
    );
    put(
        "script.load",
        settings
            .as_ref()
            .map(|_| "<ScriptDirectory>".to_string())
            .map_err(|e| e.to_string()),
    );
    if let Ok(s) = &settings {
        put(
            "script.dir",
            Ok(s.script_dir.to_string_lossy().into_owned()),
        );
        put(
            "script.version_locations",
            Ok(s.version_locations.clone().unwrap_or_default().join("\n")),
        );
        put(
            "script.version_dirs",
            s.version_dirs(dir)
                .map(|v| {
                    v.iter()
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .map_err(|e| e.to_string()),
        );
        put("script.file_template", Ok(s.file_template.clone()));
        put(
            "script.truncate_slug_length",
            Ok(s.truncate_slug_length.to_string()),
        );
        put("script.sourceless", Ok(py_bool(s.sourceless)));
        put(
            "script.recursive",
            Ok(py_bool(s.recursive_version_locations)),
        );
        put("script.output_encoding", Ok(s.output_encoding.clone()));
        put("script.timezone", Ok(py_opt_repr(&s.timezone)));
        let hooks: Vec<String> = s
            .hooks
            .iter()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        put("script.hooks", Ok(hooks.join("\n")));
        put("script.warnings", Ok(s.warnings.join("\n")));
        put(
            "script.prepend",
            Ok(s.prepend_sys_path.clone().unwrap_or_default().join("\n")),
        );
    }
    put(
        "revenv",
        cfg.revision_environment()
            .map(py_bool)
            .map_err(|e| e.to_string()),
    );
    if let Ok(Some(url)) = cfg.get_main_option("sqlalchemy.url") {
        if !url.is_empty() {
            put(
                "url.obfuscated",
                obfuscate_url_pw(&url).map_err(|e| e.to_string()),
            );
            if let Ok(u) = parse_url(&url) {
                if u.drivername.split('+').next() == Some("sqlite") {
                    let r = parse_sqlite_url(&url, dir).map(|s| match s.database {
                        SqliteDatabase::Memory => ":memory:".to_string(),
                        SqliteDatabase::File(p) => p.to_string_lossy().into_owned(),
                        SqliteDatabase::Uri(u) => u,
                    });
                    put("url.sqlite", r.map_err(|e| e.to_string()));
                }
            }
        }
    }
}

fn write_case(root: &Path, idx: usize, case: &Case) -> PathBuf {
    let dir = root.join(format!("c{idx:02}"));
    std::fs::create_dir_all(&dir).unwrap();
    for d in case.dirs {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    if let Some(ini) = case.ini {
        let p = dir.join(case.ini_path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, ini).unwrap();
    }
    if let Some(t) = case.toml {
        std::fs::write(dir.join("pyproject.toml"), t).unwrap();
    }
    std::fs::write(
        dir.join("meta"),
        format!(
            "name={}\nini={}\nsection={}\n",
            case.name, case.ini_path, case.section
        ),
    )
    .unwrap();
    dir
}

fn report(py: &Records, rs: &Records) -> Vec<String> {
    let keys: std::collections::BTreeSet<_> = py.keys().chain(rs.keys()).collect();
    keys.into_iter()
        .filter(|k| py.get(*k) != rs.get(*k))
        .map(|k| {
            format!(
                "[{}] {}:\n   python: {:?}\n   rust:   {:?}",
                k.0,
                k.1,
                py.get(k),
                rs.get(k)
            )
        })
        .collect()
}

#[test]
fn ini_files_resolve_like_python_alembic() {
    let root = tempfile::tempdir().unwrap();
    // Canonical path: Python's os.getcwd() reports the resolved directory.
    let root_path = root.path().canonicalize().unwrap();
    let dirs: Vec<PathBuf> = CASES
        .iter()
        .enumerate()
        .map(|(i, c)| write_case(&root_path, i, c))
        .collect();
    let names: std::collections::HashSet<_> = CASES.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), CASES.len(), "case names must be unique");
    let py = run_python(&dirs, HARNESS, &[]);
    for c in CASES {
        assert!(
            py.contains_key(&(c.name.to_string(), "load".to_string())),
            "python harness skipped case {}",
            c.name
        );
    }
    // Guard against a harness that silently observes little: the cases above yield several
    // hundred records.
    assert!(
        py.len() > 400,
        "python harness printed only {} records",
        py.len()
    );
    let mut rs = Records::new();
    for (c, d) in CASES.iter().zip(&dirs) {
        rust_records(c, d, &mut rs);
    }
    if std::env::var_os("CONFIG_DIFF_DUMP").is_some() {
        // Debug aid: show what Python observed (run with --nocapture).
        for ((c, k), v) in &py {
            eprintln!("{c} {k} {v:?}");
        }
    }
    let diffs = report(&py, &rs);
    assert!(
        diffs.is_empty(),
        "{} differences from Python:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// `(-c values, -n, -x values, $ALEMBIC_CONFIG)`.
type CliCase = (
    &'static [&'static str],
    Option<&'static str>,
    &'static [&'static str],
    Option<&'static str>,
);

const CLI_CASES: &[CliCase] = &[
    (&[], None, &[], None),
    (&[], None, &[], Some("env.ini")),
    (&[], None, &[], Some("sub/pyproject.toml")),
    (
        &["my.ini"],
        Some("custom"),
        &["a=1", "flag", "b=x=y", "a=2"],
        Some("env.ini"),
    ),
    (&["pyproject.toml"], None, &["k="], Some("env.ini")),
    (&["d/pyproject.toml", "x.ini"], None, &[], None),
    (&["a.ini", "b.ini"], None, &[], None),
    (&["pyproject.toml", "other/pyproject.toml"], None, &[], None),
    (&[""], None, &[], None),
    (&[], None, &[], Some("")),
];

const CLI_HARNESS: &str = r#"
import os, sys
from alembic.config import CommandLine
cl = CommandLine()
def emit(case, key, ok, text):
    sys.stdout.write("%s\t%s\t%s\t%s\n" % (case, key, "OK" if ok else "ERR", str(text).encode("utf-8").hex()))
args = sys.argv[1:]
i = 0
while i < len(args):
    case, env, n = args[i], args[i + 1], int(args[i + 2])
    argv = args[i + 3 : i + 3 + n]
    i += 3 + n
    if env == "<unset>":
        os.environ.pop("ALEMBIC_CONFIG", None)
    else:
        os.environ["ALEMBIC_CONFIG"] = env
    opts = cl.parser.parse_args(argv)
    try:
        toml, ini = cl._inis_from_config(opts)
        emit(case, "files", True, "%s|%s" % (toml, ini))
    except Exception as e:
        emit(case, "files", False, e)
    emit(case, "name", True, opts.name)
    emit(case, "x", True, "\n".join(opts.x or []))
    d = {}
    for arg in opts.x or []:
        k, _, v = arg.partition("=")
        d[k] = v
    emit(case, "xdict", True, "\n".join("%s=%s" % kv for kv in d.items()))
"#;

#[test]
fn cli_file_choice_and_x_arguments_like_python_alembic() {
    let mut args: Vec<PathBuf> = Vec::new();
    let mut rs = Records::new();
    for (i, (configs, name, xs, env)) in CLI_CASES.iter().enumerate() {
        let case = format!("cli{i}");
        let mut argv: Vec<String> = Vec::new();
        for c in *configs {
            argv.push("-c".into());
            argv.push((*c).into());
        }
        if let Some(n) = name {
            argv.push("-n".into());
            argv.push((*n).into());
        }
        for x in *xs {
            argv.push(format!("-x{x}"));
        }
        argv.push("heads".into());
        args.push(case.clone().into());
        args.push(env.unwrap_or("<unset>").into());
        args.push(argv.len().to_string().into());
        args.extend(argv.iter().map(PathBuf::from));

        let configs: Vec<String> = configs.iter().map(|c| c.to_string()).collect();
        let mut put = |k: &str, v: Result<String, String>| {
            rs.insert(
                (case.clone(), k.to_string()),
                match v {
                    Ok(v) => (true, v),
                    Err(e) => (false, e),
                },
            );
        };
        put(
            "files",
            ini_and_toml_paths(&configs, *env)
                .map(|(t, i)| format!("{t}|{i}"))
                .map_err(|e| e.to_string()),
        );
        let opts = ConfigOptions {
            file: None,
            toml_file: None,
            ini_section: name.unwrap_or("alembic").to_string(),
            x_arguments: xs.iter().map(|x| x.to_string()).collect(),
            config_args: vec![],
            cwd: PathBuf::from("/"),
        };
        put("name", Ok(opts.ini_section.clone()));
        let cfg = Config::load(opts).map_err(|e| e.to_string());
        if let Ok(cfg) = cfg {
            put("x", Ok(cfg.x_arguments().join("\n")));
            let d: Vec<String> = cfg
                .x_arguments_dict()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            put("xdict", Ok(d.join("\n")));
        }
    }
    let py = run_python(&args, CLI_HARNESS, &[("ALEMBIC_CONFIG", None)]);
    let diffs = report(&py, &rs);
    assert!(
        diffs.is_empty(),
        "{} differences from Python:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

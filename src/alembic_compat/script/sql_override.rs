//! SQL override files: `<revision id>.<dialect>.sql` next to a revision file replaces that
//! revision's Python body for that dialect. The escape hatch for bodies ralembic cannot run
//! natively (an import of the application's models, a library we do not model).
//!
//! ```sql
//! -- upgrade
//! CREATE TABLE account (id INTEGER NOT NULL, PRIMARY KEY (id));
//! INSERT INTO account (id) VALUES (1);
//! -- downgrade
//! DROP TABLE account;
//! ```
//!
//! A section starts at a line that is exactly `-- upgrade` or `-- downgrade` (any case, spaces
//! around allowed); text before the first marker may only be comments. Statements end at `;`
//! outside quotes and comments; a `CREATE TRIGGER` runs to its `END;`. Alembic loads only
//! `*.py` files, so these files never change the revision graph.

use std::cell::RefCell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rustc_hash::{FxHashMap, FxHashSet};

/// One statement and the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverrideStatement {
    pub sql: String,
    pub line: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SqlOverride {
    pub path: PathBuf,
    /// `None` when the file has no `-- upgrade` section.
    pub upgrade: Option<Vec<OverrideStatement>>,
    pub downgrade: Option<Vec<OverrideStatement>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("{path}:{line}:1: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// The override file for `revision` next to `script_path`, if there is one.
pub fn find_override(script_path: &Path, revision: &str, dialect: &str) -> Option<PathBuf> {
    let candidate = script_path
        .parent()?
        .join(format!("{revision}.{dialect}.sql"));
    candidate.is_file().then_some(candidate)
}

/// [`find_override`] for a whole plan: each versions directory is listed once, instead of
/// one `stat` per revision, and every later question gets the same answer, so the run uses
/// exactly the override files its preflight checked. A 200-revision upgrade asked the file
/// system 400 times for files that did not exist.
#[derive(Debug, Default)]
pub struct OverrideFinder {
    /// Per directory, what its listing says about override files. Keyed and hashed as the
    /// path's bytes: hashing a `Path` walks its components, and each revision is asked about
    /// twice (preflight and run).
    listed: RefCell<FxHashMap<OsString, Listing>>,
}

/// A versions directory's override files, and the answers given for it.
#[derive(Debug)]
enum Listing {
    /// Listed, with no `.sql` file: the answer for every revision there, with nothing to
    /// remember per revision.
    Empty,
    /// Listed: the names in it that end in `.sql` (any dialect's override files).
    Names {
        names: FxHashSet<OsString>,
        /// Per revision file name and dialect, the answer given.
        found: FxHashMap<(OsString, String), Option<PathBuf>>,
    },
    /// Not listable: each revision asks the file system, once.
    Unlisted {
        found: FxHashMap<(OsString, String), Option<PathBuf>>,
    },
}

impl OverrideFinder {
    pub fn find(&self, script_path: &Path, revision: &str, dialect: &str) -> Option<PathBuf> {
        let dir = script_path.parent()?;
        let mut listed = self.listed.borrow_mut();
        if !listed.contains_key(dir.as_os_str()) {
            listed.insert(dir.as_os_str().to_owned(), list_sql_files(dir));
        }
        let listing = listed.get_mut(dir.as_os_str())?;
        let found = match listing {
            Listing::Empty => return None,
            Listing::Names { names, found } => {
                // Only a name that is there can be the file (a directory or a dangling link
                // of that name is not, as `is_file` says).
                if !names.contains(std::ffi::OsStr::new(&format!("{revision}.{dialect}.sql"))) {
                    return None;
                }
                found
            }
            Listing::Unlisted { found } => found,
        };
        let key = (
            script_path.file_name().unwrap_or_default().to_owned(),
            dialect.to_string(),
        );
        found
            .entry(key)
            .or_insert_with(|| find_override(script_path, revision, dialect))
            .clone()
    }
}

fn list_sql_files(dir: &Path) -> Listing {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Listing::Unlisted {
            found: FxHashMap::default(),
        };
    };
    let names: FxHashSet<OsString> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.to_str().is_some_and(|n| n.ends_with(".sql")))
        .collect();
    if names.is_empty() {
        Listing::Empty
    } else {
        Listing::Names {
            names,
            found: FxHashMap::default(),
        }
    }
}

pub fn load_override(path: &Path) -> Result<SqlOverride, OverrideError> {
    let text = std::fs::read_to_string(path).map_err(|e| OverrideError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_override(path, &text)
}

pub fn parse_override(path: &Path, text: &str) -> Result<SqlOverride, OverrideError> {
    let shown = path.display().to_string();
    let err = |line: usize, message: String| OverrideError::Syntax {
        path: shown.clone(),
        line,
        message,
    };
    let mut out = SqlOverride {
        path: path.to_path_buf(),
        ..SqlOverride::default()
    };
    // (section name, first line of its body, body text)
    let mut sections: Vec<(String, usize, String)> = Vec::new();
    let mut preamble_line = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let marker = line
            .strip_prefix("--")
            .map(|m| m.trim().to_ascii_lowercase());
        match marker.as_deref() {
            Some(name @ ("upgrade" | "downgrade")) => {
                if sections.iter().any(|(n, ..)| n == name) {
                    return Err(err(i + 1, format!("a second '-- {name}' section")));
                }
                sections.push((name.to_string(), i + 2, String::new()));
            }
            _ => match sections.last_mut() {
                Some((_, _, body)) => {
                    body.push_str(raw);
                    body.push('\n');
                }
                None if line.is_empty() || line.starts_with("--") => {}
                None => {
                    preamble_line.get_or_insert(i + 1);
                }
            },
        }
    }
    if let Some(line) = preamble_line {
        return Err(err(
            line,
            "SQL before the first '-- upgrade' or '-- downgrade' line".into(),
        ));
    }
    if sections.is_empty() {
        return Err(err(1, "no '-- upgrade' or '-- downgrade' section".into()));
    }
    for (name, first_line, body) in sections {
        let statements = split_statements(&body, first_line).map_err(|(l, m)| err(l, m))?;
        match name.as_str() {
            "upgrade" => out.upgrade = Some(statements),
            _ => out.downgrade = Some(statements),
        }
    }
    Ok(out)
}

/// Splits SQL text at top-level `;`, keeping each statement's starting line.
fn split_statements(
    body: &str,
    first_line: usize,
) -> Result<Vec<OverrideStatement>, (usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start_line = first_line;
    let mut line = first_line;
    let mut chars = body.chars().peekable();
    let mut in_trigger = false;
    while let Some(c) = chars.next() {
        if current.trim().is_empty() && !c.is_whitespace() {
            start_line = line;
        }
        match c {
            '\n' => {
                line += 1;
                current.push(c);
            }
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let opened = line;
                current.push(c);
                loop {
                    match chars.next() {
                        Some(d) => {
                            if d == '\n' {
                                line += 1;
                            }
                            current.push(d);
                            if d == close {
                                // A doubled quote is an escaped quote.
                                if chars.peek() == Some(&close) && close != ']' {
                                    if let Some(e) = chars.next() {
                                        current.push(e);
                                    }
                                    continue;
                                }
                                break;
                            }
                        }
                        None => return Err((opened, format!("unterminated {c} quote"))),
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                // A comment runs to the end of the line; keep it out of the statement text.
                for d in chars.by_ref() {
                    if d == '\n' {
                        line += 1;
                        current.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let opened = line;
                chars.next();
                let mut closed = false;
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if d == '\n' {
                        line += 1;
                        current.push('\n');
                    }
                    if prev == '*' && d == '/' {
                        closed = true;
                        break;
                    }
                    prev = d;
                }
                if !closed {
                    return Err((opened, "unterminated /* comment".into()));
                }
            }
            ';' => {
                let upper = current.trim_start().to_ascii_uppercase();
                if !in_trigger
                    && upper.starts_with("CREATE")
                    && upper.split_whitespace().take(4).any(|w| w == "TRIGGER")
                {
                    in_trigger = true;
                }
                let ends_trigger = upper.trim_end().ends_with("END");
                if in_trigger && !ends_trigger {
                    current.push(';');
                    continue;
                }
                in_trigger = false;
                let sql = current.trim().to_string();
                if !sql.is_empty() {
                    out.push(OverrideStatement {
                        sql,
                        line: start_line,
                    });
                }
                current.clear();
            }
            c => current.push(c),
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        return Err((start_line, "the last statement has no closing ';'".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SqlOverride, OverrideError> {
        parse_override(Path::new("v/abc.sqlite.sql"), text)
    }

    #[test]
    fn the_finder_answers_as_the_file_system_does_once_per_revision() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let v = dir.path();
        std::fs::write(v.join("a1.sqlite.sql"), "-- upgrade\n").expect("write");
        // A directory named like an override file is not one, nor is another dialect's.
        std::fs::create_dir(v.join("b2.sqlite.sql")).expect("mkdir");
        std::fs::write(v.join("c3.postgresql.sql"), "-- upgrade\n").expect("write");
        let finder = OverrideFinder::default();
        for rev in ["a1", "b2", "c3", "d4"] {
            let script = v.join(format!("{rev}_x.py"));
            assert_eq!(
                finder.find(&script, rev, "sqlite"),
                find_override(&script, rev, "sqlite"),
                "{rev}"
            );
        }
        assert_eq!(
            finder.find(&v.join("a1_x.py"), "a1", "sqlite"),
            Some(v.join("a1.sqlite.sql"))
        );
        // Later answers are the first ones: the run uses what its preflight checked.
        std::fs::write(v.join("d4.sqlite.sql"), "-- upgrade\n").expect("write");
        assert_eq!(finder.find(&v.join("d4_x.py"), "d4", "sqlite"), None);
        assert!(find_override(&v.join("d4_x.py"), "d4", "sqlite").is_some());
        // Another dialect's override file is found in the same listing.
        assert_eq!(
            finder.find(&v.join("c3_x.py"), "c3", "postgresql"),
            Some(v.join("c3.postgresql.sql"))
        );
        // A directory listed with no override file keeps answering no, as it first did.
        let plain = v.join("plain");
        std::fs::create_dir(&plain).expect("mkdir");
        assert_eq!(finder.find(&plain.join("f6_x.py"), "f6", "sqlite"), None);
        std::fs::write(plain.join("f6.sqlite.sql"), "-- upgrade\n").expect("write");
        assert_eq!(finder.find(&plain.join("f6_x.py"), "f6", "sqlite"), None);
        // A directory that cannot be listed: each revision asks the file system.
        let missing = v.join("gone").join("e5_x.py");
        assert_eq!(finder.find(&missing, "e5", "sqlite"), None);
    }

    #[test]
    fn sections_statements_and_lines() {
        let o = parse(
            "-- written by hand\n-- upgrade\nCREATE TABLE t (a TEXT DEFAULT 'x;y');\n\n\
             INSERT INTO t VALUES ('it''s'); -- trailing\n/* note; */ INSERT INTO t VALUES ('z');\n\
             -- DOWNGRADE\nDROP TABLE t;\n",
        )
        .unwrap();
        let up = o.upgrade.unwrap();
        assert_eq!(up.len(), 3);
        assert_eq!(up[0].sql, "CREATE TABLE t (a TEXT DEFAULT 'x;y')");
        assert_eq!(up[0].line, 3);
        assert_eq!(up[1].sql, "INSERT INTO t VALUES ('it''s')");
        assert_eq!(up[1].line, 5);
        assert_eq!(up[2].sql, "INSERT INTO t VALUES ('z')");
        assert_eq!(o.downgrade.unwrap()[0].sql, "DROP TABLE t");
    }

    #[test]
    fn triggers_run_to_end() {
        let o = parse(
            "-- upgrade\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET a = 1;\n  UPDATE t SET b = 2;\nEND;\nSELECT 1;\n",
        )
        .unwrap();
        let up = o.upgrade.unwrap();
        assert_eq!(up.len(), 2, "{up:?}");
        assert!(up[0].sql.ends_with("END"));
        assert_eq!(o.downgrade, None);
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            parse("SELECT 1;\n-- upgrade\n").unwrap_err().to_string(),
            "v/abc.sqlite.sql:1:1: SQL before the first '-- upgrade' or '-- downgrade' line"
        );
        assert_eq!(
            parse("-- upgrade\nSELECT 1;\nSELECT 'x\n")
                .unwrap_err()
                .to_string(),
            "v/abc.sqlite.sql:3:1: unterminated ' quote"
        );
        assert_eq!(
            parse("-- upgrade\nSELECT 1\n").unwrap_err().to_string(),
            "v/abc.sqlite.sql:2:1: the last statement has no closing ';'"
        );
        assert_eq!(
            parse("-- upgrade\n-- upgrade\n").unwrap_err().to_string(),
            "v/abc.sqlite.sql:2:1: a second '-- upgrade' section"
        );
    }
}

//! Reading an existing SQLite table back the way SQLAlchemy's SQLite dialect reflects it
//! (PRAGMA table_info / foreign_key_list / index_list / index_info plus regexes over the
//! `sqlite_master` text), with Alembic's `autogen_column_reflect` hook applied to defaults.
//! Batch mode renders the result, so reflection's losses are kept on purpose (e.g. a collation,
//! an unnamed CHECK, the ON DELETE of a column-level REFERENCES).

use super::sqlite::{quote, ColDef, Computed, ConsDef, IdxDef, TableDef};
use super::DdlError;
use crate::alembic_compat::ops::{Autoincrement, Literal, TypeSpec};
use crate::alembic_compat::pattern::{Caps, Pattern};
use rusqlite::Connection;

fn sql_err(e: rusqlite::Error) -> DdlError {
    DdlError::Sqlite(e.to_string())
}

/// `SQLiteDialect._resolve_type_affinity`: a declared type to the SQLAlchemy type it reflects
/// as; `None` for NullType.
pub fn resolve_type(declared: &str) -> Option<TypeSpec> {
    static RE: Pattern = Pattern::new(r"^([\w ]+)(\(.*?\))?");
    let (coltype, args) = match RE.captures(declared) {
        Some(c) => (
            c.get(1).map_or("", |m| m.as_str()).to_string(),
            c.get(2).map(|m| m.as_str().to_string()),
        ),
        None => (String::new(), None),
    };
    const KNOWN: &[(&str, &str)] = &[
        ("BIGINT", "BIGINT"),
        ("BLOB", "BLOB"),
        ("BOOL", "BOOLEAN"),
        ("BOOLEAN", "BOOLEAN"),
        ("CHAR", "CHAR"),
        ("DATE", "DATE"),
        ("DATE_CHAR", "DATE"),
        ("DATETIME", "DATETIME"),
        ("DATETIME_CHAR", "DATETIME"),
        ("DOUBLE", "DOUBLE"),
        ("DECIMAL", "DECIMAL"),
        ("FLOAT", "FLOAT"),
        ("INT", "INTEGER"),
        ("INTEGER", "INTEGER"),
        ("JSON", "JSON"),
        ("JSONB", "JSONB"),
        ("NUMERIC", "NUMERIC"),
        ("REAL", "REAL"),
        ("SMALLINT", "SMALLINT"),
        ("TEXT", "TEXT"),
        ("TIME", "TIME"),
        ("TIME_CHAR", "TIME"),
        ("TIMESTAMP", "TIMESTAMP"),
        ("VARCHAR", "VARCHAR"),
        ("NVARCHAR", "NVARCHAR"),
        ("NCHAR", "NCHAR"),
    ];
    let name = if let Some((_, n)) = KNOWN.iter().find(|(k, _)| *k == coltype) {
        *n
    } else if coltype.contains("INT") {
        "INTEGER"
    } else if coltype.contains("CHAR") || coltype.contains("CLOB") || coltype.contains("TEXT") {
        "TEXT"
    } else if coltype.contains("BLOB") || coltype.is_empty() {
        return None;
    } else if coltype.contains("REAL") || coltype.contains("FLOA") || coltype.contains("DOUB") {
        "REAL"
    } else {
        "NUMERIC"
    };
    let mut nums: Vec<Literal> = vec![];
    if let Some(a) = args {
        static DIGITS: Pattern = Pattern::new(r"\d+");
        nums = DIGITS
            .find_iter(&a)
            .iter()
            .filter_map(|m| m.as_str().parse().ok())
            .map(Literal::Int)
            .collect();
    }
    // Types that take no arguments ignore reflected ones (SQLAlchemy warns and drops them).
    let takes = matches!(
        name,
        "CHAR" | "VARCHAR" | "NVARCHAR" | "NCHAR" | "TEXT" | "NUMERIC" | "DECIMAL" | "FLOAT"
    );
    let max = match name {
        "NUMERIC" | "DECIMAL" => 2,
        "FLOAT" => 1,
        _ => 2,
    };
    if !takes || nums.len() > max {
        nums.clear();
    }
    Some(TypeSpec {
        dialect: None,
        name: name.to_string(),
        args: nums,
        kwargs: vec![],
        custom: None,
    })
}

/// Alembic's `SQLiteImpl._guess_if_default_is_unparenthesized_sql_expr`.
fn parenthesize_default(d: &str) -> String {
    let plain_number = d.len() == 1 && d.chars().all(|c| c.is_ascii_digit() || c == '.');
    let quoted = d.len() > 2 && d.starts_with('\'') && d.ends_with('\'');
    let parened = d.len() > 2 && d.starts_with('(') && d.ends_with(')');
    if d.is_empty() || plain_number || quoted || parened {
        d.to_string()
    } else {
        format!("({d})")
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].replace("\"\"", "\"")
    } else {
        s.to_string()
    }
}

/// SQLite declares a generated column's type as, e.g., `INTEGER GENERATED ALWAYS`;
/// SQLAlchemy removes both words wherever they are, ignoring case.
pub(crate) fn generated_type(declared: &str) -> String {
    let mut t = declared.to_string();
    for word in ["generated", "always"] {
        let mut out = String::with_capacity(t.len());
        let mut rest = t.as_str();
        while let Some(i) = rest.to_ascii_lowercase().find(word) {
            out.push_str(&rest[..i]);
            rest = &rest[i + word.len()..];
        }
        out.push_str(rest);
        t = out;
    }
    t.trim().to_string()
}

/// What SQLAlchemy searches for generated columns' expressions: the table's SQL between
/// `CREATE TABLE ... (` and the last `)` (before `WITHOUT ROWID` / `STRICT`).
pub(crate) fn table_body(table_sql: &str) -> String {
    static BODY: Pattern =
        Pattern::new(r"(?is)^create table .*?\((.*)\)(?:\s*,?\s*(?:WITHOUT\s+ROWID|STRICT))*$");
    BODY.captures(table_sql.trim())
        .and_then(|c| c.get(1))
        .map_or(String::new(), |m| m.as_str().trim().to_string())
}

/// A generated column's expression, found in the table's body with SQLAlchemy's pattern
/// (greedy, one line at most: on a table written on one line it takes too much, and the
/// copy fails as Alembic's does).
pub(crate) fn generated_sqltext(column: &str, table_body: &str) -> String {
    let pattern = format!(
        r"(?i){}[^,]*\s+GENERATED\s+ALWAYS\s+AS\s+\((.*)\)\s*(?:virtual|stored)?",
        regex::escape(column)
    );
    regex::Regex::new(&pattern)
        .ok()
        .and_then(|re| re.captures(table_body))
        .and_then(|c| c.get(1))
        .map_or(String::new(), |m| m.as_str().to_string())
}

pub fn reflect_table(conn: &Connection, name: &str) -> Result<TableDef, DdlError> {
    let table_sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .ok();
    let Some(table_sql) = table_sql else {
        return Err(DdlError::NoSuchTable(name.to_string()));
    };
    let qname = format!("\"{}\"", name.replace('"', "\"\""));
    // table_xinfo, as SQLAlchemy reads it: generated columns are hidden from table_info.
    let mut st = conn
        .prepare(&format!("PRAGMA table_xinfo({qname})"))
        .map_err(sql_err)?;
    let rows: Vec<(String, String, bool, Option<String>, i64, i64)> = st
        .query_map([], |r| {
            Ok((
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?
        .into_iter()
        // 1: a virtual table's hidden column; 2 and 3: generated, virtual and stored.
        .filter(|r| r.5 != 1)
        .collect();
    let mut pk: Vec<(i64, String)> = rows
        .iter()
        .filter(|r| r.4 > 0)
        .map(|r| (r.4, r.0.clone()))
        .collect();
    pk.sort();
    let pk_columns: Vec<String> = pk.into_iter().map(|p| p.1).collect();
    let body = if rows.iter().any(|r| r.5 >= 2) {
        table_body(&table_sql)
    } else {
        String::new()
    };
    let columns = rows
        .iter()
        .map(|(n, ty, notnull, dflt, pkpos, hidden)| ColDef {
            name: n.clone(),
            type_: if *hidden >= 2 {
                resolve_type(&generated_type(ty))
            } else {
                resolve_type(ty)
            },
            nullable: !notnull,
            primary_key: *pkpos > 0,
            autoincrement: Autoincrement::Auto,
            default: dflt.as_deref().map(parenthesize_default),
            inline: vec![],
            has_fk: false,
            type_events: false,
            on_conflict: Default::default(),
            computed: (*hidden >= 2).then(|| Computed {
                sqltext: generated_sqltext(n, &body),
                persisted: Some(*hidden == 3),
            }),
        })
        .collect::<Vec<_>>();
    static PK_NAME: Pattern = Pattern::starting(
        r#"(?i)CONSTRAINT\s+(?:"(.+?)"|(\w+))\s+PRIMARY\s+KEY"#,
        &["CONSTRAINT", "PRIMARY"],
        &["CONSTRAINT"],
    );
    let pk_name = PK_NAME
        .captures(&table_sql)
        .and_then(|c| c.get(1).or(c.get(2)).map(|m| m.as_str().to_string()));

    let mut constraints = vec![];
    constraints.extend(reflect_fks(conn, &qname, &table_sql)?);
    // Listed once: unique constraints and indexes both come from it.
    let listed = index_list(conn, &qname)?;
    constraints.extend(reflect_uniques(conn, &listed, &table_sql)?);
    constraints.extend(reflect_checks(&table_sql));
    // A reflected Table carries these options, and batch mode gives them to the new table.
    let (with_rowid, strict) = table_options(&table_sql);
    let mut t = TableDef {
        name: name.to_string(),
        schema: None,
        columns,
        pk_name,
        pk_columns,
        constraints,
        indexes: reflect_indexes(conn, listed)?,
        autoincrement: false,
        with_rowid,
        strict,
        prefixes: vec![],
        if_not_exists: false,
        pk_on_conflict: None,
    };
    for c in t.constraints.iter() {
        if let ConsDef::ForeignKey { columns, .. } = c {
            for col in t.columns.iter_mut() {
                if columns.contains(&col.name) {
                    col.has_fk = true;
                }
            }
        }
    }
    Ok(t)
}

fn reflect_fks(conn: &Connection, qname: &str, table_sql: &str) -> Result<Vec<ConsDef>, DdlError> {
    let mut st = conn
        .prepare(&format!("PRAGMA foreign_key_list({qname})"))
        .map_err(sql_err)?;
    // (id, seq, table, from, to)
    let rows: Vec<(i64, i64, String, String, Option<String>)> = st
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(sql_err)?
        .collect::<Result<_, _>>()
        .map_err(sql_err)?;
    let mut groups: Vec<(i64, String, Vec<String>, Vec<String>)> = vec![];
    for (id, _seq, table, from, to) in rows {
        let to = to.filter(|t| !t.is_empty());
        match groups.iter_mut().find(|g| g.0 == id) {
            Some(g) => {
                g.2.push(from);
                g.3.extend(to);
            }
            None => {
                // No referred column written: the referred table's primary key.
                let referred = match to {
                    Some(t) => vec![t],
                    None => primary_key_columns(conn, &table)?,
                };
                groups.push((id, table, vec![from], referred))
            }
        }
    }
    if groups.is_empty() {
        // The text only names and qualifies what PRAGMA lists.
        return Ok(vec![]);
    }
    // SQLAlchemy lists them in id order, which is the reverse of declaration.
    groups.sort_by_key(|g| g.0);
    // Names and options come only from table-level FOREIGN KEY clauses.
    static FK: Pattern = Pattern::starting(
        r#"(?i)(?:CONSTRAINT\s+(\w+|"(?:[^"]|"")+")\s+)?FOREIGN KEY\s*\(\s*(.+?)\s*\)\s+REFERENCES\s+(?:"(.+?)"|([a-z0-9_]+))\s*\(\s*((?:(?:"[^"]+"|[a-z0-9_]+)\s*(?:,\s*)?)+)\)\s*((?:ON (?:DELETE|UPDATE) (?:SET NULL|SET DEFAULT|CASCADE|RESTRICT|NO ACTION)\s*)*)((?:NOT\s+)?DEFERRABLE)?(?:\s+INITIALLY\s+(DEFERRED|IMMEDIATE))?"#,
        &["FOREIGN KEY", "REFERENCES"],
        &["CONSTRAINT", "FOREIGN KEY"],
    );
    let parsed: Vec<_> = FK
        .captures_iter(table_sql)
        .into_iter()
        .map(|c| {
            let cols: Vec<String> = cols_in_sig(&c[2]);
            let refcols: Vec<String> = match c.get(5) {
                Some(m) if !m.as_str().trim().is_empty() => cols_in_sig(m.as_str()),
                _ => cols.clone(),
            };
            let rtable = c
                .get(3)
                .or(c.get(4))
                .map_or(String::new(), |m| m.as_str().to_string());
            let name = c.get(1).map(|m| unquote(m.as_str()));
            let opts = c.get(6).map_or("", |m| m.as_str()).to_uppercase();
            let grab = |kw: &str| -> Option<String> {
                let i = opts.find(kw)?;
                let rest = &opts[i + kw.len()..];
                [
                    "SET NULL",
                    "SET DEFAULT",
                    "CASCADE",
                    "RESTRICT",
                    "NO ACTION",
                ]
                .iter()
                .find(|a| rest.trim_start().starts_with(*a))
                .filter(|a| **a != "NO ACTION")
                .map(|a| a.to_string())
            };
            let deferrable = c
                .get(7)
                .map(|m| !m.as_str().to_uppercase().starts_with("NOT"));
            let initially = c.get(8).map(|m| m.as_str().to_uppercase());
            (
                (cols, rtable, refcols),
                name,
                grab("ON DELETE"),
                grab("ON UPDATE"),
                deferrable,
                initially,
            )
        })
        .collect();
    // SQLAlchemy keys the PRAGMA constraints by signature (a later one with the same
    // signature replaces an earlier one), names those the SQL text declares, in text order,
    // and appends the rest unnamed. Two constraints with one signature thus reflect as one.
    let mut by_sig: Vec<(FkSignature, FkGroup)> = vec![];
    for (_, table, from, to) in groups {
        let sig = (from.clone(), table.clone(), to.clone());
        match by_sig.iter_mut().find(|(s, _)| *s == sig) {
            Some(slot) => slot.1 = (table, from, to),
            None => by_sig.push((sig, (table, from, to))),
        }
    }
    let make = |(table, from, to): (String, Vec<String>, Vec<String>)| ConsDef::ForeignKey {
        name: None,
        columns: from,
        ref_schema: None,
        ref_table: table,
        ref_columns: to,
        ondelete: None,
        onupdate: None,
        deferrable: None,
        initially: None,
        match_: None,
    };
    let mut out = vec![];
    for (sig, name, ondelete, onupdate, deferrable, initially) in parsed {
        let Some(i) = by_sig.iter().position(|(s, _)| *s == sig) else {
            continue;
        };
        let (_, found) = by_sig.remove(i);
        if let ConsDef::ForeignKey {
            columns,
            ref_schema,
            ref_table,
            ref_columns,
            match_,
            ..
        } = make(found)
        {
            out.push(ConsDef::ForeignKey {
                name,
                columns,
                ref_schema,
                ref_table,
                ref_columns,
                ondelete,
                onupdate,
                deferrable,
                initially,
                match_,
            });
        }
    }
    out.extend(by_sig.into_iter().map(|(_, g)| make(g)));
    Ok(out)
}

/// A foreign key's constrained columns, referred table and referred columns.
type FkSignature = (Vec<String>, String, Vec<String>);

/// A PRAGMA foreign key: referred table, local columns, referred columns.
type FkGroup = (String, Vec<String>, Vec<String>);

/// `_find_cols_in_sig`: the column names of a parenthesised list, quoted or bare.
fn cols_in_sig(sig: &str) -> Vec<String> {
    static COLS: Pattern = Pattern::new(r#"(?i)(?:"(.+?)")|([a-z0-9_]+)"#);
    COLS.captures_iter(sig)
        .iter()
        .filter_map(|c| c.get(1).or(c.get(2)).map(|m| m.as_str().to_string()))
        .collect()
}

/// The primary key columns of `table`, in key order (an unknown table has none).
fn primary_key_columns(conn: &Connection, table: &str) -> Result<Vec<String>, DdlError> {
    let mut st = conn
        .prepare(&format!(
            "SELECT name FROM pragma_table_info('{}') WHERE pk > 0 ORDER BY pk",
            table.replace('\'', "''")
        ))
        .map_err(sql_err)?;
    let cols = st
        .query_map([], |r| r.get(0))
        .map_err(sql_err)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(sql_err);
    cols
}

/// SQLAlchemy's pattern for a column declared UNIQUE in its own line of the table's SQL.
const INLINE_UNIQUE: &str = r#"(?i)(?:(".+?")|(?:[\[`])?([a-z0-9_]+)(?:[\]`])?)[\t ]+[a-z0-9_]+(?:[\t ]+[a-z0-9_]+)*?[\t ]+UNIQUE"#;

/// The matches of [`INLINE_UNIQUE`] in a table's SQL, as `re.finditer` over the whole text
/// finds them. Nothing in the pattern matches a newline, so every match lies within one
/// line: searching line by line finds the same matches, and the needle skips every line
/// that does not say UNIQUE instead of running the pattern from each byte of the SQL.
fn inline_uniques(table_sql: &str) -> Vec<Caps<'_>> {
    static INLINE: Pattern = Pattern::needing(INLINE_UNIQUE, &["UNIQUE"]);
    table_sql
        .split('\n')
        .flat_map(|line| INLINE.captures_iter(line))
        .collect()
}

/// `get_unique_constraints`: UNIQUE clauses parsed from the table's SQL, kept only when an
/// automatic index (`sqlite_autoindex_*`) has exactly those columns (each index vouches for
/// one clause). This is how SQLAlchemy tells a constraint from text that merely looks like
/// one (`CONSTRAINT x UNIQUE (...)` also matches the inline pattern).
fn reflect_uniques(
    conn: &Connection,
    listed: &[ListedIndex],
    table_sql: &str,
) -> Result<Vec<ConsDef>, DdlError> {
    let mut auto_sigs: Vec<Vec<String>> = vec![];
    for (name, _, _) in listed {
        if !name.starts_with("sqlite_autoindex") {
            continue;
        }
        let cols = index_columns(conn, name)?;
        // SQLAlchemy keys them by columns: two with the same columns count once.
        let sig: Vec<String> = cols.into_iter().flatten().collect();
        if !auto_sigs.contains(&sig) {
            auto_sigs.push(sig);
        }
    }
    // A parsed clause counts only when an automatic index vouches for it: with none left
    // to vouch, the rest of the text cannot change the answer and is not searched.
    if auto_sigs.is_empty() {
        return Ok(vec![]);
    }
    let mut parsed: Vec<(Option<String>, Vec<String>)> = vec![];
    static NAMED: Pattern = Pattern::starting(
        r#"(?i)(?:CONSTRAINT\s+(?:"(.+?)"|(\w+))\s+)?UNIQUE\s*\((.+?)\)"#,
        &["UNIQUE"],
        &["CONSTRAINT", "UNIQUE"],
    );
    for c in NAMED.captures_iter(table_sql) {
        parsed.push((
            c.get(1).or(c.get(2)).map(|m| m.as_str().to_string()),
            cols_in_sig(&c[3]),
        ));
    }
    let mut unvouched = auto_sigs.clone();
    for (_, columns) in &parsed {
        if let Some(i) = unvouched.iter().position(|s| s == columns) {
            unvouched.remove(i);
        }
    }
    let inline = if !unvouched.is_empty() {
        inline_uniques(table_sql)
    } else {
        vec![]
    };
    for c in inline {
        if let Some(m) = c.get(1).or(c.get(2)) {
            parsed.push((None, cols_in_sig(m.as_str())));
        }
    }
    let mut out = vec![];
    for (name, columns) in parsed {
        if let Some(i) = auto_sigs.iter().position(|s| *s == columns) {
            auto_sigs.remove(i);
            // SQLite keeps no conflict clause SQLAlchemy reflects.
            out.push(ConsDef::Unique {
                name,
                columns,
                on_conflict: None,
            });
        }
    }
    Ok(out)
}

/// `get_table_options`: (with rowid, strict) from the end of the CREATE TABLE text.
pub fn table_options(sql: &str) -> (bool, bool) {
    static RE: Pattern = Pattern::new(r"(?i)\)(?:\s*,?\s*(?:WITHOUT\s+ROWID|STRICT))*\s*$");
    let Some(m) = RE.captures(sql.trim()).and_then(|c| c.get(0)) else {
        return (true, false);
    };
    let tail = m.as_str().to_uppercase();
    (!tail.contains("ROWID"), tail.contains("STRICT"))
}

/// The table's CHECKs as a reflected SQLAlchemy `Table` holds them, named or not: batch
/// mode keeps the named ones and leaves out (with a warning) the unnamed.
fn reflect_checks(table_sql: &str) -> Vec<ConsDef> {
    check_constraints(table_sql)
        .into_iter()
        .map(|(name, sql)| ConsDef::Check {
            name,
            sql,
            type_bound: None,
        })
        .collect()
}

/// `find_matching_paren`: the index of the `)` closing the `(` at `open`, skipping
/// single- and double-quoted literals (a doubled quote escapes itself).
fn matching_paren(text: &str, open: usize) -> Option<usize> {
    let b = text.as_bytes();
    let (mut depth, mut i) = (0usize, open);
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let ch = b[i];
        match quote {
            Some(q) if ch == q => {
                if b.get(i + 1) == Some(&q) {
                    i += 1;
                } else {
                    quote = None;
                }
            }
            Some(_) => {}
            None => match ch {
                b'\'' | b'"' => quote = Some(ch),
                b'(' => depth += 1,
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// SQLAlchemy's `get_check_constraints`: every CHECK of the table's SQL, named or not, as
/// (name, SQL text), sorted by name with the unnamed last. Autogenerate renders these in a
/// created or dropped table, and [`reflect_table`] gives them to batch mode.
pub fn check_constraints(table_sql: &str) -> Vec<(Option<String>, String)> {
    static CHECK: Pattern = Pattern::starting(
        r#"(?i)(?:CONSTRAINT\s+("(?:[^"]|"")+"|'(?:[^']|'')+'|\[(?:[^\]]|\]\])+\]|`(?:[^`]|``)+`|\S+)\s+)?CHECK\s*\("#,
        &["CHECK"],
        &["CONSTRAINT", "CHECK"],
    );
    let mut out = vec![];
    let mut pos = 0;
    while let Some(c) = CHECK.captures_at(table_sql, pos) {
        let Some(whole) = c.get(0) else {
            break;
        };
        // Python's `(?<![A-Za-z0-9_])`: CHECK or CONSTRAINT must not end an identifier;
        // when it does, the scan goes on from the next position, as a regex engine would.
        let before = table_sql[..whole.start()].chars().next_back();
        if before.is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            pos = whole.start() + 1;
            while !table_sql.is_char_boundary(pos) {
                pos += 1;
            }
            continue;
        }
        let name = c.get(1).map(|m| {
            let n = m.as_str();
            let quoted = n.len() >= 2
                && ((n.starts_with('"') && n.ends_with('"'))
                    || (n.starts_with('\'') && n.ends_with('\''))
                    || (n.starts_with('`') && n.ends_with('`'))
                    || (n.starts_with('[') && n.ends_with(']')));
            if quoted {
                n[1..n.len() - 1].to_string()
            } else {
                n.to_string()
            }
        });
        if let Some(close) = matching_paren(table_sql, whole.end() - 1) {
            out.push((name, table_sql[whole.end()..close].trim().to_string()));
        }
        pos = whole.end();
    }
    // Python's sort key: the name, or "~" for none.
    out.sort_by(|a, b| {
        let key = |n: &Option<String>| n.clone().unwrap_or_else(|| "~".into());
        key(&a.0).cmp(&key(&b.0))
    });
    out
}

/// A row of `PRAGMA index_list`: name, unique, origin (`c`, `u` or `pk`).
type ListedIndex = (String, bool, String);

/// The table's indexes, newest first (`qname`: the table name, quoted).
fn index_list(conn: &Connection, qname: &str) -> Result<Vec<ListedIndex>, DdlError> {
    let mut st = conn
        .prepare(&format!("PRAGMA index_list({qname})"))
        .map_err(sql_err)?;
    let rows = st
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(sql_err)?
        .collect::<Result<_, _>>()
        .map_err(sql_err);
    rows
}

/// The columns of index `name` in key order; `None` for an expression.
fn index_columns(conn: &Connection, name: &str) -> Result<Vec<Option<String>>, DdlError> {
    let mut st = conn
        .prepare(&format!(
            "PRAGMA index_info(\"{}\")",
            name.replace('"', "\"\"")
        ))
        .map_err(sql_err)?;
    let cols = st
        .query_map([], |r| r.get(2))
        .map_err(sql_err)?
        .collect::<Result<_, _>>()
        .map_err(sql_err);
    cols
}

fn reflect_indexes(conn: &Connection, rows: Vec<ListedIndex>) -> Result<Vec<IdxDef>, DdlError> {
    let mut out = vec![];
    static WHERE: Pattern = Pattern::starting(r"(?is)\bWHERE\b\s*(.+)$", &["WHERE"], &["WHERE"]);
    // index_list is newest first and SQLAlchemy keeps that order. Alembic then walks
    // `Table.indexes`, a Python set, so with several indexes its order is not guaranteed.
    for (name, unique, origin) in rows {
        if origin != "c" || name.starts_with("sqlite_autoindex") {
            continue;
        }
        let cols = index_columns(conn, &name)?;
        if cols.iter().any(Option::is_none) {
            continue;
        }
        let cols: Vec<String> = cols.into_iter().flatten().collect();
        let sql: Option<String> = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [&name],
                |r| r.get(0),
            )
            .ok();
        let where_ = sql.and_then(|s| WHERE.captures(&s).map(|c| c[1].trim().to_string()));
        out.push(IdxDef {
            name: Some(name),
            unique,
            exprs: cols.iter().map(|c| quote(c).into_owned()).collect(),
            columns: Some(cols),
            where_,
            if_not_exists: false,
            column_flag: false,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[test]
    fn checks_as_sqlalchemy_reflects_them() {
        let sql = "CREATE TABLE t (a INTEGER CHECK (a > 0), b TEXT,\n\
                   CONSTRAINT \"ck b\" CHECK (b IN ('x)', 'y''(')),\n\
                   CONSTRAINT ck_a CHECK ((a) < 10), xCHECK INTEGER)";
        assert_eq!(
            check_constraints(sql),
            vec![
                (Some("ck b".to_string()), "b IN ('x)', 'y''(')".to_string()),
                (Some("ck_a".to_string()), "(a) < 10".to_string()),
                (None, "a > 0".to_string()),
            ]
        );
        assert_eq!(matching_paren("(a = '(' AND b = ')')", 0), Some(20));
        assert_eq!(matching_paren("((a)", 0), None);
    }
}

#[cfg(test)]
mod unique_tests {
    use super::*;

    /// The inline UNIQUE search, line by line, finds what a search of the whole text finds
    /// (Python's `re.finditer` over the table's SQL).
    #[test]
    fn inline_uniques_are_found_line_by_line() {
        let whole = regex::Regex::new(INLINE_UNIQUE).unwrap();
        let mut found = 0;
        for sql in [
            "CREATE TABLE t (\n\tid INTEGER NOT NULL, \n\tcode VARCHAR UNIQUE, \n\tPRIMARY KEY (id)\n)",
            // A type with arguments is not seen (nor by SQLAlchemy).
            "CREATE TABLE t (\n\tcode VARCHAR(8) UNIQUE\n)",
            "CREATE TABLE t (a INT UNIQUE, \"b c\" TEXT NOT NULL UNIQUE, [d] INT UNIQUE)",
            "CREATE TABLE t (\r\n  a INT\r\n    UNIQUE,\r\n  `b` BIGINT unique\r\n)",
            "CREATE TABLE t (\n\"x\ny\" INT UNIQUE, CONSTRAINT u UNIQUE (a), z INT\tDEFAULT 1 UNIQUE)",
            "CREATE TABLE \"ñ\" (\n\tñame INT UNIQUE,\n\tb INT UNIQUE\n)",
        ] {
            let expected: Vec<Vec<Option<&str>>> = whole
                .captures_iter(sql)
                .map(|c| c.iter().map(|g| g.map(|m| m.as_str())).collect())
                .collect();
            let groups = whole.captures_len();
            let by_line: Vec<Vec<Option<&str>>> = inline_uniques(sql)
                .iter()
                .map(|c| (0..groups).map(|i| c.get(i).map(|m| m.as_str())).collect())
                .collect();
            assert_eq!(by_line, expected, "{sql}");
            found += expected.len();
        }
        assert_eq!(found, 9);
    }
}

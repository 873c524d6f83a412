//! What the read-only commands need from "running env.py": the version table's name and
//! schema (literal keyword arguments of `context.configure(...)` in env.py) and the rows of
//! that table (`MigrationContext.get_current_heads`), read with rusqlite.
//!
//! We do not execute env.py. Known differences from Python: a `version_table` that is not a
//! string literal is ignored (default `alembic_version`); an env.py our parser cannot read
//! falls back to the defaults; anything env.py prints or logs is not reproduced.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::Failure;
use crate::alembic_compat::config::{parse_sqlite_url, SqliteDatabase, UrlError};
use crate::alembic_compat::script::ast::{Arg, Constant, Expr, ExprKind, Stmt, StmtKind};
use crate::alembic_compat::script::parse_cached;

pub use crate::alembic_compat::runtime::VersionTable;

/// The literal `context.configure(...)` keyword arguments of env.py that change what the
/// migration commands do, and whether env.py sets up logging from the ini file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSettings {
    pub version_table: VersionTable,
    pub transaction_per_migration: bool,
    pub render_as_batch: bool,
    /// env.py calls `fileConfig(...)` (the generic template's logging setup).
    pub file_config: bool,
    /// `compare_type` / `compare_server_default` when given as literal booleans (`None`:
    /// not given, or not a literal, e.g. a callable).
    pub compare_type: Option<bool>,
    pub compare_server_default: Option<bool>,
    /// `target_metadata`'s naming convention, when env.py builds it in place:
    /// `MetaData(naming_convention={...})` with string keys and templates, directly or
    /// through module-level names. Empty otherwise (SQLAlchemy's default).
    pub naming_convention: Vec<(String, String)>,
}

#[derive(Default)]
struct ConfigureCall {
    online: bool,
    table: Option<String>,
    /// `Some(None)`: `version_table_schema=None` written explicitly.
    schema: Option<Option<String>>,
    transaction_per_migration: Option<bool>,
    render_as_batch: Option<bool>,
    compare_type: Option<bool>,
    compare_server_default: Option<bool>,
    target_metadata: Option<Expr>,
}

#[derive(Default)]
struct Found {
    calls: Vec<ConfigureCall>,
    file_config: bool,
    /// `name = value` assignments anywhere in env.py, in order (the last of a name wins).
    globals: Vec<(String, Expr)>,
}

fn is_file_config(func: &Expr) -> bool {
    match &func.kind {
        ExprKind::Name(n) => n == "fileConfig",
        ExprKind::Attribute { attr, .. } => attr == "fileConfig",
        _ => false,
    }
}

fn is_context_configure(func: &Expr) -> bool {
    matches!(&func.kind, ExprKind::Attribute { value, attr }
        if attr == "configure" && matches!(&value.kind, ExprKind::Name(n) if n == "context"))
}

fn visit_expr(e: &Expr, found: &mut Found) {
    if let ExprKind::Call { func, args } = &e.kind {
        if is_file_config(func) {
            found.file_config = true;
        }
        if is_context_configure(func) {
            let mut call = ConfigureCall::default();
            for a in args {
                if let Arg::Keyword { name, value } = a {
                    match (name.as_str(), &value.kind) {
                        ("connection", _) => call.online = true,
                        ("target_metadata", _) => call.target_metadata = Some(value.clone()),
                        ("version_table", ExprKind::Constant(Constant::Str(s))) => {
                            call.table = Some(s.clone())
                        }
                        ("version_table_schema", ExprKind::Constant(Constant::Str(s))) => {
                            call.schema = Some(Some(s.clone()))
                        }
                        ("version_table_schema", ExprKind::Constant(Constant::None)) => {
                            call.schema = Some(None)
                        }
                        ("transaction_per_migration", ExprKind::Constant(Constant::Bool(b))) => {
                            call.transaction_per_migration = Some(*b)
                        }
                        ("render_as_batch", ExprKind::Constant(Constant::Bool(b))) => {
                            call.render_as_batch = Some(*b)
                        }
                        ("compare_type", ExprKind::Constant(Constant::Bool(b))) => {
                            call.compare_type = Some(*b)
                        }
                        ("compare_server_default", ExprKind::Constant(Constant::Bool(b))) => {
                            call.compare_server_default = Some(*b)
                        }
                        _ => {}
                    }
                }
            }
            found.calls.push(call);
        }
    }
}

/// The naming convention of a `MetaData(naming_convention={...})` expression, following
/// names assigned in env.py; None when it is anything else (an application's
/// `Base.metadata`).
fn literal_naming_convention(
    e: &Expr,
    globals: &[(String, Expr)],
    depth: u8,
) -> Option<Vec<(String, String)>> {
    let resolve = |e: &Expr| -> Option<Expr> {
        match &e.kind {
            ExprKind::Name(n) if depth < 8 => globals
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone()),
            _ => Some(e.clone()),
        }
    };
    let e = resolve(e)?;
    if let ExprKind::Name(_) = &e.kind {
        return literal_naming_convention(&e, globals, depth + 1);
    }
    let ExprKind::Call { func, args } = &e.kind else {
        return None;
    };
    let is_metadata = match &func.kind {
        ExprKind::Name(n) => n == "MetaData",
        ExprKind::Attribute { attr, .. } => attr == "MetaData",
        _ => false,
    };
    if !is_metadata {
        return None;
    }
    let mut dict = None;
    for a in args {
        if let Arg::Keyword { name, value } = a {
            if name == "naming_convention" {
                dict = Some(value.clone());
            }
        }
    }
    let Some(mut dict) = dict else {
        return Some(Vec::new());
    };
    for _ in 0..8 {
        match &dict.kind {
            ExprKind::Name(_) => dict = resolve(&dict)?,
            _ => break,
        }
    }
    let ExprKind::Dict(items) = &dict.kind else {
        return None;
    };
    let mut out = Vec::new();
    for (k, v) in items {
        match (k.as_ref().map(|k| &k.kind), &v.kind) {
            (Some(ExprKind::Constant(Constant::Str(k))), ExprKind::Constant(Constant::Str(v))) => {
                out.push((k.clone(), v.clone()))
            }
            _ => return None,
        }
    }
    Some(out)
}

fn visit_stmts(body: &[Stmt], calls: &mut Found) {
    for s in body {
        match &s.kind {
            StmtKind::Expr(e) => visit_expr(e, calls),
            StmtKind::Assign { targets, value } => {
                for t in targets {
                    if let ExprKind::Name(n) = &t.kind {
                        calls.globals.push((n.clone(), value.clone()));
                    }
                }
                visit_expr(value, calls)
            }
            StmtKind::If { body, orelse, .. }
            | StmtKind::For { body, orelse, .. }
            | StmtKind::While { body, orelse, .. } => {
                visit_stmts(body, calls);
                visit_stmts(orelse, calls);
            }
            StmtKind::With { body, .. } => visit_stmts(body, calls),
            StmtKind::Try {
                body,
                handlers,
                orelse,
                finalbody,
            } => {
                visit_stmts(body, calls);
                for h in handlers {
                    visit_stmts(&h.body, calls);
                }
                visit_stmts(orelse, calls);
                visit_stmts(finalbody, calls);
            }
            StmtKind::FunctionDef(f) => visit_stmts(&f.body, calls),
            StmtKind::ClassDef(c) => visit_stmts(&c.body, calls),
            _ => {}
        }
    }
}

/// Reads the version table settings from env.py source. Several `context.configure` calls:
/// the online one (passing `connection=`) wins, else the first.
pub fn version_table_from_env(path: &str, source: &str) -> VersionTable {
    env_settings(path, source, false).version_table
}

/// Reads [`EnvSettings`] from env.py source. `offline` picks the `context.configure` call used
/// in `--sql` mode (the first one without `connection=`), else the online one wins; either
/// way the other call is the fallback.
pub fn env_settings(path: &str, source: &str, offline: bool) -> EnvSettings {
    // Through the AST cache: env.py is read by every command that touches the database.
    let module = match parse_cached(path, source) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("cannot read {path} ({e}); using the default settings");
            return EnvSettings::default();
        }
    };
    let mut found = Found::default();
    visit_stmts(&module.body, &mut found);
    let calls = &found.calls;
    let pick = calls
        .iter()
        .find(|c| c.online != offline)
        .or_else(|| calls.first());
    let mut env = EnvSettings {
        file_config: found.file_config,
        ..Default::default()
    };
    if let Some(c) = pick {
        if let Some(t) = &c.table {
            env.version_table.table = t.clone();
        }
        if let Some(s) = &c.schema {
            env.version_table.schema = s.clone();
        }
        env.transaction_per_migration = c.transaction_per_migration.unwrap_or(false);
        env.render_as_batch = c.render_as_batch.unwrap_or(false);
        env.compare_type = c.compare_type;
        env.compare_server_default = c.compare_server_default;
        env.naming_convention = c
            .target_metadata
            .as_ref()
            .and_then(|m| literal_naming_convention(m, &found.globals, 0))
            .unwrap_or_default();
    }
    env
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn sql_failure(e: &rusqlite::Error) -> Failure {
    let (class, text) = match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            let text = msg.clone().unwrap_or_else(|| code.to_string());
            let class = if code.code == rusqlite::ErrorCode::NotADatabase {
                "DatabaseError"
            } else {
                "OperationalError"
            };
            (class, text)
        }
        other => ("OperationalError", other.to_string()),
    };
    Failure::python(
        &format!("sqlalchemy.exc.{class}"),
        &format!("(sqlite3.{class}) {text}"),
    )
}

fn url_failure(e: &UrlError) -> Failure {
    let class = match e {
        UrlError::Unparseable(_) | UrlError::InvalidSqlite(_) => "sqlalchemy.exc.ArgumentError",
        UrlError::InvalidPort(_) | UrlError::InvalidQueryValue { .. } => "ValueError",
        UrlError::UnsupportedDialect(_) | UrlError::UnsupportedDriver(_) => {
            "sqlalchemy.exc.NoSuchModuleError"
        }
    };
    Failure::python(class, &e.to_string())
}

/// Opens the database the way pysqlite does (creating an empty file if it does not exist, as
/// `sqlite3.connect` does) and returns `get_current_heads()`: the `version_num` rows of the
/// version table, or nothing if the table does not exist. Never writes.
pub fn current_heads(url: &str, cwd: &Path, vt: &VersionTable) -> Result<Vec<String>, Failure> {
    let conn = open_database(url, cwd)?;
    read_heads(&conn, vt).map_err(|e| sql_failure(&e))
}

/// Opens a SQLite URL as `create_engine(url).connect()` would (a missing file is created).
pub fn open_database(url: &str, cwd: &Path) -> Result<Connection, Failure> {
    let parsed = parse_sqlite_url(url, cwd).map_err(|e| url_failure(&e))?;
    let rw = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match &parsed.database {
        SqliteDatabase::Memory => Connection::open_in_memory(),
        SqliteDatabase::File(p) => Connection::open_with_flags(p, rw),
        SqliteDatabase::Uri(u) => Connection::open_with_flags(u, rw | OpenFlags::SQLITE_OPEN_URI),
    }
    .map_err(|e| sql_failure(&e))
}

fn has_table(conn: &Connection, vt: &VersionTable) -> rusqlite::Result<bool> {
    let schemas: Vec<String> = match &vt.schema {
        Some(s) => {
            let mut stmt = conn.prepare("PRAGMA database_list")?;
            let names: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(1))?
                .collect::<Result<_, _>>()?;
            if !names.iter().any(|n| n == s) {
                return Ok(false);
            }
            vec![s.clone()]
        }
        None => vec!["main".into(), "temp".into()],
    };
    for schema in schemas {
        let sql = format!(
            "PRAGMA {}.table_info({})",
            quote_ident(&schema),
            quote_ident(&vt.table)
        );
        let mut stmt = conn.prepare(&sql)?;
        if stmt.query([])?.next()?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn read_heads(conn: &Connection, vt: &VersionTable) -> rusqlite::Result<Vec<String>> {
    if !has_table(conn, vt)? {
        return Ok(Vec::new());
    }
    let from = match &vt.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&vt.table)),
        None => quote_ident(&vt.table),
    };
    let sql = format!("SELECT {}.version_num FROM {from}", quote_ident(&vt.table));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, Option<String>>(0))?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(v) = r? {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_convention_is_read_when_built_in_place() {
        let conv = |src: &str| env_settings("env.py", src, false).naming_convention;
        let direct = "import sqlalchemy as sa\nmd = sa.MetaData(naming_convention={'ix': 'ix_%(column_0_label)s', 'uq': 'uq_%(table_name)s'})\ncontext.configure(connection=c, target_metadata=md)\n";
        assert_eq!(
            conv(direct),
            [
                ("ix".to_string(), "ix_%(column_0_label)s".to_string()),
                ("uq".to_string(), "uq_%(table_name)s".to_string())
            ]
        );
        let named = "N = {'pk': 'pk_%(table_name)s'}\ntarget_metadata = MetaData(naming_convention=N)\ndef run():\n    context.configure(connection=c, target_metadata=target_metadata)\n";
        assert_eq!(
            conv(named),
            [("pk".to_string(), "pk_%(table_name)s".to_string())]
        );
        // An application's metadata, a key that is a class, no convention: the default.
        for src in [
            "from app import Base\ncontext.configure(connection=c, target_metadata=Base.metadata)\n",
            "md = MetaData(naming_convention={sa.Index: 'ix_%(column_0_label)s'})\ncontext.configure(connection=c, target_metadata=md)\n",
            "context.configure(connection=c, target_metadata=MetaData())\n",
            "context.configure(connection=c, target_metadata=None)\n",
        ] {
            assert!(conv(src).is_empty(), "{src}");
        }
    }

    #[test]
    fn configure_kwargs_prefer_online() {
        let src = r#"
from alembic import context
def run_migrations_offline():
    context.configure(url=u, version_table="offline_v")
def run_migrations_online():
    with engine.connect() as connection:
        context.configure(connection=connection, version_table="my_version", version_table_schema=None)
if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"#;
        assert_eq!(
            version_table_from_env("env.py", src),
            VersionTable {
                table: "my_version".into(),
                schema: None
            }
        );
        let src2 = "context.configure(url=x, version_table='t', version_table_schema='s')\n";
        assert_eq!(
            version_table_from_env("env.py", src2),
            VersionTable {
                table: "t".into(),
                schema: Some("s".into())
            }
        );
        assert_eq!(
            version_table_from_env("env.py", "x = (\n"),
            VersionTable::default()
        );
    }

    #[test]
    fn reads_rows_without_creating_table() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let url = format!("sqlite:///{}", db.display());
        // missing file: created empty, no table
        assert_eq!(
            current_heads(&url, dir.path(), &VersionTable::default()).unwrap(),
            Vec::<String>::new()
        );
        assert!(db.exists());
        {
            let c = Connection::open(&db).unwrap();
            c.execute_batch("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL); INSERT INTO alembic_version VALUES ('abc'), ('def');").unwrap();
        }
        assert_eq!(
            current_heads(&url, dir.path(), &VersionTable::default()).unwrap(),
            vec!["abc", "def"]
        );
        let other = VersionTable {
            table: "other".into(),
            schema: None,
        };
        assert!(current_heads(&url, dir.path(), &other).unwrap().is_empty());
        let schema = VersionTable {
            table: "alembic_version".into(),
            schema: Some("nope".into()),
        };
        assert!(current_heads(&url, dir.path(), &schema).unwrap().is_empty());
        let main = VersionTable {
            table: "alembic_version".into(),
            schema: Some("main".into()),
        };
        assert_eq!(
            current_heads(&url, dir.path(), &main).unwrap(),
            vec!["abc", "def"]
        );
    }
}

//! Autogenerate: compare the database at head with a target schema and produce the operations
//! that would make the first look like the second, as Alembic's `autogenerate` package does
//! (`compare/` for detection, `render.py` for the Python text, `operations/ops.py`'s
//! `to_diff_tuple` for `alembic check`).
//!
//! Both sides are SQLite databases reflected by [`crate::alembic_compat::ddl::reflect`]: the
//! configured one, and the target, which Python would get from SQLAlchemy models and ralembic
//! gets from SQL (CREATE TABLE / CREATE INDEX statements run in an in-memory database) or from
//! another SQLite file. A target reflected this way is exactly what Python Alembic sees with
//! `target_metadata = MetaData(); target_metadata.reflect(engine)`, which is how the oracle
//! tests drive it.
//!
//! Owns: loading the two schemas, the comparison rules ([`compare`]), the Python rendering of
//! the operations ([`render`]) and their diff-tuple reprs ([`repr`]). Does not own: where the
//! text goes (`command::autogen` and the generation path of `command::generate`).

pub mod compare;
pub mod render;
pub mod repr;

use rusqlite::Connection;

use crate::alembic_compat::ddl::reflect::reflect_table;
use crate::alembic_compat::ddl::sqlite::TableDef;
use crate::alembic_compat::ddl::DdlError;

pub use compare::{compare, Change, Entry, Options};

/// What can go wrong loading or reflecting a schema.
#[derive(Debug, thiserror::Error)]
pub enum AutogenError {
    #[error("cannot read target schema {path}: {message}")]
    ReadTarget { path: String, message: String },
    #[error("target schema {path} does not run in SQLite: {message}")]
    TargetSql { path: String, message: String },
    #[error("cannot reflect the database: {0}")]
    Sqlite(String),
    #[error(transparent)]
    Reflect(#[from] DdlError),
}

/// `inspector.get_table_names()` on SQLite: every table except SQLite's own, by name.
fn table_names(conn: &Connection) -> Result<Vec<String>, AutogenError> {
    let sql_err = |e: rusqlite::Error| AutogenError::Sqlite(e.to_string());
    let mut st = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite~_%' ESCAPE '~' ORDER BY name",
        )
        .map_err(sql_err)?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    Ok(names)
}

/// Every table of `conn` reflected, in name order, with all its CHECK constraints and its
/// table options (as a SQLAlchemy `Table` reflects them).
pub fn reflect_schema(conn: &Connection) -> Result<Vec<TableDef>, AutogenError> {
    let mut out = vec![];
    for name in table_names(conn)? {
        out.push(reflect_table(conn, &name)?);
    }
    Ok(out)
}

/// The target schema declared in SQL: the statements run in a fresh in-memory SQLite
/// database, which is then reflected. `path` is only for messages.
pub fn schema_from_sql(path: &str, sql: &str) -> Result<Vec<TableDef>, AutogenError> {
    let conn = Connection::open_in_memory().map_err(|e| AutogenError::Sqlite(e.to_string()))?;
    conn.execute_batch(sql)
        .map_err(|e| AutogenError::TargetSql {
            path: path.to_string(),
            message: e.to_string(),
        })?;
    reflect_schema(&conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alembic_compat::ddl::reflect::table_options;

    #[test]
    fn schema_from_sql_reflects_tables_in_name_order() {
        let tables = schema_from_sql(
            "s.sql",
            "CREATE TABLE b (id INTEGER PRIMARY KEY); CREATE TABLE a (x TEXT);",
        )
        .unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            table_options("CREATE TABLE t (a) WITHOUT ROWID, STRICT"),
            (false, true)
        );
        assert_eq!(table_options("CREATE TABLE t (a)"), (true, false));
        let err = schema_from_sql("s.sql", "CREATE TABLE (").unwrap_err();
        assert!(err.to_string().starts_with("target schema s.sql"), "{err}");
    }
}

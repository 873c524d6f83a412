//! Rendering operations to SQL text exactly as SQLAlchemy's compiler for a dialect would, and
//! reading an existing table back (for batch mode). Nothing here executes SQL: callers (the
//! runtime, `batch`) execute what we return.
//!
//! Only SQLite exists today; a second dialect would get its own file beside `sqlite.rs` and a
//! dispatch here.
pub mod reflect;
pub mod sqlite;

use super::ops::{Literal, Op, TableClause};

/// What `env.py` contributes to rendering.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// `target_metadata.naming_convention` as (key, template) pairs, e.g.
    /// `("ix", "ix_%(column_0_label)s")`. Empty means SQLAlchemy's default (`ix` only).
    pub naming_convention: Vec<(String, String)>,
}

/// A failure Alembic/SQLAlchemy would raise. `Display` is `str(exception)`; `python_class`
/// is the exception's class name, for `FAILED:` lines and tracebacks.
///
/// Where Python prints an object address (`<... object at 0x7f...>`) we print the fixed
/// address [`FAKE_ADDRESS`], so messages are stable.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum DdlError {
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Compile(String),
    /// SQLAlchemy's `UnsupportedCompilationError` (a `CompileError` subclass).
    #[error("{0}")]
    UnsupportedCompilation(String),
    #[error("{0}")]
    Argument(String),
    /// Alembic's `CommandError` (e.g. batch recreate in `--sql` mode without `copy_from`).
    #[error("{0}")]
    Command(String),
    /// Python `ValueError` (e.g. batch `drop_index` of an unknown index).
    #[error("{0}")]
    Value(String),
    /// Python `KeyError` (its `str()` is the quoted key).
    #[error("{0}")]
    Key(String),
    /// Python `AttributeError` (Alembic asking an Interval for the `name` it lacks).
    #[error("{0}")]
    Attribute(String),
    /// SQLAlchemy's `InvalidRequestError` (a naming convention that needs a constraint's name
    /// for an unnamed constraint).
    #[error("{0}")]
    InvalidRequest(String),
    /// SQLAlchemy's `CircularDependencyError` (batch columns whose placements, by
    /// `insert_before`/`insert_after` and `partial_reordering`, form a cycle).
    #[error("{0}")]
    CircularDependency(String),
    /// SQLAlchemy's `NoSuchTableError` (batch on a table that does not exist).
    #[error("{0}")]
    NoSuchTable(String),
    /// Reading the database failed (reflection); the SQLite message.
    #[error("(sqlite3.OperationalError) {0}")]
    Sqlite(String),
}

/// The address printed in place of Python's `id()` in compiler reprs.
pub const FAKE_ADDRESS: &str = "0x7f0000000000";

impl DdlError {
    pub fn python_class(&self) -> &str {
        match self {
            DdlError::NotImplemented(_) => "NotImplementedError",
            DdlError::Compile(_) => "CompileError",
            DdlError::UnsupportedCompilation(_) => "UnsupportedCompilationError",
            DdlError::Argument(_) => "ArgumentError",
            DdlError::Command(_) => "CommandError",
            DdlError::Value(_) => "ValueError",
            DdlError::NoSuchTable(_) => "NoSuchTableError",
            DdlError::Key(_) => "KeyError",
            DdlError::Attribute(_) => "AttributeError",
            DdlError::InvalidRequest(_) => "InvalidRequestError",
            DdlError::CircularDependency(_) => "CircularDependencyError",
            DdlError::Sqlite(_) => "OperationalError",
        }
    }

    /// The module-qualified class, as a traceback's last line names it.
    pub fn python_qualified_class(&self) -> &str {
        match self {
            DdlError::NotImplemented(_) => "NotImplementedError",
            DdlError::Compile(_) => "sqlalchemy.exc.CompileError",
            DdlError::UnsupportedCompilation(_) => "sqlalchemy.exc.UnsupportedCompilationError",
            DdlError::Argument(_) => "sqlalchemy.exc.ArgumentError",
            DdlError::Command(_) => crate::alembic_compat::runtime::COMMAND_ERROR,
            DdlError::Value(_) => "ValueError",
            DdlError::NoSuchTable(_) => "sqlalchemy.exc.NoSuchTableError",
            DdlError::Key(_) => "KeyError",
            DdlError::Attribute(_) => "AttributeError",
            DdlError::InvalidRequest(_) => "sqlalchemy.exc.InvalidRequestError",
            DdlError::CircularDependency(_) => "sqlalchemy.exc.CircularDependencyError",
            DdlError::Sqlite(_) => "sqlalchemy.exc.OperationalError",
        }
    }
}

/// Statements for one non-batch op on SQLite, each exactly the text SQLAlchemy/Alembic emits
/// (no trailing `;`). An op that fails part-way (e.g. `add_column` with a ForeignKey: Alembic
/// emits the ALTER, then raises) returns only the error here; see [`render_op_steps`].
pub fn render_op(op: &Op, opts: &RenderOptions) -> Result<Vec<String>, DdlError> {
    match render_op_steps(op, opts) {
        (stmts, None) => Ok(stmts),
        (_, Some(e)) => Err(e),
    }
}

/// Like [`render_op`], but keeps the statements Alembic executes before it raises, so the
/// runtime can run them first and then fail as Alembic does.
pub fn render_op_steps(op: &Op, opts: &RenderOptions) -> (Vec<String>, Option<DdlError>) {
    sqlite::render_op_steps(op, opts)
}

/// `op.bulk_insert` online: the INSERT (qmark parameters) and one parameter row per execution.
/// With `multiinsert` Alembic sends one executemany (one statement, many rows); without, one
/// statement per row (each row may name different columns). Values are already converted as
/// SQLAlchemy's bind processors do (booleans to 0/1).
pub fn bulk_insert_sql(
    table: &TableClause,
    rows: &[Vec<(String, Literal)>],
    multiinsert: bool,
) -> Vec<(String, Vec<Vec<Literal>>)> {
    sqlite::bulk_insert_sql(table, rows, multiinsert)
}

/// `op.bulk_insert` in `--sql` mode: one INSERT per row with literal values. SQLAlchemy
/// renders row by row, so a row it cannot render comes after the rows before it.
pub fn bulk_insert_offline(
    table: &TableClause,
    rows: &[Vec<(String, Literal)>],
) -> (Vec<String>, Option<DdlError>) {
    sqlite::bulk_insert_offline(table, rows)
}

/// How Alembic's `--sql` mode prints one statement: tabs as four spaces, stripped, `;`, and a
/// blank line.
pub fn offline_text(stmt: &str) -> String {
    format!("{};\n\n", stmt.replace('\t', "    ").trim())
}

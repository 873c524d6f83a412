//! A restricted Python interpreter for revision bodies: it runs `upgrade()` / `downgrade()` as
//! Python would, for the part of Python that revision files use, and hands every `op.*` call
//! to a [`Host`] as an [`Op`](crate::alembic_compat::ops::Op). Names outside the model fail
//! at their `path:line:col` instead of being guessed.
//!
//! Layout: `value` (Python values), `interp` (statements and expressions), `builtins`
//! (builtin functions, str/list/dict methods, datetime/json/...), `native` (alembic `op`,
//! SQLAlchemy `sa`, connections, inspectors), `sql` (data statements rendered as SQLAlchemy's
//! SQLite compiler does), `check` (the static preflight), `custom` (a revision file's own
//! SQLAlchemy types and `@compiles` functions; `contextmanager` generators run in `interp`),
//! `runner` (the [`Host`] over a migration context; statements whose results a body never
//! reads may run on the runtime's worker thread, `runtime::pipeline`).

pub mod builtins;
pub mod check;
pub mod custom;
pub mod interp;
mod locals;
pub mod native;
pub mod orm;
pub(crate) mod re;
pub mod runner;
pub mod sql;
mod stdlib;
pub mod value;

/// The only dialect revision bodies run against so far (`bind.dialect.name`, `with_variant`,
/// `@compiles`).
pub const DIALECT: &str = "sqlite";

use std::fmt;

use crate::alembic_compat::ops::{Literal, Op, SourcePos};

pub use interp::run_revision_function;

/// What the interpreter needs from the migration run. `runtime` implements it on top of a
/// MigrationContext; tests implement it on a bare SQLite connection.
pub trait Host {
    fn is_offline(&self) -> bool;
    /// env.py's `target_metadata.naming_convention`: the MetaData `op.create_table` builds
    /// its Table on.
    fn naming_convention(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Renders and executes (or, offline, prints) one operation. `uncatchable`: no `try`
    /// of the body could catch its failure, so a failure ends the unit (and rolls it back).
    fn apply(&mut self, op: &Op, pos: &SourcePos, uncatchable: bool) -> Result<(), HostError>;
    /// Runs a data statement with bound parameters and returns its rows (online only).
    fn query(&mut self, sql: &str, params: &[Literal]) -> Result<QueryOutput, HostError>;
    /// Like [`query`](Host::query), handing each row to `row` as it is read instead of
    /// collecting them first: a data migration reads 100,000 rows, and each collected row was
    /// allocated twice (once as literals, once as values). `row` returns false to stop.
    fn query_each(
        &mut self,
        sql: &str,
        params: &[Literal],
        row: &mut dyn FnMut(&[Cell<'_>]) -> bool,
    ) -> Result<QueryShape, HostError> {
        let out = self.query(sql, params)?;
        for r in &out.rows {
            let cells: Vec<Cell<'_>> = r.iter().map(Cell::of).collect();
            if !row(&cells) {
                break;
            }
        }
        Ok(QueryShape {
            columns: out.columns,
            rowcount: out.rowcount,
        })
    }
    /// `-x key=value` arguments, in order.
    fn x_arguments(&self) -> Vec<String>;
    /// `print()` output: stdout, as Python would.
    fn print(&mut self, text: &str);
    /// A `logging` record at `level` (Python's numeric levels).
    fn log(&mut self, level: u32, logger: &str, message: &str);
    /// `str(engine.url)`. Bodies use it to tell dialects apart (`.startswith("sqlite")`).
    fn url(&self) -> String {
        "sqlite://".into()
    }
    /// Runs a data statement whose result the body never reads (`conn.execute(...)` as a
    /// statement of its own, outside any `try`). A host may queue it and run it later, in
    /// order, reporting its failure from a later call or from [`settle`](Host::settle).
    fn execute_unobserved(
        &mut self,
        sql: String,
        params: Vec<Literal>,
        pos: &SourcePos,
    ) -> Result<(), DetachedFailure> {
        execute_in_line(self, &sql, &params, pos)
    }
    /// Waits until every statement [`execute_unobserved`](Host::execute_unobserved) queued
    /// has run. The interpreter calls it before anything else reaches the database or the
    /// output; once a queued statement has failed, every later call reports that failure.
    fn settle(&mut self) -> Result<(), DetachedFailure> {
        Ok(())
    }
    /// Queues an operation no `try` could catch the failure of, to run later in order;
    /// `Ok(false)` when the host runs it now instead (through [`apply`](Host::apply), after
    /// the interpreter has settled). Its failure is then the run's to report, for the step
    /// that queued it.
    fn defer(&mut self, _op: &Op, _pos: &SourcePos) -> Result<bool, DetachedFailure> {
        Ok(false)
    }
    /// The body has ended: what it queued with
    /// [`execute_unobserved`](Host::execute_unobserved) must have run, and a failure there
    /// is the body's. Operations [`defer`](Host::defer) queued may still be running.
    fn finish(&mut self) -> Result<(), DetachedFailure> {
        self.settle()
    }
}

/// [`Host::execute_unobserved`] without a queue: the statement runs now.
pub fn execute_in_line<H: Host + ?Sized>(
    host: &mut H,
    sql: &str,
    params: &[Literal],
    pos: &SourcePos,
) -> Result<(), DetachedFailure> {
    host.query(sql, params)
        .map(|_| ())
        .map_err(|error| DetachedFailure::new(error, pos))
}

/// A statement run by [`Host::execute_unobserved`] that failed, and where the body ran it:
/// the failure may be noticed later, but it is raised at that place.
#[derive(Clone, Debug, PartialEq)]
pub struct DetachedFailure {
    pub error: HostError,
    pub pos: SourcePos,
}

impl DetachedFailure {
    pub fn new(error: HostError, pos: &SourcePos) -> DetachedFailure {
        DetachedFailure {
            error,
            pos: pos.clone(),
        }
    }
}

/// One value of a row as the database returned it, borrowed from the driver where it can be.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(std::borrow::Cow<'a, str>),
    Blob(&'a [u8]),
    /// A value of another kind, from a host that answers with literals.
    Other(&'a Literal),
}

impl<'a> Cell<'a> {
    pub fn of(l: &'a Literal) -> Cell<'a> {
        match l {
            Literal::None => Cell::Null,
            Literal::Int(i) => Cell::Int(*i),
            Literal::Float(f) => Cell::Float(*f),
            Literal::Str(s) => Cell::Text(std::borrow::Cow::Borrowed(s)),
            Literal::Bytes(b) => Cell::Blob(b),
            other => Cell::Other(other),
        }
    }

    pub fn to_literal(&self) -> Literal {
        match self {
            Cell::Null => Literal::None,
            Cell::Int(i) => Literal::Int(*i),
            Cell::Float(f) => Literal::Float(*f),
            Cell::Text(t) => Literal::Str(t.to_string()),
            Cell::Blob(b) => Literal::Bytes(b.to_vec()),
            Cell::Other(l) => (*l).clone(),
        }
    }
}

/// What a data statement gives besides its rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryShape {
    pub columns: Vec<String>,
    /// As [`QueryOutput::rowcount`].
    pub rowcount: i64,
}

/// Rows from a data statement, values as SQLite returned them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryOutput {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Literal>>,
    /// Rows changed by an INSERT/UPDATE/DELETE (`cursor.rowcount`), -1 for a SELECT.
    pub rowcount: i64,
}

/// A failure in the host, raised into Python as the exception `class` (e.g.
/// `sqlalchemy.exc.OperationalError`), so a body's `try/except` can catch it.
#[derive(Clone, Debug, PartialEq)]
pub struct HostError {
    pub class: String,
    pub message: String,
}

/// Why a body did not finish.
#[derive(Clone, Debug, PartialEq)]
pub enum EvalError {
    /// A Python exception that nothing caught (`class`: qualified for non-builtins).
    Exception {
        class: String,
        message: String,
        pos: SourcePos,
    },
    /// A construct outside what ralembic runs natively.
    Unsupported {
        what: String,
        why: String,
        pos: SourcePos,
    },
}

impl EvalError {
    pub fn pos(&self) -> &SourcePos {
        match self {
            EvalError::Exception { pos, .. } | EvalError::Unsupported { pos, .. } => pos,
        }
    }

    /// `path:line:col: message`, without the class (which [`python_class`] gives).
    ///
    /// [`python_class`]: EvalError::python_class
    pub fn located_message(&self) -> String {
        match self {
            EvalError::Exception { message, pos, .. } => format!("{pos}: {message}"),
            EvalError::Unsupported { .. } => self.to_string(),
        }
    }

    /// The Python exception class a traceback would end with.
    pub fn python_class(&self) -> &str {
        match self {
            EvalError::Exception { class, .. } => class,
            EvalError::Unsupported { .. } => "NotImplementedError",
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Exception {
                class,
                message,
                pos,
            } => {
                if message.is_empty() {
                    write!(f, "{pos}: {class}")
                } else {
                    write!(f, "{pos}: {class}: {message}")
                }
            }
            EvalError::Unsupported { what, why, pos } => {
                write!(f, "{pos}: {what} is not supported by ralembic: {why}")
            }
        }
    }
}

impl std::error::Error for EvalError {}

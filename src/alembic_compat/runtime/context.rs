//! [`MigrationContext`]: where a migration's SQL goes (a SQLite connection, or the offline
//! `--sql` text) and the transaction units around it.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::body::COMMAND_ERROR;
use super::log::AlembicLog;
use super::pipeline::{checked, Failure, Issued, Pipeline, QueuedError};
use super::sql::VersionTable;
use crate::alembic_compat::config::{parse_sqlite_url, SqliteDatabase, UrlError};
use crate::alembic_compat::ops::Literal;

/// How long `BEGIN IMMEDIATE` waits for another writer before giving up.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the runtime, each knowing the Python exception Alembic would raise for it.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// SQLite refused a statement (SQLAlchemy wraps it as `OperationalError` & co).
    #[error("{}", dbapi_message(.code, .message, Some(.sql), ""))]
    Sql {
        sql: String,
        message: String,
        code: Option<rusqlite::ErrorCode>,
    },
    /// The database could not be opened.
    #[error("{}", dbapi_message(.code, .message, None, ""))]
    Open {
        message: String,
        code: Option<rusqlite::ErrorCode>,
    },
    #[error("{0}")]
    Url(#[from] UrlError),
    /// A bound parameter we cannot pass to SQLite.
    #[error("unsupported parameter value {0}")]
    Parameter(String),
    /// Alembic's `CommandError` (e.g. a version row that is not there).
    #[error("{0}")]
    Command(String),
    /// An internal assertion of Alembic's HeadMaintainer (`AssertionError`, `KeyError`).
    #[error("{message}")]
    Python {
        class: &'static str,
        message: String,
    },
}

/// The `sqlite3` exception class for a SQLite result code (as CPython's `_sqlite` module
/// picks it), the SQLAlchemy class that wraps it, and the page of SQLAlchemy's
/// documentation about that class.
fn dbapi_error(code: &Option<rusqlite::ErrorCode>) -> [&'static str; 3] {
    use rusqlite::ErrorCode as C;
    match code {
        Some(C::InternalMalfunction | C::NotFound) => [
            "sqlite3.InternalError",
            "sqlalchemy.exc.InternalError",
            "2j85",
        ],
        Some(
            C::DatabaseCorrupt
            | C::NotADatabase
            | C::NoLargeFileSupport
            | C::AuthorizationForStatementDenied,
        ) => [
            "sqlite3.DatabaseError",
            "sqlalchemy.exc.DatabaseError",
            "4xp6",
        ],
        Some(C::TooBig) => ["sqlite3.DataError", "sqlalchemy.exc.DataError", "9h9h"],
        Some(C::ConstraintViolation | C::TypeMismatch) => [
            "sqlite3.IntegrityError",
            "sqlalchemy.exc.IntegrityError",
            "gkpj",
        ],
        Some(C::ApiMisuse | C::ParameterOutOfRange) => [
            "sqlite3.InterfaceError",
            "sqlalchemy.exc.InterfaceError",
            "rvf5",
        ],
        // SQLITE_ERROR (rusqlite's `Unknown`), locks, I/O, read-only, schema changes...
        _ => [
            "sqlite3.OperationalError",
            "sqlalchemy.exc.OperationalError",
            "e3q8",
        ],
    }
}

/// The SQLAlchemy exception class that wraps a SQLite error.
pub(crate) fn sqlalchemy_class(code: &Option<rusqlite::ErrorCode>) -> &'static str {
    dbapi_error(code)[1]
}

/// `str()` of the SQLAlchemy error wrapping a SQLite one, as a traceback ends with it:
/// `(sqlite3.X) message`, the statement (`[SQL: …]`) and the lines in `details` (its
/// parameters) when there is one, then the page that explains the class.
pub(crate) fn dbapi_message(
    code: &Option<rusqlite::ErrorCode>,
    message: &str,
    sql: Option<&str>,
    details: &str,
) -> String {
    let [dbapi, _, page] = dbapi_error(code);
    let statement = sql
        .map(|sql| format!("\n[SQL: {sql}]{details}"))
        .unwrap_or_default();
    format!("({dbapi}) {message}{statement}\n(Background on this error at: https://sqlalche.me/e/21/{page})")
}

/// A [`dbapi_message`] taken apart: what a body reads from a caught database error.
#[derive(Debug, PartialEq)]
pub(crate) struct DbapiParts<'a> {
    /// The driver's exception class, `sqlite3.IntegrityError` (`type(e.orig)`), or
    /// SQLAlchemy's under a StatementError.
    pub driver_class: &'a str,
    /// The driver's message (`str(e.orig)`).
    pub message: &'a str,
    /// `e.statement`.
    pub statement: Option<&'a str>,
    /// Whether the statement had bound parameters (`e.params` is otherwise `()`).
    pub has_params: bool,
    /// SQLAlchemy's error code (`e.code`), from the background link.
    pub code: Option<&'a str>,
}

pub(crate) fn dbapi_parts(text: &str) -> Option<DbapiParts<'_>> {
    const BACKGROUND: &str = "\n(Background on this error at: https://sqlalche.me/e/21/";
    let rest = text.strip_prefix('(')?;
    let close = rest.find(") ")?;
    let driver_class = &rest[..close];
    // A driver's error, or SQLAlchemy's own under a StatementError (an unbound parameter).
    if !driver_class.starts_with("sqlite3.") && !driver_class.starts_with("sqlalchemy.exc.") {
        return None;
    }
    let body = &rest[close + 2..];
    let (body, code) = match body.rfind(BACKGROUND) {
        Some(end) => (
            &body[..end],
            body[end + BACKGROUND.len()..].strip_suffix(')'),
        ),
        None => (body, None),
    };
    let (message, statement, has_params) = match body.find("\n[SQL: ") {
        Some(at) => {
            let sql = &body[at + "\n[SQL: ".len()..];
            match sql.rfind("]\n[parameters: ") {
                Some(end) => (&body[..at], Some(&sql[..end]), true),
                None => (
                    &body[..at],
                    Some(sql.strip_suffix(']').unwrap_or(sql)),
                    false,
                ),
            }
        }
        None => (body, None, false),
    };
    Some(DbapiParts {
        driver_class,
        message,
        statement,
        has_params,
        code,
    })
}

impl RuntimeError {
    /// The exception class a traceback would name.
    pub fn python_class(&self) -> &'static str {
        match self {
            RuntimeError::Sql { code, .. } | RuntimeError::Open { code, .. } => {
                sqlalchemy_class(code)
            }
            RuntimeError::Url(UrlError::UnsupportedDialect(_) | UrlError::UnsupportedDriver(_)) => {
                "sqlalchemy.exc.NoSuchModuleError"
            }
            RuntimeError::Url(UrlError::InvalidPort(_) | UrlError::InvalidQueryValue { .. }) => {
                "ValueError"
            }
            RuntimeError::Url(_) => "sqlalchemy.exc.ArgumentError",
            RuntimeError::Parameter(_) => "sqlalchemy.exc.ArgumentError",
            RuntimeError::Command(_) => COMMAND_ERROR,
            RuntimeError::Python { class, .. } => class,
        }
    }

    /// Whether SQLite gave up waiting for another connection's lock.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            RuntimeError::Sql {
                code: Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked),
                ..
            }
        )
    }

    /// The same failure, naming `shown` as the statement: for a statement run in another
    /// form than the one a user would recognise (see `BatchSql::copy_without_statement_journal`).
    pub fn shown_as(self, shown: &str) -> RuntimeError {
        match self {
            RuntimeError::Sql { message, code, .. } => RuntimeError::Sql {
                sql: shown.to_string(),
                message,
                code,
            },
            other => other,
        }
    }

    fn sql(sql: &str, e: rusqlite::Error) -> RuntimeError {
        let (message, code) = split_sqlite_error(e);
        RuntimeError::Sql {
            sql: sql.to_string(),
            message,
            code,
        }
    }
}

pub(crate) fn split_sqlite_error(e: rusqlite::Error) -> (String, Option<rusqlite::ErrorCode>) {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            (msg.unwrap_or_else(|| f.to_string()), Some(f.code))
        }
        // SQLite's own text, without the `in <sql> at offset n` rusqlite adds.
        rusqlite::Error::SqlInputError { error, msg, .. } => (msg, Some(error.code)),
        other => (other.to_string(), None),
    }
}

/// What env.py's `context.configure(...)` and the command line give the context.
#[derive(Debug, Clone)]
pub struct ContextOptions {
    pub version_table: VersionTable,
    /// `transaction_per_migration=True`: one transaction per step instead of one per run.
    pub transaction_per_migration: bool,
    pub render_as_batch: bool,
    /// `-x` arguments, as given.
    pub x_arguments: Vec<String>,
    /// `--tag`.
    pub tag: Option<String>,
    /// How long to wait for another writer's lock.
    pub lock_timeout: Duration,
    /// `target_metadata.naming_convention`, as far as env.py shows it (see `EnvSettings`).
    pub naming_convention: Vec<(String, String)>,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            version_table: VersionTable::default(),
            transaction_per_migration: false,
            render_as_batch: false,
            x_arguments: Vec::new(),
            tag: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            naming_convention: Vec::new(),
        }
    }
}

enum Target {
    Online {
        conn: Connection,
        in_transaction: bool,
    },
    Offline,
}

/// The state a migration runs against. Online it wraps one SQLite connection; offline it
/// collects the SQL text Alembic's `--sql` mode prints. Output (offline SQL, log lines) is
/// buffered here and handed to the command with [`MigrationContext::take_stdout`] /
/// [`MigrationContext::take_stderr`], so bodies never hold the process's streams.
pub struct MigrationContext {
    /// Statements queued on a worker thread (see [`pipeline`](super::pipeline)). Declared
    /// first: dropped, its worker joined, before the connection closes.
    pipeline: RefCell<Option<Pipeline>>,
    /// Whether operations' statements and version-row updates may be queued, across the
    /// boundaries of revisions (set by the command for a run that gains from it).
    defer_operations: bool,
    /// The step of the run now running, recorded with each queued statement.
    step: u32,
    /// Where each step's output began in the buffers (step, stdout, log), since they were
    /// last drained: a statement that fails after later steps ran takes their output back.
    marks: Vec<(u32, usize, usize)>,
    target: Target,
    opts: ContextOptions,
    stdout: String,
    pub(crate) log: AlembicLog,
}

impl MigrationContext {
    /// Opens the SQLite database of `url` (relative paths against `cwd`), creating the file
    /// when missing as `sqlite3.connect` does. Does not begin a transaction.
    pub fn open(
        url: &str,
        cwd: &Path,
        opts: ContextOptions,
        log: AlembicLog,
    ) -> Result<Self, RuntimeError> {
        let parsed = parse_sqlite_url(url, cwd)?;
        let rw = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = match &parsed.database {
            SqliteDatabase::Memory => Connection::open_in_memory(),
            SqliteDatabase::File(p) => Connection::open_with_flags(p, rw),
            SqliteDatabase::Uri(u) => {
                Connection::open_with_flags(u, rw | OpenFlags::SQLITE_OPEN_URI)
            }
        };
        let conn = opened.map_err(|e| {
            let (message, code) = split_sqlite_error(e);
            RuntimeError::Open { message, code }
        })?;
        conn.busy_timeout(opts.lock_timeout)
            .map_err(|e| RuntimeError::sql("PRAGMA busy_timeout", e))?;
        for pragma in [
            // The bundled SQLite enforces foreign keys by default; Python's sqlite3 (and so
            // Alembic) does not, and batch mode's DROP of a referenced table relies on that.
            "PRAGMA foreign_keys = OFF",
            // SQLite's default page cache (2 MiB) is sized for many small connections; one
            // migration that rewrites a table of 100,000 rows then re-reads evicted pages and
            // sorts its CREATE INDEX through temporary files. 16 MiB keeps such a run in
            // memory and still bounds it, whatever the table's size. Never persisted.
            "PRAGMA cache_size = -16384",
        ] {
            conn.execute_batch(pragma)
                .map_err(|e| RuntimeError::sql(pragma, e))?;
        }
        register_floor(&conn).map_err(|e| RuntimeError::sql("floor()", e))?;
        register_regexp(&conn).map_err(|e| RuntimeError::sql("regexp()", e))?;
        Ok(Self::with_target(
            Target::Online {
                conn,
                in_transaction: false,
            },
            opts,
            log,
        ))
    }

    /// Offline (`--sql`) mode: statements become text.
    pub fn offline(opts: ContextOptions, log: AlembicLog) -> Self {
        Self::with_target(Target::Offline, opts, log)
    }

    fn with_target(target: Target, opts: ContextOptions, log: AlembicLog) -> Self {
        let mut ctx = MigrationContext {
            pipeline: RefCell::new(None),
            defer_operations: false,
            step: 0,
            marks: Vec::new(),
            target,
            opts,
            stdout: String::new(),
            log,
        };
        let offline = ctx.is_offline();
        ctx.log.context_created(offline);
        ctx
    }

    pub fn is_offline(&self) -> bool {
        matches!(self.target, Target::Offline)
    }

    /// The live connection (online mode), inside the current transaction unit. Statements
    /// still queued run first; a failure among them is kept for [`queued_failure`] (the
    /// caller goes on, and the run reports that failure instead of whatever follows).
    ///
    /// [`queued_failure`]: Self::queued_failure
    pub fn connection(&self) -> Option<&Connection> {
        self.settle_quietly();
        match &self.target {
            Target::Online { conn, .. } => Some(conn),
            Target::Offline => None,
        }
    }

    pub fn x_arguments(&self) -> &[String] {
        &self.opts.x_arguments
    }

    pub fn tag(&self) -> Option<&str> {
        self.opts.tag.as_deref()
    }

    pub fn render_as_batch(&self) -> bool {
        self.opts.render_as_batch
    }

    pub fn transaction_per_migration(&self) -> bool {
        self.opts.transaction_per_migration
    }

    /// The naming convention operations render with (`op.create_table`'s unnamed
    /// constraints, `op.f`-less index names).
    pub fn naming_convention(&self) -> &[(String, String)] {
        &self.opts.naming_convention
    }

    pub fn dialect_name(&self) -> &'static str {
        "sqlite"
    }

    pub fn version_table(&self) -> &VersionTable {
        &self.opts.version_table
    }

    /// Runs one statement: online on the connection (inside the current unit), offline as
    /// `sql;` plus a blank line, as Alembic's `--sql` output shows it (tabs as four spaces,
    /// surrounding whitespace stripped).
    pub fn execute(&mut self, sql: &str) -> Result<(), RuntimeError> {
        self.execute_counted(sql).map(|_| ())
    }

    /// Like [`execute`](Self::execute), returning the number of rows changed (0 offline).
    pub fn execute_counted(&mut self, sql: &str) -> Result<usize, RuntimeError> {
        self.settle_quietly();
        match &self.target {
            // Rows a statement returns (`op.execute("PRAGMA table_info(t)")`) are dropped,
            // as Alembic's execute drops them.
            Target::Online { conn, .. } => {
                super::pipeline::run_once(conn, sql, &[]).map_err(|e| RuntimeError::sql(sql, e))
            }
            Target::Offline => {
                let text = sql.replace('\t', "    ");
                self.static_output(&format!("{};", text.trim()));
                Ok(0)
            }
        }
    }

    /// A statement with `?` placeholders bound to `params`. Offline, the values are rendered
    /// inline as SQLite literals (what `literal_binds=True` does in Alembic's offline mode).
    pub fn execute_with_params(
        &mut self,
        sql: &str,
        params: &[Literal],
    ) -> Result<(), RuntimeError> {
        self.execute_with_params_counted(sql, params).map(|_| ())
    }

    /// Like [`execute_with_params`](Self::execute_with_params), returning the number of rows
    /// changed (0 offline).
    pub fn execute_with_params_counted(
        &mut self,
        sql: &str,
        params: &[Literal],
    ) -> Result<usize, RuntimeError> {
        self.settle_quietly();
        match &self.target {
            Target::Online { conn, .. } => {
                for p in params {
                    check_bindable(p)?;
                }
                // Cached: `bulk_insert` sends one statement text per row; SQLite re-prepares a
                // cached statement by itself when the schema has changed since.
                super::pipeline::run_once(conn, sql, params).map_err(|e| RuntimeError::sql(sql, e))
            }
            Target::Offline => {
                let inlined = inline_params(sql, params)?;
                self.execute_counted(&inlined)
            }
        }
    }

    /// Text written to the offline output as is, followed by a blank line
    /// (`impl.static_output`).
    pub fn static_output(&mut self, text: &str) {
        self.stdout.push_str(text);
        self.stdout.push_str("\n\n");
    }

    /// `print()` from a revision body: stdout, in order with the offline SQL.
    pub fn print_stdout(&mut self, text: &str) {
        self.stdout.push_str(text);
    }

    /// Offline output produced since the last call.
    pub fn take_stdout(&mut self) -> String {
        self.marks.clear();
        std::mem::take(&mut self.stdout)
    }

    /// Log lines produced since the last call, formatted for stderr.
    pub fn take_stderr(&mut self) -> String {
        self.marks.clear();
        self.log.take()
    }

    /// Forgets what was logged since the last take, as if it had never been logged (a
    /// warning given there is given again).
    pub fn discard_stderr(&mut self) {
        self.marks.clear();
        self.log.truncate_buffered(0);
    }

    // ------------------------------------------------------------------ queued statements

    /// Lets operations' statements and version-row updates be queued on a worker thread.
    pub fn set_defer_operations(&mut self, on: bool) {
        self.defer_operations = on && !self.is_offline() && crate::alembic_compat::cores() > 1;
    }

    pub fn defers_operations(&self) -> bool {
        self.defer_operations
    }

    /// Starts step `step` of the run: statements queued from now on are its own, and the
    /// output it produces can be taken back if an earlier step's statement fails.
    pub fn start_step(&mut self, step: u32) {
        self.step = step;
        self.marks
            .push((step, self.stdout.len(), self.log.buffered_len()));
    }

    pub fn step(&self) -> u32 {
        self.step
    }

    /// Starts the worker thread statements are queued on, unless it runs already; false
    /// where there is none (offline, one core, or no thread could start).
    pub fn start_queueing(&mut self) -> bool {
        let Target::Online { conn, .. } = &self.target else {
            return false;
        };
        let slot = self.pipeline.get_mut();
        if slot.is_none() && crate::alembic_compat::cores() > 1 {
            // SAFETY: the connection is opened with SQLITE_OPEN_NO_MUTEX and outlives the
            // pipeline (the `pipeline` field comes before `target`, so it is dropped first);
            // every use of the connection here settles the pipeline first (`connection`,
            // `execute*`, `begin`, `commit`) or drops it (`rollback`).
            *slot = unsafe { Pipeline::start(conn) };
            if slot.is_some() {
                tracing::debug!("statements run on a worker thread from step {}", self.step);
            }
        }
        slot.is_some()
    }

    /// Queues a statement on the worker thread (run in line where none was started, its
    /// failure returned at once).
    pub fn queue(
        &mut self,
        sql: String,
        params: Vec<Literal>,
        issued: Issued,
    ) -> Result<(), Failure> {
        if let Some(p) = self.pipeline.get_mut() {
            return p.push(sql, params, issued);
        }
        let Target::Online { conn, .. } = &self.target else {
            return Err(Failure {
                error: QueuedError::Command(
                    "no database to run statements on in --sql mode".into(),
                ),
                params,
                shows_params: issued.shows_params,
                pos: issued.pos,
                step: issued.step,
            });
        };
        let ran = super::pipeline::run_once(conn, &sql, &params);
        checked(ran, &sql, issued.one_row.as_deref()).map_err(|error| Failure {
            error,
            params,
            shows_params: issued.shows_params,
            pos: issued.pos,
            step: issued.step,
        })
    }

    /// Hands what is queued to the worker now rather than with a full batch.
    pub fn send_queued(&mut self) -> Result<(), Failure> {
        match self.pipeline.get_mut() {
            Some(p) => p.send(),
            None => Ok(()),
        }
    }

    /// Whether a worker takes queued statements (started by an earlier [`queue`](Self::queue)).
    pub fn is_queueing(&self) -> bool {
        self.pipeline.borrow().is_some()
    }

    /// Waits for the queued statements; the first that failed, if one did.
    pub fn settle(&self) -> Result<(), Failure> {
        match self.pipeline.borrow_mut().as_mut() {
            Some(p) => p.settle(),
            None => Ok(()),
        }
    }

    fn settle_quietly(&self) {
        let _ = self.settle();
    }

    /// Whether queued statements may still be running or unreported (without waiting):
    /// output produced after them is held until they are settled.
    pub fn has_pending(&self) -> bool {
        self.pipeline
            .borrow()
            .as_ref()
            .is_some_and(Pipeline::pending)
    }

    /// A queued statement's failure, once a settle has seen it.
    pub fn queued_failure(&self) -> Option<Failure> {
        self.pipeline
            .borrow()
            .as_ref()
            .and_then(|p| p.failure().cloned())
    }

    /// Drops the output of the steps after `step`: it was produced while one of `step`'s
    /// statements, which failed, was still queued.
    pub fn discard_output_after(&mut self, step: u32) {
        if let Some(&(_, out, log)) = self.marks.iter().find(|(s, _, _)| *s > step) {
            self.stdout.truncate(out);
            self.log.truncate_buffered(log);
        }
    }

    // ------------------------------------------------------------------ transaction units

    /// Starts a unit: `BEGIN IMMEDIATE` takes SQLite's write lock up front (waiting up to the
    /// lock timeout), so the version rows read next cannot change under us. Offline: nothing.
    pub fn begin(&mut self) -> Result<(), RuntimeError> {
        self.settle_quietly();
        if let Target::Online {
            conn,
            in_transaction,
        } = &mut self.target
        {
            if !*in_transaction {
                conn.execute_batch("BEGIN IMMEDIATE")
                    .map_err(|e| RuntimeError::sql("BEGIN IMMEDIATE", e))?;
                *in_transaction = true;
            }
        }
        Ok(())
    }

    /// Commits the unit once every queued statement has run; a queued failure is returned
    /// instead (the command reports it for the step that issued it, and rolls back).
    pub fn commit(&mut self) -> Result<(), RuntimeError> {
        if let Err(f) = self.settle() {
            return Err(f.error.to_runtime());
        }
        if let Target::Online {
            conn,
            in_transaction,
        } = &mut self.target
        {
            if *in_transaction {
                conn.execute_batch("COMMIT")
                    .map_err(|e| RuntimeError::sql("COMMIT", e))?;
                *in_transaction = false;
            }
        }
        Ok(())
    }

    /// Undoes the current unit. Errors are reported but not returned: a failed rollback
    /// leaves SQLite to roll back when the connection closes, which it does on every path.
    pub fn rollback(&mut self) {
        // What is still queued belongs to the unit being undone.
        self.pipeline.get_mut().take();
        if let Target::Online {
            conn,
            in_transaction,
        } = &mut self.target
        {
            if *in_transaction {
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::warn!("ROLLBACK failed: {e}");
                }
                *in_transaction = false;
            }
        }
    }

    pub fn in_transaction(&self) -> bool {
        matches!(
            self.target,
            Target::Online {
                in_transaction: true,
                ..
            }
        )
    }

    // ------------------------------------------------------------------ the version table

    /// Whether the version table exists (`_has_version_table`). Offline: never asked.
    pub fn has_version_table(&self) -> Result<bool, RuntimeError> {
        let Some(conn) = self.connection() else {
            return Ok(false);
        };
        let vt = &self.opts.version_table;
        let schemas: Vec<String> = match &vt.schema {
            Some(s) => {
                let names = query_strings(conn, "PRAGMA database_list", 1)?;
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
                quote_always(&schema),
                quote_always(&vt.table)
            );
            let mut stmt = conn.prepare(&sql).map_err(|e| RuntimeError::sql(&sql, e))?;
            let mut rows = stmt.query([]).map_err(|e| RuntimeError::sql(&sql, e))?;
            if rows
                .next()
                .map_err(|e| RuntimeError::sql(&sql, e))?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The version rows in table order (`get_current_heads` online).
    pub fn read_version_rows(&self) -> Result<Vec<String>, RuntimeError> {
        let Some(conn) = self.connection() else {
            return Ok(Vec::new());
        };
        if !self.has_version_table()? {
            return Ok(Vec::new());
        }
        query_strings(conn, &self.opts.version_table.select_sql(), 0)
    }

    /// `_ensure_version_table(purge)`: creates the table if missing, optionally empties it.
    pub fn ensure_version_table(&mut self, purge: bool) -> Result<(), RuntimeError> {
        if !self.has_version_table()? {
            let sql = self.opts.version_table.create_sql();
            self.execute(&sql)?;
        }
        if purge {
            let sql = self.opts.version_table.delete_all_sql();
            self.execute(&sql)?;
        }
        Ok(())
    }
}

/// SQLAlchemy's SQLite dialect gives every connection a `floor()` (Python's `math.floor`),
/// which its rendering of `a // b` calls; this SQLite, like Python's, has none of its own.
/// As Python's: an integer for a number, and for anything else (NULL, text) the failure
/// Python's sqlite3 reports for a function that raised.
fn register_floor(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    conn.create_scalar_function(
        "floor",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            match ctx.get_raw(0) {
                ValueRef::Integer(i) => Ok(i),
                // Beyond 64 bits Python's int does not fit SQLite's integer either.
                ValueRef::Real(r)
                    if r.is_finite()
                        && r.floor() >= -(2f64.powi(63))
                        && r.floor() < 2f64.powi(63) =>
                {
                    Ok(r.floor() as i64)
                }
                _ => Err(raised(None)),
            }
        },
    )
}

/// The failure Python's sqlite3 reports for a user-defined function that raised.
#[derive(Debug)]
struct Raised(String);
impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Raised {}

fn raised(text: Option<String>) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(Raised(
        text.unwrap_or_else(|| "user-defined function raised exception".into()),
    )))
}

/// SQLAlchemy's SQLite dialect also gives every connection `regexp(pattern, text)`, which
/// SQLite's `text REGEXP pattern` calls: `re.search(pattern, text) is not None`, NULL for a
/// NULL text. A pattern construct ralembic's `re` does not run fails with its reason.
fn register_regexp(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    conn.create_scalar_function(
        "regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            // A NULL text answers NULL before the pattern is looked at, as in SQLAlchemy's.
            let text = match ctx.get_raw(1) {
                ValueRef::Null => return Ok(None),
                ValueRef::Text(t) => t,
                _ => return Err(raised(None)),
            };
            let ValueRef::Text(pattern) = ctx.get_raw(0) else {
                return Err(raised(None));
            };
            let (Ok(pattern), Ok(text)) = (std::str::from_utf8(pattern), std::str::from_utf8(text))
            else {
                return Err(raised(None));
            };
            crate::alembic_compat::eval::re::sql_regexp(pattern, text)
                .map(Some)
                .map_err(|why| raised(why.map(|w| format!("REGEXP: {w}"))))
        },
    )
}

fn quote_always(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn query_strings(conn: &Connection, sql: &str, col: usize) -> Result<Vec<String>, RuntimeError> {
    let mut stmt = conn.prepare(sql).map_err(|e| RuntimeError::sql(sql, e))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Option<String>>(col))
        .map_err(|e| RuntimeError::sql(sql, e))?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(v) = r.map_err(|e| RuntimeError::sql(sql, e))? {
            out.push(v);
        }
    }
    Ok(out)
}

/// Refuses a value SQLite cannot bind (a list, a type), with our message.
fn check_bindable(l: &Literal) -> Result<(), RuntimeError> {
    match l {
        Literal::None
        | Literal::Bool(_)
        | Literal::Int(_)
        | Literal::Float(_)
        | Literal::Str(_)
        | Literal::Bytes(_) => Ok(()),
        other => Err(RuntimeError::Parameter(format!("{other:?}"))),
    }
}

/// SQLite literal text for a value (`literal_binds`).
fn literal_sql(l: &Literal) -> Result<String, RuntimeError> {
    Ok(match l {
        Literal::None => "NULL".into(),
        Literal::Bool(b) => if *b { "1" } else { "0" }.into(),
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => format!("{f:?}"),
        Literal::Str(s) => format!("'{}'", s.replace('\'', "''")),
        Literal::Bytes(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
            format!("X'{hex}'")
        }
        other => return Err(RuntimeError::Parameter(format!("{other:?}"))),
    })
}

/// Replaces each `?` outside quotes, identifiers and comments with the next parameter.
fn inline_params(sql: &str, params: &[Literal]) -> Result<String, RuntimeError> {
    let mut out = String::with_capacity(sql.len());
    let mut next = params.iter();
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if matches!(c, '\'' | '"' | '`') => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '[' => {
                quote = Some(']');
                out.push(c);
            }
            None if c == '?' => match next.next() {
                Some(p) => out.push_str(&literal_sql(p)?),
                None => {
                    return Err(RuntimeError::Parameter(format!(
                        "more placeholders than the {} values given",
                        params.len()
                    )))
                }
            },
            None => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(step: u32, one_row: bool) -> Issued {
        Issued {
            step,
            one_row: one_row.then(|| "one row expected; ".to_string()),
            ..Issued::default()
        }
    }

    #[test]
    fn queued_statements_run_before_other_uses_and_fail_for_their_step() {
        let mut ctx = MigrationContext::open(
            "sqlite://",
            Path::new("."),
            ContextOptions::default(),
            AlembicLog::disabled(),
        )
        .unwrap();
        ctx.begin().unwrap();
        // No worker yet: the statement runs at once, its failure returned at once.
        ctx.queue(
            "CREATE TABLE t (v INTEGER NOT NULL)".into(),
            Vec::new(),
            issued(0, false),
        )
        .unwrap();
        let failed = ctx
            .queue(
                "INSERT INTO t VALUES (NULL)".into(),
                Vec::new(),
                issued(1, false),
            )
            .unwrap_err();
        assert_eq!(failed.step, 1);
        assert!(matches!(
            &failed.error,
            QueuedError::Sql { message, .. } if message == "NOT NULL constraint failed: t.v"
        ));
        let failed = ctx
            .queue("UPDATE t SET v = 1".into(), Vec::new(), issued(2, true))
            .unwrap_err();
        assert_eq!(
            failed.error,
            QueuedError::Command("one row expected; 0 found".into())
        );
        if !ctx.start_queueing() {
            assert_eq!(
                crate::alembic_compat::cores(),
                1,
                "no worker on several cores"
            );
            return;
        }
        assert!(ctx.is_queueing());
        for v in 0..500 {
            ctx.queue(
                "INSERT INTO t VALUES (?)".into(),
                vec![Literal::Int(v)],
                issued(3, false),
            )
            .unwrap();
        }
        // Any use of the connection waits for them.
        let n: i64 = ctx
            .connection()
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 500);
        assert!(!ctx.has_pending());
        // Output of the steps after a failing one is taken back.
        ctx.start_step(4);
        ctx.print_stdout("four\n");
        ctx.queue(
            "INSERT INTO t VALUES (NULL)".into(),
            Vec::new(),
            issued(4, false),
        )
        .unwrap();
        ctx.send_queued().unwrap();
        ctx.start_step(5);
        ctx.print_stdout("five\n");
        assert!(ctx.has_pending());
        let commit = ctx.commit();
        assert!(commit.is_err(), "committed over a failed statement");
        let failure = ctx.queued_failure().unwrap();
        assert_eq!(failure.step, 4);
        ctx.discard_output_after(failure.step);
        assert_eq!(ctx.take_stdout(), "four\n");
        ctx.rollback();
        assert!(!ctx.is_queueing());
    }

    #[test]
    fn dbapi_parts_take_a_formatted_message_apart() {
        use rusqlite::ErrorCode;
        let code = Some(ErrorCode::ConstraintViolation);
        let sql = "INSERT INTO t (v) SELECT x[1] \nFROM s";
        let m = dbapi_message(
            &code,
            "NOT NULL constraint failed: t.v",
            Some(sql),
            "\n[parameters: (1,)]",
        );
        assert_eq!(
            dbapi_parts(&m),
            Some(DbapiParts {
                driver_class: "sqlite3.IntegrityError",
                message: "NOT NULL constraint failed: t.v",
                statement: Some(sql),
                has_params: true,
                code: Some("gkpj"),
            })
        );
        let m = dbapi_message(&None, "boom", Some("SELECT 1"), "");
        let parts = dbapi_parts(&m).unwrap();
        assert_eq!(
            (parts.message, parts.statement, parts.has_params),
            ("boom", Some("SELECT 1"), false)
        );
        let m = dbapi_message(&code, "cannot open", None, "");
        assert_eq!(
            dbapi_parts(&m).map(|p| (p.message, p.statement)),
            Some(("cannot open", None))
        );
        assert_eq!(dbapi_parts("a plain message"), None);
        assert_eq!(dbapi_parts("(ValueError) not a database error"), None);
    }

    #[test]
    fn offline_params_are_inlined() {
        let sql = inline_params(
            "INSERT INTO t (a, \"b?\") VALUES (?, ?, '?', ?)",
            &[Literal::Str("it's".into()), Literal::Int(3), Literal::None],
        )
        .unwrap();
        assert_eq!(
            sql,
            "INSERT INTO t (a, \"b?\") VALUES ('it''s', 3, '?', NULL)"
        );
        assert!(inline_params("?", &[]).is_err());
    }

    /// `str()` of what SQLAlchemy 2.1 raises connecting to a file in a missing directory,
    /// except that the message names the file (SQLite's through rusqlite does; Python's
    /// sqlite3 drops it, and the file is what the user needs to know).
    #[test]
    fn a_database_that_cannot_be_opened_reads_as_sqlalchemy_s_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:///{}/missing/x.db", dir.path().display());
        let err = MigrationContext::open(
            &url,
            dir.path(),
            ContextOptions::default(),
            AlembicLog::disabled(),
        )
        .err()
        .unwrap();
        assert_eq!(err.python_class(), "sqlalchemy.exc.OperationalError");
        assert_eq!(
            err.to_string(),
            format!(
                "(sqlite3.OperationalError) unable to open database file: {}\n\
                 (Background on this error at: https://sqlalche.me/e/21/e3q8)",
                dir.path().join("missing/x.db").display()
            )
        );
    }

    #[test]
    fn online_units_commit_and_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:///{}", dir.path().join("x.db").display());
        let mut ctx = MigrationContext::open(
            &url,
            dir.path(),
            ContextOptions::default(),
            AlembicLog::disabled(),
        )
        .unwrap();
        ctx.begin().unwrap();
        ctx.ensure_version_table(false).unwrap();
        ctx.execute("INSERT INTO alembic_version VALUES ('a')")
            .unwrap();
        ctx.commit().unwrap();
        ctx.begin().unwrap();
        ctx.execute("INSERT INTO alembic_version VALUES ('b')")
            .unwrap();
        ctx.rollback();
        assert_eq!(ctx.read_version_rows().unwrap(), vec!["a"]);
        let err = ctx.execute("CREATE TABLE alembic_version (x)").unwrap_err();
        assert_eq!(err.python_class(), "sqlalchemy.exc.OperationalError");
        assert_eq!(
            err.to_string(),
            "(sqlite3.OperationalError) table alembic_version already exists\n[SQL: CREATE TABLE alembic_version (x)]\n(Background on this error at: https://sqlalche.me/e/21/e3q8)"
        );
    }
}

//! Statements whose results nobody reads, run on a second thread.
//!
//! Two kinds of work are queued here. A data loop (`for row in rows:
//! conn.execute(sa.update(t).where(...).values(...))`) spends about half its time in the
//! interpreter and half in SQLite; and a long history of plain `op.*` revisions spends about
//! as much in the interpreter as in SQLite's DDL. With the statements handed to a worker
//! thread in order, the two halves overlap on two cores.
//!
//! What a body and the run see does not change:
//! - the statements run in the order they were issued, in the same transaction;
//! - nothing else reaches the database until the worker has run every queued statement:
//!   [`MigrationContext`](super::MigrationContext) settles the pipeline before any other use
//!   of the connection, and holds its output while statements are pending;
//! - a failed statement stops the rest, and its failure names the place and the step of the
//!   run that issued it. Only statements outside every `try` are queued, so no handler could
//!   have caught it.
//!
//! Sharing the connection: SQLite is opened in multi-thread mode (`SQLITE_OPEN_NO_MUTEX`), in
//! which one connection may be used by several threads but never by two at once. The
//! worker gets its own `rusqlite::Connection` over the same handle (rusqlite does not close a
//! handle it did not open), so the two threads share no Rust state, only the SQLite handle,
//! and they take turns with it through `settle`. No Rust callback (SQL function, hook,
//! busy handler) is registered on the connection, so none can run on the worker.
//!
//! Two cores: on Linux the issuer and the worker are each held to a core of their own while
//! the pipeline lives (see `placement::Split`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::context::{split_sqlite_error, RuntimeError};
use crate::alembic_compat::ops::{Literal, SourcePos};
use crate::alembic_compat::placement;

/// Statements handed over together: one wake-up of the worker per batch, not per row.
const BATCH: usize = 64;

/// Batches queued at most before the issuer waits for the worker: memory stays bounded when
/// SQLite is the slower side.
const QUEUED_BATCHES: usize = 16;

/// How long either side spins before it sleeps. A handoff through the kernel (one thread
/// asleep, woken by the other) costs tens of microseconds on a small VM, more than most DDL
/// statements; both threads run on their own cores while a run lasts.
const SPIN: Duration = Duration::from_micros(60);

/// How long the issuer watches a full queue for a free slot before it sleeps (see
/// `hand_over`): longer than the worker takes for most jobs (a DDL statement, a batch of
/// rows), short enough that a long one (a batch copy of a big table) is waited for asleep.
const SLOT_WATCH: Duration = Duration::from_millis(2);

/// What a queued statement's failure says.
#[derive(Clone, Debug, PartialEq)]
pub enum QueuedError {
    /// SQLite refused the statement.
    Sql {
        sql: String,
        message: String,
        code: Option<rusqlite::ErrorCode>,
    },
    /// Alembic's `CommandError`: the statement changed another number of rows than it must
    /// (the version row's UPDATE).
    Command(String),
}

impl QueuedError {
    /// The error as the same statement run in line reports it (without its parameters).
    pub fn to_runtime(&self) -> RuntimeError {
        match self {
            QueuedError::Sql { sql, message, code } => RuntimeError::Sql {
                sql: sql.clone(),
                message: message.clone(),
                code: *code,
            },
            QueuedError::Command(m) => RuntimeError::Command(m.clone()),
        }
    }
}

/// A queued statement that failed, and who issued it.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub error: QueuedError,
    /// Its parameters; `shows_params`: whether its error names them (a data statement's
    /// does, as SQLAlchemy's; an operation's statements run in line show none).
    pub params: Vec<Literal>,
    pub shows_params: bool,
    /// Where the body issued it.
    pub pos: SourcePos,
    /// The step of the run that issued it.
    pub step: u32,
}

/// How a queued statement is checked and reported.
#[derive(Clone, Debug, Default)]
pub struct Issued {
    pub pos: SourcePos,
    pub step: u32,
    pub shows_params: bool,
    /// The statement must change exactly one row; otherwise this text plus "N found" is the
    /// failure.
    pub one_row: Option<String>,
}

struct Queued {
    /// `None`: the same text as the statement before it. A loop sends one statement over
    /// and over; the worker then keeps it prepared instead of looking it up by its text.
    sql: Option<String>,
    params: Vec<Literal>,
    /// Index into `Pipeline::issued`: those stay on the issuing thread.
    at: u32,
    one_row: Option<String>,
}

enum Job {
    Run(Vec<Queued>),
    /// Answer on `done` once everything before it has run.
    Settle,
}

/// What the worker answers to `Job::Settle`: the statement that failed, if one did, its
/// parameters and the index of its origin.
type Settled = Option<(QueuedError, Vec<Literal>, u32)>;

/// What both threads see without a message.
#[derive(Default)]
struct Shared {
    /// Batches the worker has finished.
    finished: AtomicU64,
    /// Set once a statement has failed (before `finished` counts its batch).
    failed: AtomicBool,
    /// Set when the issuer drops the pipeline: the rest is skipped (the unit rolls back).
    cancelled: AtomicBool,
}

pub struct Pipeline {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Settled>,
    /// Batches the worker has run, handed back with their statements' texts and parameters
    /// so that these are freed here, where they were allocated. Freed by the worker, each
    /// block went back to this thread's heap only when the allocator next swept the page
    /// holding it; until then every statement took fresh memory, and a long run spent a
    /// fifth of this thread's time searching page lists and faulting in new pages.
    spent: Receiver<Vec<Queued>>,
    worker: Option<JoinHandle<()>>,
    /// Where the issuer and the worker run; undone when the pipeline is dropped.
    split: Option<placement::Split>,
    shared: Arc<Shared>,
    batch: Vec<Queued>,
    /// Batches sent, and whether any were sent since the last settle.
    sent: u64,
    unsettled: bool,
    /// Once a statement has failed, every later call reports it.
    failure: Option<Failure>,
    /// Who issued the statements queued since the last settle, each origin once per run of
    /// statements from it.
    issued: Vec<(SourcePos, u32, bool)>,
    /// The text of the last statement sent.
    last_sql: String,
}

/// The raw SQLite handle, moved to the worker.
struct Handle(*mut rusqlite::ffi::sqlite3);

// SAFETY: SQLite in multi-thread mode lets any thread use a connection; `Pipeline`'s owner
// guarantees that only one thread uses it at a time (see `Pipeline::start`).
unsafe impl Send for Handle {}

impl Pipeline {
    /// Starts the worker over `conn`'s SQLite handle; `None` where a thread cannot start.
    ///
    /// # Safety
    ///
    /// `conn` must have been opened with `SQLITE_OPEN_NO_MUTEX` (or a stricter threading
    /// mode), must stay open while the pipeline lives, and its owner must not use it between
    /// a [`push`](Self::push) and the next [`settle`](Self::settle) that returned, nor before
    /// the pipeline is dropped.
    pub unsafe fn start(conn: &rusqlite::Connection) -> Option<Pipeline> {
        // SAFETY: the handle stays valid for the pipeline's life (the caller's promise).
        let handle = Handle(unsafe { conn.handle() });
        let (jobs, inbox) = mpsc::sync_channel::<Job>(QUEUED_BATCHES);
        let (answer, done) = mpsc::sync_channel::<Settled>(1);
        let (recycle, spent) = mpsc::channel::<Vec<Queued>>();
        let shared = Arc::new(Shared::default());
        let seen = Arc::clone(&shared);
        let split = placement::Split::take();
        let worker = std::thread::Builder::new()
            .name("ralembic-statements".into())
            .spawn(move || {
                let handle = handle;
                // SAFETY: a connection that does not own the handle: dropping it finalizes
                // its own prepared statements and leaves the handle open.
                if let Ok(conn) = unsafe { rusqlite::Connection::from_handle(handle.0) } {
                    work(&conn, &inbox, &answer, &recycle, &seen);
                }
            })
            .ok();
        let Some(worker) = worker else {
            if let Some(split) = split {
                split.undo();
            }
            return None;
        };
        let split = split.and_then(|s| s.pin_worker(&worker));
        Some(Pipeline {
            jobs: Some(jobs),
            done,
            spent,
            worker: Some(worker),
            split,
            shared,
            batch: Vec::with_capacity(BATCH),
            sent: 0,
            unsettled: false,
            failure: None,
            issued: Vec::new(),
            last_sql: String::new(),
        })
    }

    /// Queues a statement; it is handed over with the next full batch or [`send`](Self::send).
    /// Fails when one queued before has failed (and the issuer learnt of it), or when the
    /// worker is gone.
    pub fn push(
        &mut self,
        sql: String,
        params: Vec<Literal>,
        issued: Issued,
    ) -> Result<(), Failure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let same_origin = self.issued.last().is_some_and(|(p, step, shows)| {
            *step == issued.step
                && *shows == issued.shows_params
                && p.line == issued.pos.line
                && p.col == issued.pos.col
                && Arc::ptr_eq(&p.path, &issued.pos.path)
        });
        if !same_origin {
            self.issued
                .push((issued.pos, issued.step, issued.shows_params));
        }
        let at = u32::try_from(self.issued.len() - 1).unwrap_or(u32::MAX);
        let sql = if sql == self.last_sql {
            None
        } else {
            self.last_sql.clone_from(&sql);
            Some(sql)
        };
        self.batch.push(Queued {
            sql,
            params,
            at,
            one_row: issued.one_row,
        });
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    /// Hands the statements queued so far to the worker.
    pub fn send(&mut self) -> Result<(), Failure> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let next = self.recycled();
        let batch = std::mem::replace(&mut self.batch, next);
        self.unsettled = true;
        self.sent += 1;
        match &self.jobs {
            Some(jobs) if hand_over(jobs, Job::Run(batch)) => Ok(()),
            _ => Err(self.fail(self.worker_gone())),
        }
    }

    /// An empty batch: one the worker handed back (what it held is freed here), else new.
    fn recycled(&mut self) -> Vec<Queued> {
        let mut reuse: Option<Vec<Queued>> = None;
        while let Ok(mut old) = self.spent.try_recv() {
            old.clear();
            if reuse.is_none() {
                reuse = Some(old);
            }
        }
        reuse.unwrap_or_else(|| Vec::with_capacity(BATCH))
    }

    /// Whether statements may still be running or unreported (without waiting).
    pub fn pending(&self) -> bool {
        self.failure.is_some()
            || !self.batch.is_empty()
            || (self.unsettled
                && (self.shared.finished.load(Ordering::Acquire) != self.sent
                    || self.shared.failed.load(Ordering::Acquire)))
    }

    /// The failure already reported by [`settle`](Self::settle) or [`push`](Self::push).
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Waits until every queued statement has run; the first that failed, if one did.
    pub fn settle(&mut self) -> Result<(), Failure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        self.send()?;
        if !self.unsettled {
            return Ok(());
        }
        // The worker is usually done or nearly so: watch its counter before asking it.
        let (shared, sent) = (&self.shared, self.sent);
        let caught_up = watch(SPIN, || {
            (shared.finished.load(Ordering::Acquire) == sent).then_some(())
        });
        self.unsettled = false;
        if caught_up.is_some() && !self.shared.failed.load(Ordering::Acquire) {
            self.issued.clear();
            return Ok(());
        }
        let answer = match &self.jobs {
            Some(jobs) if jobs.send(Job::Settle).is_ok() => self.done.recv().ok(),
            _ => None,
        };
        match answer {
            Some(None) => {
                // Nothing queued refers to them any more.
                self.issued.clear();
                Ok(())
            }
            Some(Some((error, params, at))) => {
                let (pos, step, shows_params) = self.origin(at);
                Err(self.fail(Failure {
                    error,
                    params,
                    shows_params,
                    pos,
                    step,
                }))
            }
            None => Err(self.fail(self.worker_gone())),
        }
    }

    fn fail(&mut self, failure: Failure) -> Failure {
        self.failure = Some(failure.clone());
        failure
    }

    fn origin(&self, at: u32) -> (SourcePos, u32, bool) {
        usize::try_from(at)
            .ok()
            .and_then(|i| self.issued.get(i))
            .or(self.issued.last())
            .cloned()
            .unwrap_or_else(|| {
                (
                    SourcePos {
                        path: Default::default(),
                        line: 1,
                        col: 1,
                    },
                    0,
                    false,
                )
            })
    }

    fn worker_gone(&self) -> Failure {
        let (pos, step, _) = self.origin(u32::MAX);
        Failure {
            error: QueuedError::Sql {
                sql: String::new(),
                message: "the thread running the queued statements stopped".into(),
                code: None,
            },
            params: Vec::new(),
            shows_params: false,
            pos,
            step,
        }
    }
}

impl Drop for Pipeline {
    /// The worker skips what is still queued (its unit is being rolled back or abandoned:
    /// every commit settles first) and stops; the connection is its owner's again.
    fn drop(&mut self) {
        self.shared.cancelled.store(true, Ordering::Release);
        self.jobs.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        if let Some(split) = self.split.take() {
            split.undo();
        }
    }
}

/// A statement parameter bound straight from its literal: text and bytes are lent to SQLite,
/// not copied (a data loop binds a key on every row). Only these kinds bind; a body's other
/// values are turned into one of them first (`eval::runner`).
pub(crate) struct Param<'a>(pub(crate) &'a Literal);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self.0 {
            Literal::None => ToSqlOutput::Borrowed(ValueRef::Null),
            Literal::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            Literal::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Literal::Float(f) => ToSqlOutput::Owned(Value::Real(*f)),
            Literal::Str(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Literal::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("unsupported parameter value {other:?}").into(),
                ))
            }
        })
    }
}

/// Whether `sql` holds no statement: only white space, comments and semicolons. SQLite
/// prepares nothing from it, which rusqlite then reports as a failure ("not an error");
/// Python's sqlite3 runs it as a statement that does nothing.
pub(crate) fn holds_no_statement(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return rest.is_empty();
        }
    }
}

/// Whether `sql` may go through rusqlite's statement cache, which prepares the text trimmed.
/// SQLite stores a CREATE TABLE that ends in table options (WITHOUT ROWID, STRICT) up to the
/// end of the text it was given, trailing new lines included, as SQLAlchemy sends them.
pub(crate) fn cacheable(sql: &str) -> bool {
    sql.trim().len() == sql.len()
}

/// Prepares `sql` (through the cache when [`cacheable`]) and runs it with `params` as
/// [`run_discarding`] does; a text with no statement changes nothing.
pub(crate) fn run_once(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[Literal],
) -> rusqlite::Result<usize> {
    if holds_no_statement(sql) {
        Ok(0)
    } else if cacheable(sql) {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| run_discarding(&mut stmt, params))
    } else {
        conn.prepare(sql)
            .and_then(|mut stmt| run_discarding(&mut stmt, params))
    }
}

/// Binds `params` and runs `stmt` to its end, dropping what it returns (the rows of a
/// `RETURNING` or a `SELECT` nobody reads); the rows it changed.
pub(crate) fn run_discarding(
    stmt: &mut rusqlite::Statement<'_>,
    params: &[Literal],
) -> rusqlite::Result<usize> {
    let values = rusqlite::params_from_iter(params.iter().map(Param));
    if stmt.column_count() == 0 {
        stmt.execute(values)
    } else {
        let mut rows = stmt.query(values)?;
        while rows.next()?.is_some() {}
        Ok(0)
    }
}

/// A statement's outcome as the queue reports it: SQLite's refusal, or (`one_row`: the
/// failure's text) another number of changed rows than one.
pub(crate) fn checked(
    ran: rusqlite::Result<usize>,
    sql: &str,
    one_row: Option<&str>,
) -> Result<(), QueuedError> {
    match ran {
        Err(e) => {
            let (message, code) = split_sqlite_error(e);
            Err(QueuedError::Sql {
                sql: sql.to_string(),
                message,
                code,
            })
        }
        Ok(n) => match one_row {
            Some(text) if n != 1 => Err(QueuedError::Command(format!("{text}{n} found"))),
            _ => Ok(()),
        },
    }
}

/// The worker: runs batches in order; after a failure it skips the rest (the issuer would
/// have stopped there) and reports the failure at every settle.
fn work(
    conn: &rusqlite::Connection,
    inbox: &Receiver<Job>,
    answer: &SyncSender<Settled>,
    recycle: &mpsc::Sender<Vec<Queued>>,
    shared: &Shared,
) {
    let mut failure: Settled = None;
    let mut sql = String::new();
    let mut prepared: Option<rusqlite::CachedStatement<'_>> = None;
    while let Some(job) = next_job(inbox) {
        match job {
            Job::Run(mut batch) => {
                for q in &mut batch {
                    if failure.is_some() || shared.cancelled.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Some(text) = &mut q.sql {
                        prepared = None;
                        // The text before goes back with the batch, to be freed by the issuer.
                        std::mem::swap(&mut sql, text);
                    }
                    let outcome = match &mut prepared {
                        Some(stmt) => run_discarding(stmt, &q.params),
                        None if holds_no_statement(&sql) || !cacheable(&sql) => {
                            run_once(conn, &sql, &q.params)
                        }
                        None => conn.prepare_cached(&sql).and_then(|mut stmt| {
                            let ran = run_discarding(&mut stmt, &q.params);
                            prepared = Some(stmt);
                            ran
                        }),
                    };
                    if let Err(error) = checked(outcome, &sql, q.one_row.as_deref()) {
                        shared.failed.store(true, Ordering::Release);
                        failure = Some((error, std::mem::take(&mut q.params), q.at));
                    }
                }
                // Handed back before the batch counts as finished, so that an issuer that has
                // settled finds it. The issuer may be gone (it dropped the pipeline): then it
                // is freed here.
                let _ = recycle.send(batch);
                shared.finished.fetch_add(1, Ordering::AcqRel);
            }
            Job::Settle => {
                if answer.send(failure.clone()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Queues a job; with the queue full, the issuer watches for a free slot for a while before
/// it sleeps on the channel. Once the issuer sleeps, the worker wakes it for every job it
/// takes: a futex wake and an interrupt to the other core, about 1.7 us of the worker's time
/// each, and the worker is the slower side whenever the queue is full (a 200-revision
/// upgrade spent 0.7 ms of its worker's 10 ms waking the issuer, 400 times). The wait for a
/// slot is the time the worker takes for one job, usually well under the watch.
fn hand_over(jobs: &SyncSender<Job>, job: Job) -> bool {
    let mut job = Some(job);
    let sent = watch(SLOT_WATCH, || match jobs.try_send(job.take()?) {
        Ok(()) => Some(true),
        Err(TrySendError::Disconnected(_)) => Some(false),
        Err(TrySendError::Full(back)) => {
            job = Some(back);
            None
        }
    });
    sent.unwrap_or_else(|| job.is_some_and(|job| jobs.send(job).is_ok()))
}

/// The next job: watched for a moment before the worker sleeps on the channel.
fn next_job(inbox: &Receiver<Job>) -> Option<Job> {
    let polled = watch(SPIN, || match inbox.try_recv() {
        Ok(job) => Some(Some(job)),
        Err(TryRecvError::Disconnected) => Some(None),
        Err(TryRecvError::Empty) => None,
    });
    polled.unwrap_or_else(|| inbox.recv().ok())
}

/// Polls `ready` until it gives an answer, for about `limit` at most; None once the watch is
/// over (the caller then sleeps). Both threads watch before they sleep, because a handoff
/// through the kernel costs more than most statements; the clock is read every 64 polls,
/// since reading it costs more than a poll.
fn watch<T>(limit: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    let mut polls = 0u32;
    loop {
        if let Some(answer) = ready() {
            return Some(answer);
        }
        polls += 1;
        if polls % 64 == 0 && started.elapsed() > limit {
            return None;
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_with_flags(
            ":memory:",
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
            .unwrap();
        conn
    }

    fn at(line: u32, step: u32) -> Issued {
        Issued {
            pos: SourcePos {
                path: Arc::new("body.py".into()),
                line,
                col: 5,
            },
            step,
            shows_params: true,
            one_row: None,
        }
    }

    fn insert(p: &mut Pipeline, id: i64, v: Literal, line: u32) -> Result<(), Failure> {
        p.push(
            "INSERT INTO t (id, v) VALUES (?, ?)".into(),
            vec![Literal::Int(id), v],
            at(line, 0),
        )
    }

    /// Hands the worker a statement that counts to `n`, to keep it busy for a while.
    fn occupy_the_worker(p: &mut Pipeline, n: u32) {
        p.push(
            format!(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
                 SELECT count(*) FROM c"
            ),
            Vec::new(),
            at(1, 0),
        )
        .unwrap();
        p.send().unwrap();
    }

    fn count_and_sum(conn: &rusqlite::Connection) -> (i64, i64) {
        conn.query_row("SELECT count(*), coalesce(sum(v), 0) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    #[test]
    fn text_of_comments_only_holds_no_statement() {
        for sql in ["", " ; ", "-- case 0", "/* a */ -- b\n;", "/* open"] {
            assert!(holds_no_statement(sql), "{sql:?}");
        }
        for sql in ["SELECT 1", "-- c\nDELETE FROM t", "/* a */ x"] {
            assert!(!holds_no_statement(sql), "{sql:?}");
        }
    }

    #[test]
    fn run_batches_come_back_to_the_issuer_with_what_they_held() {
        let conn = open();
        // SAFETY: opened NO_MUTEX above; `conn` is not used while the pipeline lives.
        let mut p = unsafe { Pipeline::start(&conn) }.unwrap();
        let n = BATCH * 2 + 3;
        for id in 0..n {
            let id = i64::try_from(id).unwrap();
            insert(&mut p, id, Literal::Str(format!("row {id}")), 10).unwrap();
        }
        p.settle().unwrap();
        let back: Vec<Vec<Queued>> = p.spent.try_iter().collect();
        assert_eq!(back.len(), 3);
        let held: Vec<&Queued> = back.iter().flatten().collect();
        assert_eq!(held.len(), n);
        // Every parameter list is still there to be freed by this thread; the one statement
        // that carried a text holds the text the worker had before it in exchange.
        assert!(held.iter().all(|q| q.params.len() == 2));
        assert_eq!(held.iter().filter(|q| q.sql.is_some()).count(), 1);
    }

    /// A full queue holds the issuer until the worker takes a job, whether the wait is short
    /// (watched) or longer than the watch (asleep on the channel): nothing is lost or
    /// reordered either way.
    #[test]
    fn a_full_queue_holds_the_issuer_until_the_worker_takes_a_job() {
        let conn = open();
        // SAFETY: opened NO_MUTEX above; `conn` is touched only after the last settle.
        let mut p = unsafe { Pipeline::start(&conn) }.unwrap();
        // Far longer than the issuer watches a full queue.
        occupy_the_worker(&mut p, 300_000);
        let jobs = i64::try_from(QUEUED_BATCHES * 4).unwrap();
        for id in 0..jobs {
            // Each its own job: the queue fills after QUEUED_BATCHES of them. A row's value is
            // the number of rows before it, its id if the rows ran in order.
            p.push(
                "INSERT INTO t (id, v) VALUES (?, (SELECT count(*) FROM t))".into(),
                vec![Literal::Int(id)],
                at(2, 0),
            )
            .unwrap();
            p.send().unwrap();
        }
        p.settle().unwrap();
        drop(p);
        assert_eq!(count_and_sum(&conn), (jobs, jobs * (jobs - 1) / 2));
        let out_of_order: i64 = conn
            .query_row("SELECT count(*) FROM t WHERE v != id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(out_of_order, 0);
    }

    #[test]
    fn statements_run_in_order_and_a_failure_stops_the_rest() {
        let conn = open();
        {
            // SAFETY: opened NO_MUTEX above; `conn` is touched only after the last settle.
            let mut p = unsafe { Pipeline::start(&conn) }.unwrap();
            for id in 0..300 {
                insert(&mut p, id, Literal::Int(id * 2), 10).unwrap();
            }
            p.push(
                "UPDATE t SET v = v + 1 WHERE id < ?".into(),
                vec![Literal::Int(100)],
                at(11, 0),
            )
            .unwrap();
            p.settle().unwrap();
            assert!(!p.pending());
            // Row 300's NULL fails; 301 is queued after it and must not run.
            insert(&mut p, 300, Literal::None, 12).unwrap();
            insert(&mut p, 301, Literal::Int(1), 13).unwrap();
            p.send().unwrap();
            assert!(p.pending(), "sent and not yet settled, or failed");
            let failure = p.settle().unwrap_err();
            assert_eq!((failure.pos.line, failure.pos.col), (12, 5));
            assert_eq!(failure.params, vec![Literal::Int(300), Literal::None]);
            match &failure.error {
                QueuedError::Sql { sql, message, .. } => {
                    assert_eq!(sql, "INSERT INTO t (id, v) VALUES (?, ?)");
                    assert_eq!(message, "NOT NULL constraint failed: t.v");
                }
                other => panic!("{other:?}"),
            }
            // From then on every call reports the same failure.
            assert_eq!(
                insert(&mut p, 302, Literal::Int(1), 14),
                Err(failure.clone())
            );
            assert_eq!(p.settle(), Err(failure.clone()));
            assert_eq!(p.failure(), Some(&failure));
            assert!(p.pending());
        }
        assert_eq!(
            count_and_sum(&conn),
            (300, (0..300).map(|i| i * 2).sum::<i64>() + 100)
        );
    }

    /// SQLite keeps a WITHOUT ROWID table's text to the end of what it was given; rusqlite's
    /// statement cache would trim it.
    #[test]
    fn table_text_is_stored_as_sent() {
        let conn = open();
        let sql = "\nCREATE TABLE w (\n\tid INTEGER NOT NULL, \n\tPRIMARY KEY (id)\n)\n WITHOUT ROWID\n\n";
        {
            // SAFETY: opened NO_MUTEX above; `conn` is touched only after the last settle.
            let mut p = unsafe { Pipeline::start(&conn) }.unwrap();
            p.push(sql.into(), Vec::new(), at(1, 0)).unwrap();
            p.settle().unwrap();
        }
        let stored: String = conn
            .query_row("SELECT sql FROM sqlite_master WHERE name = 'w'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(stored, sql.trim_start());
    }

    #[test]
    fn a_row_check_fails_with_the_count_and_names_its_step() {
        let conn = open();
        conn.execute_batch("INSERT INTO t VALUES (1, 1), (2, 2)")
            .unwrap();
        // SAFETY: as above.
        let mut p = unsafe { Pipeline::start(&conn) }.unwrap();
        let checked = |line, step| Issued {
            one_row: Some("expected one row; ".into()),
            shows_params: false,
            ..at(line, step)
        };
        p.push(
            "UPDATE t SET v = 5 WHERE id = 1".into(),
            Vec::new(),
            checked(1, 3),
        )
        .unwrap();
        p.settle().unwrap();
        p.push("CREATE TABLE u (x)".into(), Vec::new(), at(2, 4))
            .unwrap();
        p.push("UPDATE t SET v = 6".into(), Vec::new(), checked(3, 5))
            .unwrap();
        let failure = p.settle().unwrap_err();
        assert_eq!(
            failure.error,
            QueuedError::Command("expected one row; 2 found".into())
        );
        assert_eq!((failure.step, failure.pos.line), (5, 3));
        assert!(!failure.shows_params);
        drop(p);
        // The statements before it ran (the unit's rollback is its owner's to do).
        assert_eq!(count_and_sum(&conn), (2, 12));
    }

    #[test]
    fn dropping_the_pipeline_skips_what_is_still_queued() {
        let conn = open();
        {
            // SAFETY: as above.
            let mut p = unsafe { Pipeline::start(&conn) }.unwrap();
            // A slow statement first, so that the rest is still queued when the pipeline
            // is dropped.
            occupy_the_worker(&mut p, 3_000_000);
            // Ten whole batches, all sent while the worker is busy with the first.
            for id in 0..(10 * BATCH as i64) {
                insert(&mut p, id, Literal::Int(1), 2).unwrap();
            }
            assert!(p.batch.is_empty());
        }
        let (n, _) = count_and_sum(&conn);
        assert!(n < 10 * BATCH as i64, "{n} rows: the queue ran to its end");
    }

    /// A pipeline on `conn` whose worker has run a statement, the calling thread's cores
    /// before it started, and the worker's core; None where there was only one core to split.
    #[cfg(target_os = "linux")]
    fn split_pipeline(conn: &rusqlite::Connection) -> Option<(Pipeline, Vec<usize>, usize)> {
        let before = placement::of_this_thread();
        assert!(!before.is_empty(), "sched_getaffinity failed");
        // SAFETY: as in the tests above.
        let mut p = unsafe { Pipeline::start(conn) }.unwrap();
        // Once a statement has run, the worker thread has started and named itself (a new
        // thread sets its own name: looked at too early, it still has its parent's).
        insert(&mut p, 1, Literal::Int(1), 1).unwrap();
        p.settle().unwrap();
        let Some(worker) = p.split.as_ref().map(|s| s.worker_core()) else {
            assert_eq!(before.len(), 1, "{before:?}: cores to split, not split");
            return None;
        };
        Some((p, before, worker))
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_issuer_and_the_worker_keep_to_two_cores_until_the_pipeline_ends() {
        let conn = open();
        let Some((p, before, worker)) = split_pipeline(&conn) else {
            return;
        };
        let during = placement::of_this_thread();
        assert_eq!(during.len(), 1, "{during:?}");
        assert_ne!(during[0], worker);
        assert!(before.contains(&during[0]) && before.contains(&worker));
        // The worker thread holds to its core (other tests' workers may be running too).
        let pinned = std::fs::read_dir("/proc/self/task").unwrap().any(|t| {
            let t = t.unwrap().path();
            let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
            let status = std::fs::read_to_string(t.join("status")).unwrap_or_default();
            comm.trim() == "ralembic-statem"
                && status.contains(&format!("Cpus_allowed_list:\t{worker}\n"))
        });
        assert!(pinned, "no worker thread holds to core {worker}");
        drop(p);
        assert_eq!(placement::of_this_thread(), before);
    }

    /// The issuer's cores are given back when the pipeline ends, unless something else set
    /// them in the meantime: then that setting stands.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_core_set_changed_during_the_pipeline_is_left_as_it_was_set() {
        let conn = open();
        let Some((p, before, worker)) = split_pipeline(&conn) else {
            return;
        };
        // The application moves this thread to the worker's core.
        let moved = vec![worker];
        assert!(placement::set_this_thread_to(&moved));
        drop(p);
        assert_eq!(placement::of_this_thread(), moved);
        assert!(placement::set_this_thread_to(&before));
    }
}

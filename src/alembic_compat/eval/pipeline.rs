//! Statements whose results a body never reads, run on a second thread.
//!
//! A data loop (`for row in rows: conn.execute(sa.update(t).where(...).values(...))`) spends
//! about half its time in the interpreter and half in SQLite. With the statements handed to a
//! worker thread in order, the two halves overlap on two cores.
//!
//! What the body sees does not change:
//! - the statements run in the order the body ran them, in the same transaction;
//! - nothing else reaches the database or the output until the worker has run every queued
//!   statement (the host calls [`Pipeline::settle`] first);
//! - a failed statement stops the rest, and its error is raised at its own position the next
//!   time the body reaches the database or the output, or when the body ends. The interpreter
//!   only queues statements outside every `try`, so no handler could have caught it.
//!
//! Sharing the connection: SQLite is opened in multi-thread mode (`SQLITE_OPEN_NO_MUTEX`), in
//! which one connection may be used by several threads but never by two at once. The
//! worker gets its own `rusqlite::Connection` over the same handle (rusqlite does not close a
//! handle it did not open), so the two threads share no Rust state, only the SQLite handle,
//! and they take turns with it through `settle`. No Rust callback (SQL function, hook,
//! busy handler) is registered on the connection, so none can run on the worker.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::runner::{prepare_statement, run_discarding};
use super::{DetachedFailure, HostError};
use crate::alembic_compat::ops::{Literal, SourcePos};

/// Statements handed over together: one wake-up of the worker per batch, not per row.
const BATCH: usize = 64;

/// Batches queued at most before the body waits for the worker: memory stays bounded when
/// SQLite is the slower side.
const QUEUED_BATCHES: usize = 16;

struct Queued {
    /// `None`: the same text as the statement before it. A loop sends one statement over
    /// and over; the worker then keeps it prepared instead of looking it up by its text.
    sql: Option<String>,
    params: Vec<Literal>,
    /// Index into `Pipeline::positions`: the positions stay on the body's thread.
    at: u32,
}

enum Job {
    Run(Vec<Queued>),
    /// Answer on `done` once everything before it has run.
    Settle,
}

/// What the worker answers to `Job::Settle`: the statement that failed, if one did, and the
/// index of its position.
type Settled = Option<(HostError, u32)>;

pub struct Pipeline {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Settled>,
    worker: Option<JoinHandle<()>>,
    batch: Vec<Queued>,
    /// Batches sent since the last settle.
    unsettled: bool,
    /// Once a statement has failed, every later call reports it.
    failure: Option<DetachedFailure>,
    /// Where the statements queued since the last settle were run, each place once per run
    /// of statements from it.
    positions: Vec<SourcePos>,
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
        let worker = std::thread::Builder::new()
            .name("ralembic-statements".into())
            .spawn(move || {
                let handle = handle;
                // SAFETY: a connection that does not own the handle: dropping it finalizes
                // its own prepared statements and leaves the handle open.
                if let Ok(conn) = unsafe { rusqlite::Connection::from_handle(handle.0) } {
                    work(&conn, &inbox, &answer);
                }
            })
            .ok()?;
        Some(Pipeline {
            jobs: Some(jobs),
            done,
            worker: Some(worker),
            batch: Vec::with_capacity(BATCH),
            unsettled: false,
            failure: None,
            positions: Vec::new(),
            last_sql: String::new(),
        })
    }

    /// Queues a statement. Fails when one queued before has failed (and the body learnt of
    /// it), or when the worker is gone.
    pub fn push(
        &mut self,
        sql: String,
        params: Vec<Literal>,
        pos: &SourcePos,
    ) -> Result<(), DetachedFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let same_place = self.positions.last().is_some_and(|p| {
            p.line == pos.line && p.col == pos.col && std::sync::Arc::ptr_eq(&p.path, &pos.path)
        });
        if !same_place {
            self.positions.push(pos.clone());
        }
        let at = u32::try_from(self.positions.len() - 1).unwrap_or(u32::MAX);
        let sql = if sql == self.last_sql {
            None
        } else {
            self.last_sql.clone_from(&sql);
            Some(sql)
        };
        self.batch.push(Queued { sql, params, at });
        if self.batch.len() >= BATCH {
            self.send_batch()?;
        }
        Ok(())
    }

    fn send_batch(&mut self) -> Result<(), DetachedFailure> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.unsettled = true;
        match &self.jobs {
            Some(jobs) if jobs.send(Job::Run(batch)).is_ok() => Ok(()),
            _ => Err(self.fail(self.worker_gone())),
        }
    }

    /// Waits until every queued statement has run; the first that failed, if one did.
    pub fn settle(&mut self) -> Result<(), DetachedFailure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        if !self.batch.is_empty() {
            self.send_batch()?;
        }
        if !self.unsettled {
            return Ok(());
        }
        self.unsettled = false;
        let answer = match &self.jobs {
            Some(jobs) if jobs.send(Job::Settle).is_ok() => self.done.recv().ok(),
            _ => None,
        };
        match answer {
            Some(None) => {
                // Nothing queued refers to them any more.
                self.positions.clear();
                Ok(())
            }
            Some(Some((error, at))) => {
                let pos = self.position(at);
                Err(self.fail(DetachedFailure { error, pos }))
            }
            None => Err(self.fail(self.worker_gone())),
        }
    }

    fn fail(&mut self, failure: DetachedFailure) -> DetachedFailure {
        self.failure = Some(failure.clone());
        failure
    }

    fn position(&self, at: u32) -> SourcePos {
        usize::try_from(at)
            .ok()
            .and_then(|i| self.positions.get(i))
            .or(self.positions.last())
            .cloned()
            .unwrap_or_else(|| SourcePos {
                path: Default::default(),
                line: 1,
                col: 1,
            })
    }

    fn worker_gone(&self) -> DetachedFailure {
        DetachedFailure {
            error: HostError {
                class: "RuntimeError".into(),
                message: "the thread running the body's statements stopped".into(),
            },
            pos: self.position(u32::MAX),
        }
    }
}

impl Drop for Pipeline {
    /// The worker finishes what is queued and stops; the connection is its owner's again.
    fn drop(&mut self) {
        if let Some(jobs) = self.jobs.take() {
            if !self.batch.is_empty() {
                let _ = jobs.send(Job::Run(std::mem::take(&mut self.batch)));
            }
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The worker: runs batches in order; after a failure it skips the rest (the body would have
/// stopped there) and reports the failure at every settle.
fn work(conn: &rusqlite::Connection, inbox: &Receiver<Job>, answer: &SyncSender<Settled>) {
    let mut failure: Settled = None;
    let mut sql = String::new();
    let mut prepared: Option<rusqlite::CachedStatement<'_>> = None;
    for job in inbox {
        match job {
            Job::Run(batch) => {
                for q in batch {
                    if failure.is_some() {
                        break;
                    }
                    if let Some(text) = q.sql {
                        prepared = None;
                        sql = text;
                    }
                    let outcome = match &mut prepared {
                        Some(stmt) => run_discarding(stmt, &sql, &q.params),
                        None => prepare_statement(conn, &sql, &q.params).and_then(|mut stmt| {
                            let ran = run_discarding(&mut stmt, &sql, &q.params);
                            prepared = Some(stmt);
                            ran
                        }),
                    };
                    if let Err(error) = outcome {
                        failure = Some((error, q.at));
                    }
                }
            }
            Job::Settle => {
                if answer.send(failure.clone()).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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

    fn at(line: u32) -> SourcePos {
        SourcePos {
            path: Arc::new("body.py".into()),
            line,
            col: 5,
        }
    }

    fn insert(p: &mut Pipeline, id: i64, v: Literal, line: u32) -> Result<(), DetachedFailure> {
        p.push(
            "INSERT INTO t (id, v) VALUES (?, ?)".into(),
            vec![Literal::Int(id), v],
            &at(line),
        )
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
                &at(11),
            )
            .unwrap();
            p.settle().unwrap();
            // Row 300's NULL fails; 301 is queued after it and must not run.
            insert(&mut p, 300, Literal::None, 12).unwrap();
            insert(&mut p, 301, Literal::Int(1), 13).unwrap();
            let failure = p.settle().unwrap_err();
            assert_eq!((failure.pos.line, failure.pos.col), (12, 5));
            assert_eq!(failure.error.class, "sqlalchemy.exc.IntegrityError");
            assert!(
                failure
                    .error
                    .message
                    .starts_with("(sqlite3.IntegrityError) NOT NULL constraint failed: t.v"),
                "{}",
                failure.error.message
            );
            // From then on every call reports the same failure.
            assert_eq!(
                insert(&mut p, 302, Literal::Int(1), 14),
                Err(failure.clone())
            );
            assert_eq!(p.settle(), Err(failure));
        }
        let (n, sum): (i64, i64) = conn
            .query_row("SELECT count(*), sum(v) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, sum), (300, (0..300).map(|i| i * 2).sum::<i64>() + 100));
    }
}

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
//! and they take turns with it through `settle`.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::runner::execute_discarding;
use super::{DetachedFailure, HostError};
use crate::alembic_compat::ops::{Literal, SourcePos};

/// Statements handed over together: one wake-up of the worker per batch, not per row.
const BATCH: usize = 64;

/// Batches queued at most before the body waits for the worker: memory stays bounded when
/// SQLite is the slower side.
const QUEUED_BATCHES: usize = 16;

struct Queued {
    sql: String,
    params: Vec<Literal>,
    pos: SourcePos,
}

enum Job {
    Run(Vec<Queued>),
    /// Answer on `done` once everything before it has run.
    Settle,
}

/// What the worker answers to `Job::Settle`: the statement that failed, if one did.
type Settled = Option<DetachedFailure>;

pub struct Pipeline {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Settled>,
    worker: Option<JoinHandle<()>>,
    batch: Vec<Queued>,
    /// Batches sent since the last settle.
    unsettled: bool,
    /// Once a statement has failed, every later call reports it.
    failure: Option<DetachedFailure>,
    /// Where the last statement was queued: for the error if the worker itself is gone.
    last_pos: Option<SourcePos>,
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
            last_pos: None,
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
        self.batch.push(Queued {
            sql,
            params,
            pos: pos.clone(),
        });
        self.last_pos = Some(pos.clone());
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
            Some(None) => Ok(()),
            Some(Some(failure)) => Err(self.fail(failure)),
            None => Err(self.fail(self.worker_gone())),
        }
    }

    fn fail(&mut self, failure: DetachedFailure) -> DetachedFailure {
        self.failure = Some(failure.clone());
        failure
    }

    fn worker_gone(&self) -> DetachedFailure {
        DetachedFailure {
            error: HostError {
                class: "RuntimeError".into(),
                message: "the thread running the body's statements stopped".into(),
            },
            pos: self.last_pos.clone().unwrap_or_else(|| SourcePos {
                path: Default::default(),
                line: 1,
                col: 1,
            }),
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
    for job in inbox {
        match job {
            Job::Run(batch) => {
                for q in batch {
                    if failure.is_some() {
                        break;
                    }
                    if let Err(error) = execute_discarding(conn, &q.sql, &q.params) {
                        failure = Some(DetachedFailure::new(error, &q.pos));
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

//! `ralembic`: a drop-in for Python Alembic's `alembic` command line.
use meshview::alembic_compat::command::cli;

// A run makes and frees many small objects (the revision map, the interpreter's values) on
// two threads; glibc's malloc spends a third of a 10,000-revision `heads` in the allocator
// and the kernel, mimalloc about half as much.
#[global_allocator]
static GLOBAL: meshview::allocator::Allocator = meshview::allocator::Allocator;

// mimalloc's `mi_option_t` for `purge_delay` (mimalloc.h; the same index in v2 and v3).
// libmimalloc-sys declares `mi_option_set` only behind its `extended` feature, without this
// option, so the two declarations are ours; a test checks the index against the default.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_usable_size(p: *const std::ffi::c_void) -> usize;
    fn mi_good_size(size: usize) -> usize;
}

/// SQLite's own allocations go through mimalloc instead of glibc's malloc. SQLite allocates
/// for every statement it parses and for the schema it re-reads after each `ALTER`, and
/// glibc's malloc and free were a twentieth of a 200-revision upgrade. False when SQLite was
/// already initialized and keeps its own allocator (slower, not wrong).
fn sqlite_allocates_with_mimalloc() -> bool {
    use meshview::allocator::{mi_free, mi_malloc, mi_realloc};
    use rusqlite::ffi;
    use std::ffi::{c_int, c_void};
    fn size_of_request(n: c_int) -> usize {
        usize::try_from(n).unwrap_or(0)
    }
    fn as_c_int(n: usize) -> c_int {
        c_int::try_from(n).unwrap_or(c_int::MAX)
    }
    unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
        mi_malloc(size_of_request(n))
    }
    unsafe extern "C" fn x_free(p: *mut c_void) {
        mi_free(p)
    }
    unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
        mi_realloc(p, size_of_request(n))
    }
    unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
        as_c_int(mi_usable_size(p))
    }
    unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
        as_c_int(mi_good_size(size_of_request(n)))
    }
    unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    unsafe extern "C" fn x_shutdown(_: *mut c_void) {}
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: called before any connection is opened (SQLite is not initialized yet); SQLite
    // copies the methods before returning, and every function above is thread-safe.
    let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) };
    rc == ffi::SQLITE_OK
}

fn main() {
    // A command is one short process: memory mimalloc frees is worth keeping until exit, not
    // handing back to the OS a second later. A data migration frees each row's objects as it
    // goes, and with purging on it spent a twentieth of its time in the kernel re-zeroing the
    // pages it had given back (100,000 rows: 2.44 -> 2.20 s, median of 8 interleaved runs).
    // SAFETY: sets a process-wide allocator option; mimalloc reads it at each purge decision.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let _ = sqlite_allocates_with_mimalloc();
    let mut args = std::env::args_os();
    let prog = cli::prog_name(args.next().as_ref(), "ralembic");
    cli::exit_follows_run();
    let code = cli::run_process(&prog, args.collect());
    leave(code);
}

/// Ends the process once the command is done and its output flushed, without the allocator's
/// exit-time purge: mimalloc hands freed memory back to the OS one `madvise` at a time (about
/// 1 ms on a 10-revision command, 10 ms on 10,000 revisions) just before the kernel drops the
/// whole address space anyway. Nothing else registers exit handlers; every database
/// connection and thread has been closed by now.
#[cfg(unix)]
fn leave(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` only ends the process; the streams were flushed above.
    unsafe { libc::_exit(code) }
}

#[cfg(not(unix))]
fn leave(code: i32) -> ! {
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_runs_on_mimalloc() {
        // The only test in this binary that touches SQLite, so it is not initialized yet.
        assert!(sqlite_allocates_with_mimalloc());
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch(
            "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO t (b) SELECT printf('%0100d', i) FROM n;
             CREATE INDEX ix_t_b ON t (b);
             ALTER TABLE t ADD COLUMN c INTEGER;",
        )
        .expect("SQL runs with SQLite's memory from mimalloc");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t WHERE b > '0'", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 5000);
        // SQLite's own allocator functions hand out and measure mimalloc's blocks.
        // SAFETY: a block SQLite allocates, measured and freed once.
        unsafe {
            let p = rusqlite::ffi::sqlite3_malloc(100);
            assert!(!p.is_null());
            let size = usize::try_from(rusqlite::ffi::sqlite3_msize(p)).unwrap_or(0);
            assert_eq!(size, mi_usable_size(p));
            assert_eq!(size, mi_good_size(100));
            rusqlite::ffi::sqlite3_free(p);
        }
    }

    #[test]
    fn the_purge_delay_option_index_is_mimallocs() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads an allocator option.
        let default = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
        // 1000 ms in mimalloc v3, 10 ms in v2; no neighbouring option has either default.
        assert!(
            default == 1000 || default == 10,
            "option {MI_OPTION_PURGE_DELAY} is not purge_delay (default {default})"
        );
    }
}

//! `ralembic`: a drop-in for Python Alembic's `alembic` command line.
use meshview::alembic_compat::command::cli;

// A run makes and frees many small objects (the revision map, the interpreter's values) on
// two threads; glibc's malloc spends a third of a 10,000-revision `heads` in the allocator
// and the kernel, mimalloc about half as much.
#[global_allocator]
static GLOBAL: meshview::allocator::Allocator = meshview::allocator::Allocator;

// A short command's heap in a small first arena, in 4 KiB pages for the commands that write
// the database (see `allocator::reserve_small_arenas`).
meshview::reserve_small_arenas_before_main!();

fn main() {
    meshview::allocator::keep_freed_memory();
    let _ = meshview::allocator::sqlite_allocates_with_mimalloc();
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
    use meshview::allocator::{
        mi_good_size, mi_option_get, mi_usable_size, sqlite_allocates_with_mimalloc,
    };

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

    #[cfg(target_os = "linux")]
    #[test]
    fn the_small_arena_reservation_runs_before_main() {
        // This test binary is built from this file, constructor included.
        // SAFETY: reads an allocator option.
        let reserve = unsafe { mi_option_get(meshview::allocator::MI_OPTION_ARENA_RESERVE) };
        assert_eq!(reserve, meshview::allocator::SMALL_ARENA_RESERVE_KIB);
    }
}

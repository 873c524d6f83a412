//! `ralembic`: a drop-in for Python Alembic's `alembic` command line.
use meshview::alembic_compat::command::cli;

// A run makes and frees many small objects (the revision map, the interpreter's values) on
// two threads; glibc's malloc spends a third of a 10,000-revision `heads` in the allocator
// and the kernel, mimalloc about half as much.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's `mi_option_t` for `purge_delay` (mimalloc.h; the same index in v2 and v3).
// libmimalloc-sys declares `mi_option_set` only behind its `extended` feature, without this
// option, so the two declarations are ours; a test checks the index against the default.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

fn main() {
    // A command is one short process: memory mimalloc frees is worth keeping until exit, not
    // handing back to the OS a second later. A data migration frees each row's objects as it
    // goes, and with purging on it spent a twentieth of its time in the kernel re-zeroing the
    // pages it had given back (100,000 rows: 2.44 -> 2.20 s, median of 8 interleaved runs).
    // SAFETY: sets a process-wide allocator option; mimalloc reads it at each purge decision.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
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

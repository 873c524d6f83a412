//! `ralembic`: a drop-in for Python Alembic's `alembic` command line.
use meshview::alembic_compat::command::cli;

// A run makes and frees many small objects (the revision map, the interpreter's values) on
// two threads; glibc's malloc spends a third of a 10,000-revision `heads` in the allocator
// and the kernel, mimalloc about half as much.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
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

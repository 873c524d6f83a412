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
    let code = cli::run_process(&prog, args.collect());
    std::process::exit(code);
}

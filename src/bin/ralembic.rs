//! `ralembic`: a drop-in for Python Alembic's `alembic` command line.
use meshview::alembic_compat::command::cli;

fn main() {
    let mut args = std::env::args_os();
    let prog = cli::prog_name(args.next().as_ref(), "ralembic");
    let code = cli::run_process(&prog, args.collect());
    std::process::exit(code);
}

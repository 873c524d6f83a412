//! `meshview`: the MeshView applications; `meshview alembic <verb> ...` is the same command
//! line as `ralembic`.
use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};
use meshview::alembic_compat::command::cli;

// Same allocator as `ralembic`, for the same reason (see src/bin/ralembic.rs).
#[global_allocator]
static GLOBAL: meshview::allocator::Allocator = meshview::allocator::Allocator;

#[derive(Parser, Debug)]
#[command(name = "meshview", about = "MeshView: Meshtastic network viewer")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Alembic-compatible migration commands (same as `ralembic`)
    #[command(disable_help_flag = true)]
    Alembic {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Collect packets into the database (not implemented yet)
    Writer {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Serve the web UI (not implemented yet)
    Web {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() {
    // Before any connection is opened, as in `ralembic`. Its small first arena is not set
    // here: the writer and the web server are long-lived and grow large heaps.
    let _ = meshview::allocator::sqlite_allocates_with_mimalloc();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let prog = cli::prog_name(argv.first(), "meshview");
    let code = match Args::parse_from(&argv).command {
        Command::Alembic { args } => {
            // A short command, as `ralembic` is; the writer and the web server are not.
            meshview::allocator::keep_freed_memory();
            cli::exit_follows_run();
            cli::run_process(&format!("{prog} alembic"), args)
        }
        Command::Writer { .. } | Command::Web { .. } => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "FAILED: not implemented yet");
            let _ = out.flush();
            cli::exit::COMMAND
        }
    };
    std::process::exit(code);
}

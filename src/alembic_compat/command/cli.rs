//! The `alembic` command line (Alembic 1.20.1's `CommandLine`), shared by the `ralembic` binary
//! and `meshview alembic`: the same global flags and verbs, argparse-style usage errors
//! (exit 2, usage on stderr), `FAILED: <msg>` on stdout with exit 255 for a `CommandError`,
//! exit 1 for what would be a Python traceback (and for any error under `--raiseerr`).
//!
//! Our extensions: `--url URL` replaces `sqlalchemy.url`; `revision --autogenerate` and `check`
//! take the target schema from `--target-sql FILE` or `--target-url URL`.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

use super::autogen::{self, Target};
use super::{generate, migrate, Ctx, Failure, ScriptDirectory};
use crate::alembic_compat::config::{Config, ConfigOptions};
use crate::alembic_compat::revision::RevArg;

/// The Alembic version whose behaviour we reproduce (`--version` prints it).
pub const ALEMBIC_VERSION: &str = "1.20.1";

/// Alembic-compatible migrations: a drop-in for Python Alembic 1.20.1's `alembic` command.
#[derive(Parser, Debug)]
#[command(
    name = "alembic",
    disable_version_flag = true,
    args_override_self = true,
    infer_long_args = true
)]
pub struct Cli {
    /// show program's version number and exit
    #[arg(long, action = ArgAction::SetTrue)]
    pub version: bool,
    /// Alternate config file; defaults to value of ALEMBIC_CONFIG environment variable, or
    /// "alembic.ini". May also refer to pyproject.toml file. May be specified twice to
    /// reference both files separately
    #[arg(short = 'c', long = "config", action = ArgAction::Append, value_name = "CONFIG")]
    pub config: Vec<String>,
    /// Name of section in .ini file to use for Alembic config (only applies to configparser
    /// config, not toml)
    #[arg(
        short = 'n',
        long = "name",
        default_value = "alembic",
        value_name = "NAME"
    )]
    pub name: String,
    /// Additional arguments consumed by custom env.py scripts, e.g. -x setting1=somesetting
    /// -x setting2=somesetting
    #[arg(short = 'x', action = ArgAction::Append, value_name = "X")]
    pub x: Vec<String>,
    /// Raise a full stack trace on error
    #[arg(long)]
    pub raiseerr: bool,
    /// Do not log to std output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Database URL to use instead of sqlalchemy.url (ralembic extension)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    #[command(subcommand)]
    pub verb: Option<Verb>,
}

/// Alembic's verbs (all of them, so `--help` lists them; the unimplemented ones fail cleanly).
#[derive(Subcommand, Debug)]
pub enum Verb {
    /// ralembic's own: which revisions run natively, by SQL override, or not at all.
    Compat {
        /// List every refused place, not just the first of each revision
        #[arg(short, long)]
        verbose: bool,
    },
    /// Show current branch points.
    Branches {
        /// Use more verbose output
        #[arg(short, long)]
        verbose: bool,
    },
    /// Check if revision command with autogenerate has pending upgrade ops.
    Check {
        /// Target schema as SQL statements (ralembic extension)
        #[arg(long, value_name = "FILE")]
        target_sql: Option<String>,
        /// Target schema from another SQLite database (ralembic extension; --target-sql wins
        /// when both are given)
        #[arg(long, value_name = "URL")]
        target_url: Option<String>,
    },
    /// Display the current revision for a database.
    Current {
        /// Check if all head revisions are applied to the database. Exit with an error code if
        /// this is not the case.
        #[arg(short = 'c', long)]
        check_heads: bool,
        /// Use more verbose output
        #[arg(short, long)]
        verbose: bool,
    },
    /// Revert to a previous version.
    Downgrade {
        /// Don't emit SQL to database - dump to standard output/file instead. See docs on
        /// offline mode.
        #[arg(long)]
        sql: bool,
        /// Arbitrary 'tag' name - can be used by custom env.py scripts.
        #[arg(long)]
        tag: Option<String>,
        /// revision identifier
        #[arg(allow_negative_numbers = true)]
        revision: String,
    },
    /// Edit revision script(s) using $EDITOR.
    Edit { rev: String },
    /// Create the alembic version table if it doesn't exist already .
    #[command(name = "ensure_version")]
    EnsureVersion {
        /// Don't emit SQL to database - dump to standard output/file instead. See docs on
        /// offline mode.
        #[arg(long)]
        sql: bool,
    },
    /// Show current available heads in the script directory.
    Heads {
        /// Use more verbose output
        #[arg(short, long)]
        verbose: bool,
        /// Treat dependency versions as down revisions
        #[arg(long)]
        resolve_dependencies: bool,
    },
    /// List changeset scripts in chronological order.
    History {
        /// Specify a revision range; format is [start]:[end]
        #[arg(short = 'r', long, value_name = "REV_RANGE")]
        rev_range: Option<String>,
        /// Use more verbose output
        #[arg(short, long)]
        verbose: bool,
        /// Indicate the current revision
        #[arg(short = 'i', long)]
        indicate_current: bool,
    },
    /// Initialize a new scripts directory.
    Init {
        /// Setup template for use with 'init'
        #[arg(short = 't', long, default_value = "generic")]
        template: String,
        /// Write empty __init__.py files to the environment and version locations
        #[arg(long)]
        package: bool,
        /// location of scripts directory
        directory: String,
    },
    /// List available templates.
    #[command(name = "list_templates")]
    ListTemplates,
    /// Merge two revisions together. Creates a new migration file.
    Merge {
        /// Message string to use with 'revision'
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// Specify a branch label to apply to the new revision
        #[arg(long)]
        branch_label: Option<String>,
        /// Specify a hardcoded revision id instead of generating one
        #[arg(long)]
        rev_id: Option<String>,
        /// Allow a non-head revision as the 'head' to splice onto
        #[arg(long)]
        splice: bool,
        /// one or more revisions, or 'heads' for all heads
        #[arg(required = true, num_args = 1..)]
        revisions: Vec<String>,
    },
    /// Create a new revision file.
    Revision {
        /// Message string to use with 'revision'
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// Populate revision script with candidate migration operations, based on comparison
        /// of database to model.
        #[arg(long)]
        autogenerate: bool,
        /// Don't emit SQL to database - dump to standard output/file instead. See docs on
        /// offline mode.
        #[arg(long)]
        sql: bool,
        /// Specify head revision or <branchname>@head to base new revision on.
        #[arg(long)]
        head: Option<String>,
        /// Allow a non-head revision as the 'head' to splice onto
        #[arg(long)]
        splice: bool,
        /// Specify a branch label to apply to the new revision
        #[arg(long)]
        branch_label: Option<String>,
        /// Specify specific path from config for version file
        #[arg(long)]
        version_path: Option<String>,
        /// Specify a hardcoded revision id instead of generating one
        #[arg(long)]
        rev_id: Option<String>,
        /// Specify one or more revision identifiers which this revision should depend on.
        #[arg(long, action = ArgAction::Append)]
        depends_on: Vec<String>,
        /// With --autogenerate: the target schema as SQL statements (ralembic extension)
        #[arg(long, value_name = "FILE", requires = "autogenerate")]
        target_sql: Option<String>,
        /// With --autogenerate: the target schema from another SQLite database (ralembic
        /// extension; --target-sql wins when both are given)
        #[arg(long, value_name = "URL", requires = "autogenerate")]
        target_url: Option<String>,
    },
    /// Show the revision(s) denoted by the given symbol.
    Show { rev: String },
    /// 'stamp' the revision table with the given revision; don't run any migrations.
    Stamp {
        /// Don't emit SQL to database - dump to standard output/file instead. See docs on
        /// offline mode.
        #[arg(long)]
        sql: bool,
        /// Arbitrary 'tag' name - can be used by custom env.py scripts.
        #[arg(long)]
        tag: Option<String>,
        /// Unconditionally erase the version table before stamping
        #[arg(long)]
        purge: bool,
        /// one or more revisions, or 'heads' for all heads
        #[arg(required = true, num_args = 1.., allow_negative_numbers = true)]
        revisions: Vec<String>,
    },
    /// Upgrade to a later version.
    Upgrade {
        /// Don't emit SQL to database - dump to standard output/file instead. See docs on
        /// offline mode.
        #[arg(long)]
        sql: bool,
        /// Arbitrary 'tag' name - can be used by custom env.py scripts.
        #[arg(long)]
        tag: Option<String>,
        /// revision identifier
        #[arg(allow_negative_numbers = true)]
        revision: String,
    },
}

impl Verb {
    /// The verb as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Branches { .. } => "branches",
            Verb::Compat { .. } => "compat",
            Verb::Check { .. } => "check",
            Verb::Current { .. } => "current",
            Verb::Downgrade { .. } => "downgrade",
            Verb::Edit { .. } => "edit",
            Verb::EnsureVersion { .. } => "ensure_version",
            Verb::Heads { .. } => "heads",
            Verb::History { .. } => "history",
            Verb::Init { .. } => "init",
            Verb::ListTemplates => "list_templates",
            Verb::Merge { .. } => "merge",
            Verb::Revision { .. } => "revision",
            Verb::Show { .. } => "show",
            Verb::Stamp { .. } => "stamp",
            Verb::Upgrade { .. } => "upgrade",
        }
    }
}

/// argparse's usage text of each verb (after `usage: PROG VERB `), for usage errors.
const VERB_USAGE: &[(&str, &str)] = &[
    ("branches", "[-h] [-v]"),
    ("check", "[-h]"),
    ("compat", "[-h] [-v]"),
    ("current", "[-h] [-c] [-v]"),
    ("downgrade", "[-h] [--sql] [--tag TAG] revision"),
    ("edit", "[-h] rev"),
    ("ensure_version", "[-h] [--sql]"),
    ("heads", "[-h] [-v] [--resolve-dependencies]"),
    ("history", "[-h] [-r REV_RANGE] [-v] [-i]"),
    ("init", "[-h] [-t TEMPLATE] [--package] directory"),
    ("list_templates", "[-h]"),
    (
        "merge",
        "[-h] [-m MESSAGE] [--branch-label BRANCH_LABEL] [--rev-id REV_ID] [--splice] revisions [revisions ...]",
    ),
    (
        "revision",
        "[-h] [-m MESSAGE] [--autogenerate] [--sql] [--head HEAD] [--splice] [--branch-label BRANCH_LABEL] [--version-path VERSION_PATH] [--rev-id REV_ID] [--depends-on DEPENDS_ON]",
    ),
    ("show", "[-h] rev"),
    ("stamp", "[-h] [--sql] [--tag TAG] [--purge] revisions [revisions ...]"),
    ("upgrade", "[-h] [--sql] [--tag TAG] revision"),
];

/// argparse's display of an option (`-r/--rev-range`), by clap's long name or short.
const OPTION_DISPLAY: &[(&str, &str)] = &[
    ("config", "-c/--config"),
    ("name", "-n/--name"),
    ("x", "-x"),
    ("url", "--url"),
    ("rev-range", "-r/--rev-range"),
    ("tag", "--tag"),
    ("template", "-t/--template"),
    ("message", "-m/--message"),
    ("branch-label", "--branch-label"),
    ("rev-id", "--rev-id"),
    ("head", "--head"),
    ("version-path", "--version-path"),
    ("depends-on", "--depends-on"),
    ("target-sql", "--target-sql"),
    ("target-url", "--target-url"),
];

const GLOBAL_WITH_VALUE: &[&str] = &["-c", "--config", "-n", "--name", "-x", "--url"];

fn verbs_braced() -> String {
    let names: Vec<&str> = VERB_USAGE.iter().map(|(v, _)| *v).collect();
    format!("{{{}}}", names.join(","))
}

fn top_usage(prog: &str) -> String {
    let indent = " ".repeat("usage: ".len() + prog.len() + 1);
    format!(
        "usage: {prog} [-h] [--version] [-c CONFIG] [-n NAME] [-x X] [--raiseerr] [-q] [--url URL]\n{indent}{}\n{indent}...\n",
        verbs_braced()
    )
}

/// The verb the user typed, found the way argparse does: the first positional argument after
/// the global options.
fn typed_verb(args: &[OsString]) -> Option<&'static str> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if GLOBAL_WITH_VALUE.contains(&a.as_ref()) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        return VERB_USAGE.iter().find(|(v, _)| *v == a).map(|(v, _)| *v);
    }
    None
}

fn context_str(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(" ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        other => Some(other.to_string()),
    }
}

/// Renders a clap error as argparse would: `(usage, "PROG[ VERB]: error: MESSAGE")`.
fn argparse_error(prog: &str, args: &[OsString], err: &clap::Error) -> String {
    let verb = typed_verb(args);
    let verb_usage = |v: &str| {
        let u = VERB_USAGE
            .iter()
            .find(|(n, _)| *n == v)
            .map_or("[-h]", |(_, u)| *u);
        (format!("usage: {prog} {v} {u}\n"), format!("{prog} {v}"))
    };
    let top = || (top_usage(prog), prog.to_string());
    let invalid_arg = context_str(err, ContextKind::InvalidArg).unwrap_or_default();
    let ((usage, who), message) = match err.kind() {
        ErrorKind::InvalidSubcommand => {
            let bad = context_str(err, ContextKind::InvalidSubcommand).unwrap_or_default();
            let choices: Vec<String> = VERB_USAGE.iter().map(|(v, _)| format!("'{v}'")).collect();
            (
                top(),
                format!(
                    "argument {}: invalid choice: '{bad}' (choose from {})",
                    verbs_braced(),
                    choices.join(", ")
                ),
            )
        }
        ErrorKind::UnknownArgument => (top(), format!("unrecognized arguments: {invalid_arg}")),
        ErrorKind::MissingRequiredArgument => {
            let names: Vec<String> = invalid_arg
                .split_whitespace()
                .map(|n| {
                    n.trim_matches(|c| c == '<' || c == '>' || c == '.')
                        .to_lowercase()
                })
                .collect();
            let parser = verb.map_or_else(top, verb_usage);
            (
                parser,
                format!("the following arguments are required: {}", names.join(", ")),
            )
        }
        ErrorKind::InvalidValue
        | ErrorKind::NoEquals
        | ErrorKind::WrongNumberOfValues
        | ErrorKind::TooFewValues => {
            let long = invalid_arg
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_start_matches('-')
                .to_string();
            let shown = OPTION_DISPLAY
                .iter()
                .find(|(l, _)| *l == long)
                .map_or_else(|| format!("--{long}"), |(_, d)| d.to_string());
            let is_global = matches!(long.as_str(), "config" | "name" | "x" | "url");
            let parser = match verb {
                Some(v) if !is_global => verb_usage(v),
                _ => top(),
            };
            (parser, format!("argument {shown}: expected one argument"))
        }
        _ => {
            let text = err.kind().as_str().map(str::to_string).unwrap_or_else(|| {
                err.to_string()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .to_string()
            });
            (verb.map_or_else(top, verb_usage), text)
        }
    };
    format!("{usage}{who}: error: {message}\n")
}

fn command() -> clap::Command {
    Cli::command().mut_subcommands(|c| c.args_override_self(true).infer_long_args(true))
}

/// Process-level facts the CLI reads (explicit so tests need no global state).
#[derive(Debug, Clone)]
pub struct Environment {
    pub cwd: PathBuf,
    /// `$ALEMBIC_CONFIG`.
    pub alembic_config: Option<String>,
}

impl Environment {
    pub fn from_process() -> Self {
        Environment {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            alembic_config: std::env::var("ALEMBIC_CONFIG").ok(),
        }
    }
}

/// Exit codes, as the Python CLI produces them.
pub mod exit {
    pub const OK: i32 = 0;
    /// A Python exception (traceback), or any error under `--raiseerr`.
    pub const PYTHON: i32 = 1;
    /// argparse usage error.
    pub const USAGE: i32 = 2;
    /// `CommandError` (`sys.exit(-1)`).
    pub const COMMAND: i32 = 255;
}

fn report_python(err: &mut dyn Write, lines: &[String]) {
    let _ = writeln!(
        err,
        "Traceback (most recent call last):\n  (ralembic has no Python stack to show)"
    );
    for l in lines {
        let _ = writeln!(err, "{l}");
    }
}

/// Runs the Alembic command line. `prog` is what usage messages call the program; `args`
/// excludes the program name. Returns the exit code.
pub fn run(
    prog: &str,
    args: Vec<OsString>,
    env: &Environment,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let matches = command()
        .try_get_matches_from(std::iter::once(OsString::from(prog)).chain(args.iter().cloned()));
    let cli = match matches.and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(c) => c,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let text = e
                        .render()
                        .to_string()
                        .replace("Usage: alembic", &format!("Usage: {prog}"));
                    let _ = out.write_all(text.as_bytes());
                    exit::OK
                }
                _ => {
                    let _ = err.write_all(argparse_error(prog, &args, &e).as_bytes());
                    exit::USAGE
                }
            };
        }
    };
    if cli.version {
        // Byte-compatible with `alembic --version` (stdout is compared verbatim by users'
        // scripts), whatever our binary is called.
        let _ = writeln!(out, "alembic {ALEMBIC_VERSION}");
        return exit::OK;
    }
    let Some(verb) = cli.verb else {
        let _ = writeln!(err, "{}{prog}: error: too few arguments", top_usage(prog));
        return exit::USAGE;
    };
    // CommandLine.main: file selection happens outside run_cmd, so its CommandError is a
    // traceback (exit 1), not `FAILED:`.
    let opts = match ConfigOptions::from_cli(
        &cli.config,
        Some(&cli.name),
        cli.x.clone(),
        env.alembic_config.as_deref(),
        env.cwd.clone(),
    ) {
        Ok(o) => o,
        Err(e) => {
            report_python(err, &[format!("alembic.util.exc.CommandError: {e}")]);
            return exit::PYTHON;
        }
    };
    let mut ctx = Ctx::new(out, err, cli.quiet);
    ctx.url_override = cli.url.clone();
    ctx.raiseerr = cli.raiseerr;
    let result = Config::load(opts)
        .map_err(|e| super::config_failure(&e))
        .and_then(|config| dispatch(config, &verb, &mut ctx));
    match result {
        Ok(()) => exit::OK,
        Err(Failure::Command(msg)) if cli.raiseerr => {
            report_python(ctx.err, &[format!("alembic.util.exc.CommandError: {msg}")]);
            exit::PYTHON
        }
        Err(Failure::Command(msg)) => {
            ctx.print(&format!("FAILED: {msg}"));
            exit::COMMAND
        }
        Err(Failure::Python { lines }) => {
            report_python(ctx.err, &lines);
            exit::PYTHON
        }
        Err(Failure::Quiet(code)) => i32::from(code),
    }
}

fn dispatch(config: Config, verb: &Verb, ctx: &mut Ctx) -> Result<(), Failure> {
    // Verbs that need no script directory.
    match verb {
        Verb::Init {
            template,
            package,
            directory,
        } => return generate::init(&config, ctx, directory, template, *package),
        Verb::ListTemplates => return generate::list_templates(ctx),
        _ => {}
    }
    let implemented = matches!(
        verb,
        Verb::Heads { .. }
            | Verb::Branches { .. }
            | Verb::History { .. }
            | Verb::Show { .. }
            | Verb::Current { .. }
            | Verb::Upgrade { .. }
            | Verb::Downgrade { .. }
            | Verb::Stamp { .. }
            | Verb::Compat { .. }
            | Verb::Revision { .. }
            | Verb::Merge { .. }
            | Verb::Check { .. }
    );
    if !implemented {
        return Err(Failure::Command(format!(
            "'{}' is not implemented in ralembic yet",
            verb.name()
        )));
    }
    let sd = ScriptDirectory::from_config(config)?;
    let result = run_verb(&sd, verb, ctx);
    if PROCESS_ENDS_AFTER_RUN.load(std::sync::atomic::Ordering::Relaxed) {
        // The process exits next: freeing every revision of a large history one by one is
        // time the user waits for (about 2 ms on 10,000 revisions), the kernel frees it anyway.
        std::mem::forget(sd);
    }
    result
}

/// Set by [`exit_follows_run`]: nothing runs after the command but the process's exit.
static PROCESS_ENDS_AFTER_RUN: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Declares that the process exits as soon as the command returns, so its large structures
/// (the revision map) are left to the kernel instead of freed one by one. Only for a binary
/// whose whole job is the one command: a caller that goes on afterwards (a writer that
/// migrates and then ingests) must not call it, or that memory stays with it.
pub fn exit_follows_run() {
    PROCESS_ENDS_AFTER_RUN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Runs a migration command with the command line's body runner, which holds every revision
/// body it parsed. When the process exits next it is left to the kernel, like the revision
/// map: dropping the syntax trees was 2% of a 200-revision upgrade's instructions.
fn with_runner(
    command: impl FnOnce(&dyn crate::alembic_compat::runtime::BodyRunner) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let runner = migrate::default_runner();
    let result = command(runner.as_ref());
    if PROCESS_ENDS_AFTER_RUN.load(std::sync::atomic::Ordering::Relaxed) {
        std::mem::forget(runner);
    }
    result
}

fn run_verb(sd: &ScriptDirectory, verb: &Verb, ctx: &mut Ctx) -> Result<(), Failure> {
    match verb {
        Verb::Heads {
            verbose,
            resolve_dependencies,
        } => super::heads(sd, ctx, *verbose, *resolve_dependencies),
        Verb::Branches { verbose } => super::branches(sd, ctx, *verbose),
        Verb::History {
            rev_range,
            verbose,
            indicate_current,
        } => super::history(sd, ctx, rev_range.as_deref(), *verbose, *indicate_current),
        Verb::Show { rev } => super::show(sd, ctx, rev),
        Verb::Compat { verbose } => super::compat::compat(sd, ctx, *verbose),
        Verb::Current {
            check_heads,
            verbose,
        } => super::current(sd, ctx, *verbose, *check_heads),
        Verb::Upgrade { sql, tag, revision } => {
            with_runner(|runner| migrate::upgrade(sd, ctx, revision, *sql, tag.as_deref(), runner))
        }
        Verb::Downgrade { sql, tag, revision } => with_runner(|runner| {
            migrate::downgrade(sd, ctx, revision, *sql, tag.as_deref(), runner)
        }),
        Verb::Stamp {
            sql,
            tag,
            purge,
            revisions,
        } => with_runner(|runner| {
            migrate::stamp(sd, ctx, revisions, *sql, tag.as_deref(), *purge, runner)
        }),
        Verb::Revision {
            message,
            sql,
            head,
            splice,
            branch_label,
            version_path,
            rev_id,
            depends_on,
            autogenerate,
            target_sql,
            target_url,
        } => generate::revision(
            sd,
            ctx,
            &generate::RevisionArgs {
                message: message.clone(),
                sql: *sql,
                head: head.as_deref().map(RevArg::from),
                splice: *splice,
                branch_label: branch_label.clone(),
                version_path: version_path.clone(),
                rev_id: rev_id.clone(),
                depends_on: depends_on.clone(),
                autogenerate: autogenerate.then(|| Target {
                    sql: target_sql.clone(),
                    url: target_url.clone(),
                }),
            },
        ),
        Verb::Check {
            target_sql,
            target_url,
        } => autogen::check(
            sd,
            ctx,
            &Target {
                sql: target_sql.clone(),
                url: target_url.clone(),
            },
        ),
        Verb::Merge {
            message,
            branch_label,
            rev_id,
            splice,
            revisions,
        } => generate::merge(
            sd,
            ctx,
            &generate::RevisionArgs {
                message: message.clone(),
                head: Some(RevArg::from(revisions.clone())),
                splice: *splice,
                branch_label: branch_label.clone(),
                rev_id: rev_id.clone(),
                ..Default::default()
            },
        ),
        _ => Ok(()),
    }
}

/// Sets up `tracing` on stderr, only when `RUST_LOG` is set.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// What a binary's `main` calls: runs with the process's stdout (buffered, flushed once) and
/// stderr, returning the exit code.
pub fn run_process(prog: &str, args: Vec<OsString>) -> i32 {
    init_logging();
    let env = Environment::from_process();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    let code = run(prog, args, &env, &mut out, &mut err);
    // A closed pipe (e.g. `| head`) is not an error worth reporting.
    let _ = out.flush();
    code
}

/// `basename(argv[0])`, as argparse names the program.
pub fn prog_name(argv0: Option<&OsString>, default: &str) -> String {
    argv0
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> (i32, String, String) {
        let env = Environment {
            cwd: std::env::temp_dir(),
            alembic_config: None,
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run(
            "ralembic",
            args.iter().map(OsString::from).collect(),
            &env,
            &mut out,
            &mut err,
        );
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[test]
    fn usage_errors_are_argparse_like() {
        let (code, out, err) = run_args(&[]);
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(err.starts_with("usage: ralembic [-h]"), "{err}");
        assert!(
            err.ends_with("ralembic: error: too few arguments\n"),
            "{err}"
        );

        let (code, _, err) = run_args(&["frobnicate"]);
        assert_eq!(code, 2);
        assert!(
            err.contains("ralembic: error: argument {branches,check,"),
            "{err}"
        );
        assert!(
            err.contains("invalid choice: 'frobnicate' (choose from 'branches', 'check',"),
            "{err}"
        );

        let (code, _, err) = run_args(&["heads", "--bogus"]);
        assert_eq!(code, 2);
        assert!(
            err.ends_with("ralembic: error: unrecognized arguments: --bogus\n"),
            "{err}"
        );

        let (code, _, err) = run_args(&["show"]);
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "usage: ralembic show [-h] rev\nralembic show: error: the following arguments are required: rev\n"
        );

        let (code, _, err) = run_args(&["history", "-r"]);
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "usage: ralembic history [-h] [-r REV_RANGE] [-v] [-i]\nralembic history: error: argument -r/--rev-range: expected one argument\n"
        );
        let (code, _, err) = run_args(&["-c"]);
        assert_eq!(code, 2);
        assert!(
            err.ends_with("ralembic: error: argument -c/--config: expected one argument\n"),
            "{err}"
        );
    }

    #[test]
    fn version_help_and_unimplemented() {
        assert_eq!(
            run_args(&["--version"]),
            (0, "alembic 1.20.1\n".into(), String::new())
        );
        let (code, out, _) = run_args(&["heads", "--help"]);
        assert_eq!(code, 0);
        assert!(
            out.contains("--resolve-dependencies") && out.contains("--verbose"),
            "{out}"
        );
        let (code, out, _) = run_args(&["--help"]);
        assert_eq!(code, 0);
        for v in [
            "upgrade",
            "downgrade",
            "stamp",
            "list_templates",
            "ensure_version",
        ] {
            assert!(out.contains(v), "{v} missing from\n{out}");
        }
        // check and --autogenerate need a project, as in Alembic.
        for args in [&["check"][..], &["revision", "--autogenerate"][..]] {
            let (code, out, _) = run_args(args);
            assert_eq!(
                (code, out.as_str()),
                (
                    255,
                    "FAILED: No 'script_location' key found in configuration.\n"
                )
            );
        }
        let (code, out, _) = run_args(&["edit", "x"]);
        assert_eq!(
            (code, out.as_str()),
            (255, "FAILED: 'edit' is not implemented in ralembic yet\n")
        );
        // abbreviated long options and repeated flags, as argparse allows
        let (code, _, err) = run_args(&["heads", "--verb", "-v", "--res"]);
        assert_ne!(code, 2, "{err}");
    }

    #[test]
    fn two_ini_files_is_a_traceback() {
        let (code, out, err) = run_args(&["-c", "a.ini", "-c", "b.ini", "heads"]);
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(
            err.ends_with("alembic.util.exc.CommandError: only one ini file may be indicated\n"),
            "{err}"
        );
    }
}

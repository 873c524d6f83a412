//! `revision --autogenerate` and `check`: Alembic's `RevisionContext.run_autogenerate` flow
//! (the database must be at head: "Target database is not up to date."; then compare,
//! render) over [`crate::alembic_compat::autogenerate`].
//!
//! Where Python gets the target from env.py's `target_metadata`, ralembic takes a schema
//! declared in SQL (our extension): `--target-sql FILE`, `--target-url URL` (another SQLite
//! database), or `ralembic.target_sql` in the `[alembic]` section (relative to the ini's
//! directory). env.py is read only for `render_as_batch` and the version table.

use std::path::Path;

use super::{db, Ctx, Failure, ScriptDirectory};
use crate::alembic_compat::autogenerate::{
    self, compare, render::render, render::Rendered, AutogenError, Entry, Options,
};
use crate::alembic_compat::config::{parse_sqlite_url, SqliteDatabase, SqliteUrl};
use crate::alembic_compat::ddl::sqlite::TableDef;
use crate::alembic_compat::revision::{catch_revision_errors, CatchRevisionErrors, RevArg};
use crate::alembic_compat::runtime::log::AlembicLog;

/// Where the target schema comes from (command-line extensions; both `None`: alembic.ini).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub sql: Option<String>,
    pub url: Option<String>,
}

/// The `[alembic]` option naming the target schema file.
pub const TARGET_SQL_OPTION: &str = "ralembic.target_sql";

fn autogen_failure(e: &AutogenError) -> Failure {
    Failure::Command(e.to_string())
}

fn read_schema_file(path: &Path, shown: &str) -> Result<Vec<TableDef>, Failure> {
    let sql = std::fs::read_to_string(path).map_err(|e| {
        autogen_failure(&AutogenError::ReadTarget {
            path: shown.to_string(),
            message: e.to_string(),
        })
    })?;
    autogenerate::schema_from_sql(shown, &sql).map_err(|e| autogen_failure(&e))
}

fn load_target(sd: &ScriptDirectory, target: &Target) -> Result<Vec<TableDef>, Failure> {
    if let Some(p) = &target.sql {
        return read_schema_file(&sd.cwd.join(p), p);
    }
    if let Some(url) = &target.url {
        // A target that does not exist is a mistake, not an empty schema to migrate to.
        if let Ok(SqliteUrl {
            database: SqliteDatabase::File(path),
            ..
        }) = parse_sqlite_url(url, &sd.cwd)
        {
            if !path.exists() {
                return Err(autogen_failure(&AutogenError::ReadTarget {
                    path: url.clone(),
                    message: format!("no database file {}", path.display()),
                }));
            }
        }
        let conn = db::open_database(url, &sd.cwd)?;
        return autogenerate::reflect_schema(&conn).map_err(|e| autogen_failure(&e));
    }
    let option = sd
        .config
        .get_main_option(TARGET_SQL_OPTION)
        .map_err(|e| super::config_failure(&e))?;
    if let Some(p) = option.filter(|p| !p.trim().is_empty()) {
        let here = sd
            .config
            .get_main_option("here")
            .map_err(|e| super::config_failure(&e))?
            .unwrap_or_else(|| ".".into());
        let path = sd.cwd.join(here).join(p.trim());
        return read_schema_file(&path, p.trim());
    }
    // Alembic's message for an env.py without target_metadata, with ralembic's remedy.
    Err(Failure::Command(format!(
        "Can't proceed with --autogenerate option; ralembic needs the target schema: pass \
         --target-sql FILE or --target-url URL, or set {TARGET_SQL_OPTION} in the [alembic] \
         section"
    )))
}

/// The plugins Alembic's `AutogenContext` sets up (and logs) before comparing.
const PLUGINS: [&str; 6] = [
    "schemas",
    "tables",
    "types",
    "constraints",
    "defaults",
    "comments",
];

/// A comparison's result, and the log that env.py's logging set-up would print (kept open
/// so that `check` can log its failure, as `util.err` does).
struct Run {
    entries: Vec<Entry>,
    render_as_batch: bool,
    log: AlembicLog,
}

/// The database at head compared with the target.
fn run_autogenerate(sd: &ScriptDirectory, ctx: &mut Ctx, target: &Target) -> Result<Run, Failure> {
    let (opts, mut log) = super::migrate::environment(sd, false, None)?;
    // environment() keeps only what migrations need; the compare_* flags are read here.
    let env_path = sd.dir().join("env.py");
    let env_source = std::fs::read_to_string(&env_path).unwrap_or_default();
    let env = db::env_settings(&env_path.to_string_lossy(), &env_source, false);
    let current = sd.read_current_heads(ctx)?;
    log.context_created(false);
    let compared = (|| -> Result<Vec<Entry>, Failure> {
        let r = sd.revisions(ctx, true)?;
        let resolve = |arg: &RevArg| -> Result<Vec<String>, Failure> {
            let mut ids: Vec<String> = r
                .map
                .get_revisions(arg)
                .map_err(|e| {
                    super::script_error_failure(catch_revision_errors(
                        e,
                        &CatchRevisionErrors::default(),
                    ))
                })?
                .into_iter()
                .filter_map(|x| x.rev().map(|i| r.map.id(i).to_string()))
                .collect();
            ids.sort();
            ids.dedup();
            Ok(ids)
        };
        if resolve(&super::ids_arg(&current))? != resolve(&RevArg::from("heads"))? {
            return Err(Failure::Command(
                "Target database is not up to date.".into(),
            ));
        }
        for p in PLUGINS {
            log.info(
                "alembic.runtime.plugins",
                &format!("setting up autogenerate plugin alembic.autogenerate.{p}"),
            );
        }
        let target_schema = load_target(sd, target)?;
        let url = sd.url(ctx)?;
        let conn = db::open_database(&url, &sd.cwd)?;
        let conn_schema = autogenerate::reflect_schema(&conn).map_err(|e| autogen_failure(&e))?;
        let mut lines = vec![];
        let entries = compare(
            &conn_schema,
            &target_schema,
            &Options {
                version_table: opts.version_table.table.clone(),
                compare_type: env.compare_type.unwrap_or(true),
                compare_server_default: env.compare_server_default.unwrap_or(false),
            },
            &mut lines,
        );
        for (logger, line) in lines {
            log.info(logger, &line);
        }
        Ok(entries)
    })();
    match compared {
        Ok(entries) => Ok(Run {
            entries,
            render_as_batch: opts.render_as_batch,
            log,
        }),
        Err(e) => {
            log_failure(ctx, &mut log, &e);
            Err(e)
        }
    }
}

/// `util.err`: a `CommandError` raised once env.py configured logging is also logged.
fn log_failure(ctx: &mut Ctx, log: &mut AlembicLog, e: &Failure) {
    if let Failure::Command(m) = e {
        log.error("alembic.util.messaging", m);
    }
    let _ = ctx.err.write_all(log.take().as_bytes());
}

/// The `upgrades`, `downgrades` and `imports` template variables of an autogenerated
/// revision.
pub fn autogenerate_vars(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    target: &Target,
) -> Result<Rendered, Failure> {
    let mut run = run_autogenerate(sd, ctx, target)?;
    let _ = ctx.err.write_all(run.log.take().as_bytes());
    Ok(render(&run.entries, run.render_as_batch))
}

/// `alembic check`.
pub fn check(sd: &ScriptDirectory, ctx: &mut Ctx, target: &Target) -> Result<(), Failure> {
    let mut run = run_autogenerate(sd, ctx, target)?;
    let diffs: Vec<&str> = run
        .entries
        .iter()
        .flat_map(|e| match e {
            Entry::Single(c) => vec![c.diff.as_str()],
            Entry::Table { changes, .. } => changes.iter().map(|c| c.diff.as_str()).collect(),
        })
        .collect();
    let result = if diffs.is_empty() {
        Ok(())
    } else {
        Err(Failure::Command(format!(
            "New upgrade operations detected: [{}]",
            diffs.join(", ")
        )))
    };
    match &result {
        Ok(()) => {
            let _ = ctx.err.write_all(run.log.take().as_bytes());
            ctx.print("No new upgrade operations detected.");
        }
        Err(e) => log_failure(ctx, &mut run.log, e),
    }
    result
}

//! `ralembic compat [-v]`: which revisions ralembic runs natively, which through a SQL
//! override file, and which it cannot run (with every place and the reason). The report a
//! team reads before moving a service from Python Alembic to ralembic.
//!
//! One line per revision, oldest first: `<id>  native|override|unsupported  <message>`; with
//! `-v`, every refused place on its own line under its revision. A summary line ends the
//! report. Exit status 0 when everything runs (natively or by override), 1 otherwise.
//!
//! Two checks: every file is read statically (imports, classes, the modules' attributes),
//! then the upgrades run, oldest first, on an empty in-memory database that is thrown away,
//! so that what only shows when a body runs (a method, an SQLAlchemy construct ralembic
//! leaves out) is reported too. The run stops at the first revision it cannot pass; the ones
//! after it keep the static verdict, and a line says where and why it stopped.

use super::migrate::{default_runner, environment};
use super::{script_error_failure, Ctx, Failure, ScriptDirectory};
use crate::alembic_compat::eval::check::check_module;
use crate::alembic_compat::revision::{RevArg, ScriptRevisions};
use crate::alembic_compat::runtime::log::AlembicLog;
use crate::alembic_compat::runtime::MigrationContext;
use crate::alembic_compat::script::sql_override::{load_override, OverrideFinder};
use crate::alembic_compat::script::Script;

/// ralembic only migrates SQLite so far.
const DIALECT: &str = "sqlite";

enum Verdict {
    Native,
    Override(String),
    Unsupported(Vec<String>),
}

fn judge(script: &Script, overrides: &OverrideFinder) -> Verdict {
    if let Some(path) = overrides.find(&script.path, &script.revision, DIALECT) {
        return match load_override(&path) {
            Ok(_) => Verdict::Override(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            Err(e) => Verdict::Unsupported(vec![e.to_string()]),
        };
    }
    match script.parse() {
        Ok((src, module)) => {
            let problems: Vec<String> = check_module(&script.path, &src, &module)
                .iter()
                .map(ToString::to_string)
                .collect();
            if problems.is_empty() {
                Verdict::Native
            } else {
                Verdict::Unsupported(problems)
            }
        }
        Err(e) => Verdict::Unsupported(vec![e.to_string()]),
    }
}

pub fn compat(sd: &ScriptDirectory, ctx: &mut Ctx, verbose: bool) -> Result<(), Failure> {
    let r = sd.revisions(ctx, true)?;
    let mut order = ScriptRevisions::new(&r.map)
        .walk_revisions(&RevArg::from("base"), &RevArg::from("heads"))
        .map_err(script_error_failure)?;
    order.reverse();
    let width = order.iter().map(|&i| r.map.id(i).len()).max().unwrap_or(0);
    let (mut native, mut overridden, mut unsupported) = (0usize, 0usize, 0usize);
    let overrides = OverrideFinder::default();
    let mut verdicts: Vec<Verdict> = order
        .iter()
        .map(|&i| judge(&r.scripts[i], &overrides))
        .collect();
    let scripts: Vec<&Script> = order.iter().map(|&i| &r.scripts[i]).collect();
    let stopped = dry_run(sd, &scripts, &mut verdicts);
    for (&i, verdict) in order.iter().zip(verdicts) {
        let script = &r.scripts[i];
        let id = r.map.id(i);
        match verdict {
            Verdict::Native => {
                native += 1;
                ctx.print(&format!(
                    "{id:<width$}  native       {}",
                    script.meta.doc().lines().next().unwrap_or("")
                ));
            }
            Verdict::Override(file) => {
                overridden += 1;
                ctx.print(&format!("{id:<width$}  override     {file}"));
            }
            Verdict::Unsupported(problems) => {
                unsupported += 1;
                if verbose {
                    ctx.print(&format!(
                        "{id:<width$}  unsupported  {} place{}:",
                        problems.len(),
                        if problems.len() == 1 { "" } else { "s" }
                    ));
                    for p in &problems {
                        ctx.print(&format!("    {p}"));
                    }
                } else {
                    let more = match problems.len() {
                        1 => String::new(),
                        n => format!(" (and {} more; -v lists them)", n - 1),
                    };
                    ctx.print(&format!(
                        "{id:<width$}  unsupported  {}{more}",
                        problems.first().map(String::as_str).unwrap_or("")
                    ));
                }
            }
        }
    }
    if let Some(why) = stopped {
        ctx.print(&why);
    }
    ctx.print(&format!(
        "{} revision{}: {native} native, {overridden} override, {unsupported} unsupported",
        native + overridden + unsupported,
        if native + overridden + unsupported == 1 {
            ""
        } else {
            "s"
        }
    ));
    if unsupported > 0 {
        return Err(Failure::Quiet(1));
    }
    Ok(())
}

/// Runs the upgrades in `scripts` (oldest first) on an empty in-memory database, inside a
/// transaction that is rolled back, until one fails or is refused statically. A body refused
/// when it runs turns its revision's verdict into `Unsupported`. Returns a line saying where
/// the run stopped short of the end, if it did.
fn dry_run(sd: &ScriptDirectory, scripts: &[&Script], verdicts: &mut [Verdict]) -> Option<String> {
    let (opts, _) = environment(sd, false, None).ok()?;
    let mut mctx =
        MigrationContext::open("sqlite://", &sd.cwd, opts, AlembicLog::disabled()).ok()?;
    mctx.begin().ok()?;
    let runner = default_runner();
    let mut stopped = None;
    for (script, verdict) in scripts.iter().zip(verdicts.iter_mut()) {
        if matches!(verdict, Verdict::Unsupported(_)) {
            stopped = Some(format!(
                "(the dry run of the upgrades stopped at {}, which cannot run; the revisions \
                 after it were read, not run)",
                script.revision
            ));
            break;
        }
        if let Err(e) = runner.run(script, true, &mut mctx) {
            stopped = Some(if e.message.contains("is not supported by ralembic") {
                *verdict = Verdict::Unsupported(vec![e.message]);
                format!(
                    "(the dry run of the upgrades stopped at {}, which cannot run; the \
                     revisions after it were read, not run)",
                    script.revision
                )
            } else {
                format!(
                    "(the dry run of the upgrades on an empty database stopped at {}: {}; \
                     the revisions after it were read, not run)",
                    script.revision,
                    e.to_string().lines().next().unwrap_or("")
                )
            });
            break;
        }
        let _ = mctx.take_stdout();
        let _ = mctx.take_stderr();
    }
    mctx.rollback();
    stopped
}

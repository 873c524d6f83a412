//! `ralembic compat [-v]`: which revisions ralembic runs natively, which through a SQL
//! override file, and which it cannot run (with every place and the reason). The report a
//! team reads before moving a service from Python Alembic to ralembic.
//!
//! One line per revision, oldest first: `<id>  native|override|unsupported  <message>`; with
//! `-v`, every refused place on its own line under its revision. A summary line ends the
//! report. Exit status 0 when everything runs (natively or by override), 1 otherwise.

use super::{script_error_failure, Ctx, Failure, ScriptDirectory};
use crate::alembic_compat::eval::check::check_module;
use crate::alembic_compat::revision::{RevArg, ScriptRevisions};
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
    for i in order {
        let script = &r.scripts[i];
        let id = r.map.id(i);
        match judge(script, &overrides) {
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

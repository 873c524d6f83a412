//! The seam between the runtime and whatever runs revision bodies (`eval`). The command plans
//! the steps, asks the runner to check every pending body before anything is written
//! ([`BodyRunner::preflight`]), then runs them one by one inside the context's transaction
//! ([`BodyRunner::run`]).

use std::fmt;

use super::context::MigrationContext;
use crate::alembic_compat::script::ast::{Constant, ExprKind, Stmt, StmtKind};
use crate::alembic_compat::script::lines::LineIndex;
use crate::alembic_compat::script::Script;

/// Why a body could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// One line; `path:line:col: ...` where the position is known.
    pub message: String,
    /// The Python exception class a traceback would name (`NotImplementedError`,
    /// `sqlalchemy.exc.OperationalError`, ...).
    pub python_class: String,
}

/// The class Alembic's command line reports as `FAILED: <message>` (exit 255), not as a
/// traceback.
pub const COMMAND_ERROR: &str = "alembic.util.exc.CommandError";

impl BodyError {
    /// The message without the `path:line:col: ` it starts with, when it does.
    pub fn unlocated(&self) -> &str {
        let m = &self.message;
        // The position ends at the first `:<digits>:<digits>: `.
        let bytes = m.as_bytes();
        let mut i = 0;
        while let Some(off) = m[i..].find(':') {
            let at = i + off;
            let digits = |from: usize| {
                bytes[from..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count()
            };
            let line = digits(at + 1);
            if line > 0 && bytes.get(at + 1 + line) == Some(&b':') {
                let col_at = at + 2 + line;
                let col = digits(col_at);
                if col > 0 && m[col_at + col..].starts_with(": ") {
                    return &m[col_at + col + 2..];
                }
            }
            i = at + 1;
        }
        m
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.python_class, self.message)
    }
}

impl std::error::Error for BodyError {}

/// A pending revision step as the preflight sees it.
#[derive(Debug, Clone, Copy)]
pub struct PlannedStep<'a> {
    pub script: &'a Script,
    /// `true` for `upgrade()`, `false` for `downgrade()`.
    pub upgrade: bool,
}

/// Runs revision bodies.
pub trait BodyRunner {
    /// Dry evaluation of every pending body before any write. Errors are collected for all
    /// steps, not just the first.
    fn preflight(
        &self,
        steps: &[PlannedStep<'_>],
        ctx: &MigrationContext,
    ) -> Result<(), Vec<BodyError>>;

    /// Runs one revision's `upgrade()` or `downgrade()` through `ctx` (its SQL executes on the
    /// context's connection, inside the current transaction, or becomes offline text).
    fn run(
        &self,
        script: &Script,
        upgrade: bool,
        ctx: &mut MigrationContext,
    ) -> Result<(), BodyError>;
}

/// The runner used until the interpreter lands: accepts bodies made only of `pass`, docstrings
/// and `...`, and refuses anything else with the statement's position.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassOnlyRunner;

impl PassOnlyRunner {
    fn check(&self, script: &Script, upgrade: bool) -> Result<(), BodyError> {
        let fname = if upgrade { "upgrade" } else { "downgrade" };
        let path = script.path.display().to_string();
        let (source, module) = script.parse().map_err(|e| BodyError {
            message: e.to_string(),
            python_class: "SyntaxError".into(),
        })?;
        // Python calls whatever the module binds last under that name.
        let def = module.body.iter().rev().find_map(|s| match &s.kind {
            StmtKind::FunctionDef(f) if f.name == fname => Some(f.clone()),
            _ => None,
        });
        let Some(def) = def else {
            let module_name = script
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(BodyError {
                message: format!("module '{module_name}' has no attribute '{fname}'"),
                python_class: "AttributeError".into(),
            });
        };
        match def.body.iter().find(|s| !is_inert(s)) {
            None => Ok(()),
            Some(stmt) => {
                let index = LineIndex::new(&source);
                let (line, col) = index.line_col(&source, stmt.span.start as usize);
                Err(BodyError {
                    message: format!(
                        "{path}:{line}:{col}: {fname}() does more than `pass`; running revision bodies needs the interpreter, which this build does not have yet"
                    ),
                    python_class: "NotImplementedError".into(),
                })
            }
        }
    }
}

fn is_inert(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Pass => true,
        StmtKind::Expr(e) => matches!(
            e.kind,
            ExprKind::Constant(Constant::Str(_) | Constant::Ellipsis)
        ),
        _ => false,
    }
}

impl BodyRunner for PassOnlyRunner {
    fn preflight(
        &self,
        steps: &[PlannedStep<'_>],
        _ctx: &MigrationContext,
    ) -> Result<(), Vec<BodyError>> {
        let errors: Vec<BodyError> = steps
            .iter()
            .filter_map(|s| self.check(s.script, s.upgrade).err())
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn run(
        &self,
        script: &Script,
        upgrade: bool,
        _ctx: &mut MigrationContext,
    ) -> Result<(), BodyError> {
        self.check(script, upgrade)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlocated_drops_the_position_only() {
        let e = |m: &str| BodyError {
            message: m.into(),
            python_class: COMMAND_ERROR.into(),
        };
        assert_eq!(e("/p/a:b.py:24:9: No: 3:4: x").unlocated(), "No: 3:4: x");
        assert_eq!(
            e("no position: 1:2 here").unlocated(),
            "no position: 1:2 here"
        );
        assert_eq!(e("a.py:12:x: y").unlocated(), "a.py:12:x: y");
    }
}

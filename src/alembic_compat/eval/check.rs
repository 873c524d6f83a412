//! The static part of preflight: constructs that can never run natively, found in the whole
//! file before anything executes, so one report lists every place at once.

use std::path::Path;

use super::interp::{Interp, Unwind};
use super::native;
use super::{EvalError, Host, HostError, QueryOutput};
use crate::alembic_compat::ops::{Literal, Op, SourcePos};
use crate::alembic_compat::script::ast::{Module, Stmt, StmtKind};

/// A host that refuses everything: the checker never executes.
struct NoHost;

impl Host for NoHost {
    fn is_offline(&self) -> bool {
        true
    }
    fn apply(&mut self, _: &Op, _: &SourcePos) -> Result<(), HostError> {
        Ok(())
    }
    fn query(&mut self, _: &str, _: &[Literal]) -> Result<QueryOutput, HostError> {
        Ok(QueryOutput::default())
    }
    fn x_arguments(&self) -> Vec<String> {
        Vec::new()
    }
    fn print(&mut self, _: &str) {}
    fn log(&mut self, _: u32, _: &str, _: &str) {}
}

/// Every import of a module outside the model, and every class definition, anywhere in the
/// file.
pub fn check_module(path: &Path, src: &str, module: &Module) -> Vec<EvalError> {
    let mut host = NoHost;
    let interp = Interp::new(path, src, &mut host);
    let mut out = Vec::new();
    visit(&interp, &module.body, &mut out);
    out
}

/// The same refusal, naming the construct as written.
fn relabel(u: Unwind, written: String) -> Unwind {
    match u {
        Unwind::Unsupported { why, pos, .. } => Unwind::Unsupported {
            what: written,
            why,
            pos,
        },
        other => other,
    }
}

fn visit(interp: &Interp<'_>, body: &[Stmt], out: &mut Vec<EvalError>) {
    for stmt in body {
        let mut report = |u: Unwind, span| {
            if let Unwind::Unsupported { what, why, .. } = u {
                out.push(EvalError::Unsupported {
                    what,
                    why,
                    pos: interp.pos(span),
                });
            }
        };
        match &stmt.kind {
            StmtKind::Import(aliases) => {
                for a in aliases {
                    if let Err(u) = native::import_module(&a.name) {
                        report(u, a.span);
                    }
                }
            }
            StmtKind::ImportFrom {
                level,
                module,
                names,
            } => {
                let name = module.clone().unwrap_or_default();
                if *level > 0 {
                    report(
                        super::interp::unsupported(
                            "a relative import",
                            "revision files are loaded on their own, not as part of a package",
                        ),
                        stmt.span,
                    );
                } else if let Err(u) = native::import_module(&name) {
                    let listed: Vec<&str> = names.iter().map(|a| a.name.as_str()).collect();
                    report(
                        relabel(u, format!("`from {name} import {}`", listed.join(", "))),
                        stmt.span,
                    );
                }
            }
            StmtKind::ClassDef(_) => report(
                super::interp::unsupported(
                    "a class definition",
                    "revision bodies run without user-defined classes; use functions and dicts",
                ),
                stmt.span,
            ),
            StmtKind::If { body, orelse, .. }
            | StmtKind::For { body, orelse, .. }
            | StmtKind::While { body, orelse, .. } => {
                visit(interp, body, out);
                visit(interp, orelse, out);
            }
            StmtKind::With { body, .. } => visit(interp, body, out),
            StmtKind::Try {
                body,
                handlers,
                orelse,
                finalbody,
            } => {
                visit(interp, body, out);
                for h in handlers {
                    visit(interp, &h.body, out);
                }
                visit(interp, orelse, out);
                visit(interp, finalbody, out);
            }
            StmtKind::FunctionDef(f) => visit(interp, &f.body, out),
            _ => {}
        }
    }
}

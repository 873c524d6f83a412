//! The static part of preflight: constructs that can never run natively, found in the whole
//! file before anything executes, so one report lists every place at once.

use std::path::Path;

use super::interp::{Interp, Unwind};
use super::native::{self, Native};
use super::value::Value;
use super::{EvalError, Host, HostError, QueryOutput};
use crate::alembic_compat::ops::{Literal, Op, SourcePos};
use crate::alembic_compat::script::ast::{
    Arg, Expr, ExprKind, FStringPart, Module, Stmt, StmtKind,
};

/// A host that refuses everything: the checker never executes.
struct NoHost;

impl Host for NoHost {
    fn is_offline(&self) -> bool {
        true
    }
    fn apply(&mut self, _: &Op, _: &SourcePos, _: bool) -> Result<(), HostError> {
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
    check_attributes(&interp, module, &mut out);
    out.sort_by_key(|e| (e.pos().line, e.pos().col));
    out
}

/// `alias.attr` where `alias` names an imported module (`op`, `sa`, `sqlite`, `datetime`...)
/// and `attr` is outside what ralembic models: found anywhere in the file, as running the
/// body would find it when reached.
fn check_attributes(interp: &Interp<'_>, module: &Module, out: &mut Vec<EvalError>) {
    let mut aliases: rustc_hash::FxHashMap<String, &'static str> = Default::default();
    for_each_stmt(&module.body, &mut |stmt| match &stmt.kind {
        StmtKind::Import(names) => {
            for a in names {
                let bound = a
                    .asname
                    .clone()
                    .unwrap_or_else(|| a.name.split('.').next().unwrap_or(&a.name).to_string());
                let target = if a.asname.is_some() {
                    a.name.as_str()
                } else {
                    a.name.split('.').next().unwrap_or(&a.name)
                };
                if let Some(m) = module_path(native::import_module(target).ok()) {
                    aliases.insert(bound, m);
                }
            }
        }
        StmtKind::ImportFrom {
            level: 0,
            module: Some(from),
            names,
        } => {
            if let Ok(m) = native::import_module(from) {
                for a in names {
                    let v = native::import_from(&m, from, &a.name).ok();
                    if let Some(p) = module_path(v) {
                        aliases.insert(a.asname.clone().unwrap_or_else(|| a.name.clone()), p);
                    }
                }
            }
        }
        _ => {}
    });
    if aliases.is_empty() {
        return;
    }
    let mut seen = rustc_hash::FxHashSet::default();
    for_each_expr(&module.body, &mut |e| {
        if let ExprKind::Attribute { value, attr } = &e.kind {
            if let ExprKind::Name(n) = &value.kind {
                if let Some(m) = aliases.get(n) {
                    if let Err(Unwind::Unsupported(r)) = native::check_attr(m, attr) {
                        let super::interp::Refusal { what, why, .. } = *r;
                        if seen.insert((e.span.start, e.span.end)) {
                            out.push(EvalError::Unsupported {
                                what,
                                why,
                                pos: interp.pos(e.span),
                            });
                        }
                    }
                }
            }
        }
    });
}

fn module_path(v: Option<Value>) -> Option<&'static str> {
    match v? {
        Value::Native(n) => match &*n {
            Native::Module(p) => Some(p),
            _ => None,
        },
        _ => None,
    }
}

fn for_each_stmt<'a>(body: &'a [Stmt], f: &mut dyn FnMut(&'a Stmt)) {
    for stmt in body {
        f(stmt);
        for block in stmt.blocks() {
            for_each_stmt(block, f);
        }
        match &stmt.kind {
            StmtKind::FunctionDef(d) => for_each_stmt(&d.body, f),
            StmtKind::ClassDef(c) => for_each_stmt(&c.body, f),
            _ => {}
        }
    }
}

/// Every expression of every statement, outermost first.
fn for_each_expr<'a>(body: &'a [Stmt], f: &mut dyn FnMut(&'a Expr)) {
    for_each_stmt(body, &mut |stmt| {
        for e in stmt_exprs(stmt) {
            walk_expr(e, f);
        }
    });
}

/// The expressions a statement holds itself, not those of the statements inside it.
pub(crate) fn stmt_exprs(stmt: &Stmt) -> Vec<&Expr> {
    let mut top: Vec<&Expr> = Vec::new();
    match &stmt.kind {
        StmtKind::Expr(e) => top.push(e),
        StmtKind::Assign { targets, value } => {
            top.extend(targets.iter());
            top.push(value);
        }
        StmtKind::AnnAssign { target, value, .. } => {
            top.push(target);
            top.extend(value.iter());
        }
        StmtKind::AugAssign { target, value, .. } => {
            top.push(target);
            top.push(value);
        }
        StmtKind::Return(Some(e)) => top.push(e),
        StmtKind::Raise { exc, cause } => {
            top.extend(exc.iter());
            top.extend(cause.iter());
        }
        StmtKind::Del(es) => top.extend(es.iter()),
        StmtKind::Assert { test, msg } => {
            top.push(test);
            top.extend(msg.iter());
        }
        StmtKind::If { test, .. } | StmtKind::While { test, .. } => top.push(test),
        StmtKind::For { target, iter, .. } => {
            top.push(target);
            top.push(iter);
        }
        StmtKind::With { items, .. } => {
            for i in items {
                top.push(&i.context);
                top.extend(i.target.iter());
            }
        }
        StmtKind::Try { handlers, .. } => {
            for h in handlers {
                top.extend(h.typ.iter());
            }
        }
        StmtKind::FunctionDef(d) => {
            top.extend(d.decorators.iter());
            let p = &d.params;
            for param in p.posonly.iter().chain(&p.args).chain(&p.kwonly) {
                top.extend(param.default.iter());
            }
        }
        _ => {}
    }
    top
}

/// Calls `f` on `e` and every expression inside it.
pub(crate) fn walk_expr<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Expr)) {
    f(e);
    let mut each = |x: &'a Expr| walk_expr(x, f);
    match &e.kind {
        ExprKind::Attribute { value, .. } | ExprKind::Starred(value) | ExprKind::Await(value) => {
            each(value)
        }
        ExprKind::YieldFrom(value) => each(value),
        ExprKind::Yield(v) => v.iter().for_each(|x| each(x)),
        ExprKind::Subscript { value, index } => {
            each(value);
            each(index);
        }
        ExprKind::Slice { lower, upper, step } => {
            for x in [lower, upper, step].into_iter().flatten() {
                each(x);
            }
        }
        ExprKind::Call { func, args } => {
            each(func);
            for a in args {
                match a {
                    Arg::Positional(x) | Arg::Star(x) | Arg::DoubleStar(x) => each(x),
                    Arg::Keyword { value, .. } => each(value),
                }
            }
        }
        ExprKind::BinOp { left, right, .. } => {
            each(left);
            each(right);
        }
        ExprKind::UnaryOp { operand, .. } => each(operand),
        ExprKind::BoolOp { values, .. } => values.iter().for_each(each),
        ExprKind::Compare { left, ops } => {
            each(left);
            ops.iter().for_each(|(_, x)| each(x));
        }
        ExprKind::IfExp { test, body, orelse } => {
            each(test);
            each(body);
            each(orelse);
        }
        ExprKind::Lambda { body, .. } => each(body),
        ExprKind::NamedExpr { value, .. } => each(value),
        ExprKind::List(xs) | ExprKind::Tuple(xs) | ExprKind::Set(xs) => xs.iter().for_each(each),
        ExprKind::Dict(items) => {
            for (k, v) in items {
                if let Some(k) = k {
                    each(k);
                }
                each(v);
            }
        }
        ExprKind::ListComp { elt, generators }
        | ExprKind::SetComp { elt, generators }
        | ExprKind::GeneratorExp { elt, generators } => {
            each(elt);
            for g in generators {
                each(&g.target);
                each(&g.iter);
                g.ifs.iter().for_each(&mut each);
            }
        }
        ExprKind::DictComp {
            key,
            value,
            generators,
        } => {
            each(key);
            each(value);
            for g in generators {
                each(&g.target);
                each(&g.iter);
                g.ifs.iter().for_each(&mut each);
            }
        }
        ExprKind::JoinedStr(parts) => {
            for p in parts {
                if let FStringPart::Field { expr, .. } = p {
                    each(expr);
                }
            }
        }
        ExprKind::Name(_) | ExprKind::Constant(_) => {}
    }
}

/// The same refusal, naming the construct as written.
fn relabel(u: Unwind, written: String) -> Unwind {
    match u {
        Unwind::Unsupported(mut r) => {
            r.what = written;
            Unwind::Unsupported(r)
        }
        other => other,
    }
}

fn visit(interp: &Interp<'_>, body: &[Stmt], out: &mut Vec<EvalError>) {
    for stmt in body {
        let mut report = |u: Unwind, span| {
            if let Unwind::Unsupported(r) = u {
                out.push(EvalError::Unsupported {
                    what: r.what,
                    why: r.why,
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
                } else {
                    match native::import_module(&name) {
                        Err(u) => {
                            let listed: Vec<&str> = names.iter().map(|a| a.name.as_str()).collect();
                            report(
                                relabel(u, format!("`from {name} import {}`", listed.join(", "))),
                                stmt.span,
                            );
                        }
                        Ok(m) => {
                            for a in names {
                                if let Err(u) = native::import_from(&m, &name, &a.name) {
                                    report(u, a.span);
                                }
                            }
                        }
                    }
                }
            }
            StmtKind::ClassDef(c) => {
                if let Some(why) = class_refusal(c) {
                    report(
                        super::interp::unsupported("a class definition", why),
                        stmt.span,
                    )
                }
            }
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

/// Why a class definition can never run: ralembic models custom types, ORM models and enum
/// classes, all with one base and class attributes only; whether the base is one of those is
/// known only when it runs.
fn class_refusal(c: &crate::alembic_compat::script::ast::ClassDef) -> Option<&'static str> {
    const ONLY: &str = super::custom::CLASSES_MODELLED;
    if !c.decorators.is_empty() || !matches!(c.bases.as_slice(), [Arg::Positional(_)]) {
        return Some(ONLY);
    }
    let plain = c.body.iter().all(|s| match &s.kind {
        StmtKind::Assign { .. } | StmtKind::Pass => true,
        StmtKind::Expr(e) => matches!(e.kind, ExprKind::Constant(_)),
        _ => false,
    });
    (!plain).then_some(ONLY)
}

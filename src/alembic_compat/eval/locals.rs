//! Which names a function's body makes local. Python decides it once, from the whole body:
//! a name the function binds anywhere (assigned, a loop or `with` target, an `except ... as`
//! name, a `def`, an import, a `del`) is local everywhere in it unless declared `global` or
//! `nonlocal`. Reading it before it is bound raises UnboundLocalError instead of reaching the
//! module's global of the same name, which a lookup by scope chain alone would return.

use std::rc::Rc;

use crate::alembic_compat::script::ast::{Expr, ExprKind, Params, Stmt, StmtKind};

/// The local names of a function with these parameters and body, in first-seen order.
pub(super) fn local_names(params: &Params, body: &[Stmt]) -> Rc<[Rc<str>]> {
    let mut names = Names::default();
    for p in params
        .posonly
        .iter()
        .chain(&params.args)
        .chain(&params.vararg)
        .chain(&params.kwonly)
        .chain(&params.kwarg)
    {
        names.bind(&p.name);
    }
    names.block(body);
    let Names { bound, declared } = names;
    bound
        .into_iter()
        .filter(|n| !declared.iter().any(|d| d == n))
        .map(|n| Rc::from(n.as_str()))
        .collect()
}

#[derive(Default)]
struct Names {
    bound: Vec<String>,
    /// `global` and `nonlocal` names: bound elsewhere.
    declared: Vec<String>,
}

impl Names {
    fn bind(&mut self, name: &str) {
        if !self.bound.iter().any(|b| b == name) {
            self.bound.push(name.to_string());
        }
    }

    fn target(&mut self, target: &Expr) {
        match &target.kind {
            ExprKind::Name(n) => self.bind(n),
            ExprKind::Tuple(elts) | ExprKind::List(elts) => {
                for e in elts {
                    self.target(e);
                }
            }
            ExprKind::Starred(inner) => self.target(inner),
            // `a.b = ...` and `a[i] = ...` bind nothing.
            _ => {}
        }
    }

    fn block(&mut self, body: &[Stmt]) {
        for stmt in body {
            self.statement(stmt);
        }
    }

    /// Nested `def` and `class` bodies are their own scopes: only their names bind here.
    fn statement(&mut self, stmt: &Stmt) {
        match &stmt.kind {
            StmtKind::Assign { targets, .. } | StmtKind::Del(targets) => {
                for t in targets {
                    self.target(t);
                }
            }
            StmtKind::AnnAssign { target, .. }
            | StmtKind::AugAssign { target, .. }
            | StmtKind::For { target, .. } => self.target(target),
            StmtKind::Global(names) | StmtKind::Nonlocal(names) => {
                self.declared.extend(names.iter().map(|n| n.name.clone()))
            }
            StmtKind::Import(aliases) => {
                for a in aliases {
                    match &a.asname {
                        Some(asname) => self.bind(asname),
                        None => self.bind(a.name.split('.').next().unwrap_or(&a.name)),
                    }
                }
            }
            StmtKind::ImportFrom { names, .. } => {
                for a in names {
                    self.bind(a.asname.as_deref().unwrap_or(&a.name));
                }
            }
            StmtKind::With { items, .. } => {
                for t in items.iter().filter_map(|i| i.target.as_ref()) {
                    self.target(t);
                }
            }
            StmtKind::Try { handlers, .. } => {
                for name in handlers.iter().filter_map(|h| h.name.as_ref()) {
                    self.bind(name);
                }
            }
            StmtKind::FunctionDef(def) => self.bind(&def.name),
            StmtKind::ClassDef(def) => self.bind(&def.name),
            _ => {}
        }
        // `(name := value)` binds in the function, from inside a comprehension too.
        for e in super::check::stmt_exprs(stmt) {
            super::check::walk_expr(e, &mut |x| {
                if let ExprKind::NamedExpr { target, .. } = &x.kind {
                    self.bind(target);
                }
            });
        }
        for block in stmt.blocks() {
            self.block(block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alembic_compat::script::parse_module;

    fn locals_of(src: &str) -> Vec<String> {
        let module = parse_module("t.py", src).unwrap();
        let StmtKind::FunctionDef(def) = &module.body[0].kind else {
            panic!("not a def");
        };
        local_names(&def.params, &def.body)
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    #[test]
    fn every_binding_form_makes_a_local_and_declarations_do_not() {
        let src = "def f(a, *b, c=1, **d):\n    global G\n    G = 1\n    x, (y, *z) = 1, (2, 3)\n    \
                   for i in []: pass\n    with open() as w: pass\n    try: pass\n    except E as e: pass\n    \
                   import os.path\n    from m import n as k\n    def g(): h = 1\n    del q\n    t.u = 1\n    v[0] = 1\n    \
                   r += 1\n    s: int\n    if (m := 1) and [n for n in [] if (p := n)]: pass\n";
        assert_eq!(
            locals_of(src),
            [
                "a", "b", "c", "d", "x", "y", "z", "i", "w", "e", "os", "k", "g", "q", "r", "s",
                "m", "p"
            ]
        );
    }
}

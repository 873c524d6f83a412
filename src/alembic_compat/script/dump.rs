//! A canonical S-expression rendering of our AST. `scripts/pyast-dump` renders Python's own
//! `ast` in the same form, so tests can check that we read every file exactly as CPython does.
//! Strings are hex-encoded UTF-8 and floats their IEEE bits, so both sides print them alike.

use std::fmt::Write as _;

use super::ast::*;

pub fn dump_module(m: &Module) -> String {
    let mut out = String::new();
    stmts(&mut out, &m.body);
    out
}

fn stmts(o: &mut String, body: &[Stmt]) {
    o.push('(');
    for (i, s) in body.iter().enumerate() {
        if i > 0 {
            o.push(' ');
        }
        stmt(o, s);
    }
    o.push(')');
}

fn opt(o: &mut String, e: Option<&Expr>) {
    match e {
        Some(e) => expr(o, e),
        None => o.push('-'),
    }
}

fn list(o: &mut String, items: &[Expr]) {
    o.push('(');
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            o.push(' ');
        }
        expr(o, e);
    }
    o.push(')');
}

fn hex(o: &mut String, bytes: &[u8]) {
    o.push('"');
    for b in bytes {
        let _ = write!(o, "{b:02x}");
    }
    o.push('"');
}

fn stmt(o: &mut String, s: &Stmt) {
    match &s.kind {
        StmtKind::Expr(e) => {
            o.push_str("(expr ");
            expr(o, e);
            o.push(')');
        }
        StmtKind::Assign { targets, value } => {
            o.push_str("(assign ");
            list(o, targets);
            o.push(' ');
            expr(o, value);
            o.push(')');
        }
        StmtKind::AnnAssign {
            target,
            annotation,
            value,
        } => {
            o.push_str("(annassign ");
            expr(o, target);
            o.push(' ');
            expr(o, annotation);
            o.push(' ');
            opt(o, value.as_ref());
            o.push(')');
        }
        StmtKind::AugAssign { target, op, value } => {
            o.push_str("(augassign ");
            expr(o, target);
            let _ = write!(o, " {} ", op.symbol());
            expr(o, value);
            o.push(')');
        }
        StmtKind::Pass => o.push_str("(pass)"),
        StmtKind::Break => o.push_str("(break)"),
        StmtKind::Continue => o.push_str("(continue)"),
        StmtKind::Return(v) => {
            o.push_str("(return ");
            opt(o, v.as_ref());
            o.push(')');
        }
        StmtKind::Raise { exc, cause } => {
            o.push_str("(raise ");
            opt(o, exc.as_ref());
            o.push(' ');
            opt(o, cause.as_ref());
            o.push(')');
        }
        StmtKind::Global(names) | StmtKind::Nonlocal(names) => {
            o.push_str(if matches!(s.kind, StmtKind::Global(_)) {
                "(global"
            } else {
                "(nonlocal"
            });
            for n in names {
                let _ = write!(o, " {}", n.name);
            }
            o.push(')');
        }
        StmtKind::Del(targets) => {
            o.push_str("(del ");
            list(o, targets);
            o.push(')');
        }
        StmtKind::Assert { test, msg } => {
            o.push_str("(assert ");
            expr(o, test);
            o.push(' ');
            opt(o, msg.as_ref());
            o.push(')');
        }
        StmtKind::Import(names) => {
            o.push_str("(import");
            aliases(o, names);
            o.push(')');
        }
        StmtKind::ImportFrom {
            level,
            module,
            names,
        } => {
            let _ = write!(o, "(from {level} {}", module.as_deref().unwrap_or("-"));
            if names.is_empty() {
                o.push_str(" *");
            }
            aliases(o, names);
            o.push(')');
        }
        StmtKind::If { test, body, orelse } => {
            o.push_str("(if ");
            expr(o, test);
            o.push(' ');
            stmts(o, body);
            o.push(' ');
            stmts(o, orelse);
            o.push(')');
        }
        StmtKind::For {
            target,
            iter,
            body,
            orelse,
        } => {
            o.push_str("(for ");
            expr(o, target);
            o.push(' ');
            expr(o, iter);
            o.push(' ');
            stmts(o, body);
            o.push(' ');
            stmts(o, orelse);
            o.push(')');
        }
        StmtKind::While { test, body, orelse } => {
            o.push_str("(while ");
            expr(o, test);
            o.push(' ');
            stmts(o, body);
            o.push(' ');
            stmts(o, orelse);
            o.push(')');
        }
        StmtKind::With { items, body } => {
            o.push_str("(with (");
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    o.push(' ');
                }
                o.push('(');
                expr(o, &it.context);
                o.push(' ');
                opt(o, it.target.as_ref());
                o.push(')');
            }
            o.push_str(") ");
            stmts(o, body);
            o.push(')');
        }
        StmtKind::Try {
            body,
            handlers,
            orelse,
            finalbody,
        } => {
            o.push_str("(try ");
            stmts(o, body);
            o.push_str(" (");
            for (i, h) in handlers.iter().enumerate() {
                if i > 0 {
                    o.push(' ');
                }
                o.push_str("(except ");
                opt(o, h.typ.as_ref());
                let _ = write!(o, " {} ", h.name.as_deref().unwrap_or("-"));
                stmts(o, &h.body);
                o.push(')');
            }
            o.push_str(") ");
            stmts(o, orelse);
            o.push(' ');
            stmts(o, finalbody);
            o.push(')');
        }
        StmtKind::FunctionDef(f) => {
            let _ = write!(o, "(def {} ", f.name);
            list(o, &f.decorators);
            o.push(' ');
            params(o, &f.params);
            o.push(' ');
            opt(o, f.returns.as_ref());
            o.push(' ');
            stmts(o, &f.body);
            o.push(')');
        }
        StmtKind::ClassDef(c) => {
            let _ = write!(o, "(class {} ", c.name);
            list(o, &c.decorators);
            o.push(' ');
            call_args(o, &c.bases);
            o.push(' ');
            stmts(o, &c.body);
            o.push(')');
        }
    }
}

fn aliases(o: &mut String, names: &[Alias]) {
    for a in names {
        match &a.asname {
            Some(asname) => {
                let _ = write!(o, " {}={}", a.name, asname);
            }
            None => {
                let _ = write!(o, " {}", a.name);
            }
        }
    }
}

fn params(o: &mut String, p: &Params) {
    fn one(o: &mut String, p: &Param) {
        let _ = write!(o, "(p {} ", p.name);
        opt(o, p.annotation.as_ref());
        o.push(' ');
        opt(o, p.default.as_ref());
        o.push(')');
    }
    fn many(o: &mut String, ps: &[Param]) {
        o.push('(');
        for (i, p) in ps.iter().enumerate() {
            if i > 0 {
                o.push(' ');
            }
            one(o, p);
        }
        o.push(')');
    }
    o.push_str("(params ");
    many(o, &p.posonly);
    o.push(' ');
    many(o, &p.args);
    o.push(' ');
    match &p.vararg {
        Some(v) => one(o, v),
        None => o.push('-'),
    }
    o.push(' ');
    many(o, &p.kwonly);
    o.push(' ');
    match &p.kwarg {
        Some(v) => one(o, v),
        None => o.push('-'),
    }
    o.push(')');
}

/// Python's ast keeps positional (and `*x`) arguments apart from keywords (and `**x`).
fn call_args(o: &mut String, args: &[Arg]) {
    o.push_str("((");
    let mut first = true;
    for a in args {
        let e = match a {
            Arg::Positional(e) => e,
            Arg::Star(e) => {
                if !first {
                    o.push(' ');
                }
                first = false;
                o.push_str("(star ");
                expr(o, e);
                o.push(')');
                continue;
            }
            _ => continue,
        };
        if !first {
            o.push(' ');
        }
        first = false;
        expr(o, e);
    }
    o.push_str(") (");
    let mut first = true;
    for a in args {
        let (name, e) = match a {
            Arg::Keyword { name, value } => (name.as_str(), value),
            Arg::DoubleStar(e) => ("-", e),
            _ => continue,
        };
        if !first {
            o.push(' ');
        }
        first = false;
        let _ = write!(o, "(kw {name} ");
        expr(o, e);
        o.push(')');
    }
    o.push_str("))");
}

fn comps(o: &mut String, gens: &[Comprehension]) {
    o.push('(');
    for (i, g) in gens.iter().enumerate() {
        if i > 0 {
            o.push(' ');
        }
        o.push_str("(comp ");
        expr(o, &g.target);
        o.push(' ');
        expr(o, &g.iter);
        o.push(' ');
        list(o, &g.ifs);
        o.push(')');
    }
    o.push(')');
}

fn fparts(o: &mut String, parts: &[FStringPart]) {
    o.push_str("(fstr");
    for p in parts {
        o.push(' ');
        match p {
            FStringPart::Literal(s) => hex(o, s.as_bytes()),
            FStringPart::Field {
                expr: e,
                conversion,
                spec,
                ..
            } => {
                o.push_str("(field ");
                expr(o, e);
                let _ = write!(
                    o,
                    " {} ",
                    conversion
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into())
                );
                if spec.is_empty() {
                    o.push('-');
                } else {
                    fparts(o, spec);
                }
                o.push(')');
            }
        }
    }
    o.push(')');
}

fn expr(o: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Name(n) => {
            let _ = write!(o, "(name {n})");
        }
        ExprKind::Constant(c) => match c {
            Constant::None => o.push_str("None"),
            Constant::Bool(b) => o.push_str(if *b { "True" } else { "False" }),
            Constant::Int(IntLit::Small(v)) => {
                let _ = write!(o, "{v}");
            }
            Constant::Int(IntLit::Big(s)) => o.push_str(s),
            Constant::Float(f) => {
                let _ = write!(o, "(float {})", f.to_bits());
            }
            Constant::Imag(f) => {
                let _ = write!(o, "(imag {})", f.to_bits());
            }
            Constant::Str(s) => hex(o, s.as_bytes()),
            Constant::Bytes(b) => {
                o.push('b');
                hex(o, b);
            }
            Constant::Ellipsis => o.push_str("..."),
        },
        ExprKind::JoinedStr(parts) => fparts(o, parts),
        ExprKind::Attribute { value, attr } => {
            o.push_str("(attr ");
            expr(o, value);
            let _ = write!(o, " {attr})");
        }
        ExprKind::Subscript { value, index } => {
            o.push_str("(sub ");
            expr(o, value);
            o.push(' ');
            expr(o, index);
            o.push(')');
        }
        ExprKind::Slice { lower, upper, step } => {
            o.push_str("(slice ");
            opt(o, lower.as_deref());
            o.push(' ');
            opt(o, upper.as_deref());
            o.push(' ');
            opt(o, step.as_deref());
            o.push(')');
        }
        ExprKind::Call { func, args } => {
            o.push_str("(call ");
            expr(o, func);
            o.push(' ');
            call_args(o, args);
            o.push(')');
        }
        ExprKind::BinOp { left, op, right } => {
            let _ = write!(o, "(binop {} ", op.symbol());
            expr(o, left);
            o.push(' ');
            expr(o, right);
            o.push(')');
        }
        ExprKind::UnaryOp { op, operand } => {
            let sym = match op {
                UnaryOp::Neg => "-",
                UnaryOp::Pos => "+",
                UnaryOp::Invert => "~",
                UnaryOp::Not => "not",
            };
            let _ = write!(o, "(unary {sym} ");
            expr(o, operand);
            o.push(')');
        }
        ExprKind::BoolOp { op, values } => {
            o.push_str(if *op == BoolOp::And { "(and " } else { "(or " });
            list(o, values);
            o.push(')');
        }
        ExprKind::Compare { left, ops } => {
            o.push_str("(cmp ");
            expr(o, left);
            for (op, right) in ops {
                let sym = match op {
                    CmpOp::Eq => "==",
                    CmpOp::NotEq => "!=",
                    CmpOp::Lt => "<",
                    CmpOp::LtE => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::GtE => ">=",
                    CmpOp::In => "in",
                    CmpOp::NotIn => "notin",
                    CmpOp::Is => "is",
                    CmpOp::IsNot => "isnot",
                };
                let _ = write!(o, " {sym} ");
                expr(o, right);
            }
            o.push(')');
        }
        ExprKind::IfExp { test, body, orelse } => {
            o.push_str("(ifexp ");
            expr(o, test);
            o.push(' ');
            expr(o, body);
            o.push(' ');
            expr(o, orelse);
            o.push(')');
        }
        ExprKind::Lambda { params: p, body } => {
            o.push_str("(lambda ");
            params(o, p);
            o.push(' ');
            expr(o, body);
            o.push(')');
        }
        ExprKind::NamedExpr { target, value } => {
            let _ = write!(o, "(walrus {target} ");
            expr(o, value);
            o.push(')');
        }
        ExprKind::List(items) => {
            o.push_str("(list ");
            list(o, items);
            o.push(')');
        }
        ExprKind::Tuple(items) => {
            o.push_str("(tuple ");
            list(o, items);
            o.push(')');
        }
        ExprKind::Set(items) => {
            o.push_str("(set ");
            list(o, items);
            o.push(')');
        }
        ExprKind::Dict(entries) => {
            o.push_str("(dict");
            for (k, v) in entries {
                o.push_str(" (");
                opt(o, k.as_ref());
                o.push(' ');
                expr(o, v);
                o.push(')');
            }
            o.push(')');
        }
        ExprKind::ListComp { elt, generators }
        | ExprKind::SetComp { elt, generators }
        | ExprKind::GeneratorExp { elt, generators } => {
            let tag = match &e.kind {
                ExprKind::ListComp { .. } => "listcomp",
                ExprKind::SetComp { .. } => "setcomp",
                _ => "genexp",
            };
            let _ = write!(o, "({tag} ");
            expr(o, elt);
            o.push(' ');
            comps(o, generators);
            o.push(')');
        }
        ExprKind::DictComp {
            key,
            value,
            generators,
        } => {
            o.push_str("(dictcomp ");
            expr(o, key);
            o.push(' ');
            expr(o, value);
            o.push(' ');
            comps(o, generators);
            o.push(')');
        }
        ExprKind::Starred(v) => {
            o.push_str("(star ");
            expr(o, v);
            o.push(')');
        }
        ExprKind::Await(v) => {
            o.push_str("(await ");
            expr(o, v);
            o.push(')');
        }
        ExprKind::YieldFrom(v) => {
            o.push_str("(yieldfrom ");
            expr(o, v);
            o.push(')');
        }
        ExprKind::Yield(v) => {
            o.push_str("(yield ");
            opt(o, v.as_deref());
            o.push(')');
        }
    }
}

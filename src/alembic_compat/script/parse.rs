//! Source text -> [`ast::Module`]: runs the pest grammar over the logical view of the file and
//! converts pest pairs into our AST. String literals are decoded here (escapes, prefixes,
//! implicit concatenation, f-strings), so the AST holds values, not source text.

use pest::iterators::{Pair, Pairs};
use pest::Parser as _;
use pest_derive::Parser;

use super::ast::*;
use super::lines::{logical_view, skip_string};
use super::SyntaxError;

#[derive(Parser)]
#[grammar = "alembic_compat/script/grammar.pest"]
struct PyParser;

/// Python refuses deeper bracket nesting ("too many nested parentheses"); keeping the same
/// limit also bounds the parser's recursion.
const MAX_BRACKET_DEPTH: usize = 200;
/// Bound on a statement's indentation in columns. CPython limits levels (100), not columns;
/// real files with deep continuation lines reach a few hundred columns.
const MAX_INDENT_COLUMNS: usize = 4000;

/// Stack size for threads that parse: the grammar recurses about fifteen rules per bracket
/// level, so the deepest accepted file needs more than a default test thread's 2 MiB.
pub const PARSER_STACK_SIZE: usize = 256 * 1024 * 1024;

/// Parses a whole revision file. `path` is only used in error messages.
///
/// Recursion is bounded by the nesting limits above; run it on a thread with
/// [`PARSER_STACK_SIZE`] of stack when the input is untrusted (the script loader does).
pub fn parse_module(path: &str, src: &str) -> Result<Module, SyntaxError> {
    let view = logical_view(src);
    check_nesting(path, src, &view)?;
    let pairs = PyParser::parse(Rule::file, &view).map_err(|e| pest_error(path, src, e))?;
    let conv = Conv { path, src, base: 0 };
    let mut body = Vec::new();
    for pair in pairs.flatten().take(1).flat_map(|p| p.into_inner()) {
        if pair.as_rule() == Rule::statement {
            conv.statement(pair, &mut body)?;
        }
    }
    Ok(Module { body })
}

/// Parses a single expression (used for f-string fields and by tests).
pub fn parse_expression(path: &str, src: &str) -> Result<Expr, SyntaxError> {
    let conv = Conv { path, src, base: 0 };
    conv.sub_expression(src, 0)
}

/// Parses the expression `src[start..end]` with spans and error positions in `src`
/// coordinates (templates embed expressions in other text).
pub fn parse_expression_at(
    path: &str,
    src: &str,
    start: usize,
    end: usize,
) -> Result<Expr, SyntaxError> {
    let conv = Conv { path, src, base: 0 };
    conv.sub_expression(&src[start..end], start)
}

/// Bracket and string structure, checked before the grammar runs so that these common
/// mistakes get CPython's own messages at CPython's positions (and so that nesting, which
/// drives the parser's recursion, is bounded).
fn check_nesting(path: &str, src: &str, view: &str) -> Result<(), SyntaxError> {
    let mut open: Vec<(u8, usize)> = Vec::new();
    let bytes = view.as_bytes();
    let mut i = 0;
    let mut line_start = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' | b'"' => {
                let (end, closed) = skip_string(bytes, i);
                let triple = bytes.get(i + 1) == Some(&b) && bytes.get(i + 2) == Some(&b);
                if !closed {
                    // Python points at the start of the literal, prefix included.
                    let mut start = i;
                    while start > line_start && bytes[start - 1].is_ascii_alphabetic() {
                        start -= 1;
                    }
                    let index = super::lines::LineIndex::new(src);
                    let at_line = index
                        .line_col(src, end.min(src.len()).saturating_sub(usize::from(!triple)))
                        .0;
                    let what = if triple {
                        "unterminated triple-quoted string literal"
                    } else {
                        "unterminated string literal"
                    };
                    return Err(SyntaxError::at(
                        path,
                        src,
                        start,
                        &format!("{what} (detected at line {at_line})"),
                    ));
                }
                i = end;
                continue;
            }
            b'(' | b'[' | b'{' => {
                open.push((b, i));
                if open.len() > MAX_BRACKET_DEPTH {
                    return Err(SyntaxError::at(path, src, i, "too many nested parentheses"));
                }
            }
            b')' | b']' | b'}' => {
                let want = match b {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                match open.pop() {
                    None => {
                        return Err(SyntaxError::at(
                            path,
                            src,
                            i,
                            &format!("unmatched '{}'", b as char),
                        ))
                    }
                    Some((o, _)) if o != want => {
                        return Err(SyntaxError::at(
                            path,
                            src,
                            i,
                            &format!(
                                "closing parenthesis '{}' does not match opening parenthesis '{}'",
                                b as char, o as char
                            ),
                        ))
                    }
                    Some(_) => {}
                }
            }
            b'\n' => {
                line_start = i + 1;
                let rest = &view[i + 1..];
                let indent = rest.len() - rest.trim_start_matches([' ', '\t']).len();
                // Columns bound levels (each level adds at least one): a cheap check that keeps
                // the block recursion far inside the parser's stack.
                if indent > MAX_INDENT_COLUMNS {
                    return Err(SyntaxError::at(
                        path,
                        src,
                        i + 1,
                        "too many levels of indentation",
                    ));
                }
            }
            _ => {}
        }
        i += 1;
    }
    if let Some((o, at)) = open.first() {
        return Err(SyntaxError::at(
            path,
            src,
            *at,
            &format!("'{}' was never closed", *o as char),
        ));
    }
    Ok(())
}

/// Human names for the rules that show up in "expected ..." messages.
fn rule_name(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        EOI => "end of file",
        statement | simple_line | compound_stmt | simple_stmt | simple_stmts | expr_stmt => {
            "a statement"
        }
        block => "an indented block",
        indent => "an indented block",
        test | ternary | or_test | and_test | not_test | comparison | bitor_expr | unary_seq
        | power | primary | named_test | testlist_star | star_expr | lambdef | positional_arg
        | seq_body | dict_body | dict_pair | kwarg | star_arg | double_star_arg | unary_op
        | walrus | not_op | slice | slice_part | target_list | yield_like => "an expression",
        name | dotted_name | import_module => "a name",
        strings | string | string_prefix => "a string",
        number | int_lit | float_lit => "a number",
        comp_op | op_not_in | op_is_not => "a comparison operator",
        bin_op => "an operator",
        call => "'('",
        subscript => "'['",
        attribute => "'.'",
        trailing_comma => "','",
        aug_op | annassign | augassign | assign_rhs => "'='",
        comp_for | comp_clause => "'for'",
        comp_if => "'if'",
        else_clause | else_head => "'else'",
        except_clause | except_head => "'except'",
        finally_clause | finally_head => "'finally'",
        body_dq | body_sq | body_tdq | body_tsq => "the end of the string",
        _ => return None,
    })
}

fn pest_error(path: &str, src: &str, e: pest::error::Error<Rule>) -> SyntaxError {
    use pest::error::{ErrorVariant, InputLocation};
    let offset = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let message = match &e.variant {
        ErrorVariant::ParsingError { .. } if at_line_indent(src, offset) => {
            "unexpected indent".to_string()
        }
        ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
            names.sort_unstable();
            names.dedup();
            let at = describe_at(src, offset);
            if names.is_empty() {
                format!("invalid syntax at {at}")
            } else {
                format!("invalid syntax at {at}: expected {}", join_or(&names))
            }
        }
        ErrorVariant::CustomError { message } => message.clone(),
    };
    SyntaxError::at(path, src, offset, &message)
}

/// True when the error is at the first token of a line indented deeper than the previous
/// statement line, which does not open a block: CPython's "unexpected indent".
fn at_line_indent(src: &str, offset: usize) -> bool {
    let offset = offset.min(src.len());
    let line_start = src[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = &src[line_start..];
    let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
    if offset > line_start + indent || indent == 0 {
        return false;
    }
    let previous = src[..line_start]
        .lines()
        .rev()
        .map(|l| l.trim_end())
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    match previous {
        None => true,
        Some(prev) => {
            let prev_indent = prev.len() - prev.trim_start_matches([' ', '\t']).len();
            indent > prev_indent
                && !prev.ends_with(':')
                && !prev.ends_with('\\')
                && !prev.ends_with(['(', '[', '{', ','])
        }
    }
}

fn describe_at(src: &str, offset: usize) -> String {
    let rest = src.get(offset..).unwrap_or("");
    match rest.chars().next() {
        None => "end of file".to_string(),
        Some('\n') | Some('\r') => "end of line".to_string(),
        Some(c) if c.is_whitespace() => "whitespace".to_string(),
        Some(_) => {
            let token: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(20)
                .collect();
            format!("'{token}'")
        }
    }
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

type R<T> = Result<T, SyntaxError>;

struct Conv<'a> {
    path: &'a str,
    /// The whole file (for error positions).
    src: &'a str,
    /// Offset of the parsed text within `src` (non-zero for f-string fields).
    base: usize,
}

/// The pair's children, for rules whose shape the grammar guarantees.
fn kids(pair: Pair<'_, Rule>) -> Vec<Pair<'_, Rule>> {
    pair.into_inner().collect()
}

impl<'a> Conv<'a> {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.base + s.start(), self.base + s.end())
    }

    fn err<T>(&self, pair: &Pair<'_, Rule>, msg: &str) -> R<T> {
        Err(SyntaxError::at(
            self.path,
            self.src,
            self.base + pair.as_span().start(),
            msg,
        ))
    }

    /// The grammar promised a child here; if it is missing, report a positioned error rather
    /// than panic (this only happens if grammar and converter disagree).
    fn need<'p>(&self, at: &Pair<'p, Rule>, next: Option<Pair<'p, Rule>>) -> R<Pair<'p, Rule>> {
        match next {
            Some(p) => Ok(p),
            None => self.err(at, "internal parser error: unexpected shape"),
        }
    }

    // ------------------------------------------------------------ statements

    fn statement(&self, pair: Pair<'_, Rule>, out: &mut Vec<Stmt>) -> R<()> {
        let inner = self.need(&pair, pair.clone().into_inner().next())?;
        match inner.as_rule() {
            Rule::simple_line => self.simple_line(inner, out),
            Rule::compound_stmt => {
                let c = self.need(&inner, inner.clone().into_inner().next())?;
                out.push(self.compound(c, Vec::new())?);
                Ok(())
            }
            _ => self.err(&inner, "internal parser error: statement"),
        }
    }

    fn simple_line(&self, pair: Pair<'_, Rule>, out: &mut Vec<Stmt>) -> R<()> {
        for stmts in pair.into_inner() {
            for s in stmts.into_inner() {
                if s.as_rule() == Rule::simple_stmt {
                    out.push(self.simple_stmt(s)?);
                }
            }
        }
        Ok(())
    }

    fn block(&self, pair: Pair<'_, Rule>) -> R<Vec<Stmt>> {
        let mut out = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::simple_line => self.simple_line(p, &mut out)?,
                Rule::statement => self.statement(p, &mut out)?,
                _ => {}
            }
        }
        Ok(out)
    }

    fn compound(&self, pair: Pair<'_, Rule>, decorators: Vec<Expr>) -> R<Stmt> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let parts = kids(pair.clone());
        let kind = match rule {
            Rule::if_stmt => {
                // if_head block (elif_head block)* else_clause?
                let mut conds: Vec<(Expr, Vec<Stmt>)> = Vec::new();
                let mut orelse = Vec::new();
                let mut it = parts.into_iter();
                while let Some(p) = it.next() {
                    match p.as_rule() {
                        Rule::if_head | Rule::elif_head => {
                            let test = self.head_expr(&p)?;
                            let body = self.block(self.need(&p, it.next())?)?;
                            conds.push((test, body));
                        }
                        Rule::else_clause => orelse = self.else_body(p)?,
                        _ => {}
                    }
                }
                // Fold elifs into nested Ifs, as Python's ast does.
                let mut folded: Option<Stmt> = None;
                while let Some((test, body)) = conds.pop() {
                    let else_part = match folded.take() {
                        Some(s) => vec![s],
                        None => std::mem::take(&mut orelse),
                    };
                    let s = Span::new(test.span.start as usize, span.end as usize);
                    folded = Some(Stmt {
                        kind: StmtKind::If {
                            test,
                            body,
                            orelse: else_part,
                        },
                        span: s,
                    });
                }
                return match folded {
                    Some(mut s) => {
                        s.span = span;
                        Ok(s)
                    }
                    None => self.err(&pair, "internal parser error: if"),
                };
            }
            Rule::for_stmt => {
                let mut it = parts.into_iter();
                let head = self.need(&pair, it.next())?;
                let mut h = head.into_inner().filter(|p| !is_kw(p));
                let target = self.target_list(self.need(&pair, h.next())?)?;
                let iter = self.testlist(self.need(&pair, h.next())?)?;
                let body = self.block(self.need(&pair, it.next())?)?;
                let orelse = match it.next() {
                    Some(e) => self.else_body(e)?,
                    None => Vec::new(),
                };
                StmtKind::For {
                    target,
                    iter,
                    body,
                    orelse,
                }
            }
            Rule::while_stmt => {
                let mut it = parts.into_iter();
                let head = self.need(&pair, it.next())?;
                let test = self.head_expr(&head)?;
                let body = self.block(self.need(&pair, it.next())?)?;
                let orelse = match it.next() {
                    Some(e) => self.else_body(e)?,
                    None => Vec::new(),
                };
                StmtKind::While { test, body, orelse }
            }
            Rule::with_stmt => {
                let mut it = parts.into_iter();
                let head = self.need(&pair, it.next())?;
                let mut items = Vec::new();
                for item in head.into_inner().filter(|p| p.as_rule() == Rule::with_item) {
                    let mut w = item.clone().into_inner().filter(|p| !is_kw(p));
                    let context = self.expr(self.need(&item, w.next())?)?;
                    let target = match w.next() {
                        Some(t) => Some(self.expr(t)?),
                        None => None,
                    };
                    items.push(WithItem { context, target });
                }
                let body = self.block(self.need(&pair, it.next())?)?;
                StmtKind::With { items, body }
            }
            Rule::try_stmt => {
                let mut it = parts.into_iter();
                let _head = self.need(&pair, it.next())?;
                let body = self.block(self.need(&pair, it.next())?)?;
                let mut handlers = Vec::new();
                let mut orelse = Vec::new();
                let mut finalbody = Vec::new();
                for clause in it {
                    match clause.as_rule() {
                        Rule::except_clause => handlers.push(self.except_clause(clause)?),
                        Rule::else_clause => orelse = self.else_body(clause)?,
                        Rule::finally_clause => {
                            let b = clause
                                .clone()
                                .into_inner()
                                .find(|p| p.as_rule() == Rule::block);
                            finalbody = self.block(self.need(&clause, b)?)?;
                        }
                        _ => {}
                    }
                }
                StmtKind::Try {
                    body,
                    handlers,
                    orelse,
                    finalbody,
                }
            }
            Rule::funcdef => {
                let mut it = parts.into_iter();
                let head = self.need(&pair, it.next())?;
                let mut name = String::new();
                let mut params = Params::default();
                let mut returns = None;
                for p in head.into_inner() {
                    match p.as_rule() {
                        Rule::name if name.is_empty() => name = p.as_str().to_string(),
                        Rule::parameters => params = self.parameters(p)?,
                        Rule::test => returns = Some(self.expr(p)?),
                        _ => {}
                    }
                }
                let body = self.block(self.need(&pair, it.next())?)?;
                StmtKind::FunctionDef(std::sync::Arc::new(FunctionDef {
                    name,
                    params: std::sync::Arc::new(params),
                    returns,
                    decorators,
                    body: std::sync::Arc::new(body),
                    span,
                }))
            }
            Rule::classdef => {
                let mut it = parts.into_iter();
                let head = self.need(&pair, it.next())?;
                let mut name = String::new();
                let mut bases = Vec::new();
                for p in head.into_inner() {
                    match p.as_rule() {
                        Rule::name => name = p.as_str().to_string(),
                        Rule::arglist => bases = self.arglist(p)?,
                        _ => {}
                    }
                }
                let body = self.block(self.need(&pair, it.next())?)?;
                StmtKind::ClassDef(std::sync::Arc::new(ClassDef {
                    name,
                    bases,
                    decorators,
                    body,
                    span,
                }))
            }
            Rule::decorated => {
                let mut decorators = Vec::new();
                let mut def = None;
                for p in parts {
                    match p.as_rule() {
                        Rule::decorator => {
                            let line = self.need(&p, p.clone().into_inner().next())?;
                            decorators.push(self.head_expr(&line)?);
                        }
                        _ => def = Some(p),
                    }
                }
                let def = self.need(&pair, def)?;
                let mut stmt = self.compound(def, decorators)?;
                stmt.span = span;
                return Ok(stmt);
            }
            _ => return self.err(&pair, "internal parser error: compound statement"),
        };
        Ok(Stmt { kind, span })
    }

    /// The expression of a header such as `if x:` / `while x:` / `@decorator`.
    fn head_expr(&self, head: &Pair<'_, Rule>) -> R<Expr> {
        let e = head.clone().into_inner().find(|p| !is_kw(p));
        self.expr(self.need(head, e)?)
    }

    fn else_body(&self, clause: Pair<'_, Rule>) -> R<Vec<Stmt>> {
        let b = clause
            .clone()
            .into_inner()
            .find(|p| p.as_rule() == Rule::block);
        self.block(self.need(&clause, b)?)
    }

    fn except_clause(&self, clause: Pair<'_, Rule>) -> R<ExceptHandler> {
        let span = self.span(&clause);
        let mut typ = None;
        let mut name = None;
        let mut body = Vec::new();
        for p in clause.into_inner() {
            match p.as_rule() {
                Rule::except_head => {
                    for h in p.into_inner() {
                        match h.as_rule() {
                            Rule::test => typ = Some(self.expr(h)?),
                            Rule::name => name = Some(h.as_str().to_string()),
                            _ => {}
                        }
                    }
                }
                Rule::block => body = self.block(p)?,
                _ => {}
            }
        }
        Ok(ExceptHandler {
            typ,
            name,
            body,
            span,
        })
    }

    fn parameters(&self, pair: Pair<'_, Rule>) -> R<Params> {
        let mut params = Params::default();
        let mut seen_star = false;
        for item in pair.into_inner() {
            let p = self.need(&item, item.clone().into_inner().next())?;
            let span = self.span(&p);
            let rule = p.as_rule();
            let mut name = String::new();
            let mut annotation = None;
            let mut default = None;
            for c in p.clone().into_inner() {
                match c.as_rule() {
                    Rule::name => name = c.as_str().to_string(),
                    Rule::param_annotation | Rule::param_default => {
                        let e = self.expr(self.need(&c, c.clone().into_inner().next())?)?;
                        if c.as_rule() == Rule::param_default {
                            default = Some(e);
                        } else {
                            annotation = Some(e);
                        }
                    }
                    _ => {}
                }
            }
            let param = Param {
                name,
                annotation,
                default,
                span,
            };
            match rule {
                Rule::param_slash => {
                    params.posonly = std::mem::take(&mut params.args);
                }
                Rule::param_varargs | Rule::lambda_varargs => {
                    seen_star = true;
                    if !param.name.is_empty() {
                        params.vararg = Some(param);
                    }
                }
                Rule::param_kwargs | Rule::lambda_kwargs => params.kwarg = Some(param),
                _ if seen_star => params.kwonly.push(param),
                _ => params.args.push(param),
            }
        }
        Ok(params)
    }

    fn simple_stmt(&self, pair: Pair<'_, Rule>) -> R<Stmt> {
        let span = self.span(&pair);
        let inner = self.need(&pair, pair.clone().into_inner().next())?;
        let rule = inner.as_rule();
        let parts: Vec<Pair<'_, Rule>> = inner.clone().into_inner().filter(|p| !is_kw(p)).collect();
        let kind = match rule {
            Rule::pass_stmt => StmtKind::Pass,
            Rule::break_stmt => StmtKind::Break,
            Rule::continue_stmt => StmtKind::Continue,
            Rule::return_stmt => match parts.into_iter().next() {
                Some(p) => StmtKind::Return(Some(self.testlist(p)?)),
                None => StmtKind::Return(None),
            },
            Rule::raise_stmt => {
                let mut it = parts.into_iter();
                let exc = it.next().map(|p| self.expr(p)).transpose()?;
                let cause = it.next().map(|p| self.expr(p)).transpose()?;
                StmtKind::Raise { exc, cause }
            }
            Rule::global_stmt | Rule::nonlocal_stmt => {
                let names = parts
                    .iter()
                    .map(|p| Ident {
                        name: p.as_str().to_string(),
                        span: self.span(p),
                    })
                    .collect();
                if rule == Rule::global_stmt {
                    StmtKind::Global(names)
                } else {
                    StmtKind::Nonlocal(names)
                }
            }
            Rule::del_stmt => {
                let t = self.need(&inner, parts.into_iter().next())?;
                let targets = t
                    .into_inner()
                    .filter(|p| p.as_rule() != Rule::trailing_comma);
                StmtKind::Del(targets.map(|p| self.expr(p)).collect::<R<_>>()?)
            }
            Rule::assert_stmt => {
                let mut it = parts.into_iter();
                let test = self.expr(self.need(&inner, it.next())?)?;
                let msg = it.next().map(|p| self.expr(p)).transpose()?;
                StmtKind::Assert { test, msg }
            }
            Rule::import_name => {
                let mut names = Vec::new();
                for d in parts {
                    let aspan = self.span(&d);
                    let mut it = d.into_inner().filter(|p| !is_kw(p));
                    let dotted = it.next().map(|p| dotted(p.as_str())).unwrap_or_default();
                    let asname = it.next().map(|p| p.as_str().to_string());
                    names.push(Alias {
                        name: dotted,
                        asname,
                        span: aspan,
                    });
                }
                StmtKind::Import(names)
            }
            Rule::import_from => {
                let mut it = parts.into_iter();
                let module_pair = self.need(&inner, it.next())?;
                let mut level = 0u32;
                let mut module = None;
                for m in module_pair.into_inner() {
                    match m.as_rule() {
                        Rule::import_dots => level = m.as_str().len() as u32,
                        Rule::dotted_name => module = Some(dotted(m.as_str())),
                        _ => {}
                    }
                }
                let mut names = Vec::new();
                if let Some(list) = it.next() {
                    if list.as_rule() == Rule::import_as_names {
                        for a in list.into_inner() {
                            let aspan = self.span(&a);
                            let mut ai = a.into_inner().filter(|p| !is_kw(p));
                            let name = ai
                                .next()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default();
                            let asname = ai.next().map(|p| p.as_str().to_string());
                            names.push(Alias {
                                name,
                                asname,
                                span: aspan,
                            });
                        }
                    }
                }
                StmtKind::ImportFrom {
                    level,
                    module,
                    names,
                }
            }
            Rule::expr_stmt => self.expr_stmt(inner)?,
            Rule::yield_stmt => StmtKind::Expr(
                self.yield_expr(self.need(&inner, inner.clone().into_inner().next())?)?,
            ),
            _ => return self.err(&inner, "internal parser error: simple statement"),
        };
        Ok(Stmt { kind, span })
    }

    fn expr_stmt(&self, pair: Pair<'_, Rule>) -> R<StmtKind> {
        let mut it = pair.clone().into_inner();
        let first = self.need(&pair, it.next())?;
        let first_expr = self.testlist(first)?;
        let rest: Vec<Pair<'_, Rule>> = it.collect();
        match rest.first().map(|p| p.as_rule()) {
            None => Ok(StmtKind::Expr(first_expr)),
            Some(Rule::annassign) => {
                let mut a = rest[0].clone().into_inner();
                let annotation = self.expr(self.need(&rest[0], a.next())?)?;
                let value = a.next().map(|p| self.testlist(p)).transpose()?;
                Ok(StmtKind::AnnAssign {
                    target: first_expr,
                    annotation,
                    value,
                })
            }
            Some(Rule::augassign) => {
                let mut a = rest[0].clone().into_inner();
                let op_pair = self.need(&rest[0], a.next())?;
                let op_text = op_pair.as_str().trim_end_matches('=');
                let Some((op, ..)) = BinOp::from_text(op_text) else {
                    return self.err(&op_pair, "unknown augmented assignment operator");
                };
                let value = self.testlist(self.need(&rest[0], a.next())?)?;
                Ok(StmtKind::AugAssign {
                    target: first_expr,
                    op,
                    value,
                })
            }
            Some(_) => {
                let mut exprs = vec![first_expr];
                for r in rest {
                    let v = self.need(&r, r.clone().into_inner().next())?;
                    exprs.push(self.testlist(v)?);
                }
                let value = exprs.pop().ok_or_else(|| {
                    SyntaxError::at(
                        self.path,
                        self.src,
                        self.base,
                        "internal parser error: assignment",
                    )
                })?;
                Ok(StmtKind::Assign {
                    targets: exprs,
                    value,
                })
            }
        }
    }

    // ------------------------------------------------------------ expressions

    /// `testlist_star` / `target_list`: a tuple when there is a comma, else the one element.
    fn testlist(&self, pair: Pair<'_, Rule>) -> R<Expr> {
        if pair.as_rule() == Rule::yield_like {
            return self.yield_expr(pair);
        }
        let span = self.span(&pair);
        let mut items = Vec::new();
        let mut comma = false;
        for p in pair.into_inner() {
            if p.as_rule() == Rule::trailing_comma {
                comma = true;
            } else {
                items.push(self.expr(p)?);
            }
        }
        if items.len() == 1 && !comma {
            Ok(items.remove(0))
        } else {
            Ok(Expr {
                kind: ExprKind::Tuple(items),
                span,
            })
        }
    }

    fn target_list(&self, pair: Pair<'_, Rule>) -> R<Expr> {
        self.testlist(pair)
    }

    fn expr(&self, pair: Pair<'_, Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mk = |kind| Ok(Expr { kind, span });
        match rule {
            Rule::testlist_star | Rule::target_list => self.testlist(pair),
            Rule::yield_like => self.yield_expr(pair),
            Rule::test => self.expr(self.need(&pair, pair.clone().into_inner().next())?),
            Rule::ternary => {
                let mut it = pair.clone().into_inner().filter(|p| !is_kw(p));
                let body = self.expr(self.need(&pair, it.next())?)?;
                match it.next() {
                    None => Ok(body),
                    Some(t) => {
                        let test = self.expr(t)?;
                        let orelse = self.expr(self.need(&pair, it.next())?)?;
                        mk(ExprKind::IfExp {
                            test: Box::new(test),
                            body: Box::new(body),
                            orelse: Box::new(orelse),
                        })
                    }
                }
            }
            Rule::or_test | Rule::and_test => {
                let mut values: Vec<Expr> = pair
                    .clone()
                    .into_inner()
                    .filter(|p| !is_kw(p))
                    .map(|p| self.expr(p))
                    .collect::<R<_>>()?;
                if values.len() == 1 {
                    return Ok(values.remove(0));
                }
                let op = if rule == Rule::or_test {
                    BoolOp::Or
                } else {
                    BoolOp::And
                };
                mk(ExprKind::BoolOp { op, values })
            }
            Rule::not_test => self.expr(self.need(&pair, pair.clone().into_inner().next())?),
            Rule::not_op => {
                let operand = pair.clone().into_inner().find(|p| !is_kw(p));
                let operand = self.expr(self.need(&pair, operand)?)?;
                mk(ExprKind::UnaryOp {
                    op: UnaryOp::Not,
                    operand: Box::new(operand),
                })
            }
            Rule::comparison => {
                let mut it = pair.clone().into_inner();
                let left = self.expr(self.need(&pair, it.next())?)?;
                let mut ops = Vec::new();
                while let Some(op) = it.next() {
                    let cmp = cmp_op(&op);
                    let right = self.expr(self.need(&op, it.next())?)?;
                    ops.push((cmp, right));
                }
                if ops.is_empty() {
                    return Ok(left);
                }
                mk(ExprKind::Compare {
                    left: Box::new(left),
                    ops,
                })
            }
            Rule::bitor_expr => self.fold_arith(pair),
            Rule::unary_seq => self.fold_arith_seq(vec![pair]),
            Rule::power => {
                let mut it = pair.clone().into_inner();
                let first = self.need(&pair, it.next())?;
                if first.as_rule() == Rule::kw_await {
                    let inner = self.expr(self.need(&pair, it.next())?)?;
                    return mk(ExprKind::Await(Box::new(inner)));
                }
                self.expr(first)
            }
            Rule::primary => self.primary(pair),
            Rule::slice => {
                let mut parts = Vec::with_capacity(3);
                for part in pair.clone().into_inner() {
                    parts.push(
                        part.into_inner()
                            .next()
                            .map(|t| self.expr(t).map(Box::new))
                            .transpose()?,
                    );
                }
                let mut parts = parts.into_iter();
                mk(ExprKind::Slice {
                    lower: parts.next().flatten(),
                    upper: parts.next().flatten(),
                    step: parts.next().flatten(),
                })
            }
            Rule::star_expr => {
                let inner = self.expr(self.need(&pair, pair.clone().into_inner().next())?)?;
                mk(ExprKind::Starred(Box::new(inner)))
            }
            Rule::walrus => {
                let mut it = pair.clone().into_inner();
                let target = self.need(&pair, it.next())?.as_str().to_string();
                let value = self.expr(self.need(&pair, it.next())?)?;
                mk(ExprKind::NamedExpr {
                    target,
                    value: Box::new(value),
                })
            }
            Rule::lambdef | Rule::lambdef_nocond => {
                let mut params = Params::default();
                let mut body = None;
                for p in pair.clone().into_inner() {
                    match p.as_rule() {
                        Rule::lambda_params => params = self.parameters(p)?,
                        Rule::kw_lambda => {}
                        _ => body = Some(self.expr(p)?),
                    }
                }
                let body = match body {
                    Some(b) => b,
                    None => return self.err(&pair, "lambda without a body"),
                };
                mk(ExprKind::Lambda {
                    params: std::sync::Arc::new(params),
                    body: std::sync::Arc::new(body),
                })
            }
            _ => self.atom(pair),
        }
    }

    fn yield_expr(&self, pair: Pair<'_, Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let kind = match pair.into_inner().find(|p| !is_kw(p)) {
            None => ExprKind::Yield(None),
            Some(p) if p.as_rule() == Rule::yield_from => {
                let e = p.clone().into_inner().find(|c| !is_kw(c));
                ExprKind::YieldFrom(Box::new(self.expr(self.need(&p, e)?)?))
            }
            Some(p) => ExprKind::Yield(Some(Box::new(self.testlist(p)?))),
        };
        Ok(Expr { kind, span })
    }

    fn fold_arith(&self, pair: Pair<'_, Rule>) -> R<Expr> {
        self.fold_arith_seq(pair.into_inner().collect())
    }

    /// Precedence climbing over `unary_seq (bin_op unary_seq)*`.
    fn fold_arith_seq(&self, parts: Vec<Pair<'_, Rule>>) -> R<Expr> {
        enum Tok {
            Prefix(UnaryOp, usize),
            Operand(Expr),
            Op(BinOp, u8, bool),
        }
        let mut toks = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::bin_op => match BinOp::from_text(p.as_str()) {
                    Some((op, prec, right)) => toks.push(Tok::Op(op, prec, right)),
                    None => return self.err(&p, "unknown operator"),
                },
                Rule::unary_seq => {
                    for u in p.into_inner() {
                        if u.as_rule() == Rule::unary_op {
                            let op = match u.as_str() {
                                "-" => UnaryOp::Neg,
                                "+" => UnaryOp::Pos,
                                _ => UnaryOp::Invert,
                            };
                            toks.push(Tok::Prefix(op, self.base + u.as_span().start()));
                        } else {
                            toks.push(Tok::Operand(self.expr(u)?));
                        }
                    }
                }
                _ => toks.push(Tok::Operand(self.expr(p)?)),
            }
        }
        type Toks = std::iter::Peekable<std::vec::IntoIter<Tok>>;
        let mut toks: Toks = toks.into_iter().peekable();

        fn climb(toks: &mut Toks, min_prec: u8) -> Option<Expr> {
            let lhs = operand(toks)?;
            extend(toks, lhs, min_prec)
        }
        /// Folds every following operator that binds at least as tight as `min_prec` into
        /// `lhs`; shared by plain operands and by the operand under a prefix operator.
        fn extend(toks: &mut Toks, mut lhs: Expr, min_prec: u8) -> Option<Expr> {
            while let Some(Tok::Op(_, prec, _)) = toks.peek() {
                if *prec < min_prec {
                    break;
                }
                let Some(Tok::Op(op, prec, right)) = toks.next() else {
                    break;
                };
                let next_min = if right { prec } else { prec + 1 };
                let rhs = climb(toks, next_min)?;
                let span = Span {
                    start: lhs.span.start,
                    end: rhs.span.end,
                };
                lhs = Expr {
                    kind: ExprKind::BinOp {
                        left: Box::new(lhs),
                        op,
                        right: Box::new(rhs),
                    },
                    span,
                };
            }
            Some(lhs)
        }
        fn operand(toks: &mut Toks) -> Option<Expr> {
            // Prefix operators apply to everything that binds tighter than them (`**`), so
            // collect them and wrap once the operand is known, without recursion per prefix.
            let mut prefixes = Vec::new();
            while let Some(Tok::Prefix(..)) = toks.peek() {
                if let Some(Tok::Prefix(op, at)) = toks.next() {
                    prefixes.push((op, at));
                }
            }
            let mut e = match toks.next()? {
                Tok::Operand(e) => e,
                _ => return None,
            };
            if !prefixes.is_empty() {
                e = extend(toks, e, UNARY_PRECEDENCE + 1)?;
                for (op, at) in prefixes.into_iter().rev() {
                    let span = Span::new(at, e.span.end as usize);
                    e = Expr {
                        kind: ExprKind::UnaryOp {
                            op,
                            operand: Box::new(e),
                        },
                        span,
                    };
                }
            }
            Some(e)
        }
        match climb(&mut toks, 0) {
            Some(e) => Ok(e),
            None => Err(SyntaxError::at(
                self.path,
                self.src,
                self.base,
                "internal parser error: expression",
            )),
        }
    }

    fn primary(&self, pair: Pair<'_, Rule>) -> R<Expr> {
        let mut it = pair.clone().into_inner();
        let mut e = self.expr(self.need(&pair, it.next())?)?;
        for trailer in it {
            let end = self.base + trailer.as_span().end();
            let span = Span::new(e.span.start as usize, end);
            let kind = match trailer.as_rule() {
                Rule::call => {
                    let args = match trailer.into_inner().next() {
                        Some(list) => self.arglist(list)?,
                        None => Vec::new(),
                    };
                    ExprKind::Call {
                        func: Box::new(e),
                        args,
                    }
                }
                Rule::attribute => {
                    let name = trailer.clone().into_inner().next();
                    let attr = self.need(&trailer, name)?.as_str().to_string();
                    ExprKind::Attribute {
                        value: Box::new(e),
                        attr,
                    }
                }
                Rule::subscript => {
                    let tspan = self.span(&trailer);
                    let mut items = Vec::new();
                    let mut comma = false;
                    for p in trailer.into_inner() {
                        if p.as_rule() == Rule::trailing_comma {
                            comma = true;
                        } else {
                            items.push(self.expr(p)?);
                        }
                    }
                    let starred =
                        matches!(items.first().map(|e| &e.kind), Some(ExprKind::Starred(_)));
                    let index = if items.len() == 1 && !comma && !starred {
                        items.remove(0)
                    } else {
                        Expr {
                            kind: ExprKind::Tuple(items),
                            span: tspan,
                        }
                    };
                    ExprKind::Subscript {
                        value: Box::new(e),
                        index: Box::new(index),
                    }
                }
                _ => return self.err(&trailer, "internal parser error: trailer"),
            };
            e = Expr { kind, span };
        }
        Ok(e)
    }

    fn arglist(&self, pair: Pair<'_, Rule>) -> R<Vec<Arg>> {
        let mut args = Vec::new();
        // CPython reports these ordering errors at the token after the arguments (the `)`).
        let after = self.base + pair.as_span().end();
        let closing = self.src[after.min(self.src.len())..]
            .find(')')
            .map_or(after, |i| after + i);
        let order_error = |msg: &str| Err(SyntaxError::at(self.path, self.src, closing, msg));
        let (mut keyword, mut double_star) = (false, false);
        for a in pair.into_inner() {
            match a.as_rule() {
                Rule::positional_arg if double_star => {
                    return order_error("positional argument follows keyword argument unpacking")
                }
                Rule::positional_arg if keyword => {
                    return order_error("positional argument follows keyword argument")
                }
                Rule::star_arg if double_star => {
                    return order_error(
                        "iterable argument unpacking follows keyword argument unpacking",
                    )
                }
                Rule::kwarg => keyword = true,
                Rule::double_star_arg => double_star = true,
                _ => {}
            }
            let rule = a.as_rule();
            let mut it = a.clone().into_inner();
            let arg = match rule {
                Rule::kwarg => {
                    let name = self.need(&a, it.next())?.as_str().to_string();
                    Arg::Keyword {
                        name,
                        value: self.expr(self.need(&a, it.next())?)?,
                    }
                }
                Rule::star_arg => Arg::Star(self.expr(self.need(&a, it.next())?)?),
                Rule::double_star_arg => Arg::DoubleStar(self.expr(self.need(&a, it.next())?)?),
                Rule::positional_arg => {
                    let e = self.expr(self.need(&a, it.next())?)?;
                    match it.next() {
                        Some(comp) => {
                            let generators = self.comp_for(comp)?;
                            Arg::Positional(Expr {
                                kind: ExprKind::GeneratorExp {
                                    elt: Box::new(e),
                                    generators,
                                },
                                span: self.span(&a),
                            })
                        }
                        None => Arg::Positional(e),
                    }
                }
                _ => return self.err(&a, "internal parser error: argument"),
            };
            args.push(arg);
        }
        Ok(args)
    }

    fn comp_for(&self, pair: Pair<'_, Rule>) -> R<Vec<Comprehension>> {
        let mut gens = Vec::new();
        for clause in pair.into_inner() {
            let mut parts = clause.clone().into_inner().filter(|p| !is_kw(p));
            let target = self.target_list(self.need(&clause, parts.next())?)?;
            let iter = self.expr(self.need(&clause, parts.next())?)?;
            let mut ifs = Vec::new();
            for c in parts {
                let cond = c.clone().into_inner().find(|p| !is_kw(p));
                ifs.push(self.expr(self.need(&c, cond)?)?);
            }
            gens.push(Comprehension { target, iter, ifs });
        }
        Ok(gens)
    }

    /// `seq_body` inside (), [] or {}: the elements and, if present, a comprehension.
    fn seq_body(&self, pair: Pair<'_, Rule>) -> R<(Vec<Expr>, bool, Option<Vec<Comprehension>>)> {
        let mut items = Vec::new();
        let mut comma = false;
        let mut comp = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::trailing_comma => comma = true,
                Rule::comp_for => comp = Some(self.comp_for(p)?),
                _ => items.push(self.expr(p)?),
            }
        }
        Ok((items, comma, comp))
    }

    fn atom(&self, pair: Pair<'_, Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let mk = |kind| Ok(Expr { kind, span });
        match pair.as_rule() {
            Rule::name => mk(ExprKind::Name(pair.as_str().to_string())),
            Rule::const_none => mk(ExprKind::Constant(Constant::None)),
            Rule::const_true => mk(ExprKind::Constant(Constant::Bool(true))),
            Rule::const_false => mk(ExprKind::Constant(Constant::Bool(false))),
            Rule::ellipsis => mk(ExprKind::Constant(Constant::Ellipsis)),
            Rule::number => self.number(pair),
            Rule::strings => self.strings(pair),
            Rule::paren => match pair.clone().into_inner().next() {
                None => mk(ExprKind::Tuple(Vec::new())),
                Some(inner) if inner.as_rule() == Rule::yield_like => self.yield_expr(inner),
                Some(inner) => {
                    let (mut items, comma, comp) = self.seq_body(inner)?;
                    match comp {
                        Some(generators) if items.len() == 1 => mk(ExprKind::GeneratorExp {
                            elt: Box::new(items.remove(0)),
                            generators,
                        }),
                        Some(_) => self.err(
                            &pair,
                            "invalid syntax: generator expression must be parenthesized",
                        ),
                        None if items.len() == 1 && !comma => {
                            // Parentheses group; the span stays the inner expression's, as in Python.
                            Ok(items.remove(0))
                        }
                        None => mk(ExprKind::Tuple(items)),
                    }
                }
            },
            Rule::list_display => match pair.clone().into_inner().next() {
                None => mk(ExprKind::List(Vec::new())),
                Some(inner) => {
                    let (mut items, _, comp) = self.seq_body(inner)?;
                    match comp {
                        Some(generators) if items.len() == 1 => mk(ExprKind::ListComp {
                            elt: Box::new(items.remove(0)),
                            generators,
                        }),
                        Some(_) => self.err(&pair, "invalid syntax in list comprehension"),
                        None => mk(ExprKind::List(items)),
                    }
                }
            },
            Rule::dict_or_set => match pair.clone().into_inner().next() {
                None => mk(ExprKind::Dict(Vec::new())),
                Some(inner) if inner.as_rule() == Rule::dict_body => {
                    let mut entries = Vec::new();
                    let mut comp = None;
                    for p in inner.into_inner() {
                        match p.as_rule() {
                            Rule::dict_pair => {
                                let mut kv = p.clone().into_inner();
                                let k = self.expr(self.need(&p, kv.next())?)?;
                                let v = self.expr(self.need(&p, kv.next())?)?;
                                entries.push((Some(k), v));
                            }
                            Rule::dict_spread => {
                                let v = self.expr(self.need(&p, p.clone().into_inner().next())?)?;
                                entries.push((None, v));
                            }
                            Rule::comp_for => comp = Some(self.comp_for(p)?),
                            _ => {}
                        }
                    }
                    match comp {
                        Some(generators) => match entries.pop() {
                            Some((Some(key), value)) if entries.is_empty() => mk(ExprKind::DictComp {
                                key: Box::new(key),
                                value: Box::new(value),
                                generators,
                            }),
                            _ => self.err(&pair, "invalid syntax: dict unpacking cannot be used in dict comprehension"),
                        },
                        None => mk(ExprKind::Dict(entries)),
                    }
                }
                Some(inner) => {
                    let (mut items, _, comp) = self.seq_body(inner)?;
                    match comp {
                        Some(generators) if items.len() == 1 => mk(ExprKind::SetComp {
                            elt: Box::new(items.remove(0)),
                            generators,
                        }),
                        Some(_) => self.err(&pair, "invalid syntax in set comprehension"),
                        None => mk(ExprKind::Set(items)),
                    }
                }
            },
            _ => self.err(&pair, "internal parser error: atom"),
        }
    }

    fn number(&self, pair: Pair<'_, Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let mut it = pair.clone().into_inner();
        let lit = self.need(&pair, it.next())?;
        let imag = it.next().is_some();
        let text: String = lit.as_str().chars().filter(|c| *c != '_').collect();
        let constant = if lit.as_rule() == Rule::float_lit || imag {
            let v: f64 = if lit.as_rule() == Rule::int_lit {
                // Python reads `123j` as the float 123.0 (exactly rounded, however long).
                match int_value(&text) {
                    Some(i) => i as f64,
                    None => text.parse().unwrap_or(f64::INFINITY),
                }
            } else {
                match text.parse() {
                    Ok(v) => v,
                    Err(_) => return self.err(&lit, "invalid float literal"),
                }
            };
            if imag {
                Constant::Imag(v)
            } else {
                Constant::Float(v)
            }
        } else {
            if text.len() > 1
                && text.starts_with('0')
                && text.bytes().all(|b| b.is_ascii_digit())
                && text.bytes().any(|b| b != b'0')
            {
                return self.err(&lit, "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers");
            }
            match int_value(&text) {
                Some(v) => Constant::Int(IntLit::Small(v)),
                None => Constant::Int(IntLit::Big(big_decimal(&text))),
            }
        };
        Ok(Expr {
            kind: ExprKind::Constant(constant),
            span,
        })
    }

    // ------------------------------------------------------------ strings

    fn strings(&self, pair: Pair<'_, Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let mut text_parts: Vec<FStringPart> = Vec::new();
        let mut bytes: Option<Vec<u8>> = None;
        let mut any_f = false;
        let mut any_str = false;
        for s in pair.clone().into_inner() {
            let mut prefix = "";
            let mut body = None;
            for p in s.clone().into_inner() {
                match p.as_rule() {
                    Rule::string_prefix => prefix = p.as_str(),
                    Rule::string_tdq | Rule::string_tsq | Rule::string_dq | Rule::string_sq => {
                        body = p.into_inner().next();
                    }
                    _ => {}
                }
            }
            let body = self.need(&s, body)?;
            let lower = prefix.to_ascii_lowercase();
            let raw = lower.contains('r');
            let is_bytes = lower.contains('b');
            let is_f = lower.contains('f');
            if is_bytes {
                if any_str || any_f {
                    return self.err(&s, "cannot mix bytes and nonbytes literals");
                }
                let b = self.decode_bytes(&body, raw)?;
                bytes.get_or_insert_with(Vec::new).extend(b);
                continue;
            }
            if bytes.is_some() {
                return self.err(&s, "cannot mix bytes and nonbytes literals");
            }
            any_str = true;
            if is_f {
                any_f = true;
                let body_offset = self.base + body.as_span().start();
                self.fstring(body.as_str(), body_offset, raw, &mut text_parts)?;
            } else {
                let v = self.decode_str(body.as_str(), self.base + body.as_span().start(), raw)?;
                push_literal(&mut text_parts, v);
            }
        }
        if let Some(b) = bytes {
            return Ok(Expr {
                kind: ExprKind::Constant(Constant::Bytes(b)),
                span,
            });
        }
        if any_f {
            return Ok(Expr {
                kind: ExprKind::JoinedStr(text_parts),
                span,
            });
        }
        let s = text_parts
            .into_iter()
            .map(|p| match p {
                FStringPart::Literal(s) => s,
                FStringPart::Field { .. } => String::new(),
            })
            .collect();
        Ok(Expr {
            kind: ExprKind::Constant(Constant::Str(s)),
            span,
        })
    }

    fn decode_bytes(&self, body: &Pair<'_, Rule>, raw: bool) -> R<Vec<u8>> {
        let text = body.as_str();
        if let Some(pos) = text.find(|c: char| !c.is_ascii()) {
            return Err(SyntaxError::at(
                self.path,
                self.src,
                self.base + body.as_span().start() + pos,
                "bytes can only contain ASCII literal characters",
            ));
        }
        let decoded = self.decode_escapes(text, self.base + body.as_span().start(), raw, true)?;
        // \x escapes produced chars U+0080..U+00FF standing for single bytes; \u does not apply.
        Ok(decoded.chars().map(|c| c as u32 as u8).collect())
    }

    /// Decodes a (non-f) string body: newlines normalised as Python's source reader does,
    /// escapes resolved unless `raw`.
    fn decode_str(&self, text: &str, offset: usize, raw: bool) -> R<String> {
        self.decode_escapes(text, offset, raw, false)
    }

    /// `\\u`, `\\U` and `\\N{...}` are escapes in str literals only; in bytes they stay as written.
    fn decode_escapes(&self, text: &str, offset: usize, raw: bool, bytes: bool) -> R<String> {
        let text = normalize_newlines(text);
        if raw {
            return Ok(text.into_owned());
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else {
                out.push('\\');
                break;
            };
            match e {
                '\n' => {}
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                '0'..='7' => {
                    let mut v = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match chars.peek() {
                            Some((_, d)) if d.is_digit(8) => {
                                v = v * 8 + d.to_digit(8).unwrap_or(0);
                                chars.next();
                            }
                            _ => break,
                        }
                    }
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                }
                'u' | 'U' | 'N' if bytes => {
                    out.push('\\');
                    out.push(e);
                }
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let mut hex = String::new();
                    for _ in 0..n {
                        match chars.peek() {
                            Some((_, d)) if d.is_ascii_hexdigit() => {
                                hex.push(*d);
                                chars.next();
                            }
                            _ => break,
                        }
                    }
                    let value = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == n);
                    // A Rust string cannot hold a lone surrogate (Python's can): it becomes
                    // U+FFFD, a documented difference.
                    let surrogate = value.is_some_and(|v| (0xD800..=0xDFFF).contains(&v));
                    match value
                        .and_then(char::from_u32)
                        .or(surrogate.then_some('\u{fffd}'))
                    {
                        Some(ch) => out.push(ch),
                        None => {
                            return Err(SyntaxError::at(
                                self.path,
                                self.src,
                                offset + i,
                                &format!("(unicode error) truncated \\{e}{} escape", "X".repeat(n)),
                            ))
                        }
                    }
                }
                'N' => {
                    let mut name = String::new();
                    let mut closed = false;
                    if chars.peek().map(|(_, c)| *c) == Some('{') {
                        chars.next();
                        for (_, c) in chars.by_ref() {
                            if c == '}' {
                                closed = true;
                                break;
                            }
                            name.push(c);
                        }
                    }
                    match unicode_names2::character(&name).filter(|_| closed) {
                        Some(ch) => out.push(ch),
                        None => {
                            return Err(SyntaxError::at(
                                self.path,
                                self.src,
                                offset + i,
                                "(unicode error) 'unicodeescape' codec can't decode bytes: malformed \\N character escape",
                            ))
                        }
                    }
                }
                other => {
                    // Python keeps unknown escapes as written (with a DeprecationWarning).
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        Ok(out)
    }

    /// Splits an f-string body into literal text and replacement fields.
    fn fstring(&self, body: &str, offset: usize, raw: bool, out: &mut Vec<FStringPart>) -> R<()> {
        let bytes = body.as_bytes();
        let mut lit_start = 0;
        let mut i = 0;
        let mut literal = String::new();
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    literal.push_str(&self.decode_str(
                        &body[lit_start..i],
                        offset + lit_start,
                        raw,
                    )?);
                    literal.push('{');
                    i += 2;
                    lit_start = i;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    literal.push_str(&self.decode_str(
                        &body[lit_start..i],
                        offset + lit_start,
                        raw,
                    )?);
                    literal.push('}');
                    i += 2;
                    lit_start = i;
                }
                b'{' => {
                    literal.push_str(&self.decode_str(
                        &body[lit_start..i],
                        offset + lit_start,
                        raw,
                    )?);
                    push_literal(out, std::mem::take(&mut literal));
                    let end = self.fstring_field(body, offset, i, raw, out)?;
                    i = end;
                    lit_start = i;
                }
                b'}' => {
                    return Err(SyntaxError::at(
                        self.path,
                        self.src,
                        offset + i,
                        "f-string: single '}' is not allowed",
                    ));
                }
                b'\\' if !raw => i += 2,
                _ => i += 1,
            }
        }
        literal.push_str(&self.decode_str(
            &body[lit_start.min(body.len())..],
            offset + lit_start,
            raw,
        )?);
        push_literal(out, literal);
        Ok(())
    }

    /// Parses the field opening at `open` (a `{`); returns the offset after its `}`.
    fn fstring_field(
        &self,
        body: &str,
        offset: usize,
        open: usize,
        raw: bool,
        out: &mut Vec<FStringPart>,
    ) -> R<usize> {
        let bytes = body.as_bytes();
        let mut depth = 0usize;
        let mut i = open + 1;
        let mut expr_end = None;
        let mut conversion = None;
        let mut spec_start = None;
        // Find the end of the expression: a top-level `!`, `:`, `=` (debug) or `}`.
        while i < bytes.len() {
            match bytes[i] {
                b'\'' | b'"' => {
                    i = skip_string(bytes, i).0;
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' => depth = depth.saturating_sub(1),
                b'}' if depth > 0 => depth -= 1,
                b'}' => {
                    expr_end.get_or_insert(i);
                    break;
                }
                b'!' if depth == 0 && bytes.get(i + 1) != Some(&b'=') => {
                    expr_end.get_or_insert(i);
                    conversion = bytes.get(i + 1).map(|b| *b as char);
                    i += 2;
                    continue;
                }
                b':' if depth == 0 => {
                    expr_end.get_or_insert(i);
                    spec_start = Some(i + 1);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(expr_end) = expr_end else {
            return Err(SyntaxError::at(
                self.path,
                self.src,
                offset + open,
                "f-string: expecting '}'",
            ));
        };
        let mut expr_text = &body[open + 1..expr_end];
        let mut debug_text = None;
        let trimmed = expr_text.trim_end();
        if trimmed.ends_with('=') && !trimmed.ends_with("==") && !trimmed.ends_with("!=") {
            debug_text = Some(expr_text.to_string());
            expr_text = &trimmed[..trimmed.len() - 1];
        }
        if let Some(c) = conversion {
            if !matches!(c, 's' | 'r' | 'a') {
                return Err(SyntaxError::at(
                    self.path,
                    self.src,
                    offset + expr_end,
                    "f-string: invalid conversion character: expected 's', 'r', or 'a'",
                ));
            }
        }
        let expr = self.sub_expression(expr_text, offset + open + 1)?;
        let mut spec = Vec::new();
        let mut end = i;
        if let Some(ss) = spec_start {
            // The spec runs to the matching `}`, and may itself contain fields.
            let mut j = ss;
            let mut d = 0usize;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => d += 1,
                    b'}' if d > 0 => d -= 1,
                    b'}' => break,
                    _ => {}
                }
                j += 1;
            }
            if j >= bytes.len() {
                return Err(SyntaxError::at(
                    self.path,
                    self.src,
                    offset + open,
                    "f-string: expecting '}'",
                ));
            }
            self.fstring(&body[ss..j], offset + ss, raw, &mut spec)?;
            end = j;
        }
        if bytes.get(end) != Some(&b'}') {
            return Err(SyntaxError::at(
                self.path,
                self.src,
                offset + open,
                "f-string: expecting '}'",
            ));
        }
        if let Some(d) = &debug_text {
            push_literal(out, d.clone());
        }
        out.push(FStringPart::Field {
            expr: Box::new(expr),
            conversion: conversion.or(if debug_text.is_some() && spec_start.is_none() {
                Some('r')
            } else {
                None
            }),
            spec,
            debug_text,
        });
        Ok(end + 1)
    }

    /// Parses `text` (found at `offset` in the file) as one expression.
    fn sub_expression(&self, text: &str, offset: usize) -> R<Expr> {
        if text.trim().is_empty() {
            return Err(SyntaxError::at(
                self.path,
                self.src,
                offset,
                "f-string: empty expression not allowed",
            ));
        }
        // Newlines inside a field of a triple-quoted f-string are insignificant, as in brackets.
        let flat = text.replace('\n', " ");
        let pairs: Pairs<'_, Rule> = PyParser::parse(Rule::expr_only, &flat).map_err(|e| {
            let shifted = pest_error(self.path, &flat, e);
            SyntaxError::at(
                self.path,
                self.src,
                offset + shifted.offset,
                &shifted.message,
            )
        })?;
        let sub = Conv {
            path: self.path,
            src: self.src,
            base: offset,
        };
        let top = pairs.flatten().find(|p| p.as_rule() == Rule::testlist_star);
        match top {
            Some(p) => sub.testlist(p),
            None => Err(SyntaxError::at(
                self.path,
                self.src,
                offset,
                "invalid syntax: expected an expression",
            )),
        }
    }
}

fn push_literal(out: &mut Vec<FStringPart>, s: String) {
    if s.is_empty() {
        return;
    }
    if let Some(FStringPart::Literal(prev)) = out.last_mut() {
        prev.push_str(&s);
    } else {
        out.push(FStringPart::Literal(s));
    }
}

fn normalize_newlines(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn is_kw(p: &Pair<'_, Rule>) -> bool {
    use Rule::*;
    matches!(
        p.as_rule(),
        kw_and
            | kw_as
            | kw_assert
            | kw_async
            | kw_await
            | kw_break
            | kw_class
            | kw_continue
            | kw_def
            | kw_del
            | kw_elif
            | kw_else
            | kw_except
            | kw_finally
            | kw_for
            | kw_from
            | kw_global
            | kw_if
            | kw_import
            | kw_in
            | kw_is
            | kw_lambda
            | kw_nonlocal
            | kw_not
            | kw_or
            | kw_pass
            | kw_raise
            | kw_return
            | kw_try
            | kw_while
            | kw_with
            | kw_yield
    )
}

fn cmp_op(p: &Pair<'_, Rule>) -> CmpOp {
    match p.as_str().split_whitespace().collect::<Vec<_>>().as_slice() {
        ["=="] => CmpOp::Eq,
        ["!="] => CmpOp::NotEq,
        ["<"] => CmpOp::Lt,
        ["<="] => CmpOp::LtE,
        [">"] => CmpOp::Gt,
        [">="] => CmpOp::GtE,
        ["in"] => CmpOp::In,
        ["not", "in"] => CmpOp::NotIn,
        ["is"] => CmpOp::Is,
        _ => CmpOp::IsNot,
    }
}

fn dotted(s: &str) -> String {
    s.split('.').map(str::trim).collect::<Vec<_>>().join(".")
}

fn int_value(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else {
        text.parse().ok()
    }
}

/// Decimal digits of an integer literal too large for i64 (any base in, base 10 out).
fn big_decimal(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let (radix, digits) = if let Some(h) = lower.strip_prefix("0x") {
        (16, h.to_string())
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o.to_string())
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_string())
    } else {
        return lower;
    };
    // Schoolbook base conversion on a little-endian vector of decimal digits.
    let mut dec: Vec<u32> = vec![0];
    for c in digits.chars() {
        let mut carry = c.to_digit(radix).unwrap_or(0);
        for d in dec.iter_mut() {
            let v = *d * radix + carry;
            *d = v % 10;
            carry = v / 10;
        }
        while carry > 0 {
            dec.push(carry % 10);
            carry /= 10;
        }
    }
    dec.iter()
        .rev()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect()
}

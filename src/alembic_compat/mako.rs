//! The part of Mako that `script.py.mako` templates use, rendered the way Mako 1.x renders
//! them for Alembic's `template_to_file`: text, `${expr}` and `${expr | filters}`,
//! `% if/elif/else/endif` and `% for/endfor` control lines, `## comments`, `%%` escapes,
//! backslash-newline continuation, `<%text>` and `<%doc>` blocks.
//!
//! Expressions are Python: they are parsed by our own parser (`script::parse`) and evaluated by
//! the revision-body interpreter (`eval`) against the template's variables, so there is one
//! expression language in the crate. Names the template uses but the caller does not pass are
//! Mako's `UNDEFINED` (falsy; rendering it is a `NameError`), which is what makes
//! `${imports if imports else ""}` work in Alembic's own template.
//!
//! Refused, with `path:line:col`: Python blocks (`<% %>`, `<%! %>`), other `<%tags>`
//! (`<%def>`, `<%inherit>`, ...), control lines other than if/for, filters we do not know.
//! Owns nothing about Alembic; the caller supplies the variables.

use std::path::Path;
use std::rc::Rc;

use crate::alembic_compat::eval::builtins;
use crate::alembic_compat::eval::interp::{Interp, Scope, Unwind};
use crate::alembic_compat::eval::native::Native;
use crate::alembic_compat::eval::value::Value;
use crate::alembic_compat::eval::{EvalError, Host, HostError, QueryOutput};
use crate::alembic_compat::ops::{Literal, Op, SourcePos};
use crate::alembic_compat::script::ast::{Expr, ExprKind};
use crate::alembic_compat::script::lines::{skip_string, LineIndex};
use crate::alembic_compat::script::parse::parse_expression_at;
use crate::alembic_compat::script::SyntaxError;

/// Why a template could not be compiled or rendered; `Display` is `path:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Mako would refuse to compile the template (`mako.exceptions.SyntaxException`), or the
    /// Python inside it does not parse.
    #[error("{0}")]
    Syntax(String),
    /// Something Mako accepts but ralembic does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// A Python exception while rendering (Alembic: "Template rendering failed").
    #[error("{0}")]
    Render(String),
}

#[derive(Debug)]
enum Node {
    Text(String),
    Expr {
        expr: Expr,
        filters: Vec<(String, usize)>,
    },
    If {
        branches: Vec<(Option<Expr>, Vec<Node>)>,
    },
    For {
        target: Expr,
        iter: Expr,
        body: Vec<Node>,
    },
}

/// A compiled template.
#[derive(Debug)]
pub struct Template {
    path: String,
    src: String,
    nodes: Vec<Node>,
    /// Names read by the template's expressions (candidates for `UNDEFINED`).
    names: Vec<String>,
}

/// An open control block while parsing: its keyword, where it started and what it holds.
struct Frame {
    keyword: &'static str,
    offset: usize,
    branches: Vec<(Option<Expr>, Vec<Node>)>,
    for_parts: Option<(Expr, Expr)>,
    has_else: bool,
}

/// Mako's built-in escape filters (`n` turns the default `str` off).
const BUILTIN_FILTERS: &[&str] = &["n", "str", "trim", "h", "x"];

struct Parser<'a> {
    path: &'a str,
    src: &'a str,
    lines: LineIndex,
    pos: usize,
    stack: Vec<Frame>,
    top: Vec<Node>,
}

impl<'a> Parser<'a> {
    fn at(&self, offset: usize, message: &str) -> String {
        let (line, col) = self.lines.line_col(self.src, offset);
        format!("{}:{line}:{col}: {message}", self.path)
    }

    fn syntax(&self, offset: usize, message: &str) -> TemplateError {
        TemplateError::Syntax(self.at(offset, message))
    }

    fn unsupported(&self, offset: usize, what: &str) -> TemplateError {
        TemplateError::Unsupported(self.at(
            offset,
            &format!("{what} is not supported by ralembic's Mako subset"),
        ))
    }

    fn expr(&self, start: usize, end: usize) -> Result<Expr, TemplateError> {
        let text = &self.src[start..end];
        let lead = text.len() - text.trim_start().len();
        let trail = text.len() - text.trim_end().len();
        if start + lead >= end - trail {
            return Err(self.syntax(start, "empty expression"));
        }
        parse_expression_at(self.path, self.src, start + lead, end - trail)
            .map_err(|e: SyntaxError| TemplateError::Syntax(e.to_string()))
    }

    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(frame) => match frame.branches.last_mut() {
                Some((_, body)) => body.push(node),
                None => frame.branches.push((None, vec![node])),
            },
            None => self.top.push(node),
        }
    }

    fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let target = match self.stack.last_mut() {
            Some(frame) => match frame.branches.last_mut() {
                Some((_, body)) => body,
                None => return,
            },
            None => &mut self.top,
        };
        if let Some(Node::Text(prev)) = target.last_mut() {
            prev.push_str(text);
        } else {
            target.push(Node::Text(text.to_string()));
        }
    }

    fn at_line_start(&self) -> bool {
        self.pos == 0 || self.src.as_bytes()[self.pos - 1] == b'\n'
    }

    fn run(mut self) -> Result<(Vec<Node>, LineIndex), TemplateError> {
        let bytes = self.src.as_bytes();
        let mut text_start = self.pos;
        while self.pos < bytes.len() {
            if self.at_line_start() {
                let indent = bytes[self.pos..]
                    .iter()
                    .take_while(|b| **b == b' ' || **b == b'\t')
                    .count();
                let mark = self.pos + indent;
                let rest = &self.src[mark..];
                if rest.starts_with("%%") {
                    // match_percent: the leading whitespace stays, one '%' goes.
                    self.push_text(&self.src[text_start..mark]);
                    self.push_text("%");
                    self.pos = mark + 2;
                    text_start = self.pos;
                    continue;
                }
                if rest.starts_with('%') || rest.starts_with("##") {
                    self.push_text(&self.src[text_start..self.pos]);
                    self.control_line(mark)?;
                    text_start = self.pos;
                    continue;
                }
            }
            let rest = &self.src[self.pos..];
            if rest.starts_with("${") {
                self.push_text(&self.src[text_start..self.pos]);
                self.expression()?;
                text_start = self.pos;
            } else if rest.starts_with("\\\n") || rest.starts_with("\\\r\n") {
                // An escaped newline is thrown away.
                self.push_text(&self.src[text_start..self.pos]);
                self.pos += if rest.starts_with("\\\n") { 2 } else { 3 };
                text_start = self.pos;
            } else if rest.starts_with("<%text>") {
                self.push_text(&self.src[text_start..self.pos]);
                let body = self.pos + "<%text>".len();
                let end = self.src[body..]
                    .find("</%text>")
                    .ok_or_else(|| self.syntax(self.pos, "Unclosed tag: <%text>"))?;
                let raw = self.src[body..body + end].to_string();
                self.push_text(&raw);
                self.pos = body + end + "</%text>".len();
                text_start = self.pos;
            } else if rest.starts_with("<%doc>") {
                self.push_text(&self.src[text_start..self.pos]);
                let body = self.pos + "<%doc>".len();
                let end = self.src[body..]
                    .find("</%doc>")
                    .ok_or_else(|| self.syntax(self.pos, "Unclosed tag: <%doc>"))?;
                self.pos = body + end + "</%doc>".len();
                text_start = self.pos;
            } else if rest.starts_with("<%!") || rest.starts_with("<% ") || rest == "<%" {
                return Err(self.unsupported(self.pos, "a Python block (<% ... %>)"));
            } else if rest.starts_with("<%") || rest.starts_with("</%") {
                let name: String = rest
                    .trim_start_matches("</%")
                    .trim_start_matches("<%")
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == ':' || *c == '_')
                    .collect();
                if name.is_empty() {
                    return Err(self.unsupported(self.pos, "a Python block (<% ... %>)"));
                }
                return Err(self.unsupported(self.pos, &format!("the <%{name}> tag")));
            } else {
                self.pos += rest.chars().next().map_or(1, char::len_utf8);
            }
        }
        self.push_text(&self.src[text_start..]);
        if let Some(open) = self.stack.last() {
            return Err(self.syntax(
                open.offset,
                &format!("Unterminated control keyword: '{}'", open.keyword),
            ));
        }
        Ok((self.top, self.lines))
    }

    /// `${ code | filters }`: the code ends at a `|` or `}` outside brackets and strings.
    fn expression(&mut self) -> Result<(), TemplateError> {
        let open = self.pos;
        let bytes = self.src.as_bytes();
        let start = open + 2;
        let mut i = start;
        let mut depth = 0usize;
        let mut code_end = None;
        while i < bytes.len() {
            match bytes[i] {
                b'\'' | b'"' => {
                    let (end, closed) = skip_string(bytes, i);
                    if !closed {
                        return Err(self.syntax(open, "Expected: }"));
                    }
                    i = end;
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' => depth = depth.saturating_sub(1),
                b'}' if depth > 0 => depth -= 1,
                b'}' | b'|' if depth == 0 => {
                    code_end = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let code_end = code_end.ok_or_else(|| self.syntax(open, "Expected: }"))?;
        let expr = self.expr(start, code_end)?;
        let mut filters = Vec::new();
        let mut end = code_end;
        if bytes[code_end] == b'|' {
            let close = self.src[code_end..]
                .find('}')
                .map(|k| code_end + k)
                .ok_or_else(|| self.syntax(open, "Expected: }"))?;
            let mut at = code_end + 1;
            for part in self.src[code_end + 1..close].split(',') {
                let name = part.trim();
                let offset = at + (part.len() - part.trim_start().len());
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(self.syntax(offset, &format!("invalid filter name '{name}'")));
                }
                filters.push((name.to_string(), offset));
                at += part.len() + 1;
            }
            end = close;
        }
        self.push(Node::Expr { expr, filters });
        self.pos = end + 1;
        Ok(())
    }

    /// A `%` control line or a `##` comment line (the whole line, newline included).
    fn control_line(&mut self, mark: usize) -> Result<(), TemplateError> {
        let bytes = self.src.as_bytes();
        let mut end = mark;
        // Continuation lines (`\` before the newline) belong to the control line.
        while end < bytes.len() && bytes[end] != b'\n' {
            if bytes[end] == b'\\' && bytes.get(end + 1) == Some(&b'\n') {
                end += 2;
                continue;
            }
            end += 1;
        }
        let next = if end < bytes.len() { end + 1 } else { end };
        let line_end = if end > mark && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        self.pos = next;
        if self.src[mark..].starts_with("##") {
            return Ok(());
        }
        let text_start = mark
            + 1
            + bytes[mark + 1..line_end]
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
        let text = &self.src[text_start..line_end];
        let word: String = text
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if word.is_empty() {
            return Err(self.syntax(mark, &format!("Invalid control line: '{text}'")));
        }
        let after = text_start + word.len();
        match word.as_str() {
            "if" => {
                let cond = self.condition(after, line_end, mark)?;
                self.stack.push(Frame {
                    keyword: "if",
                    offset: mark,
                    branches: vec![(Some(cond), Vec::new())],
                    for_parts: None,
                    has_else: false,
                });
            }
            "elif" | "else" => {
                let is_else = word == "else";
                let cond = if is_else {
                    if self.src[after..line_end].trim() != ":" {
                        return Err(self.syntax(after, "expected ':' after else"));
                    }
                    None
                } else {
                    Some(self.condition(after, line_end, mark)?)
                };
                match self.stack.last_mut() {
                    Some(frame) if frame.keyword == "if" && !frame.has_else => {
                        frame.has_else = is_else;
                        frame.branches.push((cond, Vec::new()));
                    }
                    Some(frame) if frame.keyword == "for" && is_else => {
                        return Err(self.unsupported(mark, "for ... else"));
                    }
                    _ => {
                        return Err(
                            self.syntax(mark, &format!("No starting keyword 'if' for '{text}'"))
                        )
                    }
                }
            }
            "for" => {
                let parts = self.for_parts(after, line_end, mark)?;
                self.stack.push(Frame {
                    keyword: "for",
                    offset: mark,
                    branches: vec![(None, Vec::new())],
                    for_parts: Some(parts),
                    has_else: false,
                });
            }
            "endif" | "endfor" => {
                let keyword = &word[3..];
                match self.stack.last() {
                    None => {
                        return Err(self.syntax(
                            mark,
                            &format!("No starting keyword '{keyword}' for '{text}'"),
                        ))
                    }
                    Some(frame) if frame.keyword != keyword => {
                        return Err(self.syntax(
                            mark,
                            &format!("Keyword '{text}' doesn't match keyword '{}'", frame.keyword),
                        ))
                    }
                    Some(_) => {}
                }
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let node = match frame.for_parts {
                    Some((target, iter)) => Node::For {
                        target,
                        iter,
                        body: frame.branches.into_iter().flat_map(|(_, b)| b).collect(),
                    },
                    None => Node::If {
                        branches: frame.branches,
                    },
                };
                self.push(node);
            }
            other => {
                return Err(self.unsupported(mark, &format!("the '% {other}' control line")));
            }
        }
        Ok(())
    }

    /// The expression between the keyword and the trailing `:`.
    fn condition(&self, start: usize, end: usize, mark: usize) -> Result<Expr, TemplateError> {
        let text = self.src[start..end].trim_end();
        let Some(body) = text.strip_suffix(':') else {
            return Err(self.syntax(mark, "expected ':' at the end of the control line"));
        };
        self.expr(start, start + body.len())
    }

    /// `for TARGET in ITER:`, split at the first ` in ` outside brackets and strings.
    fn for_parts(
        &self,
        start: usize,
        end: usize,
        mark: usize,
    ) -> Result<(Expr, Expr), TemplateError> {
        let text = self.src[start..end].trim_end();
        let Some(body) = text.strip_suffix(':') else {
            return Err(self.syntax(mark, "expected ':' at the end of the control line"));
        };
        let body_end = start + body.len();
        let bytes = self.src.as_bytes();
        let mut i = start;
        let mut depth = 0usize;
        while i < body_end {
            match bytes[i] {
                b'\'' | b'"' => {
                    i = skip_string(bytes, i).0;
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b' ' | b'\t' if depth == 0 && self.src[i..body_end].len() > 4 => {
                    let rest = &self.src[i + 1..body_end];
                    if rest.starts_with("in ") || rest.starts_with("in\t") {
                        let target = self.expr(start, i)?;
                        let valid = match &target.kind {
                            ExprKind::Name(_) => true,
                            ExprKind::Tuple(items) => {
                                items.iter().all(|e| matches!(e.kind, ExprKind::Name(_)))
                            }
                            _ => false,
                        };
                        if !valid {
                            return Err(self.unsupported(start, "a for target other than names"));
                        }
                        let iter = self.expr(i + 3, body_end)?;
                        return Ok((target, iter));
                    }
                }
                _ => {}
            }
            i += 1;
        }
        Err(self.syntax(mark, "expected 'for TARGET in ITERABLE:'"))
    }
}

fn add_names(e: &Expr, out: &mut Vec<String>) {
    crate::alembic_compat::eval::check::walk_expr(e, &mut |x| {
        if let ExprKind::Name(n) = &x.kind {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
    })
}

fn collect_names(nodes: &[Node], out: &mut Vec<String>) {
    for node in nodes {
        match node {
            Node::Text(_) => {}
            Node::Expr { expr, filters } => {
                add_names(expr, out);
                for (f, _) in filters {
                    if !BUILTIN_FILTERS.contains(&f.as_str()) && !out.contains(f) {
                        out.push(f.clone());
                    }
                }
            }
            Node::If { branches } => {
                for (cond, body) in branches {
                    if let Some(c) = cond {
                        add_names(c, out);
                    }
                    collect_names(body, out);
                }
            }
            Node::For { target, iter, body } => {
                add_names(target, out);
                add_names(iter, out);
                collect_names(body, out);
            }
        }
    }
}

impl Template {
    /// Compiles `src` (read from `path`, which error messages name).
    pub fn compile(path: &str, src: &str) -> Result<Template, TemplateError> {
        let parser = Parser {
            path,
            src,
            lines: LineIndex::new(src),
            pos: 0,
            stack: Vec::new(),
            top: Vec::new(),
        };
        let (nodes, _) = parser.run()?;
        let mut names = Vec::new();
        collect_names(&nodes, &mut names);
        Ok(Template {
            path: path.to_string(),
            src: src.to_string(),
            nodes,
            names,
        })
    }

    /// `template.render_unicode(**vars)`.
    pub fn render(&self, vars: &[(&str, Value)]) -> Result<String, TemplateError> {
        let mut host = NoHost;
        let mut interp = Interp::new(Path::new(&self.path), &self.src, &mut host);
        let scope = Rc::new(Scope::default());
        // Mako binds every name the template reads but the caller did not pass to UNDEFINED,
        // unless Python's builtins provide it.
        for name in &self.names {
            if !vars.iter().any(|(k, _)| k == name) && builtins::builtin(name).is_none() {
                scope.set(name, Value::native(Native::Undefined));
            }
        }
        for (k, v) in vars {
            scope.set(k, v.clone());
        }
        let mut out = String::new();
        let mut r = Renderer {
            interp: &mut interp,
            scope,
        };
        r.nodes(&self.nodes, &mut out)?;
        Ok(out)
    }
}

struct Renderer<'i, 'h> {
    interp: &'i mut Interp<'h>,
    scope: Rc<Scope>,
}

impl Renderer<'_, '_> {
    fn error(&self, u: Unwind, at: &Expr) -> TemplateError {
        let pos = self.interp.pos(at.span);
        let located = |p: Option<SourcePos>| p.unwrap_or_else(|| pos.clone());
        match u {
            Unwind::Exc(e) | Unwind::Detached(e) => {
                let p = located(e.pos.clone());
                if e.message.is_empty() {
                    TemplateError::Render(format!("{p}: {}", e.class))
                } else {
                    TemplateError::Render(format!("{p}: {}: {}", e.class, e.message))
                }
            }
            Unwind::Unsupported(r) => TemplateError::Unsupported(
                EvalError::Unsupported {
                    what: r.what,
                    why: r.why,
                    pos: located(r.pos),
                }
                .to_string(),
            ),
        }
    }

    fn eval(&mut self, e: &Expr) -> Result<Value, TemplateError> {
        let scope = self.scope.clone();
        self.interp.eval(e, &scope).map_err(|u| self.error(u, e))
    }

    fn nodes(&mut self, nodes: &[Node], out: &mut String) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Expr { expr, filters } => {
                    let v = self.eval(expr)?;
                    out.push_str(&self.filtered(v, filters, expr)?);
                }
                Node::If { branches } => {
                    for (cond, body) in branches {
                        let take = match cond {
                            Some(c) => self.eval(c)?.truthy(),
                            None => true,
                        };
                        if take {
                            self.nodes(body, out)?;
                            break;
                        }
                    }
                }
                Node::For { target, iter, body } => {
                    let items = self.eval(iter)?;
                    let items = self
                        .interp
                        .iterate(&items)
                        .map_err(|u| self.error(u, iter))?;
                    for item in items {
                        self.bind(target, item)?;
                        self.nodes(body, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn bind(&mut self, target: &Expr, value: Value) -> Result<(), TemplateError> {
        match &target.kind {
            ExprKind::Name(n) => {
                self.scope.set(n, value);
                Ok(())
            }
            ExprKind::Tuple(names) => {
                let items = self
                    .interp
                    .iterate(&value)
                    .map_err(|u| self.error(u, target))?;
                if items.len() != names.len() {
                    return Err(self.error(
                        crate::alembic_compat::eval::interp::exc(
                            "ValueError",
                            format!(
                                "cannot unpack {} values into {} names",
                                items.len(),
                                names.len()
                            ),
                        ),
                        target,
                    ));
                }
                for (n, v) in names.iter().zip(items) {
                    self.bind(n, v)?;
                }
                Ok(())
            }
            _ => Err(self.error(
                crate::alembic_compat::eval::interp::unsupported(
                    "this for target",
                    "only names and tuples of names",
                ),
                target,
            )),
        }
    }

    /// Mako's filter chain: the default `str` first unless `n` is given, then each filter left
    /// to right.
    fn filtered(
        &mut self,
        v: Value,
        filters: &[(String, usize)],
        at: &Expr,
    ) -> Result<String, TemplateError> {
        let mut v = v;
        let names: Vec<&str> = filters.iter().map(|(f, _)| f.as_str()).collect();
        let mut chain: Vec<&str> = Vec::new();
        if !names.contains(&"n") {
            chain.push("str");
        }
        chain.extend(names.iter().copied().filter(|f| *f != "n"));
        for f in chain {
            v = match f {
                "str" => Value::str(self.to_str(&v, at)?),
                "trim" => Value::str(self.to_str(&v, at)?.trim()),
                "h" | "x" => Value::str(escape_xml(&self.to_str(&v, at)?)),
                name => {
                    let func = self.scope.get(name).ok_or_else(|| {
                        self.error(
                            crate::alembic_compat::eval::interp::exc(
                                "NameError",
                                format!("name '{name}' is not defined"),
                            ),
                            at,
                        )
                    })?;
                    self.interp
                        .call(&func, vec![v], Vec::new())
                        .map_err(|u| self.error(u, at))?
                }
            };
        }
        // Mako writes the final value with `str()` semantics even after `n`.
        self.to_str(&v, at)
    }

    fn to_str(&self, v: &Value, at: &Expr) -> Result<String, TemplateError> {
        if matches!(v, Value::Native(n) if matches!(**n, Native::Undefined)) {
            return Err(self.error(
                crate::alembic_compat::eval::interp::exc("NameError", "Undefined"),
                at,
            ));
        }
        Ok(builtins::str_of(v))
    }
}

/// `markupsafe.escape` / Mako's `xml_escape` (they agree on these five).
fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Templates have no database: any attempt to reach one is outside the model.
struct NoHost;

impl Host for NoHost {
    fn is_offline(&self) -> bool {
        true
    }
    fn apply(&mut self, _op: &Op, _pos: &SourcePos, _: bool) -> Result<(), HostError> {
        Err(HostError {
            class: "NotImplementedError".into(),
            message: "templates cannot run operations".into(),
        })
    }
    fn query(&mut self, _sql: &str, _params: &[Literal]) -> Result<QueryOutput, HostError> {
        Err(HostError {
            class: "NotImplementedError".into(),
            message: "templates cannot query a database".into(),
        })
    }
    fn x_arguments(&self) -> Vec<String> {
        Vec::new()
    }
    fn print(&mut self, _text: &str) {}
    fn log(&mut self, _level: u32, _logger: &str, _message: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, vars: &[(&str, Value)]) -> Result<String, TemplateError> {
        Template::compile("t.mako", src)?.render(vars)
    }

    #[test]
    fn expressions_filters_and_undefined() {
        let vars = [
            ("message", Value::str("hello")),
            ("down", Value::tuple(vec![Value::str("a"), Value::str("b")])),
            (
                "comma",
                Value::native(Native::Func("alembic.util.format_as_comma".into())),
            ),
        ];
        assert_eq!(
            render("${message}|${repr(message)}|${down | comma,n}\n", &vars).unwrap(),
            "hello|'hello'|a, b\n"
        );
        assert_eq!(
            render(
                "${imports if imports else \"\"}x${'a|b'}${ {'k': 1}['k'] }",
                &vars
            )
            .unwrap(),
            "x".to_string() + "a|b1"
        );
        let e = render("ab\n  ${imports}", &vars).unwrap_err();
        assert_eq!(e.to_string(), "t.mako:2:5: NameError: Undefined");
        assert_eq!(
            render("${' x ' | trim}${'<&>' | h}", &vars).unwrap(),
            "x&lt;&amp;&gt;"
        );
    }

    #[test]
    fn control_lines_comments_and_blocks() {
        let src = "a\n## gone\n% if n > 1:\nmany\n% elif n == 1:\none\n% else:\nnone\n% endif\n\
                   % for x in items:\n- ${x}\n% endfor\nline \\\ncont\n  %% pct\n<%text>${raw}</%text><%doc>\nhidden</%doc>.\n";
        let items = Value::list(vec![Value::Int(1), Value::Int(2)]);
        for (n, word) in [(2, "many"), (1, "one"), (0, "none")] {
            let out = render(src, &[("n", Value::Int(n)), ("items", items.clone())]).unwrap();
            assert_eq!(
                out,
                format!("a\n{word}\n- 1\n- 2\nline cont\n  % pct\n${{raw}}.\n")
            );
        }
    }

    #[test]
    fn refusals_are_positioned() {
        let cases = [
            (
                "x\n<% y = 1 %>",
                "t.mako:2:1: a Python block (<% ... %>) is not supported",
            ),
            (
                "<%def name=\"f()\"></%def>",
                "t.mako:1:1: the <%def> tag is not supported",
            ),
            (
                "% while x:\n% endwhile\n",
                "t.mako:1:1: the '% while' control line",
            ),
            (
                "% if x:\n",
                "t.mako:1:1: Unterminated control keyword: 'if'",
            ),
            (
                "% endif\n",
                "t.mako:1:1: No starting keyword 'if' for 'endif'",
            ),
            ("ab ${x +}", "t.mako:1:"),
            ("${x", "t.mako:1:1: Expected: }"),
        ];
        for (src, want) in cases {
            let e = Template::compile("t.mako", src).unwrap_err().to_string();
            assert!(e.starts_with(want), "{src:?}: {e}");
        }
    }
}

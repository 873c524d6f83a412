//! The module-level facts Alembic reads from a revision file after importing it: `revision`,
//! `down_revision`, `branch_labels`, `depends_on` and the docstring. We read them statically
//! from the AST: Python would execute the module top to bottom, so the last top-level
//! assignment of each name wins, and a value we cannot know without running code is an error
//! at its position (where Python would have run it).

use std::collections::HashMap;

use super::ast::{BinOp, Constant, Expr, ExprKind, FStringPart, Module, StmtKind};
use super::SyntaxError;

/// `down_revision` as written: Alembic prints merges with parents in their written order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DownRevision {
    None,
    One(String),
    /// A tuple or list (possibly of one element, or empty).
    Many(Vec<String>),
}

impl DownRevision {
    pub fn as_slice(&self) -> &[String] {
        match self {
            DownRevision::None => &[],
            DownRevision::One(s) => std::slice::from_ref(s),
            DownRevision::Many(v) => v,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScriptMeta {
    /// `None` when the module assigns no `revision` (Alembic then falls back to the file name).
    pub revision: Option<String>,
    /// `None` when the module assigns no `down_revision` (Python raises AttributeError).
    pub down_revision: Option<DownRevision>,
    pub branch_labels: Vec<String>,
    pub depends_on: Vec<String>,
    /// The docstring, `.strip()`ed (Alembic's `longdoc`); empty when there is none.
    pub longdoc: String,
}

impl ScriptMeta {
    /// What a module that assigns nothing yields.
    pub fn empty() -> ScriptMeta {
        ScriptMeta {
            revision: None,
            down_revision: None,
            branch_labels: Vec::new(),
            depends_on: Vec::new(),
            longdoc: String::new(),
        }
    }

    /// First paragraph of the docstring (Alembic's `doc`): `re.split("\n\n", longdoc)[0]`.
    pub fn doc(&self) -> &str {
        self.longdoc.split("\n\n").next().unwrap_or("")
    }

    /// The `Create Date: ...` line of the docstring, if any.
    pub fn create_date(&self) -> Option<&str> {
        self.longdoc
            .lines()
            .find_map(|l| l.trim().strip_prefix("Create Date:").map(str::trim))
    }

    pub fn from_module(path: &str, src: &str, module: &Module) -> Result<ScriptMeta, SyntaxError> {
        let mut meta = ScriptMeta {
            longdoc: module.docstring().map(python_strip).unwrap_or_default(),
            ..ScriptMeta::empty()
        };
        // Module-level names bound to values we can compute without running code, so that
        // `revision = PREFIX + "02"` reads as Python would compute it.
        let mut env: HashMap<String, Lit> = HashMap::new();
        for stmt in &module.body {
            let (targets, value): (Vec<&Expr>, &Expr) = match &stmt.kind {
                StmtKind::Assign { targets, value } => (targets.iter().collect(), value),
                StmtKind::AnnAssign {
                    target,
                    value: Some(value),
                    ..
                } => (vec![target], value),
                _ => continue,
            };
            let computed = literal(value, &env);
            for target in targets {
                let ExprKind::Name(name) = &target.kind else {
                    continue;
                };
                match &computed {
                    Some(v) => env.insert(name.clone(), v.clone()),
                    None => env.remove(name),
                };
                let err = |what: &str| {
                    SyntaxError::at(
                        path,
                        src,
                        value.span.start as usize,
                        &format!("`{name}` must be {what} for ralembic to read it without running the file"),
                    )
                };
                match name.as_str() {
                    "revision" => match &computed {
                        Some(Lit::Str(s)) => meta.revision = Some(s.clone()),
                        _ => return Err(err("a string literal")),
                    },
                    "down_revision" => {
                        meta.down_revision = Some(match computed.clone() {
                            Some(Lit::None) => DownRevision::None,
                            Some(Lit::Str(s)) => DownRevision::One(s),
                            Some(Lit::Seq(v)) => DownRevision::Many(v),
                            None => {
                                return Err(err("None, a string, or a tuple or list of strings"))
                            }
                        })
                    }
                    "branch_labels" | "depends_on" => {
                        // Alembic's util.to_tuple: None -> (), str -> (str,), sequence -> tuple.
                        let v = match computed.clone() {
                            Some(Lit::None) => Vec::new(),
                            Some(Lit::Str(s)) => vec![s],
                            Some(Lit::Seq(v)) => v,
                            None => {
                                return Err(err("None, a string, or a tuple or list of strings"))
                            }
                        };
                        if name == "branch_labels" {
                            meta.branch_labels = v;
                        } else {
                            meta.depends_on = v;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(meta)
    }
}

#[derive(Clone)]
enum Lit {
    None,
    Str(String),
    Seq(Vec<String>),
}

/// The value of `e` when it is built only from string literals, None, earlier module-level
/// names holding such values, `+` on strings, f-strings of those, and tuples/lists of strings.
fn literal(e: &Expr, env: &HashMap<String, Lit>) -> Option<Lit> {
    match &e.kind {
        ExprKind::Constant(Constant::None) => Some(Lit::None),
        ExprKind::Constant(Constant::Str(s)) => Some(Lit::Str(s.clone())),
        ExprKind::Name(n) => env.get(n).cloned(),
        ExprKind::BinOp {
            left,
            op: BinOp::Add,
            right,
        } => match (literal(left, env)?, literal(right, env)?) {
            (Lit::Str(a), Lit::Str(b)) => Some(Lit::Str(a + &b)),
            (Lit::Seq(a), Lit::Seq(b)) => Some(Lit::Seq(a.into_iter().chain(b).collect())),
            _ => None,
        },
        ExprKind::JoinedStr(parts) => {
            let mut out = String::new();
            for p in parts {
                match p {
                    FStringPart::Literal(s) => out.push_str(s),
                    FStringPart::Field {
                        expr,
                        conversion: None,
                        spec,
                        ..
                    } if spec.is_empty() => match literal(expr, env)? {
                        Lit::Str(s) => out.push_str(&s),
                        _ => return None,
                    },
                    _ => return None,
                }
            }
            Some(Lit::Str(out))
        }
        ExprKind::Tuple(items) | ExprKind::List(items) => {
            let mut v = Vec::with_capacity(items.len());
            for item in items {
                match literal(item, env)? {
                    Lit::Str(s) => v.push(s),
                    _ => return None,
                }
            }
            Some(Lit::Seq(v))
        }
        _ => None,
    }
}

/// Python's `str.strip()` with no argument: strips Unicode whitespace.
fn python_strip(s: &str) -> String {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
        .to_string()
}

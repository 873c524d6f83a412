//! Our typed AST for revision files, shaped like Python's `ast` module so that anyone who knows
//! it can read this. Every node carries a [`Span`] of byte offsets into the file; lines and
//! columns are computed only when something is shown (see `lines::LineIndex`). Callers never
//! see pest types.

use std::sync::Arc;

// Serializable so parsed files can be cached (`script::ast_cache`).
use serde::{Deserialize, Serialize};

/// Byte offsets `[start, end)` into the source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        // Revision files over 4 GiB are not a thing; saturate rather than wrap.
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Span {
            start: clamp(start),
            end: clamp(end),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Module {
    pub body: Vec<Stmt>,
}

impl Module {
    /// The module docstring: the value of a first statement that is a plain string literal.
    pub fn docstring(&self) -> Option<&str> {
        match self.body.first().map(|s| &s.kind) {
            Some(StmtKind::Expr(Expr {
                kind: ExprKind::Constant(Constant::Str(s)),
                ..
            })) => Some(s),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

impl Stmt {
    /// The blocks of statements this one holds in its own scope: the bodies and `else`
    /// blocks of `if`/`for`/`while`, a `with` body, a `try`'s blocks and handlers. Not a
    /// nested `def`'s or `class`'s body, which is a scope of its own.
    pub fn blocks(&self) -> Vec<&[Stmt]> {
        match &self.kind {
            StmtKind::If { body, orelse, .. }
            | StmtKind::For { body, orelse, .. }
            | StmtKind::While { body, orelse, .. } => vec![body, orelse],
            StmtKind::With { body, .. } => vec![body],
            StmtKind::Try {
                body,
                handlers,
                orelse,
                finalbody,
            } => std::iter::once(&body[..])
                .chain(handlers.iter().map(|h| &h.body[..]))
                .chain([&orelse[..], &finalbody[..]])
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StmtKind {
    Expr(Expr),
    /// `a = b = value`: every target, left to right.
    Assign {
        targets: Vec<Expr>,
        value: Expr,
    },
    AnnAssign {
        target: Expr,
        annotation: Expr,
        value: Option<Expr>,
    },
    AugAssign {
        target: Expr,
        op: BinOp,
        value: Expr,
    },
    Pass,
    Break,
    Continue,
    Return(Option<Expr>),
    Raise {
        exc: Option<Expr>,
        cause: Option<Expr>,
    },
    Global(Vec<Ident>),
    Nonlocal(Vec<Ident>),
    Del(Vec<Expr>),
    Assert {
        test: Expr,
        msg: Option<Expr>,
    },
    Import(Vec<Alias>),
    /// `from ..a.b import x as y`; `names` empty means `import *`.
    ImportFrom {
        level: u32,
        module: Option<String>,
        names: Vec<Alias>,
    },
    If {
        test: Expr,
        body: Vec<Stmt>,
        orelse: Vec<Stmt>,
    },
    For {
        target: Expr,
        iter: Expr,
        body: Vec<Stmt>,
        orelse: Vec<Stmt>,
    },
    While {
        test: Expr,
        body: Vec<Stmt>,
        orelse: Vec<Stmt>,
    },
    With {
        items: Vec<WithItem>,
        body: Vec<Stmt>,
    },
    Try {
        body: Vec<Stmt>,
        handlers: Vec<ExceptHandler>,
        orelse: Vec<Stmt>,
        finalbody: Vec<Stmt>,
    },
    FunctionDef(Arc<FunctionDef>),
    ClassDef(Arc<ClassDef>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    /// Dotted for `import a.b`.
    pub name: String,
    pub asname: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WithItem {
    pub context: Expr,
    pub target: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExceptHandler {
    pub typ: Option<Expr>,
    pub name: Option<String>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionDef {
    pub name: String,
    /// Shared with every function object the `def` makes (a revision's `upgrade` and
    /// `downgrade` are made at each run; cloning their bodies was most of that).
    pub params: Arc<Params>,
    pub returns: Option<Expr>,
    pub decorators: Vec<Expr>,
    pub body: Arc<Vec<Stmt>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassDef {
    pub name: String,
    pub bases: Vec<Arg>,
    pub decorators: Vec<Expr>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub posonly: Vec<Param>,
    pub args: Vec<Param>,
    pub vararg: Option<Param>,
    pub kwonly: Vec<Param>,
    pub kwarg: Option<Param>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub annotation: Option<Expr>,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    Name(String),
    Constant(Constant),
    /// An f-string (after implicit concatenation with its neighbours).
    JoinedStr(Vec<FStringPart>),
    Attribute {
        value: Box<Expr>,
        attr: String,
    },
    Subscript {
        value: Box<Expr>,
        index: Box<Expr>,
    },
    Slice {
        lower: Option<Box<Expr>>,
        upper: Option<Box<Expr>>,
        step: Option<Box<Expr>>,
    },
    Call {
        func: Box<Expr>,
        args: Vec<Arg>,
    },
    BinOp {
        left: Box<Expr>,
        op: BinOp,
        right: Box<Expr>,
    },
    UnaryOp {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    BoolOp {
        op: BoolOp,
        values: Vec<Expr>,
    },
    Compare {
        left: Box<Expr>,
        ops: Vec<(CmpOp, Expr)>,
    },
    IfExp {
        test: Box<Expr>,
        body: Box<Expr>,
        orelse: Box<Expr>,
    },
    Lambda {
        params: Arc<Params>,
        body: Arc<Expr>,
    },
    NamedExpr {
        target: String,
        value: Box<Expr>,
    },
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Set(Vec<Expr>),
    /// `None` key: a `**mapping` spread.
    Dict(Vec<(Option<Expr>, Expr)>),
    ListComp {
        elt: Box<Expr>,
        generators: Vec<Comprehension>,
    },
    SetComp {
        elt: Box<Expr>,
        generators: Vec<Comprehension>,
    },
    DictComp {
        key: Box<Expr>,
        value: Box<Expr>,
        generators: Vec<Comprehension>,
    },
    GeneratorExp {
        elt: Box<Expr>,
        generators: Vec<Comprehension>,
    },
    Starred(Box<Expr>),
    Await(Box<Expr>),
    Yield(Option<Box<Expr>>),
    YieldFrom(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Constant {
    None,
    Bool(bool),
    Int(IntLit),
    Float(f64),
    /// Imaginary literal `2j`, kept as its float part.
    Imag(f64),
    Str(String),
    Bytes(Vec<u8>),
    Ellipsis,
}

/// Integer literals that fit `i64` are stored as such; larger ones keep their decimal digits
/// so an evaluator with big integers can read them exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IntLit {
    Small(i64),
    Big(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FStringPart {
    Literal(String),
    Field {
        expr: Box<Expr>,
        conversion: Option<char>,
        spec: Vec<FStringPart>,
        debug_text: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comprehension {
    pub target: Expr,
    pub iter: Expr,
    pub ifs: Vec<Expr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Arg {
    Positional(Expr),
    Keyword {
        name: String,
        value: Expr,
    },
    /// `*iterable`
    Star(Expr),
    /// `**mapping`
    DoubleStar(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    Add,
    Sub,
    Mult,
    MatMult,
    Div,
    FloorDiv,
    Mod,
    Pow,
    LShift,
    RShift,
    BitOr,
    BitXor,
    BitAnd,
}

impl BinOp {
    /// Operator text -> operator, precedence (higher binds tighter), right-associative.
    pub const TABLE: &'static [(&'static str, BinOp, u8, bool)] = &[
        ("|", BinOp::BitOr, 1, false),
        ("^", BinOp::BitXor, 2, false),
        ("&", BinOp::BitAnd, 3, false),
        ("<<", BinOp::LShift, 4, false),
        (">>", BinOp::RShift, 4, false),
        ("+", BinOp::Add, 5, false),
        ("-", BinOp::Sub, 5, false),
        ("*", BinOp::Mult, 6, false),
        ("@", BinOp::MatMult, 6, false),
        ("/", BinOp::Div, 6, false),
        ("//", BinOp::FloorDiv, 6, false),
        ("%", BinOp::Mod, 6, false),
        ("**", BinOp::Pow, 8, true),
    ];

    pub fn from_text(text: &str) -> Option<(BinOp, u8, bool)> {
        BinOp::TABLE
            .iter()
            .find(|(t, ..)| *t == text)
            .map(|&(_, op, p, r)| (op, p, r))
    }

    pub fn symbol(self) -> &'static str {
        BinOp::TABLE
            .iter()
            .find(|(_, op, ..)| *op == self)
            .map(|(t, ..)| *t)
            .unwrap_or("?")
    }
}

/// Precedence of unary `-`, `+`, `~`: above `*`, below `**` (so `-a**b` is `-(a**b)`).
pub const UNARY_PRECEDENCE: u8 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    Neg,
    Pos,
    Invert,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoolOp {
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtE,
    Gt,
    GtE,
    In,
    NotIn,
    Is,
    IsNot,
}

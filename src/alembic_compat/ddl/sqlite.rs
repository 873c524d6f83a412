//! SQLite DDL as SQLAlchemy 2.1's `SQLiteDDLCompiler` / `SQLiteTypeCompiler` and Alembic
//! 1.20's `SQLiteImpl` render it. Ops are first resolved into a [`TableDef`] (names from naming
//! conventions, constraints in SQLAlchemy's creation order), which batch mode also builds from a
//! reflected table; rendering then only formats.

use super::{DdlError, RenderOptions, FAKE_ADDRESS};
use crate::alembic_compat::ops::{
    AlterColumn, Autoincrement, Column, Constraint, CreateTable, Index, IndexKey, Literal, Name,
    Op, ServerDefault, SqlExpr, Statement, TableClause, TypeSpec,
};
use crate::alembic_compat::pattern::Pattern;

/// Alembic's `UserWarning` (origin, message) when `op.add_column` outside batch mode leaves
/// out the CHECK a Boolean or Enum column brings: SQLite cannot ALTER it in.
pub const IMPLICIT_CONSTRAINT_WARNING: (&str, &str) = (
    "alembic/ddl/sqlite.py:84",
    "Skipping unsupported ALTER for creation of implicit constraint. Please refer to the \
     batch mode feature which allows for SQLite migrations using a copy-and-move strategy.",
);

/// Whether `op` is an `add_column` whose type brings a CHECK (see
/// [`IMPLICIT_CONSTRAINT_WARNING`]).
pub fn skips_implicit_constraint(op: &Op) -> bool {
    matches!(op, Op::AddColumn { column, .. }
        if column.type_.as_ref().is_some_and(|t| type_bound_check(&column.name, t).is_some()))
}

const NO_CONSTRAINT_ALTER: &str = "No support for ALTER of constraints in SQLite dialect. \
Please refer to the batch mode feature which allows for SQLite migrations using a \
copy-and-move strategy.";

const SQLA_BACKGROUND_L7DE: &str = " (Background on this error at: https://sqlalche.me/e/21/l7de)";

/// `SQLiteIdentifierPreparer.reserved_words`, sorted.
const RESERVED: &[&str] = &[
    "add",
    "after",
    "all",
    "alter",
    "analyze",
    "and",
    "as",
    "asc",
    "attach",
    "autoincrement",
    "before",
    "begin",
    "between",
    "by",
    "cascade",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "commit",
    "conflict",
    "constraint",
    "create",
    "cross",
    "current_date",
    "current_time",
    "current_timestamp",
    "database",
    "default",
    "deferrable",
    "deferred",
    "delete",
    "desc",
    "detach",
    "distinct",
    "drop",
    "each",
    "else",
    "end",
    "escape",
    "except",
    "exclusive",
    "exists",
    "explain",
    "fail",
    "false",
    "for",
    "foreign",
    "from",
    "full",
    "glob",
    "group",
    "having",
    "if",
    "ignore",
    "immediate",
    "in",
    "index",
    "indexed",
    "initially",
    "inner",
    "insert",
    "instead",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "key",
    "left",
    "like",
    "limit",
    "match",
    "natural",
    "not",
    "notnull",
    "null",
    "of",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "plan",
    "pragma",
    "primary",
    "query",
    "raise",
    "references",
    "reindex",
    "rename",
    "replace",
    "restrict",
    "right",
    "rollback",
    "row",
    "select",
    "set",
    "table",
    "temp",
    "temporary",
    "then",
    "to",
    "transaction",
    "trigger",
    "true",
    "union",
    "unique",
    "update",
    "using",
    "vacuum",
    "values",
    "view",
    "virtual",
    "when",
    "where",
];

/// `IdentifierPreparer.quote`: quoted when reserved, not all `[A-Za-z0-9_$]`, starting with a
/// digit or `$`, or not all lower case.
pub fn quote(ident: &str) -> std::borrow::Cow<'_, str> {
    // Legal unquoted: lower-case ASCII letters, digits, `_` and `$`, not starting with a digit
    // or `$`, and not a reserved word (anything upper-case or non-ASCII is quoted).
    let needs = ident.is_empty()
        || ident.starts_with(|c: char| c.is_ascii_digit() || c == '$')
        || !ident
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'$')
        || is_reserved(ident);
    // Borrowed when unquoted: statement rendering quotes every name of every row's statement.
    if needs {
        format!("\"{}\"", ident.replace('"', "\"\"")).into()
    } else {
        ident.into()
    }
}

/// A hash lookup: every statement a data loop renders quotes each of its names, and a binary
/// search costs about eight string comparisons per name.
fn is_reserved(ident: &str) -> bool {
    static SET: std::sync::OnceLock<rustc_hash::FxHashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| RESERVED.iter().copied().collect())
        .contains(ident)
}

pub fn format_table(name: &str, schema: Option<&str>) -> String {
    match schema {
        Some(s) => format!("{}.{}", quote(s), quote(name)),
        None => quote(name).into_owned(),
    }
}

/// A string literal as SQLAlchemy's `String` literal processor renders it.
pub fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Python's `repr(float)`.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    if a == 0.0 || (1e-4..1e16).contains(&a) {
        let s = format!("{f:?}");
        if s.contains('.') || s.contains('e') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        // Python: shortest digits, exponent with sign and at least two digits.
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ("-", d),
            None => ("+", exp),
        };
        format!("{mant}e{sign}{digits:0>2}")
    }
}

/// A literal inside DDL or `--sql` output (`literal_binds`).
pub fn literal_sql(l: &Literal) -> String {
    match l {
        Literal::None => "NULL".into(),
        Literal::Bool(b) => if *b { "1" } else { "0" }.into(),
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => py_float(*f),
        Literal::Str(s) => string_literal(s),
        Literal::Bytes(b) => bytes_literal(b),
        Literal::List(items) => format!(
            "({})",
            items.iter().map(literal_sql).collect::<Vec<_>>().join(", ")
        ),
        Literal::Type(t) => t.name.clone(),
    }
}

/// Bytes as SQLAlchemy's LargeBinary literal processor writes them on SQLite: decoded as
/// UTF-8 into a string literal (see [`check_bytes_literal`] for what it cannot decode).
pub fn bytes_literal(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => string_literal(s),
        Err(_) => format!(
            "X'{}'",
            b.iter().map(|x| format!("{x:02X}")).collect::<String>()
        ),
    }
}

/// SQLAlchemy's CompileError for bytes that are not UTF-8, which its literal processor
/// cannot decode.
pub fn check_bytes_literal(l: &Literal) -> Result<(), DdlError> {
    match l {
        Literal::Bytes(b) if std::str::from_utf8(b).is_err() => {
            Err(DdlError::Compile(unrenderable_literal(
                &crate::alembic_compat::eval::builtins::bytes_repr(b),
                "BLOB",
            )))
        }
        _ => Ok(()),
    }
}

/// A rendered type as SQLAlchemy's `visit_cast` splits it: what goes inside `CAST(x AS ...)`
/// and the `COLLATE ...` it moves after the parenthesis (SQLite takes none inside).
pub fn cast_type_parts(rendered: &str) -> (&str, &str) {
    match rendered.find(" COLLATE ") {
        Some(at) => rendered.split_at(at),
        None => (rendered, ""),
    }
}

/// SQLAlchemy's CompileError text for a value its type's literal processor fails on.
pub fn unrenderable_literal(repr: &str, datatype: &str) -> String {
    format!(
        "Could not render literal value \"{repr}\" with datatype {datatype}; see parent stack trace for more detail."
    )
}

/// ANSI functions SQLAlchemy renders without parentheses.
const NO_PAREN_FUNCS: &[&str] = &[
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "localtime",
    "session_user",
    "user",
];

/// A SQL expression with literal values inlined, as `compile(literal_binds=True)` on SQLite.
pub fn render_expr(e: &SqlExpr) -> String {
    match e {
        SqlExpr::Text(s) => s.clone(),
        SqlExpr::Literal(l) => literal_sql(l),
        SqlExpr::Column(c) => quote(c).into_owned(),
        SqlExpr::Null => "NULL".into(),
        SqlExpr::True => "1".into(),
        SqlExpr::False => "0".into(),
        SqlExpr::Func { name, args } => {
            let lname = name.to_lowercase();
            if lname == "now" {
                return "CURRENT_TIMESTAMP".into();
            }
            if lname == "localtimestamp" {
                return "DATETIME(CURRENT_TIMESTAMP, \"localtime\")".into();
            }
            if NO_PAREN_FUNCS.contains(&lname.as_str()) && args.is_empty() {
                return name.to_uppercase();
            }
            let fname = if lname == "char_length" {
                "length".to_string()
            } else {
                name.clone()
            };
            format!(
                "{}({})",
                fname,
                args.iter().map(render_expr).collect::<Vec<_>>().join(", ")
            )
        }
        SqlExpr::Binary { left, op, right } => {
            format!("{} {} {}", render_expr(left), op, render_expr(right))
        }
        SqlExpr::Unary { op, operand } => {
            if op == "-" {
                format!("-{}", render_expr(operand))
            } else {
                format!("{} {}", op, render_expr(operand))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// types

/// SQLAlchemy's `_type_affinity`: batch mode CASTs a column whose affinity changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affinity {
    Integer,
    String,
    Boolean,
    DateTime,
    Date,
    Time,
    Float,
    Numeric,
    Binary,
    Json,
    Uuid,
    Interval,
    Null,
    Other,
}

/// Why a type can't be rendered: SQLAlchemy's message, and whether the exception is an
/// `UnsupportedCompilationError` (its `str()` carries a "Background" link).
#[derive(Debug, Clone)]
pub struct TypeError {
    pub message: String,
    pub unsupported: bool,
}

impl TypeError {
    /// The error for the type on its own (e.g. `add_column`, `alter_column`).
    pub fn bare(self) -> DdlError {
        if self.unsupported {
            DdlError::UnsupportedCompilation(format!("{}{}", self.message, SQLA_BACKGROUND_L7DE))
        } else {
            DdlError::Compile(self.message)
        }
    }

    /// The error as CREATE TABLE wraps it (`args[0]` only).
    pub fn in_table(self, table: &str, column: &str) -> DdlError {
        DdlError::Compile(format!(
            "(in table '{table}', column '{column}'): {}",
            self.message
        ))
    }
}

fn arg<'a>(t: &'a TypeSpec, pos: usize, kw: &str) -> Option<&'a Literal> {
    t.kwargs
        .iter()
        .find(|(k, _)| k == kw)
        .map(|(_, v)| v)
        .or_else(|| t.args.get(pos))
}

fn int_arg(t: &TypeSpec, pos: usize, kw: &str) -> Option<i64> {
    match arg(t, pos, kw) {
        Some(Literal::Int(i)) => Some(*i),
        _ => None,
    }
}

fn bool_kw(t: &TypeSpec, kw: &str) -> Option<bool> {
    match t.kwargs.iter().find(|(k, _)| k == kw).map(|(_, v)| v) {
        Some(Literal::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn str_kw<'a>(t: &'a TypeSpec, kw: &str) -> Option<&'a str> {
    match t.kwargs.iter().find(|(k, _)| k == kw).map(|(_, v)| v) {
        Some(Literal::Str(s)) => Some(s),
        _ => None,
    }
}

/// The values of an `Enum(...)`: positional strings.
pub fn enum_values(t: &TypeSpec) -> Vec<String> {
    t.args
        .iter()
        .filter_map(|a| match a {
            Literal::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn string_type(name: &str, t: &TypeSpec) -> String {
    let mut s = name.to_string();
    if let Some(n) = int_arg(t, 0, "length") {
        if n != 0 {
            s += &format!("({n})");
        }
    }
    if let Some(Literal::Str(c)) = arg(t, 1, "collation") {
        s += &format!(" COLLATE {}", quote_collation(c));
    }
    s
}

/// `format_collation` quotes like an identifier but always when it has upper case: it uses
/// the same rules as `quote`.
fn quote_collation(c: &str) -> String {
    quote(c).into_owned()
}

fn numeric_type(name: &str, t: &TypeSpec) -> String {
    match (int_arg(t, 0, "precision"), int_arg(t, 1, "scale")) {
        (None, _) => name.to_string(),
        (Some(p), None) => format!("{name}({p})"),
        (Some(p), Some(s)) => format!("{name}({p}, {s})"),
    }
}

/// Types SQLite's type compiler has no `visit_*` for; SQLAlchemy names them by visit name.
const UNRENDERABLE: &[&str] = &[
    "ARRAY",
    "BIT",
    "BYTEA",
    "CIDR",
    "CITEXT",
    "DATEMULTIRANGE",
    "DATERANGE",
    "HSTORE",
    "INET",
    "INT4MULTIRANGE",
    "INT4RANGE",
    "INT8MULTIRANGE",
    "INT8RANGE",
    "INTERVAL",
    "JSONPATH",
    "MACADDR",
    "MACADDR8",
    "MONEY",
    "NUMMULTIRANGE",
    "NUMRANGE",
    "OID",
    "REGCLASS",
    "REGCONFIG",
    "TSMULTIRANGE",
    "TSQUERY",
    "TSRANGE",
    "TSTZMULTIRANGE",
    "TSTZRANGE",
    "TSVECTOR",
];

/// The DDL type text and affinity of a type on SQLite.
pub fn render_type(t: &TypeSpec) -> Result<(String, Affinity), TypeError> {
    let Some(custom) = &t.custom else {
        return render_builtin_type(t);
    };
    // A revision file's own subclass: SQLAlchemy dispatches on its `__visit_name__`, so it
    // renders as its base only while that is inherited; values still bind as the base's.
    match &custom.ddl {
        Some(ddl) => Ok((
            ddl.clone(),
            render_builtin_type(t).map_or(Affinity::Other, |r| r.1),
        )),
        None if custom.visit_name == t.name => render_builtin_type(t),
        None => Err(TypeError {
            message: format!(
                "Compiler <sqlalchemy.dialects.sqlite.base.SQLiteTypeCompiler object at \
                 {FAKE_ADDRESS}> can't render element of type {}",
                custom.class_name
            ),
            unsupported: true,
        }),
    }
}

fn render_builtin_type(t: &TypeSpec) -> Result<(String, Affinity), TypeError> {
    use Affinity as A;
    let pg = t.dialect.as_deref() == Some("postgresql");
    let name = t.name.as_str();
    if name == "ARRAY" || (pg && UNRENDERABLE.contains(&name)) {
        return Err(TypeError {
            message: format!(
                "Compiler <sqlalchemy.dialects.sqlite.base.SQLiteTypeCompiler object at \
                 {FAKE_ADDRESS}> can't render element of type {name}"
            ),
            unsupported: true,
        });
    }
    let r = match name {
        "Integer" | "INTEGER" | "INT" => ("INTEGER".into(), A::Integer),
        "BigInteger" | "BIGINT" => ("BIGINT".into(), A::Integer),
        "SmallInteger" | "SMALLINT" => ("SMALLINT".into(), A::Integer),
        "String" | "Unicode" | "VARCHAR" => (string_type("VARCHAR", t), A::String),
        "NVARCHAR" => (string_type("NVARCHAR", t), A::String),
        "CHAR" => (string_type("CHAR", t), A::String),
        "NCHAR" => (string_type("NCHAR", t), A::String),
        "Text" | "UnicodeText" | "TEXT" => (string_type("TEXT", t), A::String),
        "CLOB" => (string_type("CLOB", t), A::String),
        "Enum" | "ENUM" => {
            let len = int_arg(t, usize::MAX, "length").unwrap_or_else(|| {
                enum_values(t)
                    .iter()
                    .map(|v| v.chars().count() as i64)
                    .max()
                    .unwrap_or(0)
            });
            let mut s = "VARCHAR".to_string();
            if len != 0 {
                s += &format!("({len})");
            }
            (s, A::String)
        }
        "Boolean" | "BOOLEAN" => ("BOOLEAN".into(), A::Boolean),
        "DateTime" | "DATETIME" => ("DATETIME".into(), A::DateTime),
        "TIMESTAMP" => ("TIMESTAMP".into(), A::DateTime),
        "Date" | "DATE" => ("DATE".into(), A::Date),
        "Time" | "TIME" => ("TIME".into(), A::Time),
        "Interval" => ("DATETIME".into(), A::Interval),
        "Float" | "FLOAT" => ("FLOAT".into(), A::Float),
        "REAL" => ("REAL".into(), A::Float),
        "Double" | "DOUBLE" => ("DOUBLE".into(), A::Float),
        "DOUBLE_PRECISION" => ("DOUBLE PRECISION".into(), A::Float),
        "Numeric" | "NUMERIC" => (numeric_type("NUMERIC", t), A::Numeric),
        "DECIMAL" => (numeric_type("DECIMAL", t), A::Numeric),
        "LargeBinary" | "BLOB" | "PickleType" => ("BLOB".into(), A::Binary),
        "BINARY" => (binary_type("BINARY", t), A::Binary),
        "VARBINARY" => (binary_type("VARBINARY", t), A::Binary),
        "JSON" => ("JSON".into(), A::Json),
        "JSONB" => ("JSONB".into(), A::Json),
        "Uuid" => ("CHAR(32)".into(), A::Uuid),
        "UUID" => ("UUID".into(), A::Uuid),
        "NullType" => {
            return Err(TypeError {
                message: "Can't generate DDL for NullType(); did you forget to specify a type \
                          on this Column?"
                    .into(),
                unsupported: false,
            })
        }
        other => {
            return Err(TypeError {
                message: format!(
                    "Compiler <sqlalchemy.dialects.sqlite.base.SQLiteTypeCompiler object at \
                     {FAKE_ADDRESS}> can't render element of type {other}"
                ),
                unsupported: true,
            })
        }
    };
    Ok(r)
}

fn binary_type(name: &str, t: &TypeSpec) -> String {
    match int_arg(t, 0, "length") {
        Some(n) if n != 0 => format!("{name}({n})"),
        _ => name.to_string(),
    }
}

pub fn affinity(t: Option<&TypeSpec>) -> Affinity {
    match t {
        None => Affinity::Null,
        Some(t) => render_type(t).map(|r| r.1).unwrap_or(Affinity::Other),
    }
}

/// The `name` of a Boolean or Enum type (SQLAlchemy's `SchemaType`, whose CHECK is named so),
/// whether or not it creates its constraint, as Alembic's batch mode asks for it. Interval
/// and PickleType are schema event targets too, but their `name` goes to the type they wrap,
/// which has none: Python's AttributeError.
pub fn schema_type_name(t: &TypeSpec) -> Result<Option<&str>, DdlError> {
    match t.name.as_str() {
        "Boolean" | "BOOLEAN" | "Enum" | "ENUM" => Ok(str_kw(t, "name")),
        "Interval" | "PickleType" => Err(DdlError::Attribute(format!(
            "'{}' object has no attribute 'name'",
            if t.name == "Interval" {
                "DateTime"
            } else {
                "LargeBinary"
            }
        ))),
        _ => Ok(None),
    }
}

/// The CHECK a `Boolean(create_constraint=True)` / `Enum(create_constraint=True)` adds, and
/// its name (the type's `name=`).
fn type_bound_check(col: &str, t: &TypeSpec) -> Option<(Option<String>, String)> {
    let name = str_kw(t, "name").map(str::to_string);
    match t.name.as_str() {
        "Boolean" | "BOOLEAN" if bool_kw(t, "create_constraint") == Some(true) => {
            Some((name, format!("{} IN (0, 1)", quote(col))))
        }
        "Enum" | "ENUM" if bool_kw(t, "create_constraint") == Some(true) => {
            let vals: Vec<String> = enum_values(t).iter().map(|v| string_literal(v)).collect();
            Some((name, format!("{} IN ({})", quote(col), vals.join(", "))))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// resolved tables

/// A column ready to render.
#[derive(Clone, Debug, PartialEq)]
pub struct ColDef {
    pub name: String,
    pub type_: Option<TypeSpec>,
    pub nullable: bool,
    pub primary_key: bool,
    pub autoincrement: Autoincrement,
    /// What follows `DEFAULT` before SQLite's parenthesizing rule, e.g. `'x'`, `0`,
    /// `CURRENT_TIMESTAMP`, `lower('ABC')`.
    pub default: Option<String>,
    /// Column-level constraints, rendered (`CHECK (qty > 0)`), with their names.
    pub inline: Vec<(Option<String>, String)>,
    pub has_fk: bool,
    /// Whether the type's own CHECK (Boolean/Enum `create_constraint`) is produced.
    pub type_events: bool,
    /// `sqlite_on_conflict_not_null`, `_primary_key`, `_unique`: SQLite's conflict
    /// clauses for this column's NOT NULL, primary key and single-column UNIQUE.
    pub on_conflict: ColumnConflicts,
    /// `sa.Computed(...)`, or a generated column reflected.
    pub computed: Option<Computed>,
}

/// `GENERATED ALWAYS AS (sqltext) [STORED|VIRTUAL]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Computed {
    pub sqltext: String,
    /// `persisted=`: True is STORED, False VIRTUAL, None says neither.
    pub persisted: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ColumnConflicts {
    pub not_null: Option<String>,
    pub primary_key: Option<String>,
    pub unique: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConsDef {
    Unique {
        name: Option<String>,
        columns: Vec<String>,
        /// `sqlite_on_conflict=` of the constraint itself.
        on_conflict: Option<String>,
    },
    Check {
        name: Option<String>,
        sql: String,
        /// Set for a Boolean/Enum's own CHECK: the column it belongs to.
        type_bound: Option<String>,
    },
    ForeignKey {
        name: Option<String>,
        columns: Vec<String>,
        ref_schema: Option<String>,
        ref_table: String,
        ref_columns: Vec<String>,
        ondelete: Option<String>,
        onupdate: Option<String>,
        deferrable: Option<bool>,
        initially: Option<String>,
        match_: Option<String>,
    },
}

impl ConsDef {
    pub fn name(&self) -> Option<&str> {
        match self {
            ConsDef::Unique { name, .. }
            | ConsDef::Check { name, .. }
            | ConsDef::ForeignKey { name, .. } => name.as_deref(),
        }
    }

    pub fn columns(&self) -> Vec<String> {
        match self {
            ConsDef::Unique { columns, .. } | ConsDef::ForeignKey { columns, .. } => {
                columns.clone()
            }
            ConsDef::Check { .. } => vec![],
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct IdxDef {
    pub name: Option<String>,
    pub unique: bool,
    /// Rendered keys.
    pub exprs: Vec<String>,
    /// The plain column names when every key is a column (batch re-targets those).
    pub columns: Option<Vec<String>>,
    pub where_: Option<String>,
    pub if_not_exists: bool,
    /// Made by `Column(index=True)`.
    pub column_flag: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct TableDef {
    pub name: String,
    pub schema: Option<String>,
    pub columns: Vec<ColDef>,
    pub pk_name: Option<String>,
    pub pk_columns: Vec<String>,
    pub constraints: Vec<ConsDef>,
    pub indexes: Vec<IdxDef>,
    pub autoincrement: bool,
    pub with_rowid: bool,
    pub strict: bool,
    pub prefixes: Vec<String>,
    pub if_not_exists: bool,
    /// `PrimaryKeyConstraint(..., sqlite_on_conflict=...)`.
    pub pk_on_conflict: Option<String>,
}

/// Naming conventions as SQLAlchemy applies them (`sqlalchemy.sql.naming`).
pub struct Conventions<'a> {
    pub pairs: &'a [(String, String)],
}

pub struct NameCtx<'a> {
    pub table: &'a str,
    pub columns: &'a [String],
    pub referred_table: Option<&'a str>,
    pub referred_columns: &'a [String],
}

impl Conventions<'_> {
    fn template(&self, key: &str) -> Option<&str> {
        if self.pairs.is_empty() {
            return (key == "ix").then_some("ix_%(column_0_label)s");
        }
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The name SQLAlchemy gives the constraint or index: `given` unless the convention for
    /// `key` applies. Fails as SQLAlchemy does, at the first token it cannot fill: an unknown
    /// token is a `KeyError`, `%(constraint_name)s` of an unnamed constraint an
    /// `InvalidRequestError`.
    pub fn apply(
        &self,
        key: &str,
        given: Option<&Name>,
        ctx: &NameCtx,
    ) -> Result<Option<String>, DdlError> {
        if let Some(Name::Final(n)) = given {
            return Ok(Some(n.clone()));
        }
        let given = given.map(|n| n.as_str().to_string());
        let Some(tpl) = self.template(key) else {
            return Ok(given);
        };
        if given.is_some() && !tpl.contains("%(constraint_name)s") {
            return Ok(given);
        }
        // Python's `%` formatting with a mapping: `%(key)s` is the token's value, `%%` a '%'.
        static TOKEN: Pattern = Pattern::new(r"%\((\w+)\)s|%(%)");
        let mut out = String::with_capacity(tpl.len());
        let mut done = 0;
        for c in TOKEN.captures_iter(tpl) {
            let Some(whole) = c.get(0) else { continue };
            out.push_str(&tpl[done..whole.start()]);
            if c.get(2).is_some() {
                out.push('%');
            } else {
                out.push_str(&token_value(&c[1], given.as_deref(), ctx)?);
            }
            done = whole.end();
        }
        out.push_str(&tpl[done..]);
        Ok(Some(out))
    }
}

fn token_value(tok: &str, given: Option<&str>, ctx: &NameCtx) -> Result<String, DdlError> {
    if tok == "constraint_name" {
        return given.map(str::to_string).ok_or_else(|| {
            DdlError::InvalidRequest(
                "Naming convention including %(constraint_name)s token requires that \
                 constraint is explicitly named."
                    .into(),
            )
        });
    }
    if tok == "table_name" {
        return Ok(ctx.table.to_string());
    }
    if tok == "referred_table_name" {
        return Ok(ctx.referred_table.unwrap_or_default().to_string());
    }
    let (cols, rest, label_table) = if let Some(r) = tok.strip_prefix("referred_column_") {
        (ctx.referred_columns, r, ctx.referred_table.unwrap_or(""))
    } else if let Some(r) = tok.strip_prefix("column_") {
        (ctx.columns, r, ctx.table)
    } else {
        return Err(unknown_token(tok));
    };
    let label = |c: &String| format!("{label_table}_{c}");
    match rest {
        "0N_name" | "0N_key" => return Ok(cols.concat()),
        "0_N_name" | "0_N_key" => return Ok(cols.join("_")),
        "0N_label" => return Ok(cols.iter().map(label).collect::<Vec<_>>().concat()),
        "0_N_label" => return Ok(cols.iter().map(label).collect::<Vec<_>>().join("_")),
        _ => {}
    }
    // `column_<i>_name`: the i-th column, or "" past the last one, as SQLAlchemy's
    // ConventionDict gives it.
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let index: usize = rest[..digits].parse().map_err(|_| unknown_token(tok))?;
    let col = cols.get(index);
    match &rest[digits..] {
        "_name" | "_key" => Ok(col.cloned().unwrap_or_default()),
        "_label" => Ok(col.map(label).unwrap_or_default()),
        _ => Err(unknown_token(tok)),
    }
}

/// Python's `KeyError` from `ConventionDict`: its `str()` is the quoted token.
fn unknown_token(tok: &str) -> DdlError {
    DdlError::Key(format!("'{tok}'"))
}

fn lit_bool(kwargs: &[(String, Literal)], key: &str) -> Option<bool> {
    kwargs
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| match v {
            Literal::Bool(b) => Some(*b),
            _ => None,
        })
}

/// `"table.col"` / `"schema.table.col"`.
pub fn split_fk_target(target: &str) -> (Option<String>, String, String) {
    let parts: Vec<&str> = target.split('.').collect();
    match parts.as_slice() {
        [t, c] => (None, t.to_string(), c.to_string()),
        [s @ .., t, c] if !s.is_empty() => (Some(s.join(".")), t.to_string(), c.to_string()),
        _ => (None, String::new(), target.to_string()),
    }
}

/// What `DEFAULT` renders from a `server_default=`.
pub fn default_text(sd: &ServerDefault) -> String {
    match sd {
        ServerDefault::Str(s) => string_literal(s),
        ServerDefault::Expr(e) => render_expr(e),
    }
}

fn check_sql(e: &SqlExpr) -> String {
    render_expr(e)
}

fn col_def(c: &Column, table: &str, conv: &Conventions) -> Result<ColDef, DdlError> {
    let inline = c
        .constraints
        .iter()
        .filter_map(|k| match k {
            Constraint::Check { name, sqltext } => Some(
                conv.apply(
                    "ck",
                    name.as_ref(),
                    &NameCtx {
                        table,
                        columns: &[],
                        referred_table: None,
                        referred_columns: &[],
                    },
                )
                .map(|n| (n, check_sql(sqltext))),
            ),
            _ => None,
        })
        .collect::<Result<_, _>>()?;
    Ok(ColDef {
        name: c.name.clone(),
        type_: c.type_.clone(),
        nullable: c.nullable.unwrap_or(!c.primary_key),
        primary_key: c.primary_key,
        autoincrement: c.autoincrement.clone(),
        default: c.server_default.as_ref().map(default_text),
        inline,
        has_fk: !c.foreign_keys.is_empty(),
        type_events: true,
        on_conflict: ColumnConflicts {
            not_null: lit_str(&c.kwargs, "sqlite_on_conflict_not_null"),
            primary_key: lit_str(&c.kwargs, "sqlite_on_conflict_primary_key"),
            unique: lit_str(&c.kwargs, "sqlite_on_conflict_unique"),
        },
        computed: c.computed.as_ref().map(|g| Computed {
            sqltext: render_expr(&g.sqltext),
            persisted: g.persisted,
        }),
    })
}

/// A string keyword argument (`sqlite_on_conflict="IGNORE"`).
fn lit_str(kwargs: &[(String, Literal)], key: &str) -> Option<String> {
    kwargs
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| match v {
            Literal::Str(s) => Some(s.clone()),
            _ => None,
        })
}

/// Resolves a constraint written in Python into its final form.
pub fn cons_def(
    c: &Constraint,
    table: &str,
    conv: &Conventions,
) -> Result<Option<ConsDef>, DdlError> {
    Ok(match c {
        Constraint::PrimaryKey { .. } => None,
        Constraint::Unique {
            name,
            columns,
            kwargs,
        } => Some(ConsDef::Unique {
            on_conflict: lit_str(kwargs, "sqlite_on_conflict"),
            name: conv.apply(
                "uq",
                name.as_ref(),
                &NameCtx {
                    table,
                    columns,
                    referred_table: None,
                    referred_columns: &[],
                },
            )?,
            columns: columns.clone(),
        }),
        Constraint::Check { name, sqltext } => Some(ConsDef::Check {
            name: conv.apply(
                "ck",
                name.as_ref(),
                &NameCtx {
                    table,
                    columns: &[],
                    referred_table: None,
                    referred_columns: &[],
                },
            )?,
            sql: check_sql(sqltext),
            type_bound: None,
        }),
        Constraint::ForeignKey {
            name,
            columns,
            refcolumns,
            ondelete,
            onupdate,
            deferrable,
            initially,
            match_,
            ..
        } => {
            let targets: Vec<_> = refcolumns.iter().map(|r| split_fk_target(r)).collect();
            let (ref_schema, ref_table) = targets
                .first()
                .map(|(s, t, _)| (s.clone(), t.clone()))
                .unwrap_or_default();
            let ref_columns: Vec<String> = targets.iter().map(|t| t.2.clone()).collect();
            Some(ConsDef::ForeignKey {
                name: conv.apply(
                    "fk",
                    name.as_ref(),
                    &NameCtx {
                        table,
                        columns,
                        referred_table: Some(&ref_table),
                        referred_columns: &ref_columns,
                    },
                )?,
                columns: columns.clone(),
                ref_schema,
                ref_table,
                ref_columns,
                ondelete: ondelete.clone(),
                onupdate: onupdate.clone(),
                deferrable: *deferrable,
                initially: initially.clone(),
                match_: match_.clone(),
            })
        }
    })
}

/// The constraints a column adds when it joins a table, in SQLAlchemy's order: its
/// UniqueConstraint (in `_set_parent`), then its type's CHECK and its ForeignKeys (attach
/// events, registered in that order by `Column.__init__`).
pub fn column_implicit(
    c: &Column,
    table: &str,
    conv: &Conventions,
) -> Result<Vec<ConsDef>, DdlError> {
    let mut out = vec![];
    let cols = vec![c.name.clone()];
    if c.unique == Some(true) && c.index != Some(true) {
        out.push(ConsDef::Unique {
            name: conv.apply(
                "uq",
                None,
                &NameCtx {
                    table,
                    columns: &cols,
                    referred_table: None,
                    referred_columns: &[],
                },
            )?,
            columns: cols.clone(),
            // The column's sqlite_on_conflict_unique applies when it is rendered.
            on_conflict: None,
        });
    }
    if let Some(t) = &c.type_ {
        if let Some(ck) = type_bound_ck(&c.name, t, table, conv)? {
            out.push(ck);
        }
    }
    for fk in &c.foreign_keys {
        let (ref_schema, ref_table, ref_col) = split_fk_target(&fk.target);
        let refs = vec![ref_col];
        out.push(ConsDef::ForeignKey {
            name: conv.apply(
                "fk",
                fk.name.as_ref(),
                &NameCtx {
                    table,
                    columns: &cols,
                    referred_table: Some(&ref_table),
                    referred_columns: &refs,
                },
            )?,
            columns: cols.clone(),
            ref_schema,
            ref_table,
            ref_columns: refs,
            ondelete: fk.ondelete.clone(),
            onupdate: fk.onupdate.clone(),
            deferrable: fk.deferrable,
            initially: fk.initially.clone(),
            match_: fk.match_.clone(),
        });
    }
    Ok(out)
}

pub fn type_bound_ck(
    col: &str,
    t: &TypeSpec,
    table: &str,
    conv: &Conventions,
) -> Result<Option<ConsDef>, DdlError> {
    let Some((name, sql)) = type_bound_check(col, t) else {
        return Ok(None);
    };
    let cols = vec![col.to_string()];
    let name = conv.apply(
        "ck",
        name.map(Name::Plain).as_ref(),
        &NameCtx {
            table,
            columns: &cols,
            referred_table: None,
            referred_columns: &[],
        },
    )?;
    Ok(Some(ConsDef::Check {
        name,
        sql,
        type_bound: Some(col.to_string()),
    }))
}

/// The index `Column(index=True)` makes.
fn column_index(c: &Column, table: &str, conv: &Conventions) -> Result<Option<IdxDef>, DdlError> {
    if c.index != Some(true) {
        return Ok(None);
    }
    let cols = vec![c.name.clone()];
    Ok(Some(IdxDef {
        name: conv.apply(
            "ix",
            None,
            &NameCtx {
                table,
                columns: &cols,
                referred_table: None,
                referred_columns: &[],
            },
        )?,
        unique: c.unique == Some(true),
        exprs: vec![quote(&c.name).into_owned()],
        columns: Some(cols),
        where_: None,
        if_not_exists: false,
        column_flag: true,
    }))
}

pub fn table_def(ct: &CreateTable, opts: &RenderOptions) -> Result<TableDef, DdlError> {
    let conv = Conventions {
        pairs: &opts.naming_convention,
    };
    let t = ct.name.as_str();
    let mut columns: Vec<ColDef> = ct
        .columns
        .iter()
        .map(|c| col_def(c, t, &conv))
        .collect::<Result<_, _>>()?;
    let mut pk_name = None;
    let mut pk_columns: Vec<String> = columns
        .iter()
        .filter(|c| c.primary_key)
        .map(|c| c.name.clone())
        .collect();
    let mut explicit_pk = None;
    let mut pk_on_conflict = None;
    for k in &ct.constraints {
        if let Constraint::PrimaryKey {
            name,
            columns: pc,
            kwargs,
        } = k
        {
            explicit_pk = Some((name.clone(), pc.clone()));
            pk_on_conflict = lit_str(kwargs, "sqlite_on_conflict");
        }
    }
    if let Some((name, pc)) = explicit_pk {
        pk_name = conv.apply(
            "pk",
            name.as_ref(),
            &NameCtx {
                table: t,
                columns: &pc,
                referred_table: None,
                referred_columns: &[],
            },
        )?;
        for c in columns.iter_mut() {
            if pc.contains(&c.name) {
                c.primary_key = true;
                let user_nullable = ct
                    .columns
                    .iter()
                    .find(|x| x.name == c.name)
                    .and_then(|x| x.nullable);
                if user_nullable.is_none() {
                    c.nullable = false;
                }
            }
        }
        pk_columns = pc;
    } else {
        // Every Table has a primary key constraint, named when it is attached, so a broken
        // `pk` convention fails even for a table without primary key columns (the name of
        // an empty one is never rendered).
        let name = conv.apply(
            "pk",
            None,
            &NameCtx {
                table: t,
                columns: &pk_columns,
                referred_table: None,
                referred_columns: &[],
            },
        )?;
        if !pk_columns.is_empty() {
            pk_name = name;
        }
    }
    let mut constraints = vec![];
    for k in &ct.constraints {
        constraints.extend(cons_def(k, t, &conv)?);
    }
    let mut indexes = vec![];
    for c in &ct.columns {
        constraints.extend(column_implicit(c, t, &conv)?);
        indexes.extend(column_index(c, t, &conv)?);
    }
    Ok(TableDef {
        name: ct.name.clone(),
        schema: ct.schema.clone(),
        columns,
        pk_name,
        pk_columns,
        constraints,
        indexes,
        autoincrement: lit_bool(&ct.kwargs, "sqlite_autoincrement").unwrap_or(false),
        with_rowid: lit_bool(&ct.kwargs, "sqlite_with_rowid").unwrap_or(true),
        strict: lit_bool(&ct.kwargs, "sqlite_strict").unwrap_or(false),
        prefixes: ct.prefixes.clone(),
        if_not_exists: ct.if_not_exists,
        pk_on_conflict,
    })
}

/// `SQLiteDDLCompiler.get_column_specification`.
pub fn column_spec(c: &ColDef, t: &TableDef) -> Result<String, TypeError> {
    let ty = match &c.type_ {
        Some(ty) => render_type(ty)?,
        None => render_type(&TypeSpec {
            dialect: None,
            name: "NullType".into(),
            args: vec![],
            kwargs: vec![],
            custom: None,
        })?,
    };
    let mut s = format!("{} {}", quote(&c.name), ty.0);
    if let Some(d) = &c.default {
        let starts_quoted = d.trim_start().starts_with(['\'', '"', '(']);
        let has_nonword = d
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .any(|ch| !(ch.is_alphanumeric() || ch == '_'));
        if !starts_quoted && has_nonword {
            s += &format!(" DEFAULT ({d})");
        } else {
            s += &format!(" DEFAULT {d}");
        }
    }
    if !c.nullable {
        s += " NOT NULL";
        s += &on_conflict(c.on_conflict.not_null.as_ref());
    }
    if c.primary_key {
        if c.autoincrement == Autoincrement::True && t.pk_columns.len() != 1 {
            return Err(TypeError {
                message: "SQLite does not support autoincrement for composite primary keys".into(),
                unsupported: false,
            });
        }
        if t.autoincrement && t.pk_columns.len() == 1 && ty.1 == Affinity::Integer && !c.has_fk {
            s += " PRIMARY KEY";
            s += &on_conflict(c.on_conflict.primary_key.as_ref());
            s += " AUTOINCREMENT";
        }
    }
    if let Some(g) = &c.computed {
        s += &format!(" GENERATED ALWAYS AS ({})", g.sqltext);
        match g.persisted {
            Some(true) => s += " STORED",
            Some(false) => s += " VIRTUAL",
            None => {}
        }
    }
    for (name, body) in &c.inline {
        s += " ";
        if let Some(n) = name {
            s += &format!("CONSTRAINT {} ", quote(n));
        }
        s += &format!("CHECK ({body})");
    }
    Ok(s)
}

/// SQLite's ` ON CONFLICT <resolution>`, when there is one.
fn on_conflict(clause: Option<&String>) -> String {
    clause.map_or(String::new(), |c| format!(" ON CONFLICT {c}"))
}

/// A one-column constraint without a clause of its own takes its column's
/// (`sqlite_on_conflict_unique` / `_primary_key`), as SQLAlchemy's compiler does.
fn single_column_conflict<'t>(
    t: &'t TableDef,
    columns: &[String],
    of: impl Fn(&'t ColumnConflicts) -> Option<&'t String>,
) -> Option<&'t String> {
    match columns {
        [only] => t
            .columns
            .iter()
            .find(|c| c.name == *only)
            .and_then(|c| of(&c.on_conflict)),
        _ => None,
    }
}

fn deferrability(deferrable: Option<bool>, initially: &Option<String>) -> String {
    let mut s = String::new();
    match deferrable {
        Some(true) => s += " DEFERRABLE",
        Some(false) => s += " NOT DEFERRABLE",
        None => {}
    }
    if let Some(i) = initially {
        s += &format!(" INITIALLY {i}");
    }
    s
}

fn preamble(name: Option<&str>) -> String {
    name.map(|n| format!("CONSTRAINT {} ", quote(n)))
        .unwrap_or_default()
}

fn cols_list(cols: &[String]) -> String {
    cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
}

pub fn render_constraint(c: &ConsDef, t: &TableDef) -> Option<String> {
    match c {
        ConsDef::Unique {
            name,
            columns,
            on_conflict,
        } => {
            if columns.is_empty() {
                return Some(String::new());
            }
            let clause = on_conflict
                .as_ref()
                .or_else(|| single_column_conflict(t, columns, |c| c.unique.as_ref()));
            Some(format!(
                "{}UNIQUE ({}){}",
                preamble(name.as_deref()),
                cols_list(columns),
                self::on_conflict(clause)
            ))
        }
        ConsDef::Check { name, sql, .. } => {
            Some(format!("{}CHECK ({})", preamble(name.as_deref()), sql))
        }
        ConsDef::ForeignKey {
            name,
            columns,
            ref_schema,
            ref_table,
            ref_columns,
            ondelete,
            onupdate,
            deferrable,
            initially,
            match_,
        } => {
            // A referent in another schema is skipped on SQLite (remote table, local schema).
            let remote_schema = ref_schema.as_deref().or(if ref_table == &t.name {
                t.schema.as_deref()
            } else {
                None
            });
            if remote_schema != t.schema.as_deref() {
                return None;
            }
            let mut s = format!(
                "{}FOREIGN KEY({}) REFERENCES {} ({})",
                preamble(name.as_deref()),
                cols_list(columns),
                quote(ref_table),
                cols_list(ref_columns)
            );
            if let Some(m) = match_ {
                s += &format!(" MATCH {m}");
            }
            if let Some(d) = ondelete {
                s += &format!(" ON DELETE {d}");
            }
            if let Some(u) = onupdate {
                s += &format!(" ON UPDATE {u}");
            }
            s += &deferrability(*deferrable, initially);
            Some(s)
        }
    }
}

/// `CREATE TABLE` exactly as `str(CreateTable(t).compile(dialect=sqlite))`.
pub fn render_create_table(t: &TableDef) -> Result<String, DdlError> {
    let mut text = String::from("\nCREATE ");
    if !t.prefixes.is_empty() {
        text += &t.prefixes.join(" ");
        text += " ";
    }
    text += "TABLE ";
    if t.if_not_exists {
        text += "IF NOT EXISTS ";
    }
    text += &format_table(&t.name, t.schema.as_deref());
    text += " (";
    let mut sep = "\n";
    for c in &t.columns {
        let spec = column_spec(c, t).map_err(|e| e.in_table(&t.name, &c.name))?;
        text += sep;
        sep = ", \n";
        text += "\t";
        text += &spec;
    }
    let mut parts = vec![];
    if !t.pk_columns.is_empty() {
        let single_autoinc = t.pk_columns.len() == 1
            && t.autoincrement
            && t.columns.iter().any(|c| {
                c.name == t.pk_columns[0]
                    && !c.has_fk
                    && c.type_
                        .as_ref()
                        .map(|ty| affinity(Some(ty)) == Affinity::Integer)
                        .unwrap_or(false)
            });
        if !single_autoinc {
            let clause = t
                .pk_on_conflict
                .as_ref()
                .or_else(|| single_column_conflict(t, &t.pk_columns, |c| c.primary_key.as_ref()));
            parts.push(format!(
                "{}PRIMARY KEY ({}){}",
                preamble(t.pk_name.as_deref()),
                cols_list(&t.pk_columns),
                on_conflict(clause)
            ));
        }
    }
    for c in &t.constraints {
        if let Some(s) = render_constraint(c, t) {
            parts.push(s);
        }
    }
    let consts = parts.join(", \n\t");
    if !consts.is_empty() {
        text += sep;
        text += "\t";
        text += &consts;
    }
    let mut options = vec![];
    if !t.with_rowid {
        options.push("WITHOUT ROWID");
    }
    if t.strict {
        options.push("STRICT");
    }
    let post = if options.is_empty() {
        String::new()
    } else {
        format!("\n {}", options.join(",\n "))
    };
    text += &format!("\n){post}\n\n");
    Ok(text)
}

pub fn render_create_index(
    idx: &IdxDef,
    table: &str,
    schema: Option<&str>,
) -> Result<String, DdlError> {
    let Some(name) = &idx.name else {
        return Err(DdlError::Compile(
            "CREATE INDEX requires that the index have a name".into(),
        ));
    };
    let mut s = String::from("CREATE ");
    if idx.unique {
        s += "UNIQUE ";
    }
    s += "INDEX ";
    if idx.if_not_exists {
        s += "IF NOT EXISTS ";
    }
    s += &format!(
        "{} ON {} ({})",
        format_table(name, schema),
        quote(table),
        idx.exprs.join(", ")
    );
    if let Some(w) = &idx.where_ {
        s += " WHERE ";
        s += w;
    }
    Ok(s)
}

pub fn idx_def(i: &Index, opts: &RenderOptions) -> Result<IdxDef, DdlError> {
    let conv = Conventions {
        pairs: &opts.naming_convention,
    };
    let colnames: Vec<String> = i
        .keys
        .iter()
        .filter_map(|k| match k {
            IndexKey::Column(c) => Some(c.clone()),
            IndexKey::Expr(_) => None,
        })
        .collect();
    let all_cols = colnames.len() == i.keys.len();
    Ok(IdxDef {
        name: conv.apply(
            "ix",
            i.name.as_ref(),
            &NameCtx {
                table: &i.table,
                columns: &colnames,
                referred_table: None,
                referred_columns: &[],
            },
        )?,
        unique: i.unique,
        exprs: i
            .keys
            .iter()
            .map(|k| match k {
                IndexKey::Column(c) => quote(c).into_owned(),
                IndexKey::Expr(e) => render_expr(e),
            })
            .collect(),
        columns: all_cols.then_some(colnames),
        where_: i.sqlite_where.as_ref().map(render_expr),
        if_not_exists: i.if_not_exists,
        column_flag: false,
    })
}

fn alter_table(table: &str, schema: Option<&str>) -> String {
    format!("ALTER TABLE {}", format_table(table, schema))
}

/// The ALTERs `DefaultImpl.alter_column` emits, in its order; SQLite rejects most of them
/// when they run, as it does under Alembic.
fn alter_column_steps(a: &AlterColumn) -> (Vec<String>, Option<DdlError>) {
    let mut out = vec![];
    let at = alter_table(&a.table, a.schema.as_deref());
    let col = quote(&a.column);
    if let Some(n) = a.nullable {
        out.push(format!(
            "{at} ALTER COLUMN {col} {}",
            if n { "DROP NOT NULL" } else { "SET NOT NULL" }
        ));
    }
    if let Some(sd) = &a.server_default {
        match sd {
            Some(d) => out.push(format!(
                "{at} ALTER COLUMN {col} SET DEFAULT {}",
                default_text(d)
            )),
            None => out.push(format!("{at} ALTER COLUMN {col} DROP DEFAULT")),
        }
    }
    if let Some(t) = &a.type_ {
        match render_type(t) {
            Ok((ty, _)) => out.push(format!("{at} ALTER COLUMN {col} TYPE {ty}")),
            Err(e) => return (out, Some(e.bare())),
        }
    }
    if a.comment.is_some() {
        return (
            out,
            Some(DdlError::UnsupportedCompilation(format!(
                "Compiler <sqlalchemy.dialects.sqlite.base.SQLiteDDLCompiler object at \
                 {FAKE_ADDRESS}> can't render element of type <class \
                 'alembic.ddl.base.ColumnComment'>: <class 'alembic.ddl.base.ColumnComment'> \
                 construct has no default compilation handler.{SQLA_BACKGROUND_L7DE}"
            ))),
        );
    }
    if let Some(n) = &a.new_column_name {
        out.push(format!("{at} RENAME COLUMN {col} TO {}", quote(n)));
    }
    (out, None)
}

pub fn render_op_steps(op: &Op, opts: &RenderOptions) -> (Vec<String>, Option<DdlError>) {
    match op {
        Op::CreateTable(ct) => {
            let t = match table_def(ct, opts) {
                Ok(t) => t,
                Err(e) => return (vec![], Some(e)),
            };
            let mut out = vec![];
            match render_create_table(&t) {
                Ok(s) => out.push(s),
                Err(e) => return (out, Some(e)),
            }
            for i in &t.indexes {
                match render_create_index(i, &t.name, t.schema.as_deref()) {
                    Ok(s) => out.push(s),
                    Err(e) => return (out, Some(e)),
                }
            }
            (out, None)
        }
        Op::DropTable {
            name,
            schema,
            if_exists,
        } => (
            vec![format!(
                "\nDROP TABLE {}{}",
                if *if_exists { "IF EXISTS " } else { "" },
                format_table(name, schema.as_deref())
            )],
            None,
        ),
        Op::RenameTable { old, new, schema } => (
            vec![format!(
                "{} RENAME TO {}",
                alter_table(old, schema.as_deref()),
                quote(new)
            )],
            None,
        ),
        Op::AddColumn {
            table,
            schema,
            column,
            if_not_exists,
            ..
        } => {
            let ct = CreateTable {
                name: table.clone(),
                schema: schema.clone(),
                columns: vec![column.clone()],
                ..Default::default()
            };
            let t = match table_def(&ct, opts) {
                Ok(t) => t,
                Err(e) => return (vec![], Some(e)),
            };
            let Some(c) = t.columns.first() else {
                return (vec![], None);
            };
            let spec = match column_spec(c, &t) {
                Ok(s) => s,
                Err(e) => return (vec![], Some(e.bare())),
            };
            let mut out = vec![format!(
                "{} ADD COLUMN {}{}",
                alter_table(table, schema.as_deref()),
                if *if_not_exists { "IF NOT EXISTS " } else { "" },
                spec
            )];
            // Every explicit constraint the column brings is an ALTER SQLite can't do; the
            // Boolean/Enum CHECK is skipped with a warning.
            if t.constraints.iter().any(|k| {
                !matches!(
                    k,
                    ConsDef::Check {
                        type_bound: Some(_),
                        ..
                    }
                )
            }) {
                return (
                    out,
                    Some(DdlError::NotImplemented(NO_CONSTRAINT_ALTER.into())),
                );
            }
            for i in &t.indexes {
                match render_create_index(i, table, schema.as_deref()) {
                    Ok(s) => out.push(s),
                    Err(e) => return (out, Some(e)),
                }
            }
            (out, None)
        }
        Op::DropColumn {
            table,
            schema,
            column,
            if_exists,
            ..
        } => (
            vec![format!(
                "{} DROP COLUMN {}{}",
                alter_table(table, schema.as_deref()),
                if *if_exists { "IF EXISTS " } else { "" },
                quote(column)
            )],
            None,
        ),
        Op::AlterColumn(a) => alter_column_steps(a),
        Op::CreateIndex(i) => {
            let d = match idx_def(i, opts) {
                Ok(d) => d,
                Err(e) => return (vec![], Some(e)),
            };
            match render_create_index(&d, &i.table, i.schema.as_deref()) {
                Ok(s) => (vec![s], None),
                Err(e) => (vec![], Some(e)),
            }
        }
        Op::DropIndex {
            name,
            schema,
            if_exists,
            ..
        } => (
            vec![format!(
                "\nDROP INDEX {}{}",
                if *if_exists { "IF EXISTS " } else { "" },
                format_table(name.as_str(), schema.as_deref())
            )],
            None,
        ),
        Op::CreateUniqueConstraint { .. }
        | Op::CreateForeignKey { .. }
        | Op::CreateCheckConstraint { .. }
        | Op::CreatePrimaryKey { .. }
        | Op::DropConstraint { .. } => (
            vec![],
            Some(DdlError::NotImplemented(NO_CONSTRAINT_ALTER.into())),
        ),
        Op::Execute(Statement::Text { sql, .. } | Statement::Compiled(sql)) => {
            (vec![sql.clone()], None)
        }
        Op::BulkInsert {
            table,
            rows,
            multiinsert,
        } => (
            bulk_insert_sql(table, rows, *multiinsert)
                .into_iter()
                .flat_map(|(s, p)| {
                    std::iter::repeat(s).take(if *multiinsert { 1 } else { p.len() })
                })
                .collect(),
            None,
        ),
        Op::Batch(_) => (
            vec![],
            Some(DdlError::Command(
                "batch_alter_table needs a connection: use batch::batch_statements".into(),
            )),
        ),
    }
}

/// The INSERT's columns: the row's, and those whose SQL default fills them, in the table's
/// order (then any the table does not list).
pub fn insert_columns(table: &TableClause, row: &[(String, Literal)]) -> Vec<String> {
    let given = |n: &str| row.iter().any(|(k, _)| k == n);
    let defaulted = |n: &str| table.sql_defaults.iter().any(|(k, _)| k == n);
    let mut cols: Vec<String> = table
        .columns
        .iter()
        .filter(|(n, _)| given(n) || defaulted(n))
        .map(|(n, _)| n.clone())
        .collect();
    for (k, _) in row {
        if !cols.contains(k) {
            cols.push(k.clone());
        }
    }
    cols
}

/// `e` with each literal a `?` placeholder, its value added to `params` in rendering order.
pub fn bind_literals(e: &SqlExpr, params: &mut Vec<Literal>) -> SqlExpr {
    match e {
        SqlExpr::Literal(v) => {
            params.push(v.clone());
            SqlExpr::Text("?".into())
        }
        SqlExpr::Func { name, args } => SqlExpr::Func {
            name: name.clone(),
            args: args.iter().map(|a| bind_literals(a, params)).collect(),
        },
        SqlExpr::Binary { left, op, right } => {
            let left = Box::new(bind_literals(left, params));
            SqlExpr::Binary {
                left,
                op: op.clone(),
                right: Box::new(bind_literals(right, params)),
            }
        }
        SqlExpr::Unary { op, operand } => SqlExpr::Unary {
            op: op.clone(),
            operand: Box::new(bind_literals(operand, params)),
        },
        other => other.clone(),
    }
}

/// The SQL default that fills `col`, when the row gives it no value.
fn sql_default<'t>(
    table: &'t TableClause,
    row: &[(String, Literal)],
    col: &str,
) -> Option<&'t SqlExpr> {
    if row.iter().any(|(k, _)| k == col) {
        return None;
    }
    table
        .sql_defaults
        .iter()
        .find(|(k, _)| k == col)
        .map(|(_, e)| e)
}

fn bind_value(l: &Literal) -> Literal {
    match l {
        Literal::Bool(b) => Literal::Int(i64::from(*b)),
        other => other.clone(),
    }
}

fn insert_text(table: &TableClause, cols: &[String], values: &[String]) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        format_table(&table.name, table.schema.as_deref()),
        cols_list(cols),
        values.join(", ")
    )
}

/// Online: qmark placeholders, and the SQL defaults' expressions where the row gives nothing.
pub fn bulk_insert_sql(
    table: &TableClause,
    rows: &[Vec<(String, Literal)>],
    multiinsert: bool,
) -> Vec<(String, Vec<Vec<Literal>>)> {
    let Some(first) = rows.first() else {
        return vec![];
    };
    // Where each placeholder's value comes from: the row's column, or a SQL default's own
    // argument (bound, as SQLAlchemy binds it: `lower(?)`).
    enum Slot<'c> {
        Row(&'c str),
        Fixed(Literal),
    }
    // One statement for `shape`'s columns; the rows' values for its placeholders.
    let statement = |shape: &[(String, Literal)], rows: &[Vec<(String, Literal)>]| {
        let cols = insert_columns(table, shape);
        let mut slots = Vec::new();
        let values: Vec<String> = cols
            .iter()
            .map(|c| match sql_default(table, shape, c) {
                Some(e) => {
                    let mut fixed = Vec::new();
                    let text = render_expr(&bind_literals(e, &mut fixed));
                    slots.extend(fixed.into_iter().map(Slot::Fixed));
                    text
                }
                None => {
                    slots.push(Slot::Row(c));
                    "?".to_string()
                }
            })
            .collect();
        let params = rows
            .iter()
            .map(|r| {
                slots
                    .iter()
                    .map(|slot| match slot {
                        Slot::Row(c) => r
                            .iter()
                            .find(|(k, _)| k == c)
                            .map(|(_, v)| bind_value(v))
                            .unwrap_or(Literal::None),
                        Slot::Fixed(v) => bind_value(v),
                    })
                    .collect()
            })
            .collect();
        (insert_text(table, &cols, &values), params)
    };
    if multiinsert {
        vec![statement(first, rows)]
    } else {
        rows.iter()
            .map(|r| statement(r, std::slice::from_ref(r)))
            .collect()
    }
}

pub fn bulk_insert_offline(
    table: &TableClause,
    rows: &[Vec<(String, Literal)>],
) -> (Vec<String>, Option<DdlError>) {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let cols = insert_columns(table, r);
        let vals: Result<Vec<String>, DdlError> = cols
            .iter()
            .map(|c| match r.iter().find(|(k, _)| k == c) {
                Some((_, v)) => check_bytes_literal(v).map(|()| literal_sql(v)),
                None => Ok(sql_default(table, r, c).map_or_else(|| "NULL".into(), render_expr)),
            })
            .collect();
        match vals {
            Ok(vals) => out.push(insert_text(table, &cols, &vals)),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conventions are Python `%` templates: tokens take the constraint's values and `%%`
    /// stands for a literal '%' (it once panicked on the group it leaves empty).
    #[test]
    fn convention_templates_format_as_python_does() {
        let pairs = [
            (
                "ck".to_string(),
                "ck_%(table_name)s_%%_%(constraint_name)s".to_string(),
            ),
            (
                "fk".to_string(),
                "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s".to_string(),
            ),
        ];
        let conventions = Conventions { pairs: &pairs };
        let columns = ["a".to_string(), "b".to_string()];
        let ctx = NameCtx {
            table: "node",
            columns: &columns,
            referred_table: Some("peer"),
            referred_columns: &[],
        };
        let given = Name::Plain("positive".to_string());
        let name = |key: &str, given: Option<&Name>, c: &Conventions| {
            c.apply(key, given, &ctx).map_err(|e| e.to_string())
        };
        assert_eq!(
            name("ck", Some(&given), &conventions)
                .as_ref()
                .map(|n| n.as_deref()),
            Ok(Some("ck_node_%_positive"))
        );
        assert_eq!(
            name("fk", None, &conventions)
                .as_ref()
                .map(|n| n.as_deref()),
            Ok(Some("fk_node_a_b_peer"))
        );
        let none = Conventions { pairs: &[] };
        assert_eq!(
            name("ix", None, &none).as_ref().map(|n| n.as_deref()),
            Ok(Some("ix_node_a"))
        );
        // SQLAlchemy's ConventionDict: an unknown token is a KeyError, and a template that
        // needs the constraint's own name fails for an unnamed one, whichever comes first.
        let broken = [
            (
                "uq".to_string(),
                "uq_%(bogus)s_%(constraint_name)s".to_string(),
            ),
            ("ix".to_string(), "ix_%(column_0_nam)s".to_string()),
            (
                "ck".to_string(),
                "ck_%(constraint_name)s_%(bogus)s".to_string(),
            ),
        ];
        let broken = Conventions { pairs: &broken };
        assert_eq!(name("uq", None, &broken), Err("'bogus'".to_string()));
        assert_eq!(name("ix", None, &broken), Err("'column_0_nam'".to_string()));
        assert_eq!(
            name("ck", None, &broken),
            Err(
                "Naming convention including %(constraint_name)s token requires that \
                 constraint is explicitly named."
                    .to_string()
            )
        );
        // A named constraint keeps its name when the template does not use it.
        let named = Name::Plain("given".to_string());
        assert_eq!(
            name("ix", Some(&named), &broken)
                .as_ref()
                .map(|n| n.as_deref()),
            Ok(Some("given"))
        );
    }

    #[test]
    fn reserved_words_are_sorted_and_quoting_follows_sqlalchemy() {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]));
        for (ident, quoted) in [
            ("node", "node"),
            ("last_update_us", "last_update_us"),
            ("a$b", "a$b"),
            ("order", "\"order\""),
            ("key", "\"key\""),
            ("Node", "\"Node\""),
            ("1st", "\"1st\""),
            ("$x", "\"$x\""),
            ("with space", "\"with space\""),
            ("café", "\"café\""),
            ("q\"t", "\"q\"\"t\""),
            ("", "\"\""),
        ] {
            assert_eq!(quote(ident), quoted, "{ident}");
        }
    }

    fn ty(name: &str, args: Vec<Literal>) -> TypeSpec {
        TypeSpec {
            dialect: None,
            name: name.into(),
            args,
            kwargs: vec![],
            custom: None,
        }
    }

    #[test]
    fn quoting_follows_sqlalchemy() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote("a$b"), "a$b");
        assert_eq!(quote("$x"), "\"$x\"");
        assert_eq!(quote("1abc"), "\"1abc\"");
        assert_eq!(quote("order"), "\"order\"");
        assert_eq!(quote("Camel"), "\"Camel\"");
        assert_eq!(quote("x y"), "\"x y\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn types_render_like_sqlite_type_compiler() {
        let r = |t: TypeSpec| render_type(&t).map(|x| x.0).map_err(|e| e.message);
        assert_eq!(
            r(ty("String", vec![Literal::Int(5)])).unwrap(),
            "VARCHAR(5)"
        );
        assert_eq!(r(ty("Uuid", vec![])).unwrap(), "CHAR(32)");
        assert_eq!(
            r(ty("Numeric", vec![Literal::Int(10), Literal::Int(2)])).unwrap(),
            "NUMERIC(10, 2)"
        );
        assert_eq!(
            r(ty(
                "Enum",
                vec![Literal::Str("a".into()), Literal::Str("bbb".into())]
            ))
            .unwrap(),
            "VARCHAR(3)"
        );
        assert!(r(ty("ARRAY", vec![])).unwrap_err().contains("type ARRAY"));
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float(3.0), "3.0");
        assert_eq!(py_float(2.5), "2.5");
        assert_eq!(py_float(1e20), "1e+20");
        assert_eq!(py_float(1e-5), "1e-05");
    }
}

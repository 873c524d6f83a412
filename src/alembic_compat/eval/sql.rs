//! Data statements built with `sa.select/insert/update/delete/text` and column expressions,
//! rendered as SQLAlchemy's SQLite compiler renders them, values always bound (`?`).
//!
//! DDL-side expressions (server defaults, check constraints, `sqlite_where`) are converted to
//! `ops::SqlExpr` and rendered by `ddl`.

use std::rc::Rc;

use crate::alembic_compat::ops::{Literal, SqlExpr, TypeSpec};

/// A column's or a bound value's type, shared: a data loop builds statements per row, and
/// every column, comparison and bound value in them carries its column's type.
pub type SqlType = Option<Rc<TypeSpec>>;

#[derive(Clone, Debug, PartialEq)]
pub enum SqlNode {
    /// Names shared (`Rc<str>`): a data loop builds a column node for every row.
    Column {
        table: Option<Rc<str>>,
        name: Rc<str>,
        type_: SqlType,
    },
    /// A Python value, bound as a parameter; the type (from the column it is compared with
    /// or assigned to) decides how it is stored.
    Bind {
        value: Literal,
        type_: SqlType,
    },
    /// `op.inline_literal(x)` / `sa.literal_column("x")`: rendered into the text.
    Inline(String),
    Text {
        sql: String,
        params: Vec<(String, Literal)>,
    },
    Func {
        name: String,
        args: Vec<SqlNode>,
    },
    Binary {
        left: Box<SqlNode>,
        op: std::borrow::Cow<'static, str>,
        right: Box<SqlNode>,
    },
    Unary {
        op: std::borrow::Cow<'static, str>,
        operand: Box<SqlNode>,
    },
    /// `x IN (...)`, `x NOT IN (...)`.
    InList {
        operand: Box<SqlNode>,
        values: Vec<SqlNode>,
        negate: bool,
    },
    /// `and_` / `or_` with their operands.
    Conjunction {
        op: &'static str,
        items: Vec<SqlNode>,
    },
    Null,
    True,
    False,
    Label {
        inner: Box<SqlNode>,
        name: String,
    },
    /// `CASE [value] WHEN ... THEN ... [ELSE ...] END`; with a value, each WHEN is a value
    /// it is compared with.
    Case {
        value: Option<Box<SqlNode>>,
        whens: Vec<(SqlNode, SqlNode)>,
        else_: Option<Box<SqlNode>>,
    },
    Cast {
        inner: Box<SqlNode>,
        type_name: String,
        /// What the result is: `cast(x, String) + "-"` concatenates.
        type_: SqlType,
    },
    /// A SELECT inside another statement (`col.in_(sa.select(...))`), rendered in place with
    /// its values bound in order.
    Subquery(Box<Statement>),
    /// `select(...).scalar_subquery()`: a SELECT of one value, in parentheses.
    ScalarSubquery(Box<Statement>),
    /// `sa.exists(...)` / `select(...).exists()`: `EXISTS (SELECT ...)`.
    Exists(Box<Statement>),
    /// `sa.bindparam(key[, value])`: a value named by its key, given by the statement's
    /// execute parameters (or its own value).
    Param {
        key: String,
        value: Option<Literal>,
        type_: SqlType,
    },
    /// `col.contains(x)`, `startswith`, `endswith` (negated: `NOT LIKE`), with the pattern
    /// built around `x`. SQLAlchemy ranks these operators below every other, so they are
    /// parenthesized wherever an expression is grouped.
    Contains {
        left: Box<SqlNode>,
        pattern: Box<SqlNode>,
        negate: bool,
    },
    /// A Boolean expression tested for truth, as SQLite (which has no boolean type) spells
    /// `~flag` and a bare Boolean column in a WHERE clause: `x = 1`, `x = 0`.
    Truth {
        operand: Box<SqlNode>,
        value: bool,
    },
    /// `col["key"]`, `col[0]`, `col[("a", 0)]` on a JSON expression: `JSON_EXTRACT` at the
    /// path (bound as SQLAlchemy's SQLite JSON index types format it: `$."key"`, `$[0]`,
    /// `$."a"[0]`). A JSON value itself (`type_` JSON) is wrapped in `JSON_QUOTE`; under an
    /// `as_string()`-like cast (`type_` None) it is not.
    JsonGet {
        target: Box<SqlNode>,
        path: Box<SqlNode>,
        type_: SqlType,
    },
}

impl SqlNode {
    pub fn type_(&self) -> Option<&Rc<TypeSpec>> {
        match self {
            SqlNode::Column { type_, .. }
            | SqlNode::Bind { type_, .. }
            | SqlNode::Param { type_, .. }
            | SqlNode::Cast { type_, .. }
            | SqlNode::JsonGet { type_, .. } => type_.as_ref(),
            SqlNode::Label { inner, .. } => inner.type_(),
            // SQLAlchemy's functions of the argument's type (`ReturnTypeFromArgs`):
            // `coalesce(name, '') + 'x'` concatenates.
            SqlNode::Func { name, args }
                if RETURN_TYPE_FROM_ARGS.contains(&generic_function_name(name)) =>
            {
                args.iter().find_map(SqlNode::type_)
            }
            // Arithmetic and concatenation keep their operands' type (a concatenation
            // concatenates again: `(col + "s") + "t"`).
            SqlNode::Binary { left, op, right }
                if matches!(&**op, "+" | "-" | "*" | "/" | "//" | "FLOOR/" | "%" | "||") =>
            {
                left.type_().or(right.type_())
            }
            _ => None,
        }
    }

    /// `f` on this node and every node inside it, not entering subqueries (whose tables
    /// and columns are their own).
    pub fn visit(&self, f: &mut dyn FnMut(&SqlNode)) {
        f(self);
        match self {
            SqlNode::Func { args: items, .. } | SqlNode::Conjunction { items, .. } => {
                items.iter().for_each(|n| n.visit(f))
            }
            SqlNode::Binary { left, right, .. }
            | SqlNode::Contains {
                left,
                pattern: right,
                ..
            }
            | SqlNode::JsonGet {
                target: left,
                path: right,
                ..
            } => {
                left.visit(f);
                right.visit(f);
            }
            SqlNode::Unary { operand, .. } | SqlNode::Truth { operand, .. } => operand.visit(f),
            SqlNode::InList {
                operand, values, ..
            } => {
                operand.visit(f);
                values.iter().for_each(|n| n.visit(f));
            }
            SqlNode::Label { inner, .. } | SqlNode::Cast { inner, .. } => inner.visit(f),
            SqlNode::Case {
                value,
                whens,
                else_,
            } => {
                if let Some(v) = value {
                    v.visit(f);
                }
                for (w, t) in whens {
                    w.visit(f);
                    t.visit(f);
                }
                if let Some(e) = else_ {
                    e.visit(f);
                }
            }
            // A subquery's statement is its own.
            SqlNode::Subquery(_) | SqlNode::ScalarSubquery(_) | SqlNode::Exists(_) => {}
            SqlNode::Column { .. }
            | SqlNode::Bind { .. }
            | SqlNode::Param { .. }
            | SqlNode::Inline(_)
            | SqlNode::Text { .. }
            | SqlNode::Null
            | SqlNode::True
            | SqlNode::False => {}
        }
    }

    /// `f` on this node and every node inside it, subqueries included.
    pub fn walk_mut(&mut self, f: &mut dyn FnMut(&mut SqlNode)) {
        f(self);
        match self {
            SqlNode::Func { args: items, .. } | SqlNode::Conjunction { items, .. } => {
                items.iter_mut().for_each(|n| n.walk_mut(f))
            }
            SqlNode::Binary { left, right, .. }
            | SqlNode::Contains {
                left,
                pattern: right,
                ..
            }
            | SqlNode::JsonGet {
                target: left,
                path: right,
                ..
            } => {
                left.walk_mut(f);
                right.walk_mut(f);
            }
            SqlNode::Unary { operand, .. } | SqlNode::Truth { operand, .. } => operand.walk_mut(f),
            SqlNode::InList {
                operand, values, ..
            } => {
                operand.walk_mut(f);
                values.iter_mut().for_each(|n| n.walk_mut(f));
            }
            SqlNode::Label { inner, .. } | SqlNode::Cast { inner, .. } => inner.walk_mut(f),
            SqlNode::Case {
                value,
                whens,
                else_,
            } => {
                if let Some(v) = value {
                    v.walk_mut(f);
                }
                for (w, t) in whens {
                    w.walk_mut(f);
                    t.walk_mut(f);
                }
                if let Some(e) = else_ {
                    e.walk_mut(f);
                }
            }
            SqlNode::Subquery(s) | SqlNode::ScalarSubquery(s) | SqlNode::Exists(s) => s.walk_mut(f),
            SqlNode::Column { .. }
            | SqlNode::Bind { .. }
            | SqlNode::Param { .. }
            | SqlNode::Inline(_)
            | SqlNode::Text { .. }
            | SqlNode::Null
            | SqlNode::True
            | SqlNode::False => {}
        }
    }

    /// `~x` / `sa.not_(x)`, as SQLAlchemy negates: a comparison becomes its opposite
    /// (`=` and `!=`, `IN` and `NOT IN`, `LIKE` and `NOT LIKE`...), a Boolean column a test
    /// against 0, anything else `NOT` before it.
    pub fn negated(self) -> SqlNode {
        match self {
            SqlNode::Binary { left, op, right } => match opposite(&op) {
                Some(opposite) => SqlNode::Binary {
                    left,
                    op: opposite.into(),
                    right,
                },
                None => SqlNode::not(SqlNode::Binary { left, op, right }),
            },
            SqlNode::InList {
                operand,
                values,
                negate,
            } => SqlNode::InList {
                operand,
                values,
                negate: !negate,
            },
            SqlNode::Contains {
                left,
                pattern,
                negate,
            } => SqlNode::Contains {
                left,
                pattern,
                negate: !negate,
            },
            SqlNode::Truth { operand, value } => SqlNode::Truth {
                operand,
                value: !value,
            },
            n if n.is_boolean_column() => SqlNode::Truth {
                operand: Box::new(n),
                value: false,
            },
            n => SqlNode::not(n),
        }
    }

    fn not(operand: SqlNode) -> SqlNode {
        SqlNode::Unary {
            op: "NOT".into(),
            operand: Box::new(operand),
        }
    }

    fn is_boolean_column(&self) -> bool {
        matches!(self, SqlNode::Column { type_: Some(t), .. }
            if t.name.eq_ignore_ascii_case("Boolean"))
    }

    /// `sa.and_(...)` / `sa.or_(...)` as SQLAlchemy builds them: `true()` in an AND (false()
    /// in an OR) drops out, `false()` in an AND (`true()` in an OR) is the whole answer, and
    /// a single remaining clause stands for itself, grouped.
    pub fn conjunction(op: &'static str, clauses: Vec<SqlNode>) -> SqlNode {
        let (continue_on, skip_on) = if op == "AND" {
            (SqlNode::True, SqlNode::False)
        } else {
            (SqlNode::False, SqlNode::True)
        };
        let mut items = Vec::with_capacity(clauses.len());
        let mut saw_continue = false;
        for c in clauses {
            if c == continue_on {
                saw_continue = true;
            } else if c == skip_on {
                return skip_on;
            } else {
                items.push(c);
            }
        }
        match items.len() {
            0 if saw_continue => continue_on,
            // Grouped against the operator, as SQLAlchemy returns it: a clause that binds
            // looser (`contains`, an OR in an AND) stays in parentheses, and negating it
            // writes NOT before them rather than inverting its operator.
            // (EXISTS groups its own SELECT and nothing more.)
            1 if !matches!(items[0], SqlNode::Exists(_))
                && own_operator(&items[0])
                    .is_some_and(|own| Group::Against(Op::binary(op)).groups(own)) =>
            {
                SqlNode::Conjunction { op, items }
            }
            1 => items.pop().unwrap_or(continue_on),
            _ => SqlNode::Conjunction { op, items },
        }
    }

    /// The node as it appears inside DDL, where SQLAlchemy renders values inline.
    pub fn to_ddl(&self) -> SqlExpr {
        match self {
            SqlNode::Column { name, .. } => SqlExpr::Column(name.to_string()),
            SqlNode::Bind { value, .. } => SqlExpr::Literal(value.clone()),
            SqlNode::Inline(s) => SqlExpr::Text(s.clone()),
            SqlNode::Text { sql, .. } => SqlExpr::Text(sql.clone()),
            SqlNode::Func { name, args } => SqlExpr::Func {
                name: name.clone(),
                args: args.iter().map(SqlNode::to_ddl).collect(),
            },
            SqlNode::Binary { left, op, right } => SqlExpr::Binary {
                left: Box::new(left.to_ddl()),
                op: op.to_string(),
                right: Box::new(right.to_ddl()),
            },
            SqlNode::Unary { op, operand } if !is_postfix(op) => SqlExpr::Unary {
                op: op.to_string(),
                operand: Box::new(operand.to_ddl()),
            },
            SqlNode::Null => SqlExpr::Null,
            SqlNode::True => SqlExpr::True,
            SqlNode::False => SqlExpr::False,
            other => {
                let mut r = Renderer {
                    inline: true,
                    ..Renderer::default()
                };
                r.node(other, Group::Never);
                SqlExpr::Text(r.sql)
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableRef {
    /// Shared, like the columns: every statement and column node built on a table carries
    /// its name, and a data loop builds them on every row.
    pub name: Rc<str>,
    pub schema: Option<String>,
    /// Shared: every statement built on a table carries it.
    pub columns: Rc<Vec<(Rc<str>, SqlType)>>,
    /// Tables joined to this one, in order (`a.join(b, ...).outerjoin(c, ...)`).
    pub joins: Vec<Join>,
    /// The whole definition of a `sa.Table(...)` that was not autoloaded, for `copy_from=`.
    pub definition: Option<Rc<crate::alembic_compat::ops::TableDefinition>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Join {
    pub table: TableRef,
    pub on: SqlNode,
    pub outer: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    Select {
        columns: Vec<SqlNode>,
        from: Vec<TableRef>,
        wheres: Vec<SqlNode>,
        group_by: Vec<SqlNode>,
        having: Vec<SqlNode>,
        order_by: Vec<SqlNode>,
        limit: Option<i64>,
        offset: Option<i64>,
        distinct: bool,
    },
    Insert {
        table: TableRef,
        /// The first row's columns and values.
        values: Vec<(String, SqlNode)>,
        /// Further rows of `values([{...}, {...}])`, in the first row's column order.
        rows: Vec<Vec<SqlNode>>,
        /// `from_select(names, select)`: the columns and the SELECT that fills them.
        select: Option<(Vec<String>, Box<Statement>)>,
    },
    Update {
        table: TableRef,
        values: Vec<(String, SqlNode)>,
        wheres: Vec<SqlNode>,
    },
    Delete {
        table: TableRef,
        wheres: Vec<SqlNode>,
    },
    Text {
        sql: String,
        params: Vec<(String, Literal)>,
    },
}

impl Statement {
    /// `f` on every expression node of the statement, nested ones included.
    pub fn walk_mut(&mut self, f: &mut dyn FnMut(&mut SqlNode)) {
        let each = |nodes: &mut Vec<SqlNode>, f: &mut dyn FnMut(&mut SqlNode)| {
            nodes.iter_mut().for_each(|n| n.walk_mut(f))
        };
        match self {
            Statement::Select {
                columns,
                from,
                wheres,
                group_by,
                having,
                order_by,
                ..
            } => {
                each(columns, f);
                for t in from {
                    t.joins.iter_mut().for_each(|j| j.on.walk_mut(f));
                }
                each(wheres, f);
                each(group_by, f);
                each(having, f);
                each(order_by, f);
            }
            Statement::Insert {
                values,
                rows,
                select,
                ..
            } => {
                values.iter_mut().for_each(|(_, v)| v.walk_mut(f));
                rows.iter_mut().for_each(|r| each(r, f));
                if let Some((_, s)) = select {
                    s.walk_mut(f);
                }
            }
            Statement::Update { values, wheres, .. } => {
                values.iter_mut().for_each(|(_, v)| v.walk_mut(f));
                each(wheres, f);
            }
            Statement::Delete { wheres, .. } => each(wheres, f),
            Statement::Text { .. } => {}
        }
    }
}

/// SQL text with `?` placeholders and the values in order, plus the result columns' types
/// (for SQLAlchemy's result processing, e.g. DateTime strings back to datetimes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    pub sql: String,
    pub params: Vec<(Literal, SqlType)>,
    pub result_types: Vec<SqlType>,
    /// The key of a `bindparam()` that got no value, if any: the statement cannot run.
    pub unbound: Option<String>,
}

#[derive(Default)]
struct Renderer {
    sql: String,
    params: Vec<(Literal, SqlType)>,
    /// Render values inline (DDL, `--sql`) instead of binding them.
    inline: bool,
    /// Qualify columns with their table, as SELECT, UPDATE (SET values included) and DELETE do.
    qualify: bool,
    unbound: Option<String>,
    /// The tables of the statements a subquery is inside: SQLAlchemy correlates them, so
    /// the subquery's FROM leaves them out and its columns name the outer rows.
    enclosing: Vec<Rc<str>>,
    /// How many anonymous labels of each name (`max_1`, `max_2`) the statement has so far,
    /// its subqueries included: SQLAlchemy numbers them across the whole compile.
    anon_counts: Vec<(String, u32)>,
    /// Set while inline rendering writes values as named parameters anyway, the base of
    /// their names (see `is_distinct_from`).
    named_binds: Option<String>,
}

use crate::alembic_compat::ddl::sqlite::quote as quote_ident;

/// The label SQLAlchemy's compiler gives a SELECT column that has no name of its own, which
/// is also the key its rows are read by: `count(*) AS count_1`, `max(t.x) AS max_1`, a
/// second `count(*)` as `count_2`, any other expression `anon_1`, `anon_2`...; a cast is named
/// as what it casts. Columns, labels and literal text keep their own names. Checked against
/// SQLAlchemy by the `_ops` fixture's data revision.
/// `base_N`: the next of SQLAlchemy's anonymous names from `base` in this statement; labels
/// and parameters share the numbering.
fn next_anon(counts: &mut Vec<(String, u32)>, base: &str) -> String {
    let n = match counts.iter_mut().find(|(b, _)| *b == base) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            counts.push((base.to_string(), 1));
            1
        }
    };
    format!("{base}_{n}")
}

fn anonymous_label(column: &SqlNode, counts: &mut Vec<(String, u32)>) -> Option<String> {
    let base = match column {
        SqlNode::Column { .. }
        | SqlNode::Label { .. }
        | SqlNode::Inline(_)
        | SqlNode::Text { .. } => return None,
        // A cast is named as what it casts.
        SqlNode::Cast { inner, .. } => match &**inner {
            SqlNode::Column { name, .. } => return Some(name.to_string()),
            SqlNode::Label { name, .. } => return Some(name.clone()),
            SqlNode::Inline(text) if is_plain_name(text) => return Some(text.clone()),
            SqlNode::Func { .. } | SqlNode::Cast { .. } | SqlNode::Unary { .. } => {
                match anonymous_label(inner, counts) {
                    Some(label) => return Some(label),
                    None => "anon".to_string(),
                }
            }
            _ => "anon".to_string(),
        },
        SqlNode::Func { name, .. } => generic_function_name(name).to_string(),
        // `NOT flag` keeps the column's name; a sign, `DISTINCT` or an ordering none.
        SqlNode::Unary { op, operand } if op == "NOT" => match &**operand {
            SqlNode::Column { name, .. } => return Some(name.to_string()),
            _ => "anon".to_string(),
        },
        SqlNode::Unary { .. } => return None,
        _ => "anon".to_string(),
    };
    Some(next_anon(counts, &base))
}

fn is_plain_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// SQLAlchemy's registered functions (`func.COUNT`, `func.Max`) render and are labelled by
/// their own lower-case name, whatever case the call used; any other keeps the name as
/// written (`func.LOWER(x)` is `LOWER(x) AS "LOWER_1"`).
fn generic_function_name(name: &str) -> &str {
    const GENERIC: &[&str] = &[
        "aggregate_strings",
        "array_agg",
        "char_length",
        "coalesce",
        "concat",
        "count",
        "cube",
        "cume_dist",
        "current_date",
        "current_time",
        "current_timestamp",
        "current_user",
        "dense_rank",
        "grouping_sets",
        "localtime",
        "localtimestamp",
        "max",
        "min",
        "mode",
        "now",
        "percent_rank",
        "percentile_cont",
        "percentile_disc",
        "pow",
        "random",
        "rank",
        "rollup",
        "session_user",
        "sum",
        "sysdate",
        "user",
    ];
    GENERIC
        .iter()
        .find(|g| g.eq_ignore_ascii_case(name))
        .map_or(name, |g| g)
}

/// SQLAlchemy's registered functions whose type is their first typed argument's
/// (`ReturnTypeFromArgs`).
const RETURN_TYPE_FROM_ARGS: &[&str] = &["coalesce", "max", "min", "sum", "pow"];

/// Whether `func.<name>` makes one of SQLAlchemy's registered function classes, each a
/// subclass of the plain `Function` every other name makes.
pub fn is_generic_function(name: &str) -> bool {
    !std::ptr::eq(generic_function_name(name), name)
}

/// Whether an expression is a string as SQLAlchemy types it (`Some(true)`), of another
/// type (`Some(false)`), or of none it knows (`None`: NULL, most functions); a literal has
/// its value's type, a registered function its own or its arguments'.
pub fn string_typed(n: &SqlNode) -> Option<bool> {
    match n {
        SqlNode::Bind { value, type_: None }
        | SqlNode::Param {
            value: Some(value),
            type_: None,
            ..
        } => match value {
            Literal::None => None,
            Literal::Str(_) => Some(true),
            _ => Some(false),
        },
        SqlNode::Null => None,
        SqlNode::Label { inner, .. } => string_typed(inner),
        // A CASE has the type of its first result that has one.
        SqlNode::Case { whens, else_, .. } => whens
            .iter()
            .map(|(_, then)| then)
            .chain(else_.as_deref())
            .find_map(string_typed),
        SqlNode::Func { name, args } => match generic_function_name(name) {
            g if RETURN_TYPE_FROM_ARGS.contains(&g) => args.iter().find_map(string_typed),
            "concat" | "aggregate_strings" | "current_user" | "session_user" | "user" => Some(true),
            g if std::ptr::eq(g, name.as_str()) => None,
            _ => Some(false),
        },
        SqlNode::Binary { left, op, right }
            if matches!(&**op, "+" | "-" | "*" | "/" | "//" | "FLOOR/" | "%" | "||") =>
        {
            string_typed(left).or_else(|| string_typed(right))
        }
        _ => n.type_().map(|t| type_affinity(t) == Affinity::String),
    }
}

/// SQLAlchemy's `_type_affinity`, for the families a Python value can stand for: a value
/// next to an expression of another affinity keeps its own type (`coerce_compared_value`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Affinity {
    Integer,
    Numeric,
    String,
    Boolean,
    DateTime,
    Date,
    Time,
    Interval,
    Other,
}

pub fn type_affinity(t: &TypeSpec) -> Affinity {
    // The names revision files write most come first: a data loop asks on every row.
    const NAMES: &[(&str, Affinity)] = &[
        ("String", Affinity::String),
        ("Integer", Affinity::Integer),
        ("BigInteger", Affinity::Integer),
        ("SmallInteger", Affinity::Integer),
        ("INT", Affinity::Integer),
        ("BIGINT", Affinity::Integer),
        ("SMALLINT", Affinity::Integer),
        ("Float", Affinity::Numeric),
        ("Numeric", Affinity::Numeric),
        ("REAL", Affinity::Numeric),
        ("Double", Affinity::Numeric),
        ("DOUBLE_PRECISION", Affinity::Numeric),
        ("DECIMAL", Affinity::Numeric),
        ("Text", Affinity::String),
        ("Unicode", Affinity::String),
        ("UnicodeText", Affinity::String),
        ("VARCHAR", Affinity::String),
        ("CHAR", Affinity::String),
        ("NCHAR", Affinity::String),
        ("NVARCHAR", Affinity::String),
        ("CLOB", Affinity::String),
        ("Enum", Affinity::String),
        ("Boolean", Affinity::Boolean),
        ("DateTime", Affinity::DateTime),
        ("TIMESTAMP", Affinity::DateTime),
        ("Date", Affinity::Date),
        ("Time", Affinity::Time),
        ("Interval", Affinity::Interval),
    ];
    NAMES
        .iter()
        .find(|(name, _)| t.name.eq_ignore_ascii_case(name))
        .map_or(Affinity::Other, |(_, a)| *a)
}

/// A literal rendered inline (`--sql`) as its SQLAlchemy type's literal processor writes it:
/// an Integer renders `int(value)` (`0.5` as `0`, `'7'` as `7`), a Float or Numeric
/// renders `str(value)` (`True` as `True`).
fn typed_literal_sql(v: &Literal, type_: Option<&Rc<TypeSpec>>) -> String {
    match (type_.map(|t| type_affinity(t)), v) {
        (Some(Affinity::Integer), Literal::Float(f)) if f.is_finite() => match f.trunc() {
            0.0 => "0".to_string(),
            whole => format!("{whole:.0}"),
        },
        (Some(Affinity::Integer), Literal::Str(s)) => match s.trim().parse::<i64>() {
            Ok(i) => i.to_string(),
            Err(_) => literal_sql(v),
        },
        (Some(Affinity::Numeric), Literal::Bool(b)) => {
            if *b { "True" } else { "False" }.to_string()
        }
        _ => literal_sql(v),
    }
}

pub fn literal_sql(v: &Literal) -> String {
    match v {
        Literal::None => "NULL".into(),
        Literal::Bool(b) => if *b { "1" } else { "0" }.into(),
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => crate::alembic_compat::eval::builtins::float_repr(*f),
        Literal::Str(s) => format!("'{}'", s.replace('\'', "''")),
        Literal::Bytes(b) => crate::alembic_compat::ddl::sqlite::bytes_literal(b),
        Literal::List(items) => items.iter().map(literal_sql).collect::<Vec<_>>().join(", "),
        Literal::Type(t) => t.name.clone(),
    }
}

/// The opposite comparison, which SQLAlchemy renders for a negated one.
fn opposite(op: &str) -> Option<&'static str> {
    Some(match op {
        "=" => "!=",
        "!=" => "=",
        "<" => ">=",
        ">=" => "<",
        ">" => "<=",
        "<=" => ">",
        "IS" => "IS NOT",
        "IS NOT" => "IS",
        "LIKE" => "NOT LIKE",
        "NOT LIKE" => "LIKE",
        "BETWEEN" => "NOT BETWEEN",
        "NOT BETWEEN" => "BETWEEN",
        "IS DISTINCT" => "IS NOT DISTINCT",
        "IS NOT DISTINCT" => "IS DISTINCT",
        _ => return None,
    })
}

/// An operator as SQLAlchemy ranks it (`sqlalchemy.sql.operators._PRECEDENCE`); `name`
/// tells operators of one rank apart.
#[derive(Clone, Copy)]
struct Op<'a> {
    prec: i8,
    name: &'a str,
}

impl<'a> Op<'a> {
    fn binary(name: &'a str) -> Op<'a> {
        let prec = match name {
            "*" | "/" | "//" | "FLOOR/" | "%" => 8,
            "+" | "-" | "&" | "|" | "^" | "<<" | ">>" => 7,
            "||" | "LIKE" | "NOT LIKE" | "IN" | "NOT IN" | "IS" | "IS NOT" | "IS DISTINCT"
            | "IS NOT DISTINCT" | "=" | "!=" | "<" | ">" | "<=" | ">=" | "BETWEEN"
            | "NOT BETWEEN" => 5,
            "COLLATE" => 4,
            "AND" => 3,
            "OR" => 2,
            // A custom operator's default precedence.
            _ => 0,
        };
        Op { prec, name }
    }

    fn unary(name: &'a str) -> Op<'a> {
        let prec = match name {
            "-" | "~" => 8,
            " DESC" | " ASC" => 3,
            // NOT, DISTINCT
            _ => 5,
        };
        Op { prec, name }
    }

    /// `contains`, `startswith`, `endswith`: no rank, below everything.
    const UNRANKED: Op<'static> = Op {
        prec: -100,
        name: "CONTAINS",
    };
    /// A clause standing alone where a boolean is wanted (a WHERE clause's only criterion).
    const AS_BOOL: Op<'static> = Op {
        prec: -10,
        name: "ASBOOL",
    };
    /// Items of a comma-separated list (function arguments, ORDER BY).
    const COMMA: Op<'static> = Op {
        prec: -1,
        name: ",",
    };
    /// A label's expression.
    const AS: Op<'static> = Op {
        prec: -1,
        name: "AS",
    };
    const EXISTS: Op<'static> = Op {
        prec: 0,
        name: "EXISTS",
    };

    /// `(a op b) op c` needs no parentheses for these.
    fn is_associative(&self) -> bool {
        matches!(self.name, "+" | "*" | "||" | "AND" | "OR")
    }

    /// SQLAlchemy's `is_boolean`: comparisons and the logical operators.
    fn is_boolean(&self) -> bool {
        matches!(
            self.name,
            "=" | "!=" | "<" | ">" | "<=" | ">=" | "AND" | "OR" | "NOT"
        )
    }

    fn wants_truth(&self) -> bool {
        matches!(self.name, "AND" | "OR" | "ASBOOL")
    }
}

/// Where an expression is rendered, as SQLAlchemy's `self_group(against=...)` sees it:
/// whether an operator expression there is parenthesized.
#[derive(Clone, Copy)]
enum Group<'a> {
    /// Never: a SELECT column, a CAST's operand, an item of an IN list.
    Never,
    /// `self_group()` with no operator: every operator expression (UPDATE SET and INSERT
    /// values, CASE conditions).
    Always,
    /// `self_group(against=op)`: when its own operator binds no tighter than `op`.
    Against(Op<'a>),
}

impl Group<'_> {
    /// SQLAlchemy's `is_precedent`, with its rule that a negated non-boolean operator
    /// expression is always grouped.
    fn groups(&self, own: Op<'_>) -> bool {
        match self {
            Group::Never => false,
            Group::Always => true,
            Group::Against(against) => {
                if own.name == against.name && own.is_associative() {
                    false
                } else {
                    own.prec <= against.prec || (against.name == "NOT" && !own.is_boolean())
                }
            }
        }
    }
}

/// The operator an expression is made by, which decides its grouping; none for a column,
/// a value, a function call and the like (and for a CASE, a cast or a truth test).
fn own_operator(n: &SqlNode) -> Option<Op<'_>> {
    match n {
        SqlNode::Binary { op, .. } => Some(Op::binary(op)),
        SqlNode::Unary { op, .. } if !is_postfix(op) => Some(Op::unary(op)),
        SqlNode::InList { negate, .. } => Some(Op::binary(if *negate { "NOT IN" } else { "IN" })),
        SqlNode::Conjunction { op, items } if items.len() > 1 => Some(Op::binary(op)),
        SqlNode::Contains { .. } => Some(Op::UNRANKED),
        SqlNode::Exists(_) => Some(Op::EXISTS),
        _ => None,
    }
}

impl Renderer {
    fn bind(&mut self, value: &Literal, type_: Option<&Rc<TypeSpec>>) {
        if let (true, Some(base)) = (self.inline, &self.named_binds) {
            let name = next_anon(&mut self.anon_counts, base);
            self.sql.push(':');
            self.sql.push_str(&name);
        } else if self.inline {
            self.sql.push_str(&typed_literal_sql(value, type_));
        } else {
            self.sql.push('?');
            self.params.push((value.clone(), type_.cloned()));
        }
    }

    /// `items` separated by commas, each grouped as `group` says (arguments, IN lists,
    /// GROUP BY, ORDER BY, VALUES).
    fn node_list<'n>(&mut self, items: impl IntoIterator<Item = &'n SqlNode>, group: Group<'_>) {
        for (i, n) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.node(n, group);
        }
    }

    /// `n`, parenthesized where SQLAlchemy groups it.
    fn node(&mut self, n: &SqlNode, group: Group<'_>) {
        if let Group::Against(against) = group {
            // SQLAlchemy's AsBoolean: a Boolean column standing as a condition.
            if against.wants_truth() && n.is_boolean_column() {
                self.node(n, Group::Never);
                self.sql.push_str(" = 1");
                return;
            }
        }
        let grouped = own_operator(n).is_some_and(|op| group.groups(op));
        if grouped {
            self.sql.push('(');
        }
        self.ungrouped(n);
        if grouped {
            self.sql.push(')');
        }
    }

    fn ungrouped(&mut self, n: &SqlNode) {
        match n {
            SqlNode::Column { table, name, .. } => {
                if let (true, Some(t)) = (self.qualify, table) {
                    self.sql.push_str(&quote_ident(t));
                    self.sql.push('.');
                }
                self.sql.push_str(&quote_ident(name));
            }
            SqlNode::Bind { value, type_ } => self.bind(value, type_.as_ref()),
            SqlNode::Param { key, value, type_ } => match value {
                Some(v) => self.bind(v, type_.as_ref()),
                // SQLAlchemy renders NULL for a literal with no value (with a warning).
                None if self.inline => self.sql.push_str("NULL"),
                None => {
                    self.unbound.get_or_insert_with(|| key.clone());
                    self.sql.push('?');
                }
            },
            SqlNode::Inline(s) => self.sql.push_str(s),
            SqlNode::Text { sql, params } => self.text(sql, params),
            SqlNode::Func { name, args } => {
                // SQLAlchemy's ANSI functions render without parentheses.
                const ANSI: &[&str] = &[
                    "CURRENT_TIMESTAMP",
                    "CURRENT_DATE",
                    "CURRENT_TIME",
                    "LOCALTIME",
                    "LOCALTIMESTAMP",
                    "CURRENT_USER",
                    "SESSION_USER",
                    "USER",
                ];
                if let (true, Some(ansi)) = (
                    args.is_empty(),
                    ANSI.iter().find(|a| a.eq_ignore_ascii_case(name)),
                ) {
                    self.sql.push_str(ansi);
                    return;
                }
                if name.eq_ignore_ascii_case("NOW") {
                    self.sql.push_str("CURRENT_TIMESTAMP");
                    return;
                }
                // `func.count()` counts rows.
                if name.eq_ignore_ascii_case("COUNT") && args.is_empty() {
                    self.sql.push_str("count(*)");
                    return;
                }
                self.sql.push_str(generic_function_name(name));
                self.sql.push('(');
                self.node_list(args, Group::Against(Op::COMMA));
                self.sql.push(')');
            }
            // SQLAlchemy's floor division of anything but two integers: still a binary
            // expression, grouped as one, written as a function.
            SqlNode::Binary { left, op, right } if &**op == "FLOOR/" => {
                let me = Op::binary(op);
                self.sql.push_str("FLOOR(");
                self.node(left, Group::Against(me));
                self.sql.push_str(" / ");
                self.node(right, Group::Against(me));
                self.sql.push(')');
            }
            // SQLAlchemy's SQLite compiler writes `is_distinct_from` as IS NOT (and its
            // negation as IS) without passing on the compile's arguments: even inline, the
            // values in it are parameters, named after what they are compared with.
            SqlNode::Binary { left, op, right }
                if matches!(&**op, "IS DISTINCT" | "IS NOT DISTINCT") =>
            {
                let me = Op::binary(op);
                let base = |n: &SqlNode| match n {
                    SqlNode::Column { name, .. } => name.to_string(),
                    SqlNode::Func { name, .. } => generic_function_name(name).to_string(),
                    _ => "param".to_string(),
                };
                let outer = self.named_binds.take();
                self.named_binds = Some(base(right));
                self.node(left, Group::Against(me));
                self.sql.push_str(if &**op == "IS DISTINCT" {
                    " IS NOT "
                } else {
                    " IS "
                });
                self.named_binds = Some(base(left));
                self.node(right, Group::Against(me));
                self.named_binds = outer;
            }
            SqlNode::Binary { left, op, right } => {
                let me = Op::binary(op);
                self.node(left, Group::Against(me));
                match &**op {
                    // SQLite divides integers as integers; SQLAlchemy's true division
                    // makes the divisor a float.
                    "/" => {
                        self.sql.push_str(" / (");
                        self.node(right, Group::Against(me));
                        self.sql.push_str(" + 0.0)");
                        return;
                    }
                    // Floor division of integers is SQLite's own division.
                    "//" => self.sql.push_str(" / "),
                    _ => {
                        self.sql.push(' ');
                        self.sql.push_str(op);
                        self.sql.push(' ');
                    }
                }
                match &**right {
                    // `x BETWEEN a AND b`: the bounds are a list joined by AND, not grouped
                    // as a whole.
                    SqlNode::Binary {
                        left: low,
                        op: and,
                        right: high,
                    } if me.name.ends_with("BETWEEN") && and == "AND" => {
                        let and = Op::binary("AND");
                        self.node(low, Group::Against(and));
                        self.sql.push_str(" AND ");
                        self.node(high, Group::Against(and));
                    }
                    _ => self.node(right, Group::Against(me)),
                }
            }
            SqlNode::Unary { op, operand } if is_postfix(op) => {
                self.node(operand, Group::Against(Op::unary(op)));
                self.sql.push_str(op);
            }
            SqlNode::Unary { op, operand } => {
                self.sql.push_str(op);
                if op.chars().all(char::is_alphabetic) {
                    self.sql.push(' ');
                }
                self.node(operand, Group::Against(Op::unary(op)));
            }
            SqlNode::InList {
                operand,
                values,
                negate,
            } => {
                // SQLAlchemy parenthesizes every NOT IN itself (its empty form is an OR).
                if *negate {
                    self.sql.push('(');
                }
                let me = Op::binary(if *negate { "NOT IN" } else { "IN" });
                self.node(operand, Group::Against(me));
                self.sql
                    .push_str(if *negate { " NOT IN (" } else { " IN (" });
                if values.is_empty() {
                    // SQLite's spelling of an empty set.
                    self.sql.push_str("SELECT 1 FROM (SELECT 1) WHERE 1!=1");
                } else {
                    self.node_list(values, Group::Never);
                }
                self.sql.push(')');
                if *negate {
                    self.sql.push(')');
                }
            }
            SqlNode::Conjunction { op, items } => {
                let me = Op::binary(op);
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        self.sql.push(' ');
                        self.sql.push_str(op);
                        self.sql.push(' ');
                    }
                    self.node(it, Group::Against(me));
                }
            }
            SqlNode::Contains {
                left,
                pattern,
                negate,
            } => {
                self.node(left, Group::Against(Op::UNRANKED));
                self.sql
                    .push_str(if *negate { " NOT LIKE " } else { " LIKE " });
                self.node(pattern, Group::Never);
            }
            SqlNode::Truth { operand, value } => {
                self.node(operand, Group::Never);
                self.sql.push_str(if *value { " = 1" } else { " = 0" });
            }
            SqlNode::Null => self.sql.push_str("NULL"),
            SqlNode::True => self.sql.push('1'),
            SqlNode::False => self.sql.push('0'),
            SqlNode::Label { inner, name } => {
                self.node(inner, Group::Against(Op::AS));
                self.sql.push_str(" AS ");
                self.sql.push_str(&quote_ident(name));
            }
            SqlNode::Case {
                value,
                whens,
                else_,
            } => {
                self.sql.push_str("CASE");
                if let Some(v) = value {
                    self.sql.push(' ');
                    self.node(v, Group::Never);
                }
                for (c, v) in whens {
                    self.sql.push_str(" WHEN ");
                    self.node(c, Group::Always);
                    self.sql.push_str(" THEN ");
                    self.node(v, Group::Never);
                }
                if let Some(e) = else_ {
                    self.sql.push_str(" ELSE ");
                    self.node(e, Group::Never);
                }
                self.sql.push_str(" END");
            }
            SqlNode::Subquery(stmt) => self.subquery(stmt),
            SqlNode::ScalarSubquery(stmt) => {
                self.sql.push('(');
                self.subquery(stmt);
                self.sql.push(')');
            }
            SqlNode::Exists(stmt) => {
                self.sql.push_str("EXISTS (");
                self.subquery(stmt);
                self.sql.push(')');
            }
            SqlNode::Cast {
                inner, type_name, ..
            } => {
                let (ty, collate) = crate::alembic_compat::ddl::sqlite::cast_type_parts(type_name);
                self.sql.push_str("CAST(");
                self.node(inner, Group::Never);
                self.sql.push_str(" AS ");
                self.sql.push_str(ty);
                self.sql.push(')');
                self.sql.push_str(collate);
            }
            SqlNode::JsonGet {
                target,
                path,
                type_,
            } => {
                let quoted = type_.is_some();
                if quoted {
                    self.sql.push_str("JSON_QUOTE(");
                }
                self.sql.push_str("JSON_EXTRACT(");
                self.node(target, Group::Never);
                self.sql.push_str(", ");
                self.node(path, Group::Never);
                self.sql.push(')');
                if quoted {
                    self.sql.push(')');
                }
            }
        }
    }

    /// A text() construct's `:name` placeholders, found as SQLAlchemy's patterns find them: a
    /// colon not after a word character, `:` or a backslash, then a name of word characters
    /// not followed by another colon (so `'12:30'` and `x::int` stay as written, and quotes
    /// do not matter: `'a :b'` binds `b`). `\:name` is an escaped colon.
    fn text(&mut self, sql: &str, params: &[(String, Literal)]) {
        let is_name = |c: char| c.is_alphanumeric() || c == '_';
        let name_end = |from: usize| {
            sql[from..]
                .char_indices()
                .find(|(_, c)| !is_name(*c))
                .map_or(sql.len(), |(k, _)| from + k)
        };
        let mut prev: Option<char> = None;
        let mut copied = 0;
        let mut i = 0;
        while let Some(c) = sql[i..].chars().next() {
            let next = i + c.len_utf8();
            if c == '\\' && sql[next..].starts_with(':') {
                // `\:name` (or a bare `\:`): the colon, without its backslash.
                if !sql[name_end(next + 1)..].starts_with(':') {
                    self.sql.push_str(&sql[copied..i]);
                    copied = next;
                }
            } else if c == ':' && !prev.is_some_and(|p| is_name(p) || p == ':' || p == '\\') {
                let end = name_end(next);
                if end > next && !sql[end..].starts_with(':') {
                    self.sql.push_str(&sql[copied..i]);
                    let name = &sql[next..end];
                    // A `Literal::Type` is a typed `bindparam()` still waiting for its value.
                    let given = params
                        .iter()
                        .find(|(n, v)| n == name && !matches!(v, Literal::Type(_)));
                    match given {
                        Some((_, v)) => self.bind(v, None),
                        // An unbound parameter: SQLAlchemy's StatementError when the
                        // statement runs; offline, a literal NULL (with a warning).
                        None if self.inline => self.sql.push_str("NULL"),
                        None => {
                            self.unbound.get_or_insert_with(|| name.to_string());
                            self.sql.push('?');
                        }
                    }
                    copied = end;
                    prev = sql[..end].chars().next_back();
                    i = end;
                    continue;
                }
            }
            prev = Some(c);
            i = next;
        }
        self.sql.push_str(&sql[copied..]);
    }
}

/// The text of SQLAlchemy's error for a statement run with a bound parameter left without
/// a value (a `bindparam()` or a text()'s `:name`).
pub fn unbound_message(key: &str, sql: &str) -> String {
    format!(
        "(sqlalchemy.exc.InvalidRequestError) A value is required for bind parameter \
         '{key}'\n[SQL: {sql}]\n(Background on this error at: https://sqlalche.me/e/21/cd3x)"
    )
}

pub fn render(stmt: &Statement, inline: bool) -> Rendered {
    // Sized for a typical statement: a data loop renders one per row, and growing the text
    // from empty reallocated it four or five times.
    let mut r = Renderer {
        inline,
        sql: String::with_capacity(128),
        params: Vec::with_capacity(4),
        ..Renderer::default()
    };
    let result_types = r.statement(stmt);
    Rendered {
        sql: r.sql,
        params: r.params,
        result_types,
        unbound: r.unbound,
    }
}

impl Renderer {
    /// A SELECT inside this statement, correlated to the tables around it.
    fn subquery(&mut self, stmt: &Statement) {
        let outer = self.qualify;
        self.statement(stmt);
        self.qualify = outer;
    }

    /// Renders a whole statement; the result columns' types of a SELECT.
    fn statement(&mut self, stmt: &Statement) -> Vec<SqlType> {
        let mut result_types = Vec::new();
        match stmt {
            Statement::Text { sql, params } => self.text(sql, params),
            Statement::Select {
                columns,
                from,
                wheres,
                group_by,
                having,
                order_by,
                limit,
                offset,
                distinct,
            } => {
                self.qualify = true;
                // Auto-correlation, as SQLAlchemy does it: an enclosing statement's table is
                // not selected from again, unless nothing would be left. Subqueries in this
                // SELECT's columns and criteria are correlated to its own tables.
                let correlated = |t: &&TableRef| self.enclosing.contains(&t.name);
                let own: Vec<&TableRef> = if from.iter().all(|t| correlated(&t)) {
                    from.iter().collect()
                } else {
                    from.iter().filter(|t| !correlated(t)).collect()
                };
                let depth = self.enclosing.len();
                for t in &own {
                    self.enclosing.push(t.name.clone());
                    self.enclosing
                        .extend(t.joins.iter().map(|j| j.table.name.clone()));
                }
                self.sql.push_str("SELECT ");
                if *distinct {
                    self.sql.push_str("DISTINCT ");
                }
                for (i, c) in columns.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    // Named before what it labels is compiled, as SQLAlchemy's `visit_label`
                    // does: a subquery inside numbers its labels after it.
                    let label = anonymous_label(c, &mut self.anon_counts);
                    self.node(c, Group::Never);
                    if let Some(label) = label {
                        self.sql.push_str(" AS ");
                        self.sql.push_str(&quote_ident(&label));
                    }
                    result_types.push(c.type_().cloned());
                }
                if !own.is_empty() {
                    self.sql.push_str(" \nFROM ");
                    for (i, t) in own.into_iter().enumerate() {
                        if i > 0 {
                            self.sql.push_str(", ");
                        }
                        self.sql.push_str(&table_sql(t));
                        for j in &t.joins {
                            self.sql.push_str(if j.outer {
                                " LEFT OUTER JOIN "
                            } else {
                                " JOIN "
                            });
                            self.sql.push_str(&table_sql(&j.table));
                            self.sql.push_str(" ON ");
                            self.node(&j.on, Group::Against(Op::AS_BOOL));
                        }
                    }
                }
                where_clause(self, wheres, " \nWHERE ");
                if !group_by.is_empty() {
                    self.sql.push_str(" GROUP BY ");
                    self.node_list(group_by, Group::Against(Op::COMMA));
                }
                where_clause(self, having, " \nHAVING ");
                if !order_by.is_empty() {
                    self.sql.push_str(" ORDER BY ");
                    self.node_list(order_by, Group::Against(Op::COMMA));
                }
                // SQLAlchemy's SQLite `limit_clause`: an OFFSET always follows a LIMIT, and
                // an OFFSET alone gets `LIMIT -1` as a parameter it renders without the
                // compile's arguments, so even inline (`--sql`) it prints as `:param_1`.
                if let Some(l) = limit {
                    self.sql.push_str("\n LIMIT ");
                    self.bind(&Literal::Int(*l), None);
                } else if offset.is_some() {
                    self.sql.push_str("\n LIMIT ");
                    if self.inline {
                        self.sql.push(':');
                        self.sql
                            .push_str(&next_anon(&mut self.anon_counts, "param"));
                    } else {
                        self.bind(&Literal::Int(-1), None);
                    }
                }
                if limit.is_some() || offset.is_some() {
                    self.sql.push_str(" OFFSET ");
                    self.bind(&Literal::Int(offset.unwrap_or(0)), None);
                }
                self.enclosing.truncate(depth);
            }
            Statement::Insert {
                table,
                values,
                rows,
                select,
            } => {
                self.sql.push_str("INSERT INTO ");
                self.sql.push_str(&table_sql(table));
                if let Some((names, select)) = select {
                    let names: Vec<_> = names.iter().map(|n| quote_ident(n)).collect();
                    self.sql.push_str(&format!(" ({}) ", names.join(", ")));
                    self.statement(select);
                    return result_types;
                }
                let order = table_order(table, values);
                let names: Vec<_> = order.iter().map(|&i| quote_ident(&values[i].0)).collect();
                // Columns in the values are qualified, as in an UPDATE's.
                self.qualify = true;
                self.sql
                    .push_str(&format!(" ({}) VALUES (", names.join(", ")));
                self.node_list(order.iter().map(|&i| &values[i].1), Group::Always);
                self.sql.push(')');
                for row in rows {
                    self.sql.push_str(", (");
                    self.node_list(order.iter().filter_map(|&i| row.get(i)), Group::Always);
                    self.sql.push(')');
                }
            }
            Statement::Update {
                table,
                values,
                wheres,
            } => {
                self.sql.push_str("UPDATE ");
                self.sql.push_str(&table_sql(table));
                self.sql.push_str(" SET ");
                // The assigned names stand alone; columns in the values are qualified.
                self.qualify = true;
                self.enclosing.push(table.name.clone());
                for (i, (n, v)) in table_order(table, values)
                    .into_iter()
                    .map(|i| &values[i])
                    .enumerate()
                {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    self.sql.push_str(&quote_ident(n));
                    self.sql.push('=');
                    self.node(v, Group::Always);
                }
                where_clause(self, wheres, " WHERE ");
                self.enclosing.pop();
            }
            Statement::Delete { table, wheres } => {
                self.sql.push_str("DELETE FROM ");
                self.sql.push_str(&table_sql(table));
                self.qualify = true;
                self.enclosing.push(table.name.clone());
                where_clause(self, wheres, " WHERE ");
                self.enclosing.pop();
            }
        }
        result_types
    }
}

/// The order SQLAlchemy writes an INSERT's columns and an UPDATE's SET clauses in: the
/// table's column order, whatever order `values()` got them in (names the table does not
/// list last, as given).
fn table_order(table: &TableRef, values: &[(String, SqlNode)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    let position = |name: &str| {
        table
            .columns
            .iter()
            .position(|(c, _)| **c == *name)
            .unwrap_or(usize::MAX)
    };
    order.sort_by_key(|&i| position(&values[i].0));
    order
}

/// A unary operator written after its operand (` DESC`, ` ASC`) starts with its space.
fn is_postfix(op: &str) -> bool {
    op.starts_with(' ')
}

fn where_clause(r: &mut Renderer, wheres: &[SqlNode], keyword: &str) {
    if wheres.is_empty() {
        return;
    }
    r.sql.push_str(keyword);
    for (i, w) in wheres.iter().enumerate() {
        if i > 0 {
            r.sql.push_str(" AND ");
        }
        // Several criteria are ANDed together, each grouped against AND.
        let against = if wheres.len() > 1 {
            Op::binary("AND")
        } else {
            Op::AS_BOOL
        };
        r.node(w, Group::Against(against));
    }
}

fn table_sql(t: &TableRef) -> std::borrow::Cow<'_, str> {
    match &t.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&t.name)).into(),
        None => quote_ident(&t.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_placeholders_are_found_as_sqlalchemy_finds_them() {
        // Expected texts from SQLAlchemy 2.1's SQLite compiler.
        let one = |name: &str| (name.to_string(), Literal::Int(1));
        let text = |sql: &str, params: Vec<(String, Literal)>, inline: bool| {
            render(
                &Statement::Text {
                    sql: sql.into(),
                    params,
                },
                inline,
            )
        };
        for (sql, bound, want) in [
            ("SELECT :a, :b", vec!["a", "b"], "SELECT ?, ?"),
            ("SELECT 'x :a' || ':a'", vec!["a"], "SELECT 'x ?' || '?'"),
            (
                "SELECT '12:30', x::int, :a::int",
                vec![],
                "SELECT '12:30', x::int, :a::int",
            ),
            (r"SELECT 'a\:b', \:a, \::", vec![], r"SELECT 'a:b', :a, \::"),
            (
                "SELECT :a$1 + $:a + é:a + :é",
                vec!["a", "é"],
                "SELECT ?$1 + $? + é:a + ?",
            ),
            ("SELECT :ab:c, ::a, :", vec![], "SELECT :ab:c, ::a, :"),
            ("SELECT x:a, _:a, 1:a", vec![], "SELECT x:a, _:a, 1:a"),
            (r"SELECT \:ab:c, \:", vec![], r"SELECT \:ab:c, :"),
            ("SELECT :_x, :1a", vec!["_x", "1a"], "SELECT ?, ?"),
        ] {
            let r = text(sql, bound.iter().map(|n| one(n)).collect(), false);
            assert_eq!((r.sql.as_str(), r.unbound), (want, None), "{sql}");
        }
        let r = text("SELECT :a, :b", vec![one("a")], false);
        assert_eq!(
            (r.sql.as_str(), r.unbound.as_deref()),
            ("SELECT ?, ?", Some("b"))
        );
        assert_eq!(
            text("SELECT :a, :b", vec![one("a")], true).sql,
            "SELECT 1, NULL"
        );
    }
}

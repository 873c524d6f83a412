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
    Case {
        whens: Vec<(SqlNode, SqlNode)>,
        else_: Option<Box<SqlNode>>,
    },
    Cast {
        inner: Box<SqlNode>,
        type_name: String,
    },
    /// A SELECT inside another statement (`col.in_(sa.select(...))`), rendered in place with
    /// its values bound in order.
    Subquery(Box<Statement>),
}

impl SqlNode {
    pub fn type_(&self) -> Option<&Rc<TypeSpec>> {
        match self {
            SqlNode::Column { type_, .. } | SqlNode::Bind { type_, .. } => type_.as_ref(),
            SqlNode::Label { inner, .. } => inner.type_(),
            _ => None,
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
                r.node(other, false);
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
        values: Vec<(String, SqlNode)>,
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

/// SQL text with `?` placeholders and the values in order, plus the result columns' types
/// (for SQLAlchemy's result processing, e.g. DateTime strings back to datetimes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    pub sql: String,
    pub params: Vec<(Literal, SqlType)>,
    pub result_types: Vec<SqlType>,
}

#[derive(Default)]
struct Renderer {
    sql: String,
    params: Vec<(Literal, SqlType)>,
    /// Render values inline (DDL, `--sql`) instead of binding them.
    inline: bool,
    /// Qualify columns with their table (SELECT with FROM does; UPDATE SET does not).
    qualify: bool,
}

use crate::alembic_compat::ddl::sqlite::quote as quote_ident;

/// The label SQLAlchemy's compiler gives a SELECT column that has no name of its own, which
/// is also the key its rows are read by: `count(*) AS count_1`, `max(t.x) AS max_1`, a
/// second `count(*)` as `count_2`, any other expression `anon_1`, `anon_2`...; a cast is named
/// as what it casts. Columns, labels and literal text keep their own names. Checked against
/// SQLAlchemy by the `_ops` fixture's data revision.
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
    let n = match counts.iter_mut().find(|(b, _)| *b == base) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            counts.push((base.clone(), 1));
            1
        }
    };
    Some(format!("{base}_{n}"))
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

pub fn literal_sql(v: &Literal) -> String {
    match v {
        Literal::None => "NULL".into(),
        Literal::Bool(b) => if *b { "1" } else { "0" }.into(),
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => crate::alembic_compat::eval::builtins::float_repr(*f),
        Literal::Str(s) => format!("'{}'", s.replace('\'', "''")),
        Literal::Bytes(b) => format!(
            "X'{}'",
            b.iter().map(|c| format!("{c:02X}")).collect::<String>()
        ),
        Literal::List(items) => items.iter().map(literal_sql).collect::<Vec<_>>().join(", "),
        Literal::Type(t) => t.name.clone(),
    }
}

impl Renderer {
    fn bind(&mut self, value: &Literal, type_: Option<&Rc<TypeSpec>>) {
        if self.inline {
            self.sql.push_str(&literal_sql(value));
        } else {
            self.sql.push('?');
            self.params.push((value.clone(), type_.cloned()));
        }
    }

    /// `items` separated by commas, each unparenthesized (arguments, IN lists, GROUP BY,
    /// ORDER BY, VALUES).
    fn node_list<'n>(&mut self, items: impl IntoIterator<Item = &'n SqlNode>) {
        for (i, n) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.node(n, false);
        }
    }

    fn node(&mut self, n: &SqlNode, nested: bool) {
        match n {
            SqlNode::Column { table, name, .. } => {
                if let (true, Some(t)) = (self.qualify, table) {
                    self.sql.push_str(&quote_ident(t));
                    self.sql.push('.');
                }
                self.sql.push_str(&quote_ident(name));
            }
            SqlNode::Bind { value, type_ } => self.bind(value, type_.as_ref()),
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
                self.node_list(args);
                self.sql.push(')');
            }
            SqlNode::Binary { left, op, right } => {
                if nested {
                    self.sql.push('(');
                }
                self.node(left, true);
                self.sql.push(' ');
                self.sql.push_str(op);
                self.sql.push(' ');
                // `x BETWEEN a AND b`: the bounds are not a parenthesized AND.
                self.node(right, op != "BETWEEN");
                if nested {
                    self.sql.push(')');
                }
            }
            SqlNode::Unary { op, operand } if is_postfix(op) => {
                self.node(operand, false);
                self.sql.push_str(op);
            }
            SqlNode::Unary { op, operand } => {
                self.sql.push_str(op);
                if op.chars().all(char::is_alphabetic) {
                    self.sql.push(' ');
                }
                self.node(operand, true);
            }
            SqlNode::InList {
                operand,
                values,
                negate,
            } => {
                self.node(operand, true);
                self.sql
                    .push_str(if *negate { " NOT IN (" } else { " IN (" });
                self.node_list(values);
                self.sql.push(')');
            }
            SqlNode::Conjunction { op, items } => {
                if nested && items.len() > 1 {
                    self.sql.push('(');
                }
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        self.sql.push(' ');
                        self.sql.push_str(op);
                        self.sql.push(' ');
                    }
                    self.node(it, true);
                }
                if nested && items.len() > 1 {
                    self.sql.push(')');
                }
            }
            SqlNode::Null => self.sql.push_str("NULL"),
            SqlNode::True => self.sql.push('1'),
            SqlNode::False => self.sql.push('0'),
            SqlNode::Label { inner, name } => {
                self.node(inner, true);
                self.sql.push_str(" AS ");
                self.sql.push_str(&quote_ident(name));
            }
            SqlNode::Case { whens, else_ } => {
                self.sql.push_str("CASE");
                for (c, v) in whens {
                    self.sql.push_str(" WHEN ");
                    self.node(c, false);
                    self.sql.push_str(" THEN ");
                    self.node(v, false);
                }
                if let Some(e) = else_ {
                    self.sql.push_str(" ELSE ");
                    self.node(e, false);
                }
                self.sql.push_str(" END");
            }
            SqlNode::Subquery(stmt) => {
                let outer = self.qualify;
                self.statement(stmt);
                self.qualify = outer;
            }
            SqlNode::Cast { inner, type_name } => {
                self.sql.push_str("CAST(");
                self.node(inner, false);
                self.sql.push_str(" AS ");
                self.sql.push_str(type_name);
                self.sql.push(')');
            }
        }
    }

    /// `:name` placeholders of a text() construct, in order of appearance.
    fn text(&mut self, sql: &str, params: &[(String, Literal)]) {
        let bytes = sql.as_bytes();
        let mut i = 0;
        let mut quote: Option<u8> = None;
        while i < bytes.len() {
            let c = bytes[i];
            if quote.is_some() || c == b'\'' || c == b'"' {
                match quote {
                    Some(q) if c == q => quote = None,
                    None => quote = Some(c),
                    Some(_) => {}
                }
                let ch_len = utf8_len(c);
                self.sql.push_str(&sql[i..(i + ch_len).min(sql.len())]);
                i += ch_len;
                continue;
            }
            // `\:` escapes a colon; `::` is a cast, not a parameter.
            if c == b':'
                && bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
                && (i == 0 || bytes[i - 1] != b':')
            {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                let name = &sql[start..end];
                match params.iter().find(|(n, _)| n == name) {
                    Some((_, v)) => self.bind(v, None),
                    // An unbound parameter: SQLAlchemy raises at execution; keep the text so
                    // SQLite reports it.
                    None => {
                        self.sql.push(':');
                        self.sql.push_str(name);
                    }
                }
                i = end;
                continue;
            }
            if c == b'\\' && bytes.get(i + 1) == Some(&b':') {
                self.sql.push(':');
                i += 2;
                continue;
            }
            let ch_len = utf8_len(c);
            self.sql.push_str(&sql[i..(i + ch_len).min(sql.len())]);
            i += ch_len;
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
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
    }
}

impl Renderer {
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
                self.sql.push_str("SELECT ");
                if *distinct {
                    self.sql.push_str("DISTINCT ");
                }
                let mut anon_counts: Vec<(String, u32)> = Vec::new();
                for (i, c) in columns.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    self.node(c, false);
                    if let Some(label) = anonymous_label(c, &mut anon_counts) {
                        self.sql.push_str(" AS ");
                        self.sql.push_str(&quote_ident(&label));
                    }
                    result_types.push(c.type_().cloned());
                }
                if !from.is_empty() {
                    self.sql.push_str(" \nFROM ");
                    for (i, t) in from.iter().enumerate() {
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
                            self.node(&j.on, false);
                        }
                    }
                }
                where_clause(self, wheres, " \nWHERE ");
                if !group_by.is_empty() {
                    self.sql.push_str(" GROUP BY ");
                    self.node_list(group_by);
                }
                where_clause(self, having, " \nHAVING ");
                if !order_by.is_empty() {
                    self.sql.push_str(" ORDER BY ");
                    self.node_list(order_by);
                }
                if let Some(l) = limit {
                    self.sql.push_str(" LIMIT ");
                    self.bind(&Literal::Int(*l), None);
                }
                if let Some(o) = offset {
                    if limit.is_none() {
                        self.sql.push_str(" LIMIT -1");
                    }
                    self.sql.push_str(" OFFSET ");
                    self.bind(&Literal::Int(*o), None);
                }
            }
            Statement::Insert { table, values } => {
                self.sql.push_str("INSERT INTO ");
                self.sql.push_str(&table_sql(table));
                let names: Vec<_> = values.iter().map(|(n, _)| quote_ident(n)).collect();
                self.sql
                    .push_str(&format!(" ({}) VALUES (", names.join(", ")));
                self.node_list(values.iter().map(|(_, v)| v));
                self.sql.push(')');
            }
            Statement::Update {
                table,
                values,
                wheres,
            } => {
                self.sql.push_str("UPDATE ");
                self.sql.push_str(&table_sql(table));
                self.sql.push_str(" SET ");
                for (i, (n, v)) in values.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    self.sql.push_str(&quote_ident(n));
                    self.sql.push('=');
                    self.node(v, false);
                }
                self.qualify = true;
                where_clause(self, wheres, " WHERE ");
            }
            Statement::Delete { table, wheres } => {
                self.sql.push_str("DELETE FROM ");
                self.sql.push_str(&table_sql(table));
                self.qualify = true;
                where_clause(self, wheres, " WHERE ");
            }
        }
        result_types
    }
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
        r.node(w, wheres.len() > 1);
    }
}

fn table_sql(t: &TableRef) -> std::borrow::Cow<'_, str> {
    match &t.schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&t.name)).into(),
        None => quote_ident(&t.name),
    }
}

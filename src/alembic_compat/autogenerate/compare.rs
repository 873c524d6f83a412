//! What changed between the database (`conn`) and the target schema (`meta`), in the order
//! and by the rules of Alembic's `autogenerate/compare/` with its defaults (`compare_type`
//! on, `compare_server_default` off, no filters, no `include_schemas`) on SQLite:
//!
//! - tables: added ones first (in `MetaData.sorted_tables` order: by name, parents before
//!   children), then removed ones, then the common ones by name;
//! - per common table: added columns, altered columns (nullability, type), indexes and unique
//!   constraints, foreign keys, removed columns;
//! - indexes and uniques by name (removed, changed, added, sorted by name), unnamed target
//!   uniques by their columns; an unnamed unique constraint of the database can never be
//!   matched by name, so it is never dropped (as Alembic);
//! - foreign keys by signature (columns, referred table and columns, ON UPDATE / ON DELETE,
//!   deferrability), never by name.
//!
//! Where Python iterates a `set` (removed tables, removed columns, foreign keys) its order
//! depends on string hashing; we use the database's order, which Python produces for one
//! item and may not for several.
//!
//! Names that come from the database are rendered `op.f(...)` (reflection marks them final),
//! names from the target are plain strings: that is what Alembic writes.

use std::collections::{BTreeMap, BTreeSet};

use super::repr;
use crate::alembic_compat::ddl::sqlite::{ColDef, ConsDef, IdxDef, TableDef};
use crate::alembic_compat::ddl::FAKE_ADDRESS;
use crate::alembic_compat::ops::{
    AlterColumn, Column, Constraint, CreateTable, Index, IndexKey, Literal, Name, Op,
    ServerDefault, SqlExpr, TypeSpec,
};

/// A line Alembic logs while comparing: (logger, message), at INFO.
pub type LogLine = (&'static str, String);

const TABLES: &str = "alembic.autogenerate.compare.tables";
const TYPES: &str = "alembic.autogenerate.compare.types";
const CONSTRAINTS: &str = "alembic.autogenerate.compare.constraints";
const DEFAULTS: &str = "alembic.autogenerate.compare.server_defaults";

/// Python's repr of a tuple of column names, as `%s` of `column_names` shows it.
fn names_tuple(cols: &[String]) -> String {
    let items: Vec<String> = cols.iter().map(|c| repr::py_str(c)).collect();
    if items.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(", "))
    }
}

/// What the comparison needs from env.py.
#[derive(Clone, Debug)]
pub struct Options {
    /// `version_table`: ignored on both sides.
    pub version_table: String,
    /// env.py's `compare_type` (Alembic's default: true).
    pub compare_type: bool,
    /// env.py's `compare_server_default` (Alembic's default: false).
    pub compare_server_default: bool,
}

/// An operation as autogenerate emits it: an [`Op`] where one can carry it. Alembic also
/// writes `drop_constraint(None, ...)` (with a warning comment) for a constraint it knows
/// only by its columns; no revision can run that, and `Op` requires a name.
#[derive(Clone, Debug, PartialEq)]
pub enum AutoOp {
    Op(Box<Op>),
    DropUnnamedConstraint { table: String, type_: &'static str },
}

/// One detected difference: what `upgrade()` does, what `downgrade()` does to undo it, and
/// its entry in `check`'s list (the repr of Alembic's diff tuple, or a list of them for an
/// altered column).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub up: AutoOp,
    pub down: AutoOp,
    pub diff: String,
}

/// Alembic's `UpgradeOps` items: a table created or dropped on its own, or the operations on
/// one table (`ModifyTableOps`, a batch block under `render_as_batch`).
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Single(Change),
    Table { name: String, changes: Vec<Change> },
}

fn boxed(op: Op) -> AutoOp {
    AutoOp::Op(Box::new(op))
}

fn name(n: &str, from_conn: bool) -> Name {
    if from_conn {
        Name::Final(n.to_string())
    } else {
        Name::Plain(n.to_string())
    }
}

/// SQLAlchemy's `NullType`, for a column reflected without a known type.
pub fn null_type() -> TypeSpec {
    TypeSpec {
        dialect: None,
        name: "NullType".into(),
        args: vec![],
        kwargs: vec![],
        custom: None,
    }
}

pub fn is_null_type(t: &TypeSpec) -> bool {
    t.dialect.is_none() && t.name == "NullType"
}

fn column(c: &ColDef) -> Column {
    Column {
        name: c.name.clone(),
        type_: Some(c.type_.clone().unwrap_or_else(null_type)),
        nullable: Some(c.nullable),
        primary_key: c.primary_key,
        server_default: c
            .default
            .clone()
            .map(|d| ServerDefault::Expr(SqlExpr::Text(d))),
        ..Default::default()
    }
}

fn constraints(t: &TableDef, from_conn: bool) -> Vec<Constraint> {
    let mut out = vec![];
    if !t.pk_columns.is_empty() {
        out.push(Constraint::PrimaryKey {
            name: t.pk_name.as_deref().map(|n| name(n, from_conn)),
            columns: t.pk_columns.clone(),
            kwargs: vec![],
        });
    }
    for c in &t.constraints {
        match c {
            ConsDef::Unique {
                name: n, columns, ..
            } => out.push(Constraint::Unique {
                name: n.as_deref().map(|n| name(n, from_conn)),
                columns: columns.clone(),
                kwargs: vec![],
            }),
            ConsDef::ForeignKey {
                name: n,
                columns,
                ref_table,
                ref_columns,
                ondelete,
                onupdate,
                deferrable,
                initially,
                match_,
                ..
            } => out.push(Constraint::ForeignKey {
                name: n.as_deref().map(|n| name(n, from_conn)),
                columns: columns.clone(),
                refcolumns: ref_columns
                    .iter()
                    .map(|rc| format!("{ref_table}.{rc}"))
                    .collect(),
                ondelete: ondelete.clone(),
                onupdate: onupdate.clone(),
                deferrable: *deferrable,
                initially: initially.clone(),
                match_: match_.clone(),
                use_alter: false,
            }),
            ConsDef::Check { name: n, sql, .. } => out.push(Constraint::Check {
                name: n.as_deref().map(|n| name(n, from_conn)),
                sqltext: SqlExpr::Text(sql.clone()),
            }),
        }
    }
    out
}

fn create_table(t: &TableDef, from_conn: bool) -> AutoOp {
    // The table's dialect options (Alembic renders them sorted by name).
    let mut kwargs = vec![];
    if t.strict {
        kwargs.push(("sqlite_strict".to_string(), Literal::Bool(true)));
    }
    if !t.with_rowid {
        kwargs.push(("sqlite_with_rowid".to_string(), Literal::Bool(false)));
    }
    boxed(Op::CreateTable(CreateTable {
        name: t.name.clone(),
        columns: t.columns.iter().map(column).collect(),
        constraints: constraints(t, from_conn),
        kwargs,
        ..Default::default()
    }))
}

fn drop_table(t: &TableDef) -> AutoOp {
    boxed(Op::DropTable {
        name: t.name.clone(),
        schema: None,
        if_exists: false,
    })
}

/// `MetaData.sorted_tables`: by name, then layer by layer so that a referred table comes
/// before the tables referring to it (SQLAlchemy's `sort_as_subsets`).
fn sorted_tables<'a>(tables: &[&'a TableDef]) -> Vec<&'a TableDef> {
    let mut todo: Vec<&TableDef> = tables.to_vec();
    todo.sort_by(|a, b| a.name.cmp(&b.name));
    let parents = |t: &TableDef| -> BTreeSet<String> {
        t.constraints
            .iter()
            .filter_map(|c| match c {
                ConsDef::ForeignKey { ref_table, .. } if *ref_table != t.name => {
                    Some(ref_table.clone())
                }
                _ => None,
            })
            .collect()
    };
    let mut out = vec![];
    while !todo.is_empty() {
        let pending: BTreeSet<&str> = todo.iter().map(|t| t.name.as_str()).collect();
        let (ready, rest): (Vec<&TableDef>, Vec<&TableDef>) = todo
            .iter()
            .partition(|t| parents(t).iter().all(|p| !pending.contains(p.as_str())));
        if ready.is_empty() {
            // A cycle: SQLAlchemy warns and falls back; keep name order.
            out.extend(rest);
            break;
        }
        out.extend(ready);
        todo = rest;
    }
    out
}

/// The `table.column` targets of the foreign keys on `col`.
pub(super) fn fk_targets(t: &TableDef, col: &str) -> Vec<String> {
    t.constraints
        .iter()
        .filter_map(|c| match c {
            ConsDef::ForeignKey {
                columns,
                ref_table,
                ref_columns,
                ..
            } => columns
                .iter()
                .position(|x| x == col)
                .and_then(|i| ref_columns.get(i))
                .map(|rc| format!("{ref_table}.{rc}")),
            _ => None,
        })
        .collect()
}

/// The whole comparison: `UpgradeOps` as a list of entries, and the lines Alembic logs while
/// detecting them (in its order) appended to `log`.
pub fn compare(
    conn: &[TableDef],
    target: &[TableDef],
    opts: &Options,
    log: &mut Vec<LogLine>,
) -> Vec<Entry> {
    let vt = opts.version_table.as_str();
    let conn: Vec<&TableDef> = conn.iter().filter(|t| t.name != vt).collect();
    let meta: Vec<&TableDef> = target.iter().filter(|t| t.name != vt).collect();
    let in_conn = |n: &str| conn.iter().find(|t| t.name == n).copied();
    let in_meta = |n: &str| meta.iter().find(|t| t.name == n).copied();
    let mut out = vec![];
    for t in sorted_tables(&meta) {
        if in_conn(&t.name).is_some() {
            continue;
        }
        out.push(Entry::Single(Change {
            up: create_table(t, false),
            down: drop_table(t),
            diff: format!("('add_table', {})", repr::table(t)),
        }));
        log.push((
            TABLES,
            format!("Detected added table {}", repr::py_str(&t.name)),
        ));
        let changes = indexes_and_uniques(None, Some(t), log);
        if !changes.is_empty() {
            out.push(Entry::Table {
                name: t.name.clone(),
                changes,
            });
        }
    }
    let mut conn_sorted = conn.clone();
    conn_sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for t in &conn_sorted {
        if in_meta(&t.name).is_some() {
            continue;
        }
        let changes = indexes_and_uniques(Some(t), None, log);
        if !changes.is_empty() {
            out.push(Entry::Table {
                name: t.name.clone(),
                changes,
            });
        }
        out.push(Entry::Single(Change {
            up: drop_table(t),
            down: create_table(t, true),
            diff: format!("('remove_table', {})", repr::table(t)),
        }));
        log.push((
            TABLES,
            format!("Detected removed table {}", repr::py_str(&t.name)),
        ));
    }
    for c in &conn_sorted {
        let Some(m) = in_meta(&c.name) else {
            continue;
        };
        let changes = table_changes(c, m, opts, log);
        if !changes.is_empty() {
            out.push(Entry::Table {
                name: c.name.clone(),
                changes,
            });
        }
    }
    out
}

fn add_column(table: &TableDef, col: &ColDef) -> AutoOp {
    boxed(Op::AddColumn {
        table: table.name.clone(),
        schema: None,
        column: column(col),
        if_not_exists: false,
        insert_before: None,
        insert_after: None,
    })
}

fn drop_column(table: &TableDef, col: &ColDef) -> AutoOp {
    boxed(Op::DropColumn {
        table: table.name.clone(),
        schema: None,
        column: col.name.clone(),
        if_exists: false,
        existing_type: None,
    })
}

fn table_changes(
    c: &TableDef,
    m: &TableDef,
    opts: &Options,
    log: &mut Vec<LogLine>,
) -> Vec<Change> {
    let mut changes = vec![];
    let conn_col = |n: &str| c.columns.iter().find(|x| x.name == n);
    for mcol in &m.columns {
        if conn_col(&mcol.name).is_none() {
            changes.push(Change {
                up: add_column(m, mcol),
                down: drop_column(m, mcol),
                diff: format!(
                    "('add_column', None, {}, {})",
                    repr::py_str(&m.name),
                    repr::column(&m.name, mcol, &fk_targets(m, &mcol.name))
                ),
            });
            log.push((
                TABLES,
                format!("Detected added column '{}.{}'", m.name, mcol.name),
            ));
        }
    }
    for mcol in &m.columns {
        if let Some(ccol) = conn_col(&mcol.name) {
            changes.extend(alter_column(m, ccol, mcol, opts, log));
        }
    }
    changes.extend(indexes_and_uniques(Some(c), Some(m), log));
    changes.extend(foreign_keys(c, m, log));
    for ccol in &c.columns {
        if !m.columns.iter().any(|x| x.name == ccol.name) {
            changes.push(Change {
                up: drop_column(c, ccol),
                down: add_column(c, ccol),
                diff: format!(
                    "('remove_column', None, {}, {})",
                    repr::py_str(&c.name),
                    repr::column(&c.name, ccol, &fk_targets(c, &ccol.name))
                ),
            });
            log.push((
                TABLES,
                format!("Detected removed column '{}.{}'", c.name, ccol.name),
            ));
        }
    }
    changes
}

/// `PrimaryKeyConstraint._autoincrement_column` of a reflected table: the single integer
/// primary key column without a foreign key or server default.
fn is_autoincrement_column(t: &TableDef, col: &ColDef) -> bool {
    t.pk_columns.len() == 1
        && t.pk_columns[0] == col.name
        && col.type_.as_ref().is_some_and(|ty| {
            matches!(ty.name.as_str(), "INTEGER" | "BIGINT" | "SMALLINT") && ty.dialect.is_none()
        })
        && !col.has_fk
        && col.default.is_none()
}

/// `DefaultImpl.compare_type` for two reflected types: the compiled names must match (or be
/// NUMERIC/DECIMAL synonyms), and arguments only count when both sides have as many (so
/// `VARCHAR` and `VARCHAR(20)` are the same type to Alembic).
pub fn types_differ(conn: &TypeSpec, meta: &TypeSpec) -> bool {
    let (a, b) = (conn.name.to_lowercase(), meta.name.to_lowercase());
    let synonyms = ["numeric", "decimal"];
    let same_name = a == b || (synonyms.contains(&a.as_str()) && synonyms.contains(&b.as_str()));
    if !same_name {
        return true;
    }
    conn.args.len() == meta.args.len() && conn.args != meta.args
}

/// `SQLiteImpl.compare_server_default`: one pair of outer parentheses and then quotes are
/// ignored on both sides.
fn server_defaults_differ(conn: Option<&str>, meta: Option<&str>) -> bool {
    fn norm(d: &str) -> String {
        let d = match d.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
            Some(inner) if !inner.is_empty() && !inner.contains('\n') => inner,
            _ => d,
        };
        let unq = d.strip_prefix('"').unwrap_or(d);
        let unq = unq.strip_suffix('"').unwrap_or(unq);
        match unq.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
            // `^"?'(.+)'"?$`: the optional double quotes go with the single ones.
            Some(inner) if !inner.is_empty() && !inner.contains('\n') => inner.to_string(),
            _ => d.to_string(),
        }
    }
    conn.map(norm) != meta.map(norm)
}

fn text_default(d: &Option<String>) -> Option<ServerDefault> {
    d.clone().map(|d| ServerDefault::Expr(SqlExpr::Text(d)))
}

fn default_repr(d: &Option<String>) -> String {
    match d {
        Some(_) => repr::default_clause(),
        None => "None".into(),
    }
}

fn alter_column(
    m: &TableDef,
    ccol: &ColDef,
    mcol: &ColDef,
    opts: &Options,
    log: &mut Vec<LogLine>,
) -> Option<Change> {
    let conn_type = ccol.type_.clone().unwrap_or_else(null_type);
    let meta_type = mcol.type_.clone().unwrap_or_else(null_type);
    // With compare_type=False Alembic stops before recording the existing type.
    let existing_type = opts.compare_type.then(|| conn_type.clone());
    let modify_type = (opts.compare_type
        && !is_null_type(&conn_type)
        && !is_null_type(&meta_type)
        && types_differ(&conn_type, &meta_type))
    .then(|| meta_type.clone());
    let modify_nullable = (ccol.nullable != mcol.nullable).then_some(mcol.nullable);
    let any_default = ccol.default.is_some() || mcol.default.is_some();
    let modify_default = (opts.compare_server_default
        && any_default
        && server_defaults_differ(ccol.default.as_deref(), mcol.default.as_deref()))
    .then(|| mcol.default.clone());
    // Alembic's column comparators log in priority order: the user type hook's setup, then
    // nullability, then the dialect's type comparison (its setup logs again), then defaults.
    let at = format!("'{}.{}'", m.name, mcol.name);
    let type_setup_log = if !opts.compare_type {
        None
    } else if is_null_type(&conn_type) {
        Some(format!("Couldn't determine database type for column {at}"))
    } else if is_null_type(&meta_type) {
        Some(format!(
            "Column {at} has no type within the model; can't compare"
        ))
    } else {
        None
    };
    log.extend(type_setup_log.clone().map(|l| (TYPES, l)));
    if let Some(n) = modify_nullable {
        let what = if n { "NULL" } else { "NOT NULL" };
        log.push((CONSTRAINTS, format!("Detected {what} on column {at}")));
    }
    log.extend(type_setup_log.map(|l| (TYPES, l)));
    if let Some(t) = &modify_type {
        log.push((
            TYPES,
            format!(
                "Detected type change from {} to {} on {at}",
                repr::type_(&conn_type),
                repr::type_(t)
            ),
        ));
    }
    if modify_default.is_some() {
        log.push((
            DEFAULTS,
            format!(
                "Dialect impl <alembic.ddl.sqlite.SQLiteImpl object at {FAKE_ADDRESS}> detected server default on column {at}"
            ),
        ));
    }
    if modify_type.is_none() && modify_nullable.is_none() && modify_default.is_none() {
        return None;
    }
    // `existing_server_default` is recorded only when either side has a default.
    let existing_server_default = any_default.then(|| text_default(&ccol.default));
    let autoincrement = is_autoincrement_column(m, mcol).then_some(true);
    let up = AlterColumn {
        table: m.name.clone(),
        column: mcol.name.clone(),
        nullable: modify_nullable,
        type_: modify_type.clone(),
        server_default: modify_default.as_ref().map(text_default),
        existing_type: existing_type.clone(),
        existing_nullable: Some(ccol.nullable),
        existing_server_default: existing_server_default.clone(),
        autoincrement,
        ..Default::default()
    };
    // AlterColumnOp.reverse: what was modified and what existed swap places.
    let down = AlterColumn {
        nullable: modify_nullable.map(|_| ccol.nullable),
        existing_nullable: Some(modify_nullable.unwrap_or(ccol.nullable)),
        type_: modify_type.as_ref().map(|_| conn_type.clone()),
        existing_type: modify_type.clone().or_else(|| existing_type.clone()),
        server_default: modify_default.as_ref().map(|_| text_default(&ccol.default)),
        existing_server_default: match &modify_default {
            Some(d) => Some(text_default(d)),
            None => existing_server_default.clone(),
        },
        ..up.clone()
    };
    let esd = match &existing_server_default {
        None => "False".to_string(),
        Some(_) => default_repr(&ccol.default),
    };
    let et = existing_type
        .as_ref()
        .map_or_else(|| "None".to_string(), repr::type_);
    let (tq, cq) = (repr::py_str(&m.name), repr::py_str(&mcol.name));
    let en = repr::py_bool(ccol.nullable);
    let mut diffs = vec![];
    if let Some(t) = &modify_type {
        diffs.push(format!(
            "('modify_type', None, {tq}, {cq}, {{'existing_nullable': {en}, 'existing_server_default': {esd}, 'existing_comment': None}}, {et}, {})",
            repr::type_(t)
        ));
    }
    if let Some(n) = modify_nullable {
        diffs.push(format!(
            "('modify_nullable', None, {tq}, {cq}, {{'existing_type': {et}, 'existing_server_default': {esd}, 'existing_comment': None}}, {en}, {})",
            repr::py_bool(n)
        ));
    }
    if let Some(d) = &modify_default {
        diffs.push(format!(
            "('modify_default', None, {tq}, {cq}, {{'existing_nullable': {en}, 'existing_type': {et}, 'existing_comment': None}}, {}, {})",
            default_repr(&ccol.default),
            default_repr(d)
        ));
    }
    Some(Change {
        up: boxed(Op::AlterColumn(up)),
        down: boxed(Op::AlterColumn(down)),
        diff: format!("[{}]", diffs.join(", ")),
    })
}

/// An index or a unique constraint, as `_compare_indexes_and_uniques` matches them.
#[derive(Clone, Copy)]
enum Obj<'a> {
    Index(&'a IdxDef),
    Unique(Option<&'a str>, &'a [String]),
}

fn uniques(t: &TableDef) -> Vec<Obj<'_>> {
    t.constraints
        .iter()
        .filter_map(|c| match c {
            ConsDef::Unique { name, columns, .. } => Some(Obj::Unique(name.as_deref(), columns)),
            _ => None,
        })
        .collect()
}

/// Indexes on plain columns; expression indexes are skipped on both sides, as Alembic's
/// SQLite implementation does.
fn indexes(t: &TableDef) -> Vec<Obj<'_>> {
    t.indexes
        .iter()
        .filter(|ix| ix.name.is_some() && ix.columns.is_some())
        .map(Obj::Index)
        .collect()
}

fn obj_name<'a>(o: &Obj<'a>) -> Option<&'a str> {
    match o {
        Obj::Index(ix) => ix.name.as_deref(),
        Obj::Unique(n, _) => *n,
    }
}

fn sorted_cols(cols: &[String]) -> Vec<String> {
    let mut v = cols.to_vec();
    v.sort();
    v
}

fn index_op(t: &TableDef, ix: &IdxDef, from_conn: bool) -> Op {
    Op::CreateIndex(Index {
        name: ix.name.as_deref().map(|n| name(n, from_conn)),
        table: t.name.clone(),
        schema: None,
        keys: ix
            .columns
            .iter()
            .flatten()
            .map(|c| IndexKey::Column(c.clone()))
            .collect(),
        unique: ix.unique,
        if_not_exists: false,
        sqlite_where: ix.where_.clone().map(SqlExpr::Text),
        kwargs: vec![],
    })
}

fn drop_index_op(t: &TableDef, ix: &IdxDef, from_conn: bool) -> Op {
    Op::DropIndex {
        name: name(ix.name.as_deref().unwrap_or_default(), from_conn),
        table: Some(t.name.clone()),
        schema: None,
        if_exists: false,
        sqlite_where: ix.where_.clone().map(SqlExpr::Text),
    }
}

fn add_unique_op(t: &TableDef, n: Option<&str>, cols: &[String], from_conn: bool) -> AutoOp {
    boxed(Op::CreateUniqueConstraint {
        name: n.map(|n| name(n, from_conn)),
        table: t.name.clone(),
        schema: None,
        columns: cols.to_vec(),
    })
}

fn drop_constraint_op(
    t: &TableDef,
    n: Option<&str>,
    from_conn: bool,
    type_: &'static str,
) -> AutoOp {
    match n {
        Some(n) => boxed(Op::DropConstraint {
            name: name(n, from_conn),
            table: t.name.clone(),
            schema: None,
            type_: Some(type_.to_string()),
        }),
        None => AutoOp::DropUnnamedConstraint {
            table: t.name.clone(),
            type_,
        },
    }
}

fn opt_name_repr(n: Option<&str>) -> String {
    n.map_or_else(|| "None".into(), repr::py_str)
}

fn indexes_and_uniques(
    conn: Option<&TableDef>,
    meta: Option<&TableDef>,
    log: &mut Vec<LogLine>,
) -> Vec<Change> {
    let (is_create, is_drop) = (conn.is_none(), meta.is_none());
    let mut out = vec![];
    // `quiet`: a changed object is logged once as changed, not as removed and added.
    let added =
        |out: &mut Vec<Change>, log: &mut Vec<LogLine>, t: &TableDef, o: Obj, quiet: bool| {
            let cols = |c: &[String]| names_tuple(c);
            match o {
                Obj::Index(ix) => {
                    out.push(Change {
                        up: boxed(index_op(t, ix, false)),
                        down: boxed(drop_index_op(t, ix, false)),
                        diff: format!("('add_index', {})", repr::index(t, ix)),
                    });
                    if !quiet {
                        log.push((
                            CONSTRAINTS,
                            format!(
                                "Detected added index {} on '{}'",
                                opt_name_repr(ix.name.as_deref()),
                                cols(ix.columns.as_deref().unwrap_or_default())
                            ),
                        ));
                    }
                }
                Obj::Unique(n, c) if !is_create && !is_drop => {
                    out.push(Change {
                        up: add_unique_op(t, n, c, false),
                        down: drop_constraint_op(t, n, false, "unique"),
                        diff: format!("('add_constraint', {})", repr::unique(&t.name, c)),
                    });
                    if !quiet {
                        log.push((
                            CONSTRAINTS,
                            format!(
                                "Detected added unique constraint {} on '{}'",
                                opt_name_repr(n),
                                cols(c)
                            ),
                        ));
                    }
                }
                Obj::Unique(..) => {}
            }
        };
    let removed = |out: &mut Vec<Change>,
                   log: &mut Vec<LogLine>,
                   t: &TableDef,
                   o: Obj,
                   quiet: bool| {
        match o {
            Obj::Index(ix) => {
                out.push(Change {
                    up: boxed(drop_index_op(t, ix, true)),
                    down: boxed(index_op(t, ix, true)),
                    diff: format!("('remove_index', {})", repr::index(t, ix)),
                });
                if !quiet {
                    log.push((
                        CONSTRAINTS,
                        format!(
                            "Detected removed index {} on {}",
                            opt_name_repr(ix.name.as_deref()),
                            repr::py_str(&t.name)
                        ),
                    ));
                }
            }
            Obj::Unique(n, c) if !is_create && !is_drop => {
                out.push(Change {
                    up: drop_constraint_op(t, n, true, "unique"),
                    down: add_unique_op(t, n, c, true),
                    diff: format!("('remove_constraint', {})", repr::unique(&t.name, c)),
                });
                if !quiet {
                    log.push((
                        CONSTRAINTS,
                        format!(
                            "Detected removed unique constraint {} on {}",
                            opt_name_repr(n),
                            repr::py_str(&t.name)
                        ),
                    ));
                }
            }
            Obj::Unique(..) => {}
        }
    };
    let meta_objs: Vec<Obj> = meta
        .map(|m| [uniques(m), indexes(m)].concat())
        .unwrap_or_default();
    // A dropped table's unique constraints go with it.
    let conn_objs: Vec<Obj> = match conn {
        Some(c) if is_drop => indexes(c),
        Some(c) => [uniques(c), indexes(c)].concat(),
        None => vec![],
    };
    let meta_names: BTreeMap<&str, Obj> = meta_objs
        .iter()
        .filter_map(|o| obj_name(o).map(|n| (n, *o)))
        .collect();
    let conn_names: BTreeMap<&str, Obj> = conn_objs
        .iter()
        .filter_map(|o| obj_name(o).map(|n| (n, *o)))
        .collect();
    let unnamed_meta_uniques: Vec<(Vec<String>, Obj)> = meta_objs
        .iter()
        .filter_map(|o| match o {
            Obj::Unique(None, cols) => Some((sorted_cols(cols), *o)),
            _ => None,
        })
        .collect();
    let conn_unique_sigs: BTreeSet<Vec<String>> = conn_objs
        .iter()
        .filter_map(|o| match o {
            Obj::Unique(_, cols) => Some(sorted_cols(cols)),
            _ => None,
        })
        .collect();
    if let Some(c) = conn {
        for (n, o) in &conn_names {
            if meta_names.contains_key(n) {
                continue;
            }
            if let Obj::Unique(_, cols) = o {
                if unnamed_meta_uniques
                    .iter()
                    .any(|(s, _)| *s == sorted_cols(cols))
                {
                    continue;
                }
            }
            removed(&mut out, log, c, *o, false);
        }
    }
    if let (Some(c), Some(m)) = (conn, meta) {
        for (n, mo) in &meta_names {
            let Some(co) = conn_names.get(n) else {
                continue;
            };
            // `compare_indexes` / `compare_unique_constraint`: what differs, as Alembic
            // words it (None: the same).
            let change: Option<(&str, String)> = match (mo, co) {
                (Obj::Index(a), Obj::Index(b)) => {
                    let mut msg = vec![];
                    if a.unique != b.unique {
                        msg.push(format!(
                            "unique={} to unique={}",
                            repr::py_bool(b.unique),
                            repr::py_bool(a.unique)
                        ));
                    }
                    if a.columns != b.columns {
                        msg.push(format!(
                            "expression {} to {}",
                            names_tuple(b.columns.as_deref().unwrap_or_default()),
                            names_tuple(a.columns.as_deref().unwrap_or_default())
                        ));
                    }
                    (!msg.is_empty()).then(|| ("index", msg.join(", ")))
                }
                (Obj::Unique(_, a), Obj::Unique(_, b)) => {
                    (sorted_cols(a) != sorted_cols(b)).then(|| {
                        (
                            "unique constraint",
                            format!(
                                "expression {} to {}",
                                names_tuple(&sorted_cols(b)),
                                names_tuple(&sorted_cols(a))
                            ),
                        )
                    })
                }
                _ => {
                    removed(&mut out, log, c, *co, false);
                    added(&mut out, log, m, *mo, false);
                    continue;
                }
            };
            if let Some((what, msg)) = change {
                log.push((
                    CONSTRAINTS,
                    format!(
                        "Detected changed {what} {} on {}: {msg}",
                        repr::py_str(n),
                        repr::py_str(&c.name)
                    ),
                ));
                removed(&mut out, log, c, *co, true);
                added(&mut out, log, m, *mo, true);
            }
        }
    }
    if let Some(m) = meta {
        for (n, o) in &meta_names {
            if !conn_names.contains_key(n) {
                added(&mut out, log, m, *o, false);
            }
        }
        for (sig, o) in &unnamed_meta_uniques {
            if !conn_unique_sigs.contains(sig) {
                added(&mut out, log, m, *o, false);
            }
        }
    }
    out
}

/// `_fk_constraint_sig.unnamed`: what identifies a foreign key.
type FkSig = (
    Vec<String>,
    String,
    Vec<String>,
    Option<String>,
    Option<String>,
    &'static str,
);

fn fk_sig(c: &ConsDef) -> Option<FkSig> {
    let ConsDef::ForeignKey {
        columns,
        ref_table,
        ref_columns,
        onupdate,
        ondelete,
        deferrable,
        initially,
        ..
    } = c
    else {
        return None;
    };
    let norm = |a: &Option<String>| {
        a.as_ref()
            .map(|s| s.to_lowercase())
            .filter(|s| s != "no action")
    };
    let deferral = if initially
        .as_deref()
        .is_some_and(|i| i.eq_ignore_ascii_case("deferred"))
    {
        "initially_deferrable"
    } else if *deferrable == Some(true) {
        "deferrable"
    } else {
        "not deferrable"
    };
    Some((
        columns.clone(),
        ref_table.clone(),
        ref_columns.clone(),
        norm(onupdate),
        norm(ondelete),
        deferral,
    ))
}

fn create_fk_op(t: &TableDef, c: &ConsDef, from_conn: bool) -> Option<AutoOp> {
    let ConsDef::ForeignKey {
        name: n,
        columns,
        ref_table,
        ref_columns,
        ondelete,
        onupdate,
        deferrable,
        initially,
        match_,
        ..
    } = c
    else {
        return None;
    };
    Some(boxed(Op::CreateForeignKey {
        name: n.as_deref().map(|n| name(n, from_conn)),
        source_table: t.name.clone(),
        referent_table: ref_table.clone(),
        local_cols: columns.clone(),
        remote_cols: ref_columns.clone(),
        ondelete: ondelete.clone(),
        onupdate: onupdate.clone(),
        deferrable: *deferrable,
        initially: initially.clone(),
        match_: match_.clone(),
        source_schema: None,
        referent_schema: None,
    }))
}

/// "Detected added/removed foreign key (cols)(referred cols) on table t".
fn fk_log(what: &str, table: &str, k: &ConsDef) -> LogLine {
    let (cols, refs) = match k {
        ConsDef::ForeignKey {
            columns,
            ref_columns,
            ..
        } => (columns.join(", "), ref_columns.join(", ")),
        _ => (String::new(), String::new()),
    };
    (
        CONSTRAINTS,
        format!("Detected {what} foreign key ({cols})({refs}) on table {table}"),
    )
}

fn foreign_keys(c: &TableDef, m: &TableDef, log: &mut Vec<LogLine>) -> Vec<Change> {
    let sigs = |t: &TableDef| -> Vec<(FkSig, ConsDef)> {
        t.constraints
            .iter()
            .filter_map(|k| fk_sig(k).map(|s| (s, k.clone())))
            .collect()
    };
    let (conn_fks, meta_fks) = (sigs(c), sigs(m));
    let mut out = vec![];
    for (sig, k) in &conn_fks {
        if meta_fks.iter().any(|(s, _)| s == sig) {
            continue;
        }
        if let Some(down) = create_fk_op(c, k, true) {
            out.push(Change {
                up: drop_constraint_op(c, k.name(), true, "foreignkey"),
                down,
                diff: format!("('remove_fk', {})", repr::foreign_key(&c.name, k)),
            });
            log.push(fk_log("removed", &c.name, k));
        }
    }
    for (sig, k) in &meta_fks {
        if conn_fks.iter().any(|(s, _)| s == sig) {
            continue;
        }
        if let Some(up) = create_fk_op(m, k, false) {
            out.push(Change {
                up,
                down: drop_constraint_op(m, k.name(), false, "foreignkey"),
                diff: format!("('add_fk', {})", repr::foreign_key(&m.name, k)),
            });
            log.push(fk_log("added", &m.name, k));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alembic_compat::autogenerate::schema_from_sql;

    fn ty(name: &str, args: &[i64]) -> TypeSpec {
        TypeSpec {
            dialect: None,
            name: name.into(),
            args: args.iter().map(|a| Literal::Int(*a)).collect(),
            kwargs: vec![],
            custom: None,
        }
    }

    #[test]
    fn type_comparison_follows_alembic() {
        assert!(!types_differ(&ty("VARCHAR", &[]), &ty("VARCHAR", &[20])));
        assert!(types_differ(&ty("VARCHAR", &[10]), &ty("VARCHAR", &[20])));
        assert!(!types_differ(
            &ty("NUMERIC", &[10, 2]),
            &ty("DECIMAL", &[10, 2])
        ));
        assert!(types_differ(&ty("INTEGER", &[]), &ty("BIGINT", &[])));
    }

    #[test]
    fn tables_sorted_parents_first() {
        let t = schema_from_sql(
            "s.sql",
            "CREATE TABLE a (id INTEGER PRIMARY KEY, z INTEGER REFERENCES z(id));\
             CREATE TABLE z (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER);",
        )
        .unwrap();
        let refs: Vec<&TableDef> = t.iter().collect();
        let names: Vec<&str> = sorted_tables(&refs)
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["b", "z", "a"]);
    }

    #[test]
    fn nothing_to_do_for_the_same_schema() {
        let sql =
            "CREATE TABLE a (id INTEGER NOT NULL, n VARCHAR(5), PRIMARY KEY (id), UNIQUE (n));\
                   CREATE INDEX ix_a_n ON a (n);";
        let a = schema_from_sql("a", sql).unwrap();
        let opts = Options {
            version_table: "alembic_version".into(),
            compare_type: true,
            compare_server_default: true,
        };
        let mut log = vec![];
        assert!(compare(&a, &a, &opts, &mut log).is_empty());
        assert!(log.is_empty());
    }
}

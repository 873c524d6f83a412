//! SQLite move-and-copy for `op.batch_alter_table` (Alembic's `operations/batch.py`): decide
//! whether to recreate, apply the block's ops to the reflected (or `copy_from`) table, and
//! produce CREATE `_alembic_tmp_<t>`, INSERT ... SELECT, DROP, RENAME, CREATE INDEX. The copy
//! is one INSERT ... SELECT, so rows never leave SQLite. Nothing here executes SQL.

use super::ddl::reflect::reflect_table;
use super::ddl::sqlite::{
    self, affinity, column_implicit, cons_def, default_text, idx_def, quote, render_create_index,
    render_create_table, render_type, schema_type_name, table_def, type_bound_ck, Affinity, ColDef,
    ConsDef, Conventions, IdxDef, TableDef,
};
use super::ddl::{render_op_steps, DdlError, RenderOptions};
use super::ops::{Batch, Constraint, Op, PythonDefault, Recreate, ServerDefault};
use super::revision::py_repr_str;

pub fn batch_statements(
    conn: &rusqlite::Connection,
    batch: &Batch,
    opts: &RenderOptions,
) -> Result<BatchSql, DdlError> {
    match batch_steps(Some(conn), batch, opts) {
        (s, None) => Ok(s),
        (_, Some(e)) => Err(e),
    }
}

pub fn batch_statements_offline(batch: &Batch, opts: &RenderOptions) -> Result<BatchSql, DdlError> {
    match batch_steps(None, batch, opts) {
        (s, None) => Ok(s),
        (_, Some(e)) => Err(e),
    }
}

/// What a batch block runs: its statements and, when it moves and copies the table, where
/// the copy stands among them.
#[derive(Debug, Default)]
pub struct BatchSql {
    pub statements: Vec<String>,
    pub copy: Option<CopyStep>,
    /// The copy's bound values: the Python-side defaults of columns the block adds, which
    /// SQLAlchemy's INSERT ... SELECT fills in (empty in `--sql` mode, where it renders them).
    pub copy_params: Vec<super::ops::Literal>,
    /// Alembic's `UserWarning`s about the block (an unnamed reflected CHECK left out).
    pub warnings: Vec<String>,
}

/// Where Alembic 1.20 warns about an unnamed CHECK it leaves out of a recreated table.
pub const UNNAMED_CHECK_WARNING_ORIGIN: &str = "alembic/operations/batch.py:298";

/// The copy (`INSERT INTO _alembic_tmp_<t> ... SELECT`) is `statements[at]`, the old table's
/// `DROP TABLE` the one after it. When either fails, Alembic runs `drop_new` (the new
/// table's `DROP TABLE`) and then raises.
#[derive(Debug)]
pub struct CopyStep {
    pub at: usize,
    pub drop_new: String,
}

impl From<Vec<String>> for BatchSql {
    fn from(statements: Vec<String>) -> Self {
        BatchSql {
            statements,
            copy: None,
            copy_params: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl BatchSql {
    /// The copy statement as `INSERT OR FAIL`, when it can be run so.
    ///
    /// Why: an `INSERT ... SELECT` that may abort on a constraint makes SQLite keep a
    /// statement journal inside a transaction, so that ABORT can undo the statement's own
    /// rows; the copy reuses the pages an earlier copy's `DROP TABLE` freed, and each of them
    /// is then written to that journal first (about 4% of a 100,000-row copy). FAIL stops at
    /// the same row with the same error and leaves the undo to the transaction. That is the
    /// same outcome only where a failure rolls the transaction back (the caller's to know)
    /// and where no constraint of the new table carries its own conflict clause, which a
    /// statement's `OR` clause would override.
    pub fn copy_without_statement_journal(&self) -> Option<String> {
        let copy = self.copy.as_ref()?;
        if self.statements.iter().any(|s| s.contains("ON CONFLICT")) {
            return None;
        }
        let rest = self.statements.get(copy.at)?.strip_prefix(COPY_PREFIX)?;
        Some(format!("INSERT OR FAIL INTO {rest}"))
    }
}

/// How the copy statement begins.
const COPY_PREFIX: &str = "INSERT INTO ";

/// The constraint a batch's `create_unique_constraint`, `create_check_constraint` or
/// `create_foreign_key` makes, as Alembic's schema objects build it.
fn constraint_of(op: &Op) -> Option<Constraint> {
    Some(match op {
        Op::CreateUniqueConstraint { name, columns, .. } => Constraint::Unique {
            name: name.clone(),
            columns: columns.clone(),
            kwargs: vec![],
        },
        Op::CreateCheckConstraint {
            name, condition, ..
        } => Constraint::Check {
            name: name.clone(),
            sqltext: condition.clone(),
        },
        Op::CreateForeignKey {
            name,
            referent_table,
            local_cols,
            remote_cols,
            ondelete,
            onupdate,
            deferrable,
            initially,
            match_,
            ..
        } => Constraint::ForeignKey {
            name: name.clone(),
            columns: local_cols.clone(),
            refcolumns: remote_cols
                .iter()
                .map(|r| format!("{referent_table}.{r}"))
                .collect(),
            ondelete: ondelete.clone(),
            onupdate: onupdate.clone(),
            deferrable: *deferrable,
            initially: initially.clone(),
            match_: match_.clone(),
            use_alter: false,
        },
        _ => return None,
    })
}

/// Alembic builds a batch's new constraints, indexes and columns when their methods are
/// called inside the `with` block, and a naming convention names them then: one that
/// cannot fails before the batch runs anything, and before it would need a connection to
/// reflect the table.
fn named_at_call(op: &Op, table: &str, opts: &RenderOptions) -> Result<(), DdlError> {
    let conv = Conventions {
        pairs: &opts.naming_convention,
    };
    match op {
        Op::AddColumn { column, .. } => column_implicit(column, table, &conv).map(drop),
        Op::CreateIndex(i) => idx_def(i, opts).map(drop),
        _ => match constraint_of(op) {
            Some(c) => cons_def(&c, table, &conv).map(drop),
            None => Ok(()),
        },
    }
}

/// The statements Alembic runs for the block, and the error it raises after them, if any
/// (e.g. a new index naming a renamed column fails after the table was already swapped).
/// `conn: None` is `--sql` mode.
pub fn batch_steps(
    conn: Option<&rusqlite::Connection>,
    batch: &Batch,
    opts: &RenderOptions,
) -> (BatchSql, Option<DdlError>) {
    for (op, _) in &batch.ops {
        if let Err(e) = named_at_call(op, &batch.table, opts) {
            return (BatchSql::default(), Some(e));
        }
    }
    let recreate = match batch.recreate {
        Recreate::Always => true,
        Recreate::Never => false,
        Recreate::Auto => batch.ops.iter().any(|(op, _)| match op {
            // Operations.add_column sends the new column's constraints (a ForeignKey, unique,
            // a CHECK) to the batch as add_constraint ops, and those need the copy. (Naming
            // them cannot fail here: `named_at_call` has already stopped such a batch.)
            Op::AddColumn { column, .. } => {
                matches!(column.server_default, Some(ServerDefault::Expr(_)))
                    || column_implicit(
                        column,
                        &batch.table,
                        &Conventions {
                            pairs: &opts.naming_convention,
                        },
                    )
                    .is_ok_and(|implicit| !implicit.is_empty())
            }
            Op::CreateIndex(_) | Op::DropIndex { .. } => false,
            _ => true,
        }),
    };
    if !recreate {
        let mut out = vec![];
        for (op, _) in &batch.ops {
            if let Op::AddColumn {
                insert_before,
                insert_after,
                ..
            } = op
            {
                if insert_before.is_some() || insert_after.is_some() {
                    return (
                        out.into(),
                        Some(DdlError::Command(
                            "Can't specify insert_before or insert_after when using ALTER; \
                             please specify recreate='always'"
                                .into(),
                        )),
                    );
                }
            }
            let (s, e) = render_op_steps(op, opts);
            out.extend(s);
            if e.is_some() {
                return (out.into(), e);
            }
        }
        return (out.into(), None);
    }
    let (table, reflected) = match (&batch.copy_from, conn) {
        (Some(copy), _) => {
            let own = RenderOptions {
                naming_convention: copy.naming_convention.clone(),
            };
            let def = table_def(&copy.create, &own).and_then(|mut t| {
                for i in &copy.indexes {
                    let mut i = i.clone();
                    i.table = copy.create.name.clone();
                    t.indexes.push(idx_def(&i, &own)?);
                }
                Ok(t)
            });
            match def {
                Ok(t) => (t, false),
                Err(e) => return (BatchSql::default(), Some(e)),
            }
        }
        (None, None) => {
            return (
                BatchSql::default(),
                Some(DdlError::Command(format!(
                    "This operation cannot proceed in --sql mode; batch mode with dialect sqlite \
                     requires a live database connection with which to reflect the table \"{}\". \
                     To generate a batch SQL migration script using table \"move and copy\", a \
                     complete Table object should be passed to the \"copy_from\" argument of the \
                     batch_alter_table() method so that table reflection can be skipped.",
                    batch.table
                ))),
            )
        }
        (None, Some(c)) => match reflect_table(c, &batch.table)
            .and_then(|t| with_reflect_args(t, &batch.reflect_args, opts))
        {
            Ok(t) => (t, true),
            Err(e) => return (BatchSql::default(), Some(e)),
        },
    };
    let mut apply = match Apply::new(table, reflected, batch, opts, conn.is_none()) {
        Ok(apply) => apply,
        Err(e) => return (BatchSql::default(), Some(e)),
    };
    for (op, _) in &batch.ops {
        if let Err(e) = apply.op(op) {
            return (BatchSql::default(), Some(e));
        }
    }
    apply.create()
}

/// `reflect_args`: columns given to the reflected `Table`, as SQLAlchemy adds them after
/// reflecting. One named as a reflected column replaces it in its place (type, nullability,
/// default and the constraints its type brings), and the reflected FOREIGN KEYs on the
/// column it replaces go with that column, as SQLAlchemy drops a replaced column's foreign
/// keys; another is appended.
fn with_reflect_args(
    mut table: TableDef,
    columns: &[super::ops::Column],
    opts: &RenderOptions,
) -> Result<TableDef, DdlError> {
    for column in columns {
        let ct = super::ops::CreateTable {
            name: table.name.clone(),
            columns: vec![column.clone()],
            ..Default::default()
        };
        let mut def = table_def(&ct, opts)?;
        let Some(new) = def.columns.pop() else {
            continue;
        };
        match table.columns.iter().position(|c| c.name == new.name) {
            Some(i) => {
                if table.columns[i].primary_key && !new.primary_key {
                    return Err(DdlError::Argument(format!(
                        "Trying to redefine primary-key column '{}' as a non-primary-key \
                         column on table '{}'",
                        new.name, table.name
                    )));
                }
                table.constraints.retain(|c| {
                    !matches!(c, ConsDef::ForeignKey { columns, .. } if columns.contains(&new.name))
                });
                table.columns[i] = new;
            }
            None => {
                if new.primary_key {
                    table.pk_columns.push(new.name.clone());
                }
                table.columns.push(new);
            }
        }
        table.constraints.append(&mut def.constraints);
        table.indexes.append(&mut def.indexes);
    }
    Ok(table)
}

/// The labels SQLAlchemy gives the defaults a batch copy selects: `anon_<n>` for a bound
/// value, `<function>_<n>` for a function, none for `sa.text`.
#[derive(Default)]
struct CopyLabels {
    anon: usize,
    functions: Vec<(String, usize)>,
}

impl CopyLabels {
    fn anon(&mut self) -> String {
        self.anon += 1;
        format!("anon_{}", self.anon)
    }

    /// The SELECT item for a default; online, a bound value's `?` and its parameter.
    fn select_item(
        &mut self,
        d: &PythonDefault,
        offline: bool,
        params: &mut Vec<super::ops::Literal>,
    ) -> String {
        use super::ops::{Literal, SqlExpr};
        let mut bound = |labels: &mut Self, value: &Literal, shown: String| {
            let label = labels.anon();
            if offline {
                format!("{shown} AS {label}")
            } else {
                params.push(value.clone());
                format!("? AS {label}")
            }
        };
        match d {
            // Offline SQLAlchemy renders a default it would compute in Python as NULL.
            PythonDefault::Value(_) => bound(self, &Literal::None, "NULL".into()),
            PythonDefault::Bound(v) => bound(self, v, "NULL".into()),
            PythonDefault::Sql(SqlExpr::Literal(v)) => bound(self, v, sqlite::literal_sql(v)),
            PythonDefault::Sql(SqlExpr::Text(t)) => t.clone(),
            PythonDefault::Sql(e @ SqlExpr::Func { name, .. }) => {
                // Online its arguments are bound, as SQLAlchemy binds them.
                let e = if offline {
                    e.clone()
                } else {
                    sqlite::bind_literals(e, params)
                };
                let n = match self.functions.iter_mut().find(|(f, _)| f == name) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        self.functions.push((name.clone(), 1));
                        1
                    }
                };
                format!("{} AS {name}_{n}", sqlite::render_expr(&e))
            }
            PythonDefault::Sql(e) => format!("{} AS {}", sqlite::render_expr(e), self.anon()),
        }
    }
}

/// SQLAlchemy's CircularDependencyError, naming every column on a cycle of `pairs`
/// (before, after). Python lists them in its set order, which follows PYTHONHASHSEED; we
/// list them sorted.
fn circular_dependency(pairs: &[(String, String)]) -> DdlError {
    let reaches = |from: &str, to: &str| {
        let mut seen: Vec<&str> = vec![];
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            for (a, b) in pairs {
                if a == n && !seen.contains(&b.as_str()) {
                    if b == to {
                        return true;
                    }
                    seen.push(b);
                    todo.push(b);
                }
            }
        }
        false
    };
    let mut on_cycle: Vec<&str> = pairs
        .iter()
        .map(|(a, _)| a.as_str())
        .filter(|a| reaches(a, a))
        .collect();
    on_cycle.sort_unstable();
    on_cycle.dedup();
    let names: Vec<String> = on_cycle.iter().map(|n| py_repr_str(n)).collect();
    DdlError::CircularDependency(format!(
        "Circular dependency detected. ({})",
        names.join(", ")
    ))
}

struct Transfer {
    /// The SELECT expression, `None` for a column the block adds.
    expr: Option<String>,
    /// An added column's Python-side default, which the copy fills in.
    default: Option<PythonDefault>,
}

struct Apply<'a> {
    table: TableDef,
    opts: &'a RenderOptions,
    /// `--sql` mode: the copy's Python-side defaults render instead of binding.
    offline: bool,
    batch: &'a Batch,
    temp: String,
    /// (key = original name, column)
    columns: Vec<(String, ColDef)>,
    transfers: Vec<(String, Transfer)>,
    existing_ordering: Vec<String>,
    add_col_ordering: Vec<(String, String)>,
    named: Vec<(String, ConsDef)>,
    unnamed: Vec<ConsDef>,
    indexes: Vec<IdxDef>,
    new_indexes: Vec<IdxDef>,
    warnings: Vec<String>,
}

/// Alembic keeps named constraints in a dict: a second constraint of the same name replaces
/// the first (in its place).
fn put_named(named: &mut Vec<(String, ConsDef)>, name: String, c: ConsDef) {
    match named.iter_mut().find(|(k, _)| *k == name) {
        Some(slot) => slot.1 = c,
        None => named.push((name, c)),
    }
}

impl<'a> Apply<'a> {
    fn new(
        table: TableDef,
        reflected: bool,
        batch: &'a Batch,
        opts: &'a RenderOptions,
        offline: bool,
    ) -> Result<Self, DdlError> {
        let temp: String = format!("_alembic_tmp_{}", table.name)
            .chars()
            .take(50)
            .collect();
        let tq = quote(&table.name);
        let columns: Vec<(String, ColDef)> = table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect();
        let transfers = table
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    Transfer {
                        expr: Some(format!("{tq}.{}", quote(&c.name))),
                        default: None,
                    },
                )
            })
            .collect();
        let mut named = vec![];
        let mut unnamed = vec![];
        let mut warnings = vec![];
        // Any CheckConstraint in table_args is taken to restate the reflected unnamed ones.
        let checks_restated = batch
            .table_args
            .iter()
            .any(|c| matches!(c, Constraint::Check { .. }));
        for c in &table.constraints {
            match c {
                ConsDef::Check {
                    type_bound: Some(_),
                    ..
                } => {}
                // Reflection cannot tell which column or type it belongs to.
                ConsDef::Check { name: None, .. } if reflected => {
                    if !checks_restated {
                        warnings.push(format!(
                            "Unnamed CHECK constraint on reflected table '{}' is being omitted \
                             from the table recreate; pass the constraint explicitly using \
                             batch_alter_table.table_args.  Naming CHECK constraints avoids \
                             this going forward.",
                            table.name
                        ));
                    }
                }
                c => match c.name() {
                    Some(n) => put_named(&mut named, n.to_string(), c.clone()),
                    None => unnamed.push(c.clone()),
                },
            }
        }
        // batch naming_convention names what reflection found unnamed.
        if reflected && !batch.naming_convention.is_empty() {
            let conv = Conventions {
                pairs: &batch.naming_convention,
            };
            for c in std::mem::take(&mut unnamed) {
                let key = match &c {
                    ConsDef::Unique { .. } => "uq",
                    ConsDef::ForeignKey { .. } => "fk",
                    ConsDef::Check { .. } => "ck",
                };
                let cols = c.columns();
                let (rt, rc) = match &c {
                    ConsDef::ForeignKey {
                        ref_table,
                        ref_columns,
                        ..
                    } => (Some(ref_table.as_str()), ref_columns.clone()),
                    _ => (None, vec![]),
                };
                let name = conv.apply(
                    key,
                    None,
                    &sqlite::NameCtx {
                        table: &table.name,
                        columns: &cols,
                        referred_table: rt,
                        referred_columns: &rc,
                    },
                )?;
                let mut c = c;
                match &mut c {
                    ConsDef::Unique { name: n, .. }
                    | ConsDef::ForeignKey { name: n, .. }
                    | ConsDef::Check { name: n, .. } => *n = name.clone(),
                }
                match name {
                    Some(n) => put_named(&mut named, n, c),
                    None => unnamed.push(c),
                }
            }
        }
        Ok(Apply {
            existing_ordering: table.columns.iter().map(|c| c.name.clone()).collect(),
            indexes: table.indexes.clone(),
            table,
            opts,
            batch,
            temp,
            columns,
            transfers,
            add_col_ordering: vec![],
            named,
            unnamed,
            new_indexes: vec![],
            warnings,
            offline,
        })
    }

    fn col(&mut self, name: &str) -> Result<&mut ColDef, DdlError> {
        self.columns
            .iter_mut()
            .find(|(k, _)| k == name)
            .map(|(_, c)| c)
            .ok_or_else(|| DdlError::Value(format!("'{name}'")))
    }

    fn add_constraint(&mut self, c: ConsDef) -> Result<(), DdlError> {
        match c.name() {
            Some(n) => {
                let n = n.to_string();
                put_named(&mut self.named, n, c);
                Ok(())
            }
            None => Err(DdlError::Value("Constraint must have a name".into())),
        }
    }

    fn op(&mut self, op: &Op) -> Result<(), DdlError> {
        let conv = Conventions {
            pairs: &self.opts.naming_convention,
        };
        let tname = self.table.name.clone();
        match op {
            Op::AddColumn {
                column,
                insert_before,
                insert_after,
                ..
            } => {
                self.setup_add_ordering(&column.name, insert_before.clone(), insert_after.clone())?;
                let ct = super::ops::CreateTable {
                    name: tname.clone(),
                    columns: vec![column.clone()],
                    ..Default::default()
                };
                let mut def = table_def(&ct, self.opts)?;
                if let Some(mut c) = def.columns.pop() {
                    c.type_events = false;
                    self.columns.push((c.name.clone(), c));
                }
                self.transfers.push((
                    column.name.clone(),
                    Transfer {
                        expr: None,
                        default: column.python_default.clone(),
                    },
                ));
                // Operations.add_column then sends the column's constraints and index here.
                for k in column_implicit(column, &tname, &conv)? {
                    if matches!(
                        k,
                        ConsDef::Check {
                            type_bound: Some(_),
                            ..
                        }
                    ) && k.name().is_none()
                    {
                        self.unnamed.push(k);
                        continue;
                    }
                    self.add_constraint(k)?;
                }
                for i in def.indexes {
                    self.new_indexes.push(i);
                }
            }
            Op::DropColumn {
                column,
                existing_type,
                ..
            } => {
                // Python's errors from `del self.columns[name]` and
                // `existing_ordering.remove(name)` (a column this block added).
                if !self.columns.iter().any(|(k, _)| k == column) {
                    return Err(DdlError::Key(format!("'{column}'")));
                }
                if !self.existing_ordering.contains(column) {
                    return Err(DdlError::Value("list.remove(x): x not in list".into()));
                }
                if let Some(t) = existing_type {
                    if let Some(name) = schema_type_name(t)? {
                        self.named.retain(|(k, _)| k != name);
                    }
                }
                self.table.pk_columns.retain(|c| c != column);
                self.columns.retain(|(k, _)| k != column);
                self.transfers.retain(|(k, _)| k != column);
                self.existing_ordering.retain(|k| k != column);
            }
            Op::AlterColumn(a) => {
                // Operations.alter_column drops the constraints the existing type brings
                // (the batch ignores one it does not have) and, after the change, adds the
                // new type's: a named one with the named constraints, another after them.
                if let (Some(_), Some(existing)) = (&a.type_, &a.existing_type) {
                    if let Some(ck) = type_bound_ck(&a.column, existing, &tname, &conv)? {
                        if let Some(n) = ck.name() {
                            self.named.retain(|(k, _)| k != n);
                        }
                    }
                }
                let new_type_check = match &a.type_ {
                    Some(t) => type_bound_ck(&a.column, t, &tname, &conv)?,
                    None => None,
                };
                if let Some(t) = &a.type_ {
                    let existing_aff = {
                        let c = self.col(&a.column)?;
                        affinity(c.type_.as_ref())
                    };
                    let (rendered, new_aff) = render_type(t).map_err(|e| e.bare())?;
                    if existing_aff != new_aff && new_aff != Affinity::Json {
                        if let Some((_, tr)) =
                            self.transfers.iter_mut().find(|(k, _)| *k == a.column)
                        {
                            // A second change in the block casts the first one's result.
                            // A column the block added has nothing to cast: Python's
                            // KeyError on its transfer's missing "expr".
                            let Some(e) = &tr.expr else {
                                return Err(DdlError::Key("'expr'".into()));
                            };
                            let label = format!(" AS {}", quote(&a.column));
                            let inner = e.strip_suffix(&label).unwrap_or(e);
                            let (ty, collate) = sqlite::cast_type_parts(&rendered);
                            tr.expr = Some(format!("CAST({inner} AS {ty}){collate}{label}"));
                        }
                    }
                    let c = self.col(&a.column)?;
                    c.type_ = Some(t.clone());
                    c.type_events = false;
                }
                // A rename forgets the named constraint of the existing Boolean or Enum type,
                // as Alembic's does (it would name the old column).
                if let (Some(_), Some(t)) = (&a.new_column_name, &a.existing_type) {
                    if let Some(name) = schema_type_name(t)? {
                        self.named.retain(|(k, _)| k != name);
                    }
                }
                let c = self.col(&a.column)?;
                if let Some(n) = &a.new_column_name {
                    c.name = n.clone();
                }
                if let Some(n) = a.nullable {
                    c.nullable = n;
                }
                if let Some(sd) = &a.server_default {
                    c.default = sd.as_ref().map(default_text);
                }
                if let Some(ai) = a.autoincrement {
                    c.autoincrement = if ai {
                        super::ops::Autoincrement::True
                    } else {
                        super::ops::Autoincrement::False
                    };
                }
                if let Some(ck) = new_type_check {
                    match ck.name() {
                        Some(_) => self.add_constraint(ck)?,
                        None => self.unnamed.push(ck),
                    }
                }
            }
            Op::CreateIndex(i) => self.new_indexes.push(idx_def(i, self.opts)?),
            Op::DropIndex { name, .. } => {
                let before = self.indexes.len();
                self.indexes
                    .retain(|i| i.name.as_deref() != Some(name.as_str()));
                if self.indexes.len() == before {
                    return Err(DdlError::Value(format!(
                        "No such index: '{}'",
                        name.as_str()
                    )));
                }
            }
            Op::CreateUniqueConstraint { .. }
            | Op::CreateCheckConstraint { .. }
            | Op::CreateForeignKey { .. } => {
                if let Some(c) = constraint_of(op) {
                    if let Some(d) = cons_def(&c, &tname, &conv)? {
                        self.add_constraint(d)?;
                    }
                }
            }
            Op::CreatePrimaryKey { name, columns, .. } => {
                if name.is_none() {
                    return Err(DdlError::Value("Constraint must have a name".into()));
                }
                self.table.pk_name = name.as_ref().map(|n| n.as_str().to_string());
                self.table.pk_columns = columns.clone();
                for (_, c) in self.columns.iter_mut() {
                    c.primary_key = columns.contains(&c.name);
                }
            }
            Op::DropConstraint { name, .. } => {
                let n = name.as_str();
                if self.table.pk_name.as_deref() == Some(n) {
                    self.table.pk_name = None;
                    self.table.pk_columns.clear();
                    for (_, c) in self.columns.iter_mut() {
                        c.primary_key = false;
                    }
                } else if let Some(pos) = self.named.iter().position(|(k, _)| k == n) {
                    self.named.remove(pos);
                } else {
                    return Err(DdlError::Value(format!("No such constraint: '{n}'")));
                }
            }
            Op::CreateTable(_) => {
                return Err(DdlError::NotImplemented(
                    "Can't create table in batch mode".into(),
                ))
            }
            Op::DropTable { .. } => {
                return Err(DdlError::NotImplemented(
                    "Can't drop table in batch mode".into(),
                ))
            }
            Op::RenameTable { .. } => return Err(DdlError::NotImplemented("TODO".into())),
            Op::Execute(_) | Op::BulkInsert { .. } | Op::Batch(_) => {
                return Err(DdlError::Argument("not a batch operation on SQLite".into()))
            }
        }
        Ok(())
    }

    /// Alembic's `_setup_dependencies_for_add_column`. Placing a column next to one the block
    /// added looks that one up in a dict built from the ordering pairs (the last pair wins),
    /// which fails with Python's KeyError when it has no pair on that side.
    fn setup_add_ordering(
        &mut self,
        colname: &str,
        mut before: Option<String>,
        mut after: Option<String>,
    ) -> Result<(), DdlError> {
        let idx = |n: &str| self.existing_ordering.iter().position(|x| x == n);
        let key_error = |k: &str| DdlError::Key(py_repr_str(k));
        if self.batch.partial_reordering.is_empty() {
            if let (Some(a), None) = (&after, &before) {
                before = match idx(a) {
                    Some(i) => self.existing_ordering.get(i + 1).cloned(),
                    None => Some(
                        self.add_col_ordering
                            .iter()
                            .rev()
                            .find(|(x, _)| x == a)
                            .map(|(_, y)| y.clone())
                            .ok_or_else(|| key_error(a))?,
                    ),
                };
            }
            if let (Some(b), None) = (&before, &after) {
                after = match idx(b) {
                    Some(i) if i > 0 => self.existing_ordering.get(i - 1).cloned(),
                    Some(_) => None,
                    None => Some(
                        self.add_col_ordering
                            .iter()
                            .rev()
                            .find(|(_, y)| y == b)
                            .map(|(x, _)| x.clone())
                            .ok_or_else(|| key_error(b))?,
                    ),
                };
            }
        }
        let (had_b, had_a) = (before.is_some(), after.is_some());
        if let Some(b) = before {
            self.add_col_ordering.push((colname.to_string(), b));
        }
        if let Some(a) = after {
            self.add_col_ordering.push((a, colname.to_string()));
        }
        if self.batch.partial_reordering.is_empty()
            && !had_b
            && !had_a
            && !self.existing_ordering.is_empty()
        {
            if let Some(last) = self.existing_ordering.last() {
                self.add_col_ordering
                    .push((last.clone(), colname.to_string()));
            }
        }
        Ok(())
    }

    /// Alembic's `topological.sort(pairs, col_by_idx, deterministic_order=True)`, which sorts
    /// in rounds: each round takes, in current order, every column with no predecessor left
    /// from before the round. A cycle is SQLAlchemy's CircularDependencyError.
    fn reorder(&mut self) -> Result<(), DdlError> {
        let order: Vec<String> = self.columns.iter().map(|(k, _)| k.clone()).collect();
        let mut pairs: Vec<(String, String)> = vec![];
        if !self.batch.partial_reordering.is_empty() {
            for t in &self.batch.partial_reordering {
                for w in t.windows(2) {
                    pairs.push((w[0].clone(), w[1].clone()));
                }
            }
        } else {
            for (i, e) in self.existing_ordering.iter().enumerate() {
                if i > 0 {
                    if let Some(prev) = order.get(i - 1) {
                        pairs.push((prev.clone(), e.clone()));
                    }
                }
            }
        }
        pairs.extend(self.add_col_ordering.iter().cloned());
        pairs.retain(|(a, b)| a != b);
        let all_pairs = pairs.clone();
        pairs.retain(|(a, b)| order.contains(a) && order.contains(b));
        let mut remaining = order.clone();
        let mut sorted = vec![];
        while !remaining.is_empty() {
            let (ready, waiting): (Vec<String>, Vec<String>) = remaining
                .iter()
                .cloned()
                .partition(|c| !pairs.iter().any(|(a, b)| b == c && remaining.contains(a)));
            if ready.is_empty() {
                return Err(circular_dependency(&all_pairs));
            }
            sorted.extend(ready);
            remaining = waiting;
        }
        let mut cols = std::mem::take(&mut self.columns);
        let mut trs = std::mem::take(&mut self.transfers);
        for k in &sorted {
            if let Some(p) = cols.iter().position(|(x, _)| x == k) {
                self.columns.push(cols.remove(p));
            }
            if let Some(p) = trs.iter().position(|(x, _)| x == k) {
                self.transfers.push(trs.remove(p));
            }
        }
        Ok(())
    }

    fn create(mut self) -> (BatchSql, Option<DdlError>) {
        if !self.batch.partial_reordering.is_empty() || !self.add_col_ordering.is_empty() {
            if let Err(e) = self.reorder() {
                return (BatchSql::default(), Some(e));
            }
        }
        let conv = Conventions {
            pairs: &self.opts.naming_convention,
        };
        let tname = self.table.name.clone();
        let live: Vec<String> = self.columns.iter().map(|(k, _)| k.clone()).collect();
        // Constraint columns are matched by key (the name before any rename in the block).
        let key_to_name = |k: &str| -> String {
            self.columns
                .iter()
                .find(|(x, _)| x == k)
                .map(|(_, c)| c.name.clone())
                .unwrap_or_else(|| k.to_string())
        };
        let mut constraints = vec![];
        for c in &self.batch.table_args {
            match cons_def(c, &self.temp, &conv) {
                Ok(d) => constraints.extend(d),
                Err(e) => return (BatchSql::default(), Some(e)),
            }
        }
        for (_, c) in &self.columns {
            if c.type_events {
                if let Some(t) = &c.type_ {
                    match type_bound_ck(&c.name, t, &tname, &conv) {
                        Ok(ck) => constraints.extend(ck),
                        Err(e) => return (BatchSql::default(), Some(e)),
                    }
                }
            }
        }
        for c in self.named.iter().map(|(_, c)| c).chain(self.unnamed.iter()) {
            let cols = c.columns();
            if !cols.iter().all(|k| live.contains(k)) {
                continue;
            }
            let mut c = c.clone();
            match &mut c {
                ConsDef::Unique { columns, .. } | ConsDef::ForeignKey { columns, .. } => {
                    *columns = columns.iter().map(|k| key_to_name(k)).collect();
                }
                ConsDef::Check { .. } => {}
            }
            constraints.push(c);
        }
        let pk_columns: Vec<String> = self
            .table
            .pk_columns
            .iter()
            .filter(|k| live.contains(k))
            .map(|k| key_to_name(k))
            .collect();
        let new = TableDef {
            name: self.temp.clone(),
            schema: self.table.schema.clone(),
            columns: self.columns.iter().map(|(_, c)| c.clone()).collect(),
            pk_name: self.table.pk_name.clone(),
            pk_columns,
            constraints,
            indexes: vec![],
            autoincrement: self.table.autoincrement,
            with_rowid: self.table.with_rowid,
            strict: self.table.strict,
            prefixes: vec![],
            if_not_exists: false,
            pk_on_conflict: self.table.pk_on_conflict.clone(),
        };
        let mut out = vec![];
        match render_create_table(&new) {
            Ok(s) => out.push(s),
            Err(e) => return (out.into(), Some(e)),
        }
        let moved: Vec<(&String, &String)> = self
            .transfers
            .iter()
            .filter_map(|(k, t)| t.expr.as_ref().map(|e| (k, e)))
            .collect();
        let copy = CopyStep {
            at: out.len(),
            drop_new: format!(
                "\nDROP TABLE {}",
                sqlite::format_table(&self.temp, self.table.schema.as_deref())
            ),
        };
        let mut names: Vec<String> = moved
            .iter()
            .map(|(k, _)| quote(&key_to_name(k)).into_owned())
            .collect();
        let mut exprs: Vec<String> = moved.iter().map(|(_, e)| e.to_string()).collect();
        let (mut copy_params, mut labels) = (vec![], CopyLabels::default());
        // SQLAlchemy's INSERT ... SELECT fills in, after the selected columns, the columns
        // with a Python-side default, in the new table's order.
        for (k, t) in &self.transfers {
            let (None, Some(d)) = (&t.expr, &t.default) else {
                continue;
            };
            names.push(quote(&key_to_name(k)).into_owned());
            exprs.push(labels.select_item(d, self.offline, &mut copy_params));
        }
        out.push(format!(
            "{COPY_PREFIX}{} ({}) SELECT {} \nFROM {}",
            quote(&self.temp),
            names.join(", "),
            exprs.join(", "),
            sqlite::format_table(&tname, self.table.schema.as_deref())
        ));
        out.push(format!(
            "\nDROP TABLE {}",
            sqlite::format_table(&tname, self.table.schema.as_deref())
        ));
        out.push(format!(
            "ALTER TABLE {} RENAME TO {}",
            sqlite::format_table(&self.temp, self.table.schema.as_deref()),
            quote(&tname)
        ));
        // The indexes, after the swap: a failure among them keeps the statements before it.
        let mut indexes = || -> Result<(), DdlError> {
            // Alembic gathers every index before creating any, so a new index naming a column
            // renamed in the same block (looked up by key: KeyError) stops them all.
            for idx in &self.new_indexes {
                if let Some(cols) = &idx.columns {
                    if let Some(missing) = cols.iter().find(|k| !live.contains(k)) {
                        return Err(DdlError::Key(format!("'{missing}'")));
                    }
                }
            }
            for idx in self.indexes.iter().filter(|i| !i.column_flag) {
                let mut i = idx.clone();
                // Alembic re-creates an index even when the block dropped one of its columns;
                // SQLite then fails with "no such column", as it does under Alembic.
                if let Some(cols) = &idx.columns {
                    let names: Vec<String> = cols.iter().map(|k| key_to_name(k)).collect();
                    i.exprs = names.iter().map(|n| quote(n).into_owned()).collect();
                    i.columns = Some(names);
                }
                out.push(render_create_index(
                    &i,
                    &tname,
                    self.table.schema.as_deref(),
                )?);
            }
            for idx in &self.new_indexes {
                out.push(render_create_index(
                    idx,
                    &tname,
                    self.table.schema.as_deref(),
                )?);
            }
            Ok(())
        };
        let failure = indexes().err();
        (
            BatchSql {
                statements: out,
                copy: Some(copy),
                copy_params,
                warnings: std::mem::take(&mut self.warnings),
            },
            failure,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{BatchSql, CopyStep};

    fn plan(create: &str) -> BatchSql {
        BatchSql {
            statements: vec![
                create.to_string(),
                "INSERT INTO _alembic_tmp_t (id) SELECT t.id \nFROM t".to_string(),
                "\nDROP TABLE t".to_string(),
            ],
            copy: Some(CopyStep {
                at: 1,
                drop_new: "\nDROP TABLE _alembic_tmp_t".to_string(),
            }),
            copy_params: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_copy_skips_the_statement_journal_unless_a_constraint_names_its_conflict_clause() {
        assert_eq!(
            plan("CREATE TABLE _alembic_tmp_t (id INTEGER NOT NULL)")
                .copy_without_statement_journal()
                .as_deref(),
            Some("INSERT OR FAIL INTO _alembic_tmp_t (id) SELECT t.id \nFROM t")
        );
        // A statement's OR clause would override the constraint's own.
        assert_eq!(
            plan("CREATE TABLE _alembic_tmp_t (id INTEGER NOT NULL ON CONFLICT IGNORE)")
                .copy_without_statement_journal(),
            None
        );
        let no_copy: BatchSql = vec!["ALTER TABLE t ADD COLUMN x INTEGER".to_string()].into();
        assert_eq!(no_copy.copy_without_statement_journal(), None);
    }
}

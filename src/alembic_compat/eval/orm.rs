//! The slice of SQLAlchemy's ORM that data migrations use, over Core statements:
//! `declarative_base()` models declared with `Column` class attributes, a `Session` on the
//! migration's connection, `session.query(Model)` with `join`/`filter`/`filter_by` and
//! `count`/`all`/`first`/`one`/`delete`/`update`, the bulk helpers; and `enum.Enum` classes
//! (a `sa.Enum(PyEnum)` column stores the member names).
//!
//! A session here has no identity map and no unit of work: every call runs its statement at
//! once, in the migration's transaction, which is what these bodies rely on.

use std::cell::RefCell;
use std::rc::Rc;

use super::builtins;
use super::interp::{exc, type_error, unsupported, Interp, R};
use super::native::{self, Native};
use super::sql::{Join, SqlNode, Statement, TableRef};
use super::value::Value;
use crate::alembic_compat::ops::{Literal, TypeSpec};

/// A class declared on a `declarative_base()`.
#[derive(Debug)]
pub struct Model {
    pub name: String,
    pub table: TableRef,
    /// (attribute, column name), in declaration order.
    pub attrs: Vec<(String, String)>,
    /// Primary-key column names.
    pub pk: Vec<String>,
}

impl Model {
    fn column_of(&self, attr: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a, _)| a == attr)
            .map(|(_, c)| c.as_str())
    }

    fn type_of(&self, column: &str) -> Option<Rc<TypeSpec>> {
        self.table
            .columns
            .iter()
            .find(|(c, _)| **c == *column)
            .and_then(|(_, t)| t.clone())
    }

    /// `column = value`, as `filter_by` and the bulk updates' key match write it.
    fn equals(&self, column: &str, value: SqlNode) -> SqlNode {
        SqlNode::Binary {
            left: Box::new(self.column_node(column)),
            op: "=".into(),
            right: Box::new(value),
        }
    }

    fn column_node(&self, column: &str) -> SqlNode {
        SqlNode::Column {
            table: Some(self.table.name.clone()),
            name: column.into(),
            type_: self.type_of(column),
        }
    }
}

/// An `enum.Enum` subclass: its members in order.
#[derive(Debug)]
pub struct EnumClass {
    pub name: String,
    pub members: Vec<(String, Value)>,
}

/// A model instance: what `query(...).all()` returns and what `Model(**kw)` builds.
#[derive(Debug)]
pub struct Instance {
    pub model: Rc<Model>,
    pub values: RefCell<Vec<(String, Value)>>,
}

#[derive(Clone, Debug)]
pub struct Query {
    pub model: Rc<Model>,
    pub joins: Vec<Join>,
    pub wheres: Vec<SqlNode>,
    pub order_by: Vec<SqlNode>,
    pub limit: Option<i64>,
}

impl Query {
    /// The model's table with what the query joined to it.
    fn joined_table(&self) -> TableRef {
        let mut table = self.model.table.clone();
        table.joins = self.joins.clone();
        table
    }
}

/// `class Name(Base): __tablename__ = ...; col = Column(...)`, `vars` in declaration order.
pub fn define_model(name: &str, vars: Vec<(String, Value)>) -> R<Value> {
    let mut table_name = None;
    let mut columns = Vec::new();
    let mut attrs = Vec::new();
    let mut pk = Vec::new();
    for (attr, value) in vars {
        match (attr.as_str(), &value) {
            ("__tablename__", Value::Str(s)) => table_name = Some(s.to_string()),
            ("__tablename__", _) => return Err(type_error("__tablename__ must be a str")),
            (_, Value::Native(n)) => {
                if let Native::Column(c) = &**n {
                    let column = if c.name.is_empty() {
                        attr.clone()
                    } else {
                        c.name.clone()
                    };
                    if c.primary_key {
                        pk.push(column.clone());
                    }
                    columns.push((column.as_str().into(), c.type_.clone().map(Rc::new)));
                    attrs.push((attr, column));
                } else if attr == "__table_args__" {
                    // Constraints and dialect options: the model only reads and writes rows.
                }
            }
            _ => {}
        }
    }
    let Some(table) = table_name else {
        return Err(exc(
            "sqlalchemy.exc.InvalidRequestError",
            format!(
                "Class '{name}' does not have a __table__ or __tablename__ specified and does \
                 not inherit from an existing table-mapped class."
            ),
        ));
    };
    if pk.is_empty() {
        return Err(exc(
            "sqlalchemy.exc.ArgumentError",
            format!(
                "Mapper Mapper[{name}({table})] could not assemble any primary key columns for \
                 mapped table '{table}'"
            ),
        ));
    }
    Ok(Value::native(Native::Model(Rc::new(Model {
        name: name.to_string(),
        table: TableRef {
            name: table.into(),
            schema: None,
            columns: Rc::new(columns),
            joins: Vec::new(),
            definition: None,
        },
        attrs,
        pk,
    }))))
}

/// `class Name(enum.Enum): A = 1; B = 2`.
pub fn define_enum(name: &str, vars: Vec<(String, Value)>) -> R<Value> {
    let members = vars
        .into_iter()
        .filter(|(k, _)| !(k.starts_with("__") && k.ends_with("__")))
        .collect();
    Ok(Value::native(Native::EnumClass(Rc::new(EnumClass {
        name: name.to_string(),
        members,
    }))))
}

pub fn enum_member_name(class: &EnumClass, index: usize) -> &str {
    class.members.get(index).map_or("", |(n, _)| n.as_str())
}

pub fn get_attr(this: &Rc<Native>, attr: &str) -> Option<R<Value>> {
    let missing = |owner: &str| {
        exc(
            "AttributeError",
            format!("type object '{owner}' has no attribute '{attr}'"),
        )
    };
    Some(match &**this {
        Native::Model(m) => match attr {
            "__tablename__" => Ok(Value::str(&*m.table.name)),
            "__table__" => Ok(Value::native(Native::Table(Rc::new(m.table.clone())))),
            _ => match m.column_of(attr) {
                Some(c) => Ok(Value::native(Native::Sql(Box::new(m.column_node(c))))),
                None => Err(missing(&m.name)),
            },
        },
        Native::Instance(i) => match i.values.borrow().iter().find(|(k, _)| k == attr) {
            Some((_, v)) => Ok(v.clone()),
            None if i.model.column_of(attr).is_some() => Ok(Value::None),
            None => Err(exc(
                "AttributeError",
                format!("'{}' object has no attribute '{attr}'", i.model.name),
            )),
        },
        Native::EnumClass(c) => match c.members.iter().position(|(n, _)| n == attr) {
            Some(index) => Ok(Value::native(Native::EnumMember {
                class: c.clone(),
                index,
            })),
            None => Err(missing(&c.name)),
        },
        Native::EnumMember { class, index } => match attr {
            "name" => Ok(Value::str(enum_member_name(class, *index))),
            "value" => Ok(class
                .members
                .get(*index)
                .map_or(Value::None, |(_, v)| v.clone())),
            _ => Err(exc(
                "AttributeError",
                format!("'{}' object has no attribute '{attr}'", class.name),
            )),
        },
        Native::Session | Native::Query(_) => Ok(Value::native(Native::Bound {
            name: native::method_name(attr),
            this: this.clone(),
        })),
        _ => return None,
    })
}

/// Calling a model (an instance), an enum class (lookup by value), `Session(...)`.
pub fn call(this: &Native, args: Vec<Value>, kwargs: Vec<(String, Value)>) -> Option<R<Value>> {
    Some(match this {
        Native::Model(m) => {
            if !args.is_empty() {
                return Some(Err(type_error(format!(
                    "{}() takes keyword arguments only",
                    m.name
                ))));
            }
            let mut values = Vec::new();
            for (k, v) in kwargs {
                if m.column_of(&k).is_none() {
                    return Some(Err(type_error(format!(
                        "'{k}' is an invalid keyword argument for {}",
                        m.name
                    ))));
                }
                values.push((k, v));
            }
            Ok(Value::native(Native::Instance(Rc::new(Instance {
                model: m.clone(),
                values: RefCell::new(values),
            }))))
        }
        Native::EnumClass(c) => {
            let wanted = args.first().cloned().unwrap_or(Value::None);
            match c
                .members
                .iter()
                .position(|(_, v)| super::value::py_eq(v, &wanted))
            {
                Some(index) => Ok(Value::native(Native::EnumMember {
                    class: c.clone(),
                    index,
                })),
                None => Err(exc(
                    "ValueError",
                    format!("{} is not a valid {}", builtins::repr(&wanted), c.name),
                )),
            }
        }
        _ => return None,
    })
}

fn as_model(v: &Value) -> R<Rc<Model>> {
    if let Value::Native(n) = v {
        if let Native::Model(m) = &**n {
            return Ok(m.clone());
        }
    }
    Err(unsupported(
        format!("a query of {}", v.type_name()),
        "queries here select whole mapped classes: session.query(Model)",
    ))
}

/// `session.<name>(...)`.
pub fn session_method(
    interp: &mut Interp<'_>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    match name {
        "query" => {
            let [model] = <[Value; 1]>::try_from(args).map_err(|_| {
                unsupported(
                    "a query of several entities or columns",
                    "queries here select one mapped class",
                )
            })?;
            Ok(Value::native(Native::Query(Rc::new(Query {
                model: as_model(&model)?,
                joins: Vec::new(),
                wheres: Vec::new(),
                order_by: Vec::new(),
                limit: None,
            }))))
        }
        "execute" | "scalar" | "scalars" => {
            let conn = Rc::new(Native::Connection);
            native::call(
                interp,
                &Rc::new(Native::Bound {
                    name: native::method_name(name),
                    this: conn,
                }),
                args,
                kwargs,
            )
        }
        "add" => {
            for a in args {
                insert_instance(interp, &a)?;
            }
            Ok(Value::None)
        }
        "add_all" | "bulk_save_objects" => {
            for a in builtins::iterate(args.first().unwrap_or(&Value::None))? {
                insert_instance(interp, &a)?;
            }
            Ok(Value::None)
        }
        "bulk_insert_mappings" | "bulk_update_mappings" => {
            let model = as_model(args.first().unwrap_or(&Value::None))?;
            for mapping in builtins::iterate(args.get(1).unwrap_or(&Value::None))? {
                let Value::Dict(d) = &mapping else {
                    return Err(type_error("mappings must be dicts"));
                };
                let pairs: Vec<(String, Value)> = d
                    .borrow()
                    .iter()
                    .map(|(k, v)| (builtins::str_of(k), v.clone()))
                    .collect();
                if name == "bulk_insert_mappings" {
                    insert_row(interp, &model, &pairs)?;
                } else {
                    update_by_pk(interp, &model, &pairs)?;
                }
            }
            Ok(Value::None)
        }
        // Joined to the migration's transaction: the session neither commits nor ends it.
        "commit" | "flush" | "close" | "rollback" | "expunge_all" | "expire_all" => Ok(Value::None),
        _ => Err(unsupported(
            format!("`session.{name}()`"),
            "not in ralembic's model of the ORM session",
        )),
    }
}

fn column_values(model: &Model, pairs: &[(String, Value)]) -> R<Vec<(String, SqlNode)>> {
    let mut out = Vec::new();
    for (attr, v) in pairs {
        let column = model.column_of(attr).ok_or_else(|| {
            type_error(format!(
                "'{attr}' is an invalid keyword argument for {}",
                model.name
            ))
        })?;
        let ty = model.type_of(column);
        out.push((column.to_string(), native::to_sql(v, ty.as_ref())?));
    }
    Ok(out)
}

fn insert_row(interp: &mut Interp<'_>, model: &Model, pairs: &[(String, Value)]) -> R<Value> {
    let stmt = Statement::Insert {
        table: model.table.clone(),
        values: column_values(model, pairs)?,
        rows: Vec::new(),
        select: None,
    };
    native::run_statement(interp, &stmt, &[])
}

fn insert_instance(interp: &mut Interp<'_>, v: &Value) -> R<Value> {
    if let Value::Native(n) = v {
        if let Native::Instance(i) = &**n {
            let pairs = i.values.borrow().clone();
            return insert_row(interp, &i.model, &pairs);
        }
    }
    Err(type_error(format!(
        "expected a mapped instance, got {}",
        v.type_name()
    )))
}

fn update_by_pk(interp: &mut Interp<'_>, model: &Model, pairs: &[(String, Value)]) -> R<Value> {
    let mut values = Vec::new();
    let mut wheres = Vec::new();
    for (column, node) in column_values(model, pairs)? {
        if model.pk.contains(&column) {
            wheres.push(model.equals(&column, node));
        } else {
            values.push((column, node));
        }
    }
    if wheres.len() != model.pk.len() {
        return Err(exc(
            "sqlalchemy.exc.InvalidRequestError",
            format!(
                "No primary key value supplied for column(s) {}",
                model.pk.join(", ")
            ),
        ));
    }
    if values.is_empty() {
        return Ok(Value::None);
    }
    let stmt = Statement::Update {
        table: model.table.clone(),
        values,
        wheres,
    };
    native::run_statement(interp, &stmt, &[])
}

/// `query.<name>(...)`.
pub fn query_method(
    interp: &mut Interp<'_>,
    q: &Query,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    let next = |q: Query| Ok(Value::native(Native::Query(Rc::new(q))));
    match name {
        "filter" | "where" => {
            let mut q = q.clone();
            for a in &args {
                q.wheres.push(native::to_sql(a, None)?);
            }
            next(q)
        }
        "filter_by" => {
            let mut q = q.clone();
            for (column, node) in column_values(&q.model, &kwargs)? {
                q.wheres.push(q.model.equals(&column, node));
            }
            next(q)
        }
        "join" | "outerjoin" => {
            let outer =
                name == "outerjoin" || kwargs.iter().any(|(k, v)| k == "isouter" && v.truthy());
            let mut from = q.joined_table();
            native::join_to(
                &mut from,
                args.first().unwrap_or(&Value::None),
                args.get(1),
                outer,
            )?;
            let mut q = q.clone();
            q.joins = from.joins;
            next(q)
        }
        "order_by" => {
            let mut q = q.clone();
            for a in &args {
                q.order_by.push(native::to_sql(a, None)?);
            }
            next(q)
        }
        "limit" => {
            let mut q = q.clone();
            q.limit = match args.first() {
                Some(Value::Int(n)) => Some(*n),
                _ => return Err(type_error("limit() takes an integer")),
            };
            next(q)
        }
        "count" => {
            let stmt = select(
                q,
                vec![SqlNode::Func {
                    name: "count".into(),
                    args: Vec::new(),
                }],
            );
            let result = native::run_statement(interp, &stmt, &[])?;
            native::result_method(interp, &result, "scalar", Vec::new())
        }
        "all" | "first" | "one" | "one_or_none" => {
            let columns = q
                .model
                .attrs
                .iter()
                .map(|(_, c)| q.model.column_node(c))
                .collect();
            let mut q = q.clone();
            if name == "first" {
                q.limit = Some(1);
            }
            let result = native::run_statement(interp, &select(&q, columns), &[])?;
            let rows = builtins::iterate(&native::result_method(
                interp,
                &result,
                "fetchall",
                Vec::new(),
            )?)?;
            let mut instances = Vec::with_capacity(rows.len());
            for row in rows {
                let values = builtins::iterate(&row)?;
                let pairs = q
                    .model
                    .attrs
                    .iter()
                    .map(|(a, _)| a.clone())
                    .zip(values)
                    .collect();
                instances.push(Value::native(Native::Instance(Rc::new(Instance {
                    model: q.model.clone(),
                    values: RefCell::new(pairs),
                }))));
            }
            match name {
                "all" => Ok(Value::list(instances)),
                "first" => Ok(instances.into_iter().next().unwrap_or(Value::None)),
                _ => match instances.len() {
                    1 => Ok(instances.swap_remove(0)),
                    0 if name == "one_or_none" => Ok(Value::None),
                    0 => Err(exc(
                        "sqlalchemy.exc.NoResultFound",
                        "No row was found when one was required",
                    )),
                    _ => Err(exc(
                        "sqlalchemy.exc.MultipleResultsFound",
                        "Multiple rows were found when exactly one was required",
                    )),
                },
            }
        }
        "delete" | "update" => {
            if !q.joins.is_empty() {
                return Err(unsupported(
                    format!("`query.{name}()` over a join"),
                    "SQLite has no multi-table DELETE/UPDATE",
                ));
            }
            let stmt = if name == "delete" {
                Statement::Delete {
                    table: q.model.table.clone(),
                    wheres: q.wheres.clone(),
                }
            } else {
                let Some(Value::Dict(d)) = args.first() else {
                    return Err(type_error("update() takes a dict of values"));
                };
                let mut values = Vec::new();
                for (k, v) in d.borrow().iter() {
                    let column = match k {
                        Value::Str(s) => match q.model.column_of(s) {
                            Some(c) => c.to_string(),
                            None => {
                                return Err(exc(
                                    "sqlalchemy.exc.InvalidRequestError",
                                    format!(
                                        "Attribute name not found, can't be synchronized back \
                                         to objects: '{s}'"
                                    ),
                                ))
                            }
                        },
                        Value::Native(n) => match n.as_sql() {
                            Some(SqlNode::Column { name, .. }) => name.to_string(),
                            _ => return Err(type_error("update() keys are columns")),
                        },
                        _ => return Err(type_error("update() keys are columns")),
                    };
                    let ty = q.model.type_of(&column);
                    values.push((column, native::to_sql(v, ty.as_ref())?));
                }
                Statement::Update {
                    table: q.model.table.clone(),
                    values,
                    wheres: q.wheres.clone(),
                }
            };
            let result = native::run_statement(interp, &stmt, &[])?;
            native::get_attr(interp, &as_rc(&result)?, &result, "rowcount")
        }
        _ => Err(unsupported(
            format!("`query.{name}()`"),
            "not in ralembic's model of ORM queries",
        )),
    }
}

fn as_rc(v: &Value) -> R<Rc<Native>> {
    match v {
        Value::Native(n) => Ok(n.clone()),
        _ => Err(type_error("expected a result")),
    }
}

fn select(q: &Query, columns: Vec<SqlNode>) -> Statement {
    Statement::Select {
        columns,
        from: vec![q.joined_table()],
        wheres: q.wheres.clone(),
        group_by: Vec::new(),
        having: Vec::new(),
        order_by: q.order_by.clone(),
        limit: q.limit,
        offset: None,
        distinct: false,
    }
}

/// What an enum member binds as in a `sa.Enum(PyEnum)` column: its name.
pub fn member_literal(class: &EnumClass, index: usize) -> Literal {
    Literal::Str(enum_member_name(class, index).to_string())
}

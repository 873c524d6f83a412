//! Objects that are not plain Python values: modules, Alembic's `op` and migration context,
//! SQLAlchemy's schema objects, SQL expressions and statements, connections, inspectors and
//! results, and the standard-library pieces revision files use (datetime, json, uuid,
//! logging, os.environ).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::rc::Rc;

use super::builtins::{self, repr, str_of};
use super::interp::{detached, exc, key_error, type_error, unsupported, Interp, PyExc, Unwind, R};
use super::sql::{self, Rendered, SqlNode, Statement, TableRef};
use super::value::{as_number, py_eq, DateTimeValue, Dict, Num, Temporal, Value};
use super::Cell;
use crate::alembic_compat::ops::{
    self, AlterColumn, Autoincrement, Batch, Column, Constraint, CreateTable, ForeignKey, Index,
    IndexKey, Literal, Name, Op, Recreate, ServerDefault, TableClause, TypeSpec,
};
use crate::alembic_compat::runtime::{dbapi_parts, DbapiParts};
use crate::alembic_compat::script::ast::{BinOp, CmpOp};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ViewKind {
    Keys,
    Values,
    Items,
}

impl ViewKind {
    /// The item of this view for one of the dict's entries.
    pub fn item(self, key: &Value, value: &Value) -> Value {
        match self {
            ViewKind::Keys => key.clone(),
            ViewKind::Values => value.clone(),
            ViewKind::Items => Value::tuple(vec![key.clone(), value.clone()]),
        }
    }
}

#[derive(Debug)]
pub enum Native {
    Builtin(&'static str),
    Method {
        name: &'static str,
        this: Value,
    },
    /// `str.lower` and the like: the method, called with its object first.
    Unbound {
        name: &'static str,
    },
    ExcClass(String),
    Exception(Box<PyExc>),
    TypeOf(String),
    Module(&'static str),
    /// `typing` names and other annotations-only objects: inert.
    Opaque(String),
    /// `sa.MetaData(naming_convention=...)`: its conventions, for a `sa.Table` built on it.
    MetaData(Rc<Vec<(String, String)>>),
    /// A module-level function or class, named `module.attr`.
    Func(String),
    /// A method of a native object.
    Bound {
        name: std::borrow::Cow<'static, str>,
        this: Rc<Native>,
    },
    TypeClass {
        dialect: Option<String>,
        name: String,
    },
    Type(Box<TypeSpec>),
    /// A class the revision file derives from a SQLAlchemy type.
    TypeSubclass(Rc<super::custom::TypeSubclass>),
    /// `compiles(Class, *dialects)`: the decorator that registers a DDL function.
    Compiles {
        class: Rc<super::custom::TypeSubclass>,
        dialects: Vec<String>,
    },
    /// The `compiler` a `@compiles` function is called with: nothing of it is modelled.
    TypeCompiler,
    /// `contextlib.contextmanager(f)`.
    ContextManagerFn(Value),
    /// What calling it returns: the generator runs when a `with` statement enters it.
    GeneratorCm {
        func: Value,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    },
    /// `declarative_base()`: the class ORM models derive from.
    DeclarativeBase,
    Model(Rc<super::orm::Model>),
    Instance(Rc<super::orm::Instance>),
    Session,
    Query(Rc<super::orm::Query>),
    /// `enum.Enum`, the class enum classes derive from.
    EnumBase,
    EnumClass(Rc<super::orm::EnumClass>),
    EnumMember {
        class: Rc<super::orm::EnumClass>,
        index: usize,
    },
    Column(Box<Column>),
    ForeignKey(Box<ForeignKey>),
    /// `sa.Computed(...)`, for a column.
    Computed(Box<ops::ComputedSpec>),
    /// `re.compile(...)` and what the module's functions compile.
    RePattern(Rc<super::re::Pattern>),
    /// What `re.match` & co. find.
    ReMatch(Rc<super::re::Match>),
    /// `sa.Identity(...)`: SQLite has no identity columns, and SQLAlchemy's SQLite
    /// compiler renders none; the column only becomes NOT NULL unless told otherwise.
    Identity,
    Constraint(Box<Constraint>),
    Index(Box<Index>),
    FinalName(String),
    Sql(Box<SqlNode>),
    FuncNamespace,
    FuncName(String),
    Table(Rc<TableRef>),
    TableColumns(Rc<TableRef>),
    Stmt(Box<Statement>),
    Batch(Rc<RefCell<Batch>>),
    Connection,
    /// `conn.engine`: only its name and dialect are modelled.
    Engine,
    Dialect,
    MigrationContext,
    Inspector,
    Result(Rc<RefCell<ResultData>>),
    Row(Rc<RowData>),
    Mapping(Rc<RowData>),
    Temporal(Temporal),
    Logger(String),
    Environ,
    /// `d.keys()`, `d.values()`, `d.items()`: live views of the dict, as in Python.
    DictView {
        dict: Rc<RefCell<Dict>>,
        kind: ViewKind,
    },
    Uuid(String),
    /// Mako's `UNDEFINED`: what a template sees for a name its caller did not pass. Falsy;
    /// rendering it is a NameError (the template renderer checks for it).
    Undefined,
}

#[derive(Debug, Default)]
pub struct ResultData {
    pub columns: Rc<Vec<String>>,
    pub rows: Vec<Vec<Value>>,
    pub rowcount: i64,
    /// Rows already handed out by fetchone/first.
    pub cursor: usize,
    /// What each row is handed out as.
    pub shape: RowShape,
}

/// A `CursorResult` hands out rows; `.scalars()` and `.mappings()` give results (with the
/// same methods: `all`, `first`, `one`, iteration...) that hand out a column's values or
/// `RowMapping`s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum RowShape {
    #[default]
    Rows,
    Scalars,
    Mappings,
}

#[derive(Debug)]
pub struct RowData {
    pub columns: Rc<Vec<String>>,
    pub values: Vec<Value>,
}

const SA_TYPES: &[&str] = &[
    "Integer",
    "BigInteger",
    "SmallInteger",
    "String",
    "Unicode",
    "Text",
    "UnicodeText",
    "Boolean",
    "DateTime",
    "Date",
    "Time",
    "Float",
    "Double",
    "Numeric",
    "LargeBinary",
    "JSON",
    "Enum",
    "Uuid",
    "UUID",
    "Interval",
    "PickleType",
    "ARRAY",
    "VARCHAR",
    "CHAR",
    "NCHAR",
    "NVARCHAR",
    "INTEGER",
    "INT",
    "BIGINT",
    "SMALLINT",
    "TEXT",
    "CLOB",
    "BLOB",
    "BOOLEAN",
    "DATETIME",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "FLOAT",
    "REAL",
    "DOUBLE",
    "DOUBLE_PRECISION",
    "NUMERIC",
    "DECIMAL",
    "BINARY",
    "VARBINARY",
    "TupleType",
    "NullType",
    "Sequence",
];

const SA_FUNCS: &[&str] = &[
    "Column",
    "ForeignKey",
    "PrimaryKeyConstraint",
    "UniqueConstraint",
    "ForeignKeyConstraint",
    "CheckConstraint",
    "Index",
    "text",
    "table",
    "column",
    "select",
    "insert",
    "update",
    "delete",
    "and_",
    "or_",
    "not_",
    "literal",
    "literal_column",
    "null",
    "true",
    "false",
    "case",
    "inspect",
    "cast",
    "bindparam",
    "MetaData",
    "Table",
    "join",
    "outerjoin",
    "Computed",
    "Identity",
    "desc",
    "asc",
    "distinct",
    "exists",
    "func",
    "exc",
    "types",
    "schema",
    "sql",
    "dialects",
    "engine",
];

const OP_FUNCS: &[&str] = &[
    "create_table",
    "drop_table",
    "rename_table",
    "add_column",
    "drop_column",
    "alter_column",
    "create_index",
    "drop_index",
    "create_unique_constraint",
    "create_foreign_key",
    "create_check_constraint",
    "create_primary_key",
    "drop_constraint",
    "execute",
    "bulk_insert",
    "inline_literal",
    "f",
    "batch_alter_table",
    "get_bind",
    "get_context",
    "create_table_comment",
    "drop_table_comment",
    "run_async",
    "invoke",
    "implementation_for",
    "register_operation",
    "create_exclude_constraint",
    "drop_column_comment",
];

/// `op.*` names Alembic has that ralembic does not run.
const OP_UNSUPPORTED: &[&str] = &[
    "run_async",
    "invoke",
    "implementation_for",
    "register_operation",
    "create_exclude_constraint",
    "create_table_comment",
    "drop_table_comment",
    "drop_column_comment",
];

/// SQLAlchemy names outside the model, and why.
const SA_UNSUPPORTED: &[(&str, &str)] = &[];

/// Whether `module.attr` is in the model: `Err` with the refusal when it is not (what
/// running the body would raise at that attribute).
pub fn check_attr(module: &'static str, attr: &str) -> R<()> {
    // Preflight asks this for every `op.x`/`sa.x` of every file: a 200-revision plan asked
    // 1,150 times about a dozen names, and making the value costs about 1,100 instructions.
    thread_local! {
        static MODELLED: RefCell<rustc_hash::FxHashMap<&'static str, rustc_hash::FxHashSet<String>>> =
            RefCell::default();
    }
    let known = MODELLED.with(|m| m.borrow().get(module).is_some_and(|a| a.contains(attr)));
    if known {
        return Ok(());
    }
    match module_attr(&Native::Module(module), attr) {
        Ok(_) => {
            MODELLED.with(|m| {
                m.borrow_mut()
                    .entry(module)
                    .or_default()
                    .insert(attr.to_string())
            });
            Ok(())
        }
        Err(Unwind::Exc(_)) => Err(unsupported(
            format!("`{module}.{attr}`"),
            "not in ralembic's model of this module",
        )),
        Err(u) => Err(u),
    }
}

/// Batch-op methods (`batch_op.add_column(...)` etc.).
const BATCH_METHODS: &[&str] = &[
    "add_column",
    "drop_column",
    "alter_column",
    "create_index",
    "drop_index",
    "create_unique_constraint",
    "create_foreign_key",
    "create_check_constraint",
    "create_primary_key",
    "drop_constraint",
    "execute",
    "f",
    "get_bind",
    "get_context",
    "create_table_comment",
    "drop_table_comment",
    "create_exclude_constraint",
];

/// `import <name>`.
pub fn import_module(name: &str) -> R<Value> {
    let known: &'static str = match name {
        "alembic" => "alembic",
        "alembic.op" => "alembic.op",
        "alembic.context" => "alembic.context",
        "sqlalchemy"
        | "sqlalchemy.types"
        | "sqlalchemy.sql"
        | "sqlalchemy.schema"
        | "sqlalchemy.sql.expression"
        | "sqlalchemy.sql.sqltypes"
        | "sqlalchemy.sql.schema"
        | "sqlalchemy.sql.functions" => "sqlalchemy",
        "sqlalchemy.exc" => "sqlalchemy.exc",
        "sqlalchemy.ext.compiler" => "sqlalchemy.ext.compiler",
        "sqlalchemy.orm" => "sqlalchemy.orm",
        "sqlalchemy.ext.declarative" => "sqlalchemy.ext.declarative",
        "contextlib" => "contextlib",
        "sqlalchemy.dialects" => "sqlalchemy.dialects",
        "sqlalchemy.dialects.sqlite" => "sqlalchemy.dialects.sqlite",
        "sqlalchemy.dialects.postgresql" => "sqlalchemy.dialects.postgresql",
        "sqlalchemy.dialects.mysql" => "sqlalchemy.dialects.mysql",
        "sqlalchemy.dialects.mssql" => "sqlalchemy.dialects.mssql",
        "sqlalchemy.dialects.oracle" => "sqlalchemy.dialects.oracle",
        "sqlalchemy.engine" | "sqlalchemy.engine.reflection" => "sqlalchemy.engine",
        "typing" | "typing_extensions" | "collections.abc" | "__future__" => "typing",
        "datetime" => "datetime",
        "json" => "json",
        "re" => "re",
        "collections" => "collections",
        "uuid" => "uuid",
        "logging" => "logging",
        "os" => "os",
        "enum" => "enum",
        "math" => "math",
        "time" => "time",
        "textwrap" => "textwrap",
        _ => {
            return Err(unsupported(
                format!("`import {name}`"),
                unknown_module_reason(name),
            ))
        }
    };
    Ok(Value::native(Native::Module(known)))
}

/// Why a module is outside the model, by what kind of module it is.
fn unknown_module_reason(name: &str) -> &'static str {
    const STDLIB: &[&str] = &[
        "contextlib",
        "itertools",
        "functools",
        "collections",
        "re",
        "decimal",
        "random",
        "string",
        "copy",
        "hashlib",
        "base64",
        "pathlib",
        "sys",
        "dataclasses",
        "abc",
        "warnings",
        "operator",
        "secrets",
        "zoneinfo",
        "ipaddress",
    ];
    let top = name.split('.').next().unwrap_or(name);
    if top == "sqlalchemy" || top == "alembic" {
        "ralembic models the Core expression, schema and Alembic operation API that revision \
         bodies use, not the ORM, compiler extensions or other internals; write this \
         revision's SQL in an override file (<revision>.sqlite.sql next to it)"
    } else if STDLIB.contains(&top) {
        "this standard-library module is not modelled; write this revision's SQL in an \
         override file (<revision>.sqlite.sql next to it)"
    } else {
        "ralembic runs revision bodies without the application's or third-party modules; \
         write this revision's SQL in an override file (<revision>.sqlite.sql next to it)"
    }
}

/// `from <module> import <name>`.
pub fn import_from(module: &Value, module_name: &str, name: &str) -> R<Value> {
    let Value::Native(m) = module else {
        return Err(exc("ImportError", format!("cannot import name '{name}'")));
    };
    // `from sqlalchemy.dialects import sqlite` names a submodule.
    if let Ok(sub) = import_module(&format!("{module_name}.{name}")) {
        if !matches!(&**m, Native::Module("typing")) {
            return Ok(sub);
        }
    }
    module_attr(m, name).map_err(|e| match e {
        Unwind::Unsupported(_) | Unwind::Detached(_) => e,
        Unwind::Exc(_) => unsupported(
            format!("`from {module_name} import {name}`"),
            format!("`{name}` is not in ralembic's model of `{module_name}`"),
        ),
    })
}

fn module_attr(m: &Native, attr: &str) -> R<Value> {
    let Native::Module(module) = m else {
        return Err(exc("AttributeError", attr.to_string()));
    };
    let func = |prefix: &str| Value::native(Native::Func(format!("{prefix}.{attr}")));
    let missing = || {
        exc(
            "AttributeError",
            format!("module '{module}' has no attribute '{attr}'"),
        )
    };
    Ok(match *module {
        "alembic" => match attr {
            "op" => Value::native(Native::Module("alembic.op")),
            "context" => Value::native(Native::Module("alembic.context")),
            // The Alembic whose behaviour ralembic follows (a revision may test for features).
            "__version__" => Value::str("1.20.1"),
            _ => return Err(missing()),
        },
        "alembic.op" if OP_UNSUPPORTED.contains(&attr) => {
            return Err(unsupported(
                format!("`op.{attr}`"),
                "not implemented in ralembic yet; use a SQL override file for this revision",
            ))
        }
        "alembic.op" if OP_FUNCS.contains(&attr) => func("op"),
        "alembic.context" => match attr {
            "get_x_argument" | "is_offline_mode" | "get_context" | "get_bind" | "configure"
            | "run_migrations" | "begin_transaction" => func("context"),
            "config" => {
                return Err(unsupported(
                    "`context.config`",
                    "alembic.ini is read by ralembic itself; use -x arguments",
                ))
            }
            _ => return Err(missing()),
        },
        "sqlalchemy" => {
            if let Some((_, why)) = SA_UNSUPPORTED.iter().find(|(n, _)| *n == attr) {
                return Err(unsupported(format!("`sa.{attr}`"), *why));
            }
            if SA_TYPES.contains(&attr) {
                Value::native(Native::TypeClass {
                    dialect: None,
                    name: attr.to_string(),
                })
            } else if attr == "func" {
                Value::native(Native::FuncNamespace)
            } else if attr == "exc" {
                Value::native(Native::Module("sqlalchemy.exc"))
            } else if attr == "dialects" {
                Value::native(Native::Module("sqlalchemy.dialects"))
            } else if matches!(attr, "types" | "schema" | "sql") {
                Value::native(Native::Module("sqlalchemy"))
            } else if attr == "engine" {
                Value::native(Native::Module("sqlalchemy.engine"))
            } else if attr == "orm" {
                Value::native(Native::Module("sqlalchemy.orm"))
            } else if SA_FUNCS.contains(&attr) {
                func("sa")
            } else {
                return Err(missing());
            }
        }
        "sqlalchemy.exc" => {
            let qualified = format!("sqlalchemy.exc.{attr}");
            if builtins::is_exception_class(&qualified) {
                Value::native(Native::ExcClass(qualified))
            } else {
                return Err(missing());
            }
        }
        "sqlalchemy.ext.compiler" => match attr {
            "compiles" => func("compiler"),
            _ => return Err(missing()),
        },
        "sqlalchemy.orm" => match attr {
            "Session" | "declarative_base" | "sessionmaker" => func("orm"),
            _ => {
                return Err(unsupported(
                    format!("`sqlalchemy.orm.{attr}`"),
                    "ralembic models declarative_base() models with Column attributes and \
                     Session queries over them, not the rest of the ORM; write this revision's \
                     SQL in an override file (<revision>.sqlite.sql next to it)",
                ))
            }
        },
        "sqlalchemy.ext.declarative" => match attr {
            "declarative_base" => func("orm"),
            _ => return Err(missing()),
        },
        "contextlib" => match attr {
            "contextmanager" => func("contextlib"),
            _ => return Err(missing()),
        },
        "sqlalchemy.engine" => match attr {
            "Inspector" | "reflection" => Value::native(Native::Opaque(attr.to_string())),
            "Connection" | "Engine" => Value::native(Native::Opaque(attr.to_string())),
            _ => return Err(missing()),
        },
        "sqlalchemy.dialects" => match attr {
            "sqlite" | "postgresql" | "mysql" | "mssql" | "oracle" => {
                import_module(&format!("sqlalchemy.dialects.{attr}"))?
            }
            _ => return Err(missing()),
        },
        d if d.starts_with("sqlalchemy.dialects.") => {
            if attr.chars().next().is_some_and(char::is_uppercase) && attr != "Insert" {
                Value::native(Native::TypeClass {
                    dialect: Some(d.trim_start_matches("sqlalchemy.dialects.").to_string()),
                    name: attr.to_string(),
                })
            } else if attr == "insert" {
                func("sa")
            } else {
                return Err(missing());
            }
        }
        "typing" => Value::native(Native::Opaque(attr.to_string())),
        "datetime" => match attr {
            "datetime" | "date" | "time" | "timedelta" | "timezone" => func("datetime"),
            "UTC" => Value::native(Native::Temporal(Temporal::Zone(0))),
            _ => return Err(missing()),
        },
        "math" => match super::stdlib::math_attr(attr) {
            Some(super::stdlib::MathAttr::Constant(f)) => Value::Float(f),
            Some(super::stdlib::MathAttr::Function) => func("math"),
            None => {
                return Err(unsupported(
                    format!("`math.{attr}`"),
                    "not in ralembic's model of `math`",
                ))
            }
        },
        "time" if super::stdlib::time_attr(attr) => func("time"),
        "textwrap" if super::stdlib::textwrap_attr(attr) => func("textwrap"),
        "textwrap" => {
            return Err(unsupported(
                format!("`textwrap.{attr}`"),
                "of `textwrap` only dedent() and indent() are modelled",
            ))
        }
        "time" => {
            return Err(unsupported(
                format!("`time.{attr}`"),
                "of `time` only the clocks and sleep() are modelled",
            ))
        }
        "json" => match attr {
            "dumps" | "loads" => func("json"),
            "JSONDecodeError" => {
                Value::native(Native::ExcClass("json.decoder.JSONDecodeError".into()))
            }
            _ => return Err(missing()),
        },
        "uuid" => match attr {
            "uuid4" | "UUID" => func("uuid"),
            _ => return Err(missing()),
        },
        "collections" => match attr {
            "defaultdict" | "OrderedDict" => func("collections"),
            _ => {
                return Err(unsupported(
                    format!("`collections.{attr}`"),
                    "of collections only defaultdict and OrderedDict are modelled",
                ))
            }
        },
        "re" => match attr {
            "match" | "search" | "fullmatch" | "sub" | "subn" | "findall" | "finditer"
            | "split" | "compile" | "escape" => func("re"),
            "I" | "IGNORECASE" => Value::Int(super::re::IGNORECASE),
            "M" | "MULTILINE" => Value::Int(super::re::MULTILINE),
            "S" | "DOTALL" => Value::Int(super::re::DOTALL),
            "X" | "VERBOSE" => Value::Int(super::re::VERBOSE),
            "A" | "ASCII" => Value::Int(256),
            "U" | "UNICODE" => Value::Int(32),
            "error" => Value::native(Native::ExcClass("re.error".into())),
            _ => return Err(missing()),
        },
        "logging" => match attr {
            "getLogger" => func("logging"),
            "DEBUG" => Value::Int(10),
            "INFO" => Value::Int(20),
            "WARNING" | "WARN" => Value::Int(30),
            "ERROR" => Value::Int(40),
            "CRITICAL" => Value::Int(50),
            "info" | "warning" | "debug" | "error" | "critical" => func("logging"),
            _ => return Err(missing()),
        },
        "os" => match attr {
            "environ" => Value::native(Native::Environ),
            "getenv" => func("os"),
            _ => return Err(missing()),
        },
        "enum" => match attr {
            "Enum" => Value::native(Native::EnumBase),
            _ => {
                return Err(unsupported(
                    format!("`enum.{attr}`"),
                    "ralembic models enum.Enum classes only",
                ))
            }
        },
        _ => return Err(missing()),
    })
}

// ----- identifiers ---------------------------------------------------------------------------

// ----- argument binding ------------------------------------------------------------------------

/// Binds a call's arguments to a Python signature: `names` in positional order; a name
/// starting with `*` takes the remaining positionals; a trailing `**` accepts any other
/// keyword (dialect kwargs such as `sqlite_where`).
struct Bound {
    values: Vec<Option<Value>>,
    rest: Vec<Value>,
    extra: Vec<(String, Value)>,
}

fn bind(func: &str, names: &[&str], args: Vec<Value>, kwargs: Vec<(String, Value)>) -> R<Bound> {
    let star = names.iter().position(|n| n.starts_with('*') && *n != "**");
    let open_kw = names.contains(&"**");
    let mut values: Vec<Option<Value>> = vec![None; names.len()];
    let mut rest = Vec::new();
    for (i, a) in args.into_iter().enumerate() {
        match star {
            Some(s) if i >= s => rest.push(a),
            _ => {
                if i >= names.len() || names[i] == "**" {
                    return Err(type_error(format!(
                        "{func}() takes {} positional arguments but more were given",
                        star.unwrap_or(names.len())
                    )));
                }
                values[i] = Some(a);
            }
        }
    }
    let mut extra = Vec::new();
    for (k, v) in kwargs {
        match names.iter().position(|n| *n == k) {
            Some(i) => {
                if values[i].is_some() {
                    return Err(type_error(format!(
                        "{func}() got multiple values for argument '{k}'"
                    )));
                }
                values[i] = Some(v);
            }
            None if open_kw => extra.push((k, v)),
            None => {
                return Err(type_error(format!(
                    "{func}() got an unexpected keyword argument '{k}'"
                )))
            }
        }
    }
    Ok(Bound {
        values,
        rest,
        extra,
    })
}

impl Bound {
    fn get(&self, i: usize) -> Option<&Value> {
        self.values.get(i).and_then(Option::as_ref)
    }
    fn req(&self, i: usize, func: &str, name: &str) -> R<&Value> {
        self.get(i).ok_or_else(|| {
            type_error(format!(
                "{func}() missing 1 required positional argument: '{name}'"
            ))
        })
    }
    fn flag(&self, i: usize) -> bool {
        self.get(i).is_some_and(Value::truthy)
    }
    /// The argument when it was passed as something other than `None`.
    fn given(&self, i: usize) -> Option<&Value> {
        self.get(i).filter(|v| !matches!(v, Value::None))
    }
    /// A tri-state keyword such as `deferrable=`: unset, or its truth.
    fn opt_flag(&self, i: usize) -> Option<bool> {
        self.given(i).map(Value::truthy)
    }
    fn opt_str(&self, i: usize) -> R<Option<String>> {
        self.given(i).map(to_str).transpose()
    }
    fn extra_literals(&self) -> R<Vec<(String, Literal)>> {
        self.extra_literals_except("")
    }
    /// Dialect keyword arguments as literals, leaving out one that is an expression.
    /// Another dialect's option (`postgresql_where=sa.text(...)`) is left out whatever its
    /// value: SQLAlchemy's SQLite compiler never reads it.
    fn extra_literals_except(&self, skip: &str) -> R<Vec<(String, Literal)>> {
        let mut out = Vec::new();
        for (k, v) in &self.extra {
            if k == skip {
                continue;
            }
            match to_literal(v) {
                Ok(l) => out.push((k.clone(), l)),
                Err(_) if is_other_dialect_option(k) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// `postgresql_where`, `mysql_length`, `mssql_clustered`...: options of dialects other than
/// SQLite, which compiling for SQLite ignores.
fn is_other_dialect_option(key: &str) -> bool {
    const OTHERS: &[&str] = &["postgresql", "mysql", "mariadb", "mssql", "oracle"];
    key.split_once('_')
        .is_some_and(|(dialect, rest)| !rest.is_empty() && OTHERS.contains(&dialect))
}

fn to_str(v: &Value) -> R<String> {
    match v {
        Value::Str(s) => Ok(s.to_string()),
        Value::Native(n) => match &**n {
            Native::FinalName(s) => Ok(s.clone()),
            _ => Err(type_error(format!(
                "expected a string, got {}",
                v.type_name()
            ))),
        },
        _ => Err(type_error(format!(
            "expected a string, got {}",
            v.type_name()
        ))),
    }
}

fn to_name(v: Option<&Value>) -> R<Option<Name>> {
    Ok(match v {
        None | Some(Value::None) => None,
        Some(Value::Native(n)) if matches!(&**n, Native::FinalName(_)) => match &**n {
            Native::FinalName(s) => Some(Name::Final(s.clone())),
            _ => None,
        },
        Some(v) => Some(Name::Plain(to_str(v)?)),
    })
}

fn to_str_list(v: &Value) -> R<Vec<String>> {
    match v {
        Value::Str(s) => Ok(vec![s.to_string()]),
        _ => builtins::iterate(v)?
            .iter()
            .map(|x| match x {
                Value::Native(n) => match (n.as_sql(), &**n) {
                    (Some(SqlNode::Column { name, .. }), _) => Ok(name.to_string()),
                    (_, Native::Column(c)) => Ok(c.name.clone()),
                    _ => to_str(x),
                },
                _ => to_str(x),
            })
            .collect(),
    }
}

pub fn to_literal(v: &Value) -> R<Literal> {
    Ok(match v {
        Value::None => Literal::None,
        Value::Bool(b) => Literal::Bool(*b),
        Value::Int(i) => Literal::Int(*i),
        Value::Float(f) => Literal::Float(*f),
        Value::Str(s) => Literal::Str(s.to_string()),
        Value::Bytes(b) => Literal::Bytes(b.to_vec()),
        Value::List(_) | Value::Tuple(_) | Value::Set(_) => Literal::List(
            builtins::iterate(v)?
                .iter()
                .map(to_literal)
                .collect::<R<_>>()?,
        ),
        Value::Dict(_) => Literal::Str(json_dumps(v)?),
        Value::Native(n) => match &**n {
            Native::Type(t) => Literal::Type(t.clone()),
            Native::TypeClass { dialect, name } => Literal::Type(Box::new(TypeSpec {
                dialect: dialect.clone(),
                name: name.clone(),
                args: Vec::new(),
                kwargs: Vec::new(),
                custom: None,
            })),
            Native::TypeSubclass(c) => Literal::Type(Box::new(c.bare_spec())),
            Native::EnumMember { class, index } => super::orm::member_literal(class, *index),
            Native::FinalName(s) => Literal::Str(s.clone()),
            Native::Temporal(t) => Literal::Str(temporal_sql(t)),
            Native::Uuid(u) => Literal::Str(u.clone()),
            _ => {
                return Err(unsupported(
                    format!("a {} value here", v.type_name()),
                    "only plain values are accepted",
                ))
            }
        },
        Value::Function(_) => {
            return Err(unsupported(
                "a function value here",
                "only plain values are accepted",
            ))
        }
    })
}

fn to_type(v: &Value) -> R<TypeSpec> {
    match v {
        Value::Native(n) => match &**n {
            Native::Type(t) => Ok((**t).clone()),
            Native::TypeClass { dialect, name } => Ok(TypeSpec {
                dialect: dialect.clone(),
                name: name.clone(),
                args: Vec::new(),
                kwargs: Vec::new(),
                custom: None,
            }),
            Native::TypeSubclass(c) => Ok(c.bare_spec()),
            _ => Err(type_error(format!(
                "expected a type, got {}",
                v.type_name()
            ))),
        },
        _ => Err(type_error(format!(
            "expected a type, got {}",
            v.type_name()
        ))),
    }
}

fn is_type(v: &Value) -> bool {
    matches!(v, Value::Native(n) if matches!(&**n, Native::Type(_) | Native::TypeClass { .. } | Native::TypeSubclass(_)))
}

fn to_server_default(v: &Value) -> R<Option<ServerDefault>> {
    Ok(match v {
        Value::None | Value::Bool(false) => None,
        Value::Str(s) => Some(ServerDefault::Str(s.to_string())),
        Value::Native(n) => match (n.as_stmt(), &**n) {
            (_, Native::Sql(node)) => Some(ServerDefault::Expr(node.to_ddl())),
            (Some(Statement::Text { sql, .. }), _) => {
                Some(ServerDefault::Expr(ops::SqlExpr::Text(sql.clone())))
            }
            (_, Native::FuncName(name)) => Some(ServerDefault::Expr(ops::SqlExpr::Func {
                name: name.clone(),
                args: Vec::new(),
            })),
            _ => {
                return Err(exc(
                    "sqlalchemy.exc.ArgumentError",
                    format!(
                        "Argument 'arg' is expected to be one of type '<class 'str'>' or \
                         '<class 'sqlalchemy.sql.elements.ClauseElement'>' or \
                         '<class 'sqlalchemy.sql.elements.TextClause'>', got '{}'",
                        v.type_name()
                    ),
                ))
            }
        },
        other => {
            return Err(exc(
                "sqlalchemy.exc.ArgumentError",
                format!(
                    "Argument 'arg' is expected to be one of type '<class 'str'>' or \
                     '<class 'sqlalchemy.sql.elements.ClauseElement'>' or \
                     '<class 'sqlalchemy.sql.elements.TextClause'>', got '{}'",
                    other.type_name()
                ),
            ))
        }
    })
}

/// A value used inside a SQL expression: SQL nodes stay, Python values become binds.
/// `to_sql` of a value the caller no longer needs: an expression nothing else holds
/// (`t.c.id == key` passed straight to `.where(...)`, on every row of a data loop) is moved
/// into the statement instead of copied node by node.
pub fn to_sql_owned(mut v: Value, type_: Option<&Rc<TypeSpec>>) -> R<SqlNode> {
    if let Value::Native(n) = &mut v {
        if let Some(Native::Sql(node)) = Rc::get_mut(n) {
            let mut node = std::mem::replace(&mut **node, SqlNode::Null);
            // As in `to_sql`: a bindparam without a type takes the one of its place.
            if let (
                SqlNode::Param {
                    type_: t @ None, ..
                },
                Some(hint),
            ) = (&mut node, type_)
            {
                *t = Some(hint.clone());
            }
            return Ok(node);
        }
    }
    to_sql(&v, type_)
}

pub fn to_sql(v: &Value, type_: Option<&Rc<TypeSpec>>) -> R<SqlNode> {
    Ok(match v {
        Value::None => SqlNode::Null,
        Value::Native(n) => match (n.as_stmt(), &**n) {
            // A bindparam without a type takes the one of what it is compared with.
            (_, Native::Sql(node)) => match (&**node, type_) {
                (
                    SqlNode::Param {
                        key,
                        value,
                        type_: None,
                    },
                    Some(t),
                ) => SqlNode::Param {
                    key: key.clone(),
                    value: value.clone(),
                    type_: Some(t.clone()),
                },
                _ => (**node).clone(),
            },
            (_, Native::Column(c)) => SqlNode::Column {
                table: None,
                name: c.name.as_str().into(),
                type_: c.type_.clone().map(Rc::new),
            },
            (_, Native::FuncName(name)) => SqlNode::Func {
                name: name.clone(),
                args: Vec::new(),
            },
            (Some(Statement::Text { sql, params }), _) => SqlNode::Text {
                sql: sql.clone(),
                params: params.clone(),
            },
            _ => bind_node(v, type_)?,
        },
        _ => bind_node(v, type_)?,
    })
}

/// The type SQLAlchemy gives a Python value compared with (or combined with) an expression
/// of type `ty` (`coerce_compared_value`): `ty`, unless the value's own type has another
/// affinity (`qty == 0.5` binds a float, not an integer); None for the value's own type.
fn compared<'t>(ty: Option<&'t Rc<TypeSpec>>, v: &Value) -> Option<&'t Rc<TypeSpec>> {
    use sql::Affinity;
    let own = match v {
        Value::Bool(_) => Affinity::Boolean,
        Value::Int(_) => Affinity::Integer,
        Value::Float(_) => Affinity::Numeric,
        Value::Str(_) => Affinity::String,
        Value::Native(n) => match &**n {
            Native::Temporal(Temporal::DateTime(_)) => Affinity::DateTime,
            Native::Temporal(Temporal::Date(_)) => Affinity::Date,
            Native::Temporal(Temporal::Time(_)) => Affinity::Time,
            Native::Temporal(Temporal::Delta(_)) => Affinity::Interval,
            _ => return ty,
        },
        _ => return ty,
    };
    ty.filter(|t| {
        let theirs = sql::type_affinity(t);
        theirs == own || theirs == Affinity::Other
    })
}

/// A bound parameter, its value as the column's type binds it. A value compared with a
/// column whose type does not process it takes its own type, as `coerce_compared_value`
/// does: a date or datetime binds as SQLAlchemy's DateTime and Date bind them.
fn bind_node(v: &Value, type_: Option<&Rc<TypeSpec>>) -> R<SqlNode> {
    let value = match type_family(type_.map(|t| &**t)) {
        TypeFamily::Plain => inferred_literal(v)?,
        _ => bind_literal(v, type_.map(|t| &**t))?,
    };
    Ok(SqlNode::Bind {
        value,
        type_: type_.cloned(),
    })
}

/// A value bound as SQLAlchemy binds it when the type comes from the value itself
/// (`_resolve_value_to_type`): a UUID as its Uuid type (32 hex digits), a timedelta as
/// Interval, a date, datetime or time as theirs; anything else as it is.
fn inferred_literal(v: &Value) -> R<Literal> {
    let family = match v {
        Value::Native(n) => match &**n {
            Native::Uuid(_) => "Uuid",
            Native::Temporal(Temporal::Delta(_)) => "Interval",
            Native::Temporal(Temporal::DateTime(_)) => "DateTime",
            Native::Temporal(Temporal::Date(_)) => "Date",
            Native::Temporal(Temporal::Time(_)) => "Time",
            _ => return to_literal(v),
        },
        _ => return to_literal(v),
    };
    let t = TypeSpec {
        dialect: None,
        name: family.into(),
        args: Vec::new(),
        kwargs: Vec::new(),
        custom: None,
    };
    bind_literal(v, Some(&t))
}

/// A value given to `values()` or as an execute parameter of an insert or update. There
/// SQLAlchemy binds None too (`v=?`, stored as the type stores None: JSON's `null`), where
/// elsewhere None is SQL NULL (`coalesce(x, NULL)`, `IS NULL`).
fn value_sql(v: Value, type_: Option<&Rc<TypeSpec>>) -> R<SqlNode> {
    if type_.is_none() && !matches!(v, Value::None) {
        // A column without a type: its NullType binds the value online and has no literal
        // for `--sql` (marked here, with the value's repr for SQLAlchemy's message; a SQL
        // expression assigned is no bound value and goes unmarked).
        return Ok(match value_sql_typed(v.clone(), None)? {
            SqlNode::Bind { value, type_: None } => SqlNode::Bind {
                value,
                type_: Some(Rc::new(TypeSpec {
                    dialect: None,
                    name: NULL_TYPE.into(),
                    args: vec![Literal::Str(repr(&v))],
                    kwargs: Vec::new(),
                    custom: None,
                })),
            },
            other => other,
        });
    }
    value_sql_typed(v, type_)
}

/// The marker type of a value assigned to a column without a type.
const NULL_TYPE: &str = "NullType";

fn value_sql_typed(v: Value, type_: Option<&Rc<TypeSpec>>) -> R<SqlNode> {
    match &v {
        Value::None => bind_node(&v, type_),
        // Assigned, it keeps the column's type (no coercion): one that does not process a
        // date or datetime leaves it to sqlite3's adapters.
        Value::Native(n) if matches!(&**n, Native::Temporal(_)) => Ok(SqlNode::Bind {
            value: bind_literal(&v, type_.map(|t| &**t))?,
            type_: type_.cloned(),
        }),
        _ => to_sql_owned(v, type_),
    }
}

fn sql_value(node: SqlNode) -> Value {
    Value::native(Native::Sql(Box::new(node)))
}

// ----- Native basics ---------------------------------------------------------------------------

impl Native {
    /// The expression of a `Sql` value, for matching on its kind.
    pub fn as_sql(&self) -> Option<&SqlNode> {
        match self {
            Native::Sql(node) => Some(node),
            _ => None,
        }
    }

    /// The statement of a `Stmt` value, for matching on its kind.
    pub fn as_stmt(&self) -> Option<&Statement> {
        match self {
            Native::Stmt(s) => Some(s),
            _ => None,
        }
    }

    pub fn type_name(&self) -> String {
        match self {
            Native::Builtin(_) | Native::Func(_) => "builtin_function_or_method".into(),
            Native::Method { .. } | Native::Bound { .. } | Native::Unbound { .. } => {
                "method".into()
            }
            Native::ExcClass(_)
            | Native::TypeClass { .. }
            | Native::TypeSubclass(_)
            | Native::TypeOf(_) => "type".into(),
            Native::Compiles { .. } | Native::ContextManagerFn(_) => "function".into(),
            Native::TypeCompiler => "SQLiteTypeCompiler".into(),
            Native::DeclarativeBase
            | Native::Model(_)
            | Native::EnumBase
            | Native::EnumClass(_) => "type".into(),
            Native::Instance(i) => i.model.name.clone(),
            Native::Session => "Session".into(),
            Native::Query(_) => "Query".into(),
            Native::EnumMember { class, .. } => class.name.clone(),
            Native::GeneratorCm { .. } => "_GeneratorContextManager".into(),
            Native::Exception(e) => e.class.rsplit('.').next().unwrap_or(&e.class).to_string(),
            Native::Module(_) => "module".into(),
            Native::Opaque(_) => "typing".into(),
            Native::MetaData(_) => "MetaData".into(),
            Native::Undefined => "Undefined".into(),
            Native::Type(t) => match &t.custom {
                Some(c) => c.class_name.clone(),
                None => t.name.clone(),
            },
            Native::Column(_) => "Column".into(),
            Native::ForeignKey(_) => "ForeignKey".into(),
            Native::Computed(_) => "Computed".into(),
            Native::Identity => "Identity".into(),
            Native::Constraint(_) => "Constraint".into(),
            Native::Index(_) => "Index".into(),
            Native::FinalName(_) => "conv".into(),
            Native::Sql(_) => "ColumnElement".into(),
            Native::FuncNamespace | Native::FuncName(_) => "_FunctionGenerator".into(),
            Native::Table(_) => "TableClause".into(),
            Native::TableColumns(_) => "ReadOnlyColumnCollection".into(),
            Native::Stmt(_) => "Executable".into(),
            Native::Batch(_) => "BatchOperations".into(),
            Native::Connection => "Connection".into(),
            Native::Engine => "Engine".into(),
            Native::Dialect => "SQLiteDialect".into(),
            Native::MigrationContext => "MigrationContext".into(),
            Native::Inspector => "Inspector".into(),
            Native::Result(r) => match r.borrow().shape {
                RowShape::Rows => "CursorResult",
                RowShape::Scalars => "ScalarResult",
                RowShape::Mappings => "MappingResult",
            }
            .into(),
            Native::Row(_) => "Row".into(),
            Native::Mapping(_) => "RowMapping".into(),
            Native::Temporal(t) => match t {
                Temporal::DateTime(_) => "datetime",
                Temporal::Date(_) => "date",
                Temporal::Time(_) => "time",
                Temporal::Delta(_) => "timedelta",
                Temporal::Zone(_) => "timezone",
            }
            .into(),
            Native::Logger(_) => "Logger".into(),
            Native::Environ => "_Environ".into(),
            Native::DictView { kind, .. } => match kind {
                ViewKind::Keys => "dict_keys",
                ViewKind::Values => "dict_values",
                ViewKind::Items => "dict_items",
            }
            .into(),
            Native::Uuid(_) => "UUID".into(),
            Native::RePattern(_) => "re.Pattern".into(),
            Native::ReMatch(_) => "re.Match".into(),
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Native::Row(r) | Native::Mapping(r) => !r.values.is_empty(),
            Native::Temporal(Temporal::Delta(d)) => *d != 0,
            Native::Undefined => false,
            Native::DictView { dict, .. } => !dict.borrow().is_empty(),
            _ => true,
        }
    }

    /// A statement, expression, table, connection or result: what SQLAlchemy's API hands out.
    fn is_sqlalchemy_object(&self) -> bool {
        matches!(
            self,
            Native::Sql(_)
                | Native::Column(_)
                | Native::Stmt(_)
                | Native::Table(_)
                | Native::Connection
                | Native::Result(_)
        )
    }

    pub fn is_sql(&self) -> bool {
        matches!(
            self,
            Native::Sql(_) | Native::Column(_) | Native::FuncName(_)
        )
    }

    pub fn repr(&self) -> String {
        match self {
            Native::FinalName(s) => builtins::str_repr(s),
            Native::Uuid(u) => format!("UUID('{u}')"),
            Native::RePattern(p) => super::re::pattern_repr(p),
            // The builtins that are classes in Python.
            Native::Builtin(
                name @ ("list" | "dict" | "set" | "tuple" | "int" | "float" | "str" | "bool"
                | "bytes" | "frozenset" | "object"),
            ) => format!("<class '{name}'>"),
            Native::ReMatch(m) => super::re::match_repr(m),
            Native::Row(r) => format!(
                "({})",
                r.values.iter().map(repr).collect::<Vec<_>>().join(", ")
                    + if r.values.len() == 1 { "," } else { "" }
            ),
            // A RowMapping shows as the dict it reads like.
            Native::Mapping(r) => format!(
                "{{{}}}",
                r.columns
                    .iter()
                    .zip(&r.values)
                    .map(|(c, v)| format!("{}: {}", builtins::str_repr(c), repr(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            // A KeyError's text is already its key's repr (`str(KeyError('k'))` is "'k'").
            Native::Exception(e) if e.args.is_some() => {
                let args = e.args.as_deref().unwrap_or_default();
                format!(
                    "{}({})",
                    e.class.rsplit('.').next().unwrap_or(&e.class),
                    args.iter()
                        .map(builtins::repr)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            // Raised bare (`raise RuntimeError`): no arguments.
            Native::Exception(e) if e.message.is_empty() => {
                format!("{}()", e.class.rsplit('.').next().unwrap_or(&e.class))
            }
            Native::Exception(e) if e.class == "KeyError" => format!("KeyError({})", e.message),
            Native::Exception(e) => format!(
                "{}({})",
                e.class.rsplit('.').next().unwrap_or(&e.class),
                builtins::str_repr(exception_arg(e))
            ),
            Native::Temporal(t) => temporal_repr(t),
            Native::DictView { dict, kind } => format!(
                "{}([{}])",
                self.type_name(),
                dict.borrow()
                    .iter()
                    .map(|(k, v)| repr(&kind.item(k, v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => format!("<{}>", other.type_name()),
        }
    }

    pub fn str(&self) -> String {
        match self {
            Native::FinalName(s) | Native::Uuid(s) => s.clone(),
            Native::Exception(e) => e.message.clone(),
            Native::Type(t) => type_str(t),
            Native::TypeClass { name, .. } => format!("<class '{name}'>"),
            Native::Temporal(t) => temporal_str(t),
            Native::Sql(n) => match n.to_ddl() {
                ops::SqlExpr::Text(t) => t,
                ops::SqlExpr::Column(c) => c,
                _ => self.repr(),
            },
            Native::Stmt(s) => sql::render(s, false).sql,
            other => other.repr(),
        }
    }

    pub fn format(&self, spec: &str) -> Option<String> {
        match self {
            Native::Temporal(Temporal::DateTime(d)) => Some(strftime(d, spec)),
            _ => None,
        }
    }

    pub fn len(&self) -> Option<usize> {
        match self {
            Native::Row(r) | Native::Mapping(r) => Some(r.values.len()),
            Native::Environ => Some(std::env::vars().count()),
            Native::DictView { dict, .. } => Some(dict.borrow().len()),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    pub fn native_eq(&self, other: &Native) -> bool {
        match (self, other) {
            (Native::Temporal(a), Native::Temporal(b)) => {
                temporal_cmp(a, b) == Some(Ordering::Equal)
            }
            (Native::FinalName(a), Native::FinalName(b)) => a == b,
            (Native::Uuid(a), Native::Uuid(b)) => a == b,
            (Native::Row(a), Native::Row(b)) => {
                a.values.len() == b.values.len()
                    && a.values.iter().zip(&b.values).all(|(x, y)| py_eq(x, y))
            }
            (Native::ExcClass(a), Native::ExcClass(b)) => a == b,
            (Native::Builtin(a), Native::Builtin(b)) => a == b,
            // `type(1) is int`: the type of a value is the builtin class of its name.
            (Native::TypeOf(a), Native::TypeOf(b)) => a == b,
            (Native::Builtin(a), Native::TypeOf(b)) | (Native::TypeOf(b), Native::Builtin(a)) => {
                a == b
            }
            (Native::Module(a), Native::Module(b)) => a == b,
            _ => false,
        }
    }

    pub fn native_cmp(&self, other: &Native) -> Option<Ordering> {
        match (self, other) {
            (Native::Temporal(a), Native::Temporal(b)) => temporal_cmp(a, b),
            _ => None,
        }
    }

    /// Whether `get_attr` on this native gives the same, immutable attribute every time, so
    /// that the interpreter may keep the answer (tables and their column collections, the
    /// `datetime` classes).
    pub fn attrs_are_constant(&self) -> bool {
        match self {
            Native::Table(_) | Native::TableColumns(_) => true,
            Native::Func(f) => f.starts_with("datetime."),
            _ => false,
        }
    }

    pub fn iterate(&self) -> R<Vec<Value>> {
        match self {
            Native::Result(r) => {
                let mut r = r.borrow_mut();
                let (cols, shape) = (r.columns.clone(), r.shape);
                Ok(take_rows(&mut r)
                    .into_iter()
                    .map(|v| shaped_row(shape, &cols, v))
                    .collect())
            }
            Native::Row(r) => Ok(r.values.clone()),
            Native::Mapping(r) => Ok(r.columns.iter().map(|c| Value::str(c.as_str())).collect()),
            Native::TableColumns(t) => Ok(t
                .columns
                .iter()
                .map(|(n, ty)| {
                    sql_value(SqlNode::Column {
                        table: Some(t.name.clone()),
                        name: n.clone(),
                        type_: ty.clone(),
                    })
                })
                .collect()),
            Native::Environ => Ok(std::env::vars().map(|(k, _)| Value::str(k)).collect()),
            Native::DictView { dict, kind } => {
                Ok(dict.borrow().iter().map(|(k, v)| kind.item(k, v)).collect())
            }
            _ => Err(type_error(format!(
                "'{}' object is not iterable",
                self.type_name()
            ))),
        }
    }

    pub fn mapping_items(&self) -> Option<Vec<(Value, Value)>> {
        match self {
            Native::Mapping(r) => Some(
                r.columns
                    .iter()
                    .zip(&r.values)
                    .map(|(c, v)| (Value::str(c.as_str()), v.clone()))
                    .collect(),
            ),
            Native::Environ => Some(
                std::env::vars()
                    .map(|(k, v)| (Value::str(k), Value::str(v)))
                    .collect(),
            ),
            _ => None,
        }
    }

    pub fn get_item(&self, k: &Value) -> R<Value> {
        match self {
            Native::ReMatch(m) => super::re::match_item(m, k),
            Native::Row(r) => match k {
                Value::Str(_) => Err(type_error(
                    "tuple indices must be integers or slices, not str",
                )),
                _ => builtins::get_item(&Value::tuple(r.values.clone()), k),
            },
            Native::Mapping(r) => {
                let key = to_str(k)?;
                r.columns
                    .iter()
                    .position(|c| *c == key)
                    .map(|i| r.values[i].clone())
                    .ok_or_else(|| key_error(k))
            }
            Native::TableColumns(t) => {
                let key = to_str(k)?;
                table_column(t, &key)
            }
            Native::Environ => {
                let key = to_str(k)?;
                std::env::var(&key)
                    .map(Value::str)
                    .map_err(|_| key_error(k))
            }
            // `Union[str, None]`, `Sequence[str]`: annotations only.
            Native::Opaque(_) => Ok(Value::native(Native::Opaque("typing".into()))),
            Native::Sql(node) => json_index((**node).clone(), k),
            Native::Column(c) => json_index(
                SqlNode::Column {
                    table: None,
                    name: c.name.as_str().into(),
                    type_: c.type_.clone().map(Rc::new),
                },
                k,
            ),
            _ => Err(type_error(format!(
                "'{}' object is not subscriptable",
                self.type_name()
            ))),
        }
    }
}

fn row_value(columns: &Rc<Vec<String>>, values: Vec<Value>) -> Value {
    Value::native(Native::Row(Rc::new(RowData {
        columns: columns.clone(),
        values,
    })))
}

/// A result's row as its shape hands it out.
fn shaped_row(shape: RowShape, columns: &Rc<Vec<String>>, values: Vec<Value>) -> Value {
    match shape {
        RowShape::Rows => row_value(columns, values),
        RowShape::Scalars => values.into_iter().next().unwrap_or(Value::None),
        RowShape::Mappings => Value::native(Native::Mapping(Rc::new(RowData {
            columns: columns.clone(),
            values,
        }))),
    }
}

fn table_column(t: &TableRef, name: &str) -> R<Value> {
    match t.columns.iter().find(|(n, _)| **n == *name) {
        Some((n, ty)) => Ok(sql_value(SqlNode::Column {
            table: Some(t.name.clone()),
            name: n.clone(),
            type_: ty.clone(),
        })),
        None => Err(exc("AttributeError", name.to_string())),
    }
}

pub fn isinstance_native(v: &Value, class: &Native) -> bool {
    match class {
        Native::Func(f) => match f.as_str() {
            "datetime.datetime" => {
                matches!(v, Value::Native(n) if matches!(&**n, Native::Temporal(Temporal::DateTime(_))))
            }
            "datetime.date" => {
                matches!(v, Value::Native(n) if matches!(&**n, Native::Temporal(Temporal::DateTime(_) | Temporal::Date(_))))
            }
            "datetime.timedelta" => {
                matches!(v, Value::Native(n) if matches!(&**n, Native::Temporal(Temporal::Delta(_))))
            }
            "datetime.time" => {
                matches!(v, Value::Native(n) if matches!(&**n, Native::Temporal(Temporal::Time(_))))
            }
            "uuid.UUID" => matches!(v, Value::Native(n) if matches!(&**n, Native::Uuid(_))),
            _ => false,
        },
        Native::TypeClass { name, .. } => {
            matches!(v, Value::Native(n) if matches!(&**n, Native::Type(t) if t.name == *name))
        }
        _ => false,
    }
}

// ----- attribute access ------------------------------------------------------------------------

fn bound(this: &Rc<Native>, name: &str) -> Value {
    Value::native(Native::Bound {
        name: method_name(name),
        this: this.clone(),
    })
}

/// The names of the native methods a data loop calls on every row, without allocating them.
pub(super) fn method_name(name: &str) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow::{Borrowed, Owned};
    Borrowed(match name {
        "where" => "where",
        "values" => "values",
        "execute" => "execute",
        "scalar" => "scalar",
        "scalars" => "scalars",
        "all" => "all",
        "first" => "first",
        "one" => "one",
        "fetchall" => "fetchall",
        "fetchone" => "fetchone",
        "mappings" => "mappings",
        "filter" => "filter",
        "filter_by" => "filter_by",
        "order_by" => "order_by",
        "limit" => "limit",
        "select_from" => "select_from",
        "timestamp" => "timestamp",
        "replace" => "replace",
        "astimezone" => "astimezone",
        "isoformat" => "isoformat",
        "strftime" => "strftime",
        "date" => "date",
        "in_" => "in_",
        "is_" => "is_",
        "label" => "label",
        "get" => "get",
        "count" => "count",
        "delete" => "delete",
        "update" => "update",
        "query" => "query",
        "add" => "add",
        _ => return Owned(name.to_string()),
    })
}

/// Methods of the natives a data loop calls on every row, as `get_attr` binds them; also
/// what [`direct_method`] calls without binding.
const SQL_METHODS: &[&str] = &[
    "in_",
    "not_in",
    "notin_",
    "is_",
    "is_not",
    "isnot",
    "like",
    "ilike",
    "not_like",
    "notlike",
    "not_ilike",
    "notilike",
    "desc",
    "asc",
    "distinct",
    "label",
    "startswith",
    "endswith",
    "contains",
    "between",
    "is_distinct_from",
    "cast",
    "collate",
    "as_string",
    "as_integer",
    "as_float",
    "as_boolean",
    "as_numeric",
    "as_json",
    "where",
    "filter",
    "select_from",
    "bindparams",
    "columns",
];
const STMT_METHODS: &[&str] = &[
    "where",
    "scalar_subquery",
    "as_scalar",
    "exists",
    "from_select",
    "filter",
    "values",
    "group_by",
    "having",
    "order_by",
    "limit",
    "offset",
    "select_from",
    "distinct",
    "bindparams",
    "returning",
    "columns",
    "filter_by",
    "execution_options",
];
const CONNECTION_METHODS: &[&str] = &[
    "execute",
    "exec_driver_sql",
    "scalar",
    "scalars",
    "begin",
    "begin_nested",
    "commit",
    "in_transaction",
];
const RESULT_METHODS: &[&str] = &[
    "fetchall",
    "fetchone",
    "first",
    "scalar",
    "scalars",
    "all",
    "mappings",
    "one",
    "one_or_none",
    "scalar_one",
    "scalar_one_or_none",
    "keys",
    "fetchmany",
    "tuples",
    "unique",
    "close",
];
/// Public attributes of SQLAlchemy's statements, expressions, connections and results that
/// ralembic leaves out (see `get_attr`).
const SQLALCHEMY_UNMODELLED: &[&str] = &[
    "subquery",
    "alias",
    "cte",
    "union",
    "union_all",
    "except_",
    "except_all",
    "intersect",
    "intersect_all",
    "returning",
    "join",
    "outerjoin",
    "join_from",
    "outerjoin_from",
    "with_only_columns",
    "add_columns",
    "correlate",
    "correlate_except",
    "lateral",
    "prefix_with",
    "suffix_with",
    "with_for_update",
    "execution_options",
    "params",
    "compile",
    "inline",
    "ordered_values",
    "return_defaults",
    "with_hint",
    "fetch",
    "filter_by",
    "selected_columns",
    "set_label_style",
    "options",
    "op",
    "bool_op",
    "regexp_match",
    "regexp_replace",
    "any_",
    "all_",
    "match",
    "concat",
    "icontains",
    "istartswith",
    "iendswith",
    "nulls_first",
    "nulls_last",
    "nullsfirst",
    "nullslast",
    "is_not_distinct_from",
    "isnot_distinct_from",
    "comparator",
    "expression",
    "exec_driver_sql",
    "begin",
    "begin_nested",
    "commit",
    "rollback",
    "close",
    "in_transaction",
    "engine",
    "partitions",
    "columns",
    "freeze",
    "yield_per",
    // A result's insert bookkeeping and cursor.
    "inserted_primary_key",
    "inserted_primary_key_rows",
    "lastrowid",
    "is_insert",
    "last_inserted_params",
    "last_updated_params",
    "returned_defaults",
    "postfetch_cols",
    "prefetch_cols",
    "supports_sane_rowcount",
    "supports_sane_multi_rowcount",
    "cursor",
    "context",
];

const DATETIME_METHODS: &[&str] = &[
    "replace",
    "tzname",
    "astimezone",
    "timestamp",
    "isoformat",
    "strftime",
    "date",
    "time",
    "utcoffset",
    "weekday",
    "isoweekday",
];

/// `this.attr` when `get_attr` would bind it as a method of one of the natives above.
pub fn direct_method(this: &Native, attr: &str) -> Option<&'static str> {
    let methods = match this {
        Native::Sql(_) => SQL_METHODS,
        Native::Stmt(_) => STMT_METHODS,
        Native::Connection => CONNECTION_METHODS,
        Native::Result(_) => RESULT_METHODS,
        Native::Temporal(Temporal::DateTime(_)) => DATETIME_METHODS,
        _ => return None,
    };
    methods.iter().copied().find(|m| *m == attr)
}

/// Calls the method `this.name(...)` with a receiver the caller gives up (a method
/// [`direct_method`] found, or a bound method [`call_owned`] unwrapped): a statement nothing
/// else holds is changed in place instead of copied.
pub fn call_method_owned(
    interp: &mut Interp<'_>,
    this: Rc<Native>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    if Rc::strong_count(&this) == 1 && matches!(&*this, Native::Stmt(_)) {
        return match Rc::try_unwrap(this) {
            Ok(Native::Stmt(s)) => stmt_apply(*s, name, args, kwargs),
            _ => Err(type_error("statement method lost its statement")),
        };
    }
    call_bound(interp, &this, name, args, kwargs)
}

pub fn get_attr(interp: &mut Interp<'_>, n: &Rc<Native>, _v: &Value, attr: &str) -> R<Value> {
    if let Some(v) = super::orm::get_attr(n, attr) {
        return v;
    }
    let no_attr = || {
        // SQLAlchemy has it and ralembic does not model it: outside the model, never an
        // AttributeError a body's `except` could take for SQLAlchemy's answer.
        if n.is_sqlalchemy_object() && SQLALCHEMY_UNMODELLED.contains(&attr) {
            return unsupported(
                format!("`.{attr}` of a SQLAlchemy {}", n.type_name()),
                "not in ralembic's model of SQLAlchemy; write this revision's SQL in an \
                 override file (<revision>.sqlite.sql next to it)",
            );
        }
        exc(
            "AttributeError",
            format!("'{}' object has no attribute '{attr}'", n.type_name()),
        )
    };
    match &**n {
        Native::Module(m) => interp.module_attr(m, attr, || module_attr(n, attr)),
        // What a body does with a MetaData besides building tables on it is not modelled.
        Native::Opaque(_) | Native::MetaData(_) => {
            Ok(Value::native(Native::Opaque(attr.to_string())))
        }
        // `type(e).__name__`, `SomeError.__name__`: the class's own name.
        Native::TypeOf(name) | Native::ExcClass(name)
            if attr == "__name__" || attr == "__qualname__" =>
        {
            Ok(Value::str(name.rsplit('.').next().unwrap_or(name)))
        }
        Native::FuncNamespace => Ok(Value::native(Native::FuncName(attr.to_string()))),
        Native::Table(t) => match attr {
            "c" | "columns" => Ok(Value::native(Native::TableColumns(t.clone()))),
            "name" => Ok(Value::str(&*t.name)),
            "insert" | "update" | "delete" | "select" | "join" | "outerjoin" => Ok(bound(n, attr)),
            _ => Err(no_attr()),
        },
        Native::TableColumns(t) => table_column(t, attr),
        Native::Sql(node) => match attr {
            _ if SQL_METHODS.contains(&attr) => Ok(bound(n, attr)),
            "name" => match &**node {
                SqlNode::Column { name, .. } => Ok(Value::str(&**name)),
                _ => Err(no_attr()),
            },
            "text" => match &**node {
                SqlNode::Text { sql, .. } => Ok(Value::str(sql.as_str())),
                _ => Err(no_attr()),
            },
            _ => Err(no_attr()),
        },
        Native::Stmt(_) => match attr {
            _ if STMT_METHODS.contains(&attr) => Ok(bound(n, attr)),
            "text" => match n.as_stmt() {
                Some(Statement::Text { sql, .. }) => Ok(Value::str(sql.as_str())),
                _ => Err(no_attr()),
            },
            _ => Err(no_attr()),
        },
        Native::Batch(_) if BATCH_METHODS.contains(&attr) => Ok(bound(n, attr)),
        Native::Batch(b) if attr == "impl" || attr == "table_name" => {
            Ok(Value::str(b.borrow().table.as_str()))
        }
        Native::Connection => match attr {
            "dialect" => Ok(Value::native(Native::Dialect)),
            _ if CONNECTION_METHODS.contains(&attr) => Ok(bound(n, attr)),
            "engine" => Ok(Value::native(Native::Engine)),
            _ => Err(no_attr()),
        },
        Native::Engine => match attr {
            "name" => Ok(Value::str(super::DIALECT)),
            "url" => Ok(Value::str(interp.host.url())),
            "dialect" => Ok(Value::native(Native::Dialect)),
            _ => Err(no_attr()),
        },
        Native::Dialect => match attr {
            "name" => Ok(Value::str(super::DIALECT)),
            "driver" => Ok(Value::str("pysqlite")),
            "server_version_info" => {
                let v = rusqlite::version_number();
                Ok(Value::tuple(vec![
                    Value::Int(i64::from(v / 1_000_000)),
                    Value::Int(i64::from((v / 1000) % 1000)),
                    Value::Int(i64::from(v % 1000)),
                ]))
            }
            _ => Err(no_attr()),
        },
        Native::MigrationContext => match attr {
            "dialect" => Ok(Value::native(Native::Dialect)),
            // Offline, Alembic's bind is a MockConnection that writes what it executes to
            // the --sql output.
            "bind" | "connection" => Ok(Value::native(Native::Connection)),
            "as_sql" => Ok(Value::Bool(interp.host.is_offline())),
            // `get_x_argument` and `is_offline_mode` belong to `alembic.context` (the
            // EnvironmentContext), not to the MigrationContext `op.get_context()` returns.
            "execute" | "get_current_revision" | "autocommit_block" => Ok(bound(n, attr)),
            // Alembic's MigrationContext has these; a `try` must not catch their absence.
            "impl"
            | "opts"
            | "script"
            | "config"
            | "environment_context"
            | "version_table"
            | "version_table_schema"
            | "transaction_per_migration"
            | "output_buffer"
            | "literal_binds"
            | "purge"
            | "on_version_apply_callbacks"
            | "get_current_heads"
            | "stamp"
            | "run_migrations"
            | "begin_transaction"
            | "configure" => Err(unsupported(
                format!("`MigrationContext.{attr}`"),
                "not in ralembic's model of op.get_context()",
            )),
            _ => Err(no_attr()),
        },
        Native::Inspector => Ok(bound(n, attr)),
        Native::Result(r) => match attr {
            "rowcount" => Ok(Value::Int(r.borrow().rowcount)),
            "returns_rows" => Ok(Value::Bool(!r.borrow().columns.is_empty())),
            _ if RESULT_METHODS.contains(&attr) => Ok(bound(n, attr)),
            _ => Err(no_attr()),
        },
        Native::Row(r) => match attr {
            "_mapping" => Ok(Value::native(Native::Mapping(r.clone()))),
            "_asdict" | "_tuple" => Ok(bound(n, attr)),
            "_fields" => Ok(Value::tuple(
                r.columns.iter().map(|c| Value::str(c.as_str())).collect(),
            )),
            _ => match r.columns.iter().position(|c| c == attr) {
                Some(i) => Ok(r.values[i].clone()),
                None => Err(no_attr()),
            },
        },
        Native::Mapping(_) => match attr {
            "get" | "keys" | "values" | "items" => Ok(bound(n, attr)),
            _ => Err(no_attr()),
        },
        Native::Temporal(t) => temporal_attr(n, t, attr).ok_or_else(|| {
            if unmodelled_temporal_attr(attr) {
                unsupported(
                    format!("`{}.{attr}`", n.type_name()),
                    "not in ralembic's model of datetime",
                )
            } else {
                no_attr()
            }
        }),
        Native::Func(f) if f == "datetime.datetime" || f == "datetime.date" => match attr {
            "now" | "utcnow" | "fromisoformat" | "fromtimestamp" | "utcfromtimestamp"
            | "strptime" | "today" | "combine" => {
                Ok(Value::native(Native::Func(format!("{f}.{attr}"))))
            }
            "min" | "max" => Err(unsupported(format!("`datetime.{attr}`"), "not modelled")),
            _ => Err(no_attr()),
        },
        Native::Func(f) if f == "datetime.time" => match attr {
            "fromisoformat" => Ok(Value::native(Native::Func(format!("{f}.{attr}")))),
            "min" | "max" => Err(unsupported(
                format!("`datetime.time.{attr}`"),
                "not modelled",
            )),
            _ => Err(no_attr()),
        },
        Native::Func(f) if f == "datetime.timezone" && attr == "utc" => {
            Ok(Value::native(Native::Temporal(Temporal::Zone(0))))
        }
        Native::Logger(_) => match attr {
            "info" | "warning" | "warn" | "debug" | "error" | "critical" | "exception"
            | "setLevel" => Ok(bound(n, attr)),
            _ => Err(no_attr()),
        },
        Native::Environ => match attr {
            "get" | "keys" | "items" | "values" => Ok(bound(n, attr)),
            _ => Err(no_attr()),
        },
        // A dict view's own attributes: `isdisjoint` and `mapping` (not modelled).
        Native::DictView { kind, .. } => match attr {
            "isdisjoint" if *kind != ViewKind::Values => Ok(bound(n, attr)),
            "mapping" => Err(unsupported("`.mapping` of a dict view", "not modelled")),
            _ => Err(no_attr()),
        },
        Native::RePattern(p) => match super::re::pattern_attr(p, attr) {
            Some(v) => Ok(v),
            None if super::re::PATTERN_METHODS.contains(&attr) => Ok(bound(n, attr)),
            None => Err(no_attr()),
        },
        Native::ReMatch(m) => match super::re::match_attr(m, attr) {
            Some(v) => Ok(v),
            None if super::re::MATCH_METHODS.contains(&attr) => Ok(bound(n, attr)),
            None => Err(no_attr()),
        },
        Native::Uuid(u) => match attr {
            "hex" => Ok(Value::str(u.replace('-', ""))),
            _ => Err(no_attr()),
        },
        Native::Exception(e) => match attr {
            "args" => Ok(Value::tuple(match &e.args {
                Some(args) => args.clone(),
                None if e.message.is_empty() => Vec::new(),
                None => vec![Value::str(exception_arg(e))],
            })),
            "__class__" => Ok(Value::native(Native::TypeOf(n.type_name()))),
            // A caught database error: the driver's exception, the statement and SQLAlchemy's
            // code, from its text.
            "orig"
            | "statement"
            | "params"
            | "code"
            | "sqlite_errorname"
            | "sqlite_errorcode"
            | "detail"
            | "connection_invalidated"
            | "ismulti" => match db_error_parts(e) {
                Some(parts) => match attr {
                    "orig" => Ok(Value::native(Native::Exception(Box::new(PyExc {
                        class: parts.driver_class.to_string(),
                        message: parts.message.to_string(),
                        pos: e.pos.clone(),
                        args: None,
                    })))),
                    "statement" => Ok(parts.statement.map_or(Value::None, Value::str)),
                    "params" if !parts.has_params => Ok(Value::tuple(Vec::new())),
                    "code" => Ok(parts.code.map_or(Value::None, Value::str)),
                    "detail" => Ok(Value::list(Vec::new())),
                    "connection_invalidated" => Ok(Value::Bool(false)),
                    _ => Err(unsupported(
                        format!("`.{attr}` of a caught database error"),
                        "not modelled: the parameters' values and SQLite's result codes",
                    )),
                },
                None if e.class.starts_with("sqlite3.") => Err(unsupported(
                    format!("`.{attr}` of a driver exception"),
                    "not modelled",
                )),
                None => Err(no_attr()),
            },
            _ => Err(no_attr()),
        },
        Native::Column(c) => match attr {
            "name" => Ok(Value::str(c.name.as_str())),
            "type" => Ok(match &c.type_ {
                Some(t) => Value::native(Native::Type(Box::new(t.clone()))),
                None => Value::None,
            }),
            "nullable" => Ok(Value::Bool(c.nullable.unwrap_or(!c.primary_key))),
            _ => Err(no_attr()),
        },
        Native::Type(t) => match attr {
            "length" => Ok(match t.args.first() {
                Some(Literal::Int(i)) => Value::Int(*i),
                _ => Value::None,
            }),
            "python_type" => Err(unsupported("`python_type`", "not modelled")),
            "with_variant" => Ok(bound(n, attr)),
            _ => Err(no_attr()),
        },
        Native::TypeCompiler => Err(unsupported(
            format!("`compiler.{attr}`"),
            "a @compiles function is called for the DDL text it returns; the compiler it \
             receives is not modelled",
        )),
        _ => Err(no_attr()),
    }
}

// ----- calls -----------------------------------------------------------------------------------

/// `call` for a callee the caller no longer needs: a statement method called on a statement
/// nothing else holds (`sa.update(t).where(...)`) then changes that statement in place
/// instead of copying it, as a data loop builds one per row.
pub fn call_owned(
    interp: &mut Interp<'_>,
    n: Rc<Native>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    if Rc::strong_count(&n) == 1 && matches!(&*n, Native::Bound { .. }) {
        return match Rc::try_unwrap(n) {
            Ok(Native::Bound { name, this }) => {
                call_method_owned(interp, this, &name, args, kwargs)
            }
            _ => Err(type_error("bound method lost its receiver")),
        };
    }
    call(interp, &n, args, kwargs)
}

pub fn call(
    interp: &mut Interp<'_>,
    n: &Rc<Native>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    match &**n {
        Native::Builtin(name) => builtins::call_builtin(interp, name, args, kwargs),
        Native::Method { name, this } => builtins::call_method(interp, name, this, args, kwargs),
        Native::Unbound { name } => {
            let mut args = args;
            if args.is_empty() {
                return Err(type_error(format!(
                    "unbound method {name}() needs an argument"
                )));
            }
            let this = args.remove(0);
            builtins::call_method(interp, name, &this, args, kwargs)
        }
        Native::ExcClass(class) => Ok(Value::native(Native::Exception(Box::new(PyExc {
            class: class.clone(),
            // Python's str() of an exception: its one argument's str (a KeyError's repr, as
            // the interpreter's own KeyErrors), the args tuple's repr for several.
            message: match (class.as_str(), args.as_slice()) {
                (_, []) => String::new(),
                ("KeyError", [key]) => repr(key),
                (_, [arg]) => str_of(arg),
                _ => repr(&Value::tuple(args.clone())),
            },
            pos: None,
            args: Some(args),
        })))),
        Native::TypeClass { dialect, name } => make_type(dialect, name, args, kwargs),
        Native::TypeSubclass(class) => {
            let (args, kwargs) = literal_args(&args, &kwargs)?;
            super::custom::instantiate(interp, class, args, kwargs)
        }
        Native::Compiles { class, dialects } => {
            let [func] = <[Value; 1]>::try_from(args)
                .map_err(|_| type_error("a decorator takes the one function it decorates"))?;
            super::custom::register(interp, class, dialects, func)
        }
        Native::Model(_) | Native::EnumClass(_) => {
            super::orm::call(n, args, kwargs).unwrap_or_else(|| Err(type_error("not callable")))
        }
        Native::ContextManagerFn(func) => Ok(Value::native(Native::GeneratorCm {
            func: func.clone(),
            args,
            kwargs,
        })),
        Native::Opaque(_) => Ok(Value::None),
        Native::FuncName(name) => {
            let mut items = Vec::new();
            for a in &args {
                items.push(to_sql(a, None)?);
            }
            Ok(sql_value(SqlNode::Func {
                name: name.clone(),
                args: items,
            }))
        }
        Native::Func(f) => call_function(interp, f, args, kwargs),
        Native::Bound { name, this } => call_bound(interp, this, name, args, kwargs),
        _ => Err(type_error(format!(
            "'{}' object is not callable",
            n.type_name()
        ))),
    }
}

/// A type's constructor arguments, as the DDL layer keeps them.
type LiteralArgs = (Vec<Literal>, Vec<(String, Literal)>);

fn literal_args(args: &[Value], kwargs: &[(String, Value)]) -> R<LiteralArgs> {
    let mut lit_args = Vec::new();
    for a in args {
        lit_args.push(to_literal(a)?);
    }
    let mut lit_kwargs = Vec::new();
    for (k, v) in kwargs {
        lit_kwargs.push((k.clone(), to_literal(v)?));
    }
    Ok((lit_args, lit_kwargs))
}

fn make_type(
    dialect: &Option<String>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    // `sa.Enum(PyEnum)`: the column stores the members' names.
    let args = match (name, args.as_slice()) {
        ("Enum" | "ENUM", [Value::Native(n)]) => match &**n {
            Native::EnumClass(c) => c
                .members
                .iter()
                .map(|(m, _)| Value::str(m.as_str()))
                .collect(),
            _ => args,
        },
        _ => args,
    };
    let (lit_args, lit_kwargs) = literal_args(&args, &kwargs)?;
    Ok(Value::native(Native::Type(Box::new(TypeSpec {
        dialect: dialect.clone(),
        name: name.to_string(),
        args: lit_args,
        kwargs: lit_kwargs,
        custom: None,
    }))))
}

fn type_str(t: &TypeSpec) -> String {
    let base = match t.name.as_str() {
        "Integer" => "INTEGER",
        "BigInteger" => "BIGINT",
        "SmallInteger" => "SMALLINT",
        "String" | "Unicode" => "VARCHAR",
        "Text" | "UnicodeText" => "TEXT",
        "Boolean" => "BOOLEAN",
        "DateTime" => "DATETIME",
        "Date" => "DATE",
        "Time" => "TIME",
        "Float" => "FLOAT",
        "Numeric" => "NUMERIC",
        "LargeBinary" => "BLOB",
        other => other,
    };
    match t.args.first() {
        Some(Literal::Int(n)) => format!("{base}({n})"),
        _ => base.to_string(),
    }
}

fn call_function(
    interp: &mut Interp<'_>,
    f: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    if let Some(name) = f.strip_prefix("op.") {
        return op_call(interp, None, name, args, kwargs);
    }
    if let Some(name) = f.strip_prefix("sa.") {
        return sa_call(interp, name, args, kwargs);
    }
    if let Some(name) = f.strip_prefix("context.") {
        return context_call(interp, name, args, kwargs);
    }
    if f.starts_with("datetime.") {
        return datetime_call(f, args, kwargs);
    }
    match f {
        "compiler.compiles" => super::custom::compiles(args, kwargs),
        "orm.declarative_base" => Ok(Value::native(Native::DeclarativeBase)),
        // The session joins the migration's connection and transaction.
        "orm.Session" => Ok(Value::native(Native::Session)),
        "orm.sessionmaker" => Ok(Value::native(Native::Func("orm.Session".into()))),
        "contextlib.contextmanager" => match <[Value; 1]>::try_from(args) {
            Ok([func]) if kwargs.is_empty() => Ok(Value::native(Native::ContextManagerFn(func))),
            _ => Err(type_error(
                "contextmanager() takes the one function it decorates",
            )),
        },
        _ if f.starts_with("re.") => super::re::module_call(interp, &f[3..], args, kwargs),
        _ if f.starts_with("math.") => super::stdlib::math_call(&f[5..], args, kwargs),
        _ if f.starts_with("time.") => super::stdlib::time_call(&f[5..], args, kwargs),
        _ if f.starts_with("textwrap.") => {
            super::stdlib::textwrap_call(interp, &f[9..], args, kwargs)
        }
        "dict.fromkeys" => {
            let b = bind("fromkeys", &["iterable", "value"], args, kwargs)?;
            let value = b.get(1).cloned().unwrap_or(Value::None);
            let pairs = builtins::iterate(b.req(0, "fromkeys", "iterable")?)?
                .into_iter()
                .map(|k| Value::tuple(vec![k, value.clone()]))
                .collect();
            builtins::call_builtin(interp, "dict", vec![Value::list(pairs)], Vec::new())
        }
        // An OrderedDict is a dict: every dict keeps insertion order.
        "collections.OrderedDict" => builtins::call_builtin(interp, "dict", args, kwargs),
        "collections.defaultdict" => {
            let mut args = args.into_iter();
            let factory = args.next().filter(|f| !matches!(f, Value::None));
            let made = builtins::call_builtin(interp, "dict", args.collect(), kwargs)?;
            if let Value::Dict(d) = &made {
                d.borrow_mut().default_factory = factory;
            }
            Ok(made)
        }
        "json.dumps" => {
            let b = bind(
                "dumps",
                &[
                    "obj",
                    "skipkeys",
                    "ensure_ascii",
                    "check_circular",
                    "allow_nan",
                    "cls",
                    "indent",
                    "separators",
                    "default",
                    "sort_keys",
                ],
                args,
                kwargs,
            )?;
            if b.given(5).is_some() || b.given(8).is_some() {
                return Err(unsupported(
                    "`json.dumps(cls=...)` / `json.dumps(default=...)`",
                    "only values JSON encodes by itself are modelled",
                ));
            }
            let indent = match b.given(6) {
                None => None,
                Some(Value::Int(n)) => Some(" ".repeat(usize::try_from(*n).unwrap_or(0))),
                Some(v) => Some(to_str(v)?),
            };
            let (item_sep, key_sep) = match b.given(7) {
                Some(sep) => match builtins::iterate(sep)?.as_slice() {
                    [i, k] => (to_str(i)?, to_str(k)?),
                    _ => {
                        return Err(type_error(
                            "separators takes (item_separator, key_separator)",
                        ))
                    }
                },
                // With an indent, items end their lines: no space after the comma.
                None if indent.is_some() => (",".to_string(), ": ".to_string()),
                None => (", ".to_string(), ": ".to_string()),
            };
            let opts = JsonOpts {
                indent,
                item_sep,
                key_sep,
                sort_keys: b.flag(9),
                ensure_ascii: b.get(2).map_or(true, Value::truthy),
            };
            let mut out = String::new();
            json_write(&mut out, b.get(0).unwrap_or(&Value::None), &opts, 0)?;
            Ok(Value::str(out))
        }
        "json.loads" => {
            let s = to_str(args.first().unwrap_or(&Value::None))?;
            let parsed: serde_json::Value = serde_json::from_str(&s)
                .map_err(|e| exc("json.decoder.JSONDecodeError", e.to_string()))?;
            Ok(from_json(&parsed))
        }
        "uuid.uuid4" => Ok(Value::native(Native::Uuid(uuid4()))),
        // The `comma` Alembic passes to revision templates.
        "alembic.util.format_as_comma" => {
            let v = args.first().cloned().unwrap_or(Value::None);
            match &v {
                Value::None => Ok(Value::str("")),
                Value::Str(_) => Ok(v),
                other => {
                    let items = builtins::iterate(other).map_err(|_| {
                        exc(
                            "ValueError",
                            format!("Don't know how to comma-format {}", builtins::repr(other)),
                        )
                    })?;
                    let parts: Result<Vec<String>, _> = items
                        .iter()
                        .map(|i| {
                            i.as_str().map(str::to_string).ok_or_else(|| {
                                type_error(format!(
                                    "sequence item 0: expected str instance, {} found",
                                    i.type_name()
                                ))
                            })
                        })
                        .collect();
                    Ok(Value::str(parts?.join(", ")))
                }
            }
        }
        "uuid.UUID" => {
            let s = to_str(args.first().unwrap_or(&Value::None))?;
            let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
            if hex.len() != 32 {
                return Err(exc("ValueError", "badly formed hexadecimal UUID string"));
            }
            let h = hex.to_lowercase();
            Ok(Value::native(Native::Uuid(format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            ))))
        }
        "logging.getLogger" => Ok(Value::native(Native::Logger(
            args.first().map(str_of).unwrap_or_else(|| "root".into()),
        ))),
        "logging.info" | "logging.warning" | "logging.debug" | "logging.error"
        | "logging.critical" => {
            let level = log_level(f.trim_start_matches("logging."));
            let msg = log_message(&args)?;
            interp.settle()?;
            interp.host.log(level, "root", &msg);
            Ok(Value::None)
        }
        "os.getenv" => {
            let k = to_str(args.first().unwrap_or(&Value::None))?;
            Ok(std::env::var(&k)
                .map(Value::str)
                .unwrap_or_else(|_| args.get(1).cloned().unwrap_or(Value::None)))
        }
        _ => Err(unsupported(format!("`{f}`"), "not modelled")),
    }
}

fn log_level(name: &str) -> u32 {
    match name {
        "debug" => 10,
        "info" => 20,
        "warning" | "warn" => 30,
        "error" | "exception" => 40,
        _ => 50,
    }
}

fn log_message(args: &[Value]) -> R<String> {
    let fmt = args.first().map(str_of).unwrap_or_default();
    if args.len() > 1 {
        builtins::percent_format(&fmt, &Value::tuple(args[1..].to_vec()))
    } else {
        Ok(fmt)
    }
}

/// A random `str(uuid.uuid4())`.
pub(crate) fn uuid4() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `json.dumps`'s formatting options.
struct JsonOpts {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
    ensure_ascii: bool,
}

/// `json.dumps(v, indent=..., separators=..., sort_keys=..., ensure_ascii=...)`, as Python
/// writes it.
fn json_write(out: &mut String, v: &Value, o: &JsonOpts, level: usize) -> R<()> {
    let newline = |out: &mut String, level: usize| {
        if let Some(ind) = &o.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(ind);
            }
        }
    };
    match v {
        Value::List(_) | Value::Tuple(_) => {
            let items = builtins::iterate(v)?;
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline(out, level + 1);
                json_write(out, item, o, level + 1)?;
            }
            newline(out, level);
            out.push(']');
        }
        Value::Dict(d) => {
            let mut pairs: Vec<(Value, Value)> = d
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if pairs.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if o.sort_keys {
                // Python sorts the keys themselves (`1` before `10` before `2` only as
                // strings), and keys of types that do not compare are a TypeError.
                let mut unordered = None;
                pairs.sort_by(|a, b| {
                    builtins::py_cmp(&a.0, &b.0).unwrap_or_else(|| {
                        unordered.get_or_insert((a.0.type_name(), b.0.type_name()));
                        std::cmp::Ordering::Equal
                    })
                });
                if let Some((a, b)) = unordered {
                    return Err(type_error(format!(
                        "'<' not supported between instances of '{b}' and '{a}'"
                    )));
                }
            }
            let mut items: Vec<(String, Value)> = Vec::with_capacity(pairs.len());
            for (k, val) in pairs {
                items.push((json_key(&k)?, val));
            }
            out.push('{');
            for (i, (k, val)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline(out, level + 1);
                out.push_str(&json_text(k, o.ensure_ascii));
                out.push_str(&o.key_sep);
                json_write(out, val, o, level + 1)?;
            }
            newline(out, level);
            out.push('}');
        }
        Value::Str(s) => out.push_str(&json_text(s, o.ensure_ascii)),
        other => out.push_str(&json_dumps(other)?),
    }
    Ok(())
}

/// A dict key as JSON writes it, before quoting.
fn json_key(k: &Value) -> R<String> {
    match k {
        Value::Str(s) => Ok(s.to_string()),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::None => json_dumps(k),
        _ => Err(type_error(format!(
            "keys must be str, int, float, bool or None, not {}",
            k.type_name()
        ))),
    }
}

/// A JSON string; `ensure_ascii=False` keeps non-ASCII characters as they are.
fn json_text(s: &str, ensure_ascii: bool) -> String {
    if ensure_ascii {
        return json_str(s);
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_ascii() {
            let quoted = json_str(&c.to_string());
            out.push_str(&quoted[1..quoted.len() - 1]);
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

pub fn json_dumps(v: &Value) -> R<String> {
    Ok(match v {
        Value::None => "null".into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            if f.is_nan() {
                "NaN".into()
            } else if f.is_infinite() {
                if *f > 0.0 { "Infinity" } else { "-Infinity" }.into()
            } else {
                builtins::float_repr(*f)
            }
        }
        Value::Str(s) => json_str(s),
        Value::List(_) | Value::Tuple(_) => format!(
            "[{}]",
            builtins::iterate(v)?
                .iter()
                .map(json_dumps)
                .collect::<R<Vec<_>>>()?
                .join(", ")
        ),
        Value::Dict(d) => {
            let mut parts = Vec::new();
            for (k, val) in d.borrow().iter() {
                let key = match k {
                    Value::Str(s) => json_str(s),
                    Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::None => {
                        json_str(&json_dumps(k)?)
                    }
                    _ => {
                        return Err(type_error(format!(
                            "keys must be str, int, float, bool or None, not {}",
                            k.type_name()
                        )))
                    }
                };
                parts.push(format!("{key}: {}", json_dumps(val)?));
            }
            format!("{{{}}}", parts.join(", "))
        }
        other => {
            return Err(type_error(format!(
                "Object of type {} is not JSON serializable",
                other.type_name()
            )))
        }
    })
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A statement about to be rendered with literal values: a JSON column's None is NULL,
/// any other JSON value SQLAlchemy cannot render (its CompileError), nor any value assigned
/// to a column without a type.
fn offline_literals(s: &Statement) -> R<Statement> {
    let mut s = s.clone();
    let mut failed = None;
    s.walk_mut(&mut |n| {
        if let SqlNode::Bind { value, type_ } = n {
            if let Some(t) = type_.as_deref().filter(|t| t.name == NULL_TYPE) {
                let shown = match t.args.first() {
                    Some(Literal::Str(shown)) => shown.clone(),
                    _ => sql::literal_sql(value),
                };
                failed.get_or_insert_with(|| {
                    exc(
                        "sqlalchemy.exc.CompileError",
                        format!(
                            "No literal value renderer is available for literal value \"{shown}\" with datatype NULL"
                        ),
                    )
                });
                return;
            }
            if type_family(type_.as_deref()) != TypeFamily::Json {
                return;
            }
            match value {
                // How the JSON type bound Python's None (none_as_null=False).
                Literal::Str(text) if text == "null" => *value = Literal::None,
                Literal::None => {}
                Literal::Str(text) => {
                    let original = serde_json::from_str(text)
                        .map(|j| from_json(&j))
                        .unwrap_or_else(|_| Value::str(text.as_str()));
                    failed.get_or_insert_with(|| json_literal_error(&original));
                }
                other => {
                    failed.get_or_insert_with(|| {
                        json_literal_error(&Value::str(sql::literal_sql(other)))
                    });
                }
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(s),
    }
}

/// SQLAlchemy's CompileError for a JSON value rendered as a literal (`--sql`).
pub(super) fn json_literal_error(v: &Value) -> Unwind {
    exc(
        "sqlalchemy.exc.CompileError",
        format!(
            "No literal value renderer is available for literal value \"{}\" with datatype JSON",
            repr(v)
        ),
    )
}

fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::None,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::str(s.as_str()),
        serde_json::Value::Array(a) => Value::list(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::dict(
            o.iter()
                .map(|(k, v)| (Value::str(k.as_str()), from_json(v)))
                .collect(),
        ),
    }
}

fn context_call(
    interp: &mut Interp<'_>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    match name {
        "get_x_argument" => x_argument(interp, args, kwargs),
        "is_offline_mode" => Ok(Value::Bool(interp.host.is_offline())),
        "get_context" => Ok(Value::native(Native::MigrationContext)),
        "get_bind" => Ok(Value::native(Native::Connection)),
        _ => Err(unsupported(
            format!("`context.{name}()` in a revision body"),
            "it belongs in env.py",
        )),
    }
}

fn x_argument(interp: &mut Interp<'_>, args: Vec<Value>, kwargs: Vec<(String, Value)>) -> R<Value> {
    let b = bind("get_x_argument", &["as_dictionary"], args, kwargs)?;
    let xs = interp.host.x_arguments();
    if b.flag(0) {
        let mut items = Vec::new();
        for x in xs {
            let (k, v) = match x.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (x.clone(), String::new()),
            };
            items.push((Value::str(k), Value::str(v)));
        }
        Ok(Value::dict(items))
    } else {
        Ok(Value::list(xs.into_iter().map(Value::str).collect()))
    }
}

// ----- sqlalchemy ----------------------------------------------------------------------------

fn sa_call(
    interp: &mut Interp<'_>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    match name {
        "Column" => Ok(Value::native(Native::Column(Box::new(make_column(
            interp, args, kwargs,
        )?)))),
        "ForeignKey" => {
            let b = bind(
                "ForeignKey",
                &[
                    "column",
                    "_constraint",
                    "use_alter",
                    "name",
                    "onupdate",
                    "ondelete",
                    "deferrable",
                    "initially",
                    "link_to_name",
                    "match",
                    "info",
                    "comment",
                    "**",
                ],
                args,
                kwargs,
            )?;
            Ok(Value::native(Native::ForeignKey(Box::new(ForeignKey {
                target: column_spec(b.req(0, "ForeignKey", "column")?)?,
                name: to_name(b.get(3))?,
                onupdate: b.opt_str(4)?,
                ondelete: b.opt_str(5)?,
                deferrable: b.opt_flag(6),
                initially: b.opt_str(7)?,
                match_: b.opt_str(9)?,
                use_alter: b.flag(2),
            }))))
        }
        // Its arguments (start, increment, always, ...) mean nothing on SQLite.
        "Identity" => Ok(Value::native(Native::Identity)),
        "bindparam" => {
            let b = bind(
                "bindparam",
                &[
                    "key",
                    "value",
                    "type_",
                    "unique",
                    "required",
                    "quote",
                    "callable_",
                    "expanding",
                    "isoutparam",
                    "literal_execute",
                ],
                args,
                kwargs,
            )?;
            if b.flag(7) {
                return Err(unsupported(
                    "`sa.bindparam(..., expanding=True)`",
                    "pass the list to `in_()` itself",
                ));
            }
            let type_ = match b.given(2) {
                Some(t) => Some(Rc::new(to_type(t)?)),
                None => None,
            };
            // Without a type SQLAlchemy takes the value's (a datetime as its DateTime binds it).
            let value = match (b.get(1), type_.as_deref()) {
                (Some(v), Some(t)) => Some(bind_literal(v, Some(t))?),
                (Some(v), None) => Some(inferred_literal(v)?),
                (None, _) => None,
            };
            Ok(sql_value(SqlNode::Param {
                key: to_str(b.req(0, "bindparam", "key")?)?,
                value,
                type_,
            }))
        }
        "Computed" => {
            let b = bind("Computed", &["sqltext", "persisted"], args, kwargs)?;
            let persisted = match b.get(1) {
                None | Some(Value::None) => None,
                Some(v) => Some(v.truthy()),
            };
            Ok(Value::native(Native::Computed(Box::new(
                ops::ComputedSpec {
                    sqltext: ddl_expr(b.req(0, "Computed", "sqltext")?)?,
                    persisted,
                },
            ))))
        }
        "PrimaryKeyConstraint" | "UniqueConstraint" => {
            let b = bind(
                name,
                &["*columns", "name", "deferrable", "initially", "info", "**"],
                args,
                kwargs,
            )?;
            let columns = b
                .rest
                .iter()
                .map(|c| to_str_list(c).map(|mut v| v.remove(0)))
                .collect::<R<Vec<_>>>()?;
            let cname = to_name(b.get(1))?;
            let kw = b.extra_literals()?;
            Ok(Value::native(Native::Constraint(
                if name == "UniqueConstraint" {
                    Box::new(Constraint::Unique {
                        name: cname,
                        columns,
                        kwargs: kw,
                    })
                } else {
                    Box::new(Constraint::PrimaryKey {
                        name: cname,
                        columns,
                        kwargs: kw,
                    })
                },
            )))
        }
        "ForeignKeyConstraint" => {
            let b = bind(
                name,
                &[
                    "columns",
                    "refcolumns",
                    "name",
                    "onupdate",
                    "ondelete",
                    "deferrable",
                    "initially",
                    "use_alter",
                    "link_to_name",
                    "match",
                    "table",
                    "info",
                    "comment",
                    "**",
                ],
                args,
                kwargs,
            )?;
            let refs = builtins::iterate(b.req(1, name, "refcolumns")?)?
                .iter()
                .map(column_spec)
                .collect::<R<Vec<_>>>()?;
            Ok(Value::native(Native::Constraint(Box::new(
                Constraint::ForeignKey {
                    name: to_name(b.get(2))?,
                    columns: to_str_list(b.req(0, name, "columns")?)?,
                    refcolumns: refs,
                    onupdate: b.opt_str(3)?,
                    ondelete: b.opt_str(4)?,
                    deferrable: b.opt_flag(5),
                    initially: b.opt_str(6)?,
                    match_: b.opt_str(9)?,
                    use_alter: b.flag(7),
                },
            ))))
        }
        "CheckConstraint" => {
            let b = bind(
                name,
                &[
                    "sqltext",
                    "name",
                    "deferrable",
                    "initially",
                    "table",
                    "info",
                    "_create_rule",
                    "_autoattach",
                    "_type_bound",
                    "**",
                ],
                args,
                kwargs,
            )?;
            Ok(Value::native(Native::Constraint(Box::new(
                Constraint::Check {
                    name: to_name(b.get(1))?,
                    sqltext: ddl_expr(b.req(0, name, "sqltext")?)?,
                },
            ))))
        }
        "Index" => {
            let b = bind(
                name,
                &["name", "*expressions", "unique", "quote", "info", "**"],
                args,
                kwargs,
            )?;
            let mut keys = Vec::new();
            for e in &b.rest {
                keys.push(index_key(e)?);
            }
            let sqlite_where = match b.extra.iter().find(|(k, _)| k == "sqlite_where") {
                Some((_, v)) => Some(ddl_expr(v)?),
                None => None,
            };
            Ok(Value::native(Native::Index(Box::new(Index {
                name: to_name(b.get(0))?,
                table: String::new(),
                schema: None,
                keys,
                unique: b.flag(2),
                if_not_exists: false,
                sqlite_where,
                kwargs: b.extra_literals_except("sqlite_where")?,
            }))))
        }
        "text" => {
            let sql = to_str(args.first().unwrap_or(&Value::None))?;
            Ok(Value::native(Native::Stmt(Box::new(Statement::Text {
                sql,
                params: Vec::new(),
            }))))
        }
        "literal_column" => Ok(sql_value(SqlNode::Inline(to_str(
            args.first().unwrap_or(&Value::None),
        )?))),
        "table" => {
            let b = bind("table", &["name", "*columns", "schema"], args, kwargs)?;
            let tname = to_str(b.req(0, "table", "name")?)?;
            let mut columns = Vec::new();
            for c in &b.rest {
                match c {
                    Value::Native(n) => match (n.as_sql(), &**n) {
                        (Some(SqlNode::Column { name, type_, .. }), _) => {
                            columns.push((name.clone(), type_.clone()))
                        }
                        (_, Native::Column(col)) => {
                            columns.push((col.name.as_str().into(), col.type_.clone().map(Rc::new)))
                        }
                        _ => return Err(type_error("table() takes column() objects")),
                    },
                    _ => return Err(type_error("table() takes column() objects")),
                }
            }
            Ok(Value::native(Native::Table(Rc::new(TableRef {
                name: tname.into(),
                schema: b.opt_str(2)?,
                columns: Rc::new(columns),
                joins: Vec::new(),
                definition: None,
            }))))
        }
        "column" => {
            let b = bind(
                "column",
                &["text", "type_", "is_literal", "_selectable"],
                args,
                kwargs,
            )?;
            let cname = to_str(b.req(0, "column", "text")?)?;
            let type_ = match b.get(1) {
                Some(Value::None) | None => None,
                Some(t) => Some(Rc::new(to_type(t)?)),
            };
            Ok(sql_value(SqlNode::Column {
                table: None,
                name: cname.into(),
                type_,
            }))
        }
        "select" => {
            let mut columns = Vec::new();
            let mut from: Vec<TableRef> = Vec::new();
            let items = if args.len() == 1 && matches!(args[0], Value::List(_)) {
                builtins::iterate(&args[0])?
            } else {
                args
            };
            for a in &items {
                match table_of(a) {
                    Some(t) => {
                        for (c, ty) in t.columns.iter() {
                            columns.push(SqlNode::Column {
                                table: Some(t.name.clone()),
                                name: c.clone(),
                                type_: ty.clone(),
                            });
                        }
                        add_from(&mut from, t.clone());
                    }
                    None => {
                        let node = to_sql(a, None)?;
                        collect_from(&node, &mut from);
                        columns.push(node);
                    }
                }
            }
            Ok(Value::native(Native::Stmt(Box::new(select_of(
                columns, from,
            )))))
        }
        "insert" | "update" | "delete" => {
            let table = args
                .first()
                .and_then(table_of)
                .cloned()
                .ok_or_else(|| type_error(format!("{name}() takes a table")))?;
            Ok(Value::native(Native::Stmt(match name {
                "insert" => Box::new(Statement::Insert {
                    table,
                    values: Vec::new(),
                    rows: Vec::new(),
                    select: None,
                }),
                "update" => Box::new(Statement::Update {
                    table,
                    values: Vec::new(),
                    wheres: Vec::new(),
                }),
                _ => Box::new(Statement::Delete {
                    table,
                    wheres: Vec::new(),
                }),
            })))
        }
        "and_" | "or_" => {
            let mut items = Vec::new();
            for a in &args {
                items.push(to_sql(a, None)?);
            }
            Ok(sql_value(SqlNode::conjunction(
                if name == "and_" { "AND" } else { "OR" },
                items,
            )))
        }
        "not_" => sql_not(args.first().unwrap_or(&Value::None)),
        "distinct" => Ok(sql_value(distinct(to_sql(
            args.first().unwrap_or(&Value::None),
            None,
        )?))),
        "literal" => {
            let type_ = match args
                .get(1)
                .or(kwargs.iter().find(|(k, _)| k == "type_").map(|(_, v)| v))
            {
                Some(t) => Some(Rc::new(to_type(t)?)),
                None => None,
            };
            let v = args.first().unwrap_or(&Value::None);
            Ok(sql_value(SqlNode::Bind {
                value: match type_.as_deref() {
                    Some(t) => bind_literal(v, Some(t))?,
                    None => inferred_literal(v)?,
                },
                type_,
            }))
        }
        "null" => Ok(sql_value(SqlNode::Null)),
        "true" => Ok(sql_value(SqlNode::True)),
        "false" => Ok(sql_value(SqlNode::False)),
        "desc" | "asc" => {
            let inner = to_sql(args.first().unwrap_or(&Value::None), None)?;
            Ok(sql_value(ordering(inner, name)))
        }
        "case" => {
            let value = match kwargs.iter().find(|(k, _)| k == "value") {
                Some((_, v)) => Some(Box::new(to_sql(v, None)?)),
                None => None,
            };
            // `case({when: then, ...}, value=x)` or `case((when, then), ...)`.
            let pairs: Vec<(Value, Value)> = match args.as_slice() {
                [Value::Dict(d)] => d.borrow().iter().cloned().collect(),
                _ => {
                    let mut pairs = Vec::new();
                    for w in &args {
                        match builtins::iterate(w)?.as_slice() {
                            [when, then] => pairs.push((when.clone(), then.clone())),
                            _ => {
                                return Err(exc(
                                    "sqlalchemy.exc.ArgumentError",
                                    "case() takes (condition, value) pairs",
                                ))
                            }
                        }
                    }
                    pairs
                }
            };
            let mut whens = Vec::new();
            for (when, then) in &pairs {
                whens.push((to_sql(when, None)?, to_sql(then, None)?));
            }
            let else_ = match kwargs.iter().find(|(k, _)| k == "else_") {
                Some((_, v)) => Some(Box::new(to_sql(v, None)?)),
                None => None,
            };
            Ok(sql_value(SqlNode::Case {
                value,
                whens,
                else_,
            }))
        }
        "cast" => {
            // A Python value cast is bound as the cast's type (`cast(0.5, Integer)` renders
            // `CAST(0 AS INTEGER)` inline).
            let t = Rc::new(to_type(args.get(1).unwrap_or(&Value::None))?);
            let inner = to_sql(args.first().unwrap_or(&Value::None), Some(&t))?;
            Ok(sql_value(cast(inner, Rc::unwrap_or_clone(t))))
        }
        // `sa.exists()` (then `.where(...)`), `sa.exists(select)`, `sa.exists(column)`.
        "exists" => {
            let select = match args.first() {
                Some(Value::Native(n)) if matches!(n.as_stmt(), Some(Statement::Select { .. })) => {
                    n.as_stmt().cloned()
                }
                _ => None,
            };
            let select = match select {
                Some(s) => s,
                None => {
                    let columns = if args.is_empty() {
                        vec![SqlNode::Inline("*".into())]
                    } else {
                        let mut cols = Vec::new();
                        for a in &args {
                            cols.push(to_sql(a, None)?);
                        }
                        cols
                    };
                    let mut from = Vec::new();
                    for c in &columns {
                        collect_from(c, &mut from);
                    }
                    select_of(columns, from)
                }
            };
            Ok(sql_value(SqlNode::Exists(Box::new(select))))
        }
        "inspect" => match args.first() {
            Some(Value::Native(n))
                if matches!(&**n, Native::Connection) && interp.host.is_offline() =>
            {
                Err(exc(
                    "sqlalchemy.exc.NoInspectionAvailable",
                    "No inspection system is available for object of type \
                     <class 'sqlalchemy.engine.mock.MockConnection'>",
                ))
            }
            Some(Value::Native(n)) if matches!(&**n, Native::Connection) => {
                Ok(Value::native(Native::Inspector))
            }
            _ => Err(unsupported(
                "`sa.inspect()` of something other than op.get_bind()",
                "only the migration connection can be inspected",
            )),
        },
        "MetaData" => {
            let b = bind(
                name,
                &["schema", "quote_schema", "naming_convention", "info"],
                args,
                kwargs,
            )?;
            let mut convention = Vec::new();
            if let Some(c) = b.given(2) {
                for (k, v) in builtins::mapping_items(c)? {
                    convention.push((to_str(&k)?, to_str(&v)?));
                }
            }
            Ok(Value::native(Native::MetaData(Rc::new(convention))))
        }
        "Table" => table_object(interp, args, kwargs),
        "join" | "outerjoin" => {
            let b = bind(
                name,
                &["left", "right", "onclause", "isouter", "full"],
                args,
                kwargs,
            )?;
            let left = b.req(0, name, "left")?.clone();
            let right = b.req(1, name, "right")?.clone();
            let outer = name == "outerjoin" || b.flag(3);
            if b.flag(4) {
                return Err(unsupported("a FULL OUTER JOIN", "SQLite has none"));
            }
            join(&left, &right, b.get(2), outer)
        }
        other => Err(unsupported(format!("`sa.{other}`"), "not modelled")),
    }
}

/// Adds a FROM element unless it is already there, alone or inside a join; a join takes the
/// place of the tables it joins, as SQLAlchemy's FROM list does.
fn add_from(from: &mut Vec<TableRef>, t: TableRef) {
    let covers = |f: &TableRef, name: &str, schema: &Option<String>| {
        (*f.name == *name && f.schema == *schema)
            || f.joins
                .iter()
                .any(|j| *j.table.name == *name && j.table.schema == *schema)
    };
    if t.joins.is_empty() {
        if !from.iter().any(|f| covers(f, &t.name, &t.schema)) {
            from.push(t);
        }
    } else if !from.contains(&t) {
        from.retain(|f| !(f.joins.is_empty() && covers(&t, &f.name, &f.schema)));
        from.push(t);
    }
}

/// `sa.join(a, b, on)` / `a.join(b, on)`: `a` with `b` joined to it. Without an ON clause
/// SQLAlchemy derives one from foreign keys, which a reflected or `sa.table()` table here
/// does not carry.
fn join(left: &Value, right: &Value, on: Option<&Value>, outer: bool) -> R<Value> {
    let mut left = joinable(left)?;
    join_to(&mut left, right, on, outer)?;
    Ok(Value::native(Native::Table(Rc::new(left))))
}

/// The table a value stands for in a statement: a table, or an ORM model's table.
fn table_of(v: &Value) -> Option<&TableRef> {
    match v {
        Value::Native(n) => match &**n {
            Native::Table(t) => Some(t),
            Native::Model(m) => Some(&m.table),
            _ => None,
        },
        _ => None,
    }
}

/// A table (or an ORM model's table) as a FROM element to join.
fn joinable(v: &Value) -> R<TableRef> {
    table_of(v)
        .cloned()
        .ok_or_else(|| type_error(format!("cannot join {}", v.type_name())))
}

/// Joins `right` to `left` (Core's `join`/`outerjoin` and ORM queries alike).
pub(super) fn join_to(
    left: &mut TableRef,
    right: &Value,
    on: Option<&Value>,
    outer: bool,
) -> R<()> {
    let right = joinable(right)?;
    if !right.joins.is_empty() {
        return Err(unsupported(
            "joining to a join",
            "nest joins left to right: a.join(b, ...).join(c, ...)",
        ));
    }
    let on = match on {
        Some(v) => to_sql(v, None)?,
        None => {
            return Err(unsupported(
                "a join without an ON clause",
                "pass the join condition; foreign keys and relationships are not followed",
            ))
        }
    };
    left.joins.push(sql::Join {
        table: right,
        on,
        outer,
    });
    Ok(())
}

/// `sa.Table(name, metadata, *columns, autoload_with=conn)`: used in revision bodies as a
/// table to read and write rows of, so it becomes what `sa.table()` gives, its columns
/// reflected from the database when it is autoloaded. One that is not autoloaded also
/// keeps its whole definition (columns, constraints, indexes, dialect keywords) for
/// `batch_alter_table(copy_from=...)`.
fn table_object(
    interp: &mut Interp<'_>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    let b = bind(
        "Table",
        &[
            "name",
            "metadata",
            "*items",
            "schema",
            "autoload_with",
            "**",
        ],
        args,
        kwargs,
    )?;
    let name = to_str(b.req(0, "Table", "name")?)?;
    if b.opt_str(3)?.is_some() {
        return Err(unsupported(
            "a table in another schema",
            "SQLite attached schemas are not modelled",
        ));
    }
    let mut columns = Vec::new();
    let mut definition = ops::TableDefinition {
        create: CreateTable {
            name: name.clone(),
            ..CreateTable::default()
        },
        indexes: Vec::new(),
        naming_convention: match b.get(1) {
            Some(Value::Native(n)) => match &**n {
                Native::MetaData(c) => (**c).clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
    };
    for item in &b.rest {
        match item {
            Value::Native(n) => match &**n {
                Native::Column(c) => {
                    columns.push((
                        Rc::<str>::from(c.name.as_str()),
                        c.type_.clone().map(Rc::new),
                    ));
                    definition.create.columns.push((**c).clone());
                }
                Native::Constraint(c) => definition.create.constraints.push((**c).clone()),
                Native::Index(i) => definition.indexes.push((**i).clone()),
                _ => return Err(schema_item_expected(item)),
            },
            _ => return Err(schema_item_expected(item)),
        }
    }
    let autoload = b.get(4).is_some_and(|v| !matches!(v, Value::None));
    if !autoload {
        definition.create.kwargs = b.extra_literals()?;
    }
    if autoload {
        let reflected = inspector_call(
            interp,
            "get_columns",
            vec![Value::str(name.as_str())],
            Vec::new(),
        )?;
        for col in builtins::iterate(&reflected)? {
            let Value::Dict(d) = &col else { continue };
            let d = d.borrow();
            let cname = d.get(&Value::str("name")).map(builtins::str_of);
            let ty = match d.get(&Value::str("type")) {
                Some(t) => Some(Rc::new(to_type(t)?)),
                None => None,
            };
            if let Some(cname) = cname {
                if !columns.iter().any(|(c, _)| **c == *cname) {
                    columns.push((cname.into(), ty));
                }
            }
        }
    }
    Ok(Value::native(Native::Table(Rc::new(TableRef {
        name: name.into(),
        schema: None,
        columns: Rc::new(columns),
        joins: Vec::new(),
        definition: (!autoload).then(|| Rc::new(definition)),
    }))))
}

/// SQLAlchemy's answer to an item of `sa.Table(...)`/`op.create_table(...)` that is no
/// column, constraint or index.
fn schema_item_expected(item: &Value) -> Unwind {
    exc(
        "sqlalchemy.exc.ArgumentError",
        format!(
            "'SchemaItem' object, such as a 'Column' or a 'Constraint' expected, got {}",
            repr(item)
        ),
    )
}

fn collect_from(node: &SqlNode, from: &mut Vec<TableRef>) {
    // A subquery selects from its own tables: it is not entered.
    node.visit(&mut |n| {
        if let SqlNode::Column { table: Some(t), .. } = n {
            add_from(
                from,
                TableRef {
                    name: t.clone(),
                    schema: None,
                    columns: Rc::default(),
                    joins: Vec::new(),
                    definition: None,
                },
            )
        }
    });
}

/// A SELECT of `columns` from `from`, nothing else yet.
fn select_of(columns: Vec<SqlNode>, from: Vec<TableRef>) -> Statement {
    Statement::Select {
        columns,
        from,
        wheres: Vec::new(),
        group_by: Vec::new(),
        having: Vec::new(),
        order_by: Vec::new(),
        limit: None,
        offset: None,
        distinct: false,
    }
}

/// `expr[key]` on a JSON expression, as SQLAlchemy's JSON comparator builds it: a list or
/// tuple key is a path, anything else one step. The path is bound already formatted, as
/// SQLite's JSON index types bind it (and as `--sql` shows it).
fn json_index(target: SqlNode, key: &Value) -> R<Value> {
    let json = target.type_().cloned();
    if type_family(json.as_deref()) != TypeFamily::Json {
        // Only JSON is indexable on SQLite (ARRAY is PostgreSQL's).
        return Err(exc(
            "NotImplementedError",
            "Operator 'getitem' is not supported on this expression",
        ));
    }
    let step = |v: &Value| match v {
        Value::Int(_) | Value::Bool(_) => format!("[{}]", builtins::str_of(v)),
        other => format!(".\"{}\"", builtins::str_of(other)),
    };
    let path = match key {
        Value::List(_) | Value::Tuple(_) => {
            let mut path = String::from("$");
            for v in builtins::iterate(key)? {
                path.push_str(&step(&v));
            }
            path
        }
        one => format!("${}", step(one)),
    };
    Ok(sql_value(SqlNode::JsonGet {
        target: Box::new(target),
        path: Box::new(SqlNode::Bind {
            value: Literal::Str(path),
            type_: None,
        }),
        type_: json,
    }))
}

/// `expr[key].as_string()` and the like: the unquoted value cast to the type, as
/// SQLAlchemy's SQLite compiler renders a JSON index whose type is not JSON.
fn json_cast(node: &SqlNode, method: &str, args: &[Value]) -> R<SqlNode> {
    let SqlNode::JsonGet {
        target,
        path,
        type_: Some(_),
    } = node
    else {
        return Err(exc(
            "sqlalchemy.exc.InvalidRequestError",
            format!(
                "The JSON cast operator JSON.{method}() only works with a JSON index \
                 expression e.g. col['q'].{method}()"
            ),
        ));
    };
    let type_named = |name: &str, args: Vec<Literal>| TypeSpec {
        dialect: None,
        name: name.to_string(),
        args,
        kwargs: Vec::new(),
        custom: None,
    };
    let to = match method {
        "as_json" => return Ok(node.clone()),
        "as_string" => type_named("String", Vec::new()),
        "as_integer" => type_named("Integer", Vec::new()),
        "as_float" => type_named("Float", Vec::new()),
        "as_boolean" => type_named("Boolean", Vec::new()),
        _ => {
            let (precision, scale) = match args {
                [p, s, ..] => (int_arg(Some(p), 0)?, int_arg(Some(s), 0)?),
                _ => {
                    return Err(type_error(
                        "as_numeric() missing required positional arguments: 'precision' and \
                         'scale'",
                    ))
                }
            };
            type_named(
                "Numeric",
                vec![Literal::Int(precision), Literal::Int(scale)],
            )
        }
    };
    Ok(cast(
        SqlNode::JsonGet {
            target: target.clone(),
            path: path.clone(),
            type_: None,
        },
        to,
    ))
}

/// `CAST(x AS type)`, typed as the type it casts to. The type is named as in DDL
/// (`NUMERIC(10, 2)`, `VARCHAR(1)` for an Enum of one-letter values), as SQLAlchemy's type
/// compiler names it in both.
fn cast(inner: SqlNode, t: TypeSpec) -> SqlNode {
    let type_name = crate::alembic_compat::ddl::sqlite::render_type(&t)
        .map_or_else(|_| type_str(&t), |(name, _)| name);
    SqlNode::Cast {
        inner: Box::new(inner),
        type_name,
        type_: Some(Rc::new(t)),
    }
}

/// `sa.distinct(col)` / `col.distinct()`: `DISTINCT t.name`, as in `count(DISTINCT t.name)`.
fn distinct(node: SqlNode) -> SqlNode {
    SqlNode::Unary {
        op: "DISTINCT".into(),
        operand: Box::new(node),
    }
}

/// `col.desc()` / `sa.asc(col)`: the expression rendered as everywhere else (qualified,
/// values bound), then the keyword.
fn ordering(node: SqlNode, name: &str) -> SqlNode {
    SqlNode::Unary {
        op: if name == "desc" { " DESC" } else { " ASC" }.into(),
        operand: Box::new(node),
    }
}

/// A column's `default=`: a SQL expression is kept as one; a constant or a callable is kept
/// by the interpreter, for the INSERTs that fill it in.
fn python_default(interp: &mut Interp<'_>, v: Value) -> R<Option<ops::PythonDefault>> {
    if matches!(v, Value::None) {
        return Ok(None);
    }
    if let Value::Native(n) = &v {
        if n.as_stmt().is_some() || n.as_sql().is_some() {
            return Ok(Some(ops::PythonDefault::Sql(ddl_expr(&v)?)));
        }
    }
    interp.python_defaults.push(v);
    Ok(Some(ops::PythonDefault::Value(
        interp.python_defaults.len() - 1,
    )))
}

/// SQLAlchemy's CompileError for a value `--sql` mode cannot render as a literal of its
/// column's type: any value of a column without a type (NullType has no literal), a JSON
/// value, an Interval's timedelta (its literal is its DateTime's), a date or datetime for a
/// type that does not take one.
fn offline_unrenderable(v: &Value, ty: Option<&TypeSpec>) -> Option<Unwind> {
    let compile_error = |m: String| Some(exc("sqlalchemy.exc.CompileError", m));
    let Some(t) = ty else {
        return compile_error(format!(
            "No literal value renderer is available for literal value \"{}\" with datatype NULL",
            repr(v)
        ));
    };
    let family = type_family(ty);
    let datatype = match family {
        TypeFamily::Json => return Some(json_literal_error(v)),
        TypeFamily::Interval => "DATETIME".to_string(),
        TypeFamily::Plain => match v {
            Value::Native(n)
                if matches!(
                    &**n,
                    Native::Temporal(Temporal::DateTime(_) | Temporal::Date(_))
                ) =>
            {
                crate::alembic_compat::ddl::sqlite::render_type(t)
                    .map(|(sql, _)| sql)
                    .unwrap_or_else(|_| t.name.to_uppercase())
            }
            _ => return None,
        },
        _ => return None,
    };
    compile_error(crate::alembic_compat::ddl::sqlite::unrenderable_literal(
        &repr(v),
        &datatype,
    ))
}

/// The Python-side defaults of a Table's columns (none for a `sa.table()`).
fn python_defaults_of(t: &TableRef) -> Vec<(String, ops::PythonDefault)> {
    t.definition
        .iter()
        .flat_map(|d| &d.create.columns)
        .filter_map(|c| Some((c.name.clone(), c.python_default.clone()?)))
        .collect()
}

/// Adds to `row` the columns an INSERT of `keys` leaves to their Python-side defaults: a
/// constant bound by the column's type, a callable's answer for this row. In `--sql` mode
/// SQLAlchemy renders such a bound default as NULL (a SQL default is the table's, rendered
/// by the engine).
fn fill_python_defaults(
    interp: &mut Interp<'_>,
    table: &TableClause,
    defaults: &[(String, ops::PythonDefault)],
    keys: &[String],
    offline: bool,
    row: &mut Vec<(String, Literal)>,
) -> R<()> {
    for (c, d) in defaults {
        let ops::PythonDefault::Value(i) = d else {
            continue;
        };
        if keys.contains(c) {
            continue;
        }
        if offline {
            row.push((c.clone(), Literal::None));
            continue;
        }
        let ty = table
            .columns
            .iter()
            .find(|(n, _)| n == c)
            .and_then(|(_, t)| t.as_ref());
        row.push((c.clone(), python_default_value(interp, *i, ty)?));
    }
    Ok(())
}

/// A kept Python-side default's value for one use, bound by the column's type: the
/// constant, or what the callable answers now.
fn python_default_value(interp: &mut Interp<'_>, i: usize, ty: Option<&TypeSpec>) -> R<Literal> {
    let Some(v) = interp.python_defaults.get(i).cloned() else {
        return Ok(Literal::None);
    };
    let v = if is_default_callable(&v) {
        if let Value::Function(f) = &v {
            let required = f.defaults.iter().filter(|d| d.is_none()).count();
            if required > 0 {
                return Err(unsupported(
                    "a column default function that takes the execution context",
                    "the context SQLAlchemy passes it is not modelled",
                ));
            }
        }
        interp.call(&v, Vec::new(), Vec::new())?
    } else {
        v
    };
    bind_literal(&v, ty)
}

/// SQLAlchemy's StatementError for row `group` of an executemany lacking one of `keys`, the
/// first row's (its statement's): raised before anything runs, naming the first missing
/// column in the statement's order.
fn missing_parameter(
    table: &TableClause,
    first: &Vec<(String, Literal)>,
    keys: &[String],
    row: &[(String, Literal)],
    group: usize,
    given: &[Value],
) -> Unwind {
    let sql = crate::alembic_compat::ddl::bulk_insert_sql(table, std::slice::from_ref(first), true)
        .into_iter()
        .next()
        .map(|(sql, _)| sql)
        .unwrap_or_default();
    let missing = crate::alembic_compat::ddl::sqlite::insert_columns(table, first)
        .into_iter()
        .find(|c| keys.contains(c) && !row.iter().any(|(k, _)| k == c))
        .unwrap_or_default();
    exc(
        "sqlalchemy.exc.StatementError",
        format!(
            "(sqlalchemy.exc.InvalidRequestError) A value is required for bind parameter {}, \
             in parameter group {group}\n[SQL: {sql}]\n[parameters: {}]\n(Background on this \
             error at: https://sqlalche.me/e/21/cd3x)",
            builtins::str_repr(&missing),
            parameter_sets_repr(given)
        ),
    )
}

/// How SQLAlchemy's StatementError shows an executemany's dicts (`_repr_param_list`): a
/// list of each dict's repr cut to 300 characters, and past 100 dicts the first and last 50.
fn parameter_sets_repr(sets: &[Value]) -> String {
    let shown = |sets: &[Value]| -> String {
        let items: Vec<String> = sets
            .iter()
            .map(|set| super::runner::truncated(repr(set)))
            .collect();
        items.join(", ")
    };
    if sets.len() <= 100 {
        return format!("[{}]", shown(sets));
    }
    format!(
        "[{} ... {} parameters truncated ... {}]",
        shown(&sets[..50]),
        sets.len() - 100,
        shown(&sets[sets.len() - 50..])
    )
}

/// Whether SQLAlchemy would call a `default=` rather than bind it.
fn is_default_callable(v: &Value) -> bool {
    match v {
        Value::Function(_) => true,
        Value::Native(n) => matches!(
            &**n,
            Native::Builtin(_)
                | Native::Func(_)
                | Native::Bound { .. }
                | Native::Method { .. }
                | Native::Unbound { .. }
                | Native::TypeOf(_)
        ),
        _ => false,
    }
}

/// A DDL expression argument: a string is raw SQL text (as CheckConstraint takes it).
fn ddl_expr(v: &Value) -> R<ops::SqlExpr> {
    Ok(match v {
        Value::Str(s) => ops::SqlExpr::Text(s.to_string()),
        Value::Native(n) => match n.as_stmt() {
            Some(Statement::Text { sql, .. }) => ops::SqlExpr::Text(sql.clone()),
            _ => to_sql(v, None)?.to_ddl(),
        },
        other => to_sql(other, None)?.to_ddl(),
    })
}

fn index_key(v: &Value) -> R<IndexKey> {
    Ok(match v {
        Value::Str(s) => IndexKey::Column(s.to_string()),
        Value::Native(n) => match (n.as_sql(), n.as_stmt(), &**n) {
            (Some(SqlNode::Column { name, .. }), _, _) => IndexKey::Column(name.to_string()),
            (_, _, Native::Column(c)) => IndexKey::Column(c.name.clone()),
            (_, Some(Statement::Text { sql, .. }), _) => {
                IndexKey::Expr(ops::SqlExpr::Text(sql.clone()))
            }
            _ => IndexKey::Expr(ddl_expr(v)?),
        },
        other => {
            return Err(exc(
                "sqlalchemy.exc.ArgumentError",
                format!(
                    "SQL expression for WHERE/HAVING role expected, got {}.",
                    repr(other)
                ),
            ))
        }
    })
}

fn column_spec(v: &Value) -> R<String> {
    match v {
        Value::Native(n) => match n.as_sql() {
            Some(SqlNode::Column {
                table: Some(t),
                name,
                ..
            }) => Ok(format!("{t}.{name}")),
            _ => to_str(v),
        },
        _ => to_str(v),
    }
}

fn make_column(
    interp: &mut Interp<'_>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Column> {
    let mut col = Column::default();
    let mut named = false;
    let mut identity = false;
    let mut server_onupdate = false;
    for a in args {
        match &a {
            Value::Str(s) if !named => {
                col.name = s.to_string();
                named = true;
            }
            v if is_type(v) => col.type_ = Some(to_type(v)?),
            Value::Native(n) => match &**n {
                Native::ForeignKey(fk) => col.foreign_keys.push((**fk).clone()),
                Native::Constraint(c) => col.constraints.push((**c).clone()),
                Native::Computed(g) => col.computed = Some((**g).clone()),
                Native::Identity => identity = true,
                Native::FinalName(s) if !named => {
                    col.name = s.clone();
                    named = true;
                }
                _ => {
                    return Err(unsupported(
                        format!("a {} argument to sa.Column", a.type_name()),
                        "not modelled",
                    ))
                }
            },
            other => {
                return Err(exc(
                    "sqlalchemy.exc.ArgumentError",
                    format!(
                    "'SchemaItem' object, such as a 'Column' or a 'Constraint' expected, got {}",
                    repr(other)
                ),
                ))
            }
        }
    }
    for (k, v) in kwargs {
        match k.as_str() {
            "name" => col.name = to_str(&v)?,
            "type_" => col.type_ = Some(to_type(&v)?),
            "nullable" => {
                col.nullable = match v {
                    Value::None => None,
                    other => Some(other.truthy()),
                }
            }
            "primary_key" => col.primary_key = v.truthy(),
            "autoincrement" => {
                col.autoincrement = match &v {
                    Value::Str(s) if &**s == "auto" => Autoincrement::Auto,
                    Value::Str(s) if &**s == "ignore_fk" => Autoincrement::IgnoreFk,
                    other if other.truthy() => Autoincrement::True,
                    _ => Autoincrement::False,
                }
            }
            "unique" => {
                col.unique = match v {
                    Value::None => None,
                    other => Some(other.truthy()),
                }
            }
            "index" => {
                col.index = match v {
                    Value::None => None,
                    other => Some(other.truthy()),
                }
            }
            "server_default" => col.server_default = to_server_default(&v)?,
            "comment" => {
                col.comment = match v {
                    Value::None => None,
                    other => Some(to_str(&other)?),
                }
            }
            "default" | "insert_default" => col.python_default = python_default(interp, v)?,
            // Python-side only: never rendered.
            "onupdate" | "info" | "doc" | "key" | "quote" | "system" | "sort_order" => {}
            // Not rendered in DDL; only Identity minds it.
            "server_onupdate" => server_onupdate |= !matches!(v, Value::None),
            other if other.contains('_') && !other.starts_with('_') => match to_literal(&v) {
                Ok(l) => col.kwargs.push((other.to_string(), l)),
                Err(_) if is_other_dialect_option(other) => {}
                Err(e) => return Err(e),
            },
            other => {
                return Err(exc(
                    "sqlalchemy.exc.ArgumentError",
                    format!("Unknown argument '{other}' to Column"),
                ))
            }
        }
    }
    if identity {
        // Identity._set_parent's rules.
        if col.server_default.is_some() || server_onupdate {
            return Err(exc(
                "sqlalchemy.exc.ArgumentError",
                "A column with an Identity object cannot specify a server_default or a \
                 server_onupdate argument",
            ));
        }
        if col.autoincrement == Autoincrement::False {
            return Err(exc(
                "sqlalchemy.exc.ArgumentError",
                "A column with an Identity object cannot specify autoincrement=False",
            ));
        }
        if col.nullable.is_none() {
            col.nullable = Some(false);
        }
    }
    Ok(col)
}

// ----- alembic op --------------------------------------------------------------------------------

/// An exception's one argument (`e.args[0]`, what its repr shows). SQLAlchemy's database
/// error keeps only the first line there; its `__str__` adds the statement and the link.
fn exception_arg(e: &PyExc) -> &str {
    match db_error_parts(e) {
        Some(parts) => &e.message[..parts.driver_class.len() + 3 + parts.message.len()],
        None => &e.message,
    }
}

/// The parts of a database error SQLAlchemy raised (see `dbapi_parts`). Only its own
/// classes carry them: a body's `raise RuntimeError(str(e))` keeps the whole text.
fn db_error_parts(e: &PyExc) -> Option<DbapiParts<'_>> {
    if e.class.starts_with("sqlalchemy.exc.") {
        dbapi_parts(&e.message)
    } else {
        None
    }
}

fn apply(interp: &mut Interp<'_>, op: Op) -> R<Value> {
    let pos = interp.pos(interp.here);
    let uncatchable = interp.may_defer();
    // A queued operation's failure is raised where the same failure in line would be
    // located: its statement.
    if uncatchable {
        let at = interp.pos(interp.statement);
        if interp.host.defer(&op, &at).map_err(detached)? {
            return Ok(Value::None);
        }
    }
    interp.settle()?;
    interp
        .host
        .apply(&op, &pos, uncatchable)
        .map_err(|e| exc(&e.class, e.message))?;
    Ok(Value::None)
}

/// An optional type argument (`existing_type=`): None when absent or None.
fn opt_type(v: Option<&Value>) -> R<Option<TypeSpec>> {
    match v {
        None | Some(Value::None) => Ok(None),
        Some(v) => Ok(Some(to_type(v)?)),
    }
}

fn op_call(
    interp: &mut Interp<'_>,
    batch: Option<&Rc<RefCell<Batch>>>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    // In a batch block, the table (and schema) come from the block: the methods take one
    // argument fewer.
    let table_of_batch = batch.map(|b| b.borrow().table.clone());
    let schema_of_batch = batch.and_then(|b| b.borrow().schema.clone());
    let mut args = args;
    let needs_table = matches!(
        name,
        "add_column"
            | "drop_column"
            | "alter_column"
            | "create_unique_constraint"
            | "create_check_constraint"
            | "create_primary_key"
            | "drop_constraint"
    );
    if let (Some(t), true) = (&table_of_batch, needs_table) {
        let at = match name {
            "add_column" | "drop_column" | "alter_column" => 0,
            _ => 1,
        };
        if args.len() >= at {
            args.insert(at, Value::str(t.as_str()));
        } else {
            return Err(type_error(format!("{name}() missing required arguments")));
        }
    }
    let op = match name {
        "f" => {
            return Ok(Value::native(Native::FinalName(to_str(
                args.first().unwrap_or(&Value::None),
            )?)))
        }
        "inline_literal" => {
            let v = args.first().cloned().unwrap_or(Value::None);
            return Ok(sql_value(SqlNode::Inline(sql::literal_sql(&to_literal(
                &v,
            )?))));
        }
        "get_bind" => return Ok(Value::native(Native::Connection)),
        "get_context" => return Ok(Value::native(Native::MigrationContext)),
        "batch_alter_table" if batch.is_none() => return batch_alter_table(args, kwargs),
        "create_table" => {
            let b = bind(
                "create_table",
                &[
                    "table_name",
                    "*columns",
                    "schema",
                    "if_not_exists",
                    "comment",
                    "prefixes",
                    "**",
                ],
                args,
                kwargs,
            )?;
            let mut ct = CreateTable {
                name: to_str(b.req(0, name, "table_name")?)?,
                schema: b.opt_str(2)?,
                if_not_exists: b.flag(3),
                comment: b.opt_str(4)?,
                ..CreateTable::default()
            };
            if let Some(p) = b.get(5) {
                ct.prefixes = to_str_list(p)?;
            }
            let mut indexes = Vec::new();
            for item in &b.rest {
                match item {
                    Value::Native(n) => match &**n {
                        Native::Column(c) => ct.columns.push((**c).clone()),
                        Native::Constraint(c) => ct.constraints.push((**c).clone()),
                        Native::Index(i) => indexes.push(i.clone()),
                        _ => return Err(schema_item_expected(item)),
                    },
                    _ => return Err(schema_item_expected(item)),
                }
            }
            ct.kwargs = b.extra_literals()?;
            let table = ct.name.clone();
            let schema = ct.schema.clone();
            // The Table Alembic returns: bulk_insert binds its rows by these types.
            let columns: Vec<(Rc<str>, sql::SqlType)> = ct
                .columns
                .iter()
                .map(|c| (c.name.as_str().into(), c.type_.clone().map(Rc::new)))
                .collect();
            // Alembic returns the Table it built (on env.py's MetaData): its columns'
            // Python-side defaults fill the rows bulk_insert is given.
            let mut definition = ops::TableDefinition {
                create: ct.clone(),
                indexes: Vec::new(),
                naming_convention: interp.host.naming_convention(),
            };
            apply(interp, Op::CreateTable(ct))?;
            for mut i in indexes {
                i.table = table.clone();
                i.schema = schema.clone();
                definition.indexes.push((*i).clone());
                apply(interp, Op::CreateIndex(*i))?;
            }
            return Ok(Value::native(Native::Table(Rc::new(TableRef {
                name: table.into(),
                schema,
                columns: Rc::new(columns),
                joins: Vec::new(),
                definition: Some(Rc::new(definition)),
            }))));
        }
        "drop_table" => {
            let b = bind(
                name,
                &["table_name", "schema", "if_exists", "**"],
                args,
                kwargs,
            )?;
            Op::DropTable {
                name: to_str(b.req(0, name, "table_name")?)?,
                schema: b.opt_str(1)?,
                if_exists: b.flag(2),
            }
        }
        "rename_table" => {
            let b = bind(
                name,
                &["old_table_name", "new_table_name", "schema"],
                args,
                kwargs,
            )?;
            Op::RenameTable {
                old: to_str(b.req(0, name, "old_table_name")?)?,
                new: to_str(b.req(1, name, "new_table_name")?)?,
                schema: b.opt_str(2)?,
            }
        }
        "add_column" => {
            let b = bind(
                name,
                &[
                    "table_name",
                    "column",
                    "schema",
                    "if_not_exists",
                    "insert_before",
                    "insert_after",
                ],
                args,
                kwargs,
            )?;
            let mut column = match b.req(1, name, "column")? {
                Value::Native(n) => match &**n {
                    Native::Column(c) => (**c).clone(),
                    _ => return Err(type_error("add_column() takes a sa.Column")),
                },
                _ => return Err(type_error("add_column() takes a sa.Column")),
            };
            // A batch copy fills the column with its Python-side default, computed once
            // (outside a batch nothing reads it, and a callable is never called).
            if let (Some(ops::PythonDefault::Value(i)), true) =
                (column.python_default.clone(), batch.is_some())
            {
                let value = if interp.host.is_offline() {
                    Literal::None
                } else {
                    python_default_value(interp, i, column.type_.as_ref())?
                };
                column.python_default = Some(ops::PythonDefault::Bound(value));
            }
            Op::AddColumn {
                table: to_str(b.req(0, name, "table_name")?)?,
                schema: b.opt_str(2)?.or(schema_of_batch.clone()),
                column,
                if_not_exists: b.flag(3),
                insert_before: b.opt_str(4)?,
                insert_after: b.opt_str(5)?,
            }
        }
        "drop_column" => {
            let b = bind(
                name,
                &[
                    "table_name",
                    "column_name",
                    "schema",
                    "if_exists",
                    "existing_type",
                    "**",
                ],
                args,
                kwargs,
            )?;
            Op::DropColumn {
                table: to_str(b.req(0, name, "table_name")?)?,
                schema: b.opt_str(2)?.or(schema_of_batch.clone()),
                column: to_str(b.req(1, name, "column_name")?)?,
                if_exists: b.flag(3),
                existing_type: opt_type(b.get(4))?,
            }
        }
        "alter_column" => {
            let b = bind(
                name,
                &[
                    "table_name",
                    "column_name",
                    "nullable",
                    "comment",
                    "server_default",
                    "new_column_name",
                    "type_",
                    "existing_type",
                    "existing_server_default",
                    "existing_nullable",
                    "existing_comment",
                    "schema",
                    "autoincrement",
                    "insert_before",
                    "insert_after",
                    "**",
                ],
                args,
                kwargs,
            )?;
            let opt_default = |v: Option<&Value>| -> R<Option<Option<ServerDefault>>> {
                match v {
                    None => Ok(None),
                    Some(v) => Ok(Some(to_server_default(v)?)),
                }
            };
            let opt_bool = |v: Option<&Value>| match v {
                None | Some(Value::None) => None,
                Some(v) => Some(v.truthy()),
            };
            Op::AlterColumn(AlterColumn {
                table: to_str(b.req(0, name, "table_name")?)?,
                schema: b.opt_str(11)?.or(schema_of_batch.clone()),
                column: to_str(b.req(1, name, "column_name")?)?,
                nullable: opt_bool(b.get(2)),
                comment: match b.get(3) {
                    None => None,
                    Some(Value::None) | Some(Value::Bool(false)) => Some(None),
                    Some(v) => Some(Some(to_str(v)?)),
                },
                server_default: opt_default(b.get(4))?,
                new_column_name: b.opt_str(5)?,
                type_: opt_type(b.get(6))?,
                existing_type: opt_type(b.get(7))?,
                existing_server_default: opt_default(b.get(8))?,
                existing_nullable: opt_bool(b.get(9)),
                existing_comment: b.opt_str(10)?,
                autoincrement: opt_bool(b.get(12)),
                kwargs: b.extra_literals()?,
            })
        }
        "create_index" => {
            let (b, table) = if batch.is_some() {
                let b = bind(
                    name,
                    &[
                        "index_name",
                        "columns",
                        "schema",
                        "unique",
                        "quote",
                        "if_not_exists",
                        "**",
                    ],
                    args,
                    kwargs,
                )?;
                (b, table_of_batch.clone().unwrap_or_default())
            } else {
                let b0 = bind(
                    name,
                    &[
                        "index_name",
                        "table_name",
                        "columns",
                        "schema",
                        "unique",
                        "quote",
                        "if_not_exists",
                        "**",
                    ],
                    args,
                    kwargs,
                )?;
                let table = to_str(b0.req(1, name, "table_name")?)?;
                let mut values = b0.values;
                values.remove(1);
                (
                    Bound {
                        values,
                        rest: b0.rest,
                        extra: b0.extra,
                    },
                    table,
                )
            };
            let mut keys = Vec::new();
            let cols = b.req(1, name, "columns")?;
            let items = match cols {
                Value::Str(_) => vec![cols.clone()],
                other => builtins::iterate(other)?,
            };
            for c in &items {
                keys.push(index_key(c)?);
            }
            let sqlite_where = match b.extra.iter().find(|(k, _)| k == "sqlite_where") {
                Some((_, v)) => Some(ddl_expr(v)?),
                None => None,
            };
            Op::CreateIndex(Index {
                name: to_name(b.get(0))?,
                table,
                schema: b.opt_str(2)?.or(schema_of_batch.clone()),
                keys,
                unique: b.flag(3),
                if_not_exists: b.flag(5),
                sqlite_where,
                kwargs: b.extra_literals_except("sqlite_where")?,
            })
        }
        "drop_index" => {
            let (iname, table, schema, if_exists) = if batch.is_some() {
                let b = bind(name, &["index_name", "**"], args, kwargs)?;
                (
                    to_name(b.get(0))?,
                    table_of_batch.clone(),
                    schema_of_batch.clone(),
                    false,
                )
            } else {
                let b = bind(
                    name,
                    &["index_name", "table_name", "schema", "if_exists", "**"],
                    args,
                    kwargs,
                )?;
                (to_name(b.get(0))?, b.opt_str(1)?, b.opt_str(2)?, b.flag(3))
            };
            Op::DropIndex {
                name: iname.ok_or_else(|| type_error("drop_index() needs an index name"))?,
                table,
                schema,
                if_exists,
                sqlite_where: None,
            }
        }
        "create_unique_constraint" => {
            let b = bind(
                name,
                &["constraint_name", "table_name", "columns", "schema", "**"],
                args,
                kwargs,
            )?;
            Op::CreateUniqueConstraint {
                name: to_name(b.get(0))?,
                table: to_str(b.req(1, name, "table_name")?)?,
                schema: b.opt_str(3)?.or(schema_of_batch.clone()),
                columns: to_str_list(b.req(2, name, "columns")?)?,
            }
        }
        "create_primary_key" => {
            let b = bind(
                name,
                &["constraint_name", "table_name", "columns", "schema"],
                args,
                kwargs,
            )?;
            Op::CreatePrimaryKey {
                name: to_name(b.get(0))?,
                table: to_str(b.req(1, name, "table_name")?)?,
                schema: b.opt_str(3)?.or(schema_of_batch.clone()),
                columns: to_str_list(b.req(2, name, "columns")?)?,
            }
        }
        "create_check_constraint" => {
            let b = bind(
                name,
                &["constraint_name", "table_name", "condition", "schema", "**"],
                args,
                kwargs,
            )?;
            Op::CreateCheckConstraint {
                name: to_name(b.get(0))?,
                table: to_str(b.req(1, name, "table_name")?)?,
                schema: b.opt_str(3)?.or(schema_of_batch.clone()),
                condition: ddl_expr(b.req(2, name, "condition")?)?,
            }
        }
        "create_foreign_key" => {
            let names: &[&str] = if batch.is_some() {
                &[
                    "constraint_name",
                    "referent_table",
                    "local_cols",
                    "remote_cols",
                    "referent_schema",
                    "onupdate",
                    "ondelete",
                    "deferrable",
                    "initially",
                    "match",
                    "**",
                ]
            } else {
                &[
                    "constraint_name",
                    "source_table",
                    "referent_table",
                    "local_cols",
                    "remote_cols",
                    "onupdate",
                    "ondelete",
                    "deferrable",
                    "initially",
                    "match",
                    "source_schema",
                    "referent_schema",
                    "**",
                ]
            };
            let b = bind(name, names, args, kwargs)?;
            let at = |n: &str| names.iter().position(|x| *x == n).unwrap_or(usize::MAX);
            Op::CreateForeignKey {
                name: to_name(b.get(at("constraint_name")))?,
                source_table: match &table_of_batch {
                    Some(t) => t.clone(),
                    None => to_str(b.req(at("source_table"), name, "source_table")?)?,
                },
                referent_table: to_str(b.req(at("referent_table"), name, "referent_table")?)?,
                local_cols: to_str_list(b.req(at("local_cols"), name, "local_cols")?)?,
                remote_cols: to_str_list(b.req(at("remote_cols"), name, "remote_cols")?)?,
                onupdate: b.opt_str(at("onupdate"))?,
                ondelete: b.opt_str(at("ondelete"))?,
                deferrable: b.opt_flag(at("deferrable")),
                initially: b.opt_str(at("initially"))?,
                match_: b.opt_str(at("match"))?,
                source_schema: b.opt_str(at("source_schema"))?.or(schema_of_batch.clone()),
                referent_schema: b.opt_str(at("referent_schema"))?,
            }
        }
        "drop_constraint" => {
            let b = bind(
                name,
                &[
                    "constraint_name",
                    "table_name",
                    "type_",
                    "schema",
                    "if_exists",
                ],
                args,
                kwargs,
            )?;
            Op::DropConstraint {
                name: to_name(b.get(0))?
                    .ok_or_else(|| type_error("drop_constraint() needs a name"))?,
                table: to_str(b.req(1, name, "table_name")?)?,
                schema: b.opt_str(3)?.or(schema_of_batch.clone()),
                type_: b.opt_str(2)?,
            }
        }
        "execute" => {
            let b = bind(name, &["sqltext", "execution_options"], args, kwargs)?;
            let stmt = b.req(0, name, "sqltext")?.clone();
            return op_execute(interp, &stmt);
        }
        "bulk_insert" => {
            let b = bind(name, &["table", "rows", "multiinsert"], args, kwargs)?;
            let multiinsert = b.get(2).map_or(true, Value::truthy);
            let (mut table, defaults) = match b.req(0, name, "table")? {
                Value::Native(n) => match &**n {
                    Native::Table(t) => (
                        TableClause {
                            name: t.name.to_string(),
                            schema: t.schema.clone(),
                            columns: t
                                .columns
                                .iter()
                                .map(|(n, ty)| (n.to_string(), ty.as_deref().cloned()))
                                .collect(),
                            sql_defaults: Vec::new(),
                        },
                        python_defaults_of(t),
                    ),
                    _ => return Err(type_error("bulk_insert() takes a sa.table()")),
                },
                _ => return Err(type_error("bulk_insert() takes a sa.table()")),
            };
            for (c, d) in &defaults {
                if let ops::PythonDefault::Sql(e) = d {
                    table.sql_defaults.push((c.clone(), e.clone()));
                }
            }
            let offline = interp.host.is_offline();
            let given: Vec<Value> = builtins::iterate(b.req(1, name, "rows")?)?;
            // Online, one executemany: SQLAlchemy compiles it from the first row's keys.
            let statement_keys =
                |row: &[(String, Literal)], first: &Option<Vec<String>>| match first {
                    Some(keys) if multiinsert && !offline => keys.clone(),
                    _ => row.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
                };
            let mut first_keys: Option<Vec<String>> = None;
            let mut rows = Vec::new();
            for r in &given {
                let mut row = Vec::new();
                for (k, v) in builtins::mapping_items(r)? {
                    let ty = table
                        .columns
                        .iter()
                        .find(|(c, _)| Some(c.as_str()) == k.as_str())
                        .and_then(|(_, t)| t.as_ref());
                    // In --sql mode SQLAlchemy renders values as literals: None is NULL
                    // whatever the type; some values it has no literal for.
                    let literal = match (offline, &v) {
                        (true, Value::None) => Ok(Literal::None),
                        (true, _) => match offline_unrenderable(&v, ty) {
                            Some(e) => Err(e),
                            None => bind_literal(&v, ty),
                        },
                        _ => bind_literal(&v, ty),
                    };
                    match literal {
                        Ok(literal) => row.push((to_str(&k)?, literal)),
                        // Offline, SQLAlchemy renders (and prints) row by row.
                        Err(e) if offline && !rows.is_empty() => {
                            apply(
                                interp,
                                Op::BulkInsert {
                                    table,
                                    rows,
                                    multiinsert: true,
                                },
                            )?;
                            return Err(e);
                        }
                        Err(e) => return Err(e),
                    }
                }
                let keys = statement_keys(&row, &first_keys);
                // Every later row of an executemany must give the statement's keys.
                if let Some(first) = rows.first().filter(|_| multiinsert && !offline) {
                    if keys.iter().any(|k| !row.iter().any(|(c, _)| c == k)) {
                        return Err(missing_parameter(
                            &table,
                            first,
                            &keys,
                            &row,
                            rows.len(),
                            &given,
                        ));
                    }
                }
                if first_keys.is_none() {
                    first_keys = Some(keys.clone());
                }
                // A key the first row lacks is not in the executemany's statement.
                row.retain(|(k, _)| keys.contains(k));
                fill_python_defaults(interp, &table, &defaults, &keys, offline, &mut row)?;
                rows.push(row);
            }
            Op::BulkInsert {
                table,
                rows,
                multiinsert,
            }
        }
        other => {
            return Err(unsupported(
                format!("`op.{other}()`"),
                "not implemented in ralembic yet",
            ))
        }
    };
    match batch {
        Some(b) => {
            let pos = interp.pos(interp.here);
            b.borrow_mut().ops.push((op, pos));
            Ok(Value::None)
        }
        None => apply(interp, op),
    }
}

fn batch_alter_table(args: Vec<Value>, kwargs: Vec<(String, Value)>) -> R<Value> {
    let b = bind(
        "batch_alter_table",
        &[
            "table_name",
            "schema",
            "recreate",
            "partial_reordering",
            "copy_from",
            "table_args",
            "table_kwargs",
            "reflect_args",
            "reflect_kwargs",
            "naming_convention",
        ],
        args,
        kwargs,
    )?;
    let recreate = match b.opt_str(2)?.as_deref() {
        None | Some("auto") => Recreate::Auto,
        Some("always") => Recreate::Always,
        Some("never") => Recreate::Never,
        Some(other) => {
            return Err(exc(
                "ValueError",
                format!("recreate may be one of 'auto', 'always', or 'never'; got {other}"),
            ))
        }
    };
    let mut partial_reordering = Vec::new();
    if let Some(p) = b.given(3) {
        for group in builtins::iterate(p)? {
            partial_reordering.push(to_str_list(&group)?);
        }
    }
    let copy_from = match b.get(4) {
        None | Some(Value::None) => None,
        Some(v) => match v {
            Value::Native(n) => match &**n {
                Native::Table(t) => match &t.definition {
                    Some(d) => Some((**d).clone()),
                    None => {
                        return Err(unsupported(
                            "`copy_from=` with an autoloaded or `sa.table()` table",
                            "pass a complete `sa.Table(name, metadata, *columns)`",
                        ))
                    }
                },
                _ => return Err(type_error("copy_from takes a sa.Table")),
            },
            _ => return Err(type_error("copy_from takes a sa.Table")),
        },
    };
    let mut table_args = Vec::new();
    if let Some(t) = b.get(5) {
        for c in builtins::iterate(t)? {
            match &c {
                Value::Native(n) => match &**n {
                    Native::Constraint(k) => table_args.push((**k).clone()),
                    _ => return Err(type_error("table_args takes constraints")),
                },
                _ => return Err(type_error("table_args takes constraints")),
            }
        }
    }
    let mut table_kwargs = Vec::new();
    if let Some(t) = b.get(6) {
        for (k, v) in builtins::mapping_items(t)? {
            table_kwargs.push((to_str(&k)?, to_literal(&v)?));
        }
    }
    let mut reflect_args = Vec::new();
    if let Some(t) = b.get(7) {
        for c in builtins::iterate(t)? {
            match &c {
                Value::Native(n) => match &**n {
                    Native::Column(col) => reflect_args.push((**col).clone()),
                    _ => return Err(type_error("reflect_args takes sa.Column objects")),
                },
                _ => return Err(type_error("reflect_args takes sa.Column objects")),
            }
        }
    }
    let mut naming_convention = Vec::new();
    if let Some(t) = b.given(9) {
        for (k, v) in builtins::mapping_items(t)? {
            naming_convention.push((to_str(&k)?, to_str(&v)?));
        }
    }
    Ok(Value::native(Native::Batch(Rc::new(RefCell::new(Batch {
        table: to_str(b.req(0, "batch_alter_table", "table_name")?)?,
        schema: b.opt_str(1)?,
        recreate,
        partial_reordering,
        copy_from,
        table_args,
        table_kwargs,
        reflect_args,
        naming_convention,
        ops: Vec::new(),
    })))))
}

/// `with` entry: the value bound by `as`.
pub fn enter(_interp: &mut Interp<'_>, manager: &Value) -> R<Value> {
    match manager {
        Value::Native(n) => match &**n {
            Native::Batch(_) => Ok(manager.clone()),
            // `with conn.begin():` / `begin_nested()`: the migration already runs in one
            // transaction, so the block is just the body.
            Native::Opaque(s) if s == "transaction" => Ok(manager.clone()),
            _ => Err(type_error(format!(
                "'{}' object does not support the context manager protocol",
                manager.type_name()
            ))),
        },
        other => Err(type_error(format!(
            "'{}' object does not support the context manager protocol",
            other.type_name()
        ))),
    }
}

/// `with` exit: a batch block runs its operations when the block finished normally.
pub fn exit(interp: &mut Interp<'_>, manager: &Value, ok: bool) -> R<()> {
    if let Value::Native(n) = manager {
        if let Native::Batch(b) = &**n {
            if ok {
                let batch = b.borrow().clone();
                apply(interp, Op::Batch(batch))?;
            }
        }
    }
    Ok(())
}

/// A value as SQLAlchemy binds it for a column of `type_` on SQLite: JSON encodes any
/// value, None included (as `null`, unless the type says `none_as_null=True`); Boolean
/// stores 0/1; Uuid its 32 hex digits; Interval the datetime `1970-01-01 + value`.
fn bind_literal(v: &Value, type_: Option<&TypeSpec>) -> R<Literal> {
    use TypeFamily as F;
    let native = match v {
        Value::Native(n) => Some(&**n),
        _ => None,
    };
    // No SQLAlchemy type processes it (none given, or an Integer or String): Python's
    // sqlite3 binds a date or datetime by its own adapters, `isoformat(" ")` (no
    // microseconds when there are none, the UTC offset kept).
    if let Some(Native::Temporal(t @ (Temporal::DateTime(_) | Temporal::Date(_)))) = native {
        if type_family(type_) == F::Plain {
            return Ok(Literal::Str(temporal_str(t)));
        }
    }
    let Some(t) = type_ else { return to_literal(v) };
    Ok(match (type_family(type_), v, native) {
        (F::Json, Value::None, _) if type_flag(t, "none_as_null", false) => Literal::None,
        (F::Json, _, _) => Literal::Str(json_dumps(v)?),
        (F::Boolean, Value::Bool(b), _) => Literal::Int(i64::from(*b)),
        (F::Uuid, _, Some(Native::Uuid(u))) => Literal::Str(u.replace('-', "")),
        (F::Uuid, Value::Str(s), _) => {
            if type_flag(t, "as_uuid", true) {
                return Err(exc("AttributeError", "'str' object has no attribute 'hex'"));
            }
            Literal::Str(s.replace('-', ""))
        }
        // SQLAlchemy's SQLite DateTime and Date store their own fields (a date as midnight,
        // a datetime's date part) and refuse anything that is not a date or datetime.
        (F::DateTime, _, Some(Native::Temporal(Temporal::DateTime(_))))
        | (F::Date, _, Some(Native::Temporal(Temporal::Date(_)))) => to_literal(v)?,
        (F::DateTime, _, Some(Native::Temporal(Temporal::Date(d)))) => {
            Literal::Str(d.format("%Y-%m-%d 00:00:00.000000").to_string())
        }
        (F::Date, _, Some(Native::Temporal(Temporal::DateTime(d)))) => {
            Literal::Str(d.naive.format("%Y-%m-%d").to_string())
        }
        (F::DateTime, value, _) if !matches!(value, Value::None) => {
            return Err(exc(
                "sqlalchemy.exc.StatementError",
                "(builtins.TypeError) SQLite DateTime type only accepts Python datetime and date objects as input.",
            ))
        }
        (F::Time, _, Some(Native::Temporal(Temporal::Time(_)))) => to_literal(v)?,
        (F::Time, value, _) if !matches!(value, Value::None) => {
            return Err(exc(
                "sqlalchemy.exc.StatementError",
                "(builtins.TypeError) SQLite Time type only accepts Python time objects as input.",
            ))
        }
        (F::Date, value, _) if !matches!(value, Value::None) => {
            return Err(exc(
                "sqlalchemy.exc.StatementError",
                "(builtins.TypeError) SQLite Date type only accepts Python date objects as input.",
            ))
        }
        (F::Interval, _, Some(Native::Temporal(Temporal::Delta(micros)))) => {
            let moment = interval_epoch()
                .checked_add_signed(chrono::Duration::microseconds(*micros))
                .ok_or_else(|| exc("OverflowError", "date value out of range"))?;
            Literal::Str(temporal_sql(&Temporal::DateTime(DateTimeValue {
                naive: moment,
                offset: None,
            })))
        }
        _ => to_literal(v)?,
    })
}

/// The SQLAlchemy types whose values are bound and read back other than as plain SQLite
/// values; one table for binding (`bind_literal`) and reading (`load_literal`).
#[derive(Clone, Copy, PartialEq)]
enum TypeFamily {
    Json,
    Boolean,
    Uuid,
    DateTime,
    Date,
    Time,
    Interval,
    Plain,
}

/// Names compare case-blind (`DateTime`, `DATETIME`), without an upper-cased copy per
/// column of every row.
fn type_family(type_: Option<&TypeSpec>) -> TypeFamily {
    let Some(t) = type_ else {
        return TypeFamily::Plain;
    };
    const FAMILIES: &[(&str, TypeFamily)] = &[
        ("DATETIME", TypeFamily::DateTime),
        ("TIMESTAMP", TypeFamily::DateTime),
        ("DATE", TypeFamily::Date),
        ("TIME", TypeFamily::Time),
        ("BOOLEAN", TypeFamily::Boolean),
        ("UUID", TypeFamily::Uuid),
        ("INTERVAL", TypeFamily::Interval),
        ("JSON", TypeFamily::Json),
        ("JSONB", TypeFamily::Json),
    ];
    FAMILIES
        .iter()
        .find(|(name, _)| t.name.eq_ignore_ascii_case(name))
        .map_or(TypeFamily::Plain, |(_, f)| *f)
}

/// A boolean keyword argument of a type (`JSON(none_as_null=True)`), or its default.
fn type_flag(t: &TypeSpec, name: &str, default: bool) -> bool {
    t.kwargs
        .iter()
        .find(|(k, _)| k == name)
        .map_or(default, |(_, v)| matches!(v, Literal::Bool(true)))
}

/// What SQLAlchemy's Interval adds its value to, to store it as a datetime.
fn interval_epoch() -> chrono::NaiveDateTime {
    chrono::DateTime::UNIX_EPOCH.naive_utc()
}

fn op_execute(interp: &mut Interp<'_>, stmt: &Value) -> R<Value> {
    match stmt {
        Value::Str(s) => apply(
            interp,
            Op::Execute(ops::Statement::Text {
                sql: s.to_string(),
                params: Vec::new(),
            }),
        ),
        Value::Native(n) => match (n.as_stmt(), &**n) {
            (Some(Statement::Text { sql, params }), _) => apply(
                interp,
                Op::Execute(ops::Statement::Text {
                    sql: sql.clone(),
                    params: params.clone(),
                }),
            ),
            (Some(s), _) => {
                if interp.host.is_offline() {
                    let s = &offline_literals(s)?;
                    let r = sql::render(s, true);
                    apply(interp, Op::Execute(ops::Statement::Compiled(r.sql)))
                } else if interp.may_defer() {
                    // `op.execute` returns None: its result is never read.
                    run_unobserved(interp, s, &[])
                } else {
                    run_statement(interp, s, &[])?;
                    Ok(Value::None)
                }
            }
            _ => Err(type_error(format!(
                "op.execute() takes SQL text or a statement, not {}",
                stmt.type_name()
            ))),
        },
        other => Err(type_error(format!(
            "op.execute() takes SQL text or a statement, not {}",
            other.type_name()
        ))),
    }
}

// ----- connections and results -------------------------------------------------------------

fn params_of(v: Option<&Value>) -> R<Vec<Vec<(String, Value)>>> {
    match v {
        None | Some(Value::None) => Ok(vec![Vec::new()]),
        Some(Value::List(_)) | Some(Value::Tuple(_)) => {
            builtins::iterate(v.unwrap_or(&Value::None))?
                .iter()
                .map(|m| {
                    builtins::mapping_items(m)?
                        .into_iter()
                        .map(|(k, v)| Ok((to_str(&k)?, v)))
                        .collect()
                })
                .collect()
        }
        Some(m) => Ok(vec![builtins::mapping_items(m)?
            .into_iter()
            .map(|(k, v)| Ok((to_str(&k)?, v)))
            .collect::<R<Vec<_>>>()?]),
    }
}

/// Executes a data statement online; `params`: one set per execution (executemany).
/// The rows not handed out yet, moved out of the result, which is then exhausted as a
/// consumed SQLAlchemy result is. Moved, not copied: a data loop's `.all()` over 100,000
/// rows would otherwise hold every row twice.
fn take_rows(r: &mut ResultData) -> Vec<Vec<Value>> {
    let start = r.cursor.min(r.rows.len());
    let rows = match start {
        // split_off(0) would leave an empty vector of the same capacity behind.
        0 => std::mem::take(&mut r.rows),
        _ => r.rows.split_off(start),
    };
    r.cursor = r.rows.len();
    rows
}

/// `stmt` with each set of `params` in turn (`executemany`), or once as it is.
fn param_sets<'s>(
    stmt: &'s Statement,
    params: &'s [Vec<(String, Value)>],
) -> impl Iterator<Item = R<std::borrow::Cow<'s, Statement>>> {
    let once = params
        .is_empty()
        .then_some(Ok(std::borrow::Cow::Borrowed(stmt)));
    params
        .iter()
        .map(move |set| with_params(stmt, set))
        .chain(once)
}

/// A statement's parameters as SQLite binds them.
fn bound_params(params: Vec<(Literal, sql::SqlType)>) -> Vec<Literal> {
    params
        .into_iter()
        .map(|(lit, _)| store_literal(lit))
        .collect()
}

/// `conn.execute(stmt)` as a statement of its own, or `op.execute(stmt)`, outside any
/// `try`: nothing reads the result, so the host may run it in the background while the
/// body goes on.
fn run_unobserved(
    interp: &mut Interp<'_>,
    stmt: &Statement,
    params: &[Vec<(String, Value)>],
) -> R<Value> {
    let pos = interp.pos(interp.here);
    for stmt in param_sets(stmt, params) {
        let Rendered {
            sql,
            params,
            unbound,
            ..
        } = sql::render(&*stmt?, false);
        if let Some(key) = unbound {
            return Err(unbound_error(&key, &sql));
        }
        interp
            .host
            .execute_unobserved(sql, bound_params(params), &pos)
            .map_err(detached)?;
    }
    Ok(Value::None)
}

pub(super) fn run_statement(
    interp: &mut Interp<'_>,
    stmt: &Statement,
    params: &[Vec<(String, Value)>],
) -> R<Value> {
    let sets = params.len().max(1);
    let mut last = ResultData::default();
    let mut total = 0i64;
    for stmt in param_sets(stmt, params) {
        let Rendered {
            sql,
            params,
            result_types,
            unbound,
        } = sql::render(&*stmt?, false);
        if let Some(key) = unbound {
            return Err(unbound_error(&key, &sql));
        }
        let bound = bound_params(params);
        interp.settle()?;
        let types = |i: usize| result_types.get(i).and_then(Option::as_deref);
        let mut families: Vec<TypeFamily> = Vec::new();
        let mut rows = Vec::new();
        // A value SQLAlchemy's result processing would refuse stops the reading there.
        let mut refused = None;
        let shape = interp
            .host
            .query_each(&sql, &bound, &mut |cells| {
                if families.len() < cells.len() {
                    families = (0..cells.len()).map(|i| type_family(types(i))).collect();
                }
                let mut values = Vec::with_capacity(cells.len());
                for (i, cell) in cells.iter().enumerate() {
                    match load_cell(cell, families[i], types(i)) {
                        Ok(v) => values.push(v),
                        Err(u) => {
                            refused = Some(u);
                            return false;
                        }
                    }
                }
                rows.push(values);
                true
            })
            .map_err(|e| exc(&e.class, e.message))?;
        if let Some(u) = refused {
            return Err(u);
        }
        total += shape.rowcount.max(0);
        last = ResultData {
            columns: Rc::new(shape.columns),
            rows,
            rowcount: shape.rowcount,
            cursor: 0,
            shape: RowShape::Rows,
        };
    }
    if sets > 1 {
        last.rowcount = total;
    }
    Ok(Value::native(Native::Result(Rc::new(RefCell::new(last)))))
}

/// Inserts/updates given `.values()` through execute parameters.
/// The statement with one parameter set applied; borrowed as is when there is none (the
/// common `conn.execute(stmt)` of a data loop).
fn with_params<'s>(
    stmt: &'s Statement,
    set: &[(String, Value)],
) -> R<std::borrow::Cow<'s, Statement>> {
    if set.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(stmt));
    }
    // Parameters named by `bindparam()`s fill them; the others are values of an INSERT's
    // or UPDATE's columns (or a text()'s `:names`).
    if matches!(stmt, Statement::Text { .. }) {
        return set_values(stmt, set).map(std::borrow::Cow::Owned);
    }
    let mut filled = stmt.clone();
    let used = fill_params(&mut filled, set)?;
    if used.is_empty() {
        return set_values(stmt, set).map(std::borrow::Cow::Owned);
    }
    let rest: Vec<(String, Value)> = set
        .iter()
        .filter(|(k, _)| !used.contains(k))
        .cloned()
        .collect();
    if rest.is_empty() {
        return Ok(std::borrow::Cow::Owned(filled));
    }
    set_values(&filled, &rest).map(std::borrow::Cow::Owned)
}

/// Gives each `bindparam()` named in `set` its value (typed as the parameter is); the
/// keys used.
fn fill_params(stmt: &mut Statement, set: &[(String, Value)]) -> R<Vec<String>> {
    let mut used: Vec<String> = Vec::new();
    let mut failed = None;
    stmt.walk_mut(&mut |n| {
        if let SqlNode::Param { key, value, type_ } = n {
            if let Some((k, v)) = set.iter().find(|(k, _)| k == key) {
                match bind_literal(v, type_.as_deref()) {
                    Ok(l) => *value = Some(l),
                    Err(e) => failed = Some(e),
                }
                if !used.contains(k) {
                    used.push(k.clone());
                }
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(used),
    }
}

/// The error SQLAlchemy raises for a statement run with a `bindparam()` left without a
/// value.
fn unbound_error(key: &str, sql: &str) -> Unwind {
    exc(
        "sqlalchemy.exc.StatementError",
        sql::unbound_message(key, sql),
    )
}

/// The type a text()'s `bindparam(key, type_=...)` gave a parameter that has no value yet.
fn text_param_type(params: &[(String, Literal)], key: &str) -> Option<TypeSpec> {
    params.iter().find_map(|(n, l)| match l {
        Literal::Type(t) if n == key => Some((**t).clone()),
        _ => None,
    })
}

/// Execute parameters as the columns' values of an INSERT or UPDATE, or a text()'s
/// parameters.
fn set_values(stmt: &Statement, set: &[(String, Value)]) -> R<Statement> {
    Ok(match stmt {
        Statement::Text { sql, params } => {
            let mut p = params.clone();
            for (k, v) in set {
                // Untyped unless a `bindparam()` gave it a type: sqlite3's adapters then
                // bind a date or datetime.
                let value = bind_literal(v, text_param_type(&p, k).as_ref())?;
                p.retain(|(n, _)| n != k);
                p.push((k.clone(), value));
            }
            Statement::Text {
                sql: sql.clone(),
                params: p,
            }
        }
        Statement::Insert {
            table,
            values,
            rows,
            select,
        } => {
            let mut values = values.clone();
            for (k, v) in set {
                let ty = table
                    .columns
                    .iter()
                    .find(|(c, _)| **c == *k)
                    .and_then(|(_, t)| t.clone());
                values.retain(|(n, _)| n != k);
                values.push((k.clone(), value_sql(v.clone(), ty.as_ref())?));
            }
            Statement::Insert {
                table: table.clone(),
                values,
                rows: rows.clone(),
                select: select.clone(),
            }
        }
        Statement::Update {
            table,
            values,
            wheres,
        } => {
            let mut values = values.clone();
            for (k, v) in set {
                let ty = table
                    .columns
                    .iter()
                    .find(|(c, _)| **c == *k)
                    .and_then(|(_, t)| t.clone());
                values.retain(|(n, _)| n != k);
                values.push((k.clone(), value_sql(v.clone(), ty.as_ref())?));
            }
            Statement::Update {
                table: table.clone(),
                values,
                wheres: wheres.clone(),
            }
        }
        other => other.clone(),
    })
}

/// A Python value as SQLAlchemy's SQLite types store it.
fn store_literal(lit: Literal) -> Literal {
    match lit {
        Literal::Bool(b) => Literal::Int(i64::from(b)),
        other => other,
    }
}

/// A stored value as SQLAlchemy's result processing for the column type returns it.
pub(super) fn load_literal(lit: Literal, type_: Option<&TypeSpec>) -> R<Value> {
    load_cell(&Cell::of(&lit), type_family(type_), type_)
}

/// [`load_literal`] for a value borrowed from the driver; `family` is `type_`'s, found once
/// per column rather than once per value.
fn load_cell(cell: &Cell<'_>, family: TypeFamily, type_: Option<&TypeSpec>) -> R<Value> {
    let is = |f: TypeFamily| family == f;
    Ok(match cell {
        Cell::Null => Value::None,
        // SQLAlchemy 2's SQLite DATETIME/DATE/TIME results go through `fromisoformat`.
        Cell::Text(s) if is(TypeFamily::DateTime) => Value::native(Native::Temporal(
            Temporal::DateTime(parse_isoformat(s).ok_or_else(|| invalid_isoformat(s))?),
        )),
        Cell::Text(s) if is(TypeFamily::Date) => Value::native(Native::Temporal(Temporal::Date(
            parse_iso_date(s.as_bytes()).ok_or_else(|| invalid_isoformat(s))?,
        ))),
        Cell::Text(s) if is(TypeFamily::Time) => Value::native(Native::Temporal(Temporal::Time(
            parse_iso_time(s).ok_or_else(|| invalid_isoformat(s))?,
        ))),
        Cell::Int(i) if is(TypeFamily::Boolean) => Value::Bool(*i != 0),
        // `as_uuid=False` reads the dashed text, not the stored hex.
        Cell::Text(s) if is(TypeFamily::Uuid) => {
            let text = uuid_text(s)?;
            if type_.is_some_and(|t| type_flag(t, "as_uuid", true)) {
                Value::native(Native::Uuid(text))
            } else {
                Value::str(text)
            }
        }
        Cell::Text(s) if is(TypeFamily::Interval) => {
            let moment = parse_isoformat(s).ok_or_else(|| invalid_isoformat(s))?;
            let micros = (moment.naive - interval_epoch())
                .num_microseconds()
                .ok_or_else(|| exc("OverflowError", "timedelta out of range"))?;
            Value::native(Native::Temporal(Temporal::Delta(micros)))
        }
        Cell::Text(s) if is(TypeFamily::Json) => {
            match serde_json::from_str::<serde_json::Value>(s) {
                Ok(j) => from_json(&j),
                Err(e) => return Err(exc("json.decoder.JSONDecodeError", e.to_string())),
            }
        }
        Cell::Other(Literal::Bool(b)) => Value::Bool(*b),
        Cell::Int(i) => Value::Int(*i),
        Cell::Float(f) => Value::Float(*f),
        Cell::Text(s) => Value::str(&**s),
        Cell::Blob(b) => Value::Bytes((*b).into()),
        Cell::Other(other) => Value::str(sql::literal_sql(other)),
    })
}

/// `uuid.UUID(text)`: 32 hex digits, with or without dashes, braces or a `urn:uuid:`
/// prefix, in the canonical dashed lower-case form.
fn uuid_text(s: &str) -> R<String> {
    let hex: String = s
        .trim_start_matches("urn:")
        .trim_start_matches("uuid:")
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(exc("ValueError", "badly formed hexadecimal UUID string"));
    }
    let hex = hex.to_ascii_lowercase();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

fn invalid_isoformat(s: &str) -> Unwind {
    exc(
        "ValueError",
        format!("Invalid isoformat string: {}", builtins::str_repr(s)),
    )
}

fn call_bound(
    interp: &mut Interp<'_>,
    this: &Rc<Native>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    match &**this {
        Native::Batch(b) => {
            let b = b.clone();
            op_call(interp, Some(&b), name, args, kwargs)
        }
        Native::RePattern(p) => super::re::pattern_method(interp, p, name, args, kwargs),
        Native::ReMatch(m) => super::re::match_method(m, name, args, kwargs),
        Native::Session => super::orm::session_method(interp, name, args, kwargs),
        Native::Query(q) => super::orm::query_method(interp, q, name, args, kwargs),
        Native::Type(t) if name == "with_variant" => {
            let variant =
                to_type(args.first().ok_or_else(|| {
                    type_error("with_variant() needs a type and a dialect name")
                })?)?;
            let t = super::custom::with_variant(t, variant, &args[1..])?;
            Ok(Value::native(Native::Type(Box::new(t))))
        }
        Native::Connection => match name {
            // MockConnection.execute: the statement goes to the --sql output; no result.
            "execute" if interp.host.is_offline() => {
                op_execute(interp, args.first().unwrap_or(&Value::None))?;
                Ok(Value::None)
            }
            "execute" | "scalar" | "scalars" => {
                let stmt = match args.first() {
                    Some(Value::Native(n)) => match &**n {
                        Native::Stmt(s) => s,
                        _ => {
                            return Err(exc(
                                "sqlalchemy.exc.ObjectNotExecutableError",
                                format!("Not an executable object: {}", repr(&args[0])),
                            ))
                        }
                    },
                    Some(Value::Str(s)) => {
                        return Err(exc(
                            "sqlalchemy.exc.ObjectNotExecutableError",
                            format!("Not an executable object: {}", builtins::str_repr(s)),
                        ))
                    }
                    _ => return Err(type_error("execute() takes a statement")),
                };
                let params = params_of(
                    args.get(1).or(kwargs
                        .iter()
                        .find(|(k, _)| k == "parameters")
                        .map(|(_, v)| v)),
                )?;
                if name == "execute" && std::mem::take(&mut interp.result_unused) {
                    return run_unobserved(interp, stmt, &params);
                }
                let result = run_statement(interp, stmt, &params)?;
                match name {
                    "scalar" => result_method(interp, &result, "scalar", Vec::new()),
                    "scalars" => result_method(interp, &result, "scalars", Vec::new()),
                    _ => Ok(result),
                }
            }
            "exec_driver_sql" => {
                let sql = to_str(args.first().unwrap_or(&Value::None))?;
                let mut bound = Vec::new();
                if let Some(p) = args.get(1) {
                    for v in builtins::iterate(p)? {
                        bound.push(bind_literal(&v, None)?);
                    }
                }
                interp.settle()?;
                let out = interp
                    .host
                    .query(&sql, &bound)
                    .map_err(|e| exc(&e.class, e.message))?;
                let columns = Rc::new(out.columns.clone());
                let rows = out
                    .rows
                    .into_iter()
                    .map(|r| {
                        r.into_iter()
                            .map(|l| load_literal(l, None))
                            .collect::<R<Vec<_>>>()
                    })
                    .collect::<R<Vec<_>>>()?;
                Ok(Value::native(Native::Result(Rc::new(RefCell::new(
                    ResultData {
                        columns,
                        rows,
                        rowcount: out.rowcount,
                        cursor: 0,
                        shape: RowShape::Rows,
                    },
                )))))
            }
            "begin" | "begin_nested" => Ok(Value::native(Native::Opaque("transaction".into()))),
            "commit" => Err(unsupported(
                "`conn.commit()` in a revision body",
                "ralembic commits the migration as one unit",
            )),
            "in_transaction" => Ok(Value::Bool(true)),
            _ => Err(exc("AttributeError", name.to_string())),
        },
        Native::MigrationContext => match name {
            "execute" => op_execute(interp, args.first().unwrap_or(&Value::None)),
            _ => Err(unsupported(
                format!("`MigrationContext.{name}()`"),
                "not modelled",
            )),
        },
        Native::Inspector => inspector_call(interp, name, args, kwargs),
        Native::Result(_) => {
            let v = Value::Native(this.clone());
            result_method(interp, &v, name, args)
        }
        Native::Row(r) => match name {
            "_asdict" => Ok(Value::dict(
                r.columns
                    .iter()
                    .zip(&r.values)
                    .map(|(c, v)| (Value::str(c.as_str()), v.clone()))
                    .collect(),
            )),
            _ => Ok(Value::tuple(r.values.clone())),
        },
        Native::Mapping(r) => {
            let items: Vec<(Value, Value)> = r
                .columns
                .iter()
                .zip(&r.values)
                .map(|(c, v)| (Value::str(c.as_str()), v.clone()))
                .collect();
            builtins::call_method(interp, leak_name(name), &Value::dict(items), args, kwargs)
        }
        Native::Environ => {
            let items = this.mapping_items().unwrap_or_default();
            builtins::call_method(interp, leak_name(name), &Value::dict(items), args, kwargs)
        }
        Native::DictView { .. } => {
            if !kwargs.is_empty() || args.len() != 1 {
                return Err(type_error(format!(
                    "{}.isdisjoint() takes exactly one argument ({} given)",
                    this.type_name(),
                    args.len() + kwargs.len()
                )));
            }
            let view = Value::Native(this.clone());
            for item in builtins::iterate(&args[0])? {
                if builtins::contains(&view, &item)? {
                    return Ok(Value::Bool(false));
                }
            }
            Ok(Value::Bool(true))
        }
        Native::Logger(logger) => {
            if name == "setLevel" {
                return Ok(Value::None);
            }
            let msg = log_message(&args)?;
            interp.settle()?;
            interp.host.log(log_level(name), logger, &msg);
            Ok(Value::None)
        }
        Native::Table(t) if matches!(name, "join" | "outerjoin") => {
            let table = Value::native(Native::Table(t.clone()));
            let b = bind(
                name,
                &["right", "onclause", "isouter", "full"],
                args,
                kwargs,
            )?;
            let outer = name == "outerjoin" || b.flag(2);
            if b.flag(3) {
                return Err(unsupported("a FULL OUTER JOIN", "SQLite has none"));
            }
            join(&table, b.req(0, name, "right")?, b.get(1), outer)
        }
        Native::Table(t) => {
            let table = Value::native(Native::Table(t.clone()));
            match name {
                "select" => sa_call(interp, "select", vec![table], Vec::new()),
                _ => sa_call(interp, name, vec![table], Vec::new()),
            }
        }
        Native::Stmt(s) => stmt_method(s, name, args, kwargs),
        Native::Sql(node) => sql_method(node, name, args),
        Native::Temporal(t) => temporal_method(t, name, args, kwargs),
        _ => Err(exc("AttributeError", name.to_string())),
    }
}

/// The method tables of plain values are keyed by `'static` names.
fn leak_name(name: &str) -> &'static str {
    ["get", "keys", "values", "items"]
        .into_iter()
        .find(|n| *n == name)
        .unwrap_or("get")
}

pub(super) fn result_method(
    _interp: &mut Interp<'_>,
    result: &Value,
    name: &str,
    _args: Vec<Value>,
) -> R<Value> {
    let Value::Native(n) = result else {
        return Err(type_error("not a result"));
    };
    let Native::Result(r) = &**n else {
        return Err(type_error("not a result"));
    };
    let mut r = r.borrow_mut();
    let (cols, shape) = (r.columns.clone(), r.shape);
    Ok(match name {
        "fetchall" | "all" => Value::list(
            take_rows(&mut r)
                .into_iter()
                .map(|v| shaped_row(shape, &cols, v))
                .collect(),
        ),
        "fetchone" | "first" => {
            let row = r.rows.get(r.cursor).cloned();
            r.cursor = if name == "first" {
                r.rows.len()
            } else {
                r.cursor + 1
            };
            row.map(|v| shaped_row(shape, &cols, v))
                .unwrap_or(Value::None)
        }
        "one" | "one_or_none" | "scalar_one" | "scalar_one_or_none" => {
            let rows = take_rows(&mut r);
            if rows.len() > 1 {
                return Err(exc(
                    "sqlalchemy.exc.MultipleResultsFound",
                    "Multiple rows were found when exactly one was required",
                ));
            }
            match rows.into_iter().next() {
                Some(v) if name.starts_with("scalar") => {
                    v.into_iter().next().unwrap_or(Value::None)
                }
                Some(v) => shaped_row(shape, &cols, v),
                None if name.ends_with("or_none") => Value::None,
                None => {
                    return Err(exc(
                        "sqlalchemy.exc.NoResultFound",
                        "No row was found when one was required",
                    ))
                }
            }
        }
        "scalar" => {
            let row = r.rows.get(r.cursor).cloned();
            r.cursor = r.rows.len();
            row.and_then(|v| v.into_iter().next())
                .unwrap_or(Value::None)
        }
        // A result of the rows not yet handed out, which it takes over (SQLAlchemy's
        // ScalarResult and MappingResult read the same cursor).
        "scalars" | "mappings" => {
            let mut rows = take_rows(&mut r);
            let mut columns = cols;
            let shape = if name == "scalars" {
                // `.scalars(i)`: column i instead of the first.
                if let Some(Value::Int(i)) = _args.first() {
                    let i =
                        usize::try_from(*i).map_err(|_| exc("IndexError", "index out of range"))?;
                    for row in &mut rows {
                        let v = row
                            .get(i)
                            .cloned()
                            .ok_or_else(|| exc("IndexError", "index out of range"))?;
                        *row = vec![v];
                    }
                    columns = Rc::new(columns.get(i).cloned().into_iter().collect());
                }
                RowShape::Scalars
            } else {
                RowShape::Mappings
            };
            Value::native(Native::Result(Rc::new(RefCell::new(ResultData {
                columns,
                rows,
                rowcount: r.rowcount,
                cursor: 0,
                shape,
            }))))
        }
        "keys" => Value::list(cols.iter().map(|c| Value::str(c.as_str())).collect()),
        "tuples" | "unique" => result.clone(),
        "close" => Value::None,
        "fetchmany" => {
            let n = match _args.first() {
                Some(Value::Int(i)) => usize::try_from(*i).unwrap_or(1),
                _ => 1,
            };
            let start = r.cursor;
            let end = (start + n).min(r.rows.len());
            r.cursor = end;
            Value::list(
                r.rows[start..end]
                    .iter()
                    .map(|v| shaped_row(shape, &cols, v.clone()))
                    .collect(),
            )
        }
        _ => return Err(exc("AttributeError", name.to_string())),
    })
}

fn stmt_method(
    s: &Statement,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    stmt_apply(s.clone(), name, args, kwargs)
}

/// A generative statement method (`.where()`, `.values()`...) on a statement it may change.
fn stmt_apply(
    mut s: Statement,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    match (name, &mut s) {
        ("bindparams", Statement::Text { params, .. }) => {
            // `bindparams(sa.bindparam("x", 5))`: a parameter object with its value, or
            // with only a type, which the value given later is bound by.
            for a in &args {
                let param = match a {
                    Value::Native(n) => n.as_sql(),
                    _ => None,
                };
                let Some(SqlNode::Param { key, value, type_ }) = param else {
                    continue;
                };
                let entry = match (value, type_) {
                    (Some(v), _) => v.clone(),
                    (None, Some(t)) => Literal::Type(Box::new((**t).clone())),
                    (None, None) => continue,
                };
                params.retain(|(n, _)| n != key);
                params.push((key.clone(), entry));
            }
            // A value given here types the parameter by itself (a datetime as SQLAlchemy's
            // DateTime binds it), unless a `bindparam()` gave it a type.
            for (k, v) in kwargs {
                let value = match text_param_type(params, &k) {
                    Some(t) => bind_literal(&v, Some(&t))?,
                    None => inferred_literal(&v)?,
                };
                params.retain(|(n, _)| *n != k);
                params.push((k, value));
            }
        }
        ("columns", Statement::Text { .. }) => {}
        // A table the criteria name is selected from too, as in SQLAlchemy.
        ("where" | "filter", Statement::Select { wheres, from, .. }) => {
            for a in args {
                let node = to_sql_owned(a, None)?;
                collect_from(&node, from);
                wheres.push(node);
            }
        }
        ("where" | "filter", Statement::Update { wheres, .. })
        | ("where" | "filter", Statement::Delete { wheres, .. }) => {
            for a in args {
                wheres.push(to_sql_owned(a, None)?);
            }
        }
        ("values", Statement::Insert { table, values, .. })
        | ("values", Statement::Update { table, values, .. })
            if !matches!(args.first(), Some(Value::List(_))) =>
        {
            let mut pairs: Vec<(String, Value)> = kwargs;
            if let Some(m) = args.first() {
                for (k, v) in builtins::mapping_items(m)? {
                    let key = match &k {
                        Value::Native(n) => match n.as_sql() {
                            Some(SqlNode::Column { name, .. }) => name.to_string(),
                            _ => to_str(&k)?,
                        },
                        _ => to_str(&k)?,
                    };
                    pairs.push((key, v));
                }
            }
            for (k, v) in pairs {
                let ty = table
                    .columns
                    .iter()
                    .find(|(c, _)| **c == *k)
                    .and_then(|(_, t)| t.clone());
                values.retain(|(n, _)| *n != k);
                values.push((k, value_sql(v, ty.as_ref())?));
            }
        }
        ("group_by", Statement::Select { group_by, .. }) => {
            for a in &args {
                group_by.push(to_sql(a, None)?);
            }
        }
        ("having", Statement::Select { having, .. }) => {
            for a in args {
                having.push(to_sql_owned(a, None)?);
            }
        }
        ("order_by", Statement::Select { order_by, .. }) => {
            for a in &args {
                order_by.push(to_sql(a, None)?);
            }
        }
        ("limit", Statement::Select { limit, .. }) => {
            *limit = Some(match as_number(args.first().unwrap_or(&Value::None)) {
                Some(Num::Int(i)) => i,
                _ => return Err(type_error("limit() takes an integer")),
            })
        }
        ("offset", Statement::Select { offset, .. }) => {
            *offset = Some(match as_number(args.first().unwrap_or(&Value::None)) {
                Some(Num::Int(i)) => i,
                _ => return Err(type_error("offset() takes an integer")),
            })
        }
        ("distinct", Statement::Select { distinct, .. }) => *distinct = true,
        ("scalar_subquery" | "as_scalar", Statement::Select { .. }) => {
            return Ok(sql_value(SqlNode::ScalarSubquery(Box::new(s))))
        }
        ("exists", Statement::Select { .. }) => return Ok(sql_value(SqlNode::Exists(Box::new(s)))),
        ("from_select", Statement::Insert { select, .. }) => {
            let mut names = Vec::new();
            for n in builtins::iterate(args.first().unwrap_or(&Value::None))? {
                names.push(match &n {
                    Value::Native(c) => match c.as_sql() {
                        Some(SqlNode::Column { name, .. }) => name.to_string(),
                        _ => to_str(&n)?,
                    },
                    _ => to_str(&n)?,
                });
            }
            let query = match args.get(1) {
                Some(Value::Native(n)) => match n.as_stmt() {
                    Some(q @ Statement::Select { .. }) => q.clone(),
                    _ => return Err(type_error("from_select() takes a select()")),
                },
                _ => return Err(type_error("from_select() takes a select()")),
            };
            *select = Some((names, Box::new(query)));
        }
        // `values([{...}, {...}])`: one INSERT of several rows.
        (
            "values",
            Statement::Insert {
                table,
                values,
                rows,
                ..
            },
        ) if matches!(args.first(), Some(Value::List(_))) => {
            let dicts = builtins::iterate(args.first().unwrap_or(&Value::None))?;
            let mut names: Vec<String> = Vec::new();
            for (i, d) in dicts.iter().enumerate() {
                let mut row = Vec::new();
                for (k, v) in builtins::mapping_items(d)? {
                    let key = to_str(&k)?;
                    let ty = table
                        .columns
                        .iter()
                        .find(|(c, _)| **c == *key)
                        .and_then(|(_, t)| t.clone());
                    row.push((key, value_sql(v, ty.as_ref())?));
                }
                if i == 0 {
                    names = row.iter().map(|(k, _)| k.clone()).collect();
                    *values = row;
                } else {
                    // SQLAlchemy takes the columns from the first row; the others give theirs
                    // in that order.
                    let mut ordered = Vec::new();
                    for n in &names {
                        match row.iter().position(|(k, _)| k == n) {
                            Some(p) => ordered.push(row.swap_remove(p).1),
                            None => {
                                return Err(exc(
                                    "sqlalchemy.exc.CompileError",
                                    format!("INSERT value for column {n} is explicitly rendered as a boundparameter in the VALUES clause; a Python-side value or SQL expression is required"),
                                ))
                            }
                        }
                    }
                    rows.push(ordered);
                }
            }
        }
        // Session synchronisation and the like: nothing that changes the SQL.
        ("execution_options", _) => {}
        ("select_from", Statement::Select { from, .. }) => {
            for a in &args {
                if let Value::Native(n) = a {
                    if let Native::Table(t) = &**n {
                        add_from(from, (**t).clone());
                    }
                }
            }
        }
        _ => {
            return Err(unsupported(
                format!("`.{name}()` on this statement"),
                "not modelled",
            ))
        }
    }
    Ok(Value::native(Native::Stmt(Box::new(s))))
}

fn sql_method(node: &SqlNode, name: &str, args: Vec<Value>) -> R<Value> {
    let me = Box::new(node.clone());
    let ty = node.type_().cloned();
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::None);
    Ok(sql_value(match name {
        "in_" | "not_in" | "notin_" => {
            let list = arg(0);
            let subquery = match &list {
                Value::Native(n) => match &**n {
                    Native::Stmt(s) if matches!(**s, Statement::Select { .. }) => {
                        Some(SqlNode::Subquery(s.clone()))
                    }
                    _ => None,
                },
                _ => None,
            };
            let values = match subquery {
                Some(q) => vec![q],
                None => {
                    let mut values = Vec::new();
                    for v in builtins::iterate(&list)? {
                        values.push(to_sql(&v, compared(ty.as_ref(), &v))?);
                    }
                    values
                }
            };
            SqlNode::InList {
                operand: me,
                values,
                negate: name != "in_",
            }
        }
        "is_" | "is_not" | "isnot" => SqlNode::Binary {
            left: me,
            op: if name == "is_" { "IS" } else { "IS NOT" }.into(),
            right: Box::new(to_sql(&arg(0), ty.as_ref())?),
        },
        "like" | "ilike" | "not_like" | "notlike" | "not_ilike" | "notilike" => {
            let pattern = to_sql(&arg(0), None)?;
            refuse_constant_operand(&arg(0), &pattern)?;
            let lower = |n: SqlNode| SqlNode::Func {
                name: "lower".into(),
                args: vec![n],
            };
            let ilike = name.ends_with("ilike");
            SqlNode::Binary {
                left: if ilike {
                    Box::new(lower(node.clone()))
                } else {
                    me
                },
                op: if name.starts_with("not") {
                    "NOT LIKE"
                } else {
                    "LIKE"
                }
                .into(),
                right: Box::new(if ilike { lower(pattern) } else { pattern }),
            }
        }
        "startswith" | "endswith" | "contains" => {
            let pattern = match name {
                "startswith" => SqlNode::Binary {
                    left: Box::new(to_sql(&arg(0), None)?),
                    op: "||".into(),
                    right: Box::new(SqlNode::Inline("'%'".into())),
                },
                "endswith" => SqlNode::Binary {
                    left: Box::new(SqlNode::Inline("'%'".into())),
                    op: "||".into(),
                    right: Box::new(to_sql(&arg(0), None)?),
                },
                _ => SqlNode::Binary {
                    left: Box::new(SqlNode::Binary {
                        left: Box::new(SqlNode::Inline("'%'".into())),
                        op: "||".into(),
                        right: Box::new(to_sql(&arg(0), None)?),
                    }),
                    op: "||".into(),
                    right: Box::new(SqlNode::Inline("'%'".into())),
                },
            };
            SqlNode::Contains {
                left: me,
                pattern: Box::new(pattern),
                negate: false,
            }
        }
        "between" => SqlNode::Binary {
            left: me,
            op: "BETWEEN".into(),
            right: Box::new(SqlNode::Binary {
                left: Box::new(to_sql(&arg(0), compared(ty.as_ref(), &arg(0)))?),
                op: "AND".into(),
                right: Box::new(to_sql(&arg(1), compared(ty.as_ref(), &arg(1)))?),
            }),
        },
        "desc" | "asc" => ordering(node.clone(), name),
        "distinct" => distinct(node.clone()),
        "label" => SqlNode::Label {
            inner: me,
            name: to_str(&arg(0))?,
        },
        "is_distinct_from" => SqlNode::Binary {
            left: me,
            op: "IS DISTINCT".into(),
            right: Box::new(to_sql(&arg(0), ty.as_ref())?),
        },
        "cast" => cast(*me, to_type(&arg(0))?),
        "as_string" | "as_integer" | "as_float" | "as_boolean" | "as_numeric" | "as_json" => {
            json_cast(node, name, &args)?
        }
        "collate" => SqlNode::Binary {
            left: me,
            op: "COLLATE".into(),
            right: Box::new(SqlNode::Inline(
                crate::alembic_compat::ddl::sqlite::quote(&to_str(&arg(0))?).into_owned(),
            )),
        },
        // Criteria of `sa.exists()`, added to its SELECT.
        "where" | "filter" | "select_from" => match node {
            SqlNode::Exists(select) => {
                let applied = stmt_apply((**select).clone(), name, args, Vec::new())?;
                match applied {
                    Value::Native(n) => match n.as_stmt() {
                        Some(s) => SqlNode::Exists(Box::new(s.clone())),
                        None => return Err(type_error("exists() criteria")),
                    },
                    _ => return Err(type_error("exists() criteria")),
                }
            }
            _ => {
                return Err(unsupported(
                    format!("`.{name}()` on a SQL expression"),
                    "not modelled",
                ))
            }
        },
        _ => {
            return Err(unsupported(
                format!("`.{name}()` on a SQL expression"),
                "not modelled",
            ))
        }
    }))
}

/// The comparison with its operands swapped: `a < b` is `b > a`.
fn mirrored(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::LtE => CmpOp::GtE,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::GtE => CmpOp::LtE,
        other => other,
    }
}

pub fn sql_compare(op: CmpOp, l: &Value, r: &Value) -> R<Value> {
    let (l, r, op) = match l {
        Value::Native(n) if n.is_sql() => (l, r, op),
        // `5 < col` reads as `col > 5`.
        _ => (r, l, mirrored(op)),
    };
    let left = to_sql(l, None)?;
    // Python asks the right operand first when its class is a subclass of the left one's
    // (`func.abs(x) < func.max(y)` is `max(y) > abs(x)`): a registered function's class
    // subclasses the plain `Function`.
    if let (SqlNode::Func { name: a, .. }, Value::Native(n)) = (&left, r) {
        if let Native::Sql(right) = &**n {
            if let SqlNode::Func { name: b, .. } = &**right {
                if !sql::is_generic_function(a) && sql::is_generic_function(b) {
                    return sql_compare(mirrored(op), r, l);
                }
            }
        }
    }
    // SQLAlchemy's `coerce_compared_value`: a value compared with a JSON expression keeps
    // its own type (`doc["k"] == "x"` binds 'x', not '"x"'); only a value no SQL type
    // stands for (a dict, a list) is bound as JSON.
    let right_type = compared(left.type_(), r).filter(|t| {
        type_family(Some(t)) != TypeFamily::Json
            || matches!(r, Value::List(_) | Value::Dict(_) | Value::Tuple(_))
    });
    let right = to_sql(r, right_type)?;
    let null_right = matches!(right, SqlNode::Null);
    if matches!(op, CmpOp::Lt | CmpOp::LtE | CmpOp::Gt | CmpOp::GtE) {
        refuse_constant_operand(r, &right)?;
    }
    let text = match op {
        CmpOp::Eq if null_right => "IS",
        CmpOp::NotEq if null_right => "IS NOT",
        CmpOp::Eq => "=",
        CmpOp::NotEq => "!=",
        CmpOp::Lt => "<",
        CmpOp::LtE => "<=",
        CmpOp::Gt => ">",
        CmpOp::GtE => ">=",
        CmpOp::Is => "IS",
        CmpOp::IsNot => "IS NOT",
        CmpOp::In | CmpOp::NotIn => return Err(type_error("use .in_() for SQL IN")),
    };
    Ok(sql_value(SqlNode::Binary {
        left: Box::new(left),
        op: text.into(),
        right: Box::new(right),
    }))
}

/// SQLAlchemy's `_boolean_compare`: None, True and False (or `sa.null()`, `sa.true()`,
/// `sa.false()`) go only with `==`, `!=`, `is_()` and their kin; `<`, `like()` and the
/// like are its ArgumentError.
fn refuse_constant_operand(v: &Value, node: &SqlNode) -> R<()> {
    if matches!(v, Value::None | Value::Bool(_))
        || matches!(node, SqlNode::Null | SqlNode::True | SqlNode::False)
    {
        return Err(exc(
            "sqlalchemy.exc.ArgumentError",
            "Only '=', '!=', 'is_()', 'is_not()', 'is_distinct_from()', \
             'is_not_distinct_from()' operators can be used with None/True/False",
        ));
    }
    Ok(())
}

pub fn sql_not(v: &Value) -> R<Value> {
    Ok(sql_value(to_sql(v, None)?.negated()))
}

pub fn sql_unary(op: &str, v: &Value) -> R<Value> {
    match v {
        Value::Native(n) if n.is_sql() => Ok(sql_value(SqlNode::Unary {
            op: op.to_string().into(),
            operand: Box::new(to_sql(v, None)?),
        })),
        Value::Native(n) => match (&**n, op) {
            (Native::Temporal(Temporal::Delta(d)), "-") => delta_value(-i128::from(*d)),
            _ => Err(type_error(format!(
                "bad operand type for unary {op}: '{}'",
                v.type_name()
            ))),
        },
        _ => Err(type_error(format!(
            "bad operand type for unary {op}: '{}'",
            v.type_name()
        ))),
    }
}

/// Operators with a native operand: SQL arithmetic/concatenation, `&`/`|` as AND/OR, and
/// datetime arithmetic. `None`: not handled here.
pub fn binop(op: BinOp, l: &Value, r: &Value) -> R<Option<Value>> {
    let is_sql = |v: &Value| matches!(v, Value::Native(n) if n.is_sql());
    if is_sql(l) || is_sql(r) {
        // `a & b` and `a | b` are `and_(a, b)` and `or_(a, b)`.
        if let BinOp::BitAnd | BinOp::BitOr = op {
            let items = vec![to_sql(l, None)?, to_sql(r, None)?];
            let op = if op == BinOp::BitAnd { "AND" } else { "OR" };
            return Ok(Some(sql_value(SqlNode::conjunction(op, items))));
        }
        let text = match op {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mult => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            _ => return Ok(None),
        };
        // The expression's side decides the operator and types a Python value on the other
        // (`"x" + col` is the column's `__radd__`).
        let (left, right) = if is_sql(l) {
            let left = to_sql(l, None)?;
            let right = to_sql(r, compared(left.type_(), r))?;
            (left, right)
        } else {
            let right = to_sql(r, None)?;
            (to_sql(l, compared(right.type_(), l))?, right)
        };
        let node = |op: &'static str, left: SqlNode, right: SqlNode| SqlNode::Binary {
            left: Box::new(left),
            op: op.into(),
            right: Box::new(right),
        };
        let integer = |n: &SqlNode| {
            n.type_()
                .is_some_and(|t| sql::type_affinity(t) == sql::Affinity::Integer)
        };
        return Ok(Some(sql_value(match op {
            // String concatenation renders `||` in SQLAlchemy. The left side's type decides
            // (SQLAlchemy's `_adapt_expression`), a Python value's being its own (`'x'` a
            // String); an untyped left side takes the right side's, `+` being commutative.
            BinOp::Add
                if matches!(
                    (sql::string_typed(&left), sql::string_typed(&right)),
                    (Some(true), Some(true) | None) | (None, Some(true))
                ) =>
            {
                node("||", left, right)
            }
            // SQLite divides integers as floor division does; anything else is floored.
            BinOp::FloorDiv if !(integer(&left) && integer(&right)) => node("FLOOR/", left, right),
            _ => node(text, left, right),
        })));
    }
    let t = |v: &Value| match v {
        Value::Native(n) => match &**n {
            Native::Temporal(t) => Some(t.clone()),
            _ => None,
        },
        _ => None,
    };
    Ok(match (t(l), t(r), op) {
        (Some(Temporal::DateTime(d)), Some(Temporal::Delta(us)), BinOp::Add | BinOp::Sub) => {
            let us = if op == BinOp::Add {
                Some(us)
            } else {
                us.checked_neg()
            };
            Some(Value::native(Native::Temporal(Temporal::DateTime(
                DateTimeValue {
                    naive: moved_by(d.naive, us)?,
                    offset: d.offset,
                },
            ))))
        }
        (Some(Temporal::Delta(us)), Some(Temporal::DateTime(d)), BinOp::Add) => Some(
            Value::native(Native::Temporal(Temporal::DateTime(DateTimeValue {
                naive: moved_by(d.naive, Some(us))?,
                offset: d.offset,
            }))),
        ),
        (Some(Temporal::DateTime(a)), Some(Temporal::DateTime(b)), BinOp::Sub) => {
            if a.offset.is_some() != b.offset.is_some() {
                return Err(type_error(
                    "can't subtract offset-naive and offset-aware datetimes",
                ));
            }
            let d = utc_naive(&a) - utc_naive(&b);
            Some(Value::native(Native::Temporal(Temporal::Delta(
                d.num_microseconds().unwrap_or(i64::MAX),
            ))))
        }
        // A date moves by whole days: Python uses only the timedelta's days.
        (Some(Temporal::Date(d)), Some(Temporal::Delta(us)), BinOp::Add | BinOp::Sub)
        | (Some(Temporal::Delta(us)), Some(Temporal::Date(d)), BinOp::Add) => {
            let days = us.div_euclid(86_400_000_000);
            let days = if op == BinOp::Add { days } else { -days };
            let moved = moved_by(
                d.and_time(chrono::NaiveTime::MIN),
                days.checked_mul(86_400_000_000),
            )?;
            Some(Value::native(Native::Temporal(Temporal::Date(
                moved.date(),
            ))))
        }
        (Some(Temporal::Date(a)), Some(Temporal::Date(b)), BinOp::Sub) => Some(Value::native(
            Native::Temporal(Temporal::Delta((a - b).num_days() * 86_400_000_000)),
        )),
        (Some(Temporal::Delta(a)), Some(Temporal::Delta(b)), BinOp::Add | BinOp::Sub) => {
            let (a, b) = (i128::from(a), i128::from(b));
            Some(delta_value(if op == BinOp::Add { a + b } else { a - b })?)
        }
        (Some(Temporal::Delta(a)), None, BinOp::Mult) => delta_scaled(a, r, false)?,
        (None, Some(Temporal::Delta(b)), BinOp::Mult) => delta_scaled(b, l, false)?,
        (Some(Temporal::Delta(a)), None, BinOp::Div) => delta_scaled(a, r, true)?,
        (Some(Temporal::Delta(a)), Some(Temporal::Delta(b)), BinOp::Div) => {
            if b == 0 {
                return Err(exc("ZeroDivisionError", "division by zero"));
            }
            Some(Value::Float(a as f64 / b as f64))
        }
        (Some(Temporal::Delta(a)), Some(Temporal::Delta(b)), BinOp::FloorDiv | BinOp::Mod) => {
            if b == 0 {
                return Err(exc(
                    "ZeroDivisionError",
                    if op == BinOp::Mod {
                        "integer modulo by zero"
                    } else {
                        "integer division or modulo by zero"
                    },
                ));
            }
            let (q, m) = floor_divmod(a, b);
            Some(if op == BinOp::Mod {
                Value::native(Native::Temporal(Temporal::Delta(m)))
            } else {
                Value::Int(q)
            })
        }
        (Some(Temporal::Delta(a)), None, BinOp::FloorDiv) => match r {
            Value::Int(0) | Value::Bool(false) => {
                return Err(exc(
                    "ZeroDivisionError",
                    "integer division or modulo by zero",
                ))
            }
            Value::Int(_) | Value::Bool(_) => {
                let n = as_number(r).map_or(1, |n| match n {
                    Num::Int(i) => i,
                    Num::Float(_) => 1,
                });
                Some(Value::native(Native::Temporal(Temporal::Delta(
                    floor_divmod(a, n).0,
                ))))
            }
            _ => None,
        },
        _ => None,
    })
}

/// `naive` moved by `us` microseconds, within Python's years 1-9999 (OverflowError, as
/// Python's, outside them; chrono's own range is wider and its `+` panics past it).
fn moved_by(naive: chrono::NaiveDateTime, us: Option<i64>) -> R<chrono::NaiveDateTime> {
    use chrono::Datelike;
    us.and_then(|us| naive.checked_add_signed(chrono::Duration::microseconds(us)))
        .filter(|m| (1..=9999).contains(&m.year()))
        .ok_or_else(|| exc("OverflowError", "date value out of range"))
}

/// `date(year, month, day)` with Python's checks and messages.
fn python_date(year: i64, month: i64, day: i64) -> R<chrono::NaiveDate> {
    if !(1..=9999).contains(&year) {
        return Err(exc("ValueError", format!("year {year} is out of range")));
    }
    if !(1..=12).contains(&month) {
        return Err(exc("ValueError", "month must be in 1..12"));
    }
    i32::try_from(year)
        .ok()
        .zip(u32::try_from(month).ok())
        .zip(u32::try_from(day).ok())
        .and_then(|((y, m), d)| chrono::NaiveDate::from_ymd_opt(y, m, d))
        .ok_or_else(|| exc("ValueError", "day is out of range for month"))
}

/// A timedelta of `us` microseconds: Python's OverflowError beyond its ±999,999,999 days,
/// and a refusal between the reach of 64-bit microseconds (about ±106,751,991 days) and
/// Python's.
fn delta_value(us: i128) -> R<Value> {
    let days = us.div_euclid(86_400_000_000);
    if days.abs() > 999_999_999 {
        return Err(exc(
            "OverflowError",
            format!("days={days}; must have magnitude <= 999999999"),
        ));
    }
    let us = i64::try_from(us).map_err(|_| {
        unsupported(
            "a timedelta beyond 106,751,991 days",
            "ralembic keeps a timedelta in 64-bit microseconds",
        )
    })?;
    Ok(Value::native(Native::Temporal(Temporal::Delta(us))))
}

/// Python's floor division and modulo (the remainder has the divisor's sign).
fn floor_divmod(a: i64, b: i64) -> (i64, i64) {
    let (mut q, mut m) = (a / b, a % b);
    if m != 0 && ((m < 0) != (b < 0)) {
        q -= 1;
        m += b;
    }
    (q, m)
}

/// `timedelta * n` and `timedelta / n`: by an int exactly, by a float rounded half to even
/// to the microsecond, as Python's timedelta rounds.
fn delta_scaled(us: i64, n: &Value, divide: bool) -> R<Option<Value>> {
    let scaled = match (as_number(n), divide) {
        (None, _) => return Ok(None),
        (Some(Num::Int(0)), true) => {
            return Err(exc(
                "ZeroDivisionError",
                "integer division or modulo by zero",
            ))
        }
        (Some(Num::Int(k)), false) => {
            return delta_value(i128::from(us) * i128::from(k)).map(Some);
        }
        (Some(Num::Int(k)), true) => {
            // Exactly, half to even.
            let (q, r) = floor_divmod(us, k);
            let twice = i128::from(r) * 2;
            let k = i128::from(k);
            let up = if k > 0 {
                twice > k || (twice == k && q % 2 != 0)
            } else {
                twice < k || (twice == k && q % 2 != 0)
            };
            q + i64::from(up)
        }
        (Some(Num::Float(f)), divide) => {
            // Python scales by the float's exact ratio.
            if !f.is_finite() {
                return Err(exc(
                    "OverflowError",
                    format!(
                        "cannot convert {} to integer ratio",
                        if f.is_nan() { "NaN" } else { "Infinity" }
                    ),
                ));
            }
            if divide && f == 0.0 {
                return Err(exc(
                    "ZeroDivisionError",
                    "integer division or modulo by zero",
                ));
            }
            let x = if divide { us as f64 / f } else { us as f64 * f };
            builtins::float_to_int(builtins::round_half_even(x))?
        }
    };
    Ok(Some(Value::native(Native::Temporal(Temporal::Delta(
        scaled,
    )))))
}

// ----- inspector -------------------------------------------------------------------------------

fn query_rows(interp: &mut Interp<'_>, sql: &str, params: &[Literal]) -> R<Vec<Vec<Literal>>> {
    if interp.host.is_offline() {
        return Err(unsupported(
            "inspecting the database in --sql mode",
            "offline mode has no database to read",
        ));
    }
    interp.settle()?;
    interp
        .host
        .query(sql, params)
        .map(|o| o.rows)
        .map_err(|e| exc(&e.class, e.message))
}

fn lit_str(l: &Literal) -> String {
    match l {
        Literal::Str(s) => s.clone(),
        Literal::None => String::new(),
        other => sql::literal_sql(other),
    }
}

fn lit_int(l: &Literal) -> i64 {
    match l {
        Literal::Int(i) => *i,
        _ => 0,
    }
}

fn inspector_call(
    interp: &mut Interp<'_>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    let b = bind(name, &["table_name", "schema", "**"], args, kwargs)?;
    if b.opt_str(1)?.is_some() {
        return Err(unsupported(
            "inspecting another schema",
            "SQLite attached schemas are not modelled",
        ));
    }
    let table = || -> R<String> { to_str(b.req(0, name, "table_name")?) };
    let ensure_table = |interp: &mut Interp<'_>, t: &str| -> R<()> {
        let rows = query_rows(
            interp,
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?",
            &[Literal::Str(t.to_string())],
        )?;
        if rows.is_empty() {
            return Err(exc("sqlalchemy.exc.NoSuchTableError", t.to_string()));
        }
        Ok(())
    };
    let s = |x: &str| Value::str(x);
    Ok(match name {
        "get_table_names" | "get_view_names" => {
            let kind = if name == "get_table_names" {
                "table"
            } else {
                "view"
            };
            let rows = query_rows(
                interp,
                &format!("SELECT name FROM sqlite_master WHERE type='{kind}' AND name NOT LIKE 'sqlite~_%' ESCAPE '~' ORDER BY name"),
                &[],
            )?;
            Value::list(rows.iter().map(|r| s(&lit_str(&r[0]))).collect())
        }
        "has_table" => {
            let t = table()?;
            let rows = query_rows(
                interp,
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?",
                &[Literal::Str(t)],
            )?;
            Value::Bool(!rows.is_empty())
        }
        "get_columns" => {
            let t = table()?;
            ensure_table(interp, &t)?;
            // table_xinfo, as SQLAlchemy reads it: generated columns are hidden from
            // table_info (hidden 1 is a virtual table's hidden column, skipped).
            let rows = query_rows(
                interp,
                "SELECT name, type, \"notnull\", dflt_value, pk, hidden \
                 FROM pragma_table_xinfo(?) WHERE hidden != 1",
                &[Literal::Str(t.clone())],
            )?;
            let body = if rows.iter().any(|r| lit_int(&r[5]) >= 2) {
                let sql = query_rows(
                    interp,
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                    &[Literal::Str(t)],
                )?;
                let sql = sql.first().map(|r| lit_str(&r[0])).unwrap_or_default();
                crate::alembic_compat::ddl::reflect::table_body(&sql)
            } else {
                String::new()
            };
            Value::list(
                rows.iter()
                    .map(|r| {
                        use crate::alembic_compat::ddl::reflect::{
                            generated_sqltext, generated_type,
                        };
                        let hidden = lit_int(&r[5]);
                        let ty = if hidden >= 2 {
                            generated_type(&lit_str(&r[1]))
                        } else {
                            lit_str(&r[1])
                        };
                        let mut items = vec![
                            (s("name"), s(&lit_str(&r[0]))),
                            (
                                s("type"),
                                Value::native(Native::Type(Box::new(reflected_type(&ty)))),
                            ),
                            (s("nullable"), Value::Bool(lit_int(&r[2]) == 0)),
                            (
                                s("default"),
                                match &r[3] {
                                    Literal::None => Value::None,
                                    other => s(&lit_str(other)),
                                },
                            ),
                            (s("primary_key"), Value::Int(lit_int(&r[4]))),
                        ];
                        if hidden >= 2 {
                            let name = lit_str(&r[0]);
                            items.push((
                                s("computed"),
                                Value::dict(vec![
                                    (s("sqltext"), s(&generated_sqltext(&name, &body))),
                                    (s("persisted"), Value::Bool(hidden == 3)),
                                ]),
                            ));
                        }
                        Value::dict(items)
                    })
                    .collect(),
            )
        }
        "get_pk_constraint" => {
            let t = table()?;
            ensure_table(interp, &t)?;
            let rows = query_rows(
                interp,
                "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk",
                &[Literal::Str(t)],
            )?;
            Value::dict(vec![
                (
                    s("constrained_columns"),
                    Value::list(rows.iter().map(|r| s(&lit_str(&r[0]))).collect()),
                ),
                (s("name"), Value::None),
            ])
        }
        "get_indexes" | "get_unique_constraints" => {
            let t = table()?;
            ensure_table(interp, &t)?;
            let list = query_rows(
                interp,
                "SELECT name, \"unique\", origin FROM pragma_index_list(?)",
                &[Literal::Str(t.clone())],
            )?;
            let mut out = Vec::new();
            for r in &list {
                let iname = lit_str(&r[0]);
                let origin = lit_str(&r[2]);
                let want = if name == "get_indexes" {
                    !iname.starts_with("sqlite_autoindex")
                } else {
                    origin == "u"
                };
                if !want {
                    continue;
                }
                let cols = query_rows(
                    interp,
                    "SELECT name FROM pragma_index_info(?) ORDER BY seqno",
                    &[Literal::Str(iname.clone())],
                )?;
                let column_names = Value::list(
                    cols.iter()
                        .map(|c| match &c[0] {
                            Literal::None => Value::None,
                            other => s(&lit_str(other)),
                        })
                        .collect(),
                );
                if name == "get_indexes" {
                    out.push(Value::dict(vec![
                        (s("name"), s(&iname)),
                        (s("column_names"), column_names),
                        (s("unique"), Value::Bool(lit_int(&r[1]) != 0)),
                        (s("dialect_options"), Value::dict(Vec::new())),
                    ]));
                } else {
                    out.push(Value::dict(vec![
                        (s("name"), Value::None),
                        (s("column_names"), column_names),
                    ]));
                }
            }
            if name == "get_indexes" {
                let mut items = out;
                items.sort_by_key(|d| match d {
                    Value::Dict(d) => d
                        .borrow()
                        .get(&Value::str("name"))
                        .map(str_of)
                        .unwrap_or_default(),
                    _ => String::new(),
                });
                Value::list(items)
            } else {
                Value::list(out)
            }
        }
        "get_foreign_keys" => {
            let t = table()?;
            ensure_table(interp, &t)?;
            let rows = query_rows(interp, "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq", &[Literal::Str(t)])?;
            let mut out: Vec<FkRows> = Vec::new();
            for r in rows {
                let id = lit_int(&r[0]);
                if out.last().map(|o| o.0) != Some(id) {
                    out.push((
                        id,
                        Vec::new(),
                        Vec::new(),
                        lit_str(&r[1]),
                        lit_str(&r[4]),
                        lit_str(&r[5]),
                    ));
                }
                if let Some(last) = out.last_mut() {
                    last.1.push(s(&lit_str(&r[2])));
                    last.2.push(match &r[3] {
                        Literal::None => Value::None,
                        other => s(&lit_str(other)),
                    });
                }
            }
            Value::list(
                out.into_iter()
                    .map(|(_, local, remote, referred, onupdate, ondelete)| {
                        let mut options = Vec::new();
                        if onupdate != "NO ACTION" {
                            options.push((s("onupdate"), s(&onupdate)));
                        }
                        if ondelete != "NO ACTION" {
                            options.push((s("ondelete"), s(&ondelete)));
                        }
                        Value::dict(vec![
                            (s("name"), Value::None),
                            (s("constrained_columns"), Value::list(local)),
                            (s("referred_schema"), Value::None),
                            (s("referred_table"), s(&referred)),
                            (s("referred_columns"), Value::list(remote)),
                            (s("options"), Value::dict(options)),
                        ])
                    })
                    .collect(),
            )
        }
        "get_check_constraints" => {
            let t = table()?;
            ensure_table(interp, &t)?;
            let rows = query_rows(
                interp,
                "SELECT sql FROM sqlite_master WHERE type='table' AND name = ?",
                &[Literal::Str(t)],
            )?;
            let sql_text = rows.first().map(|r| lit_str(&r[0])).unwrap_or_default();
            Value::list(
                parse_checks(&sql_text)
                    .into_iter()
                    .map(|(n, text)| {
                        Value::dict(vec![
                            (s("sqltext"), s(&text)),
                            (s("name"), n.map(|x| s(&x)).unwrap_or(Value::None)),
                        ])
                    })
                    .collect(),
            )
        }
        "get_schema_names" => Value::list(vec![s("main")]),
        "get_sorted_table_and_fkc_names" | "get_temp_table_names" | "get_multi_columns" => {
            return Err(unsupported(format!("`Inspector.{name}()`"), "not modelled"))
        }
        _ => {
            return Err(exc(
                "AttributeError",
                format!("'Inspector' object has no attribute '{name}'"),
            ))
        }
    })
}

/// One foreign key from PRAGMA foreign_key_list: id, local and remote columns, referred
/// table, ON UPDATE, ON DELETE.
type FkRows = (i64, Vec<Value>, Vec<Value>, String, String, String);

fn reflected_type(declared: &str) -> TypeSpec {
    let upper = declared.to_ascii_uppercase();
    let (base, args) = match upper.split_once('(') {
        Some((b, rest)) => (
            b.trim().to_string(),
            rest.trim_end_matches(')')
                .split(',')
                .filter_map(|a| a.trim().parse::<i64>().ok())
                .map(Literal::Int)
                .collect(),
        ),
        None => (upper.trim().to_string(), Vec::new()),
    };
    TypeSpec {
        dialect: Some("sqlite".into()),
        name: if base.is_empty() {
            "NullType".into()
        } else {
            base
        },
        args,
        kwargs: Vec::new(),
        custom: None,
    }
}

/// `CHECK (...)` clauses of a CREATE TABLE text, with their CONSTRAINT names.
fn parse_checks(sql: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let upper = sql.to_ascii_uppercase();
    let mut search = 0;
    while let Some(i) = upper[search..].find("CHECK") {
        let at = search + i;
        let Some(open) = sql[at..].find('(').map(|o| at + o) else {
            break;
        };
        let mut depth = 0;
        let mut end = open;
        for (j, c) in sql[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let before = sql[..at].trim_end();
        let name = before
            .rsplit_once(|c: char| c.is_whitespace())
            .filter(|(pre, _)| pre.trim_end().to_ascii_uppercase().ends_with("CONSTRAINT"))
            .map(|(_, n)| n.trim_matches('"').to_string());
        out.push((name, sql[open + 1..end].to_string()));
        search = end.max(at + 5);
    }
    out
}

// ----- datetime --------------------------------------------------------------------------------

fn utc_naive(d: &DateTimeValue) -> chrono::NaiveDateTime {
    d.naive - chrono::Duration::seconds(i64::from(d.offset.unwrap_or(0)))
}

fn temporal_cmp(a: &Temporal, b: &Temporal) -> Option<Ordering> {
    match (a, b) {
        (Temporal::DateTime(x), Temporal::DateTime(y)) => {
            if x.offset.is_some() != y.offset.is_some() {
                return None;
            }
            Some(utc_naive(x).cmp(&utc_naive(y)))
        }
        (Temporal::Date(x), Temporal::Date(y)) => Some(x.cmp(y)),
        (Temporal::Time(x), Temporal::Time(y)) => Some(x.cmp(y)),
        (Temporal::Delta(x), Temporal::Delta(y)) => Some(x.cmp(y)),
        (Temporal::Zone(x), Temporal::Zone(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn offset_text(secs: i32, colon: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    if colon {
        format!("{sign}{:02}:{:02}", a / 3600, (a / 60) % 60)
    } else {
        format!("{sign}{:02}{:02}", a / 3600, (a / 60) % 60)
    }
}

fn iso(d: &DateTimeValue, sep: char) -> String {
    let base = if d.naive.and_utc().timestamp_subsec_micros() == 0 {
        d.naive
            .format(&format!("%Y-%m-%d{sep}%H:%M:%S"))
            .to_string()
    } else {
        d.naive
            .format(&format!("%Y-%m-%d{sep}%H:%M:%S%.6f"))
            .to_string()
    };
    match d.offset {
        Some(o) => format!("{base}{}", offset_text(o, true)),
        None => base,
    }
}

fn temporal_str(t: &Temporal) -> String {
    match t {
        Temporal::DateTime(d) => iso(d, ' '),
        Temporal::Date(d) => d.format("%Y-%m-%d").to_string(),
        Temporal::Time(t) => time_iso(t),
        Temporal::Delta(us) => {
            let days = us.div_euclid(86_400_000_000);
            let rest = us.rem_euclid(86_400_000_000);
            let secs = rest / 1_000_000;
            let micros = rest % 1_000_000;
            let hms = format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60);
            let hms = if micros != 0 {
                format!("{hms}.{micros:06}")
            } else {
                hms
            };
            match days {
                0 => hms,
                1 | -1 => format!("{days} day, {hms}"),
                _ => format!("{days} days, {hms}"),
            }
        }
        Temporal::Zone(0) => "UTC".into(),
        Temporal::Zone(o) => format!("UTC{}", offset_text(*o, true)),
    }
}

fn temporal_repr(t: &Temporal) -> String {
    match t {
        Temporal::DateTime(d) => {
            let n = d.naive;
            use chrono::{Datelike, Timelike};
            let mut parts = vec![
                n.year().to_string(),
                n.month().to_string(),
                n.day().to_string(),
                n.hour().to_string(),
                n.minute().to_string(),
            ];
            let micro = n.and_utc().timestamp_subsec_micros();
            if n.second() != 0 || micro != 0 {
                parts.push(n.second().to_string());
            }
            if micro != 0 {
                parts.push(micro.to_string());
            }
            let tz = match d.offset {
                Some(o) => format!(", tzinfo={}", temporal_repr(&Temporal::Zone(o))),
                None => String::new(),
            };
            format!("datetime.datetime({}{tz})", parts.join(", "))
        }
        Temporal::Date(d) => {
            use chrono::Datelike;
            format!("datetime.date({}, {}, {})", d.year(), d.month(), d.day())
        }
        Temporal::Time(t) => {
            use chrono::Timelike;
            let micro = t.nanosecond() / 1000;
            let mut parts = vec![t.hour().to_string(), t.minute().to_string()];
            if t.second() != 0 || micro != 0 {
                parts.push(t.second().to_string());
            }
            if micro != 0 {
                parts.push(micro.to_string());
            }
            format!("datetime.time({})", parts.join(", "))
        }
        // Python normalises to days (any sign), then seconds and microseconds (both >= 0).
        Temporal::Delta(us) => {
            let days = us.div_euclid(86_400_000_000);
            let rest = us.rem_euclid(86_400_000_000);
            let fields: Vec<String> = [
                ("days", days),
                ("seconds", rest / 1_000_000),
                ("microseconds", rest % 1_000_000),
            ]
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
            if fields.is_empty() {
                "datetime.timedelta(0)".into()
            } else {
                format!("datetime.timedelta({})", fields.join(", "))
            }
        }
        Temporal::Zone(0) => "datetime.timezone.utc".into(),
        Temporal::Zone(o) => format!(
            "datetime.timezone({})",
            temporal_repr(&Temporal::Delta(i64::from(*o) * 1_000_000))
        ),
    }
}

/// How SQLAlchemy's SQLite DateTime/Date types store a value.
fn temporal_sql(t: &Temporal) -> String {
    match t {
        Temporal::DateTime(d) => d.naive.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        Temporal::Date(d) => d.format("%Y-%m-%d").to_string(),
        Temporal::Time(t) => t.format("%H:%M:%S%.6f").to_string(),
        other => temporal_str(other),
    }
}

/// `strftime` as CPython on glibc formats in the C locale: each directive in place, `%f`
/// the microseconds, `%z`/`%Z` the offset and zone name (empty when naive), and an unknown
/// directive (or a lone `%` at the end) copied as it stands.
fn strftime(d: &DateTimeValue, fmt: &str) -> String {
    use std::fmt::Write;
    // Directives chrono formats as glibc does; one at a time, so none can fail.
    const SAME: &str = "aAwdbBmyYHIpMSjUWcxXeGVuCDFTRhklPrnt";
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('%'),
            Some('%') => out.push('%'),
            Some('f') => {
                let _ = write!(out, "{:06}", d.naive.and_utc().timestamp_subsec_micros());
            }
            Some('z') => {
                if let Some(o) = d.offset {
                    out.push_str(&offset_text(o, false));
                }
            }
            Some('Z') => {
                if let Some(o) = d.offset {
                    out.push_str(&temporal_str(&Temporal::Zone(o)));
                }
            }
            Some(x) if SAME.contains(x) => {
                let mut spec = [0u8; 4];
                let spec = format!("%{}", x.encode_utf8(&mut spec));
                let _ = write!(out, "{}", d.naive.format(&spec));
            }
            Some(x) => {
                out.push('%');
                out.push(x);
            }
        }
    }
    out
}

fn temporal_attr(this: &Rc<Native>, t: &Temporal, attr: &str) -> Option<Value> {
    use chrono::{Datelike, Timelike};
    let int = |i: i64| Some(Value::Int(i));
    match (t, attr) {
        (Temporal::DateTime(d), "year") => int(i64::from(d.naive.year())),
        (Temporal::DateTime(d), "month") => int(i64::from(d.naive.month())),
        (Temporal::DateTime(d), "day") => int(i64::from(d.naive.day())),
        (Temporal::DateTime(d), "hour") => int(i64::from(d.naive.hour())),
        (Temporal::DateTime(d), "minute") => int(i64::from(d.naive.minute())),
        (Temporal::DateTime(d), "second") => int(i64::from(d.naive.second())),
        (Temporal::DateTime(d), "microsecond") => {
            int(i64::from(d.naive.and_utc().timestamp_subsec_micros()))
        }
        (Temporal::DateTime(d), "tzinfo") => Some(match d.offset {
            Some(o) => Value::native(Native::Temporal(Temporal::Zone(o))),
            None => Value::None,
        }),
        (Temporal::Time(t), "hour") => int(i64::from(t.hour())),
        (Temporal::Time(t), "minute") => int(i64::from(t.minute())),
        (Temporal::Time(t), "second") => int(i64::from(t.second())),
        (Temporal::Time(t), "microsecond") => int(i64::from(t.nanosecond() / 1000)),
        (Temporal::Time(_), "tzinfo") => Some(Value::None),
        (Temporal::Time(_), "isoformat" | "strftime" | "replace") => Some(bound(this, attr)),
        (Temporal::Date(d), "year") => int(i64::from(d.year())),
        (Temporal::Date(d), "month") => int(i64::from(d.month())),
        (Temporal::Date(d), "day") => int(i64::from(d.day())),
        (Temporal::Delta(us), "days") => int(us.div_euclid(86_400_000_000)),
        (Temporal::Delta(us), "seconds") => int(us.rem_euclid(86_400_000_000) / 1_000_000),
        (Temporal::Delta(us), "microseconds") => int(us.rem_euclid(1_000_000)),
        (Temporal::DateTime(_), _) if DATETIME_METHODS.contains(&attr) => Some(bound(this, attr)),
        (Temporal::Date(_), "isoformat" | "strftime" | "weekday" | "isoweekday" | "replace")
        | (Temporal::Delta(_), "total_seconds") => Some(bound(this, attr)),
        _ => None,
    }
}

/// Attributes Python's date, time, datetime and timedelta have that ralembic leaves out:
/// refused where used, never an AttributeError a body's `except` could take for Python's.
fn unmodelled_temporal_attr(attr: &str) -> bool {
    matches!(
        attr,
        "toordinal"
            | "ctime"
            | "timetuple"
            | "utctimetuple"
            | "isocalendar"
            | "dst"
            | "fold"
            | "timetz"
            | "resolution"
            | "min"
            | "max"
    )
}

/// An integer argument of a `datetime` constructor or `replace()`, or `default` when absent.
fn int_arg(v: Option<&Value>, default: i64) -> R<i64> {
    match v {
        None => Ok(default),
        Some(v) => match as_number(v) {
            Some(Num::Int(i)) => Ok(i),
            _ => Err(type_error("an integer is required")),
        },
    }
}

/// `time.isoformat()` and `str(time)`: seconds always, microseconds when there are any.
fn time_iso(t: &chrono::NaiveTime) -> String {
    use chrono::Timelike;
    if t.nanosecond() / 1000 == 0 {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%H:%M:%S%.6f").to_string()
    }
}

/// A time of day from its fields, refused with Python's messages when one is out of range.
fn clock(hour: i64, minute: i64, second: i64, micro: i64) -> R<chrono::NaiveTime> {
    for (value, top, what) in [
        (hour, 23, "hour must be in 0..23"),
        (minute, 59, "minute must be in 0..59"),
        (second, 59, "second must be in 0..59"),
        (micro, 999_999, "microsecond must be in 0..999999"),
    ] {
        if !(0..=top).contains(&value) {
            return Err(exc("ValueError", what));
        }
    }
    let field = |v: i64| u32::try_from(v).unwrap_or(0);
    chrono::NaiveTime::from_hms_micro_opt(field(hour), field(minute), field(second), field(micro))
        .ok_or_else(|| exc("ValueError", "time out of range"))
}

fn tz_of(v: &Value) -> R<Option<i32>> {
    match v {
        Value::None => Ok(None),
        Value::Native(n) => match &**n {
            Native::Temporal(Temporal::Zone(o)) => Ok(Some(*o)),
            _ => Err(type_error(
                "tzinfo argument must be None or of a tzinfo subclass",
            )),
        },
        _ => Err(type_error(
            "tzinfo argument must be None or of a tzinfo subclass",
        )),
    }
}

fn local_offset(naive_utc: chrono::NaiveDateTime) -> i32 {
    chrono::Local
        .offset_from_utc_datetime(&naive_utc)
        .local_minus_utc()
}

use chrono::{Offset, TimeZone};

fn temporal_method(
    t: &Temporal,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    use chrono::{Datelike, Timelike};
    let dt = |d: DateTimeValue| Value::native(Native::Temporal(Temporal::DateTime(d)));
    match (t, name) {
        (Temporal::DateTime(d), "replace") => {
            let b = bind(
                "replace",
                &[
                    "year",
                    "month",
                    "day",
                    "hour",
                    "minute",
                    "second",
                    "microsecond",
                    "tzinfo",
                ],
                args,
                kwargs,
            )?;
            let get = |i: usize, cur: i64| int_arg(b.get(i), cur);
            let n = d.naive;
            let date = python_date(
                get(0, i64::from(n.year()))?,
                get(1, i64::from(n.month()))?,
                get(2, i64::from(n.day()))?,
            )?;
            let time = chrono::NaiveTime::from_hms_micro_opt(
                u32::try_from(get(3, i64::from(n.hour()))?).unwrap_or(99),
                u32::try_from(get(4, i64::from(n.minute()))?).unwrap_or(99),
                u32::try_from(get(5, i64::from(n.second()))?).unwrap_or(99),
                u32::try_from(get(6, i64::from(n.and_utc().timestamp_subsec_micros()))?)
                    .unwrap_or(u32::MAX),
            )
            .ok_or_else(|| exc("ValueError", "time component out of range"))?;
            let offset = match b.get(7) {
                Some(v) => tz_of(v)?,
                None => d.offset,
            };
            Ok(dt(DateTimeValue {
                naive: date.and_time(time),
                offset,
            }))
        }
        (Temporal::DateTime(d), "astimezone") => {
            let target = match args
                .first()
                .or(kwargs.iter().find(|(k, _)| k == "tz").map(|(_, v)| v))
            {
                Some(v) => tz_of(v)?,
                None => None,
            };
            let utc = match d.offset {
                Some(_) => utc_naive(d),
                None => d.naive - chrono::Duration::seconds(i64::from(local_offset_naive(d.naive))),
            };
            let off = target.unwrap_or_else(|| local_offset(utc));
            Ok(dt(DateTimeValue {
                naive: utc + chrono::Duration::seconds(i64::from(off)),
                offset: Some(off),
            }))
        }
        (Temporal::DateTime(d), "timestamp") => {
            let utc = match d.offset {
                Some(_) => utc_naive(d),
                None => d.naive - chrono::Duration::seconds(i64::from(local_offset_naive(d.naive))),
            };
            let us = utc.and_utc().timestamp_micros();
            Ok(Value::Float(us as f64 / 1e6))
        }
        (Temporal::DateTime(d), "isoformat") => {
            let b = bind("isoformat", &["sep", "timespec"], args, kwargs)?;
            let sep = match b.get(0) {
                Some(Value::Str(s)) => s.chars().next().unwrap_or('T'),
                _ => 'T',
            };
            match b.get(1) {
                None => Ok(Value::str(iso(d, sep))),
                Some(spec) => {
                    let spec = to_str(spec)?;
                    let clock = match spec.as_str() {
                        "auto" => return Ok(Value::str(iso(d, sep))),
                        "hours" => "%H",
                        "minutes" => "%H:%M",
                        "seconds" => "%H:%M:%S",
                        "milliseconds" => "%H:%M:%S%.3f",
                        "microseconds" => "%H:%M:%S%.6f",
                        _ => return Err(exc("ValueError", "Unknown timespec value")),
                    };
                    let mut out = d.naive.format(&format!("%Y-%m-%d{sep}{clock}")).to_string();
                    if let Some(o) = d.offset {
                        out.push_str(&offset_text(o, true));
                    }
                    Ok(Value::str(out))
                }
            }
        }
        (Temporal::DateTime(d), "strftime") => Ok(Value::str(strftime(
            d,
            &to_str(args.first().unwrap_or(&Value::None))?,
        ))),
        (Temporal::DateTime(d), "date") => Ok(Value::native(Native::Temporal(Temporal::Date(
            d.naive.date(),
        )))),
        (Temporal::DateTime(d), "time") => Ok(Value::native(Native::Temporal(Temporal::Time(
            d.naive.time(),
        )))),
        (Temporal::DateTime(d), "utcoffset") => Ok(match d.offset {
            Some(o) => Value::native(Native::Temporal(Temporal::Delta(i64::from(o) * 1_000_000))),
            None => Value::None,
        }),
        (Temporal::Date(d), "isoformat") => Ok(Value::str(d.format("%Y-%m-%d").to_string())),
        // Monday is 0 (isoweekday: 1).
        (Temporal::Date(d), "weekday") => {
            Ok(Value::Int(i64::from(d.weekday().num_days_from_monday())))
        }
        (Temporal::Date(d), "isoweekday") => {
            Ok(Value::Int(i64::from(d.weekday().number_from_monday())))
        }
        (Temporal::DateTime(d), "weekday") => Ok(Value::Int(i64::from(
            d.naive.weekday().num_days_from_monday(),
        ))),
        (Temporal::DateTime(d), "isoweekday") => Ok(Value::Int(i64::from(
            d.naive.weekday().number_from_monday(),
        ))),
        // Python formats a date's time fields as midnight.
        (Temporal::Date(d), "strftime") => Ok(Value::str(strftime(
            &DateTimeValue {
                naive: d.and_time(chrono::NaiveTime::MIN),
                offset: None,
            },
            &to_str(args.first().unwrap_or(&Value::None))?,
        ))),
        (Temporal::Date(d), "replace") => {
            let b = bind("replace", &["year", "month", "day"], args, kwargs)?;
            let get = |i: usize, cur: i64| int_arg(b.get(i), cur);
            let moved = chrono::NaiveDate::from_ymd_opt(
                i32::try_from(get(0, i64::from(d.year()))?).unwrap_or(0),
                u32::try_from(get(1, i64::from(d.month()))?).unwrap_or(0),
                u32::try_from(get(2, i64::from(d.day()))?).unwrap_or(0),
            )
            .ok_or_else(|| exc("ValueError", "day is out of range for month"))?;
            Ok(Value::native(Native::Temporal(Temporal::Date(moved))))
        }
        (Temporal::DateTime(d), "tzname") => Ok(match d.offset {
            Some(o) => Value::str(temporal_str(&Temporal::Zone(o))),
            None => Value::None,
        }),
        (Temporal::Time(t), "isoformat") => Ok(Value::str(time_iso(t))),
        (Temporal::Time(t), "strftime") => Ok(Value::str(strftime(
            // Python formats a time's date fields as 1900-01-01.
            &DateTimeValue {
                naive: chrono::NaiveDate::from_ymd_opt(1900, 1, 1)
                    .unwrap_or_default()
                    .and_time(*t),
                offset: None,
            },
            &to_str(args.first().unwrap_or(&Value::None))?,
        ))),
        (Temporal::Time(t), "replace") => {
            let b = bind(
                "replace",
                &["hour", "minute", "second", "microsecond", "tzinfo"],
                args,
                kwargs,
            )?;
            let field = |i: usize, cur: u32| int_arg(b.get(i), i64::from(cur));
            if b.get(4).is_some_and(|v| !matches!(v, Value::None)) {
                return Err(unsupported(
                    "a `datetime.time` with a tzinfo",
                    "not modelled",
                ));
            }
            Ok(Value::native(Native::Temporal(Temporal::Time(clock(
                field(0, t.hour())?,
                field(1, t.minute())?,
                field(2, t.second())?,
                field(3, t.nanosecond() / 1000)?,
            )?))))
        }
        (Temporal::Delta(us), "total_seconds") => Ok(Value::Float(*us as f64 / 1e6)),
        _ => Err(exc("AttributeError", name.to_string())),
    }
}

fn local_offset_naive(naive_local: chrono::NaiveDateTime) -> i32 {
    chrono::Local
        .offset_from_local_datetime(&naive_local)
        .earliest()
        .map(|o| o.fix().local_minus_utc())
        .unwrap_or(0)
}

fn datetime_call(f: &str, args: Vec<Value>, kwargs: Vec<(String, Value)>) -> R<Value> {
    let dt = |d: DateTimeValue| Value::native(Native::Temporal(Temporal::DateTime(d)));
    let int = int_arg;
    match f {
        "datetime.datetime" | "datetime.date" => {
            let b = bind(
                f,
                &[
                    "year",
                    "month",
                    "day",
                    "hour",
                    "minute",
                    "second",
                    "microsecond",
                    "tzinfo",
                ],
                args,
                kwargs,
            )?;
            let date = python_date(int(b.get(0), 1)?, int(b.get(1), 1)?, int(b.get(2), 1)?)?;
            if f == "datetime.date" {
                return Ok(Value::native(Native::Temporal(Temporal::Date(date))));
            }
            let time = chrono::NaiveTime::from_hms_micro_opt(
                u32::try_from(int(b.get(3), 0)?).unwrap_or(99),
                u32::try_from(int(b.get(4), 0)?).unwrap_or(99),
                u32::try_from(int(b.get(5), 0)?).unwrap_or(99),
                u32::try_from(int(b.get(6), 0)?).unwrap_or(u32::MAX),
            )
            .ok_or_else(|| exc("ValueError", "hour must be in 0..23"))?;
            Ok(dt(DateTimeValue {
                naive: date.and_time(time),
                offset: match b.get(7) {
                    Some(v) => tz_of(v)?,
                    None => None,
                },
            }))
        }
        "datetime.time" => {
            let b = bind(
                f,
                &["hour", "minute", "second", "microsecond", "tzinfo", "fold"],
                args,
                kwargs,
            )?;
            if b.get(4).is_some_and(|v| !matches!(v, Value::None)) {
                return Err(unsupported(
                    "a `datetime.time` with a tzinfo",
                    "not modelled",
                ));
            }
            Ok(Value::native(Native::Temporal(Temporal::Time(clock(
                int(b.get(0), 0)?,
                int(b.get(1), 0)?,
                int(b.get(2), 0)?,
                int(b.get(3), 0)?,
            )?))))
        }
        "datetime.time.fromisoformat" => {
            let s = to_str(args.first().unwrap_or(&Value::None))?;
            parse_iso_time(&s)
                .map(|t| Value::native(Native::Temporal(Temporal::Time(t))))
                .ok_or_else(|| {
                    exc(
                        "ValueError",
                        format!("Invalid isoformat string: {}", builtins::str_repr(&s)),
                    )
                })
        }
        "datetime.datetime.combine" => {
            let b = bind(f, &["date", "time", "tzinfo"], args, kwargs)?;
            let date = match b.get(0) {
                Some(Value::Native(n)) => match &**n {
                    Native::Temporal(Temporal::Date(d)) => *d,
                    Native::Temporal(Temporal::DateTime(d)) => d.naive.date(),
                    _ => return Err(type_error("combine() argument 1 must be datetime.date")),
                },
                _ => return Err(type_error("combine() argument 1 must be datetime.date")),
            };
            let time = match b.get(1) {
                Some(Value::Native(n)) => match &**n {
                    Native::Temporal(Temporal::Time(t)) => *t,
                    _ => return Err(type_error("combine() argument 2 must be datetime.time")),
                },
                _ => return Err(type_error("combine() argument 2 must be datetime.time")),
            };
            Ok(dt(DateTimeValue {
                naive: date.and_time(time),
                offset: match b.get(2) {
                    Some(v) => tz_of(v)?,
                    None => None,
                },
            }))
        }
        "datetime.timedelta" => {
            let b = bind(
                f,
                &[
                    "days",
                    "seconds",
                    "microseconds",
                    "milliseconds",
                    "minutes",
                    "hours",
                    "weeks",
                ],
                args,
                kwargs,
            )?;
            // CPython's order and factors (`delta_new`): the components' whole parts are
            // added exactly, their fractions in a float, rounded half to even at the end.
            const PARTS: [(usize, &str, i128); 7] = [
                (2, "microseconds", 1),
                (3, "milliseconds", 1_000),
                (1, "seconds", 1_000_000),
                (4, "minutes", 60_000_000),
                (5, "hours", 3_600_000_000),
                (0, "days", 86_400_000_000),
                (6, "weeks", 604_800_000_000),
            ];
            let mut us: i128 = 0;
            let mut leftover = 0.0_f64;
            for (i, name, factor) in PARTS {
                let Some(v) = b.get(i) else { continue };
                match as_number(v) {
                    Some(Num::Int(n)) => us += i128::from(n) * factor,
                    Some(Num::Float(f)) => {
                        let whole = builtins::float_to_int(f.trunc())?;
                        us += i128::from(whole) * factor;
                        let scaled = f.fract() * factor as f64;
                        us += i128::from(builtins::float_to_int(scaled.trunc())?);
                        leftover += scaled.fract();
                    }
                    None => {
                        return Err(type_error(format!(
                            "unsupported type for timedelta {name} component: {}",
                            v.type_name()
                        )))
                    }
                }
            }
            if leftover != 0.0 {
                let mut whole = leftover.round();
                if (whole - leftover).abs() == 0.5 {
                    let odd = (us & 1) as f64;
                    whole = 2.0 * ((leftover + odd) * 0.5).round() - odd;
                }
                us += i128::from(builtins::float_to_int(whole)?);
            }
            delta_value(us)
        }
        "datetime.timezone" => {
            let off = match args.first() {
                Some(Value::Native(n)) => match &**n {
                    Native::Temporal(Temporal::Delta(us)) => {
                        i32::try_from(us / 1_000_000).unwrap_or(0)
                    }
                    _ => {
                        return Err(type_error(
                            "timezone() argument 1 must be datetime.timedelta",
                        ))
                    }
                },
                _ => {
                    return Err(type_error(
                        "timezone() argument 1 must be datetime.timedelta",
                    ))
                }
            };
            Ok(Value::native(Native::Temporal(Temporal::Zone(off))))
        }
        "datetime.datetime.now" | "datetime.datetime.utcnow" | "datetime.datetime.today" => {
            let now = chrono::Utc::now().naive_utc();
            let tz = tz_argument(&args, 0, &kwargs)?;
            Ok(dt(from_utc(now, tz, f == "datetime.datetime.utcnow")))
        }
        "datetime.date.today" => Ok(Value::native(Native::Temporal(Temporal::Date(
            chrono::Local::now().date_naive(),
        )))),
        "datetime.datetime.fromisoformat" | "datetime.date.fromisoformat" => {
            let s = to_str(args.first().unwrap_or(&Value::None))?;
            let invalid = || {
                exc(
                    "ValueError",
                    format!("Invalid isoformat string: {}", builtins::str_repr(&s)),
                )
            };
            if f == "datetime.date.fromisoformat" {
                return parse_iso_date(s.as_bytes())
                    .map(|d| Value::native(Native::Temporal(Temporal::Date(d))))
                    .ok_or_else(invalid);
            }
            parse_isoformat(&s).map(dt).ok_or_else(invalid)
        }
        "datetime.datetime.fromtimestamp" | "datetime.datetime.utcfromtimestamp" => {
            let ts = as_number(args.first().unwrap_or(&Value::None))
                .ok_or_else(|| type_error("an integer or float is required"))?
                .as_f64();
            // Past year 9999 Python's own checks answer, after the C library's: a time_t
            // overflow, then gmtime's EOVERFLOW past a 32-bit year, then the year's range.
            if ts.is_nan() {
                return Err(exc("ValueError", "Invalid value NaN (not a number)"));
            }
            if ts.abs() >= 9.223_372_036_854_776e18 {
                return Err(exc(
                    "OverflowError",
                    "timestamp out of range for platform time_t",
                ));
            }
            let year = 1970.0 + ts / 31_556_952.0;
            if !(-2_147_481_748.0..=2_147_485_547.0).contains(&year) {
                return Err(exc(
                    "OSError",
                    "[Errno 75] Value too large for defined data type",
                ));
            }
            let us = builtins::round_half_even(ts * 1e6) as i64;
            let utc = chrono::DateTime::from_timestamp_micros(us)
                .ok_or_else(|| exc("ValueError", format!("year {year:.0} is out of range")))?
                .naive_utc();
            let tz = tz_argument(&args, 1, &kwargs)?;
            let local = from_utc(utc, tz, f == "datetime.datetime.utcfromtimestamp");
            if !(1..=9999).contains(&chrono::Datelike::year(&local.naive)) {
                return Err(exc(
                    "ValueError",
                    format!(
                        "year {} is out of range",
                        chrono::Datelike::year(&local.naive)
                    ),
                ));
            }
            Ok(dt(local))
        }
        "datetime.datetime.strptime" => {
            let s = to_str(args.first().unwrap_or(&Value::None))?;
            let fmt = to_str(args.get(1).unwrap_or(&Value::None))?.replace("%f", "%.f");
            chrono::NaiveDateTime::parse_from_str(&s, &fmt)
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(&s, &fmt)
                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                })
                .map(|naive| {
                    dt(DateTimeValue {
                        naive,
                        offset: None,
                    })
                })
                .map_err(|_| {
                    exc(
                        "ValueError",
                        format!("time data {} does not match format", builtins::str_repr(&s)),
                    )
                })
        }
        _ => Err(unsupported(format!("`{f}`"), "not modelled")),
    }
}

/// The `tz` argument (positional at `at`, or by keyword) of `now()` / `fromtimestamp()`.
fn tz_argument(args: &[Value], at: usize, kwargs: &[(String, Value)]) -> R<Option<i32>> {
    match args
        .get(at)
        .or(kwargs.iter().find(|(k, _)| k == "tz").map(|(_, v)| v))
    {
        Some(v) => tz_of(v),
        None => Ok(None),
    }
}

/// A UTC instant as `now()`/`fromtimestamp()` return it: aware in `tz`, naive local time
/// without one, or naive UTC for the `utc*` variants.
fn from_utc(utc: chrono::NaiveDateTime, tz: Option<i32>, naive_utc: bool) -> DateTimeValue {
    match (naive_utc, tz) {
        (true, _) => DateTimeValue {
            naive: utc,
            offset: None,
        },
        (false, Some(o)) => DateTimeValue {
            naive: utc + chrono::Duration::seconds(i64::from(o)),
            offset: Some(o),
        },
        (false, None) => DateTimeValue {
            naive: utc + chrono::Duration::seconds(i64::from(local_offset(utc))),
            offset: None,
        },
    }
}

/// `date.fromisoformat`: a whole string of 7, 8 or 10 characters in one of the date forms.
fn parse_iso_date(b: &[u8]) -> Option<chrono::NaiveDate> {
    matches!(b.len(), 7 | 8 | 10)
        .then(|| parse_iso_date_part(b))
        .flatten()
}

/// The value of a run of ASCII digits (at most 9, so it cannot overflow).
fn ascii_digits(b: &[u8]) -> Option<u32> {
    (!b.is_empty() && b.len() <= 9 && b.iter().all(u8::is_ascii_digit))
        .then(|| b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// `datetime.fromisoformat` as CPython 3.11 reads a string, written from its documented
/// grammar and its C implementation's edge cases: a date (`YYYY-MM-DD`, `YYYYMMDD` or an ISO
/// week date), then any one character, then `HH[:MM[:SS[(.|,)f+]]]` (or without colons), then
/// `Z` or `(+|-)HH[:MM[:SS]]`. `None` is Python's ValueError. Offsets with fractional seconds,
/// which this value model cannot hold, are refused too.
fn parse_isoformat(s: &str) -> Option<DateTimeValue> {
    let b = s.as_bytes();
    let date_len = iso_date_length(b)?;
    let date = parse_iso_date_part(b.get(..date_len)?)?;
    // The separator is any one character, so step over a whole UTF-8 sequence.
    let Some(sep) = s.get(date_len..).and_then(|t| t.chars().next()) else {
        return Some(DateTimeValue {
            naive: date.and_hms_opt(0, 0, 0)?,
            offset: None,
        });
    };
    let time = &b[date_len + sep.len_utf8()..];
    let tz_at = time
        .iter()
        .position(|c| matches!(c, b'Z' | b'+' | b'-'))
        .unwrap_or(time.len());
    let (h, m, sec, micros, complete) = parse_iso_clock(&time[..tz_at])?;
    let offset = match time.get(tz_at..) {
        Some([]) | None if complete => None,
        Some([b'Z']) => Some(0),
        Some([sign @ (b'+' | b'-'), zone @ ..]) => {
            let (oh, om, os, ous, complete) = parse_iso_clock(zone)?;
            let secs = i32::try_from(oh * 3600 + om * 60 + os).ok()?;
            if !complete || ous != 0 || secs >= 86_400 {
                return None;
            }
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    Some(DateTimeValue {
        naive: date.and_hms_micro_opt(h, m, sec, micros)?,
        offset,
    })
}

/// Where the date ends and the separator starts, by the rules CPython uses to tell the date
/// forms apart when any character may follow.
fn iso_date_length(b: &[u8]) -> Option<usize> {
    if b.len() < 7 {
        return None;
    }
    if b.len() == 7 {
        return Some(7);
    }
    Some(match (b[4], b[5]) {
        (b'-', b'W') if b.len() > 8 && b[8] == b'-' => {
            if b.len() == 9 {
                return None;
            }
            if b.len() > 10 && b[10].is_ascii_digit() {
                8
            } else {
                10
            }
        }
        (b'-', b'W') => 8,
        (b'-', _) => 10,
        (b'W', _) => {
            let digits_end = 7 + b[7..].iter().take_while(|c| c.is_ascii_digit()).count();
            match digits_end {
                end if end < 9 => end,
                end if end % 2 == 0 => 7,
                _ => 8,
            }
        }
        _ => 8,
    })
}

/// A calendar or ISO week date, with or without dashes (the same style throughout).
fn parse_iso_date_part(b: &[u8]) -> Option<chrono::NaiveDate> {
    let year = i32::try_from(ascii_digits(b.get(..4)?)?).ok()?;
    let dashed = b.get(4) == Some(&b'-');
    let rest = &b[4 + usize::from(dashed)..];
    if let Some(week) = rest.strip_prefix(b"W") {
        let w = ascii_digits(week.get(..2)?)?;
        let day = match &week[2..] {
            [] => 1,
            [b'-', d] if dashed => ascii_digits(&[*d])?,
            [d] if !dashed => ascii_digits(&[*d])?,
            _ => return None,
        };
        let weekday = chrono::Weekday::try_from(u8::try_from(day.checked_sub(1)?).ok()?).ok()?;
        return chrono::NaiveDate::from_isoywd_opt(year, w, weekday);
    }
    let month = ascii_digits(rest.get(..2)?)?;
    let day = match (&rest[2..], dashed) {
        ([b'-', d @ ..], true) | (d, false) if d.len() == 2 => ascii_digits(d)?,
        _ => return None,
    };
    chrono::NaiveDate::from_ymd_opt(year, month, day)
}

/// `HH[:MM[:SS]]` or `HH[MM[SS]]`, then an optional fraction (after `.` or `,`, or straight
/// after `HH:MM:SS:`), with CPython's leniencies: a fraction may follow any field and digits
/// past the sixth are dropped. Returns hour, minute, second, microseconds and whether nothing
/// trails them.
/// `time.fromisoformat` (and SQLAlchemy's SQLite TIME results, which go through it) for a
/// time without an offset.
fn parse_iso_time(s: &str) -> Option<chrono::NaiveTime> {
    parse_iso_clock(s.as_bytes())
        .filter(|&(.., complete)| complete)
        .and_then(|(h, m, sec, us, _)| chrono::NaiveTime::from_hms_micro_opt(h, m, sec, us))
}

fn parse_iso_clock(t: &[u8]) -> Option<(u32, u32, u32, u32, bool)> {
    let mut f = [0u32; 3];
    let mut at = 0;
    let mut colons = true;
    for i in 0..3 {
        f[i] = ascii_digits(t.get(at..at + 2)?)?;
        let next = t.get(at + 2).copied();
        at += 3;
        if i == 0 {
            colons = next == Some(b':');
        }
        if at >= t.len() {
            return Some((f[0], f[1], f[2], 0, next.is_none()));
        }
        match next {
            Some(b':') if colons => {}
            Some(b'.' | b',') => break,
            _ if !colons => at -= 1,
            _ => return None,
        }
    }
    let frac = &t[at..];
    let used = frac.len().min(6);
    let micros = ascii_digits(&frac[..used])? * 10u32.pow(6 - used as u32);
    let complete = frac[used..].iter().all(u8::is_ascii_digit);
    Some((f[0], f[1], f[2], micros, complete))
}

#[cfg(test)]
mod isoformat_tests {
    use super::{parse_iso_date, parse_isoformat};

    proptest::proptest! {
        // The parser slices by positions it computes from the text; no text may panic it.
        #[test]
        fn any_text_is_parsed_or_refused(s in "\\PC{0,40}") {
            let _ = parse_isoformat(&s);
            let _ = parse_iso_date(s.as_bytes());
        }

        #[test]
        fn near_iso_text_is_parsed_or_refused(s in "[0-9W:T .,+Z-]{0,32}") {
            let _ = parse_isoformat(&s);
            let _ = parse_iso_date(s.as_bytes());
        }
    }
}

//! The two decorator idioms real revision files use to shape their own helpers:
//! SQLAlchemy custom types (`class JSONB(JSON): __visit_name__ = "JSONB"` plus a
//! `@compiles(JSONB, "sqlite")` function that returns its DDL) and
//! `contextlib.contextmanager` generators (run by `Interp::exec_with`).

use std::cell::RefCell;
use std::rc::Rc;

use super::interp::{type_error, unsupported, Interp, R};
use super::native::Native;
use super::value::Value;
use super::DIALECT;
use crate::alembic_compat::ops::{CustomType, Literal, TypeSpec};

/// A class a revision file derives from a SQLAlchemy type.
#[derive(Debug)]
pub struct TypeSubclass {
    pub name: String,
    pub base_dialect: Option<String>,
    pub base_name: String,
    pub visit_name: String,
    pub parent: Option<Rc<TypeSubclass>>,
    /// `@compiles` functions by dialect (`None`: every dialect), in registration order.
    pub compilers: RefCell<Vec<(Option<String>, Value)>>,
    /// The DDL the SQLite compiler function gave for an instance made without arguments:
    /// what the bare class (`sa.Column("x", JSONB)`) renders as.
    pub bare_ddl: RefCell<Option<String>>,
}

impl TypeSubclass {
    /// The function SQLAlchemy would dispatch to on `dialect`: one registered for that
    /// dialect wins over a default one, and a subclass that keeps its parent's
    /// `__visit_name__` keeps its parent's functions.
    fn compiler_for(&self, dialect: &str) -> Option<Value> {
        let own = self.compilers.borrow();
        let found = own
            .iter()
            .rev()
            .find(|(d, _)| d.as_deref() == Some(dialect))
            .or_else(|| own.iter().rev().find(|(d, _)| d.is_none()))
            .map(|(_, f)| f.clone());
        found.or_else(|| match &self.parent {
            Some(p) if p.visit_name == self.visit_name => p.compiler_for(dialect),
            _ => None,
        })
    }

    fn spec(
        &self,
        args: Vec<Literal>,
        kwargs: Vec<(String, Literal)>,
        ddl: Option<String>,
    ) -> TypeSpec {
        TypeSpec {
            dialect: self.base_dialect.clone(),
            name: self.base_name.clone(),
            args,
            kwargs,
            custom: Some(Box::new(CustomType {
                class_name: self.name.clone(),
                visit_name: self.visit_name.clone(),
                ddl,
            })),
        }
    }

    /// The class used bare as a column type.
    pub fn bare_spec(&self) -> TypeSpec {
        self.spec(Vec::new(), Vec::new(), self.bare_ddl.borrow().clone())
    }
}

/// `class Name(Base): ...` where `Base` is a SQLAlchemy type (or another such class).
/// `class_vars` are the names the class body bound.
pub fn define_type_subclass(
    name: &str,
    base: &Value,
    class_vars: Vec<(String, Value)>,
) -> R<Value> {
    let (base_dialect, base_name, inherited_visit, parent) = match base {
        Value::Native(n) => match &**n {
            Native::TypeClass { dialect, name } => {
                (dialect.clone(), name.clone(), name.clone(), None)
            }
            Native::TypeSubclass(p) => (
                p.base_dialect.clone(),
                p.base_name.clone(),
                p.visit_name.clone(),
                Some(p.clone()),
            ),
            _ => return Err(refuse_base(base)),
        },
        _ => return Err(refuse_base(base)),
    };
    let mut visit_name = inherited_visit;
    for (var, value) in class_vars {
        match (var.as_str(), value) {
            ("__visit_name__", Value::Str(s)) => visit_name = s.to_string(),
            ("__visit_name__", other) => {
                return Err(type_error(format!(
                    "__visit_name__ must be a str, not {}",
                    other.type_name()
                )))
            }
            // Caching and documentation flags change nothing that ralembic renders.
            ("cache_ok" | "__doc__" | "__module__" | "__qualname__", _) => {}
            (other, _) => {
                return Err(unsupported(
                    format!("the class attribute `{other}` of a custom type"),
                    "a custom type's DDL comes from its base or a @compiles function; \
                     other class attributes are not modelled",
                ))
            }
        }
    }
    Ok(Value::native(Native::TypeSubclass(Rc::new(TypeSubclass {
        name: name.to_string(),
        base_dialect,
        base_name,
        visit_name,
        parent,
        compilers: RefCell::new(Vec::new()),
        bare_ddl: RefCell::new(None),
    }))))
}

/// Why a class outside the model is refused (statically and when it runs).
pub const CLASSES_MODELLED: &str = "revision bodies may define custom SQLAlchemy types, \
    declarative_base() models and enum.Enum classes (one base, class attributes only) and no \
    other classes; use functions and dicts";

fn refuse_base(base: &Value) -> super::interp::Unwind {
    unsupported(
        format!("a class deriving from {}", base.type_name()),
        CLASSES_MODELLED,
    )
}

/// `compiles(Class, *dialects)`: the decorator it returns.
pub fn compiles(args: Vec<Value>, kwargs: Vec<(String, Value)>) -> R<Value> {
    if !kwargs.is_empty() {
        return Err(type_error("compiles() takes no keyword arguments"));
    }
    let mut args = args.into_iter();
    let class = match args.next() {
        Some(Value::Native(n)) => match &*n {
            Native::TypeSubclass(c) => c.clone(),
            other => {
                return Err(unsupported(
                    format!("`@compiles` for {}", other.type_name()),
                    "ralembic models @compiles for a revision file's own type classes only",
                ))
            }
        },
        _ => return Err(type_error("compiles() needs the class it compiles")),
    };
    let mut dialects = Vec::new();
    for d in args {
        match d {
            Value::Str(s) => dialects.push(s.to_string()),
            other => {
                return Err(type_error(format!(
                    "a dialect name must be a str, not {}",
                    other.type_name()
                )))
            }
        }
    }
    Ok(Value::native(Native::Compiles { class, dialects }))
}

/// Applying the `compiles` decorator to its function: registers it and gives it back.
pub fn register(
    interp: &mut Interp<'_>,
    class: &Rc<TypeSubclass>,
    dialects: &[String],
    func: Value,
) -> R<Value> {
    {
        let mut compilers = class.compilers.borrow_mut();
        if dialects.is_empty() {
            compilers.push((None, func.clone()));
        }
        for d in dialects {
            compilers.push((Some(d.clone()), func.clone()));
        }
    }
    let bare = class.spec(Vec::new(), Vec::new(), None);
    let ddl = compile_ddl(interp, class, bare)?;
    *class.bare_ddl.borrow_mut() = ddl;
    Ok(func)
}

/// Calling the class: an instance, whose DDL its SQLite compiler function gives now (SQLAlchemy
/// calls it when the DDL is rendered; the revision files that use this register the function
/// right after the class, before any instance exists).
pub fn instantiate(
    interp: &mut Interp<'_>,
    class: &Rc<TypeSubclass>,
    args: Vec<Literal>,
    kwargs: Vec<(String, Literal)>,
) -> R<Value> {
    let spec = class.spec(args, kwargs, None);
    let ddl = compile_ddl(interp, class, spec.clone())?;
    let mut spec = spec;
    if let Some(c) = spec.custom.as_mut() {
        c.ddl = ddl;
    }
    Ok(Value::native(Native::Type(Box::new(spec))))
}

fn compile_ddl(interp: &mut Interp<'_>, class: &TypeSubclass, spec: TypeSpec) -> R<Option<String>> {
    let Some(f) = class.compiler_for(DIALECT) else {
        return Ok(None);
    };
    let element = Value::native(Native::Type(Box::new(spec)));
    let compiler = Value::native(Native::TypeCompiler);
    match interp.call(&f, vec![element, compiler], Vec::new())? {
        Value::Str(s) => Ok(Some(s.to_string())),
        other => Err(type_error(format!(
            "a @compiles function must return the DDL as a str, not {}",
            other.type_name()
        ))),
    }
}

/// `type.with_variant(variant, *dialect_names)`: on the dialect revision bodies run against,
/// the variant is the type.
pub fn with_variant(this: &TypeSpec, variant: TypeSpec, dialects: &[Value]) -> R<TypeSpec> {
    let mut applies = false;
    for d in dialects {
        let names = match d {
            Value::Str(s) => vec![s.to_string()],
            Value::List(_) | Value::Tuple(_) => super::builtins::iterate(d)?
                .iter()
                .map(super::builtins::str_of)
                .collect(),
            other => {
                return Err(type_error(format!(
                    "a dialect name must be a str, not {}",
                    other.type_name()
                )))
            }
        };
        applies |= names.iter().any(|n| n == DIALECT);
    }
    Ok(if applies { variant } else { this.clone() })
}

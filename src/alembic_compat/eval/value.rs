//! Python values as the interpreter sees them.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::native::Native;
use crate::alembic_compat::script::ast::{Expr, Params, Stmt};

use super::interp::Scope;

#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    List(Rc<RefCell<Vec<Value>>>),
    Tuple(Rc<[Value]>),
    Dict(Rc<RefCell<Dict>>),
    /// Insertion-ordered; Python's set order is unspecified, so any order is faithful.
    Set(Rc<RefCell<Vec<Value>>>),
    Function(Rc<Function>),
    Native(Rc<Native>),
}

/// A `def` or `lambda` with the scope it closes over.
#[derive(Debug)]
pub struct Function {
    pub name: String,
    pub params: Arc<Params>,
    /// `params.args`' names as variable keys, made once per `def` rather than per call.
    pub param_keys: Vec<Rc<str>>,
    pub defaults: Vec<Option<Value>>,
    pub kw_defaults: Vec<Option<Value>>,
    pub body: FunctionBody,
    pub scope: Rc<Scope>,
}

#[derive(Debug)]
pub enum FunctionBody {
    Block(Arc<Vec<Stmt>>),
    Lambda(Arc<Expr>),
}

/// Insertion-ordered mapping with Python key equality. Revision files hold small dicts, so
/// a linear scan beats hashing Python semantics (1 == 1.0 == True) into Rust.
#[derive(Clone, Debug, Default)]
pub struct Dict {
    pub items: Vec<(Value, Value)>,
    /// `collections.defaultdict`'s factory, called for a missing key.
    pub default_factory: Option<Value>,
}

impl Dict {
    pub fn get(&self, key: &Value) -> Option<&Value> {
        self.items
            .iter()
            .find(|(k, _)| py_eq(k, key))
            .map(|(_, v)| v)
    }
    pub fn insert(&mut self, key: Value, value: Value) {
        match self.items.iter_mut().find(|(k, _)| py_eq(k, &key)) {
            Some(slot) => slot.1 = value,
            None => self.items.push((key, value)),
        }
    }
    pub fn remove(&mut self, key: &Value) -> Option<Value> {
        let i = self.items.iter().position(|(k, _)| py_eq(k, key))?;
        Some(self.items.remove(i).1)
    }
}

impl Value {
    pub fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }
    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Rc::new(RefCell::new(v)))
    }
    pub fn tuple(v: Vec<Value>) -> Value {
        Value::Tuple(v.into())
    }
    pub fn native(n: Native) -> Value {
        Value::Native(Rc::new(n))
    }
    pub fn dict(items: Vec<(Value, Value)>) -> Value {
        let mut d = Dict::default();
        for (k, v) in items {
            d.insert(k, v);
        }
        Value::Dict(Rc::new(RefCell::new(d)))
    }

    /// Python's `type(x).__name__`, for error messages.
    pub fn type_name(&self) -> String {
        match self {
            Value::None => "NoneType".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::List(_) => "list".into(),
            Value::Tuple(_) => "tuple".into(),
            Value::Dict(_) => "dict".into(),
            Value::Set(_) => "set".into(),
            Value::Function(_) => "function".into(),
            Value::Native(n) => n.type_name(),
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.borrow().is_empty(),
            Value::Tuple(t) => !t.is_empty(),
            Value::Dict(d) => !d.borrow().items.is_empty(),
            Value::Set(s) => !s.borrow().is_empty(),
            Value::Function(_) => true,
            Value::Native(n) => n.truthy(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Numeric view for arithmetic and comparison: bool is an int in Python.
pub fn as_number(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i64::from(*b))),
        Value::Int(i) => Some(Num::Int(*i)),
        Value::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

pub fn py_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
        return match (x, y) {
            (Num::Int(x), Num::Int(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        };
    }
    match (a, b) {
        (Value::None, Value::None) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y) || seq_eq(&x.borrow(), &y.borrow()),
        (Value::Tuple(x), Value::Tuple(y)) => seq_eq(x, y),
        (Value::Dict(x), Value::Dict(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            x.items.len() == y.items.len()
                && x.items
                    .iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        (Value::Set(x), Value::Set(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            x.len() == y.len() && x.iter().all(|v| y.iter().any(|w| py_eq(v, w)))
        }
        (Value::Function(x), Value::Function(y)) => Rc::ptr_eq(x, y),
        (Value::Native(x), Value::Native(y)) => Rc::ptr_eq(x, y) || x.native_eq(y),
        _ => false,
    }
}

fn seq_eq(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| py_eq(x, y))
}

/// A datetime value (`datetime.datetime`); `offset` is the UTC offset in seconds when aware.
#[derive(Clone, Debug, PartialEq)]
pub struct DateTimeValue {
    pub naive: NaiveDateTime,
    pub offset: Option<i32>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Temporal {
    DateTime(DateTimeValue),
    Date(NaiveDate),
    Time(NaiveTime),
    /// Microseconds.
    Delta(i64),
    /// A fixed-offset timezone, seconds east of UTC.
    Zone(i32),
}

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
    Set(Rc<RefCell<PySet>>),
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

/// Insertion-ordered mapping with Python key equality (`1 == 1.0 == True`).
#[derive(Clone, Debug, Default)]
pub struct Dict {
    items: Vec<(Value, Value)>,
    index: KeyIndex,
    /// `collections.defaultdict`'s factory, called for a missing key.
    pub default_factory: Option<Value>,
}

impl Dict {
    pub fn items(&self) -> &[(Value, Value)] {
        &self.items
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    fn position(&self, key: &Value) -> Option<usize> {
        self.index.find(key, self.items.len(), |i| &self.items[i].0)
    }
    pub fn get(&self, key: &Value) -> Option<&Value> {
        self.position(key).map(|i| &self.items[i].1)
    }
    pub fn insert(&mut self, key: Value, value: Value) {
        match self.position(&key) {
            Some(i) => self.items[i].1 = value,
            None => {
                self.index.added(&key, self.items.len());
                self.items.push((key, value));
                let items = &self.items;
                self.index.grown(items.len(), |i| &items[i].0);
            }
        }
    }
    pub fn remove(&mut self, key: &Value) -> Option<Value> {
        let i = self.position(key)?;
        let (k, v) = self.items.remove(i);
        self.index.removed(&k, i);
        Some(v)
    }
    /// `popitem()`: the last item in.
    pub fn pop_last(&mut self) -> Option<(Value, Value)> {
        let (k, v) = self.items.pop()?;
        self.index.removed(&k, self.items.len());
        Some((k, v))
    }
    pub fn clear(&mut self) {
        self.items.clear();
        self.index = KeyIndex::default();
    }
}

/// A set: insertion-ordered (see the note on set order in docs/compatibility.md), with
/// Python key equality.
#[derive(Clone, Debug, Default)]
pub struct PySet {
    items: Vec<Value>,
    index: KeyIndex,
}

impl PySet {
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> PySet {
        let mut s = PySet::default();
        for v in values {
            s.add(v);
        }
        s
    }
    pub fn items(&self) -> &[Value] {
        &self.items
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn contains(&self, v: &Value) -> bool {
        self.index
            .find(v, self.items.len(), |i| &self.items[i])
            .is_some()
    }
    /// Adds `v` unless an equal value is there; true when it was added.
    pub fn add(&mut self, v: Value) -> bool {
        if self.contains(&v) {
            return false;
        }
        self.index.added(&v, self.items.len());
        self.items.push(v);
        let items = &self.items;
        self.index.grown(items.len(), |i| &items[i]);
        true
    }
    pub fn remove(&mut self, v: &Value) -> Option<Value> {
        let i = self.index.find(v, self.items.len(), |i| &self.items[i])?;
        let removed = self.items.remove(i);
        self.index.removed(&removed, i);
        Some(removed)
    }
    pub fn pop_first(&mut self) -> Option<Value> {
        if self.items.is_empty() {
            return None;
        }
        let removed = self.items.remove(0);
        self.index.removed(&removed, 0);
        Some(removed)
    }
    pub fn clear(&mut self) {
        self.items.clear();
        self.index = KeyIndex::default();
    }
}

/// Where a dict's or set's keys are, by their hash: a data loop that de-duplicates or
/// counts rows looks a key up on every row, and a scan made that quadratic. Collections
/// smaller than `INDEXED_FROM` are scanned; so is one holding a key this hash does not
/// cover (datetimes, UUIDs and other objects), for as long as it holds one.
#[derive(Clone, Debug, Default)]
struct KeyIndex {
    by_hash: Option<rustc_hash::FxHashMap<u64, Vec<usize>>>,
    unhashed: usize,
}

const INDEXED_FROM: usize = 16;

impl KeyIndex {
    fn find<'a>(
        &self,
        key: &Value,
        len: usize,
        key_at: impl Fn(usize) -> &'a Value,
    ) -> Option<usize> {
        if let (Some(by_hash), 0) = (&self.by_hash, self.unhashed) {
            if let Some(h) = py_hash(key) {
                return by_hash
                    .get(&h)?
                    .iter()
                    .copied()
                    .find(|&i| py_eq(key_at(i), key));
            }
        }
        (0..len).find(|&i| py_eq(key_at(i), key))
    }

    fn added(&mut self, key: &Value, at: usize) {
        match py_hash(key) {
            Some(h) => {
                if let Some(by_hash) = &mut self.by_hash {
                    by_hash.entry(h).or_default().push(at);
                }
            }
            None => self.unhashed += 1,
        }
    }

    /// Builds the index once the collection is large enough to need it.
    fn grown<'a>(&mut self, len: usize, key_at: impl Fn(usize) -> &'a Value) {
        if self.by_hash.is_some() || len < INDEXED_FROM {
            return;
        }
        let mut by_hash = rustc_hash::FxHashMap::<u64, Vec<usize>>::default();
        for i in 0..len {
            if let Some(h) = py_hash(key_at(i)) {
                by_hash.entry(h).or_default().push(i);
            }
        }
        self.by_hash = Some(by_hash);
    }

    /// The key at `at` is gone and the ones after it moved down by one.
    fn removed(&mut self, key: &Value, at: usize) {
        if py_hash(key).is_none() {
            self.unhashed = self.unhashed.saturating_sub(1);
        }
        if let Some(by_hash) = &mut self.by_hash {
            by_hash.retain(|_, positions| {
                positions.retain(|&p| p != at);
                for p in positions.iter_mut() {
                    if *p > at {
                        *p -= 1;
                    }
                }
                !positions.is_empty()
            });
        }
    }
}

/// A hash consistent with `py_eq` for the keys revision bodies use: numbers (`1`, `1.0` and
/// `True` alike), strings, bytes, None and tuples of those. None for anything else.
fn py_hash(v: &Value) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    fn feed(v: &Value, h: &mut rustc_hash::FxHasher) -> bool {
        match v {
            Value::None => 0u8.hash(h),
            Value::Bool(b) => (1u8, i64::from(*b)).hash(h),
            Value::Int(i) => (1u8, *i).hash(h),
            Value::Float(f) => {
                if f.fract() == 0.0 && (-9.2e18..9.2e18).contains(f) {
                    // Exact: a whole float in range equals the int it converts to.
                    (1u8, *f as i64).hash(h)
                } else {
                    (2u8, f.to_bits()).hash(h)
                }
            }
            Value::Str(s) => (3u8, &**s).hash(h),
            Value::Bytes(b) => (4u8, &**b).hash(h),
            Value::Tuple(t) => {
                (5u8, t.len()).hash(h);
                return t.iter().all(|x| feed(x, h));
            }
            _ => return false,
        }
        true
    }
    let mut h = rustc_hash::FxHasher::default();
    feed(v, &mut h).then(|| h.finish())
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
            Value::Dict(d) => !d.borrow().is_empty(),
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
            x.len() == y.len()
                && x.items()
                    .iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        (Value::Set(x), Value::Set(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            x.len() == y.len() && x.items().iter().all(|v| y.contains(v))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(us: i64) -> Value {
        Value::native(Native::Temporal(Temporal::Delta(us)))
    }

    #[test]
    fn large_dicts_find_keys_as_python_compares_them() {
        let mut d = Dict::default();
        for i in 0..100 {
            d.insert(Value::Int(i), Value::Int(i * 10));
        }
        // 1 == 1.0 == True, whatever the index holds.
        assert!(matches!(d.get(&Value::Float(7.0)), Some(Value::Int(70))));
        assert!(matches!(d.get(&Value::Bool(true)), Some(Value::Int(10))));
        d.insert(Value::Float(3.0), Value::str("three"));
        assert_eq!(d.len(), 100);
        // Removal moves the later keys down; they are still found.
        assert!(d.remove(&Value::Int(0)).is_some());
        assert!(matches!(d.get(&Value::Int(99)), Some(Value::Int(990))));
        assert!(matches!(d.items()[0].0, Value::Int(1)));
        assert!(matches!(d.pop_last(), Some((Value::Int(99), _))));
        assert!(d.get(&Value::Int(99)).is_none());
        let t = Value::tuple(vec![Value::str("a"), Value::Int(1)]);
        d.insert(t.clone(), Value::None);
        assert!(d
            .get(&Value::tuple(vec![Value::str("a"), Value::Float(1.0)]))
            .is_some());
        // A key without a hash here: found by scanning, and so are the others.
        d.insert(delta(5), Value::Int(-1));
        assert!(matches!(d.get(&delta(5)), Some(Value::Int(-1))));
        assert!(matches!(d.get(&Value::Int(50)), Some(Value::Int(500))));
        d.remove(&delta(5));
        assert!(matches!(d.get(&Value::Int(51)), Some(Value::Int(510))));
        d.clear();
        assert!(d.is_empty() && d.get(&Value::Int(5)).is_none());
    }

    #[test]
    fn large_sets_keep_one_of_each_value() {
        let mut s = PySet::from_values((0..50).map(|i| Value::str(format!("k{}", i % 20))));
        assert_eq!(s.len(), 20);
        assert!(s.contains(&Value::str("k19")) && !s.contains(&Value::str("k20")));
        assert!(!s.add(Value::str("k3")));
        assert!(s.remove(&Value::str("k0")).is_some());
        assert!(matches!(s.pop_first(), Some(Value::Str(x)) if &*x == "k1"));
        assert!(s.contains(&Value::str("k19")) && s.len() == 18);
    }
}

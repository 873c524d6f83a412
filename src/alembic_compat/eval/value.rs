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
    /// The names the body makes local (see `locals`); None for a lambda, whose only locals
    /// are its parameters, always bound.
    pub locals: Option<Rc<[Rc<str>]>>,
}

#[derive(Debug)]
pub enum FunctionBody {
    Block(Arc<Vec<Stmt>>),
    Lambda(Arc<Expr>),
}

/// Insertion-ordered mapping with Python key equality (`1 == 1.0 == True`).
#[derive(Clone, Debug, Default)]
pub struct Dict {
    items: Slots<(Value, Value)>,
    /// `collections.defaultdict`'s factory, called for a missing key.
    pub default_factory: Option<Value>,
}

impl Dict {
    /// The items in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &(Value, Value)> {
        self.items.iter()
    }
    pub fn len(&self) -> usize {
        self.items.live
    }
    pub fn is_empty(&self) -> bool {
        self.items.live == 0
    }
    pub fn get(&self, key: &Value) -> Option<&Value> {
        self.items.find(key).map(|(_, v)| v)
    }
    pub fn insert(&mut self, key: Value, value: Value) {
        match self.items.find_mut(&key) {
            Some(item) => item.1 = value,
            None => self.items.push((key, value)),
        }
    }
    pub fn remove(&mut self, key: &Value) -> Option<Value> {
        self.items.remove(key).map(|(_, v)| v)
    }
    /// `popitem()`: the last item in.
    pub fn pop_last(&mut self) -> Option<(Value, Value)> {
        self.items.pop_last()
    }
    pub fn clear(&mut self) {
        self.items.clear();
    }
    /// How many keys have been added to this dict, ever: a loop over it that ends with the
    /// same count had no key added while it ran.
    pub fn keys_added(&self) -> u64 {
        self.items.added
    }
}

/// A set: insertion-ordered (see the note on set order in docs/compatibility.md), with
/// Python key equality.
#[derive(Clone, Debug, Default)]
pub struct PySet {
    items: Slots<Value>,
}

impl PySet {
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> PySet {
        let mut s = PySet::default();
        for v in values {
            s.add(v);
        }
        s
    }
    /// The values in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        self.items.iter()
    }
    pub fn len(&self) -> usize {
        self.items.live
    }
    pub fn is_empty(&self) -> bool {
        self.items.live == 0
    }
    pub fn contains(&self, v: &Value) -> bool {
        self.items.find(v).is_some()
    }
    /// Adds `v` unless an equal value is there; true when it was added.
    pub fn add(&mut self, v: Value) -> bool {
        if self.contains(&v) {
            return false;
        }
        self.items.push(v);
        true
    }
    pub fn remove(&mut self, v: &Value) -> Option<Value> {
        self.items.remove(v)
    }
    /// `set.pop()`: the first value in.
    pub fn pop_first(&mut self) -> Option<Value> {
        let i = self.items.slots.iter().position(Option::is_some)?;
        self.items.take(i)
    }
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// What a dict or set holds in a slot: an item with a key.
trait Keyed {
    fn key(&self) -> &Value;
}

impl Keyed for (Value, Value) {
    fn key(&self) -> &Value {
        &self.0
    }
}

impl Keyed for Value {
    fn key(&self) -> &Value {
        self
    }
}

/// The items of a dict or set in insertion order, found through `KeyIndex`. A removed item
/// leaves an empty slot, so that removal neither moves the later items nor renumbers the
/// index; the slots are compacted once half of them are empty.
#[derive(Clone, Debug)]
struct Slots<T> {
    slots: Vec<Option<T>>,
    live: usize,
    index: KeyIndex,
    /// Items ever pushed, `clear` included.
    added: u64,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            slots: Vec::new(),
            live: 0,
            index: KeyIndex::default(),
            added: 0,
        }
    }
}

impl<T: Keyed> Slots<T> {
    fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }
    fn key_at(&self, i: usize) -> Option<&Value> {
        self.slots[i].as_ref().map(Keyed::key)
    }
    fn position(&self, key: &Value) -> Option<usize> {
        self.index.find(key, self.slots.len(), |i| self.key_at(i))
    }
    fn find(&self, key: &Value) -> Option<&T> {
        self.position(key).and_then(|i| self.slots[i].as_ref())
    }
    fn find_mut(&mut self, key: &Value) -> Option<&mut T> {
        let i = self.position(key)?;
        self.slots[i].as_mut()
    }
    fn clear(&mut self) {
        *self = Slots {
            added: self.added,
            ..Slots::default()
        };
    }
    /// Appends an item whose key is not there yet.
    fn push(&mut self, item: T) {
        self.added += 1;
        self.index.added(item.key(), self.slots.len());
        self.slots.push(Some(item));
        self.live += 1;
        if self.live >= INDEXED_FROM && !self.index.is_built() {
            self.reindex();
        }
    }
    fn remove(&mut self, key: &Value) -> Option<T> {
        let i = self.position(key)?;
        self.take(i)
    }
    /// Empties slot `i`, compacting the slots once half are empty.
    fn take(&mut self, i: usize) -> Option<T> {
        let item = self.slots[i].take()?;
        self.index.forget(item.key(), i);
        self.live -= 1;
        if self.slots.len() >= INDEXED_FROM && self.live * 2 <= self.slots.len() {
            self.slots.retain(Option::is_some);
            self.reindex();
        }
        Some(item)
    }
    fn pop_last(&mut self) -> Option<T> {
        while let Some(None) = self.slots.last() {
            self.slots.pop();
        }
        let item = self.slots.pop()??;
        self.index.forget(item.key(), self.slots.len());
        self.live -= 1;
        Some(item)
    }
    fn reindex(&mut self) {
        let slots = &self.slots;
        self.index
            .rebuild(slots.len(), |i| slots[i].as_ref().map(Keyed::key));
    }
}

/// Where a dict's or set's keys are (their slots), by their hash: a data loop that
/// de-duplicates or counts rows looks a key up on every row, and a scan made that
/// quadratic. Collections smaller than `INDEXED_FROM` are scanned; so is one holding a key
/// this hash does not cover (datetimes, UUIDs and other objects), for as long as it holds one.
#[derive(Clone, Debug, Default)]
struct KeyIndex {
    by_hash: Option<rustc_hash::FxHashMap<u64, Vec<usize>>>,
    unhashed: usize,
}

const INDEXED_FROM: usize = 16;

impl KeyIndex {
    /// The slot holding a key equal to `key`; `key_at` gives a slot's key (None if empty).
    fn find<'a>(
        &self,
        key: &Value,
        slots: usize,
        key_at: impl Fn(usize) -> Option<&'a Value>,
    ) -> Option<usize> {
        if let (Some(by_hash), 0) = (&self.by_hash, self.unhashed) {
            if let Some(h) = py_hash(key) {
                return by_hash
                    .get(&h)?
                    .iter()
                    .copied()
                    .find(|&i| key_at(i).is_some_and(|k| py_eq(k, key)));
            }
        }
        (0..slots).find(|&i| key_at(i).is_some_and(|k| py_eq(k, key)))
    }

    fn added(&mut self, key: &Value, slot: usize) {
        match py_hash(key) {
            Some(h) => {
                if let Some(by_hash) = &mut self.by_hash {
                    by_hash.entry(h).or_default().push(slot);
                }
            }
            None => self.unhashed += 1,
        }
    }

    fn is_built(&self) -> bool {
        self.by_hash.is_some()
    }

    /// The index of the slots as they are now (after compaction renumbered them).
    fn rebuild<'a>(&mut self, slots: usize, key_at: impl Fn(usize) -> Option<&'a Value>) {
        let mut by_hash = rustc_hash::FxHashMap::<u64, Vec<usize>>::default();
        for i in 0..slots {
            if let Some(h) = key_at(i).and_then(py_hash) {
                by_hash.entry(h).or_default().push(i);
            }
        }
        self.by_hash = Some(by_hash);
    }

    /// The key in `slot` was removed.
    fn forget(&mut self, key: &Value, slot: usize) {
        match py_hash(key) {
            None => self.unhashed = self.unhashed.saturating_sub(1),
            Some(h) => {
                if let Some(by_hash) = &mut self.by_hash {
                    if let Some(slots) = by_hash.get_mut(&h) {
                        slots.retain(|&p| p != slot);
                        if slots.is_empty() {
                            by_hash.remove(&h);
                        }
                    }
                }
            }
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
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        (Value::Set(x), Value::Set(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            x.len() == y.len() && x.iter().all(|v| y.contains(v))
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
        assert!(matches!(d.iter().next(), Some((Value::Int(1), _))));
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
    fn removals_keep_order_and_lookups_through_compaction() {
        let mut d = Dict::default();
        for i in 0..1000 {
            d.insert(Value::Int(i), Value::Int(i));
        }
        for i in (0..1000).filter(|i| i % 3 != 0) {
            assert!(d.remove(&Value::Int(i)).is_some(), "{i}");
        }
        assert_eq!(d.len(), 334);
        let keys: Vec<i64> = d
            .iter()
            .map(|(k, _)| match k {
                Value::Int(i) => *i,
                _ => -1,
            })
            .collect();
        assert_eq!(keys, (0..1000).filter(|i| i % 3 == 0).collect::<Vec<_>>());
        assert!(matches!(d.get(&Value::Int(999)), Some(Value::Int(999))));
        assert!(d.get(&Value::Int(998)).is_none());
        d.insert(Value::Int(5), Value::Int(-5));
        assert!(matches!(
            d.pop_last(),
            Some((Value::Int(5), Value::Int(-5)))
        ));
        assert!(matches!(d.pop_last(), Some((Value::Int(999), _))));
        let mut s = PySet::from_values((0..500).map(Value::Int));
        for _ in 0..499 {
            assert!(s.pop_first().is_some());
        }
        assert_eq!(s.len(), 1);
        assert!(s.contains(&Value::Int(499)) && !s.contains(&Value::Int(0)));
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

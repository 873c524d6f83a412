//! Statements and expressions.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use super::builtins;
use super::locals;
use super::native::{self, Native};
use super::value::{as_number, py_eq, Dict, Function, FunctionBody, Num, PySet, Value};
use super::{DetachedFailure, EvalError, Host};
use crate::alembic_compat::ops::SourcePos;
use crate::alembic_compat::script::ast::{
    Arg, BinOp, BoolOp, CmpOp, Comprehension, Constant, Expr, ExprKind, FStringPart, IntLit,
    Module, Params, Span, Stmt, StmtKind, UnaryOp,
};
use crate::alembic_compat::script::lines::LineIndex;

/// Python's default recursion limit is 1000 frames; ours counts interpreter calls.
const MAX_CALL_DEPTH: usize = 200;

/// Statements one body may execute: far beyond any real migration (a data loop over a
/// million rows runs a few million), and a `while True:` stops in seconds with its position.
/// `RALEMBIC_STEP_LIMIT` overrides it.
pub const MAX_STEPS: u64 = 50_000_000;

/// Read once per process: every interpreter asks (one per body run and per preflight check),
/// and looking a name up in the environment walks all of it.
fn step_limit() -> u64 {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("RALEMBIC_STEP_LIMIT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MAX_STEPS)
    })
}

/// A raised Python exception travelling up the interpreter.
#[derive(Clone, Debug)]
pub struct PyExc {
    pub class: String,
    pub message: String,
    pub pos: Option<SourcePos>,
    /// `e.args` when they are not just `(message,)`: what the body passed to the class, or a
    /// KeyError's key.
    pub args: Option<Vec<Value>>,
}

#[derive(Debug)]
pub enum Unwind {
    Exc(Box<PyExc>),
    /// Outside the model: never caught by the body's `try`.
    Unsupported(Box<Refusal>),
    /// A statement the host ran in the background failed (see `Host::execute_unobserved`).
    /// It is noticed later than Python would raise it, but no `try` was active where it
    /// was run, and none entered since may catch it.
    Detached(Box<PyExc>),
}

/// What `Unwind::Unsupported` carries; boxed, like `PyExc`, so that every `R<Value>` the
/// interpreter passes around stays a few words wide.
#[derive(Debug)]
pub struct Refusal {
    pub what: String,
    pub why: String,
    pub pos: Option<SourcePos>,
}

pub type R<T> = Result<T, Unwind>;

/// Positional and keyword arguments of a call, evaluated.
type CallArgs = (Vec<Value>, Vec<(String, Value)>);

pub fn exc(class: &str, message: impl Into<String>) -> Unwind {
    Unwind::Exc(Box::new(PyExc {
        class: class.to_string(),
        message: message.into(),
        pos: None,
        args: None,
    }))
}

/// Python's KeyError for a missing `key`: its text is the key's repr, its args the key.
pub fn key_error(key: &Value) -> Unwind {
    Unwind::Exc(Box::new(PyExc {
        class: "KeyError".to_string(),
        message: builtins::repr(key),
        pos: None,
        args: Some(vec![key.clone()]),
    }))
}

pub fn unsupported(what: impl Into<String>, why: impl Into<String>) -> Unwind {
    Unwind::Unsupported(Box::new(Refusal {
        what: what.into(),
        why: why.into(),
        pos: None,
    }))
}

pub fn type_error(message: impl Into<String>) -> Unwind {
    exc("TypeError", message)
}

pub fn detached(f: DetachedFailure) -> Unwind {
    let DetachedFailure { error, pos } = f;
    Unwind::Detached(Box::new(PyExc {
        class: error.class,
        message: error.message,
        pos: Some(pos),
        args: None,
    }))
}

enum Flow {
    Normal,
    Break,
    Continue,
    Return(Value),
}

/// One namespace: the module's globals or a function call's locals. Enclosing function
/// scopes are reached through `parent`, which is how closures see their outer variables.
#[derive(Debug, Default)]
pub struct Scope {
    vars: RefCell<Vars>,
    parent: Option<Rc<Scope>>,
    /// The names a `global` statement declared here; a short list, and empty in most
    /// calls (a set would seed a hasher for every call).
    globals_declared: RefCell<Vec<String>>,
    /// Bumped whenever a name here is bound or deleted: lookups cached against the module's
    /// globals are valid while it is unchanged.
    generation: std::cell::Cell<u64>,
    /// For a function call's scope, the names its body makes local (see `locals`): one of
    /// them unbound here is an error, not a lookup further out.
    locals: Option<Rc<[Rc<str>]>>,
    /// A comprehension's own scope: an assignment expression (`:=`) in it binds in the
    /// function (or module) around it, as in Python.
    comprehension: bool,
}

impl Scope {
    fn comprehension(parent: &Rc<Scope>) -> Rc<Scope> {
        Rc::new(Scope {
            parent: Some(parent.clone()),
            comprehension: true,
            ..Scope::default()
        })
    }

    fn child(parent: &Rc<Scope>) -> Rc<Scope> {
        Rc::new(Scope {
            parent: Some(parent.clone()),
            ..Scope::default()
        })
    }

    fn module(self: &Rc<Self>) -> Rc<Scope> {
        let mut s = self.clone();
        while let Some(p) = s.parent.clone() {
            s = p;
        }
        s
    }

    fn lookup(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.vars.borrow().get(name) {
            return Some(v.clone());
        }
        self.parent.as_ref().and_then(|p| p.lookup(name))
    }

    pub fn set(self: &Rc<Self>, name: &str, value: Value) {
        let target = self.binding_scope(name);
        target.vars.borrow_mut().set(name, value);
        target.changed();
    }

    /// Unbinds `name` where `set` would bind it; false when it was not bound there.
    fn unbind(self: &Rc<Self>, name: &str) -> bool {
        let target = self.binding_scope(name);
        target.changed();
        let removed = target.vars.borrow_mut().remove(name).is_some();
        removed
    }

    /// The module's globals for a name a `global` statement declared here, else this scope.
    fn binding_scope(self: &Rc<Self>, name: &str) -> Rc<Scope> {
        let global = {
            let declared = self.globals_declared.borrow();
            !declared.is_empty() && declared.iter().any(|d| d == name)
        };
        if global {
            self.module()
        } else {
            self.clone()
        }
    }

    /// Binds a parameter of the call this scope is for (`global` cannot name one).
    fn bind_param(&self, key: &Rc<str>, value: Value) {
        self.vars.borrow_mut().set_key(key, value);
        self.changed();
    }

    fn changed(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
    }

    /// Unbinds every name. A module's functions hold its globals and its globals hold the
    /// functions: without this, each revision's namespace outlived its run, and a long
    /// upgrade took fresh memory for every revision instead of reusing the last one's.
    fn clear(&self) {
        let vars = std::mem::take(&mut *self.vars.borrow_mut());
        self.changed();
        // Dropped once the namespace is no longer borrowed: a value may hold this scope.
        drop(vars);
    }

    pub fn get(&self, name: &str) -> Option<Value> {
        self.lookup(name)
    }
}

/// The error for reading `name` where a function around `scope` makes it local but it is
/// not bound (yet, or any more): Python's, instead of the global of the same name.
fn unbound_local(name: &str, scope: &Scope) -> R<()> {
    let mut s = scope;
    let mut own = true;
    while let Some(parent) = &s.parent {
        if let Some(locals) = &s.locals {
            if locals.iter().any(|l| **l == *name) {
                return Err(if own {
                    exc(
                        "UnboundLocalError",
                        format!(
                            "cannot access local variable '{name}' where it is not associated with a value"
                        ),
                    )
                } else {
                    exc(
                        "NameError",
                        format!(
                            "cannot access free variable '{name}' where it is not associated with a value in enclosing scope"
                        ),
                    )
                });
            }
        }
        own = false;
        s = parent;
    }
    Ok(())
}

/// A namespace's variables. A function call's locals are a handful of names, searched in
/// order without hashing and without allocating a table per call (a data loop calls its
/// helpers on every row); past `SMALL_VARS` names (a module's globals) they move to a map.
#[derive(Debug)]
enum Vars {
    Few(Vec<(Rc<str>, Value)>),
    Many(rustc_hash::FxHashMap<Rc<str>, Value>),
}

const SMALL_VARS: usize = 8;

impl Default for Vars {
    fn default() -> Self {
        Vars::Few(Vec::new())
    }
}

impl Vars {
    fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Vars::Few(v) => v.iter().find(|(k, _)| **k == *name).map(|(_, v)| v),
            Vars::Many(m) => m.get(name),
        }
    }

    /// Rebinding keeps the key: a loop assigns the same names on every row.
    fn set(&mut self, name: &str, value: Value) {
        self.set_with(name, value, || name.into());
    }

    /// `set` with a key made beforehand: a function's parameters are bound on every call,
    /// and sharing the key saves allocating and copying the name each time.
    fn set_key(&mut self, key: &Rc<str>, value: Value) {
        self.set_with(key, value, || key.clone());
    }

    fn set_with(&mut self, name: &str, value: Value, key: impl FnOnce() -> Rc<str>) {
        match self {
            Vars::Few(v) => {
                if let Some(slot) = v.iter_mut().find(|(k, _)| **k == *name) {
                    slot.1 = value;
                } else if v.len() < SMALL_VARS {
                    if v.capacity() == 0 {
                        // A call's scope: its parameters and a few locals, in one allocation.
                        v.reserve_exact(4);
                    }
                    v.push((key(), value));
                } else {
                    let mut m: rustc_hash::FxHashMap<Rc<str>, Value> = v.drain(..).collect();
                    m.insert(key(), value);
                    *self = Vars::Many(m);
                }
            }
            Vars::Many(m) => match m.get_mut(name) {
                Some(slot) => *slot = value,
                None => {
                    m.insert(key(), value);
                }
            },
        }
    }

    fn remove(&mut self, name: &str) -> Option<Value> {
        match self {
            Vars::Few(v) => {
                let i = v.iter().position(|(k, _)| **k == *name)?;
                Some(v.remove(i).1)
            }
            Vars::Many(m) => m.remove(name),
        }
    }
}

/// Runs the module's top level, then calls `function` (`"upgrade"` / `"downgrade"`) with no
/// arguments, as Alembic does. `src` is the file's text (for line/column of errors).
pub fn run_revision_function(
    path: &std::path::Path,
    src: &str,
    module: &Module,
    function: &str,
    host: &mut dyn Host,
) -> Result<(), EvalError> {
    let mut interp = Interp::new(path, src, host);
    let globals = Rc::new(Scope::default());
    let module_name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    globals.set("__name__", Value::str(module_name));
    globals.set("__file__", Value::str(path.display().to_string().as_str()));
    let outcome =
        interp
            .exec_block(&module.body, &globals)
            .and_then(|_| match globals.get(function) {
                Some(f) => interp.call(&f, Vec::new(), Vec::new()).map(|_| ()),
                None => Err(exc(
                    "AttributeError",
                    format!("module has no attribute '{function}'"),
                )),
            });
    // A statement still running in the background failed before whatever else the body
    // did, so its failure is the one Python would have raised.
    let outcome = match interp.host.finish().map_err(detached) {
        Err(failure) => Err(failure),
        Ok(()) => outcome,
    };
    let outcome = outcome.map_err(|u| interp.to_error(u, Span::new(0, 0)));
    globals.clear();
    outcome
}

pub struct Interp<'h> {
    pub host: &'h mut dyn Host,
    pub path: Arc<PathBuf>,
    src: Rc<str>,
    lines: LineIndex,
    depth: usize,
    steps: u64,
    max_steps: u64,
    /// The innermost position reached, for errors raised by natives.
    pub here: Span,
    /// The innermost statement running: where an exception raised in it is located.
    pub statement: Span,
    /// `with` statements waiting for their context-manager generator to `yield`.
    yield_points: Vec<YieldPoint>,
    /// Builtins and module attributes met so far. Both are immutable and the same on every
    /// lookup, and a data loop looks the same few up on every row.
    builtins: rustc_hash::FxHashMap<String, Value>,
    /// What a name of the source resolved to in the module's globals or the builtins, by the
    /// address of the name's text in the syntax tree (see `load_name`).
    global_names: rustc_hash::FxHashMap<usize, GlobalName>,
    /// Each `def`'s local names, by the address of its body (a `def` inside a loop runs
    /// on every pass).
    local_names: rustc_hash::FxHashMap<usize, Rc<[Rc<str>]>>,
    module_attrs: rustc_hash::FxHashMap<&'static str, rustc_hash::FxHashMap<Box<str>, Value>>,
    /// Attributes of natives that give the same attribute every time (`datetime.fromisoformat`,
    /// `timezone.utc`, `table.c.id`), by the receiver's address: a data loop asks for the
    /// same ones on every row, and each answer was a new object. Kept, `t.c.id is t.c.id`
    /// also holds, as in SQLAlchemy.
    constant_attrs: rustc_hash::FxHashMap<usize, ConstantAttrs>,
    /// Attributes in `constant_attrs`, all receivers together.
    constant_attr_count: usize,
    /// The exceptions whose `except` handlers are running, innermost last.
    handling: Vec<PyExc>,
    /// Scopes of finished calls, for the next calls (see `call_scope`).
    spare_scopes: Vec<Rc<Scope>>,
    /// `try` statements running, in all frames: a statement whose failure one of them could
    /// catch is never handed to the host to run later.
    try_depth: usize,
    /// The expression of the innermost expression statement being run: its value is
    /// discarded. Only compared, never read; it points into a syntax tree being run.
    unused_value: *const Expr,
    /// Set just before a connection's method is called for a discarded `conn.execute(...)`
    /// outside any `try`; the method takes it.
    pub result_unused: bool,
    /// The last position `pos` computed: a loop asks for the same one on every row.
    last_pos: RefCell<Option<(u32, SourcePos)>>,
    /// Columns' Python-side `default=` constants and callables, which an INSERT through
    /// their Table fills in (`ops::PythonDefault::Value` indexes this).
    pub python_defaults: Vec<Value>,
}

/// Spare scopes kept at most: about the depth of helper calls a loop body nests.
const MAX_SPARE_SCOPES: usize = 16;

/// The kept attributes of one receiver, which the entry holds so that its address is not
/// reused while the entry lives. A receiver has a few, found by name.
struct ConstantAttrs {
    _receiver: Rc<Native>,
    attrs: Vec<(Box<str>, Value)>,
}

/// Attributes `constant_attrs` keeps at most: a body that builds a table per row must not
/// grow it without bound.
const MAX_CONSTANT_ATTRS: usize = 4096;

/// One entry of `Interp::global_names`: valid for this module scope at this generation, and
/// for this name (a syntax tree's text can be freed and its address reused).
struct GlobalName {
    module: *const Scope,
    generation: u64,
    name: Box<str>,
    value: Value,
}

struct YieldPoint {
    /// The call depth the generator's own body runs at.
    depth: usize,
    items: Vec<crate::alembic_compat::script::ast::WithItem>,
    index: usize,
    body: Vec<Stmt>,
    scope: Rc<Scope>,
    /// How the block ended, once the generator yielded.
    flow: Option<Flow>,
}

impl<'h> Interp<'h> {
    pub fn new(path: &std::path::Path, src: &str, host: &'h mut dyn Host) -> Self {
        Interp {
            host,
            path: Arc::new(path.to_path_buf()),
            src: src.into(),
            lines: LineIndex::new(src),
            depth: 0,
            steps: 0,
            max_steps: step_limit(),
            here: Span::new(0, 0),
            statement: Span::new(0, 0),
            yield_points: Vec::new(),
            builtins: Default::default(),
            global_names: Default::default(),
            local_names: Default::default(),
            module_attrs: Default::default(),
            constant_attrs: Default::default(),
            constant_attr_count: 0,
            handling: Vec::new(),
            spare_scopes: Vec::new(),
            try_depth: 0,
            unused_value: std::ptr::null(),
            result_unused: false,
            last_pos: RefCell::new(None),
            python_defaults: Vec::new(),
        }
    }

    /// Whether a statement run now may be handed to the host to run later: no `try` could
    /// catch its failure.
    pub fn may_defer(&self) -> bool {
        self.try_depth == 0
    }

    /// Waits for the statements the host runs in the background; raises the first that
    /// failed. Called before anything else reaches the database or the output.
    pub fn settle(&mut self) -> R<()> {
        self.host.settle().map_err(detached)
    }

    /// A name's value: the innermost function scope that binds it, else the module's
    /// globals, else the builtins. A data loop looks up the same global and builtin names
    /// (helpers, `sa`, `isinstance`) on every row; each is resolved once and reused until
    /// the module's globals change, instead of hashing the name into the globals and then
    /// the builtins every time.
    fn load_name(&mut self, name: &str, scope: &Rc<Scope>) -> R<Value> {
        let mut module: &Scope = scope;
        while let Some(parent) = &module.parent {
            if let Some(v) = module.vars.borrow().get(name) {
                return Ok(v.clone());
            }
            module = parent;
        }
        let key = name.as_ptr() as usize;
        let generation = module.generation.get();
        let module_id: *const Scope = module;
        if let Some(hit) = self.global_names.get(&key) {
            if hit.module == module_id && hit.generation == generation && *hit.name == *name {
                return Ok(hit.value.clone());
            }
        }
        // Whether `name` is local to a function around it depends only on where the name is
        // written, so a name cached below has passed this check for good.
        unbound_local(name, scope)?;
        let found = module.vars.borrow().get(name).cloned();
        let value = match found {
            Some(v) => v,
            None => self.builtin(name)?,
        };
        self.global_names.insert(
            key,
            GlobalName {
                module: module_id,
                generation,
                name: name.into(),
                value: value.clone(),
            },
        );
        Ok(value)
    }

    fn builtin(&mut self, name: &str) -> R<Value> {
        if let Some(v) = self.builtins.get(name) {
            return Ok(v.clone());
        }
        let v = builtins::builtin(name).ok_or_else(|| {
            if builtins::is_unmodelled_builtin(name) {
                unsupported(format!("the builtin `{name}`"), "not modelled")
            } else {
                exc("NameError", format!("name '{name}' is not defined"))
            }
        })?;
        self.builtins.insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// `this.attr`, answered from `constant_attrs` where the receiver allows it.
    fn get_attr(&mut self, this: &Value, attr: &str) -> R<Value> {
        let Value::Native(n) = this else {
            return builtins::get_attr(self, this, attr);
        };
        if !n.attrs_are_constant() {
            return builtins::get_attr(self, this, attr);
        }
        let key = Rc::as_ptr(n) as usize;
        if let Some(kept) = self.constant_attrs.get(&key) {
            if let Some((_, v)) = kept.attrs.iter().find(|(a, _)| **a == *attr) {
                return Ok(v.clone());
            }
        }
        let value = builtins::get_attr(self, this, attr)?;
        if self.constant_attr_count < MAX_CONSTANT_ATTRS {
            self.constant_attr_count += 1;
            self.constant_attrs
                .entry(key)
                .or_insert_with(|| ConstantAttrs {
                    _receiver: n.clone(),
                    attrs: Vec::new(),
                })
                .attrs
                .push((attr.into(), value.clone()));
        }
        Ok(value)
    }

    /// `module.attr`, computed by `compute` the first time only.
    pub(super) fn module_attr(
        &mut self,
        module: &'static str,
        attr: &str,
        compute: impl FnOnce() -> R<Value>,
    ) -> R<Value> {
        if let Some(v) = self.module_attrs.get(module).and_then(|m| m.get(attr)) {
            return Ok(v.clone());
        }
        let v = compute()?;
        self.module_attrs
            .entry(module)
            .or_default()
            .insert(attr.into(), v.clone());
        Ok(v)
    }

    pub fn pos(&self, span: Span) -> SourcePos {
        if let Some((start, pos)) = &*self.last_pos.borrow() {
            if *start == span.start {
                return pos.clone();
            }
        }
        let (line, col) = self.lines.line_col(&self.src, span.start as usize);
        let pos = SourcePos {
            path: self.path.clone(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        };
        *self.last_pos.borrow_mut() = Some((span.start, pos.clone()));
        pos
    }

    fn locate(&self, mut u: Unwind, span: Span) -> Unwind {
        match &mut u {
            Unwind::Exc(e) if e.pos.is_none() => e.pos = Some(self.pos(span)),
            Unwind::Unsupported(r) if r.pos.is_none() => r.pos = Some(self.pos(span)),
            Unwind::Exc(_) | Unwind::Unsupported(_) | Unwind::Detached(_) => {}
        }
        u
    }

    fn to_error(&self, u: Unwind, fallback: Span) -> EvalError {
        match u {
            Unwind::Exc(e) | Unwind::Detached(e) => EvalError::Exception {
                class: e.class,
                message: e.message,
                pos: e.pos.unwrap_or_else(|| self.pos(fallback)),
            },
            Unwind::Unsupported(r) => EvalError::Unsupported {
                pos: r.pos.unwrap_or_else(|| self.pos(fallback)),
                what: r.what,
                why: r.why,
            },
        }
    }

    // ----- statements --------------------------------------------------------------------

    fn exec_block(&mut self, body: &[Stmt], scope: &Rc<Scope>) -> R<Flow> {
        for stmt in body {
            let outer = std::mem::replace(&mut self.statement, stmt.span);
            let done = self.exec(stmt, scope);
            self.statement = outer;
            match done.map_err(|u| self.locate(u, stmt.span))? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn exec(&mut self, stmt: &Stmt, scope: &Rc<Scope>) -> R<Flow> {
        self.here = stmt.span;
        self.steps += 1;
        if self.steps > self.max_steps {
            return Err(unsupported(
                format!("a body running more than {} statements", self.max_steps),
                "stopped here; an endless loop?",
            ));
        }
        match &stmt.kind {
            // A constant on its own (a docstring) does nothing; evaluating one would copy
            // the text on every call of a helper that a data loop calls per row.
            StmtKind::Expr(e) if matches!(e.kind, ExprKind::Constant(_)) => {}
            StmtKind::Expr(e) => {
                // Restored afterwards: a helper called while `e` is evaluated has expression
                // statements of its own, and `e` must still be recognised when it is called.
                let outer = std::mem::replace(&mut self.unused_value, e);
                let result = self.eval(e, scope);
                self.unused_value = outer;
                result?;
            }
            StmtKind::Assign { targets, value } => {
                let v = self.eval(value, scope)?;
                for t in targets {
                    self.assign(t, v.clone(), scope)?;
                }
            }
            StmtKind::AnnAssign { target, value, .. } => {
                if let Some(value) = value {
                    let v = self.eval(value, scope)?;
                    self.assign(target, v, scope)?;
                }
            }
            StmtKind::AugAssign { target, op, value } => {
                // `x[k] op= v` evaluates `x` and `k` once, reads the item, then `v`.
                let item = match &target.kind {
                    ExprKind::Subscript { value: obj, index }
                        if !matches!(index.kind, ExprKind::Slice { .. }) =>
                    {
                        let obj = self.eval(obj, scope)?;
                        let key = self.eval(index, scope)?;
                        Some((obj, key))
                    }
                    _ => None,
                };
                let current = match &item {
                    Some((obj, key)) => self.item(obj, key.clone())?,
                    None => self.eval(target, scope)?,
                };
                let rhs = self.eval(value, scope)?;
                let new = match (&current, op) {
                    // `l += x` extends the list in place, as Python does.
                    (Value::List(l), BinOp::Add) => {
                        let items = self.iterate(&rhs)?;
                        l.borrow_mut().extend(items);
                        current.clone()
                    }
                    _ => self.binop(*op, &current, &rhs)?,
                };
                match item {
                    Some((obj, key)) => builtins::set_item(&obj, key, new)?,
                    None => self.assign(target, new, scope)?,
                }
            }
            StmtKind::Pass => {}
            StmtKind::Break => return Ok(Flow::Break),
            StmtKind::Continue => return Ok(Flow::Continue),
            StmtKind::Return(v) => {
                let v = match v {
                    Some(e) => self.eval(e, scope)?,
                    None => Value::None,
                };
                return Ok(Flow::Return(v));
            }
            StmtKind::Raise { exc: e, .. } => {
                let Some(e) = e else {
                    return Err(match self.handling.last() {
                        Some(handled) => Unwind::Exc(Box::new(handled.clone())),
                        None => exc("RuntimeError", "No active exception to reraise"),
                    });
                };
                let v = self.eval(e, scope)?;
                return Err(builtins::raise_value(&v));
            }
            StmtKind::Global(names) => {
                for n in names {
                    let mut declared = scope.globals_declared.borrow_mut();
                    if !declared.contains(&n.name) {
                        declared.push(n.name.clone());
                    }
                }
            }
            StmtKind::Nonlocal(_) => {
                return Err(unsupported(
                    "`nonlocal`",
                    "closures here see outer variables but do not rebind them",
                ))
            }
            StmtKind::Del(targets) => {
                for t in targets {
                    self.delete(t, scope)?;
                }
            }
            StmtKind::Assert { test, msg } => {
                if !self.eval(test, scope)?.truthy() {
                    // `assert x, msg` raises AssertionError(msg): its args hold msg itself,
                    // an empty string included.
                    return Err(match msg {
                        Some(m) => {
                            let m = self.eval(m, scope)?;
                            Unwind::Exc(Box::new(PyExc {
                                class: "AssertionError".to_string(),
                                message: builtins::str_of(&m),
                                pos: None,
                                args: Some(vec![m]),
                            }))
                        }
                        None => exc("AssertionError", ""),
                    });
                }
            }
            StmtKind::Import(aliases) => {
                for a in aliases {
                    let module =
                        native::import_module(&a.name).map_err(|u| self.locate(u, a.span))?;
                    match &a.asname {
                        Some(asname) => scope.set(asname, module),
                        None => {
                            // `import a.b` binds `a`.
                            let top = a.name.split('.').next().unwrap_or(&a.name);
                            let v =
                                native::import_module(top).map_err(|u| self.locate(u, a.span))?;
                            scope.set(top, v);
                        }
                    }
                }
            }
            StmtKind::ImportFrom {
                level,
                module,
                names,
            } => {
                if *level > 0 {
                    return Err(unsupported(
                        "a relative import",
                        "revision files are loaded on their own, not as part of a package",
                    ));
                }
                let module_name = module.clone().unwrap_or_default();
                if names.is_empty() {
                    return Err(unsupported(
                        format!("`from {module_name} import *`"),
                        "name the imported objects",
                    ));
                }
                let m = native::import_module(&module_name)?;
                for a in names {
                    let v = native::import_from(&m, &module_name, &a.name)
                        .map_err(|u| self.locate(u, a.span))?;
                    scope.set(a.asname.as_deref().unwrap_or(&a.name), v);
                }
            }
            StmtKind::If { test, body, orelse } => {
                return if self.eval(test, scope)?.truthy() {
                    self.exec_block(body, scope)
                } else {
                    self.exec_block(orelse, scope)
                };
            }
            StmtKind::For {
                target,
                iter,
                body,
                orelse,
            } => {
                let it = self.eval(iter, scope)?;
                let mut items = builtins::LoopItems::new(it)?;
                while let Some(item) = items.next_item()? {
                    self.assign(target, item, scope)?;
                    match self.exec_block(body, scope)? {
                        Flow::Break => return Ok(Flow::Normal),
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        Flow::Normal | Flow::Continue => {}
                    }
                }
                return self.exec_block(orelse, scope);
            }
            StmtKind::While { test, body, orelse } => {
                while self.eval(test, scope)?.truthy() {
                    match self.exec_block(body, scope)? {
                        Flow::Break => return Ok(Flow::Normal),
                        Flow::Return(v) => return Ok(Flow::Return(v)),
                        Flow::Normal | Flow::Continue => {}
                    }
                }
                return self.exec_block(orelse, scope);
            }
            StmtKind::With { items, body } => return self.exec_with(items, 0, body, scope),
            StmtKind::Try {
                body,
                handlers,
                orelse,
                finalbody,
            } => {
                self.try_depth += 1;
                let outcome = self.exec_try(body, handlers, orelse, finalbody, scope);
                self.try_depth -= 1;
                return outcome;
            }
            StmtKind::FunctionDef(def) => {
                // Python evaluates the decorators first and applies them innermost first.
                let mut decorators = Vec::with_capacity(def.decorators.len());
                for d in &def.decorators {
                    decorators.push(self.eval(d, scope)?);
                }
                let locals = self
                    .local_names
                    .entry(Arc::as_ptr(&def.body) as usize)
                    .or_insert_with(|| locals::local_names(&def.params, &def.body))
                    .clone();
                let mut f = self.make_function(
                    &def.name,
                    &def.params,
                    scope,
                    |_| FunctionBody::Block(def.body.clone()),
                    Some(locals),
                )?;
                for (d, expr) in decorators.iter().zip(&def.decorators).rev() {
                    f = self
                        .call(d, vec![f], Vec::new())
                        .map_err(|u| self.locate(u, expr.span))?;
                }
                scope.set(&def.name, f);
            }
            StmtKind::ClassDef(def) => {
                let class = self.define_class(def, scope)?;
                scope.set(&def.name, class);
            }
        }
        Ok(Flow::Normal)
    }

    fn exec_try(
        &mut self,
        body: &[Stmt],
        handlers: &[crate::alembic_compat::script::ast::ExceptHandler],
        orelse: &[Stmt],
        finalbody: &[Stmt],
        scope: &Rc<Scope>,
    ) -> R<Flow> {
        let outcome = match self.exec_block(body, scope) {
            Ok(Flow::Normal) => self.exec_block(orelse, scope),
            Ok(flow) => Ok(flow),
            Err(Unwind::Exc(e)) => self.handle(e, handlers, scope),
            Err(other) => Err(other),
        };
        if !finalbody.is_empty() {
            match self.exec_block(finalbody, scope)? {
                Flow::Normal => {}
                flow => return Ok(flow),
            }
        }
        outcome
    }

    fn handle(
        &mut self,
        e: Box<PyExc>,
        handlers: &[crate::alembic_compat::script::ast::ExceptHandler],
        scope: &Rc<Scope>,
    ) -> R<Flow> {
        for h in handlers {
            let matches = match &h.typ {
                None => true,
                Some(t) => {
                    let t = self.eval(t, scope)?;
                    builtins::exception_matches(&e.class, &t)?
                }
            };
            if matches {
                if let Some(name) = &h.name {
                    scope.set(
                        name,
                        Value::native(Native::Exception(Box::new((*e).clone()))),
                    );
                }
                // A bare `raise` in the handler, or in a function it calls, re-raises `e`.
                self.handling.push(*e);
                let outcome = self.exec_block(&h.body, scope);
                self.handling.pop();
                // Python deletes the name when the handler ends, however it ends.
                if let Some(name) = &h.name {
                    scope.unbind(name);
                }
                return outcome;
            }
        }
        Err(Unwind::Exc(e))
    }

    /// A class body runs in its own namespace. Custom types (`custom`), ORM models and enum
    /// classes (`orm`) are modelled, each with one base and class attributes only.
    fn define_class(
        &mut self,
        def: &crate::alembic_compat::script::ast::ClassDef,
        scope: &Rc<Scope>,
    ) -> R<Value> {
        if let Some(d) = def.decorators.first() {
            return Err(self.locate(
                unsupported("a class decorator", "classes here are custom types only"),
                d.span,
            ));
        }
        let base = match def.bases.as_slice() {
            [Arg::Positional(b)] => self.eval(b, scope)?,
            _ => {
                return Err(unsupported(
                    "a class definition without exactly one base class",
                    super::custom::CLASSES_MODELLED,
                ))
            }
        };
        let namespace = Scope::child(scope);
        for stmt in &def.body {
            let plain = match &stmt.kind {
                StmtKind::Assign { .. } | StmtKind::Pass => true,
                StmtKind::Expr(e) => matches!(e.kind, ExprKind::Constant(_)),
                _ => false,
            };
            if !plain {
                return Err(self.locate(
                    unsupported(
                        "a method or statement in a class body",
                        "a custom type's DDL comes from its base or a @compiles function; \
                         methods are not run",
                    ),
                    stmt.span,
                ));
            }
        }
        self.exec_block(&def.body, &namespace)?;
        // The class namespace in definition order (a model's columns keep it).
        let mut order: Vec<&str> = Vec::new();
        for stmt in &def.body {
            if let StmtKind::Assign { targets, .. } = &stmt.kind {
                for t in targets {
                    if let ExprKind::Name(n) = &t.kind {
                        if !order.contains(&n.as_str()) {
                            order.push(n);
                        }
                    }
                }
            }
        }
        let vars: Vec<(String, Value)> = order
            .iter()
            .filter_map(|n| {
                namespace
                    .vars
                    .borrow()
                    .get(n)
                    .map(|v| (n.to_string(), v.clone()))
            })
            .collect();
        match &base {
            Value::Native(n) if matches!(&**n, Native::DeclarativeBase) => {
                super::orm::define_model(&def.name, vars)
            }
            Value::Native(n) if matches!(&**n, Native::EnumBase) => {
                super::orm::define_enum(&def.name, vars)
            }
            _ => super::custom::define_type_subclass(&def.name, &base, vars),
        }
    }

    fn exec_with(
        &mut self,
        items: &[crate::alembic_compat::script::ast::WithItem],
        i: usize,
        body: &[Stmt],
        scope: &Rc<Scope>,
    ) -> R<Flow> {
        let Some(item) = items.get(i) else {
            return self.exec_block(body, scope);
        };
        let manager = self.eval(&item.context, scope)?;
        if let Value::Native(n) = &manager {
            if let Native::GeneratorCm { func, args, kwargs } = &**n {
                return self.exec_generator_with(
                    func,
                    args.clone(),
                    kwargs.clone(),
                    items,
                    i,
                    body,
                    scope,
                );
            }
        }
        let entered = native::enter(self, &manager)?;
        if let Some(t) = &item.target {
            self.assign(t, entered, scope)?;
        }
        let outcome = self.exec_with(items, i + 1, body, scope);
        let ok = outcome.is_ok();
        let span = self.here;
        native::exit(self, &manager, ok).map_err(|u| self.locate(u, span))?;
        outcome
    }

    /// `with cm(...)` where `cm` is a `contextlib.contextmanager` generator: the generator
    /// runs as a call, and its `yield` runs the rest of the `with` statement in place, so an
    /// exception from the block surfaces at the `yield` (where the generator's own
    /// `try`/`finally` sees it) and the code after the `yield` is the exit.
    #[allow(clippy::too_many_arguments)]
    fn exec_generator_with(
        &mut self,
        func: &Value,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
        items: &[crate::alembic_compat::script::ast::WithItem],
        i: usize,
        body: &[Stmt],
        scope: &Rc<Scope>,
    ) -> R<Flow> {
        if !matches!(func, Value::Function(_)) {
            return Err(unsupported(
                "`contextmanager` around a non-Python function",
                "only generators defined in the revision file are modelled",
            ));
        }
        self.yield_points.push(YieldPoint {
            depth: self.depth + 1,
            items: items.to_vec(),
            index: i,
            body: body.to_vec(),
            scope: scope.clone(),
            flow: None,
        });
        let outcome = self.call(func, args, kwargs);
        let point = self.yield_points.pop();
        outcome?;
        match point.and_then(|p| p.flow) {
            Some(flow) => Ok(flow),
            None => Err(exc("RuntimeError", "generator didn't yield")),
        }
    }

    /// `yield` inside a generator a `with` statement entered: runs that statement's block.
    fn resume_with(&mut self, value: Value) -> R<Value> {
        let Some(at) = self
            .yield_points
            .iter()
            .rposition(|p| p.depth == self.depth)
        else {
            return Err(unsupported(
                "`yield` outside a `contextlib.contextmanager` function",
                "revision bodies run generators only as context managers",
            ));
        };
        if self.yield_points[at].flow.is_some() {
            return Err(exc("RuntimeError", "generator didn't stop"));
        }
        let (items, index, body, scope) = {
            let p = &self.yield_points[at];
            (p.items.clone(), p.index, p.body.clone(), p.scope.clone())
        };
        if let Some(t) = &items[index].target {
            self.assign(t, value, &scope)?;
        }
        let depth = self.depth;
        let flow = self.exec_with(&items, index + 1, &body, &scope);
        self.depth = depth;
        // Marks the point used before an exception from the block travels into the generator.
        self.yield_points[at].flow = Some(match &flow {
            Ok(Flow::Break) => Flow::Break,
            Ok(Flow::Continue) => Flow::Continue,
            Ok(Flow::Return(v)) => Flow::Return(v.clone()),
            _ => Flow::Normal,
        });
        flow.map(|_| Value::None)
    }

    fn make_function(
        &mut self,
        name: &str,
        params: &Arc<Params>,
        scope: &Rc<Scope>,
        body: impl FnOnce(&mut Self) -> FunctionBody,
        locals: Option<Rc<[Rc<str>]>>,
    ) -> R<Value> {
        let all: Vec<_> = params.posonly.iter().chain(&params.args).collect();
        let mut defaults = Vec::with_capacity(all.len());
        for p in &all {
            defaults.push(match &p.default {
                Some(d) => Some(self.eval(d, scope)?),
                None => None,
            });
        }
        let mut kw_defaults = Vec::with_capacity(params.kwonly.len());
        for p in &params.kwonly {
            kw_defaults.push(match &p.default {
                Some(d) => Some(self.eval(d, scope)?),
                None => None,
            });
        }
        Ok(Value::Function(Rc::new(Function {
            name: name.to_string(),
            params: params.clone(),
            param_keys: params.args.iter().map(|p| p.name.as_str().into()).collect(),
            defaults,
            kw_defaults,
            body: body(self),
            scope: scope.clone(),
            locals,
        })))
    }

    fn assign(&mut self, target: &Expr, value: Value, scope: &Rc<Scope>) -> R<()> {
        match &target.kind {
            ExprKind::Name(n) => {
                scope.set(n, value);
                Ok(())
            }
            ExprKind::Tuple(elts) | ExprKind::List(elts) => {
                let items = builtins::iterate_owned(value)?;
                let star = elts
                    .iter()
                    .position(|e| matches!(e.kind, ExprKind::Starred(_)));
                match star {
                    None => {
                        if items.len() != elts.len() {
                            return Err(exc(
                                "ValueError",
                                if items.len() > elts.len() {
                                    format!("too many values to unpack (expected {})", elts.len())
                                } else {
                                    format!(
                                        "not enough values to unpack (expected {}, got {})",
                                        elts.len(),
                                        items.len()
                                    )
                                },
                            ));
                        }
                        for (e, v) in elts.iter().zip(items) {
                            self.assign(e, v, scope)?;
                        }
                    }
                    Some(s) => {
                        let after = elts.len() - s - 1;
                        if items.len() < elts.len() - 1 {
                            return Err(exc(
                                "ValueError",
                                format!(
                                    "not enough values to unpack (expected at least {}, got {})",
                                    elts.len() - 1,
                                    items.len()
                                ),
                            ));
                        }
                        let mut items = items;
                        let tail = items.split_off(items.len() - after);
                        let middle = items.split_off(s);
                        for (e, v) in elts[..s].iter().zip(items) {
                            self.assign(e, v, scope)?;
                        }
                        if let ExprKind::Starred(inner) = &elts[s].kind {
                            self.assign(inner, Value::list(middle), scope)?;
                        }
                        for (e, v) in elts[s + 1..].iter().zip(tail) {
                            self.assign(e, v, scope)?;
                        }
                    }
                }
                Ok(())
            }
            ExprKind::Subscript { value: obj, index } => {
                let obj = self.eval(obj, scope)?;
                if let ExprKind::Slice { lower, upper, step } = &index.kind {
                    let (lo, hi) = self.simple_slice(lower, upper, step, scope)?;
                    let items = builtins::iterate_owned(value)?;
                    return builtins::splice(&obj, lo, hi, Some(items));
                }
                let key = self.eval(index, scope)?;
                builtins::set_item(&obj, key, value)
            }
            ExprKind::Attribute { .. } => Err(unsupported(
                "attribute assignment",
                "objects in revision bodies are read-only here",
            )),
            _ => Err(exc("SyntaxError", "cannot assign to expression")),
        }
    }

    /// The bounds of `x[lower:upper]` as a target of assignment or `del`; a step other
    /// than 1 (an extended slice, whose assignment has rules of its own) is refused.
    fn simple_slice(
        &mut self,
        lower: &Option<Box<Expr>>,
        upper: &Option<Box<Expr>>,
        step: &Option<Box<Expr>>,
        scope: &Rc<Scope>,
    ) -> R<(Option<Value>, Option<Value>)> {
        let mut bound = |x: &Option<Box<Expr>>| -> R<Option<Value>> {
            match x {
                Some(x) => Ok(Some(self.eval(x, scope)?).filter(|v| !matches!(v, Value::None))),
                None => Ok(None),
            }
        };
        let (lo, hi, st) = (bound(lower)?, bound(upper)?, bound(step)?);
        if st.is_some_and(|s| !matches!(s, Value::Int(1))) {
            return Err(unsupported(
                "assigning to or deleting an extended slice (`x[a:b:step]`)",
                "not modelled",
            ));
        }
        Ok((lo, hi))
    }

    fn delete(&mut self, target: &Expr, scope: &Rc<Scope>) -> R<()> {
        match &target.kind {
            ExprKind::Name(n) => {
                if !scope.unbind(n) {
                    unbound_local(n, scope)?;
                    return Err(exc("NameError", format!("name '{n}' is not defined")));
                }
                Ok(())
            }
            ExprKind::Subscript { value, index } => {
                let obj = self.eval(value, scope)?;
                if let ExprKind::Slice { lower, upper, step } = &index.kind {
                    let (lo, hi) = self.simple_slice(lower, upper, step, scope)?;
                    return builtins::splice(&obj, lo, hi, None);
                }
                let key = self.eval(index, scope)?;
                builtins::del_item(&obj, &key)
            }
            ExprKind::Tuple(elts) | ExprKind::List(elts) => {
                for e in elts {
                    self.delete(e, scope)?;
                }
                Ok(())
            }
            _ => Err(exc("SyntaxError", "cannot delete expression")),
        }
    }

    // ----- expressions -------------------------------------------------------------------

    pub fn eval(&mut self, e: &Expr, scope: &Rc<Scope>) -> R<Value> {
        self.eval_inner(e, scope)
            .map_err(|u| self.locate(u, e.span))
    }

    fn eval_inner(&mut self, e: &Expr, scope: &Rc<Scope>) -> R<Value> {
        Ok(match &e.kind {
            ExprKind::Name(n) => return self.load_name(n, scope),
            ExprKind::Constant(c) => match c {
                Constant::None => Value::None,
                Constant::Bool(b) => Value::Bool(*b),
                Constant::Int(IntLit::Small(i)) => Value::Int(*i),
                Constant::Int(IntLit::Big(_)) => {
                    return Err(unsupported(
                        "an integer literal beyond 64 bits",
                        "integers are 64-bit here",
                    ))
                }
                Constant::Float(f) => Value::Float(*f),
                Constant::Imag(_) => {
                    return Err(unsupported("a complex number", "no revision needs one"))
                }
                Constant::Str(s) => Value::str(s.as_str()),
                Constant::Bytes(b) => Value::Bytes(b.as_slice().into()),
                Constant::Ellipsis => Value::None,
            },
            ExprKind::JoinedStr(parts) => Value::str(self.fstring(parts, scope)?),
            ExprKind::Attribute { value, attr } => {
                let v = self.eval(value, scope)?;
                self.here = e.span;
                return self.get_attr(&v, attr);
            }
            ExprKind::Subscript { value, index } => {
                let v = self.eval(value, scope)?;
                if let ExprKind::Slice { lower, upper, step } = &index.kind {
                    let mut b = |x: &Option<Box<Expr>>| -> R<Option<Value>> {
                        match x {
                            Some(x) => Ok(Some(self.eval(x, scope)?)),
                            None => Ok(None),
                        }
                    };
                    let (l, u, s) = (b(lower)?, b(upper)?, b(step)?);
                    builtins::slice(&v, l, u, s)?
                } else {
                    let k = self.eval(index, scope)?;
                    return self.item(&v, k);
                }
            }
            ExprKind::Slice { .. } => return Err(exc("SyntaxError", "slice outside subscript")),
            ExprKind::Call { func, args } => {
                if let Some(answer) = self.short_circuit(func, args, scope)? {
                    return Ok(answer);
                }
                let f = match &func.kind {
                    ExprKind::Attribute { value, attr } => {
                        let this = self.eval(value, scope)?;
                        if let Some(method) = builtins::direct_method(&this, attr) {
                            let (pos, kw) = self.eval_args(args, scope)?;
                            self.here = e.span;
                            self.result_unused = std::ptr::eq(e, self.unused_value)
                                && self.may_defer()
                                && matches!(&this, Value::Native(n) if matches!(**n, Native::Connection));
                            let result = builtins::call_direct(self, method, this, pos, kw);
                            self.result_unused = false;
                            return result;
                        }
                        self.here = func.span;
                        self.get_attr(&this, attr)?
                    }
                    _ => self.eval(func, scope)?,
                };
                let (pos, kw) = self.eval_args(args, scope)?;
                self.here = e.span;
                return match f {
                    Value::Native(n) => native::call_owned(self, n, pos, kw),
                    f => self.call(&f, pos, kw),
                };
            }
            ExprKind::BinOp { left, op, right } => {
                let l = self.eval(left, scope)?;
                let r = self.eval(right, scope)?;
                return self.binop(*op, &l, &r);
            }
            ExprKind::UnaryOp { op, operand } => {
                let v = self.eval(operand, scope)?;
                match op {
                    UnaryOp::Not => match &v {
                        Value::Native(n) if n.is_sql() => native::sql_not(&v)?,
                        _ => Value::Bool(!v.truthy()),
                    },
                    UnaryOp::Neg => match v {
                        Value::Bool(b) => Value::Int(-i64::from(b)),
                        Value::Int(i) => Value::Int(
                            i.checked_neg()
                                .ok_or_else(|| unsupported("integer overflow", "64-bit"))?,
                        ),
                        Value::Float(f) => Value::Float(-f),
                        Value::Native(_) => native::sql_unary("-", &v)?,
                        other => {
                            return Err(type_error(format!(
                                "bad operand type for unary -: '{}'",
                                other.type_name()
                            )))
                        }
                    },
                    UnaryOp::Pos => match v {
                        Value::Bool(b) => Value::Int(i64::from(b)),
                        Value::Int(_) | Value::Float(_) => v,
                        other => {
                            return Err(type_error(format!(
                                "bad operand type for unary +: '{}'",
                                other.type_name()
                            )))
                        }
                    },
                    UnaryOp::Invert => match v {
                        Value::Bool(b) => Value::Int(!i64::from(b)),
                        Value::Int(i) => Value::Int(!i),
                        Value::Native(_) => native::sql_not(&v)?,
                        other => {
                            return Err(type_error(format!(
                                "bad operand type for unary ~: '{}'",
                                other.type_name()
                            )))
                        }
                    },
                }
            }
            ExprKind::BoolOp { op, values } => {
                let mut last = Value::None;
                for (i, v) in values.iter().enumerate() {
                    last = self.eval(v, scope)?;
                    let t = last.truthy();
                    let stop = match op {
                        BoolOp::And => !t,
                        BoolOp::Or => t,
                    };
                    if stop || i + 1 == values.len() {
                        break;
                    }
                }
                last
            }
            ExprKind::Compare { left, ops } => {
                let mut l = self.eval(left, scope)?;
                if let [(op, right)] = ops.as_slice() {
                    let r = self.eval(right, scope)?;
                    return self.compare(*op, &l, &r);
                }
                let mut result = Value::Bool(true);
                for (op, right) in ops {
                    let r = self.eval(right, scope)?;
                    result = self.compare(*op, &l, &r)?;
                    if !result.truthy() {
                        return Ok(result);
                    }
                    l = r;
                }
                result
            }
            ExprKind::IfExp { test, body, orelse } => {
                let chosen = if self.eval(test, scope)?.truthy() {
                    body
                } else {
                    orelse
                };
                return self.eval(chosen, scope);
            }
            ExprKind::Lambda { params, body } => {
                let body = body.clone();
                self.make_function(
                    "<lambda>",
                    params,
                    scope,
                    |_| FunctionBody::Lambda(body),
                    None,
                )?
            }
            ExprKind::NamedExpr { target, value } => {
                let v = self.eval(value, scope)?;
                let mut home = scope;
                while let (true, Some(parent)) = (home.comprehension, &home.parent) {
                    home = parent;
                }
                home.set(target, v.clone());
                v
            }
            ExprKind::List(elts) => Value::list(self.eval_elts(elts, scope)?),
            ExprKind::Tuple(elts) => Value::tuple(self.eval_elts(elts, scope)?),
            ExprKind::Set(elts) => {
                let mut out = PySet::default();
                for v in self.eval_elts(elts, scope)? {
                    builtins::set_add(&mut out, v)?;
                }
                builtins::new_set(out)
            }
            ExprKind::Dict(items) => {
                let mut d = Dict::default();
                for (k, v) in items {
                    match k {
                        Some(k) => {
                            let k = self.eval(k, scope)?;
                            builtins::check_hashable(&k)?;
                            let v = self.eval(v, scope)?;
                            d.insert(k, v);
                        }
                        None => {
                            let m = self.eval(v, scope)?;
                            for (k, v) in builtins::mapping_items(&m)? {
                                d.insert(k, v);
                            }
                        }
                    }
                }
                Value::Dict(Rc::new(RefCell::new(d)))
            }
            ExprKind::ListComp { elt, generators } | ExprKind::GeneratorExp { elt, generators } => {
                let mut out = Vec::new();
                let inner = Scope::comprehension(scope);
                self.comprehension(generators, 0, &inner, &mut |me, s| {
                    out.push(me.eval(elt, s)?);
                    Ok(true)
                })?;
                Value::list(out)
            }
            ExprKind::SetComp { elt, generators } => {
                let mut out = PySet::default();
                let inner = Scope::comprehension(scope);
                self.comprehension(generators, 0, &inner, &mut |me, s| {
                    let v = me.eval(elt, s)?;
                    builtins::set_add(&mut out, v)?;
                    Ok(true)
                })?;
                builtins::new_set(out)
            }
            ExprKind::DictComp {
                key,
                value,
                generators,
            } => {
                let mut d = Dict::default();
                let inner = Scope::comprehension(scope);
                self.comprehension(generators, 0, &inner, &mut |me, s| {
                    let k = me.eval(key, s)?;
                    builtins::check_hashable(&k)?;
                    let v = me.eval(value, s)?;
                    d.insert(k, v);
                    Ok(true)
                })?;
                Value::Dict(Rc::new(RefCell::new(d)))
            }
            ExprKind::Starred(_) => {
                return Err(exc("SyntaxError", "can't use starred expression here"))
            }
            ExprKind::Yield(v) => {
                let value = match v {
                    Some(e) => self.eval(e, scope)?,
                    None => Value::None,
                };
                return self.resume_with(value);
            }
            ExprKind::Await(_) | ExprKind::YieldFrom(_) => {
                return Err(unsupported(
                    "`await`/`yield`",
                    "revision bodies run as plain functions",
                ))
            }
        })
    }

    /// `any(x for ...)` and `all(x for ...)` stop at their answer, as Python's do: the
    /// generator is not run past the item that decides (an item after it that would raise
    /// does not). None for any other call, or when `any`/`all` is not the builtin.
    fn short_circuit(&mut self, func: &Expr, args: &[Arg], scope: &Rc<Scope>) -> R<Option<Value>> {
        let (ExprKind::Name(name), [Arg::Positional(arg)]) = (&func.kind, args) else {
            return Ok(None);
        };
        let ExprKind::GeneratorExp { elt, generators } = &arg.kind else {
            return Ok(None);
        };
        let wanted = match name.as_str() {
            "any" => true,
            "all" => false,
            _ => return Ok(None),
        };
        let f = self.load_name(name, scope)?;
        if !matches!(&f, Value::Native(n) if matches!(**n, Native::Builtin(b) if b == name)) {
            return Ok(None);
        }
        let inner = Scope::comprehension(scope);
        let mut decided = false;
        self.comprehension(generators, 0, &inner, &mut |me, s| {
            decided = me.eval(elt, s)?.truthy() == wanted;
            Ok(!decided)
        })?;
        Ok(Some(Value::Bool(if wanted { decided } else { !decided })))
    }

    fn comprehension(
        &mut self,
        gens: &[Comprehension],
        i: usize,
        scope: &Rc<Scope>,
        emit: &mut dyn FnMut(&mut Self, &Rc<Scope>) -> R<bool>,
    ) -> R<bool> {
        let Some(g) = gens.get(i) else {
            return emit(self, scope);
        };
        // The first iterable is evaluated where the comprehension is written, the others
        // inside it, as Python does.
        let it = match (i, &scope.parent) {
            (0, Some(outer)) if scope.comprehension => self.eval(&g.iter, outer)?,
            _ => self.eval(&g.iter, scope)?,
        };
        let mut items = builtins::LoopItems::new(it)?;
        'items: while let Some(item) = items.next_item()? {
            self.assign(&g.target, item, scope)?;
            for cond in &g.ifs {
                if !self.eval(cond, scope)?.truthy() {
                    continue 'items;
                }
            }
            if !self.comprehension(gens, i + 1, scope, emit)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn eval_elts(&mut self, elts: &[Expr], scope: &Rc<Scope>) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(elts.len());
        for e in elts {
            if let ExprKind::Starred(inner) = &e.kind {
                let v = self.eval(inner, scope)?;
                out.extend(self.iterate(&v)?);
            } else {
                out.push(self.eval(e, scope)?);
            }
        }
        Ok(out)
    }

    fn eval_args(&mut self, args: &[Arg], scope: &Rc<Scope>) -> R<CallArgs> {
        // Sized up front: a data loop makes several calls per row, and growing from empty
        // costs an allocation per push.
        let mut pos = Vec::with_capacity(args.len());
        let mut kw: Vec<(String, Value)> = Vec::new();
        for a in args {
            match a {
                Arg::Positional(e) => pos.push(self.eval(e, scope)?),
                Arg::Star(e) => {
                    let v = self.eval(e, scope)?;
                    pos.extend(self.iterate(&v)?);
                }
                Arg::Keyword { name, value } => {
                    let v = self.eval(value, scope)?;
                    kw.push((name.clone(), v));
                }
                Arg::DoubleStar(e) => {
                    let m = self.eval(e, scope)?;
                    for (k, v) in builtins::mapping_items(&m)? {
                        let Some(k) = k.as_str() else {
                            return Err(type_error("keywords must be strings"));
                        };
                        kw.push((k.to_string(), v));
                    }
                }
            }
        }
        Ok((pos, kw))
    }

    fn fstring(&mut self, parts: &[FStringPart], scope: &Rc<Scope>) -> R<String> {
        let mut out = String::new();
        for p in parts {
            match p {
                FStringPart::Literal(s) => out.push_str(s),
                FStringPart::Field {
                    expr,
                    conversion,
                    spec,
                    debug_text,
                } => {
                    let v = self.eval(expr, scope)?;
                    let spec = self.fstring(spec, scope)?;
                    // `f"{x=}"` defaults to repr, like Python.
                    let conv = conversion.or(if debug_text.is_some() && spec.is_empty() {
                        Some('r')
                    } else {
                        None
                    });
                    let v = match conv {
                        Some('r') => Value::str(builtins::repr(&v)),
                        Some('s') => Value::str(builtins::str_of(&v)),
                        Some('a') => Value::str(builtins::ascii(&builtins::repr(&v))),
                        _ => v,
                    };
                    out.push_str(&builtins::format_value(&v, &spec)?);
                }
            }
        }
        Ok(out)
    }

    // ----- calls ---------------------------------------------------------------------------

    pub fn call(&mut self, f: &Value, args: Vec<Value>, kwargs: Vec<(String, Value)>) -> R<Value> {
        match f {
            Value::Function(func) => self.call_function(func, args, kwargs),
            Value::Native(n) => native::call(self, n, args, kwargs),
            other => Err(type_error(format!(
                "'{}' object is not callable",
                other.type_name()
            ))),
        }
    }

    fn call_function(
        &mut self,
        func: &Rc<Function>,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> R<Value> {
        if self.depth >= MAX_CALL_DEPTH {
            return Err(exc("RecursionError", "maximum recursion depth exceeded"));
        }
        let scope = self.call_scope(&func.scope, &func.locals);
        if let Err(e) = bind_params(func, args, kwargs, &scope) {
            self.recycle_scope(scope);
            return Err(e);
        }
        self.depth += 1;
        let result = match &func.body {
            FunctionBody::Lambda(body) => self.eval(body, &scope),
            FunctionBody::Block(body) => match self.exec_block(body, &scope) {
                Ok(Flow::Return(v)) => Ok(v),
                Ok(_) => Ok(Value::None),
                Err(e) => Err(e),
            },
        };
        self.depth -= 1;
        self.recycle_scope(scope);
        result
    }

    /// A fresh scope for a call of a function defined in `parent`: one a finished call left
    /// behind when there is one. A data loop calls its helpers on every row, and each call
    /// allocated a scope and its variables' vector, then freed both.
    fn call_scope(&mut self, parent: &Rc<Scope>, locals: &Option<Rc<[Rc<str>]>>) -> Rc<Scope> {
        if let Some(mut scope) = self.spare_scopes.pop() {
            if let Some(s) = Rc::get_mut(&mut scope) {
                s.parent = Some(parent.clone());
                s.locals = locals.clone();
                return scope;
            }
        }
        Rc::new(Scope {
            parent: Some(parent.clone()),
            locals: locals.clone(),
            ..Scope::default()
        })
    }

    /// Keeps a finished call's scope for the next call, unless something still holds it (a
    /// closure defined in the call, a generator): emptied, with its vector's room kept.
    fn recycle_scope(&mut self, mut scope: Rc<Scope>) {
        if self.spare_scopes.len() >= MAX_SPARE_SCOPES {
            return;
        }
        let Some(s) = Rc::get_mut(&mut scope) else {
            return;
        };
        s.parent = None;
        s.locals = None;
        match s.vars.get_mut() {
            Vars::Few(v) => v.clear(),
            Vars::Many(_) => return,
        }
        s.globals_declared.get_mut().clear();
        s.changed();
        self.spare_scopes.push(scope);
    }

    pub fn iterate(&mut self, v: &Value) -> R<Vec<Value>> {
        builtins::iterate(v)
    }

    // ----- operators -----------------------------------------------------------------------

    pub fn binop(&mut self, op: BinOp, l: &Value, r: &Value) -> R<Value> {
        if matches!(l, Value::Native(_)) || matches!(r, Value::Native(_)) {
            if let Some(v) = native::binop(op, l, r)? {
                return Ok(v);
            }
        }
        builtins::binop(op, l, r)
    }

    /// `v[k]`.
    fn item(&mut self, v: &Value, k: Value) -> R<Value> {
        // A defaultdict's missing key: the factory's value, stored.
        let factory = match v {
            Value::Dict(d) => {
                let d = d.borrow();
                d.default_factory.clone().filter(|_| d.get(&k).is_none())
            }
            _ => None,
        };
        match factory {
            Some(f) => {
                let made = self.call(&f, Vec::new(), Vec::new())?;
                builtins::set_item(v, k, made.clone())?;
                Ok(made)
            }
            None => builtins::get_item(v, &k),
        }
    }

    fn compare(&mut self, op: CmpOp, l: &Value, r: &Value) -> R<Value> {
        let sql_side = |v: &Value| matches!(v, Value::Native(n) if n.is_sql());
        // `is` and `is not` are identity in Python, which no SQLAlchemy object can overload:
        // `column is None` is False, not `column IS NULL` (that is `column.is_(None)`).
        let overloadable = !matches!(op, CmpOp::In | CmpOp::NotIn | CmpOp::Is | CmpOp::IsNot);
        if (sql_side(l) || sql_side(r)) && overloadable {
            return native::sql_compare(op, l, r);
        }
        if overloadable {
            // A keys or items view compares with a set or another such view as a set; with
            // anything else it is only unequal.
            let (lv, rv) = (builtins::view_as_set(l)?, builtins::view_as_set(r)?);
            if lv.is_some() || rv.is_some() {
                let set_like = |v: &Value, view: &Option<Value>| -> Option<Value> {
                    match (view, v) {
                        (Some(set), _) => Some(set.clone()),
                        (None, Value::Set(_)) => Some(v.clone()),
                        _ => None,
                    }
                };
                match (set_like(l, &lv), set_like(r, &rv)) {
                    (Some(a), Some(b)) => return self.compare(op, &a, &b),
                    _ if matches!(op, CmpOp::Eq | CmpOp::NotEq) => {
                        return Ok(Value::Bool(op == CmpOp::NotEq))
                    }
                    _ => {}
                }
            }
        }
        Ok(Value::Bool(match op {
            CmpOp::Eq => py_eq(l, r),
            CmpOp::NotEq => !py_eq(l, r),
            CmpOp::Is => is_same(l, r),
            CmpOp::IsNot => !is_same(l, r),
            CmpOp::In => builtins::contains(r, l)?,
            CmpOp::NotIn => !builtins::contains(r, l)?,
            CmpOp::Lt | CmpOp::LtE | CmpOp::Gt | CmpOp::GtE
                if matches!((l, r), (Value::Set(_), Value::Set(_))) =>
            {
                // Subset and superset tests.
                let (small, big) = match op {
                    CmpOp::Lt | CmpOp::LtE => (l, r),
                    _ => (r, l),
                };
                let mut within = true;
                for x in builtins::iterate(small)? {
                    within &= builtins::contains(big, &x)?;
                }
                let strict = matches!(op, CmpOp::Lt | CmpOp::Gt);
                within
                    && (!strict || builtins::iterate(small)?.len() < builtins::iterate(big)?.len())
            }
            CmpOp::Lt | CmpOp::LtE | CmpOp::Gt | CmpOp::GtE => {
                match builtins::py_order(l, r, cmp_symbol(op))? {
                    None => false,
                    Some(ord) => match op {
                        CmpOp::Lt => ord.is_lt(),
                        CmpOp::LtE => ord.is_le(),
                        CmpOp::Gt => ord.is_gt(),
                        _ => ord.is_ge(),
                    },
                }
            }
        }))
    }
}

fn cmp_symbol(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Lt => "<",
        CmpOp::LtE => "<=",
        CmpOp::Gt => ">",
        CmpOp::GtE => ">=",
        CmpOp::Eq => "==",
        CmpOp::NotEq => "!=",
        _ => "in",
    }
}

/// `is`: identity for containers and objects, value identity for the singletons and small
/// immutable values (where CPython's caching makes `is` agree with `==` in practice).
fn is_same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::None, Value::None) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => Rc::ptr_eq(x, y) || x == y,
        (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y),
        (Value::Dict(x), Value::Dict(y)) => Rc::ptr_eq(x, y),
        (Value::Set(x), Value::Set(y)) => Rc::ptr_eq(x, y),
        (Value::Tuple(x), Value::Tuple(y)) => Rc::ptr_eq(x, y),
        (Value::Function(x), Value::Function(y)) => Rc::ptr_eq(x, y),
        (Value::Native(x), Value::Native(y)) => Rc::ptr_eq(x, y) || x.native_eq(y),
        _ => false,
    }
}

fn bind_params(
    func: &Function,
    args: Vec<Value>,
    mut kwargs: Vec<(String, Value)>,
    scope: &Rc<Scope>,
) -> R<()> {
    let p = &func.params;
    // The common call of a helper in a data loop, `f(a, b)` with plain parameters: bound
    // without the bookkeeping vectors below.
    let plain = kwargs.is_empty()
        && p.posonly.is_empty()
        && p.vararg.is_none()
        && p.kwonly.is_empty()
        && p.kwarg.is_none()
        && args.len() <= p.args.len()
        && func.defaults[args.len()..].iter().all(Option::is_some);
    if plain {
        let given = args.len();
        for (key, v) in func.param_keys.iter().zip(args) {
            scope.bind_param(key, v);
        }
        for (key, default) in func.param_keys.iter().zip(&func.defaults).skip(given) {
            if let Some(v) = default {
                scope.bind_param(key, v.clone());
            }
        }
        return Ok(());
    }
    let positional: Vec<_> = p.posonly.iter().chain(&p.args).collect();
    let mut args = args.into_iter();
    let mut bound: Vec<Option<Value>> = vec![None; positional.len()];
    for slot in bound.iter_mut() {
        match args.next() {
            Some(v) => *slot = Some(v),
            None => break,
        }
    }
    let extra: Vec<Value> = args.collect();
    if !extra.is_empty() && p.vararg.is_none() {
        return Err(type_error(format!(
            "{}() takes {} positional argument{} but {} were given",
            func.name,
            positional.len(),
            if positional.len() == 1 { "" } else { "s" },
            positional.len() + extra.len()
        )));
    }
    for (i, param) in positional.iter().enumerate() {
        if let Some(k) = kwargs.iter().position(|(n, _)| *n == param.name) {
            if i < p.posonly.len() {
                continue;
            }
            if bound[i].is_some() {
                return Err(type_error(format!(
                    "{}() got multiple values for argument '{}'",
                    func.name, param.name
                )));
            }
            bound[i] = Some(kwargs.remove(k).1);
        }
    }
    for (i, param) in positional.iter().enumerate() {
        let v = match bound[i].take().or_else(|| func.defaults[i].clone()) {
            Some(v) => v,
            None => {
                return Err(type_error(format!(
                    "{}() missing 1 required positional argument: '{}'",
                    func.name, param.name
                )))
            }
        };
        scope.set(&param.name, v);
    }
    if let Some(va) = &p.vararg {
        scope.set(&va.name, Value::tuple(extra));
    }
    for (i, param) in p.kwonly.iter().enumerate() {
        let v = match kwargs.iter().position(|(n, _)| *n == param.name) {
            Some(k) => kwargs.remove(k).1,
            None => match &func.kw_defaults[i] {
                Some(v) => v.clone(),
                None => {
                    return Err(type_error(format!(
                        "{}() missing 1 required keyword-only argument: '{}'",
                        func.name, param.name
                    )))
                }
            },
        };
        scope.set(&param.name, v);
    }
    match &p.kwarg {
        Some(kw) => scope.set(
            &kw.name,
            Value::dict(
                kwargs
                    .into_iter()
                    .map(|(k, v)| (Value::str(k), v))
                    .collect(),
            ),
        ),
        None => {
            if let Some((k, _)) = kwargs.first() {
                return Err(type_error(format!(
                    "{}() got an unexpected keyword argument '{k}'",
                    func.name
                )));
            }
        }
    }
    Ok(())
}

/// Number coercion shared with builtins.
pub fn num(v: &Value) -> Option<Num> {
    as_number(v)
}

#[cfg(test)]
mod vars_tests {
    use super::{Vars, SMALL_VARS};
    use crate::alembic_compat::eval::value::Value;

    fn int(v: Option<&Value>) -> Option<i64> {
        match v {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    #[test]
    fn variables_keep_their_bindings_across_the_switch_to_a_map() {
        let mut vars = Vars::default();
        let names: Vec<String> = (0..SMALL_VARS * 2).map(|i| format!("v{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            vars.set(n, Value::Int(i as i64));
            if i + 1 == SMALL_VARS {
                assert!(matches!(vars, Vars::Few(_)));
            }
        }
        assert!(matches!(vars, Vars::Many(_)));
        vars.set("v3", Value::Int(-3));
        for (i, n) in names.iter().enumerate() {
            let want = if i == 3 { -3 } else { i as i64 };
            assert_eq!(int(vars.get(n)), Some(want), "{n}");
        }
        assert_eq!(int(vars.remove("v1").as_ref()), Some(1));
        assert!(vars.get("v1").is_none() && vars.remove("v1").is_none());

        let mut few = Vars::default();
        few.set("a", Value::Int(1));
        few.set("b", Value::Int(2));
        few.set("a", Value::Int(3));
        assert_eq!(int(few.get("a")), Some(3));
        assert_eq!(int(few.remove("a").as_ref()), Some(3));
        assert!(few.get("a").is_none());
        assert_eq!(int(few.get("b")), Some(2));
        assert!(few.get("ab").is_none() && few.get("").is_none());
    }
}

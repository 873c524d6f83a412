//! Builtin functions, operators on plain values, and the methods of str/list/dict/set.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::rc::Rc;

use super::interp::{exc, key_error, type_error, unsupported, Interp, Unwind, R};
use super::native::{self, Native, ViewKind};
use super::value::{as_number, py_eq, Dict, Num, PySet, Temporal, Value};
use crate::alembic_compat::script::ast::BinOp;

const BUILTIN_FUNCTIONS: &[&str] = &[
    "len",
    "range",
    "enumerate",
    "zip",
    "sorted",
    "reversed",
    "min",
    "max",
    "sum",
    "any",
    "all",
    "isinstance",
    "int",
    "float",
    "str",
    "bool",
    "list",
    "dict",
    "set",
    "frozenset",
    "tuple",
    "print",
    "getattr",
    "hasattr",
    "repr",
    "abs",
    "round",
    "map",
    "filter",
    "iter",
    "next",
    "type",
    "callable",
    "hex",
    "ord",
    "chr",
    "divmod",
    "bytes",
    "pow",
    "bin",
    "oct",
    "format",
    "issubclass",
];

/// Python's other builtins: a name of these is refused where it is used, never the
/// NameError Python would not raise.
const UNMODELLED_BUILTINS: &[&str] = &[
    "aiter",
    "anext",
    "ascii",
    "breakpoint",
    "bytearray",
    "classmethod",
    "compile",
    "complex",
    "delattr",
    "dir",
    "eval",
    "exec",
    "exit",
    "globals",
    "hash",
    "help",
    "id",
    "input",
    "locals",
    "memoryview",
    "object",
    "open",
    "property",
    "quit",
    "setattr",
    "slice",
    "staticmethod",
    "super",
    "vars",
];

pub fn is_unmodelled_builtin(name: &str) -> bool {
    UNMODELLED_BUILTINS.contains(&name)
}

/// Exception classes and their parent, for `except` matching.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("BaseException", ""),
    ("Exception", "BaseException"),
    ("ArithmeticError", "Exception"),
    ("ZeroDivisionError", "ArithmeticError"),
    ("OverflowError", "ArithmeticError"),
    ("AssertionError", "Exception"),
    ("AttributeError", "Exception"),
    ("LookupError", "Exception"),
    ("IndexError", "LookupError"),
    ("KeyError", "LookupError"),
    ("NameError", "Exception"),
    ("UnboundLocalError", "NameError"),
    ("NotImplementedError", "RuntimeError"),
    ("RecursionError", "RuntimeError"),
    ("RuntimeError", "Exception"),
    ("StopIteration", "Exception"),
    ("TypeError", "Exception"),
    ("ValueError", "Exception"),
    ("UnicodeError", "ValueError"),
    ("UnicodeDecodeError", "UnicodeError"),
    ("json.decoder.JSONDecodeError", "ValueError"),
    ("OSError", "Exception"),
    ("SyntaxError", "Exception"),
    ("sqlalchemy.exc.SQLAlchemyError", "Exception"),
    ("sqlalchemy.exc.DBAPIError", "sqlalchemy.exc.StatementError"),
    (
        "sqlalchemy.exc.StatementError",
        "sqlalchemy.exc.SQLAlchemyError",
    ),
    ("sqlalchemy.exc.DatabaseError", "sqlalchemy.exc.DBAPIError"),
    (
        "sqlalchemy.exc.OperationalError",
        "sqlalchemy.exc.DatabaseError",
    ),
    (
        "sqlalchemy.exc.IntegrityError",
        "sqlalchemy.exc.DatabaseError",
    ),
    (
        "sqlalchemy.exc.ProgrammingError",
        "sqlalchemy.exc.DatabaseError",
    ),
    (
        "sqlalchemy.exc.NoSuchTableError",
        "sqlalchemy.exc.InvalidRequestError",
    ),
    (
        "sqlalchemy.exc.InvalidRequestError",
        "sqlalchemy.exc.SQLAlchemyError",
    ),
    (
        "sqlalchemy.exc.NoResultFound",
        "sqlalchemy.exc.InvalidRequestError",
    ),
    (
        "sqlalchemy.exc.MultipleResultsFound",
        "sqlalchemy.exc.InvalidRequestError",
    ),
    (
        "sqlalchemy.exc.ResourceClosedError",
        "sqlalchemy.exc.InvalidRequestError",
    ),
    ("sqlalchemy.exc.DataError", "sqlalchemy.exc.DatabaseError"),
    (
        "sqlalchemy.exc.InternalError",
        "sqlalchemy.exc.DatabaseError",
    ),
    (
        "sqlalchemy.exc.NotSupportedError",
        "sqlalchemy.exc.DatabaseError",
    ),
    ("sqlalchemy.exc.InterfaceError", "sqlalchemy.exc.DBAPIError"),
    (
        "sqlalchemy.exc.CompileError",
        "sqlalchemy.exc.SQLAlchemyError",
    ),
    (
        "sqlalchemy.exc.ArgumentError",
        "sqlalchemy.exc.SQLAlchemyError",
    ),
    ("alembic.util.exc.CommandError", "Exception"),
];

pub fn is_exception_class(name: &str) -> bool {
    EXCEPTIONS.iter().any(|(n, _)| *n == name)
}

pub fn builtin(name: &str) -> Option<Value> {
    if let Some(f) = BUILTIN_FUNCTIONS.iter().find(|n| **n == name) {
        return Some(Value::native(Native::Builtin(f)));
    }
    match name {
        "None" => Some(Value::None),
        "True" => Some(Value::Bool(true)),
        "False" => Some(Value::Bool(false)),
        _ if is_exception_class(name) && !name.contains('.') => {
            Some(Value::native(Native::ExcClass(name.to_string())))
        }
        _ => None,
    }
}

fn is_subclass(mut class: &str, of: &str) -> bool {
    loop {
        if class == of {
            return true;
        }
        match EXCEPTIONS.iter().find(|(n, _)| *n == class) {
            Some((_, parent)) if !parent.is_empty() => class = parent,
            Some(_) => return false,
            // A class raised here but not listed above is still an Exception.
            None => class = "Exception",
        }
    }
}

pub fn exception_matches(raised: &str, handler: &Value) -> R<bool> {
    match handler {
        Value::Native(n) => match &**n {
            Native::ExcClass(c) => Ok(is_subclass(raised, c)),
            _ => Err(type_error(
                "catching classes that do not inherit from BaseException is not allowed",
            )),
        },
        Value::Tuple(items) => {
            for h in items.iter() {
                if exception_matches(raised, h)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => Err(type_error(
            "catching classes that do not inherit from BaseException is not allowed",
        )),
    }
}

pub fn raise_value(v: &Value) -> Unwind {
    match v {
        Value::Native(n) => match &**n {
            Native::ExcClass(c) => exc(c, ""),
            Native::Exception(e) => {
                let mut e = e.clone();
                e.pos = None;
                Unwind::Exc(e)
            }
            _ => type_error("exceptions must derive from BaseException"),
        },
        _ => type_error("exceptions must derive from BaseException"),
    }
}

// ----- conversions -------------------------------------------------------------------------

pub fn repr(v: &Value) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_repr(*f),
        Value::Str(s) => str_repr(s),
        Value::Bytes(b) => bytes_repr(b),
        Value::List(l) => format!("[{}]", join_repr(&l.borrow())),
        Value::Tuple(t) if t.len() == 1 => format!("({},)", repr(&t[0])),
        Value::Tuple(t) => format!("({})", join_repr(t)),
        Value::Dict(d) => {
            let d = d.borrow();
            let body = format!(
                "{{{}}}",
                d.iter()
                    .map(|(k, v)| format!("{}: {}", repr(k), repr(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            match &d.default_factory {
                Some(f) => format!("defaultdict({}, {body})", repr(f)),
                None => body,
            }
        }
        Value::Set(s) if s.borrow().is_empty() => "set()".into(),
        Value::Set(s) => format!(
            "{{{}}}",
            join_repr(&s.borrow().iter().cloned().collect::<Vec<_>>())
        ),
        Value::Function(f) => format!("<function {}>", f.name),
        Value::Native(n) => n.repr(),
    }
}

pub(crate) fn bytes_repr(b: &[u8]) -> String {
    let mut out = String::from("b'");
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('\'');
    out
}

fn join_repr(items: &[Value]) -> String {
    items.iter().map(repr).collect::<Vec<_>>().join(", ")
}

pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !py_printable(c) => {
                let u = c as u32;
                if u < 0x100 {
                    out.push_str(&format!("\\x{u:02x}"));
                } else if u < 0x10000 {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\U{u:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable` for one character, which decides what `repr` escapes: not
/// the controls, separators other than the space, format characters, private use and
/// noncharacters. Unassigned code points, which Python escapes too, are not told apart
/// (that takes Unicode's tables) and print as they are.
fn py_printable(c: char) -> bool {
    let u = c as u32;
    !(u < 0x20
        || (0x7f..=0xa0).contains(&u)
        || u == 0xad
        || matches!(
            u,
            0x0600..=0x0605
                | 0x061c
                | 0x06dd
                | 0x070f
                | 0x08e2
                | 0x1680
                | 0x180e
                | 0x2000..=0x200f
                | 0x2028..=0x202f
                | 0x205f..=0x2064
                | 0x2066..=0x206f
                | 0x3000
                | 0xd800..=0xf8ff
                | 0xfdd0..=0xfdef
                | 0xfeff
                | 0xfff9..=0xfffb
                | 0x110bd
                | 0x110cd
                | 0x13430..=0x13438
                | 0x1bca0..=0x1bca3
                | 0x1d173..=0x1d17a
                | 0xe0001
                | 0xe0020..=0xe007f
                | 0xf0000..=0x10ffff
        )
        || (u & 0xfffe) == 0xfffe)
}

pub fn ascii(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let u = c as u32;
        if u < 0x80 {
            out.push(c);
        } else if u < 0x100 {
            out.push_str(&format!("\\x{u:02x}"));
        } else if u < 0x10000 {
            out.push_str(&format!("\\u{u:04x}"));
        } else {
            out.push_str(&format!("\\U{u:08x}"));
        }
    }
    out
}

/// Python's `repr(float)`: shortest round-trip digits, with Python's exponent rules.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let plain = format!("{f}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let mantissa = mantissa.to_string();
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

pub fn str_of(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Native(n) => n.str(),
        _ => repr(v),
    }
}

// ----- formatting ------------------------------------------------------------------------

/// Python's `g` presentation of a non-negative float: `precision` significant digits
/// (6 by default), fixed-point while the exponent is from -4 to below the precision, else
/// scientific; trailing zeros dropped unless `alternate` (`#`). `repr_style` is the spec
/// with a precision and no type (`.3`), whose fixed-point form keeps a digit after the
/// point, so it switches to scientific one exponent sooner.
fn general_float(
    a: f64,
    precision: Option<usize>,
    alternate: bool,
    upper: bool,
    repr_style: bool,
) -> String {
    if !a.is_finite() {
        let s = if a.is_nan() { "nan" } else { "inf" };
        return if upper {
            s.to_uppercase()
        } else {
            s.to_string()
        };
    }
    let p = precision.unwrap_or(6).max(1);
    let sci = format!("{:.*e}", p - 1, a);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let limit = if repr_style { p as i64 - 1 } else { p as i64 };
    let trim = |mut t: String| {
        if !alternate && t.contains('.') {
            t.truncate(t.trim_end_matches('0').trim_end_matches('.').len());
        }
        if alternate && !t.contains('.') {
            t.push('.');
        }
        t
    };
    let out = if (-4..limit).contains(&exp) {
        let decimals = usize::try_from(p as i64 - 1 - exp).unwrap_or(0);
        let mut fixed = trim(format!("{a:.decimals$}"));
        if repr_style && !fixed.contains('.') {
            fixed.push_str(".0");
        }
        fixed
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_string()), exp.abs())
    };
    if upper {
        out.to_uppercase()
    } else {
        out
    }
}

/// `format(v, spec)` for the format-spec mini-language subset revision files use:
/// `[[fill]align][sign][0][width][,][.precision][type]`.
pub fn format_value(v: &Value, spec: &str) -> R<String> {
    if spec.is_empty() {
        return Ok(str_of(v));
    }
    match v {
        Value::Native(n) => {
            if let Some(s) = n.format(spec) {
                return Ok(s);
            }
        }
        Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::Float(_) => {}
        // `object.__format__` takes no format specification.
        _ => {
            return Err(type_error(format!(
                "unsupported format string passed to {}.__format__",
                v.type_name()
            )))
        }
    }
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let mut fill = ' ';
    let mut align = None;
    if chars.len() >= 2 && matches!(chars[1], '<' | '>' | '^' | '=') {
        fill = chars[0];
        align = Some(chars[1]);
        i = 2;
    } else if !chars.is_empty() && matches!(chars[0], '<' | '>' | '^' | '=') {
        align = Some(chars[0]);
        i = 1;
    }
    let mut sign = '-';
    if i < chars.len() && matches!(chars[i], '+' | '-' | ' ') {
        sign = chars[i];
        i += 1;
    }
    // `#`: the alternate form, `0x`/`0o`/`0b` before an integer's digits.
    let mut alternate = false;
    if i < chars.len() && chars[i] == '#' {
        alternate = true;
        i += 1;
    }
    if i < chars.len() && chars[i] == '0' {
        fill = '0';
        align.get_or_insert('=');
        i += 1;
    }
    let mut width = 0usize;
    while i < chars.len() && chars[i].is_ascii_digit() {
        width = width * 10 + chars[i].to_digit(10).unwrap_or(0) as usize;
        i += 1;
    }
    let mut grouping = None;
    if i < chars.len() && (chars[i] == ',' || chars[i] == '_') {
        grouping = Some(chars[i]);
        i += 1;
    }
    let mut precision = None;
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        let mut p = 0usize;
        while i < chars.len() && chars[i].is_ascii_digit() {
            p = p * 10 + chars[i].to_digit(10).unwrap_or(0) as usize;
            i += 1;
        }
        precision = Some(p);
    }
    let ty = chars.get(i).copied();
    if i + usize::from(ty.is_some()) != chars.len() {
        return Err(exc("ValueError", "Invalid format specifier"));
    }
    let mut prefix = "";
    let (body, negative) = match (v, ty) {
        (Value::Str(s), None | Some('s')) => {
            let s: String = match precision {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            (s, false)
        }
        (_, Some('d')) | (Value::Int(_) | Value::Bool(_), None) => {
            let Some(Num::Int(n)) = as_number(v) else {
                return Err(exc(
                    "ValueError",
                    format!(
                        "Unknown format code 'd' for object of type '{}'",
                        v.type_name()
                    ),
                ));
            };
            let digits = n.unsigned_abs().to_string();
            let digits = match grouping {
                Some(sep) => group(&digits, sep, 3),
                None => digits,
            };
            (digits, n < 0)
        }
        (_, Some('x' | 'X' | 'o' | 'b')) => {
            let Some(Num::Int(n)) = as_number(v) else {
                return Err(exc("ValueError", "Unknown format code for non-integer"));
            };
            let a = n.unsigned_abs();
            let (s, p) = match ty {
                Some('x') => (format!("{a:x}"), "0x"),
                Some('X') => (format!("{a:X}"), "0X"),
                Some('o') => (format!("{a:o}"), "0o"),
                _ => (format!("{a:b}"), "0b"),
            };
            if alternate {
                prefix = p;
            }
            // `_` groups these digits by four; `,` is only for decimal ones.
            let s = match grouping {
                Some('_') => group(&s, '_', 4),
                Some(sep) => {
                    return Err(exc(
                        "ValueError",
                        format!("Cannot specify '{sep}' with '{}'.", ty.unwrap_or('d')),
                    ))
                }
                None => s,
            };
            (s, n < 0)
        }
        (_, Some('f' | 'F' | 'e' | 'E' | '%' | 'g' | 'G')) | (Value::Float(_), None) => {
            let Some(n) = as_number(v) else {
                return Err(exc(
                    "ValueError",
                    format!("Unknown format code for object of type '{}'", v.type_name()),
                ));
            };
            let f = n.as_f64();
            let p = precision.unwrap_or(6);
            let a = f.abs();
            let upper = matches!(ty, Some('E' | 'F' | 'G'));
            let s = match ty {
                // Python spells these its own way, whatever the precision.
                _ if !f.is_finite() => {
                    let word = if f.is_nan() { "nan" } else { "inf" };
                    let word = if upper {
                        word.to_uppercase()
                    } else {
                        word.to_string()
                    };
                    if ty == Some('%') {
                        format!("{word}%")
                    } else {
                        word
                    }
                }
                Some('f' | 'F') => format!("{a:.p$}"),
                Some('e') => python_exp(&format!("{a:.p$e}")),
                Some('E') => python_exp(&format!("{a:.p$e}")).to_uppercase(),
                Some('%') => format!("{:.p$}%", a * 100.0),
                Some(g @ ('g' | 'G')) => general_float(a, precision, alternate, g == 'G', false),
                None if precision.is_none() => float_repr(a),
                _ => general_float(a, precision, alternate, false, true),
            };
            let s = match grouping {
                Some(sep) => match s.split_once('.') {
                    Some((int, frac)) => format!("{}.{frac}", group(int, sep, 3)),
                    None => group(&s, sep, 3),
                },
                None => s,
            };
            // -0.0 keeps its sign, as in Python.
            (s, f.is_sign_negative() && !f.is_nan())
        }
        _ => {
            return Err(exc(
                "ValueError",
                format!(
                    "Unknown format code '{}' for object of type '{}'",
                    ty.unwrap_or('s'),
                    v.type_name()
                ),
            ))
        }
    };
    let sign_text = match (negative, sign) {
        (true, _) => "-",
        (false, '+') => "+",
        (false, ' ') => " ",
        _ => "",
    };
    // The prefix stays with the sign, before any zero padding.
    let sign_text = format!("{sign_text}{prefix}");
    let sign_text = sign_text.as_str();
    let len = body.chars().count() + sign_text.len();
    if len >= width {
        return Ok(format!("{sign_text}{body}"));
    }
    let pad: String = std::iter::repeat(fill).take(width - len).collect();
    let default_align = if matches!(v, Value::Str(_)) { '<' } else { '>' };
    Ok(match align.unwrap_or(default_align) {
        '<' => format!("{sign_text}{body}{pad}"),
        '^' => {
            let left = (width - len) / 2;
            let l: String = std::iter::repeat(fill).take(left).collect();
            let r: String = std::iter::repeat(fill).take(width - len - left).collect();
            format!("{l}{sign_text}{body}{r}")
        }
        '=' => format!("{sign_text}{pad}{body}"),
        _ => format!("{pad}{sign_text}{body}"),
    })
}

fn python_exp(rust: &str) -> String {
    match rust.split_once('e') {
        Some((m, e)) => {
            let n: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if n < 0 { '-' } else { '+' }, n.abs())
        }
        None => rust.to_string(),
    }
}

/// `digits` with `sep` between groups of `size` from the right (the format spec's `,` and
/// `_`).
fn group(digits: &str, sep: char, size: usize) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % size == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// `"..." % args`.
pub fn percent_format(fmt: &str, args: &Value) -> R<String> {
    let items: Vec<Value> = match args {
        Value::Tuple(t) => t.to_vec(),
        other => vec![other.clone()],
    };
    let mapping = matches!(args, Value::Dict(_));
    let mut next = items.into_iter();
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut key = None;
        if chars.peek() == Some(&'(') {
            chars.next();
            let mut k = String::new();
            for c in chars.by_ref() {
                if c == ')' {
                    break;
                }
                k.push(c);
            }
            key = Some(k);
        }
        let mut spec = String::new();
        let conv = loop {
            match chars.next() {
                Some(c) if "-+ #0123456789.".contains(c) => spec.push(c),
                Some(c) => break c,
                None => return Err(exc("ValueError", "incomplete format")),
            }
        };
        if conv == '%' {
            out.push('%');
            continue;
        }
        let v = match (&key, args) {
            (Some(k), Value::Dict(d)) => d
                .borrow()
                .get(&Value::str(k.as_str()))
                .cloned()
                .ok_or_else(|| key_error(&Value::str(k.as_str())))?,
            (Some(_), _) => return Err(type_error("format requires a mapping")),
            (None, _) if mapping => args.clone(),
            (None, _) => next
                .next()
                .ok_or_else(|| type_error("not enough arguments for format string"))?,
        };
        let left = spec.starts_with('-');
        let spec = spec.trim_start_matches('-');
        // `%.3s`: at most that many characters.
        let cut = |t: String| match spec
            .split_once('.')
            .and_then(|(_, p)| p.parse::<usize>().ok())
        {
            Some(p) => t.chars().take(p).collect(),
            None => t,
        };
        let text = match conv {
            's' => cut(str_of(&v)),
            'r' => cut(repr(&v)),
            'd' | 'i' => {
                let i = match as_number(&v) {
                    Some(Num::Int(i)) => i,
                    Some(Num::Float(f)) => float_to_int(f.trunc())?,
                    None => {
                        return Err(type_error(format!(
                            "%d format: a real number is required, not {}",
                            v.type_name()
                        )))
                    }
                };
                // `%.2d` pads the digits with zeros to the precision; the `0` flag pads to the
                // width after the sign (file_template's `%(month).2d`, `%(day)02d`).
                let precision: usize = spec
                    .split_once('.')
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(0);
                let width: usize = spec
                    .split('.')
                    .next()
                    .and_then(|w| w.trim_start_matches(['+', ' ', '#', '0']).parse().ok())
                    .unwrap_or(0);
                let sign = if i < 0 {
                    "-"
                } else if spec.contains('+') {
                    "+"
                } else if spec.starts_with(' ') {
                    " "
                } else {
                    ""
                };
                let mut digits = i.unsigned_abs().to_string();
                if digits.len() < precision {
                    digits = format!("{}{digits}", "0".repeat(precision - digits.len()));
                }
                let zero_flag = spec
                    .split('.')
                    .next()
                    .is_some_and(|w| w.trim_start_matches(['+', ' ', '#']).starts_with('0'));
                if zero_flag && !left && sign.len() + digits.len() < width {
                    digits = format!("{}{digits}", "0".repeat(width - sign.len() - digits.len()));
                }
                format!("{sign}{digits}")
            }
            // The `0` flag pads to the width after the sign, as the format spec `0` does;
            // any other width is applied below.
            'f' | 'F' | 'e' | 'E' | 'g' | 'G' | 'x' | 'X' | 'o' => {
                // Python's `%` checks the value's type itself, with a TypeError; the format
                // spec below would answer with a ValueError.
                match (conv, as_number(&v)) {
                    ('x' | 'X' | 'o', Some(Num::Int(_))) => {}
                    ('x' | 'X' | 'o', _) => {
                        return Err(type_error(format!(
                            "%{conv} format: an integer is required, not {}",
                            v.type_name()
                        )))
                    }
                    (_, Some(_)) => {}
                    (_, None) => {
                        return Err(type_error(format!(
                            "must be real number, not {}",
                            v.type_name()
                        )))
                    }
                }
                let flags: String = spec.chars().take_while(|c| "+ #0".contains(*c)).collect();
                let rest = &spec[flags.len()..];
                let sign = if flags.contains('+') {
                    "+"
                } else if flags.contains(' ') {
                    " "
                } else {
                    ""
                };
                let alternate = if flags.contains('#') { "#" } else { "" };
                let zero_width = if flags.contains('0') && !left {
                    rest.split('.').next().unwrap_or("")
                } else {
                    ""
                };
                let precision = rest.find('.').map_or("", |i| &rest[i..]);
                let fill = if zero_width.is_empty() { "" } else { "0" };
                format_value(
                    &v,
                    &format!("{sign}{alternate}{fill}{zero_width}{precision}{conv}"),
                )?
            }
            'c' => match &v {
                Value::Str(s) if s.chars().count() == 1 => s.to_string(),
                Value::Int(_) | Value::Bool(_) => {
                    let code = match as_number(&v) {
                        Some(Num::Int(i)) => i,
                        _ => -1,
                    };
                    u32::try_from(code)
                        .ok()
                        .and_then(char::from_u32)
                        .map(String::from)
                        .ok_or_else(|| exc("OverflowError", "%c arg not in range(0x110000)"))?
                }
                _ => return Err(type_error("%c requires int or char")),
            },
            'a' | 'u' | 'b' => {
                return Err(unsupported(
                    format!("the %-format `%{conv}`"),
                    "not modelled",
                ))
            }
            other => {
                return Err(exc(
                    "ValueError",
                    format!("unsupported format character '{other}'"),
                ))
            }
        };
        let width: usize = spec
            .split('.')
            .next()
            .and_then(|w| w.trim_start_matches(['+', ' ', '#', '0']).parse().ok())
            .unwrap_or(0);
        let n = text.chars().count();
        if n < width {
            let pad = " ".repeat(width - n);
            if left {
                out.push_str(&text);
                out.push_str(&pad);
            } else {
                out.push_str(&pad);
                out.push_str(&text);
            }
        } else {
            out.push_str(&text);
        }
    }
    if !mapping && next.next().is_some() {
        return Err(type_error(
            "not all arguments converted during string formatting",
        ));
    }
    Ok(out)
}

/// `str.format(*args, **kwargs)`.
fn str_format(fmt: &str, args: &[Value], kwargs: &[(String, Value)]) -> R<String> {
    let mut auto = 0usize;
    format_fields(fmt, args, kwargs, &mut auto, 0)
}

/// `str.format`'s replacement fields in `fmt`; `depth` counts the format specs being
/// expanded (`"{:>{}}"`), which Python allows two deep.
fn format_fields(
    fmt: &str,
    args: &[Value],
    kwargs: &[(String, Value)],
    auto: &mut usize,
    depth: usize,
) -> R<String> {
    if depth > 1 {
        return Err(exc("ValueError", "Max string recursion exceeded"));
    }
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                // The field, nested fields of its format spec included.
                let mut field = String::new();
                let mut open = 1;
                for c in chars.by_ref() {
                    match c {
                        '{' => open += 1,
                        '}' => {
                            open -= 1;
                            if open == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    field.push(c);
                }
                if open != 0 {
                    return Err(exc("ValueError", "expected '}' before end of string"));
                }
                // The name ends at a `!` or `:` outside an index.
                let mut in_index = false;
                let end = field
                    .char_indices()
                    .find(|&(_, c)| {
                        match c {
                            '[' => in_index = true,
                            ']' => in_index = false,
                            _ => {}
                        }
                        !in_index && (c == '!' || c == ':')
                    })
                    .map_or(field.len(), |(i, _)| i);
                let (name, rest) = field.split_at(end);
                let (conv, spec) = match rest.strip_prefix('!') {
                    Some(r) => {
                        let (c, s) = r.split_once(':').unwrap_or((r, ""));
                        (c.chars().next(), s)
                    }
                    None => (None, rest.strip_prefix(':').unwrap_or("")),
                };
                let v = format_field_value(name, args, kwargs, auto)?;
                let spec = if spec.contains('{') {
                    format_fields(spec, args, kwargs, auto, depth + 1)?
                } else {
                    spec.to_string()
                };
                let v = match conv {
                    Some('r') => Value::str(repr(&v)),
                    Some('s') => Value::str(str_of(&v)),
                    _ => v,
                };
                out.push_str(&format_value(&v, &spec)?);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The value a replacement field names: by position (given or automatic) or keyword, then
/// indexed (`{0[key]}`, `{row[2]}`) as Python's format does.
fn format_field_value(
    name: &str,
    args: &[Value],
    kwargs: &[(String, Value)],
    auto: &mut usize,
) -> R<Value> {
    let first_end = name.find(['[', '.']).unwrap_or(name.len());
    let (arg, mut rest) = name.split_at(first_end);
    let v = if arg.is_empty() {
        *auto += 1;
        args.get(*auto - 1).cloned()
    } else if let Ok(i) = arg.parse::<usize>() {
        args.get(i).cloned()
    } else {
        kwargs
            .iter()
            .find(|(k, _)| k == arg)
            .map(|(_, v)| v.clone())
    };
    let mut v = v.ok_or_else(|| {
        if arg.is_empty() || arg.parse::<usize>().is_ok() {
            exc(
                "IndexError",
                "Replacement index out of range for positional args tuple",
            )
        } else {
            key_error(&Value::str(arg))
        }
    })?;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| exc("ValueError", "Missing ']' in format string"))?;
            let key = &r[..close];
            // Digits index a sequence; anything else is a string key.
            let key = match key.parse::<i64>() {
                Ok(i) if !key.starts_with(['-', '+']) => Value::Int(i),
                _ => Value::str(key),
            };
            v = get_item(&v, &key)?;
            rest = &r[close + 1..];
        } else {
            return Err(unsupported(
                "an attribute in a format field (`{x.attr}`)",
                "not modelled",
            ));
        }
    }
    Ok(v)
}

// ----- containers ------------------------------------------------------------------------

pub fn check_hashable(v: &Value) -> R<()> {
    match v {
        Value::List(_) | Value::Dict(_) | Value::Set(_) => {
            Err(type_error(format!("unhashable type: '{}'", v.type_name())))
        }
        Value::Tuple(t) => t.iter().try_for_each(check_hashable),
        _ => Ok(()),
    }
}

pub fn set_add(set: &mut PySet, v: Value) -> R<()> {
    check_hashable(&v)?;
    set.add(v);
    Ok(())
}

/// A dict's keys or items view as the set it acts as in comparisons and set operators
/// (`d.keys() - {'a'}`, `d.keys() == {'a', 'b'}`); None for anything else.
pub fn view_as_set(v: &Value) -> R<Option<Value>> {
    match v {
        Value::Native(n) => match &**n {
            Native::DictView { kind, .. } if *kind != ViewKind::Values => {
                let mut set = PySet::default();
                for item in n.iterate()? {
                    set_add(&mut set, item)?;
                }
                Ok(Some(new_set(set)))
            }
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

pub fn new_set(set: PySet) -> Value {
    Value::Set(Rc::new(RefCell::new(set)))
}

/// `iterate` of a value the caller no longer needs: a list or a row nothing else holds gives
/// up its items instead of copying them. A data loop's `for a, b in conn.execute(q).all()`
/// walks a fresh list of rows and unpacks each row once.
pub fn iterate_owned(v: Value) -> R<Vec<Value>> {
    match v {
        Value::List(l) => Ok(match Rc::try_unwrap(l) {
            Ok(items) => items.into_inner(),
            Err(l) => l.borrow().clone(),
        }),
        Value::Native(mut n) => match Rc::get_mut(&mut n) {
            Some(Native::Row(row)) => match Rc::get_mut(row) {
                Some(data) => Ok(std::mem::take(&mut data.values)),
                None => n.iterate(),
            },
            _ => n.iterate(),
        },
        other => iterate(&other),
    }
}

/// What a `for` loop or a comprehension walks, as Python's iterators do: a list shared with
/// the body is read by index, so items the body appends or removes are seen; a dict or set
/// whose size the body changes stops the loop with RuntimeError. Anything else (and a list
/// nothing else holds, like a query's rows) is taken whole.
pub enum LoopItems {
    Owned(std::vec::IntoIter<Value>),
    List {
        list: Rc<RefCell<Vec<Value>>>,
        next: usize,
    },
    /// A dict or one of its views, walked as CPython walks its entries: the keys there
    /// were (those deleted since skipped), then those added since; each value read when
    /// reached. `remaining`: how many more the walk may yield before a key beyond them
    /// means the keys changed.
    Dict {
        dict: Rc<RefCell<Dict>>,
        kind: ViewKind,
        keys: Vec<Value>,
        next: usize,
        len: usize,
        remaining: usize,
        /// `Dict::keys_added` when the walk began.
        added_before: u64,
        /// The keys added since, once the first keys are walked.
        added: Option<std::vec::IntoIter<Value>>,
    },
    Set {
        set: Rc<RefCell<PySet>>,
        items: std::vec::IntoIter<Value>,
        len: usize,
    },
}

impl LoopItems {
    pub fn new(v: Value) -> R<LoopItems> {
        Ok(match v {
            Value::List(list) if Rc::strong_count(&list) > 1 => LoopItems::List { list, next: 0 },
            Value::Dict(dict) => LoopItems::dict(dict, ViewKind::Keys),
            Value::Native(n) if matches!(*n, Native::DictView { .. }) => match &*n {
                Native::DictView { dict, kind } => LoopItems::dict(dict.clone(), *kind),
                _ => LoopItems::Owned(n.iterate()?.into_iter()),
            },
            Value::Set(set) => {
                let (items, len) = {
                    let s = set.borrow();
                    (s.iter().cloned().collect::<Vec<_>>(), s.len())
                };
                LoopItems::Set {
                    set,
                    items: items.into_iter(),
                    len,
                }
            }
            other => LoopItems::Owned(iterate_owned(other)?.into_iter()),
        })
    }

    fn dict(dict: Rc<RefCell<Dict>>, kind: ViewKind) -> LoopItems {
        let (keys, len, added_before) = {
            let d = dict.borrow();
            (
                d.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
                d.len(),
                d.keys_added(),
            )
        };
        LoopItems::Dict {
            dict,
            kind,
            keys,
            next: 0,
            len,
            remaining: len,
            added_before,
            added: None,
        }
    }

    pub fn next_item(&mut self) -> R<Option<Value>> {
        Ok(match self {
            LoopItems::Owned(items) => items.next(),
            LoopItems::List { list, next } => {
                let item = list.borrow().get(*next).cloned();
                *next += 1;
                item
            }
            LoopItems::Dict {
                dict,
                kind,
                keys,
                next,
                len,
                remaining,
                added_before,
                added,
            } => {
                let d = dict.borrow();
                if d.len() != *len {
                    return Err(exc(
                        "RuntimeError",
                        "dictionary changed size during iteration",
                    ));
                }
                let mut found = None;
                while let Some(k) = keys.get(*next) {
                    *next += 1;
                    if let Some(v) = d.get(k) {
                        found = Some(kind.item(k, v));
                        break;
                    }
                }
                // Keys added while the loop ran come after the ones it began with.
                if found.is_none() && d.keys_added() != *added_before {
                    let added = added.get_or_insert_with(|| {
                        let before = PySet::from_values(keys.iter().cloned());
                        d.iter()
                            .filter(|(k, _)| !before.contains(k))
                            .map(|(k, _)| k.clone())
                            .collect::<Vec<_>>()
                            .into_iter()
                    });
                    found = added
                        .next()
                        .and_then(|k| d.get(&k).map(|v| kind.item(&k, v)));
                }
                match found {
                    None => None,
                    Some(_) if *remaining == 0 => {
                        return Err(exc(
                            "RuntimeError",
                            "dictionary keys changed during iteration",
                        ))
                    }
                    Some(item) => {
                        *remaining -= 1;
                        Some(item)
                    }
                }
            }
            LoopItems::Set { set, items, len } => {
                if set.borrow().len() != *len {
                    return Err(exc("RuntimeError", "Set changed size during iteration"));
                }
                items.next()
            }
        })
    }
}

pub fn iterate(v: &Value) -> R<Vec<Value>> {
    Ok(match v {
        Value::List(l) => l.borrow().clone(),
        Value::Tuple(t) => t.to_vec(),
        Value::Set(s) => s.borrow().iter().cloned().collect(),
        Value::Dict(d) => d.borrow().iter().map(|(k, _)| k.clone()).collect(),
        Value::Str(s) => s.chars().map(|c| Value::str(c.to_string())).collect(),
        Value::Bytes(b) => b.iter().map(|&c| Value::Int(i64::from(c))).collect(),
        Value::Native(n) => n.iterate()?,
        other => {
            return Err(type_error(format!(
                "'{}' object is not iterable",
                other.type_name()
            )))
        }
    })
}

pub fn mapping_items(v: &Value) -> R<Vec<(Value, Value)>> {
    match v {
        Value::Dict(d) => Ok(d.borrow().iter().cloned().collect()),
        Value::Native(n) => n
            .mapping_items()
            .ok_or_else(|| type_error(format!("'{}' object is not a mapping", v.type_name()))),
        other => Err(type_error(format!(
            "'{}' object is not a mapping",
            other.type_name()
        ))),
    }
}

pub fn contains(container: &Value, item: &Value) -> R<bool> {
    Ok(match container {
        Value::Str(s) => match item {
            Value::Str(i) => s.contains(&**i),
            other => {
                return Err(type_error(format!(
                    "'in <string>' requires string as left operand, not {}",
                    other.type_name()
                )))
            }
        },
        Value::Dict(d) => d.borrow().get(item).is_some(),
        Value::Set(s) => s.borrow().contains(item),
        Value::Native(n) if matches!(**n, Native::DictView { .. }) => match &**n {
            Native::DictView {
                dict,
                kind: ViewKind::Keys,
            } => dict.borrow().get(item).is_some(),
            Native::DictView {
                dict,
                kind: ViewKind::Items,
            } => match item {
                Value::Tuple(pair) if pair.len() == 2 => dict
                    .borrow()
                    .get(&pair[0])
                    .is_some_and(|v| py_eq(v, &pair[1])),
                _ => false,
            },
            _ => iterate(container)?.iter().any(|x| py_eq(x, item)),
        },
        Value::Native(n) => match n.mapping_items() {
            Some(items) => items.iter().any(|(k, _)| py_eq(k, item)),
            None => iterate(container)?.iter().any(|x| py_eq(x, item)),
        },
        _ => iterate(container)?.iter().any(|x| py_eq(x, item)),
    })
}

fn index_of(len: usize, k: &Value) -> R<usize> {
    let Some(Num::Int(i)) = as_number(k) else {
        return Err(type_error(format!(
            "indices must be integers, not {}",
            k.type_name()
        )));
    };
    let n = i64::try_from(len).unwrap_or(i64::MAX);
    let j = if i < 0 { i + n } else { i };
    if j < 0 || j >= n {
        return Err(exc("IndexError", "index out of range"));
    }
    Ok(usize::try_from(j).unwrap_or(0))
}

pub fn get_item(v: &Value, k: &Value) -> R<Value> {
    match v {
        Value::List(l) => {
            let l = l.borrow();
            Ok(l[index_of(l.len(), k)
                .map_err(|_| list_index_error(k, "list", "list index out of range"))?]
            .clone())
        }
        Value::Tuple(t) => Ok(t[index_of(t.len(), k)
            .map_err(|_| list_index_error(k, "tuple", "tuple index out of range"))?]
        .clone()),
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let i = index_of(chars.len(), k).map_err(|_| {
                if matches!(as_number(k), Some(Num::Int(_))) {
                    exc("IndexError", "string index out of range")
                } else {
                    type_error(format!(
                        "string indices must be integers, not '{}'",
                        k.type_name()
                    ))
                }
            })?;
            Ok(Value::str(chars[i].to_string()))
        }
        Value::Bytes(b) => {
            let i = index_of(b.len(), k)?;
            Ok(Value::Int(i64::from(b[i])))
        }
        Value::Dict(d) => d.borrow().get(k).cloned().ok_or_else(|| key_error(k)),
        Value::Native(n) => n.get_item(k),
        other => Err(type_error(format!(
            "'{}' object is not subscriptable",
            other.type_name()
        ))),
    }
}

/// `k` failed as a position in a `what` (list or tuple): Python's IndexError text depends on
/// the operation (`out_of_range`); a key that is not an integer is a TypeError.
fn list_index_error(k: &Value, what: &str, out_of_range: &str) -> Unwind {
    // A float is a number but never an index: `[1][0.0]` is a TypeError, as in Python.
    if matches!(as_number(k), Some(Num::Int(_))) {
        exc("IndexError", out_of_range)
    } else {
        type_error(format!(
            "{what} indices must be integers or slices, not {}",
            k.type_name()
        ))
    }
}

pub fn set_item(obj: &Value, k: Value, v: Value) -> R<()> {
    match obj {
        Value::List(l) => {
            let mut l = l.borrow_mut();
            let i = index_of(l.len(), &k)
                .map_err(|_| list_index_error(&k, "list", "list assignment index out of range"))?;
            l[i] = v;
            Ok(())
        }
        Value::Dict(d) => {
            check_hashable(&k)?;
            d.borrow_mut().insert(k, v);
            Ok(())
        }
        other => Err(type_error(format!(
            "'{}' object does not support item assignment",
            other.type_name()
        ))),
    }
}

/// `l[lo:hi] = items` (`items` given) or `del l[lo:hi]`, on a list, with Python's
/// clamping of the bounds (negative from the end, an upper bound below the lower one empty).
pub fn splice(
    obj: &Value,
    lo: Option<Value>,
    hi: Option<Value>,
    items: Option<Vec<Value>>,
) -> R<()> {
    let Value::List(l) = obj else {
        return Err(type_error(format!(
            "'{}' object does not support item {}",
            obj.type_name(),
            if items.is_some() {
                "assignment"
            } else {
                "deletion"
            }
        )));
    };
    let mut l = l.borrow_mut();
    let n = l.len() as i64;
    let bound = |v: Option<Value>, default: i64| -> R<usize> {
        let i = match v {
            None => default,
            Some(v) => match as_number(&v) {
                Some(Num::Int(i)) => i,
                _ => {
                    return Err(type_error(
                        "slice indices must be integers or None or have an __index__ method",
                    ))
                }
            },
        };
        let i = if i < 0 { (i + n).max(0) } else { i.min(n) };
        Ok(usize::try_from(i).unwrap_or(0))
    };
    let lo = bound(lo, 0)?;
    let hi = bound(hi, n)?.max(lo);
    l.splice(lo..hi, items.unwrap_or_default());
    Ok(())
}

pub fn del_item(obj: &Value, k: &Value) -> R<()> {
    match obj {
        Value::List(l) => {
            let mut l = l.borrow_mut();
            let i = index_of(l.len(), k)
                .map_err(|_| list_index_error(k, "list", "list assignment index out of range"))?;
            l.remove(i);
            Ok(())
        }
        Value::Dict(d) => d
            .borrow_mut()
            .remove(k)
            .map(|_| ())
            .ok_or_else(|| key_error(k)),
        other => Err(type_error(format!(
            "'{}' object does not support item deletion",
            other.type_name()
        ))),
    }
}

pub fn slice(
    v: &Value,
    lower: Option<Value>,
    upper: Option<Value>,
    step: Option<Value>,
) -> R<Value> {
    let int = |x: &Option<Value>| -> R<Option<i64>> {
        match x {
            None | Some(Value::None) => Ok(None),
            Some(v) => match as_number(v) {
                Some(Num::Int(i)) => Ok(Some(i)),
                _ => Err(type_error(
                    "slice indices must be integers or None or have an __index__ method",
                )),
            },
        }
    };
    let (lo, hi, st) = (int(&lower)?, int(&upper)?, int(&step)?.unwrap_or(1));
    if st == 0 {
        return Err(exc("ValueError", "slice step cannot be zero"));
    }
    let pick = |n: usize| -> Vec<usize> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let clamp = |x: i64, lo_bound: i64, hi_bound: i64| x.max(lo_bound).min(hi_bound);
        let norm = |x: i64| if x < 0 { x + n } else { x };
        let mut out = Vec::new();
        if st > 0 {
            let mut i = clamp(lo.map(norm).unwrap_or(0), 0, n);
            let end = clamp(hi.map(norm).unwrap_or(n), 0, n);
            while i < end {
                out.push(usize::try_from(i).unwrap_or(0));
                i += st;
            }
        } else {
            let mut i = clamp(lo.map(norm).unwrap_or(n - 1), -1, n - 1);
            let end = clamp(hi.map(norm).unwrap_or(-1), -1, n - 1);
            while i > end {
                out.push(usize::try_from(i).unwrap_or(0));
                i += st;
            }
        }
        out
    };
    Ok(match v {
        Value::List(l) => {
            let l = l.borrow();
            Value::list(pick(l.len()).into_iter().map(|i| l[i].clone()).collect())
        }
        Value::Tuple(t) => Value::tuple(pick(t.len()).into_iter().map(|i| t[i].clone()).collect()),
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            Value::str(
                pick(chars.len())
                    .into_iter()
                    .map(|i| chars[i])
                    .collect::<String>(),
            )
        }
        Value::Bytes(b) => Value::Bytes(pick(b.len()).into_iter().map(|i| b[i]).collect()),
        // A result row slices as its tuple does.
        Value::Native(n) if matches!(**n, Native::Row(_)) => {
            let values = match &**n {
                Native::Row(r) => r.values.as_slice(),
                _ => &[],
            };
            Value::tuple(
                pick(values.len())
                    .into_iter()
                    .map(|i| values[i].clone())
                    .collect(),
            )
        }
        other => {
            return Err(type_error(format!(
                "'{}' object is not subscriptable",
                other.type_name()
            )))
        }
    })
}

/// Ordering for `<`, `sorted`, `min`, `max`; `None` when Python raises TypeError.
pub fn py_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
        return match (x, y) {
            (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
            _ => x.as_f64().partial_cmp(&y.as_f64()),
        };
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
        (Value::List(x), Value::List(y)) => seq_cmp(&x.borrow(), &y.borrow()),
        (Value::Tuple(x), Value::Tuple(y)) => seq_cmp(x, y),
        (Value::Native(x), Value::Native(y)) => x.native_cmp(y),
        _ => None,
    }
}

/// How `a` and `b` order for `<`, `<=`, `>`, `>=`, `min` and `max` (`symbol` is the
/// operator a TypeError names): None where a NaN decides, which makes each of those False
/// as in Python; a TypeError for values that do not order.
pub fn py_order(a: &Value, b: &Value, symbol: &str) -> R<Option<Ordering>> {
    match py_cmp(a, b) {
        Some(o) => Ok(Some(o)),
        None if unordered_by_nan(a, b) => Ok(None),
        None => Err(type_error(format!(
            "'{symbol}' not supported between instances of '{}' and '{}'",
            a.type_name(),
            b.type_name()
        ))),
    }
}

/// Whether [`py_cmp`]'s None for `a` and `b` comes from a NaN where the order is decided
/// rather than from values that do not order.
fn unordered_by_nan(a: &Value, b: &Value) -> bool {
    if as_number(a).is_some() && as_number(b).is_some() {
        return true;
    }
    let deciding = |x: &[Value], y: &[Value]| {
        x.iter()
            .zip(y)
            .find(|(p, q)| !py_eq(p, q))
            .is_some_and(|(p, q)| unordered_by_nan(p, q))
    };
    match (a, b) {
        (Value::List(x), Value::List(y)) => deciding(&x.borrow(), &y.borrow()),
        (Value::Tuple(x), Value::Tuple(y)) => deciding(x, y),
        _ => false,
    }
}

fn seq_cmp(a: &[Value], b: &[Value]) -> Option<Ordering> {
    for (x, y) in a.iter().zip(b) {
        if !py_eq(x, y) {
            return py_cmp(x, y);
        }
    }
    Some(a.len().cmp(&b.len()))
}

// ----- arithmetic --------------------------------------------------------------------------

fn overflow() -> Unwind {
    unsupported(
        "integer arithmetic beyond 64 bits",
        "integers are 64-bit here",
    )
}

pub fn binop(op: BinOp, l: &Value, r: &Value) -> R<Value> {
    // `bool`'s own `&`, `|` and `^` give a bool, as in Python (`True | False` is True).
    if let (Value::Bool(a), Value::Bool(b)) = (l, r) {
        match op {
            BinOp::BitAnd => return Ok(Value::Bool(a & b)),
            BinOp::BitOr => return Ok(Value::Bool(a | b)),
            BinOp::BitXor => return Ok(Value::Bool(a ^ b)),
            _ => {}
        }
    }
    if let (Some(x), Some(y)) = (as_number(l), as_number(r)) {
        return num_binop(op, x, y);
    }
    if matches!(
        op,
        BinOp::BitOr | BinOp::BitAnd | BinOp::Sub | BinOp::BitXor
    ) {
        // A keys or items view combines with any iterable, either side, into a set.
        let (lv, rv) = (view_as_set(l)?, view_as_set(r)?);
        if lv.is_some() || rv.is_some() {
            let as_set = |v: &Value, view: Option<Value>| -> R<Value> {
                match (view, v) {
                    (Some(set), _) => Ok(set),
                    (None, Value::Set(_)) => Ok(v.clone()),
                    (None, other) => {
                        let mut set = PySet::default();
                        for x in iterate(other)? {
                            set_add(&mut set, x)?;
                        }
                        Ok(new_set(set))
                    }
                }
            };
            return binop(op, &as_set(l, lv)?, &as_set(r, rv)?);
        }
    }
    match (op, l, r) {
        (BinOp::Add, Value::Str(a), Value::Str(b)) => Ok(Value::str(format!("{a}{b}"))),
        (BinOp::Add, Value::Bytes(a), Value::Bytes(b)) => {
            Ok(Value::Bytes([&a[..], &b[..]].concat().into()))
        }
        (BinOp::Add, Value::List(a), Value::List(b)) => {
            let mut v = a.borrow().clone();
            v.extend(b.borrow().iter().cloned());
            Ok(Value::list(v))
        }
        (BinOp::Add, Value::Tuple(a), Value::Tuple(b)) => {
            Ok(Value::tuple(a.iter().chain(b.iter()).cloned().collect()))
        }
        (
            BinOp::Mult,
            Value::Str(_) | Value::List(_) | Value::Tuple(_),
            Value::Int(_) | Value::Bool(_),
        ) => repeat(l, r),
        (
            BinOp::Mult,
            Value::Int(_) | Value::Bool(_),
            Value::Str(_) | Value::List(_) | Value::Tuple(_),
        ) => repeat(r, l),
        (BinOp::Mod, Value::Str(f), args) => Ok(Value::str(percent_format(f, args)?)),
        (BinOp::BitOr, Value::Dict(a), Value::Dict(b)) => {
            let mut d = a.borrow().clone();
            for (k, v) in b.borrow().iter() {
                d.insert(k.clone(), v.clone());
            }
            Ok(Value::Dict(Rc::new(RefCell::new(d))))
        }
        (
            BinOp::BitOr | BinOp::BitAnd | BinOp::Sub | BinOp::BitXor,
            Value::Set(a),
            Value::Set(b),
        ) => {
            let (a, b) = (a.borrow(), b.borrow());
            let in_b = |x: &Value| b.contains(x);
            let in_a = |x: &Value| a.contains(x);
            let out: Vec<Value> = match op {
                BinOp::BitOr => a
                    .iter()
                    .cloned()
                    .chain(b.iter().filter(|x| !in_a(x)).cloned())
                    .collect(),
                BinOp::BitAnd => a.iter().filter(|x| in_b(x)).cloned().collect(),
                BinOp::Sub => a.iter().filter(|x| !in_b(x)).cloned().collect(),
                _ => a
                    .iter()
                    .filter(|x| !in_b(x))
                    .chain(b.iter().filter(|x| !in_a(x)))
                    .cloned()
                    .collect(),
            };
            Ok(new_set(PySet::from_values(out)))
        }
        _ => Err(type_error(format!(
            "unsupported operand type(s) for {}: '{}' and '{}'",
            op.symbol(),
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn repeat(seq: &Value, n: &Value) -> R<Value> {
    let n = match as_number(n) {
        Some(Num::Int(n)) => usize::try_from(n.max(0)).unwrap_or(0),
        _ => 0,
    };
    Ok(match seq {
        Value::Str(s) => Value::str(s.repeat(n)),
        Value::List(l) => {
            let l = l.borrow();
            Value::list((0..n).flat_map(|_| l.iter().cloned()).collect())
        }
        Value::Tuple(t) => Value::tuple((0..n).flat_map(|_| t.iter().cloned()).collect()),
        _ => return Err(type_error("can't multiply sequence")),
    })
}

fn num_binop(op: BinOp, x: Num, y: Num) -> R<Value> {
    let zero = || exc("ZeroDivisionError", "division by zero");
    if let (Num::Int(a), Num::Int(b)) = (x, y) {
        return Ok(Value::Int(match op {
            BinOp::Add => a.checked_add(b).ok_or_else(overflow)?,
            BinOp::Sub => a.checked_sub(b).ok_or_else(overflow)?,
            BinOp::Mult => a.checked_mul(b).ok_or_else(overflow)?,
            BinOp::Div => {
                if b == 0 {
                    return Err(zero());
                }
                return Ok(Value::Float(a as f64 / b as f64));
            }
            BinOp::FloorDiv => {
                if b == 0 {
                    return Err(exc(
                        "ZeroDivisionError",
                        "integer division or modulo by zero",
                    ));
                }
                a.div_euclid(b) - i64::from(b < 0 && a.rem_euclid(b) != 0)
            }
            BinOp::Mod => {
                if b == 0 {
                    return Err(exc("ZeroDivisionError", "integer modulo by zero"));
                }
                let m = a % b;
                if m != 0 && ((m < 0) != (b < 0)) {
                    m + b
                } else {
                    m
                }
            }
            BinOp::Pow => {
                if b < 0 {
                    return Ok(Value::Float((a as f64).powf(b as f64)));
                }
                a.checked_pow(u32::try_from(b).map_err(|_| overflow())?)
                    .ok_or_else(overflow)?
            }
            BinOp::LShift => a
                .checked_shl(u32::try_from(b).map_err(|_| overflow())?)
                .ok_or_else(overflow)?,
            BinOp::RShift => a >> b.clamp(0, 63),
            BinOp::BitOr => a | b,
            BinOp::BitAnd => a & b,
            BinOp::BitXor => a ^ b,
            BinOp::MatMult => return Err(type_error("unsupported operand type(s) for @")),
        }));
    }
    let (a, b) = (x.as_f64(), y.as_f64());
    Ok(Value::Float(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mult => a * b,
        BinOp::Div => {
            if b == 0.0 {
                return Err(exc("ZeroDivisionError", "float division by zero"));
            }
            a / b
        }
        BinOp::FloorDiv => {
            if b == 0.0 {
                return Err(exc("ZeroDivisionError", "float floor division by zero"));
            }
            float_divmod(a, b).0
        }
        BinOp::Mod => {
            if b == 0.0 {
                return Err(exc("ZeroDivisionError", "float modulo"));
            }
            float_divmod(a, b).1
        }
        BinOp::Pow => float_pow(a, b)?,
        _ => {
            return Err(type_error(format!(
                "unsupported operand type(s) for {}: 'float'",
                op.symbol()
            )))
        }
    }))
}

/// Python's float `//` and `%` (CPython's `float_divmod`): the floor of the exact quotient,
/// not of the rounded `a / b` (`3.0 // 0.1` is 29.0, as 0.1 is a little more than a tenth),
/// and a remainder with the divisor's sign, a zero one included (`-0.0 % 3` is 0.0).
fn float_divmod(a: f64, b: f64) -> (f64, f64) {
    let mut rem = a % b;
    let mut div = (a - rem) / b;
    if rem != 0.0 {
        if (b < 0.0) != (rem < 0.0) {
            rem += b;
            div -= 1.0;
        }
    } else {
        rem = 0.0_f64.copysign(b);
    }
    let floor = if div != 0.0 {
        let f = div.floor();
        if div - f > 0.5 {
            f + 1.0
        } else {
            f
        }
    } else {
        0.0_f64.copysign(a / b)
    };
    (floor, rem)
}

/// Python's float `**`: the errors Python raises where IEEE arithmetic gives an infinity,
/// and a refusal where Python's answer is a complex number.
fn float_pow(a: f64, b: f64) -> R<f64> {
    if a == 0.0 && b < 0.0 {
        return Err(exc(
            "ZeroDivisionError",
            "0.0 cannot be raised to a negative power",
        ));
    }
    if a < 0.0 && a.is_finite() && b.is_finite() && b.fract() != 0.0 {
        return Err(unsupported(
            "a negative number to a fractional power",
            "its value is a complex number, which ralembic does not model",
        ));
    }
    let r = a.powf(b);
    if r.is_infinite() && a.is_finite() && b.is_finite() {
        return Err(exc(
            "OverflowError",
            "(34, 'Numerical result out of range')",
        ));
    }
    Ok(r)
}

// ----- attributes and methods ----------------------------------------------------------------

const STR_METHODS: &[&str] = &[
    "join",
    "split",
    "rsplit",
    "strip",
    "lstrip",
    "rstrip",
    "lower",
    "upper",
    "replace",
    "startswith",
    "endswith",
    "format",
    "splitlines",
    "title",
    "capitalize",
    "find",
    "rfind",
    "rindex",
    "swapcase",
    "isascii",
    "count",
    "isdigit",
    "isalpha",
    "isalnum",
    "isspace",
    "isupper",
    "islower",
    "encode",
    "zfill",
    "partition",
    "rpartition",
    "index",
    "removeprefix",
    "removesuffix",
    "ljust",
    "rjust",
    "center",
];
const LIST_METHODS: &[&str] = &[
    "append", "extend", "insert", "pop", "index", "remove", "sort", "reverse", "count", "copy",
    "clear",
];
const DICT_METHODS: &[&str] = &[
    "get",
    "keys",
    "values",
    "items",
    "setdefault",
    "pop",
    "popitem",
    "update",
    "copy",
    "clear",
];
const SET_METHODS: &[&str] = &[
    "add",
    "discard",
    "remove",
    "union",
    "intersection",
    "difference",
    "issubset",
    "issuperset",
    "update",
    "copy",
    "pop",
];

/// The built-in type's method `attr` names on `v`, if it is one (`str`, `list`, `dict`,
/// `set`, `tuple`, `bytes` values).
fn builtin_method(v: &Value, attr: &str) -> Option<&'static str> {
    let methods: &[&'static str] = match v {
        Value::Str(_) => STR_METHODS,
        Value::List(_) => LIST_METHODS,
        Value::Dict(_) => DICT_METHODS,
        Value::Set(_) => SET_METHODS,
        Value::Tuple(_) => &["index", "count"],
        Value::Bytes(_) => &["decode", "hex"],
        _ => return None,
    };
    methods.iter().copied().find(|m| *m == attr)
}

pub fn get_attr(interp: &mut Interp<'_>, v: &Value, attr: &str) -> R<Value> {
    match v {
        Value::Native(n) => {
            if let Native::Builtin(t @ ("str" | "list" | "dict" | "set")) = &**n {
                let table: &[&'static str] = match *t {
                    "str" => STR_METHODS,
                    "list" => LIST_METHODS,
                    "dict" => DICT_METHODS,
                    _ => SET_METHODS,
                };
                if let Some(m) = table.iter().find(|m| **m == attr) {
                    return Ok(Value::native(Native::Unbound { name: m }));
                }
                if *t == "dict" && attr == "fromkeys" {
                    return Ok(Value::native(Native::Func("dict.fromkeys".into())));
                }
                // What an instance would refuse, the type refuses too (`str.maketrans`).
                if *t == "str" && unmodelled_str_method(attr) {
                    return Err(unsupported(
                        format!("`{t}.{attr}`"),
                        format!("not in ralembic's model of {t}"),
                    ));
                }
            }
            return native::get_attr(interp, n, v, attr);
        }
        Value::Function(f) if attr == "__name__" => return Ok(Value::str(f.name.as_str())),
        // A class method, reached through an instance as well.
        Value::Dict(_) if attr == "fromkeys" => {
            return Ok(Value::native(Native::Func("dict.fromkeys".into())))
        }
        _ => {}
    }
    match builtin_method(v, attr) {
        Some(m) => Ok(Value::native(Native::Method {
            name: m,
            this: v.clone(),
        })),
        // A method Python's type has and ralembic does not model is outside the model, not
        // an AttributeError a body's `except` could take for Python's answer.
        None if matches!(v, Value::Str(_)) && unmodelled_str_method(attr) => Err(unsupported(
            format!("`{}.{attr}()`", v.type_name()),
            format!("not in ralembic's model of {}", v.type_name()),
        )),
        None => Err(exc(
            "AttributeError",
            format!("'{}' object has no attribute '{attr}'", v.type_name()),
        )),
    }
}

/// Python's `str.isspace` for one character: Unicode's white space and the four ASCII
/// separators (`\x1c`-`\x1f`), which Python counts and Rust's `is_whitespace` does not.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `str.split()`/`rsplit()` without a separator, as CPython splits: runs of white space
/// separate, none at the ends; after `maxsplit` splits the rest is kept whole, white space
/// before it (after it, for `rsplit`) dropped, and an empty rest is no item.
fn split_whitespace(s: &str, from_right: bool, maxsplit: Option<usize>) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = s;
    let mut left = maxsplit.unwrap_or(usize::MAX);
    loop {
        rest = if from_right {
            rest.trim_end_matches(py_isspace)
        } else {
            rest.trim_start_matches(py_isspace)
        };
        if rest.is_empty() {
            break;
        }
        if left == 0 {
            parts.push(rest.to_string());
            break;
        }
        left -= 1;
        if from_right {
            let start = rest
                .char_indices()
                .rev()
                .find(|(_, c)| py_isspace(*c))
                .map_or(0, |(i, c)| i + c.len_utf8());
            parts.push(rest[start..].to_string());
            rest = &rest[..start];
        } else {
            let end = rest.find(py_isspace).unwrap_or(rest.len());
            parts.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    if from_right {
        parts.reverse();
    }
    parts
}

/// Methods of Python's `str` that ralembic leaves out (every `list` and `dict` method is
/// modelled).
fn unmodelled_str_method(attr: &str) -> bool {
    [
        "casefold",
        "expandtabs",
        "format_map",
        "isdecimal",
        "isidentifier",
        "isnumeric",
        "isprintable",
        "istitle",
        "maketrans",
        "translate",
    ]
    .contains(&attr)
}

/// The part of `s` that `start` and `end` (slice indices, negative from the end, None for
/// the default) select, for `find`, `count`, `startswith` and the like: its first
/// character's index and its text; None when `start` lies past the end of `s` or past
/// `end`, where Python finds nothing (not even an empty string).
fn str_window<'s>(
    s: &'s str,
    start: Option<&Value>,
    end: Option<&Value>,
) -> R<Option<(usize, &'s str)>> {
    let n = s.chars().count() as i64;
    let index = |v: Option<&Value>, default: i64| -> R<i64> {
        match v {
            None | Some(Value::None) => Ok(default),
            Some(v) => match as_number(v) {
                Some(Num::Int(i)) => Ok(if i < 0 { (i + n).max(0) } else { i }),
                _ => Err(type_error(
                    "slice indices must be integers or None or have an __index__ method",
                )),
            },
        }
    };
    let (lo, hi) = (index(start, 0)?, index(end, n)?.min(n));
    if lo > n || lo > hi {
        return Ok(None);
    }
    let byte = |c: i64| {
        s.char_indices()
            .nth(usize::try_from(c).unwrap_or(usize::MAX))
            .map_or(s.len(), |(b, _)| b)
    };
    Ok(Some((lo as usize, &s[byte(lo)..byte(hi)])))
}

/// A method `this.attr` that a call can run without binding it first.
pub enum DirectMethod {
    Builtin(&'static str),
    Native(&'static str),
}

/// `this.attr` when it is a method `get_attr` would bind: `this.attr(...)` then calls it
/// directly ([`call_direct`]), sparing the bound method's allocation. A data loop makes
/// several such calls per row (`value.replace(...)`, `stmt.where(...)`, `conn.execute(...)`).
pub fn direct_method(this: &Value, attr: &str) -> Option<DirectMethod> {
    match this {
        Value::Native(n) => native::direct_method(n, attr).map(DirectMethod::Native),
        _ => builtin_method(this, attr).map(DirectMethod::Builtin),
    }
}

/// Calls the method [`direct_method`] found, with the receiver it was found on.
pub fn call_direct(
    interp: &mut Interp<'_>,
    method: DirectMethod,
    this: Value,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    match (method, this) {
        (DirectMethod::Native(name), Value::Native(n)) => {
            native::call_method_owned(interp, n, name, args, kwargs)
        }
        (DirectMethod::Builtin(name), this) => call_method(interp, name, &this, args, kwargs),
        (DirectMethod::Native(name), this) => Err(type_error(format!(
            "'{}' object has no method '{name}'",
            this.type_name()
        ))),
    }
}

fn arg_count(name: &str, args: &[Value], min: usize, max: usize) -> R<()> {
    if args.len() < min || args.len() > max {
        return Err(type_error(if min == max {
            format!(
                "{name}() takes exactly {min} argument(s) ({} given)",
                args.len()
            )
        } else {
            format!(
                "{name}() expected at most {max} argument(s), got {}",
                args.len()
            )
        }));
    }
    Ok(())
}

/// A float already rounded to a whole number, as the int Python makes of it: NaN and the
/// infinities raise Python's errors; beyond 64 bits is outside the model.
pub(super) fn float_to_int(whole: f64) -> R<i64> {
    if whole.is_nan() {
        return Err(exc("ValueError", "cannot convert float NaN to integer"));
    }
    if whole.is_infinite() {
        return Err(exc(
            "OverflowError",
            "cannot convert float infinity to integer",
        ));
    }
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&whole) {
        return Err(unsupported(
            "an integer beyond 64 bits",
            "integers are 64-bit here",
        ));
    }
    // In range just above, and whole: the conversion is exact.
    Ok(whole as i64)
}

enum IntText {
    Invalid,
    TooBig,
    /// Python reads any Unicode decimal digit; ralembic only ASCII ones.
    NonAscii,
}

/// `int(text, base)` as Python reads the text: surrounding whitespace, a sign, the base's
/// prefix (`0x`, `0o`, `0b`; with base 0 the prefix decides, and a decimal may not start
/// with 0), underscores only between digits or right after a prefix.
fn parse_int(text: &str, base: u32) -> Result<i64, IntText> {
    let t = text.trim();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let prefix =
        |p: u8| t.len() >= 2 && t.as_bytes()[0] == b'0' && t.as_bytes()[1].eq_ignore_ascii_case(&p);
    let (base, digits, prefixed) = match base {
        0 | 16 if prefix(b'x') => (16, &t[2..], true),
        0 | 8 if prefix(b'o') => (8, &t[2..], true),
        0 | 2 if prefix(b'b') => (2, &t[2..], true),
        0 => {
            // Base 0 reads a decimal, which may not have leading zeros ("00" is 0).
            if t.len() > 1 && t.starts_with('0') && t.bytes().any(|b| b != b'0' && b != b'_') {
                return Err(IntText::Invalid);
            }
            (10, t, false)
        }
        b => (b, t, false),
    };
    let digits = match digits.strip_prefix('_') {
        Some(rest) if prefixed => rest,
        _ => digits,
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return Err(IntText::Invalid);
    }
    if !digits.is_ascii() {
        return Err(IntText::NonAscii);
    }
    if !digits.chars().all(|c| c == '_' || c.is_digit(base)) {
        return Err(IntText::Invalid);
    }
    let mut value: i64 = 0;
    for c in digits.chars().filter(|c| *c != '_') {
        let d = c.to_digit(base).ok_or(IntText::Invalid)?;
        value = value
            .checked_mul(i64::from(base))
            .and_then(|v| {
                if negative {
                    v.checked_sub(i64::from(d))
                } else {
                    v.checked_add(i64::from(d))
                }
            })
            .ok_or(IntText::TooBig)?;
    }
    Ok(value)
}

fn str_arg<'a>(v: &'a Value, what: &str) -> R<&'a str> {
    v.as_str()
        .ok_or_else(|| type_error(format!("{what} must be str, not {}", v.type_name())))
}

pub(super) fn int_arg(v: &Value) -> R<i64> {
    match as_number(v) {
        Some(Num::Int(i)) => Ok(i),
        _ => Err(type_error(format!(
            "'{}' object cannot be interpreted as an integer",
            v.type_name()
        ))),
    }
}

fn kw<'a>(kwargs: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

pub fn call_method(
    interp: &mut Interp<'_>,
    name: &str,
    this: &Value,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    match this {
        Value::Str(s) => str_method(s, name, &args, &kwargs),
        Value::List(l) => list_method(interp, l, name, args, &kwargs),
        Value::Dict(d) => dict_method(d, name, args, kwargs),
        Value::Set(_) if !kwargs.is_empty() => Err(type_error(format!(
            "set.{name}() takes no keyword arguments"
        ))),
        Value::Set(s) => set_method(s, name, args),
        Value::Tuple(t) => match name {
            "count" => Ok(Value::Int(
                t.iter()
                    .filter(|x| args.first().is_some_and(|a| py_eq(x, a)))
                    .count() as i64,
            )),
            _ => {
                let a = args.first().cloned().unwrap_or(Value::None);
                t.iter()
                    .position(|x| py_eq(x, &a))
                    .map(|i| Value::Int(i as i64))
                    .ok_or_else(|| exc("ValueError", "tuple.index(x): x not in tuple"))
            }
        },
        Value::Bytes(b) => match name {
            "hex" => Ok(Value::str(
                b.iter().map(|c| format!("{c:02x}")).collect::<String>(),
            )),
            _ => String::from_utf8(b.to_vec())
                .map(Value::str)
                .map_err(|e| exc("UnicodeDecodeError", e.to_string())),
        },
        _ => Err(exc(
            "AttributeError",
            format!("'{}' object has no attribute '{name}'", this.type_name()),
        )),
    }
}

fn str_method(s: &str, name: &str, args: &[Value], kwargs: &[(String, Value)]) -> R<Value> {
    let chars_arg = |i: usize| -> R<Option<String>> {
        match args.get(i) {
            None | Some(Value::None) => Ok(None),
            Some(v) => Ok(Some(str_arg(v, "argument")?.to_string())),
        }
    };
    Ok(match name {
        "join" => {
            arg_count("join", args, 1, 1)?;
            let mut parts = Vec::new();
            for (i, v) in iterate(&args[0])?.into_iter().enumerate() {
                match v {
                    Value::Str(p) => parts.push(p.to_string()),
                    other => {
                        return Err(type_error(format!(
                            "sequence item {i}: expected str instance, {} found",
                            other.type_name()
                        )))
                    }
                }
            }
            Value::str(parts.join(s))
        }
        "split" | "rsplit" => {
            let sep = chars_arg(0)?.or(match kw(kwargs, "sep") {
                Some(Value::Str(x)) => Some(x.to_string()),
                _ => None,
            });
            let maxsplit = match args.get(1).or(kw(kwargs, "maxsplit")) {
                Some(v) => int_arg(v)?,
                None => -1,
            };
            let parts: Vec<String> = match (&sep, maxsplit) {
                (None, m) => split_whitespace(s, name == "rsplit", usize::try_from(m).ok()),
                (Some(sep), _) if sep.is_empty() => {
                    return Err(exc("ValueError", "empty separator"))
                }
                (Some(sep), m) if m < 0 => s.split(sep.as_str()).map(str::to_string).collect(),
                (Some(sep), m) => {
                    let n = usize::try_from(m).unwrap_or(0) + 1;
                    if name == "split" {
                        s.splitn(n, sep.as_str()).map(str::to_string).collect()
                    } else {
                        let mut v: Vec<String> =
                            s.rsplitn(n, sep.as_str()).map(str::to_string).collect();
                        v.reverse();
                        v
                    }
                }
            };
            Value::list(parts.into_iter().map(Value::str).collect())
        }
        "strip" | "lstrip" | "rstrip" => {
            let set = chars_arg(0)?;
            let pred = |c: char| match &set {
                Some(set) => set.contains(c),
                None => py_isspace(c),
            };
            Value::str(match name {
                "strip" => s.trim_matches(pred),
                "lstrip" => s.trim_start_matches(pred),
                _ => s.trim_end_matches(pred),
            })
        }
        "lower" => Value::str(s.to_lowercase()),
        "upper" => Value::str(s.to_uppercase()),
        "title" => {
            let mut out = String::new();
            let mut prev_alpha = false;
            for c in s.chars() {
                if prev_alpha {
                    out.extend(c.to_lowercase());
                } else {
                    out.extend(c.to_uppercase());
                }
                prev_alpha = c.is_alphabetic();
            }
            Value::str(out)
        }
        "capitalize" => {
            let mut cs = s.chars();
            Value::str(match cs.next() {
                Some(c) => c
                    .to_uppercase()
                    .chain(cs.as_str().to_lowercase().chars())
                    .collect(),
                None => String::new(),
            })
        }
        "replace" => {
            arg_count("replace", args, 2, 3)?;
            let old = str_arg(&args[0], "replace() argument 1")?;
            let new = str_arg(&args[1], "replace() argument 2")?;
            match args.get(2) {
                Some(n) => {
                    let n = int_arg(n)?;
                    if n < 0 {
                        Value::str(s.replace(old, new))
                    } else {
                        Value::str(s.replacen(old, new, usize::try_from(n).unwrap_or(0)))
                    }
                }
                None => Value::str(s.replace(old, new)),
            }
        }
        "startswith" | "endswith" => {
            arg_count(name, args, 1, 3)?;
            let candidates = match &args[0] {
                Value::Tuple(t) => t.to_vec(),
                v => vec![v.clone()],
            };
            let window = str_window(s, args.get(1), args.get(2))?;
            let mut hit = false;
            for c in &candidates {
                let c = str_arg(c, name)?;
                hit |= window.is_some_and(|(_, w)| {
                    if name == "startswith" {
                        w.starts_with(c)
                    } else {
                        w.ends_with(c)
                    }
                });
            }
            Value::Bool(hit)
        }
        "format" => Value::str(str_format(s, args, kwargs)?),
        "splitlines" => {
            let keepends = args.first().or(kw(kwargs, "keepends"));
            Value::list(
                crate::alembic_compat::command::format::py_split_lines(
                    s,
                    keepends.is_some_and(Value::truthy),
                )
                .into_iter()
                .map(Value::str)
                .collect(),
            )
        }
        "find" | "index" | "rfind" | "rindex" => {
            arg_count(name, args, 1, 3)?;
            let sub = str_arg(&args[0], "must be str")?;
            let found = str_window(s, args.get(1), args.get(2))?.and_then(|(first, w)| {
                let at = if name.starts_with('r') {
                    w.rfind(sub)
                } else {
                    w.find(sub)
                };
                at.map(|b| first + w[..b].chars().count())
            });
            match found {
                Some(i) => Value::Int(i as i64),
                None if name.ends_with("find") => Value::Int(-1),
                None => return Err(exc("ValueError", "substring not found")),
            }
        }
        "count" => {
            arg_count(name, args, 1, 3)?;
            let sub = str_arg(&args[0], "must be str")?;
            Value::Int(match str_window(s, args.get(1), args.get(2))? {
                None => 0,
                Some((_, w)) if sub.is_empty() => w.chars().count() as i64 + 1,
                Some((_, w)) => w.matches(sub).count() as i64,
            })
        }
        "swapcase" => Value::str(
            s.chars()
                .flat_map(|c| {
                    let swapped: Vec<char> = if c.is_uppercase() {
                        c.to_lowercase().collect()
                    } else if c.is_lowercase() {
                        c.to_uppercase().collect()
                    } else {
                        vec![c]
                    };
                    swapped
                })
                .collect::<String>(),
        ),
        "isascii" => Value::Bool(s.is_ascii()),
        "isdigit" => Value::Bool(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
        "isalpha" => Value::Bool(!s.is_empty() && s.chars().all(char::is_alphabetic)),
        "isalnum" => Value::Bool(!s.is_empty() && s.chars().all(char::is_alphanumeric)),
        "isspace" => Value::Bool(!s.is_empty() && s.chars().all(py_isspace)),
        "isupper" => {
            Value::Bool(s.chars().any(char::is_uppercase) && !s.chars().any(char::is_lowercase))
        }
        "islower" => {
            Value::Bool(s.chars().any(char::is_lowercase) && !s.chars().any(char::is_uppercase))
        }
        "encode" => Value::Bytes(s.as_bytes().into()),
        "zfill" => {
            let w = usize::try_from(int_arg(args.first().unwrap_or(&Value::Int(0)))?).unwrap_or(0);
            let n = s.chars().count();
            if n >= w {
                Value::str(s)
            } else {
                let (sign, rest) = match s.strip_prefix(['-', '+']) {
                    Some(r) => (&s[..1], r),
                    None => ("", s),
                };
                Value::str(format!("{sign}{}{rest}", "0".repeat(w - n)))
            }
        }
        "ljust" | "rjust" | "center" => {
            let w = usize::try_from(int_arg(args.first().unwrap_or(&Value::Int(0)))?).unwrap_or(0);
            let fill = match args.get(1) {
                Some(Value::Str(f)) => f.chars().next().unwrap_or(' '),
                _ => ' ',
            };
            let n = s.chars().count();
            if name == "center" && w > n {
                // str.center puts the odd fill character on the left when the width is odd,
                // unlike format()'s `^`.
                let marg = w - n;
                let left = marg / 2 + (marg & w & 1);
                let pad = |k: usize| fill.to_string().repeat(k);
                return Ok(Value::str(format!("{}{s}{}", pad(left), pad(marg - left))));
            }
            let spec = format!(
                "{fill}{}{w}",
                match name {
                    "ljust" => '<',
                    "rjust" => '>',
                    _ => '^',
                }
            );
            Value::str(format_value(&Value::str(s), &spec)?)
        }
        "partition" | "rpartition" => {
            let sep = str_arg(args.first().unwrap_or(&Value::None), "must be str")?;
            let found = if name == "partition" {
                s.split_once(sep)
            } else {
                s.rsplit_once(sep)
            };
            match found {
                Some((a, b)) => Value::tuple(vec![Value::str(a), Value::str(sep), Value::str(b)]),
                None if name == "partition" => {
                    Value::tuple(vec![Value::str(s), Value::str(""), Value::str("")])
                }
                None => Value::tuple(vec![Value::str(""), Value::str(""), Value::str(s)]),
            }
        }
        "removeprefix" => {
            let p = str_arg(args.first().unwrap_or(&Value::None), "must be str")?;
            Value::str(s.strip_prefix(p).unwrap_or(s))
        }
        "removesuffix" => {
            let p = str_arg(args.first().unwrap_or(&Value::None), "must be str")?;
            Value::str(s.strip_suffix(p).unwrap_or(s))
        }
        _ => {
            return Err(exc(
                "AttributeError",
                format!("'str' object has no attribute '{name}'"),
            ))
        }
    })
}

fn list_method(
    interp: &mut Interp<'_>,
    l: &Rc<RefCell<Vec<Value>>>,
    name: &str,
    args: Vec<Value>,
    kwargs: &[(String, Value)],
) -> R<Value> {
    match name {
        "append" => {
            arg_count("append", &args, 1, 1)?;
            l.borrow_mut().extend(args);
        }
        "extend" => {
            arg_count("extend", &args, 1, 1)?;
            let items = iterate(&args[0])?;
            l.borrow_mut().extend(items);
        }
        "insert" => {
            arg_count("insert", &args, 2, 2)?;
            let n = l.borrow().len() as i64;
            let i = int_arg(&args[0])?;
            let i = if i < 0 { (i + n).max(0) } else { i.min(n) };
            l.borrow_mut()
                .insert(usize::try_from(i).unwrap_or(0), args[1].clone());
        }
        "pop" => {
            let mut l = l.borrow_mut();
            if l.is_empty() {
                return Err(exc("IndexError", "pop from empty list"));
            }
            let i = match args.first() {
                Some(k) => index_of(l.len(), k).map_err(|_| match as_number(k) {
                    Some(Num::Int(_)) => exc("IndexError", "pop index out of range"),
                    _ => type_error(format!(
                        "'{}' object cannot be interpreted as an integer",
                        k.type_name()
                    )),
                })?,
                None => l.len() - 1,
            };
            return Ok(l.remove(i));
        }
        "index" | "remove" | "count" => {
            arg_count(name, &args, 1, if name == "index" { 3 } else { 1 })?;
            let pos = {
                let items = l.borrow();
                let n = items.len() as i64;
                let bound = |v: Option<&Value>, default: i64| -> R<usize> {
                    let i = match v {
                        None => default,
                        Some(v) => int_arg(v)?,
                    };
                    let i = if i < 0 { (i + n).max(0) } else { i.min(n) };
                    Ok(usize::try_from(i).unwrap_or(0))
                };
                let (lo, hi) = (bound(args.get(1), 0)?, bound(args.get(2), n)?);
                items
                    .iter()
                    .enumerate()
                    .take(hi)
                    .skip(lo)
                    .find(|(_, x)| py_eq(x, &args[0]))
                    .map(|(i, _)| i)
            };
            match name {
                "count" => {
                    return Ok(Value::Int(
                        l.borrow().iter().filter(|x| py_eq(x, &args[0])).count() as i64,
                    ))
                }
                "index" => {
                    return pos.map(|i| Value::Int(i as i64)).ok_or_else(|| {
                        exc("ValueError", format!("{} is not in list", repr(&args[0])))
                    })
                }
                _ => match pos {
                    Some(i) => {
                        l.borrow_mut().remove(i);
                    }
                    None => return Err(exc("ValueError", "list.remove(x): x not in list")),
                },
            }
        }
        "sort" => {
            let items = l.borrow().clone();
            let sorted = sort_values(
                interp,
                items,
                kw(kwargs, "key").cloned(),
                kw(kwargs, "reverse").is_some_and(Value::truthy),
            )?;
            *l.borrow_mut() = sorted;
        }
        "reverse" => l.borrow_mut().reverse(),
        "copy" => return Ok(Value::list(l.borrow().clone())),
        "clear" => l.borrow_mut().clear(),
        _ => {
            return Err(exc(
                "AttributeError",
                format!("'list' object has no attribute '{name}'"),
            ))
        }
    }
    Ok(Value::None)
}

fn dict_method(
    d: &Rc<RefCell<Dict>>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    if !kwargs.is_empty() && name != "update" {
        return Err(type_error(format!(
            "dict.{name}() takes no keyword arguments"
        )));
    }
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::None);
    Ok(match name {
        "get" => {
            arg_count("get", &args, 1, 2)?;
            d.borrow().get(&args[0]).cloned().unwrap_or(arg(1))
        }
        "keys" | "values" | "items" => {
            arg_count(name, &args, 0, 0)?;
            let kind = match name {
                "keys" => ViewKind::Keys,
                "values" => ViewKind::Values,
                _ => ViewKind::Items,
            };
            Value::native(Native::DictView {
                dict: d.clone(),
                kind,
            })
        }
        // The last item in, as in Python 3.7+.
        "popitem" => {
            arg_count("popitem", &args, 0, 0)?;
            let last = d.borrow_mut().pop_last();
            match last {
                Some((k, v)) => Value::tuple(vec![k, v]),
                None => return Err(key_error(&Value::str("popitem(): dictionary is empty"))),
            }
        }
        "setdefault" => {
            arg_count("setdefault", &args, 1, 2)?;
            let existing = d.borrow().get(&args[0]).cloned();
            match existing {
                Some(v) => v,
                None => {
                    check_hashable(&args[0])?;
                    d.borrow_mut().insert(args[0].clone(), arg(1));
                    arg(1)
                }
            }
        }
        "pop" => {
            arg_count("pop", &args, 1, 2)?;
            match d.borrow_mut().remove(&args[0]) {
                Some(v) => v,
                None if args.len() == 2 => arg(1),
                None => return Err(key_error(&args[0])),
            }
        }
        "update" => {
            arg_count("update", &args, 0, 1)?;
            for a in &args {
                for (k, v) in mapping_items(a)? {
                    d.borrow_mut().insert(k, v);
                }
            }
            // Keywords after the mapping, as Python applies them.
            for (k, v) in kwargs {
                d.borrow_mut().insert(Value::str(k), v);
            }
            Value::None
        }
        "copy" => Value::Dict(Rc::new(RefCell::new(d.borrow().clone()))),
        "clear" => {
            d.borrow_mut().clear();
            Value::None
        }
        _ => {
            return Err(exc(
                "AttributeError",
                format!("'dict' object has no attribute '{name}'"),
            ))
        }
    })
}

fn set_method(s: &Rc<RefCell<PySet>>, name: &str, args: Vec<Value>) -> R<Value> {
    let others = || -> R<Vec<Vec<Value>>> { args.iter().map(iterate).collect() };
    Ok(match name {
        "add" => {
            arg_count("add", &args, 1, 1)?;
            set_add(&mut s.borrow_mut(), args[0].clone())?;
            Value::None
        }
        "update" => {
            for o in others()? {
                for v in o {
                    set_add(&mut s.borrow_mut(), v)?;
                }
            }
            Value::None
        }
        "discard" | "remove" => {
            arg_count(name, &args, 1, 1)?;
            let removed = s.borrow_mut().remove(&args[0]);
            if removed.is_none() && name == "remove" {
                return Err(key_error(&args[0]));
            }
            Value::None
        }
        "pop" => match s.borrow_mut().pop_first() {
            Some(v) => v,
            None => return Err(key_error(&Value::str("pop from an empty set"))),
        },
        "clear" => {
            s.borrow_mut().clear();
            Value::None
        }
        "copy" => new_set(s.borrow().clone()),
        "union" | "intersection" | "difference" => {
            let mut acc = new_set(s.borrow().clone());
            let op = match name {
                "union" => BinOp::BitOr,
                "intersection" => BinOp::BitAnd,
                _ => BinOp::Sub,
            };
            for o in others()? {
                acc = binop(op, &acc, &new_set(PySet::from_values(o)))?;
            }
            acc
        }
        "issubset" | "issuperset" => {
            let o = PySet::from_values(others()?.into_iter().next().unwrap_or_default());
            let set = s.borrow();
            Value::Bool(if name == "issubset" {
                set.iter().all(|x| o.contains(x))
            } else {
                o.iter().all(|x| set.contains(x))
            })
        }
        _ => {
            return Err(exc(
                "AttributeError",
                format!("'set' object has no attribute '{name}'"),
            ))
        }
    })
}

pub fn sort_values(
    interp: &mut Interp<'_>,
    items: Vec<Value>,
    key: Option<Value>,
    reverse: bool,
) -> R<Vec<Value>> {
    let mut keyed: Vec<(Value, Value)> = Vec::with_capacity(items.len());
    for v in items {
        let k = match &key {
            Some(Value::None) | None => v.clone(),
            Some(f) => interp.call(f, vec![v.clone()], Vec::new())?,
        };
        keyed.push((k, v));
    }
    let mut failed = None;
    // A stable merge sort, like Python's; `reverse` keeps equal items in their order.
    keyed.sort_by(|(a, _), (b, _)| {
        let o = match py_cmp(a, b) {
            Some(o) => o,
            None => {
                failed.get_or_insert_with(|| {
                    type_error(format!(
                        "'<' not supported between instances of '{}' and '{}'",
                        // Both sorts first ask whether a later item is less than an earlier.
                        a.type_name(),
                        b.type_name()
                    ))
                });
                Ordering::Equal
            }
        };
        if reverse {
            o.reverse()
        } else {
            o
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(keyed.into_iter().map(|(_, v)| v).collect())
}

// ----- builtin functions -----------------------------------------------------------------

pub fn call_builtin(
    interp: &mut Interp<'_>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    let one = |args: &[Value]| -> R<Value> {
        arg_count(name, args, 1, 1)?;
        Ok(args[0].clone())
    };
    Ok(match name {
        "len" => {
            let v = one(&args)?;
            Value::Int(match &v {
                Value::Str(s) => s.chars().count(),
                Value::Bytes(b) => b.len(),
                Value::List(l) => l.borrow().len(),
                Value::Tuple(t) => t.len(),
                Value::Dict(d) => d.borrow().len(),
                Value::Set(s) => s.borrow().len(),
                Value::Native(n) => n.len().ok_or_else(|| {
                    type_error(format!("object of type '{}' has no len()", v.type_name()))
                })?,
                other => {
                    return Err(type_error(format!(
                        "object of type '{}' has no len()",
                        other.type_name()
                    )))
                }
            } as i64)
        }
        "range" => {
            arg_count("range", &args, 1, 3)?;
            let ints: Vec<i64> = args.iter().map(int_arg).collect::<R<_>>()?;
            let (start, stop, step) = match ints.as_slice() {
                [stop] => (0, *stop, 1),
                [a, b] => (*a, *b, 1),
                [a, b, c] => (*a, *b, *c),
                _ => (0, 0, 1),
            };
            if step == 0 {
                return Err(exc("ValueError", "range() arg 3 must not be zero"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i < stop) || (step < 0 && i > stop) {
                out.push(Value::Int(i));
                if out.len() > 10_000_000 {
                    return Err(unsupported("a range over 10 million items", "memory"));
                }
                i += step;
            }
            Value::list(out)
        }
        "enumerate" => {
            arg_count("enumerate", &args, 1, 2)?;
            let start = match args.get(1).or(kw(&kwargs, "start")) {
                Some(s) => int_arg(s)?,
                None => 0,
            };
            Value::list(
                iterate(&args[0])?
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Value::tuple(vec![Value::Int(start + i as i64), v]))
                    .collect(),
            )
        }
        "zip" => {
            let lists: Vec<Vec<Value>> = args.iter().map(iterate).collect::<R<_>>()?;
            let n = lists.iter().map(Vec::len).min().unwrap_or(0);
            Value::list(
                (0..n)
                    .map(|i| Value::tuple(lists.iter().map(|l| l[i].clone()).collect()))
                    .collect(),
            )
        }
        "sorted" => {
            let items = iterate(&one(&args)?)?;
            Value::list(sort_values(
                interp,
                items,
                kw(&kwargs, "key").cloned(),
                kw(&kwargs, "reverse").is_some_and(Value::truthy),
            )?)
        }
        "reversed" => {
            let mut items = iterate(&one(&args)?)?;
            items.reverse();
            Value::list(items)
        }
        "min" | "max" => {
            let items = if args.len() == 1 {
                iterate(&args[0])?
            } else {
                args.clone()
            };
            if items.is_empty() {
                return match kw(&kwargs, "default") {
                    Some(d) => Ok(d.clone()),
                    None => Err(exc(
                        "ValueError",
                        format!("{name}() arg is an empty sequence"),
                    )),
                };
            }
            let key = kw(&kwargs, "key").cloned().filter(|k| !matches!(k, Value::None));
            // Python keeps the first of equal extremes.
            let mut best: Option<(Value, Value)> = None;
            for v in items {
                let k = match &key {
                    Some(f) => interp.call(f, vec![v.clone()], Vec::new())?,
                    None => v.clone(),
                };
                let better = match &best {
                    None => true,
                    // A NaN is neither less nor greater: the item kept stays.
                    Some((bk, _)) if name == "min" => {
                        py_order(&k, bk, "<")?.is_some_and(Ordering::is_lt)
                    }
                    Some((bk, _)) => py_order(&k, bk, ">")?.is_some_and(Ordering::is_gt),
                };
                if better {
                    best = Some((k, v));
                }
            }
            best.map(|(_, v)| v).unwrap_or(Value::None)
        }
        "sum" => {
            let mut acc = args.get(1).cloned().unwrap_or(Value::Int(0));
            for v in iterate(args.first().unwrap_or(&Value::None))? {
                acc = binop(BinOp::Add, &acc, &v)?;
            }
            acc
        }
        "any" => Value::Bool(iterate(&one(&args)?)?.iter().any(Value::truthy)),
        "all" => Value::Bool(iterate(&one(&args)?)?.iter().all(Value::truthy)),
        "isinstance" => {
            arg_count("isinstance", &args, 2, 2)?;
            Value::Bool(isinstance(&args[0], &args[1])?)
        }
        "int" => match args.first() {
            None => Value::Int(0),
            Some(v) => match (v, args.get(1)) {
                (Value::Str(s), base) => {
                    let base = match base {
                        Some(b) => int_arg(b)?,
                        None => 10,
                    };
                    if base != 0 && !(2..=36).contains(&base) {
                        return Err(exc(
                            "ValueError",
                            "int() base must be >= 2 and <= 36, or 0",
                        ));
                    }
                    match parse_int(s, base as u32) {
                        Ok(i) => Value::Int(i),
                        Err(IntText::TooBig) => {
                            return Err(unsupported(
                                "an integer beyond 64 bits",
                                "integers are 64-bit here",
                            ))
                        }
                        Err(IntText::NonAscii) => {
                            return Err(unsupported(
                                "int() of non-ASCII digits",
                                "only ASCII digits are read",
                            ))
                        }
                        Err(IntText::Invalid) => {
                            return Err(exc(
                                "ValueError",
                                format!("invalid literal for int() with base {base}: {}", repr(v)),
                            ))
                        }
                    }
                }
                (_, Some(_)) => {
                    return Err(type_error("int() can't convert non-string with explicit base"))
                }
                (Value::Float(f), _) => Value::Int(float_to_int(f.trunc())?),
                (Value::Bool(b), _) => Value::Int(i64::from(*b)),
                (Value::Int(i), _) => Value::Int(*i),
                (other, _) => {
                    return Err(type_error(format!(
                        "int() argument must be a string, a bytes-like object or a real number, not '{}'",
                        other.type_name()
                    )))
                }
            },
        },
        "float" => match args.first() {
            None => Value::Float(0.0),
            Some(Value::Str(s)) => {
                let t = s.trim().to_lowercase();
                let f = match t.as_str() {
                    "inf" | "+inf" | "infinity" => f64::INFINITY,
                    "-inf" | "-infinity" => f64::NEG_INFINITY,
                    "nan" => f64::NAN,
                    _ => t.parse::<f64>().map_err(|_| {
                        exc(
                            "ValueError",
                            format!("could not convert string to float: {}", str_repr(s)),
                        )
                    })?,
                };
                Value::Float(f)
            }
            Some(v) => match as_number(v) {
                Some(n) => Value::Float(n.as_f64()),
                None => {
                    return Err(type_error(format!(
                        "float() argument must be a string or a real number, not '{}'",
                        v.type_name()
                    )))
                }
            },
        },
        "str" => match args.first() {
            None => Value::str(""),
            Some(v) => Value::str(str_of(v)),
        },
        "repr" => Value::str(repr(&one(&args)?)),
        "bool" => Value::Bool(args.first().is_some_and(Value::truthy)),
        "list" => Value::list(match args.first() {
            Some(v) => iterate(v)?,
            None => Vec::new(),
        }),
        "tuple" => Value::tuple(match args.first() {
            Some(v) => iterate(v)?,
            None => Vec::new(),
        }),
        "set" | "frozenset" => {
            let mut out = PySet::default();
            if let Some(v) = args.first() {
                for x in iterate(v)? {
                    set_add(&mut out, x)?;
                }
            }
            new_set(out)
        }
        "dict" => {
            let mut d = Dict::default();
            if let Some(v) = args.first() {
                match v {
                    Value::Dict(_) | Value::Native(_) => {
                        for (k, v) in mapping_items(v)? {
                            d.insert(k, v);
                        }
                    }
                    _ => {
                        for pair in iterate(v)? {
                            let kv = iterate(&pair)?;
                            if kv.len() != 2 {
                                return Err(exc(
                                    "ValueError",
                                    "dictionary update sequence element has wrong length",
                                ));
                            }
                            check_hashable(&kv[0])?;
                            d.insert(kv[0].clone(), kv[1].clone());
                        }
                    }
                }
            }
            for (k, v) in kwargs {
                d.insert(Value::str(k), v);
            }
            Value::Dict(Rc::new(RefCell::new(d)))
        }
        "print" => {
            let sep = match kw(&kwargs, "sep") {
                Some(Value::Str(s)) => s.to_string(),
                _ => " ".into(),
            };
            let end = match kw(&kwargs, "end") {
                Some(Value::Str(s)) => s.to_string(),
                _ => "\n".into(),
            };
            let text = args.iter().map(str_of).collect::<Vec<_>>().join(&sep);
            interp.settle()?;
            interp.host.print(&format!("{text}{end}"));
            Value::None
        }
        "getattr" | "hasattr" => {
            arg_count(name, &args, 2, 3)?;
            let attr = str_arg(&args[1], "attribute name")?.to_string();
            match get_attr(interp, &args[0], &attr) {
                Ok(v) if name == "getattr" => v,
                Ok(_) => Value::Bool(true),
                Err(Unwind::Exc(e)) if e.class == "AttributeError" => {
                    if name == "hasattr" {
                        Value::Bool(false)
                    } else if let Some(d) = args.get(2) {
                        d.clone()
                    } else {
                        return Err(Unwind::Exc(e));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        "abs" => match one(&args)? {
            Value::Int(i) => Value::Int(i.checked_abs().ok_or_else(overflow)?),
            Value::Bool(b) => Value::Int(i64::from(b)),
            Value::Float(f) => Value::Float(f.abs()),
            // A negative timedelta is negated, as `-td` negates it.
            Value::Native(n) if matches!(&*n, Native::Temporal(Temporal::Delta(d)) if *d < 0) => {
                native::sql_unary("-", &Value::Native(n))?
            }
            Value::Native(n) if matches!(&*n, Native::Temporal(Temporal::Delta(_))) => {
                Value::Native(n)
            }
            other => {
                return Err(type_error(format!(
                    "bad operand type for abs(): '{}'",
                    other.type_name()
                )))
            }
        },
        "round" => {
            let x = as_number(args.first().unwrap_or(&Value::None))
                .ok_or_else(|| type_error("round() needs a number"))?;
            match args.get(1) {
                None | Some(Value::None) => match x {
                    Num::Int(i) => Value::Int(i),
                    Num::Float(f) => Value::Int(float_to_int(round_half_even(f))?),
                },
                Some(nd) => {
                    let nd = int_arg(nd)?;
                    match x {
                        Num::Int(i) if nd >= 0 => Value::Int(i),
                        // To tens, hundreds...: half to even, as for floats.
                        Num::Int(i) => {
                            let Some(m) = u32::try_from(-nd)
                                .ok()
                                .and_then(|p| 10i128.checked_pow(p))
                                .filter(|m| *m <= i128::from(i64::MAX))
                            else {
                                return Ok(Value::Int(0));
                            };
                            let (q, r) = (i128::from(i).div_euclid(m), i128::from(i).rem_euclid(m));
                            let up = 2 * r > m || (2 * r == m && q % 2 != 0);
                            let rounded = (q + i128::from(up)) * m;
                            Value::Int(i64::try_from(rounded).map_err(|_| {
                                unsupported("an integer beyond 64 bits", "integers are 64-bit here")
                            })?)
                        }
                        // Decimal rounding of the exact binary value, as CPython does.
                        Num::Float(f) if nd >= 0 => {
                            let p = usize::try_from(nd).unwrap_or(0);
                            Value::Float(format!("{f:.p$}").parse().unwrap_or(f))
                        }
                        Num::Float(f) => {
                            let m = 10f64.powi(i32::try_from(-nd).unwrap_or(0));
                            Value::Float(round_half_even(f / m) * m)
                        }
                    }
                }
            }
        }
        "map" => {
            arg_count("map", &args, 2, 2)?;
            let mut out = Vec::new();
            for v in iterate(&args[1])? {
                out.push(interp.call(&args[0], vec![v], Vec::new())?);
            }
            Value::list(out)
        }
        "filter" => {
            arg_count("filter", &args, 2, 2)?;
            let mut out = Vec::new();
            for v in iterate(&args[1])? {
                let keep = match &args[0] {
                    Value::None => v.truthy(),
                    f => interp.call(f, vec![v.clone()], Vec::new())?.truthy(),
                };
                if keep {
                    out.push(v);
                }
            }
            Value::list(out)
        }
        "iter" => Value::list(iterate(&one(&args)?)?),
        "next" => {
            let v = args.first().cloned().unwrap_or(Value::None);
            match &v {
                Value::List(l) => {
                    let mut l = l.borrow_mut();
                    if l.is_empty() {
                        return match args.get(1) {
                            Some(d) => Ok(d.clone()),
                            None => Err(exc("StopIteration", "")),
                        };
                    }
                    l.remove(0)
                }
                _ => return Err(type_error(format!("'{}' object is not an iterator", v.type_name()))),
            }
        }
        "type" => Value::native(Native::TypeOf(one(&args)?.type_name())),
        "callable" => Value::Bool(matches!(
            one(&args)?,
            Value::Function(_) | Value::Native(_)
        )),
        "hex" | "oct" | "bin" => {
            let i = int_arg(&one(&args)?)?;
            let digits = match name {
                "hex" => format!("0x{:x}", i.unsigned_abs()),
                "oct" => format!("0o{:o}", i.unsigned_abs()),
                _ => format!("0b{:b}", i.unsigned_abs()),
            };
            Value::str(if i < 0 { format!("-{digits}") } else { digits })
        }
        "pow" => match args.as_slice() {
            [b, e] => binop(BinOp::Pow, b, e)?,
            [b, e, m] => {
                let (b, e, m) = (int_arg(b)?, int_arg(e)?, int_arg(m)?);
                if m == 0 {
                    return Err(exc("ValueError", "pow() 3rd argument cannot be 0"));
                }
                if e < 0 {
                    return Err(unsupported(
                        "pow() with a negative exponent and a modulus",
                        "modular inverses are not modelled",
                    ));
                }
                // Python's result has the modulus's sign.
                let m128 = i128::from(m);
                let mut result: i128 = 1;
                let mut base = i128::from(b).rem_euclid(m128.abs());
                let mut e = e;
                while e > 0 {
                    if e & 1 == 1 {
                        result = result * base % m128.abs();
                    }
                    base = base * base % m128.abs();
                    e >>= 1;
                }
                let mut r = result % m128.abs();
                if m < 0 && r != 0 {
                    r += m128;
                }
                Value::Int(i64::try_from(r).unwrap_or_default())
            }
            _ => {
                return Err(type_error(format!(
                    "pow expected 2 or 3 arguments, got {}",
                    args.len()
                )))
            }
        },
        "format" => {
            arg_count("format", &args, 1, 2)?;
            let spec = match args.get(1) {
                Some(s) => str_arg(s, "format() argument 2")?.to_string(),
                None => String::new(),
            };
            Value::str(format_value(&args[0], &spec)?)
        }
        "issubclass" => {
            arg_count("issubclass", &args, 2, 2)?;
            let class_name = |v: &Value| match v {
                Value::Native(n) => match &**n {
                    Native::ExcClass(c) => Some(c.clone()),
                    _ => None,
                },
                _ => None,
            };
            let Some(c) = class_name(&args[0]) else {
                return Err(type_error("issubclass() arg 1 must be a class"));
            };
            let parents = match &args[1] {
                Value::Tuple(t) => t.to_vec(),
                v => vec![v.clone()],
            };
            let mut hit = false;
            for p in &parents {
                match class_name(p) {
                    Some(p) => hit |= is_subclass(&c, &p),
                    None => {
                        return Err(unsupported(
                            "issubclass() of a class other than an exception",
                            "only exception classes are modelled as classes",
                        ))
                    }
                }
            }
            Value::Bool(hit)
        }
        "ord" => {
            let v = one(&args)?;
            let s = str_arg(&v, "ord() argument")?;
            let mut cs = s.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => Value::Int(i64::from(c as u32)),
                _ => return Err(type_error("ord() expected a character")),
            }
        }
        "chr" => {
            let i = int_arg(&one(&args)?)?;
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| exc("ValueError", "chr() arg not in range(0x110000)"))?;
            Value::str(c.to_string())
        }
        "divmod" => {
            arg_count("divmod", &args, 2, 2)?;
            Value::tuple(vec![
                binop(BinOp::FloorDiv, &args[0], &args[1])?,
                binop(BinOp::Mod, &args[0], &args[1])?,
            ])
        }
        "bytes" => match args.first() {
            None => Value::Bytes(Vec::new().into()),
            Some(Value::Str(s)) => Value::Bytes(s.as_bytes().into()),
            Some(v) => {
                let mut out = Vec::new();
                for x in iterate(v)? {
                    out.push(u8::try_from(int_arg(&x)?).map_err(|_| {
                        exc("ValueError", "bytes must be in range(0, 256)")
                    })?);
                }
                Value::Bytes(out.into())
            }
        },
        other => return Err(unsupported(format!("the builtin `{other}`"), "not modelled")),
    })
}

pub(super) fn round_half_even(f: f64) -> f64 {
    let r = f.round();
    if (f - f.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - f.signum()
    } else {
        r
    }
}

fn isinstance(v: &Value, class: &Value) -> R<bool> {
    if let Value::Tuple(classes) = class {
        for c in classes.iter() {
            if isinstance(v, c)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    let Value::Native(n) = class else {
        return Err(type_error(
            "isinstance() arg 2 must be a type, a tuple of types, or a union",
        ));
    };
    Ok(match &**n {
        Native::Builtin(t) => match *t {
            "int" => matches!(v, Value::Int(_) | Value::Bool(_)),
            "float" => matches!(v, Value::Float(_)),
            "str" => matches!(v, Value::Str(_)),
            "bool" => matches!(v, Value::Bool(_)),
            "list" => matches!(v, Value::List(_)),
            "tuple" => matches!(v, Value::Tuple(_)),
            "dict" => matches!(v, Value::Dict(_)),
            "set" | "frozenset" => matches!(v, Value::Set(_)),
            "bytes" => matches!(v, Value::Bytes(_)),
            _ => false,
        },
        Native::ExcClass(c) => {
            matches!(v, Value::Native(e) if matches!(&**e, Native::Exception(x) if is_subclass(&x.class, c)))
        }
        other => native::isinstance_native(v, other),
    })
}

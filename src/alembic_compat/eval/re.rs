//! Python's `re` for the simple use revision bodies make of it: `match`, `search`,
//! `fullmatch`, `sub`, `subn`, `findall`, `finditer`, `split`, `compile`, `escape`, the
//! `I`/`M`/`S`/`X` flags and match objects. Patterns run on the `regex` crate, whose syntax
//! is Python's for these uses; what it lacks (backreferences, lookaround) is refused at the
//! call, never guessed. One known difference: Python's `$` without `re.M` also matches
//! before a final newline, the crate's only at the very end.

use std::rc::Rc;

use super::builtins;
use super::interp::{exc, type_error, unsupported, Interp, R};
use super::native::Native;
use super::value::Value;

pub const IGNORECASE: i64 = 2;
pub const MULTILINE: i64 = 8;
pub const DOTALL: i64 = 16;
pub const VERBOSE: i64 = 64;
const ASCII: i64 = 256;

/// A compiled pattern (`re.compile`). `match` and `fullmatch` search with anchored forms,
/// compiled the first time one is used.
#[derive(Debug)]
pub struct Pattern {
    pub source: String,
    pub flags: i64,
    /// The pattern as the crate reads it (flags inline), for the anchored forms.
    crate_source: String,
    search: regex::Regex,
    anchored: std::cell::OnceCell<regex::Regex>,
    full: std::cell::OnceCell<regex::Regex>,
}

impl Pattern {
    /// `\A(?:...)` (`match`) or `\A(?:...)\z` (`fullmatch`).
    fn anchored_form(&self, full: bool) -> R<&regex::Regex> {
        let (cell, end) = if full {
            (&self.full, r"\z")
        } else {
            (&self.anchored, "")
        };
        if let Some(re) = cell.get() {
            return Ok(re);
        }
        let re = regex_of(&format!(r"\A(?:{}){end}", self.crate_source))?;
        Ok(cell.get_or_init(|| re))
    }
}

/// A match object: the text it was found in and each group's span.
#[derive(Debug)]
pub struct Match {
    text: Rc<str>,
    spans: Vec<Option<(usize, usize)>>,
    pattern: Rc<Pattern>,
}

/// `re.compile(source, flags)`; a construct the crate does not run is refused, a syntax
/// error is `re.error`. Compiled patterns are kept, as Python's `re` keeps them: a loop
/// calling `re.sub(pattern, ...)` on every row compiles it once.
pub fn compile(source: &str, flags: i64) -> R<Rc<Pattern>> {
    thread_local! {
        static COMPILED: std::cell::RefCell<rustc_hash::FxHashMap<(String, i64), Rc<Pattern>>> =
            std::cell::RefCell::default();
    }
    let key = (source.to_string(), flags);
    if let Some(p) = COMPILED.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(p);
    }
    let p = compile_new(source, flags)?;
    COMPILED.with(|c| {
        let mut c = c.borrow_mut();
        // Python's cache holds 512 patterns too, and starts over when full.
        if c.len() >= 512 {
            c.clear();
        }
        c.insert(key, p.clone());
    });
    Ok(p)
}

/// `re.search(pattern, text) is not None`: SQLite's REGEXP as SQLAlchemy's SQLite dialect
/// defines it for every connection. Err: why the pattern cannot run (a construct this
/// module refuses), or None where Python's `re` would raise too (a bad pattern).
pub fn sql_regexp(pattern: &str, text: &str) -> Result<bool, Option<String>> {
    match compile(pattern, 0) {
        Ok(p) => Ok(p.search.is_match(text)),
        Err(super::interp::Unwind::Unsupported(r)) => Err(Some(format!("{}: {}", r.what, r.why))),
        Err(_) => Err(None),
    }
}

fn regex_of(pattern: &str) -> R<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| {
        exc(
            "re.error",
            e.to_string()
                .lines()
                .last()
                .unwrap_or("bad pattern")
                .trim()
                .to_string(),
        )
    })
}

fn compile_new(source: &str, flags: i64) -> R<Rc<Pattern>> {
    if flags & ASCII != 0 {
        return Err(unsupported(
            "`re.ASCII`",
            "patterns run with Unicode classes",
        ));
    }
    let translated = translate(source)?;
    let mut inline = String::new();
    for (bit, c) in [
        (IGNORECASE, 'i'),
        (MULTILINE, 'm'),
        (DOTALL, 's'),
        (VERBOSE, 'x'),
    ] {
        if flags & bit != 0 {
            inline.push(c);
        }
    }
    let prefix = if inline.is_empty() {
        String::new()
    } else {
        format!("(?{inline})")
    };
    let crate_source = format!("{prefix}{translated}");
    Ok(Rc::new(Pattern {
        source: source.to_string(),
        flags,
        search: regex_of(&crate_source)?,
        crate_source,
        anchored: std::cell::OnceCell::new(),
        full: std::cell::OnceCell::new(),
    }))
}

/// Python pattern syntax the crate spells otherwise (`\Z`), and what it cannot run.
fn translate(source: &str) -> R<String> {
    let refuse = |what: &str| {
        Err(unsupported(
            format!("{what} in a regular expression"),
            "the regex engine has no backreferences or lookaround",
        ))
    };
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if !in_class => out.push_str(r"\z"),
                // Python's octal escapes (`\0`, `\012`, `\1` in a class, `\141`); other
                // digits outside a class are a backreference.
                Some(d) if d.is_ascii_digit() => {
                    let is_octal = |c: &char| ('0'..='7').contains(c);
                    let ahead: Vec<char> = chars.clone().take(2).collect();
                    let three = ahead.len() == 2 && ahead.iter().all(is_octal) && is_octal(&d);
                    let digits = if d == '0' {
                        1 + ahead.iter().take_while(|c| is_octal(c)).count()
                    } else if three {
                        3
                    } else if in_class && is_octal(&d) {
                        1 + ahead.iter().take_while(|c| is_octal(c)).count()
                    } else {
                        return refuse("a backreference");
                    };
                    let mut code = d.to_digit(8).unwrap_or(0);
                    for _ in 1..digits {
                        code = code * 8 + chars.next().and_then(|c| c.to_digit(8)).unwrap_or(0);
                    }
                    out.push_str(&format!(r"\x{{{code:x}}}"));
                }
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // `[]...]` and `[^]...]`: a leading `]` is a literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str(r"\]");
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            // A Python class takes `[` and `&&` literally; the crate nests and intersects.
            '[' => out.push_str(r"\["),
            '&' if in_class => out.push_str(r"\&"),
            '-' if in_class && chars.peek() == Some(&'-') => out.push_str(r"\-"),
            '~' if in_class && chars.peek() == Some(&'~') => out.push_str(r"\~"),
            '(' if !in_class && chars.peek() == Some(&'?') => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("?=")
                    || rest.starts_with("?!")
                    || rest.starts_with("?<=")
                    || rest.starts_with("?<!")
                {
                    return refuse("a lookaround");
                }
                if rest.starts_with("?P=") {
                    return refuse("a backreference");
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

fn text_arg(v: Option<&Value>, what: &str) -> R<Rc<str>> {
    match v {
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(other) => Err(type_error(format!(
            "expected string or bytes-like object, got '{}'",
            other.type_name()
        ))),
        None => Err(type_error(format!(
            "{what}() missing required argument 'string'"
        ))),
    }
}

fn int_kw(kwargs: &[(String, Value)], key: &str, positional: Option<&Value>) -> R<i64> {
    match kwargs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .or(positional)
    {
        None | Some(Value::None) => Ok(0),
        Some(Value::Int(i)) => Ok(*i),
        Some(Value::Bool(b)) => Ok(i64::from(*b)),
        Some(other) => Err(type_error(format!(
            "'{}' object cannot be interpreted as an integer",
            other.type_name()
        ))),
    }
}

/// A pattern argument: a compiled pattern, or a string compiled with `flags`.
fn pattern_arg(v: Option<&Value>, flags: i64) -> R<Rc<Pattern>> {
    match v {
        Some(Value::Native(n)) => match &**n {
            Native::RePattern(p) => Ok(p.clone()),
            _ => Err(type_error(
                "first argument must be string or compiled pattern",
            )),
        },
        Some(Value::Str(s)) => compile(s, flags),
        _ => Err(type_error(
            "first argument must be string or compiled pattern",
        )),
    }
}

/// `re.<name>(pattern, ...)`.
pub fn module_call(
    interp: &mut Interp<'_>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    match name {
        "compile" => {
            let flags = int_kw(&kwargs, "flags", args.get(1))?;
            Ok(Value::native(Native::RePattern(pattern_arg(
                args.first(),
                flags,
            )?)))
        }
        "escape" => {
            let s = text_arg(args.first(), "escape")?;
            Ok(Value::str(escape(&s)))
        }
        // The flags come after the string (and the replacement, the count or maxsplit).
        _ => {
            let flags_at = match name {
                "sub" | "subn" => 4,
                "split" => 3,
                _ => 2,
            };
            let flags = int_kw(&kwargs, "flags", args.get(flags_at))?;
            let p = pattern_arg(args.first(), flags)?;
            let mut rest: Vec<Value> = args.into_iter().skip(1).collect();
            rest.truncate(flags_at - 1);
            let kwargs: Vec<(String, Value)> =
                kwargs.into_iter().filter(|(k, _)| k != "flags").collect();
            pattern_method(interp, &p, name, rest, kwargs)
        }
    }
}

/// The matches Python's `findall`, `finditer`, `split` and `sub` see, in order. The crate's
/// iterator skips an empty match right after a non-empty one (`x*` finds one match in
/// "x"); Python, since 3.7, keeps it and only passes over an empty match where the previous
/// match was the same empty one (`re.sub('x*', '-', 'abxd')` is `-a-b--d-`).
fn py_captures<'r, 't>(
    re: &'r regex::Regex,
    text: &'t str,
) -> impl Iterator<Item = regex::Captures<'t>> + 'r
where
    't: 'r,
{
    let mut pos = 0;
    let mut empty_at = None;
    std::iter::from_fn(move || {
        while pos <= text.len() {
            let c = re.captures_at(text, pos)?;
            let (start, end) = c.get(0).map(|m| (m.start(), m.end()))?;
            if start == end && empty_at == Some(start) {
                pos += text[pos..].chars().next()?.len_utf8();
                continue;
            }
            empty_at = (start == end).then_some(end);
            pos = end;
            return Some(c);
        }
        None
    })
}

/// `re.escape`: since Python 3.7 only the characters special in a pattern (and white
/// space), not every other non-alphanumeric one.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn found(p: &Rc<Pattern>, text: &Rc<str>, caps: Option<regex::Captures<'_>>) -> Value {
    match caps {
        Some(c) => Value::native(Native::ReMatch(Rc::new(Match {
            text: text.clone(),
            spans: c.iter().map(|g| g.map(|m| (m.start(), m.end()))).collect(),
            pattern: p.clone(),
        }))),
        None => Value::None,
    }
}

/// A method of a compiled pattern (and of the module, which compiles first).
pub fn pattern_method(
    interp: &mut Interp<'_>,
    p: &Rc<Pattern>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    let kw = |k: &str| kwargs.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    match name {
        "match" | "search" | "fullmatch" => {
            let text = text_arg(args.first().or(kw("string")), name)?;
            let re = match name {
                "match" => p.anchored_form(false)?,
                "search" => &p.search,
                _ => p.anchored_form(true)?,
            };
            Ok(found(p, &text, re.captures(&text)))
        }
        "findall" => {
            let text = text_arg(args.first().or(kw("string")), name)?;
            let groups = p.search.captures_len() - 1;
            let mut out = Vec::new();
            for c in py_captures(&p.search, &text) {
                let g = |i: usize| Value::str(c.get(i).map_or("", |m| m.as_str()));
                out.push(match groups {
                    0 => g(0),
                    1 => g(1),
                    n => Value::tuple((1..=n).map(g).collect()),
                });
            }
            Ok(Value::list(out))
        }
        "finditer" => {
            let text = text_arg(args.first().or(kw("string")), name)?;
            let all: Vec<Value> = py_captures(&p.search, &text)
                .map(|c| found(p, &text, Some(c)))
                .collect();
            Ok(Value::list(all))
        }
        "split" => {
            let text = text_arg(args.first().or(kw("string")), name)?;
            let maxsplit = int_kw(&kwargs, "maxsplit", args.get(1))?;
            let mut out = Vec::new();
            let mut last = 0;
            for (n, c) in py_captures(&p.search, &text).enumerate() {
                if maxsplit > 0 && n as i64 >= maxsplit {
                    break;
                }
                let Some(whole) = c.get(0) else { continue };
                out.push(Value::str(&text[last..whole.start()]));
                // Python adds each group's text (None when it did not take part).
                for g in c.iter().skip(1) {
                    out.push(g.map_or(Value::None, |m| Value::str(m.as_str())));
                }
                last = whole.end();
            }
            out.push(Value::str(&text[last..]));
            Ok(Value::list(out))
        }
        "sub" | "subn" => {
            let repl = args.first().or(kw("repl")).cloned().unwrap_or(Value::None);
            let text = text_arg(args.get(1).or(kw("string")), name)?;
            let count = int_kw(&kwargs, "count", args.get(2))?;
            let mut out = String::with_capacity(text.len());
            let mut last = 0;
            let mut n = 0i64;
            for c in py_captures(&p.search, &text) {
                if count > 0 && n >= count {
                    break;
                }
                let Some(whole) = c.get(0) else { continue };
                out.push_str(&text[last..whole.start()]);
                match &repl {
                    Value::Str(template) => expand(template, &c, &mut out)?,
                    f => {
                        let m = found(p, &text, Some(c));
                        let r = interp.call(f, vec![m], Vec::new())?;
                        match r {
                            Value::Str(s) => out.push_str(&s),
                            other => {
                                return Err(type_error(format!(
                                    "expected str instance, {} found",
                                    other.type_name()
                                )))
                            }
                        }
                    }
                }
                last = whole.end();
                n += 1;
            }
            out.push_str(&text[last..]);
            if name == "subn" {
                Ok(Value::tuple(vec![Value::str(out), Value::Int(n)]))
            } else {
                Ok(Value::str(out))
            }
        }
        _ => Err(exc(
            "AttributeError",
            format!("'re.Pattern' object has no attribute '{name}'"),
        )),
    }
}

/// A `sub()` replacement template: `\1`, `\g<1>`, `\g<name>` and Python's escapes.
fn expand(template: &str, c: &regex::Captures<'_>, out: &mut String) -> R<()> {
    let bad = |what: String| exc("re.error", what);
    let group = |out: &mut String, g: &str| -> R<()> {
        let m = match g.parse::<usize>() {
            Ok(i) if i < c.len() => c.get(i),
            Ok(i) => return Err(bad(format!("invalid group reference {i}"))),
            Err(_) => match c.name(g) {
                Some(m) => Some(m),
                None => return Err(exc("IndexError", format!("unknown group name '{g}'"))),
            },
        };
        out.push_str(m.map_or("", |m| m.as_str()));
        Ok(())
    };
    let mut chars = template.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('g') => {
                if chars.next() != Some('<') {
                    return Err(bad("missing <".into()));
                }
                let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                group(out, &name)?;
            }
            Some(d) if d.is_ascii_digit() => {
                let mut num = d.to_string();
                if let Some(&d2) = chars.peek() {
                    if d2.is_ascii_digit() {
                        num.push(d2);
                        chars.next();
                    }
                }
                group(out, &num)?;
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{0c}'),
            Some('v') => out.push('\u{0b}'),
            Some('a') => out.push('\u{07}'),
            Some('b') => out.push('\u{08}'),
            Some('\\') => out.push('\\'),
            Some(other) if other.is_ascii_alphabetic() => {
                return Err(bad(format!("bad escape \\{other}")))
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => return Err(bad("bad escape (end of pattern)".into())),
        }
    }
    Ok(())
}

/// A group argument of a match method: its number or name.
fn group_index(m: &Match, g: &Value) -> R<usize> {
    match g {
        Value::Int(i) if *i >= 0 && (*i as usize) < m.spans.len() => Ok(*i as usize),
        Value::Str(name) => m
            .pattern
            .search
            .capture_names()
            .position(|n| n == Some(&**name))
            .ok_or_else(|| exc("IndexError", "no such group")),
        _ => Err(exc("IndexError", "no such group")),
    }
}

fn group_value(m: &Match, i: usize, default: &Value) -> Value {
    match m.spans.get(i).copied().flatten() {
        Some((s, e)) => Value::str(&m.text[s..e]),
        None => default.clone(),
    }
}

/// `m.group(...)`, `m[...]`.
pub fn match_item(m: &Match, g: &Value) -> R<Value> {
    Ok(group_value(m, group_index(m, g)?, &Value::None))
}

/// A method of a match object.
pub fn match_method(
    m: &Match,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> R<Value> {
    let default = kwargs
        .iter()
        .find(|(k, _)| k == "default")
        .map(|(_, v)| v.clone())
        .or_else(|| args.first().cloned())
        .unwrap_or(Value::None);
    let one_group = |args: &[Value]| -> R<usize> {
        match args.first() {
            Some(g) => group_index(m, g),
            None => Ok(0),
        }
    };
    match name {
        "group" => match args.as_slice() {
            [] => Ok(group_value(m, 0, &Value::None)),
            [g] => match_item(m, g),
            many => Ok(Value::tuple(
                many.iter()
                    .map(|g| match_item(m, g))
                    .collect::<R<Vec<_>>>()?,
            )),
        },
        "groups" => Ok(Value::tuple(
            (1..m.spans.len())
                .map(|i| group_value(m, i, &default))
                .collect(),
        )),
        "groupdict" => {
            let mut items = Vec::new();
            for (i, n) in m.pattern.search.capture_names().enumerate() {
                if let Some(n) = n {
                    items.push((Value::str(n), group_value(m, i, &default)));
                }
            }
            Ok(Value::dict(items))
        }
        "start" | "end" | "span" => {
            let i = one_group(&args)?;
            let (s, e) = match m.spans.get(i).copied().flatten() {
                // Python counts characters, not bytes.
                Some((s, e)) => (
                    m.text[..s].chars().count() as i64,
                    m.text[..e].chars().count() as i64,
                ),
                None => (-1, -1),
            };
            Ok(match name {
                "start" => Value::Int(s),
                "end" => Value::Int(e),
                _ => Value::tuple(vec![Value::Int(s), Value::Int(e)]),
            })
        }
        _ => Err(exc(
            "AttributeError",
            format!("'re.Match' object has no attribute '{name}'"),
        )),
    }
}

/// Attributes: `m.string`, `m.lastindex`, `p.pattern`, `p.flags`, `p.groups`.
pub fn match_attr(m: &Match, attr: &str) -> Option<Value> {
    Some(match attr {
        "string" => Value::Str(m.text.clone()),
        "re" => Value::native(Native::RePattern(m.pattern.clone())),
        "lastindex" => m
            .spans
            .iter()
            .rposition(|s| s.is_some())
            .filter(|i| *i > 0)
            .map_or(Value::None, |i| Value::Int(i as i64)),
        _ => return None,
    })
}

pub fn pattern_attr(p: &Pattern, attr: &str) -> Option<Value> {
    Some(match attr {
        "pattern" => Value::str(p.source.as_str()),
        // Python adds re.UNICODE (32) to a str pattern's flags.
        "flags" => Value::Int(p.flags | 32),
        "groups" => Value::Int(p.search.captures_len() as i64 - 1),
        _ => return None,
    })
}

pub fn match_repr(m: &Match) -> String {
    let (s, e) = m.spans.first().copied().flatten().unwrap_or((0, 0));
    let (cs, ce) = (m.text[..s].chars().count(), m.text[..e].chars().count());
    format!(
        "<re.Match object; span=({cs}, {ce}), match={}>",
        builtins::repr(&Value::str(&m.text[s..e]))
    )
}

pub fn pattern_repr(p: &Pattern) -> String {
    let mut flags = Vec::new();
    for (bit, name) in [
        (IGNORECASE, "re.IGNORECASE"),
        (MULTILINE, "re.MULTILINE"),
        (DOTALL, "re.DOTALL"),
        (VERBOSE, "re.VERBOSE"),
    ] {
        if p.flags & bit != 0 {
            flags.push(name);
        }
    }
    let src = builtins::repr(&Value::str(p.source.as_str()));
    if flags.is_empty() {
        format!("re.compile({src})")
    } else {
        format!("re.compile({src}, {})", flags.join("|"))
    }
}

/// Methods a pattern and a match object have (what `get_attr` binds).
pub const PATTERN_METHODS: &[&str] = &[
    "match",
    "search",
    "fullmatch",
    "findall",
    "finditer",
    "split",
    "sub",
    "subn",
];
pub const MATCH_METHODS: &[&str] = &["group", "groups", "groupdict", "start", "end", "span"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alembic_compat::eval::interp::Unwind;

    fn refusal(source: &str) -> String {
        match compile(source, 0) {
            Err(Unwind::Unsupported(r)) => r.what,
            other => panic!("{source}: expected a refusal, got {other:?}"),
        }
    }

    /// What the regex crate cannot run is refused, never run as something else.
    #[test]
    fn backreferences_and_lookaround_are_refused() {
        assert_eq!(refusal(r"(a)\1"), "a backreference in a regular expression");
        assert_eq!(
            refusal(r"(?P<x>a)(?P=x)"),
            "a backreference in a regular expression"
        );
        for look in [r"a(?=b)", r"a(?!b)", r"(?<=a)b", r"(?<!a)b"] {
            assert_eq!(refusal(look), "a lookaround in a regular expression");
        }
        // Not backreferences: \0 and digits inside a class.
        assert!(compile(r"[\1]x\0", 0).is_ok());
    }

    /// Python's class and anchor spellings reach the crate as Python means them.
    #[test]
    fn python_spellings_translate() {
        let p = compile(r"[]a]+\Z", 0).unwrap();
        assert!(p.search.is_match("a]a"));
        assert!(!p.search.is_match("a]a\n"));
        let p = compile(r"[a&&b]", 0).unwrap();
        assert!(p.search.is_match("&"));
        assert!(matches!(
            compile("(unclosed", 0),
            Err(Unwind::Exc(e)) if e.class == "re.error"
        ));
    }

    /// A pattern used on every row is compiled once.
    #[test]
    fn compiled_patterns_are_kept() {
        let a = compile(r"\d+", IGNORECASE).unwrap();
        let b = compile(r"\d+", IGNORECASE).unwrap();
        assert!(Rc::ptr_eq(&a, &b));
        assert!(!Rc::ptr_eq(&a, &compile(r"\d+", 0).unwrap()));
    }
}

//! Small re-implementations of the Python built-ins whose exact output leaks into Alembic's
//! behaviour and messages: `str.isspace`/`strip`, `repr(str)`, `ascii(str)`, `int(str)`,
//! pathlib's pure-path normalisation and `os.path.normpath`.
//!
//! Owns only string/path arithmetic; no I/O, no Alembic knowledge.

/// `str.isspace()` for one char. Rust's `char::is_whitespace` is the Unicode `White_Space`
/// property; CPython additionally treats the ASCII information separators U+001C..U+001F as
/// whitespace (they are bidi class B/S), so `strip()` removes them.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// ASCII part of `str.isspace()`: `\t\n\v\f\r`, U+001C..U+001F and space.
fn is_ascii_py_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1c..=0x1f | b' ')
}

// The strip functions below walk bytes with an ASCII fast path instead of using
// `trim_matches(is_py_space)`: the generic pattern code is slow in unoptimised builds and these
// run on every line of every ini file.

/// `str.lstrip()` with no argument.
pub(crate) fn py_lstrip(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] < 0x80 {
            if !is_ascii_py_space(b[i]) {
                break;
            }
            i += 1;
        } else {
            match s[i..].chars().next() {
                Some(c) if is_py_space(c) => i += c.len_utf8(),
                _ => break,
            }
        }
    }
    &s[i..]
}

/// `str.rstrip()` with no argument.
pub(crate) fn py_rstrip(s: &str) -> &str {
    let b = s.as_bytes();
    let mut end = b.len();
    while end > 0 {
        if b[end - 1] < 0x80 {
            if !is_ascii_py_space(b[end - 1]) {
                break;
            }
            end -= 1;
        } else {
            match s[..end].chars().next_back() {
                Some(c) if is_py_space(c) => end -= c.len_utf8(),
                _ => break,
            }
        }
    }
    &s[..end]
}

/// `str.strip()` with no argument.
pub(crate) fn py_strip(s: &str) -> &str {
    py_rstrip(py_lstrip(s))
}

/// Number of leading whitespace *characters* (configparser compares indents in chars).
pub(crate) fn py_indent(s: &str) -> usize {
    let rest = py_lstrip(s);
    s[..s.len() - rest.len()].chars().count()
}

/// Whether `repr()` prints the char as-is (`str.isprintable`). CPython consults the Unicode
/// database (categories Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs except space are escaped); we cover every
/// category except Cn (unassigned code points), which needs the full tables. Unassigned chars
/// are printed raw here where Python would escape them: a documented difference.
fn is_py_printable(c: char) -> bool {
    let u = c as u32;
    !matches!(u,
        0x00..=0x1f | 0x7f..=0x9f // Cc
        | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x202f | 0x205f | 0x3000 // Zs (space is fine)
        | 0x2028 | 0x2029 // Zl, Zp
        | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890 | 0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f // Cf
        | 0xe000..=0xf8ff | 0xf0000..=0xffffd | 0x100000..=0x10fffd // Co
    )
}

fn push_escaped(out: &mut String, c: char, ascii_only: bool) {
    let u = c as u32;
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        _ if u < 0x20 || u == 0x7f => out.push_str(&format!("\\x{u:02x}")),
        _ if u < 0x7f => out.push(c),
        _ if !ascii_only && is_py_printable(c) => out.push(c),
        _ if u <= 0xff => out.push_str(&format!("\\x{u:02x}")),
        _ if u <= 0xffff => out.push_str(&format!("\\u{u:04x}")),
        _ => out.push_str(&format!("\\U{u:08x}")),
    }
}

fn quoted(s: &str, ascii_only: bool) -> String {
    // Python prefers single quotes and switches to double quotes only when the text has a
    // single quote but no double quote.
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        if c == quote {
            out.push('\\');
            out.push(c);
        } else {
            push_escaped(&mut out, c, ascii_only);
        }
    }
    out.push(quote);
    out
}

/// `repr(s)` for a Python `str`.
pub(crate) fn py_repr(s: &str) -> String {
    quoted(s, false)
}

/// `ascii(s)` for a Python `str`.
pub(crate) fn py_ascii(s: &str) -> String {
    quoted(s, true)
}

/// `int(s)` (base 10) for the values Alembic converts, e.g. `truncate_slug_length`.
/// Accepts surrounding whitespace, a sign and single underscores between digits, as Python.
/// Only ASCII digits are accepted (Python also takes other Unicode decimal digits) and the
/// result must fit an `i64` (Python has big ints). `None` means Python would raise ValueError.
pub(crate) fn py_int(s: &str) -> Option<i64> {
    let t = py_strip(s);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let mut value: i64 = 0;
    let mut prev_underscore = false;
    for b in digits.bytes() {
        match b {
            b'_' if !prev_underscore => prev_underscore = true,
            b'0'..=b'9' => {
                prev_underscore = false;
                value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
            }
            _ => return None,
        }
    }
    Some(if neg { -value } else { value })
}

/// Splits a POSIX path string into (root, parts) as `pathlib.PurePosixPath` does: empty and
/// `.` components vanish, `..` is kept, and exactly two leading slashes are a distinct root.
fn pure_parts(s: &str) -> (&'static str, Vec<&str>) {
    let root = if s.starts_with("//") && !s.starts_with("///") {
        "//"
    } else if s.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts = s
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    (root, parts)
}

fn join_parts(root: &str, parts: &[&str]) -> String {
    let joined = format!("{root}{}", parts.join("/"));
    if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// `str(pathlib.PurePosixPath(s))`.
pub(crate) fn pure_path(s: &str) -> String {
    let (root, parts) = pure_parts(s);
    join_parts(root, &parts)
}

/// `str(pathlib.Path(s).absolute())` (Python 3.11): cwd-joined when relative, `..` kept.
pub(crate) fn path_absolute(s: &str, cwd: &str) -> String {
    let (root, parts) = pure_parts(s);
    if !root.is_empty() {
        return join_parts(root, &parts);
    }
    let (croot, mut cparts) = pure_parts(cwd);
    cparts.extend(parts);
    join_parts(croot, &cparts)
}

/// `str(pathlib.PurePosixPath(s).parent)`.
pub(crate) fn path_parent(s: &str) -> String {
    let (root, mut parts) = pure_parts(s);
    parts.pop();
    join_parts(root, &parts)
}

/// `os.path.normpath(s)` (posixpath): unlike pathlib this collapses `..` lexically.
pub(crate) fn normpath(s: &str) -> String {
    if s.is_empty() {
        return ".".to_string();
    }
    let root = if s.starts_with("//") && !s.starts_with("///") {
        "//"
    } else if s.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut out: Vec<&str> = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." if !root.is_empty() && out.is_empty() => {}
            ".." if out.last().is_some_and(|p| *p != "..") => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    join_parts(root, &out)
}

/// `os.path.abspath(s)` given the current directory.
pub(crate) fn abspath(s: &str, cwd: &str) -> String {
    if s.starts_with('/') {
        normpath(s)
    } else {
        normpath(&format!("{cwd}/{s}"))
    }
}

/// `os.path.basename(s)`.
pub(crate) fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(py_repr("abc"), "'abc'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_repr("x=1\n"), "'x=1\\n'");
        assert_eq!(py_repr("tab\there\\"), "'tab\\there\\\\'");
        assert_eq!(
            py_repr("\u{1}\u{7f}\u{85}é\u{a0}"),
            "'\\x01\\x7f\\x85é\\xa0'"
        );
        assert_eq!(py_repr("\u{feff}x\u{2028}"), "'\\ufeffx\\u2028'");
        assert_eq!(py_ascii("é€😀"), "'\\xe9\\u20ac\\U0001f600'");
    }

    #[test]
    fn strip_knows_python_whitespace() {
        assert_eq!(py_strip("\u{1c} a \u{a0}\t"), "a");
        assert_eq!(py_rstrip(" a \n\n"), " a");
        assert_eq!(py_strip("\u{feff}a"), "\u{feff}a");
        assert_eq!(py_strip("\u{3000}\u{2028}x y\u{85}\u{1f}"), "x y");
        assert_eq!(py_strip(" \t "), "");
        assert_eq!(py_indent("\u{a0} \tx "), 3);
        assert_eq!(py_indent("x"), 0);
    }

    #[test]
    fn int_like_python() {
        assert_eq!(py_int(" 42\n"), Some(42));
        assert_eq!(py_int("-1_000"), Some(-1000));
        assert_eq!(py_int("+7"), Some(7));
        for bad in ["", "1__0", "_1", "1_", "1.0", "0x10", "- 1", "abc"] {
            assert_eq!(py_int(bad), None, "{bad}");
        }
        assert_eq!(py_int("99999999999999999999"), None);
    }

    #[test]
    fn pathlib_normalisation() {
        assert_eq!(pure_path("a//b/./c/"), "a/b/c");
        assert_eq!(pure_path("./x"), "x");
        assert_eq!(pure_path(""), ".");
        assert_eq!(pure_path("//a"), "//a");
        assert_eq!(pure_path("///a/../b"), "/a/../b");
        assert_eq!(path_absolute("../x/a.ini", "/w/d"), "/w/d/../x/a.ini");
        assert_eq!(path_absolute(".", "/w"), "/w");
        assert_eq!(path_absolute("/abs", "/w"), "/abs");
        assert_eq!(path_parent("/w/a.ini"), "/w");
        assert_eq!(path_parent("/"), "/");
        assert_eq!(path_parent("a.ini"), ".");
    }

    #[test]
    fn os_path_normpath_and_abspath() {
        assert_eq!(normpath("/a/b/../c/./d//"), "/a/c/d");
        assert_eq!(normpath("../../a"), "../../a");
        assert_eq!(normpath("/../a"), "/a");
        assert_eq!(normpath("a/.."), ".");
        assert_eq!(abspath("x.db", "/w"), "/w/x.db");
        assert_eq!(abspath("../x.db", "/w/d"), "/w/x.db");
        assert_eq!(basename("a/b/pyproject.toml"), "pyproject.toml");
        assert_eq!(basename("pyproject.toml"), "pyproject.toml");
    }
}

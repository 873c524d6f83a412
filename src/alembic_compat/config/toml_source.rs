//! pyproject.toml's `[tool.alembic]` table as Alembic 1.20.1 consumes it: loaded only if the
//! file exists, with its own `%(here)s` (the toml file's directory), and every string value
//! passed through Python's `value % toml_args` (printf-style formatting with a mapping).
//!
//! Owns loading the table and the `%` formatting; which keys mean what is
//! [`super::alembic`]'s business.

use super::error::ConfigError;
use super::pyutil::{py_ascii, py_repr};

/// The `[tool.alembic]` table, or the reason it cannot be had. Python loads it lazily, so a
/// broken pyproject.toml only fails the lookups that actually reach it; we load eagerly and
/// keep the error to report at that same moment.
#[derive(Debug, Clone)]
pub(crate) enum TomlState {
    Absent,
    Loaded(toml::Table),
    Failed(ConfigError),
}

impl TomlState {
    /// `Config.toml_alembic_config`: `{}` when the file does not exist; `tool.alembic` must
    /// be a table ("Incorrect TOML format" otherwise).
    pub(crate) fn load(path: &std::path::Path, display: &str) -> Self {
        if !path.exists() {
            return TomlState::Absent;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                return TomlState::Failed(ConfigError::Io {
                    path: display.to_string(),
                    message: e.to_string(),
                })
            }
        };
        let doc: toml::Table = match text.parse() {
            Ok(d) => d,
            Err(e) => {
                return TomlState::Failed(ConfigError::TomlSyntax {
                    path: display.to_string(),
                    message: e.message().to_string(),
                })
            }
        };
        match doc.get("tool") {
            None => TomlState::Loaded(toml::Table::new()),
            // Python: AttributeError ('int' object has no attribute 'get').
            Some(toml::Value::Table(tool)) => match tool.get("alembic") {
                None => TomlState::Loaded(toml::Table::new()),
                Some(toml::Value::Table(t)) => TomlState::Loaded(t.clone()),
                Some(_) => TomlState::Failed(ConfigError::Command("Incorrect TOML format".into())),
            },
            Some(_) => TomlState::Failed(ConfigError::TomlType {
                key: "tool".into(),
                expected: "a table",
            }),
        }
    }

    pub(crate) fn table(&self) -> Result<Option<&toml::Table>, ConfigError> {
        match self {
            TomlState::Absent => Ok(None),
            TomlState::Loaded(t) => Ok(Some(t)),
            TomlState::Failed(e) => Err(e.clone()),
        }
    }
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "str",
        toml::Value::Integer(_) => "int",
        toml::Value::Float(_) => "float",
        toml::Value::Boolean(_) => "bool",
        toml::Value::Datetime(_) => "datetime",
        toml::Value::Array(_) => "list",
        toml::Value::Table(_) => "dict",
    }
}

/// `str(dict)` for the formatting arguments, used by an un-keyed `%s`.
fn dict_repr(args: &[(String, String)]) -> String {
    let body: Vec<String> = args
        .iter()
        .map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// Python's `fmt % args` where `args` is a dict of strings (`Config.toml_args`).
/// Supports `%%`, `%(key)s|r|a` and un-keyed `%s|r|a` (which format the whole dict, as
/// Python does), with flags, width and precision; numeric conversions fail with Python's
/// TypeError text since every argument is a `str`. `key` names the option for the error.
pub(crate) fn percent_format(
    fmt: &str,
    args: &[(String, String)],
    key: &str,
) -> Result<String, ConfigError> {
    let err = |message: String| ConfigError::TomlFormat {
        key: key.to_string(),
        message,
    };
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::with_capacity(fmt.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        let mut arg: Option<String> = None;
        if chars.get(i) == Some(&'(') {
            // Mapping key with balanced parentheses, as CPython's parser counts them.
            let mut depth = 1;
            let start = i + 1;
            i += 1;
            while i < chars.len() && depth > 0 {
                match chars[i] {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            if depth > 0 {
                return Err(err("incomplete format key".into()));
            }
            let name: String = chars[start..i - 1].iter().collect();
            let value = args
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| err(py_repr(&name)))?;
            arg = Some(value);
        }
        let mut left = false;
        while let Some(c) = chars.get(i).filter(|c| "-+ #0".contains(**c)) {
            left |= *c == '-';
            i += 1;
        }
        let mut width = 0usize;
        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
            width = width.saturating_mul(10).saturating_add(d as usize);
            i += 1;
        }
        if chars.get(i) == Some(&'*') {
            return Err(err("* wants int".into()));
        }
        let mut precision: Option<usize> = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let mut p = 0usize;
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                p = p.saturating_mul(10).saturating_add(d as usize);
                i += 1;
            }
            precision = Some(p);
        }
        while chars.get(i).is_some_and(|c| "hlL".contains(*c)) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else {
            return Err(err("incomplete format".into()));
        };
        let conv_index = i;
        i += 1;
        let subject = arg.clone().unwrap_or_else(|| dict_repr(args));
        let (mut text, from_arg) = match conv {
            '%' => ("%".to_string(), false),
            's' => (subject, true),
            'r' => (
                if arg.is_some() {
                    py_repr(&subject)
                } else {
                    subject
                },
                true,
            ),
            'a' => (
                if arg.is_some() {
                    py_ascii(&subject)
                } else {
                    subject
                },
                true,
            ),
            'd' | 'i' | 'u' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
                let what = if "diu".contains(conv) {
                    format!("%{conv} format: a real number is required, not ")
                } else {
                    "must be real number, not ".to_string()
                };
                let t = if arg.is_some() { "str" } else { "dict" };
                return Err(err(format!("{what}{t}")));
            }
            'o' | 'x' | 'X' => {
                let t = if arg.is_some() { "str" } else { "dict" };
                return Err(err(format!(
                    "%{conv} format: an integer is required, not {t}"
                )));
            }
            'c' => return Err(err("%c requires int or char".into())),
            other => {
                return Err(err(format!(
                    "unsupported format character {} (0x{:x}) at index {}",
                    py_repr(&other.to_string()),
                    other as u32,
                    conv_index
                )))
            }
        };
        if from_arg {
            if let Some(p) = precision {
                text = text.chars().take(p).collect();
            }
            let len = text.chars().count();
            if width > len {
                let pad = " ".repeat(width - len);
                text = if left { text + &pad } else { pad + &text };
            }
        }
        out.push_str(&text);
    }
    Ok(out)
}

/// A `[tool.alembic]` value after `% toml_args`, as `Config._get_toml_config_value` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlembicValue {
    Str(String),
    List(Vec<String>),
    /// A table of strings (insertion order kept).
    Dict(Vec<(String, String)>),
    /// A list of tables, e.g. `[[tool.alembic.post_write_hooks]]`.
    DictList(Vec<Vec<(String, String)>>),
    /// Python's `isinstance(value, int)` branch, returned unformatted.
    Int(i64),
    /// Booleans are ints in Python, so they take the same branch.
    Bool(bool),
}

fn format_str(
    v: &toml::Value,
    args: &[(String, String)],
    key: &str,
) -> Result<String, ConfigError> {
    match v {
        toml::Value::String(s) => percent_format(s, args, key),
        // Python: `v % toml_args` on a non-str -> TypeError.
        other => Err(ConfigError::TomlFormat {
            key: key.to_string(),
            message: format!(
                "unsupported operand type(s) for %: '{}' and 'dict'",
                type_name(other)
            ),
        }),
    }
}

fn format_table(
    t: &toml::Table,
    args: &[(String, String)],
    key: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    t.iter()
        .map(|(k, v)| Ok((k.clone(), format_str(v, args, key)?)))
        .collect()
}

/// `Config._get_toml_config_value` for one raw TOML value.
pub(crate) fn convert(
    v: &toml::Value,
    args: &[(String, String)],
    key: &str,
) -> Result<AlembicValue, ConfigError> {
    Ok(match v {
        toml::Value::String(_) => AlembicValue::Str(format_str(v, args, key)?),
        toml::Value::Array(items) => match items.first() {
            Some(toml::Value::Table(_)) => AlembicValue::DictList(
                items
                    .iter()
                    .map(|item| match item {
                        toml::Value::Table(t) => format_table(t, args, key),
                        // Python: AttributeError ('str' object has no attribute 'items').
                        _ => Err(ConfigError::TomlType {
                            key: key.to_string(),
                            expected: "a list whose items are all tables",
                        }),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => AlembicValue::List(
                items
                    .iter()
                    .map(|item| format_str(item, args, key))
                    .collect::<Result<_, _>>()?,
            ),
        },
        toml::Value::Table(t) => AlembicValue::Dict(format_table(t, args, key)?),
        toml::Value::Integer(n) => AlembicValue::Int(*n),
        toml::Value::Boolean(b) => AlembicValue::Bool(*b),
        toml::Value::Float(_) | toml::Value::Datetime(_) => {
            return Err(ConfigError::Command(format!(
                "unsupported TOML value type for key: {}",
                py_repr(key)
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Vec<(String, String)> {
        vec![("here".to_string(), "/p".to_string())]
    }

    fn fmt(s: &str) -> Result<String, String> {
        percent_format(s, &args(), "k").map_err(|e| e.to_string())
    }

    #[test]
    fn percent_format_like_python() {
        assert_eq!(fmt("%(here)s/alembic").as_deref(), Ok("/p/alembic"));
        assert_eq!(fmt("%%(rev)s_%%(slug)s").as_deref(), Ok("%(rev)s_%(slug)s"));
        assert_eq!(fmt("%(here)r").as_deref(), Ok("'/p'"));
        assert_eq!(
            fmt("[%(here)5s|%(here)-4s|%(here).1s]").as_deref(),
            Ok("[   /p|/p  |/]")
        );
        assert_eq!(fmt("%s").as_deref(), Ok("{'here': '/p'}"));
        assert_eq!(fmt("no format").as_deref(), Ok("no format"));
        assert_eq!(fmt("%(nope)s").unwrap_err(), "'nope'");
        assert_eq!(fmt("50%").unwrap_err(), "incomplete format");
        assert_eq!(fmt("%(here)").unwrap_err(), "incomplete format");
        assert_eq!(fmt("%(here").unwrap_err(), "incomplete format key");
        assert_eq!(
            fmt("5%q").unwrap_err(),
            "unsupported format character 'q' (0x71) at index 2"
        );
        assert_eq!(
            fmt("%(here)d").unwrap_err(),
            "%d format: a real number is required, not str"
        );
    }

    #[test]
    fn convert_types() {
        let t: toml::Table = "s='%(here)s'\nl=['a','%(here)s']\nd={x='%(here)s'}\nn=3\nb=true\nf=1.5\nh=[{name='x'}]\nbad=[1]"
            .parse()
            .unwrap();
        let c = |k: &str| convert(&t[k], &args(), k);
        assert_eq!(c("s"), Ok(AlembicValue::Str("/p".into())));
        assert_eq!(
            c("l"),
            Ok(AlembicValue::List(vec!["a".into(), "/p".into()]))
        );
        assert_eq!(
            c("d"),
            Ok(AlembicValue::Dict(vec![("x".into(), "/p".into())]))
        );
        assert_eq!(c("n"), Ok(AlembicValue::Int(3)));
        assert_eq!(c("b"), Ok(AlembicValue::Bool(true)));
        assert_eq!(
            c("h"),
            Ok(AlembicValue::DictList(vec![vec![(
                "name".into(),
                "x".into()
            )]]))
        );
        assert_eq!(
            c("f").unwrap_err().to_string(),
            "unsupported TOML value type for key: 'f'"
        );
        assert_eq!(
            c("bad").unwrap_err().to_string(),
            "unsupported operand type(s) for %: 'int' and 'dict'"
        );
    }
}

//! alembic.ini (and pyproject.toml `[tool.alembic]`) read exactly as Python Alembic 1.20.1
//! reads them: Python 3.11's `configparser.ConfigParser` with `BasicInterpolation`
//! ([`ini`]), Alembic's `Config` option lookup and CLI file selection ([`alembic`]), the
//! settings `ScriptDirectory.from_config` derives ([`script`]), the `sqlalchemy.url` helpers
//! for SQLite ([`url`]) and `asbool`.
//!
//! Owns: turning config files, `-c/-n/-x` and `--url` into typed values and into errors whose
//! text is what Python prints. Does not own: reading revision files, logging configuration
//! (`[loggers]` etc. are parsed but not interpreted), env.py, or opening databases.
//!
//! Known differences from Python (everything else is checked by the `differential` tests):
//! - a non-UTF-8 ini file is an error up front ([`ConfigError::NotUtf8`]); Python decodes with
//!   the locale encoding while reading and raises UnicodeDecodeError with other wording;
//! - pyproject.toml syntax errors carry the `toml` crate's message, not tomllib's;
//! - `package:path` locations are found as directories under `prepend_sys_path` entries only
//!   (we cannot import Python packages or search site-packages);
//! - non-string TOML values where Alembic needs a string or list (e.g. `version_locations =
//!   "a b"`, which Python iterates character by character) are a [`ConfigError::TomlType`];
//! - `repr()` of unassigned Unicode code points prints them raw (Python escapes them);
//!   `int()` accepts ASCII digits only and values within `i64`.

pub mod alembic;
mod error;
pub mod ini;
pub(crate) mod pyutil;
pub mod script;
mod toml_source;
pub mod url;

#[cfg(test)]
mod differential;

pub use alembic::{ini_and_toml_paths, AlembicValue, Config, ConfigOptions};
pub use error::ConfigError;
pub use ini::IniParser;
pub use script::ScriptSettings;
pub use url::{obfuscate_url_pw, parse_sqlite_url, SqliteDatabase, SqliteUrl, UrlError};

/// `sqlalchemy.util.asbool` for a string (what Alembic uses for `revision_environment`):
/// stripped and lower-cased, then one of true/yes/on/y/t/1 or false/no/off/n/f/0; anything
/// else is Python's ValueError.
pub fn asbool(value: &str) -> Result<bool, ConfigError> {
    let v = pyutil::py_strip(value).to_lowercase();
    match v.as_str() {
        "true" | "yes" | "on" | "y" | "t" | "1" => Ok(true),
        "false" | "no" | "off" | "n" | "f" | "0" => Ok(false),
        _ => Err(ConfigError::NotBool { value: v }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asbool_accepts_sqlalchemy_words() {
        for t in ["true", " TRUE ", "yes", "On", "y", "t", "1"] {
            assert_eq!(asbool(t), Ok(true), "{t}");
        }
        for f in ["false", "No", "off", "N", "f", "0\n"] {
            assert_eq!(asbool(f), Ok(false), "{f}");
        }
        assert_eq!(
            asbool(" Maybe ").unwrap_err().to_string(),
            "String is not true/false: 'maybe'"
        );
        assert_eq!(
            asbool("").unwrap_err().to_string(),
            "String is not true/false: ''"
        );
    }
}

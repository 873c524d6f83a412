//! `sqlalchemy.url` handling for the one dialect we run: SQLAlchemy 2.x's URL grammar
//! (`make_url`), the pysqlite rules for turning a URL into a database file
//! (`SQLiteDialect_pysqlite.create_connect_args`), and `render_as_string(hide_password=True)`
//! which Alembic prints (`obfuscate_url_pw`).
//!
//! Owns URL text -> typed target. Does not open databases or apply query options.

use std::path::{Path, PathBuf};

use crate::alembic_compat::pattern::Pattern;

use super::pyutil::abspath;

/// Errors naming the `sqlalchemy.url` field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// SQLAlchemy's ArgumentError for text that is not a URL.
    #[error("Could not parse SQLAlchemy URL from given URL string (sqlalchemy.url = {0:?})")]
    Unparseable(String),
    /// Any dialect other than sqlite.
    #[error("unsupported dialect '{0}' in sqlalchemy.url (only sqlite is supported for now)")]
    UnsupportedDialect(String),
    /// sqlite with a DBAPI driver we do not emulate.
    #[error("unsupported driver '{0}' in sqlalchemy.url (sqlite supports pysqlite and aiosqlite)")]
    UnsupportedDriver(String),
    /// SQLAlchemy's ArgumentError for a sqlite URL with user/password/host/port.
    #[error("Invalid SQLite URL: {0}\nValid SQLite URL forms are:\n sqlite:///:memory: (or, sqlite://)\n sqlite:///relative/path/to/file.db\n sqlite:////absolute/path/to/file.db")]
    InvalidSqlite(String),
    /// A port that is not an integer (Python: ValueError from `int()`).
    #[error("invalid port {0:?} in sqlalchemy.url")]
    InvalidPort(String),
    /// `uri=` (or another pysqlite boolean) that asbool rejects.
    #[error("invalid value {value:?} for '{key}' in sqlalchemy.url query")]
    InvalidQueryValue { key: String, value: String },
}

/// SQLAlchemy's `_parse_url` pattern.
static URL_RE: Pattern = Pattern::new(
    r"^(?P<name>[\w+]+)://(?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?(?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?(?:/(?P<database>[^?]*))?(?:\?(?P<query>.*))?",
);

/// A parsed SQLAlchemy URL (`sqlalchemy.engine.URL`), any dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    pub drivername: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub host: Option<String>,
    pub port: Option<u32>,
    pub database: Option<String>,
    /// Query pairs in URL order, blank values dropped (parse_qsl's default); repeated keys
    /// are kept as separate pairs.
    pub query: Vec<(String, String)>,
}

/// `urllib.parse.unquote`: `%XX` decoded as UTF-8 (invalid sequences become U+FFFD),
/// malformed escapes left as they are.
fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `urllib.parse.quote(s, safe)`: unreserved ASCII and `safe` stay, the rest is `%XX` of its
/// UTF-8 bytes (upper-case hex).
fn quote(s: &str, safe: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "_.-~".contains(c) || safe.contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

/// `urllib.parse.quote_plus(s)`.
fn quote_plus(s: &str) -> String {
    quote(s, " ").replace(' ', "+")
}

/// `parse_qsl(q)` with keep_blank_values=False: `&`-separated, `+` is space, pairs without
/// `=` or with an empty value are dropped.
fn parse_qsl(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (!v.is_empty()).then(|| (unquote(&k.replace('+', " ")), unquote(&v.replace('+', " "))))
        })
        .collect()
}

/// `make_url(text)`.
pub fn parse_url(text: &str) -> Result<ParsedUrl, UrlError> {
    match parse_plain(text) {
        Some(parsed) => Ok(parsed),
        None => parse_with_pattern(text),
    }
}

/// The URL form almost every alembic.ini uses, `name:///path` (or `name://`) without a
/// query, read without the pattern: compiling it took a tenth of a millisecond, about 2% of
/// a short `upgrade`. For such a text the pattern can only match the database part (a
/// username or host cannot start at a `/`), so both read it the same (a test compares them).
fn parse_plain(text: &str) -> Option<ParsedUrl> {
    let (name, rest) = text.split_once("://")?;
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '+';
    if name.is_empty() || !name.chars().all(word) || rest.contains('?') {
        return None;
    }
    let database = match rest.strip_prefix('/') {
        Some(path) => Some(unquote(path)),
        None if rest.is_empty() => None,
        None => return None,
    };
    Some(ParsedUrl {
        drivername: name.to_string(),
        username: None,
        password: None,
        host: None,
        port: None,
        database,
        query: Vec::new(),
    })
}

fn parse_with_pattern(text: &str) -> Result<ParsedUrl, UrlError> {
    let caps = URL_RE
        .captures(text)
        .ok_or_else(|| UrlError::Unparseable(text.to_string()))?;
    let get = |n: &str| {
        URL_RE
            .group(n)
            .and_then(|i| caps.get(i))
            .map(|m| m.as_str().to_string())
    };
    let port = match get("port").filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(
            p.parse::<u32>()
                .map_err(|_| UrlError::InvalidPort(p.clone()))?,
        ),
    };
    Ok(ParsedUrl {
        drivername: get("name").unwrap_or_default(),
        username: get("username").map(|u| unquote(&u)),
        password: get("password").map(|p| unquote(&p)),
        host: get("ipv4host")
            .filter(|h| !h.is_empty())
            .or_else(|| get("ipv6host").filter(|h| !h.is_empty())),
        port,
        database: get("database").map(|d| unquote(&d)),
        query: get("query").map(|q| parse_qsl(&q)).unwrap_or_default(),
    })
}

impl ParsedUrl {
    /// `URL.render_as_string(hide_password)`; query keys sorted, values in URL order.
    pub fn render(&self, hide_password: bool) -> String {
        let mut s = format!("{}://", self.drivername);
        if let Some(u) = &self.username {
            s.push_str(&quote(u, " +"));
            if let Some(p) = &self.password {
                s.push(':');
                s.push_str(&if hide_password {
                    "***".to_string()
                } else {
                    quote(p, " +")
                });
            }
            s.push('@');
        }
        if let Some(h) = &self.host {
            if h.contains(':') {
                s.push_str(&format!("[{h}]"));
            } else {
                s.push_str(h);
            }
        }
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        if let Some(d) = &self.database {
            s.push('/');
            s.push_str(&quote(d, " +/"));
        }
        if !self.query.is_empty() {
            let mut keys: Vec<&str> = self.query.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            let parts: Vec<String> = keys
                .iter()
                .flat_map(|k| {
                    self.query
                        .iter()
                        .filter(move |(qk, _)| qk == k)
                        .map(|(qk, v)| format!("{}={}", quote_plus(qk), quote_plus(v)))
                })
                .collect();
            s.push('?');
            s.push_str(&parts.join("&"));
        }
        s
    }
}

/// Alembic's `util.obfuscate_url_pw`: the URL re-rendered with any password as `***`
/// (note SQLAlchemy re-quotes the database, so `sqlite:///:memory:` prints as
/// `sqlite:///%3Amemory%3A`).
pub fn obfuscate_url_pw(url: &str) -> Result<String, UrlError> {
    Ok(parse_url(url)?.render(true))
}

/// Where a SQLite URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteDatabase {
    /// `sqlite://`, `sqlite:///` or `sqlite:///:memory:`.
    Memory,
    /// A file, absolute (`os.path.abspath` against the CWD, so `..` is collapsed).
    File(PathBuf),
    /// `?uri=true`: SQLite URI filename handed to sqlite as-is, the non-pysqlite query
    /// arguments appended sorted, as SQLAlchemy builds it.
    Uri(String),
}

/// A `sqlite[+driver]://` URL resolved as SQLAlchemy's pysqlite dialect does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteUrl {
    /// `sqlite`, `sqlite+pysqlite` or `sqlite+aiosqlite`.
    pub drivername: String,
    pub database: SqliteDatabase,
    /// All query arguments, kept for the caller (e.g. `mode=ro`, `timeout=5`). Without
    /// `uri=true`, SQLAlchemy warns that non-pysqlite ones are ignored.
    pub query: Vec<(String, String)>,
}

/// The query arguments pysqlite itself consumes (not SQLite URI parameters).
const PYSQLITE_ARGS: [&str; 6] = [
    "uri",
    "timeout",
    "isolation_level",
    "detect_types",
    "check_same_thread",
    "cached_statements",
];

/// Parses a SQLite URL; relative file paths are made absolute against `cwd`.
pub fn parse_sqlite_url(url: &str, cwd: &Path) -> Result<SqliteUrl, UrlError> {
    let parsed = parse_url(url)?;
    let (dialect, driver) = match parsed.drivername.split_once('+') {
        Some((d, drv)) => (d, Some(drv)),
        None => (parsed.drivername.as_str(), None),
    };
    if dialect != "sqlite" {
        return Err(UrlError::UnsupportedDialect(dialect.to_string()));
    }
    if let Some(drv) = driver.filter(|d| !matches!(*d, "pysqlite" | "aiosqlite")) {
        return Err(UrlError::UnsupportedDriver(drv.to_string()));
    }
    // Python tests truthiness: an empty username/password/host is allowed.
    if parsed.username.as_deref().is_some_and(|u| !u.is_empty())
        || parsed.password.as_deref().is_some_and(|p| !p.is_empty())
        || parsed.host.is_some()
        || parsed.port.is_some_and(|p| p != 0)
    {
        return Err(UrlError::InvalidSqlite(parsed.render(true)));
    }
    // coerce_kw_type(opts, "uri", bool) -> asbool on the last value given.
    let uri = match parsed.query.iter().rev().find(|(k, _)| k == "uri") {
        None => false,
        Some((_, v)) => super::asbool(v).map_err(|_| UrlError::InvalidQueryValue {
            key: "uri".into(),
            value: v.clone(),
        })?,
    };
    let database = if uri {
        let mut filename = parsed.database.clone().unwrap_or_default();
        let mut extra: Vec<&(String, String)> = parsed
            .query
            .iter()
            .filter(|(k, _)| !PYSQLITE_ARGS.contains(&k.as_str()))
            .collect();
        extra.sort_by(|a, b| a.0.cmp(&b.0));
        if !extra.is_empty() {
            let parts: Vec<String> = extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
            filename.push('?');
            filename.push_str(&parts.join("&"));
        }
        SqliteDatabase::Uri(filename)
    } else {
        match parsed.database.as_deref() {
            None | Some("") | Some(":memory:") => SqliteDatabase::Memory,
            Some(f) => SqliteDatabase::File(PathBuf::from(abspath(f, &cwd.to_string_lossy()))),
        }
    };
    Ok(SqliteUrl {
        drivername: parsed.drivername,
        database,
        query: parsed.query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(u: &str) -> SqliteDatabase {
        parse_sqlite_url(u, Path::new("/w/d")).unwrap().database
    }

    #[test]
    fn sqlite_forms() {
        assert_eq!(
            file("sqlite:///rel.db"),
            SqliteDatabase::File("/w/d/rel.db".into())
        );
        assert_eq!(
            file("sqlite:///../up.db"),
            SqliteDatabase::File("/w/up.db".into())
        );
        assert_eq!(
            file("sqlite:////abs/x.db"),
            SqliteDatabase::File("/abs/x.db".into())
        );
        assert_eq!(
            file("sqlite+pysqlite:///a.db"),
            SqliteDatabase::File("/w/d/a.db".into())
        );
        assert_eq!(
            file("sqlite+aiosqlite:////t/a.db"),
            SqliteDatabase::File("/t/a.db".into())
        );
        assert_eq!(file("sqlite://"), SqliteDatabase::Memory);
        assert_eq!(file("sqlite:///"), SqliteDatabase::Memory);
        assert_eq!(file("sqlite:///:memory:"), SqliteDatabase::Memory);
        assert_eq!(
            file("sqlite:///my%20db.db"),
            SqliteDatabase::File("/w/d/my db.db".into())
        );
    }

    #[test]
    fn query_is_kept() {
        let u =
            parse_sqlite_url("sqlite:///x.db?mode=ro&timeout=5&blank=", Path::new("/w")).unwrap();
        assert_eq!(
            u.query,
            vec![("mode".into(), "ro".into()), ("timeout".into(), "5".into())]
        );
        assert_eq!(u.database, SqliteDatabase::File("/w/x.db".into()));
        let u = parse_sqlite_url(
            "sqlite:///file:x.db?uri=true&mode=ro&cache=shared",
            Path::new("/w"),
        )
        .unwrap();
        assert_eq!(
            u.database,
            SqliteDatabase::Uri("file:x.db?cache=shared&mode=ro".into())
        );
    }

    #[test]
    fn other_dialects_and_bad_urls() {
        let e = |u: &str| parse_sqlite_url(u, Path::new("/")).unwrap_err().to_string();
        assert_eq!(
            e("postgresql://u:p@h/db"),
            "unsupported dialect 'postgresql' in sqlalchemy.url (only sqlite is supported for now)"
        );
        assert_eq!(
            e("mysql+pymysql://h/db"),
            "unsupported dialect 'mysql' in sqlalchemy.url (only sqlite is supported for now)"
        );
        assert!(e("sqlite+pysqlcipher:///x").contains("unsupported driver 'pysqlcipher'"));
        assert!(e("nonsense").starts_with("Could not parse SQLAlchemy URL"));
        assert!(e("driver://user:pass@localhost/dbname").contains("unsupported dialect 'driver'"));
        assert!(e("sqlite://localhost/x.db")
            .starts_with("Invalid SQLite URL: sqlite://localhost/x.db\n"));
        assert!(e("sqlite:///x?uri=maybe").contains("'uri'"));
    }

    #[test]
    fn obfuscation_matches_sqlalchemy() {
        let o = |u: &str| obfuscate_url_pw(u).unwrap();
        assert_eq!(o("sqlite:////tmp/x.db"), "sqlite:////tmp/x.db");
        assert_eq!(o("sqlite:///:memory:"), "sqlite:///%3Amemory%3A");
        assert_eq!(o("sqlite://"), "sqlite://");
        assert_eq!(
            o("sqlite:///my db+x%20y.db?mode=ro&b=2&a=1&a=0&e="),
            "sqlite:///my db+x y.db?a=1&a=0&b=2&mode=ro"
        );
        assert_eq!(o("sqlite://u:p@/x.db"), "sqlite://u:***@/x.db");
        assert_eq!(
            o("postgresql://scott:tiger@localhost:5432/db?x=a b"),
            "postgresql://scott:***@localhost:5432/db?x=a+b"
        );
        assert_eq!(
            o("sqlite+aiosqlite:///é.db"),
            "sqlite+aiosqlite:///%C3%A9.db"
        );
        assert_eq!(o("mysql://u:@h/d"), "mysql://u:***@h/d");
        assert_eq!(o("sqlite://@/x"), "sqlite://@/x");
        assert_eq!(o("pg://[::1]:5/d"), "pg://[::1]:5/d");
    }

    #[test]
    fn plain_urls_read_as_the_pattern_reads_them() {
        for u in [
            "sqlite:///rel.db",
            "sqlite:////abs/x.db",
            "sqlite://",
            "sqlite:///",
            "sqlite+pysqlite:///a@b:c.db",
            "sqlite:///my%20db.db",
            "sqlite:///a\nb",
            "x_1+y:///[::1]/d",
        ] {
            assert_eq!(
                parse_plain(u).as_ref(),
                parse_with_pattern(u).ok().as_ref(),
                "{u}"
            );
        }
        for u in [
            "sqlite:///x?a=1",
            "sqlite://h/x",
            "sql:ite:///x",
            "://x",
            "é:///x",
        ] {
            assert_eq!(parse_plain(u), None, "{u}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_plain_reading_never_differs_from_the_pattern(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "sqlite", "+", "_", ":", "/", "//", "://", "?", "@", "[", "]", "%2F", "\n",
                    "é", "a", ".", "=", "&",
                ]),
                0..12,
            )
        ) {
            let u: String = parts.concat();
            if let Some(plain) = parse_plain(&u) {
                proptest::prop_assert_eq!(Some(plain), parse_with_pattern(&u).ok());
            }
        }
    }

    #[test]
    fn unquote_edge_cases() {
        assert_eq!(unquote("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(unquote("%C3%A9%ff"), "é\u{fffd}");
    }
}

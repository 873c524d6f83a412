//! The log lines Alembic prints through Python's `logging` (`INFO  [alembic.runtime.migration]
//! Running upgrade ...`), part of the output contract users grep for.
//!
//! Python prints them only when env.py configures logging, normally with
//! `fileConfig(config.config_file_name)` reading the ini's `[loggers]`, `[handlers]` and
//! `[formatters]`. We do not run env.py: the command checks that env.py calls `fileConfig`, and
//! [`AlembicLog::from_ini`] interprets the sections the way `logging.config.fileConfig` does for
//! what matters here: logger levels along the dotted name, `propagate`, handler levels, and
//! `StreamHandler`s writing to `sys.stderr`, with the `%(...)s` format of their formatter.
//! Handlers of other classes (files, stdout) are ignored.

use crate::alembic_compat::config::IniParser;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 10,
    Info = 20,
    Warning = 30,
    Error = 40,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// `logging` level names (and numbers) as fileConfig accepts them; NOTSET is 0.
fn parse_level(s: &str) -> Option<u32> {
    let s = s.trim();
    let named = [
        ("NOTSET", 0),
        ("DEBUG", 10),
        ("INFO", 20),
        ("WARN", 30),
        ("WARNING", 30),
        ("ERROR", 40),
        ("CRITICAL", 50),
        ("FATAL", 50),
    ];
    named
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .or_else(|| s.parse().ok())
}

#[derive(Debug, Clone)]
struct Handler {
    level: u32,
    /// The `format` template, parsed once: every log line is formatted with it.
    format: Vec<Piece>,
    datefmt: Option<String>,
}

/// A part of a `%`-style logging template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `%(key)<flags><width>.<precision>s` (or `d`).
    Field {
        key: String,
        left: bool,
        width: usize,
        precision: Option<usize>,
    },
}

#[derive(Debug, Clone)]
struct Logger {
    /// Empty for the root logger.
    qualname: String,
    level: u32,
    propagate: bool,
    handlers: Vec<Handler>,
}

/// The logging setup, and the lines logged so far (drained by the command).
#[derive(Debug, Clone, Default)]
pub struct AlembicLog {
    loggers: Vec<Logger>,
    buf: String,
    /// Warnings written so far, and where in `buf` each began (None once taken; see
    /// [`warn`](Self::warn)).
    warned: Vec<(String, Option<usize>)>,
}

impl AlembicLog {
    /// Python without logging configured: Alembic's loggers have a `NullHandler`, nothing is
    /// printed.
    pub fn disabled() -> Self {
        AlembicLog::default()
    }

    /// What `fileConfig(ini)` sets up, as far as stderr stream handlers go.
    pub fn from_ini(ini: &IniParser) -> Self {
        let get = |section: &str, key: &str| ini.get_raw(section, key).ok().flatten();
        let keys = |section: &str| -> Vec<String> {
            get(section, "keys")
                .map(|k| {
                    k.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let handler_names = keys("handlers");
        let mut loggers = Vec::new();
        for key in keys("loggers") {
            let section = format!("logger_{key}");
            if !ini.has_section(&section) {
                continue;
            }
            let qualname = if key == "root" {
                String::new()
            } else {
                match get(&section, "qualname") {
                    Some(q) => q.trim().to_string(),
                    None => continue,
                }
            };
            let level = get(&section, "level")
                .and_then(|l| parse_level(&l))
                .unwrap_or(if key == "root" { 30 } else { 0 });
            let propagate = get(&section, "propagate").map_or(true, |p| p.trim() != "0");
            let handlers = get(&section, "handlers")
                .map(|h| {
                    h.split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty() && handler_names.iter().any(|n| n == h))
                        .filter_map(|h| stderr_handler(ini, h))
                        .collect()
                })
                .unwrap_or_default();
            loggers.push(Logger {
                qualname,
                level,
                propagate,
                handlers,
            });
        }
        AlembicLog {
            loggers,
            buf: String::new(),
            warned: Vec::new(),
        }
    }

    fn logger(&self, name: &str) -> Option<&Logger> {
        self.loggers.iter().find(|l| l.qualname == name)
    }

    /// The dotted ancestors of `name`, most specific first, ending with the root ("").
    fn chain(name: &str) -> Vec<&str> {
        let mut out = vec![name];
        let mut cur = name;
        while let Some(i) = cur.rfind('.') {
            cur = &cur[..i];
            out.push(cur);
        }
        if !name.is_empty() {
            out.push("");
        }
        out
    }

    /// Logs `message` on logger `name` at `level`.
    pub fn log(&mut self, name: &str, level: Level, message: &str) {
        let chain = Self::chain(name);
        let effective = chain
            .iter()
            .filter_map(|n| self.logger(n))
            .map(|l| l.level)
            .find(|&l| l != 0)
            .unwrap_or(30);
        if (level as u32) < effective {
            return;
        }
        let mut lines = String::new();
        for n in chain {
            let Some(logger) = self.logger(n) else {
                continue;
            };
            for h in &logger.handlers {
                if (level as u32) >= h.level {
                    lines.push_str(&format_record(h, name, level, message));
                    lines.push('\n');
                }
            }
            if !logger.propagate {
                break;
            }
        }
        self.buf.push_str(&lines);
    }

    pub fn info(&mut self, name: &str, message: &str) {
        self.log(name, Level::Info, message);
    }

    pub fn error(&mut self, name: &str, message: &str) {
        self.log(name, Level::Error, message);
    }

    /// The lines `MigrationContext.__init__` logs. SQLite's Alembic impl declares
    /// non-transactional DDL; we keep its wording although we do run in transactions.
    pub fn context_created(&mut self, offline: bool) {
        self.info("alembic.runtime.migration", "Context impl SQLiteImpl.");
        if offline {
            self.info("alembic.runtime.migration", "Generating static SQL");
        }
        self.info(
            "alembic.runtime.migration",
            "Will assume non-transactional DDL.",
        );
    }

    /// `warnings.warn(msg, UserWarning)` from Alembic's `origin` (`file:line`), as Python's
    /// default filter shows it whatever the logging setup: on stderr, once per message. A
    /// warning whose line is taken back by [`truncate_buffered`](Self::truncate_buffered)
    /// was never shown.
    pub fn warn(&mut self, origin: &str, msg: &str) {
        let line = format!("{origin}: UserWarning: {msg}\n");
        if self.warned.iter().any(|(w, _)| *w == line) {
            return;
        }
        self.warned.push((line.clone(), Some(self.buf.len())));
        self.buf.push_str(&line);
    }

    /// The length of the lines logged since the last [`take`](Self::take).
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Forgets the lines logged after the first `len` bytes.
    pub fn truncate_buffered(&mut self, len: usize) {
        self.buf.truncate(len);
        self.warned.retain(|(_, at)| at.map_or(true, |at| at < len));
    }

    /// The lines logged since the last call.
    pub fn take(&mut self) -> String {
        // What was taken stays shown.
        for (_, at) in &mut self.warned {
            *at = None;
        }
        std::mem::take(&mut self.buf)
    }
}

fn stderr_handler(ini: &IniParser, name: &str) -> Option<Handler> {
    let section = format!("handler_{name}");
    let get = |key: &str| ini.get_raw(&section, key).ok().flatten();
    let class = get("class")?;
    let class = class.trim();
    if class != "StreamHandler" && class != "logging.StreamHandler" {
        return None;
    }
    // StreamHandler() with no arguments writes to stderr too.
    let args = get("args").unwrap_or_else(|| "()".into());
    let args: String = args.chars().filter(|c| !c.is_whitespace()).collect();
    if !(args == "()" || args.starts_with("(sys.stderr")) {
        return None;
    }
    let level = get("level").and_then(|l| parse_level(&l)).unwrap_or(0);
    let (format, datefmt) = match get("formatter").map(|f| f.trim().to_string()) {
        Some(f) if !f.is_empty() => {
            let fs = format!("formatter_{f}");
            (
                ini.get_raw(&fs, "format")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "%(message)s".into()),
                ini.get_raw(&fs, "datefmt").ok().flatten(),
            )
        }
        _ => ("%(message)s".into(), None),
    };
    Some(Handler {
        level,
        format: parse_template(&format),
        datefmt,
    })
}

/// Splits a logging template into text and `%(key)...s` fields, as Python's `%` operator
/// reads it: `%%` is a literal `%`, and a `%` that starts no field of this form is kept as
/// text. Written out rather than as a regular expression: compiling one cost about a tenth
/// of a millisecond of every command that logs.
fn parse_template(fmt: &str) -> Vec<Piece> {
    let b = fmt.as_bytes();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while let Some(off) = fmt[i..].find('%') {
        let at = i + off;
        text.push_str(&fmt[i..at]);
        if b.get(at + 1) == Some(&b'%') {
            text.push('%');
            i = at + 2;
            continue;
        }
        match parse_field(b, at) {
            Some((field, end)) => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(field);
                i = end;
            }
            None => {
                text.push('%');
                i = at + 1;
            }
        }
    }
    text.push_str(&fmt[i..]);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// `%(key)[-#0 +]*<width>(.<precision>)?[sd]` at `at` (which holds the `%`), and the index
/// after it.
fn parse_field(b: &[u8], at: usize) -> Option<(Piece, usize)> {
    let digits = |from: usize| from + b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let number = |from: usize, to: usize| {
        std::str::from_utf8(&b[from..to])
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
    };
    let mut i = at + 1;
    if b.get(i) != Some(&b'(') {
        return None;
    }
    i += 1;
    let key_start = i;
    while b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        i += 1;
    }
    if i == key_start || b.get(i) != Some(&b')') {
        return None;
    }
    let key = String::from_utf8_lossy(&b[key_start..i]).into_owned();
    i += 1;
    let flags_start = i;
    while b.get(i).is_some_and(|c| b"-#0 +".contains(c)) {
        i += 1;
    }
    let left = b[flags_start..i].contains(&b'-');
    let width_end = digits(i);
    let width = number(i, width_end).unwrap_or(0);
    i = width_end;
    let mut precision = None;
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end > i + 1 {
            precision = number(i + 1, end);
            i = end;
        }
    }
    if !matches!(b.get(i), Some(b's' | b'd')) {
        return None;
    }
    Some((
        Piece::Field {
            key,
            left,
            width,
            precision,
        },
        i + 1,
    ))
}

/// Python's `%`-style record formatting for the attributes Alembic's templates use
/// (`levelname`, `name`, `message`, `asctime`, `levelno`), with flags, width and precision.
fn format_record(h: &Handler, name: &str, level: Level, message: &str) -> String {
    let mut out = String::with_capacity(message.len() + name.len() + 16);
    for piece in &h.format {
        let (key, left, width, precision) = match piece {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Field {
                key,
                left,
                width,
                precision,
            } => (key.as_str(), *left, *width, *precision),
        };
        let value = match key {
            "levelname" => level.name().to_string(),
            "levelno" => (level as u32).to_string(),
            "name" => name.to_string(),
            "message" => message.to_string(),
            "asctime" => {
                let f = h.datefmt.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S");
                chrono::Local::now().format(f).to_string()
            }
            _ => String::new(),
        };
        let value: String = match precision {
            Some(p) => value.chars().take(p).collect(),
            None => value,
        };
        let pad = width.saturating_sub(value.chars().count());
        if left {
            out.push_str(&value);
            out.push_str(&" ".repeat(pad));
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERIC: &str = "[loggers]\nkeys = root,sqlalchemy,alembic\n[handlers]\nkeys = console\n[formatters]\nkeys = generic\n[logger_root]\nlevel = WARNING\nhandlers = console\nqualname =\n[logger_sqlalchemy]\nlevel = WARNING\nhandlers =\nqualname = sqlalchemy.engine\n[logger_alembic]\nlevel = INFO\nhandlers =\nqualname = alembic\n[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nlevel = NOTSET\nformatter = generic\n[formatter_generic]\nformat = %(levelname)-5.5s [%(name)s] %(message)s\ndatefmt = %H:%M:%S\n";

    fn ini(text: &str) -> IniParser {
        let mut p = IniParser::new::<&str, &str>(&[]);
        p.read_str(text, "alembic.ini").unwrap();
        p
    }

    #[test]
    fn generic_template_prints_info_and_error() {
        let mut log = AlembicLog::from_ini(&ini(GENERIC));
        log.info("alembic.runtime.migration", "Context impl SQLiteImpl.");
        log.error("alembic.util.messaging", "boom");
        log.log("alembic.runtime.migration", Level::Debug, "hidden");
        assert_eq!(
            log.take(),
            "INFO  [alembic.runtime.migration] Context impl SQLiteImpl.\nERROR [alembic.util.messaging] boom\n"
        );
        assert_eq!(log.take(), "");
    }

    #[test]
    fn templates_read_as_pythons_percent_operator_reads_them() {
        let handler = |format: &str| Handler {
            level: 0,
            format: parse_template(format),
            datefmt: None,
        };
        let h = handler("%(levelname)-7.4s|%(name)5s|%(levelno)d %% %%(name)s %(message)s");
        assert_eq!(
            format_record(&h, "alembic", Level::Warning, "100%% done, %(name)s"),
            "WARN   |alembic|30 % %(name)s 100%% done, %(name)s"
        );
        // A `%` that starts no field of the modelled form stays as text.
        let h = handler("%(message)r %(x %(message).s %");
        assert_eq!(
            format_record(&h, "a", Level::Info, "m"),
            "%(message)r %(x %(message).s %"
        );
        assert_eq!(
            parse_template("a%(name)010.2s"),
            vec![
                Piece::Text("a".into()),
                Piece::Field {
                    key: "name".into(),
                    left: false,
                    width: 10,
                    precision: Some(2)
                }
            ]
        );
    }

    #[test]
    fn warnings_show_once_unless_taken_back() {
        let mut log = AlembicLog::disabled();
        log.warn("a.py:1", "careful");
        log.warn("a.py:1", "careful");
        assert_eq!(log.take(), "a.py:1: UserWarning: careful\n");
        log.warn("a.py:1", "careful");
        assert_eq!(log.take(), "");
        // A rehearsal's output is taken back, and its warnings with it.
        let at = log.buffered_len();
        log.warn("b.py:2", "again");
        log.truncate_buffered(at);
        log.warn("b.py:2", "again");
        assert_eq!(log.take(), "b.py:2: UserWarning: again\n");
    }

    #[test]
    fn warning_level_or_no_handler_is_silent() {
        let mut log = AlembicLog::from_ini(&ini(&GENERIC.replace(
            "level = INFO\nhandlers =\nqualname = alembic",
            "level = WARN\nhandlers =\nqualname = alembic",
        )));
        log.info("alembic.runtime.migration", "x");
        assert_eq!(log.take(), "");
        let mut none = AlembicLog::disabled();
        none.error("alembic.util.messaging", "x");
        assert_eq!(none.take(), "");
    }
}

//! A reader for INI text with the exact semantics of Python 3.11's
//! `configparser.ConfigParser()` as Alembic constructs it: delimiters `=`/`:`, full-line
//! `#`/`;` comments only, `strict=True`, `empty_lines_in_values=True`, `allow_no_value=False`,
//! lower-cased option names, a `DEFAULT` section inherited by every section, and
//! `BasicInterpolation` (`%(name)s`, `%%`) applied on every `get`.
//!
//! Owns parsing and interpolation only; which file, which section and what the options mean
//! is the business of [`super::alembic`].

use super::error::ConfigError;
use super::pyutil::{py_indent, py_lstrip, py_rstrip, py_strip};

/// configparser.DEFAULTSECT.
pub const DEFAULT_SECTION: &str = "DEFAULT";
/// configparser.MAX_INTERPOLATION_DEPTH.
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// One option's value: while a file is read, continuation lines accumulate in `Lines`
/// (Python keeps a list and joins it once the whole file is read); afterwards all are `Done`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Done(String),
    Lines(Vec<String>),
}

/// Ordered options of one section (Python dicts keep insertion order, and a reassigned key
/// keeps its first position). Sections are small, so a linear scan beats hashing here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Options(Vec<(String, Value)>);

impl Options {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    fn insert(&mut self, key: String, value: Value) {
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => self.0.push((key, value)),
        }
    }
    fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Done(s)) => Some(s),
            // Only reachable mid-read; never observed through the public API.
            _ => None,
        }
    }
}

/// `ConfigParser.optionxform`: option names are case-insensitive via `str.lower()`.
pub fn optionxform(name: &str) -> String {
    name.to_lowercase()
}

/// Which dict the reader is currently filling (`cursect` in configparser).
#[derive(Clone, Copy)]
enum Cursor {
    Defaults,
    Section(usize),
}

/// Index of the first ASCII byte matching `pred`. A plain loop on purpose: `str::find` with a
/// char-set pattern walks chars through generic code that is ~50x slower in unoptimised
/// (test) builds, which made parsing take milliseconds. Matching only ASCII bytes keeps the
/// index on a char boundary.
fn find_byte(s: &str, pred: impl Fn(u8) -> bool) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if pred(bytes[i]) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Python's text-mode line iteration with universal newlines: `\r\n`, `\r` and `\n` all end a
/// line. Yields the line without its terminator and whether it had one; Python hands the
/// line over with a `\n`, which only matters for `repr(line)` in errors ([`line_text`]).
fn universal_lines(text: &str) -> impl Iterator<Item = (&str, bool)> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match find_byte(rest, |b| b == b'\r' || b == b'\n') {
            None => {
                let line = rest;
                rest = "";
                Some((line, false))
            }
            Some(i) => {
                let line = &rest[..i];
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
                Some((line, true))
            }
        }
    })
}

/// The line as Python saw it (terminator translated to `\n`), for error messages.
fn line_text(line: &str, terminated: bool) -> String {
    if terminated {
        format!("{line}\n")
    } else {
        line.to_string()
    }
}

/// `SECTCRE.match(value)`: `\[(?P<header>.+)\]` anchored at the start only, greedy, so the
/// header runs to the *last* `]` and anything after it is ignored (`[a] x` is section `a`).
fn match_section_header(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    (close > 0).then(|| &inner[..close])
}

/// `OPTCRE.match(value)`: the option name ends at the first `=` or `:`; returns the raw name
/// (not yet right-stripped) and the value with leading whitespace removed.
fn match_option(value: &str) -> Option<(&str, &str)> {
    let pos = find_byte(value, |b| b == b'=' || b == b':')?;
    Some((&value[..pos], py_lstrip(&value[pos + 1..])))
}

/// A parsed configuration, equivalent to a `ConfigParser` after `read()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IniParser {
    defaults: Options,
    sections: Vec<(String, Options)>,
}

impl IniParser {
    /// `ConfigParser(defaults)`: keys are lower-cased; values are stored as given (Python's
    /// `_read_defaults` neither strips nor validates them).
    pub fn new<K: AsRef<str>, V: AsRef<str>>(defaults: &[(K, V)]) -> Self {
        let mut parser = Self::default();
        for (k, v) in defaults {
            parser
                .defaults
                .insert(optionxform(k.as_ref()), Value::Done(v.as_ref().to_string()));
        }
        parser
    }

    fn section_index(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|(n, _)| n == name)
    }

    fn options_mut(&mut self, cursor: Cursor) -> &mut Options {
        match cursor {
            Cursor::Defaults => &mut self.defaults,
            Cursor::Section(i) => &mut self.sections[i].1,
        }
    }

    /// `ConfigParser._read(fp, source)`. `source` is how Python names the file in error
    /// messages (Alembic passes a Path, so it reads `PosixPath('alembic.ini')`).
    pub fn read_str(&mut self, text: &str, source: &str) -> Result<(), ConfigError> {
        // Python's `elements_added` (strict mode) for sections: indices entered in this read.
        // For options no set is needed: every option stored by this read is still
        // `Value::Lines` until the final join, and nothing else is, so "already added in this
        // read" is exactly "present as Lines".
        let mut added_sections: Vec<usize> = Vec::new();
        let mut cursor: Option<Cursor> = None;
        let mut sectname = String::new();
        let mut optname: Option<String> = None;
        let mut indent_level = 0usize;
        let mut errors: Vec<(usize, String)> = Vec::new();

        for (idx, (line, terminated)) in universal_lines(text).enumerate() {
            let lineno = idx + 1;
            let stripped = py_strip(line);
            // Comment prefixes are only recognised at the start of the stripped line: there
            // are no inline comments, so `a = b # c` keeps `b # c`.
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if is_comment { "" } else { stripped };
            let live_opt = optname.as_deref().filter(|o| !o.is_empty());
            if value.is_empty() {
                // empty_lines_in_values=True: a blank (not comment) line becomes part of the
                // current value; trailing ones are dropped by the final rstrip.
                if let (false, Some(c), Some(o)) = (is_comment, cursor, live_opt) {
                    if let Some(Value::Lines(l)) = self.options_mut(c).get_mut(o) {
                        l.push(String::new());
                    }
                }
                continue;
            }
            let cur_indent = py_indent(line);
            if let (Some(c), Some(o), true) = (cursor, live_opt, cur_indent > indent_level) {
                if let Some(Value::Lines(l)) = self.options_mut(c).get_mut(o) {
                    l.push(value.to_string());
                }
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = match_section_header(value) {
                if let Some(i) = self.section_index(header) {
                    if added_sections.contains(&i) {
                        return Err(ConfigError::DuplicateSection {
                            file: source.to_string(),
                            line: lineno,
                            section: header.to_string(),
                        });
                    }
                    cursor = Some(Cursor::Section(i));
                    added_sections.push(i);
                } else if header == DEFAULT_SECTION {
                    // [DEFAULT] may appear repeatedly: Python never records it as added.
                    cursor = Some(Cursor::Defaults);
                } else {
                    self.sections.push((header.to_string(), Options::default()));
                    cursor = Some(Cursor::Section(self.sections.len() - 1));
                    added_sections.push(self.sections.len() - 1);
                }
                sectname = header.to_string();
                optname = None;
                continue;
            }
            let Some(c) = cursor else {
                return Err(ConfigError::MissingSectionHeader {
                    file: source.to_string(),
                    line: lineno,
                    text: line_text(line, terminated),
                });
            };
            let Some((raw_name, raw_value)) = match_option(value) else {
                // Not an option: remembered, and reading goes on (optname is left as it was,
                // so later indented lines still continue the previous option).
                errors.push((lineno, line_text(line, terminated)));
                continue;
            };
            if raw_name.is_empty() {
                // Python records the error yet still stores the option under "".
                errors.push((lineno, line_text(line, terminated)));
            }
            let name = optionxform(py_rstrip(raw_name));
            if matches!(self.options_mut(c).get(&name), Some(Value::Lines(_))) {
                return Err(ConfigError::DuplicateOption {
                    file: source.to_string(),
                    line: lineno,
                    section: sectname,
                    option: name,
                });
            }
            self.options_mut(c).insert(
                name.clone(),
                Value::Lines(vec![py_strip(raw_value).to_string()]),
            );
            optname = Some(name);
        }
        self.join_multiline_values();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Parsing {
                file: source.to_string(),
                errors,
            })
        }
    }

    fn join_multiline_values(&mut self) {
        let all =
            std::iter::once(&mut self.defaults).chain(self.sections.iter_mut().map(|s| &mut s.1));
        for options in all {
            for (_, v) in options.0.iter_mut() {
                if let Value::Lines(lines) = v {
                    *v = Value::Done(py_rstrip(&lines.join("\n")).to_string());
                }
            }
        }
    }

    /// Section names in file order, without DEFAULT.
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n.as_str())
    }

    /// `options(section)`: the section's option names, then the defaults' not already there.
    pub fn options(&self, section: &str) -> Result<Vec<String>, ConfigError> {
        let i = self
            .section_index(section)
            .ok_or_else(|| ConfigError::NoSection(section.to_string()))?;
        let own = &self.sections[i].1;
        let mut names: Vec<String> = own.0.iter().map(|(k, _)| k.clone()).collect();
        names.extend(
            self.defaults
                .0
                .iter()
                .filter(|(k, _)| !own.contains(k))
                .map(|(k, _)| k.clone()),
        );
        Ok(names)
    }

    /// `has_section`: DEFAULT is not acknowledged.
    pub fn has_section(&self, section: &str) -> bool {
        self.section_index(section).is_some()
    }

    /// `has_option`: an empty section name or DEFAULT looks at the defaults only; a missing
    /// section is `false`; otherwise the section or the defaults.
    pub fn has_option(&self, section: &str, option: &str) -> bool {
        let option = optionxform(option);
        if section.is_empty() || section == DEFAULT_SECTION {
            return self.defaults.contains(&option);
        }
        match self.section_index(section) {
            None => false,
            Some(i) => self.sections[i].1.contains(&option) || self.defaults.contains(&option),
        }
    }

    /// Looks `key` (already lower-cased) up in the section, then the defaults
    /// (`_unify_values`' ChainMap). `Err` when the section does not exist.
    fn lookup(&self, section: &str, key: &str) -> Result<Option<&str>, ConfigError> {
        let sect = if section == DEFAULT_SECTION {
            None
        } else {
            match self.section_index(section) {
                Some(i) => Some(&self.sections[i].1),
                None => return Err(ConfigError::NoSection(section.to_string())),
            }
        };
        Ok(sect
            .and_then(|s| s.get_str(key))
            .or_else(|| self.defaults.get_str(key)))
    }

    /// `get(section, option, raw=True, fallback=None)`, except that a missing section is an
    /// error (`NoSectionError`) rather than the fallback.
    pub fn get_raw(&self, section: &str, option: &str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .lookup(section, &optionxform(option))?
            .map(str::to_string))
    }

    /// `get(section, option)` with BasicInterpolation. `Ok(None)` when the option is absent
    /// from the section and the defaults; `NoSection` when the section does not exist.
    pub fn get(&self, section: &str, option: &str) -> Result<Option<String>, ConfigError> {
        let option = optionxform(option);
        let Some(raw) = self.lookup(section, &option)? else {
            return Ok(None);
        };
        self.interpolate(section, &option, raw).map(Some)
    }

    /// `items(section)`: defaults first, then the section's own options (a section value
    /// overrides a default in the default's position), every value interpolated.
    pub fn items(&self, section: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let mut merged = self.defaults.clone();
        if section != DEFAULT_SECTION {
            let i = self
                .section_index(section)
                .ok_or_else(|| ConfigError::NoSection(section.to_string()))?;
            for (k, v) in &self.sections[i].1 .0 {
                merged.insert(k.clone(), v.clone());
            }
        }
        merged
            .0
            .iter()
            .map(|(k, v)| {
                let raw = match v {
                    Value::Done(s) => s.as_str(),
                    Value::Lines(_) => "",
                };
                Ok((k.clone(), self.interpolate(section, k, raw)?))
            })
            .collect()
    }

    /// `add_section`.
    pub fn add_section(&mut self, section: &str) -> Result<(), ConfigError> {
        if section == DEFAULT_SECTION {
            return Err(ConfigError::InvalidSectionName(section.to_string()));
        }
        if self.has_section(section) {
            return Err(ConfigError::SectionExists(section.to_string()));
        }
        self.sections
            .push((section.to_string(), Options::default()));
        Ok(())
    }

    /// `ConfigParser.set`: the value is checked by BasicInterpolation.before_set (a lone `%`
    /// is a ValueError) and stored raw, to be interpolated on `get`.
    pub fn set(&mut self, section: &str, option: &str, value: &str) -> Result<(), ConfigError> {
        validate_value(value)?;
        let cursor = if section.is_empty() || section == DEFAULT_SECTION {
            Cursor::Defaults
        } else {
            Cursor::Section(
                self.section_index(section)
                    .ok_or_else(|| ConfigError::NoSection(section.to_string()))?,
            )
        };
        self.options_mut(cursor)
            .insert(optionxform(option), Value::Done(value.to_string()));
        Ok(())
    }

    /// `remove_option`; returns whether it existed.
    pub fn remove_option(&mut self, section: &str, option: &str) -> Result<bool, ConfigError> {
        let option = optionxform(option);
        let opts = if section.is_empty() || section == DEFAULT_SECTION {
            &mut self.defaults
        } else {
            let i = self
                .section_index(section)
                .ok_or_else(|| ConfigError::NoSection(section.to_string()))?;
            &mut self.sections[i].1
        };
        let before = opts.0.len();
        opts.0.retain(|(k, _)| *k != option);
        Ok(opts.0.len() != before)
    }

    /// BasicInterpolation.before_get for `option` (lower-cased) whose raw value is `raw`.
    fn interpolate(&self, section: &str, option: &str, raw: &str) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(raw.len());
        self.interpolate_some(section, option, raw, raw, &mut out, 1)?;
        Ok(out)
    }

    fn interpolate_some(
        &self,
        section: &str,
        option: &str,
        rawval: &str,
        mut rest: &str,
        out: &mut String,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(ConfigError::InterpolationDepth {
                option: option.to_string(),
                section: section.to_string(),
                rawval: rawval.to_string(),
            });
        }
        let syntax = |message: String| ConfigError::InterpolationSyntax {
            option: option.to_string(),
            section: section.to_string(),
            message,
        };
        while !rest.is_empty() {
            let Some(p) = rest.find('%') else {
                out.push_str(rest);
                return Ok(());
            };
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            match rest.as_bytes().get(1) {
                Some(b'%') => {
                    out.push('%');
                    rest = &rest[2..];
                }
                Some(b'(') => {
                    // _KEYCRE = %\(([^)]+)\)s : the name runs to the first ')' and must be
                    // non-empty and followed by 's'.
                    let name_end = rest[2..].find(')').map(|i| i + 2);
                    let name = match name_end {
                        Some(e) if e > 2 && rest[e + 1..].starts_with('s') => &rest[2..e],
                        _ => {
                            return Err(syntax(format!(
                                "bad interpolation variable reference {}",
                                super::pyutil::py_repr(rest)
                            )))
                        }
                    };
                    let var = optionxform(name);
                    rest = &rest[name.len() + 4..];
                    let value = self.lookup(section, &var)?.ok_or_else(|| {
                        ConfigError::InterpolationMissingOption {
                            option: option.to_string(),
                            section: section.to_string(),
                            rawval: rawval.to_string(),
                            reference: var.clone(),
                        }
                    })?;
                    if value.contains('%') {
                        self.interpolate_some(section, option, rawval, value, out, depth + 1)?;
                    } else {
                        out.push_str(value);
                    }
                }
                _ => {
                    return Err(syntax(format!(
                        "'%' must be followed by '%' or '(', found: {}",
                        super::pyutil::py_repr(rest)
                    )))
                }
            }
        }
        Ok(())
    }
}

/// BasicInterpolation.before_set: after removing `%%` and well-formed `%(name)s`, no `%` may
/// remain; the position reported is in that reduced string, as Python does.
fn validate_value(value: &str) -> Result<(), ConfigError> {
    let tmp = value.replace("%%", "");
    let mut reduced = String::with_capacity(tmp.len());
    let mut rest = tmp.as_str();
    while let Some(p) = rest.find("%(") {
        reduced.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        match after.find(')') {
            Some(e) if e > 0 && after[e + 1..].starts_with('s') => rest = &after[e + 2..],
            _ => {
                reduced.push_str("%(");
                rest = after;
            }
        }
    }
    reduced.push_str(rest);
    match reduced.find('%') {
        Some(byte_pos) => Err(ConfigError::InvalidValueSyntax {
            value: value.to_string(),
            position: reduced[..byte_pos].chars().count(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<IniParser, ConfigError> {
        let mut p = IniParser::new(&[("here", "/w")]);
        p.read_str(text, "<t>")?;
        Ok(p)
    }

    fn get(p: &IniParser, s: &str, o: &str) -> Option<String> {
        p.get(s, o).ok().flatten()
    }

    #[test]
    fn delimiters_first_wins_and_values_are_stripped() {
        let p = parse("[s]\na = 1\nb: 2\nc = x: y\nd : e = f\n  E2=  spaced  \t\n").unwrap();
        assert_eq!(get(&p, "s", "a").as_deref(), Some("1"));
        assert_eq!(get(&p, "s", "b").as_deref(), Some("2"));
        assert_eq!(get(&p, "s", "c").as_deref(), Some("x: y"));
        // an indented line right after an option is a continuation, not a new key
        assert_eq!(get(&p, "s", "d").as_deref(), Some("e = f\nE2=  spaced"));
        assert_eq!(get(&p, "s", "e2"), None);
    }

    #[test]
    fn keys_are_case_insensitive_and_sections_are_not() {
        let p = parse("[Sec]\nMyKey = v\n").unwrap();
        assert_eq!(get(&p, "Sec", "mykey").as_deref(), Some("v"));
        assert_eq!(get(&p, "Sec", "MYKEY").as_deref(), Some("v"));
        assert!(!p.has_section("sec"));
        assert_eq!(
            p.get("sec", "mykey"),
            Err(ConfigError::NoSection("sec".into()))
        );
    }

    #[test]
    fn continuation_and_empty_lines_in_values() {
        let p = parse("[s]\nk = a\n  b\n\n  c\n\n\nnext = 1\n").unwrap();
        assert_eq!(get(&p, "s", "k").as_deref(), Some("a\nb\n\nc"));
        let p = parse("[s]\nk =\n  a\n  # comment inside\n  b\n").unwrap();
        assert_eq!(get(&p, "s", "k").as_deref(), Some("\na\nb"));
    }

    #[test]
    fn comments_are_full_line_only() {
        let p =
            parse("# top\n; top\n[s]\n  # indented comment\nk = v # not a comment ; nor this\n")
                .unwrap();
        assert_eq!(
            get(&p, "s", "k").as_deref(),
            Some("v # not a comment ; nor this")
        );
    }

    #[test]
    fn section_header_quirks() {
        let p = parse("[a] trailing\nx=1\n[b]c]\ny=2\n[ sp ]\nz=3\n").unwrap();
        assert_eq!(p.sections().collect::<Vec<_>>(), vec!["a", "b]c", " sp "]);
    }

    #[test]
    fn default_section_is_inherited() {
        let p = parse("[DEFAULT]\nd = dv\n[s]\nx = %(d)s/%(here)s\n").unwrap();
        assert_eq!(get(&p, "s", "x").as_deref(), Some("dv//w"));
        assert_eq!(get(&p, "s", "d").as_deref(), Some("dv"));
        assert!(p.has_option("s", "here"));
        assert!(p.has_option("", "d"));
        assert!(!p.has_option("nope", "d"));
        let items = p.items("s").unwrap();
        let keys: Vec<_> = items.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["here", "d", "x"]);
    }

    #[test]
    fn repeated_default_section_is_allowed_but_not_repeated_keys() {
        assert!(parse("[DEFAULT]\na=1\n[DEFAULT]\nb=2\n").is_ok());
        let e = parse("[DEFAULT]\na=1\n[DEFAULT]\na=2\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "While reading from <t> [line  4]: option 'a' in section 'DEFAULT' already exists"
        );
    }

    #[test]
    fn duplicates_are_errors() {
        let e = parse("[s]\n[s]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "While reading from <t> [line  2]: section 's' already exists"
        );
        let e = parse("[s]\nA=1\na=2\n").unwrap_err();
        assert!(matches!(e, ConfigError::DuplicateOption { line: 3, .. }));
    }

    #[test]
    fn missing_section_header() {
        let e = parse("\n\nx = 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "File contains no section headers.\nfile: <t>, line: 3\n'x = 1\\n'"
        );
    }

    #[test]
    fn parsing_errors_are_collected() {
        let e = parse("[s]\nfoo\n= 3\n  cont\nbar").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Source contains parsing errors: <t>\n\t[line  2]: 'foo\\n'\n\t[line  3]: '= 3\\n'\n\t[line  4]: '  cont\\n'\n\t[line  5]: 'bar'"
        );
    }

    #[test]
    fn universal_newlines() {
        let p = parse("[s]\r\na = 1\rb = 2\r\n").unwrap();
        assert_eq!(get(&p, "s", "b").as_deref(), Some("2"));
    }

    #[test]
    fn interpolation_rules() {
        let p = parse(
            "[s]\npct = 100%%\nref = %(pct)s!\nUp = %(PCT)s\nbad = 50%\nbadref = %(x\nmiss = %(nope)s\nloop = %(loop)s\nempty = %()s\n",
        )
        .unwrap();
        assert_eq!(get(&p, "s", "pct").as_deref(), Some("100%"));
        // a referenced value containing '%' is itself interpolated: %% -> %
        assert_eq!(get(&p, "s", "ref").as_deref(), Some("100%!"));
        assert_eq!(get(&p, "s", "up").as_deref(), Some("100%"));
        assert_eq!(
            p.get("s", "bad").unwrap_err().to_string(),
            "'%' must be followed by '%' or '(', found: '%'"
        );
        assert_eq!(
            p.get("s", "badref").unwrap_err().to_string(),
            "bad interpolation variable reference '%(x'"
        );
        assert_eq!(
            p.get("s", "miss").unwrap_err().to_string(),
            "Bad value substitution: option 'miss' in section 's' contains an interpolation key 'nope' which is not a valid option name. Raw value: '%(nope)s'"
        );
        assert_eq!(
            p.get("s", "loop").unwrap_err().to_string(),
            "Recursion limit exceeded in value substitution: option 'loop' in section 's' contains an interpolation key which cannot be substituted in 10 steps. Raw value: '%(loop)s'"
        );
        assert!(matches!(
            p.get("s", "empty"),
            Err(ConfigError::InterpolationSyntax { .. })
        ));
        assert_eq!(p.get_raw("s", "bad").unwrap().as_deref(), Some("50%"));
    }

    #[test]
    fn set_validates_like_before_set() {
        let mut p = parse("[s]\n").unwrap();
        assert!(p.set("s", "a", "%(here)s/x %% y").is_ok());
        assert_eq!(get(&p, "s", "a").as_deref(), Some("/w/x % y"));
        assert_eq!(
            p.set("s", "b", "é%(x)s 5%").unwrap_err().to_string(),
            "invalid interpolation syntax in 'é%(x)s 5%' at position 3"
        );
        assert!(matches!(
            p.set("zz", "a", "1"),
            Err(ConfigError::NoSection(_))
        ));
        assert!(p.add_section("t").is_ok());
        assert_eq!(
            p.add_section("t").unwrap_err().to_string(),
            "Section 't' already exists"
        );
        assert_eq!(
            p.add_section("DEFAULT").unwrap_err().to_string(),
            "Invalid section name: 'DEFAULT'"
        );
        assert_eq!(p.remove_option("s", "A"), Ok(true));
        assert_eq!(p.remove_option("s", "a"), Ok(false));
    }

    /// Shaped like Alembic's generic template: comments, a dozen options, logging sections.
    const TYPICAL_INI: &str = "# A generic, single database configuration.\n\n[alembic]\n# path to migration scripts\nscript_location = %(here)s/alembic\n\n# template used to generate migration file names\nfile_template = %%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s\nprepend_sys_path = .\ntimezone = UTC\ntruncate_slug_length = 40\nrevision_environment = false\nsourceless = false\nversion_locations = %(here)s/bar:%(here)s/bat:%(here)s/alembic/versions\npath_separator = os\nrecursive_version_locations = false\noutput_encoding = utf-8\nsqlalchemy.url = sqlite:///%(here)s/app.db\n\n[post_write_hooks]\n# hooks = black\n# black.type = console_scripts\n\n[loggers]\nkeys = root,sqlalchemy,alembic\n\n[handlers]\nkeys = console\n\n[formatters]\nkeys = generic\n\n[logger_root]\nlevel = WARNING\nhandlers = console\nqualname =\n\n[logger_sqlalchemy]\nlevel = WARNING\nhandlers =\nqualname = sqlalchemy.engine\n\n[logger_alembic]\nlevel = INFO\nhandlers =\nqualname = alembic\n\n[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nlevel = NOTSET\nformatter = generic\n\n[formatter_generic]\nformat = %(levelname)-5.5s [%(name)s] %(message)s\ndatefmt = %H:%M:%S\n";

    #[test]
    fn a_typical_ini_parses_the_same_every_time() {
        // Timing belongs in scripts/bench-*, not in tests; this keeps the functional part.
        for _ in 0..20 {
            let mut p = IniParser::new(&[("here", "/srv/app")]);
            p.read_str(TYPICAL_INI, "<t>").unwrap();
            assert_eq!(p.items("alembic").unwrap().len(), 13);
        }
    }

    #[test]
    fn file_may_override_the_here_default() {
        let p = parse("[DEFAULT]\nhere = /elsewhere\n[s]\nx=%(here)s\n").unwrap();
        assert_eq!(get(&p, "s", "x").as_deref(), Some("/elsewhere"));
    }
}

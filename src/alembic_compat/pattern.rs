//! Regular expressions that are cheap to start. The regex crate takes about a millisecond to
//! compile a pattern with Unicode classes (`\w`, case-insensitive letters), and a short
//! `upgrade` compiles several (URL, reflection, revision targets): together a fifth of its
//! time. Almost every text we match is ASCII, and on ASCII text the ASCII-only form of a
//! pattern matches exactly the same spans as the Unicode form (the classes and case folding
//! differ only on non-ASCII characters), so the Unicode form is compiled only for a text
//! that needs it.
//!
//! The ASCII form is compiled by `regex-lite`: the texts here are a few hundred bytes (a
//! table's SQL, a URL, a revision target), where compiling costs far more than searching.
//! `regex-lite` compiles the reflection patterns about three times faster than the regex
//! engine's meta regex does even with its DFAs and prefilters turned off (the foreign-key
//! pattern: 29 instead of 100 us), and its only engine, a PikeVM, finds the same
//! leftmost-first matches with the same groups. Its classes and case folding are ASCII-only,
//! which is all the ASCII form needs. MeshView from empty: 9.05 -> 8.67 ms (median of 60
//! interleaved runs, with the inline-UNIQUE search confined to its lines).

use std::sync::OnceLock;

/// A pattern compiled on first use, per form.
pub struct Pattern {
    source: &'static str,
    /// Texts every match contains (ASCII case aside), checked before searching ASCII text:
    /// the prefilter the engine would have built, for a few bytes of code. A text without
    /// one of them is not searched, and the pattern is not even compiled for it.
    needles: &'static [&'static str],
    /// Texts one of which begins every match (ASCII case aside), or none. The ASCII form's
    /// search then begins where the first of them does, skipping the bytes before it.
    starts: &'static [&'static str],
    ascii: OnceLock<Option<regex_lite::Regex>>,
    unicode: OnceLock<Option<regex::Regex>>,
}

/// The groups of one match, as byte spans of the text.
#[derive(Debug, Clone)]
pub struct Caps<'t> {
    text: &'t str,
    spans: Vec<Option<(usize, usize)>>,
}

/// One matched span of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<'t> {
    text: &'t str,
    start: usize,
    end: usize,
}

impl<'t> Span<'t> {
    pub fn as_str(&self) -> &'t str {
        &self.text[self.start..self.end]
    }
    pub fn start(&self) -> usize {
        self.start
    }
    pub fn end(&self) -> usize {
        self.end
    }
}

impl<'t> Caps<'t> {
    fn new(text: &'t str, groups: impl Iterator<Item = Option<std::ops::Range<usize>>>) -> Self {
        Caps {
            text,
            spans: groups.map(|g| g.map(|r| (r.start, r.end))).collect(),
        }
    }

    /// Group `i` (0 is the whole match), if it took part in the match.
    pub fn get(&self, i: usize) -> Option<Span<'t>> {
        let (start, end) = (*self.spans.get(i)?)?;
        Some(Span {
            text: self.text,
            start,
            end,
        })
    }
}

impl<'t> std::ops::Index<usize> for Caps<'t> {
    type Output = str;
    /// Only for groups that always take part in a match (as with `regex::Captures`).
    fn index(&self, i: usize) -> &str {
        self.get(i).map_or("", |m| m.as_str())
    }
}

impl Pattern {
    /// `source` must be a valid pattern; one that is not never matches.
    pub const fn new(source: &'static str) -> Pattern {
        Pattern::needing(source, &[])
    }

    /// A pattern all of whose matches contain each of `needles` (compared ignoring ASCII
    /// case). A second needle pays where the first is common: every table's SQL says
    /// `PRIMARY KEY`, few name the constraint.
    pub const fn needing(source: &'static str, needles: &'static [&'static str]) -> Pattern {
        Pattern::starting(source, needles, &[])
    }

    /// [`Pattern::needing`], for a pattern every match of which begins with one of
    /// `starts` (compared ignoring ASCII case). No match begins before the first place such
    /// a text begins, so the search starts there: the same match, found without running
    /// the engine over the bytes in between.
    pub const fn starting(
        source: &'static str,
        needles: &'static [&'static str],
        starts: &'static [&'static str],
    ) -> Pattern {
        Pattern {
            source,
            needles,
            starts,
            ascii: OnceLock::new(),
            unicode: OnceLock::new(),
        }
    }

    fn ascii(&self) -> Option<&regex_lite::Regex> {
        self.ascii
            .get_or_init(|| regex_lite::Regex::new(self.source).ok())
            .as_ref()
    }

    fn unicode(&self) -> Option<&regex::Regex> {
        self.unicode
            .get_or_init(|| regex::Regex::new(self.source).ok())
            .as_ref()
    }

    /// The number of a named group.
    pub fn group(&self, name: &str) -> Option<usize> {
        match self.ascii() {
            Some(re) => re.capture_names().position(|n| n == Some(name)),
            None => self
                .unicode()?
                .capture_names()
                .position(|n| n == Some(name)),
        }
    }

    pub fn captures<'t>(&self, text: &'t str) -> Option<Caps<'t>> {
        self.captures_at(text, 0)
    }

    /// The first match starting at or after byte `start` (the text before it still counts
    /// for anchors and word boundaries).
    pub fn captures_at<'t>(&self, text: &'t str, start: usize) -> Option<Caps<'t>> {
        if text.is_ascii() {
            if !self.may_match(text) {
                return None;
            }
            if let Some(re) = self.ascii() {
                return self.ascii_captures_at(re, text, start);
            }
        }
        let c = self.unicode()?.captures_at(text, start)?;
        Some(Caps::new(text, c.iter().map(|g| g.map(|m| m.range()))))
    }

    /// Every non-overlapping match, in order.
    pub fn captures_iter<'t>(&self, text: &'t str) -> Vec<Caps<'t>> {
        if text.is_ascii() {
            if !self.may_match(text) {
                return Vec::new();
            }
            if let Some(re) = self.ascii() {
                if self.starts.is_empty() {
                    return re
                        .captures_iter(text)
                        .map(|c| Caps::new(text, c.iter().map(|g| g.map(|m| m.range()))))
                        .collect();
                }
                // Every match begins with a start text, so none is empty and the next
                // search begins where the last match ended, as the engine's iterator does.
                let mut out = Vec::new();
                let mut at = 0;
                while let Some(c) = self.ascii_captures_at(re, text, at) {
                    let Some(end) = c.get(0).map(|m| m.end()).filter(|e| *e > at) else {
                        break;
                    };
                    out.push(c);
                    at = end;
                }
                return out;
            }
        }
        let Some(re) = self.unicode() else {
            return Vec::new();
        };
        re.captures_iter(text)
            .map(|c| Caps::new(text, c.iter().map(|g| g.map(|m| m.range()))))
            .collect()
    }

    /// The first match of the ASCII form at or after `start`.
    fn ascii_captures_at<'t>(
        &self,
        re: &regex_lite::Regex,
        text: &'t str,
        start: usize,
    ) -> Option<Caps<'t>> {
        // No match begins before the first start text, so the search begins there (the text
        // before it still counts for anchors and word boundaries).
        let from = if self.starts.is_empty() {
            Some(start)
        } else {
            self.next_start(text.as_bytes(), start)
        };
        let c = from.and_then(|from| re.captures_at(text, from));
        // A wrong start text would silently lose matches: every test run checks it.
        debug_assert_eq!(
            c.as_ref().and_then(|c| c.get(0)).map(|m| m.range()),
            re.find_at(text, start).map(|m| m.range()),
            "pattern {} matches where none of {:?} begins",
            self.source,
            self.starts
        );
        let c = c?;
        Some(Caps::new(text, c.iter().map(|g| g.map(|m| m.range()))))
    }

    /// The first place at or after `from` where one of the start texts begins.
    fn next_start(&self, hay: &[u8], from: usize) -> Option<usize> {
        (from..hay.len()).find(|&i| {
            let rest = &hay[i..];
            self.starts.iter().any(|s| {
                let s = s.as_bytes();
                rest.len() >= s.len() && rest[..s.len()].eq_ignore_ascii_case(s)
            })
        })
    }

    /// False when `text` lacks the needle, so nothing can match. Only for ASCII text: with
    /// Unicode case folding a non-ASCII character can match an ASCII letter (K, the Kelvin
    /// sign, matches `(?i)k`).
    fn may_match(&self, text: &str) -> bool {
        let contains = |needle: &str| {
            let needle = needle.as_bytes();
            needle.is_empty()
                || text
                    .as_bytes()
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
        };
        let may = self.needles.iter().all(|n| contains(n));
        // A wrong needle would silently lose matches: every test run checks each skip.
        debug_assert!(
            may || self.ascii().map_or(true, |re| !re.is_match(text)),
            "pattern {} matches a text without one of its needles {:?}",
            self.source,
            self.needles
        );
        may
    }

    /// The whole-match spans of every non-overlapping match.
    pub fn find_iter<'t>(&self, text: &'t str) -> Vec<Span<'t>> {
        self.captures_iter(text)
            .iter()
            .filter_map(|c| c.get(0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On ASCII text both forms agree; on other text the Unicode form decides.
    #[test]
    fn ascii_and_unicode_forms_agree_where_they_should() {
        static WORD: Pattern = Pattern::new(r"(?i)CONSTRAINT\s+(\w+)\s+(check|unique)");
        let ascii = "x constraint Ck_1 CHECK y, CONSTRAINT u UNIQUE";
        let fast: Vec<Vec<Option<(usize, usize)>>> = WORD
            .captures_iter(ascii)
            .into_iter()
            .map(|c| c.spans)
            .collect();
        let re = regex::Regex::new(WORD.source).unwrap();
        let slow: Vec<Vec<Option<(usize, usize)>>> = re
            .captures_iter(ascii)
            .map(|c| c.iter().map(|g| g.map(|m| (m.start(), m.end()))).collect())
            .collect();
        assert_eq!(fast, slow);
        assert_eq!(fast.len(), 2);
        // Non-ASCII word characters and Unicode case folding (the Kelvin sign folds to k).
        let caps = WORD.captures("CONSTRAINT ñamé CHEC\u{212A}").unwrap();
        assert_eq!(&caps[1], "ñamé");
        assert_eq!(&caps[2], "CHEC\u{212A}");
    }

    /// The needle only skips searches that could not match.
    #[test]
    fn needles_skip_only_hopeless_searches() {
        static FK: Pattern = Pattern::needing(r"(?i)foreign\s+key\s*\((\w+)\)", &["FOREIGN"]);
        let got = |text: &str| FK.captures(text).map(|c| c[1].to_string());
        assert_eq!(got("x Foreign  KEY (a)").as_deref(), Some("a"));
        assert_eq!(
            got("x FOREIGN KEY(b), foreign key (c)").as_deref(),
            Some("b")
        );
        assert_eq!(FK.captures_iter("foreign key (d) FOREIGN KEY (e)").len(), 2);
        assert_eq!(got("x key (a)"), None);
        assert!(FK.captures_iter("").is_empty());
        // Every needle must be there; case is ignored.
        static NAMED_PK: Pattern = Pattern::needing(
            r"(?i)constraint\s+(\w+)\s+primary\s+key",
            &["CONSTRAINT", "PRIMARY"],
        );
        let pk = |text: &str| NAMED_PK.captures(text).map(|c| c[1].to_string());
        assert_eq!(
            pk("Constraint pk_t Primary Key (id)").as_deref(),
            Some("pk_t")
        );
        assert_eq!(pk("PRIMARY KEY (id)"), None);
        assert_eq!(pk("CONSTRAINT ck CHECK (a > 0)"), None);
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "without one of its needles")]
    fn a_wrong_needle_is_caught_in_tests() {
        static WRONG: Pattern = Pattern::needing(r"(?i)foreign\s+key", &["FOREIGN", "REFERENCES"]);
        let _ = WRONG.captures("FOREIGN KEY (a)");
    }

    /// Searching only where a start text begins finds the very matches a full search
    /// finds, including after a start text that begins no match.
    #[test]
    fn start_texts_find_the_same_matches() {
        const SOURCE: &str = r#"(?i)(?:CONSTRAINT\s+(\w+)\s+)?UNIQUE\s*\((.+?)\)"#;
        static NAMED: Pattern = Pattern::starting(SOURCE, &["UNIQUE"], &["CONSTRAINT", "UNIQUE"]);
        let re = regex::Regex::new(SOURCE).unwrap();
        for text in [
            "a INT, CONSTRAINT uq_a UNIQUE (a), unique(b, c)",
            "constraint ck CHECK (x), CONSTRAINT  u2\tUnique ( d )",
            "xUNIQUE (e) CONSTRAINT UNIQUE (f)",
            "CONSTRAINTCONSTRAINT uq UNIQUE (g)",
            "no match: UNIQUE without parentheses",
        ] {
            let fast: Vec<Vec<Option<(usize, usize)>>> = NAMED
                .captures_iter(text)
                .into_iter()
                .map(|c| c.spans)
                .collect();
            let slow: Vec<Vec<Option<(usize, usize)>>> = re
                .captures_iter(text)
                .map(|c| c.iter().map(|g| g.map(|m| (m.start(), m.end()))).collect())
                .collect();
            assert_eq!(fast, slow, "{text}");
            let at = |p: &Pattern, from| p.captures_at(text, from).map(|c| c.spans);
            for from in 0..text.len() {
                let slow = re
                    .captures_at(text, from)
                    .map(|c| c.iter().map(|g| g.map(|m| (m.start(), m.end()))).collect());
                assert_eq!(at(&NAMED, from), slow, "{text} from {from}");
            }
        }
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "matches where none of")]
    fn a_wrong_start_text_is_caught_in_tests() {
        static WRONG: Pattern =
            Pattern::starting(r"(?i)(?:CONSTRAINT\s+)?UNIQUE", &[], &["CONSTRAINT"]);
        let _ = WRONG.captures("a UNIQUE");
    }

    #[test]
    fn groups_by_name_and_a_broken_pattern_never_matches() {
        static NAMED: Pattern = Pattern::new(r"^(?P<name>\w+)://(?P<rest>.*)$");
        let caps = NAMED.captures("sqlite:///x.db").unwrap();
        assert_eq!(
            caps.get(NAMED.group("rest").unwrap()).unwrap().as_str(),
            "/x.db"
        );
        assert_eq!(NAMED.group("nope"), None);
        // A search from a later position still sees the text before it.
        static WORD_AT: Pattern = Pattern::new(r"\bab");
        let at = |text: &str, start: usize| {
            WORD_AT
                .captures_at(text, start)
                .and_then(|c| c.get(0))
                .map(|m| m.start())
        };
        assert_eq!(at("ab xab ab", 1), Some(7));
        assert_eq!(at("é ab", 2), Some(3));
        static BROKEN: Pattern = Pattern::new(r"(unclosed");
        assert!(BROKEN.captures("unclosed").is_none());
        assert!(BROKEN.find_iter("unclosed").is_empty());
    }
}

//! Python's "logical lines" as a byte-for-byte view of the source.
//!
//! Python's tokenizer drops comments, joins lines ended by a backslash and ignores newlines
//! inside brackets. Pest has no mode for "newlines matter here but not inside brackets", so
//! before the grammar runs we blank exactly those bytes with spaces. Every other byte is kept,
//! so an offset into the view is the same offset into the file: spans and error positions
//! need no mapping back. String literals are skipped untouched (their newlines, `#` and
//! brackets are content).
//!
//! Also owns [`LineIndex`]: byte offset -> (line, column), built once per file and used only
//! when a position is shown, as ruff does.

/// The source with comments, backslash continuations, CR of CRLF, and newlines inside
/// brackets replaced by spaces of the same length.
pub fn logical_view(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = bytes.to_vec();
    let mut depth: usize = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                        break;
                    }
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'\\' => {
                // A backslash continuation joins this line with the next.
                let mut j = i + 1;
                if bytes.get(j) == Some(&b'\r') {
                    j += 1;
                }
                if bytes.get(j) == Some(&b'\n') {
                    for b in &mut out[i..=j] {
                        *b = b' ';
                    }
                    i = j + 1;
                } else {
                    i += 1;
                }
            }
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out[i] = b' ';
                i += 1;
            }
            b'\n' => {
                if depth > 0 {
                    out[i] = b' ';
                }
                i += 1;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'\'' | b'"' => {
                i = skip_string(bytes, i).0;
            }
            _ => i += 1,
        }
    }
    // Only ASCII bytes outside strings and comments were replaced by ASCII spaces, and comment
    // bytes (any UTF-8) were replaced whole, so the result is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Returns the offset just past the string literal whose opening quote is at `start`, and
/// whether it was terminated (if not, the offset is the end of its line, or of the file for a
/// triple-quoted one).
pub fn skip_string(bytes: &[u8], start: usize) -> (usize, bool) {
    let quote = bytes[start];
    let triple = bytes.get(start + 1) == Some(&quote) && bytes.get(start + 2) == Some(&quote);
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            i += 2;
            continue;
        }
        if triple {
            if b == quote && bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote) {
                return (i + 3, true);
            }
        } else if b == quote {
            return (i + 1, true);
        } else if b == b'\n' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            return (i, false);
        }
        i += 1;
    }
    (bytes.len(), false)
}

/// Byte offset -> 1-based line and column (in characters, as Python reports them).
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(src: &str) -> Self {
        // Built for every body the interpreter runs (an op records its position), so the
        // newlines are found with memchr rather than byte by byte.
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', src.as_bytes()).map(|i| i + 1));
        LineIndex { starts }
    }

    /// (line, column), both 1-based; the column counts characters, not bytes.
    pub fn line_col(&self, src: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(src.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = src
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line, col + 1)
    }

    /// The text of 1-based `line` without its line ending.
    pub fn line_text<'a>(&self, src: &'a str, line: usize) -> &'a str {
        let Some(&start) = self.starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self.starts.get(line).map(|e| e - 1).unwrap_or(src.len());
        src.get(start..end).unwrap_or("").trim_end_matches('\r')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_keeps_length_and_blanks_what_python_ignores() {
        let src = "x = (1,  # one\n     2)\ny = 'a#b(' \\\n  + \"\"\"(\n\"\"\"\r\n";
        let v = logical_view(src);
        assert_eq!(v.len(), src.len());
        assert_eq!(
            v,
            "x = (1,             2)\ny = 'a#b('     + \"\"\"(\n\"\"\" \n"
        );
    }

    #[test]
    fn unicode_comment_stays_utf8_and_same_length() {
        let src = "a = 1  # héllo ✓\nb = 2\n";
        let v = logical_view(src);
        assert_eq!(v.len(), src.len());
        assert!(v.starts_with("a = 1 "));
        assert!(v.ends_with("\nb = 2\n"));
    }

    #[test]
    fn line_col_counts_characters() {
        let src = "ab\nçd = 1\n";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_col(src, 0), (1, 1));
        assert_eq!(idx.line_col(src, 3), (2, 1));
        assert_eq!(idx.line_col(src, 5), (2, 2));
        assert_eq!(idx.line_text(src, 2), "çd = 1");
    }
}

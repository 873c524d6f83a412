//! How Alembic 1.20.1 renders one revision script (`alembic/script/base.py`, class `Script`):
//! `log_entry`, `__str__`, `_head_only`, `cmd_format` and `_format_down_revision`, plus
//! `util.format_as_comma`. Pure string functions over a [`ScriptView`], so every flag
//! combination is unit-tested against text captured from real Alembic.

/// Everything `Script`'s formatting reads, already resolved by the map.
#[derive(Debug, Clone, Default)]
pub struct ScriptView<'a> {
    pub revision: &'a str,
    /// `down_revision` as written (`util.to_tuple` of it).
    pub down_revision: &'a [String],
    /// `dependencies` (`depends_on`) as written.
    pub dependencies: &'a [String],
    /// `branch_labels` after inheritance (a Python set; we give a stable order).
    pub branch_labels: Vec<&'a str>,
    /// `nextrev` ids (a Python frozenset; we give a stable order).
    pub nextrev: Vec<&'a str>,
    /// `is_head`: no child by `down_revision`.
    pub is_head: bool,
    /// `_is_real_head`: no child by `down_revision` or dependency.
    pub is_real_head: bool,
    pub is_branch_point: bool,
    pub is_merge_point: bool,
    /// `Script.path` (the resolved path).
    pub path: &'a str,
    /// `Script.longdoc` (docstring, stripped).
    pub longdoc: &'a str,
    /// `_db_current_indicator`.
    pub current: bool,
}

/// Python truthiness of `tuple_rev_as_scalar(to_tuple(x))`: `None`, `()` and `""` (also as the
/// single element of a one-tuple) are false.
fn rev_ids_truthy(ids: &[String]) -> bool {
    match ids {
        [] => false,
        [one] => !one.is_empty(),
        _ => true,
    }
}

/// `util.format_as_comma` of a sequence of strings.
pub fn format_as_comma<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::new();
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(s.as_ref());
    }
    out
}

/// `re.split("\n\n", longdoc)[0]`.
pub fn doc_of(longdoc: &str) -> &str {
    longdoc.split("\n\n").next().unwrap_or("")
}

/// Python's `str.splitlines()` (no keepends): splits on every Unicode line boundary Python
/// knows, `\r\n` counting as one; no trailing empty piece.
pub fn py_splitlines(s: &str) -> Vec<&str> {
    py_split_lines(s, false)
}

/// `str.splitlines(keepends)`: with `keepends`, each line keeps its line break.
pub fn py_split_lines(s: &str, keepends: bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        let mut end = i + c.len_utf8();
        if c == '\r' {
            if let Some(&(j, '\n')) = iter.peek() {
                iter.next();
                end = j + 1;
            }
        }
        out.push(if keepends {
            &s[start..end]
        } else {
            &s[start..i]
        });
        start = end;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

impl ScriptView<'_> {
    /// `Script.doc`.
    pub fn doc(&self) -> &str {
        doc_of(self.longdoc)
    }

    /// `Script._format_down_revision`.
    pub fn format_down_revision(&self) -> String {
        if rev_ids_truthy(self.down_revision) {
            format_as_comma(self.down_revision)
        } else {
            "<base>".to_string()
        }
    }

    /// `Script.log_entry` (what `show` and `-v` print).
    pub fn log_entry(&self) -> String {
        let mut e = format!(
            "Rev: {}{}{}{}{}\n",
            self.revision,
            if self.is_head { " (head)" } else { "" },
            if self.is_branch_point {
                " (branchpoint)"
            } else {
                ""
            },
            if self.is_merge_point {
                " (mergepoint)"
            } else {
                ""
            },
            if self.current { " (current)" } else { "" },
        );
        if self.is_merge_point {
            e.push_str(&format!("Merges: {}\n", self.format_down_revision()));
        } else {
            e.push_str(&format!("Parent: {}\n", self.format_down_revision()));
        }
        if rev_ids_truthy(self.dependencies) {
            e.push_str(&format!(
                "Also depends on: {}\n",
                format_as_comma(self.dependencies)
            ));
        }
        if self.is_branch_point {
            e.push_str(&format!(
                "Branches into: {}\n",
                format_as_comma(&self.nextrev)
            ));
        }
        if !self.branch_labels.is_empty() {
            e.push_str(&format!(
                "Branch names: {}\n",
                format_as_comma(&self.branch_labels)
            ));
        }
        e.push_str(&format!("Path: {}\n", self.path));
        let body: Vec<String> = py_splitlines(self.longdoc)
            .into_iter()
            .map(|para| format!("    {para}"))
            .collect();
        e.push_str(&format!("\n{}\n", body.join("\n")));
        e
    }

    /// `Script.__str__` (used in warnings about missing references).
    pub fn to_py_str(&self) -> String {
        format!(
            "{} -> {}{}{}{}, {}",
            self.format_down_revision(),
            self.revision,
            if self.is_head { " (head)" } else { "" },
            if self.is_branch_point {
                " (branchpoint)"
            } else {
                ""
            },
            if self.is_merge_point {
                " (mergepoint)"
            } else {
                ""
            },
            self.doc()
        )
    }

    /// `Script._head_only(include_branches, include_doc, include_parents, tree_indicators,
    /// head_indicators)`.
    pub fn head_only(
        &self,
        include_branches: bool,
        include_doc: bool,
        include_parents: bool,
        tree_indicators: bool,
        head_indicators: bool,
    ) -> String {
        let mut text = self.revision.to_string();
        if include_parents {
            text = if rev_ids_truthy(self.dependencies) {
                format!(
                    "{} ({}) -> {}",
                    self.format_down_revision(),
                    format_as_comma(self.dependencies),
                    text
                )
            } else {
                format!("{} -> {}", self.format_down_revision(), text)
            };
        }
        if include_branches && !self.branch_labels.is_empty() {
            text.push_str(&format!(" ({})", format_as_comma(&self.branch_labels)));
        }
        if head_indicators || tree_indicators {
            if self.is_real_head {
                text.push_str(" (head)");
            }
            if self.is_head && !self.is_real_head {
                text.push_str(" (effective head)");
            }
            if self.current {
                text.push_str(" (current)");
            }
        }
        if tree_indicators {
            if self.is_branch_point {
                text.push_str(" (branchpoint)");
            }
            if self.is_merge_point {
                text.push_str(" (mergepoint)");
            }
        }
        if include_doc {
            text.push_str(", ");
            text.push_str(self.doc());
        }
        text
    }

    /// `Script.cmd_format(verbose, include_branches, include_doc, include_parents,
    /// tree_indicators)`. Note Alembic passes `tree_indicators` into `_head_only`'s
    /// `tree_indicators` slot and leaves `head_indicators` at its default (True).
    pub fn cmd_format(
        &self,
        verbose: bool,
        include_branches: bool,
        include_doc: bool,
        include_parents: bool,
        tree_indicators: bool,
    ) -> String {
        if verbose {
            self.log_entry()
        } else {
            self.head_only(
                include_branches,
                include_doc,
                include_parents,
                tree_indicators,
                true,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    // Strings below were captured from Alembic 1.20.1 (`alembic heads/history/show/branches`
    // on small projects and `Script` objects built in the Python REPL).

    #[test]
    fn linear_head_log_entry_and_history_line() {
        let down = s(&["f4894da35515"]);
        let v = ScriptView {
            revision: "ca515065d73b",
            down_revision: &down,
            is_head: true,
            is_real_head: true,
            path: "/tmp/fx/linear/alembic/versions/ca515065d73b_telemetry.py",
            longdoc: "",
            ..Default::default()
        };
        assert_eq!(
            v.log_entry(),
            "Rev: ca515065d73b (head)\nParent: f4894da35515\nPath: /tmp/fx/linear/alembic/versions/ca515065d73b_telemetry.py\n\n\n"
        );
        assert_eq!(
            v.cmd_format(false, true, true, true, true),
            "f4894da35515 -> ca515065d73b (head), "
        );
        assert_eq!(
            v.cmd_format(false, true, false, false, false),
            "ca515065d73b (head)"
        );
    }

    #[test]
    fn base_with_docstring() {
        let longdoc = "create nodes table\n\nRevision ID: e33cded675f3\nRevises: \nCreate Date: 2024-01-01 00:00:00";
        let v = ScriptView {
            revision: "e33cded675f3",
            path: "/p/e33cded675f3_create_nodes.py",
            longdoc,
            ..Default::default()
        };
        assert_eq!(
            v.cmd_format(false, true, true, true, true),
            "<base> -> e33cded675f3, create nodes table"
        );
        assert_eq!(
            v.log_entry(),
            "Rev: e33cded675f3\nParent: <base>\nPath: /p/e33cded675f3_create_nodes.py\n\n    create nodes table\n    \n    Revision ID: e33cded675f3\n    Revises: \n    Create Date: 2024-01-01 00:00:00\n"
        );
        assert_eq!(v.to_py_str(), "<base> -> e33cded675f3, create nodes table");
    }

    #[test]
    fn merge_branchpoint_labels_dependencies() {
        let down = s(&["aaa", "bbb"]);
        let deps = s(&["ddd"]);
        let v = ScriptView {
            revision: "mmm",
            down_revision: &down,
            dependencies: &deps,
            branch_labels: vec!["lbl"],
            nextrev: vec!["x1", "x2"],
            is_branch_point: true,
            is_merge_point: true,
            path: "/v/mmm.py",
            longdoc: "merge",
            current: true,
            ..Default::default()
        };
        assert_eq!(
            v.log_entry(),
            "Rev: mmm (branchpoint) (mergepoint) (current)\nMerges: aaa, bbb\nAlso depends on: ddd\nBranches into: x1, x2\nBranch names: lbl\nPath: /v/mmm.py\n\n    merge\n"
        );
        assert_eq!(
            v.cmd_format(false, true, true, true, true),
            "aaa, bbb (ddd) -> mmm (lbl) (current) (branchpoint) (mergepoint), merge"
        );
        // branches' child line: include_branches, no doc, tree indicators on
        assert_eq!(
            v.cmd_format(false, true, false, false, true),
            "mmm (lbl) (current) (branchpoint) (mergepoint)"
        );
        // heads: tree_indicators=False still shows head indicators (head_indicators=True)
        assert_eq!(
            v.cmd_format(false, true, false, false, false),
            "mmm (lbl) (current)"
        );
        // without include_branches the label is hidden
        assert_eq!(
            v.cmd_format(false, false, false, false, false),
            "mmm (current)"
        );
    }

    #[test]
    fn effective_head_and_head_only_flags() {
        let down = s(&["p"]);
        let v = ScriptView {
            revision: "r",
            down_revision: &down,
            is_head: true,
            is_real_head: false,
            longdoc: "d",
            ..Default::default()
        };
        // every (include_branches, include_doc, include_parents, tree, head) combination
        let mut seen = Vec::new();
        for bits in 0..32u8 {
            let f = |b: u8| bits & (1 << b) != 0;
            seen.push(v.head_only(f(0), f(1), f(2), f(3), f(4)));
        }
        assert_eq!(seen[0], "r");
        assert_eq!(seen[0b11111], "p -> r (effective head), d");
        assert_eq!(seen[0b01000], "r (effective head)");
        assert_eq!(seen[0b10000], "r (effective head)");
        assert_eq!(seen[0b00110], "p -> r, d");
    }

    #[test]
    fn empty_string_down_revision_is_base() {
        let down = s(&[""]);
        let v = ScriptView {
            revision: "r",
            down_revision: &down,
            ..Default::default()
        };
        assert_eq!(v.format_down_revision(), "<base>");
        let two = s(&["", ""]);
        let v = ScriptView {
            revision: "r",
            down_revision: &two,
            ..Default::default()
        };
        assert_eq!(v.format_down_revision(), ", ");
    }

    #[test]
    fn splitlines_like_python() {
        assert_eq!(
            py_splitlines("a\r\nb\rc\n\nd\n"),
            vec!["a", "b", "c", "", "d"]
        );
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
        assert_eq!(py_splitlines("x\u{2028}y\x0cz"), vec!["x", "y", "z"]);
    }
}

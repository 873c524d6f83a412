//! Revision files (Alembic's `script/`): the pest grammar for the Python they are written in,
//! our typed AST, the module-level metadata Alembic reads from them, and the loader that finds
//! them in the version locations. Knows nothing of the revision graph or of SQL.

/// The fingerprint of the library's code (see `build.rs`), as a literal for `concat!`. Every
/// cache of what this code derived from revision files (syntax trees, metadata, the check's
/// verdicts) is keyed by it, so a new build never trusts an old build's results. Defined
/// before the modules, which see it by textual scope.
macro_rules! code_fingerprint {
    () => {
        env!("RALEMBIC_CODE_FINGERPRINT")
    };
}

pub mod ast;
pub mod ast_cache;
pub mod body_pack;
pub mod directory;
pub mod dump;
pub mod lines;
pub mod metadata;
pub mod parse;
pub mod sql_override;

pub use ast_cache::parse_cached;
pub use directory::{load_scripts, Script};
pub use metadata::{DownRevision, ScriptMeta};
pub use parse::{parse_expression, parse_module};

use lines::LineIndex;

/// A positioned error in a revision file: `path:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{col}: {message}")]
pub struct SyntaxError {
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// Byte offset into the file (what `line`/`col` were computed from).
    pub offset: usize,
    /// The offending source line, for [`SyntaxError::render`].
    pub source_line: String,
}

impl SyntaxError {
    pub fn at(path: &str, src: &str, offset: usize, message: &str) -> Self {
        let index = LineIndex::new(src);
        let (line, col) = index.line_col(src, offset);
        SyntaxError {
            path: path.to_string(),
            line,
            col,
            message: message.to_string(),
            offset,
            source_line: index.line_text(src, line).to_string(),
        }
    }

    /// The one-line message followed by the source line and a caret under the column.
    pub fn render(&self) -> String {
        let pad: String = self
            .source_line
            .chars()
            .take(self.col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!("{self}\n    {}\n    {pad}^", self.source_line)
    }
}

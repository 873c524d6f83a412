//! The one error type of the config layer. Every variant's `Display` is the exact text Python
//! would show: for Alembic's `CommandError`s that is what follows `FAILED: `, for configparser
//! and other Python exceptions it is `str(exc)` (the last line of the traceback after the
//! exception class name). Fields keep the pieces (file, line, section, option) for callers that
//! want to render their own message.

use super::pyutil::py_repr;

/// Renders Python's `[line %2d]` fragment.
fn line2(n: usize) -> String {
    format!("{n:2}")
}

fn parsing_lines(errors: &[(usize, String)]) -> String {
    errors
        .iter()
        .map(|(n, line)| format!("\n\t[line {}]: {}", line2(*n), py_repr(line)))
        .collect()
}

/// Errors from reading alembic.ini / pyproject.toml and resolving Alembic's settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// configparser.MissingSectionHeaderError: content before the first `[section]`.
    /// `file` is Python's rendering of the file name (e.g. `PosixPath('alembic.ini')`).
    #[error("File contains no section headers.\nfile: {file}, line: {line}\n{}", py_repr(.text))]
    MissingSectionHeader {
        file: String,
        line: usize,
        text: String,
    },
    /// configparser.ParsingError: every line that is neither section, option, comment nor
    /// continuation, with its line number.
    #[error("Source contains parsing errors: {file}{}", parsing_lines(.errors))]
    Parsing {
        file: String,
        errors: Vec<(usize, String)>,
    },
    /// configparser.DuplicateSectionError (strict=True).
    #[error("While reading from {file} [line {}]: section {} already exists", line2(*.line), py_repr(.section))]
    DuplicateSection {
        file: String,
        line: usize,
        section: String,
    },
    /// configparser.DuplicateOptionError (strict=True).
    #[error("While reading from {file} [line {}]: option {} in section {} already exists", line2(*.line), py_repr(.option), py_repr(.section))]
    DuplicateOption {
        file: String,
        line: usize,
        section: String,
        option: String,
    },
    /// DuplicateSectionError raised by `add_section` (no file involved).
    #[error("Section {} already exists", py_repr(.0))]
    SectionExists(String),
    /// ValueError from `add_section("DEFAULT")`.
    #[error("Invalid section name: {}", py_repr(.0))]
    InvalidSectionName(String),
    /// configparser.NoSectionError.
    #[error("No section: {}", py_repr(.0))]
    NoSection(String),
    /// configparser.InterpolationMissingOptionError.
    #[error("Bad value substitution: option {} in section {} contains an interpolation key {} which is not a valid option name. Raw value: {}", py_repr(.option), py_repr(.section), py_repr(.reference), py_repr(.rawval))]
    InterpolationMissingOption {
        option: String,
        section: String,
        rawval: String,
        reference: String,
    },
    /// configparser.InterpolationSyntaxError; `message` is the full Python message.
    #[error("{message}")]
    InterpolationSyntax {
        option: String,
        section: String,
        message: String,
    },
    /// configparser.InterpolationDepthError (more than MAX_INTERPOLATION_DEPTH = 10 levels).
    #[error("Recursion limit exceeded in value substitution: option {} in section {} contains an interpolation key which cannot be substituted in 10 steps. Raw value: {}", py_repr(.option), py_repr(.section), py_repr(.rawval))]
    InterpolationDepth {
        option: String,
        section: String,
        rawval: String,
    },
    /// ValueError from `ConfigParser.set` (BasicInterpolation.before_set).
    #[error("invalid interpolation syntax in {} at position {position}", py_repr(.value))]
    InvalidValueSyntax { value: String, position: usize },
    /// The ini file exists but is not valid UTF-8 (Python: UnicodeDecodeError; our text differs).
    #[error("{path}: file is not valid UTF-8 (byte offset {offset})")]
    NotUtf8 { path: String, offset: usize },
    /// An I/O failure where Python would also fail (e.g. pyproject.toml is a directory).
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// pyproject.toml is not valid TOML (Python: tomllib.TOMLDecodeError; our text differs).
    #[error("{path}: invalid TOML: {message}")]
    TomlSyntax { path: String, message: String },
    /// Alembic CommandError for a missing ini section:
    /// `No config file 'x.ini' found, or file has no '[alembic]' section`.
    #[error("No config file {} found, or file has no '[{section}]' section", .file.as_deref().map_or_else(|| "None".to_string(), py_repr))]
    NoConfigSection {
        file: Option<String>,
        section: String,
    },
    /// Alembic CommandError from ScriptDirectory.from_config.
    #[error("No 'script_location' key found in configuration.")]
    NoScriptLocation,
    /// Alembic CommandError raised by ScriptDirectory when the directory is absent.
    #[error(
        "Path doesn't exist: {0}.  Please use the 'init' command to create a new scripts folder."
    )]
    ScriptPathMissing(String),
    /// Any other Alembic CommandError (message verbatim), e.g. "Incorrect TOML format",
    /// "only one ini file may be indicated", "pyproject.toml indicated more than once".
    #[error("{0}")]
    Command(String),
    /// ValueError from Config._get_file_separator_char.
    #[error("{} is not a valid value for {name}; expected 'space', 'newline', 'os', ':', ';'", py_repr(.value))]
    InvalidPathSeparator { name: String, value: String },
    /// ValueError from `int(value)` (truncate_slug_length).
    #[error("invalid literal for int() with base 10: {}", py_repr(.value))]
    InvalidInt { value: String },
    /// ValueError from sqlalchemy.util.asbool.
    #[error("String is not true/false: {}", py_repr(.value))]
    NotBool { value: String },
    /// A Python `%`-format failure applying `%(here)s` to a pyproject.toml value
    /// (KeyError / ValueError / TypeError text as Python prints it).
    #[error("{message}")]
    TomlFormat { key: String, message: String },
    /// A pyproject.toml value of a type Alembic cannot use where it is needed. Python would
    /// crash with an unrelated TypeError/AttributeError or misbehave; we name the key instead.
    #[error("pyproject.toml [tool.alembic] {key}: expected {expected}")]
    TomlType { key: String, expected: &'static str },
    /// ModuleNotFoundError for the package part of a `package:path` location.
    #[error("No module named {}", py_repr(.0))]
    NoModule(String),
}

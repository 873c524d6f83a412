//! Finding and loading revision files the way Alembic's `ScriptDirectory._load_revisions`
//! does: every existing version location in order, files sorted by name, `__pycache__`
//! skipped, sub-directories (sorted) only with `recursive_version_locations`, the same real
//! file never loaded twice, and only names Alembic's pattern accepts. Files are read and
//! parsed on worker threads; the result keeps Alembic's load order.

use std::path::{Path, PathBuf};

use super::ast::Module;
use super::metadata::ScriptMeta;
use super::parse::{parse_module, PARSER_STACK_SIZE};
use super::SyntaxError;

/// Alembic's `_only_source_rev_file` (`(?!\.\#|__init__)(.*\.py)$`): any `*.py` whose name
/// does not start with `.#` (editor lock files) or `__init__`.
fn is_revision_file_name(name: &str) -> bool {
    name.ends_with(".py") && !name.starts_with(".#") && !name.starts_with("__init__") && !name.contains('\n')
}

/// Alembic's `_legacy_rev` (`([a-f0-9]+)\.py$`): the revision id of a file named after it.
fn legacy_revision(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".py")?;
    let ok = !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(stem)
}

/// One loaded revision file.
#[derive(Debug, Clone)]
pub struct Script {
    /// The resolved (real) path, as Alembic stores and prints it.
    pub path: PathBuf,
    pub revision: String,
    pub meta: ScriptMeta,
    pub source: String,
    pub module: Module,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Syntax(SyntaxError),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// Alembic's CommandError for a file without a `revision` whose name is no hex id.
    #[error(
        "Could not determine revision id from filename {0}. Be sure the 'revision' variable is declared inside the script (please see 'Upgrading from Alembic 0.1 to 0.2' in the documentation)."
    )]
    NoRevision(String),
    /// Python raises AttributeError importing such a module into a Script.
    #[error("{0}: module has no attribute 'down_revision'")]
    NoDownRevision(String),
}

impl LoadError {
    /// Alembic reports CommandErrors as `FAILED: ...` (exit 255); everything else is a Python
    /// exception with a traceback (exit 1).
    pub fn is_command_error(&self) -> bool {
        matches!(self, LoadError::NoRevision(_))
    }
}

/// What loading produced: scripts in Alembic's load order, plus warnings Alembic would emit.
#[derive(Debug, Default)]
pub struct Loaded {
    pub scripts: Vec<Script>,
    pub warnings: Vec<String>,
}

/// Lists the revision files of `locations` in Alembic's order, without reading them.
pub fn list_revision_files(locations: &[PathBuf], recursive: bool) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for loc in locations.iter().filter(|l| l.exists()) {
        let mut found = Vec::new();
        walk(loc, recursive, &mut found);
        for path in found {
            let real = std::fs::canonicalize(&path).unwrap_or(path);
            if !seen.insert(real.clone()) {
                warnings.push(format!(
                    "File {} loaded twice! ignoring. Please ensure version_locations is unique.",
                    real.display()
                ));
                continue;
            }
            let name_ok = real
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_revision_file_name);
            if name_ok {
                files.push(real);
            }
        }
    }
    (files, warnings)
}

/// `os.walk(top_down=True)` order: a directory's files (sorted), then each sorted
/// sub-directory in turn; `__pycache__` directories contribute nothing.
fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        // os.walk follows the same is_dir() test (symlinks to directories count as directories).
        if path.is_dir() {
            dirs.push(name);
        } else {
            files.push(name);
        }
    }
    let is_cache = dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("__pycache__"));
    if !is_cache {
        files.sort();
        out.extend(files.into_iter().map(|f| dir.join(f)));
    }
    if recursive {
        dirs.sort();
        for d in dirs {
            walk(&dir.join(d), recursive, out);
        }
    }
}

/// Loads every revision file of `locations`. All broken files are reported, not just the
/// first, in load order.
pub fn load_scripts(locations: &[PathBuf], recursive: bool) -> Result<Loaded, Vec<LoadError>> {
    let (files, warnings) = list_revision_files(locations, recursive);
    let results = load_parallel(&files);
    let mut scripts = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(s) => scripts.push(s),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(Loaded { scripts, warnings })
    } else {
        Err(errors)
    }
}

fn load_parallel(files: &[PathBuf]) -> Vec<Result<Script, LoadError>> {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    // Small directories are faster on one thread than the cost of spawning more.
    let workers = if files.len() < 64 { 1 } else { workers };
    let chunk = files.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                std::thread::Builder::new()
                    .stack_size(PARSER_STACK_SIZE)
                    .spawn_scoped(scope, move || part.iter().map(|p| load_one(p)).collect::<Vec<_>>())
            })
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for (h, part) in handles.into_iter().zip(files.chunks(chunk)) {
            match h.map_err(|e| e.to_string()).and_then(|h| h.join().map_err(|_| "parser thread panicked".to_string())) {
                Ok(results) => out.extend(results),
                Err(message) => out.extend(part.iter().map(|p| {
                    Err(LoadError::Io { path: p.display().to_string(), message: message.clone() })
                })),
            }
        }
        out
    })
}

fn load_one(path: &Path) -> Result<Script, LoadError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io { path: shown.clone(), message: e.to_string() })?;
    let source = String::from_utf8(bytes).map_err(|e| LoadError::Io {
        path: shown.clone(),
        message: format!("(unicode error) 'utf-8' codec can't decode byte at offset {}", e.utf8_error().valid_up_to()),
    })?;
    let module = parse_module(&shown, &source).map_err(LoadError::Syntax)?;
    let meta = ScriptMeta::from_module(&shown, &source, &module).map_err(LoadError::Syntax)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    let revision = match &meta.revision {
        Some(r) => r.clone(),
        None => match legacy_revision(&file_name) {
            Some(m) => m.to_string(),
            None => return Err(LoadError::NoRevision(file_name)),
        },
    };
    if meta.down_revision.is_none() {
        return Err(LoadError::NoDownRevision(shown));
    }
    Ok(Script { path: path.to_path_buf(), revision, meta, source, module })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_rule_is_alembics() {
        for ok in ["a.py", "1_x.py", ".hidden.py", "__init_x.py".trim_start_matches('_'), "x.y.py"] {
            assert!(is_revision_file_name(ok), "{ok}");
        }
        for bad in ["__init__.py", "__init__x.py", ".#lock.py", "a.pyc", "a.txt", "apy"] {
            assert!(!is_revision_file_name(bad), "{bad}");
        }
    }
}

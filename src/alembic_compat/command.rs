//! Alembic's commands (`alembic/command.py`) over our config, script and revision layers, with
//! output byte-identical to Alembic 1.20.1. Implemented: the read-only `heads`, `branches`,
//! `history`, `show` and `current`; `upgrade`, `downgrade`, `stamp` ([`migrate`]); `init`,
//! `revision`, `merge` ([`generate`]); `revision --autogenerate` and `check` ([`autogen`]).
//! The command-line front shared by `ralembic` and `meshview alembic` is [`cli`].
//!
//! Owns: assembling a [`ScriptDirectory`] (config -> settings -> revision files -> map, each
//! step only when a command first needs it, so errors surface in Alembic's order), printing,
//! and classifying failures as Alembic's `CommandError` (`FAILED: ...`, exit 255) or a Python
//! exception (traceback, exit 1). Does not own: option semantics (`config`), parsing revision
//! files (`script`), graph logic (`revision`).
//!
//! Known differences from Python Alembic:
//! - env.py is not executed: `current`, `show current`, `history -i`/`-r current:` read the
//!   version table directly (see [`db`]); env.py's own output and logging are not reproduced;
//! - a revision-file syntax error is reported as `path:line:col: message` lines, not a
//!   traceback; Python tracebacks are reduced to their last line;
//! - where Alembic iterates a Python set (children in `Branches into:`, several branch labels,
//!   the rows `current` prints), we print a stable order; Alembic's depends on string hashing;
//! - `msg()`'s wrapping of `FAILED:` lines when stdin is a terminal is not reproduced (output
//!   is identical whenever stdin is not a TTY, e.g. in scripts and CI).

pub mod autogen;
pub mod cli;
pub mod compat;
pub mod db;
pub mod format;
pub mod generate;
pub mod migrate;
pub mod templates;
mod tz;

use std::cell::OnceCell;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::alembic_compat::config::{obfuscate_url_pw, Config, ConfigError, ScriptSettings};
use crate::alembic_compat::revision::{
    py_repr_str, Resolved, RevArg, RevIds, Revision, RevisionError, RevisionMap, RevisionWarning,
    ScriptError, ScriptRevisions,
};
use crate::alembic_compat::script::directory::{LoadError, Loaded};
use crate::alembic_compat::script::{load_scripts, DownRevision, Script};
use format::ScriptView;

/// How a command failed, as the Alembic CLI would report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// `alembic.util.CommandError`: `FAILED: <message>` on stdout, exit 255.
    #[error("{0}")]
    Command(String),
    /// Any other Python exception: a traceback on stderr, exit 1. `lines` is what we print
    /// (the traceback's last line, or positioned syntax errors).
    #[error("{}", .lines.join("\n"))]
    Python { lines: Vec<String> },
    /// Our own reports (`compat`) that printed everything already and exit with this status.
    #[error("exit status {0}")]
    Quiet(u8),
}

impl Failure {
    /// A Python exception `class: detail` (class as the traceback names it).
    pub fn python(class: &str, detail: &str) -> Failure {
        let line = if detail.is_empty() {
            class.to_string()
        } else {
            format!("{class}: {detail}")
        };
        Failure::Python { lines: vec![line] }
    }
}

/// `ConfigError` -> what Python raises for it.
pub fn config_failure(e: &ConfigError) -> Failure {
    let class = match e {
        ConfigError::NoConfigSection { .. }
        | ConfigError::NoScriptLocation
        | ConfigError::ScriptPathMissing(_)
        | ConfigError::Command(_) => return Failure::Command(e.to_string()),
        ConfigError::MissingSectionHeader { .. } => "configparser.MissingSectionHeaderError",
        ConfigError::Parsing { .. } => "configparser.ParsingError",
        ConfigError::DuplicateSection { .. } | ConfigError::SectionExists(_) => {
            "configparser.DuplicateSectionError"
        }
        ConfigError::DuplicateOption { .. } => "configparser.DuplicateOptionError",
        ConfigError::NoSection(_) => "configparser.NoSectionError",
        ConfigError::InterpolationMissingOption { .. } => {
            "configparser.InterpolationMissingOptionError"
        }
        ConfigError::InterpolationSyntax { .. } => "configparser.InterpolationSyntaxError",
        ConfigError::InterpolationDepth { .. } => "configparser.InterpolationDepthError",
        ConfigError::NotUtf8 { .. } => "UnicodeDecodeError",
        ConfigError::Io { .. } => "OSError",
        ConfigError::TomlSyntax { .. } => "tomllib.TOMLDecodeError",
        ConfigError::TomlFormat { .. } => "KeyError",
        ConfigError::TomlType { .. } => "TypeError",
        ConfigError::NoModule(_) => "ModuleNotFoundError",
        _ => "ValueError",
    };
    Failure::python(class, &e.to_string())
}

fn revision_error_failure(e: &RevisionError, caught: bool) -> Failure {
    if caught && e.is_revision_error() {
        return Failure::Command(e.to_string());
    }
    match e {
        RevisionError::Python { exception, detail } => Failure::python(exception, detail),
        other => Failure::python(
            &format!("alembic.script.revision.{}", other.python_class()),
            &other.to_string(),
        ),
    }
}

fn script_error_failure(e: ScriptError) -> Failure {
    match e {
        ScriptError::Command(m) => Failure::Command(m),
        ScriptError::Uncaught(e) => revision_error_failure(&e, false),
    }
}

fn load_error_failure(errors: &[LoadError]) -> Failure {
    // Python stops at the first broken file; we report them all, syntax errors as positioned
    // lines. A CommandError among them (first in load order) wins, as Python raises it at
    // that file only if no earlier file failed.
    match errors.first() {
        Some(first) if first.is_command_error() => Failure::Command(first.to_string()),
        _ => Failure::Python {
            lines: errors
                .iter()
                .map(|e| match e {
                    LoadError::Syntax(s) => s.to_string(),
                    LoadError::NoDownRevision(path) => {
                        let module = Path::new(path)
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        format!(
                            "AttributeError: module {} has no attribute 'down_revision'",
                            py_repr_str(&module)
                        )
                    }
                    other => other.to_string(),
                })
                .collect(),
        },
    }
}

/// Where command output goes: `Config.print_stdout` (silenced by `-q`) and warnings.
pub struct Ctx<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// `-q/--quiet`.
    pub quiet: bool,
    /// Our `--url` extension: replaces `sqlalchemy.url`.
    pub url_override: Option<String>,
    /// `--raiseerr`: a `CommandError` becomes a traceback, without `util.err`'s log line.
    pub raiseerr: bool,
    /// Set once a write to stdout failed (e.g. EPIPE); later output is dropped, as Alembic's
    /// `write_outstream` stops writing on `OSError`.
    broken: bool,
    warned: HashSet<String>,
}

impl<'a> Ctx<'a> {
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write, quiet: bool) -> Self {
        Ctx {
            out,
            err,
            quiet,
            url_override: None,
            raiseerr: false,
            broken: false,
            warned: HashSet::new(),
        }
    }

    /// `Config.print_stdout(text)`: the text and a newline.
    pub fn print(&mut self, text: &str) {
        if self.quiet || self.broken {
            return;
        }
        if self
            .out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
            .is_err()
        {
            self.broken = true;
        }
    }

    /// Text without a newline added (`util.status` writes its parts this way).
    pub fn print_raw(&mut self, text: &str) {
        if self.quiet || self.broken {
            return;
        }
        if self.out.write_all(text.as_bytes()).is_err() {
            self.broken = true;
        }
    }

    /// `warnings.warn(msg, UserWarning)` as Python's default filter shows it: once per
    /// distinct message and origin. `origin` is Alembic's `file:line`.
    pub fn warn(&mut self, origin: &str, msg: &str) {
        let line = format!("{origin}: UserWarning: {msg}\n");
        if self.warned.insert(line.clone()) {
            let _ = self.err.write_all(line.as_bytes());
        }
    }
}

/// The loaded revision files and the map built from them (node `i` is `scripts[i]`).
pub struct Revisions {
    pub scripts: Vec<Script>,
    pub map: RevisionMap,
}

enum BuildFailure {
    Config(ConfigError),
    Load(Vec<LoadError>),
    Map(RevisionError),
}

/// Alembic's `ScriptDirectory`, built from a [`Config`]; revisions are read on first use.
pub struct ScriptDirectory {
    pub config: Config,
    pub settings: ScriptSettings,
    pub cwd: PathBuf,
    revisions: OnceCell<Result<Revisions, BuildFailure>>,
    /// The revision files being read on another thread (see [`prefetch_revisions`]).
    ///
    /// [`prefetch_revisions`]: ScriptDirectory::prefetch_revisions
    prefetched: std::cell::RefCell<Option<Prefetch>>,
}

type Prefetch = std::thread::JoinHandle<Result<Loaded, Vec<LoadError>>>;

fn rev_ids(d: &DownRevision) -> RevIds {
    match d {
        DownRevision::None => RevIds::None,
        DownRevision::One(s) => RevIds::One(s.clone()),
        DownRevision::Many(v) => RevIds::Many(v.clone()),
    }
}

fn revision_of(s: &Script) -> Revision {
    Revision {
        revision: s.revision.clone(),
        down_revision: s
            .meta
            .down_revision
            .as_ref()
            .map(rev_ids)
            .unwrap_or_default(),
        branch_labels: s.meta.branch_labels.clone(),
        dependencies: RevIds::Many(s.meta.depends_on.clone()),
        index: 0,
    }
}

/// A prefetch the command did not need (it failed before reading the revisions) is waited
/// for: the thread may be writing the metadata cache, and the process ends without
/// unwinding once the command returns.
impl Drop for ScriptDirectory {
    fn drop(&mut self) {
        if let Some(pending) = self.prefetched.get_mut().take() {
            let _ = pending.join();
        }
    }
}

impl ScriptDirectory {
    /// `ScriptDirectory.from_config`: settings in Alembic's order, then the directory check.
    pub fn from_config(config: Config) -> Result<Self, Failure> {
        let settings = ScriptSettings::from_config(&config).map_err(|e| config_failure(&e))?;
        for w in &settings.warnings {
            // DeprecationWarnings: hidden by Python's default filters.
            tracing::debug!("DeprecationWarning: {w}");
        }
        let cwd = config.cwd.clone();
        settings
            .check_script_dir(&cwd)
            .map_err(|e| config_failure(&e))?;
        Ok(ScriptDirectory {
            config,
            settings,
            cwd,
            revisions: OnceCell::new(),
            prefetched: Default::default(),
        })
    }

    /// The script directory, absolute.
    pub fn dir(&self) -> PathBuf {
        self.settings.script_dir_absolute(&self.cwd)
    }

    fn build(&self, ctx: &mut Ctx) -> Result<Revisions, BuildFailure> {
        let t0 = std::time::Instant::now();
        // A read-ahead was started only once the version directories were known.
        let loaded = match self.prefetched.take().and_then(|p| p.join().ok()) {
            Some(loaded) => loaded,
            None => {
                let dirs = self
                    .settings
                    .version_dirs(&self.cwd)
                    .map_err(BuildFailure::Config)?;
                load_scripts(&dirs, self.settings.recursive_version_locations)
            }
        }
        .map_err(BuildFailure::Load)?;
        let t1 = std::time::Instant::now();
        for w in &loaded.warnings {
            ctx.warn("alembic/script/base.py:142", w);
        }
        let revisions: Vec<Revision> = loaded.scripts.iter().map(revision_of).collect();
        let (map, warnings) = RevisionMap::build(revisions);
        for w in warnings {
            let (origin, text) = match &w {
                RevisionWarning::Duplicate { .. } => {
                    ("alembic/script/revision.py:208", w.to_string())
                }
                RevisionWarning::MissingReference {
                    referenced_from, ..
                } => (
                    "alembic/script/revision.py:236",
                    w.message_with_doc(
                        loaded
                            .scripts
                            .get(*referenced_from)
                            .map_or("", |s| s.meta.doc()),
                    ),
                ),
                RevisionWarning::AmbiguousDowngrade => {
                    ("alembic/script/revision.py", w.to_string())
                }
            };
            ctx.warn(origin, &text);
        }
        let map = map.map_err(BuildFailure::Map)?;
        let _ = map.take_warnings();
        tracing::debug!(
            "loaded {} revision files in {:?}, built the map in {:?}",
            loaded.scripts.len(),
            t1 - t0,
            t1.elapsed()
        );
        Ok(Revisions {
            scripts: loaded.scripts,
            map,
        })
    }

    /// Starts reading the revision files on another thread, for a command that will need
    /// them after work of its own: an upgrade opens the database and reads its version
    /// rows first (0.35 ms), while the 200 files of a long history take 0.8 ms to stamp and
    /// decode. Warnings and errors are still reported where the revisions are first used,
    /// as before. Nothing is started on one core, or when the revisions are loaded already.
    pub fn prefetch_revisions(&self) {
        if self.revisions.get().is_some()
            || self.prefetched.borrow().is_some()
            || crate::alembic_compat::cores() < 2
        {
            return;
        }
        let Ok(dirs) = self.settings.version_dirs(&self.cwd) else {
            return;
        };
        let recursive = self.settings.recursive_version_locations;
        let started = crate::alembic_compat::placement::spawn_elsewhere(
            std::thread::Builder::new().name("ralembic-scripts".into()),
            move || load_scripts(&dirs, recursive),
        );
        *self.prefetched.borrow_mut() = started.ok();
    }

    /// The revisions, loading them on first call. `caught`: whether Alembic reaches the map
    /// inside `_catch_revision_errors` at this call site (then a RevisionError is a
    /// CommandError, otherwise a traceback).
    pub fn revisions(&self, ctx: &mut Ctx, caught: bool) -> Result<&Revisions, Failure> {
        if self.revisions.get().is_none() {
            let built = self.build(ctx);
            let _ = self.revisions.set(built);
        }
        match self.revisions.get() {
            Some(Ok(r)) => Ok(r),
            Some(Err(BuildFailure::Config(e))) => Err(config_failure(e)),
            Some(Err(BuildFailure::Load(errors))) => Err(load_error_failure(errors)),
            Some(Err(BuildFailure::Map(e))) => Err(revision_error_failure(e, caught)),
            None => Err(Failure::python("RuntimeError", "revision map unavailable")),
        }
    }

    /// `run_env()` for the read-only commands: reads env.py's version-table settings and the
    /// database's current heads.
    /// The version rows, as `MigrationContext.get_current_heads()` reads them after env.py
    /// configured the context (which logs its start-up lines when env.py set up logging).
    pub fn current_heads(&self, ctx: &mut Ctx) -> Result<Vec<String>, Failure> {
        let heads = self.read_current_heads(ctx)?;
        let (_, mut log) = migrate::environment(self, false, None)?;
        log.context_created(false);
        let _ = ctx.err.write_all(log.take().as_bytes());
        Ok(heads)
    }

    fn read_current_heads(&self, ctx: &Ctx) -> Result<Vec<String>, Failure> {
        let env_path = self.dir().join("env.py");
        let source = match std::fs::read(&env_path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => {
                return Err(Failure::python(
                    "ImportError",
                    &format!("Can't find Python file {}", env_path.display()),
                ))
            }
        };
        let vt = db::version_table_from_env(&env_path.to_string_lossy(), &source);
        let url = self.url(ctx)?;
        db::current_heads(&url, &self.cwd, &vt)
    }

    fn url(&self, ctx: &Ctx) -> Result<String, Failure> {
        match self.config.sqlalchemy_url(ctx.url_override.as_deref()) {
            Ok(Some(u)) => Ok(u),
            // engine_from_config(section, prefix="sqlalchemy.") without the key
            Ok(None) => Err(Failure::python("KeyError", "'url'")),
            Err(e) => Err(config_failure(&e)),
        }
    }
}

impl Revisions {
    /// The `Script` view of node `i` for formatting.
    pub fn view(&self, i: usize, current: bool) -> ScriptView<'_> {
        let node = &self.map.nodes()[i];
        let script = &self.scripts[i];
        ScriptView {
            revision: node.id(),
            down_revision: node.revision.down_revision.as_slice(),
            dependencies: node.revision.dependencies.as_slice(),
            branch_labels: node.branch_labels().iter().map(String::as_str).collect(),
            nextrev: node.nextrev().iter().map(|&c| self.map.id(c)).collect(),
            is_head: node.is_head(),
            is_real_head: node.is_real_head(),
            is_branch_point: node.is_branch_point(),
            is_merge_point: node.is_merge_point(),
            path: script.path.to_str().unwrap_or_default(),
            longdoc: &script.meta.longdoc,
            current,
        }
    }

    fn scripts_of(&self, resolved: &[Resolved], attr: &str) -> Result<Vec<usize>, Failure> {
        resolved
            .iter()
            .map(|r| match r {
                Resolved::Rev(i) => Ok(*i),
                Resolved::Base => Err(Failure::python(
                    "AttributeError",
                    &format!("'str' object has no attribute '{attr}'"),
                )),
                Resolved::Absent => Err(Failure::python(
                    "AttributeError",
                    &format!("'NoneType' object has no attribute '{attr}'"),
                )),
            })
            .collect()
    }
}

fn ids_arg(ids: &[String]) -> RevArg {
    RevArg::Seq(ids.iter().cloned().map(Some).collect())
}

// ------------------------------------------------------------------------------- commands

/// `alembic heads [-v] [--resolve-dependencies]`.
pub fn heads(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    verbose: bool,
    resolve_dependencies: bool,
) -> Result<(), Failure> {
    let revs = if resolve_dependencies {
        let r = sd.revisions(ctx, true)?;
        (
            r,
            ScriptRevisions::new(&r.map).get_revisions(&RevArg::from("heads")),
        )
    } else {
        // `script.get_heads()` reaches the map outside `_catch_revision_errors`.
        let r = sd.revisions(ctx, false)?;
        let heads = ScriptRevisions::new(&r.map).get_heads(false);
        (
            r,
            ScriptRevisions::new(&r.map).get_revisions(&ids_arg(&heads)),
        )
    };
    let (r, resolved) = revs;
    let idx = r.scripts_of(&resolved.map_err(script_error_failure)?, "cmd_format")?;
    for i in idx {
        let line = r
            .view(i, false)
            .cmd_format(verbose, true, false, false, false);
        ctx.print(&line);
    }
    Ok(())
}

/// `alembic branches [-v]`.
pub fn branches(sd: &ScriptDirectory, ctx: &mut Ctx, verbose: bool) -> Result<(), Failure> {
    let r = sd.revisions(ctx, true)?;
    let walked = ScriptRevisions::new(&r.map)
        .walk_revisions(&RevArg::from("base"), &RevArg::from("heads"))
        .map_err(script_error_failure)?;
    for i in walked {
        let node = &r.map.nodes()[i];
        if !node.is_branch_point() {
            continue;
        }
        let head = r
            .view(i, false)
            .cmd_format(verbose, true, false, false, true);
        let pad = " ".repeat(node.id().chars().count());
        let children: Vec<String> = node
            .nextrev()
            .iter()
            .map(|&c| {
                // script.get_revision(rev): the id resolves to the last script loaded with it
                let c = r.map.lookup(r.map.id(c)).unwrap_or(c);
                format!(
                    "{pad} -> {}",
                    r.view(c, false)
                        .cmd_format(false, true, verbose, false, true)
                )
            })
            .collect();
        ctx.print(&format!("{head}\n{}\n", children.join("\n")));
    }
    Ok(())
}

/// Python's `str.strip()` with no argument.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// `rev_range.strip().split(":")` unpacked into two names.
fn split_range(rev_range: &str) -> Result<(String, String), Failure> {
    if !rev_range.contains(':') {
        return Err(Failure::Command(
            "History range requires [start]:[end], [start]:, or :[end]".into(),
        ));
    }
    let parts: Vec<&str> = py_strip(rev_range).split(':').collect();
    match parts.as_slice() {
        [a, b] => Ok((a.to_string(), b.to_string())),
        _ => Err(Failure::python(
            "ValueError",
            "too many values to unpack (expected 2)",
        )),
    }
}

/// `alembic history [-r RANGE] [-v] [-i]`.
pub fn history(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    rev_range: Option<&str>,
    verbose: bool,
    indicate_current: bool,
) -> Result<(), Failure> {
    let (base, head) = match rev_range {
        Some(r) => {
            let (b, h) = split_range(r)?;
            (Some(b), Some(h))
        }
        None => (None, None),
    };
    let environment = sd
        .config
        .revision_environment()
        .map_err(|e| config_failure(&e))?
        || indicate_current;
    let is_current = |x: &Option<String>| x.as_deref() == Some("current");
    let name_or = |x: &Option<String>, default: &str| match x.as_deref() {
        Some(s) if !s.is_empty() => RevArg::from(s),
        _ => RevArg::from(default),
    };
    let (base_arg, head_arg, currents) = if is_current(&base) || is_current(&head) || environment {
        let rev = sd.current_heads(ctx)?;
        let rev_or = |default: &str| {
            if rev.is_empty() {
                RevArg::from(default)
            } else {
                ids_arg(&rev)
            }
        };
        if is_current(&head) {
            (name_or(&base, "base"), rev_or("heads"), rev.clone())
        } else if is_current(&base) {
            (rev_or("base"), name_or(&head, "heads"), rev.clone())
        } else {
            (name_or(&base, "base"), name_or(&head, "heads"), rev.clone())
        }
    } else {
        (name_or(&base, "base"), name_or(&head, "heads"), Vec::new())
    };
    let r = sd.revisions(ctx, true)?;
    let walked = ScriptRevisions::new(&r.map)
        .walk_revisions(&base_arg, &head_arg)
        .map_err(script_error_failure)?;
    let currents: HashSet<&str> = currents.iter().map(String::as_str).collect();
    for i in walked {
        let current = indicate_current && currents.contains(r.map.id(i));
        let line = r
            .view(i, current)
            .cmd_format(verbose, true, true, true, true);
        ctx.print(&line);
    }
    Ok(())
}

/// `alembic show REV` (`current` reads the database).
pub fn show(sd: &ScriptDirectory, ctx: &mut Ctx, rev: &str) -> Result<(), Failure> {
    let arg = if rev == "current" {
        ids_arg(&sd.current_heads(ctx)?)
    } else {
        RevArg::from(rev)
    };
    let r = sd.revisions(ctx, true)?;
    let resolved = ScriptRevisions::new(&r.map)
        .get_revisions(&arg)
        .map_err(script_error_failure)?;
    for i in r.scripts_of(&resolved, "log_entry")? {
        let entry = r.view(i, false).log_entry();
        ctx.print(&entry);
    }
    Ok(())
}

/// `alembic current [-v] [--check-heads]`.
pub fn current(
    sd: &ScriptDirectory,
    ctx: &mut Ctx,
    verbose: bool,
    check_heads: bool,
) -> Result<(), Failure> {
    let rev = sd.current_heads(ctx)?;
    if verbose {
        let url = sd.url(ctx)?;
        let shown = obfuscate_url_pw(&url)
            .map_err(|e| Failure::python("sqlalchemy.exc.ArgumentError", &e.to_string()))?;
        ctx.print(&format!("Current revision(s) for {shown}:"));
    }
    if check_heads {
        // `script.get_heads()` is outside `_catch_revision_errors`.
        let r = sd.revisions(ctx, false)?;
        let heads: HashSet<String> = ScriptRevisions::new(&r.map)
            .get_heads(false)
            .into_iter()
            .collect();
        let db: HashSet<String> = rev.iter().cloned().collect();
        if heads != db {
            return Err(Failure::Command(
                "Database is not on all head revisions".into(),
            ));
        }
    }
    let r = sd.revisions(ctx, true)?;
    let all = ScriptRevisions::new(&r.map)
        .get_all_current(&ids_arg(&rev))
        .map_err(script_error_failure)?;
    for i in all {
        let line = r
            .view(i, false)
            .cmd_format(verbose, false, false, false, true);
        ctx.print(&line);
    }
    Ok(())
}

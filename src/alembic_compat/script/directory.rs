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
    name.ends_with(".py")
        && !name.starts_with(".#")
        && !name.starts_with("__init__")
        && !name.contains('\n')
}

/// Alembic's `_legacy_rev` (`([a-f0-9]+)\.py$`): the revision id of a file named after it.
fn legacy_revision(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".py")?;
    let ok = !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(stem)
}

/// One loaded revision file: where it is and what Alembic reads from its module. The body
/// is parsed again on demand ([`Script::parse`]) by the commands that run it.
#[derive(Debug, Clone)]
pub struct Script {
    /// The resolved (real) path, as Alembic stores and prints it.
    pub path: PathBuf,
    pub revision: String,
    pub meta: ScriptMeta,
    /// The file's size and modification time when it was listed, which key its entry in
    /// the body cache ([`super::body_pack`]).
    pub(crate) stamp: Option<FileStamp>,
}

impl Script {
    /// Reads and parses the file's whole module.
    pub fn parse(&self) -> Result<(String, Module), LoadError> {
        let shown = self.path.display().to_string();
        let source = read_source(&self.path)?;
        let module = super::ast_cache::parse_cached(&shown, &source).map_err(LoadError::Syntax)?;
        Ok((source, module))
    }
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

type Listed = (PathBuf, Option<FileStamp>);

/// A listing and how it was made: with the stamps of the directories read, when they allow
/// the next run to reuse it (see [`Listing`]).
struct Found {
    files: Vec<Listed>,
    warnings: Vec<String>,
    reusable: Option<Listing>,
}

/// Lists the revision files of `locations` in Alembic's order, stamped, without reading them.
fn list_with_stamps(locations: &[PathBuf], recursive: bool) -> Found {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    // Keyed by the path's bytes: hashing a `Path` walks its components, which shows on
    // large histories.
    let mut seen = rustc_hash::FxHashSet::<std::ffi::OsString>::default();
    let existing: Vec<&PathBuf> = locations.iter().filter(|l| l.exists()).collect();
    let listed_at = std::time::SystemTime::now();
    let mut dirs = Vec::new();
    let mut any_link = false;
    for loc in &existing {
        let mut found = Vec::new();
        // Resolve the directory once; `walk` resolves only entries that are links themselves,
        // which keeps this to one system call per file on large histories.
        let loc = std::fs::canonicalize(loc).unwrap_or_else(|_| (*loc).clone());
        let through_links = walk(&loc, recursive, &mut found, &mut dirs);
        any_link |= through_links;
        // A file can only be met twice through a link or a second location; sparing the
        // set otherwise spares a large history one allocation and hash per file.
        let dedupe = through_links || locations.len() > 1;
        files.reserve(found.len());
        for (real, stamp) in found {
            if dedupe && !seen.insert(real.clone().into_os_string()) {
                warnings.push(format!(
                    "File {} loaded twice! ignoring. Please ensure version_locations is unique.",
                    real.display()
                ));
                continue;
            }
            let name_ok = split_dir_name(&real)
                .and_then(|(_, n)| n.to_str())
                .is_some_and(is_revision_file_name);
            if name_ok {
                files.push((real, stamp));
            }
        }
    }
    stamp_all(&mut files);
    // Links can change their targets and a second location can shadow the first without
    // either directory changing, so only one location read without links is reused.
    let reusable = (locations.len() == 1 && existing.len() == 1 && !any_link)
        .then(|| Listing::settled(recursive, dirs, listed_at))
        .flatten();
    Found {
        files,
        warnings,
        reusable,
    }
}

/// A directory's identity and last change. Adding, removing or renaming an entry sets its
/// change time (and modification time) to the current time, so while the stamp holds, the
/// directory lists the same names (what git's untracked cache relies on too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct DirStamp {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl DirStamp {
    #[cfg(unix)]
    fn of(dir: &Path) -> Option<DirStamp> {
        let st = rustix::fs::stat(dir).ok()?;
        Some(DirStamp {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
            ctime_ns: st.st_ctime as i128 * 1_000_000_000 + st.st_ctime_nsec as i128,
        })
    }

    #[cfg(not(unix))]
    fn of(_dir: &Path) -> Option<DirStamp> {
        None
    }
}

/// The directories a listing read, each stamped before it was read. A later run whose
/// directories all show the same stamps lists the same files, so it takes the names from
/// the cache instead of reading the directories again (on 10,000 revisions, reading the
/// directory is a quarter of a warm `heads`). Every file is still stamped on every run:
/// an edit in place changes the file, not its directory.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Listing {
    recursive: bool,
    dirs: Vec<(PathBuf, DirStamp)>,
}

/// How long after its last change a directory's stamp is trusted. Timestamps come from a
/// coarse clock (a few milliseconds; whole seconds on some filesystems), so a change made
/// within the same tick as an earlier one can leave the stamp as it was; a change after a
/// listing made this long after the last one always moves it.
const SETTLE_NS: i128 = 2_000_000_000;

impl Listing {
    /// The listing of `dirs` (stamped before `listed_at`), if every one had settled.
    fn settled(
        recursive: bool,
        dirs: Vec<(PathBuf, Option<DirStamp>)>,
        listed_at: std::time::SystemTime,
    ) -> Option<Listing> {
        let now_ns = listed_at
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos() as i128;
        let dirs = dirs
            .into_iter()
            .map(|(d, st)| {
                st.filter(|st| now_ns - st.ctime_ns.max(st.mtime_ns) > SETTLE_NS)
                    .map(|st| (d, st))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Listing { recursive, dirs })
    }

    /// True when a listing of the same kind now would read the same names.
    fn still_holds(&self, recursive: bool) -> bool {
        self.recursive == recursive
            && !self.dirs.is_empty()
            && self
                .dirs
                .iter()
                .all(|(d, st)| DirStamp::of(d).as_ref() == Some(st))
    }
}

/// Stats the files on a few threads: on large histories one `stat` per file is most of a
/// warm run's time, and it parallelises well. Each stat is relative to the file's open
/// directory, which spares the kernel a full path walk per file (about half the cost).
fn stamp_all(files: &mut [Listed]) {
    fn stamp_part(part: &mut [Listed]) {
        let mut dir = DirStat::default();
        for (path, stamp) in part {
            *stamp = dir.stamp(path);
        }
    }
    // Small directories: no thread to spawn.
    if files.len() < 256 || crate::alembic_compat::cores() < 2 {
        return stamp_part(files);
    }
    let chunk = files
        .len()
        .div_ceil(crate::alembic_compat::cores().min(4))
        .max(1);
    std::thread::scope(|scope| {
        for part in files.chunks_mut(chunk) {
            scope.spawn(move || stamp_part(part));
        }
    });
}

/// A listed file's directory and name. On unix the path is split at its last '/' by hand:
/// `Path::parent` and `file_name` parse components, which showed on large histories, and
/// listed paths are joined from a directory and a name, so the split is exact.
fn split_dir_name(path: &Path) -> Option<(&Path, &std::ffi::OsStr)> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        match bytes.iter().rposition(|&b| b == b'/') {
            Some(cut) if cut > 0 && cut + 1 < bytes.len() => Some((
                Path::new(std::ffi::OsStr::from_bytes(&bytes[..cut])),
                std::ffi::OsStr::from_bytes(&bytes[cut + 1..]),
            )),
            _ => path.parent().zip(path.file_name()),
        }
    }
    #[cfg(not(unix))]
    {
        path.parent().zip(path.file_name())
    }
}

/// Stats files through the last directory opened: files arrive grouped by directory.
#[derive(Default)]
struct DirStat {
    #[cfg(unix)]
    open: Option<(PathBuf, Option<rustix::fd::OwnedFd>)>,
}

impl DirStat {
    #[cfg(unix)]
    fn stamp(&mut self, path: &Path) -> Option<FileStamp> {
        use rustix::fs::{AtFlags, Mode, OFlags};
        let Some((parent, name)) = split_dir_name(path) else {
            return FileStamp::of_path(path);
        };
        let same = matches!(&self.open, Some((p, _)) if p.as_os_str() == parent.as_os_str());
        if !same {
            let fd = rustix::fs::open(
                parent,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok();
            self.open = Some((parent.to_path_buf(), fd));
        }
        match &self.open {
            Some((_, Some(fd))) => {
                let st = rustix::fs::statat(fd, name, AtFlags::empty()).ok()?;
                Some(FileStamp {
                    size: st.st_size as u64,
                    mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
                })
            }
            _ => FileStamp::of_path(path),
        }
    }

    #[cfg(not(unix))]
    fn stamp(&mut self, path: &Path) -> Option<FileStamp> {
        FileStamp::of_path(path)
    }
}

/// `os.walk(top_down=True)` order: a directory's files (sorted), then each sorted
/// sub-directory in turn; `__pycache__` directories contribute nothing. True when an entry
/// was a link (resolved to its target). Each directory read goes to `dirs` with its stamp,
/// taken before it is read, so a change made while it is read moves the stamp.
fn walk(
    dir: &Path,
    recursive: bool,
    out: &mut Vec<Listed>,
    dirs_read: &mut Vec<(PathBuf, Option<DirStamp>)>,
) -> bool {
    let stamp = DirStamp::of(dir);
    let Ok(entries) = std::fs::read_dir(dir) else {
        // It may become readable (chmod on itself) without its parent changing: a listing
        // that met it is never reused.
        dirs_read.push((dir.to_path_buf(), None));
        return false;
    };
    dirs_read.push((dir.to_path_buf(), stamp));
    let mut through_links = false;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(ft) = entry.file_type() else { continue };
        let path = dir.join(&name);
        // os.walk's is_dir() follows links, and Alembic resolves every file path.
        let (is_dir, real) = if ft.is_symlink() {
            through_links = true;
            (
                path.is_dir(),
                std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone()),
            )
        } else {
            (ft.is_dir(), path)
        };
        if is_dir {
            dirs.push((name, real));
        } else {
            // Stamped later, only if the name is a revision file's (see `stamp_all`).
            files.push((name, (real, None)));
        }
    }
    let is_cache = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("__pycache__"));
    if !is_cache {
        files.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(files.into_iter().map(|(_, listed)| listed));
    }
    if recursive {
        dirs.sort();
        for (_, d) in dirs {
            through_links |= walk(&d, recursive, out, dirs_read);
        }
    }
    through_links
}

/// Loads every revision file of `locations`. All broken files are reported, not just the
/// first, in load order.
///
/// Parsing every file is the slow part, so what each file yields is kept in a
/// [`MetaCache`] (the role Python's `__pycache__` plays for Alembic): a file whose size and
/// modification time are unchanged is not parsed again.
pub fn load_scripts(locations: &[PathBuf], recursive: bool) -> Result<Loaded, Vec<LoadError>> {
    let mut cache = MetaCache::open(locations);
    let reused = cache.as_mut().and_then(|c| c.reuse_listing(recursive));
    let (found, entries) = std::thread::scope(|scope| {
        // Decoding the cached metadata overlaps listing and stamping, which are most of a
        // warm run; a small cache decodes faster than a thread starts.
        let body = cache.as_ref().map(MetaCache::body);
        let (small, large) = match body {
            Some(b) if b.len() < 16 * 1024 => (Some(decode_entries(b)), None),
            Some(b) => (None, Some(scope.spawn(move || decode_entries(b)))),
            None => (None, None),
        };
        let found = match reused {
            Some((paths, listing)) => {
                let mut files: Vec<Listed> = paths.into_iter().map(|p| (p, None)).collect();
                stamp_all(&mut files);
                Found {
                    files,
                    warnings: Vec::new(),
                    reusable: Some(listing),
                }
            }
            None => list_with_stamps(locations, recursive),
        };
        (found, small.or_else(|| large.and_then(|h| h.join().ok())))
    });
    if let (Some(cache), Some(entries)) = (cache.as_mut(), entries) {
        cache.entries = entries;
    }
    let Found {
        files: listed,
        warnings,
        reusable,
    } = found;
    let count = listed.len();
    let mut results: Vec<Option<Result<Script, LoadError>>> = Vec::with_capacity(count);
    let mut stamps = Vec::with_capacity(count);
    // Indices and paths of the files the cache could not answer for.
    let (mut to_parse, mut paths) = (Vec::new(), Vec::new());
    for (i, (path, stamp)) in listed.into_iter().enumerate() {
        stamps.push(stamp);
        let cached = match (stamp, cache.as_mut()) {
            (Some(stamp), Some(cache)) => cache.take(i, path, stamp),
            _ => Err(path),
        };
        match cached {
            Ok(script) => results.push(Some(Ok(script))),
            Err(path) => {
                results.push(None);
                to_parse.push(i);
                paths.push(path);
            }
        }
    }
    if !to_parse.is_empty() {
        for (i, r) in to_parse.iter().zip(load_parallel(&paths)) {
            results[*i] = Some(r.map(|mut s| {
                s.stamp = stamps[*i];
                s
            }));
        }
    }
    if let Some(mut cache) = cache {
        if !to_parse.is_empty() || reusable != cache.head.listing {
            // Every listed file, in order; those that failed keep their place without an
            // entry, so the listing can be reused and their errors are always reported
            // afresh.
            let mut parsed = to_parse.iter().copied().zip(&paths).peekable();
            let entries = results
                .iter()
                .zip(&stamps)
                .enumerate()
                .map(|(i, (r, st))| {
                    let parsed_path = parsed.next_if(|(at, _)| *at == i).map(|(_, p)| p);
                    match (r, st) {
                        (Some(Ok(s)), Some(stamp)) => (
                            s.path.clone(),
                            Some(CachedScript {
                                stamp: *stamp,
                                revision: s.revision.clone(),
                                meta: s.meta.clone(),
                            }),
                        ),
                        (Some(Ok(s)), None) => (s.path.clone(), None),
                        _ => (parsed_path.cloned().unwrap_or_default(), None),
                    }
                })
                .collect();
            cache.store(reusable, entries);
        }
    }
    let results = results.into_iter().flatten();
    let mut scripts = Vec::with_capacity(count);
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
    let workers = crate::alembic_compat::cores().min(8);
    // Small directories are faster on one thread than the cost of spawning more.
    let workers = if files.len() < 64 { 1 } else { workers };
    let chunk = files.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                std::thread::Builder::new()
                    .stack_size(PARSER_STACK_SIZE)
                    .spawn_scoped(scope, move || {
                        part.iter().map(|p| load_one(p)).collect::<Vec<_>>()
                    })
            })
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for (h, part) in handles.into_iter().zip(files.chunks(chunk)) {
            match h
                .map_err(|e| e.to_string())
                .and_then(|h| h.join().map_err(|_| "parser thread panicked".to_string()))
            {
                Ok(results) => out.extend(results),
                Err(message) => out.extend(part.iter().map(|p| {
                    Err(LoadError::Io {
                        path: p.display().to_string(),
                        message: message.clone(),
                    })
                })),
            }
        }
        out
    })
}

fn read_source(path: &Path) -> Result<String, LoadError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| LoadError::Io {
        path: shown,
        message: format!(
            "(unicode error) 'utf-8' codec can't decode byte at offset {}",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Reads one revision file as `Script._from_path` does.
pub fn load_one(path: &Path) -> Result<Script, LoadError> {
    let shown = path.display().to_string();
    let source = read_source(path)?;
    let module = parse_module(&shown, &source).map_err(LoadError::Syntax)?;
    let meta = ScriptMeta::from_module(&shown, &source, &module).map_err(LoadError::Syntax)?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
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
    Ok(Script {
        path: path.to_path_buf(),
        revision,
        meta,
        stamp: None,
    })
}

/// Identifies one version of a file's content cheaply, as Python's bytecode cache does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FileStamp {
    size: u64,
    mtime_ns: i128,
}

impl FileStamp {
    /// True once the file has gone unchanged for longer than a clock tick can hide: an edit
    /// made within the tick of an earlier one can leave size and time as they were.
    pub(crate) fn settled(&self) -> bool {
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        now_ns - self.mtime_ns > SETTLE_NS
    }

    fn of_path(path: &Path) -> Option<FileStamp> {
        let md = std::fs::metadata(path).ok()?;
        let mtime = md.modified().ok()?;
        let mtime_ns = match mtime.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Some(FileStamp {
            size: md.len(),
            mtime_ns,
        })
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedScript {
    stamp: FileStamp,
    revision: String,
    meta: ScriptMeta,
}

/// The first part of a cache file, decoded before the rest: it says whether the listing
/// can be reused, and the files can be stamped while the entries are decoded.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct CacheHead {
    /// Bumped whenever parsing or metadata rules change, so old entries are never trusted.
    format: String,
    /// How `files` was listed, when the next run may reuse it.
    listing: Option<Listing>,
    /// Every listed file, in load order: the next run looks each up by position first.
    files: Vec<PathBuf>,
}

/// What parsing each revision file yielded, kept between runs in the user's cache directory
/// (`$RALEMBIC_CACHE_DIR`, else `$XDG_CACHE_HOME/ralembic`, else `~/.cache/ralembic`; set
/// `RALEMBIC_CACHE_DIR=off` to disable), one file per set of version locations. Only files
/// that parsed cleanly have an entry, so errors are always reported afresh.
pub struct MetaCache {
    path: PathBuf,
    head: CacheHead,
    /// The file as read; from `body_at` on, the encoded entries (one per file of the head,
    /// `None` for a file that failed), decoded on another thread.
    bytes: Vec<u8>,
    body_at: usize,
    entries: Vec<Option<CachedScript>>,
    /// The listing was taken from the head: positions match without comparing paths.
    aligned: bool,
    index: std::cell::OnceCell<rustc_hash::FxHashMap<std::ffi::OsString, usize>>,
}

/// Metadata cache files kept at most, one per set of version locations; past that the least
/// recently written go first (a project whose cache goes then pays one full parse).
const MAX_CACHE_FILES: usize = 512;

/// Removes the least recently written of our cache files in `dir` once there are more than
/// [`MAX_CACHE_FILES`].
pub(super) fn prune_cache_files(dir: &Path) {
    super::ast_cache::prune_oldest(dir, MAX_CACHE_FILES, is_cache_file_name);
}

/// Our cache files' names (this version's and older formats'): the cache directory may be one
/// the user shares with other files, which are never touched.
fn is_cache_file_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((stem, "meta" | "json" | "bodies")) => {
            stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_hexdigit())
        }
        _ => false,
    }
}

fn decode_entries(body: &[u8]) -> Vec<Option<CachedScript>> {
    postcard::from_bytes(body).unwrap_or_default()
}

/// The code that extracted an entry is part of its format.
const CACHE_FORMAT: &str = concat!("ralembic-meta-5-", code_fingerprint!());

impl MetaCache {
    pub(crate) fn dir() -> Option<PathBuf> {
        match std::env::var_os("RALEMBIC_CACHE_DIR") {
            Some(v) if v == "off" => None,
            Some(v) => Some(PathBuf::from(v)),
            None => std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|d| d.join("ralembic")),
        }
    }

    fn open(locations: &[PathBuf]) -> Option<MetaCache> {
        use std::hash::{Hash, Hasher};
        let dir = Self::dir()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for l in locations {
            std::fs::canonicalize(l)
                .unwrap_or_else(|_| l.clone())
                .hash(&mut h);
        }
        let path = dir.join(format!("{:016x}.meta", h.finish()));
        let bytes = std::fs::read(&path).unwrap_or_default();
        let (head, body_at) = match postcard::take_from_bytes::<CacheHead>(&bytes) {
            Ok((head, rest)) if head.format == CACHE_FORMAT => (head, bytes.len() - rest.len()),
            _ => (CacheHead::default(), bytes.len()),
        };
        Some(MetaCache {
            path,
            head,
            bytes,
            body_at,
            entries: Vec::new(),
            aligned: false,
            index: std::cell::OnceCell::new(),
        })
    }

    /// The files listed last time, if their directories have not changed since.
    fn reuse_listing(&mut self, recursive: bool) -> Option<(Vec<PathBuf>, Listing)> {
        let listing = self.head.listing.as_ref()?;
        if !listing.still_holds(recursive) {
            return None;
        }
        tracing::debug!("listing of {} files reused", self.head.files.len());
        self.aligned = true;
        Some((std::mem::take(&mut self.head.files), listing.clone()))
    }

    fn body(&self) -> &[u8] {
        self.bytes.get(self.body_at..).unwrap_or_default()
    }

    /// The cached script of `path` if its stamp still matches (each entry is handed out
    /// once), else `path` back.
    fn take(
        &mut self,
        position: usize,
        path: PathBuf,
        stamp: FileStamp,
    ) -> Result<Script, PathBuf> {
        let at = match self.head.files.get(position) {
            _ if self.aligned => Some(position),
            Some(p) if p.as_os_str() == path.as_os_str() => Some(position),
            // Files were added or removed since: fall back to an index, built once.
            _ => {
                let index = self.index.get_or_init(|| {
                    self.head
                        .files
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (p.clone().into_os_string(), i))
                        .collect()
                });
                index.get(path.as_os_str()).copied()
            }
        };
        let fresh = at
            .and_then(|at| self.entries.get_mut(at))
            .and_then(|slot| slot.take_if(|c| c.stamp == stamp));
        match fresh {
            Some(c) => Ok(Script {
                path,
                revision: c.revision,
                meta: c.meta,
                stamp: Some(stamp),
            }),
            None => Err(path),
        }
    }

    /// Replaces the cache with `files` (every listed file, in order, with what it yielded)
    /// and how they were listed; failures only cost the next run a re-parse.
    fn store(&mut self, listing: Option<Listing>, files: Vec<(PathBuf, Option<CachedScript>)>) {
        if self.bytes.is_empty() {
            // A location seen for the first time (every temporary project of a test suite
            // is one): keep the number of cache files bounded.
            if let Some(dir) = self.path.parent() {
                prune_cache_files(dir);
            }
        }
        let (files, entries): (Vec<PathBuf>, Vec<Option<CachedScript>>) = files.into_iter().unzip();
        let head = CacheHead {
            format: CACHE_FORMAT.to_string(),
            listing,
            files,
        };
        let bytes = postcard::to_stdvec(&head).and_then(|mut bytes| {
            bytes.extend(postcard::to_stdvec(&entries)?);
            Ok(bytes)
        });
        let written = bytes
            .map_err(std::io::Error::other)
            .and_then(|bytes| super::ast_cache::write_replacing(&self.path, &bytes));
        if let Err(e) = written {
            tracing::debug!(
                "could not write the metadata cache {}: {e}",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_rule_is_alembics() {
        for ok in [
            "a.py",
            "1_x.py",
            ".hidden.py",
            "__init_x.py".trim_start_matches('_'),
            "x.y.py",
        ] {
            assert!(is_revision_file_name(ok), "{ok}");
        }
        for bad in [
            "__init__.py",
            "__init__x.py",
            ".#lock.py",
            "a.pyc",
            "a.txt",
            "apy",
        ] {
            assert!(!is_revision_file_name(bad), "{bad}");
        }
    }

    /// A listing is reused only while no directory it read has changed, and only once each
    /// had settled: a change in the same clock tick as the listing could leave no trace.
    #[cfg(unix)]
    #[test]
    fn listings_are_reused_only_while_their_directories_hold() {
        let dir = tempfile::tempdir().expect("temp dir");
        let versions = std::fs::canonicalize(dir.path()).expect("real path");
        let sub = versions.join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(versions.join("a_1.py"), "x = 1\n").expect("write");
        std::fs::write(sub.join("b_2.py"), "x = 1\n").expect("write");
        // The changes below must fall in a later tick of the filesystem's clock than these,
        // as they would after the settling time that `later` stands for.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3);
        let list = |recursive: bool| {
            let mut files = Vec::new();
            let mut dirs = Vec::new();
            walk(&versions, recursive, &mut files, &mut dirs);
            (files.len(), dirs)
        };

        let (_, dirs) = list(true);
        assert!(
            Listing::settled(true, dirs, std::time::SystemTime::now()).is_none(),
            "directories changed just now are not trusted yet"
        );

        let (count, dirs) = list(true);
        assert_eq!((count, dirs.len()), (2, 2));
        let listing = Listing::settled(true, dirs, later).expect("settled by then");
        assert!(listing.still_holds(true));
        assert!(!listing.still_holds(false), "listed recursively");
        // A file added in a sub-directory changes only that directory.
        std::fs::write(sub.join("c_3.py"), "x = 1\n").expect("write");
        assert!(!listing.still_holds(true));

        let (_, dirs) = list(false);
        let listing = Listing::settled(false, dirs, later).expect("settled by then");
        assert!(listing.still_holds(false));
        // Removing a file moves the stamp on, even if the names end up as they were.
        std::fs::write(versions.join("d_4.py"), "x = 1\n").expect("write");
        std::fs::remove_file(versions.join("d_4.py")).expect("remove");
        assert!(!listing.still_holds(false));
    }

    /// The cache directory keeps a bounded number of metadata files, dropping the oldest, and
    /// never touches a file that is not one of ours.
    #[test]
    fn old_cache_files_are_pruned_and_others_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for i in 0..MAX_CACHE_FILES + 10 {
            let path = dir.path().join(format!("{i:016x}.meta"));
            std::fs::write(&path, b"x").expect("write");
            if i < 20 {
                let f = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .expect("open");
                f.set_modified(old).expect("mtime");
            }
        }
        for other in ["notes.txt", "0123456789abcdef.meta.bak", "ast", "abc.meta"] {
            std::fs::write(dir.path().join(other), b"x").expect("write");
        }
        super::super::ast_cache::prune_oldest(dir.path(), MAX_CACHE_FILES, is_cache_file_name);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        let ours = left.iter().filter(|n| is_cache_file_name(n)).count();
        assert_eq!(ours, MAX_CACHE_FILES * 3 / 4);
        assert!(
            !left.contains(&format!("{:016x}.meta", 0)),
            "the oldest go first"
        );
        for other in ["notes.txt", "0123456789abcdef.meta.bak", "ast", "abc.meta"] {
            assert!(left.iter().any(|n| n == other), "{other} was removed");
        }
    }

    /// Alembic loads each real file once: a location given twice, or a link to a file
    /// listed already, gives its "loaded twice" warning (naming the real path) instead.
    #[cfg(unix)]
    #[test]
    fn files_met_twice_are_loaded_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let versions = std::fs::canonicalize(dir.path()).expect("real path");
        for name in ["a_1.py", "b_2.py"] {
            std::fs::write(versions.join(name), "x = 1\n").expect("write");
        }
        let names = |files: &[Listed]| -> Vec<String> {
            files
                .iter()
                .map(|(p, st)| {
                    assert!(st.is_some(), "{} is stamped", p.display());
                    p.strip_prefix(&versions)
                        .expect("inside")
                        .display()
                        .to_string()
                })
                .collect()
        };

        let found = list_with_stamps(std::slice::from_ref(&versions), false);
        assert_eq!(names(&found.files), ["a_1.py", "b_2.py"]);
        assert!(found.warnings.is_empty());

        let Found {
            files,
            warnings,
            reusable,
        } = list_with_stamps(&[versions.clone(), versions.clone()], false);
        assert!(reusable.is_none(), "a second location can shadow the first");
        assert_eq!(names(&files), ["a_1.py", "b_2.py"]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with(&format!(
            "File {} loaded twice!",
            versions.join("a_1.py").display()
        )));

        std::os::unix::fs::symlink(versions.join("a_1.py"), versions.join("c_3.py"))
            .expect("symlink");
        let found = list_with_stamps(std::slice::from_ref(&versions), false);
        assert!(found.reusable.is_none(), "a link can change its target");
        assert_eq!(names(&found.files), ["a_1.py", "b_2.py"]);
        assert_eq!(found.warnings.len(), 1, "{:?}", found.warnings);
    }
}

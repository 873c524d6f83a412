//! Loading revision files fast enough for read-only commands on big histories.
//!
//! The full loader (`script::load_scripts`) parses every file completely with the pest grammar
//! (~0.6 ms of CPU per typical file: 6 s for 10,000 revisions) and canonicalizes every path.
//! Python Alembic also compiles every file (and caches the bytecode in `__pycache__`), so a
//! syntax error anywhere in a revision file fails every command; we keep that behaviour and,
//! like Python, avoid redoing the work for files that have not changed:
//!
//! - the listing follows `script::directory::list_revision_files` exactly (same order, same
//!   name filter, same "loaded twice" warning) but resolves each *directory* once and only
//!   resolves files that are symlinks, instead of `canonicalize` on every file;
//! - a file that the full parser read without error is recorded, with the metadata it yielded,
//!   in a per-project cache under `$XDG_CACHE_HOME/ralembic/` (or `~/.cache/ralembic/`),
//!   keyed by its resolved path and its stat identity (device, inode, size, mtime and ctime in
//!   nanoseconds: what git's index trusts). A file whose identity is unchanged is not read
//!   again. Files changed less than two seconds before they were cached are never cached
//!   (git's "racy" rule). The cache's name includes a fingerprint of the parser sources, so a
//!   grammar change invalidates it.
//!
//! Everything not in the cache goes through the full parser, so results are always the full
//! parser's. `RALEMBIC_NO_CACHE=1` disables reading and writing the cache; histories of fewer
//! than [`CACHE_MIN_FILES`] files (parsed in milliseconds) never use it.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::alembic_compat::script::ast::Module;
use crate::alembic_compat::script::directory::{LoadError, Loaded};
use crate::alembic_compat::script::parse::PARSER_STACK_SIZE;
use crate::alembic_compat::script::{parse_module, DownRevision, Script, ScriptMeta};

// ------------------------------------------------------------------------------ hashing

/// 128-bit FNV-1a-style fingerprint (two 64-bit lanes): names cache files, nothing more.
#[derive(Clone, Copy)]
struct Fnv(u64, u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            self.1 = (self.1 ^ u64::from(b))
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(5);
        }
    }
    fn hex(self) -> String {
        format!("{:016x}{:016x}", self.0, self.1)
    }
}

/// Fingerprint of the code whose results the cache stores.
fn parser_tag() -> String {
    let mut h = Fnv::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    for src in [
        include_str!("../script/grammar.pest"),
        include_str!("../script/parse.rs"),
        include_str!("../script/metadata.rs"),
        include_str!("../script/directory.rs"),
        include_str!("fastload.rs"),
    ] {
        h.update(src.as_bytes());
        h.update(&[0]);
    }
    h.hex()
}

/// An Fx-style hasher for path keys (our own data, no untrusted collision concerns beyond
/// slowing down our own cache).
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// A path as hash key: its bytes (hashing a `Path` walks its components, which is slow).
fn key(p: &Path) -> &[u8] {
    p.as_os_str().as_encoded_bytes()
}

// ------------------------------------------------------------------------------ listing

/// `_only_source_rev_file`, as `script::directory` applies it.
fn is_revision_file_name(name: &str) -> bool {
    name.ends_with(".py")
        && !name.starts_with(".#")
        && !name.starts_with("__init__")
        && !name.contains('\n')
}

/// `os.walk(top_down=True)` order with resolved paths: a directory's files (sorted), then each
/// sorted sub-directory; `__pycache__` directories contribute no files.
fn walk(dir: &Path, real_dir: &Path, recursive: bool, out: &mut Vec<(PathBuf, Option<Identity>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(String, bool, Option<Identity>)> = Vec::new();
    let mut dirs = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(ft) = entry.file_type() else { continue };
        let (is_dir, is_link) = if ft.is_symlink() {
            (entry.path().is_dir(), true)
        } else {
            (ft.is_dir(), false)
        };
        if is_dir {
            dirs.push(name);
        } else {
            // DirEntry::metadata is a stat relative to the open directory: much cheaper than
            // a stat of the full path. Symlinks are stat'ed through their target later.
            let id = if is_link {
                None
            } else {
                entry.metadata().ok().map(|m| identity_of(&m))
            };
            files.push((name, is_link, id));
        }
    }
    let is_cache = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("__pycache__"));
    if !is_cache {
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, is_link, id) in files {
            if is_link {
                let path = dir.join(&name);
                let real = std::fs::canonicalize(&path).unwrap_or(path);
                let id = identity(&real);
                out.push((real, id));
            } else {
                out.push((real_dir.join(name), id));
            }
        }
    }
    if recursive {
        dirs.sort();
        for d in dirs {
            let sub = dir.join(&d);
            let real_sub = std::fs::canonicalize(&sub).unwrap_or_else(|_| real_dir.join(&d));
            walk(&sub, &real_sub, recursive, out);
        }
    }
}

/// `script::directory::list_revision_files` without per-file `canonicalize`.
pub fn list_revision_files(locations: &[PathBuf], recursive: bool) -> (Vec<PathBuf>, Vec<String>) {
    let (files, warnings) = list_with_identity(locations, recursive);
    (files.into_iter().map(|(p, _)| p).collect(), warnings)
}

fn list_with_identity(
    locations: &[PathBuf],
    recursive: bool,
) -> (Vec<(PathBuf, Option<Identity>)>, Vec<String>) {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let mut seen: HashSet<Vec<u8>, FxBuild> = HashSet::default();
    for loc in locations.iter().filter(|l| l.exists()) {
        let real_loc = std::fs::canonicalize(loc).unwrap_or_else(|_| loc.clone());
        let mut found = Vec::new();
        walk(loc, &real_loc, recursive, &mut found);
        for (real, id) in found {
            if !seen.insert(key(&real).to_vec()) {
                warnings.push(format!(
                    "File {} loaded twice! ignoring. Please ensure version_locations is unique.",
                    real.display()
                ));
                continue;
            }
            if real
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_revision_file_name)
            {
                files.push((real, id));
            }
        }
    }
    (files, warnings)
}

// ------------------------------------------------------------------------------ cache

/// A file's stat identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

fn identity(path: &Path) -> Option<Identity> {
    std::fs::metadata(path).ok().map(|m| identity_of(&m))
}

#[cfg(unix)]
fn identity_of(m: &std::fs::Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    Identity {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
    }
}

/// Without inode numbers the identity is too weak: nothing matches, nothing is served.
#[cfg(not(unix))]
fn identity_of(_m: &std::fs::Metadata) -> Identity {
    Identity {
        dev: 0,
        ino: 0,
        size: u64::MAX,
        mtime_ns: i128::MIN,
        ctime_ns: i128::MIN,
    }
}

/// Changed too recently to trust the timestamps (the file could change again within the
/// same tick without its identity changing).
fn is_racy(id: &Identity) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    now - id.mtime_ns.max(id.ctime_ns) < 2_000_000_000
}

#[derive(Debug, Clone)]
struct Entry {
    id: Identity,
    meta: ScriptMeta,
}

fn esc(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1f' => out.push_str("\\u"),
            c => out.push(c),
        }
    }
}

fn unesc(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'u' => '\x1f',
            _ => return None,
        });
    }
    Some(out)
}

fn list_field(items: &[String], out: &mut String) {
    out.push_str(&items.len().to_string());
    out.push(':');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push('\x1f');
        }
        esc(it, out);
    }
}

fn parse_list(f: &str) -> Option<Vec<String>> {
    let (n, rest) = f.split_once(':')?;
    let n: usize = n.parse().ok()?;
    if n == 0 {
        return rest.is_empty().then(Vec::new);
    }
    let v: Vec<String> = rest.split('\x1f').map(unesc).collect::<Option<_>>()?;
    (v.len() == n).then_some(v)
}

fn encode(path: &Path, e: &Entry) -> Option<String> {
    let p = path.to_str()?;
    let mut out = String::new();
    esc(p, &mut out);
    let id = &e.id;
    out.push_str(&format!(
        "\t{}\t{}\t{}\t{}\t{}\t",
        id.dev, id.ino, id.size, id.mtime_ns, id.ctime_ns
    ));
    match &e.meta.revision {
        None => out.push('-'),
        Some(r) => {
            out.push('+');
            esc(r, &mut out);
        }
    }
    out.push('\t');
    match e.meta.down_revision.as_ref()? {
        DownRevision::None => out.push('N'),
        DownRevision::One(s) => {
            out.push('1');
            esc(s, &mut out);
        }
        DownRevision::Many(v) => {
            out.push('M');
            list_field(v, &mut out);
        }
    }
    out.push('\t');
    list_field(&e.meta.branch_labels, &mut out);
    out.push('\t');
    list_field(&e.meta.depends_on, &mut out);
    out.push('\t');
    esc(&e.meta.longdoc, &mut out);
    out.push('\n');
    Some(out)
}

fn decode_line(line: &str) -> Option<(PathBuf, Entry)> {
    let f: Vec<&str> = line.split('\t').collect();
    let [path, dev, ino, size, mtime, ctime, rev, down, labels, deps, doc] = f.as_slice() else {
        return None;
    };
    let id = Identity {
        dev: dev.parse().ok()?,
        ino: ino.parse().ok()?,
        size: size.parse().ok()?,
        mtime_ns: mtime.parse().ok()?,
        ctime_ns: ctime.parse().ok()?,
    };
    let revision = match rev.split_at_checked(1)? {
        ("-", "") => None,
        ("+", r) => Some(unesc(r)?),
        _ => return None,
    };
    let down_revision = match down.split_at_checked(1)? {
        ("N", "") => DownRevision::None,
        ("1", s) => DownRevision::One(unesc(s)?),
        ("M", l) => DownRevision::Many(parse_list(l)?),
        _ => return None,
    };
    let meta = ScriptMeta {
        revision,
        down_revision: Some(down_revision),
        branch_labels: parse_list(labels)?,
        depends_on: parse_list(deps)?,
        longdoc: unesc(doc)?,
    };
    Some((PathBuf::from(unesc(path)?), Entry { id, meta }))
}

/// Metadata of revision files the full parser has read, by resolved path.
pub struct MetaCache {
    file: Option<PathBuf>,
    entries: HashMap<Vec<u8>, (PathBuf, Entry), FxBuild>,
    dirty: bool,
}

impl MetaCache {
    /// The cache for these version locations (disabled by `RALEMBIC_NO_CACHE`).
    pub fn open(locations: &[PathBuf]) -> Self {
        let disabled = std::env::var_os("RALEMBIC_NO_CACHE").is_some_and(|v| !v.is_empty());
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            });
        let file = match base {
            Some(b) if !disabled => {
                let mut h = Fnv::new();
                for l in locations {
                    h.update(l.as_os_str().as_encoded_bytes());
                    h.update(&[0]);
                }
                Some(b.join("ralembic").join(format!(
                    "meta-{}-{}.tsv",
                    &parser_tag()[..16],
                    h.hex()
                )))
            }
            _ => None,
        };
        MetaCache {
            file,
            entries: HashMap::default(),
            dirty: false,
        }
    }

    /// Reads the cache file (once the listing shows the history is big enough to need it).
    fn load(&mut self) {
        self.entries = self
            .file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|t| {
                t.lines()
                    .filter_map(decode_line)
                    .map(|(p, e)| (key(&p).to_vec(), (p, e)))
                    .collect()
            })
            .unwrap_or_default();
    }

    /// A cache that remembers nothing (tests).
    pub fn disabled() -> Self {
        MetaCache {
            file: None,
            entries: HashMap::default(),
            dirty: false,
        }
    }

    fn get(&self, path: &Path, id: &Identity) -> Option<&ScriptMeta> {
        self.entries
            .get(key(path))
            .filter(|(_, e)| e.id == *id)
            .map(|(_, e)| &e.meta)
    }

    /// Keeps only `live` paths and writes the cache if anything changed (atomically: temp file
    /// then rename). Failures are ignored: the cache is an optimisation.
    fn save(&mut self, live: &HashSet<&[u8], FxBuild>) {
        let before = self.entries.len();
        self.entries.retain(|k, _| live.contains(k.as_slice()));
        if !self.dirty && self.entries.len() == before {
            return;
        }
        let Some(file) = &self.file else { return };
        let Some(dir) = file.parent() else { return };
        let _ = std::fs::create_dir_all(dir);
        let mut text = String::new();
        for (p, e) in self.entries.values() {
            if let Some(line) = encode(p, e) {
                text.push_str(&line);
            }
        }
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        let ok = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .is_ok();
        if ok && std::fs::rename(&tmp, file).is_ok() {
            return;
        }
        let _ = std::fs::remove_file(&tmp);
    }
}

// ------------------------------------------------------------------------------ loading

/// Below this many revision files the cache is neither read nor written.
pub const CACHE_MIN_FILES: usize = 100;

/// `_legacy_rev`: the id of a file named after its revision.
fn legacy_revision(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".py")?;
    let ok = !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(stem)
}

fn finish(
    path: &Path,
    meta: ScriptMeta,
    source: String,
    module: Module,
) -> Result<Script, LoadError> {
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
        return Err(LoadError::NoDownRevision(path.display().to_string()));
    }
    Ok(Script {
        path: path.to_path_buf(),
        revision,
        meta,
        source,
        module,
    })
}

/// The full loader's work for one file (`script::directory::load_one`).
fn parse_file(path: &Path) -> Result<Script, LoadError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let source = String::from_utf8(bytes).map_err(|e| LoadError::Io {
        path: shown.clone(),
        message: format!(
            "(unicode error) 'utf-8' codec can't decode byte at offset {}",
            e.utf8_error().valid_up_to()
        ),
    })?;
    let module = parse_module(&shown, &source).map_err(LoadError::Syntax)?;
    let meta = ScriptMeta::from_module(&shown, &source, &module).map_err(LoadError::Syntax)?;
    finish(path, meta, source, module)
}

enum Outcome {
    Cached(Script),
    /// Parsed now; cacheable with this identity if not racy.
    Parsed(Result<Script, LoadError>, Option<Identity>),
}

fn load_one(path: &Path, id: Option<Identity>, cache: &MetaCache) -> Outcome {
    if let Some(meta) = id.as_ref().and_then(|id| cache.get(path, id)) {
        if let Ok(s) = finish(
            path,
            meta.clone(),
            String::new(),
            Module { body: Vec::new() },
        ) {
            return Outcome::Cached(s);
        }
    }
    Outcome::Parsed(parse_file(path), id)
}

/// `script::load_scripts` with the cache (same files, same order, same results). Scripts
/// served from the cache have an empty `source` and `module`: read-only commands need
/// neither.
pub fn load_scripts_cached(
    locations: &[PathBuf],
    recursive: bool,
    cache: &mut MetaCache,
) -> Result<Loaded, Vec<LoadError>> {
    let t0 = std::time::Instant::now();
    let (files, warnings) = list_with_identity(locations, recursive);
    tracing::debug!("listed {} files in {:?}", files.len(), t0.elapsed());
    // Small histories parse in milliseconds: leave no cache files behind for them.
    let use_cache = files.len() >= CACHE_MIN_FILES;
    if use_cache {
        cache.load();
    }
    let shared: &MetaCache = cache;
    // Only files that need parsing are worth threads; a cached file costs a lookup.
    let sample = files.len().min(32);
    let cached_share = files
        .iter()
        .take(32)
        .filter(|(p, id)| id.as_ref().is_some_and(|id| shared.get(p, id).is_some()))
        .count();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let workers = if files.len() < 64 || cached_share == sample {
        1
    } else {
        workers
    };
    let chunk = files.len().div_ceil(workers).max(1);
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                // the parser may recurse deeply: give it the stack it asks for
                std::thread::Builder::new()
                    .stack_size(PARSER_STACK_SIZE)
                    .spawn_scoped(s, move || {
                        part.iter()
                            .map(|(p, id)| load_one(p, *id, shared))
                            .collect::<Vec<_>>()
                    })
            })
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for h in handles {
            if let Some(v) = h.ok().and_then(|h| h.join().ok()) {
                out.extend(v);
            }
        }
        out
    });
    if outcomes.len() != files.len() {
        // a worker could not start or panicked: the plain loader reports it properly
        return crate::alembic_compat::script::load_scripts(locations, recursive);
    }
    let mut scripts = Vec::with_capacity(outcomes.len());
    let mut errors = Vec::new();
    let mut hits = 0;
    for o in outcomes {
        match o {
            Outcome::Cached(s) => {
                hits += 1;
                scripts.push(s);
            }
            Outcome::Parsed(Ok(s), id) => {
                if let Some(id) = id.filter(|id| !is_racy(id)) {
                    cache.entries.insert(
                        key(&s.path).to_vec(),
                        (
                            s.path.clone(),
                            Entry {
                                id,
                                meta: s.meta.clone(),
                            },
                        ),
                    );
                    cache.dirty = true;
                }
                scripts.push(s);
            }
            Outcome::Parsed(Err(e), _) => errors.push(e),
        }
    }
    // Every entry was used and none added: nothing to write (the common, fast case).
    if use_cache && (cache.dirty || hits != cache.entries.len()) {
        let live: HashSet<&[u8], FxBuild> = files.iter().map(|(p, _)| key(p)).collect();
        cache.save(&live);
    }
    if errors.is_empty() {
        Ok(Loaded { scripts, warnings })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(l: &Loaded) -> Vec<(PathBuf, String, ScriptMeta)> {
        l.scripts
            .iter()
            .map(|s| (s.path.clone(), s.revision.clone(), s.meta.clone()))
            .collect()
    }

    #[test]
    fn listing_matches_script_directory() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("versions");
        for d in ["", "sub", "sub/__pycache__", "a"] {
            std::fs::create_dir_all(v.join(d)).unwrap();
        }
        for f in [
            "b.py",
            "a.py",
            "__init__.py",
            ".#x.py",
            "x.txt",
            "sub/c.py",
            "sub/__pycache__/d.py",
            "a/e.py",
        ] {
            std::fs::write(v.join(f), "").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(v.join("a.py"), v.join("z.py")).unwrap();
        let locs = [v.clone(), v.join("sub")];
        for recursive in [false, true] {
            assert_eq!(
                list_revision_files(&locs, recursive),
                crate::alembic_compat::script::directory::list_revision_files(&locs, recursive),
                "recursive={recursive}"
            );
        }
    }

    #[test]
    fn cache_round_trip_and_results_match_plain_loader() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("versions");
        std::fs::create_dir(&v).unwrap();
        std::fs::write(
            v.join("a1_x.py"),
            "\"\"\"first\tdoc\n\nmore \\\\ text\"\"\"\nrevision = 'a1'\ndown_revision = None\n",
        )
        .unwrap();
        std::fs::write(v.join("b2_y.py"), "\"\"\"second\"\"\"\nrevision = 'b2'\ndown_revision = ('a1', '')\nbranch_labels = ('l',)\ndepends_on = []\n").unwrap();
        std::fs::write(v.join("c3.py"), "down_revision = 'b2'\n").unwrap();
        let plain = crate::alembic_compat::script::load_scripts(&[v.clone()], false).unwrap();
        let mut cache = MetaCache::disabled();
        let first = load_scripts_cached(&[v.clone()], false, &mut cache).unwrap();
        assert_eq!(facts(&first), facts(&plain));
        // files written just now are racy: not cached
        assert!(cache.entries.is_empty());
        // encode/decode every entry losslessly
        for s in &plain.scripts {
            let e = Entry {
                id: identity(&s.path).unwrap(),
                meta: s.meta.clone(),
            };
            let line = encode(&s.path, &e).unwrap();
            let (p, back) = decode_line(line.trim_end_matches('\n')).unwrap();
            assert_eq!(
                (p, back.id, back.meta),
                (s.path.clone(), e.id, s.meta.clone())
            );
            cache
                .entries
                .insert(key(&s.path).to_vec(), (s.path.clone(), e));
        }
        let second = load_scripts_cached(&[v.clone()], false, &mut cache).unwrap();
        assert_eq!(facts(&second), facts(&plain));
        assert!(
            second.scripts.iter().all(|s| s.source.is_empty()),
            "served from the cache"
        );
        // an edited file is parsed again, and a broken one is never served from the cache
        std::fs::write(
            v.join("b2_y.py"),
            "revision = 'b2'\ndown_revision = 'a1'\ndef upgrade(:\n    pass\n",
        )
        .unwrap();
        let err = load_scripts_cached(&[v], false, &mut cache).unwrap_err();
        assert!(matches!(err.as_slice(), [LoadError::Syntax(_)]));
    }
}

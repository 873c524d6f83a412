//! Parsed revision files, cached by content: parsing with the pest grammar is the largest
//! cost of `upgrade` on a small history (about a third of it), and a file's AST depends only
//! on its text and on our parser. The key is a hash of both (a fingerprint of the library's
//! code stands for the parser), so an edited file or a changed parser never meets a stale
//! entry.
//!
//! Entries live under the metadata cache's directory (`ast/`), so `RALEMBIC_CACHE_DIR=off`
//! disables both. Anything unreadable is parsed afresh; failures to write are ignored.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use super::ast::Module;
use super::directory::MetaCache;

fn entry_path(source: &str) -> Option<PathBuf> {
    entry_in(&MetaCache::dir()?, source)
}

fn entry_in(cache_dir: &std::path::Path, source: &str) -> Option<PathBuf> {
    let dir = cache_dir.join("ast");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    code_fingerprint!().hash(&mut h);
    source.hash(&mut h);
    // A second hash, over the length and the last 4 KiB, makes a collision practically
    // impossible. The tail is hashed as one slice: byte by byte, this key cost more than
    // reading the cached AST of a short revision.
    let mut h2 = std::collections::hash_map::DefaultHasher::new();
    source.len().hash(&mut h2);
    let bytes = source.as_bytes();
    bytes[bytes.len().saturating_sub(4096)..].hash(&mut h2);
    Some(dir.join(format!("{:016x}{:016x}.ast", h.finish(), h2.finish())))
}

/// `parse_module`, through the cache.
pub fn parse_cached(shown: &str, source: &str) -> Result<Module, super::SyntaxError> {
    if let Some(module) = load(source) {
        return Ok(module);
    }
    let module = super::parse::parse_module(shown, source)?;
    store(source, &module);
    Ok(module)
}

/// The cached AST of `source`, if there is one.
fn load(source: &str) -> Option<Module> {
    load_from(entry_path(source)?)
}

fn load_from(path: PathBuf) -> Option<Module> {
    let bytes = std::fs::read(path).ok()?;
    // postcard, not JSON: decoding a JSON AST was most of the cost of a cache hit. A
    // checksum trails the payload, so a damaged entry is a miss, never a wrong AST.
    let (payload, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if checksum(payload).to_le_bytes() != sum {
        return None;
    }
    postcard::from_bytes(payload).ok()
}

fn checksum(payload: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

/// Keeps `module` as the AST of `source` (best effort: written to a temporary file, then
/// renamed, so readers never see half an entry).
fn store(source: &str, module: &Module) {
    if let Some(path) = entry_path(source) {
        store_at(&path, module);
    }
}

fn store_at(path: &std::path::Path, module: &Module) {
    let Ok(mut bytes) = postcard::to_stdvec(module) else {
        return;
    };
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    prune(dir);
    let _ = write_replacing(path, &bytes);
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, creating the
/// directory: a concurrent reader finds the old file or the new one, never half of one.
pub(super) fn write_replacing(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Entries kept at most; edited files leave old entries behind, so the oldest go first.
const MAX_ENTRIES: usize = 20_000;

/// At most once per process, after its first cache miss: listing and stating the whole
/// directory on every miss made a cold run quadratic (10,000 new revisions took 84 s, nearly
/// all of it `stat`). A run adds at most its own files past the limit; the next run prunes.
fn prune(dir: &std::path::Path) {
    static PRUNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !PRUNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        prune_oldest(dir, MAX_ENTRIES, |_| true);
    }
}

/// Once `dir` holds more than `max` of the files `ours` accepts (by name), removes the least
/// recently written of them down to three quarters of `max`; anything else is left alone.
pub(super) fn prune_oldest(dir: &std::path::Path, max: usize, ours: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&ours))
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, e.path()))
        })
        .collect();
    if files.len() <= max {
        return;
    }
    files.sort();
    for (_, p) in files.iter().take(files.len() - max * 3 / 4) {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alembic_compat::script::parse_module;

    #[test]
    fn round_trip_and_content_keys() {
        let dir = tempfile::tempdir().unwrap();
        let src = "def upgrade():\n    op.add_column('t', sa.Column('x', sa.Integer(), server_default=f'{1 + 2:>4}'))\n";
        let module = parse_module("t.py", src).unwrap();
        let path = entry_in(dir.path(), src).unwrap();
        assert!(load_from(path.clone()).is_none());
        store_at(&path, &module);
        assert_eq!(load_from(path.clone()), Some(module));
        // Another text, another entry.
        let other = entry_in(dir.path(), &src.replace("'x'", "'y'")).unwrap();
        assert_ne!(path, other);
        // Non-finite floats and non-ASCII text survive the round trip.
        let odd = "x = 1e999\ny = 'ñ\\u00e9'\n";
        let odd_module = parse_module("t.py", odd).unwrap();
        let odd_path = entry_in(dir.path(), odd).unwrap();
        store_at(&odd_path, &odd_module);
        assert_eq!(load_from(odd_path.clone()), Some(odd_module));
        // A damaged entry is a miss, not an error.
        std::fs::write(&odd_path, b"\x07garbage").unwrap();
        assert!(load_from(odd_path).is_none());
    }
}

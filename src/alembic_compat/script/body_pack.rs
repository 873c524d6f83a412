//! The text and syntax tree of each revision file of a versions directory, kept together in
//! one cache file. A command that runs bodies needs both for every file of its plan (the
//! tree to run, the text for the line and column of what it reports), and through the
//! per-content cache ([`super::ast_cache`]) that is two small files opened and read per
//! revision: on the benchmark machine about 25 microseconds each, a sixth of a 200-revision
//! upgrade. One file replaces them.
//!
//! An entry is keyed by the file's path and its stamp (size and modification time, taken
//! when the directory was listed, as the metadata cache keys its entries) and is used only
//! while the file shows that stamp. It is stored only for a file that had not changed for
//! [`FileStamp::settled`]'s two seconds, so an edit in the same clock tick as the stored
//! version cannot go unseen; anything else goes through the per-content cache. Each entry
//! carries a checksum, so a damaged pack is a miss, never a wrong tree.
//!
//! Only the index is read when the pack is opened; each body is then read at its offset, so
//! a one-revision upgrade on a long history reads one body, not the whole pack.
//!
//! An entry also records whether the interpreter's static check found nothing in the body:
//! a plan whose bodies all carry that verdict starts running without reading any of them.
//! The verdict is the code's as much as the file's, so the format tag holds a fingerprint of
//! the library's code (see `build.rs`).

use std::hash::Hasher;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ast::Module;
use super::directory::{FileStamp, Script};

/// Entries kept at most per pack: edited files replace their entry, removed ones linger.
const MAX_ENTRIES: usize = 20_000;

/// A pack is used when its index takes at most this many bytes per body the plan needs (an
/// entry takes about 100): decoding an entry of the index costs about a microsecond, reading
/// a file one by one (its text and its per-content tree) about fifty here.
const HEAD_BYTES_PER_WANTED: usize = 2048;

/// The packs of the directories a command's scripts live in, opened on first use.
#[derive(Default)]
pub struct BodyPacks {
    /// Keyed by the directory path's bytes: hashing a `Path` walks its components, and
    /// every script asks.
    by_dir: rustc_hash::FxHashMap<std::ffi::OsString, Option<Pack>>,
}

impl BodyPacks {
    /// Opens the packs of every directory `scripts` live in (with the cache off, none).
    pub fn open_for<'a>(&mut self, scripts: impl IntoIterator<Item = &'a Script>) {
        let mut wanted: rustc_hash::FxHashMap<&Path, usize> = Default::default();
        for s in scripts {
            if let Some(dir) = s.path.parent() {
                *wanted.entry(dir).or_default() += 1;
            }
        }
        for (dir, wanted) in wanted {
            if !self.by_dir.contains_key(dir.as_os_str()) {
                self.by_dir
                    .insert(dir.as_os_str().to_owned(), Pack::open(dir, wanted));
            }
        }
    }

    /// The source and tree of `script`, if a pack holds them for its current stamp.
    /// Only directories opened with [`open_for`](Self::open_for) are looked in.
    pub fn get(&self, script: &Script) -> Option<(String, Module)> {
        let (pack, slot) = self.slot(script)?;
        pack.read(slot)
    }

    /// True when a pack holds `script`'s body for its current stamp, stored with the verdict
    /// that the static check found nothing in it. The body itself is not read.
    pub fn passed_check(&self, script: &Script) -> bool {
        self.slot(script).is_some_and(|(_, slot)| slot.checked)
    }

    /// The pack and entry holding `script`'s body for its current stamp.
    fn slot(&self, script: &Script) -> Option<(&Pack, &Slot)> {
        let stamp = script.stamp?;
        let pack = self
            .by_dir
            .get(script.path.parent()?.as_os_str())?
            .as_ref()?;
        let slot = pack.slots.get(script.path.to_str()?)?;
        (slot.stamp == stamp).then_some((pack, slot))
    }

    /// Remembers a body parsed outside the packs, when its file has settled; `checked` when
    /// the static check found nothing in it.
    pub fn add(&mut self, script: &Script, source: &str, module: &Module, checked: bool) {
        let Some(stamp) = script.stamp.filter(FileStamp::settled) else {
            return;
        };
        // Paths are stored as text: a file whose path is not UTF-8 stays out of the packs.
        let (Some(dir), Some(key)) = (script.path.parent(), script.path.to_str()) else {
            return;
        };
        if let Some(Some(pack)) = self.by_dir.get_mut(dir.as_os_str()) {
            if let Ok(tree) = postcard::to_stdvec(module) {
                pack.added.push(Added {
                    key: key.to_string(),
                    stamp,
                    source: source.to_string(),
                    tree,
                    checked,
                });
            }
        }
    }

    /// Writes every pack that gained entries (best effort: a failure costs the next run a
    /// read of the files).
    pub fn save(&mut self) {
        for pack in self.by_dir.values_mut().flatten() {
            pack.save();
        }
    }
}

impl std::fmt::Debug for BodyPacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyPacks")
            .field("dirs", &self.by_dir.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Drop for BodyPacks {
    fn drop(&mut self) {
        self.save();
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Head {
    format: String,
    /// In blob order.
    entries: Vec<Entry>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    path: String,
    stamp: FileStamp,
    source_len: u32,
    tree_len: u32,
    /// Of source and tree.
    sum: u64,
    checked: bool,
}

/// A body to store at the next save.
struct Added {
    key: String,
    stamp: FileStamp,
    source: String,
    tree: Vec<u8>,
    checked: bool,
}

/// A pack whose index is too large for the plan at hand.
struct TooLarge;

struct Slot {
    stamp: FileStamp,
    source: Range<usize>,
    tree: Range<usize>,
    sum: u64,
    checked: bool,
}

struct Pack {
    path: PathBuf,
    /// The pack as opened: its bodies are read from this inode even if another run has
    /// replaced the file since.
    file: Option<std::fs::File>,
    /// Where the bodies start and end in `file`.
    blobs: Range<usize>,
    slots: rustc_hash::FxHashMap<String, Slot>,
    /// Read from the file in this order (kept so a rewrite keeps old entries in place).
    order: Vec<String>,
    added: Vec<Added>,
}

/// The pack format, with the code that wrote it.
const FORMAT: &str = concat!("ralembic-bodies-2-", code_fingerprint!());

fn checksum(source: &[u8], tree: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(source);
    h.write_u8(0xff);
    h.write(tree);
    h.finish()
}

impl Pack {
    fn file_for(dir: &Path) -> Option<PathBuf> {
        use std::hash::Hash;
        let cache = super::directory::MetaCache::dir()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        dir.hash(&mut h);
        Some(cache.join(format!("{:016x}.bodies", h.finish())))
    }

    /// The pack of `dir` for a plan that runs `wanted` of its files; none when its index
    /// alone would cost more than reading those files one by one (a one-revision upgrade on
    /// a history of 10,000 whose bodies were all stored by an earlier upgrade from empty:
    /// decoding the index took 10 ms there).
    fn open(dir: &Path, wanted: usize) -> Option<Pack> {
        let path = Self::file_for(dir)?;
        Self::load(path, wanted.saturating_mul(HEAD_BYTES_PER_WANTED)).ok()
    }

    /// The pack at `path` (empty when there is none or it cannot be read), unless its index
    /// is larger than `max_head` bytes.
    fn load(path: PathBuf, max_head: usize) -> Result<Pack, TooLarge> {
        let mut pack = Pack {
            path,
            file: None,
            blobs: 0..0,
            slots: Default::default(),
            order: Vec::new(),
            added: Vec::new(),
        };
        let Some((file, head, at, len)) = Self::read_head(&pack.path, max_head)? else {
            return Ok(pack);
        };
        let mut next = at;
        for e in head.entries {
            let source = next..next + e.source_len as usize;
            let tree = source.end..source.end + e.tree_len as usize;
            if tree.end > len {
                // Truncated: nothing from here on can be trusted.
                break;
            }
            next = tree.end;
            pack.order.push(e.path.clone());
            pack.slots.insert(
                e.path,
                Slot {
                    stamp: e.stamp,
                    source,
                    tree,
                    sum: e.sum,
                    checked: e.checked,
                },
            );
        }
        pack.file = Some(file);
        pack.blobs = at..next;
        Ok(pack)
    }

    /// The open pack, its head, where the bodies start and the file's length; none when
    /// there is no readable pack of this format.
    #[allow(clippy::type_complexity)]
    fn read_head(
        path: &Path,
        max_head: usize,
    ) -> Result<Option<(std::fs::File, Head, usize, usize)>, TooLarge> {
        use std::io::Read;
        let Ok(mut file) = std::fs::File::open(path) else {
            return Ok(None);
        };
        let mut size = [0u8; 4];
        if file.read_exact(&mut size).is_err() {
            return Ok(None);
        }
        let size = u32::from_le_bytes(size) as usize;
        if size > max_head {
            return Err(TooLarge);
        }
        let read = || {
            let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
            if 4 + size > len {
                return None;
            }
            let mut bytes = vec![0u8; 4 + size];
            bytes[..4].copy_from_slice(&(size as u32).to_le_bytes());
            (&file).read_exact(&mut bytes[4..]).ok()?;
            let (head, at) = Self::head(&bytes)?;
            Some((head, at, len))
        };
        Ok(read().map(|(head, at, len)| (file, head, at, len)))
    }

    /// `range` of the pack as opened.
    fn read_at(&self, range: Range<usize>) -> Option<Vec<u8>> {
        let file = self.file.as_ref()?;
        let mut buf = vec![0u8; range.len()];
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            file.read_exact_at(&mut buf, range.start as u64).ok()?;
        }
        #[cfg(not(unix))]
        {
            let _ = (file, &mut buf);
            return None;
        }
        Some(buf)
    }

    /// The head and where the blobs start, if `bytes` is a pack of this parser's format.
    fn head(bytes: &[u8]) -> Option<(Head, usize)> {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let head: Head = postcard::from_bytes(rest.get(..len)?).ok()?;
        (head.format == FORMAT).then_some((head, 4 + len))
    }

    /// The source and tree of `slot`, unless the stored bytes fail their checksum.
    fn read(&self, slot: &Slot) -> Option<(String, Module)> {
        // Source and tree are stored side by side: one read.
        let mut both = self.read_at(slot.source.start..slot.tree.end)?;
        let tree = both.split_off(slot.source.len());
        if checksum(&both, &tree) != slot.sum {
            return None;
        }
        let source = String::from_utf8(both).ok()?;
        let module = postcard::from_bytes(&tree).ok()?;
        Some((source, module))
    }

    fn save(&mut self) {
        if self.added.is_empty() {
            return;
        }
        let added = std::mem::take(&mut self.added);
        let replaced: std::collections::HashSet<&str> =
            added.iter().map(|a| a.key.as_str()).collect();
        let kept: Vec<(&str, &Slot)> = self
            .order
            .iter()
            .filter(|k| !replaced.contains(k.as_str()))
            .filter_map(|k| self.slots.get(k).map(|s| (k.as_str(), s)))
            .collect();
        let skip = (kept.len() + added.len()).saturating_sub(MAX_ENTRIES);
        let kept = &kept[skip.min(kept.len())..];
        let mut head = Head {
            format: FORMAT.to_string(),
            entries: Vec::with_capacity(kept.len() + added.len()),
        };
        let mut blobs = Vec::new();
        // The kept bodies, read back in one piece (a rewrite is rare: only after a miss).
        let old = if kept.is_empty() {
            Vec::new()
        } else {
            self.read_at(self.blobs.clone()).unwrap_or_default()
        };
        let at = |r: &Range<usize>| {
            old.get(r.start.checked_sub(self.blobs.start)?..r.end.checked_sub(self.blobs.start)?)
        };
        for (key, slot) in kept {
            let (Some(source), Some(tree)) = (at(&slot.source), at(&slot.tree)) else {
                continue;
            };
            head.entries.push(Entry {
                path: key.to_string(),
                stamp: slot.stamp,
                source_len: source.len() as u32,
                tree_len: tree.len() as u32,
                sum: slot.sum,
                checked: slot.checked,
            });
            blobs.extend_from_slice(source);
            blobs.extend_from_slice(tree);
        }
        for a in &added {
            let (Ok(source_len), Ok(tree_len)) =
                (u32::try_from(a.source.len()), u32::try_from(a.tree.len()))
            else {
                continue;
            };
            head.entries.push(Entry {
                path: a.key.clone(),
                stamp: a.stamp,
                source_len,
                tree_len,
                sum: checksum(a.source.as_bytes(), &a.tree),
                checked: a.checked,
            });
            blobs.extend_from_slice(a.source.as_bytes());
            blobs.extend_from_slice(&a.tree);
        }
        let Ok(head_bytes) = postcard::to_stdvec(&head) else {
            return;
        };
        let Ok(head_len) = u32::try_from(head_bytes.len()) else {
            return;
        };
        let mut out = Vec::with_capacity(4 + head_bytes.len() + blobs.len());
        out.extend_from_slice(&head_len.to_le_bytes());
        out.extend_from_slice(&head_bytes);
        out.extend_from_slice(&blobs);
        if let (true, Some(dir)) = (self.file.is_none(), self.path.parent()) {
            // A directory seen for the first time: keep the number of cache files bounded.
            super::directory::prune_cache_files(dir);
        }
        if let Err(e) = super::ast_cache::write_replacing(&self.path, &out) {
            tracing::debug!(
                "could not write the body cache {}: {e}",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alembic_compat::script::{load_scripts, parse_module};

    const BODY: &str = "def upgrade():\n    op.add_column('t', sa.Column('x', sa.Integer()))\n";

    /// A versions directory with one revision file, last changed `age` ago, loaded as a
    /// command loads it (with its stamp).
    fn script(dir: &Path, body: &str, age: std::time::Duration) -> Script {
        let file = dir.join("a1_x.py");
        let text = format!("revision = 'a1'\ndown_revision = None\n{body}");
        std::fs::write(&file, text).unwrap();
        let when = std::time::SystemTime::now() - age;
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(when)
            .unwrap();
        let loaded = load_scripts(&[dir.to_path_buf()], false).ok().unwrap();
        loaded.scripts.into_iter().next().unwrap()
    }

    fn packs_at(file: &Path, script: &Script) -> BodyPacks {
        let mut packs = BodyPacks::default();
        let dir = script.path.parent().unwrap().as_os_str().to_owned();
        packs
            .by_dir
            .insert(dir, Pack::load(file.to_path_buf(), usize::MAX).ok());
        packs
    }

    /// A versions directory whose file last changed `age` ago, a pack file path beside it,
    /// and the packs with that file's body added and saved.
    struct Stored {
        _tmp: tempfile::TempDir,
        versions: PathBuf,
        cache: PathBuf,
        script: Script,
        body: (String, Module),
    }

    fn stored(age: std::time::Duration, checked: bool) -> Stored {
        let tmp = tempfile::tempdir().unwrap();
        let versions = tmp.path().join("versions");
        std::fs::create_dir(&versions).unwrap();
        let cache = tmp.path().join("p.bodies");
        let script = script(&versions, BODY, age);
        let source = std::fs::read_to_string(&script.path).unwrap();
        let module = parse_module("x.py", &source).unwrap();
        let mut packs = packs_at(&cache, &script);
        assert!(packs.get(&script).is_none());
        packs.add(&script, &source, &module, checked);
        packs.save();
        Stored {
            _tmp: tmp,
            versions,
            cache,
            script,
            body: (source, module),
        }
    }

    #[test]
    fn a_settled_file_is_read_back_while_its_stamp_holds() {
        let s = stored(std::time::Duration::from_secs(60), true);
        let packs = packs_at(&s.cache, &s.script);
        assert_eq!(packs.get(&s.script), Some(s.body.clone()));
        assert!(packs.passed_check(&s.script));
        // An index larger than the plan warrants is not read at all.
        assert!(Pack::load(s.cache.clone(), 8).is_err());
        assert!(Pack::load(s.cache.clone(), HEAD_BYTES_PER_WANTED).is_ok());

        // Another version of the file (another size and time): not the stored entry.
        let edited = script(
            &s.versions,
            &BODY.replace("'x'", "'xy'"),
            std::time::Duration::from_secs(30),
        );
        assert_ne!(edited.stamp, s.script.stamp);
        assert!(packs.get(&edited).is_none());
        assert!(!packs.passed_check(&edited));
    }

    #[test]
    fn a_body_the_check_refused_is_stored_without_the_verdict() {
        let s = stored(std::time::Duration::from_secs(60), false);
        let packs = packs_at(&s.cache, &s.script);
        assert_eq!(packs.get(&s.script), Some(s.body.clone()));
        assert!(!packs.passed_check(&s.script));
    }

    #[test]
    fn a_file_changed_just_now_is_not_stored() {
        let s = stored(std::time::Duration::ZERO, true);
        assert!(!s.cache.exists());
    }

    #[test]
    fn a_damaged_or_foreign_pack_is_a_miss() {
        let s = stored(std::time::Duration::from_secs(60), true);
        let good = std::fs::read(&s.cache).unwrap();
        let misses = |bytes: &[u8]| {
            std::fs::write(&s.cache, bytes).unwrap();
            packs_at(&s.cache, &s.script).get(&s.script).is_none()
        };
        // A flipped byte in the stored tree fails the entry's checksum.
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        assert!(misses(&flipped));
        // A truncated pack, garbage, nothing.
        assert!(misses(&good[..good.len() - 3]));
        assert!(misses(b"\x07garbage"));
        assert!(misses(b""));
        // Another parser's format.
        let head = Head {
            format: "ralembic-bodies-0-elsewhere".into(),
            entries: Vec::new(),
        };
        let head = postcard::to_stdvec(&head).unwrap();
        let mut other = (head.len() as u32).to_le_bytes().to_vec();
        other.extend(head);
        assert!(Pack::head(&other).is_none());
        assert!(!misses(&good));
    }
}

//! The metadata cache (what each revision file yielded, kept between runs) must never change
//! an answer: after every kind of edit a user makes to a history, a cached run prints what a
//! run without the cache prints.

mod common;

use std::path::{Path, PathBuf};

use common::migrate::observe_db;
use common::{argv, copy_dir, ralembic_bin, run_tool, CaseEnv, Outcome};

fn run(project: &Path, cache: &str, args: &str) -> Outcome {
    let env = CaseEnv {
        set: vec![("RALEMBIC_CACHE_DIR".to_string(), cache.to_string())],
    };
    run_tool(&ralembic_bin(), project, &argv(args), &env)
}

/// Runs `history` and `heads` with the cache (twice: the second run reads what the first
/// wrote) and without it; all must agree.
fn assert_cache_agrees(project: &Path, cache: &Path, after: &str) {
    let cache = cache.to_string_lossy().to_string();
    for args in ["history -v", "heads -v"] {
        let fresh = run(project, "off", args);
        let first = run(project, &cache, args);
        let second = run(project, &cache, args);
        for (which, got) in [("first", &first), ("second", &second)] {
            assert_eq!(
                (got.code, &got.stdout, &got.stderr),
                (fresh.code, &fresh.stdout, &fresh.stderr),
                "{after}: `{args}`, {which} cached run differs from an uncached one:\n{}\nvs\n{}",
                String::from_utf8_lossy(&got.stdout),
                String::from_utf8_lossy(&fresh.stdout)
            );
        }
    }
}

fn set_mtime(path: &Path, secs_ago: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago);
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(when).unwrap();
}

/// A copy of the linear fixture in `dir`: the project, a cache directory, its versions.
fn linear_project(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let project = dir.join("p");
    copy_dir(&common::repo_root().join("tests/fixtures/linear"), &project);
    let versions = project.join("alembic/versions");
    (project, dir.join("cache"), versions)
}

/// Appends a new head on top of the fixture's.
fn add_new_head(versions: &Path) {
    std::fs::write(
        versions.join("aaaa00000001_new_head.py"),
        "'''new head'''\nrevision = 'aaaa00000001'\ndown_revision = 'f4894da35515'\n",
    )
    .unwrap();
}

#[test]
fn cached_runs_follow_every_edit() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, cache, versions) = linear_project(tmp.path());
    assert_cache_agrees(&project, &cache, "untouched");
    assert!(
        std::fs::read_dir(&cache).unwrap().next().is_some(),
        "the cache directory stays empty: the test would prove nothing"
    );

    // A new head appended.
    add_new_head(&versions);
    assert_cache_agrees(&project, &cache, "file added");

    // An in-place edit that keeps the size: only the modification time tells.
    let edited = versions.join("aaaa00000001_new_head.py");
    std::fs::write(
        &edited,
        "'''new HEAD'''\nrevision = 'aaaa00000001'\ndown_revision = 'ca515065d73b'\n",
    )
    .unwrap();
    set_mtime(&edited, 3600);
    assert_cache_agrees(&project, &cache, "same-size edit");

    // The file removed again, and one renamed (a file's position in the listing shifts).
    std::fs::remove_file(&edited).unwrap();
    std::fs::rename(
        versions.join("f4894da35515_positions.py"),
        versions.join("0000_positions.py"),
    )
    .unwrap();
    assert_cache_agrees(&project, &cache, "removed and renamed");

    // A file broken after it was cached: the error comes back, every time.
    std::fs::write(versions.join("0000_positions.py"), "revision = (\n").unwrap();
    assert_cache_agrees(&project, &cache, "broken file");

    // A cache file of garbage is ignored, not trusted.
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"\x00\xffnot a cache").unwrap();
        }
    }
    assert_cache_agrees(&project, &cache, "garbage cache file");
}

/// Once a versions directory has settled, the next run takes its names from the cache
/// instead of reading the directory; any file added or removed after that must still show.
#[test]
fn reused_listings_follow_added_and_removed_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (project, cache, versions) = linear_project(tmp.path());
    let cache_arg = cache.to_string_lossy().to_string();
    let reused = |project: &Path| {
        let env = CaseEnv {
            set: vec![
                ("RALEMBIC_CACHE_DIR".to_string(), cache_arg.clone()),
                ("RUST_LOG".to_string(), "meshview=debug".to_string()),
            ],
        };
        let out = run_tool(&ralembic_bin(), project, &argv("heads"), &env);
        String::from_utf8_lossy(&out.stderr).contains("files reused")
    };
    // A directory is trusted two seconds after its last change.
    let settle = || std::thread::sleep(std::time::Duration::from_millis(2100));

    settle();
    assert!(!reused(&project), "nothing cached yet");
    assert!(reused(&project), "the settled listing is not reused");
    add_new_head(&versions);
    assert!(!reused(&project), "a listing reused after a file was added");
    assert_cache_agrees(&project, &cache, "file added to a reused listing");

    settle();
    reused(&project);
    assert!(reused(&project), "the settled listing is not reused");
    std::fs::remove_file(versions.join("aaaa00000001_new_head.py")).unwrap();
    assert!(
        !reused(&project),
        "a listing reused after a file was removed"
    );
    assert_cache_agrees(&project, &cache, "file removed from a reused listing");
}

/// A fixture project in a temporary directory, its revision files old enough for the
/// caches to keep them, and a cache directory beside it.
struct SettledProject {
    /// Holds the directory while the test runs.
    _tmp: tempfile::TempDir,
    project: PathBuf,
    cache_dir: PathBuf,
    /// `cache_dir`, as `RALEMBIC_CACHE_DIR` takes it.
    cache: String,
    versions: PathBuf,
    db: PathBuf,
}

impl SettledProject {
    /// A test about bodies read from the packs proves nothing if no pack was written.
    fn assert_packs_written(&self) {
        assert!(
            std::fs::read_dir(&self.cache_dir).unwrap().any(|e| e
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "bodies")),
            "no body pack was written: the test would prove nothing"
        );
    }
}

/// The linear fixture, settled.
fn settled_linear_project() -> SettledProject {
    settled_project("linear", "")
}

/// `fixture`, settled, with extra `context.configure` arguments (none when empty).
fn settled_project(fixture: &str, configure_extra: &str) -> SettledProject {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("p");
    common::migrate::prepare_project(
        &common::repo_root().join("tests/fixtures").join(fixture),
        &project,
        &common::migrate::ProjectSetup {
            logging: true,
            configure_extra: configure_extra.to_string(),
        },
    );
    let cache_dir = tmp.path().join("cache");
    let cache = cache_dir.to_string_lossy().to_string();
    let versions = project.join("alembic/versions");
    for entry in std::fs::read_dir(&versions).unwrap() {
        set_mtime(&entry.unwrap().path(), 60);
    }
    let db = project.join("test.db");
    SettledProject {
        _tmp: tmp,
        project,
        cache_dir,
        cache,
        versions,
        db,
    }
}

/// Runs ralembic with `args`, which must succeed.
fn run_ok(project: &Path, cache: &str, args: &str) {
    let out = run(project, cache, args);
    assert_eq!(
        out.code,
        Some(0),
        "{args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The body packs keep the static check's verdict, so a plan of stored clean bodies runs
/// without reading them first. A body edited to something the check refuses must be refused
/// on every run after, with nothing written, however the earlier runs stored it.
#[test]
fn a_stored_verdict_never_lets_a_refused_body_run() {
    let setup = settled_linear_project();
    let (project, cache, versions, db) = (&setup.project, &setup.cache, &setup.versions, &setup.db);
    let ok = |args: &str| run_ok(project, cache, args);
    // The first run stores the bodies; the second runs them from the packs.
    ok("upgrade head");
    let at_head = observe_db(db, "alembic_version");
    ok("downgrade base");
    let at_base = observe_db(db, "alembic_version");
    ok("upgrade head");
    assert_eq!(observe_db(db, "alembic_version"), at_head);
    setup.assert_packs_written();
    ok("downgrade base");

    let victim = versions.join("3983f98c5b1b_index_packets.py");
    let src = std::fs::read_to_string(&victim).unwrap().replacen(
        "def upgrade():\n    pass",
        "def upgrade():\n    from myapp.models import Packet\n    op.create_index('ix', 'packets', ['t'])",
        1,
    );
    std::fs::write(&victim, src).unwrap();
    set_mtime(&victim, 30);
    // The first refusal stores the edited body without the verdict; the second reads that.
    for round in ["first", "second"] {
        let out = run(project, cache, "upgrade head");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.code, Some(1), "{round} run: {err}");
        assert!(
            err.contains("3983f98c5b1b_index_packets.py:") && err.contains("NotImplementedError"),
            "{round} run: {err}"
        );
        assert!(
            !err.contains("] Running "),
            "{round} run: refused only when it ran: {err}"
        );
        assert_eq!(observe_db(db, "alembic_version"), at_base, "{round} run");
    }
}

/// A pack entry whose stored bytes fail their checksum is read again from its file. When
/// preflight had trusted the entry's clean verdict, the body read from the file is checked
/// before it runs: the verdict vouched for the stored bytes, not for whatever the file now
/// holds. Here the file was edited without changing its size or time (what the packs key
/// on), to a body the check refuses but whose refused line would never execute.
#[test]
fn a_damaged_pack_entry_is_checked_before_its_file_runs() {
    let setup = settled_linear_project();
    let (project, cache, versions, db) = (&setup.project, &setup.cache, &setup.versions, &setup.db);
    let cache_dir = &setup.cache_dir;
    for args in ["upgrade head", "downgrade base"] {
        run_ok(project, cache, args);
    }
    let at_base = observe_db(db, "alembic_version");

    let victim = versions.join("3983f98c5b1b_index_packets.py");
    let stored_time = std::fs::metadata(&victim).unwrap().modified().unwrap();
    let original = std::fs::read_to_string(&victim).unwrap();
    let mut edited = original.replacen(
        "def upgrade():\n    pass",
        "def upgrade():\n    if False:\n        from myapp.models import Packet",
        1,
    );
    // Same size as before: the longdoc gives up what the body gained.
    let padding = "This revision carries a longer explanation that spans";
    let grown = edited.len() - original.len();
    edited = edited.replacen(padding, &padding[grown..], 1);
    assert_eq!(edited.len(), original.len());
    std::fs::write(&victim, &edited).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_modified(stored_time)
        .unwrap();

    // Damage the victim's stored source (kept as plain text beside its tree) in every pack.
    let mut damaged = 0;
    for entry in std::fs::read_dir(cache_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "bodies") {
            continue;
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let needle = padding.as_bytes();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[at] ^= 0x20;
            std::fs::write(&path, bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(
        damaged > 0,
        "the victim's body is in no pack: the test would prove nothing"
    );

    let out = run(project, cache, "upgrade head");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.code, Some(1), "{err}");
    assert!(
        err.contains("3983f98c5b1b_index_packets.py:") && err.contains("myapp"),
        "{err}"
    );
    assert_eq!(observe_db(db, "alembic_version"), at_base);
}

/// What an upgrade reads ahead on another thread while it opens the database is what it
/// would have read in line: the same revisions, the same warnings and errors, reported at
/// the same point. A read-ahead the command never uses is waited for, not left running.
#[test]
fn revisions_read_ahead_are_the_revisions_read_in_line() {
    use meshview::alembic_compat::command::{Ctx, ScriptDirectory};
    use meshview::alembic_compat::config::{Config, ConfigOptions};
    let directory = |dir: &Path| {
        let opts = ConfigOptions::from_cli(&[], None, Vec::new(), None, dir.to_path_buf()).unwrap();
        ScriptDirectory::from_config(Config::load(opts).unwrap()).unwrap()
    };
    let read = |dir: &Path, ahead: bool| {
        let sd = directory(dir);
        if ahead {
            sd.prefetch_revisions();
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut ctx = Ctx::new(&mut out, &mut err, false);
        let got = match sd.revisions(&mut ctx, true) {
            Ok(r) => format!(
                "{:?}",
                r.scripts.iter().map(|s| &s.revision).collect::<Vec<_>>()
            ),
            Err(e) => format!("error: {e}"),
        };
        drop(ctx);
        format!("{got}\n{}", String::from_utf8_lossy(&err))
    };
    let fixtures = common::repo_root().join("tests/fixtures");
    for name in [
        "linear",
        "merges",
        "err_duplicate_id",
        "err_syntax",
        "err_missing_parent",
    ] {
        let dir = fixtures.join(name);
        let in_line = read(&dir, false);
        assert!(in_line.len() > 3, "{name}: nothing read: {in_line}");
        for round in 0..3 {
            assert_eq!(
                read(&dir, true),
                in_line,
                "{name}, read ahead (round {round})"
            );
        }
    }
    let unused = directory(&fixtures.join("linear"));
    unused.prefetch_revisions();
    drop(unused);
}

/// A body read from a pack is not kept once it has run, so a command that runs it twice
/// (with `transaction_per_migration`, every body runs in a rehearsal first) reads it from
/// the pack again, and both runs do what a run from the files does.
#[test]
fn bodies_from_the_packs_run_twice_in_one_command() {
    let setup = settled_project("linear", "transaction_per_migration=True");
    let (project, cache, db) = (&setup.project, &setup.cache, &setup.db);
    let ok = |args: &str| run_ok(project, cache, args);
    // The first run parses the files and stores the bodies; the later ones read the packs.
    ok("upgrade head");
    let from_files = observe_db(db, "alembic_version");
    ok("downgrade base");
    setup.assert_packs_written();
    ok("upgrade head");
    assert_eq!(observe_db(db, "alembic_version"), from_files);
    ok("downgrade base");
    assert_eq!(observe_db(db, "alembic_version").0, Vec::<String>::new());
}

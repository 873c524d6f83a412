//! The process allocator both binaries install: mimalloc, called through its plain entry
//! points wherever the requested alignment allows.
//!
//! The `mimalloc` crate's allocator passes every request to `mi_malloc_aligned`, whose fast
//! path only serves a block when the size class's next free block happens to sit on the
//! alignment and the block is at most 1 KiB; anything else goes through a generic path that
//! over-allocates. Every mimalloc block is at least 8-byte aligned (sizes are whole words and
//! pages are aligned), so requests aligned to 8 or less, nearly all of Rust's, can use
//! `mi_malloc`, `mi_zalloc` and `mi_realloc` directly. A data migration allocates a few dozen
//! times per row: this took a tenth off the allocator's instructions there.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

// The `mimalloc` crate links the library; these are its exported C functions (mimalloc.h),
// declared once here for the allocator, SQLite's memory hooks and the purge option below.
// libmimalloc-sys declares `mi_option_set` only behind its `extended` feature, without the
// option we set, so these declarations are ours.
extern "C" {
    pub fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_zalloc(size: usize) -> *mut c_void;
    pub fn mi_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    pub fn mi_free(p: *mut c_void);
    pub fn mi_usable_size(p: *const c_void) -> usize;
    pub fn mi_good_size(size: usize) -> usize;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    pub fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// Every block mimalloc hands out is aligned to at least this (one machine word).
const MI_MIN_ALIGN: usize = std::mem::size_of::<usize>();

pub struct Allocator;

// SAFETY: each method forwards to mimalloc, which returns null on failure, blocks of at least
// the requested size, aligned to at least `MI_MIN_ALIGN`; larger alignments take the
// `mimalloc` crate's aligned entry points. `mi_free` accepts blocks from any of them.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MI_MIN_ALIGN {
            mi_malloc(layout.size()).cast()
        } else {
            mimalloc::MiMalloc.alloc(layout)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MI_MIN_ALIGN {
            mi_zalloc(layout.size()).cast()
        } else {
            mimalloc::MiMalloc.alloc_zeroed(layout)
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr.cast())
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MI_MIN_ALIGN {
            mi_realloc(ptr.cast(), new_size).cast()
        } else {
            mimalloc::MiMalloc.realloc(ptr, layout, new_size)
        }
    }
}

// mimalloc's `mi_option_t` for `purge_delay` (mimalloc.h; the same index in v2 and v3); a
// test below checks the index against the option's default.
pub const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

// mimalloc's `mi_option_t` for `arena_reserve`, in KiB (mimalloc.h); a test below checks the
// index against the option's default.
pub const MI_OPTION_ARENA_RESERVE: std::ffi::c_int = 23;

// mimalloc's `mi_option_t` for `allow_thp` (mimalloc.h, v3); a test below checks the index
// against the option's default and its neighbours'.
pub const MI_OPTION_ALLOW_THP: std::ffi::c_int = 43;

/// mimalloc reserves its first arena at 1 GiB and keeps that arena's bookkeeping at its start:
/// about 2 MiB of address space before the first page, so a small command's heap begins in a
/// second huge page, and every huge page a process touches first is zeroed whole. On the
/// benchmark VM (nested, with free page reporting) that costs about 1.4 ms per huge page
/// once the host has taken the memory back. A 32 MiB first arena keeps the bookkeeping
/// small enough for the first pages to share its huge page; later arenas are reserved as the
/// heap grows, doubling every eight.
///
/// `huge_pages: false` also keeps the heap in 4 KiB pages. A command that runs revision
/// bodies against a database touches 3-4 MiB of heap spread over 10-12 MiB of huge pages
/// (a page per size class and thread), and after another process has freed memory each
/// fresh page costs the host's fault: MeshView from empty took 13.1 instead of 18.4 ms
/// right after a Python Alembic run (20 interleaved pairs), the 200-revision upgrade 38.0
/// instead of 44.8 ms, the 100,000-node data migration 914 instead of 972 ms after a
/// memory-hungry process and the same on a quiet machine. Commands that only read a history
/// keep huge pages: their heap is dense, and `heads` on 10,000 revisions took 37 instead of
/// 27 ms without them. The cost of the rule: an upgrade on such a history has a dense heap
/// too (80 MiB), and `upgrade +1` there takes about 41 instead of 30 ms on a quiet machine.
/// The verb is all there is to go by before the first allocation.
///
/// For short commands only: it must run before the first allocation, so a binary registers
/// it with [`reserve_small_arenas_before_main!`].
pub fn reserve_small_arenas(huge_pages: bool) {
    // SAFETY: sets process-wide allocator options before mimalloc reserves any arena.
    unsafe {
        mi_option_set(MI_OPTION_ARENA_RESERVE, SMALL_ARENA_RESERVE_KIB);
        if !huge_pages {
            mi_option_set(MI_OPTION_ALLOW_THP, 0);
        }
    }
}

/// The first arena [`reserve_small_arenas`] asks for: 32 MiB, in KiB as mimalloc counts it.
pub const SMALL_ARENA_RESERVE_KIB: std::ffi::c_long = 32 * 1024;

/// Whether a command line (without the program name) keeps huge pages: all but the
/// commands that run revision bodies against a database (see [`reserve_small_arenas`]).
/// Reads Alembic's global options only as far as finding the verb takes; a wrong guess
/// costs time, never behaviour.
pub fn command_keeps_huge_pages<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let takes_value = match arg {
            b"-c" | b"-n" | b"-x" => true,
            _ => match arg.strip_prefix(b"--") {
                // Long options may be abbreviated, as clap's `infer_long_args` allows.
                Some(name) if !name.is_empty() && !name.contains(&b'=') => {
                    [&b"config"[..], b"name", b"url"]
                        .iter()
                        .any(|long| long.starts_with(name))
                }
                _ => false,
            },
        };
        if takes_value {
            args.next();
        } else if arg == b"--" {
            return args.next().map_or(true, keeps_huge_pages);
        } else if !arg.starts_with(b"-") {
            return keeps_huge_pages(arg);
        }
    }
    true
}

fn keeps_huge_pages(verb: &[u8]) -> bool {
    !matches!(verb, b"upgrade" | b"downgrade" | b"stamp")
}

/// The ELF constructor [`reserve_small_arenas_before_main!`] registers. glibc passes
/// constructors the process's `argc`, `argv` and `envp`.
///
/// # Safety
/// `argv` is null or holds `argc` pointers to NUL-terminated strings, as the loader passes.
pub unsafe extern "C" fn reserve_small_arenas_for_command(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
    _envp: *const *const std::ffi::c_char,
) {
    let count = usize::try_from(argc).unwrap_or(0);
    let huge_pages = if argv.is_null() || count == 0 {
        true
    } else {
        // SAFETY: the loader's argv: `argc` valid C strings, program name first.
        let args = (1..count).filter_map(|i| {
            let p = unsafe { *argv.add(i) };
            (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes())
        });
        command_keeps_huge_pages(args)
    };
    reserve_small_arenas(huge_pages);
}

/// The same heap as a database-writing command's: small arenas, no huge pages.
pub extern "C" fn reserve_small_arenas_without_huge_pages() {
    reserve_small_arenas(false);
}

/// Registers [`reserve_small_arenas_for_command`] (or, with `without_huge_pages`, the plan of
/// a database-writing command whatever the arguments) as an ELF constructor of the binary
/// that expands it: Rust's runtime allocates on its way to `main`, so `main` is too late.
#[macro_export]
macro_rules! reserve_small_arenas_before_main {
    () => {
        #[cfg(target_os = "linux")]
        #[used]
        #[link_section = ".init_array"]
        static RESERVE_SMALL_ARENAS: unsafe extern "C" fn(
            std::ffi::c_int,
            *const *const std::ffi::c_char,
            *const *const std::ffi::c_char,
        ) = $crate::allocator::reserve_small_arenas_for_command;
    };
    (without_huge_pages) => {
        #[cfg(target_os = "linux")]
        #[used]
        #[link_section = ".init_array"]
        static RESERVE_SMALL_ARENAS: extern "C" fn() =
            $crate::allocator::reserve_small_arenas_without_huge_pages;
    };
}

/// A command is one short process: memory mimalloc frees is worth keeping until exit, not
/// handing back to the OS a second later. A data migration frees each row's objects as it
/// goes, and with purging on it spent a twentieth of its time in the kernel re-zeroing the
/// pages it had given back (100,000 rows: 2.44 -> 2.20 s, median of 8 interleaved runs).
/// For commands only: a long-running process (the writer, the web server) should give
/// freed memory back.
pub fn keep_freed_memory() {
    // SAFETY: sets a process-wide allocator option; mimalloc reads it at each purge decision.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// SQLite's own allocations go through mimalloc instead of glibc's malloc. SQLite allocates
/// for every statement it parses and for the schema it re-reads after each `ALTER`, and
/// glibc's malloc and free were a twentieth of a 200-revision upgrade. False when SQLite was
/// already initialized and keeps its own allocator (slower, not wrong). Call it before any
/// connection is opened; its test lives in `ralembic`'s, a process without other SQLite use.
pub fn sqlite_allocates_with_mimalloc() -> bool {
    use rusqlite::ffi;
    use std::ffi::{c_int, c_void};
    fn size_of_request(n: c_int) -> usize {
        usize::try_from(n).unwrap_or(0)
    }
    fn as_c_int(n: usize) -> c_int {
        c_int::try_from(n).unwrap_or(c_int::MAX)
    }
    unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
        mi_malloc(size_of_request(n))
    }
    unsafe extern "C" fn x_free(p: *mut c_void) {
        mi_free(p)
    }
    unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
        mi_realloc(p, size_of_request(n))
    }
    unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
        as_c_int(mi_usable_size(p))
    }
    unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
        as_c_int(mi_good_size(size_of_request(n)))
    }
    unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    unsafe extern "C" fn x_shutdown(_: *mut c_void) {}
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: called before any connection is opened (SQLite is not initialized yet); SQLite
    // copies the methods before returning, and every function above is thread-safe.
    let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) };
    rc == ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An option's default, or None when the environment variable that overrides it is set.
    /// Nothing in this test binary sets options (it registers no constructor either).
    fn option_default(option: std::ffi::c_int, env: &str) -> Option<std::ffi::c_long> {
        if std::env::var_os(env).is_some() {
            return None;
        }
        // SAFETY: reads an allocator option.
        Some(unsafe { mi_option_get(option) })
    }

    #[test]
    fn the_arena_reserve_option_index_is_mimallocs() {
        // 1 GiB in KiB on 64-bit targets, which no neighbouring option has.
        if let Some(default) = option_default(MI_OPTION_ARENA_RESERVE, "MIMALLOC_ARENA_RESERVE") {
            assert_eq!(
                default,
                1024 * 1024,
                "option {MI_OPTION_ARENA_RESERVE} is not arena_reserve"
            );
        }
    }

    #[test]
    fn the_purge_delay_option_index_is_mimallocs() {
        // 1000 ms in mimalloc v3, 10 ms in v2; no neighbouring option has either default.
        if let Some(default) = option_default(MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY") {
            assert!(
                default == 1000 || default == 10,
                "option {MI_OPTION_PURGE_DELAY} is not purge_delay (default {default})"
            );
        }
    }

    #[test]
    fn the_allow_thp_option_index_is_mimallocs() {
        // allow_thp defaults to 1 on Linux; its neighbours are page_cross_thread_max_reclaim
        // (32) and minimal_purge_size (0).
        for (option, env, default) in [
            (
                MI_OPTION_ALLOW_THP - 1,
                "MIMALLOC_PAGE_CROSS_THREAD_MAX_RECLAIM",
                32,
            ),
            (MI_OPTION_ALLOW_THP, "MIMALLOC_ALLOW_THP", 1),
            (MI_OPTION_ALLOW_THP + 1, "MIMALLOC_MINIMAL_PURGE_SIZE", 0),
        ] {
            if let Some(value) = option_default(option, env) {
                assert_eq!(value, default, "option {option} is not what {env} sets");
            }
        }
    }

    /// The scanner repeats the CLI's value-taking global options (it runs before clap can be
    /// built): every such option of the real parser must make it skip a value.
    #[test]
    fn the_verb_scanner_knows_every_global_option_that_takes_a_value() {
        use clap::CommandFactory;
        let cli = crate::alembic_compat::command::cli::Cli::command();
        for arg in cli.get_arguments() {
            if !arg.get_action().takes_values() {
                continue;
            }
            let short = arg.get_short().map(|c| format!("-{c}"));
            let long = arg.get_long().map(|l| format!("--{l}"));
            for flag in short.into_iter().chain(long) {
                let line = [flag.as_bytes(), b"upgrade", b"heads"];
                assert!(
                    command_keeps_huge_pages(line),
                    "{flag} takes a value, so `{flag} upgrade heads` runs `heads`"
                );
            }
        }
    }

    #[test]
    fn only_commands_that_write_the_database_give_up_huge_pages() {
        let keeps =
            |line: &str| command_keeps_huge_pages(line.split_whitespace().map(str::as_bytes));
        for line in [
            "heads",
            "history -r base:head",
            "-c alembic.ini current",
            "-x upgrade=1 heads",
            "--config upgrade show head",
            "--conf upgrade branches",
            "-n upgrade check",
            "--url sqlite:///x.db heads",
            "",
            "--version",
            "-q",
        ] {
            assert!(keeps(line), "{line:?}");
        }
        for line in [
            "upgrade head",
            "downgrade -1",
            "stamp heads",
            "-c alembic.ini upgrade head",
            "--raiseerr -q -x a=b upgrade heads",
            "--config=x.ini --name=db2 downgrade base",
            "-- upgrade head",
            "--na db2 stamp base",
        ] {
            assert!(!keeps(line), "{line:?}");
        }
    }

    #[test]
    fn blocks_keep_their_alignment_and_contents() {
        let a = Allocator;
        for (size, align) in [
            (1, 1),
            (7, 1),
            (8, 8),
            (24, 8),
            (24, 16),
            (48, 16),
            (100, 32),
        ] {
            let layout = Layout::from_size_align(size, align).expect("valid layout");
            // SAFETY: non-zero sizes; every block is written within its size and freed once.
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                assert!((0..size).all(|i| *p.add(i) == 0));
                std::ptr::write_bytes(p, 0xab, size);
                let q = a.realloc(p, layout, size * 40);
                assert!(!q.is_null());
                assert_eq!(q as usize % align, 0, "realloc size {size} align {align}");
                assert!((0..size).all(|i| *q.add(i) == 0xab));
                a.dealloc(q, Layout::from_size_align(size * 40, align).expect("valid"));
                let r = a.alloc(layout);
                assert_eq!(r as usize % align, 0);
                a.dealloc(r, layout);
            }
        }
    }
}

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
// declared once here for the allocator and for `ralembic`'s SQLite memory hooks.
extern "C" {
    pub fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_zalloc(size: usize) -> *mut c_void;
    pub fn mi_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    pub fn mi_free(p: *mut c_void);
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

#[cfg(test)]
mod tests {
    use super::*;

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

//! Link options cargo cannot set per binary from Cargo.toml, and the fingerprint of the
//! library's code that its caches are keyed by.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // `ralembic` is a command that lives a few milliseconds, so the dynamic loader's work is
    // part of every run. As a position-independent executable it carried 17,839 relative
    // relocations: the loader rewrote them at each start, copying on write the 80-odd pages
    // of tables they sit in. Linked at a fixed address the linker resolves them once, and
    // those pages stay shared with the page cache: MeshView from empty 9.35 -> 8.49 ms
    // (median of 40 interleaved runs). The cost is address randomisation of ralembic's own
    // code, for a tool that only reads the project's files and database it is pointed at.
    // `meshview`, which serves the network, stays position-independent.
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux {
        println!("cargo:rustc-link-arg-bin=ralembic=-no-pie");
    }
    code_fingerprint();
}

/// `RALEMBIC_CODE_FINGERPRINT`: a hash of every source file of the library and of the
/// locked dependency versions (the parser's pest, the caches' postcard). The caches of parsed
/// revision files hold what this code derived from them (syntax trees, metadata, the
/// checker's verdict), so any change to the code must make them misses. Computed here, not
/// at each start: hashing the parser's sources cost every run about 0.1 ms.
fn code_fingerprint() {
    let root = Path::new("src/alembic_compat");
    let lock = Path::new("Cargo.lock");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed={}", lock.display());
    let mut files = vec![lock.to_path_buf()];
    collect(root, &mut files);
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        file.to_string_lossy().hash(&mut h);
        bytes.hash(&mut h);
    }
    println!(
        "cargo:rustc-env=RALEMBIC_CODE_FINGERPRINT={:016x}",
        h.finish()
    );
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

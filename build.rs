//! Link options cargo cannot set per binary from Cargo.toml.

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
}

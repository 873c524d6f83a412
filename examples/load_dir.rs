//! Debug aid: `cargo run --release --example load_dir -- DIR` loads a versions directory as
//! the commands do and prints how long it took.
fn main() {
    let dirs: Vec<std::path::PathBuf> = std::env::args().skip(1).map(Into::into).collect();
    let t = std::time::Instant::now();
    match meshview::alembic_compat::script::load_scripts(&dirs, false) {
        Ok(l) => println!("{} scripts in {:?}", l.scripts.len(), t.elapsed()),
        Err(e) => println!("{} errors, first: {}", e.len(), e[0]),
    }
}

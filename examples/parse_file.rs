//! Debug aid: `cargo run --example parse_file -- FILE...` prints each file's metadata, or its
//! positioned syntax error; with DUMP=1 also the canonical AST dump (see `script::dump`).
fn main() {
    for p in std::env::args().skip(1) {
        let src = match std::fs::read_to_string(&p) {
            Ok(s) => s,
            Err(e) => {
                println!("{p}: {e}");
                continue;
            }
        };
        match meshview::alembic_compat::script::parse_module(&p, &src) {
            Ok(m) => {
                let meta = meshview::alembic_compat::script::ScriptMeta::from_module(&p, &src, &m);
                println!("{p}: ok {} stmts {:?}", m.body.len(), meta);
                if std::env::var("DUMP").is_ok() {
                    println!(
                        "{}",
                        meshview::alembic_compat::script::dump::dump_module(&m)
                    );
                }
            }
            Err(e) => println!("{}", e.render()),
        }
    }
}

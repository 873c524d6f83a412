//! Debug aid: runs a revision file's upgrade() or downgrade() with a host that prints each
//! operation and answers queries from an in-memory SQLite database.
//! `cargo run --example eval_file -- path/to/rev.py [upgrade|downgrade]`
use meshview::alembic_compat::eval::{run_revision_function, Host, HostError, QueryOutput};
use meshview::alembic_compat::ops::{Literal, Op, SourcePos};
use meshview::alembic_compat::script::parse_module;

struct Printer(rusqlite::Connection);

impl Host for Printer {
    fn is_offline(&self) -> bool {
        false
    }
    fn apply(&mut self, op: &Op, pos: &SourcePos, _: bool) -> Result<(), HostError> {
        println!("{pos}: {op:?}");
        Ok(())
    }
    fn query(&mut self, sql: &str, params: &[Literal]) -> Result<QueryOutput, HostError> {
        println!("query: {sql} {params:?}");
        let err = |e: rusqlite::Error| HostError {
            class: "sqlalchemy.exc.OperationalError".into(),
            message: e.to_string(),
        };
        let mut stmt = self.0.prepare(sql).map_err(err)?;
        let columns: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let n = columns.len();
        let p: Vec<rusqlite::types::Value> = params
            .iter()
            .map(|l| match l {
                Literal::Int(i) => rusqlite::types::Value::Integer(*i),
                Literal::Str(s) => rusqlite::types::Value::Text(s.clone()),
                _ => rusqlite::types::Value::Null,
            })
            .collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(p)).map_err(err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(err)? {
            let mut row = Vec::new();
            for i in 0..n {
                row.push(match r.get_ref(i).map_err(err)? {
                    rusqlite::types::ValueRef::Integer(i) => Literal::Int(i),
                    rusqlite::types::ValueRef::Text(t) => {
                        Literal::Str(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Real(f) => Literal::Float(f),
                    _ => Literal::None,
                });
            }
            out.push(row);
        }
        Ok(QueryOutput {
            columns,
            rows: out,
            rowcount: -1,
        })
    }
    fn x_arguments(&self) -> Vec<String> {
        Vec::new()
    }
    fn print(&mut self, text: &str) {
        print!("{text}");
    }
    fn log(&mut self, level: u32, logger: &str, message: &str) {
        eprintln!("log {level} [{logger}] {message}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: eval_file FILE [upgrade|downgrade]");
        std::process::exit(2);
    };
    let func = args.get(2).map(String::as_str).unwrap_or("upgrade");
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let module = match parse_module(path, &src) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let conn = match rusqlite::Connection::open_in_memory() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut host = Printer(conn);
    if let Err(e) =
        run_revision_function(std::path::Path::new(path), &src, &module, func, &mut host)
    {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

//! Benchmark aid for `scripts/bench-upgrade`: the floor under any migration tool that runs a
//! given upgrade on ralembic's SQLite. Replays the statements Python Alembic sent to its
//! driver (captured by the bench as JSON: `[[sql, params, executemany], ...]`) on a database
//! opened exactly as `ralembic` opens it (same SQLite build, allocator and pragmas), in one
//! `BEGIN IMMEDIATE` ... `COMMIT`, each statement prepared once and stepped to its end. No
//! interpreter, no planning, no reflection of our own: what is left is SQLite's work.
//!
//! `cargo run --release --example replay_sql -- STATEMENTS.json DB [PRISTINE] [RUNS]`
//! prints the fastest run's time in milliseconds (opening the database to closing it).
//! Each run starts from a copy of PRISTINE, or from no file.
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use meshview::alembic_compat::runtime::log::AlembicLog;
use meshview::alembic_compat::runtime::{ContextOptions, MigrationContext};
use rusqlite::types::Value as SqlValue;
use serde_json::Value as Json;

#[global_allocator]
static GLOBAL: meshview::allocator::Allocator = meshview::allocator::Allocator;

// The heap laid out as `ralembic upgrade`'s is.
meshview::reserve_small_arenas_before_main!(without_huge_pages);

struct Statement {
    sql: String,
    /// One parameter set, or several for an `executemany`.
    param_sets: Vec<Vec<SqlValue>>,
}

fn sql_value(v: &Json) -> Result<SqlValue> {
    Ok(match v {
        Json::Null => SqlValue::Null,
        Json::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().context("number out of range")?),
        },
        Json::String(s) => SqlValue::Text(s.clone()),
        Json::Object(o) => match o.get("b").and_then(Json::as_str) {
            Some(hex) if hex.is_ascii() && hex.len() % 2 == 0 => SqlValue::Blob(
                (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                    .collect::<Result<_, _>>()
                    .context("blob hex")?,
            ),
            _ => bail!("unexpected parameter {v}"),
        },
        Json::Array(_) => bail!("unexpected parameter {v}"),
    })
}

fn load(path: &Path) -> Result<Vec<Statement>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let items: Vec<(String, Json, bool)> = serde_json::from_str(&text)?;
    items
        .into_iter()
        .map(|(sql, params, many)| {
            let list = |v: &Json| -> Result<Vec<SqlValue>> {
                match v {
                    Json::Array(a) => a.iter().map(sql_value).collect(),
                    Json::Null => Ok(Vec::new()),
                    other => bail!("parameters {other} of {sql}"),
                }
            };
            let param_sets = if many {
                match &params {
                    Json::Array(sets) => sets.iter().map(list).collect::<Result<_>>()?,
                    other => bail!("executemany parameters {other}"),
                }
            } else {
                vec![list(&params)?]
            };
            Ok(Statement { sql, param_sets })
        })
        .collect()
}

fn replay(statements: &[Statement], db: &Path) -> Result<f64> {
    let start = Instant::now();
    let url = format!("sqlite:///{}", db.display());
    let cwd = std::env::current_dir()?;
    let mut ctx =
        MigrationContext::open(&url, &cwd, ContextOptions::default(), AlembicLog::default())?;
    ctx.begin()?;
    {
        let conn = ctx.connection().context("no connection")?;
        for s in statements {
            let mut stmt = conn.prepare_cached(&s.sql).with_context(|| s.sql.clone())?;
            for set in &s.param_sets {
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(set.iter()))
                    .with_context(|| s.sql.clone())?;
                while rows.next()?.is_some() {}
            }
        }
    }
    ctx.commit()?;
    drop(ctx);
    Ok(start.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    meshview::allocator::keep_freed_memory();
    let _ = meshview::allocator::sqlite_allocates_with_mimalloc();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(json), Some(db)) = (args.first(), args.get(1)) else {
        bail!("usage: replay_sql STATEMENTS.json DB [PRISTINE|-] [RUNS]");
    };
    let pristine = args.get(2).filter(|p| p.as_str() != "-");
    let runs: usize = match args.get(3) {
        Some(n) => n.parse().context("RUNS")?,
        None => 10,
    };
    let statements = load(Path::new(json))?;
    let db = Path::new(db);
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        match pristine {
            Some(p) => {
                std::fs::copy(p, db).with_context(|| format!("copy {p}"))?;
            }
            None if db.exists() => std::fs::remove_file(db)?,
            None => {}
        }
        best = best.min(replay(&statements, db)?);
    }
    println!("{:.2}", best * 1000.0);
    Ok(())
}

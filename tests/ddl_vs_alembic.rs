//! `ddl` and `batch` against the real Alembic: every case in `fixtures/_ddl/cases.txt` is run
//! by `scripts/ddl-oracle.py` (Alembic 1.20 + SQLAlchemy 2.1 on SQLite, online and `--sql`),
//! which also records the case as our `Op` values. We render the same ops, execute them on a
//! fresh SQLite seeded the same way, and compare statement text and parameters, the error
//! (class and message), `--sql` output, and the database afterwards (sqlite_master, data).
//!
//! `DDL_CASE=name` runs one case. Python prints `0x...` addresses in some messages; both sides
//! are normalized to `0xADDR`.

use meshview::alembic_compat::batch::{batch_statements_offline, batch_steps};
use meshview::alembic_compat::ddl::{
    bulk_insert_offline, bulk_insert_sql, offline_text, render_op_steps, DdlError, RenderOptions,
};
use meshview::alembic_compat::ops::{Literal, Op};
use rusqlite::types::Value;
use serde_json::{json, Value as J};
use std::path::Path;
use std::process::Command;

fn oracle() -> J {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/ddl-oracle.py"))
        .arg(root.join("tests/fixtures/_ddl/cases.txt"))
        .output()
        .expect("run the oracle (scripts/setup-venv makes .venv)");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Addresses, and the columns of a CircularDependencyError, which Python lists in its set
/// order (PYTHONHASHSEED's) and ralembic sorted.
fn norm(s: &str) -> String {
    let s = regex::Regex::new("0x[0-9a-f]+")
        .unwrap()
        .replace_all(s, "0xADDR")
        .into_owned();
    match s.strip_prefix("Circular dependency detected. (") {
        Some(rest) => {
            let mut names: Vec<&str> = rest.trim_end_matches(')').split(", ").collect();
            names.sort_unstable();
            format!("Circular dependency detected. ({})", names.join(", "))
        }
        None => s,
    }
}

fn lit_value(l: &Literal) -> Value {
    match l {
        Literal::None => Value::Null,
        Literal::Bool(b) => Value::Integer(i64::from(*b)),
        Literal::Int(i) => Value::Integer(*i),
        Literal::Float(f) => Value::Real(*f),
        Literal::Str(s) => Value::Text(s.clone()),
        Literal::Bytes(b) => Value::Blob(b.clone()),
        other => Value::Text(format!("{other:?}")),
    }
}

fn lit_json(l: &Literal) -> J {
    match l {
        Literal::None => J::Null,
        Literal::Bool(b) => json!(i64::from(*b)),
        Literal::Int(i) => json!(i),
        Literal::Float(f) => json!(f),
        Literal::Str(s) => json!(s),
        Literal::Bytes(b) => json!({ "bytes": b }),
        other => json!(format!("{other:?}")),
    }
}

fn err_json(e: &DdlError) -> J {
    json!({"class": e.python_class(), "message": norm(&e.to_string())})
}

fn value_json(v: rusqlite::types::ValueRef) -> J {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => J::Null,
        V::Integer(i) => json!(i),
        V::Real(f) => json!(f),
        V::Text(t) => json!(String::from_utf8_lossy(t)),
        V::Blob(b) => json!({ "bytes": b }),
    }
}

/// Python's `json.dumps` of a row, as the oracle sorts rows by it.
fn py_dumps(row: &[J]) -> String {
    let items: Vec<String> = row
        .iter()
        .map(|v| match v {
            J::Null => "null".into(),
            J::String(s) => serde_json::to_string(s).unwrap(),
            J::Number(n) if n.is_f64() => {
                meshview::alembic_compat::ddl::sqlite::py_float(n.as_f64().unwrap())
            }
            other => other.to_string(),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn dump(conn: &rusqlite::Connection) -> (J, J) {
    let mut st = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let master: Vec<Vec<J>> = st
        .query_map([], |r| {
            Ok((0..4).map(|i| value_json(r.get_ref(i).unwrap())).collect())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut data = serde_json::Map::new();
    for row in &master {
        if row[0] == json!("table") {
            let name = row[1].as_str().unwrap();
            let mut st = conn
                .prepare(&format!("SELECT * FROM \"{}\"", name.replace('"', "\"\"")))
                .unwrap();
            let n = st.column_count();
            let mut rows: Vec<String> = st
                .query_map([], |r| {
                    let vals: Vec<J> = (0..n).map(|i| value_json(r.get_ref(i).unwrap())).collect();
                    Ok(py_dumps(&vals))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort();
            data.insert(name.into(), json!(rows));
        }
    }
    (json!(master), J::Object(data))
}

/// A statement and its parameter rows (none for DDL).
type Bound = (String, Vec<Vec<Literal>>);

struct Outcome {
    statements: Vec<J>,
    error: J,
}

fn run_online(
    ops: &[Op],
    seed: &[String],
    opts: &RenderOptions,
) -> (Outcome, rusqlite::Connection) {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for s in seed {
        conn.execute_batch(s).unwrap();
    }
    let mut statements = vec![];
    let mut error = J::Null;
    let offset_re = regex::Regex::new(r"(?s) in .* at offset \d+$").unwrap();
    'ops: for op in ops {
        // A batch copy's place, and the DROP Alembic runs when the copy fails.
        let mut copy = None;
        let (stmts, err): (Vec<Bound>, Option<DdlError>) = match op {
            Op::Batch(b) => {
                let (plan, e) = batch_steps(Some(&conn), b, opts);
                let at = plan.copy.as_ref().map(|c| c.at);
                copy = plan.copy.map(|c| (c.at, c.drop_new));
                // The copy binds the added columns' Python-side defaults, once.
                let copy_params = plan.copy_params;
                (
                    plan.statements
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| match Some(i) == at && !copy_params.is_empty() {
                            true => (s, vec![copy_params.clone()]),
                            false => (s, vec![]),
                        })
                        .collect(),
                    e,
                )
            }
            Op::BulkInsert {
                table,
                rows,
                multiinsert,
            } => (bulk_insert_sql(table, rows, *multiinsert), None),
            other => {
                let (s, e) = render_op_steps(other, opts);
                (s.into_iter().map(|s| (s, vec![])).collect(), e)
            }
        };
        for (i, (sql, params)) in stmts.into_iter().enumerate() {
            statements.push(json!({
                "sql": sql,
                "params": params.iter().map(|r| r.iter().map(lit_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
            }));
            let res = if params.is_empty() {
                conn.execute_batch(&sql).map(|_| ())
            } else {
                let mut st = conn.prepare(&sql).unwrap();
                params.iter().try_for_each(|r| {
                    st.execute(rusqlite::params_from_iter(r.iter().map(lit_value)))
                        .map(|_| ())
                })
            };
            if let Err(e) = res {
                // rusqlite reports a syntax error as "<msg> in <sql> at offset N"; Python's
                // sqlite3 gives just <msg>
                let msg = offset_re.replace(&e.to_string(), "").into_owned();
                error = json!({"class": "OperationalError", "message": format!(
                    "(sqlite3.OperationalError) {msg}\n[SQL: {sql}]\n(Background on this error at: https://sqlalche.me/e/21/e3q8)")});
                if let Some((_, drop_new)) = copy.filter(|(at, _)| i == *at || i == at + 1) {
                    statements.push(json!({"sql": drop_new, "params": []}));
                    conn.execute_batch(&drop_new).unwrap();
                }
                break 'ops;
            }
        }
        if let Some(e) = err {
            error = err_json(&e);
            break;
        }
    }
    (Outcome { statements, error }, conn)
}

fn run_offline(ops: &[Op], opts: &RenderOptions) -> (String, J) {
    let mut text = String::new();
    for op in ops {
        let (stmts, err) = match op {
            Op::Batch(b) => match batch_statements_offline(b, opts) {
                Ok(plan) => (plan.statements, None),
                Err(e) => (vec![], Some(e)),
            },
            Op::BulkInsert { table, rows, .. } => bulk_insert_offline(table, rows),
            other => render_op_steps(other, opts),
        };
        for s in stmts {
            text += &offline_text(&s);
        }
        if let Some(e) = err {
            return (text, err_json(&e));
        }
    }
    (text, J::Null)
}

fn norm_err(e: &J) -> J {
    match e {
        J::Null => J::Null,
        e => json!({"class": e["class"], "message": norm(e["message"].as_str().unwrap())}),
    }
}

#[test]
fn ddl_matches_alembic() {
    let cases = oracle();
    let only = std::env::var("DDL_CASE").ok();
    let mut failures = vec![];
    let mut ran = 0;
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        ran += 1;
        let ops: Vec<Op> = match serde_json::from_value(case["ops"].clone()) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: ops JSON does not deserialize: {e}"));
                continue;
            }
        };
        let opts = RenderOptions {
            naming_convention: serde_json::from_value(case["naming_convention"].clone()).unwrap(),
        };
        let seed: Vec<String> = serde_json::from_value(case["seed"].clone()).unwrap();
        let (ours, conn) = run_online(&ops, &seed, &opts);
        let want = &case["online"];
        let mut diffs = vec![];
        let want_statements = &want["statements"];
        if json!(ours.statements) != *want_statements {
            diffs.push(format!(
                "statements\n  ours:   {}\n  alembic: {}",
                serde_json::to_string_pretty(&ours.statements).unwrap(),
                serde_json::to_string_pretty(&want_statements).unwrap()
            ));
        }
        if norm_err(&ours.error) != norm_err(&want["error"]) {
            diffs.push(format!(
                "error\n  ours:    {}\n  alembic: {}",
                ours.error, want["error"]
            ));
        }
        // After a failure the database state is the runtime's business (its transaction);
        // here only the statements and the error are compared.
        let (master, data) = dump(&conn);
        if !want["error"].is_null() {
        } else if master != want["master"] {
            diffs.push(format!(
                "sqlite_master\n  ours:    {master}\n  alembic: {}",
                want["master"]
            ));
        }
        if want["error"].is_null() && data != want["data"] {
            diffs.push(format!(
                "data\n  ours:    {data}\n  alembic: {}",
                want["data"]
            ));
        }
        let (text, err) = run_offline(&ops, &opts);
        if text != want_str(&case["offline"]["text"]) {
            diffs.push(format!(
                "--sql text\n  ours:    {text:?}\n  alembic: {:?}",
                case["offline"]["text"]
            ));
        }
        if norm_err(&err) != norm_err(&case["offline"]["error"]) {
            diffs.push(format!(
                "--sql error\n  ours:    {err}\n  alembic: {}",
                case["offline"]["error"]
            ));
        }
        if !diffs.is_empty() {
            failures.push(format!("== {name}\n{}", diffs.join("\n")));
        }
    }
    assert!(ran > 0, "no case ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases differ from Alembic:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{ran} cases match Alembic");
}

fn want_str(j: &J) -> String {
    j.as_str().unwrap_or_default().to_string()
}

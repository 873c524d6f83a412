//! Python `repr()` of what Alembic's diff tuples hold (SQLAlchemy `Table`, `Column`, `Index`,
//! constraints and reflected types), for `alembic check`'s `New upgrade operations detected:
//! [...]`. Where Python prints an object's address we print [`FAKE_ADDRESS`]; the rest is
//! byte-for-byte what SQLAlchemy 2.x's reprs give for reflected SQLite objects.

use super::compare::fk_targets;
use crate::alembic_compat::config::pyutil::py_repr;
use crate::alembic_compat::ddl::sqlite::{ColDef, ConsDef, IdxDef, TableDef};
use crate::alembic_compat::ddl::FAKE_ADDRESS;
use crate::alembic_compat::ops::{Literal, TypeSpec};

pub fn py_str(s: &str) -> String {
    py_repr(s)
}

pub fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// The keyword names a reflected type's positional arguments have in its repr.
fn type_arg_names(name: &str) -> &'static [&'static str] {
    match name {
        "VARCHAR" | "CHAR" | "NVARCHAR" | "NCHAR" | "TEXT" => &["length"],
        "NUMERIC" | "DECIMAL" => &["precision", "scale"],
        "FLOAT" => &["precision"],
        _ => &[],
    }
}

/// `repr()` of a literal keyword value.
pub fn literal(l: &Literal) -> String {
    match l {
        Literal::None => "None".into(),
        Literal::Bool(b) => py_bool(*b).into(),
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => f.to_string(),
        Literal::Str(s) => py_repr(s),
        other => format!("{other:?}"),
    }
}

/// `repr(type)`, e.g. `VARCHAR(length=50)`, `NUMERIC(precision=10, scale=2)`, `NullType()`.
pub fn type_(t: &TypeSpec) -> String {
    let args: Vec<String> = type_arg_names(&t.name)
        .iter()
        .zip(&t.args)
        .map(|(k, v)| format!("{k}={}", literal(v)))
        .collect();
    format!("{}({})", t.name, args.join(", "))
}

/// Reflected types that SQLAlchemy's SQLite dialect defines itself (rendered `sqlite.X()`).
pub fn is_sqlite_type(t: &TypeSpec) -> bool {
    t.dialect.as_deref() == Some("sqlite") || matches!(t.name.as_str(), "JSON" | "JSONB")
}

/// `repr(DefaultClause(text(...)))`: the text is only shown as an object.
pub fn default_clause() -> String {
    format!(
        "DefaultClause(<sqlalchemy.sql.elements.TextClause object at {FAKE_ADDRESS}>, for_update=False)"
    )
}

fn col_type(c: &ColDef) -> String {
    c.type_
        .as_ref()
        .map_or_else(|| "NullType()".to_string(), type_)
}

/// `repr(Column)` of a column of table `table`, with the `ForeignKey('t.c')` targets given.
pub fn column(table: &str, c: &ColDef, fks: &[String]) -> String {
    let mut parts = vec![py_repr(&c.name), col_type(c)];
    parts.extend(fks.iter().map(|f| format!("ForeignKey({})", py_repr(f))));
    parts.push(format!("table=<{table}>"));
    if c.primary_key {
        parts.push("primary_key=True".into());
    }
    if !c.nullable {
        parts.push("nullable=False".into());
    }
    if c.default.is_some() {
        parts.push(format!("server_default={}", default_clause()));
    }
    format!("Column({})", parts.join(", "))
}

/// `repr(Table)`: its columns, not its constraints.
pub fn table(t: &TableDef) -> String {
    let mut parts = vec![py_repr(&t.name), "MetaData()".into()];
    parts.extend(
        t.columns
            .iter()
            .map(|c| column(&t.name, c, &fk_targets(t, &c.name))),
    );
    parts.push("schema=None".into());
    format!("Table({})", parts.join(", "))
}

/// `repr(Index)`; its columns are shown without their foreign keys (Alembic rebuilds the
/// index on copies of the columns).
pub fn index(t: &TableDef, ix: &IdxDef) -> String {
    let mut parts = vec![py_repr(ix.name.as_deref().unwrap_or_default())];
    for name in ix.columns.iter().flatten() {
        match t.columns.iter().find(|c| c.name == *name) {
            Some(c) => parts.push(column(&t.name, c, &[])),
            None => parts.push(format!(
                "Column({}, NullType(), table=<{}>)",
                py_repr(name),
                t.name
            )),
        }
    }
    if ix.unique {
        parts.push("unique=True".into());
    }
    format!("Index({})", parts.join(", "))
}

/// `repr(UniqueConstraint)` as `AddConstraintOp.to_constraint()` rebuilds it: untyped columns
/// and no name.
pub fn unique(table: &str, cols: &[String]) -> String {
    let cols: Vec<String> = cols
        .iter()
        .map(|c| format!("Column({}, NullType(), table=<{table}>)", py_repr(c)))
        .collect();
    format!("UniqueConstraint({})", cols.join(", "))
}

/// `repr(ForeignKeyConstraint)` as rebuilt by the ops: SQLAlchemy's generic repr shows the
/// column collection as an object, then the options that are set, then the table holding
/// the untyped local columns (and the referred ones when the key refers to its own table).
pub fn foreign_key(table: &str, c: &ConsDef) -> String {
    let ConsDef::ForeignKey {
        name,
        columns,
        ref_table,
        ref_columns,
        ondelete,
        onupdate,
        deferrable,
        initially,
        ..
    } = c
    else {
        return String::new();
    };
    let mut parts = vec![
        format!("<sqlalchemy.sql.base.ReadOnlyColumnCollection object at {FAKE_ADDRESS}>"),
        "None".to_string(),
    ];
    if let Some(n) = name {
        parts.push(format!("name={}", py_repr(n)));
    }
    if let Some(u) = onupdate {
        parts.push(format!("onupdate={}", py_repr(u)));
    }
    if let Some(d) = ondelete {
        parts.push(format!("ondelete={}", py_repr(d)));
    }
    if let Some(d) = deferrable {
        parts.push(format!("deferrable={}", py_bool(*d)));
    }
    if let Some(i) = initially {
        parts.push(format!("initially={}", py_repr(i)));
    }
    let mut cols: Vec<String> = columns
        .iter()
        .zip(ref_columns)
        .map(|(l, r)| {
            format!(
                "Column({}, NullType(), ForeignKey({}), table=<{table}>)",
                py_repr(l),
                py_repr(&format!("{ref_table}.{r}"))
            )
        })
        .collect();
    if ref_table == table {
        for r in ref_columns {
            if !columns.contains(r) {
                cols.push(format!(
                    "Column({}, NullType(), table=<{table}>)",
                    py_repr(r)
                ));
            }
        }
    }
    parts.push(format!(
        "table=Table({}, MetaData(), {}, schema=None)",
        py_repr(table),
        cols.join(", ")
    ));
    format!("ForeignKeyConstraint({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_reprs() {
        let t = |n: &str, a: &[i64]| TypeSpec {
            dialect: None,
            name: n.into(),
            args: a.iter().map(|x| Literal::Int(*x)).collect(),
            kwargs: vec![],
            custom: None,
        };
        assert_eq!(type_(&t("VARCHAR", &[50])), "VARCHAR(length=50)");
        assert_eq!(
            type_(&t("NUMERIC", &[10, 2])),
            "NUMERIC(precision=10, scale=2)"
        );
        assert_eq!(type_(&t("INTEGER", &[])), "INTEGER()");
    }
}

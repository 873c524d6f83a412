//! Schema changes at random, against Python Alembic: a seeded generator writes histories of
//! revisions that create tables (with every column type, server defaults, named and unnamed
//! constraints, generated columns, indexes and seed rows), add, drop and rename columns and tables, create and
//! drop indexes, insert rows, and alter tables in batch mode (type, nullability, name and
//! default changes, constraints, foreign keys, columns placed with insert_before/after; the
//! block's own partial_reordering, reflect_args, table_args and copy_from), each with a
//! downgrade that undoes it. Both tools walk every history `upgrade +1` to head and
//! `downgrade -1` back to base; after every step exit status, output, version rows, the
//! `sqlite_master` text and every table's rows must be equal (see `common/migrate.rs`). The
//! `--sql` output of the whole history must be equal too, and histories made for `--sql`
//! (every batch block with copy_from) are printed whole both ways. A longer history
//! (DDL_LONG revisions) is run whole, `upgrade head` then `downgrade base`, in one
//! transaction and in one per revision.
//!
//! The generator keeps a model of the schema so that Python Alembic can run every step (a
//! step it fails is a generator bug, reported as such). DDL_SEED and DDL_PROJECTS change the
//! run; DDL_REVISIONS sets revisions per history.

mod common;

use common::migrate::{compare_step, prepare_project, run_candidate, run_oracle, Sequence};
use common::migrate::{Observation, ProjectSetup};
use common::{knob, repo_root, show, Report, Rng};
use std::fmt::Write as _;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Int,
    Str,
    Bool,
    DateTime,
    Date,
    Time,
    Float,
    Numeric,
    Binary,
    Json,
    Enum,
    Uuid,
    Interval,
}

/// Column types (Python), and the kind of value each holds.
const TYPES: &[(&str, Kind)] = &[
    ("sa.Integer()", Kind::Int),
    ("sa.BigInteger()", Kind::Int),
    ("sa.SmallInteger()", Kind::Int),
    ("sqlite.INTEGER()", Kind::Int),
    ("sa.String(40)", Kind::Str),
    ("sa.String()", Kind::Str),
    ("sa.Unicode(40)", Kind::Str),
    ("sa.Text()", Kind::Str),
    ("sa.UnicodeText()", Kind::Str),
    ("sa.VARCHAR(length=12)", Kind::Str),
    ("sa.Boolean()", Kind::Bool),
    ("sa.Boolean(create_constraint=True)", Kind::Bool),
    ("sa.DateTime()", Kind::DateTime),
    ("sa.DateTime(timezone=True)", Kind::DateTime),
    ("sqlite.DATETIME()", Kind::DateTime),
    ("sa.Date()", Kind::Date),
    ("sa.Time()", Kind::Time),
    ("sa.Float()", Kind::Float),
    ("sa.Numeric(10, 2)", Kind::Numeric),
    ("sa.Numeric()", Kind::Numeric),
    ("sa.LargeBinary()", Kind::Binary),
    ("sa.JSON()", Kind::Json),
    ("sa.Enum('red', 'green', 'blue', name='color')", Kind::Enum),
    (
        "sa.Enum('red', 'green', 'blue', name='color', create_constraint=True)",
        Kind::Enum,
    ),
    ("sa.Uuid()", Kind::Uuid),
    ("sa.String(20, collation='NOCASE')", Kind::Str),
    ("sa.CHAR(3)", Kind::Str),
    ("sa.NCHAR(4)", Kind::Str),
    ("sa.CLOB()", Kind::Str),
    ("sa.TIMESTAMP()", Kind::DateTime),
    ("sa.DECIMAL(8, 3)", Kind::Numeric),
    ("sa.REAL()", Kind::Float),
    ("sa.Float(precision=10)", Kind::Float),
    ("sa.BLOB()", Kind::Binary),
    ("sqlite.JSON()", Kind::Json),
    ("sa.Interval()", Kind::Interval),
    (
        "sa.Enum('a', 'bb', native_enum=False, length=10)",
        Kind::Enum,
    ),
];

/// Whether a column of this type carries a CHECK of its own (data of another type breaks it).
fn checks_values(ty: usize) -> bool {
    TYPES[ty].0.contains("create_constraint=True")
}

fn value(rng: &mut Rng, kind: Kind) -> String {
    match kind {
        Kind::Int => format!("{}", rng.below(2001) as i64 - 1000),
        Kind::Str => rng
            .pick(&[
                "'alpha'",
                "\"it's\"",
                "'ünï ☃'",
                "''",
                "'a b'",
                "'100%'",
                "'x\\ny'",
                "'42'",
            ])
            .to_string(),
        Kind::Bool => rng.pick(&["True", "False"]).to_string(),
        Kind::DateTime => {
            let micro = if rng.chance(30) {
                format!(", {}", rng.below(1_000_000))
            } else {
                String::new()
            };
            format!(
                "datetime.datetime(20{:02}, {}, {}, {}, {}, {}{micro})",
                10 + rng.below(20),
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
                rng.below(60)
            )
        }
        Kind::Date => format!(
            "datetime.date(20{:02}, {}, {})",
            10 + rng.below(20),
            1 + rng.below(12),
            1 + rng.below(28)
        ),
        Kind::Time => format!(
            "datetime.time({}, {}, {})",
            rng.below(24),
            rng.below(60),
            rng.below(60)
        ),
        Kind::Float => rng
            .pick(&["1.5", "-0.25", "0.0", "3.0", "1e-05", "123456.789", "7"])
            .to_string(),
        // Python's `decimal` is outside ralembic's model; SQLAlchemy takes floats here.
        Kind::Numeric => rng.pick(&["1.25", "-3", "0.1", "12345.67"]).to_string(),
        Kind::Binary => rng.pick(&["b'ab'", "b'\\x00\\xff'", "b''"]).to_string(),
        Kind::Json => rng
            .pick(&[
                "{'a': 1}",
                "[1, 'x', None]",
                "'text'",
                "3",
                "{'n': {'m': [True]}}",
            ])
            .to_string(),
        Kind::Enum => rng.pick(&["'red'", "'green'", "'blue'"]).to_string(),
        Kind::Interval => rng
            .pick(&[
                "datetime.timedelta(days=1, seconds=5)",
                "datetime.timedelta(hours=-3)",
                "datetime.timedelta(microseconds=7)",
            ])
            .to_string(),
        Kind::Uuid => format!("uuid.UUID('{}')", rng.hex(32)),
    }
}

/// A server default for a column of this kind; `constant`: one SQLite's ALTER TABLE ADD
/// COLUMN accepts.
/// A Python-side `default=` for a kind of column: constants, callables and SQL expressions.
fn python_default(rng: &mut Rng, kind: Kind) -> Option<&'static str> {
    let pick: &[&'static str] = match kind {
        Kind::Int => &["5", "lambda: 7", "sa.text('40 + 2')"],
        Kind::Str => &["'dflt'", "sa.func.lower('ABC')", "str"],
        Kind::Bool => &["True", "False"],
        Kind::DateTime => &["datetime.datetime(2021, 2, 3, 4, 5, 6)"],
        Kind::Date => &["datetime.date(2020, 1, 1)"],
        Kind::Float => &["1.5"],
        Kind::Numeric => &["2.25"],
        Kind::Json => &["dict", "lambda: [1, 'a']"],
        Kind::Uuid => &["uuid.UUID('12345678-1234-5678-1234-567812345678')"],
        _ => return None,
    };
    Some(*rng.pick(pick))
}

fn server_default(rng: &mut Rng, kind: Kind, constant: bool) -> Option<String> {
    let choices: &[&str] = match kind {
        Kind::Int => &["'0'", "sa.text('7')", "'-1'", "sa.text('(1 + 2)')"],
        Kind::Str => &["'none'", "sa.text(\"'x'\")", "''", "\"it's\""],
        Kind::Bool => &["sa.false()", "sa.text('1')", "'0'", "sa.true()"],
        Kind::DateTime => &[
            "'2024-01-01 00:00:00'",
            "sa.text('CURRENT_TIMESTAMP')",
            "sa.func.now()",
            "sa.text(\"(datetime('now'))\")",
        ],
        Kind::Date => &["'2024-01-01'"],
        Kind::Time => &["'12:00:00'"],
        Kind::Float => &["'1.5'", "sa.text('0.5')"],
        Kind::Numeric => &["'0'", "'2.50'"],
        Kind::Binary => &["sa.text(\"X'00'\")"],
        Kind::Json => &["'{}'", "'[]'"],
        Kind::Enum => &["'red'"],
        Kind::Uuid | Kind::Interval => return None,
    };
    let pick = rng.pick(choices).to_string();
    if constant && (pick.contains("CURRENT") || pick.contains("now()") || pick.contains('(')) {
        // `sa.text('(1 + 2)')` and the clock are not constants to ADD COLUMN.
        return if pick.contains("sa.") && !pick.contains("now") && !pick.contains("CURRENT") {
            Some("'3'".into())
        } else {
            Some(choices[0].to_string())
        };
    }
    Some(pick)
}

#[derive(Clone, Debug)]
struct Col {
    name: String,
    ty: usize,
    nullable: bool,
    default: Option<String>,
    /// The column may hold NULL in some row.
    nulls: bool,
    /// Indexes and constraints that name it: SQLite's DROP COLUMN refuses it then.
    uses: u32,
    /// Never dropped or renamed (its downgrade would not hold).
    keep: bool,
    index: bool,
    /// `comment=` (SQLite has no comments; nothing is rendered).
    comment: bool,
    /// A column CHECK compares it with a number: a type change would make it compare as text.
    checked: bool,
    /// A FOREIGN KEY names it (a `reflect_args` column replacing it drops that).
    fk: bool,
    /// `sa.Computed(...)`: a generated column, never written to, altered, renamed or dropped.
    computed: Option<&'static str>,
    /// A Python-side `default=` (never in DDL): rows inserted through the Table that
    /// `op.create_table` returns get it.
    py_default: Option<&'static str>,
}

impl Col {
    fn kind(&self) -> Kind {
        TYPES[self.ty].1
    }

    fn def(&self) -> String {
        self.def_with("")
    }

    /// `sa.Column(...)` with `positional` (`, sa.CheckConstraint(...)`) after the type.
    fn def_with(&self, positional: &str) -> String {
        let computed = self.computed.map(|c| format!(", {c}")).unwrap_or_default();
        let mut s = format!(
            "sa.Column(\"{}\", {}{computed}{positional}",
            self.name, TYPES[self.ty].0
        );
        if !self.nullable {
            s.push_str(", nullable=False");
        }
        if let Some(d) = &self.default {
            let _ = write!(s, ", server_default={d}");
        }
        if self.index {
            s.push_str(", index=True");
        }
        if self.comment {
            s.push_str(", comment=\"a note\"");
        }
        if let Some(d) = self.py_default {
            let _ = write!(s, ", default={d}");
        }
        s.push(')');
        s
    }

    /// Dropping it leaves nothing dangling, and adding it back to rows works (SQLite's
    /// ADD COLUMN takes only a constant default, and its DROP COLUMN no column a CHECK
    /// names, its type's own included).
    fn droppable(&self) -> bool {
        let constant = self.default.as_deref().map_or(true, |d| {
            !d.contains("now") && !d.contains("CURRENT") && !d.contains('(')
        });
        self.uses == 0
            && !self.keep
            && !checks_values(self.ty)
            && constant
            && (self.nullable || self.default.is_some())
    }
}

#[derive(Clone, Debug)]
struct Index {
    name: String,
    cols: Vec<String>,
    unique: bool,
    partial: Option<String>,
}

#[derive(Clone, Debug)]
struct Table {
    name: String,
    cols: Vec<Col>,
    /// Rows hold ids 1..=max_id, some deleted never.
    max_id: i64,
    /// Named UNIQUE (id, col) constraints.
    uniques: Vec<(String, String)>,
    indexes: Vec<Index>,
    /// Named CHECKs: (name, SQL text as a Python string literal).
    checks: Vec<(String, String)>,
    /// FOREIGN KEYs: (name, column, referred table, options such as `, ondelete="CASCADE"`).
    fks: Vec<(Option<String>, String, String, String)>,
    alive: bool,
}

impl Table {
    fn col_mut(&mut self, name: &str) -> &mut Col {
        self.cols.iter_mut().find(|c| c.name == name).unwrap()
    }
}

/// Column names, some that SQLAlchemy must quote (reserved words, capitals, a space).
const SPECIAL_NAMES: &[&str] = &[
    "order",
    "Value",
    "group",
    "key",
    "MixedCase",
    "select",
    "from",
    "with space",
    "index",
];

struct Gen<'r> {
    rng: &'r mut Rng,
    tables: Vec<Table>,
    serial: usize,
    /// Columns the batch block being written adds: Alembic cannot drop them in the same
    /// block (its ordering list does not hold them yet).
    batch_added: Vec<String>,
    /// Columns the block renames, by their new names: Alembic keys a block's columns by
    /// their old names, so an index or constraint on the new name fails or is left out.
    batch_renamed: Vec<String>,
    /// Names the block renamed columns away from (see `column_name`).
    batch_vacated: Vec<String>,
    /// Columns the block drops: a column renamed to such a name makes the undoing block add
    /// a column under the key the rename keeps, a cycle for SQLAlchemy's sort.
    batch_dropped: Vec<String>,
    /// Columns whose constraint the block drops: its undoing re-creates the constraint by
    /// the column's name, which a rename later in the block would leave unknown.
    batch_named: Vec<String>,
    /// The batch block being written may place added columns.
    placing: bool,
    /// Columns the block placed (insert_before/after): a `partial_reordering` naming them
    /// could make a cycle, SQLAlchemy's CircularDependencyError (tests/fixtures/_ddl).
    batch_placed: Vec<String>,
    /// A history for `--sql` as a whole: batch blocks with copy_from, only values with literals.
    offline: bool,
}

struct Revision {
    upgrade: Vec<String>,
    /// What undoes each operation, in the operations' order (a block may span lines).
    downgrade: Vec<String>,
}

impl<'r> Gen<'r> {
    fn new(rng: &'r mut Rng, offline: bool) -> Self {
        Gen {
            rng,
            tables: Vec::new(),
            serial: 0,
            batch_added: Vec::new(),
            batch_renamed: Vec::new(),
            batch_named: Vec::new(),
            batch_vacated: Vec::new(),
            batch_dropped: Vec::new(),
            placing: false,
            batch_placed: Vec::new(),
            offline,
        }
    }

    fn history(mut self, revisions: usize) -> Vec<Revision> {
        (0..revisions).map(|_| self.revision()).collect()
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}{}", self.serial)
    }

    fn column_name(&mut self, table: &Table) -> String {
        if self.rng.chance(25) {
            let name = self.rng.pick(SPECIAL_NAMES).to_string();
            // A name the block renamed away is still its column's key in the block.
            if !table.cols.iter().any(|c| c.name == name)
                && !self.batch_vacated.contains(&name)
                && !self.batch_dropped.contains(&name)
            {
                return name;
            }
        }
        self.fresh("c")
    }

    fn new_col(&mut self, table: &Table, constant_default: bool) -> Col {
        let mut ty = self.rng.below(TYPES.len());
        // Two CHECKs of one name in a table: which one a batch copy keeps comes from a
        // Python set's order.
        if checks_values(ty) && table.cols.iter().any(|c| c.ty == ty) {
            ty = 0;
        }
        let default = if self.rng.chance(35) {
            server_default(self.rng, TYPES[ty].1, constant_default)
        } else {
            None
        };
        let nullable = default.is_none() || self.rng.chance(50);
        Col {
            name: self.column_name(table),
            ty,
            nullable,
            default,
            nulls: false,
            uses: 0,
            keep: false,
            index: false,
            comment: self.rng.chance(10),
            checked: false,
            fk: false,
            computed: None,
            py_default: if self.rng.chance(15) {
                python_default(self.rng, TYPES[ty].1)
            } else {
                None
            },
        }
    }

    /// Rows with ids from max_id + 1; every row names the same columns (bulk_insert runs one
    /// executemany), a column left out gets its server default or NULL.
    fn rows(&mut self, t: usize, n: usize) -> Vec<String> {
        let mut table = self.tables[t].clone();
        let omitted: Vec<bool> = table
            .cols
            .iter()
            .map(|c| c.name != "id" && (c.nullable || c.default.is_some()) && self.rng.chance(15))
            .collect();
        let mut rows = Vec::new();
        for _ in 0..n {
            table.max_id += 1;
            let mut cells = vec![format!("\"id\": {}", table.max_id)];
            for (c, &omit) in table.cols.iter_mut().zip(&omitted).skip(1) {
                if c.computed.is_some() {
                    continue;
                }
                if omit {
                    c.nulls |= c.default.is_none();
                } else if c.nullable && self.rng.chance(20) {
                    cells.push(format!("\"{}\": None", c.name));
                    c.nulls = true;
                } else {
                    // SQLAlchemy has no literal for JSON or an Interval, nor for bytes that
                    // are not UTF-8.
                    let v = match c.kind() {
                        Kind::Json | Kind::Interval if self.offline => "None".to_string(),
                        Kind::Binary if self.offline => "b'ab'".to_string(),
                        kind => value(self.rng, kind),
                    };
                    cells.push(format!("\"{}\": {v}", c.name));
                }
            }
            rows.push(format!("{{{}}}", cells.join(", ")));
        }
        self.tables[t] = table;
        rows
    }

    fn live(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.tables.len())
            .filter(|&i| self.tables[i].alive)
            .collect();
        (!live.is_empty()).then(|| *self.rng.pick(&live))
    }

    fn table_name(&mut self) -> String {
        if self.rng.chance(20) {
            let name = self
                .rng
                .pick(&["order", "UserData", "item", "select"])
                .to_string();
            if !self.tables.iter().any(|t| t.name == name) {
                return name;
            }
        }
        self.fresh("t")
    }

    fn create_table(&mut self, rev: &mut Revision) {
        let name = self.table_name();
        let mut table = Table {
            name: name.clone(),
            cols: vec![Col {
                name: "id".into(),
                ty: 0,
                nullable: false,
                default: None,
                nulls: false,
                uses: 1,
                keep: true,
                index: false,
                comment: false,
                checked: false,
                fk: false,
                computed: None,
                py_default: None,
            }],
            max_id: 0,
            uniques: Vec::new(),
            indexes: Vec::new(),
            checks: Vec::new(),
            fks: Vec::new(),
            alive: true,
        };
        let mut lines = vec![
            "    t = op.create_table(".to_string(),
            format!("        \"{name}\","),
        ];
        let autoinc = self.rng.chance(10);
        let named_pk = !autoinc && self.rng.chance(15);
        if named_pk {
            lines.push("        sa.Column(\"id\", sa.Integer(), nullable=False),".into());
        } else {
            lines.push(format!(
                "        sa.Column(\"id\", sa.Integer(), primary_key=True{}),",
                if self.rng.chance(20) {
                    ", autoincrement=True"
                } else {
                    ""
                }
            ));
        }
        for _ in 0..1 + self.rng.below(5) {
            let mut c = self.new_col(&table, false);
            if self.rng.chance(8) {
                // A generated column (VIRTUAL or STORED): batch copies must leave it out.
                c.ty = 0;
                c.default = None;
                c.nullable = true;
                c.keep = true;
                c.py_default = None;
                c.computed = Some(*self.rng.pick(&[
                    "sa.Computed(\"id * 2\")",
                    "sa.Computed(\"id + 1\", persisted=True)",
                    "sa.Computed(sa.text(\"id - 1\"), persisted=False)",
                ]));
            }
            if self.rng.chance(15) {
                c.index = true;
                c.uses += 1;
                table.indexes.push(Index {
                    name: format!("ix_{name}_{}", c.name),
                    cols: vec![c.name.clone()],
                    unique: false,
                    partial: None,
                });
            }
            let mut def = c.def();
            if c.kind() == Kind::Int && c.computed.is_none() && self.rng.chance(15) {
                // A column-level CHECK (the values stay within it); SQLite's DROP COLUMN
                // refuses a column a CHECK names.
                let ck = self.fresh("ck_");
                let sql = format!("'{} > -5000'", quote_sql(&c.name));
                def = c.def_with(&format!(", sa.CheckConstraint({sql}, name=\"{ck}\")"));
                table.checks.push((ck, sql));
                c.keep = true;
                c.checked = true;
            }
            lines.push(format!("        {def},"));
            table.cols.push(c);
        }
        let mut constraints = Vec::new();
        if named_pk {
            constraints.push(format!(
                "        sa.PrimaryKeyConstraint(\"id\", name=\"pk_{}\"),",
                self.serial
            ));
        }
        if self.rng.chance(40) {
            let k = 1 + self.rng.below(table.cols.len() - 1);
            let col = table.cols[k].name.clone();
            table.cols[k].uses += 1;
            if self.rng.chance(70) {
                let uq = self.fresh("uq_");
                constraints.push(format!(
                    "        sa.UniqueConstraint(\"id\", \"{col}\", name=\"{uq}\"{}),",
                    if self.rng.chance(20) {
                        ", sqlite_on_conflict=\"REPLACE\""
                    } else {
                        ""
                    }
                ));
                table.uniques.push((uq, col));
            } else {
                constraints.push(format!("        sa.UniqueConstraint(\"{col}\", \"id\"),"));
                table.cols[k].keep = true;
            }
        }
        if self.rng.chance(30) {
            if let Some(target) = self.live() {
                let refcol = self.fresh("ref");
                let target_name = self.tables[target].name.clone();
                let fk = self.fresh("fk_");
                let ondelete = self.rng.pick(&[
                    "",
                    ", ondelete=\"CASCADE\"",
                    ", onupdate=\"SET NULL\"",
                    ", onupdate=\"CASCADE\", deferrable=True, initially=\"DEFERRED\"",
                    ", ondelete=\"SET NULL\", onupdate=\"RESTRICT\"",
                ]);
                table.cols.push(Col {
                    name: refcol.clone(),
                    ty: 0,
                    nullable: true,
                    default: None,
                    nulls: false,
                    uses: 1,
                    keep: true,
                    index: false,
                    comment: false,
                    checked: false,
                    fk: true,
                    computed: None,
                    py_default: None,
                });
                let fk_name = (!self.rng.chance(40)).then(|| fk.clone());
                table.fks.push((
                    fk_name.clone(),
                    refcol.clone(),
                    target_name.clone(),
                    ondelete.to_string(),
                ));
                if fk_name.is_none() {
                    // Inline: an unnamed FOREIGN KEY.
                    lines.push(format!(
                        "        sa.Column(\"{refcol}\", sa.Integer(), sa.ForeignKey(\"{target_name}.id\"{ondelete})),"
                    ));
                } else {
                    lines.push(format!("        sa.Column(\"{refcol}\", sa.Integer()),"));
                    constraints.push(format!(
                        "        sa.ForeignKeyConstraint([\"{refcol}\"], [\"{target_name}.id\"], name=\"{fk}\"{ondelete}),"
                    ));
                }
            }
        }
        if self.rng.chance(25) {
            let ck = self.fresh("ck_");
            constraints.push(format!(
                "        sa.CheckConstraint(\"id > 0\", name=\"{ck}\"),"
            ));
            table.checks.push((ck, "\"id > 0\"".into()));
        }
        lines.extend(constraints);
        if autoinc {
            lines.push("        sqlite_autoincrement=True,".into());
        } else if self.rng.chance(5) {
            lines.push("        sqlite_with_rowid=False,".into());
        }
        lines.push("    )".into());
        self.tables.push(table);
        let t = self.tables.len() - 1;
        let n = self.rng.below(5);
        if n > 0 {
            let rows = self.rows(t, n);
            lines.push(format!("    op.bulk_insert(t, [{}])", rows.join(", ")));
        }
        rev.upgrade.extend(lines);
        rev.downgrade.push(format!("    op.drop_table(\"{name}\")"));
    }

    fn add_column(&mut self, t: usize, rev: &mut Revision) {
        let table = self.tables[t].clone();
        let mut c = self.new_col(&table, true);
        if !c.nullable && c.default.is_none() {
            c.nullable = true;
        }
        // Existing rows get the default, or NULL.
        c.nulls = c.default.is_none() && table.max_id > 0;
        rev.upgrade.push(format!(
            "    op.add_column(\"{}\", {})",
            table.name,
            c.def()
        ));
        rev.downgrade.push(format!(
            "    op.drop_column(\"{}\", \"{}\")",
            table.name, c.name
        ));
        if c.index {
            c.index = false;
        }
        self.tables[t].cols.push(c);
    }

    fn drop_column(&mut self, t: usize, rev: &mut Revision) -> bool {
        let table = &self.tables[t];
        let candidates: Vec<usize> = (1..table.cols.len())
            .filter(|&k| table.cols[k].droppable())
            .collect();
        let Some(&k) = (!candidates.is_empty()).then(|| self.rng.pick(&candidates)) else {
            return false;
        };
        let c = self.tables[t].cols.remove(k);
        let name = &self.tables[t].name;
        rev.upgrade
            .push(format!("    op.drop_column(\"{name}\", \"{}\")", c.name));
        rev.downgrade
            .push(format!("    op.add_column(\"{name}\", {})", c.def()));
        true
    }

    fn index_cols(&mut self, t: usize) -> (Vec<String>, bool) {
        let table = &self.tables[t];
        let k = 1 + self.rng.below(table.cols.len().max(2) - 1);
        let Some(col) = table.cols.get(k).map(|c| c.name.clone()) else {
            return (vec!["id".into()], true);
        };
        match self.rng.below(3) {
            0 => (vec![col], false),
            1 => (vec![col, "id".into()], true),
            _ => (vec!["id".into(), col], self.rng.chance(50)),
        }
    }

    fn create_index(&mut self, t: usize, rev: &mut Revision) {
        let text_col = self.tables[t]
            .cols
            .iter()
            .position(|c| c.kind() == Kind::Str && !c.keep);
        if let Some(k) = text_col.filter(|_| self.rng.chance(15)) {
            // On an expression. SQLAlchemy does not reflect such an index into a Table (it
            // warns), so a batch copy of the table goes without it: the model forgets it,
            // its undoing tolerates its absence, and its column is never dropped.
            let name = self.fresh("ix_");
            let table = &mut self.tables[t];
            table.cols[k].keep = true;
            let expr = format!("lower({})", quote_sql(&table.cols[k].name));
            rev.upgrade.push(format!(
                "    op.create_index(\"{name}\", \"{}\", [sa.text('{expr}')])",
                table.name
            ));
            rev.downgrade.push(format!(
                "    op.drop_index(\"{name}\", table_name=\"{}\", if_exists=True)",
                table.name
            ));
            return;
        }
        let (cols, unique) = self.index_cols(t);
        let name = self.fresh("ix_");
        let partial = self
            .rng
            .chance(20)
            .then(|| format!("{} IS NOT NULL", quote_sql(&cols[0])));
        let table = &mut self.tables[t];
        for c in &cols {
            table.col_mut(c).uses += 1;
        }
        let index = Index {
            name,
            cols,
            unique,
            partial,
        };
        let if_not_exists = if self.rng.chance(20) {
            ", if_not_exists=True"
        } else {
            ""
        };
        let if_exists = if self.rng.chance(20) {
            ", if_exists=True"
        } else {
            ""
        };
        rev.upgrade.push(format!(
            "    op.create_index({}{if_not_exists})",
            index_args(&index, &table.name)
        ));
        rev.downgrade.push(format!(
            "    op.drop_index(\"{}\", table_name=\"{}\"{if_exists})",
            index.name, table.name
        ));
        table.indexes.push(index);
    }

    fn drop_index(&mut self, t: usize, rev: &mut Revision) -> bool {
        if self.tables[t].indexes.is_empty() {
            return false;
        }
        let k = self.rng.below(self.tables[t].indexes.len());
        let table = &mut self.tables[t];
        let index = table.indexes.remove(k);
        for c in &index.cols {
            table.col_mut(c).uses -= 1;
        }
        rev.upgrade.push(format!(
            "    op.drop_index(\"{}\", table_name=\"{}\")",
            index.name, table.name
        ));
        rev.downgrade.push(format!(
            "    op.create_index({})",
            index_args(&index, &table.name)
        ));
        // An index=True column's index is gone; re-creating it later names it anew.
        for c in &mut table.cols {
            if index.name == format!("ix_{}_{}", table.name, c.name) {
                c.index = false;
            }
        }
        true
    }

    fn rename_table(&mut self, t: usize, rev: &mut Revision) {
        let old = self.tables[t].name.clone();
        let new = self.table_name();
        rev.upgrade
            .push(format!("    op.rename_table(\"{old}\", \"{new}\")"));
        rev.downgrade
            .push(format!("    op.rename_table(\"{new}\", \"{old}\")"));
        self.tables[t].name = new.clone();
        // SQLite points the other tables' foreign keys at the new name.
        for table in &mut self.tables {
            for fk in &mut table.fks {
                if fk.2 == old {
                    fk.2 = new.clone();
                }
            }
        }
        // Index names stay; `index=True` columns' indexes keep the old table in theirs.
        for c in &mut self.tables[t].cols {
            c.index = false;
        }
    }

    fn bulk_insert(&mut self, t: usize, rev: &mut Revision) {
        let n = 1 + self.rng.below(3);
        let first = self.tables[t].max_id + 1;
        let rows = self.rows(t, n);
        let table = &self.tables[t];
        let cols: Vec<String> = table
            .cols
            .iter()
            .map(|c| format!("sa.column(\"{}\", {})", c.name, TYPES[c.ty].0))
            .collect();
        rev.upgrade.push(format!(
            "    op.bulk_insert(sa.table(\"{}\", {}), [{}])",
            table.name,
            cols.join(", "),
            rows.join(", ")
        ));
        rev.downgrade.push(format!(
            "    op.execute('DELETE FROM {} WHERE id >= {first}')",
            quote_sql(&table.name)
        ));
    }

    /// Raw SQL through `op.execute` (a string or `sa.text` with a bound value) changing some
    /// rows of a text column; its downgrade leaves them (both tools alike).
    fn update_rows(&mut self, t: usize, rev: &mut Revision) {
        let table = &self.tables[t];
        let Some(c) = table
            .cols
            .iter()
            .find(|c| c.kind() == Kind::Str && !checks_values(c.ty))
        else {
            self.bulk_insert(t, rev);
            return;
        };
        let (tq, cq) = (quote_sql(&table.name), quote_sql(&c.name));
        let id = 1 + self.rng.below(4);
        rev.upgrade.push(if self.rng.chance(50) {
            format!("    op.execute('UPDATE {tq} SET {cq} = \\'upd\\' || id WHERE id <= {id}')")
        } else {
            format!(
                "    op.execute(sa.text('UPDATE {tq} SET {cq} = :v WHERE id = :i').bindparams(v=\"it's\", i={id}))"
            )
        });
        rev.downgrade.push("    pass".into());
    }

    /// One batch_alter_table block with a few operations, and the block that undoes them.
    fn batch(&mut self, t: usize, rev: &mut Revision) {
        let name = self.tables[t].name.clone();
        let mut recreate = self
            .rng
            .pick(&["", ", recreate=\"always\"", ", recreate=\"auto\""])
            .to_string();
        if self.rng.chance(15) {
            // Names what reflection finds unnamed (a UNIQUE, an inline FOREIGN KEY).
            recreate.push_str(
                ", naming_convention={\"uq\": \"uq_%(table_name)s_%(column_0_name)s\", \
                 \"fk\": \"fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s\"}",
            );
        }
        // Alembic places a column (insert_before/after) only when told to recreate.
        self.placing = recreate.contains("\"always\"");
        let start = self.tables[t].clone();
        let mut up = Vec::new();
        let mut down = Vec::new();
        self.batch_added.clear();
        self.batch_renamed.clear();
        self.batch_named.clear();
        self.batch_vacated.clear();
        self.batch_dropped.clear();
        self.batch_placed.clear();
        for _ in 0..1 + self.rng.below(3) {
            self.batch_op(t, &mut up, &mut down);
        }
        if up.is_empty() {
            return;
        }
        // The recreating block's own arguments, on the way up only.
        let mut extra = String::new();
        let copy = self.offline || self.rng.chance(15);
        if self.placing {
            if self.rng.chance(25) {
                extra.push_str(&self.partial_reordering(t));
            }
            if !copy && self.rng.chance(20) {
                extra.push_str(&self.reflect_args(&start));
            }
            if self.rng.chance(20) {
                extra.push_str(&self.table_args(t, &mut down));
            }
        }
        // The table as it stands, instead of reflecting it (what --sql needs).
        let (copy_up, copy_down) = if copy {
            (copy_from(&start), copy_from(&self.tables[t]))
        } else {
            (String::new(), String::new())
        };
        rev.upgrade.push(format!(
            "    with op.batch_alter_table(\"{name}\"{recreate}{copy_up}{extra}) as batch_op:"
        ));
        rev.upgrade.extend(up);
        down.reverse();
        // One block: the downgrade runs its operations' undoings in reverse order.
        down.insert(
            0,
            format!("    with op.batch_alter_table(\"{name}\"{recreate}{copy_down}) as batch_op:"),
        );
        rev.downgrade.push(down.join("\n"));
    }

    /// `partial_reordering`: tuples of the block's column keys (a renamed column is known by
    /// its old name), in an order of their own. Columns no tuple names are placed by
    /// SQLAlchemy's topological sort alone.
    fn partial_reordering(&mut self, t: usize) -> String {
        let mut keys: Vec<String> = self.tables[t]
            .cols
            .iter()
            .filter(|c| !self.batch_placed.contains(&c.name))
            .map(
                |c| match self.batch_renamed.iter().position(|n| *n == c.name) {
                    Some(i) => self.batch_vacated[i].clone(),
                    None => c.name.clone(),
                },
            )
            .collect();
        let mut tuples = Vec::new();
        for _ in 0..1 + self.rng.below(2) {
            let mut tuple = Vec::new();
            for _ in 0..2 + self.rng.below(2) {
                if keys.is_empty() {
                    break;
                }
                let k = self.rng.below(keys.len());
                tuple.push(format!("\"{}\"", keys.remove(k)));
            }
            if tuple.len() >= 2 {
                tuples.push(format!("({})", tuple.join(", ")));
            }
        }
        if tuples.is_empty() {
            return String::new();
        }
        format!(", partial_reordering=[{}]", tuples.join(", "))
    }

    /// `reflect_args`: columns as the model knows them, which replace the reflected ones
    /// (their types, which reflection cannot tell: a Uuid, an Enum, a Boolean's CHECK).
    fn reflect_args(&mut self, start: &Table) -> String {
        let mut cols = Vec::new();
        for _ in 0..1 + self.rng.below(2) {
            let Some(c) = start
                .cols
                .get(1 + self.rng.below(start.cols.len().max(2) - 1))
            else {
                break;
            };
            if c.fk {
                continue;
            }
            let mut c = c.clone();
            c.index = false;
            c.comment = false;
            let def = c.def();
            if !cols.contains(&def) {
                cols.push(def);
            }
        }
        if cols.is_empty() {
            return String::new();
        }
        format!(", reflect_args=[{}]", cols.join(", "))
    }

    /// `table_args`: a CHECK (named or not) or a named UNIQUE the new table gets; the
    /// downgrade drops the UNIQUE (a CHECK stays, for both tools alike).
    fn table_args(&mut self, t: usize, down: &mut Vec<String>) -> String {
        let table = &self.tables[t];
        let candidates: Vec<usize> = (1..table.cols.len())
            .filter(|&k| {
                let c = &table.cols[k];
                !self.batch_added.contains(&c.name)
                    && !self.batch_renamed.contains(&c.name)
                    && !table.uniques.iter().any(|(_, u)| *u == c.name)
            })
            .collect();
        let arg = match self.rng.below(3) {
            0 if !candidates.is_empty() => {
                let k = *self.rng.pick(&candidates);
                let uq = self.fresh("uq_");
                let table = &mut self.tables[t];
                let col = table.cols[k].name.clone();
                table.cols[k].uses += 1;
                table.uniques.push((uq.clone(), col.clone()));
                down.insert(
                    0,
                    format!("        batch_op.drop_constraint(\"{uq}\", type_=\"unique\")"),
                );
                format!("sa.UniqueConstraint(\"id\", \"{col}\", name=\"{uq}\")")
            }
            1 => "sa.CheckConstraint(\"id >= 0\")".to_string(),
            _ => {
                let ck = self.fresh("ck_");
                self.tables[t]
                    .checks
                    .push((ck.clone(), "\"id > 0\"".into()));
                format!("sa.CheckConstraint(\"id > 0\", name=\"{ck}\")")
            }
        };
        format!(", table_args=({arg},)")
    }

    fn batch_op(&mut self, t: usize, up: &mut Vec<String>, down: &mut Vec<String>) {
        let ncols = self.tables[t].cols.len();
        let k = 1 + self.rng.below(ncols.max(2) - 1);
        // A column the block renamed is known by its old name in the block: leave it.
        let has_col = k < ncols && !self.batch_renamed.contains(&self.tables[t].cols[k].name);
        match self.rng.below(10) {
            0 => {
                let table = self.tables[t].clone();
                let mut c = self.new_col(&table, false);
                c.index = false;
                if !c.nullable && c.default.is_none() {
                    c.nullable = true;
                }
                c.nulls = c.default.is_none() && table.max_id > 0;
                // Relative to a column the block added, Alembic's lookup fails (KeyError).
                let placeable = has_col && !self.batch_added.contains(&table.cols[k].name);
                let place = match self
                    .rng
                    .below(if self.placing && placeable { 5 } else { 0 } + 1)
                {
                    1 if has_col => format!(", insert_before=\"{}\"", table.cols[k].name),
                    2 if has_col => format!(", insert_after=\"{}\"", table.cols[k].name),
                    _ => String::new(),
                };
                if !place.is_empty() {
                    self.batch_placed.push(c.name.clone());
                }
                up.push(format!("        batch_op.add_column({}{place})", c.def()));
                // Its type's named CHECK goes with it only when the drop names the type.
                let existing = if checks_values(c.ty) {
                    format!(", existing_type={}", TYPES[c.ty].0)
                } else {
                    String::new()
                };
                down.push(format!(
                    "        batch_op.drop_column(\"{}\"{existing})",
                    c.name
                ));
                self.batch_added.push(c.name.clone());
                self.tables[t].cols.push(c);
            }
            1 if has_col
                && self.tables[t].cols[k].droppable()
                && !self.batch_added.contains(&self.tables[t].cols[k].name)
                && !self.batch_renamed.contains(&self.tables[t].cols[k].name) =>
            {
                let c = self.tables[t].cols.remove(k);
                self.batch_dropped.push(c.name.clone());
                up.push(format!("        batch_op.drop_column(\"{}\")", c.name));
                down.push(format!("        batch_op.add_column({})", c.def()));
            }
            2 if has_col => {
                // A new type: the copy casts the data.
                let c = self.tables[t].cols[k].clone();
                let to = self.rng.below(TYPES.len());
                // Alembic fails (KeyError 'expr') casting a column the same block added.
                // A CHECK of either type would refuse the other's data (casting back down).
                if to == c.ty
                    || checks_values(to)
                    || checks_values(c.ty)
                    || c.checked
                    || c.computed.is_some()
                    || c.uses > 0 && self.rng.chance(50)
                    || self.batch_added.contains(&c.name)
                {
                    return;
                }
                let existing = if self.rng.chance(50) {
                    format!(", existing_nullable={}", py_bool(c.nullable))
                } else {
                    String::new()
                };
                up.push(format!(
                    "        batch_op.alter_column(\"{}\", type_={}, existing_type={}{existing})",
                    c.name, TYPES[to].0, TYPES[c.ty].0
                ));
                down.push(format!(
                    "        batch_op.alter_column(\"{}\", type_={}, existing_type={}{existing})",
                    c.name, TYPES[c.ty].0, TYPES[to].0
                ));
                let col = &mut self.tables[t].cols[k];
                col.ty = to;
                // Its default may no longer suit the type; the CAST keeps data valid.
                col.keep = true;
                col.py_default = None;
            }
            3 if has_col => {
                let c = self.tables[t].cols[k].clone();
                if c.nullable && c.nulls || c.computed.is_some() {
                    return;
                }
                let to = !c.nullable;
                up.push(format!(
                    "        batch_op.alter_column(\"{}\", nullable={}, existing_type={})",
                    c.name,
                    py_bool(to),
                    TYPES[c.ty].0
                ));
                down.push(format!(
                    "        batch_op.alter_column(\"{}\", nullable={}, existing_type={})",
                    c.name,
                    py_bool(c.nullable),
                    TYPES[c.ty].0
                ));
                let col = &mut self.tables[t].cols[k];
                col.nullable = to;
                col.keep = true;
            }
            // Renaming a column the block added would make its undoing drop a renamed one.
            4 if has_col
                && self.tables[t].cols[k].uses == 0
                && !self.tables[t].cols[k].keep
                && !self.batch_added.contains(&self.tables[t].cols[k].name)
                && !self.batch_named.contains(&self.tables[t].cols[k].name) =>
            {
                let table = self.tables[t].clone();
                let new = self.column_name(&table);
                let old = table.cols[k].name.clone();
                // Alembic asks the existing type for its `name`; an Interval's fails in
                // Python (AttributeError, which tests/fixtures/_ddl covers).
                let existing = match table.cols[k].kind() {
                    Kind::Interval => String::new(),
                    _ => format!(", existing_type={}", TYPES[table.cols[k].ty].0),
                };
                up.push(format!(
                    "        batch_op.alter_column(\"{old}\", new_column_name=\"{new}\"{existing})"
                ));
                down.push(format!(
                    "        batch_op.alter_column(\"{new}\", new_column_name=\"{old}\"{existing})"
                ));
                self.tables[t].cols[k].name = new.clone();
                self.batch_renamed.push(new);
                self.batch_vacated.push(old);
            }
            5 if has_col && self.tables[t].cols[k].computed.is_none() => {
                let c = self.tables[t].cols[k].clone();
                let new = if self.rng.chance(30) || !c.nullable {
                    server_default(self.rng, c.kind(), false)
                } else {
                    None
                };
                let Some(new_text) = new.clone().or(c.default.clone().map(|_| "None".into()))
                else {
                    return;
                };
                up.push(format!(
                    "        batch_op.alter_column(\"{}\", server_default={new_text}, existing_type={})",
                    c.name,
                    TYPES[c.ty].0
                ));
                down.push(format!(
                    "        batch_op.alter_column(\"{}\", server_default={}, existing_type={})",
                    c.name,
                    c.default.clone().unwrap_or_else(|| "None".into()),
                    TYPES[c.ty].0
                ));
                let col = &mut self.tables[t].cols[k];
                col.default = new;
                col.keep = true;
            }
            6 if has_col
                && !self.batch_renamed.contains(&self.tables[t].cols[k].name)
                && !self.tables[t]
                    .uniques
                    .iter()
                    .any(|(_, c)| *c == self.tables[t].cols[k].name) =>
            {
                let uq = self.fresh("uq_");
                let col = self.tables[t].cols[k].name.clone();
                up.push(format!(
                    "        batch_op.create_unique_constraint(\"{uq}\", [\"id\", \"{col}\"])"
                ));
                down.push(format!(
                    "        batch_op.drop_constraint(\"{uq}\", type_=\"unique\")"
                ));
                self.tables[t].cols[k].uses += 1;
                self.tables[t].uniques.push((uq, col));
            }
            7 if !self.tables[t].uniques.is_empty() => {
                let u = self.rng.below(self.tables[t].uniques.len());
                let (uq, col) = self.tables[t].uniques.remove(u);
                self.batch_named.push(col.clone());
                up.push(format!(
                    "        batch_op.drop_constraint(\"{uq}\", type_=\"unique\")"
                ));
                down.push(format!(
                    "        batch_op.create_unique_constraint(\"{uq}\", [\"id\", \"{col}\"])"
                ));
                self.tables[t].col_mut(&col).uses -= 1;
            }
            // A named CHECK survives later copies (reflected), so its undoing finds it.
            7 if self.rng.chance(50) => {
                let ck = self.fresh("ck_");
                up.push(format!(
                    "        batch_op.create_check_constraint(\"{ck}\", \"id > 0\")"
                ));
                down.push(format!(
                    "        batch_op.drop_constraint(\"{ck}\", type_=\"check\")"
                ));
                self.tables[t].checks.push((ck, "\"id > 0\"".into()));
            }
            8 => {
                let (cols, unique) = self.index_cols(t);
                if cols.iter().any(|c| self.batch_renamed.contains(c)) {
                    return;
                }
                let name = self.fresh("ix_");
                let list: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
                let unique_arg = if unique { ", unique=True" } else { "" };
                up.push(format!(
                    "        batch_op.create_index(\"{name}\", [{}]{unique_arg})",
                    list.join(", ")
                ));
                down.push(format!("        batch_op.drop_index(\"{name}\")"));
                let table = &mut self.tables[t];
                for c in &cols {
                    table.col_mut(c).uses += 1;
                }
                table.indexes.push(Index {
                    name,
                    cols,
                    unique,
                    partial: None,
                });
            }
            _ => {
                let Some(target) = self.live() else { return };
                let target_name = self.tables[target].name.clone();
                let fk = self.fresh("fk_");
                let table = self.tables[t].clone();
                let mut c = self.new_col(&table, false);
                c.ty = 0;
                c.nullable = true;
                c.default = None;
                c.index = false;
                c.nulls = table.max_id > 0;
                c.uses = 1;
                c.keep = true;
                c.fk = true;
                c.py_default = None;
                up.push(format!("        batch_op.add_column({})", c.def()));
                up.push(format!(
                    "        batch_op.create_foreign_key(\"{fk}\", \"{target_name}\", [\"{}\"], [\"id\"])",
                    c.name
                ));
                down.push(format!("        batch_op.drop_column(\"{}\")", c.name));
                down.push(format!(
                    "        batch_op.drop_constraint(\"{fk}\", type_=\"foreignkey\")"
                ));
                self.batch_added.push(c.name.clone());
                self.tables[t]
                    .fks
                    .push((Some(fk), c.name.clone(), target_name, String::new()));
                self.tables[t].cols.push(c);
            }
        }
    }

    fn revision(&mut self) -> Revision {
        let mut rev = Revision {
            upgrade: Vec::new(),
            downgrade: Vec::new(),
        };
        for _ in 0..1 + self.rng.below(3) {
            let live = self.tables.iter().filter(|t| t.alive).count();
            let Some(t) = self.live().filter(|_| live >= 2 || self.rng.chance(50)) else {
                self.create_table(&mut rev);
                continue;
            };
            match self.rng.below(13) {
                0 | 1 => self.create_table(&mut rev),
                2 => self.add_column(t, &mut rev),
                3 => {
                    if !self.drop_column(t, &mut rev) {
                        self.add_column(t, &mut rev);
                    }
                }
                4 => self.create_index(t, &mut rev),
                5 => {
                    if !self.drop_index(t, &mut rev) {
                        self.create_index(t, &mut rev);
                    }
                }
                6 => self.rename_table(t, &mut rev),
                7 => self.bulk_insert(t, &mut rev),
                8 => self.update_rows(t, &mut rev),
                // Alembic's batch copy names generated columns in its INSERT, which SQLite
                // refuses (tests/fixtures/_ddl covers that); --sql only prints it.
                _ if !self.offline && self.tables[t].cols.iter().any(|c| c.computed.is_some()) => {
                    self.create_index(t, &mut rev)
                }
                _ => self.batch(t, &mut rev),
            }
        }
        if rev.upgrade.is_empty() {
            self.create_table(&mut rev);
        }
        rev
    }
}

/// `copy_from=sa.Table(...)`: the table as the model knows it. Batch mode then reads no
/// table, so it runs in `--sql` mode too; what the model does not know (an unnamed UNIQUE,
/// an index on an expression, `sqlite_autoincrement`) the copy goes without, in both tools.
fn copy_from(table: &Table) -> String {
    let mut args = vec![format!("\"{}\"", table.name), "sa.MetaData()".into()];
    for c in &table.cols {
        if c.name == "id" {
            args.push("sa.Column(\"id\", sa.Integer(), primary_key=True)".into());
            continue;
        }
        let mut c = c.clone();
        c.index = false;
        // A Boolean's or Enum's CHECK: the table may not have it (`op.add_column` skips it),
        // and a copy that adds it would make SQLite refuse to drop the column later.
        args.push(
            c.def()
                .replace("create_constraint=True", "create_constraint=False"),
        );
    }
    for (uq, col) in &table.uniques {
        args.push(format!(
            "sa.UniqueConstraint(\"id\", \"{col}\", name=\"{uq}\")"
        ));
    }
    for (ck, sql) in &table.checks {
        args.push(format!("sa.CheckConstraint({sql}, name=\"{ck}\")"));
    }
    for (name, col, target, options) in &table.fks {
        let name = name
            .as_ref()
            .map(|n| format!(", name=\"{n}\""))
            .unwrap_or_default();
        args.push(format!(
            "sa.ForeignKeyConstraint([\"{col}\"], [\"{target}.id\"]{name}{options})"
        ));
    }
    for ix in &table.indexes {
        let cols: Vec<String> = ix.cols.iter().map(|c| format!("\"{c}\"")).collect();
        args.push(format!(
            "sa.Index(\"{}\", {}{})",
            ix.name,
            cols.join(", "),
            index_options(ix)
        ));
    }
    format!(", copy_from=sa.Table({})", args.join(", "))
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn quote_sql(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn index_args(index: &Index, table: &str) -> String {
    let cols: Vec<String> = index.cols.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "\"{}\", \"{table}\", [{}]{}",
        index.name,
        cols.join(", "),
        index_options(index)
    )
}

/// `, unique=True` and `, sqlite_where=...` as the index has them.
fn index_options(index: &Index) -> String {
    let mut s = String::new();
    if index.unique {
        s.push_str(", unique=True");
    }
    if let Some(w) = &index.partial {
        let _ = write!(s, ", sqlite_where=sa.text('{w}')");
    }
    s
}

/// `--sql` output with Python's set orders taken out: each run of CREATE INDEX statements
/// sorted (`op.create_table` creates the indexes of `index=True` columns in set order) and
/// each CREATE TABLE's constraint lines sorted (a batch copy writes its table's constraints
/// in set order); docs/compatibility.md, "Nondeterminism in Python Alembic".
fn set_orders_sorted(o: &Observation) -> Observation {
    let text = String::from_utf8_lossy(&o.outcome.stdout).into_owned();
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for stmt in text.split_inclusive(";\n\n") {
        if stmt.starts_with("CREATE INDEX ") || stmt.starts_with("CREATE UNIQUE INDEX ") {
            run.push(stmt.to_string());
            continue;
        }
        run.sort();
        out.append(&mut run);
        // A statement may follow a `-- Running upgrade` comment in its chunk.
        out.push(if stmt.contains("CREATE TABLE ") {
            constraints_sorted(stmt)
        } else {
            stmt.to_string()
        });
    }
    run.sort();
    out.append(&mut run);
    let mut sorted = o.clone();
    sorted.outcome.stdout = out.concat().into_bytes();
    sorted
}

/// A CREATE TABLE statement with its constraint lines sorted, their separating commas gone.
fn constraints_sorted(stmt: &str) -> String {
    const STARTS: &[&str] = &[
        "CONSTRAINT ",
        "PRIMARY KEY",
        "UNIQUE ",
        "CHECK ",
        "FOREIGN KEY",
    ];
    let (mut columns, mut constraints) = (Vec::new(), Vec::new());
    for line in stmt.lines() {
        let item = line.trim_start();
        if STARTS.iter().any(|s| item.starts_with(s)) {
            constraints.push(line.trim_end().trim_end_matches(',').to_string());
        } else {
            columns.push(line.to_string());
        }
    }
    constraints.sort();
    let close = columns.iter().rposition(|l| l.starts_with(')'));
    let at = close.unwrap_or(columns.len());
    columns.splice(at..at, constraints);
    columns.join("\n")
}

/// A naming convention for env.py's `target_metadata`: it names the UNIQUE, FOREIGN KEY and
/// PRIMARY KEY constraints the generator leaves unnamed (not CHECKs: an unnamed Boolean's
/// would need a name).
const CONVENTION: &str = "MetaData(naming_convention={\"ix\": \"ix_%(column_0_label)s\", \
    \"uq\": \"uq_%(table_name)s_%(column_0_name)s\", \
    \"fk\": \"fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s\", \
    \"pk\": \"pk_%(table_name)s\"})";

fn write_history(dir: &Path, revisions: &[Revision], configure_extra: &str, convention: bool) {
    prepare_project(
        &repo_root().join("tests/fixtures/_ops"),
        dir,
        &ProjectSetup {
            logging: true,
            configure_extra: configure_extra.to_string(),
        },
    );
    if convention {
        let env = dir.join("alembic/env.py");
        let text = std::fs::read_to_string(&env).unwrap();
        assert!(text.contains("target_metadata = None"));
        let text = text.replace(
            "target_metadata = None",
            &format!("from sqlalchemy import MetaData\ntarget_metadata = {CONVENTION}"),
        );
        std::fs::write(&env, text).unwrap();
    }
    let versions = dir.join("alembic/versions");
    std::fs::remove_dir_all(&versions).unwrap();
    std::fs::create_dir_all(&versions).unwrap();
    let mut prev = "None".to_string();
    for (i, rev) in revisions.iter().enumerate() {
        let id = format!("r{i:02}");
        let text = format!(
            "\"\"\"generated revision {i}\n\nRevision ID: {id}\nRevises: {}\nCreate Date: 2026-11-28 15:00:00.000000\n\"\"\"\nimport datetime\nimport uuid\n\nfrom alembic import op\nimport sqlalchemy as sa\nfrom sqlalchemy.dialects import sqlite\n\nrevision = \"{id}\"\ndown_revision = {prev}\nbranch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n{}\n\n\ndef downgrade():\n{}\n",
            prev.trim_matches('"').replace("None", ""),
            rev.upgrade.join("\n"),
            rev.downgrade.iter().rev().cloned().collect::<Vec<_>>().join("\n"),
        );
        std::fs::write(versions.join(format!("{id}_generated.py")), text).unwrap();
        prev = format!("\"{id}\"");
    }
}

#[test]
fn random_schema_changes_match_alembic() {
    let seed = knob("DDL_SEED", 0x64646c_u64);
    let projects: usize = knob("DDL_PROJECTS", 10);
    let revisions: usize = knob("DDL_REVISIONS", 8);
    eprintln!("random DDL: DDL_SEED={seed} DDL_PROJECTS={projects} DDL_REVISIONS={revisions}");
    let long: usize = knob("DDL_LONG", 30);
    let mut rng = Rng(seed);
    let work = tempfile::tempdir().unwrap();
    let sequence = |label: String, project: &Path, steps: &[&str]| Sequence {
        label,
        project: project.to_path_buf(),
        db: "test.db".into(),
        version_table: "alembic_version".into(),
        steps: steps
            .iter()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect(),
        partial_in_alembic: Vec::new(),
        alembic_steps: Vec::new(),
    };
    let mut seqs = Vec::new();
    // Short histories walked one revision at a time; then a long one run whole, which
    // ralembic pipelines (its statements run on a worker thread while the next bodies are
    // evaluated), in one transaction and in one per revision.
    for p in 0..=projects {
        let n = if p < projects { revisions } else { long };
        let history = Gen::new(&mut rng, false).history(n);
        let project = work.path().join("projects").join(format!("p{p}"));
        // Every third history names what it leaves unnamed by env.py's convention.
        let convention = p % 3 == 1;
        write_history(&project, &history, "", convention);
        if p < projects {
            let mut steps = vec!["upgrade +1"; n];
            steps.extend(vec!["downgrade -1"; n]);
            seqs.push(sequence(format!("p{p}"), &project, &steps));
        } else {
            let whole = ["upgrade head", "downgrade base"];
            seqs.push(sequence(format!("p{p} (long)"), &project, &whole));
            let per_migration = work.path().join("projects").join(format!("p{p}-each"));
            write_history(
                &per_migration,
                &history,
                "transaction_per_migration=True",
                convention,
            );
            seqs.push(sequence(
                format!("p{p} (long, a transaction per migration)"),
                &per_migration,
                &whole,
            ));
        }
        seqs.push(sequence(
            format!("p{p} --sql"),
            &project,
            &["upgrade head --sql"],
        ));
        if p < projects {
            // The same kinds of history, every batch block with copy_from, printed whole both
            // ways.
            let history = Gen::new(&mut rng, true).history(n);
            let project = work.path().join("projects").join(format!("p{p}-sql"));
            write_history(&project, &history, "", convention);
            seqs.push(sequence(
                format!("p{p}-sql --sql"),
                &project,
                &["upgrade head --sql", "downgrade head:base --sql"],
            ));
        }
    }
    let run = work.path().join("run");
    let (py, rs) = std::thread::scope(|s| {
        let py = s.spawn(|| run_oracle(&seqs, &["0"], &run));
        let rs = run_candidate(&seqs, &run, 1);
        (py.join().expect("oracle panicked"), rs)
    });
    let mut report = Report::default();
    let (mut offline_runs, mut offline_failures) = (0, 0);
    for (qi, q) in seqs.iter().enumerate() {
        for (si, argv) in q.steps.iter().enumerate() {
            let p: &Observation = &py[0][qi][si];
            let r = &rs[qi][si];
            let offline = argv.iter().any(|a| a == "--sql");
            // The histories made for --sql (their batch blocks have copy_from) run whole.
            let whole = !offline || q.label.ends_with("-sql --sql");
            if p.outcome.code != Some(0) && whole {
                report.fail(format!(
                    "=== GENERATOR BUG {} step {si}: Python Alembic fails `alembic {}`:\n{}",
                    q.label,
                    argv.join(" "),
                    show(&p.outcome)
                ));
                break;
            }
            offline_runs += usize::from(!whole);
            offline_failures += usize::from(!whole && p.outcome.code != Some(0));
            let (p, r) = if offline {
                (&set_orders_sorted(p), &set_orders_sorted(r))
            } else {
                (p, r)
            };
            if let Err(why) = compare_step(&[p], r, None) {
                // Step k < n runs revision k up; step n + j runs revision n - 1 - j down.
                let file = if q.steps.len() == 2 * revisions {
                    let rev = if si < revisions {
                        si
                    } else {
                        2 * revisions - 1 - si
                    };
                    q.project
                        .join(format!("alembic/versions/r{rev:02}_generated.py"))
                } else {
                    q.project.clone()
                };
                report.fail(format!(
                    "=== MISMATCH {} step {si}: `alembic {}` ({})\n{why}\n  --- alembic\n{}  --- ralembic\n{}",
                    q.label,
                    argv.join(" "),
                    file.display(),
                    show(&p.outcome),
                    show(&r.outcome)
                ));
                break;
            }
            report.passed += 1;
        }
    }
    // Batch blocks without copy_from need the database: Alembic's --sql stops at the first.
    eprintln!(
        "random DDL: {offline_failures} of {offline_runs} --sql runs of the other histories \
         fail in both tools"
    );
    if !report.failures.is_empty() {
        // Keep the projects to read.
        let kept = work.keep();
        eprintln!("random DDL: projects kept in {}", kept.display());
    }
    report.finish(&format!("random DDL (DDL_SEED={seed})"));
}

//! The operation model: what a revision body asks for, as data. `eval` builds these from the
//! `op.*` / `sa.*` calls it interprets; `ddl` renders them for a dialect; `runtime` runs the
//! SQL. Mirrors Alembic's `operations/ops.py` and the SQLAlchemy schema objects it carries.
//!
//! Values are kept close to what the Python call received (a type is its class name plus its
//! literal arguments), so the renderer, not the evaluator, owns dialect knowledge.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where an operation was written: `path:line:col` in error messages.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SourcePos {
    pub path: Arc<PathBuf>,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub col: u32,
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// A Python literal as passed to a type, column or operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Literal>),
    /// A type passed as an argument (`sa.ARRAY(sa.Integer)`, `sa.Enum(..., name=...)` keeps
    /// strings; this is for nested types).
    Type(Box<TypeSpec>),
}

/// A SQLAlchemy type as written: `sa.String(50)` is `{dialect: None, name: "String",
/// args: [Int(50)]}`; `sqlite.JSON()` has `dialect: Some("sqlite")`. A bare class
/// (`sa.Integer`) is the same as calling it with no arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeSpec {
    /// `None` for `sqlalchemy` / `sqlalchemy.types`; `Some("sqlite" | "postgresql" | ...)` for
    /// `sqlalchemy.dialects.<name>`.
    pub dialect: Option<String>,
    /// The class name as SQLAlchemy spells it (`String`, `VARCHAR`, `DateTime`, `JSON`...).
    pub name: String,
    pub args: Vec<Literal>,
    pub kwargs: Vec<(String, Literal)>,
    /// A class the revision file derives from a SQLAlchemy type (`class JSONB(JSON)`); `name`
    /// above is then its SQLAlchemy base, which decides how values are bound and read.
    #[serde(default)]
    pub custom: Option<Box<CustomType>>,
}

/// What a revision file's own type class changes: the name SQLAlchemy's compiler dispatches
/// on (`__visit_name__`) and, when a `@compiles(Class, "sqlite")` function was registered,
/// the DDL text that function returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomType {
    pub class_name: String,
    pub visit_name: String,
    pub ddl: Option<String>,
}

/// A constraint or index name: `op.f("x")` marks a name as final (no naming convention).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Name {
    Plain(String),
    Final(String),
}

impl Name {
    pub fn as_str(&self) -> &str {
        match self {
            Name::Plain(s) | Name::Final(s) => s,
        }
    }
}

/// SQL expressions that appear inside DDL (server defaults, check constraints, index
/// expressions, `sqlite_where`) and in `op.execute` / `bulk_insert`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SqlExpr {
    /// `sa.text("...")`: verbatim.
    Text(String),
    /// A Python value (rendered as a literal in DDL, bound elsewhere).
    Literal(Literal),
    /// `sa.column("x")` or a column name given as a string where an expression is expected.
    Column(String),
    /// `sa.func.name(args...)`.
    Func {
        name: String,
        args: Vec<SqlExpr>,
    },
    /// `left <op> right` with SQL operator text (`=`, `>`, `AND`, `IS`...).
    Binary {
        left: Box<SqlExpr>,
        op: String,
        right: Box<SqlExpr>,
    },
    /// `NOT x`, `-x`.
    Unary {
        op: String,
        operand: Box<SqlExpr>,
    },
    /// `sa.null()`, `sa.true()`, `sa.false()`.
    Null,
    True,
    False,
}

/// `server_default=`: a plain string renders quoted; `sa.text` verbatim; functions as
/// SQLAlchemy renders them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerDefault {
    Str(String),
    Expr(SqlExpr),
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub enum Autoincrement {
    #[default]
    Auto,
    True,
    False,
    IgnoreFk,
}

/// `sa.ForeignKey("table.col", ...)` inside a Column.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ForeignKey {
    /// `"table.column"` or `"schema.table.column"` as written.
    pub target: String,
    pub name: Option<Name>,
    pub ondelete: Option<String>,
    pub onupdate: Option<String>,
    pub deferrable: Option<bool>,
    pub initially: Option<String>,
    pub match_: Option<String>,
    pub use_alter: bool,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Column {
    pub name: String,
    /// `None`: no type given (SQLAlchemy's NullType; for a ForeignKey column, the referenced
    /// column's type).
    pub type_: Option<TypeSpec>,
    /// `None`: not given (nullable unless part of the primary key).
    pub nullable: Option<bool>,
    pub primary_key: bool,
    pub autoincrement: Autoincrement,
    pub unique: Option<bool>,
    pub index: Option<bool>,
    pub server_default: Option<ServerDefault>,
    pub comment: Option<String>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Constraints given positionally to `sa.Column` (e.g. `sa.CheckConstraint`).
    pub constraints: Vec<Constraint>,
    /// `sqlite_on_conflict_*`, `info=`, ... kept for the renderer to honour or ignore.
    pub kwargs: Vec<(String, Literal)>,
    /// `sa.Computed(sqltext, persisted=)` given to the column.
    pub computed: Option<ComputedSpec>,
    /// `default=` (Python-side, never in DDL): what an INSERT through a Table that has the
    /// column fills in when it is given no value, a batch copy included.
    pub python_default: Option<PythonDefault>,
}

/// A column's Python-side `default=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PythonDefault {
    /// A constant or a callable, kept by the evaluator that read it (an index into its
    /// list): bound by the column's type, the callable called for each row.
    Value(usize),
    /// Such a value, bound by the column's type (a callable's answer), for the engine: a
    /// batch copy binds it once for every row.
    Bound(Literal),
    /// A SQL expression (`sa.text`, `sa.func.now()`): rendered into the INSERT.
    Sql(SqlExpr),
}

/// `sa.Computed`: a generated column's expression and whether it is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputedSpec {
    pub sqltext: SqlExpr,
    pub persisted: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Constraint {
    PrimaryKey {
        name: Option<Name>,
        columns: Vec<String>,
        kwargs: Vec<(String, Literal)>,
    },
    Unique {
        name: Option<Name>,
        columns: Vec<String>,
        kwargs: Vec<(String, Literal)>,
    },
    ForeignKey {
        name: Option<Name>,
        columns: Vec<String>,
        /// `"table.col"` (or `"schema.table.col"`) per local column, as written.
        refcolumns: Vec<String>,
        ondelete: Option<String>,
        onupdate: Option<String>,
        deferrable: Option<bool>,
        initially: Option<String>,
        match_: Option<String>,
        use_alter: bool,
    },
    Check {
        name: Option<Name>,
        sqltext: SqlExpr,
    },
}

/// One key of an index: a column name or an expression (`sa.text("x DESC")`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IndexKey {
    Column(String),
    Expr(SqlExpr),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub name: Option<Name>,
    pub table: String,
    pub schema: Option<String>,
    pub keys: Vec<IndexKey>,
    pub unique: bool,
    pub if_not_exists: bool,
    pub sqlite_where: Option<SqlExpr>,
    pub kwargs: Vec<(String, Literal)>,
}

/// `sa.table("t", sa.column("a", sa.Integer), ...)`, as `bulk_insert` and data idioms use it.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TableClause {
    pub name: String,
    pub schema: Option<String>,
    pub columns: Vec<(String, Option<TypeSpec>)>,
    /// Columns whose Python-side `default=` is a SQL expression: an INSERT that is given no
    /// value for one renders the expression in its VALUES, as SQLAlchemy does.
    pub sql_defaults: Vec<(String, SqlExpr)>,
}

/// `op.alter_column(...)`. `Option<Option<_>>` fields: outer `None` = not given,
/// `Some(None)` = given as `None`/`False` (e.g. drop the server default).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AlterColumn {
    pub table: String,
    pub schema: Option<String>,
    pub column: String,
    pub nullable: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub comment: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub server_default: Option<Option<ServerDefault>>,
    pub new_column_name: Option<String>,
    pub type_: Option<TypeSpec>,
    pub existing_type: Option<TypeSpec>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub existing_server_default: Option<Option<ServerDefault>>,
    pub existing_nullable: Option<bool>,
    pub existing_comment: Option<String>,
    pub autoincrement: Option<bool>,
    pub kwargs: Vec<(String, Literal)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Recreate {
    Auto,
    Always,
    Never,
}

/// `with op.batch_alter_table(...) as batch_op:`; `ops` are what the block asked for, run
/// when the block exits. Table names inside `ops` are the batch's table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub table: String,
    pub schema: Option<String>,
    pub recreate: Recreate,
    pub partial_reordering: Vec<Vec<String>>,
    pub copy_from: Option<TableDefinition>,
    pub table_args: Vec<Constraint>,
    pub table_kwargs: Vec<(String, Literal)>,
    pub reflect_args: Vec<Column>,
    pub naming_convention: Vec<(String, String)>,
    pub ops: Vec<(Op, SourcePos)>,
}

/// A complete `sa.Table(name, metadata, *items)` built in a body (not autoloaded): what
/// `batch_alter_table(copy_from=...)` copies from instead of reflecting.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TableDefinition {
    pub create: CreateTable,
    /// Its `sa.Index` items: Alembic re-creates them after the copy.
    pub indexes: Vec<Index>,
    /// Its MetaData's `naming_convention` (the Table's own, not env.py's), which names
    /// what it leaves unnamed.
    pub naming_convention: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateTable {
    pub name: String,
    pub schema: Option<String>,
    pub columns: Vec<Column>,
    pub constraints: Vec<Constraint>,
    pub if_not_exists: bool,
    pub comment: Option<String>,
    pub prefixes: Vec<String>,
    pub kwargs: Vec<(String, Literal)>,
}

/// A value for `op.execute` or `conn.execute` that is not DDL we build ourselves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Statement {
    /// A plain string or `sa.text(...)`, with bound parameters if any (`:name` style).
    Text {
        sql: String,
        params: Vec<(String, Literal)>,
    },
    /// A statement construct already compiled with its values inline (`--sql` mode): run as
    /// it is, not read as text() again.
    Compiled(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    CreateTable(CreateTable),
    DropTable {
        name: String,
        schema: Option<String>,
        if_exists: bool,
    },
    RenameTable {
        old: String,
        new: String,
        schema: Option<String>,
    },
    AddColumn {
        table: String,
        schema: Option<String>,
        column: Column,
        if_not_exists: bool,
        /// Batch mode only.
        insert_before: Option<String>,
        insert_after: Option<String>,
    },
    DropColumn {
        table: String,
        schema: Option<String>,
        column: String,
        if_exists: bool,
        /// `existing_type=` (batch mode forgets the named CHECK of a Boolean or Enum).
        #[serde(default)]
        existing_type: Option<TypeSpec>,
    },
    AlterColumn(AlterColumn),
    CreateIndex(Index),
    DropIndex {
        name: Name,
        table: Option<String>,
        schema: Option<String>,
        if_exists: bool,
        /// `sqlite_where=`: accepted and ignored by SQLite's DROP INDEX; autogenerate writes
        /// it for a partial index, as Alembic does.
        #[serde(default)]
        sqlite_where: Option<SqlExpr>,
    },
    CreateUniqueConstraint {
        name: Option<Name>,
        table: String,
        schema: Option<String>,
        columns: Vec<String>,
    },
    CreateForeignKey {
        name: Option<Name>,
        source_table: String,
        referent_table: String,
        local_cols: Vec<String>,
        remote_cols: Vec<String>,
        ondelete: Option<String>,
        onupdate: Option<String>,
        deferrable: Option<bool>,
        initially: Option<String>,
        match_: Option<String>,
        source_schema: Option<String>,
        referent_schema: Option<String>,
    },
    CreateCheckConstraint {
        name: Option<Name>,
        table: String,
        schema: Option<String>,
        condition: SqlExpr,
    },
    CreatePrimaryKey {
        name: Option<Name>,
        table: String,
        schema: Option<String>,
        columns: Vec<String>,
    },
    DropConstraint {
        name: Name,
        table: String,
        schema: Option<String>,
        /// `type_=`: "foreignkey", "primary", "unique", "check" or None.
        type_: Option<String>,
    },
    Execute(Statement),
    BulkInsert {
        table: TableClause,
        rows: Vec<Vec<(String, Literal)>>,
        multiinsert: bool,
    },
    Batch(Batch),
}

/// Serialized as `{"path": ..., "line": ..., "col": ...}`; the `Arc` is only for cheap clones.
impl Serialize for SourcePos {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SourcePosRepr {
            path: self.path.as_ref().clone(),
            line: self.line,
            col: self.col,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SourcePos {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = SourcePosRepr::deserialize(d)?;
        Ok(SourcePos {
            path: Arc::new(r.path),
            line: r.line,
            col: r.col,
        })
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct SourcePosRepr {
    path: PathBuf,
    line: u32,
    col: u32,
}

/// `Option<Option<T>>` fields: a missing key is "not given" (`None`), an explicit `null` is
/// "given as None" (`Some(None)`); plain serde would read both as `None`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

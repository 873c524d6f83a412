//! Alembic's `runtime/migration.py` for SQLite: the [`MigrationContext`] (a connection, or the
//! offline `--sql` text), transactions and the write lock, and the `alembic_version` rows kept
//! by Alembic's `HeadMaintainer` rules ([`heads`]). Also the seam through which revision bodies
//! run ([`BodyRunner`]) and the log lines Alembic's generic logging setup prints ([`log`]).
//!
//! Owns: opening the database, `BEGIN IMMEDIATE` / `COMMIT` / `ROLLBACK` units, the version
//! table's DDL and row statements (text equal to SQLAlchemy's for SQLite), offline output.
//! Does not own: planning which steps run (`revision`), what a body does (`eval`, through
//! [`BodyRunner`]), rendering operations to SQL (`ddl`), or printing results (`command`).

mod body;
mod context;
pub mod heads;
pub mod log;
pub mod pipeline;
mod sql;

pub use body::{BodyError, BodyRunner, PassOnlyRunner, PlannedStep, COMMAND_ERROR};
pub(crate) use context::{
    dbapi_message, dbapi_parts, split_sqlite_error, sqlalchemy_class, DbapiParts,
};
pub use context::{ContextOptions, MigrationContext, RuntimeError, DEFAULT_LOCK_TIMEOUT};
pub use heads::{HeadMaintainer, Step};
pub use sql::{quote_identifier, VersionTable};

//! Everything Alembic-compatible, laid out like Alembic itself so its users find their way:
//! `config` (alembic.ini) -> `script` (revision files) -> `revision` (the DAG) -> `command`.
//! No MeshView knowledge lives here.
pub mod command;
pub mod config;
pub mod revision;
pub mod script;

//! Everything Alembic-compatible, laid out like Alembic itself so its users find their way:
//! `config` (alembic.ini) -> `script` (revision files) -> `revision` (the DAG) -> `eval`
//! (revision bodies) -> `ops` (what they ask for) -> `ddl` / `batch` (SQL text) -> `runtime`
//! (transactions, version table) -> `command`. No MeshView knowledge lives here.
pub mod autogenerate;
pub mod batch;
pub mod command;
pub mod config;
pub mod ddl;
pub mod eval;
pub mod mako;
pub mod ops;
pub mod pattern;
pub(crate) mod placement;
pub mod revision;
pub mod runtime;
pub mod script;

/// The cores this process may use, asked once: the standard library reads the cgroup files
/// on every call, and loading, stamping and parsing each ask.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

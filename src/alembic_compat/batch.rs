//! SQLite move-and-copy for `op.batch_alter_table` (Alembic's `operations/batch.py`).
use super::ddl::{DdlError, RenderOptions};
use super::ops::Batch;

pub fn batch_statements(
    _conn: &rusqlite::Connection,
    _batch: &Batch,
    _opts: &RenderOptions,
) -> Result<Vec<String>, DdlError> {
    Err(DdlError::Command("todo".into()))
}

pub fn batch_statements_offline(
    _batch: &Batch,
    _opts: &RenderOptions,
) -> Result<Vec<String>, DdlError> {
    Err(DdlError::Command("todo".into()))
}

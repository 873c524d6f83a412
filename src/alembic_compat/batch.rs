//! SQLite move-and-copy for `op.batch_alter_table` (Alembic's `operations/batch.py`).

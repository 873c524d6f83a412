//! The revision DAG (Alembic's `RevisionMap`): no I/O, no SQL.

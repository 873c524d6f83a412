//! MigrationContext: connection, transactions, write lock, `alembic_version` rows, offline `--sql` output.

//! SQLite DDL as SQLAlchemy 2.1 renders it.

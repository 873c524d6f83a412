//! Reading an existing SQLite table back the way SQLAlchemy's SQLite dialect reflects it.

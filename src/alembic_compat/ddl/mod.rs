//! Rendering operations to SQL text exactly as SQLAlchemy's compiler for a dialect would, and
//! reading an existing table back (for batch mode). Nothing here executes SQL.
pub mod sqlite;

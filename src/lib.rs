//! meshview-rs: an Alembic-compatible migration engine (`alembic_compat`) and the MeshView
//! applications built on it (`apps`).
pub mod alembic_compat;
pub mod allocator;
pub mod apps;

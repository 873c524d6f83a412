//! MeshView applications (writer, web). Grows in later issues; for now only the
//! `meshview alembic <verb>` forwarding lives in the binary.

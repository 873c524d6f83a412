//! A restricted Python interpreter for revision bodies.

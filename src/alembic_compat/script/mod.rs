//! Revision files: the pest grammar, our typed AST, and the module-level metadata.

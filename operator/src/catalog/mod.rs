//! Catalog as code: reading catalog files (from a folder or a git revision), linting them with
//! the same rules everywhere (PR CI, pre-commit, the operator), and applying them.

pub mod git;

use std::path::PathBuf;

/// One file of a catalog, as read from disk or from a git tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Path shown in messages: relative to the catalog root (or as given on the command line).
    pub path: PathBuf,
    /// Raw contents; may be anything, including binary junk the linter must reject cleanly.
    pub contents: Vec<u8>,
}

/// Whether a path names a catalog document (YAML).
pub fn is_catalog_file(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

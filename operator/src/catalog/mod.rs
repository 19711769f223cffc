//! Catalog as code: reading catalog files (from a folder or a git revision), linting them with
//! the same rules everywhere (PR CI, pre-commit, the operator), and applying them.

pub mod diff;
pub mod document;
pub mod git;
pub mod lint;
pub mod report;
pub mod source_status;
pub mod sync;

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

/// The kinds that belong in a catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CatalogKind {
    Listing,
    WizardConfig,
    Promotion,
    Bundle,
}

impl CatalogKind {
    pub const ALL: [CatalogKind; 4] = [
        CatalogKind::Listing,
        CatalogKind::WizardConfig,
        CatalogKind::Promotion,
        CatalogKind::Bundle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CatalogKind::Listing => "Listing",
            CatalogKind::WizardConfig => "WizardConfig",
            CatalogKind::Promotion => "Promotion",
            CatalogKind::Bundle => "Bundle",
        }
    }

    pub fn from_name(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == kind)
    }

    /// File name of the editor schema in `catalog/schemas/`.
    pub fn schema_file(self) -> &'static str {
        match self {
            CatalogKind::Listing => "listing.schema.json",
            CatalogKind::WizardConfig => "wizardconfig.schema.json",
            CatalogKind::Promotion => "promotion.schema.json",
            CatalogKind::Bundle => "bundle.schema.json",
        }
    }

    /// The catalog folder objects of this kind live in.
    pub fn folder(self) -> &'static str {
        match self {
            CatalogKind::Listing => "listings",
            CatalogKind::WizardConfig => "wizards",
            CatalogKind::Promotion => "promotions",
            CatalogKind::Bundle => "bundles",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

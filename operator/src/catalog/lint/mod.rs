//! The catalog linter: the same checks in PR CI, pre-commit hooks and the operator (before it
//! applies a git revision), offline and fast.
//!
//! Each file goes through stages: YAML (`document`), identity (kind, file name), the CRD's
//! OpenAPI schema, its CEL rules, then listing and wizard checks. Cross-file checks and the
//! comparison with a base revision follow. A field reported by an earlier stage is not reported
//! again by a later one (see [`Rule::stage`]), so one mistake gives one error.

mod bundle;
mod cel;
mod cross;
mod currency;
pub mod diagnostic;
mod file;
mod history;
mod identity;
mod listing;
pub mod openapi;
mod path;
mod promotion;
mod schema;
mod stages;
mod wizard;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Rule, Severity};
pub use openapi::{CatalogKind, SchemaError};

use self::file::{At, FileRef};
use self::history::Base;
use super::SourceFile;
use super::document::Document;
use crate::api::{Bundle, Listing, Promotion, WizardConfig};

/// What to lint against besides the files themselves.
#[derive(Clone, Debug, Default)]
pub struct LintOptions {
    /// The rest of the catalog, when only some of its files are linted (a pre-commit hook passes
    /// the changed files): read to resolve names (requires, wizardConfigRef, unique names) but
    /// never reported on.
    pub context: Vec<SourceFile>,
    /// The catalog at a base revision (the pull request's target branch, or what the operator
    /// runs now), covering the same folders as `files` and `context`. Enables the
    /// `published-deleted` and `lifecycle-regression` checks and CEL transition rules.
    pub base: Option<Vec<SourceFile>>,
}

/// A catalog object that passed every check, typed.
#[derive(Clone, Debug)]
pub enum CatalogObject {
    Listing {
        path: PathBuf,
        listing: Box<Listing>,
    },
    WizardConfig {
        path: PathBuf,
        wizard: Box<WizardConfig>,
    },
    Promotion {
        path: PathBuf,
        promotion: Box<Promotion>,
    },
    Bundle {
        path: PathBuf,
        bundle: Box<Bundle>,
    },
}

impl CatalogObject {
    pub fn path(&self) -> &Path {
        match self {
            CatalogObject::Listing { path, .. }
            | CatalogObject::WizardConfig { path, .. }
            | CatalogObject::Promotion { path, .. }
            | CatalogObject::Bundle { path, .. } => path,
        }
    }

    pub fn kind(&self) -> CatalogKind {
        match self {
            CatalogObject::Listing { .. } => CatalogKind::Listing,
            CatalogObject::WizardConfig { .. } => CatalogKind::WizardConfig,
            CatalogObject::Promotion { .. } => CatalogKind::Promotion,
            CatalogObject::Bundle { .. } => CatalogKind::Bundle,
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            CatalogObject::Listing { listing, .. } => listing.metadata.name.as_deref(),
            CatalogObject::WizardConfig { wizard, .. } => wizard.metadata.name.as_deref(),
            CatalogObject::Promotion { promotion, .. } => promotion.metadata.name.as_deref(),
            CatalogObject::Bundle { bundle, .. } => bundle.metadata.name.as_deref(),
        }
    }
}

/// The outcome of a lint run.
#[derive(Clone, Debug, Default)]
pub struct LintReport {
    /// Objects of the linted files that have no error, in file order.
    pub objects: Vec<CatalogObject>,
    /// Every problem found, sorted by file, line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// How many files were linted (not counting context files), plus deleted files reported on.
    pub files_checked: usize,
}

impl LintReport {
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// How many distinct files have at least one error.
    pub fn files_with_errors(&self) -> usize {
        let mut files: Vec<&Path> = self
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.file.as_path())
            .collect();
        files.sort();
        files.dedup();
        files.len()
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// One file after the per-file stages.
pub(crate) struct Parsed {
    path: PathBuf,
    document: Option<Document>,
    kind: Option<CatalogKind>,
    /// False for context files.
    linted: bool,
}

impl Parsed {
    fn file(&self) -> Option<FileRef<'_>> {
        self.document.as_ref().map(|document| FileRef {
            path: &self.path,
            document,
        })
    }

    fn name(&self) -> Option<&str> {
        self.document
            .as_ref()?
            .value
            .pointer("/metadata/name")?
            .as_str()
    }
}

/// Lints catalog files. Never fails and never panics: every problem, including unreadable
/// input, is a diagnostic.
pub fn lint(files: &[SourceFile], options: &LintOptions) -> LintReport {
    let base = options.base.as_deref().map(Base::parse);
    let mut diagnostics = Vec::new();
    let mut parsed = Vec::with_capacity(files.len() + options.context.len());
    for (entry, found) in stages::check_files(files, base.as_ref()) {
        parsed.push(entry);
        diagnostics.extend(found);
    }
    for file in &options.context {
        parsed.push(stages::context_file(file));
    }
    diagnostics.extend(cross::check(&parsed));
    if let Some(base) = &base {
        diagnostics.extend(base.check(&parsed));
    }
    let mut diagnostics = deduplicate(diagnostics);
    let objects = typed_objects(&parsed, &mut diagnostics);
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
    });
    // Deleted files (published-deleted) count among the files the run looked at.
    let gone: std::collections::HashSet<&Path> = diagnostics
        .iter()
        .map(|d| d.file.as_path())
        .filter(|path| !files.iter().any(|f| f.path == *path))
        .collect();
    let files_checked = files.len() + gone.len();
    LintReport {
        objects,
        diagnostics,
        files_checked,
    }
}

/// Keeps, for each file and field, the errors of the earliest stage that reported it. Later
/// errors on the same field are consequences (a 1,001-character tagline breaks both maxLength
/// and the CEL rule). A `plan-name-unique` error replaces the CEL rule on the whole plan list,
/// which says the same with less precision. Warnings are always kept.
fn deduplicate(diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut earliest: HashMap<(&Path, &str), u8> = HashMap::new();
    for d in diagnostics.iter().filter(|d| d.is_error()) {
        let stage = earliest
            .entry((d.file.as_path(), d.field_path.as_str()))
            .or_insert(u8::MAX);
        *stage = (*stage).min(d.rule.stage());
    }
    let plan_lists: Vec<(PathBuf, String)> = diagnostics
        .iter()
        .filter(|d| d.rule == Rule::PlanNameUnique)
        .filter_map(|d| Some((d.file.clone(), d.field_path.split_once('[')?.0.to_owned())))
        .collect();
    let keep: Vec<bool> = diagnostics
        .iter()
        .map(|d| {
            if !d.is_error() {
                return true;
            }
            let superseded = d.rule == Rule::Cel
                && plan_lists
                    .iter()
                    .any(|(file, list)| *file == d.file && *list == d.field_path);
            !superseded
                && earliest.get(&(d.file.as_path(), d.field_path.as_str())) == Some(&d.rule.stage())
        })
        .collect();
    diagnostics
        .into_iter()
        .zip(keep)
        .filter_map(|(d, keep)| keep.then_some(d))
        .collect()
}

/// Typed objects of the linted files without errors. A schema-valid object that serde still
/// rejects means the schema and the Rust types disagree; that is reported, not hidden.
fn typed_objects(parsed: &[Parsed], diagnostics: &mut Vec<Diagnostic>) -> Vec<CatalogObject> {
    let failed: std::collections::HashSet<PathBuf> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.file.clone())
        .collect();
    let mut objects = Vec::new();
    for entry in parsed
        .iter()
        .filter(|e| e.linted && !failed.contains(&e.path))
    {
        let (Some(kind), Some(file)) = (entry.kind, entry.file()) else {
            continue;
        };
        let path = entry.path.clone();
        let typed = match kind {
            CatalogKind::Listing => {
                serde_json::from_value(file.value().clone()).map(|listing| CatalogObject::Listing {
                    path,
                    listing: Box::new(listing),
                })
            }
            CatalogKind::WizardConfig => {
                serde_json::from_value(file.value().clone()).map(|wizard| {
                    CatalogObject::WizardConfig {
                        path,
                        wizard: Box::new(wizard),
                    }
                })
            }
            CatalogKind::Promotion => {
                serde_json::from_value(file.value().clone()).map(|promotion| {
                    CatalogObject::Promotion {
                        path,
                        promotion: Box::new(promotion),
                    }
                })
            }
            CatalogKind::Bundle => {
                serde_json::from_value(file.value().clone()).map(|bundle| CatalogObject::Bundle {
                    path,
                    bundle: Box::new(bundle),
                })
            }
        };
        match typed {
            Ok(object) => objects.push(object),
            Err(error) => {
                let message = format!(
                    "the object does not match the {} type: {error}",
                    kind.name()
                );
                let hint =
                    "this is a bug in marketplace-operator (schema and types disagree); report it"
                        .to_owned();
                diagnostics.push(file.error("", At::Auto, Rule::Schema, message, hint));
            }
        }
    }
    objects
}

#[cfg(test)]
mod tests;

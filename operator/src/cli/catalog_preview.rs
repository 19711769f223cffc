//! `marketplace catalog preview`: a catalog folder as static storefront pages for a pull
//! request's reviewers, with `changes.html` against the base revision. Reads and writes files;
//! what to show is decided by [`crate::catalog::diff`] and [`crate::front_door::web::preview`]
//! (listings, bundles and the promotions a tenant gets without a code).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use jiff::Timestamp;

use super::CliError;
use super::catalog::{base_files, collect};
use crate::api::{Bundle, Listing, Promotion, WizardConfig};
use crate::catalog::diff::diff;
use crate::catalog::lint::{self, CatalogObject, LintOptions};
use crate::catalog::report::{self, Format};
use crate::catalog::{SourceFile, git};
use crate::front_door::web::changes_page::Revisions;
use crate::front_door::web::preview::{PreviewInput, render_site};
use crate::front_door::web::theme_file::ThemeArgs;

#[derive(Args, Debug)]
pub struct PreviewArgs {
    /// The catalog folder (holding `listings/` and `wizards/`).
    #[arg(default_value = "catalog")]
    pub path: PathBuf,
    /// Folder to write the pages into (created if missing; files of the same name replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Git revision to compare with in `changes.html` (e.g. origin/main in a pull request).
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    #[command(flatten)]
    pub theme: ThemeArgs,
}

/// The typed objects of files that pass the linter.
#[derive(Default)]
struct Objects {
    listings: Vec<Listing>,
    wizards: Vec<WizardConfig>,
    bundles: Vec<Bundle>,
    promotions: Vec<Promotion>,
}

fn objects(report: lint::LintReport) -> Objects {
    let mut out = Objects::default();
    for object in report.objects {
        match object {
            CatalogObject::Listing { listing, .. } => out.listings.push(*listing),
            CatalogObject::WizardConfig { wizard, .. } => out.wizards.push(*wizard),
            CatalogObject::Bundle { bundle, .. } => out.bundles.push(*bundle),
            CatalogObject::Promotion { promotion, .. } => out.promotions.push(*promotion),
        }
    }
    out
}

/// The revision the working tree is at, for the page's heading.
fn head_label(path: &Path) -> String {
    let shown = path.display();
    let commit = git::open_containing(path)
        .ok()
        .and_then(|repo| git::resolve_commit(&repo, "HEAD").ok());
    match commit {
        Some(commit) => format!("{shown} (working tree at {:.12})", commit.to_string()),
        None => format!("{shown}"),
    }
}

pub fn run(args: &PreviewArgs) -> Result<(), CliError> {
    let theme = args
        .theme
        .theme()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut files = Vec::new();
    collect(&args.path, &mut files)?;
    let base: Option<Vec<SourceFile>> = match &args.base {
        Some(revision) => Some(base_files(std::slice::from_ref(&args.path), revision)?),
        None => None,
    };
    // The preview shows only a catalog the linter accepts, so its errors (file, line, field)
    // come first, as `catalog lint` prints them.
    let report = lint::lint(
        &files,
        &LintOptions {
            context: Vec::new(),
            base: base.clone(),
        },
    );
    if report.has_errors() {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(report::render(&report, Format::Text).as_bytes());
        return Err(CliError::LintFailed {
            summary: report::summary(&report),
        });
    }
    let head = objects(report);
    // Base files with errors were the target branch's problem; what parses is compared.
    let before = base
        .map(|files| objects(lint::lint(&files, &LintOptions::default())))
        .unwrap_or_default();
    let changes = diff(
        &before.listings,
        &head.listings,
        &before.wizards,
        &head.wizards,
    );
    let revisions = Revisions {
        base: args.base.clone(),
        head: head_label(&args.path),
    };
    let site = render_site(&PreviewInput {
        listings: &head.listings,
        wizards: &head.wizards,
        bundles: &head.bundles,
        promotions: &head.promotions,
        diff: &changes,
        revisions: &revisions,
        theme: &theme,
        now: Timestamp::now(),
    });
    std::fs::create_dir_all(&args.out).map_err(|source| CliError::Write {
        path: args.out.clone(),
        source,
    })?;
    for (name, contents) in &site {
        let path = args.out.join(name);
        std::fs::write(&path, contents).map_err(|source| CliError::Write { path, source })?;
    }
    println!(
        "wrote {} files to {}: {} listing(s), {} bundle(s); {} added, {} changed, {} retired (open changes.html)",
        site.len(),
        args.out.display(),
        head.listings.len(),
        head.bundles.len(),
        changes.added.len(),
        changes.changed.len(),
        changes.retired.len()
    );
    Ok(())
}

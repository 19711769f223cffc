//! `marketplace catalog lint` and `marketplace catalog schema`: the offline catalog checks for
//! PR CI and pre-commit hooks, and the JSON Schemas editors use to check as you type.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::CliError;
use crate::catalog::document::MAX_FILE_BYTES;
use crate::catalog::lint::{self, CatalogKind, LintOptions};
use crate::catalog::report::{self, Format};
use crate::catalog::{SourceFile, git, is_catalog_file};

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Check catalog files offline: YAML, the CRDs' schemas and CEL rules, and the rules across
    /// files (names, requires, wizards). Exit code 0: clean; 1: errors found; 2: cannot run.
    Lint(LintArgs),
    /// Write the JSON Schemas of catalog files (for editors, via yaml-language-server).
    Schema {
        /// Folder to write `listing.schema.json`, `wizardconfig.schema.json` and `promotion.schema.json` into.
        #[arg(long, default_value = "catalog/schemas")]
        output_dir: PathBuf,
    },
    /// Render the storefront pages of a catalog folder as static HTML (index, each listing's
    /// page, `changes.html` against --base), for reviewing a pull request in a browser.
    Preview(super::catalog_preview::PreviewArgs),
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Catalog files or folders (searched recursively for *.yaml and *.yml). When files inside a
    /// `listings/` or `wizards/` folder are given, the rest of that catalog is read for context.
    #[arg(default_value = "catalog")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Git revision to compare with (e.g. origin/main in a pull request): a listing Published
    /// there must be Archived before it is deleted, and cannot go back to Draft.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
}

pub fn run(command: CatalogCommand) -> Result<(), CliError> {
    match command {
        CatalogCommand::Lint(args) => run_lint(&args),
        CatalogCommand::Schema { output_dir } => write_schemas(&output_dir),
        CatalogCommand::Preview(args) => super::catalog_preview::run(&args),
    }
}

fn run_lint(args: &LintArgs) -> Result<(), CliError> {
    let mut files = Vec::new();
    for path in &args.paths {
        collect(path, &mut files)?;
    }
    let scopes = scopes(&args.paths);
    // A folder given on the command line is linted whole; only the others add context.
    let partial: Vec<PathBuf> = scopes
        .iter()
        .filter(|s| !args.paths.contains(s))
        .cloned()
        .collect();
    let context = context(&partial, &files)?;
    let base = match &args.base {
        Some(revision) => Some(base_files(&scopes, revision)?),
        None => None,
    };
    let report = lint::lint(&files, &LintOptions { context, base });
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(report::render(&report, args.format).as_bytes())
        .map_err(|source| CliError::Write {
            path: "<stdout>".into(),
            source,
        })?;
    if report.has_errors() {
        return Err(CliError::LintFailed {
            summary: report::summary(&report),
        });
    }
    Ok(())
}

/// Adds the catalog files at `path` (a file, or a folder searched recursively) to `files`.
pub(super) fn collect(path: &Path, files: &mut Vec<SourceFile>) -> Result<(), CliError> {
    let metadata = std::fs::metadata(path).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })?;
    if metadata.is_file() {
        files.push(read(path)?);
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .and_then(|dir| dir.collect::<Result<Vec<_>, _>>())
        .map_err(|source| CliError::Read {
            path: path.to_owned(),
            source,
        })?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let child = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // Symlinked folders are not followed: git stores them as links, and loops end here.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if hidden {
            continue;
        }
        if kind.is_dir() {
            collect(&child, files)?;
        } else if is_catalog_file(&child) && std::fs::metadata(&child).is_ok_and(|m| m.is_file()) {
            files.push(read(&child)?);
        }
    }
    Ok(())
}

/// Reads at most one byte more than the linter accepts, so a huge file costs nothing.
fn read(path: &Path) -> Result<SourceFile, CliError> {
    let error = |source| CliError::Read {
        path: path.to_owned(),
        source,
    };
    let mut contents = Vec::new();
    std::fs::File::open(path)
        .map_err(error)?
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut contents)
        .map_err(error)?;
    Ok(SourceFile {
        path: path.to_owned(),
        contents,
    })
}

/// The catalog folders the paths belong to, so that linting some files still resolves names
/// against the whole catalog: a folder holding `listings/` or `wizards/`, or the folder above
/// the `listings/` or `wizards/` folder a path is in. Other folders are their own scope.
fn scopes(paths: &[PathBuf]) -> Vec<PathBuf> {
    let is_kind_folder = |dir: &Path| {
        dir.file_name()
            .is_some_and(|name| CatalogKind::ALL.iter().any(|k| name == k.folder()))
    };
    let mut scopes: Vec<PathBuf> = Vec::new();
    for path in paths {
        let holds_catalog = CatalogKind::ALL
            .iter()
            .any(|k| path.join(k.folder()).is_dir());
        let scope = if holds_catalog {
            Some(path.clone())
        } else if let Some(folder) = path.ancestors().find(|dir| is_kind_folder(dir)) {
            let parent = folder.parent().unwrap_or(Path::new(""));
            Some(if parent.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                parent.to_owned()
            })
        } else {
            path.is_dir().then(|| path.clone())
        };
        if let Some(scope) = scope.filter(|s| !scopes.contains(s)) {
            scopes.push(scope);
        }
    }
    scopes
}

/// The catalog files in `scopes` that are not linted themselves.
fn context(scopes: &[PathBuf], linted: &[SourceFile]) -> Result<Vec<SourceFile>, CliError> {
    let seen: Vec<PathBuf> = linted
        .iter()
        .filter_map(|f| f.path.canonicalize().ok())
        .collect();
    let mut context = Vec::new();
    for scope in scopes {
        let mut found = Vec::new();
        collect(scope, &mut found)?;
        for file in found {
            let canonical = file.path.canonicalize().ok();
            let known = canonical.as_ref().is_some_and(|c| seen.contains(c))
                || context.iter().any(|f: &SourceFile| f.path == file.path);
            if !known {
                context.push(file);
            }
        }
    }
    Ok(context)
}

/// The catalog files of `scopes` at `revision`, with paths spelled like the current ones.
pub(super) fn base_files(scopes: &[PathBuf], revision: &str) -> Result<Vec<SourceFile>, CliError> {
    let mut files = Vec::new();
    for scope in scopes {
        let repo = git::open_containing(scope).map_err(|source| CliError::Git { source })?;
        let commit =
            git::resolve_commit(&repo, revision).map_err(|source| CliError::Git { source })?;
        let read_error = |source| CliError::Read {
            path: scope.clone(),
            source,
        };
        let workdir = repo
            .workdir()
            .ok_or_else(|| read_error(std::io::Error::other("the repository has no work tree")))?
            .canonicalize()
            .map_err(read_error)?;
        let absolute = scope.canonicalize().map_err(read_error)?;
        let relative = absolute.strip_prefix(&workdir).unwrap_or(Path::new(""));
        let folder = relative.to_string_lossy().replace('\\', "/");
        for mut file in
            git::files_at(&repo, commit, &folder).map_err(|source| CliError::Git { source })?
        {
            if let Ok(inside) = file.path.strip_prefix(relative) {
                file.path = if scope == Path::new(".") {
                    inside.to_owned()
                } else {
                    scope.join(inside)
                };
            }
            files.push(file);
        }
    }
    Ok(files)
}

/// Each editor schema's file name and JSON text.
pub fn rendered_schemas() -> Result<Vec<(String, String)>, CliError> {
    CatalogKind::ALL
        .into_iter()
        .map(|kind| {
            let schema =
                lint::openapi::json_schema(kind).map_err(|source| CliError::Schema { source })?;
            let mut text = serde_json::to_string_pretty(schema).map_err(|e| CliError::Schema {
                source: lint::SchemaError {
                    kind: kind.name(),
                    reason: e.to_string(),
                },
            })?;
            text.push('\n');
            Ok((kind.schema_file().to_owned(), text))
        })
        .collect()
}

fn write_schemas(output_dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(output_dir).map_err(|source| CliError::Write {
        path: output_dir.to_owned(),
        source,
    })?;
    for (file, text) in rendered_schemas()? {
        let path = output_dir.join(file);
        std::fs::write(&path, text).map_err(|source| CliError::Write { path, source })?;
    }
    Ok(())
}

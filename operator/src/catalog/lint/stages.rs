//! The per-file stages: YAML, identity (kind, file name, editor schema), the OpenAPI schema,
//! CEL rules and the kind's own checks. Files are independent here, so large catalogs are
//! spread over the machine's cores.

use serde_json::Value;

use super::cel::CelChecker;
use super::file::{FileRef, file_error};
use super::history::Base;
use super::{CatalogKind, Diagnostic, Parsed, Rule, identity, listing, path, schema, wizard};
use crate::catalog::SourceFile;
use crate::catalog::document;

/// Below this many files one thread is quicker than starting more.
const FILES_PER_THREAD: usize = 64;

/// Runs the per-file stages, on several threads for large catalogs (files are independent).
/// Results keep the files' order. A worker that cannot start leaves its files to this thread.
pub(super) fn check_files(
    files: &[SourceFile],
    base: Option<&Base>,
) -> Vec<(Parsed, Vec<Diagnostic>)> {
    let sequential = |chunk: &[SourceFile]| {
        let checker = CelChecker::new();
        chunk
            .iter()
            .map(|file| check_file(file, &checker, base))
            .collect::<Vec<_>>()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let threads = threads.min(files.len() / FILES_PER_THREAD).max(1);
    if threads == 1 {
        return sequential(files);
    }
    let chunk_size = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk_size)
            .map(|chunk| {
                (
                    chunk,
                    std::thread::Builder::new().spawn_scoped(scope, move || sequential(chunk)),
                )
            })
            .collect();
        let mut results = Vec::with_capacity(files.len());
        for (chunk, worker) in workers {
            match worker
                .map_err(|_| ())
                .and_then(|handle| handle.join().map_err(|_| ()))
            {
                Ok(done) => results.extend(done),
                Err(()) => results.extend(sequential(chunk)),
            }
        }
        results
    })
}

/// The per-file stages: YAML, identity, schema, CEL, kind-specific checks.
fn check_file(
    file: &SourceFile,
    checker: &CelChecker,
    base: Option<&Base>,
) -> (Parsed, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let document = match document::parse(&file.contents) {
        Ok(document) => document,
        Err(errors) => {
            for error in errors {
                let field = path::dotted_guess(&error.pointer);
                let hint = error.kind.hint();
                diagnostics.push(file_error(
                    &file.path,
                    error.position,
                    field,
                    Rule::Yaml,
                    error.to_string(),
                    hint,
                ));
            }
            let entry = Parsed {
                path: file.path.clone(),
                document: None,
                kind: None,
                linted: true,
            };
            return (entry, diagnostics);
        }
    };
    let view = FileRef {
        path: &file.path,
        document: &document,
    };
    for ambiguous in &document.ambiguous {
        let message = format!(
            "{:?} is a string here, but kubectl (YAML 1.1) reads it as a boolean",
            ambiguous.text
        );
        let hint = format!(
            "quote it (\"{}\") if you mean the text, or write true/false",
            ambiguous.text
        );
        let field = path::dotted(&ambiguous.pointer, &document.value);
        let found = file_error(
            &file.path,
            ambiguous.position,
            field,
            Rule::YamlAmbiguous,
            message,
            hint,
        );
        diagnostics.push(found.warning());
    }
    let (kind, found) = identity::identify(&view);
    diagnostics.extend(found);
    if let Some(kind) = kind {
        diagnostics.extend(identity::file_name(kind, &view));
        diagnostics.extend(identity::modeline(kind, &view, &file.contents));
        let schema = schema::check(kind, &view);
        let schema_valid = schema.is_empty();
        diagnostics.extend(schema);
        let old = view
            .value()
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .and_then(|name| base?.object(kind, name));
        diagnostics.extend(checker.check(kind, &view, old, schema_valid));
        match kind {
            CatalogKind::Listing => diagnostics.extend(listing::check(&view)),
            CatalogKind::WizardConfig => diagnostics.extend(wizard::check(&view)),
            // Promotions are checked against the listings they target (`promotion.rs`).
            CatalogKind::Promotion => {}
            // Bundles too, against their members' listings (`bundle.rs`).
            CatalogKind::Bundle => {}
        }
    }
    let entry = Parsed {
        path: file.path.clone(),
        document: Some(document),
        kind,
        linted: true,
    };
    (entry, diagnostics)
}

/// A context file needs only its kind and name.
pub(super) fn context_file(file: &SourceFile) -> Parsed {
    let document = document::parse(&file.contents).ok();
    let kind = document
        .as_ref()
        .and_then(|d| d.value.get("kind"))
        .and_then(Value::as_str)
        .and_then(CatalogKind::from_name);
    Parsed {
        path: file.path.clone(),
        document,
        kind,
        linted: false,
    }
}

//! What a file holds: the kind (only Listing and WizardConfig belong in a catalog) and whether
//! the file is named and placed after the object in it.
//!
//! A file name that differs from metadata.name is an error, not a warning: the catalog's layout
//! is `listings/<name>.yaml` and `wizards/<name>.yaml`, so that reviewers and tools find an
//! object by its name, and so that one name per file in a folder makes duplicate names
//! impossible by construction. A mismatch is cheap to fix and costly to leave.

use serde_json::Value;

use super::diagnostic::{Diagnostic, Rule};
use super::file::{At, FileRef, closest, file_error, preview};
use super::openapi::{API_VERSION, CatalogKind};
use crate::catalog::document::Position;

/// The file's catalog kind, if it has one, and what is wrong with its apiVersion and kind.
pub fn identify(file: &FileRef<'_>) -> (Option<CatalogKind>, Vec<Diagnostic>) {
    let allowed = "a catalog holds only Listing and WizardConfig objects of apiVersion marketplace.dev/v1alpha1";
    let kind = match file.value().get("kind") {
        Some(Value::String(kind)) => kind,
        Some(other) => {
            let message = format!("kind must be a string, found {}", preview(other));
            return (
                None,
                vec![file.error("/kind", At::Auto, Rule::Kind, message, allowed.into())],
            );
        }
        None => {
            let message = "missing kind".to_owned();
            let hint = format!("add `kind: Listing` or `kind: WizardConfig`; {allowed}");
            return (
                None,
                vec![file.error_about("", At::Auto, "/kind", Rule::Kind, message, hint)],
            );
        }
    };
    let Some(catalog_kind) = CatalogKind::from_name(kind) else {
        let names = CatalogKind::ALL.map(CatalogKind::name);
        let hint = match closest(kind, names) {
            Some(guess) => format!("did you mean {guess:?}? {allowed}"),
            None => {
                format!("{allowed}; apply other kinds with kubectl or the operator's manifests")
            }
        };
        let message = format!("kind {kind:?} does not belong in a catalog");
        return (
            None,
            vec![file.error("/kind", At::Auto, Rule::Kind, message, hint)],
        );
    };
    let mut diagnostics = Vec::new();
    match file.value().get("apiVersion") {
        Some(Value::String(version)) if version == API_VERSION => {}
        found => {
            let message = match found {
                Some(version) => format!("apiVersion {} is not {API_VERSION}", preview(version)),
                None => "missing apiVersion".to_owned(),
            };
            let hint = format!("write `apiVersion: {API_VERSION}`");
            diagnostics.push(file.error_about(
                if found.is_some() { "/apiVersion" } else { "" },
                At::Auto,
                "/apiVersion",
                Rule::Kind,
                message,
                hint,
            ));
        }
    }
    (Some(catalog_kind), diagnostics)
}

/// The file must be `<metadata.name>.yaml` and, inside a `listings/` or `wizards/` folder, hold
/// that folder's kind.
pub fn file_name(kind: CatalogKind, file: &FileRef<'_>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    // An invalid name is the schema's to report; renaming the file after it would not help.
    let name = file
        .value()
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|name| is_dns_label(name));
    let stem = file.path.file_stem().and_then(|s| s.to_str());
    if let (Some(name), Some(stem)) = (name, stem)
        && name != stem
    {
        let extension = file
            .path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("yaml");
        let message =
            format!("metadata.name {name:?} does not match the file name {stem}.{extension}");
        let hint =
            format!("rename the file to {name}.{extension}, or set metadata.name to {stem:?}");
        diagnostics.push(file.error("/metadata/name", At::Auto, Rule::FileName, message, hint));
    }
    let folder = file
        .path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|f| f.to_str());
    let misplaced = CatalogKind::ALL
        .into_iter()
        .find(|other| *other != kind && folder == Some(other.folder()));
    if let Some(other) = misplaced {
        let message = format!(
            "a {} in the {}/ folder, which holds {}s",
            kind.name(),
            other.folder(),
            other.name()
        );
        let hint = format!("move the file to the {}/ folder", kind.folder());
        diagnostics.push(file.error("/kind", At::Auto, Rule::FileName, message, hint));
    }
    diagnostics
}

/// RFC 1123 label: what `metadata.name` of a catalog object must be.
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Files in a `listings/` or `wizards/` folder should start with the yaml-language-server
/// modeline pointing at their kind's schema in `../schemas/`, so editors check as authors type.
/// A warning: the catalog works without it.
pub fn modeline(kind: CatalogKind, file: &FileRef<'_>, contents: &[u8]) -> Option<Diagnostic> {
    let folder = file
        .path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|f| f.to_str());
    if folder != Some(kind.folder()) {
        return None;
    }
    let expected = format!("../schemas/{}", kind.schema_file());
    let line = format!("# yaml-language-server: $schema={expected}");
    let text = String::from_utf8_lossy(contents);
    let leading = text
        .lines()
        .enumerate()
        .take_while(|(_, l)| l.trim().is_empty() || l.starts_with('#'));
    let found = leading
        .filter_map(|(i, l)| Some((i, l.split_once("yaml-language-server:")?.1.trim())))
        .find_map(|(i, rest)| Some((i, rest.strip_prefix("$schema=")?.trim().to_owned())));
    let (position, message) = match found {
        Some((_, schema)) if schema.ends_with(kind.schema_file()) => return None,
        Some((i, schema)) => (
            Position {
                line: i + 1,
                column: 1,
            },
            format!(
                "the editor schema {schema} is not the {} schema",
                kind.name()
            ),
        ),
        None => (
            Position::START,
            "the file does not name its editor schema".to_owned(),
        ),
    };
    let hint = format!("start the file with `{line}`");
    Some(
        file_error(
            file.path,
            position,
            String::new(),
            Rule::SchemaModeline,
            message,
            hint,
        )
        .warning(),
    )
}

//! Checks against a base revision (the pull request's target branch, or the revision the
//! operator runs now): a Published listing has subscribers, so it must be Archived (no new
//! subscriptions, existing ones keep running) and that merged before its file may go; and it
//! cannot return to Draft or ComingSoon. Base objects are also `oldSelf` for CEL transition rules.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use super::Parsed;
use super::diagnostic::{Diagnostic, Rule};
use super::file::{At, FileRef};
use super::openapi::CatalogKind;
use crate::catalog::SourceFile;
use crate::catalog::document::{self, Document};

/// The catalog at the base revision: every object that parses, by kind and name. Base files
/// with errors are skipped: they were the target branch's problem, not this change's.
pub struct Base {
    objects: HashMap<(CatalogKind, String), (PathBuf, Document)>,
}

impl Base {
    pub fn parse(files: &[SourceFile]) -> Self {
        let mut objects = HashMap::new();
        for file in files {
            let Ok(document) = document::parse(&file.contents) else {
                continue;
            };
            let kind = document
                .value
                .get("kind")
                .and_then(Value::as_str)
                .and_then(CatalogKind::from_name);
            let name = document
                .value
                .pointer("/metadata/name")
                .and_then(Value::as_str);
            if let (Some(kind), Some(name)) = (kind, name) {
                objects
                    .entry((kind, name.to_owned()))
                    .or_insert((file.path.clone(), document));
            }
        }
        Base { objects }
    }

    /// The base version of an object, for CEL's `oldSelf`.
    pub fn object(&self, kind: CatalogKind, name: &str) -> Option<&Value> {
        self.objects
            .get(&(kind, name.to_owned()))
            .map(|(_, document)| &document.value)
    }

    pub fn check(&self, parsed: &[Parsed]) -> Vec<Diagnostic> {
        let now: HashMap<&str, &Parsed> = parsed
            .iter()
            .filter(|e| e.kind == Some(CatalogKind::Listing))
            .filter_map(|e| Some((e.name()?, e)))
            .collect();
        let mut diagnostics = Vec::new();
        let mut published: Vec<_> = self
            .objects
            .iter()
            .filter(|((kind, _), (_, doc))| {
                *kind == CatalogKind::Listing && lifecycle(&doc.value) == Some("Published")
            })
            .collect();
        published.sort_by(|a, b| a.0.cmp(b.0));
        for ((_, name), (path, document)) in published {
            match now.get(name.as_str()) {
                None => {
                    let file = FileRef { path, document };
                    let message = format!(
                        "Listing {name:?} was Published at the base revision and is deleted"
                    );
                    let hint = "archive it first: set spec.lifecycle: Archived and merge that before deleting the file".to_owned();
                    diagnostics.push(file.error(
                        "/spec/lifecycle",
                        At::Auto,
                        Rule::PublishedDeleted,
                        message,
                        hint,
                    ));
                }
                Some(entry) if entry.linted => {
                    let Some(file) = entry.file() else { continue };
                    let Some(state @ ("Draft" | "ComingSoon")) = lifecycle(file.value()) else {
                        continue;
                    };
                    let message = format!(
                        "Listing {name:?} was Published at the base revision; it cannot go back to {state}"
                    );
                    let hint =
                        "keep it Published, or set Archived to stop new subscriptions".to_owned();
                    diagnostics.push(file.error(
                        "/spec/lifecycle",
                        At::Auto,
                        Rule::LifecycleRegression,
                        message,
                        hint,
                    ));
                }
                Some(_) => {}
            }
        }
        diagnostics
    }
}

fn lifecycle(value: &Value) -> Option<&str> {
    value.pointer("/spec/lifecycle").and_then(Value::as_str)
}

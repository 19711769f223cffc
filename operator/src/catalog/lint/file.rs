//! A parsed file as the checks see it, and the one way they build diagnostics from it, so every
//! diagnostic gets its file, line, column and field path the same way.

use std::path::Path;

use serde_json::Value;

use super::diagnostic::{Diagnostic, Rule, Severity};
use super::path::dotted;
use crate::catalog::document::{Document, Position};

/// Which position of a node a diagnostic points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The key, e.g. for an unknown field: `colour:` rather than its value.
    Key,
    /// Collections at their key (`plans:`), scalars at their value (`29.00`).
    Auto,
}

/// One file's parsed document.
#[derive(Clone, Copy, Debug)]
pub struct FileRef<'a> {
    pub path: &'a Path,
    pub document: &'a Document,
}

impl<'a> FileRef<'a> {
    pub fn value(&self) -> &'a Value {
        &self.document.value
    }

    /// The position of `pointer` as `at` asks.
    pub fn position(&self, pointer: &str, at: At) -> Position {
        let node = self.document.locate(pointer);
        let collection = matches!(
            self.value().pointer(pointer),
            None | Some(Value::Object(_)) | Some(Value::Array(_))
        );
        match (at, node.key) {
            (At::Key, Some(key)) => key,
            (At::Auto, Some(key)) if collection => key,
            _ => node.value,
        }
    }

    /// An error about the node at `pointer`.
    pub fn error(
        &self,
        pointer: &str,
        at: At,
        rule: Rule,
        message: String,
        hint: String,
    ) -> Diagnostic {
        self.error_about(pointer, at, pointer, rule, message, hint)
    }

    /// An error shown at `located` but about `field` (e.g. a missing field, shown at its parent).
    pub fn error_about(
        &self,
        located: &str,
        at: At,
        field: &str,
        rule: Rule,
        message: String,
        hint: String,
    ) -> Diagnostic {
        let position = self.position(located, at);
        Diagnostic {
            file: self.path.to_owned(),
            line: position.line,
            column: position.column,
            field_path: dotted(field, self.value()),
            rule,
            severity: Severity::Error,
            message,
            hint,
        }
    }
}

/// A diagnostic about a whole file (no document to point into).
pub fn file_error(
    path: &Path,
    position: Position,
    field_path: String,
    rule: Rule,
    message: String,
    hint: String,
) -> Diagnostic {
    Diagnostic {
        file: path.to_owned(),
        line: position.line,
        column: position.column,
        field_path,
        rule,
        severity: Severity::Error,
        message,
        hint,
    }
}

impl Diagnostic {
    /// The same diagnostic as a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
}

/// A short, quoted rendering of a value for messages.
pub fn preview(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 60 {
        text
    } else {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    }
}

/// The candidate closest to `word` (case-insensitive edit distance), if close enough to be a
/// likely typo: used for "did you mean" hints.
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let word = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(2);
    // Ties go to the longest common prefix: "USX" is more likely "USD" than "UGX".
    candidates
        .into_iter()
        .map(|candidate| {
            let lower = candidate.to_lowercase();
            let prefix = word
                .chars()
                .zip(lower.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (
                edit_distance(&word, &lower),
                std::cmp::Reverse(prefix),
                candidate,
            )
        })
        .filter(|(distance, _, _)| *distance <= limit)
        .min_by_key(|(distance, prefix, _)| (*distance, *prefix))
        .map(|(_, _, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_only() {
        let fields = ["displayName", "tagline", "lifecycle"];
        assert_eq!(closest("displayname", fields), Some("displayName"));
        assert_eq!(closest("tagLine", fields), Some("tagline"));
        assert_eq!(closest("lifecyle", fields), Some("lifecycle"));
        assert_eq!(closest("colour", fields), None);
        assert_eq!(closest("USX", ["UGX", "USD"]), Some("USD"));
    }
}

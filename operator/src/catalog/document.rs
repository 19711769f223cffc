//! One catalog file parsed into one YAML document: its value as JSON (what the apiserver sees
//! after `kubectl apply` converts YAML) plus the line and column of every node, so a diagnostic
//! about `spec.plans[1].pricing.unit` can point at the exact spot in the file.
//!
//! The parser works on `saphyr-parser` events rather than a ready-made tree because the checks a
//! catalog needs are exactly what tree loaders hide: duplicate keys (silently overwritten),
//! aliases (expanded without bound: the "billion laughs" bomb), non-string keys and several
//! documents per file. Catalog files come from pull requests, i.e. from anyone, so every limit
//! here (size, depth, node count) is a bound on what a hostile file can cost, and every failure
//! is an error value: nothing in this module panics on any input.

mod builder;

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Parser, Span};
use serde_json::Value;

use self::builder::Builder;

/// Largest catalog file accepted. The biggest real listing is a few KiB; a megabyte is already
/// far beyond any hand-written add-on and keeps a hostile file from costing much time or memory.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of mappings and sequences. Listings nest about 6 levels; connection schemas a
/// few more. The bound keeps recursive consumers (validators, `Drop`) far from stack limits.
pub const MAX_DEPTH: usize = 64;
/// Most nodes a document may have after expanding aliases, which bounds alias bombs.
pub const MAX_NODES: usize = 100_000;

/// A place in a file: 1-based line and 1-based column (in characters), as editors count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The start of a file, for problems that concern the file as a whole.
    pub const START: Position = Position { line: 1, column: 1 };

    fn of(span: Span) -> Self {
        Position {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// Where a node is written: its key (for mapping values) and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodePosition {
    pub key: Option<Position>,
    pub value: Position,
}

/// A parsed catalog document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The document as JSON; always an object (other roots are rejected).
    pub value: Value,
    /// Position of every node by JSON pointer (`/spec/plans/1/name`). Nodes inside an expanded
    /// alias have no entry of their own; [`Document::locate`] falls back to the nearest ancestor.
    positions: HashMap<String, NodePosition>,
    /// Plain scalars that YAML 1.1 (and so `kubectl`) reads as booleans, e.g. `on` or `no`.
    pub ambiguous: Vec<Ambiguous>,
}

/// A plain scalar that this parser (YAML 1.2) reads as a string but `kubectl` (YAML 1.1) as a
/// boolean, so the two would disagree about the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ambiguous {
    pub pointer: String,
    pub position: Position,
    pub text: String,
}

impl Document {
    /// The position of the node at `pointer`, or of its nearest ancestor that has one.
    pub fn locate(&self, pointer: &str) -> NodePosition {
        let mut current = pointer;
        loop {
            if let Some(found) = self.positions.get(current) {
                return *found;
            }
            match current.rfind('/') {
                Some(cut) => current = &current[..cut],
                None => {
                    return NodePosition {
                        key: None,
                        value: Position::START,
                    };
                }
            }
        }
    }
}

/// Why a file is not a usable catalog document, with where and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct DocumentError {
    pub position: Position,
    /// JSON pointer of the node concerned; empty for the whole file.
    pub pointer: String,
    pub kind: DocumentErrorKind,
}

/// What is wrong with a file's YAML.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentErrorKind {
    #[error("file is larger than the {limit}-byte limit for catalog files")]
    TooLarge { limit: usize },
    #[error("file contains a NUL byte: it is binary, not YAML")]
    Binary,
    #[error("file is not valid UTF-8")]
    NotUtf8,
    #[error("invalid YAML: {message}")]
    Syntax { message: String },
    #[error("file has no YAML document")]
    Empty,
    #[error("a second YAML document starts here; a catalog file holds exactly one object")]
    MultipleDocuments,
    #[error("the document is {found}, not a mapping (a Kubernetes object)")]
    NotAMapping { found: &'static str },
    #[error("duplicate key {key:?} (first defined on line {first_line})")]
    DuplicateKey { key: String, first_line: usize },
    #[error("mapping key is {found}; keys must be strings")]
    NonStringKey { found: &'static str },
    #[error("nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("more than {limit} nodes once aliases are expanded")]
    TooManyNodes { limit: usize },
    #[error("YAML tag {tag} is not supported in catalog files")]
    UnsupportedTag { tag: String },
    #[error("{text:?} is not a valid {tag} value")]
    BadTaggedValue { tag: String, text: String },
    #[error("{text:?} is not a finite number, which JSON (and so Kubernetes) cannot hold")]
    NonFinite { text: String },
}

impl DocumentErrorKind {
    /// How to fix it, in one sentence.
    pub fn hint(&self) -> String {
        match self {
            Self::TooLarge { .. } => "split the file or remove the bulk; catalog files describe one add-on and are a few KiB".into(),
            Self::Binary | Self::NotUtf8 => "save the file as UTF-8 text, or remove it from the catalog folder".into(),
            Self::Syntax { .. } => "fix the YAML syntax at this position (check indentation, quotes and colons)".into(),
            Self::Empty => "add the object (apiVersion, kind, metadata, spec) or delete the file".into(),
            Self::MultipleDocuments => "move each object after `---` into its own file named after it".into(),
            Self::NotAMapping { .. } => "write the object as a mapping: apiVersion, kind, metadata and spec".into(),
            Self::DuplicateKey { .. } => "keep one of the two keys: YAML tools disagree on which one wins".into(),
            Self::NonStringKey { .. } => "quote the key, e.g. \"404\": or \"true\":".into(),
            Self::TooDeep { .. } => "flatten the structure; no catalog field nests this deep".into(),
            Self::TooManyNodes { .. } => "write the values out instead of repeating large anchors through aliases".into(),
            Self::UnsupportedTag { .. } => "remove the tag; use quotes for strings".into(),
            Self::BadTaggedValue { .. } | Self::NonFinite { .. } => "write a plain number, or quote the value to make it a string".into(),
        }
    }
}

/// Parses a catalog file. A file with any YAML error yields only errors: every duplicate key is
/// reported (parsing continues past them), any other problem stops at its first occurrence.
pub fn parse(contents: &[u8]) -> Result<Document, Vec<DocumentError>> {
    let text = decode(contents).map_err(|error| vec![error])?;
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let step = match next {
            Ok((event, span)) => builder.event(event, span),
            Err(error) => {
                let marker = error.marker();
                let position = Position {
                    line: marker.line(),
                    column: marker.col() + 1,
                };
                let message = error.info().to_owned();
                Err(fatal(position, "", DocumentErrorKind::Syntax { message }))
            }
        };
        if let Err(error) = step {
            return Err(builder.fail(error));
        }
    }
    builder.finish()
}

fn fatal(position: Position, pointer: &str, kind: DocumentErrorKind) -> DocumentError {
    DocumentError {
        position,
        pointer: pointer.to_owned(),
        kind,
    }
}

/// Checks size and encoding before the YAML parser sees the bytes.
fn decode(contents: &[u8]) -> Result<&str, DocumentError> {
    if contents.len() > MAX_FILE_BYTES {
        let kind = DocumentErrorKind::TooLarge {
            limit: MAX_FILE_BYTES,
        };
        return Err(fatal(Position::START, "", kind));
    }
    if let Some(at) = contents.iter().position(|&b| b == 0) {
        return Err(fatal(
            position_at(contents, at),
            "",
            DocumentErrorKind::Binary,
        ));
    }
    let text = std::str::from_utf8(contents).map_err(|e| {
        fatal(
            position_at(contents, e.valid_up_to()),
            "",
            DocumentErrorKind::NotUtf8,
        )
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Line and column of byte `at`, counting the (valid) characters before it on its line.
fn position_at(contents: &[u8], at: usize) -> Position {
    let before = &contents[..at.min(contents.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Position { line, column }
}

/// JSON pointer escaping (RFC 6901) of one key.
pub fn escape_pointer_segment(key: &str) -> Cow<'_, str> {
    if key.contains(['~', '/']) {
        Cow::Owned(key.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(key)
    }
}

/// "a string", "a number", ... for messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests;

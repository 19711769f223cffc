//! The event-to-JSON builder behind [`parse`](super::parse): it turns `saphyr-parser` events
//! into a JSON value and a position index, with an explicit stack (no recursion, so nesting depth
//! costs heap, bounded by `MAX_DEPTH`), and counts nodes as aliases expand (`MAX_NODES`).

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr::{Scalar, ScalarStyle, Tag};
use saphyr_parser::{Event, Span};
use serde_json::{Map, Number, Value};

use super::{
    Ambiguous, Document, DocumentError, DocumentErrorKind, MAX_DEPTH, MAX_NODES, NodePosition,
    Position, escape_pointer_segment, fatal, json_kind,
};

/// A collection being built.
#[derive(Debug)]
struct Frame {
    pointer: String,
    anchor: usize,
    /// Node count when the collection started, to size it for the anchor table.
    nodes_before: usize,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Sequence(Vec<Value>),
    Mapping {
        map: Map<String, Value>,
        /// The key waiting for its value.
        key: Pending,
    },
}

/// The state of a mapping between a key and its value.
#[derive(Debug)]
enum Pending {
    /// The next scalar is a key.
    None,
    /// The next node is this key's value.
    Key(String),
    /// The next node is the value of a duplicate key: parsed (to find further problems), dropped.
    Duplicate(String),
}

#[derive(Debug, Default)]
pub(super) struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes by anchor id, with their node count (what expanding an alias costs).
    anchors: HashMap<usize, (Value, usize)>,
    positions: HashMap<String, NodePosition>,
    ambiguous: Vec<Ambiguous>,
    nodes: usize,
    documents: usize,
    root: Option<(Value, Position)>,
    errors: Vec<DocumentError>,
}

/// Where the next node goes: its pointer, or `None` when it is a mapping key.
enum Slot {
    Value(String),
    Key,
}

impl Builder {
    pub(super) fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), DocumentError> {
        let position = Position::of(span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(fatal(position, "", DocumentErrorKind::MultipleDocuments));
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.scalar(text, style, anchor, tag, position)
            }
            Event::Alias(id) => self.alias(id, position),
            Event::SequenceStart(anchor, tag) => {
                self.open(anchor, tag, position, Body::Sequence(Vec::new()))
            }
            Event::MappingStart(anchor, tag) => {
                let body = Body::Mapping {
                    map: Map::new(),
                    key: Pending::None,
                };
                self.open(anchor, tag, position, body)
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(position),
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => Ok(()),
        }
    }

    fn slot(&self) -> Slot {
        match self.stack.last() {
            None => Slot::Value(String::new()),
            Some(Frame {
                pointer,
                body: Body::Sequence(items),
                ..
            }) => Slot::Value(format!("{pointer}/{}", items.len())),
            Some(Frame {
                pointer,
                body:
                    Body::Mapping {
                        key: Pending::Key(key) | Pending::Duplicate(key),
                        ..
                    },
                ..
            }) => Slot::Value(format!("{pointer}/{}", escape_pointer_segment(key))),
            Some(Frame {
                body: Body::Mapping {
                    key: Pending::None, ..
                },
                ..
            }) => Slot::Key,
        }
    }

    fn pointer(&self) -> &str {
        self.stack.last().map_or("", |frame| frame.pointer.as_str())
    }

    fn count(&mut self, nodes: usize, position: Position) -> Result<(), DocumentError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            let kind = DocumentErrorKind::TooManyNodes { limit: MAX_NODES };
            return Err(fatal(position, self.pointer(), kind));
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<Cow<'_, Tag>>,
        position: Position,
    ) -> Result<(), DocumentError> {
        self.count(1, position)?;
        let slot = self.slot();
        let pointer = match &slot {
            Slot::Value(pointer) => pointer.clone(),
            Slot::Key => format!("{}/{}", self.pointer(), escape_pointer_segment(&text)),
        };
        let value = resolve_scalar(&text, style, tag.as_deref())
            .map_err(|kind| fatal(position, &pointer, kind))?;
        if style == ScalarStyle::Plain && tag.is_none() && is_yaml11_bool(&text) {
            let text = text.to_string();
            self.ambiguous.push(Ambiguous {
                pointer: pointer.clone(),
                position,
                text,
            });
        }
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), 1));
        }
        match slot {
            Slot::Key => self.key(value, pointer, position),
            Slot::Value(pointer) => self.place(value, pointer, position),
        }
    }

    fn alias(&mut self, id: usize, position: Position) -> Result<(), DocumentError> {
        let Slot::Value(pointer) = self.slot() else {
            let kind = DocumentErrorKind::NonStringKey { found: "an alias" };
            return Err(fatal(position, self.pointer(), kind));
        };
        // The parser rejects unknown anchors, and an alias to an anchor still being built is a
        // recursive structure; both end up here as "nothing to expand".
        let Some(&(_, nodes)) = self.anchors.get(&id) else {
            let message = "alias refers to an anchor that is not complete here".to_owned();
            return Err(fatal(
                position,
                &pointer,
                DocumentErrorKind::Syntax { message },
            ));
        };
        // Count before cloning, so an alias bomb fails before it allocates.
        self.count(nodes, position)?;
        let value = self
            .anchors
            .get(&id)
            .map(|(value, _)| value.clone())
            .unwrap_or_default();
        self.place(value, pointer, position)
    }

    fn open(
        &mut self,
        anchor: usize,
        tag: Option<Cow<'_, Tag>>,
        position: Position,
        body: Body,
    ) -> Result<(), DocumentError> {
        self.count(1, position)?;
        let Slot::Value(pointer) = self.slot() else {
            let kind = DocumentErrorKind::NonStringKey {
                found: "a collection",
            };
            return Err(fatal(position, self.pointer(), kind));
        };
        if let Some(tag) = tag.as_deref() {
            let expected = if matches!(body, Body::Sequence(_)) {
                "seq"
            } else {
                "map"
            };
            if !(tag.is_yaml_core_schema() && tag.suffix == expected) {
                let kind = DocumentErrorKind::UnsupportedTag { tag: tag_name(tag) };
                return Err(fatal(position, &pointer, kind));
            }
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(fatal(
                position,
                &pointer,
                DocumentErrorKind::TooDeep { limit: MAX_DEPTH },
            ));
        }
        self.record(&pointer, position);
        let nodes_before = self.nodes - 1;
        self.stack.push(Frame {
            pointer,
            anchor,
            nodes_before,
            body,
        });
        Ok(())
    }

    fn close(&mut self, position: Position) -> Result<(), DocumentError> {
        let Some(frame) = self.stack.pop() else {
            let message = "unbalanced end of collection".to_owned();
            return Err(fatal(position, "", DocumentErrorKind::Syntax { message }));
        };
        let value = match frame.body {
            Body::Sequence(items) => Value::Array(items),
            Body::Mapping { map, .. } => Value::Object(map),
        };
        if frame.anchor != 0 {
            let nodes = self.nodes - frame.nodes_before;
            self.anchors.insert(frame.anchor, (value.clone(), nodes));
        }
        let start = self
            .positions
            .get(&frame.pointer)
            .map_or(position, |p| p.value);
        self.insert(value, start);
        Ok(())
    }

    /// Records a finished node's position, then inserts it into its parent.
    fn place(
        &mut self,
        value: Value,
        pointer: String,
        position: Position,
    ) -> Result<(), DocumentError> {
        self.record(&pointer, position);
        self.insert(value, position);
        Ok(())
    }

    fn record(&mut self, pointer: &str, position: Position) {
        let key = self.positions.get(pointer).and_then(|p| p.key);
        self.positions.insert(
            pointer.to_owned(),
            NodePosition {
                key,
                value: position,
            },
        );
    }

    fn insert(&mut self, value: Value, position: Position) {
        match self.stack.last_mut() {
            None => self.root = Some((value, position)),
            Some(Frame {
                body: Body::Sequence(items),
                ..
            }) => items.push(value),
            Some(Frame {
                body: Body::Mapping { map, key, .. },
                ..
            }) => {
                // A duplicate key has been reported already; its value is dropped.
                if let Pending::Key(key) = std::mem::replace(key, Pending::None) {
                    map.insert(key, value);
                }
            }
        }
    }

    fn key(
        &mut self,
        key: Value,
        pointer: String,
        position: Position,
    ) -> Result<(), DocumentError> {
        let key = match key {
            Value::String(key) => key,
            other => {
                let kind = DocumentErrorKind::NonStringKey {
                    found: json_kind(&other),
                };
                return Err(fatal(position, &pointer, kind));
            }
        };
        let Some(Frame {
            body: Body::Mapping { map, key: pending },
            ..
        }) = self.stack.last_mut()
        else {
            return Ok(());
        };
        // Earlier keys of this mapping are all in `map` already: a value is inserted before the
        // next key is read.
        if map.contains_key(&key) {
            let first = self
                .positions
                .get(&pointer)
                .and_then(|p| p.key)
                .unwrap_or(position);
            let kind = DocumentErrorKind::DuplicateKey {
                key: key.clone(),
                first_line: first.line,
            };
            *pending = Pending::Duplicate(key);
            self.errors.push(fatal(position, &pointer, kind));
            return Ok(());
        }
        *pending = Pending::Key(key);
        self.positions.insert(
            pointer,
            NodePosition {
                key: Some(position),
                value: position,
            },
        );
        Ok(())
    }

    /// Every error so far, plus the one that stops parsing.
    pub(super) fn fail(mut self, error: DocumentError) -> Vec<DocumentError> {
        self.errors.push(error);
        self.errors
    }

    pub(super) fn finish(self) -> Result<Document, Vec<DocumentError>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        match self.root {
            None | Some((Value::Null, _)) => {
                Err(vec![fatal(Position::START, "", DocumentErrorKind::Empty)])
            }
            Some((value @ Value::Object(_), _)) => Ok(Document {
                value,
                positions: self.positions,
                ambiguous: self.ambiguous,
            }),
            Some((other, position)) => {
                let kind = DocumentErrorKind::NotAMapping {
                    found: json_kind(&other),
                };
                Err(vec![fatal(position, "", kind)])
            }
        }
    }
}

/// Resolves a scalar as YAML 1.2's core schema does (the schema `serde-saphyr` uses too).
fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
) -> Result<Value, DocumentErrorKind> {
    let scalar = match tag {
        // `!` alone is the non-specific tag: "a string, whatever it looks like".
        Some(tag) if tag.handle == "!" && tag.suffix.is_empty() => Scalar::String(text.into()),
        Some(tag) if tag.is_yaml_core_schema() => {
            let bad = || DocumentErrorKind::BadTaggedValue {
                tag: tag_name(tag),
                text: text.to_owned(),
            };
            match tag.suffix.as_str() {
                "str" => Scalar::String(text.into()),
                "null" if matches!(text, "" | "~" | "null" | "Null" | "NULL") => Scalar::Null,
                "bool" | "int" | "float" | "null" => match Scalar::parse_from_cow(text.into()) {
                    s @ Scalar::Boolean(_) if tag.suffix == "bool" => s,
                    s @ Scalar::Integer(_) if tag.suffix == "int" => s,
                    Scalar::Integer(i) if tag.suffix == "float" => {
                        Scalar::FloatingPoint((i as f64).into())
                    }
                    s @ Scalar::FloatingPoint(_) if tag.suffix == "float" => s,
                    _ => return Err(bad()),
                },
                _ => return Err(DocumentErrorKind::UnsupportedTag { tag: tag_name(tag) }),
            }
        }
        Some(tag) => return Err(DocumentErrorKind::UnsupportedTag { tag: tag_name(tag) }),
        None if style != ScalarStyle::Plain => Scalar::String(text.into()),
        None if text.is_empty() => Scalar::Null,
        None => Scalar::parse_from_cow(text.into()),
    };
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(b),
        Scalar::Integer(i) => Value::Number(i.into()),
        Scalar::FloatingPoint(f) => match Number::from_f64(f.0) {
            Some(number) => Value::Number(number),
            None => {
                return Err(DocumentErrorKind::NonFinite {
                    text: text.to_owned(),
                });
            }
        },
        Scalar::String(s) => Value::String(s.into_owned()),
    })
}

/// A tag as written: `!!int` for the core schema, `!custom` for local tags.
fn tag_name(tag: &Tag) -> String {
    if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else {
        tag.to_string()
    }
}

/// Plain scalars that YAML 1.1 resolves to booleans but YAML 1.2 leaves as strings.
fn is_yaml11_bool(text: &str) -> bool {
    matches!(
        text,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

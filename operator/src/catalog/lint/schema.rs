//! Validation against the catalog JSON Schema (the CRD's OpenAPI schema, see `openapi`), with
//! each `jsonschema` error turned into a diagnostic that says what is wrong in the author's
//! terms and how to fix it, using the field's own description from the Rust doc comments.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::diagnostic::{Diagnostic, Rule};
use super::file::{At, FileRef, closest, preview};
use super::openapi::{CatalogKind, SchemaError, json_schema};
use super::path::child;
use crate::catalog::document::json_kind;

fn validator(kind: CatalogKind) -> Result<&'static Validator, SchemaError> {
    static VALIDATORS: OnceLock<Result<[Validator; 4], SchemaError>> = OnceLock::new();
    let built = VALIDATORS.get_or_init(|| {
        let build = |kind: CatalogKind| {
            let schema = json_schema(kind)?;
            jsonschema::draft7::new(schema).map_err(|e| SchemaError {
                kind: kind.name(),
                reason: e.to_string(),
            })
        };
        Ok([
            build(CatalogKind::Listing)?,
            build(CatalogKind::WizardConfig)?,
            build(CatalogKind::Promotion)?,
            build(CatalogKind::Bundle)?,
        ])
    });
    match built {
        Ok(validators) => Ok(&validators[kind as usize]),
        Err(error) => Err(error.clone()),
    }
}

/// Every schema violation in the file's document.
pub fn check(kind: CatalogKind, file: &FileRef<'_>) -> Vec<Diagnostic> {
    let (validator, schema) = match validator(kind).and_then(|v| Ok((v, json_schema(kind)?))) {
        Ok(found) => found,
        Err(error) => {
            let hint = "this is a bug in marketplace-operator's API types; report it".to_owned();
            return vec![file.error("", At::Auto, Rule::Schema, error.to_string(), hint)];
        }
    };
    validator
        .iter_errors(file.value())
        .flat_map(|error| diagnose(&error, schema, file))
        .collect()
}

fn diagnose(error: &ValidationError<'_>, schema: &Value, file: &FileRef<'_>) -> Vec<Diagnostic> {
    let pointer = error.instance_path().as_str();
    let keyword_path = error.schema_path().as_str();
    let node = keyword_path
        .rfind('/')
        .and_then(|cut| schema.pointer(&keyword_path[..cut]))
        .unwrap_or(&Value::Null);
    let description = node
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let instance = file.value().pointer(pointer).unwrap_or(&Value::Null);
    let shown = preview(instance);
    let plain = |message: String, hint: String| {
        vec![file.error(pointer, At::Auto, Rule::Schema, message, hint)]
    };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|key| {
                let field = child(pointer, key);
                let message = format!("unknown field {key:?}");
                let hint = unknown_field_hint(pointer, key, node);
                file.error(&field, At::Key, Rule::UnknownField, message, hint)
            })
            .collect(),
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let field = child(pointer, name);
            let about = node
                .pointer(&child("/properties", name))
                .and_then(|p| p.get("description"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let message = format!("missing required field {name:?}");
            let hint = with_description(format!("add `{name}:`"), about);
            vec![file.error_about(pointer, At::Auto, &field, Rule::Schema, message, hint)]
        }
        ValidationErrorKind::Type { kind } => {
            let expected = expected_types(kind);
            let message = format!("expected {expected}, found {} {shown}", json_kind(instance));
            let hint = match instance {
                Value::Null => with_description("give the field a value, or remove the key".into(), description),
                Value::Number(_) | Value::Bool(_) if expected.contains("string") => {
                    "quote the value so YAML reads it as a string, exactly as written (e.g. \"29.00\", \"1.10\")".into()
                }
                _ => with_description(format!("write {expected} here"), description),
            };
            plain(message, hint)
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<&str> = options
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let message = format!("{shown} is not one of: {}", allowed.join(", "));
            let guess = instance
                .as_str()
                .and_then(|text| closest(text, allowed.iter().copied()));
            let hint = match guess {
                Some(guess) => format!("did you mean {guess:?}?"),
                None => with_description("use one of the values listed".into(), description),
            };
            plain(message, hint)
        }
        ValidationErrorKind::Pattern { pattern } => plain(
            format!("{shown} does not have the required format (pattern {pattern})"),
            with_description("fix the value".into(), description),
        ),
        ValidationErrorKind::MaxLength { limit } | ValidationErrorKind::MinLength { limit } => {
            let length = instance.as_str().map_or(0, |s| s.chars().count());
            let bound = if matches!(error.kind(), ValidationErrorKind::MaxLength { .. }) {
                "at most"
            } else {
                "at least"
            };
            plain(
                format!("is {length} characters long; it must be {bound} {limit}"),
                with_description(format!("make it {bound} {limit} characters"), description),
            )
        }
        ValidationErrorKind::MaxItems { limit } | ValidationErrorKind::MinItems { limit } => {
            let count = instance.as_array().map_or(0, Vec::len);
            let bound = if matches!(error.kind(), ValidationErrorKind::MaxItems { .. }) {
                "at most"
            } else {
                "at least"
            };
            plain(
                format!("has {count} entries; it must have {bound} {limit}"),
                with_description(format!("give it {bound} {limit} entries"), description),
            )
        }
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::Minimum { limit } => {
            let (bound, word) = if matches!(error.kind(), ValidationErrorKind::Maximum { .. }) {
                ("at most", "above the maximum")
            } else {
                ("at least", "below the minimum")
            };
            plain(
                format!("{shown} is {word} {}", integral(limit)),
                with_description(
                    format!("use a value {bound} {}", integral(limit)),
                    description,
                ),
            )
        }
        _ => plain(
            error.to_string(),
            with_description("fix the value".into(), description),
        ),
    }
}

fn unknown_field_hint(parent: &str, key: &str, node: &Value) -> String {
    match (parent, key) {
        ("", "status") => {
            return "remove it: status is written by the operator, never by the catalog".into();
        }
        ("/metadata", "namespace") => {
            return "remove it: Listings and WizardConfigs are cluster-scoped".into();
        }
        (_, "<<") => return "YAML merge keys are not supported; write the fields out".into(),
        _ => {}
    }
    let known: Vec<&str> = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    match closest(key, known.iter().copied()) {
        Some(guess) => format!("did you mean {guess:?}?"),
        None if known.is_empty() => "remove it".into(),
        None => format!("remove it; the fields here are: {}", known.join(", ")),
    }
}

fn expected_types(kind: &TypeKind) -> String {
    let names: Vec<String> = match kind {
        TypeKind::Single(t) => vec![t.to_string()],
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| t.to_string())
            .filter(|t| t != "null")
            .collect(),
    };
    let article = |t: &String| match t.as_str() {
        "object" => "a mapping".to_owned(),
        "array" => "a list".to_owned(),
        "integer" => "an integer".to_owned(),
        other => format!("a {other}"),
    };
    names.iter().map(article).collect::<Vec<_>>().join(" or ")
}

/// `90.0` (how the CRDs write bounds) as `90`.
fn integral(limit: &Value) -> String {
    match limit.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => limit.to_string(),
    }
}

fn with_description(action: String, description: &str) -> String {
    let description = description
        .split("\n\nRule:")
        .next()
        .unwrap_or_default()
        .trim();
    if description.is_empty() {
        action
    } else {
        format!("{action}; {description}")
    }
}

//! The CRDs' OpenAPI v3 schemas (from `api::crds()`, i.e. from the Rust types) turned into JSON
//! Schema draft-07: the one schema both the linter validates with and `marketplace catalog
//! schema` writes for editors, so what an editor underlines and what CI rejects cannot differ.
//!
//! Draft-07 because yaml-language-server (VS Code, Neovim, JetBrains) supports it fully; the
//! keywords used here mean the same in 2020-12.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::api;

/// The only apiVersion of catalog objects.
pub const API_VERSION: &str = "marketplace.dev/v1alpha1";

pub use crate::catalog::CatalogKind;

/// The schemas could not be derived from the CRDs: a bug in the API types, never in a catalog.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot derive the catalog schema for {kind} from its CRD: {reason}")]
pub struct SchemaError {
    pub kind: &'static str,
    pub reason: String,
}

struct Schemas {
    /// The CRD's openAPIV3Schema, with its CEL rules (what `kube-cel` evaluates).
    crd: [Value; 4],
    /// The JSON Schema for catalog files.
    json: [Value; 4],
}

fn schemas() -> Result<&'static Schemas, SchemaError> {
    static SCHEMAS: OnceLock<Result<Schemas, SchemaError>> = OnceLock::new();
    SCHEMAS.get_or_init(build).as_ref().map_err(Clone::clone)
}

fn build() -> Result<Schemas, SchemaError> {
    let crds = api::crds();
    let crd = |kind: CatalogKind| -> Result<Value, SchemaError> {
        let error = |reason: String| SchemaError {
            kind: kind.name(),
            reason,
        };
        let crd = crds
            .iter()
            .find(|crd| crd.spec.names.kind == kind.name())
            .ok_or_else(|| error("no such CRD in api::crds()".into()))?;
        let version = crd
            .spec
            .versions
            .iter()
            .find(|v| format!("{}/{}", crd.spec.group, v.name) == API_VERSION)
            .ok_or_else(|| error(format!("the CRD does not serve {API_VERSION}")))?;
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .ok_or_else(|| error("the CRD has no openAPIV3Schema".into()))?;
        serde_json::to_value(schema).map_err(|e| error(e.to_string()))
    };
    let listing = crd(CatalogKind::Listing)?;
    let wizard = crd(CatalogKind::WizardConfig)?;
    let promotion = crd(CatalogKind::Promotion)?;
    let bundle = crd(CatalogKind::Bundle)?;
    let json = [
        catalog_schema(CatalogKind::Listing, &listing),
        catalog_schema(CatalogKind::WizardConfig, &wizard),
        catalog_schema(CatalogKind::Promotion, &promotion),
        catalog_schema(CatalogKind::Bundle, &bundle),
    ];
    Ok(Schemas {
        crd: [listing, wizard, promotion, bundle],
        json,
    })
}

/// The CRD's openAPIV3Schema of `kind`, as JSON.
pub fn crd_schema(kind: CatalogKind) -> Result<&'static Value, SchemaError> {
    Ok(&schemas()?.crd[kind.index()])
}

/// The JSON Schema of a catalog file holding a `kind`.
pub fn json_schema(kind: CatalogKind) -> Result<&'static Value, SchemaError> {
    Ok(&schemas()?.json[kind.index()])
}

/// The CRD schema plus what the apiserver adds itself (apiVersion, kind, metadata), minus what
/// a catalog file must not carry (status, written by the operator).
fn catalog_schema(kind: CatalogKind, crd: &Value) -> Value {
    let mut root = convert(crd);
    if let Some(properties) = root.get_mut("properties").and_then(Value::as_object_mut) {
        properties.remove("status");
        properties.insert(
            "apiVersion".into(),
            json!({"description": "API group and version of catalog objects.", "type": "string", "enum": [API_VERSION]}),
        );
        properties.insert(
            "kind".into(),
            json!({"description": "The object's kind.", "type": "string", "enum": [kind.name()]}),
        );
        properties.insert("metadata".into(), metadata_schema());
    }
    let mut out = Map::new();
    out.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    out.insert(
        "$comment".into(),
        json!("Generated from the Rust types by `marketplace catalog schema`. Do not edit."),
    );
    if let Value::Object(root) = root {
        out.extend(root);
    }
    out.insert(
        "title".into(),
        json!(format!("{} ({API_VERSION})", kind.name())),
    );
    out.insert(
        "required".into(),
        json!(["apiVersion", "kind", "metadata", "spec"]),
    );
    out.insert("additionalProperties".into(), json!(false));
    Value::Object(out)
}

fn metadata_schema() -> Value {
    json!({
        "description": "Object metadata. Catalog objects are cluster-scoped: no namespace.",
        "type": "object",
        "required": ["name"],
        "additionalProperties": false,
        "properties": {
            "name": {
                "description": "The object's name, a DNS label (lowercase letters, digits and dashes); the file is named after it.",
                "type": "string",
                "minLength": 1,
                "maxLength": 63,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            },
            "labels": {
                "description": "Labels, for selecting objects with kubectl.",
                "type": "object",
                "additionalProperties": {
                    "type": "string",
                    "maxLength": 63,
                    "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
                },
            },
            "annotations": {
                "description": "Annotations: free-form notes for tools.",
                "type": "object",
                "additionalProperties": {"type": "string"},
            },
        },
    })
}

/// One OpenAPI v3 (structural) schema node as JSON Schema. What differs:
/// - `nullable: true` becomes an explicit `null` type (and enum member);
/// - objects reject unknown fields unless `x-kubernetes-preserve-unknown-fields`, as
///   server-side apply with strict field validation does;
/// - `x-kubernetes-int-or-string` becomes `anyOf` integer/string, `x-kubernetes-list-type: set`
///   becomes `uniqueItems`;
/// - OpenAPI 3.0's boolean `exclusiveMinimum`/`exclusiveMaximum` become draft-07 numbers;
/// - `format: int32`/`int64` get the ranges the apiserver enforces;
/// - CEL rules are not JSON Schema (the linter evaluates them separately); their messages are
///   appended to the description so editors show them.
fn convert(node: &Value) -> Value {
    let Some(object) = node.as_object() else {
        return node.clone();
    };
    let flag = |key: &str| object.get(key).and_then(Value::as_bool) == Some(true);
    let mut out = Map::new();
    for (key, value) in object {
        let converted = match key.as_str() {
            "properties" => match value.as_object() {
                Some(properties) => Value::Object(
                    properties
                        .iter()
                        .map(|(name, schema)| (name.clone(), convert(schema)))
                        .collect(),
                ),
                None => value.clone(),
            },
            "items" | "additionalProperties" | "not" => convert(value),
            "allOf" | "anyOf" | "oneOf" => match value.as_array() {
                Some(branches) => Value::Array(branches.iter().map(convert).collect()),
                None => value.clone(),
            },
            "nullable" | "exclusiveMinimum" | "exclusiveMaximum" => continue,
            key if key.starts_with("x-kubernetes-") => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if flag(exclusive)
            && let Some(limit) = out.remove(bound)
        {
            out.insert(exclusive.into(), limit);
        }
    }
    let range = match object.get("format").and_then(Value::as_str) {
        Some("int32") => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
        Some("int64") => Some((i64::MIN, i64::MAX)),
        _ => None,
    };
    if let Some((min, max)) = range {
        out.entry("minimum").or_insert(json!(min));
        out.entry("maximum").or_insert(json!(max));
    }
    if flag("x-kubernetes-int-or-string") {
        out.remove("type");
        out.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    if object.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
        out.insert("uniqueItems".into(), json!(true));
    }
    let is_object = object.get("type").and_then(Value::as_str) == Some("object");
    if is_object
        && !flag("x-kubernetes-preserve-unknown-fields")
        && !out.contains_key("additionalProperties")
    {
        out.insert("additionalProperties".into(), json!(false));
    }
    if flag("nullable") {
        allow_null(&mut out);
    }
    if let Some(rules) = object
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        describe_rules(&mut out, rules);
    }
    Value::Object(out)
}

fn allow_null(schema: &mut Map<String, Value>) {
    if let Some(Value::String(kind)) = schema.get("type") {
        let kind = kind.clone();
        schema.insert("type".into(), json!([kind, "null"]));
    }
    if let Some(Value::Array(options)) = schema.get_mut("enum") {
        options.push(Value::Null);
    }
    if let Some(Value::Array(branches)) = schema.get_mut("anyOf") {
        branches.push(json!({"type": "null"}));
    }
}

fn describe_rules(schema: &mut Map<String, Value>, rules: &[Value]) {
    let messages: Vec<String> = rules
        .iter()
        .filter_map(|rule| rule.get("message").and_then(Value::as_str))
        .map(|message| format!("Rule: {message}."))
        .collect();
    if messages.is_empty() {
        return;
    }
    let description = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text = if description.is_empty() {
        messages.join("\n")
    } else {
        format!("{description}\n\n{}", messages.join("\n"))
    };
    schema.insert("description".into(), Value::String(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_unknown_fields_and_ranges_are_translated() {
        let converted = convert(&json!({
            "type": "object",
            "properties": {
                "unit": {"type": "string", "nullable": true},
                "mode": {"type": "string", "enum": ["A"], "nullable": true},
                "days": {"type": "integer", "format": "int32", "minimum": 0.0},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "more": {"type": "number", "minimum": 1.0, "exclusiveMinimum": true},
            },
            "x-kubernetes-validations": [{"rule": "true", "message": "always"}],
        }));
        assert_eq!(converted["additionalProperties"], json!(false));
        assert_eq!(
            converted["properties"]["unit"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(converted["properties"]["mode"]["enum"], json!(["A", null]));
        assert_eq!(converted["properties"]["days"]["maximum"], json!(i32::MAX));
        assert_eq!(converted["properties"]["days"]["minimum"], json!(0.0));
        assert!(
            converted["properties"]["free"]
                .get("additionalProperties")
                .is_none()
        );
        assert_eq!(
            converted["properties"]["more"]["exclusiveMinimum"],
            json!(1.0)
        );
        assert_eq!(converted["description"], json!("Rule: always."));
        assert!(converted.get("x-kubernetes-validations").is_none());
    }

    #[test]
    fn catalog_schemas_derive_from_the_crds() {
        for kind in CatalogKind::ALL {
            let schema = json_schema(kind).expect("schema derives");
            assert_eq!(schema["properties"]["kind"]["enum"], json!([kind.name()]));
            assert!(schema["properties"].get("status").is_none());
            assert!(schema["properties"]["spec"]["description"].is_string());
            jsonschema::draft7::new(schema).expect("a valid draft-07 schema");
        }
    }
}

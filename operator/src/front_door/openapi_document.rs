//! The API's OpenAPI 3.1 document, built from the code: the operations of
//! [`operations::operations`] and the JSON Schemas schemars derives from the request and answer
//! types (OpenAPI 3.1 schemas are JSON Schema 2020-12, so they go in unchanged). Served at
//! `GET /openapi.json`, written by `marketplace openapi`, committed as `docs/openapi.json` (a
//! test fails while that file is stale).

pub mod bodies;
pub mod operations;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use self::bodies::StreamSnapshot;
use self::operations::{
    Caller, Content, Operation, PATH_PARAMETERS, Reply, ReplyHeader, RequestHeader, TAGS,
    operations,
};
use crate::front_door::decide::FeatureCheck;

/// Where the document is committed, from the repository's root.
pub const COMMITTED_PATH: &str = "docs/openapi.json";

/// The command that rewrites [`COMMITTED_PATH`].
pub const REGENERATE: &str =
    "cargo run -p marketplace-operator --bin marketplace -- openapi --output docs/openapi.json";

/// The security schemes' names in `components.securitySchemes`.
const BEARER: &str = "bearer";
const API_KEY: &str = "apiKey";

/// The document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut paths = Map::new();
    for op in operations() {
        let item = paths.entry(op.path).or_insert_with(|| json!({}));
        item[op.method.key()] = operation(&op, &mut generator);
    }
    let stream_events = json!({
        "snapshot": generator.subschema_for::<StreamSnapshot>(),
        "entitlement": generator.subschema_for::<FeatureCheck>(),
    });
    // The stream's events have no place in OpenAPI 3.1: name their data schemas beside it.
    paths["/v1/tenants/{tenant}/entitlements/stream"]["get"]["x-event-data"] = stream_events;
    let tags: Vec<Value> = TAGS
        .iter()
        .map(|(name, description)| json!({"name": name, "description": description}))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Marketplace API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Entitlement checks (REST, a change stream, OpenFeature OFREP), the \
                storefront and the superadmin console, served by `marketplace api`. Kubernetes \
                decides who may do what: bearer tokens are checked with TokenReview, rights with \
                SubjectAccessReview on the tenant's namespace, and writes are made as the caller.",
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token the cluster authenticates (TokenReview): a service \
                        account's, or an OIDC ID token from an issuer the cluster trusts.",
                },
                API_KEY: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "A tenant's backend key, for product servers: reads of that \
                        tenant only.",
                },
            },
        },
    })
}

/// The document as committed: pretty, with a final newline.
pub fn rendered() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

/// `GET /openapi.json`, for anyone (merged into [`crate::front_door::router`]).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    static TEXT: LazyLock<String> = LazyLock::new(rendered);
    Router::new().route(
        "/openapi.json",
        get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                TEXT.as_str(),
            )
                .into_response()
        }),
    )
}

fn operation(op: &Operation, generator: &mut SchemaGenerator) -> Value {
    let mut parameters = path_parameters(op.path);
    if let Some(query) = op.query {
        parameters.extend(query_parameters(query(generator).to_value()));
    }
    parameters.extend(op.headers.iter().map(|h| request_header(*h)));
    let mut responses = Map::new();
    for reply in &op.replies {
        responses.insert(reply.status.to_string(), response(reply, generator));
    }
    let mut out = json!({
        "operationId": op.id,
        "tags": [op.tag],
        "summary": op.summary,
        "responses": responses,
    });
    if let Some(description) = op.description {
        out["description"] = json!(description);
    }
    if !parameters.is_empty() {
        out["parameters"] = json!(parameters);
    }
    if let Some(body) = op.body {
        out["requestBody"] = json!({
            "required": body.required,
            "content": {"application/json": {"schema": (body.schema)(generator)}},
        });
    }
    let security = match op.caller {
        Caller::Anyone => None,
        Caller::TenantReader | Caller::UsageReporter => Some(json!([{BEARER: []}, {API_KEY: []}])),
        Caller::TenantBillingAdmin | Caller::Superadmin => Some(json!([{BEARER: []}])),
    };
    if let Some(security) = security {
        out["security"] = security;
    }
    out
}

/// The `{name}` segments of `path`, described from [`PATH_PARAMETERS`].
fn path_parameters(path: &str) -> Vec<Value> {
    path_parameter_names(path)
        .map(|name| {
            let known = PATH_PARAMETERS.iter().find(|p| p.name == name);
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": known.map(|p| p.description).unwrap_or_default(),
                "example": known.map(|p| p.example).unwrap_or_default(),
                "schema": {"type": "string"},
            })
        })
        .collect()
}

/// The names of the `{name}` segments of `path`, in order.
pub fn path_parameter_names(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// One parameter per property of a query type's object schema.
fn query_parameters(schema: Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = without_null(property.clone());
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"));
            let mut parameter = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": property,
            });
            if let Some(description) = description {
                parameter["description"] = description;
            }
            parameter
        })
        .collect()
}

/// An `Option`'s schema without its `null`: an absent query parameter is the `None`.
fn without_null(mut schema: Value) -> Value {
    if let Some(types) = schema["type"].as_array() {
        let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        schema["type"] = match types.as_slice() {
            [one] => one.clone(),
            _ => json!(types),
        };
    }
    if let Some(branches) = schema["anyOf"].as_array() {
        let branches: Vec<&Value> = branches.iter().filter(|b| b["type"] != "null").collect();
        if let [one] = branches.as_slice() {
            let mut merged = (*one).clone();
            if let (Some(into), Some(from)) = (merged.as_object_mut(), schema.as_object()) {
                for (key, value) in from.iter().filter(|(k, _)| *k != "anyOf") {
                    into.insert(key.clone(), value.clone());
                }
            }
            return merged;
        }
    }
    schema
}

fn request_header(header: RequestHeader) -> Value {
    let (name, description, schema) = match header {
        RequestHeader::IfNoneMatch => (
            "If-None-Match",
            "An ETag this endpoint sent: 304 while the answer is the same.",
            json!({"type": "string"}),
        ),
        RequestHeader::IdempotencyKey => (
            "Idempotency-Key",
            "Makes a retry safe: the same key and body answer the same result; the same key \
             with another body is a 422.",
            json!({"type": "string", "minLength": 1, "maxLength": 255}),
        ),
        RequestHeader::LastEventId => (
            "Last-Event-ID",
            "The id of the last event received: resume after it.",
            json!({"type": "string"}),
        ),
    };
    json!({"name": name, "in": "header", "required": false, "description": description,
        "schema": schema})
}

fn response(reply: &Reply, generator: &mut SchemaGenerator) -> Value {
    let mut out = json!({"description": reply.description});
    let content = match reply.content {
        Content::Empty => None,
        Content::Json(schema) => Some(("application/json", schema(generator).to_value())),
        Content::EventStream => Some(("text/event-stream", json!({"type": "string"}))),
        Content::Text => Some(("text/plain", json!({"type": "string"}))),
    };
    if let Some((media_type, schema)) = content {
        out["content"] = json!({media_type: {"schema": schema}});
    }
    if !reply.headers.is_empty() {
        let headers: Map<String, Value> = reply.headers.iter().map(|h| reply_header(*h)).collect();
        out["headers"] = json!(headers);
    }
    out
}

fn reply_header(header: ReplyHeader) -> (String, Value) {
    let (name, description, schema) = match header {
        ReplyHeader::ETag => (
            "ETag",
            "A strong tag of this answer, for `If-None-Match`.",
            json!({"type": "string"}),
        ),
        ReplyHeader::RetryAfter => (
            "Retry-After",
            "Seconds to wait before trying again.",
            json!({"type": "integer", "minimum": 0}),
        ),
        ReplyHeader::Location => (
            "Location",
            "The created subscription's path.",
            json!({"type": "string"}),
        ),
        ReplyHeader::IdempotentReplayed => (
            "Idempotent-Replayed",
            "`true` when this answers a retry of an earlier request with the same key.",
            json!({"type": "string", "enum": ["true"]}),
        ),
    };
    (
        name.to_string(),
        json!({"description": description, "schema": schema}),
    )
}

//! `WizardConfig`: the connection wizard of an integration listing (cluster-scoped).

use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a tenant connects an integration: the settings it asks for, how the connection is tested,
/// how fields map between the two systems, and what the tenant confirms before being billed.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "WizardConfig",
    doc = "The connection wizard of an integration listing: connection settings schema, test connection, field mapping and billing confirmation.",
    shortname = "wiz",
    category = "marketplace",
    printcolumn(name = "Title", type_ = "string", json_path = ".spec.title"),
    printcolumn(
        name = "Test Method",
        type_ = "string",
        json_path = ".spec.testConnection.method"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(validation = Rule::new("self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
    .message("metadata.name: a wizard name must be a DNS label (lowercase letters, digits and dashes, at most 63), so that listings can reference it"))]
#[x_kube(validation = Rule::new("self.secretFields.all(f, f in self.connectionSchema.properties)")
    .message("every entry of secretFields must name a property of connectionSchema")
    .field_path(".secretFields"))]
#[serde(rename_all = "camelCase")]
pub struct WizardConfigSpec {
    /// Title of the wizard, e.g. "Connect QuickBooks Online".
    #[schemars(length(min = 1, max = 120))]
    pub title: String,

    /// JSON Schema (draft 2020-12) of the tenant's connection settings, e.g. realm id and API key.
    /// The wizard renders a form from it and the operator validates the tenant's Secret against it.
    #[schemars(schema_with = "json_schema_document")]
    pub connection_schema: BTreeMap<String, serde_json::Value>,

    /// Names of connection settings that are secrets: stored only in the tenant's Secret, masked in
    /// the wizard, never logged.
    #[serde(default)]
    #[schemars(length(max = 20), inner(length(min = 1, max = 63)))]
    pub secret_fields: Vec<String>,

    /// How to test a connection before the subscription is billed.
    pub test_connection: TestConnection,

    /// How fields of the external system map to ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_mapping: Option<FieldMapping>,

    /// Text the tenant confirms before the subscription is billed (Markdown).
    #[schemars(length(min = 1, max = 2000))]
    pub billing_confirmation: String,
}

/// Schema of the connection settings' JSON Schema document. Its top is typed (an object schema
/// with named properties) so CEL rules can check `required` and `secretFields` against it; the
/// rest of the document is kept as written.
fn json_schema_document(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "JSON Schema (draft 2020-12) of the tenant's connection settings, e.g. realm id and API key. The wizard renders a form from it and the operator validates the tenant's Secret against it.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "required": ["type", "properties"],
        "properties": {
            "type": {
                "description": "Always object: connection settings are a set of named fields.",
                "type": "string",
                "enum": ["object"],
            },
            "properties": {
                "description": "The connection settings, by name, each a JSON Schema.",
                "type": "object",
                "maxProperties": 50,
                "additionalProperties": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                },
            },
            "required": {
                "description": "Names of the settings the tenant must fill in.",
                "type": "array",
                "maxItems": 50,
                "items": {"type": "string", "maxLength": 63},
            },
        },
        "x-kubernetes-validations": [{
            "rule": "!has(self.required) || self.required.all(r, r in self.properties)",
            "message": "every entry of connectionSchema.required must name one of its properties",
            "fieldPath": ".required",
        }],
    })
}

/// An HTTP request that proves the tenant's connection settings work.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TestConnection {
    /// HTTP method of the probe.
    pub method: HttpMethod,
    /// https URL template; `{{name}}` is replaced by the connection setting of that name.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("urlTemplate must start with https://"))]
    pub url_template: String,
    /// Header templates, same `{{name}}` substitution; secrets may appear here only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 20))]
    pub headers_template: BTreeMap<String, String>,
    /// HTTP status that means the connection works.
    #[serde(default = "default_expected_status")]
    #[schemars(range(min = 100, max = 599))]
    pub expected_status: i32,
    /// Seconds to wait for the probe before the test fails.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: i32,
}

fn default_expected_status() -> i32 {
    200
}

fn default_timeout_seconds() -> i32 {
    10
}

/// HTTP methods allowed for a connection test.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
}

/// Field mapping between the external system (sources) and ours (targets).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.required.all(r, self.targets.exists(t, t.name == r))")
    .message("every required field mapping must name one of the targets")
    .field_path(".required"))]
pub struct FieldMapping {
    /// Fields offered by the external system.
    #[schemars(length(min = 1, max = 100))]
    pub sources: Vec<MappedField>,
    /// Fields of ours that can be filled.
    #[schemars(length(min = 1, max = 100))]
    pub targets: Vec<MappedField>,
    /// Target field names the tenant must map before finishing the wizard.
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(min = 1, max = 63)))]
    pub required: Vec<String>,
}

/// One field in a mapping.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct MappedField {
    /// Machine name of the field.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Label shown in the wizard.
    #[schemars(length(min = 1, max = 120))]
    pub label: String,
}

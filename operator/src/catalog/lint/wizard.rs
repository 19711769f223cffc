//! A WizardConfig's connectionSchema must itself be a valid JSON Schema: the wizard renders its
//! form from it and the operator validates each tenant's connection Secret against it, so a
//! broken schema would only surface when a tenant tries to connect.

use super::diagnostic::{Diagnostic, Rule};
use super::file::{At, FileRef};

const POINTER: &str = "/spec/connectionSchema";

pub fn check(file: &FileRef<'_>) -> Vec<Diagnostic> {
    let Some(schema) = file.value().pointer(POINTER).filter(|s| s.is_object()) else {
        return Vec::new();
    };
    let hint =
        "fix this keyword; connectionSchema is JSON Schema draft 2020-12 (https://json-schema.org)";
    let meta = match jsonschema::meta::validator_for(schema) {
        Ok(meta) => meta,
        Err(error) => {
            let at = if schema.get("$schema").is_some() {
                format!("{POINTER}/$schema")
            } else {
                POINTER.to_owned()
            };
            let message = format!("connectionSchema's meta-schema is unknown: {error}");
            let hint = "use \"$schema: https://json-schema.org/draft/2020-12/schema\" or leave $schema out".to_owned();
            return vec![file.error(&at, At::Auto, Rule::ConnectionSchema, message, hint)];
        }
    };
    let invalid: Vec<Diagnostic> = meta
        .iter_errors(schema)
        .map(|error| {
            let at = format!("{POINTER}{}", error.instance_path().as_str());
            let message = format!("connectionSchema is not a valid JSON Schema: {error}");
            file.error(
                &at,
                At::Auto,
                Rule::ConnectionSchema,
                message,
                hint.to_owned(),
            )
        })
        .collect();
    if !invalid.is_empty() {
        return invalid;
    }
    // Valid against the meta-schema, but a validator may still not build (a regex the engine
    // rejects, a $ref that does not resolve offline).
    match jsonschema::options().build(schema) {
        Ok(_) => Vec::new(),
        Err(error) => {
            let at = format!("{POINTER}{}", error.instance_path().as_str());
            let at = if file.value().pointer(&at).is_some() {
                at
            } else {
                POINTER.to_owned()
            };
            let message = format!("connectionSchema cannot be used to validate settings: {error}");
            vec![file.error(
                &at,
                At::Auto,
                Rule::ConnectionSchema,
                message,
                hint.to_owned(),
            )]
        }
    }
}

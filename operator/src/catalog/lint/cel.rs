//! The CRDs' CEL rules (`x-kubernetes-validations`) evaluated offline with `kube-cel`, the same
//! rules the apiserver runs on apply. With a base revision, the base object is `oldSelf`, so
//! transition rules (immutability, allowed state changes) are checked in the pull request.

use std::sync::OnceLock;

use kube::core::cel::{CompiledSchema, ErrorKind, ValidationError, Validator, compile_schema};
use serde_json::Value;

use super::diagnostic::{Diagnostic, Rule};
use super::file::{At, FileRef};
use super::openapi::{CatalogKind, SchemaError, crd_schema};
use super::path::from_dotted;

fn compiled(kind: CatalogKind) -> Result<&'static CompiledSchema, SchemaError> {
    static COMPILED: OnceLock<Result<[CompiledSchema; 4], SchemaError>> = OnceLock::new();
    let built = COMPILED.get_or_init(|| {
        Ok([
            compile_schema(crd_schema(CatalogKind::Listing)?),
            compile_schema(crd_schema(CatalogKind::WizardConfig)?),
            compile_schema(crd_schema(CatalogKind::Promotion)?),
            compile_schema(crd_schema(CatalogKind::Bundle)?),
        ])
    });
    match built {
        Ok(schemas) => Ok(&schemas[kind as usize]),
        Err(error) => Err(error.clone()),
    }
}

/// Evaluates CEL rules; one per `lint` call, because the CEL function registry is not `Sync`.
pub struct CelChecker {
    validator: Validator,
}

impl CelChecker {
    pub fn new() -> Self {
        CelChecker {
            validator: Validator::new(),
        }
    }

    /// Rule failures in the file's object. `schema_valid` says whether the object passed the
    /// OpenAPI schema: if not, rules that cannot be evaluated are consequences of that error
    /// (a missing field, a wrong type) and are left out.
    pub fn check(
        &self,
        kind: CatalogKind,
        file: &FileRef<'_>,
        old: Option<&Value>,
        schema_valid: bool,
    ) -> Vec<Diagnostic> {
        let compiled = match compiled(kind) {
            Ok(compiled) => compiled,
            Err(error) => {
                let hint =
                    "this is a bug in marketplace-operator's API types; report it".to_owned();
                return vec![file.error("", At::Auto, Rule::Cel, error.to_string(), hint)];
            }
        };
        match self
            .validator
            .validate_compiled(compiled, file.value(), old)
        {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .iter()
                .filter_map(|error| diagnose(error, file, schema_valid))
                .collect(),
        }
    }
}

impl Default for CelChecker {
    fn default() -> Self {
        Self::new()
    }
}

/// The field a CEL error is about. Root rules cannot carry a `fieldPath` into `metadata` (the
/// apiserver refuses it), so by the API's convention their messages start with the field
/// instead, e.g. `metadata.name: a listing name must be a DNS label`.
fn field_of(error: &ValidationError) -> &str {
    if !error.field_path.is_empty() {
        return &error.field_path;
    }
    match error.message.split_once(": ") {
        Some((field, _)) if field.starts_with("metadata.") && !field.contains(' ') => field,
        _ => &error.field_path,
    }
}

fn diagnose(error: &ValidationError, file: &FileRef<'_>, schema_valid: bool) -> Option<Diagnostic> {
    let pointer = from_dotted(field_of(error));
    match error.kind {
        ErrorKind::ValidationFailure => {
            let hint = format!(
                "change the object so that the CRD rule `{}` holds",
                error.rule
            );
            Some(file.error(&pointer, At::Auto, Rule::Cel, error.message.clone(), hint))
        }
        _ if !schema_valid => None,
        // Never a false error: a rule the offline evaluator cannot run is left to the apiserver.
        _ => {
            let message = format!(
                "CEL rule `{}` could not be evaluated offline: {}",
                error.rule, error.message
            );
            let hint = "nothing to fix here if the apiserver accepts the object; report it if not"
                .to_owned();
            Some(
                file.error(&pointer, At::Auto, Rule::CelUnevaluated, message, hint)
                    .warning(),
            )
        }
    }
}

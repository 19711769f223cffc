//! OpenFeature Remote Evaluation Protocol (OFREP) answers, pure: the request body's evaluation
//! context to a tenant, and a feature check to the protocol's JSON. The quirks the official
//! providers need (see the README's Entitlement API section) are kept here: always a `variant`,
//! always `errorDetails` on errors, reasons from the spec's list only.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use super::decide::{Allowances, CheckReason, EntitlementView, FeatureCheck, check_feature};

/// The body of both evaluation endpoints, as the document describes it. [`context_of`] reads it
/// leniently (an empty body is an empty context; any media type).
#[derive(JsonSchema)]
pub struct EvaluationRequest {
    pub context: Option<EvaluationContext>,
}

/// Who the flags are evaluated for: a tenant.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationContext {
    /// The tenant's name.
    pub targeting_key: Option<String>,
    /// The tenant's name, when `targetingKey` is not set.
    pub tenant: Option<String>,
    /// Any other attributes: not used to decide, but part of the bulk answer's ETag.
    #[serde(flatten)]
    pub attributes: BTreeMap<String, Value>,
}

/// The spec's evaluation reasons this server gives.
#[derive(Serialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EvaluationReason {
    /// The tenant may use the feature.
    TargetingMatch,
    /// The catalog has the feature; the tenant may not use it (now).
    Disabled,
}

/// `on` when enabled, `off` when not: always sent (the Python provider needs it).
#[derive(Serialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    On,
    Off,
}

/// A flag's evaluation: its value is whether the tenant may use the feature.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct FlagEvaluation {
    /// The feature code.
    pub key: String,
    pub value: bool,
    pub reason: EvaluationReason,
    pub variant: Variant,
    pub metadata: FlagMetadata,
}

/// What the REST check would say.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct FlagMetadata {
    pub reason: CheckReason,
}

/// The bulk evaluation: every flag.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct BulkEvaluation {
    pub flags: Vec<FlagEvaluation>,
}

/// The spec's error codes this server gives.
#[derive(Serialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ParseError,
    TargetingKeyMissing,
    InvalidContext,
    FlagNotFound,
}

/// An evaluation that failed (400, 404): always with `errorDetails` (the Python provider needs
/// it); single evaluations name the flag.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationFailure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub error_code: ErrorCode,
    pub error_details: String,
}

/// 429 (the tenant's reads are over its rate) and 503 (the caller could not be checked): why,
/// with `Retry-After`. Documents the body `read_limits` and the routes render.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationRetryLater {
    pub error_details: String,
}

/// A request OFREP answers with an error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfrepError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub details: String,
}

impl OfrepError {
    /// The error body; single evaluations name the flag.
    pub fn body(&self, key: Option<&str>) -> Value {
        json!(EvaluationFailure {
            key: key.map(str::to_string),
            error_code: self.code,
            error_details: self.details.clone(),
        })
    }
}

/// The evaluation context and the tenant it names (`targetingKey`, else a `tenant` attribute).
/// An empty body is an empty context. Any media type is accepted: clients differ.
pub fn context_of(body: &[u8]) -> Result<(Value, String), OfrepError> {
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| OfrepError {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::ParseError,
            details: format!("the request body is not JSON: {e}"),
        })?
    };
    let context = match request.get("context") {
        None | Some(Value::Null) => json!({}),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => {
            return Err(OfrepError {
                status: StatusCode::BAD_REQUEST,
                code: ErrorCode::InvalidContext,
                details: "context must be a JSON object".into(),
            });
        }
    };
    let tenant = ["targetingKey", "tenant"]
        .iter()
        .find_map(|k| context.get(k).and_then(Value::as_str).filter(|t| !t.is_empty()))
        .map(str::to_string)
        .ok_or_else(|| OfrepError {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::TargetingKeyMissing,
            details: "the context names no tenant: set targetingKey (or a tenant attribute) to the tenant's name".into(),
        })?;
    Ok((context, tenant))
}

fn success(key: &str, check: &FeatureCheck) -> FlagEvaluation {
    let (reason, variant) = if check.enabled {
        (EvaluationReason::TargetingMatch, Variant::On)
    } else {
        (EvaluationReason::Disabled, Variant::Off)
    };
    FlagEvaluation {
        key: key.to_string(),
        value: check.enabled,
        reason,
        variant,
        metadata: FlagMetadata {
            reason: check.reason,
        },
    }
}

/// The single evaluation of flag `key` for a tenant with `features` and `allowances`.
pub fn evaluate(
    key: &str,
    features: &[EntitlementView],
    catalog: &BTreeSet<String>,
    now: Timestamp,
    allowances: &Allowances,
) -> (StatusCode, Value) {
    match check_feature(features, catalog, key, now, allowances) {
        Some(check) => (StatusCode::OK, json!(success(key, &check))),
        None => (
            StatusCode::NOT_FOUND,
            json!(EvaluationFailure {
                key: Some(key.to_string()),
                error_code: ErrorCode::FlagNotFound,
                error_details: format!("no listing grants the feature {key:?}"),
            }),
        ),
    }
}

/// The bulk evaluation: every flag the catalog knows, and any the tenant still holds from a
/// listing that left it (as single evaluations answer them), for a tenant with `features`.
pub fn evaluate_all(
    features: &[EntitlementView],
    catalog: &BTreeSet<String>,
    now: Timestamp,
    allowances: &Allowances,
) -> Value {
    let keys: BTreeSet<&str> = catalog
        .iter()
        .map(String::as_str)
        .chain(features.iter().map(|f| f.feature.as_str()))
        .collect();
    let flags: Vec<FlagEvaluation> = keys
        .into_iter()
        .filter_map(|key| {
            Some(success(
                key,
                &check_feature(features, catalog, key, now, allowances)?,
            ))
        })
        .collect();
    json!(BulkEvaluation { flags })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::entitlement::EntitlementState;

    fn view(feature: &str, state: EntitlementState) -> EntitlementView {
        EntitlementView {
            feature: feature.into(),
            state,
            starts_at: Timestamp::UNIX_EPOCH,
            ends_at: None,
            source_subscription: "s".into(),
        }
    }

    #[test]
    fn the_tenant_is_the_targeting_key_or_a_tenant_attribute() {
        let (_, t) = context_of(br#"{"context": {"targetingKey": "acme"}}"#).unwrap();
        assert_eq!(t, "acme");
        let (_, t) = context_of(br#"{"context": {"tenant": "globex"}}"#).unwrap();
        assert_eq!(t, "globex");
        for body in [
            &br#"{"context": {}}"#[..],
            b"",
            br#"{"context": {"targetingKey": ""}}"#,
        ] {
            let e = context_of(body).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, ErrorCode::TargetingKeyMissing)
            );
            assert!(e.body(Some("f"))["errorDetails"].is_string());
        }
        assert_eq!(
            context_of(b"{nope").unwrap_err().code,
            ErrorCode::ParseError
        );
        assert_eq!(
            context_of(br#"{"context": 3}"#).unwrap_err().code,
            ErrorCode::InvalidContext
        );
    }

    #[test]
    fn flags_are_on_off_or_not_found_always_with_a_variant() {
        let features = [
            view("routes", EntitlementState::Active),
            view("eta", EntitlementState::Suspended),
        ];
        let catalog: BTreeSet<String> = ["routes", "eta", "gigsafe"].map(String::from).into();
        let now = Timestamp::UNIX_EPOCH;
        let (status, on) = evaluate("routes", &features, &catalog, now, &Default::default());
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (
                on["value"].clone(),
                on["variant"].clone(),
                on["reason"].clone()
            ),
            (json!(true), json!("on"), json!("TARGETING_MATCH"))
        );
        for off in ["eta", "gigsafe"] {
            let (status, body) = evaluate(off, &features, &catalog, now, &Default::default());
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                (
                    body["value"].clone(),
                    body["variant"].clone(),
                    body["reason"].clone()
                ),
                (json!(false), json!("off"), json!("DISABLED"))
            );
        }
        let (status, missing) = evaluate("nope", &features, &catalog, now, &Default::default());
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(missing["errorCode"], "FLAG_NOT_FOUND");
        assert!(missing["errorDetails"].is_string());
        let mut held = features.to_vec();
        held.push(view("retired", EntitlementState::Active));
        let all = evaluate_all(&held, &catalog, now, &Default::default());
        let keys: Vec<&str> = all["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["eta", "gigsafe", "retired", "routes"]);
    }
}

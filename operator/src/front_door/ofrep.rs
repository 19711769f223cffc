//! OpenFeature Remote Evaluation Protocol (OFREP) answers, pure: the request body's evaluation
//! context to a tenant, and a feature check to the protocol's JSON. The quirks the official
//! providers need (see the README's Entitlement API section) are kept here: always a `variant`,
//! always `errorDetails` on errors, reasons from the spec's list only.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::decide::{EntitlementView, FeatureCheck, check_feature};

/// A request OFREP answers with an error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfrepError {
    pub status: StatusCode,
    pub code: &'static str,
    pub details: String,
}

impl OfrepError {
    /// The error body; single evaluations name the flag.
    pub fn body(&self, key: Option<&str>) -> Value {
        let mut body = json!({"errorCode": self.code, "errorDetails": self.details});
        if let Some(key) = key {
            body["key"] = json!(key);
        }
        body
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
            code: "PARSE_ERROR",
            details: format!("the request body is not JSON: {e}"),
        })?
    };
    let context = match request.get("context") {
        None | Some(Value::Null) => json!({}),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => {
            return Err(OfrepError {
                status: StatusCode::BAD_REQUEST,
                code: "INVALID_CONTEXT",
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
            code: "TARGETING_KEY_MISSING",
            details: "the context names no tenant: set targetingKey (or a tenant attribute) to the tenant's name".into(),
        })?;
    Ok((context, tenant))
}

fn success(key: &str, check: &FeatureCheck) -> Value {
    let (reason, variant) = if check.enabled {
        ("TARGETING_MATCH", "on")
    } else {
        ("DISABLED", "off")
    };
    json!({"key": key, "value": check.enabled, "reason": reason, "variant": variant,
           "metadata": {"reason": check.reason}})
}

/// The single evaluation of flag `key` for a tenant with `features`.
pub fn evaluate(
    key: &str,
    features: &[EntitlementView],
    catalog: &BTreeSet<String>,
    now: Timestamp,
) -> (StatusCode, Value) {
    match check_feature(features, catalog, key, now) {
        Some(check) => (StatusCode::OK, success(key, &check)),
        None => (
            StatusCode::NOT_FOUND,
            json!({"key": key, "errorCode": "FLAG_NOT_FOUND",
                   "errorDetails": format!("no listing grants the feature {key:?}")}),
        ),
    }
}

/// The bulk evaluation: every flag the catalog knows, and any the tenant still holds from a
/// listing that left it (as single evaluations answer them), for a tenant with `features`.
pub fn evaluate_all(
    features: &[EntitlementView],
    catalog: &BTreeSet<String>,
    now: Timestamp,
) -> Value {
    let keys: BTreeSet<&str> = catalog
        .iter()
        .map(String::as_str)
        .chain(features.iter().map(|f| f.feature.as_str()))
        .collect();
    let flags: Vec<Value> = keys
        .into_iter()
        .filter_map(|key| Some(success(key, &check_feature(features, catalog, key, now)?)))
        .collect();
    json!({ "flags": flags })
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
                (StatusCode::BAD_REQUEST, "TARGETING_KEY_MISSING")
            );
            assert!(e.body(Some("f"))["errorDetails"].is_string());
        }
        assert_eq!(context_of(b"{nope").unwrap_err().code, "PARSE_ERROR");
        assert_eq!(
            context_of(br#"{"context": 3}"#).unwrap_err().code,
            "INVALID_CONTEXT"
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
        let (status, on) = evaluate("routes", &features, &catalog, now);
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
            let (status, body) = evaluate(off, &features, &catalog, now);
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
        let (status, missing) = evaluate("nope", &features, &catalog, now);
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(missing["errorCode"], "FLAG_NOT_FOUND");
        assert!(missing["errorDetails"].is_string());
        let mut held = features.to_vec();
        held.push(view("retired", EntitlementState::Active));
        let all = evaluate_all(&held, &catalog, now);
        let keys: Vec<&str> = all["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["eta", "gigsafe", "retired", "routes"]);
    }
}

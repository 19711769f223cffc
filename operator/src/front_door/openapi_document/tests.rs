//! The document against the code: every operation is routed, every route is documented, every
//! schema compiles, and the answers the code gives fit the schemas the document names for them.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::operations::{
    Caller, Content, Method, Operation, PATH_PARAMETERS, ReplyHeader, operations,
};
use super::{document, path_parameter_names};
use crate::api::entitlement::EntitlementState;
use crate::front_door::api_keys::format_key;
use crate::front_door::decide::{EntitlementView, check_feature};
use crate::front_door::key_routes_tests::door as key_door;
use crate::front_door::ofrep;
use crate::front_door::read_limits::ReadLimitSettings;
use crate::front_door::routes_tests::door;

/// `path` with each parameter replaced by its documented example.
fn sample(path: &str) -> String {
    let mut out = path.to_string();
    for name in path_parameter_names(path) {
        let example = PATH_PARAMETERS
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.example)
            .unwrap_or_else(|| panic!("{path}: parameter {name} has no entry in PATH_PARAMETERS"));
        out = out.replace(&format!("{{{name}}}"), example);
    }
    out
}

fn http_method(method: Method) -> axum::http::Method {
    match method {
        Method::Get => axum::http::Method::GET,
        Method::Post => axum::http::Method::POST,
        Method::Patch => axum::http::Method::PATCH,
        Method::Delete => axum::http::Method::DELETE,
    }
}

async fn answer(request: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    answer_from(door(), request).await
}

async fn answer_from(
    router: axum::Router,
    request: Request<Body>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let response = tokio::time::timeout(Duration::from_secs(10), router.oneshot(request))
        .await
        .expect("the router answers in time")
        .expect("answer");
    let status = response.status();
    if response.headers().get("content-type").map(|v| v.as_bytes()) == Some(b"text/event-stream") {
        // A stream never ends: its status and headers are the answer.
        return (status, Value::Null, response.headers().clone());
    }
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, headers)
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_as_documented_without_a_token() {
    for op in operations() {
        let uri = sample(op.path);
        let mut request = Request::builder().method(http_method(op.method)).uri(&uri);
        let body = if op.body.is_some() {
            request = request.header("content-type", "application/json");
            Body::from(r#"{"context": {"targetingKey": "acme-logistics"}}"#)
        } else {
            Body::empty()
        };
        let (status, _, _) = answer(request.body(body).expect("request")).await;
        let what = format!("{:?} {uri}", op.method);
        match op.caller {
            // Routing's own 404 and 405 are the only ones anonymous calls could get here.
            Caller::Anyone => assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{what} is documented but not routed ({status})"
            ),
            _ => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
        }
        assert!(
            op.replies.iter().any(|r| r.status == status.as_u16()),
            "{what} answered {status}, which the document does not list"
        );
    }
}

/// The routes the source declares: `(method, path)` of each `.route("path", get(..).post(..))`.
fn declared_routes(source: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (start, _) in source.match_indices(".route(") {
        let rest = &source[start + ".route(".len()..];
        let Some(path) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        let path = &path[..path.find('"').expect("closing quote")];
        // The call's text, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("closing parenthesis");
        let call = &rest[..end];
        for method in ["get", "post", "put", "patch", "delete"] {
            let needle = format!("{method}(");
            let calls = call.match_indices(&needle).filter(|(i, _)| {
                !call[..*i]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            for _ in calls {
                routes.push((method.to_string(), path.to_string()));
            }
        }
    }
    routes
}

#[test]
fn every_route_in_the_routes_files_is_documented() {
    let sources = [
        include_str!("../routes.rs"),
        include_str!("../storefront/routes.rs"),
        include_str!("../storefront/bundles.rs"),
        include_str!("../console/routes.rs"),
        include_str!("../metering_routes.rs"),
        include_str!("../credit_routes.rs"),
        include_str!("../health_routes.rs"),
        include_str!("../openapi_document.rs"),
        include_str!("../../server/health.rs"),
        include_str!("../../server/metrics/requests.rs"),
    ];
    let declared: BTreeSet<(String, String)> =
        sources.iter().flat_map(|s| declared_routes(s)).collect();
    let documented: BTreeSet<(String, String)> = operations()
        .iter()
        .map(|op| (op.method.key().to_string(), op.path.to_string()))
        .collect();
    assert!(declared.len() >= 20, "the scan found {declared:?}");
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from front_door/openapi_document/operations.rs: {undocumented:?}"
    );
}

#[test]
fn operation_ids_are_unique_and_path_parameters_are_described() {
    let ops = operations();
    let ids: BTreeSet<&str> = ops.iter().map(|op| op.id).collect();
    assert_eq!(ids.len(), ops.len());
    for op in &ops {
        sample(op.path);
    }
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// A validator of the component `name`, its `$ref`s resolved in the document.
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    validator_of(
        doc,
        &json!({"$ref": format!("#/components/schemas/{name}")}),
    )
}

/// A validator of `schema` (a schema of the document), its `$ref`s resolved in the document.
fn validator_of(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{schema}: {e}"))
}

#[test]
fn every_schema_compiles_and_every_reference_resolves() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for reference in found {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{reference} points outside components"));
        assert!(
            schemas.contains_key(name),
            "{reference} resolves to nothing"
        );
    }
    for name in schemas.keys() {
        // schemars numbers a second type of the same name (`Phase2`): rename one of them.
        let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
        assert!(
            stem == name || !schemas.contains_key(stem),
            "two types are named {stem}"
        );
        validator(&doc, name);
    }
}

fn assert_fits(doc: &Value, name: &str, instance: &Value) {
    fits(validator(doc, name), name, instance);
}

fn fits(validator: jsonschema::Validator, name: &str, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} does not fit {instance}: {errors:#?}"
    );
}

#[test]
fn what_the_deciders_answer_fits_the_documented_schemas() {
    let doc = document();
    let features = [EntitlementView {
        feature: "routes".into(),
        state: EntitlementState::Trialing,
        starts_at: Timestamp::UNIX_EPOCH,
        ends_at: Some(Timestamp::MAX),
        source_subscription: "s".into(),
    }];
    let catalog: BTreeSet<String> = ["routes", "eta"].map(String::from).into();
    let now = Timestamp::UNIX_EPOCH;
    assert_fits(&doc, "EntitlementView", &json!(features[0]));
    for feature in ["routes", "eta"] {
        let check =
            check_feature(&features, &catalog, feature, now, &Default::default()).expect("known");
        assert_fits(&doc, "FeatureCheck", &json!(check));
        let (status, body) =
            ofrep::evaluate(feature, &features, &catalog, now, &Default::default());
        assert_eq!(status, StatusCode::OK);
        assert_fits(&doc, "FlagEvaluation", &body);
    }
    let (status, body) = ofrep::evaluate("nope", &features, &catalog, now, &Default::default());
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_fits(&doc, "EvaluationFailure", &body);
    let error = ofrep::context_of(b"{}").expect_err("no tenant");
    assert_fits(&doc, "EvaluationFailure", &error.body(None));
    assert_fits(
        &doc,
        "BulkEvaluation",
        &ofrep::evaluate_all(&features, &catalog, now, &Default::default()),
    );
}

#[tokio::test]
async fn the_router_refuses_with_the_documented_shapes_and_serves_the_document() {
    let doc = document();
    let anonymous = Request::get("/v1/tenants/acme-logistics/catalog")
        .body(Body::empty())
        .expect("request");
    let (status, body, _) = answer(anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_fits(&doc, "ApiError", &body);
    // A token the unreachable apiserver cannot review.
    let unreviewed = Request::get("/v1/tenants/acme-logistics/entitlements/routes")
        .header("authorization", "Bearer some-token")
        .body(Body::empty())
        .expect("request");
    let (status, body, _) = answer(unreviewed).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_fits(&doc, "ApiError", &body);
    let ofrep_unreviewed = Request::post("/ofrep/v1/evaluate/flags/routes")
        .header("authorization", "Bearer some-token")
        .body(Body::from(
            r#"{"context": {"targetingKey": "acme-logistics"}}"#,
        ))
        .expect("request");
    let (status, body, headers) = answer(ofrep_unreviewed).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse::<u64>()
            .is_ok()
    );
    assert_fits(&doc, "EvaluationRetryLater", &body);
    let (status, served, headers) = answer(
        Request::get("/openapi.json")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(served, doc);
}

/// Calls `op` with a backend key of tenant acme on `router`, and checks that the status is one
/// the document lists, with the headers and (for JSON) the body it documents. Returns the status.
async fn call_as_documented(doc: &Value, router: axum::Router, op: &Operation, key: &str) -> u16 {
    let uri = sample(op.path).replace("acme-logistics", "acme");
    let mut request = Request::builder()
        .method(http_method(op.method))
        .uri(&uri)
        .header("x-api-key", key);
    let body = if op.body.is_some() {
        request = request.header("content-type", "application/json");
        Body::from(r#"{"context": {"targetingKey": "acme"}}"#)
    } else {
        Body::empty()
    };
    let what = format!("{:?} {uri}", op.method);
    let (status, body, headers) = answer_from(router, request.body(body).expect("request")).await;
    let reply = op
        .replies
        .iter()
        .find(|r| r.status == status.as_u16())
        .unwrap_or_else(|| panic!("{what} answered {status}, which the document does not list"));
    for header in &reply.headers {
        let name = match header {
            ReplyHeader::ETag => "etag",
            ReplyHeader::RetryAfter => "retry-after",
            // Only on a 201, which a key never gets.
            ReplyHeader::Location | ReplyHeader::IdempotentReplayed => continue,
        };
        assert!(
            headers.contains_key(name),
            "{what} {status}: no {name} header"
        );
    }
    if let Content::Json(_) = reply.content {
        let schema = &doc["paths"][op.path][op.method.key()]["responses"][status.as_str()]["content"]
            ["application/json"]["schema"];
        fits(validator_of(doc, schema), &what, &body);
    }
    status.as_u16()
}

/// With a backend key every call gets past authentication: reads answer for real (from empty
/// caches), writes and the console refuse the key; each answer must be one the document lists.
#[tokio::test]
async fn what_the_router_answers_a_backend_key_is_what_the_document_says() {
    let doc = document();
    let key = format_key("acme", &[1, 2, 3, 4], &[5; 32]);
    let router = key_door(&key, ReadLimitSettings::UNLIMITED).await;
    let mut answered = BTreeSet::new();
    for op in operations().iter().filter(|op| op.caller != Caller::Anyone) {
        let status = call_as_documented(&doc, router.clone(), op, &key).await;
        answered.insert(status);
        if !matches!(op.caller, Caller::TenantReader | Caller::UsageReporter) {
            assert_eq!(
                status,
                403,
                "{} {}: a key only reads",
                op.method.key(),
                op.path
            );
        }
    }
    assert!(
        answered.is_superset(&BTreeSet::from([200, 403, 404])),
        "{answered:?}"
    );
}

/// A tenant reader's second read in a minute, with one allowed, is the documented 429 (the
/// storefront's reads answer an unknown tenant's 404 first: these caches hold no tenant).
#[tokio::test]
async fn reads_over_the_rate_get_the_documented_429() {
    let doc = document();
    let key = format_key("acme", &[1, 2, 3, 4], &[5; 32]);
    let limits = ReadLimitSettings {
        checks_per_minute: 1,
        browse_per_minute: 1,
        details_per_minute: 1,
        ..ReadLimitSettings::default()
    };
    let mut limited = 0;
    for op in operations()
        .iter()
        .filter(|op| op.caller == Caller::TenantReader)
    {
        let router = key_door(&key, limits).await;
        let first = call_as_documented(&doc, router.clone(), op, &key).await;
        let second = call_as_documented(&doc, router, op, &key).await;
        if first != 404 {
            assert_eq!(second, 429, "{} {}", op.method.key(), op.path);
            limited += 1;
        }
    }
    // The entitlement list, the stream and the OFREP bulk (the others answer 404 first).
    assert!(limited >= 3, "only {limited} reads were limited");
}

#[test]
fn the_health_and_revenue_reports_fit_their_documented_schemas() {
    use crate::front_door::health_routes::{HealthReport, RevenueReport};
    use crate::health::policy::{BUILT_IN, built_in};
    let doc = document();
    let tenant: crate::api::Tenant = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": "acme", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"displayName": "Acme", "basePlan": "Starter", "segment": "smb",
                 "billingContact": {"name": "Ann", "email": "ann@a.example"}}}))
    .expect("a Tenant");
    let health = crate::health::assess(
        &tenant,
        &[],
        &[],
        &[],
        (BUILT_IN, &built_in()),
        "2026-02-01T00:00:00Z".parse().expect("time"),
    );
    let report = HealthReport {
        generated_at: Timestamp::UNIX_EPOCH,
        tenants: vec![health],
        policy_problems: Vec::new(),
        usage_available: false,
    };
    assert_fits(&doc, "HealthReport", &json!(report));
    let revenue = RevenueReport {
        generated_at: Timestamp::UNIX_EPOCH,
        revenue: crate::health::mrr([crate::health::revenue::MonthlyBilling {
            listing: "routes".into(),
            plan: "pro".into(),
            currency: "USD".into(),
            amount: 49.0,
        }]),
    };
    assert_fits(&doc, "RevenueReport", &json!(revenue));
}

use serde_json::json;

use super::*;

fn now() -> Timestamp {
    "2026-11-20T10:00:00Z".parse().unwrap()
}

fn meters() -> MeterCatalog {
    let listing: ListingSpec = serde_json::from_value(json!({
        "displayName": "Docs", "tagline": "Read documents", "type": "InApp",
        "category": "AI", "lifecycle": "Published", "features": ["docs"],
        "plans": [
            {"name": "count", "displayName": "Count",
             "pricing": {"model": "Flat", "amount": "0", "currency": "USD", "interval": "Month"},
             "metered": {"meter": "api_call", "unit": "call", "unitPrice": "0.01"}},
            {"name": "tokens", "displayName": "Tokens",
             "pricing": {"model": "Flat", "amount": "0", "currency": "USD", "interval": "Month"},
             "metered": {"meter": "llm.tokens", "aggregation": "Sum", "valueProperty": "tokens",
                         "unit": "token", "unitPrice": "0.0001"}},
        ],
    }))
    .unwrap();
    MeterCatalog::of([&listing])
}

fn event(id: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/acme/api", "type": "api_call",
           "time": "2026-11-20T09:59:00Z"})
}

fn parse(
    body: &Value,
    content_type: &str,
    tenant: Option<&str>,
) -> Result<Vec<UsageEvent>, EventProblem> {
    parse_events(
        &serde_json::to_vec(body).unwrap(),
        Some(content_type),
        tenant,
        &meters(),
        now(),
    )
}

#[test]
fn a_single_event_and_a_batch_are_read() {
    let one = parse(&event("e1"), "application/cloudevents+json", Some("acme")).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        (
            one[0].tenant.as_str(),
            one[0].meter.as_str(),
            one[0].id.as_str()
        ),
        ("acme", "api_call", "e1")
    );
    assert_eq!(
        one[0].time,
        "2026-11-20T09:59:00Z".parse::<Timestamp>().unwrap()
    );
    let batch = json!([event("e1"), event("e2")]);
    let two = parse(
        &batch,
        "application/cloudevents-batch+json; charset=utf-8",
        Some("acme"),
    )
    .unwrap();
    assert_eq!(two.len(), 2);
    // Without a time, the usage happened when it arrived.
    let mut timeless = event("e3");
    timeless.as_object_mut().unwrap().remove("time");
    assert_eq!(
        parse(&timeless, "application/json", Some("acme")).unwrap()[0].time,
        now()
    );
}

#[test]
fn media_types_and_shapes_must_agree() {
    assert_eq!(
        parse(&event("e"), "text/plain", Some("acme"))
            .unwrap_err()
            .status,
        415
    );
    let array = json!([event("e")]);
    assert_eq!(
        parse(&array, "application/cloudevents+json", Some("acme"))
            .unwrap_err()
            .code,
        "UnexpectedBatch"
    );
    assert_eq!(
        parse(&event("e"), BATCH_MEDIA_TYPE, Some("acme"))
            .unwrap_err()
            .code,
        "NotABatch"
    );
    assert_eq!(
        parse(&json!([]), BATCH_MEDIA_TYPE, Some("acme"))
            .unwrap_err()
            .code,
        "EmptyBatch"
    );
    let big = Value::Array(vec![event("e"); MAX_BATCH + 1]);
    assert_eq!(
        parse(&big, BATCH_MEDIA_TYPE, Some("acme"))
            .unwrap_err()
            .status,
        413
    );
}

#[test]
fn problems_name_the_event_index_and_the_field() {
    let mut bad = event("e2");
    bad["type"] = json!("api_cal");
    let problem = parse(&json!([event("e1"), bad]), BATCH_MEDIA_TYPE, Some("acme")).unwrap_err();
    assert_eq!(
        (problem.status, problem.index, problem.field.as_str()),
        (422, Some(1), "type")
    );
    assert!(problem.message.starts_with("event 1: type:"), "{problem:?}");
    assert!(
        problem.message.contains("api_call, llm.tokens"),
        "{problem:?}"
    );

    for (field, value, status) in [
        ("specversion", json!("0.3"), 422),
        ("id", json!(""), 422),
        ("source", json!(7), 422),
        ("time", json!("yesterday"), 422),
        ("time", json!("2026-11-21T10:00:00Z"), 422),
        ("data", json!([1]), 422),
        ("subject", json!("globex"), 403),
    ] {
        let mut e = event("e");
        e[field] = value;
        let problem = parse(&e, "application/json", Some("acme")).unwrap_err();
        assert_eq!(
            (problem.status, problem.index, problem.field.as_str()),
            (status, Some(0), field),
            "{problem:?}"
        );
    }
    let problem = parse(&json!(5), "application/json", Some("acme")).unwrap_err();
    assert_eq!((problem.status, problem.index), (400, Some(0)));
}

#[test]
fn a_key_reports_for_its_own_tenant_and_a_token_names_one() {
    let mut own = event("e");
    own["subject"] = json!("acme");
    assert_eq!(
        parse(&own, "application/json", Some("acme")).unwrap()[0].tenant,
        "acme"
    );
    assert_eq!(
        parse(&own, "application/json", None).unwrap()[0].tenant,
        "acme"
    );
    let problem = parse(&event("e"), "application/json", None).unwrap_err();
    assert_eq!((problem.field.as_str(), problem.status), ("subject", 422));
}

#[test]
fn summed_meters_need_a_number_in_data() {
    let mut e = event("e");
    e["type"] = json!("llm.tokens");
    let problem = parse(&e, "application/json", Some("acme")).unwrap_err();
    assert_eq!(problem.field, "data.tokens");
    e["data"] = json!({"tokens": "many"});
    assert_eq!(
        parse(&e, "application/json", Some("acme"))
            .unwrap_err()
            .field,
        "data.tokens"
    );
    e["data"] = json!({"tokens": 1200, "model": "small"});
    let ok = parse(&e, "application/json", Some("acme")).unwrap();
    assert_eq!(ok[0].data["tokens"], json!(1200));
}

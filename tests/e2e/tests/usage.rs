//! Usage-based plans on a real apiserver, with each usage store: a tenant's backend key posts
//! usage events (CloudEvents, a batch, then the batch retried with one more), duplicates count
//! once, the tenant sees the period's total, and the plan's hard-limited feature turns `false`
//! (REST, OFREP and the open change stream) once the included quantity is used. Events for another tenant, or invalid
//! ones, are refused naming the event and the field; so are events of a month already reported
//! to billing, once it is.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::Api;
use marketplace_e2e::api_process::{api_settings, start_api};
use marketplace_e2e::metered::{BATCH, KeyCaller, metered_listing, usage_event};
use marketplace_e2e::subscriptions::{CONVERGED, apply};
use marketplace_e2e::tenants::{entitlement, tenant};
use marketplace_e2e::{control_plane, controllers, eventually};
use marketplace_operator::api::TenantSubscription;
use marketplace_operator::front_door::api_keys::secrets::create_api_key;
use marketplace_operator::metering::{
    AnyUsageStore, PeriodReport, ReportKey, UsagePeriod, UsageStore, UsageStoreLocation,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The tenant's entitlement change stream, opened with the key.
async fn stream(caller: &KeyCaller, tenant: &str) -> reqwest::Response {
    let path = format!("/v1/tenants/{tenant}/entitlements/stream");
    let response = caller
        .request(Method::GET, &path)
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), StatusCode::OK);
    response
}

/// The OFREP evaluation of `feature` for `tenant`, with the key.
async fn flag(caller: &KeyCaller, tenant: &str, feature: &str) -> Value {
    let body = json!({"context": {"targetingKey": tenant}});
    let path = format!("/ofrep/v1/evaluate/flags/{feature}");
    let (_, flag) = caller.post(&path, &body, "application/json").await;
    flag
}

/// Reads `stream` until an event's data names `feature` with `enabled` as given; returns it.
async fn stream_until(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    feature: &str,
    enabled: bool,
) -> Value {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            for line in block.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let data: Value = serde_json::from_str(data.trim()).expect("JSON data");
                let checks = match data.get("entitlements") {
                    Some(all) => all.as_array().cloned().unwrap_or_default(),
                    None => vec![data],
                };
                if let Some(check) = checks
                    .into_iter()
                    .find(|c| c["feature"] == feature && c["enabled"] == enabled)
                {
                    return check;
                }
            }
        }
        let chunk = tokio::time::timeout(CONVERGED, stream.chunk())
            .await
            .expect("the stream moves")
            .expect("the stream reads")
            .expect("the stream goes on");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
}

async fn hard_limit_scenario(store: UsageStoreLocation, base: &str) {
    let control_plane = control_plane().await;
    let client = control_plane.client().await.expect("client");
    let _running =
        controllers::start_tenant_controller(control_plane, &client, &format!("e2e-{base}")).await;
    let (name, namespace) = tenant(&client, base, json!({})).await;
    let feature = format!("pages_{}", base.replace('-', "_"));
    let listing = metered_listing(
        &client,
        &feature,
        json!({"unitPrice": "0.10", "includedQuantity": 3, "hardLimit": true}),
    )
    .await;
    let (listing, meter) = (listing.name, listing.meter);
    // The subscription the operator would have made (the API reads its listing and plan) and
    // the Entitlement it grants.
    apply(
        &Api::<TenantSubscription>::namespaced(client.clone(), &namespace),
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
            "metadata": {"name": "route-optimization", "namespace": namespace},
            "spec": {"listing": listing, "plan": "starter"}}),
    )
    .await;
    entitlement(&client, &namespace, &name, &feature, "Active").await;
    let key = create_api_key(&client, &name, "billing server", None, Timestamp::now())
        .await
        .expect("a key")
        .key;
    let mut settings = api_settings(Duration::from_secs(2), "marketplace-system");
    settings.usage_store = Some(store.clone());
    let api = start_api(control_plane, settings).await;
    let backend = KeyCaller::new(&api.base, &key);
    let usage_path = format!("/v1/tenants/{name}/usage");
    let check_path = format!("/v1/tenants/{name}/entitlements/{feature}");

    // Once the caches hold the listing and the subscription, the check shows the allowance.
    let check = eventually("the metered check", CONVERGED, || async {
        let check = backend.get_ok(&check_path).await;
        (check["usage"]["included"] == 3).then_some(check)
    })
    .await;
    assert_eq!(check["enabled"], true, "{check}");
    // An open change stream starts with the feature on.
    let mut stream = stream(&backend, &name).await;
    let mut buffer = String::new();
    stream_until(&mut stream, &mut buffer, &feature, true).await;

    // A batch of two, then the same batch retried with a third event: three count.
    let first = json!([usage_event("e1", &meter), usage_event("e2", &meter)]);
    let (status, body) = backend.post("/v1/usage", &first, BATCH).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"accepted": 2, "duplicates": 0}));
    let check = backend.get_ok(&check_path).await;
    assert_eq!(
        (check["enabled"].clone(), check["usage"]["used"].clone()),
        (json!(true), json!(2.0)),
        "{check}"
    );
    let retried = json!([
        usage_event("e1", &meter),
        usage_event("e2", &meter),
        usage_event("e3", &meter)
    ]);
    let (status, body) = backend.post("/v1/usage", &retried, BATCH).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"accepted": 1, "duplicates": 2}));
    // A single event retried alone is a duplicate too.
    let (status, body) = backend
        .post(
            "/v1/usage",
            &usage_event("e3", &meter),
            "application/cloudevents+json",
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::ACCEPTED,
            json!({"accepted": 0, "duplicates": 1})
        )
    );

    let usage = backend.get_ok(&usage_path).await;
    let meters = usage["meters"].as_array().expect("meters");
    assert_eq!(meters.len(), 1, "{usage}");
    assert_eq!(meters[0]["quantity"], 3.0, "{usage}");
    assert_eq!(meters[0]["totals"]["count"], 3, "{usage}");
    assert_eq!(meters[0]["limitReached"], true, "{usage}");
    assert_eq!(meters[0]["billableUnits"], 0, "{usage}");

    // The hard limit: the feature is off, over REST and OFREP.
    let check = backend.get_ok(&check_path).await;
    assert_eq!(
        (check["enabled"].clone(), check["reason"].clone()),
        (json!(false), json!("UsageLimitReached")),
        "{check}"
    );
    let flag = flag(&backend, &name, &feature).await;
    assert_eq!(
        (flag["value"].clone(), flag["variant"].clone()),
        (json!(false), json!("off")),
        "{flag}"
    );
    // ... and on the stream, which heard of it when the event that used it up arrived.
    let streamed = stream_until(&mut stream, &mut buffer, &feature, false).await;
    assert_eq!(streamed["reason"], "UsageLimitReached", "{streamed}");
    drop(stream);

    // A key reports for its own tenant only; an invalid event is named with its field.
    let mut other = usage_event("x1", &meter);
    other["subject"] = json!("someone-else");
    let (status, body) = backend
        .post(
            "/v1/usage",
            &json!([usage_event("x0", &meter), other]),
            BATCH,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        (body["index"].clone(), body["field"].clone()),
        (json!(1), json!("subject")),
        "{body}"
    );
    let mut typo = usage_event("x2", &meter);
    typo["type"] = json!("e2e.no_such_meter");
    let (status, body) = backend.post("/v1/usage", &json!([typo]), BATCH).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        (body["index"].clone(), body["field"].clone()),
        (json!(0), json!("type")),
        "{body}"
    );
    // Nothing of a refused request was stored.
    assert_eq!(
        backend.get_ok(&usage_path).await["meters"][0]["quantity"],
        3.0
    );

    late_usage(&backend, &store, &name, &meter, &usage_path).await;
}

/// Usage of last month is taken until that month is reported to billing; then a request with
/// such an event is refused naming it and the month, and nothing of it is stored.
async fn late_usage(
    backend: &KeyCaller,
    store: &UsageStoreLocation,
    tenant: &str,
    meter: &str,
    usage_path: &str,
) {
    let last_month = UsagePeriod::containing(Timestamp::now()).previous();
    let late = |id: &str| {
        let mut event = usage_event(id, meter);
        event["time"] = json!((last_month.start() + SignedDuration::from_hours(30)).to_string());
        event
    };
    let (status, body) = backend.post("/v1/usage", &json!([late("l1")]), BATCH).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // The reporter bills last month (its record, as it writes it after HubSpot has the line).
    // The store keeps milliseconds.
    let reported_at = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).expect("now");
    let reports = AnyUsageStore::open(store).await.expect("the usage store");
    reports
        .mark_reported(&PeriodReport {
            key: ReportKey {
                tenant: tenant.to_string(),
                meter: meter.to_string(),
                period: last_month,
                subscription: "route-optimization-uid".into(),
            },
            quantity: 1.0,
            billable_units: 0,
            amount: "0".into(),
            reference: String::new(),
            reported_at,
        })
        .await
        .expect("recorded");
    let (status, body) = backend
        .post(
            "/v1/usage",
            &json!([usage_event("l2", meter), late("l3")]),
            BATCH,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        (
            body["code"].clone(),
            body["index"].clone(),
            body["field"].clone()
        ),
        (json!("PeriodReported"), json!(1), json!("time")),
        "{body}"
    );
    assert_eq!(
        body["late"],
        json!([{"index": 1, "id": "l3", "period": last_month.to_string(),
                "reportedAt": reported_at.to_string()}]),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"l3\"") && message.contains(&last_month.to_string()),
        "{body}"
    );
    assert_eq!(
        backend.get_ok(usage_path).await["meters"][0]["quantity"],
        3.0
    );
    // Sent again without it: taken.
    let (status, body) = backend
        .post("/v1/usage", &json!([usage_event("l2", meter)]), BATCH)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::ACCEPTED,
            json!({"accepted": 1, "duplicates": 0})
        )
    );
}

#[tokio::test]
async fn sqlite_usage_dedupes_aggregates_and_enforces_a_hard_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = UsageStoreLocation::Sqlite(dir.path().join("usage.sqlite"));
    hard_limit_scenario(store, "usage-sqlite").await;
}

#[tokio::test]
async fn postgres_usage_dedupes_aggregates_and_enforces_a_hard_limit() {
    let server = marketplace_harness::postgres::Postgres::start_temporary()
        .expect("PostgreSQL (scripts/install-postgres)");
    let store = UsageStoreLocation::Postgres(server.url().to_string());
    hard_limit_scenario(store, "usage-postgres").await;
}

//! Fault injection through the admin API (contract §8.10, §9 "Fault injection").
mod common;

use common::*;
use hubspot_sim::{FaultKind, FaultRule, ObjectType, ValidationRule};
use serde_json::json;

fn rule(
    kind: FaultKind,
    method: Option<&str>,
    path: Option<&str>,
    probability: f64,
    times: Option<u32>,
) -> FaultRule {
    FaultRule {
        id: 0,
        method: method.map(String::from),
        path_contains: path.map(String::from),
        kind,
        probability,
        times,
    }
}

#[tokio::test]
async fn injected_statuses_in_hubspot_shape() {
    let c = start().await;
    for status in [500u16, 502, 503, 504, 423] {
        c.sim.admin().add_fault(rule(
            FaultKind::Error { status },
            Some("GET"),
            None,
            1.0,
            Some(1),
        ));
        let (s, v) = c.get("/crm/objects/2026-09/companies").await;
        assert_eq!(s, status);
        assert_eq!(v["status"], json!("error"));
        assert!(v["correlationId"].is_string());
    }
    // Rule consumed: back to normal.
    assert_eq!(c.get("/crm/objects/2026-09/companies").await.0, 200);
}

#[tokio::test]
async fn error_rate_is_reproducible_with_the_seed() {
    async fn run() -> Vec<u16> {
        let c = start().await;
        c.sim.admin().add_fault(rule(
            FaultKind::Error { status: 503 },
            None,
            Some("/companies"),
            0.3,
            None,
        ));
        let mut out = Vec::new();
        for _ in 0..30 {
            out.push(c.get("/crm/objects/2026-09/companies").await.0);
        }
        out
    }
    let a = run().await;
    let b = run().await;
    assert_eq!(a, b);
    assert!(a.contains(&503) && a.contains(&200));
}

#[tokio::test]
async fn commit_then_fail_persists_the_write() {
    let c = start().await;
    // contract §8.10: the write persists, the client gets a 5xx.
    let r = c
        .http
        .post(c.url("/_sim/faults"))
        .json(&json!({"kind": "commit_then_fail", "status": 504, "method": "POST", "pathContains": "/deals", "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, _) = c
        .post(
            "/crm/objects/2026-09/deals",
            json!({"properties": deal_props("d")}),
        )
        .await;
    assert_eq!(s, 504);
    assert_eq!(c.sim.admin().objects(ObjectType::Deals).len(), 1);
}

#[tokio::test]
async fn latency_fault_delays_the_response() {
    let c = start().await;
    c.sim.admin().add_fault(rule(
        FaultKind::Latency { ms: 150 },
        None,
        None,
        1.0,
        Some(1),
    ));
    let t = std::time::Instant::now();
    assert_eq!(c.get("/crm/objects/2026-09/companies").await.0, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(150));
}

#[tokio::test]
async fn validation_rule_rejection() {
    let c = start().await;
    // contract §1.1: from 2026-09 admin validation rules apply to API writes (400 VALIDATION_ERROR).
    c.sim.admin().add_validation_rule(ValidationRule {
        object_type: "companies".into(),
        property_name: "city".into(),
        rejected_values: Some(vec!["Nowhere".into()]),
        message: "City must be real".into(),
    });
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/companies",
            json!({"properties": {"name": "a", "city": "Nowhere"}}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["category"], json!("VALIDATION_ERROR"));
    assert_eq!(v["errors"][0]["message"], json!("City must be real"));
    assert_eq!(
        c.post(
            "/crm/objects/2026-09/companies",
            json!({"properties": {"name": "a", "city": "Paris"}})
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn admin_state_dump_and_reset() {
    let c = start().await;
    let deal = c.create("deals", deal_props("d")).await;
    let v: serde_json::Value = c
        .http
        .get(c.url("/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["objects"]["deals"][0]["id"], json!(deal));
    assert_eq!(
        v["objects"]["deals"][0]["properties"]["dealname"],
        json!("d")
    );
    let r = c.http.post(c.url("/_sim/reset")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert!(c.sim.admin().objects(ObjectType::Deals).is_empty());
    // Clock over HTTP.
    let v: serde_json::Value = c
        .http
        .post(c.url("/_sim/clock/advance"))
        .json(&json!({"days": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["nowMs"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn auth_and_migration_faults() {
    let c = start().await;
    c.sim.admin().add_fault(rule(
        FaultKind::Error { status: 403 },
        None,
        None,
        1.0,
        Some(1),
    ));
    let (s, v) = c.get("/crm/objects/2026-09/companies").await;
    // contract §4: 403 MISSING_SCOPES with errors[0].context.requiredGranularScopes and links.scopes.
    assert_eq!(s, 403);
    assert_eq!(v["category"], json!("MISSING_SCOPES"));
    assert!(v["errors"][0]["context"]["requiredGranularScopes"].is_array());
    assert!(v["links"]["scopes"].is_string());
    c.sim.admin().add_fault(rule(
        FaultKind::Error { status: 401 },
        None,
        None,
        1.0,
        Some(1),
    ));
    let (s, v) = c.get("/crm/objects/2026-09/companies").await;
    assert_eq!(s, 401);
    assert_eq!(v["category"], json!("EXPIRED_AUTHENTICATION"));
    // contract §4: 477 carries Retry-After in seconds.
    c.sim.admin().add_fault(rule(
        FaultKind::Error { status: 477 },
        None,
        None,
        1.0,
        Some(1),
    ));
    let (s, _, h) = c.call("GET", "/crm/objects/2026-09/companies", None).await;
    assert_eq!(s, 477);
    assert!(h.contains_key("retry-after"));
}

//! Rate limits and counters (contract §3, §3.1, §8.2, §8.3).
mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn ten_second_bucket_gives_exact_429_and_headers() {
    let mut cfg = config();
    cfg.tier = hubspot_sim::Tier::Free;
    let c = start_with(cfg).await;
    // contract §3: Free/Starter = 100 per 10 s. The clock is frozen, so all requests share a window.
    for i in 0..100 {
        let (s, _, h) = c.call("GET", "/crm/objects/2026-09/companies", None).await;
        assert_eq!(s, 200);
        assert_eq!(h["x-hubspot-ratelimit-max"], "100");
        assert_eq!(
            h["x-hubspot-ratelimit-remaining"],
            (99 - i).to_string().as_str()
        );
        assert_eq!(h["x-hubspot-ratelimit-interval-milliseconds"], "10000");
        assert!(h.contains_key("x-hubspot-ratelimit-daily-remaining"));
    }
    let (s, v, h) = c.call("GET", "/crm/objects/2026-09/companies", None).await;
    // contract §3.1: TEN_SECONDLY_ROLLING body; Retry-After off by default.
    assert_eq!(s, 429);
    assert_eq!(v["status"], json!("error"));
    assert_eq!(
        v["message"],
        json!("You have reached your ten_secondly_rolling limit.")
    );
    assert_eq!(v["errorType"], json!("RATE_LIMIT"));
    assert_eq!(v["policyName"], json!("TEN_SECONDLY_ROLLING"));
    assert!(v["groupName"].as_str().unwrap().starts_with("publicapi:"));
    assert!(v["correlationId"].is_string());
    assert!(!h.contains_key("retry-after"));
    assert_eq!(h["x-hubspot-ratelimit-remaining"], "0");
    let counters = c.sim.admin().counters();
    assert_eq!(counters.rate_limited_ten_secondly, 1);
    assert_eq!(counters.max_requests_in_any_10s_window, 101);
    // The window rolls with the simulated clock.
    c.sim.admin().advance_clock(10_001);
    assert_eq!(c.get("/crm/objects/2026-09/companies").await.0, 200);
}

#[tokio::test]
async fn retry_after_is_switchable() {
    let mut cfg = config();
    cfg.ten_second_limit = Some(1);
    cfg.retry_after_on_429 = true;
    let c = start_with(cfg).await;
    c.get("/crm/objects/2026-09/companies").await;
    let (s, _, h) = c.call("GET", "/crm/objects/2026-09/companies", None).await;
    assert_eq!(s, 429);
    assert_eq!(h["retry-after"], "10");
}

#[tokio::test]
async fn search_has_its_own_secondly_bucket() {
    let c = start().await;
    // contract §2.5 / §8.2: 5 search requests per second; "You have reached your secondly limit."
    for _ in 0..5 {
        assert_eq!(
            c.post("/crm/objects/2026-09/companies/search", json!({}))
                .await
                .0,
            200
        );
    }
    let (s, v) = c
        .post("/crm/objects/2026-09/companies/search", json!({}))
        .await;
    assert_eq!(s, 429);
    assert_eq!(v["message"], json!("You have reached your secondly limit."));
    assert_eq!(v["errorType"], json!("RATE_LIMIT"));
    // contract §9: the search variant has no policyName.
    assert!(v.get("policyName").is_none());
    // Non-search requests still pass.
    assert_eq!(c.get("/crm/objects/2026-09/companies").await.0, 200);
    assert_eq!(
        c.sim
            .admin()
            .counters()
            .max_search_requests_in_any_1s_window,
        6
    );
    c.sim.admin().advance_clock(1001);
    assert_eq!(
        c.post("/crm/objects/2026-09/companies/search", json!({}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn daily_exhausted_gives_daily_body_until_midnight() {
    let c = start().await;
    c.sim.admin().exhaust_daily_limit();
    let (s, v, h) = c.call("GET", "/crm/objects/2026-09/companies", None).await;
    // contract §3.1: DAILY body.
    assert_eq!(s, 429);
    assert_eq!(v["message"], json!("You have reached your daily limit."));
    assert_eq!(v["policyName"], json!("DAILY"));
    assert_eq!(h["x-hubspot-ratelimit-daily-remaining"], "0");
    assert_eq!(c.sim.admin().counters().rate_limited_daily, 1);
    // contract §3: resets at midnight in the account's time zone (UTC here).
    c.sim.admin().advance_clock(86_400_000);
    assert_eq!(c.get("/crm/objects/2026-09/companies").await.0, 200);
}

#[tokio::test]
async fn counters_count_requests_per_route() {
    let c = start().await;
    c.get("/crm/objects/2026-09/companies").await;
    c.get("/crm/v3/objects/deals").await;
    let counters = c.sim.admin().counters();
    assert_eq!(
        counters.requests_per_route["GET /crm/objects/2026-09/{ty}"],
        1
    );
    assert_eq!(counters.requests_per_route["GET /crm/v3/objects/{ty}"], 1);
    // Also over the HTTP admin API.
    let v: serde_json::Value = c
        .http
        .get(c.url("/_sim/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["totalRequests"], json!(2));
}

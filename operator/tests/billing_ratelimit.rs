//! 429 policies against the simulator (contract §3.1, §8.2, §8.3): a budget shared with another
//! writer produces `TEN_SECONDLY_ROLLING` storms that the client waits out instead of
//! hammering: the whole window without `Retry-After`, only as long as it says with one;
//! searches stay under 5/s.
mod billing_support;

use billing_support::*;
use hubspot_sim::ObjectType;
use marketplace_operator::billing::{BillingRequest, HubSpotClient, Tier};
use serde_json::json;
use std::time::{Duration, Instant};

/// Another app of the same account spends the whole 10-second budget (contract §8.3).
async fn exhaust_window(base: &str, n: usize) {
    let http = reqwest::Client::new();
    let calls = (0..n).map(|_| {
        http.get(format!("{base}/crm/objects/2026-09/deals?limit=1"))
            .bearer_auth(TOKEN)
            .send()
    });
    for r in futures::future::join_all(calls).await {
        r.expect("noise call");
    }
}

/// How long before the storm the other app spent the window: the window then frees
/// `10 s - AGE` later, which is what a `Retry-After` says and the 10 s interval header does not.
const AGE: Duration = Duration::from_secs(5);
/// HubSpot's 10-second window, also its `X-HubSpot-RateLimit-Interval-Milliseconds`.
const WINDOW: Duration = Duration::from_secs(10);

/// How a storm went: the wall time of the eight ensures and the `Retry-After` a call made just
/// before them was given (none when the simulator sends none).
struct Storm {
    wall: Duration,
    retry_after: Option<Duration>,
}

async fn storm(retry_after: bool) -> Storm {
    let mut cfg = sim_config();
    cfg.retry_after_on_429 = retry_after;
    let sim = start(cfg).await;
    let c = ready(&sim, Tier::Professional).await;
    tokio::time::sleep(Duration::from_millis(10_200)).await;
    exhaust_window(&sim.base_url(), 190).await;
    tokio::time::sleep(AGE).await;
    // What the ensures' first calls are about to be told.
    let probe = reqwest::Client::new()
        .get(format!(
            "{}/crm/objects/2026-09/deals?limit=1",
            sim.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("probe call");
    assert_eq!(probe.status(), 429, "the window is still spent");
    let announced = probe
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .map(Duration::from_secs);
    let reqs: Vec<BillingRequest> = (0..8).map(request).collect();
    let started = Instant::now();
    let results = futures::future::join_all(reqs.iter().map(|r| {
        let c: HubSpotClient = c.clone();
        async move { c.ensure_billing_record(r).await }
    }))
    .await;
    let wall = started.elapsed();
    for r in results {
        r.expect("ensure after the storm");
    }
    for r in &reqs {
        assert_one_record(&sim, &r.subscription_uid);
    }
    let counters = sim.admin().counters();
    let got = c.stats().rate_limited;
    println!(
        "storm (retry-after {announced:?}): 429s {got}, wall {:.2}s, client requests {}",
        wall.as_secs_f64(),
        c.stats().requests
    );
    // Only the calls already in flight when the first 429 came back can meet the limit: the
    // eight reconciles' first calls. Then everybody waits; no second wave.
    assert!(got >= 1, "the storm did happen");
    assert!(got <= 8, "{got} 429s: the client kept hammering");
    assert_eq!(
        got + 1,
        counters.rate_limited_ten_secondly,
        "the probe's 429 too"
    );
    assert_eq!(counters.rate_limited_daily, 0);
    // What the metrics export: each request once by how it ended, and the waits the 429s made.
    let stats = c.stats();
    assert_eq!(stats.outcome("rate_limited"), got);
    assert_eq!(stats.outcomes.iter().sum::<u64>(), stats.requests);
    assert!(stats.rate_limit_waits >= 1 && stats.rate_limit_wait_micros > 0);
    Storm {
        wall,
        retry_after: announced,
    }
}

#[tokio::test]
async fn ten_secondly_storm_is_waited_out() {
    let storm = storm(false).await;
    assert_eq!(storm.retry_after, None);
    // No Retry-After: the client waits the whole window the interval header names.
    assert!(storm.wall >= WINDOW, "waited only {:?}", storm.wall);
}

#[tokio::test]
async fn ten_secondly_storm_honours_retry_after() {
    let storm = storm(true).await;
    let announced = storm.retry_after.expect("the simulator sent Retry-After");
    assert!(
        announced <= WINDOW - AGE + Duration::from_secs(1),
        "Retry-After {announced:?}: the window frees {:?} after the storm",
        WINDOW - AGE
    );
    // The client's own 429 came a moment after the probe's, so it was told at most one
    // (rounded) second less; it waited that long, and not the whole window.
    assert!(
        storm.wall >= announced.saturating_sub(Duration::from_secs(1)),
        "waited {:?}, less than Retry-After {announced:?}",
        storm.wall
    );
    assert!(
        storm.wall < WINDOW - Duration::from_secs(1),
        "waited {:?}: the whole window, not the Retry-After {announced:?}",
        storm.wall
    );
}

#[tokio::test]
async fn a_smaller_portal_bucket_is_adopted_from_the_headers() {
    let mut cfg = sim_config();
    cfg.ten_second_limit = Some(30);
    let sim = start(cfg).await;
    // Configured for Professional (190), the portal only allows 30.
    let c = ready(&sim, Tier::Professional).await;
    assert_eq!(c.limiter().capacity(), 30);
    let reqs: Vec<BillingRequest> = (0..3).map(request).collect();
    let results = futures::future::join_all(reqs.iter().map(|r| c.ensure_billing_record(r))).await;
    for r in results {
        r.expect("ensure");
    }
    let counters = sim.admin().counters();
    assert_eq!(counters.rate_limited_ten_secondly, 0, "{counters:?}");
    assert!(
        counters.max_requests_in_any_10s_window <= 30,
        "{counters:?}"
    );
}

#[tokio::test]
async fn product_searches_stay_under_five_per_second() {
    let sim = start(sim_config()).await;
    for n in 0..12 {
        sim.admin()
            .create_object(
                ObjectType::Products,
                serde_json::Map::from_iter([
                    ("name".to_string(), json!(format!("p{n}"))),
                    ("hs_sku".to_string(), json!(format!("sku-{n}"))),
                ]),
            )
            .expect("product");
    }
    let c = ready(&sim, Tier::Professional).await;
    let reqs: Vec<BillingRequest> = (0..12)
        .map(|n| BillingRequest {
            sku: format!("sku-{n}"),
            ..request(n)
        })
        .collect();
    let results = futures::future::join_all(reqs.iter().map(|r| c.ensure_billing_record(r))).await;
    for r in results {
        r.expect("ensure");
    }
    let counters = sim.admin().counters();
    assert_eq!(counters.rate_limited_secondly, 0, "{counters:?}");
    assert!(
        counters.max_search_requests_in_any_1s_window <= 5,
        "{counters:?}"
    );
    let with_product = live(&sim, ObjectType::LineItems)
        .iter()
        .filter(|li| li["properties"]["hs_product_id"].is_string())
        .count();
    assert_eq!(with_product, 12);
}

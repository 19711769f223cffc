//! contract §3: a burst of 1,000 operations never exceeds the 10-second bucket, counted on the
//! simulator's side, and finishes close to the minimum time the bucket allows. Alone in its test
//! binary so that no other test shares the machine's two cores while it is timed.
mod billing_support;

use billing_support::*;
use hubspot_sim::{ObjectType, SimConfig, Tier as SimTier};
use marketplace_operator::billing::{ApiToken, HubSpotClient, HubSpotConfig, Tier};
use serde_json::json;
use std::time::{Duration, Instant};

const OPS: usize = 1_000;
const LIMIT: usize = 250;
const WINDOW_S: f64 = 10.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_calls_stays_under_the_bucket_and_is_fast() {
    let sim = start(SimConfig {
        tier: SimTier::Increase,
        search_lag_ms: 0,
        ..SimConfig::default()
    })
    .await;
    // The subscription is created as HubSpot itself would, so the simulator's counters hold
    // only the burst.
    let sub = sim
        .admin()
        .create_object(
            ObjectType::Subscriptions,
            serde_json::Map::from_iter([
                ("hs_name".to_string(), json!("burst")),
                ("hs_status".to_string(), json!("active")),
            ]),
        )
        .expect("subscription")
        .to_string();
    // Production settings for the tier, including the default 100 ms margin.
    let cfg = HubSpotConfig::new(
        sim.base_url(),
        ApiToken::new(TOKEN).unwrap(),
        Tier::LimitIncrease,
    );
    let c = HubSpotClient::new(cfg).expect("client");
    let started = Instant::now();
    let tasks: Vec<_> = (0..OPS)
        .map(|_| {
            let c = c.clone();
            let sub = sub.clone();
            tokio::spawn(async move { c.read_status(&sub).await })
        })
        .collect();
    for t in tasks {
        let st = t.await.expect("join").expect("read");
        assert_eq!(st.status, "active");
    }
    let wall = started.elapsed();
    let counters = sim.admin().counters();
    // The bound: with a rolling window of LIMIT per 10 s, request k (0-based) cannot go out
    // before ⌊k / LIMIT⌋ · 10 s, so the last one leaves at ⌊(N-1)/LIMIT⌋ · 10 s at best.
    let minimum = Duration::from_secs_f64(((OPS - 1) / LIMIT) as f64 * WINDOW_S);
    let ratio = wall.as_secs_f64() / minimum.as_secs_f64();
    println!(
        "burst: {OPS} calls, limit {LIMIT}/10s, max in any 10 s window {}, 429s {}, wall {:.2}s, \
         minimum {:.0}s, ratio {ratio:.3}",
        counters.max_requests_in_any_10s_window,
        counters.rate_limited_ten_secondly,
        wall.as_secs_f64(),
        minimum.as_secs_f64()
    );
    assert_eq!(counters.total_requests, OPS as u64);
    assert!(
        counters.max_requests_in_any_10s_window <= LIMIT as u64,
        "{counters:?}"
    );
    assert_eq!(counters.rate_limited_ten_secondly, 0);
    assert_eq!(c.stats().rate_limited, 0);
    assert!(wall >= minimum, "faster than the bucket allows: {wall:?}");
    assert!(
        ratio <= 1.3,
        "wall {wall:?} is {ratio:.3}× the minimum {minimum:?}"
    );
}

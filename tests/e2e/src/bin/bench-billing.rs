//! `bench-billing`: the operator's HubSpot client against the in-process HubSpot simulator over
//! real HTTP on 127.0.0.1, with a configured tier. Runs N `ensure_billing_record` calls for new
//! tenant subscriptions, N more for the same ones (steady state), and an audit of all N, and
//! prints per phase: HubSpot calls per operation, the 429s received (counted by the simulator),
//! the most requests the simulator saw in any 10-second window, and the wall time as a ratio of
//! the rate-limit bound.
//!
//! The bound for a phase of R requests under a rolling window of L requests per 10 s, starting
//! from an empty window, is ⌊(R−1)/L⌋·10 s: request k cannot leave before ⌊k/L⌋·10 s.
//!
//!   scripts/bench-billing [--ops N] [--tier free|starter|professional|enterprise|increase]
//!                         [--concurrency C] [--search-lag-ms MS]

use clap::Parser;
use futures::StreamExt;
use hubspot_sim::{SimConfig, Simulator};
use marketplace_operator::billing::{
    ApiToken, BillingRequest, HubSpotClient, HubSpotConfig, HubSpotError,
};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Parser, Debug)]
#[command(about = "Benchmark the HubSpot billing client against the simulator")]
struct Args {
    /// Tenant subscriptions (operations per phase).
    #[arg(long, default_value_t = 200)]
    ops: usize,
    /// HubSpot tier of the simulated portal and of the client's limiter.
    #[arg(long, default_value = "professional")]
    tier: String,
    /// Operations in flight at once (reconcilers running in parallel).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Search index lag of the simulator (contract §8.1).
    #[arg(long, default_value_t = 2000)]
    search_lag_ms: u64,
}

fn request(n: usize) -> BillingRequest {
    BillingRequest {
        tenant_id: format!("bench-tenant-{}", n / 5),
        tenant_name: format!("Bench tenant {}", n / 5),
        subscription_uid: format!("b3c4e5f6-0000-4000-8000-{n:012}"),
        listing: "postgres".into(),
        plan: ["small", "medium", "large"][n % 3].into(),
        sku: format!("postgres-{}", ["small", "medium", "large"][n % 3]),
        quantity: 1 + (n % 4) as u32,
        unit_price: "19.90".into(),
        currency: "EUR".into(),
        interval: "monthly".into(),
        trial_days: (n % 2 * 14) as u32,
        start_date: jiff::civil::date(2026, 11, 22),
        discount: None,
    }
}

struct Phase<'a> {
    name: &'a str,
    ops: usize,
    limit: u64,
}

/// Runs `work`, then prints the phase's figures from the simulator's and the client's counters.
async fn phase<F, Fut>(
    p: Phase<'_>,
    sim: &hubspot_sim::RunningSimulator,
    client: &HubSpotClient,
    work: F,
) -> Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), HubSpotError>>,
{
    let before = sim.admin().counters();
    let before_client = client.stats();
    let started = Instant::now();
    work().await?;
    let wall = started.elapsed();
    let after = sim.admin().counters();
    let after_client = client.stats();
    let requests = after.total_requests - before.total_requests;
    let rejected = (after.rate_limited_ten_secondly - before.rate_limited_ten_secondly)
        + (after.rate_limited_secondly - before.rate_limited_secondly)
        + (after.rate_limited_daily - before.rate_limited_daily);
    let bound = Duration::from_secs(requests.saturating_sub(1) / p.limit * 10);
    let ratio = if bound.is_zero() {
        "n/a (fits in one window)".to_string()
    } else {
        format!("{:.3}", wall.as_secs_f64() / bound.as_secs_f64())
    };
    println!(
        "{:<16} ops {:>6}  calls {:>7}  calls/op {:>6.2}  429s {:>4} (client saw {})  \
         retries {:>3}  max/10s {:>4}/{}  wall {:>8.2}s  bound {:>5}s  wall/bound {}",
        p.name,
        p.ops,
        requests,
        requests as f64 / p.ops.max(1) as f64,
        rejected,
        after_client.rate_limited - before_client.rate_limited,
        after_client.retries - before_client.retries,
        after.max_requests_in_any_10s_window,
        p.limit,
        wall.as_secs_f64(),
        bound.as_secs(),
        ratio
    );
    Ok(())
}

async fn ensure_all(
    client: &HubSpotClient,
    ops: usize,
    concurrency: usize,
) -> std::result::Result<(), HubSpotError> {
    let results: Vec<_> = futures::stream::iter(0..ops)
        .map(|n| {
            let c = client.clone();
            async move { c.ensure_billing_record(&request(n)).await }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().try_for_each(|r| r.map(|_| ()))
}

/// Lets the previous phase's requests leave the rolling window, so each bound starts empty.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(10_300)).await;
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (tier, sim_tier) = marketplace_e2e::subscriptions::tiers(&args.tier)?;
    let limit = u64::from(tier.ten_second_limit());
    let sim = Simulator::start(SimConfig {
        tier: sim_tier,
        search_lag_ms: args.search_lag_ms,
        ..SimConfig::default()
    })
    .await?;
    let cfg = HubSpotConfig::new(
        sim.base_url(),
        ApiToken::new(SimConfig::default().token)?,
        tier,
    );
    let client = HubSpotClient::new(cfg)?;
    println!(
        "bench-billing: tier {} ({limit} per 10 s), {} ops, concurrency {}, search lag {} ms",
        args.tier, args.ops, args.concurrency, args.search_lag_ms
    );
    let report = client.bootstrap().await?;
    println!(
        "bootstrap: created {:?}, payments {:?}, {} calls",
        report.created_properties,
        report.payments,
        client.stats().requests
    );
    settle().await;
    let p = |name| Phase {
        name,
        ops: args.ops,
        limit,
    };
    phase(p("ensure (create)"), &sim, &client, || {
        ensure_all(&client, args.ops, args.concurrency)
    })
    .await?;
    settle().await;
    phase(p("ensure (steady)"), &sim, &client, || {
        ensure_all(&client, args.ops, args.concurrency)
    })
    .await?;
    settle().await;
    let uids: Vec<String> = (0..args.ops).map(|n| request(n).subscription_uid).collect();
    phase(p("audit"), &sim, &client, || async {
        let entries = client.audit(&uids).await?;
        let drifted = entries.iter().filter(|e| !e.drift().is_empty()).count();
        if drifted > 0 {
            eprintln!("audit: {drifted} records drifted");
        }
        Ok(())
    })
    .await?;
    let c = sim.admin().counters();
    println!(
        "total: {} calls, 429s ten-secondly {} / secondly {} / daily {}, max in any 10 s {} (limit {limit}), max searches in any 1 s {}",
        c.total_requests,
        c.rate_limited_ten_secondly,
        c.rate_limited_secondly,
        c.rate_limited_daily,
        c.max_requests_in_any_10s_window,
        c.max_search_requests_in_any_1s_window
    );
    sim.shutdown().await?;
    Ok(())
}

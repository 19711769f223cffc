//! The restart half of the scale run: the operator stops (its runtime and every task of it end,
//! as when its process dies) and a fresh one starts with empty caches. Timed: the resync (every
//! cache listed) and the first pass (every Tenant and TenantSubscription reconciled once). With
//! nothing to do, that pass must not call HubSpot at all (the new client's start-up bootstrap is
//! made, and counted, before the clock starts), and its apiserver writes are counted.

use std::time::{Duration, Instant};

use super::sim_process::SimProcess;
use kube::Client;
use marketplace_operator::billing::HubSpotClient;
use marketplace_operator::controllers::ControllerConfig;

use marketplace_e2e::controllers::reconciled;
use marketplace_harness::{apiserver_writes, writes_between};

use super::{Operator, Result, operator_caches, status_kib};

/// Longest a first pass may take before the run fails.
const FIRST_PASS_LIMIT: Duration = Duration::from_secs(1800);

pub async fn measure(
    client: &Client,
    kube_config: &kube::Config,
    sim: &SimProcess,
    hubspot: HubSpotClient,
    config: ControllerConfig,
    tenants: usize,
    total: usize,
) -> Result<()> {
    let rss_before = status_kib("VmRSS:").unwrap_or(0);
    // Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS, so the peak below
    // is this operator's start-up peak on top of what the process already held.
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let writes_before = apiserver_writes(client).await?;
    let sim_before = sim.counters().await?;
    let started = Instant::now();
    let operator = Operator::start(kube_config, config, hubspot)?;
    operator.ctx.stores.wait_until_ready().await;
    let resynced = started.elapsed();
    let (mut tenants_at, mut subscriptions_at) = (None, None);
    let first_pass = loop {
        let elapsed = started.elapsed();
        if tenants_at.is_none() && reconciled(&operator.ctx, "Tenant") >= tenants as u64 {
            tenants_at = Some(elapsed);
        }
        let done = reconciled(&operator.ctx, "TenantSubscription");
        if subscriptions_at.is_none() && done >= total as u64 {
            subscriptions_at = Some(elapsed);
        }
        if tenants_at.is_some() && subscriptions_at.is_some() {
            break elapsed;
        }
        if elapsed > FIRST_PASS_LIMIT {
            operator.stop().await;
            return Err(format!(
                "the first pass reconciled {done}/{total} subscriptions in {FIRST_PASS_LIMIT:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sim_after = sim.counters().await?;
    let written = writes_between(&writes_before, &apiserver_writes(client).await?);
    let peak = status_kib("VmHWM:").unwrap_or(0);
    let rss_after = status_kib("VmRSS:").unwrap_or(0);
    let caches = operator_caches(&operator.ctx);
    operator.stop().await;

    let calls = sim_after.total_requests - sim_before.total_requests;
    let writes_total: u64 = written.values().sum();
    println!(
        "  restart: a fresh operator (empty caches) over {total} subscriptions with nothing to do"
    );
    println!(
        "    resync (every cache listed)       {:>8.2} s",
        resynced.as_secs_f64()
    );
    let secs = |at: Option<Duration>| at.unwrap_or_default().as_secs_f64();
    println!(
        "    resync + first pass (all {tenants} tenants, {total} subscriptions reconciled) {:>8.2} s",
        first_pass.as_secs_f64()
    );
    println!(
        "      tenants done at {:.2} s, subscriptions done at {:.2} s",
        secs(tenants_at),
        secs(subscriptions_at)
    );
    println!("    HubSpot calls during it           {calls:>8}");
    println!("    apiserver writes during it        {writes_total:>8}  {written:?}");
    println!("    the fresh operator's caches after it: {caches}");
    println!(
        "    RSS before {:.1} MiB, after {:.1} MiB; peak during it {:.1} MiB{}",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        peak as f64 / 1024.0,
        if peak_reset {
            ""
        } else {
            " (peak not reset: the run's peak)"
        }
    );
    if calls > 0 {
        return Err(format!("the restart's first pass called HubSpot {calls} times").into());
    }
    Ok(())
}

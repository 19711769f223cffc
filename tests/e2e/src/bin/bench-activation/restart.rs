//! The restart half of the scale run: the operator's process stops and a new one starts with
//! empty caches, as when its pod is replaced. Timed: the resync (every cache listed) and the
//! first pass (every Tenant and TenantSubscription reconciled once). With nothing to do, that
//! pass must not call HubSpot at all (the new client's start-up bootstrap is made, and counted,
//! before the clock starts), and its apiserver writes are counted.

use std::time::{Duration, Instant};

use kube::Client;
use marketplace_harness::{apiserver_writes, writes_between};

use super::Result;
use super::operator_process::{OperatorProcess, OperatorSettings};
use super::sim_process::SimProcess;

/// Longest a first pass may take before the run fails.
const FIRST_PASS_LIMIT: Duration = Duration::from_secs(1800);

pub async fn measure(
    client: &Client,
    sim: &SimProcess,
    settings: &OperatorSettings,
    tenants: usize,
    total: usize,
) -> Result<()> {
    let mut operator = OperatorProcess::spawn(settings).await?;
    let writes_before = apiserver_writes(client).await?;
    let sim_before = sim.counters().await?;
    let started = Instant::now();
    operator.start_controllers().await?;
    let (mut resynced, mut tenants_at, mut subscriptions_at) = (None, None, None);
    let first_pass = loop {
        let elapsed = started.elapsed();
        let status = operator.status().await?;
        if resynced.is_none() && status.caches_ready {
            resynced = Some(elapsed);
        }
        if tenants_at.is_none() && status.tenant_reconciles >= tenants as u64 {
            tenants_at = Some(elapsed);
        }
        let done = status.subscription_reconciles;
        if subscriptions_at.is_none() && done >= total as u64 {
            subscriptions_at = Some(elapsed);
        }
        if tenants_at.is_some() && subscriptions_at.is_some() {
            break elapsed;
        }
        if elapsed > FIRST_PASS_LIMIT {
            operator.stop().await?;
            return Err(format!(
                "the first pass reconciled {done}/{total} subscriptions in {FIRST_PASS_LIMIT:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sim_after = sim.counters().await?;
    let written = writes_between(&writes_before, &apiserver_writes(client).await?);
    let peak = operator.peak_rss_kib().unwrap_or(0);
    let caches = operator.caches().await?;
    operator.stop().await?;

    let calls = sim_after.total_requests - sim_before.total_requests;
    let writes_total: u64 = written.values().sum();
    let secs = |at: Option<Duration>| at.unwrap_or_default().as_secs_f64();
    println!(
        "  restart: a new operator process (empty caches) over {total} subscriptions with nothing to do"
    );
    println!(
        "    resync (every cache listed)       {:>8.2} s",
        secs(resynced)
    );
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
    println!("    the new operator's caches after it: {caches}");
    println!(
        "    the new operator's peak RSS       {:>8.1} MiB",
        peak as f64 / 1024.0
    );
    if calls > 0 {
        return Err(format!("the restart's first pass called HubSpot {calls} times").into());
    }
    Ok(())
}

//! The restart half of the scale run: the operator stops (its runtime and every task of it end,
//! as when its process dies) and a fresh one starts with empty caches. Timed: the resync (every
//! cache listed) and the first pass (every TenantSubscription reconciled once). With nothing to
//! do, that pass must not call HubSpot at all (the new client's start-up bootstrap is made, and
//! counted, before the clock starts).

use std::time::{Duration, Instant};

use hubspot_sim::RunningSimulator;
use kube::Client;
use marketplace_operator::billing::HubSpotClient;
use marketplace_operator::controllers::ControllerConfig;

use super::{Operator, Result, delta, status_kib, writes};

/// Longest a first pass may take before the run fails.
const FIRST_PASS_LIMIT: Duration = Duration::from_secs(1800);

pub async fn measure(
    client: &Client,
    kube_config: &kube::Config,
    sim: &RunningSimulator,
    hubspot: HubSpotClient,
    config: ControllerConfig,
    total: usize,
) -> Result<()> {
    let rss_before = status_kib("VmRSS:").unwrap_or(0);
    // Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS, so the peak below
    // is this operator's start-up peak on top of what the process already held.
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let writes_before = writes(client).await?;
    let sim_before = sim.admin().counters();
    let started = Instant::now();
    let operator = Operator::start(kube_config, config, hubspot)?;
    operator.ctx.stores.wait_until_ready().await;
    let resynced = started.elapsed();
    let first_pass = loop {
        let done = reconciled(&operator.ctx.metrics.encode()?, "TenantSubscription");
        if done >= total as u64 {
            break started.elapsed();
        }
        if started.elapsed() > FIRST_PASS_LIMIT {
            operator.stop().await;
            return Err(format!(
                "the first pass reconciled {done}/{total} subscriptions in {FIRST_PASS_LIMIT:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sim_after = sim.admin().counters();
    let written = delta(&writes_before, &writes(client).await?);
    let peak = status_kib("VmHWM:").unwrap_or(0);
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
    println!(
        "    resync + first pass (all {total} reconciled) {:>8.2} s",
        first_pass.as_secs_f64()
    );
    println!("    HubSpot calls during it           {calls:>8}");
    println!("    apiserver writes during it        {writes_total:>8}  {written:?}");
    println!(
        "    RSS before {:.1} MiB; peak during it {:.1} MiB{}",
        rss_before as f64 / 1024.0,
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

/// Reconciles of `kind` counted in the operator's metrics text, whatever their result.
fn reconciled(metrics: &str, kind: &str) -> u64 {
    let label = format!("kind=\"{kind}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("marketplace_reconciles_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

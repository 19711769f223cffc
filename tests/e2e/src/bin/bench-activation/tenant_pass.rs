//! The Tenant pass of the benchmark: from the operator's start until every Tenant is Ready (its
//! namespace, RBAC and HubSpot company in place), as the operator's own Tenant cache shows it
//! (no polling of the apiserver being measured). Prints tenants per second and, per tenant, the
//! Tenant reconciles, apiserver requests (writes and reads, by resource) and HubSpot calls.

use std::time::{Duration, Instant};

use super::operator_process::OperatorProcess;
use super::sim_process::SimProcess;
use kube::Client;
use marketplace_harness::{apiserver_requests, writes_between};

use super::Result;

/// What was counted before the operator started.
pub struct Before {
    requests: marketplace_harness::WriteCounts,
    hubspot_calls: u64,
    started: Instant,
}

pub async fn before(client: &Client, sim: &SimProcess) -> Result<Before> {
    Ok(Before {
        requests: apiserver_requests(client).await?,
        hubspot_calls: sim.counters().await?.total_requests,
        started: Instant::now(),
    })
}

/// Waits until all `tenants` are Ready, failing when none becomes Ready for `stall`; prints the
/// pass's figures.
pub async fn wait_and_report(
    client: &Client,
    sim: &SimProcess,
    operator: &mut OperatorProcess,
    tenant_concurrency: u16,
    tenants: usize,
    stall: Duration,
    before: Before,
) -> Result<()> {
    let (mut seen, mut last_progress) = (0usize, Instant::now());
    loop {
        let done = operator.status().await?.tenants_ready;
        if done >= tenants {
            break;
        }
        if done > seen {
            (seen, last_progress) = (done, Instant::now());
        }
        if last_progress.elapsed() > stall {
            return Err(format!(
                "the Tenant pass stalled at {done}/{tenants} Ready for {} s",
                stall.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = before.started.elapsed();
    let requests = writes_between(&before.requests, &apiserver_requests(client).await?);
    let calls = sim.counters().await?.total_requests - before.hubspot_calls;
    let n = tenants as f64;
    let status = operator.status().await?;
    let reconciles = status.tenant_reconciles;
    println!(
        "  Tenant pass: {tenants} tenants Ready (namespace, RBAC, HubSpot company) in {:.1} s = \
         {:.1} tenants/s, tenant concurrency {}",
        took.as_secs_f64(),
        n / took.as_secs_f64(),
        tenant_concurrency
    );
    println!(
        "    Tenant reconciles {reconciles} ({:.2}/tenant), mean {:.0} ms each; HubSpot calls {calls} ({:.2}/tenant)",
        reconciles as f64 / n,
        status.tenant_reconcile_mean_ms,
        calls as f64 / n
    );
    let (mut writes, mut reads) = (0, 0);
    for ((resource, sub, verb), count) in &requests {
        if resource.is_empty() || verb == "WATCH" {
            continue; // /metrics, and long-running watches (a count of opened streams)
        }
        let is_write = matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "DELETE" | "APPLY");
        if is_write {
            writes += count;
        } else {
            reads += count;
        }
        let sub = if sub.is_empty() {
            String::new()
        } else {
            format!("/{sub}")
        };
        println!(
            "      {verb:<6} {resource}{sub}: {count} ({:.2}/tenant)",
            *count as f64 / n
        );
    }
    println!(
        "    apiserver writes {writes} ({:.2}/tenant), reads {reads} ({:.2}/tenant; the caches' \
         first lists included), both by every client (the control plane's own controllers too)",
        writes as f64 / n,
        reads as f64 / n
    );
    Ok(())
}

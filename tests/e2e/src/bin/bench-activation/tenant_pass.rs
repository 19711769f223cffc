//! The Tenant pass of the benchmark: from the operator's start until every Tenant is Ready (its
//! namespace, RBAC and HubSpot company in place), read from the operator's own Tenant cache (no
//! polling of the apiserver being measured). Prints tenants per second and, per tenant, the
//! Tenant reconciles, apiserver requests (writes and reads, by resource) and HubSpot calls.

use std::time::{Duration, Instant};

use super::sim_process::SimProcess;
use kube::Client;
use marketplace_e2e::controllers::reconciled;
use marketplace_harness::{apiserver_requests, writes_between};
use marketplace_operator::api::conditions::find_condition;
use marketplace_operator::api::conditions::types::READY;
use marketplace_operator::controllers::Context;

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

/// Tenants whose Ready condition is True in the operator's cache.
fn ready(ctx: &Context) -> usize {
    ctx.stores
        .tenants
        .state()
        .iter()
        .filter(|t| {
            t.status
                .as_ref()
                .and_then(|s| find_condition(&s.conditions, READY))
                .is_some_and(|c| c.status == "True")
        })
        .count()
}

/// Waits until all `tenants` are Ready, failing when none becomes Ready for `stall`; prints the
/// pass's figures.
pub async fn wait_and_report(
    client: &Client,
    sim: &SimProcess,
    ctx: &Context,
    tenants: usize,
    stall: Duration,
    before: Before,
) -> Result<()> {
    let (mut seen, mut last_progress) = (0usize, Instant::now());
    loop {
        let done = ready(ctx);
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
    let reconciles = reconciled(ctx, "Tenant");
    println!(
        "  Tenant pass: {tenants} tenants Ready (namespace, RBAC, HubSpot company) in {:.1} s = \
         {:.1} tenants/s, tenant concurrency {}",
        took.as_secs_f64(),
        n / took.as_secs_f64(),
        ctx.config.tenant_concurrency
    );
    println!(
        "    Tenant reconciles {reconciles} ({:.2}/tenant), mean {:.0} ms each; HubSpot calls {calls} ({:.2}/tenant)",
        reconciles as f64 / n,
        mean_reconcile_ms(ctx, "Tenant"),
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

/// The mean reconcile time of `kind`, from the operator's histogram.
fn mean_reconcile_ms(ctx: &Context, kind: &str) -> f64 {
    let text = ctx.metrics.encode().unwrap_or_default();
    let label = format!("kind=\"{kind}\"");
    let value = |metric: &str| {
        text.lines()
            .filter(|l| l.starts_with(metric) && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let count = value("marketplace_reconcile_duration_seconds_count{");
    value("marketplace_reconcile_duration_seconds_sum{") * 1000.0 / count.max(1.0)
}

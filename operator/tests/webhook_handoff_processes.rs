//! HubSpot may call any replica, proven with real processes: two `marketplace operator`s elect
//! a leader with a Lease on the real control plane, and the simulator's signed webhooks go to
//! the standby's port only. The standby marks the subscription in the cluster and the leader
//! suspends it within seconds. Then the leader is SIGKILLed right after the next delivery,
//! while its HubSpot calls are held, and the standby, once it holds the Lease, acts on the mark
//! it finds.
mod process_support;

use std::time::{Duration, Instant};

use hubspot_sim::{FaultKind, FaultRule, SimConfig};
use kube::ResourceExt;
use marketplace_operator::api::EntitlementState;
use marketplace_operator::api::conditions::types::SYNCED;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::lifecycle::billing_recheck::RECHECK_ANNOTATION;
use process_support::{Env, Operator, eventually};

const LEASE: &str = "marketplace-operator-handoff-test";
/// A webhook's effect, from delivery to the subscription's new phase ("within seconds").
const HANDOFF: Duration = Duration::from_secs(10);
/// Set-up steps: a process's start, a purchase, deliveries settling.
const SETTLE: Duration = Duration::from_secs(30);
/// The dead leader's Lease runs out (15 s), the standby takes it and syncs its caches.
const TAKEOVER: Duration = Duration::from_secs(40);

/// A replica serving webhooks on its own loopback port, and the URL HubSpot signs for it.
fn spawn_replica(env: &Env, name: &str, port: u16, client_secret: &str) -> (Operator, String) {
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}/webhooks/hubspot");
    let operator = env.spawn_operator_with(
        name,
        Some(LEASE),
        &[
            ("MARKETPLACE_LISTEN", listen.as_str()),
            ("HUBSPOT_CLIENT_SECRET", client_secret),
            ("HUBSPOT_WEBHOOK_URL", url.as_str()),
        ],
    );
    (operator, url)
}

/// The subscription's pending webhook mark, if any.
async fn mark(env: &Env, name: &str) -> Option<String> {
    let sub = env.tenant_subscriptions().get(name).await.ok()?;
    sub.annotations().get(RECHECK_ANNOTATION).cloned()
}

/// The news that changed the phase came from a webhook (the audit, every 600 s, did not run).
async fn assert_synced_by_a_webhook(env: &Env, name: &str) {
    let sub = env.tenant_subscriptions().get(name).await.expect("get");
    let synced = sub
        .status
        .and_then(|st| st.conditions.into_iter().find(|c| c.type_ == SYNCED))
        .map(|c| c.message)
        .unwrap_or_default();
    assert!(synced.contains("(webhook at "), "Synced: {synced}");
}

async fn assert_leads(env: &Env, replica: &str) {
    let holder = env.lease_holder(LEASE).await;
    assert_eq!(holder.as_deref(), Some(replica), "the Lease's holder");
}

async fn deliveries_settled(env: &Env) {
    eventually("webhook deliveries to settle", SETTLE, || async {
        (env.sim.admin().pending_webhook_events() == 0).then_some(())
    })
    .await;
}

async fn unmarked(env: &Env, name: &str) {
    eventually("the mark answered and removed", SETTLE, || async {
        mark(env, name).await.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_to_the_standby_process_reaches_the_leader_and_outlives_it() {
    let started = Instant::now();
    let sim_config = SimConfig {
        search_lag_ms: 0,
        webhook_retry_base_ms: 50,
        ..SimConfig::default()
    };
    let client_secret = sim_config.client_secret.clone();
    let env = Env::start_with("handoff", sim_config).await;
    let ports = marketplace_harness::process::free_ports(2).expect("free ports");

    // replica-a starts first and leads; replica-b is the standby HubSpot calls.
    let (mut leader, _) = spawn_replica(&env, "replica-a", ports[0], &client_secret);
    eventually("replica-a to lead", SETTLE, || async {
        (env.lease_holder(LEASE).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let (mut standby, standby_url) = spawn_replica(&env, "replica-b", ports[1], &client_secret);
    let http = reqwest::Client::new();
    let readyz = format!("http://127.0.0.1:{}/readyz", ports[1]);
    eventually("the standby to be ready", SETTLE, || async {
        let response = http.get(&readyz).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    env.sim.admin().set_webhook_url(Some(standby_url.clone()));

    let features = env.create_listing("hooked", "hooked").await;
    env.create_tenant().await;
    env.create_subscription("routes", "hooked").await;
    env.wait_phase("routes", Phase::Active, SETTLE).await;
    env.wait_entitlements("routes", &features, EntitlementState::Active)
        .await;
    let company: u64 = env
        .tenant_subscriptions()
        .get("routes")
        .await
        .expect("subscription")
        .status
        .and_then(|s| s.hubspot?.company_id)
        .and_then(|id| id.parse().ok())
        .expect("the subscription's HubSpot company");
    deliveries_settled(&env).await;
    unmarked(&env, "routes").await;

    // Payments fail: the past_due webhook goes to the standby, the leader suspends.
    env.sim.admin().set_company_payments_failing(company, true);
    let delivered = Instant::now();
    env.sim.admin().advance_clock(32 * 24 * 3600 * 1000);
    env.wait_phase("routes", Phase::Suspended, HANDOFF).await;
    let took = delivered.elapsed();
    assert_synced_by_a_webhook(&env, "routes").await;
    env.wait_entitlements("routes", &features, EntitlementState::Suspended)
        .await;
    let deliveries = env.sim.admin().webhook_deliveries();
    assert!(
        deliveries
            .iter()
            .any(|d| d.status.is_some_and(|s| (200..300).contains(&s))),
        "the standby accepted a delivery: {deliveries:?}"
    );
    assert!(
        deliveries.iter().all(|d| d.url == standby_url),
        "every delivery went to the standby: {deliveries:?}"
    );
    assert_leads(&env, "replica-a").await;
    unmarked(&env, "routes").await;
    eprintln!("webhook to the standby process → Suspended by the leader in {took:?}");

    // Payments recover. Every HubSpot call is held from now on, so the leader, which learns
    // of the recovery only from HubSpot, cannot act on the delivery; it is SIGKILLed once the
    // standby has marked the subscription and the leader's first call is held.
    const HOLD_CALLS: u32 = 1000;
    let held = env.sim.admin().add_fault(FaultRule {
        id: 0,
        method: None,
        path_contains: None,
        kind: FaultKind::Latency { ms: 60_000 },
        probability: 1.0,
        times: Some(HOLD_CALLS),
    });
    env.sim.admin().set_company_payments_failing(company, false);
    eventually("the mark, and the leader's call held", SETTLE, || async {
        let left = env.sim.admin().with_state(|st| {
            st.faults
                .rules
                .iter()
                .find(|r| r.id == held)
                .and_then(|r| r.times)
        });
        let called = left.is_some_and(|left| left < HOLD_CALLS);
        (called && mark(&env, "routes").await.is_some()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    leader.kill().await;
    let killed = Instant::now();
    env.sim.admin().clear_faults();
    assert_eq!(env.phase("routes").await, Some(Phase::Suspended));
    assert!(
        mark(&env, "routes").await.is_some(),
        "the mark outlives the leader"
    );

    // The standby takes the Lease and handles the mark it finds.
    env.wait_phase("routes", Phase::Active, TAKEOVER).await;
    let took = killed.elapsed();
    assert_synced_by_a_webhook(&env, "routes").await;
    env.wait_entitlements("routes", &features, EntitlementState::Active)
        .await;
    assert_leads(&env, "replica-b").await;
    unmarked(&env, "routes").await;
    eprintln!(
        "leader SIGKILLed after a delivery to the standby → Active by the next leader in {took:?}"
    );

    let exit = standby.terminate(Duration::from_secs(10)).await;
    assert!(
        exit.is_some_and(|e| e.success()),
        "SIGTERM: replica-b exited with {exit:?}\n{}",
        env.log_tails()
    );
    eprintln!("handoff test took {:?}", started.elapsed());
}

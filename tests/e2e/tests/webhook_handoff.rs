//! HubSpot may call any replica: a standby verifies a webhook and marks the subscription in
//! the cluster, and the leader acts on the mark; with no leader at the time, the next leader
//! does. (Its own binary: controllers of another suite on the same control plane would act on
//! this suite's subscriptions.)

use kube::ResourceExt;
use marketplace_e2e::controllers::{self, OperatorWorld};
use marketplace_e2e::eventually;
use marketplace_e2e::subscriptions::{
    CONVERGED, active_subscription, all_entitlements, condition, deliveries_settled, phase_of,
};
use marketplace_operator::api::EntitlementState;
use marketplace_operator::api::conditions::types::SYNCED;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::controllers::Enabled;
use marketplace_operator::lifecycle::billing_recheck::RECHECK_ANNOTATION;

#[tokio::test]
async fn a_webhook_to_a_standby_reaches_the_leader_and_outlives_it() {
    let world = OperatorWorld::start().await;
    let sim = &world.sim;
    // No audit: only the webhooks can tell.
    let replica = |name: &str| world.webhooks_only(name);
    // The standby serves the webhook endpoint and runs no controller; the leader runs them and
    // receives no webhook.
    let standby = replica("e2e-standby");
    let endpoint = world.webhook_endpoint(&standby).await;
    let leader = controllers::start(replica("e2e-leader"), Enabled::TENANTS_AND_SUBSCRIPTIONS);
    let (subs, entitlements, company, _) = active_subscription(&world.client).await;
    deliveries_settled(sim).await;

    // Payments fail: the past_due webhook lands on the standby, the leader suspends.
    sim.admin().set_company_payments_failing(company, true);
    let delivered = std::time::Instant::now();
    sim.admin().advance_clock(32 * 24 * 3600 * 1000);
    let suspended = phase_of(&subs, "routes", Phase::Suspended).await;
    let took = delivered.elapsed();
    assert!(
        condition(&suspended, SYNCED).contains("(webhook at "),
        "{}",
        condition(&suspended, SYNCED)
    );
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Suspended).await;
    assert!(standby.metrics.webhook_count("accepted") >= 1);
    eventually("the mark answered and removed", CONVERGED, || async {
        let sub = subs.get("routes").await.ok()?;
        (!sub.annotations().contains_key(RECHECK_ANNOTATION)).then_some(())
    })
    .await;
    eprintln!("webhook to the standby → Suspended by the leader in {took:?}");

    // The leader dies; payments recover meanwhile; the standby marks the subscription, and the
    // mark waits in the cluster (nothing acts on it yet).
    leader.stop().await;
    sim.admin().set_company_payments_failing(company, false);
    eventually("the recovery webhook marked", CONVERGED, || async {
        let sub = subs.get("routes").await.ok()?;
        sub.annotations()
            .contains_key(RECHECK_ANNOTATION)
            .then_some(())
    })
    .await;
    deliveries_settled(sim).await;
    assert_eq!(
        subs.get("routes")
            .await
            .expect("get")
            .status
            .and_then(|s| s.phase),
        Some(Phase::Suspended),
        "no leader, no change"
    );

    // The next leader, with caches of its own, handles the mark it finds.
    let next = controllers::start(
        replica("e2e-next-leader"),
        Enabled::TENANTS_AND_SUBSCRIPTIONS,
    );
    phase_of(&subs, "routes", Phase::Active).await;
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Active).await;
    eventually("the mark answered and removed", CONVERGED, || async {
        let sub = subs.get("routes").await.ok()?;
        (!sub.annotations().contains_key(RECHECK_ANNOTATION)).then_some(())
    })
    .await;
    next.stop().await;
    endpoint.stop().await;
}

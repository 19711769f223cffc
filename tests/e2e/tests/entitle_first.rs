//! EntitleFirst end to end on a real apiserver, with the operator's controllers in-process and
//! the HubSpot simulator over HTTP: a purchase is usable before its billing record exists; with
//! HubSpot failing, the grace passes and the subscription is Suspended with the reason (Ready
//! condition and a Warning Event); once HubSpot answers again it is billed and Active.
//! Its own binary: the simulator's faults here hit every request.

use std::sync::Arc;
use std::time::Duration;

use hubspot_sim::{FaultKind, FaultRule};
use k8s_openapi::api::events::v1::Event;
use kube::api::Api;
use kube::{Client, ResourceExt};
use marketplace_e2e::controllers::{self, OperatorWorld};
use marketplace_e2e::subscriptions::{
    CONVERGED, all_entitlements, apply, condition, entitlement_states, live_hubspot_subscriptions,
    phase_of, professional_tenant, purchase_routes, ready_reason,
};
use marketplace_e2e::{eventually, unique_name};
use marketplace_operator::api::conditions::types::BILLED;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{EntitlementState, Listing, TenantSubscription};
use marketplace_operator::controllers::backoff::Backoff;
use marketplace_operator::controllers::{ControllerConfig, Enabled};
use marketplace_operator::lifecycle::billing_order::{
    BILLING_NOT_ESTABLISHED, BillingOrderSettings,
};
use marketplace_operator::lifecycle::phase::activated_at;
use serde_json::json;

/// Short, so the suite sees it pass; billing without faults takes well under it.
const GRACE: jiff::SignedDuration = jiff::SignedDuration::from_secs(8);

/// Waits until `routes` is Active with both Entitlements Active, and returns it.
async fn usable(client: &Client, subs: &Api<TenantSubscription>) -> TenantSubscription {
    let namespace = subs.namespace().unwrap_or_default().to_string();
    let entitlements = Api::namespaced(client.clone(), &namespace);
    eventually("Active with Active Entitlements", CONVERGED, || async {
        let states = entitlement_states(&entitlements, "routes").await;
        let all_active =
            states.len() == 2 && states.iter().all(|(_, s)| *s == EntitlementState::Active);
        let sub = subs.get("routes").await.ok()?;
        (all_active && sub.status.as_ref()?.phase == Some(Phase::Active)).then_some(sub)
    })
    .await
}

#[tokio::test]
async fn entitle_first_grants_at_once_suspends_after_the_grace_and_recovers() {
    let world = OperatorWorld::start().await;
    let mut ctx = world.context(
        "e2e-entitle-first",
        ControllerConfig {
            audit_interval: Duration::from_secs(3600),
            billing_order: BillingOrderSettings {
                grace: GRACE,
                ..BillingOrderSettings::default()
            },
            ..ControllerConfig::default()
        },
    );
    // Failed billing calls are retried soon, so the suite sees the grace end and the recovery
    // within seconds.
    ctx.backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
    let running = controllers::start(
        Arc::new(ctx),
        Enabled {
            tenants: true,
            subscriptions: true,
            ..Enabled::NONE
        },
    );
    let (client, sim) = (world.client.clone(), &world.sim);
    let listing = unique_name("route-opt");
    apply(
        &Api::<Listing>::all(client.clone()),
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing", "metadata": {"name": listing},
               "spec": {"displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
                        "category": "Operations", "lifecycle": "Published",
                        "features": ["route_optimization", "eta_predictions"],
                        "plans": [{"name": "standard", "displayName": "Standard",
                                   "pricing": {"model": "Flat", "amount": "49.00", "currency": "USD", "interval": "Month"}}],
                        "billing": {"order": "EntitleFirst"}}}),
    )
    .await;

    // 1. Usable before billing completes: HubSpot's commerce subscriptions answer slowly.
    sim.admin().add_fault(FaultRule {
        id: 0,
        method: None,
        path_contains: Some("/subscriptions".into()),
        kind: FaultKind::Latency { ms: 3000 },
        probability: 1.0,
        times: None,
    });
    let namespace = professional_tenant(&client, "early").await;
    let subs = purchase_routes(&client, &namespace, &listing, 1).await;
    let active = usable(&client, &subs).await;
    let uid = active.uid().expect("uid");
    assert!(
        live_hubspot_subscriptions(sim, &uid).is_empty(),
        "usable before the billing record exists"
    );
    assert!(
        condition(&active, BILLED).starts_with("False"),
        "{}",
        condition(&active, BILLED)
    );
    let billed = eventually("Billed True", CONVERGED, || async {
        let s = subs.get("routes").await.ok()?;
        condition(&s, BILLED).starts_with("True").then_some(s)
    })
    .await;
    assert_eq!(billed.status.and_then(|s| s.phase), Some(Phase::Active));
    assert_eq!(live_hubspot_subscriptions(sim, &uid).len(), 1);
    sim.admin().clear_faults();

    // 2. HubSpot down: usable at once, Suspended with the reason once the grace passes.
    sim.admin().add_fault(FaultRule {
        id: 0,
        method: None,
        path_contains: None,
        kind: FaultKind::Error { status: 503 },
        probability: 1.0,
        times: None,
    });
    let namespace = professional_tenant(&client, "outage").await;
    let subs = purchase_routes(&client, &namespace, &listing, 1).await;
    let entered = usable(&client, &subs).await;
    assert!(condition(&entered, BILLED).starts_with("False"));
    // The grace runs from the activation the subscription records (whole seconds), not from
    // when this test saw it: a loaded machine may see it late.
    let entered_at = entered
        .status
        .as_ref()
        .and_then(activated_at)
        .expect("the activation in the subscription's history");
    let suspended = phase_of(&subs, "routes", Phase::Suspended).await;
    assert!(
        jiff::Timestamp::now() >= entered_at + GRACE,
        "suspended before the grace of {GRACE:#} from {entered_at} ended"
    );
    assert!(
        ready_reason(&suspended).starts_with(BILLING_NOT_ESTABLISHED),
        "{}",
        ready_reason(&suspended)
    );
    let entitlements = Api::namespaced(client.clone(), &namespace);
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Suspended).await;
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    eventually("a BillingNotEstablished Warning", CONVERGED, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some(BILLING_NOT_ESTABLISHED)
                    && e.type_.as_deref() == Some("Warning")
            })
            .then_some(())
    })
    .await;

    // 3. HubSpot back: billed, Active again, one live record.
    sim.admin().clear_faults();
    let recovered = usable(&client, &subs).await;
    assert!(
        condition(&recovered, BILLED).starts_with("True"),
        "{}",
        condition(&recovered, BILLED)
    );
    let uid = recovered.uid().expect("uid");
    assert_eq!(live_hubspot_subscriptions(sim, &uid).len(), 1);

    running.stop().await;
}

//! Subscriptions end to end on a real apiserver with the operator's controllers running
//! in-process against the HubSpot simulator over HTTP: instant activation with entitlements,
//! entitlement drift restored, payment failure found by the audit (Suspended) and recovery,
//! cancellation, deletion through the finalizer, the approval ladder moved only by
//! SubscriptionActions, and refusals with a clear condition.
//! One test: the controllers serve the whole cluster, so only one set runs here.

use std::sync::Arc;
use std::time::Duration;

use hubspot_sim::{ObjectType, SimConfig, Simulator};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use marketplace_e2e::{control_plane, eventually, unique_name};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{
    Entitlement, EntitlementState, Listing, SubscriptionAction, Tenant, TenantSubscription,
};
use marketplace_operator::billing::{ApiToken, HubSpotClient, HubSpotConfig, Tier};
use marketplace_operator::controllers::{
    Context, ControllerConfig, drift, subscription_action, tenant, tenant_subscription,
};
use serde_json::{Value, json};

const CONVERGED: Duration = Duration::from_secs(60);

async fn apply<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let name = object["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"))
}

fn listing(name: &str, extra: Value) -> Value {
    let mut spec = json!({
        "displayName": "Route Optimization",
        "tagline": "Fast routes",
        "type": "InApp",
        "category": "Operations",
        "lifecycle": "Published",
        "features": ["route_optimization", "eta_predictions"],
        "plans": [{
            "name": "standard",
            "displayName": "Standard",
            "pricing": {"model": "PerUnit", "amount": "12.00", "currency": "USD", "interval": "Month", "unit": "vehicle"},
            "trialDays": 14,
        }],
    });
    for (k, v) in extra.as_object().expect("object") {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing", "metadata": {"name": name}, "spec": spec})
}

fn subscription(name: &str, namespace: &str, listing: &str, extra: Value) -> TenantSubscription {
    let mut spec = json!({"listing": listing, "plan": "standard", "quantity": 3});
    for (k, v) in extra.as_object().expect("object") {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec,
    }))
    .expect("a TenantSubscription")
}

async fn phase_of(api: &Api<TenantSubscription>, name: &str, want: Phase) -> TenantSubscription {
    let what = format!("subscription {name} to reach {want:?}");
    eventually(&what, CONVERGED, || async {
        let s = api.get(name).await.ok()?;
        (s.status.as_ref()?.phase == Some(want)).then_some(s)
    })
    .await
}

async fn entitlement_states(api: &Api<Entitlement>, sub: &str) -> Vec<(String, EntitlementState)> {
    let mut out: Vec<_> = api
        .list(&Default::default())
        .await
        .expect("entitlements")
        .items
        .into_iter()
        .filter(|e| e.spec.source_subscription == sub)
        .map(|e| (e.spec.feature.as_str().to_string(), e.spec.state))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn all_entitlements(api: &Api<Entitlement>, sub: &str, state: EntitlementState) {
    let what = format!("entitlements of {sub} to be {state:?}");
    eventually(&what, CONVERGED, || async {
        let states = entitlement_states(api, sub).await;
        (states.len() == 2 && states.iter().all(|(_, s)| *s == state)).then_some(())
    })
    .await;
}

fn ready_reason(s: &TenantSubscription) -> String {
    s.status
        .as_ref()
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_default()
}

/// Live (not canceled) HubSpot subscriptions billing `uid`.
fn live_hubspot_subscriptions(sim: &hubspot_sim::RunningSimulator, uid: &str) -> Vec<Value> {
    let admin = sim.admin();
    let deals: Vec<Value> = admin
        .objects(ObjectType::Deals)
        .into_iter()
        .filter(|d| d["properties"]["mkt_subscription_uid"] == uid)
        .collect();
    let mut out = Vec::new();
    for deal in deals {
        let id: u64 = deal["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("deal id");
        for sub_id in admin.associated(ObjectType::Deals, id, ObjectType::Subscriptions) {
            let sub = admin
                .objects(ObjectType::Subscriptions)
                .into_iter()
                .find(|s| s["id"].as_str() == Some(sub_id.to_string().as_str()));
            if let Some(sub) = sub
                && sub["properties"]["hs_status"] != "canceled"
            {
                out.push(sub);
            }
        }
    }
    out
}

#[tokio::test]
async fn subscriptions_are_billed_entitled_healed_and_cancelled() {
    let control_plane = control_plane().await;
    let client: Client = control_plane.client().await.expect("client");
    let operator_namespace = control_plane
        .create_namespace("marketplace")
        .await
        .expect("operator namespace");
    let sim = Simulator::start(SimConfig {
        search_lag_ms: 0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let mut hubspot_config = HubSpotConfig::new(
        sim.base_url(),
        ApiToken::new("pat-na1-simulator-token").expect("token"),
        Tier::Professional,
    );
    hubspot_config.rate_limits.margin = Duration::from_millis(20);
    let hubspot = HubSpotClient::new(hubspot_config).expect("hubspot client");
    hubspot.bootstrap().await.expect("bootstrap");
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            ControllerConfig {
                namespace: operator_namespace.clone(),
                // The test runs audits itself.
                audit_interval: Duration::from_secs(3600),
                ..ControllerConfig::default()
            },
            Some("e2e-subscription".into()),
        )
        .with_billing(hubspot.clone()),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let controllers = tokio::spawn({
        let ctx = ctx.clone();
        let (a, b, c) = (until_stopped(), until_stopped(), until_stopped());
        async move {
            tokio::join!(
                tenant::run(ctx.clone(), a),
                tenant_subscription::run(ctx.clone(), b),
                subscription_action::run(ctx, c),
            );
        }
    });

    // Catalog and tenant.
    let listings: Api<Listing> = Api::all(client.clone());
    let instant = unique_name("route-opt");
    let approval = unique_name("dedicated-support");
    let soon = unique_name("ai-dispatch");
    apply(&listings, listing(&instant, json!({}))).await;
    apply(
        &listings,
        listing(&approval, json!({"activation": "Approval"})),
    )
    .await;
    apply(
        &listings,
        listing(&soon, json!({"lifecycle": "ComingSoon"})),
    )
    .await;
    let tenant_name = unique_name("acme");
    let tenants: Api<Tenant> = Api::all(client.clone());
    apply(
        &tenants,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": tenant_name},
               "spec": {"displayName": "Acme Logistics", "basePlan": "Professional",
                        "billingContact": {"name": "Ann Example", "email": "ann@acme.example"}}}),
    )
    .await;
    let namespace = format!("tenant-{tenant_name}");
    eventually("the tenant namespace", CONVERGED, || async {
        let t = tenants.get(&tenant_name).await.ok()?;
        t.status?.namespace
    })
    .await;
    let subs: Api<TenantSubscription> = Api::namespaced(client.clone(), &namespace);
    let entitlements: Api<Entitlement> = Api::namespaced(client.clone(), &namespace);

    // Instant: Requested → Provisioning → Active, one HubSpot subscription, two Entitlements.
    subs.create(
        &PostParams::default(),
        &subscription("routes", &namespace, &instant, json!({})),
    )
    .await
    .expect("create");
    let active = phase_of(&subs, "routes", Phase::Active).await;
    let status = active.status.clone().expect("status");
    let phases: Vec<Phase> = status.history.iter().map(|t| t.to).collect();
    assert_eq!(phases, vec![Phase::Provisioning, Phase::Active]);
    let ids = status.hubspot.clone().expect("hubspot ids");
    assert!(
        ids.deal_id.is_some() && ids.subscription_id.is_some(),
        "{ids:?}"
    );
    assert!(
        active
            .finalizers()
            .iter()
            .any(|f| f == tenant_subscription::FINALIZER)
    );
    all_entitlements(&entitlements, "routes", EntitlementState::Active).await;
    let uid = active.uid().expect("uid");
    assert_eq!(live_hubspot_subscriptions(&sim, &uid).len(), 1);

    // Drift in the cluster: an Entitlement deleted or edited by hand is restored.
    let first = format!("routes-eta-predictions");
    entitlements
        .delete(&first, &DeleteParams::default())
        .await
        .expect("delete entitlement");
    all_entitlements(&entitlements, "routes", EntitlementState::Active).await;
    entitlements
        .patch(
            &first,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"state": "Revoked"}})),
        )
        .await
        .expect("edit entitlement");
    all_entitlements(&entitlements, "routes", EntitlementState::Active).await;

    // Payment failure in HubSpot, found by the audit: Suspended; recovery: Active.
    let company: u64 = ids
        .company_id
        .as_deref()
        .and_then(|s| s.parse().ok())
        .expect("company");
    sim.admin().set_company_payments_failing(company, true);
    sim.admin().advance_clock(32 * 24 * 3600 * 1000);
    let report = drift::audit_once(&ctx, &hubspot).await;
    assert!(
        report.findings.iter().any(|f| f.contains("routes")),
        "audit should report the payment problem: {report:?}"
    );
    let suspended = phase_of(&subs, "routes", Phase::Suspended).await;
    assert!(
        ready_reason(&suspended).starts_with("PaymentFailed"),
        "{}",
        ready_reason(&suspended)
    );
    all_entitlements(&entitlements, "routes", EntitlementState::Suspended).await;
    sim.admin().set_company_payments_failing(company, false);
    drift::audit_once(&ctx, &hubspot).await;
    phase_of(&subs, "routes", Phase::Active).await;
    all_entitlements(&entitlements, "routes", EntitlementState::Active).await;
    assert_eq!(live_hubspot_subscriptions(&sim, &uid).len(), 1);

    // A record cancelled by hand in HubSpot is recreated (the cluster says the tenant has it).
    let sub_id = status
        .hubspot
        .as_ref()
        .and_then(|h| h.subscription_id.clone())
        .expect("id");
    hubspot
        .cancel_subscription(&sub_id)
        .await
        .expect("cancel by hand");
    let report = drift::audit_once(&ctx, &hubspot).await;
    assert!(
        report.findings.iter().any(|f| f.contains("cancelled")),
        "{report:?}"
    );
    eventually("a new live HubSpot subscription", CONVERGED, || async {
        (live_hubspot_subscriptions(&sim, &uid).len() == 1).then_some(())
    })
    .await;

    // Refusals: a second subscription to the same listing, and a ComingSoon listing.
    subs.create(
        &PostParams::default(),
        &subscription("routes-again", &namespace, &instant, json!({})),
    )
    .await
    .expect("create");
    let again = phase_of(&subs, "routes-again", Phase::Rejected).await;
    assert!(
        ready_reason(&again).starts_with("AlreadySubscribed"),
        "{}",
        ready_reason(&again)
    );
    subs.create(
        &PostParams::default(),
        &subscription("dispatch", &namespace, &soon, json!({})),
    )
    .await
    .expect("create");
    let refused = phase_of(&subs, "dispatch", Phase::Rejected).await;
    assert!(
        ready_reason(&refused).contains("coming soon"),
        "{}",
        ready_reason(&refused)
    );
    assert!(
        entitlement_states(&entitlements, "dispatch")
            .await
            .is_empty()
    );

    // Approval ladder: only SubscriptionActions move it; a misfit is Refused with the reason.
    subs.create(
        &PostParams::default(),
        &subscription("support", &namespace, &approval, json!({})),
    )
    .await
    .expect("create");
    let waiting = phase_of(&subs, "support", Phase::Requested).await;
    eventually("AwaitingInvoice", CONVERGED, || async {
        let s = subs.get("support").await.ok()?;
        ready_reason(&s)
            .starts_with("AwaitingInvoice")
            .then_some(())
    })
    .await;
    assert!(live_hubspot_subscriptions(&sim, &waiting.uid().expect("uid")).is_empty());
    let actions: Api<SubscriptionAction> = Api::namespaced(client.clone(), &operator_namespace);
    let act = |name: &str, action: &str, extra: Value| {
        let mut spec = json!({"subscriptionRef": {"namespace": namespace, "name": "support"}, "action": action});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        let name = unique_name(name);
        let object: SubscriptionAction = serde_json::from_value(json!({
            "apiVersion": "marketplace.dev/v1alpha1", "kind": "SubscriptionAction",
            "metadata": {"name": name, "namespace": operator_namespace}, "spec": spec,
        }))
        .expect("action");
        let actions = actions.clone();
        async move {
            actions
                .create(&PostParams::default(), &object)
                .await
                .expect("create action");
            eventually("the action's result", CONVERGED, || async {
                let a = actions.get(&name).await.ok()?;
                let st = a.status?;
                Some((format!("{:?}", st.result?), st.message.unwrap_or_default()))
            })
            .await
        }
    };
    let (result, message) = act("approve-early", "Approve", json!({})).await;
    assert_eq!(result, "Refused");
    assert!(
        message.contains("Requested") && message.contains("Paid"),
        "{message}"
    );
    let (result, _) = act(
        "invoice",
        "Invoice",
        json!({"invoice": {"amount": "1200.00", "currency": "USD"}}),
    )
    .await;
    assert_eq!(result, "Accepted");
    phase_of(&subs, "support", Phase::Invoiced).await;
    assert_eq!(act("paid", "MarkPaid", json!({})).await.0, "Accepted");
    phase_of(&subs, "support", Phase::Paid).await;
    assert_eq!(act("approve", "Approve", json!({})).await.0, "Accepted");
    let support = phase_of(&subs, "support", Phase::Active).await;
    let phases: Vec<Phase> = support
        .status
        .expect("status")
        .history
        .iter()
        .map(|t| t.to)
        .collect();
    assert_eq!(
        phases,
        vec![
            Phase::Requested,
            Phase::Invoiced,
            Phase::Paid,
            Phase::Provisioning,
            Phase::Active
        ]
    );
    all_entitlements(&entitlements, "support", EntitlementState::Active).await;

    // Cancellation, effective immediately: HubSpot cancelled, entitlements Revoked.
    subs.patch(
        "routes",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"cancellation": {"effective": "Immediately", "reason": "switching"}}}),
        ),
    )
    .await
    .expect("cancel");
    phase_of(&subs, "routes", Phase::Cancelled).await;
    all_entitlements(&entitlements, "routes", EntitlementState::Revoked).await;
    assert!(live_hubspot_subscriptions(&sim, &uid).is_empty());

    // Deletion of a live subscription: the finalizer cancels billing before it goes.
    let support_uid = subs
        .get("support")
        .await
        .expect("support")
        .uid()
        .expect("uid");
    subs.delete("support", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the deleted subscription to go", CONVERGED, || async {
        subs.get_opt("support").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(live_hubspot_subscriptions(&sim, &support_uid).is_empty());

    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(30), controllers)
        .await
        .expect("controllers stop")
        .expect("controllers");
}

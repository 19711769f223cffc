//! Subscriptions end to end on a real apiserver with the operator's controllers running
//! in-process against the HubSpot simulator over HTTP: instant activation with entitlements,
//! entitlement drift restored, payment failure found by the audit (Suspended) and recovery,
//! cancellation, deletion through the finalizer, the approval ladder moved only by
//! SubscriptionActions, and refusals with a clear condition.
//! One test: the controllers serve the whole cluster, so only one set runs here.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use marketplace_e2e::controllers::{self, OperatorWorld};
use marketplace_e2e::subscriptions::{
    CONVERGED, all_entitlements, apply, entitlement_states, live_hubspot_subscriptions, phase_of,
    ready_reason,
};
use marketplace_e2e::tenants::tenant;
use marketplace_e2e::{eventually, unique_name};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{
    Entitlement, EntitlementState, Listing, SubscriptionAction, Tenant, TenantSubscription,
};
use marketplace_operator::billing::{HubSpotClient, OrphanSweeper};
use marketplace_operator::controllers::{Context, ControllerConfig, Enabled, billing_audit};
use serde_json::{Value, json};

/// A sweeper that only marks: these scenarios share the simulator with others that are
/// between their creates, and the sweep itself is proven by the operator process tests.
fn marking_sweeper() -> OrphanSweeper {
    OrphanSweeper::new(Duration::from_secs(3600))
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

/// What every scenario shares: one control plane, one simulator, one set of controllers.
struct Env {
    client: Client,
    sim: hubspot_sim::RunningSimulator,
    hubspot: HubSpotClient,
    ctx: Arc<Context>,
    control_plane: &'static marketplace_harness::ControlPlane,
    operator_namespace: String,
}

impl Env {
    /// A new Tenant (spec merged over a default) and its namespace, once the operator made it.
    async fn tenant(&self, base: &str, extra: Value) -> (String, String) {
        tenant(&self.client, base, extra).await
    }

    async fn listing(&self, base: &str, extra: Value) -> String {
        let name = unique_name(base);
        apply(
            &Api::<Listing>::all(self.client.clone()),
            listing(&name, extra),
        )
        .await;
        name
    }
}

#[tokio::test]
async fn subscriptions_are_billed_entitled_healed_and_cancelled() {
    let world = OperatorWorld::start().await;
    let ctx = Arc::new(world.context(
        "e2e-subscription",
        ControllerConfig {
            // The test runs audits itself.
            audit_interval: Duration::from_secs(3600),
            orphan_grace: Duration::ZERO,
            ..ControllerConfig::default()
        },
    ));
    let running = controllers::start(
        ctx.clone(),
        Enabled {
            tenants: true,
            subscriptions: true,
            actions: true,
            ..Enabled::NONE
        },
    );

    let OperatorWorld {
        control_plane,
        client,
        operator_namespace,
        sim,
        hubspot,
        ..
    } = world;
    let env = Env {
        client,
        sim,
        hubspot,
        ctx,
        control_plane,
        operator_namespace,
    };
    tokio::join!(
        lifecycle(&env),
        suspension_and_trial(&env),
        provisioning_failure_and_rollback(&env),
        refusals_and_rbac(&env),
        integration_connections(&env),
        orphaned_billing(&env),
    );

    running.stop().await;
}

/// Instant activation, drift healing, payment failure, approval ladder, cancellation, deletion.
async fn lifecycle(env: &Env) {
    // Catalog and tenant.
    let (client, sim, hubspot, ctx) = (&env.client, &env.sim, &env.hubspot, &env.ctx);
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
    let (_, namespace) = env.tenant("acme", json!({})).await;
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
            .any(|f| f == marketplace_operator::controllers::tenant_subscription::FINALIZER)
    );
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Active).await;
    let uid = active.uid().expect("uid");
    assert_eq!(live_hubspot_subscriptions(sim, &uid).len(), 1);

    // Drift in the cluster: an Entitlement deleted or edited by hand is restored.
    let first = "routes-eta-predictions";
    entitlements
        .delete(first, &DeleteParams::default())
        .await
        .expect("delete entitlement");
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Active).await;
    entitlements
        .patch(
            first,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"state": "Revoked"}})),
        )
        .await
        .expect("edit entitlement");
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Active).await;

    // Payment failure in HubSpot, found by the audit: Suspended; recovery: Active.
    let company: u64 = ids
        .company_id
        .as_deref()
        .and_then(|s| s.parse().ok())
        .expect("company");
    sim.admin().set_company_payments_failing(company, true);
    sim.admin().advance_clock(32 * 24 * 3600 * 1000);
    let report = billing_audit::audit_once(ctx, hubspot, &mut marking_sweeper()).await;
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
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Suspended).await;
    sim.admin().set_company_payments_failing(company, false);
    billing_audit::audit_once(ctx, hubspot, &mut marking_sweeper()).await;
    phase_of(&subs, "routes", Phase::Active).await;
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Active).await;
    assert_eq!(live_hubspot_subscriptions(sim, &uid).len(), 1);

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
    let report = billing_audit::audit_once(ctx, hubspot, &mut marking_sweeper()).await;
    assert!(
        report.findings.iter().any(|f| f.contains("cancelled")),
        "{report:?}"
    );
    eventually("a new live HubSpot subscription", CONVERGED, || async {
        (live_hubspot_subscriptions(sim, &uid).len() == 1).then_some(())
    })
    .await;

    // A plan change in service (quantity 3 → 5): the old HubSpot subscription ends, a new one
    // bills the new quantity under the same deal; still exactly one live record.
    subs.patch(
        "routes",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"quantity": 5}})),
    )
    .await
    .expect("change quantity");
    let rebilled = eventually("the new quantity to be billed", CONVERGED, || async {
        let s = subs.get("routes").await.ok()?;
        let ids = s.status.as_ref()?.hubspot.clone()?;
        (ids.billed_quantity == Some(5)).then_some(ids)
    })
    .await;
    assert_eq!(rebilled.deal_id, ids.deal_id, "same deal");
    assert_eq!(live_hubspot_subscriptions(sim, &uid).len(), 1);
    assert_eq!(
        subs.get("routes")
            .await
            .expect("routes")
            .status
            .expect("status")
            .phase,
        Some(Phase::Active)
    );

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
    assert!(live_hubspot_subscriptions(sim, &waiting.uid().expect("uid")).is_empty());
    let (result, message) = act(env, &namespace, "support", "Approve", json!({})).await;
    assert_eq!(result, "Refused");
    assert!(
        message.contains("Requested") && message.contains("Paid"),
        "{message}"
    );
    let (result, _) = act(
        env,
        &namespace,
        "support",
        "Invoice",
        json!({"invoice": {"amount": "1200.00", "currency": "USD"}}),
    )
    .await;
    assert_eq!(result, "Accepted");
    phase_of(&subs, "support", Phase::Invoiced).await;
    assert_eq!(
        act(env, &namespace, "support", "MarkPaid", json!({}))
            .await
            .0,
        "Accepted"
    );
    phase_of(&subs, "support", Phase::Paid).await;
    assert_eq!(
        act(env, &namespace, "support", "Approve", json!({}))
            .await
            .0,
        "Accepted"
    );
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
    all_entitlements(&entitlements, "support", 2, EntitlementState::Active).await;

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
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Revoked).await;
    assert!(live_hubspot_subscriptions(sim, &uid).is_empty());

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
    assert!(live_hubspot_subscriptions(sim, &support_uid).is_empty());
}

/// Creates a SubscriptionAction on `namespace/sub` and waits for its result and message.
async fn act(
    env: &Env,
    namespace: &str,
    sub: &str,
    action: &str,
    extra: Value,
) -> (String, String) {
    let actions: Api<SubscriptionAction> =
        Api::namespaced(env.client.clone(), &env.operator_namespace);
    let mut spec =
        json!({"subscriptionRef": {"namespace": namespace, "name": sub}, "action": action});
    for (k, v) in extra.as_object().expect("object") {
        spec[k] = v.clone();
    }
    let name = unique_name(&action.to_lowercase());
    let object: SubscriptionAction = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "SubscriptionAction",
        "metadata": {"name": name, "namespace": env.operator_namespace}, "spec": spec,
    }))
    .expect("action");
    actions
        .create(&PostParams::default(), &object)
        .await
        .expect("create action");
    eventually("the action's result", CONVERGED, || async {
        let st = actions.get(&name).await.ok()?.status?;
        Some((format!("{:?}", st.result?), st.message.unwrap_or_default()))
    })
    .await
}

/// Touches a subscription so its controller looks again now (an annotation; no new generation).
async fn nudge(subs: &Api<TenantSubscription>, name: &str) {
    let stamp = format!("{:?}", std::time::SystemTime::now());
    subs.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"e2e/nudge": stamp}}})),
    )
    .await
    .expect("nudge");
}

/// A trial runs with Trialing entitlements that end with it; a suspended tenant's
/// entitlements are Suspended (its data kept) and come back when it is unsuspended.
async fn suspension_and_trial(env: &Env) {
    let listing = env.listing("fleet-eta", json!({})).await;
    let (tenant, namespace) = env.tenant("suspend", json!({})).await;
    let subs: Api<TenantSubscription> = Api::namespaced(env.client.clone(), &namespace);
    let entitlements: Api<Entitlement> = Api::namespaced(env.client.clone(), &namespace);
    subs.create(
        &PostParams::default(),
        &subscription("eta", &namespace, &listing, json!({"trial": true})),
    )
    .await
    .expect("create");
    let trialing = phase_of(&subs, "eta", Phase::Trialing).await;
    let ends = trialing
        .status
        .and_then(|s| s.trial_ends_at)
        .expect("trial end")
        .0;
    let days = ends.duration_since(jiff::Timestamp::now()).as_hours() / 24;
    assert!((13..=14).contains(&days), "trial ends in {days} days");
    all_entitlements(&entitlements, "eta", 2, EntitlementState::Trialing).await;
    let ent = entitlements
        .get("eta-route-optimization")
        .await
        .expect("entitlement");
    assert_eq!(ent.spec.ends_at.map(|t| t.0), Some(ends));

    let tenants: Api<Tenant> = Api::all(env.client.clone());
    let suspend = |on: bool| {
        let tenants = tenants.clone();
        let tenant = tenant.clone();
        async move {
            tenants
                .patch(
                    &tenant,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"suspended": on}})),
                )
                .await
                .expect("suspend");
        }
    };
    suspend(true).await;
    let suspended = phase_of(&subs, "eta", Phase::Suspended).await;
    assert!(
        ready_reason(&suspended).starts_with("TenantSuspended"),
        "{}",
        ready_reason(&suspended)
    );
    all_entitlements(&entitlements, "eta", 2, EntitlementState::Suspended).await;
    suspend(false).await;
    phase_of(&subs, "eta", Phase::Trialing).await;
    all_entitlements(&entitlements, "eta", 2, EntitlementState::Trialing).await;
}

/// Billing succeeds but the apiserver refuses the Entitlements (an admission policy): the
/// subscription stays Provisioning with Ready=False Retrying and a Warning Event; a Rollback
/// action cancels the HubSpot subscription and marks it Failed.
async fn provisioning_failure_and_rollback(env: &Env) {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    use k8s_openapi::api::events::v1::Event;
    let listing = env.listing("frozen", json!({})).await;
    let (_, namespace) = env.tenant("frozen", json!({})).await;
    let policy_name = unique_name("freeze-entitlements");
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(env.client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(env.client.clone());
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": policy_name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["marketplace.dev"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"], "resources": ["entitlements"]}]},
            "validations": [{"expression": "false", "message": "entitlements are frozen in this namespace"}],
        }
    }))
    .expect("policy");
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": policy_name},
        "spec": {"policyName": policy_name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}
    }))
    .expect("binding");
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");
    // The apiserver enforces a new policy once its informer has it: probe with a dry run.
    let entitlements: Api<Entitlement> = Api::namespaced(env.client.clone(), &namespace);
    let probe: Entitlement = serde_json::from_value(json!({
        "metadata": {"name": "probe"},
        "spec": {"tenant": "x", "feature": "probe_feature", "state": "Active",
                 "startsAt": "2026-01-01T00:00:00Z", "sourceSubscription": "probe"}
    }))
    .expect("probe");
    eventually("the admission policy to deny", CONVERGED, || async {
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        entitlements
            .create(&dry, &probe)
            .await
            .is_err()
            .then_some(())
    })
    .await;

    let subs: Api<TenantSubscription> = Api::namespaced(env.client.clone(), &namespace);
    subs.create(
        &PostParams::default(),
        &subscription("frozen", &namespace, &listing, json!({})),
    )
    .await
    .expect("create");
    let stuck = eventually("Provisioning with Retrying", CONVERGED, || async {
        let s = subs.get("frozen").await.ok()?;
        let retrying = s.status.as_ref()?.phase == Some(Phase::Provisioning)
            && ready_reason(&s).starts_with("Retrying");
        retrying.then_some(s)
    })
    .await;
    assert!(
        ready_reason(&stuck).contains("frozen"),
        "{}",
        ready_reason(&stuck)
    );
    let uid = stuck.uid().expect("uid");
    assert_eq!(
        live_hubspot_subscriptions(&env.sim, &uid).len(),
        1,
        "billing was done"
    );
    let events: Api<Event> = Api::namespaced(env.client.clone(), &namespace);
    eventually("a ProvisioningFailed Warning", CONVERGED, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("ProvisioningFailed")
                    && e.type_.as_deref() == Some("Warning")
            })
            .then_some(())
    })
    .await;
    // Each retry says the same: one Event, its series counting the repeats.
    let failed = |e: &Event| e.reason.as_deref() == Some("ProvisioningFailed");
    let repeated = eventually("the Warning repeated as a series", CONVERGED, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| failed(e) && e.series.as_ref().is_some_and(|s| s.count >= 2))
    })
    .await;
    // Gone (the apiserver keeps Events an hour), the next repeat is a new Event, not lost.
    events
        .delete(&repeated.name_any(), &DeleteParams::default())
        .await
        .expect("delete the Event");
    eventually("a new ProvisioningFailed Event", CONVERGED, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| failed(e) && e.name_any() != repeated.name_any())
            .then_some(())
    })
    .await;
    let (result, message) = act(
        env,
        &namespace,
        "frozen",
        "Rollback",
        json!({"reason": "entitlements frozen"}),
    )
    .await;
    assert_eq!(result, "Accepted", "{message}");
    phase_of(&subs, "frozen", Phase::Failed).await;
    eventually(
        "the HubSpot subscription to be cancelled",
        CONVERGED,
        || async {
            live_hubspot_subscriptions(&env.sim, &uid)
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let _ = bindings
        .delete(&policy_name, &DeleteParams::default())
        .await;
    let _ = policies
        .delete(&policy_name, &DeleteParams::default())
        .await;
}

/// One request per listing per hour, partner listings never billed, and Kubernetes RBAC: a
/// billing admin buys and cancels, but cannot write status or take approval steps.
async fn refusals_and_rbac(env: &Env) {
    let listing = env.listing("heatmaps", json!({})).await;
    let partner = env
        .listing(
            "gigsafe",
            json!({"type": "Partner", "plans": [], "partner": {"name": "GigSafe", "url": "https://gigsafe.example.com/signup"}}),
        )
        .await;
    let (_, namespace) = env
        .tenant(
            "rbac",
            json!({"billingAdmins": [{"kind": "User", "name": "bob@acme.example"}]}),
        )
        .await;
    let bob = env
        .control_plane
        .client_as_user("bob@acme.example", &[])
        .await
        .expect("bob");
    // RBAC for bob reaches the apiserver's cache a moment after the Tenant is Ready.
    let subs: Api<TenantSubscription> = Api::namespaced(bob.clone(), &namespace);
    eventually("bob may create subscriptions", CONVERGED, || async {
        subs.create(
            &PostParams::default(),
            &subscription("first", &namespace, &listing, json!({})),
        )
        .await
        .ok()
    })
    .await;
    phase_of(&subs, "first", Phase::Active).await;
    subs.patch(
        "first",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"cancellation": {"effective": "Immediately"}}})),
    )
    .await
    .expect("bob cancels");
    phase_of(&subs, "first", Phase::Cancelled).await;
    subs.create(
        &PostParams::default(),
        &subscription("second", &namespace, &listing, json!({})),
    )
    .await
    .expect("create");
    let limited = phase_of(&subs, "second", Phase::Rejected).await;
    assert!(
        ready_reason(&limited).starts_with("RateLimited"),
        "{}",
        ready_reason(&limited)
    );
    assert!(
        ready_reason(&limited).contains("once per hour"),
        "{}",
        ready_reason(&limited)
    );

    subs.create(
        &PostParams::default(),
        &subscription("partner", &namespace, &partner, json!({})),
    )
    .await
    .expect("create");
    let refused = phase_of(&subs, "partner", Phase::Rejected).await;
    assert!(
        ready_reason(&refused).starts_with("PartnerListing"),
        "{}",
        ready_reason(&refused)
    );
    assert!(ready_reason(&refused).contains("https://gigsafe.example.com/signup"));
    assert!(live_hubspot_subscriptions(&env.sim, &refused.uid().expect("uid")).is_empty());

    let status_write = subs
        .patch_status(
            "second",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Active"}})),
        )
        .await;
    assert!(
        matches!(status_write, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{status_write:?}"
    );
    let actions: Api<SubscriptionAction> = Api::namespaced(bob, &env.operator_namespace);
    let approve: SubscriptionAction = serde_json::from_value(json!({
        "metadata": {"name": "bob-approves"},
        "spec": {"subscriptionRef": {"namespace": namespace, "name": "second"}, "action": "Approve"}
    }))
    .expect("action");
    let created = actions.create(&PostParams::default(), &approve).await;
    assert!(
        matches!(created, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{created:?}"
    );
}

/// Integrations wait, unbilled, until the connection Secret validates against the wizard's
/// schema and the test connection succeeds; a test aimed at a non-public address is refused;
/// no message carries a secret.
async fn integration_connections(env: &Env) {
    let wizard = unique_name("qb-wizard");
    let wizards: Api<marketplace_operator::api::WizardConfig> = Api::all(env.client.clone());
    apply(
        &wizards,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "WizardConfig", "metadata": {"name": wizard},
               "spec": {"title": "Connect QuickBooks",
                        "connectionSchema": {"type": "object",
                            "properties": {"realmId": {"type": "string", "pattern": "^[0-9]+$"},
                                           "apiKey": {"type": "string", "minLength": 12}},
                            "required": ["realmId", "apiKey"]},
                        "secretFields": ["apiKey"],
                        "testConnection": {"method": "GET", "urlTemplate": "https://127.0.0.1:9/v3/company/{{realmId}}",
                                           "headersTemplate": {"Authorization": "Bearer {{apiKey}}"}},
                        "billingConfirmation": "QuickBooks is billed monthly."}}),
    )
    .await;
    let listing = env
        .listing(
            "quickbooks",
            json!({"type": "Integration", "integration": {"wizardConfigRef": wizard}}),
        )
        .await;
    let (_, namespace) = env.tenant("integrations", json!({})).await;
    let subs: Api<TenantSubscription> = Api::namespaced(env.client.clone(), &namespace);
    let spec = json!({"connection": {"secretRef": {"name": "quickbooks"}}});
    subs.create(
        &PostParams::default(),
        &subscription("qb", &namespace, &listing, spec),
    )
    .await
    .expect("create");
    let waiting = |reason: &'static str| {
        let subs = subs.clone();
        async move {
            eventually(reason, CONVERGED, || async {
                let s = subs.get("qb").await.ok()?;
                let phase = s.status.as_ref()?.phase;
                (phase == Some(Phase::Requested) && ready_reason(&s).starts_with(reason))
                    .then_some(s)
            })
            .await
        }
    };
    let missing = waiting("ConnectionSecretNotFound").await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(env.client.clone(), &namespace);
    let secret = |realm: &str, key: &str| {
        serde_json::from_value::<k8s_openapi::api::core::v1::Secret>(json!({
            "metadata": {"name": "quickbooks"}, "stringData": {"realmId": realm, "apiKey": key}
        }))
        .expect("secret")
    };
    secrets
        .create(&PostParams::default(), &secret("acme", "tiny-secret"))
        .await
        .expect("secret");
    nudge(&subs, "qb").await;
    let invalid = waiting("ConnectionInvalid").await;
    let message = ready_reason(&invalid);
    assert!(
        message.contains("realmId") && message.contains("apiKey"),
        "{message}"
    );
    assert!(
        !message.contains("tiny-secret"),
        "a secret leaked: {message}"
    );
    secrets
        .replace(
            "quickbooks",
            &PostParams::default(),
            &secret("4620816365", "very-secret-api-key"),
        )
        .await
        .expect("secret");
    nudge(&subs, "qb").await;
    let refused = waiting("ConnectionTestFailed").await;
    let message = ready_reason(&refused);
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(
        !message.contains("very-secret-api-key"),
        "a secret leaked: {message}"
    );
    assert!(live_hubspot_subscriptions(&env.sim, &missing.uid().expect("uid")).is_empty());
}

/// A billing record tagged with a subscription uid that no TenantSubscription has (one deleted
/// with its finalizer stripped while the operator was down, or a cluster restored from an old
/// backup): the audit reports it in the drift report, and touches nothing.
async fn orphaned_billing(env: &Env) {
    let uid = format!("0rphan00-0000-4000-8000-{:012}", std::process::id());
    let request = marketplace_operator::billing::BillingRequest {
        tenant_id: unique_name("gone"),
        tenant_name: "Gone Ltd".into(),
        subscription_uid: uid.clone(),
        listing: "route-optimization".into(),
        plan: "standard".into(),
        sku: "ROUTE-OPT-STD".into(),
        quantity: 1,
        unit_price: "12.00".into(),
        currency: "USD".into(),
        interval: "monthly".into(),
        trial_days: 0,
        start_date: jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date(),
        discount: None,
    };
    env.hubspot
        .ensure_billing_record(&request)
        .await
        .expect("a billing record with no subscription");
    let found = eventually("the orphan in the drift report", CONVERGED, || async {
        let report =
            billing_audit::audit_once(&env.ctx, &env.hubspot, &mut marking_sweeper()).await;
        report.orphans.iter().find(|o| o.contains(&uid)).cloned()
    })
    .await;
    assert!(found.contains("no TenantSubscription owns"), "{found}");
    // Reported, not cancelled: the operator was not told to cancel orphans.
    assert_eq!(live_hubspot_subscriptions(&env.sim, &uid).len(), 1);
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), &env.operator_namespace);
    let map = maps
        .get(billing_audit::REPORT_CONFIG_MAP)
        .await
        .expect("drift report ConfigMap");
    let text = map
        .data
        .and_then(|d| d.get(billing_audit::REPORT_KEY).cloned())
        .unwrap_or_default();
    assert!(text.contains(&uid), "the report names the orphan: {text}");
}

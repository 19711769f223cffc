//! Helpers of the suites that watch subscriptions converge: apply objects, wait for phases and
//! Entitlement states, read conditions and history, count live HubSpot records in the simulator.

use std::time::Duration;

use hubspot_sim::{ObjectType, RunningSimulator, SimConfig, Simulator, Tier as SimTier};
use kube::api::{Api, Patch, PatchParams, PostParams};
use marketplace_operator::api::conditions::types::READY;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Entitlement, EntitlementState, Tenant, TenantSubscription};
use marketplace_operator::billing::{ApiToken, HubSpotClient, HubSpotConfig, Tier};
use serde_json::{Value, json};

use crate::{eventually, unique_name};

/// How long a controller may take to converge in these suites.
pub const CONVERGED: Duration = Duration::from_secs(60);

/// A HubSpot client pointed at `sim` (professional tier, short limiter margin for quick tests),
/// bootstrapped as the operator does at start-up.
pub async fn hubspot_client(sim: &RunningSimulator) -> HubSpotClient {
    let mut config = HubSpotConfig::new(
        sim.base_url(),
        ApiToken::new("pat-na1-simulator-token").expect("token"),
        Tier::Professional,
    );
    config.rate_limits.margin = Duration::from_millis(20);
    let hubspot = HubSpotClient::new(config).expect("hubspot client");
    hubspot.bootstrap().await.expect("bootstrap");
    hubspot
}

/// A simulator for the webhook suites (no search lag; refused deliveries come back quickly),
/// and the app secret it signs deliveries with.
pub async fn webhook_simulator() -> (RunningSimulator, String) {
    let config = SimConfig {
        search_lag_ms: 0,
        webhook_retry_base_ms: 50,
        ..SimConfig::default()
    };
    let client_secret = config.client_secret.clone();
    let sim = Simulator::start(config).await.expect("simulator");
    (sim, client_secret)
}

/// A typed object of a namespaced or cluster-wide kind, as the helpers here write it.
pub trait Object:
    kube::Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
{
}

impl<K> Object for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
{
}

/// Server-side applies `object` (field manager `e2e`) and returns it as stored.
pub async fn apply<K: Object>(api: &Api<K>, object: Value) -> K {
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

/// Creates `object`, which the apiserver must refuse with an error naming `field`.
pub async fn refused_naming<K: Object>(api: &Api<K>, object: Value, field: &str) {
    let typed: K = serde_json::from_value(object).expect("a well-typed object");
    let refused = api
        .create(&PostParams::default(), &typed)
        .await
        .expect_err("refused");
    assert!(
        refused.to_string().contains(field),
        "the refusal names {field}: {refused}"
    );
}

/// Waits until subscription `name` is in phase `want`, and returns it.
pub async fn phase_of(
    api: &Api<TenantSubscription>,
    name: &str,
    want: Phase,
) -> TenantSubscription {
    let what = format!("subscription {name} to reach {want:?}");
    eventually(&what, CONVERGED, || async {
        let s = api.get(name).await.ok()?;
        (s.status.as_ref()?.phase == Some(want)).then_some(s)
    })
    .await
}

/// The Entitlements of subscription `sub`, as (feature, state), sorted by feature.
pub async fn entitlement_states(
    api: &Api<Entitlement>,
    sub: &str,
) -> Vec<(String, EntitlementState)> {
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

/// Waits until subscription `sub` has exactly `count` Entitlements, all in `state`; on timeout
/// the panic shows what there is and the subscription's status.
pub async fn all_entitlements(
    api: &Api<Entitlement>,
    sub: &str,
    count: usize,
    state: EntitlementState,
) {
    let deadline = tokio::time::Instant::now() + CONVERGED;
    loop {
        let states = entitlement_states(api, sub).await;
        if states.len() == count && states.iter().all(|(_, s)| *s == state) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let namespace = api.namespace().unwrap_or_default().to_string();
            let subs: Api<TenantSubscription> =
                Api::namespaced(api.clone().into_client(), &namespace);
            let status = subs.get(sub).await.ok().and_then(|s| s.status);
            panic!(
                "entitlements of {sub} are {states:?}, not {count} × {state:?}; subscription status: {status:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the Entitlement of `feature` in `api`'s namespace has recorded at least `checks`
/// checks (the API's usage flush), and returns its usage.
pub async fn recorded_usage(
    api: &Api<Entitlement>,
    feature: &str,
    checks: i64,
) -> marketplace_operator::api::entitlement::Usage {
    eventually("the checks are recorded", CONVERGED, || async {
        let list = api.list(&Default::default()).await.ok()?;
        let usage = list
            .items
            .into_iter()
            .find(|e| e.spec.feature.as_str() == feature)?
            .status?
            .usage?;
        (usage.checks >= checks).then_some(usage)
    })
    .await
}

/// A condition as `"<status> <reason>: <message>"`, or empty when absent.
pub fn condition(s: &TenantSubscription, type_: &str) -> String {
    s.status
        .as_ref()
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| format!("{} {}: {}", c.status, c.reason, c.message))
        .unwrap_or_default()
}

/// The Ready condition as `"<reason>: <message>"`.
pub fn ready_reason(s: &TenantSubscription) -> String {
    s.status
        .as_ref()
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == READY))
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_default()
}

/// The phases of the subscription's history, oldest first.
pub fn history(s: &TenantSubscription) -> Vec<Phase> {
    s.status
        .as_ref()
        .map(|st| st.history.iter().map(|t| t.to).collect())
        .unwrap_or_default()
}

/// Live (not canceled) HubSpot commerce subscriptions billing subscription `uid`, as the
/// simulator holds them.
pub fn live_hubspot_subscriptions(sim: &RunningSimulator, uid: &str) -> Vec<Value> {
    let admin = sim.admin();
    let subscriptions = admin.objects(ObjectType::Subscriptions);
    let mut out = Vec::new();
    for deal in admin
        .objects(ObjectType::Deals)
        .into_iter()
        .filter(|d| d["properties"]["mkt_subscription_uid"] == uid)
    {
        let id: u64 = deal["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("deal id");
        for sub_id in admin.associated(ObjectType::Deals, id, ObjectType::Subscriptions) {
            let sub_id = sub_id.to_string();
            if let Some(sub) = subscriptions
                .iter()
                .find(|s| s["id"].as_str() == Some(sub_id.as_str()))
                && sub["properties"]["hs_status"] != "canceled"
            {
                out.push(sub.clone());
            }
        }
    }
    out
}

/// Waits until the simulator has delivered everything it queued (retries included), then a
/// little more, so late duplicates have had their chance to do harm.
pub async fn deliveries_settled(sim: &hubspot_sim::RunningSimulator) {
    eventually("webhook deliveries to settle", CONVERGED, || async {
        (sim.admin().pending_webhook_events() == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// A fresh Professional Tenant named after `base`; returns its namespace once the operator made
/// it.
pub async fn professional_tenant(client: &kube::Client, base: &str) -> String {
    let tenant_name = unique_name(base);
    let tenants: Api<Tenant> = Api::all(client.clone());
    apply(
        &tenants,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": tenant_name},
               "spec": {"displayName": "Acme Logistics", "basePlan": "Professional",
                        "billingContact": {"name": "Ann Example", "email": "ann@acme.example"}}}),
    )
    .await;
    eventually("the tenant namespace", CONVERGED, || async {
        tenants.get(&tenant_name).await.ok()?.status?.namespace
    })
    .await
}

/// Creates subscription `routes` to plan `standard` of `listing` in `namespace`; returns the
/// namespace's subscriptions.
pub async fn purchase_routes(
    client: &kube::Client,
    namespace: &str,
    listing: &str,
    quantity: i32,
) -> Api<TenantSubscription> {
    let subs: Api<TenantSubscription> = Api::namespaced(client.clone(), namespace);
    let sub: TenantSubscription = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": "routes", "namespace": namespace},
        "spec": {"listing": listing, "plan": "standard", "quantity": quantity},
    }))
    .expect("a TenantSubscription");
    subs.create(&PostParams::default(), &sub)
        .await
        .expect("create");
    subs
}

/// An Active subscription `routes` (3 vehicles) of a fresh Published listing for a fresh
/// Tenant; returns its namespace's subscriptions and Entitlements, its HubSpot company and
/// commerce subscription ids.
pub async fn active_subscription(
    client: &kube::Client,
) -> (Api<TenantSubscription>, Api<Entitlement>, u64, String) {
    let listing = unique_name("hooked");
    apply(
        &Api::<marketplace_operator::api::Listing>::all(client.clone()),
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing", "metadata": {"name": listing},
               "spec": {"displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
                        "category": "Operations", "lifecycle": "Published",
                        "features": ["route_optimization", "eta_predictions"],
                        "plans": [{"name": "standard", "displayName": "Standard",
                                   "pricing": {"model": "PerUnit", "amount": "12.00", "currency": "USD",
                                               "interval": "Month", "unit": "vehicle"}}]}}),
    )
    .await;
    let namespace = professional_tenant(client, "hooks").await;
    let subs = purchase_routes(client, &namespace, &listing, 3).await;
    let entitlements: Api<Entitlement> = Api::namespaced(client.clone(), &namespace);
    let active = phase_of(&subs, "routes", Phase::Active).await;
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Active).await;
    let ids = active
        .status
        .as_ref()
        .and_then(|s| s.hubspot.clone())
        .expect("hubspot ids");
    let company: u64 = ids
        .company_id
        .as_deref()
        .and_then(|s| s.parse().ok())
        .expect("company id");
    let subscription_id = ids.subscription_id.clone().expect("subscription id");
    (subs, entitlements, company, subscription_id)
}

/// The operator's rate-budget tier named `name` (as the benchmarks' `--tier` takes it), with the
/// simulator's tier that enforces the same budget.
pub fn tiers(name: &str) -> Result<(Tier, SimTier), String> {
    let tier = Tier::parse(name).ok_or_else(|| format!("unknown tier {name:?}"))?;
    let sim = match tier {
        Tier::Free => SimTier::Free,
        Tier::Starter => SimTier::Starter,
        Tier::Professional => SimTier::Professional,
        Tier::Enterprise => SimTier::Enterprise,
        Tier::LimitIncrease => SimTier::Increase,
    };
    Ok((tier, sim))
}

/// The simulator's line item of subscription `sub` (by the id its status records).
pub fn line_item(sim: &RunningSimulator, sub: &TenantSubscription) -> Value {
    let id = sub
        .status
        .as_ref()
        .and_then(|s| s.hubspot.as_ref())
        .and_then(|h| h.line_item_id.clone())
        .expect("a line item id");
    sim.admin()
        .objects(ObjectType::LineItems)
        .into_iter()
        .find(|li| li["id"].to_string().trim_matches('"') == id)
        .unwrap_or_else(|| panic!("line item {id} in the simulator"))
}

//! Shared helpers of the billing tests: a HubSpot simulator on 127.0.0.1:0 and a client
//! pointed at it over real HTTP. Only tests use the simulator; `src/` never does.
#![allow(dead_code)]

use hubspot_sim::{FaultKind, FaultRule, ObjectType, RunningSimulator, SimConfig, Simulator};
use marketplace_operator::billing::{
    ApiToken, BillingRecord, BillingRequest, CompanyRequest, ContactRequest, HubSpotClient,
    HubSpotConfig, HubSpotError, Tier,
};
use serde_json::Value;
use std::time::Duration;

pub const TOKEN: &str = "pat-na1-simulator-token";

/// Running clock (rate windows need real time), no search lag unless a test sets one.
pub fn sim_config() -> SimConfig {
    SimConfig {
        search_lag_ms: 0,
        ..SimConfig::default()
    }
}

pub async fn start(cfg: SimConfig) -> RunningSimulator {
    Simulator::start(cfg).await.expect("start simulator")
}

pub fn config(sim: &RunningSimulator, tier: Tier) -> HubSpotConfig {
    let mut cfg = HubSpotConfig::new(sim.base_url(), ApiToken::new(TOKEN).expect("token"), tier);
    // Short margins keep the tests quick; the production default is 100 ms.
    cfg.rate_limits.margin = Duration::from_millis(20);
    cfg
}

pub fn client(sim: &RunningSimulator, tier: Tier) -> HubSpotClient {
    HubSpotClient::new(config(sim, tier)).expect("client")
}

/// A bootstrapped client.
pub async fn ready(sim: &RunningSimulator, tier: Tier) -> HubSpotClient {
    let c = client(sim, tier);
    c.bootstrap().await.expect("bootstrap");
    c
}

pub fn request(n: usize) -> BillingRequest {
    BillingRequest {
        tenant_id: format!("tenant-{}", n % 7),
        tenant_name: format!("Tenant {}", n % 7),
        subscription_uid: format!("6f1c2d3e-0000-4000-8000-{n:012}"),
        listing: "postgres".into(),
        plan: "small".into(),
        sku: "postgres-small".into(),
        quantity: 2,
        unit_price: "25.50".into(),
        currency: "EUR".into(),
        interval: "monthly".into(),
        trial_days: 0,
        start_date: jiff::civil::date(2026, 11, 22),
        discount: None,
    }
}

/// What a reconcile loop does: call again while the error says a later call may succeed.
pub async fn ensure_until_ok(
    c: &HubSpotClient,
    req: &BillingRequest,
    max_calls: usize,
) -> (BillingRecord, Vec<HubSpotError>) {
    let mut errors = Vec::new();
    for _ in 0..max_calls {
        match c.ensure_billing_record(req).await {
            Ok(r) => return (r, errors),
            Err(e) if e.is_retryable() => errors.push(e),
            Err(e) => panic!("non-retryable error: {e} ({})", e.category()),
        }
    }
    panic!("ensure did not succeed in {max_calls} calls: {errors:?}");
}

pub fn fault(kind: FaultKind, method: &str, path: &str, times: Option<u32>) -> FaultRule {
    FaultRule {
        id: 0,
        method: Some(method.into()),
        path_contains: Some(path.into()),
        kind,
        probability: 1.0,
        times,
    }
}

fn id_of(v: &Value) -> u64 {
    v["id"].as_str().and_then(|s| s.parse().ok()).expect("id")
}

fn prop<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v["properties"][name].as_str()
}

/// Live objects of a type, straight from the simulator's state.
pub fn live(sim: &RunningSimulator, t: ObjectType) -> Vec<Value> {
    sim.admin().objects(t)
}

/// The deal anchoring `uid`, by its unique property.
pub fn deal_of(sim: &RunningSimulator, uid: &str) -> Option<u64> {
    let deals: Vec<u64> = live(sim, ObjectType::Deals)
        .iter()
        .filter(|d| prop(d, "mkt_subscription_uid") == Some(uid))
        .map(id_of)
        .collect();
    assert!(deals.len() <= 1, "more than one deal for {uid}: {deals:?}");
    deals.first().copied()
}

/// Live (non-terminal) subscriptions associated with the deal of `uid`.
pub fn live_subscriptions(sim: &RunningSimulator, uid: &str) -> Vec<Value> {
    let Some(deal) = deal_of(sim, uid) else {
        return Vec::new();
    };
    let ids = sim
        .admin()
        .associated(ObjectType::Deals, deal, ObjectType::Subscriptions);
    live(sim, ObjectType::Subscriptions)
        .into_iter()
        .filter(|s| ids.contains(&id_of(s)))
        .filter(|s| !matches!(prop(s, "hs_status"), Some("canceled") | Some("expired")))
        .collect()
}

/// "Exactly one live billing record": one deal, one live billable subscription associated with
/// that deal, its company and exactly one line item that is tagged with the uid.
pub fn assert_one_record(sim: &RunningSimulator, uid: &str) -> u64 {
    let subs = live_subscriptions(sim, uid);
    assert_eq!(subs.len(), 1, "live subscriptions for {uid}: {subs:#?}");
    let s = &subs[0];
    assert_eq!(prop(s, "hs_invoice_creation"), Some("on"), "{s:#}");
    let sid = id_of(s);
    let a = sim.admin();
    let items = a.associated(ObjectType::Subscriptions, sid, ObjectType::LineItems);
    assert_eq!(
        items.len(),
        1,
        "line items of subscription {sid}: {items:?}"
    );
    let companies = a.associated(ObjectType::Subscriptions, sid, ObjectType::Companies);
    assert_eq!(companies.len(), 1, "companies of subscription {sid}");
    let deal = deal_of(sim, uid).expect("deal");
    assert_eq!(
        a.associated(ObjectType::Deals, deal, ObjectType::Companies),
        companies,
        "deal and subscription name the same company"
    );
    sid
}

/// Objects that the orphan sweep must remove eventually.
pub fn orphan_counts(sim: &RunningSimulator) -> (usize, usize) {
    let a = sim.admin();
    let items = live(sim, ObjectType::LineItems)
        .iter()
        .filter(|li| prop(li, "mkt_subscription_uid").is_some())
        .filter(|li| {
            let id = id_of(li);
            a.associated(ObjectType::LineItems, id, ObjectType::Subscriptions)
                .is_empty()
                && a.associated(ObjectType::LineItems, id, ObjectType::Deals)
                    .is_empty()
        })
        .count();
    let subs = live(sim, ObjectType::Subscriptions)
        .iter()
        .filter(|s| {
            a.associated(ObjectType::Subscriptions, id_of(s), ObjectType::Deals)
                .is_empty()
        })
        .count();
    (items, subs)
}

/// The write commits, then the client gets `status` (contract §8.10).
pub fn commit_then_fail(status: u16) -> FaultKind {
    FaultKind::CommitThenFail {
        status,
        delay_ms: 0,
    }
}

/// The request fails with `status` before the handler runs.
pub fn fails_with(status: u16) -> FaultKind {
    FaultKind::Error { status }
}

/// The tenant record of tenant `n`, for the same tenant as [`request`]`(n)`.
pub fn company_request(n: usize) -> CompanyRequest {
    CompanyRequest {
        tenant_id: format!("tenant-{}", n % 7),
        name: format!("Tenant {}", n % 7),
        segment: Some("smb".into()),
        region: Some("eu-west".into()),
        billing_contact: Some(ContactRequest {
            email: format!("billing@tenant-{}.example", n % 7),
            name: "Ada Lovelace".into(),
        }),
    }
}

/// Live companies carrying `tenant_id` as their unique `mkt_tenant_id`.
pub fn companies_of(sim: &RunningSimulator, tenant_id: &str) -> Vec<Value> {
    live(sim, ObjectType::Companies)
        .into_iter()
        .filter(|c| prop(c, "mkt_tenant_id") == Some(tenant_id))
        .collect()
}

/// Live contacts whose email is `email` (case-insensitive, as HubSpot compares them).
pub fn contacts_with_email(sim: &RunningSimulator, email: &str) -> Vec<Value> {
    live(sim, ObjectType::Contacts)
        .into_iter()
        .filter(|c| prop(c, "email").is_some_and(|e| e.eq_ignore_ascii_case(email)))
        .collect()
}

/// The association type ids from a contact to a company.
pub fn contact_company_types(sim: &RunningSimulator, contact: u64, company: u64) -> Vec<u32> {
    sim.admin().with_state(|st| {
        st.assoc
            .list(ObjectType::Contacts, contact, ObjectType::Companies)
            .into_iter()
            .find(|(id, _)| *id == company)
            .map(|(_, types)| types)
            .unwrap_or_default()
    })
}

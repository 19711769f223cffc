//! The billing client against the HubSpot simulator over real HTTP: bootstrap, the ensure
//! algorithm without faults (contract §2.6), lifecycle (§1.2, §1.8), audit, CRM-only mode, and
//! usage line items beside the plan's.
mod billing_support;

use billing_support::*;
use hubspot_sim::ObjectType;
use marketplace_operator::billing::{
    BillingMode, BillingStatus, Drift, HubSpotClient, HubSpotError, PaymentsCheck, StatusClass,
    Tier, UsageLineItemRequest,
};
use serde_json::json;

#[tokio::test]
async fn bootstrap_creates_properties_once_and_reads_the_portal() {
    let sim = start(sim_config()).await;
    let c = client(&sim, Tier::Professional);
    let first = c.bootstrap().await.expect("bootstrap");
    assert_eq!(
        first.created_properties,
        vec![
            "companies.mkt_tenant_id",
            "deals.mkt_subscription_uid",
            "line_items.mkt_subscription_uid",
            "line_items.mkt_usage_period_key",
            "deals.mkt_charge_key",
            "line_items.mkt_charge_key",
            "line_items.mkt_credits_applied"
        ]
    );
    assert_eq!(first.payments, PaymentsCheck::Verified);
    assert!(first.unknown_status_options.is_empty());
    // Idempotent: a second start creates nothing and leaves no probe behind.
    let second = c.bootstrap().await.expect("second bootstrap");
    assert!(second.created_properties.is_empty());
    assert!(live(&sim, ObjectType::Subscriptions).is_empty());
    let portal = c.portal();
    assert!(portal.bootstrapped);
    assert!(portal.statuses.has("unpaid"));
    assert!(
        portal
            .frequencies
            .as_ref()
            .is_some_and(|f| f.contains(&"monthly".to_string()))
    );
}

#[tokio::test]
async fn bootstrap_fails_clearly_without_payments_unless_crm_only() {
    let mut cfg = sim_config();
    cfg.payments_enabled = false;
    let sim = start(cfg).await;
    let err = client(&sim, Tier::Professional)
        .bootstrap()
        .await
        .expect_err("no payments");
    assert_eq!(err.category(), "payments_not_enabled", "{err}");
    assert!(err.to_string().contains("CRM-only"), "{err}");
    // The explicit CRM-only mode starts, and records deal + line item without billing.
    let mut crm = config(&sim, Tier::Professional);
    crm.mode = BillingMode::CrmOnly;
    let c = HubSpotClient::new(crm).expect("client");
    assert_eq!(
        c.bootstrap().await.expect("bootstrap").payments,
        PaymentsCheck::CrmOnly
    );
    let req = request(1);
    let r = c.ensure_billing_record(&req).await.expect("ensure");
    assert_eq!(r.status, BillingStatus::CrmOnly);
    assert_eq!(r.subscription_id, None);
    let again = c.ensure_billing_record(&req).await.expect("ensure again");
    assert_eq!(again, r);
    let deal: u64 = r.deal_id.parse().unwrap();
    assert_eq!(
        sim.admin()
            .associated(ObjectType::Deals, deal, ObjectType::LineItems),
        vec![r.line_item_id.clone().unwrap().parse::<u64>().unwrap()]
    );
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 1);
    // A usage period's line item on the same deal is not the plan's: ensure keeps both, and
    // asking for the period again finds it.
    let usage = UsageLineItemRequest {
        deal_id: r.deal_id.clone(),
        period_key: format!("{}/2026-11", req.subscription_uid),
        subscription_uid: req.subscription_uid.clone(),
        name: "usage 2026-11".into(),
        description: "4 × 0.1".into(),
        quantity: "4".into(),
        price: "0.1".into(),
        credit: None,
    };
    let made = c
        .ensure_usage_line_item(&usage)
        .await
        .expect("usage line item");
    assert!(made.created);
    assert_eq!(c.ensure_billing_record(&req).await.expect("ensure"), r);
    let found = c.ensure_usage_line_item(&usage).await.expect("found again");
    assert_eq!((found.id, found.created), (made.id, false));
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 2);
}

#[tokio::test]
async fn a_non_unique_existing_property_is_refused_at_start_up() {
    let sim = start(sim_config()).await;
    // Someone created the deal property without the unique flag.
    let http = reqwest::Client::new();
    let s = http
        .post(format!("{}/crm/properties/2026-09/deals", sim.base_url()))
        .bearer_auth(TOKEN)
        .json(
            &json!({"name": "mkt_subscription_uid", "label": "x", "type": "string",
                      "fieldType": "text", "groupName": "dealinformation"}),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s.as_u16(), 201);
    let err = client(&sim, Tier::Professional)
        .bootstrap()
        .await
        .expect_err("not unique");
    assert_eq!(err.category(), "portal");
    assert!(
        err.to_string().contains("deals.mkt_subscription_uid"),
        "{err}"
    );
}

#[tokio::test]
async fn ensure_creates_one_record_and_is_idempotent() {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    let req = request(1);
    let before = sim.admin().counters().total_requests;
    let r = c.ensure_billing_record(&req).await.expect("ensure");
    let create_calls = sim.admin().counters().total_requests - before;
    let sid = assert_one_record(&sim, &req.subscription_uid);
    assert_eq!(r.subscription_id, Some(sid.to_string()));
    let li_ids = sim
        .admin()
        .associated(ObjectType::Subscriptions, sid, ObjectType::LineItems);
    assert_eq!(r.line_item_id, Some(li_ids[0].to_string()));
    assert!(matches!(
        r.status,
        BillingStatus::Subscription {
            class: StatusClass::Ok,
            invoicing: true,
            ..
        }
    ));
    // The subscription carries what the request said (contract §1.2, §1.3).
    let s = live(&sim, ObjectType::Subscriptions).remove(0);
    assert_eq!(s["properties"]["hs_currency_code"], json!("EUR"));
    assert_eq!(
        s["properties"]["hs_recurring_billing_frequency"],
        json!("monthly")
    );
    let li = live(&sim, ObjectType::LineItems).remove(0);
    assert_eq!(
        li["properties"]["mkt_subscription_uid"],
        json!(req.subscription_uid)
    );
    assert_eq!(
        li["properties"]["hs_recurring_billing_start_date"],
        json!("2026-11-22")
    );
    let deal = live(&sim, ObjectType::Deals).remove(0);
    assert_eq!(deal["properties"]["amount"], json!("51"));
    // Steady state: the same record, nothing created, five calls.
    let before = sim.admin().counters().total_requests;
    let again = c.ensure_billing_record(&req).await.expect("again");
    let steady_calls = sim.admin().counters().total_requests - before;
    assert_eq!(again, r);
    assert_eq!(steady_calls, 5, "steady-state calls");
    assert!(create_calls <= 10, "first ensure used {create_calls} calls");
    assert_eq!(live(&sim, ObjectType::Subscriptions).len(), 1);
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 1);
    assert_eq!(live(&sim, ObjectType::Companies).len(), 1);
    // A second subscription of the same tenant reuses the company.
    let mut other = request(8);
    other.tenant_id = req.tenant_id.clone();
    let r2 = c.ensure_billing_record(&other).await.expect("second sub");
    assert_eq!(r2.company_id, r.company_id);
    assert_ne!(r2.deal_id, r.deal_id);
    assert_one_record(&sim, &other.subscription_uid);
}

#[tokio::test]
async fn products_are_resolved_by_sku_despite_search_lag() {
    let mut cfg = sim_config();
    cfg.search_lag_ms = 3_000;
    let sim = start(cfg).await;
    let product = sim
        .admin()
        .create_object(
            ObjectType::Products,
            serde_json::Map::from_iter([
                ("name".to_string(), json!("Postgres small")),
                ("hs_sku".to_string(), json!("postgres-small")),
            ]),
        )
        .expect("product");
    let c = ready(&sim, Tier::Professional).await;
    // Search lags: the product is not found yet, and existence never depends on search.
    let r = c.ensure_billing_record(&request(1)).await.expect("ensure");
    assert_one_record(&sim, &request(1).subscription_uid);
    let li = live(&sim, ObjectType::LineItems).remove(0);
    assert_eq!(li["properties"]["hs_product_id"], json!(null));
    let again = c.ensure_billing_record(&request(1)).await.expect("again");
    assert_eq!(again, r);
    // A fresh client after the lag finds the product.
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    let c2 = ready(&sim, Tier::Professional).await;
    c2.ensure_billing_record(&request(2))
        .await
        .expect("ensure 2");
    let lis = live(&sim, ObjectType::LineItems);
    assert!(
        lis.iter()
            .any(|li| li["properties"]["hs_product_id"] == json!(product.to_string())),
        "{lis:#?}"
    );
}

#[tokio::test]
async fn lifecycle_pause_unpause_cancel_and_status() {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    let req = request(1);
    let r = c.ensure_billing_record(&req).await.expect("ensure");
    let sid = r.subscription_id.clone().unwrap();
    let st = c.pause_subscription(&sid, "admin").await.expect("pause");
    assert_eq!(st.class, StatusClass::Paused);
    // Pausing again is settled by re-reading: already paused counts as done.
    assert_eq!(
        c.pause_subscription(&sid, "admin")
            .await
            .expect("pause again")
            .class,
        StatusClass::Paused
    );
    // ensure keeps a paused subscription (it is live) and does not create another.
    let kept = c.ensure_billing_record(&req).await.expect("ensure paused");
    assert_eq!(kept.subscription_id, Some(sid.clone()));
    let st = c
        .unpause_subscription(&sid, jiff::civil::date(2026, 12, 22))
        .await
        .expect("unpause");
    assert_eq!(st.class, StatusClass::Ok);
    assert_eq!(c.read_status(&sid).await.expect("status").status, "active");
    let out = c
        .cancel_billing_record(&req.subscription_uid)
        .await
        .expect("cancel");
    assert_eq!(out.canceled, vec![sid.clone()]);
    assert_eq!(
        c.read_status(&sid).await.unwrap().class,
        StatusClass::Terminal
    );
    let deal = live(&sim, ObjectType::Deals).remove(0);
    assert_eq!(deal["properties"]["dealstage"], json!("closedlost"));
    // Idempotent: canceling again changes nothing and does not fail.
    let again = c
        .cancel_billing_record(&req.subscription_uid)
        .await
        .expect("cancel again");
    assert!(again.canceled.is_empty());
    assert_eq!(
        c.cancel_subscription(&sid)
            .await
            .expect("cancel sub again")
            .class,
        StatusClass::Terminal
    );
    // Nothing ever billed for an unknown uid: nothing to do.
    assert_eq!(c.cancel_billing_record("nope").await.unwrap().deal_id, None);
    // Re-activating the CR makes a new generation under the same deal.
    let r2 = c.ensure_billing_record(&req).await.expect("reactivate");
    assert_eq!(r2.deal_id, r.deal_id);
    assert_ne!(r2.subscription_id, r.subscription_id);
    let s2 = c
        .read_status(r2.subscription_id.as_ref().unwrap())
        .await
        .unwrap();
    assert!(s2.name.unwrap_or_default().ends_with("#2"));
    assert_one_record(&sim, &req.subscription_uid);
}

#[tokio::test]
async fn payment_failures_show_in_the_status() {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    let r = c.ensure_billing_record(&request(1)).await.expect("ensure");
    let company: u64 = r.company_id.parse().unwrap();
    sim.admin().set_company_payments_failing(company, true);
    sim.admin().advance_clock(32 * 86_400_000);
    let st = c
        .read_status(r.subscription_id.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(st.class, StatusClass::PaymentProblem, "{st:?}");
    // Still one live record: a payment problem is no reason to create another.
    let again = c.ensure_billing_record(&request(1)).await.unwrap();
    assert_eq!(again.subscription_id, r.subscription_id);
}

#[tokio::test]
async fn audit_reads_in_batches_of_100() {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    // 101 uids: records for a few of them, the rest never billed.
    let uids: Vec<String> = (0..101).map(|n| request(n).subscription_uid).collect();
    let billed = [0usize, 7, 50, 99, 100];
    for n in billed {
        c.ensure_billing_record(&request(n)).await.expect("ensure");
    }
    let before = sim.admin().counters();
    let entries = c.audit(&uids).await.expect("audit");
    let after = sim.admin().counters();
    // 101 uids → 2 chunks × (deal batch read, association batch read, subscription batch read).
    assert_eq!(after.total_requests - before.total_requests, 6);
    assert_eq!(entries.len(), 101);
    for (n, e) in entries.iter().enumerate() {
        if billed.contains(&n) {
            assert!(e.drift().is_empty(), "{e:#?}");
            assert_eq!(e.live().len(), 1);
        } else {
            assert_eq!(e.drift(), vec![Drift::MissingDeal], "{e:#?}");
        }
    }
    // Drift: someone cancels the subscription in HubSpot.
    let sid = entries[7].subscriptions[0].id.clone();
    let status = reqwest::Client::new()
        .post(format!(
            "{}/payments-subscriptions/v1/subscriptions/crm/{sid}/cancel",
            sim.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    let e = c.audit(&uids[7..8]).await.unwrap();
    assert_eq!(e[0].drift(), vec![Drift::NoLiveSubscription]);
    let states = c
        .audit_subscriptions(std::slice::from_ref(&sid))
        .await
        .unwrap();
    assert_eq!(states[0].class, StatusClass::Terminal);
}

#[tokio::test]
async fn daily_limit_stops_all_calls_with_a_typed_error() {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    sim.admin().exhaust_daily_limit();
    let err = c
        .ensure_billing_record(&request(1))
        .await
        .expect_err("daily");
    assert_eq!(err.category(), "daily_exhausted", "{err}");
    assert!(matches!(err, HubSpotError::DailyLimitExhausted { .. }));
    let hits = sim.admin().counters().rate_limited_daily;
    assert_eq!(hits, 1, "exactly one call met the DAILY limit");
    // Later calls fail at once without touching HubSpot.
    let before = sim.admin().counters().total_requests;
    for _ in 0..5 {
        let e = c.read_status("1").await.expect_err("still exhausted");
        assert_eq!(e.category(), "daily_exhausted");
    }
    assert_eq!(sim.admin().counters().total_requests, before);
}

#[tokio::test]
async fn bad_token_is_an_auth_error_without_the_token_in_it() {
    let sim = start(sim_config()).await;
    let mut cfg = config(&sim, Tier::Professional);
    cfg.token = marketplace_operator::billing::ApiToken::new("pat-na1-wrong-secret").unwrap();
    let c = HubSpotClient::new(cfg.clone()).unwrap();
    let err = c.bootstrap().await.expect_err("401");
    assert_eq!(err.category(), "auth");
    assert!(!err.to_string().contains("wrong-secret"));
    assert!(!format!("{err:?}").contains("wrong-secret"));
    assert!(!format!("{cfg:?}").contains("wrong-secret"));
    assert!(!format!("{c:?}").contains("wrong-secret"));
}

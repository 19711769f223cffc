use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::assess::{Verdict, assess};
use super::csv::{field, health_csv, revenue_csv};
use super::filter::{health_filter, revenue_filter, wants_csv};
use super::policy::{BUILT_IN, built_in, policy_book};
use super::revenue::{monthly_billing, mrr};
use crate::api::health_policy::HealthPolicySpec;
use crate::api::{Entitlement, Listing, Tenant, TenantSubscription};
use crate::metering::store::MeterTotals;
use crate::metering::view::meter_usage;

const NOW: &str = "2026-06-30T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn tenant(name: &str, plan: &str, created: &str) -> Tenant {
    serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"displayName": format!("{name} Inc"), "basePlan": plan, "region": "eu-west",
                 "segment": "smb", "billingContact": {"name": "Ann", "email": "ann@a.example"}}
    }))
    .unwrap()
}

fn sub(listing: &str, plan: &str, quantity: i32, status: Value) -> TenantSubscription {
    serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": listing, "namespace": "tenant-a"},
        "spec": {"listing": listing, "plan": plan, "quantity": quantity},
        "status": status,
    }))
    .unwrap()
}

fn transition(from: &str, to: &str, at: &str) -> Value {
    json!({"from": from, "to": to, "at": at, "actor": "operator"})
}

fn entitlement(feature: &str, state: &str, last_checked: Option<&str>) -> Entitlement {
    let mut object = json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "Entitlement",
        "metadata": {"name": feature.replace('_', "-"), "namespace": "tenant-a"},
        "spec": {"tenant": "a", "feature": feature, "state": state,
                 "startsAt": "2026-01-01T00:00:00Z", "sourceSubscription": "s"}
    });
    if let Some(at) = last_checked {
        object["status"] = json!({"usage": {"lastCheckedAt": at, "checks": 7}});
    }
    serde_json::from_value(object).unwrap()
}

fn listing(name: &str, plans: Value) -> Arc<Listing> {
    let spec = crate::lifecycle::fixtures::listing(&json!({ "plans": plans }).to_string());
    Arc::new(Listing::new(name, spec))
}

fn policy(value: Value) -> HealthPolicySpec {
    serde_json::from_value(value).unwrap()
}

fn strict() -> HealthPolicySpec {
    policy(json!({"adoptionWindowDays": 14, "historyWindowDays": 30,
        "atRisk": {"minAdoptionPercent": 50, "maxPaymentProblems": 0, "maxCancellations": 0},
        "upsellReady": {"minUsagePercent": 80, "minAdoptionPercent": 90}}))
}

#[test]
fn adoption_counts_features_checked_within_the_window() {
    let t = tenant("a", "Professional", "2026-06-01T00:00:00Z");
    let active = sub("routes", "pro", 1, json!({"phase": "Active"}));
    let ents = [
        entitlement("routing", "Active", Some("2026-06-29T00:00:00Z")),
        entitlement("fleet", "Active", Some("2026-06-01T00:00:00Z")),
        entitlement("maps", "Trialing", None),
        entitlement("old", "Revoked", Some("2026-06-29T00:00:00Z")),
    ];
    let refs: Vec<&Entitlement> = ents.iter().collect();
    let health = assess(&t, &[&active], &refs, &[], ("p", &strict()), now());
    assert_eq!(health.features.len(), 3, "revoked features are not usable");
    assert_eq!(health.features_adopted(), 1);
    assert_eq!(health.adoption_percent, Some(33));
    assert_eq!(health.age_days, Some(29));
    assert_eq!(health.add_ons_active, vec!["routes"]);
    assert_eq!(health.verdict, Verdict::AtRisk);
    assert_eq!(
        health.reasons,
        vec!["1 of 3 features checked in 14 days (33%, below 50%)"]
    );
    // The same checks a day inside a wider window: all but the unchecked one adopted.
    let wide = policy(json!({"adoptionWindowDays": 60,
        "atRisk": {"minAdoptionPercent": 50}, "upsellReady": {"minUsagePercent": 80}}));
    let health = assess(&t, &[&active], &refs, &[], ("p", &wide), now());
    assert_eq!(health.adoption_percent, Some(66));
    assert_eq!(health.verdict, Verdict::Healthy);
    assert!(health.reasons.is_empty());
}

#[test]
fn payment_problems_and_cancellations_count_within_the_history_window() {
    let t = tenant("a", "Professional", "2025-01-01T00:00:00Z");
    let suspended = sub("a1", "pro", 1, json!({"phase": "Suspended"}));
    let past_due = sub(
        "a2",
        "pro",
        1,
        json!({"phase": "Active", "hubspot": {"status": "past_due"}}),
    );
    let recovered = sub(
        "a3",
        "pro",
        1,
        json!({"phase": "Active", "history": [
            transition("Active", "Suspended", "2026-06-20T00:00:00Z"),
            transition("Suspended", "Active", "2026-06-21T00:00:00Z")]}),
    );
    let long_ago = sub(
        "a4",
        "pro",
        1,
        json!({"phase": "Cancelled", "history": [
            transition("Active", "Suspended", "2026-01-20T00:00:00Z"),
            transition("Suspended", "CancelRequested", "2026-01-21T00:00:00Z"),
            transition("CancelRequested", "Cancelled", "2026-02-21T00:00:00Z")]}),
    );
    let cancelling = sub(
        "a5",
        "pro",
        1,
        json!({"phase": "Cancelled", "history": [
            transition("Active", "CancelRequested", "2026-06-10T00:00:00Z"),
            transition("CancelRequested", "Cancelled", "2026-06-28T00:00:00Z")]}),
    );
    let subs = [&suspended, &past_due, &recovered, &long_ago, &cancelling];
    let health = assess(&t, &subs, &[], &[], ("p", &strict()), now());
    assert_eq!(health.payment_problems, 3);
    assert_eq!(health.cancellations, 1, "one subscription cancelled once");
    assert_eq!(health.adoption_percent, None);
    assert_eq!(health.verdict, Verdict::AtRisk);
    assert_eq!(health.reasons.len(), 2, "{:?}", health.reasons);
    assert_eq!(health.add_ons_active, vec!["a2", "a3"]);
    // A lenient plan tolerates them.
    let lenient = policy(json!({"historyWindowDays": 30,
        "atRisk": {"maxPaymentProblems": 3, "maxCancellations": 1},
        "upsellReady": {"minUsagePercent": 80}}));
    let health = assess(&t, &subs, &[], &[], ("p", &lenient), now());
    assert_eq!(health.verdict, Verdict::Healthy);
}

#[test]
fn usage_near_the_included_quantity_or_full_adoption_is_ready_for_an_upsell() {
    let t = tenant("a", "Starter", "2026-06-01T00:00:00Z");
    let plan = listing(
        "pages",
        json!([{"name": "starter", "displayName": "Starter",
        "pricing": {"model": "Flat", "amount": "9", "currency": "USD", "interval": "Month"},
        "metered": {"meter": "page", "unit": "page", "unitPrice": "0.1", "includedQuantity": 100}}]),
    );
    let totals = MeterTotals {
        count: 85,
        ..MeterTotals::default()
    };
    let usage = meter_usage("pages", "pages", &plan.spec.plans[0], totals).unwrap();
    let ents = [entitlement("pages", "Active", Some("2026-06-29T00:00:00Z"))];
    let refs: Vec<&Entitlement> = ents.iter().collect();
    let health = assess(
        &t,
        &[],
        &refs,
        std::slice::from_ref(&usage),
        ("p", &strict()),
        now(),
    );
    assert_eq!(health.usage[0].percent, Some(85));
    assert_eq!(health.verdict, Verdict::UpsellReady);
    assert_eq!(
        health.reasons,
        vec![
            "page used 85% of the 100 included in pages (at least 80%)",
            "1 of 1 features checked in 14 days (100%, at least 90%)"
        ]
    );
    // At risk wins over ready for an upsell.
    let suspended = sub("pages", "starter", 1, json!({"phase": "Suspended"}));
    let health = assess(&t, &[&suspended], &refs, &[usage], ("p", &strict()), now());
    assert_eq!(health.verdict, Verdict::AtRisk);
}

#[test]
fn policies_apply_by_base_plan_and_conflicts_are_reported_naming_the_field() {
    let mut pro = strict();
    pro.base_plans = vec![
        crate::api::health_policy::BasePlanName("Professional".into()),
        crate::api::health_policy::BasePlanName("Enterprise".into()),
    ];
    let mut again = built_in();
    again.base_plans = vec![crate::api::health_policy::BasePlanName("Enterprise".into())];
    let book = policy_book(&[
        ("z-default".into(), built_in()),
        ("b-again".into(), again),
        ("a-pro".into(), pro.clone()),
        ("y-default".into(), built_in()),
    ]);
    assert_eq!(book.for_plan("Professional"), ("a-pro", &pro));
    assert_eq!(book.for_plan("Enterprise").0, "a-pro");
    assert_eq!(book.for_plan("Starter").0, "y-default");
    let problems: Vec<(&str, &str)> = book
        .problems
        .iter()
        .map(|p| (p.policy.as_str(), p.field.as_str()))
        .collect();
    assert_eq!(
        problems,
        vec![
            ("b-again", "spec.basePlans[0]"),
            ("z-default", "spec.basePlans")
        ]
    );
    assert!(book.problems[0].message.contains("a-pro"));
    assert_eq!(policy_book(&[]).for_plan("Starter").0, BUILT_IN);
}

#[test]
fn mrr_normalises_yearly_and_per_unit_prices_of_billed_subscriptions_only() {
    let catalog = [listing(
        "routes",
        json!([
            {"name": "pro", "displayName": "Pro",
             "pricing": {"model": "Flat", "amount": "49.00", "currency": "USD", "interval": "Month"}},
            {"name": "yearly", "displayName": "Yearly",
             "pricing": {"model": "Flat", "amount": "120", "currency": "EUR", "interval": "Year"}},
            {"name": "seats", "displayName": "Seats",
             "pricing": {"model": "PerUnit", "amount": "5", "currency": "USD", "interval": "Month", "unit": "seat"}}
        ]),
    )];
    let find = |name: &str| {
        catalog
            .iter()
            .find(|l| l.metadata.name.as_deref() == Some(name))
            .cloned()
    };
    let subs = [
        sub("routes", "pro", 1, json!({"phase": "Active"})),
        sub("routes", "pro", 1, json!({"phase": "CancelRequested"})),
        sub("routes", "pro", 1, json!({"phase": "Trialing"})),
        sub("routes", "pro", 1, json!({"phase": "Suspended"})),
        sub("routes", "yearly", 1, json!({"phase": "Active"})),
        sub("routes", "seats", 3, json!({"phase": "Active"})),
        // Billing still bills the old plan and quantity: that is what counts.
        sub(
            "routes",
            "pro",
            9,
            json!({"phase": "Active",
            "hubspot": {"billedPlan": "seats", "billedQuantity": 2}}),
        ),
        sub("gone", "pro", 1, json!({"phase": "Active"})),
        // Bought under a promotion HubSpot bills: its price; once billed at list price again
        // (billedPromotion gone), the list price.
        sub(
            "routes",
            "yearly",
            1,
            json!({"phase": "Active",
            "promotion": {"name": "spring", "plan": "yearly", "listPrice": "120", "price": "60",
                          "discountAmount": "60", "periods": 1, "keptUntil": "2027-01-01T00:00:00Z"},
            "hubspot": {"billedPlan": "yearly", "billedPromotion": "spring"}}),
        ),
        sub(
            "routes",
            "yearly",
            1,
            json!({"phase": "Active",
            "promotion": {"name": "spring", "plan": "yearly", "listPrice": "120", "price": "60",
                          "discountAmount": "60", "periods": 1, "keptUntil": "2026-01-01T00:00:00Z"},
            "hubspot": {"billedPlan": "yearly"}}),
        ),
    ];
    let revenue = mrr(subs.iter().filter_map(|s| monthly_billing(s, find)));
    let lines: Vec<(&str, &str, u32, &str)> = revenue
        .lines
        .iter()
        .map(|l| {
            (
                l.plan.as_str(),
                l.currency.as_str(),
                l.subscriptions,
                l.mrr.as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("pro", "USD", 2, "98.00"),
            ("seats", "USD", 2, "25.00"),
            ("yearly", "EUR", 3, "25.00")
        ]
    );
    let totals: Vec<(&str, &str)> = revenue
        .totals
        .iter()
        .map(|t| (t.currency.as_str(), t.mrr.as_str()))
        .collect();
    assert_eq!(totals, vec![("EUR", "25.00"), ("USD", "123.00")]);
    let csv = revenue_csv(&revenue);
    assert!(
        csv.starts_with("listing,plan,currency,subscriptions,mrr\r\nroutes,pro,USD,2,98.00\r\n"),
        "{csv}"
    );
}

fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn filters_refuse_bad_parameters_naming_them() {
    let refused = |pairs: &[(&str, &str)]| health_filter(&query(pairs)).unwrap_err().parameter;
    assert_eq!(refused(&[("minAgeDays", "ten")]), "minAgeDays");
    assert_eq!(refused(&[("maxAgeDays", "-1")]), "maxAgeDays");
    assert_eq!(
        refused(&[("minAgeDays", "9"), ("maxAgeDays", "3")]),
        "maxAgeDays"
    );
    assert_eq!(refused(&[("verdict", "Sad")]), "verdict");
    assert_eq!(refused(&[("tier", "gold")]), "tier");
    assert_eq!(
        revenue_filter(&query(&[("currency", "usd")]))
            .unwrap_err()
            .parameter,
        "currency"
    );
    let filter = health_filter(&query(&[
        ("plan", "Starter"),
        ("minAgeDays", "10"),
        ("region", ""),
    ]))
    .unwrap();
    assert!(filter.admits_tenant("Starter", None, None, Some(10)));
    assert!(!filter.admits_tenant("Starter", None, None, Some(9)));
    assert!(!filter.admits_tenant("Professional", None, None, Some(10)));
    assert!(!filter.admits_tenant("Starter", None, None, None));
    let segment = health_filter(&query(&[("segment", "smb")])).unwrap();
    assert!(segment.admits_tenant("Starter", Some("eu"), Some("smb"), None));
    assert!(!segment.admits_tenant("Starter", Some("eu"), None, None));
    assert_eq!(
        wants_csv(&query(&[]), Some("text/html, text/csv;q=0.9")),
        Ok(true)
    );
    assert_eq!(wants_csv(&query(&[]), Some("application/json")), Ok(false));
    assert_eq!(wants_csv(&query(&[("format", "csv")]), None), Ok(true));
    assert_eq!(
        wants_csv(&query(&[("format", "xml")]), None)
            .unwrap_err()
            .parameter,
        "format"
    );
}

#[test]
fn csv_quotes_fields_and_defuses_formulas() {
    assert_eq!(field("plain"), "plain");
    assert_eq!(field("a, b"), "\"a, b\"");
    assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    let mut t = tenant("a", "Starter", "2026-06-01T00:00:00Z");
    t.spec.display_name = "=cmd, Inc".into();
    let health = assess(&t, &[], &[], &[], ("p", &strict()), now());
    let csv = health_csv(&[health]);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("tenant,displayName,basePlan,region")
    );
    assert_eq!(
        lines.next().unwrap(),
        "a,\"'=cmd, Inc\",Starter,eu-west,smb,29,0,0,0,,,0,0,Healthy,,p"
    );
}

#[test]
fn a_bundle_member_counts_at_its_promoted_share_while_billed_then_at_its_bundle_share() {
    let catalog = [listing(
        "routes",
        json!([{"name": "pro", "displayName": "Pro",
             "pricing": {"model": "Flat", "amount": "49.00", "currency": "USD", "interval": "Month"}}]),
    )];
    let find = |name: &str| {
        catalog
            .first()
            .filter(|l| l.metadata.name.as_deref() == Some(name))
            .cloned()
    };
    let member = |billed: Value| {
        sub(
            "routes",
            "pro",
            1,
            json!({"phase": "Active",
            "bundle": {"name": "suite", "plan": "pro", "listPrice": "49.00", "price": "39.20",
                       "discountAmount": "9.80"},
            "promotion": {"name": "suite-week", "plan": "pro", "listPrice": "49.00", "price": "31.36",
                          "discountAmount": "17.64", "periods": 2, "keptUntil": "2026-08-01T00:00:00Z"},
            "hubspot": billed}),
        )
    };
    let amount = |s: &TenantSubscription| monthly_billing(s, find).map(|b| b.amount);
    let promoted = member(json!({"billedPlan": "pro", "billedPromotion": "suite-week"}));
    let lapsed = member(json!({"billedPlan": "pro"}));
    assert_eq!(amount(&promoted), Some(31.36));
    assert_eq!(amount(&lapsed), Some(39.20));
}

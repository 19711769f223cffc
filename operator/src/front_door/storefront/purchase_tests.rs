use std::collections::BTreeSet;

use std::sync::Arc;

use super::*;
use crate::api::Promotion;
use crate::api::tenant::Tenant;
use crate::api::tenant_subscription::TenantSubscription;
use crate::lifecycle::fixtures::{listing, subscription, tenant, ts};

const NOW: &str = "2026-12-01T12:00:00Z";

fn request(json: serde_json::Value) -> PurchaseRequest {
    serde_json::from_value(json).unwrap()
}

fn decide(
    req: &PurchaseRequest,
    listing: &Listing,
    subs: &[&TenantSubscription],
) -> Result<Purchase, PurchaseRefusal> {
    with_facts(&[], subs, |facts| {
        decide_purchase(req, "route-abc", Some(listing), facts, ts(NOW))
    })
}

/// `ask` of the facts of tenant acme with `promotions` in the catalog.
fn with_facts<T>(
    promotions: &[Arc<Promotion>],
    subs: &[&TenantSubscription],
    ask: impl FnOnce(&TenantFacts<'_>) -> T,
) -> T {
    let acme = Tenant::new("acme", tenant("Professional"));
    let features = BTreeSet::new();
    let facts = TenantFacts {
        name: "acme",
        tenant: &acme,
        subscriptions: subs,
        entitled_features: &features,
        promotions,
    };
    ask(&facts)
}

/// 20% off route's plans, open now, for buyers who enter SPRING26.
fn coded_spring() -> Arc<Promotion> {
    let spec: crate::api::promotion::PromotionSpec = serde_saphyr::from_str(
        r#"
displayName: Spring code
targets: [{listing: route}]
discount: {percentage: 20}
startsAt: "2026-11-01T00:00:00Z"
endsAt: "2027-01-01T00:00:00Z"
periods: 3
code: SPRING26
"#,
    )
    .unwrap();
    Arc::new(Promotion::new("spring-code", spec))
}

fn route() -> Listing {
    Listing::new("route", listing(""))
}

fn flat_request(amount: &str) -> PurchaseRequest {
    request(serde_json::json!({
        "listing": "route", "plan": "flat",
        "confirmedPrice": {"amount": amount, "currency": "USD", "interval": "Year"}
    }))
}

#[test]
fn a_confirmed_purchase_becomes_a_subscription() {
    let purchase = decide(&flat_request("49.00"), &route(), &[]).unwrap();
    assert_eq!(purchase.spec.plan.as_str(), "flat");
    assert_eq!(purchase.spec.quantity, 1);
    assert_eq!(
        purchase.confirmation,
        "Confirm addition of $49.00/yr to your bill?"
    );
    assert_eq!(purchase.connection_secret, None);
}

#[test]
fn a_price_that_moved_is_a_conflict_with_the_current_price() {
    let Err(PurchaseRefusal::PriceChanged { current, .. }) =
        decide(&flat_request("39.00"), &route(), &[])
    else {
        panic!("expected PriceChanged");
    };
    assert_eq!(current.amount, "49.00");
    let unconfirmed = request(serde_json::json!({"listing": "route", "plan": "flat"}));
    let Err(PurchaseRefusal::Invalid { code, field, .. }) = decide(&unconfirmed, &route(), &[])
    else {
        panic!("expected Invalid");
    };
    assert_eq!(
        (code.as_str(), field.as_str()),
        ("PriceNotConfirmed", "confirmedPrice")
    );
}

#[test]
fn the_subscription_rules_apply_with_the_api_field_names() {
    let bad_plan = request(serde_json::json!({"listing": "route", "plan": "gold"}));
    let Err(PurchaseRefusal::Invalid { code, field, .. }) = decide(&bad_plan, &route(), &[]) else {
        panic!("expected Invalid");
    };
    assert_eq!((code.as_str(), field.as_str()), ("PlanNotFound", "plan"));
    let hidden = Listing::new(
        "route",
        listing("{visibility: Private, audience: {tenants: [globex]}}"),
    );
    assert_eq!(
        decide(&flat_request("49.00"), &hidden, &[]),
        Err(PurchaseRefusal::ListingNotFound)
    );
}

#[test]
fn a_second_request_within_the_hour_says_when_to_retry() {
    let mut earlier =
        TenantSubscription::new("route-old", subscription("{listing: route, plan: flat}"));
    earlier.metadata.creation_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts("2026-12-01T11:20:00Z")),
    );
    earlier.status = Some(crate::api::tenant_subscription::TenantSubscriptionStatus {
        phase: Some(crate::api::tenant_subscription::Phase::Rejected),
        ..Default::default()
    });
    let Err(PurchaseRefusal::TooSoon {
        retry_after_seconds,
        ..
    }) = decide(&flat_request("49.00"), &route(), &[&earlier])
    else {
        panic!("expected TooSoon");
    };
    assert_eq!(retry_after_seconds, 20 * 60);
}

#[test]
fn idempotency_keys_name_one_object_per_tenant() {
    let a = subscription_name("route-optimization", "acme", "key-1");
    assert_eq!(a, subscription_name("route-optimization", "acme", "key-1"));
    assert_ne!(
        a,
        subscription_name("route-optimization", "globex", "key-1")
    );
    assert!(a.starts_with("route-optimization-") && a.len() <= 63);
    let long = subscription_name(&"x".repeat(63), "acme", "k");
    assert!(long.len() <= 63, "{long}");
    assert!(valid_key("3f1c-retry"));
    assert!(!valid_key(""));
    assert!(!valid_key("has space"));
    // Spacing and key order do not change the hash; the content does.
    let one = flat_request("49.00");
    let same: PurchaseRequest = serde_json::from_str(
        r#"{"plan":"flat","confirmedPrice":{"interval":"Year","currency":"USD","amount":"49.00"},"listing":"route"}"#,
    )
    .unwrap();
    assert_eq!(request_hash(&one), request_hash(&same));
    assert_ne!(request_hash(&one), request_hash(&flat_request("49")));
}

#[test]
fn a_code_typed_into_a_form_is_trimmed_and_upper_cased_and_blank_is_none() {
    assert_eq!(
        entered_code(Some(" spring26 ")).as_deref(),
        Some("SPRING26")
    );
    assert_eq!(entered_code(Some("   ")), None);
    assert_eq!(entered_code(Some("")), None);
    assert_eq!(entered_code(None), None);
}

#[test]
fn a_code_prices_the_plan_with_its_promotion_and_a_wrong_one_is_refused() {
    let promotions = [coded_spring()];
    let plan = listing("").plans[1].clone(); // flat, $49.00/yr
    let priced = |code: Option<&str>| {
        with_facts(&promotions, &[], |facts| {
            priced_offer("route", &plan, facts, code, ts(NOW))
        })
    };
    assert_eq!(priced(None), Ok(None), "a coded promotion needs its code");
    let offer = priced(Some("SPRING26"))
        .unwrap()
        .expect("the code's promotion");
    assert_eq!(offer.price, "39.20");
    let Err(PurchaseRefusal::Invalid { code, field, .. }) = priced(Some("NOPE")) else {
        panic!("expected Invalid");
    };
    assert_eq!(
        (code.as_str(), field.as_str()),
        ("PromotionCodeInvalid", "promotionCode")
    );
    // The sentence the buyer confirms names the promotion and the price after it.
    assert_eq!(
        price::promoted_confirmation(&plan, 1, Some(&offer)),
        "Confirm addition of $39.20/yr to your bill? Spring code: this price for 3 billing periods, then $49.00/yr."
    );
}

#[test]
fn a_purchase_with_a_code_confirms_the_promoted_price() {
    let promotions = [coded_spring()];
    let buy = |code: &str, amount: &str| {
        let req = request(serde_json::json!({
            "listing": "route", "plan": "flat", "promotionCode": code,
            "confirmedPrice": {"amount": amount, "currency": "USD", "interval": "Year"}
        }));
        with_facts(&promotions, &[], |facts| {
            decide_purchase(&req, "route-abc", Some(&route()), facts, ts(NOW))
        })
    };
    let bought = buy("spring26", "39.20").unwrap();
    assert_eq!(bought.spec.promotion_code.as_deref(), Some("SPRING26"));
    assert!(matches!(
        buy("spring26", "49.00"),
        Err(PurchaseRefusal::PriceChanged { .. })
    ));
    assert!(matches!(
        buy("other", "39.20"),
        Err(PurchaseRefusal::Invalid { ref code, .. }) if code == "PromotionCodeInvalid"
    ));
}

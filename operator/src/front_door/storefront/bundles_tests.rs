use super::*;
use crate::api::bundle::BundleSpec;
use crate::api::listing::Visibility;
use crate::lifecycle::fixtures::{listing, subscription, tenant};

fn listings() -> Vec<Arc<Listing>> {
    let priced = |name: &str, amount: &str| {
        let spec = listing(&format!(
            "{{displayName: {name}, plans: [{{name: pro, displayName: Pro, pricing: {{model: Flat, amount: \"{amount}\", currency: USD, interval: Month}}}}]}}"
        ));
        Arc::new(Listing::new(&name.to_lowercase(), spec))
    };
    vec![priced("Routes", "30.00"), priced("Reports", "10.00")]
}

fn suite() -> Arc<Bundle> {
    let spec: BundleSpec = serde_saphyr::from_str(
        "{displayName: Suite, members: [{listing: routes, plan: pro}, {listing: reports, plan: pro}], discount: {percentage: 10}}",
    )
    .unwrap();
    Arc::new(Bundle::new("suite", spec))
}

#[test]
fn an_offer_shows_list_total_price_and_savings() {
    let acme = Tenant::new("acme", tenant("Professional"));
    let offers = bundle_offers(&[suite()], &listings(), Viewer::of("acme", &acme));
    assert_eq!(offers.len(), 1);
    let o = &offers[0];
    assert_eq!(
        (o.list_total.as_str(), o.price.as_str(), o.savings.as_str()),
        ("40.00", "36.00", "4.00")
    );
    assert_eq!(o.members[0].display_name, "Routes");
    assert_eq!(o.members[0].price, "27.00");
}

#[test]
fn a_bundle_with_a_hidden_member_is_not_offered() {
    let acme = Tenant::new("acme", tenant("Professional"));
    let mut hidden = listings();
    Arc::make_mut(&mut hidden[1]).spec.visibility = Visibility::Internal;
    assert!(bundle_offers(&[suite()], &hidden, Viewer::of("acme", &acme)).is_empty());
}

#[test]
fn a_tenant_with_a_member_listing_already_cannot_buy_the_bundle() {
    let acme = Tenant::new("acme", tenant("Professional"));
    let offers = bundle_offers(&[suite()], &listings(), Viewer::of("acme", &acme));
    let mut mine = TenantSubscription::new("r", subscription("{listing: reports, plan: pro}"));
    mine.metadata.namespace = Some("tenant-acme".into());
    let (status, code, message) = decide_bundle_purchase("suite", &offers, &[&mine]).unwrap_err();
    assert_eq!((status, code), (StatusCode::CONFLICT, "AlreadySubscribed"));
    assert!(message.contains("Reports"), "{message}");
    assert!(decide_bundle_purchase("suite", &offers, &[]).is_ok());
    let (status, ..) = decide_bundle_purchase("other", &offers, &[]).unwrap_err();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn purchase_names_are_stable_and_short() {
    let name = purchase_name(&"x".repeat(63), "acme", "key-1");
    assert!(name.len() <= 40, "{name}");
    assert_eq!(name, purchase_name(&"x".repeat(63), "acme", "key-1"));
    assert_ne!(name, purchase_name(&"x".repeat(63), "acme", "key-2"));
}

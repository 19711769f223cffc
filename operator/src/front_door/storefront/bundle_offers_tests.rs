use super::*;
use crate::api::bundle::{BundleSpec, BundleSubscriptionSpec, BundleSubscriptionStatus};
use crate::api::listing::Visibility;
use crate::api::tenant::Tenant;
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
    let offers = bundle_offers(
        &[suite()],
        &listings(),
        Viewer::of("acme", &acme),
        &Promoting::default(),
    );
    assert_eq!(offers.len(), 1);
    let o = &offers[0];
    assert_eq!(
        (o.list_total.as_str(), o.price.as_str(), o.savings.as_str()),
        ("40.00", "36.00", "4.00")
    );
    assert_eq!(o.members[0].display_name, "Routes");
    assert_eq!(o.members[0].plan_display_name, "Pro");
    assert_eq!(o.members[0].price, "27.00");
    assert_eq!(o.discount.percentage, Some(10));
    assert_eq!(
        o.confirmation,
        "Confirm addition of $36.00/mo to your bill for Suite? You save $4.00/mo on its add-ons' list total of $40.00/mo."
    );
}

fn offers() -> Vec<BundleOffer> {
    let acme = Tenant::new("acme", tenant("Professional"));
    bundle_offers(
        &[suite()],
        &listings(),
        Viewer::of("acme", &acme),
        &Promoting::default(),
    )
}

#[test]
fn a_purchase_goes_through_only_at_the_price_confirmed() {
    let offers = offers();
    let seen = offers[0].quoted_price();
    assert!(decide_bundle_purchase("suite", &offers, &[], Some(&seen)).is_ok());
    let same = QuotedPrice {
        amount: "36".into(),
        ..seen.clone()
    };
    assert!(decide_bundle_purchase("suite", &offers, &[], Some(&same)).is_ok());
    let old = QuotedPrice {
        amount: "40.00".into(),
        ..seen
    };
    let (status, code, message) =
        decide_bundle_purchase("suite", &offers, &[], Some(&old)).unwrap_err();
    assert_eq!((status, code), (StatusCode::CONFLICT, "PriceChanged"));
    assert!(message.contains("$36.00/mo"), "{message}");
    // Unconfirmed: refused, naming the price to confirm.
    let (status, code, message) = decide_bundle_purchase("suite", &offers, &[], None).unwrap_err();
    assert_eq!(
        (status, code),
        (StatusCode::UNPROCESSABLE_ENTITY, "PriceNotConfirmed")
    );
    assert!(message.contains("$36.00/mo"), "{message}");
}

fn purchase(cancelling: bool, phase: Option<BundlePhase>) -> BundleSubscription {
    let mut p = BundleSubscription::new(
        "suite-1",
        BundleSubscriptionSpec {
            promotion_code: None,
            bundle: "suite".into(),
            cancellation: cancelling.then(|| CancellationRequest {
                reason: None,
                effective: Default::default(),
            }),
        },
    );
    p.status = Some(BundleSubscriptionStatus {
        phase,
        ..BundleSubscriptionStatus::default()
    });
    p
}

#[test]
fn a_bundle_is_cancelled_once_and_not_after_it_ended() {
    let request = CancelRequest::default();
    assert!(decide_bundle_cancel(&purchase(false, Some(BundlePhase::Active)), &request).is_ok());
    assert!(decide_bundle_cancel(&purchase(false, Some(BundlePhase::Failed)), &request).is_ok());
    let (_, code, _) =
        decide_bundle_cancel(&purchase(true, Some(BundlePhase::Cancelling)), &request).unwrap_err();
    assert_eq!(code, "AlreadyCancelling");
    let (_, code, _) =
        decide_bundle_cancel(&purchase(false, Some(BundlePhase::Cancelled)), &request).unwrap_err();
    assert_eq!(code, "BundleEnded");
}

#[test]
fn the_standing_says_bought_available_or_why_not() {
    let offers = offers();
    let live = purchase(false, Some(BundlePhase::Pending));
    assert_eq!(
        bundle_standing("suite", &offers, &[&live], &[]),
        BundleStanding::Bought {
            purchase: "suite-1".into()
        }
    );
    // A cancelled or failed purchase does not hold the bundle.
    let ended = purchase(true, Some(BundlePhase::Cancelled));
    let failed = purchase(false, Some(BundlePhase::Failed));
    assert_eq!(
        bundle_standing("suite", &offers, &[&ended, &failed], &[]),
        BundleStanding::Available
    );
    let mine = TenantSubscription::new("r", subscription("{listing: routes, plan: pro}"));
    let BundleStanding::Unavailable { message } = bundle_standing("suite", &offers, &[], &[&mine])
    else {
        panic!("a member listing is subscribed already");
    };
    assert!(message.contains("Routes"), "{message}");
}

#[test]
fn a_bundle_with_a_hidden_member_is_not_offered() {
    let acme = Tenant::new("acme", tenant("Professional"));
    let mut hidden = listings();
    Arc::make_mut(&mut hidden[1]).spec.visibility = Visibility::Internal;
    assert!(
        bundle_offers(
            &[suite()],
            &hidden,
            Viewer::of("acme", &acme),
            &Promoting::default()
        )
        .is_empty()
    );
}

#[test]
fn a_tenant_with_a_member_listing_already_cannot_buy_the_bundle() {
    let acme = Tenant::new("acme", tenant("Professional"));
    let offers = bundle_offers(
        &[suite()],
        &listings(),
        Viewer::of("acme", &acme),
        &Promoting::default(),
    );
    let mut mine = TenantSubscription::new("r", subscription("{listing: reports, plan: pro}"));
    mine.metadata.namespace = Some("tenant-acme".into());
    let (status, code, message) =
        decide_bundle_purchase("suite", &offers, &[&mine], None).unwrap_err();
    assert_eq!((status, code), (StatusCode::CONFLICT, "AlreadySubscribed"));
    assert!(message.contains("Reports"), "{message}");
    let seen = offers[0].quoted_price();
    assert!(decide_bundle_purchase("suite", &offers, &[], Some(&seen)).is_ok());
    let (status, ..) = decide_bundle_purchase("other", &offers, &[], Some(&seen)).unwrap_err();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn purchase_names_are_stable_and_short() {
    let name = purchase_name(&"x".repeat(63), "acme", "key-1");
    assert!(name.len() <= 40, "{name}");
    assert_eq!(name, purchase_name(&"x".repeat(63), "acme", "key-1"));
    assert_ne!(name, purchase_name(&"x".repeat(63), "acme", "key-2"));
}

#[test]
fn a_promoted_bundle_shows_its_promoted_and_regular_price_and_end() {
    let acme = Tenant::new("acme", tenant("Professional"));
    let spec = serde_saphyr::from_str(
        r#"
displayName: Suite week
bundles: [suite]
discount: {price: "30.00"}
startsAt: "2026-03-01T00:00:00Z"
endsAt: "2026-03-08T00:00:00Z"
code: SUITE30
periods: 3
"#,
    )
    .unwrap();
    let promotions = [Arc::new(Promotion::new("suite-week", spec))];
    let priced = |code: Option<&'static str>, now: &str| {
        let promoting = Promoting {
            buyer: Buyer::of(&acme.spec),
            promotions: &promotions,
            code,
            now: crate::lifecycle::fixtures::ts(now),
        };
        bundle_offers(
            &[suite()],
            &listings(),
            Viewer::of("acme", &acme),
            &promoting,
        )
    };
    let offers = priced(Some("SUITE30"), "2026-03-02T00:00:00Z");
    let o = &offers[0];
    assert_eq!(
        (
            o.price.as_str(),
            o.regular_price.as_str(),
            o.savings.as_str()
        ),
        ("30.00", "36.00", "10.00")
    );
    let members: Vec<_> = o.members.iter().map(|m| m.price.as_str()).collect();
    assert_eq!(members, ["22.50", "7.50"], "the promoted price shared");
    let promotion = o.promotion.as_ref().expect("promoted");
    assert_eq!(promotion.list_price, "$36.00/mo");
    assert_eq!(
        promotion.ends_at,
        crate::lifecycle::fixtures::ts("2026-03-08T00:00:00Z")
    );
    assert_eq!(
        o.confirmation,
        "Confirm addition of $30.00/mo to your bill for Suite? You save $10.00/mo on its add-ons' list total of $40.00/mo. \
Suite week: this price for 3 billing periods, then $36.00/mo."
    );
    assert!(decide_bundle_code("suite", &offers, "SUITE30").is_ok());
    // The buyer confirmed the promoted price; without the code (or once closed) it is the
    // regular one, so that confirmation is refused as a changed price.
    let seen = o.quoted_price();
    let plain = priced(None, "2026-03-02T00:00:00Z");
    assert_eq!(plain[0].promotion, None);
    let refused = decide_bundle_purchase("suite", &plain, &[], Some(&seen)).unwrap_err();
    assert_eq!(refused.1, "PriceChanged");
    let closed = priced(Some("SUITE30"), "2026-03-08T00:00:00Z");
    assert_eq!(closed[0].price, "36.00");
    assert_eq!(
        decide_bundle_code("suite", &closed, "SUITE30")
            .unwrap_err()
            .1,
        "PromotionCodeInvalid"
    );
    assert!(decide_bundle_purchase("suite", &offers, &[], Some(&seen)).is_ok());
}

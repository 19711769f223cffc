use std::collections::BTreeMap;

use super::*;
use crate::api::tenant_subscription::TenantSubscriptionStatus;
use crate::lifecycle::fixtures::{listing, ts};

/// Two monthly USD listings: routes at 30.00, reports at 10.00 (plan `pro` each).
fn catalog() -> BTreeMap<&'static str, ListingSpec> {
    let priced = |name: &str, amount: &str| {
        listing(&format!(
            "{{displayName: {name}, plans: [{{name: pro, displayName: Pro, pricing: {{model: Flat, amount: \"{amount}\", currency: USD, interval: Month}}}}]}}"
        ))
    };
    BTreeMap::from([
        ("routes", priced("Routes", "30.00")),
        ("reports", priced("Reports", "10.00")),
    ])
}

fn bundle(yaml: &str) -> BundleSpec {
    serde_saphyr::from_str(yaml).unwrap()
}

const SUITE: &str = r#"
displayName: Suite
members: [{listing: routes, plan: pro}, {listing: reports, plan: pro}]
discount: {amount: "8.00", currency: USD}
"#;

fn quoted(
    spec: &BundleSpec,
    catalog: &BTreeMap<&str, ListingSpec>,
) -> Result<BundleQuote, Vec<BundleProblem>> {
    quote(spec, |n| catalog.get(n), |_| false)
}

#[test]
fn an_amount_is_shared_in_proportion_to_list_prices_and_adds_up() {
    let q = quoted(&bundle(SUITE), &catalog()).unwrap();
    assert_eq!(
        (q.list_total, q.total, q.savings()),
        (400_000, 320_000, 80_000)
    );
    let offs: Vec<_> = q.members.iter().map(|m| m.discount_amount).collect();
    assert_eq!(offs, vec![Some(60_000), Some(20_000)], "6.00 and 2.00 off");
    // An amount that does not divide evenly: the last paying member takes the remainder.
    let odd = bundle(&SUITE.replace("8.00", "0.0003"));
    let q = quoted(&odd, &catalog()).unwrap();
    let off: Minor = q.members.iter().filter_map(|m| m.discount_amount).sum();
    assert_eq!(off, 3);
}

#[test]
fn a_percentage_cuts_every_member() {
    let spec = bundle(&SUITE.replace("{amount: \"8.00\", currency: USD}", "{percentage: 25}"));
    let q = quoted(&spec, &catalog()).unwrap();
    assert_eq!(q.total, 300_000);
    assert!(q.members.iter().all(|m| m.discount_percentage == Some(25)));
}

#[test]
fn lint_problems_name_the_field_and_reason() {
    fn problems(yaml: &str, catalog: &BTreeMap<&str, ListingSpec>) -> Vec<(String, String)> {
        quoted(&bundle(yaml), catalog)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.pointer, p.message))
            .collect()
    }
    let c = catalog();
    let unknown = problems(&SUITE.replace("listing: reports", "listing: report"), &c);
    assert_eq!(unknown[0].0, "/spec/members/1/listing");
    assert!(unknown[0].1.contains("not in the catalog"), "{unknown:?}");
    let plan = problems(
        &SUITE.replace("reports, plan: pro", "reports, plan: gold"),
        &c,
    );
    assert_eq!(plan[0].0, "/spec/members/1/plan");
    let twice = problems(&SUITE.replace("listing: reports", "listing: routes"), &c);
    assert_eq!(twice[0].0, "/spec/members/1/listing");
    assert!(twice[0].1.contains("twice"));
    let too_much = problems(&SUITE.replace("8.00", "40.00"), &c);
    assert_eq!(too_much[0].0, "/spec/discount/amount");
    let euros = problems(&SUITE.replace("currency: USD", "currency: EUR"), &c);
    assert_eq!(euros[0].0, "/spec/discount/currency");
    let mut archived = catalog();
    archived.get_mut("reports").unwrap().lifecycle = Lifecycle::Archived;
    let retired = problems(SUITE, &archived);
    assert_eq!(retired[0].0, "/spec/members/1/listing");
    assert!(retired[0].1.contains("Archived"), "{retired:?}");
    let mut mixed = catalog();
    mixed.get_mut("reports").unwrap().plans[0].pricing.currency = "EUR".into();
    let mixed = problems(
        &SUITE.replace("{amount: \"8.00\", currency: USD}", "{percentage: 5}"),
        &mixed,
    );
    assert_eq!(mixed[0].0, "/spec/members/1/plan");
    assert!(mixed[0].1.contains("EUR"), "{mixed:?}");
}

fn purchase<'a>(
    status: &'a BundleSubscriptionStatus,
    cancellation: Option<&'a CancellationRequest>,
) -> PurchaseFacts<'a> {
    PurchaseFacts {
        name: "suite-1",
        bundle: "suite",
        cancellation,
        status,
    }
}

fn member(listing: &str, phase: Option<Phase>, cancelling: bool) -> MemberFact {
    MemberFact {
        name: member_name("suite-1", listing),
        listing: listing.into(),
        plan: "pro".into(),
        phase,
        cancelling,
    }
}

const NOW: &str = "2026-12-01T10:00:00Z";

#[test]
fn a_new_purchase_creates_every_member_once() {
    let q = quoted(&bundle(SUITE), &catalog()).unwrap();
    let status = BundleSubscriptionStatus::default();
    let plan = plan_members(&purchase(&status, None), Ok(&q), &[], ts(NOW));
    let names: Vec<_> = plan.create.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["suite-1-routes", "suite-1-reports"]);
    let spec = &plan.create[0].1;
    assert_eq!(
        spec.bundle.as_ref().unwrap().subscription.as_str(),
        "suite-1"
    );
    assert_eq!(plan.status.phase, Some(BundlePhase::Pending));
    assert_eq!(plan.status.members.len(), 2);
    // After a crash between the creations, only the missing one is created again.
    let half = [member("routes", None, false)];
    let again = plan_members(&purchase(&plan.status, None), Ok(&q), &half, ts(NOW));
    assert_eq!(again.create.len(), 1);
    assert_eq!(again.create[0].0, "suite-1-reports");
    // With both there, nothing is created: exactly one member each.
    let both = [
        member("routes", None, false),
        member("reports", None, false),
    ];
    let done = plan_members(&purchase(&plan.status, None), Ok(&q), &both, ts(NOW));
    assert!(done.create.is_empty() && done.cancel.is_empty());
}

#[test]
fn the_recorded_member_set_outlives_catalog_changes() {
    let q = quoted(&bundle(SUITE), &catalog()).unwrap();
    let first = plan_members(&purchase(&Default::default(), None), Ok(&q), &[], ts(NOW));
    // The bundle left the catalog: the purchase keeps its members.
    let later = plan_members(
        &purchase(&first.status, None),
        Err("not in the catalog"),
        &[],
        ts(NOW),
    );
    assert_eq!(later.create.len(), 2);
    // Never recorded and not in the catalog: Failed, with the reason.
    let never = plan_members(
        &purchase(&Default::default(), None),
        Err("not in the catalog"),
        &[],
        ts(NOW),
    );
    assert!(never.create.is_empty());
    assert_eq!(never.status.phase, Some(BundlePhase::Failed));
    assert!(never.status.message.unwrap().contains("\"suite\""));
}

#[test]
fn active_when_every_member_is_in_service_and_stamped_once() {
    let q = quoted(&bundle(SUITE), &catalog()).unwrap();
    let first = plan_members(&purchase(&Default::default(), None), Ok(&q), &[], ts(NOW));
    let live = [
        member("routes", Some(Phase::Active), false),
        member("reports", Some(Phase::Active), false),
    ];
    let active = plan_members(&purchase(&first.status, None), Ok(&q), &live, ts(NOW));
    assert_eq!(active.status.phase, Some(BundlePhase::Active));
    assert_eq!(active.status.active_since, Some(Time(ts(NOW))));
    let later = plan_members(
        &purchase(&active.status, None),
        Ok(&q),
        &live,
        ts("2026-12-02T00:00:00Z"),
    );
    assert_eq!(later.status.active_since, Some(Time(ts(NOW))), "kept");
    let rejected = [
        member("routes", Some(Phase::Active), false),
        member("reports", Some(Phase::Rejected), false),
    ];
    let failed = plan_members(&purchase(&first.status, None), Ok(&q), &rejected, ts(NOW));
    assert_eq!(failed.status.phase, Some(BundlePhase::Failed));
    assert!(failed.status.message.unwrap().contains("suite-1-reports"));
}

#[test]
fn cancelling_the_purchase_cancels_every_member_not_already_ending() {
    let q = quoted(&bundle(SUITE), &catalog()).unwrap();
    let first = plan_members(&purchase(&Default::default(), None), Ok(&q), &[], ts(NOW));
    let request = CancellationRequest {
        reason: Some("done".into()),
        effective: Default::default(),
    };
    let live = [
        member("routes", Some(Phase::Active), false),
        member("reports", Some(Phase::CancelRequested), true),
    ];
    let plan = plan_members(
        &purchase(&first.status, Some(&request)),
        Ok(&q),
        &live,
        ts(NOW),
    );
    assert!(plan.create.is_empty());
    assert_eq!(
        plan.cancel,
        vec![("suite-1-routes".to_string(), request.clone())]
    );
    assert_eq!(plan.status.phase, Some(BundlePhase::Cancelling));
    let ended = [
        member("routes", Some(Phase::Cancelled), true),
        member("reports", Some(Phase::Cancelled), true),
    ];
    let done = plan_members(
        &purchase(&first.status, Some(&request)),
        Ok(&q),
        &ended,
        ts(NOW),
    );
    assert!(done.cancel.is_empty());
    assert_eq!(done.status.phase, Some(BundlePhase::Cancelled));
}

#[test]
fn only_the_purchase_own_members_record_the_discount() {
    let c = catalog();
    let b = bundle(SUITE);
    let q = quoted(&b, &c).unwrap();
    let plan = plan_members(&purchase(&Default::default(), None), Ok(&q), &[], ts(NOW));
    let (name, spec) = &plan.create[0];
    let status = TenantSubscriptionStatus::default();
    let record = |name: &str, owner: Option<&str>| {
        to_record(name, spec, &status, owner, Some(&b), None, |n| c.get(n)).map(
            |(applied, promoted)| {
                assert_eq!(promoted, None, "bought without a promotion");
                applied
            },
        )
    };
    let applied = record(name, Some("suite-1")).expect("the purchase's member");
    assert_eq!(
        (applied.list_price.as_str(), applied.price.as_str()),
        ("30.00", "24.00")
    );
    assert_eq!(applied.discount_amount.as_deref(), Some("6.00"));
    assert_eq!(
        record(name, Some("other")),
        None,
        "owned by another purchase"
    );
    assert_eq!(
        record("suite-1-copy", Some("suite-1")),
        None,
        "not the member's name"
    );
    let discount = line_discount(Some(&applied), "pro").unwrap();
    assert_eq!(
        discount.properties(),
        vec![("discount", "6.00".to_string())]
    );
    assert_eq!(discount.net_unit_price, "24.00");
    assert_eq!(
        line_discount(Some(&applied), "basic"),
        None,
        "another plan: list price"
    );
}

#[test]
fn member_names_fit_a_label() {
    assert_eq!(member_name("suite-1", "routes"), "suite-1-routes");
    let long = member_name(&"b".repeat(40), &"l".repeat(63));
    assert!(long.len() <= 63, "{long}");
    assert_eq!(
        long,
        member_name(&"b".repeat(40), &"l".repeat(63)),
        "stable"
    );
}

/// A promotion of 25% off bundle `suite` for the `smb` segment in March 2026, kept 2 periods.
fn spring_on_suite() -> Promotion {
    let spec = serde_saphyr::from_str(
        r#"
displayName: Suite spring
bundles: [suite]
discount: {percentage: 25}
startsAt: "2026-03-01T00:00:00Z"
endsAt: "2026-04-01T00:00:00Z"
segments: [smb]
periods: 2
"#,
    )
    .unwrap();
    Promotion::new("suite-spring", spec)
}

const SMB: Buyer<'static> = Buyer {
    segment: Some("smb"),
    region: None,
};

#[test]
fn a_bundle_purchase_records_the_promotion_open_when_it_was_made() {
    let q = quoted(&bundle(SUITE), &catalog()).unwrap();
    let spring = spring_on_suite();
    let decide = |status: &BundleSubscriptionStatus, buyer: &Buyer<'_>, at: &str| {
        promotion_to_record("suite", status, &q, buyer, [&spring], None, ts(at))
    };
    let none = BundleSubscriptionStatus::default();
    // Purchases before the window, inside it, at its end; and by another segment.
    assert_eq!(decide(&none, &SMB, "2026-02-28T23:59:59Z"), None);
    let kept = decide(&none, &SMB, "2026-03-10T00:00:00Z").expect("open");
    assert_eq!(
        (kept.list_price.as_str(), kept.price.as_str()),
        ("32.00", "24.00"),
        "25% off the bundle's price (its own 8.00 already off)"
    );
    assert_eq!(kept.periods, 2);
    assert_eq!(kept.kept_until.0, ts("2026-05-10T00:00:00Z"));
    assert_eq!(decide(&none, &SMB, "2026-04-01T00:00:00Z"), None);
    assert_eq!(
        decide(&none, &Buyer::default(), "2026-03-10T00:00:00Z"),
        None
    );
    // Decided once: a purchase with members or a promotion already keeps what it has.
    let recorded = BundleSubscriptionStatus {
        promotion: Some(kept.clone()),
        ..Default::default()
    };
    assert_eq!(decide(&recorded, &SMB, "2026-03-11T00:00:00Z"), None);
    let plan = plan_members(&purchase(&recorded, None), Ok(&q), &[], ts(NOW));
    assert_eq!(plan.status.promotion, Some(kept), "kept in the status");
}

#[test]
fn members_bill_their_share_of_the_promoted_price_until_it_lapses() {
    let c = catalog();
    let b = bundle(SUITE);
    let q = quoted(&b, &c).unwrap();
    let spring = spring_on_suite();
    let bought = ts("2026-03-10T00:00:00Z");
    let kept = promotion_to_record(
        "suite",
        &Default::default(),
        &q,
        &SMB,
        [&spring],
        None,
        bought,
    )
    .unwrap();
    let shares = promoted_members(&q, 240_000);
    let prices: Vec<_> = shares.iter().map(|m| m.price).collect();
    assert_eq!(
        prices,
        vec![180_000, 60_000],
        "16.00 off 40.00, in proportion"
    );
    let plan = plan_members(&purchase(&Default::default(), None), Ok(&q), &[], ts(NOW));
    let (name, spec) = &plan.create[0];
    let status = TenantSubscriptionStatus::default();
    let (applied, promoted) = to_record(
        name,
        spec,
        &status,
        Some("suite-1"),
        Some(&b),
        Some(&kept),
        |n| c.get(n),
    )
    .unwrap();
    let promoted = promoted.expect("the member's share of the promotion");
    assert_eq!(
        applied.price, "24.00",
        "the bundle's own share stays recorded"
    );
    assert_eq!(
        (promoted.name.as_str(), promoted.price.as_str()),
        ("suite-spring", "18.00")
    );
    assert_eq!(promoted.discount_amount.as_deref(), Some("12.00"));
    assert_eq!(promoted.kept_until, kept.kept_until);
    // Billed: the promoted share while kept, the bundle's share once the kept periods are over.
    let billed = |at: &str| {
        super::super::promotion::line_discount(Some(&promoted), "pro", ts(at))
            .or_else(|| line_discount(Some(&applied), "pro"))
            .map(|d| d.net_unit_price)
    };
    assert_eq!(billed("2026-05-09T23:59:59Z").as_deref(), Some("18.00"));
    assert_eq!(billed("2026-05-10T00:00:00Z").as_deref(), Some("24.00"));
}

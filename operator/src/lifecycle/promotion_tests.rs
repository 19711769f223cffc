use super::*;
use crate::lifecycle::fixtures::{listing, ts};

fn promotion(name: &str, yaml: &str) -> Promotion {
    let spec: PromotionSpec = serde_saphyr::from_str(yaml).unwrap();
    Promotion::new(name, spec)
}

const SPRING: &str = r#"
displayName: Spring launch
targets: [{listing: route-optimization}]
discount: {percentage: 20}
startsAt: "2026-03-01T00:00:00Z"
endsAt: "2026-04-01T00:00:00Z"
periods: 3
"#;

fn flat_plan() -> Plan {
    listing("").plans[1].clone()
}

fn standard_plan() -> Plan {
    listing("").plans[0].clone()
}

const NOBODY: Buyer<'static> = Buyer {
    segment: None,
    region: None,
};

#[test]
fn a_promotion_applies_only_inside_its_window() {
    let spring = promotion("spring", SPRING);
    let plan = flat_plan();
    let at = |t: &str| offer("route-optimization", &plan, &NOBODY, [&spring], None, ts(t));
    // Subscriptions bought before it starts, while it runs, at its end and after.
    assert_eq!(at("2026-02-28T23:59:59Z"), None);
    let during = at("2026-03-01T00:00:00Z").expect("open at its start");
    assert_eq!(during.price, "39.20");
    assert_eq!(during.list_price, "49.00");
    assert_eq!(during.discount_percentage, Some(20));
    assert_eq!(during.ends_at, ts("2026-04-01T00:00:00Z"));
    assert_eq!(at("2026-03-31T23:59:59Z"), Some(during));
    assert_eq!(at("2026-04-01T00:00:00Z"), None, "closed at its end");
    assert_eq!(at("2026-05-01T00:00:00Z"), None);
}

#[test]
fn the_kept_price_lasts_the_promised_periods_of_the_plan() {
    let spring = promotion("spring", SPRING);
    let bought = ts("2026-03-31T12:00:00Z");
    let plan = standard_plan(); // monthly
    let found = offer(
        "route-optimization",
        &plan,
        &NOBODY,
        [&spring],
        None,
        bought,
    )
    .unwrap();
    assert_eq!(found.price, "9.60");
    let kept = applied(&found, &plan, bought);
    assert_eq!(kept.kept_until.0, ts("2026-06-30T12:00:00Z"));
    assert!(in_force(&kept, ts("2026-06-30T11:59:59Z")));
    assert!(!in_force(&kept, ts("2026-06-30T12:00:00Z")));
    let yearly = flat_plan();
    let kept = applied(&found, &yearly, bought);
    assert_eq!(kept.kept_until.0, ts("2029-03-31T12:00:00Z"));
}

#[test]
fn segments_regions_and_codes_limit_who_gets_it() {
    let limited = promotion(
        "eu-smb",
        &format!("{SPRING}segments: [smb]\nregions: [eu-west]\ncode: SPRING26\n"),
    );
    let plan = flat_plan();
    let now = ts("2026-03-10T00:00:00Z");
    let eu_smb = Buyer {
        segment: Some("smb"),
        region: Some("eu-west"),
    };
    let us_smb = Buyer {
        region: Some("us-east"),
        ..eu_smb
    };
    let get =
        |buyer: &Buyer<'_>, code| offer("route-optimization", &plan, buyer, [&limited], code, now);
    assert!(
        get(&eu_smb, Some("spring26")).is_some(),
        "codes ignore case"
    );
    assert!(get(&eu_smb, None).is_none(), "the code is required");
    assert!(get(&eu_smb, Some("WINTER")).is_none());
    assert!(get(&us_smb, Some("SPRING26")).is_none(), "wrong region");
    assert!(get(&NOBODY, Some("SPRING26")).is_none(), "no segment");
}

#[test]
fn the_lowest_price_wins_and_targets_are_respected() {
    let spring = promotion("spring", SPRING);
    let deeper = promotion(
        "deeper",
        &SPRING.replace("{percentage: 20}", "{price: \"30\"}"),
    );
    let standard_only = promotion(
        "standard-only",
        &SPRING.replace(
            "[{listing: route-optimization}]",
            "[{listing: route-optimization, plans: [standard]}]",
        ),
    );
    let plan = flat_plan();
    let now = ts("2026-03-10T00:00:00Z");
    let found = offer(
        "route-optimization",
        &plan,
        &NOBODY,
        [&spring, &deeper],
        None,
        now,
    )
    .unwrap();
    assert_eq!(found.promotion, "deeper");
    assert_eq!(found.price, "30.00");
    assert_eq!(found.discount_amount.as_deref(), Some("19.00"));
    assert!(
        offer(
            "route-optimization",
            &plan,
            &NOBODY,
            [&standard_only],
            None,
            now
        )
        .is_none()
    );
    assert!(offer("chat", &plan, &NOBODY, [&spring], None, now).is_none());
}

#[test]
fn a_cut_never_raises_the_price_nor_goes_below_zero() {
    let plan = flat_plan();
    let now = ts("2026-03-10T00:00:00Z");
    let higher = promotion(
        "higher",
        &SPRING.replace("{percentage: 20}", "{price: \"60\"}"),
    );
    assert!(offer("route-optimization", &plan, &NOBODY, [&higher], None, now).is_none());
    let huge = promotion(
        "huge",
        &SPRING.replace("{percentage: 20}", "{amount: \"500\"}"),
    );
    let found = offer("route-optimization", &plan, &NOBODY, [&huge], None, now).unwrap();
    assert_eq!(found.price, "0.00");
    assert_eq!(found.discount_amount.as_deref(), Some("49.00"));
}

#[test]
fn a_billed_discount_lapses_when_the_kept_periods_end() {
    use crate::api::tenant_subscription::{HubSpotIds, TenantSubscriptionStatus};
    let spring = promotion("spring", SPRING);
    let plan = standard_plan();
    let bought = ts("2026-03-10T00:00:00Z");
    let found = offer(
        "route-optimization",
        &plan,
        &NOBODY,
        [&spring],
        None,
        bought,
    )
    .unwrap();
    let mut status = TenantSubscriptionStatus {
        promotion: Some(applied(&found, &plan, bought)),
        ..Default::default()
    };
    assert!(
        !discount_lapsed(&status, ts("2026-07-01T00:00:00Z")),
        "nothing billed yet"
    );
    status.hubspot = Some(HubSpotIds {
        billed_promotion: Some("spring".into()),
        ..HubSpotIds::default()
    });
    assert!(!discount_lapsed(&status, ts("2026-06-09T23:59:59Z")));
    assert!(discount_lapsed(&status, ts("2026-06-10T00:00:00Z")));
    let discount = line_discount(status.promotion.as_ref(), "standard", bought).unwrap();
    assert_eq!(discount.percentage, Some(20));
    assert_eq!(discount.net_unit_price, "9.60");
    assert!(line_discount(status.promotion.as_ref(), "flat", bought).is_none());
    assert!(
        line_discount(
            status.promotion.as_ref(),
            "standard",
            ts("2026-06-10T00:00:00Z")
        )
        .is_none()
    );
}

#[test]
fn a_bundle_promotion_lowers_the_bundle_price_for_its_buyers_and_code() {
    let coded = promotion(
        "suite-code",
        r#"
displayName: Suite code
bundles: [suite]
discount: {amount: "5.00"}
startsAt: "2026-03-01T00:00:00Z"
endsAt: "2026-04-01T00:00:00Z"
regions: [eu]
code: SUITE5
periods: 1
"#,
    );
    let spring = promotion("spring", SPRING);
    let eu = Buyer {
        segment: None,
        region: Some("eu"),
    };
    let at = |buyer: &Buyer<'_>, code: Option<&str>, t: &str| {
        bundle_offer("suite", 320_000, buyer, [&coded, &spring], code, ts(t))
    };
    let found = at(&eu, Some("suite5"), "2026-03-10T00:00:00Z").expect("code, region, window");
    assert_eq!(
        (found.list_price.as_str(), found.price.as_str()),
        ("32.00", "27.00")
    );
    assert_eq!(found.ends_at, ts("2026-04-01T00:00:00Z"));
    assert_eq!(
        at(&eu, None, "2026-03-10T00:00:00Z"),
        None,
        "needs its code"
    );
    assert_eq!(
        at(&NOBODY, Some("SUITE5"), "2026-03-10T00:00:00Z"),
        None,
        "other region"
    );
    assert_eq!(
        at(&eu, Some("SUITE5"), "2026-04-01T00:00:00Z"),
        None,
        "closed"
    );
    assert_eq!(
        bundle_offer(
            "other",
            320_000,
            &eu,
            [&coded],
            Some("SUITE5"),
            ts("2026-03-10T00:00:00Z")
        ),
        None,
        "another bundle"
    );
    let plan = standard_plan();
    assert_eq!(
        offer(
            "route-optimization",
            &plan,
            &eu,
            [&coded],
            Some("SUITE5"),
            ts("2026-03-10T00:00:00Z")
        ),
        None,
        "a bundle promotion does not lower its members bought alone"
    );
    let kept = applied_to_bundle(&found, BillingInterval::Year, ts("2026-03-10T00:00:00Z"));
    assert_eq!(kept.kept_until.0, ts("2027-03-10T00:00:00Z"));
}

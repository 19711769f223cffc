use super::super::promotion_code::CodeField;
use super::super::tests::viewer;
use super::*;
use crate::api::bundle::{BundleDiscount, BundleMemberStatus, BundleSubscriptionStatus};
use crate::api::listing::BillingInterval;
use crate::api::tenant_subscription::{BundleMembership, Phase};
use crate::front_door::storefront::bundle_offers::OfferMember;
use crate::front_door::storefront::detail::SubscriptionView;

fn offer() -> BundleOffer {
    let member = |listing: &str, name: &str, list: &str, price: &str| OfferMember {
        listing: listing.into(),
        display_name: name.into(),
        plan: "pro".into(),
        plan_display_name: "Pro".into(),
        list_price: list.into(),
        price: price.into(),
    };
    BundleOffer {
        name: "suite".into(),
        display_name: "Fleet <b>suite</b>".into(),
        description: Some("Routes & reports".into()),
        members: vec![
            member("routes", "Routes", "30.00", "27.00"),
            member("reports", "Reports", "10.00", "9.00"),
        ],
        currency: "USD".into(),
        interval: BillingInterval::Month,
        list_total: "40.00".into(),
        price: "36.00".into(),
        savings: "4.00".into(),
        discount: BundleDiscount {
            percentage: Some(10),
            amount: None,
            currency: None,
        },
        confirmation: "Confirm addition of $36.00/mo to your bill for Fleet <b>suite</b>?".into(),
        regular_price: "36.00".into(),
        promotion: None,
    }
}

#[test]
fn a_bundle_card_shows_members_prices_and_savings_escaped() {
    let html = offer_card(&offer(), &BundleStanding::Available, &viewer(true));
    for words in [
        "Fleet &lt;b&gt;suite&lt;/b&gt;",
        "Routes &amp; reports",
        "Routes</a> · Pro",
        "$36.00/mo",
        "List total $40.00/mo",
        "You save $4.00/mo (10% off every add-on)",
        "href=\"/t/acme/bundles/suite#buy\"",
    ] {
        assert!(html.contains(words), "{words}: {html}");
    }
    assert!(!html.contains("<b>suite"), "{html}");
}

#[test]
fn only_a_billing_admin_gets_the_buy_form() {
    let admin = render_detail(
        &offer(),
        &BundleStanding::Available,
        &[],
        &BTreeMap::new(),
        &viewer(true),
        &CodeField::default(),
    );
    assert!(admin.contains("id=\"bundle-buy-form\""), "{admin}");
    assert!(
        admin.contains("action=\"/forms/t/acme/bundles/suite/buy\""),
        "{admin}"
    );
    // The quote rides in an attribute, escaped; the browser hands back the JSON.
    assert!(
        admin.contains("data-quote=\"{&quot;amount&quot;:&quot;36.00&quot;"),
        "{admin}"
    );
    assert!(admin.contains("data-confirm=\"Confirm addition of $36.00/mo to your bill for Fleet &lt;b&gt;suite&lt;/b&gt;?\""));
    let viewer_page = render_detail(
        &offer(),
        &BundleStanding::Available,
        &[],
        &BTreeMap::new(),
        &viewer(false),
        &CodeField::default(),
    );
    assert!(!viewer_page.contains("bundle-buy-form"), "{viewer_page}");
    assert!(viewer_page.contains("disabled aria-disabled=\"true\">Buy bundle"));
    assert!(viewer_page.contains("billing admins"));
    let taken = render_detail(
        &offer(),
        &BundleStanding::Unavailable {
            message: "the tenant already subscribes to Routes (routes)".into(),
        },
        &[],
        &BTreeMap::new(),
        &viewer(true),
        &CodeField::default(),
    );
    assert!(!taken.contains("bundle-buy-form"));
    assert!(taken.contains("The tenant already subscribes to Routes (routes)."));
}

#[test]
fn the_buy_form_takes_a_promotion_code_and_says_why_one_was_refused() {
    let page = |code: &CodeField| {
        render_detail(
            &offer(),
            &BundleStanding::Available,
            &[],
            &BTreeMap::new(),
            &viewer(true),
            code,
        )
    };
    let blank = page(&CodeField::default());
    let form = &blank[blank.find("id=\"bundle-buy-form\"").expect("form")..];
    let form = &form[..form.find("</form>").expect("end")];
    assert!(
        form.contains("<label for=\"promotion-code\">Promotion code"),
        "{form}"
    );
    assert!(form.contains("name=\"promotionCode\""), "{form}");
    // The script asks here for the code's sentence and price.
    assert!(
        form.contains("data-confirm-url=\"/t/acme/bundles/suite/confirmation\""),
        "{form}"
    );
    let refused = page(&CodeField::refused(
        "\"><script>",
        "promotion code \"NOPE\" is not on offer for bundle \"suite\"",
    ));
    assert!(!refused.contains("<script>"), "{refused}");
    assert!(
        refused.contains("value=\"&quot;&gt;&lt;script&gt;\""),
        "{refused}"
    );
    assert!(
        refused.contains(
            "class=\"error\" aria-live=\"polite\">Promotion code &quot;NOPE&quot; is not on offer for bundle &quot;suite&quot;.</p>"
        ),
        "{refused}"
    );
}

fn row(cannot_cancel: Option<&str>) -> PurchaseRow {
    let member = |listing: &str, phase| BundleMemberStatus {
        listing: listing.into(),
        plan: "pro".into(),
        subscription: format!("suite-1-{listing}"),
        phase: Some(phase),
    };
    PurchaseRow {
        view: BundlePurchaseView {
            name: "suite-1".into(),
            bundle: "suite".into(),
            cancellation: None,
            status: Some(BundleSubscriptionStatus {
                phase: Some(BundlePhase::Active),
                members: vec![
                    member("routes", Phase::Active),
                    member("reports", Phase::Active),
                ],
                ..BundleSubscriptionStatus::default()
            }),
        },
        cannot_cancel: cannot_cancel.map(str::to_string),
    }
}

#[test]
fn a_purchase_lists_its_members_and_cancels_them_all() {
    let names = BTreeMap::from([("suite".to_string(), "Fleet suite".to_string())]);
    let listings = BTreeMap::from([(
        "routes".to_string(),
        ListingFacts {
            display_name: "Routes".into(),
            plans: Vec::new(),
        },
    )]);
    let html = purchases_section(&[row(None)], &names, &listings, &viewer(true));
    for words in [
        "id=\"bundle-sub-suite-1\"",
        "Routes</a> · pro · <span class=\"member-phase\">Installed</span>",
        "reports</a>",
        "action=\"/forms/t/acme/bundle-subscriptions/suite-1/cancel\"",
        "data-call=\"POST /v1/tenants/acme/bundle-subscriptions/suite-1/cancel\"",
        "All of its add-ons end together: Routes, reports.",
    ] {
        assert!(html.contains(words), "{words}: {html}");
    }
    let cancelling = purchases_section(
        &[row(Some("the bundle is already being cancelled"))],
        &names,
        &listings,
        &viewer(true),
    );
    assert!(!cancelling.contains("Cancel bundle"));
    assert!(cancelling.contains("The bundle is already being cancelled."));
    let viewer_page = purchases_section(&[row(None)], &names, &listings, &viewer(false));
    assert!(viewer_page.contains("disabled aria-disabled=\"true\">Cancel bundle"));
    assert!(purchases_section(&[], &names, &listings, &viewer(true)).is_empty());
}

#[test]
fn a_member_row_says_it_ends_with_its_bundle_instead_of_a_cancel_button() {
    let member = SubscriptionView {
        name: "suite-1-routes".into(),
        listing: "routes".into(),
        plan: "pro".into(),
        quantity: 1,
        trial: false,
        phase: Phase::Active,
        created_at: None,
        trial_ends_at: None,
        current_period_end: None,
        cancellation: None,
        history: Vec::new(),
        field_mapping: BTreeMap::new(),
        bundle: Some(BundleMembership {
            name: "suite".into(),
            subscription: "suite-1".into(),
        }),
    };
    let names = BTreeMap::from([("suite".to_string(), "Fleet suite".to_string())]);
    let html = super::super::subscriptions_page::render(
        std::slice::from_ref(&member),
        &BTreeMap::new(),
        &names,
        &viewer(true),
    );
    assert!(html.contains("Part of the bundle Fleet suite"), "{html}");
    assert!(html.contains("href=\"#bundle-sub-suite-1\""), "{html}");
    assert!(!html.contains("Cancel at end of period"), "{html}");
    assert!(!html.contains("Change plan"), "{html}");
    let alone = SubscriptionView {
        bundle: None,
        ..member
    };
    let html =
        super::super::subscriptions_page::render(&[alone], &BTreeMap::new(), &names, &viewer(true));
    assert!(html.contains("Cancel at end of period"), "{html}");
}

#[test]
fn a_promoted_bundle_card_shows_the_promotion_end_and_the_price_after_it() {
    let mut promoted = offer();
    promoted.price = "30.00".into();
    promoted.promotion = Some(crate::front_door::storefront::detail::PromotionView {
        name: "suite-week".into(),
        display_name: "Suite <week>".into(),
        list_price: "$36.00/mo".into(),
        ends_at: "2026-03-08T00:00:00Z".parse().unwrap(),
        periods: 3,
    });
    let html = offer_card(&promoted, &BundleStanding::Available, &viewer(true));
    assert!(html.contains("$30.00/mo"), "{html}");
    assert!(
        html.contains("Suite &lt;week&gt; until 2026-03-08, then $36.00/mo"),
        "{html}"
    );
}

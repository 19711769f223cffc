//! Promotion codes on the buy forms: a listing and a bundle each have a promotion behind a code.
//! Without JavaScript, a wrong code brings the page back (422) with the code kept and why next
//! to the field, and the right one brings the confirmation page with the code's price. In the
//! browser, a wrong code says why next to the field and buys nothing; the right one (typed in
//! lower case) shows the discounted price with the promotion's words in the dialog, and the
//! purchase records the code and the promotion.

use fantoccini::{Client, Locator};
use jiff::{SignedDuration, Timestamp};
use kube::Client as KubeClient;
use kube::api::Api;
use marketplace_e2e::eventually;
use marketplace_e2e::storefront_world::listing;
use marketplace_e2e::subscriptions::apply;
use marketplace_e2e::unique_name;
use marketplace_operator::api::bundle::BundleSubscription;
use marketplace_operator::api::{Bundle, Listing, Promotion, TenantSubscription};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::no_script::{Plain, form, subscriptions_to};
use super::{WAIT, browser, click, wait_for, wait_for_text};

/// A listing and a bundle, each with a promotion behind `code`.
pub struct CodedCatalog {
    pub listing: String,
    pub listing_promotion: String,
    pub bundle: String,
    pub bundle_promotion: String,
    pub code: String,
}

fn at(offset: SignedDuration) -> String {
    (Timestamp::now() + offset)
        .round(jiff::Unit::Second)
        .expect("rounds")
        .to_string()
}

fn promotion(name: &str, spec: Value) -> Value {
    let hour = SignedDuration::from_hours(1);
    let mut full = json!({"startsAt": at(-hour), "endsAt": at(hour * 24), "periods": 2});
    for (k, v) in spec.as_object().expect("object") {
        full[k] = v.clone();
    }
    json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Promotion",
        "metadata": {"name": name}, "spec": full})
}

/// Applies the listings, the bundle and the promotions (before the API starts).
pub async fn catalog(client: &KubeClient) -> CodedCatalog {
    let listings: Api<Listing> = Api::all(client.clone());
    let promotions: Api<Promotion> = Api::all(client.clone());
    let code = format!("WEB{}", std::process::id());
    let coded = unique_name("fuel");
    apply(
        &listings,
        listing(
            &coded,
            json!({"displayName": "Fuel Savings", "tagline": "Bought with a code",
                "features": ["fuel_savings"]}),
        ),
    )
    .await;
    let listing_promotion = unique_name("fuel-code");
    apply(
        &promotions,
        promotion(
            &listing_promotion,
            json!({"displayName": "Launch code", "targets": [{"listing": coded, "plans": ["pro"]}],
                "discount": {"percentage": 20}, "code": code}),
        ),
    )
    .await;
    let (tires, yard) = (unique_name("tires"), unique_name("yard"));
    for (name, shown, feature) in [
        (&tires, "Tire Watch", "tire_watch"),
        (&yard, "Yard Check", "yard_check"),
    ] {
        apply(
            &listings,
            listing(name, json!({"displayName": shown, "features": [feature]})),
        )
        .await;
    }
    let bundle = unique_name("depot-pack");
    apply(
        &Api::<Bundle>::all(client.clone()),
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Bundle",
            "metadata": {"name": bundle},
            "spec": {"displayName": "Depot pack",
                "members": [{"listing": tires, "plan": "pro"}, {"listing": yard, "plan": "pro"}],
                "discount": {"percentage": 20}}}),
    )
    .await;
    let bundle_promotion = unique_name("depot-code");
    apply(
        &promotions,
        promotion(
            &bundle_promotion,
            json!({"displayName": "Depot code", "bundles": [bundle],
                "discount": {"price": "30.00"}, "code": code}),
        ),
    )
    .await;
    CodedCatalog {
        listing: coded,
        listing_promotion,
        bundle,
        bundle_promotion,
        code,
    }
}

/// Types `text` into the promotion code field (emptied first).
async fn enter_code(browser: &Client, text: &str) {
    let field = wait_for(browser, "#promotion-code").await;
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// A wrong code: why, next to the field (which says it is invalid); no dialog.
async fn refused_next_to_the_field(browser: &Client, submit: &str) {
    enter_code(browser, "NOPE-1").await;
    click(browser, submit).await;
    wait_for_text(browser, "#promotion-code-error", "not on offer").await;
    let field = wait_for(browser, "#promotion-code").await;
    assert_eq!(
        field.attr("aria-invalid").await.expect("attr").as_deref(),
        Some("true")
    );
    let described = field
        .attr("aria-describedby")
        .await
        .expect("attr")
        .unwrap_or_default();
    assert!(described.contains("promotion-code-error"), "{described}");
    assert!(
        browser.find(Locator::Css("dialog[open]")).await.is_err(),
        "nothing to confirm with a wrong code"
    );
}

/// Without JavaScript: the wrong code's page, then the right code's confirmation page (not
/// confirmed: the browser buys below).
pub async fn without_javascript(base: &str, tenant: &str, buyer: &str, catalog: &CodedCatalog) {
    let plain = Plain::sign_in(base, buyer).await;
    let code_field = |code: &str| ("promotionCode".to_owned(), code.to_owned());
    let pages = [
        (
            format!("/t/{tenant}/marketplace/{}", catalog.listing),
            "id=\"buy-form\"",
            vec![("plan".to_owned(), "pro".to_owned())],
            "Confirm addition of $39.20/mo to your bill? Launch code: this price for 2 billing periods, then $49.00/mo.",
        ),
        (
            format!("/t/{tenant}/bundles/{}", catalog.bundle),
            "id=\"bundle-buy-form\"",
            vec![],
            "Confirm addition of $30.00/mo to your bill for Depot pack? You save $68.00/mo on its add-ons&#39; list total of $98.00/mo. Depot code: this price for 2 billing periods, then $78.40/mo.",
        ),
    ];
    for (path, needle, fields, sentence) in pages {
        let page = plain.page(&path).await;
        let (action, mut hidden) = form(&page, needle);
        hidden.extend(fields);
        let mut wrong = hidden.clone();
        wrong.push(code_field("<b>nope"));
        let (status, _, again) = plain.post(&action, &wrong).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{again}");
        assert!(again.contains("value=\"&lt;b&gt;nope\""), "{again}");
        assert!(again.contains("aria-invalid=\"true\""), "{again}");
        assert!(
            again.contains("class=\"error\" aria-live=\"polite\">Promotion code &quot;&lt;B&gt;NOPE&quot; is not on offer"),
            "{again}"
        );
        let mut right = hidden.clone();
        right.push(code_field(&catalog.code.to_lowercase()));
        let (status, _, confirm) = plain.post(&action, &right).await;
        assert_eq!(status, StatusCode::OK, "{confirm}");
        assert!(confirm.contains(sentence), "{sentence}: {confirm}");
        let (_, confirmed) = form(&confirm, "method=\"post\"");
        assert!(
            confirmed.contains(&code_field(&catalog.code)),
            "the code rides along: {confirmed:?}"
        );
    }
}

/// In the browser: a listing, then a bundle, each refused with a wrong code and bought with the
/// right one at the discounted price; the purchases record the code and the promotion.
pub async fn buy_with_codes(
    browser: &Client,
    (base, tenant, namespace): (&str, &str, &str),
    buyer: &str,
    client: &KubeClient,
    catalog: &CodedCatalog,
) {
    browser
        .goto(&format!(
            "{base}/t/{tenant}/marketplace/{}",
            catalog.listing
        ))
        .await
        .expect("detail");
    refused_next_to_the_field(browser, "#buy-submit").await;
    assert!(
        subscriptions_to(base, buyer, tenant, &catalog.listing)
            .await
            .is_empty(),
        "nothing bought with a wrong code"
    );
    browser::screenshot(browser, "promotion-code-refused").await;
    enter_code(browser, &catalog.code.to_lowercase()).await;
    click(browser, "#buy-submit").await;
    let sentence = wait_for_text(browser, "#confirm-text", "Confirm").await;
    assert_eq!(
        sentence,
        "Confirm addition of $39.20/mo to your bill? Launch code: this price for 2 billing periods, then $49.00/mo."
    );
    assert_eq!(
        wait_for(browser, "#promotion-code-error")
            .await
            .text()
            .await
            .expect("text"),
        "",
        "the right code clears the error"
    );
    click(browser, "#confirm-ok").await;
    wait_for_text(browser, "#flash", "Done").await;
    let subs: Api<TenantSubscription> = Api::namespaced(client.clone(), namespace);
    let bought = eventually("the subscription records its promotion", WAIT, || async {
        subs.list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|s| {
                s.spec.listing.as_str() == catalog.listing
                    && s.status.as_ref().is_some_and(|st| st.promotion.is_some())
            })
    })
    .await;
    assert_eq!(
        bought.spec.promotion_code.as_deref(),
        Some(catalog.code.as_str())
    );
    let kept = bought.status.and_then(|s| s.promotion).expect("promotion");
    assert_eq!(
        (
            kept.name.as_str(),
            kept.price.as_str(),
            kept.list_price.as_str()
        ),
        (catalog.listing_promotion.as_str(), "39.20", "49.00")
    );

    browser
        .goto(&format!("{base}/t/{tenant}/bundles/{}", catalog.bundle))
        .await
        .expect("bundle page");
    refused_next_to_the_field(browser, "#bundle-buy-submit").await;
    let purchases: Api<BundleSubscription> = Api::namespaced(client.clone(), namespace);
    let of_bundle = |all: Vec<BundleSubscription>| -> Vec<BundleSubscription> {
        all.into_iter()
            .filter(|p| p.spec.bundle.as_str() == catalog.bundle)
            .collect()
    };
    let none = of_bundle(
        purchases
            .list(&Default::default())
            .await
            .expect("list")
            .items,
    );
    assert!(
        none.is_empty(),
        "nothing bought with a wrong code: {none:?}"
    );
    enter_code(browser, &catalog.code.to_lowercase()).await;
    click(browser, "#bundle-buy-submit").await;
    let sentence = wait_for_text(browser, "#confirm-text", "Confirm").await;
    assert_eq!(
        sentence,
        "Confirm addition of $30.00/mo to your bill for Depot pack? You save $68.00/mo on its add-ons' list total of $98.00/mo. \
Depot code: this price for 2 billing periods, then $78.40/mo."
    );
    browser::screenshot(browser, "promotion-code-bundle-confirm").await;
    click(browser, "#confirm-ok").await;
    wait_for_text(browser, "#flash", "Bought").await;
    let bought = eventually(
        "the bundle purchase records its promotion",
        WAIT,
        || async {
            let all = purchases.list(&Default::default()).await.ok()?.items;
            of_bundle(all)
                .into_iter()
                .find(|p| p.status.as_ref().is_some_and(|s| s.promotion.is_some()))
        },
    )
    .await;
    assert_eq!(
        bought.spec.promotion_code.as_deref(),
        Some(catalog.code.as_str())
    );
    let kept = bought.status.and_then(|s| s.promotion).expect("promotion");
    assert_eq!(
        (
            kept.name.as_str(),
            kept.price.as_str(),
            kept.list_price.as_str()
        ),
        (catalog.bundle_promotion.as_str(), "30.00", "78.40")
    );
}

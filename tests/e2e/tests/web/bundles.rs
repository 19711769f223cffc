//! Bundles in the browser: a viewer sees a bundle on the marketplace page and its page, but no
//! buy form; a billing admin opens it from the marketplace page, confirms the price in the
//! dialog, buys it, sees the purchase with its members, finds it on My subscriptions (its
//! members there say they end with the bundle) and cancels it, which cancels every member.
//! Without JavaScript, the same forms post to `/forms` and confirm on a page of their own.

use std::time::Duration;

use fantoccini::{Client, Locator};
use kube::Client as KubeClient;
use kube::api::Api;
use marketplace_e2e::api_process::Caller;
use marketplace_e2e::eventually;
use marketplace_e2e::storefront_world::listing;
use marketplace_e2e::subscriptions::apply;
use marketplace_e2e::unique_name;
use marketplace_operator::api::{Bundle, Listing};
use marketplace_operator::lifecycle::bundle::member_name;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::no_script::{Plain, form};
use super::{WAIT, browser, click, sign_in, wait_for, wait_for_text};

/// The catalog of the scenario: two listings and the bundle selling them at 20% off; and a
/// second bundle of two other listings, bought and cancelled without JavaScript.
pub struct BundleCatalog {
    pub bundle: String,
    pub planner: String,
    pub insights: String,
    pub plain_bundle: String,
}

/// Applies the listings and the bundle (before the API starts, so its caches hold them).
pub async fn catalog(client: &KubeClient) -> BundleCatalog {
    let (planner, insights) = (unique_name("planner"), unique_name("insights"));
    let listings: Api<Listing> = Api::all(client.clone());
    apply(
        &listings,
        listing(
            &planner,
            json!({"displayName": "Route Planner", "tagline": "Plans tomorrow's routes",
                "features": ["route_planner"]}),
        ),
    )
    .await;
    apply(
        &listings,
        listing(
            &insights,
            json!({"displayName": "Fleet Insights", "tagline": "Weekly fleet reports",
                "features": ["fleet_insights"],
                "plans": [{"name": "pro", "displayName": "Pro",
                    "pricing": {"model": "Flat", "amount": "10.00", "currency": "USD", "interval": "Month"}}]}),
        ),
    )
    .await;
    let bundle = unique_name("ops-suite");
    apply(
        &Api::<Bundle>::all(client.clone()),
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Bundle",
            "metadata": {"name": bundle},
            "spec": {"displayName": "Operations suite", "description": "Planning and reports, one bill.",
                "members": [{"listing": planner, "plan": "pro"}, {"listing": insights, "plan": "pro"}],
                "discount": {"percentage": 20}}}),
    )
    .await;
    let (alerts, exports) = (unique_name("alerts"), unique_name("exports"));
    for (name, shown, feature) in [
        (&alerts, "Driver Alerts", "driver_alerts"),
        (&exports, "Data Exports", "data_exports"),
    ] {
        apply(
            &listings,
            listing(name, json!({"displayName": shown, "features": [feature]})),
        )
        .await;
    }
    let plain_bundle = unique_name("alerts-pack");
    apply(
        &Api::<Bundle>::all(client.clone()),
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Bundle",
            "metadata": {"name": plain_bundle},
            "spec": {"displayName": "Alerts pack",
                "members": [{"listing": alerts, "plan": "pro"}, {"listing": exports, "plan": "pro"}],
                "discount": {"amount": "8.00", "currency": "USD"}}}),
    )
    .await;
    BundleCatalog {
        bundle,
        planner,
        insights,
        plain_bundle,
    }
}

/// Loads `path` again until `css` says `words` (for states no live update announces).
async fn reload_until(browser: &Client, url: &str, css: &str, words: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        browser.goto(url).await.expect("page");
        if let Ok(e) = browser.find(Locator::Css(css)).await
            && e.text().await.unwrap_or_default().contains(words)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{css} never said {words:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn buy_and_cancel_a_bundle(
    browser: &Client,
    base: &str,
    tenant: &str,
    (buyer, viewer): (&str, &str),
    catalog: &BundleCatalog,
) {
    let index = format!("/t/{tenant}/marketplace");
    let card = format!("#bundle-{}", catalog.bundle);
    let page = format!("{base}/t/{tenant}/bundles/{}", catalog.bundle);

    // A viewer sees the bundle and its prices, and why they cannot buy it: no buy form.
    sign_in(browser, base, viewer, &index).await;
    let text = wait_for_text(browser, &card, "You save").await;
    for words in [
        "Operations suite",
        "Route Planner · Pro",
        "Fleet Insights · Pro",
        "$47.20/mo",
        "List total $59.00/mo",
        "You save $11.80/mo (20% off every add-on)",
    ] {
        assert!(text.contains(words), "{words:?} in {text:?}");
    }
    wait_for(browser, &format!("{card} button[disabled]")).await;
    browser.goto(&page).await.expect("bundle page");
    wait_for_text(browser, "#buy .why", "billing admins").await;
    let why = wait_for(browser, "#buy .disabled-wrap").await;
    let title = why.attr("title").await.expect("title").unwrap_or_default();
    assert!(title.contains("billing admins"), "{title}");
    assert!(
        browser
            .find(Locator::Css("#bundle-buy-form"))
            .await
            .is_err(),
        "a viewer gets no buy form"
    );
    browser::screenshot(browser, "bundle-viewer").await;

    // A billing admin opens it from the marketplace page and buys it at the confirmed price.
    sign_in(browser, base, buyer, &index).await;
    click(browser, &format!("{card} h3 a")).await;
    wait_for(browser, "#bundle-buy-form").await;
    let included = wait_for_text(browser, "main table", "In the bundle").await;
    for price in ["$49.00/mo", "$39.20/mo", "$10.00/mo", "$8.00/mo"] {
        assert!(included.contains(price), "{price} in {included}");
    }
    click(browser, "#bundle-buy-submit").await;
    let sentence = wait_for_text(browser, "#confirm-text", "Confirm").await;
    assert_eq!(
        sentence,
        "Confirm addition of $47.20/mo to your bill for Operations suite? \
You save $11.80/mo on its add-ons' list total of $59.00/mo."
    );
    click(browser, "#confirm-ok").await;
    wait_for_text(browser, "#flash", "Bought").await;
    // The purchase shows on the page once both members are in service, without a reload.
    let row = wait_for(browser, "#bundle-purchases tr[data-phase=Active]").await;
    let purchase = row
        .attr("id")
        .await
        .expect("id")
        .unwrap_or_default()
        .trim_start_matches("bundle-sub-")
        .to_owned();
    let members = wait_for_text(browser, "#bundle-purchases", "Fleet Insights").await;
    assert!(
        members.contains("Route Planner") && members.matches("Installed").count() == 2,
        "{members}"
    );
    wait_for_text(browser, "#buy", "You have this bundle").await;
    browser::screenshot(browser, "bundle-bought").await;

    // My subscriptions: the bundle with its members, which say they end with it.
    let subscriptions = format!("{base}/t/{tenant}/subscriptions");
    browser.goto(&subscriptions).await.expect("subscriptions");
    let bundle_row = format!("#bundle-sub-{purchase}");
    let text = wait_for_text(browser, &bundle_row, "Operations suite").await;
    assert!(
        text.contains("Route Planner") && text.contains("Fleet Insights"),
        "{text}"
    );
    for listing in [&catalog.planner, &catalog.insights] {
        let member = format!("#sub-{}", member_name(&purchase, listing));
        wait_for_text(browser, &member, "Part of the bundle Operations suite").await;
        assert!(
            browser
                .find(Locator::Css(&format!("{member} button")))
                .await
                .is_err(),
            "a member has no cancel button of its own"
        );
    }
    browser::screenshot(browser, "bundle-subscriptions").await;

    // Cancelling the bundle cancels every member at the end of the period.
    click(browser, &format!("{bundle_row} button[data-call^=POST]")).await;
    wait_for_text(
        browser,
        "#confirm-text",
        "All of its add-ons end together: Route Planner, Fleet Insights.",
    )
    .await;
    click(browser, "#confirm-ok").await;
    wait_for_text(browser, &bundle_row, "Cancellation pending").await;
    for listing in [&catalog.planner, &catalog.insights] {
        let member = format!("#sub-{}", member_name(&purchase, listing));
        reload_until(browser, &subscriptions, &member, "Cancellation pending").await;
    }
    assert!(
        browser
            .find(Locator::Css(&format!("{bundle_row} button")))
            .await
            .is_err(),
        "a cancelled bundle offers no second cancel"
    );
    browser::screenshot(browser, "bundle-cancelled").await;
}

/// The tenant's purchases of `bundle`, as the buyer's API sees them.
async fn purchases_of(api: &Caller, tenant: &str, bundle: &str) -> Vec<Value> {
    let (_, body) = api
        .get(&format!("/v1/tenants/{tenant}/bundle-subscriptions"))
        .await;
    body["bundleSubscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["bundle"] == bundle)
        .collect()
}

/// The same without JavaScript: the buy form's confirmation page, the purchase (a resubmitted
/// form buys once), then the cancel form's confirmation page and the cancellation.
pub async fn without_javascript(base: &str, tenant: &str, buyer: &str, catalog: &BundleCatalog) {
    let bundle = &catalog.plain_bundle;
    let plain = Plain::sign_in(base, buyer).await;
    let api = Caller {
        http: reqwest::Client::new(),
        base: base.to_owned(),
        token: buyer.to_owned(),
    };
    let page = plain.page(&format!("/t/{tenant}/bundles/{bundle}")).await;
    let (action, hidden) = form(&page, "id=\"bundle-buy-form\"");
    let (status, _, confirm) = plain.post(&action, &hidden).await;
    assert_eq!(status, StatusCode::OK, "{confirm}");
    assert!(
        confirm.contains("Confirm addition of $90.00/mo to your bill for Alerts pack?"),
        "{confirm}"
    );
    let (action, confirmed) = form(&confirm, "method=\"post\"");
    for _ in 0..2 {
        let (status, location, body) = plain.post(&action, &confirmed).await;
        assert_eq!(
            (status, location),
            (
                StatusCode::SEE_OTHER,
                format!("/t/{tenant}/bundles/{bundle}#bundle-purchases")
            ),
            "{body}"
        );
    }
    let bought = eventually("the purchase in the API's cache", WAIT, || async {
        let bought = purchases_of(&api, tenant, bundle).await;
        (!bought.is_empty()).then_some(bought)
    })
    .await;
    assert_eq!(bought.len(), 1, "bought once: {bought:?}");
    let name = bought[0]["name"].as_str().expect("name").to_owned();

    let needle = format!("action=\"/forms/t/{tenant}/bundle-subscriptions/{name}/cancel\"");
    let page = eventually("the bundle on My subscriptions", WAIT, || async {
        let html = plain.page(&format!("/t/{tenant}/subscriptions")).await;
        html.contains(&needle).then_some(html)
    })
    .await;
    let (action, hidden) = form(&page, &needle);
    let (status, _, confirm) = plain.post(&action, &hidden).await;
    assert_eq!(status, StatusCode::OK, "{confirm}");
    assert!(
        confirm.contains("All of its add-ons end together"),
        "{confirm}"
    );
    let (action, confirmed) = form(&confirm, "method=\"post\"");
    let (status, location, body) = plain.post(&action, &confirmed).await;
    assert_eq!(
        (status, location),
        (StatusCode::SEE_OTHER, format!("/t/{tenant}/subscriptions")),
        "{body}"
    );
    eventually("the bundle cancelled", WAIT, || async {
        let cancelled = purchases_of(&api, tenant, bundle).await;
        cancelled[0]["cancellation"].is_object().then_some(())
    })
    .await;
}

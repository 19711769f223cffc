//! Bundles on a real apiserver, with the operator and the HubSpot simulator: the storefront
//! offers a bundle with its list total, price and savings; buying it creates one member
//! subscription per listing, each Active and billed with its share of the discount on its
//! HubSpot line item; a member cannot be cancelled alone; reconciling again, or restarting the
//! operator in the middle of creating the members, ends with exactly one member each; cancelling
//! the bundle cancels every member. Bad bundles are refused at apply time naming the field. A
//! promotion on the bundle is offered to its segment only, bought at the promoted price and
//! billed as each member's share of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use marketplace_e2e::controllers;
use marketplace_e2e::storefront_world::{STOREFRONT_CONTROLLERS, listing, start_world};
use marketplace_e2e::subscriptions::{CONVERGED, apply, line_item, refused_naming};
use marketplace_e2e::{eventually, unique_name};
use marketplace_operator::api::bundle::BundlePhase;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Bundle, BundleSubscription, Listing, TenantSubscription};
use marketplace_operator::controllers::ControllerConfig;
use marketplace_operator::lifecycle::bundle::{BUNDLE_SUBSCRIPTION_LABEL, member_name};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn bundle(name: &str, members: &[&str], discount: Value) -> Value {
    let members: Vec<Value> = members
        .iter()
        .map(|l| json!({"listing": l, "plan": "pro"}))
        .collect();
    json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Bundle",
        "metadata": {"name": name},
        "spec": {"displayName": "Fleet suite", "members": members, "discount": discount}})
}

/// The members of bundle purchase `purchase`, found by its label, by listing.
async fn members_of(
    subs: &Api<TenantSubscription>,
    purchase: &str,
) -> BTreeMap<String, Vec<TenantSubscription>> {
    let selector = format!("{BUNDLE_SUBSCRIPTION_LABEL}={purchase}");
    let mut by_listing: BTreeMap<String, Vec<TenantSubscription>> = BTreeMap::new();
    for sub in subs
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("members")
    {
        by_listing
            .entry(sub.spec.listing.to_string())
            .or_default()
            .push(sub);
    }
    by_listing
}

/// Waits until every member of `purchase` (one per listing of `listings`) is in `want`.
async fn members_in(
    subs: &Api<TenantSubscription>,
    purchase: &str,
    listings: &[&str],
    want: Phase,
) -> BTreeMap<String, TenantSubscription> {
    eventually(
        &format!("{purchase}'s members {want:?}"),
        CONVERGED,
        || async {
            let found = members_of(subs, purchase).await;
            let all = listings.iter().all(|l| {
                found.get(*l).is_some_and(|m| {
                    m.len() == 1 && m[0].status.as_ref().and_then(|s| s.phase) == Some(want)
                })
            });
            all.then(|| {
                found
                    .into_iter()
                    .map(|(l, mut m)| (l, m.remove(0)))
                    .collect()
            })
        },
    )
    .await
}

async fn purchase_phase(api: &Api<BundleSubscription>, name: &str, want: BundlePhase) {
    eventually(&format!("{name} {want:?}"), CONVERGED, || async {
        let p = api.get(name).await.ok()?;
        (p.status?.phase == Some(want)).then_some(())
    })
    .await
}

#[tokio::test]
async fn a_bundle_is_bought_billed_with_its_discount_and_cancelled_as_one() {
    let world = start_world("e2e-bundles").await;
    let client = world.operator.client.clone();
    let (acme, globex) = (unique_name("acme"), unique_name("globex"));
    let (smb, coded) = (unique_name("smb"), unique_name("coded"));
    let (acme_ns, globex_ns, smb_ns, coded_ns) = tokio::join!(
        world.tenant(&acme, false),
        world.tenant(&globex, false),
        world.tenant_with(&smb, json!({"segment": "smb"})),
        world.tenant_with(&coded, json!({"region": "e2e-coded"}))
    );
    let (routes, reports) = (unique_name("routes"), unique_name("reports"));
    let listings: Api<Listing> = Api::all(client.clone());
    apply(&listings, listing(&routes, json!({}))).await;
    apply(
        &listings,
        listing(
            &reports,
            json!({"displayName": "Reports", "features": ["reporting"],
                "plans": [{"name": "pro", "displayName": "Pro",
                "pricing": {"model": "Flat", "amount": "10.00", "currency": "USD", "interval": "Month"}}]}),
        ),
    )
    .await;
    let bundles: Api<Bundle> = Api::all(client.clone());
    let suite = unique_name("suite");
    let both = [routes.as_str(), reports.as_str()];
    apply(
        &bundles,
        bundle(&suite, &both, json!({"amount": "11.80", "currency": "USD"})),
    )
    .await;

    // Bad bundles are refused at apply, naming the field.
    for (bad, field) in [
        (
            bundle(
                &unique_name("twice"),
                &[&routes, &routes],
                json!({"percentage": 10}),
            ),
            "spec.members",
        ),
        (
            bundle(
                &unique_name("both"),
                &both,
                json!({"percentage": 10, "amount": "1.00", "currency": "USD"}),
            ),
            "spec.discount",
        ),
    ] {
        refused_naming(&bundles, bad, field).await;
    }

    let (_api, as_buyer) = world.api_as_buyer().await;

    // The storefront offers it with the list total, price and savings.
    let offered = eventually("the bundle is offered", CONVERGED, || async {
        let (status, body) = as_buyer.get(&format!("/v1/tenants/{acme}/bundles")).await;
        let offers = body["bundles"].as_array()?.clone();
        let found = offers.into_iter().find(|b| b["name"] == suite.as_str());
        (status == StatusCode::OK).then_some(found).flatten()
    })
    .await;
    assert_eq!(
        (
            &offered["listTotal"],
            &offered["price"],
            &offered["savings"]
        ),
        (&json!("59.00"), &json!("47.20"), &json!("11.80")),
        "{offered}"
    );
    assert_eq!(offered["members"][0]["listing"], routes.as_str());
    assert_eq!(offered["members"][0]["price"], "39.20");

    // Buying it (once, even when retried) creates both members, Active and billed with their
    // share of the discount.
    let buy = format!("/v1/tenants/{acme}/bundle-subscriptions");
    let (status, _, body) = as_buyer
        .post(&buy, Some("bundle-0"), json!({"bundle": suite}))
        .await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("PriceNotConfirmed"),
            &json!("confirmedPrice")
        ),
        "a purchase without the price the buyer confirmed: {body}"
    );
    let confirmed = json!({"amount": "47.20", "currency": "USD", "interval": "Month"});
    let order = json!({"bundle": suite, "confirmedPrice": confirmed});
    let (status, _, body) = as_buyer.post(&buy, Some("bundle-1"), order.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let purchase = body["bundleSubscription"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let (status, _, again) = as_buyer.post(&buy, Some("bundle-1"), order).await;
    assert_eq!(
        (status, &again["name"]),
        (StatusCode::OK, &json!(purchase)),
        "{again}"
    );
    let acme_subs: Api<TenantSubscription> = Api::namespaced(client.clone(), &acme_ns);
    let members = members_in(&acme_subs, &purchase, &both, Phase::Active).await;
    let purchases: Api<BundleSubscription> = Api::namespaced(client.clone(), &acme_ns);
    purchase_phase(&purchases, &purchase, BundlePhase::Active).await;
    for (listing, list, discount, net) in [
        (&routes, "49.00", "9.80", "39.20"),
        (&reports, "10.00", "2.00", "8.00"),
    ] {
        let member = &members[listing.as_str()];
        let kept = member
            .status
            .as_ref()
            .and_then(|s| s.bundle.clone())
            .expect("the bundle discount is recorded");
        assert_eq!(
            (kept.price.as_str(), kept.name.as_str()),
            (net, suite.as_str())
        );
        let item = line_item(&world.operator.sim, member);
        assert_eq!(item["properties"]["price"], list, "{item}");
        assert_eq!(item["properties"]["discount"], discount, "{item}");
    }

    // A member cannot be cancelled on its own.
    let member = member_name(&purchase, &routes);
    let (status, _, body) = as_buyer
        .post(
            &format!("/v1/tenants/{acme}/subscriptions/{member}/cancel"),
            None,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("BundleMemberCancelledAlone")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap_or("").contains(&purchase),
        "{body}"
    );

    // Reconciling again changes nothing: still exactly one member each.
    purchases
        .patch(
            &purchase,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"e2e/poke": "1"}}})),
        )
        .await
        .expect("poked");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let found = members_of(&acme_subs, &purchase).await;
    assert!(
        found.values().all(|m| m.len() == 1) && found.len() == 2,
        "{found:?}"
    );

    // The operator stops after creating one member of a declarative purchase; restarted, it
    // creates only the missing one.
    world.controllers.stop().await;
    let globex_purchases: Api<BundleSubscription> = Api::namespaced(client.clone(), &globex_ns);
    let declared = apply(
        &globex_purchases,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "BundleSubscription",
            "metadata": {"name": "fleet"}, "spec": {"bundle": suite}}),
    )
    .await;
    let globex_subs: Api<TenantSubscription> = Api::namespaced(client.clone(), &globex_ns);
    let first = json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": member_name("fleet", &routes),
            "labels": {BUNDLE_SUBSCRIPTION_LABEL: "fleet"},
            "ownerReferences": [declared.controller_owner_ref(&()).expect("owner")]},
        "spec": {"listing": routes, "plan": "pro", "quantity": 1, "trial": false,
            "bundle": {"name": suite, "subscription": "fleet"}}});
    apply(&globex_subs, first).await;
    let restarted = world
        .operator
        .restarted("e2e-bundles-restarted", ControllerConfig::default())
        .await;
    let restarted = controllers::start(Arc::new(restarted), STOREFRONT_CONTROLLERS);
    let globex_members = members_in(&globex_subs, "fleet", &both, Phase::Active).await;
    purchase_phase(&globex_purchases, "fleet", BundlePhase::Active).await;
    let item = line_item(&world.operator.sim, &globex_members[reports.as_str()]);
    assert_eq!(item["properties"]["discount"], "2.00", "{item}");

    // Cancelling a bundle (through the storefront, or declaratively) cancels every member.
    let (status, _, body) = as_buyer
        .post(
            &format!("/v1/tenants/{acme}/bundle-subscriptions/{purchase}/cancel"),
            None,
            json!({"effective": "Immediately", "reason": "moving on"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    globex_purchases
        .patch(
            "fleet",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"cancellation": {"effective": "Immediately"}}})),
        )
        .await
        .expect("cancels");
    members_in(&acme_subs, &purchase, &both, Phase::Cancelled).await;
    members_in(&globex_subs, "fleet", &both, Phase::Cancelled).await;
    purchase_phase(&purchases, &purchase, BundlePhase::Cancelled).await;
    purchase_phase(&globex_purchases, "fleet", BundlePhase::Cancelled).await;
    assert_eq!(
        purchases.get(&purchase).await.expect("purchase").name_any(),
        purchase
    );

    let smb = (smb.as_str(), smb_ns.as_str());
    bundle_promotion(&world.operator, &as_buyer, &suite, &both, smb, &acme).await;
    let coded = (coded.as_str(), coded_ns.as_str());
    coded_bundle_promotion(&world.operator, &as_buyer, &suite, coded).await;
    restarted.stop().await;
}

fn at(offset: jiff::SignedDuration) -> String {
    (jiff::Timestamp::now() + offset)
        .round(jiff::Unit::Second)
        .expect("rounds")
        .to_string()
}

/// A promotion on the bundle for the `smb` segment: offered to that tenant only (promoted and
/// regular price, end date), bought at the promoted price, recorded on the purchase and billed
/// as each member's share of it on its HubSpot line item.
async fn bundle_promotion(
    operator: &controllers::OperatorWorld,
    as_buyer: &marketplace_e2e::api_process::Caller,
    suite: &str,
    both: &[&str; 2],
    (smb, smb_ns): (&str, &str),
    outsider: &str,
) {
    use marketplace_operator::api::Promotion;
    let client = operator.client.clone();
    let hour = jiff::SignedDuration::from_hours(1);
    let ends = at(hour);
    let promotions: Api<Promotion> = Api::all(client.clone());
    let promo = unique_name("suite-promo");
    let promotion = |name: &str, extra: Value| {
        let mut spec = json!({"displayName": "Suite week: 20% off", "bundles": [suite],
            "discount": {"percentage": 20}, "periods": 2, "segments": ["smb"]});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Promotion",
            "metadata": {"name": name}, "spec": spec})
    };
    apply(
        &promotions,
        promotion(&promo, json!({"startsAt": at(-hour), "endsAt": ends})),
    )
    .await;
    // Not open yet: it must not apply.
    apply(
        &promotions,
        promotion(
            &unique_name("later"),
            json!({"discount": {"price": "1.00"}, "startsAt": at(hour * 24), "endsAt": at(hour * 48)}),
        ),
    )
    .await;
    let empty = json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Promotion",
        "metadata": {"name": unique_name("empty")},
        "spec": {"displayName": "Nothing", "discount": {"percentage": 5}, "periods": 1,
            "startsAt": at(-hour), "endsAt": ends}});
    refused_naming(&promotions, empty, "spec.targets").await;

    let offers = |tenant: String| async move {
        let (status, body) = as_buyer.get(&format!("/v1/tenants/{tenant}/bundles")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let offers = body["bundles"].as_array().cloned().unwrap_or_default();
        offers.into_iter().find(|b| b["name"] == suite)
    };
    let offered = eventually("the promoted bundle is offered", CONVERGED, || async {
        offers(smb.to_owned())
            .await
            .filter(|o| o["promotion"].is_object())
    })
    .await;
    assert_eq!(
        (&offered["price"], &offered["regularPrice"]),
        (&json!("37.76"), &json!("47.20")),
        "{offered}"
    );
    assert_eq!(offered["promotion"]["name"], promo.as_str());
    assert_eq!(offered["promotion"]["listPrice"], "$47.20/mo");
    let quoted_end: jiff::Timestamp = offered["promotion"]["endsAt"]
        .as_str()
        .expect("endsAt")
        .parse()
        .expect("a timestamp");
    assert_eq!(quoted_end, ends.parse::<jiff::Timestamp>().expect("ends"));
    let other = offers(outsider.to_owned()).await.expect("offered");
    assert_eq!(other["price"], "47.20", "another segment: {other}");
    assert!(other.get("promotion").is_none(), "{other}");

    // The purchase confirms the promoted price; a code no promotion has is refused.
    let buy = format!("/v1/tenants/{smb}/bundle-subscriptions");
    let price = |amount: &str| json!({"amount": amount, "currency": "USD", "interval": "Month"});
    let (status, _, body) = as_buyer
        .post(
            &buy,
            None,
            json!({"bundle": suite, "confirmedPrice": price("47.20")}),
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::CONFLICT, &json!("PriceChanged")),
        "{body}"
    );
    let (status, _, body) = as_buyer
        .post(
            &buy,
            None,
            json!({"bundle": suite, "confirmedPrice": price("37.76"), "promotionCode": "NOSUCH1"}),
        )
        .await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("PromotionCodeInvalid"),
            &json!("promotionCode")
        ),
        "{body}"
    );
    let (status, _, body) = as_buyer
        .post(
            &buy,
            Some("promo-1"),
            json!({"bundle": suite, "confirmedPrice": price("37.76")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let purchase = body["bundleSubscription"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let subs: Api<TenantSubscription> = Api::namespaced(client.clone(), smb_ns);
    let members = members_in(&subs, &purchase, both, Phase::Active).await;
    let purchases: Api<BundleSubscription> = Api::namespaced(client.clone(), smb_ns);
    let recorded = purchases
        .get(&purchase)
        .await
        .expect("purchase")
        .status
        .and_then(|s| s.promotion)
        .expect("the purchase records its promotion");
    assert_eq!(
        (
            recorded.name.as_str(),
            recorded.price.as_str(),
            recorded.periods
        ),
        (promo.as_str(), "37.76", 2)
    );
    // 21.24 off the list total of 59.00, shared in proportion to the list prices.
    for (listing, list, discount, net) in [
        (both[0], "49.00", "17.64", "31.36"),
        (both[1], "10.00", "3.60", "6.40"),
    ] {
        let member = &members[listing];
        let status = member.status.as_ref().expect("status");
        let kept = status.promotion.as_ref().expect("the member's share");
        assert_eq!(
            (kept.name.as_str(), kept.price.as_str()),
            (promo.as_str(), net)
        );
        assert_eq!(kept.kept_until, recorded.kept_until);
        assert_eq!(
            status
                .hubspot
                .as_ref()
                .and_then(|h| h.billed_promotion.as_deref()),
            Some(promo.as_str()),
            "the billed share is recorded, to end it after the kept periods"
        );
        let item = line_item(&operator.sim, member);
        assert_eq!(item["properties"]["price"], list, "{item}");
        assert_eq!(item["properties"]["discount"], discount, "{item}");
    }
}

/// A promotion behind a code: the bundle is offered at its regular price, and bought at the
/// promoted one with the code, which the purchase records.
async fn coded_bundle_promotion(
    operator: &controllers::OperatorWorld,
    as_buyer: &marketplace_e2e::api_process::Caller,
    suite: &str,
    (tenant, namespace): (&str, &str),
) {
    use marketplace_operator::api::Promotion;
    let hour = jiff::SignedDuration::from_hours(1);
    let promotions: Api<Promotion> = Api::all(operator.client.clone());
    let name = unique_name("suite-code");
    let code = format!("E2EB{}", std::process::id());
    apply(
        &promotions,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Promotion",
            "metadata": {"name": name},
            "spec": {"displayName": "Suite code", "bundles": [suite], "discount": {"price": "30.00"},
                "startsAt": at(-hour), "endsAt": at(hour), "regions": ["e2e-coded"],
                "code": code, "periods": 1}}),
    )
    .await;
    let (_, body) = as_buyer.get(&format!("/v1/tenants/{tenant}/bundles")).await;
    let offers = body["bundles"].as_array().cloned().unwrap_or_default();
    let offer = offers.iter().find(|b| b["name"] == suite).expect("offered");
    assert_eq!(offer["price"], "47.20", "without the code: {offer}");
    let buy = format!("/v1/tenants/{tenant}/bundle-subscriptions");
    let order = json!({"bundle": suite, "promotionCode": code.to_lowercase(),
        "confirmedPrice": {"amount": "30.00", "currency": "USD", "interval": "Month"}});
    let (status, _, body) = eventually("the code is on offer", CONVERGED, || async {
        let answer = as_buyer.post(&buy, Some("coded-1"), order.clone()).await;
        (answer.0 == StatusCode::CREATED).then_some(answer)
    })
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let purchase = body["bundleSubscription"]["name"].as_str().expect("name");
    let purchases: Api<BundleSubscription> = Api::namespaced(operator.client.clone(), namespace);
    let recorded = eventually("the coded promotion is recorded", CONVERGED, || async {
        purchases.get(purchase).await.ok()?.status?.promotion
    })
    .await;
    assert_eq!(
        (recorded.name.as_str(), recorded.price.as_str()),
        (name.as_str(), "30.00")
    );
    assert_eq!(
        purchases
            .get(purchase)
            .await
            .expect("purchase")
            .spec
            .promotion_code,
        Some(code)
    );
}

//! Promotions on a real apiserver, with the operator and the HubSpot simulator: the storefront
//! quotes the promoted price and its end date to tenants of the promotion's segment and region
//! only; a purchase must confirm that price; the subscription records the promotion and keeps it
//! after the promotion ends; the HubSpot line item carries the discount next to the list price.
//! A code unlocks its own promotion; a wrong code is refused naming the field. Bad promotions
//! are refused at apply time naming the field.

use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use marketplace_e2e::storefront_world::{listing, start_world};
use marketplace_e2e::subscriptions::{CONVERGED, apply, line_item, phase_of, refused_naming};
use marketplace_e2e::{eventually, unique_name};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Listing, Promotion, TenantSubscription};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn promotion(name: &str, listing: &str, spec: Value) -> Value {
    let mut full = json!({"displayName": "Spring sale: 20% off",
        "targets": [{"listing": listing, "plans": ["pro"]}],
        "periods": 3});
    for (k, v) in spec.as_object().expect("object") {
        full[k] = v.clone();
    }
    json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Promotion",
        "metadata": {"name": name}, "spec": full})
}

fn at(offset: SignedDuration) -> String {
    (Timestamp::now() + offset)
        .round(jiff::Unit::Second)
        .expect("rounds")
        .to_string()
}

const HOUR: SignedDuration = SignedDuration::from_hours(1);

fn price(amount: &str) -> Value {
    json!({"amount": amount, "currency": "USD", "interval": "Month"})
}

#[tokio::test]
async fn buying_under_a_promotion_keeps_its_price_and_bills_the_discount() {
    let world = start_world("e2e-promotions").await;
    let client = world.operator.client.clone();
    let eu_smb = unique_name("eu-smb");
    let us = unique_name("us-ent");
    let eu_ns = world
        .tenant_with(&eu_smb, json!({"segment": "smb", "region": "eu-west"}))
        .await;
    world
        .tenant_with(&us, json!({"segment": "enterprise", "region": "us-east"}))
        .await;
    let routes = unique_name("routes");
    let coded = unique_name("coded");
    let listings: Api<Listing> = Api::all(client.clone());
    apply(&listings, listing(&routes, json!({}))).await;
    apply(&listings, listing(&coded, json!({}))).await;
    let promotions: Api<Promotion> = Api::all(client.clone());
    let spring = unique_name("spring");
    let code = format!("E2E{}", std::process::id());
    let ends = at(HOUR);
    apply(
        &promotions,
        promotion(
            &spring,
            &routes,
            json!({"discount": {"percentage": 20}, "startsAt": at(-HOUR), "endsAt": ends,
                "segments": ["smb"], "regions": ["eu-west"]}),
        ),
    )
    .await;
    // Not open yet: it must not apply.
    apply(
        &promotions,
        promotion(
            &unique_name("later"),
            &routes,
            json!({"discount": {"price": "1.00"}, "startsAt": at(HOUR * 24), "endsAt": at(HOUR * 48)}),
        ),
    )
    .await;
    apply(
        &promotions,
        promotion(
            &unique_name("with-code"),
            &coded,
            json!({"discount": {"price": "29.00"}, "startsAt": at(-HOUR), "endsAt": ends, "code": code}),
        ),
    )
    .await;

    // A window that ends before it starts is refused at apply, naming the field.
    let backwards = promotion(
        &unique_name("backwards"),
        &routes,
        json!({"discount": {"percentage": 10}, "startsAt": at(HOUR), "endsAt": at(-HOUR)}),
    );
    refused_naming(&promotions, backwards, "spec.endsAt").await;

    let (_api, as_buyer) = world.api_as_buyer().await;

    // The storefront quotes the promoted price and its end to the EU smb tenant only.
    let detail_path = format!("/v1/tenants/{eu_smb}/catalog/{routes}");
    let detail = eventually("the promoted price is quoted", CONVERGED, || async {
        let (status, body) = as_buyer.get(&detail_path).await;
        (status == StatusCode::OK && body["plans"][0]["promotion"].is_object()).then_some(body)
    })
    .await;
    let plan = &detail["plans"][0];
    assert_eq!(plan["price"], "$39.20/mo", "{plan}");
    assert_eq!(plan["quote"]["amount"], "39.20");
    assert_eq!(plan["promotion"]["name"], spring.as_str());
    assert_eq!(plan["promotion"]["listPrice"], "$49.00/mo");
    assert_eq!(plan["promotion"]["periods"], 3);
    let quoted_end: Timestamp = plan["promotion"]["endsAt"]
        .as_str()
        .expect("endsAt")
        .parse()
        .expect("a timestamp");
    assert_eq!(quoted_end, ends.parse::<Timestamp>().expect("ends"));
    assert!(
        plan["confirmation"]
            .as_str()
            .unwrap_or("")
            .contains("then $49.00/mo"),
        "{plan}"
    );
    let (_, other) = as_buyer
        .get(&format!("/v1/tenants/{us}/catalog/{routes}"))
        .await;
    assert_eq!(other["plans"][0]["price"], "$49.00/mo", "{other}");
    assert!(other["plans"][0].get("promotion").is_none());

    // Buying needs the promoted price confirmed.
    let buy = format!("/v1/tenants/{eu_smb}/subscriptions");
    let (status, _, body) = as_buyer
        .post(
            &buy,
            None,
            json!({"listing": routes, "plan": "pro", "confirmedPrice": price("49.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["currentPrice"]["amount"], "39.20");
    let (status, _, body) = as_buyer
        .post(
            &buy,
            Some("promo-1"),
            json!({"listing": routes, "plan": "pro", "confirmedPrice": price("39.20")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let name = body["subscription"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let subs: Api<TenantSubscription> = Api::namespaced(client.clone(), &eu_ns);
    let active = phase_of(&subs, &name, Phase::Active).await;
    let kept = active
        .status
        .as_ref()
        .and_then(|s| s.promotion.clone())
        .expect("the promotion is recorded");
    assert_eq!(
        (
            kept.name.as_str(),
            kept.price.as_str(),
            kept.list_price.as_str()
        ),
        (spring.as_str(), "39.20", "49.00")
    );
    assert_eq!(kept.discount_percentage, Some(20));
    let billed = active.status.as_ref().and_then(|s| s.hubspot.clone());
    assert_eq!(
        billed.and_then(|h| h.billed_promotion),
        Some(spring.clone()),
        "the discount HubSpot bills is recorded, to end it after the kept periods"
    );
    let created = active
        .metadata
        .creation_timestamp
        .clone()
        .expect("created")
        .0;
    let months = kept.kept_until.0.duration_since(created).as_hours() / 24;
    assert!(
        (89..=92).contains(&months),
        "three monthly periods: {months} days"
    );
    let item = line_item(&world.operator.sim, &active);
    assert_eq!(item["properties"]["price"], "49.00", "{item}");
    assert_eq!(item["properties"]["hs_discount_percentage"], "20", "{item}");

    // A wrong code is refused naming the field; the right one unlocks its price.
    let (status, _, body) = as_buyer
        .post(
            &buy,
            None,
            json!({"listing": coded, "plan": "pro", "promotionCode": "NOPE-123",
                "confirmedPrice": price("49.00")}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("PromotionCodeInvalid"),
            Some("promotionCode")
        ),
        "{body}"
    );
    let (status, _, body) = as_buyer
        .post(
            &buy,
            Some("promo-code"),
            json!({"listing": coded, "plan": "pro", "promotionCode": code.to_lowercase(),
                "confirmedPrice": price("29.00")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let with_code = body["subscription"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let active_code = phase_of(&subs, &with_code, Phase::Active).await;
    let item = line_item(&world.operator.sim, &active_code);
    assert_eq!(item["properties"]["discount"], "20.00", "{item}");

    // The promotion ends: the storefront is back to the list price, and the subscription
    // bought under it keeps its recorded price.
    promotions
        .patch(
            &spring,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(promotion(
                &spring,
                &routes,
                json!({"discount": {"percentage": 20}, "startsAt": at(-HOUR), "endsAt": at(-SignedDuration::from_secs(1)),
                    "segments": ["smb"], "regions": ["eu-west"]}),
            )),
        )
        .await
        .expect("ends the promotion");
    eventually("the list price is back", CONVERGED, || async {
        let (_, body) = as_buyer.get(&detail_path).await;
        (body["plans"][0]["price"] == "$49.00/mo").then_some(())
    })
    .await;
    let after = subs.get(&name).await.expect("subscription");
    assert_eq!(
        after.status.and_then(|s| s.promotion).map(|p| p.price),
        Some("39.20".to_owned())
    );
}

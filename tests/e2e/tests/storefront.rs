//! The storefront API on a real apiserver, with the operator and the HubSpot simulator: a
//! tenant's viewer browses but cannot buy; its billing admin confirms a price and buys once
//! however often the request is retried (Idempotency-Key), sees the add-on turn Installed,
//! cancels and undoes it. Private and Internal listings stay invisible and unbuyable, through
//! the API and through the reconciler alike.

use kube::api::{Api, PostParams};
use marketplace_e2e::api_process::{Caller, api_settings, start_api};
use marketplace_e2e::storefront_world::{listing, start_world};
use marketplace_e2e::subscriptions::{CONVERGED, apply, phase_of, ready_reason};
use marketplace_e2e::{control_plane, eventually, unique_name};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Entitlement, Listing, TenantSubscription, WizardConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn card<'a>(catalog: &'a Value, name: &str) -> Option<&'a Value> {
    catalog["items"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

#[tokio::test]
async fn a_billing_admin_buys_once_and_a_viewer_only_browses() {
    let control_plane = control_plane().await;
    let world = start_world("e2e-storefront").await;
    let client = world.operator.client.clone();
    let operator_namespace = world.operator.operator_namespace.clone();
    let (buyer, viewer, superadmin) = (
        world.buyer.clone(),
        world.viewer.clone(),
        world.superadmin.clone(),
    );
    let tenant = unique_name("shop");
    let other = unique_name("other");
    let namespace = world.tenant(&tenant, false).await;
    world.tenant(&other, true).await;
    let public = unique_name("routes");
    let private = unique_name("private");
    let internal = unique_name("staff");
    let listings: Api<Listing> = Api::all(client.clone());
    apply(
        &listings,
        listing(
            &public,
            json!({"navigation": [
        {"menu": "Dispatch", "label": "Itinerary Planning", "path": "/dispatch/itineraries"}]}),
        ),
    )
    .await;
    apply(&listings, listing(&private, json!({"visibility": "Private",
        "audience": {"tenants": [other], "tenantSelector": {"matchLabels": {"segment": "enterprise"}}}}))).await;
    apply(
        &listings,
        listing(&internal, json!({"visibility": "Internal"})),
    )
    .await;
    let wizard = unique_name("qb-wizard");
    apply(&Api::<WizardConfig>::all(client.clone()), json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "WizardConfig", "metadata": {"name": wizard},
        "spec": {"title": "Connect QuickBooks",
            "connectionSchema": {"type": "object",
                "properties": {"realmId": {"type": "string", "pattern": "^[0-9]+$"},
                               "apiKey": {"type": "string", "minLength": 12}},
                "required": ["realmId", "apiKey"]},
            "secretFields": ["apiKey"],
            "testConnection": {"method": "GET", "urlTemplate": "https://127.0.0.1:9/v3/company/{{realmId}}",
                               "headersTemplate": {"Authorization": "Bearer {{apiKey}}"}},
            "billingConfirmation": "QuickBooks is billed monthly."}})).await;
    let integration = unique_name("quickbooks");
    apply(
        &listings,
        listing(
            &integration,
            json!({"type": "Integration",
        "integration": {"wizardConfigRef": wizard}}),
        ),
    )
    .await;
    let approval = unique_name("approval");
    apply(
        &listings,
        listing(&approval, json!({"activation": "Approval"})),
    )
    .await;

    let api = start_api(
        control_plane,
        api_settings(std::time::Duration::from_secs(2), &operator_namespace),
    )
    .await;
    let http = reqwest::Client::new();
    let as_buyer = Caller {
        http: http.clone(),
        base: api.base.clone(),
        token: buyer,
    };
    let as_viewer = Caller {
        http: http.clone(),
        base: api.base.clone(),
        token: viewer,
    };
    let as_superadmin = Caller {
        http,
        base: api.base.clone(),
        token: superadmin,
    };
    let catalog_path = format!("/v1/tenants/{tenant}/catalog?pageSize=100");

    // The viewer browses: the public listing only, Available, and no right to buy.
    let catalog = eventually("the viewer reads the catalog", CONVERGED, || async {
        let (status, body) = as_viewer.get(&catalog_path).await;
        (status == StatusCode::OK && card(&body, &public).is_some()).then_some(body)
    })
    .await;
    assert_eq!(card(&catalog, &public).expect("card")["state"], "Available");
    assert_eq!(card(&catalog, &public).expect("card")["price"], "$49.00/mo");
    assert!(
        card(&catalog, &private).is_none() && card(&catalog, &internal).is_none(),
        "{catalog}"
    );
    assert_eq!(
        catalog["rights"],
        json!({"mayBuy": false, "mayCancel": false})
    );
    let buy = format!("/v1/tenants/{tenant}/subscriptions");
    let confirmed = json!({"listing": public, "plan": "pro",
        "confirmedPrice": {"amount": "49.00", "currency": "USD", "interval": "Month"}});
    let (status, _, body) = as_viewer.post(&buy, Some("v-1"), confirmed.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("billing admins"),
        "{body}"
    );

    // The billing admin: rights, then the price rules, then one purchase however often retried.
    let catalog = eventually("the buyer may buy", CONVERGED, || async {
        let (status, body) = as_buyer.get(&catalog_path).await;
        (status == StatusCode::OK && body["rights"]["mayBuy"] == true).then_some(body)
    })
    .await;
    assert_eq!(catalog["rights"]["mayCancel"], true);
    let detail = as_buyer
        .get(&format!("/v1/tenants/{tenant}/catalog/{public}"))
        .await;
    assert_eq!(detail.0, StatusCode::OK);
    assert_eq!(
        detail.1["plans"][0]["confirmation"],
        "Confirm addition of $49.00/mo to your bill?"
    );
    let hidden = as_buyer
        .get(&format!("/v1/tenants/{tenant}/catalog/{private}"))
        .await;
    assert_eq!(hidden.0, StatusCode::NOT_FOUND, "{}", hidden.1);
    let (status, _, body) = as_buyer
        .post(&buy, None, json!({"listing": public, "plan": "pro"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("PriceNotConfirmed")),
        "{body}"
    );
    let (status, _, body) = as_buyer
        .post(
            &buy,
            None,
            json!({"listing": public, "plan": "pro",
            "confirmedPrice": {"amount": "39.00", "currency": "USD", "interval": "Month"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["currentPrice"]["amount"], "49.00");
    let (status, _, body) = as_buyer
        .post(
            &buy,
            Some("k-private"),
            json!({"listing": private, "plan": "pro",
            "confirmedPrice": {"amount": "49.00", "currency": "USD", "interval": "Month"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The connection wizard: settings checked field by field, the test run without buying.
    let test = format!("/v1/tenants/{tenant}/catalog/{integration}/wizard/test");
    let (status, _, body) = as_buyer
        .post(
            &test,
            None,
            json!({"connection": {"realmId": "acme", "apiKey": "tiny-secret"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ConnectionInvalid")),
        "{body}"
    );
    assert!(
        !body.to_string().contains("tiny-secret"),
        "a secret leaked: {body}"
    );
    let good = json!({"realmId": "1234", "apiKey": "a-long-enough-key"});
    let (status, _, body) = as_buyer
        .post(&test, None, json!({"connection": good}))
        .await;
    assert_eq!(
        (status, &body["ok"]),
        (StatusCode::OK, &json!(false)),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap_or("").contains("127.0.0.1"),
        "a loopback target is refused: {body}"
    );
    let (status, _, body) = as_buyer
        .post(
            &buy,
            Some("qb-bad"),
            json!({"listing": integration, "plan": "pro",
            "connection": {"realmId": "acme", "apiKey": "tiny-secret"},
            "confirmedPrice": {"amount": "49.00", "currency": "USD", "interval": "Month"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ConnectionInvalid")),
        "{body}"
    );

    let key = format!("{tenant}-first-purchase");
    let (status, headers, first) = as_buyer.post(&buy, Some(&key), confirmed.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(headers.get("location").is_some());
    assert_eq!(
        first["confirmation"],
        "Confirm addition of $49.00/mo to your bill?"
    );
    let name = first["subscription"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    for _ in 0..2 {
        let (status, headers, again) = as_buyer.post(&buy, Some(&key), confirmed.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{again}");
        assert_eq!(again["subscription"]["name"], name.as_str());
        assert_eq!(
            headers
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap()),
            Some("true")
        );
    }
    let mut other_body = confirmed.clone();
    other_body["trial"] = json!(true);
    let (status, _, body) = as_buyer.post(&buy, Some(&key), other_body).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IdempotencyKeyReused")
        ),
        "{body}"
    );
    let subscriptions: Api<TenantSubscription> = Api::namespaced(client.clone(), &namespace);
    let count = subscriptions
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(count, 1, "retries bought once");

    // The operator bills it; the card says Installed.
    eventually("the card turns Installed", CONVERGED, || async {
        let (_, body) = as_buyer.get(&catalog_path).await;
        (card(&body, &public)?["state"] == "Installed").then_some(())
    })
    .await;

    // Product code's checks are counted and land in the Entitlement's status (flushed every second here).
    for _ in 0..3 {
        let (status, check) = as_viewer
            .get(&format!(
                "/v1/tenants/{tenant}/entitlements/route_optimization"
            ))
            .await;
        assert_eq!(
            (status, &check["enabled"]),
            (StatusCode::OK, &json!(true)),
            "{check}"
        );
    }
    let entitlements: Api<Entitlement> = Api::namespaced(client.clone(), &namespace);
    let usage = eventually("the checks are recorded", CONVERGED, || async {
        let list = entitlements.list(&Default::default()).await.ok()?;
        let usage = list
            .items
            .into_iter()
            .find(|e| e.spec.feature.as_str() == "route_optimization")?
            .status?
            .usage?;
        (usage.checks >= 3).then_some(usage)
    })
    .await;
    let age = jiff::Timestamp::now().duration_since(usage.last_checked_at.0);
    assert!(age.as_secs() < 60, "last checked {age:?} ago");

    // The product's menu follows the entitlement.
    let navigation = format!("/v1/tenants/{tenant}/navigation");
    let entries = eventually("the menu entry appears", CONVERGED, || async {
        let (_, body) = as_viewer.get(&navigation).await;
        (!body["entries"].as_array()?.is_empty()).then_some(body)
    })
    .await;
    assert_eq!(entries["entries"][0]["label"], "Itinerary Planning");

    // Cancel at the end of the period, then change one's mind.
    let cancel = format!("/v1/tenants/{tenant}/subscriptions/{name}/cancel");
    let (status, _, body) = as_viewer.post(&cancel, None, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = as_buyer
        .post(&cancel, None, json!({"reason": "too pricey"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cancellation"]["effective"], "EndOfPeriod");
    eventually("the card says CancelRequested", CONVERGED, || async {
        let (_, body) = as_buyer.get(&catalog_path).await;
        (card(&body, &public)?["state"] == "CancelRequested").then_some(())
    })
    .await;
    let (status, _, body) = as_buyer.post(&cancel, None, json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyCancelling")),
        "{body}"
    );
    let (status, _, body) = as_buyer
        .send(reqwest::Method::DELETE, &cancel, None, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("cancellation").is_none(), "{body}");
    eventually("the card is Installed again", CONVERGED, || async {
        let (_, body) = as_buyer.get(&catalog_path).await;
        (card(&body, &public)?["state"] == "Installed").then_some(())
    })
    .await;

    // Around the API, straight to the apiserver: the reconciler refuses what the tenant cannot see.
    let direct: TenantSubscription = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": "sneaky", "namespace": namespace},
        "spec": {"listing": internal, "plan": "pro"}}))
    .expect("subscription");
    subscriptions
        .create(&PostParams::default(), &direct)
        .await
        .expect("create");
    let rejected = phase_of(&subscriptions, "sneaky", Phase::Rejected).await;
    let why = ready_reason(&rejected);
    assert!(why.starts_with("ListingNotOffered"), "{why}");

    // The approval ladder, walked from the console while the tenant's card follows.
    let (status, _, body) = as_buyer
        .post(
            &buy,
            Some("approval-1"),
            json!({"listing": approval, "plan": "pro",
            "confirmedPrice": {"amount": "49.00", "currency": "USD", "interval": "Month"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let requested = body["subscription"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let (status, _) = as_buyer.get("/v1/admin/inbox").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only superadmins read the inbox"
    );
    let actions = format!("/v1/admin/tenants/{tenant}/subscriptions/{requested}/actions");
    for (step, body, waits_in) in [
        (
            "Invoice",
            json!({"action": "Invoice", "invoice": {"amount": "49.00", "currency": "USD"}}),
            "Requested",
        ),
        ("MarkPaid", json!({"action": "MarkPaid"}), "Invoiced"),
        ("Approve", json!({"action": "Approve"}), "Paid"),
    ] {
        let item = eventually(&format!("the inbox offers {step}"), CONVERGED, || async {
            let (status, inbox) = as_superadmin.get("/v1/admin/inbox").await;
            // The Role may still be landing (a denial is cached for the review TTL).
            if status != StatusCode::OK {
                return None;
            }
            inbox["items"]
                .as_array()?
                .iter()
                .find(|i| {
                    i["subscription"] == requested.as_str()
                        && i["phase"] == waits_in
                        && i["actions"]
                            .as_array()
                            .is_some_and(|a| a.contains(&json!(step)))
                })
                .cloned()
        })
        .await;
        assert_eq!(item["price"], "$49.00/mo");
        let (_, catalog) = as_buyer.get(&catalog_path).await;
        assert_eq!(
            card(&catalog, &approval).expect("card")["state"],
            "Pending",
            "{catalog}"
        );
        let (status, _, created) = as_superadmin.post(&actions, Some(step), body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
    eventually("the approved card turns Installed", CONVERGED, || async {
        let (_, body) = as_buyer.get(&catalog_path).await;
        (card(&body, &approval)?["state"] == "Installed").then_some(())
    })
    .await;
    let (status, _, body) = as_superadmin
        .post(&actions, None, json!({"action": "MarkPaid"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("ActionDoesNotFit")),
        "{body}"
    );
    let (status, support) = as_superadmin
        .get(&format!("/v1/admin/tenants/{tenant}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{support}");
    let approved = support["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .find(|s| s["name"] == requested.as_str())
        .expect("the approved subscription");
    assert!(approved["hubspot"]["dealId"].is_string(), "{approved}");
    assert!(
        approved["transitions"]
            .as_array()
            .is_some_and(|t| t.len() >= 4),
        "{approved}"
    );

    drop(api);
    world.controllers.stop().await;
}

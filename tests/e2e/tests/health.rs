//! Tenant health and MRR on a real apiserver: three tenants with subscriptions and checks as
//! the operator and the API record them, thresholds from a HealthPolicy for one base plan and
//! the built-in ones for another; a superadmin reads the verdicts (JSON, CSV, filtered) and
//! the MRR; a bad filter is a 400 naming it; anyone else gets 403; a HealthPolicy breaking a
//! rule is refused naming the field.

use std::time::Duration;

use jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use marketplace_e2e::api_process::{Caller, api_settings, service_account_token, start_api};
use marketplace_e2e::storefront_world::grant_superadmin;
use marketplace_e2e::subscriptions::apply;
use marketplace_e2e::tenants::{entitlement, tenant};
use marketplace_e2e::{control_plane, controllers, unique_name};
use marketplace_operator::api::{Entitlement, HealthPolicy, Listing, TenantSubscription};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A Listing `name` with a monthly USD plan and a yearly EUR plan.
fn listing(name: &str) -> Value {
    json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing",
        "metadata": {"name": name}, "spec": {
        "displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
        "category": "Operations", "lifecycle": "Published", "features": ["route_optimization"],
        "plans": [
            {"name": "pro", "displayName": "Pro",
             "pricing": {"model": "Flat", "amount": "49.00", "currency": "USD", "interval": "Month"}},
            {"name": "yearly", "displayName": "Yearly",
             "pricing": {"model": "Flat", "amount": "120", "currency": "EUR", "interval": "Year"}}]}})
}

/// A subscription with the status the operator would have written.
async fn subscription(
    client: &kube::Client,
    namespace: &str,
    listing: &str,
    plan: &str,
    status: Value,
) {
    let api: Api<TenantSubscription> = Api::namespaced(client.clone(), namespace);
    apply(
        &api,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": listing, "namespace": namespace},
        "spec": {"listing": listing, "plan": plan}}),
    )
    .await;
    api.patch_status(
        listing,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .expect("subscription status");
}

/// Records that product code checked `feature` at `at`, as the API's flush does.
async fn checked(client: &kube::Client, namespace: &str, feature: &str, at: Timestamp) {
    Api::<Entitlement>::namespaced(client.clone(), namespace)
        .patch_status(
            &feature.replace('_', "-"),
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"usage": {"lastCheckedAt": at.to_string(), "checks": 12}}}),
            ),
        )
        .await
        .expect("entitlement status");
}

fn row<'a>(report: &'a Value, tenant: &str) -> &'a Value {
    report["tenants"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["tenant"] == tenant))
        .unwrap_or_else(|| panic!("{tenant} in {report}"))
}

async fn text(caller: &Caller, path: &str, accept: &str) -> (StatusCode, String, String) {
    let response = caller
        .http
        .get(format!("{}{path}", caller.base))
        .bearer_auth(&caller.token)
        .header("Accept", accept)
        .send()
        .await
        .expect("answer");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, response.text().await.expect("body"))
}

#[tokio::test]
async fn superadmins_see_verdicts_and_mrr_as_json_and_csv() {
    let control_plane = control_plane().await;
    let client = control_plane.client().await.expect("client");
    let _running = controllers::start_tenant_controller(control_plane, &client, "e2e-health").await;
    let operator_namespace = controllers::operator_namespace(control_plane).await;
    let people = control_plane
        .create_namespace("people")
        .await
        .expect("namespace");
    let superadmin = service_account_token(&client, &people, "superadmin").await;
    let stranger = service_account_token(&client, &people, "stranger").await;
    grant_superadmin(&client, &operator_namespace, &people, "superadmin").await;

    // Professional tenants use this policy; Starter ones the built-in thresholds.
    let policies: Api<HealthPolicy> = Api::namespaced(client.clone(), &operator_namespace);
    apply(
        &policies,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "HealthPolicy",
        "metadata": {"name": "professional", "namespace": operator_namespace},
        "spec": {"basePlans": ["Professional"], "adoptionWindowDays": 7,
            "atRisk": {"minAdoptionPercent": 0},
            "upsellReady": {"minAdoptionPercent": 90}}}),
    )
    .await;
    // A policy breaking a rule never reaches the cluster, and the refusal names the field.
    let bad: HealthPolicy = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "HealthPolicy",
        "metadata": {"name": "bad", "namespace": operator_namespace},
        "spec": {"atRisk": {"minAdoptionPercent": 50}, "upsellReady": {"minAdoptionPercent": 40}}}))
    .expect("a HealthPolicy");
    let refused = policies
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("spec.upsellReady.minAdoptionPercent"),
        "{refused}"
    );

    let listing_name = unique_name("routes");
    apply(&Api::<Listing>::all(client.clone()), listing(&listing_name)).await;
    let now = Timestamp::now();
    let recently = (now - Duration::from_secs(3600)).to_string();
    // Starter, smb: a subscription suspended for a failed payment last hour: at risk.
    let (risky, risky_ns) = tenant(
        &client,
        "risky",
        json!({"basePlan": "Starter", "segment": "smb", "region": "eu-west"}),
    )
    .await;
    subscription(
        &client,
        &risky_ns,
        &listing_name,
        "pro",
        json!({"phase": "Active",
        "history": [{"from": "Active", "to": "Suspended", "at": recently, "actor": "hubspot"},
                    {"from": "Suspended", "to": "Active", "at": recently, "actor": "hubspot"}]}),
    )
    .await;
    // Professional, enterprise: every feature checked this week: ready for an upsell.
    let (grower, grower_ns) = tenant(
        &client,
        "grower",
        json!({"segment": "enterprise", "region": "us-east"}),
    )
    .await;
    subscription(
        &client,
        &grower_ns,
        &listing_name,
        "yearly",
        json!({"phase": "Active"}),
    )
    .await;
    entitlement(&client, &grower_ns, &grower, "route_optimization", "Active").await;
    checked(&client, &grower_ns, "route_optimization", now).await;
    // Professional, enterprise: one of two features checked: healthy.
    let (steady, steady_ns) = tenant(
        &client,
        "steady",
        json!({"segment": "enterprise", "region": "us-east"}),
    )
    .await;
    subscription(
        &client,
        &steady_ns,
        &listing_name,
        "pro",
        json!({"phase": "CancelRequested"}),
    )
    .await;
    entitlement(&client, &steady_ns, &steady, "route_optimization", "Active").await;
    entitlement(&client, &steady_ns, &steady, "eta_prediction", "Active").await;
    checked(&client, &steady_ns, "route_optimization", now).await;

    let api = start_api(
        control_plane,
        api_settings(Duration::from_secs(2), &operator_namespace),
    )
    .await;
    let as_superadmin = Caller {
        http: reqwest::Client::new(),
        base: api.base.clone(),
        token: superadmin,
    };
    let as_stranger = Caller {
        http: reqwest::Client::new(),
        base: api.base.clone(),
        token: stranger,
    };

    // The caches fill shortly after the API is ready: wait for the last object written.
    let report =
        marketplace_e2e::eventually("the health report", Duration::from_secs(30), || async {
            let (status, body) = as_superadmin.get("/v1/health/tenants").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let rows = body["tenants"].as_array()?;
            let steady_row = rows.iter().find(|r| r["tenant"] == steady.as_str())?;
            (steady_row["features"].as_array()?.len() == 2
                && steady_row["features"]
                    .as_array()?
                    .iter()
                    .any(|f| f["adopted"] == true))
            .then_some(body)
        })
        .await;
    let risky_row = row(&report, &risky);
    assert_eq!(risky_row["verdict"], "AtRisk", "{risky_row}");
    assert_eq!(risky_row["paymentProblems"], 1);
    assert_eq!(risky_row["policy"], "built-in");
    let grower_row = row(&report, &grower);
    assert_eq!(grower_row["verdict"], "UpsellReady", "{grower_row}");
    assert_eq!(grower_row["adoptionPercent"], 100);
    assert_eq!(grower_row["policy"], "professional");
    assert_eq!(grower_row["addOnsActive"], json!([listing_name]));
    let steady_row = row(&report, &steady);
    assert_eq!(steady_row["verdict"], "Healthy", "{steady_row}");
    assert_eq!(steady_row["adoptionPercent"], 50);

    // Filters: by segment, by base plan and by age (every tenant here is under a day old).
    let (_, enterprise) = as_superadmin
        .get("/v1/health/tenants?segment=enterprise&plan=Professional&maxAgeDays=0")
        .await;
    let names: Vec<&str> = enterprise["tenants"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["tenant"].as_str())
        .collect();
    assert!(
        names.contains(&grower.as_str())
            && names.contains(&steady.as_str())
            && !names.contains(&risky.as_str()),
        "{names:?}"
    );
    let (_, older) = as_superadmin.get("/v1/health/tenants?minAgeDays=1").await;
    assert_eq!(older["tenants"], json!([]));
    let (status, refused) = as_superadmin
        .get("/v1/health/tenants?minAgeDays=soon")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["field"], "minAgeDays", "{refused}");

    // CSV, by Accept and by format, filtered.
    let (status, content_type, csv) = text(
        &as_superadmin,
        "/v1/health/tenants?verdict=AtRisk",
        "text/csv",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .expect("header")
            .starts_with("tenant,displayName,basePlan"),
        "{csv}"
    );
    let risky_line = lines
        .find(|l| l.starts_with(&format!("{risky},")))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(risky_line.contains(",AtRisk,"), "{risky_line}");
    assert!(!csv.contains(&grower), "{csv}");

    // MRR: the two Active/CancelRequested USD subscriptions at $49, the yearly EUR one at 10/month.
    let (status, mrr) = as_superadmin.get("/v1/revenue/mrr").await;
    assert_eq!(status, StatusCode::OK, "{mrr}");
    let lines: Vec<&Value> = mrr["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["listing"] == listing_name.as_str())
        .collect();
    assert_eq!(lines.len(), 2, "{mrr}");
    assert_eq!(
        (
            &lines[0]["plan"],
            &lines[0]["currency"],
            &lines[0]["mrr"],
            &lines[0]["subscriptions"]
        ),
        (&json!("pro"), &json!("USD"), &json!("98.00"), &json!(2))
    );
    assert_eq!(
        (&lines[1]["plan"], &lines[1]["currency"], &lines[1]["mrr"]),
        (&json!("yearly"), &json!("EUR"), &json!("10.00"))
    );
    let (status, _, csv) = text(
        &as_superadmin,
        &format!("/v1/revenue/mrr?format=csv&listing={listing_name}"),
        "*/*",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        csv,
        format!(
            "listing,plan,currency,subscriptions,mrr\r\n{listing_name},pro,USD,2,98.00\r\n{listing_name},yearly,EUR,1,10.00\r\n"
        )
    );

    // Nobody else reads them.
    for path in ["/v1/health/tenants", "/v1/revenue/mrr"] {
        let (status, body) = as_stranger.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    // The console page shows the same verdicts in words, for the superadmin only.
    let (status, _, page) = text(
        &as_superadmin,
        "/admin/health?segment=enterprise",
        "text/html",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-verdict=\"UpsellReady\">Ready for upsell</span>"),
        "{page}"
    );
    assert!(
        page.contains("data-verdict=\"Healthy\">Healthy</span>") && !page.contains(&risky),
        "{page}"
    );
    assert!(
        page.contains("/v1/health/tenants?segment=enterprise&amp;format=csv"),
        "{page}"
    );
    let (status, _, _) = text(&as_stranger, "/admin/health", "text/html").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

//! OIDC bearer tokens, as a SaaS's identity provider (Keycloak, Auth0) issues them, through the
//! real apiserver. The harness's local issuer mints ID tokens; kube-apiserver authenticates
//! them through its structured authentication configuration (user `oidc:<sub>`, groups
//! `oidc:<group>`), and the entitlement API lets a Tenant's OIDC people read it with no change
//! of its own: a group among the viewers and a user among the admins read (200), an OIDC user
//! with no role gets 403, a token signed by another key or expired 401.

use std::time::Duration;

use kube::Client;
use marketplace_e2e::api_process::{api_settings, start_api};
use marketplace_e2e::subscriptions::CONVERGED;
use marketplace_e2e::tenants::{entitlement, in_app_listing, tenant};
use marketplace_e2e::{control_plane, controllers, eventually, unique_name};
use marketplace_harness::oidc::Es256Key;
use marketplace_harness::{OIDC_PREFIX, review_token};
use reqwest::StatusCode;
use serde_json::{Value, json};

const FEATURE: &str = "route_optimization";
const HOUR: Duration = Duration::from_secs(3600);

/// A Tenant whose viewers are OIDC group `staff` and admins OIDC user `admin`, with `FEATURE`
/// Active; returns its name once the operator has made its namespace.
async fn tenant_with_oidc_people(client: &Client, staff: &str, admin: &str) -> String {
    let people = json!({
        "admins": [{"kind": "User", "name": format!("{OIDC_PREFIX}{admin}")}],
        "viewers": [{"kind": "Group", "name": format!("{OIDC_PREFIX}{staff}")}]});
    let (name, namespace) = tenant(client, "oidc", people).await;
    in_app_listing(client, "routes", &[FEATURE]).await;
    entitlement(client, &namespace, &name, FEATURE, "Active").await;
    name
}

#[tokio::test]
async fn oidc_users_read_their_tenant_through_the_real_apiserver() {
    let started = std::time::Instant::now();
    let control_plane = control_plane().await;
    let client = control_plane.client().await.expect("client");
    let running = controllers::start_tenant_controller(control_plane, &client, "e2e-oidc").await;
    let staff = unique_name("acme-staff");
    let tenant = tenant_with_oidc_people(&client, &staff, "ops-lead@acme.example").await;

    let issuer = control_plane.oidc_issuer();
    let viewer = issuer
        .mint("ann@acme.example", &[&staff], HOUR)
        .expect("mint");
    let admin = issuer
        .mint("ops-lead@acme.example", &[], HOUR)
        .expect("mint");
    let outsider = issuer
        .mint("mallory@elsewhere.example", &["elsewhere-staff"], HOUR)
        .expect("mint");
    let claims = issuer.id_token("ann@acme.example", &[&staff], HOUR);
    let foreign = claims
        .sign(&Es256Key::generate().expect("key"))
        .expect("sign");
    let mut expired = claims.clone();
    expired.issued_at -= 2 * HOUR;
    expired.expires_at -= 2 * HOUR;
    let expired = issuer.sign(&expired).expect("sign");

    // The real apiserver authenticates the issuer's token, mapping its claims.
    let user = review_token(&client, &viewer)
        .await
        .expect("TokenReview")
        .expect("the viewer's ID token is authenticated");
    assert_eq!(
        user.username.as_deref(),
        Some(format!("{OIDC_PREFIX}ann@acme.example").as_str())
    );
    let groups = user.groups.unwrap_or_default();
    assert!(
        groups.contains(&format!("{OIDC_PREFIX}{staff}")),
        "{groups:?}"
    );

    let api = start_api(
        control_plane,
        api_settings(Duration::from_secs(2), "marketplace-system"),
    )
    .await;
    let http = reqwest::Client::new();
    let check = format!("{}/v1/tenants/{tenant}/entitlements/{FEATURE}", api.base);
    let get = |token: String| {
        let request = http.get(&check).bearer_auth(token);
        async move {
            let response = request.send().await.expect("the API answers");
            let status = response.status();
            (status, response.text().await.expect("body"))
        }
    };
    let body = eventually(
        "the OIDC viewer group reads the tenant",
        CONVERGED,
        || async {
            let (status, body) = get(viewer.clone()).await;
            (status == StatusCode::OK).then_some(body)
        },
    )
    .await;
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (answer["enabled"].clone(), answer["reason"].clone()),
        (json!(true), json!("Entitled")),
        "{body}"
    );
    let (status, body) = get(admin).await;
    assert_eq!(status, StatusCode::OK, "the OIDC admin user: {body}");

    for (who, token, expected) in [
        ("an OIDC user with no role", outsider, StatusCode::FORBIDDEN),
        (
            "a token signed by another key",
            foreign,
            StatusCode::UNAUTHORIZED,
        ),
        ("an expired token", expired, StatusCode::UNAUTHORIZED),
    ] {
        assert_eq!(get(token).await.0, expected, "{who}");
    }
    eprintln!("oidc: {:?}", started.elapsed());
    drop(api);
    running.stop().await;
}

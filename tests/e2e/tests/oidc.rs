//! OIDC bearer tokens, as a SaaS's identity provider (Keycloak, Auth0) issues them, through the
//! real apiserver. The harness's local issuer mints ID tokens; kube-apiserver authenticates
//! them through its structured authentication configuration (user `oidc:<sub>`, groups
//! `oidc:<group>`), and the entitlement API lets a Tenant's OIDC people read it with no change
//! of its own: a group among the viewers and a user among the admins read (200), an OIDC user
//! with no role gets 403, a token signed by another key or expired 401. The web UI signs a
//! person in through the issuer's authorization code flow with PKCE (an HTTP client following
//! each redirect by hand, carrying cookies as a browser does), and works behind a proxy that
//! passes the bearer token.

use std::time::Duration;

use kube::Client;
use marketplace_e2e::api_process::{api_settings, start_api};
use marketplace_e2e::subscriptions::CONVERGED;
use marketplace_e2e::tenants::{entitlement, in_app_listing, tenant};
use marketplace_e2e::{control_plane, controllers, eventually, unique_name};
use marketplace_harness::oidc::Es256Key;
use marketplace_harness::{OIDC_AUDIENCE, OIDC_PREFIX, review_token};
use marketplace_operator::front_door::web::oidc::OidcSettings;
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

    let mut settings = api_settings(Duration::from_secs(2), "marketplace-system");
    settings.web.oidc = Some(OidcSettings {
        issuer_url: issuer.url().to_owned(),
        client_id: OIDC_AUDIENCE.to_owned(),
        client_secret: None,
        public_url: format!("http://{}", settings.endpoint.listen),
        ca_pem: Some(issuer.ca_pem().to_owned()),
    });
    let api = start_api(control_plane, settings).await;
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
    sign_in_through_the_issuer(&api.base, issuer.ca_pem(), &tenant).await;
    behind_a_proxy_that_passes_the_bearer(
        &api.base,
        &tenant,
        &issuer
            .mint("ops-lead@acme.example", &[], HOUR)
            .expect("mint"),
    )
    .await;
    eprintln!("oidc: {:?}", started.elapsed());
    drop(api);
    running.stop().await;
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `name=value` of a response's Set-Cookie for `name`.
fn cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// Sign-in page → /signin/oidc → the issuer's /authorize (auto-approves the login_hint) →
/// the callback with the attempt's cookie → the session cookie → the storefront as that
/// person. A forged state and a replayed code sign nobody in.
async fn sign_in_through_the_issuer(base: &str, ca_pem: &str, tenant: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA"))
        .build()
        .expect("client");
    let page = http
        .get(format!("{base}/signin"))
        .send()
        .await
        .expect("signin");
    assert!(
        page.text()
            .await
            .expect("body")
            .contains("id=\"signin-oidc\"")
    );

    let next = format!("/t/{tenant}/marketplace");
    let start = http
        .get(format!("{base}/signin/oidc"))
        .query(&[
            ("next", next.as_str()),
            ("login_hint", "ops-lead@acme.example"),
        ])
        .send()
        .await
        .expect("start");
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let attempt = cookie(&start, "marketplace_oidc");
    let authorize = header(&start, "location");
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );

    let approved = http.get(&authorize).send().await.expect("authorize");
    assert_eq!(
        approved.status(),
        StatusCode::FOUND,
        "{:?}",
        approved.text().await
    );
    let callback = header(&approved, "location");
    assert!(
        callback.starts_with(&format!("{base}/signin/oidc/callback?code=")),
        "{callback}"
    );

    let forged = http
        .get(callback.replace("&state=", "&state=forged"))
        .header("cookie", &attempt)
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST, "a forged state");

    let signed_in = http
        .get(&callback)
        .header("cookie", &attempt)
        .send()
        .await
        .expect("callback");
    assert_eq!(signed_in.status(), StatusCode::OK);
    let session = cookie(&signed_in, "marketplace_session");
    let body = signed_in.text().await.expect("body");
    assert!(body.contains(&format!("url={next}")), "{body}");

    let replayed = http
        .get(&callback)
        .header("cookie", &attempt)
        .send()
        .await
        .expect("replay");
    assert_eq!(
        replayed.status(),
        StatusCode::BAD_GATEWAY,
        "a code is traded once"
    );

    let storefront = http
        .get(format!("{base}{next}"))
        .header("cookie", &session)
        .send()
        .await
        .expect("storefront");
    assert_eq!(storefront.status(), StatusCode::OK);
    let html = storefront.text().await.expect("body");
    assert!(
        html.contains(&format!("{OIDC_PREFIX}ops-lead@acme.example")),
        "{html}"
    );
}

/// An authenticating proxy (oauth2-proxy and the like) sends `Authorization: Bearer`: pages
/// render as that person with no cookie, and a state-changing request from another site is
/// still refused.
async fn behind_a_proxy_that_passes_the_bearer(base: &str, tenant: &str, token: &str) {
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{base}/t/{tenant}/marketplace"))
        .bearer_auth(token)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .expect("body")
            .contains("ops-lead@acme.example")
    );
    let cross_site = http
        .post(format!("{base}/v1/tenants/{tenant}/subscriptions"))
        .bearer_auth(token)
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
}

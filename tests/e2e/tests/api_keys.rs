//! Backend API keys and per-tenant read rates on a real apiserver. A key made by
//! `create_api_key` (what `marketplace api-key create` runs) reads its tenant over REST, OFREP
//! and the storefront, with no apiserver call per request; it is 403 for another tenant and for
//! buying, 401 when wrong, tampered, expired or revoked (its Secret deleted); a second key works
//! beside the first (rotation). Then reads beyond a tenant's rate get 429 with `Retry-After` in
//! integer seconds, per tenant.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use marketplace_e2e::api_process::{RunningApi, api_settings, start_api};
use marketplace_e2e::subscriptions::CONVERGED;
use marketplace_e2e::tenants::{entitlement, in_app_listing, tenant};
use marketplace_e2e::{control_plane, controllers, eventually, unique_name};
use marketplace_operator::front_door::api_keys::secrets::{
    create_api_key, list_api_keys, revoke_api_key,
};
use marketplace_operator::front_door::read_limits::ReadLimitSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};

const FEATURE: &str = "route_optimization";

/// A Tenant with no people (only keys read it) and `FEATURE` Active: its name and namespace.
async fn tenant_with_feature(client: &Client) -> (String, String) {
    let (name, namespace) = tenant(client, "keys", json!({})).await;
    entitlement(client, &namespace, &name, FEATURE, "Active").await;
    (name, namespace)
}

/// One HTTP answer: status, `Retry-After`, body.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    /// `Retry-After`, which must be whole seconds.
    fn retry_after_seconds(&self) -> u64 {
        let value = self.retry_after.as_deref().expect("Retry-After");
        value
            .parse()
            .unwrap_or_else(|_| panic!("Retry-After {value:?} is not integer seconds"))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Calls the API with an `X-API-Key`.
struct KeyClient {
    http: reqwest::Client,
    base: String,
}

impl KeyClient {
    fn new(api: &RunningApi) -> Self {
        KeyClient {
            http: reqwest::Client::new(),
            base: api.base.clone(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, key: &str) -> Answer {
        let response = request
            .header("X-API-Key", key)
            .send()
            .await
            .expect("the API answers");
        Answer {
            status: response.status(),
            retry_after: response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().expect("ascii").to_string()),
            body: response.text().await.expect("body"),
        }
    }

    async fn get(&self, path: &str, key: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)), key)
            .await
    }

    /// OFREP single evaluation of `FEATURE` (or bulk with `bulk`) for `tenant`.
    async fn ofrep(&self, tenant: &str, key: &str, bulk: bool) -> Answer {
        let path = if bulk {
            String::new()
        } else {
            format!("/{FEATURE}")
        };
        let request = self
            .http
            .post(format!("{}/ofrep/v1/evaluate/flags{path}", self.base))
            .header("Content-Type", "application/json; charset=utf-8")
            .body(json!({"context": {"targetingKey": tenant}}).to_string());
        self.send(request, key).await
    }
}

/// Single-object Secret reads and access reviews the apiserver has answered so far: what a
/// key check would cost if it went to the apiserver.
async fn per_request_calls(client: &Client) -> u64 {
    marketplace_harness::apiserver_samples(client, "apiserver_request_total")
        .await
        .expect("apiserver /metrics")
        .iter()
        .filter(|s| {
            (s.label("resource") == "secrets" && s.label("verb") == "GET")
                || matches!(s.label("resource"), "tokenreviews" | "subjectaccessreviews")
        })
        .map(|s| s.value)
        .sum::<f64>() as u64
}

#[tokio::test]
async fn a_backend_key_reads_its_tenant_only_until_revoked() {
    let started = std::time::Instant::now();
    let control_plane = control_plane().await;
    let client = control_plane.client().await.expect("client");
    let running = controllers::start_tenant_controller(control_plane, &client, "e2e-keys").await;
    let (a, a_ns) = tenant_with_feature(&client).await;
    let (b, _) = tenant_with_feature(&client).await;
    let listing = in_app_listing(&client, "routes", &[FEATURE]).await;

    let issued = create_api_key(&client, &a, "billing server", None, Timestamp::now())
        .await
        .expect("a key");
    let key = issued.key.clone();
    assert!(key.starts_with(&format!("mk_{a}_{}_", issued.id)), "{key}");
    // The Secret holds the hash, the name and the time, never the key.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &a_ns);
    let secret = secrets.get(&issued.secret).await.expect("the key's Secret");
    let data = secret.data.clone().unwrap_or_default();
    let text = |field: &str| String::from_utf8(data[field].0.clone()).expect("utf-8");
    assert!(text("hash").starts_with("sha256:"), "{data:?}");
    assert_eq!(text("name"), "billing server");
    let secret_part = key.rsplit('_').next().expect("secret part");
    assert!(
        data.values()
            .all(|v| !String::from_utf8_lossy(&v.0).contains(secret_part)),
        "the Secret must not hold the key"
    );
    let missing = create_api_key(&client, &unique_name("nobody"), "x", None, Timestamp::now())
        .await
        .expect_err("no such tenant");
    assert!(missing.to_string().contains("does not exist"), "{missing}");

    let api = start_api(
        control_plane,
        api_settings(Duration::from_secs(2), "marketplace-system"),
    )
    .await;
    let http = KeyClient::new(&api);

    // REST and OFREP, single and bulk, and the storefront's reads.
    let check = format!("/v1/tenants/{a}/entitlements/{FEATURE}");
    let answer = http.get(&check, &key).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json()["enabled"], true, "{}", answer.body);
    assert_eq!(
        http.get(&format!("/v1/tenants/{a}/entitlements"), &key)
            .await
            .status,
        StatusCode::OK
    );
    let flag = eventually("the listing is in the API's cache", CONVERGED, || async {
        let answer = http.ofrep(&a, &key, false).await;
        (answer.status == StatusCode::OK).then_some(answer)
    })
    .await;
    assert_eq!(
        (flag.json()["value"].clone(), flag.json()["variant"].clone()),
        (json!(true), json!("on")),
        "{}",
        flag.body
    );
    let bulk = http.ofrep(&a, &key, true).await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    let catalog = http.get(&format!("/v1/tenants/{a}/catalog"), &key).await;
    assert_eq!(catalog.status, StatusCode::OK, "{}", catalog.body);
    assert_eq!(
        catalog.json()["rights"],
        json!({"mayBuy": false, "mayCancel": false})
    );
    let detail = http
        .get(&format!("/v1/tenants/{a}/catalog/{listing}"), &key)
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);

    // Known callers cost the apiserver nothing: no Secret read, no review, per request.
    let before = per_request_calls(&client).await;
    assert!(before > 0, "the count sees this test's own Secret read");
    for _ in 0..20 {
        assert_eq!(http.get(&check, &key).await.status, StatusCode::OK);
        assert_eq!(http.ofrep(&a, &key, false).await.status, StatusCode::OK);
    }
    assert_eq!(per_request_calls(&client).await, before);

    // Never another tenant, never a write.
    let other = http
        .get(&format!("/v1/tenants/{b}/entitlements"), &key)
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.body);
    assert!(!other.body.contains(&b), "{}", other.body);
    let other = http.ofrep(&b, &key, false).await;
    assert_eq!(
        (other.status, other.body.as_str()),
        (StatusCode::FORBIDDEN, "")
    );
    let other = http.get(&format!("/v1/tenants/{b}/catalog"), &key).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let buy = http
        .send(
            http.http
                .post(format!("{}/v1/tenants/{a}/subscriptions", api.base))
                .json(&json!({"listing": listing, "plan": "standard"})),
            &key,
        )
        .await;
    assert_eq!(buy.status, StatusCode::FORBIDDEN, "{}", buy.body);

    // Wrong, tampered and missing keys: 401.
    let wrong_secret = format!("{}{}", &key[..key.len() - 64], "0".repeat(64));
    let other_tenant = key.replacen(&format!("mk_{a}_"), &format!("mk_{b}_"), 1);
    for (what, bad) in [
        ("a wrong secret", wrong_secret.as_str()),
        ("the key renamed to another tenant", other_tenant.as_str()),
        ("not a key", "hunter2"),
    ] {
        assert_eq!(
            http.get(&check, bad).await.status,
            StatusCode::UNAUTHORIZED,
            "{what}"
        );
        let refused = http.ofrep(&a, bad, false).await;
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (StatusCode::UNAUTHORIZED, ""),
            "{what}"
        );
    }

    // Rotation: a second key works beside the first as soon as the watch brings it.
    let second = create_api_key(&client, &a, "billing server (new)", None, Timestamp::now())
        .await
        .expect("a second key");
    eventually("the second key reads", CONVERGED, || async {
        (http.get(&check, &second.key).await.status == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(http.get(&check, &key).await.status, StatusCode::OK);
    let listed = list_api_keys(&client, &a).await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, vec![issued.id.as_str(), second.id.as_str()]);

    // An expiry in the past stops the first key; revoking (deleting the Secret) the second.
    let patch = json!({"stringData": {"expires": "2026-01-01T00:00:00Z"}});
    secrets
        .patch(
            &issued.secret,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("expire the first key");
    eventually("the expired key is refused", CONVERGED, || async {
        (http.get(&check, &key).await.status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    assert_eq!(http.get(&check, &second.key).await.status, StatusCode::OK);
    revoke_api_key(&client, &a, &second.id)
        .await
        .expect("revoke");
    let revoked_at = std::time::Instant::now();
    eventually("the revoked key is refused", CONVERGED, || async {
        (http.get(&check, &second.key).await.status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    eprintln!(
        "api_keys: revocation took effect within {:?}",
        revoked_at.elapsed()
    );
    let refused = http.ofrep(&a, &second.key, true).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        revoke_api_key(&client, &a, &second.id)
            .await
            .expect_err("already revoked")
            .to_string()
            .contains("has no API key")
    );
    eprintln!("api_keys: {:?}", started.elapsed());
    drop(api);
    running.stop().await;
}

#[tokio::test]
async fn reads_beyond_a_tenants_rate_get_429_with_retry_after() {
    let control_plane = control_plane().await;
    let client = control_plane.client().await.expect("client");
    let running =
        controllers::start_tenant_controller(control_plane, &client, "e2e-read-limits").await;
    let (c, _) = tenant_with_feature(&client).await;
    let (d, _) = tenant_with_feature(&client).await;
    let listing = in_app_listing(&client, "routes", &[FEATURE]).await;
    let now = Timestamp::now();
    let key_c = create_api_key(&client, &c, "scraped", None, now)
        .await
        .expect("key")
        .key;
    let key_d = create_api_key(&client, &d, "neighbour", None, now)
        .await
        .expect("key")
        .key;
    let mut settings = api_settings(Duration::from_secs(2), "marketplace-system");
    settings.read_limits = ReadLimitSettings {
        checks_per_minute: 5,
        details_per_minute: 3,
        ..ReadLimitSettings::default()
    };
    let api = start_api(control_plane, settings).await;
    let http = KeyClient::new(&api);

    // The listing reaches the API's cache first (watched on catalog pages, their own budget:
    // a detail read that 404s would count).
    eventually("the listing is in the API's cache", CONVERGED, || async {
        let page = http.get(&format!("/v1/tenants/{c}/catalog"), &key_c).await;
        let items = page.json()["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .any(|card| card["name"] == listing)
            .then_some(())
    })
    .await;
    let detail = |tenant: &str| format!("/v1/tenants/{tenant}/catalog/{listing}");
    for n in 0..3 {
        let answer = http.get(&detail(&c), &key_c).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "detail read {n}: {}",
            answer.body
        );
    }
    let limited = http.get(&detail(&c), &key_c).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let seconds = limited.retry_after_seconds();
    assert!((1..=20).contains(&seconds), "{seconds}");
    assert_eq!(limited.json()["code"], "RateLimited", "{}", limited.body);
    // The catalog pages have their own, larger budget; another tenant its own buckets.
    let page = http.get(&format!("/v1/tenants/{c}/catalog"), &key_c).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(http.get(&detail(&d), &key_d).await.status, StatusCode::OK);

    // Entitlement checks: REST and OFREP share the tenant's bucket.
    let check = format!("/v1/tenants/{c}/entitlements/{FEATURE}");
    for _ in 0..3 {
        assert_eq!(http.get(&check, &key_c).await.status, StatusCode::OK);
    }
    for _ in 0..2 {
        assert_eq!(http.ofrep(&c, &key_c, false).await.status, StatusCode::OK);
    }
    let limited = http.ofrep(&c, &key_c, false).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let seconds = limited.retry_after_seconds();
    assert!((1..=12).contains(&seconds), "{seconds}");
    assert!(
        limited.json()["errorDetails"].is_string(),
        "{}",
        limited.body
    );
    assert_eq!(
        http.get(&check, &key_c).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another tenant is not throttled by C's reads.
    let neighbour = http
        .get(&format!("/v1/tenants/{d}/entitlements/{FEATURE}"), &key_d)
        .await;
    assert_eq!(neighbour.status, StatusCode::OK, "{}", neighbour.body);
    drop(api);
    running.stop().await;
}

//! Backend keys and read rates through the routes, without a cluster: a key is checked against
//! a scripted Secret cache and needs no review, so every answer here is the real one.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::runtime::watcher;
use tower::ServiceExt;

use super::api_keys::store::ApiKeyStore;
use super::api_keys::{format_key, secret_data, secret_name};
use super::impersonation::Impersonator;
use super::read_limits::ReadLimitSettings;
use super::{Authorizer, FrontDoor, ReviewCacheSettings, router};
use crate::runtime::{SharedCache, Stores};
use crate::server::Readiness;

fn key_secret(tenant: &str, key: &str) -> Secret {
    let id = super::api_keys::parse_key(key).expect("a key").id;
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(id)),
            namespace: Some(format!("tenant-{tenant}")),
            ..ObjectMeta::default()
        },
        data: Some(
            secret_data(key, "server", Timestamp::UNIX_EPOCH, None)
                .into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// A front door whose only key is `key` (of tenant acme), with `limits`; its apiserver does not
/// answer, so anything that needed a review would be a 503.
pub(super) async fn door(key: &str, limits: ReadLimitSettings) -> axum::Router {
    let stores = Stores::never_filled();
    let events = futures::stream::iter([
        Ok::<_, watcher::Error>(watcher::Event::Init),
        Ok(watcher::Event::InitApply(key_secret("acme", key))),
        Ok(watcher::Event::InitDone),
    ])
    .chain(futures::stream::pending());
    let keys = ApiKeyStore::from_cache(SharedCache::from_events(events));
    tokio::time::timeout(Duration::from_secs(5), keys.wait_until_ready())
        .await
        .expect("keys ready");
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
    let client = kube::Client::try_from(config.clone()).expect("client");
    let reviews = ReviewCacheSettings {
        ttl: Duration::from_secs(10),
        capacity: 10,
    };
    let auth = Authorizer::new(client.clone(), reviews)
        .with_api_keys(keys)
        .with_read_limits(limits);
    router(
        FrontDoor::new(
            stores,
            Arc::new(auth),
            client,
            Impersonator::new(config),
            "marketplace-system".into(),
        ),
        Readiness::new(),
    )
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

async fn call(door: &axum::Router, request: Request<Body>) -> Answer {
    let response = door.clone().oneshot(request).await.expect("answer");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_string());
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .expect("body");
    Answer {
        status,
        retry_after,
        body: String::from_utf8(body.to_vec()).expect("utf-8"),
    }
}

fn rest(path: &str, key: &str) -> Request<Body> {
    Request::get(path)
        .header("x-api-key", key)
        .body(Body::empty())
        .expect("request")
}

fn ofrep(tenant: &str, key: &str) -> Request<Body> {
    Request::post("/ofrep/v1/evaluate/flags/routes")
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Body::from(format!(
            r#"{{"context": {{"targetingKey": "{tenant}"}}}}"#
        )))
        .expect("request")
}

#[tokio::test]
async fn a_key_reads_its_tenant_only_and_a_wrong_key_nothing() {
    let key = format_key("acme", &[1, 2, 3, 4], &[5; 32]);
    let door = door(&key, ReadLimitSettings::UNLIMITED).await;
    let ok = call(&door, rest("/v1/tenants/acme/entitlements", &key)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    // The catalog is empty: the flag is unknown, which only a reader of acme may learn.
    let flag = call(&door, ofrep("acme", &key)).await;
    assert_eq!(flag.status, StatusCode::NOT_FOUND, "{}", flag.body);
    assert!(flag.body.contains("FLAG_NOT_FOUND"), "{}", flag.body);

    let other = call(&door, rest("/v1/tenants/globex/entitlements", &key)).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let other = call(&door, ofrep("globex", &key)).await;
    assert_eq!(
        (other.status, other.body.as_str()),
        (StatusCode::FORBIDDEN, "")
    );

    let wrong = format_key("acme", &[1, 2, 3, 4], &[6; 32]);
    for key in [wrong.as_str(), "mk_acme", ""] {
        let refused = call(&door, rest("/v1/tenants/acme/entitlements", key)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{key:?}");
        let refused = call(&door, ofrep("acme", key)).await;
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (StatusCode::UNAUTHORIZED, ""),
            "{key:?}"
        );
    }
}

#[tokio::test]
async fn reads_over_the_tenants_rate_get_429_with_retry_after_in_seconds() {
    let key = format_key("acme", &[1, 2, 3, 4], &[5; 32]);
    let limits = ReadLimitSettings {
        checks_per_minute: 2,
        ..ReadLimitSettings::default()
    };
    let door = door(&key, limits).await;
    for _ in 0..2 {
        let ok = call(&door, rest("/v1/tenants/acme/entitlements", &key)).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    }
    let limited = call(&door, rest("/v1/tenants/acme/entitlements", &key)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.retry_after.as_deref(), Some("30"));
    let body: serde_json::Value = serde_json::from_str(&limited.body).expect("JSON");
    assert_eq!(body["code"], "RateLimited", "{body}");
    let limited = call(&door, ofrep("acme", &key)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let seconds: u64 = limited
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("integer seconds");
    assert!((1..=30).contains(&seconds), "{seconds}");
    let body: serde_json::Value = serde_json::from_str(&limited.body).expect("JSON");
    assert!(body["errorDetails"].is_string(), "{body}");
    // Refusals come first: a caller who may not read a tenant gets 403, never 429.
    let other = call(&door, rest("/v1/tenants/globex/entitlements", &key)).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

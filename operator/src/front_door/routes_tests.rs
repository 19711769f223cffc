//! The routes without a cluster: refusals that need no review, and a review that cannot be made.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::impersonation::Impersonator;
use super::{Authorizer, FrontDoor, ReviewCacheSettings, router};
use crate::runtime::{SharedCache, Stores};
use crate::server::Readiness;

/// A front door whose caches never fill and whose apiserver does not answer.
pub(super) fn door() -> axum::Router {
    let stores = Stores {
        listings: SharedCache::from_events(futures::stream::pending()),
        tenants: SharedCache::from_events(futures::stream::pending()),
        subscriptions: SharedCache::from_events(futures::stream::pending()),
        entitlements: SharedCache::from_events(futures::stream::pending()),
        promotions: SharedCache::from_events(futures::stream::pending()),
        bundles: SharedCache::from_events(futures::stream::pending()),
        bundle_subscriptions: SharedCache::from_events(futures::stream::pending()),
    };
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
    let client = kube::Client::try_from(config.clone()).expect("client");
    let settings = ReviewCacheSettings {
        ttl: Duration::from_secs(10),
        capacity: 10,
    };
    let auth = Arc::new(Authorizer::new(client.clone(), settings));
    let impersonator = Impersonator::new(config);
    router(
        FrontDoor::new(
            stores,
            auth,
            client,
            impersonator,
            "marketplace-system".into(),
        ),
        Readiness::new(),
    )
}

async fn call(request: Request<Body>) -> (StatusCode, String) {
    let response = door().oneshot(request).await.expect("answer");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .expect("body");
    (status, String::from_utf8(body.to_vec()).expect("utf-8"))
}

fn ofrep(path: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::post(path).header("content-type", "application/json; charset=utf-8");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request
        .body(Body::from(r#"{"context": {"targetingKey": "acme"}}"#))
        .expect("request")
}

#[tokio::test]
async fn anonymous_callers_get_401_and_ofrep_401s_have_no_body() {
    for path in [
        "/v1/tenants/acme/entitlements",
        "/v1/tenants/acme/entitlements/stream",
    ] {
        let (status, body) = call(Request::get(path).body(Body::empty()).expect("request")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(body.contains("Unauthenticated"), "{path}: {body}");
    }
    for path in [
        "/ofrep/v1/evaluate/flags/routes",
        "/ofrep/v1/evaluate/flags",
    ] {
        assert_eq!(
            call(ofrep(path, None)).await,
            (StatusCode::UNAUTHORIZED, String::new())
        );
    }
    let (status, _) = call(
        Request::get("/healthz")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_review_that_cannot_be_made_is_a_503_with_retry_after() {
    let response = door()
        .oneshot(ofrep("/ofrep/v1/evaluate/flags/routes", Some("some-token")))
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, body) = call(
        Request::get("/v1/tenants/acme/entitlements/routes")
            .header("authorization", "Bearer some-token")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

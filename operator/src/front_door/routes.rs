//! The front door's routes. Every handler checks the caller first (401, 403), then answers from
//! the shared caches through the pure functions of [`super::decide`] and [`super::ofrep`].

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use kube::Client;
use serde::Serialize;
use serde_json::{Value, json};

use super::auth::{Authorizer, Refusal};
use super::decide::{EntitlementView, check_feature, etag, if_none_match};
use super::impersonation::Impersonator;
use super::live_index::LiveIndex;
use super::metering_routes::allowances;
use super::ofrep;
use super::stream::{StreamSettings, entitlement_stream};
use super::usage::UsageLedger;
use crate::connection::ProbePolicy;
use crate::runtime::Stores;
use crate::server::Readiness;

/// What the handlers read: the shared caches, the index kept from them, and the authorizer;
/// what they write with: the caller's own identity ([`Impersonator`]). `client` (the API's own
/// identity) only reads what the caches do not hold.
#[derive(Clone)]
pub struct FrontDoor {
    pub(super) stores: Stores,
    pub(super) auth: Arc<Authorizer>,
    pub(super) index: LiveIndex,
    pub(super) streams: StreamSettings,
    pub(super) client: Client,
    pub(super) impersonator: Impersonator,
    /// Where SubscriptionActions and the drift report live.
    pub(super) operator_namespace: String,
    /// Checks counted per tenant and feature, flushed to the Entitlements.
    pub(super) usage: UsageLedger,
    /// What a wizard's test connection may reach.
    pub(super) probe: ProbePolicy,
    /// The web UI's theme.
    pub(super) web: Arc<super::web::WebSettings>,
    /// The usage store (`--usage-store`); without it the usage routes answer 503 and no check
    /// applies a hard limit.
    pub(super) meters: Option<Arc<crate::metering::meters::Meters>>,
}

impl FrontDoor {
    /// Starts the index of `stores` (on the current runtime).
    pub fn new(
        stores: Stores,
        auth: Arc<Authorizer>,
        client: Client,
        impersonator: Impersonator,
        operator_namespace: String,
    ) -> Self {
        let index = LiveIndex::start(&stores);
        FrontDoor {
            stores,
            auth,
            index,
            streams: StreamSettings::default(),
            client,
            impersonator,
            operator_namespace,
            usage: UsageLedger::default(),
            probe: ProbePolicy::default(),
            web: Arc::default(),
            meters: None,
        }
    }

    /// Takes usage events into `meters` and applies plans' hard limits from it.
    pub fn with_meters(mut self, meters: Arc<crate::metering::meters::Meters>) -> Self {
        self.meters = Some(meters);
        self
    }

    /// The web UI's settings (theme).
    pub fn with_web(mut self, web: super::web::WebSettings) -> Self {
        self.web = Arc::new(web);
        self
    }

    /// What wizard test connections may reach (as the operator's `--probe-*` flags).
    pub fn with_probe_policy(mut self, probe: ProbePolicy) -> Self {
        self.probe = probe;
        self
    }

    /// Counts checks into `usage` (the process flushes it).
    pub fn with_usage(mut self, usage: UsageLedger) -> Self {
        self.usage = usage;
        self
    }

    pub fn with_stream_settings(mut self, streams: StreamSettings) -> Self {
        self.streams = streams;
        self
    }

    /// The shared caches, for routes that read them directly.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The per-tenant index: its readiness, and closing its streams at shutdown.
    pub fn index(&self) -> &LiveIndex {
        &self.index
    }

    fn features_of(&self, tenant: &str) -> Arc<Vec<EntitlementView>> {
        self.index.features(tenant)
    }

    fn catalog(&self) -> Arc<BTreeSet<String>> {
        self.index.catalog()
    }
}

/// The API's routes, with `/healthz`, `/readyz`, `/openapi.json` and the web UI; a session
/// cookie stands for a bearer token on all of them ([`super::web::session`]).
pub fn router(door: FrontDoor, readiness: Readiness) -> Router {
    let routes = Router::new()
        .route("/v1/tenants/{tenant}/entitlements", get(list_entitlements))
        .route(
            "/v1/tenants/{tenant}/entitlements/stream",
            get(entitlement_stream),
        )
        .route(
            "/v1/tenants/{tenant}/entitlements/{feature}",
            get(check_entitlement),
        )
        .route("/ofrep/v1/evaluate/flags", post(ofrep_bulk))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep_single))
        .merge(super::storefront::routes::routes())
        .merge(super::console::routes::routes())
        .merge(super::metering_routes::routes())
        .merge(super::credit_routes::routes())
        .merge(super::health_routes::routes())
        .merge(super::openapi_document::routes())
        .merge(super::web::handlers::routes())
        .with_state(door)
        .layer(axum::middleware::from_fn(super::web::session::authenticate))
        .merge(crate::server::health::routes(readiness));
    // Last: it observes the routes present, and adds `/metrics`.
    let metrics = std::sync::Arc::new(crate::server::metrics::requests::RequestMetrics::new());
    crate::server::metrics::requests::observed(routes, metrics)
}

/// REST refusals carry a small JSON error that names nothing but the refusal.
pub(super) fn rest_refusal(refusal: Refusal) -> Response {
    let (status, code, message) = match refusal {
        Refusal::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "Unauthenticated",
            "a valid bearer token is required".to_string(),
        ),
        Refusal::Forbidden => (
            StatusCode::FORBIDDEN,
            "Forbidden",
            "you may not read this tenant".to_string(),
        ),
        Refusal::Unavailable(why) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable", why),
        Refusal::RateLimited {
            retry_after_seconds,
        } => return super::read_limits::rest_rate_limited(retry_after_seconds),
    };
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

/// OFREP refusals: 401 and 403 have no body (the spec's shape); 503 says why.
fn ofrep_refusal(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Unauthenticated => StatusCode::UNAUTHORIZED.into_response(),
        Refusal::Forbidden => StatusCode::FORBIDDEN.into_response(),
        Refusal::Unavailable(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
            axum::Json(json!({"errorDetails": why})),
        )
            .into_response(),
        Refusal::RateLimited {
            retry_after_seconds,
        } => super::read_limits::ofrep_rate_limited(retry_after_seconds),
    }
}

/// A 200 with a strong ETag over `parts` and the body, or a 304 when the client has it.
pub(super) fn with_etag(headers: &HeaderMap, parts: &[&[u8]], body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut all: Vec<&[u8]> = parts.to_vec();
    all.push(&bytes);
    let tag = etag(&all);
    let etag_header = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| if_none_match(v, &tag));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    (
        [
            (header::ETAG, etag_header),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        bytes,
    )
        .into_response()
}

async fn list_entitlements(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = door.auth.may_read(&headers, &tenant).await {
        return rest_refusal(refusal);
    }
    let body = json!({"tenant": tenant, "entitlements": door.features_of(&tenant).as_slice()});
    with_etag(&headers, &[], &body)
}

async fn check_entitlement(
    State(door): State<FrontDoor>,
    Path((tenant, feature)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = door.auth.may_read(&headers, &tenant).await {
        return rest_refusal(refusal);
    }
    let now = Timestamp::now();
    door.usage.record(&tenant, &feature, now);
    let features = door.features_of(&tenant);
    let allowances = allowances(&door, &tenant, &features, Some(&feature)).await;
    match check_feature(&features, &door.catalog(), &feature, now, &allowances) {
        Some(check) => axum::Json(check).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": "FeatureNotFound", "field": "feature",
                "message": format!("no listing grants the feature {feature:?}")})),
        )
            .into_response(),
    }
}

/// The tenant of an OFREP request, once the caller may read it.
async fn ofrep_tenant(
    door: &FrontDoor,
    headers: &HeaderMap,
    body: &[u8],
    key: Option<&str>,
) -> Result<(Value, String), Response> {
    // Authentication first: an anonymous caller learns nothing, not even about its body.
    if !crate::front_door::auth::has_credentials(headers) {
        return Err(StatusCode::UNAUTHORIZED.into_response());
    }
    let (context, tenant) =
        ofrep::context_of(body).map_err(|e| (e.status, axum::Json(e.body(key))).into_response())?;
    door.auth
        .may_read(headers, &tenant)
        .await
        .map_err(ofrep_refusal)?;
    Ok((context, tenant))
}

async fn ofrep_single(
    State(door): State<FrontDoor>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, tenant) = match ofrep_tenant(&door, &headers, &body, Some(&key)).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let now = Timestamp::now();
    door.usage.record(&tenant, &key, now);
    let features = door.features_of(&tenant);
    let allowances = allowances(&door, &tenant, &features, Some(&key)).await;
    let (status, body) = ofrep::evaluate(&key, &features, &door.catalog(), now, &allowances);
    (status, axum::Json(body)).into_response()
}

async fn ofrep_bulk(State(door): State<FrontDoor>, headers: HeaderMap, body: Bytes) -> Response {
    let (context, tenant) = match ofrep_tenant(&door, &headers, &body, None).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let now = Timestamp::now();
    let features = door.features_of(&tenant);
    // A bulk evaluation checks every feature the tenant holds.
    for held in features.iter() {
        door.usage.record(&tenant, &held.feature, now);
    }
    let allowances = allowances(&door, &tenant, &features, None).await;
    let flags = ofrep::evaluate_all(&features, &door.catalog(), now, &allowances);
    // The context is part of the tag: another context must never get a 304 for this answer.
    let context = serde_json::to_vec(&context).unwrap_or_default();
    with_etag(&headers, &[&context], &flags)
}

//! The API process's request metrics and request spans: every routed request is counted by
//! route template, method and status class, timed until its response starts, and runs in a
//! `request` span with a trace id (the caller's W3C `traceparent` trace id when it sends one),
//! so every log line of it can be found by that id.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;

use crate::runtime::logging::{new_trace_id, trace_id_of_traceparent};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route template (`/v1/tenants/{tenant}/entitlements/{feature}`), never the path.
    route: String,
    method: String,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

/// 0.5 ms … ~4 s: an answer from the caches, or a TokenReview round trip.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// The API's metrics, served at its own `/metrics`.
#[derive(Debug)]
pub struct RequestMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestMetrics {
    pub fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let mut registry = Registry::default();
        registry.register(
            "marketplace_api_requests",
            "API requests answered, by route template, method and status class",
            requests.clone(),
        );
        registry.register(
            "marketplace_api_request_duration_seconds",
            "Time until an API response starts, by route template",
            latency.clone(),
        );
        RequestMetrics {
            registry,
            requests,
            latency,
        }
    }

    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let code = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                code,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .observe(seconds);
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// `router` with a span, a count and a timing for every routed request, plus `GET /metrics`.
/// Call it on the finished router: only routes present now are observed.
pub fn observed(router: Router, metrics: Arc<RequestMetrics>) -> Router {
    router
        .route_layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            observe_request,
        ))
        .route("/metrics", get(scrape).with_state(metrics))
}

async fn scrape(State(metrics): State<Arc<RequestMetrics>>) -> Response {
    super::exposition(metrics.encode())
}

async fn observe_request(
    State(metrics): State<Arc<RequestMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str().to_string();
    let trace_id = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id_of_traceparent)
        .map(str::to_string)
        .unwrap_or_else(new_trace_id);
    let span = tracing::info_span!("request", %method, %route, %trace_id);
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    metrics.observe(&route, &method, status, started.elapsed().as_secs_f64());
    span.in_scope(|| tracing::debug!(status, "answered"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn counts_and_times_requests_by_route_template() {
        // Documented routes: the OpenAPI check reads every `.route(` of this file.
        let metrics = Arc::new(RequestMetrics::new());
        let app = observed(
            Router::new()
                .route("/v1/tenants/{tenant}/entitlements", get(|| async { "[]" }))
                .route(
                    "/v1/tenants/{tenant}/entitlements/{feature}",
                    get(|| async { StatusCode::FORBIDDEN }),
                ),
            metrics.clone(),
        );
        for path in [
            "/v1/tenants/acme/entitlements",
            "/v1/tenants/globex/entitlements",
            "/v1/tenants/acme/entitlements/maps",
        ] {
            let res = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_ne!(res.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let res = app
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        for line in [
            r#"marketplace_api_requests_total{route="/v1/tenants/{tenant}/entitlements",method="GET",code="2xx"} 2"#,
            r#"marketplace_api_requests_total{route="/v1/tenants/{tenant}/entitlements/{feature}",method="GET",code="4xx"} 1"#,
            r#"marketplace_api_request_duration_seconds_count{route="/v1/tenants/{tenant}/entitlements"} 2"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("acme"), "paths never become labels");
    }

    #[test]
    fn each_request_logs_its_route_and_the_callers_trace_id() {
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let lines = crate::runtime::logging::capture_json(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let app = observed(
                    Router::new()
                        .route("/v1/tenants/{tenant}/entitlements", get(|| async { "[]" })),
                    Arc::new(RequestMetrics::new()),
                );
                let request = Request::get("/v1/tenants/acme/entitlements")
                    .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
                    .body(Body::empty())
                    .unwrap();
                app.oneshot(request).await.unwrap();
            });
        });
        let answered = lines
            .iter()
            .find(|l| l["message"] == "answered")
            .unwrap_or_else(|| panic!("{lines:?}"));
        assert_eq!(answered["trace_id"], trace_id);
        assert_eq!(answered["route"], "/v1/tenants/{tenant}/entitlements");
        assert_eq!(answered["method"], "GET");
        assert_eq!(answered["status"], 200);
    }
}

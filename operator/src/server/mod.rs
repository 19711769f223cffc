//! The operator's HTTP endpoint: liveness and readiness (`/healthz`, `/readyz`), Prometheus
//! metrics (`/metrics`) and HubSpot webhooks (`/webhooks/hubspot`, only when configured).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use marketplace_operator::server::{Metrics, Readiness, ServerState, router, serve};
//! use std::sync::Arc;
//! let readiness = Readiness::new();
//! let caches = readiness.gate("caches synced");
//! let state = ServerState::new(readiness, Arc::new(Metrics::new()), None);
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! caches.set(true);
//! serve(listener, router(state), async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod health;
pub mod metrics;
pub mod tls;
pub mod webhooks;

pub use health::{Readiness, ReadinessGate};
pub use metrics::Metrics;
pub use webhooks::{HintSink, WebhookHint, WebhookReceiver};

use axum::Router;
use std::future::Future;
use std::sync::Arc;

/// Everything the endpoint serves from.
#[derive(Debug, Clone)]
pub struct ServerState {
    readiness: Readiness,
    metrics: Arc<Metrics>,
    /// `None` when no webhook secret is configured: the route is then absent (404).
    webhooks: Option<WebhookReceiver>,
}

impl ServerState {
    pub fn new(
        readiness: Readiness,
        metrics: Arc<Metrics>,
        webhooks: Option<WebhookReceiver>,
    ) -> Self {
        ServerState {
            readiness,
            metrics,
            webhooks,
        }
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// All routes of the endpoint.
pub fn router(state: ServerState) -> Router {
    let mut router = Router::new()
        .merge(health::routes(state.readiness))
        .merge(metrics::routes(state.metrics.clone()));
    if let Some(receiver) = state.webhooks {
        router = router.merge(webhooks::routes(receiver, state.metrics));
    }
    router
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits
/// for the requests in flight (a webhook answered 200 must have forwarded its hints).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// [`serve`] over HTTPS with `config` (see [`tls::server_config`]).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(tls::TlsListener::new(listener, config)?, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn serves_until_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = ServerState::new(Readiness::new(), Arc::new(Metrics::new()), None);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router(state), async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::new();
        let res = http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "ok");
        // Webhooks are not configured: no such route.
        let res = http
            .post(format!("http://{addr}{}", webhooks::PATH))
            .body("[]")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        drop(http);
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("server stops on shutdown")
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}

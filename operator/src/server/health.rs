//! `GET /healthz` (liveness: the process answers) and `GET /readyz` (readiness: every
//! registered gate is open). Liveness never depends on readiness, so a slow start (caches
//! syncing, HubSpot unreachable) keeps the pod out of the Service without restarting it.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The readiness gates of the process. Cheap to clone: clones share the same gates.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    gates: Arc<Mutex<Vec<ReadinessGate>>>,
}

/// One named condition for readiness, closed until [`ReadinessGate::set`]`(true)`.
#[derive(Clone, Debug)]
pub struct ReadinessGate {
    name: Arc<str>,
    open: Arc<AtomicBool>,
}

impl ReadinessGate {
    pub fn set(&self, ready: bool) {
        self.open.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a gate (closed), or returns the existing gate of that name, so two callers
    /// naming the same condition share it.
    pub fn gate(&self, name: impl Into<String>) -> ReadinessGate {
        let name = name.into();
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = gates.iter().find(|g| *g.name == *name) {
            return g.clone();
        }
        let gate = ReadinessGate {
            name: name.into(),
            open: Arc::new(AtomicBool::new(false)),
        };
        gates.push(gate.clone());
        gate
    }

    /// Names of the closed gates, in registration order (empty when ready).
    pub fn not_ready(&self) -> Vec<String> {
        let gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates
            .iter()
            .filter(|g| !g.is_ready())
            .map(|g| g.name.to_string())
            .collect()
    }

    /// True when every gate is open (and so when none is registered).
    pub fn is_ready(&self) -> bool {
        self.not_ready().is_empty()
    }
}

pub(crate) fn routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, String) {
    let waiting = readiness.not_ready();
    if waiting.is_empty() {
        return (StatusCode::OK, "ok\n".into());
    }
    let mut body = String::from("not ready:\n");
    for name in waiting {
        body.push_str("- ");
        body.push_str(&name);
        body.push('\n');
    }
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(r: &Readiness, path: &str) -> (StatusCode, String) {
        let res = routes(r.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readiness_opens_when_every_gate_does() {
        let r = Readiness::new();
        let caches = r.gate("caches synced");
        let hubspot = r.gate("hubspot bootstrapped");
        assert_eq!(
            get(&r, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready:\n- caches synced\n- hubspot bootstrapped\n".into()
            )
        );
        // Liveness does not wait for readiness.
        assert_eq!(get(&r, "/healthz").await, (StatusCode::OK, "ok".into()));
        caches.set(true);
        assert_eq!(
            get(&r, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready:\n- hubspot bootstrapped\n".into()
            )
        );
        // The same name is the same gate.
        r.gate("hubspot bootstrapped").set(true);
        assert!(hubspot.is_ready());
        assert_eq!(get(&r, "/readyz").await, (StatusCode::OK, "ok\n".into()));
        caches.set(false);
        assert_eq!(get(&r, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    }
}

//! Router, the per-request API layer (auth, rate limits, faults, headers) and startup.

use crate::admin::{self, SimHandle};
use crate::billing;
use crate::config::SimConfig;
use crate::error::{ApiError, SimError};
use crate::faults::{FaultKind, PartialCommit, injected_error};
use crate::persist;
use crate::ratelimit::RateHeaders;
use crate::routes::{associations, batch, lifecycle, objects, properties, search};
use crate::state::{Sim, SimState, lock};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

fn object_routes() -> Router<Sim> {
    Router::new()
        .route("/{ty}", get(objects::list).post(objects::create))
        .route("/{ty}/search", post(search::search))
        .route("/{ty}/batch/create", post(batch::create))
        .route("/{ty}/batch/read", post(batch::read))
        .route("/{ty}/batch/update", post(batch::update))
        .route("/{ty}/batch/upsert", post(batch::upsert))
        .route("/{ty}/batch/archive", post(batch::archive))
        .route(
            "/{ty}/{id}",
            get(objects::read)
                .patch(objects::update)
                .delete(objects::archive),
        )
        .route("/{ty}/{id}/associations/{to}", get(associations::list))
        .route(
            "/{ty}/{id}/associations/{to}/{to_id}",
            put(associations::put_labeled).delete(associations::delete_pair),
        )
        .route(
            "/{ty}/{id}/associations/default/{to}/{to_id}",
            put(associations::put_default),
        )
}

fn association_routes() -> Router<Sim> {
    Router::new()
        .route("/{from}/{to}/labels", get(associations::labels))
        .route("/{from}/{to}/batch/read", post(associations::batch_read))
        .route(
            "/{from}/{to}/batch/create",
            post(associations::batch_create),
        )
        .route(
            "/{from}/{to}/batch/archive",
            post(associations::batch_archive),
        )
        .route(
            "/{from}/{to}/batch/associate/default",
            post(associations::batch_default),
        )
        .route(
            "/{from}/{to}/batch/labels/archive",
            post(associations::batch_labels_archive),
        )
}

fn property_routes() -> Router<Sim> {
    Router::new()
        .route("/{ty}", get(properties::list).post(properties::create))
        .route("/{ty}/batch/create", post(properties::batch_create))
        .route("/{ty}/batch/read", post(properties::batch_read))
        .route(
            "/{ty}/{name}",
            get(properties::read)
                .patch(properties::update)
                .delete(properties::archive),
        )
}

/// contract §0/§1.1: date-based `2026-09` (and `2026-03`) paths plus the legacy v3/v4 aliases,
/// all served by the same handlers.
pub fn router(sim: Sim) -> Router {
    let mut api = Router::new();
    for prefix in [
        "/crm/v3/objects",
        "/crm/v4/objects",
        "/crm/objects/2026-09",
        "/crm/objects/2026-03",
    ] {
        api = api.nest(prefix, object_routes());
    }
    for prefix in [
        "/crm/v4/associations",
        "/crm/associations/2026-09",
        "/crm/associations/2026-03",
    ] {
        api = api.nest(prefix, association_routes());
    }
    for prefix in [
        "/crm/v3/properties",
        "/crm/properties/2026-09",
        "/crm/properties/2026-03",
    ] {
        api = api.nest(prefix, property_routes());
    }
    let lc = "/payments-subscriptions/v1/subscriptions/crm/{id}";
    api = api
        .route(&format!("{lc}/cancel"), post(lifecycle::cancel))
        .route(&format!("{lc}/pause"), post(lifecycle::pause))
        .route(&format!("{lc}/unpause"), post(lifecycle::unpause));
    api.route_layer(middleware::from_fn_with_state(sim.clone(), api_layer))
        .nest("/_sim", admin::routes())
        .with_state(sim)
}

fn with_rate_headers(mut resp: Response, h: Option<&RateHeaders>) -> Response {
    if let Some(h) = h {
        for (name, value) in h.pairs() {
            if let Ok(v) = HeaderValue::try_from(value) {
                resp.headers_mut().insert(HeaderName::from_static(name), v);
            }
        }
    }
    resp
}

/// contract §6 / §4: `Authorization: Bearer <token>`; anything else is the 401 shape.
fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
}

async fn api_layer(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let token_ok = {
        let expected = lock(&sim).config.token.clone();
        req.headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t == expected)
    };
    let is_search = path.ends_with("/search");
    let (headers, latency, commit_fail, skip_assoc) = {
        let mut guard = lock(&sim);
        let st = &mut *guard;
        st.counters.total_requests += 1;
        *st.counters
            .requests_per_route
            .entry(format!("{method} {route}"))
            .or_default() += 1;
        if !token_ok {
            *st.counters.responses_by_status.entry(401).or_default() += 1;
            return unauthorized().into_response();
        }
        // Billing cycles due by now run before any request observes the state.
        billing::run_cycles(st);
        let now = st.now();
        let headers = match st.rate.admit(&st.config, &mut st.counters, now, is_search) {
            Ok(h) => h,
            Err((err, h)) => {
                *st.counters.responses_by_status.entry(429).or_default() += 1;
                return with_rate_headers(err.into_response(), Some(&h));
            }
        };
        let errors = st.faults.take(&mut st.rng, &method, &path, |k| {
            matches!(k, FaultKind::Error { .. })
        });
        if let Some(FaultKind::Error { status }) = errors.first() {
            *st.counters.responses_by_status.entry(*status).or_default() += 1;
            return with_rate_headers(injected_error(*status).into_response(), Some(&headers));
        }
        let latency: u64 = st
            .faults
            .take(&mut st.rng, &method, &path, |k| {
                matches!(k, FaultKind::Latency { .. })
            })
            .iter()
            .map(|k| match k {
                FaultKind::Latency { ms } => *ms,
                _ => 0,
            })
            .sum();
        let mut commit = st
            .faults
            .take(&mut st.rng, &method, &path, |k| {
                matches!(k, FaultKind::CommitThenFail { .. })
            })
            .into_iter()
            .next();
        if commit.is_none() && method == "POST" && path.contains("/batch/") {
            commit = st
                .faults
                .take(&mut st.rng, &method, &path, |k| {
                    matches!(k, FaultKind::PartialBatchCommit { .. })
                })
                .into_iter()
                .next();
        }
        let skip = if method == "POST" {
            st.faults
                .take(&mut st.rng, &method, &path, objects::is_skip_assoc)
                .into_iter()
                .next()
        } else {
            None
        };
        (headers, latency, commit, skip)
    };
    let mut req = req;
    if let Some(FaultKind::PartialBatchCommit { inputs, .. }) = commit_fail {
        req.extensions_mut().insert(PartialCommit(inputs));
    }
    if let Some(FaultKind::CreateWithoutAssociation { status }) = skip_assoc {
        req.extensions_mut()
            .insert(objects::SkipAssociations(status));
    }
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let mut resp = next.run(req).await;
    if let Some(
        FaultKind::CommitThenFail { status, delay_ms }
        | FaultKind::PartialBatchCommit {
            status, delay_ms, ..
        },
    ) = commit_fail
        && resp.status().is_success()
    {
        // contract §8.10: the write persisted; the client only sees the failure.
        if delay_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        }
        resp = injected_error(status).into_response();
    }
    *lock(&sim)
        .counters
        .responses_by_status
        .entry(resp.status().as_u16())
        .or_default() += 1;
    with_rate_headers(resp, Some(&headers))
}

/// Entry point for tests and the binary.
pub struct Simulator;

/// A simulator serving on loopback; shuts down when dropped or on [`RunningSimulator::shutdown`].
pub struct RunningSimulator {
    addr: SocketAddr,
    handle: SimHandle,
    shutdown_tx: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<Result<(), std::io::Error>>>,
    /// Saves the state file (when configured); makes its last save on shutdown.
    persister: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    pub async fn start(config: SimConfig) -> Result<RunningSimulator, SimError> {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(SimError::Serve)?;
        let state_file = config.state_file.clone();
        let save_every = std::time::Duration::from_millis(config.state_save_interval_ms.max(10));
        let state = match &state_file {
            Some(path) => persist::load(config, path)?,
            None => SimState::new(config),
        };
        let sim: Sim = Arc::new(Mutex::new(state));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        tokio::spawn(crate::delivery::run(sim.clone(), shutdown_rx.clone()));
        let persister = state_file.map(|path| {
            tokio::spawn(persist::run(
                sim.clone(),
                path,
                save_every,
                shutdown_rx.clone(),
            ))
        });
        let app = router(sim.clone());
        let mut rx = shutdown_rx;
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|v| *v).await;
                })
                .await
        });
        Ok(RunningSimulator {
            addr,
            handle: SimHandle::new(sim),
            shutdown_tx,
            server: Some(server),
            persister,
        })
    }
}

impl RunningSimulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// In-process admin handle (the same operations as the `/_sim` HTTP API).
    pub fn admin(&self) -> &SimHandle {
        &self.handle
    }

    /// Stops serving and, with a state file, returns once the last save is written.
    pub async fn shutdown(self) -> Result<(), SimError> {
        self.serve_until(std::future::ready(())).await
    }

    /// Serves until `stop` completes (binary use: a signal), then shuts down like
    /// [`RunningSimulator::shutdown`].
    pub async fn serve_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), SimError> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        let served = tokio::select! {
            served = &mut server => served,
            () = stop => {
                let _ = self.shutdown_tx.send(true);
                server.await
            }
        };
        // The server may also end on its own: the last save is made either way.
        let _ = self.shutdown_tx.send(true);
        if let Some(persister) = self.persister.take() {
            let _ = persister.await;
        }
        match served {
            Ok(r) => r.map_err(SimError::Serve),
            Err(e) => Err(SimError::Serve(std::io::Error::other(e))),
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}

//! The process's HTTP endpoint: bound before anything else starts (liveness answers at once),
//! plain HTTP or, with a certificate, HTTPS; served until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;

use super::Shutdown;
use crate::server::{serve, serve_tls, tls};

/// Where and how the endpoint listens.
#[derive(Clone, Debug)]
pub struct EndpointSettings {
    pub listen: SocketAddr,
    /// PEM certificate chain and key: serve HTTPS; without them, plain HTTP behind an ingress.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Binds `settings.listen` and serves `router` in a task until `shutdown`.
pub async fn start(
    settings: &EndpointSettings,
    router: Router,
    shutdown: &Shutdown,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", settings.listen))?;
    match &settings.tls {
        Some((cert, key)) => {
            let config = tls::server_config(cert, key).map_err(|e| e.to_string())?;
            tokio::spawn(serve_tls(listener, config, router, shutdown.requested()));
        }
        None => {
            tokio::spawn(serve(listener, router, shutdown.requested()));
        }
    }
    Ok(())
}

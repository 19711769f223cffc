//! The validating admission webhook for TenantSubscriptions: `kubectl apply` of a subscription
//! that can never be billed (a plan typo, an unpublished listing, a second live subscription,
//! an edit of a Rejected one...) is refused at once, with a message naming the object and the
//! field, instead of creating an object that goes straight to Rejected.
//!
//! - [`review`]: the decision, pure; it calls the reconciler's own
//!   [`validate_request`](crate::lifecycle::validate_request), so the two never disagree.
//!   Refusals that only *wait* in the reconciler are allowed with a warning.
//! - [`handler`]: the HTTP route; facts from the shared caches ([`Stores`]).
//! - [`certs`], [`rotator`]: the serving certificate, made and rotated by the operator (a CA and
//!   a leaf in a Secret, the CA published as the webhook's `caBundle`) or read from a Secret
//!   that cert-manager keeps.
//!
//! Every replica serves (the apiserver may call any), not only the leader: the webhook only
//! reads. The webhook is registered with `failurePolicy: Ignore` and a short timeout, so the
//! apiserver admits subscriptions when no replica answers; the reconciler still validates
//! every subscription and rejects what the webhook did not see.

pub mod certs;
pub mod flags;
pub mod handler;
pub mod review;
pub mod rotator;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::Client;

pub use flags::AdmissionArgs;
pub use handler::PATH;
pub use rotator::CertSource;

use crate::runtime::Stores;
use crate::server::Metrics;
use crate::server::tls::ReloadableCert;

/// Settings of the webhook server.
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    /// Address of the HTTPS listener.
    pub listen: SocketAddr,
    /// The operator's namespace, where the certificate Secret is.
    pub namespace: String,
    pub certificate: CertSource,
    /// The platform's version, checked against listings' platformVersion ranges.
    pub platform_version: Option<semver::Version>,
}

/// Why the webhook server stopped.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("admission webhook: cannot listen on {0}: {1}")]
    Listen(SocketAddr, #[source] std::io::Error),
    #[error("admission webhook: {0}")]
    Tls(#[from] crate::server::tls::TlsError),
}

/// Serves the webhook until `shutdown` completes (see [`serve`]); a failure to listen is logged,
/// and the operator runs on without the webhook (the reconciler still validates).
pub async fn run(
    client: Client,
    stores: Stores,
    config: AdmissionConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(error) = serve(client, stores, config, metrics, shutdown).await {
        tracing::error!(%error, "the admission webhook stopped");
    }
}

/// Serves the webhook until `shutdown` completes: waits for a serving certificate (retrying
/// while the Secret is missing or unusable) and for the caches, then listens on
/// `config.listen` and keeps the certificate current. Until then the port is closed, so the
/// apiserver fails fast and admits (`failurePolicy: Ignore`).
pub async fn serve(
    client: Client,
    stores: Stores,
    config: AdmissionConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AdmissionError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let wait_stop = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let serving = Arc::new(ReloadableCert::default());
    let resync = config.certificate.resync();
    let sync = || async {
        let result = rotator::sync_once(
            &client,
            &config.namespace,
            &config.certificate,
            &serving,
            Timestamp::now(),
        )
        .await;
        if let Err(error) = &result {
            tracing::warn!(%error, "admission webhook certificate not in order; retrying");
        }
        result.is_ok()
    };
    // First a certificate and warm caches: deciding from empty caches would refuse too much.
    let ready = async {
        while !sync().await {
            tokio::time::sleep(
                resync
                    .max(Duration::from_secs(1))
                    .min(Duration::from_secs(10)),
            )
            .await;
        }
        stores.wait_until_ready().await;
    };
    tokio::select! {
        _ = ready => {}
        _ = wait_stop() => return Ok(()),
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| AdmissionError::Listen(config.listen, e))?;
    tracing::info!(address = %config.listen, path = PATH, "admission webhook listening");
    let router = handler::routes(handler::Reviewer {
        client: client.clone(),
        stores,
        platform_version: config.platform_version.clone(),
        metrics,
    });
    let server = crate::server::serve_tls(listener, serving.server_config()?, router, wait_stop());
    let rotation = async {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(resync) => {}
                _ = wait_stop() => return,
            }
            sync().await;
        }
    };
    let (served, ()) = tokio::join!(server, rotation);
    served.map_err(|e| AdmissionError::Listen(config.listen, e))
}

//! `marketplace api`: the front door ([`crate::front_door`]). Stateless: every replica keeps its
//! own shared caches and answers from them; no leader election. `/healthz` answers at once,
//! `/readyz` once the caches are synced.

use std::sync::Arc;
use std::time::Duration;

use kube::{Client, Config};
use tracing::info;

use crate::connection::ProbePolicy;
use crate::front_door::api_keys::store::ApiKeyStore;
use crate::front_door::impersonation::Impersonator;
use crate::front_door::metering_routes::watch_usage_limits;
use crate::front_door::read_limits::ReadLimitSettings;
use crate::front_door::usage::{UsageLedger, run_flusher};
use crate::front_door::web::WebSettings;
use crate::front_door::{Authorizer, FrontDoor, ReviewCacheSettings, StreamSettings, router};
use crate::metering::meters::Meters;
use crate::metering::{AnyUsageStore, UsageStoreLocation};
use crate::runtime::endpoint::{self, EndpointSettings};
use crate::runtime::{Shutdown, Stores};
use crate::server::Readiness;

use super::ProcessError;

/// Everything the API process needs.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub endpoint: EndpointSettings,
    pub reviews: ReviewCacheSettings,
    /// Accept `X-API-Key` backend keys (watches the key Secrets; needs list/watch on Secrets).
    pub api_keys: bool,
    pub read_limits: ReadLimitSettings,
    pub streams: StreamSettings,
    pub shutdown_grace: Duration,
    /// The operator's namespace: SubscriptionActions and the drift report.
    pub operator_namespace: String,
    /// How often checks counted in memory are written to the Entitlements' status.usage.
    pub usage_flush: Duration,
    /// What wizard test connections may reach.
    pub probe: ProbePolicy,
    /// The web UI (theme).
    pub web: WebSettings,
    /// Where usage events are kept (`--usage-store`); `None`: usage metering is off.
    pub usage_store: Option<UsageStoreLocation>,
}

/// How long the totals a hard-limited check reads are reused (another replica's events count
/// after at most this long; this replica's at once).
const USAGE_TOTALS_TTL: Duration = Duration::from_secs(1);

/// A started API: its caches, and the usage flusher, which writes once more at shutdown.
pub struct StartedApi {
    pub stores: Stores,
    pub usage_flushed: tokio::task::JoinHandle<()>,
}

/// Starts the caches and serves the API on `settings.endpoint` until `shutdown`; returns once
/// listening (the caches keep filling: `/readyz` says when they are synced).
pub async fn start(
    config: Config,
    settings: &ApiSettings,
    shutdown: &Shutdown,
) -> Result<StartedApi, ProcessError> {
    let client = Client::try_from(config.clone()).map_err(ProcessError::Client)?;
    let stores = Stores::start(&client);
    let readiness = Readiness::new();
    let caches_gate = readiness.gate("caches synced");
    let mut auth =
        Authorizer::new(client.clone(), settings.reviews).with_read_limits(settings.read_limits);
    if settings.api_keys {
        let keys = ApiKeyStore::start(&client);
        let keys_gate = readiness.gate("api keys synced");
        let waiting = keys.clone();
        tokio::spawn(async move {
            waiting.wait_until_ready().await;
            keys_gate.set(true);
        });
        auth = auth.with_api_keys(keys);
    }
    let auth = Arc::new(auth);
    let usage = UsageLedger::default();
    let usage_flushed = tokio::spawn(run_flusher(
        client.clone(),
        stores.clone(),
        usage.clone(),
        settings.usage_flush,
        shutdown.requested(),
    ));
    let door = FrontDoor::new(
        stores.clone(),
        auth,
        client,
        Impersonator::new(config),
        settings.operator_namespace.clone(),
    )
    .with_stream_settings(settings.streams)
    .with_usage(usage)
    .with_probe_policy(settings.probe.clone())
    .with_web(settings.web.clone());
    let door = match &settings.usage_store {
        Some(location) => {
            let store = AnyUsageStore::open(location)
                .await
                .map_err(|e| ProcessError::Config(format!("--usage-store {location}: {e}")))?;
            tracing::info!(%location, "usage store open");
            door.with_meters(Meters::new(store, USAGE_TOTALS_TTL))
        }
        None => door,
    };
    let index = door.index().clone();
    tokio::spawn(watch_usage_limits(door.clone(), shutdown.requested()));
    endpoint::start(&settings.endpoint, router(door, readiness), shutdown)
        .await
        .map_err(ProcessError::Config)?;
    info!(address = %settings.endpoint.listen, "marketplace API listening; filling caches");
    let (caches, indexed) = (stores.clone(), index.clone());
    tokio::spawn(async move {
        caches.wait_until_ready().await;
        indexed.wait_until_ready().await;
        caches_gate.set(true);
        info!("caches synced and indexed");
    });
    // Open change streams never end by themselves; the server waits for them at shutdown.
    let stopping = shutdown.requested();
    tokio::spawn(async move {
        stopping.await;
        index.close_streams();
    });
    Ok(StartedApi {
        stores,
        usage_flushed,
    })
}

/// Runs the API until SIGTERM or Ctrl-C.
pub async fn run(settings: ApiSettings) -> Result<(), ProcessError> {
    let config = Config::infer()
        .await
        .map_err(|e| ProcessError::Config(format!("kubeconfig: {e}")))?;
    let shutdown = Shutdown::on_signals(settings.shutdown_grace).map_err(ProcessError::Signals)?;
    let started = start(config, &settings, &shutdown).await?;
    shutdown.requested().await;
    // The last checks counted are written before the process ends (within the grace).
    let _ = tokio::time::timeout(settings.shutdown_grace, started.usage_flushed).await;
    Ok(())
}

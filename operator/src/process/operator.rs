//! `marketplace operator`: the controller process. Every replica keeps the shared caches warm
//! and serves the endpoint (health, readiness, metrics, HubSpot webhooks); only the holder of
//! the leader Lease runs the controllers (the writers).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tracing::{info, warn};

use crate::audit_log::AuditLog;
use crate::billing::{
    ApiToken, BillingMode, HubSpotClient, HubSpotConfig, Tier, WebhookSecret, WebhookVerifier,
};
use crate::controllers::webhook_hints::RecheckMarks;
use crate::controllers::{self, Context, ControllerConfig, Enabled};
use crate::runtime::endpoint::{self, EndpointSettings};
use crate::runtime::leader::run_while_leader;
use crate::runtime::{LeaderOutcome, LeaseSettings, Shutdown, Stores};
use crate::server::{Readiness, ServerState, WebhookReceiver, router};

use super::ProcessError;

/// Everything the operator process needs, parsed and checked.
#[derive(Clone, Debug)]
pub struct OperatorSettings {
    pub controllers: ControllerConfig,
    /// This replica's name (Events).
    pub instance: Option<String>,
    /// `None`: run without HubSpot (subscriptions wait in Provisioning, saying so).
    pub hubspot: Option<HubSpotSettings>,
    pub endpoint: EndpointSettings,
    /// The public URL HubSpot calls for webhooks (v3 signs it).
    pub webhook_url: Option<String>,
    /// `None`: this replica always writes (one replica only).
    pub lease: Option<LeaseSettings>,
    pub audit_log: Option<PathBuf>,
    /// PEM of extra CAs trusted by integration test connections.
    pub probe_ca_file: Option<PathBuf>,
    pub shutdown_grace: Duration,
    /// The validating admission webhook for TenantSubscriptions; `None`: off.
    pub admission: Option<crate::admission::AdmissionConfig>,
    /// Notifications; `None`: off.
    pub notifications: Option<crate::notify::NotifyConfig>,
    /// The API's usage store, to bill closed usage periods; `None`: usage is not reported.
    pub usage_store: Option<crate::metering::UsageStoreLocation>,
}

/// How to reach HubSpot.
#[derive(Clone, Debug)]
pub struct HubSpotSettings {
    pub base_url: String,
    pub token: TokenSource,
    pub tier: Tier,
    pub mode: BillingMode,
    /// How long the client gathers work into one batch call.
    pub batch_linger: std::time::Duration,
    /// The app's client secret, to verify webhooks (else read from the token Secret).
    pub client_secret: Option<String>,
}

/// Where the HubSpot token comes from.
#[derive(Clone)]
pub enum TokenSource {
    Value(String),
    /// A Secret in the operator's namespace, key `token` (and `clientSecret`).
    Secret(String),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Value(_) => f.write_str("Value(<redacted>)"),
            TokenSource::Secret(name) => write!(f, "Secret({name:?})"),
        }
    }
}

/// Errors that stop the controller process.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("HubSpot configuration: {0}")]
    HubSpotConfig(String),
    #[error("HubSpot start-up checks failed: {0}")]
    HubSpotBootstrap(#[source] crate::billing::HubSpotError),
    #[error("leader election: {0}")]
    LeaderElection(String),
    #[error("lost the leader Lease; exiting so a fresh process can compete for it")]
    LostLeadership,
}

/// The HubSpot client, bootstrapped (portal checks) before any reconcile, and the webhook
/// client secret.
async fn hubspot(
    settings: &HubSpotSettings,
    client: &Client,
    namespace: &str,
) -> Result<(HubSpotClient, Option<String>), OperatorError> {
    let bad = OperatorError::HubSpotConfig;
    let mut client_secret = settings.client_secret.clone();
    let token = match &settings.token {
        TokenSource::Value(token) => {
            ApiToken::new(token.clone()).map_err(|e| bad(format!("HUBSPOT_TOKEN: {e}")))?
        }
        TokenSource::Secret(name) => {
            let secret = Api::<Secret>::namespaced(client.clone(), namespace)
                .get(name)
                .await
                .map_err(|e| bad(format!("Secret {namespace}/{name}: {e}")))?;
            if client_secret.is_none() {
                client_secret = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get("clientSecret"))
                    .and_then(|v| String::from_utf8(v.0.clone()).ok());
            }
            ApiToken::from_secret(&secret, "token")
                .map_err(|e| bad(format!("Secret {namespace}/{name}: {e}")))?
        }
    };
    let mut config = HubSpotConfig::new(settings.base_url.clone(), token, settings.tier);
    config.mode = settings.mode;
    config.batch_linger = settings.batch_linger;
    let hubspot = HubSpotClient::new(config).map_err(|e| bad(e.to_string()))?;
    let report = hubspot
        .bootstrap()
        .await
        .map_err(OperatorError::HubSpotBootstrap)?;
    info!(?report, "HubSpot bootstrap done");
    Ok((hubspot, client_secret))
}

/// Runs the operator until SIGTERM or Ctrl-C (or until this replica loses the Lease).
pub async fn run(settings: OperatorSettings) -> Result<(), OperatorError> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| ProcessError::Config(format!("kubeconfig: {e}")))?;
    let shutdown = Shutdown::on_signals(settings.shutdown_grace).map_err(ProcessError::Signals)?;
    run_with(config, settings, shutdown).await
}

/// [`run`] with the client configuration and the shutdown given (tests run the whole process
/// in-process, as a service account).
pub async fn run_with(
    config: kube::Config,
    settings: OperatorSettings,
    shutdown: Shutdown,
) -> Result<(), OperatorError> {
    let client = Client::try_from(config).map_err(ProcessError::Client)?;
    // The caches start filling at once, on every replica.
    let stores = Stores::start(&client);
    let mut config = settings.controllers.clone();
    if let Some(path) = &settings.probe_ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            ProcessError::Config(format!("--probe-ca-file {}: {e}", path.display()))
        })?;
        config.probe.extra_root_certificates_pem.push(pem);
    }
    let namespace = config.namespace.clone();
    let mut context = Context::new(client.clone(), stores, config, settings.instance.clone());
    let mut client_secret = None;
    match &settings.hubspot {
        Some(hubspot_settings) => {
            let (billing, secret) = hubspot(hubspot_settings, &client, &namespace).await?;
            context = context.with_billing(billing);
            client_secret = secret;
        }
        None => warn!("billing disabled (--no-billing): subscriptions will wait in Provisioning"),
    }
    if let Some(path) = &settings.audit_log {
        let log = AuditLog::open(path)
            .map_err(|e| ProcessError::Config(format!("--audit-log {}: {e}", path.display())))?;
        context = context.with_audit_log(log);
    }
    if let Some(config) = settings.notifications.clone() {
        context = context.with_notifications(config);
    }
    if let Some(location) = &settings.usage_store {
        let store = crate::metering::AnyUsageStore::open(location)
            .await
            .map_err(|e| ProcessError::Config(format!("--usage-store {location}: {e}")))?;
        info!(%location, "usage store open: closed usage periods are reported");
        context = context.with_usage_store(Arc::new(store));
    }
    let ctx = Arc::new(context);

    // The endpoint serves from the start: liveness at once, readiness once caches sync.
    let readiness = Readiness::new();
    let caches_gate = readiness.gate("caches synced");
    let webhooks = match (&client_secret, &settings.webhook_url) {
        (Some(secret), Some(url)) => {
            let verifier = Arc::new(WebhookVerifier::new(WebhookSecret::new(secret.clone())));
            // Every replica marks what a webhook names; the leader re-reads it.
            let marks = RecheckMarks::new(client.clone(), ctx.stores.subscriptions.clone());
            Some(WebhookReceiver::new(verifier, url.clone(), Arc::new(marks)))
        }
        (Some(_), None) => {
            warn!("HUBSPOT_CLIENT_SECRET is set but HUBSPOT_WEBHOOK_URL is not: webhooks are off");
            None
        }
        _ => None,
    };
    let has_webhooks = webhooks.is_some();
    let state = ServerState::new(readiness, ctx.metrics.clone(), webhooks);
    endpoint::start(&settings.endpoint, router(state), &shutdown)
        .await
        .map_err(ProcessError::Config)?;
    info!(
        address = %settings.endpoint.listen,
        https = settings.endpoint.tls.is_some(),
        webhooks = has_webhooks,
        "HTTP endpoint listening"
    );

    // The admission webhook: every replica serves it, leader or not.
    if let Some(config) = settings.admission.clone() {
        tokio::spawn(crate::admission::run(
            ctx.client.clone(),
            ctx.stores.clone(),
            config,
            ctx.metrics.clone(),
            shutdown.requested(),
        ));
    }

    info!(%namespace, "marketplace operator starting; filling caches");
    tokio::join!(
        ctx.stores.wait_until_ready(),
        ctx.operator_stores.wait_until_ready()
    );
    caches_gate.set(true);
    info!("caches synced");

    let Some(lease) = &settings.lease else {
        ctx.metrics.set_leader(true);
        controllers::run(ctx, Enabled::ALL, shutdown).await;
        return Ok(());
    };
    let leading = ctx.clone();
    let outcome = run_while_leader(client, lease, &shutdown, |stop| async move {
        info!("starting controllers");
        leading.metrics.set_leader(true);
        controllers::run(leading.clone(), Enabled::ALL, stop).await;
        leading.metrics.set_leader(false);
    })
    .await
    .map_err(OperatorError::LeaderElection)?;
    match outcome {
        LeaderOutcome::Stopped => Ok(()),
        LeaderOutcome::LostLeadership => Err(OperatorError::LostLeadership),
    }
}

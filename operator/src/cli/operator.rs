//! `marketplace operator`: the controller process. Every replica keeps its caches warm; only
//! the holder of the leader Lease runs the controllers (the writers).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tracing::{info, warn};

use crate::audit_log::AuditLog;
use crate::billing::{
    ApiToken, BillingMode, HubSpotClient, HubSpotConfig, Tier, WebhookSecret, WebhookVerifier,
};
use crate::controllers::{
    Context, ControllerConfig, catalog_source, drift, subscription_action, tenant,
    tenant_subscription, webhook_hints,
};
use crate::server::{
    Readiness, ServerState, WebhookHint, WebhookReceiver, router, serve, serve_tls, tls,
};

/// Settings of the controller process; every flag also reads an environment variable.
#[derive(Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Namespace the operator runs in.
    #[arg(
        long,
        env = "MARKETPLACE_NAMESPACE",
        default_value = "marketplace-system"
    )]
    pub namespace: String,
    /// Name of this replica (Events and leader election); the pod name in a cluster.
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// Folder for cached git repositories of CatalogSources.
    #[arg(
        long,
        env = "MARKETPLACE_GIT_CACHE",
        default_value = "/tmp/marketplace-git-cache"
    )]
    pub git_cache_dir: PathBuf,
    /// Time limit of one git fetch, in seconds.
    #[arg(long, env = "MARKETPLACE_GIT_TIMEOUT_SECONDS", default_value_t = 60)]
    pub git_timeout_seconds: u64,
    /// CatalogSources reconciled at once.
    #[arg(long, env = "MARKETPLACE_CATALOG_CONCURRENCY", default_value_t = 2)]
    pub catalog_concurrency: u16,
    /// Tenants reconciled at once.
    #[arg(long, env = "MARKETPLACE_TENANT_CONCURRENCY", default_value_t = 4)]
    pub tenant_concurrency: u16,
    /// TenantSubscriptions reconciled at once.
    #[arg(
        long,
        env = "MARKETPLACE_SUBSCRIPTION_CONCURRENCY",
        default_value_t = 16
    )]
    pub subscription_concurrency: u16,
    /// The platform's version, checked against listings' platformVersion ranges.
    #[arg(long, env = "MARKETPLACE_PLATFORM_VERSION")]
    pub platform_version: Option<semver::Version>,
    /// Cancel HubSpot billing records tagged with our uid that no TenantSubscription owns
    /// (found by the drift audit); without it they are only reported.
    #[arg(long, env = "MARKETPLACE_CANCEL_ORPHANS")]
    pub cancel_orphans: bool,
    /// Seconds between HubSpot drift audits.
    #[arg(
        long,
        env = "MARKETPLACE_AUDIT_INTERVAL_SECONDS",
        default_value_t = 600
    )]
    pub audit_interval_seconds: u64,
    /// Let integration test connections reach loopback, private and link-local addresses
    /// (off: a tenant's connection settings must not make the operator probe its own network).
    #[arg(long, env = "MARKETPLACE_PROBE_ALLOW_PRIVATE")]
    pub probe_allow_private_targets: bool,
    /// PEM file of extra CA certificates trusted by test connections (e.g. a corporate CA).
    #[arg(long, env = "MARKETPLACE_PROBE_CA_FILE")]
    pub probe_ca_file: Option<PathBuf>,
    /// HubSpot API base URL.
    #[arg(long, env = "HUBSPOT_BASE_URL", default_value = crate::billing::DEFAULT_BASE_URL)]
    pub hubspot_base_url: String,
    /// HubSpot private-app token. Prefer --hubspot-token-secret in a cluster.
    #[arg(long, env = "HUBSPOT_TOKEN", hide_env_values = true)]
    pub hubspot_token: Option<String>,
    /// Secret (in the operator's namespace) whose key `token` holds the HubSpot token.
    #[arg(long, env = "HUBSPOT_TOKEN_SECRET")]
    pub hubspot_token_secret: Option<String>,
    /// HubSpot account tier (free, starter, professional, enterprise, limit-increase): sets the
    /// shared rate budget.
    #[arg(long, env = "HUBSPOT_TIER", default_value = "professional")]
    pub hubspot_tier: String,
    /// `payments` (commerce subscriptions invoice tenants) or `crm-only` (deals only; never
    /// chosen silently).
    #[arg(long, env = "HUBSPOT_BILLING_MODE", default_value = "payments")]
    pub billing_mode: String,
    /// Run without HubSpot: subscriptions wait in Provisioning with a condition saying so.
    #[arg(long, env = "MARKETPLACE_NO_BILLING")]
    pub no_billing: bool,
    /// Elect a leader with a Lease; without it this replica always writes (one replica only).
    #[arg(long, env = "MARKETPLACE_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader Lease in the operator's namespace.
    #[arg(
        long,
        env = "MARKETPLACE_LEASE_NAME",
        default_value = "marketplace-operator"
    )]
    pub lease_name: String,
    /// Address of the HTTP endpoint: /healthz, /readyz, /metrics and /webhooks/hubspot.
    #[arg(long, env = "MARKETPLACE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// The HubSpot app's client secret, to verify webhook signatures; without it the webhook
    /// route is off (the periodic audit still heals). Prefer the Secret's `clientSecret` key.
    #[arg(long, env = "HUBSPOT_CLIENT_SECRET", hide_env_values = true)]
    pub hubspot_client_secret: Option<String>,
    /// The public URL HubSpot calls for webhooks (v3 signs the full URL, which behind an
    /// ingress is not the one this process sees), e.g. https://ops.example.com/webhooks/hubspot.
    #[arg(long, env = "HUBSPOT_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Append-only, hash-chained audit log of transitions and billing calls (JSON Lines).
    #[arg(long, env = "MARKETPLACE_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// PEM certificate chain: serve the endpoint over HTTPS (HubSpot calls HTTPS URLs only);
    /// without it, terminate TLS at an ingress.
    #[arg(long, env = "MARKETPLACE_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "MARKETPLACE_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Seconds a shutdown may take before the process exits anyway.
    #[arg(long, env = "MARKETPLACE_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
    // ---- Admission webhook (flags in crate::admission::flags) ----
    #[command(flatten)]
    pub admission: crate::admission::AdmissionArgs,
}

impl OperatorArgs {
    pub fn controller_config(&self) -> ControllerConfig {
        ControllerConfig {
            namespace: self.namespace.clone(),
            git_timeout: Duration::from_secs(self.git_timeout_seconds),
            git_cache_dir: self.git_cache_dir.clone(),
            catalog_concurrency: self.catalog_concurrency,
            tenant_concurrency: self.tenant_concurrency,
            subscription_concurrency: self.subscription_concurrency,
            platform_version: self.platform_version.clone(),
            audit_interval: Duration::from_secs(self.audit_interval_seconds.max(1)),
            cancel_orphans: self.cancel_orphans,
            orphan_grace: ControllerConfig::default().orphan_grace,
            probe: crate::connection::ProbePolicy {
                allow_private_targets: self.probe_allow_private_targets,
                ..crate::connection::ProbePolicy::default()
            },
        }
    }

    fn identity(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// Errors that stop the controller process.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(
        "cannot reach the Kubernetes API (is KUBECONFIG set, or is this running in a cluster?): {0}"
    )]
    Client(#[source] kube::Error),
    #[error("cannot listen for shutdown signals: {0}")]
    Signals(#[source] std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("HubSpot configuration: {0}")]
    HubSpotConfig(String),
    #[error("HubSpot start-up checks failed: {0}")]
    HubSpotBootstrap(#[source] crate::billing::HubSpotError),
    #[error("leader election: {0}")]
    LeaderElection(String),
    #[error("lost the leader Lease; exiting so a fresh process can compete for it")]
    LostLeadership,
}

/// Sets up logging (`RUST_LOG`, default `info`) and runs the operator on a multi-threaded runtime.
pub fn start(args: OperatorArgs) -> Result<(), OperatorError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(OperatorError::Runtime)?
        .block_on(run(args))
}

/// The HubSpot client from flags, bootstrapped (portal checks) before any reconcile.
async fn hubspot(
    args: &OperatorArgs,
    client: &Client,
) -> Result<(Option<HubSpotClient>, Option<String>), OperatorError> {
    if args.no_billing {
        warn!("billing disabled (--no-billing): subscriptions will wait in Provisioning");
        return Ok((None, None));
    }
    let bad = |m: String| OperatorError::HubSpotConfig(m);
    let mut client_secret = args.hubspot_client_secret.clone();
    let token = match (&args.hubspot_token, &args.hubspot_token_secret) {
        (Some(token), _) => {
            ApiToken::new(token.clone()).map_err(|e| bad(format!("HUBSPOT_TOKEN: {e}")))?
        }
        (None, Some(name)) => {
            let secret = Api::<Secret>::namespaced(client.clone(), &args.namespace)
                .get(name)
                .await
                .map_err(|e| bad(format!("Secret {}/{name}: {e}", args.namespace)))?;
            if client_secret.is_none() {
                client_secret = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get("clientSecret"))
                    .and_then(|v| String::from_utf8(v.0.clone()).ok());
            }
            ApiToken::from_secret(&secret, "token")
                .map_err(|e| bad(format!("Secret {}/{name}: {e}", args.namespace)))?
        }
        (None, None) => {
            return Err(bad(
                "set --hubspot-token-secret (or HUBSPOT_TOKEN), or run with --no-billing".into(),
            ));
        }
    };
    let tier = Tier::parse(&args.hubspot_tier).ok_or_else(|| {
        bad(format!(
            "--hubspot-tier {:?} is not a HubSpot tier",
            args.hubspot_tier
        ))
    })?;
    let mut config = HubSpotConfig::new(args.hubspot_base_url.clone(), token, tier);
    config.mode = match args.billing_mode.as_str() {
        "payments" => BillingMode::Payments,
        "crm-only" => BillingMode::CrmOnly,
        other => {
            return Err(bad(format!(
                "--billing-mode {other:?}: use payments or crm-only"
            )));
        }
    };
    let hubspot = HubSpotClient::new(config).map_err(|e| bad(e.to_string()))?;
    let report = hubspot
        .bootstrap()
        .await
        .map_err(OperatorError::HubSpotBootstrap)?;
    info!(?report, "HubSpot bootstrap done");
    Ok((Some(hubspot), client_secret))
}

pub async fn run(args: OperatorArgs) -> Result<(), OperatorError> {
    let client = Client::try_default().await.map_err(OperatorError::Client)?;
    let (billing, client_secret) = hubspot(&args, &client).await?;
    let mut config = args.controller_config();
    if let Some(path) = &args.probe_ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            OperatorError::Config(format!("--probe-ca-file {}: {e}", path.display()))
        })?;
        config.probe.extra_root_certificates_pem.push(pem);
    }
    let mut context = Context::new(client.clone(), config, args.instance.clone());
    if let Some(billing) = billing {
        context = context.with_billing(billing);
    }
    if let Some(path) = &args.audit_log {
        let log = AuditLog::open(path)
            .map_err(|e| OperatorError::Config(format!("--audit-log {}: {e}", path.display())))?;
        context = context.with_audit_log(log);
    }
    let ctx = Arc::new(context);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(OperatorError::Signals)?;
    // One signal stops every controller; if stopping takes longer than the grace, exit anyway.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        info!("shutting down");
        let _ = stop.send(true);
        tokio::time::sleep(grace).await;
        warn!(
            ?grace,
            "shutdown took longer than the grace period; exiting now"
        );
        std::process::exit(0);
    });
    let shutdown_requested = {
        let stopped = stopped.clone();
        move || *stopped.borrow()
    };

    // The HTTP endpoint serves from the start: liveness at once, readiness once caches sync.
    let readiness = Readiness::new();
    let caches_gate = readiness.gate("caches synced");
    let (hints_tx, hints) = tokio::sync::mpsc::channel(1024);
    let webhooks = match (&client_secret, &args.webhook_url) {
        (Some(secret), Some(url)) => {
            let verifier = Arc::new(WebhookVerifier::new(WebhookSecret::new(secret.clone())));
            Some(WebhookReceiver::new(verifier, url.clone(), hints_tx))
        }
        (Some(_), None) => {
            warn!("HUBSPOT_CLIENT_SECRET is set but HUBSPOT_WEBHOOK_URL is not: webhooks are off");
            None
        }
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| OperatorError::Config(format!("--listen {}: {e}", args.listen)))?;
    info!(
        address = %args.listen,
        https = args.tls_cert_file.is_some(),
        webhooks = webhooks.is_some(),
        "HTTP endpoint listening"
    );
    let state = ServerState::new(readiness, ctx.metrics.clone(), webhooks);
    match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => {
            let tls =
                tls::server_config(cert, key).map_err(|e| OperatorError::Config(e.to_string()))?;
            tokio::spawn(serve_tls(
                listener,
                tls,
                router(state),
                wait_for(stopped.clone()),
            ));
        }
        _ => {
            tokio::spawn(serve(listener, router(state), wait_for(stopped.clone())));
        }
    }

    // The admission webhook: every replica serves it, leader or not.
    if let Some(config) = args
        .admission
        .config(&args.namespace, args.platform_version.clone())
    {
        tokio::spawn(crate::admission::run(
            client.clone(),
            ctx.stores.clone(),
            config,
            ctx.metrics.clone(),
            wait_for(stopped.clone()),
        ));
    }

    info!(namespace = %args.namespace, "marketplace operator starting; filling caches");
    ctx.stores.wait_until_ready().await;
    caches_gate.set(true);
    info!("caches synced");

    if !args.leader_election {
        ctx.metrics.set_leader(true);
        run_controllers(ctx, hints, stopped.clone()).await;
        return Ok(());
    }
    let leases = kube_lease_manager::LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&args.namespace)
        .with_identity(args.identity())
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .map_err(|e| OperatorError::LeaderElection(e.to_string()))?;
    let (mut leader, lease_task) = leases.watch().await;
    info!(identity = %args.identity(), lease = %args.lease_name, "waiting for leadership");
    loop {
        if *leader.borrow_and_update() {
            break;
        }
        let mut stop_wait = stopped.clone();
        tokio::select! {
            changed = leader.changed() => {
                if changed.is_err() {
                    return Err(OperatorError::LeaderElection("the lease task ended".into()));
                }
            }
            _ = stop_wait.wait_for(|s| *s) => {
                drop(leader);
                let _ = lease_task.await;
                return Ok(());
            }
        }
    }
    info!("became leader; starting controllers");
    ctx.metrics.set_leader(true);
    let lost = {
        let mut leader = leader.clone();
        async move {
            let _ = leader.wait_for(|is_leader| !*is_leader).await;
        }
    };
    let (lost_tx, mut lost_rx) = tokio::sync::watch::channel(false);
    let stop_all = {
        let stopped = stopped.clone();
        async move {
            tokio::select! {
                _ = wait_for(stopped) => {}
                _ = lost => { let _ = lost_tx.send(true); }
            }
        }
    };
    let (to_controllers, controllers_stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_all.await;
        let _ = to_controllers.send(true);
    });
    run_controllers(ctx.clone(), hints, controllers_stop).await;
    ctx.metrics.set_leader(false);
    let lost_leadership = *lost_rx.borrow_and_update() && !shutdown_requested();
    // Dropping the receiver releases the Lease, so a standby takes over at once.
    drop(leader);
    let _ = lease_task.await;
    if lost_leadership {
        return Err(OperatorError::LostLeadership);
    }
    Ok(())
}

/// Resolves when the flag turns true.
fn wait_for(
    flag: tokio::sync::watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    let mut flag = flag;
    async move {
        let _ = flag.wait_for(|s| *s).await;
    }
}

/// Runs every controller, the drift audit and the webhook-hint consumer until `stop` turns true.
async fn run_controllers(
    ctx: Arc<Context>,
    hints: tokio::sync::mpsc::Receiver<WebhookHint>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    tokio::join!(
        catalog_source::run(ctx.clone(), wait_for(stop.clone())),
        tenant::run(ctx.clone(), wait_for(stop.clone())),
        tenant_subscription::run(ctx.clone(), wait_for(stop.clone())),
        subscription_action::run(ctx.clone(), wait_for(stop.clone())),
        drift::run(ctx.clone(), wait_for(stop.clone())),
        webhook_hints::run(ctx, hints, wait_for(stop)),
    );
}

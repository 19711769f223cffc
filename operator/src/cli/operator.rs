//! `marketplace operator`: the controller process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use kube::Client;
use tracing::info;

use crate::controllers::{Context, ControllerConfig, catalog_source, tenant};

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
}

impl OperatorArgs {
    pub fn controller_config(&self) -> ControllerConfig {
        ControllerConfig {
            namespace: self.namespace.clone(),
            git_timeout: Duration::from_secs(self.git_timeout_seconds),
            git_cache_dir: self.git_cache_dir.clone(),
            catalog_concurrency: self.catalog_concurrency,
            tenant_concurrency: self.tenant_concurrency,
        }
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

pub async fn run(args: OperatorArgs) -> Result<(), OperatorError> {
    let client = Client::try_default().await.map_err(OperatorError::Client)?;
    let ctx = Arc::new(Context::new(
        client,
        args.controller_config(),
        args.instance.clone(),
    ));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(OperatorError::Signals)?;
    // One signal stops every controller.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        info!("shutting down");
        let _ = stop.send(true);
    });
    let shutdown = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    info!(namespace = %args.namespace, "marketplace operator starting");
    tokio::join!(
        catalog_source::run(ctx.clone(), shutdown()),
        tenant::run(ctx, shutdown())
    );
    Ok(())
}

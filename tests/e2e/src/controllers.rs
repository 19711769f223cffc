//! Running the operator's controllers inside a test or benchmark, exactly as
//! `marketplace operator` runs them (`controllers::run`), with a stop handle.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use marketplace_harness::ControlPlane;
use marketplace_operator::controllers::{self, Context, ControllerConfig, Enabled};
use marketplace_operator::runtime::shutdown::ShutdownTrigger;
use marketplace_operator::runtime::{Shutdown, Stores};
use marketplace_operator::server::WebhookHint;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A context with its own shared caches, as a process has.
pub fn context(client: &Client, config: ControllerConfig, instance: &str) -> Context {
    Context::new(
        client.clone(),
        Stores::start(client),
        config,
        Some(instance.to_string()),
    )
}

/// Controllers running in the background.
pub struct RunningControllers {
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

/// Starts the `enabled` controllers (and the webhook-hint consumer, given `hints`).
pub fn start(
    ctx: Arc<Context>,
    enabled: Enabled,
    hints: Option<mpsc::Receiver<WebhookHint>>,
) -> RunningControllers {
    let (trigger, shutdown) = Shutdown::manual();
    let task = tokio::spawn(controllers::run(ctx, enabled, hints, shutdown));
    RunningControllers { trigger, task }
}

/// Only the Tenant controller (tenant namespaces and their RBAC), with a fresh operator
/// namespace: what suites about tenants' people need.
pub async fn start_tenant_controller(
    control_plane: &ControlPlane,
    client: &Client,
    instance: &str,
) -> RunningControllers {
    let namespace = control_plane
        .create_namespace("marketplace")
        .await
        .expect("operator namespace");
    let ctx = Arc::new(context(
        client,
        ControllerConfig {
            namespace,
            ..ControllerConfig::default()
        },
        instance,
    ));
    let enabled = Enabled {
        tenants: true,
        ..Enabled::NONE
    };
    start(ctx, enabled, None)
}

impl RunningControllers {
    /// Stops them and waits (at most 30 s) until they have.
    pub async fn stop(self) {
        self.trigger.stop();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("controllers stop within 30 s")
            .expect("controllers task");
    }
}

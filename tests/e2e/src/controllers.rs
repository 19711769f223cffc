//! Running the operator's controllers inside a test or benchmark, exactly as
//! `marketplace operator` runs them (`controllers::run`), with a stop handle; and its HubSpot
//! webhook endpoint, wired to them as the process wires it. [`OperatorWorld`] is what the
//! billing suites set up before that: an operator namespace, the simulator and a HubSpot client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hubspot_sim::RunningSimulator;
use kube::Client;
use marketplace_harness::ControlPlane;
use marketplace_operator::billing::{HubSpotClient, WebhookSecret, WebhookVerifier};
use marketplace_operator::controllers::webhook_hints::RecheckMarks;
use marketplace_operator::controllers::{self, Context, ControllerConfig, Enabled};
use marketplace_operator::runtime::shutdown::ShutdownTrigger;
use marketplace_operator::runtime::{Shutdown, Stores};
use marketplace_operator::server::{Readiness, ServerState, WebhookReceiver, router, serve};
use tokio::task::JoinHandle;

use crate::control_plane;
use crate::subscriptions::{hubspot_client, webhook_simulator};

/// A context with its own shared caches, as a process has.
pub fn context(client: &Client, config: ControllerConfig, instance: &str) -> Context {
    Context::new(
        client.clone(),
        Stores::start(client),
        config,
        Some(instance.to_string()),
    )
}

/// A context (as replica `instance`, operator namespace `namespace`) billing through
/// `hubspot` whose drift audit does not run within a test, so that webhooks alone bring
/// HubSpot's news.
pub fn webhooks_only(
    client: &Client,
    namespace: &str,
    instance: &str,
    hubspot: HubSpotClient,
) -> Arc<Context> {
    let config = ControllerConfig {
        namespace: namespace.to_string(),
        audit_interval: Duration::from_secs(3600),
        ..ControllerConfig::default()
    };
    Arc::new(context(client, config, instance).with_billing(hubspot))
}

/// Reconciles of `kind` the controllers of `ctx` have finished, whatever their result (from
/// their metrics).
pub fn reconciled(ctx: &Context, kind: &str) -> u64 {
    let label = format!("kind=\"{kind}\"");
    let metrics = ctx.metrics.encode().unwrap_or_default();
    metrics
        .lines()
        .filter(|l| l.starts_with("marketplace_reconciles_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// What a suite billing through HubSpot sets up before it starts controllers: the test binary's
/// control plane, a fresh operator namespace, the simulator (searches answer at once; a webhook
/// endpoint, if the suite starts one, hears refused deliveries again quickly) and a HubSpot
/// client bootstrapped against it.
pub struct OperatorWorld {
    pub control_plane: &'static ControlPlane,
    pub client: Client,
    pub operator_namespace: String,
    pub sim: RunningSimulator,
    /// The app secret the simulator signs webhook deliveries with.
    pub client_secret: String,
    pub hubspot: HubSpotClient,
}

impl OperatorWorld {
    pub async fn start() -> OperatorWorld {
        let control_plane = control_plane().await;
        let client = control_plane.client().await.expect("client");
        let operator_namespace = operator_namespace(control_plane).await;
        let (sim, client_secret) = webhook_simulator().await;
        let hubspot = hubspot_client(&sim).await;
        OperatorWorld {
            control_plane,
            client,
            operator_namespace,
            sim,
            client_secret,
            hubspot,
        }
    }

    /// A context (as replica `instance`) with `config` in the world's operator namespace,
    /// billing through the world's HubSpot client.
    pub fn context(&self, instance: &str, config: ControllerConfig) -> Context {
        let config = ControllerConfig {
            namespace: self.operator_namespace.clone(),
            ..config
        };
        context(&self.client, config, instance).with_billing(self.hubspot.clone())
    }

    /// [`Self::context`] with a HubSpot client of its own, bootstrapped afresh: what a restarted
    /// operator process has.
    pub async fn restarted(&self, instance: &str, config: ControllerConfig) -> Context {
        let config = ControllerConfig {
            namespace: self.operator_namespace.clone(),
            ..config
        };
        context(&self.client, config, instance).with_billing(hubspot_client(&self.sim).await)
    }

    /// [`webhooks_only`] in this world.
    pub fn webhooks_only(&self, instance: &str) -> Arc<Context> {
        webhooks_only(
            &self.client,
            &self.operator_namespace,
            instance,
            self.hubspot.clone(),
        )
    }

    /// Starts the operator's webhook endpoint for `ctx` ([`webhook_endpoint`]) and points the
    /// simulator's deliveries at it.
    pub async fn webhook_endpoint(&self, ctx: &Context) -> WebhookEndpoint {
        webhook_endpoint(&self.sim, &self.client_secret, ctx).await
    }
}

/// A fresh operator namespace (`marketplace-…`) on `control_plane`.
pub async fn operator_namespace(control_plane: &ControlPlane) -> String {
    control_plane
        .create_namespace("marketplace")
        .await
        .expect("operator namespace")
}

/// Controllers running in the background.
pub struct RunningControllers {
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

/// Starts the `enabled` controllers.
pub fn start(ctx: Arc<Context>, enabled: Enabled) -> RunningControllers {
    let (trigger, shutdown) = Shutdown::manual();
    let task = tokio::spawn(controllers::run(ctx, enabled, shutdown));
    RunningControllers { trigger, task }
}

/// Only the Tenant controller (tenant namespaces and their RBAC), with a fresh operator
/// namespace: what suites about tenants' people need.
pub async fn start_tenant_controller(
    control_plane: &ControlPlane,
    client: &Client,
    instance: &str,
) -> RunningControllers {
    let namespace = operator_namespace(control_plane).await;
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
    start(ctx, enabled)
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

/// The operator's HubSpot webhook endpoint on a free loopback port, serving until stopped.
pub struct WebhookEndpoint {
    pub addr: SocketAddr,
    /// The URL HubSpot signs deliveries for.
    pub public_url: String,
    trigger: ShutdownTrigger,
    task: JoinHandle<std::io::Result<()>>,
}

/// Starts the endpoint as `marketplace operator` wires it (it marks the subscriptions a webhook
/// names; the subscription controllers re-read them), verifying with `client_secret`, counting
/// in `ctx`'s metrics, and points `sim`'s deliveries at it.
pub async fn webhook_endpoint(
    sim: &RunningSimulator,
    client_secret: &str,
    ctx: &Context,
) -> WebhookEndpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let addr = listener.local_addr().expect("address");
    let public_url = format!("http://{addr}/webhooks/hubspot");
    sim.admin().set_webhook_url(Some(public_url.clone()));
    let verifier = Arc::new(WebhookVerifier::new(WebhookSecret::new(
        client_secret.to_string(),
    )));
    let marks = RecheckMarks::new(ctx.client.clone(), ctx.stores.subscriptions.clone());
    let receiver = WebhookReceiver::new(verifier, public_url.clone(), Arc::new(marks));
    let state = ServerState::new(Readiness::new(), ctx.metrics.clone(), Some(receiver));
    let (trigger, shutdown) = Shutdown::manual();
    let task = tokio::spawn(serve(listener, router(state), shutdown.requested()));
    WebhookEndpoint {
        addr,
        public_url,
        trigger,
        task,
    }
}

impl WebhookEndpoint {
    /// Stops it and waits (at most 10 s) until it has.
    pub async fn stop(self) {
        self.trigger.stop();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the webhook endpoint stops")
            .expect("endpoint task")
            .expect("endpoint");
    }
}

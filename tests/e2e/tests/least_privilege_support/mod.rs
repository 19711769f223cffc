//! The least-privilege suite's world (a control plane with the chart's RBAC, the operator and
//! the API running as the chart's ServiceAccounts) and its scenario.

mod scenario;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hubspot_sim::RunningSimulator;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use kube::{Client, Config};
use marketplace_e2e::api_process::service_account_token;
use marketplace_e2e::audit::service_account_user;
use marketplace_e2e::eventually;
use marketplace_e2e::helm::{Helm, NAMESPACE, Rendering};
use marketplace_e2e::kubectl;
use marketplace_e2e::subscriptions::{CONVERGED, apply, webhook_simulator};
use marketplace_harness::{ControlPlane, ControlPlaneOptions, OIDC_PREFIX};
use marketplace_operator::admission::certs::CertLifetimes;
use marketplace_operator::admission::{CertSource, PATH};
use marketplace_operator::cli::Command;
use marketplace_operator::process::api::ApiSettings;
use marketplace_operator::process::operator::{OperatorError, OperatorSettings, TokenSource};
use marketplace_operator::runtime::Shutdown;
use marketplace_operator::runtime::shutdown::ShutdownTrigger;
use serde_json::json;
use tokio::task::JoinHandle;

pub use scenario::Scenario;

/// The OIDC user the chart makes a superadmin (`rbac.people.superadmins.users`).
pub const SUPERADMIN_SUBJECT: &str = "ops@example.com";

pub fn superadmin() -> String {
    format!("{OIDC_PREFIX}{SUPERADMIN_SUBJECT}")
}

/// The HubSpot simulator's token (it accepts any).
const HUBSPOT_TOKEN: &str = "pat-na1-simulator-token";

/// Short enough that the webhook's certificate renews during the scenario.
const LIFETIMES: CertLifetimes = CertLifetimes {
    ca: Duration::from_secs(12),
    leaf: Duration::from_secs(3),
};

pub struct World {
    pub control_plane: ControlPlane,
    pub admin: Client,
    pub namespace: String,
    pub operator_user: String,
    pub api_user: String,
    pub operator_settings: OperatorSettings,
    pub api_settings: ApiSettings,
    pub sim: RunningSimulator,
    pub api_base: String,
    /// The admission webhook's certificate Secret and configuration (managed by the operator).
    pub cert_secret: String,
    pub webhook_config: String,
    operator: Option<(ShutdownTrigger, JoinHandle<Result<(), OperatorError>>)>,
    api: Option<(ShutdownTrigger, JoinHandle<()>)>,
    _dir: tempfile::TempDir,
}

/// A free loopback address.
fn free_address() -> SocketAddr {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("free port")
        .local_addr()
        .expect("address")
}

/// The admin configuration with `token` as the only credential.
fn token_config(control_plane: &ControlPlane, token: &str) -> Config {
    let mut config = control_plane.config().clone();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.to_owned().into()),
        ..kube::config::AuthInfo::default()
    };
    config
}

/// Polls `GET {base}/readyz` until it answers 200.
async fn ready(base: &str, what: &str) {
    let http = reqwest::Client::new();
    eventually(&format!("{what} to be ready"), CONVERGED, || async {
        let response = http.get(format!("{base}/readyz")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

impl World {
    /// A control plane with an audit log and OwnerReferencesPermissionEnforcement; the chart's
    /// RBAC applied; the operator and the API started with the chart's flags (addresses and
    /// timings made local) as the chart's ServiceAccounts.
    pub async fn start(helm: &Helm) -> World {
        let control_plane = ControlPlane::start(ControlPlaneOptions {
            audit_log: true,
            admission_plugins: vec!["OwnerReferencesPermissionEnforcement".to_owned()],
            ..ControlPlaneOptions::default()
        })
        .await
        .expect("the control plane starts");
        control_plane
            .install_crds(&marketplace_operator::api::crds())
            .await
            .expect("CRDs");
        let admin = control_plane.client().await.expect("client");
        let superadmin = format!("rbac.people.superadmins.users[0]={}", superadmin());
        // Notifications on: their rights are granted only then, and must be enough and used.
        let rendering = helm.template_with(
            None,
            &["--set", &superadmin, "--set", "notifications.enabled=true"],
        );
        apply(
            &Api::<Namespace>::all(admin.clone()),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        )
        .await;
        let output = kubectl(
            &control_plane,
            &["apply", "-f", "-"],
            Some(&rendering.rbac_list().to_string()),
        );
        assert!(
            output.status.success(),
            "applying the chart's RBAC: {}",
            String::from_utf8_lossy(&output.stderr)
        );

        let (sim, client_secret) = webhook_simulator().await;
        let dir = tempfile::tempdir().expect("temp dir");

        // The operator, with the chart's flags.
        let deployment = rendering
            .deployment("operator")
            .expect("operator Deployment");
        let Command::Operator(args) = Rendering::command(deployment) else {
            panic!("the operator Deployment runs `marketplace operator`");
        };
        let mut settings = args.settings().expect("the chart's operator flags");
        let operator_account = Rendering::service_account(deployment).to_owned();
        let hubspot = settings
            .hubspot
            .as_mut()
            .expect("the chart turns billing on");
        hubspot.base_url = sim.base_url();
        let TokenSource::Secret(token_secret) = hubspot.token.clone() else {
            panic!("the chart reads the HubSpot token from a Secret");
        };
        apply(
            &Api::<Secret>::namespaced(admin.clone(), NAMESPACE),
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": token_secret, "namespace": NAMESPACE},
                "stringData": {"token": HUBSPOT_TOKEN, "clientSecret": client_secret}}),
        )
        .await;
        settings.instance = Some("marketplace-0".to_owned());
        if let Some(lease) = settings.lease.as_mut() {
            lease.identity = "marketplace-0".to_owned();
        }
        settings.endpoint.listen = free_address();
        let operator_base = format!("http://{}", settings.endpoint.listen);
        let webhook_url = format!("{operator_base}/webhooks/hubspot");
        settings.webhook_url = Some(webhook_url.clone());
        sim.admin().set_webhook_url(Some(webhook_url));
        settings.audit_log = Some(dir.path().join("audit.jsonl"));
        settings.controllers.audit_interval = Duration::from_secs(2);
        settings.controllers.orphan_grace = Duration::ZERO;
        settings.controllers.git_cache_dir = dir.path().join("git-cache");
        let admission = settings
            .admission
            .as_mut()
            .expect("the chart turns the admission webhook on");
        admission.listen = free_address();
        let CertSource::Managed {
            secret,
            names,
            lifetimes,
            webhook_config,
        } = &mut admission.certificate
        else {
            panic!("the chart's default lets the operator keep the webhook certificate");
        };
        names.ips.push(Ipv4Addr::LOCALHOST.into());
        *lifetimes = LIFETIMES;
        let cert_secret = secret.clone();
        let webhook_config = webhook_config.clone().expect("--admission-webhook-config");
        // The chart's configuration, calling this process instead of the Service.
        let mut config = rendering
            .find("ValidatingWebhookConfiguration", &webhook_config)
            .expect("the chart's webhook configuration")
            .clone();
        let url = format!("https://{}{PATH}", admission.listen);
        for webhook in config["webhooks"].as_array_mut().expect("webhooks") {
            webhook["clientConfig"] = json!({ "url": url });
        }
        apply(
            &Api::<ValidatingWebhookConfiguration>::all(admin.clone()),
            config,
        )
        .await;

        let token = service_account_token(&admin, NAMESPACE, &operator_account).await;
        let (stop, shutdown) = Shutdown::manual();
        let task = tokio::spawn(marketplace_operator::process::operator::run_with(
            token_config(&control_plane, &token),
            settings.clone(),
            shutdown,
        ));
        ready(&operator_base, "the operator").await;

        // The API, with the chart's flags.
        let deployment = rendering.deployment("api").expect("API Deployment");
        let Command::Api(args) = Rendering::command(deployment) else {
            panic!("the API Deployment runs `marketplace api`");
        };
        let mut api_settings = args.settings();
        let api_account = Rendering::service_account(deployment).to_owned();
        api_settings.endpoint.listen = free_address();
        api_settings.usage_flush = Duration::from_secs(1);
        api_settings.reviews.ttl = Duration::from_secs(1);
        let token = service_account_token(&admin, NAMESPACE, &api_account).await;
        let (api_stop, api_shutdown) = Shutdown::manual();
        let started = marketplace_operator::process::api::start(
            token_config(&control_plane, &token),
            &api_settings,
            &api_shutdown,
        )
        .await
        .expect("the API starts");
        let api_base = format!("http://{}", api_settings.endpoint.listen);
        ready(&api_base, "the API").await;

        World {
            control_plane,
            admin,
            namespace: NAMESPACE.to_owned(),
            operator_user: service_account_user(NAMESPACE, &operator_account),
            api_user: service_account_user(NAMESPACE, &api_account),
            operator_settings: settings,
            api_settings,
            sim,
            api_base,
            cert_secret,
            webhook_config,
            operator: Some((stop, task)),
            api: Some((api_stop, started.usage_flushed)),
            _dir: dir,
        }
    }

    /// Stops the API and the operator (each must stop cleanly); their settings.
    pub async fn stop(&mut self) -> (OperatorSettings, ApiSettings) {
        if let Some((stop, flushed)) = self.api.take() {
            stop.stop();
            tokio::time::timeout(Duration::from_secs(30), flushed)
                .await
                .expect("the API stops")
                .expect("usage flusher");
        }
        if let Some((stop, task)) = self.operator.take() {
            stop.stop();
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the operator stops")
                .expect("operator task")
                .expect("the operator ran without error");
        }
        (self.operator_settings.clone(), self.api_settings.clone())
    }

    /// The groups a token of the service account `user` carries.
    pub fn service_account_groups(&self) -> Vec<String> {
        vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{}", self.namespace),
            "system:authenticated".to_owned(),
        ]
    }
}

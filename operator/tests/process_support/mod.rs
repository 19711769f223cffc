//! Fixtures of the process-level tests: a private control plane (harness), the HubSpot simulator
//! in-process on 127.0.0.1, and the real `marketplace operator` binary as child processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use hubspot_sim::{FaultKind, FaultRule, ObjectType, RunningSimulator, SimConfig, Simulator};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use marketplace_harness::{ControlPlane, ControlPlaneOptions};
use marketplace_operator::api::entitlement::EntitlementState;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Entitlement, Listing, Tenant, TenantSubscription};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub const TOKEN: &str = "pat-na1-simulator-token";
pub const OPERATOR_NAMESPACE: &str = "marketplace-system";
pub const TENANT: &str = "acme";
pub const TENANT_NAMESPACE: &str = "tenant-acme";

/// Each test owns a control plane (operators serve the whole cluster, so tests sharing one
/// would reconcile each other's objects against the wrong simulator); they run one at a time so
/// that kill timings are not distorted by a neighbour's start-up on a small machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Env {
    pub _serial: tokio::sync::MutexGuard<'static, ()>,
    pub sim: RunningSimulator,
    pub client: Client,
    pub dir: tempfile::TempDir,
    pub control_plane: ControlPlane,
    pub test: String,
}

/// A running `marketplace operator`.
pub struct Operator {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

pub use marketplace_harness::eventually;

/// The most WATCHes open per marketplace resource over a few samples: a watch that is being
/// re-established (the server ends each one after a while) is briefly missing from one sample.
pub async fn steady_marketplace_watches(
    client: &Client,
) -> std::collections::BTreeMap<String, u64> {
    let mut most = std::collections::BTreeMap::new();
    for _ in 0..6 {
        for (kind, n) in marketplace_watches(client).await {
            let entry = most.entry(kind).or_insert(0);
            *entry = n.max(*entry);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    most
}

/// Open WATCH requests per marketplace resource, as the apiserver itself counts them
/// (`apiserver_longrunning_requests`): every client's, the controller-manager's included.
pub async fn marketplace_watches(client: &Client) -> std::collections::BTreeMap<String, u64> {
    let samples = marketplace_harness::apiserver_samples(client, "apiserver_longrunning_requests")
        .await
        .expect("apiserver /metrics");
    let mut counts = std::collections::BTreeMap::new();
    for s in samples {
        if s.label("group") == "marketplace.dev" && s.label("verb") == "WATCH" {
            *counts.entry(s.label("resource").to_string()).or_insert(0) += s.value as u64;
        }
    }
    counts
}

impl Env {
    /// Control plane + CRDs + operator namespace, simulator (no search lag), one tenant whose
    /// namespace the operator `first` creates.
    pub async fn start(test: &str) -> Env {
        Env::start_with(
            test,
            SimConfig {
                search_lag_ms: 0,
                ..SimConfig::default()
            },
        )
        .await
    }

    /// Like [`Env::start`], with the simulator configured by `sim_config`.
    pub async fn start_with(test: &str, sim_config: SimConfig) -> Env {
        let serial = SERIAL.lock().await;
        let dir = tempfile::Builder::new()
            .prefix(&format!("operator-process-{test}-"))
            .tempdir()
            .expect("temp dir");
        let control_plane = ControlPlane::start(ControlPlaneOptions::default())
            .await
            .expect("control plane starts");
        control_plane
            .install_crds(&marketplace_operator::api::crds())
            .await
            .expect("CRDs installed");
        let client = control_plane.client().await.expect("client");
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": OPERATOR_NAMESPACE}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("operator namespace");
        let sim = Simulator::start(sim_config)
            .await
            .expect("simulator starts");
        Env {
            _serial: serial,
            sim,
            client,
            dir,
            control_plane,
            test: test.to_string(),
        }
    }

    /// The holder of the leader Lease `lease`, if any.
    pub async fn lease_holder(&self, lease: &str) -> Option<String> {
        Api::<Lease>::namespaced(self.client.clone(), OPERATOR_NAMESPACE)
            .get_opt(lease)
            .await
            .ok()
            .flatten()?
            .spec?
            .holder_identity
    }

    /// The audit log of the replica `name`.
    pub fn audit_log(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("{name}-audit.jsonl"))
    }

    /// Spawns `marketplace operator` named `name`; `lease` turns leader election on.
    pub fn spawn_operator(&self, name: &str, lease: Option<&str>) -> Operator {
        self.spawn_operator_with(name, lease, &[])
    }

    /// Like [`Env::spawn_operator`], with `settings` (environment variables) overriding the
    /// defaults, e.g. a short `MARKETPLACE_AUDIT_INTERVAL_SECONDS`.
    pub fn spawn_operator_with(
        &self,
        name: &str,
        lease: Option<&str>,
        settings: &[(&str, &str)],
    ) -> Operator {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_marketplace"));
        command
            .arg("operator")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KUBECONFIG", self.control_plane.kubeconfig_path())
            .env("MARKETPLACE_NAMESPACE", OPERATOR_NAMESPACE)
            .env("HUBSPOT_BASE_URL", self.sim.base_url())
            .env("HUBSPOT_TOKEN", TOKEN)
            .env("HUBSPOT_TIER", "professional")
            .env("MARKETPLACE_LEADER_ELECTION", lease.is_some().to_string())
            .env("MARKETPLACE_LEASE_NAME", lease.unwrap_or("unused"))
            .env("POD_NAME", name)
            .env("MARKETPLACE_AUDIT_INTERVAL_SECONDS", "600")
            .env("MARKETPLACE_GIT_CACHE", self.dir.path().join("git-cache"))
            .env("NO_PROXY", "127.0.0.1,localhost")
            // Loopback only, any free port: two replicas run side by side.
            .env("MARKETPLACE_LISTEN", "127.0.0.1:0")
            // Below the tests' 10 s exit limit: a stop that hangs still ends (and logs why).
            .env("MARKETPLACE_SHUTDOWN_GRACE_SECONDS", "8")
            // One hash-chained log per replica, kept across its restarts.
            .env("MARKETPLACE_AUDIT_LOG", self.audit_log(name))
            // OPERATOR_PROCESS_RUST_LOG overrides the operators' log filter for diagnostics.
            .env(
                "RUST_LOG",
                std::env::var("OPERATOR_PROCESS_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .kill_on_drop(true);
        let child = command.spawn().expect("the operator starts");
        Operator {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn tenant_subscriptions(&self) -> Api<TenantSubscription> {
        Api::namespaced(self.client.clone(), TENANT_NAMESPACE)
    }

    /// A Published, Instant, InApp listing with one Flat plan `basic` and features
    /// `<prefix>_alpha`, `<prefix>_beta`.
    pub async fn create_listing(&self, name: &str, feature_prefix: &str) -> Vec<String> {
        let features = vec![
            format!("{feature_prefix}_alpha"),
            format!("{feature_prefix}_beta"),
        ];
        let listing: Listing = serde_json::from_value(json!({
            "apiVersion": "marketplace.dev/v1alpha1",
            "kind": "Listing",
            "metadata": {"name": name},
            "spec": {
                "displayName": format!("Listing {name}"),
                "tagline": "A test add-on for process-level tests.",
                "description": "Used by operator_process tests.",
                "type": "InApp",
                "category": "Operations",
                "lifecycle": "Published",
                "visibility": "Public",
                "activation": "Instant",
                "features": features,
                "plans": [{
                    "name": "basic",
                    "displayName": "Basic",
                    "pricing": {"model": "Flat", "amount": "49.00", "currency": "USD", "interval": "Month"},
                    "hubspotSku": format!("SKU-{name}"),
                }],
            }
        }))
        .expect("a Listing");
        Api::<Listing>::all(self.client.clone())
            .create(&PostParams::default(), &listing)
            .await
            .expect("listing created");
        features
    }

    /// The tenant `acme`; waits for its namespace (needs a running operator).
    pub async fn create_tenant(&self) {
        let tenant: Tenant = serde_json::from_value(json!({
            "apiVersion": "marketplace.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": TENANT},
            "spec": {
                "displayName": "Acme",
                "basePlan": "Professional",
                "segment": "mid-market",
                "region": "us-east",
                "billingContact": {"name": "Dana Whitfield", "email": "billing@acme.example.com"},
                "billingAdmins": [{"kind": "User", "name": "dana@acme.example.com"}],
            }
        }))
        .expect("a Tenant");
        Api::<Tenant>::all(self.client.clone())
            .create(&PostParams::default(), &tenant)
            .await
            .expect("tenant created");
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        eventually("the tenant namespace", Duration::from_secs(60), || async {
            namespaces.get_opt(TENANT_NAMESPACE).await.ok().flatten()
        })
        .await;
    }

    /// Creates TenantSubscription `name` on listing `listing` (plan basic); returns its uid.
    pub async fn create_subscription(&self, name: &str, listing: &str) -> String {
        let sub: TenantSubscription = serde_json::from_value(json!({
            "apiVersion": "marketplace.dev/v1alpha1",
            "kind": "TenantSubscription",
            "metadata": {"name": name, "namespace": TENANT_NAMESPACE},
            "spec": {"listing": listing, "plan": "basic", "quantity": 1, "trial": false},
        }))
        .expect("a TenantSubscription");
        let created = self
            .tenant_subscriptions()
            .create(&PostParams::default(), &sub)
            .await
            .expect("subscription created");
        created.uid().expect("uid")
    }

    pub async fn cancel_immediately(&self, name: &str) {
        self.tenant_subscriptions()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"cancellation": {"effective": "Immediately", "reason": "test"}}})),
            )
            .await
            .expect("cancellation requested");
    }

    pub async fn phase(&self, name: &str) -> Option<Phase> {
        self.tenant_subscriptions()
            .get(name)
            .await
            .ok()?
            .status?
            .phase
    }

    /// Waits for `phase`; panics with the operator logs' tail otherwise.
    pub async fn wait_phase(&self, name: &str, phase: Phase, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = self.phase(name).await;
            if current == Some(phase) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let sub = self.tenant_subscriptions().get(name).await.ok();
                panic!(
                    "{name}: phase {current:?}, wanted {phase:?} within {timeout:?}\nstatus: {:#?}\n{}",
                    sub.and_then(|s| s.status),
                    self.log_tails()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Entitlement states of subscription `name`, by feature.
    pub async fn entitlements(&self, name: &str) -> Vec<(String, EntitlementState)> {
        let api: Api<Entitlement> = Api::namespaced(self.client.clone(), TENANT_NAMESPACE);
        let mut found: Vec<(String, EntitlementState)> = api
            .list(&ListParams::default())
            .await
            .expect("entitlements")
            .items
            .into_iter()
            .filter(|e| e.spec.source_subscription == name)
            .map(|e| (e.spec.feature.as_str().to_string(), e.spec.state))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Waits until the entitlements of `name` are exactly `features`, all in `state`.
    pub async fn wait_entitlements(
        &self,
        name: &str,
        features: &[String],
        state: EntitlementState,
    ) {
        let mut want: Vec<(String, EntitlementState)> =
            features.iter().map(|f| (f.clone(), state)).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.entitlements(name).await;
            if got == want {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{name}: entitlements {got:?}, wanted {want:?}\n{}",
                    self.log_tails()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every commerce subscription associated with the deal(s) of `uid`, as (id, hs_status).
    pub fn hubspot_subscriptions(&self, uid: &str) -> Vec<(u64, String)> {
        let admin = self.sim.admin();
        let deals: Vec<u64> = admin
            .objects(ObjectType::Deals)
            .iter()
            .filter(|d| d["properties"]["mkt_subscription_uid"].as_str() == Some(uid))
            .map(id_of)
            .collect();
        let mut ids: Vec<u64> = deals
            .iter()
            .flat_map(|d| admin.associated(ObjectType::Deals, *d, ObjectType::Subscriptions))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        admin
            .objects(ObjectType::Subscriptions)
            .iter()
            .filter(|s| ids.contains(&id_of(s)))
            .map(|s| {
                (
                    id_of(s),
                    s["properties"]["hs_status"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect()
    }

    /// Deals carrying `uid` (live ones).
    pub fn deals(&self, uid: &str) -> usize {
        self.sim
            .admin()
            .objects(ObjectType::Deals)
            .iter()
            .filter(|d| d["properties"]["mkt_subscription_uid"].as_str() == Some(uid))
            .count()
    }

    /// Live (not canceled or expired) commerce subscriptions of `uid`.
    pub fn live_subscriptions(&self, uid: &str) -> Vec<(u64, String)> {
        self.hubspot_subscriptions(uid)
            .into_iter()
            .filter(|(_, s)| s != "canceled" && s != "expired")
            .collect()
    }

    /// Objects the orphan sweep must remove: line items tagged with a subscription uid that
    /// have neither a subscription nor a deal, and subscriptions without a deal, as ids.
    pub fn orphans(&self) -> (Vec<u64>, Vec<u64>) {
        let admin = self.sim.admin();
        let parentless = |from: ObjectType, id: u64, parents: &[ObjectType]| {
            parents
                .iter()
                .all(|to| admin.associated(from, id, *to).is_empty())
        };
        let line_items = admin
            .objects(ObjectType::LineItems)
            .iter()
            .filter(|li| li["properties"]["mkt_subscription_uid"].is_string())
            .map(id_of)
            .filter(|id| {
                parentless(
                    ObjectType::LineItems,
                    *id,
                    &[ObjectType::Subscriptions, ObjectType::Deals],
                )
            })
            .collect();
        let subscriptions = admin
            .objects(ObjectType::Subscriptions)
            .iter()
            .map(id_of)
            .filter(|id| parentless(ObjectType::Subscriptions, *id, &[ObjectType::Deals]))
            .collect();
        (line_items, subscriptions)
    }

    /// Every commerce subscription the simulator holds (all uids, all states).
    pub fn all_subscriptions(&self) -> Vec<Value> {
        self.sim.admin().objects(ObjectType::Subscriptions)
    }

    /// Adds a fault on `method` requests whose path contains `path`.
    pub fn fault(&self, kind: FaultKind, method: &str, path: &str, times: Option<u32>) -> u64 {
        self.sim.admin().add_fault(FaultRule {
            id: 0,
            method: Some(method.into()),
            path_contains: Some(path.into()),
            kind,
            probability: 1.0,
            times,
        })
    }

    /// Whether fault `id` is still waiting to fire (a `times`-limited rule leaves once used up).
    pub fn fault_pending(&self, id: u64) -> bool {
        self.sim
            .admin()
            .with_state(|st| st.faults.rules.iter().any(|r| r.id == id))
    }

    /// Waits until the request `what` met fault `id` (a held request), then a moment more so
    /// that it reaches its committing (or sleeping) part: the moment to SIGKILL.
    pub async fn wait_fault_reached(&self, id: u64, what: &str) {
        eventually(
            &format!("{what} to reach HubSpot"),
            Duration::from_secs(20),
            || async { (!self.fault_pending(id)).then_some(()) },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// The last lines of every operator log, for failure messages.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        let mut entries: Vec<_> = std::fs::read_dir(self.dir.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for path in entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
        {
            out.push_str(&format!("--- {} (tail) ---\n", path.display()));
            out.push_str(&tail(path, 40));
        }
        out
    }
}

fn id_of(v: &Value) -> u64 {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("numeric id")
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = all[start..].join("\n");
    out.push('\n');
    out
}

impl Operator {
    /// SIGKILL, then reap.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        let _ = self.child.wait().await;
    }

    /// SIGTERM; the exit status within `timeout`.
    pub async fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let pid = self.child.id().expect("running") as i32;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {pid}");
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .map(|s| s.expect("wait"))
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

//! The operator in a child process (this binary, re-run with `--operator-child`), as it runs in
//! a cluster: its peak RSS is the operator's alone (not the benchmark's bookkeeping too), and a
//! restart is a new process with nothing left of the old one. The parent talks to it over its
//! stdin and stdout, one command per line and one JSON answer per line; the child stops its
//! controllers and exits when its stdin closes, so it never outlives the benchmark.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use kube::Client;
use marketplace_e2e::controllers::{self, RunningControllers, reconciled};
use marketplace_operator::api::conditions::find_condition;
use marketplace_operator::api::conditions::types::READY;
use marketplace_operator::api::listing::BillingOrder;
use marketplace_operator::controllers::{Context, ControllerConfig, Enabled};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{Result, hubspot_for, operator_caches, status_kib_of};

/// Flag that makes this binary run the operator instead of benchmarking.
pub const CHILD_FLAG: &str = "--operator-child";

/// What the child needs to know, passed as its one argument (JSON).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct OperatorSettings {
    pub kubeconfig: PathBuf,
    pub sim_url: String,
    pub tier: String,
    pub no_rate_limits: bool,
    pub subscription_concurrency: Option<u16>,
    pub tenant_concurrency: Option<u16>,
    pub billing_order: BillingOrder,
}

impl OperatorSettings {
    /// The controllers' configuration these settings make.
    pub fn controller_config(&self) -> ControllerConfig {
        let mut config = ControllerConfig {
            git_cache_dir: std::env::temp_dir().join("bench-activation-git-cache"),
            ..ControllerConfig::default()
        };
        if let Some(c) = self.subscription_concurrency {
            config.subscription_concurrency = c;
        }
        if let Some(c) = self.tenant_concurrency {
            config.tenant_concurrency = c;
        }
        config.billing_order.default = self.billing_order;
        config
    }
}

/// What the child answers to `status`: read from its own caches and metrics, so the parent
/// never polls the apiserver being measured.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct OperatorStatus {
    /// Every shared cache holds its first full list.
    pub caches_ready: bool,
    pub tenants: usize,
    pub listings: usize,
    /// Tenants whose Ready condition is True.
    pub tenants_ready: usize,
    pub tenant_reconciles: u64,
    pub subscription_reconciles: u64,
    /// Mean reconcile time of a Tenant, from the operator's histogram.
    pub tenant_reconcile_mean_ms: f64,
    /// The operator's HubSpot client: requests sent, retries and 429s received.
    pub hubspot_requests: u64,
    pub hubspot_retries: u64,
    pub hubspot_rate_limited: u64,
}

/// The running child.
pub struct OperatorProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// HubSpot calls the child's client made when it started (before any controller did).
    pub bootstrap_calls: u64,
}

impl OperatorProcess {
    /// Spawns the child, which makes its HubSpot client and then waits for
    /// [`Self::start_controllers`]: what the parent counts from there on is the controllers'.
    pub async fn spawn(settings: &OperatorSettings) -> Result<Self> {
        // A profiler may wrap the child (e.g. BENCH_OPERATOR_WRAPPER=heaptrack); its peak
        // RSS is then the wrapper's, not the operator's.
        let wrapper = std::env::var_os("BENCH_OPERATOR_WRAPPER");
        let mut command = match &wrapper {
            Some(wrapper) => {
                let mut command = Command::new(wrapper);
                command.arg(std::env::current_exe()?);
                command
            }
            None => Command::new(std::env::current_exe()?),
        };
        let mut child = command
            .arg(CHILD_FLAG)
            .arg(serde_json::to_string(settings)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or("the operator child has no stdin")?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the operator child has no stdout")?;
        let mut process = OperatorProcess {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            bootstrap_calls: 0,
        };
        // A wrapper may print first; the child's first line is a JSON object.
        let hello: serde_json::Value = loop {
            let line = process.answer().await?;
            if line.starts_with('{') {
                break serde_json::from_str(&line)?;
            }
        };
        process.bootstrap_calls = hello["bootstrapCalls"]
            .as_u64()
            .ok_or_else(|| format!("the operator child said {hello}, not its bootstrap"))?;
        Ok(process)
    }

    pub async fn start_controllers(&mut self) -> Result<()> {
        self.ask("start").await.map(drop)
    }

    pub async fn status(&mut self) -> Result<OperatorStatus> {
        Ok(serde_json::from_str(&self.ask("status").await?)?)
    }

    /// What the operator's caches hold, by kind (see [`operator_caches`]).
    pub async fn caches(&mut self) -> Result<String> {
        Ok(serde_json::from_str(&self.ask("caches").await?)?)
    }

    /// The child's peak RSS in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        status_kib_of(&format!("/proc/{pid}/status"), "VmHWM:")
    }

    /// Closes the child's stdin (it stops its controllers and exits) and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        drop(self.stdin);
        self.child.wait().await?;
        Ok(())
    }

    async fn ask(&mut self, command: &str) -> Result<String> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        self.answer().await
    }

    async fn answer(&mut self) -> Result<String> {
        let line = self
            .stdout
            .next_line()
            .await?
            .ok_or("the operator child exited")?;
        if let Some(error) = line.strip_prefix("error ") {
            return Err(format!("the operator child: {error}").into());
        }
        Ok(line)
    }
}

/// The child's side: `bench-activation --operator-child SETTINGS_JSON`. Prints its HubSpot
/// bootstrap, then answers `start`, `status` and `caches` until stdin closes.
pub async fn serve(args: &[String]) -> Result<()> {
    let [settings] = args else {
        return Err(format!("{CHILD_FLAG} SETTINGS_JSON").into());
    };
    let settings: OperatorSettings = serde_json::from_str(settings)?;
    let kubeconfig = std::fs::read_to_string(&settings.kubeconfig)?;
    let kube_config = marketplace_harness::kubeconfig::client_config(&kubeconfig).await?;
    let (tier, _) = marketplace_e2e::subscriptions::tiers(&settings.tier)?;
    let hubspot = hubspot_for(settings.sim_url.clone(), tier, settings.no_rate_limits).await?;
    println!(
        "{}",
        serde_json::json!({ "bootstrapCalls": hubspot.stats().requests })
    );
    let mut running: Option<(Arc<Context>, RunningControllers)> = None;
    // Commands read on a thread of their own (stdin is blocking); the channel closes with it.
    let (commands, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(std::io::Result::ok) {
            if commands.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let answer: Result<String> = match (line.trim(), &running) {
            ("start", None) => {
                let client = Client::try_from(kube_config.clone())?;
                let ctx = Arc::new(
                    controllers::context(&client, settings.controller_config(), "bench")
                        .with_billing(hubspot.clone()),
                );
                let started = controllers::start(ctx.clone(), Enabled::TENANTS_AND_SUBSCRIPTIONS);
                running = Some((ctx, started));
                Ok("{}".into())
            }
            ("status", Some((ctx, _))) => Ok(serde_json::to_string(&status(ctx))?),
            ("caches", Some((ctx, _))) => Ok(serde_json::to_string(&operator_caches(ctx))?),
            (command, _) => Err(format!("{command:?} is not a command now").into()),
        };
        match answer {
            Ok(answer) => println!("{answer}"),
            Err(error) => println!("error {error}"),
        }
    }
    if let Some((_, started)) = running {
        started.stop().await;
    }
    Ok(())
}

fn status(ctx: &Context) -> OperatorStatus {
    let stores = &ctx.stores;
    let tenants = stores.tenants.state();
    let tenants_ready = tenants
        .iter()
        .filter(|t| {
            t.status
                .as_ref()
                .and_then(|s| find_condition(&s.conditions, READY))
                .is_some_and(|c| c.status == "True")
        })
        .count();
    let hubspot = ctx.billing.as_ref().map(|b| b.stats()).unwrap_or_default();
    OperatorStatus {
        caches_ready: stores.is_ready(),
        tenants: tenants.len(),
        listings: stores.listings.state().len(),
        tenants_ready,
        tenant_reconciles: reconciled(ctx, "Tenant"),
        subscription_reconciles: reconciled(ctx, "TenantSubscription"),
        tenant_reconcile_mean_ms: mean_reconcile_ms(ctx, "Tenant"),
        hubspot_requests: hubspot.requests,
        hubspot_retries: hubspot.retries,
        hubspot_rate_limited: hubspot.rate_limited,
    }
}

/// The mean reconcile time of `kind`, from the operator's histogram.
fn mean_reconcile_ms(ctx: &Context, kind: &str) -> f64 {
    let text = ctx.metrics.encode().unwrap_or_default();
    let label = format!("kind=\"{kind}\"");
    let value = |metric: &str| {
        text.lines()
            .filter(|l| l.starts_with(metric) && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let count = value("marketplace_reconcile_duration_seconds_count{");
    value("marketplace_reconcile_duration_seconds_sum{") * 1000.0 / count.max(1.0)
}

//! The two servers under load, each a separate process pinned to one core (`taskset`) and
//! started under the harness's watchdog, so neither outlives the benchmark even when it is
//! killed: our `marketplace api` (release build) and Unleash Edge in offline mode.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use marketplace_harness::process::{Component, free_ports};
use serde_json::{Value, json};

use crate::Result;
use crate::dataset::Dataset;
use crate::load::Endpoint;

/// Unleash Edge accepts only tokens of the form `project:environment.secret`.
pub const EDGE_TOKEN: &str = "*:development.bench-entitlements";

/// A running server process.
pub struct Server {
    pub address: SocketAddr,
    process: Component,
}

/// Memory and CPU of a server process, from /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    /// User + system CPU time so far, in clock ticks.
    pub cpu_ticks: u64,
}

impl Server {
    /// `marketplace api` on a free loopback port, with the admin kubeconfig (it only reads, and
    /// makes the reviews).
    pub fn start_api(
        binary: &Path,
        core: usize,
        kubeconfig: &Path,
        review_ttl: Duration,
        review_cache_size: usize,
        dir: &Path,
    ) -> Result<Server> {
        let address = SocketAddr::from(([127, 0, 0, 1], free_ports(1)?[0]));
        let args = [
            format!("KUBECONFIG={}", kubeconfig.display()),
            "taskset".into(),
            "-c".into(),
            core.to_string(),
            binary.display().to_string(),
            "api".into(),
            "--listen".into(),
            address.to_string(),
            "--review-ttl-seconds".into(),
            review_ttl.as_secs().to_string(),
            "--review-cache-size".into(),
            review_cache_size.to_string(),
        ];
        Self::spawn("marketplace-api", address, &args, dir)
    }

    /// Unleash Edge, offline, serving the dataset from its bootstrap file.
    pub fn start_edge(binary: &Path, core: usize, dataset: &Dataset, dir: &Path) -> Result<Server> {
        let address = SocketAddr::from(([127, 0, 0, 1], free_ports(1)?[0]));
        let bootstrap = dir.join("edge-bootstrap.json");
        std::fs::write(&bootstrap, serde_json::to_vec(&dataset.edge_bootstrap())?)?;
        let args = [
            "taskset".into(),
            "-c".into(),
            core.to_string(),
            binary.display().to_string(),
            "--port".into(),
            address.port().to_string(),
            "--interface".into(),
            "127.0.0.1".into(),
            "offline".into(),
            "--bootstrap-file".into(),
            bootstrap.display().to_string(),
            "--frontend-tokens".into(),
            EDGE_TOKEN.into(),
            "--client-tokens".into(),
            EDGE_TOKEN.into(),
        ];
        Self::spawn("unleash-edge", address, &args, dir)
    }

    fn spawn(
        name: &'static str,
        address: SocketAddr,
        args: &[String],
        dir: &Path,
    ) -> Result<Server> {
        // `env` and `taskset` exec the server, so the watchdog's pid is the server's own.
        let process = Component::spawn(
            name,
            Path::new("env"),
            args,
            dir.join(format!("{name}.log")),
            &dir.join("pids"),
        )?;
        Ok(Server { address, process })
    }

    /// Waits until `request` (one to this server) answers 2xx; returns how long that took.
    pub async fn wait_ready(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Duration> {
        let started = Instant::now();
        loop {
            self.process.check_running()?;
            if let Ok(response) = request().send().await
                && response.status().is_success()
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(format!(
                    "{} did not become ready in 120 s; log:\n{}",
                    self.process.name(),
                    self.process.log_tail()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn usage(&self) -> Result<Usage> {
        let pid = self.process.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The fields after the command name (which may hold spaces) start with the 3rd, the
        // state: utime and stime (the 14th and 15th) are at 11 and 12.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<u64> = after
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        Ok(Usage {
            rss_kib: kib("VmRSS:"),
            peak_rss_kib: kib("VmHWM:"),
            cpu_ticks: fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0),
        })
    }

    pub fn stop(self) {
        self.process.stop();
    }
}

/// (busy, total) clock ticks of CPU `core` so far, all processes together (/proc/stat): with
/// the server's own CPU time this shows how much of its core other work took.
pub fn core_ticks(core: usize) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let name = format!("cpu{core}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .ok_or_else(|| format!("/proc/stat has no {name}"))?;
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

/// One request of the kind a run sends, for readiness probes and answer checks.
#[derive(Clone, Copy)]
pub struct Probe<'a> {
    pub endpoint: Endpoint,
    pub credential: &'a str,
    pub tenant: &'a str,
    pub feature: &'a str,
}

impl Probe<'_> {
    pub fn request(&self, http: &reqwest::Client, server: SocketAddr) -> reqwest::RequestBuilder {
        let (tenant, feature) = (self.tenant, self.feature);
        match self.endpoint {
            Endpoint::Ofrep => http
                .post(format!("http://{server}/ofrep/v1/evaluate/flags/{feature}"))
                .bearer_auth(self.credential)
                .json(&json!({"context": {"targetingKey": tenant}})),
            Endpoint::Rest => http
                .get(format!(
                    "http://{server}/v1/tenants/{tenant}/entitlements/{feature}"
                ))
                .bearer_auth(self.credential),
            Endpoint::Edge => http
                .post(format!("http://{server}/api/frontend/features/{feature}"))
                .header("Authorization", self.credential)
                .json(&json!({"userId": tenant})),
        }
    }

    /// Whether the server says the feature is on (each endpoint names it differently).
    pub async fn enabled(&self, http: &reqwest::Client, server: SocketAddr) -> Result<bool> {
        let response = self.request(http, server).send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let field = match self.endpoint {
            Endpoint::Ofrep => "value",
            Endpoint::Rest | Endpoint::Edge => "enabled",
        };
        body[field].as_bool().ok_or_else(|| {
            format!(
                "{:?} {}/{}: {status} {body}",
                self.endpoint, self.tenant, self.feature
            )
            .into()
        })
    }
}

/// Asks `samples` spread-out (tenant, feature) pairs and fails on the first answer that differs
/// from the dataset: both servers must be serving the same data before they are compared.
pub async fn check_answers(
    http: &reqwest::Client,
    server: SocketAddr,
    endpoint: Endpoint,
    credential: &str,
    dataset: &Dataset,
    samples: usize,
) -> Result<()> {
    for k in 0..samples {
        let i = (k * 7919 + 11) % dataset.tenants;
        let j = (k * 31 + i) % dataset.features;
        let (tenant, feature) = (dataset.tenant(i), dataset.feature(j));
        let probe = Probe {
            endpoint,
            credential,
            tenant: &tenant,
            feature: &feature,
        };
        let got = probe.enabled(http, server).await?;
        if got != dataset.enabled(i, j) {
            return Err(format!(
                "{endpoint:?} says {tenant}/{feature} is {got}; the dataset says {}",
                dataset.enabled(i, j)
            )
            .into());
        }
    }
    Ok(())
}

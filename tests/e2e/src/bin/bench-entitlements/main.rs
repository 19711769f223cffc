//! `bench-entitlements`: our entitlement API against Unleash Edge on the same machine, the same
//! data and the same load generator. A real control plane on 127.0.0.1 holds T tenants × F
//! features (one third enabled: Active Entitlements); `marketplace api` (release build) answers
//! from its caches, with one ServiceAccount token allowed to read every tenant. Unleash Edge
//! (offline) serves the same data from a bootstrap file. Each server in turn runs pinned to one
//! core and wrk to the other. Prints req/s, p50/p99/p99.9, errors, CPU and RSS of each at peak
//! and at half of our peak, our ratio to Edge, and the propagation latency (Entitlement changed →
//! OFREP answer flipped).
//!
//!   scripts/bench-entitlements [--tenants T] [--features F] [--duration-s S] [--changes N] ...

mod dataset;
mod load;
mod propagation;
mod report;
mod servers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Client;
use kube::api::Api;
use marketplace_e2e::api_process::service_account_token;
use marketplace_e2e::review_count;
use marketplace_e2e::subscriptions::apply;
use marketplace_harness::{ControlPlane, ControlPlaneOptions};
use serde_json::json;

use dataset::Dataset;
use load::{Endpoint, Measured, Pace, Run};
use report::{clock_ticks, load_average, machine, report};
use servers::{EDGE_TOKEN, Probe, Server, Usage, check_answers, core_ticks};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Answers checked against the dataset on each server before it is loaded.
const ANSWER_CHECKS: usize = 300;

#[derive(Parser, Debug)]
#[command(about = "Benchmark the entitlement API against Unleash Edge")]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    #[arg(long, default_value_t = 20)]
    features: usize,
    /// Seconds of each measured run (warm-up runs are --warmup-s).
    #[arg(long, default_value_t = 15)]
    duration_s: u64,
    #[arg(long, default_value_t = 3)]
    warmup_s: u64,
    /// wrk connections of the peak runs.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Entitlement changes timed for the propagation latency (0: skip).
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// The API's review cache TTL: one caller reads every tenant, so each tenant's
    /// SubjectAccessReview is cached once and kept for the whole benchmark.
    #[arg(long, default_value_t = 900)]
    review_ttl_seconds: u64,
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    #[arg(long, default_value_t = 1)]
    load_core: usize,
    /// The `marketplace` binary (a release build).
    #[arg(long, env = "MARKETPLACE_BENCH_API_BIN")]
    api_bin: PathBuf,
    /// The `unleash-edge` binary (scripts/install-unleash-edge).
    #[arg(long, env = "UNLEASH_EDGE_BIN")]
    edge_bin: PathBuf,
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
}

/// What a run loads: one server's endpoint, as one caller.
struct Target<'a> {
    server: &'a Server,
    name: &'static str,
    endpoint: Endpoint,
    credential: &'a str,
    /// Ours: the apiserver, to count the reviews the API made during the run.
    apiserver: Option<&'a Client>,
}

/// One run's figures.
struct Sample {
    measured: Measured,
    /// The share of its core the server used, and the share all processes used.
    cpu_percent: f64,
    core_percent: f64,
    usage: Usage,
    /// TokenReviews + SubjectAccessReviews the apiserver answered during the run (ours only).
    reviews: Option<u64>,
}

/// One line of the table.
struct Row {
    server: &'static str,
    load: String,
    sample: Sample,
}

struct Bench<'a> {
    args: &'a Args,
    dataset: Dataset,
    dir: PathBuf,
    clock_ticks: f64,
}

impl Bench<'_> {
    /// One wrk run against the target, with the server's CPU share and memory after it.
    async fn run(&self, target: &Target<'_>, pace: Pace, duration: Duration) -> Result<Sample> {
        let reviews_before = match target.apiserver {
            Some(c) => Some(review_count(c).await),
            None => None,
        };
        let before = target.server.usage()?;
        let core_before = core_ticks(self.args.server_core)?;
        let measured = Run {
            wrk: &self.args.wrk,
            core: self.args.load_core,
            server: target.server.address,
            endpoint: target.endpoint,
            credential: target.credential,
            dataset: self.dataset,
            connections: pace.connections,
            duration,
            delay_ms: pace.delay_ms,
            script_dir: &self.dir,
        }
        .measure()
        .await?;
        let after = target.server.usage()?;
        let core_after = core_ticks(self.args.server_core)?;
        let cpu_percent = (after.cpu_ticks - before.cpu_ticks) as f64
            / self.clock_ticks
            / measured.seconds.max(f64::EPSILON)
            * 100.0;
        let core_percent = (core_after.0 - core_before.0) as f64
            / (core_after.1 - core_before.1).max(1) as f64
            * 100.0;
        let reviews = match (target.apiserver, reviews_before) {
            (Some(c), Some(b)) => Some(review_count(c).await - b),
            _ => None,
        };
        // Progress on stderr; the table comes at the end.
        eprintln!(
            "bench-entitlements: {:?}, {pace}, {} s: {:.0} req/s, p99 {:.3} ms, {} errors, \
             server CPU {cpu_percent:.0}% (core {core_percent:.0}% busy), wrk CPU {:.0}%",
            target.endpoint,
            duration.as_secs(),
            measured.rate(),
            measured.p99_us / 1000.0,
            measured.errors(),
            measured.generator_cpu_percent()
        );
        Ok(Sample {
            measured,
            cpu_percent,
            core_percent,
            usage: after,
            reviews,
        })
    }

    /// A warm-up run, then the measured run, both with every connection in a closed loop.
    async fn peak(&self, target: &Target<'_>) -> Result<Row> {
        let pace = Pace {
            connections: self.args.connections,
            delay_ms: None,
        };
        self.run(target, pace, self.warmup()).await?;
        Ok(Row {
            server: target.name,
            load: format!("peak ({} conn.)", pace.connections),
            sample: self.run(target, pace, self.duration()).await?,
        })
    }

    /// A warm-up run at the pace computed for `rate`; then the measured run at a pace corrected
    /// by the latency it showed (each connection waits its delay plus the answer's latency).
    async fn paced(&self, target: &Target<'_>, rate: f64) -> Result<Row> {
        let first = Pace::for_rate(rate, 0.0);
        let warm = self.run(target, first, self.warmup()).await?;
        let period_ms = first.connections as f64 * 1000.0 / warm.measured.rate().max(1.0);
        let latency_ms = (period_ms - first.delay_ms.unwrap_or(0) as f64).max(0.0);
        Ok(Row {
            server: target.name,
            load: format!("{rate:.0}/s offered"),
            sample: self
                .run(target, Pace::for_rate(rate, latency_ms), self.duration())
                .await?,
        })
    }

    fn duration(&self) -> Duration {
        Duration::from_secs(self.args.duration_s)
    }

    fn warmup(&self) -> Duration {
        Duration::from_secs(self.args.warmup_s)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let dataset = Dataset {
        tenants: args.tenants,
        features: args.features,
    };
    for binary in [&args.api_bin, &args.edge_bin] {
        if !binary.is_file() {
            return Err(format!("{} does not exist", binary.display()).into());
        }
    }
    let temp = tempfile::Builder::new()
        .prefix("bench-entitlements-")
        .tempdir()?;
    let bench = Bench {
        args: &args,
        dataset,
        dir: temp.path().to_path_buf(),
        clock_ticks: clock_ticks(),
    };
    println!(
        "entitlement benchmark: {} tenants × {} features, one third enabled ({} pairs); {}",
        dataset.tenants,
        dataset.features,
        dataset.enabled_pairs(),
        machine()
    );

    // 1. The control plane and the data.
    let control_plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
    control_plane
        .install_crds(&marketplace_operator::api::crds())
        .await?;
    let client = control_plane.client().await?;
    let loaded = dataset.load(&client).await?;
    println!(
        "  loaded into Kubernetes {} on 127.0.0.1: {} objects in {:.1} s",
        client.apiserver_version().await?.git_version,
        loaded.objects(),
        loaded.time().as_secs_f64()
    );
    for (kind, count, time) in &loaded.steps {
        println!(
            "    {kind:<24} {count:>7} in {:>6.1} s ({:.0}/s)",
            time.as_secs_f64(),
            *count as f64 / time.as_secs_f64().max(f64::EPSILON)
        );
    }
    println!(
        "    (no Entitlement for the {} pairs that are off: a catalog feature the tenant lacks is \
         answered as not entitled)",
        dataset.tenants * dataset.features - dataset.enabled_pairs()
    );
    let token = reader_token(&client, &control_plane).await?;

    // 2. Our API: answers checked, reviews cached, then OFREP and REST at peak.
    let http = reqwest::Client::new();
    let api = Server::start_api(
        &args.api_bin,
        args.server_core,
        control_plane.kubeconfig_path(),
        Duration::from_secs(args.review_ttl_seconds),
        dataset.tenants * 2,
        &bench.dir,
    )?;
    let ready = api
        .wait_ready(|| http.get(format!("http://{}/readyz", api.address)))
        .await?;
    println!(
        "  marketplace api (--review-ttl-seconds {} --review-cache-size {}): ready (caches synced) \
         {:.1} s after start, RSS {:.1} MiB",
        args.review_ttl_seconds,
        dataset.tenants * 2,
        ready.as_secs_f64(),
        api.usage()?.rss_kib as f64 / 1024.0
    );
    for endpoint in [Endpoint::Rest, Endpoint::Ofrep] {
        check_answers(
            &http,
            api.address,
            endpoint,
            &token,
            &dataset,
            ANSWER_CHECKS,
        )
        .await?;
    }
    let warmed = warm_reviews(&client, &http, &api, &token, &dataset).await?;
    println!(
        "  review cache warmed: every tenant read once in {:.1} s ({} TokenReviews + SubjectAccessReviews)",
        warmed.0.as_secs_f64(),
        warmed.1
    );
    let ofrep = Target {
        server: &api,
        name: "ours OFREP",
        endpoint: Endpoint::Ofrep,
        credential: &token,
        apiserver: Some(&client),
    };
    let rest = Target {
        name: "ours REST",
        endpoint: Endpoint::Rest,
        ..ofrep
    };
    let mut rows = vec![bench.peak(&ofrep).await?, bench.peak(&rest).await?];
    let half = rows
        .iter()
        .map(|r| r.sample.measured.rate())
        .fold(f64::INFINITY, f64::min)
        / 2.0;
    rows.push(bench.paced(&ofrep, half).await?);
    rows.push(bench.paced(&rest, half).await?);
    let propagation = if args.changes > 0 {
        Some(
            propagation::measure(&client, &http, api.address, &token, &dataset, args.changes)
                .await?,
        )
    } else {
        None
    };
    api.stop();

    // 3. Unleash Edge on the same core, same data, same load.
    let edge = Server::start_edge(&args.edge_bin, args.server_core, &dataset, &bench.dir)?;
    let (t0, f0) = (dataset.tenant(0), dataset.feature(0));
    let probe = Probe {
        endpoint: Endpoint::Edge,
        credential: EDGE_TOKEN,
        tenant: &t0,
        feature: &f0,
    };
    let ready = edge
        .wait_ready(|| probe.request(&http, edge.address))
        .await?;
    println!(
        "  unleash-edge: ready {:.1} s after start, RSS {:.1} MiB",
        ready.as_secs_f64(),
        edge.usage()?.rss_kib as f64 / 1024.0
    );
    check_answers(
        &http,
        edge.address,
        Endpoint::Edge,
        EDGE_TOKEN,
        &dataset,
        ANSWER_CHECKS,
    )
    .await?;
    let unleash = Target {
        server: &edge,
        name: "Unleash Edge",
        endpoint: Endpoint::Edge,
        credential: EDGE_TOKEN,
        apiserver: None,
    };
    rows.push(bench.peak(&unleash).await?);
    rows.push(bench.paced(&unleash, half).await?);
    edge.stop();

    report(&args, &rows, half, propagation.as_ref());
    println!(
        "  machine after the runs: {}; benchmark wall time {:.0} s",
        load_average(),
        started.elapsed().as_secs_f64()
    );
    drop(control_plane);
    Ok(())
}

/// A ServiceAccount allowed to read every tenant's Entitlements (one ClusterRole), and its token.
async fn reader_token(client: &Client, control_plane: &ControlPlane) -> Result<String> {
    let namespace = control_plane.create_namespace("bench").await?;
    apply(
        &Api::<ClusterRole>::all(client.clone()),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "bench-entitlement-reader"},
            "rules": [{"apiGroups": ["marketplace.dev"], "resources": ["entitlements"],
                "verbs": ["get", "list", "watch"]}]}),
    )
    .await;
    apply(
        &Api::<ClusterRoleBinding>::all(client.clone()),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "bench-entitlement-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "bench-entitlement-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "bench-reader", "namespace": namespace}]}),
    )
    .await;
    Ok(service_account_token(client, &namespace, "bench-reader").await)
}

/// Reads every tenant once, so that each tenant's SubjectAccessReview is cached before the
/// measured runs. Returns the time it took and the reviews it made.
async fn warm_reviews(
    client: &Client,
    http: &reqwest::Client,
    api: &Server,
    token: &str,
    dataset: &Dataset,
) -> Result<(Duration, u64)> {
    let before = review_count(client).await;
    let started = Instant::now();
    let feature = dataset.feature(0);
    let failures: Vec<String> = futures::stream::iter(0..dataset.tenants)
        .map(|i| {
            let tenant = dataset.tenant(i);
            let feature = &feature;
            async move {
                let probe = Probe {
                    endpoint: Endpoint::Rest,
                    credential: token,
                    tenant: &tenant,
                    feature,
                };
                probe.enabled(http, api.address).await.err()
            }
        })
        .buffer_unordered(16)
        .filter_map(|e| async move { e.map(|e| e.to_string()) })
        .collect()
        .await;
    if let Some(first) = failures.first() {
        return Err(format!(
            "{} reads failed while warming, first: {first}",
            failures.len()
        )
        .into());
    }
    Ok((started.elapsed(), review_count(client).await - before))
}

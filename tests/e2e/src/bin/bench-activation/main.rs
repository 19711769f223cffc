//! `bench-activation`: T tenants × S Instant InApp subscriptions activated end to end by the
//! Tenant and TenantSubscription controllers (an operator in a child process, with one shared
//! Context), against a real control plane on 127.0.0.1 and the HubSpot simulator (in another
//! child process) with a latency fault on every request (so each HubSpot call costs about as
//! much as a real network call).
//!
//! Prints the wall time, activations per second, the create → entitlements-Active latency
//! percentiles, the apiserver writes per activation (from the apiserver's own
//! `apiserver_request_total`, split by resource), HubSpot calls and 429s per activation, the
//! operator process's peak RSS, and the wall time against the lower bound set by the HubSpot
//! rate budget.
//!
//! Each billing order runs on its own control plane: BillFirst (entitlements once billed) and
//! EntitleFirst (entitlements at once, billing right after; the create → Billed percentiles say
//! how long billing followed). `--no-rate-limits --restart` is the scale run (`scripts/bench-scale`):
//! HubSpot's budget lifted, then the operator restarted and timed through its resync and first
//! pass over every subscription, which must call HubSpot zero times ([`restart`]).
//!
//!   scripts/bench-activation [--tenants T] [--subscriptions S] [--latency-ms MS] [--tier TIER]
//!                            [--orders BillFirst,EntitleFirst] [--no-rate-limits] [--restart]

mod operator_process;
mod restart;
mod sim_process;
mod tenant_pass;
mod write_rate;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use hubspot_sim::{FaultKind, FaultRule, SimConfig};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use marketplace_harness::{ControlPlane, ControlPlaneOptions};
use marketplace_harness::{apiserver_writes, writes_between};
use marketplace_operator::api::conditions::find_condition;
use marketplace_operator::api::conditions::types::{BILLED, READY};
use marketplace_operator::api::listing::BillingOrder;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{
    Entitlement, EntitlementState, Listing, Tenant, TenantSubscription,
};
use marketplace_operator::billing::{ApiToken, HubSpotClient, HubSpotConfig, Tier};
use operator_process::{OperatorProcess, OperatorSettings};
use serde_json::json;
use sim_process::{SimProcess, SimSettings};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Features per listing (each subscription must end with this many Active Entitlements).
const FEATURES: usize = 2;

/// Largest run whose watch timeline is kept (and the slowest subscription's printed).
const TIMELINE_LIMIT: usize = 10_000;

#[derive(Parser, Debug)]
#[command(
    about = "Benchmark subscription activation: tenants × listings, end to end",
    args_override_self = true
)]
struct Args {
    /// Tenants (cluster-scoped; each gets the namespace tenant-<name>).
    #[arg(long, default_value_t = 50)]
    tenants: usize,
    /// Subscriptions per tenant, one to each of this many listings.
    #[arg(long, default_value_t = 20)]
    subscriptions: usize,
    /// Latency added by the simulator to every HubSpot request.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// HubSpot tier of the simulated portal and of the client's limiter.
    #[arg(long, default_value = "professional")]
    tier: String,
    /// Search index lag of the simulator (contract §8.1).
    #[arg(long, default_value_t = SimConfig::default().search_lag_ms)]
    search_lag_ms: u64,
    /// TenantSubscriptions reconciled at once (the operator's default unless given).
    #[arg(long)]
    subscription_concurrency: Option<u16>,
    /// Tenants reconciled at once (the operator's default unless given).
    #[arg(long)]
    tenant_concurrency: Option<u16>,
    /// Fail when no subscription activates for this many seconds.
    #[arg(long, default_value_t = 120)]
    stall_timeout_s: u64,
    /// The billing orders to run, one control plane each.
    #[arg(long, value_delimiter = ',', default_value = "BillFirst,EntitleFirst", value_parser = parse_order)]
    orders: Vec<BillingOrder>,
    /// Lift HubSpot's rate limits (the simulator's and the client's): the scale run.
    #[arg(long)]
    no_rate_limits: bool,
    /// After the activations, restart the operator and time its resync and first pass.
    #[arg(long)]
    restart: bool,
    /// Tenants and subscriptions created at once.
    #[arg(long, default_value_t = 16)]
    create_concurrency: usize,
    /// Purchases per second: subscriptions are created at this steady rate instead of all at
    /// once (the burst), to find the sustained rate the latency goal holds at.
    #[arg(long, value_parser = parse_rate)]
    create_rate: Option<f64>,
}

fn parse_rate(value: &str) -> std::result::Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{value:?}: a number of purchases per second above 0"
        )),
    }
}

fn parse_order(value: &str) -> std::result::Result<BillingOrder, String> {
    BillingOrder::parse(value).ok_or_else(|| format!("{value:?}: use BillFirst or EntitleFirst"))
}

/// One order's headline figures, for the closing table.
struct Summary {
    order: BillingOrder,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    billed_p99: Duration,
    calls_per: f64,
    rejected: u64,
    writes_per: f64,
    wall: Duration,
    bound: f64,
}

/// What the watches saw, shared between the watch task and the main task.
#[derive(Default)]
struct Tracker {
    /// `ns/name` → when the benchmark sent the create.
    created: HashMap<String, Instant>,
    /// `ns/name` → the latest phase, granted features in status and Ready message.
    subs: HashMap<String, (Option<Phase>, usize, String)>,
    /// `ns/name` → create-to-Billed (the Billed condition True).
    billed: HashMap<String, Duration>,
    /// `ns/subscription` → entitlement name → state.
    ents: HashMap<String, HashMap<String, EntitlementState>>,
    /// `ns/name` → create-to-active.
    activated: HashMap<String, Duration>,
    /// Every phase each subscription was seen in, in order (deduplicated).
    phases: HashMap<String, Vec<Option<Phase>>>,
    /// What the watches saw of each subscription and its Entitlements, when: the slowest
    /// one's is printed, to tell where its time went. Kept only when `record_timeline` (runs up
    /// to [`TIMELINE_LIMIT`]): at scale it would weigh on the RSS measured.
    timeline: HashMap<String, Vec<(Instant, String)>>,
    record_timeline: bool,
    watch_errors: Vec<String>,
}

impl Tracker {
    fn check(&mut self, key: &str, now: Instant) {
        if self.activated.contains_key(key) {
            return;
        }
        let Some(created) = self.created.get(key) else {
            return;
        };
        let Some((phase, granted, _)) = self.subs.get(key) else {
            return;
        };
        let active_ents = self.ents.get(key).map_or(0, |m| {
            m.values()
                .filter(|s| **s == EntitlementState::Active)
                .count()
        });
        if *phase == Some(Phase::Active) && *granted == FEATURES && active_ents == FEATURES {
            self.activated
                .insert(key.to_string(), now.duration_since(*created));
            // Only the stall report reads these, and only of subscriptions not yet active: at
            // 50,000 subscriptions they would weigh on the RSS measured.
            self.subs.remove(key);
            self.ents.remove(key);
        }
    }
}

enum Seen {
    Sub(Box<TenantSubscription>),
    Ent(Box<Entitlement>),
    Error(String),
}

fn lock(t: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

fn key_of<K: ResourceExt>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

fn watch(client: Client, tracker: Arc<Mutex<Tracker>>) -> tokio::task::JoinHandle<()> {
    let subs = watcher(
        Api::<TenantSubscription>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .map(|r| match r {
        Ok(s) => Seen::Sub(Box::new(s)),
        Err(e) => Seen::Error(format!("TenantSubscription watch: {e}")),
    });
    let ents = watcher(Api::<Entitlement>::all(client), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .map(|r| match r {
            Ok(e) => Seen::Ent(Box::new(e)),
            Err(e) => Seen::Error(format!("Entitlement watch: {e}")),
        });
    let mut stream = futures::stream::select(subs.boxed(), ents.boxed());
    tokio::spawn(async move {
        while let Some(seen) = stream.next().await {
            let now = Instant::now();
            let mut t = lock(&tracker);
            match seen {
                Seen::Sub(s) => {
                    let key = key_of(s.as_ref());
                    let status = s.status.clone().unwrap_or_default();
                    let ready = find_condition(&status.conditions, READY)
                        .map(|c| format!("{}: {}", c.reason, c.message))
                        .unwrap_or_default();
                    let billed = find_condition(&status.conditions, BILLED)
                        .is_some_and(|c| c.status == "True");
                    if billed
                        && !t.billed.contains_key(&key)
                        && let Some(created) = t.created.get(&key).copied()
                    {
                        t.billed.insert(key.clone(), now.duration_since(created));
                    }
                    if t.record_timeline {
                        let seen = format!(
                            "TenantSubscription rv {}: finalizers {}, phase {:?}, {} granted, Ready {ready:?}, Billed {}",
                            s.metadata.resource_version.as_deref().unwrap_or(""),
                            s.finalizers().len(),
                            status.phase,
                            status.entitlements.len(),
                            find_condition(&status.conditions, BILLED)
                                .map(|c| format!("{} {}", c.status, c.reason))
                                .unwrap_or_default(),
                        );
                        t.timeline.entry(key.clone()).or_default().push((now, seen));
                    }
                    let phases = t.phases.entry(key.clone()).or_default();
                    if phases.last() != Some(&status.phase) {
                        phases.push(status.phase);
                    }
                    if !t.activated.contains_key(&key) {
                        t.subs.insert(
                            key.clone(),
                            (status.phase, status.entitlements.len(), ready),
                        );
                        t.check(&key, now);
                    }
                }
                Seen::Ent(e) => {
                    let key = format!(
                        "{}/{}",
                        e.namespace().unwrap_or_default(),
                        e.spec.source_subscription
                    );
                    if t.record_timeline {
                        t.timeline.entry(key.clone()).or_default().push((
                            now,
                            format!("Entitlement {} {:?}", e.name_any(), e.spec.state),
                        ));
                    }
                    if !t.activated.contains_key(&key) {
                        t.ents
                            .entry(key.clone())
                            .or_default()
                            .insert(e.name_any(), e.spec.state);
                        t.check(&key, now);
                    }
                }
                Seen::Error(e) => t.watch_errors.push(e),
            }
        }
    })
}

fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// A `/proc/self/status` memory figure in KiB (`VmHWM:` the peak RSS, `VmRSS:` the current).
fn status_kib(field: &str) -> Option<u64> {
    status_kib_of("/proc/self/status", field)
}

/// A memory figure in KiB from a `/proc/<pid>/status` file.
fn status_kib_of(path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// What the operator's caches hold: every object the operator keeps in memory, by kind, as
/// (count, approximate bytes as JSON); the process's RSS also counts the benchmark's
/// bookkeeping, this only the operator.
fn operator_caches(ctx: &marketplace_operator::controllers::Context) -> String {
    let mut sizes = ctx.stores.sizes();
    if let Some(owned) = ctx.tenant_owned.get() {
        sizes.extend(owned.sizes());
    }
    let objects: usize = sizes.iter().map(|(_, (n, _))| n).sum();
    let bytes: usize = sizes.iter().map(|(_, (_, b))| b).sum();
    let by_kind: Vec<String> = sizes
        .iter()
        .filter(|(_, (n, _))| *n > 0)
        .map(|(kind, (n, b))| format!("{kind} {n} ({:.1} MiB)", *b as f64 / 1048576.0))
        .collect();
    format!(
        "{objects} objects, {:.1} MiB as JSON: {}",
        bytes as f64 / 1048576.0,
        by_kind.join(", ")
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn listing(i: usize) -> Result<Listing> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing",
        "metadata": { "name": format!("bench-listing-{i}") },
        "spec": {
            "displayName": format!("Bench add-on {i}"),
            "tagline": "A benchmark add-on, activated instantly.",
            "type": "InApp",
            "category": "Operations",
            "lifecycle": "Published",
            "visibility": "Public",
            "features": [format!("bench_{i}_reports"), format!("bench_{i}_exports")],
            "plans": [{
                "name": "standard",
                "displayName": "Standard",
                "pricing": { "model": "Flat", "amount": "49.00", "currency": "USD", "interval": "Month" },
                "hubspotSku": format!("BENCH-{i}-STD"),
            }],
            "activation": "Instant",
            "availableOnPlans": ["Professional", "Enterprise"],
        },
    }))?)
}

fn tenant_object(name: &str) -> Result<Tenant> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
        "metadata": { "name": name },
        "spec": {
            "displayName": format!("Bench {name}"),
            "basePlan": "Professional",
            "billingContact": { "name": "Bench Billing", "email": format!("billing@{name}.example.com") },
        },
    }))?)
}

fn subscription(namespace: &str, listing: &str) -> Result<TenantSubscription> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": { "name": listing, "namespace": namespace },
        "spec": { "listing": listing, "plan": "standard", "quantity": 1 },
    }))?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(sim_process::CHILD_FLAG) {
        return sim_process::serve(&argv[2..]).await;
    }
    if argv.get(1).map(String::as_str) == Some(operator_process::CHILD_FLAG) {
        // The operator's logs, when asked for (e.g. one subscription's reconciles:
        // RUST_LOG='warn,[reconcile{name=bench-listing-7}]=debug'); stderr, not the pipe.
        if std::env::var_os("RUST_LOG").is_some() {
            marketplace_operator::runtime::logging::init(Default::default());
        }
        return operator_process::serve(&argv[2..]).await;
    }
    let args = Args::parse();
    let mut summaries = Vec::new();
    for order in &args.orders {
        summaries.push(run(&args, *order).await?);
    }
    println!();
    println!(
        "order         usable p50   p90      p99      billed p99  calls/act  429s  writes/act  wall     wall/bound"
    );
    for s in &summaries {
        println!(
            "{:<13} {:>8.0} ms {:>6.0} ms {:>6.0} ms {:>8.0} ms {:>9.2} {:>5} {:>11.2} {:>6.1} s {:>6.2}",
            format!("{:?}", s.order),
            s.p50.as_secs_f64() * 1000.0,
            s.p90.as_secs_f64() * 1000.0,
            s.p99.as_secs_f64() * 1000.0,
            s.billed_p99.as_secs_f64() * 1000.0,
            s.calls_per,
            s.rejected,
            s.writes_per,
            s.wall.as_secs_f64(),
            s.wall.as_secs_f64() / s.bound.max(f64::EPSILON)
        );
    }
    println!("load (/proc/loadavg at the end): {}", loadavg());
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A HubSpot client for `sim`, bootstrapped; without the tier's budget when `unlimited`.
async fn hubspot_for(sim_url: String, tier: Tier, unlimited: bool) -> Result<HubSpotClient> {
    let mut config = HubSpotConfig::new(sim_url, ApiToken::new(SimConfig::default().token)?, tier);
    if unlimited {
        config.rate_limits.per_window = 1_000_000;
        config.rate_limits.search_per_second = 1_000_000;
    }
    let hubspot = HubSpotClient::new(config)?;
    hubspot.bootstrap().await?;
    Ok(hubspot)
}

async fn run(args: &Args, order: BillingOrder) -> Result<Summary> {
    let (tier, sim_tier) = marketplace_e2e::subscriptions::tiers(&args.tier)?;
    let limit = u64::from(tier.ten_second_limit());
    let total = args.tenants * args.subscriptions;

    // 1. Control plane, CRDs, simulator with latency, bootstrapped client.
    let control_plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
    control_plane
        .install_crds(&marketplace_operator::api::crds())
        .await?;
    let client = control_plane.client().await?;
    let version = client.apiserver_version().await?.git_version;
    let sim = SimProcess::start(SimSettings {
        tier: sim_tier,
        search_lag_ms: args.search_lag_ms,
        no_rate_limits: args.no_rate_limits,
    })
    .await?;
    if args.latency_ms > 0 {
        sim.add_fault(&FaultRule {
            id: 0,
            method: None,
            path_contains: None,
            kind: FaultKind::Latency {
                ms: args.latency_ms,
            },
            probability: 1.0,
            times: None,
        })
        .await?;
    }
    let settings = OperatorSettings {
        kubeconfig: control_plane.kubeconfig_path().to_path_buf(),
        sim_url: sim.base_url(),
        tier: args.tier.clone(),
        no_rate_limits: args.no_rate_limits,
        subscription_concurrency: args.subscription_concurrency,
        tenant_concurrency: args.tenant_concurrency,
        billing_order: order,
    };

    // 2. Listings, tenants, controllers; wait for the tenant namespaces.
    let listings: Api<Listing> = Api::all(client.clone());
    for i in 0..args.subscriptions {
        listings
            .create(&PostParams::default(), &listing(i)?)
            .await?;
    }
    let tenants: Api<Tenant> = Api::all(client.clone());
    let tenant_names: Vec<String> = (0..args.tenants)
        .map(|i| format!("bench-tenant-{i:03}"))
        .collect();
    let created: Vec<Result<()>> = futures::stream::iter(&tenant_names)
        .map(|name| {
            let tenants = tenants.clone();
            async move {
                tenants
                    .create(&PostParams::default(), &tenant_object(name)?)
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(args.create_concurrency)
        .collect()
        .await;
    created.into_iter().collect::<Result<Vec<()>>>()?;
    let config = settings.controller_config();
    let concurrency = config.subscription_concurrency;
    // The child makes its HubSpot client (the bootstrap calls are not counted below), then
    // starts its controllers when told.
    let mut operator = OperatorProcess::spawn(&settings).await?;
    let bootstrap_calls = operator.bootstrap_calls;
    let tenant_pass = tenant_pass::before(&client, &sim).await?;
    operator.start_controllers().await?;
    // Every Tenant Ready, failing only when none becomes Ready for the stall timeout (10,000
    // tenants take minutes).
    tenant_pass::wait_and_report(
        &client,
        &sim,
        &mut operator,
        config.tenant_concurrency,
        tenant_names.len(),
        Duration::from_secs(args.stall_timeout_s),
        tenant_pass,
    )
    .await?;
    // The operator's caches must know every tenant and listing before the first request
    // (otherwise a request could be refused as TenantNotFound/ListingNotFound); the
    // benchmark makes no others.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = operator.status().await?;
        if status.caches_ready
            && status.tenants >= tenant_names.len()
            && status.listings >= args.subscriptions
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the operator's caches after 30 s: {status:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 3. Watch, then create T×S subscriptions.
    let tracker = Arc::new(Mutex::new(Tracker {
        record_timeline: total <= TIMELINE_LIMIT,
        ..Tracker::default()
    }));
    let watching = watch(client.clone(), tracker.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes_before = apiserver_writes(&client).await?;
    let sim_before = sim.counters().await?;
    let client_before = operator.status().await?;
    let started = Instant::now();
    let creates: Vec<(String, String)> = tenant_names
        .iter()
        .flat_map(|t| {
            (0..args.subscriptions)
                .map(move |i| (format!("tenant-{t}"), format!("bench-listing-{i}")))
        })
        .collect();
    let pace = args
        .create_rate
        .map(|rate| Duration::from_secs_f64(1.0 / rate));
    let results: Vec<Result<()>> = futures::stream::iter(creates.into_iter().enumerate())
        .map(|(i, (ns, listing))| {
            let client = client.clone();
            let tracker = tracker.clone();
            let due = pace.map(|p| tokio::time::Instant::from_std(started) + p * i as u32);
            async move {
                if let Some(due) = due {
                    tokio::time::sleep_until(due).await;
                }
                let api: Api<TenantSubscription> = Api::namespaced(client, &ns);
                let object = subscription(&ns, &listing)?;
                lock(&tracker)
                    .created
                    .insert(format!("{ns}/{listing}"), Instant::now());
                api.create(&PostParams::default(), &object).await?;
                Ok(())
            }
        })
        .buffer_unordered(args.create_concurrency)
        .collect()
        .await;
    let create_errors: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    if !create_errors.is_empty() {
        return Err(format!(
            "{} creates failed, first: {}",
            create_errors.len(),
            create_errors[0]
        )
        .into());
    }
    let created_in = started.elapsed();

    // Wait for every activation and every billing record; fail when neither advances for the
    // stall timeout.
    let stall = Duration::from_secs(args.stall_timeout_s);
    let (mut done, mut last_progress) = (0usize, Instant::now());
    let (mut usable_wall, mut writes_at_usable) = (None, None);
    loop {
        // Each create is recorded before it is sent, so the watch handler checks every
        // subscription with its creation known; nothing to re-check here.
        let (activated, billed) = {
            let t = lock(&tracker);
            (t.activated.len(), t.billed.len())
        };
        if activated >= total && usable_wall.is_none() {
            usable_wall = Some(started.elapsed());
            writes_at_usable = Some(apiserver_writes(&client).await?);
        }
        if activated + billed > done {
            done = activated + billed;
            last_progress = Instant::now();
        }
        if activated >= total && billed >= total {
            break;
        }
        if last_progress.elapsed() > stall {
            stalled_report(&tracker, activated, total, stall);
            operator.stop().await?;
            return Err(format!(
                "activations stalled at {activated}/{total} active, {billed}/{total} billed"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = started.elapsed();

    let writes_at_done = apiserver_writes(&client).await?;
    let sim_after = sim.counters().await?;
    let client_after = operator.status().await?;
    // Writes that still follow the last activation (e.g. a trailing status write).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes_settled = apiserver_writes(&client).await?;
    let sim_settled = sim.counters().await?;

    // 4. Figures.
    let (mut latencies, mut billed_latencies, phases, watch_errors) = {
        let t = lock(&tracker);
        let lat: Vec<Duration> = t.activated.values().copied().collect();
        let billed: Vec<Duration> = t.billed.values().copied().collect();
        let mut paths: BTreeMap<String, usize> = BTreeMap::new();
        for p in t.phases.values() {
            let path: Vec<String> = p
                .iter()
                .map(|x| x.map_or("none".into(), |x| format!("{x:?}")))
                .collect();
            *paths.entry(path.join("→")).or_default() += 1;
        }
        (lat, billed, paths, t.watch_errors.clone())
    };
    latencies.sort();
    billed_latencies.sort();
    let n = total as f64;
    let w = writes_between(&writes_before, &writes_at_done);
    let sum = |f: &dyn Fn(&(String, String, String)) -> bool| -> u64 {
        w.iter().filter(|(k, _)| f(k)).map(|(_, v)| *v).sum()
    };
    let all = sum(&|_| true);
    let subs_create = sum(&|k| k.0 == "tenantsubscriptions" && k.1.is_empty() && k.2 == "POST");
    let subs_main = sum(&|k| k.0 == "tenantsubscriptions" && k.1.is_empty()) - subs_create;
    let subs_status = sum(&|k| k.0 == "tenantsubscriptions" && k.1 == "status");
    let ents = sum(&|k| k.0 == "entitlements");
    let events = sum(&|k| k.0 == "events");
    let other = all - subs_create - subs_main - subs_status - ents - events;
    let operator_writes = all - subs_create;
    let calls = sim_after.total_requests - sim_before.total_requests;
    let rejected = (sim_after.rate_limited_ten_secondly - sim_before.rate_limited_ten_secondly)
        + (sim_after.rate_limited_secondly - sim_before.rate_limited_secondly)
        + (sim_after.rate_limited_daily - sim_before.rate_limited_daily);
    let bound = calls as f64 * 10.0 / limit as f64;
    let latency_bound = calls as f64 * args.latency_ms as f64 / 1000.0 / f64::from(concurrency);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    println!(
        "activation benchmark: {} tenants × {} listings = {total} Instant InApp subscriptions \
         ({FEATURES} features, Flat plan), Kubernetes {version} on 127.0.0.1",
        args.tenants, args.subscriptions
    );
    println!(
        "  HubSpot: simulator (child process) on {}, tier {} ({limit} req/10 s), +{} ms latency on every \
         request, search lag {} ms; bootstrap {bootstrap_calls} calls (not counted below)",
        sim.base_url(),
        args.tier,
        args.latency_ms,
        args.search_lag_ms
    );
    println!(
        "  operator: Tenant + TenantSubscription controllers in a child process, subscription concurrency {concurrency}, billing order {order:?}{}",
        if args.no_rate_limits {
            ", HubSpot rate limits lifted (simulator and client)"
        } else {
            ""
        }
    );
    println!(
        "  subscriptions created     {total:>8}   (creates took {:.2} s{})",
        created_in.as_secs_f64(),
        args.create_rate
            .map(|r| format!(", paced at {r} per second"))
            .unwrap_or_default()
    );
    println!(
        "  total wall time           {:>8.2} s  (all usable after {:.2} s, all billed after {:.2} s)",
        wall.as_secs_f64(),
        usable_wall.unwrap_or(wall).as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "  activations/s             {:>8.2}",
        n / wall.as_secs_f64()
    );
    println!(
        "  create → Active, entitlements usable: p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0))
    );
    println!(
        "  create → Billed (record live): p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        ms(percentile(&billed_latencies, 0.50)),
        ms(percentile(&billed_latencies, 0.90)),
        ms(percentile(&billed_latencies, 0.99)),
        ms(percentile(&billed_latencies, 1.0))
    );
    println!(
        "  apiserver writes (POST/PUT/PATCH/DELETE, leases excluded): {all} total, {subs_create} \
         subscription creates by the benchmark, {operator_writes} by the operator = {:.2} per activation",
        operator_writes as f64 / n
    );
    println!(
        "    tenantsubscriptions     {:>8}  ({:.2}/activation; {subs_main} object, {subs_status} status)",
        subs_main + subs_status,
        (subs_main + subs_status) as f64 / n
    );
    println!(
        "    entitlements            {ents:>8}  ({:.2}/activation)",
        ents as f64 / n
    );
    println!(
        "    events                  {events:>8}  ({:.2}/activation)",
        events as f64 / n
    );
    println!(
        "    other                   {other:>8}  ({:.2}/activation)",
        other as f64 / n
    );
    for ((resource, sub, verb), count) in &w {
        let sub = if sub.is_empty() {
            String::new()
        } else {
            format!("/{sub}")
        };
        println!("      {verb:<6} {resource}{sub}: {count}");
    }
    let trailing = writes_between(&writes_at_done, &writes_settled);
    let trailing_total: u64 = trailing.values().sum();
    println!(
        "    writes in the 3 s after the last activation: {trailing_total} {:?}; HubSpot calls: {}",
        trailing,
        sim_settled.total_requests - sim_after.total_requests
    );
    println!(
        "  HubSpot calls             {calls:>8}  ({:.2}/activation; client counted {}, retries {})",
        calls as f64 / n,
        client_after.hubspot_requests - client_before.hubspot_requests,
        client_after.hubspot_retries - client_before.hubspot_retries
    );
    let mut routes: Vec<(String, u64)> = sim_after
        .requests_per_route
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v - sim_before.requests_per_route.get(k).copied().unwrap_or(0),
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (route, count) in &routes {
        println!(
            "      {count:>7} ({:.2}/activation) {route}",
            *count as f64 / n
        );
    }
    println!(
        "  429s received             {rejected:>8}  (client saw {}); max requests in any 10 s: {} (limit {limit})",
        client_after.hubspot_rate_limited - client_before.hubspot_rate_limited,
        sim_after.max_requests_in_any_10s_window
    );
    let mib = |kib: Option<u64>| kib.unwrap_or(0) as f64 / 1024.0;
    println!(
        "  operator peak RSS (VmHWM) {:>8.1} MiB  (its own process; the benchmark's bookkeeping \
         {:.1} MiB, the simulator {:.1} MiB, apiserver and etcd are other processes)",
        mib(operator.peak_rss_kib()),
        mib(peak_rss_kib()),
        mib(sim.peak_rss_kib())
    );
    println!("  the operator's caches: {}", operator.caches().await?);
    println!(
        "  rate-budget lower bound   {bound:>8.2} s  ({calls} calls ÷ {limit}/10 s); wall/bound {:.2}",
        wall.as_secs_f64() / bound.max(f64::EPSILON)
    );
    // A rolling window that starts empty lets the first `limit` calls go at once: request k
    // cannot leave before ⌊k/limit⌋·10 s (as bench-billing states its bound).
    let window_bound = calls.saturating_sub(1) / limit * 10;
    if window_bound > 0 {
        println!(
            "  (window-exact bound, first {limit} calls free: {window_bound} s; wall/that {:.2})",
            wall.as_secs_f64() / window_bound as f64
        );
    } else {
        println!(
            "  (window-exact bound, first {limit} calls free: 0 s: every call fits one window)"
        );
    }
    println!(
        "  latency lower bound       {latency_bound:>8.2} s  ({calls} calls × {} ms ÷ {concurrency} reconciles in parallel)",
        args.latency_ms
    );
    println!("  phase paths seen by the watch: {phases:?}");
    print_slowest(&tracker);
    if !watch_errors.is_empty() {
        println!(
            "  watch errors: {} (first: {})",
            watch_errors.len(),
            watch_errors[0]
        );
    }
    // Warning Events the operator recorded (evidence of retries or refusals).
    let events_api: Api<k8s_openapi::api::events::v1::Event> = Api::all(client.clone());
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for_each_page(&events_api, |page| {
        for e in page {
            if e.reporting_controller.as_deref()
                == Some(marketplace_operator::controllers::status::OPERATOR_MANAGER)
            {
                let count = e.series.as_ref().map_or(1, |s| s.count.max(1) as u64);
                *reasons
                    .entry(format!(
                        "{} {}",
                        e.type_.unwrap_or_default(),
                        e.reason.unwrap_or_default()
                    ))
                    .or_default() += count;
            }
        }
    })
    .await?;
    println!("  operator Events by type and reason: {reasons:?}");

    // 5. Stop (restarting first, when asked).
    watching.abort();
    operator.stop().await?;
    if order == BillingOrder::EntitleFirst
        && let (Some(usable), Some(at_usable)) = (usable_wall, writes_at_usable)
    {
        // Everything written until the last purchase was usable, the benchmark's creates too.
        let writes: u64 = writes_between(&writes_before, &at_usable).values().sum();
        let rate = write_rate::measure(&client, total.min(1000), args.create_concurrency).await?;
        let bound = writes as f64 / rate;
        println!(
            "  apiserver-write lower bound for all usable {bound:>8.2} s  ({writes} writes until \
             the last was usable ÷ {rate:.0} writes/s, the apiserver's rate here: {} Entitlement \
             creates, {} at once, operator stopped); all usable after {:.2} s = {:.2} × the bound",
            total.min(1000),
            args.create_concurrency,
            usable.as_secs_f64(),
            usable.as_secs_f64() / bound.max(f64::EPSILON)
        );
    }
    if args.restart {
        restart::measure(&client, &sim, &settings, args.tenants, total).await?;
    }
    println!("  load (/proc/loadavg): {}", loadavg());
    sim.stop().await?;
    drop(control_plane);
    Ok(Summary {
        order,
        p50: percentile(&latencies, 0.50),
        p90: percentile(&latencies, 0.90),
        p99: percentile(&latencies, 0.99),
        billed_p99: percentile(&billed_latencies, 0.99),
        calls_per: calls as f64 / n,
        rejected,
        writes_per: operator_writes as f64 / n,
        wall,
        bound,
    })
}

/// Every object of `api`, listed and handed to `f` a page at a time (a scale run's 50,000
/// Events held at once would weigh on the RSS measured).
async fn for_each_page<K>(api: &Api<K>, mut f: impl FnMut(Vec<K>)) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        f(page.items);
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// Prints what the watches saw of the subscription that became usable last, from its create.
fn print_slowest(tracker: &Arc<Mutex<Tracker>>) {
    let t = lock(tracker);
    let Some((key, usable)) = t.activated.iter().max_by_key(|(_, d)| **d) else {
        return;
    };
    let Some(created) = t.created.get(key) else {
        return;
    };
    if !t.record_timeline {
        println!(
            "  the last to become usable, {key} ({:.2} s); no timeline above {TIMELINE_LIMIT} subscriptions",
            usable.as_secs_f64()
        );
        return;
    }
    println!(
        "  the last to become usable, {key} ({:.2} s), as the watches saw it:",
        usable.as_secs_f64()
    );
    for (at, seen) in t.timeline.get(key).into_iter().flatten() {
        let offset = at.saturating_duration_since(*created).as_secs_f64();
        println!("    +{offset:>7.3} s  {seen}");
    }
}

/// Prints which subscriptions did not activate, by phase, with a few examples.
fn stalled_report(tracker: &Arc<Mutex<Tracker>>, done: usize, total: usize, stall: Duration) {
    let t = lock(tracker);
    let mut by_phase: BTreeMap<String, usize> = BTreeMap::new();
    let mut examples = Vec::new();
    for k in t.created.keys().filter(|k| !t.activated.contains_key(*k)) {
        let (phase, granted, ready) = t.subs.get(k).cloned().unwrap_or((None, 0, String::new()));
        *by_phase.entry(format!("{phase:?}")).or_default() += 1;
        if examples.len() < 5 {
            let ents = t.ents.get(k).cloned().unwrap_or_default();
            examples.push(format!(
                "    {k}: phase {phase:?}, status.entitlements {granted}, Entitlements {ents:?}, Ready {ready:?}"
            ));
        }
    }
    eprintln!(
        "bench-activation: STALLED: no subscription activated for {}s; {done}/{total} active; \
         not active by phase: {by_phase:?}\n{}",
        stall.as_secs(),
        examples.join("\n")
    );
}

//! Alerts and the dashboard: the chart's PrometheusRule is `deploy/prometheus-rules.yaml`,
//! `promtool check rules` accepts it and `promtool test rules` runs its unit tests (each alert
//! fires on its failure, none on a healthy hour), every alert names a runbook section of the
//! chart's README (README.md's runbooks, shipped with the chart), the Grafana dashboard is well
//! formed, and every metric the rules and the dashboard query is one the operator (or the API)
//! exports. Then Debian's Prometheus, on loopback, scrapes a running
//! operator (controllers against the real control plane, billing against the simulator) and a
//! badly signed webhook makes `MarketplaceForgedWebhooks` fire.
//!
//! Tests that need helm or Prometheus skip, saying so, when they are not installed
//! (`scripts/install-helm`, `scripts/install-prometheus`; `scripts/test` runs both); under CI
//! (`MARKETPLACE_REQUIRE_TEST_TOOLS`, which `.ci/run` sets) they fail instead.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kube::Api;
use marketplace_e2e::api_process::{api_settings, start_api};
use marketplace_e2e::controllers::{self, OperatorWorld};
use marketplace_e2e::helm::{Helm, chart_dir};
use marketplace_e2e::subscriptions::{CONVERGED, apply, phase_of};
use marketplace_e2e::{eventually, skip_unless_required, unique_name, workspace_root};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Listing, Tenant, TenantSubscription};
use marketplace_operator::controllers::{ControllerConfig, Enabled};
use marketplace_operator::text::percent_encode;
use serde_json::{Value, json};

/// The plain rule file kept equal to the chart's default rendering.
const RULE_FILE: &str = "deploy/prometheus-rules.yaml";
/// promtool's unit tests of [`RULE_FILE`].
const RULE_TESTS: &str = "deploy/prometheus-rules.test.yaml";
/// Set to write [`RULE_FILE`] from the chart instead of comparing.
const WRITE_RULES_ENV: &str = "MARKETPLACE_WRITE_RULES";
/// Environment variable naming a folder with `prometheus` and `promtool`.
const PROMETHEUS_BIN_ENV: &str = "MARKETPLACE_PROMETHEUS_BIN";
const DASHBOARD: &str = "dashboards/marketplace.json";
/// The chart's README: the runbooks the alerts name, shipped with every copy of the chart.
const CHART_README: &str = "README.md";
/// What the chart's README says before the runbooks (copied from README.md's "Runbooks").
const CHART_README_HEAD: &str = "# The marketplace chart's runbooks

<!-- Generated from README.md's \"Runbooks\" section by
MARKETPLACE_WRITE_RULES=1 cargo test -p marketplace-e2e --test monitoring; edit README.md. -->

Installing, upgrading and operating the marketplace are described in the project's README.md
(\"Installing on a cluster\", \"Operating it\"). This file travels with the chart (`helm show
readme`) so that the runbooks of the installed version are at hand: each alert's `runbook`
annotation names its section below (`metrics.prometheusRule.runbookBaseUrl` turns that into a
`runbook_url` to a copy of the README you serve).

";

/// `name` (prometheus, promtool) in [`PROMETHEUS_BIN_ENV`], else where
/// `scripts/install-prometheus --print-dir` says; `None` after saying why `test` is skipped
/// (under CI a missing tool fails it instead).
fn prometheus_tool(name: &str, test: &str) -> Option<PathBuf> {
    let located = locate_prometheus_tool(name);
    if let Err(why) = &located {
        skip_unless_required(test, why);
    }
    located.ok()
}

fn locate_prometheus_tool(name: &str) -> Result<PathBuf, String> {
    let dir = match std::env::var_os(PROMETHEUS_BIN_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let script = workspace_root().join("scripts/install-prometheus");
            let output = Command::new(&script)
                .arg("--print-dir")
                .output()
                .map_err(|e| format!("running {} --print-dir: {e}", script.display()))?;
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        }
    };
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} does not exist: run scripts/install-prometheus, or set {PROMETHEUS_BIN_ENV}",
            path.display()
        ))
    }
}

/// The chart's rule groups (the PrometheusRule's spec), rendered with `extra` arguments.
fn chart_rules(helm: &Helm, extra: &[&str]) -> Value {
    let mut all = vec!["--set", "metrics.prometheusRule.enabled=true"];
    all.extend_from_slice(extra);
    let rendering = helm.template_with(None, &all);
    let rule = rendering
        .of_kind("PrometheusRule")
        .next()
        .expect("the chart renders a PrometheusRule");
    rule["spec"].clone()
}

fn rules(spec: &Value) -> Vec<&Value> {
    spec["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .collect()
}

#[test]
fn the_rule_file_is_the_charts_rules() {
    let Some(helm) = Helm::for_test("the_rule_file_is_the_charts_rules") else {
        return;
    };
    let spec = chart_rules(&helm, &[]);
    let path = workspace_root().join(RULE_FILE);
    if std::env::var_os(WRITE_RULES_ENV).is_some() {
        let yaml = serde_saphyr::to_string(&spec).expect("YAML");
        let header = format!(
            "# The marketplace operator's alerts as a Prometheus rule file, for a Prometheus not run by\n\
             # the Prometheus Operator. Generated from charts/marketplace (defaults: job\n\
             # marketplace-operator in marketplace-system); do not edit: change\n\
             # charts/marketplace/templates/monitoring/_rules.tpl, then run\n\
             # {WRITE_RULES_ENV}=1 cargo test -p marketplace-e2e --test monitoring\n"
        );
        std::fs::write(&path, header + &yaml).expect("write the rule file");
    }
    let committed = marketplace_e2e::yaml_documents(&path);
    assert_eq!(
        committed,
        vec![spec],
        "{RULE_FILE} differs from the chart's rules: run {WRITE_RULES_ENV}=1 cargo test -p marketplace-e2e --test monitoring"
    );
}

#[test]
fn promtool_accepts_the_rules() {
    let Some(promtool) = prometheus_tool("promtool", "promtool_accepts_the_rules") else {
        return;
    };
    let output = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(workspace_root().join(RULE_FILE))
        .output()
        .expect("promtool runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "promtool check rules:\n{text}");
    assert!(text.contains("SUCCESS: 9 rules found"), "{text}");
    // The alerts' logic: each fires on its failure after its `for`, none on a healthy hour.
    let output = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(workspace_root().join(RULE_TESTS))
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool test rules {RULE_TESTS}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// GitHub's anchor of a README heading: lower case, spaces to dashes, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn heading_anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// README.md's "Runbooks" section: from its heading to the next heading of its level.
fn readme_runbooks() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");
    let start = readme
        .find("\n### Runbooks\n")
        .expect("README has ### Runbooks")
        + 1;
    let rest = &readme[start..];
    let end = rest[1..].find("\n### ").map_or(rest.len(), |i| i + 2);
    format!("{}\n", rest[..end].trim_end())
}

#[test]
fn the_charts_readme_carries_the_readmes_runbooks() {
    let path = chart_dir().join(CHART_README);
    let expected = format!("{CHART_README_HEAD}{}", readme_runbooks());
    if std::env::var_os(WRITE_RULES_ENV).is_some() {
        std::fs::write(&path, &expected).expect("write the chart's README");
    }
    let committed = std::fs::read_to_string(&path).expect("the chart's README");
    assert!(
        committed == expected,
        "charts/marketplace/{CHART_README} is not README.md's Runbooks section: run {WRITE_RULES_ENV}=1 cargo test -p marketplace-e2e --test monitoring"
    );
}

#[test]
fn every_alert_names_a_runbook_section_of_the_charts_readme() {
    let chart_readme = std::fs::read_to_string(chart_dir().join(CHART_README)).expect("README");
    let anchors = heading_anchors(&chart_readme);
    let spec = &marketplace_e2e::yaml_documents(&workspace_root().join(RULE_FILE))[0];
    let alerts = rules(spec);
    assert!(alerts.len() >= 9, "{alerts:?}");
    for rule in alerts {
        let name = rule["alert"].as_str().expect("alert name");
        let runbook = rule["annotations"]["runbook"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no runbook annotation"));
        let fragment = name.to_lowercase();
        assert!(
            runbook.starts_with(&format!("README.md#{fragment} of chart marketplace-")),
            "{name}: {runbook}"
        );
        assert!(
            anchors.contains(&fragment),
            "{name}: the chart's {CHART_README} has no section #{fragment}"
        );
        for key in ["summary", "description"] {
            assert!(rule["annotations"][key].is_string(), "{name}: {key}");
        }
        assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
    }
}

#[test]
fn a_runbook_base_url_gives_every_alert_a_runbook_url() {
    let Some(helm) = Helm::for_test("a_runbook_base_url_gives_every_alert_a_runbook_url") else {
        return;
    };
    let base = "https://git.example.com/platform/marketplace-operator/blob/v0.1.0/README.md";
    let spec = chart_rules(
        &helm,
        &[
            "--set",
            &format!("metrics.prometheusRule.runbookBaseUrl={base}"),
        ],
    );
    for rule in rules(&spec) {
        let name = rule["alert"].as_str().expect("alert name");
        let annotations = &rule["annotations"];
        assert_eq!(
            annotations["runbook_url"].as_str(),
            Some(format!("{base}#{}", name.to_lowercase()).as_str()),
            "{name}"
        );
        assert!(
            annotations.get("runbook").is_none(),
            "{name}: {annotations}"
        );
    }
}

/// Sample names of an OpenMetrics exposition, from its `# TYPE` lines: a counter `x` is sampled
/// as `x_total`, a histogram as `x_bucket`, `x_sum` and `x_count`.
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The marketplace metric names a PromQL expression reads.
fn queried(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        if word.starts_with("marketplace_") {
            names.insert(std::mem::take(&mut word));
        }
        word.clear();
    }
    names
}

fn dashboard() -> Value {
    let path = chart_dir().join(DASHBOARD);
    let text = std::fs::read_to_string(&path).expect("the dashboard");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every PromQL expression of the dashboard (panel targets and template variable queries).
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            out.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if variable["type"] == "query" {
            out.push(variable["query"].as_str().expect("query").to_string());
        }
    }
    out
}

#[test]
fn the_dashboard_is_well_formed_and_shipped_by_the_chart() {
    let dashboard = dashboard();
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("every panel has a title");
        assert!(ids.insert(panel["id"].as_u64().expect("id")), "{title}: id");
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no targets");
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            assert!(!queried(expr).is_empty(), "{title}: {expr} reads no metric");
        }
    }
    let Some(helm) = Helm::for_test("the_dashboard_is_shipped_by_the_chart") else {
        return;
    };
    let rendering = helm.template_with(None, &["--set", "metrics.grafanaDashboard.enabled=true"]);
    let map = rendering
        .of_kind("ConfigMap")
        .find(|c| c["metadata"]["labels"]["grafana_dashboard"] == "1")
        .expect("a ConfigMap labelled grafana_dashboard=1");
    let shipped: Value = serde_json::from_str(
        map["data"]["marketplace.json"]
            .as_str()
            .expect("the dashboard key"),
    )
    .expect("the shipped dashboard is JSON");
    assert_eq!(shipped, dashboard);
}

/// Every marketplace metric the rules and the dashboard read, with where it is read.
fn metrics_read() -> Vec<(String, String)> {
    let spec = &marketplace_e2e::yaml_documents(&workspace_root().join(RULE_FILE))[0];
    let mut read = Vec::new();
    for rule in rules(spec) {
        let expr = rule["expr"].as_str().expect("expr");
        for name in queried(expr) {
            read.push((name, format!("alert {}", rule["alert"])));
        }
    }
    for expr in dashboard_queries(&dashboard()) {
        for name in queried(&expr) {
            read.push((name, format!("dashboard: {expr}")));
        }
    }
    read
}

/// A Published listing (3 vehicles × 12.00 USD a month), a Tenant and an Active subscription
/// to it; returns the listing's name.
async fn subscribe(client: &kube::Client) -> String {
    let listing = unique_name("watched");
    apply(
        &Api::<Listing>::all(client.clone()),
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing", "metadata": {"name": listing},
               "spec": {"displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
                        "category": "Operations", "lifecycle": "Published",
                        "features": ["route_optimization"],
                        "plans": [{"name": "standard", "displayName": "Standard",
                                   "pricing": {"model": "PerUnit", "amount": "12.00", "currency": "USD",
                                               "interval": "Month", "unit": "vehicle"}}]}}),
    )
    .await;
    let tenant = unique_name("watched");
    let tenants: Api<Tenant> = Api::all(client.clone());
    apply(
        &tenants,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": tenant},
               "spec": {"displayName": "Acme Logistics", "basePlan": "Professional",
                        "billingContact": {"name": "Ann Example", "email": "ann@acme.example"}}}),
    )
    .await;
    let namespace = eventually("the tenant namespace", CONVERGED, || async {
        tenants.get(&tenant).await.ok()?.status?.namespace
    })
    .await;
    let subs: Api<TenantSubscription> = Api::namespaced(client.clone(), &namespace);
    apply(
        &subs,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
               "metadata": {"name": "routes", "namespace": namespace},
               "spec": {"listing": listing, "plan": "standard", "quantity": 3}}),
    )
    .await;
    phase_of(&subs, "routes", Phase::Active).await;
    listing
}

/// A free loopback port (for a child process to listen on).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Debian's Prometheus on loopback with its own data folder; killed when dropped.
struct Prometheus {
    child: tokio::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(binary: &std::path::Path, target: std::net::SocketAddr, rules: &Value) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // JSON is YAML: the rule groups as rendered.
        std::fs::write(dir.path().join("rules.yml"), rules.to_string()).expect("rules");
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [rules.yml]\n\
             scrape_configs:\n\
             - job_name: marketplace-operator\n  static_configs: [{{targets: ['{target}']}}]\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("config");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = tokio::process::Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let res = reqwest::get(format!("{}{path}", self.base)).await.ok()?;
        res.json().await.ok()
    }

    /// The alerts in `state` (pending, firing) by name.
    async fn alerts(&self, state: &str) -> BTreeSet<String> {
        let Some(answer) = self.get("/api/v1/alerts").await else {
            return BTreeSet::new();
        };
        answer["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == state)
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[tokio::test]
async fn prometheus_fires_the_forged_webhook_alert_against_a_running_operator() {
    let test = "prometheus_fires_the_forged_webhook_alert";
    let (Some(helm), Some(prometheus)) =
        (Helm::for_test(test), prometheus_tool("prometheus", test))
    else {
        return;
    };
    let started = Instant::now();
    // The rules as the chart renders them for a plain Prometheus whose job is the operator.
    let rules = chart_rules(
        &helm,
        &[
            "--set-string",
            r#"metrics.prometheusRule.selector=job="marketplace-operator""#,
        ],
    );

    // A running operator: controllers against the real control plane, billing against the
    // simulator, its endpoint (metrics, webhooks) on loopback, leading as the process does.
    let world = OperatorWorld::start().await;
    let client = world.client.clone();
    // And the API process beside it (its /readyz answered: its request metrics have a series).
    let api = start_api(
        world.control_plane,
        api_settings(Duration::from_secs(1), &world.operator_namespace),
    )
    .await;
    let ctx = Arc::new(world.context(
        "e2e-monitoring",
        ControllerConfig {
            audit_interval: Duration::from_secs(5),
            ..ControllerConfig::default()
        },
    ));
    let endpoint = world.webhook_endpoint(&ctx).await;

    let enabled = Enabled {
        billing_audit: true,
        ..Enabled::TENANTS_AND_SUBSCRIPTIONS
    };
    ctx.metrics.set_leader(true);
    let running = controllers::start(ctx.clone(), enabled);

    // Every metric the rules and the dashboard read is in a real scrape of the operator or
    // of the API.
    ctx.stores.wait_until_ready().await;
    let scrape = |url: String| async move {
        reqwest::get(url)
            .await
            .expect("scrape")
            .text()
            .await
            .expect("metrics text")
    };
    let mut names = exported(&scrape(format!("http://{}/metrics", endpoint.addr)).await);
    names.extend(exported(&scrape(format!("{}/metrics", api.base)).await));
    let missing: Vec<String> = metrics_read()
        .into_iter()
        .filter(|(name, _)| !names.contains(name))
        .map(|(name, place)| format!("{name} (read by {place})"))
        .collect();
    assert!(
        missing.is_empty(),
        "not exported:\n  {}\nexported: {names:?}",
        missing.join("\n  ")
    );

    let prometheus = Prometheus::start(&prometheus, endpoint.addr, &rules).await;
    eventually(
        "Prometheus to scrape the operator",
        Duration::from_secs(60),
        || async {
            let up = prometheus.get("/api/v1/query?query=up").await?;
            let value = up["data"]["result"][0]["value"][1].as_str()?.to_string();
            (value == "1").then_some(())
        },
    )
    .await;
    let quiet = prometheus.alerts("firing").await;
    assert!(
        quiet.is_empty(),
        "firing before anything happened: {quiet:?}"
    );

    // A subscription bought and activated shows on the dashboard's series: counted by listing
    // and phase, priced in the MRR, timed from creation to Active.
    let listing = subscribe(&client).await;
    let query = |promql: String| {
        let prometheus = &prometheus;
        async move {
            let path = format!("/api/v1/query?query={}", percent_encode(&promql));
            let answer = prometheus.get(&path).await?;
            answer["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_string)
        }
    };
    for (promql, want) in [
        (
            format!(r#"marketplace_subscriptions{{listing="{listing}",phase="Active"}}"#),
            "1",
        ),
        (
            format!(
                r#"marketplace_monthly_recurring_revenue{{listing="{listing}",currency="USD"}}"#
            ),
            "36",
        ),
        (
            "marketplace_activation_duration_seconds_count".to_string(),
            "1",
        ),
    ] {
        eventually(
            &format!("{promql} = {want}"),
            Duration::from_secs(30),
            || async { (query(promql.clone()).await.as_deref() == Some(want)).then_some(()) },
        )
        .await;
    }

    // A webhook with a bad signature: refused, counted as forged, and the alert fires.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_millis() as i64;
    let refused = reqwest::Client::new()
        .post(format!("http://{}/webhooks/hubspot", endpoint.addr))
        .header("Content-Type", "application/json")
        .header("X-HubSpot-Signature-v3", "Zm9yZ2VkIHNpZ25hdHVyZQ==")
        .header("X-HubSpot-Signature-Version", "v3")
        .header("X-HubSpot-Request-Timestamp", now_ms.to_string())
        .body("[]")
        .send()
        .await
        .expect("the forged webhook is answered");
    assert_eq!(refused.status(), 401);
    let fired_after = Instant::now();
    let firing = eventually(
        "MarketplaceForgedWebhooks to fire",
        Duration::from_secs(60),
        || async {
            let firing = prometheus.alerts("firing").await;
            firing
                .contains("MarketplaceForgedWebhooks")
                .then_some(firing)
        },
    )
    .await;
    eprintln!(
        "monitoring: firing {firing:?} {:?} after the forged webhook",
        fired_after.elapsed()
    );
    assert_eq!(
        firing,
        BTreeSet::from(["MarketplaceForgedWebhooks".to_string()]),
        "only the forged-webhook alert fires; Prometheus log:\n{}",
        prometheus.log()
    );

    prometheus.stop().await;
    drop(api);
    endpoint.stop().await;
    running.stop().await;
    eprintln!("monitoring e2e took {:?}", started.elapsed());
}

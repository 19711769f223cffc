//! `kubectl marketplace` through the real kubectl (the one `scripts/install-control-plane`
//! builds), which finds the plugin on PATH, against a real control plane with the real
//! `marketplace operator` running: an approval subscription is walked up the ladder with the
//! plugin (a step that does not fit is Refused, exit code 1), and the inbox, a tenant's status,
//! the drift report and catalog lint print as tables and as JSON.

mod process_support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use kube::api::{Api, PostParams};
use marketplace_operator::api::Listing;
use marketplace_operator::api::tenant_subscription::Phase;
use process_support::{Env, TENANT, eventually};
use serde_json::{Value, json};

/// Runs `kubectl marketplace <args>` with the plugin on PATH and the control plane's kubeconfig.
async fn plugin(env: &Env, args: &[&str]) -> Output {
    let plugin = Path::new(env!("CARGO_BIN_EXE_kubectl-marketplace"));
    let path = format!(
        "{}:{}",
        plugin.parent().expect("target dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = env.control_plane.kubectl();
    command.arg("marketplace").args(args).env("PATH", path);
    // Off the async threads: the operator's process answers on its own, but the test's
    // runtime stays free.
    tokio::task::spawn_blocking(move || command.output().expect("kubectl runs"))
        .await
        .expect("kubectl")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn json_of(env: &Env, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let output = plugin(env, &all).await;
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output)))
}

/// Runs a ladder step; asserts its exit code and that it prints `result`.
async fn step(env: &Env, args: &[&str], result: &str, code: i32) -> String {
    let output = plugin(env, args).await;
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(code), "{printed}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(result),
        "{printed}"
    );
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superadmin_walks_the_ladder_with_kubectl_marketplace() {
    let started = std::time::Instant::now();
    let env = Env::start("kubectl_plugin").await;
    let mut operator = env.spawn_operator_with(
        "plugin-op",
        None,
        &[("MARKETPLACE_AUDIT_INTERVAL_SECONDS", "2")],
    );
    env.create_tenant().await;
    let listing: Listing = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing",
        "metadata": {"name": "analytics"},
        "spec": {"displayName": "Premium Analytics", "tagline": "Dashboards on request.",
            "type": "InApp", "category": "Analytics", "lifecycle": "Published",
            "activation": "Approval", "features": ["premium_analytics"],
            "plans": [{"name": "basic", "displayName": "Business",
                "pricing": {"model": "Flat", "amount": "499.00", "currency": "USD", "interval": "Month"}}]}
    }))
    .expect("a Listing");
    Api::<Listing>::all(env.client.clone())
        .create(&PostParams::default(), &listing)
        .await
        .expect("listing");
    env.create_subscription("analytics", "analytics").await;
    env.wait_phase("analytics", Phase::Requested, Duration::from_secs(60))
        .await;

    // The inbox offers the first step, as JSON and as a table.
    let target = format!("{TENANT}/analytics");
    let item = eventually(
        "the inbox offers Invoice",
        Duration::from_secs(60),
        || async {
            let items = json_of(&env, &["inbox"]).await;
            items
                .as_array()?
                .iter()
                .find(|i| i["subscription"] == "analytics" && i["actions"][0] == "Invoice")
                .cloned()
        },
    )
    .await;
    assert_eq!(item["price"], "$499.00/mo", "{item}");
    let table = plugin(&env, &["inbox"]).await;
    let shown = String::from_utf8_lossy(&table.stdout).into_owned();
    eprintln!("kubectl marketplace inbox\n{shown}");
    assert!(
        shown.starts_with("SUBSCRIPTION") && shown.contains(&target) && shown.contains("Requested"),
        "{}",
        text(&table)
    );

    // Up the ladder; a step that does not fit is Refused with the reason, exit code 1.
    let refused = step(&env, &["approve", &target], "Refused", 1).await;
    eprintln!("kubectl marketplace approve {target}\n{refused}");
    assert!(refused.contains("Requested"), "{refused}");
    let usage = plugin(&env, &["invoice", &target]).await;
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
    assert!(text(&usage).contains("--amount"), "{}", text(&usage));
    step(
        &env,
        &[
            "invoice",
            &target,
            "--amount",
            "499.00",
            "--currency",
            "USD",
        ],
        "Accepted",
        0,
    )
    .await;
    // The same idempotency key twice: one action, the same answer.
    for _ in 0..2 {
        step(
            &env,
            &["mark-paid", &target, "--idempotency-key", "paid-1"],
            "Accepted",
            0,
        )
        .await;
    }
    step(
        &env,
        &["approve", &target, "--reason", "contract signed"],
        "Accepted",
        0,
    )
    .await;
    env.wait_phase("analytics", Phase::Active, Duration::from_secs(60))
        .await;

    // The tenant as support sees it.
    let status = json_of(&env, &["status", TENANT]).await;
    let sub = &status["subscriptions"][0];
    assert_eq!(
        (&sub["name"], &sub["phase"]),
        (&json!("analytics"), &json!("Active")),
        "{status}"
    );
    assert!(sub["hubspot"]["dealId"].is_string(), "{status}");
    assert_eq!(status["entitlements"][0]["feature"], "premium_analytics");
    let table = plugin(&env, &["status", TENANT]).await;
    let shown = String::from_utf8_lossy(&table.stdout).into_owned();
    eprintln!("kubectl marketplace status {TENANT}\n{shown}");
    assert!(
        shown.contains("analytics")
            && shown.contains("Active")
            && shown.contains("premium_analytics"),
        "{}",
        text(&table)
    );
    let yaml = plugin(&env, &["status", TENANT, "-o", "yaml"]).await;
    let parsed: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&yaml.stdout))
        .unwrap_or_else(|e| panic!("{e}: {}", text(&yaml)));
    // The same data as -o json (the audit keeps moving conditions and times: compare the rest).
    for field in ["tenant", "hubspotCompanyId", "entitlements"] {
        assert_eq!(parsed[field], status[field], "{field}: {}", text(&yaml));
    }
    assert_eq!(
        parsed["subscriptions"][0]["hubspot"],
        sub["hubspot"],
        "{}",
        text(&yaml)
    );
    let empty = json_of(&env, &["inbox"]).await;
    assert_eq!(empty, json!([]), "nothing waits any more");

    // The drift report, once an audit has run (exit code 0: in sync).
    let drift = eventually("a drift report", Duration::from_secs(30), || async {
        let output = plugin(&env, &["drift"]).await;
        output.status.success().then_some(output)
    })
    .await;
    assert!(
        String::from_utf8_lossy(&drift.stdout).contains("last audit"),
        "{}",
        text(&drift)
    );

    // Lint, offline.
    let catalog = marketplace_harness::binaries::workspace_root().join("catalog");
    let lint = plugin(&env, &["lint", catalog.to_str().expect("UTF-8")]).await;
    assert!(lint.status.success(), "{}", text(&lint));

    assert!(operator.running(), "{}", env.log_tails());
    operator.kill().await;
    eprintln!("kubectl plugin: {:.1}s", started.elapsed().as_secs_f64());
}

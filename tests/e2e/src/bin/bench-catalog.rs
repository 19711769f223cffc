//! `bench-catalog`: a 1,000-listing catalog in a git repository, synced to a real control plane.
//! Prints lint time, first sync, re-sync of an unchanged revision (with the API writes it made,
//! which should be 0) and a sync after changing 10 listings. Writes are counted by the apiserver
//! itself (`apiserver_request_total`), not by the operator.
//!
//!   scripts/bench-catalog [LISTINGS]     (release build; default 1000)

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, PostParams};
use marketplace_e2e::example;
use marketplace_harness::apiserver_samples;
use marketplace_harness::{ControlPlane, ControlPlaneOptions};
use marketplace_operator::api::catalog_source::CatalogSource;
use marketplace_operator::catalog::SourceFile;
use marketplace_operator::catalog::lint::{LintOptions, lint};
use marketplace_operator::controllers::{Context, ControllerConfig, catalog_source};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let listings: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1000);
    let control_plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
    control_plane
        .install_crds(&marketplace_operator::api::crds())
        .await?;
    let client = control_plane.client().await?;
    let namespace = control_plane.create_namespace("bench-catalog").await?;

    let repo = tempfile::tempdir()?;
    git(repo.path(), &["init", "-q", "-b", "main"])?;
    git(repo.path(), &["config", "user.email", "bench@example.com"])?;
    git(repo.path(), &["config", "user.name", "Bench"])?;
    for i in 0..listings {
        write_listing(
            repo.path(),
            i,
            "Plan the fastest multi-stop routes for every driver, every morning.",
        )?;
    }
    git(repo.path(), &["add", "-A"])?;
    git(repo.path(), &["commit", "-q", "-m", "catalog"])?;

    // Lint, in-process, as the CLI and the operator run it.
    let files = read_files(&repo.path().join("catalog"))?;
    let started = Instant::now();
    let report = lint(&files, &LintOptions::default());
    let lint_time = started.elapsed();
    if report.has_errors() {
        return Err(format!(
            "the generated catalog has {} lint errors",
            report.error_count()
        )
        .into());
    }

    let config = ControllerConfig {
        namespace: namespace.clone(),
        git_timeout: Duration::from_secs(120),
        git_cache_dir: repo.path().join("../bench-catalog-cache"),
        catalog_concurrency: 1,
        tenant_concurrency: 1,
        ..ControllerConfig::default()
    };
    let ctx = Arc::new(marketplace_e2e::controllers::context(
        &client, config, "bench",
    ));
    let sources: Api<CatalogSource> = Api::namespaced(client.clone(), &namespace);
    let source: CatalogSource = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "CatalogSource",
        "metadata": { "name": "bench", "namespace": namespace },
        "spec": { "url": format!("file://{}", repo.path().display()), "ref": { "branch": "main" }, "path": "catalog", "interval": "1h", "prune": true },
    }))?;
    sources.create(&PostParams::default(), &source).await?;

    let first = sync(&client, &sources, &ctx).await?;
    let unchanged = sync(&client, &sources, &ctx).await?;
    for i in 0..10 {
        write_listing(
            repo.path(),
            i * (listings / 10).max(1),
            "Now re-plans routes around live traffic every ten minutes.",
        )?;
    }
    git(repo.path(), &["commit", "-q", "-am", "ten listings"])?;
    let changed = sync(&client, &sources, &ctx).await?;

    println!(
        "catalog benchmark: {listings} listings, Kubernetes {} on 127.0.0.1",
        control_plane
            .client()
            .await?
            .apiserver_version()
            .await?
            .git_version
    );
    println!(
        "  lint {listings} files          {:>9.1} ms  ({:.1} µs per file)",
        ms(lint_time),
        lint_time.as_secs_f64() * 1e6 / listings as f64
    );
    println!(
        "  first sync                 {:>9.1} ms  {:>5} API writes",
        ms(first.0),
        first.1
    );
    println!(
        "  re-sync, same revision     {:>9.1} ms  {:>5} API writes (catalog objects: {})",
        ms(unchanged.0),
        unchanged.1,
        unchanged.2
    );
    println!(
        "  sync after 10 changes      {:>9.1} ms  {:>5} API writes (catalog objects: {})",
        ms(changed.0),
        changed.1,
        changed.2
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One reconcile of the source, timed, with the writes the apiserver counted during it: all
/// writes, and writes to Listings and WizardConfigs.
async fn sync(
    client: &Client,
    sources: &Api<CatalogSource>,
    ctx: &Arc<Context>,
) -> Result<(Duration, u64, u64)> {
    let source = Arc::new(sources.get("bench").await?);
    let before = writes(client).await?;
    let started = Instant::now();
    catalog_source::reconcile(source, ctx.clone()).await?;
    let elapsed = started.elapsed();
    let after = writes(client).await?;
    Ok((elapsed, after.0 - before.0, after.1 - before.1))
}

/// (all writes, writes to catalog kinds) so far, from the apiserver's own request counter.
async fn writes(client: &Client) -> Result<(u64, u64)> {
    let (mut all, mut catalog) = (0u64, 0u64);
    for s in apiserver_samples(client, "apiserver_request_total").await? {
        if matches!(s.label("verb"), "GET" | "LIST" | "WATCH" | "CONNECT")
            || matches!(s.label("resource"), "events" | "leases")
        {
            continue;
        }
        all += s.value as u64;
        if matches!(s.label("resource"), "listings" | "wizardconfigs") {
            catalog += s.value as u64;
        }
    }
    Ok((all, catalog))
}

fn write_listing(repo: &Path, index: usize, tagline: &str) -> Result<()> {
    let name = format!("listing-{index:04}");
    let mut listing = example("listing-route-optimization.yaml");
    listing["metadata"] = json!({ "name": name });
    listing["spec"]["displayName"] = json!(format!("Add-on {index:04}"));
    listing["spec"]["tagline"] = json!(tagline);
    listing["spec"]["features"] = json!([format!("feature_{index:04}")]);
    let path = repo.join("catalog/listings").join(format!("{name}.yaml"));
    std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
    std::fs::write(path, serde_saphyr::to_string(&listing)?)?;
    Ok(())
}

fn read_files(folder: &Path) -> Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder.join("listings"))? {
        let path = entry?.path();
        files.push(SourceFile {
            contents: std::fs::read(&path)?,
            path,
        });
    }
    Ok(files)
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git").args(args).current_dir(dir).status()?;
    if !status.success() {
        return Err(format!("git {args:?} failed").into());
    }
    Ok(())
}

//! Shared fixtures of the end-to-end suites. Each file in `tests/` is its own test binary with its
//! own real control plane (see `marketplace-harness`); tests inside a binary share it and isolate
//! themselves with fresh namespaces and unique names.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::{Client, Resource};
use marketplace_harness::{ControlPlane, HarnessError};
use tokio::sync::OnceCell;

static CRDS_INSTALLED: OnceCell<()> = OnceCell::const_new();

/// The shared control plane with the marketplace CRDs installed (once per test binary).
pub async fn control_plane() -> &'static ControlPlane {
    let control_plane = marketplace_harness::shared();
    CRDS_INSTALLED
        .get_or_try_init(|| async {
            let crds = marketplace_operator::api::crds();
            control_plane.install_crds(&crds).await
        })
        .await
        .unwrap_or_else(|e: HarnessError| panic!("installing the marketplace CRDs failed: {e}"));
    control_plane
}

/// Set (to anything but `0` or `false`) by `.ci/run`, like the conventional `CI` of CI services:
/// a suite whose tools are missing fails instead of skipping (see [`skip_unless_required`]).
pub const REQUIRE_TOOLS_ENV: &str = "MARKETPLACE_REQUIRE_TEST_TOOLS";

/// Whether missing test tools fail the suite: under CI ([`REQUIRE_TOOLS_ENV`] or `CI` set).
pub fn tools_required() -> bool {
    [REQUIRE_TOOLS_ENV, "CI"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"))
}

/// Says why `test` is skipped; under CI ([`tools_required`]) fails it instead, so a missing
/// tool can never pass as a green run.
pub fn skip_unless_required(test: &str, why: &str) {
    if tools_required() {
        panic!(
            "{test} cannot run: {why} (missing tools fail under CI: {REQUIRE_TOOLS_ENV} or CI is set)"
        );
    }
    eprintln!("skipping {test}: {why}");
}

/// The workspace root (where `crds/`, `examples/` and `catalog/` are).
pub fn workspace_root() -> PathBuf {
    marketplace_harness::binaries::workspace_root()
}

/// Runs kubectl against the control plane with `args`, feeding `stdin` if given.
pub fn kubectl(control_plane: &ControlPlane, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut command = control_plane.kubectl();
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn().expect("kubectl starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("kubectl stdin is piped");
        pipe.write_all(input.as_bytes())
            .expect("write to kubectl stdin");
    }
    child.wait_with_output().expect("kubectl finishes")
}

/// The YAML documents of a file, as JSON values.
pub fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The single object of an example file, as JSON.
pub fn example(file: &str) -> serde_json::Value {
    let mut documents = yaml_documents(&workspace_root().join("examples").join(file));
    assert_eq!(documents.len(), 1, "examples/{file} holds one object");
    documents.remove(0)
}

/// A dynamic API for kind `K`, namespaced when `namespace` is given.
pub fn dynamic_api<K>(client: Client, namespace: Option<&str>) -> Api<DynamicObject>
where
    K: Resource<DynamicType = ()>,
{
    let resource = ApiResource::erase::<K>(&());
    match namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    }
}

/// A name nobody else in this test binary uses: `<base>-<counter><pid>`.
pub fn unique_name(base: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{base}-{n}x{}", std::process::id() % 100_000)
}

pub mod api_process;

/// TokenReviews and SubjectAccessReviews the apiserver has answered so far.
pub async fn review_count(client: &Client) -> u64 {
    marketplace_harness::apiserver_samples(client, "apiserver_request_total")
        .await
        .expect("apiserver /metrics")
        .iter()
        .filter(|s| matches!(s.label("resource"), "tokenreviews" | "subjectaccessreviews"))
        .map(|s| s.value)
        .sum::<f64>() as u64
}

pub mod controllers;
pub mod helm;
pub mod metered;
pub mod storefront_world;
pub mod subscriptions;
pub mod tenants;

pub use marketplace_harness::eventually;
pub mod audit;
pub mod git_repo;

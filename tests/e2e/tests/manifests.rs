//! Every manifest in `examples/` and `catalog/` applies to a real apiserver and round-trips
//! through the Rust types, and `kubectl get marketplace` lists them with their printer columns.

use marketplace_e2e::{control_plane, kubectl, workspace_root, yaml_documents};
use marketplace_operator::api::{
    Bundle, BundleSubscription, CatalogSource, Entitlement, HealthPolicy, Listing,
    NotificationChannel, Promotion, SubscriptionAction, Tenant, TenantSubscription, WizardConfig,
};

/// The YAML files under `folder` (recursively), sorted.
fn yaml_files(folder: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())) {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn manifest_files() -> Vec<std::path::PathBuf> {
    let root = workspace_root();
    let mut files = yaml_files(&root.join("examples"));
    files.extend(yaml_files(&root.join("catalog")));
    files
}

/// Each manifest deserializes into its Rust type with nothing left over: the manifests and the
/// types cannot drift apart.
#[test]
fn manifests_round_trip_through_the_rust_types() {
    fn round_trip<K: serde::de::DeserializeOwned + serde::Serialize>(
        doc: &serde_json::Value,
    ) -> serde_json::Value {
        let typed: K = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc}"));
        serde_json::to_value(typed).expect("serializes")
    }
    let files = manifest_files();
    assert!(
        files.len() > 20,
        "examples/ and catalog/ hold the manifests"
    );
    for file in files {
        for doc in yaml_documents(&file) {
            let back = match doc["kind"].as_str() {
                Some("Namespace") => continue,
                Some("Listing") => round_trip::<Listing>(&doc),
                Some("WizardConfig") => round_trip::<WizardConfig>(&doc),
                Some("Tenant") => round_trip::<Tenant>(&doc),
                Some("TenantSubscription") => round_trip::<TenantSubscription>(&doc),
                Some("SubscriptionAction") => round_trip::<SubscriptionAction>(&doc),
                Some("Entitlement") => round_trip::<Entitlement>(&doc),
                Some("CatalogSource") => round_trip::<CatalogSource>(&doc),
                Some("NotificationChannel") => round_trip::<NotificationChannel>(&doc),
                Some("Promotion") => round_trip::<Promotion>(&doc),
                Some("Bundle") => round_trip::<Bundle>(&doc),
                Some("BundleSubscription") => round_trip::<BundleSubscription>(&doc),
                Some("HealthPolicy") => round_trip::<HealthPolicy>(&doc),
                other => panic!("{}: unexpected kind {other:?}", file.display()),
            };
            assert_eq!(
                without_defaults(&back["spec"]),
                without_defaults(&doc["spec"]),
                "{} does not round-trip",
                file.display()
            );
        }
    }
}

/// Drops fields the types fill in with their defaults, so only what the example says is compared.
fn without_defaults(value: &serde_json::Value) -> serde_json::Value {
    let mut value = value.clone();
    if let Some(spec) = value.as_object_mut() {
        for (key, default) in [("visibility", "Public"), ("activation", "Instant")] {
            if spec.get(key).and_then(|v| v.as_str()) == Some(default) {
                spec.remove(key);
            }
        }
        if spec.get("quantity") == Some(&serde_json::json!(1)) {
            spec.remove("quantity");
        }
        if spec.get("trial") == Some(&serde_json::json!(false)) {
            spec.remove("trial");
        }
        if spec.get("secretFields") == Some(&serde_json::json!([])) {
            spec.remove("secretFields");
        }
    }
    value
}

#[tokio::test]
async fn examples_and_catalog_apply_server_side_and_kubectl_get_marketplace_lists_them() {
    let control_plane = control_plane().await;
    let examples = workspace_root().join("examples");
    let output = kubectl(
        control_plane,
        &[
            "apply",
            "--server-side",
            "-f",
            examples.to_str().expect("utf-8 path"),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kubectl apply -f examples/ failed: {stderr}"
    );
    assert!(
        !stderr.to_lowercase().contains("warning"),
        "the apiserver warned: {stderr}"
    );

    let output = kubectl(
        control_plane,
        &["get", "marketplace", "--all-namespaces"],
        None,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        // Listing columns and rows
        "DISPLAY NAME",
        "TYPE",
        "CATEGORY",
        "LIFECYCLE",
        "ACTIVATION",
        "listing.marketplace.dev/route-optimization",
        "Route Optimization",
        "Partner",
        // WizardConfig, Tenant, TenantSubscription, SubscriptionAction, Entitlement, CatalogSource
        "wizardconfig.marketplace.dev/quickbooks",
        "TEST METHOD",
        "tenant.marketplace.dev/acme-logistics",
        "BASE PLAN",
        "Professional",
        "tenantsubscription.marketplace.dev/premium-analytics",
        "LISTING",
        "PLAN",
        "QUANTITY",
        "PHASE",
        "subscriptionaction.marketplace.dev/acme-premium-analytics-invoice",
        "ACTION",
        "RESULT",
        "entitlement.marketplace.dev/route-optimization-route-optimization",
        "FEATURE",
        "STATE",
        "catalogsource.marketplace.dev/main",
        "REVISION",
        "notificationchannel.marketplace.dev/tenant-mail",
        "AUDIENCE",
        "promotion.marketplace.dev/route-optimization-winter",
        "PERIODS",
        "bundle.marketplace.dev/care-team-bundle",
        "PERCENT OFF",
        "bundlesubscription.marketplace.dev/care-team",
        "BUNDLE",
    ] {
        assert!(
            stdout.contains(expected),
            "`kubectl get marketplace -A` lacks {expected:?}:\n{stdout}"
        );
    }

    // Short names work as kubectl users expect.
    for short in [
        "lst", "wiz", "tnt", "tsub", "sact", "ent", "csrc", "nch", "ntf", "promo", "bdl", "bsub",
    ] {
        let output = kubectl(control_plane, &["get", short, "--all-namespaces"], None);
        assert!(
            output.status.success(),
            "kubectl get {short}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

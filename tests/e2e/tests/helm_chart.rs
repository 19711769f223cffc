//! The Helm chart `charts/marketplace`: it lints strictly; its renderings (defaults, every
//! optional part on, the smallest install) are accepted by the real apiserver in a server-side
//! dry run, with no Pod Security warning under the restricted profile; its CRDs are `crds/`; its
//! flags parse with the real command line and name the objects it renders; and its RBAC is
//! exactly what the code uses (`operator/src/process/permissions.rs`) with those flags.
//!
//! Tests that need `helm` skip, saying so, when it is not installed (`scripts/install-helm`;
//! `scripts/test` runs it); under CI (`MARKETPLACE_REQUIRE_TEST_TOOLS`, which `.ci/run` sets)
//! they fail instead.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use marketplace_e2e::helm::{Helm, NAMESPACE, Rendering, chart_dir};
use marketplace_e2e::{control_plane, kubectl, workspace_root};
use marketplace_operator::cli::Command;
use marketplace_operator::process::permissions::{self, Grant, Permission, allows, grants};
use serde_json::{Value, json};

/// Each values file the suite renders (in the chart folder), by what it shows.
const RENDERINGS: &[(&str, Option<&str>)] = &[
    ("defaults", None),
    ("every optional part on", Some("ci/all-on-values.yaml")),
    ("the smallest install", Some("ci/minimal-values.yaml")),
];

/// Every rendering with what it shows; none (after saying why) when helm is not installed.
fn renderings(test: &str) -> Vec<(&'static str, Rendering)> {
    let Some(helm) = Helm::for_test(test) else {
        return Vec::new();
    };
    RENDERINGS
        .iter()
        .map(|(what, values)| (*what, helm.template(*values)))
        .collect()
}

fn operator_deployment(rendering: &Rendering) -> &Value {
    rendering
        .deployment("operator")
        .expect("the chart renders the operator's Deployment")
}

#[test]
fn the_charts_crds_are_the_generated_crds() {
    let listing = |dir: &std::path::Path| -> BTreeMap<String, String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.expect("readable entry").path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&path).expect("readable CRD"))
            })
            .collect()
    };
    let generated = listing(&workspace_root().join("crds"));
    let charted = listing(&chart_dir().join("crds"));
    assert_eq!(
        generated.keys().collect::<Vec<_>>(),
        charted.keys().collect::<Vec<_>>(),
        "charts/marketplace/crds must hold the files of crds/: cp crds/*.yaml charts/marketplace/crds/"
    );
    for (name, text) in &generated {
        assert!(
            charted[name] == *text,
            "charts/marketplace/crds/{name} differs from crds/{name}: cp crds/*.yaml charts/marketplace/crds/"
        );
    }
}

#[test]
fn the_chart_lints_strictly() {
    let Some(helm) = Helm::for_test("the_chart_lints_strictly") else {
        return;
    };
    for (what, values) in RENDERINGS {
        let output = helm.lint(*values);
        assert!(
            output.status.success(),
            "helm lint --strict ({what}) failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The Prometheus Operator's and cert-manager's kinds the chart renders when asked: the test
/// cluster has neither, so their CRDs are installed here, schema-less (the dry run then checks
/// everything but these objects' fields).
fn foreign_crds() -> Vec<CustomResourceDefinition> {
    let crd = |group: &str, kind: &str, plural: &str| {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase()},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": true
                    }}
                }]
            }
        }))
        .expect("a valid CRD")
    };
    vec![
        crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
        crd("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
        crd("cert-manager.io", "Certificate", "certificates"),
        crd("cert-manager.io", "Issuer", "issuers"),
    ]
}

#[tokio::test]
async fn every_rendering_is_accepted_by_the_apiserver_under_the_restricted_profile() {
    let renderings = renderings("every_rendering_is_accepted_by_the_apiserver");
    if renderings.is_empty() {
        return;
    }
    let control_plane = control_plane().await;
    control_plane
        .install_crds(&foreign_crds())
        .await
        .expect("the foreign CRDs install");
    // The release namespace, warning (and enforcing, for pods) the restricted Pod Security
    // profile: a Deployment that breaks it gets a warning at apply time.
    let restricted = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
        }}
    });
    Api::<Namespace>::all(control_plane.client().await.expect("client"))
        .patch(
            NAMESPACE,
            &PatchParams::apply("helm-chart-test").force(),
            &Patch::Apply(&restricted),
        )
        .await
        .expect("the release namespace");

    for (what, rendering) in &renderings {
        let output = kubectl(
            control_plane,
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&rendering.yaml),
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "the apiserver refused the chart ({what}):\n{stderr}"
        );
        assert!(
            !stderr.to_lowercase().contains("warning"),
            "the apiserver warned about the chart ({what}):\n{stderr}"
        );
        let accepted = stdout.lines().filter(|l| l.ends_with("(server dry run)"));
        assert_eq!(
            accepted.count(),
            rendering.objects.len(),
            "every object of the chart ({what}) is accepted:\n{stdout}"
        );
    }
}

/// Compares what `service_account` is granted with what `needed` says the code uses: nothing
/// missing, nothing more.
fn assert_exactly(what: &str, rendering: &Rendering, service_account: &str, needed: &[Permission]) {
    let granted = rendering.grants_to(service_account);
    let wanted = grants(needed);
    let why = |g: &Grant| {
        needed
            .iter()
            .filter(|p| grants(std::slice::from_ref(p)).contains(g))
            .map(|p| p.why)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let missing: Vec<String> = wanted
        .iter()
        .filter(|g| !allows(&granted, g))
        .map(|g| format!("{g} (for: {})", why(g)))
        .collect();
    let unused: Vec<String> = granted
        .iter()
        .filter(|g| !wanted.contains(*g))
        .map(ToString::to_string)
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: the chart does not grant {service_account}:\n  {}",
        missing.join("\n  ")
    );
    assert!(
        unused.is_empty(),
        "{what}: the chart grants {service_account} what no code path uses (see operator/src/process/permissions.rs):\n  {}",
        unused.join("\n  ")
    );
}

#[test]
fn the_charts_rbac_is_exactly_what_the_code_uses_with_the_charts_flags() {
    for (what, rendering) in renderings("the_charts_rbac_is_exactly_what_the_code_uses") {
        let operator = operator_deployment(&rendering);
        let Command::Operator(args) = Rendering::command(operator) else {
            panic!("{what}: the operator Deployment does not run `marketplace operator`");
        };
        let settings = args
            .settings()
            .unwrap_or_else(|e| panic!("{what}: the operator's flags are refused: {e}"));
        assert_eq!(
            settings.controllers.namespace, NAMESPACE,
            "{what}: --namespace"
        );
        let account = Rendering::service_account(operator);
        assert_exactly(what, &rendering, account, &permissions::operator(&settings));

        match rendering.deployment("api") {
            Some(api) => {
                let Command::Api(args) = Rendering::command(api) else {
                    panic!("{what}: the API Deployment does not run `marketplace api`");
                };
                let settings = args.settings();
                assert_eq!(
                    settings.operator_namespace, NAMESPACE,
                    "{what}: --namespace"
                );
                let account = Rendering::service_account(api);
                assert_exactly(what, &rendering, account, &permissions::api(&settings));
            }
            None => assert!(
                rendering.find("ClusterRole", "marketplace-api").is_none(),
                "{what}: API RBAC without the API"
            ),
        }
    }
}

/// The value of `--flag=value` among `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    args.iter().find_map(|a| a.strip_prefix(prefix.as_str()))
}

#[test]
fn the_operators_flags_name_the_objects_the_chart_renders() {
    for (what, rendering) in renderings("the_operators_flags_name_the_objects_the_chart_renders") {
        let args = Rendering::args(operator_deployment(&rendering));
        let Some(service) = flag(&args, "admission-service") else {
            assert!(
                rendering
                    .of_kind("ValidatingWebhookConfiguration")
                    .next()
                    .is_none(),
                "{what}: a webhook configuration without --admission-listen"
            );
            continue;
        };
        // The apiserver calls the Service the certificate is made for, on the port served.
        let svc = rendering.find("Service", service).unwrap_or_else(|| {
            panic!("{what}: --admission-service={service} names no Service of the chart")
        });
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], "webhook");
        assert!(flag(&args, "admission-listen").is_some_and(|l| l.ends_with(":9443")));
        let configs: Vec<&Value> = rendering
            .of_kind("ValidatingWebhookConfiguration")
            .collect();
        assert_eq!(configs.len(), 1, "{what}: one webhook configuration");
        let config = configs[0];
        let client = &config["webhooks"][0]["clientConfig"]["service"];
        assert_eq!(
            client["name"], service,
            "{what}: the webhook calls --admission-service"
        );
        assert_eq!(client["namespace"], NAMESPACE);
        assert_eq!(client["path"], marketplace_operator::admission::PATH);
        let config_name = config["metadata"]["name"].as_str().unwrap_or_default();
        match flag(&args, "admission-cert-secret") {
            // cert-manager: its Certificate writes the Secret read, for the Service's name, and
            // its CA injector is pointed at that Certificate.
            Some(secret) => {
                let certificate = rendering
                    .of_kind("Certificate")
                    .find(|c| c["spec"]["secretName"] == secret)
                    .unwrap_or_else(|| panic!("{what}: no Certificate writes Secret {secret}"));
                let dns = format!("{service}.{NAMESPACE}.svc");
                assert!(
                    certificate["spec"]["dnsNames"]
                        .as_array()
                        .is_some_and(|names| names.iter().any(|n| *n == dns)),
                    "{what}: the certificate is for {dns}"
                );
                let injected = format!(
                    "{NAMESPACE}/{}",
                    certificate["metadata"]["name"].as_str().unwrap_or_default()
                );
                assert_eq!(
                    config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                    injected.as_str()
                );
            }
            // The operator's own CA: it keeps the caBundle of the configuration it names.
            None => {
                assert_eq!(flag(&args, "admission-webhook-config"), Some(config_name));
                assert!(config["webhooks"][0]["clientConfig"]["caBundle"].is_null());
            }
        }
    }
}

#[test]
fn the_people_roles_are_read_write_and_superadmin_and_aggregate_by_convention() {
    let Some(helm) = Helm::for_test("the_people_roles_aggregate_by_convention") else {
        return;
    };
    let rendering = helm.template(None);
    let labels = |name: &str| -> BTreeSet<String> {
        let role = rendering
            .find("ClusterRole", name)
            .unwrap_or_else(|| panic!("ClusterRole {name}"));
        role["metadata"]["labels"]
            .as_object()
            .map(|l| {
                l.iter()
                    .filter(|(_, v)| *v == "true")
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    let aggregate = |to: &str| format!("rbac.authorization.k8s.io/aggregate-to-{to}");
    let viewer = labels("marketplace-viewer");
    for to in ["view", "edit", "admin"] {
        assert!(viewer.contains(&aggregate(to)), "viewer aggregates to {to}");
    }
    let billing = labels("marketplace-billing-admin");
    assert!(billing.contains(&aggregate("edit")) && billing.contains(&aggregate("admin")));
    assert!(
        !billing.contains(&aggregate("view")),
        "view stays read-only"
    );
    assert!(
        labels("marketplace-superadmin").is_empty(),
        "superadmin aggregates into nothing: it is bound on purpose"
    );
}

/// Usage is taken only into a store every replica and the operator share: none by default;
/// PostgreSQL's URL from its Secret (it carries a password) for the API and the operator, which
/// bills closed months from it, its CA mounted and its port open in the egress policies.
#[test]
fn the_usage_store_is_shared_by_the_api_and_the_operator() {
    let Some(helm) = Helm::for_test("the_usage_store_is_shared_by_the_api_and_the_operator") else {
        return;
    };
    let defaults = helm.template(None);
    let api = defaults.deployment("api").expect("the API's Deployment");
    assert_eq!(flag(&Rendering::args(api), "usage-store"), Some("none"));

    let missing = helm.run(&[
        "template",
        marketplace_e2e::helm::RELEASE,
        chart_dir().to_str().unwrap(),
        "--set",
        "usageStore.type=postgres",
    ]);
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && said.contains("usageStore.postgres.urlSecret.name"),
        "{said}"
    );

    let postgres = helm.template(Some("ci/all-on-values.yaml"));
    for component in ["api", "operator"] {
        let deployment = postgres.deployment(component).expect("the Deployment");
        assert_eq!(flag(&Rendering::args(deployment), "usage-store"), None);
        let pod = &deployment["spec"]["template"]["spec"];
        let env = pod["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "MARKETPLACE_USAGE_STORE")
            .unwrap_or_else(|| panic!("{component}: the URL is in the environment"));
        assert_eq!(
            env["valueFrom"]["secretKeyRef"]["name"],
            "marketplace-usage-store"
        );
        assert!(
            pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["configMap"]["name"] == "marketplace-postgres-ca"),
            "{component}: the CA is mounted"
        );
        let policy = postgres
            .find("NetworkPolicy", &format!("marketplace-{component}"))
            .expect("the NetworkPolicy");
        assert!(
            policy["spec"]["egress"]
                .as_array()
                .unwrap()
                .iter()
                .any(|rule| rule["ports"][0]["port"] == 5432),
            "{component}: {policy}"
        );
    }
}

/// The TCP ports the operator's NetworkPolicy lets it reach (besides DNS).
fn operator_egress_ports(rendering: &Rendering) -> BTreeSet<i64> {
    rendering
        .of_kind("NetworkPolicy")
        .find(|p| {
            p["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-operator"))
        })
        .and_then(|p| p["spec"]["egress"].as_array())
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["ports"].as_array().into_iter().flatten())
        .filter(|port| port["protocol"] == "TCP")
        .filter_map(|port| port["port"].as_i64())
        .filter(|port| *port != 53)
        .collect()
}

#[test]
fn egress_opens_the_notification_ports_only_when_notifications_are_on() {
    let Some(helm) =
        Helm::for_test("egress_opens_the_notification_ports_only_when_notifications_are_on")
    else {
        return;
    };
    let egress = ["--set", "networkPolicy.egress.enabled=true"];
    let off = operator_egress_ports(&helm.template_with(None, &egress));
    assert_eq!(off, BTreeSet::from([22, 443, 6443]), "notifications off");
    let on = helm.template_with(
        None,
        &[&egress[..], &["--set", "notifications.enabled=true"]].concat(),
    );
    assert_eq!(
        operator_egress_ports(&on),
        BTreeSet::from([22, 443, 465, 587, 6443]),
        "SMTP submission and implicit TLS"
    );
    // The API never sends notifications.
    let api = on
        .of_kind("NetworkPolicy")
        .find(|p| {
            p["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-api"))
        })
        .expect("the API's NetworkPolicy");
    assert!(!api.to_string().contains("587"), "{api}");
    let relay = helm.template_with(
        None,
        &[
            &egress[..],
            &[
                "--set",
                "notifications.enabled=true",
                "--set",
                "notifications.egressPorts={2525,443}",
            ],
        ]
        .concat(),
    );
    assert_eq!(
        operator_egress_ports(&relay),
        BTreeSet::from([22, 443, 2525, 6443]),
        "configured ports, each once"
    );
}

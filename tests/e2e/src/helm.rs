//! The Helm chart `charts/marketplace` as the suites see it: finding `helm`, rendering the chart
//! for a values file, and reading the rendering (objects, a Deployment's arguments, the RBAC
//! bound to a service account).
//!
//! `helm` is built by `scripts/install-helm` into a version-keyed cache; the script is the one
//! place that knows the folder, so it is asked (`--print-dir`), as for the control plane.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::rbac::v1::PolicyRule;
use marketplace_operator::process::permissions::{Grant, Reach, grants_of_rules};
use serde_json::Value;

use crate::{skip_unless_required, workspace_root};

/// Environment variable naming a folder with `helm`; overrides `scripts/install-helm`.
pub const HELM_BIN_ENV: &str = "MARKETPLACE_HELM_BIN";
/// The release name the suites render with (so names match the flags' defaults).
pub const RELEASE: &str = "marketplace";
/// The namespace the suites render into.
pub const NAMESPACE: &str = "marketplace-system";

/// The chart's folder.
pub fn chart_dir() -> PathBuf {
    workspace_root().join("charts/marketplace")
}

/// A `helm` binary.
pub struct Helm {
    path: PathBuf,
}

impl Helm {
    /// `helm` for `test`, or `None` after saying why it is skipped; under CI
    /// ([`crate::tools_required`]) a missing helm fails `test` instead.
    pub fn for_test(test: &str) -> Option<Helm> {
        match Helm::locate() {
            Ok(helm) => Some(helm),
            Err(why) => {
                skip_unless_required(test, &format!("helm is not installed: {why}"));
                None
            }
        }
    }

    /// `helm` in [`HELM_BIN_ENV`], else in the folder `scripts/install-helm --print-dir` names;
    /// the error says why there is none.
    pub fn locate() -> Result<Helm, String> {
        let dir = match std::env::var_os(HELM_BIN_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                let script = workspace_root().join("scripts/install-helm");
                let output = Command::new(&script)
                    .arg("--print-dir")
                    .output()
                    .map_err(|e| format!("running {} --print-dir: {e}", script.display()))?;
                PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
            }
        };
        let path = dir.join("helm");
        if path.is_file() {
            Ok(Helm { path })
        } else {
            Err(format!(
                "{} does not exist: run scripts/install-helm (scripts/test does), or set {HELM_BIN_ENV}",
                path.display()
            ))
        }
    }

    /// Runs helm with `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.path)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{} did not start: {e}", self.path.display()))
    }

    /// `helm lint --strict` of the chart with `values` (a file in the chart, or the defaults).
    pub fn lint(&self, values: Option<&str>) -> Output {
        let chart = chart_dir();
        let mut args = vec!["lint", "--strict", path_str(&chart)];
        let file = values.map(|v| chart.join(v));
        if let Some(file) = &file {
            args.extend(["--values", path_str(file)]);
        }
        self.run(&args)
    }

    /// `helm template` of the chart as release [`RELEASE`] in [`NAMESPACE`] with `values`.
    pub fn template(&self, values: Option<&str>) -> Rendering {
        self.template_with(values, &[])
    }

    /// [`Helm::template`], with `extra` arguments (e.g. `--set`, `key=value`).
    pub fn template_with(&self, values: Option<&str>, extra: &[&str]) -> Rendering {
        let chart = chart_dir();
        let mut args = vec![
            "template",
            RELEASE,
            path_str(&chart),
            "--namespace",
            NAMESPACE,
        ];
        let file = values.map(|v| chart.join(v));
        if let Some(file) = &file {
            args.extend(["--values", path_str(file)]);
        }
        args.extend_from_slice(extra);
        let output = self.run(&args);
        assert!(
            output.status.success(),
            "helm template ({}) failed: {}",
            values.unwrap_or("defaults"),
            String::from_utf8_lossy(&output.stderr)
        );
        Rendering::parse(String::from_utf8(output.stdout).expect("helm prints UTF-8"))
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("the chart's path is UTF-8")
}

/// What `helm template` printed, and its objects.
pub struct Rendering {
    pub yaml: String,
    pub objects: Vec<Value>,
}

impl Rendering {
    pub fn parse(yaml: String) -> Rendering {
        let documents: Vec<Value> = serde_saphyr::from_multiple(&yaml)
            .unwrap_or_else(|e| panic!("the rendering is not YAML: {e}\n{yaml}"));
        let objects = documents.into_iter().filter(|d| !d.is_null()).collect();
        Rendering { yaml, objects }
    }

    /// The objects of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    /// The object of `kind` named `name`.
    pub fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    /// The Deployment whose first container is named `container` (`operator`, `api`).
    pub fn deployment(&self, container: &str) -> Option<&Value> {
        self.of_kind("Deployment")
            .find(|d| d["spec"]["template"]["spec"]["containers"][0]["name"] == container)
    }

    /// The arguments of that Deployment's container, as `marketplace` receives them.
    pub fn args(deployment: &Value) -> Vec<String> {
        deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .expect("the container has args")
            .iter()
            .map(|a| a.as_str().expect("args are strings").to_owned())
            .collect()
    }

    /// The command line a Deployment of the rendering runs, parsed by the real `marketplace`
    /// command line.
    pub fn command(deployment: &Value) -> marketplace_operator::cli::Command {
        use clap::Parser;
        let args = Self::args(deployment);
        let argv = std::iter::once("marketplace".to_owned()).chain(args.iter().cloned());
        marketplace_operator::cli::Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("the chart's arguments {args:?} do not parse: {e}"))
            .command
    }

    /// The service account a Deployment runs as.
    pub fn service_account(deployment: &Value) -> &str {
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .expect("the Deployment names its service account")
    }

    /// The RBAC objects (and ServiceAccounts) of the rendering, as one `v1/List` to apply.
    pub fn rbac_list(&self) -> Value {
        const KINDS: &[&str] = &[
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ];
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|o| KINDS.iter().any(|k| o["kind"] == *k))
            .cloned()
            .collect();
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
    }

    /// What RBAC of this rendering grants the service account `name` of [`NAMESPACE`]: the
    /// rules of each (Cluster)Role a binding here gives it.
    pub fn grants_to(&self, service_account: &str) -> BTreeSet<Grant> {
        let mut out = BTreeSet::new();
        for kind in ["ClusterRoleBinding", "RoleBinding"] {
            for binding in self.of_kind(kind) {
                let binds_it = binding["subjects"].as_array().is_some_and(|subjects| {
                    subjects.iter().any(|s| {
                        s["kind"] == "ServiceAccount"
                            && s["name"] == service_account
                            && s["namespace"] == NAMESPACE
                    })
                });
                if !binds_it {
                    continue;
                }
                let role_kind = binding["roleRef"]["kind"].as_str().unwrap_or_default();
                let role_name = binding["roleRef"]["name"].as_str().unwrap_or_default();
                let role = self.find(role_kind, role_name).unwrap_or_else(|| {
                    panic!(
                        "{kind} {} binds {role_kind} {role_name}, which the chart does not render",
                        binding["metadata"]["name"]
                    )
                });
                let reach = if kind == "ClusterRoleBinding" {
                    Reach::Cluster
                } else {
                    assert_eq!(binding["metadata"]["namespace"], NAMESPACE);
                    Reach::OperatorNamespace
                };
                let rules: Vec<PolicyRule> = serde_json::from_value(role["rules"].clone())
                    .unwrap_or_else(|e| panic!("{role_kind} {role_name}: rules: {e}"));
                out.extend(grants_of_rules(reach, &rules));
            }
        }
        out
    }
}

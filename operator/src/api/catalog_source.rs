//! `CatalogSource`: a git repository folder the operator syncs Listings and WizardConfigs from
//! (namespaced, in the operator's namespace).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::conditions_schema;
use super::shared::SecretRef;

/// Where the catalog lives in git, and how it is synced: the operator fetches the revision, lints
/// all of it, and applies it only if every file is valid.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "CatalogSource",
    doc = "A git repository folder holding the catalog (Listings and WizardConfigs); the operator syncs it to the cluster.",
    namespaced,
    status = "CatalogSourceStatus",
    shortname = "csrc",
    category = "marketplace",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
    printcolumn(name = "Path", type_ = "string", json_path = ".spec.path"),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.lastAppliedRevision"
    ),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSourceSpec {
    /// Repository URL: https://, http:// (tests only), ssh://, file://, or scp-like git@host:path.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^(https|http|ssh|file)://') || self.matches('^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:')")
        .message("url must be an https://, http://, ssh:// or file:// URL, or git@host:path"))]
    pub url: String,

    /// What to check out: exactly one of branch, tag or commit.
    #[serde(rename = "ref")]
    pub git_ref: GitRef,

    /// Folder of the repository that holds the catalog, relative to its root.
    #[serde(default = "default_path")]
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !self.contains('..')")
        .message("path must be relative to the repository root and must not contain '..'"))]
    pub path: String,

    /// How often to check the repository for a new revision, e.g. 1m, 5m, 1h (jitter is added).
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,

    /// Secret with credentials: `token` (https) or `identity` + `known_hosts` (ssh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,

    /// Delete catalog objects that are no longer in the repository (Listings with live
    /// subscriptions are never pruned; they are reported instead).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,

    /// Stop syncing; the last applied revision stays as it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

fn default_path() -> String {
    ".".to_owned()
}

fn default_interval() -> String {
    "5m".to_owned()
}

/// The git reference to sync.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("[has(self.branch), has(self.tag), has(self.commit)].filter(x, x).size() == 1")
    .message("set exactly one of branch, tag or commit"))]
pub struct GitRef {
    /// Branch to follow, e.g. main.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub branch: Option<String>,
    /// Tag to pin, e.g. v1.4.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub tag: Option<String>,
    /// Full commit SHA-1 to pin (40 hex characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{40}$"))]
    pub commit: Option<String>,
}

/// Observed state of a catalog source.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSourceStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last revision fetched and linted, whether or not it was applied (e.g. main@sha1:…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// The revision running in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// Objects applied from the last applied revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory: Vec<InventoryEntry>,
    /// Counts of objects by kind in the last applied revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<CatalogCounts>,
    /// Standard conditions. Ready: the revision is applied; reasons Applied (True), Suspended,
    /// FetchFailed, LintFailed, PruneRefused, Conflict. Stalled: the last attempted revision is
    /// invalid and nothing of it was applied (True with reason LintFailed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// One object applied by a catalog source.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InventoryEntry {
    /// Kind, e.g. Listing.
    pub kind: String,
    /// Name (catalog objects are cluster-scoped).
    pub name: String,
}

/// Counts of catalog objects.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CatalogCounts {
    /// Listings.
    pub listings: i32,
    /// WizardConfigs.
    pub wizard_configs: i32,
}

//! `Entitlement`: one feature granted to one tenant (namespaced, in the tenant's namespace).
//! The spec is written by the operator only (owned by the subscription that grants it); the
//! status records how product code uses it, written by the marketplace API.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{FeatureCode, ObjectName};

/// A feature a tenant is entitled to, and in what state. Product code asks "may tenant T use
/// feature F?"; the answer is this object. Only the operator writes it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "Entitlement",
    doc = "A feature granted to a tenant by a subscription, with its state and validity window. The operator writes the spec; the marketplace API records usage in the status.",
    namespaced,
    status = "EntitlementStatus",
    shortname = "ent",
    category = "marketplace",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenant"),
    printcolumn(name = "Feature", type_ = "string", json_path = ".spec.feature"),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.state"),
    printcolumn(name = "Ends At", type_ = "string", json_path = ".spec.endsAt"),
    printcolumn(
        name = "Subscription",
        type_ = "string",
        json_path = ".spec.sourceSubscription",
        priority = 1
    ),
    printcolumn(
        name = "Last Checked",
        type_ = "date",
        json_path = ".status.usage.lastCheckedAt",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!has(self.endsAt) || self.endsAt > self.startsAt")
    .message("endsAt must be after startsAt")
    .field_path(".endsAt"))]
#[serde(rename_all = "camelCase")]
pub struct EntitlementSpec {
    /// Name of the Tenant entitled.
    pub tenant: ObjectName,
    /// The feature code granted.
    pub feature: FeatureCode,
    /// Active (usable), Trialing (usable during a trial), Suspended (payment failed or tenant
    /// suspended: not usable, kept), Revoked (ended: not usable).
    pub state: EntitlementState,
    /// When the entitlement started.
    pub starts_at: Time,
    /// When it ends (end of trial or of the paid period after a cancellation); absent while it renews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Time>,
    /// Name of the TenantSubscription (same namespace) that grants it.
    #[schemars(length(min = 1, max = 253))]
    pub source_subscription: String,
}

/// How product code uses the entitlement (written by the marketplace API, at most once per
/// `--usage-flush-seconds`): the signal that a bought feature sits idle.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// Checks of the feature through the API, summed over every API replica.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// The last time product code checked the feature (REST, OFREP or a bulk evaluation).
    pub last_checked_at: Time,
    /// Checks counted since the entitlement was created.
    pub checks: i64,
}

/// States of an entitlement.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntitlementState {
    Active,
    Trialing,
    Suspended,
    Revoked,
}

impl EntitlementState {
    /// Whether the tenant may use the feature in this state.
    pub fn is_usable(self) -> bool {
        matches!(self, EntitlementState::Active | EntitlementState::Trialing)
    }
}

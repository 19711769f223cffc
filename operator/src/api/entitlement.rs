//! `Entitlement`: one feature granted to one tenant (namespaced, in the tenant's namespace).
//! The spec is written by the operator only (owned by the subscription that grants it); the
//! status records how product code uses it, written by the marketplace API.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{FeatureCode, ObjectName};
use super::tenant::TENANT_LABEL;

/// Label naming the subscription an Entitlement comes from.
pub const SUBSCRIPTION_LABEL: &str = "marketplace.dev/subscription";
/// Label naming the feature, so product code can select by it.
pub const FEATURE_LABEL: &str = "marketplace.dev/feature";

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

/// The labels the operator gives every Entitlement it writes, all from its spec: its
/// subscription, feature and tenant, so people and product code can select by them.
pub fn spec_labels(spec: &EntitlementSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            SUBSCRIPTION_LABEL.to_string(),
            label_value(&spec.source_subscription),
        ),
        (
            FEATURE_LABEL.to_string(),
            label_value(spec.feature.as_str()),
        ),
        (TENANT_LABEL.to_string(), spec.tenant.as_str().to_string()),
    ])
}

/// Label values are at most 63 characters.
fn label_value(value: &str) -> String {
    value
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.', '_'])
        .to_string()
}

/// For the shared caches: labels that are exactly [`spec_labels`] are kept as an empty map
/// (which the apiserver never returns: it leaves empty maps out), since they can be made again
/// from the spec. A label map costs an Entitlement about 800 bytes in memory, some 80 MB at
/// 100,000 Entitlements. Read a cached Entitlement's labels with [`labels_of`].
pub fn compact_labels(entitlement: &mut Entitlement) {
    if entitlement.metadata.labels.as_ref() == Some(&spec_labels(&entitlement.spec)) {
        entitlement.metadata.labels = Some(BTreeMap::new());
    }
}

/// An Entitlement's labels as the apiserver holds them, also when [`compact_labels`] kept
/// them compact.
pub fn labels_of(entitlement: &Entitlement) -> Cow<'_, BTreeMap<String, String>> {
    match &entitlement.metadata.labels {
        Some(labels) if labels.is_empty() => Cow::Owned(spec_labels(&entitlement.spec)),
        Some(labels) => Cow::Borrowed(labels),
        None => Cow::Owned(BTreeMap::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entitlement(labels: Option<BTreeMap<String, String>>) -> Entitlement {
        let mut entitlement: Entitlement = serde_json::from_value(serde_json::json!({
            "apiVersion": "marketplace.dev/v1alpha1", "kind": "Entitlement",
            "metadata": { "name": "s-eta", "namespace": "tenant-acme" },
            "spec": {
                "tenant": "acme", "feature": "eta", "state": "Active",
                "startsAt": "2026-11-01T00:00:00Z", "sourceSubscription": "s",
            },
        }))
        .unwrap();
        entitlement.metadata.labels = labels;
        entitlement
    }

    #[test]
    fn labels_from_the_spec_are_kept_compact_and_read_back_whole() {
        let mut cached = entitlement(None);
        let wanted = spec_labels(&cached.spec);
        cached.metadata.labels = Some(wanted.clone());
        compact_labels(&mut cached);
        assert_eq!(cached.metadata.labels, Some(BTreeMap::new()));
        assert_eq!(labels_of(&cached).as_ref(), &wanted);
    }

    #[test]
    fn other_labels_and_none_are_kept_as_they_are() {
        let mut edited = spec_labels(&entitlement(None).spec);
        edited.insert(FEATURE_LABEL.into(), "maps".into());
        let mut cached = entitlement(Some(edited.clone()));
        compact_labels(&mut cached);
        assert_eq!(labels_of(&cached).as_ref(), &edited);
        let mut extra = spec_labels(&entitlement(None).spec);
        extra.insert("team".into(), "ops".into());
        let mut cached = entitlement(Some(extra.clone()));
        compact_labels(&mut cached);
        assert_eq!(labels_of(&cached).as_ref(), &extra);
        let mut bare = entitlement(None);
        compact_labels(&mut bare);
        assert_eq!(bare.metadata.labels, None);
        assert!(labels_of(&bare).is_empty());
    }

    #[test]
    fn long_names_are_cut_to_a_label_value() {
        let long = format!("{}-x", "a".repeat(62));
        assert_eq!(label_value(&long), "a".repeat(62));
    }
}

//! `HealthPolicy`: the thresholds that mark a tenant at risk or ready for an upsell, per base
//! plan (namespaced, in the operator's namespace). Read by the tenant health API and console
//! ([`crate::health`]); without one, built-in defaults apply.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Thresholds of tenant health for some base plans (or, with no basePlans, for every base plan
/// no other HealthPolicy names).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "HealthPolicy",
    doc = "Thresholds that mark tenants of some base plans at risk or ready for an upsell, read by the tenant health API and console.",
    namespaced,
    shortname = "hpol",
    category = "marketplace",
    printcolumn(name = "Base Plans", type_ = "string", json_path = ".spec.basePlans"),
    printcolumn(
        name = "Adoption Days",
        type_ = "integer",
        json_path = ".spec.adoptionWindowDays"
    ),
    printcolumn(
        name = "History Days",
        type_ = "integer",
        json_path = ".spec.historyWindowDays"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("has(self.upsellReady.minUsagePercent) || has(self.upsellReady.minAdoptionPercent)")
        .message("upsellReady needs minUsagePercent or minAdoptionPercent (or both)")
        .field_path(".upsellReady"),
    validation = Rule::new("!has(self.upsellReady.minAdoptionPercent) || self.upsellReady.minAdoptionPercent > self.atRisk.minAdoptionPercent")
        .message("upsellReady.minAdoptionPercent must be above atRisk.minAdoptionPercent, or one adoption would be both at risk and ready for an upsell")
        .field_path(".upsellReady.minAdoptionPercent"),
)]
#[serde(rename_all = "camelCase")]
pub struct HealthPolicySpec {
    /// The Tenants' spec.basePlan values these thresholds apply to; empty: the default for every
    /// base plan no other HealthPolicy names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q == p))")
        .message("each base plan may appear once"))]
    pub base_plans: Vec<BasePlanName>,
    /// A feature counts as adopted when product code checked it within this many days.
    #[serde(default = "default_adoption_window_days")]
    #[schemars(range(min = 1, max = 365))]
    pub adoption_window_days: i32,
    /// Payment problems and cancellations count when they happened within this many days.
    #[serde(default = "default_history_window_days")]
    #[schemars(range(min = 1, max = 730))]
    pub history_window_days: i32,
    /// When a tenant is at risk (any one rule is enough).
    pub at_risk: AtRiskThresholds,
    /// When a tenant not at risk is ready for an upsell (any one rule is enough).
    pub upsell_ready: UpsellThresholds,
}

/// A Tenant's base plan name, as in its spec.basePlan.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(transparent)]
pub struct BasePlanName(#[schemars(length(min = 1, max = 63))] pub String);

fn default_adoption_window_days() -> i32 {
    30
}

fn default_history_window_days() -> i32 {
    90
}

/// At risk: few features in use, unpaid invoices, cancellations.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AtRiskThresholds {
    /// At risk when fewer than this percent of the tenant's usable features were checked in the
    /// adoption window (0 turns the rule off; tenants without add-ons are never at risk by it).
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub min_adoption_percent: i32,
    /// At risk with more subscriptions than this with a payment problem (suspended, past due or
    /// unpaid now, or suspended within the history window).
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub max_payment_problems: i32,
    /// At risk with more cancellations than this (asked for or done) within the history window.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub max_cancellations: i32,
}

/// Ready for an upsell: outgrowing what is included, or using all that was bought.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpsellThresholds {
    /// Ready when some metered plan used at least this percent of its included quantity this
    /// period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub min_usage_percent: Option<i32>,
    /// Ready when at least this percent of the tenant's usable features were checked in the
    /// adoption window (and it has at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub min_adoption_percent: Option<i32>,
}

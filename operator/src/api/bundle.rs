//! `Bundle`: several listings' plans sold together at a discount (cluster-scoped, written by the
//! catalog sync like Listings); and `BundleSubscription`: a tenant's purchase of one (namespaced,
//! in the tenant's namespace), which the operator turns into one TenantSubscription per member.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::ObjectName;
use super::tenant_subscription::{CancellationRequest, Phase};

/// A bundle: its members are bought, billed and cancelled together, each member's line item
/// carrying its share of the discount.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "Bundle",
    doc = "Several listings' plans sold together at a discount: buying it (a BundleSubscription) creates one TenantSubscription per member, billed with the bundle's discount and cancelled together.",
    shortname = "bdl",
    category = "marketplace",
    printcolumn(
        name = "Display Name",
        type_ = "string",
        json_path = ".spec.displayName"
    ),
    printcolumn(
        name = "Percent Off",
        type_ = "integer",
        json_path = ".spec.discount.percentage"
    ),
    printcolumn(
        name = "Amount Off",
        type_ = "string",
        json_path = ".spec.discount.amount"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(validation = Rule::new("self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
    .message("metadata.name: a bundle name must be a DNS label (lowercase letters, digits and dashes, at most 63), so that subscriptions can record it"))]
#[serde(rename_all = "camelCase")]
pub struct BundleSpec {
    /// Name shown to tenants, e.g. "Fleet suite".
    #[schemars(length(min = 1, max = 80))]
    pub display_name: String,

    /// One sentence shown under the name (plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 300))]
    pub description: Option<String>,

    /// The listings' plans sold together, at least two; each listing once.
    #[schemars(length(min = 2, max = 10))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.listing == m.listing))").message("spec.members: each listing may be a member once"))]
    pub members: Vec<BundleMember>,

    /// The price cut on the members' total: exactly one of percentage or amount.
    pub discount: BundleDiscount,
}

/// A plan of a listing in a bundle.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct BundleMember {
    /// Name of the Listing.
    pub listing: ObjectName,
    /// The listing's plan sold in the bundle.
    pub plan: ObjectName,
}

/// How a bundle cuts its members' total; exactly one of percentage or amount.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("has(self.percentage) != has(self.amount)")
        .message("spec.discount needs exactly one of percentage or amount")
        .field_path(".percentage"),
    validation = Rule::new("has(self.amount) == has(self.currency)")
        .message("spec.discount.amount needs its currency (the members' plans' currency), and currency is only for amounts")
        .field_path(".currency"),
)]
pub struct BundleDiscount {
    /// Percent off every member's list price, 1 to 99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 99))]
    pub percentage: Option<i32>,
    /// Amount off the members' total each billing period, e.g. "20.00"; shared among the
    /// members in proportion to their list prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$"))]
    pub amount: Option<String>,
    /// ISO 4217 currency of `amount`: the members' plans' currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: Option<String>,
}

/// A tenant's purchase of a bundle. The operator creates one TenantSubscription per member
/// (owned by this object, labelled `marketplace.dev/bundle-subscription`); setting
/// `spec.cancellation` cancels them all. Members cannot be cancelled one by one.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "BundleSubscription",
    doc = "A tenant's purchase of a Bundle: the operator creates one TenantSubscription per member, billed with the bundle's discount; cancelling it cancels every member.",
    namespaced,
    status = "BundleSubscriptionStatus",
    shortname = "bsub",
    category = "marketplace",
    printcolumn(name = "Bundle", type_ = "string", json_path = ".spec.bundle"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(validation = Rule::new("self.metadata.name.size() <= 40 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
    .message("metadata.name: a bundle subscription name must be a DNS label of at most 40 characters, so that its members' names fit"))]
#[x_kube(
    validation = Rule::new("!has(oldSelf.cancellation) || has(self.cancellation)")
        .message("spec.cancellation cannot be withdrawn: the bundle's members are being cancelled; buy the bundle anew instead")
        .field_path(".cancellation"),
)]
#[serde(rename_all = "camelCase")]
pub struct BundleSubscriptionSpec {
    /// Name of the Bundle bought. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.bundle is immutable; cancel this bundle subscription and buy the other bundle"))]
    pub bundle: ObjectName,

    /// A promotion code the buyer entered; the confirmed price is then the promoted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub promotion_code: Option<String>,

    /// Set to cancel every member (each ends as its own cancellation says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancellationRequest>,
}

/// Where a bundle purchase is.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundlePhase {
    /// Members are being created or are not all in service yet.
    Pending,
    /// Every member is in service.
    Active,
    /// Cancellation asked for; members are ending.
    Cancelling,
    /// Every member has ended.
    Cancelled,
    /// The bundle is not in the catalog (or no longer sells its members), or a member was
    /// refused; the message says why.
    Failed,
}

/// Observed state of a bundle purchase.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BundleSubscriptionStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the purchase is: Pending, Active, Cancelling, Cancelled or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BundlePhase>,
    /// Why the phase is what it is, for Failed and Pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The member subscriptions, one per bundle member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<BundleMemberStatus>,
    /// When every member was first in service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Time>,
    /// The promotion the bundle was bought under, decided once at the purchase and kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<AppliedBundlePromotion>,
}

/// A promotion as a bundle purchase keeps it: the members' shares come from its `price` until
/// `keptUntil`, then from the bundle's own discount.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedBundlePromotion {
    /// Name of the Promotion.
    pub name: ObjectName,
    /// The bundle's price (its own discount taken off) when bought, e.g. "47.20".
    pub list_price: String,
    /// The promoted bundle price billed each period, e.g. "37.76".
    pub price: String,
    /// Billing periods the promoted price is kept for.
    pub periods: i32,
    /// When the promoted price ends (the purchase plus `periods` billing intervals).
    pub kept_until: Time,
}

/// One member subscription as the bundle sees it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BundleMemberStatus {
    /// The member's Listing.
    pub listing: ObjectName,
    /// The plan it is bought on.
    pub plan: ObjectName,
    /// Name of the member TenantSubscription.
    pub subscription: String,
    /// The member subscription's phase, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
}

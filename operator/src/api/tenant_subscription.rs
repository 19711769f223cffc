//! `TenantSubscription`: a tenant's purchase of one plan of one listing (namespaced, in the
//! tenant's namespace, created by the tenant's billing admins).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::conditions_schema;
use super::shared::{FeatureCode, ObjectName, SecretRef};

/// A tenant's subscription to a plan of a listing. The operator validates it, bills it in
/// HubSpot and grants its features as Entitlements.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "TenantSubscription",
    doc = "A tenant's subscription to one plan of a listing: billed in HubSpot, granting the listing's features as Entitlements.",
    namespaced,
    status = "TenantSubscriptionStatus",
    shortname = "tsub",
    shortname = "subs",
    category = "marketplace",
    printcolumn(name = "Listing", type_ = "string", json_path = ".spec.listing"),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.plan"),
    printcolumn(name = "Quantity", type_ = "integer", json_path = ".spec.quantity"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
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
#[kube(
    validation = Rule::new("!has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase != 'Cancelled' || !has(oldSelf.spec.cancellation) || has(self.spec.cancellation)")
        .message("the cancellation request cannot be withdrawn: the subscription is already Cancelled; create a new subscription instead")
        .field_path(".spec.cancellation"),
    validation = Rule::new("has(self.spec.bundle) == has(oldSelf.spec.bundle)")
        .message("spec.bundle is set when a bundle member is created and cannot be added or removed")
        .field_path(".spec.bundle"),
    validation = Rule::new("!has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase != 'Cancelled' || (self.spec.plan == oldSelf.spec.plan && self.spec.quantity == oldSelf.spec.quantity)")
        .message("a Cancelled subscription cannot change plan or quantity; create a new subscription instead")
        .field_path(".spec.plan"),
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSubscriptionSpec {
    /// Name of the Listing subscribed to. Immutable: to switch add-ons, cancel and subscribe anew.
    #[x_kube(validation = Rule::new("self == oldSelf").message("listing is immutable; cancel this subscription and create a new one"))]
    pub listing: ObjectName,

    /// Name of the listing's plan. May change while the subscription is live (an up- or downgrade).
    pub plan: ObjectName,

    /// Number of units for PerUnit plans (seats, vehicles, GB); 1 for Flat plans.
    #[serde(default = "default_quantity")]
    #[schemars(range(min = 1, max = 100000))]
    pub quantity: i32,

    /// Start with the plan's free trial, if it has one. Chosen at creation; always present (the
    /// apiserver defaults it) so that its immutability rule applies.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("trial is chosen at creation and cannot change"))]
    pub trial: bool,

    /// Connection settings of an Integration listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Connection>,

    /// A promotion code the buyer entered (e.g. SPRING26). The promotion in force when the
    /// subscription was created is recorded in status.promotion; the code cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z0-9][A-Z0-9-]{2,31}$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("promotionCode is chosen at purchase and cannot change"))]
    pub promotion_code: Option<String>,

    /// Set to ask for cancellation; the subscription ends at the end of the paid period unless
    /// `effective` is Immediately. A bundle member is cancelled with its BundleSubscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancellationRequest>,

    /// Set by the operator on the members of a bundle purchase: the Bundle and the
    /// BundleSubscription (which owns the member). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.bundle is set when a bundle member is created and cannot change"))]
    pub bundle: Option<BundleMembership>,
}

/// The bundle purchase a subscription is a member of.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BundleMembership {
    /// Name of the Bundle.
    pub name: ObjectName,
    /// Name of the BundleSubscription in the same namespace.
    pub subscription: ObjectName,
}

fn default_quantity() -> i32 {
    1
}

/// Where an integration's connection settings are.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Secret in the subscription's namespace holding the connection settings, one key per
    /// property of the WizardConfig's connection schema.
    pub secret_ref: SecretRef,
    /// The field mapping the tenant chose in the wizard: target field name to source field name
    /// (the WizardConfig's `fieldMapping` targets and sources); shown back on Manage.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub field_mapping: std::collections::BTreeMap<String, String>,
}

/// A tenant's request to cancel.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct CancellationRequest {
    /// Why the tenant cancels (kept in the history and the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub reason: Option<String>,
    /// When the cancellation takes effect.
    #[serde(default)]
    pub effective: CancellationEffective,
}

/// When a cancellation takes effect.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CancellationEffective {
    /// Features stay until the end of the period already paid for.
    #[default]
    EndOfPeriod,
    /// Features are revoked at once.
    Immediately,
}

/// Phases of a subscription.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Created; waiting for validation or, for Approval listings, for an invoice.
    Requested,
    /// Approval listings: an invoice was sent.
    Invoiced,
    /// Approval listings: the invoice is paid; waiting for approval.
    Paid,
    /// Billing is in place; entitlements are being granted.
    Provisioning,
    /// In the free trial.
    Trialing,
    /// Billed and entitled.
    Active,
    /// Payment failed or the tenant is suspended; entitlements are Suspended.
    Suspended,
    /// Cancellation asked for; waiting for the end of the paid period.
    CancelRequested,
    /// Ended; entitlements revoked.
    Cancelled,
    /// Refused by a superadmin or by validation.
    Rejected,
    /// Rolled back after a failure it could not recover from.
    Failed,
}

/// Observed state of a subscription.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TenantSubscriptionStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the subscription is in its lifecycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Standard conditions, each with the generation it describes. Ready: in service; the
    /// reason is the phase, or the refusal that holds the subscription (e.g.
    /// ListingNotPublished). Billed: the HubSpot record; reasons Live (True), Cancelled,
    /// NotBilled (ended before anything was billed), Missing, Failed. Entitled: the plan's features as Entitlements; reasons Granted (True),
    /// Pending (not in service yet), Revoked (cancelled, rejected, failed or suspended), Failed
    /// (they could not be written). Synced: HubSpot and the cluster agree, as the last webhook
    /// or audit found; reasons InSync, Healed (True), DriftFound (False: healing failed).
    /// ConnectionTested (Integration listings): the connection Secret validates against the
    /// WizardConfig's schema and its test connection succeeded for this generation; reasons
    /// Succeeded (True), WizardConfigNotFound, ConnectionSecretNotFound, ConnectionInvalid,
    /// ConnectionTestFailed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Ids of the subscription's billing records in HubSpot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubspot: Option<HubSpotIds>,
    /// Feature codes currently granted by this subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<FeatureCode>,
    /// End of the free trial, when trialing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_ends_at: Option<Time>,
    /// End of the period paid for; a cancellation takes effect then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<Time>,
    /// Phase transitions, oldest first (the most recent ones are kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Transition>,
    /// The promotion the subscription was bought under, recorded once and kept for its periods
    /// even if the promotion later ends or leaves the catalog. For a bundle member: its share of
    /// the promotion its bundle was bought under (billed instead of `bundle` while kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<AppliedPromotion>,
    /// The bundle discount a member is billed with, recorded once from the catalog's Bundle
    /// when the member is created and kept while the member lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<AppliedBundle>,
}

/// A bundle member's share of its bundle's discount, as the member keeps it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedBundle {
    /// Name of the Bundle.
    pub name: ObjectName,
    /// The plan bought in the bundle; another plan is billed at its list price.
    pub plan: ObjectName,
    /// The plan's list unit price when bought, e.g. "49.00".
    pub list_price: String,
    /// The unit price billed, e.g. "39.20".
    pub price: String,
    /// Percent off, for percentage bundles (the line item's `hs_discount_percentage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_percentage: Option<i32>,
    /// Amount off each unit, for amount bundles (the line item's `discount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_amount: Option<String>,
}

/// A promotion as a subscription keeps it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedPromotion {
    /// Name of the Promotion.
    pub name: ObjectName,
    /// The plan bought under it; another plan is billed at its list price.
    pub plan: ObjectName,
    /// The plan's list unit price when bought, e.g. "49.00".
    pub list_price: String,
    /// The promoted unit price billed, e.g. "39.20".
    pub price: String,
    /// Percent off, for percentage promotions (billed as the line item's `hs_discount_percentage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_percentage: Option<i32>,
    /// Amount off each unit, for amount and price promotions (the line item's `discount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_amount: Option<String>,
    /// Billing periods the promoted price is kept for.
    pub periods: i32,
    /// When the promoted price ends (the purchase plus `periods` billing intervals).
    pub kept_until: Time,
}

/// HubSpot ids of a subscription's billing records.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HubSpotIds {
    /// The tenant's company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// The deal that represents this subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<String>,
    /// The line item billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_item_id: Option<String>,
    /// The commerce subscription that invoices the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// The commerce subscription's `hs_status` as last read (active, past_due, canceled, ...),
    /// or `none` when nothing was ever billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The plan the live HubSpot subscription bills; a different spec.plan is a plan change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_plan: Option<String>,
    /// The quantity the live HubSpot subscription bills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_quantity: Option<i32>,
    /// The promotion whose discount the live HubSpot subscription bills; once its kept periods
    /// are over, the subscription is billed anew at the list price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_promotion: Option<String>,
}

/// One phase transition.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Transition {
    /// Phase before the transition; absent for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Phase>,
    /// Phase after the transition.
    pub to: Phase,
    /// When it happened.
    pub at: Time,
    /// Who caused it: a user (for SubscriptionActions), `operator`, or `hubspot` (webhooks and audits).
    pub actor: String,
    /// Why, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The SubscriptionAction (namespace/name) that caused it, for approval steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

//! `SubscriptionAction`: a superadmin's step on the approval ladder of a subscription
//! (namespaced, in the operator's namespace, where only superadmins may create them).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::conditions_schema;
use super::shared::ObjectName;

/// One step a superadmin takes on a subscription: invoice it, mark it paid, approve, reject,
/// confirm a cancellation, or roll back. Immutable once created; the operator records whether it
/// was Accepted or Refused, and why.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "SubscriptionAction",
    doc = "A superadmin's step on a subscription's approval ladder (Invoice, MarkPaid, Approve, Reject, ConfirmCancel, Rollback). Immutable; status says Accepted or Refused.",
    namespaced,
    status = "SubscriptionActionStatus",
    shortname = "sact",
    category = "marketplace",
    printcolumn(
        name = "Tenant Namespace",
        type_ = "string",
        json_path = ".spec.subscriptionRef.namespace"
    ),
    printcolumn(
        name = "Subscription",
        type_ = "string",
        json_path = ".spec.subscriptionRef.name"
    ),
    printcolumn(name = "Action", type_ = "string", json_path = ".spec.action"),
    printcolumn(name = "Result", type_ = "string", json_path = ".status.result"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("self == oldSelf")
        .message("a SubscriptionAction is immutable; create a new action instead"),
    validation = Rule::new("self.action != 'Invoice' || has(self.invoice)")
        .message("an Invoice action needs spec.invoice with amount and currency")
        .field_path(".invoice"),
    validation = Rule::new("self.action == 'Invoice' || !has(self.invoice)")
        .message("spec.invoice is only allowed on Invoice actions")
        .field_path(".invoice"),
    validation = Rule::new("!(self.action in ['Reject', 'Rollback']) || (has(self.reason) && self.reason.size() > 0)")
        .message("Reject and Rollback actions need a reason")
        .field_path(".reason"),
)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionActionSpec {
    /// The subscription acted on.
    pub subscription_ref: SubscriptionRef,
    /// The step to take.
    pub action: ActionKind,
    /// The invoice sent, for Invoice actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<Invoice>,
    /// Why the step is taken; required for Reject and Rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub reason: Option<String>,
}

/// A reference to a TenantSubscription.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRef {
    /// The tenant namespace of the subscription.
    pub namespace: ObjectName,
    /// The subscription's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Steps on the approval ladder.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Requested → Invoiced: an invoice was sent to the tenant.
    Invoice,
    /// Invoiced → Paid: the invoice was paid.
    MarkPaid,
    /// Paid → Active: grant the features.
    Approve,
    /// Any phase before Active → Rejected.
    Reject,
    /// CancelRequested → Cancelled: end the subscription now.
    ConfirmCancel,
    /// After a provisioning failure: cancel the HubSpot subscription and mark it Failed.
    Rollback,
}

/// An invoice amount.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Invoice {
    /// Amount as a non-negative decimal string, e.g. "1200.00".
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$"))]
    pub amount: String,
    /// ISO 4217 currency code.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
}

/// Observed state of an action.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionActionStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the operator carried the action out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ActionResult>,
    /// Why, in a sentence (for Refused: what phase the subscription was in and what fits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Standard conditions (Ready once the action was handled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// Outcome of an action.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionResult {
    Accepted,
    Refused,
}

//! `Tenant`: a customer organisation of the SaaS product (cluster-scoped).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::conditions_schema;

/// Label on everything made for a tenant (its namespace, RBAC, Entitlements), naming it.
pub const TENANT_LABEL: &str = "marketplace.dev/tenant";

/// A customer organisation. The operator gives each tenant a namespace `tenant-<name>` where its
/// subscriptions and entitlements live, with RBAC for its people.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "Tenant",
    doc = "A customer organisation: its base plan, billing contact and the people who may buy, manage or view add-ons.",
    status = "TenantStatus",
    shortname = "tnt",
    category = "marketplace",
    printcolumn(
        name = "Display Name",
        type_ = "string",
        json_path = ".spec.displayName"
    ),
    printcolumn(name = "Base Plan", type_ = "string", json_path = ".spec.basePlan"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspended"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".status.namespace"),
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
#[kube(validation = Rule::new("self.metadata.name.size() <= 56")
    .message("metadata.name: tenant names are at most 56 characters, so that the namespace tenant-<name> fits in 63"))]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// The organisation's name as shown to people, e.g. "Acme Logistics".
    #[schemars(length(min = 1, max = 120))]
    pub display_name: String,
    /// The tenant's base plan of the core product (e.g. Starter, Professional, Enterprise);
    /// listings restrict who may buy them with availableOnPlans.
    #[schemars(length(min = 1, max = 63))]
    pub base_plan: String,
    /// Market segment, e.g. smb, mid-market, enterprise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub segment: Option<String>,
    /// Data residency region, e.g. us-east, eu-west.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub region: Option<String>,
    /// Who receives invoices.
    pub billing_contact: BillingContact,
    /// People who may buy, change and cancel add-ons (create, update and delete TenantSubscriptions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub billing_admins: Vec<Subject>,
    /// People who manage the tenant's add-ons but cannot buy them (read-only on subscriptions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub admins: Vec<Subject>,
    /// People who may see listings, subscriptions and entitlements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub viewers: Vec<Subject>,
    /// An internal tenant (the SaaS company's own staff or test accounts) also sees listings
    /// whose visibility is Internal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// A suspended tenant keeps its data, but all of its entitlements are Suspended.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
    /// Who hears of the tenant's add-ons by e-mail, besides the billing contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<TenantNotifications>,
    /// Prepaid credits: when the balance counts as low, and the automatic top-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<TenantCredits>,
}

/// A tenant's prepaid credit settings, for the balance in one currency.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantCredits {
    /// ISO 4217 code of the balance these settings watch, e.g. USD.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// When the balance falls below this decimal, the tenant (and superadmins) hear of it
    /// once (CreditBalanceLow), until it is back at or above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$"))]
    pub low_balance_threshold: Option<String>,
    /// Buy credits automatically when the balance falls low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_top_up: Option<AutoTopUp>,
}

/// An automatic top-up: one HubSpot charge of `amount` each time the balance falls below
/// `threshold`, granted once the charge is recorded.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AutoTopUp {
    /// A decimal in the settings' currency, e.g. "10.00".
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$"))]
    pub threshold: String,
    /// What is bought each time, e.g. "50.00" (0 buys nothing).
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$"))]
    pub amount: String,
    /// How long the bought credits last, in days.
    #[serde(default = "default_top_up_days")]
    #[schemars(range(min = 1, max = 3660))]
    pub valid_days: i32,
}

fn default_top_up_days() -> i32 {
    365
}

/// A tenant's notification settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TenantNotifications {
    /// E-mail addresses of the tenant's admins; they receive every tenant message the billing
    /// contact receives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub admin_emails: Vec<super::notification_channel::EmailAddress>,
    /// No marketing messages (new listings, unused add-ons). Billing and service messages
    /// (invoices, payments, activation, cancellation, trials) are always sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub marketing_opt_out: bool,
}

/// The billing contact of a tenant.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct BillingContact {
    /// Full name.
    #[schemars(length(min = 1, max = 120))]
    pub name: String,
    /// E-mail address invoices are sent to.
    #[schemars(
        length(min = 3, max = 254),
        regex(pattern = r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    )]
    pub email: String,
}

/// A Kubernetes RBAC subject: a user, a group or a service account.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new("self.kind != 'ServiceAccount' || has(self.namespace)")
        .message("a ServiceAccount subject needs a namespace")
        .field_path(".namespace"),
    validation = Rule::new("self.kind == 'ServiceAccount' || !has(self.namespace)")
        .message("namespace is only allowed on ServiceAccount subjects")
        .field_path(".namespace"),
)]
pub struct Subject {
    /// User, Group or ServiceAccount.
    pub kind: SubjectKind,
    /// The user name (as the apiserver authenticates it), group name or service account name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of a ServiceAccount subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Kinds of RBAC subject.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

/// Observed state of a tenant.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The tenant's namespace, where its subscriptions and entitlements live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Id of the tenant's company record in HubSpot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubspot_company_id: Option<String>,
    /// Standard conditions. Ready: namespace, RBAC and (with billing) the HubSpot company and
    /// billing contact are in place; reasons Provisioned, Suspended (the tenant is suspended,
    /// everything stays in place) and HubSpotCompanyFailed (False; the message says why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

//! The answers the handlers assemble with `json!` around the views (an envelope, the caller's
//! rights, the error shape), as types the document can describe. Each names the handler that
//! renders it; `tests.rs` checks the refusals the router really sends against them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::Serialize;

use crate::api::subscription_action::{SubscriptionActionSpec, SubscriptionActionStatus};
use crate::api::wizard_config::WizardConfigSpec;
use crate::front_door::console::inbox::InboxItem;
use crate::front_door::decide::{EntitlementView, FeatureCheck};
use crate::front_door::storefront::catalog::CatalogPage;
use crate::front_door::storefront::detail::{ListingDetail, SubscriptionView};
use crate::front_door::storefront::navigation::NavigationView;
use crate::front_door::storefront::price::QuotedPrice;

/// Every REST error: a stable `code` to branch on, the `field` at fault when there is one, and
/// a `message` a person can act on.
#[derive(Serialize, JsonSchema)]
pub struct ApiError {
    /// e.g. `Unauthenticated`, `Forbidden`, `TenantNotFound`, `ListingNotFound`,
    /// `PriceChanged`, `IdempotencyKeyReused`, `RateLimited`, `InvalidBody`.
    pub code: String,
    /// The request field, path parameter or header at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// A purchase's 409: the price changed since the buyer confirmed it (`PriceChanged`, with the
/// price and sentence to confirm now), or another conflict (code and message only).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseConflict {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// `PriceChanged`: what the plan costs now; send it back as `confirmedPrice`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_price: Option<QuotedPrice>,
    /// `PriceChanged`: the sentence to show the buyer again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<String>,
}

/// `GET /v1/tenants/{tenant}/entitlements`.
#[derive(Serialize, JsonSchema)]
pub struct EntitlementList {
    pub tenant: String,
    /// One per feature, sorted by feature code.
    pub entitlements: Vec<EntitlementView>,
}

/// The first event of the change stream (`event: snapshot`); each later `event: entitlement`
/// carries one [`FeatureCheck`].
#[derive(Serialize, JsonSchema)]
pub struct StreamSnapshot {
    /// Every feature the tenant holds; a feature not listed is not enabled.
    pub entitlements: Vec<FeatureCheck>,
}

/// What the caller may do in the tenant, for the UI to enable its buttons.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rights {
    pub may_buy: bool,
    pub may_cancel: bool,
}

/// `GET /v1/tenants/{tenant}/catalog`.
#[derive(Serialize, JsonSchema)]
pub struct CatalogAnswer {
    #[serde(flatten)]
    pub page: CatalogPage,
    pub rights: Rights,
}

/// `GET /v1/tenants/{tenant}/catalog/{listing}`.
#[derive(Serialize, JsonSchema)]
pub struct ListingAnswer {
    #[serde(flatten)]
    pub detail: ListingDetail,
    /// The integration's WizardConfig (its settings schema and fields), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wizard: Option<WizardConfigSpec>,
    pub rights: Rights,
}

/// `GET /v1/tenants/{tenant}/navigation`.
#[derive(Serialize, JsonSchema)]
pub struct NavigationList {
    /// By menu, then order (unordered last), then label.
    pub entries: Vec<NavigationView>,
}

/// `GET /v1/tenants/{tenant}/subscriptions`.
#[derive(Serialize, JsonSchema)]
pub struct SubscriptionList {
    /// Newest first.
    pub subscriptions: Vec<SubscriptionView>,
    pub rights: Rights,
}

/// `POST /v1/tenants/{tenant}/subscriptions` (201).
#[derive(Serialize, JsonSchema)]
pub struct Purchased {
    pub subscription: SubscriptionView,
    /// The sentence the buyer confirmed.
    pub confirmation: String,
}

/// `GET /v1/admin/inbox`.
#[derive(Serialize, JsonSchema)]
pub struct InboxList {
    /// Oldest first.
    pub items: Vec<InboxItem>,
}

/// `POST /v1/admin/tenants/{tenant}/subscriptions/{name}/actions` (201): the SubscriptionAction
/// as the apiserver stored it (the operator fills its status soon after).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAction {
    /// `marketplace.dev/v1alpha1`.
    pub api_version: String,
    /// `SubscriptionAction`.
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: SubscriptionActionSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SubscriptionActionStatus>,
}

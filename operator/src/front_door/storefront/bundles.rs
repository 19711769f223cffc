//! Bundles in the storefront's JSON API: the bundles a tenant may buy with their prices, buying
//! one (a BundleSubscription created as the caller; the operator creates its members) and
//! cancelling one. The decisions are [`super::bundle_offers`]'s, shared with the web pages.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::bundle_offers::{
    BundleOffer, BundleRefusal, Promoting, bundle_offers, decide_bundle_cancel, decide_bundle_code,
    decide_bundle_purchase, purchase_name,
};
use super::changes::CancelRequest;
use super::price::QuotedPrice;
use super::routes::{apiserver_refusal, error, idempotency_key, parse, read_scope, scope};
use crate::api::bundle::{BundleSubscription, BundleSubscriptionSpec, BundleSubscriptionStatus};
use crate::api::tenant::Tenant;
use crate::api::tenant_subscription::CancellationRequest;
use crate::api::tenant_subscription::TenantSubscription;
use crate::controllers::tenant_rbac::namespace_name;
use crate::front_door::auth::Access;
use crate::front_door::read_limits::ReadClass;
use crate::front_door::routes::{FrontDoor, rest_refusal, with_etag};
use crate::lifecycle::promotion::Buyer;
use crate::lifecycle::visibility::Viewer;

pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/v1/tenants/{tenant}/bundles", get(list_bundles))
        .route(
            "/v1/tenants/{tenant}/bundle-subscriptions",
            get(list_purchases).post(purchase),
        )
        .route(
            "/v1/tenants/{tenant}/bundle-subscriptions/{name}/cancel",
            post(cancel),
        )
}

/// The bundles on offer to `tenant_name` now, priced with the promotions it gets with `code`
/// (or only with the promotions of that code, when `only_coded`).
pub(crate) fn offers_for(
    door: &FrontDoor,
    tenant_name: &str,
    tenant: &Tenant,
    code: Option<&str>,
) -> Vec<BundleOffer> {
    offers_with(door, tenant_name, tenant, code, false)
}

/// The bundles on offer to `tenant_name` now priced with `code`; with a code, refused when no
/// promotion of that code lowers bundle `bundle` for it ([`decide_bundle_code`]).
pub(crate) fn offers_with_code(
    door: &FrontDoor,
    tenant_name: &str,
    tenant: &Tenant,
    bundle: &str,
    code: Option<&str>,
) -> Result<Vec<BundleOffer>, BundleRefusal> {
    if let Some(code) = code {
        let coded = offers_with(door, tenant_name, tenant, Some(code), true);
        decide_bundle_code(bundle, &coded, code)?;
    }
    Ok(offers_for(door, tenant_name, tenant, code))
}

fn offers_with(
    door: &FrontDoor,
    tenant_name: &str,
    tenant: &Tenant,
    code: Option<&str>,
    only_coded: bool,
) -> Vec<BundleOffer> {
    let mut promotions = door.stores.promotions();
    if only_coded {
        promotions.retain(|p| p.spec.code.is_some() && p.spec.code.as_deref() == code);
    }
    let promoting = Promoting {
        buyer: Buyer::of(&tenant.spec),
        promotions: &promotions,
        code,
        now: jiff::Timestamp::now(),
    };
    bundle_offers(
        &door.stores.bundles.store().state(),
        &door.stores.listings.store().state(),
        Viewer::of(tenant_name, tenant),
        &promoting,
    )
}

/// The tenant's bundle purchases, from the cache.
pub(crate) fn purchases_in(door: &FrontDoor, tenant: &str) -> Vec<Arc<BundleSubscription>> {
    door.stores
        .bundle_subscriptions
        .in_namespace(&namespace_name(tenant))
}

async fn list_bundles(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let scope = match read_scope(&door, &headers, &tenant, ReadClass::Browse).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let body = BundleList {
        bundles: offers_for(&door, &tenant, &scope.tenant, None),
    };
    with_etag(&headers, &[], &body)
}

async fn list_purchases(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = read_scope(&door, &headers, &tenant, ReadClass::Browse).await {
        return response;
    }
    let body = BundlePurchaseList {
        bundle_subscriptions: purchases_in(&door, &tenant)
            .iter()
            .map(|p| purchase_view(p))
            .collect(),
    };
    with_etag(&headers, &[], &body)
}

/// A bundle purchase as the storefront shows it.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BundlePurchaseView {
    /// The BundleSubscription's name.
    pub name: String,
    pub bundle: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancellationRequest>,
    /// Phase, message and members (each with its subscription's name and phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BundleSubscriptionStatus>,
}

/// `GET /v1/tenants/{tenant}/bundles`.
#[derive(Serialize, JsonSchema)]
pub struct BundleList {
    pub bundles: Vec<BundleOffer>,
}

/// `GET /v1/tenants/{tenant}/bundle-subscriptions`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundlePurchaseList {
    pub bundle_subscriptions: Vec<BundlePurchaseView>,
}

/// `POST /v1/tenants/{tenant}/bundle-subscriptions` (201).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundlePurchased {
    pub bundle_subscription: BundlePurchaseView,
    /// The bundle and prices bought.
    pub offer: BundleOffer,
}

pub(crate) fn purchase_view(purchase: &BundleSubscription) -> BundlePurchaseView {
    BundlePurchaseView {
        name: purchase.name_any(),
        bundle: purchase.spec.bundle.to_string(),
        cancellation: purchase.spec.cancellation.clone(),
        status: purchase.status.clone(),
    }
}

/// `POST /v1/tenants/{t}/bundle-subscriptions`.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BundlePurchaseRequest {
    pub bundle: String,
    /// The price the buyer saw (the offer's `price`, `currency` and `interval`), required: the
    /// purchase goes through only at that price (409 `PriceChanged` otherwise, 422
    /// `PriceNotConfirmed` when it is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_price: Option<QuotedPrice>,
    /// A promotion code the buyer entered; the confirmed price is then the promoted one (422
    /// `PromotionCodeInvalid` when no promotion of that code lowers the bundle for the tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_code: Option<String>,
}

pub(crate) async fn purchase(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = match scope(&door, &headers, &tenant, Access::Buy).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let request: BundlePurchaseRequest = match parse(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    // Without a key every request is new: a name no retry will repeat.
    let key = match idempotency_key(&headers) {
        Ok(key) => key.unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond().to_string()),
        Err(response) => return *response,
    };
    let name = purchase_name(&request.bundle, &tenant, &key);
    let namespace = namespace_name(&tenant);
    let as_caller = match door.impersonator.client_for(&scope.caller.user) {
        Ok(client) => client,
        Err(refusal) => return rest_refusal(refusal),
    };
    let api: Api<BundleSubscription> = Api::namespaced(as_caller, &namespace);
    // A retry: answer as the first time.
    if let Ok(Some(existing)) = api.get_opt(&name).await {
        if existing.spec.bundle.as_str() != request.bundle {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IdempotencyKeyReused",
                Some("Idempotency-Key"),
                "this Idempotency-Key was used for another request; use a new key for a new purchase",
            );
        }
        return (StatusCode::OK, axum::Json(purchase_view(&existing))).into_response();
    }
    let subs: Vec<&TenantSubscription> = scope.subscriptions.iter().map(Arc::as_ref).collect();
    let code = request
        .promotion_code
        .as_deref()
        .map(|c| c.trim().to_ascii_uppercase());
    let offers = match offers_with_code(
        &door,
        &tenant,
        &scope.tenant,
        &request.bundle,
        code.as_deref(),
    ) {
        Ok(offers) => offers,
        Err((status, reason, message)) => {
            return error(status, reason, Some("promotionCode"), &message);
        }
    };
    let confirmed = request.confirmed_price.as_ref();
    let offer = match decide_bundle_purchase(&request.bundle, &offers, &subs, confirmed) {
        Ok(offer) => offer,
        Err((status, code, message)) => {
            let field = if matches!(code, "PriceChanged" | "PriceNotConfirmed") {
                "confirmedPrice"
            } else {
                "bundle"
            };
            return error(status, code, Some(field), &message);
        }
    };
    let mut object = BundleSubscription::new(
        &name,
        BundleSubscriptionSpec {
            bundle: request.bundle.as_str().into(),
            promotion_code: code,
            cancellation: None,
        },
    );
    object.metadata.namespace = Some(namespace);
    match api.create(&PostParams::default(), &object).await {
        Ok(created) => (
            StatusCode::CREATED,
            axum::Json(BundlePurchased {
                bundle_subscription: purchase_view(&created),
                offer,
            }),
        )
            .into_response(),
        Err(e) => apiserver_refusal(e),
    }
}

pub(crate) async fn cancel(
    State(door): State<FrontDoor>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = match scope(&door, &headers, &tenant, Access::Change).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let request: CancelRequest = match parse(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let Some(found) = purchases_in(&door, &tenant)
        .into_iter()
        .find(|p| p.name_any() == name)
    else {
        return error(
            StatusCode::NOT_FOUND,
            "BundleSubscriptionNotFound",
            Some("name"),
            &format!("the tenant has no bundle subscription {name:?}"),
        );
    };
    let cancellation = match decide_bundle_cancel(&found, &request) {
        Ok(cancellation) => cancellation,
        Err((status, code, message)) => return error(status, code, None, &message),
    };
    let as_caller = match door.impersonator.client_for(&scope.caller.user) {
        Ok(client) => client,
        Err(refusal) => return rest_refusal(refusal),
    };
    let patch = json!({"spec": {"cancellation": cancellation}});
    match Api::<BundleSubscription>::namespaced(as_caller, &namespace_name(&tenant))
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(updated) => axum::Json(purchase_view(&updated)).into_response(),
        Err(e) => apiserver_refusal(e),
    }
}

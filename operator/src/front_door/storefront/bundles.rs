//! Bundles in the storefront: the bundles a tenant may buy with their prices
//! ([`bundle_offers`], pure), buying one (a BundleSubscription created as the caller; the
//! operator creates its members) and cancelling one.

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
use sha2::{Digest, Sha256};

use super::changes::CancelRequest;
use super::price::plain_amount;
use super::routes::{apiserver_refusal, error, idempotency_key, parse, read_scope, scope};
use crate::api::bundle::{BundleSubscription, BundleSubscriptionSpec, BundleSubscriptionStatus};
use crate::api::listing::Listing;
use crate::api::tenant::Tenant;
use crate::api::tenant_subscription::TenantSubscription;
use crate::api::{Bundle, tenant_subscription::CancellationRequest};
use crate::controllers::tenant_rbac::namespace_name;
use crate::front_door::auth::Access;
use crate::front_door::read_limits::ReadClass;
use crate::front_door::routes::{FrontDoor, rest_refusal, with_etag};
use crate::lifecycle::bundle::{BundleQuote, quote};
use crate::lifecycle::is_terminal;
use crate::lifecycle::visibility::{Viewer, visible_to};

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

/// A member of a bundle on offer.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OfferMember {
    pub listing: String,
    pub display_name: String,
    pub plan: String,
    pub list_price: String,
    pub price: String,
}

/// A bundle the tenant may buy.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BundleOffer {
    pub name: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub members: Vec<OfferMember>,
    pub currency: String,
    /// `Month` or `Year`: every member is billed on it.
    pub interval: String,
    /// The members' list prices added up.
    pub list_total: String,
    /// What the bundle costs each interval.
    pub price: String,
    pub savings: String,
}

fn offer(bundle: &Bundle, quote: &BundleQuote) -> BundleOffer {
    BundleOffer {
        name: bundle.name_any(),
        display_name: bundle.spec.display_name.clone(),
        description: bundle.spec.description.clone(),
        members: quote
            .members
            .iter()
            .map(|m| OfferMember {
                listing: m.listing.clone(),
                display_name: m.display_name.clone(),
                plan: m.plan.clone(),
                list_price: plain_amount(m.list_price),
                price: plain_amount(m.price),
            })
            .collect(),
        currency: quote.currency.clone(),
        interval: format!("{:?}", quote.interval),
        list_total: plain_amount(quote.list_total),
        price: plain_amount(quote.total),
        savings: plain_amount(quote.savings()),
    }
}

/// The bundles `tenant` may buy: every member listing visible to it and the bundle sellable
/// (its quote holds), by display name.
pub fn bundle_offers(
    bundles: &[Arc<Bundle>],
    listings: &[Arc<Listing>],
    viewer: Viewer<'_>,
) -> Vec<BundleOffer> {
    let find = |name: &str| {
        listings
            .iter()
            .find(|l| l.name_any() == name)
            .map(|l| &l.spec)
    };
    let mut offers: Vec<BundleOffer> = bundles
        .iter()
        .filter(|b| {
            b.spec
                .members
                .iter()
                .all(|m| find(m.listing.as_str()).is_some_and(|l| visible_to(l, viewer)))
        })
        .filter_map(|b| Some(offer(b, &quote(&b.spec, find, |_| false).ok()?)))
        .collect();
    offers.sort_by(|a, b| (&a.display_name, &a.name).cmp(&(&b.display_name, &b.name)));
    offers
}

/// Why `tenant` cannot buy bundle `name` now, as (HTTP status, code, message); else its offer.
pub fn decide_bundle_purchase(
    name: &str,
    offers: &[BundleOffer],
    subscriptions: &[&TenantSubscription],
) -> Result<BundleOffer, (StatusCode, &'static str, String)> {
    let Some(found) = offers.iter().find(|o| o.name == name) else {
        return Err((
            StatusCode::NOT_FOUND,
            "BundleNotFound",
            format!("there is no bundle {name:?} this tenant may buy"),
        ));
    };
    let live = |listing: &str| {
        subscriptions.iter().any(|s| {
            s.spec.listing.as_str() == listing
                && !s
                    .status
                    .as_ref()
                    .and_then(|st| st.phase)
                    .is_some_and(is_terminal)
        })
    };
    if let Some(member) = found.members.iter().find(|m| live(&m.listing)) {
        return Err((
            StatusCode::CONFLICT,
            "AlreadySubscribed",
            format!(
                "the tenant already subscribes to {} ({}); cancel that subscription before buying bundle {name:?}",
                member.display_name, member.listing
            ),
        ));
    }
    Ok(found.clone())
}

/// The BundleSubscription's name for a purchase: the same for every retry with one
/// Idempotency-Key, and at most 40 characters (its members' names must fit a label).
pub fn purchase_name(bundle: &str, tenant: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}\n{key}").as_bytes());
    let suffix: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    let prefix: String = bundle.chars().take(40 - 11).collect();
    format!("{}-{suffix}", prefix.trim_end_matches('-'))
}

fn offers_for(door: &FrontDoor, tenant_name: &str, tenant: &Tenant) -> Vec<BundleOffer> {
    bundle_offers(
        &door.stores.bundles.store().state(),
        &door.stores.listings.store().state(),
        Viewer::of(tenant_name, tenant),
    )
}

fn purchases_in(door: &FrontDoor, tenant: &str) -> Vec<Arc<BundleSubscription>> {
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
        bundles: offers_for(&door, &tenant, &scope.tenant),
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

fn purchase_view(purchase: &BundleSubscription) -> BundlePurchaseView {
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
}

async fn purchase(
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
    let offers = offers_for(&door, &tenant, &scope.tenant);
    let offer = match decide_bundle_purchase(&request.bundle, &offers, &subs) {
        Ok(offer) => offer,
        Err((status, code, message)) => return error(status, code, Some("bundle"), &message),
    };
    let mut object = BundleSubscription::new(
        &name,
        BundleSubscriptionSpec {
            bundle: request.bundle.as_str().into(),
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

async fn cancel(
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
    if found.spec.cancellation.is_some() {
        return error(
            StatusCode::CONFLICT,
            "AlreadyCancelling",
            None,
            "the bundle is already being cancelled",
        );
    }
    let cancellation = CancellationRequest {
        reason: request.reason.clone(),
        effective: request.effective,
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

#[cfg(test)]
#[path = "bundles_tests.rs"]
mod tests;

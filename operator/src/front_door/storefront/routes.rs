//! The storefront's handlers: check the caller, gather the tenant's facts from the caches, ask
//! the deciders, and (for writes) act as the caller.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::{Value, json};

use super::catalog::{CatalogQuery, TenantFacts, catalog_page};
use super::changes::{
    CancelRequest, ChangeRequest, decide_cancel, decide_change, decide_undo_cancel,
};
use super::detail::{listing_detail, subscription_view, subscriptions_view};
use super::navigation::navigation;
use super::purchase::{
    CONFIRMED_ANNOTATION, IDEMPOTENCY_KEY_ANNOTATION, Purchase, PurchaseRefusal, PurchaseRequest,
    REQUEST_HASH_ANNOTATION, decide_purchase, request_hash, subscription_name, valid_key,
};
use super::wizard::{
    WizardTestRequest, check_mapping, check_settings, invalid_settings_body, test_result_body,
};
use crate::api::tenant::Tenant;
use crate::api::tenant_subscription::TenantSubscription;
use crate::api::wizard_config::WizardConfig;
use crate::connection::test_connection;
use crate::controllers::tenant_rbac::namespace_name;
use crate::front_door::auth::{Access, Caller, Refusal};
use crate::front_door::read_limits::ReadClass;
use crate::front_door::routes::{FrontDoor, rest_refusal, with_etag};

/// The storefront's routes (merged into [`crate::front_door::router`]).
pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/v1/tenants/{tenant}/catalog", get(catalog))
        .route("/v1/tenants/{tenant}/catalog/{listing}", get(detail))
        .route(
            "/v1/tenants/{tenant}/catalog/{listing}/wizard/test",
            post(wizard_test),
        )
        .route("/v1/tenants/{tenant}/navigation", get(navigation_entries))
        .route(
            "/v1/tenants/{tenant}/subscriptions",
            get(list_subscriptions).post(purchase),
        )
        .route(
            "/v1/tenants/{tenant}/subscriptions/{name}",
            get(one_subscription).patch(change),
        )
        .route(
            "/v1/tenants/{tenant}/subscriptions/{name}/cancel",
            post(cancel).delete(undo_cancel),
        )
        .merge(super::bundles::routes())
}

/// A JSON error a person can act on: a stable code, the field at fault, a message.
pub(crate) fn error(
    status: StatusCode,
    code: &str,
    field: Option<&str>,
    message: &str,
) -> Response {
    let mut body = json!({"code": code, "message": message});
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    (status, axum::Json(body)).into_response()
}

pub(crate) fn refused(refusal: PurchaseRefusal) -> Response {
    match refusal {
        PurchaseRefusal::ListingNotFound => error(
            StatusCode::NOT_FOUND,
            "ListingNotFound",
            Some("listing"),
            "there is no such listing in this tenant's catalog",
        ),
        PurchaseRefusal::Invalid {
            code,
            field,
            message,
        } => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &code,
            Some(&field),
            &message,
        ),
        PurchaseRefusal::Conflict { code, message } => {
            error(StatusCode::CONFLICT, &code, None, &message)
        }
        PurchaseRefusal::PriceChanged {
            current,
            confirmation,
        } => (
            StatusCode::CONFLICT,
            axum::Json(json!({
                "code": "PriceChanged",
                "field": "confirmedPrice",
                "message": format!("the price is not the one confirmed; ask the buyer again: {confirmation}"),
                "currentPrice": current,
                "confirmation": confirmation,
            })),
        )
            .into_response(),
        PurchaseRefusal::TooSoon {
            retry_after_seconds,
            message,
        } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "RateLimited",
                Some("listing"),
                &message,
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

/// A refusal from the apiserver (RBAC, admission, a conflict) passed on with its own words.
pub(crate) fn apiserver_refusal(e: kube::Error) -> Response {
    match e {
        kube::Error::Api(status) => {
            let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::BAD_GATEWAY);
            error(code, &status.reason, None, &status.message)
        }
        other => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            None,
            &other.to_string(),
        ),
    }
}

/// What a handler knows of a tenant once the caller may read it.
pub(crate) struct TenantScope {
    pub(crate) caller: Caller,
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) subscriptions: Vec<Arc<TenantSubscription>>,
    pub(crate) entitled: BTreeSet<String>,
    promotions: Vec<Arc<crate::api::Promotion>>,
}

impl TenantScope {
    pub(crate) fn facts<'a>(
        &'a self,
        name: &'a str,
        subs: &'a [&'a TenantSubscription],
    ) -> TenantFacts<'a> {
        TenantFacts {
            name,
            tenant: &self.tenant,
            subscriptions: subs,
            entitled_features: &self.entitled,
            promotions: &self.promotions,
        }
    }
}

/// The caller may read `tenant` (and do `access` too, when it is more than reading).
pub(crate) async fn scope(
    door: &FrontDoor,
    headers: &HeaderMap,
    tenant: &str,
    access: Access,
) -> Result<TenantScope, Response> {
    let caller = door.auth.caller(headers).await.map_err(rest_refusal)?;
    let may_read = door
        .auth
        .allows(&caller, tenant, Access::Read)
        .await
        .map_err(rest_refusal)?;
    if !may_read {
        return Err(rest_refusal(Refusal::Forbidden));
    }
    if access != Access::Read
        && !door
            .auth
            .allows(&caller, tenant, access)
            .await
            .map_err(rest_refusal)?
    {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            None,
            "only the tenant's billing admins may buy, change or cancel add-ons; ask one of them",
        ));
    }
    let tenant_object = door.stores.tenant(tenant).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "TenantNotFound",
            Some("tenant"),
            &format!("there is no tenant {tenant:?}"),
        )
    })?;
    let namespace = namespace_name(tenant);
    // The per-tenant index answers without scanning every cached Entitlement.
    let entitled = door
        .index
        .features(tenant)
        .iter()
        .filter(|f| f.state.is_usable())
        .map(|f| f.feature.clone())
        .collect();
    Ok(TenantScope {
        caller,
        tenant: tenant_object,
        subscriptions: door.stores.subscriptions_in(&namespace),
        entitled,
        promotions: door.stores.promotions(),
    })
}

/// [`scope`] for a read, counted against the tenant's read rate of `class` (429 beyond it).
pub(crate) async fn read_scope(
    door: &FrontDoor,
    headers: &HeaderMap,
    tenant: &str,
    class: ReadClass,
) -> Result<TenantScope, Response> {
    let scope = scope(door, headers, tenant, Access::Read).await?;
    door.auth
        .within_read_rate(tenant, class)
        .map_err(rest_refusal)?;
    Ok(scope)
}

/// The caller's rights in the tenant, for the UI to enable or disable its buttons.
#[derive(serde::Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rights {
    pub(crate) may_buy: bool,
    pub(crate) may_cancel: bool,
}

pub(crate) async fn rights(door: &FrontDoor, caller: &Caller, tenant: &str) -> Rights {
    let may_buy = door
        .auth
        .allows(caller, tenant, Access::Buy)
        .await
        .unwrap_or(false);
    let may_cancel = door
        .auth
        .allows(caller, tenant, Access::Change)
        .await
        .unwrap_or(false);
    Rights {
        may_buy,
        may_cancel,
    }
}

pub(crate) fn refs(subs: &[Arc<TenantSubscription>]) -> Vec<&TenantSubscription> {
    subs.iter().map(Arc::as_ref).collect()
}

async fn catalog(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    Query(query): Query<CatalogQuery>,
    headers: HeaderMap,
) -> Response {
    let scope = match read_scope(&door, &headers, &tenant, ReadClass::Browse).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let subs = refs(&scope.subscriptions);
    let listings = door.stores.listings.state();
    let page = catalog_page(
        listings.iter().map(Arc::as_ref),
        &scope.facts(&tenant, &subs),
        &query,
        Timestamp::now(),
    );
    let mut body = json!(page);
    body["rights"] = json!(rights(&door, &scope.caller, &tenant).await);
    with_etag(&headers, &[], &body)
}

async fn detail(
    State(door): State<FrontDoor>,
    Path((tenant, listing)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let scope = match read_scope(&door, &headers, &tenant, ReadClass::Detail).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let subs = refs(&scope.subscriptions);
    let facts = scope.facts(&tenant, &subs);
    let Some(found) = door
        .stores
        .listing(&listing)
        .filter(|l| super::catalog::shown_to(l, &facts))
    else {
        return refused(PurchaseRefusal::ListingNotFound);
    };
    let detail = listing_detail(&found, &facts, Timestamp::now());
    let mut body = json!(detail);
    if let Some(name) = &detail.wizard_config {
        // WizardConfigs are not cached (few, and read only here).
        let wizards: Api<WizardConfig> = Api::all(door.client.clone());
        if let Ok(Some(wizard)) = wizards.get_opt(name).await {
            body["wizard"] = json!(wizard.spec);
        }
    }
    body["rights"] = json!(rights(&door, &scope.caller, &tenant).await);
    with_etag(&headers, &[], &body)
}

async fn navigation_entries(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let scope = match read_scope(&door, &headers, &tenant, ReadClass::Check).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let subs = refs(&scope.subscriptions);
    let listings = door.stores.listings.state();
    let entries = navigation(
        listings.iter().map(Arc::as_ref),
        &scope.facts(&tenant, &subs),
    );
    with_etag(&headers, &[], &json!({"entries": entries}))
}

/// The WizardConfig of an integration listing the tenant may see, or the answer why not.
pub(crate) async fn wizard_of(
    door: &FrontDoor,
    facts: &TenantFacts<'_>,
    listing: &str,
) -> Result<WizardConfig, Box<Response>> {
    let found = door
        .stores
        .listing(listing)
        .filter(|l| super::catalog::shown_to(l, facts))
        .ok_or_else(|| Box::new(refused(PurchaseRefusal::ListingNotFound)))?;
    let Some(integration) = &found.spec.integration else {
        return Err(Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "NotAnIntegration",
            Some("listing"),
            &format!("{listing} has no connection wizard"),
        )));
    };
    let name = integration.wizard_config_ref.as_str();
    match Api::<WizardConfig>::all(door.client.clone())
        .get_opt(name)
        .await
    {
        Ok(Some(wizard)) => Ok(wizard),
        Ok(None) => Err(Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "WizardConfigNotFound",
            None,
            &format!("the listing's WizardConfig {name} is not in the catalog yet"),
        ))),
        Err(e) => Err(Box::new(apiserver_refusal(e))),
    }
}

async fn wizard_test(
    State(door): State<FrontDoor>,
    Path((tenant, listing)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = match scope(&door, &headers, &tenant, Access::Buy).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let request: WizardTestRequest = match parse(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let subs = refs(&scope.subscriptions);
    let wizard = match wizard_of(&door, &scope.facts(&tenant, &subs), &listing).await {
        Ok(wizard) => wizard,
        Err(response) => return *response,
    };
    let settings = match check_settings(&wizard.spec, &request.connection) {
        Ok(settings) => settings,
        Err(e) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(invalid_settings_body(&e)),
            )
                .into_response();
        }
    };
    let result = test_connection(&wizard.spec.test_connection, &settings, &door.probe).await;
    axum::Json(test_result_body(&result)).into_response()
}

async fn list_subscriptions(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let scope = match read_scope(&door, &headers, &tenant, ReadClass::Browse).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let body = json!({
        "subscriptions": subscriptions_view(scope.subscriptions.iter().map(Arc::as_ref)),
        "rights": rights(&door, &scope.caller, &tenant).await,
    });
    with_etag(&headers, &[], &body)
}

/// The tenant's subscription `name`, or the 404 that says there is none.
fn find<'a>(scope: &'a TenantScope, name: &str) -> Result<&'a TenantSubscription, Box<Response>> {
    scope
        .subscriptions
        .iter()
        .map(Arc::as_ref)
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::NOT_FOUND,
                "SubscriptionNotFound",
                Some("name"),
                &format!("the tenant has no subscription {name:?}"),
            ))
        })
}

async fn one_subscription(
    State(door): State<FrontDoor>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let scope = match read_scope(&door, &headers, &tenant, ReadClass::Browse).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    match find(&scope, &name) {
        Ok(sub) => with_etag(&headers, &[], &subscription_view(sub)),
        Err(response) => *response,
    }
}

/// The JSON body (an empty one reads as `{}`), or the 422 that says what is wrong with it.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidBody",
            None,
            &format!("the request body is not valid: {e}"),
        ))
    })
}

/// The request's `Idempotency-Key`, if it sent one, or the 400 that says it is malformed.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(key)) if valid_key(key) => Ok(Some(key.to_string())),
        Some(_) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidIdempotencyKey",
            Some("Idempotency-Key"),
            "an Idempotency-Key is 1 to 255 visible ASCII characters",
        ))),
    }
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
    let request: PurchaseRequest = match parse(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let now = Timestamp::now();
    // Without a key every request is new: a name no retry will repeat.
    let key_or_once = key
        .clone()
        .unwrap_or_else(|| now.as_nanosecond().to_string());
    let name = subscription_name(&request.listing, &tenant, &key_or_once);
    let namespace = namespace_name(&tenant);
    let as_caller = match door.impersonator.client_for(&scope.caller.user) {
        Ok(client) => client,
        Err(refusal) => return rest_refusal(refusal),
    };
    let hash = request_hash(&request);
    let subscriptions: Api<TenantSubscription> = Api::namespaced(as_caller.clone(), &namespace);
    // A retry of a request that was already made: answer as the first time, decide nothing.
    if key.is_some()
        && let Ok(Some(existing)) =
            Api::<TenantSubscription>::namespaced(door.client.clone(), &namespace)
                .get_opt(&name)
                .await
    {
        return replay(&existing, &hash, &request, as_caller, &namespace).await;
    }
    let subs = refs(&scope.subscriptions);
    let listing = door.stores.listing(&request.listing);
    let decided = decide_purchase(
        &request,
        &name,
        listing.as_deref(),
        &scope.facts(&tenant, &subs),
        now,
    );
    let purchase = match decided {
        Ok(purchase) => purchase,
        Err(refusal) => return refused(refusal),
    };
    // An integration's settings are checked against its wizard before anything is written.
    if let Some(settings) = &request.connection {
        let wizard = match wizard_of(&door, &scope.facts(&tenant, &subs), &request.listing).await {
            Ok(wizard) => wizard,
            Err(response) => return *response,
        };
        if let Err(e) = check_settings(&wizard.spec, settings) {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(invalid_settings_body(&e)),
            )
                .into_response();
        }
        let mapping = request.field_mapping.clone().unwrap_or_default();
        if let Err((field, why)) = check_mapping(&wizard.spec, &mapping) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "FieldMappingInvalid",
                Some(&field),
                &why,
            );
        }
    }
    let mut object = TenantSubscription::new(&name, purchase.spec.clone());
    object.metadata.namespace = Some(namespace.clone());
    object.metadata.annotations = Some(
        [
            (REQUEST_HASH_ANNOTATION.to_string(), hash.clone()),
            (
                CONFIRMED_ANNOTATION.to_string(),
                purchase.confirmation.clone(),
            ),
        ]
        .into_iter()
        .chain(key.map(|k| (IDEMPOTENCY_KEY_ANNOTATION.to_string(), k)))
        .collect(),
    );
    match subscriptions.create(&PostParams::default(), &object).await {
        Ok(created) => {
            if let Err(response) =
                write_connection(&purchase, &created, as_caller, &namespace).await
            {
                return response;
            }
            created_response(&created, &purchase.confirmation, false)
        }
        // Two replicas raced on the same key: the other one created it.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            match subscriptions.get_opt(&name).await {
                Ok(Some(existing)) => {
                    replay(&existing, &hash, &request, as_caller, &namespace).await
                }
                _ => error(StatusCode::CONFLICT, "Conflict", None, &status.message),
            }
        }
        Err(e) => apiserver_refusal(e),
    }
}

/// The answer to a retried Idempotency-Key: the same subscription if the body is the same,
/// 422 if the key was used for another request.
async fn replay(
    existing: &TenantSubscription,
    hash: &str,
    request: &PurchaseRequest,
    as_caller: Client,
    namespace: &str,
) -> Response {
    let annotations = existing.metadata.annotations.clone().unwrap_or_default();
    if annotations.get(REQUEST_HASH_ANNOTATION).map(String::as_str) != Some(hash) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IdempotencyKeyReused",
            Some("Idempotency-Key"),
            "this Idempotency-Key was used for another request; use a new key for a new purchase",
        );
    }
    let confirmation = annotations
        .get(CONFIRMED_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    // The first attempt may have stopped between its two writes.
    if let Some(settings) = &request.connection {
        let purchase = Purchase {
            spec: existing.spec.clone(),
            connection_secret: existing
                .spec
                .connection
                .as_ref()
                .map(|c| (c.secret_ref.name.clone(), settings.clone())),
            confirmation: confirmation.clone(),
        };
        if let Err(response) = write_connection(&purchase, existing, as_caller, namespace).await {
            return response;
        }
    }
    created_response(existing, &confirmation, true)
}

/// The integration's connection Secret, owned by its subscription (deleted with it).
async fn write_connection(
    purchase: &Purchase,
    owner: &TenantSubscription,
    as_caller: Client,
    namespace: &str,
) -> Result<(), Response> {
    let Some((name, data)) = &purchase.connection_secret else {
        return Ok(());
    };
    let owner_ref = OwnerReference {
        api_version: TenantSubscription::api_version(&()).to_string(),
        kind: TenantSubscription::kind(&()).to_string(),
        name: owner.metadata.name.clone().unwrap_or_default(),
        uid: owner.metadata.uid.clone().unwrap_or_default(),
        ..OwnerReference::default()
    };
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            owner_references: Some(vec![owner_ref]),
            ..ObjectMeta::default()
        },
        string_data: Some(data.clone()),
        ..Secret::default()
    };
    match Api::<Secret>::namespaced(as_caller, namespace)
        .create(&PostParams::default(), &secret)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(apiserver_refusal(e)),
    }
}

fn created_response(sub: &TenantSubscription, confirmation: &str, replayed: bool) -> Response {
    let name = sub.metadata.name.clone().unwrap_or_default();
    let namespace = sub.metadata.namespace.clone().unwrap_or_default();
    let tenant = namespace.strip_prefix("tenant-").unwrap_or(&namespace);
    let location = format!("/v1/tenants/{tenant}/subscriptions/{name}");
    let mut response = (
        StatusCode::CREATED,
        axum::Json(json!({
            "subscription": subscription_view(sub),
            "confirmation": confirmation,
        })),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Applies a decided merge patch to a subscription as the caller.
async fn patch_as_caller(
    door: &FrontDoor,
    scope: &TenantScope,
    namespace: &str,
    name: &str,
    patch: Value,
) -> Response {
    let as_caller = match door.impersonator.client_for(&scope.caller.user) {
        Ok(client) => client,
        Err(refusal) => return rest_refusal(refusal),
    };
    match Api::<TenantSubscription>::namespaced(as_caller, namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(updated) => axum::Json(subscription_view(&updated)).into_response(),
        Err(e) => apiserver_refusal(e),
    }
}

/// What changing an existing subscription always does: the caller must be allowed to change
/// the tenant's subscriptions (checked first, so nothing is said to others), then the request is
/// read, the subscription found, and the patch `decide` makes of them applied as the caller (or
/// its refusal said).
async fn change_subscription<R>(
    door: &FrontDoor,
    headers: &HeaderMap,
    (tenant, name): (&str, &str),
    request: impl FnOnce() -> Result<R, Box<Response>>,
    decide: impl FnOnce(&TenantSubscription, R) -> Result<Value, PurchaseRefusal>,
) -> Response {
    let scope = match scope(door, headers, tenant, Access::Change).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let request = match request() {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let decided = match find(&scope, name) {
        Ok(sub) => decide(sub, request),
        Err(response) => return *response,
    };
    match decided {
        Ok(patch) => patch_as_caller(door, &scope, &namespace_name(tenant), name, patch).await,
        Err(refusal) => refused(refusal),
    }
}

pub(crate) async fn change(
    State(door): State<FrontDoor>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let decide = |sub: &TenantSubscription, request: ChangeRequest| {
        let listing = door
            .stores
            .listing(sub.spec.listing.as_str())
            .ok_or(PurchaseRefusal::ListingNotFound)?;
        decide_change(sub, &listing, &request).map(|(patch, _)| patch)
    };
    let read = || parse(&body);
    change_subscription(&door, &headers, (&tenant, &name), read, decide).await
}

pub(crate) async fn cancel(
    State(door): State<FrontDoor>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let decide = |sub: &TenantSubscription, request: CancelRequest| decide_cancel(sub, &request);
    let read = || parse(&body);
    change_subscription(&door, &headers, (&tenant, &name), read, decide).await
}

pub(crate) async fn undo_cancel(
    State(door): State<FrontDoor>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let decide = |sub: &TenantSubscription, ()| decide_undo_cancel(sub);
    change_subscription(&door, &headers, (&tenant, &name), || Ok(()), decide).await
}

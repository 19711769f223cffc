//! The console's handlers. Every route needs a superadmin: whoever may create
//! SubscriptionActions in the operator's namespace.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::inbox::{InboxQuery, inbox};
use super::support::{SupportView, support_view};
use crate::api::subscription_action::{
    ActionKind, Invoice, SubscriptionAction, SubscriptionActionSpec, SubscriptionRef,
};
use crate::api::tenant_subscription::TenantSubscription;
use crate::controllers::billing_audit::{DriftReport, REPORT_CONFIG_MAP, REPORT_KEY};
use crate::controllers::tenant_rbac::namespace_name;
use crate::front_door::auth::{Access, Caller};
use crate::front_door::routes::{FrontDoor, rest_refusal, with_etag};
use crate::lifecycle::actions::{ActionDecision, decide_action};

pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/v1/admin/inbox", get(get_inbox))
        .route("/v1/admin/tenants/{tenant}", get(tenant_support))
        .route(
            "/v1/admin/tenants/{tenant}/subscriptions/{name}/actions",
            post(take_action),
        )
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

/// The caller, if a superadmin.
pub(crate) async fn superadmin(door: &FrontDoor, headers: &HeaderMap) -> Result<Caller, Response> {
    let caller = door.auth.caller(headers).await.map_err(rest_refusal)?;
    let allowed = door
        .auth
        .allows_in(&caller, &door.operator_namespace, Access::Act)
        .await
        .map_err(rest_refusal)?;
    if allowed {
        Ok(caller)
    } else {
        Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "only superadmins (who may create SubscriptionActions in the operator's namespace) use the console",
        ))
    }
}

/// Every `K` in the operator's namespace, read as `caller` (the API's own account does not read
/// the console's configuration kinds, e.g. CatalogSources, HealthPolicies): few objects, read
/// only when someone looks.
pub(crate) async fn list_as_caller<K>(door: &FrontDoor, caller: &Caller) -> Result<Vec<K>, String>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let as_caller = door
        .impersonator
        .client_for(&caller.user)
        .map_err(|refusal| format!("{refusal:?}"))?;
    Api::<K>::namespaced(as_caller, &door.operator_namespace)
        .list(&kube::api::ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|e| e.to_string())
}

async fn get_inbox(
    State(door): State<FrontDoor>,
    Query(query): Query<InboxQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = superadmin(&door, &headers).await {
        return response;
    }
    let subscriptions = door.stores.subscriptions.state();
    let items = inbox(
        subscriptions.iter().map(Arc::as_ref),
        |name| door.stores.listing(name),
        &query,
    );
    with_etag(&headers, &[], &json!({"items": items}))
}

async fn tenant_support(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = superadmin(&door, &headers).await {
        return response;
    }
    let Some(view) = support_of(&door, &tenant).await else {
        return error(
            StatusCode::NOT_FOUND,
            "TenantNotFound",
            &format!("there is no tenant {tenant:?}"),
        );
    };
    with_etag(&headers, &[], &view)
}

/// What support sees of `tenant` (none if there is no such tenant): from the caches, and the
/// drift report, one small ConfigMap read when support looks.
pub(crate) async fn support_of(door: &FrontDoor, tenant: &str) -> Option<SupportView> {
    let found = door.stores.tenant(tenant)?;
    let namespace = namespace_name(tenant);
    let subscriptions = door.stores.subscriptions_in(&namespace);
    let entitlements = door.stores.entitlements_in(&namespace);
    let report: Option<DriftReport> =
        Api::<ConfigMap>::namespaced(door.client.clone(), &door.operator_namespace)
            .get_opt(REPORT_CONFIG_MAP)
            .await
            .ok()
            .flatten()
            .and_then(|cm| cm.data?.get(REPORT_KEY).cloned())
            .and_then(|body| serde_json::from_str(&body).ok());
    Some(support_view(
        tenant,
        &found,
        &subscriptions.iter().map(Arc::as_ref).collect::<Vec<_>>(),
        &entitlements.iter().map(Arc::as_ref).collect::<Vec<_>>(),
        report.as_ref(),
    ))
}

/// `POST /v1/admin/tenants/{t}/subscriptions/{name}/actions`.
#[derive(Deserialize, schemars::JsonSchema, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ActionRequest {
    action: ActionKind,
    #[serde(default)]
    invoice: Option<Invoice>,
    #[serde(default)]
    reason: Option<String>,
}

/// The action's object name: the same Idempotency-Key names the same action, so a retried
/// click never takes a step twice.
pub fn action_name(subscription: &str, action: ActionKind, key: &str) -> String {
    let digest = Sha256::digest(format!("{subscription}\n{key}").as_bytes());
    let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let prefix: String = subscription.chars().take(40).collect();
    let action = format!("{action:?}").to_lowercase();
    format!("{}-{action}-{suffix}", prefix.trim_end_matches('-'))
}

/// The SubscriptionAction `spec` in the operator's namespace, named for the subscription, the
/// step and `key` (the same key names the same action, so a retry never takes a step twice).
pub fn new_action(
    operator_namespace: &str,
    spec: SubscriptionActionSpec,
    key: &str,
) -> SubscriptionAction {
    let name = action_name(&spec.subscription_ref.name, spec.action, key);
    let mut action = SubscriptionAction::new(&name, spec);
    action.metadata.namespace = Some(operator_namespace.to_owned());
    action
}

pub(crate) async fn take_action(
    State(door): State<FrontDoor>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match superadmin(&door, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let request: ActionRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "InvalidBody",
                &format!("the request body is not valid: {e}"),
            );
        }
    };
    let namespace = namespace_name(&tenant);
    let found: Option<Arc<TenantSubscription>> = door
        .stores
        .subscriptions_in(&namespace)
        .into_iter()
        .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
    let Some(sub) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("tenant {tenant} has no subscription {name:?}"),
        );
    };
    // Early, clear feedback; the operator decides again when it sees the action.
    let activation = door
        .stores
        .listing(sub.spec.listing.as_str())
        .map(|l| l.spec.activation)
        .unwrap_or_default();
    let phase = sub.status.as_ref().and_then(|s| s.phase);
    if let ActionDecision::Refuse(why) = decide_action(request.action, phase, activation) {
        return error(StatusCode::CONFLICT, "ActionDoesNotFit", &why);
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond().to_string());
    let action = new_action(
        &door.operator_namespace,
        SubscriptionActionSpec {
            subscription_ref: SubscriptionRef {
                namespace: namespace.as_str().into(),
                name: name.clone(),
            },
            action: request.action,
            invoice: request.invoice,
            reason: request.reason,
        },
        &key,
    );
    let object_name = action.metadata.name.clone().unwrap_or_default();
    let as_caller = match door.impersonator.client_for(&caller.user) {
        Ok(client) => client,
        Err(refusal) => return rest_refusal(refusal),
    };
    let actions: Api<SubscriptionAction> = Api::namespaced(as_caller, &door.operator_namespace);
    match actions.create(&PostParams::default(), &action).await {
        Ok(created) => (StatusCode::CREATED, axum::Json(created)).into_response(),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            match actions.get_opt(&object_name).await {
                Ok(Some(existing)) if existing.spec == action.spec => {
                    (StatusCode::CREATED, axum::Json(existing)).into_response()
                }
                _ => error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "IdempotencyKeyReused",
                    "this Idempotency-Key was used for another action",
                ),
            }
        }
        Err(kube::Error::Api(status)) => error(
            StatusCode::from_u16(status.code).unwrap_or(StatusCode::BAD_GATEWAY),
            &status.reason,
            &status.message,
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            &e.to_string(),
        ),
    }
}

//! Prepaid credits on the API: the tenant reads its balance and grants
//! (`GET /v1/tenants/{t}/credits`); superadmins read the whole ledger and grant credits
//! (`GET`/`POST /v1/admin/tenants/{t}/credits`, the grant keyed by its Idempotency-Key so a
//! retried request grants once). The decisions are [`crate::credits`]; these handlers gather
//! and render.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;

use super::console::routes::superadmin;
use super::metering_routes::{metering_off, meters_of, unavailable};
use super::routes::{FrontDoor, rest_refusal};
use super::storefront::routes::error;
use crate::credits::CreditStore;
use crate::credits::grant::{GrantRequest, grant_of, same_grant};
use crate::credits::view::{CreditsView, credits_view};

pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/v1/tenants/{tenant}/credits", get(tenant_credits))
        .route(
            "/v1/admin/tenants/{tenant}/credits",
            get(admin_credits).post(grant_credits),
        )
}

/// The tenant's credits (`internal`: with who granted them), or the answer saying why not.
async fn view_of(door: &FrontDoor, tenant: &str, internal: bool) -> Result<CreditsView, Response> {
    let Some(meters) = meters_of(door) else {
        return Err(metering_off());
    };
    let ledger = meters
        .store()
        .ledger(tenant)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(credits_view(tenant, &ledger, Timestamp::now(), internal))
}

async fn tenant_credits(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = door.auth.may_read(&headers, &tenant).await {
        return rest_refusal(refusal);
    }
    match view_of(&door, &tenant, false).await {
        Ok(view) => axum::Json(view).into_response(),
        Err(response) => response,
    }
}

async fn admin_credits(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = superadmin(&door, &headers).await {
        return response;
    }
    match view_of(&door, &tenant, true).await {
        Ok(view) => axum::Json(view).into_response(),
        Err(response) => response,
    }
}

async fn grant_credits(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match superadmin(&door, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Some(meters) = meters_of(&door) else {
        return metering_off();
    };
    let request: GrantRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "InvalidBody",
                None,
                &format!("the request body is not valid: {e}"),
            );
        }
    };
    if door.stores.tenant(&tenant).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "TenantNotFound",
            None,
            &format!("there is no tenant {tenant:?}"),
        );
    }
    let now = Timestamp::now();
    let id = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| format!("grant-{}", now.as_nanosecond()));
    let by = caller.user.username.clone().unwrap_or_default();
    let grant = match grant_of(&tenant, &id, &request, &by, now) {
        Ok(grant) => grant,
        Err(problem) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "InvalidGrant",
                Some(problem.field),
                &format!("{}: {}", problem.field, problem.reason),
            );
        }
    };
    let store = meters.store();
    let recorded = match store.add_grant(&grant).await {
        Ok(recorded) => recorded,
        Err(e) => return unavailable(e.to_string()),
    };
    if !recorded {
        // A retry replays the grant it made; another grant under the same key is refused.
        let ledger = match store.ledger(&tenant).await {
            Ok(ledger) => ledger,
            Err(e) => return unavailable(e.to_string()),
        };
        let same = ledger
            .grants
            .iter()
            .find(|g| g.id == id)
            .is_some_and(|g| same_grant(g, &request));
        if !same {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IdempotencyKeyReused",
                Some("Idempotency-Key"),
                "this Idempotency-Key was used for another grant",
            );
        }
    } else {
        tracing::info!(%tenant, grant = %id, amount = %request.amount,
            currency = %request.currency, by = %by, "credits granted");
    }
    match view_of(&door, &tenant, true).await {
        Ok(view) => (StatusCode::CREATED, axum::Json(view)).into_response(),
        Err(response) => response,
    }
}

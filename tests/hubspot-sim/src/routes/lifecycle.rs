//! `/payments-subscriptions/v1/subscriptions/crm/{objectId}/{cancel|pause|unpause}`
//! (contract §1.2 lifecycle spec).

use crate::billing::{self, Lifecycle};
use crate::error::{ApiError, ApiResult};
use crate::state::{Sim, lock};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

fn parse_id(id: &str) -> ApiResult<u64> {
    id.parse::<u64>()
        .map_err(|_| ApiError::object_not_found(id))
}

fn body_json(body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    super::parse_body(body)
}

pub async fn cancel(State(sim): State<Sim>, Path(id): Path<String>) -> ApiResult<Response> {
    let n = parse_id(&id)?;
    billing::lifecycle(&mut lock(&sim), n, Lifecycle::Cancel)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn pause(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let n = parse_id(&id)?;
    let v = body_json(&body)?;
    let reason = v
        .get("pauseReason")
        .and_then(Value::as_str)
        .map(String::from);
    billing::lifecycle(&mut lock(&sim), n, Lifecycle::Pause(reason))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `proposedNextBillingDate` (int64 ms) is required.
pub async fn unpause(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let n = parse_id(&id)?;
    let v = body_json(&body)?;
    let date = v.get("proposedNextBillingDate").and_then(|d| match d {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    });
    billing::lifecycle(&mut lock(&sim), n, Lifecycle::Unpause(date))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

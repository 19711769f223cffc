//! The console's pages: the same superadmin check and the same inbox and support functions as
//! the console API ([`crate::front_door::console`]); steps are posted to that API.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::console_page;
use super::forms::FormTokens;
use super::handlers::{html, refused_page};
use super::health_page;
use super::html::{Frame, page, respond, url_part};
use super::session::{csrf_token, session_token};
use crate::api::catalog_source::CatalogSource;
use crate::api::listing::Listing;
use crate::front_door::FrontDoor;
use crate::front_door::auth::Caller;
use crate::front_door::console::inbox::{InboxQuery, inbox};
use crate::front_door::console::routes::{list_as_caller, superadmin, support_of};
use crate::front_door::health_routes::{health_report, revenue_report};
use crate::health::filter::{RevenueFilter, health_filter};

pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/admin", get(inbox_page))
        .route("/admin/tenants/{tenant}", get(tenant_page))
        .route("/admin/catalog", get(catalog_page))
        .route("/admin/health", get(health_page))
}

fn frame(door: &FrontDoor, headers: &HeaderMap, caller: &Caller) -> Frame {
    Frame {
        theme: door.web.theme.clone(),
        signed_in_as: caller.user.username.clone(),
        csrf_token: session_token(headers).map(|t| csrf_token(&t)),
        ..Frame::default()
    }
}

async fn inbox_page(
    State(door): State<FrontDoor>,
    Query(raw): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let caller = match superadmin(&door, &headers).await {
        Ok(caller) => caller,
        Err(refusal) => return refused_page(&door, refusal, "/admin"),
    };
    let phase = raw
        .get("phase")
        .filter(|p| !p.is_empty())
        .and_then(|p| serde_json::from_value(json!(p)).ok());
    let subscriptions = door.stores.subscriptions.state();
    let items = inbox(
        subscriptions.iter().map(Arc::as_ref),
        |name| door.stores.listing(name),
        &InboxQuery { phase },
    );
    let main = console_page::render_inbox(&items, phase, &FormTokens::for_request(&headers));
    html(page(
        &frame(&door, &headers, &caller),
        "Approval inbox",
        &main,
    ))
}

async fn tenant_page(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let here = format!("/admin/tenants/{}", url_part(&tenant));
    let caller = match superadmin(&door, &headers).await {
        Ok(caller) => caller,
        Err(refusal) => return refused_page(&door, refusal, &here),
    };
    let Some(view) = support_of(&door, &tenant).await else {
        return refused_page(&door, StatusCode::NOT_FOUND.into_response(), &here);
    };
    let main = console_page::render_tenant(&view);
    html(page(
        &frame(&door, &headers, &caller),
        &view.display_name,
        &main,
    ))
}

async fn catalog_page(State(door): State<FrontDoor>, headers: HeaderMap) -> Response {
    let caller = match superadmin(&door, &headers).await {
        Ok(caller) => caller,
        Err(refusal) => return refused_page(&door, refusal, "/admin/catalog"),
    };
    let listings = door.stores.listings.state();
    let mut sorted: Vec<&Listing> = listings.iter().map(Arc::as_ref).collect();
    sorted.sort_by_key(|l| l.metadata.name.clone());
    let sources = list_as_caller::<CatalogSource>(&door, &caller).await;
    let main = console_page::render_catalog(&sorted, &sources);
    html(page(&frame(&door, &headers, &caller), "Catalog", &main))
}

/// Tenant health and MRR, through the same gathering as `GET /v1/health/tenants` and
/// `GET /v1/revenue/mrr`; a refused filter is shown beside the form (400).
async fn health_page(
    State(door): State<FrontDoor>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let caller = match superadmin(&door, &headers).await {
        Ok(caller) => caller,
        Err(refusal) => return refused_page(&door, refusal, "/admin/health"),
    };
    let filter = health_filter(&query);
    let report = match &filter {
        Ok(filter) => Ok(health_report(&door, &caller, filter, jiff::Timestamp::now()).await),
        Err(problem) => Err(problem.clone()),
    };
    let revenue = revenue_report(&door, &RevenueFilter::default());
    let main = health_page::render_health(console_page::nav(), &query, report.as_ref(), &revenue);
    let status = if report.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    respond(
        status,
        page(&frame(&door, &headers, &caller), "Tenant health", &main),
    )
}

//! The web UI's routes: check the caller as the JSON API does (the same [`scope`]), gather
//! from the caches, ask the same deciders, render. Writes go through the JSON API itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::json;

use super::bundle_handlers::{bundle_names, offers_with_standing, purchase_rows};
use super::catalog_page::{self, Viewer};
use super::forms::FormTokens;
use super::html::{Frame, escape, page, respond, url_part};
use super::links::Links;
use super::promotion_code::CodeField;
use super::session::{self, csrf_token, session_token};
use super::subscriptions_page::{self, ListingFacts};
use super::{assets, bundle_page, detail_page};
use crate::api::listing::ListingType;
use crate::api::tenant_subscription::Phase;
use crate::front_door::FrontDoor;
use crate::front_door::auth::Access;
use crate::front_door::read_limits::ReadClass;
use crate::front_door::storefront::bundles::purchases_in;
use crate::front_door::storefront::catalog::{CatalogQuery, TenantFacts, catalog_page, shown_to};
use crate::front_door::storefront::detail::{listing_detail, subscriptions_view};
use crate::front_door::storefront::price::{QuotedPrice, promoted_confirmation, promoted_plan};
use crate::front_door::storefront::purchase::{PurchaseRefusal, entered_code, priced_offer};
use crate::front_door::storefront::routes::{TenantScope, read_scope, refs, rights, wizard_of};
use crate::lifecycle::promotion::Offer;

/// The web UI's routes (merged into [`crate::front_door::router`]).
pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(session::sign_in_form).post(session::sign_in))
        .route("/signout", post(session::sign_out))
        .route("/signin/oidc", get(super::oidc_flow::start))
        .route(super::oidc::CALLBACK_PATH, get(super::oidc_flow::callback))
        .route("/web/assets/{file}", get(assets::serve))
        .route("/t/{tenant}/marketplace", get(index))
        .route("/t/{tenant}/marketplace/{listing}", get(detail))
        .route(
            "/t/{tenant}/marketplace/{listing}/confirmation",
            get(confirm_sentence),
        )
        .route("/t/{tenant}/subscriptions", get(subscriptions))
        .merge(super::bundle_handlers::routes())
        .merge(super::console_handlers::routes())
        .merge(super::forms::routes())
}

/// A refusal of the JSON API's checks, as a page: 401 goes to sign in, the rest says why.
pub(super) fn refused_page(door: &FrontDoor, refusal: Response, here: &str) -> Response {
    let status = refusal.status();
    if status == StatusCode::UNAUTHORIZED {
        return Redirect::to(&format!("/signin?next={}", url_part(here))).into_response();
    }
    let words = match status {
        StatusCode::FORBIDDEN => {
            "You may not see this page. Ask an admin of the organisation to add you."
        }
        StatusCode::NOT_FOUND => "There is no such page here.",
        StatusCode::TOO_MANY_REQUESTS => "Too many pages at once: wait a minute and reload.",
        _ => "The marketplace cannot answer right now; reload in a moment.",
    };
    let frame = Frame {
        theme: door.web.theme.clone(),
        ..Frame::default()
    };
    respond(
        status,
        page(
            &frame,
            "Not available",
            &format!("<h1>Not available</h1><p>{words}</p>"),
        ),
    )
}

/// The frame of a tenant's page for this caller.
pub(super) fn frame(
    door: &FrontDoor,
    headers: &HeaderMap,
    scope: &TenantScope,
    tenant: &str,
) -> Frame {
    let suspended_addons = scope
        .subscriptions
        .iter()
        .filter(|s| s.status.as_ref().and_then(|st| st.phase) == Some(Phase::Suspended))
        .map(|s| {
            door.stores
                .listing(s.spec.listing.as_str())
                .map(|l| l.spec.display_name.clone())
                .unwrap_or_else(|| s.spec.listing.as_str().to_string())
        })
        .collect();
    Frame {
        theme: door.web.theme.clone(),
        tenant: Some(tenant.to_string()),
        tenant_display_name: scope.tenant.spec.display_name.clone(),
        signed_in_as: scope.caller.user.username.clone(),
        csrf_token: session_token(headers).map(|t| csrf_token(&t)),
        suspended_addons,
        links: Links::Live,
    }
}

pub(super) async fn viewer(
    door: &FrontDoor,
    headers: &HeaderMap,
    scope: &TenantScope,
    tenant: &str,
) -> Viewer {
    let rights = rights(door, &scope.caller, tenant).await;
    let contact = &scope.tenant.spec.billing_contact;
    Viewer {
        tenant: tenant.to_string(),
        may_buy: rights.may_buy,
        may_change: rights.may_cancel,
        who_can_buy: format!(
            "Only {}'s billing admins can add, change or cancel add-ons: ask {} ({})",
            scope.tenant.spec.display_name, contact.name, contact.email
        ),
        now: Timestamp::now(),
        links: Links::Live,
        form: FormTokens::for_request(headers),
    }
}

pub(super) fn html(body: String) -> Response {
    respond(StatusCode::OK, body)
}

/// The catalog filters of the page's query; empty values (a form's "All") mean no filter.
fn catalog_query(raw: &BTreeMap<String, String>) -> CatalogQuery {
    let get = |k: &str| raw.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    fn parse<T: serde::de::DeserializeOwned>(v: Option<&str>) -> Option<T> {
        v.and_then(|v| serde_json::from_value(json!(v)).ok())
    }
    CatalogQuery {
        q: get("q").map(str::to_string),
        category: parse(get("category")),
        type_: parse(get("type")),
        featured: None,
        page: get("page").and_then(|p| p.parse().ok()),
        page_size: None,
    }
}

async fn index(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    Query(raw): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let here = Links::Live.marketplace(&tenant);
    let scope = match read_scope(&door, &headers, &tenant, ReadClass::Browse).await {
        Ok(scope) => scope,
        Err(refusal) => return refused_page(&door, refusal, &here),
    };
    let query = catalog_query(&raw);
    let subs = refs(&scope.subscriptions);
    let listings = door.stores.listings.state();
    let viewer = viewer(&door, &headers, &scope, &tenant).await;
    let cards = catalog_page(
        listings.iter().map(Arc::as_ref),
        &scope.facts(&tenant, &subs),
        &query,
        viewer.now,
    );
    let bundles = offers_with_standing(&door, &scope, &tenant);
    let bundles = bundle_page::offers_section(&bundles, &viewer);
    let main = catalog_page::render(&cards, &query, &bundles, &viewer);
    html(page(
        &frame(&door, &headers, &scope, &tenant),
        "Add-ons",
        &main,
    ))
}

async fn detail(
    State(door): State<FrontDoor>,
    Path((tenant, listing)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    detail_page_as(&door, &headers, (&tenant, &listing), &CodeField::default()).await
}

/// A listing's page for this caller, its buy form's promotion code field showing `code`: 200,
/// or 422 when `code` says why a code was refused.
pub(super) async fn detail_page_as(
    door: &FrontDoor,
    headers: &HeaderMap,
    (tenant, listing): (&str, &str),
    code: &CodeField,
) -> Response {
    let here = Links::Live.detail(tenant, listing);
    let scope = match read_scope(door, headers, tenant, ReadClass::Detail).await {
        Ok(scope) => scope,
        Err(refusal) => return refused_page(door, refusal, &here),
    };
    let subs = refs(&scope.subscriptions);
    let facts = scope.facts(tenant, &subs);
    let Some(found) = door.stores.listing(listing).filter(|l| shown_to(l, &facts)) else {
        return refused_page(door, StatusCode::NOT_FOUND.into_response(), &here);
    };
    let viewer = viewer(door, headers, &scope, tenant).await;
    let detail = listing_detail(&found, &facts, viewer.now);
    let wizard = if detail.card.type_ == ListingType::Integration {
        wizard_of(door, &facts, listing).await.ok().map(|w| w.spec)
    } else {
        None
    };
    let main = detail_page::render(&detail, wizard.as_ref(), &viewer, code);
    respond(
        code.page_status(),
        page(
            &frame(door, headers, &scope, tenant),
            &detail.card.display_name,
            &main,
        ),
    )
}

#[derive(serde::Deserialize)]
struct ConfirmQuery {
    plan: String,
    quantity: Option<i32>,
    #[serde(rename = "promotionCode")]
    promotion_code: Option<String>,
}

/// The promotion a purchase is priced with ([`priced_offer`]), or why the code entered was
/// refused (the API's message).
pub(super) type Priced = Result<Option<Offer>, String>;

/// Plan `plan` of `listing`, if the caller may read the tenant and the tenant sees the listing,
/// with the promotion a purchase of it with `code` is priced with now.
pub(super) async fn shown_plan(
    door: &FrontDoor,
    headers: &HeaderMap,
    (tenant, listing): (&str, &str),
    plan: &str,
    code: Option<&str>,
) -> Result<Option<(crate::api::listing::Plan, Priced)>, Response> {
    let scope = read_scope(door, headers, tenant, ReadClass::Browse).await?;
    let subs = refs(&scope.subscriptions);
    let facts = scope.facts(tenant, &subs);
    let found = door
        .stores
        .listing(listing)
        .filter(|l| shown_to(l, &facts))
        .and_then(|l| {
            l.spec
                .plans
                .iter()
                .find(|p| p.name.as_str() == plan)
                .cloned()
        });
    // A purchase now is priced by the promotion on offer to the tenant (with the code), if any.
    Ok(found.map(|plan| {
        let priced = priced_offer(listing, &plan, &facts, code, Timestamp::now());
        let priced = priced.map_err(|refusal| match refusal {
            PurchaseRefusal::Invalid { message, .. } => message,
            other => format!("{other:?}"),
        });
        (plan, priced)
    }))
}

/// The sentence to confirm and the quote to send back for buying `plan` now.
pub(super) fn purchase_terms(
    plan: &crate::api::listing::Plan,
    offer: Option<&Offer>,
    quantity: i32,
) -> (String, QuotedPrice) {
    let priced = promoted_plan(plan, offer);
    (
        promoted_confirmation(plan, quantity, offer),
        QuotedPrice::of(&priced.pricing),
    )
}

/// The sentence a buyer confirms and the price the purchase sends back, from the same
/// functions the JSON API prices with.
async fn confirm_sentence(
    State(door): State<FrontDoor>,
    Path((tenant, listing)): Path<(String, String)>,
    Query(query): Query<ConfirmQuery>,
    headers: HeaderMap,
) -> Response {
    let code = entered_code(query.promotion_code.as_deref());
    let plan = match shown_plan(
        &door,
        &headers,
        (&tenant, &listing),
        &query.plan,
        code.as_deref(),
    )
    .await
    {
        Ok(plan) => plan,
        Err(refusal) => return refusal,
    };
    match plan {
        Some((plan, Ok(offer))) => {
            let (sentence, quote) =
                purchase_terms(&plan, offer.as_ref(), query.quantity.unwrap_or(1));
            axum::Json(json!({"confirmation": sentence, "quote": quote})).into_response()
        }
        Some((_, Err(message))) => code_refused(&message),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": "PlanNotFound", "field": "plan",
                "message": format!("{listing} has no plan {:?}", query.plan)})),
        )
            .into_response(),
    }
}

/// 422 `PromotionCodeInvalid` naming field `promotionCode`, as the JSON API answers it.
pub(super) fn code_refused(message: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(
            json!({"code": "PromotionCodeInvalid", "field": "promotionCode",
            "message": message}),
        ),
    )
        .into_response()
}

async fn subscriptions(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let here = Links::Live.subscriptions(&tenant);
    let scope = match read_scope(&door, &headers, &tenant, ReadClass::Browse).await {
        Ok(scope) => scope,
        Err(refusal) => return refused_page(&door, refusal, &here),
    };
    let viewer = viewer(&door, &headers, &scope, &tenant).await;
    let views = subscriptions_view(scope.subscriptions.iter().map(Arc::as_ref));
    let subs = refs(&scope.subscriptions);
    let listings = listing_facts(
        &door,
        &scope.facts(&tenant, &subs),
        views.iter().map(|v| v.listing.as_str()),
        viewer.now,
    );
    let names = bundle_names(&door);
    let purchases = purchase_rows(&purchases_in(&door, &tenant));
    let mut main = subscriptions_page::render(&views, &listings, &names, &viewer);
    main.push_str(&bundle_page::purchases_section(
        &purchases, &names, &listings, &viewer,
    ));
    html(page(
        &frame(&door, &headers, &scope, &tenant),
        "My subscriptions",
        &main,
    ))
}

/// What the pages know of listings `names` (display name, plans priced for the tenant).
pub(super) fn listing_facts<'a>(
    door: &FrontDoor,
    facts: &TenantFacts<'_>,
    names: impl IntoIterator<Item = &'a str>,
    now: Timestamp,
) -> BTreeMap<String, ListingFacts> {
    names
        .into_iter()
        .filter_map(|name| door.stores.listing(name))
        .map(|l| {
            let detail = listing_detail(&l, facts, now);
            (
                detail.card.name.clone(),
                ListingFacts {
                    display_name: detail.card.display_name,
                    plans: detail.plans,
                },
            )
        })
        .collect()
}

/// The start page: the marketplaces the caller may open (the first 50 tenants checked).
async fn home(State(door): State<FrontDoor>, headers: HeaderMap) -> Response {
    let Ok(caller) = door.auth.caller(&headers).await else {
        return Redirect::to("/signin").into_response();
    };
    let mut links = String::new();
    for tenant in door.stores.tenants.state().iter().take(50) {
        let name = tenant.metadata.name.clone().unwrap_or_default();
        if door
            .auth
            .allows(&caller, &name, Access::Read)
            .await
            .unwrap_or(false)
        {
            links.push_str(&format!(
                "<li><a href=\"{}\">{}</a></li>",
                Links::Live.marketplace(&name),
                escape(&tenant.spec.display_name)
            ));
        }
    }
    let main = if links.is_empty() {
        "<h1>No marketplace</h1><p>You are signed in, but no organisation lists you yet.</p>"
            .to_string()
    } else {
        format!("<h1>Your marketplaces</h1><ul class=\"tenants\">{links}</ul>")
    };
    let frame = Frame {
        theme: door.web.theme.clone(),
        signed_in_as: caller.user.username.clone(),
        csrf_token: session_token(&headers).map(|t| csrf_token(&t)),
        ..Frame::default()
    };
    html(page(&frame, "Marketplaces", &main))
}

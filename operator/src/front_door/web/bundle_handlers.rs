//! The web UI's bundle routes: a bundle's page, and the forms that buy and cancel a bundle
//! without JavaScript. As everywhere in the web UI, the caller is checked as the JSON API does,
//! the storefront's decisions are asked ([`crate::front_door::storefront::bundle_offers`]), and
//! writes go through the JSON API's own handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::bundle_page::{self, PurchaseRow};
use super::forms::{answered, api_headers, confirm_page_main, csrf_ok, csrf_refused, message_page};
use super::handlers::{code_refused, frame, listing_facts, refused_page, viewer};
use super::html::{page, respond, url_part};
use super::links::Links;
use super::promotion_code::CodeField;
use crate::api::bundle::BundleSubscription;
use crate::front_door::FrontDoor;
use crate::front_door::read_limits::ReadClass;
use crate::front_door::storefront::bundle_offers::{
    BundleOffer, BundleStanding, bundle_standing, decide_bundle_cancel,
};
use crate::front_door::storefront::bundles::{self, offers_for, purchase_view, purchases_in};
use crate::front_door::storefront::changes::CancelRequest;
use crate::front_door::storefront::purchase::entered_code;
use crate::front_door::storefront::routes::{TenantScope, read_scope, refs};

pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/t/{tenant}/bundles/{bundle}", get(bundle_detail))
        .route(
            "/t/{tenant}/bundles/{bundle}/confirmation",
            get(confirm_sentence),
        )
        .route("/forms/t/{tenant}/bundles/{bundle}/buy", post(buy_form))
        .route(
            "/forms/t/{tenant}/bundle-subscriptions/{name}/cancel",
            post(cancel_form),
        )
}

/// The bundles on offer to the tenant, each with where the tenant stands with it.
pub(super) fn offers_with_standing(
    door: &FrontDoor,
    scope: &TenantScope,
    tenant: &str,
) -> Vec<(BundleOffer, BundleStanding)> {
    let offers = offers_for(door, tenant, &scope.tenant, None);
    let purchases = purchases_in(door, tenant);
    let purchases: Vec<&BundleSubscription> = purchases.iter().map(Arc::as_ref).collect();
    let subs = refs(&scope.subscriptions);
    offers
        .iter()
        .map(|o| {
            let standing = bundle_standing(&o.name, &offers, &purchases, &subs);
            (o.clone(), standing)
        })
        .collect()
}

/// Purchases as the pages show them, newest first, each with whether it may be cancelled.
pub(super) fn purchase_rows(purchases: &[Arc<BundleSubscription>]) -> Vec<PurchaseRow> {
    let mut sorted: Vec<&Arc<BundleSubscription>> = purchases.iter().collect();
    sorted.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
            .then(a.name_any().cmp(&b.name_any()))
    });
    sorted
        .into_iter()
        .map(|p| PurchaseRow {
            view: purchase_view(p),
            cannot_cancel: decide_bundle_cancel(p, &CancelRequest::default())
                .err()
                .map(|(_, _, why)| why),
        })
        .collect()
}

/// Every bundle's display name, by name.
pub(super) fn bundle_names(door: &FrontDoor) -> BTreeMap<String, String> {
    door.stores
        .bundles
        .store()
        .state()
        .iter()
        .map(|b| (b.name_any(), b.spec.display_name.clone()))
        .collect()
}

/// `GET /t/{tenant}/bundles/{bundle}`.
async fn bundle_detail(
    State(door): State<FrontDoor>,
    Path((tenant, bundle)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    bundle_page_as(&door, &headers, (&tenant, &bundle), &CodeField::default()).await
}

/// A bundle's page for this caller, its buy form's promotion code field showing `code`: 200, or
/// 422 when `code` says why a code was refused.
async fn bundle_page_as(
    door: &FrontDoor,
    headers: &HeaderMap,
    (tenant, bundle): (&str, &str),
    code: &CodeField,
) -> Response {
    let here = Links::Live.bundle(tenant, bundle);
    let scope = match read_scope(door, headers, tenant, ReadClass::Detail).await {
        Ok(scope) => scope,
        Err(refusal) => return refused_page(door, refusal, &here),
    };
    let Some((offer, standing)) = offers_with_standing(door, &scope, tenant)
        .into_iter()
        .find(|(o, _)| o.name == bundle)
    else {
        return refused_page(door, StatusCode::NOT_FOUND.into_response(), &here);
    };
    let viewer = viewer(door, headers, &scope, tenant).await;
    let mine: Vec<Arc<BundleSubscription>> = purchases_in(door, tenant)
        .into_iter()
        .filter(|p| p.spec.bundle.as_str() == bundle)
        .collect();
    let subs = refs(&scope.subscriptions);
    let listings = listing_facts(
        door,
        &scope.facts(tenant, &subs),
        offer.members.iter().map(|m| m.listing.as_str()),
        viewer.now,
    );
    let rows = purchase_rows(&mine);
    let main = bundle_page::render_detail(&offer, &standing, &rows, &listings, &viewer, code);
    respond(
        code.page_status(),
        page(
            &frame(door, headers, &scope, tenant),
            &offer.display_name,
            &main,
        ),
    )
}

/// Bundle `bundle` as offered to the tenant now with promotion code `code` (none: without one),
/// or why the code is refused (the API's message).
async fn offer_with(
    door: &FrontDoor,
    headers: &HeaderMap,
    (tenant, bundle): (&str, &str),
    code: Option<&str>,
) -> Result<Result<Option<BundleOffer>, String>, Response> {
    let scope = read_scope(door, headers, tenant, ReadClass::Browse).await?;
    Ok(
        bundles::offers_with_code(door, tenant, &scope.tenant, bundle, code)
            .map(|offers| offers.into_iter().find(|o| o.name == bundle))
            .map_err(|(_, _, message)| message),
    )
}

#[derive(Deserialize)]
struct ConfirmQuery {
    #[serde(rename = "promotionCode")]
    promotion_code: Option<String>,
}

/// `GET /t/{tenant}/bundles/{bundle}/confirmation?promotionCode=`: the sentence a buyer
/// confirms and the price the purchase sends back, with the code's promotion; 422 naming
/// `promotionCode` when the code does not lower this bundle for the tenant now.
async fn confirm_sentence(
    State(door): State<FrontDoor>,
    Path((tenant, bundle)): Path<(String, String)>,
    Query(query): Query<ConfirmQuery>,
    headers: HeaderMap,
) -> Response {
    let code = entered_code(query.promotion_code.as_deref());
    match offer_with(&door, &headers, (&tenant, &bundle), code.as_deref()).await {
        Err(refusal) => refusal,
        Ok(Err(message)) => code_refused(&message),
        Ok(Ok(Some(offer))) => {
            axum::Json(json!({"confirmation": offer.confirmation, "quote": offer.quoted_price()}))
                .into_response()
        }
        Ok(Ok(None)) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": "BundleNotFound", "field": "bundle",
                "message": format!("there is no bundle {bundle:?} this tenant may buy")})),
        )
            .into_response(),
    }
}

/// A form's confirmation page: `sentence`, and a form posting back to `action` with the form's
/// key and CSRF token and the field that says it was confirmed; Cancel goes `back`.
fn confirm_page(
    door: &FrontDoor,
    (action, sentence, back): (&str, &str, &str),
    key: &str,
    csrf: &Option<String>,
    confirmed: Vec<(&str, String)>,
) -> Response {
    let mut fields = vec![("key", key.to_string())];
    fields.extend(confirmed);
    if let Some(csrf) = csrf {
        fields.push(("csrf", csrf.clone()));
    }
    let main = confirm_page_main(action, sentence, &fields, back);
    message_page(door, StatusCode::OK, "Confirm", &main)
}

#[derive(Deserialize)]
pub struct BundleBuyForm {
    csrf: Option<String>,
    key: String,
    /// The price confirmed on the confirmation page (JSON of the offer's quoted price).
    quote: Option<String>,
    /// The promotion code entered (blank: none); the price confirmed is then the code's.
    #[serde(rename = "promotionCode")]
    promotion_code: Option<String>,
}

/// `POST /forms/t/{tenant}/bundles/{bundle}/buy`: first the confirmation page with the offer's
/// sentence as it stands now, then (with `quote`) the purchase at that price.
async fn buy_form(
    State(door): State<FrontDoor>,
    Path((tenant, bundle)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<BundleBuyForm>,
) -> Response {
    if !csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&door);
    }
    let back = Links::Live.bundle(&tenant, &bundle);
    let code = entered_code(form.promotion_code.as_deref());
    let Some(quote) = &form.quote else {
        let which = (tenant.as_str(), bundle.as_str());
        let offer = match offer_with(&door, &headers, which, code.as_deref()).await {
            Ok(Ok(Some(offer))) => offer,
            Ok(Ok(None)) => {
                return message_page(
                    &door,
                    StatusCode::NOT_FOUND,
                    "Not done",
                    "<h1>Not done</h1><p>There is no such bundle.</p>",
                );
            }
            // The bundle's page again, the code kept and why it was refused next to it.
            Ok(Err(why)) => {
                let raw = form.promotion_code.as_deref().unwrap_or_default();
                let field = CodeField::refused(raw, &why);
                return bundle_page_as(&door, &headers, which, &field).await;
            }
            Err(refusal) => return answered(&door, refusal, &back).await,
        };
        let quote = serde_json::to_string(&offer.quoted_price()).unwrap_or_default();
        let action = format!(
            "/forms/t/{}/bundles/{}/buy",
            url_part(&tenant),
            url_part(&bundle)
        );
        let confirm = (action.as_str(), offer.confirmation.as_str(), back.as_str());
        let mut confirmed = vec![("quote", quote)];
        if let Some(code) = code {
            confirmed.push(("promotionCode", code));
        }
        return confirm_page(&door, confirm, &form.key, &form.csrf, confirmed);
    };
    let confirmed: Option<Value> = serde_json::from_str(quote).ok();
    let mut body = json!({"bundle": bundle, "confirmedPrice": confirmed});
    if let Some(code) = code {
        body["promotionCode"] = json!(code);
    }
    let response = bundles::purchase(
        State(door.clone()),
        Path(tenant.clone()),
        api_headers(&headers, &form.key),
        Bytes::from(body.to_string()),
    )
    .await;
    answered(&door, response, &format!("{back}#bundle-purchases")).await
}

#[derive(Deserialize)]
pub struct BundleCancelForm {
    csrf: Option<String>,
    key: String,
    /// Set by the confirmation page.
    confirmed: Option<String>,
}

/// `POST /forms/t/{tenant}/bundle-subscriptions/{name}/cancel`: the confirmation page, then the
/// cancellation of every member at the end of the period; back to My subscriptions.
async fn cancel_form(
    State(door): State<FrontDoor>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<BundleCancelForm>,
) -> Response {
    if !csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&door);
    }
    let back = Links::Live.subscriptions(&tenant);
    if form.confirmed.is_none() {
        let action = format!(
            "/forms/t/{}/bundle-subscriptions/{}/cancel",
            url_part(&tenant),
            url_part(&name)
        );
        let sentence =
            "Cancel this bundle at the end of the period? All of its add-ons end together.";
        let confirm = (action.as_str(), sentence, back.as_str());
        return confirm_page(
            &door,
            confirm,
            &form.key,
            &form.csrf,
            vec![("confirmed", "yes".into())],
        );
    }
    let response = bundles::cancel(
        State(door.clone()),
        Path((tenant, name)),
        api_headers(&headers, &form.key),
        Bytes::from(r#"{"effective":"EndOfPeriod"}"#),
    )
    .await;
    answered(&door, response, &back).await
}

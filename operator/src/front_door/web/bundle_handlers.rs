//! The web UI's bundle routes: a bundle's page, and the forms that buy and cancel a bundle
//! without JavaScript. As everywhere in the web UI, the caller is checked as the JSON API does,
//! the storefront's decisions are asked ([`crate::front_door::storefront::bundle_offers`]), and
//! writes go through the JSON API's own handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::bundle_page::{self, PurchaseRow};
use super::forms::{answered, api_headers, confirm_page_main, csrf_ok, csrf_refused, message_page};
use super::handlers::{frame, html, listing_facts, refused_page, viewer};
use super::html::{page, url_part};
use super::links::Links;
use crate::api::bundle::BundleSubscription;
use crate::front_door::FrontDoor;
use crate::front_door::read_limits::ReadClass;
use crate::front_door::storefront::bundle_offers::{
    BundleOffer, BundleStanding, bundle_standing, decide_bundle_cancel,
};
use crate::front_door::storefront::bundles::{self, offers_for, purchase_view, purchases_in};
use crate::front_door::storefront::changes::CancelRequest;
use crate::front_door::storefront::routes::{TenantScope, read_scope, refs};

pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/t/{tenant}/bundles/{bundle}", get(bundle_detail))
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
    let here = Links::Live.bundle(&tenant, &bundle);
    let scope = match read_scope(&door, &headers, &tenant, ReadClass::Detail).await {
        Ok(scope) => scope,
        Err(refusal) => return refused_page(&door, refusal, &here),
    };
    let Some((offer, standing)) = offers_with_standing(&door, &scope, &tenant)
        .into_iter()
        .find(|(o, _)| o.name == bundle)
    else {
        return refused_page(&door, StatusCode::NOT_FOUND.into_response(), &here);
    };
    let viewer = viewer(&door, &headers, &scope, &tenant).await;
    let mine: Vec<Arc<BundleSubscription>> = purchases_in(&door, &tenant)
        .into_iter()
        .filter(|p| p.spec.bundle.as_str() == bundle)
        .collect();
    let subs = refs(&scope.subscriptions);
    let listings = listing_facts(
        &door,
        &scope.facts(&tenant, &subs),
        offer.members.iter().map(|m| m.listing.as_str()),
        viewer.now,
    );
    let main =
        bundle_page::render_detail(&offer, &standing, &purchase_rows(&mine), &listings, &viewer);
    html(page(
        &frame(&door, &headers, &scope, &tenant),
        &offer.display_name,
        &main,
    ))
}

/// A form's confirmation page: `sentence`, and a form posting back to `action` with the form's
/// key and CSRF token and the field that says it was confirmed; Cancel goes `back`.
fn confirm_page(
    door: &FrontDoor,
    (action, sentence, back): (&str, &str, &str),
    key: &str,
    csrf: &Option<String>,
    confirmed: (&str, String),
) -> Response {
    let mut fields = vec![("key", key.to_string()), confirmed];
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
    let Some(quote) = &form.quote else {
        let scope = match read_scope(&door, &headers, &tenant, ReadClass::Browse).await {
            Ok(scope) => scope,
            Err(refusal) => return answered(&door, refusal, &back).await,
        };
        let Some(offer) = offers_for(&door, &tenant, &scope.tenant, None)
            .into_iter()
            .find(|o| o.name == bundle)
        else {
            return message_page(
                &door,
                StatusCode::NOT_FOUND,
                "Not done",
                "<h1>Not done</h1><p>There is no such bundle.</p>",
            );
        };
        let quote = serde_json::to_string(&offer.quoted_price()).unwrap_or_default();
        let action = format!(
            "/forms/t/{}/bundles/{}/buy",
            url_part(&tenant),
            url_part(&bundle)
        );
        let confirm = (action.as_str(), offer.confirmation.as_str(), back.as_str());
        return confirm_page(&door, confirm, &form.key, &form.csrf, ("quote", quote));
    };
    let confirmed: Option<Value> = serde_json::from_str(quote).ok();
    let body = json!({"bundle": bundle, "confirmedPrice": confirmed});
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
            ("confirmed", "yes".into()),
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

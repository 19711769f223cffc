//! Writes without JavaScript: the buy and console forms also post as plain HTML forms to
//! `/forms/...`, with the session's CSRF token as a hidden field (a synchronizer token: a hash
//! of the session's bearer token, see [`super::session::csrf_token`]) and an idempotency key
//! the page was rendered with, so a resubmitted form never writes twice. Each handler turns the
//! form into the JSON API's request and calls the API's own handler (every rule stays the
//! API's), then answers Post/Redirect/Get: 303 to the page, or a page saying what was refused.
//! The page's script keeps intercepting the same forms when it runs.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use super::handlers::{detail_page_as, purchase_terms, shown_plan};
use super::html::{Frame, escape, page, respond, url_part};
use super::links::Links;
use super::promotion_code::CodeField;
use super::session::{csrf_matches, csrf_token, session_token};
use crate::front_door::FrontDoor;
use crate::front_door::storefront::price::{QuotedPrice, confirmation};
use crate::front_door::storefront::purchase::entered_code;

/// What every form of a page carries besides its own fields.
#[derive(Clone, Debug, Default)]
pub struct FormTokens {
    /// The session's CSRF token; none when signed in through a proxy (no cookie to forge).
    pub csrf: Option<String>,
    /// A key fresh for this page; each form adds its own suffix.
    pub key: String,
}

impl FormTokens {
    /// For a page of this request: the session's token and a fresh key.
    pub fn for_request(headers: &HeaderMap) -> FormTokens {
        let mut random = [0u8; 16];
        let key = if getrandom::fill(&mut random).is_ok() {
            crate::text::hex(&random)
        } else {
            String::new()
        };
        FormTokens {
            csrf: session_token(headers).map(|t| csrf_token(&t)),
            key,
        }
    }

    /// The hidden fields of one form.
    pub fn hidden(&self, form: &str) -> String {
        let mut out = format!(
            "<input type=\"hidden\" name=\"key\" value=\"{}-{}\">",
            escape(&self.key),
            escape(form)
        );
        if let Some(csrf) = &self.csrf {
            out.push_str(&format!(
                "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
                escape(csrf)
            ));
        }
        out
    }
}

pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/forms/t/{tenant}/buy", post(buy))
        .route(
            "/forms/t/{tenant}/subscriptions/{name}",
            post(subscription_step),
        )
        .route(
            "/forms/v1/admin/tenants/{tenant}/subscriptions/{name}/actions",
            post(console_step),
        )
}

/// The form's CSRF field matches the session (requests without a session cookie come through
/// a proxy's `Authorization`, and the middleware has checked their `Origin`).
pub(super) fn csrf_ok(headers: &HeaderMap, offered: Option<&str>) -> bool {
    session_token(headers).is_none_or(|token| csrf_matches(&token, offered.unwrap_or("")))
}

pub(super) fn message_page(
    door: &FrontDoor,
    status: StatusCode,
    title: &str,
    body: &str,
) -> Response {
    let frame = Frame {
        theme: door.web.theme.clone(),
        ..Frame::default()
    };
    respond(status, page(&frame, title, body))
}

pub(super) fn csrf_refused(door: &FrontDoor) -> Response {
    message_page(
        door,
        StatusCode::FORBIDDEN,
        "Not done",
        "<h1>Not done</h1><p>This form lacks the page's CSRF token: go back, reload the page and try again.</p>",
    )
}

/// The API's answer as the form's: 303 to `back` on success, else a page with its message.
pub(super) async fn answered(door: &FrontDoor, response: Response, back: &str) -> Response {
    let status = response.status();
    if status.is_success() {
        return Redirect::to(back).into_response();
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| format!("The marketplace answered {status}."));
    message_page(
        door,
        status,
        "Not done",
        &format!(
            "<h1>Not done</h1><p class=\"error\" role=\"alert\">{}</p><p><a class=\"button\" href=\"{}\">Back</a></p>",
            escape(&message),
            escape(back)
        ),
    )
}

/// The request as the API's handler receives it: with the form's key as `Idempotency-Key`.
pub(super) fn api_headers(headers: &HeaderMap, key: &str) -> HeaderMap {
    let mut headers = headers.clone();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(key) {
        headers.insert("idempotency-key", value);
    }
    headers
}

#[derive(Deserialize)]
pub struct BuyForm {
    csrf: Option<String>,
    key: String,
    listing: String,
    plan: String,
    quantity: Option<i32>,
    trial: Option<String>,
    /// The quote confirmed on the confirmation page (JSON of [`QuotedPrice`]).
    quote: Option<String>,
    /// The promotion code entered (blank: none); the quote confirmed is then the code's price.
    #[serde(rename = "promotionCode")]
    promotion_code: Option<String>,
}

/// The confirmation page of a form purchase: the same sentence the script shows.
pub fn confirm_page_main(
    form_action: &str,
    sentence: &str,
    fields: &[(&str, String)],
    back: &str,
) -> String {
    let hidden: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            )
        })
        .collect();
    format!(
        "<h1>Confirm</h1><form method=\"post\" action=\"{form_action}\" class=\"panel\"><p id=\"confirm-sentence\">{}</p>{hidden}\
<div class=\"actions\"><a class=\"button secondary\" href=\"{}\">Cancel</a> <button type=\"submit\" class=\"primary\" id=\"form-confirm\">Confirm</button></div></form>",
        escape(sentence),
        escape(back)
    )
}

/// `POST /forms/t/{tenant}/buy`: first the confirmation page, then (with `quote`) the purchase.
async fn buy(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<BuyForm>,
) -> Response {
    if !csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&door);
    }
    let back = Links::Live.detail(&tenant, &form.listing);
    let quantity = form.quantity.unwrap_or(1).max(1);
    let trial = form.trial.is_some();
    let code = entered_code(form.promotion_code.as_deref());
    let Some(quote) = &form.quote else {
        let listing = (tenant.as_str(), form.listing.as_str());
        let plan = match shown_plan(&door, &headers, listing, &form.plan, code.as_deref()).await {
            Ok(plan) => plan,
            Err(refusal) => return answered(&door, refusal, &back).await,
        };
        let offer = match plan {
            Some((plan, Ok(offer))) => (plan, offer),
            // The listing's page again, the code kept and why it was refused next to it.
            Some((_, Err(why))) => {
                let raw = form.promotion_code.as_deref().unwrap_or_default();
                let field = CodeField::refused(raw, &why);
                return detail_page_as(&door, &headers, listing, &field).await;
            }
            None => {
                return message_page(
                    &door,
                    StatusCode::NOT_FOUND,
                    "Not done",
                    "<h1>Not done</h1><p>There is no such plan.</p>",
                );
            }
        };
        let (sentence, quote) = purchase_terms(&offer.0, offer.1.as_ref(), quantity);
        let quote = serde_json::to_string(&quote).unwrap_or_default();
        let mut fields = vec![
            ("key", form.key.clone()),
            ("listing", form.listing.clone()),
            ("plan", form.plan.clone()),
            ("quantity", quantity.to_string()),
            ("quote", quote),
        ];
        if let Some(csrf) = &form.csrf {
            fields.push(("csrf", csrf.clone()));
        }
        if trial {
            fields.push(("trial", "on".into()));
        }
        if let Some(code) = &code {
            fields.push(("promotionCode", code.clone()));
        }
        let action = format!("/forms/t/{}/buy", url_part(&tenant));
        let main = confirm_page_main(&action, &sentence, &fields, &back);
        return message_page(&door, StatusCode::OK, "Confirm", &main);
    };
    let confirmed: Option<Value> = serde_json::from_str(quote).ok();
    let mut body = json!({"listing": form.listing, "plan": form.plan, "quantity": quantity,
        "trial": trial, "confirmedPrice": confirmed});
    if let Some(code) = code {
        body["promotionCode"] = json!(code);
    }
    let response = crate::front_door::storefront::routes::purchase(
        State(door.clone()),
        Path(tenant.clone()),
        api_headers(&headers, &form.key),
        Bytes::from(body.to_string()),
    )
    .await;
    answered(&door, response, &format!("{back}#requests")).await
}

#[derive(Deserialize)]
pub struct StepForm {
    csrf: Option<String>,
    key: String,
    action: String,
    amount: Option<String>,
    currency: Option<String>,
    reason: Option<String>,
}

/// `POST /forms/v1/admin/.../actions`: a superadmin's step, as the console API takes it.
async fn console_step(
    State(door): State<FrontDoor>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<StepForm>,
) -> Response {
    if !csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&door);
    }
    let mut body = json!({"action": form.action});
    if let (Some(amount), Some(currency)) = (&form.amount, &form.currency) {
        body["invoice"] = json!({"amount": amount, "currency": currency});
    }
    if let Some(reason) = form.reason.as_ref().filter(|r| !r.is_empty()) {
        body["reason"] = json!(reason);
    }
    let response = crate::front_door::console::routes::take_action(
        State(door.clone()),
        Path((tenant, name)),
        api_headers(&headers, &form.key),
        Bytes::from(body.to_string()),
    )
    .await;
    answered(&door, response, "/admin").await
}

#[derive(Deserialize)]
pub struct SubscriptionForm {
    csrf: Option<String>,
    key: String,
    /// `cancel` (at the end of the period), `undo` (the cancellation) or `change`.
    op: String,
    listing: Option<String>,
    plan: Option<String>,
    quantity: Option<i32>,
    /// Set by the confirmation page: the quote (change) or `yes`.
    confirmed: Option<String>,
}

/// `POST /forms/t/{tenant}/subscriptions/{name}`: cancel, undo or change, each after its
/// confirmation page, then back to My subscriptions.
async fn subscription_step(
    State(door): State<FrontDoor>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SubscriptionForm>,
) -> Response {
    use crate::front_door::storefront::routes::{cancel, change, undo_cancel};
    if !csrf_ok(&headers, form.csrf.as_deref()) {
        return csrf_refused(&door);
    }
    let back = Links::Live.subscriptions(&tenant);
    let quantity = form.quantity.unwrap_or(1).max(1);
    let path = Path((tenant.clone(), name.clone()));
    let api = api_headers(&headers, &form.key);
    let Some(confirmed) = &form.confirmed else {
        let (sentence, confirmed) = match form.op.as_str() {
            "cancel" => (
                "Cancel this add-on at the end of the period? It stays on until then.".to_owned(),
                "yes".to_owned(),
            ),
            "undo" => (
                "Keep this add-on? Its cancellation is withdrawn and it renews as before."
                    .to_owned(),
                "yes".to_owned(),
            ),
            "change" => {
                let (listing, plan) = (
                    form.listing.clone().unwrap_or_default(),
                    form.plan.clone().unwrap_or_default(),
                );
                match shown_plan(&door, &headers, (&tenant, &listing), &plan, None).await {
                    Ok(Some((plan, _))) => (
                        confirmation(&plan, quantity),
                        serde_json::to_string(&QuotedPrice::of(&plan.pricing)).unwrap_or_default(),
                    ),
                    Ok(None) => {
                        return message_page(
                            &door,
                            StatusCode::NOT_FOUND,
                            "Not done",
                            "<h1>Not done</h1><p>There is no such plan.</p>",
                        );
                    }
                    Err(refusal) => return answered(&door, refusal, &back).await,
                }
            }
            _ => {
                return message_page(
                    &door,
                    StatusCode::BAD_REQUEST,
                    "Not done",
                    "<h1>Not done</h1><p>Unknown action.</p>",
                );
            }
        };
        let mut fields = vec![
            ("key", form.key.clone()),
            ("op", form.op.clone()),
            ("confirmed", confirmed),
            ("quantity", quantity.to_string()),
        ];
        for (field, value) in [
            ("csrf", &form.csrf),
            ("listing", &form.listing),
            ("plan", &form.plan),
        ] {
            if let Some(value) = value {
                fields.push((field, value.clone()));
            }
        }
        let action = format!(
            "/forms/t/{}/subscriptions/{}",
            url_part(&tenant),
            url_part(&name)
        );
        return message_page(
            &door,
            StatusCode::OK,
            "Confirm",
            &confirm_page_main(&action, &sentence, &fields, &back),
        );
    };
    let response = match form.op.as_str() {
        "cancel" => {
            cancel(
                State(door.clone()),
                path,
                api,
                Bytes::from(r#"{"effective":"EndOfPeriod"}"#),
            )
            .await
        }
        "undo" => undo_cancel(State(door.clone()), path, api).await,
        _ => {
            let quote: Option<Value> = serde_json::from_str(confirmed).ok();
            let body = json!({"plan": form.plan, "quantity": quantity, "confirmedPrice": quote});
            change(
                State(door.clone()),
                path,
                api,
                Bytes::from(body.to_string()),
            )
            .await
        }
    };
    answered(&door, response, &back).await
}

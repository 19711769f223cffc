//! Signing in to the web UI with the same bearer tokens the API accepts.
//!
//! - Behind an authenticating proxy that sends `Authorization: Bearer`, requests pass through
//!   unchanged.
//! - With `--oidc-issuer-url`, `/signin/oidc` signs in through the organisation's provider
//!   (authorization code + PKCE, [`super::oidc`]); its ID token becomes the session's token.
//! - Otherwise `/signin` takes a token (from the organisation's identity provider, or a
//!   `scripts/dev` link) once it authenticates, and keeps it in a cookie that scripts cannot
//!   read and other sites cannot send (`HttpOnly; Secure; SameSite=Strict`). The middleware
//!   turns the cookie back into `Authorization` for every route, the JSON API included, so
//!   the page's own scripts write through the API.
//! - Every state-changing request with a cookie carries `X-CSRF-Token` (or the form field
//!   `csrf`): a hash of the session's token, which a page of another site cannot compute. Any
//!   state-changing request whose `Origin` is another site is refused too (this also covers
//!   proxies that add `Authorization` to every request).

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::html::{Frame, escape, page, respond, url_part};
use crate::front_door::FrontDoor;
use crate::front_door::api_keys::API_KEY_HEADER;

pub const SESSION_COOKIE: &str = "marketplace_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session cookie lasts (the token inside may expire sooner: then 401, sign in).
const SESSION_SECONDS: u32 = 8 * 3600;

/// The CSRF token of a session: derived from its bearer token, so every replica checks it
/// without shared state, and unknowable to anyone who cannot read the cookie.
pub fn csrf_token(bearer: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"marketplace-web-csrf\0")
        .chain_update(bearer.as_bytes())
        .finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `offered` is the session's CSRF token (in constant time).
pub fn csrf_matches(bearer: &str, offered: &str) -> bool {
    csrf_token(bearer)
        .as_bytes()
        .ct_eq(offered.as_bytes())
        .into()
}

/// The value of the request's cookie `name`, if it has a non-empty one.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// The session cookie's token, if the request has one.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE).map(str::to_string)
}

/// Whether the request comes from this site: no `Origin` (not a browser's cross-site request),
/// or one whose host is the one the request was sent to.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(origin_host) = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host)
    else {
        return false; // "null" and anything unparsable
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|h| h.to_str().ok());
    host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why a state-changing request is refused before any handler sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum CsrfRefusal {
    CrossSite,
    TokenMissing,
}

/// The check of one request: `Ok(Some(token))` when its session cookie stands for its bearer
/// token. Forms of `/signin` and `/signout` check their own field (`form_checked`).
pub fn check_request(
    method: &Method,
    headers: &HeaderMap,
    form_checked: bool,
) -> Result<Option<String>, CsrfRefusal> {
    if !is_safe(method) && !same_origin(headers) {
        return Err(CsrfRefusal::CrossSite);
    }
    if headers.contains_key(header::AUTHORIZATION) || headers.contains_key(API_KEY_HEADER) {
        return Ok(None);
    }
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    if !is_safe(method) && !form_checked {
        let offered = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !csrf_matches(&token, offered) {
            return Err(CsrfRefusal::TokenMissing);
        }
    }
    Ok(Some(token))
}

/// Middleware over every route: CSRF and Origin checks, then the cookie as `Authorization`.
pub async fn authenticate(mut request: Request, next: Next) -> Response {
    // These forms check their own `csrf` field (the body is theirs to read).
    let path = request.uri().path();
    let form_checked = matches!(path, "/signin" | "/signout") || path.starts_with("/forms/");
    match check_request(request.method(), request.headers(), form_checked) {
        Err(refusal) => {
            let message = match refusal {
                CsrfRefusal::CrossSite => {
                    "a request from another site may not change anything here"
                }
                CsrfRefusal::TokenMissing => {
                    "this request lacks the page's CSRF token (X-CSRF-Token); reload the page and try again"
                }
            };
            (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({"code": "CsrfRefused", "message": message})),
            )
                .into_response()
        }
        Ok(Some(token)) => {
            if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                request.headers_mut().insert(header::AUTHORIZATION, value);
            }
            next.run(request).await
        }
        Ok(None) => next.run(request).await,
    }
}

pub fn set_cookie(token: &str) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={SESSION_SECONDS}"
    )
}

pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// Where to go after signing in: a path on this site only (no open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: Option<String>,
}

/// The sign-in page: paste a token, or arrive with `#token=...` (scripts/dev's links: a URL
/// fragment never reaches a server or its logs) and the page signs in by itself.
pub fn sign_in_page(frame: &Frame, next: &str, error: Option<&str>, provider: bool) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let provider = if provider {
        format!(
            "<p><a class=\"button primary\" id=\"signin-oidc\" href=\"/signin/oidc?next={}\">Sign in with your organisation's account</a></p><p class=\"muted\">Or paste a token:</p>",
            url_part(next)
        )
    } else {
        String::new()
    };
    let main = format!(
        "<h1>Sign in</h1>{error}{provider}<form class=\"signin\" id=\"signin\" method=\"post\" action=\"/signin\">\
<input type=\"hidden\" name=\"next\" value=\"{next}\">\
<label for=\"token\">Access token</label><textarea id=\"token\" name=\"token\" rows=\"4\" required autocomplete=\"off\" spellcheck=\"false\"></textarea>\
<small>The bearer token your identity provider issued you: the same token the marketplace API accepts.</small>\
<button type=\"submit\" class=\"primary\">Sign in</button></form>",
        next = escape(next)
    );
    page(frame, "Sign in", &main)
}

pub async fn sign_in_form(
    State(door): State<FrontDoor>,
    Query(query): Query<SignInQuery>,
) -> Response {
    let frame = Frame {
        theme: door.web.theme.clone(),
        ..Frame::default()
    };
    respond(
        StatusCode::OK,
        sign_in_page(
            &frame,
            &safe_next(query.next.as_deref()),
            None,
            door.web.oidc.is_some(),
        ),
    )
}

pub async fn sign_in(
    State(door): State<FrontDoor>,
    axum::Form(form): axum::Form<SignInForm>,
) -> Response {
    let token = form.token.trim().to_string();
    let next = safe_next(form.next.as_deref());
    let mut headers = HeaderMap::new();
    let accepted = HeaderValue::from_str(&format!("Bearer {token}"))
        .ok()
        .filter(|_| !token.is_empty() && !token.contains(';'));
    let refused = |why: &str| {
        let frame = Frame {
            theme: door.web.theme.clone(),
            ..Frame::default()
        };
        respond(
            StatusCode::UNAUTHORIZED,
            sign_in_page(&frame, &next, Some(why), door.web.oidc.is_some()),
        )
    };
    let Some(value) = accepted else {
        return refused("That is not a token.");
    };
    headers.insert(header::AUTHORIZATION, value);
    if door.auth.caller(&headers).await.is_err() {
        return refused(
            "This token is not accepted (expired, or from an issuer the cluster does not trust).",
        );
    }
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, next)
        .header(header::SET_COOKIE, set_cookie(&token))
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

pub async fn sign_out(headers: HeaderMap, axum::Form(form): axum::Form<SignOutForm>) -> Response {
    if let Some(token) = session_token(&headers)
        && !csrf_matches(&token, form.csrf.as_deref().unwrap_or(""))
    {
        return (
            StatusCode::FORBIDDEN,
            "this sign-out lacks the page's CSRF token; reload and try again",
        )
            .into_response();
    }
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/signin")
        .header(header::SET_COOKIE, clear_cookie())
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

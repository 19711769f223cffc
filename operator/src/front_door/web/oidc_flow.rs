//! The provider's side of signing in ([`super::oidc`] decides): discovery, the redirect to the
//! authorization endpoint, and the callback's code exchange. The ID token becomes the session's
//! bearer token only once the apiserver accepts it (TokenReview), so the UI trusts exactly what
//! the API trusts.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use super::html::{Frame, escape, page, respond, url_part};
use super::oidc::{
    ATTEMPT_COOKIE, Attempt, CallbackQuery, OidcSettings, attempt_cookie, authorize_url,
    check_callback, check_nonce, clear_attempt_cookie,
};
use super::session::{cookie_value, safe_next, set_cookie};
use crate::front_door::FrontDoor;

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The provider's endpoints, from its discovery document.
struct Endpoints {
    authorization: String,
    token: String,
}

fn client(settings: &OidcSettings) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = &settings.ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| format!("--oidc-ca-file: {e}"))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| e.to_string())
}

/// Read at each sign-in (one small request; a provider's endpoints may move without a restart).
async fn discover(http: &reqwest::Client, settings: &OidcSettings) -> Result<Endpoints, String> {
    let issuer = settings.issuer_url.trim_end_matches('/');
    let url = format!("{issuer}/.well-known/openid-configuration");
    let document: Value = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("{url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let field = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("{url}: field {name}: missing"))
    };
    if field("issuer")?.trim_end_matches('/') != issuer {
        return Err(format!("{url}: field issuer: not {issuer}"));
    }
    Ok(Endpoints {
        authorization: field("authorization_endpoint")?,
        token: field("token_endpoint")?,
    })
}

fn problem(door: &FrontDoor, status: StatusCode, words: &str) -> Response {
    let frame = Frame {
        theme: door.web.theme.clone(),
        ..Frame::default()
    };
    let main = format!(
        "<h1>Sign in</h1><p class=\"error\" role=\"alert\">{}</p><p><a class=\"button primary\" href=\"/signin/oidc\">Start again</a> <a href=\"/signin\">Other ways to sign in</a></p>",
        escape(words)
    );
    respond(status, page(&frame, "Sign in", &main))
}

#[derive(Deserialize, Default)]
pub struct StartQuery {
    next: Option<String>,
    login_hint: Option<String>,
}

/// `GET /signin/oidc`: a new attempt in its cookie, then off to the provider.
pub async fn start(State(door): State<FrontDoor>, Query(query): Query<StartQuery>) -> Response {
    let Some(settings) = door.web.oidc.as_ref() else {
        return problem(
            &door,
            StatusCode::NOT_FOUND,
            "Signing in with an identity provider is not set up here.",
        );
    };
    let mut random = [0u8; 96];
    if getrandom::fill(&mut random).is_err() {
        return problem(
            &door,
            StatusCode::SERVICE_UNAVAILABLE,
            "No randomness: try again.",
        );
    }
    let endpoints = match client(settings) {
        Ok(http) => discover(&http, settings).await,
        Err(e) => Err(e),
    };
    let endpoints = match endpoints {
        Ok(endpoints) => endpoints,
        Err(error) => {
            tracing::warn!(%error, "OIDC discovery failed");
            return problem(
                &door,
                StatusCode::BAD_GATEWAY,
                "The identity provider cannot be reached: try again in a moment.",
            );
        }
    };
    let attempt = Attempt::new(
        &random,
        &safe_next(query.next.as_deref()),
        Timestamp::now().as_second(),
    );
    let location = authorize_url(
        &endpoints.authorization,
        settings,
        &attempt,
        query.login_hint.as_deref(),
    );
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::SET_COOKIE, attempt_cookie(&attempt))
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Trades the code (with the PKCE verifier) for the ID token.
async fn exchange(
    settings: &OidcSettings,
    code: &str,
    attempt: &Attempt,
) -> Result<String, String> {
    let http = client(settings)?;
    let endpoints = discover(&http, settings).await?;
    let mut form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&client_id={}&code_verifier={}",
        url_part(code),
        url_part(&settings.redirect_uri()),
        url_part(&settings.client_id),
        url_part(&attempt.verifier)
    );
    if let Some(secret) = &settings.client_secret {
        form.push_str(&format!("&client_secret={}", url_part(secret)));
    }
    let response = http
        .post(&endpoints.token)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(form)
        .send()
        .await
        .map_err(|e| format!("{}: {e}", endpoints.token))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .map_err(|e| format!("{}: {e}", endpoints.token))?;
    if !status.is_success() {
        return Err(format!("{}: {status}: {answer}", endpoints.token));
    }
    answer
        .get("id_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: field id_token: missing", endpoints.token))
}

/// `GET /signin/oidc/callback`: checks, the code exchange, the apiserver's word on the token,
/// then the session. The last step is a page of this site that moves on by itself, so the
/// SameSite=Strict session cookie is sent with the next page (it would not be on a redirect
/// chain that started at the provider).
pub async fn callback(
    State(door): State<FrontDoor>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(settings) = door.web.oidc.as_ref() else {
        return problem(
            &door,
            StatusCode::NOT_FOUND,
            "Signing in with an identity provider is not set up here.",
        );
    };
    let (code, attempt) = match check_callback(
        cookie_value(&headers, ATTEMPT_COOKIE),
        &query,
        Timestamp::now().as_second(),
    ) {
        Ok(found) => found,
        Err(refusal) => return problem(&door, StatusCode::BAD_REQUEST, &refusal.to_string()),
    };
    let id_token = match exchange(settings, &code, &attempt).await {
        Ok(token) => token,
        Err(error) => {
            tracing::warn!(%error, "OIDC code exchange failed");
            return problem(
                &door,
                StatusCode::BAD_GATEWAY,
                "The identity provider did not complete the sign-in: start again.",
            );
        }
    };
    if let Err(refusal) = check_nonce(&id_token, &attempt.nonce) {
        return problem(&door, StatusCode::BAD_REQUEST, &refusal.to_string());
    }
    let mut bearer = HeaderMap::new();
    let accepted = axum::http::HeaderValue::from_str(&format!("Bearer {id_token}"))
        .ok()
        .map(|value| bearer.insert(header::AUTHORIZATION, value));
    if accepted.is_none() || door.auth.caller(&bearer).await.is_err() {
        return problem(
            &door,
            StatusCode::UNAUTHORIZED,
            "The cluster does not accept this identity provider's token (its issuer or audience is not trusted).",
        );
    }
    let next = escape(&attempt.next);
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"0;url={next}\"><title>Signed in</title></head>\
<body><p>Signed in. <a href=\"{next}\">Continue</a></p></body></html>"
    );
    let mut response = respond(StatusCode::OK, body);
    let headers = response.headers_mut();
    for value in [set_cookie(&id_token), clear_attempt_cookie()] {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

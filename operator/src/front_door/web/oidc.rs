//! Signing in through the organisation's OpenID Connect provider: the authorization code flow
//! with PKCE (S256). This module decides (the authorize URL, the sign-in attempt bound to a
//! short-lived cookie, the callback's checks); [`super::oidc_flow`] talks to the provider.
//!
//! The attempt's `state`, `nonce` and PKCE verifier live in an HttpOnly cookie for ten minutes
//! (SameSite=Lax: the provider's redirect back is a cross-site navigation). The callback must
//! bring the same `state`; the ID token must carry the same `nonce`. Its signature, issuer,
//! audience and expiry are checked by the apiserver (TokenReview) before it becomes the session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::html::url_part;

pub const ATTEMPT_COOKIE: &str = "marketplace_oidc";
pub const CALLBACK_PATH: &str = "/signin/oidc/callback";
/// How long a person may take at the provider.
pub const ATTEMPT_SECONDS: i64 = 600;

/// `marketplace api --oidc-*`: the provider the cluster trusts, and this UI as its client.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// The issuer URL (its discovery document is `{issuer}/.well-known/openid-configuration`).
    pub issuer_url: String,
    pub client_id: String,
    /// For confidential clients (sent as `client_secret_post`); public clients rely on PKCE.
    pub client_secret: Option<String>,
    /// This UI as browsers reach it, e.g. `https://marketplace.example.com`.
    pub public_url: String,
    /// Extra CA certificates (PEM) for the provider's HTTPS certificate.
    pub ca_pem: Option<String>,
}

impl OidcSettings {
    pub fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.public_url.trim_end_matches('/'))
    }
}

/// One sign-in on its way through the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go once signed in (a path on this site).
    pub next: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Attempt {
    /// A new attempt from 96 random bytes (state, nonce and verifier: 32 each).
    pub fn new(random: &[u8; 96], next: &str, now: i64) -> Attempt {
        Attempt {
            state: URL_SAFE_NO_PAD.encode(&random[..32]),
            nonce: URL_SAFE_NO_PAD.encode(&random[32..64]),
            verifier: URL_SAFE_NO_PAD.encode(&random[64..]),
            next: next.to_owned(),
            expires_at: now + ATTEMPT_SECONDS,
        }
    }

    /// The cookie's value: dot-separated base64url parts.
    pub fn to_cookie(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            self.state,
            self.nonce,
            self.verifier,
            self.expires_at,
            URL_SAFE_NO_PAD.encode(self.next.as_bytes())
        )
    }

    pub fn from_cookie(value: &str) -> Option<Attempt> {
        let mut parts = value.split('.');
        let (state, nonce, verifier, expires, next) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if parts.next().is_some() {
            return None;
        }
        Some(Attempt {
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            verifier: verifier.to_owned(),
            expires_at: expires.parse().ok()?,
            next: String::from_utf8(URL_SAFE_NO_PAD.decode(next).ok()?).ok()?,
        })
    }
}

/// The PKCE S256 challenge of a verifier (RFC 7636).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Where the browser goes to sign in. `login_hint` passes through (providers prefill the
/// account with it).
pub fn authorize_url(
    endpoint: &str,
    settings: &OidcSettings,
    attempt: &Attempt,
    login_hint: Option<&str>,
) -> String {
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    let mut url = format!(
        "{endpoint}{separator}response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile%20email\
&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        url_part(&settings.client_id),
        url_part(&settings.redirect_uri()),
        url_part(&attempt.state),
        url_part(&attempt.nonce),
        url_part(&challenge(&attempt.verifier)),
    );
    if let Some(hint) = login_hint.filter(|h| !h.is_empty()) {
        url.push_str(&format!("&login_hint={}", url_part(hint)));
    }
    url
}

pub fn attempt_cookie(attempt: &Attempt) -> String {
    format!(
        "{ATTEMPT_COOKIE}={}; Path=/signin/oidc; HttpOnly; Secure; SameSite=Lax; Max-Age={ATTEMPT_SECONDS}",
        attempt.to_cookie()
    )
}

pub fn clear_attempt_cookie() -> String {
    format!("{ATTEMPT_COOKIE}=; Path=/signin/oidc; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

/// What the provider sent back to the callback.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Why a callback does not sign anyone in; each says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallbackRefusal {
    #[error("The identity provider refused: {0}. Try again, or ask your administrator.")]
    Provider(String),
    #[error("This sign-in did not start here, or started in another browser: start again.")]
    NoAttempt,
    #[error("This sign-in took longer than ten minutes: start again.")]
    Expired,
    #[error("This answer does not belong to the sign-in this browser started: start again.")]
    StateMismatch,
    #[error("The identity provider sent no code: start again.")]
    NoCode,
    #[error("The identity provider's token is not for this sign-in (nonce): start again.")]
    NonceMismatch,
}

/// The callback's checks: an attempt from this browser, not expired, with the same `state`.
/// Gives the code to trade and the attempt.
pub fn check_callback(
    cookie: Option<&str>,
    query: &CallbackQuery,
    now: i64,
) -> Result<(String, Attempt), CallbackRefusal> {
    if let Some(error) = &query.error {
        let why = query.error_description.as_deref().unwrap_or(error);
        return Err(CallbackRefusal::Provider(why.to_owned()));
    }
    let attempt = cookie
        .and_then(Attempt::from_cookie)
        .ok_or(CallbackRefusal::NoAttempt)?;
    if now >= attempt.expires_at {
        return Err(CallbackRefusal::Expired);
    }
    let state_matches: bool = subtle::ConstantTimeEq::ct_eq(
        attempt.state.as_bytes(),
        query.state.as_deref().unwrap_or("").as_bytes(),
    )
    .into();
    if !state_matches {
        return Err(CallbackRefusal::StateMismatch);
    }
    let code = query
        .code
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or(CallbackRefusal::NoCode)?;
    Ok((code, attempt))
}

/// Whether the ID token's `nonce` claim is the attempt's (the signature is the apiserver's to
/// check: a token whose payload was altered fails there).
pub fn check_nonce(id_token: &str, nonce: &str) -> Result<(), CallbackRefusal> {
    let claims: Option<Value> = id_token
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match claims
        .as_ref()
        .and_then(|c| c.get("nonce"))
        .and_then(Value::as_str)
    {
        Some(found) if found == nonce => Ok(()),
        _ => Err(CallbackRefusal::NonceMismatch),
    }
}

#[cfg(test)]
#[path = "oidc_tests.rs"]
mod tests;

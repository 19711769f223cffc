//! The issuer's authorization code flow with PKCE (RFC 7636), as a web UI signing people in
//! uses it: `/authorize` approves at once (no login page: the subject is the request's
//! `login_hint`, or the issuer's default) and redirects back with a one-time code; `/token`
//! trades the code and its PKCE verifier for an ID token carrying the request's `nonce`.
//! Only S256 challenges are accepted, codes live a minute and are used once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};

use super::{Es256Key, IdToken, OIDC_AUDIENCE, unix_seconds};

pub(crate) const AUTHORIZE_PATH: &str = "/authorize";
pub(crate) const TOKEN_PATH: &str = "/token";
/// Who is signed in when `/authorize` has no `login_hint`.
pub const DEFAULT_SUBJECT: &str = "dev-user";
const CODE_LIFETIME: Duration = Duration::from_secs(60);
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// An answer of the flow's endpoints: status line, extra headers, JSON body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FlowAnswer {
    pub status: &'static str,
    pub location: Option<String>,
    pub body: String,
}

impl FlowAnswer {
    fn error(code: &str, description: &str) -> Self {
        FlowAnswer {
            status: "400 Bad Request",
            location: None,
            body: json!({"error": code, "error_description": description}).to_string(),
        }
    }
}

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    subject: String,
    issued: Instant,
}

/// The flow's state: codes not yet traded.
pub(crate) struct CodeFlow {
    issuer: String,
    key: Es256Key,
    grants: Mutex<HashMap<String, Grant>>,
}

/// `application/x-www-form-urlencoded` pairs (query strings and form bodies).
pub(crate) fn form_pairs(text: &str) -> HashMap<String, String> {
    fn decode(part: &str) -> String {
        let bytes = part.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The S256 challenge of a PKCE verifier.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

impl CodeFlow {
    pub(crate) fn new(issuer: String, key: Es256Key) -> Self {
        CodeFlow {
            issuer,
            key,
            grants: Mutex::new(HashMap::new()),
        }
    }

    /// `GET /authorize?...`: approves and redirects to `redirect_uri` with `code` and `state`.
    pub(crate) fn authorize(&self, query: &str) -> FlowAnswer {
        let q = form_pairs(query);
        let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
        if get("response_type") != "code" {
            return FlowAnswer::error("unsupported_response_type", "response_type must be code");
        }
        if get("client_id") != OIDC_AUDIENCE {
            return FlowAnswer::error("unauthorized_client", "unknown client_id");
        }
        if !get("scope").split(' ').any(|s| s == "openid") {
            return FlowAnswer::error("invalid_scope", "scope must include openid");
        }
        if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 {
            return FlowAnswer::error("invalid_request", "a PKCE S256 code_challenge is required");
        }
        let redirect_uri = get("redirect_uri");
        if !(redirect_uri.starts_with("http://127.0.0.1:")
            || redirect_uri.starts_with("http://localhost:")
            || redirect_uri.starts_with("https://"))
        {
            return FlowAnswer::error("invalid_request", "redirect_uri is not allowed");
        }
        let mut bytes = [0u8; 24];
        if SystemRandom::new().fill(&mut bytes).is_err() {
            return FlowAnswer::error("server_error", "no randomness");
        }
        let code = URL_SAFE_NO_PAD.encode(bytes);
        let subject = match get("login_hint") {
            "" => DEFAULT_SUBJECT.to_owned(),
            hint => hint.to_owned(),
        };
        let grant = Grant {
            client_id: get("client_id").to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            challenge: get("code_challenge").to_owned(),
            nonce: q.get("nonce").cloned(),
            subject,
            issued: Instant::now(),
        };
        if let Ok(mut grants) = self.grants.lock() {
            grants.retain(|_, g| g.issued.elapsed() < CODE_LIFETIME);
            grants.insert(code.clone(), grant);
        }
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        FlowAnswer {
            status: "302 Found",
            location: Some(format!(
                "{redirect_uri}{separator}code={}&state={}",
                encode(&code),
                encode(get("state"))
            )),
            body: "{}".to_owned(),
        }
    }

    /// `POST /token` (form body): the code and its verifier for an ID token.
    pub(crate) fn token(&self, body: &str) -> FlowAnswer {
        let form = form_pairs(body);
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if get("grant_type") != "authorization_code" {
            return FlowAnswer::error(
                "unsupported_grant_type",
                "grant_type must be authorization_code",
            );
        }
        let grant = self
            .grants
            .lock()
            .ok()
            .and_then(|mut grants| grants.remove(get("code")));
        let Some(grant) = grant.filter(|g| g.issued.elapsed() < CODE_LIFETIME) else {
            return FlowAnswer::error("invalid_grant", "unknown, used or expired code");
        };
        if grant.client_id != get("client_id") || grant.redirect_uri != get("redirect_uri") {
            return FlowAnswer::error("invalid_grant", "client_id or redirect_uri differ");
        }
        if s256(get("code_verifier")) != grant.challenge {
            return FlowAnswer::error("invalid_grant", "the PKCE code_verifier does not match");
        }
        let now = std::time::SystemTime::now();
        let token = IdToken {
            issuer: self.issuer.clone(),
            audience: OIDC_AUDIENCE.to_owned(),
            username: grant.subject,
            groups: Vec::new(),
            issued_at: now,
            expires_at: now + TOKEN_LIFETIME,
        };
        let mut claims = token.claims();
        if let (Some(nonce), Value::Object(map)) = (grant.nonce, &mut claims) {
            map.insert("nonce".to_owned(), json!(nonce));
        }
        match self.key.sign(&claims) {
            Ok(id_token) => FlowAnswer {
                status: "200 OK",
                location: None,
                body: json!({"id_token": id_token, "token_type": "Bearer",
                    "expires_in": TOKEN_LIFETIME.as_secs(), "access_token": id_token,
                    "iat": unix_seconds(now)})
                .to_string(),
            },
            Err(e) => FlowAnswer::error("server_error", &e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> CodeFlow {
        CodeFlow::new("https://127.0.0.1:1".into(), Es256Key::generate().unwrap())
    }

    const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more-0123";

    fn authorize(flow: &CodeFlow, challenge: &str) -> FlowAnswer {
        flow.authorize(&format!(
            "response_type=code&client_id=marketplace&scope=openid%20profile&state=s%2F1&nonce=n1\
             &code_challenge={challenge}&code_challenge_method=S256&login_hint=ann%40acme.example\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb"
        ))
    }

    fn code_of(answer: &FlowAnswer) -> String {
        let location = answer.location.clone().expect("redirect");
        let query = location.split_once('?').expect("query").1;
        let pairs = form_pairs(query);
        assert_eq!(pairs["state"], "s/1");
        pairs["code"].clone()
    }

    #[test]
    fn a_code_with_its_verifier_gives_an_id_token_once() {
        let flow = flow();
        let answer = authorize(&flow, &s256(VERIFIER));
        assert_eq!(answer.status, "302 Found");
        let code = code_of(&answer);
        let body = format!(
            "grant_type=authorization_code&code={}&client_id=marketplace\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_verifier={VERIFIER}",
            encode(&code)
        );
        let wrong = flow.token(&body.replace(VERIFIER, "another-verifier"));
        assert_eq!(
            wrong.status, "400 Bad Request",
            "a wrong verifier also burns the code"
        );
        let again = authorize(&flow, &s256(VERIFIER));
        let body = body.replace(&encode(&code), &encode(&code_of(&again)));
        let answer = flow.token(&body);
        assert_eq!(answer.status, "200 OK", "{}", answer.body);
        let token: Value = serde_json::from_str(&answer.body).unwrap();
        let payload = token["id_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["sub"], "ann@acme.example");
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(flow.token(&body).status, "400 Bad Request", "used once");
    }

    #[test]
    fn plain_challenges_are_refused() {
        let answer = flow().authorize(
            "response_type=code&client_id=marketplace&scope=openid&code_challenge=x&code_challenge_method=plain&redirect_uri=https%3A%2F%2Fa",
        );
        assert_eq!(answer.status, "400 Bad Request");
    }
}

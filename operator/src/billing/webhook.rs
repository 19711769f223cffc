//! Webhook signature verification (contract §5.1): v1 `hex(SHA256(secret + body))` and v3
//! `base64(HMAC-SHA256(secret, method + uri + body + timestamp))` with a 5-minute window (v2
//! belongs to workflow webhooks and CRM cards, which this receiver does not serve).
//! Comparisons are constant-time. v3 requests are also checked against replays within the
//! window. Events are hints either way: handlers re-read the object (contract §5.2, §5.3).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// contract §5.1: both SDKs use `MAX_ALLOWED_TIMESTAMP = 300000` ms.
pub const MAX_AGE_MS: i64 = 300_000;
/// Bound on remembered v3 signatures (a burst bigger than this within 5 minutes evicts the
/// oldest ones first).
const MAX_REMEMBERED: usize = 100_000;

/// The app's client secret. `Debug` is redacted.
#[derive(Clone)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        WebhookSecret(secret.into().trim().to_string())
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// contract §5.1: before hashing, decode exactly these percent-encodings (not the `?` that
/// starts the query, which is not encoded in the first place).
pub fn normalize_uri_v3(uri: &str) -> String {
    const DECODE: &[(&str, &str)] = &[
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    'outer: while !rest.is_empty() {
        if rest.starts_with('%') {
            for (enc, dec) in DECODE {
                if rest.starts_with(enc) {
                    out.push_str(dec);
                    rest = &rest[enc.len()..];
                    continue 'outer;
                }
            }
        }
        let Some(c) = rest.chars().next() else { break };
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// v1 signature, lowercase hex.
pub fn signature_v1(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(secret.0.as_bytes());
    h.update(body);
    hex(&h.finalize())
}

/// `None` only if the HMAC rejects the key, which it never does for any length.
fn v3_mac(
    secret: &WebhookSecret,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: &str,
) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.0.as_bytes()).ok()?;
    mac.update(method.as_bytes());
    mac.update(normalize_uri_v3(uri).as_bytes());
    mac.update(body);
    // contract §8.8: the timestamp goes in exactly as the header carried it.
    mac.update(timestamp.as_bytes());
    Some(mac)
}

/// v3 signature, standard base64.
pub fn signature_v3(
    secret: &WebhookSecret,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: &str,
) -> String {
    v3_mac(secret, method, uri, body, timestamp)
        .map(|m| base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The signature headers of one request (names from contract §5.1).
#[derive(Debug, Clone, Copy, Default)]
pub struct SignatureHeaders<'a> {
    /// `X-HubSpot-Signature-v3`.
    pub signature_v3: Option<&'a str>,
    /// `X-HubSpot-Request-Timestamp` (epoch ms).
    pub timestamp: Option<&'a str>,
    /// `X-HubSpot-Signature`.
    pub signature: Option<&'a str>,
    /// `X-HubSpot-Signature-Version`.
    pub signature_version: Option<&'a str>,
}

impl<'a> SignatureHeaders<'a> {
    pub fn from_headers(h: &'a reqwest::header::HeaderMap) -> Self {
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
        SignatureHeaders {
            signature_v3: get("x-hubspot-signature-v3"),
            timestamp: get("x-hubspot-request-timestamp"),
            signature: get("x-hubspot-signature"),
            signature_version: get("x-hubspot-signature-version"),
        }
    }
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no HubSpot signature header")]
    MissingSignature,
    #[error("v3 signature without a valid X-HubSpot-Request-Timestamp")]
    BadTimestamp,
    #[error("request timestamp is {age_ms} ms away from now (limit {MAX_AGE_MS} ms)")]
    Stale { age_ms: i64 },
    #[error("signature does not match")]
    Forged,
    #[error("request already received (replay)")]
    Replayed,
    #[error("only a v1 signature was sent, and v1 is not accepted (no timestamp, so replayable)")]
    V1NotAccepted,
}

impl WebhookError {
    pub fn category(&self) -> &'static str {
        match self {
            WebhookError::MissingSignature => "missing_signature",
            WebhookError::BadTimestamp => "bad_timestamp",
            WebhookError::Stale { .. } => "stale",
            WebhookError::Forged => "forged",
            WebhookError::Replayed => "replayed",
            WebhookError::V1NotAccepted => "v1_not_accepted",
        }
    }
}

/// Which signature was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    V1,
    V3,
}

/// Verifies incoming webhooks. One per app secret; share it between request handlers.
#[derive(Debug)]
pub struct WebhookVerifier {
    secret: WebhookSecret,
    /// Accept requests that carry only v1 (CRM webhook subscriptions of legacy apps). v1 has
    /// no timestamp, so such requests can be neither aged nor checked for replays.
    pub accept_v1_only: bool,
    /// v3 signature → timestamp (ms), for replay detection within the window.
    seen: Mutex<HashMap<String, i64>>,
}

impl WebhookVerifier {
    pub fn new(secret: WebhookSecret) -> Self {
        WebhookVerifier {
            secret,
            accept_v1_only: false,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Checks one request. `uri` is the full URL HubSpot called (scheme, host, path, query),
    /// `now_ms` the receiver's clock in epoch ms.
    pub fn verify(
        &self,
        method: &str,
        uri: &str,
        body: &[u8],
        headers: SignatureHeaders<'_>,
        now_ms: i64,
    ) -> Result<SignatureVersion, WebhookError> {
        if let Some(sig) = headers.signature_v3 {
            let ts_text = headers.timestamp.ok_or(WebhookError::BadTimestamp)?;
            let ts = parse_timestamp(ts_text).ok_or(WebhookError::BadTimestamp)?;
            let age_ms = now_ms - ts;
            // Future timestamps beyond the window are refused too (a skewed or forged clock).
            if age_ms.abs() > MAX_AGE_MS {
                return Err(WebhookError::Stale { age_ms });
            }
            let given = base64::engine::general_purpose::STANDARD
                .decode(sig.trim())
                .map_err(|_| WebhookError::Forged)?;
            v3_mac(&self.secret, method, uri, body, ts_text)
                .ok_or(WebhookError::Forged)?
                .verify_slice(&given)
                .map_err(|_| WebhookError::Forged)?;
            self.remember(sig.trim(), ts, now_ms)?;
            return Ok(SignatureVersion::V3);
        }
        let Some(sig) = headers.signature else {
            return Err(WebhookError::MissingSignature);
        };
        if headers
            .signature_version
            .is_some_and(|v| !v.eq_ignore_ascii_case("v1"))
        {
            // v2 belongs to workflow webhooks and CRM cards, not to this receiver.
            return Err(WebhookError::Forged);
        }
        if !self.accept_v1_only {
            return Err(WebhookError::V1NotAccepted);
        }
        let given = unhex(sig).ok_or(WebhookError::Forged)?;
        let expected = unhex(&signature_v1(&self.secret, body)).ok_or(WebhookError::Forged)?;
        if given.len() == expected.len() && bool::from(given.ct_eq(&expected)) {
            Ok(SignatureVersion::V1)
        } else {
            Err(WebhookError::Forged)
        }
    }

    fn remember(&self, sig: &str, ts: i64, now_ms: i64) -> Result<(), WebhookError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(sig) {
            return Err(WebhookError::Replayed);
        }
        if seen.len() >= MAX_REMEMBERED {
            // Anything older than the window can no longer be replayed successfully.
            seen.retain(|_, t| now_ms - *t <= MAX_AGE_MS);
            if seen.len() >= MAX_REMEMBERED
                && let Some(oldest) = seen.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
            {
                seen.remove(&oldest);
            }
        }
        seen.insert(sig.to_string(), ts);
        Ok(())
    }
}

/// contract §8.8: integer milliseconds; a float rendering (`…792.0`) is tolerated for ageing,
/// while the signature still uses the header text verbatim.
fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>().ok().or_else(|| {
        let f: f64 = s.parse().ok()?;
        (f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15).then_some(f as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const V1_BODY: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
    const URI: &str = "https://www.example.com/webhook_uri";
    const BODY: &str = r#"{"example_field":"example_value"}"#;

    fn secret() -> WebhookSecret {
        WebhookSecret::new(SECRET)
    }

    /// contract §5.1 known-answer vectors.
    #[test]
    fn known_answer_vectors() {
        assert_eq!(
            signature_v1(&secret(), V1_BODY.as_bytes()),
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
        );
        assert_eq!(
            signature_v3(&secret(), "POST", URI, BODY.as_bytes(), "1700000000000"),
            "rQEKkaNUiu+1qGF//O/pw4BCzstSqO1PyUnGICmf+7o="
        );
    }

    fn v3_headers<'a>(sig: &'a str, ts: &'a str) -> SignatureHeaders<'a> {
        SignatureHeaders {
            signature_v3: Some(sig),
            timestamp: Some(ts),
            signature: None,
            signature_version: None,
        }
    }

    #[test]
    fn v3_accepts_fresh_and_rejects_stale_forged_and_replayed() {
        let v = WebhookVerifier::new(secret());
        let ts = "1700000000000";
        let sig = signature_v3(&secret(), "POST", URI, BODY.as_bytes(), ts);
        let now = 1_700_000_000_000 + 60_000;
        assert_eq!(
            v.verify("POST", URI, BODY.as_bytes(), v3_headers(&sig, ts), now),
            Ok(SignatureVersion::V3)
        );
        // Same request again: a replay.
        assert_eq!(
            v.verify("POST", URI, BODY.as_bytes(), v3_headers(&sig, ts), now),
            Err(WebhookError::Replayed)
        );
        // Older than 5 minutes, or too far in the future.
        let v = WebhookVerifier::new(secret());
        assert_eq!(
            v.verify(
                "POST",
                URI,
                BODY.as_bytes(),
                v3_headers(&sig, ts),
                1_700_000_300_001
            ),
            Err(WebhookError::Stale { age_ms: 300_001 })
        );
        assert!(matches!(
            v.verify(
                "POST",
                URI,
                BODY.as_bytes(),
                v3_headers(&sig, ts),
                1_699_999_000_000
            ),
            Err(WebhookError::Stale { .. })
        ));
        // Tampered body, method, uri, timestamp; wrong secret.
        let t = 1_700_000_000_000;
        assert_eq!(
            v.verify("POST", URI, b"{}", v3_headers(&sig, ts), t),
            Err(WebhookError::Forged)
        );
        assert_eq!(
            v.verify("PUT", URI, BODY.as_bytes(), v3_headers(&sig, ts), t),
            Err(WebhookError::Forged)
        );
        assert_eq!(
            v.verify(
                "POST",
                "https://www.example.com/other",
                BODY.as_bytes(),
                v3_headers(&sig, ts),
                t
            ),
            Err(WebhookError::Forged)
        );
        assert_eq!(
            v.verify(
                "POST",
                URI,
                BODY.as_bytes(),
                v3_headers(&sig, "1700000000001"),
                t
            ),
            Err(WebhookError::Forged)
        );
        let other = signature_v3(
            &WebhookSecret::new("other"),
            "POST",
            URI,
            BODY.as_bytes(),
            ts,
        );
        assert_eq!(
            v.verify("POST", URI, BODY.as_bytes(), v3_headers(&other, ts), t),
            Err(WebhookError::Forged)
        );
        assert_eq!(
            v.verify(
                "POST",
                URI,
                BODY.as_bytes(),
                v3_headers("not base64!", ts),
                t
            ),
            Err(WebhookError::Forged)
        );
        assert_eq!(
            v.verify(
                "POST",
                URI,
                BODY.as_bytes(),
                v3_headers(&sig, "yesterday"),
                t
            ),
            Err(WebhookError::BadTimestamp)
        );
    }

    #[test]
    fn v3_uri_decoding_is_exactly_the_documented_list() {
        assert_eq!(
            normalize_uri_v3("https://h/p%3Aa%2Fb?x=%40%21%24%27%28%29%2A%2C%3B%3F&y=%20%3a"),
            "https://h/p:a/b?x=@!$'()*,;?&y=%20%3a"
        );
        let enc = "https://h/hook?portal=%3A1";
        let plain = "https://h/hook?portal=:1";
        let ts = "1700000000000";
        // HubSpot signs the decoded form; the receiver sees the encoded one.
        let sig = signature_v3(&secret(), "POST", plain, b"[]", ts);
        let v = WebhookVerifier::new(secret());
        assert_eq!(
            v.verify("POST", enc, b"[]", v3_headers(&sig, ts), 1_700_000_000_000),
            Ok(SignatureVersion::V3)
        );
    }

    #[test]
    fn float_timestamps_age_but_sign_verbatim() {
        let ts = "1700000000000.0";
        let sig = signature_v3(&secret(), "POST", URI, b"[]", ts);
        let v = WebhookVerifier::new(secret());
        assert_eq!(
            v.verify("POST", URI, b"[]", v3_headers(&sig, ts), 1_700_000_000_000),
            Ok(SignatureVersion::V3)
        );
    }

    #[test]
    fn v1_only_when_allowed() {
        let sig = signature_v1(&secret(), V1_BODY.as_bytes());
        let h = SignatureHeaders {
            signature_v3: None,
            timestamp: None,
            signature: Some(&sig),
            signature_version: Some("v1"),
        };
        let mut v = WebhookVerifier::new(secret());
        assert_eq!(
            v.verify("POST", URI, V1_BODY.as_bytes(), h, 0),
            Err(WebhookError::V1NotAccepted)
        );
        v.accept_v1_only = true;
        assert_eq!(
            v.verify("POST", URI, V1_BODY.as_bytes(), h, 0),
            Ok(SignatureVersion::V1)
        );
        assert_eq!(
            v.verify("POST", URI, b"[]", h, 0),
            Err(WebhookError::Forged)
        );
        assert_eq!(
            v.verify("POST", URI, b"[]", SignatureHeaders::default(), 0),
            Err(WebhookError::MissingSignature)
        );
        assert!(!format!("{v:?}").contains(SECRET));
    }
}

//! The HubSpot API token (contract §6: `Authorization: Bearer <token>`; private-app tokens look
//! like `pat-na1-…` and must not be parsed). It comes from a Kubernetes Secret and never appears
//! in logs, errors or `Debug` output.

use k8s_openapi::api::core::v1::Secret;

/// A Bearer token whose `Debug` and `Display` are redacted.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    /// Trims surrounding whitespace (Secrets written with `echo` end with a newline).
    pub fn new(token: impl Into<String>) -> Result<Self, TokenError> {
        let token = token.into().trim().to_string();
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        // A header value must be visible ASCII; reject early instead of failing every request.
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotAscii);
        }
        Ok(ApiToken(token))
    }

    /// Reads `key` from a Secret's `data` (or `stringData`, for objects built in memory).
    pub fn from_secret(secret: &Secret, key: &str) -> Result<Self, TokenError> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
            let text = String::from_utf8(bytes.0.clone()).map_err(|_| TokenError::NotAscii)?;
            return ApiToken::new(text);
        }
        if let Some(text) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
            return ApiToken::new(text.clone());
        }
        Err(TokenError::MissingKey {
            secret: name,
            key: key.to_string(),
        })
    }

    /// Only for building the `Authorization` header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the HubSpot token is empty")]
    Empty,
    #[error("the HubSpot token has characters that cannot go in an HTTP header")]
    NotAscii,
    #[error("Secret {secret:?} has no key {key:?}")]
    MissingKey { secret: String, key: String },
}

impl TokenError {
    pub fn category(&self) -> &'static str {
        match self {
            TokenError::Empty => "token_empty",
            TokenError::NotAscii => "token_invalid",
            TokenError::MissingKey { .. } => "token_missing",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    #[test]
    fn debug_never_shows_the_token() {
        let t = ApiToken::new("pat-na1-secret-value\n").unwrap();
        assert_eq!(t.expose(), "pat-na1-secret-value");
        assert!(!format!("{t:?}").contains("secret-value"));
    }

    #[test]
    fn reads_from_a_secret() {
        let mut s = Secret::default();
        s.metadata.name = Some("hubspot".into());
        assert_eq!(
            ApiToken::from_secret(&s, "token").unwrap_err(),
            TokenError::MissingKey {
                secret: "hubspot".into(),
                key: "token".into()
            }
        );
        s.data = Some(BTreeMap::from([(
            "token".to_string(),
            ByteString(b"pat-na1-x\n".to_vec()),
        )]));
        assert_eq!(
            ApiToken::from_secret(&s, "token").unwrap().expose(),
            "pat-na1-x"
        );
        assert_eq!(ApiToken::new("  ").unwrap_err(), TokenError::Empty);
        assert_eq!(ApiToken::new("a b").unwrap_err(), TokenError::NotAscii);
    }
}

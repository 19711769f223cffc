//! Typed errors of the HubSpot client. HubSpot's error body (contract §4: `category`,
//! `subCategory`, `correlationId`, `message`; every field optional) is kept so callers can decide
//! whether to retry, treat a conflict as "exists", or raise a condition.
//!
//! The API token never reaches these types: request URLs and headers are not stored, only the
//! path of the call.

use serde_json::Value;
use std::time::Duration;

/// HubSpot's error body, parsed leniently (contract §4: "treat every field as optional").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiErrorBody {
    pub category: Option<String>,
    pub sub_category: Option<String>,
    pub message: Option<String>,
    pub correlation_id: Option<String>,
    /// `errors[].code`, e.g. `PROPERTY_DOESNT_EXIST` or `VALUE_NOT_UNIQUE`.
    pub codes: Vec<String>,
    /// 429 bodies carry `policyName` instead of `category` (contract §3.1).
    pub policy_name: Option<String>,
}

impl ApiErrorBody {
    /// Parses any JSON body; non-JSON bodies give an empty value with the text as message.
    pub fn parse(bytes: &[u8]) -> Self {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            let text = String::from_utf8_lossy(bytes);
            let text = text.trim();
            return ApiErrorBody {
                message: (!text.is_empty()).then(|| truncate(text, 300)),
                ..ApiErrorBody::default()
            };
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let codes = v
            .get("errors")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|e| e.get("code").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        ApiErrorBody {
            category: s("category"),
            sub_category: s("subCategory"),
            message: s("message").map(|m| truncate(&m, 500)),
            correlation_id: s("correlationId"),
            codes,
            policy_name: s("policyName"),
        }
    }

    fn mentions(&self, needle: &str) -> bool {
        let needle = needle.to_ascii_lowercase();
        [&self.message, &self.sub_category, &self.category]
            .into_iter()
            .flatten()
            .any(|s| s.to_ascii_lowercase().contains(&needle))
            || self
                .codes
                .iter()
                .any(|c| c.to_ascii_lowercase().contains(&needle))
    }

    /// contract §2.4: a unique-value violation is a 409, or a 400 "already has that value".
    pub fn is_unique_violation(&self) -> bool {
        self.mentions("already has that value")
            || self.mentions("VALUE_NOT_UNIQUE")
            || self.mentions("already exists")
    }

    /// contract §1.2 prerequisite: the API refuses subscriptions without HubSpot payments or
    /// Stripe. The exact shape is undocumented, so match on what any wording must mention.
    pub fn is_payments_not_set_up(&self) -> bool {
        self.mentions("PAYMENTS_NOT_SET_UP")
            || (self.mentions("payment") && (self.mentions("set up") || self.mentions("stripe")))
    }
}

impl std::fmt::Display for ApiErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.category.as_deref().unwrap_or("-"))?;
        if let Some(sub) = &self.sub_category {
            write!(f, "/{sub}")?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if let Some(c) = &self.correlation_id {
            write!(f, " (correlationId {c})")?;
        }
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Everything the client can fail with. Callers decide with [`HubSpotError::category`] and
/// [`HubSpotError::is_retryable`].
// Clone: one failed batch call answers every caller whose input it carried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubSpotError {
    /// 5xx/423/477 or a transport failure on a safe call, still failing after the bounded retries.
    #[error("HubSpot {op} failed transiently (HTTP {status:?}): {body}")]
    Retryable {
        op: String,
        status: Option<u16>,
        body: Box<ApiErrorBody>,
        /// How long HubSpot asked us to wait, if it said (477 `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// A create (never retried blindly, contract §2.6) failed in a way that may have committed.
    /// The caller must go back to the lookup step.
    #[error("HubSpot {op} may have been applied (HTTP {status:?}); look it up before retrying")]
    AmbiguousAfterCommit { op: String, status: Option<u16> },
    /// 409, or a unique-value 400 (contract §2.4).
    #[error("HubSpot {op}: conflict: {body}")]
    Conflict { op: String, body: Box<ApiErrorBody> },
    /// 400 (contract §4): bad property, enum option, date not at midnight, portal validation rule.
    #[error("HubSpot {op}: rejected as invalid: {body}")]
    Validation { op: String, body: Box<ApiErrorBody> },
    /// 401/403 (contract §4, §6): a 401 does not mean "refresh the token".
    #[error("HubSpot {op}: not authorised (HTTP {status}): {body}")]
    Auth {
        op: String,
        status: u16,
        body: Box<ApiErrorBody>,
    },
    /// A 10-second (or search) 429 that kept coming after the bounded waits.
    #[error("HubSpot {op}: rate limited ({policy}) after waiting out the window")]
    RateLimited { op: String, policy: String },
    /// contract §3.1: never retry `DAILY` before the reset; all calls stop until then.
    #[error("HubSpot daily API limit exhausted; calls resume in {}s", retry_in.as_secs())]
    DailyLimitExhausted { retry_in: Duration },
    /// contract §1.2 / §1.8: the portal cannot hold commerce subscriptions.
    #[error(
        "the HubSpot portal has no HubSpot payments or Stripe set up, so commerce subscriptions \
         cannot be created ({body}). Set up payments in HubSpot, or run the operator in the explicit \
         CRM-only billing mode (deals and line items are recorded, nothing is billed)"
    )]
    PaymentsNotEnabled { body: Box<ApiErrorBody> },
    /// 404 `OBJECT_NOT_FOUND`.
    #[error("HubSpot {op}: not found: {body}")]
    NotFound { op: String, body: Box<ApiErrorBody> },
    /// Any other status.
    #[error("HubSpot {op}: unexpected HTTP {status}: {body}")]
    Unexpected {
        op: String,
        status: u16,
        body: Box<ApiErrorBody>,
    },
    /// A 2xx whose body does not have the documented shape.
    #[error("HubSpot {op}: unexpected response: {reason}")]
    Decode { op: String, reason: String },
    /// The portal does not look like the contract says (start-up bootstrap).
    #[error("HubSpot portal setup: {0}")]
    Portal(String),
    /// Bad input or settings, found before any call.
    #[error("invalid billing input: {0}")]
    Invalid(String),
}

impl HubSpotError {
    /// A static label for metrics, logs and conditions.
    pub fn category(&self) -> &'static str {
        match self {
            HubSpotError::Retryable { .. } => "retryable",
            HubSpotError::AmbiguousAfterCommit { .. } => "ambiguous_after_commit",
            HubSpotError::Conflict { .. } => "conflict",
            HubSpotError::Validation { .. } => "validation",
            HubSpotError::Auth { .. } => "auth",
            HubSpotError::RateLimited { .. } => "rate_limited",
            HubSpotError::DailyLimitExhausted { .. } => "daily_exhausted",
            HubSpotError::PaymentsNotEnabled { .. } => "payments_not_enabled",
            HubSpotError::NotFound { .. } => "not_found",
            HubSpotError::Unexpected { .. } => "unexpected",
            HubSpotError::Decode { .. } => "decode",
            HubSpotError::Portal(_) => "portal",
            HubSpotError::Invalid(_) => "invalid",
        }
    }

    /// Whether a later reconcile may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            HubSpotError::Retryable { .. }
                | HubSpotError::AmbiguousAfterCommit { .. }
                | HubSpotError::RateLimited { .. }
                | HubSpotError::DailyLimitExhausted { .. }
        )
    }

    /// The body HubSpot sent, when there was one.
    pub fn body(&self) -> Option<&ApiErrorBody> {
        match self {
            HubSpotError::Retryable { body, .. }
            | HubSpotError::Conflict { body, .. }
            | HubSpotError::Validation { body, .. }
            | HubSpotError::Auth { body, .. }
            | HubSpotError::PaymentsNotEnabled { body }
            | HubSpotError::NotFound { body, .. }
            | HubSpotError::Unexpected { body, .. } => Some(body.as_ref()),
            _ => None,
        }
    }

    /// Maps a final (non-retried) 4xx/other response to a variant (contract §4 table).
    pub fn from_status(op: &str, status: u16, body: ApiErrorBody) -> Self {
        let op = op.to_string();
        let unique = body.is_unique_violation();
        let payments = body.is_payments_not_set_up();
        let body = Box::new(body);
        match status {
            401 | 403 => HubSpotError::Auth { op, status, body },
            404 => HubSpotError::NotFound { op, body },
            409 => HubSpotError::Conflict { op, body },
            400 if payments => HubSpotError::PaymentsNotEnabled { body },
            400 if unique => HubSpotError::Conflict { op, body },
            400 | 422 => HubSpotError::Validation { op, body },
            _ => HubSpotError::Unexpected { op, status, body },
        }
    }
}

pub type Result<T, E = HubSpotError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_standard_error_shape_leniently() {
        let b = ApiErrorBody::parse(
            br#"{"status":"error","message":"Property values were not valid","correlationId":"c-1",
                "category":"VALIDATION_ERROR","subCategory":"X","errors":[{"code":"PROPERTY_DOESNT_EXIST"}]}"#,
        );
        assert_eq!(b.category.as_deref(), Some("VALIDATION_ERROR"));
        assert_eq!(b.sub_category.as_deref(), Some("X"));
        assert_eq!(b.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(b.codes, vec!["PROPERTY_DOESNT_EXIST".to_string()]);
        assert_eq!(
            ApiErrorBody::parse(b"<html>oops</html>").message.as_deref(),
            Some("<html>oops</html>")
        );
        assert_eq!(ApiErrorBody::parse(b"").message, None);
    }

    #[test]
    fn maps_statuses_to_variants() {
        let unique = ApiErrorBody::parse(
            br#"{"category":"VALIDATION_ERROR","message":"A deal with ID 5 already has that value."}"#,
        );
        assert_eq!(
            HubSpotError::from_status("x", 400, unique).category(),
            "conflict"
        );
        let pay = ApiErrorBody::parse(
            br#"{"category":"VALIDATION_ERROR","subCategory":"PAYMENTS_NOT_SET_UP","message":"m"}"#,
        );
        assert_eq!(
            HubSpotError::from_status("x", 400, pay).category(),
            "payments_not_enabled"
        );
        let plain = ApiErrorBody::default();
        assert_eq!(
            HubSpotError::from_status("x", 400, plain.clone()).category(),
            "validation"
        );
        assert_eq!(
            HubSpotError::from_status("x", 401, plain.clone()).category(),
            "auth"
        );
        assert_eq!(
            HubSpotError::from_status("x", 403, plain.clone()).category(),
            "auth"
        );
        assert_eq!(
            HubSpotError::from_status("x", 404, plain.clone()).category(),
            "not_found"
        );
        assert_eq!(
            HubSpotError::from_status("x", 409, plain.clone()).category(),
            "conflict"
        );
        assert_eq!(
            HubSpotError::from_status("x", 418, plain).category(),
            "unexpected"
        );
    }
}

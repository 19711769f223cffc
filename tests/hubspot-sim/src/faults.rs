//! Fault injection rules set through the admin API (contract §9 "Fault injection", §8.10).

use crate::error::ApiError;
use crate::rng::SimRng;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Fail before the handler runs (500/502/503/504/423/477, 401/403 ...).
    Error { status: u16 },
    /// Delay the response.
    Latency { ms: u64 },
    /// contract §8.10: the write is committed, then the client gets a 5xx (after `delay_ms`,
    /// which can mimic a client-side timeout).
    CommitThenFail {
        status: u16,
        #[serde(default)]
        delay_ms: u64,
    },
    /// contract §2.6: the object is created but its inline associations are not. With `status`
    /// the client also gets that error; without, a normal 201.
    CreateWithoutAssociation {
        #[serde(default)]
        status: Option<u16>,
    },
    /// contract §8.5: batch writes are not atomic. A batch create/update/upsert (or association
    /// batch create) commits only its first `inputs` inputs, then the client gets `status` (after
    /// `delay_ms`), as when HubSpot fails part-way through a batch.
    PartialBatchCommit {
        inputs: usize,
        status: u16,
        #[serde(default)]
        delay_ms: u64,
    },
}

/// Set by the fault middleware on a batch write when a [`FaultKind::PartialBatchCommit`] fires:
/// the handler processes only this many inputs.
#[derive(Debug, Clone, Copy)]
pub struct PartialCommit(pub usize);

impl PartialCommit {
    /// The inputs a batch handler processes under the fault (all of them without it).
    pub fn truncate<T>(fault: Option<axum::Extension<PartialCommit>>, inputs: &mut Vec<T>) {
        if let Some(axum::Extension(PartialCommit(n))) = fault {
            inputs.truncate(n);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    #[serde(default)]
    pub id: u64,
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of the request path to match (any when absent).
    #[serde(default)]
    pub path_contains: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Chance to apply per matching request, from the seeded RNG.
    #[serde(default = "one")]
    pub probability: f64,
    /// How many more times to apply (unlimited when absent).
    #[serde(default)]
    pub times: Option<u32>,
}

fn one() -> f64 {
    1.0
}

/// A validation rule as a portal admin would configure (contract §1.1: from 2026-09 HubSpot
/// applies them to all API writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationRule {
    /// Plural object type name or type id.
    pub object_type: String,
    pub property_name: String,
    /// Values the rule rejects; when absent any non-empty value is rejected.
    #[serde(default)]
    pub rejected_values: Option<Vec<String>>,
    #[serde(default = "default_rule_message")]
    pub message: String,
}

fn default_rule_message() -> String {
    "The value does not satisfy this property's validation rules.".into()
}

#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub rules: Vec<FaultRule>,
    next_id: u64,
}

impl Faults {
    pub fn add(&mut self, mut rule: FaultRule) -> u64 {
        self.next_id += 1;
        rule.id = self.next_id;
        self.rules.push(rule);
        self.next_id
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Picks the matching rules of the wanted family that fire for this request, consuming
    /// their `times` budget.
    pub fn take(
        &mut self,
        rng: &mut SimRng,
        method: &str,
        path: &str,
        want: fn(&FaultKind) -> bool,
    ) -> Vec<FaultKind> {
        let mut fired = Vec::new();
        for rule in &mut self.rules {
            if !want(&rule.kind) {
                continue;
            }
            if rule
                .method
                .as_deref()
                .is_some_and(|m| !m.eq_ignore_ascii_case(method))
            {
                continue;
            }
            if rule
                .path_contains
                .as_deref()
                .is_some_and(|p| !path.contains(p))
            {
                continue;
            }
            if rule.times == Some(0) {
                continue;
            }
            if rule.probability < 1.0 && rng.next_f64() >= rule.probability {
                continue;
            }
            if let Some(t) = rule.times.as_mut() {
                *t -= 1;
            }
            fired.push(rule.kind.clone());
        }
        self.rules.retain(|r| r.times != Some(0));
        fired
    }
}

/// The body returned for an injected failure status (contract §4 table).
pub fn injected_error(status: u16) -> ApiError {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status {
        401 => ApiError::new(
            code,
            "EXPIRED_AUTHENTICATION",
            "The OAuth token used to make this call expired.",
        ),
        403 => ApiError::new(
            code,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
        )
        .error_detail(serde_json::json!({
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": ["crm.objects.subscriptions.write"]}
        }))
        .link("scopes", "https://developers.hubspot.com/scopes"),
        // contract §3: 423 with 2-s locks.
        423 => ApiError::new(
            code,
            "LOCKED",
            "The resource is locked because of a high volume of requests. Retry after 2 seconds.",
        ),
        // contract §4: 477 carries Retry-After in seconds.
        477 => ApiError::new(
            code,
            "MIGRATION_IN_PROGRESS",
            "Portal migration in progress.",
        )
        .header("retry-after", "10"),
        502 => ApiError::new(code, "BAD_GATEWAY", "Bad gateway."),
        503 => ApiError::new(code, "SERVICE_UNAVAILABLE", "Service unavailable."),
        504 => ApiError::new(code, "GATEWAY_TIMEOUT", "Gateway timeout."),
        _ => ApiError::new(code, "INTERNAL_ERROR", "internal error"),
    }
}

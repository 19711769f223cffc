//! One audit record and its canonical form.
//!
//! A record is one line of JSON with the fields in this fixed order:
//!
//! ```text
//! {"seq":1,"at":"2026-11-22T10:00:00.123Z","actor":"…","action":"…","object":"…",
//!  "reason":"…","details":{…},"prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! - `seq` counts from 1, one per line, so record N is line N.
//! - `prev` is the previous record's `hash` (64 zeros for the first record).
//! - `hash` = lowercase hex SHA-256 of the record's canonical form without `hash`: the same
//!   line with `,"hash":"…"` removed, i.e. compact JSON (no spaces) of the fields `seq` to
//!   `prev` in the order above, strings escaped as `serde_json` escapes them, and every object
//!   inside `details` with its keys sorted (byte order) at every depth.
//!
//! So a line is exactly `canonical[..len-1] + ",\"hash\":\"" + hash + "\"}"`, which any tool
//! can check with a JSON parser and SHA-256.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What to record: who did what to which object, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Who: a controller (`controller/tenant-subscription`), a user, a SubscriptionAction.
    pub actor: String,
    /// What: e.g. `subscription.transition`, `billing.ensure`, `billing.cancel`.
    pub action: String,
    /// Which object, e.g. `tenant-acme/route-optimization`.
    pub object: String,
    pub reason: String,
    /// Anything else (phases, HubSpot ids, outcome). Never secrets.
    pub details: Value,
}

impl AuditEntry {
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        object: impl Into<String>,
        reason: impl Into<String>,
        details: Value,
    ) -> Self {
        AuditEntry {
            actor: actor.into(),
            action: action.into(),
            object: object.into(),
            reason: reason.into(),
            details,
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub reason: String,
    pub details: Value,
    pub prev: String,
    pub hash: String,
}

/// The hashed part: the record without `hash`, in the same field order.
#[derive(Serialize)]
struct Unhashed<'a> {
    seq: u64,
    at: &'a str,
    actor: &'a str,
    action: &'a str,
    object: &'a str,
    reason: &'a str,
    details: &'a Value,
    prev: &'a str,
}

/// `details` with object keys sorted at every depth, whatever `serde_json`'s map order is
/// (the `preserve_order` feature may be on through another crate).
pub(crate) fn canonical_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical_value(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical_value).collect()),
        other => other.clone(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl AuditRecord {
    /// A new record linked to `prev`, with its hash computed.
    pub(crate) fn seal(seq: u64, at: String, entry: AuditEntry, prev: &str) -> AuditRecord {
        let mut r = AuditRecord {
            seq,
            at,
            actor: entry.actor,
            action: entry.action,
            object: entry.object,
            reason: entry.reason,
            details: canonical_value(&entry.details),
            prev: prev.to_string(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        r
    }

    /// The canonical serialization of everything but `hash`.
    pub fn canonical(&self) -> String {
        let details = canonical_value(&self.details);
        let u = Unhashed {
            seq: self.seq,
            at: &self.at,
            actor: &self.actor,
            action: &self.action,
            object: &self.object,
            reason: &self.reason,
            details: &details,
            prev: &self.prev,
        };
        // Serializing strings, integers and a Value into a String cannot fail.
        serde_json::to_string(&u).unwrap_or_default()
    }

    /// SHA-256 of [`AuditRecord::canonical`], lowercase hex.
    pub fn compute_hash(&self) -> String {
        hex(&Sha256::digest(self.canonical().as_bytes()))
    }

    /// The line as written (without the newline).
    pub fn to_line(&self) -> String {
        let mut line = self.canonical();
        line.pop(); // the closing brace
        line.push_str(",\"hash\":\"");
        line.push_str(&self.hash);
        line.push_str("\"}");
        line
    }
}

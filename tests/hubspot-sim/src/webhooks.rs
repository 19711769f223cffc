//! Webhook emitter (contract §5): batches of ≤100 events, v1 and v3 signatures, ms timestamps,
//! retries on any non-2xx or timeout, and injectable duplicates, reordering, delay and stale
//! timestamps.

use crate::config::WebhookSubscription;
use crate::model::ObjectType;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// contract §5.1 v1: `hex(SHA256(clientSecret + rawBody))`.
pub fn signature_v1(secret: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(secret.as_bytes());
    h.update(body);
    hex(&h.finalize())
}

/// contract §5.1 v2: `hex(SHA256(clientSecret + method + uri + rawBody))`.
pub fn signature_v2(secret: &str, method: &str, uri: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(secret.as_bytes());
    h.update(method.as_bytes());
    h.update(uri.as_bytes());
    h.update(body);
    hex(&h.finalize())
}

/// contract §5.1 v3: `base64(HMAC-SHA256(clientSecret, method + uri + rawBody + timestamp))`,
/// where the URI has exactly the listed percent-encodings decoded.
pub fn signature_v3(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: i64,
) -> String {
    let decoded = decode_uri_for_v3(uri);
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(method.as_bytes());
    mac.update(decoded.as_bytes());
    mac.update(body);
    mac.update(timestamp_ms.to_string().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// contract §5.1: decode exactly `%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B`
/// (case-insensitive hex), nothing else.
pub fn decode_uri_for_v3(uri: &str) -> String {
    const MAP: [(&str, char); 12] = [
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let code = rest.get(pos + 1..pos + 3).map(str::to_ascii_uppercase);
        match code.and_then(|c| MAP.iter().find(|(k, _)| *k == c).map(|(_, ch)| *ch)) {
            Some(ch) => {
                out.push(ch);
                rest = &rest[pos + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[pos + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Delivery faults (contract §9 "Injectable duplicates, reordering and delay").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WebhookFaults {
    /// Send every batch twice.
    pub duplicate: bool,
    /// Reverse the order of events inside each batch (a propertyChange can precede its creation).
    pub reorder: bool,
    /// Hold events this many real ms before the first attempt.
    pub delay_ms: u64,
    /// Sign with a timestamp 6 minutes old (contract §5.1: receivers reject > 5 minutes).
    pub stale_timestamp: bool,
}

#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub event: Value,
    pub attempt: u32,
    pub due: std::time::Instant,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub url: String,
    pub attempt: u32,
    pub event_count: usize,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub body: String,
    pub timestamp_ms: i64,
    pub signature_v1: String,
    pub signature_v3: String,
    pub gave_up: bool,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookState {
    pub url: Option<String>,
    pub subscriptions: Vec<WebhookSubscription>,
    pub next_event_id: u64,
    pub pending: VecDeque<PendingEvent>,
    pub deliveries: Vec<DeliveryRecord>,
    pub faults: WebhookFaults,
    /// contract §5.3 / §9: settings changes take effect after a propagation delay.
    pub pending_subscriptions: Option<(std::time::Instant, Vec<WebhookSubscription>)>,
}

/// Who made a change (contract §5.3: events also fire for our own writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSource {
    Integration,
    Billing,
    Admin,
}

impl ChangeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Integration => "INTEGRATION",
            ChangeSource::Billing => "BILLING",
            ChangeSource::Admin => "CRM_UI",
        }
    }

    /// The inverse of [`ChangeSource::as_str`].
    pub fn parse(s: &str) -> Option<ChangeSource> {
        [
            ChangeSource::Integration,
            ChangeSource::Billing,
            ChangeSource::Admin,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Creation,
    Deletion,
    PropertyChange,
}

fn legacy_prefix(t: ObjectType) -> Option<&'static str> {
    Some(match t {
        ObjectType::Contacts => "contact",
        ObjectType::Companies => "company",
        ObjectType::Deals => "deal",
        ObjectType::Products => "product",
        ObjectType::LineItems => "line_item",
        _ => return None,
    })
}

pub struct EventInput<'a> {
    pub kind: EventKind,
    pub object_type: ObjectType,
    pub object_id: u64,
    pub property: Option<(&'a str, &'a str)>,
    pub source: ChangeSource,
    pub occurred_at: i64,
    pub portal_id: u64,
    pub app_id: u64,
}

impl WebhookState {
    /// Queues one event per matching subscription (contract §5.2 payload fields).
    pub fn emit(&mut self, input: &EventInput<'_>) {
        if self.url.is_none() {
            return;
        }
        if self
            .pending_subscriptions
            .as_ref()
            .is_some_and(|(at, _)| *at <= std::time::Instant::now())
            && let Some((_, subs)) = self.pending_subscriptions.take()
        {
            self.subscriptions = subs;
        }
        let delay = std::time::Duration::from_millis(self.faults.delay_ms);
        let suffix = match input.kind {
            EventKind::Creation => "creation",
            EventKind::Deletion => "deletion",
            EventKind::PropertyChange => "propertyChange",
        };
        let subs = self.subscriptions.clone();
        for sub in subs {
            let generic = sub.subscription_type == format!("object.{suffix}")
                && sub.object_type_id == input.object_type.type_id();
            let legacy = legacy_prefix(input.object_type)
                .is_some_and(|p| sub.subscription_type == format!("{p}.{suffix}"));
            if !generic && !legacy {
                continue;
            }
            if input.kind == EventKind::PropertyChange
                && sub.property_name.as_deref() != input.property.map(|(n, _)| n)
            {
                continue;
            }
            self.next_event_id += 1;
            let mut ev = json!({
                "eventId": self.next_event_id,
                "subscriptionId": sub.id,
                "portalId": input.portal_id,
                "appId": input.app_id,
                "occurredAt": input.occurred_at,
                "subscriptionType": sub.subscription_type,
                "attemptNumber": 0,
                "objectId": input.object_id,
                "changeSource": input.source.as_str(),
                "sourceId": match input.source {
                    ChangeSource::Integration => input.app_id.to_string(),
                    ChangeSource::Billing => "billing".to_string(),
                    ChangeSource::Admin => "userId:1".to_string(),
                },
            });
            if let Value::Object(map) = &mut ev {
                if generic {
                    map.insert("objectTypeId".into(), json!(input.object_type.type_id()));
                    map.insert("isSensitive".into(), json!(false));
                }
                if let Some((name, value)) = input.property {
                    map.insert("propertyName".into(), json!(name));
                    map.insert("propertyValue".into(), json!(value));
                }
                if input.kind == EventKind::Creation {
                    map.insert("changeFlag".into(), json!("CREATED"));
                }
                if input.kind == EventKind::Deletion {
                    map.insert("changeFlag".into(), json!("DELETED"));
                }
            }
            self.pending.push_back(PendingEvent {
                event: ev,
                attempt: 0,
                due: std::time::Instant::now() + delay,
            });
        }
    }
}

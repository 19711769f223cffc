//! `POST /webhooks/hubspot`: HubSpot's webhook deliveries (contract §5).
//!
//! A request is verified (v3 signature over the public URL, 5-minute window, replay check),
//! parsed as a JSON array of events, de-duplicated, and each new event becomes a
//! [`WebhookHint`] for the controllers. Hints are only hints (contract §5.2, §5.3): the
//! receiving reconciler re-reads the object, and the periodic drift audit heals anything
//! missed, so the handler never blocks on a slow consumer; it answers 200 at once, because
//! HubSpot retries any non-2xx and any response slower than 5 seconds.

use crate::billing::{SignatureHeaders, WebhookVerifier};
use crate::server::metrics::Metrics;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::post;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The route HubSpot is configured to call.
pub const PATH: &str = "/webhooks/hubspot";
/// HubSpot sends ≤100 events per request (contract §5.3); 1 MiB is far above that.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Delivered events remembered for de-duplication. HubSpot retries over 24 hours, so this
/// catches the duplicates that arrive close together; a late one is a harmless extra hint.
pub const DEFAULT_DEDUPE_CAPACITY: usize = 10_000;

/// One HubSpot event, reduced to what a controller needs to know which object to re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHint {
    /// `eventId` ("not guaranteed to be unique", contract §5.2); empty when absent.
    pub event_id: String,
    /// e.g. `object.propertyChange`, `deal.propertyChange`, `object.creation`.
    pub subscription_type: String,
    /// e.g. `0-69` (generic `object.*` events only).
    pub object_type_id: Option<String>,
    pub object_id: String,
    pub property_name: Option<String>,
    /// May be stale by the time it arrives (contract §5.2): re-read the object.
    pub property_value: Option<String>,
    /// `occurredAt`, epoch ms (0 when absent); events are unordered, sequence by this.
    pub occurred_at_ms: i64,
}

/// Receives HubSpot webhooks. Cheap to clone: clones share the verifier and the dedupe memory.
#[derive(Debug, Clone)]
pub struct WebhookReceiver {
    verifier: Arc<WebhookVerifier>,
    /// The URL HubSpot calls, without a query. v3 signs the full URI, and behind an ingress
    /// the request's own Host (and maybe path) is not what HubSpot called.
    public_url: String,
    hints: mpsc::Sender<WebhookHint>,
    seen: Arc<Mutex<Seen>>,
}

impl WebhookReceiver {
    /// `public_url` is the target URL configured in HubSpot, e.g.
    /// `https://ops.example.com/webhooks/hubspot`; a query in it is ignored, as the request's
    /// own query is what HubSpot signed.
    pub fn new(
        verifier: Arc<WebhookVerifier>,
        public_url: impl Into<String>,
        hints: mpsc::Sender<WebhookHint>,
    ) -> Self {
        let mut public_url = public_url.into();
        if let Some(q) = public_url.find('?') {
            public_url.truncate(q);
        }
        WebhookReceiver {
            verifier,
            public_url,
            hints,
            seen: Arc::new(Mutex::new(Seen::new(DEFAULT_DEDUPE_CAPACITY))),
        }
    }

    /// The URI HubSpot signed for a request that arrived with `query`.
    pub fn signed_uri(&self, query: Option<&str>) -> String {
        match query {
            Some(q) => format!("{}?{q}", self.public_url),
            None => self.public_url.clone(),
        }
    }

    /// Forwards the events of a verified request; returns (accepted, duplicate, dropped).
    fn forward(&self, events: Vec<(Key, WebhookHint)>, metrics: &Metrics) -> (usize, usize, usize) {
        let (mut accepted, mut duplicate, mut dropped) = (0, 0, 0);
        // One lock for check + send + remember, so concurrent deliveries of the same event
        // forward it once.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (key, hint) in events {
            if seen.contains(&key) {
                duplicate += 1;
                metrics.webhook("duplicate");
                continue;
            }
            match self.hints.try_send(hint) {
                Ok(()) => {
                    seen.insert(key);
                    accepted += 1;
                    metrics.webhook("accepted");
                }
                // Not remembered: a redelivery of this event still gets a chance.
                Err(_) => {
                    dropped += 1;
                    metrics.webhook("dropped");
                }
            }
        }
        (accepted, duplicate, dropped)
    }
}

/// Fingerprint of an event for de-duplication.
type Key = [u8; 32];

/// Bounded memory of delivered events; the oldest is forgotten first.
#[derive(Debug)]
struct Seen {
    capacity: usize,
    order: VecDeque<Key>,
    set: HashSet<Key>,
}

impl Seen {
    fn new(capacity: usize) -> Self {
        Seen {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    fn contains(&self, key: &Key) -> bool {
        self.set.contains(key)
    }

    fn insert(&mut self, key: Key) {
        if !self.set.insert(key) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

#[derive(Clone)]
struct Ctx {
    receiver: WebhookReceiver,
    metrics: Arc<Metrics>,
}

pub(crate) fn routes(receiver: WebhookReceiver, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(PATH, post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Ctx { receiver, metrics })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn receive(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (StatusCode, String) {
    let metrics = &ctx.metrics;
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            metrics.webhook("too_large");
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {MAX_BODY_BYTES} bytes\n"),
            );
        }
        Err(rejection) => {
            metrics.webhook("bad_body");
            return (rejection.status(), "cannot read the body\n".into());
        }
    };
    let signed_uri = ctx.receiver.signed_uri(uri.query());
    let verified = ctx.receiver.verifier.verify(
        method.as_str(),
        &signed_uri,
        &body,
        SignatureHeaders::from_headers(&headers),
        now_ms(),
    );
    if let Err(e) = verified {
        metrics.webhook(e.category());
        // The category only: never the body, the signature or the secret.
        tracing::warn!(reason = e.category(), "HubSpot webhook refused");
        return (
            StatusCode::UNAUTHORIZED,
            format!("refused: {}\n", e.category()),
        );
    }
    let Ok(events) = serde_json::from_slice::<Vec<Value>>(&body) else {
        metrics.webhook("bad_body");
        tracing::warn!("HubSpot webhook body is not a JSON array of events");
        return (
            StatusCode::BAD_REQUEST,
            "body is not a JSON array of events\n".into(),
        );
    };
    let mut parsed = Vec::with_capacity(events.len());
    let mut unusable = 0;
    for event in &events {
        match event.as_object().and_then(hint_of) {
            Some(h) => parsed.push(h),
            None => {
                // Skipped, not refused: a retry of the same batch would fail the same way.
                unusable += 1;
                metrics.webhook("bad_body");
            }
        }
    }
    let (accepted, duplicate, dropped) = ctx.receiver.forward(parsed, metrics);
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "webhook hint channel full: hints dropped, the drift audit will catch up"
        );
    }
    (
        StatusCode::OK,
        format!(
            "accepted {accepted}, duplicate {duplicate}, dropped {dropped}, unusable {unusable}\n"
        ),
    )
}

/// An id HubSpot may send as a number or a string.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn millis(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15).then_some(f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// contract §5.2 fields; anything else is ignored. An event without an object id or a
/// subscription type names nothing to re-read.
fn hint_of(ev: &Map<String, Value>) -> Option<(Key, WebhookHint)> {
    let subscription_type = ev
        .get("subscriptionType")
        // The webhooks guide's table calls it `eventType`.
        .or_else(|| ev.get("eventType"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())?
        .to_string();
    let hint = WebhookHint {
        event_id: text(ev.get("eventId")).unwrap_or_default(),
        subscription_type,
        object_type_id: text(ev.get("objectTypeId")),
        object_id: text(ev.get("objectId"))?,
        property_name: text(ev.get("propertyName")),
        property_value: text(ev.get("propertyValue")),
        occurred_at_ms: millis(ev.get("occurredAt")).unwrap_or(0),
    };
    Some((dedupe_key(ev, &hint), hint))
}

/// contract §5.3: `eventId` alone is not a safe dedupe key (HubSpot does not guarantee it
/// unique), so an event is identified by what it says: portal, webhook subscription, object,
/// property, value and time. `attemptNumber` is left out, so retries match.
fn dedupe_key(ev: &Map<String, Value>, h: &WebhookHint) -> Key {
    let mut d = Sha256::new();
    let portal = text(ev.get("portalId"));
    let subscription = text(ev.get("subscriptionId"));
    let occurred = h.occurred_at_ms.to_string();
    for part in [
        portal.as_deref(),
        subscription.as_deref(),
        Some(h.subscription_type.as_str()),
        h.object_type_id.as_deref(),
        Some(h.object_id.as_str()),
        h.property_name.as_deref(),
        h.property_value.as_deref(),
        Some(occurred.as_str()),
    ] {
        // Length-prefixed, with absent distinct from empty, so fields cannot run together.
        match part {
            Some(p) => {
                d.update([1u8]);
                d.update((p.len() as u64).to_be_bytes());
                d.update(p.as_bytes());
            }
            None => d.update([0u8]),
        }
    }
    d.finalize().into()
}

#[cfg(test)]
mod tests;

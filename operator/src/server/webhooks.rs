//! `POST /webhooks/hubspot`: HubSpot's webhook deliveries (contract §5).
//!
//! A request is verified (v3 signature over the public URL, 5-minute window, replay check),
//! parsed as a JSON array of events, de-duplicated, and each new event becomes a
//! [`WebhookHint`]. Hints are only hints (contract §5.2, §5.3): whoever acts on one re-reads the
//! object. Every replica serves this route, leader or not, so the hints are handed to a
//! [`HintSink`] that records them durably in the cluster before the answer: 200 once recorded,
//! 503 when they could not be, so that HubSpot retries (it retries any non-2xx, and any
//! response slower than 5 seconds).

use crate::billing::{SignatureHeaders, WebhookVerifier};
use crate::server::metrics::Metrics;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::post;
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Where verified hints go before the endpoint answers. The operator's sink marks the
/// subscriptions they name in the cluster, so the leader acts on them whichever replica
/// received the webhook, and a leader that dies leaves them to the next one.
pub trait HintSink: Send + Sync + 'static {
    /// Records `hints` (all of them, or fails: a failure makes HubSpot deliver them again).
    fn record(&self, hints: Vec<WebhookHint>) -> BoxFuture<'_, Result<(), String>>;
}

/// Receives HubSpot webhooks. Cheap to clone: clones share the verifier, the sink and the
/// dedupe memory.
#[derive(Clone)]
pub struct WebhookReceiver {
    verifier: Arc<WebhookVerifier>,
    /// The URL HubSpot calls, without a query. v3 signs the full URI, and behind an ingress
    /// the request's own Host (and maybe path) is not what HubSpot called.
    public_url: String,
    sink: Arc<dyn HintSink>,
    seen: Arc<Mutex<Seen>>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    /// `public_url` is the target URL configured in HubSpot, e.g.
    /// `https://ops.example.com/webhooks/hubspot`; a query in it is ignored, as the request's
    /// own query is what HubSpot signed.
    pub fn new(
        verifier: Arc<WebhookVerifier>,
        public_url: impl Into<String>,
        sink: Arc<dyn HintSink>,
    ) -> Self {
        let mut public_url = public_url.into();
        if let Some(q) = public_url.find('?') {
            public_url.truncate(q);
        }
        WebhookReceiver {
            verifier,
            public_url,
            sink,
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

    /// Records the new events of a verified request; returns (accepted, duplicate), or the
    /// sink's error (nothing is remembered then, so HubSpot's redelivery is not a duplicate).
    async fn forward(
        &self,
        events: Vec<(Key, WebhookHint)>,
        metrics: &Metrics,
    ) -> Result<(usize, usize), String> {
        let mut fresh = Vec::with_capacity(events.len());
        let mut duplicate = 0;
        {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut in_request = HashSet::new();
            for (key, hint) in events {
                if seen.contains(&key) || !in_request.insert(key) {
                    duplicate += 1;
                    metrics.webhook("duplicate");
                } else {
                    fresh.push((key, hint));
                }
            }
        }
        if fresh.is_empty() {
            return Ok((0, duplicate));
        }
        // Two deliveries of one event at the same moment may both be recorded: harmless, the
        // record is a mark on the subscription, not a count.
        let hints = fresh.iter().map(|(_, h)| h.clone()).collect();
        if let Err(error) = self.sink.record(hints).await {
            for _ in &fresh {
                metrics.webhook("unrecorded");
            }
            return Err(error);
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (key, _) in &fresh {
            seen.insert(*key);
            metrics.webhook("accepted");
        }
        Ok((fresh.len(), duplicate))
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
    match ctx.receiver.forward(parsed, metrics).await {
        Ok((accepted, duplicate)) => (
            StatusCode::OK,
            format!("accepted {accepted}, duplicate {duplicate}, unusable {unusable}\n"),
        ),
        Err(error) => {
            tracing::warn!(%error, "webhook hints not recorded: answering 503 so HubSpot retries");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "could not record the events; deliver them again\n".into(),
            )
        }
    }
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

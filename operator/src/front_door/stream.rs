//! `GET /v1/tenants/{tenant}/entitlements/stream`: server-sent events of a tenant's entitlement
//! changes. The caller is checked first (401, 403 before any stream starts); then one task per
//! client sends what [`super::sse`] decides, plus heartbeat comments, into a bounded buffer the
//! response drains. A client that stops reading fills its buffer and is cut (it reconnects with
//! `Last-Event-ID`): it never holds up the caches, the index or another client.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use jiff::Timestamp;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::{Instant, MissedTickBehavior};

use super::live_index::{ChangeWaker, LiveIndex};
use super::routes::{FrontDoor, rest_refusal};
use super::sse::{self, StreamEvent};

/// How streams are paced and buffered.
#[derive(Clone, Copy, Debug)]
pub struct StreamSettings {
    /// A comment line this often, so proxies and clients see the connection is alive.
    pub heartbeat: Duration,
    /// Events queued for one client before it counts as not reading and is cut.
    pub client_buffer: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            heartbeat: Duration::from_secs(15),
            client_buffer: 64,
        }
    }
}

pub async fn entitlement_stream(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = door.auth.may_read(&headers, &tenant).await {
        return rest_refusal(refusal);
    }
    // Hard limits as of now, so the first event agrees with a check made at the same time.
    super::metering_routes::refresh_usage_limits(&door, &tenant).await;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok());
    let events = open(&door.index, &tenant, last_event_id, door.streams);
    // Tells nginx-style proxies not to hold events back in their buffers.
    ([("x-accel-buffering", "no")], Sse::new(events)).into_response()
}

/// Starts one client's stream of `tenant`; it ends when the client is cut or gone, or when
/// streams are closed.
pub fn open(
    index: &LiveIndex,
    tenant: &str,
    last_event_id: Option<&str>,
    settings: StreamSettings,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let waker = index.wake_on_change(tenant);
    let (first, cursor) = index.read(|current| {
        sse::opening(
            current,
            index.epoch(),
            tenant,
            last_event_id,
            settings.client_buffer,
            Timestamp::now(),
        )
    });
    let (out, mut queued) = mpsc::channel(settings.client_buffer.max(1));
    let client = Client {
        index: index.clone(),
        tenant: tenant.to_string(),
        out,
    };
    tokio::spawn(client.pump(waker, first, cursor, settings.heartbeat));
    futures::stream::poll_fn(move |cx| queued.poll_recv(cx).map(|event| event.map(Ok)))
}

struct Client {
    index: LiveIndex,
    tenant: String,
    out: mpsc::Sender<Event>,
}

impl Client {
    async fn pump(
        self,
        mut waker: ChangeWaker,
        first: Vec<StreamEvent>,
        mut cursor: u64,
        heartbeat: Duration,
    ) {
        if !first.into_iter().all(|event| self.offer(render(event))) {
            return;
        }
        let mut beats = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        beats.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                open = waker.changed() => {
                    if !open {
                        return;
                    }
                    let (events, next) = self.index.read(|current| {
                        sse::following(current, self.index.epoch(), &self.tenant, cursor, Timestamp::now())
                    });
                    cursor = next;
                    if !events.into_iter().all(|event| self.offer(render(event))) {
                        return;
                    }
                }
                _ = beats.tick() => {
                    if !self.offer(Event::default().comment("heartbeat")) {
                        return;
                    }
                }
                () = self.out.closed() => return,
            }
        }
    }

    /// Queues `event`; `false` when the client is gone or, its buffer full, cut.
    fn offer(&self, event: Event) -> bool {
        match self.out.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::info!(tenant = %self.tenant, "entitlement stream cut: the client is not reading");
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

fn render(event: StreamEvent) -> Event {
    Event::default()
        .id(event.id.to_string())
        .event(event.name)
        .data(event.data.to_string())
}

#[cfg(test)]
mod tests;

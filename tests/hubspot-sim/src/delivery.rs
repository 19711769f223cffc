//! Webhook delivery loop (contract §5.3): batches ≤100 events, signs them (v1 + v3), retries any
//! non-2xx or timeout with growing, jittered spacing up to the retry limit.

use crate::clock::wall_ms;
use crate::state::{Sim, lock};
use crate::webhooks::{DeliveryRecord, PendingEvent, signature_v1, signature_v3};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// contract §5.1: receivers reject timestamps older than 5 minutes; the stale fault uses 6.
const STALE_BY_MS: i64 = 6 * 60 * 1000;

struct Batch {
    url: String,
    secret: String,
    events: Vec<PendingEvent>,
    duplicate: bool,
    stale: bool,
    timeout: Duration,
}

fn take_batch(sim: &Sim) -> Option<Batch> {
    let mut st = lock(sim);
    let url = st.webhooks.url.clone()?;
    let now = Instant::now();
    let max = st.config.webhook_max_batch.max(1);
    let mut events = Vec::new();
    let mut keep = std::collections::VecDeque::new();
    while let Some(ev) = st.webhooks.pending.pop_front() {
        if ev.due <= now && events.len() < max {
            events.push(ev);
        } else {
            keep.push_back(ev);
        }
    }
    st.webhooks.pending = keep;
    if events.is_empty() {
        return None;
    }
    if st.webhooks.faults.reorder {
        events.reverse();
    }
    Some(Batch {
        url,
        secret: st.config.client_secret.clone(),
        duplicate: st.webhooks.faults.duplicate,
        stale: st.webhooks.faults.stale_timestamp,
        timeout: Duration::from_millis(st.config.webhook_timeout_ms),
        events,
    })
}

async fn send_once(client: &reqwest::Client, b: &Batch, body: &[u8]) -> (DeliveryRecord, bool) {
    let mut ts = wall_ms();
    if b.stale {
        ts -= STALE_BY_MS;
    }
    let v1 = signature_v1(&b.secret, body);
    let v3 = signature_v3(&b.secret, "POST", &b.url, body, ts);
    let res = client
        .post(&b.url)
        .timeout(b.timeout)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon-executor",
        )
        .header("x-hubspot-signature", &v1)
        .header("x-hubspot-signature-version", "v1")
        .header("x-hubspot-signature-v3", &v3)
        .header("x-hubspot-request-timestamp", ts.to_string())
        .body(body.to_vec())
        .send()
        .await;
    let (status, error, ok) = match res {
        Ok(r) => {
            let s = r.status();
            (Some(s.as_u16()), None, s.is_success())
        }
        Err(e) => (None, Some(e.to_string()), false),
    };
    let attempt = b.events.first().map(|e| e.attempt).unwrap_or_default();
    (
        DeliveryRecord {
            url: b.url.clone(),
            attempt,
            event_count: b.events.len(),
            status,
            error,
            body: String::from_utf8_lossy(body).into_owned(),
            timestamp_ms: ts,
            signature_v1: v1,
            signature_v3: v3,
            gave_up: false,
        },
        ok,
    )
}

async fn deliver(sim: &Sim, client: &reqwest::Client, b: Batch) {
    let payload: Vec<Value> = b
        .events
        .iter()
        .map(|e| {
            let mut ev = e.event.clone();
            if let Value::Object(m) = &mut ev {
                m.insert("attemptNumber".into(), json!(e.attempt));
            }
            ev
        })
        .collect();
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    let (rec, ok) = send_once(client, &b, &body).await;
    let mut records = vec![rec];
    if b.duplicate {
        // contract §5.3: at-least-once; the duplicate fault sends the same batch again.
        let (rec2, _) = send_once(client, &b, &body).await;
        records.push(rec2);
    }
    let mut st = lock(sim);
    if !ok {
        let max = st.config.webhook_max_retries;
        let base = st.config.webhook_retry_base_ms;
        let mut gave_up = false;
        // One jitter per failed batch, so a retried batch travels together.
        let jitter = st.rng.next_u64() % (base / 4 + 1);
        for mut ev in b.events {
            ev.attempt += 1;
            if ev.attempt > max {
                gave_up = true;
                continue;
            }
            // Spacing doubles per attempt ("10 retries over 24 h", compressed), with jitter.
            let shift = ev.attempt.saturating_sub(1).min(16);
            let wait = base.saturating_mul(1u64 << shift).saturating_add(jitter);
            ev.due = Instant::now() + Duration::from_millis(wait);
            st.webhooks.pending.push_back(ev);
        }
        if let Some(r) = records.first_mut() {
            r.gave_up = gave_up;
        }
    }
    st.webhooks.deliveries.extend(records);
}

/// Runs until `shutdown` flips. Batches go out concurrently, at most
/// `webhook_max_concurrency` at a time, so their order is not guaranteed (contract §5.3).
pub async fn run(sim: Sim, mut shutdown: watch::Receiver<bool>) {
    let client = reqwest::Client::new();
    let permits = lock(&sim).config.webhook_max_concurrency.max(1);
    let sem = Arc::new(Semaphore::new(permits));
    loop {
        let tick = Duration::from_millis(lock(&sim).config.webhook_tick_ms.max(1));
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        if *shutdown.borrow() {
            return;
        }
        loop {
            let Ok(permit) = sem.clone().acquire_owned().await else {
                return;
            };
            let Some(batch) = take_batch(&sim) else {
                break;
            };
            let (sim, client) = (sim.clone(), client.clone());
            tokio::spawn(async move {
                deliver(&sim, &client, batch).await;
                drop(permit);
            });
        }
    }
}

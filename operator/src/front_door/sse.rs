//! What the entitlement change stream (`GET /v1/tenants/{t}/entitlements/stream`) sends, as pure
//! functions of the tenant index (grants, and hard limits reached this period), the client's
//! `Last-Event-ID` and the time: event ids, where a
//! (re)connecting client starts, and each event's name and data. The handler
//! ([`super::stream`]) only wires these to the connection.

use std::fmt;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::decide::{check_view, usage_limited};
use super::tenant_index::{FeatureChange, TenantIndex};

/// The name of the event that carries every feature the tenant has.
pub const SNAPSHOT: &str = "snapshot";
/// The name of the event that carries one feature whose check changed.
pub const ENTITLEMENT: &str = "entitlement";

/// An event id: the index it came from (one per server process, so an id from another replica
/// or from before a restart is recognised as foreign) and its change number. Written
/// `{epoch:x}-{seq}`; within one process the numbers only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    pub epoch: u64,
    pub seq: u64,
}

impl EventId {
    pub fn parse(text: &str) -> Option<EventId> {
        let (epoch, seq) = text.trim().split_once('-')?;
        Some(EventId {
            epoch: u64::from_str_radix(epoch, 16).ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.epoch, self.seq)
    }
}

/// One event as the stream writes it: `id:`, `event:` and JSON `data:`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub id: EventId,
    pub name: &'static str,
    pub data: Value,
}

/// Can a client that has seen changes through `seq` be told exactly what it missed?
fn resumable(index: &TenantIndex, seq: u64) -> bool {
    seq >= index.forgotten_through() && seq <= index.seq()
}

/// Every feature the tenant has, as the single-feature check answers it.
fn snapshot(index: &TenantIndex, epoch: u64, tenant: &str, now: Timestamp) -> StreamEvent {
    let checks: Vec<Value> = index
        .features(tenant)
        .iter()
        .map(|view| {
            let limited = index.usage_limited(tenant, &view.feature);
            json!(usage_limited(
                check_view(&view.feature, Some(view), now),
                limited
            ))
        })
        .collect();
    StreamEvent {
        id: EventId {
            epoch,
            seq: index.seq(),
        },
        name: SNAPSHOT,
        data: json!({ "entitlements": checks }),
    }
}

fn change_events(epoch: u64, changes: &[FeatureChange], now: Timestamp) -> Vec<StreamEvent> {
    changes
        .iter()
        .map(|change| StreamEvent {
            id: EventId {
                epoch,
                seq: change.seq,
            },
            name: ENTITLEMENT,
            data: json!(usage_limited(
                check_view(&change.feature, change.view.as_ref(), now),
                change.usage_limited
            )),
        })
        .collect()
}

/// What a (re)connecting client is sent first, and the change number it has then seen
/// through. With a `Last-Event-ID` this process can still answer exactly, the features that
/// changed since (at most `max_events` of them, else a snapshot is shorter); otherwise a
/// snapshot.
pub fn opening(
    index: &TenantIndex,
    epoch: u64,
    tenant: &str,
    last_event_id: Option<&str>,
    max_events: usize,
    now: Timestamp,
) -> (Vec<StreamEvent>, u64) {
    let resumed = last_event_id
        .and_then(EventId::parse)
        .filter(|id| id.epoch == epoch && resumable(index, id.seq));
    if let Some(id) = resumed {
        let changes = index.changes_since(tenant, id.seq);
        if changes.len() <= max_events {
            return (change_events(epoch, &changes, now), index.seq());
        }
    }
    (vec![snapshot(index, epoch, tenant, now)], index.seq())
}

/// What a connected client that has seen changes through `cursor` is sent now, and its new
/// cursor: the features that changed since, or a snapshot if those were forgotten meanwhile.
pub fn following(
    index: &TenantIndex,
    epoch: u64,
    tenant: &str,
    cursor: u64,
    now: Timestamp,
) -> (Vec<StreamEvent>, u64) {
    let events = if resumable(index, cursor) {
        change_events(epoch, &index.changes_since(tenant, cursor), now)
    } else {
        vec![snapshot(index, epoch, tenant, now)]
    };
    (events, index.seq())
}

#[cfg(test)]
mod tests;

//! A portal that outlives the process (`SimConfig::state_file`). HubSpot keeps its records,
//! their ids, associations and custom properties whatever happens to its clients, so a local
//! environment restarted against the same simulator must find them again: new ids keep counting
//! up from where they stopped and webhook `eventId`s are never reused.
//!
//! Kept: records (archived too) with their property history, custom and edited property
//! definitions, association edges, the simulated clock (it keeps running while the simulator is
//! stopped, unless frozen), id and event-id counters, the RNG position, billing retries and
//! failing payers, rate-limit windows, request counters, portal validation rules, the app's
//! webhook subscriptions and undelivered webhook events. Forgotten: injected faults, webhook
//! delivery faults and the delivery log (test instruments, not portal data). The webhook target
//! and everything else in [`SimConfig`] come from the configuration of the current run.

use crate::billing::BillingState;
use crate::clock::{SimClock, wall_ms};
use crate::config::{SimConfig, WebhookSubscription};
use crate::error::SimError;
use crate::faults::ValidationRule;
use crate::model::{CrmObject, ObjectType};
use crate::properties::PropertyDef;
use crate::ratelimit::{Counters, RateLimiter};
use crate::rng::SimRng;
use crate::state::{Sim, SimState, lock};
use crate::webhooks::{ChangeSource, PendingEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The state file's format; a file of another format is refused rather than half-read.
pub const FORMAT: u32 = 1;

/// Everything kept, as written to the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub format: u32,
    /// Wall-clock time of the save, epoch ms.
    pub saved_at_unix_ms: i64,
    /// The simulated clock at the save, epoch ms.
    pub clock_ms: i64,
    pub portal: Portal,
}

/// The portal's data: what a save is made for (the clocks alone moving is no reason to save).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Portal {
    pub next_id: u64,
    pub rng_position: u64,
    pub objects: Vec<CrmObject>,
    pub history: Vec<StoredHistory>,
    pub properties: Vec<StoredProperty>,
    pub associations: Vec<StoredEdge>,
    pub billing: BillingState,
    pub rate_limits: RateLimiter,
    pub counters: Counters,
    pub validation_rules: Vec<ValidationRule>,
    pub webhook_subscriptions: Vec<WebhookSubscription>,
    pub next_event_id: u64,
    pub pending_webhook_events: Vec<StoredEvent>,
}

/// One property's history, newest first (as `propertiesWithHistory` lists it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredHistory {
    pub object_type: ObjectType,
    pub id: u64,
    pub property: String,
    /// (value, timestamp ms, source type).
    pub entries: Vec<(String, i64, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredProperty {
    pub object_type: ObjectType,
    pub definition: PropertyDef,
}

/// One direction of an association pair with its type ids (the reverse is stored too).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEdge {
    pub from_type: ObjectType,
    pub from_id: u64,
    pub to_type: ObjectType,
    pub to_id: u64,
    pub type_ids: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    pub event: Value,
    pub attempt: u32,
}

impl Portal {
    pub fn of(st: &SimState) -> Portal {
        let webhook_subscriptions = match &st.webhooks.pending_subscriptions {
            // A settings change still propagating has certainly arrived by the next start.
            Some((_, subs)) => subs.clone(),
            None => st.webhooks.subscriptions.clone(),
        };
        Portal {
            next_id: st.next_id,
            rng_position: st.rng.position(),
            objects: st
                .objects
                .values()
                .flat_map(|m| m.values())
                .cloned()
                .collect(),
            history: st
                .history
                .iter()
                .map(|((t, id, name), entries)| StoredHistory {
                    object_type: *t,
                    id: *id,
                    property: name.clone(),
                    entries: entries
                        .iter()
                        .map(|(v, ts, src)| (v.clone(), *ts, (*src).to_string()))
                        .collect(),
                })
                .collect(),
            properties: st
                .registry
                .by_type
                .iter()
                .flat_map(|(t, defs)| {
                    defs.values().map(|d| StoredProperty {
                        object_type: *t,
                        definition: d.clone(),
                    })
                })
                .collect(),
            associations: st
                .assoc
                .edges
                .iter()
                .map(|((ft, fid, tt, tid), types)| StoredEdge {
                    from_type: *ft,
                    from_id: *fid,
                    to_type: *tt,
                    to_id: *tid,
                    type_ids: types.iter().copied().collect(),
                })
                .collect(),
            billing: st.billing.clone(),
            rate_limits: st.rate.clone(),
            counters: st.counters.clone(),
            validation_rules: st.validation_rules.clone(),
            webhook_subscriptions,
            next_event_id: st.webhooks.next_event_id,
            pending_webhook_events: st
                .webhooks
                .pending
                .iter()
                .map(|e| StoredEvent {
                    event: e.event.clone(),
                    attempt: e.attempt,
                })
                .collect(),
        }
    }
}

impl Snapshot {
    pub fn of(st: &SimState, saved_at_unix_ms: i64) -> Snapshot {
        Snapshot {
            format: FORMAT,
            saved_at_unix_ms,
            clock_ms: st.now(),
            portal: Portal::of(st),
        }
    }

    /// The state this snapshot describes, under `config` (which wins for everything that is
    /// configuration), at wall-clock `now_unix_ms`.
    pub fn restore(self, config: SimConfig, now_unix_ms: i64) -> Result<SimState, String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} is not the format {FORMAT} this simulator reads",
                self.format
            ));
        }
        let p = self.portal;
        let mut st = SimState::new(config);
        // HubSpot's time does not stop while the simulator does; a frozen clock stays put.
        let stopped_for = if st.config.clock_frozen {
            0
        } else {
            (now_unix_ms - self.saved_at_unix_ms).max(0)
        };
        st.clock = SimClock::new(self.clock_ms + stopped_for, st.config.clock_frozen);
        st.rng = SimRng::new(p.rng_position);
        let highest_id = p.objects.iter().map(|o| o.id).max().unwrap_or(0);
        st.next_id = p.next_id.max(highest_id);
        for obj in p.objects {
            // Written long enough ago to be searchable, as they were before the stop.
            st.search.record(&obj, obj.updated_at);
            st.objects
                .entry(obj.object_type)
                .or_default()
                .insert(obj.id, obj);
        }
        for h in p.history {
            let mut entries = Vec::with_capacity(h.entries.len());
            for (value, ts, source) in h.entries {
                let Some(source) = ChangeSource::parse(&source) else {
                    return Err(format!(
                        "history of {} {} property {}: unknown source type {source:?}",
                        h.object_type.singular(),
                        h.id,
                        h.property
                    ));
                };
                entries.push((value, ts, source.as_str()));
            }
            st.history
                .insert((h.object_type, h.id, h.property), entries);
        }
        // Over the fresh registry, so standard properties this version adds are there too.
        for p in p.properties {
            st.registry
                .by_type
                .entry(p.object_type)
                .or_default()
                .insert(p.definition.name.clone(), p.definition);
        }
        for e in p.associations {
            st.assoc.edges.insert(
                (e.from_type, e.from_id, e.to_type, e.to_id),
                e.type_ids.into_iter().collect(),
            );
        }
        st.billing = BillingState {
            payments_enabled: st.billing.payments_enabled,
            ..p.billing
        };
        st.rate = p.rate_limits;
        st.counters = p.counters;
        st.validation_rules = p.validation_rules;
        st.webhooks.subscriptions = p.webhook_subscriptions;
        st.webhooks.next_event_id = p.next_event_id;
        let now = Instant::now();
        st.webhooks.pending = p
            .pending_webhook_events
            .into_iter()
            .map(|e| PendingEvent {
                event: e.event,
                attempt: e.attempt,
                due: now,
            })
            .collect();
        Ok(st)
    }
}

fn state_error(path: &Path, reason: impl std::fmt::Display) -> SimError {
    SimError::State {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The state saved at `path`, or a fresh one when there is no file yet.
pub fn load(config: SimConfig, path: &Path) -> Result<SimState, SimError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SimState::new(config)),
        Err(e) => return Err(state_error(path, e)),
    };
    let snapshot: Snapshot = serde_json::from_slice(&bytes).map_err(|e| state_error(path, e))?;
    snapshot
        .restore(config, wall_ms())
        .map_err(|e| state_error(path, e))
}

/// Writes `bytes` to `path` so that a reader (or a crash) sees the old file or the new one,
/// never a part: a temporary file beside it, flushed, then renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// What the last save wrote, to tell whether there is anything new to save.
#[derive(Default)]
struct LastSave {
    portal: Vec<u8>,
    /// (simulated clock, wall clock) at the save.
    clocks: Option<(i64, i64)>,
}

impl LastSave {
    /// A save is due when the portal changed or the simulated clock was moved apart from
    /// the wall clock (advanced, or moved at all when frozen) by more than a second.
    fn due(&self, portal: &[u8], clock_ms: i64, wall_ms: i64, frozen: bool) -> bool {
        let Some((last_clock, last_wall)) = self.clocks else {
            return true;
        };
        let clock_moved = if frozen {
            clock_ms != last_clock
        } else {
            ((clock_ms - wall_ms) - (last_clock - last_wall)).abs() > 1000
        };
        portal != self.portal.as_slice() || clock_moved
    }
}

/// Saves the state to `path` every `interval` when it changed, and once more when `shutdown`
/// turns true. A failed save is logged and tried again at the next tick.
pub async fn run(sim: Sim, path: PathBuf, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut last = LastSave::default();
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = shutdown.wait_for(|v| *v) => true,
        };
        if let Err(error) = save_if_due(&sim, &path, &mut last).await {
            tracing::warn!(%error, path = %path.display(), "cannot save the simulator state");
        }
        if stopping {
            return;
        }
    }
}

async fn save_if_due(sim: &Sim, path: &Path, last: &mut LastSave) -> std::io::Result<()> {
    let (snapshot, frozen) = {
        let st = lock(sim);
        (Snapshot::of(&st, wall_ms()), st.clock.is_frozen())
    };
    let portal = serde_json::to_vec(&snapshot.portal).map_err(std::io::Error::other)?;
    let clocks = (snapshot.clock_ms, snapshot.saved_at_unix_ms);
    if !last.due(&portal, clocks.0, clocks.1, frozen) {
        return Ok(());
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let bytes = serde_json::to_vec(&snapshot).map_err(std::io::Error::other)?;
        write_atomically(&path, &bytes)
    })
    .await
    .map_err(std::io::Error::other)??;
    *last = LastSave {
        portal,
        clocks: Some(clocks),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_is_due_for_new_data_or_a_moved_clock_only() {
        let last = LastSave {
            portal: b"p".to_vec(),
            clocks: Some((1_000_000, 5_000_000)),
        };
        // The running clock following the wall clock is no change.
        assert!(!last.due(b"p", 1_060_000, 5_060_000, false));
        assert!(last.due(b"q", 1_060_000, 5_060_000, false));
        // Advanced through the admin API.
        assert!(last.due(b"p", 1_060_000 + 86_400_000, 5_060_000, false));
        // A frozen clock moves only when advanced.
        assert!(!last.due(b"p", 1_000_000, 5_060_000, true));
        assert!(last.due(b"p", 1_000_001, 5_060_000, true));
        assert!(LastSave::default().due(b"p", 0, 0, false));
    }

    #[test]
    fn a_restored_clock_counts_the_time_stopped_unless_frozen() {
        let snapshot = Snapshot::of(
            &SimState::new(SimConfig {
                clock_start_ms: 1_000_000,
                clock_frozen: true,
                ..SimConfig::default()
            }),
            5_000_000,
        );
        let running = snapshot
            .clone()
            .restore(SimConfig::default(), 5_060_000)
            .expect("restore");
        assert!(running.now() >= 1_060_000);
        let frozen = snapshot
            .clone()
            .restore(
                SimConfig {
                    clock_frozen: true,
                    ..SimConfig::default()
                },
                5_060_000,
            )
            .expect("restore");
        assert_eq!(frozen.now(), 1_000_000);
        let other = Snapshot {
            format: FORMAT + 1,
            ..snapshot
        };
        let err = other
            .restore(SimConfig::default(), 0)
            .err()
            .expect("refused");
        assert!(err.contains("format 2"), "{err}");
    }
}

//! Publishes the controllers' Kubernetes Events (`events.k8s.io/v1`), aggregating repeats.
//!
//! An Event repeated within [`SERIES_WINDOW`] (same object, type, reason, action and note: a
//! retried refusal, say) patches the first one's `series` instead of creating another, as
//! client-go and kube's `Recorder` do. kube's `Recorder` keeps every Event it published for six
//! minutes, whole, and scans them all on each publish: at the scale run's activation rate that
//! was tens of thousands of Events held and scanned per publish. Here only a fingerprint of each
//! recent Event and where to patch it are kept, at most [`MAX_REMEMBERED`] of them, swept in
//! time order. What to do is decided by [`plan`], a pure function of what was remembered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};

/// How long a repeat still joins the first Event's series (kube's and client-go's six minutes).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// Recent Events remembered for aggregation; past it the oldest are forgotten (a later repeat of
/// one of those then creates a new Event: nothing is lost, only aggregated less).
pub const MAX_REMEMBERED: usize = 4096;

/// Who reports the Events: `reportingController` and `reportingInstance`.
#[derive(Clone, Debug)]
pub struct Reporter {
    pub controller: String,
    pub instance: Option<String>,
}

/// A published Event, as far as a repeat needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remembered {
    pub namespace: String,
    pub name: String,
    /// Occurrences so far (1 for an Event without a series).
    pub count: i32,
    /// When it last occurred.
    pub last: Timestamp,
}

/// What publishing an Event takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Publication {
    /// A new Event object.
    Create,
    /// The remembered Event occurred again: its series becomes `count`, observed now.
    Repeat {
        namespace: String,
        name: String,
        count: i32,
    },
}

/// Decides how to publish an Event given what is remembered of the same one: a repeat within
/// the window patches its series, anything else is a new Event.
pub fn plan(remembered: Option<&Remembered>, now: Timestamp, window: Duration) -> Publication {
    match remembered {
        Some(seen) if now.duration_since(seen.last).unsigned_abs() < window => {
            Publication::Repeat {
                namespace: seen.namespace.clone(),
                name: seen.name.clone(),
                count: seen.count.saturating_add(1),
            }
        }
        _ => Publication::Create,
    }
}

/// Recent Events by fingerprint, with their fingerprints in the order remembered (for sweeping
/// the oldest first without scanning all).
#[derive(Debug, Default)]
pub struct RecentEvents {
    /// Each Event with the number of its latest entry in `order`.
    by_fingerprint: HashMap<u64, (Remembered, u64)>,
    /// (entry number, fingerprint, when); an entry is stale once its Event is remembered again.
    order: VecDeque<(u64, u64, Timestamp)>,
    entries: u64,
}

impl RecentEvents {
    pub fn get(&self, fingerprint: u64) -> Option<&Remembered> {
        self.by_fingerprint.get(&fingerprint).map(|(seen, _)| seen)
    }

    /// Remembers `event` as last occurring at `event.last`, forgetting what is past `window`
    /// and, past `limit`, the oldest.
    pub fn remember(
        &mut self,
        fingerprint: u64,
        event: Remembered,
        window: Duration,
        limit: usize,
    ) {
        let at = event.last;
        self.entries += 1;
        self.by_fingerprint
            .insert(fingerprint, (event, self.entries));
        self.order.push_back((self.entries, fingerprint, at));
        while let Some(&(entry, oldest, when)) = self.order.front() {
            let expired = at.duration_since(when).unsigned_abs() >= window;
            if !expired && self.by_fingerprint.len() <= limit && self.order.len() <= 2 * limit {
                break;
            }
            self.order.pop_front();
            if self
                .by_fingerprint
                .get(&oldest)
                .is_some_and(|(_, latest)| *latest == entry)
            {
                self.by_fingerprint.remove(&oldest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }
}

/// What identifies "the same Event": the object (by uid when it has one) and what is said.
pub fn fingerprint(event: &Event, regarding: &ObjectReference) -> u64 {
    super::fingerprint(&(
        &regarding.uid,
        &regarding.kind,
        &regarding.namespace,
        &regarding.name,
        matches!(event.type_, EventType::Warning),
        &event.reason,
        &event.action,
        &event.note,
    ))
}

/// Publishes Events for the controllers; clones share what they remember.
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    recent: Arc<Mutex<RecentEvents>>,
}

impl EventRecorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventRecorder {
            client,
            reporter,
            recent: Arc::default(),
        }
    }

    /// Publishes `event` about `regarding`: a new Event, or a repeat joined to its series.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = fingerprint(event, regarding);
        let decided = plan(self.recent().get(key), now, SERIES_WINDOW);
        let remembered = match decided {
            Publication::Repeat {
                namespace,
                name,
                count,
            } => {
                let series = serde_json::json!({
                    "series": EventSeries { count, last_observed_time: MicroTime(now) }
                });
                let patched = Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                    .await;
                match patched {
                    Ok(_) => Remembered {
                        namespace,
                        name,
                        count,
                        last: now,
                    },
                    // The first one is gone (the apiserver keeps Events an hour; an admin may
                    // delete them): a new Event says it again rather than nothing.
                    Err(kube::Error::Api(status)) if status.is_not_found() => {
                        self.create(event, regarding, now).await?
                    }
                    Err(error) => return Err(error),
                }
            }
            Publication::Create => self.create(event, regarding, now).await?,
        };
        self.recent()
            .remember(key, remembered, SERIES_WINDOW, MAX_REMEMBERED);
        Ok(())
    }

    /// Creates a new Event; what a repeat of it will patch.
    async fn create(
        &self,
        event: &Event,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> Result<Remembered, kube::Error> {
        let new = self.new_event(event, regarding, now);
        let namespace = new.metadata.namespace.clone().unwrap_or_default();
        let created = Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &new)
            .await?;
        Ok(Remembered {
            namespace,
            name: created.metadata.name.unwrap_or_default(),
            count: 1,
            last: now,
        })
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, RecentEvents> {
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new Event object; cluster-scoped objects' Events go to `default`, as kube's do.
    fn new_event(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let controller = self.reporter.controller.clone();
        K8sEvent {
            metadata: ObjectMeta {
                namespace: Some(
                    regarding
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".to_owned()),
                ),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            reporting_controller: Some(controller),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            ..K8sEvent::default()
        }
    }
}

#[cfg(test)]
mod tests;

//! The notification outbox as the scrape sees it: records by delivery phase and the age of the
//! oldest one not yet delivered, read from the outbox cache at every scrape (so they are the
//! same on every replica, and right after a restart).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use crate::api::Notification;
use crate::api::notification::DeliveryPhase;

/// The outbox gauges: always described (the alert rule reads them), sampled once the process
/// sends notifications.
pub const OUTBOX_METRICS: &[&str] = &[
    "marketplace_notification_outbox",
    "marketplace_notification_oldest_pending_seconds",
];

/// The delivery phases, as `marketplace_notification_outbox{phase}` labels.
pub const OUTBOX_PHASES: &[&str] = &["Pending", "Sent", "DeadLetter"];

/// What the outbox holds now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutboxTally {
    /// Records by phase (every phase present, 0 when none).
    pub by_phase: BTreeMap<&'static str, u64>,
    /// Seconds since the oldest Pending record was written; 0 when none is pending.
    pub oldest_pending_seconds: f64,
}

fn phase_label(phase: DeliveryPhase) -> &'static str {
    match phase {
        DeliveryPhase::Pending => "Pending",
        DeliveryPhase::Sent => "Sent",
        DeliveryPhase::DeadLetter => "DeadLetter",
    }
}

/// The tally of `records` at `now`.
pub fn tally(records: &[Arc<Notification>], now: Timestamp) -> OutboxTally {
    let mut out = OutboxTally {
        by_phase: OUTBOX_PHASES.iter().map(|p| (*p, 0)).collect(),
        oldest_pending_seconds: 0.0,
    };
    for record in records {
        let phase = record
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or_default();
        *out.by_phase.entry(phase_label(phase)).or_default() += 1;
        if phase == DeliveryPhase::Pending {
            // When it was written; the event's time for a record not yet read back.
            let written = record
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(record.spec.occurred_at.0, |t| t.0);
            let age = now.duration_since(written).as_secs_f64().max(0.0);
            out.oldest_pending_seconds = out.oldest_pending_seconds.max(age);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::notification::NotificationStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn record(phase: Option<DeliveryPhase>, created: &str) -> Arc<Notification> {
        let mut r: Notification = serde_json::from_value(serde_json::json!({
            "apiVersion": "marketplace.dev/v1alpha1", "kind": "Notification",
            "metadata": {"name": "n", "namespace": "m"},
            "spec": {"eventId": "e", "event": "Activated", "audience": "Tenants",
                "channel": "c", "occurredAt": "2026-01-01T00:00:00Z", "subject": "s", "text": "t"},
        }))
        .unwrap();
        r.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
        r.status = phase.map(|p| NotificationStatus {
            phase: Some(p),
            ..NotificationStatus::default()
        });
        Arc::new(r)
    }

    #[test]
    fn the_outbox_is_counted_by_phase_with_the_oldest_pending_age() {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let empty = tally(&[], now);
        assert_eq!(empty.by_phase.values().sum::<u64>(), 0);
        assert_eq!(empty.by_phase.len(), 3);
        assert_eq!(empty.oldest_pending_seconds, 0.0);
        let t = tally(
            &[
                record(None, "2026-01-01T00:50:00Z"),
                record(Some(DeliveryPhase::Pending), "2026-01-01T00:30:00Z"),
                record(Some(DeliveryPhase::Sent), "2026-01-01T00:00:00Z"),
                record(Some(DeliveryPhase::DeadLetter), "2026-01-01T00:00:00Z"),
            ],
            now,
        );
        assert_eq!(t.by_phase["Pending"], 2);
        assert_eq!(t.by_phase["Sent"], 1);
        assert_eq!(t.by_phase["DeadLetter"], 1);
        assert_eq!(
            t.oldest_pending_seconds, 1800.0,
            "sent and dead letters do not count"
        );
    }
}

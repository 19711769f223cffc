//! The scheduled notifications: invoice overdue, trial ending, idle add-on, billing drift not
//! healed. Each is a pure
//! function of the subscription's status, what usage says and `now`; each event's id names its
//! window (the overdue day, the trial's end, the idle stretch), so recording it again (a restart,
//! a second pass, another replica) finds the same outbox record and sends nothing new.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{SubscriptionEvent, stable_id};
use crate::api::conditions::reasons::DRIFT_FOUND;
use crate::api::conditions::types::SYNCED;
use crate::api::conditions::{FALSE, find_condition};
use crate::api::notification_channel::NotificationEventKind;
use crate::api::tenant_subscription::{Phase, TenantSubscriptionStatus};

/// When the scheduled messages are due (shortened in tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// An invoice unpaid this long after it was sent is overdue.
    pub overdue_after: Duration,
    /// Overdue reminders repeat at most this often.
    pub overdue_every: Duration,
    /// The trial-ending message goes this long before the trial ends.
    pub trial_notice: Duration,
    /// An add-on none of whose features was checked for this long is idle.
    pub idle_after: Duration,
    /// Idle nudges repeat at most this often.
    pub idle_every: Duration,
    /// Drift found and not healed (`Synced` False, `DriftFound`) this long is alerted, once per
    /// episode (the condition's transition).
    pub drift_unhealed_after: Duration,
}

const DAY: u64 = 24 * 3600;

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            overdue_after: Duration::from_secs(7 * DAY),
            overdue_every: Duration::from_secs(DAY),
            trial_notice: Duration::from_secs(3 * DAY),
            idle_after: Duration::from_secs(30 * DAY),
            idle_every: Duration::from_secs(60 * DAY),
            // The `for` of the MarketplaceDriftNotHealed alert rule.
            drift_unhealed_after: Duration::from_secs(30 * 60),
        }
    }
}

/// What the scheduled messages of one subscription depend on.
#[derive(Clone, Copy, Debug)]
pub struct ScheduleFacts<'a> {
    pub uid: &'a str,
    pub status: &'a TenantSubscriptionStatus,
    /// The latest check of any of the subscription's features through the API; `None` when
    /// none was ever checked there (the listing is not checked through the API: no nudge).
    pub last_checked: Option<Timestamp>,
    /// When the last idle nudge of this subscription was recorded.
    pub last_idle_nudge: Option<Timestamp>,
    pub now: Timestamp,
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Whole `every`s elapsed from `start` to `now` (0 when not yet started).
fn windows(start: Timestamp, now: Timestamp, every: Duration) -> i64 {
    let every = signed(every).as_secs().max(1);
    (now.duration_since(start).as_secs() / every).max(0)
}

/// The scheduled events due now.
pub fn scheduled_events(f: &ScheduleFacts<'_>, c: &ScheduleConfig) -> Vec<SubscriptionEvent> {
    let mut out = Vec::new();
    let event = |kind, window: String, date: Timestamp| SubscriptionEvent {
        id: stable_id("evt", &[f.uid, &format!("{kind:?}"), &window]),
        kind,
        at: f.now,
        date,
        reason: None,
    };
    match f.status.phase {
        Some(Phase::Invoiced) => {
            let invoiced = f
                .status
                .history
                .iter()
                .rev()
                .find(|t| t.to == Phase::Invoiced)
                .map(|t| t.at.0);
            if let Some(invoiced) = invoiced {
                let overdue_from = invoiced.saturating_add(signed(c.overdue_after)).ok();
                if let Some(from) = overdue_from.filter(|from| f.now >= *from) {
                    let day = windows(from, f.now, c.overdue_every);
                    out.push(event(
                        NotificationEventKind::InvoiceOverdue,
                        format!("{}/{day}", invoiced.as_second()),
                        invoiced,
                    ));
                }
            }
        }
        Some(Phase::Trialing) => {
            if let Some(ends) = f.status.trial_ends_at.as_ref().map(|t| t.0) {
                let notice_from = ends.saturating_sub(signed(c.trial_notice)).ok();
                if notice_from.is_some_and(|from| f.now >= from) && f.now < ends {
                    out.push(event(
                        NotificationEventKind::TrialEnding,
                        ends.as_second().to_string(),
                        ends,
                    ));
                }
            }
        }
        Some(Phase::Active) => {
            let recent_nudge = f
                .last_idle_nudge
                .is_some_and(|at| f.now.duration_since(at) < signed(c.idle_every));
            if let (Some(last), false) = (f.last_checked, recent_nudge) {
                let idle_from = last.saturating_add(signed(c.idle_after)).ok();
                if let Some(from) = idle_from.filter(|from| f.now >= *from) {
                    let stretch = windows(from, f.now, c.idle_every);
                    out.push(event(
                        NotificationEventKind::IdleAddOn,
                        format!("{}/{stretch}", last.as_second()),
                        f.now,
                    ));
                }
            }
        }
        _ => {}
    }
    out.extend(drift_unhealed(f, c));
    out
}

/// The alert of drift found and not healed for `drift_unhealed_after`: healing was tried (the
/// reconcile after the audit) and failed, and no later audit or reconcile cleared it. The
/// episode is the condition's transition, so the alert goes once however long it lasts, and
/// again only after it was healed and broke anew.
fn drift_unhealed(f: &ScheduleFacts<'_>, c: &ScheduleConfig) -> Option<SubscriptionEvent> {
    let synced = find_condition(&f.status.conditions, SYNCED)?;
    if synced.status != FALSE || synced.reason != DRIFT_FOUND {
        return None;
    }
    let since = synced.last_transition_time.0;
    if f.now.duration_since(since) < signed(c.drift_unhealed_after) {
        return None;
    }
    let kind = NotificationEventKind::DriftUnhealed;
    Some(SubscriptionEvent {
        id: stable_id(
            "evt",
            &[f.uid, &format!("{kind:?}"), &since.as_second().to_string()],
        ),
        kind,
        at: f.now,
        date: since,
        reason: Some(synced.message.clone()),
    })
}

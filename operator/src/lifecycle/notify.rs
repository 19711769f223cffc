//! Notifications, decided: which events a subscription's history and clock produce, who
//! receives each one over which channel (one outbox record per event and recipient, named after
//! both so recording twice is a no-op), and what delivery does next after an attempt. Pure:
//! time is an argument; the sender and the outbox writer live in `crate::notify`.

use std::time::Duration;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::api::notification::{DeliveryPhase, NotificationStatus};
use crate::api::notification_channel::{
    NotificationAudience, NotificationChannelSpec, NotificationEventKind,
};
use crate::api::tenant::TenantSpec;
use crate::api::tenant_subscription::{Phase, Transition};

pub mod announce;
pub mod schedule;
#[cfg(test)]
mod tests;

pub use schedule::{ScheduleConfig, scheduled_events};

/// Something that happened to a subscription, identified so that seeing it twice is seeing the
/// same event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionEvent {
    pub id: String,
    pub kind: NotificationEventKind,
    pub at: Timestamp,
    /// The date the message speaks of (the invoice's, the trial's end, the transition's).
    pub date: Timestamp,
    /// The recorded reason, for internal copy.
    pub reason: Option<String>,
}

/// A stable id from parts (hex of SHA-256, 20 characters: collisions are not a concern at the
/// scale of one marketplace's events).
pub fn stable_id(prefix: &str, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let hex: String = hash
        .finalize()
        .iter()
        .take(10)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}-{hex}")
}

/// The message of the transition into Suspended caused by a suspended tenant (not a payment).
pub use crate::lifecycle::phase::TENANT_SUSPENDED_MESSAGE;

/// The events of the history entries at or after `since`, for subscription `uid`. Transitions
/// are the one record of what happened, whoever caused them (the reconciler, an approval step,
/// a webhook), so notifications follow them and nothing else.
pub fn events_of_history(
    uid: &str,
    history: &[Transition],
    needs_approval: bool,
    since: Timestamp,
) -> Vec<SubscriptionEvent> {
    history
        .iter()
        .filter(|t| t.at.0 >= since)
        .filter_map(|t| {
            let kind = kind_of_transition(t, needs_approval)?;
            let from = t.from.map(|p| format!("{p:?}")).unwrap_or_default();
            let to = format!("{:?}", t.to);
            // Whole seconds: what the apiserver keeps of a time (the status just written holds
            // nanoseconds, its next read does not; both must give the same id).
            let at = t.at.0.as_second().to_string();
            Some(SubscriptionEvent {
                id: stable_id("evt", &[uid, &at, &from, &to]),
                kind,
                at: t.at.0,
                date: t.at.0,
                reason: t.reason.clone(),
            })
        })
        .collect()
}

fn kind_of_transition(t: &Transition, needs_approval: bool) -> Option<NotificationEventKind> {
    use NotificationEventKind as K;
    let in_service = |p: Option<Phase>| {
        matches!(
            p,
            Some(Phase::Active | Phase::Trialing | Phase::Suspended | Phase::CancelRequested)
        )
    };
    match t.to {
        Phase::Requested if t.from.is_none() && needs_approval => Some(K::NewRequest),
        Phase::Invoiced => Some(K::InvoiceReady),
        Phase::Active | Phase::Trialing if !in_service(t.from) => Some(K::Activated),
        Phase::Suspended if t.reason.as_deref() != Some(TENANT_SUSPENDED_MESSAGE) => {
            Some(K::PaymentFailed)
        }
        Phase::CancelRequested => Some(K::CancellationRequested),
        Phase::Cancelled => Some(K::CancellationConfirmed),
        Phase::Failed => Some(K::ProvisioningFailed),
        _ => None,
    }
}

/// Marketing messages, which a tenant may opt out of.
pub fn is_marketing(kind: NotificationEventKind) -> bool {
    use NotificationEventKind as K;
    matches!(kind, K::IdleAddOn | K::NewListing | K::MajorRelease)
}

/// One outbox record to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The record's name: the event, the channel and the recipient; also the Message-ID and
    /// the `webhook-id`.
    pub name: String,
    pub channel: String,
    pub audience: NotificationAudience,
    pub recipient: Option<String>,
}

/// The tenant's e-mail recipients of `kind`: the billing contact and the admins, each once;
/// none for a marketing message when the tenant opted out.
pub fn tenant_recipients(tenant: &TenantSpec, kind: NotificationEventKind) -> Vec<String> {
    let settings = tenant.notifications.clone().unwrap_or_default();
    if is_marketing(kind) && settings.marketing_opt_out {
        return Vec::new();
    }
    let mut out = vec![tenant.billing_contact.email.to_lowercase()];
    for admin in settings.admin_emails {
        let email = admin.0.to_lowercase();
        if !out.contains(&email) {
            out.push(email);
        }
    }
    out
}

/// Where `event` goes: for each channel routing it to an audience that has a message for it
/// (`has_message`), one delivery per recipient.
pub fn route<'a>(
    event_id: &str,
    kind: NotificationEventKind,
    channels: impl IntoIterator<Item = (&'a str, &'a NotificationChannelSpec)>,
    tenant: Option<&TenantSpec>,
    has_message: impl Fn(NotificationAudience, NotificationEventKind) -> bool,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    for (name, channel) in channels {
        if !has_message(channel.audience, kind)
            || !(channel.events.is_empty() || channel.events.contains(&kind))
        {
            continue;
        }
        let recipients: Vec<Option<String>> = match (channel.audience, &channel.smtp) {
            (NotificationAudience::Tenants, _) => tenant
                .map(|t| tenant_recipients(t, kind))
                .unwrap_or_default()
                .into_iter()
                .map(Some)
                .collect(),
            (_, Some(_)) => channel
                .to
                .iter()
                .map(|a| Some(a.0.to_lowercase()))
                .collect(),
            (_, None) => vec![None],
        };
        for recipient in recipients {
            out.push(Delivery {
                name: stable_id(
                    "ntf",
                    &[event_id, name, recipient.as_deref().unwrap_or_default()],
                ),
                channel: name.to_string(),
                audience: channel.audience,
                recipient,
            });
        }
    }
    out
}

/// How delivery retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before the record is dead-lettered.
    pub max_attempts: u32,
    /// Delay after the first failure; doubled after each further one.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            first_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (≥ 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// What delivery does with a record now.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryStep {
    /// Send now.
    Send,
    /// Wait until the next attempt is due.
    WaitUntil(Timestamp),
    /// Nothing (sent, or dead-lettered and not asked to retry).
    Done,
    /// A superadmin asked for another try of a dead-lettered record: start over (this status).
    Restart(NotificationStatus),
}

/// The next step for a record with `status`, its retry annotation and the time.
pub fn next_step(
    status: &NotificationStatus,
    retry_annotation: Option<&str>,
    now: Timestamp,
) -> DeliveryStep {
    match status.phase.unwrap_or_default() {
        DeliveryPhase::Sent => DeliveryStep::Done,
        DeliveryPhase::DeadLetter => match retry_annotation {
            Some(token) if status.retried_for.as_deref() != Some(token) => {
                DeliveryStep::Restart(NotificationStatus {
                    phase: Some(DeliveryPhase::Pending),
                    attempts: 0,
                    next_attempt_at: None,
                    sent_at: None,
                    last_error: status.last_error.clone(),
                    retried_for: Some(token.to_string()),
                })
            }
            _ => DeliveryStep::Done,
        },
        DeliveryPhase::Pending => match status.next_attempt_at.as_ref() {
            Some(at) if at.0 > now => DeliveryStep::WaitUntil(at.0),
            _ => DeliveryStep::Send,
        },
    }
}

/// The status after an attempt at `now`: Sent, Pending with the next attempt backed off, or
/// DeadLetter after the last allowed attempt.
pub fn after_attempt(
    status: &NotificationStatus,
    outcome: Result<(), String>,
    policy: &RetryPolicy,
    now: Timestamp,
) -> NotificationStatus {
    let attempts = status.attempts.saturating_add(1);
    let mut next = NotificationStatus {
        attempts,
        retried_for: status.retried_for.clone(),
        ..NotificationStatus::default()
    };
    match outcome {
        Ok(()) => {
            next.phase = Some(DeliveryPhase::Sent);
            next.sent_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        }
        Err(error) if u32::try_from(attempts).unwrap_or(u32::MAX) >= policy.max_attempts => {
            next.phase = Some(DeliveryPhase::DeadLetter);
            next.last_error = Some(error);
        }
        Err(error) => {
            next.phase = Some(DeliveryPhase::Pending);
            next.last_error = Some(error);
            let failures = u32::try_from(attempts).unwrap_or(u32::MAX);
            let wait = jiff::SignedDuration::try_from(policy.delay(failures))
                .unwrap_or(jiff::SignedDuration::from_secs(3600));
            next.next_attempt_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                now.checked_add(wait).unwrap_or(now),
            ));
        }
    }
    next
}

/// Whether an outbox record may be deleted at `now`: Sent more than `retention` ago. Pending
/// records and dead letters stay (a superadmin deletes or retries a dead letter).
pub fn expired(status: Option<&NotificationStatus>, now: Timestamp, retention: Duration) -> bool {
    let Some(sent_at) = status
        .filter(|s| s.phase == Some(DeliveryPhase::Sent))
        .and_then(|s| s.sent_at.as_ref())
    else {
        return false;
    };
    let retention = jiff::SignedDuration::try_from(retention).unwrap_or(jiff::SignedDuration::MAX);
    sent_at
        .0
        .checked_add(retention)
        .is_ok_and(|until| now >= until)
}

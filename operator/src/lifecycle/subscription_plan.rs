//! The subscription reconcile as a plan: every choice the reconciler makes, as pure functions
//! over what it observed. The reconciler runs them in this order, acting between them:
//!
//! 1. [`plan_billing`]: the target phase, the one billing call it needs (drift found in
//!    HubSpot is healed by the idempotent ensure) and whether it runs in the background;
//! 2. after the call, [`decide_after_billing`] and the Entitlements to write
//!    ([`super::desired_entitlements`]);
//! 3. if writing them failed, [`hold_on_entitlement_failure`];
//! 4. [`report`]: the status to write, the Events to publish and when to look again.
//!
//! `phase/tests.rs` drives exactly these functions through whole lifecycles.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;

use super::billing_order::BILLING_NOT_ESTABLISHED;
use super::phase::{BillingFact, BillingIntent, Decision, SubscriptionFacts};
use super::{Refusal, billing_intent, decide, is_terminal, is_usable, plan_changed};
use crate::api::conditions::reasons::{
    CANCELLED, DRIFT_FOUND, FAILED, GRANTED, HEALED, IN_SYNC, LIVE, MISSING, NOT_BILLED, PENDING,
    REVOKED, SUCCEEDED,
};
use crate::api::conditions::types::{BILLED, READY, SYNCED};
pub use crate::api::conditions::types::{CONNECTION_TESTED, ENTITLED};
use crate::api::conditions::{FALSE, NewCondition, TRUE, find_condition, set_condition};
use crate::api::listing::ListingSpec;
use crate::api::tenant_subscription::{
    HubSpotIds, Phase, TenantSubscriptionSpec, TenantSubscriptionStatus, Transition,
};

/// History entries kept in status.
pub const HISTORY_LIMIT: usize = 50;
/// Periodic re-check when nothing is due earlier.
pub const RESYNC: Duration = Duration::from_secs(600);
/// The reason the first history entry records for a new request. Why it waits (a listing or
/// tenant not cached yet, a Secret to fix) is the Ready condition's to say, not history's: it
/// is often gone a moment later.
pub const REQUEST_RECEIVED: &str = "request received";

/// What webhooks or the drift audit learned about the billing record (re-read from HubSpot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingNews {
    pub fact: BillingFact,
    /// `webhook` or `audit`.
    pub source: &'static str,
    /// A drift finding, for the Synced condition; `None` when HubSpot agrees.
    pub finding: Option<String>,
    /// The webhook recheck mark this read answers, removed once the status holds it.
    pub recheck: Option<String>,
}

/// Everything the reconcile observed before deciding.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub now: Timestamp,
    pub generation: Option<i64>,
    pub spec: &'a TenantSubscriptionSpec,
    pub status: &'a TenantSubscriptionStatus,
    /// Absent when the listing is not (or no longer) in the catalog.
    pub listing: Option<&'a ListingSpec>,
    pub tenant_suspended: bool,
    /// Validation's verdict (only made while Requested).
    pub refusal: Option<&'a Refusal>,
    /// Whether a connection test ran in this reconcile, and passed.
    pub connection_tested: Option<bool>,
    pub news: Option<&'a BillingNews>,
    /// The grace when the listing's subscriptions are entitled first
    /// ([`super::billing_order::BillingOrderSettings::entitle_first_grace`]); `None` bills first.
    pub entitle_first: Option<SignedDuration>,
    /// A billing call of this subscription runs in the billing pool: seen before planning, and
    /// set by the reconciler once [`plan_billing`]'s background call has been started.
    pub billing_in_flight: bool,
}

impl<'a> Observation<'a> {
    /// What is known of the billing record before any call: fresh news, else the status.
    pub fn recorded(&self) -> BillingFact {
        match self.news {
            Some(news) => news.fact.clone(),
            None => BillingFact::from_recorded(
                self.status
                    .hubspot
                    .as_ref()
                    .and_then(|h| h.status.as_deref()),
            ),
        }
    }

    fn facts(&self, billing: &'a BillingFact) -> SubscriptionFacts<'a> {
        SubscriptionFacts {
            now: self.now,
            spec: self.spec,
            status: self.status,
            listing: self.listing,
            tenant_suspended: self.tenant_suspended,
            refusal: self.refusal,
            billing,
            entitle_first: self.entitle_first,
            billing_in_flight: self.billing_in_flight,
        }
    }
}

/// Step 1: where the subscription is headed and the billing call that needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingStep {
    pub target: Decision,
    pub intent: BillingIntent,
    /// The call runs in the billing pool, not in the reconcile: an entitled-first subscription
    /// already has its features, so nothing waits on HubSpot's rate budget but the `Billed`
    /// condition, and the reconcile slots stay free for new purchases. The reconcile that finds
    /// the call's outcome reports it. BillFirst and cancellations call inline (nothing may move
    /// on before they succeed).
    pub background: bool,
    /// Decide from a fresh read: a call is to be made or started, or the phase changes (with its
    /// Entitlement writes). Our own last status write may not have reached the cache yet, and
    /// deciding from the state before it would repeat the call or the transition. A call
    /// already running in the pool is neither: nothing is started, nothing is written.
    pub fresh_read: bool,
}

pub fn plan_billing(o: &Observation<'_>) -> BillingStep {
    let recorded = o.recorded();
    let target = decide(&o.facts(&recorded));
    let changed = plan_changed(o.spec, o.status, o.listing)
        || super::promotion::discount_lapsed(o.status, o.now);
    let mut intent = billing_intent(target.phase, o.status.phase, &recorded, changed);
    // EntitleFirst: a subscription entering service is entitled in this reconcile without
    // waiting for HubSpot; the next one (due at once) bills.
    let entering = !matches!(
        o.status.phase,
        Some(Phase::Active | Phase::Trialing | Phase::Suspended | Phase::CancelRequested)
    );
    if o.entitle_first.is_some()
        && entering
        && matches!(target.phase, Phase::Active | Phase::Trialing)
        && !matches!(recorded, BillingFact::Live { .. })
    {
        intent = BillingIntent::None;
    }
    // Drift found in HubSpot (duplicates, invoicing off, a record gone) is healed by the
    // idempotent ensure, which keeps one live record and turns invoicing on.
    let drifted = o.news.is_some_and(|n| n.finding.is_some());
    if drifted
        && matches!(
            target.phase,
            Phase::Active | Phase::Trialing | Phase::Suspended
        )
        && matches!(intent, BillingIntent::None | BillingIntent::ReadStatus)
    {
        intent = BillingIntent::Ensure;
    }
    let background = o.entitle_first.is_some()
        && !entering
        && matches!(
            intent,
            BillingIntent::Ensure | BillingIntent::ReadStatus | BillingIntent::ChangePlan
        );
    let calls = intent != BillingIntent::None && !(background && o.billing_in_flight);
    let fresh_read = calls || o.status.phase != Some(target.phase);
    BillingStep {
        target,
        intent,
        background,
        fresh_read,
    }
}

/// Step 2: the phase, given what the billing call found (`fact`).
pub fn decide_after_billing(o: &Observation<'_>, fact: &BillingFact) -> Decision {
    decide(&o.facts(fact))
}

/// Step 3: billing is in place but granting the features failed. A subscription not yet in
/// service stays in Provisioning (it must not claim Active without its features); one in
/// service keeps its phase. Either way Ready says why, and the reconcile retries.
pub fn hold_on_entitlement_failure(
    before: Option<Phase>,
    mut decision: Decision,
    error: &str,
) -> Decision {
    let in_service = matches!(
        before,
        Some(Phase::Active | Phase::Trialing | Phase::Suspended | Phase::CancelRequested)
    );
    if !in_service && !is_terminal(decision.phase) {
        decision.phase = Phase::Provisioning;
        decision.via = None;
    }
    decision.ready = false;
    decision.reason = "Retrying".into();
    decision.message = format!("billing is in place but granting entitlements failed: {error}");
    decision
}

/// An Event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    pub type_: EventType,
    pub reason: String,
    pub action: &'static str,
    pub note: String,
}

/// What the reconcile reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub status: TenantSubscriptionStatus,
    pub events: Vec<PlannedEvent>,
    /// When to look again (a trial or period end, or the periodic re-check).
    pub requeue: Duration,
    /// Retry with backoff instead (the status says why).
    pub retry: Option<String>,
}

/// What acting found, for the report.
#[derive(Debug, Clone, Default)]
pub struct Acted<'a> {
    /// The billing fact after the call (or the recorded one if none was made).
    pub fact: Option<&'a BillingFact>,
    pub ids: Option<&'a HubSpotIds>,
    /// Repairs the ensure made (duplicates retired, invoicing turned on).
    pub repairs: &'a [String],
    /// The features granted now.
    pub granted: Vec<String>,
    /// Why granting failed, if it did.
    pub entitlement_error: Option<String>,
    /// A plan change billed in this reconcile: (was plan, was quantity).
    pub plan_changed_from: Option<(String, i32)>,
}

/// Step 4: the status after this reconcile, its Events and the next look.
pub fn report(o: &Observation<'_>, decision: &Decision, acted: &Acted<'_>) -> Report {
    let fallback = o.recorded();
    let fact = acted.fact.unwrap_or(&fallback);
    let status = subscription_status(o, decision, fact, acted);
    let mut events = transition_events(o.status, decision, o.spec, acted);
    if decision.reason == BILLING_NOT_ESTABLISHED && o.status.phase != Some(Phase::Suspended) {
        events.push(PlannedEvent {
            type_: EventType::Warning,
            reason: BILLING_NOT_ESTABLISHED.into(),
            action: "Bill",
            note: decision.message.clone(),
        });
    }
    if let Some(finding) = o.news.and_then(|n| n.finding.as_ref()) {
        events.push(PlannedEvent {
            type_: EventType::Warning,
            reason: "DriftFound".into(),
            action: "Audit",
            note: finding.clone(),
        });
    }
    let retry = match (&acted.entitlement_error, fact) {
        (Some(_), _) => {
            events.push(PlannedEvent {
                type_: EventType::Warning,
                reason: "ProvisioningFailed".into(),
                action: "Provision",
                note: decision.message.clone(),
            });
            Some(decision.message.clone())
        }
        (
            None,
            BillingFact::Failed {
                message,
                retryable: true,
            },
        ) => Some(message.clone()),
        _ => None,
    };
    Report {
        status,
        events,
        requeue: requeue_after(decision, o.now),
        retry,
    }
}

fn transition_events(
    before: &TenantSubscriptionStatus,
    d: &Decision,
    spec: &TenantSubscriptionSpec,
    acted: &Acted<'_>,
) -> Vec<PlannedEvent> {
    let mut events = Vec::new();
    if let Some((plan, quantity)) = &acted.plan_changed_from {
        events.push(PlannedEvent {
            type_: EventType::Normal,
            reason: "PlanChanged".into(),
            action: "Bill",
            note: format!(
                "now billing plan {} × {} (was {plan} × {quantity})",
                spec.plan.as_str(),
                spec.quantity
            ),
        });
    }
    if before.phase != Some(d.phase) {
        let type_ = match d.phase {
            Phase::Rejected | Phase::Suspended | Phase::Failed => EventType::Warning,
            _ => EventType::Normal,
        };
        let from = before
            .phase
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "new".into());
        events.push(PlannedEvent {
            type_,
            reason: format!("{:?}", d.phase),
            action: "Transition",
            note: format!("{from} → {:?}: {}", d.phase, d.message),
        });
    }
    for repair in acted.repairs {
        events.push(PlannedEvent {
            type_: EventType::Warning,
            reason: "BillingRepaired".into(),
            action: "Bill",
            note: repair.clone(),
        });
    }
    events
}

/// When to reconcile again: the next time-based change, at most [`RESYNC`] away.
pub fn requeue_after(d: &Decision, now: Timestamp) -> Duration {
    d.wake_at
        .map(|at| at.duration_since(now))
        .and_then(|s| Duration::try_from(s).ok())
        .map(|w| w.min(RESYNC) + Duration::from_millis(50))
        .unwrap_or(RESYNC)
}

/// The status after this reconcile.
fn subscription_status(
    o: &Observation<'_>,
    d: &Decision,
    fact: &BillingFact,
    acted: &Acted<'_>,
) -> TenantSubscriptionStatus {
    let status = o.status;
    let at = Time(o.now);
    let mut next = status.clone();
    next.observed_generation = o.generation;
    // A transition caused by what HubSpot said (webhook or audit) is HubSpot's.
    let actor = if o.news.is_some() {
        "hubspot"
    } else {
        "operator"
    };
    if status.phase != Some(d.phase) {
        let mut push = |from: Option<Phase>, to: Phase| {
            let reason = if from.is_none() && to == Phase::Requested {
                REQUEST_RECEIVED.to_string()
            } else {
                d.message.clone()
            };
            next.history.push(Transition {
                from,
                to,
                at: at.clone(),
                actor: actor.to_string(),
                reason: Some(reason),
                action: None,
            });
        };
        match d.via {
            Some(via) if status.phase != Some(via) => {
                push(status.phase, via);
                push(Some(via), d.phase);
            }
            _ => push(status.phase, d.phase),
        }
        let excess = next.history.len().saturating_sub(HISTORY_LIMIT);
        next.history.drain(..excess);
    }
    next.phase = Some(d.phase);
    next.trial_ends_at = d.trial_ends_at.map(Time);
    next.current_period_end = d.current_period_end.map(Time);
    next.entitlements = acted.granted.iter().map(|f| f.as_str().into()).collect();
    if let Some(ids) = acted.ids {
        next.hubspot = Some(ids.clone());
    }
    if let Some(recorded) = fact.recorded() {
        next.hubspot.get_or_insert_with(Default::default).status = Some(recorded);
    }
    let ever_billed = next.hubspot.as_ref().is_some_and(|h| h.deal_id.is_some());
    let generation = o.generation;
    let mut set = |type_: &str, ok: bool, reason: &str, message: String| {
        set_condition(
            &mut next.conditions,
            NewCondition {
                type_,
                status: if ok { TRUE } else { FALSE },
                reason,
                message,
                observed_generation: generation,
            },
            &at,
        );
    };
    set(READY, d.ready, &d.reason, d.message.clone());
    match o.connection_tested {
        Some(true) => set(
            CONNECTION_TESTED,
            true,
            SUCCEEDED,
            "the connection settings are valid and the test connection succeeded".into(),
        ),
        Some(false) => set(CONNECTION_TESTED, false, &d.reason, d.message.clone()),
        None => {}
    }
    match fact {
        BillingFact::Live { status, .. } => set(
            BILLED,
            true,
            LIVE,
            format!("HubSpot subscription is {status}"),
        ),
        BillingFact::Cancelled if ever_billed => set(
            BILLED,
            false,
            CANCELLED,
            "billing cancelled in HubSpot".into(),
        ),
        BillingFact::Cancelled => set(
            BILLED,
            false,
            NOT_BILLED,
            "nothing was billed for this subscription".into(),
        ),
        BillingFact::Missing => set(
            BILLED,
            false,
            MISSING,
            "no live HubSpot billing record".into(),
        ),
        BillingFact::Failed { message, .. } => set(BILLED, false, FAILED, message.clone()),
        // Only before the first outcome: while a retry runs in the billing pool, the last
        // outcome (a failure, with HubSpot's message) stands.
        BillingFact::Unknown
            if o.entitle_first.is_some()
                && is_usable(d.phase)
                && find_condition(&status.conditions, BILLED).is_none() =>
        {
            set(
                BILLED,
                false,
                PENDING,
                "entitled first; the HubSpot billing record is being created".into(),
            )
        }
        BillingFact::Unknown => {}
    }
    let (entitled, reason, message) = entitled_condition(d.phase, &acted.granted, acted);
    set(ENTITLED, entitled, reason, message);
    if let Some(news) = o.news {
        let source = news.source;
        let now = o.now;
        match (&news.finding, fact) {
            (Some(finding), BillingFact::Failed { message, .. }) => set(
                SYNCED,
                false,
                DRIFT_FOUND,
                format!("{finding} ({source} at {now}); healing failed: {message}"),
            ),
            (Some(finding), _) => set(
                SYNCED,
                true,
                HEALED,
                format!("{finding}; healed ({source} at {now})"),
            ),
            (None, _) => set(
                SYNCED,
                true,
                IN_SYNC,
                format!("HubSpot agrees ({source} at {now})"),
            ),
        }
    }
    next
}

/// The Entitled condition: `Granted` while the tenant may use the features, `Pending` before
/// service starts, `Revoked` while suspended or once over, `Failed` when writing the
/// Entitlements failed.
fn entitled_condition(
    phase: Phase,
    granted: &[String],
    acted: &Acted<'_>,
) -> (bool, &'static str, String) {
    if let Some(error) = &acted.entitlement_error {
        return (
            false,
            FAILED,
            format!("writing the Entitlements failed: {error}"),
        );
    }
    match phase {
        p if is_usable(p) => (
            true,
            GRANTED,
            format!("features granted: {}", granted.join(", ")),
        ),
        Phase::Suspended => (
            false,
            REVOKED,
            format!("features suspended: {}", granted.join(", ")),
        ),
        p if is_terminal(p) => (
            false,
            REVOKED,
            format!("no features: the subscription is {p:?}"),
        ),
        p => (
            false,
            PENDING,
            format!("features are granted once the subscription is in service (now {p:?})"),
        ),
    }
}

#[cfg(test)]
mod tests;

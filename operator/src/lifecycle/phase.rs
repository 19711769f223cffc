//! Which phase a subscription should be in, and what billing must do to get it there.
//!
//! A reconcile decides twice: first with what is known (to learn which billing call the target
//! phase needs: [`billing_intent`]), then again with the call's outcome. Both are the same pure
//! [`decide`], so a reconcile that dies at any step simply decides again next time.

use jiff::{SignedDuration, Timestamp};

use super::billing_order::{
    BILLING_IN_FLIGHT_RECHECK, BILLING_NOT_ESTABLISHED, billing_established, grace_ends,
};
use super::is_terminal;
use super::period::{current_period_end, trial_end};
use super::validation::Refusal;
use crate::api::listing::{Activation, ListingSpec, Plan, PricingModel};
use crate::api::tenant_subscription::{
    CancellationEffective, Phase, TenantSubscriptionSpec, TenantSubscriptionStatus,
};
use crate::billing::StatusClass;

/// Why a subscription is Suspended when its tenant is (not a payment problem).
pub const TENANT_SUSPENDED_MESSAGE: &str =
    "the tenant is suspended; its features are suspended and its data kept";

/// What is known about the subscription's HubSpot billing record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingFact {
    /// Never billed, or not known.
    Unknown,
    /// A live commerce subscription with this `hs_status`.
    Live { status: String, class: StatusClass },
    /// No live record (never created, cancelled by hand, or deleted in HubSpot).
    Missing,
    /// We cancelled it (or there was nothing to cancel).
    Cancelled,
    /// The billing call failed; the message is safe to show.
    Failed { message: String, retryable: bool },
}

impl BillingFact {
    /// The fact recorded in a status (`status.hubspot.status`).
    pub fn from_recorded(status: Option<&str>) -> BillingFact {
        match status {
            None => BillingFact::Unknown,
            Some(CANCELLED_MARK) => BillingFact::Cancelled,
            Some(value) => match crate::billing::status::known_class(value) {
                Some(StatusClass::Terminal) => BillingFact::Missing,
                class => BillingFact::Live {
                    status: value.to_string(),
                    class: class.unwrap_or(StatusClass::Unknown),
                },
            },
        }
    }

    /// What to record in `status.hubspot.status`.
    pub fn recorded(&self) -> Option<String> {
        match self {
            BillingFact::Live { status, .. } => Some(status.clone()),
            BillingFact::Cancelled => Some(CANCELLED_MARK.to_string()),
            BillingFact::Missing => Some("missing".to_string()),
            BillingFact::Unknown | BillingFact::Failed { .. } => None,
        }
    }
}

/// How soon a subscription waiting on something fixable (its listing, its Secret) looks again.
pub const WAITING_RECHECK: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// `status.hubspot.status` once the operator has cancelled the record (or found none to cancel).
pub const CANCELLED_MARK: &str = "canceled";

/// The billing call a reconcile makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingIntent {
    /// Nothing to call: the recorded fact stands.
    None,
    /// Create or find the one live billing record (idempotent).
    Ensure,
    /// Re-read the live record's status (suspended subscriptions, to notice a recovery).
    ReadStatus,
    /// Cancel every live record of the subscription (idempotent).
    Cancel,
    /// The plan or quantity changed while in service: end the live HubSpot subscription and
    /// ensure a new one under the same deal (contract §1.8: a plan change is cancel + create).
    ChangePlan,
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct SubscriptionFacts<'a> {
    pub now: Timestamp,
    pub spec: &'a TenantSubscriptionSpec,
    pub status: &'a TenantSubscriptionStatus,
    /// Absent when the listing left the catalog.
    pub listing: Option<&'a ListingSpec>,
    pub tenant_suspended: bool,
    /// The outcome of validation; consulted only before billing starts.
    pub refusal: Option<&'a Refusal>,
    pub billing: &'a BillingFact,
    /// The grace when the subscription is entitled first ([`super::billing_order`]); `None`
    /// bills first.
    pub entitle_first: Option<SignedDuration>,
    /// A billing call of this subscription runs in the background (the billing pool), which
    /// wakes the subscription with its outcome: nothing is due the moment it was started.
    pub billing_in_flight: bool,
}

/// The phase a subscription should be in, with what the report needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub phase: Phase,
    /// Set when the subscription passed through a phase on the way (Requested → Provisioning →
    /// Active in one reconcile), so history shows every step.
    pub via: Option<Phase>,
    /// Ready condition: status, reason, message.
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// When billing and entitlements started (the first Active or Trialing).
    pub activated_at: Option<Timestamp>,
    pub trial_ends_at: Option<Timestamp>,
    pub current_period_end: Option<Timestamp>,
    /// When the next time-based change is due (trial end, period end).
    pub wake_at: Option<Timestamp>,
}

impl Decision {
    fn new(phase: Phase, ready: bool, reason: &str, message: impl Into<String>) -> Self {
        Decision {
            phase,
            via: None,
            ready,
            reason: reason.to_string(),
            message: message.into(),
            activated_at: None,
            trial_ends_at: None,
            current_period_end: None,
            wake_at: None,
        }
    }
}

/// The plan of the subscription's listing, if both exist.
pub fn plan_of<'a>(
    listing: Option<&'a ListingSpec>,
    spec: &TenantSubscriptionSpec,
) -> Option<&'a Plan> {
    listing?.plans.iter().find(|p| p.name == spec.plan)
}

/// When the subscription first became Active or Trialing, from its history.
pub fn activated_at(status: &TenantSubscriptionStatus) -> Option<Timestamp> {
    status
        .history
        .iter()
        .find(|t| matches!(t.to, Phase::Active | Phase::Trialing))
        .map(|t| t.at.0)
}

/// The phase a suspended subscription returns to.
fn resume_phase(status: &TenantSubscriptionStatus) -> Phase {
    status
        .history
        .iter()
        .rev()
        .find(|t| t.to == Phase::Suspended)
        .and_then(|t| t.from)
        .filter(|p| matches!(p, Phase::Active | Phase::Trialing))
        .unwrap_or(Phase::Active)
}

/// Whether the spec asks for another plan or quantity than the live record bills (and the new
/// plan exists, with a quantity it allows).
pub fn plan_changed(
    spec: &TenantSubscriptionSpec,
    status: &TenantSubscriptionStatus,
    listing: Option<&ListingSpec>,
) -> bool {
    let Some(ids) = &status.hubspot else {
        return false;
    };
    let (Some(plan), Some(quantity)) = (&ids.billed_plan, ids.billed_quantity) else {
        return false;
    };
    let Some(new_plan) = plan_of(listing, spec) else {
        return false;
    };
    let quantity_ok = new_plan.pricing.model != PricingModel::Flat || spec.quantity == 1;
    quantity_ok && (plan != spec.plan.as_str() || quantity != spec.quantity)
}

/// The billing call the `target` phase needs, given what is recorded and whether the plan
/// changed.
pub fn billing_intent(
    target: Phase,
    current: Option<Phase>,
    billing: &BillingFact,
    plan_changed: bool,
) -> BillingIntent {
    let intent = billing_intent_for_phase(target, current, billing);
    let in_service = matches!(target, Phase::Active | Phase::Trialing);
    if plan_changed && in_service && intent == BillingIntent::None {
        BillingIntent::ChangePlan
    } else {
        intent
    }
}

fn billing_intent_for_phase(
    target: Phase,
    current: Option<Phase>,
    billing: &BillingFact,
) -> BillingIntent {
    match target {
        Phase::Provisioning => BillingIntent::Ensure,
        Phase::Active | Phase::Trialing | Phase::Suspended => match billing {
            // Entering service, or the record went missing (cancelled or deleted by hand):
            // (re)create it. Policy: the cluster says the tenant has the add-on.
            BillingFact::Unknown | BillingFact::Missing | BillingFact::Cancelled => {
                BillingIntent::Ensure
            }
            BillingFact::Failed { .. } => BillingIntent::Ensure,
            BillingFact::Live {
                class: StatusClass::PaymentProblem | StatusClass::Paused,
                ..
            } => BillingIntent::ReadStatus,
            BillingFact::Live { .. } => {
                if current == Some(target) || current == Some(Phase::Suspended) {
                    BillingIntent::None
                } else {
                    BillingIntent::Ensure
                }
            }
        },
        Phase::CancelRequested | Phase::Cancelled | Phase::Rejected | Phase::Failed => {
            if *billing == BillingFact::Cancelled {
                BillingIntent::None
            } else {
                BillingIntent::Cancel
            }
        }
        Phase::Requested | Phase::Invoiced | Phase::Paid => BillingIntent::None,
    }
}

/// The phase the subscription should be in now.
pub fn decide(f: &SubscriptionFacts<'_>) -> Decision {
    let current = f.status.phase.unwrap_or(Phase::Requested);
    let mut d = decide_phase(f, current);
    if d.activated_at.is_none() {
        d.activated_at = activated_at(f.status);
    }
    d
}

fn decide_phase(f: &SubscriptionFacts<'_>, current: Phase) -> Decision {
    let approval = f
        .listing
        .is_some_and(|l| l.activation == Activation::Approval);
    if is_terminal(current) {
        return terminal(f, current);
    }
    match current {
        Phase::Requested | Phase::Invoiced | Phase::Paid => {
            if let Some(refusal) = f.refusal.filter(|_| current == Phase::Requested) {
                let phase = if refusal.waits() {
                    Phase::Requested
                } else {
                    Phase::Rejected
                };
                let mut d = Decision::new(phase, false, refusal.reason, refusal.to_string());
                if refusal.waits() {
                    d.wake_at = Some(f.now + WAITING_RECHECK);
                }
                return d;
            }
            if f.spec.cancellation.is_some() {
                return Decision::new(
                    Phase::Cancelled,
                    true,
                    "Cancelled",
                    "cancelled before activation; nothing was billed",
                );
            }
            if approval {
                let (reason, message) = match current {
                    Phase::Requested => (
                        "AwaitingInvoice",
                        "waiting for a superadmin to invoice the tenant",
                    ),
                    Phase::Invoiced => (
                        "AwaitingPayment",
                        "invoiced; waiting for the payment to be confirmed",
                    ),
                    _ => (
                        "AwaitingApproval",
                        "paid; waiting for a superadmin to approve",
                    ),
                };
                return Decision::new(current, false, reason, message);
            }
            // Instant: straight to billing.
            let mut d = provisioning(f);
            if d.phase != Phase::Provisioning {
                d.via = Some(Phase::Provisioning);
            }
            d
        }
        Phase::Provisioning => provisioning(f),
        Phase::Active | Phase::Trialing | Phase::Suspended => in_service(f, current),
        Phase::CancelRequested => cancel_requested(f, approval),
        Phase::Cancelled | Phase::Rejected | Phase::Failed => unreachable!("handled above"),
    }
}

/// Billing is being set up: once the record is live, the subscription enters service.
fn provisioning(f: &SubscriptionFacts<'_>) -> Decision {
    if let Some(grace) = f.entitle_first
        && !matches!(f.billing, BillingFact::Live { .. })
    {
        return entitled_before_billing(f, grace, None);
    }
    match f.billing {
        BillingFact::Live { class, status } => {
            let started = activated_at(f.status).unwrap_or(f.now);
            if matches!(class, StatusClass::PaymentProblem | StatusClass::Paused) {
                let mut d = Decision::new(
                    Phase::Suspended,
                    false,
                    "PaymentFailed",
                    format!(
                        "the HubSpot subscription is {status}; features are suspended until it is paid"
                    ),
                );
                d.activated_at = Some(started);
                return d;
            }
            enter_service(f, started)
        }
        BillingFact::Failed { message, retryable } => Decision::new(
            Phase::Provisioning,
            false,
            if *retryable {
                "Retrying"
            } else {
                "BillingFailed"
            },
            format!("creating the HubSpot billing record failed: {message}"),
        ),
        _ => Decision::new(
            Phase::Provisioning,
            false,
            "Provisioning",
            "creating the HubSpot billing record",
        ),
    }
}

/// A subscription entering service at `started`: Trialing while its trial runs, else Active.
fn enter_service(f: &SubscriptionFacts<'_>, started: Timestamp) -> Decision {
    let trial_days = plan_of(f.listing, f.spec)
        .and_then(|p| p.trial_days)
        .filter(|_| f.spec.trial)
        .unwrap_or(0);
    if trial_days > 0 {
        let ends = trial_end(started, trial_days);
        if f.now < ends {
            let mut d = Decision::new(
                Phase::Trialing,
                true,
                "Trialing",
                format!("free trial until {ends}; billing starts then"),
            );
            d.activated_at = Some(started);
            d.trial_ends_at = Some(ends);
            d.wake_at = Some(ends);
            return d;
        }
    }
    let mut d = Decision::new(
        Phase::Active,
        true,
        "Active",
        "billed in HubSpot and entitled",
    );
    d.activated_at = Some(started);
    d
}

/// EntitleFirst before any billing record was established: in service (entering it now, or
/// staying in `current`) until the grace ends, then Suspended until billing succeeds.
fn entitled_before_billing(
    f: &SubscriptionFacts<'_>,
    grace: SignedDuration,
    in_service: Option<Phase>,
) -> Decision {
    let ends = grace_ends(f.status, f.now, grace);
    let why = match f.billing {
        BillingFact::Failed { message, .. } => format!(": {message}"),
        _ => String::new(),
    };
    if f.now >= ends {
        let mut d = Decision::new(
            Phase::Suspended,
            false,
            BILLING_NOT_ESTABLISHED,
            format!(
                "HubSpot billing could not be established within the EntitleFirst grace of {grace:#} \
                 (ended {ends}){why}; features are suspended until billing succeeds"
            ),
        );
        d.trial_ends_at = f.status.trial_ends_at.as_ref().map(|t| t.0);
        return d;
    }
    let mut d = match in_service {
        Some(current) => stay_in_service(f, current),
        None => enter_service(f, activated_at(f.status).unwrap_or(f.now)),
    };
    d.reason = "BillingPending".into();
    d.message = format!(
        "entitled first; the HubSpot billing record follows{why} (features are suspended if \
         billing is not established by {ends})"
    );
    // Bill right after this reconcile when nothing was tried yet; else look again at the end
    // of the grace (failed calls are retried with backoff meanwhile). A call running in the
    // background wakes the subscription when it is done; looking again before that would only
    // find it still running (a reconcile, and a read, every 50 ms while the burst's billing
    // waits for HubSpot's budget), so then the look is at most a re-check later.
    let next = match (f.billing, f.billing_in_flight) {
        (BillingFact::Unknown, false) => f.now,
        (_, false) => ends,
        (_, true) => ends.min(f.now + BILLING_IN_FLIGHT_RECHECK),
    };
    d.wake_at = Some(d.wake_at.map_or(next, |w| w.min(next)));
    d
}

/// Trialing, Active or Suspended.
fn in_service(f: &SubscriptionFacts<'_>, current: Phase) -> Decision {
    let started = activated_at(f.status).unwrap_or(f.now);
    let plan = plan_of(f.listing, f.spec);
    let trial_ends = f.status.trial_ends_at.as_ref().map(|t| t.0);
    if let Some(cancel) = &f.spec.cancellation {
        let end = match (current, trial_ends) {
            (Phase::Trialing, Some(ends)) => ends,
            _ => match plan {
                Some(p) => current_period_end(started, p.pricing.interval, f.now),
                None => f.now,
            },
        };
        if cancel.effective == CancellationEffective::Immediately || end <= f.now {
            return Decision::new(
                Phase::Cancelled,
                true,
                "Cancelled",
                "cancelled at the tenant's request; features revoked",
            );
        }
        let mut d = Decision::new(
            Phase::CancelRequested,
            true,
            "CancelRequested",
            format!(
                "cancelled at the tenant's request; billing stopped, features stay until {end}"
            ),
        );
        d.current_period_end = Some(end);
        d.trial_ends_at = trial_ends;
        d.wake_at = Some(end);
        return d;
    }
    if let (Some(listing), None) = (f.listing, plan) {
        let names: Vec<&str> = listing.plans.iter().map(|p| p.name.as_str()).collect();
        let mut d = Decision::new(
            current,
            false,
            "PlanNotFound",
            format!(
                "the listing has no plan {:?} (its plans: {}); billing continues on the previous plan",
                f.spec.plan.as_str(),
                names.join(", ")
            ),
        );
        d.trial_ends_at = trial_ends;
        return d;
    }
    if plan.is_some_and(|p| p.pricing.model == PricingModel::Flat) && f.spec.quantity != 1 {
        let mut d = Decision::new(
            current,
            false,
            "InvalidQuantity",
            format!(
                "plan {} has a flat price; quantity must be 1, not {}; billing continues unchanged",
                f.spec.plan.as_str(),
                f.spec.quantity
            ),
        );
        d.trial_ends_at = trial_ends;
        return d;
    }
    if f.tenant_suspended {
        let mut d = Decision::new(
            Phase::Suspended,
            false,
            "TenantSuspended",
            TENANT_SUSPENDED_MESSAGE,
        );
        d.trial_ends_at = trial_ends;
        return d;
    }
    if let Some(grace) = f.entitle_first
        && !billing_established(f.status)
        && !matches!(f.billing, BillingFact::Live { .. })
    {
        return entitled_before_billing(f, grace, Some(current));
    }
    match f.billing {
        BillingFact::Live {
            status,
            class: StatusClass::PaymentProblem | StatusClass::Paused,
        } => {
            let mut d = Decision::new(
                Phase::Suspended,
                false,
                "PaymentFailed",
                format!(
                    "the HubSpot subscription is {status}; features are suspended until it is paid"
                ),
            );
            d.trial_ends_at = trial_ends;
            return d;
        }
        BillingFact::Missing | BillingFact::Cancelled | BillingFact::Unknown => {
            let mut d = Decision::new(
                current,
                false,
                "BillingMissing",
                "no live HubSpot billing record; recreating it",
            );
            d.trial_ends_at = trial_ends;
            return d;
        }
        BillingFact::Failed { message, .. } => {
            let mut d = Decision::new(
                current,
                false,
                "BillingUnreachable",
                format!("could not check the HubSpot billing record: {message}"),
            );
            d.trial_ends_at = trial_ends;
            return d;
        }
        BillingFact::Live { .. } => {}
    }
    stay_in_service(f, current)
}

/// In service and billed (or entitled first): Trialing while the trial runs, else Active; a
/// suspended subscription returns to the phase it was suspended from.
fn stay_in_service(f: &SubscriptionFacts<'_>, current: Phase) -> Decision {
    let trial_ends = f.status.trial_ends_at.as_ref().map(|t| t.0);
    let phase = if current == Phase::Suspended {
        resume_phase(f.status)
    } else {
        current
    };
    match (phase, trial_ends) {
        (Phase::Trialing, Some(ends)) if f.now < ends => {
            let mut d = Decision::new(
                Phase::Trialing,
                true,
                "Trialing",
                format!("free trial until {ends}; billing starts then"),
            );
            d.trial_ends_at = Some(ends);
            d.wake_at = Some(ends);
            d
        }
        _ => {
            let mut d = Decision::new(
                Phase::Active,
                true,
                "Active",
                "billed in HubSpot and entitled",
            );
            d.trial_ends_at = trial_ends;
            d
        }
    }
}

/// Waiting for the end of the paid period (Instant) or a superadmin's ConfirmCancel (Approval).
fn cancel_requested(f: &SubscriptionFacts<'_>, approval: bool) -> Decision {
    let end = f.status.current_period_end.as_ref().map(|t| t.0);
    let trial_ends = f.status.trial_ends_at.as_ref().map(|t| t.0);
    if f.spec.cancellation.is_none() {
        // Withdrawn before the end: back in service; billing is ensured again.
        let back = if trial_ends.is_some_and(|t| f.now < t) {
            Phase::Trialing
        } else {
            Phase::Active
        };
        let mut d = Decision::new(
            back,
            true,
            "CancellationWithdrawn",
            "the tenant withdrew the cancellation",
        );
        d.trial_ends_at = trial_ends;
        if back == Phase::Trialing {
            d.wake_at = trial_ends;
        }
        return d;
    }
    if !approval && end.is_none_or(|e| e <= f.now) {
        return Decision::new(
            Phase::Cancelled,
            true,
            "Cancelled",
            "the paid period ended; features revoked",
        );
    }
    let message = if approval {
        "cancellation requested; waiting for a superadmin to confirm it".to_string()
    } else {
        format!(
            "billing stopped; features stay until {}",
            end.map(|e| e.to_string()).unwrap_or_default()
        )
    };
    let mut d = Decision::new(Phase::CancelRequested, true, "CancelRequested", message);
    d.current_period_end = end;
    d.trial_ends_at = trial_ends;
    d.wake_at = end.filter(|_| !approval);
    d
}

/// Cancelled, Rejected and Failed keep the reason and message they were given.
fn terminal(f: &SubscriptionFacts<'_>, current: Phase) -> Decision {
    let ready = crate::api::conditions::find_condition(
        &f.status.conditions,
        crate::api::conditions::types::READY,
    );
    let (reason, message) = match ready {
        Some(c) => (c.reason.clone(), c.message.clone()),
        None => (
            format!("{current:?}"),
            format!("the subscription is {current:?}"),
        ),
    };
    let mut d = Decision::new(current, current == Phase::Cancelled, &reason, message);
    d.current_period_end = f.status.current_period_end.as_ref().map(|t| t.0);
    d.trial_ends_at = f.status.trial_ends_at.as_ref().map(|t| t.0);
    d
}

#[cfg(test)]
mod tests;

//! EntitleFirst through whole lifecycles: entitled at once, billed right after, Suspended when
//! billing is not established within the grace, back in service once it is.

use super::*;
use crate::api::conditions::types::{BILLED, ENTITLED, READY};
use crate::lifecycle::billing_order::{BILLING_IN_FLIGHT_RECHECK, BILLING_NOT_ESTABLISHED};
use crate::lifecycle::subscription_plan::requeue_after;
use std::time::Duration;

const GRACE: jiff::SignedDuration = jiff::SignedDuration::from_secs(15 * 60);

fn entitled_first(spec: &str) -> World {
    let mut w = World::new(spec, "billing: {order: EntitleFirst}");
    w.entitle_first = Some(GRACE);
    w
}

fn failed() -> BillingFact {
    BillingFact::Failed {
        message: "HubSpot answered 503".into(),
        retryable: true,
    }
}

fn at(offset_secs: i64) -> String {
    (ts(T0) + jiff::SignedDuration::from_secs(offset_secs)).to_string()
}

#[test]
fn entering_service_makes_no_billing_call_and_grants_at_once() {
    let w = entitled_first("{listing: ro, plan: standard, quantity: 3}");
    let step = plan_billing(&w.observe(T0));
    assert_eq!(step.target.phase, Phase::Active);
    assert_eq!(step.intent, BillingIntent::None, "entitle first, bill next");
    let mut w = w;
    // HubSpot would fail, but is not asked.
    let d = w.reconcile(T0, &failed());
    assert_eq!(d.phase, Phase::Active);
    assert_eq!(w.phases(), vec![Phase::Provisioning, Phase::Active]);
    assert_eq!(w.condition(ENTITLED), ("True".into(), "Granted".into()));
    assert_eq!(w.condition(READY), ("True".into(), "BillingPending".into()));
    assert_eq!(w.condition(BILLED), ("False".into(), "Pending".into()));
    assert_eq!(
        requeue_after(&d, ts(T0)),
        std::time::Duration::from_millis(50),
        "the billing call follows at once"
    );
}

#[test]
fn the_next_reconcile_bills_and_billed_turns_true() {
    let mut w = entitled_first("{listing: ro, plan: standard, quantity: 3}");
    w.reconcile(T0, &live("active"));
    assert_eq!(
        plan_billing(&w.observe(&at(1))).intent,
        BillingIntent::Ensure
    );
    let d = w.reconcile(&at(1), &live("active"));
    assert_eq!(d.phase, Phase::Active);
    assert_eq!((d.reason.as_str(), d.ready), ("Active", true));
    assert_eq!(w.condition(BILLED), ("True".into(), "Live".into()));
    assert_eq!(w.phases(), vec![Phase::Provisioning, Phase::Active]);
}

#[test]
fn while_the_billing_call_runs_nothing_is_due_and_nothing_is_written() {
    let mut w = entitled_first("{listing: ro, plan: standard, quantity: 3}");
    // Entering service at a sub-second instant: stored in whole seconds.
    w.reconcile("2026-11-01T00:00:00.400Z", &live("active"));
    assert!(w.wrote);
    assert_eq!(
        w.requeue,
        Duration::from_millis(50),
        "billing follows at once"
    );
    // The next reconcile starts the call in the pool and goes on without its outcome: the
    // same status (the grace's end named from the stored start), so no write, and no look
    // again before the call's wake-up, bar a lost one.
    w.billing_in_flight = true;
    let d = w.reconcile("2026-11-01T00:00:00.600Z", &live("active"));
    assert_eq!((d.phase, d.ready), (Phase::Active, true));
    assert!(!w.wrote, "nothing new to report while the call runs");
    assert_eq!(
        w.requeue,
        BILLING_IN_FLIGHT_RECHECK + Duration::from_millis(50)
    );
    assert_eq!(w.condition(BILLED), ("False".into(), "Pending".into()));
    // The outcome: Billed, one write.
    w.billing_in_flight = false;
    w.reconcile(&at(40), &live("active"));
    assert!(w.wrote);
    assert_eq!(w.condition(BILLED), ("True".into(), "Live".into()));
}

#[test]
fn a_call_in_flight_is_looked_at_again_by_the_grace_end_at_the_latest() {
    let mut w = entitled_first("{listing: ro, plan: standard, quantity: 3}");
    w.reconcile(T0, &live("active"));
    w.billing_in_flight = true;
    w.reconcile(&at(15 * 60 - 10), &live("active"));
    assert_eq!(
        w.requeue,
        Duration::from_secs(10) + Duration::from_millis(50)
    );
}

#[test]
fn billing_failing_past_the_grace_suspends_with_the_reason_and_recovers() {
    let mut w = entitled_first("{listing: ro, plan: standard, quantity: 3}");
    w.reconcile(T0, &live("active"));
    // Within the grace: still usable; Billed says why not billed.
    let d = w.reconcile(&at(60), &failed());
    assert_eq!((d.phase, d.ready), (Phase::Active, true));
    assert_eq!(w.condition(BILLED), ("False".into(), "Failed".into()));
    assert!(d.message.contains("HubSpot answered 503"), "{}", d.message);
    assert_eq!(
        d.wake_at,
        Some(ts(T0) + GRACE),
        "looks again when the grace ends"
    );
    // The grace ends: Suspended, features revoked, a Warning Event naming the reason.
    let d = w.reconcile(&at(15 * 60), &failed());
    assert_eq!(d.phase, Phase::Suspended);
    assert_eq!(
        w.condition(READY),
        ("False".into(), BILLING_NOT_ESTABLISHED.into())
    );
    assert_eq!(w.condition(ENTITLED), ("False".into(), "Revoked".into()));
    assert!(
        d.message.contains("within the EntitleFirst grace of 15m"),
        "{}",
        d.message
    );
    let warning = w
        .events
        .iter()
        .find(|e| e.reason == BILLING_NOT_ESTABLISHED)
        .expect("a BillingNotEstablished Event");
    assert_eq!(warning.type_, kube::runtime::events::EventType::Warning);
    // Still failing: stays Suspended, keeps trying, no second Event.
    assert_eq!(
        plan_billing(&w.observe(&at(16 * 60))).intent,
        BillingIntent::Ensure
    );
    w.reconcile(&at(16 * 60), &failed());
    assert!(w.events.iter().all(|e| e.reason != BILLING_NOT_ESTABLISHED));
    // Billing succeeds: back to Active.
    let d = w.reconcile(&at(17 * 60), &live("active"));
    assert_eq!((d.phase, d.ready), (Phase::Active, true));
    assert_eq!(w.condition(BILLED), ("True".into(), "Live".into()));
    assert_eq!(
        w.phases(),
        vec![
            Phase::Provisioning,
            Phase::Active,
            Phase::Suspended,
            Phase::Active
        ]
    );
}

#[test]
fn a_trial_starts_at_once_too() {
    let mut w = entitled_first("{listing: ro, plan: standard, quantity: 2, trial: true}");
    let d = w.reconcile(T0, &live("active"));
    assert_eq!(d.phase, Phase::Trialing);
    assert_eq!(
        d.wake_at,
        Some(ts(T0)),
        "billing follows before the trial ends"
    );
    let d = w.reconcile(&at(5), &failed());
    assert_eq!(d.phase, Phase::Trialing);
    let d = w.reconcile(&at(5 + 15 * 60), &failed());
    assert_eq!(d.phase, Phase::Suspended);
    let d = w.reconcile(&at(20 * 60), &live("active"));
    assert_eq!(d.phase, Phase::Trialing, "back to the trial it was in");
}

#[test]
fn once_billed_a_missing_record_is_healed_as_under_bill_first() {
    let mut w = entitled_first("{listing: ro, plan: standard, quantity: 3}");
    w.reconcile(T0, &live("active"));
    w.reconcile(&at(1), &live("active"));
    w.status
        .hubspot
        .get_or_insert_with(Default::default)
        .deal_id = Some("d1".into());
    // Long past the grace, the record cannot be read or recreated: not suspended.
    let d = w.decide(&at(3600), &failed());
    assert_eq!(d.phase, Phase::Active);
    assert_eq!(d.reason, "BillingUnreachable");
}

#[test]
fn bill_first_waits_for_billing_as_before() {
    let mut w = World::new("{listing: ro, plan: standard, quantity: 3}", "");
    let d = w.reconcile(T0, &failed());
    assert_eq!(d.phase, Phase::Provisioning);
    assert!(
        crate::api::conditions::find_condition(&w.status.conditions, ENTITLED)
            .is_some_and(|c| c.reason == "Pending")
    );
}

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::tenant_subscription::Transition;
use crate::lifecycle::fixtures::*;

fn live(status: &str) -> BillingFact {
    BillingFact::from_recorded(Some(status))
}

struct World {
    spec: TenantSubscriptionSpec,
    status: TenantSubscriptionStatus,
    listing: Option<ListingSpec>,
    tenant_suspended: bool,
    refusal: Option<Refusal>,
}

impl World {
    fn new(spec: &str, listing_extra: &str) -> World {
        World {
            spec: subscription(spec),
            status: TenantSubscriptionStatus::default(),
            listing: Some(listing(listing_extra)),
            tenant_suspended: false,
            refusal: None,
        }
    }

    fn decide(&self, now: &str, billing: &BillingFact) -> Decision {
        decide(&SubscriptionFacts {
            now: ts(now),
            spec: &self.spec,
            status: &self.status,
            listing: self.listing.as_ref(),
            tenant_suspended: self.tenant_suspended,
            refusal: self.refusal.as_ref(),
            billing,
        })
    }

    /// What a reconcile does: decide, call billing as the target needs, decide again, record.
    fn reconcile(&mut self, now: &str, hubspot: &BillingFact) -> Decision {
        let recorded = BillingFact::from_recorded(
            self.status
                .hubspot
                .as_ref()
                .and_then(|h| h.status.as_deref()),
        );
        let first = self.decide(now, &recorded);
        let changed = plan_changed(&self.spec, &self.status, self.listing.as_ref());
        let fact = match billing_intent(first.phase, self.status.phase, &recorded, changed) {
            BillingIntent::None => recorded,
            BillingIntent::Cancel => BillingFact::Cancelled,
            BillingIntent::Ensure | BillingIntent::ReadStatus | BillingIntent::ChangePlan => {
                hubspot.clone()
            }
        };
        let d = self.decide(now, &fact);
        self.record(now, &d, &fact);
        d
    }

    fn record(&mut self, now: &str, d: &Decision, fact: &BillingFact) {
        let from = self.status.phase;
        if from != Some(d.phase) {
            if let Some(via) = d.via {
                self.status.history.push(transition(from, via, now));
                self.status
                    .history
                    .push(transition(Some(via), d.phase, now));
            } else {
                self.status.history.push(transition(from, d.phase, now));
            }
        }
        self.status.phase = Some(d.phase);
        self.status.trial_ends_at = d.trial_ends_at.map(Time);
        self.status.current_period_end = d.current_period_end.map(Time);
        if let Some(recorded) = fact.recorded() {
            self.status
                .hubspot
                .get_or_insert_with(Default::default)
                .status = Some(recorded);
        }
        self.status.conditions = vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: "Ready".into(),
            status: if d.ready { "True" } else { "False" }.into(),
            reason: d.reason.clone(),
            message: d.message.clone(),
            last_transition_time: Time(ts(now)),
            observed_generation: None,
        }];
    }

    fn phases(&self) -> Vec<Phase> {
        self.status.history.iter().map(|t| t.to).collect()
    }
}

fn transition(from: Option<Phase>, to: Phase, at: &str) -> Transition {
    Transition {
        from,
        to,
        at: Time(ts(at)),
        actor: "operator".into(),
        reason: None,
        action: None,
    }
}

const T0: &str = "2026-11-01T00:00:00Z";

#[test]
fn instant_goes_requested_provisioning_active_in_one_reconcile() {
    let mut w = World::new("{listing: ro, plan: standard, quantity: 3}", "");
    let d = w.reconcile(T0, &live("active"));
    assert_eq!(d.phase, Phase::Active);
    assert_eq!(w.phases(), vec![Phase::Provisioning, Phase::Active]);
    assert_eq!(d.activated_at, Some(ts(T0)));
    // Steady: no billing call, nothing changes.
    let recorded = live("active");
    assert_eq!(
        billing_intent(Phase::Active, Some(Phase::Active), &recorded, false),
        BillingIntent::None
    );
    assert_eq!(
        w.reconcile("2026-11-02T00:00:00Z", &live("active")).phase,
        Phase::Active
    );
    assert_eq!(w.status.history.len(), 2);
}

#[test]
fn billing_failure_keeps_provisioning_and_says_why() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    let failed = BillingFact::Failed {
        message: "HubSpot answered 503".into(),
        retryable: true,
    };
    let d = w.reconcile(T0, &failed);
    assert_eq!(
        (d.phase, d.ready, d.reason.as_str()),
        (Phase::Provisioning, false, "Retrying")
    );
    // The next reconcile ensures again and succeeds.
    let d = w.reconcile("2026-11-01T00:01:00Z", &live("active"));
    assert_eq!(d.phase, Phase::Active);
}

#[test]
fn refusals_reject_before_any_billing() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.refusal = Some(Refusal::new(
        "ListingNotPublished",
        "spec.listing",
        "coming soon",
    ));
    let d = w.decide(T0, &BillingFact::Unknown);
    assert_eq!(
        (d.phase, d.reason.as_str()),
        (Phase::Rejected, "ListingNotPublished")
    );
    // Entering Rejected cancels once (a crash may have left a record), then never again.
    assert_eq!(
        billing_intent(d.phase, None, &BillingFact::Unknown, false),
        BillingIntent::Cancel
    );
    assert_eq!(
        billing_intent(
            d.phase,
            Some(Phase::Rejected),
            &BillingFact::Cancelled,
            false
        ),
        BillingIntent::None
    );
    w.reconcile(T0, &BillingFact::Unknown);
    // Terminal phases keep their reason.
    w.refusal = None;
    let d = w.reconcile("2026-11-05T00:00:00Z", &live("active"));
    assert_eq!(
        (d.phase, d.reason.as_str()),
        (Phase::Rejected, "ListingNotPublished")
    );
}

#[test]
fn a_plan_change_in_service_rebills() {
    let mut w = World::new("{listing: ro, plan: standard, quantity: 3}", "");
    w.reconcile(T0, &live("active"));
    let ids = w.status.hubspot.get_or_insert_with(Default::default);
    ids.billed_plan = Some("standard".into());
    ids.billed_quantity = Some(3);
    assert!(!plan_changed(&w.spec, &w.status, w.listing.as_ref()));
    w.spec.quantity = 5;
    assert!(plan_changed(&w.spec, &w.status, w.listing.as_ref()));
    let recorded = live("active");
    assert_eq!(
        billing_intent(Phase::Active, Some(Phase::Active), &recorded, true),
        BillingIntent::ChangePlan
    );
    // Not while suspended or cancelling: those phases bill nothing new.
    assert_eq!(
        billing_intent(Phase::Suspended, Some(Phase::Suspended), &recorded, true),
        BillingIntent::None
    );
    // A plan that does not exist is not a plan change; the condition says why.
    w.spec.plan = "gold".into();
    assert!(!plan_changed(&w.spec, &w.status, w.listing.as_ref()));
    let d = w.decide("2026-11-02T00:00:00Z", &recorded);
    assert_eq!(
        (d.phase, d.ready, d.reason.as_str()),
        (Phase::Active, false, "PlanNotFound")
    );
    // Flat plans take quantity 1 only.
    w.spec.plan = "flat".into();
    assert!(!plan_changed(&w.spec, &w.status, w.listing.as_ref()));
    w.spec.quantity = 1;
    assert!(plan_changed(&w.spec, &w.status, w.listing.as_ref()));
}

#[test]
fn a_listing_not_yet_synced_waits_instead_of_rejecting() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.refusal = Some(Refusal::new(
        "ListingNotFound",
        "spec.listing",
        "no listing",
    ));
    let d = w.reconcile(T0, &live("active"));
    assert_eq!((d.phase, d.ready), (Phase::Requested, false));
    assert_eq!(w.status.hubspot, None, "nothing billed while waiting");
    w.refusal = None;
    assert_eq!(w.reconcile(T0, &live("active")).phase, Phase::Active);
}

#[test]
fn trial_then_active() {
    let mut w = World::new("{listing: ro, plan: standard, trial: true}", "");
    let d = w.reconcile(T0, &live("scheduled"));
    assert_eq!(d.phase, Phase::Trialing);
    assert_eq!(d.trial_ends_at, Some(ts("2026-11-15T00:00:00Z")));
    assert_eq!(d.wake_at, d.trial_ends_at);
    assert_eq!(
        w.reconcile("2026-11-10T00:00:00Z", &live("scheduled"))
            .phase,
        Phase::Trialing
    );
    let d = w.reconcile("2026-11-15T00:00:01Z", &live("active"));
    assert_eq!(d.phase, Phase::Active);
    assert_eq!(
        w.phases(),
        vec![Phase::Provisioning, Phase::Trialing, Phase::Active]
    );
}

#[test]
fn cancelling_during_the_trial_ends_at_trial_end() {
    let mut w = World::new("{listing: ro, plan: standard, trial: true}", "");
    w.reconcile(T0, &live("scheduled"));
    w.spec.cancellation = Some(serde_json::from_str("{}").unwrap());
    let d = w.reconcile("2026-11-03T00:00:00Z", &live("scheduled"));
    assert_eq!(d.phase, Phase::CancelRequested);
    assert_eq!(d.current_period_end, Some(ts("2026-11-15T00:00:00Z")));
    assert_eq!(
        w.status.hubspot.as_ref().unwrap().status.as_deref(),
        Some(CANCELLED_MARK)
    );
    assert_eq!(
        w.reconcile("2026-11-14T00:00:00Z", &live("active")).phase,
        Phase::CancelRequested
    );
    assert_eq!(
        w.reconcile("2026-11-15T00:00:00Z", &live("active")).phase,
        Phase::Cancelled
    );
}

#[test]
fn cancellation_at_period_end_and_immediately() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.reconcile(T0, &live("active"));
    w.spec.cancellation = Some(serde_json::from_str("{}").unwrap());
    let d = w.reconcile("2026-11-20T00:00:00Z", &live("active"));
    assert_eq!(d.phase, Phase::CancelRequested);
    assert_eq!(d.current_period_end, Some(ts("2026-12-01T00:00:00Z")));
    assert_eq!(
        w.reconcile("2026-12-01T00:00:00Z", &live("active")).phase,
        Phase::Cancelled
    );

    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.reconcile(T0, &live("active"));
    w.spec.cancellation = Some(serde_json::from_str(r#"{"effective":"Immediately"}"#).unwrap());
    assert_eq!(
        w.reconcile("2026-11-20T00:00:00Z", &live("active")).phase,
        Phase::Cancelled
    );
}

#[test]
fn withdrawing_a_cancellation_resumes_and_rebills() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.reconcile(T0, &live("active"));
    w.spec.cancellation = Some(serde_json::from_str("{}").unwrap());
    w.reconcile("2026-11-20T00:00:00Z", &live("active"));
    w.spec.cancellation = None;
    let recorded = BillingFact::Cancelled;
    let first = w.decide("2026-11-21T00:00:00Z", &recorded);
    assert_eq!(first.phase, Phase::Active);
    assert_eq!(
        billing_intent(first.phase, Some(Phase::CancelRequested), &recorded, false),
        BillingIntent::Ensure
    );
    assert_eq!(
        w.reconcile("2026-11-21T00:00:00Z", &live("active")).phase,
        Phase::Active
    );
}

#[test]
fn payment_failure_suspends_and_recovery_resumes() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.reconcile(T0, &live("active"));
    // A webhook or the audit reports past_due: recorded, then decided.
    w.status.hubspot.as_mut().unwrap().status = Some("past_due".into());
    let d = w.reconcile("2026-12-02T00:00:00Z", &live("past_due"));
    assert_eq!(
        (d.phase, d.reason.as_str()),
        (Phase::Suspended, "PaymentFailed")
    );
    // Suspended re-reads the status; still unpaid → still suspended.
    assert_eq!(
        billing_intent(
            Phase::Suspended,
            Some(Phase::Suspended),
            &live("past_due"),
            false
        ),
        BillingIntent::ReadStatus
    );
    assert_eq!(
        w.reconcile("2026-12-03T00:00:00Z", &live("unpaid")).phase,
        Phase::Suspended
    );
    assert_eq!(
        w.reconcile("2026-12-04T00:00:00Z", &live("active")).phase,
        Phase::Active
    );
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
fn suspended_tenant_suspends_and_returns_to_its_phase() {
    let mut w = World::new("{listing: ro, plan: standard, trial: true}", "");
    w.reconcile(T0, &live("scheduled"));
    w.tenant_suspended = true;
    let d = w.reconcile("2026-11-02T00:00:00Z", &live("scheduled"));
    assert_eq!(
        (d.phase, d.reason.as_str()),
        (Phase::Suspended, "TenantSuspended")
    );
    w.tenant_suspended = false;
    assert_eq!(
        w.reconcile("2026-11-03T00:00:00Z", &live("scheduled"))
            .phase,
        Phase::Trialing
    );
}

#[test]
fn a_record_cancelled_by_hand_is_recreated() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.reconcile(T0, &live("active"));
    let missing = BillingFact::from_recorded(Some("canceled"));
    // Our own cancellation mark and a hand-cancelled record differ: only ours is final.
    assert_eq!(missing, BillingFact::Cancelled);
    let by_hand = BillingFact::Missing;
    assert_eq!(
        billing_intent(Phase::Active, Some(Phase::Active), &by_hand, false),
        BillingIntent::Ensure
    );
    let d = w.decide("2026-11-10T00:00:00Z", &by_hand);
    assert_eq!((d.phase, d.ready), (Phase::Active, false));
    w.status.hubspot.as_mut().unwrap().status = Some("missing".into());
    assert_eq!(
        w.reconcile("2026-11-10T00:00:00Z", &live("active")).phase,
        Phase::Active
    );
}

#[test]
fn approval_listings_wait_for_actions() {
    let mut w = World::new("{listing: ro, plan: standard}", "activation: Approval");
    for phase in [Phase::Requested, Phase::Invoiced, Phase::Paid] {
        w.status.phase = Some(phase);
        let d = w.reconcile(T0, &live("active"));
        assert_eq!(d.phase, phase, "no automatic move out of {phase:?}");
        assert!(!d.ready);
    }
    // After Approve the action sets Provisioning; billing then activates.
    w.status.phase = Some(Phase::Provisioning);
    assert_eq!(w.reconcile(T0, &live("active")).phase, Phase::Active);
    // Cancellation of an approval subscription waits for ConfirmCancel.
    w.spec.cancellation = Some(serde_json::from_str("{}").unwrap());
    assert_eq!(
        w.reconcile("2026-11-05T00:00:00Z", &live("active")).phase,
        Phase::CancelRequested
    );
    assert_eq!(
        w.reconcile("2027-03-01T00:00:00Z", &live("active")).phase,
        Phase::CancelRequested
    );
}

#[test]
fn a_cancellation_before_activation_bills_nothing() {
    let mut w = World::new("{listing: ro, plan: standard}", "activation: Approval");
    w.status.phase = Some(Phase::Invoiced);
    w.spec.cancellation = Some(serde_json::from_str("{}").unwrap());
    assert_eq!(w.reconcile(T0, &live("active")).phase, Phase::Cancelled);
}

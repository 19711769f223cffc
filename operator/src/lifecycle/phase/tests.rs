use super::*;
use crate::lifecycle::fixtures::*;

mod entitle_first;
use crate::lifecycle::subscription_plan::{
    Acted, Observation, decide_after_billing, hold_on_entitlement_failure, plan_billing, report,
};

fn live(status: &str) -> BillingFact {
    BillingFact::from_recorded(Some(status))
}

/// A subscription driven through whole lifecycles by the reconciler's own plan
/// ([`crate::lifecycle::subscription_plan`]), with HubSpot answering `hubspot` to every call.
struct World {
    spec: TenantSubscriptionSpec,
    status: TenantSubscriptionStatus,
    listing: Option<ListingSpec>,
    tenant_suspended: bool,
    refusal: Option<Refusal>,
    /// Make the next Entitlement write fail.
    entitlements_fail: bool,
    /// The EntitleFirst grace, when entitled first.
    entitle_first: Option<jiff::SignedDuration>,
    /// The Events the last reconcile planned.
    events: Vec<crate::lifecycle::subscription_plan::PlannedEvent>,
    /// Background billing calls run without finishing: a reconcile that needs one starts it
    /// and goes on with the recorded fact, as the reconciler does while the pool works.
    billing_in_flight: bool,
    /// Whether the last reconcile had a status to write, and when it looks again.
    wrote: bool,
    requeue: std::time::Duration,
}

impl World {
    fn new(spec: &str, listing_extra: &str) -> World {
        World {
            spec: subscription(spec),
            status: TenantSubscriptionStatus::default(),
            listing: Some(listing(listing_extra)),
            tenant_suspended: false,
            refusal: None,
            entitlements_fail: false,
            entitle_first: None,
            events: Vec::new(),
            billing_in_flight: false,
            wrote: false,
            requeue: std::time::Duration::ZERO,
        }
    }

    fn observe(&self, now: &str) -> Observation<'_> {
        Observation {
            now: ts(now),
            generation: Some(1),
            spec: &self.spec,
            status: &self.status,
            listing: self.listing.as_ref(),
            tenant_suspended: self.tenant_suspended,
            refusal: self.refusal.as_ref(),
            connection_tested: None,
            news: None,
            entitle_first: self.entitle_first,
            billing_in_flight: false,
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
            entitle_first: self.entitle_first,
            billing_in_flight: false,
        })
    }

    /// One reconcile, as the controller runs it: plan billing, "call" HubSpot, decide again,
    /// grant (or fail to), report; the reported status becomes the new status, as stored (in
    /// whole seconds).
    fn reconcile(&mut self, now: &str, hubspot: &BillingFact) -> Decision {
        let (decision, report) = {
            let mut o = self.observe(now);
            let step = plan_billing(&o);
            let fact = match step.intent {
                _ if step.background && self.billing_in_flight => {
                    o.billing_in_flight = true;
                    o.recorded()
                }
                BillingIntent::None => o.recorded(),
                BillingIntent::Cancel => BillingFact::Cancelled,
                BillingIntent::Ensure | BillingIntent::ReadStatus | BillingIntent::ChangePlan => {
                    hubspot.clone()
                }
            };
            let mut decision = decide_after_billing(&o, &fact);
            let previously: Vec<String> = self
                .status
                .entitlements
                .iter()
                .map(|f| f.as_str().to_string())
                .collect();
            let desired = crate::lifecycle::desired_entitlements(
                &decision,
                "sub",
                None,
                &previously,
                ts(now),
            );
            let (granted, error) = if self.entitlements_fail {
                decision = hold_on_entitlement_failure(self.status.phase, decision, "denied");
                (previously, Some("denied".to_string()))
            } else {
                (
                    crate::lifecycle::entitlements::granted_features(&desired),
                    None,
                )
            };
            let report = report(
                &o,
                &decision,
                &Acted {
                    fact: Some(&fact),
                    granted,
                    entitlement_error: error,
                    ..Acted::default()
                },
            );
            (decision, report)
        };
        self.wrote = report.status != self.status;
        self.status = serde_json::from_value(serde_json::to_value(&report.status).unwrap())
            .expect("the status reads back");
        self.events = report.events;
        self.requeue = report.requeue;
        decision
    }

    fn condition(&self, type_: &str) -> (String, String) {
        let c = crate::api::conditions::find_condition(&self.status.conditions, type_)
            .unwrap_or_else(|| panic!("no {type_} condition"));
        (c.status.clone(), c.reason.clone())
    }

    fn phases(&self) -> Vec<Phase> {
        self.status.history.iter().map(|t| t.to).collect()
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

#[test]
fn a_refused_request_that_was_never_billed_says_so() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.refusal = Some(Refusal::new(
        "ListingNotPublished",
        "spec.listing",
        "coming soon",
    ));
    assert_eq!(w.reconcile(T0, &live("active")).phase, Phase::Rejected);
    assert_eq!(
        w.condition("Billed"),
        ("False".to_string(), "NotBilled".to_string()),
        "never billed is not 'billing cancelled in HubSpot'"
    );
}

#[test]
fn a_request_waiting_for_its_tenant_records_a_neutral_first_transition() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.refusal = Some(Refusal::new(
        "TenantNotFound",
        "metadata.namespace",
        "there is no Tenant",
    ));
    assert_eq!(w.reconcile(T0, &live("active")).phase, Phase::Requested);
    let first = &w.status.history[0];
    assert_eq!(
        first.reason.as_deref(),
        Some(crate::lifecycle::subscription_plan::REQUEST_RECEIVED)
    );
    assert_eq!(w.condition("Ready").1, "TenantNotFound");
    assert_eq!(w.condition("Entitled").1, "Pending");
    w.refusal = None;
    assert_eq!(w.reconcile(T0, &live("active")).phase, Phase::Active);
    assert_eq!(
        w.condition("Entitled"),
        ("True".to_string(), "Granted".to_string())
    );
}

#[test]
fn entitlements_that_cannot_be_written_hold_provisioning_then_recover() {
    let mut w = World::new("{listing: ro, plan: standard}", "");
    w.entitlements_fail = true;
    let d = w.reconcile(T0, &live("active"));
    assert_eq!(
        (d.phase, d.ready, d.reason.as_str()),
        (Phase::Provisioning, false, "Retrying")
    );
    assert_eq!(w.condition("Entitled").1, "Failed");
    assert_eq!(w.condition("Billed").1, "Live", "billing stays in place");
    w.entitlements_fail = false;
    assert_eq!(
        w.reconcile("2026-11-01T00:00:05Z", &live("active")).phase,
        Phase::Active
    );
    // Failing in service keeps the phase.
    w.entitlements_fail = true;
    let d = w.reconcile("2026-11-02T00:00:00Z", &live("active"));
    assert_eq!((d.phase, d.ready), (Phase::Active, false));
}

use super::*;
use crate::api::tenant_subscription::TenantSubscriptionStatus;
use crate::lifecycle::fixtures::*;

const T0: &str = "2026-11-01T00:00:00Z";

fn active_status() -> TenantSubscriptionStatus {
    TenantSubscriptionStatus {
        phase: Some(Phase::Active),
        hubspot: Some(HubSpotIds {
            deal_id: Some("d1".into()),
            status: Some("active".into()),
            ..HubSpotIds::default()
        }),
        ..TenantSubscriptionStatus::default()
    }
}

fn observe<'a>(
    spec: &'a TenantSubscriptionSpec,
    status: &'a TenantSubscriptionStatus,
    listing: &'a ListingSpec,
    news: Option<&'a BillingNews>,
) -> Observation<'a> {
    Observation {
        now: ts(T0),
        generation: Some(3),
        spec,
        status,
        listing: Some(listing),
        tenant_suspended: false,
        refusal: None,
        connection_tested: None,
        news,
        entitle_first: None,
        billing_in_flight: false,
    }
}

#[test]
fn drift_found_in_service_is_healed_by_the_ensure() {
    let spec = subscription("{listing: ro, plan: standard}");
    let listing = listing("");
    let status = active_status();
    let quiet = plan_billing(&observe(&spec, &status, &listing, None));
    assert_eq!(
        quiet.intent,
        BillingIntent::None,
        "steady state calls nothing"
    );
    assert!(!quiet.fresh_read, "nor reads anything");
    let news = BillingNews {
        fact: BillingFact::from_recorded(Some("active")),
        source: "audit",
        finding: Some("invoicing was off".into()),
        recheck: None,
    };
    let healing = plan_billing(&observe(&spec, &status, &listing, Some(&news)));
    assert_eq!(healing.intent, BillingIntent::Ensure);
    // News without a finding only records that HubSpot agrees.
    let agree = BillingNews {
        finding: None,
        ..news.clone()
    };
    let o = observe(&spec, &status, &listing, Some(&agree));
    assert_eq!(plan_billing(&o).intent, BillingIntent::None);
    let d = decide_after_billing(&o, &o.recorded());
    let r = report(&o, &d, &Acted::default());
    let synced = crate::api::conditions::find_condition(&r.status.conditions, "Synced").unwrap();
    assert_eq!(synced.reason, "InSync");
    assert_eq!(r.status.history.len(), 0, "no transition");
    assert_eq!(r.status.observed_generation, Some(3));
}

#[test]
fn a_finding_is_an_event_and_a_failed_heal_says_drift_found() {
    let spec = subscription("{listing: ro, plan: standard}");
    let listing = listing("");
    let status = active_status();
    let news = BillingNews {
        fact: BillingFact::Missing,
        source: "webhook",
        finding: Some("the record was cancelled by hand".into()),
        recheck: Some("1788597072520".into()),
    };
    let o = observe(&spec, &status, &listing, Some(&news));
    let failed = BillingFact::Failed {
        message: "HubSpot answered 503".into(),
        retryable: true,
    };
    let d = decide_after_billing(&o, &failed);
    let r = report(
        &o,
        &d,
        &Acted {
            fact: Some(&failed),
            ..Acted::default()
        },
    );
    assert!(r.events.iter().any(|e| e.reason == "DriftFound"));
    let synced = crate::api::conditions::find_condition(&r.status.conditions, "Synced").unwrap();
    assert_eq!(
        (synced.status.as_str(), synced.reason.as_str()),
        ("False", "DriftFound")
    );
    assert_eq!(r.retry.as_deref(), Some("HubSpot answered 503"));
}

#[test]
fn transitions_and_plan_changes_are_events() {
    let spec = subscription("{listing: ro, plan: standard, quantity: 5}");
    let listing = listing("");
    let status = active_status();
    let o = observe(&spec, &status, &listing, None);
    let live = BillingFact::from_recorded(Some("active"));
    let d = decide_after_billing(&o, &live);
    let r = report(
        &o,
        &d,
        &Acted {
            fact: Some(&live),
            plan_changed_from: Some(("standard".into(), 3)),
            repairs: &["retired a duplicate".to_string()],
            ..Acted::default()
        },
    );
    let reasons: Vec<&str> = r.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["PlanChanged", "BillingRepaired"]);
    assert!(
        r.events[0].note.contains("was standard × 3"),
        "{:?}",
        r.events[0]
    );
}

#[test]
fn requeue_waits_for_the_next_due_change_at_most_the_resync() {
    let mut d = decide_after_billing(
        &observe(
            &subscription("{listing: ro, plan: standard}"),
            &active_status(),
            &listing(""),
            None,
        ),
        &BillingFact::from_recorded(Some("active")),
    );
    assert_eq!(requeue_after(&d, ts(T0)), RESYNC);
    d.wake_at = Some(ts("2026-11-01T00:00:30Z"));
    assert_eq!(
        requeue_after(&d, ts(T0)),
        Duration::from_secs(30) + Duration::from_millis(50)
    );
    d.wake_at = Some(ts("2027-01-01T00:00:00Z"));
    assert_eq!(
        requeue_after(&d, ts(T0)),
        RESYNC + Duration::from_millis(50)
    );
}

#[test]
fn a_promoted_price_whose_periods_are_over_is_billed_anew_at_the_list_price() {
    use crate::api::tenant_subscription::AppliedPromotion;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let spec = subscription("{listing: ro, plan: standard}");
    let listing = listing("");
    let mut status = active_status();
    if let Some(ids) = status.hubspot.as_mut() {
        ids.billed_promotion = Some("spring".into());
    }
    let kept = |until: &str| AppliedPromotion {
        name: "spring".into(),
        plan: "standard".into(),
        list_price: "12.00".into(),
        price: "9.60".into(),
        discount_percentage: Some(20),
        discount_amount: None,
        periods: 3,
        kept_until: Time(ts(until)),
    };
    status.promotion = Some(kept("2026-12-01T00:00:00Z"));
    let o = observe(&spec, &status, &listing, None);
    assert_eq!(plan_billing(&o).intent, BillingIntent::None, "still kept");
    status.promotion = Some(kept(T0));
    let o = observe(&spec, &status, &listing, None);
    assert_eq!(plan_billing(&o).intent, BillingIntent::ChangePlan);
}

#[test]
fn entitled_first_subscriptions_bill_in_the_background_once_in_service() {
    let spec = subscription("{listing: ro, plan: standard}");
    let listing = listing("");
    let grace = Some(jiff::SignedDuration::from_secs(900));
    let new = TenantSubscriptionStatus::default();
    let mut o = observe(&spec, &new, &listing, None);
    o.entitle_first = grace;
    let entering = plan_billing(&o);
    assert_eq!(entering.intent, BillingIntent::None, "entitled at once");
    assert!(!entering.background);
    assert!(
        entering.fresh_read,
        "a transition is decided from a fresh read"
    );

    let entitled = TenantSubscriptionStatus {
        phase: Some(Phase::Active),
        ..TenantSubscriptionStatus::default()
    };
    let mut o = observe(&spec, &entitled, &listing, None);
    o.entitle_first = grace;
    let billing = plan_billing(&o);
    assert_eq!(billing.intent, BillingIntent::Ensure);
    assert!(billing.background, "the reconcile does not wait on HubSpot");
    assert!(billing.fresh_read, "a call is started from a fresh read");
    o.billing_in_flight = true;
    let running = plan_billing(&o);
    assert_eq!(running.intent, BillingIntent::Ensure);
    assert!(!running.fresh_read, "a call already running starts nothing");
    o.billing_in_flight = false;

    o.entitle_first = None;
    let bill_first = plan_billing(&o);
    assert_eq!(bill_first.intent, BillingIntent::Ensure);
    assert!(!bill_first.background, "BillFirst calls inline");

    let mut cancelling = spec.clone();
    cancelling.cancellation = Some(serde_json::from_str(r#"{"effective":"Immediately"}"#).unwrap());
    let status = active_status();
    let mut o = observe(&cancelling, &status, &listing, None);
    o.entitle_first = grace;
    let step = plan_billing(&o);
    assert_eq!(step.intent, BillingIntent::Cancel);
    assert!(!step.background, "a cancellation calls inline");
}

#[test]
fn a_failed_billing_stays_reported_while_its_retry_runs_in_the_background() {
    let spec = subscription("{listing: ro, plan: standard}");
    let listing = listing("");
    let entitled = TenantSubscriptionStatus {
        phase: Some(Phase::Active),
        ..TenantSubscriptionStatus::default()
    };
    let mut o = observe(&spec, &entitled, &listing, None);
    o.entitle_first = Some(jiff::SignedDuration::from_secs(900));
    let billed = |r: &Report| {
        crate::api::conditions::find_condition(&r.status.conditions, "Billed")
            .map(|c| c.reason.clone())
    };
    // Before any outcome: Pending.
    let pending = report(
        &o,
        &decide_after_billing(&o, &o.recorded()),
        &Acted::default(),
    );
    assert_eq!(billed(&pending).as_deref(), Some("Pending"));
    // The pool's outcome: Failed.
    let failed_fact = BillingFact::Failed {
        message: "HubSpot said 502".into(),
        retryable: true,
    };
    let failed = report(
        &o,
        &decide_after_billing(&o, &failed_fact),
        &Acted {
            fact: Some(&failed_fact),
            ..Acted::default()
        },
    );
    assert_eq!(billed(&failed).as_deref(), Some("Failed"));
    // The retry runs in the pool; the reconcile meanwhile knows nothing new: Failed stands,
    // not flipped back to Pending.
    let mut o = observe(&spec, &failed.status, &listing, None);
    o.entitle_first = Some(jiff::SignedDuration::from_secs(900));
    let waiting = report(
        &o,
        &decide_after_billing(&o, &o.recorded()),
        &Acted::default(),
    );
    assert_eq!(billed(&waiting).as_deref(), Some("Failed"));
}

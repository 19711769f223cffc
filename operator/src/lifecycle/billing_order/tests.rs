use super::*;
use crate::api::tenant_subscription::{HubSpotIds, Phase, Transition};
use crate::lifecycle::fixtures::{listing, ts};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

#[test]
fn a_listing_chooses_its_order_else_the_operator_default_applies() {
    let plain = listing("");
    let entitle_first = listing("billing: {order: EntitleFirst}");
    let bill_first = listing("billing: {order: BillFirst}");
    let bill = BillingOrderSettings::default();
    assert_eq!(bill.order_of(Some(&plain)), BillingOrder::BillFirst);
    assert_eq!(bill.entitle_first_grace(Some(&plain)), None);
    assert_eq!(
        bill.entitle_first_grace(Some(&entitle_first)),
        Some(DEFAULT_ENTITLE_FIRST_GRACE)
    );
    let entitle = BillingOrderSettings {
        default: BillingOrder::EntitleFirst,
        grace: SignedDuration::from_secs(30),
    };
    assert_eq!(
        entitle.entitle_first_grace(Some(&plain)),
        Some(SignedDuration::from_secs(30))
    );
    assert_eq!(entitle.entitle_first_grace(Some(&bill_first)), None);
    assert_eq!(entitle.order_of(None), BillingOrder::EntitleFirst);
}

#[test]
fn the_grace_runs_from_entering_service_and_billing_counts_once_a_deal_is_recorded() {
    let now = ts("2026-11-01T01:00:00Z");
    let grace = SignedDuration::from_secs(60);
    let mut status = TenantSubscriptionStatus::default();
    assert_eq!(grace_ends(&status, now, grace), now + grace);
    status.history.push(Transition {
        from: Some(Phase::Provisioning),
        to: Phase::Active,
        at: Time(ts("2026-11-01T00:00:00Z")),
        actor: "operator".into(),
        reason: None,
        action: None,
    });
    assert_eq!(grace_ends(&status, now, grace), ts("2026-11-01T00:01:00Z"));
    assert!(!billing_established(&status));
    status.hubspot = Some(HubSpotIds {
        deal_id: Some("d1".into()),
        ..HubSpotIds::default()
    });
    assert!(billing_established(&status));
}

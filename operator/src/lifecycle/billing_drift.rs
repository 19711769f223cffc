//! The billing drift comparison: what a HubSpot audit entry says against what a subscription
//! records.

use super::phase::BillingFact;
use crate::billing::{AuditedRecord, Drift};

/// What an audit learned about one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFinding {
    /// The billing fact HubSpot shows now.
    pub fact: BillingFact,
    /// Findings for the Synced condition and Events; empty when HubSpot agrees.
    pub findings: Vec<String>,
    /// Static categories of the findings, for metrics.
    pub kinds: Vec<&'static str>,
}

/// The billing fact an audit entry shows: the live subscription's status, or Missing.
pub fn audited_fact(entry: &AuditedRecord) -> BillingFact {
    match entry.live().first() {
        Some(live) => BillingFact::Live {
            status: live.status.clone(),
            class: live.class,
        },
        None => BillingFact::Missing,
    }
}

/// Compares an audit entry with the recorded fact.
pub fn compare(entry: &AuditedRecord, recorded: &BillingFact) -> AuditFinding {
    let fact = audited_fact(entry);
    let mut findings = Vec::new();
    let mut kinds = Vec::new();
    for drift in entry.drift() {
        let (kind, text) = match drift {
            Drift::MissingDeal => ("missing_record", "no billing record in HubSpot".to_string()),
            Drift::NoLiveSubscription => (
                "cancelled_in_hubspot",
                "the HubSpot subscription was cancelled or deleted outside the operator"
                    .to_string(),
            ),
            Drift::Duplicates(ids) => (
                "duplicate_subscriptions",
                format!(
                    "more than one live HubSpot subscription: {}",
                    ids.join(", ")
                ),
            ),
            Drift::NotInvoicing(id) => (
                "not_invoicing",
                format!("HubSpot subscription {id} does not create invoices"),
            ),
        };
        kinds.push(kind);
        findings.push(text);
    }
    if let (BillingFact::Live { status: now, .. }, BillingFact::Live { status: was, .. }) =
        (&fact, recorded)
        && now != was
    {
        kinds.push("status_changed");
        findings.push(format!("HubSpot status changed from {was} to {now}"));
    }
    AuditFinding {
        fact,
        findings,
        kinds,
    }
}

/// Deals of ours that no TenantSubscription owns: not in `known` uids, not already in the
/// cancelled stage, and older than `grace` (a subscription created a moment ago may not have
/// reached the cache yet). Sorted by deal id.
pub fn orphan_deals<'a>(
    deals: &'a [crate::billing::OurDeal],
    known: &std::collections::BTreeSet<String>,
    cancelled_stage: &str,
    now: jiff::Timestamp,
    grace: jiff::SignedDuration,
) -> Vec<&'a crate::billing::OurDeal> {
    let mut out: Vec<_> = deals
        .iter()
        .filter(|d| !known.contains(&d.subscription_uid))
        .filter(|d| d.stage.as_deref() != Some(cancelled_stage))
        .filter(|d| {
            // No grace means no age check (HubSpot's clock may run ahead of ours).
            grace.is_zero()
                || d.created
                    .parse::<jiff::Timestamp>()
                    .is_ok_and(|created| now.duration_since(created) >= grace)
        })
        .collect();
    out.sort_by(|a, b| a.deal_id.cmp(&b.deal_id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::{StatusClass, SubscriptionState};

    fn state(id: &str, status: &str, class: StatusClass) -> SubscriptionState {
        SubscriptionState {
            id: id.into(),
            status: status.into(),
            class,
            invoicing: true,
            name: None,
            next_payment_due_date: None,
            last_payment_amount: None,
        }
    }

    fn entry(subs: Vec<SubscriptionState>) -> AuditedRecord {
        AuditedRecord {
            subscription_uid: "u".into(),
            deal_id: Some("d".into()),
            subscriptions: subs,
        }
    }

    #[test]
    fn agreement_has_no_findings() {
        let e = entry(vec![state("1", "active", StatusClass::Ok)]);
        let f = compare(&e, &BillingFact::from_recorded(Some("active")));
        assert!(f.findings.is_empty(), "{f:?}");
    }

    #[test]
    fn payment_failure_and_hand_cancellation_are_found() {
        let e = entry(vec![state("1", "past_due", StatusClass::PaymentProblem)]);
        let f = compare(&e, &BillingFact::from_recorded(Some("active")));
        assert_eq!(f.kinds, vec!["status_changed"]);
        assert!(matches!(
            f.fact,
            BillingFact::Live {
                class: StatusClass::PaymentProblem,
                ..
            }
        ));
        let e = entry(vec![state("1", "canceled", StatusClass::Terminal)]);
        let f = compare(&e, &BillingFact::from_recorded(Some("active")));
        assert_eq!(f.fact, BillingFact::Missing);
        assert_eq!(f.kinds, vec!["cancelled_in_hubspot"]);
        let none = AuditedRecord {
            subscription_uid: "u".into(),
            deal_id: None,
            subscriptions: vec![],
        };
        assert_eq!(
            compare(&none, &BillingFact::Unknown).kinds,
            vec!["missing_record"]
        );
    }

    #[test]
    fn orphan_deals_are_old_unknown_and_not_cancelled() {
        let deal = |id: &str, uid: &str, stage: &str, created: &str| crate::billing::OurDeal {
            deal_id: id.into(),
            subscription_uid: uid.into(),
            stage: Some(stage.into()),
            created: created.into(),
        };
        let deals = vec![
            deal("1", "known", "closedwon", "2026-11-01T00:00:00Z"),
            deal("2", "gone", "closedwon", "2026-11-01T00:00:00Z"),
            deal("3", "gone-too", "closedlost", "2026-11-01T00:00:00Z"),
            deal("4", "just-created", "closedwon", "2026-11-22T09:59:00Z"),
        ];
        let known = ["known".to_string()].into_iter().collect();
        let now: jiff::Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let found = orphan_deals(
            &deals,
            &known,
            "closedlost",
            now,
            jiff::SignedDuration::from_mins(15),
        );
        assert_eq!(
            found.iter().map(|d| d.deal_id.as_str()).collect::<Vec<_>>(),
            vec!["2"]
        );
    }

    #[test]
    fn duplicates_are_reported() {
        let e = entry(vec![
            state("1", "active", StatusClass::Ok),
            state("2", "active", StatusClass::Ok),
        ]);
        let f = compare(&e, &BillingFact::from_recorded(Some("active")));
        assert_eq!(f.kinds, vec!["duplicate_subscriptions"]);
        assert!(f.findings[0].contains("1, 2"));
    }
}

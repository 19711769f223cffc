//! The drift comparison: what a HubSpot audit entry says against what a subscription records.

use super::phase::BillingFact;
use crate::billing::{AuditEntry, Drift};

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
pub fn audited_fact(entry: &AuditEntry) -> BillingFact {
    match entry.live().first() {
        Some(live) => BillingFact::Live {
            status: live.status.clone(),
            class: live.class,
        },
        None => BillingFact::Missing,
    }
}

/// Compares an audit entry with the recorded fact.
pub fn compare(entry: &AuditEntry, recorded: &BillingFact) -> AuditFinding {
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

    fn entry(subs: Vec<SubscriptionState>) -> AuditEntry {
        AuditEntry {
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
        let none = AuditEntry {
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

//! What waits for a superadmin: approval subscriptions on their way up the ladder, approval
//! cancellations to confirm, and provisioning failures to roll back. Oldest first.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::conditions::{find_condition, types::READY};
use crate::api::listing::{Activation, Listing};
use crate::api::subscription_action::ActionKind;
use crate::api::tenant_subscription::{Phase, TenantSubscription};
use crate::front_door::storefront::price;
use crate::lifecycle::actions::{ActionDecision, decide_action};

const ALL_ACTIONS: [ActionKind; 6] = [
    ActionKind::Invoice,
    ActionKind::MarkPaid,
    ActionKind::Approve,
    ActionKind::Reject,
    ActionKind::ConfirmCancel,
    ActionKind::Rollback,
];

/// `GET /v1/admin/inbox?phase=...`.
#[derive(Deserialize, Clone, Debug, Default)]
pub struct InboxQuery {
    pub phase: Option<Phase>,
}

/// One request waiting for a superadmin.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InboxItem {
    pub tenant: String,
    pub namespace: String,
    pub subscription: String,
    pub listing: String,
    pub listing_display_name: String,
    pub plan: String,
    pub quantity: i32,
    pub phase: Phase,
    /// When it entered this phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// What the plan adds to the bill, e.g. "$49.00/mo".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// The steps that fit now, in ladder order.
    pub actions: Vec<ActionKind>,
    /// Why it waits (the Ready condition's message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The steps a superadmin may take on `sub` now.
pub fn fitting_actions(phase: Option<Phase>, activation: Activation) -> Vec<ActionKind> {
    ALL_ACTIONS
        .into_iter()
        .filter(|a| {
            matches!(
                decide_action(*a, phase, activation),
                ActionDecision::Accept { .. }
            )
        })
        .collect()
}

/// Whether a subscription waits for a superadmin (rather than for billing, time or the tenant).
fn waits_for_superadmin(sub: &TenantSubscription, phase: Phase, activation: Activation) -> bool {
    let ready = sub
        .status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, READY));
    match phase {
        // Validated approval requests only: a refusal that waits on the tenant is not ours.
        Phase::Requested => {
            activation == Activation::Approval
                && ready.is_some_and(|c| c.reason == "AwaitingInvoice")
        }
        Phase::Invoiced | Phase::Paid => true,
        Phase::CancelRequested => activation == Activation::Approval,
        // A provisioning failure (Ready=False, Retrying) may need a rollback.
        Phase::Provisioning => ready.is_some_and(|c| c.status == "False"),
        _ => false,
    }
}

fn tenant_of(namespace: &str) -> &str {
    namespace.strip_prefix("tenant-").unwrap_or(namespace)
}

/// The inbox: every subscription that waits for a superadmin, oldest first, optionally only
/// those in `query.phase`.
pub fn inbox<'a>(
    subscriptions: impl IntoIterator<Item = &'a TenantSubscription>,
    listing: impl Fn(&str) -> Option<std::sync::Arc<Listing>>,
    query: &InboxQuery,
) -> Vec<InboxItem> {
    let mut items: Vec<InboxItem> = subscriptions
        .into_iter()
        .filter_map(|sub| {
            let status = sub.status.as_ref()?;
            let phase = status.phase?;
            if query.phase.is_some_and(|p| p != phase) {
                return None;
            }
            let found = listing(sub.spec.listing.as_str());
            let activation = found
                .as_ref()
                .map_or(Activation::Instant, |l| l.spec.activation);
            if !waits_for_superadmin(sub, phase, activation) {
                return None;
            }
            let plan = found
                .as_ref()
                .and_then(|l| l.spec.plans.iter().find(|p| p.name == sub.spec.plan));
            let namespace = sub.metadata.namespace.clone().unwrap_or_default();
            Some(InboxItem {
                tenant: tenant_of(&namespace).to_string(),
                subscription: sub.metadata.name.clone().unwrap_or_default(),
                listing: sub.spec.listing.as_str().to_string(),
                listing_display_name: found
                    .as_ref()
                    .map(|l| l.spec.display_name.clone())
                    .unwrap_or_default(),
                plan: sub.spec.plan.as_str().to_string(),
                quantity: sub.spec.quantity,
                phase,
                since: status.history.last().map(|t| t.at.0),
                price: plan.map(|p| price::total(&p.pricing, sub.spec.quantity)),
                actions: fitting_actions(Some(phase), activation),
                message: find_condition(&status.conditions, READY).map(|c| c.message.clone()),
                namespace,
            })
        })
        .collect();
    items.sort_by(|a, b| {
        (a.since, &a.namespace, &a.subscription).cmp(&(b.since, &b.namespace, &b.subscription))
    });
    items
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::tenant_subscription::{TenantSubscriptionStatus, Transition};
    use crate::lifecycle::fixtures::{listing, subscription, ts};

    fn sub(name: &str, phase: Phase, at: &str) -> TenantSubscription {
        let mut s = TenantSubscription::new(name, subscription("{listing: route, plan: flat}"));
        s.metadata.namespace = Some("tenant-acme".into());
        s.status = Some(TenantSubscriptionStatus {
            phase: Some(phase),
            history: vec![Transition {
                from: None,
                to: phase,
                at: Time(ts(at)),
                actor: "operator".into(),
                reason: None,
                action: None,
            }],
            ..Default::default()
        });
        s
    }

    #[test]
    fn the_inbox_holds_the_ladder_oldest_first_with_the_steps_that_fit() {
        let approval = Arc::new(Listing::new("route", listing("activation: Approval")));
        let paid = sub("b-paid", Phase::Paid, "2026-12-01T09:00:00Z");
        let invoiced = sub("a-invoiced", Phase::Invoiced, "2026-12-01T10:00:00Z");
        let active = sub("c-active", Phase::Active, "2026-12-01T08:00:00Z");
        let cancelling = sub("d-cancel", Phase::CancelRequested, "2026-12-01T11:00:00Z");
        let all = [&paid, &invoiced, &active, &cancelling];
        let lookup = |_: &str| Some(approval.clone());
        let items = inbox(all, lookup, &InboxQuery::default());
        let names: Vec<&str> = items.iter().map(|i| i.subscription.as_str()).collect();
        assert_eq!(names, ["b-paid", "a-invoiced", "d-cancel"]);
        assert_eq!(items[0].actions, [ActionKind::Approve, ActionKind::Reject]);
        assert_eq!(items[0].price.as_deref(), Some("$49.00/yr"));
        assert_eq!(items[0].tenant, "acme");
        assert_eq!(items[2].actions, [ActionKind::ConfirmCancel]);
        let only_paid = InboxQuery {
            phase: Some(Phase::Paid),
        };
        assert_eq!(inbox(all, lookup, &only_paid).len(), 1);
        // An instant listing's cancellation waits for the period's end, not for a superadmin.
        let instant = Arc::new(Listing::new("route", listing("")));
        let items = inbox(
            [&cancelling],
            |_: &str| Some(instant.clone()),
            &InboxQuery::default(),
        );
        assert!(items.is_empty());
    }
}

//! The pure deciders of the subscription lifecycle: plain functions over plain data, no I/O and
//! no clock reads (the time is an argument). The controllers observe, call these, then act.
//!
//! - [`validation`]: may this subscription be billed at all?
//! - [`phase`]: which phase a subscription should be in, and what billing must do.
//! - [`entitlements`]: which Entitlements a subscription grants, in which state.
//! - [`actions`]: the approval ladder moved by SubscriptionActions.
//! - [`billing_order`]: bill first, or entitle first and bill right after (within a grace).
//! - [`period`]: billing periods and trial ends.
//! - [`billing_drift`]: what a HubSpot audit found against what a subscription records.
//! - [`visibility`]: which tenants may see, and so buy, a listing.
//! - [`bundle`]: what a bundle costs, and which members a bundle purchase creates or cancels.
//! - [`promotion`]: which promotion lowers a plan's price for a buyer, and for how long.
//! - [`subscription_plan`]: the subscription reconcile, step by step, as a plan.

pub mod actions;
pub mod billing_drift;
pub mod billing_order;
pub mod billing_recheck;
pub mod bundle;
pub mod entitlements;
pub mod notify;
pub mod period;
pub mod phase;
pub mod promotion;
pub mod subscription_plan;
pub mod validation;
pub mod visibility;

#[cfg(test)]
pub(crate) mod fixtures;

pub use actions::{ActionDecision, decide_action};
pub use entitlements::{DesiredEntitlement, desired_entitlements, entitlement_name};
pub use phase::{
    BillingFact, BillingIntent, Decision, SubscriptionFacts, billing_intent, decide, plan_changed,
};
pub use validation::{Refusal, RequestContext, Sibling, validate_request};

use crate::api::tenant_subscription::Phase;

/// Phases after which a subscription never changes again.
pub fn is_terminal(phase: Phase) -> bool {
    matches!(phase, Phase::Cancelled | Phase::Rejected | Phase::Failed)
}

/// Phases in which the tenant may use the features.
pub fn is_usable(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Active | Phase::Trialing | Phase::CancelRequested
    )
}

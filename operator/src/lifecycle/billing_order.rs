//! Bill first or entitle first. BillFirst (the default) grants features once the HubSpot
//! billing record exists. EntitleFirst grants them at once and bills right after: until a record
//! has been established the `Billed` condition says so, and if none is within the grace the
//! subscription is Suspended (reason [`BILLING_NOT_ESTABLISHED`]) until billing succeeds.
//!
//! The order is a listing's `spec.billing.order`, else the operator's `--billing-order`.

use jiff::{SignedDuration, Timestamp};

use super::period::whole_second;
use super::phase::activated_at;
use crate::api::listing::{BillingOrder, ListingSpec};
use crate::api::tenant_subscription::TenantSubscriptionStatus;

/// How long an entitled-first subscription may go without billing, by default.
pub const DEFAULT_ENTITLE_FIRST_GRACE: SignedDuration = SignedDuration::from_secs(15 * 60);

/// How soon a subscription whose billing call runs in the background looks again if the call's
/// wake-up has not come (it is sent when the call is done; this only bounds a lost one).
pub const BILLING_IN_FLIGHT_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// The Ready reason of a subscription suspended because billing never got established.
pub const BILLING_NOT_ESTABLISHED: &str = "BillingNotEstablished";

/// The operator-wide billing order and the EntitleFirst grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingOrderSettings {
    /// The order of listings that do not choose one.
    pub default: BillingOrder,
    pub grace: SignedDuration,
}

impl Default for BillingOrderSettings {
    fn default() -> Self {
        BillingOrderSettings {
            default: BillingOrder::BillFirst,
            grace: DEFAULT_ENTITLE_FIRST_GRACE,
        }
    }
}

impl BillingOrderSettings {
    /// The order that applies to subscriptions of `listing`.
    pub fn order_of(&self, listing: Option<&ListingSpec>) -> BillingOrder {
        listing
            .and_then(|l| l.billing.as_ref())
            .map_or(self.default, |b| b.order)
    }

    /// The grace, when `listing`'s subscriptions are entitled first; `None` for BillFirst.
    pub fn entitle_first_grace(&self, listing: Option<&ListingSpec>) -> Option<SignedDuration> {
        (self.order_of(listing) == BillingOrder::EntitleFirst).then_some(self.grace)
    }
}

/// Whether a billing record was ever established for the subscription (a successful ensure
/// recorded its deal). Once it was, a record gone missing is healed as under BillFirst.
pub fn billing_established(status: &TenantSubscriptionStatus) -> bool {
    status.hubspot.as_ref().is_some_and(|h| h.deal_id.is_some())
}

/// When the grace of an entitled-first subscription ends: `grace` after it entered service
/// (or after `now`, when it enters service now). In whole seconds, as the start is stored: the
/// reconcile that enters service and the next one, reading the stored start, name the same end
/// (in the Ready message), so the next one has no status to write.
pub fn grace_ends(
    status: &TenantSubscriptionStatus,
    now: Timestamp,
    grace: SignedDuration,
) -> Timestamp {
    activated_at(status).unwrap_or_else(|| whole_second(now)) + grace
}

#[cfg(test)]
mod tests;

//! Monthly recurring revenue from the plans' prices: each billed subscription's price per
//! month (a yearly price counts a twelfth; a per-unit price times the quantity billed),
//! summed by listing, plan and currency; a promotion counts at its price while HubSpot bills it.
//! Metered usage is not recurring and is left out.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;

use crate::api::tenant_subscription::Phase;
use crate::api::{Listing, TenantSubscription};
use crate::front_door::storefront::price::monthly_amount;

/// The phases whose subscriptions count in the monthly recurring revenue: billed and
/// collecting. A cancellation asked for still bills until the period ends; a trial bills
/// nothing yet; a suspended subscription's invoices are not being paid; the approval steps
/// (Requested, Invoiced, Paid) are one-off until the subscription is provisioned.
pub const MRR_PHASES: &[Phase] = &[Phase::Active, Phase::CancelRequested];

/// What one subscription bills per month.
#[derive(Clone, Debug, PartialEq)]
pub struct MonthlyBilling {
    pub listing: String,
    pub plan: String,
    pub currency: String,
    /// In the currency's units.
    pub amount: f64,
}

/// What `sub` bills per month, pricing it with `listing(name)`'s plans; `None` unless it is in
/// one of [`MRR_PHASES`] with a known plan. The plan and quantity are what HubSpot bills, when
/// known: a plan change waits for billing to follow.
pub fn monthly_billing(
    sub: &TenantSubscription,
    listing: impl Fn(&str) -> Option<Arc<Listing>>,
) -> Option<MonthlyBilling> {
    let status = sub.status.as_ref()?;
    if !status.phase.is_some_and(|p| MRR_PHASES.contains(&p)) {
        return None;
    }
    let billed = status.hubspot.as_ref();
    let plan_name = billed
        .and_then(|h| h.billed_plan.clone())
        .unwrap_or_else(|| sub.spec.plan.as_str().to_string());
    let quantity = billed
        .and_then(|h| h.billed_quantity)
        .unwrap_or(sub.spec.quantity);
    let listing_name = sub.spec.listing.as_str();
    let listing = listing(listing_name)?;
    let plan = listing
        .spec
        .plans
        .iter()
        .find(|p| p.name.as_str() == plan_name)?;
    let mut pricing = plan.pricing.clone();
    // A bundle member is billed at its share of the bundle's price for the plan bought in it.
    if let Some(member) = status
        .bundle
        .as_ref()
        .filter(|b| b.plan.as_str() == plan_name)
    {
        pricing.amount = member.price.clone();
    }
    // A promotion HubSpot bills now counts at its price (a bundle member's share of its bundle's
    // promotion too), until billing returns to the list (or bundle) price.
    let billed_promotion = billed.and_then(|h| h.billed_promotion.as_deref());
    if let Some(kept) = status
        .promotion
        .as_ref()
        .filter(|p| billed_promotion == Some(p.name.as_str()) && p.plan.as_str() == plan_name)
    {
        pricing.amount = kept.price.clone();
    }
    Some(MonthlyBilling {
        listing: listing_name.to_string(),
        plan: plan_name,
        currency: pricing.currency.clone(),
        amount: monthly_amount(&pricing, quantity)?,
    })
}

/// The MRR of one listing's plan in one currency.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct MrrLine {
    pub listing: String,
    pub plan: String,
    pub currency: String,
    /// Subscriptions counted.
    pub subscriptions: u32,
    /// Per month, a decimal string with two decimals.
    pub mrr: String,
}

/// The MRR of one currency.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct MrrTotal {
    pub currency: String,
    pub subscriptions: u32,
    pub mrr: String,
}

/// MRR by listing, plan and currency, and by currency (amounts in different currencies are
/// never added up).
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Default)]
pub struct Revenue {
    pub lines: Vec<MrrLine>,
    pub totals: Vec<MrrTotal>,
}

fn money(amount: f64) -> String {
    format!("{amount:.2}")
}

/// The revenue of `billings` (each subscription's, from [`monthly_billing`]).
pub fn mrr(billings: impl IntoIterator<Item = MonthlyBilling>) -> Revenue {
    let mut lines: BTreeMap<(String, String, String), (u32, f64)> = BTreeMap::new();
    let mut totals: BTreeMap<String, (u32, f64)> = BTreeMap::new();
    for billing in billings {
        let line = lines
            .entry((billing.listing, billing.plan, billing.currency.clone()))
            .or_default();
        *line = (line.0 + 1, line.1 + billing.amount);
        let total = totals.entry(billing.currency).or_default();
        *total = (total.0 + 1, total.1 + billing.amount);
    }
    Revenue {
        lines: lines
            .into_iter()
            .map(|((listing, plan, currency), (n, amount))| MrrLine {
                listing,
                plan,
                currency,
                subscriptions: n,
                mrr: money(amount),
            })
            .collect(),
        totals: totals
            .into_iter()
            .map(|(currency, (n, amount))| MrrTotal {
                currency,
                subscriptions: n,
                mrr: money(amount),
            })
            .collect(),
    }
}

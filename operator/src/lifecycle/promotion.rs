//! Promotions: which promotion, if any, lowers a plan's price for a buyer at a given instant,
//! and what a subscription bought under it keeps. Pure: the catalog, the buyer and the time are
//! arguments. The storefront quotes with it, the purchase API checks the confirmed price with it,
//! and the subscription reconciler records it (deciding at the subscription's creation time, so
//! the three agree).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::period::add_intervals;
use crate::api::bundle::AppliedBundlePromotion;
use crate::api::listing::{BillingInterval, Plan};
use crate::api::promotion::{Promotion, PromotionSpec};
use crate::api::tenant::TenantSpec;
use crate::api::tenant_subscription::{
    AppliedPromotion, Phase, TenantSubscriptionSpec, TenantSubscriptionStatus,
};
use crate::billing::LineDiscount;
use crate::front_door::storefront::price::{Minor, parse_amount, plain_amount};

/// What a promotion is matched against on the buyer's side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buyer<'a> {
    pub segment: Option<&'a str>,
    pub region: Option<&'a str>,
}

impl<'a> Buyer<'a> {
    pub fn of(tenant: &'a TenantSpec) -> Buyer<'a> {
        Buyer {
            segment: tenant.segment.as_deref(),
            region: tenant.region.as_deref(),
        }
    }
}

/// A promoted price on offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The Promotion's name.
    pub promotion: String,
    /// Its display name, shown next to the price.
    pub display_name: String,
    /// The plan's list unit price, as the catalog writes it.
    pub list_price: String,
    /// The promoted unit price, e.g. "39.20".
    pub price: String,
    /// Percent off, for percentage promotions.
    pub discount_percentage: Option<i32>,
    /// Amount off each unit, for amount and price promotions.
    pub discount_amount: Option<String>,
    /// Billing periods the price is kept for.
    pub periods: i32,
    /// When the offer closes.
    pub ends_at: Timestamp,
}

/// The promotion window of `spec`, if its timestamps parse (the schema makes sure they do).
pub fn window(spec: &PromotionSpec) -> Option<(Timestamp, Timestamp)> {
    Some((spec.starts_at.parse().ok()?, spec.ends_at.parse().ok()?))
}

/// Whether `spec` targets `plan` of `listing`.
pub fn targets(spec: &PromotionSpec, listing: &str, plan: &str) -> bool {
    spec.targets.iter().any(|t| {
        t.listing.as_str() == listing
            && (t.plans.is_empty() || t.plans.iter().any(|p| p.as_str() == plan))
    })
}

/// Whether `buyer` is in the promotion's segments and regions (empty lists mean everyone).
fn reaches(spec: &PromotionSpec, buyer: &Buyer<'_>) -> bool {
    let within = |allowed: &[String], value: Option<&str>| {
        allowed.is_empty() || value.is_some_and(|v| allowed.iter().any(|a| a == v))
    };
    within(&spec.segments, buyer.segment) && within(&spec.regions, buyer.region)
}

/// The promoted unit price and the cut, in ten-thousandths; `None` when the promotion would not
/// lower the price (a free plan, or an override at or above the list price).
fn cut(spec: &PromotionSpec, list: Minor) -> Option<(Minor, Option<i32>, Option<Minor>)> {
    if list == 0 {
        return None;
    }
    let d = &spec.discount;
    if let Some(percent) = d.percentage {
        let percent = Minor::from(percent.clamp(1, 100));
        // Rounded half up to the catalog's precision (four decimals).
        let price = (list * (100 - percent) + 50) / 100;
        return Some((price, Some(percent as i32), None));
    }
    if let Some(amount) = d.amount.as_deref().and_then(parse_amount) {
        let off = amount.min(list);
        return (off > 0).then_some((list - off, None, Some(off)));
    }
    let price = d.price.as_deref().and_then(parse_amount)?;
    (price < list).then_some((price, None, Some(list - price)))
}

/// The best promotion `plan` of `listing` has for `buyer` at `now` with `code` (the one giving
/// the lowest price; ties go to the first name). Promotions with a code need that code
/// (case-insensitive); those without apply whatever the buyer entered.
pub fn offer<'p>(
    listing: &str,
    plan: &Plan,
    buyer: &Buyer<'_>,
    promotions: impl IntoIterator<Item = &'p Promotion>,
    code: Option<&str>,
    now: Timestamp,
) -> Option<Offer> {
    let list = parse_amount(&plan.pricing.amount)?;
    let lowers = |spec: &PromotionSpec| targets(spec, listing, plan.name.as_str());
    let found = best(list, lowers, buyer, promotions, code, now)?;
    // As the catalog writes it, so that what a subscription records reads like its plan.
    Some(Offer {
        list_price: plan.pricing.amount.clone(),
        ..found
    })
}

/// The best promotion bundle `bundle`, priced `price` (its own discount taken off), has for
/// `buyer` at `now` with `code`: as [`offer`] for a plan. The offer's `list_price` is the
/// bundle's price, its `price` the promoted one.
pub fn bundle_offer<'p>(
    bundle: &str,
    price: Minor,
    buyer: &Buyer<'_>,
    promotions: impl IntoIterator<Item = &'p Promotion>,
    code: Option<&str>,
    now: Timestamp,
) -> Option<Offer> {
    let lowers = |spec: &PromotionSpec| spec.bundles.iter().any(|b| b.as_str() == bundle);
    best(price, lowers, buyer, promotions, code, now)
}

/// The promotion giving the lowest price off `list` among those `lowers` accepts that are open
/// at `now`, reach `buyer` and whose code (if any) is `code`; ties go to the first name.
fn best<'p>(
    list: Minor,
    lowers: impl Fn(&PromotionSpec) -> bool,
    buyer: &Buyer<'_>,
    promotions: impl IntoIterator<Item = &'p Promotion>,
    code: Option<&str>,
    now: Timestamp,
) -> Option<Offer> {
    let mut best: Option<(Minor, String, Offer)> = None;
    for promotion in promotions {
        let spec = &promotion.spec;
        let Some((starts, ends)) = window(spec) else {
            continue;
        };
        let code_ok = match spec.code.as_deref() {
            None => true,
            Some(wanted) => code.is_some_and(|c| c.trim().eq_ignore_ascii_case(wanted)),
        };
        let applies =
            starts <= now && now < ends && code_ok && lowers(spec) && reaches(spec, buyer);
        if !applies {
            continue;
        }
        let Some((price, percentage, amount)) = cut(spec, list) else {
            continue;
        };
        let name = promotion.name_any();
        if best
            .as_ref()
            .is_some_and(|(p, n, _)| (*p, n.as_str()) <= (price, name.as_str()))
        {
            continue;
        }
        let found = Offer {
            promotion: name.clone(),
            display_name: spec.display_name.clone(),
            list_price: plain_amount(list),
            price: plain_amount(price),
            discount_percentage: percentage,
            discount_amount: amount.map(plain_amount),
            periods: spec.periods,
            ends_at: ends,
        };
        best = Some((price, name, found));
    }
    best.map(|(_, _, offer)| offer)
}

/// What a subscription bought at `bought` under `offer` records: the price, kept for the
/// promised periods of the plan's interval.
pub fn applied(offer: &Offer, plan: &Plan, bought: Timestamp) -> AppliedPromotion {
    AppliedPromotion {
        name: offer.promotion.as_str().into(),
        plan: plan.name.clone(),
        list_price: offer.list_price.clone(),
        price: offer.price.clone(),
        discount_percentage: offer.discount_percentage,
        discount_amount: offer.discount_amount.clone(),
        periods: offer.periods,
        kept_until: Time(add_intervals(
            bought,
            plan.pricing.interval,
            i64::from(offer.periods),
        )),
    }
}

/// What a bundle purchase bought at `bought` under `offer` (from [`bundle_offer`]) records: the
/// promoted bundle price, kept for the promised periods of the bundle's `interval`.
pub fn applied_to_bundle(
    offer: &Offer,
    interval: BillingInterval,
    bought: Timestamp,
) -> AppliedBundlePromotion {
    AppliedBundlePromotion {
        name: offer.promotion.as_str().into(),
        list_price: offer.list_price.clone(),
        price: offer.price.clone(),
        periods: offer.periods,
        kept_until: Time(add_intervals(bought, interval, i64::from(offer.periods))),
    }
}

/// Whether a recorded promotion still sets the price at `now`.
pub fn in_force(applied: &AppliedPromotion, now: Timestamp) -> bool {
    now < applied.kept_until.0
}

/// The promotion a subscription records, if it has none yet: decided once, before anything is
/// billed, from the catalog at the subscription's creation (the instant the buyer was quoted).
pub fn to_record<'p>(
    spec: &TenantSubscriptionSpec,
    status: &TenantSubscriptionStatus,
    created: Timestamp,
    plan: Option<&Plan>,
    buyer: &Buyer<'_>,
    promotions: impl IntoIterator<Item = &'p Promotion>,
) -> Option<AppliedPromotion> {
    let undecided = status.promotion.is_none()
        && status.hubspot.is_none()
        && matches!(status.phase, None | Some(Phase::Requested));
    if !undecided {
        return None;
    }
    let plan = plan?;
    let code = spec.promotion_code.as_deref();
    let found = offer(
        spec.listing.as_str(),
        plan,
        buyer,
        promotions,
        code,
        created,
    )?;
    Some(applied(&found, plan, created))
}

/// Whether HubSpot bills a promotion's discount the subscription no longer keeps at `now`: its
/// periods are over, so it must be billed anew at the list price (as a plan change is).
pub fn discount_lapsed(status: &TenantSubscriptionStatus, now: Timestamp) -> bool {
    let billed = status
        .hubspot
        .as_ref()
        .is_some_and(|h| h.billed_promotion.is_some());
    billed && !status.promotion.as_ref().is_some_and(|p| in_force(p, now))
}

/// The line item discount a subscription is billed with for `plan` at `now`: its promotion's,
/// while kept and for the plan bought under it.
pub fn line_discount(
    applied: Option<&AppliedPromotion>,
    plan: &str,
    now: Timestamp,
) -> Option<LineDiscount> {
    let applied = applied.filter(|a| a.plan.as_str() == plan && in_force(a, now))?;
    Some(LineDiscount {
        percentage: applied
            .discount_percentage
            .and_then(|p| u32::try_from(p).ok()),
        amount: applied.discount_amount.clone(),
        net_unit_price: applied.price.clone(),
    })
}

#[cfg(test)]
#[path = "promotion_tests.rs"]
mod tests;

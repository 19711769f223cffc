//! Bundles: what a bundle costs and what each member pays ([`quote`], shared by the catalog lint,
//! the storefront and the member reconciler so the three agree), and what a bundle purchase must
//! do to its member subscriptions ([`plan_members`]). Pure: the catalog, the members and the time
//! are arguments; the BundleSubscription reconciler only gathers them and acts.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::is_terminal;
use super::promotion::{Buyer, applied_to_bundle, bundle_offer};
use crate::api::bundle::{
    AppliedBundlePromotion, BundleMemberStatus, BundlePhase, BundleSpec, BundleSubscriptionStatus,
};
use crate::api::listing::{BillingInterval, Lifecycle, ListingSpec, ListingType, Plan};
use crate::api::promotion::Promotion;
use crate::api::tenant_subscription::{
    AppliedBundle, AppliedPromotion, BundleMembership, CancellationRequest, Phase,
    TenantSubscriptionSpec,
};
use crate::billing::LineDiscount;
use crate::front_door::storefront::price::{Minor, parse_amount, plain_amount};

/// The label on every member subscription: the BundleSubscription's name.
pub const BUNDLE_SUBSCRIPTION_LABEL: &str = "marketplace.dev/bundle-subscription";

/// One member's price in a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberQuote {
    pub listing: String,
    pub plan: String,
    /// The listing's display name, for the storefront.
    pub display_name: String,
    /// The plan's list unit price, in ten-thousandths.
    pub list_price: Minor,
    /// What the member is billed in the bundle.
    pub price: Minor,
    /// Percent off, for percentage bundles.
    pub discount_percentage: Option<i32>,
    /// Amount off, for amount bundles (the member's share of the bundle's amount).
    pub discount_amount: Option<Minor>,
}

/// A bundle's price: its members' and the totals, in one currency and interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleQuote {
    pub members: Vec<MemberQuote>,
    pub currency: String,
    pub interval: BillingInterval,
    pub list_total: Minor,
    pub total: Minor,
}

impl BundleQuote {
    pub fn savings(&self) -> Minor {
        self.list_total - self.total
    }
}

/// Why a bundle cannot be sold: the field at fault (a JSON pointer into the Bundle) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleProblem {
    pub pointer: String,
    pub message: String,
    pub hint: String,
}

fn problem(pointer: String, message: String, hint: &str) -> BundleProblem {
    BundleProblem {
        pointer,
        message,
        hint: hint.to_owned(),
    }
}

/// The bundle's price from its members' listings (`listing` finds one by name), or every reason
/// it cannot be sold. Members whose listing is `unknown_ok` (unreadable files in a lint) are
/// skipped rather than reported.
pub fn quote<'l>(
    spec: &'l BundleSpec,
    listing: impl Fn(&str) -> Option<&'l ListingSpec>,
    unknown_ok: impl Fn(&str) -> bool,
) -> Result<BundleQuote, Vec<BundleProblem>> {
    let mut problems = Vec::new();
    let mut priced: Vec<Priced<'l>> = Vec::new();
    for (i, member) in spec.members.iter().enumerate() {
        let at = format!("/spec/members/{i}");
        let name = member.listing.as_str();
        if spec.members[..i]
            .iter()
            .any(|m| m.listing == member.listing)
        {
            problems.push(problem(
                format!("{at}/listing"),
                format!("listing {name:?} is a member twice"),
                "list each listing once, with the plan the bundle sells",
            ));
            continue;
        }
        let Some(found) = listing(name) else {
            if !unknown_ok(name) {
                problems.push(problem(
                    format!("{at}/listing"),
                    format!("member listing {name:?} is not in the catalog"),
                    "name an existing listing (its metadata.name)",
                ));
            }
            continue;
        };
        if found.lifecycle != Lifecycle::Published {
            problems.push(problem(
                format!("{at}/listing"),
                format!(
                    "member listing {name:?} is {:?}, so the bundle could not be bought",
                    found.lifecycle
                ),
                "bundle Published listings only; remove the member or publish the listing",
            ));
            continue;
        }
        if found.type_ != ListingType::InApp {
            problems.push(problem(
                format!("{at}/listing"),
                format!(
                    "member listing {name:?} is of type {:?}; a bundle sells InApp listings only",
                    found.type_
                ),
                "integrations need their own connection settings and partners bill elsewhere: sell them on their own",
            ));
            continue;
        }
        let Some(plan) = found.plans.iter().find(|p| p.name == member.plan) else {
            problems.push(problem(
                format!("{at}/plan"),
                format!("listing {name:?} has no plan {:?}", member.plan.as_str()),
                "name one of the listing's spec.plans",
            ));
            continue;
        };
        let Some(list) = parse_amount(&plan.pricing.amount) else {
            continue;
        };
        priced.push((name, found, plan, list));
    }
    let Some((_, _, first, _)) = priced.first() else {
        return Err(problems);
    };
    let currency = first.pricing.currency.clone();
    let interval = first.pricing.interval;
    for (name, _, plan, _) in &priced[1..] {
        if plan.pricing.currency != currency || plan.pricing.interval != interval {
            let i = member_index(spec, name);
            problems.push(problem(
                format!("/spec/members/{i}/plan"),
                format!(
                    "plan {:?} is priced in {} per {:?}, the bundle's first member in {currency} per {interval:?}",
                    plan.name.as_str(),
                    plan.pricing.currency,
                    plan.pricing.interval
                ),
                "bundle plans of one currency and billing interval",
            ));
        }
    }
    let list_total: Minor = priced.iter().map(|p| p.3).sum();
    let discount = &spec.discount;
    let amount = discount.amount.as_deref().and_then(parse_amount);
    if let Some(amount) = amount {
        if discount.currency.as_deref() != Some(currency.as_str()) {
            problems.push(problem(
                "/spec/discount/currency".into(),
                format!(
                    "the discount is in {}, the members' plans in {currency}",
                    discount.currency.as_deref().unwrap_or("no currency")
                ),
                "give the amount in the members' currency",
            ));
        }
        if amount >= list_total {
            problems.push(problem(
                "/spec/discount/amount".into(),
                format!(
                    "the discount {} {currency} is not below the members' list total {} {currency}",
                    plain_amount(amount),
                    plain_amount(list_total)
                ),
                "a bundle's discount must leave something to pay; lower it",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let members = share(&priced, discount.percentage, amount);
    let total = members.iter().map(|m| m.price).sum();
    Ok(BundleQuote {
        members,
        currency,
        interval,
        list_total,
        total,
    })
}

/// A member whose listing and plan were found: its listing's name, spec, plan and list price.
type Priced<'a> = (&'a str, &'a ListingSpec, &'a Plan, Minor);

/// Each member's price: the same percentage off each, or the amount shared in proportion to the
/// list prices ([`split`]).
fn share(
    priced: &[Priced<'_>],
    percentage: Option<i32>,
    amount: Option<Minor>,
) -> Vec<MemberQuote> {
    let lists: Vec<Minor> = priced.iter().map(|p| p.3).collect();
    let offs = amount.map(|amount| split(&lists, amount));
    priced
        .iter()
        .enumerate()
        .map(|(k, (name, listing, plan, list))| {
            let list = *list;
            let (price, pct, off) = match (percentage, &offs) {
                (Some(p), _) if list > 0 => {
                    let p = Minor::from(p.clamp(1, 99));
                    ((list * (100 - p) + 50) / 100, Some(p as i32), None)
                }
                (_, Some(offs)) => (list - offs[k], None, (offs[k] > 0).then_some(offs[k])),
                _ => (list, None, None),
            };
            MemberQuote {
                listing: (*name).to_owned(),
                plan: plan.name.to_string(),
                display_name: listing.display_name.clone(),
                list_price: list,
                price,
                discount_percentage: pct,
                discount_amount: off,
            }
        })
        .collect()
}

/// `amount` shared among list prices `lists` in proportion to them (rounded down, the
/// remainder on the last paying one, so the shares add up; none above its list price).
fn split(lists: &[Minor], amount: Minor) -> Vec<Minor> {
    let total: Minor = lists.iter().sum();
    let last_paying = lists.iter().rposition(|l| *l > 0);
    let mut given: Minor = 0;
    lists
        .iter()
        .enumerate()
        .map(|(k, list)| {
            if *list <= 0 || total <= 0 {
                return 0;
            }
            let off = if Some(k) == last_paying {
                (amount - given).min(*list)
            } else {
                amount * list / total
            };
            given += off;
            off
        })
        .collect()
}

/// Each member's price when the bundle is bought at `promoted` (a promotion's price for the
/// whole bundle): the cut off the members' list total shared as an amount bundle's is.
pub fn promoted_members(quote: &BundleQuote, promoted: Minor) -> Vec<MemberQuote> {
    let lists: Vec<Minor> = quote.members.iter().map(|m| m.list_price).collect();
    let off = (quote.list_total - promoted.max(0)).max(0);
    let offs = split(&lists, off);
    quote
        .members
        .iter()
        .zip(offs)
        .map(|(m, off)| MemberQuote {
            price: m.list_price - off,
            discount_percentage: None,
            discount_amount: (off > 0).then_some(off),
            ..m.clone()
        })
        .collect()
}

fn member_index(spec: &BundleSpec, listing: &str) -> usize {
    spec.members
        .iter()
        .position(|m| m.listing.as_str() == listing)
        .unwrap_or(0)
}

/// The name of the member subscription of `listing` in bundle purchase `purchase`: the same on
/// every attempt, so a retried creation finds the member instead of adding a second one.
pub fn member_name(purchase: &str, listing: &str) -> String {
    use sha2::{Digest, Sha256};
    let name = format!("{purchase}-{listing}");
    if name.len() <= 63 {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let suffix: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{suffix}", name[..52].trim_end_matches('-'))
}

/// A member subscription as the bundle reconciler found it (by the bundle purchase's label).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberFact {
    pub name: String,
    pub listing: String,
    pub plan: String,
    pub phase: Option<Phase>,
    /// Its spec.cancellation is set.
    pub cancelling: bool,
}

/// The bundle purchase being reconciled.
#[derive(Clone, Copy, Debug)]
pub struct PurchaseFacts<'a> {
    /// The BundleSubscription's name.
    pub name: &'a str,
    pub bundle: &'a str,
    pub cancellation: Option<&'a CancellationRequest>,
    /// The status written last time (its member list is the purchase's, once recorded).
    pub status: &'a BundleSubscriptionStatus,
}

/// What the reconciler must do: create and cancel members, then write `status`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MemberPlan {
    pub create: Vec<(String, TenantSubscriptionSpec)>,
    pub cancel: Vec<(String, CancellationRequest)>,
    pub status: BundleSubscriptionStatus,
}

/// Decides the members of a bundle purchase. The member set is recorded in the status the first
/// time (from `quote`, the catalog's bundle) and kept, so later catalog edits never add or drop
/// members of a purchase; members are named by [`member_name`], so creating them again after a
/// crash finds them. Cancelling the purchase cancels every member not already ending.
pub fn plan_members(
    purchase: &PurchaseFacts<'_>,
    quote: Result<&BundleQuote, &str>,
    members: &[MemberFact],
    now: Timestamp,
) -> MemberPlan {
    let previous = purchase.status;
    let set: Vec<(String, String)> = if !previous.members.is_empty() {
        previous
            .members
            .iter()
            .map(|m| (m.listing.to_string(), m.plan.to_string()))
            .collect()
    } else {
        match quote {
            Ok(quote) => quote
                .members
                .iter()
                .map(|m| (m.listing.clone(), m.plan.clone()))
                .collect(),
            Err(why) if purchase.cancellation.is_none() => {
                return MemberPlan {
                    status: BundleSubscriptionStatus {
                        phase: Some(BundlePhase::Failed),
                        message: Some(format!("Bundle {:?}: {why}", purchase.bundle)),
                        ..previous.clone()
                    },
                    ..MemberPlan::default()
                };
            }
            // Cancelled before anything was recorded: nothing to create.
            Err(_) => Vec::new(),
        }
    };
    let found = |name: &str| members.iter().find(|m| m.name == name);
    let mut plan = MemberPlan::default();
    let mut statuses = Vec::new();
    for (listing, plan_name) in &set {
        let name = member_name(purchase.name, listing);
        let existing = found(&name);
        match (existing, purchase.cancellation) {
            (None, None) => plan
                .create
                .push((name.clone(), member_spec(purchase, listing, plan_name))),
            (Some(m), Some(request)) if !m.cancelling && !m.phase.is_some_and(is_terminal) => {
                plan.cancel.push((name.clone(), request.clone()));
            }
            _ => {}
        }
        statuses.push(BundleMemberStatus {
            listing: listing.as_str().into(),
            plan: plan_name.as_str().into(),
            subscription: name,
            phase: existing.and_then(|m| m.phase),
        });
    }
    let (phase, message) = phase_of(purchase, &statuses, members);
    plan.status = BundleSubscriptionStatus {
        observed_generation: previous.observed_generation,
        phase: Some(phase),
        message,
        active_since: previous
            .active_since
            .clone()
            .or_else(|| (phase == BundlePhase::Active).then_some(Time(now))),
        members: statuses,
        promotion: previous.promotion.clone(),
    };
    plan
}

fn member_spec(purchase: &PurchaseFacts<'_>, listing: &str, plan: &str) -> TenantSubscriptionSpec {
    TenantSubscriptionSpec {
        listing: listing.into(),
        plan: plan.into(),
        quantity: 1,
        trial: false,
        connection: None,
        promotion_code: None,
        cancellation: None,
        bundle: Some(BundleMembership {
            name: purchase.bundle.into(),
            subscription: purchase.name.into(),
        }),
    }
}

fn phase_of(
    purchase: &PurchaseFacts<'_>,
    statuses: &[BundleMemberStatus],
    members: &[MemberFact],
) -> (BundlePhase, Option<String>) {
    let ended = |s: &BundleMemberStatus| s.phase.is_some_and(is_terminal);
    if purchase.cancellation.is_some() {
        // A member never created counts as ended; one still being created is cancelled next time.
        let all_ended = statuses
            .iter()
            .all(|s| ended(s) || !members.iter().any(|m| m.name == s.subscription));
        return if all_ended {
            (BundlePhase::Cancelled, None)
        } else {
            (BundlePhase::Cancelling, None)
        };
    }
    if let Some(s) = statuses.iter().find(|s| ended(s)) {
        let message = format!(
            "member {} ({}) is {:?}; cancel the bundle subscription and buy it anew",
            s.subscription,
            s.listing,
            s.phase.unwrap_or(Phase::Failed)
        );
        return (BundlePhase::Failed, Some(message));
    }
    let in_service = |s: &BundleMemberStatus| s.phase.is_some_and(super::is_usable);
    if statuses.iter().all(in_service) {
        return (BundlePhase::Active, None);
    }
    let waiting: Vec<&str> = statuses
        .iter()
        .filter(|s| !in_service(s))
        .map(|s| s.subscription.as_str())
        .collect();
    (
        BundlePhase::Pending,
        Some(format!("waiting for {}", waiting.join(", "))),
    )
}

/// The bundle discount a member records, if it has none yet: decided once, before anything is
/// billed, from the catalog's Bundle. Only a member the bundle purchase made counts: named by
/// [`member_name`] and owned by the BundleSubscription its spec names. With the purchase's
/// `promotion`, the member also records its share of the promoted price as its promotion, kept
/// until the purchase's `keptUntil` (then it is billed with the bundle discount).
pub fn to_record<'l>(
    name: &str,
    spec: &TenantSubscriptionSpec,
    status: &crate::api::tenant_subscription::TenantSubscriptionStatus,
    owner: Option<&str>,
    bundle: Option<&'l BundleSpec>,
    promotion: Option<&AppliedBundlePromotion>,
    listing: impl Fn(&str) -> Option<&'l ListingSpec>,
) -> Option<(AppliedBundle, Option<AppliedPromotion>)> {
    let membership = spec.bundle.as_ref()?;
    let undecided = status.bundle.is_none()
        && status.hubspot.is_none()
        && matches!(status.phase, None | Some(Phase::Requested));
    let ours = owner == Some(membership.subscription.as_str())
        && name == member_name(membership.subscription.as_str(), spec.listing.as_str());
    if !undecided || !ours {
        return None;
    }
    let quote = quote(bundle?, listing, |_| false).ok()?;
    let is_this =
        |m: &&MemberQuote| m.listing == spec.listing.as_str() && m.plan == spec.plan.as_str();
    let member = quote.members.iter().find(is_this)?;
    let applied = AppliedBundle {
        name: membership.name.clone(),
        plan: spec.plan.clone(),
        list_price: plain_amount(member.list_price),
        price: plain_amount(member.price),
        discount_percentage: member.discount_percentage,
        discount_amount: member.discount_amount.map(plain_amount),
    };
    let promoted = promotion.and_then(|p| {
        let members = promoted_members(&quote, parse_amount(&p.price)?);
        let share = members.iter().find(is_this)?;
        Some(AppliedPromotion {
            name: p.name.clone(),
            plan: spec.plan.clone(),
            list_price: plain_amount(share.list_price),
            price: plain_amount(share.price),
            discount_percentage: None,
            discount_amount: share.discount_amount.map(plain_amount),
            periods: p.periods,
            kept_until: p.kept_until.clone(),
        })
    });
    Some((applied, promoted))
}

/// The promotion a bundle purchase records, if it has decided none yet: once, before its
/// members exist, from the catalog at the purchase's creation (the instant the buyer was
/// quoted), so the storefront's quote, the purchase check and the record agree.
pub fn promotion_to_record<'p>(
    bundle: &str,
    status: &BundleSubscriptionStatus,
    quote: &BundleQuote,
    buyer: &Buyer<'_>,
    promotions: impl IntoIterator<Item = &'p Promotion>,
    code: Option<&str>,
    created: Timestamp,
) -> Option<AppliedBundlePromotion> {
    if status.promotion.is_some() || !status.members.is_empty() {
        return None;
    }
    let found = bundle_offer(bundle, quote.total, buyer, promotions, code, created)?;
    Some(applied_to_bundle(&found, quote.interval, created))
}

/// The line item discount a member is billed with for `plan`: its bundle's, for the plan bought.
pub fn line_discount(applied: Option<&AppliedBundle>, plan: &str) -> Option<LineDiscount> {
    let applied = applied.filter(|a| a.plan.as_str() == plan)?;
    if applied.discount_percentage.is_none() && applied.discount_amount.is_none() {
        return None;
    }
    Some(LineDiscount {
        percentage: applied
            .discount_percentage
            .and_then(|p| u32::try_from(p).ok()),
        amount: applied.discount_amount.clone(),
        net_unit_price: applied.price.clone(),
    })
}

/// Why a cancellation of `member` must be refused: it is a bundle member and its purchase is not
/// being cancelled (`purchase_cancelling`), so it would end alone while the bundle is billed.
pub fn member_cancel_refusal(
    member: &TenantSubscriptionSpec,
    purchase_cancelling: bool,
) -> Option<String> {
    let membership = member.bundle.as_ref()?;
    (!purchase_cancelling).then(|| {
        format!(
            "this subscription is part of bundle {:?} (BundleSubscription {:?}); cancel the bundle subscription, which cancels every member",
            membership.name.as_str(),
            membership.subscription.as_str()
        )
    })
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;

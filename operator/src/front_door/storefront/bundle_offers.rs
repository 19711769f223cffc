//! Bundles as the storefront decides them, for the JSON API and the web pages alike: the bundles
//! a tenant may buy with their prices (promoted ones included) and the sentence a buyer confirms ([`bundle_offers`]),
//! whether a purchase or a cancellation may go through ([`decide_bundle_purchase`],
//! [`decide_bundle_cancel`]) and where a tenant stands with a bundle ([`bundle_standing`]).
//! Pure: the catalog and the tenant's objects are arguments.

use std::sync::Arc;

use axum::http::StatusCode;
use jiff::Timestamp;
use kube::ResourceExt;
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::changes::CancelRequest;
use super::detail::PromotionView;
use super::price::{QuotedPrice, parse_amount, per_interval, plain_amount, promotion_terms};
use crate::api::Bundle;
use crate::api::bundle::{BundleDiscount, BundlePhase, BundleSubscription};
use crate::api::listing::{BillingInterval, Listing, ListingSpec, Pricing, PricingModel};
use crate::api::promotion::Promotion;
use crate::api::tenant_subscription::{CancellationRequest, TenantSubscription};
use crate::lifecycle::bundle::{BundleQuote, promoted_members, quote};
use crate::lifecycle::is_terminal;
use crate::lifecycle::promotion::{Buyer, bundle_offer};
use crate::lifecycle::visibility::{Viewer, visible_to};

/// Why a bundle purchase or cancellation is refused: HTTP status, stable code, message.
pub type BundleRefusal = (StatusCode, &'static str, String);

/// A member of a bundle on offer.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OfferMember {
    pub listing: String,
    pub display_name: String,
    pub plan: String,
    /// The plan's name as the listing shows it.
    pub plan_display_name: String,
    pub list_price: String,
    pub price: String,
}

/// A bundle the tenant may buy.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BundleOffer {
    pub name: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub members: Vec<OfferMember>,
    pub currency: String,
    /// `Month` or `Year`: every member is billed on it.
    pub interval: BillingInterval,
    /// The members' list prices added up.
    pub list_total: String,
    /// What the bundle costs each interval.
    pub price: String,
    pub savings: String,
    /// The catalog's discount: a percentage off every member, or an amount off the total.
    pub discount: BundleDiscount,
    /// The sentence the buyer confirms; send `price`, `currency` and `interval` back as
    /// `confirmedPrice` to buy at this price.
    pub confirmation: String,
    /// The bundle's price without a promotion (its own discount taken off).
    pub regular_price: String,
    /// The promotion that sets `price` for this tenant now, with its end date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionView>,
}

/// The promotions a tenant's offers are priced with: the buyer, the catalog's promotions, the
/// code entered and the instant quoted. The default prices without promotions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Promoting<'a> {
    pub buyer: Buyer<'a>,
    pub promotions: &'a [Arc<Promotion>],
    pub code: Option<&'a str>,
    pub now: Timestamp,
}

impl BundleOffer {
    /// The price a buyer confirms, as a purchase sends it back.
    pub fn quoted_price(&self) -> QuotedPrice {
        QuotedPrice {
            amount: self.price.clone(),
            currency: self.currency.clone(),
            interval: self.interval,
        }
    }
}

/// "Confirm addition of $47.20/mo to your bill for Fleet suite? ...": what buying costs, and
/// what it saves against the members bought alone.
pub fn bundle_confirmation(display_name: &str, quote: &BundleQuote) -> String {
    let words = |minor| per_interval(&plain_amount(minor), &quote.currency, quote.interval);
    format!(
        "Confirm addition of {} to your bill for {display_name}? You save {} on its add-ons' list total of {}.",
        words(quote.total),
        words(quote.savings()),
        words(quote.list_total)
    )
}

fn offer<'l>(
    bundle: &Bundle,
    regular: &BundleQuote,
    promoting: &Promoting<'_>,
    find: impl Fn(&str) -> Option<&'l ListingSpec>,
) -> BundleOffer {
    let plan_name = |listing: &str, plan: &str| {
        find(listing)
            .and_then(|l| l.plans.iter().find(|p| p.name.as_str() == plan))
            .map(|p| p.display_name.clone())
            .unwrap_or_else(|| plan.to_string())
    };
    let name = bundle.name_any();
    let promotions = promoting.promotions.iter().map(|p| p.as_ref());
    let found = bundle_offer(
        &name,
        regular.total,
        &promoting.buyer,
        promotions,
        promoting.code,
        promoting.now,
    );
    let promoted = found
        .as_ref()
        .and_then(|o| parse_amount(&o.price))
        .map(|total| BundleQuote {
            members: promoted_members(regular, total),
            total,
            ..regular.clone()
        });
    let quote = promoted.as_ref().unwrap_or(regular);
    let words = |minor| per_interval(&plain_amount(minor), &quote.currency, quote.interval);
    BundleOffer {
        name,
        display_name: bundle.spec.display_name.clone(),
        description: bundle.spec.description.clone(),
        members: quote
            .members
            .iter()
            .map(|m| OfferMember {
                listing: m.listing.clone(),
                display_name: m.display_name.clone(),
                plan: m.plan.clone(),
                plan_display_name: plan_name(&m.listing, &m.plan),
                list_price: plain_amount(m.list_price),
                price: plain_amount(m.price),
            })
            .collect(),
        currency: quote.currency.clone(),
        interval: quote.interval,
        list_total: plain_amount(quote.list_total),
        price: plain_amount(quote.total),
        savings: plain_amount(quote.savings()),
        discount: bundle.spec.discount.clone(),
        confirmation: match &found {
            Some(o) => format!(
                "{} {}",
                bundle_confirmation(&bundle.spec.display_name, quote),
                promotion_terms(&o.display_name, o.periods, &words(regular.total))
            ),
            None => bundle_confirmation(&bundle.spec.display_name, quote),
        },
        regular_price: plain_amount(regular.total),
        promotion: found.map(|o| PromotionView {
            name: o.promotion,
            display_name: o.display_name,
            list_price: words(regular.total),
            ends_at: o.ends_at,
            periods: o.periods,
        }),
    }
}

/// The bundles `tenant` may buy: every member listing visible to it and the bundle sellable
/// (its quote holds), by display name.
pub fn bundle_offers(
    bundles: &[Arc<Bundle>],
    listings: &[Arc<Listing>],
    viewer: Viewer<'_>,
    promoting: &Promoting<'_>,
) -> Vec<BundleOffer> {
    let find = |name: &str| {
        listings
            .iter()
            .find(|l| l.name_any() == name)
            .map(|l| &l.spec)
    };
    let mut offers: Vec<BundleOffer> = bundles
        .iter()
        .filter(|b| {
            b.spec
                .members
                .iter()
                .all(|m| find(m.listing.as_str()).is_some_and(|l| visible_to(l, viewer)))
        })
        .filter_map(|b| {
            let regular = quote(&b.spec, find, |_| false).ok()?;
            Some(offer(b, &regular, promoting, find))
        })
        .collect();
    offers.sort_by(|a, b| (&a.display_name, &a.name).cmp(&(&b.display_name, &b.name)));
    offers
}

/// Why `tenant` cannot buy bundle `name` now; else its offer. `confirmed`, the price the buyer
/// saw, is required and must be the bundle's price now.
pub fn decide_bundle_purchase(
    name: &str,
    offers: &[BundleOffer],
    subscriptions: &[&TenantSubscription],
    confirmed: Option<&QuotedPrice>,
) -> Result<BundleOffer, BundleRefusal> {
    let Some(found) = offers.iter().find(|o| o.name == name) else {
        return Err((
            StatusCode::NOT_FOUND,
            "BundleNotFound",
            format!("there is no bundle {name:?} this tenant may buy"),
        ));
    };
    let live = |listing: &str| {
        subscriptions.iter().any(|s| {
            s.spec.listing.as_str() == listing
                && !s
                    .status
                    .as_ref()
                    .and_then(|st| st.phase)
                    .is_some_and(is_terminal)
        })
    };
    if let Some(member) = found.members.iter().find(|m| live(&m.listing)) {
        return Err((
            StatusCode::CONFLICT,
            "AlreadySubscribed",
            format!(
                "the tenant already subscribes to {} ({}); cancel that subscription before buying bundle {name:?}",
                member.display_name, member.listing
            ),
        ));
    }
    let now = Pricing {
        model: PricingModel::Flat,
        amount: found.price.clone(),
        currency: found.currency.clone(),
        interval: found.interval,
        unit: None,
    };
    match confirmed {
        Some(quote) if quote.matches(&now) => Ok(found.clone()),
        Some(_) => Err((
            StatusCode::CONFLICT,
            "PriceChanged",
            format!(
                "the price is not the one confirmed; ask the buyer again: {}",
                found.confirmation
            ),
        )),
        // A bundle always costs something: no purchase without the price the buyer saw.
        None => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "PriceNotConfirmed",
            format!(
                "send the price the buyer confirmed: {{amount: {:?}, currency: {:?}, interval: {:?}}} ({})",
                found.price, found.currency, found.interval, found.confirmation
            ),
        )),
    }
}

/// Why promotion code `code` cannot be used on bundle `name`: no promotion with that code lowers
/// it for this tenant now. `coded` are the tenant's offers priced with that code's promotions
/// only.
pub fn decide_bundle_code(
    name: &str,
    coded: &[BundleOffer],
    code: &str,
) -> Result<(), BundleRefusal> {
    if coded
        .iter()
        .any(|o| o.name == name && o.promotion.is_some())
    {
        return Ok(());
    }
    Err((
        StatusCode::UNPROCESSABLE_ENTITY,
        "PromotionCodeInvalid",
        format!(
            "promotion code {code:?} is not on offer for bundle {name:?} to this tenant now (unknown, expired, or for other bundles, segments or regions)"
        ),
    ))
}

/// The cancellation to write on bundle purchase `purchase`, or why not: one already asked for,
/// or every member already ended.
pub fn decide_bundle_cancel(
    purchase: &BundleSubscription,
    request: &CancelRequest,
) -> Result<CancellationRequest, BundleRefusal> {
    if purchase.spec.cancellation.is_some() {
        return Err((
            StatusCode::CONFLICT,
            "AlreadyCancelling",
            "the bundle is already being cancelled".to_string(),
        ));
    }
    if phase_of(purchase) == Some(BundlePhase::Cancelled) {
        return Err((
            StatusCode::CONFLICT,
            "BundleEnded",
            "every add-on of this bundle has already ended".to_string(),
        ));
    }
    Ok(CancellationRequest {
        reason: request.reason.clone(),
        effective: request.effective,
    })
}

fn phase_of(purchase: &BundleSubscription) -> Option<BundlePhase> {
    purchase.status.as_ref().and_then(|s| s.phase)
}

/// Where a tenant stands with a bundle on offer, for the storefront's buttons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleStanding {
    /// It may be bought now.
    Available,
    /// A purchase of it is live (not cancelled, not failed): the BundleSubscription's name.
    Bought { purchase: String },
    /// It cannot be bought now, and why (a member listing is subscribed already, ...).
    Unavailable { message: String },
}

/// Where `tenant` stands with bundle `name`: bought (a live purchase of it), or whether a
/// purchase would go through now ([`decide_bundle_purchase`]).
pub fn bundle_standing(
    name: &str,
    offers: &[BundleOffer],
    purchases: &[&BundleSubscription],
    subscriptions: &[&TenantSubscription],
) -> BundleStanding {
    let live = purchases.iter().find(|p| {
        p.spec.bundle.as_str() == name
            && p.spec.cancellation.is_none()
            && !matches!(
                phase_of(p),
                Some(BundlePhase::Cancelled | BundlePhase::Failed)
            )
    });
    if let Some(purchase) = live {
        return BundleStanding::Bought {
            purchase: purchase.name_any(),
        };
    }
    // Standing asks whether the tenant could buy at today's price, so that is the one confirmed.
    let today = offers
        .iter()
        .find(|o| o.name == name)
        .map(BundleOffer::quoted_price);
    match decide_bundle_purchase(name, offers, subscriptions, today.as_ref()) {
        Ok(_) => BundleStanding::Available,
        Err((_, _, message)) => BundleStanding::Unavailable { message },
    }
}

/// The BundleSubscription's name for a purchase: the same for every retry with one
/// Idempotency-Key, and at most 40 characters (its members' names must fit a label).
pub fn purchase_name(bundle: &str, tenant: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}\n{key}").as_bytes());
    let suffix: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    let prefix: String = bundle.chars().take(40 - 11).collect();
    format!("{}-{suffix}", prefix.trim_end_matches('-'))
}

#[cfg(test)]
#[path = "bundle_offers_tests.rs"]
mod tests;

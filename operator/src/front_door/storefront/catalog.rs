//! The catalog as one tenant sees it: which listings it may see, and the state of each for it
//! (Available, Installed, Pending, Locked ...). Pure: the handlers pass the cached objects in.

use std::collections::BTreeSet;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::price;
use crate::api::listing::{Activation, Category, Icon, Lifecycle, Listing, ListingType};
use crate::api::tenant::Tenant;
use crate::api::tenant_subscription::{Phase, TenantSubscription, TenantSubscriptionSpec};
use crate::lifecycle::is_terminal;
use crate::lifecycle::validation::{Refusal, RequestContext, Sibling, validate_request};
use crate::lifecycle::visibility::{Viewer, visible_to};

/// What the storefront knows of the tenant asking.
pub struct TenantFacts<'a> {
    pub name: &'a str,
    pub tenant: &'a Tenant,
    /// The tenant's subscriptions (its namespace's), any phase.
    pub subscriptions: &'a [&'a TenantSubscription],
    /// Features the tenant may use now.
    pub entitled_features: &'a BTreeSet<String>,
    /// The catalog's promotions (those the tenant may have are picked per plan).
    pub promotions: &'a [std::sync::Arc<crate::api::Promotion>],
}

impl TenantFacts<'_> {
    fn viewer(&self) -> Viewer<'_> {
        Viewer::of(self.name, self.tenant)
    }

    /// The tenant's subscriptions as validation sees them.
    pub fn siblings(&self, now: Timestamp) -> Vec<Sibling> {
        self.subscriptions
            .iter()
            .map(|s| Sibling::of(s, now))
            .collect()
    }

    /// The promotion `plan` of `listing` has for this tenant at `now` with `code`, if any.
    pub fn offer(
        &self,
        listing: &str,
        plan: &crate::api::listing::Plan,
        code: Option<&str>,
        now: Timestamp,
    ) -> Option<crate::lifecycle::promotion::Offer> {
        let buyer = crate::lifecycle::promotion::Buyer::of(&self.tenant.spec);
        let promotions = self.promotions.iter().map(|p| p.as_ref());
        crate::lifecycle::promotion::offer(listing, plan, &buyer, promotions, code, now)
    }

    /// The rules admission and the reconciler apply, asked of a subscription `name` with
    /// `spec` to `listing` made now (the API does not know the platform version).
    pub fn validate(
        &self,
        name: &str,
        spec: &TenantSubscriptionSpec,
        listing: &Listing,
        siblings: &[Sibling],
        now: Timestamp,
    ) -> Result<(), Refusal> {
        validate_request(&RequestContext {
            name,
            created_at: now,
            spec,
            listing: Some(&listing.spec),
            tenant_name: self.name,
            tenant: Some(self.tenant),
            siblings,
            entitled_features: self.entitled_features,
            platform_version: None,
        })
    }
}

/// A listing's state for one tenant, in the tenant's words.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "state")]
pub enum CardState {
    Available,
    /// Active or Trialing.
    #[serde(rename_all = "camelCase")]
    Installed {
        plan: String,
        trial: bool,
        subscription: String,
    },
    /// On its way: Requested, Invoiced, Paid or Provisioning.
    #[serde(rename_all = "camelCase")]
    Pending {
        phase: Phase,
        subscription: String,
    },
    /// Payment failed or the tenant is suspended.
    #[serde(rename_all = "camelCase")]
    Suspended {
        subscription: String,
    },
    /// Ends at the end of the period (or waits for a confirmation).
    #[serde(rename_all = "camelCase")]
    CancelRequested {
        subscription: String,
    },
    ComingSoon,
    /// Visible but not for this tenant yet: `reason` is the rule (BasePlanNotAllowed,
    /// PrerequisiteMissing, IncompatiblePlatform), `message` what would unlock it.
    Locked {
        reason: String,
        message: String,
    },
}

impl CardState {
    pub fn name(&self) -> &'static str {
        match self {
            CardState::Available => "Available",
            CardState::Installed { .. } => "Installed",
            CardState::Pending { .. } => "Pending",
            CardState::Suspended { .. } => "Suspended",
            CardState::CancelRequested { .. } => "CancelRequested",
            CardState::ComingSoon => "ComingSoon",
            CardState::Locked { .. } => "Locked",
        }
    }
}

/// Whether a tenant sees a listing in its storefront at all.
pub fn shown_to(listing: &Listing, facts: &TenantFacts<'_>) -> bool {
    matches!(
        listing.spec.lifecycle,
        Lifecycle::Published | Lifecycle::ComingSoon
    ) && visible_to(&listing.spec, facts.viewer())
}

/// The tenant's live subscription to `listing`, newest first when there are several.
fn live_subscription<'a>(listing: &str, facts: &TenantFacts<'a>) -> Option<&'a TenantSubscription> {
    facts
        .subscriptions
        .iter()
        .copied()
        .filter(|s| s.spec.listing.as_str() == listing)
        .filter(|s| {
            !s.status
                .as_ref()
                .and_then(|st| st.phase)
                .is_some_and(is_terminal)
        })
        .max_by_key(|s| s.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The state of `listing` for the tenant. `now` stands in for the creation time of the
/// hypothetical subscription the lock rules are checked against.
pub fn card_state(listing: &Listing, facts: &TenantFacts<'_>, now: Timestamp) -> CardState {
    let name = listing.metadata.name.as_deref().unwrap_or_default();
    if let Some(sub) = live_subscription(name, facts) {
        let subscription = sub.metadata.name.clone().unwrap_or_default();
        let phase = sub
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or(Phase::Requested);
        return match phase {
            Phase::Active | Phase::Trialing => CardState::Installed {
                plan: sub.spec.plan.as_str().to_string(),
                trial: phase == Phase::Trialing,
                subscription,
            },
            Phase::Suspended => CardState::Suspended { subscription },
            Phase::CancelRequested => CardState::CancelRequested { subscription },
            _ => CardState::Pending {
                phase,
                subscription,
            },
        };
    }
    if listing.spec.lifecycle == Lifecycle::ComingSoon {
        return CardState::ComingSoon;
    }
    let Some(first_plan) = listing.spec.plans.first() else {
        // Partner listings have no plans and nothing that could lock them.
        return CardState::Available;
    };
    // The same rules a subscription would meet, asked of the cheapest possible one.
    let spec = TenantSubscriptionSpec {
        listing: name.into(),
        plan: first_plan.name.clone(),
        quantity: 1,
        trial: false,
        connection: None,
        promotion_code: None,
        cancellation: None,
        bundle: None,
    };
    match facts.validate("", &spec, listing, &facts.siblings(now), now) {
        Err(r)
            if matches!(
                r.reason,
                "BasePlanNotAllowed" | "PrerequisiteMissing" | "IncompatiblePlatform"
            ) =>
        {
            CardState::Locked {
                reason: r.reason.to_string(),
                message: r.message,
            }
        }
        _ => CardState::Available,
    }
}

/// The filters and page of `GET /v1/tenants/{t}/catalog`.
#[derive(Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct CatalogQuery {
    /// Words to find in the name, tagline or description (all of them, any case).
    pub q: Option<String>,
    pub category: Option<Category>,
    #[serde(rename = "type")]
    pub type_: Option<ListingType>,
    pub featured: Option<bool>,
    /// 1-based.
    pub page: Option<usize>,
    pub page_size: Option<usize>,
}

pub const DEFAULT_PAGE_SIZE: usize = 24;
pub const MAX_PAGE_SIZE: usize = 100;

/// One card of the catalog.
#[derive(Serialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub name: String,
    pub display_name: String,
    pub tagline: String,
    #[serde(rename = "type")]
    pub type_: ListingType,
    pub category: Category,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<Icon>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hero_color: Option<String>,
    pub featured: bool,
    pub activation: Activation,
    /// The newest release's version and date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// e.g. "$49.00/mo", "from $12.00 per vehicle/mo"; none for partner listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    #[serde(flatten)]
    pub state: CardState,
}

/// The price line of a card: the first plan's, "from" when there are several.
pub fn price_summary(listing: &Listing) -> Option<String> {
    let plans = &listing.spec.plans;
    let first = plans.first()?;
    let text = price::describe(&first.pricing);
    Some(if plans.len() > 1 {
        format!("from {text}")
    } else {
        text
    })
}

/// The newest release (by date, then as listed).
pub fn newest_release(listing: &Listing) -> Option<&crate::api::listing::Release> {
    listing
        .spec
        .releases
        .iter()
        .max_by(|a, b| a.date.cmp(&b.date))
}

pub fn card(listing: &Listing, state: CardState) -> Card {
    let spec = &listing.spec;
    let newest = newest_release(listing);
    Card {
        name: listing.metadata.name.clone().unwrap_or_default(),
        display_name: spec.display_name.clone(),
        tagline: spec.tagline.clone(),
        type_: spec.type_,
        category: spec.category,
        icon: spec.icon.clone(),
        hero_color: spec.hero_color.clone(),
        featured: spec.featured,
        activation: spec.activation,
        version: newest.map(|r| r.version.clone()),
        updated: newest.map(|r| r.date.clone()),
        price: price_summary(listing),
        state,
    }
}

fn matches_query(listing: &Listing, query: &CatalogQuery) -> bool {
    let spec = &listing.spec;
    if query.category.is_some_and(|c| c != spec.category)
        || query.type_.is_some_and(|t| t != spec.type_)
        || query.featured.is_some_and(|f| f != spec.featured)
    {
        return false;
    }
    let Some(q) = query.q.as_deref() else {
        return true;
    };
    let haystack = format!(
        "{} {} {}",
        spec.display_name,
        spec.tagline,
        spec.description.as_deref().unwrap_or("")
    )
    .to_lowercase();
    q.split_whitespace()
        .all(|word| haystack.contains(&word.to_lowercase()))
}

/// A page of cards.
#[derive(Serialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CatalogPage {
    pub items: Vec<Card>,
    pub page: usize,
    pub page_size: usize,
    pub total: usize,
}

/// The tenant's catalog: visible listings that match the query, featured first, then by
/// `sortOrder` and name.
pub fn catalog_page<'a>(
    listings: impl IntoIterator<Item = &'a Listing>,
    facts: &TenantFacts<'_>,
    query: &CatalogQuery,
    now: Timestamp,
) -> CatalogPage {
    let mut shown: Vec<&Listing> = listings
        .into_iter()
        .filter(|l| shown_to(l, facts) && matches_query(l, query))
        .collect();
    shown.sort_by_key(|l| {
        (
            !l.spec.featured,
            l.spec.sort_order.unwrap_or(i32::MAX),
            l.spec.display_name.to_lowercase(),
            l.metadata.name.clone(),
        )
    });
    let page_size = query
        .page_size
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let page = query.page.unwrap_or(1).max(1);
    let total = shown.len();
    let items = shown
        .into_iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|l| card(l, card_state(l, facts, now)))
        .collect();
    CatalogPage {
        items,
        page,
        page_size,
        total,
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;

//! A listing's page for one tenant, and the tenant's own subscriptions, in what a tenant may
//! see: no HubSpot ids, no actors (who approved is the provider's business), no internal notes.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::catalog::{Card, TenantFacts, card_state};
use super::price::{self, QuotedPrice};
use crate::api::listing::{FaqEntry, Listing, PartnerRedirect, Release, Screenshot};
use crate::api::tenant_subscription::{
    BundleMembership, CancellationRequest, Phase, TenantSubscription,
};

/// One plan, priced.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub name: String,
    pub display_name: String,
    /// e.g. "$12.00 per vehicle/mo".
    pub price: String,
    /// What a purchase must send back as `confirmedPrice`.
    pub quote: QuotedPrice,
    /// The sentence to confirm for one unit (per-unit plans: multiply by the quantity).
    pub confirmation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_days: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The promotion that sets `price`, `quote` and `confirmation` for this tenant now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionView>,
}

/// A promotion on a plan, as the storefront shows it.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PromotionView {
    /// The Promotion's name.
    pub name: String,
    /// e.g. "Spring launch: 20% off".
    pub display_name: String,
    /// The list price it replaces, e.g. "$49.00/mo".
    pub list_price: String,
    /// When the offer closes: buy before then.
    pub ends_at: Timestamp,
    /// Billing periods a subscription bought now keeps the promoted price.
    pub periods: i32,
}

/// One plan for this tenant now: its price, or the promoted one.
pub fn plan_view(
    listing: &str,
    plan: &crate::api::listing::Plan,
    facts: &TenantFacts<'_>,
    now: Timestamp,
) -> PlanView {
    let offer = facts.offer(listing, plan, None, now);
    let promoted = price::promoted_plan(plan, offer.as_ref());
    PlanView {
        name: plan.name.as_str().to_string(),
        display_name: plan.display_name.clone(),
        price: price::describe(&promoted.pricing),
        quote: QuotedPrice::of(&promoted.pricing),
        confirmation: price::promoted_confirmation(plan, 1, offer.as_ref()),
        trial_days: plan.trial_days.filter(|d| *d > 0),
        unit: plan.pricing.unit.clone(),
        promotion: offer.map(|o| PromotionView {
            name: o.promotion,
            display_name: o.display_name,
            list_price: price::describe(&plan.pricing),
            ends_at: o.ends_at,
            periods: o.periods,
        }),
    }
}

/// One of the tenant's subscriptions, as the tenant sees it.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub name: String,
    pub listing: String,
    pub plan: String,
    pub quantity: i32,
    pub trial: bool,
    pub phase: Phase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_ends_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancellationRequest>,
    /// Phase changes, oldest first.
    pub history: Vec<StepView>,
    /// An integration's field mapping: target field to source field.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub field_mapping: std::collections::BTreeMap<String, String>,
    /// The bundle purchase this subscription is a member of: it ends only with the bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundleMembership>,
}

/// One phase change.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Phase>,
    pub to: Phase,
    pub at: Timestamp,
}

pub fn subscription_view(sub: &TenantSubscription) -> SubscriptionView {
    let status = sub.status.clone().unwrap_or_default();
    SubscriptionView {
        name: sub.metadata.name.clone().unwrap_or_default(),
        listing: sub.spec.listing.as_str().to_string(),
        plan: sub.spec.plan.as_str().to_string(),
        quantity: sub.spec.quantity,
        trial: sub.spec.trial,
        phase: status.phase.unwrap_or(Phase::Requested),
        created_at: sub.metadata.creation_timestamp.as_ref().map(|t| t.0),
        trial_ends_at: status.trial_ends_at.map(|t| t.0),
        current_period_end: status.current_period_end.map(|t| t.0),
        cancellation: sub.spec.cancellation.clone(),
        field_mapping: sub
            .spec
            .connection
            .as_ref()
            .map(|c| c.field_mapping.clone())
            .unwrap_or_default(),
        bundle: sub.spec.bundle.clone(),
        history: status
            .history
            .iter()
            .map(|t| StepView {
                from: t.from,
                to: t.to,
                at: t.at.0,
            })
            .collect(),
    }
}

/// The tenant's subscriptions, newest first.
pub fn subscriptions_view<'a>(
    subs: impl IntoIterator<Item = &'a TenantSubscription>,
) -> Vec<SubscriptionView> {
    let mut views: Vec<SubscriptionView> = subs.into_iter().map(subscription_view).collect();
    views.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.name.cmp(&b.name)));
    views
}

/// `GET /v1/tenants/{t}/catalog/{listing}`.
#[derive(Serialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ListingDetail {
    #[serde(flatten)]
    pub card: Card,
    /// Markdown, as the catalog wrote it: render it safely (no raw HTML).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub what_you_get: Vec<String>,
    pub screenshots: Vec<Screenshot>,
    pub faq: Vec<FaqEntry>,
    pub security_badges: Vec<String>,
    /// Newest first.
    pub releases: Vec<Release>,
    pub plans: Vec<PlanView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<PartnerRedirect>,
    /// The WizardConfig an integration connects with (see `wizard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wizard_config: Option<String>,
    /// This tenant's subscriptions to the listing, newest first.
    pub your_subscriptions: Vec<SubscriptionView>,
}

pub fn listing_detail(listing: &Listing, facts: &TenantFacts<'_>, now: Timestamp) -> ListingDetail {
    let spec = &listing.spec;
    let name = listing.metadata.name.as_deref().unwrap_or_default();
    let mut releases = spec.releases.clone();
    releases.sort_by(|a, b| b.date.cmp(&a.date));
    ListingDetail {
        card: super::catalog::card(listing, card_state(listing, facts, now)),
        description: spec.description.clone(),
        what_you_get: spec.what_you_get.clone(),
        screenshots: spec.screenshots.clone(),
        faq: spec.faq.clone(),
        security_badges: spec.security_badges.clone(),
        releases,
        plans: spec
            .plans
            .iter()
            .map(|p| plan_view(name, p, facts, now))
            .collect(),
        partner: spec.partner.clone(),
        wizard_config: spec
            .integration
            .as_ref()
            .map(|i| i.wizard_config_ref.as_str().to_string()),
        your_subscriptions: subscriptions_view(
            facts
                .subscriptions
                .iter()
                .copied()
                .filter(|s| s.spec.listing.as_str() == name),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::api::tenant::Tenant;
    use crate::lifecycle::fixtures::{listing, subscription, tenant, ts};

    #[test]
    fn the_detail_prices_each_plan_and_lists_releases_newest_first() {
        let l = Listing::new(
            "route",
            listing(
                "releases: [{version: 1.0.0, date: '2026-01-01', summary: First}, {version: 1.2.0, date: '2026-06-01', summary: Faster}]",
            ),
        );
        let acme = Tenant::new("acme", tenant("Professional"));
        let mut mine =
            TenantSubscription::new("route-1", subscription("{listing: route, plan: flat}"));
        mine.metadata.namespace = Some("tenant-acme".into());
        let other = TenantSubscription::new("chat-1", subscription("{listing: chat, plan: flat}"));
        let subs = [&mine, &other];
        let features = BTreeSet::new();
        let facts = TenantFacts {
            name: "acme",
            tenant: &acme,
            subscriptions: &subs,
            entitled_features: &features,
            promotions: &[],
        };
        let detail = listing_detail(&l, &facts, ts("2026-12-01T00:00:00Z"));
        assert_eq!(detail.releases[0].version, "1.2.0");
        assert_eq!(detail.plans[1].price, "$49.00/yr");
        assert_eq!(
            detail.plans[1].confirmation,
            "Confirm addition of $49.00/yr to your bill?"
        );
        assert_eq!(detail.plans[0].trial_days, Some(14));
        let names: Vec<&str> = detail
            .your_subscriptions
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["route-1"]);
        let json = serde_json::to_value(&detail).unwrap();
        assert_eq!(json["state"], "Pending");
        assert!(json.get("hubspot").is_none());
    }

    #[test]
    fn a_promoted_plan_is_quoted_at_its_promoted_price_until_the_promotion_ends() {
        let l = Listing::new("route", listing(""));
        let acme = Tenant::new("acme", tenant("Professional"));
        let spec = serde_saphyr::from_str(
            "{displayName: Spring sale, targets: [{listing: route, plans: [flat]}], discount: {amount: '9'}, startsAt: '2026-03-01T00:00:00Z', endsAt: '2026-04-01T00:00:00Z', periods: 2}",
        )
        .unwrap();
        let promotions = [std::sync::Arc::new(crate::api::Promotion::new(
            "spring", spec,
        ))];
        let features = BTreeSet::new();
        let facts = TenantFacts {
            name: "acme",
            tenant: &acme,
            subscriptions: &[],
            entitled_features: &features,
            promotions: &promotions,
        };
        let during = listing_detail(&l, &facts, ts("2026-03-15T00:00:00Z"));
        let flat = &during.plans[1];
        assert_eq!(flat.price, "$40.00/yr");
        assert_eq!(flat.quote.amount, "40.00");
        let promotion = flat.promotion.as_ref().expect("promoted");
        assert_eq!(promotion.list_price, "$49.00/yr");
        assert_eq!(promotion.ends_at, ts("2026-04-01T00:00:00Z"));
        assert_eq!(
            flat.confirmation,
            "Confirm addition of $40.00/yr to your bill? Spring sale: this price for 2 billing periods, then $49.00/yr."
        );
        assert!(during.plans[0].promotion.is_none(), "another plan");
        let after = listing_detail(&l, &facts, ts("2026-04-01T00:00:00Z"));
        assert_eq!(after.plans[1].price, "$49.00/yr");
        assert!(after.plans[1].promotion.is_none());
    }
}

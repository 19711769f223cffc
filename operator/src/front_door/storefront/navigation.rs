//! The menu entries a tenant's product UI shows: those of the listings it is entitled to
//! (seed: "Itinerary Planning appears in the Dispatch menu" once bought).

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::Serialize;

use super::catalog::TenantFacts;
use crate::api::listing::Listing;
use crate::lifecycle::visibility::visible_to;

/// One entry, with the listing that unlocked it.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NavigationView {
    pub menu: String,
    pub label: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i32>,
    pub listing: String,
}

/// The entries unlocked for the tenant, by menu, then order (unordered last), then label.
/// An entry shows when the tenant may use its `feature`, or any of the listing's features.
pub fn navigation<'a>(
    listings: impl IntoIterator<Item = &'a Listing>,
    facts: &TenantFacts<'_>,
) -> Vec<NavigationView> {
    let entitled: &BTreeSet<String> = facts.entitled_features;
    let mut entries: Vec<NavigationView> = listings
        .into_iter()
        .filter(|l| {
            visible_to(
                &l.spec,
                crate::lifecycle::visibility::Viewer::of(facts.name, facts.tenant),
            )
        })
        .flat_map(|l| {
            let any_feature = l
                .spec
                .features
                .iter()
                .any(|f| entitled.contains(f.as_str()));
            let name = l.metadata.name.clone().unwrap_or_default();
            l.spec
                .navigation
                .iter()
                .filter(move |n| match &n.feature {
                    Some(f) => entitled.contains(f.as_str()),
                    None => any_feature,
                })
                .map(move |n| NavigationView {
                    menu: n.menu.clone(),
                    label: n.label.clone(),
                    path: n.path.clone(),
                    icon: n.icon.clone(),
                    order: n.order,
                    listing: name.clone(),
                })
        })
        .collect();
    entries.sort_by(|a, b| {
        (&a.menu, a.order.unwrap_or(i32::MAX), &a.label, &a.path).cmp(&(
            &b.menu,
            b.order.unwrap_or(i32::MAX),
            &b.label,
            &b.path,
        ))
    });
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tenant::Tenant;
    use crate::lifecycle::fixtures::{listing, tenant};

    #[test]
    fn entries_follow_the_features_the_tenant_may_use() {
        let route = Listing::new(
            "route",
            listing(
                "navigation: [{menu: Dispatch, label: Itinerary Planning, path: /dispatch/itineraries, order: 2}, {menu: Dispatch, label: Live Traffic, path: /dispatch/traffic, feature: live_traffic}, {menu: Dispatch, label: Aardvark, path: /dispatch/a, order: 1}]",
            ),
        );
        let acme = Tenant::new("acme", tenant("Professional"));
        let view = |features: &[&str]| -> Vec<String> {
            let entitled: BTreeSet<String> = features.iter().map(|f| f.to_string()).collect();
            let facts = TenantFacts {
                name: "acme",
                tenant: &acme,
                subscriptions: &[],
                entitled_features: &entitled,
                promotions: &[],
            };
            navigation([&route], &facts)
                .into_iter()
                .map(|e| e.label)
                .collect()
        };
        assert!(view(&[]).is_empty());
        assert_eq!(
            view(&["route_optimization"]),
            ["Aardvark", "Itinerary Planning"]
        );
        assert_eq!(view(&["live_traffic"]), ["Live Traffic"]);
    }
}

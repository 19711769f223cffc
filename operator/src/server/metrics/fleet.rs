//! What a dashboard shows about the subscriptions, computed from the shared caches at scrape
//! time (so it is never stale and needs no bookkeeping on every transition): how many there are
//! by listing and phase, the monthly recurring revenue by listing and currency, and how many
//! are stuck (provisioning failed, drift not healed). A pure function over cached objects.
//!
//! Labels are a listing's name, a phase, a currency: bounded by the catalog, never by tenants.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::conditions::find_condition;
use crate::api::conditions::reasons::{DRIFT_FOUND, FAILED};
use crate::api::conditions::types::{BILLED, ENTITLED, SYNCED};
use crate::api::tenant_subscription::Phase;
use crate::api::{Listing, TenantSubscription};
use crate::health::revenue::monthly_billing;

/// The label of a subscription with no phase yet (just created, not reconciled).
pub const NO_PHASE: &str = "Unobserved";

/// The tallies of one scrape.
#[derive(Debug, Default, PartialEq)]
pub struct Fleet {
    /// Subscriptions by (listing, phase).
    pub by_phase: BTreeMap<(String, &'static str), u64>,
    /// Monthly recurring revenue by (listing, currency), in the currency's units.
    pub mrr: BTreeMap<(String, String), f64>,
    /// Subscriptions not yet in service whose billing or entitlements failed, by listing.
    pub provisioning_failed: BTreeMap<String, u64>,
    /// Subscriptions whose drift was found and could not be healed, by listing.
    pub drift_unhealed: BTreeMap<String, u64>,
}

/// The phase's label (its name in the API).
pub fn phase_label(phase: Option<Phase>) -> &'static str {
    match phase {
        None => NO_PHASE,
        Some(Phase::Requested) => "Requested",
        Some(Phase::Invoiced) => "Invoiced",
        Some(Phase::Paid) => "Paid",
        Some(Phase::Provisioning) => "Provisioning",
        Some(Phase::Trialing) => "Trialing",
        Some(Phase::Active) => "Active",
        Some(Phase::Suspended) => "Suspended",
        Some(Phase::CancelRequested) => "CancelRequested",
        Some(Phase::Cancelled) => "Cancelled",
        Some(Phase::Rejected) => "Rejected",
        Some(Phase::Failed) => "Failed",
    }
}

/// Tallies `subscriptions`, pricing them with the plans of `listing(name)`.
pub fn tally(
    subscriptions: &[Arc<TenantSubscription>],
    listing: impl Fn(&str) -> Option<Arc<Listing>>,
) -> Fleet {
    let mut fleet = Fleet::default();
    for sub in subscriptions {
        let listing_name = sub.spec.listing.as_str().to_string();
        let status = sub.status.clone().unwrap_or_default();
        *fleet
            .by_phase
            .entry((listing_name.clone(), phase_label(status.phase)))
            .or_default() += 1;
        let failed = |type_: &str| {
            find_condition(&status.conditions, type_)
                .is_some_and(|c| c.status == "False" && c.reason == FAILED)
        };
        let waiting = matches!(
            status.phase,
            None | Some(Phase::Requested | Phase::Paid | Phase::Provisioning)
        );
        if waiting && (failed(BILLED) || failed(ENTITLED)) {
            *fleet
                .provisioning_failed
                .entry(listing_name.clone())
                .or_default() += 1;
        }
        if find_condition(&status.conditions, SYNCED).is_some_and(|c| c.reason == DRIFT_FOUND) {
            *fleet
                .drift_unhealed
                .entry(listing_name.clone())
                .or_default() += 1;
        }
        if let Some(billing) = monthly_billing(sub, &listing) {
            *fleet
                .mrr
                .entry((billing.listing, billing.currency))
                .or_default() += billing.amount;
        }
    }
    fleet
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listing(name: &str, plans: serde_json::Value) -> Arc<Listing> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing",
                "metadata": {"name": name},
                "spec": {"displayName": "Routes", "tagline": "Fast routes", "type": "InApp",
                         "category": "Operations", "lifecycle": "Published",
                         "features": ["route_optimization"], "plans": plans}
            }))
            .expect("a Listing"),
        )
    }

    fn sub(
        listing: &str,
        plan: &str,
        quantity: i32,
        phase: Option<&str>,
        extra: serde_json::Value,
    ) -> Arc<TenantSubscription> {
        let mut status = json!({"conditions": []});
        if let Some(phase) = phase {
            status["phase"] = json!(phase);
        }
        if let serde_json::Value::Object(extra) = extra {
            for (k, v) in extra {
                status[k] = v;
            }
        }
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
                "metadata": {"name": "s", "namespace": "tenant-a"},
                "spec": {"listing": listing, "plan": plan, "quantity": quantity},
                "status": status,
            }))
            .expect("a TenantSubscription"),
        )
    }

    fn condition(type_: &str, status: &str, reason: &str) -> serde_json::Value {
        json!({"type": type_, "status": status, "reason": reason, "message": "",
               "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn counts_by_listing_and_phase_and_prices_what_is_billed_per_month() {
        let routes = listing(
            "routes",
            json!([
                {"name": "standard", "displayName": "Standard",
                 "pricing": {"model": "PerUnit", "amount": "12.00", "currency": "USD",
                             "interval": "Month", "unit": "vehicle"}},
                {"name": "fleet", "displayName": "Fleet",
                 "pricing": {"model": "Flat", "amount": "1200", "currency": "USD",
                             "interval": "Year"}},
            ]),
        );
        let maps = listing(
            "maps",
            json!([{"name": "eu", "displayName": "EU",
                    "pricing": {"model": "Flat", "amount": "49.50", "currency": "EUR",
                                "interval": "Month"}}]),
        );
        let subs = vec![
            // 3 × 12.00 USD.
            sub("routes", "standard", 3, Some("Active"), json!({})),
            // 1200/year: 100 USD a month; still billed until the period ends.
            sub("routes", "fleet", 1, Some("CancelRequested"), json!({})),
            // HubSpot still bills 2 vehicles of the plan it has, whatever the spec asks.
            sub(
                "routes",
                "fleet",
                9,
                Some("Active"),
                json!({"hubspot": {"billedPlan": "standard", "billedQuantity": 2}}),
            ),
            // Not counted: a trial, a suspension, an approval step, an end.
            sub("routes", "standard", 5, Some("Trialing"), json!({})),
            sub("routes", "standard", 5, Some("Suspended"), json!({})),
            sub("maps", "eu", 1, Some("Invoiced"), json!({})),
            sub("maps", "eu", 1, Some("Cancelled"), json!({})),
            sub("maps", "eu", 1, Some("Active"), json!({})),
            sub("maps", "eu", 1, None, json!({})),
            // A listing gone from the catalog: counted, not priced.
            sub("gone", "x", 1, Some("Active"), json!({})),
        ];
        let catalog = [routes, maps];
        let fleet = tally(&subs, |name| {
            catalog
                .iter()
                .find(|l| l.metadata.name.as_deref() == Some(name))
                .cloned()
        });
        let count = |l: &str, p: &'static str| fleet.by_phase.get(&(l.to_string(), p)).copied();
        assert_eq!(count("routes", "Active"), Some(2));
        assert_eq!(count("routes", "CancelRequested"), Some(1));
        assert_eq!(count("routes", "Trialing"), Some(1));
        assert_eq!(count("maps", "Invoiced"), Some(1));
        assert_eq!(count("maps", NO_PHASE), Some(1));
        assert_eq!(count("gone", "Active"), Some(1));
        assert_eq!(fleet.by_phase.values().sum::<u64>(), subs.len() as u64);
        let mrr = |l: &str, c: &str| fleet.mrr.get(&(l.to_string(), c.to_string())).copied();
        assert_eq!(mrr("routes", "USD"), Some(36.0 + 100.0 + 24.0));
        assert_eq!(mrr("maps", "EUR"), Some(49.5));
        assert_eq!(mrr("gone", "USD"), None);
        assert_eq!(fleet.mrr.len(), 2);
    }

    #[test]
    fn stuck_subscriptions_are_provisioning_failures_and_unhealed_drift() {
        let subs = vec![
            sub(
                "routes",
                "standard",
                1,
                Some("Provisioning"),
                json!({"conditions": [condition(BILLED, "False", FAILED)]}),
            ),
            sub(
                "routes",
                "standard",
                1,
                Some("Provisioning"),
                json!({"conditions": [condition(ENTITLED, "False", FAILED)]}),
            ),
            // Waiting for billing to be configured is not a failure.
            sub(
                "routes",
                "standard",
                1,
                Some("Provisioning"),
                json!({"conditions": [condition(BILLED, "False", "Missing")]}),
            ),
            // In service: a failed billing call there is drift's business, not provisioning's.
            sub(
                "routes",
                "standard",
                1,
                Some("Active"),
                json!({"conditions": [condition(BILLED, "False", FAILED),
                                      condition(SYNCED, "False", DRIFT_FOUND)]}),
            ),
            sub(
                "maps",
                "eu",
                1,
                Some("Suspended"),
                json!({"conditions": [condition(SYNCED, "True", "Healed")]}),
            ),
        ];
        let fleet = tally(&subs, |_| None);
        assert_eq!(
            fleet.provisioning_failed,
            BTreeMap::from([("routes".to_string(), 2)])
        );
        assert_eq!(
            fleet.drift_unhealed,
            BTreeMap::from([("routes".to_string(), 1)])
        );
    }
}

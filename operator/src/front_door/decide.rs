//! What the entitlement API answers, as pure functions of the cached objects, the request and
//! the time: which features the catalog knows, a tenant's view of each, and the ETags. The
//! handlers only gather these inputs and render the results.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::entitlement::{EntitlementSpec, EntitlementState};
use crate::api::listing::{ListingSpec, Plan};
use crate::api::metered::MeteredPrice;

/// Every feature code any Listing grants (its features, and every plan's extras), whatever the
/// listing's lifecycle: a code in here is a known flag, one outside is unknown (404).
pub fn catalog_features<'a>(
    listings: impl IntoIterator<Item = &'a ListingSpec>,
) -> BTreeSet<String> {
    let mut features = BTreeSet::new();
    for listing in listings {
        features.extend(listing.features.iter().map(|f| f.as_str().to_string()));
        for plan in &listing.plans {
            features.extend(plan.extra_features.iter().map(|f| f.as_str().to_string()));
        }
    }
    features
}

/// One feature of a tenant, as `GET /v1/tenants/{t}/entitlements` lists it.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementView {
    pub feature: String,
    pub state: EntitlementState,
    pub starts_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    pub source_subscription: String,
}

/// How usable a state is, to pick one Entitlement when several subscriptions grant a feature.
fn rank(state: EntitlementState) -> u8 {
    match state {
        EntitlementState::Active => 3,
        EntitlementState::Trialing => 2,
        EntitlementState::Suspended => 1,
        EntitlementState::Revoked => 0,
    }
}

/// The tenant's features, one per code, sorted: when several Entitlements grant one feature,
/// the most usable wins (then the one that ends last, open-ended first).
pub fn tenant_features<'a>(
    entitlements: impl IntoIterator<Item = &'a EntitlementSpec>,
) -> Vec<EntitlementView> {
    let mut best: BTreeMap<&str, &EntitlementSpec> = BTreeMap::new();
    for e in entitlements {
        let key = (
            rank(e.state),
            e.ends_at.as_ref().map(|t| t.0).unwrap_or(Timestamp::MAX),
        );
        match best.get(e.feature.as_str()) {
            Some(current)
                if (
                    rank(current.state),
                    current
                        .ends_at
                        .as_ref()
                        .map(|t| t.0)
                        .unwrap_or(Timestamp::MAX),
                ) >= key => {}
            _ => {
                best.insert(e.feature.as_str(), e);
            }
        }
    }
    best.into_values()
        .map(|e| EntitlementView {
            feature: e.feature.as_str().to_string(),
            state: e.state,
            starts_at: e.starts_at.0,
            ends_at: e.ends_at.as_ref().map(|t| t.0),
            source_subscription: e.source_subscription.clone(),
        })
        .collect()
}

/// Why a feature is or is not usable.
#[derive(Serialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckReason {
    /// Active: paid and current.
    Entitled,
    /// In a trial.
    Trialing,
    /// Payment failed or the tenant is suspended.
    Suspended,
    /// The subscription ended.
    Revoked,
    /// Its end time has passed (the operator has not caught up yet).
    Expired,
    /// The catalog has the feature; this tenant has no subscription granting it.
    NotEntitled,
    /// The plan's hard limit: this period's usage of its meter has reached the included
    /// quantity (usable again next period).
    UsageLimitReached,
}

/// The answer of `GET /v1/tenants/{t}/entitlements/{feature}`.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeatureCheck {
    pub feature: String,
    pub enabled: bool,
    pub state: Option<EntitlementState>,
    pub reason: CheckReason,
    pub ends_at: Option<Timestamp>,
    /// Present when the granting plan has a hard-limited meter: its usage this period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageAllowance>,
}

/// A hard-limited meter's state this period, as the check sees it.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UsageAllowance {
    pub meter: String,
    /// The period's quantity so far (the plan's aggregation of its events).
    pub used: f64,
    pub included: i64,
}

impl UsageAllowance {
    /// Used up: the next unit would be past the included quantity.
    pub fn exhausted(&self) -> bool {
        self.used >= self.included as f64
    }
}

/// Hard-limited allowances by feature code: what the check of a metered feature depends on.
pub type Allowances = BTreeMap<String, UsageAllowance>;

/// The features whose granting plan (`plan_of` the view's source subscription) has a
/// hard-limited metered price, with that price: the meters an entitlement check must read.
pub fn hard_limited<'a>(
    features: &[EntitlementView],
    plan_of: impl Fn(&str) -> Option<&'a Plan>,
) -> BTreeMap<String, &'a MeteredPrice> {
    features
        .iter()
        .filter_map(|view| {
            let metered = plan_of(&view.source_subscription)?.metered.as_ref()?;
            metered.hard_limit.then(|| (view.feature.clone(), metered))
        })
        .collect()
}

/// `check` once usage counts: an enabled feature whose allowance is used up is not enabled.
pub fn within_allowance(check: FeatureCheck, allowances: &Allowances) -> FeatureCheck {
    match allowances.get(&check.feature) {
        Some(allowance) => FeatureCheck {
            usage: Some(allowance.clone()),
            ..usage_limited(check, allowance.exhausted())
        },
        None => check,
    }
}

/// `check` of a feature whose hard-limited meter is used up (`limited`) or not.
pub fn usage_limited(mut check: FeatureCheck, limited: bool) -> FeatureCheck {
    if check.enabled && limited {
        check.enabled = false;
        check.reason = CheckReason::UsageLimitReached;
    }
    check
}

/// May the tenant with `features` use `feature` at `now`, with its hard-limited `allowances`?
/// `None`: no Listing grants it (404).
pub fn check_feature(
    features: &[EntitlementView],
    catalog: &BTreeSet<String>,
    feature: &str,
    now: Timestamp,
    allowances: &Allowances,
) -> Option<FeatureCheck> {
    let view = features.iter().find(|v| v.feature == feature);
    (view.is_some() || catalog.contains(feature))
        .then(|| within_allowance(check_view(feature, view, now), allowances))
}

/// The check of `feature` for a tenant whose most usable grant of it is `view` (`None`: the
/// tenant has none).
pub fn check_view(feature: &str, view: Option<&EntitlementView>, now: Timestamp) -> FeatureCheck {
    let Some(view) = view else {
        return FeatureCheck {
            feature: feature.to_string(),
            enabled: false,
            state: None,
            reason: CheckReason::NotEntitled,
            ends_at: None,
            usage: None,
        };
    };
    let expired = view.ends_at.is_some_and(|end| end <= now);
    let reason = match view.state {
        EntitlementState::Active | EntitlementState::Trialing if expired => CheckReason::Expired,
        EntitlementState::Active => CheckReason::Entitled,
        EntitlementState::Trialing => CheckReason::Trialing,
        EntitlementState::Suspended => CheckReason::Suspended,
        EntitlementState::Revoked => CheckReason::Revoked,
    };
    FeatureCheck {
        feature: feature.to_string(),
        enabled: matches!(reason, CheckReason::Entitled | CheckReason::Trialing),
        state: Some(view.state),
        reason,
        ends_at: view.ends_at,
        usage: None,
    }
}

/// A strong ETag over `parts` (each length-prefixed, so part boundaries count).
pub fn etag(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Does an `If-None-Match` header value match `etag` (weak comparison, as RFC 9110 asks for
/// this header; `*` matches anything)?
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header
        .split(',')
        .any(|candidate| candidate.trim() == "*" || bare(candidate) == bare(etag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn spec(feature: &str, state: &str, ends_at: Option<&str>, source: &str) -> EntitlementSpec {
        let mut v = json!({"tenant": "acme", "feature": feature, "state": state,
            "startsAt": "2026-01-01T00:00:00Z", "sourceSubscription": source});
        if let Some(end) = ends_at {
            v["endsAt"] = json!(end);
        }
        serde_json::from_value(v).unwrap()
    }

    fn listing(features: &[&str], extras: &[&str]) -> ListingSpec {
        serde_json::from_value(json!({
            "displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
            "category": "Operations", "lifecycle": "Published", "features": features,
            "plans": [{"name": "standard", "displayName": "Standard", "extraFeatures": extras,
                "pricing": {"model": "Flat", "amount": "12.00", "currency": "USD", "interval": "Month"}}],
        }))
        .unwrap()
    }

    #[test]
    fn the_catalog_knows_listing_features_and_plan_extras() {
        let a = listing(&["route_optimization"], &["eta_predictions"]);
        let b = listing(&["gigsafe"], &[]);
        let known = catalog_features([&a, &b]);
        assert_eq!(
            known.into_iter().collect::<Vec<_>>(),
            ["eta_predictions", "gigsafe", "route_optimization"]
        );
    }

    #[test]
    fn the_most_usable_grant_of_a_feature_wins() {
        let specs = [
            spec("routes", "Revoked", Some("2026-02-01T00:00:00Z"), "old"),
            spec("routes", "Trialing", Some("2026-03-01T00:00:00Z"), "trial"),
            spec("eta", "Suspended", None, "s"),
        ];
        let views = tenant_features(&specs);
        assert_eq!(views.len(), 2);
        assert_eq!(
            (views[0].feature.as_str(), views[0].state),
            ("eta", EntitlementState::Suspended)
        );
        assert_eq!(views[1].source_subscription, "trial");
    }

    #[test]
    fn only_active_and_trialing_features_are_enabled() {
        let now = at("2026-02-15T00:00:00Z");
        let specs = [
            spec("a", "Active", None, "s"),
            spec("t", "Trialing", Some("2026-03-01T00:00:00Z"), "s"),
            spec("s", "Suspended", None, "s"),
            spec("r", "Revoked", None, "s"),
            spec("x", "Active", Some("2026-02-01T00:00:00Z"), "s"),
        ];
        let views = tenant_features(&specs);
        let catalog: BTreeSet<String> = ["a", "t", "s", "r", "x", "other"].map(String::from).into();
        let check = |f| check_feature(&views, &catalog, f, now, &Allowances::new()).unwrap();
        assert_eq!(
            (check("a").enabled, check("a").reason),
            (true, CheckReason::Entitled)
        );
        assert_eq!(
            (check("t").enabled, check("t").reason),
            (true, CheckReason::Trialing)
        );
        assert_eq!(check("t").ends_at, Some(at("2026-03-01T00:00:00Z")));
        assert_eq!(
            (check("s").enabled, check("s").reason),
            (false, CheckReason::Suspended)
        );
        assert_eq!(
            (check("r").enabled, check("r").reason),
            (false, CheckReason::Revoked)
        );
        assert_eq!(
            (check("x").enabled, check("x").reason),
            (false, CheckReason::Expired)
        );
        let lacking = check("other");
        assert_eq!(
            (lacking.enabled, lacking.reason, lacking.state),
            (false, CheckReason::NotEntitled, None)
        );
        assert_eq!(
            check_feature(&views, &catalog, "unknown", now, &Allowances::new()),
            None
        );
    }

    #[test]
    fn a_hard_limited_feature_is_off_once_its_allowance_is_used_up() {
        let now = at("2026-02-15T00:00:00Z");
        let metered: ListingSpec = serde_json::from_value(json!({
            "displayName": "Docs", "tagline": "Read documents", "type": "InApp",
            "category": "AI", "lifecycle": "Published", "features": ["docs"],
            "plans": [{"name": "starter", "displayName": "Starter",
                "pricing": {"model": "Flat", "amount": "9", "currency": "USD", "interval": "Month"},
                "metered": {"meter": "document.page", "unit": "page", "unitPrice": "0",
                            "includedQuantity": 3, "hardLimit": true}}],
        }))
        .unwrap();
        let soft = listing(&["routes"], &[]);
        let specs = [
            spec("docs", "Active", None, "docs-sub"),
            spec("routes", "Active", None, "routes-sub"),
        ];
        let views = tenant_features(&specs);
        let plan_of = |subscription: &str| match subscription {
            "docs-sub" => metered.plans.first(),
            _ => soft.plans.first(),
        };
        let limited = hard_limited(&views, plan_of);
        assert_eq!(limited.keys().collect::<Vec<_>>(), ["docs"]);
        let catalog: BTreeSet<String> = ["docs", "routes"].map(String::from).into();
        let allowance = |used: f64| {
            Allowances::from([(
                "docs".to_string(),
                UsageAllowance {
                    meter: "document.page".into(),
                    used,
                    included: 3,
                },
            )])
        };
        let below = check_feature(&views, &catalog, "docs", now, &allowance(2.0)).unwrap();
        assert_eq!((below.enabled, below.reason), (true, CheckReason::Entitled));
        assert_eq!(below.usage.as_ref().map(|u| u.used), Some(2.0));
        let used_up = check_feature(&views, &catalog, "docs", now, &allowance(3.0)).unwrap();
        assert_eq!(
            (used_up.enabled, used_up.reason),
            (false, CheckReason::UsageLimitReached)
        );
        // Other features and other reasons are left alone.
        let routes = check_feature(&views, &catalog, "routes", now, &allowance(3.0)).unwrap();
        assert!(routes.enabled && routes.usage.is_none());
        let suspended = [spec("docs", "Suspended", None, "docs-sub")];
        let check = check_feature(
            &tenant_features(&suspended),
            &catalog,
            "docs",
            now,
            &allowance(9.0),
        );
        assert_eq!(check.unwrap().reason, CheckReason::Suspended);
    }

    #[test]
    fn etags_change_with_any_part_and_match_weakly() {
        let a = etag(&[b"tenant-a", b"{}"]);
        assert_ne!(a, etag(&[b"tenant-b", b"{}"]));
        assert_ne!(a, etag(&[b"tenant-a", b"{ }"]));
        assert_ne!(etag(&[b"ab", b"c"]), etag(&[b"a", b"bc"]));
        assert!(a.starts_with('"') && a.ends_with('"'));
        assert!(if_none_match(&a, &a));
        assert!(if_none_match(&format!("\"x\", W/{a}"), &a));
        assert!(if_none_match("*", &a));
        assert!(!if_none_match("\"x\"", &a));
    }
}

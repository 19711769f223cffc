//! Test fixtures shared by the deciders' tests.

use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::api::listing::ListingSpec;
use crate::api::tenant::TenantSpec;
use crate::api::tenant_subscription::TenantSubscriptionSpec;

pub fn listing(extra: &str) -> ListingSpec {
    let base = r#"
displayName: Route Optimization
tagline: Fast routes
type: InApp
category: Operations
lifecycle: Published
features: [route_optimization]
plans:
  - name: standard
    displayName: Standard
    pricing: {model: PerUnit, amount: "12.00", currency: USD, interval: Month, unit: vehicle}
    trialDays: 14
  - name: flat
    displayName: Flat
    pricing: {model: Flat, amount: "49.00", currency: USD, interval: Year}
    extraFeatures: [live_traffic]
"#;
    let mut value: serde_json::Value = serde_saphyr::from_str(base).unwrap();
    if !extra.trim().is_empty() {
        let patch: serde_json::Value = serde_saphyr::from_str(extra).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            value[k] = v.clone();
        }
    }
    serde_json::from_value(value).unwrap()
}

pub fn tenant(base_plan: &str) -> TenantSpec {
    serde_json::from_value(serde_json::json!({
        "displayName": "Acme",
        "basePlan": base_plan,
        "billingContact": {"name": "Ann Example", "email": "ann@example.com"},
    }))
    .unwrap()
}

pub fn subscription(yaml: &str) -> TenantSubscriptionSpec {
    serde_saphyr::from_str(yaml).unwrap()
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn no_features() -> BTreeSet<String> {
    BTreeSet::new()
}

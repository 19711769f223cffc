//! Which tenants may see, and so buy, a listing (`spec.visibility` and `spec.audience`). One rule
//! for the storefront, the admission webhook and the subscription reconciler alike.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::api::listing::{ListingSpec, Visibility};
use crate::api::tenant::{Tenant, TenantSpec};

/// What visibility looks at of a tenant.
#[derive(Clone, Copy, Debug)]
pub struct Viewer<'a> {
    pub name: &'a str,
    pub spec: &'a TenantSpec,
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> Viewer<'a> {
    /// The viewer facts of a Tenant object; `name` is the tenant's name as the caller knows it.
    pub fn of(name: &'a str, tenant: &'a Tenant) -> Self {
        Viewer {
            name,
            spec: &tenant.spec,
            labels: tenant.labels(),
        }
    }
}

/// Whether `tenant` may see `listing`. A Private listing whose selector is malformed is shown to
/// nobody but the tenants it names: a typo must never publish a private offer to everyone.
pub fn visible_to(listing: &ListingSpec, tenant: Viewer<'_>) -> bool {
    match listing.visibility {
        Visibility::Public => true,
        Visibility::Internal => tenant.spec.internal,
        Visibility::Private => listing.audience.as_ref().is_some_and(|audience| {
            audience.tenants.iter().any(|t| t.as_str() == tenant.name)
                || audience.tenant_selector.as_ref().is_some_and(|selector| {
                    Selector::try_from(selector.clone())
                        .is_ok_and(|s| !selector_is_empty(selector) && s.matches(tenant.labels))
                })
        }),
    }
}

/// An empty selector matches everything in Kubernetes; for a private offer that would be a leak.
fn selector_is_empty(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::fixtures::{listing, tenant};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn public_listings_are_for_everyone_internal_ones_for_internal_tenants() {
        let public = listing("");
        let internal = listing("visibility: Internal");
        let plain = tenant("Starter");
        let mut staff = tenant("Starter");
        staff.internal = true;
        let none = labels(&[]);
        let as_viewer = |spec| Viewer {
            name: "acme",
            spec,
            labels: &none,
        };
        assert!(visible_to(&public, as_viewer(&plain)));
        assert!(!visible_to(&internal, as_viewer(&plain)));
        assert!(visible_to(&internal, as_viewer(&staff)));
    }

    #[test]
    fn private_listings_are_for_the_tenants_named_or_selected() {
        let private = listing(
            "visibility: Private\naudience:\n  tenants: [acme]\n  tenantSelector:\n    matchLabels: {segment: enterprise}",
        );
        let spec = tenant("Starter");
        let enterprise = labels(&[("segment", "enterprise")]);
        let smb = labels(&[("segment", "smb")]);
        let viewer = |name, labels| Viewer {
            name,
            spec: &spec,
            labels,
        };
        assert!(visible_to(&private, viewer("acme", &smb)));
        assert!(visible_to(&private, viewer("globex", &enterprise)));
        assert!(!visible_to(&private, viewer("globex", &smb)));
    }

    #[test]
    fn a_private_listing_with_an_empty_or_broken_selector_is_shown_to_nobody_else() {
        let spec = tenant("Starter");
        let any = labels(&[("segment", "enterprise")]);
        for selector in [
            "tenantSelector: {}",
            "tenantSelector:\n    matchExpressions: [{key: segment, operator: Bogus}]",
        ] {
            let private = listing(&format!("visibility: Private\naudience:\n  {selector}"));
            let viewer = Viewer {
                name: "globex",
                spec: &spec,
                labels: &any,
            };
            assert!(!visible_to(&private, viewer), "{selector}");
        }
    }
}

//! The shared caches every marketplace process reads: Listings, Tenants, TenantSubscriptions
//! and Entitlements, one watch each. The operator's controllers are driven by their changes
//! (so a replica that becomes leader decides from a warm cache at once), and the marketplace
//! API answers from them without calling the apiserver.
//!
//! Start them once per process with [`Stores::start`], wait for [`Stores::wait_until_ready`],
//! then clone freely: every clone reads the same caches. They hold objects without managed
//! fields ([`SharedCache::start_trimmed`]): nothing here reads them, and they were most of the
//! memory of a process caching a large cluster. Entitlements whose labels are the ones their
//! spec makes keep them as an empty map: read them with `api::entitlement::labels_of`.

use std::sync::Arc;

use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;

use super::caches::SharedCache;
use crate::api::{
    Bundle, BundleSubscription, Entitlement, Listing, Promotion, Tenant, TenantSubscription,
};

/// Read-only, always-current caches of the four shared kinds.
#[derive(Clone)]
pub struct Stores {
    pub listings: SharedCache<Listing>,
    pub tenants: SharedCache<Tenant>,
    pub subscriptions: SharedCache<TenantSubscription>,
    pub entitlements: SharedCache<Entitlement>,
    /// Catalog promotions: the storefront quotes with them, subscriptions record theirs.
    pub promotions: SharedCache<Promotion>,
    /// Catalog bundles: the storefront sells them, members record their discount.
    pub bundles: SharedCache<Bundle>,
    /// Tenants' bundle purchases: the storefront lists them, the operator reconciles them.
    pub bundle_subscriptions: SharedCache<BundleSubscription>,
}

impl Stores {
    /// Starts one cluster-wide watch per kind on the current runtime; the tasks end with it.
    pub fn start(client: &Client) -> Stores {
        Stores {
            listings: SharedCache::start_trimmed(Api::all(client.clone())),
            tenants: SharedCache::start_trimmed(Api::all(client.clone())),
            subscriptions: SharedCache::start_trimmed(Api::all(client.clone())),
            entitlements: SharedCache::start_trimmed_by(
                Api::all(client.clone()),
                Default::default(),
                crate::api::entitlement::compact_labels,
            ),
            promotions: SharedCache::start_trimmed(Api::all(client.clone())),
            bundles: SharedCache::start_trimmed(Api::all(client.clone())),
            bundle_subscriptions: SharedCache::start_trimmed(Api::all(client.clone())),
        }
    }

    /// Objects held by each cache and their approximate bytes ([`SharedCache::size`]).
    pub fn sizes(&self) -> Vec<(&'static str, (usize, usize))> {
        vec![
            ("listings", self.listings.size()),
            ("tenants", self.tenants.size()),
            ("tenantsubscriptions", self.subscriptions.size()),
            ("entitlements", self.entitlements.size()),
            ("promotions", self.promotions.size()),
            ("bundles", self.bundles.size()),
            ("bundlesubscriptions", self.bundle_subscriptions.size()),
        ]
    }

    /// Caches that never fill, for tests that need no cluster data.
    #[cfg(test)]
    pub fn never_filled() -> Stores {
        Stores {
            listings: SharedCache::from_events(futures::stream::pending()),
            tenants: SharedCache::from_events(futures::stream::pending()),
            subscriptions: SharedCache::from_events(futures::stream::pending()),
            entitlements: SharedCache::from_events(futures::stream::pending()),
            promotions: SharedCache::from_events(futures::stream::pending()),
            bundles: SharedCache::from_events(futures::stream::pending()),
            bundle_subscriptions: SharedCache::from_events(futures::stream::pending()),
        }
    }

    /// Resolves once every cache has its first full list.
    pub async fn wait_until_ready(&self) {
        let _ = tokio::join!(
            self.listings.wait_until_ready(),
            self.tenants.wait_until_ready(),
            self.subscriptions.wait_until_ready(),
            self.entitlements.wait_until_ready(),
            self.promotions.wait_until_ready(),
            self.bundles.wait_until_ready(),
            self.bundle_subscriptions.wait_until_ready(),
        );
    }

    /// Whether every cache holds its first full list now.
    pub fn is_ready(&self) -> bool {
        self.listings.is_ready()
            && self.tenants.is_ready()
            && self.subscriptions.is_ready()
            && self.entitlements.is_ready()
            && self.promotions.is_ready()
            && self.bundles.is_ready()
            && self.bundle_subscriptions.is_ready()
    }

    pub fn listing(&self, name: &str) -> Option<Arc<Listing>> {
        self.listings.get(&ObjectRef::new(name))
    }

    pub fn tenant(&self, name: &str) -> Option<Arc<Tenant>> {
        self.tenants.get(&ObjectRef::new(name))
    }

    /// Every promotion in the catalog (the pure [`crate::lifecycle::promotion::offer`] picks).
    pub fn promotions(&self) -> Vec<Arc<Promotion>> {
        self.promotions.store().state()
    }

    pub fn bundle(&self, name: &str) -> Option<Arc<Bundle>> {
        self.bundles.get(&ObjectRef::new(name))
    }

    /// The TenantSubscriptions in `namespace` (from the per-namespace index).
    pub fn subscriptions_in(&self, namespace: &str) -> Vec<Arc<TenantSubscription>> {
        self.subscriptions.in_namespace(namespace)
    }

    /// The Entitlements in `namespace` (from the per-namespace index).
    pub fn entitlements_in(&self, namespace: &str) -> Vec<Arc<Entitlement>> {
        self.entitlements.in_namespace(namespace)
    }
}

//! Shared, always-warm caches of the objects reconcilers read but do not own: Listings, Tenants,
//! TenantSubscriptions (siblings, webhook lookups) and Entitlements. Every replica runs them, so
//! a replica that becomes leader decides from a warm cache at once.

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use crate::api::{Entitlement, Listing, Tenant, TenantSubscription};

/// Read-only caches, cloned freely.
#[derive(Clone)]
pub struct Stores {
    pub listings: Store<Listing>,
    pub tenants: Store<Tenant>,
    pub subscriptions: Store<TenantSubscription>,
    pub entitlements: Store<Entitlement>,
}

impl Stores {
    /// Starts one watch per kind on the current runtime; the tasks end with it.
    pub fn start(client: &Client) -> Stores {
        Stores {
            listings: spawn_reflector(Api::all(client.clone())),
            tenants: spawn_reflector(Api::all(client.clone())),
            subscriptions: spawn_reflector(Api::all(client.clone())),
            entitlements: spawn_reflector(Api::all(client.clone())),
        }
    }

    /// Resolves once every cache has its first full list.
    pub async fn wait_until_ready(&self) {
        let _ = tokio::join!(
            self.listings.wait_until_ready(),
            self.tenants.wait_until_ready(),
            self.subscriptions.wait_until_ready(),
            self.entitlements.wait_until_ready(),
        );
    }

    pub fn listing(&self, name: &str) -> Option<Arc<Listing>> {
        self.listings.get(&ObjectRef::new(name))
    }

    pub fn tenant(&self, name: &str) -> Option<Arc<Tenant>> {
        self.tenants.get(&ObjectRef::new(name))
    }

    /// The subscriptions in `namespace`.
    pub fn subscriptions_in(&self, namespace: &str) -> Vec<Arc<TenantSubscription>> {
        self.subscriptions
            .state_filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
    }

    /// The Entitlements in `namespace`.
    pub fn entitlements_in(&self, namespace: &str) -> Vec<Arc<Entitlement>> {
        self.entitlements
            .state_filter(|e| e.metadata.namespace.as_deref() == Some(namespace))
    }
}

fn spawn_reflector<K>(api: Api<K>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(error) = event {
                tracing::debug!(%error, kind = %K::kind(&()), "cache watch error; retrying");
            }
        }
    });
    reader
}

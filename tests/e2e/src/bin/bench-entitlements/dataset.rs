//! The benchmark's data: T tenants × F features, feature j enabled for tenant i when
//! (i + j) % 3 == 0 (one third). Loaded into the apiserver as the marketplace stores it (one
//! Listing per feature, a Tenant and its namespace per tenant, an Active Entitlement per enabled
//! pair; a tenant without an Entitlement for a catalog feature is not entitled to it) and written
//! as Unleash Edge's bootstrap file (one flag per feature, enabled for exactly the same tenants).

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DynamicObject, PostParams};
use kube::{Client, Resource};
use marketplace_e2e::dynamic_api;
use marketplace_operator::api::{Entitlement, Listing, Tenant};
use marketplace_operator::controllers::tenant_rbac::namespace_name;
use serde_json::{Value, json};

use crate::Result;

/// Creates in flight at once: enough to keep the apiserver and etcd busy on two cores.
const CREATE_CONCURRENCY: usize = 64;

#[derive(Clone, Copy, Debug)]
pub struct Dataset {
    pub tenants: usize,
    pub features: usize,
}

/// How long each kind took to create, and how many objects of it.
pub struct Loaded {
    pub steps: Vec<(&'static str, usize, Duration)>,
}

impl Loaded {
    pub fn objects(&self) -> usize {
        self.steps.iter().map(|s| s.1).sum()
    }

    pub fn time(&self) -> Duration {
        self.steps.iter().map(|s| s.2).sum()
    }
}

impl Dataset {
    pub fn tenant(&self, i: usize) -> String {
        format!("t{i:05}")
    }

    pub fn feature(&self, j: usize) -> String {
        format!("feature_{j:02}")
    }

    pub fn enabled(&self, i: usize, j: usize) -> bool {
        (i + j).is_multiple_of(3)
    }

    pub fn enabled_pairs(&self) -> usize {
        (0..self.tenants)
            .map(|i| (0..self.features).filter(|&j| self.enabled(i, j)).count())
            .sum()
    }

    fn listing(&self, j: usize) -> String {
        format!("bench-listing-{j:02}")
    }

    /// Creates every object in the apiserver, timing each kind.
    pub async fn load(&self, client: &Client) -> Result<Loaded> {
        let mut steps = Vec::new();
        let listings = (0..self.features).map(|j| {
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing",
                "metadata": {"name": self.listing(j)},
                "spec": {"displayName": format!("Bench add-on {j}"), "tagline": "A benchmark add-on.",
                    "type": "InApp", "category": "Operations", "lifecycle": "Published",
                    "features": [self.feature(j)],
                    "plans": [{"name": "standard", "displayName": "Standard", "pricing":
                        {"model": "Flat", "amount": "9.00", "currency": "USD", "interval": "Month"}}]}})
        });
        steps.push(("Listings", create_all::<Listing>(client, listings).await?));
        let namespaces = (0..self.tenants).map(|i| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace_name(&self.tenant(i))}})
        });
        steps.push((
            "Namespaces",
            create_all::<Namespace>(client, namespaces).await?,
        ));
        let tenants = (0..self.tenants).map(|i| {
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
                "metadata": {"name": self.tenant(i)},
                "spec": {"displayName": format!("Tenant {i}"), "basePlan": "Professional",
                    "billingContact": {"name": "Billing", "email": format!("billing@{}.example.com", self.tenant(i))}}})
        });
        steps.push(("Tenants", create_all::<Tenant>(client, tenants).await?));
        let entitlements = (0..self.tenants).flat_map(|i| {
            (0..self.features)
                .filter(move |&j| self.enabled(i, j))
                .map(move |j| self.entitlement(i, j))
        });
        steps.push((
            "Entitlements (Active)",
            create_all::<Entitlement>(client, entitlements).await?,
        ));
        Ok(Loaded {
            steps: steps
                .into_iter()
                .map(|(kind, (count, time))| (kind, count, time))
                .collect(),
        })
    }

    fn entitlement(&self, i: usize, j: usize) -> Value {
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Entitlement",
            "metadata": {"name": self.entitlement_name(j), "namespace": namespace_name(&self.tenant(i))},
            "spec": {"tenant": self.tenant(i), "feature": self.feature(j), "state": "Active",
                "startsAt": "2026-01-01T00:00:00Z", "sourceSubscription": self.listing(j)}})
    }

    pub fn entitlement_name(&self, j: usize) -> String {
        self.feature(j).replace('_', "-")
    }

    /// Unleash Edge's offline bootstrap: flag `feature_j` on for exactly the tenants entitled to
    /// it (strategy `default` with a `userId IN [...]` constraint), so both servers answer alike.
    pub fn edge_bootstrap(&self) -> Value {
        let features: Vec<Value> = (0..self.features)
            .map(|j| {
                let tenants: Vec<String> = (0..self.tenants)
                    .filter(|&i| self.enabled(i, j))
                    .map(|i| self.tenant(i))
                    .collect();
                json!({"name": self.feature(j), "type": "release", "enabled": true,
                    "project": "default", "stale": false, "impressionData": false,
                    "strategies": [{"name": "default", "parameters": {}, "constraints": [
                        {"contextName": "userId", "operator": "IN", "values": tenants,
                         "inverted": false, "caseInsensitive": false}]}]})
            })
            .collect();
        json!({"version": 2, "features": features})
    }
}

/// Creates `objects` of kind `K` (each in its own namespace, if it names one), many at once; fails
/// on the first error. Returns how many and how long it took.
async fn create_all<K>(
    client: &Client,
    objects: impl Iterator<Item = Value>,
) -> Result<(usize, Duration)>
where
    K: Resource<DynamicType = ()>,
{
    let started = Instant::now();
    let count = futures::stream::iter(objects)
        .map(|object| async move {
            let object: DynamicObject = serde_json::from_value(object)?;
            dynamic_api::<K>(client.clone(), object.metadata.namespace.as_deref())
                .create(&PostParams::default(), &object)
                .await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_fold(0usize, |n, ()| async move { Ok(n + 1) })
        .await
        .map_err(|e| format!("creating {}: {e}", K::kind(&())))?;
    Ok((count, started.elapsed()))
}

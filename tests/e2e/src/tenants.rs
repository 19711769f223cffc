//! Fixtures of the suites that read tenants through the API: a Tenant (with whatever people the
//! suite needs) once the operator has made its namespace, an in-app Listing, an Entitlement.

use kube::Client;
use kube::api::Api;
use marketplace_operator::api::{Entitlement, Listing, Tenant};
use serde_json::{Value, json};

use crate::subscriptions::{CONVERGED, apply};
use crate::{eventually, unique_name};

/// A Tenant named `<base>-…` whose spec is the usual one plus `people` (e.g. `{"viewers":
/// [...]}`); its name and namespace, once the Tenant controller has made the namespace.
pub async fn tenant(client: &Client, base: &str, people: Value) -> (String, String) {
    let name = unique_name(base);
    let tenants: Api<Tenant> = Api::all(client.clone());
    let mut spec = json!({"displayName": "Acme Logistics", "basePlan": "Professional",
        "billingContact": {"name": "Ann Example", "email": "ann@acme.example"}});
    if let (Some(spec), Some(people)) = (spec.as_object_mut(), people.as_object()) {
        spec.extend(people.clone());
    }
    apply(
        &tenants,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name}, "spec": spec}),
    )
    .await;
    let namespace = eventually("the tenant namespace", CONVERGED, || async {
        tenants.get(&name).await.ok()?.status?.namespace
    })
    .await;
    (name, namespace)
}

/// A Published in-app listing `<base>-…` with one $12/month plan `standard` granting
/// `features`; its name.
pub async fn in_app_listing(client: &Client, base: &str, features: &[&str]) -> String {
    let name = unique_name(base);
    apply(&Api::<Listing>::all(client.clone()), json!({"apiVersion": "marketplace.dev/v1alpha1",
        "kind": "Listing", "metadata": {"name": name}, "spec": {
            "displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
            "category": "Operations", "lifecycle": "Published", "features": features,
            "plans": [{"name": "standard", "displayName": "Standard",
                "pricing": {"model": "Flat", "amount": "12.00", "currency": "USD", "interval": "Month"}}]}}))
    .await;
    name
}

/// Grants `feature` to `tenant` in `namespace`, in `state`, as the operator would (a trial
/// with its end).
pub async fn entitlement(
    client: &Client,
    namespace: &str,
    tenant: &str,
    feature: &str,
    state: &str,
) {
    let mut spec = json!({"tenant": tenant, "feature": feature, "state": state,
        "startsAt": "2026-01-01T00:00:00Z", "sourceSubscription": "route-optimization"});
    if state == "Trialing" {
        spec["endsAt"] = json!("2099-01-01T00:00:00Z");
    }
    apply(
        &Api::<Entitlement>::namespaced(client.clone(), namespace),
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Entitlement",
        "metadata": {"name": feature.replace('_', "-"), "namespace": namespace}, "spec": spec}),
    )
    .await;
}

//! The apiserver's own write rate on this machine, the bound of an EntitleFirst burst: a
//! purchase is usable only after the writes it takes (its create, the finalizer, an apply per
//! Entitlement, a status write), and one apiserver takes them all. Measured after the run, with
//! the operator stopped and nothing else writing: Entitlements (a custom resource, as most of
//! those writes are) created in a scratch namespace at the run's create concurrency.

use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use marketplace_operator::api::Entitlement;
use serde_json::json;

use super::Result;

const NAMESPACE: &str = "bench-write-rate";

/// Creates `count` Entitlements `concurrency` at a time; returns writes per second.
pub async fn measure(client: &Client, count: usize, concurrency: usize) -> Result<f64> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;
    let api: Api<Entitlement> = Api::namespaced(client.clone(), NAMESPACE);
    let started = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let object: Entitlement = serde_json::from_value(json!({
                    "apiVersion": "marketplace.dev/v1alpha1",
                    "kind": "Entitlement",
                    "metadata": {"name": format!("write-rate-{i}")},
                    "spec": {
                        "tenant": "bench-write-rate",
                        "feature": "write_rate",
                        "state": "Active",
                        "startsAt": "2026-01-01T00:00:00Z",
                        "sourceSubscription": format!("write-rate-{i}"),
                    }
                }))?;
                api.create(&PostParams::default(), &object).await?;
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let took = started.elapsed();
    results.into_iter().collect::<Result<Vec<()>>>()?;
    // Not waited for: the namespace controller removes the objects after the figures are taken.
    namespaces
        .delete(NAMESPACE, &DeleteParams::background())
        .await?;
    Ok(count as f64 / took.as_secs_f64())
}

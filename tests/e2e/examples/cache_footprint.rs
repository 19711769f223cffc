//! What one cached object of a kind costs a process, as the operator's caches hold it (typed,
//! in an `Arc`, without managed fields), against its size as JSON: the figures behind the scale
//! run's memory analysis in the README.
//!
//!   kubectl get entitlements -A -o json > entitlements.json
//!   cargo run --release -p marketplace-e2e --example cache_footprint -- entitlement entitlements.json
//!
//! Kinds: tenantsubscription, entitlement, tenant, namespace, role, rolebinding,
//! clusterrolebinding. The objects are parsed 20 times over and held; the process's RSS growth
//! per object is the cost (allocator overhead included, as in the operator), then the growth for
//! a reflector key (`ObjectRef`) per object. Run one kind per process: memory freed by one kind
//! would be reused by the next and hide its cost.

use std::sync::Arc;

use kube::runtime::reflector::ObjectRef;
use serde::de::DeserializeOwned;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Copies held: enough that the growth is many pages, not noise.
const COPIES: usize = 20;

fn rss_bytes() -> Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: usize = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .ok_or("no VmRSS in /proc/self/status")?
        .parse()?;
    Ok(kib * 1024)
}

fn measure<K>(kind: &str, path: &str) -> Result<()>
where
    K: DeserializeOwned + kube::Resource<DynamicType = ()>,
{
    let list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let items = list["items"].as_array().ok_or("the file is not a List")?;
    // As the caches hold them (SharedCache::start_trimmed).
    let documents: Vec<String> = items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            if let Some(meta) = item["metadata"].as_object_mut() {
                meta.remove("managedFields");
            }
            item.to_string()
        })
        .collect();
    if documents.is_empty() {
        return Err("no objects in the file".into());
    }
    let json: usize = documents.iter().map(String::len).sum::<usize>() / documents.len();
    let before = rss_bytes()?;
    let mut objects: Vec<Arc<K>> = Vec::with_capacity(documents.len() * COPIES);
    for _ in 0..COPIES {
        for document in &documents {
            objects.push(Arc::new(serde_json::from_str(document)?));
        }
    }
    let held = rss_bytes()?;
    let keys: Vec<ObjectRef<K>> = objects
        .iter()
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect();
    let keyed = rss_bytes()?;
    let n = objects.len();
    println!(
        "{kind}: {} objects × {COPIES}; JSON {json} B each; held {} B each (the struct itself {} B); \
         a reflector key {} B each",
        documents.len(),
        held.saturating_sub(before) / n,
        std::mem::size_of::<K>(),
        keyed.saturating_sub(held) / n,
    );
    drop(keys);
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, path] = args.as_slice() else {
        return Err("usage: cache_footprint KIND FILE (kubectl get KIND -A -o json)".into());
    };
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
    use marketplace_operator::api::{Entitlement, Tenant, TenantSubscription};
    match kind.as_str() {
        "tenantsubscription" => measure::<TenantSubscription>(kind, path),
        "entitlement" => measure::<Entitlement>(kind, path),
        "tenant" => measure::<Tenant>(kind, path),
        "namespace" => measure::<Namespace>(kind, path),
        "role" => measure::<Role>(kind, path),
        "rolebinding" => measure::<RoleBinding>(kind, path),
        "clusterrolebinding" => measure::<ClusterRoleBinding>(kind, path),
        other => Err(format!("unknown kind {other}").into()),
    }
}

//! Status writes: server-side apply on the status subresource with one field manager, skipped
//! when nothing changed (so a reconcile never triggers itself).

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// The field manager of everything the operator writes, status included.
pub const OPERATOR_MANAGER: &str = "marketplace-operator";

/// Applies `status` to `object` unless it equals `current`. Returns whether it wrote.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    object: &K,
    current: Option<&S>,
    status: &S,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    write_status(api, object, current, status, None).await
}

/// Like [`apply_status`], but only if `object` is still at its resourceVersion: for statuses
/// that more than one writer moves (an approval action and the subscription reconciler), so a
/// decision made from a stale read never overwrites a newer one (the apiserver answers 409).
pub async fn apply_status_guarded<K, S>(
    api: &Api<K>,
    object: &K,
    current: Option<&S>,
    status: &S,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    write_status(api, object, current, status, object.resource_version()).await
}

async fn write_status<K, S>(
    api: &Api<K>,
    object: &K,
    current: Option<&S>,
    status: &S,
    resource_version: Option<String>,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(false);
    }
    // The apply body names apiVersion and kind, or the apiserver rejects it.
    let mut patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    if let Some(rv) = resource_version {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(OPERATOR_MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await?;
    Ok(true)
}

//! Writes a subscription's Entitlements: server-side apply of each one that differs from the
//! cache, owned by the subscription (garbage-collected with it).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::ResourceExt;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams};
use std::collections::BTreeMap;

use super::status::OPERATOR_MANAGER;
use super::{Context, Error};
use crate::api::entitlement::{Entitlement, EntitlementSpec};
use crate::lifecycle::DesiredEntitlement;

/// Label naming the subscription an Entitlement comes from.
pub const SUBSCRIPTION_LABEL: &str = "marketplace.dev/subscription";
/// Label naming the feature, so product code can select by it.
pub const FEATURE_LABEL: &str = "marketplace.dev/feature";

/// The Entitlement object for `desired`.
pub fn entitlement_object(
    desired: &DesiredEntitlement,
    namespace: &str,
    tenant: &str,
    subscription: &str,
    owner: &OwnerReference,
) -> Entitlement {
    Entitlement {
        metadata: ObjectMeta {
            name: Some(desired.name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([
                (SUBSCRIPTION_LABEL.to_string(), label_value(subscription)),
                (FEATURE_LABEL.to_string(), label_value(&desired.feature)),
                (
                    super::tenant_rbac::TENANT_LABEL.to_string(),
                    tenant.to_string(),
                ),
            ])),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: EntitlementSpec {
            tenant: tenant.into(),
            feature: desired.feature.as_str().into(),
            state: desired.state,
            starts_at: Time(desired.starts_at),
            ends_at: desired.ends_at.map(Time),
            source_subscription: subscription.to_string(),
        },
        // The status (usage) is the API's; server-side apply leaves it alone.
        status: None,
    }
}

/// Label values are at most 63 characters.
fn label_value(value: &str) -> String {
    value
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.', '_'])
        .to_string()
}

/// Applies every desired Entitlement whose spec differs from the live one (or that is missing).
/// Returns how many were written.
pub async fn apply_entitlements(
    ctx: &Context,
    namespace: &str,
    tenant: &str,
    subscription: &str,
    owner: &OwnerReference,
    desired: &[DesiredEntitlement],
) -> Result<usize, Error> {
    let api: Api<Entitlement> = Api::namespaced(ctx.client.clone(), namespace);
    // Read from the apiserver, not a cache: this reconcile may have been woken by the very
    // deletion or edit it must undo, which a cache can still be missing.
    let selector = format!("{SUBSCRIPTION_LABEL}={}", label_value(subscription));
    let cached: BTreeMap<String, Entitlement> = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter(|e| e.spec.source_subscription == subscription)
        .map(|e| (e.name_any(), e))
        .collect();
    let mut written = 0;
    for d in desired {
        let object = entitlement_object(d, namespace, tenant, subscription, owner);
        let unchanged = cached.get(&d.name).is_some_and(|live| {
            live.spec == object.spec
                && live.metadata.deletion_timestamp.is_none()
                && live.labels() == object.labels()
        });
        if unchanged {
            continue;
        }
        api.patch(
            &d.name,
            &PatchParams::apply(OPERATOR_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await?;
        written += 1;
    }
    Ok(written)
}

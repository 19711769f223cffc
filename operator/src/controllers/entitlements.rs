//! Writes a subscription's Entitlements: server-side apply of each one that differs from the
//! cache, owned by the subscription (garbage-collected with it).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use std::collections::BTreeMap;

use super::status::OPERATOR_MANAGER;
use super::{Context, Error};
use crate::api::entitlement::{Entitlement, EntitlementSpec, labels_of, spec_labels};
use crate::lifecycle::DesiredEntitlement;

pub use crate::api::entitlement::{FEATURE_LABEL, SUBSCRIPTION_LABEL};

/// The Entitlement object for `desired`.
pub fn entitlement_object(
    desired: &DesiredEntitlement,
    namespace: &str,
    tenant: &str,
    subscription: &str,
    owner: &OwnerReference,
) -> Entitlement {
    let spec = EntitlementSpec {
        tenant: tenant.into(),
        feature: desired.feature.as_str().into(),
        state: desired.state,
        starts_at: Time(desired.starts_at),
        ends_at: desired.ends_at.map(Time),
        source_subscription: subscription.to_string(),
    };
    Entitlement {
        metadata: ObjectMeta {
            name: Some(desired.name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(spec_labels(&spec)),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        spec,
        // The status (usage) is the API's; server-side apply leaves it alone.
        status: None,
    }
}

/// The Entitlements among `wanted` that must be applied: those missing from `live`, being
/// deleted, or differing in spec or labels. `live` may lag behind the apiserver; that is safe:
/// - a live object the cache still shows in an older state is applied again, a no-op for
///   server-side apply;
/// - a change the cache has not seen yet (an Entitlement deleted or edited by hand) reaches the
///   cache before the owner reconcile it triggers, which then finds and undoes it;
/// - nothing is ever deleted from here (revoking is applying state Revoked), so a stale read can
///   cost an extra write but never drop one that a fresh read would make.
pub fn entitlements_to_apply<'a>(
    wanted: &'a [Entitlement],
    live: &[std::sync::Arc<Entitlement>],
) -> Vec<&'a Entitlement> {
    let live: BTreeMap<&str, &Entitlement> = live
        .iter()
        .filter_map(|e| Some((e.metadata.name.as_deref()?, e.as_ref())))
        .collect();
    wanted
        .iter()
        .filter(|object| {
            let unchanged = live.get(object.name_any().as_str()).is_some_and(|live| {
                live.spec == object.spec
                    && live.metadata.deletion_timestamp.is_none()
                    && labels_of(live).as_ref() == object.labels()
            });
            !unchanged
        })
        .collect()
}

/// Applies every desired Entitlement whose spec differs from the cached one (or that is
/// missing): compared with the per-namespace cache, so a reconcile with nothing to change
/// (a restarted operator's first pass) costs no apiserver request. Returns how many were
/// written.
pub async fn apply_entitlements(
    ctx: &Context,
    namespace: &str,
    tenant: &str,
    subscription: &str,
    owner: &OwnerReference,
    desired: &[DesiredEntitlement],
) -> Result<usize, Error> {
    let wanted: Vec<Entitlement> = desired
        .iter()
        .map(|d| entitlement_object(d, namespace, tenant, subscription, owner))
        .collect();
    let live = ctx.stores.entitlements_in(namespace);
    let stale = entitlements_to_apply(&wanted, &live);
    if stale.is_empty() {
        return Ok(0);
    }
    let api: Api<Entitlement> = Api::namespaced(ctx.client.clone(), namespace);
    for object in &stale {
        api.patch(
            &object.name_any(),
            &PatchParams::apply(OPERATOR_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await?;
    }
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::entitlement::EntitlementState;
    use std::sync::Arc;

    fn wanted(feature: &str, state: EntitlementState) -> Entitlement {
        let desired = DesiredEntitlement {
            name: format!("s-{feature}"),
            feature: feature.into(),
            state,
            starts_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            ends_at: None,
        };
        let owner = OwnerReference {
            api_version: "marketplace.dev/v1alpha1".into(),
            kind: "TenantSubscription".into(),
            name: "s".into(),
            uid: "u1".into(),
            controller: Some(true),
            ..OwnerReference::default()
        };
        entitlement_object(&desired, "tenant-acme", "acme", "s", &owner)
    }

    fn names(objects: &[&Entitlement]) -> Vec<String> {
        objects.iter().map(|e| e.name_any()).collect()
    }

    #[test]
    fn only_missing_or_differing_entitlements_are_applied() {
        let eta = wanted("eta", EntitlementState::Active);
        let maps = wanted("maps", EntitlementState::Active);
        let both = [eta.clone(), maps.clone()];
        let live = vec![Arc::new(eta.clone()), Arc::new(maps.clone())];
        assert!(entitlements_to_apply(&both, &live).is_empty(), "in sync");
        // As the shared cache holds them: labels kept compact are the same labels.
        let compacted = |e: &Entitlement| {
            let mut e = e.clone();
            crate::api::entitlement::compact_labels(&mut e);
            assert_eq!(e.metadata.labels, Some(BTreeMap::new()));
            Arc::new(e)
        };
        let live = vec![compacted(&eta), compacted(&maps)];
        assert!(entitlements_to_apply(&both, &live).is_empty(), "compact");

        // Missing (never made, or deleted by hand and seen by the cache): applied.
        let only_eta = vec![Arc::new(eta.clone())];
        assert_eq!(names(&entitlements_to_apply(&both, &only_eta)), ["s-maps"]);

        // Edited by hand, being deleted, or relabelled: applied.
        let mut edited = maps.clone();
        edited.spec.state = EntitlementState::Suspended;
        let mut deleting = eta.clone();
        deleting.metadata.deletion_timestamp = Some(Time("2026-11-02T00:00:00Z".parse().unwrap()));
        let live = vec![Arc::new(deleting), Arc::new(edited)];
        assert_eq!(
            names(&entitlements_to_apply(&both, &live)),
            ["s-eta", "s-maps"]
        );
        let mut relabelled = eta.clone();
        relabelled.metadata.labels = None;
        let live = vec![Arc::new(relabelled), Arc::new(maps.clone())];
        assert_eq!(names(&entitlements_to_apply(&both, &live)), ["s-eta"]);
    }

    #[test]
    fn a_lagging_cache_costs_a_no_op_apply_never_a_missed_one() {
        // The cache still shows the state before our last write: the same object is applied
        // again, which server-side apply leaves as it is.
        let suspended = wanted("eta", EntitlementState::Suspended);
        let active = [wanted("eta", EntitlementState::Active)];
        let lagging = vec![Arc::new(suspended)];
        assert_eq!(names(&entitlements_to_apply(&active, &lagging)), ["s-eta"]);
        // The cache is empty (not yet seen our create): applied again.
        assert_eq!(names(&entitlements_to_apply(&active, &[])), ["s-eta"]);
        // A revocation is an apply too: with any stale view it is either applied or, when the
        // cache already shows it revoked, already done.
        let revoked = [wanted("eta", EntitlementState::Revoked)];
        let live = vec![Arc::new(active[0].clone())];
        assert_eq!(names(&entitlements_to_apply(&revoked, &live)), ["s-eta"]);
        let live = vec![Arc::new(revoked[0].clone())];
        assert!(entitlements_to_apply(&revoked, &live).is_empty());
    }
}

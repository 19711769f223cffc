//! What the Tenant controller makes (namespace, Roles, bindings), cached and watched by the
//! tenant label, and which changes of them wake their Tenant: only a deletion or a drift from
//! what the Tenant wants. The controller's own creates and applies come back as watch events
//! too; waking the Tenant for each of them (six per new tenant) made every tenant reconcile
//! four or five times, each after a lagging cache re-applied the same objects.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::applied::needs_apply;
use super::tenant_rbac::{TENANT_LABEL, TenantObjects, desired_objects};
use crate::api::Tenant;
use crate::runtime::SharedCache;

/// Caches of what the Tenant controller makes (found by their tenant label), so a reconcile
/// writes only what differs: a restarted operator's pass over every Tenant writes nothing.
pub struct TenantOwnedCaches {
    pub(super) namespaces: SharedCache<Namespace>,
    pub(super) roles: SharedCache<Role>,
    pub(super) role_bindings: SharedCache<RoleBinding>,
    pub(super) cluster_role_bindings: SharedCache<ClusterRoleBinding>,
    /// The shared catalog reader ClusterRole was found (or made) as wanted by this process.
    pub(super) catalog_reader_checked: AtomicBool,
}

impl TenantOwnedCaches {
    pub(super) fn start(client: &Client) -> Self {
        let owned = || watcher::Config::default().labels(TENANT_LABEL);
        TenantOwnedCaches {
            namespaces: SharedCache::start_trimmed_with(Api::all(client.clone()), owned()),
            roles: SharedCache::start_trimmed_with(Api::all(client.clone()), owned()),
            role_bindings: SharedCache::start_trimmed_with(Api::all(client.clone()), owned()),
            cluster_role_bindings: SharedCache::start_trimmed_with(
                Api::all(client.clone()),
                owned(),
            ),
            catalog_reader_checked: AtomicBool::new(false),
        }
    }

    pub(super) async fn wait_until_ready(&self) {
        tokio::join!(
            self.namespaces.wait_until_ready(),
            self.roles.wait_until_ready(),
            self.role_bindings.wait_until_ready(),
            self.cluster_role_bindings.wait_until_ready(),
        );
    }

    /// Objects held by each cache and their approximate bytes ([`SharedCache::size`]).
    pub fn sizes(&self) -> Vec<(&'static str, (usize, usize))> {
        vec![
            ("namespaces", self.namespaces.size()),
            ("roles", self.roles.size()),
            ("rolebindings", self.role_bindings.size()),
            ("clusterrolebindings", self.cluster_role_bindings.size()),
        ]
    }

    /// The namespaces' changes that wake their Tenant.
    pub(super) fn namespace_wakes(
        &self,
        tenants: Store<Tenant>,
    ) -> impl Stream<Item = Arc<Namespace>> + Send + 'static {
        drift_changes(&self.namespaces, tenants, |o, _| Some(o.namespace))
    }

    /// The Roles' changes that wake their Tenant.
    pub(super) fn role_wakes(
        &self,
        tenants: Store<Tenant>,
    ) -> impl Stream<Item = Arc<Role>> + Send + 'static {
        drift_changes(&self.roles, tenants, |o, live| named(o.roles, live))
    }

    /// The RoleBindings' changes that wake their Tenant.
    pub(super) fn role_binding_wakes(
        &self,
        tenants: Store<Tenant>,
    ) -> impl Stream<Item = Arc<RoleBinding>> + Send + 'static {
        drift_changes(&self.role_bindings, tenants, |o, live| {
            named(o.role_bindings, live)
        })
    }

    /// The ClusterRoleBindings' changes that wake their Tenant.
    pub(super) fn cluster_role_binding_wakes(
        &self,
        tenants: Store<Tenant>,
    ) -> impl Stream<Item = Arc<ClusterRoleBinding>> + Send + 'static {
        drift_changes(&self.cluster_role_bindings, tenants, |o, live| {
            named(vec![o.catalog_binding], live)
        })
    }
}

/// Whether a change of an object the Tenant controller made must wake its Tenant: it is gone
/// (`live` none: deleted), its Tenant's wish for it is unknown (`desired` none: no such Tenant
/// cached yet, or an object the Tenant no longer wants), or it differs from that wish.
pub fn owned_change_wakes_tenant<K: Resource + Serialize>(
    live: Option<&K>,
    desired: Option<&K>,
) -> bool {
    match (live, desired) {
        (Some(live), Some(desired)) => needs_apply(Some(live), desired),
        _ => true,
    }
}

/// Whether the shared catalog reader ClusterRole must be read (and applied if it differs): by
/// the process's first Tenant reconcile, and whenever the objects of a tenant provisioned
/// before needed restoring (what removed them may have removed it too: it is not watched). A
/// new tenant's first objects are no such sign, and skipping the read saves a request each.
pub fn catalog_reader_check_needed(
    checked_once: bool,
    wrote: bool,
    provisioned_before: bool,
) -> bool {
    !checked_once || (wrote && provisioned_before)
}

/// The changes of `cache` that wake their Tenant ([`owned_change_wakes_tenant`]); `pick` finds
/// the object's counterpart among what its Tenant wants.
fn drift_changes<K>(
    cache: &SharedCache<K>,
    tenants: Store<Tenant>,
    pick: fn(TenantObjects, &K) -> Option<K>,
) -> impl Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let store = cache.store().clone();
    cache.changes().filter(move |object| {
        let live = store.get(&ObjectRef::from_obj(object.as_ref()));
        let desired = object
            .labels()
            .get(TENANT_LABEL)
            .and_then(|name| tenants.get(&ObjectRef::new(name)))
            .and_then(|tenant| {
                let owner = tenant.controller_owner_ref(&())?;
                pick(desired_objects(&tenant, owner), object)
            });
        futures::future::ready(owned_change_wakes_tenant(live.as_deref(), desired.as_ref()))
    })
}

/// The object among `objects` with `like`'s name and namespace.
fn named<K: Resource>(objects: Vec<K>, like: &K) -> Option<K> {
    objects
        .into_iter()
        .find(|o| o.meta().name == like.meta().name && o.meta().namespace == like.meta().namespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::Subject;

    fn tenant() -> Tenant {
        let mut tenant: Tenant = serde_json::from_value(serde_json::json!({
            "apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
            "metadata": { "name": "acme", "uid": "uid-1" },
            "spec": {
                "displayName": "Acme", "basePlan": "Professional",
                "billingContact": { "name": "Dana", "email": "dana@acme.example" },
                "billingAdmins": [{ "kind": "User", "name": "dana" }],
            },
        }))
        .unwrap();
        tenant.metadata.generation = Some(1);
        tenant
    }

    fn wanted() -> TenantObjects {
        let tenant = tenant();
        desired_objects(&tenant, tenant.controller_owner_ref(&()).unwrap())
    }

    #[test]
    fn the_controllers_own_writes_coming_back_do_not_wake_the_tenant() {
        let wanted = wanted();
        // As stored: the server adds fields of its own (uid, a default label, status).
        let mut namespace = wanted.namespace.clone();
        namespace.metadata.uid = Some("ns-uid".into());
        namespace
            .metadata
            .labels
            .get_or_insert_default()
            .insert("kubernetes.io/metadata.name".into(), "tenant-acme".into());
        assert!(!owned_change_wakes_tenant(
            Some(&namespace),
            Some(&wanted.namespace)
        ));
        let binding = &wanted.role_bindings[0];
        assert!(!owned_change_wakes_tenant(Some(binding), Some(binding)));
    }

    #[test]
    fn a_deletion_a_drift_or_an_unknown_wish_wakes_the_tenant() {
        let wanted = wanted();
        let binding = wanted.role_bindings[0].clone();
        assert!(owned_change_wakes_tenant(None, Some(&binding)), "deleted");
        assert!(
            owned_change_wakes_tenant(Some(&binding), None),
            "no Tenant cached"
        );
        let mut edited = binding.clone();
        edited.subjects = Some(vec![Subject {
            kind: "User".into(),
            name: "mallory".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        }]);
        assert!(
            owned_change_wakes_tenant(Some(&edited), Some(&binding)),
            "edited"
        );
        let mut unowned = wanted.namespace.clone();
        unowned.metadata.owner_references = None;
        assert!(owned_change_wakes_tenant(
            Some(&unowned),
            Some(&wanted.namespace)
        ));
    }

    #[test]
    fn the_catalog_reader_is_read_first_and_after_a_restoration() {
        assert!(catalog_reader_check_needed(false, false, false), "first");
        assert!(
            !catalog_reader_check_needed(true, true, false),
            "new tenant"
        );
        assert!(catalog_reader_check_needed(true, true, true), "restored");
        assert!(
            !catalog_reader_check_needed(true, false, true),
            "nothing to do"
        );
    }

    #[test]
    fn counterparts_are_found_by_name_and_namespace() {
        let wanted = wanted();
        let reader = wanted.roles[1].clone();
        assert_eq!(named(wanted.roles.clone(), &reader), Some(reader.clone()));
        let mut elsewhere = reader.clone();
        elsewhere.metadata.namespace = Some("tenant-other".into());
        assert_eq!(named(wanted.roles, &elsewhere), None);
    }
}

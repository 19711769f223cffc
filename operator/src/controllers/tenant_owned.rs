//! What the Tenant controller makes (namespace, Roles, bindings), watched by the tenant label
//! and remembered as a verdict per object ([`OwnedState`]), and which changes of them wake their
//! Tenant: only a deletion or a drift from what the Tenant wants. The controller's own creates
//! and applies come back as watch events too; waking the Tenant for each of them (six per new
//! tenant) made every tenant reconcile four or five times, each after a lagging cache
//! re-applied the same objects.

mod records;

use std::sync::atomic::AtomicBool;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde::Serialize;

use super::applied::needs_apply;
use super::tenant_rbac::TENANT_LABEL;
use crate::api::Tenant;
use crate::runtime::{SharedCache, fingerprint};
pub use records::{OwnedRecords, Pick};

/// What the Tenant controller knows of each object it made, so a reconcile writes only what
/// differs: a restarted operator's pass over every Tenant writes nothing.
pub struct TenantOwnedRecords {
    pub(super) namespaces: OwnedRecords<Namespace>,
    pub(super) roles: OwnedRecords<Role>,
    pub(super) role_bindings: OwnedRecords<RoleBinding>,
    pub(super) cluster_role_bindings: OwnedRecords<ClusterRoleBinding>,
    /// The shared catalog reader ClusterRole was found (or made) as wanted by this process.
    pub(super) catalog_reader_checked: AtomicBool,
}

impl TenantOwnedRecords {
    /// Starts the four watches; each judges what it sees against the Tenant in `tenants`.
    pub(super) fn start(client: &kube::Client, tenants: &SharedCache<Tenant>) -> Self {
        let owned = || watcher::Config::default().labels(TENANT_LABEL);
        let tenants = || tenants.clone();
        TenantOwnedRecords {
            namespaces: OwnedRecords::start(
                Api::all(client.clone()),
                owned(),
                tenants(),
                |wanted, _| Some(wanted.namespace),
            ),
            roles: OwnedRecords::start(
                Api::all(client.clone()),
                owned(),
                tenants(),
                |wanted, live| named(wanted.roles, live),
            ),
            role_bindings: OwnedRecords::start(
                Api::all(client.clone()),
                owned(),
                tenants(),
                |wanted, live| named(wanted.role_bindings, live),
            ),
            cluster_role_bindings: OwnedRecords::start(
                Api::all(client.clone()),
                owned(),
                tenants(),
                |wanted, live| named(vec![wanted.catalog_binding], live),
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

    /// Objects remembered of each kind and about the bytes their records take.
    pub fn sizes(&self) -> Vec<(&'static str, (usize, usize))> {
        vec![
            ("namespace records", self.namespaces.size()),
            ("role records", self.roles.size()),
            ("rolebinding records", self.role_bindings.size()),
            (
                "clusterrolebinding records",
                self.cluster_role_bindings.size(),
            ),
        ]
    }

    /// The Tenants to reconcile because an object they made was deleted or drifted.
    pub(super) fn wakes(
        &self,
        tenants: Store<Tenant>,
    ) -> impl Stream<Item = ObjectRef<Tenant>> + Send + 'static {
        futures::stream::select_all([
            self.namespaces.wakes(tenants.clone()).boxed(),
            self.roles.wakes(tenants.clone()).boxed(),
            self.role_bindings.wakes(tenants.clone()).boxed(),
            self.cluster_role_bindings.wakes(tenants).boxed(),
        ])
    }
}

/// What is known of an object the Tenant controller made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnedState {
    /// It holds every field of the wish with this fingerprint ([`wish_fingerprint`]).
    Holds(u64),
    /// It differs from its Tenant's wish, is being deleted, or that wish was unknown when it
    /// was seen (no such Tenant cached, or an object the Tenant no longer wants).
    Differs,
}

/// Judges `live` against what its Tenant wants of it (`desired`; none if unknown). A Tenant
/// is woken by every object not judged [`OwnedState::Holds`], and a reconcile applies every
/// wish an object is not known to hold.
pub fn owned_state<K: Resource + Serialize>(live: &K, desired: Option<&K>) -> OwnedState {
    match desired {
        Some(desired) if !needs_apply(Some(live), desired) => {
            OwnedState::Holds(wish_fingerprint(desired))
        }
        _ => OwnedState::Differs,
    }
}

/// A fingerprint of a wish (its JSON): a reconcile whose wish has the fingerprint an object
/// was judged to hold need not apply it. Only compared within one process.
pub fn wish_fingerprint<K: Serialize>(desired: &K) -> u64 {
    fingerprint(&serde_json::to_vec(desired).unwrap_or_default())
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

/// The object among `objects` with `like`'s name and namespace.
fn named<K: Resource>(objects: Vec<K>, like: &K) -> Option<K> {
    objects
        .into_iter()
        .find(|o| o.meta().name == like.meta().name && o.meta().namespace == like.meta().namespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::tenant_rbac::{TenantObjects, desired_objects};
    use k8s_openapi::api::rbac::v1::Subject;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

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
    fn the_controllers_own_writes_coming_back_hold_the_wish() {
        let wanted = wanted();
        // As stored: the server adds fields of its own (uid, a default label, status).
        let mut namespace = wanted.namespace.clone();
        namespace.metadata.uid = Some("ns-uid".into());
        namespace
            .metadata
            .labels
            .get_or_insert_default()
            .insert("kubernetes.io/metadata.name".into(), "tenant-acme".into());
        assert_eq!(
            owned_state(&namespace, Some(&wanted.namespace)),
            OwnedState::Holds(wish_fingerprint(&wanted.namespace))
        );
        let binding = &wanted.role_bindings[0];
        assert_eq!(
            owned_state(binding, Some(binding)),
            OwnedState::Holds(wish_fingerprint(binding))
        );
    }

    #[test]
    fn a_drift_a_deletion_under_way_or_an_unknown_wish_differs() {
        let wanted = wanted();
        let binding = wanted.role_bindings[0].clone();
        assert_eq!(
            owned_state(&binding, None),
            OwnedState::Differs,
            "no Tenant"
        );
        let mut edited = binding.clone();
        edited.subjects = Some(vec![Subject {
            kind: "User".into(),
            name: "mallory".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        }]);
        assert_eq!(owned_state(&edited, Some(&binding)), OwnedState::Differs);
        let mut unowned = wanted.namespace.clone();
        unowned.metadata.owner_references = None;
        assert_eq!(
            owned_state(&unowned, Some(&wanted.namespace)),
            OwnedState::Differs
        );
        let mut deleting = binding.clone();
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert_eq!(owned_state(&deleting, Some(&binding)), OwnedState::Differs);
    }

    #[test]
    fn a_verdict_holds_for_the_wish_it_was_judged_against_only() {
        // A Tenant's people changed: its binding's wish changed, so the object last judged to
        // hold the old wish is applied again, though nothing was seen of it since.
        let before = wanted().role_bindings[0].clone();
        let mut tenant = tenant();
        tenant.spec.billing_admins[0].name = "erin".into();
        let after = desired_objects(&tenant, tenant.controller_owner_ref(&()).unwrap())
            .role_bindings[0]
            .clone();
        let OwnedState::Holds(held) = owned_state(&before, Some(&before)) else {
            panic!("the binding holds its own wish");
        };
        assert_eq!(held, wish_fingerprint(&before));
        assert_ne!(held, wish_fingerprint(&after));
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

//! The shapes the apiserver returns for what the Tenant controller applies: its defaults, its
//! metadata, and the empty values it leaves out. Each live object here is what a kube-apiserver
//! (1.3x) answers for the applied one.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::{is_applied, needs_apply};
use crate::api::Tenant;
use crate::controllers::tenant_rbac::{
    TenantObjects, catalog_reader_cluster_role, desired_objects,
};

fn tenant(people: Value) -> (Tenant, OwnerReference) {
    let mut spec = json!({"displayName": "Acme", "basePlan": "Professional",
        "billingContact": {"name": "Dana", "email": "dana@acme.example"}});
    if let (Some(spec), Some(people)) = (spec.as_object_mut(), people.as_object()) {
        spec.extend(people.clone());
    }
    let tenant: Tenant = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": "acme", "uid": "uid-1"}, "spec": spec,
    }))
    .expect("a Tenant");
    let owner = OwnerReference {
        api_version: "marketplace.dev/v1alpha1".into(),
        kind: "Tenant".into(),
        name: "acme".into(),
        uid: "uid-1".into(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    (tenant, owner)
}

fn objects(people: Value) -> TenantObjects {
    let (tenant, owner) = tenant(people);
    desired_objects(&tenant, owner)
}

/// The metadata the server adds to everything it stores, managed fields included (a cache
/// may trim them; the decision must not depend on it).
fn server_meta(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({
        "name": name,
        "uid": "8f0c6d1e-0000-4000-8000-000000000001",
        "resourceVersion": "4711",
        "creationTimestamp": "2026-12-03T10:00:00Z",
        "labels": {"marketplace.dev/tenant": "acme", "app.kubernetes.io/managed-by": "marketplace-operator"},
        "ownerReferences": [{"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
            "name": "acme", "uid": "uid-1", "controller": true}],
        "managedFields": [{"manager": "marketplace-operator", "operation": "Apply",
            "apiVersion": "rbac.authorization.k8s.io/v1", "time": "2026-12-03T10:00:00Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}],
    });
    if let Some(namespace) = namespace {
        meta["namespace"] = json!(namespace);
    }
    meta
}

fn live<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("an object as the server returns it")
}

const RBAC: &str = "rbac.authorization.k8s.io";

#[test]
fn bindings_nobody_holds_are_stored_without_subjects() {
    let objects = objects(json!({}));
    assert_eq!(objects.role_bindings[0].subjects, Some(vec![]));
    let stored: RoleBinding = live(json!({
        "metadata": server_meta("marketplace-billing-admin", Some("tenant-acme")),
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "marketplace-billing-admin"},
    }));
    assert!(!needs_apply(Some(&stored), &objects.role_bindings[0]));
    let stored: ClusterRoleBinding = live(json!({
        "metadata": server_meta("marketplace-tenant-acme", None),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "marketplace-catalog-reader"},
    }));
    assert!(!needs_apply(Some(&stored), &objects.catalog_binding));
    let held_by_hand: ClusterRoleBinding = live(json!({
        "metadata": server_meta("marketplace-tenant-acme", None),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "marketplace-catalog-reader"},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "mallory"}],
    }));
    assert!(
        needs_apply(Some(&held_by_hand), &objects.catalog_binding),
        "a subject added by hand is taken away"
    );
}

#[test]
fn service_account_subjects_are_stored_without_their_empty_api_group() {
    let objects = objects(json!({
        "billingAdmins": [{"kind": "User", "name": "dana"}],
        "viewers": [{"kind": "ServiceAccount", "name": "portal", "namespace": "tenant-acme"},
            {"kind": "Group", "name": "acme:admins"}],
    }));
    let readers = &objects.role_bindings[1];
    let stored: RoleBinding = live(json!({
        "metadata": server_meta("marketplace-reader", Some("tenant-acme")),
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "marketplace-reader"},
        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "acme:admins"},
            {"kind": "ServiceAccount", "name": "portal", "namespace": "tenant-acme"}],
    }));
    assert!(!needs_apply(Some(&stored), readers));
    let reordered: RoleBinding = live(json!({
        "metadata": server_meta("marketplace-reader", Some("tenant-acme")),
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "marketplace-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "portal", "namespace": "tenant-acme"},
            {"apiGroup": RBAC, "kind": "Group", "name": "acme:admins"}],
    }));
    assert!(
        needs_apply(Some(&reordered), readers),
        "the server keeps the order applied, so another order is someone else's edit"
    );
}

#[test]
fn a_namespace_with_the_servers_label_finalizer_and_phase_is_applied() {
    let objects = objects(json!({}));
    let mut meta = server_meta("tenant-acme", None);
    meta["labels"]["kubernetes.io/metadata.name"] = json!("tenant-acme");
    meta["annotations"] = json!({"note": "someone else's"});
    let stored: Namespace = live(json!({
        "metadata": meta,
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }));
    assert!(!needs_apply(Some(&stored), &objects.namespace));
    let mut relabelled = stored.clone();
    relabelled
        .metadata
        .labels
        .get_or_insert_default()
        .insert("marketplace.dev/tenant".into(), "other".into());
    assert!(needs_apply(Some(&relabelled), &objects.namespace));
    let mut terminating = stored;
    terminating.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    assert!(
        needs_apply(Some(&terminating), &objects.namespace),
        "a deleted object is applied again"
    );
}

#[test]
fn roles_keep_the_core_group_as_an_empty_string() {
    let objects = objects(json!({}));
    let desired = &objects.roles[0];
    let mut stored = serde_json::to_value(desired).expect("json");
    stored["metadata"] = server_meta("marketplace-billing-admin", Some("tenant-acme"));
    // A list item's empty string is kept: `apiGroups: [""]` is the core group.
    assert_eq!(stored["rules"][2]["apiGroups"], json!([""]));
    let stored: Role = live(stored);
    assert!(!needs_apply(Some(&stored), desired));
    let mut narrowed = stored;
    if let Some(rules) = narrowed.rules.as_mut() {
        rules.pop();
    }
    assert!(needs_apply(Some(&narrowed), desired), "a removed rule");
}

#[test]
fn the_catalog_reader_without_aggregation_is_applied() {
    let desired = catalog_reader_cluster_role();
    let mut stored = serde_json::to_value(&desired).expect("json");
    stored["metadata"] = json!({"name": "marketplace-catalog-reader", "uid": "u",
        "resourceVersion": "1", "creationTimestamp": "2026-12-03T10:00:00Z"});
    let stored: ClusterRole = live(stored);
    assert!(!needs_apply(Some(&stored), &desired));
}

#[test]
fn an_owner_of_another_uid_or_a_missing_object_is_applied() {
    let objects = objects(json!({}));
    let mut meta = server_meta("marketplace-tenant-acme", None);
    meta["ownerReferences"][0]["uid"] = json!("uid-of-a-deleted-tenant");
    let stored: ClusterRoleBinding = live(json!({
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "marketplace-catalog-reader"},
    }));
    assert!(needs_apply(Some(&stored), &objects.catalog_binding));
    assert!(needs_apply(None, &objects.catalog_binding));
}

#[test]
fn applied_when_every_field_set_holds_its_value() {
    let desired =
        json!({"metadata": {"name": "r", "labels": {"a": "1"}}, "rules": [{"verbs": ["get"]}]});
    let live = json!({
        "metadata": {"name": "r", "uid": "u", "labels": {"a": "1", "other": "x"}},
        "rules": [{"verbs": ["get"]}],
    });
    assert!(
        is_applied(&live, &desired),
        "extra fields are the server's or others'"
    );
    let edited =
        json!({"metadata": {"name": "r", "labels": {"a": "2"}}, "rules": [{"verbs": ["get"]}]});
    assert!(!is_applied(&edited, &desired), "a changed label");
    let unlabelled = json!({"metadata": {"name": "r"}, "rules": [{"verbs": ["get"]}]});
    assert!(!is_applied(&unlabelled, &desired), "a removed label");
    let more_rules = json!({"metadata": {"name": "r", "labels": {"a": "1"}}, "rules": [{"verbs": ["get"]}, {"verbs": ["list"]}]});
    assert!(!is_applied(&more_rules, &desired), "lists must be equal");
    let no_rules = json!({"metadata": {"name": "r", "labels": {"a": "1"}}});
    assert!(!is_applied(&no_rules, &desired), "a list that is not empty");
    let empty = json!({"subjects": [], "metadata": {"annotations": {}}, "x": null});
    let live = json!({"metadata": {"name": "r"}});
    assert!(is_applied(&live, &empty), "empty values are left out");
    let flag = json!({"controller": false});
    assert!(!is_applied(&json!({}), &flag), "false is not left out");
}

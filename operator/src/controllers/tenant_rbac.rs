//! The pure decision of what a tenant's namespace and RBAC look like. "Only billing admins can
//! purchase" is enforced by Kubernetes itself: these Roles are the whole policy.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::tenant::{Subject as TenantSubject, SubjectKind, Tenant};

pub use crate::api::tenant::TENANT_LABEL;
/// Role of billing admins in the tenant namespace: buy, change and cancel.
pub const BILLING_ADMIN_ROLE: &str = "marketplace-billing-admin";
/// Role of admins and viewers in the tenant namespace: read only.
pub const READER_ROLE: &str = "marketplace-reader";
/// Cluster-wide read access to the catalog, shared by every tenant.
pub const CATALOG_READER_CLUSTER_ROLE: &str = "marketplace-catalog-reader";

const GROUP: &str = "marketplace.dev";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The namespace of a tenant.
pub fn namespace_name(tenant: &str) -> String {
    format!("tenant-{tenant}")
}

/// Everything the operator keeps in place for one tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantObjects {
    pub namespace: Namespace,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub catalog_binding: ClusterRoleBinding,
}

fn rule(resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![GROUP.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// The cluster role every tenant's people get through their tenant's binding.
pub fn catalog_reader_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(CATALOG_READER_CLUSTER_ROLE.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![rule(&["listings", "wizardconfigs"], READ)]),
        ..ClusterRole::default()
    }
}

fn subjects(people: &[&TenantSubject]) -> Vec<Subject> {
    let mut out: Vec<Subject> = people
        .iter()
        .map(|person| match person.kind {
            SubjectKind::User | SubjectKind::Group => Subject {
                kind: if person.kind == SubjectKind::User {
                    "User"
                } else {
                    "Group"
                }
                .to_owned(),
                name: person.name.clone(),
                api_group: Some(RBAC_GROUP.to_owned()),
                namespace: None,
            },
            SubjectKind::ServiceAccount => Subject {
                kind: "ServiceAccount".to_owned(),
                name: person.name.clone(),
                api_group: Some(String::new()),
                namespace: person.namespace.clone(),
            },
        })
        .collect();
    out.sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    out.dedup();
    out
}

/// The namespace, Roles and bindings for `tenant`, owned by it (so deleting the Tenant lets the
/// garbage collector remove them).
pub fn desired_objects(tenant: &Tenant, owner: OwnerReference) -> TenantObjects {
    let name = tenant.metadata.name.clone().unwrap_or_default();
    let namespace = namespace_name(&name);
    let labels = BTreeMap::from([
        (TENANT_LABEL.to_owned(), name.clone()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "marketplace-operator".to_owned(),
        ),
    ]);
    let meta = |object_name: &str, in_namespace: bool| ObjectMeta {
        name: Some(object_name.to_owned()),
        namespace: in_namespace.then(|| namespace.clone()),
        labels: Some(labels.clone()),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    };
    let spec = &tenant.spec;
    let billing_admins: Vec<&TenantSubject> = spec.billing_admins.iter().collect();
    let readers: Vec<&TenantSubject> = spec.admins.iter().chain(&spec.viewers).collect();
    let everyone: Vec<&TenantSubject> = billing_admins.iter().chain(&readers).copied().collect();
    let binding = |role: &str, people: &[&TenantSubject]| RoleBinding {
        metadata: meta(role, true),
        role_ref: RoleRef {
            api_group: Some(RBAC_GROUP.to_owned()),
            kind: "Role".to_owned(),
            name: role.to_owned(),
        },
        subjects: Some(subjects(people)),
    };
    TenantObjects {
        namespace: Namespace {
            metadata: meta(&namespace, false),
            ..Namespace::default()
        },
        roles: vec![
            Role {
                metadata: meta(BILLING_ADMIN_ROLE, true),
                rules: Some(vec![
                    rule(&["tenantsubscriptions", "bundlesubscriptions"], WRITE),
                    rule(&["entitlements"], READ),
                    // Integration connection settings live in Secrets the subscription names.
                    PolicyRule {
                        api_groups: Some(vec![String::new()]),
                        resources: Some(vec!["secrets".to_owned()]),
                        verbs: WRITE.iter().map(|v| (*v).to_owned()).collect(),
                        ..PolicyRule::default()
                    },
                ]),
            },
            Role {
                metadata: meta(READER_ROLE, true),
                rules: Some(vec![rule(
                    &["tenantsubscriptions", "bundlesubscriptions", "entitlements"],
                    READ,
                )]),
            },
        ],
        role_bindings: vec![
            binding(BILLING_ADMIN_ROLE, &billing_admins),
            binding(READER_ROLE, &readers),
        ],
        catalog_binding: ClusterRoleBinding {
            metadata: meta(&format!("marketplace-tenant-{name}"), false),
            role_ref: RoleRef {
                api_group: Some(RBAC_GROUP.to_owned()),
                kind: "ClusterRole".to_owned(),
                name: CATALOG_READER_CLUSTER_ROLE.to_owned(),
            },
            subjects: Some(subjects(&everyone)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tenant::{BillingContact, TenantSpec};

    fn person(kind: SubjectKind, name: &str, namespace: Option<&str>) -> TenantSubject {
        TenantSubject {
            kind,
            name: name.into(),
            namespace: namespace.map(str::to_owned),
        }
    }

    fn tenant() -> Tenant {
        let mut tenant = Tenant::new(
            "acme",
            TenantSpec {
                display_name: "Acme".into(),
                base_plan: "Professional".into(),
                segment: None,
                region: None,
                billing_contact: BillingContact {
                    name: "Dana".into(),
                    email: "dana@acme.example".into(),
                },
                billing_admins: vec![person(SubjectKind::User, "dana", None)],
                admins: vec![person(SubjectKind::Group, "acme:admins", None)],
                viewers: vec![
                    person(SubjectKind::ServiceAccount, "portal", Some("tenant-acme")),
                    person(SubjectKind::Group, "acme:admins", None),
                ],
                internal: false,
                suspended: false,
                notifications: None,
                credits: None,
            },
        );
        tenant.metadata.uid = Some("uid-1".into());
        tenant
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "marketplace.dev/v1alpha1".into(),
            kind: "Tenant".into(),
            name: "acme".into(),
            uid: "uid-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn namespace_is_named_labelled_and_owned() {
        let objects = desired_objects(&tenant(), owner());
        assert_eq!(
            objects.namespace.metadata.name.as_deref(),
            Some("tenant-acme")
        );
        assert_eq!(
            objects
                .namespace
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(TENANT_LABEL))
                .map(String::as_str),
            Some("acme")
        );
        assert_eq!(
            objects.namespace.metadata.owner_references,
            Some(vec![owner()])
        );
    }

    #[test]
    fn only_billing_admins_may_write_subscriptions() {
        let objects = desired_objects(&tenant(), owner());
        let writes = |role: &Role| {
            role.rules.iter().flatten().any(|r| {
                r.resources
                    .iter()
                    .flatten()
                    .any(|x| x == "tenantsubscriptions")
                    && r.verbs.iter().any(|v| v == "create")
            })
        };
        let by_name = |n: &str| {
            objects
                .roles
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(n))
                .expect("role")
        };
        assert!(writes(by_name(BILLING_ADMIN_ROLE)));
        assert!(!writes(by_name(READER_ROLE)));
        let admins = &objects.role_bindings[0];
        assert_eq!(admins.subjects.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn readers_are_deduplicated_and_service_accounts_keep_their_namespace() {
        let objects = desired_objects(&tenant(), owner());
        let readers = objects.role_bindings[1]
            .subjects
            .clone()
            .unwrap_or_default();
        assert_eq!(readers.len(), 2, "{readers:?}");
        let sa = readers
            .iter()
            .find(|s| s.kind == "ServiceAccount")
            .expect("service account");
        assert_eq!(sa.namespace.as_deref(), Some("tenant-acme"));
        assert_eq!(sa.api_group.as_deref(), Some(""));
        assert_eq!(
            objects.catalog_binding.subjects.as_ref().map(Vec::len),
            Some(3)
        );
    }
}

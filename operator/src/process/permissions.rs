//! What each process asks of the apiserver, in one list: every resource and verb a code path
//! uses, with the names it is limited to and the reason. The Helm chart's Roles and ClusterRoles
//! are checked against it (`tests/e2e/tests/helm_chart.rs`): the chart may grant nothing that is
//! not here, and must cover everything that is. The list depends on the settings (no webhook,
//! no billing, no backend keys: fewer rights), so it is computed from the parsed flags.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::api::ApiSettings;
use super::operator::{OperatorSettings, TokenSource};
use crate::admission::CertSource;
use crate::controllers::announcements::LEDGER_CONFIG_MAP;
use crate::controllers::billing_audit::REPORT_CONFIG_MAP;
use crate::controllers::tenant_rbac::{
    BILLING_ADMIN_ROLE, CATALOG_READER_CLUSTER_ROLE, READER_ROLE,
};
use crate::notify::templates::OVERRIDES_CONFIG_MAP;

/// Where a permission is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reach {
    /// In every namespace, or on cluster-scoped resources (a ClusterRole and its
    /// ClusterRoleBinding).
    Cluster,
    /// In the operator's namespace (`--namespace`) only (a Role and its RoleBinding there).
    OperatorNamespace,
}

/// One thing a process does through the apiserver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub reach: Reach,
    /// The API group ("" for the core group).
    pub api_group: &'static str,
    /// The resource, with its subresource if any (`tenantsubscriptions/status`).
    pub resource: String,
    pub verbs: &'static [&'static str],
    /// The object names it is limited to; empty: any name.
    pub names: Vec<String>,
    /// The code path that needs it.
    pub why: &'static str,
}

/// One verb on one resource, possibly limited to one name: what RBAC rules are compared by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    pub reach: Reach,
    pub api_group: String,
    pub resource: String,
    pub verb: String,
    /// `None`: any name.
    pub name: Option<String>,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.api_group.is_empty() {
            "core"
        } else {
            &self.api_group
        };
        write!(
            f,
            "{:?}: {} {group}/{}",
            self.reach, self.verb, self.resource
        )?;
        if let Some(name) = &self.name {
            write!(f, " named {name}")?;
        }
        Ok(())
    }
}

/// The grants of a list of permissions.
pub fn grants(permissions: &[Permission]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for p in permissions {
        let names: Vec<Option<String>> = if p.names.is_empty() {
            vec![None]
        } else {
            p.names.iter().cloned().map(Some).collect()
        };
        for verb in p.verbs {
            for name in &names {
                out.insert(Grant {
                    reach: p.reach,
                    api_group: p.api_group.to_owned(),
                    resource: p.resource.clone(),
                    verb: (*verb).to_owned(),
                    name: name.clone(),
                });
            }
        }
    }
    out
}

/// The grants of RBAC rules bound with `reach`. Wildcards are kept as written (`*`), so a
/// wildcard never equals a grant the code uses.
pub fn grants_of_rules(reach: Reach, rules: &[PolicyRule]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in rules {
        let names: Vec<Option<String>> = match rule.resource_names.as_deref() {
            None | Some([]) => vec![None],
            Some(names) => names.iter().cloned().map(Some).collect(),
        };
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    for name in &names {
                        out.insert(Grant {
                            reach,
                            api_group: group.clone(),
                            resource: resource.clone(),
                            verb: verb.clone(),
                            name: name.clone(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// Whether `granted` allows `wanted`: the same verb on the same resource, bound cluster-wide or
/// in the same reach, for any name or for the one wanted.
pub fn allows(granted: &BTreeSet<Grant>, wanted: &Grant) -> bool {
    granted.iter().any(|g| {
        g.api_group == wanted.api_group
            && g.resource == wanted.resource
            && g.verb == wanted.verb
            && (g.reach == Reach::Cluster || g.reach == wanted.reach)
            && (g.name.is_none() || g.name == wanted.name)
    })
}

/// The extra user information a service account's token carries (TokenReview `user.extra`),
/// which the API impersonates along with the user. Another authenticator's extras (e.g. an
/// OIDC `claimMappings.extra`) need their keys added to the API's impersonation rights.
pub const SERVICE_ACCOUNT_EXTRA_KEYS: &[&str] = &[
    "authentication.kubernetes.io/credential-id",
    "authentication.kubernetes.io/node-name",
    "authentication.kubernetes.io/node-uid",
    "authentication.kubernetes.io/pod-name",
    "authentication.kubernetes.io/pod-uid",
];

/// Grants (resource, verb, why) that only a path no test can force uses: the least-privilege
/// suite (`tests/e2e/tests/least_privilege.rs`) proves every other grant used, and accepts these
/// unused. Keep it tiny.
pub const NOT_EXERCISED_BY_THE_SUITE: &[(&str, &str, &str)] = &[
    (
        "entitlements",
        "get",
        "the API reads an Entitlement again only when another replica's usage write landed \
         between its cache and its own write (409), a race a test cannot time",
    ),
    (
        "notifications",
        "delete",
        "Sent notifications are deleted after their retention, at least two days",
    ),
];

const MARKETPLACE: &str = "marketplace.dev";
const RBAC: &str = "rbac.authorization.k8s.io";

/// One permission (shorthand for the tables below).
fn p(
    reach: Reach,
    api_group: &'static str,
    resource: &str,
    verbs: &'static [&'static str],
    names: &[&str],
    why: &'static str,
) -> Permission {
    Permission {
        reach,
        api_group,
        resource: resource.to_owned(),
        verbs,
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        why,
    }
}

/// Everything `marketplace operator` does through the apiserver with these settings.
// One line per permission: a table reads better than rustfmt's one argument per line.
#[rustfmt::skip]
pub fn operator(settings: &OperatorSettings) -> Vec<Permission> {
    use Reach::{Cluster, OperatorNamespace as Own};
    let tenant_roles = [BILLING_ADMIN_ROLE, READER_ROLE];
    let catalog_reader = [CATALOG_READER_CLUSTER_ROLE];
    let mut out = vec![
        // runtime::Stores: one watch per kind, on every replica.
        p(Cluster, MARKETPLACE, "listings", &["list", "watch"], &[], "shared caches"),
        p(Cluster, MARKETPLACE, "promotions", &["list", "watch", "create", "patch", "delete"], &[],
            "the promotions cache (subscriptions record theirs); CatalogSource apply and prune"),
        p(Cluster, MARKETPLACE, "bundles", &["list", "watch", "create", "patch", "delete"], &[],
            "the bundles cache (members record their discount); CatalogSource apply and prune"),
        p(Cluster, MARKETPLACE, "bundlesubscriptions", &["list", "watch"], &[],
            "the bundle purchases cache the BundleSubscription controller runs on"),
        p(Cluster, MARKETPLACE, "bundlesubscriptions", &["get"], &[],
            "admission reads a member's bundle purchase fresh before allowing its cancellation"),
        p(Cluster, MARKETPLACE, "bundlesubscriptions/status", &["patch"], &[],
            "BundleSubscription status"),
        p(Cluster, MARKETPLACE, "tenantsubscriptions", &["create"], &[],
            "a bundle purchase's member subscriptions"),
        p(Cluster, MARKETPLACE, "tenants", &["list", "watch"], &[], "shared caches"),
        p(Cluster, MARKETPLACE, "tenantsubscriptions", &["list", "watch"], &[],
            "shared caches; siblings read fresh for validation and admission"),
        p(Cluster, MARKETPLACE, "entitlements", &["list", "watch"], &[],
            "shared caches; a subscription's Entitlements read fresh before writing"),
        // The catalog sync: server-side apply (which may create) and prune.
        p(Cluster, MARKETPLACE, "listings", &["create", "patch", "delete"], &[],
            "CatalogSource apply and prune"),
        p(Cluster, MARKETPLACE, "wizardconfigs", &["list", "create", "patch", "delete"], &[],
            "CatalogSource inventory, apply and prune"),
        p(Cluster, MARKETPLACE, "wizardconfigs", &["get"], &[],
            "integration connection checks read the listing's WizardConfig"),
        p(Own, MARKETPLACE, "catalogsources", &["list", "watch", "patch"], &[],
            "the CatalogSource cache of the operator's namespace; the git-cache finalizer"),
        p(Own, MARKETPLACE, "catalogsources/status", &["patch"], &[], "CatalogSource status"),
        // Tenants: status, and the namespace and RBAC each one gets (server-side apply).
        // Owner references never set blockOwnerDeletion, so no `update` on an owner's
        // finalizers is needed, even under OwnerReferencesPermissionEnforcement (the
        // least-privilege suite runs with it on).
        p(Cluster, MARKETPLACE, "tenants/status", &["patch"], &[], "Tenant status"),
        p(Cluster, "", "namespaces", &["list", "watch", "create", "patch"], &[],
            "each Tenant's namespace, watched by its tenant label and kept in place"),
        p(Cluster, RBAC, "roles", &["list", "watch"], &[], "tenant Roles, by tenant label"),
        p(Cluster, RBAC, "roles", &["create", "patch", "escalate"], &tenant_roles,
            "tenant Roles grant what the operator does not hold (buying, Secrets)"),
        p(Cluster, RBAC, "roles", &["bind"], &tenant_roles, "tenant RoleBindings bind them"),
        p(Cluster, RBAC, "rolebindings", &["list", "watch"], &[],
            "tenant RoleBindings, by tenant label"),
        p(Cluster, RBAC, "rolebindings", &["create", "patch"], &tenant_roles,
            "tenant RoleBindings (named after their Role)"),
        p(Cluster, RBAC, "clusterroles", &["get", "create", "patch", "escalate", "bind"],
            &catalog_reader,
            "the catalog reader, read before it is applied (it may watch WizardConfigs, the \
            operator only lists them)"),
        p(Cluster, RBAC, "clusterrolebindings", &["list", "watch", "create", "patch"], &[],
            "each Tenant's binding to the catalog reader"),
        // Subscriptions and what they grant.
        p(Cluster, MARKETPLACE, "tenantsubscriptions", &["get", "patch"], &[],
            "the billing finalizer; fresh reads before HubSpot calls and for actions"),
        p(Cluster, MARKETPLACE, "tenantsubscriptions/status", &["patch"], &[],
            "subscription status, from reconciles and approval actions"),
        p(Cluster, MARKETPLACE, "entitlements", &["create", "patch"], &[],
            "Entitlements, server-side applied"),
        p(Own, MARKETPLACE, "subscriptionactions", &["list", "watch"], &[],
            "the SubscriptionAction cache of the operator's namespace"),
        p(Own, MARKETPLACE, "subscriptionactions/status", &["patch"], &[],
            "SubscriptionAction status (Accepted or Refused)"),
        // Secrets read by name, in any namespace.
        p(Cluster, "", "secrets", &["get"], &[],
            "integration connection Secrets of tenants; CatalogSource credentials"),
        p(Cluster, "events.k8s.io", "events", &["create", "patch"], &[],
            "Events on every kind (a cluster-scoped object's land in default)"),
    ];
    if let Some(lease) = &settings.lease {
        out.push(p(Own, "coordination.k8s.io", "leases", &["create"], &[],
            "leader election creates the Lease when there is none"));
        out.push(p(Own, "coordination.k8s.io", "leases", &["get", "patch"], &[lease.name.as_str()],
            "leader election"));
    }
    if let Some(hubspot) = &settings.hubspot {
        if let TokenSource::Secret(name) = &hubspot.token {
            out.push(p(Own, "", "secrets", &["get"], &[name.as_str()], "the HubSpot token"));
        }
        out.push(p(Own, "", "configmaps", &["create", "patch"], &[REPORT_CONFIG_MAP],
            "the drift audit's report, server-side applied"));
    }
    if settings.notifications.is_some() {
        out.push(p(Own, MARKETPLACE, "notificationchannels", &["list", "watch"], &[],
            "the NotificationChannel cache"));
        out.push(p(Own, MARKETPLACE, "notifications", &["list", "watch", "create", "get", "delete"], &[],
            "the outbox: its cache, a record per event and recipient, a fresh read per attempt, \
             Sent records deleted after their retention"));
        out.push(p(Own, MARKETPLACE, "notifications/status", &["patch"], &[],
            "delivery state of outbox records"));
        out.push(p(Own, "", "configmaps", &["get"], &[OVERRIDES_CONFIG_MAP],
            "the installation's template overrides"));
        out.push(p(Own, "", "configmaps", &["get", "create", "patch"], &[LEDGER_CONFIG_MAP],
            "the ledger of catalog announcements, server-side applied"));
    }
    match settings.admission.as_ref().map(|a| &a.certificate) {
        None => {}
        Some(CertSource::External { secret }) => {
            out.push(p(Own, "", "secrets", &["get"], &[secret.as_str()],
                "the admission webhook's certificate, kept by cert-manager"));
        }
        Some(CertSource::Managed { secret, webhook_config, .. }) => {
            out.push(p(Own, "", "secrets", &["create"], &[],
                "the admission webhook's own CA and certificate, made the first time"));
            out.push(p(Own, "", "secrets", &["get", "update"], &[secret.as_str()],
                "the admission webhook's own CA and certificate, rotated"));
            if let Some(config) = webhook_config {
                out.push(p(Cluster, "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations", &["get", "update"], &[config.as_str()],
                    "the webhook configuration's caBundle follows the own CA"));
            }
        }
    }
    out
}

/// Everything `marketplace api` does through the apiserver with its own credentials (writes
/// made as the caller are the caller's rights, not the API's).
#[rustfmt::skip]
pub fn api(settings: &ApiSettings) -> Vec<Permission> {
    use Reach::{Cluster, OperatorNamespace as Own};
    const AS_CALLER: &str = "writes are made as the caller";
    let mut out = vec![
        p(Cluster, MARKETPLACE, "listings", &["list", "watch"], &[], "shared caches"),
        p(Cluster, MARKETPLACE, "promotions", &["list", "watch"], &[],
            "the storefront quotes promoted prices"),
        p(Cluster, MARKETPLACE, "bundles", &["list", "watch"], &[],
            "the storefront sells bundles"),
        p(Cluster, MARKETPLACE, "bundlesubscriptions", &["list", "watch"], &[],
            "the storefront lists a tenant's bundle purchases"),
        p(Cluster, MARKETPLACE, "tenants", &["list", "watch"], &[], "shared caches"),
        p(Cluster, MARKETPLACE, "tenantsubscriptions", &["list", "watch"], &[], "shared caches"),
        p(Cluster, MARKETPLACE, "entitlements", &["list", "watch"], &[], "shared caches"),
        p(Cluster, MARKETPLACE, "tenantsubscriptions", &["get"], &[],
            "an idempotent purchase's retry finds the subscription it made"),
        p(Cluster, MARKETPLACE, "wizardconfigs", &["get"], &[],
            "listing details and wizard tests show the integration's WizardConfig"),
        p(Cluster, MARKETPLACE, "entitlements/status", &["patch"], &[],
            "usage counts (status.usage)"),
        p(Cluster, MARKETPLACE, "entitlements", &["get"], &[],
            "a usage write that raced another replica's reads the Entitlement again"),
        p(Cluster, "authentication.k8s.io", "tokenreviews", &["create"], &[],
            "bearer tokens are reviewed"),
        p(Cluster, "authorization.k8s.io", "subjectaccessreviews", &["create"], &[],
            "who may read or buy for a tenant, and who is a superadmin"),
        p(Cluster, "", "users", &["impersonate"], &[], AS_CALLER),
        p(Cluster, "", "groups", &["impersonate"], &[], AS_CALLER),
        p(Cluster, "", "serviceaccounts", &["impersonate"], &[], AS_CALLER),
        p(Cluster, "authentication.k8s.io", "uids", &["impersonate"], &[], AS_CALLER),
        p(Own, "", "configmaps", &["get"], &[REPORT_CONFIG_MAP],
            "the support view shows the last drift report"),
    ];
    for key in SERVICE_ACCOUNT_EXTRA_KEYS {
        out.push(p(Cluster, "authentication.k8s.io", &format!("userextras/{key}"),
            &["impersonate"], &[], AS_CALLER));
    }
    if settings.api_keys {
        out.push(p(Cluster, "", "secrets", &["list", "watch"], &[],
            "backend keys: one label-selected watch of the key Secrets"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(reach: Reach, resource: &str, verb: &str, name: Option<&str>) -> Grant {
        Grant {
            reach,
            api_group: String::new(),
            resource: resource.into(),
            verb: verb.into(),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn a_cluster_wide_grant_for_any_name_allows_a_named_one_in_the_namespace() {
        let granted = BTreeSet::from([grant(Reach::Cluster, "secrets", "get", None)]);
        let wanted = grant(Reach::OperatorNamespace, "secrets", "get", Some("token"));
        assert!(allows(&granted, &wanted));
    }

    #[test]
    fn a_named_or_namespaced_grant_allows_nothing_wider() {
        let named = BTreeSet::from([grant(Reach::Cluster, "secrets", "get", Some("token"))]);
        assert!(!allows(
            &named,
            &grant(Reach::Cluster, "secrets", "get", None)
        ));
        assert!(!allows(
            &named,
            &grant(Reach::Cluster, "secrets", "get", Some("other"))
        ));
        let own = BTreeSet::from([grant(Reach::OperatorNamespace, "secrets", "get", None)]);
        assert!(!allows(
            &own,
            &grant(Reach::Cluster, "secrets", "get", None)
        ));
        assert!(!allows(
            &own,
            &grant(Reach::OperatorNamespace, "secrets", "list", None)
        ));
    }

    #[test]
    fn rules_expand_to_one_grant_per_group_resource_verb_and_name() {
        let rule = PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into(), "configmaps".into()]),
            verbs: vec!["get".into(), "update".into()],
            resource_names: Some(vec!["a".into()]),
            ..PolicyRule::default()
        };
        let grants = grants_of_rules(Reach::OperatorNamespace, &[rule]);
        assert_eq!(grants.len(), 4);
        assert!(grants.contains(&grant(
            Reach::OperatorNamespace,
            "configmaps",
            "update",
            Some("a")
        )));
    }
}

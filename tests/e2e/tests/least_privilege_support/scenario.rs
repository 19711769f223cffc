//! The scenario: every code path of the operator and the API that reaches the apiserver, driven
//! the way people and HubSpot drive them (git commits, the storefront, the console, webhooks).

use std::collections::BTreeSet;
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::authentication::v1::BoundObjectReference;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use kube::{Client, ResourceExt};
use marketplace_e2e::api_process::{Caller, token_request};
use marketplace_e2e::eventually;
use marketplace_e2e::example;
use marketplace_e2e::git_repo::Repo;
use marketplace_e2e::subscriptions::{CONVERGED, apply, phase_of, recorded_usage};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Entitlement, Listing, Tenant, TenantSubscription, WizardConfig};
use marketplace_operator::cli::CliError;
use marketplace_operator::controllers::billing_audit::REPORT_CONFIG_MAP;
use marketplace_operator::controllers::tenant_rbac::{
    BILLING_ADMIN_ROLE, CATALOG_READER_CLUSTER_ROLE, READER_ROLE,
};
use marketplace_operator::lifecycle::bundle::member_name;
use marketplace_operator::plugin::PluginCli;
use marketplace_operator::process::permissions::{Grant, Reach};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{SUPERADMIN_SUBJECT, World, superadmin};

const TENANT: &str = "acme";
const PEOPLE: &str = "people";
const BUYER: &str = "buyer";
const NODE: &str = "node-1";

/// What the scenario left for the checks.
pub struct Scenario {
    tenant_namespace: String,
    /// The refusal of the plugin's own check, when a blocking owner reference was set without
    /// `update` on the owner's finalizers.
    pub finalizers_refusal: String,
}

fn renamed(file: &str, name: &str) -> Value {
    let mut object = example(file);
    object["metadata"] = json!({ "name": name });
    object
}

/// What the catalog's commits do to the legacy listing and wizard.
#[derive(Clone, Copy, PartialEq)]
enum Legacy {
    Published,
    /// A Published listing must be Archived before it leaves the catalog.
    Archived,
    Removed,
}

/// An in-app instant listing, an approval one, an integration with its wizard, and a legacy
/// listing, wizard and promotion that leave the catalog (pruned).
fn write_catalog(repo: &Repo, legacy_state: Legacy) {
    let mut routes = renamed("listing-premium-analytics.yaml", "routes");
    routes["spec"]["activation"] = json!("Instant");
    routes["spec"]["features"] = json!(["route_optimization"]);
    routes["spec"]["plans"] = json!([routes["spec"]["plans"][0].clone()]);
    repo.write("catalog/listings/routes.yaml", &routes);
    // Two more in-app listings, sold together as a bundle.
    for (name, feature) in [("maps", "maps"), ("alerts", "alerts")] {
        let mut member = routes.clone();
        member["metadata"]["name"] = json!(name);
        member["spec"]["features"] = json!([feature]);
        repo.write(&format!("catalog/listings/{name}.yaml"), &member);
    }
    repo.write(
        "catalog/bundles/kit.yaml",
        &bundle("kit", &["maps", "alerts"]),
    );
    repo.write(
        "catalog/listings/analytics.yaml",
        &renamed("listing-premium-analytics.yaml", "analytics"),
    );
    repo.write(
        "catalog/listings/quickbooks.yaml",
        &renamed("listing-quickbooks.yaml", "quickbooks"),
    );
    let mut wizard = renamed("wizardconfig-quickbooks.yaml", "quickbooks");
    // Loopback: refused by the probe policy at once, no network needed.
    wizard["spec"]["testConnection"]["urlTemplate"] =
        json!("https://127.0.0.1:9/v3/company/{{realmId}}");
    repo.write("catalog/wizards/quickbooks.yaml", &wizard);
    let legacy = [
        "catalog/listings/legacy.yaml",
        "catalog/wizards/legacy.yaml",
        "catalog/promotions/legacy.yaml",
        "catalog/bundles/legacy.yaml",
    ];
    if legacy_state != Legacy::Removed {
        let mut listing = renamed("listing-gigsafe.yaml", "legacy");
        if legacy_state == Legacy::Archived {
            listing["spec"]["lifecycle"] = json!("Archived");
        }
        repo.write(legacy[0], &listing);
        wizard["metadata"]["name"] = json!("legacy");
        repo.write(legacy[1], &wizard);
        // A past promotion: no subscription keeps it, so it is pruned with the rest.
        let mut promotion = renamed("promotion-route-optimization.yaml", "legacy");
        promotion["spec"]["targets"] = json!([{"listing": "routes"}]);
        promotion["spec"]["startsAt"] = json!("2020-01-01T00:00:00Z");
        promotion["spec"]["endsAt"] = json!("2020-02-01T00:00:00Z");
        repo.write(legacy[2], &promotion);
        // A bundle nobody bought: pruned with the rest.
        repo.write(legacy[3], &bundle("legacy", &["routes", "analytics"]));
    } else {
        for file in legacy {
            repo.remove(file);
        }
    }
    repo.commit("catalog");
}

/// Bundle `name` of the `business` plans of `listings`, 10% off.
fn bundle(name: &str, listings: &[&str]) -> Value {
    let members: Vec<Value> = listings
        .iter()
        .map(|l| json!({"listing": l, "plan": "business"}))
        .collect();
    json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Bundle",
        "metadata": {"name": name},
        "spec": {"displayName": "Kit", "members": members, "discount": {"percentage": 10}}})
}

/// A token of service account `namespace/account` bound to a Pod on a Node, as a workload in a
/// cluster has: its TokenReview carries the pod's and the node's names and uids.
async fn pod_bound_token(admin: &Client, namespace: &str, account: &str) -> String {
    apply(
        &Api::<Namespace>::all(admin.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    )
    .await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    apply(
        &accounts,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace}}),
    )
    .await;
    apply(
        &Api::<Node>::all(admin.clone()),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}}),
    )
    .await;
    let pod = apply(
        &Api::<Pod>::namespaced(admin.clone(), namespace),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": account, "namespace": namespace},
            "spec": {"serviceAccountName": account, "nodeName": NODE,
                "containers": [{"name": "app", "image": "app"}]}}),
    )
    .await;
    let bound = BoundObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(account.into()),
        uid: pod.metadata.uid.clone(),
    };
    token_request(&accounts, account, Some(bound)).await
}

impl Scenario {
    pub async fn run(world: &World) -> Scenario {
        let admin = &world.admin;
        let http = reqwest::Client::new();
        let buyer = Caller {
            http: http.clone(),
            base: world.api_base.clone(),
            token: pod_bound_token(admin, PEOPLE, BUYER).await,
        };
        let ops = Caller {
            http,
            base: world.api_base.clone(),
            token: world
                .control_plane
                .oidc_issuer()
                .mint(SUPERADMIN_SUBJECT, &["ops"], Duration::from_secs(3600))
                .expect("ID token"),
        };

        // Tenants hear of their purchases by e-mail; nothing listens on port 9, so delivery
        // fails and records its failure (the outbox, its status, the channel cache, the
        // template overrides, the announcement ledger are all used).
        apply(
            &Api::<marketplace_operator::api::NotificationChannel>::namespaced(
                admin.clone(),
                &world.namespace,
            ),
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "NotificationChannel",
                "metadata": {"name": "tenant-mail", "namespace": world.namespace},
                "spec": {"audience": "Tenants", "smtp": {"host": "127.0.0.1", "port": 9,
                    "security": "None", "from": "marketplace@saas.example"}}}),
        )
        .await;

        // The catalog, from git (its credentials in a Secret), then pruned.
        let repo = Repo::new();
        write_catalog(&repo, Legacy::Published);
        apply(
            &Api::<Secret>::namespaced(admin.clone(), &world.namespace),
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "catalog-git", "namespace": world.namespace},
                "stringData": {"username": "git", "password": "not-needed-for-file-urls"}}),
        )
        .await;
        let sources = dynamic_catalog_sources(admin, &world.namespace);
        sources
            .patch(
                "catalog",
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(json!({
                    "apiVersion": "marketplace.dev/v1alpha1", "kind": "CatalogSource",
                    "metadata": {"name": "catalog", "namespace": world.namespace},
                    "spec": {"url": repo.url(),
                        "ref": {"branch": "main"}, "path": "catalog", "interval": "1s",
                        "prune": true, "secretRef": {"name": "catalog-git"}}})),
            )
            .await
            .expect("CatalogSource");
        let listings: Api<Listing> = Api::all(admin.clone());
        let wizards: Api<WizardConfig> = Api::all(admin.clone());
        for name in ["routes", "analytics", "quickbooks", "legacy"] {
            eventually(&format!("listing {name} synced"), CONVERGED, || async {
                listings.get_opt(name).await.ok().flatten()
            })
            .await;
        }
        write_catalog(&repo, Legacy::Archived);
        eventually("the legacy listing archived", CONVERGED, || async {
            let listing = listings.get_opt("legacy").await.ok()??;
            (format!("{:?}", listing.spec.lifecycle) == "Archived").then_some(())
        })
        .await;
        write_catalog(&repo, Legacy::Removed);
        eventually(
            "the legacy listing and wizard pruned",
            CONVERGED,
            || async {
                let gone = listings.get_opt("legacy").await.ok()?.is_none()
                    && wizards.get_opt("legacy").await.ok()?.is_none();
                gone.then_some(())
            },
        )
        .await;

        // A tenant whose billing admins are a workload's service account and a person.
        let tenants: Api<Tenant> = Api::all(admin.clone());
        apply(
            &tenants,
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
                "metadata": {"name": TENANT},
                "spec": {"displayName": "Acme", "basePlan": "Professional",
                    "billingContact": {"name": "Ann", "email": "ann@acme.example"},
                    "billingAdmins": [
                        {"kind": "ServiceAccount", "name": BUYER, "namespace": PEOPLE},
                        {"kind": "User", "name": superadmin()}]}}),
        )
        .await;
        let tenant_namespace = eventually("the tenant namespace", CONVERGED, || async {
            tenants.get(TENANT).await.ok()?.status?.namespace
        })
        .await;
        let subs: Api<TenantSubscription> = Api::namespaced(admin.clone(), &tenant_namespace);

        // The storefront, as the workload: read, look at the integration, buy three times.
        let catalog = format!("/v1/tenants/{TENANT}/catalog");
        eventually("the buyer may buy", CONVERGED, || async {
            let (status, body) = buyer.get(&catalog).await;
            (status == StatusCode::OK && body["rights"]["mayBuy"] == true).then_some(())
        })
        .await;
        let (status, body) = buyer.get(&format!("{catalog}/quickbooks")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let buy = format!("/v1/tenants/{TENANT}/subscriptions");
        let price =
            |amount: &str| json!({"amount": amount, "currency": "USD", "interval": "Month"});
        let routes =
            json!({"listing": "routes", "plan": "business", "confirmedPrice": price("499.00")});
        for _ in 0..2 {
            let (status, _, body) = buyer.post(&buy, Some("routes-1"), routes.clone()).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (status, _, body) = buyer
            .post(
                &buy,
                Some("quickbooks-1"),
                json!({"listing": "quickbooks", "plan": "standard", "confirmedPrice": price("29.00"),
                    "connection": {"realmId": "1234567", "apiKey": "a-long-enough-api-key-0001"},
                    "fieldMapping": {"customer_name": "DisplayName", "line_item": "ItemRef"}}),
            )
            .await;
        // Its connection Secret (made as the buyer) is read by the operator, whose test of it
        // fails here: loopback targets are refused.
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let quickbooks = body["subscription"]["name"]
            .as_str()
            .expect("name")
            .to_owned();
        let (status, _, body) = buyer
            .post(
                &buy,
                Some("analytics-1"),
                json!({"listing": "analytics", "plan": "business", "confirmedPrice": price("499.00")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let analytics = body["subscription"]["name"]
            .as_str()
            .expect("name")
            .to_owned();
        let routes_name = eventually("the routes subscription", CONVERGED, || async {
            subs.list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|s| s.spec.listing.as_str() == "routes")
                .map(|s| s.name_any())
        })
        .await;
        let active = phase_of(&subs, &routes_name, Phase::Active).await;

        // A bundle, bought and cancelled through the storefront: the operator creates its
        // members and cancels them with it (the webhook reads the purchase before allowing it).
        let (status, _, body) = buyer
            .post(
                &format!("/v1/tenants/{TENANT}/bundle-subscriptions"),
                Some("kit-1"),
                // Two plans of 499.00 at 10% off.
                json!({"bundle": "kit", "confirmedPrice": price("898.20")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let kit = body["bundleSubscription"]["name"]
            .as_str()
            .expect("name")
            .to_owned();
        for listing in ["maps", "alerts"] {
            phase_of(&subs, &member_name(&kit, listing), Phase::Active).await;
        }
        let (status, _, body) = buyer
            .post(
                &format!("/v1/tenants/{TENANT}/bundle-subscriptions/{kit}/cancel"),
                None,
                json!({"effective": "Immediately"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for listing in ["maps", "alerts"] {
            phase_of(&subs, &member_name(&kit, listing), Phase::Cancelled).await;
        }

        // Product code checks the feature; the counts land in the Entitlement's status.
        for _ in 0..3 {
            let (status, body) = buyer
                .get(&format!(
                    "/v1/tenants/{TENANT}/entitlements/route_optimization"
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let entitlements: Api<Entitlement> = Api::namespaced(admin.clone(), &tenant_namespace);
        recorded_usage(&entitlements, "route_optimization", 3).await;

        // The console, as the superadmin: the approval ladder from the inbox.
        let actions = format!("/v1/admin/tenants/{TENANT}/subscriptions/{analytics}/actions");
        for (step, body) in [
            (
                "Invoice",
                json!({"action": "Invoice", "invoice": {"amount": "499.00", "currency": "USD"}}),
            ),
            ("MarkPaid", json!({"action": "MarkPaid"})),
            ("Approve", json!({"action": "Approve"})),
        ] {
            eventually(&format!("the inbox offers {step}"), CONVERGED, || async {
                let (status, inbox) = ops.get("/v1/admin/inbox").await;
                (status == StatusCode::OK).then_some(())?;
                inbox["items"]
                    .as_array()?
                    .iter()
                    .any(|i| {
                        i["subscription"] == analytics.as_str()
                            && i["actions"]
                                .as_array()
                                .is_some_and(|a| a.contains(&json!(step)))
                    })
                    .then_some(())
            })
            .await;
            let (status, _, created) = ops.post(&actions, Some(step), body).await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
        }
        phase_of(&subs, &analytics, Phase::Active).await;

        // The drift audit's report, shown by the support view.
        let reports: Api<ConfigMap> = Api::namespaced(admin.clone(), &world.namespace);
        eventually("the drift report", CONVERGED, || async {
            reports.get_opt(REPORT_CONFIG_MAP).await.ok().flatten()
        })
        .await;
        let (status, body) = ops.get(&format!("/v1/admin/tenants/{TENANT}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // HubSpot says payments fail (a webhook): Suspended.
        let company: u64 = active
            .status
            .and_then(|s| s.hubspot)
            .and_then(|h| h.company_id)
            .and_then(|c| c.parse().ok())
            .expect("company id");
        world
            .sim
            .admin()
            .set_company_payments_failing(company, true);
        world.sim.admin().advance_clock(32 * 24 * 3600 * 1000);
        phase_of(&subs, &routes_name, Phase::Suspended).await;

        // The person cancels the approved subscription at the end of the period; then at once.
        let (status, _, body) = ops
            .post(
                &format!("/v1/tenants/{TENANT}/subscriptions/{analytics}/cancel"),
                None,
                json!({"reason": "switching"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        subs.patch(
            &analytics,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"cancellation": {"effective": "Immediately", "reason": "now"}}}),
            ),
        )
        .await
        .expect("cancel at once");
        phase_of(&subs, &analytics, Phase::Cancelled).await;

        // `kubectl marketplace` as the same person, holding only the chart's superadmin role.
        let kubeconfig = superadmin_kubeconfig(world);
        for args in [
            vec!["status", TENANT],
            vec!["inbox"],
            vec!["drift"],
            vec![
                "reject",
                &format!("{TENANT}/{quickbooks}"),
                "--reason",
                "no connection",
            ],
        ] {
            match run_plugin(&kubeconfig, &args).await {
                // Drift found and a step that does not fit are answers, not refusals.
                Ok(()) | Err(CliError::DriftFound { .. } | CliError::Refused(_)) => {}
                Err(e) => panic!("kubectl marketplace {args:?} as a superadmin: {e}"),
            }
        }

        // The webhook's certificate renewed at least once, and the caBundle follows.
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), &world.namespace);
        let first = eventually("the webhook certificate", CONVERGED, || async {
            secrets
                .get_opt(&world.cert_secret)
                .await
                .ok()??
                .resource_version()
        })
        .await;
        eventually("the webhook certificate renewed", CONVERGED, || async {
            let now = secrets
                .get(&world.cert_secret)
                .await
                .ok()?
                .resource_version()?;
            (now != first).then_some(())
        })
        .await;
        let configs: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
        let config = configs
            .get(&world.webhook_config)
            .await
            .expect("configuration");
        assert!(
            config.webhooks.unwrap_or_default()[0]
                .client_config
                .ca_bundle
                .is_some(),
            "the operator set the caBundle"
        );

        // Suspending the tenant and resuming it announces Provisioned twice: a repeated Event
        // (patched as a series), here for a cluster-scoped object (so in `default`).
        for suspended in [true, false] {
            tenants
                .patch(
                    TENANT,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"suspended": suspended}})),
                )
                .await
                .expect("suspend or resume the tenant");
            eventually("the tenant's Ready reason follows", CONVERGED, || async {
                let tenant = tenants.get(TENANT).await.ok()?;
                let ready = tenant
                    .status?
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == "Ready")?;
                (ready.reason.contains("Suspended") == suspended).then_some(())
            })
            .await;
        }

        let finalizers_refusal =
            block_owner_deletion_without_finalizers(world, &tenant_namespace, &routes_name).await;
        Scenario {
            tenant_namespace,
            finalizers_refusal,
        }
    }

    /// Grants the apiserver checks inside a request rather than as its verb, so the audit log
    /// cannot show them, each proven needed another way:
    /// - `escalate` and `bind` on the tenant Roles and the catalog reader: those roles grant
    ///   something the operator itself may not do (a SubjectAccessReview says so), so creating
    ///   or binding them is refused without these verbs;
    /// - `update` on `tenants/finalizers` and `tenantsubscriptions/finalizers`: the operator's
    ///   objects block their owner's deletion (controller references), and with
    ///   OwnerReferencesPermissionEnforcement on (as here) setting that needs this verb, as
    ///   [`block_owner_deletion_without_finalizers`] shows.
    pub async fn checked_inside(&self, world: &World, user: &str) -> BTreeSet<Grant> {
        let mut out = BTreeSet::new();
        if user != world.operator_user {
            return out;
        }
        let admin = &world.admin;
        let grant = |resource: &str, verb: &str, name: Option<&str>| Grant {
            reach: Reach::Cluster,
            api_group: if resource.starts_with("tenant") {
                "marketplace.dev".into()
            } else {
                "rbac.authorization.k8s.io".into()
            },
            resource: resource.into(),
            verb: verb.into(),
            name: name.map(str::to_owned),
        };
        let roles: Api<Role> = Api::namespaced(admin.clone(), &self.tenant_namespace);
        for name in [BILLING_ADMIN_ROLE, READER_ROLE] {
            let role = roles.get(name).await.expect("tenant Role");
            let beyond = beyond_rights(
                world,
                Some(&self.tenant_namespace),
                &role.rules.unwrap_or_default(),
            )
            .await;
            if !beyond.is_empty() {
                eprintln!("Role {name} grants what the operator lacks: {beyond:?}");
                out.insert(grant("roles", "escalate", Some(name)));
                out.insert(grant("roles", "bind", Some(name)));
            }
        }
        let reader = Api::<ClusterRole>::all(admin.clone())
            .get(CATALOG_READER_CLUSTER_ROLE)
            .await
            .expect("catalog reader");
        let beyond = beyond_rights(world, None, &reader.rules.unwrap_or_default()).await;
        if !beyond.is_empty() {
            eprintln!(
                "ClusterRole {CATALOG_READER_CLUSTER_ROLE} grants what the operator lacks: {beyond:?}"
            );
            out.insert(grant(
                "clusterroles",
                "escalate",
                Some(CATALOG_READER_CLUSTER_ROLE),
            ));
            out.insert(grant(
                "clusterroles",
                "bind",
                Some(CATALOG_READER_CLUSTER_ROLE),
            ));
        }
        if self.finalizers_refusal.is_empty() {
            return out;
        }
        let blocks =
            |owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
             kind: &str| {
                owners
                    .iter()
                    .any(|o| o.kind == kind && o.block_owner_deletion == Some(true))
            };
        let namespace = Api::<Namespace>::all(admin.clone())
            .get(&self.tenant_namespace)
            .await
            .expect("tenant namespace");
        if blocks(namespace.owner_references(), "Tenant") {
            out.insert(grant("tenants/finalizers", "update", None));
        }
        let entitlements = Api::<Entitlement>::namespaced(admin.clone(), &self.tenant_namespace)
            .list(&Default::default())
            .await
            .expect("entitlements");
        if entitlements
            .items
            .iter()
            .any(|e| blocks(e.owner_references(), "TenantSubscription"))
        {
            out.insert(grant("tenantsubscriptions/finalizers", "update", None));
        }
        out
    }
}

/// A kubeconfig acting as the OIDC superadmin (the admin's credentials, impersonating them),
/// so RBAC applies the chart's superadmin role and nothing else.
fn superadmin_kubeconfig(world: &World) -> tempfile::NamedTempFile {
    let mut config = Kubeconfig::read_from(world.control_plane.kubeconfig_path())
        .expect("the control plane's kubeconfig");
    for named in &mut config.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.impersonate = Some(superadmin());
        }
    }
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        file.path(),
        serde_json::to_string(&config).expect("kubeconfig JSON"),
    )
    .expect("write kubeconfig");
    file
}

/// `kubectl marketplace <args> -o json` in-process (the plugin's own command line and code).
async fn run_plugin(kubeconfig: &tempfile::NamedTempFile, args: &[&str]) -> Result<(), CliError> {
    let path = kubeconfig.path().to_str().expect("UTF-8 path").to_owned();
    let argv: Vec<String> = ["kubectl-marketplace", "--kubeconfig", &path, "-o", "json"]
        .into_iter()
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    let cli = PluginCli::try_parse_from(argv).expect("the plugin's arguments");
    tokio::task::spawn_blocking(move || cli.run())
        .await
        .expect("the plugin")
}

fn dynamic_catalog_sources(admin: &Client, namespace: &str) -> Api<kube::api::DynamicObject> {
    marketplace_e2e::dynamic_api::<marketplace_operator::api::catalog_source::CatalogSource>(
        admin.clone(),
        Some(namespace),
    )
}

/// The verbs of `rules` (in `namespace`, or cluster-wide) that the operator's service account
/// may not use itself, as `verb group/resource`.
async fn beyond_rights(
    world: &World,
    namespace: Option<&str>,
    rules: &[PolicyRule],
) -> Vec<String> {
    let reviews: Api<SubjectAccessReview> = Api::all(world.admin.clone());
    let mut out = Vec::new();
    for rule in rules {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    let review = SubjectAccessReview {
                        spec: SubjectAccessReviewSpec {
                            user: Some(world.operator_user.clone()),
                            groups: Some(world.service_account_groups()),
                            resource_attributes: Some(ResourceAttributes {
                                namespace: namespace.map(str::to_owned),
                                group: Some(group.clone()),
                                resource: Some(resource.clone()),
                                verb: Some(verb.clone()),
                                ..ResourceAttributes::default()
                            }),
                            ..SubjectAccessReviewSpec::default()
                        },
                        ..SubjectAccessReview::default()
                    };
                    let answer = reviews
                        .create(&PostParams::default(), &review)
                        .await
                        .expect("SubjectAccessReview");
                    if !answer.status.is_some_and(|s| s.allowed) {
                        out.push(format!("{verb} {group}/{resource}"));
                    }
                }
            }
        }
    }
    out
}

/// Someone who may create Entitlements, but not update the owning subscription's finalizers,
/// sets a blocking owner reference: the apiserver's OwnerReferencesPermissionEnforcement
/// refuses it. Returns the refusal's message.
async fn block_owner_deletion_without_finalizers(
    world: &World,
    namespace: &str,
    subscription: &str,
) -> String {
    let admin = &world.admin;
    let owner = Api::<TenantSubscription>::namespaced(admin.clone(), namespace)
        .get(subscription)
        .await
        .expect("subscription");
    apply(
        &Api::<Role>::namespaced(admin.clone(), namespace),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "entitlement-writer", "namespace": namespace},
            "rules": [{"apiGroups": ["marketplace.dev"], "resources": ["entitlements"],
                "verbs": ["create"]}]}),
    )
    .await;
    apply(
        &Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(admin.clone(), namespace),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "entitlement-writer", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "entitlement-writer"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "writer"}]}),
    )
    .await;
    let writer = world
        .control_plane
        .client_as_user("writer", &[])
        .await
        .expect("client");
    let entitlement: Entitlement = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "Entitlement",
        "metadata": {"name": "blocking", "namespace": namespace,
            "ownerReferences": [{"apiVersion": "marketplace.dev/v1alpha1",
                "kind": "TenantSubscription", "name": subscription,
                "uid": owner.uid().expect("uid"), "blockOwnerDeletion": true}]},
        "spec": {"tenant": TENANT, "feature": "premium_analytics", "state": "Active",
            "startsAt": "2026-01-01T00:00:00Z", "sourceSubscription": subscription}}))
    .expect("an Entitlement");
    let entitlements: Api<Entitlement> = Api::namespaced(writer, namespace);
    match entitlements
        .create(&PostParams::default(), &entitlement)
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            status.message
        }
        other => panic!(
            "a blocking owner reference without update on the owner's finalizers was not refused: {other:?}"
        ),
    }
}

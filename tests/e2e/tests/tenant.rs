//! The Tenant reconciler on a real apiserver: the namespace and RBAC it keeps in place are the
//! whole purchase policy, proven with impersonated users ("only billing admins can purchase").
//! One test: the Tenant controller serves every Tenant of the cluster, so only one runs here.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::RoleBinding;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use marketplace_e2e::controllers;
use marketplace_e2e::{control_plane, dynamic_api, eventually, example, unique_name};
use marketplace_harness::{apiserver_writes, writes_between};
use marketplace_operator::api::conditions::{TRUE, types::READY};
use marketplace_operator::api::tenant::TenantStatus;
use marketplace_operator::api::{Entitlement, Listing, Tenant, TenantSubscription};
use marketplace_operator::controllers::{ControllerConfig, Enabled};
use serde_json::json;

/// Controllers here converge within seconds; GC of a namespace can take longer.
const CONVERGED: Duration = Duration::from_secs(90);

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

/// The status of Tenant `name` once it is Ready.
async fn ready(tenants: &Api<Tenant>, name: &str) -> TenantStatus {
    eventually("the tenant to be Ready", CONVERGED, || async move {
        let status = tenants.get(name).await.ok()?.status?;
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == READY && c.status == TRUE);
        ready.then_some(status)
    })
    .await
}

#[tokio::test]
async fn a_tenant_gets_a_namespace_where_only_billing_admins_can_purchase() {
    let control_plane = control_plane().await;
    let admin = control_plane.client().await.expect("client");
    let config = ControllerConfig {
        namespace: "marketplace-system".into(),
        git_timeout: Duration::from_secs(30),
        git_cache_dir: std::env::temp_dir().join("tenant-e2e-git"),
        catalog_concurrency: 1,
        tenant_concurrency: 2,
        ..ControllerConfig::default()
    };
    let ctx = Arc::new(controllers::context(&admin, config.clone(), "e2e-tenant"));
    let running = controllers::start(
        ctx,
        Enabled {
            tenants: true,
            ..Enabled::NONE
        },
    );

    // A tenant whose billing admin is dana, with viewer victor.
    let name = unique_name("acme");
    let mut object = example("tenant-acme-logistics.yaml");
    object["metadata"] = json!({ "name": name });
    object["spec"]["billingAdmins"] = json!([{ "kind": "User", "name": "dana@acme.example" }]);
    object["spec"]["admins"] = json!([{ "kind": "Group", "name": "acme:admins" }]);
    object["spec"]["viewers"] = json!([{ "kind": "User", "name": "victor@acme.example" }]);
    let tenant: Tenant = serde_json::from_value(object).expect("a Tenant");
    let tenants: Api<Tenant> = Api::all(admin.clone());
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .expect("tenant created");

    let namespace = format!("tenant-{name}");
    let status = ready(&tenants, &name).await;
    assert_eq!(status.namespace.as_deref(), Some(namespace.as_str()));
    let ns = Api::<Namespace>::all(admin.clone())
        .get(&namespace)
        .await
        .expect("namespace");
    assert_eq!(
        ns.metadata
            .labels
            .unwrap_or_default()
            .get("marketplace.dev/tenant"),
        Some(&name)
    );

    // dana buys; victor cannot, but may look at subscriptions, entitlements and the catalog.
    let dana = control_plane
        .client_as_user("dana@acme.example", &["system:authenticated"])
        .await
        .expect("dana");
    let victor = control_plane
        .client_as_user("victor@acme.example", &["system:authenticated"])
        .await
        .expect("victor");
    let mut subscription = example("subscription-route-optimization.yaml");
    subscription["metadata"]["namespace"] = json!(namespace);
    let subscription: DynamicObject = serde_json::from_value(subscription).expect("subscription");
    let as_victor = dynamic_api::<TenantSubscription>(victor.clone(), Some(&namespace));
    assert!(
        forbidden(
            as_victor
                .create(&PostParams::default(), &subscription)
                .await
        ),
        "a viewer cannot purchase"
    );
    let as_dana = dynamic_api::<TenantSubscription>(dana.clone(), Some(&namespace));
    as_dana
        .create(&PostParams::default(), &subscription)
        .await
        .expect("a billing admin can purchase");
    assert_eq!(
        as_victor
            .list(&ListParams::default())
            .await
            .expect("a viewer can read subscriptions")
            .items
            .len(),
        1
    );
    dynamic_api::<Entitlement>(victor.clone(), Some(&namespace))
        .list(&ListParams::default())
        .await
        .expect("a viewer can read entitlements");
    Api::<Listing>::all(victor.clone())
        .list(&ListParams::default())
        .await
        .expect("a viewer can read the catalog");
    assert!(
        forbidden(
            as_victor
                .delete("route-optimization", &DeleteParams::default())
                .await
        ),
        "a viewer cannot cancel"
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(victor.clone(), &namespace);
    assert!(
        forbidden(secrets.list(&ListParams::default()).await),
        "a viewer cannot read connection secrets"
    );
    let outsider = control_plane
        .client_as_user("mallory@example.com", &["system:authenticated"])
        .await
        .expect("mallory");
    assert!(forbidden(
        dynamic_api::<TenantSubscription>(outsider, Some(&namespace))
            .list(&ListParams::default())
            .await
    ));

    // Drift: a deleted binding is restored, and dana can purchase again.
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &namespace);
    bindings
        .delete("marketplace-billing-admin", &DeleteParams::default())
        .await
        .expect("deleted by hand");
    eventually("the binding to be restored", CONVERGED, || {
        let bindings = bindings.clone();
        async move {
            bindings
                .get_opt("marketplace-billing-admin")
                .await
                .ok()
                .flatten()
        }
    })
    .await;
    let mut second = subscription.clone();
    second.metadata.name = Some("second".into());
    eventually("dana to be able to purchase again", CONVERGED, || {
        let (as_dana, second) = (as_dana.clone(), second.clone());
        async move { as_dana.create(&PostParams::default(), &second).await.ok() }
    })
    .await;

    // Drift: a binding edited by hand (mallory added as its only subject) is put back.
    let wanted = bindings
        .get("marketplace-billing-admin")
        .await
        .expect("the restored binding")
        .subjects;
    bindings
        .patch(
            "marketplace-billing-admin",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "subjects": [{ "kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io" }]
            })),
        )
        .await
        .expect("edited by hand");
    eventually("the edited binding to be put back", CONVERGED, || {
        let (bindings, wanted) = (bindings.clone(), wanted.clone());
        async move {
            let live = bindings.get("marketplace-billing-admin").await.ok()?;
            (live.subjects == wanted).then_some(())
        }
    })
    .await;

    // A restarted operator with nothing to do writes nothing: its first pass finds every
    // namespace, Role and binding applied, also for shapes the server stores differently from
    // what was applied (bindings nobody holds have no subjects; a ServiceAccount subject no
    // apiGroup).
    for (base, people) in [
        ("nobody", json!({})),
        (
            "robots",
            json!({"viewers": [{"kind": "ServiceAccount", "name": "portal", "namespace": "tools"}]}),
        ),
    ] {
        let mut object = example("tenant-acme-logistics.yaml");
        object["metadata"] = json!({ "name": unique_name(base) });
        for key in ["billingAdmins", "admins", "viewers"] {
            object["spec"][key] = people.get(key).cloned().unwrap_or(json!([]));
        }
        let tenant: Tenant = serde_json::from_value(object).expect("a Tenant");
        let name = tenants
            .create(&PostParams::default(), &tenant)
            .await
            .expect("tenant created")
            .metadata
            .name
            .expect("a name");
        ready(&tenants, &name).await;
    }
    running.stop().await;
    let count = tenants
        .list(&ListParams::default())
        .await
        .expect("tenants")
        .items
        .len() as u64;
    let before = apiserver_writes(&admin).await.expect("apiserver /metrics");
    let ctx = Arc::new(controllers::context(&admin, config, "e2e-tenant-restarted"));
    let running = controllers::start(
        ctx.clone(),
        Enabled {
            tenants: true,
            ..Enabled::NONE
        },
    );
    eventually("the restarted operator's first pass", CONVERGED, || {
        let done = controllers::reconciled(&ctx, "Tenant") >= count;
        async move { done.then_some(()) }
    })
    .await;
    let after = apiserver_writes(&admin).await.expect("apiserver /metrics");
    let written: Vec<_> = writes_between(&before, &after)
        .into_iter()
        .filter(|((resource, _, _), _)| {
            matches!(
                resource.as_str(),
                "namespaces"
                    | "roles"
                    | "rolebindings"
                    | "clusterroles"
                    | "clusterrolebindings"
                    | "tenants"
            )
        })
        .collect();
    assert!(
        written.is_empty(),
        "a restart with nothing to do wrote {written:?}"
    );

    // Deleting the tenant removes its namespace (garbage collection of owned objects).
    tenants
        .delete(&name, &DeleteParams::default())
        .await
        .expect("tenant deleted");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    eventually("the tenant namespace to go", CONVERGED, || {
        let namespaces = namespaces.clone();
        let namespace = namespace.clone();
        async move {
            namespaces
                .get_opt(&namespace)
                .await
                .ok()
                .and_then(|ns| if ns.is_none() { Some(()) } else { None })
        }
    })
    .await;

    running.stop().await;
}

//! The Tenant reconciler: a namespace `tenant-<name>` with RBAC for the tenant's people, kept in
//! place (an edited or deleted Role or binding is restored), and the status that says so.
//! The HubSpot company comes with the billing wiring.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::status::{OPERATOR_MANAGER, apply_status};
use super::tenant_rbac::{
    TENANT_LABEL, catalog_reader_cluster_role, desired_objects, namespace_name,
};
use super::{Context, Error, object_key};
use crate::api::Tenant;
use crate::api::conditions::{NewCondition, TRUE, set_condition};

/// Runs the Tenant controller until `shutdown` completes. Changes to the objects it made (found
/// by their tenant label) re-reconcile their Tenant, which restores them.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let owned = || watcher::Config::default().labels(TENANT_LABEL);
    Controller::new(
        Api::<Tenant>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Namespace>::all(client.clone()), owned())
    .owns(Api::<Role>::all(client.clone()), owned())
    .owns(Api::<RoleBinding>::all(client.clone()), owned())
    .owns(Api::<ClusterRoleBinding>::all(client), owned())
    .with_config(controller::Config::default().concurrency(ctx.config.tenant_concurrency))
    .graceful_shutdown_on(shutdown)
    .run(reconcile, super::error_policy, ctx)
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "Tenant reconcile did not complete");
        }
    })
    .await;
}

pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(tenant.as_ref());
    let owner = tenant
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidObject(format!("Tenant {key} has no uid yet")))?;
    let objects = desired_objects(&tenant, owner);
    let client = &ctx.client;

    // Act: server-side apply is idempotent, so restoring drift and keeping things as they are
    // are the same call.
    apply(
        Api::<ClusterRole>::all(client.clone()),
        &catalog_reader_cluster_role(),
    )
    .await?;
    apply(Api::<Namespace>::all(client.clone()), &objects.namespace).await?;
    let namespace = namespace_name(&tenant.name_any());
    for role in &objects.roles {
        apply(Api::<Role>::namespaced(client.clone(), &namespace), role).await?;
    }
    for binding in &objects.role_bindings {
        apply(
            Api::<RoleBinding>::namespaced(client.clone(), &namespace),
            binding,
        )
        .await?;
    }
    apply(
        Api::<ClusterRoleBinding>::all(client.clone()),
        &objects.catalog_binding,
    )
    .await?;

    // Report.
    let previous = tenant.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = tenant.metadata.generation;
    status.namespace = Some(namespace.clone());
    let (reason, message) = if tenant.spec.suspended {
        (
            "Suspended",
            format!(
                "namespace {namespace} and RBAC in place; the tenant is suspended, so its entitlements are Suspended"
            ),
        )
    } else {
        (
            "Provisioned",
            format!("namespace {namespace} and RBAC in place"),
        )
    };
    let ready = NewCondition {
        type_: "Ready",
        status: TRUE,
        reason,
        message: message.clone(),
        observed_generation: tenant.metadata.generation,
    };
    set_condition(&mut status.conditions, ready, &Time(Timestamp::now()));
    let api: Api<Tenant> = Api::all(client.clone());
    if apply_status(&api, tenant.as_ref(), tenant.status.as_ref(), &status).await? {
        let ready_before = crate::api::conditions::find_condition(&previous.conditions, "Ready")
            .map(|c| c.reason.clone());
        if ready_before.as_deref() != Some(reason) {
            ctx.event(
                tenant.as_ref(),
                EventType::Normal,
                reason,
                "Provision",
                message,
            )
            .await;
        }
    }
    ctx.backoff.succeeded(&key);
    Ok(Action::requeue(Duration::from_secs(600)))
}

async fn apply<K>(api: Api<K>, object: &K) -> Result<(), Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        &object.name_any(),
        &PatchParams::apply(OPERATOR_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await?;
    Ok(())
}

//! The Tenant reconciler: a namespace `tenant-<name>` with RBAC for the tenant's people, kept in
//! place (an edited or deleted Role or binding is restored), and the status that says so.
//! With billing configured, the tenant's HubSpot company and billing contact are upserted too.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::status::{OPERATOR_MANAGER, apply_status_guarded};
use super::tenant_rbac::{
    TENANT_LABEL, catalog_reader_cluster_role, desired_objects, namespace_name,
};
use super::{Context, Error, object_key};
use crate::api::Tenant;
use crate::api::conditions::reasons::{HUBSPOT_COMPANY_FAILED, PROVISIONED, SUSPENDED};
use crate::api::conditions::types::READY;
use crate::api::conditions::{FALSE, NewCondition, TRUE, find_condition, set_condition};
use crate::billing::{CompanyRequest, ContactRequest};

/// The Tenant controller, driven by the shared Tenant cache. Changes to the objects it made
/// (found by their tenant label) re-reconcile their Tenant, which restores them.
pub fn controller(ctx: &Context) -> Controller<Tenant> {
    let client = ctx.client.clone();
    let owned = || watcher::Config::default().labels(TENANT_LABEL);
    Controller::for_shared_stream(
        ctx.stores.tenants.changes(),
        ctx.stores.tenants.store().clone(),
    )
    .owns(Api::<Namespace>::all(client.clone()), owned())
    .owns(Api::<Role>::all(client.clone()), owned())
    .owns(Api::<RoleBinding>::all(client.clone()), owned())
    .owns(Api::<ClusterRoleBinding>::all(client), owned())
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

    // HubSpot: the tenant's company and billing contact (idempotent; the id is kept in status
    // so subscriptions and people can find the record).
    let previous = tenant.status.clone().unwrap_or_default();
    // Upserted once per generation: the spec is all it depends on, and every reconcile of
    // an unchanged Tenant (owned-object events, resyncs) would otherwise spend 2 calls.
    let upserted = previous.hubspot_company_id.is_some()
        && previous.observed_generation == tenant.metadata.generation
        && find_condition(&previous.conditions, READY).is_some_and(|c| c.status == TRUE);
    let company = match &ctx.billing {
        Some(billing) if !upserted => Some(billing.ensure_company(&company_request(&tenant)).await),
        _ => None,
    };

    // Report.
    let mut status = previous.clone();
    status.observed_generation = tenant.metadata.generation;
    status.namespace = Some(namespace.clone());
    if let Some(Ok(record)) = &company {
        status.hubspot_company_id = Some(record.company_id.clone());
    }
    let (reason, message) = if tenant.spec.suspended {
        (
            SUSPENDED,
            format!(
                "namespace {namespace} and RBAC in place; the tenant is suspended, so its entitlements are Suspended"
            ),
        )
    } else {
        (
            PROVISIONED,
            format!("namespace {namespace} and RBAC in place"),
        )
    };
    let (ready_status, reason, message) = match &company {
        Some(Err(error)) => (
            FALSE,
            HUBSPOT_COMPANY_FAILED,
            format!("{message}; the HubSpot company could not be upserted: {error}"),
        ),
        Some(Ok(record)) => (
            TRUE,
            reason,
            format!("{message}; HubSpot company {}", record.company_id),
        ),
        None => (TRUE, reason, message),
    };
    let ready = NewCondition {
        type_: READY,
        status: ready_status,
        reason,
        message: message.clone(),
        observed_generation: tenant.metadata.generation,
    };
    set_condition(&mut status.conditions, ready, &Time(Timestamp::now()));
    let api: Api<Tenant> = Api::all(client.clone());
    // Guarded: a reconcile woken before the cache holds our own last write gets a 409 instead
    // of writing (and announcing) the same transition twice.
    if apply_status_guarded(&api, tenant.as_ref(), tenant.status.as_ref(), &status).await? {
        let ready_before = find_condition(&previous.conditions, READY).map(|c| c.reason.clone());
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
    if let Some(Err(error)) = company {
        return Err(Error::Billing(error));
    }
    Ok(Action::requeue(Duration::from_secs(600)))
}

/// The tenant's HubSpot company: keyed by the Tenant's name, which never changes.
pub fn company_request(tenant: &Tenant) -> CompanyRequest {
    let spec = &tenant.spec;
    CompanyRequest {
        tenant_id: tenant.name_any(),
        name: spec.display_name.clone(),
        segment: spec.segment.clone(),
        region: spec.region.clone(),
        billing_contact: Some(ContactRequest {
            email: spec.billing_contact.email.clone(),
            name: spec.billing_contact.name.clone(),
        }),
    }
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

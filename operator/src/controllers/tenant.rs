//! The Tenant reconciler: a namespace `tenant-<name>` with RBAC for the tenant's people, kept in
//! place (an edited or deleted Role or binding is restored), and the status that says so.
//! With billing configured, the tenant's HubSpot company and billing contact are upserted too.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::try_join_all;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::applied::needs_apply;
use super::status::{OPERATOR_MANAGER, apply_status_guarded};
use super::tenant_owned::{TenantOwnedRecords, catalog_reader_check_needed};
use super::tenant_rbac::{
    CATALOG_READER_CLUSTER_ROLE, catalog_reader_cluster_role, desired_objects, namespace_name,
};
use super::{Context, Error, object_key};
use crate::api::Tenant;
use crate::api::conditions::reasons::{HUBSPOT_COMPANY_FAILED, PROVISIONED, SUSPENDED};
use crate::api::conditions::types::READY;
use crate::api::conditions::{FALSE, NewCondition, TRUE, find_condition, set_condition};
use crate::billing::{CompanyRequest, ContactRequest};
use crate::runtime::spec_changes;

/// The Tenant controller, driven by the shared Tenant cache: a Tenant is reconciled when its
/// spec changes (its own status writes do not wake it), and when an object it made is deleted
/// or drifts from what it wants, which the reconcile restores.
pub fn controller(ctx: &Context) -> Controller<Tenant> {
    let owned = ctx
        .tenant_owned
        .get_or_init(|| TenantOwnedRecords::start(&ctx.client, &ctx.stores.tenants));
    let tenants = ctx.stores.tenants.store().clone();
    Controller::for_shared_stream(
        spec_changes(ctx.stores.tenants.changes(), tenants.clone()),
        tenants.clone(),
    )
    .reconcile_on(owned.wakes(tenants))
}

pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(tenant.as_ref());
    let owner = tenant
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidObject(format!("Tenant {key} has no uid yet")))?;
    let objects = desired_objects(&tenant, owner);
    let client = &ctx.client;
    let owned = ctx.tenant_owned.get();
    if let Some(owned) = owned {
        owned.wait_until_ready().await;
    }

    // Act: server-side apply is idempotent, so restoring drift and keeping things as they are
    // are the same call; it is skipped when the cache shows the object as applied already.
    // The namespace comes first (its Roles and bindings live in it); the tenant's HubSpot
    // company does not depend on any of them, so it is upserted meanwhile, and the Roles and
    // bindings are applied together: one round trip each, not one after another.
    let namespace = namespace_name(&tenant.name_any());
    let previous = tenant.status.clone().unwrap_or_default();
    // Upserted once per generation: the spec is all it depends on, and every reconcile of
    // an unchanged Tenant (owned-object events, resyncs) would otherwise spend 2 calls.
    let upserted = previous.hubspot_company_id.is_some()
        && previous.observed_generation == tenant.metadata.generation
        && find_condition(&previous.conditions, READY).is_some_and(|c| c.status == TRUE);
    let rbac = async {
        let wrote_namespace = apply(
            Api::<Namespace>::all(client.clone()),
            owned.is_none_or(|o| o.namespaces.needs_apply(&objects.namespace)),
            &objects.namespace,
        )
        .await?;
        let roles = try_join_all(objects.roles.iter().map(|role| {
            apply(
                Api::<Role>::namespaced(client.clone(), &namespace),
                owned.is_none_or(|o| o.roles.needs_apply(role)),
                role,
            )
        }));
        let bindings = try_join_all(objects.role_bindings.iter().map(|binding| {
            apply(
                Api::<RoleBinding>::namespaced(client.clone(), &namespace),
                owned.is_none_or(|o| o.role_bindings.needs_apply(binding)),
                binding,
            )
        }));
        let catalog_binding = apply(
            Api::<ClusterRoleBinding>::all(client.clone()),
            owned.is_none_or(|o| {
                o.cluster_role_bindings
                    .needs_apply(&objects.catalog_binding)
            }),
            &objects.catalog_binding,
        );
        let (roles, bindings, catalog_binding) =
            futures::try_join!(roles, bindings, catalog_binding)?;
        Ok::<bool, Error>(
            wrote_namespace
                || roles.into_iter().chain(bindings).any(|wrote| wrote)
                || catalog_binding,
        )
    };
    // HubSpot: the tenant's company and billing contact (idempotent; the id is kept in status
    // so subscriptions and people can find the record).
    let company = async {
        match &ctx.billing {
            Some(billing) if !upserted => {
                Some(billing.ensure_company(&company_request(&tenant)).await)
            }
            _ => None,
        }
    };
    let (wrote, company) = tokio::join!(rbac, company);
    let wrote = wrote?;
    // The shared cluster role (not watched: the operator may not list ClusterRoles).
    let checked_once = owned.is_some_and(|o| o.catalog_reader_checked.load(Ordering::Relaxed));
    if catalog_reader_check_needed(checked_once, wrote, previous.namespace.is_some()) {
        let cluster_roles = Api::<ClusterRole>::all(client.clone());
        let wanted = catalog_reader_cluster_role();
        let live = cluster_roles.get_opt(CATALOG_READER_CLUSTER_ROLE).await?;
        apply(cluster_roles, needs_apply(live.as_ref(), &wanted), &wanted).await?;
        if let Some(o) = owned {
            o.catalog_reader_checked.store(true, Ordering::Relaxed);
        }
    }

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
        // Upserted by an earlier reconcile: the same message, so an unchanged tenant's status
        // is not rewritten (a restarted operator's first pass writes nothing).
        None => match &status.hubspot_company_id {
            Some(id) => (TRUE, reason, format!("{message}; HubSpot company {id}")),
            None => (TRUE, reason, message),
        },
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

/// Applies `object` when `needed` (it is not known to be applied already); returns whether it
/// wrote. A record that lags costs at most a no-op apply; a change it has not seen yet wakes
/// the Tenant again once it has.
async fn apply<K>(api: Api<K>, needed: bool, object: &K) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    if !needed {
        return Ok(false);
    }
    api.patch(
        &object.name_any(),
        &PatchParams::apply(OPERATOR_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await?;
    Ok(true)
}

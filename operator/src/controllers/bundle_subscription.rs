//! The BundleSubscription reconciler: gathers the bundle purchase, its Bundle and listings from
//! the caches and its member subscriptions, asks [`plan_members`] what to do, and does it:
//! creates the missing members (owned by the purchase and labelled with it, under names that
//! are the same on every attempt, so a retry after a crash finds them), cancels the members when
//! the purchase is cancelled, and reports the members' phases. Each member then goes through
//! the TenantSubscription reconciler like any subscription, billed with its bundle discount.

use std::sync::Arc;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::status::apply_status;
use super::{Context, Error, object_key};
use crate::api::{Bundle, BundleSubscription, TenantSubscription};
use crate::lifecycle::bundle::{
    BUNDLE_SUBSCRIPTION_LABEL, MemberFact, PurchaseFacts, plan_members, promotion_to_record, quote,
};
use crate::lifecycle::promotion::Buyer;
use crate::runtime::spec_changes;

/// The controller, driven by the shared caches: a purchase is reconciled when it changes, when
/// one of its members does, and when its Bundle is synced or edited (a purchase applied before
/// its bundle reached the catalog goes on at once).
pub fn controller(ctx: &Context) -> Controller<BundleSubscription> {
    let stores = &ctx.stores;
    let by_bundle = {
        let purchases = stores.bundle_subscriptions.store().clone();
        move |bundle: Arc<Bundle>| {
            let name = bundle.name_any();
            purchases
                .state()
                .iter()
                .filter(|p| p.spec.bundle.as_str() == name)
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    Controller::for_shared_stream(
        stores.bundle_subscriptions.changes(),
        stores.bundle_subscriptions.store().clone(),
    )
    .owns_shared_stream(stores.subscriptions.changes())
    .watches_shared_stream(
        spec_changes(stores.bundles.changes(), stores.bundles.store().clone()),
        by_bundle,
    )
}

pub async fn reconcile(
    purchase: Arc<BundleSubscription>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let key = object_key(purchase.as_ref());
    if purchase.metadata.deletion_timestamp.is_some() {
        // Members are owned: the garbage collector deletes them with the purchase.
        return Ok(Action::await_change());
    }
    let namespace = purchase.namespace().ok_or_else(|| {
        Error::InvalidObject(format!("BundleSubscription {key} has no namespace"))
    })?;
    let name = purchase.name_any();
    let mut owner = purchase
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidObject(format!("BundleSubscription {key} has no uid yet")))?;
    // No blockOwnerDeletion: it would need rights on the purchase's finalizers.
    owner.block_owner_deletion = None;

    // Observe: the catalog and the members.
    let bundle = ctx.stores.bundle(purchase.spec.bundle.as_str());
    let listings: Vec<_> = bundle
        .iter()
        .flat_map(|b| b.spec.members.iter())
        .filter_map(|m| ctx.stores.listing(m.listing.as_str()))
        .collect();
    let quoted = match &bundle {
        None => Err("not in the catalog".to_owned()),
        Some(bundle) => quote(
            &bundle.spec,
            |n| listings.iter().find(|l| l.name_any() == n).map(|l| &l.spec),
            |_| false,
        )
        .map_err(|problems| {
            problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        }),
    };
    let members: Vec<MemberFact> = ctx
        .stores
        .subscriptions_in(&namespace)
        .iter()
        .filter(|s| {
            s.spec
                .bundle
                .as_ref()
                .is_some_and(|b| b.subscription.as_str() == name)
        })
        .map(|s| MemberFact {
            name: s.name_any(),
            listing: s.spec.listing.to_string(),
            plan: s.spec.plan.to_string(),
            phase: s.status.as_ref().and_then(|st| st.phase),
            cancelling: s.spec.cancellation.is_some(),
        })
        .collect();
    let mut previous = purchase.status.clone().unwrap_or_default();
    let tenant =
        super::tenant_subscription::tenant_of(&namespace).and_then(|t| ctx.stores.tenant(t));
    let created = purchase.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let promotion = match (&quoted, &tenant, created) {
        (Ok(quoted), Some(tenant), Some(created)) => promotion_to_record(
            purchase.spec.bundle.as_str(),
            &previous,
            quoted,
            &Buyer::of(&tenant.spec),
            ctx.stores.promotions().iter().map(|p| p.as_ref()),
            purchase.spec.promotion_code.as_deref(),
            created,
        ),
        _ => None,
    };
    // A promotion is recorded before the members exist: they read their share from it.
    let record_first = promotion.is_some();
    if record_first {
        previous.promotion = promotion;
    }

    // Decide.
    let facts = PurchaseFacts {
        name: &name,
        bundle: purchase.spec.bundle.as_str(),
        cancellation: purchase.spec.cancellation.as_ref(),
        status: &previous,
    };
    let mut plan = plan_members(
        &facts,
        quoted.as_ref().map_err(String::as_str),
        &members,
        Timestamp::now(),
    );
    if record_first {
        plan.create.clear();
    }

    // Act: members first, then the status that reports them.
    let subscriptions: Api<TenantSubscription> = Api::namespaced(ctx.client.clone(), &namespace);
    for (member, spec) in &plan.create {
        let mut object = TenantSubscription::new(member, spec.clone());
        object.metadata.namespace = Some(namespace.clone());
        object.metadata.labels =
            Some([(BUNDLE_SUBSCRIPTION_LABEL.to_owned(), name.clone())].into());
        object.metadata.owner_references = Some(vec![owner.clone()]);
        match subscriptions.create(&PostParams::default(), &object).await {
            Ok(_) => {}
            // Made by an earlier attempt the cache has not shown yet.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    for (member, request) in &plan.cancel {
        let patch = json!({"spec": {"cancellation": request}});
        subscriptions
            .patch(member, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    let mut status = plan.status;
    status.observed_generation = purchase.metadata.generation;
    let api: Api<BundleSubscription> = Api::namespaced(ctx.client.clone(), &namespace);
    let wrote = apply_status(&api, purchase.as_ref(), purchase.status.as_ref(), &status).await?;
    if wrote && previous.phase != status.phase {
        let note = format!(
            "bundle {}: {:?}{}",
            purchase.spec.bundle,
            status.phase,
            status
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
        ctx.event(
            purchase.as_ref(),
            EventType::Normal,
            "Phase",
            "Reconcile",
            note,
        )
        .await;
    }
    // A purchase that waits on the catalog is woken by its Bundle, and looks again now and then
    // for listings it waits on; the rest is woken by its members.
    if record_first {
        return Ok(Action::requeue(std::time::Duration::from_secs(1)));
    }
    if status.members.is_empty() {
        return Ok(Action::requeue(std::time::Duration::from_secs(30)));
    }
    Ok(Action::await_change())
}

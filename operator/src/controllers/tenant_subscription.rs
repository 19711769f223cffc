//! The TenantSubscription reconciler: observe (caches, owned Entitlements, news from webhooks
//! and the audit), decide ([`crate::lifecycle`]), act (HubSpot, Entitlements), report (one
//! guarded status write, Events). Deleting a subscription cancels its billing first (finalizer).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::billing_pool::{JobInputs, JobKey};
use super::entitlements::apply_entitlements;
use super::status::apply_status_guarded;
use super::subscription_billing::{BillingInputs, execute};
use super::tenant_rbac::namespace_name;
use super::webhook_hints::clear_recheck_mark;
use super::{Context, Error, object_key};
use crate::api::conditions::TRUE;
use crate::api::tenant_subscription::{Phase, TenantSubscriptionStatus};
use crate::api::{Listing, Tenant, TenantSubscription};
use crate::audit_log::AuditEntry;
use crate::lifecycle::billing_order::BILLING_IN_FLIGHT_RECHECK;
use crate::lifecycle::entitlements::{features_of, granted_features};
use crate::lifecycle::phase::{activated_at, plan_of};
use crate::lifecycle::promotion::{Buyer, to_record};
use crate::lifecycle::subscription_plan::{
    Acted, BillingStep, CONNECTION_TESTED, Observation, decide_after_billing,
    hold_on_entitlement_failure, plan_billing, report,
};
use crate::lifecycle::validation::entitled_features;
use crate::lifecycle::{
    BillingFact, BillingIntent, Refusal, RequestContext, Sibling, SubscriptionFacts, decide,
    desired_entitlements, validate_request,
};
use crate::runtime::spec_changes;
use serde_json::json;

/// Holds a subscription until its billing record is cancelled.
pub const FINALIZER: &str = "marketplace.dev/billing";
/// Prefix of tenant namespaces (`tenant-<name>`).
pub const TENANT_NAMESPACE_PREFIX: &str = "tenant-";
/// The audit log's name for this reconciler.
const ACTOR: &str = "controller/tenant-subscription";

/// The controller, driven by the shared caches: a Listing or Tenant spec change re-reconciles
/// the subscriptions that depend on it; a changed or deleted Entitlement, its subscription;
/// webhook and audit news, the subscription concerned.
pub fn controller(ctx: &Context) -> Controller<TenantSubscription> {
    let stores = &ctx.stores;
    let by_listing = {
        let subscriptions = stores.subscriptions.clone();
        move |listing: Arc<Listing>| {
            let name = listing.name_any();
            subscriptions
                .state_filter(|s| s.spec.listing.as_str() == name)
                .iter()
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    let by_tenant = {
        let subscriptions = stores.subscriptions.clone();
        move |tenant: Arc<Tenant>| {
            subscriptions
                .in_namespace(&namespace_name(&tenant.name_any()))
                .iter()
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    let mut controller = Controller::for_shared_stream(
        stores.subscriptions.changes(),
        stores.subscriptions.store().clone(),
    )
    // Usage written to an Entitlement's status is not the subscription's business.
    .owns_shared_stream(spec_changes(
        stores.entitlements.changes(),
        stores.entitlements.store().clone(),
    ))
    .watches_shared_stream(
        spec_changes(stores.listings.changes(), stores.listings.store().clone()),
        by_listing,
    )
    .watches_shared_stream(
        spec_changes(stores.tenants.changes(), stores.tenants.store().clone()),
        by_tenant,
    );
    if let Some(wakeups) = ctx.news.wakeups() {
        let stream = futures::stream::unfold(wakeups, |mut rx| async move {
            rx.recv().await.map(|object| (object, rx))
        });
        controller = controller.reconcile_on(stream);
    }
    controller
}

pub async fn reconcile(sub: Arc<TenantSubscription>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(sub.as_ref());
    let namespace = sub.namespace().ok_or_else(|| {
        Error::InvalidObject(format!("TenantSubscription {key} has no namespace"))
    })?;
    let api: Api<TenantSubscription> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, sub, |event| async {
        match event {
            FinalizerEvent::Apply(sub) => reconcile_live(&sub, &ctx).await,
            FinalizerEvent::Cleanup(sub) => cleanup(&sub, &ctx).await,
        }
    })
    .await
    .map_err(Error::from)
}

/// The tenant a namespace belongs to.
pub(crate) fn tenant_of(namespace: &str) -> Option<&str> {
    namespace.strip_prefix(TENANT_NAMESPACE_PREFIX)
}

async fn reconcile_live(sub: &TenantSubscription, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let namespace = sub.namespace().unwrap_or_default();
    let name = sub.name_any();
    let uid = sub.metadata.uid.clone().unwrap_or_default();
    let tenant_name = tenant_of(&namespace).unwrap_or("");
    let tenant = tenant_of(&namespace).and_then(|t| ctx.stores.tenant(t));
    let listing = ctx.stores.listing(sub.spec.listing.as_str());
    let listing_spec = listing.as_ref().map(|l| &l.spec);
    let mut status = sub.status.clone().unwrap_or_default();
    let plan = plan_of(listing_spec, &sub.spec);
    if sub.spec.bundle.is_some() {
        // A bundle member is billed with its bundle's discount, or its share of the promotion
        // the bundle was bought under; never with a listing's promotion too.
        let membership = sub.spec.bundle.as_ref().map(|m| m.name.as_str());
        let bundle = membership.and_then(|name| ctx.stores.bundle(name));
        let owner = sub
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "BundleSubscription")
            .map(|o| o.name.as_str());
        let listings: Vec<_> = bundle
            .iter()
            .flat_map(|b| b.spec.members.iter())
            .filter_map(|m| ctx.stores.listing(m.listing.as_str()))
            .collect();
        let purchase = owner.and_then(|o| {
            let purchases = ctx.stores.bundle_subscriptions.in_namespace(&namespace);
            purchases.into_iter().find(|p| p.name_any() == o)
        });
        let promotion = purchase
            .as_ref()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.promotion.as_ref());
        let found = crate::lifecycle::bundle::to_record(
            &sub.name_any(),
            &sub.spec,
            &status,
            owner,
            bundle.as_ref().map(|b| &b.spec),
            promotion,
            |name| {
                listings
                    .iter()
                    .find(|l| l.name_any() == name)
                    .map(|l| &l.spec)
            },
        );
        if let Some((applied, promoted)) = found {
            status.bundle = Some(applied);
            status.promotion = promoted;
        }
    } else if let (Some(created), Some(tenant)) = (created_at(sub), tenant.as_ref()) {
        let promotions = ctx.stores.promotions();
        let buyer = Buyer::of(&tenant.spec);
        let found = to_record(
            &sub.spec,
            &status,
            created,
            plan,
            &buyer,
            promotions.iter().map(|p| p.as_ref()),
        );
        if found.is_some() {
            status.promotion = found;
        }
    }

    // Observe.
    let news = ctx.news.take(&uid);
    let validation = if matches!(status.phase, None | Some(Phase::Requested)) {
        validate(
            sub,
            ctx,
            &namespace,
            tenant_name,
            tenant.as_deref(),
            listing.as_deref(),
            now,
        )
        .await?
    } else {
        Validation::default()
    };
    let mut observed = Observation {
        now,
        generation: sub.metadata.generation,
        spec: &sub.spec,
        status: &status,
        listing: listing_spec,
        tenant_suspended: tenant.as_ref().is_some_and(|t| t.spec.suspended),
        refusal: validation.refusal.as_ref(),
        connection_tested: validation.connection_tested,
        news: news.as_ref(),
        entitle_first: ctx.config.billing_order.entitle_first_grace(listing_spec),
        billing_in_flight: ctx.billing_pool.is_running(&uid),
    };

    // Decide what billing must do, and do it.
    let BillingStep {
        target,
        intent,
        background,
        fresh_read,
    } = plan_billing(&observed);
    let inputs = BillingInputs {
        subscription: sub,
        tenant_name,
        tenant: tenant.as_ref().map(|t| &t.spec),
        listing: listing_spec,
        plan,
        started: activated_at(&status).unwrap_or(now),
        promotion: status.promotion.as_ref(),
        bundle: status.bundle.as_ref(),
        now,
    };
    tracing::debug!(
        phase = ?status.phase,
        target = ?target.phase,
        ?intent,
        background,
        in_flight = observed.billing_in_flight,
        resource_version = sub.metadata.resource_version.as_deref(),
        "planned"
    );
    if fresh_read && is_stale(sub, ctx).await? {
        tracing::debug!("the cache is behind our last write; looking again shortly");
        // Our own last status write has not reached the cache yet (an owned Entitlement's
        // event can wake us first): deciding from the old state would repeat billing calls,
        // or the transition and its Entitlement writes (an entitled-first subscription, which
        // calls nothing on the way in). The news waits for that reconcile.
        if let Some(news) = &news {
            ctx.news.post(&uid, ObjectRef::from_obj(sub), news.clone());
        }
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let (intent, outcome) = match (&ctx.billing, background) {
        (Some(client), true) => {
            let key = JobKey {
                generation: sub.metadata.generation,
                intent,
            };
            let job = JobInputs {
                subscription: sub.clone(),
                tenant_name: tenant_name.to_string(),
                tenant: tenant.as_ref().map(|t| t.spec.clone()),
                listing: listing_spec.cloned(),
                started: inputs.started,
                promotion: inputs.promotion.cloned(),
                bundle: inputs.bundle.cloned(),
                now: inputs.now,
            };
            match ctx
                .billing_pool
                .take_or_start(client, ctx.news.waker(), &uid, key, job)
            {
                Some(outcome) => {
                    observed.billing_in_flight = false;
                    (intent, outcome)
                }
                // The call runs in the pool; until it is done, the recorded fact stands. News
                // waits for the outcome that answers it (the job wakes this subscription).
                None if news.is_some() => {
                    if let Some(news) = news {
                        ctx.news.keep(&uid, news);
                    }
                    return Ok(Action::requeue(BILLING_IN_FLIGHT_RECHECK));
                }
                None => {
                    observed.billing_in_flight = true;
                    (BillingIntent::None, Ok(Default::default()))
                }
            }
        }
        _ => (intent, execute(ctx.billing.as_ref(), intent, &inputs).await),
    };
    if ctx.billing.is_some() && intent != BillingIntent::None {
        ctx.metrics.billing_call();
        ctx.record(AuditEntry::new(
            ACTOR,
            format!("billing.{intent:?}").to_lowercase(),
            format!("{namespace}/{name}"),
            format!("phase {:?} needs {intent:?}", target.phase),
            json!({
                "uid": uid,
                "outcome": match &outcome {
                    Ok(o) => format!("{:?}", o.fact),
                    Err(e) => format!("error: {e}"),
                },
                "hubspot": outcome.as_ref().ok().and_then(|o| o.ids.clone()),
            }),
        ));
    }
    let outcome = outcome?;
    let fact = outcome.fact.clone().unwrap_or_else(|| observed.recorded());
    let mut decision = decide_after_billing(&observed, &fact);

    // Act on the cluster: the Entitlements.
    let features = listing_spec.and_then(|l| plan.map(|p| features_of(l, p)));
    let previously = feature_names(&status);
    let desired = desired_entitlements(&decision, &name, features.as_ref(), &previously, now);
    let owner = sub
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidObject(format!("{namespace}/{name} has no uid yet")))?;
    let entitled = apply_entitlements(ctx, &namespace, tenant_name, &name, &owner, &desired).await;
    let (granted, entitlement_error, entitlements_written) = match entitled {
        Ok(written) => (granted_features(&desired), None, written),
        Err(error) => {
            decision = hold_on_entitlement_failure(status.phase, decision, &error.to_string());
            (previously, Some(error.to_string()), 0)
        }
    };

    // Report.
    let billed = status.hubspot.as_ref();
    let plan_changed_from = (intent == BillingIntent::ChangePlan
        && matches!(fact, BillingFact::Live { .. }))
    .then(|| {
        (
            billed
                .and_then(|h| h.billed_plan.clone())
                .unwrap_or_default(),
            billed.and_then(|h| h.billed_quantity).unwrap_or_default(),
        )
    });
    let report = report(
        &observed,
        &decision,
        &Acted {
            fact: Some(&fact),
            ids: outcome.ids.as_ref(),
            repairs: &outcome.repairs,
            granted,
            entitlement_error,
            plan_changed_from,
        },
    );
    let api: Api<TenantSubscription> = Api::namespaced(ctx.client.clone(), &namespace);
    let wrote = apply_status_guarded(&api, sub, sub.status.as_ref(), &report.status).await?;
    tracing::debug!(
        phase = ?report.status.phase,
        entitlements_written,
        status_written = wrote,
        "reported"
    );
    // Transitions are notified once recorded (and again attempted, idempotently, on every
    // reconcile while they are recent: a crash here loses nothing).
    super::notifications::record_transitions(ctx, sub, &report.status, now).await?;
    // What the webhook's re-read said is in the status now: its mark is answered.
    if let Some(mark) = news.as_ref().and_then(|n| n.recheck.as_deref()) {
        clear_recheck_mark(ctx, sub, mark).await;
    }
    record_transitions(
        ctx,
        &namespace,
        &name,
        &status,
        &report.status,
        created_at(sub),
    );
    for event in report.events {
        ctx.event(sub, event.type_, &event.reason, event.action, event.note)
            .await;
    }
    match report.retry {
        Some(message) => Err(Error::Retry(message)),
        None => Ok(Action::requeue(report.requeue)),
    }
}

/// Whether the apiserver holds a newer version of `sub` than the cache gave us (one read, made
/// only before HubSpot calls).
async fn is_stale(sub: &TenantSubscription, ctx: &Context) -> Result<bool, Error> {
    let api: Api<TenantSubscription> =
        Api::namespaced(ctx.client.clone(), &sub.namespace().unwrap_or_default());
    let fresh = api.get_metadata_opt(&sub.name_any()).await?;
    Ok(fresh.is_some_and(|f| f.metadata.resource_version != sub.metadata.resource_version))
}

/// Validation: the pure rules, then (for integrations) the connection.
async fn validate(
    sub: &TenantSubscription,
    ctx: &Context,
    namespace: &str,
    tenant_name: &str,
    tenant: Option<&Tenant>,
    listing: Option<&Listing>,
    now: Timestamp,
) -> Result<Validation, Error> {
    // Read siblings from the apiserver, not a cache: two requests created a moment apart must
    // see each other for the one-per-hour rule.
    let api: Api<TenantSubscription> = Api::namespaced(ctx.client.clone(), namespace);
    let siblings: Vec<Sibling> = api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|s| Sibling::of(s, now))
        .collect();
    let entitled = entitled_features(
        ctx.stores
            .entitlements_in(namespace)
            .iter()
            .map(|e| e.as_ref()),
    );
    let request = RequestContext {
        name: &sub.name_any(),
        created_at: created_at(sub).unwrap_or(now),
        spec: &sub.spec,
        listing: listing.map(|l| &l.spec),
        tenant_name,
        tenant,
        siblings: &siblings,
        entitled_features: &entitled,
        platform_version: ctx.config.platform_version.as_ref(),
    };
    if let Err(refusal) = validate_request(&request) {
        return Ok(Validation {
            refusal: Some(refusal),
            connection_tested: None,
        });
    }
    // Last, the one check that calls out: only once per generation, so an approval
    // subscription waiting in Requested does not probe the tenant's system on every resync.
    let tested = sub.status.as_ref().and_then(|s| {
        crate::api::conditions::find_condition(&s.conditions, CONNECTION_TESTED)
            .filter(|c| c.status == TRUE && c.observed_generation == sub.metadata.generation)
    });
    match (listing, tested) {
        (Some(listing), None) if sub.spec.connection.is_some() => {
            let refusal =
                super::connection_check::check_connection(ctx, namespace, &sub.spec, &listing.spec)
                    .await?;
            let passed = refusal.is_none();
            Ok(Validation {
                refusal,
                connection_tested: Some(passed),
            })
        }
        _ => Ok(Validation::default()),
    }
}

/// What validation found.
#[derive(Default, Clone)]
struct Validation {
    refusal: Option<Refusal>,
    /// Whether the connection was tested now, and passed.
    connection_tested: Option<bool>,
}

fn feature_names(status: &TenantSubscriptionStatus) -> Vec<String> {
    status
        .entitlements
        .iter()
        .map(|f| f.as_str().to_string())
        .collect()
}

fn created_at(object: &impl Resource) -> Option<Timestamp> {
    object.meta().creation_timestamp.as_ref().map(|t| t.0)
}

/// One audit record per new history entry; counts activations.
fn record_transitions(
    ctx: &Context,
    namespace: &str,
    name: &str,
    before: &TenantSubscriptionStatus,
    after: &TenantSubscriptionStatus,
    created: Option<Timestamp>,
) {
    let new = after.history.len().saturating_sub(before.history.len());
    for t in &after.history[after.history.len() - new..] {
        if t.to == Phase::Active && !before.history.iter().any(|h| h.to == Phase::Active) {
            let latency = created.and_then(|c| t.at.0.duration_since(c).try_into().ok());
            ctx.metrics.activation(latency);
        }
        ctx.record(AuditEntry::new(
            t.actor.clone(),
            "subscription.transition",
            format!("{namespace}/{name}"),
            t.reason.clone().unwrap_or_default(),
            json!({"from": t.from, "to": t.to, "entitlements": after.entitlements}),
        ));
    }
}

/// Deletion: cancel billing (idempotent; already-cancelled counts as done), revoke what was
/// granted, then let the object go.
async fn cleanup(sub: &TenantSubscription, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let namespace = sub.namespace().unwrap_or_default();
    let name = sub.name_any();
    let status = sub.status.clone().unwrap_or_default();
    let already = status.hubspot.as_ref().and_then(|h| h.status.as_deref())
        == Some(crate::lifecycle::phase::CANCELLED_MARK);
    if let (Some(client), false) = (ctx.billing.as_ref(), already) {
        let uid = sub.metadata.uid.clone().unwrap_or_default();
        let outcome = client.cancel_billing_record(&uid).await;
        ctx.record(AuditEntry::new(
            ACTOR,
            "billing.cancel",
            format!("{namespace}/{name}"),
            "the subscription was deleted",
            json!({"uid": uid, "outcome": match &outcome {
                Ok(o) => format!("{o:?}"),
                Err(e) => format!("error: {e}"),
            }}),
        ));
        outcome?;
    }
    let mut decision = decide(&SubscriptionFacts {
        now,
        spec: &sub.spec,
        status: &status,
        listing: None,
        tenant_suspended: false,
        refusal: None,
        billing: &BillingFact::Cancelled,
        entitle_first: None,
        billing_in_flight: false,
    });
    decision.phase = Phase::Cancelled;
    let desired = desired_entitlements(&decision, &name, None, &feature_names(&status), now);
    if let Some(owner) = sub.controller_owner_ref(&()) {
        let tenant = tenant_of(&namespace).unwrap_or("");
        // Best effort: the Entitlements go with the subscription anyway (owner references).
        if let Err(error) =
            apply_entitlements(ctx, &namespace, tenant, &name, &owner, &desired).await
        {
            tracing::debug!(%error, "could not mark entitlements Revoked before deletion");
        }
    }
    ctx.event(
        sub,
        EventType::Normal,
        "Deleted",
        "Cancel",
        "subscription deleted: HubSpot billing cancelled, entitlements revoked".into(),
    )
    .await;
    Ok(Action::await_change())
}

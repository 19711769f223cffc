//! The TenantSubscription reconciler: observe (caches, owned Entitlements, news from webhooks
//! and the audit), decide ([`crate::lifecycle`]), act (HubSpot, Entitlements), report (one
//! guarded status write, Events). Deleting a subscription cancels its billing first (finalizer).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};

use super::entitlements::apply_entitlements;
use super::news::BillingNews;
use super::status::apply_status_guarded;
use super::subscription_billing::{BillingInputs, execute};
use super::tenant_rbac::namespace_name;
use super::{Context, Error, object_key};
use crate::api::conditions::{FALSE, NewCondition, TRUE, set_condition};
use crate::api::entitlement::EntitlementState;
use crate::api::tenant_subscription::{Phase, TenantSubscriptionStatus, Transition};
use crate::api::{Entitlement, Listing, Tenant, TenantSubscription};
use crate::audit_log::AuditEntry;
use crate::lifecycle::entitlements::{features_of, granted_features};
use crate::lifecycle::phase::{activated_at, plan_of};
use crate::lifecycle::{
    BillingFact, BillingIntent, Decision, Refusal, RequestContext, Sibling, SubscriptionFacts,
    billing_intent, decide, desired_entitlements, is_terminal, plan_changed, validate_request,
};
use serde_json::json;

/// Holds a subscription until its billing record is cancelled.
pub const FINALIZER: &str = "marketplace.dev/billing";
/// Prefix of tenant namespaces (`tenant-<name>`).
pub const TENANT_NAMESPACE_PREFIX: &str = "tenant-";
/// The audit log's name for this reconciler.
const ACTOR: &str = "controller/tenant-subscription";
/// Condition recording a successful connection test for the current generation.
const CONNECTION_TESTED: &str = "ConnectionTested";
/// History entries kept in status.
const HISTORY_LIMIT: usize = 50;
/// Periodic re-check when nothing is due earlier.
const RESYNC: Duration = Duration::from_secs(600);

/// Runs the controller until `shutdown` completes. A Listing or Tenant spec change re-reconciles
/// the subscriptions that depend on it; a changed or deleted Entitlement, its subscription;
/// webhook and audit news, the subscription concerned.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let store = ctx.stores.subscriptions.clone();
    let by_listing = {
        let store = store.clone();
        move |listing: Listing| {
            let name = listing.name_any();
            store
                .state_filter(|s| s.spec.listing.as_str() == name)
                .iter()
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    let by_tenant = move |tenant: Tenant| {
        let namespace = namespace_name(&tenant.name_any());
        store
            .state_filter(|s| s.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .iter()
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect::<Vec<_>>()
    };
    let listings = watcher(
        Api::<Listing>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .predicate_filter(predicates::generation, Default::default());
    let tenants = watcher(
        Api::<Tenant>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .predicate_filter(predicates::generation, Default::default());
    let mut controller = Controller::new(
        Api::<TenantSubscription>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Entitlement>::all(client), watcher::Config::default())
    .watches_stream(listings, by_listing)
    .watches_stream(tenants, by_tenant);
    if let Some(wakeups) = ctx.news.wakeups() {
        let stream = futures::stream::unfold(wakeups, |mut rx| async move {
            rx.recv().await.map(|object| (object, rx))
        });
        controller = controller.reconcile_on(stream);
    }
    controller
        .with_config(controller::Config::default().concurrency(ctx.config.subscription_concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, super::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "TenantSubscription reconcile did not complete");
            }
        })
        .await;
}

pub async fn reconcile(sub: Arc<TenantSubscription>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(sub.as_ref());
    let namespace = sub.namespace().ok_or_else(|| {
        Error::InvalidObject(format!("TenantSubscription {key} has no namespace"))
    })?;
    let api: Api<TenantSubscription> = Api::namespaced(ctx.client.clone(), &namespace);
    let started = std::time::Instant::now();
    let action = finalizer(&api, FINALIZER, sub, |event| async {
        match event {
            FinalizerEvent::Apply(sub) => apply(&sub, &ctx).await,
            FinalizerEvent::Cleanup(sub) => cleanup(&sub, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(Box::new(other)),
    });
    let result = match &action {
        Ok(_) => "ok",
        Err(e) => e.category(),
    };
    ctx.metrics
        .reconciled("TenantSubscription", result, started.elapsed());
    let action = action?;
    ctx.backoff.succeeded(&key);
    Ok(action)
}

/// The tenant a namespace belongs to.
fn tenant_of(namespace: &str) -> Option<&str> {
    namespace.strip_prefix(TENANT_NAMESPACE_PREFIX)
}

async fn apply(sub: &TenantSubscription, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let namespace = sub.namespace().unwrap_or_default();
    let name = sub.name_any();
    let uid = sub.metadata.uid.clone().unwrap_or_default();
    let tenant_name = tenant_of(&namespace).unwrap_or("");
    let tenant = tenant_of(&namespace).and_then(|t| ctx.stores.tenant(t));
    let listing = ctx.stores.listing(sub.spec.listing.as_str());
    let listing_spec = listing.as_ref().map(|l| &l.spec);
    let status = sub.status.clone().unwrap_or_default();

    // Observe.
    let news = ctx.news.take(&uid);
    let recorded = news.as_ref().map(|n| n.fact.clone()).unwrap_or_else(|| {
        BillingFact::from_recorded(status.hubspot.as_ref().and_then(|h| h.status.as_deref()))
    });
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
    let refusal = validation.refusal.clone();
    let tenant_suspended = tenant.as_ref().is_some_and(|t| t.spec.suspended);
    let facts = |billing| SubscriptionFacts {
        now,
        spec: &sub.spec,
        status: &status,
        listing: listing_spec,
        tenant_suspended,
        refusal: refusal.as_ref(),
        billing,
    };

    // Decide what billing must do, do it, decide again with what it found.
    let target = decide(&facts(&recorded));
    let changed = plan_changed(&sub.spec, &status, listing_spec);
    let mut intent = billing_intent(target.phase, status.phase, &recorded, changed);
    // Drift found in HubSpot (duplicates, invoicing off, a record gone) is healed by the
    // idempotent ensure, which keeps one live record and turns invoicing on.
    let drifted = news.as_ref().is_some_and(|n| n.finding.is_some());
    if drifted
        && matches!(
            target.phase,
            Phase::Active | Phase::Trialing | Phase::Suspended
        )
        && matches!(intent, BillingIntent::None | BillingIntent::ReadStatus)
    {
        intent = BillingIntent::Ensure;
    }
    let plan = plan_of(listing_spec, &sub.spec);
    let inputs = BillingInputs {
        subscription: sub,
        tenant_name,
        tenant: tenant.as_ref().map(|t| &t.spec),
        listing: listing_spec,
        plan,
        started: activated_at(&status).unwrap_or(now),
    };
    if intent != BillingIntent::None && is_stale(sub, ctx).await? {
        // Our own last status write has not reached the cache yet (an owned Entitlement's
        // event can wake us first): deciding from the old state would repeat billing calls.
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let outcome = execute(ctx.billing.as_ref(), intent, &inputs).await;
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
    if intent == BillingIntent::ChangePlan && matches!(outcome.fact, Some(BillingFact::Live { .. }))
    {
        let billed = status.hubspot.as_ref();
        ctx.event(
            sub,
            EventType::Normal,
            "PlanChanged",
            "Bill",
            format!(
                "now billing plan {} × {} (was {} × {})",
                sub.spec.plan.as_str(),
                sub.spec.quantity,
                billed
                    .and_then(|h| h.billed_plan.clone())
                    .unwrap_or_default(),
                billed.and_then(|h| h.billed_quantity).unwrap_or_default()
            ),
        )
        .await;
    }
    let fact = outcome.fact.clone().unwrap_or_else(|| recorded.clone());
    let mut decision = decide(&facts(&fact));

    // Act on the cluster: the Entitlements.
    let features = listing_spec.and_then(|l| plan.map(|p| features_of(l, p)));
    let previously = feature_names(&status);
    let desired = desired_entitlements(&decision, &name, features.as_ref(), &previously, now);
    let owner = sub
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidObject(format!("{namespace}/{name} has no uid yet")))?;
    let entitled = apply_entitlements(ctx, &namespace, tenant_name, &name, &owner, &desired).await;
    let mut granted = granted_features(&desired);
    let mut retry = None;
    if let Err(error) = &entitled {
        // Billing is done but the features are not: stay where we were and retry.
        let before = status.phase.unwrap_or(Phase::Requested);
        if !matches!(
            before,
            Phase::Active | Phase::Trialing | Phase::Suspended | Phase::CancelRequested
        ) && !is_terminal(decision.phase)
        {
            decision.phase = Phase::Provisioning;
            decision.via = None;
        }
        decision.ready = false;
        decision.reason = "Retrying".into();
        decision.message = format!("billing is in place but granting entitlements failed: {error}");
        granted = previously.clone();
        retry = Some(decision.message.clone());
    }

    // Report.
    let next = next_status(
        sub,
        &status,
        &decision,
        &fact,
        &outcome.ids,
        news.as_ref(),
        granted,
        validation.connection_tested,
        now,
    );
    let api: Api<TenantSubscription> = Api::namespaced(ctx.client.clone(), &namespace);
    apply_status_guarded(&api, sub, sub.status.as_ref(), &next).await?;
    record_transitions(ctx, &namespace, &name, &status, &next);
    report_events(
        ctx,
        sub,
        &status,
        &decision,
        &outcome.repairs,
        news.as_ref(),
    )
    .await;
    if let Some(message) = retry {
        ctx.event(
            sub,
            EventType::Warning,
            "ProvisioningFailed",
            "Provision",
            message.clone(),
        )
        .await;
        return Err(Error::Retry(message));
    }
    if let BillingFact::Failed {
        message,
        retryable: true,
    } = &fact
    {
        return Err(Error::Retry(message.clone()));
    }
    Ok(requeue(&decision, now))
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
        .map(|s| Sibling {
            name: s.name_any(),
            listing: s.spec.listing.as_str().to_string(),
            phase: s.status.as_ref().and_then(|st| st.phase),
            created_at: created_at(s).unwrap_or(now),
        })
        .collect();
    let entitled = ctx
        .stores
        .entitlements_in(namespace)
        .iter()
        .filter(|e| {
            matches!(
                e.spec.state,
                EntitlementState::Active | EntitlementState::Trialing
            )
        })
        .map(|e| e.spec.feature.as_str().to_string())
        .collect();
    let request = RequestContext {
        name: &sub.name_any(),
        created_at: created_at(sub).unwrap_or(now),
        spec: &sub.spec,
        listing: listing.map(|l| &l.spec),
        tenant_name,
        tenant: tenant.map(|t| &t.spec),
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

/// The status after this reconcile.
#[allow(clippy::too_many_arguments)]
fn next_status(
    sub: &TenantSubscription,
    status: &TenantSubscriptionStatus,
    d: &Decision,
    fact: &BillingFact,
    ids: &Option<crate::api::tenant_subscription::HubSpotIds>,
    news: Option<&BillingNews>,
    granted: Vec<String>,
    connection_tested: Option<bool>,
    now: Timestamp,
) -> TenantSubscriptionStatus {
    let at = Time(now);
    let mut next = status.clone();
    next.observed_generation = sub.metadata.generation;
    // A transition caused by what HubSpot said (webhook or audit) is HubSpot's.
    let actor = match news {
        Some(_) => "hubspot".to_string(),
        None => "operator".to_string(),
    };
    if status.phase != Some(d.phase) {
        let mut push = |from: Option<Phase>, to: Phase| {
            next.history.push(Transition {
                from,
                to,
                at: at.clone(),
                actor: actor.clone(),
                reason: Some(d.message.clone()),
                action: None,
            });
        };
        match d.via {
            Some(via) if status.phase != Some(via) => {
                push(status.phase, via);
                push(Some(via), d.phase);
            }
            _ => push(status.phase, d.phase),
        }
        let excess = next.history.len().saturating_sub(HISTORY_LIMIT);
        next.history.drain(..excess);
    }
    next.phase = Some(d.phase);
    next.trial_ends_at = d.trial_ends_at.map(Time);
    next.current_period_end = d.current_period_end.map(Time);
    next.entitlements = granted.iter().map(|f| f.as_str().into()).collect();
    if let Some(ids) = ids {
        next.hubspot = Some(ids.clone());
    }
    if let Some(recorded) = fact.recorded() {
        next.hubspot.get_or_insert_with(Default::default).status = Some(recorded);
    }
    let generation = sub.metadata.generation;
    let mut set = |type_: &str, ok: bool, reason: &str, message: String| {
        set_condition(
            &mut next.conditions,
            NewCondition {
                type_,
                status: if ok { TRUE } else { FALSE },
                reason,
                message,
                observed_generation: generation,
            },
            &at,
        );
    };
    set("Ready", d.ready, &d.reason, d.message.clone());
    match connection_tested {
        Some(true) => set(
            CONNECTION_TESTED,
            true,
            "Succeeded",
            "the connection settings are valid and the test connection succeeded".into(),
        ),
        Some(false) => set(CONNECTION_TESTED, false, &d.reason, d.message.clone()),
        None => {}
    }
    match fact {
        BillingFact::Live { status, .. } => set(
            "Billed",
            true,
            "Live",
            format!("HubSpot subscription is {status}"),
        ),
        BillingFact::Cancelled => set(
            "Billed",
            false,
            "Cancelled",
            "billing cancelled in HubSpot".into(),
        ),
        BillingFact::Missing => set(
            "Billed",
            false,
            "Missing",
            "no live HubSpot billing record".into(),
        ),
        BillingFact::Failed { message, .. } => set("Billed", false, "Failed", message.clone()),
        BillingFact::Unknown => {}
    }
    if let Some(news) = news {
        let source = news.source;
        match (&news.finding, fact) {
            (Some(finding), BillingFact::Failed { message, .. }) => set(
                "Synced",
                false,
                "DriftFound",
                format!("{finding} ({source} at {now}); healing failed: {message}"),
            ),
            (Some(finding), _) => set(
                "Synced",
                true,
                "Healed",
                format!("{finding}; healed ({source} at {now})"),
            ),
            (None, _) => set(
                "Synced",
                true,
                "InSync",
                format!("HubSpot agrees ({source} at {now})"),
            ),
        }
    }
    next
}

async fn report_events(
    ctx: &Context,
    sub: &TenantSubscription,
    before: &TenantSubscriptionStatus,
    d: &Decision,
    repairs: &[String],
    news: Option<&BillingNews>,
) {
    if before.phase != Some(d.phase) {
        let type_ = match d.phase {
            Phase::Rejected | Phase::Suspended | Phase::Failed => EventType::Warning,
            _ => EventType::Normal,
        };
        let from = before
            .phase
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "new".into());
        let note = format!("{from} → {:?}: {}", d.phase, d.message);
        ctx.event(sub, type_, &format!("{:?}", d.phase), "Transition", note)
            .await;
    }
    for repair in repairs {
        ctx.event(
            sub,
            EventType::Warning,
            "BillingRepaired",
            "Bill",
            repair.clone(),
        )
        .await;
    }
    if let Some(finding) = news.and_then(|n| n.finding.as_ref()) {
        ctx.event(
            sub,
            EventType::Warning,
            "DriftFound",
            "Audit",
            finding.clone(),
        )
        .await;
    }
}

/// One audit record per new history entry; counts activations.
fn record_transitions(
    ctx: &Context,
    namespace: &str,
    name: &str,
    before: &TenantSubscriptionStatus,
    after: &TenantSubscriptionStatus,
) {
    let new = after.history.len().saturating_sub(before.history.len());
    for t in &after.history[after.history.len() - new..] {
        if t.to == Phase::Active && !before.history.iter().any(|h| h.to == Phase::Active) {
            ctx.metrics.activation();
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

fn requeue(d: &Decision, now: Timestamp) -> Action {
    let wait = d
        .wake_at
        .map(|at| at.duration_since(now))
        .and_then(|s| Duration::try_from(s).ok())
        .map(|w| w.min(RESYNC) + Duration::from_millis(50))
        .unwrap_or(RESYNC);
    Action::requeue(wait)
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

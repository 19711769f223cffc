//! The SubscriptionAction reconciler: a superadmin's step on a subscription's approval ladder.
//! It decides with [`crate::lifecycle::decide_action`], moves the subscription's phase with a
//! guarded status write (never over a newer state), and records Accepted or Refused. A step
//! recorded in the subscription's history under the action's name counts as done, so a crash
//! between the two writes never refuses an action that was carried out.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;

use super::status::{apply_status, apply_status_guarded};
use super::{Context, Error, object_key};
use crate::api::conditions::reasons::{ACCEPTED, REFUSED};
use crate::api::conditions::types::READY;
use crate::api::conditions::{NewCondition, TRUE, set_condition};
use crate::api::listing::Activation;
use crate::api::subscription_action::{ActionResult, SubscriptionActionStatus};
use crate::api::tenant_subscription::Transition;
use crate::api::{SubscriptionAction, TenantSubscription};
use crate::lifecycle::{ActionDecision, decide_action};

/// The SubscriptionAction controller, driven by the shared cache of the operator's namespace.
pub fn controller(ctx: &Context) -> Controller<SubscriptionAction> {
    let actions = &ctx.operator_stores.actions;
    Controller::for_shared_stream(actions.changes(), actions.store().clone())
}

pub async fn reconcile(
    action: Arc<SubscriptionAction>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let key = object_key(action.as_ref());
    if action.status.as_ref().and_then(|s| s.result).is_some() {
        return Ok(Action::await_change());
    }
    let reference = format!(
        "{}/{}",
        action.namespace().unwrap_or_default(),
        action.name_any()
    );
    let target = &action.spec.subscription_ref;
    let subs: Api<TenantSubscription> =
        Api::namespaced(ctx.client.clone(), target.namespace.as_str());
    let Some(sub) = subs.get_opt(&target.name).await? else {
        return finish(
            &ctx,
            &action,
            ActionResult::Refused,
            format!(
                "there is no TenantSubscription {}/{}",
                target.namespace, target.name
            ),
        )
        .await;
    };
    let status = sub.status.clone().unwrap_or_default();
    if status
        .history
        .iter()
        .any(|t| t.action.as_deref() == Some(reference.as_str()))
    {
        return finish(&ctx, &action, ActionResult::Accepted, "carried out".into()).await;
    }
    let activation = ctx
        .stores
        .listing(sub.spec.listing.as_str())
        .map(|l| l.spec.activation)
        .unwrap_or(Activation::Instant);
    match decide_action(action.spec.action, status.phase, activation) {
        ActionDecision::Wait(why) => {
            tracing::debug!(action = %key, %why, "waiting");
            Ok(Action::requeue(std::time::Duration::from_secs(2)))
        }
        ActionDecision::Refuse(why) => finish(&ctx, &action, ActionResult::Refused, why).await,
        ActionDecision::Accept { to } => {
            let mut next = status.clone();
            let mut reason = action.spec.reason.clone().unwrap_or_default();
            if let Some(invoice) = &action.spec.invoice {
                reason = format!("invoiced {} {}. {reason}", invoice.amount, invoice.currency)
                    .trim()
                    .to_string();
            }
            next.history.push(Transition {
                from: status.phase,
                to,
                at: Time(Timestamp::now()),
                actor: actor(&action),
                reason: (!reason.is_empty()).then_some(reason),
                action: Some(reference.clone()),
            });
            next.phase = Some(to);
            // 409 when the subscription moved meanwhile: the retry decides again.
            apply_status_guarded(&subs, &sub, sub.status.as_ref(), &next).await?;
            let last = next.history.last().cloned();
            ctx.record(crate::audit_log::AuditEntry::new(
                actor(&action),
                "subscription.transition",
                format!("{}/{}", target.namespace, target.name),
                last.as_ref()
                    .and_then(|t| t.reason.clone())
                    .unwrap_or_default(),
                serde_json::json!({"from": status.phase, "to": to, "action": reference,
                                   "step": action.spec.action, "invoice": action.spec.invoice}),
            ));
            ctx.event(
                &sub,
                EventType::Normal,
                &format!("{:?}", action.spec.action),
                "Approve",
                format!(
                    "{:?} → {to:?} by SubscriptionAction {reference}",
                    status.phase.unwrap_or(to)
                ),
            )
            .await;
            finish(
                &ctx,
                &action,
                ActionResult::Accepted,
                format!("subscription moved to {to:?}"),
            )
            .await
        }
    }
}

/// Who took the step: the field manager that created the action (the apiserver does not
/// record the user on the object; its audit log does).
fn actor(action: &SubscriptionAction) -> String {
    let manager = action
        .metadata
        .managed_fields
        .as_ref()
        .and_then(|m| m.first())
        .and_then(|m| m.manager.clone())
        .unwrap_or_else(|| "unknown".into());
    format!("SubscriptionAction/{} via {manager}", action.name_any())
}

async fn finish(
    ctx: &Context,
    action: &SubscriptionAction,
    result: ActionResult,
    message: String,
) -> Result<Action, Error> {
    let mut status = action.status.clone().unwrap_or_default();
    status.observed_generation = action.metadata.generation;
    status.result = Some(result);
    status.message = Some(message.clone());
    let reason = match result {
        ActionResult::Accepted => ACCEPTED,
        ActionResult::Refused => REFUSED,
    };
    set_condition(
        &mut status.conditions,
        NewCondition {
            type_: READY,
            status: TRUE,
            reason,
            message: message.clone(),
            observed_generation: action.metadata.generation,
        },
        &Time(Timestamp::now()),
    );
    let api: Api<SubscriptionAction> =
        Api::namespaced(ctx.client.clone(), &action.namespace().unwrap_or_default());
    apply_status::<_, SubscriptionActionStatus>(&api, action, action.status.as_ref(), &status)
        .await?;
    let type_ = if result == ActionResult::Refused {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.event(action, type_, reason, "Handle", message).await;
    Ok(Action::await_change())
}

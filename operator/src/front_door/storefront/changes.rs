//! Changing a live subscription through the API: plan or quantity, cancellation and its undo.
//! Each decision returns the merge patch to apply as the caller, or why not.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::price::{self, QuotedPrice};
use super::purchase::PurchaseRefusal;
use crate::api::listing::Listing;
use crate::api::tenant_subscription::{CancellationEffective, Phase, TenantSubscription};
use crate::lifecycle::bundle::member_cancel_refusal;
use crate::lifecycle::validation::check_plan_change;
use crate::lifecycle::{is_terminal, is_usable};

/// `PATCH /v1/tenants/{t}/subscriptions/{name}`.
#[derive(Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeRequest {
    pub plan: Option<String>,
    pub quantity: Option<i32>,
    pub confirmed_price: Option<QuotedPrice>,
}

/// `POST /v1/tenants/{t}/subscriptions/{name}/cancel`.
#[derive(Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelRequest {
    #[serde(default)]
    pub effective: CancellationEffective,
    pub reason: Option<String>,
}

fn phase_of(sub: &TenantSubscription) -> Phase {
    sub.status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(Phase::Requested)
}

fn invalid(code: &str, field: &str, message: String) -> PurchaseRefusal {
    PurchaseRefusal::Invalid {
        code: code.to_string(),
        field: field.to_string(),
        message,
    }
}

fn conflict(code: &str, message: String) -> PurchaseRefusal {
    PurchaseRefusal::Conflict {
        code: code.to_string(),
        message,
    }
}

/// A new plan or quantity for a live subscription, at the price the buyer confirmed.
pub fn decide_change(
    sub: &TenantSubscription,
    listing: &Listing,
    request: &ChangeRequest,
) -> Result<(Value, String), PurchaseRefusal> {
    let phase = phase_of(sub);
    if is_terminal(phase) {
        return Err(conflict(
            "SubscriptionEnded",
            format!("the subscription is {phase:?}; buy the add-on again instead"),
        ));
    }
    let mut spec = sub.spec.clone();
    if let Some(plan) = &request.plan {
        spec.plan = plan.as_str().into();
    }
    if let Some(quantity) = request.quantity {
        spec.quantity = quantity;
    }
    if spec == sub.spec {
        return Err(invalid(
            "NothingToChange",
            "plan",
            "send a plan or quantity other than the current ones".to_string(),
        ));
    }
    check_plan_change(&spec, &listing.spec).map_err(|r| {
        let field = if r.field == "spec.quantity" {
            "quantity"
        } else {
            "plan"
        };
        invalid(r.reason, field, r.message)
    })?;
    let plan = listing
        .spec
        .plans
        .iter()
        .find(|p| p.name == spec.plan)
        .ok_or_else(|| invalid("PlanNotFound", "plan", "no such plan".to_string()))?;
    let confirmation = price::confirmation(plan, spec.quantity);
    match &request.confirmed_price {
        Some(quote) if quote.matches(&plan.pricing) => {}
        None if price::is_free(&plan.pricing) => {}
        _ => {
            return Err(PurchaseRefusal::PriceChanged {
                current: QuotedPrice::of(&plan.pricing),
                confirmation,
            });
        }
    }
    Ok((
        json!({"spec": {"plan": spec.plan, "quantity": spec.quantity}}),
        confirmation,
    ))
}

/// Cancels a subscription in service (or one still on its way, which simply ends).
pub fn decide_cancel(
    sub: &TenantSubscription,
    request: &CancelRequest,
) -> Result<Value, PurchaseRefusal> {
    if let Some(why) = member_cancel_refusal(&sub.spec, false) {
        return Err(conflict("BundleMemberCancelledAlone", why));
    }
    let phase = phase_of(sub);
    if is_terminal(phase) {
        return Err(conflict(
            "SubscriptionEnded",
            format!("the subscription is already {phase:?}"),
        ));
    }
    if sub.spec.cancellation.is_some() {
        return Err(conflict(
            "AlreadyCancelling",
            "a cancellation is already scheduled; undo it first to change it".to_string(),
        ));
    }
    Ok(json!({"spec": {"cancellation": {
        "effective": request.effective,
        "reason": request.reason,
    }}}))
}

/// Withdraws a scheduled cancellation while the subscription is still in service.
pub fn decide_undo_cancel(sub: &TenantSubscription) -> Result<Value, PurchaseRefusal> {
    if let Some(why) = member_cancel_refusal(&sub.spec, false) {
        return Err(conflict("BundleMemberCancelledAlone", why));
    }
    let phase = phase_of(sub);
    if sub.spec.cancellation.is_none() {
        return Err(conflict(
            "NotCancelling",
            "no cancellation is scheduled".to_string(),
        ));
    }
    if !is_usable(phase) {
        return Err(conflict(
            "CancellationInEffect",
            format!("the subscription is {phase:?}; the cancellation can no longer be undone"),
        ));
    }
    Ok(json!({"spec": {"cancellation": null}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tenant_subscription::TenantSubscriptionStatus;
    use crate::lifecycle::fixtures::{listing, subscription};

    fn live(yaml: &str, phase: Phase) -> TenantSubscription {
        let mut s = TenantSubscription::new("route-1", subscription(yaml));
        s.status = Some(TenantSubscriptionStatus {
            phase: Some(phase),
            ..Default::default()
        });
        s
    }

    #[test]
    fn a_plan_change_needs_the_new_price_confirmed() {
        let route = Listing::new("route", listing(""));
        let sub = live(
            "{listing: route, plan: standard, quantity: 2}",
            Phase::Active,
        );
        let more = ChangeRequest {
            quantity: Some(5),
            ..Default::default()
        };
        let Err(PurchaseRefusal::PriceChanged { confirmation, .. }) =
            decide_change(&sub, &route, &more)
        else {
            panic!("expected a price to confirm");
        };
        assert!(confirmation.contains("$60.00/mo"), "{confirmation}");
        let confirmed = ChangeRequest {
            quantity: Some(5),
            confirmed_price: Some(QuotedPrice::of(&route.spec.plans[0].pricing)),
            ..Default::default()
        };
        let (patch, _) = decide_change(&sub, &route, &confirmed).unwrap();
        assert_eq!(patch["spec"]["quantity"], 5);
        let flat_many = ChangeRequest {
            plan: Some("flat".into()),
            confirmed_price: Some(QuotedPrice::of(&route.spec.plans[1].pricing)),
            ..Default::default()
        };
        let Err(PurchaseRefusal::Invalid { code, .. }) = decide_change(&sub, &route, &flat_many)
        else {
            panic!("a flat plan takes quantity 1");
        };
        assert_eq!(code, "InvalidQuantity");
    }

    #[test]
    fn cancel_and_undo_follow_the_phase() {
        let sub = live("{listing: route, plan: flat}", Phase::Active);
        let patch = decide_cancel(&sub, &CancelRequest::default()).unwrap();
        assert_eq!(patch["spec"]["cancellation"]["effective"], "EndOfPeriod");
        assert!(decide_undo_cancel(&sub).is_err());
        let cancelling = live(
            "{listing: route, plan: flat, cancellation: {effective: EndOfPeriod}}",
            Phase::CancelRequested,
        );
        assert!(decide_cancel(&cancelling, &CancelRequest::default()).is_err());
        assert_eq!(
            decide_undo_cancel(&cancelling).unwrap()["spec"]["cancellation"],
            Value::Null
        );
        let ended = live(
            "{listing: route, plan: flat, cancellation: {effective: Immediately}}",
            Phase::Cancelled,
        );
        assert!(decide_undo_cancel(&ended).is_err());
        assert!(decide_cancel(&ended, &CancelRequest::default()).is_err());
    }
}

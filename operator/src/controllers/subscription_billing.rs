//! The billing edge of the subscription reconciler: carries out a [`BillingIntent`] through the
//! HubSpot client and reports what is now known as a [`BillingFact`].

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::api::listing::{BillingInterval, ListingSpec, Plan};
use crate::api::tenant::TenantSpec;
use crate::api::tenant_subscription::{
    AppliedBundle, AppliedPromotion, HubSpotIds, TenantSubscription,
};
use crate::billing::{BillingRecord, BillingRequest, BillingStatus, HubSpotClient, HubSpotError};
use crate::lifecycle::promotion::line_discount;
use crate::lifecycle::{BillingFact, BillingIntent};

/// What the billing call produced: the fact, ids to record, and repairs worth an Event.
#[derive(Debug, Default)]
pub struct BillingOutcome {
    pub fact: Option<BillingFact>,
    pub ids: Option<HubSpotIds>,
    pub repairs: Vec<String>,
}

/// Everything a billing request is made of.
pub struct BillingInputs<'a> {
    pub subscription: &'a TenantSubscription,
    pub tenant_name: &'a str,
    pub tenant: Option<&'a TenantSpec>,
    pub listing: Option<&'a ListingSpec>,
    pub plan: Option<&'a Plan>,
    /// When service started (billing starts then, after any trial).
    pub started: Timestamp,
    /// The promotion recorded in status (possibly in this reconcile).
    pub promotion: Option<&'a AppliedPromotion>,
    /// A bundle member's discount recorded in status (possibly in this reconcile).
    pub bundle: Option<&'a AppliedBundle>,
    pub now: Timestamp,
}

/// The HubSpot `recurringbillingfrequency` of an interval.
pub fn frequency(interval: BillingInterval) -> &'static str {
    match interval {
        BillingInterval::Month => "monthly",
        BillingInterval::Year => "annually",
    }
}

/// The billing request of a subscription, or why there is none.
pub fn billing_request(i: &BillingInputs<'_>) -> Result<BillingRequest, String> {
    let sub = i.subscription;
    let (Some(_), Some(plan)) = (i.listing, i.plan) else {
        return Err("the listing or its plan is no longer in the catalog".into());
    };
    let uid = sub
        .metadata
        .uid
        .clone()
        .ok_or_else(|| "the subscription has no uid yet".to_string())?;
    let tenant_display = i
        .tenant
        .map(|t| t.display_name.clone())
        .unwrap_or_else(|| i.tenant_name.to_string());
    let trial_days = if sub.spec.trial {
        plan.trial_days.unwrap_or(0).max(0) as u32
    } else {
        0
    };
    Ok(BillingRequest {
        tenant_id: i.tenant_name.to_string(),
        tenant_name: tenant_display,
        subscription_uid: uid,
        listing: sub.spec.listing.as_str().to_string(),
        plan: plan.name.as_str().to_string(),
        sku: plan
            .hubspot_sku
            .clone()
            .unwrap_or_else(|| format!("{}-{}", sub.spec.listing.as_str(), plan.name.as_str())),
        quantity: sub.spec.quantity.max(1) as u32,
        unit_price: plan.pricing.amount.clone(),
        currency: plan.pricing.currency.clone(),
        interval: frequency(plan.pricing.interval).to_string(),
        trial_days,
        start_date: i.started.to_zoned(TimeZone::UTC).date(),
        // A bundle member's promoted share while kept, then its bundle discount.
        discount: line_discount(i.promotion, plan.name.as_str(), i.now)
            .or_else(|| crate::lifecycle::bundle::line_discount(i.bundle, plan.name.as_str())),
    })
}

/// Carries out `intent`. Failures of Ensure and ReadStatus become facts (the status says why and
/// the reconcile retries); a failed Cancel is an error (nothing may move on until it succeeds).
pub async fn execute(
    client: Option<&HubSpotClient>,
    intent: BillingIntent,
    inputs: &BillingInputs<'_>,
) -> Result<BillingOutcome, HubSpotError> {
    let previous_ids = inputs
        .subscription
        .status
        .as_ref()
        .and_then(|s| s.hubspot.clone());
    let mut out = BillingOutcome::default();
    let Some(client) = client else {
        out.fact = match intent {
            BillingIntent::None => None,
            BillingIntent::Cancel => Some(BillingFact::Cancelled),
            BillingIntent::Ensure | BillingIntent::ReadStatus | BillingIntent::ChangePlan => {
                Some(BillingFact::Failed {
                    message: "HubSpot billing is not configured on the operator".into(),
                    retryable: false,
                })
            }
        };
        return Ok(out);
    };
    match intent {
        BillingIntent::None => {}
        BillingIntent::ChangePlan | BillingIntent::Ensure => {
            if intent == BillingIntent::ChangePlan {
                // contract §1.8: end the subscription billing the old plan; ensure then
                // creates the next generation under the same deal.
                let live = previous_ids
                    .as_ref()
                    .and_then(|h| h.subscription_id.clone());
                if let Some(id) = live
                    && let Err(e) = client.cancel_subscription(&id).await
                {
                    out.fact = Some(BillingFact::Failed {
                        message: format!("ending the old plan's subscription {id}: {e}"),
                        retryable: e.is_retryable(),
                    });
                    return Ok(out);
                }
            }
            let request = match billing_request(inputs) {
                Ok(r) => r,
                Err(message) => {
                    out.fact = Some(BillingFact::Failed {
                        message,
                        retryable: false,
                    });
                    return Ok(out);
                }
            };
            match client.ensure_billing_record(&request).await {
                Ok(record) => {
                    out.repairs = record.repairs.iter().map(|r| format!("{r:?}")).collect();
                    out.fact = Some(fact_of(&record));
                    let mut ids = ids_of(&record, previous_ids);
                    ids.billed_plan = Some(request.plan.clone());
                    ids.billed_quantity = i32::try_from(request.quantity).ok();
                    // Only a discount the promotion set: a member's bundle discount never lapses.
                    ids.billed_promotion =
                        line_discount(inputs.promotion, &request.plan, inputs.now)
                            .and(inputs.promotion)
                            .map(|p| p.name.to_string());
                    out.ids = Some(ids);
                }
                Err(e) => {
                    out.fact = Some(BillingFact::Failed {
                        message: e.to_string(),
                        retryable: e.is_retryable(),
                    });
                }
            }
        }
        BillingIntent::ReadStatus => {
            let id = previous_ids
                .as_ref()
                .and_then(|h| h.subscription_id.clone());
            out.fact = Some(match id {
                Some(id) => match client.read_status(&id).await {
                    Ok(state) if state.class.is_live() => BillingFact::Live {
                        status: state.status,
                        class: state.class,
                    },
                    Ok(_) => BillingFact::Missing,
                    Err(e) if e.category() == "not_found" => BillingFact::Missing,
                    Err(e) => BillingFact::Failed {
                        message: e.to_string(),
                        retryable: e.is_retryable(),
                    },
                },
                None => BillingFact::Missing,
            });
        }
        BillingIntent::Cancel => {
            let uid = inputs.subscription.metadata.uid.clone().unwrap_or_default();
            let cancelled = client.cancel_billing_record(&uid).await?;
            // A record found (a crash may have left one) is recorded, so the status tells
            // "billing cancelled" from "nothing was billed".
            if let Some(deal_id) = cancelled.deal_id {
                let mut ids = previous_ids.unwrap_or_default();
                ids.deal_id = Some(deal_id);
                out.ids = Some(ids);
            }
            out.fact = Some(BillingFact::Cancelled);
        }
    }
    Ok(out)
}

fn fact_of(record: &BillingRecord) -> BillingFact {
    match &record.status {
        BillingStatus::Subscription { value, class, .. } => BillingFact::Live {
            status: value.clone(),
            class: *class,
        },
        // CRM-only mode bills nothing: the record is the deal, always "active".
        BillingStatus::CrmOnly => BillingFact::Live {
            status: "active".into(),
            class: crate::billing::StatusClass::Ok,
        },
    }
}

fn ids_of(record: &BillingRecord, previous: Option<HubSpotIds>) -> HubSpotIds {
    HubSpotIds {
        company_id: Some(record.company_id.clone()),
        deal_id: Some(record.deal_id.clone()),
        line_item_id: record.line_item_id.clone(),
        subscription_id: record.subscription_id.clone(),
        status: previous.and_then(|p| p.status),
        billed_plan: None,
        billed_quantity: None,
        billed_promotion: None,
    }
}

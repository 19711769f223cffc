//! What `GET /v1/tenants/{t}/usage` shows a tenant: each metered subscription's meter this
//! period so far, against its included quantity, with what it would cost now. Pure.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::period::UsagePeriod;
use super::price::{Charge, charges, format_micros, limit_reached};
use super::store::{MeterTotals, PeriodReport};
use crate::api::listing::Plan;
use crate::api::metered::Aggregation;

/// A tenant's usage this period.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantUsage {
    pub tenant: String,
    pub period: PeriodView,
    pub meters: Vec<MeterUsage>,
    /// The closed periods of the last months already billed, oldest first.
    pub reported: Vec<ReportedPeriod>,
    /// Prepaid credits usable now, per currency (`GET /v1/tenants/{t}/credits` has the
    /// grants): they pay the usage bill at the period's end.
    pub credits: Vec<crate::credits::view::CreditBalance>,
}

/// A closed period billed to HubSpot (or found to have nothing billable).
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReportedPeriod {
    /// The TenantSubscription (its uid when it no longer exists).
    pub subscription: String,
    pub meter: String,
    /// e.g. `2026-11`.
    pub period: String,
    pub quantity: f64,
    pub billable_units: i64,
    /// A decimal string in the plan's currency.
    pub amount: String,
    /// The HubSpot line item on the subscription's deal; absent when nothing was billable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_item_id: Option<String>,
    pub reported_at: Timestamp,
}

impl ReportedPeriod {
    /// `report` as shown, naming the subscription `name` (when it still exists).
    pub fn of(report: PeriodReport, name: Option<String>) -> ReportedPeriod {
        ReportedPeriod {
            subscription: name.unwrap_or(report.key.subscription),
            meter: report.key.meter,
            period: report.key.period.to_string(),
            quantity: report.quantity,
            billable_units: report.billable_units,
            amount: report.amount,
            line_item_id: (!report.reference.is_empty()).then_some(report.reference),
            reported_at: report.reported_at,
        }
    }
}

/// A usage period: a calendar month (UTC).
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct PeriodView {
    /// e.g. `2026-11`.
    pub name: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl From<UsagePeriod> for PeriodView {
    fn from(period: UsagePeriod) -> Self {
        PeriodView {
            name: period.to_string(),
            start: period.start(),
            end: period.end(),
        }
    }
}

/// One metered subscription's meter this period so far.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MeterUsage {
    /// The TenantSubscription.
    pub subscription: String,
    pub listing: String,
    pub plan: String,
    pub meter: String,
    pub aggregation: Aggregation,
    pub unit: String,
    /// The period's quantity so far.
    pub quantity: f64,
    pub included_quantity: i64,
    pub hard_limit: bool,
    /// A hard limit's included quantity is used up: the plan's features are off until the
    /// next period.
    pub limit_reached: bool,
    /// Units past the included quantity, billed at the period's end.
    pub billable_units: i64,
    /// What they cost now, as a decimal string in `currency`.
    pub amount_so_far: String,
    pub currency: String,
    /// The raw totals of the period's events.
    pub totals: MeterTotals,
}

/// The usage of `subscription` (on `listing`'s `plan`, which must be metered) given its meter's
/// `totals`; `None` for a plan without a metered price.
pub fn meter_usage(
    subscription: &str,
    listing: &str,
    plan: &Plan,
    totals: MeterTotals,
) -> Option<MeterUsage> {
    let metered = plan.metered.as_ref()?;
    let quantity = totals.quantity(metered.aggregation);
    let lines = charges(metered, quantity);
    Some(MeterUsage {
        subscription: subscription.to_string(),
        listing: listing.to_string(),
        plan: plan.name.as_str().to_string(),
        meter: metered.meter.as_str().to_string(),
        aggregation: metered.aggregation,
        unit: metered.unit.clone(),
        quantity,
        included_quantity: metered.included_quantity,
        hard_limit: metered.hard_limit,
        limit_reached: limit_reached(metered, quantity),
        billable_units: lines.iter().map(|c| c.units).sum(),
        amount_so_far: format_micros(lines.iter().map(Charge::amount_micros).sum()),
        currency: plan.pricing.currency.clone(),
        totals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_shows_quantity_included_billable_and_cost() {
        let plan: Plan = serde_json::from_value(json!({
            "name": "tokens", "displayName": "Tokens",
            "pricing": {"model": "Flat", "amount": "0", "currency": "EUR", "interval": "Month"},
            "metered": {"meter": "llm.tokens", "aggregation": "Sum", "valueProperty": "tokens",
                        "unit": "token", "unitPrice": "0.002", "includedQuantity": 1000}
        }))
        .unwrap();
        let totals = MeterTotals {
            count: 3,
            sum: 1500.5,
            max: Some(900.0),
            unique: 3,
        };
        let usage = meter_usage("llm", "assistant", &plan, totals).unwrap();
        assert_eq!(usage.quantity, 1500.5);
        assert_eq!(usage.billable_units, 501);
        assert_eq!(usage.amount_so_far, "1.002");
        assert_eq!(usage.currency, "EUR");
        assert!(!usage.limit_reached);
        let flat: Plan = serde_json::from_value(json!({
            "name": "flat", "displayName": "Flat",
            "pricing": {"model": "Flat", "amount": "9", "currency": "EUR", "interval": "Month"}
        }))
        .unwrap();
        assert_eq!(meter_usage("s", "l", &flat, totals), None);
    }
}

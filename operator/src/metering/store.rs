//! The one storage interface for usage ([`UsageStore`]) and what it speaks: events in,
//! per tenant × meter × period totals out, and the record of periods reported to billing.
//! Usage never goes to etcd: [`super::sqlite`] (embedded, one replica) and [`super::postgres`]
//! (shared by replicas) implement it, and one test suite runs against both.

use std::future::Future;

use jiff::Timestamp;
use serde::Serialize;

use super::event::UsageEvent;
use super::period::UsagePeriod;
use crate::api::metered::Aggregation;

/// What a [`UsageStore::record`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// Events stored now.
    pub accepted: u64,
    /// Events already stored (same tenant, source and id), including repeats within the call.
    pub duplicates: u64,
}

/// A period's events of one tenant and meter, aggregated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterTotals {
    pub count: u64,
    /// Sum of the property's numeric values (0 without a property).
    pub sum: f64,
    /// Largest numeric value of the property; `None` when there is none.
    pub max: Option<f64>,
    /// Distinct values of the property (0 without a property).
    pub unique: u64,
}

impl MeterTotals {
    /// The quantity `aggregation` bills.
    pub fn quantity(&self, aggregation: Aggregation) -> f64 {
        match aggregation {
            Aggregation::Count => self.count as f64,
            Aggregation::Sum => self.sum,
            Aggregation::Max => self.max.unwrap_or(0.0),
            Aggregation::UniqueCount => self.unique as f64,
        }
    }
}

/// Which totals to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MeterQuery<'a> {
    pub tenant: &'a str,
    pub meter: &'a str,
    pub period: UsagePeriod,
    /// The `data` property Sum, Max and UniqueCount read (a plain identifier; the catalog
    /// schema allows nothing else).
    pub property: Option<&'a str>,
}

/// One period of one subscription's meter: what is reported to billing exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportKey {
    pub tenant: String,
    pub meter: String,
    pub period: UsagePeriod,
    /// The uid of the TenantSubscription billed.
    pub subscription: String,
}

/// A period reported to billing.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodReport {
    #[serde(flatten)]
    pub key: ReportKey,
    /// The period's quantity.
    pub quantity: f64,
    /// The units billed (past the included quantity).
    pub billable_units: i64,
    /// What they cost, a decimal in the plan's currency.
    pub amount: String,
    /// Where billing recorded it (the HubSpot line item id; empty when nothing was billable).
    pub reference: String,
    pub reported_at: Timestamp,
}

impl ReportKey {
    /// A key as the stores keep it (the period as its key).
    pub(super) fn from_columns(
        tenant: String,
        meter: String,
        period_key: i64,
        subscription: String,
    ) -> ReportKey {
        let period = UsagePeriod::from_key(period_key).unwrap_or_else(|| {
            UsagePeriod::containing(Timestamp::from_second(period_key).unwrap_or_default())
        });
        ReportKey {
            tenant,
            meter,
            period,
            subscription,
        }
    }
}

impl PeriodReport {
    /// A report as the stores keep it.
    pub(super) fn from_columns(
        key: ReportKey,
        quantity: f64,
        billable_units: i64,
        amount: String,
        reference: String,
        reported_at_ms: i64,
    ) -> PeriodReport {
        PeriodReport {
            key,
            quantity,
            billable_units,
            amount,
            reference,
            reported_at: Timestamp::from_millisecond(reported_at_ms)
                .unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }
}

/// A storage failure; the caller answers 503 and the sender retries (dedupe makes it safe).
#[derive(Debug, thiserror::Error)]
#[error("usage store: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    pub fn from_display(e: impl std::fmt::Display) -> StoreError {
        StoreError(e.to_string())
    }
}

/// Usage storage. Every method is idempotent where it writes: recording an event twice, or
/// marking a period reported twice, changes nothing the second time.
pub trait UsageStore: Send + Sync {
    /// Stores `events`, skipping those already stored (by tenant, source and id).
    fn record(
        &self,
        events: &[UsageEvent],
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// The totals of the query's period so far.
    fn totals(
        &self,
        query: MeterQuery<'_>,
    ) -> impl Future<Output = Result<MeterTotals, StoreError>> + Send;

    /// Records `report` unless its key was reported already: `true` when recorded now, `false`
    /// when it was there (the first one stays).
    fn mark_reported(
        &self,
        report: &PeriodReport,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The report recorded under `key`, if any.
    fn reported(
        &self,
        key: &ReportKey,
    ) -> impl Future<Output = Result<Option<PeriodReport>, StoreError>> + Send;

    /// The reports of periods from `since` on, of `tenant` (every tenant's when `None`), oldest
    /// period first.
    fn reports(
        &self,
        tenant: Option<&str>,
        since: UsagePeriod,
    ) -> impl Future<Output = Result<Vec<PeriodReport>, StoreError>> + Send;
}

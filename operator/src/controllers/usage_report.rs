//! Period-end usage reporting: every `--usage-report-interval-seconds`, each metered
//! subscription's closed periods that are due ([`due_periods`]) are billed to HubSpot as one
//! line item on its deal ([`HubSpotClient::ensure_usage_line_item`]) and recorded in the usage
//! store, then announced with an Event.
//!
//! Exactly once, through every crash window: the store's record is written only after HubSpot
//! has the line item, and HubSpot is always asked first (a look-up by the deal's associations
//! for `mkt_usage_period_key`), so a crash between the two, a lost response, a restart with an
//! empty store or a new leader finds the line item instead of making another. Only the leader
//! runs this (one writer); the look-up covers a leader that changed mid-round.
//!
//! Prepaid credits pay first ([`crate::credits`]): the period's settlement (which grants pay
//! how much) is recorded in the store before HubSpot is asked, once per period key, so every
//! attempt bills the same remainder, and the line item shows the credit as its `discount`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::runtime::events::EventType;
use serde_json::json;

use super::Context;
use super::credit_balance::check_balances;
use super::tenant_subscription::tenant_of;
use crate::api::TenantSubscription;
use crate::api::listing::Plan;
use crate::billing::{HubSpotClient, UsageCredit, UsageLineItemRequest};
use crate::credits::settle_once;
use crate::metering::price::format_micros;
use crate::metering::report::{
    billed_line, due_periods, oldest_reportable, period_bill, period_key,
};
use crate::metering::{
    AnyUsageStore, MeterQuery, PeriodReport, ReportKey, UsagePeriod, UsageStore,
};

/// Event reason of a period billed (or found to have nothing billable).
pub const USAGE_REPORTED: &str = "UsageReported";
/// Event reason of a period that could not be reported yet (retried next round).
pub const USAGE_REPORT_FAILED: &str = "UsageReportFailed";
/// Event reason of usage recorded while its period was being reported: the API refuses events
/// of reported periods (`metering/late.rs`), but one accepted just before the record was
/// written is in neither the bill nor a refusal, so it is said loudly.
pub const USAGE_UNBILLED: &str = "UsageArrivedWhileReporting";
/// Who the audit log names.
const ACTOR: &str = "controller/usage-report";

/// When periods are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageReportSettings {
    /// How often due periods are looked for.
    pub interval: Duration,
    /// How long after a period's end it is reported (events may arrive late).
    pub settle: SignedDuration,
}

impl Default for UsageReportSettings {
    fn default() -> Self {
        UsageReportSettings {
            interval: Duration::from_secs(300),
            settle: SignedDuration::from_hours(1),
        }
    }
}

/// What one round did.
#[derive(Debug, Default)]
pub struct ReportRound {
    /// Periods reported in this round.
    pub reported: Vec<PeriodReport>,
    /// `namespace/name period: why`, for periods left for the next round.
    pub failures: Vec<String>,
}

/// Reports due periods every interval until `shutdown` (with billing and a usage store only).
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (Some(_), Some(store)) = (&ctx.billing, ctx.usage_store.clone()) else {
        return;
    };
    tokio::pin!(shutdown);
    loop {
        let round = report_due(&ctx, &store, Timestamp::now()).await;
        if !round.reported.is_empty() || !round.failures.is_empty() {
            tracing::info!(
                reported = round.reported.len(),
                failed = round.failures.len(),
                "usage periods reported"
            );
        }
        // Deductions were just made: low balances are looked at now (and expiries each round).
        let balances = check_balances(&ctx, &store, Timestamp::now()).await;
        if !balances.alerts.is_empty() || !balances.top_ups.is_empty() {
            tracing::info!(
                alerts = balances.alerts.len(),
                top_ups = balances.top_ups.len(),
                failed = balances.failures.len(),
                "low credit balances acted on"
            );
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(ctx.config.usage_report.interval) => {}
        }
    }
}

/// A metered subscription with a billing record: what reporting needs of it.
struct Metered {
    subscription: Arc<TenantSubscription>,
    tenant: String,
    uid: String,
    deal_id: String,
    plan: Plan,
}

fn metered(ctx: &Context, subscription: Arc<TenantSubscription>) -> Option<Metered> {
    let namespace = subscription.namespace()?;
    let tenant = tenant_of(&namespace)?.to_string();
    let uid = subscription.metadata.uid.clone()?;
    let deal_id = subscription
        .status
        .as_ref()?
        .hubspot
        .as_ref()?
        .deal_id
        .clone()?;
    let listing = ctx.stores.listing(subscription.spec.listing.as_str())?;
    let plan = listing
        .spec
        .plans
        .iter()
        .find(|p| p.name.as_str() == subscription.spec.plan.as_str() && p.metered.is_some())?
        .clone();
    Some(Metered {
        subscription,
        tenant,
        uid,
        deal_id,
        plan,
    })
}

/// Reports every period due at `now`; one round, safe to repeat (and to run after a crash).
pub async fn report_due(ctx: &Context, store: &AnyUsageStore, now: Timestamp) -> ReportRound {
    let mut round = ReportRound::default();
    let Some(hubspot) = &ctx.billing else {
        return round;
    };
    let since = oldest_reportable(now);
    let done: BTreeSet<(String, UsagePeriod)> = match store.reports(None, since).await {
        Ok(reports) => reports
            .into_iter()
            .map(|r| (r.key.subscription, r.key.period))
            .collect(),
        Err(e) => {
            round
                .failures
                .push(format!("reading reported periods: {e}"));
            return round;
        }
    };
    for subscription in ctx.stores.subscriptions.state() {
        let Some(m) = metered(ctx, subscription) else {
            continue;
        };
        let started = m
            .subscription
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(now, |t| t.0);
        let reported: BTreeSet<UsagePeriod> = done
            .iter()
            .filter(|(uid, _)| uid == &m.uid)
            .map(|(_, period)| *period)
            .collect();
        let settle = ctx.config.usage_report.settle;
        for period in due_periods(started, &reported, now, settle) {
            match report_period(hubspot, store, &m, period, now).await {
                Ok((report, unbilled)) => {
                    announce(ctx, &m, &report).await;
                    if let Some(quantity) = unbilled {
                        warn_unbilled(ctx, &m, &report, quantity).await;
                    }
                    round.reported.push(report);
                }
                Err(why) => {
                    let name = object_name(&m.subscription);
                    tracing::warn!(subscription = %name, %period, error = %why, "usage period not reported; retrying next round");
                    ctx.event(
                        m.subscription.as_ref(),
                        EventType::Warning,
                        USAGE_REPORT_FAILED,
                        "ReportUsage",
                        format!("usage of {period} not reported yet (retried): {why}"),
                    )
                    .await;
                    round.failures.push(format!("{name} {period}: {why}"));
                }
            }
        }
    }
    round
}

fn object_name(subscription: &TenantSubscription) -> String {
    format!(
        "{}/{}",
        subscription.namespace().unwrap_or_default(),
        subscription.name_any()
    )
}

/// Bills one period (HubSpot first, then the store's record) and returns what is recorded, with
/// the period's quantity once recorded when usage arrived meanwhile (it is not billed).
async fn report_period(
    hubspot: &HubSpotClient,
    store: &AnyUsageStore,
    m: &Metered,
    period: UsagePeriod,
    now: Timestamp,
) -> Result<(PeriodReport, Option<f64>), String> {
    let Some(price) = &m.plan.metered else {
        return Err("the plan has no metered price".into());
    };
    let query = MeterQuery {
        tenant: &m.tenant,
        meter: price.meter.as_str(),
        period,
        property: price.value_property.as_deref(),
    };
    let quantity_now = || async {
        let totals = store.totals(query).await.map_err(|e| e.to_string())?;
        Ok::<f64, String>(totals.quantity(price.aggregation))
    };
    let quantity = quantity_now().await?;
    let bill = period_bill(price, quantity);
    let currency = &m.plan.pricing.currency;
    let key = period_key(&m.uid, period);
    let reference = match &bill {
        // Nothing billable: recorded, but HubSpot gets no empty line item.
        None => String::new(),
        Some(bill) => {
            // Credits first, decided once and recorded before HubSpot is asked: every later
            // attempt bills the same remainder.
            let settled = settle_once(store, &m.tenant, &key, currency, bill.amount_micros, now)
                .await
                .map_err(|e| e.to_string())?;
            let line = billed_line(bill, settled.credited_micros);
            let credits = if settled.credited_micros > 0 {
                format!(
                    "; prepaid credits applied {}",
                    format_micros(settled.credited_micros)
                )
            } else {
                String::new()
            };
            let request = UsageLineItemRequest {
                deal_id: m.deal_id.clone(),
                period_key: key.clone(),
                subscription_uid: m.uid.clone(),
                name: format!(
                    "{} {}: {} usage {period}",
                    m.subscription.spec.listing.as_str(),
                    m.plan.name.as_str(),
                    price.meter.as_str()
                ),
                description: format!(
                    "{quantity} {} used, {} included; billed {} {currency}{credits}",
                    price.unit, price.included_quantity, bill.breakdown
                ),
                quantity: line.quantity.to_string(),
                price: line.unit_price.clone(),
                credit: line.discount.map(|discount| UsageCredit {
                    discount,
                    total: format_micros(settled.credited_micros),
                }),
            };
            hubspot
                .ensure_usage_line_item(&request)
                .await
                .map_err(|e| e.to_string())?
                .id
        }
    };
    let report = PeriodReport {
        key: ReportKey {
            tenant: m.tenant.clone(),
            meter: price.meter.as_str().to_string(),
            period,
            subscription: m.uid.clone(),
        },
        quantity,
        billable_units: bill.as_ref().map_or(0, |b| b.billable_units),
        amount: bill.as_ref().map_or_else(|| "0".into(), |b| b.amount()),
        reference,
        reported_at: now,
    };
    let recorded_now = store
        .mark_reported(&report)
        .await
        .map_err(|e| e.to_string())?;
    // From here on the API refuses the period's events; any that came in meanwhile show here.
    let unbilled = if recorded_now {
        Some(quantity_now().await?).filter(|after| *after != quantity)
    } else {
        None
    };
    Ok((report, unbilled))
}

/// The Warning Event and log line of usage recorded while its period was reported.
async fn warn_unbilled(ctx: &Context, m: &Metered, report: &PeriodReport, quantity: f64) {
    let name = object_name(&m.subscription);
    let period = report.key.period;
    let note = format!(
        "usage of {period} reached {quantity} while it was reported with {}: the difference \
         arrived during the report and is not billed",
        report.quantity
    );
    tracing::warn!(subscription = %name, %period, reported = report.quantity, quantity, "usage arrived while its period was reported");
    ctx.event(
        m.subscription.as_ref(),
        EventType::Warning,
        USAGE_UNBILLED,
        "ReportUsage",
        note,
    )
    .await;
}

/// The Event and the audit record of a reported period.
async fn announce(ctx: &Context, m: &Metered, report: &PeriodReport) {
    let unit = m.plan.metered.as_ref().map_or("", |p| p.unit.as_str());
    let currency = &m.plan.pricing.currency;
    let period = report.key.period;
    let note = if report.reference.is_empty() {
        format!(
            "usage of {period}: {} {unit}, nothing billable",
            report.quantity
        )
    } else {
        format!(
            "usage of {period}: {} {unit}, {} billable, {} {currency} on HubSpot line item {}",
            report.quantity, report.billable_units, report.amount, report.reference
        )
    };
    ctx.event(
        m.subscription.as_ref(),
        EventType::Normal,
        USAGE_REPORTED,
        "ReportUsage",
        note.clone(),
    )
    .await;
    ctx.record(crate::audit_log::AuditEntry::new(
        ACTOR,
        "billing.usage",
        object_name(&m.subscription),
        note,
        json!({"uid": m.uid, "period": period.to_string(), "lineItem": report.reference,
               "quantity": report.quantity, "amount": report.amount}),
    ));
}

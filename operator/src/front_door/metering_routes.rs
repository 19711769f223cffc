//! Usage-based plans on the API: `POST /v1/usage` takes usage events (CloudEvents JSON) from a
//! tenant's backend key, `GET /v1/tenants/{t}/usage` shows the period so far, and
//! [`allowances`] gathers what entitlement checks of hard-limited features depend on, and
//! [`refresh_usage_limits`] tells the entitlement streams when one is used up or lifted. The
//! decisions are [`crate::metering::event`], [`crate::metering::view`] and
//! [`super::decide::within_allowance`]; these handlers gather and render.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use kube::ResourceExt;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::auth::Access;
use super::decide::{Allowances, EntitlementView, UsageAllowance, hard_limited};
use super::routes::{FrontDoor, rest_refusal};
use crate::api::listing::{Listing, Plan};
use crate::controllers::tenant_rbac::namespace_name;
use crate::controllers::tenant_subscription::tenant_of;
use crate::credits::CreditStore;
use crate::credits::view::credits_view;
use crate::metering::event::{EventProblem, parse_events};
use crate::metering::late::{LateEvent, late_events, months_to_check, refuse_late};
use crate::metering::meters::Meters;
use crate::metering::report::oldest_reportable;
use crate::metering::view::{MeterUsage, ReportedPeriod, TenantUsage, meter_usage};
use crate::metering::{MeterCatalog, MeterQuery, Recorded, StoreError, UsagePeriod, UsageStore};

/// The answer of `POST /v1/usage`: how many events were new and how many were seen before.
#[derive(Serialize, JsonSchema)]
pub struct UsageAccepted {
    pub accepted: u64,
    pub duplicates: u64,
}

impl From<Recorded> for UsageAccepted {
    fn from(r: Recorded) -> Self {
        UsageAccepted {
            accepted: r.accepted,
            duplicates: r.duplicates,
        }
    }
}

/// A refused `POST /v1/usage`: which event (`index`) and which `field`, and why.
#[derive(Serialize, JsonSchema)]
pub struct UsageRefused {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
    /// With code `PeriodReported`: every event of a month already reported to billing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late: Vec<LateEvent>,
}

pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/v1/usage", post(post_usage))
        .route("/v1/tenants/{tenant}/usage", get(tenant_usage))
}

fn refused(problem: EventProblem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = UsageRefused {
        code: problem.code.to_string(),
        message: problem.message,
        index: problem.index,
        field: problem.field,
        late: problem.late,
    };
    (status, axum::Json(body)).into_response()
}

pub(super) fn unavailable(why: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        axum::Json(json!({"code": "Unavailable", "message": why})),
    )
        .into_response()
}

/// The store, or `None` when metering is off (answer [`metering_off`]).
pub(super) fn meters_of(door: &FrontDoor) -> Option<&Arc<Meters>> {
    door.meters.as_ref()
}

pub(super) fn metering_off() -> Response {
    unavailable("usage metering is off: the API runs without --usage-store".into())
}

async fn post_usage(State(door): State<FrontDoor>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match door.auth.caller(&headers).await {
        Ok(caller) => caller,
        Err(refusal) => return rest_refusal(refusal),
    };
    let Some(meters) = meters_of(&door) else {
        return metering_off();
    };
    let listings = door.stores.listings.state();
    let catalog = MeterCatalog::of(listings.iter().map(|l| &l.spec));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let now = Timestamp::now();
    let events = match parse_events(&body, content_type, caller.key_tenant(), &catalog, now) {
        Ok(events) => events,
        Err(problem) => return refused(problem),
    };
    // A key is scoped already (parse_events refused other tenants); a token is checked for
    // each tenant its events name.
    let tenants: BTreeSet<&str> = events.iter().map(|e| e.tenant.as_str()).collect();
    for tenant in tenants {
        match door.auth.allows(&caller, tenant, Access::ReportUsage).await {
            Ok(true) => {}
            Ok(false) => {
                let index = events.iter().position(|e| e.tenant == tenant);
                return refused(EventProblem {
                    status: 403,
                    code: "Forbidden",
                    index,
                    field: "subject".into(),
                    message: format!("you may not report usage for tenant {tenant:?}"),
                    late: Vec::new(),
                });
            }
            Err(refusal) => return rest_refusal(refusal),
        }
    }
    // Usage of a month already billed would be stored and never billed: refused instead.
    let mut reported = Vec::new();
    for (tenant, since) in months_to_check(&events, now) {
        match meters.store().reports(Some(tenant), since).await {
            Ok(reports) => reported.extend(reports),
            Err(e) => return unavailable(e.to_string()),
        }
    }
    if let Some(problem) = refuse_late(late_events(&events, &reported)) {
        return refused(problem);
    }
    match meters.record(&events).await {
        Ok(recorded) => {
            if recorded.accepted > 0 {
                let tenants: BTreeSet<&str> = events.iter().map(|e| e.tenant.as_str()).collect();
                for tenant in tenants {
                    refresh_usage_limits(&door, tenant).await;
                }
            }
            (
                StatusCode::ACCEPTED,
                axum::Json(UsageAccepted::from(recorded)),
            )
                .into_response()
        }
        Err(e) => unavailable(e.to_string()),
    }
}

/// How often the hard limits of every metered tenant are read again for the entitlement
/// streams: a new period lifts them, and another replica's events may have reached them.
pub const USAGE_LIMIT_RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Tells the tenant's entitlement streams which hard-limited features are used up now (the
/// index numbers a change only when one flips).
pub(super) async fn refresh_usage_limits(door: &FrontDoor, tenant: &str) {
    if door.meters.is_none() {
        return;
    }
    let features = door.index().features(tenant);
    if features.is_empty() {
        return;
    }
    let allowances = allowances(door, tenant, &features, None).await;
    let limits = features
        .iter()
        .map(|view| {
            let used_up = allowances
                .get(&view.feature)
                .is_some_and(UsageAllowance::exhausted);
            (view.feature.clone(), used_up)
        })
        .collect();
    door.index().set_usage_limits(tenant, &limits);
}

/// Refreshes the hard limits of every tenant on a hard-limited plan every
/// [`USAGE_LIMIT_RECHECK`] until `stop` (with a usage store only).
pub async fn watch_usage_limits(door: FrontDoor, stop: impl std::future::Future<Output = ()>) {
    if door.meters.is_none() {
        return;
    }
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(USAGE_LIMIT_RECHECK) => {}
        }
        let tenants: BTreeSet<String> = door
            .stores
            .subscriptions
            .state()
            .iter()
            .filter(|s| {
                door.stores
                    .listing(s.spec.listing.as_str())
                    .and_then(|l| {
                        plan_in(&l, s.spec.plan.as_str())
                            .and_then(|p| p.metered.as_ref())
                            .map(|m| m.hard_limit)
                    })
                    .unwrap_or(false)
            })
            .filter_map(|s| Some(tenant_of(&s.namespace()?)?.to_string()))
            .collect();
        for tenant in tenants {
            refresh_usage_limits(&door, &tenant).await;
        }
    }
}

/// The tenant's subscriptions with the Listing and plan name of each.
fn subscribed_plans(door: &FrontDoor, tenant: &str) -> Vec<(String, Arc<Listing>, String)> {
    door.stores
        .subscriptions_in(&namespace_name(tenant))
        .iter()
        .filter_map(|s| {
            let listing = door.stores.listing(s.spec.listing.as_str())?;
            Some((s.name_any(), listing, s.spec.plan.as_str().to_string()))
        })
        .collect()
}

fn plan_in<'a>(listing: &'a Listing, plan: &str) -> Option<&'a Plan> {
    listing.spec.plans.iter().find(|p| p.name.as_str() == plan)
}

async fn tenant_usage(
    State(door): State<FrontDoor>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = door.auth.may_read(&headers, &tenant).await {
        return rest_refusal(refusal);
    }
    let Some(meters) = meters_of(&door) else {
        return metering_off();
    };
    let period = UsagePeriod::containing(Timestamp::now());
    let since = oldest_reportable(Timestamp::now());
    let subscriptions = door.stores.subscriptions_in(&namespace_name(&tenant));
    let reported = match meters.store().reports(Some(&tenant), since).await {
        Ok(reports) => reports
            .into_iter()
            .map(|report| {
                let name = subscriptions
                    .iter()
                    .find(|s| s.metadata.uid.as_ref() == Some(&report.key.subscription))
                    .map(|s| s.name_any());
                ReportedPeriod::of(report, name)
            })
            .collect(),
        Err(e) => return unavailable(e.to_string()),
    };
    let credits = match meters.store().ledger(&tenant).await {
        Ok(ledger) => credits_view(&tenant, &ledger, Timestamp::now(), false).balances,
        Err(e) => return unavailable(e.to_string()),
    };
    let usage = match meter_usages(meters, &door, &tenant, period).await {
        Ok(meters) => TenantUsage {
            tenant: tenant.clone(),
            period: period.into(),
            meters,
            reported,
            credits,
        },
        Err(e) => return unavailable(e.to_string()),
    };
    axum::Json(usage).into_response()
}

/// Each metered subscription of `tenant` in `period`, from `meters` (also the tenant health
/// report's usage against included quantities).
pub(crate) async fn meter_usages(
    meters: &Meters,
    door: &FrontDoor,
    tenant: &str,
    period: UsagePeriod,
) -> Result<Vec<MeterUsage>, StoreError> {
    let mut usage = Vec::new();
    for (subscription, listing, plan) in subscribed_plans(door, tenant) {
        let Some(plan) = plan_in(&listing, &plan) else {
            continue;
        };
        let Some(metered) = &plan.metered else {
            continue;
        };
        let query = MeterQuery {
            tenant,
            meter: metered.meter.as_str(),
            period,
            property: metered.value_property.as_deref(),
        };
        let totals = meters.totals(query).await?;
        usage.extend(meter_usage(
            &subscription,
            &listing.name_any(),
            plan,
            totals,
        ));
    }
    Ok(usage)
}

/// The hard-limited allowances of the tenant's `features` this period (only `feature`'s, when
/// given). When the store cannot answer, the check goes on without them (the features stay
/// usable: an outage of the usage store must not switch paid features off).
pub(super) async fn allowances(
    door: &FrontDoor,
    tenant: &str,
    features: &[EntitlementView],
    feature: Option<&str>,
) -> Allowances {
    let mut allowances = Allowances::new();
    let Some(meters) = &door.meters else {
        return allowances;
    };
    let relevant: Vec<EntitlementView> = features
        .iter()
        .filter(|v| feature.is_none_or(|f| v.feature == f))
        .cloned()
        .collect();
    if relevant.is_empty() {
        return allowances;
    }
    let plans = subscribed_plans(door, tenant);
    let plan_of = |subscription: &str| {
        plans
            .iter()
            .find(|(name, _, _)| name == subscription)
            .and_then(|(_, listing, plan)| plan_in(listing, plan))
    };
    let period = UsagePeriod::containing(Timestamp::now());
    for (feature, metered) in hard_limited(&relevant, plan_of) {
        let query = MeterQuery {
            tenant,
            meter: metered.meter.as_str(),
            period,
            property: metered.value_property.as_deref(),
        };
        match meters.totals(query).await {
            Ok(totals) => {
                allowances.insert(
                    feature,
                    UsageAllowance {
                        meter: metered.meter.as_str().to_string(),
                        used: totals.quantity(metered.aggregation),
                        included: metered.included_quantity,
                    },
                );
            }
            Err(e) => {
                tracing::warn!(%tenant, %feature, error = %e, "usage totals unavailable; the hard limit is not applied")
            }
        }
    }
    allowances
}

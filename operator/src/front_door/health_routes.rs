//! Tenant health and revenue for superadmins: `GET /v1/health/tenants` and
//! `GET /v1/revenue/mrr`, as JSON or CSV (`Accept: text/csv` or `?format=csv`). The handlers
//! gather the cached objects, the HealthPolicies (read as the caller) and this period's usage;
//! [`crate::health`] decides.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use kube::ResourceExt;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::auth::Caller;
use super::console::routes::{list_as_caller, superadmin};
use super::metering_routes::meter_usages;
use super::routes::FrontDoor;
use crate::api::HealthPolicy;
use crate::controllers::tenant_rbac::namespace_name;
use crate::health::assess::age_days;
use crate::health::csv::{health_csv, revenue_csv};
use crate::health::filter::{
    FilterProblem, HealthFilter, RevenueFilter, health_filter, revenue_filter, wants_csv,
};
use crate::health::policy::policy_book;
use crate::health::revenue::monthly_billing;
use crate::health::{PolicyProblem, Revenue, TenantHealth, assess, mrr};
use crate::metering::UsagePeriod;

pub fn routes() -> Router<FrontDoor> {
    Router::new()
        .route("/v1/health/tenants", get(health_tenants))
        .route("/v1/revenue/mrr", get(revenue_mrr))
}

/// The answer of `GET /v1/health/tenants`.
#[derive(Serialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub generated_at: Timestamp,
    pub tenants: Vec<TenantHealth>,
    /// HealthPolicies (or parts of them) not applied, and why.
    pub policy_problems: Vec<PolicyProblem>,
    /// False when usage against included quantities is missing: the API runs without
    /// `--usage-store`, or the store did not answer.
    pub usage_available: bool,
}

/// The answer of `GET /v1/revenue/mrr`.
#[derive(Serialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct RevenueReport {
    pub generated_at: Timestamp,
    #[serde(flatten)]
    pub revenue: Revenue,
}

/// A refused query parameter: 400 naming it in `field` (the API's one error shape).
pub(crate) fn bad_parameter(problem: FilterProblem) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(
            json!({"code": "InvalidParameter", "field": problem.parameter,
            "message": format!("{}: {}", problem.parameter, problem.reason)}),
        ),
    )
        .into_response()
}

fn csv_response(body: String, file: &str) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// The tenants `filter` admits, with their health at `now`. HealthPolicies are read as the
/// caller; when they cannot be read the built-in thresholds apply and the problem is reported.
pub(crate) async fn health_report(
    door: &FrontDoor,
    caller: &Caller,
    filter: &HealthFilter,
    now: Timestamp,
) -> HealthReport {
    let listed = list_as_caller::<HealthPolicy>(door, caller).await;
    let (policies, read_problem) = match listed {
        Ok(items) => (
            items
                .into_iter()
                .map(|p| (p.name_any(), p.spec))
                .collect::<Vec<_>>(),
            None,
        ),
        Err(e) => (
            Vec::new(),
            Some(PolicyProblem {
                policy: String::new(),
                field: String::new(),
                message: format!(
                    "HealthPolicies could not be read, built-in thresholds apply: {e}"
                ),
            }),
        ),
    };
    let mut book = policy_book(&policies);
    book.problems.extend(read_problem);
    let period = UsagePeriod::containing(now);
    let mut usage_available = door.meters.is_some();
    let mut tenants = Vec::new();
    let mut all = door.stores.tenants.state();
    all.sort_by_key(|t| t.name_any());
    for tenant in all {
        let age = age_days(&tenant, now);
        let spec = &tenant.spec;
        if !filter.admits_tenant(
            &spec.base_plan,
            spec.region.as_deref(),
            spec.segment.as_deref(),
            age,
        ) {
            continue;
        }
        let name = tenant.name_any();
        let namespace = namespace_name(&name);
        let subscriptions = door.stores.subscriptions_in(&namespace);
        let entitlements = door.stores.entitlements_in(&namespace);
        let meters = match &door.meters {
            Some(meters) => match meter_usages(meters, door, &name, period).await {
                Ok(usage) => usage,
                Err(e) => {
                    tracing::warn!(tenant = %name, error = %e, "usage totals unavailable for the health report");
                    usage_available = false;
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let health = assess(
            &tenant,
            &subscriptions.iter().map(Arc::as_ref).collect::<Vec<_>>(),
            &entitlements.iter().map(Arc::as_ref).collect::<Vec<_>>(),
            &meters,
            book.for_plan(&spec.base_plan),
            now,
        );
        if filter.admits_verdict(&health) {
            tenants.push(health);
        }
    }
    HealthReport {
        generated_at: now,
        tenants,
        policy_problems: book.problems,
        usage_available,
    }
}

/// The MRR of the subscriptions `filter` admits.
pub(crate) fn revenue_report(door: &FrontDoor, filter: &RevenueFilter) -> Revenue {
    let subscriptions = door.stores.subscriptions.state();
    mrr(subscriptions
        .iter()
        .filter_map(|s| monthly_billing(s, |name| door.stores.listing(name)))
        .filter(|b| filter.admits(b)))
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

async fn health_tenants(
    State(door): State<FrontDoor>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let caller = match superadmin(&door, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let (filter, csv) =
        match health_filter(&query).and_then(|f| Ok((f, wants_csv(&query, accept(&headers))?))) {
            Ok(found) => found,
            Err(problem) => return bad_parameter(problem),
        };
    let report = health_report(&door, &caller, &filter, Timestamp::now()).await;
    if csv {
        csv_response(health_csv(&report.tenants), "tenant-health.csv")
    } else {
        axum::Json(report).into_response()
    }
}

async fn revenue_mrr(
    State(door): State<FrontDoor>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = superadmin(&door, &headers).await {
        return response;
    }
    let (filter, csv) =
        match revenue_filter(&query).and_then(|f| Ok((f, wants_csv(&query, accept(&headers))?))) {
            Ok(found) => found,
            Err(problem) => return bad_parameter(problem),
        };
    let revenue = revenue_report(&door, &filter);
    if csv {
        csv_response(revenue_csv(&revenue), "mrr.csv")
    } else {
        axum::Json(RevenueReport {
            generated_at: Timestamp::now(),
            revenue,
        })
        .into_response()
    }
}

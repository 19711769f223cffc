//! The query parameters of `GET /v1/health/tenants` and `GET /v1/revenue/mrr`, checked: an
//! unknown parameter or a bad value is refused naming the parameter and the reason.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::assess::{TenantHealth, Verdict};
use super::revenue::MonthlyBilling;

/// A refused parameter.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct FilterProblem {
    pub parameter: String,
    pub reason: String,
}

fn problem(parameter: &str, reason: impl Into<String>) -> FilterProblem {
    FilterProblem {
        parameter: parameter.to_string(),
        reason: reason.into(),
    }
}

/// Which tenants to show (also the query's schema in the OpenAPI document); every filter
/// given must match. `format=csv` (or `Accept: text/csv`) answers CSV.
#[derive(JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HealthFilter {
    /// The Tenant's base plan (spec.basePlan), e.g. Professional.
    pub plan: Option<String>,
    /// The Tenant's region (spec.region).
    pub region: Option<String>,
    /// The Tenant's segment (spec.segment).
    pub segment: Option<String>,
    /// Tenants at least this many whole days old.
    #[schemars(range(min = 0, max = 36500))]
    pub min_age_days: Option<i64>,
    /// Tenants at most this many whole days old.
    #[schemars(range(min = 0, max = 36500))]
    pub max_age_days: Option<i64>,
    /// Only tenants with this verdict.
    pub verdict: Option<Verdict>,
}

/// Which subscriptions count (also the query's schema in the OpenAPI document). `format=csv`
/// (or `Accept: text/csv`) answers CSV.
#[derive(JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct RevenueFilter {
    /// Only this Listing's subscriptions.
    pub listing: Option<String>,
    /// Only prices in this ISO 4217 currency, e.g. USD.
    pub currency: Option<String>,
}

pub const HEALTH_PARAMETERS: &[&str] = &[
    "plan",
    "region",
    "segment",
    "minAgeDays",
    "maxAgeDays",
    "verdict",
    "format",
];
pub const REVENUE_PARAMETERS: &[&str] = &["listing", "currency", "format"];

fn known(query: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), FilterProblem> {
    match query.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(problem(
            unknown,
            format!("unknown parameter; use {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A parameter's value; empty counts as absent (an HTML form sends empty fields).
fn text(query: &BTreeMap<String, String>, name: &str) -> Option<String> {
    query
        .get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn days(query: &BTreeMap<String, String>, name: &str) -> Result<Option<i64>, FilterProblem> {
    text(query, name)
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|d| (0..=36_500).contains(d))
                .ok_or_else(|| {
                    problem(
                        name,
                        format!("{v:?} is not a whole number of days from 0 to 36500"),
                    )
                })
        })
        .transpose()
}

/// The tenant filter in `query`.
pub fn health_filter(query: &BTreeMap<String, String>) -> Result<HealthFilter, FilterProblem> {
    known(query, HEALTH_PARAMETERS)?;
    let verdict = text(query, "verdict")
        .map(|v| {
            Verdict::ALL
                .into_iter()
                .find(|k| k.name() == v)
                .ok_or_else(|| {
                    problem(
                        "verdict",
                        format!("{v:?} is not AtRisk, UpsellReady or Healthy"),
                    )
                })
        })
        .transpose()?;
    let filter = HealthFilter {
        plan: text(query, "plan"),
        region: text(query, "region"),
        segment: text(query, "segment"),
        min_age_days: days(query, "minAgeDays")?,
        max_age_days: days(query, "maxAgeDays")?,
        verdict,
    };
    if let (Some(min), Some(max)) = (filter.min_age_days, filter.max_age_days)
        && min > max
    {
        return Err(problem(
            "maxAgeDays",
            format!("{max} is below minAgeDays ({min})"),
        ));
    }
    Ok(filter)
}

/// The revenue filter in `query`.
pub fn revenue_filter(query: &BTreeMap<String, String>) -> Result<RevenueFilter, FilterProblem> {
    known(query, REVENUE_PARAMETERS)?;
    let currency = text(query, "currency");
    if let Some(c) = &currency
        && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(problem(
            "currency",
            format!("{c:?} is not an ISO 4217 code such as USD"),
        ));
    }
    Ok(RevenueFilter {
        listing: text(query, "listing"),
        currency,
    })
}

/// Whether the answer is CSV: `format=csv`, or no `format` and an `Accept` naming text/csv.
pub fn wants_csv(
    query: &BTreeMap<String, String>,
    accept: Option<&str>,
) -> Result<bool, FilterProblem> {
    match text(query, "format").as_deref() {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(problem("format", format!("{other:?} is not json or csv"))),
        None => Ok(accept.is_some_and(|a| {
            a.split(',').any(|part| {
                part.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "text/csv")
            })
        })),
    }
}

impl HealthFilter {
    /// Whether the tenant's facts match (the verdict is checked by [`Self::admits_verdict`]
    /// once it is known, so the others can skip the work).
    pub fn admits_tenant(
        &self,
        base_plan: &str,
        region: Option<&str>,
        segment: Option<&str>,
        age_days: Option<i64>,
    ) -> bool {
        let same = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        same(&self.plan, Some(base_plan))
            && same(&self.region, region)
            && same(&self.segment, segment)
            && self
                .min_age_days
                .is_none_or(|min| age_days.is_some_and(|a| a >= min))
            && self
                .max_age_days
                .is_none_or(|max| age_days.is_some_and(|a| a <= max))
    }

    pub fn admits_verdict(&self, health: &TenantHealth) -> bool {
        self.verdict.is_none_or(|v| v == health.verdict)
    }
}

impl RevenueFilter {
    pub fn admits(&self, billing: &MonthlyBilling) -> bool {
        self.listing.as_deref().is_none_or(|l| l == billing.listing)
            && self
                .currency
                .as_deref()
                .is_none_or(|c| c == billing.currency)
    }
}

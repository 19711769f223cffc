//! Tenant health and revenue as CSV (RFC 4180), for spreadsheets: a field with a comma, a
//! quote or a line break is quoted, and one that a spreadsheet would run as a formula (`=`,
//! `+`, `-`, `@` first) is prefixed with `'`, since tenant names come from customers.

use std::fmt::Write;

use super::assess::TenantHealth;
use super::revenue::Revenue;

/// `value` as one CSV field.
pub fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn row(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
    let _ = write!(out, "{}\r\n", line.join(","));
}

fn or_empty<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// One row per tenant.
pub fn health_csv(tenants: &[TenantHealth]) -> String {
    let mut out = String::new();
    let header = [
        "tenant",
        "displayName",
        "basePlan",
        "region",
        "segment",
        "ageDays",
        "addOnsActive",
        "featuresUsable",
        "featuresAdopted",
        "adoptionPercent",
        "maxUsagePercent",
        "paymentProblems",
        "cancellations",
        "verdict",
        "reasons",
        "policy",
    ];
    row(&mut out, &header.map(String::from));
    for t in tenants {
        row(
            &mut out,
            &[
                t.tenant.clone(),
                t.display_name.clone(),
                t.base_plan.clone(),
                or_empty(t.region.as_ref()),
                or_empty(t.segment.as_ref()),
                or_empty(t.age_days),
                t.add_ons_active.len().to_string(),
                t.features.len().to_string(),
                t.features_adopted().to_string(),
                or_empty(t.adoption_percent),
                or_empty(t.max_usage_percent()),
                t.payment_problems.to_string(),
                t.cancellations.to_string(),
                t.verdict.name().to_string(),
                t.reasons.join("; "),
                t.policy.clone(),
            ],
        );
    }
    out
}

/// One row per listing, plan and currency.
pub fn revenue_csv(revenue: &Revenue) -> String {
    let mut out = String::new();
    row(
        &mut out,
        &["listing", "plan", "currency", "subscriptions", "mrr"].map(String::from),
    );
    for l in &revenue.lines {
        row(
            &mut out,
            &[
                l.listing.clone(),
                l.plan.clone(),
                l.currency.clone(),
                l.subscriptions.to_string(),
                l.mrr.clone(),
            ],
        );
    }
    out
}

//! One tenant's health from its objects: add-ons in service, entitlement checks per feature
//! (adopted when checked within the policy's adoption window), usage against included
//! quantities this period, payment problems and cancellations within the history window, and
//! the verdict the policy's thresholds give. Pure: `now` is an argument.

use jiff::{SignedDuration, Timestamp};
use schemars::JsonSchema;
use serde::Serialize;

use crate::api::health_policy::HealthPolicySpec;
use crate::api::tenant_subscription::Phase;
use crate::api::{Entitlement, Tenant, TenantSubscription};
use crate::metering::view::MeterUsage;

/// What the thresholds make of a tenant.
#[derive(Serialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    AtRisk,
    UpsellReady,
    Healthy,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::AtRisk, Verdict::UpsellReady, Verdict::Healthy];

    /// The name in the API and in query parameters.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::AtRisk => "AtRisk",
            Verdict::UpsellReady => "UpsellReady",
            Verdict::Healthy => "Healthy",
        }
    }

    /// As people read it, e.g. on a badge.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::AtRisk => "At risk",
            Verdict::UpsellReady => "Ready for upsell",
            Verdict::Healthy => "Healthy",
        }
    }
}

/// One usable feature and how product code checks it.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeatureAdoption {
    pub feature: String,
    /// Checks counted since the entitlement was created.
    pub checks: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<Timestamp>,
    /// Checked within the adoption window.
    pub adopted: bool,
}

/// One metered subscription's usage this period against its included quantity.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IncludedUsage {
    pub subscription: String,
    pub listing: String,
    pub plan: String,
    pub meter: String,
    pub quantity: f64,
    pub included_quantity: i64,
    /// Quantity as a percent of the included quantity (absent when nothing is included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
}

/// A tenant's health.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantHealth {
    pub tenant: String,
    pub display_name: String,
    pub base_plan: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Whole days since the Tenant was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_days: Option<i64>,
    /// Listings of the subscriptions in service (active, trialing, or cancelling at period end).
    pub add_ons_active: Vec<String>,
    pub features: Vec<FeatureAdoption>,
    /// Adopted features as a percent of usable ones (absent without any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adoption_percent: Option<u32>,
    pub usage: Vec<IncludedUsage>,
    /// Subscriptions suspended, past due or unpaid now, or suspended within the history window.
    pub payment_problems: u32,
    /// Subscriptions whose cancellation was asked for or done within the history window.
    pub cancellations: u32,
    pub verdict: Verdict,
    /// Why, one sentence per rule that fired (none when Healthy).
    pub reasons: Vec<String>,
    /// The HealthPolicy whose thresholds applied (`built-in` without one).
    pub policy: String,
}

impl TenantHealth {
    /// The highest usage percent of any metered subscription.
    pub fn max_usage_percent(&self) -> Option<u32> {
        self.usage.iter().filter_map(|u| u.percent).max()
    }

    pub fn features_adopted(&self) -> usize {
        self.features.iter().filter(|f| f.adopted).count()
    }
}

const IN_SERVICE: &[Phase] = &[Phase::Active, Phase::Trialing, Phase::CancelRequested];
const UNPAID_STATUSES: &[&str] = &["past_due", "unpaid"];

fn days(n: i32) -> SignedDuration {
    SignedDuration::from_hours(24 * i64::from(n))
}

fn percent(part: f64, whole: f64) -> Option<u32> {
    (whole > 0.0).then(|| (part / whole * 100.0).floor().clamp(0.0, u32::MAX as f64) as u32)
}

fn payment_problem(sub: &TenantSubscription, since: Timestamp) -> bool {
    let Some(status) = &sub.status else {
        return false;
    };
    status.phase == Some(Phase::Suspended)
        || status
            .hubspot
            .as_ref()
            .and_then(|h| h.status.as_deref())
            .is_some_and(|s| UNPAID_STATUSES.contains(&s))
        || status
            .history
            .iter()
            .any(|t| t.to == Phase::Suspended && t.at.0 >= since)
}

fn cancelled_since(sub: &TenantSubscription, since: Timestamp) -> bool {
    sub.status.as_ref().is_some_and(|s| {
        s.history.iter().any(|t| {
            matches!(t.to, Phase::CancelRequested | Phase::Cancelled)
                && t.from != Some(Phase::CancelRequested)
                && t.at.0 >= since
        })
    })
}

/// Whole days from the Tenant's creation to `now`.
pub fn age_days(tenant: &Tenant, now: Timestamp) -> Option<i64> {
    let created = tenant.metadata.creation_timestamp.as_ref()?.0;
    Some((now.duration_since(created).as_hours() / 24).max(0))
}

/// The health of `tenant` given its subscriptions, entitlements and this period's metered
/// usage (`meters`, from [`crate::metering::view::meter_usage`]), under `policy` (named
/// `policy_name`), at `now`.
pub fn assess(
    tenant: &Tenant,
    subscriptions: &[&TenantSubscription],
    entitlements: &[&Entitlement],
    meters: &[MeterUsage],
    (policy_name, policy): (&str, &HealthPolicySpec),
    now: Timestamp,
) -> TenantHealth {
    let adoption_since = now - days(policy.adoption_window_days);
    let history_since = now - days(policy.history_window_days);
    let mut add_ons_active: Vec<String> = subscriptions
        .iter()
        .filter(|s| {
            s.status
                .as_ref()
                .and_then(|st| st.phase)
                .is_some_and(|p| IN_SERVICE.contains(&p))
        })
        .map(|s| s.spec.listing.as_str().to_string())
        .collect();
    add_ons_active.sort();
    add_ons_active.dedup();
    let mut features: Vec<FeatureAdoption> = entitlements
        .iter()
        .filter(|e| e.spec.state.is_usable())
        .map(|e| {
            let usage = e.status.as_ref().and_then(|s| s.usage.as_ref());
            let last = usage.map(|u| u.last_checked_at.0);
            FeatureAdoption {
                feature: e.spec.feature.as_str().to_string(),
                checks: usage.map_or(0, |u| u.checks),
                last_checked_at: last,
                adopted: last.is_some_and(|at| at >= adoption_since),
            }
        })
        .collect();
    features.sort_by(|a, b| a.feature.cmp(&b.feature));
    let adopted = features.iter().filter(|f| f.adopted).count();
    let adoption_percent = percent(adopted as f64, features.len() as f64);
    let usage: Vec<IncludedUsage> = meters
        .iter()
        .map(|m| IncludedUsage {
            subscription: m.subscription.clone(),
            listing: m.listing.clone(),
            plan: m.plan.clone(),
            meter: m.meter.clone(),
            quantity: m.quantity,
            included_quantity: m.included_quantity,
            percent: percent(m.quantity, m.included_quantity as f64),
        })
        .collect();
    let count = |f: &dyn Fn(&TenantSubscription) -> bool| {
        subscriptions.iter().filter(|s| f(s)).count() as u32
    };
    let payment_problems = count(&|s| payment_problem(s, history_since));
    let cancellations = count(&|s| cancelled_since(s, history_since));

    let window = policy.adoption_window_days;
    let mut reasons = Vec::new();
    let risk = &policy.at_risk;
    if let Some(p) = adoption_percent.filter(|p| (*p as i32) < risk.min_adoption_percent) {
        reasons.push(format!(
            "{adopted} of {} features checked in {window} days ({p}%, below {}%)",
            features.len(),
            risk.min_adoption_percent
        ));
    }
    if payment_problems as i32 > risk.max_payment_problems {
        reasons.push(format!(
            "{payment_problems} subscription(s) with payment problems (more than {})",
            risk.max_payment_problems
        ));
    }
    if cancellations as i32 > risk.max_cancellations {
        reasons.push(format!(
            "{cancellations} cancellation(s) in {} days (more than {})",
            policy.history_window_days, risk.max_cancellations
        ));
    }
    let verdict = if !reasons.is_empty() {
        Verdict::AtRisk
    } else {
        let upsell = &policy.upsell_ready;
        if let Some(min) = upsell.min_usage_percent {
            for u in usage
                .iter()
                .filter(|u| u.percent.is_some_and(|p| p as i32 >= min))
            {
                reasons.push(format!(
                    "{} used {}% of the {} included in {} (at least {min}%)",
                    u.meter,
                    u.percent.unwrap_or_default(),
                    u.included_quantity,
                    u.listing
                ));
            }
        }
        if let Some((min, p)) = upsell.min_adoption_percent.zip(adoption_percent)
            && p as i32 >= min
        {
            reasons.push(format!(
                "{adopted} of {} features checked in {window} days ({p}%, at least {min}%)",
                features.len()
            ));
        }
        if reasons.is_empty() {
            Verdict::Healthy
        } else {
            Verdict::UpsellReady
        }
    };
    TenantHealth {
        tenant: tenant.metadata.name.clone().unwrap_or_default(),
        display_name: tenant.spec.display_name.clone(),
        base_plan: tenant.spec.base_plan.clone(),
        region: tenant.spec.region.clone(),
        segment: tenant.spec.segment.clone(),
        age_days: age_days(tenant, now),
        add_ons_active,
        features,
        adoption_percent,
        usage,
        payment_problems,
        cancellations,
        verdict,
        reasons,
        policy: policy_name.to_string(),
    }
}

//! Which thresholds apply to a tenant: the HealthPolicy naming its base plan, else the one
//! naming none (the default), else [`built_in`]. Two policies claiming the same base plan (or
//! two defaults) are a conflict: the first by name wins and the other is reported, naming the
//! object and the field, so the dashboard keeps working while the conflict is visible.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::api::health_policy::{AtRiskThresholds, HealthPolicySpec, UpsellThresholds};

/// The name reported for the built-in thresholds.
pub const BUILT_IN: &str = "built-in";

/// The thresholds used when no HealthPolicy applies.
pub fn built_in() -> HealthPolicySpec {
    HealthPolicySpec {
        base_plans: Vec::new(),
        adoption_window_days: 30,
        history_window_days: 90,
        at_risk: AtRiskThresholds {
            min_adoption_percent: 25,
            max_payment_problems: 0,
            max_cancellations: 0,
        },
        upsell_ready: UpsellThresholds {
            min_usage_percent: Some(80),
            min_adoption_percent: Some(75),
        },
    }
}

/// A HealthPolicy that was not applied, and why.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct PolicyProblem {
    /// The HealthPolicy's name.
    pub policy: String,
    /// The field at fault, e.g. `spec.basePlans[0]`.
    pub field: String,
    pub message: String,
}

/// The thresholds of every base plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyBook {
    by_plan: BTreeMap<String, (String, HealthPolicySpec)>,
    default: (String, HealthPolicySpec),
    pub problems: Vec<PolicyProblem>,
}

impl PolicyBook {
    /// The policy's name and thresholds for tenants on `base_plan`.
    pub fn for_plan(&self, base_plan: &str) -> (&str, &HealthPolicySpec) {
        let (name, spec) = self.by_plan.get(base_plan).unwrap_or(&self.default);
        (name, spec)
    }
}

/// The book of `policies` (name and spec each), in any order.
pub fn policy_book(policies: &[(String, HealthPolicySpec)]) -> PolicyBook {
    let mut sorted: Vec<&(String, HealthPolicySpec)> = policies.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut by_plan: BTreeMap<String, (String, HealthPolicySpec)> = BTreeMap::new();
    let mut default: Option<(String, HealthPolicySpec)> = None;
    let mut problems = Vec::new();
    for (name, spec) in sorted {
        if spec.base_plans.is_empty() {
            match &default {
                Some((first, _)) => problems.push(PolicyProblem {
                    policy: name.clone(),
                    field: "spec.basePlans".into(),
                    message: format!(
                        "HealthPolicy {first} is already the default (no basePlans); name the base plans this one is for"
                    ),
                }),
                None => default = Some((name.clone(), spec.clone())),
            }
            continue;
        }
        for (index, plan) in spec.base_plans.iter().enumerate() {
            if let Some((first, _)) = by_plan.get(&plan.0) {
                problems.push(PolicyProblem {
                    policy: name.clone(),
                    field: format!("spec.basePlans[{index}]"),
                    message: format!(
                        "base plan {:?} is already given thresholds by HealthPolicy {first}",
                        plan.0
                    ),
                });
            } else {
                by_plan.insert(plan.0.clone(), (name.clone(), spec.clone()));
            }
        }
    }
    PolicyBook {
        by_plan,
        default: default.unwrap_or_else(|| (BUILT_IN.to_string(), built_in())),
        problems,
    }
}

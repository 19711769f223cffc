//! Standard `metav1.Condition` lists: the CRD schema that lets server-side apply merge them per
//! `type`, and the pure helper that sets one condition without churning timestamps.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// Condition `status` values, as Kubernetes spells them.
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

/// Condition types, and which kinds carry them.
pub mod types {
    /// Every kind: the object is where its spec asks (a CatalogSource applied, a Tenant
    /// provisioned, a TenantSubscription in service, a SubscriptionAction handled).
    pub const READY: &str = "Ready";
    /// CatalogSource: the last attempted revision is invalid and nothing of it was applied.
    pub const STALLED: &str = "Stalled";
    /// TenantSubscription: the HubSpot billing record is in place.
    pub const BILLED: &str = "Billed";
    /// TenantSubscription: the features of the plan are granted as Entitlements.
    pub const ENTITLED: &str = "Entitled";
    /// TenantSubscription: HubSpot and the cluster agree (the last webhook or audit said so).
    pub const SYNCED: &str = "Synced";
    /// TenantSubscription of an Integration: the connection Secret is valid and the test
    /// connection succeeded for this generation.
    pub const CONNECTION_TESTED: &str = "ConnectionTested";
}

/// Condition reasons (UpperCamelCase, as Kubernetes wants them), grouped by the condition
/// type that uses them. A TenantSubscription's `Ready` reason is its phase or the refusal
/// that holds it (see `lifecycle`).
pub mod reasons {
    // CatalogSource Ready / Stalled.
    /// The revision was applied in full.
    pub const APPLIED: &str = "Applied";
    /// `spec.suspend` is set (CatalogSource), or the tenant is suspended (Tenant).
    pub const SUSPENDED: &str = "Suspended";
    /// The revision could not be fetched.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// The revision has lint errors; nothing was applied.
    pub const LINT_FAILED: &str = "LintFailed";
    /// Objects that left the revision still have live subscriptions and were kept.
    pub const PRUNE_REFUSED: &str = "PruneRefused";
    /// Objects of the revision are managed by another CatalogSource.
    pub const CONFLICT: &str = "Conflict";

    // Tenant Ready.
    /// Namespace and RBAC (and, with billing, the HubSpot company) are in place.
    pub const PROVISIONED: &str = "Provisioned";
    /// The HubSpot company or billing contact could not be upserted.
    pub const HUBSPOT_COMPANY_FAILED: &str = "HubSpotCompanyFailed";

    // SubscriptionAction Ready (the action's result).
    /// The step was carried out.
    pub const ACCEPTED: &str = "Accepted";
    /// The step does not fit the subscription's phase.
    pub const REFUSED: &str = "Refused";

    // TenantSubscription Billed.
    /// The HubSpot subscription exists and is not cancelled.
    pub const LIVE: &str = "Live";
    /// Billing was cancelled in HubSpot.
    pub const CANCELLED: &str = "Cancelled";
    /// No live HubSpot billing record.
    pub const MISSING: &str = "Missing";
    /// Billed: the subscription ended before anything was billed.
    pub const NOT_BILLED: &str = "NotBilled";
    /// The billing call failed (Billed), or the Entitlements could not be written (Entitled).
    pub const FAILED: &str = "Failed";

    // TenantSubscription Entitled.
    /// Every feature of the plan is granted (Active or Trialing).
    pub const GRANTED: &str = "Granted";
    /// The features were revoked (cancelled, rejected, failed, or suspended).
    pub const REVOKED: &str = "Revoked";
    /// Nothing is granted yet (the subscription is not in service yet).
    pub const PENDING: &str = "Pending";

    // TenantSubscription Synced.
    /// HubSpot agrees with the cluster.
    pub const IN_SYNC: &str = "InSync";
    /// Drift was found and healed.
    pub const HEALED: &str = "Healed";
    /// Drift was found and healing failed.
    pub const DRIFT_FOUND: &str = "DriftFound";

    // TenantSubscription ConnectionTested (False reasons are the refusals that follow).
    /// The settings are valid and the test connection succeeded.
    pub const SUCCEEDED: &str = "Succeeded";
    /// The listing's WizardConfig is not in the catalog (yet).
    pub const WIZARD_CONFIG_NOT_FOUND: &str = "WizardConfigNotFound";
    /// `spec.connection.secretRef` names no Secret.
    pub const CONNECTION_SECRET_NOT_FOUND: &str = "ConnectionSecretNotFound";
    /// The Secret does not validate against the WizardConfig's connection schema.
    pub const CONNECTION_INVALID: &str = "ConnectionInvalid";
    /// The WizardConfig's test connection failed or was refused.
    pub const CONNECTION_TEST_FAILED: &str = "ConnectionTestFailed";
}

/// Schema for `status.conditions`: a list-map keyed by `type`, so server-side apply merges
/// conditions one by one instead of replacing the whole list.
pub fn conditions_schema(generator: &mut SchemaGenerator) -> Schema {
    let item = Condition::json_schema(generator);
    json_schema!({
        "description": "Standard conditions (type, status, reason, message, lastTransitionTime, observedGeneration), one per type.",
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}

/// A condition to record; `set_condition` fills in the transition time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCondition<'a> {
    pub type_: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub message: String,
    pub observed_generation: Option<i64>,
}

/// Sets (or replaces) the condition of `new.type_`. The transition time moves to `now` only
/// when the status changes, so an unchanged condition serializes identically and the status
/// write can be skipped (no self-triggered reconcile loops). Returns true when anything changed.
pub fn set_condition(conditions: &mut Vec<Condition>, new: NewCondition<'_>, now: &Time) -> bool {
    let existing = conditions.iter().position(|c| c.type_ == new.type_);
    let last_transition_time = match existing.map(|i| &conditions[i]) {
        Some(old) if old.status == new.status => old.last_transition_time.clone(),
        _ => now.clone(),
    };
    let condition = Condition {
        type_: new.type_.to_owned(),
        status: new.status.to_owned(),
        reason: new.reason.to_owned(),
        message: new.message,
        observed_generation: new.observed_generation,
        last_transition_time,
    };
    match existing {
        Some(i) if conditions[i] == condition => false,
        Some(i) => {
            conditions[i] = condition;
            true
        }
        None => {
            conditions.push(condition);
            true
        }
    }
}

/// The condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    fn ready(status: &'static str, reason: &'static str, generation: i64) -> NewCondition<'static> {
        NewCondition {
            type_: "Ready",
            status,
            reason,
            message: format!("{reason} message"),
            observed_generation: Some(generation),
        }
    }

    #[test]
    fn adds_a_missing_condition_at_now() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            ready(TRUE, "Active", 1),
            &at(100)
        ));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, at(100));
    }

    #[test]
    fn same_status_keeps_transition_time_and_reports_no_change() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, ready(TRUE, "Active", 1), &at(100));
        assert!(!set_condition(
            &mut conditions,
            ready(TRUE, "Active", 1),
            &at(200)
        ));
        assert_eq!(conditions[0].last_transition_time, at(100));
    }

    #[test]
    fn new_generation_or_reason_changes_condition_but_not_transition_time() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, ready(TRUE, "Active", 1), &at(100));
        assert!(set_condition(
            &mut conditions,
            ready(TRUE, "Trialing", 2),
            &at(200)
        ));
        assert_eq!(conditions[0].last_transition_time, at(100));
        assert_eq!(conditions[0].observed_generation, Some(2));
        assert_eq!(conditions[0].reason, "Trialing");
    }

    #[test]
    fn status_flip_moves_transition_time() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, ready(TRUE, "Active", 1), &at(100));
        assert!(set_condition(
            &mut conditions,
            ready(FALSE, "Suspended", 1),
            &at(300)
        ));
        assert_eq!(conditions[0].last_transition_time, at(300));
        assert_eq!(
            find_condition(&conditions, "Ready").map(|c| c.status.as_str()),
            Some(FALSE)
        );
    }
}

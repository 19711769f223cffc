//! Standard `metav1.Condition` lists: the CRD schema that lets server-side apply merge them per
//! `type`, and the pure helper that sets one condition without churning timestamps.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// Condition `status` values, as Kubernetes spells them.
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

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

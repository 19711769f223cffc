//! The pure "report" step of a catalog sync: the CatalogSource status that follows an outcome.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::sync::SyncPlan;
use crate::api::catalog_source::{CatalogCounts, CatalogSourceStatus};
use crate::api::conditions::reasons::{
    APPLIED, CONFLICT, FETCH_FAILED, LINT_FAILED, PRUNE_REFUSED, SUSPENDED,
};
use crate::api::conditions::types::{READY, STALLED};
use crate::api::conditions::{FALSE, NewCondition, TRUE, find_condition, set_condition};

/// How a sync attempt ended.
#[derive(Debug)]
pub enum SyncOutcome<'a> {
    /// `spec.suspend` is set: nothing was fetched or applied.
    Suspended,
    /// The revision could not be fetched (network, auth, missing ref, timeout).
    FetchFailed { message: String },
    /// The revision was fetched but does not lint clean: nothing was applied.
    Invalid {
        revision: &'a str,
        errors: usize,
        summary: String,
    },
    /// The revision was applied (possibly with objects left alone: conflicts, refused prunes).
    Applied {
        revision: &'a str,
        plan: &'a SyncPlan<'a>,
        counts: CatalogCounts,
    },
}

/// The status after `outcome`, from the previous one. Fields the outcome says nothing about
/// (e.g. the last applied revision after a failed fetch) are kept.
pub fn next_status(
    previous: &CatalogSourceStatus,
    generation: Option<i64>,
    outcome: &SyncOutcome<'_>,
    now: &Time,
) -> CatalogSourceStatus {
    let mut status = previous.clone();
    status.observed_generation = generation;
    let condition = |type_, ok: bool, reason, message: String| NewCondition {
        type_,
        status: if ok { TRUE } else { FALSE },
        reason,
        message,
        observed_generation: generation,
    };
    let (ready, stalled) = match outcome {
        SyncOutcome::Suspended => (
            condition(
                READY,
                previous_ready(previous),
                SUSPENDED,
                "syncing is suspended; the last applied revision stays in place".into(),
            ),
            condition(STALLED, false, SUSPENDED, String::new()),
        ),
        SyncOutcome::FetchFailed { message } => (
            condition(READY, false, FETCH_FAILED, message.clone()),
            condition(STALLED, false, FETCH_FAILED, String::new()),
        ),
        SyncOutcome::Invalid {
            revision,
            errors,
            summary,
        } => {
            status.last_attempted_revision = Some((*revision).to_owned());
            let kept = match &status.last_applied_revision {
                Some(applied) => format!("; {applied} stays applied"),
                None => String::new(),
            };
            let message = format!(
                "revision {revision} has {errors} lint error(s), nothing applied{kept}: {summary}"
            );
            (
                condition(READY, false, LINT_FAILED, message.clone()),
                condition(STALLED, true, LINT_FAILED, message),
            )
        }
        SyncOutcome::Applied {
            revision,
            plan,
            counts,
        } => {
            status.last_attempted_revision = Some((*revision).to_owned());
            status.last_applied_revision = Some((*revision).to_owned());
            status.inventory = plan.inventory.clone();
            status.counts = Some(counts.clone());
            let mut problems = Vec::new();
            for conflict in &plan.conflicts {
                problems.push(format!(
                    "{} {} is managed by CatalogSource {}",
                    conflict.entry.kind, conflict.entry.name, conflict.managed_by
                ));
            }
            for refused in &plan.prune_refused {
                problems.push(format!(
                    "{} {} left the catalog but has {} live subscription(s); not pruned",
                    refused.entry.kind, refused.entry.name, refused.live_subscriptions
                ));
            }
            let ready = if problems.is_empty() {
                condition(READY, true, APPLIED, format!("applied revision {revision}"))
            } else {
                let reason = if plan.conflicts.is_empty() {
                    PRUNE_REFUSED
                } else {
                    CONFLICT
                };
                condition(
                    READY,
                    false,
                    reason,
                    format!("applied revision {revision}, but {}", problems.join("; ")),
                )
            };
            (ready, condition(STALLED, false, APPLIED, String::new()))
        }
    };
    set_condition(&mut status.conditions, ready, now);
    set_condition(&mut status.conditions, stalled, now);
    status
}

fn previous_ready(previous: &CatalogSourceStatus) -> bool {
    find_condition(&previous.conditions, READY).is_some_and(|c| c.status == TRUE)
}

/// Parses a Flux-style interval ("30s", "5m", "1h30m", "500ms") into a duration.
pub fn parse_interval(text: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, seconds) = if rest.starts_with("ms") {
            ("ms", 0.001)
        } else if rest.starts_with('s') {
            ("s", 1.0)
        } else if rest.starts_with('m') {
            ("m", 60.0)
        } else if rest.starts_with('h') {
            ("h", 3600.0)
        } else {
            return None;
        };
        total += value * seconds;
        rest = &rest[unit.len()..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::catalog_source::InventoryEntry;
    use crate::catalog::sync::RefusedPrune;
    use k8s_openapi::jiff::Timestamp;
    use std::time::Duration;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid"))
    }

    fn applied(previous: &CatalogSourceStatus, plan: &SyncPlan<'_>) -> CatalogSourceStatus {
        let outcome = SyncOutcome::Applied {
            revision: "main@sha1:aaa",
            plan,
            counts: CatalogCounts {
                listings: 1,
                wizard_configs: 0,
            },
        };
        next_status(previous, Some(2), &outcome, &at(100))
    }

    #[test]
    fn an_applied_revision_is_ready_and_recorded() {
        let status = applied(&CatalogSourceStatus::default(), &SyncPlan::default());
        assert_eq!(
            status.last_applied_revision.as_deref(),
            Some("main@sha1:aaa")
        );
        let ready = find_condition(&status.conditions, READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            (TRUE, APPLIED)
        );
        assert_eq!(ready.observed_generation, Some(2));
    }

    #[test]
    fn an_invalid_revision_keeps_the_last_good_one() {
        let good = applied(&CatalogSourceStatus::default(), &SyncPlan::default());
        let outcome = SyncOutcome::Invalid {
            revision: "main@sha1:bbb",
            errors: 2,
            summary: "listings/x.yaml:3:1 ...".into(),
        };
        let status = next_status(&good, Some(3), &outcome, &at(200));
        assert_eq!(
            status.last_applied_revision.as_deref(),
            Some("main@sha1:aaa")
        );
        assert_eq!(
            status.last_attempted_revision.as_deref(),
            Some("main@sha1:bbb")
        );
        let stalled = find_condition(&status.conditions, STALLED).expect("Stalled");
        assert_eq!(stalled.status, TRUE);
        assert!(
            stalled.message.contains("main@sha1:aaa stays applied"),
            "{}",
            stalled.message
        );
    }

    #[test]
    fn a_refused_prune_is_reported_as_not_ready() {
        let plan = SyncPlan {
            prune_refused: vec![RefusedPrune {
                entry: InventoryEntry {
                    kind: "Listing".into(),
                    name: "busy".into(),
                },
                live_subscriptions: 2,
            }],
            ..SyncPlan::default()
        };
        let status = applied(&CatalogSourceStatus::default(), &plan);
        let ready = find_condition(&status.conditions, READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            (FALSE, PRUNE_REFUSED)
        );
        assert!(
            ready
                .message
                .contains("Listing busy left the catalog but has 2 live subscription(s)")
        );
    }

    #[test]
    fn the_same_outcome_twice_gives_the_same_status() {
        let once = applied(&CatalogSourceStatus::default(), &SyncPlan::default());
        let outcome = SyncOutcome::Applied {
            revision: "main@sha1:aaa",
            plan: &SyncPlan::default(),
            counts: CatalogCounts {
                listings: 1,
                wizard_configs: 0,
            },
        };
        let twice = next_status(&once, Some(2), &outcome, &at(999));
        assert_eq!(once, twice, "no churn, so no status write");
    }

    #[test]
    fn intervals_parse_like_flux() {
        assert_eq!(parse_interval("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_interval("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_interval("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_interval("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_interval("5"), None);
        assert_eq!(parse_interval(""), None);
    }
}

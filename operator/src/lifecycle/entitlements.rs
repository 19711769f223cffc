//! The Entitlements a subscription grants: one per feature of its listing and plan, in a state
//! that follows the subscription's phase.

use std::collections::BTreeSet;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::period::whole_second;
use super::phase::Decision;
use crate::api::entitlement::EntitlementState;
use crate::api::listing::{ListingSpec, Plan};
use crate::api::tenant_subscription::Phase;

/// One Entitlement as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredEntitlement {
    pub name: String,
    pub feature: String,
    pub state: EntitlementState,
    pub starts_at: Timestamp,
    pub ends_at: Option<Timestamp>,
}

/// The feature codes a listing's plan grants: the listing's features and the plan's extras.
pub fn features_of(listing: &ListingSpec, plan: &Plan) -> BTreeSet<String> {
    listing
        .features
        .iter()
        .chain(&plan.extra_features)
        .map(|f| f.as_str().to_string())
        .collect()
}

/// `<subscription>-<feature>`, with underscores as dashes; names too long for Kubernetes keep a
/// prefix and a hash so they stay unique.
pub fn entitlement_name(subscription: &str, feature: &str) -> String {
    let name = format!("{subscription}-{}", feature.replace('_', "-"));
    if name.len() <= 253 {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    let mut prefix = name[..242].to_string();
    while prefix.ends_with(['-', '.']) {
        prefix.pop();
    }
    format!("{prefix}-{hash}")
}

/// The Entitlements for `decision`. `features` are what the listing and plan grant now (absent
/// when the listing left the catalog: the previous grants are kept as they are); `previously`
/// are the features granted so far (status.entitlements), revoked when no longer granted.
pub fn desired_entitlements(
    decision: &Decision,
    subscription: &str,
    features: Option<&BTreeSet<String>>,
    previously: &[String],
    now: Timestamp,
) -> Vec<DesiredEntitlement> {
    let previously: BTreeSet<String> = previously.iter().cloned().collect();
    let granted = features.cloned().unwrap_or_else(|| previously.clone());
    // In whole seconds, as stored: a reconcile that decides the same start again (from a
    // subscription read a moment before its own last status write) then wants the same
    // Entitlement and writes nothing.
    let starts_at = whole_second(decision.activated_at.unwrap_or(now));
    // Stored times keep whole seconds, and the CRD wants endsAt > startsAt as stored: an end
    // in the start's second is no end (a cancel right after activation would be refused, 422).
    let after_start = |t: Option<Timestamp>| t.filter(|t| t.as_second() > starts_at.as_second());
    let (state, ends_at) = match decision.phase {
        Phase::Active => (EntitlementState::Active, None),
        Phase::Trialing => (EntitlementState::Trialing, decision.trial_ends_at),
        Phase::CancelRequested => {
            let in_trial = decision.trial_ends_at.is_some()
                && decision.trial_ends_at == decision.current_period_end;
            let state = if in_trial {
                EntitlementState::Trialing
            } else {
                EntitlementState::Active
            };
            (state, decision.current_period_end)
        }
        Phase::Suspended => (EntitlementState::Suspended, None),
        Phase::Cancelled | Phase::Rejected | Phase::Failed => {
            // Only what was ever granted is revoked; nothing is created to be revoked.
            return previously
                .iter()
                .map(|feature| DesiredEntitlement {
                    name: entitlement_name(subscription, feature),
                    feature: feature.clone(),
                    state: EntitlementState::Revoked,
                    starts_at,
                    ends_at: after_start(decision.current_period_end.or(Some(now))),
                })
                .collect();
        }
        Phase::Requested | Phase::Invoiced | Phase::Paid | Phase::Provisioning => {
            return Vec::new();
        }
    };
    let ends_at = after_start(ends_at);
    let mut out: Vec<DesiredEntitlement> = granted
        .iter()
        .map(|feature| DesiredEntitlement {
            name: entitlement_name(subscription, feature),
            feature: feature.clone(),
            state,
            starts_at,
            ends_at,
        })
        .collect();
    // A plan change that drops a feature revokes it.
    out.extend(
        previously
            .difference(&granted)
            .map(|feature| DesiredEntitlement {
                name: entitlement_name(subscription, feature),
                feature: feature.clone(),
                state: EntitlementState::Revoked,
                starts_at,
                ends_at: after_start(Some(now)),
            }),
    );
    out
}

/// `t` without its fraction of a second (what a stored `Time` keeps).
/// The features a set of desired Entitlements grants (status.entitlements): all but the revoked.
pub fn granted_features(desired: &[DesiredEntitlement]) -> Vec<String> {
    desired
        .iter()
        .filter(|e| e.state != EntitlementState::Revoked)
        .map(|e| e.feature.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(phase: Phase) -> Decision {
        Decision {
            phase,
            via: None,
            ready: true,
            reason: "x".into(),
            message: String::new(),
            activated_at: Some("2026-11-01T00:00:00Z".parse().unwrap()),
            trial_ends_at: None,
            current_period_end: None,
            wake_at: None,
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    const NOW: &str = "2026-11-22T00:00:00Z";

    #[test]
    fn states_follow_phases() {
        let now: Timestamp = NOW.parse().unwrap();
        let f = set(&["route_optimization", "eta"]);
        let active = desired_entitlements(&decision(Phase::Active), "s", Some(&f), &[], now);
        assert_eq!(active.len(), 2);
        assert!(
            active
                .iter()
                .all(|e| e.state == EntitlementState::Active && e.ends_at.is_none())
        );
        assert_eq!(active[1].name, "s-route-optimization");
        let suspended = desired_entitlements(&decision(Phase::Suspended), "s", Some(&f), &[], now);
        assert!(
            suspended
                .iter()
                .all(|e| e.state == EntitlementState::Suspended)
        );
        assert!(
            desired_entitlements(&decision(Phase::Provisioning), "s", Some(&f), &[], now)
                .is_empty()
        );
        // Nothing granted, nothing to revoke.
        assert!(
            desired_entitlements(&decision(Phase::Cancelled), "s", Some(&f), &[], now).is_empty()
        );
        let granted = vec!["eta".to_string()];
        let revoked =
            desired_entitlements(&decision(Phase::Cancelled), "s", Some(&f), &granted, now);
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].state, EntitlementState::Revoked);
        assert_eq!(revoked[0].ends_at, Some(now));
    }

    #[test]
    fn an_end_in_the_seconds_of_the_start_is_left_out() {
        let mut d = decision(Phase::Cancelled);
        d.activated_at = Some("2026-11-22T00:00:00.300Z".parse().unwrap());
        let now: Timestamp = "2026-11-22T00:00:00.800Z".parse().unwrap();
        let granted = vec!["eta".to_string()];
        let revoked = desired_entitlements(&d, "s", None, &granted, now);
        assert_eq!(revoked[0].state, EntitlementState::Revoked);
        assert_eq!(revoked[0].ends_at, None, "stored, both are 00:00:00Z");
        let later: Timestamp = "2026-11-22T00:00:01.100Z".parse().unwrap();
        let revoked = desired_entitlements(&d, "s", None, &granted, later);
        assert_eq!(revoked[0].ends_at, Some(later));
    }

    #[test]
    fn the_start_is_kept_in_whole_seconds_so_a_repeated_decision_wants_the_same() {
        let f = set(&["eta"]);
        let mut first = decision(Phase::Active);
        first.activated_at = Some("2026-11-22T00:00:00.300Z".parse().unwrap());
        let mut again = first.clone();
        again.activated_at = Some("2026-11-22T00:00:00.900Z".parse().unwrap());
        let now: Timestamp = NOW.parse().unwrap();
        let a = desired_entitlements(&first, "s", Some(&f), &[], now);
        let b = desired_entitlements(&again, "s", Some(&f), &[], now);
        assert_eq!(a, b);
        assert_eq!(a[0].starts_at, "2026-11-22T00:00:00Z".parse().unwrap());
    }

    #[test]
    fn cancel_requested_keeps_features_until_the_period_ends() {
        let now: Timestamp = NOW.parse().unwrap();
        let mut d = decision(Phase::CancelRequested);
        let end: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        d.current_period_end = Some(end);
        let e = desired_entitlements(&d, "s", Some(&set(&["eta"])), &[], now);
        assert_eq!(e[0].state, EntitlementState::Active);
        assert_eq!(e[0].ends_at, Some(end));
        d.trial_ends_at = Some(end);
        let e = desired_entitlements(&d, "s", Some(&set(&["eta"])), &[], now);
        assert_eq!(e[0].state, EntitlementState::Trialing);
    }

    #[test]
    fn plan_change_revokes_dropped_features_and_missing_listing_keeps_grants() {
        let now: Timestamp = NOW.parse().unwrap();
        let before = vec!["eta".to_string(), "heatmaps".to_string()];
        let e = desired_entitlements(
            &decision(Phase::Active),
            "s",
            Some(&set(&["eta"])),
            &before,
            now,
        );
        assert_eq!(granted_features(&e), vec!["eta".to_string()]);
        assert!(
            e.iter()
                .any(|x| x.feature == "heatmaps" && x.state == EntitlementState::Revoked)
        );
        let kept = desired_entitlements(&decision(Phase::Active), "s", None, &before, now);
        assert_eq!(granted_features(&kept), before);
    }

    #[test]
    fn long_names_stay_valid_and_unique() {
        let long = "a".repeat(250);
        let a = entitlement_name(&long, "feature_one");
        let b = entitlement_name(&long, "feature_two");
        assert!(a.len() <= 253 && b.len() <= 253);
        assert_ne!(a, b);
    }
}

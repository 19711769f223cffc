//! Low balances, decided: when a tenant's balance fell below a threshold and stayed below (an
//! episode), and what that calls for: one CreditBalanceLow notification and, when the tenant
//! buys automatically, one top-up. Each is named after its episode, so deciding again (every
//! round, after a restart, on another replica) names the same notification and the same
//! top-up. Pure: the ledger and `now` are arguments.

use jiff::{SignedDuration, Timestamp};

use super::grant::parse_amount;
use super::ledger::TenantLedger;
use crate::api::tenant::TenantCredits;
use crate::lifecycle::notify::stable_id;

/// The credits in `currency` usable at `at`, as the ledger recorded them by then.
pub fn available_at(ledger: &TenantLedger, currency: &str, at: Timestamp) -> i64 {
    ledger
        .grants
        .iter()
        .filter(|g| g.currency == currency && g.granted_at <= at && at < g.expires_at)
        .map(|g| {
            let used: i64 = ledger
                .deductions
                .iter()
                .filter(|d| d.grant_id == g.id && d.at <= at)
                .map(|d| d.amount_micros)
                .sum();
            (g.amount_micros - used).max(0)
        })
        .sum()
}

/// When the balance in `currency` last fell below `threshold` (millionths), if it is below now
/// and was at or above it before: the start of the current episode. A tenant who never had as
/// much as the threshold has no episode.
pub fn low_since(
    ledger: &TenantLedger,
    currency: &str,
    threshold: i64,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut changes: Vec<Timestamp> = ledger
        .grants
        .iter()
        .filter(|g| g.currency == currency)
        .flat_map(|g| [g.granted_at, g.expires_at])
        .chain(ledger.deductions.iter().map(|d| d.at))
        .filter(|t| *t <= now)
        .collect();
    changes.sort();
    changes.dedup();
    let mut was_enough = false;
    let mut since = None;
    for at in changes {
        if available_at(ledger, currency, at) >= threshold {
            was_enough = true;
            since = None;
        } else if was_enough && since.is_none() {
            since = Some(at);
        }
    }
    since.filter(|_| available_at(ledger, currency, now) < threshold)
}

/// What a low balance calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BalanceAction {
    /// Tell the tenant once per episode (the event id names it).
    Alert {
        event_id: String,
        since: Timestamp,
        balance_micros: i64,
        threshold_micros: i64,
    },
    /// Buy `amount_micros` once per episode: `grant_id` is the grant (and the charge's key).
    TopUp {
        grant_id: String,
        amount_micros: i64,
        expires_at: Timestamp,
    },
}

/// What `tenant`'s settings and ledger call for at `now`.
pub fn balance_actions(
    tenant: &str,
    settings: &TenantCredits,
    ledger: &TenantLedger,
    now: Timestamp,
) -> Vec<BalanceAction> {
    let currency = settings.currency.as_str();
    let mut out = Vec::new();
    let threshold = settings
        .low_balance_threshold
        .as_deref()
        .and_then(parse_amount);
    if let Some(threshold) = threshold
        && let Some(since) = low_since(ledger, currency, threshold, now)
    {
        let ms = since.as_millisecond().to_string();
        out.push(BalanceAction::Alert {
            event_id: stable_id("evt", &[tenant, "CreditBalanceLow", currency, &ms]),
            since,
            balance_micros: available_at(ledger, currency, now),
            threshold_micros: threshold,
        });
    }
    if let Some(top_up) = &settings.auto_top_up
        && let (Some(threshold), Some(amount)) = (
            parse_amount(&top_up.threshold),
            parse_amount(&top_up.amount),
        )
        && amount > 0
        && let Some(since) = low_since(ledger, currency, threshold, now)
    {
        let days = SignedDuration::from_hours(24 * i64::from(top_up.valid_days.max(1)));
        out.push(BalanceAction::TopUp {
            grant_id: format!("topup-{currency}-{}", since.as_millisecond()),
            amount_micros: amount,
            expires_at: now.saturating_add(days).unwrap_or(Timestamp::MAX),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credits::ledger::{CreditDeduction, CreditGrant};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn grant(id: &str, micros: i64, granted: &str, expires: &str) -> CreditGrant {
        CreditGrant {
            tenant: "acme".into(),
            id: id.into(),
            currency: "USD".into(),
            amount_micros: micros,
            granted_at: at(granted),
            expires_at: at(expires),
            granted_by: "ana".into(),
            reason: String::new(),
        }
    }

    fn used(grant_id: &str, micros: i64, when: &str) -> CreditDeduction {
        CreditDeduction {
            tenant: "acme".into(),
            usage_key: format!("u/{when}"),
            grant_id: grant_id.into(),
            amount_micros: micros,
            at: at(when),
        }
    }

    fn settings(v: serde_json::Value) -> TenantCredits {
        serde_json::from_value(v).unwrap()
    }

    const T: i64 = 10_000_000;

    #[test]
    fn an_episode_starts_when_the_balance_falls_below_and_ends_when_it_is_back() {
        let mut ledger = TenantLedger {
            grants: vec![grant(
                "a",
                50_000_000,
                "2026-10-01T00:00:00Z",
                "2027-10-01T00:00:00Z",
            )],
            deductions: vec![used("a", 30_000_000, "2026-11-01T01:00:00Z")],
        };
        let now = at("2026-11-20T00:00:00Z");
        // 20 left: not low.
        assert_eq!(low_since(&ledger, "USD", T, now), None);
        ledger
            .deductions
            .push(used("a", 15_000_000, "2026-12-01T01:00:00Z"));
        let dec = at("2026-12-02T00:00:00Z");
        assert_eq!(
            low_since(&ledger, "USD", T, dec),
            Some(at("2026-12-01T01:00:00Z"))
        );
        // Still low after more usage: the same episode.
        ledger
            .deductions
            .push(used("a", 1_000_000, "2027-01-01T01:00:00Z"));
        let jan = at("2027-01-02T00:00:00Z");
        assert_eq!(
            low_since(&ledger, "USD", T, jan),
            Some(at("2026-12-01T01:00:00Z"))
        );
        // Topped up above the threshold: over; the next fall is a new episode.
        ledger.grants.push(grant(
            "b",
            20_000_000,
            "2027-01-05T00:00:00Z",
            "2028-01-01T00:00:00Z",
        ));
        assert_eq!(
            low_since(&ledger, "USD", T, at("2027-01-06T00:00:00Z")),
            None
        );
        ledger
            .deductions
            .push(used("b", 19_000_000, "2027-02-01T01:00:00Z"));
        assert_eq!(
            low_since(&ledger, "USD", T, at("2027-02-02T00:00:00Z")),
            Some(at("2027-02-01T01:00:00Z"))
        );
        // Never as much as the threshold, or another currency: no episode.
        let small = TenantLedger {
            grants: vec![grant(
                "s",
                5_000_000,
                "2026-10-01T00:00:00Z",
                "2027-10-01T00:00:00Z",
            )],
            deductions: vec![],
        };
        assert_eq!(low_since(&small, "USD", T, now), None);
        assert_eq!(low_since(&ledger, "EUR", T, jan), None);
    }

    #[test]
    fn expiry_starts_an_episode_too() {
        let ledger = TenantLedger {
            grants: vec![grant(
                "a",
                50_000_000,
                "2026-10-01T00:00:00Z",
                "2026-12-15T00:00:00Z",
            )],
            deductions: vec![],
        };
        assert_eq!(
            low_since(&ledger, "USD", T, at("2026-12-14T00:00:00Z")),
            None
        );
        assert_eq!(
            low_since(&ledger, "USD", T, at("2026-12-16T00:00:00Z")),
            Some(at("2026-12-15T00:00:00Z"))
        );
    }

    #[test]
    fn a_low_balance_calls_for_one_alert_and_one_top_up_per_episode() {
        let ledger = TenantLedger {
            grants: vec![grant(
                "a",
                20_000_000,
                "2026-10-01T00:00:00Z",
                "2027-10-01T00:00:00Z",
            )],
            deductions: vec![used("a", 15_000_000, "2026-12-01T01:00:00Z")],
        };
        let s = settings(
            serde_json::json!({"currency": "USD", "lowBalanceThreshold": "10",
            "autoTopUp": {"threshold": "6", "amount": "0.5", "validDays": 30}}),
        );
        let now = at("2026-12-02T00:00:00Z");
        let actions = balance_actions("acme", &s, &ledger, now);
        let [
            BalanceAction::Alert {
                event_id,
                balance_micros,
                ..
            },
            BalanceAction::TopUp {
                grant_id,
                amount_micros,
                expires_at,
            },
        ] = actions.as_slice()
        else {
            panic!("{actions:?}");
        };
        assert_eq!((*balance_micros, *amount_micros), (5_000_000, 500_000));
        assert_eq!(*expires_at, at("2027-01-01T00:00:00Z"));
        // Decided again later in the episode: the same names.
        let later = balance_actions("acme", &s, &ledger, at("2026-12-20T00:00:00Z"));
        assert!(
            later
                .iter()
                .any(|a| matches!(a, BalanceAction::Alert { event_id: e, .. } if e == event_id))
        );
        // The top-up (5.5 is below 6 still) does not start another episode: the same key.
        let mut topped = ledger.clone();
        topped.grants.push(grant(
            grant_id,
            500_000,
            "2026-12-02T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ));
        let again = balance_actions("acme", &s, &topped, at("2026-12-03T00:00:00Z"));
        assert!(
            again
                .iter()
                .any(|a| matches!(a, BalanceAction::TopUp { grant_id: g, .. } if g == grant_id))
        );
        // Without settings that ask, nothing.
        let quiet = settings(serde_json::json!({"currency": "USD"}));
        assert!(balance_actions("acme", &quiet, &ledger, now).is_empty());
    }
}

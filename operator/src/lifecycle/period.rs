//! Billing periods: when a period or a trial ends. Calendar arithmetic in UTC, so a monthly
//! period that starts on the 31st ends on the last day of a shorter month.

use jiff::{Span, Timestamp, tz::TimeZone};

use crate::api::listing::BillingInterval;

/// `t` in whole seconds, as Kubernetes stores times: a time decided now and the same time read
/// back from the apiserver compare equal.
pub fn whole_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// `start` plus `n` billing intervals.
pub fn add_intervals(start: Timestamp, interval: BillingInterval, n: i64) -> Timestamp {
    let span = match interval {
        BillingInterval::Month => Span::new().months(n),
        BillingInterval::Year => Span::new().years(n),
    };
    start
        .to_zoned(TimeZone::UTC)
        .checked_add(span)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

/// End of the billing period that contains `now`, for billing that started at `start`: the first
/// period boundary strictly after `now` (and at least one period after `start`).
pub fn current_period_end(
    start: Timestamp,
    interval: BillingInterval,
    now: Timestamp,
) -> Timestamp {
    // Jump close with an estimate, then step; a handful of iterations at most.
    let days = (now.as_second() - start.as_second()).max(0) / 86_400;
    let per = match interval {
        BillingInterval::Month => 31,
        BillingInterval::Year => 366,
    };
    let mut n = (days / per).max(1);
    while add_intervals(start, interval, n) <= now {
        n += 1;
    }
    while n > 1 && add_intervals(start, interval, n - 1) > now {
        n -= 1;
    }
    add_intervals(start, interval, n)
}

/// End of a trial of `days` days that started at `start`.
pub fn trial_end(start: Timestamp, days: i32) -> Timestamp {
    start
        .checked_add(Span::new().hours(24 * i64::from(days.max(0))))
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn month_ends_clamp_to_shorter_months() {
        let start = ts("2026-01-31T10:00:00Z");
        assert_eq!(
            add_intervals(start, BillingInterval::Month, 1),
            ts("2026-02-28T10:00:00Z")
        );
    }

    #[test]
    fn current_period_contains_now() {
        let start = ts("2026-01-15T00:00:00Z");
        let m = BillingInterval::Month;
        assert_eq!(
            current_period_end(start, m, ts("2026-01-15T00:00:00Z")),
            ts("2026-02-15T00:00:00Z")
        );
        assert_eq!(
            current_period_end(start, m, ts("2026-03-20T00:00:00Z")),
            ts("2026-04-15T00:00:00Z")
        );
        assert_eq!(
            current_period_end(start, m, ts("2026-04-15T00:00:00Z")),
            ts("2026-05-15T00:00:00Z")
        );
        assert_eq!(
            current_period_end(start, BillingInterval::Year, ts("2029-06-01T00:00:00Z")),
            ts("2030-01-15T00:00:00Z")
        );
        // A clock before the start still yields the first period.
        assert_eq!(
            current_period_end(start, m, ts("2025-12-01T00:00:00Z")),
            ts("2026-02-15T00:00:00Z")
        );
    }

    #[test]
    fn trial_end_counts_whole_days() {
        assert_eq!(
            trial_end(ts("2026-11-22T08:00:00Z"), 14),
            ts("2026-12-06T08:00:00Z")
        );
    }
}

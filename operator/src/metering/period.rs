//! Usage periods: calendar months in UTC, whatever a plan's base interval (a yearly plan's
//! usage is still billed monthly), so every tenant's meters roll over at the same instant and
//! an event's period follows from its time alone.

use std::fmt;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde::{Deserialize, Serialize};

/// One calendar month (UTC), named by its first day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UsagePeriod {
    /// The first day of the month.
    first_day: Date,
}

impl UsagePeriod {
    /// The month that contains `at`.
    pub fn containing(at: Timestamp) -> UsagePeriod {
        let date = at.to_zoned(TimeZone::UTC).date();
        UsagePeriod {
            first_day: date.first_of_month(),
        }
    }

    /// The month that starts on `first_day` (`None` unless it is the 1st).
    pub fn starting(first_day: Date) -> Option<UsagePeriod> {
        (first_day.day() == 1).then_some(UsagePeriod { first_day })
    }

    /// The first instant of the month.
    pub fn start(self) -> Timestamp {
        self.at_midnight(self.first_day)
    }

    /// The first instant after the month.
    pub fn end(self) -> Timestamp {
        self.at_midnight(self.next().first_day)
    }

    /// The month after this one.
    pub fn next(self) -> UsagePeriod {
        UsagePeriod {
            first_day: self
                .first_day
                .checked_add(1.month())
                .unwrap_or(self.first_day),
        }
    }

    /// The month before this one.
    pub fn previous(self) -> UsagePeriod {
        UsagePeriod {
            first_day: self
                .first_day
                .checked_sub(1.month())
                .unwrap_or(self.first_day),
        }
    }

    /// Unix seconds of the start: the stores' period key.
    pub fn key(self) -> i64 {
        self.start().as_second()
    }

    /// The period whose [`key`](Self::key) is `key`.
    pub fn from_key(key: i64) -> Option<UsagePeriod> {
        let at = Timestamp::from_second(key).ok()?;
        let period = UsagePeriod::containing(at);
        (period.key() == key).then_some(period)
    }

    fn at_midnight(self, day: Date) -> Timestamp {
        day.to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }
}

/// `2026-11`.
impl fmt::Display for UsagePeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}",
            self.first_day.year(),
            self.first_day.month()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_period_is_the_calendar_month_in_utc() {
        let p = UsagePeriod::containing(at("2026-02-28T23:59:59Z"));
        assert_eq!(p.to_string(), "2026-02");
        assert_eq!(p.start(), at("2026-02-01T00:00:00Z"));
        assert_eq!(p.end(), at("2026-03-01T00:00:00Z"));
        assert_eq!(UsagePeriod::containing(p.end()), p.next());
        assert_eq!(p.next().previous(), p);
        assert_eq!(
            UsagePeriod::containing(at("2026-12-31T12:00:00Z"))
                .next()
                .to_string(),
            "2027-01"
        );
    }

    #[test]
    fn keys_round_trip_and_only_month_starts_are_keys() {
        let p = UsagePeriod::containing(at("2026-11-15T08:00:00Z"));
        assert_eq!(UsagePeriod::from_key(p.key()), Some(p));
        assert_eq!(UsagePeriod::from_key(p.key() + 1), None);
        assert_eq!(
            UsagePeriod::starting("2026-11-01".parse().unwrap()),
            Some(p)
        );
        assert_eq!(UsagePeriod::starting("2026-11-02".parse().unwrap()), None);
    }
}

//! Simulated clock. By default it follows real time from `clock_start_ms`; tests may freeze it
//! and move it only through the admin API, which makes billing cycles, search lag and the rate
//! windows deterministic without sleeping.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct SimClock {
    start_real: Instant,
    start_ms: i64,
    offset_ms: i64,
    frozen: bool,
}

impl SimClock {
    pub fn new(start_ms: i64, frozen: bool) -> Self {
        SimClock {
            start_real: Instant::now(),
            start_ms,
            offset_ms: 0,
            frozen,
        }
    }

    /// Current simulated time in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        let real = if self.frozen {
            0
        } else {
            i64::try_from(self.start_real.elapsed().as_millis()).unwrap_or(i64::MAX / 4)
        };
        self.start_ms + real + self.offset_ms
    }

    pub fn advance(&mut self, ms: i64) {
        self.offset_ms += ms.max(0);
    }

    pub fn set_frozen(&mut self, frozen: bool) {
        let now = self.now_ms();
        self.frozen = frozen;
        self.start_real = Instant::now();
        self.start_ms = now;
        self.offset_ms = 0;
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }
}

/// Wall-clock now, epoch ms (webhook signatures and state files use real time, not the
/// simulated clock).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// ISO-8601 UTC with milliseconds, as HubSpot renders `createdAt`/`updatedAt`.
pub fn iso(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// `YYYY-MM-DD` of an epoch-ms instant (UTC).
pub fn ymd(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%d").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Midnight UTC at or before `ms`.
pub fn midnight_utc(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

/// Adds whole calendar months to a midnight-UTC instant (billing cycles).
pub fn add_months(ms: i64, months: i32) -> i64 {
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return ms;
    };
    let date = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    let Ok(next) = date.checked_add(jiff::Span::new().months(months)) else {
        return ms;
    };
    match next.to_zoned(jiff::tz::TimeZone::UTC) {
        Ok(z) => z.timestamp().as_millisecond(),
        Err(_) => ms,
    }
}

/// Parses `YYYY-MM-DD` to midnight-UTC epoch ms.
pub fn parse_ymd(s: &str) -> Option<i64> {
    let date: jiff::civil::Date = s.parse().ok()?;
    let z = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(z.timestamp().as_millisecond())
}

/// Parses an ISO-8601 timestamp (`2026-01-01T10:00:00Z`) to epoch ms.
pub fn parse_iso(s: &str) -> Option<i64> {
    let ts: jiff::Timestamp = s.parse().ok()?;
    Some(ts.as_millisecond())
}

//! Per-tenant read rates: a tenant's reads beyond its rate get 429 with `Retry-After`, so leaked
//! credentials cannot scrape the catalog quickly (seed 004: 60 detail reads a minute) and one
//! tenant's runaway product server cannot hog the API. Each tenant has a token bucket per
//! [`ReadClass`]: it holds a minute's worth of reads and refills at that rate, so a burst of a
//! minute's reads passes at once and the sustained rate is the configured one.
//!
//! The decision ([`take`]) is a pure function with the time as an argument; [`ReadLimiter`]
//! keeps the buckets of at most `tracked_tenants` tenants: a full bucket is the same as none, so
//! those go first, then the longest idle.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What a read costs against: each class has its own rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadClass {
    /// Entitlement checks (REST, OFREP), opening the change stream, and the navigation the
    /// SaaS's app loads with every page: high volume, from product code.
    Check,
    /// Catalog pages and subscription reads (the SaaS's UI).
    Browse,
    /// A listing's detail (what a scraper wants most).
    Detail,
}

const CLASSES: usize = 3;

impl ReadClass {
    fn index(self) -> usize {
        match self {
            ReadClass::Check => 0,
            ReadClass::Browse => 1,
            ReadClass::Detail => 2,
        }
    }
}

/// Reads per minute per tenant for each class (0: unlimited), and how many tenants' buckets
/// are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimitSettings {
    pub checks_per_minute: u32,
    pub browse_per_minute: u32,
    pub details_per_minute: u32,
    pub tracked_tenants: usize,
}

impl Default for ReadLimitSettings {
    fn default() -> Self {
        ReadLimitSettings {
            checks_per_minute: 60_000,
            browse_per_minute: 600,
            details_per_minute: 60,
            tracked_tenants: 50_000,
        }
    }
}

impl ReadLimitSettings {
    /// No limits at all.
    pub const UNLIMITED: ReadLimitSettings = ReadLimitSettings {
        checks_per_minute: 0,
        browse_per_minute: 0,
        details_per_minute: 0,
        tracked_tenants: 1,
    };

    fn per_minute(&self, class: ReadClass) -> u32 {
        match class {
            ReadClass::Check => self.checks_per_minute,
            ReadClass::Browse => self.browse_per_minute,
            ReadClass::Detail => self.details_per_minute,
        }
    }
}

/// One tenant's bucket of one class: `tokens` as of `at`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub at: Instant,
}

/// The tokens a bucket of `per_minute` holds at `now`, refilled since it was last touched.
fn refilled(bucket: Option<Bucket>, per_minute: u32, now: Instant) -> f64 {
    let capacity = f64::from(per_minute);
    match bucket {
        None => capacity,
        Some(b) => {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            (b.tokens + elapsed * capacity / 60.0).min(capacity)
        }
    }
}

/// Takes one read from `bucket` (none yet: a full one) at `now`: the bucket after, and either
/// `Ok` or the whole seconds until a read would pass (at least 1, for `Retry-After`).
pub fn take(bucket: Option<Bucket>, per_minute: u32, now: Instant) -> (Bucket, Result<(), u64>) {
    let tokens = refilled(bucket, per_minute, now);
    if tokens >= 1.0 {
        return (
            Bucket {
                tokens: tokens - 1.0,
                at: now,
            },
            Ok(()),
        );
    }
    let per_second = f64::from(per_minute) / 60.0;
    let wait = ((1.0 - tokens) / per_second).ceil().max(1.0);
    (Bucket { tokens, at: now }, Err(wait as u64))
}

type Buckets = [Option<Bucket>; CLASSES];

/// The buckets of the tenants read lately, shared by every request of the process.
#[derive(Debug)]
pub struct ReadLimiter {
    settings: ReadLimitSettings,
    tenants: Mutex<HashMap<String, Buckets>>,
}

impl ReadLimiter {
    pub fn new(settings: ReadLimitSettings) -> Self {
        ReadLimiter {
            settings,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a read of `class` in `tenant` at `now`: `Err(seconds)` when it is over the rate.
    pub fn admit(&self, tenant: &str, class: ReadClass, now: Instant) -> Result<(), u64> {
        let per_minute = self.settings.per_minute(class);
        if per_minute == 0 {
            return Ok(());
        }
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        // The hot path (a tenant read lately) allocates nothing.
        if let Some(buckets) = tenants.get_mut(tenant) {
            let slot = &mut buckets[class.index()];
            let (bucket, verdict) = take(*slot, per_minute, now);
            *slot = Some(bucket);
            return verdict;
        }
        if tenants.len() >= self.settings.tracked_tenants {
            self.make_room(&mut tenants, now);
        }
        let (bucket, verdict) = take(None, per_minute, now);
        let mut buckets = Buckets::default();
        buckets[class.index()] = Some(bucket);
        tenants.insert(tenant.to_string(), buckets);
        verdict
    }

    /// Drops the tenants whose buckets are all full again; if that is not enough, the tenth
    /// idle longest (their next read starts from a full bucket, the most lenient mistake).
    fn make_room(&self, tenants: &mut HashMap<String, Buckets>, now: Instant) {
        let settings = self.settings;
        let full = |buckets: &Buckets| {
            [ReadClass::Check, ReadClass::Browse, ReadClass::Detail]
                .iter()
                .all(|c| {
                    let per_minute = settings.per_minute(*c);
                    let slot = buckets[c.index()];
                    slot.is_none() || refilled(slot, per_minute, now) >= f64::from(per_minute)
                })
        };
        tenants.retain(|_, buckets| !full(buckets));
        if tenants.len() < settings.tracked_tenants {
            return;
        }
        let last_read = |buckets: &Buckets| buckets.iter().flatten().map(|b| b.at).max();
        // Among tenants last read at the same moment, the one with the most tokens left goes
        // first: forgetting a tenant that is over its rate would hand it a fresh minute.
        let spent = |buckets: &Buckets| -> u64 {
            [ReadClass::Check, ReadClass::Browse, ReadClass::Detail]
                .iter()
                .filter_map(|c| {
                    let slot = buckets[c.index()]?;
                    let per_minute = settings.per_minute(*c);
                    let left = refilled(Some(slot), per_minute, now) / f64::from(per_minute.max(1));
                    Some(((1.0 - left).clamp(0.0, 1.0) * 1000.0) as u64)
                })
                .sum()
        };
        let mut by_age: Vec<((Option<Instant>, u64), String)> = tenants
            .iter()
            .map(|(tenant, buckets)| ((last_read(buckets), spent(buckets)), tenant.clone()))
            .collect();
        let evict = (settings.tracked_tenants / 10).max(1).min(by_age.len());
        by_age.select_nth_unstable_by_key(evict - 1, |(key, _)| *key);
        for (_, tenant) in &by_age[..evict] {
            tenants.remove(tenant);
        }
    }

    /// How many tenants have buckets now.
    pub fn tracked(&self) -> usize {
        self.tenants.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn too_many(retry_after_seconds: u64, body: serde_json::Value) -> Response {
    // Integer seconds: the one `Retry-After` form every OFREP client parses.
    let seconds = retry_after_seconds.max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, HeaderValue::from(seconds))],
        axum::Json(body),
    )
        .into_response()
}

fn message(retry_after_seconds: u64) -> String {
    format!(
        "this tenant's reads are over their rate; retry in {} s",
        retry_after_seconds.max(1)
    )
}

/// The REST answer to a read over the tenant's rate.
pub fn rest_rate_limited(retry_after_seconds: u64) -> Response {
    let body = json!({"code": "RateLimited", "message": message(retry_after_seconds)});
    too_many(retry_after_seconds, body)
}

/// The OFREP answer to a read over the tenant's rate (`errorDetails`, as the clients expect).
pub fn ofrep_rate_limited(retry_after_seconds: u64) -> Response {
    let body = json!({"errorDetails": message(retry_after_seconds)});
    too_many(retry_after_seconds, body)
}

#[cfg(test)]
mod tests;

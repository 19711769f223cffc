//! Rate limits (contract §3, §3.1): a rolling 10-second bucket per app, a daily bucket per
//! account that resets at midnight in the account's time zone, and a 5/s search bucket.

use crate::config::SimConfig;
use crate::error::{ApiError, correlation_id};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use std::collections::{BTreeMap, VecDeque};

const TEN_SECONDS_MS: i64 = 10_000;
const ONE_SECOND_MS: i64 = 1_000;
const DAY_MS: i64 = 86_400_000;

/// What the rate-limit headers should say for one response.
#[derive(Debug, Clone)]
pub struct RateHeaders {
    pub daily: Option<(u64, u64)>,
    pub max: u32,
    pub remaining: u32,
}

impl RateHeaders {
    /// contract §3.1: `X-HubSpot-RateLimit-*` headers.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            (
                "x-hubspot-ratelimit-interval-milliseconds",
                TEN_SECONDS_MS.to_string(),
            ),
            ("x-hubspot-ratelimit-max", self.max.to_string()),
            ("x-hubspot-ratelimit-remaining", self.remaining.to_string()),
        ];
        if let Some((limit, remaining)) = self.daily {
            v.push(("x-hubspot-ratelimit-daily", limit.to_string()));
            v.push(("x-hubspot-ratelimit-daily-remaining", remaining.to_string()));
        }
        v
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Counters {
    pub total_requests: u64,
    /// "METHOD /matched/path" → count.
    pub requests_per_route: BTreeMap<String, u64>,
    /// HTTP status → count.
    pub responses_by_status: BTreeMap<u16, u64>,
    pub rate_limited_ten_secondly: u64,
    pub rate_limited_daily: u64,
    pub rate_limited_secondly: u64,
    /// Most requests (accepted or not) seen in any rolling 10-second window: tests use it to
    /// prove a client never exceeded the bucket.
    pub max_requests_in_any_10s_window: u64,
    /// Same for search requests in any 1-second window.
    pub max_search_requests_in_any_1s_window: u64,
    pub daily_used: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimiter {
    accepted: VecDeque<i64>,
    seen: VecDeque<i64>,
    search_accepted: VecDeque<i64>,
    search_seen: VecDeque<i64>,
    daily_used: u64,
    day: i64,
}

fn prune(q: &mut VecDeque<i64>, now: i64, window: i64) {
    while q.front().is_some_and(|t| *t <= now - window) {
        q.pop_front();
    }
}

impl RateLimiter {
    pub fn daily_used(&self) -> u64 {
        self.daily_used
    }

    /// Admin fault: "daily limit exhausted".
    pub fn exhaust_daily(&mut self, cfg: &SimConfig, now: i64) {
        self.roll_day(cfg, now);
        self.daily_used = cfg.daily_limit();
    }

    fn roll_day(&mut self, cfg: &SimConfig, now: i64) {
        // contract §3: the daily limit resets at midnight in the account's time zone.
        let local = now + i64::from(cfg.account_utc_offset_minutes) * 60_000;
        let day = local.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.daily_used = 0;
        }
    }

    fn headers(&mut self, cfg: &SimConfig, now: i64) -> RateHeaders {
        prune(&mut self.accepted, now, TEN_SECONDS_MS);
        let max = cfg.ten_second_limit();
        let used = u32::try_from(self.accepted.len()).unwrap_or(u32::MAX);
        RateHeaders {
            daily: cfg.daily_headers.then(|| {
                (
                    cfg.daily_limit(),
                    cfg.daily_limit().saturating_sub(self.daily_used),
                )
            }),
            max,
            remaining: max.saturating_sub(used),
        }
    }

    /// Admits or rejects one request. Rejections carry the exact 429 bodies of contract §3.1.
    pub fn admit(
        &mut self,
        cfg: &SimConfig,
        counters: &mut Counters,
        now: i64,
        is_search: bool,
    ) -> Result<RateHeaders, (ApiError, RateHeaders)> {
        self.roll_day(cfg, now);
        prune(&mut self.seen, now, TEN_SECONDS_MS);
        self.seen.push_back(now);
        counters.max_requests_in_any_10s_window = counters
            .max_requests_in_any_10s_window
            .max(self.seen.len() as u64);
        if is_search {
            prune(&mut self.search_seen, now, ONE_SECOND_MS);
            self.search_seen.push_back(now);
            counters.max_search_requests_in_any_1s_window = counters
                .max_search_requests_in_any_1s_window
                .max(self.search_seen.len() as u64);
        }
        prune(&mut self.accepted, now, TEN_SECONDS_MS);
        prune(&mut self.search_accepted, now, ONE_SECOND_MS);

        if self.daily_used >= cfg.daily_limit() {
            counters.rate_limited_daily += 1;
            // contract §3.1: DAILY body.
            let mut body = Map::new();
            body.insert("status".into(), json!("error"));
            body.insert(
                "message".into(),
                json!("You have reached your daily limit."),
            );
            body.insert("errorType".into(), json!("RATE_LIMIT"));
            body.insert("correlationId".into(), json!(correlation_id()));
            body.insert("policyName".into(), json!("DAILY"));
            body.insert("requestId".into(), json!(correlation_id()));
            let mut err = ApiError::raw(StatusCode::TOO_MANY_REQUESTS, body);
            if cfg.retry_after_on_429 {
                let local = now + i64::from(cfg.account_utc_offset_minutes) * 60_000;
                let secs = (DAY_MS - local.rem_euclid(DAY_MS)) / 1000 + 1;
                err = err.header("retry-after", secs.to_string());
            }
            return Err((err, self.headers(cfg, now)));
        }
        let counts_general = !is_search || cfg.search_counts_toward_general;
        if counts_general && self.accepted.len() >= cfg.ten_second_limit() as usize {
            counters.rate_limited_ten_secondly += 1;
            // contract §3.1: TEN_SECONDLY_ROLLING body.
            let mut body = Map::new();
            body.insert("status".into(), json!("error"));
            body.insert(
                "message".into(),
                json!("You have reached your ten_secondly_rolling limit."),
            );
            body.insert("errorType".into(), json!("RATE_LIMIT"));
            body.insert("correlationId".into(), json!(correlation_id()));
            body.insert("policyName".into(), json!("TEN_SECONDLY_ROLLING"));
            body.insert(
                "groupName".into(),
                json!(format!(
                    "publicapi:hapikey-api-calls-ten-secondly:{}",
                    cfg.portal_id
                )),
            );
            let mut err = ApiError::raw(StatusCode::TOO_MANY_REQUESTS, body);
            if cfg.retry_after_on_429 {
                let oldest = self.accepted.front().copied().unwrap_or(now);
                let wait_ms = (oldest + TEN_SECONDS_MS - now).max(1);
                err = err.header("retry-after", ((wait_ms + 999) / 1000).to_string());
            }
            return Err((err, self.headers(cfg, now)));
        }
        if is_search && self.search_accepted.len() >= cfg.search_per_second as usize {
            counters.rate_limited_secondly += 1;
            // contract §3.1 / §9: the search variant, identified by message, without policyName.
            let mut body = Map::new();
            body.insert("status".into(), json!("error"));
            body.insert(
                "message".into(),
                json!("You have reached your secondly limit."),
            );
            body.insert("errorType".into(), json!("RATE_LIMIT"));
            body.insert("correlationId".into(), json!(correlation_id()));
            let mut err = ApiError::raw(StatusCode::TOO_MANY_REQUESTS, body);
            if cfg.retry_after_on_429 {
                err = err.header("retry-after", "1");
            }
            return Err((err, self.headers(cfg, now)));
        }
        if counts_general {
            self.accepted.push_back(now);
        }
        if is_search {
            self.search_accepted.push_back(now);
        }
        self.daily_used += 1;
        counters.daily_used = self.daily_used;
        Ok(self.headers(cfg, now))
    }
}

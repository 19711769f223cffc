//! The HTTP executor: every request takes a slot from the shared [`RateLimiter`], carries the
//! Bearer token (contract §6), and goes through the 429 policies (contract §3.1) and the bounded
//! retries of [`super::retry`]. Only the path of a call is ever logged or put in an error.

use super::error::{ApiErrorBody, HubSpotError, Result};
use super::ratelimit::{RateLimitPolicy, RateLimiter, classify_429, parse_retry_after};
use super::retry::{Decision, Outcome, RetryPolicy, Safety, decide, is_transient, jitter01};
use super::token::ApiToken;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How one request ended, for `marketplace_hubspot_calls_total{outcome}`: answered (`ok`),
/// refused (`client_error`, `server_error`, `rate_limited`, `daily_limited` for a `DAILY` 429),
/// lost (`transport_error`), or not sent at all because the daily limit is exhausted
/// (`refused_daily`).
pub const CALL_OUTCOMES: [&str; 7] = [
    "ok",
    "client_error",
    "server_error",
    "transport_error",
    "rate_limited",
    "daily_limited",
    "refused_daily",
];

#[derive(Debug, Clone, Copy)]
enum CallOutcome {
    Ok,
    ClientError,
    ServerError,
    TransportError,
    RateLimited,
    DailyLimited,
    RefusedDaily,
}

/// Waits for a rate-limit slot shorter than this are not counted as waits.
const NOTICEABLE_WAIT: Duration = Duration::from_millis(1);

/// Counters for metrics and the benchmark.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    ambiguous: AtomicU64,
    outcomes: [AtomicU64; CALL_OUTCOMES.len()],
    rate_limit_waits: AtomicU64,
    rate_limit_wait_micros: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests sent (retries and 429s included).
    pub requests: u64,
    /// 429 responses received.
    pub rate_limited: u64,
    /// Transient failures retried.
    pub retries: u64,
    /// Creates that failed ambiguously.
    pub ambiguous: u64,
    /// Requests by how they ended, in the order of [`CALL_OUTCOMES`].
    pub outcomes: [u64; CALL_OUTCOMES.len()],
    /// Times a request waited for the shared rate limiter (a slot, or a 429 pause).
    pub rate_limit_waits: u64,
    /// Total time spent in those waits, in microseconds.
    pub rate_limit_wait_micros: u64,
}

impl StatsSnapshot {
    /// Requests that ended with `outcome` (one of [`CALL_OUTCOMES`]; 0 for another name).
    pub fn outcome(&self, outcome: &str) -> u64 {
        CALL_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| self.outcomes[i])
    }
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            ambiguous: self.ambiguous.load(Ordering::Relaxed),
            outcomes: std::array::from_fn(|i| self.outcomes[i].load(Ordering::Relaxed)),
            rate_limit_waits: self.rate_limit_waits.load(Ordering::Relaxed),
            rate_limit_wait_micros: self.rate_limit_wait_micros.load(Ordering::Relaxed),
        }
    }

    fn ended(&self, outcome: CallOutcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn waited(&self, wait: Duration) {
        if wait >= NOTICEABLE_WAIT {
            self.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
            self.rate_limit_wait_micros
                .fetch_add(micros, Ordering::Relaxed);
        }
    }
}

/// One API call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Short description for errors and logs, e.g. `"create subscriptions"`.
    pub op: String,
    pub method: Method,
    /// Path below the base URL, starting with `/`; ids in it are validated numeric strings.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    pub safety: Safety,
    /// Counts against the search bucket too (contract §2.5).
    pub search: bool,
}

impl Call {
    pub fn new(op: impl Into<String>, method: Method, path: impl Into<String>) -> Self {
        let safety = if method == Method::POST {
            Safety::Create
        } else {
            Safety::Idempotent
        };
        Call {
            op: op.into(),
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            safety,
            search: false,
        }
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_string(), value.into()));
        self
    }

    /// POSTs that only read (batch read, search, batch upsert by unique key) are idempotent.
    pub fn idempotent(mut self) -> Self {
        self.safety = Safety::Idempotent;
        self
    }

    pub fn search(mut self) -> Self {
        self.search = true;
        self
    }
}

/// A 2xx response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// How one request ended.
#[derive(Debug)]
enum Attempt {
    Done(Reply),
    /// A 10-second or search 429: the limiter is paused; try again through it.
    RateLimited(RateLimitPolicy),
    Failed {
        outcome: Outcome,
        status: Option<u16>,
        body: ApiErrorBody,
    },
}

impl Attempt {
    fn failed(outcome: Outcome, status: Option<u16>, message: String) -> Self {
        Attempt::Failed {
            outcome,
            status,
            body: ApiErrorBody {
                message: Some(message),
                ..ApiErrorBody::default()
            },
        }
    }
}

fn now_epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Transport shared by every clone of the client.
#[derive(Debug)]
pub struct Transport {
    client: reqwest::Client,
    base_url: String,
    limiter: Arc<RateLimiter>,
    retry: RetryPolicy,
    stats: Stats,
}

impl Transport {
    pub fn new(
        base_url: &str,
        token: &ApiToken,
        limiter: Arc<RateLimiter>,
        retry: RetryPolicy,
        timeout: Duration,
    ) -> Result<Self> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(HubSpotError::Invalid(format!(
                "HubSpot base URL {base:?} is not http(s)"
            )));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| HubSpotError::Invalid("the HubSpot token is not a valid header".into()))?;
        // Keeps the value out of `Debug` output of requests and headers.
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("marketplace-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HubSpotError::Invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Transport {
            client,
            base_url: base,
            limiter,
            retry,
            stats: Stats::default(),
        })
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// Sends `call` and parses the 2xx body as `T`.
    pub async fn json<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        let reply = self.send(call).await?;
        serde_json::from_slice(&reply.body).map_err(|e| HubSpotError::Decode {
            op: call.op.clone(),
            reason: e.to_string(),
        })
    }

    /// Sends `call` until it succeeds, fails for good, or (for creates) fails ambiguously.
    pub async fn send(&self, call: &Call) -> Result<Reply> {
        let url = format!("{}{}", self.base_url, call.path);
        let mut attempt: u32 = 0;
        let mut rate_waits: u32 = 0;
        loop {
            let (outcome, status, body) = match self.attempt(call, &url).await? {
                Attempt::Done(reply) => return Ok(reply),
                Attempt::RateLimited(policy) => {
                    rate_waits += 1;
                    if rate_waits > self.retry.max_rate_limit_waits {
                        return Err(HubSpotError::RateLimited {
                            op: call.op.clone(),
                            policy: policy.as_str().to_string(),
                        });
                    }
                    // The limiter now holds everyone back until the window has passed.
                    continue;
                }
                Attempt::Failed {
                    outcome,
                    status,
                    body,
                } => (outcome, status, body),
            };
            match decide(&self.retry, call.safety, outcome, attempt, jitter01()) {
                Decision::Retry(wait) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(op = %call.op, ?status, attempt, ?wait, "retrying HubSpot call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Decision::Ambiguous => {
                    self.stats.ambiguous.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(op = %call.op, ?status, "HubSpot create failed ambiguously");
                    return Err(HubSpotError::AmbiguousAfterCommit {
                        op: call.op.clone(),
                        status,
                    });
                }
                Decision::Fail => {
                    return Err(match status {
                        Some(s) if !is_transient(s) => HubSpotError::from_status(&call.op, s, body),
                        _ => HubSpotError::Retryable {
                            op: call.op.clone(),
                            status,
                            body: Box::new(body),
                            retry_after: match outcome {
                                Outcome::Status { retry_after, .. } => retry_after,
                                Outcome::Transport { .. } => None,
                            },
                        },
                    });
                }
            }
        }
    }

    /// One request under one rate-limit slot.
    async fn attempt(&self, call: &Call, url: &str) -> Result<Attempt> {
        let asked = std::time::Instant::now();
        let permit = self.limiter.acquire(call.search).await.map_err(|d| {
            self.stats.ended(CallOutcome::RefusedDaily);
            HubSpotError::DailyLimitExhausted {
                retry_in: d.retry_in,
            }
        })?;
        self.stats.waited(asked.elapsed());
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .client
            .request(call.method.clone(), url)
            .query(&call.query);
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        let sent = req.send().await;
        // The response (or the failure) has arrived: the slot starts cooling down now.
        drop(permit);
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                let connect = e.is_connect();
                // Errors name the call, not the URL.
                let e = e.without_url();
                tracing::debug!(op = %call.op, path = %call.path, error = %e, "HubSpot transport error");
                self.stats.ended(CallOutcome::TransportError);
                return Ok(Attempt::failed(
                    Outcome::Transport { sent: !connect },
                    None,
                    e.to_string(),
                ));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        self.observe_headers(&headers);
        let bytes = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            // The status arrived but not the body: for a create, whether it committed is
            // unknown; a safe call is simply repeated.
            Err(e) => {
                let e = e.without_url();
                tracing::debug!(op = %call.op, error = %e, "HubSpot response body lost");
                let message = format!("HTTP {status}, body lost: {e}");
                self.stats.ended(CallOutcome::TransportError);
                return Ok(Attempt::failed(
                    Outcome::Transport { sent: true },
                    None,
                    message,
                ));
            }
        };
        if status.is_success() {
            self.stats.ended(CallOutcome::Ok);
            return Ok(Attempt::Done(Reply {
                status: status.as_u16(),
                body: bytes,
            }));
        }
        let body = ApiErrorBody::parse(&bytes);
        let retry_after = header(&headers, "retry-after").and_then(parse_retry_after);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return self.rate_limited(call, &headers, &body, retry_after);
        }
        self.stats.ended(if status.is_server_error() {
            CallOutcome::ServerError
        } else {
            CallOutcome::ClientError
        });
        Ok(Attempt::Failed {
            outcome: Outcome::Status {
                status: status.as_u16(),
                retry_after,
            },
            status: Some(status.as_u16()),
            body,
        })
    }

    /// contract §3.1: a 429 is a refusal before processing, so even a create may go again once
    /// the limiter allows; `DAILY` stops everything until the reset.
    fn rate_limited(
        &self,
        call: &Call,
        headers: &HeaderMap,
        body: &ApiErrorBody,
        retry_after: Option<Duration>,
    ) -> Result<Attempt> {
        self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        let policy = classify_429(body);
        self.stats.ended(match policy {
            RateLimitPolicy::Daily => CallOutcome::DailyLimited,
            _ => CallOutcome::RateLimited,
        });
        let interval = header(headers, "x-hubspot-ratelimit-interval-milliseconds")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis);
        tracing::warn!(op = %call.op, policy = policy.as_str(), "HubSpot rate limit hit");
        match self
            .limiter
            .on_rate_limited(policy, retry_after, interval, now_epoch_ms())
        {
            Some(wait) => Err(HubSpotError::DailyLimitExhausted { retry_in: wait }),
            None => Ok(Attempt::RateLimited(policy)),
        }
    }

    /// contract §3.1 headers: adopt a smaller portal bucket; stop before a `DAILY` 429.
    fn observe_headers(&self, h: &HeaderMap) {
        if let Some(max) =
            header(h, "x-hubspot-ratelimit-max").and_then(|v| v.trim().parse::<u32>().ok())
        {
            self.limiter.observe_max(max);
        }
        if header(h, "x-hubspot-ratelimit-daily-remaining").map(str::trim) == Some("0") {
            self.limiter.on_daily_remaining_zero(now_epoch_ms());
        }
    }
}

//! One rate limiter shared by every reconciler (contract §3, §8.3): a rolling 10-second bucket
//! sized to the tier, a separate 5 requests/s search bucket, and the 429 policies of §3.1.
//!
//! Rolling windows are enforced conservatively: a slot is taken when a request is sent and is
//! only given back `window + margin` after its response arrived. HubSpot counts a request when
//! it receives it, which is between those two instants, so no rolling window on HubSpot's side
//! can ever see more than the bucket's capacity from this process, whatever the latency.

use super::error::ApiErrorBody;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// HubSpot tiers (contract §3 table, per app per 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Free,
    Starter,
    Professional,
    Enterprise,
    /// "API Limit Increase" on any tier.
    LimitIncrease,
}

impl Tier {
    pub fn ten_second_limit(self) -> u32 {
        match self {
            Tier::Free | Tier::Starter => 100,
            Tier::Professional | Tier::Enterprise => 190,
            Tier::LimitIncrease => 250,
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Some(match s.to_ascii_lowercase().as_str() {
            "free" => Tier::Free,
            "starter" => Tier::Starter,
            "professional" | "pro" => Tier::Professional,
            "enterprise" => Tier::Enterprise,
            "increase" | "limit-increase" | "limit_increase" => Tier::LimitIncrease,
            _ => return None,
        })
    }
}

/// Limits are configuration, not constants (contract §3: HubSpot has changed them over time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests per rolling window (the 10-second bucket). Lower it when other apps or pods
    /// share the budget (contract §8.3).
    pub per_window: u32,
    pub window: Duration,
    /// Added to every wait so clock granularity on either side cannot let a window overfill.
    pub margin: Duration,
    /// contract §2.5: 5 search requests per second per account.
    pub search_per_second: u32,
    /// Account time zone for the daily reset when HubSpot sends no `Retry-After` (contract §3).
    pub account_utc_offset_minutes: i32,
}

impl RateLimitConfig {
    pub fn for_tier(tier: Tier) -> Self {
        RateLimitConfig {
            per_window: tier.ten_second_limit(),
            window: Duration::from_secs(10),
            margin: Duration::from_millis(100),
            search_per_second: 5,
            account_utc_offset_minutes: 0,
        }
    }
}

/// Which 429 policy HubSpot applied (contract §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitPolicy {
    TenSecondly,
    /// The search limit; identified by message, it may lack `policyName`.
    Secondly,
    Daily,
    /// Unrecognised body: treated like the 10-second policy.
    Unknown,
}

impl RateLimitPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitPolicy::TenSecondly => "TEN_SECONDLY_ROLLING",
            RateLimitPolicy::Secondly => "SECONDLY",
            RateLimitPolicy::Daily => "DAILY",
            RateLimitPolicy::Unknown => "UNKNOWN",
        }
    }
}

/// Reads the policy from a 429 body: `policyName` first, then the message ("You have reached
/// your ten_secondly_rolling limit." contains "secondly limit" too, so it is checked first).
pub fn classify_429(body: &ApiErrorBody) -> RateLimitPolicy {
    match body
        .policy_name
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("TEN_SECONDLY_ROLLING") => return RateLimitPolicy::TenSecondly,
        Some("SECONDLY") => return RateLimitPolicy::Secondly,
        Some("DAILY") => return RateLimitPolicy::Daily,
        _ => {}
    }
    let msg = body.message.as_deref().unwrap_or("").to_ascii_lowercase();
    if msg.contains("ten_secondly") {
        RateLimitPolicy::TenSecondly
    } else if msg.contains("daily limit") {
        RateLimitPolicy::Daily
    } else if msg.contains("secondly limit") {
        RateLimitPolicy::Secondly
    } else {
        RateLimitPolicy::Unknown
    }
}

/// `Retry-After` as delay-seconds (contract §3.1/§4: seconds for REST; may be fractional).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// Time until the next midnight in the account's time zone (contract §3: the daily reset).
pub fn until_local_midnight(now_epoch_ms: i64, utc_offset_minutes: i32) -> Duration {
    const DAY: i64 = 86_400_000;
    let local = now_epoch_ms + i64::from(utc_offset_minutes) * 60_000;
    let left = DAY - local.rem_euclid(DAY);
    Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

#[derive(Debug)]
struct Bucket {
    capacity: usize,
    window: Duration,
    in_flight: usize,
    /// When each finished request's slot frees up, in order.
    frees_at: VecDeque<Instant>,
}

enum Wait {
    Ready,
    Until(Instant),
    /// Every slot is held by a request still in flight.
    Release,
}

impl Bucket {
    fn new(capacity: u32, window: Duration) -> Self {
        Bucket {
            capacity: capacity.max(1) as usize,
            window,
            in_flight: 0,
            frees_at: VecDeque::new(),
        }
    }

    fn prune(&mut self, now: Instant) {
        while self.frees_at.front().is_some_and(|t| *t <= now) {
            self.frees_at.pop_front();
        }
    }

    fn wait(&mut self, now: Instant) -> Wait {
        self.prune(now);
        if self.in_flight + self.frees_at.len() < self.capacity {
            return Wait::Ready;
        }
        match self.frees_at.front() {
            Some(t) => Wait::Until(*t),
            None => Wait::Release,
        }
    }

    fn release(&mut self, now: Instant, margin: Duration) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.frees_at.push_back(now + self.window + margin);
    }
}

#[derive(Debug)]
struct State {
    general: Bucket,
    search: Bucket,
    paused_until: Option<Instant>,
    search_paused_until: Option<Instant>,
    daily_until: Option<Instant>,
}

/// Returned by [`RateLimiter::acquire`] while the daily limit is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyExhausted {
    pub retry_in: Duration,
}

/// The shared limiter. Clone the `Arc`, never the limiter.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    state: Mutex<State>,
    notify: Notify,
}

/// A taken slot; dropping it (when the response arrived) starts the slot's cool-down.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<RateLimiter>,
    search: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let now = Instant::now();
        let margin = self.limiter.config.margin;
        {
            let mut st = self.limiter.lock();
            st.general.release(now, margin);
            if self.search {
                st.search.release(now, margin);
            }
        }
        self.limiter.notify.notify_waiters();
    }
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Arc<Self> {
        let state = State {
            general: Bucket::new(config.per_window, config.window),
            search: Bucket::new(config.search_per_second, Duration::from_secs(1)),
            paused_until: None,
            search_paused_until: None,
            daily_until: None,
        };
        Arc::new(RateLimiter {
            config,
            state: Mutex::new(state),
            notify: Notify::new(),
        })
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current size of the 10-second bucket (it may shrink, see [`Self::observe_max`]).
    pub fn capacity(&self) -> usize {
        self.lock().general.capacity
    }

    /// Waits for a slot (and a search slot for searches). Fails at once, without waiting or
    /// calling, while the daily limit is exhausted (contract §3.1: never hammer `DAILY`).
    pub async fn acquire(self: &Arc<Self>, search: bool) -> Result<Permit, DailyExhausted> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                if let Some(until) = st.daily_until {
                    if until > now {
                        return Err(DailyExhausted {
                            retry_in: until - now,
                        });
                    }
                    st.daily_until = None;
                }
                let paused = [
                    st.paused_until,
                    if search { st.search_paused_until } else { None },
                ]
                .into_iter()
                .flatten()
                .filter(|t| *t > now)
                .max();
                match paused {
                    Some(t) => Wait::Until(t),
                    None => {
                        let s = if search {
                            st.search.wait(now)
                        } else {
                            Wait::Ready
                        };
                        match (s, st.general.wait(now)) {
                            (Wait::Ready, Wait::Ready) => {
                                st.general.in_flight += 1;
                                if search {
                                    st.search.in_flight += 1;
                                }
                                return Ok(Permit {
                                    limiter: Arc::clone(self),
                                    search,
                                });
                            }
                            (Wait::Until(a), Wait::Until(b)) => Wait::Until(a.max(b)),
                            (Wait::Until(a), _) | (_, Wait::Until(a)) => Wait::Until(a),
                            _ => Wait::Release,
                        }
                    }
                }
            };
            match wait {
                Wait::Until(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = &mut notified => {}
                    }
                }
                Wait::Release | Wait::Ready => notified.await,
            }
        }
    }

    /// A 429 arrived. Pauses the affected bucket for everyone; returns the daily wait when the
    /// policy is `DAILY`.
    pub fn on_rate_limited(
        &self,
        policy: RateLimitPolicy,
        retry_after: Option<Duration>,
        interval: Option<Duration>,
        now_epoch_ms: i64,
    ) -> Option<Duration> {
        let now = Instant::now();
        let margin = self.config.margin;
        let mut st = self.lock();
        let extend = |slot: &mut Option<Instant>, until: Instant| {
            *slot = Some(slot.map_or(until, |t| t.max(until)));
        };
        match policy {
            // contract §3.1: honour Retry-After, else wait out the window (the interval header
            // or 10 s).
            RateLimitPolicy::TenSecondly | RateLimitPolicy::Unknown => {
                let wait = retry_after.or(interval).unwrap_or(self.config.window);
                extend(&mut st.paused_until, now + wait + margin);
                None
            }
            // contract §3.1: wait ≥ 1 s for search.
            RateLimitPolicy::Secondly => {
                let wait = retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_secs(1));
                extend(&mut st.search_paused_until, now + wait + margin);
                None
            }
            RateLimitPolicy::Daily => {
                let wait = retry_after.unwrap_or_else(|| {
                    until_local_midnight(now_epoch_ms, self.config.account_utc_offset_minutes)
                });
                extend(&mut st.daily_until, now + wait);
                Some(wait)
            }
        }
    }

    /// `X-HubSpot-RateLimit-Daily-Remaining: 0`: the next call would be a `DAILY` 429, so stop
    /// now instead of spending it.
    pub fn on_daily_remaining_zero(&self, now_epoch_ms: i64) {
        let wait = until_local_midnight(now_epoch_ms, self.config.account_utc_offset_minutes);
        let mut st = self.lock();
        let until = Instant::now() + wait;
        st.daily_until = Some(st.daily_until.map_or(until, |t| t.max(until)));
    }

    /// `X-HubSpot-RateLimit-Max` below the configured bucket: the portal's tier is lower than
    /// configured, so shrink to it (never grow past the configuration).
    pub fn observe_max(&self, max: u32) {
        let max = (max as usize).max(1);
        let mut st = self.lock();
        if max < st.general.capacity {
            tracing::warn!(
                configured = st.general.capacity,
                portal = max,
                "HubSpot reports a smaller 10-second limit than configured; using it"
            );
            st.general.capacity = max;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(policy: Option<&str>, message: &str) -> ApiErrorBody {
        ApiErrorBody {
            policy_name: policy.map(str::to_string),
            message: Some(message.into()),
            ..ApiErrorBody::default()
        }
    }

    #[test]
    fn classifies_the_429_shapes_of_the_contract() {
        use RateLimitPolicy::*;
        assert_eq!(
            classify_429(&body(
                Some("TEN_SECONDLY_ROLLING"),
                "You have reached your ten_secondly_rolling limit."
            )),
            TenSecondly
        );
        assert_eq!(
            classify_429(&body(Some("DAILY"), "You have reached your daily limit.")),
            Daily
        );
        assert_eq!(classify_429(&body(Some("SECONDLY"), "")), Secondly);
        // The search variant without policyName: by message.
        assert_eq!(
            classify_429(&body(None, "You have reached your secondly limit.")),
            Secondly
        );
        assert_eq!(
            classify_429(&body(
                None,
                "You have reached your ten_secondly_rolling limit."
            )),
            TenSecondly
        );
        assert_eq!(classify_429(&body(None, "slow down")), Unknown);
    }

    #[test]
    fn parses_retry_after_and_midnight() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        // 2026-11-22T23:00:00Z → 1 h to UTC midnight; in UTC+2 it is already 01:00 → 23 h.
        let t = 1_795_305_600_000 + 23 * 3_600_000;
        assert_eq!(until_local_midnight(t, 0), Duration::from_secs(3600));
        assert_eq!(until_local_midnight(t, 120), Duration::from_secs(23 * 3600));
    }

    fn cfg(n: u32) -> RateLimitConfig {
        RateLimitConfig {
            per_window: n,
            window: Duration::from_secs(10),
            margin: Duration::from_millis(100),
            search_per_second: 2,
            account_utc_offset_minutes: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_capacity_per_window() {
        let l = RateLimiter::new(cfg(3));
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..7 {
            let p = l.acquire(false).await.unwrap();
            sent.push(Instant::now() - start);
            drop(p);
        }
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![0, 0, 0, 10_100, 10_100, 10_100, 20_200]);
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_requests_hold_their_slot() {
        let l = RateLimiter::new(cfg(1));
        let p = l.acquire(false).await.unwrap();
        let l2 = Arc::clone(&l);
        let waiter = tokio::spawn(async move {
            let start = Instant::now();
            let _p = l2.acquire(false).await.unwrap();
            Instant::now() - start
        });
        // The first request takes 30 s; its slot frees 10.1 s after it ends.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(p);
        assert_eq!(waiter.await.unwrap().as_millis(), 40_100);
    }

    #[tokio::test(start_paused = true)]
    async fn search_uses_both_buckets() {
        let l = RateLimiter::new(cfg(100));
        let start = Instant::now();
        for _ in 0..3 {
            drop(l.acquire(true).await.unwrap());
        }
        assert_eq!((Instant::now() - start).as_millis(), 1_100);
    }

    #[tokio::test(start_paused = true)]
    async fn ten_secondly_429_pauses_everyone_and_daily_fails_fast() {
        let l = RateLimiter::new(cfg(100));
        let start = Instant::now();
        assert_eq!(
            l.on_rate_limited(RateLimitPolicy::TenSecondly, None, None, 0),
            None
        );
        drop(l.acquire(false).await.unwrap());
        assert_eq!((Instant::now() - start).as_millis(), 10_100);
        let start = Instant::now();
        l.on_rate_limited(
            RateLimitPolicy::TenSecondly,
            Some(Duration::from_secs(2)),
            None,
            0,
        );
        drop(l.acquire(false).await.unwrap());
        assert_eq!((Instant::now() - start).as_millis(), 2_100);
        // Daily: no waiting, a typed refusal until the reset.
        let wait = l.on_rate_limited(RateLimitPolicy::Daily, None, None, 23 * 3_600_000);
        assert_eq!(wait, Some(Duration::from_secs(3600)));
        let err = l.acquire(false).await.unwrap_err();
        assert_eq!(err.retry_in, Duration::from_secs(3600));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(l.acquire(false).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn shrinks_to_the_portal_limit() {
        let l = RateLimiter::new(cfg(190));
        l.observe_max(100);
        assert_eq!(l.capacity(), 100);
        l.observe_max(250);
        assert_eq!(l.capacity(), 100);
    }
}

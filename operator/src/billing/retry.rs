//! Bounded retries with jitter for transient failures (contract §3 "Other throttles", §4 table,
//! §8.10), as pure decisions. Creates are never retried blindly (contract §2.6): a failure that
//! may have committed is reported as ambiguous so the algorithm goes back to its lookup.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Whether repeating a call can change the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Reads, upserts by unique key, PUT associations, PATCH, DELETE, searches.
    Idempotent,
    /// `POST` creates and lifecycle actions: never repeated after a possible commit.
    Create,
}

/// How one attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No response. `sent = false` when the connection was never established, so nothing can
    /// have reached HubSpot.
    Transport { sent: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry(Duration),
    /// The call may have been applied: the caller must look before doing anything again.
    Ambiguous,
    /// Stop and surface the error.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total for transient failures (the first one included).
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Longest server-requested wait (477 `Retry-After`) worth sleeping through in-line.
    pub max_server_wait: Duration,
    /// How many 429 (10-second or search) waits one call may sit through.
    pub max_rate_limit_waits: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            max_server_wait: Duration::from_secs(30),
            max_rate_limit_waits: 6,
        }
    }
}

/// contract §4: 5xx and the edge statuses are transient; 423 is a 2-s lock (§3); 477 a migration.
pub fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 423 | 477 | 500..=504 | 521..=526)
}

/// The least wait HubSpot documents for a status.
fn floor_for(status: u16) -> Duration {
    match status {
        // contract §3: "Locks last 2 s; wait at least 2 s".
        423 => Duration::from_secs(2),
        // contract §3: "502/504 when processing limits are hit: pause a few seconds".
        502 | 504 => Duration::from_secs(2),
        _ => Duration::ZERO,
    }
}

/// Exponential backoff with "equal jitter": half fixed, half random, capped.
pub fn backoff(policy: &RetryPolicy, attempt: u32, jitter01: f64) -> Duration {
    let exp = policy
        .base
        .saturating_mul(1u32 << attempt.min(16))
        .min(policy.cap);
    let half = exp / 2;
    half + half.mul_f64(jitter01.clamp(0.0, 1.0))
}

/// What to do after `attempt` (0-based) ended with `outcome`.
pub fn decide(
    policy: &RetryPolicy,
    safety: Safety,
    outcome: Outcome,
    attempt: u32,
    jitter01: f64,
) -> Decision {
    let last = attempt + 1 >= policy.max_attempts;
    match outcome {
        Outcome::Transport { sent: false } => {
            if last {
                Decision::Fail
            } else {
                Decision::Retry(backoff(policy, attempt, jitter01))
            }
        }
        Outcome::Transport { sent: true } => match safety {
            Safety::Create => Decision::Ambiguous,
            Safety::Idempotent if last => Decision::Fail,
            Safety::Idempotent => Decision::Retry(backoff(policy, attempt, jitter01)),
        },
        Outcome::Status {
            status,
            retry_after,
        } => {
            if !is_transient(status) {
                return Decision::Fail;
            }
            if safety == Safety::Create {
                // contract §8.10: a 5xx may come after the write committed.
                return Decision::Ambiguous;
            }
            if last {
                return Decision::Fail;
            }
            let wait = backoff(policy, attempt, jitter01).max(floor_for(status));
            match retry_after {
                Some(ra) if ra > policy.max_server_wait => Decision::Fail,
                Some(ra) => Decision::Retry(ra.max(wait)),
                None => Decision::Retry(wait),
            }
        }
    }
}

static JITTER_STATE: AtomicU64 = AtomicU64::new(0);

/// A number in [0, 1) for jitter (splitmix64; not for secrets).
pub fn jitter01() -> f64 {
    let seed = JITTER_STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(status: u16) -> Outcome {
        Outcome::Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn creates_are_never_retried_after_a_possible_commit() {
        let p = RetryPolicy::default();
        for s in [500, 502, 503, 504, 423] {
            assert_eq!(
                decide(&p, Safety::Create, st(s), 0, 0.5),
                Decision::Ambiguous
            );
        }
        assert_eq!(
            decide(
                &p,
                Safety::Create,
                Outcome::Transport { sent: true },
                0,
                0.5
            ),
            Decision::Ambiguous
        );
        // Never connected: nothing reached HubSpot, so even a create may go again.
        assert!(matches!(
            decide(
                &p,
                Safety::Create,
                Outcome::Transport { sent: false },
                0,
                0.5
            ),
            Decision::Retry(_)
        ));
        assert_eq!(decide(&p, Safety::Create, st(400), 0, 0.5), Decision::Fail);
    }

    #[test]
    fn safe_calls_retry_boundedly_with_documented_floors() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, Safety::Idempotent, st(423), 0, 0.0),
            Decision::Retry(Duration::from_secs(2))
        );
        assert_eq!(
            decide(&p, Safety::Idempotent, st(502), 0, 0.0),
            Decision::Retry(Duration::from_secs(2))
        );
        assert_eq!(
            decide(&p, Safety::Idempotent, st(500), 0, 0.0),
            Decision::Retry(Duration::from_millis(100))
        );
        assert_eq!(
            decide(&p, Safety::Idempotent, st(500), p.max_attempts - 1, 0.0),
            Decision::Fail
        );
        assert_eq!(
            decide(&p, Safety::Idempotent, st(404), 0, 0.0),
            Decision::Fail
        );
        let migr = |secs| Outcome::Status {
            status: 477,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            decide(&p, Safety::Idempotent, migr(10), 0, 0.0),
            Decision::Retry(Duration::from_secs(10))
        );
        assert_eq!(
            decide(&p, Safety::Idempotent, migr(3600), 0, 0.0),
            Decision::Fail
        );
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let p = RetryPolicy::default();
        assert_eq!(backoff(&p, 0, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(&p, 0, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(&p, 20, 1.0), Duration::from_secs(5));
        for _ in 0..1000 {
            let j = jitter01();
            assert!((0.0..1.0).contains(&j));
        }
    }
}

//! Per-object exponential backoff. kube's `error_policy` is stateless and never hears of
//! successes, so the reconcilers record failures here and reset them on success.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

/// Failure counts per object key, and the delays they earn.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before retrying: base·2ⁿ, capped,
    /// plus up to a quarter of jitter so objects failing together do not retry in lockstep.
    pub fn failed(&self, key: &str) -> Duration {
        let attempt = {
            let mut failures = self
                .failures
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let count = failures.entry(key.to_owned()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        delay(self.base, self.max, attempt, key)
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(key);
    }

    /// How many objects are currently backing off.
    pub fn len(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The delay after `attempt` consecutive failures (pure, for tests).
pub fn delay(base: Duration, max: Duration, attempt: u32, key: &str) -> Duration {
    let exponential = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exponential.min(max);
    capped + jitter(capped / 4, key, attempt)
}

/// Deterministic jitter in `[0, span)`, derived from the key and attempt.
pub fn jitter(span: Duration, key: &str, salt: u32) -> Duration {
    let nanos = span.as_nanos() as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    let mut hasher = DefaultHasher::new();
    (key, salt).hash(&mut hasher);
    Duration::from_nanos(hasher.finish() % nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(300);

    #[test]
    fn doubles_per_failure_within_a_quarter_of_jitter() {
        for (attempt, expected) in [(1, 1), (2, 2), (3, 4), (4, 8), (10, 300)] {
            let d = delay(BASE, MAX, attempt, "ns/a");
            let expected = Duration::from_secs(expected);
            assert!(
                d >= expected && d < expected + expected / 4 + Duration::from_nanos(1),
                "{attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn success_resets_the_count() {
        let backoff = Backoff::new(BASE, MAX);
        backoff.failed("ns/a");
        backoff.failed("ns/a");
        assert!(backoff.failed("ns/a") >= Duration::from_secs(4));
        backoff.succeeded("ns/a");
        assert!(backoff.failed("ns/a") < Duration::from_secs(2));
        assert_eq!(backoff.len(), 1);
    }

    #[test]
    fn jitter_differs_between_objects() {
        let a = jitter(Duration::from_secs(60), "ns/a", 1);
        let b = jitter(Duration::from_secs(60), "ns/b", 1);
        assert_ne!(a, b);
    }
}

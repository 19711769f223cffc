//! A small bounded cache with a time-to-live, for TokenReview and SubjectAccessReview answers:
//! a caller's second request costs no apiserver call, and a revoked token or role stops working
//! within one TTL. Time is an argument, so the policy is tested without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Entries live `ttl`; at `capacity`, expired entries go first, then the oldest.
#[derive(Debug)]
pub struct ReviewCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Eq + Hash + Clone, V: Clone> ReviewCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        ReviewCache {
            ttl,
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// The value stored for `key` if it is younger than the TTL at `now`.
    pub fn get(&mut self, key: &K, now: Instant) -> Option<V> {
        let (at, value) = self.entries.get(key)?;
        if now.saturating_duration_since(*at) < self.ttl {
            return Some(value.clone());
        }
        self.entries.remove(key);
        None
    }

    pub fn insert(&mut self, key: K, value: V, now: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            if self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(key, (now, value));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn an_entry_lives_for_the_ttl_only() {
        let t0 = Instant::now();
        let mut cache = ReviewCache::new(TTL, 4);
        cache.insert("token", true, t0);
        assert_eq!(cache.get(&"token", t0 + Duration::from_secs(9)), Some(true));
        assert_eq!(cache.get(&"token", t0 + TTL), None);
        assert!(cache.is_empty(), "an expired entry is dropped when read");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_the_oldest() {
        let t0 = Instant::now();
        let mut cache = ReviewCache::new(TTL, 2);
        cache.insert("a", 1, t0);
        cache.insert("b", 2, t0 + Duration::from_secs(5));
        cache.insert("c", 3, t0 + Duration::from_secs(6));
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get(&"a", t0 + Duration::from_secs(6)),
            None,
            "oldest gone"
        );
        assert_eq!(cache.get(&"b", t0 + Duration::from_secs(6)), Some(2));
        // At t0+15 "b" has expired: it makes room, "c" stays.
        cache.insert("d", 4, t0 + Duration::from_secs(15));
        assert_eq!(cache.get(&"c", t0 + Duration::from_secs(15)), Some(3));
        assert_eq!(cache.get(&"d", t0 + Duration::from_secs(15)), Some(4));
    }

    #[test]
    fn refreshing_a_key_in_a_full_cache_evicts_nothing() {
        let t0 = Instant::now();
        let mut cache = ReviewCache::new(TTL, 2);
        cache.insert("a", 1, t0);
        cache.insert("b", 2, t0);
        cache.insert("a", 5, t0 + Duration::from_secs(1));
        assert_eq!(cache.get(&"b", t0 + Duration::from_secs(1)), Some(2));
        assert_eq!(cache.get(&"a", t0 + Duration::from_secs(1)), Some(5));
    }
}

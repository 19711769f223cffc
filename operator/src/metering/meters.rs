//! The usage store as the API uses it: recording drops the cached totals it changes, and the
//! totals entitlement checks read are reused for a moment, so a hot check path does not query
//! the store on every call (another replica's events show after at most the cache's TTL).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{AnyUsageStore, MeterQuery, MeterTotals, Recorded, StoreError, UsageEvent, UsageStore};

/// Most totals kept; past it the cache starts over (it only saves queries).
const CACHE_CAPACITY: usize = 100_000;

type TotalsKey = (String, String, i64, Option<String>);

/// The store and the totals recently read from it.
pub struct Meters {
    store: AnyUsageStore,
    ttl: Duration,
    cache: Mutex<HashMap<TotalsKey, (MeterTotals, Instant)>>,
}

impl Meters {
    pub fn new(store: AnyUsageStore, ttl: Duration) -> Arc<Meters> {
        Arc::new(Meters {
            store,
            ttl,
            cache: Mutex::default(),
        })
    }

    pub fn store(&self) -> &AnyUsageStore {
        &self.store
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<TotalsKey, (MeterTotals, Instant)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `events`, then forgets the cached totals of their tenants' meters.
    pub async fn record(&self, events: &[UsageEvent]) -> Result<Recorded, StoreError> {
        let recorded = self.store.record(events).await?;
        if recorded.accepted > 0 {
            let mut cache = self.cache();
            cache.retain(|(tenant, meter, _, _), _| {
                !events
                    .iter()
                    .any(|e| &e.tenant == tenant && &e.meter == meter)
            });
        }
        Ok(recorded)
    }

    /// The query's totals, from the cache when read less than the TTL ago.
    pub async fn totals(&self, query: MeterQuery<'_>) -> Result<MeterTotals, StoreError> {
        let key = (
            query.tenant.to_string(),
            query.meter.to_string(),
            query.period.key(),
            query.property.map(str::to_string),
        );
        if let Some((totals, at)) = self.cache().get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(*totals);
        }
        let totals = self.store.totals(query).await?;
        let mut cache = self.cache();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, (totals, Instant::now()));
        Ok(totals)
    }
}

//! The front door's live view of the shared caches: the [`TenantIndex`] and the catalog's
//! feature set, each kept current by a task that follows one [`SharedCache`]'s updates, and a
//! wake-up per tenant for its open change streams. Requests read a tenant in O(its features)
//! and the catalog as computed once per batch of Listing changes; the watch never waits for a
//! reader, and a wake-up never waits for a stream.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::watch;

use super::decide::{EntitlementView, catalog_features};
use super::tenant_index::TenantIndex;
use crate::api::{Entitlement, Listing};
use crate::runtime::{CacheUpdate, SharedCache, Stores};

/// Cache updates applied under one lock: a re-list arrives as a burst, and the catalog is
/// recomputed once per batch rather than once per Listing in it.
const BATCH: usize = 1024;

/// A cloneable handle on the index; its tasks run on the runtime that started it.
#[derive(Clone)]
pub struct LiveIndex {
    shared: Arc<Shared>,
}

struct Shared {
    epoch: u64,
    tenants: RwLock<TenantIndex>,
    catalog: RwLock<Arc<BTreeSet<String>>>,
    /// One per tenant with an open stream: the number of the tenant's latest change.
    wakers: Mutex<HashMap<String, watch::Sender<u64>>>,
    closed: AtomicBool,
    entitlements_ready: watch::Sender<bool>,
    catalog_ready: watch::Sender<bool>,
}

impl Shared {
    fn wakers(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the open streams of the `touched` tenants: their checks changed through `seq`.
    fn wake(&self, touched: &BTreeSet<String>, seq: u64) {
        if touched.is_empty() {
            return;
        }
        let wakers = self.wakers();
        for tenant in touched {
            if let Some(sender) = wakers.get(tenant) {
                sender.send_replace(seq);
            }
        }
    }
}

impl LiveIndex {
    /// Starts following `stores`' Entitlements and Listings.
    pub fn start(stores: &Stores) -> LiveIndex {
        // Ids from another replica or an earlier process must not pass for ours.
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            epoch,
            tenants: RwLock::new(TenantIndex::default()),
            catalog: RwLock::default(),
            wakers: Mutex::default(),
            closed: AtomicBool::new(false),
            entitlements_ready: watch::Sender::new(false),
            catalog_ready: watch::Sender::new(false),
        });
        tokio::spawn(follow_entitlements(
            shared.clone(),
            stores.entitlements.clone(),
        ));
        tokio::spawn(follow_listings(shared.clone(), stores.listings.clone()));
        LiveIndex { shared }
    }

    /// Resolves once both caches have synced and the index holds all they held then.
    pub async fn wait_until_ready(&self) {
        let mut entitlements = self.shared.entitlements_ready.subscribe();
        let mut catalog = self.shared.catalog_ready.subscribe();
        // Sequentially: a guard held across the other wait would make this future not `Send`.
        let _ = entitlements.wait_for(|ready| *ready).await;
        let _ = catalog.wait_for(|ready| *ready).await;
    }

    /// This process's event-id epoch (see [`super::sse::EventId`]).
    pub fn epoch(&self) -> u64 {
        self.shared.epoch
    }

    /// The tenant's granted features, sorted by feature.
    pub fn features(&self, tenant: &str) -> Arc<Vec<EntitlementView>> {
        self.read(|index| index.features(tenant))
    }

    /// Every feature code some Listing grants.
    pub fn catalog(&self) -> Arc<BTreeSet<String>> {
        self.shared
            .catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `f` on the index as it is now (keep it short: the watch waits meanwhile).
    pub fn read<R>(&self, f: impl FnOnce(&TenantIndex) -> R) -> R {
        f(&self
            .shared
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner()))
    }

    /// A wake-up for each change to `tenant`'s checks from now on. Take it before reading
    /// what to send, so a change in between wakes it.
    pub fn wake_on_change(&self, tenant: &str) -> ChangeWaker {
        let mut wakers = self.shared.wakers();
        let receiver = if self.shared.closed.load(Ordering::SeqCst) {
            watch::channel(0).1
        } else {
            wakers
                .entry(tenant.to_string())
                .or_insert_with(|| watch::Sender::new(0))
                .subscribe()
        };
        ChangeWaker {
            receiver,
            shared: self.shared.clone(),
            tenant: tenant.to_string(),
        }
    }

    /// Records which of `tenant`'s features have used up their hard-limited meter this period
    /// (see [`TenantIndex::set_usage_limits`]) and wakes its streams if that changed a check.
    pub fn set_usage_limits(&self, tenant: &str, limits: &BTreeMap<String, bool>) {
        let mut touched = BTreeSet::new();
        let seq = {
            let mut index = self
                .shared
                .tenants
                .write()
                .unwrap_or_else(|p| p.into_inner());
            index.set_usage_limits(tenant, limits, &mut touched);
            index.seq()
        };
        self.shared.wake(&touched, seq);
    }

    /// Ends every open stream, and any opened later (shutdown: they would hold it up).
    pub fn close_streams(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wakers().clear();
    }
}

/// Wakes when the tenant's checks change; forgets the tenant's waker when the last one drops.
pub struct ChangeWaker {
    receiver: watch::Receiver<u64>,
    shared: Arc<Shared>,
    tenant: String,
}

impl ChangeWaker {
    /// Resolves at the next change (at once if one came since the last call); `false` once
    /// streams are closed.
    pub async fn changed(&mut self) -> bool {
        self.receiver.changed().await.is_ok()
    }
}

impl Drop for ChangeWaker {
    fn drop(&mut self) {
        let mut wakers = self.shared.wakers();
        // Under the lock nobody subscribes meanwhile: one receiver left is this one.
        if wakers
            .get(&self.tenant)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            wakers.remove(&self.tenant);
        }
    }
}

async fn follow_entitlements(shared: Arc<Shared>, cache: SharedCache<Entitlement>) {
    // Subscribing once synced makes the first update the whole list: ready once it is in.
    cache.wait_until_ready().await;
    let updates = cache.updates().ready_chunks(BATCH);
    futures::pin_mut!(updates);
    while let Some(batch) = updates.next().await {
        let mut touched = BTreeSet::new();
        let seq = {
            let mut index = shared.tenants.write().unwrap_or_else(|p| p.into_inner());
            for update in batch {
                match update {
                    CacheUpdate::Snapshot(all) => index.replace_all(all, &mut touched),
                    // Applied or deleted, the cache says which: it holds it now or not.
                    CacheUpdate::Changed(object) => {
                        let key = ObjectRef::from_obj(object.as_ref());
                        let current = cache.get(&key);
                        index.sync(key, current, &mut touched);
                    }
                }
            }
            index.seq()
        };
        shared.wake(&touched, seq);
        shared.entitlements_ready.send_replace(true);
    }
}

async fn follow_listings(shared: Arc<Shared>, cache: SharedCache<Listing>) {
    cache.wait_until_ready().await;
    let updates = cache.updates().ready_chunks(BATCH);
    futures::pin_mut!(updates);
    while updates.next().await.is_some() {
        let catalog = Arc::new(catalog_features(cache.state().iter().map(|l| &l.spec)));
        *shared.catalog.write().unwrap_or_else(|p| p.into_inner()) = catalog;
        shared.catalog_ready.send_replace(true);
    }
}

/// Its tests; their fixtures serve the stream's tests too.
#[cfg(test)]
pub(crate) mod tests;

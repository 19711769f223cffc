//! One watch per kind, shared by everything in the process: a [`SharedCache`] keeps a reflector
//! store of one kind and fans its changes out to any number of subscribers (controllers, the
//! API's live streams).
//!
//! kube's own shared streams (`store_shared` + `ReflectHandle`) would serve the controllers too,
//! but they apply backpressure: a subscriber that is not polled (a standby replica's stopped
//! controller, a stalled stream) would freeze the cache for every reader, and they never report
//! deletions, which owner-triggered reconciles need (a deleted Entitlement must wake its
//! subscription). Here the fan-out is a bounded broadcast that never blocks the watch: a
//! subscriber that falls behind is handed the whole cache again instead.

use std::collections::HashMap;
use std::fmt::Debug;
use std::ops::Deref;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

use super::fingerprint;

/// Changes buffered per subscriber before it is considered behind and re-sent everything.
const CHANGE_BUFFER: usize = 4096;

/// The annotation `kubectl apply` keeps a whole copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The cached objects of each namespace. A list, not a map by name: a namespace holds few
/// objects, and at 150,000 objects a second copy of every name was some 15 MB.
type ByNamespace<K> = HashMap<String, Vec<Arc<K>>>;

/// A watched, always-current cache of one kind, readable as a [`Store`] (through `Deref`) and
/// subscribable as a stream of changes.
pub struct SharedCache<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store: Store<K>,
    changes: broadcast::Sender<Arc<K>>,
    /// Flipped once the first full list is in.
    synced: Arc<watch::Sender<bool>>,
    /// The same objects by namespace, so a namespace's objects cost O(them) to read.
    namespaces: Arc<RwLock<ByNamespace<K>>>,
}

impl<K> Clone for SharedCache<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    fn clone(&self) -> Self {
        SharedCache {
            store: self.store.clone(),
            changes: self.changes.clone(),
            synced: self.synced.clone(),
            namespaces: self.namespaces.clone(),
        }
    }
}

impl<K> Deref for SharedCache<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    type Target = Store<K>;

    fn deref(&self) -> &Store<K> {
        &self.store
    }
}

impl<K> SharedCache<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Starts the one watch of `api` on the current runtime; the task ends with the runtime.
    pub fn start(api: Api<K>) -> Self {
        Self::start_with(api, watcher::Config::default())
    }

    /// [`Self::start`] with a narrower watch (e.g. a label selector).
    pub fn start_with(api: Api<K>, config: watcher::Config) -> Self {
        let events = watcher(api, config.any_semantic()).default_backoff();
        Self::from_events(events)
    }

    /// [`Self::start`], keeping objects without `metadata.managedFields` and the `kubectl
    /// apply` annotation: for caches no reader needs them from, they are most of an object's
    /// size (the field paths of every writer), and of a large cluster's memory.
    pub fn start_trimmed(api: Api<K>) -> Self {
        Self::start_trimmed_with(api, watcher::Config::default())
    }

    /// [`Self::start_trimmed`] with a narrower watch (e.g. a label selector).
    pub fn start_trimmed_with(api: Api<K>, config: watcher::Config) -> Self {
        Self::start_trimmed_by(api, config, |_| {})
    }

    /// [`Self::start_trimmed_with`], then `compact` applied to every object: a kind's own way
    /// of keeping less (its readers must know it; see `api::entitlement::compact_labels`).
    pub fn start_trimmed_by(api: Api<K>, config: watcher::Config, compact: fn(&mut K)) -> Self {
        let events = watcher(api, config.any_semantic())
            .default_backoff()
            .modify(move |object| {
                trim(object);
                compact(object);
            });
        Self::from_events(events)
    }

    /// A cache fed by a stream of watch events (the watch itself, or a test's script).
    pub fn from_events(
        events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    ) -> Self {
        let (store, writer) = reflector::store();
        let (changes, _) = broadcast::channel(CHANGE_BUFFER);
        let synced = Arc::new(watch::Sender::new(false));
        let cache = SharedCache {
            store,
            changes,
            synced,
            namespaces: Arc::default(),
        };
        tokio::spawn(follow(events, writer, cache.clone()));
        cache
    }

    /// Resolves once the cache holds its first full list. Any number of tasks may wait at once:
    /// the store's own `wait_until_ready`, which this shadows, wakes only the last of several
    /// tasks waiting together and leaves the others waiting for good.
    pub async fn wait_until_ready(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|synced| *synced).await;
    }

    /// Whether the cache holds its first full list (see [`Self::wait_until_ready`]).
    pub fn is_ready(&self) -> bool {
        *self.synced.borrow()
    }

    /// The objects in `namespace` now.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        read(&self.namespaces)
            .get(namespace)
            .cloned()
            .unwrap_or_default()
    }

    /// The store, for APIs that take one.
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Every object in the cache now, then every change from here on: applied objects as they
    /// are now, deleted ones as they were last seen. A subscriber that falls more than
    /// [`CHANGE_BUFFER`] changes behind gets the whole cache again; nothing is lost, and the
    /// watch never waits for a subscriber.
    pub fn changes(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        self.updates().flat_map(|update| {
            futures::stream::iter(match update {
                CacheUpdate::Changed(object) => vec![object],
                CacheUpdate::Snapshot(all) => all,
            })
        })
    }

    /// [`Self::changes`], with the re-sends marked: first a [`CacheUpdate::Snapshot`] of the
    /// cache, then each change, and a snapshot again whenever the subscriber fell behind. A
    /// subscriber that keeps its own view (the API's tenant index) replaces it on a snapshot, so
    /// deletions it missed while behind do not linger.
    pub fn updates(&self) -> impl Stream<Item = CacheUpdate<K>> + Send + 'static {
        // Subscribe before the snapshot: a change made in between arrives twice, never not at all.
        let receiver = self.changes.subscribe();
        let first = CacheUpdate::Snapshot(self.store.state());
        let store = self.store.clone();
        let rest = futures::stream::unfold((receiver, store), |(mut receiver, store)| async move {
            let update = match receiver.recv().await {
                Ok(object) => CacheUpdate::Changed(object),
                Err(broadcast::error::RecvError::Lagged(_)) => CacheUpdate::Snapshot(store.state()),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((update, (receiver, store)))
        });
        futures::stream::once(futures::future::ready(first)).chain(rest)
    }
}

impl<K> SharedCache<K>
where
    K: Resource<DynamicType = ()> + Clone + serde::Serialize + 'static,
{
    /// The objects held and their approximate size in bytes (each as compact JSON; the
    /// in-memory form is of the same order): what the cache costs the process.
    pub fn size(&self) -> (usize, usize) {
        let objects = self.store.state();
        let bytes = objects
            .iter()
            .map(|o| serde_json::to_vec(o.as_ref()).map_or(0, |v| v.len()))
            .sum();
        (objects.len(), bytes)
    }
}

/// What a subscriber of [`SharedCache::updates`] is told.
#[derive(Debug)]
pub enum CacheUpdate<K> {
    /// One object changed: applied (as it is now) or deleted (as it was last seen).
    Changed(Arc<K>),
    /// Everything the cache holds now; whatever is not in here is gone.
    Snapshot(Vec<Arc<K>>),
}

/// The watch task: keeps the store current and announces each change.
async fn follow<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    mut writer: reflector::store::Writer<K>,
    cache: SharedCache<K>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let stream = events;
    futures::pin_mut!(stream);
    // What the cache held when a re-list began: objects missing after it were deleted meanwhile.
    let mut before_relist: Vec<Arc<K>> = Vec::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::debug!(%error, kind = %K::kind(&()), "cache watch error; retrying");
                continue;
            }
        };
        if matches!(event, watcher::Event::Init) {
            before_relist = cache.store.state();
        }
        writer.apply_watcher_event(&event);
        // A send fails only when nobody subscribes, which is fine.
        match event {
            watcher::Event::Apply(object) => {
                // The store's own copy: announced and indexed without another one.
                let object = cache
                    .store
                    .get(&ObjectRef::from_obj(&object))
                    .unwrap_or_else(|| Arc::new(object));
                cache.index(&object, true);
                let _ = cache.changes.send(object);
            }
            watcher::Event::Delete(object) => {
                let object = Arc::new(object);
                cache.index(&object, false);
                let _ = cache.changes.send(object);
            }
            watcher::Event::InitDone => {
                cache.reindex();
                for gone in before_relist.drain(..) {
                    if cache
                        .store
                        .get(&ObjectRef::from_obj(gone.as_ref()))
                        .is_none()
                    {
                        let _ = cache.changes.send(gone);
                    }
                }
                for object in cache.store.state() {
                    let _ = cache.changes.send(object);
                }
                cache.synced.send_replace(true);
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }
}

impl<K> SharedCache<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    /// Files `object` under its namespace (`present`) or removes it.
    fn index(&self, object: &Arc<K>, present: bool) {
        let meta = object.meta();
        let (Some(namespace), Some(name)) = (&meta.namespace, &meta.name) else {
            return;
        };
        let mut namespaces = write(&self.namespaces);
        let named = |o: &Arc<K>| o.meta().name.as_ref() == Some(name);
        if present {
            let objects = namespaces.entry(namespace.clone()).or_default();
            match objects.iter_mut().find(|o| named(o)) {
                Some(slot) => *slot = object.clone(),
                None => objects.push(object.clone()),
            }
        } else if let Some(objects) = namespaces.get_mut(namespace) {
            objects.retain(|o| !named(o));
            if objects.is_empty() {
                namespaces.remove(namespace);
            }
        }
    }

    /// Rebuilds the index from the store (after a full list replaced it).
    fn reindex(&self) {
        let mut fresh: ByNamespace<K> = HashMap::new();
        for object in self.store.state() {
            let meta = object.meta();
            if let (Some(namespace), Some(_)) = (meta.namespace.clone(), &meta.name) {
                fresh.entry(namespace).or_default().push(object);
            }
        }
        *write(&self.namespaces) = fresh;
    }
}

/// Reads `lock`, poisoned or not: a panicked writer leaves whole entries (nothing here is
/// written half-way), so what it holds is still fit to read.
pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `lock`, poisoned or not (see [`read`]).
pub(crate) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Drops what no reader of a trimmed cache uses: managed fields and the last-applied copy.
fn trim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// Passes only the changes that matter to a dependent: a new object, a changed `generation`
/// (a spec edit, not a status write), a changed finalizer list (kube's finalizer helper waits
/// for its own addition to come back) and a deletion (the object is no longer in `store`).
/// What it remembers of each object is three numbers (a hash of its namespace and name, its
/// generation, a hash of its finalizers): at 100,000 Entitlements a full object reference and a
/// copy of the finalizers were tens of MiB. Two objects' keys colliding (odds about 1 in 10^9
/// at 200,000 objects) would only let a change of one through as a change of the other.
pub fn spec_changes<K>(
    changes: impl Stream<Item = Arc<K>> + Send + 'static,
    store: Store<K>,
) -> impl Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let mut seen: HashMap<u64, (Option<i64>, u64)> = HashMap::new();
    changes.filter(move |object| {
        let meta = object.meta();
        let key = fingerprint(&(&meta.namespace, &meta.name));
        let signature = (meta.generation, fingerprint(&meta.finalizers));
        let pass = if store.get(&ObjectRef::from_obj(object.as_ref())).is_none() {
            seen.remove(&key);
            true
        } else {
            seen.insert(key, signature) != Some(signature)
        };
        futures::future::ready(pass)
    })
}

#[cfg(test)]
mod tests;

//! One kind of object the Tenant controller makes, watched by the tenant label and remembered
//! as an [`OwnedState`] per object, not as the object: what a reconcile needs to know is only
//! whether the object holds what its Tenant wants, and at 10,000 tenants the 60,000 namespaces,
//! Roles and bindings held whole were about 200 MiB of the operator's memory.

use std::collections::HashMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

use super::{OwnedState, owned_state, wish_fingerprint};
use crate::api::Tenant;
use crate::controllers::object_key;
use crate::controllers::tenant_rbac::{TENANT_LABEL, TenantObjects, desired_objects};
use crate::runtime::SharedCache;
use crate::runtime::caches::{read, write};

/// Tenants woken and not yet taken by the controller before it is considered behind (it is
/// then handed every Tenant instead).
const WAKE_BUFFER: usize = 4096;

/// A kind the Tenant controller makes (namespace, Role, binding), as its records need it.
pub trait OwnedKind:
    Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> OwnedKind for K where
    K: Resource<DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// Finds the object among what a Tenant wants that a live object is the counterpart of.
pub type Pick<K> = fn(TenantObjects, &K) -> Option<K>;

/// What is kept of one object.
#[derive(Clone, Debug)]
struct Record {
    /// The Tenant that made it (its label): woken when the object is deleted or drifts.
    tenant: Box<str>,
    state: OwnedState,
}

type Records = HashMap<String, Record>;

/// The objects of kind `K` the Tenant controller made, by `namespace/name`, as [`OwnedState`]s
/// kept current by one watch (started once the Tenant cache is full: judging an object needs
/// its Tenant). A change that leaves an object not holding its Tenant's wish, and a deletion,
/// wake that Tenant.
pub struct OwnedRecords<K> {
    records: Arc<RwLock<Records>>,
    wakes: broadcast::Sender<Box<str>>,
    synced: Arc<watch::Sender<bool>>,
    kind: PhantomData<fn() -> K>,
}

impl<K: OwnedKind> OwnedRecords<K> {
    /// Starts the watch of `api` (narrowed by `config`) on the current runtime.
    pub fn start(
        api: Api<K>,
        config: watcher::Config,
        tenants: SharedCache<Tenant>,
        pick: Pick<K>,
    ) -> Self {
        let records = OwnedRecords {
            records: Arc::default(),
            wakes: broadcast::channel(WAKE_BUFFER).0,
            synced: Arc::new(watch::Sender::new(false)),
            kind: PhantomData,
        };
        tokio::spawn(follow(
            api,
            config,
            tenants,
            pick,
            records.records.clone(),
            records.wakes.clone(),
            records.synced.clone(),
        ));
        records
    }

    /// Whether `desired` must be applied: the object is not known to hold exactly this wish
    /// (missing, drifted, being deleted, last judged against another wish, or not seen yet).
    /// A record that lags costs at most a no-op apply.
    pub fn needs_apply(&self, desired: &K) -> bool {
        let held = read(&self.records)
            .get(&object_key(desired))
            .map(|record| record.state);
        held != Some(OwnedState::Holds(wish_fingerprint(desired)))
    }

    /// Resolves once the first full list is judged.
    pub async fn wait_until_ready(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|synced| *synced).await;
    }

    /// The objects remembered and about the bytes their records take.
    pub fn size(&self) -> (usize, usize) {
        let records = read(&self.records);
        let bytes = records
            .iter()
            .map(|(key, record)| {
                key.len() + record.tenant.len() + std::mem::size_of::<(String, Record)>()
            })
            .sum();
        (records.len(), bytes)
    }

    /// The Tenants to reconcile because of these objects, from now on. One that falls more than
    /// [`WAKE_BUFFER`] behind is handed every Tenant in `tenants`: nothing is missed.
    pub fn wakes(
        &self,
        tenants: Store<Tenant>,
    ) -> impl Stream<Item = ObjectRef<Tenant>> + Send + 'static {
        let receiver = self.wakes.subscribe();
        futures::stream::unfold((receiver, tenants), |(mut receiver, tenants)| async move {
            let woken: Vec<ObjectRef<Tenant>> = match receiver.recv().await {
                Ok(tenant) => vec![ObjectRef::new(&tenant)],
                Err(broadcast::error::RecvError::Lagged(_)) => tenants
                    .state()
                    .iter()
                    .map(|tenant| ObjectRef::from_obj(tenant.as_ref()))
                    .collect(),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((futures::stream::iter(woken), (receiver, tenants)))
        })
        .flatten()
    }
}

/// The watch task: judges each object as it arrives and wakes the Tenants that must act.
async fn follow<K: OwnedKind>(
    api: Api<K>,
    config: watcher::Config,
    tenants: SharedCache<Tenant>,
    pick: Pick<K>,
    records: Arc<RwLock<Records>>,
    wakes: broadcast::Sender<Box<str>>,
    synced: Arc<watch::Sender<bool>>,
) {
    tenants.wait_until_ready().await;
    let judge = |object: &K| Record {
        tenant: object
            .labels()
            .get(TENANT_LABEL)
            .map(|t| t.as_str())
            .unwrap_or_default()
            .into(),
        state: owned_state(object, wish(tenants.store(), pick, object).as_ref()),
    };
    // A send fails only when no controller listens, which is fine.
    let wake = |tenant: &str| {
        let _ = wakes.send(tenant.into());
    };
    let events = watcher(api, config.any_semantic()).default_backoff();
    futures::pin_mut!(events);
    // The records of a (re)list in progress: they replace the old ones when it is done.
    let mut relisted: Records = HashMap::new();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::debug!(%error, kind = %K::kind(&()), "owned-object watch error; retrying");
                continue;
            }
        };
        match event {
            watcher::Event::Init => relisted.clear(),
            watcher::Event::InitApply(object) => {
                relisted.insert(object_key(&object), judge(&object));
            }
            watcher::Event::InitDone => {
                let fresh = std::mem::take(&mut relisted);
                let woken = relist_wakes(&read(&records), &fresh);
                *write(&records) = fresh;
                woken.iter().for_each(|tenant| wake(tenant));
                synced.send_replace(true);
            }
            watcher::Event::Apply(object) => {
                let record = judge(&object);
                if !matches!(record.state, OwnedState::Holds(_)) {
                    wake(&record.tenant);
                }
                write(&records).insert(object_key(&object), record);
            }
            watcher::Event::Delete(object) => {
                if let Some(gone) = write(&records).remove(&object_key(&object)) {
                    wake(&gone.tenant);
                }
            }
        }
    }
}

/// The Tenants a finished (re)list wakes: those of the objects that differ from their wish, and
/// of the objects it no longer holds (deleted while the watch was away).
fn relist_wakes(before: &Records, fresh: &Records) -> Vec<Box<str>> {
    let differing = fresh
        .values()
        .filter(|record| !matches!(record.state, OwnedState::Holds(_)));
    let gone = before
        .iter()
        .filter(|(key, _)| !fresh.contains_key(*key))
        .map(|(_, record)| record);
    differing.chain(gone).map(|r| r.tenant.clone()).collect()
}

/// What the object's Tenant (by its label) wants of it now: none when that Tenant is not
/// cached, has no uid yet, or no longer wants such an object.
fn wish<K: Resource<DynamicType = ()>>(
    tenants: &Store<Tenant>,
    pick: Pick<K>,
    object: &K,
) -> Option<K> {
    let tenant = tenants.get(&ObjectRef::new(object.labels().get(TENANT_LABEL)?))?;
    let owner = tenant.controller_owner_ref(&())?;
    pick(desired_objects(&tenant, owner), object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(entries: &[(&str, &str, OwnedState)]) -> Records {
        entries
            .iter()
            .map(|(key, tenant, state)| {
                let record = Record {
                    tenant: (*tenant).into(),
                    state: *state,
                };
                ((*key).to_string(), record)
            })
            .collect()
    }

    #[test]
    fn a_relist_wakes_the_tenants_of_objects_that_differ_or_are_gone() {
        let before = records(&[
            ("tenant-a/reader", "a", OwnedState::Holds(1)),
            ("tenant-b/reader", "b", OwnedState::Holds(2)),
            ("tenant-c/reader", "c", OwnedState::Differs),
        ]);
        let fresh = records(&[
            ("tenant-a/reader", "a", OwnedState::Holds(1)),
            ("tenant-c/reader", "c", OwnedState::Holds(3)),
            ("tenant-d/reader", "d", OwnedState::Differs),
        ]);
        let mut woken = relist_wakes(&before, &fresh);
        woken.sort();
        // d differs; b's object was deleted while the watch was away; a and c hold their wish.
        assert_eq!(woken, vec![Box::from("b"), Box::from("d")]);
        assert!(relist_wakes(&fresh, &fresh).iter().all(|t| &**t == "d"));
    }
}

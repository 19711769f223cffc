//! Every tenant's entitlements, indexed by tenant and feature, kept current from the Entitlement
//! cache's updates by [`super::live_index`]. Reading a tenant costs O(its features), not
//! O(every Entitlement). Each change settles one feature of one tenant and, when its check can
//! differ (state or end), numbers it: the change stream ([`super::sse`]) resumes from those
//! numbers. Plain data, no I/O: the tests below drive it directly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;

use super::decide::{EntitlementView, tenant_features};
use crate::api::Entitlement;
use crate::api::entitlement::EntitlementState;
use crate::controllers::tenant_rbac::namespace_name;

/// Which Entitlement.
pub type EntitlementKey = ObjectRef<Entitlement>;

/// Features kept after their tenant lost them (so a resuming stream hears of the loss), at most;
/// past this the oldest half is forgotten and older resumes get a snapshot instead.
const MAX_TOMBSTONES: usize = 65_536;

/// The index. Change numbers start at 1 and only grow.
#[derive(Debug)]
pub struct TenantIndex {
    tenants: HashMap<String, TenantEntry>,
    /// Where each indexed Entitlement counts: (tenant, feature).
    placed: HashMap<EntitlementKey, (String, String)>,
    seq: u64,
    forgotten_through: u64,
    tombstones: usize,
    tombstone_limit: usize,
}

impl Default for TenantIndex {
    fn default() -> Self {
        TenantIndex::with_tombstone_limit(MAX_TOMBSTONES)
    }
}

#[derive(Default, Debug)]
struct TenantEntry {
    features: BTreeMap<String, FeatureSlot>,
    /// The features that have a grant, sorted: what the read path hands out.
    views: Arc<Vec<EntitlementView>>,
}

#[derive(Default, Debug)]
struct FeatureSlot {
    /// The Entitlements granting it, by name (they all live in the tenant's namespace).
    grants: BTreeMap<String, Arc<Entitlement>>,
    /// The most usable grant; `None` once the last grant went (a tombstone).
    view: Option<EntitlementView>,
    /// The change number of the last change to its check; 0 before its first.
    changed: u64,
    /// Its plan's hard-limited meter is used up this period (the check answers false).
    usage_limited: bool,
}

/// A feature of a tenant whose check changed, with the change's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureChange {
    pub seq: u64,
    pub feature: String,
    /// Its most usable grant now; `None`: the tenant has none any more.
    pub view: Option<EntitlementView>,
    /// Its hard-limited meter is used up this period.
    pub usage_limited: bool,
}

/// Where an Entitlement counts: its tenant and feature, only when it lives in that tenant's
/// namespace (an Entitlement elsewhere naming the tenant grants nothing).
fn placement(entitlement: &Entitlement) -> Option<(String, String)> {
    let tenant = entitlement.spec.tenant.as_str();
    (entitlement.metadata.namespace.as_deref() == Some(namespace_name(tenant).as_str())).then(
        || {
            (
                tenant.to_string(),
                entitlement.spec.feature.as_str().to_string(),
            )
        },
    )
}

/// What a check depends on: a change elsewhere (source, start) is not a change to announce.
fn checked(view: &Option<EntitlementView>) -> Option<(EntitlementState, Option<Timestamp>)> {
    view.as_ref().map(|v| (v.state, v.ends_at))
}

impl TenantIndex {
    /// An empty index that keeps at most `limit` tombstones.
    pub fn with_tombstone_limit(limit: usize) -> Self {
        TenantIndex {
            tenants: HashMap::new(),
            placed: HashMap::new(),
            seq: 0,
            forgotten_through: 0,
            tombstones: 0,
            tombstone_limit: limit,
        }
    }

    /// The number of the latest change (0 before any).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Changes up to this number may have been forgotten: resuming from before it needs a
    /// snapshot.
    pub fn forgotten_through(&self) -> u64 {
        self.forgotten_through
    }

    /// The tenant's granted features, sorted by feature, one per feature (the most usable grant).
    pub fn features(&self, tenant: &str) -> Arc<Vec<EntitlementView>> {
        self.tenants
            .get(tenant)
            .map(|entry| entry.views.clone())
            .unwrap_or_default()
    }

    /// The tenant's features whose check changed after change `since`, oldest change first,
    /// each once (as it is now).
    pub fn changes_since(&self, tenant: &str, since: u64) -> Vec<FeatureChange> {
        let Some(entry) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let mut changes: Vec<FeatureChange> = entry
            .features
            .iter()
            .filter(|(_, slot)| slot.changed > since)
            .map(|(feature, slot)| FeatureChange {
                seq: slot.changed,
                feature: feature.clone(),
                view: slot.view.clone(),
                usage_limited: slot.usage_limited,
            })
            .collect();
        changes.sort_by_key(|c| c.seq);
        changes
    }

    /// Whether the tenant's `feature` has used up its hard-limited meter this period.
    pub fn usage_limited(&self, tenant: &str, feature: &str) -> bool {
        self.tenants
            .get(tenant)
            .and_then(|entry| entry.features.get(feature))
            .is_some_and(|slot| slot.usage_limited)
    }

    /// Records which of the tenant's features have used up their hard-limited meter (`true`)
    /// or not; each flip of a granted feature is a numbered change (the tenant is added to
    /// `touched`), so streams hear of a limit reached or lifted as of a grant that changed.
    pub fn set_usage_limits(
        &mut self,
        tenant: &str,
        limits: &BTreeMap<String, bool>,
        touched: &mut BTreeSet<String>,
    ) {
        let Some(entry) = self.tenants.get_mut(tenant) else {
            return;
        };
        for (feature, &limited) in limits {
            if let Some(slot) = entry.features.get_mut(feature)
                && slot.view.is_some()
                && slot.usage_limited != limited
            {
                self.seq += 1;
                slot.changed = self.seq;
                slot.usage_limited = limited;
                touched.insert(tenant.to_string());
            }
        }
    }

    /// Brings Entitlement `key` in line with `current` (what the cache holds now; `None`: it is
    /// gone). Tenants with a numbered change are added to `touched`.
    pub fn sync(
        &mut self,
        key: EntitlementKey,
        current: Option<Arc<Entitlement>>,
        touched: &mut BTreeSet<String>,
    ) {
        let now_at = current.as_deref().and_then(placement).zip(current);
        let moved_from = self
            .placed
            .get(&key)
            .filter(|was| now_at.as_ref().map(|(place, _)| place) != Some(*was))
            .cloned();
        if let Some((tenant, feature)) = moved_from {
            self.placed.remove(&key);
            if let Some(slot) = self
                .tenants
                .get_mut(&tenant)
                .and_then(|entry| entry.features.get_mut(&feature))
            {
                slot.grants.remove(&key.name);
            }
            self.settle(&tenant, &feature, touched);
        }
        if let Some(((tenant, feature), entitlement)) = now_at {
            self.tenants
                .entry(tenant.clone())
                .or_default()
                .features
                .entry(feature.clone())
                .or_default()
                .grants
                .insert(key.name.clone(), entitlement);
            self.placed.insert(key, (tenant.clone(), feature.clone()));
            self.settle(&tenant, &feature, touched);
        }
    }

    /// Replaces everything with `all` (the whole cache): what is not in it is gone.
    pub fn replace_all(&mut self, all: Vec<Arc<Entitlement>>, touched: &mut BTreeSet<String>) {
        let all: HashMap<EntitlementKey, Arc<Entitlement>> = all
            .into_iter()
            .map(|e| (ObjectRef::from_obj(e.as_ref()), e))
            .collect();
        let gone: Vec<EntitlementKey> = self
            .placed
            .keys()
            .filter(|key| !all.contains_key(key))
            .cloned()
            .collect();
        for key in gone {
            self.sync(key, None, touched);
        }
        for (key, entitlement) in all {
            self.sync(key, Some(entitlement), touched);
        }
    }

    /// Recomputes one feature of one tenant from its grants, numbering a change to its check.
    fn settle(&mut self, tenant: &str, feature: &str, touched: &mut BTreeSet<String>) {
        let Some(entry) = self.tenants.get_mut(tenant) else {
            return;
        };
        let Some(slot) = entry.features.get_mut(feature) else {
            return;
        };
        let view = tenant_features(slot.grants.values().map(|e| &e.spec)).pop();
        if view == slot.view {
            return;
        }
        if checked(&view) != checked(&slot.view) {
            self.seq += 1;
            match (&slot.view, &view) {
                (None, Some(_)) if slot.changed > 0 => self.tombstones -= 1,
                (Some(_), None) => self.tombstones += 1,
                _ => {}
            }
            slot.changed = self.seq;
            touched.insert(tenant.to_string());
        }
        slot.view = view;
        entry.views = Arc::new(
            entry
                .features
                .values()
                .filter_map(|slot| slot.view.clone())
                .collect(),
        );
        if self.tombstones > self.tombstone_limit {
            self.forget_oldest_tombstones();
        }
    }

    /// Drops the older half of the tombstones; resumes from before them get a snapshot.
    fn forget_oldest_tombstones(&mut self) {
        let mut tombs: Vec<(u64, String, String)> = self
            .tenants
            .iter()
            .flat_map(|(tenant, entry)| {
                entry
                    .features
                    .iter()
                    .filter(|(_, slot)| slot.view.is_none() && slot.grants.is_empty())
                    .map(|(feature, slot)| (slot.changed, tenant.clone(), feature.clone()))
            })
            .collect();
        tombs.sort_unstable();
        for (changed, tenant, feature) in tombs.into_iter().take(self.tombstones.div_ceil(2)) {
            if let Some(entry) = self.tenants.get_mut(&tenant) {
                entry.features.remove(&feature);
                if entry.features.is_empty() {
                    self.tenants.remove(&tenant);
                }
            }
            self.tombstones -= 1;
            self.forgotten_through = self.forgotten_through.max(changed);
        }
    }
}

/// Its tests; their fixtures serve the stream's tests too.
#[cfg(test)]
pub(crate) mod tests;

//! The pure decision of a catalog sync: given what the revision wants, what the cluster has and
//! what the last sync applied, which objects to apply, which to prune, and which prunes to refuse.
//! No I/O: the CatalogSource reconciler observes, calls [`plan_sync`], then acts on the plan.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::CatalogKind;
use crate::api::catalog_source::InventoryEntry;

/// Annotation naming the CatalogSource (`namespace/name`) that manages a catalog object; an
/// object managed by another source is never overwritten or pruned.
pub const SOURCE_ANNOTATION: &str = "marketplace.dev/catalog-source";

/// What a revision wants in the cluster: one object and its spec.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    pub kind: CatalogKind,
    pub name: String,
    /// The spec as the Rust types serialize it (defaults filled in), so it compares equal to a
    /// live object's spec read back through the same types.
    pub spec: Value,
}

/// A catalog object as it is in the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveObject {
    pub kind: CatalogKind,
    pub name: String,
    pub spec: Value,
    /// The `SOURCE_ANNOTATION` value, if any.
    pub managed_by: Option<String>,
}

/// Everything the decision looks at.
#[derive(Clone, Debug)]
pub struct SyncInputs<'a> {
    /// This source, as `namespace/name`.
    pub source: &'a str,
    pub desired: &'a [DesiredObject],
    pub live: &'a [LiveObject],
    /// The inventory the last successful sync recorded.
    pub previous_inventory: &'a [InventoryEntry],
    /// Live (not Cancelled, Rejected or Failed) subscriptions per listing name.
    pub live_subscriptions: &'a BTreeMap<String, u32>,
    /// Subscriptions per promotion name that still keep (or are about to record) its price.
    pub promoted_subscriptions: &'a BTreeMap<String, u32>,
    /// Live bundle purchases per bundle name.
    pub bundled_subscriptions: &'a BTreeMap<String, u32>,
    pub prune: bool,
}

/// What to do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan<'a> {
    /// Missing or different objects to server-side apply.
    pub apply: Vec<&'a DesiredObject>,
    /// Desired objects already as wanted: no write.
    pub unchanged: usize,
    /// Desired objects another CatalogSource manages: left alone and reported.
    pub conflicts: Vec<Conflict>,
    /// Objects this source applied before that left the revision, to delete.
    pub prune: Vec<InventoryEntry>,
    /// Objects that left the revision but are kept: Listings that still have live subscriptions,
    /// Promotions whose price subscriptions still keep.
    pub prune_refused: Vec<RefusedPrune>,
    /// Objects that left the revision and stay because `prune` is off.
    pub orphaned: Vec<InventoryEntry>,
    /// The inventory to record: everything this source now manages in the cluster.
    pub inventory: Vec<InventoryEntry>,
}

/// A desired object owned by another source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub entry: InventoryEntry,
    pub managed_by: String,
}

/// An object kept although it left the revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedPrune {
    pub entry: InventoryEntry,
    pub live_subscriptions: u32,
}

impl SyncPlan<'_> {
    /// Whether applying this plan writes nothing.
    pub fn is_noop(&self) -> bool {
        self.apply.is_empty() && self.prune.is_empty()
    }
}

fn entry(kind: CatalogKind, name: &str) -> InventoryEntry {
    InventoryEntry {
        kind: kind.name().to_owned(),
        name: name.to_owned(),
    }
}

/// Decides a sync. Deterministic: the plan's lists are sorted by kind and name.
pub fn plan_sync<'a>(inputs: &SyncInputs<'a>) -> SyncPlan<'a> {
    let live: BTreeMap<(CatalogKind, &str), &LiveObject> = inputs
        .live
        .iter()
        .map(|o| ((o.kind, o.name.as_str()), o))
        .collect();
    let mut plan = SyncPlan::default();
    let mut managed: BTreeSet<InventoryEntry> = BTreeSet::new();

    let mut desired: Vec<&DesiredObject> = inputs.desired.iter().collect();
    desired.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    for object in desired {
        match live.get(&(object.kind, object.name.as_str())) {
            Some(current)
                if current
                    .managed_by
                    .as_deref()
                    .is_some_and(|owner| owner != inputs.source) =>
            {
                plan.conflicts.push(Conflict {
                    entry: entry(object.kind, &object.name),
                    managed_by: current.managed_by.clone().unwrap_or_default(),
                });
                continue;
            }
            Some(current)
                if current.managed_by.as_deref() == Some(inputs.source)
                    && current.spec == object.spec =>
            {
                plan.unchanged += 1;
            }
            _ => plan.apply.push(object),
        }
        managed.insert(entry(object.kind, &object.name));
    }

    let mut gone: Vec<&InventoryEntry> = inputs
        .previous_inventory
        .iter()
        .filter(|e| !managed.contains(*e))
        .collect();
    gone.sort();
    gone.dedup();
    for old in gone {
        let Some(kind) = CatalogKind::from_name(&old.kind) else {
            continue;
        };
        // Already deleted, or taken over by another source: nothing of ours left to prune.
        let Some(current) = live.get(&(kind, old.name.as_str())) else {
            continue;
        };
        if current.managed_by.as_deref() != Some(inputs.source) {
            continue;
        }
        let in_use = |counts: &BTreeMap<String, u32>| counts.get(&old.name).copied().unwrap_or(0);
        let subscriptions = match kind {
            CatalogKind::Listing => in_use(inputs.live_subscriptions),
            CatalogKind::Promotion => in_use(inputs.promoted_subscriptions),
            CatalogKind::Bundle => in_use(inputs.bundled_subscriptions),
            CatalogKind::WizardConfig => 0,
        };
        if !inputs.prune {
            plan.orphaned.push(old.clone());
        } else if subscriptions > 0 {
            plan.prune_refused.push(RefusedPrune {
                entry: old.clone(),
                live_subscriptions: subscriptions,
            });
            managed.insert(old.clone());
        } else {
            plan.prune.push(old.clone());
        }
    }
    plan.inventory = managed.into_iter().collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ME: &str = "marketplace-system/main";

    fn desired(name: &str, tagline: &str) -> DesiredObject {
        DesiredObject {
            kind: CatalogKind::Listing,
            name: name.into(),
            spec: json!({"tagline": tagline}),
        }
    }

    fn live(name: &str, tagline: &str, owner: Option<&str>) -> LiveObject {
        LiveObject {
            kind: CatalogKind::Listing,
            name: name.into(),
            spec: json!({"tagline": tagline}),
            managed_by: owner.map(str::to_owned),
        }
    }

    fn listing(name: &str) -> InventoryEntry {
        entry(CatalogKind::Listing, name)
    }

    fn plan<'a>(
        desired: &'a [DesiredObject],
        live: &'a [LiveObject],
        previous: &'a [InventoryEntry],
        subscriptions: &'a BTreeMap<String, u32>,
        prune: bool,
    ) -> SyncPlan<'a> {
        plan_sync(&SyncInputs {
            source: ME,
            desired,
            live,
            previous_inventory: previous,
            live_subscriptions: subscriptions,
            promoted_subscriptions: subscriptions,
            bundled_subscriptions: subscriptions,
            prune,
        })
    }

    #[test]
    fn first_sync_applies_everything() {
        let want = [desired("a", "x"), desired("b", "y")];
        let none = BTreeMap::new();
        let p = plan(&want, &[], &[], &none, true);
        assert_eq!(p.apply.len(), 2);
        assert_eq!(p.inventory, vec![listing("a"), listing("b")]);
    }

    #[test]
    fn unchanged_objects_cause_no_write() {
        let want = [desired("a", "x")];
        let have = [live("a", "x", Some(ME))];
        let previous = [listing("a")];
        let none = BTreeMap::new();
        let p = plan(&want, &have, &previous, &none, true);
        assert!(p.is_noop());
        assert_eq!(p.unchanged, 1);
    }

    #[test]
    fn a_changed_spec_or_a_missing_annotation_is_applied() {
        let want = [desired("a", "new"), desired("b", "same")];
        let have = [live("a", "old", Some(ME)), live("b", "same", None)];
        let none = BTreeMap::new();
        let p = plan(&want, &have, &[], &none, true);
        let names: Vec<_> = p.apply.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn objects_of_another_source_are_reported_not_touched() {
        let want = [desired("a", "x")];
        let have = [live("a", "y", Some("team-b/catalog"))];
        let none = BTreeMap::new();
        let p = plan(&want, &have, &[], &none, true);
        assert!(p.apply.is_empty());
        assert_eq!(p.conflicts[0].managed_by, "team-b/catalog");
        assert!(p.inventory.is_empty());
    }

    #[test]
    fn removed_objects_are_pruned_only_when_prune_is_on() {
        let have = [live("gone", "x", Some(ME))];
        let previous = [listing("gone")];
        let none = BTreeMap::new();
        let pruning = plan(&[], &have, &previous, &none, true);
        assert_eq!(pruning.prune, vec![listing("gone")]);
        assert!(pruning.inventory.is_empty());
        let keeping = plan(&[], &have, &previous, &none, false);
        assert!(keeping.prune.is_empty());
        assert_eq!(keeping.orphaned, vec![listing("gone")]);
    }

    #[test]
    fn a_listing_with_live_subscriptions_is_never_pruned() {
        let have = [live("busy", "x", Some(ME))];
        let previous = [listing("busy")];
        let subscriptions = BTreeMap::from([("busy".to_owned(), 3)]);
        let p = plan(&[], &have, &previous, &subscriptions, true);
        assert!(p.prune.is_empty());
        assert_eq!(
            p.prune_refused,
            vec![RefusedPrune {
                entry: listing("busy"),
                live_subscriptions: 3
            }]
        );
        assert_eq!(
            p.inventory,
            vec![listing("busy")],
            "still ours, still tracked"
        );
    }

    #[test]
    fn a_promotion_subscriptions_still_keep_is_never_pruned() {
        let kept = LiveObject {
            kind: CatalogKind::Promotion,
            ..live("spring", "x", Some(ME))
        };
        let previous = [entry(CatalogKind::Promotion, "spring")];
        let promoted = BTreeMap::from([("spring".to_owned(), 2)]);
        let p = plan(&[], std::slice::from_ref(&kept), &previous, &promoted, true);
        assert!(p.prune.is_empty());
        assert_eq!(p.prune_refused[0].live_subscriptions, 2);
        let none = BTreeMap::new();
        let p = plan(&[], std::slice::from_ref(&kept), &previous, &none, true);
        assert_eq!(p.prune, previous.to_vec(), "nobody keeps it: it goes");
    }

    #[test]
    fn already_deleted_or_foreign_objects_are_not_pruned() {
        let have = [live("taken", "x", Some("other/source"))];
        let previous = [listing("deleted"), listing("taken")];
        let none = BTreeMap::new();
        let p = plan(&[], &have, &previous, &none, true);
        assert!(p.prune.is_empty() && p.prune_refused.is_empty());
    }
}

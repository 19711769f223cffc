use serde_json::json;

use super::*;

pub(crate) fn entitlement(
    namespace: &str,
    name: &str,
    tenant: &str,
    feature: &str,
    state: &str,
) -> Arc<Entitlement> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "marketplace.dev/v1alpha1", "kind": "Entitlement",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"tenant": tenant, "feature": feature, "state": state,
                "startsAt": "2026-01-01T00:00:00Z", "sourceSubscription": name}}))
        .expect("an Entitlement"),
    )
}

pub(crate) fn acme(name: &str, feature: &str, state: &str) -> Arc<Entitlement> {
    entitlement("tenant-acme", name, "acme", feature, state)
}

fn key(e: &Entitlement) -> EntitlementKey {
    ObjectRef::from_obj(e)
}

/// Syncs `e` as present and returns the tenants touched.
pub(crate) fn put(index: &mut TenantIndex, e: Arc<Entitlement>) -> BTreeSet<String> {
    let mut touched = BTreeSet::new();
    index.sync(key(&e), Some(e), &mut touched);
    touched
}

pub(crate) fn delete(index: &mut TenantIndex, e: &Entitlement) -> BTreeSet<String> {
    let mut touched = BTreeSet::new();
    index.sync(key(e), None, &mut touched);
    touched
}

fn states(index: &TenantIndex, tenant: &str) -> Vec<(String, EntitlementState)> {
    index
        .features(tenant)
        .iter()
        .map(|v| (v.feature.clone(), v.state))
        .collect()
}

#[test]
fn a_tenant_reads_its_own_features_with_the_most_usable_grant_each() {
    let mut index = TenantIndex::default();
    put(&mut index, acme("old", "routes", "Revoked"));
    put(&mut index, acme("new", "routes", "Active"));
    put(&mut index, acme("eta", "eta", "Suspended"));
    put(
        &mut index,
        entitlement("tenant-globex", "g", "globex", "routes", "Active"),
    );
    // Another namespace cannot grant acme anything.
    let forged = put(
        &mut index,
        entitlement("tenant-globex", "f", "acme", "gigsafe", "Active"),
    );
    assert!(forged.is_empty());
    assert_eq!(
        states(&index, "acme"),
        [
            ("eta".to_string(), EntitlementState::Suspended),
            ("routes".to_string(), EntitlementState::Active)
        ]
    );
    assert_eq!(states(&index, "globex").len(), 1);
    assert!(index.features("nobody").is_empty());
    // The best grant going leaves the next best.
    delete(&mut index, &acme("new", "routes", "Active"));
    assert_eq!(states(&index, "acme")[1].1, EntitlementState::Revoked);
}

#[test]
fn only_changes_to_a_check_are_numbered_and_each_feature_is_reported_once() {
    let mut index = TenantIndex::default();
    assert_eq!(
        put(&mut index, acme("routes", "routes", "Active")),
        BTreeSet::from(["acme".to_string()])
    );
    put(&mut index, acme("eta", "eta", "Trialing"));
    assert_eq!(index.seq(), 2);
    // Same state, another source: what REST lists changes, the check does not.
    let mut moved = (*acme("routes", "routes", "Active")).clone();
    moved.spec.source_subscription = "other".into();
    assert!(put(&mut index, Arc::new(moved)).is_empty());
    assert_eq!(index.seq(), 2);
    assert_eq!(index.features("acme")[1].source_subscription, "other");
    // Suspended then revoked: reported once, as it is now.
    put(&mut index, acme("routes", "routes", "Suspended"));
    put(&mut index, acme("routes", "routes", "Revoked"));
    let changes = index.changes_since("acme", 2);
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].seq, changes[0].feature.as_str()), (4, "routes"));
    assert_eq!(
        changes[0].view.as_ref().map(|v| v.state),
        Some(EntitlementState::Revoked)
    );
    let all: Vec<(u64, String)> = index
        .changes_since("acme", 0)
        .into_iter()
        .map(|c| (c.seq, c.feature))
        .collect();
    assert_eq!(all, [(2, "eta".to_string()), (4, "routes".to_string())]);
    assert!(index.changes_since("acme", 4).is_empty());
}

#[test]
fn a_lost_feature_is_reported_as_gone_and_an_edited_one_moves() {
    let mut index = TenantIndex::default();
    put(&mut index, acme("e", "routes", "Active"));
    let before = index.seq();
    // Edited to another feature: the old one is lost, the new one granted.
    put(&mut index, acme("e", "eta", "Active"));
    let changes = index.changes_since("acme", before);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.feature.as_str(), c.view.is_some()))
            .collect::<Vec<_>>(),
        [("routes", false), ("eta", true)]
    );
    assert_eq!(
        states(&index, "acme"),
        [("eta".to_string(), EntitlementState::Active)]
    );
    delete(&mut index, &acme("e", "eta", "Active"));
    assert!(index.features("acme").is_empty());
    assert_eq!(index.changes_since("acme", before).len(), 2);
}

#[test]
fn a_snapshot_replaces_everything_and_drops_what_it_lacks() {
    let mut index = TenantIndex::default();
    put(&mut index, acme("a", "routes", "Active"));
    put(&mut index, acme("b", "eta", "Active"));
    let before = index.seq();
    let mut touched = BTreeSet::new();
    index.replace_all(
        vec![
            acme("b", "eta", "Active"),
            entitlement("tenant-globex", "g", "globex", "x", "Active"),
        ],
        &mut touched,
    );
    assert_eq!(
        touched,
        BTreeSet::from(["acme".to_string(), "globex".to_string()])
    );
    assert_eq!(
        states(&index, "acme"),
        [("eta".to_string(), EntitlementState::Active)]
    );
    let changes = index.changes_since("acme", before);
    assert_eq!((changes.len(), changes[0].feature.as_str()), (1, "routes"));
}

#[test]
fn past_the_limit_the_oldest_losses_are_forgotten() {
    let mut index = TenantIndex::with_tombstone_limit(4);
    let all: Vec<Arc<Entitlement>> = (0..6)
        .map(|n| acme(&format!("e{n}"), &format!("f{n}"), "Active"))
        .collect();
    for e in &all {
        put(&mut index, e.clone());
    }
    for e in &all {
        delete(&mut index, e);
    }
    // Six losses numbered 7..=12; the fifth went past the limit and forgot the three oldest.
    assert_eq!(index.seq(), 12);
    assert_eq!(index.forgotten_through(), 9);
    let remembered: Vec<u64> = index
        .changes_since("acme", 0)
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(remembered, [10, 11, 12]);
    // Regained, a forgotten feature is a change like any other.
    put(&mut index, all[0].clone());
    assert_eq!(index.changes_since("acme", 12).len(), 1);
}

use serde_json::json;

use super::*;
use crate::front_door::tenant_index::tests::{acme, delete, put};

const EPOCH: u64 = 0xbeef;

fn now() -> Timestamp {
    "2026-02-01T00:00:00Z".parse().expect("time")
}

fn index_with_two_features() -> TenantIndex {
    let mut index = TenantIndex::default();
    put(&mut index, acme("routes", "routes", "Active"));
    put(&mut index, acme("eta", "eta", "Suspended"));
    index
}

fn id(seq: u64) -> String {
    EventId { epoch: EPOCH, seq }.to_string()
}

#[test]
fn event_ids_name_the_process_and_the_change() {
    let written = EventId {
        epoch: 0xbeef,
        seq: 42,
    }
    .to_string();
    assert_eq!(written, "beef-42");
    assert_eq!(
        EventId::parse(&written),
        Some(EventId {
            epoch: 0xbeef,
            seq: 42
        })
    );
    for junk in ["", "42", "beef-", "-42", "zz-1", "beef-x"] {
        assert_eq!(EventId::parse(junk), None, "{junk:?}");
    }
}

#[test]
fn a_new_client_gets_a_snapshot_of_the_checks() {
    let index = index_with_two_features();
    let (events, cursor) = opening(&index, EPOCH, "acme", None, 10, now());
    assert_eq!(cursor, 2);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].name, events[0].id.to_string()),
        (SNAPSHOT, id(2))
    );
    assert_eq!(
        events[0].data,
        json!({"entitlements": [
            {"feature": "eta", "enabled": false, "state": "Suspended", "reason": "Suspended", "endsAt": null},
            {"feature": "routes", "enabled": true, "state": "Active", "reason": "Entitled", "endsAt": null},
        ]})
    );
    let (events, _) = opening(&index, EPOCH, "nobody", None, 10, now());
    assert_eq!(events[0].data, json!({"entitlements": []}));
}

#[test]
fn a_client_that_comes_back_gets_what_changed_since_or_a_snapshot() {
    let mut index = index_with_two_features();
    let seen = id(index.seq());
    put(&mut index, acme("routes", "routes", "Suspended"));
    delete(&mut index, &acme("eta", "eta", "Suspended"));
    let (events, cursor) = opening(&index, EPOCH, "acme", Some(&seen), 10, now());
    assert_eq!(cursor, 4);
    let sent: Vec<(&str, String, Value)> = events
        .iter()
        .map(|e| (e.name, e.id.to_string(), e.data.clone()))
        .collect();
    assert_eq!(
        sent,
        [
            (
                ENTITLEMENT,
                id(3),
                json!({"feature": "routes", "enabled": false, "state": "Suspended",
                "reason": "Suspended", "endsAt": null})
            ),
            (
                ENTITLEMENT,
                id(4),
                json!({"feature": "eta", "enabled": false, "state": null,
                "reason": "NotEntitled", "endsAt": null})
            ),
        ]
    );
    // Up to date: nothing to send.
    assert!(
        opening(&index, EPOCH, "acme", Some(&id(4)), 10, now())
            .0
            .is_empty()
    );
    // Another process's id, one from the future, junk, or more changes than a snapshot: a snapshot.
    let other = EventId { epoch: 1, seq: 2 }.to_string();
    for (last, max) in [(other.as_str(), 10), (&id(9), 10), ("junk", 10), (&seen, 1)] {
        let (events, _) = opening(&index, EPOCH, "acme", Some(last), max, now());
        assert_eq!(
            events.iter().map(|e| e.name).collect::<Vec<_>>(),
            [SNAPSHOT],
            "{last} {max}"
        );
    }
}

#[test]
fn a_resume_from_before_what_was_forgotten_is_a_snapshot() {
    let mut index = TenantIndex::with_tombstone_limit(1);
    put(&mut index, acme("a", "a", "Active"));
    put(&mut index, acme("b", "b", "Active"));
    delete(&mut index, &acme("a", "a", "Active"));
    delete(&mut index, &acme("b", "b", "Active"));
    assert_eq!(index.forgotten_through(), 3);
    let (events, _) = opening(&index, EPOCH, "acme", Some(&id(2)), 10, now());
    assert_eq!(events[0].name, SNAPSHOT);
    let (events, _) = following(&index, EPOCH, "acme", 2, now());
    assert_eq!(events[0].name, SNAPSHOT);
    let (events, cursor) = following(&index, EPOCH, "acme", 3, now());
    assert_eq!((events.len(), events[0].name, cursor), (1, ENTITLEMENT, 4));
}

#[test]
fn a_connected_client_is_sent_each_change_once_with_growing_ids() {
    let mut index = index_with_two_features();
    let (_, cursor) = opening(&index, EPOCH, "acme", None, 10, now());
    assert!(following(&index, EPOCH, "acme", cursor, now()).0.is_empty());
    put(&mut index, entitlement_for_globex());
    put(&mut index, acme("eta", "eta", "Active"));
    let (events, cursor) = following(&index, EPOCH, "acme", cursor, now());
    assert_eq!(events.len(), 1, "globex's change is not acme's");
    assert_eq!(
        (events[0].id.seq, events[0].data["enabled"].clone()),
        (4, json!(true))
    );
    assert_eq!(cursor, 4);
    assert!(following(&index, EPOCH, "acme", cursor, now()).0.is_empty());
}

fn entitlement_for_globex() -> std::sync::Arc<crate::api::Entitlement> {
    crate::front_door::tenant_index::tests::entitlement(
        "tenant-globex",
        "g",
        "globex",
        "routes",
        "Active",
    )
}

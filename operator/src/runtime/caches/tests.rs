use std::time::Duration;

use futures::channel::mpsc;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::runtime::watcher::Event;

use super::*;

fn object(name: &str, generation: i64) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            generation: Some(generation),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

type Events = mpsc::UnboundedSender<Result<Event<ConfigMap>, watcher::Error>>;

fn cache() -> (Events, SharedCache<ConfigMap>) {
    let (tx, rx) = mpsc::unbounded();
    (tx, SharedCache::from_events(rx))
}

fn list(tx: &Events, objects: &[ConfigMap]) {
    tx.unbounded_send(Ok(Event::Init)).unwrap();
    for o in objects {
        tx.unbounded_send(Ok(Event::InitApply(o.clone()))).unwrap();
    }
    tx.unbounded_send(Ok(Event::InitDone)).unwrap();
}

async fn next_names(
    stream: &mut (impl Stream<Item = Arc<ConfigMap>> + Unpin),
    n: usize,
) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..n {
        let object = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a change in time")
            .expect("the stream goes on");
        names.push(object.name_any());
    }
    names.sort();
    names
}

async fn settle(cache: &SharedCache<ConfigMap>, expect: usize) {
    cache.wait_until_ready().await;
    for _ in 0..100 {
        if cache.state().len() == expect {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("cache never held {expect} objects");
}

#[tokio::test]
async fn a_subscriber_gets_the_cache_then_applies_and_deletions() {
    let (tx, cache) = cache();
    list(&tx, &[object("a", 1), object("b", 1)]);
    settle(&cache, 2).await;
    let mut changes = Box::pin(cache.changes());
    assert_eq!(next_names(&mut changes, 2).await, ["a", "b"]);
    tx.unbounded_send(Ok(Event::Apply(object("c", 1)))).unwrap();
    tx.unbounded_send(Ok(Event::Delete(object("a", 1))))
        .unwrap();
    assert_eq!(next_names(&mut changes, 2).await, ["a", "c"]);
    settle(&cache, 2).await;
    assert!(cache.get(&ObjectRef::new("a").within("ns")).is_none());
}

#[tokio::test]
async fn every_task_waiting_for_the_first_list_wakes() {
    let (tx, cache) = cache();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.wait_until_ready().await })
        })
        .collect();
    tokio::task::yield_now().await;
    list(&tx, &[object("a", 1)]);
    for waiter in waiters {
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("waiter");
    }
    assert_eq!(cache.state().len(), 1);
}

#[tokio::test]
async fn a_relist_announces_what_was_deleted_meanwhile() {
    let (tx, cache) = cache();
    list(&tx, &[object("a", 1), object("b", 1)]);
    settle(&cache, 2).await;
    let mut changes = Box::pin(cache.changes());
    next_names(&mut changes, 2).await;
    // The watch broke; "a" was deleted while it was down and comes back missing.
    list(&tx, &[object("b", 2)]);
    assert_eq!(next_names(&mut changes, 2).await, ["a", "b"]);
    settle(&cache, 1).await;
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_given_everything_again() {
    let (tx, cache) = cache();
    list(&tx, &[object("kept", 1)]);
    settle(&cache, 1).await;
    let mut changes = Box::pin(cache.changes());
    next_names(&mut changes, 1).await;
    // More changes than the buffer holds, never read: the watch does not wait for us.
    for n in 0..(CHANGE_BUFFER + 10) {
        tx.unbounded_send(Ok(Event::Apply(object("kept", n as i64 + 2))))
            .unwrap();
    }
    tx.unbounded_send(Ok(Event::Apply(object("last", 1))))
        .unwrap();
    for _ in 0..200 {
        if cache.state().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(cache.state().len(), 2, "the cache kept up");
    // The lagging subscriber is re-sent the whole cache, so "last" reaches it either way.
    let mut seen = std::collections::BTreeSet::new();
    while !seen.contains("last") {
        let object = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .unwrap()
            .unwrap();
        seen.insert(object.name_any());
    }
}

async fn next_update(
    updates: &mut (impl Stream<Item = CacheUpdate<ConfigMap>> + Unpin),
) -> CacheUpdate<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(5), updates.next())
        .await
        .expect("an update in time")
        .expect("the stream goes on")
}

#[tokio::test]
async fn updates_mark_the_first_send_and_every_resend_as_snapshots() {
    let (tx, cache) = cache();
    list(&tx, &[object("gone", 1)]);
    settle(&cache, 1).await;
    let mut updates = Box::pin(cache.updates());
    assert!(
        matches!(next_update(&mut updates).await, CacheUpdate::Snapshot(all) if all.len() == 1)
    );
    // Deleted while the subscriber is far behind: only the snapshot tells it.
    tx.unbounded_send(Ok(Event::Delete(object("gone", 1))))
        .unwrap();
    for n in 0..(CHANGE_BUFFER + 10) {
        tx.unbounded_send(Ok(Event::Apply(object("busy", n as i64 + 1))))
            .unwrap();
    }
    settle(&cache, 1).await;
    match next_update(&mut updates).await {
        CacheUpdate::Snapshot(all) => {
            assert_eq!(
                all.iter().map(|o| o.name_any()).collect::<Vec<_>>(),
                ["busy"]
            );
        }
        CacheUpdate::Changed(o) => panic!("expected a snapshot after lagging, got {o:?}"),
    }
}

#[tokio::test]
async fn spec_changes_skip_status_writes() {
    let (tx, cache) = cache();
    list(&tx, &[object("a", 1)]);
    settle(&cache, 1).await;
    let mut specs = Box::pin(spec_changes(cache.changes(), cache.store().clone()));
    assert_eq!(next_names(&mut specs, 1).await, ["a"], "new objects pass");
    // A status write keeps the generation: filtered. A spec edit bumps it: passes.
    tx.unbounded_send(Ok(Event::Apply(object("a", 1)))).unwrap();
    tx.unbounded_send(Ok(Event::Apply(object("a", 2)))).unwrap();
    let edited = tokio::time::timeout(Duration::from_secs(5), specs.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.metadata.generation, Some(2));
    // Deletion passes.
    tx.unbounded_send(Ok(Event::Delete(object("a", 2))))
        .unwrap();
    settle(&cache, 0).await;
    assert_eq!(next_names(&mut specs, 1).await, ["a"]);
}

fn in_other(name: &str) -> ConfigMap {
    let mut o = object(name, 1);
    o.metadata.namespace = Some("other".into());
    o
}

fn names(objects: Vec<Arc<ConfigMap>>) -> Vec<String> {
    let mut names: Vec<String> = objects.iter().map(|o| o.name_any()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_namespace_index_follows_applies_deletions_and_relists() {
    let (tx, cache) = cache();
    list(&tx, &[object("a", 1), object("b", 1), in_other("x")]);
    settle(&cache, 3).await;
    let mut changes = Box::pin(cache.changes());
    next_names(&mut changes, 3).await;
    assert_eq!(names(cache.in_namespace("ns")), ["a", "b"]);
    assert_eq!(names(cache.in_namespace("other")), ["x"]);
    assert!(cache.in_namespace("none").is_empty());
    // The index is current by the time a change is announced.
    tx.unbounded_send(Ok(Event::Apply(object("c", 1)))).unwrap();
    tx.unbounded_send(Ok(Event::Delete(in_other("x")))).unwrap();
    next_names(&mut changes, 2).await;
    assert_eq!(names(cache.in_namespace("ns")), ["a", "b", "c"]);
    assert!(cache.in_namespace("other").is_empty());
    // An update replaces the indexed object.
    tx.unbounded_send(Ok(Event::Apply(object("a", 2)))).unwrap();
    next_names(&mut changes, 1).await;
    let a = cache
        .in_namespace("ns")
        .into_iter()
        .find(|o| o.name_any() == "a");
    assert_eq!(a.and_then(|o| o.metadata.generation), Some(2));
    // A relist replaces the index with what the list holds.
    list(&tx, &[object("b", 2)]);
    next_names(&mut changes, 3).await;
    assert_eq!(names(cache.in_namespace("ns")), ["b"]);
}

#[test]
fn trimming_drops_managed_fields_and_the_last_applied_copy_only() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    let mut o = object("a", 1);
    o.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
        manager: Some("kubectl".into()),
        ..ManagedFieldsEntry::default()
    }]);
    o.metadata.annotations = Some(
        [
            (LAST_APPLIED.to_string(), "{\"a\":1}".to_string()),
            ("keep".to_string(), "me".to_string()),
        ]
        .into(),
    );
    trim(&mut o);
    assert_eq!(o.metadata.managed_fields, None);
    assert_eq!(
        o.metadata.annotations,
        Some([("keep".to_string(), "me".to_string())].into())
    );
    let mut only_last_applied = object("b", 1);
    only_last_applied.metadata.annotations =
        Some([(LAST_APPLIED.to_string(), "{}".to_string())].into());
    trim(&mut only_last_applied);
    assert_eq!(only_last_applied.metadata.annotations, None);
}

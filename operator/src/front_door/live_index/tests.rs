use std::time::Duration;

use futures::channel::mpsc;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use super::*;
use crate::front_door::tenant_index::tests::{acme, entitlement};

pub(crate) type Events<K> = mpsc::UnboundedSender<Result<Event<K>, watcher::Error>>;

/// Caches fed by the test: Entitlements and Listings by hand, the other kinds never.
pub(crate) fn stores() -> (Events<Entitlement>, Events<Listing>, Stores) {
    let (entitlements, entitlement_events) = mpsc::unbounded();
    let (listings, listing_events) = mpsc::unbounded();
    let stores = Stores {
        listings: SharedCache::from_events(listing_events),
        tenants: SharedCache::from_events(futures::stream::pending()),
        subscriptions: SharedCache::from_events(futures::stream::pending()),
        entitlements: SharedCache::from_events(entitlement_events),
        promotions: SharedCache::from_events(futures::stream::pending()),
        bundles: SharedCache::from_events(futures::stream::pending()),
        bundle_subscriptions: SharedCache::from_events(futures::stream::pending()),
    };
    (entitlements, listings, stores)
}

pub(crate) fn listing(name: &str, features: &[&str]) -> Listing {
    serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing", "metadata": {"name": name},
        "spec": {"displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
            "category": "Operations", "lifecycle": "Published", "features": features,
            "plans": [{"name": "standard", "displayName": "Standard",
                "pricing": {"model": "Flat", "amount": "12.00", "currency": "USD", "interval": "Month"}}]}}))
    .expect("a Listing")
}

/// Sends a full list of `objects`.
pub(crate) fn list<K: Clone>(events: &Events<K>, objects: &[K]) {
    events.unbounded_send(Ok(Event::Init)).expect("send");
    for object in objects {
        events
            .unbounded_send(Ok(Event::InitApply(object.clone())))
            .expect("send");
    }
    events.unbounded_send(Ok(Event::InitDone)).expect("send");
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn the_index_follows_the_caches_and_wakes_only_the_tenant_that_changed() {
    let (entitlements, listings, stores) = stores();
    list(
        &entitlements,
        &[(*acme("routes", "routes", "Active")).clone()],
    );
    list(&listings, &[listing("routes", &["routes", "eta"])]);
    let index = LiveIndex::start(&stores);
    tokio::time::timeout(Duration::from_secs(5), index.wait_until_ready())
        .await
        .expect("ready in time");
    assert_eq!(index.features("acme").len(), 1);
    assert_eq!(
        index
            .catalog()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["eta", "routes"]
    );

    let mut acme_waker = index.wake_on_change("acme");
    let mut globex_waker = index.wake_on_change("globex");
    let eta = (*acme("eta", "eta", "Trialing")).clone();
    entitlements
        .unbounded_send(Ok(Event::Apply(eta.clone())))
        .expect("send");
    tokio::time::timeout(Duration::from_secs(5), acme_waker.changed())
        .await
        .expect("acme woken");
    assert_eq!(index.features("acme").len(), 2);
    entitlements
        .unbounded_send(Ok(Event::Delete(eta)))
        .expect("send");
    until("eta gone", || index.features("acme").len() == 1).await;
    let globex = entitlement("tenant-globex", "g", "globex", "routes", "Active");
    entitlements
        .unbounded_send(Ok(Event::Apply((*globex).clone())))
        .expect("send");
    tokio::time::timeout(Duration::from_secs(5), globex_waker.changed())
        .await
        .expect("globex woken");
    // acme was woken for the deletion, and not since.
    assert!(acme_waker.changed().await);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), acme_waker.changed())
            .await
            .is_err(),
        "globex's change did not wake acme"
    );

    listings
        .unbounded_send(Ok(Event::Apply(listing("gigsafe", &["gigsafe"]))))
        .expect("send");
    until("the catalog grows", || index.catalog().contains("gigsafe")).await;

    // Wakers go with their last holder; closing ends the rest.
    drop(globex_waker);
    assert!(!index.shared.wakers().contains_key("globex"));
    index.close_streams();
    assert!(!acme_waker.changed().await);
    assert!(!index.wake_on_change("acme").changed().await);
}

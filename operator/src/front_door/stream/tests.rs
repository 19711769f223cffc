use std::time::Duration;

use axum::body::Body;
use futures::StreamExt;
use kube::runtime::watcher::Event as WatchEvent;

use super::*;
use crate::front_door::live_index::tests::{Events, list, listing, stores};
use crate::front_door::tenant_index::tests::acme;

/// A client's view of a stream: its text, read one chunk at a time.
struct Reader(futures::stream::BoxStream<'static, Result<axum::body::Bytes, axum::Error>>);

impl Reader {
    fn new(events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Self {
        let body: Body = Sse::new(events).into_response().into_body();
        Reader(body.into_data_stream().boxed())
    }

    /// The next event's text; `None` once the stream has ended.
    async fn next(&mut self) -> Option<String> {
        let chunk = tokio::time::timeout(Duration::from_secs(5), self.0.next())
            .await
            .expect("the stream moves in time")?;
        Some(String::from_utf8(chunk.expect("a chunk").to_vec()).expect("utf-8"))
    }

    /// The next event that is not a heartbeat.
    async fn next_event(&mut self) -> Option<String> {
        loop {
            let text = self.next().await?;
            if text != HEARTBEAT {
                return Some(text);
            }
        }
    }
}

const HEARTBEAT: &str = ": heartbeat\n\n";

async fn ready_index() -> (Events<crate::api::Entitlement>, LiveIndex) {
    let (entitlements, listings, stores) = stores();
    list(
        &entitlements,
        &[(*acme("routes", "routes", "Active")).clone()],
    );
    list(&listings, &[listing("routes", &["routes"])]);
    let index = LiveIndex::start(&stores);
    tokio::time::timeout(Duration::from_secs(5), index.wait_until_ready())
        .await
        .expect("ready in time");
    (entitlements, index)
}

fn settings(heartbeat_ms: u64, client_buffer: usize) -> StreamSettings {
    StreamSettings {
        heartbeat: Duration::from_millis(heartbeat_ms),
        client_buffer,
    }
}

fn apply(events: &Events<crate::api::Entitlement>, name: &str, feature: &str, state: &str) {
    events
        .unbounded_send(Ok(WatchEvent::Apply((*acme(name, feature, state)).clone())))
        .expect("send");
}

/// The `id:` of an event's text.
fn id_of(event: &str) -> String {
    event
        .lines()
        .find_map(|line| line.strip_prefix("id: "))
        .expect("an id")
        .to_string()
}

#[tokio::test]
async fn a_client_gets_a_snapshot_changes_and_heartbeats_and_resumes_where_it_left() {
    let (entitlements, index) = ready_index().await;
    let mut reader = Reader::new(open(&index, "acme", None, settings(200, 8)));
    let snapshot = reader.next_event().await.expect("a snapshot");
    assert!(snapshot.contains("event: snapshot\n"), "{snapshot}");
    assert!(
        snapshot.contains(r#"data: {"entitlements":[{"#),
        "{snapshot}"
    );
    assert!(snapshot.contains(r#""enabled":true"#), "{snapshot}");
    apply(&entitlements, "routes", "routes", "Suspended");
    let change = reader.next_event().await.expect("a change");
    assert!(change.contains("event: entitlement\n"), "{change}");
    assert!(
        change.contains(r#""feature":"routes""#) && change.contains(r#""enabled":false"#),
        "{change}"
    );
    while reader.next().await.expect("the stream goes on") != HEARTBEAT {}
    // Gone, and back with the last id it saw: only what changed since.
    let seen = id_of(&change);
    drop(reader);
    apply(&entitlements, "eta", "eta", "Active");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut again = Reader::new(open(&index, "acme", Some(&seen), settings(60_000, 8)));
    let missed = again.next().await.expect("the missed change");
    assert!(
        missed.contains("event: entitlement\n") && missed.contains(r#""feature":"eta""#),
        "{missed}"
    );
    // Closing the streams (shutdown) ends it.
    index.close_streams();
    assert_eq!(again.next().await, None);
}

#[tokio::test]
async fn a_client_that_does_not_read_is_cut_and_others_go_on() {
    let (entitlements, index) = ready_index().await;
    let stalled = open(&index, "acme", None, settings(60_000, 2));
    let mut reading = Reader::new(open(&index, "acme", None, settings(60_000, 2)));
    assert!(reading.next().await.expect("snapshot").contains("snapshot"));
    for n in 0..4 {
        apply(&entitlements, &format!("e{n}"), &format!("f{n}"), "Active");
        let change = reading.next().await.expect("a change");
        assert!(change.contains(&format!(r#""feature":"f{n}""#)), "{change}");
    }
    // The stalled client's buffer took the snapshot and one change; then it was cut.
    let mut stalled = Reader::new(stalled);
    let mut received = Vec::new();
    while let Some(event) = stalled.next().await {
        received.push(event);
    }
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(received[0].contains("snapshot"));
}

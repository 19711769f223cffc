//! The notification outbox under SIGKILL of the real `marketplace operator` binary (real
//! control plane, HubSpot simulator, a webhook receiver on loopback), at each step:
//! - killed before the send succeeded (the receiver was not up yet): after the restart the
//!   message goes out once;
//! - killed after the send was recorded: after the restart it is not sent again;
//! - killed between the receiver's acceptance and the record (the receiver holds its answer):
//!   after the restart it goes again, with the same `webhook-id`, which is how a receiver drops
//!   it (the README says at-least-once, not exactly-once).
//!
//! Own test binary: the operator serves the whole cluster.

mod process_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use marketplace_operator::api::notification::DeliveryPhase;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Listing, Notification, NotificationChannel};
use process_support::{Env, OPERATOR_NAMESPACE, Operator, eventually};
use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(45);

/// What the receiver got: (webhook-id, body), in order; and whether it holds its answers.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Value)>>>,
    hold: Arc<AtomicBool>,
}

impl Receiver {
    /// The webhook-ids of deliveries about subscription `name`.
    fn ids_about(&self, name: &str) -> Vec<String> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, body)| {
                body["data"]["facts"]["subscription"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(&format!("/{name}")))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    r.got.lock().expect("lock").push((id, body));
    if r.hold.load(Ordering::SeqCst) {
        // Accepted and processed here; the answer is held until the sender is gone.
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    StatusCode::NO_CONTENT
}

/// Starts the receiver on `port` (taken before, so the channel could name it while nothing
/// listened).
async fn start_receiver(port: u16, receiver: Receiver) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("receiver port");
    let app = Router::new().route("/", post(receive)).with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
}

fn spawn(env: &Env, name: &str) -> Operator {
    env.spawn_operator_with(
        name,
        None,
        &[
            ("MARKETPLACE_NOTIFICATIONS", "true"),
            ("MARKETPLACE_NOTIFICATION_RETRY_SECONDS", "0.2"),
            ("MARKETPLACE_NOTIFICATION_MAX_ATTEMPTS", "1000"),
        ],
    )
}

/// An approval listing `name` (its requests alert the task channel).
async fn approval_listing(env: &Env, name: &str) {
    env.create_listing(name, &name.replace('-', "_")).await;
    Api::<Listing>::all(env.client.clone())
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"activation": "Approval"}})),
        )
        .await
        .expect("approval");
}

/// The outbox record about subscription `name`.
async fn record_about(env: &Env, name: &str) -> Option<Notification> {
    Api::<Notification>::namespaced(env.client.clone(), OPERATOR_NAMESPACE)
        .list(&Default::default())
        .await
        .ok()?
        .items
        .into_iter()
        .find(|r| {
            r.spec
                .data
                .get("subscription")
                .is_some_and(|s| s.ends_with(&format!("/{name}")))
        })
}

async fn wait_sent(env: &Env, name: &str) -> Notification {
    eventually(&format!("{name}'s record Sent"), CONVERGE, || async {
        record_about(env, name)
            .await
            .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(DeliveryPhase::Sent))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_outbox_sends_once_across_sigkill_and_says_the_same_id_when_it_cannot() {
    let env = Env::start("notifications").await;
    let mut operator = spawn(&env, "op-1");
    env.create_tenant().await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("address").port()
    };
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), OPERATOR_NAMESPACE);
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "signing"},
        "stringData": {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let channel: NotificationChannel = serde_json::from_value(json!({
        "metadata": {"name": "tasks"},
        "spec": {"audience": "Tasks", "webhook": {"url": format!("http://127.0.0.1:{port}/"),
            "signingSecretRef": {"name": "signing"}}}}))
    .expect("channel");
    Api::<NotificationChannel>::namespaced(env.client.clone(), OPERATOR_NAMESPACE)
        .create(&PostParams::default(), &channel)
        .await
        .expect("channel");

    // 1. Killed before any send succeeded: the receiver is not up; attempts fail.
    approval_listing(&env, "support-one").await;
    env.create_subscription("one", "support-one").await;
    env.wait_phase("one", Phase::Requested, CONVERGE).await;
    eventually("a failed attempt", CONVERGE, || async {
        record_about(&env, "one")
            .await
            .filter(|r| r.status.as_ref().is_some_and(|s| s.attempts >= 1))
    })
    .await;
    operator.kill().await;
    let receiver = Receiver::default();
    start_receiver(port, receiver.clone()).await;
    let mut operator = spawn(&env, "op-2");
    let sent = wait_sent(&env, "one").await;
    assert_eq!(
        receiver.ids_about("one"),
        [sent.metadata.name.clone().expect("name")]
    );

    // 2. Killed after the send was recorded: a restart sends nothing again.
    operator.kill().await;
    let mut operator = spawn(&env, "op-3");

    // 3. Killed between the receiver's acceptance and the record.
    receiver.hold.store(true, Ordering::SeqCst);
    approval_listing(&env, "support-two").await;
    env.create_subscription("two", "support-two").await;
    eventually(
        "the receiver to accept the second request",
        CONVERGE,
        || async { (!receiver.ids_about("two").is_empty()).then_some(()) },
    )
    .await;
    operator.kill().await;
    receiver.hold.store(false, Ordering::SeqCst);
    let pending = record_about(&env, "two").await.expect("record");
    assert_ne!(
        pending.status.as_ref().and_then(|s| s.phase),
        Some(DeliveryPhase::Sent),
        "killed before the record"
    );
    let _operator = spawn(&env, "op-4");
    let sent_two = wait_sent(&env, "two").await;
    let id = sent_two.metadata.name.clone().expect("name");
    assert_eq!(
        receiver.ids_about("two"),
        [id.clone(), id],
        "a second copy with the same webhook-id"
    );
    // The first message was never sent again by op-3 or op-4.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.ids_about("one").len(), 1, "{}", env.log_tails());
}

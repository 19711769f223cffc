//! The operator's webhook endpoint against the HubSpot simulator's real deliveries (contract
//! §5): signed requests over HTTP become hints naming the billed subscription; the
//! simulator's delivery faults (duplicates, reordering, stale timestamps) give one hint per
//! event, and stale requests are refused until HubSpot's retry carries a fresh signature.
mod billing_support;

use billing_support::*;
use marketplace_operator::billing::{Tier, WebhookSecret, WebhookVerifier};
use marketplace_operator::server::{
    HintSink, Metrics, Readiness, ServerState, WebhookHint, WebhookReceiver, router, serve,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

struct Ours {
    /// The URL the simulator is told to call (a percent-encoded query exercises the v3 rule).
    url: String,
    hints: Arc<Mutex<Vec<WebhookHint>>>,
    metrics: Arc<Metrics>,
    _stop: oneshot::Sender<()>,
}

/// Keeps every recorded hint, for the assertions.
struct Collect(Arc<Mutex<Vec<WebhookHint>>>);

impl HintSink for Collect {
    fn record(
        &self,
        hints: Vec<WebhookHint>,
    ) -> futures::future::BoxFuture<'_, Result<(), String>> {
        self.0.lock().unwrap().extend(hints);
        Box::pin(futures::future::ready(Ok(())))
    }
}

async fn start_ours(secret: &str) -> Ours {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}/webhooks/hubspot", listener.local_addr().unwrap());
    let verifier = Arc::new(WebhookVerifier::new(WebhookSecret::new(secret)));
    let metrics = Arc::new(Metrics::new());
    let hints = Arc::new(Mutex::new(Vec::new()));
    let receiver = WebhookReceiver::new(verifier, public.clone(), Arc::new(Collect(hints.clone())));
    let state = ServerState::new(Readiness::new(), metrics.clone(), Some(receiver));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, router(state), async move {
        let _ = stopped.await;
    }));
    Ours {
        url: format!("{public}?portal=%3A62515"),
        hints,
        metrics,
        _stop: stop,
    }
}

impl Ours {
    fn hints_for(&self, object_id: &str) -> Vec<WebhookHint> {
        self.hints
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.object_id == object_id)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, what: &str, pred: impl Fn(&Ours) -> bool) {
        for _ in 0..500 {
            if pred(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "timed out waiting for {what}; hints: {:#?}",
            self.hints.lock().unwrap()
        );
    }
}

/// The simulator's admin API (`/_sim`), over HTTP as an operator of the test would use it.
async fn admin(sim: &hubspot_sim::RunningSimulator, path: &str, body: Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/_sim/{path}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "/_sim/{path}: {}", res.status());
}

fn is_status(h: &WebhookHint, value: &str) -> bool {
    h.subscription_type == "object.propertyChange"
        && h.object_type_id.as_deref() == Some("0-69")
        && h.property_name.as_deref() == Some("hs_status")
        && h.property_value.as_deref() == Some(value)
}

async fn setup() -> (Ours, hubspot_sim::RunningSimulator) {
    let mut cfg = sim_config();
    // Quick retries: refused deliveries come back within a second.
    cfg.webhook_retry_base_ms = 50;
    let ours = start_ours(&cfg.client_secret).await;
    let sim = start(cfg).await;
    admin(&sim, "webhooks", json!({ "url": ours.url })).await;
    (ours, sim)
}

#[tokio::test]
async fn failed_payment_reaches_the_operator_as_a_hint() {
    let (ours, sim) = setup().await;
    let c = ready(&sim, Tier::Professional).await;
    let record = c.ensure_billing_record(&request(1)).await.expect("ensure");
    let sid = record.subscription_id.expect("billed subscription");
    ours.wait_for("the subscription's creation", |o| {
        o.hints_for(&sid)
            .iter()
            .any(|h| h.subscription_type == "object.creation")
    })
    .await;

    // The tenant's card starts failing; the next billing cycle moves the subscription to past_due.
    admin(
        &sim,
        "payments/fail",
        json!({ "companyId": record.company_id }),
    )
    .await;
    admin(&sim, "clock/advance", json!({ "days": 32 })).await;
    ours.wait_for("hs_status past_due", |o| {
        o.hints_for(&sid).iter().any(|h| is_status(h, "past_due"))
    })
    .await;
    let h = ours
        .hints_for(&sid)
        .into_iter()
        .find(|h| is_status(h, "past_due"))
        .unwrap();
    assert!(!h.event_id.is_empty() && h.occurred_at_ms > 0, "{h:?}");

    // Every delivery was verified: none refused, all answered 200.
    for outcome in [
        "forged",
        "stale",
        "replayed",
        "bad_body",
        "missing_signature",
    ] {
        assert_eq!(ours.metrics.webhook_count(outcome), 0, "{outcome}");
    }
    let deliveries = sim.admin().webhook_deliveries();
    assert!(!deliveries.is_empty());
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "{deliveries:#?}"
    );
}

#[tokio::test]
async fn duplicates_reordering_and_stale_timestamps() {
    let (ours, sim) = setup().await;
    let c = ready(&sim, Tier::Professional).await;
    let sid = c
        .ensure_billing_record(&request(1))
        .await
        .expect("ensure")
        .subscription_id
        .expect("billed subscription");
    ours.wait_for("the creation hint", |o| !o.hints_for(&sid).is_empty())
        .await;

    // Duplicate: every batch is sent twice; the event becomes one hint.
    admin(&sim, "webhooks", json!({ "faults": { "duplicate": true } })).await;
    c.pause_subscription(&sid, "test").await.expect("pause");
    let paused_deliveries = || {
        sim.admin()
            .webhook_deliveries()
            .iter()
            .filter(|d| d.body.contains("\"paused\""))
            .count()
    };
    ours.wait_for("both copies delivered", |_| paused_deliveries() >= 2)
        .await;
    ours.wait_for("the paused hint", |o| {
        o.hints_for(&sid).iter().any(|h| is_status(h, "paused"))
    })
    .await;
    // The copy is refused as a replay (same millisecond, same signature) or recognised as a
    // duplicate event (fresh signature); either way no second hint.
    assert!(ours.metrics.webhook_count("duplicate") + ours.metrics.webhook_count("replayed") >= 1);
    let paused = ours
        .hints_for(&sid)
        .iter()
        .filter(|h| is_status(h, "paused"))
        .count();
    assert_eq!(paused, 1);

    // Reorder: a batch arrives reversed, so the status change precedes the creation; both
    // arrive, and `occurredAt` is what orders them.
    admin(
        &sim,
        "webhooks",
        json!({ "faults": { "duplicate": false, "reorder": true } }),
    )
    .await;
    let sid2 = c
        .ensure_billing_record(&request(2))
        .await
        .expect("ensure 2")
        .subscription_id
        .expect("second billed subscription");
    ours.wait_for("creation and status of the second subscription", |o| {
        let hs = o.hints_for(&sid2);
        hs.iter().any(|h| h.subscription_type == "object.creation")
            && hs
                .iter()
                .any(|h| h.property_name.as_deref() == Some("hs_status"))
    })
    .await;
    let hs = ours.hints_for(&sid2);
    let creation = hs
        .iter()
        .position(|h| h.subscription_type == "object.creation")
        .unwrap();
    let status = hs
        .iter()
        .position(|h| h.property_name.as_deref() == Some("hs_status"))
        .unwrap();
    assert!(status < creation, "reversed batch: {hs:#?}");
    assert!(hs[status].occurred_at_ms >= hs[creation].occurred_at_ms);

    // Stale: signed 6 minutes ago, refused; HubSpot retries, and once its signature is fresh
    // the event gets through, once.
    admin(
        &sim,
        "webhooks",
        json!({ "faults": { "reorder": false, "staleTimestamp": true } }),
    )
    .await;
    c.cancel_subscription(&sid2).await.expect("cancel");
    ours.wait_for("a stale refusal", |o| o.metrics.webhook_count("stale") >= 1)
        .await;
    assert!(
        !ours
            .hints_for(&sid2)
            .iter()
            .any(|h| is_status(h, "canceled"))
    );
    assert!(
        sim.admin()
            .webhook_deliveries()
            .iter()
            .any(|d| d.status == Some(401) && d.body.contains("\"canceled\""))
    );
    admin(&sim, "webhooks", json!({ "faults": {} })).await;
    ours.wait_for("the canceled hint after the retry", |o| {
        o.hints_for(&sid2).iter().any(|h| is_status(h, "canceled"))
    })
    .await;
    let canceled = ours
        .hints_for(&sid2)
        .iter()
        .filter(|h| is_status(h, "canceled"))
        .count();
    assert_eq!(canceled, 1);
    assert_eq!(ours.metrics.webhook_count("forged"), 0);
}

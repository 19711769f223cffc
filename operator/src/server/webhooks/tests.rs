use super::*;
use crate::billing::webhook::signature_v3;
use crate::billing::{WebhookSecret, WebhookVerifier};
use crate::server::{Readiness, ServerState, router};
use axum::body::Body;
use axum::http::Request;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tower::ServiceExt;

const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
/// What HubSpot calls; the requests below arrive as `/webhooks/hubspot?…` on some other host.
const PUBLIC: &str = "https://ops.example.com/webhooks/hubspot";
const QUERY: &str = "portal=%3A62515&app=a%2Cb";

const EVENT: &str = r#"{"eventId":1765889350,"subscriptionId":7662269,"portalId":62515,"appId":54321,"occurredAt":1788597072520,"subscriptionType":"object.propertyChange","attemptNumber":0,"objectId":546500061938,"objectTypeId":"0-69","propertyName":"hs_status","propertyValue":"past_due","changeSource":"BILLING","sourceId":"billing","isSensitive":false,"somethingNew":{"x":1}}"#;

struct Fixture {
    router: Router,
    hints: mpsc::Receiver<WebhookHint>,
    metrics: Arc<Metrics>,
}

/// Records into a bounded channel, all of a request's hints or none (a full channel fails).
struct ChannelSink(mpsc::Sender<WebhookHint>);

impl HintSink for ChannelSink {
    fn record(&self, hints: Vec<WebhookHint>) -> BoxFuture<'_, Result<(), String>> {
        let recorded = match self.0.try_reserve_many(hints.len()) {
            Ok(permits) => {
                for (permit, hint) in permits.zip(hints) {
                    permit.send(hint);
                }
                Ok(())
            }
            Err(_) => Err("channel full".to_string()),
        };
        Box::pin(futures::future::ready(recorded))
    }
}

fn fixture(channel: usize) -> Fixture {
    let (tx, hints) = mpsc::channel(channel);
    let verifier = Arc::new(WebhookVerifier::new(WebhookSecret::new(SECRET)));
    let metrics = Arc::new(Metrics::new());
    // A query in the configured URL is ignored: the request's own query is what was signed.
    let receiver = WebhookReceiver::new(
        verifier,
        format!("{PUBLIC}?ignored=1"),
        Arc::new(ChannelSink(tx)),
    );
    let state = ServerState::new(Readiness::new(), metrics.clone(), Some(receiver));
    Fixture {
        router: router(state),
        hints,
        metrics,
    }
}

fn request(body: impl Into<Body>, v3: &str, ts: &str) -> Request<Body> {
    Request::post(format!("{PATH}?{QUERY}"))
        .header("host", "operator.marketplace-system.svc:8080")
        .header("content-type", "application/json")
        .header("x-hubspot-signature-v3", v3)
        .header("x-hubspot-request-timestamp", ts)
        .body(body.into())
        .unwrap()
}

/// A request signed as HubSpot signs it, `age_ms` old.
fn signed(body: &str, age_ms: i64) -> Request<Body> {
    let ts = (now_ms() - age_ms).to_string();
    let sig = signature_v3(
        &WebhookSecret::new(SECRET),
        "POST",
        &format!("{PUBLIC}?{QUERY}"),
        body.as_bytes(),
        &ts,
    );
    request(body.to_string(), &sig, &ts)
}

async fn send(f: &Fixture, req: Request<Body>) -> (StatusCode, String) {
    let res = f.router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn accepted_events_become_hints() {
    let mut f = fixture(16);
    // Ids as strings, a legacy event without objectTypeId, a non-string property value.
    let legacy = r#"{"eventId":"7","subscriptionId":"12","portalId":"62515","occurredAt":"1788597072521","subscriptionType":"deal.propertyChange","objectId":"42","propertyName":"amount","propertyValue":12.5}"#;
    let body = format!("[{EVENT},{legacy}]");
    let (status, text) = send(&f, signed(&body, 1_000)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text, "accepted 2, duplicate 0, unusable 0\n", "{text}");
    assert_eq!(
        f.hints.try_recv().unwrap(),
        WebhookHint {
            event_id: "1765889350".into(),
            subscription_type: "object.propertyChange".into(),
            object_type_id: Some("0-69".into()),
            object_id: "546500061938".into(),
            property_name: Some("hs_status".into()),
            property_value: Some("past_due".into()),
            occurred_at_ms: 1_788_597_072_520,
        }
    );
    assert_eq!(
        f.hints.try_recv().unwrap(),
        WebhookHint {
            event_id: "7".into(),
            subscription_type: "deal.propertyChange".into(),
            object_type_id: None,
            object_id: "42".into(),
            property_name: Some("amount".into()),
            property_value: Some("12.5".into()),
            occurred_at_ms: 1_788_597_072_521,
        }
    );
    assert_eq!(f.metrics.webhook_count("accepted"), 2);
}

#[tokio::test]
async fn forged_stale_unsigned_and_wrong_uri_are_refused_without_hints() {
    let mut f = fixture(16);
    let body = format!("[{EVENT}]");
    let ts = now_ms().to_string();
    let other = signature_v3(
        &WebhookSecret::new("someone-else"),
        "POST",
        &format!("{PUBLIC}?{QUERY}"),
        body.as_bytes(),
        &ts,
    );
    assert_eq!(
        send(&f, request(body.clone(), &other, &ts)).await,
        (StatusCode::UNAUTHORIZED, "refused: forged\n".into())
    );
    // Signed over the URL the request arrived at, not the public one.
    let internal = signature_v3(
        &WebhookSecret::new(SECRET),
        "POST",
        &format!("http://operator.marketplace-system.svc:8080{PATH}?{QUERY}"),
        body.as_bytes(),
        &ts,
    );
    assert_eq!(
        send(&f, request(body.clone(), &internal, &ts)).await.1,
        "refused: forged\n"
    );
    // A body changed under a valid signature.
    let mut req = signed(&body, 0);
    *req.body_mut() = Body::from(body.replace("past_due", "active"));
    assert_eq!(send(&f, req).await.1, "refused: forged\n");
    // Six minutes old.
    assert_eq!(
        send(&f, signed(&body, 6 * 60 * 1000)).await,
        (StatusCode::UNAUTHORIZED, "refused: stale\n".into())
    );
    let unsigned = Request::post(PATH).body(Body::from(body.clone())).unwrap();
    assert_eq!(
        send(&f, unsigned).await,
        (
            StatusCode::UNAUTHORIZED,
            "refused: missing_signature\n".into()
        )
    );
    assert_eq!(f.hints.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(f.metrics.webhook_count("forged"), 3);
    assert_eq!(f.metrics.webhook_count("stale"), 1);
    assert_eq!(f.metrics.webhook_count("missing_signature"), 1);
    assert_eq!(f.metrics.webhook_count("accepted"), 0);
}

#[tokio::test]
async fn replays_and_duplicate_events_forward_once() {
    let mut f = fixture(16);
    let body = format!("[{EVENT}]");
    let ts = now_ms().to_string();
    let sig = signature_v3(
        &WebhookSecret::new(SECRET),
        "POST",
        &format!("{PUBLIC}?{QUERY}"),
        body.as_bytes(),
        &ts,
    );
    assert_eq!(
        send(&f, request(body.clone(), &sig, &ts)).await.0,
        StatusCode::OK
    );
    // The same signed request again.
    assert_eq!(
        send(&f, request(body.clone(), &sig, &ts)).await,
        (StatusCode::UNAUTHORIZED, "refused: replayed\n".into())
    );
    // HubSpot's retry: a fresh signature, the same event (attempt 1).
    let retry = format!(
        "[{}]",
        EVENT.replace(r#""attemptNumber":0"#, r#""attemptNumber":1"#)
    );
    let (status, text) = send(&f, signed(&retry, 1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, "accepted 0, duplicate 1, unusable 0\n");
    assert!(f.hints.try_recv().is_ok());
    assert_eq!(f.hints.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(f.metrics.webhook_count("replayed"), 1);
    assert_eq!(f.metrics.webhook_count("duplicate"), 1);
    assert_eq!(f.metrics.webhook_count("accepted"), 1);
}

#[tokio::test]
async fn same_event_id_with_other_content_is_not_a_duplicate() {
    // contract §5.3: eventId is not guaranteed unique, so it alone does not dedupe.
    let mut f = fixture(16);
    let a = format!("[{EVENT}]");
    let b = format!("[{}]", EVENT.replace("past_due", "unpaid"));
    assert_eq!(send(&f, signed(&a, 2)).await.0, StatusCode::OK);
    assert_eq!(
        send(&f, signed(&b, 1)).await.1,
        "accepted 1, duplicate 0, unusable 0\n"
    );
    assert_eq!(
        f.hints.try_recv().unwrap().property_value.as_deref(),
        Some("past_due")
    );
    assert_eq!(
        f.hints.try_recv().unwrap().property_value.as_deref(),
        Some("unpaid")
    );
}

#[tokio::test]
async fn bad_bodies_and_oversized_requests() {
    let mut f = fixture(16);
    for bad in ["{not json", r#"{"eventId":1}"#] {
        assert_eq!(
            send(&f, signed(bad, 0)).await,
            (
                StatusCode::BAD_REQUEST,
                "body is not a JSON array of events\n".into()
            )
        );
    }
    // Unusable elements are skipped, the rest forwarded.
    let body = format!(r#"[1,{{"eventId":2,"subscriptionType":"x"}},{EVENT}]"#);
    assert_eq!(
        send(&f, signed(&body, 0)).await.1,
        "accepted 1, duplicate 0, unusable 2\n"
    );
    assert!(f.hints.try_recv().is_ok());
    let huge = format!("[{}]", " ".repeat(MAX_BODY_BYTES));
    assert_eq!(
        send(&f, signed(&huge, 0)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(f.hints.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(f.metrics.webhook_count("bad_body"), 4);
    assert_eq!(f.metrics.webhook_count("too_large"), 1);
}

#[tokio::test]
async fn hints_that_cannot_be_recorded_get_503_and_the_redelivery_gets_through() {
    let mut f = fixture(1);
    let second = EVENT
        .replace("546500061938", "546500061939")
        .replace("1765889350", "1765889351");
    let body = format!("[{EVENT},{second}]");
    // Two hints, room for one: nothing is recorded, and HubSpot is told to retry.
    assert_eq!(
        send(&f, signed(&body, 2)).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "could not record the events; deliver them again\n".into()
        )
    );
    assert_eq!(f.hints.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(f.metrics.webhook_count("unrecorded"), 2);
    // Nothing was remembered, so HubSpot's redelivery is not a duplicate.
    let single = format!("[{EVENT}]");
    assert_eq!(
        send(&f, signed(&single, 1)).await.1,
        "accepted 1, duplicate 0, unusable 0\n"
    );
    assert_eq!(f.hints.try_recv().unwrap().object_id, "546500061938");
    // The same event twice in one request is recorded once.
    let twice = format!("[{second},{second}]");
    assert_eq!(
        send(&f, signed(&twice, 0)).await.1,
        "accepted 1, duplicate 1, unusable 0\n"
    );
    assert_eq!(f.hints.try_recv().unwrap().object_id, "546500061939");
}

#[test]
fn dedupe_memory_is_bounded() {
    let mut seen = Seen::new(2);
    seen.insert([1; 32]);
    seen.insert([2; 32]);
    seen.insert([2; 32]);
    seen.insert([3; 32]);
    assert!(!seen.contains(&[1; 32]));
    assert!(seen.contains(&[2; 32]) && seen.contains(&[3; 32]));
    assert_eq!(seen.order.len(), 2);
}

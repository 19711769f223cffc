//! Webhooks (contract §5.1 signatures, §5.2 payload, §5.3 delivery, §8.8, §8.9).
mod common;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use hubspot_sim::WebhookFaults;
use hubspot_sim::webhooks::{decode_uri_for_v3, signature_v1, signature_v2, signature_v3};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";

#[test]
fn known_answer_vectors() {
    // contract §5.1 v1 vector from the docs.
    let body = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
    assert_eq!(
        signature_v1(SECRET, body.as_bytes()),
        "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    );
    // contract §5.1 v2 vector.
    let b2 = r#"{"example_field":"example_value"}"#;
    assert_eq!(
        signature_v2(
            SECRET,
            "POST",
            "https://www.example.com/webhook_uri",
            b2.as_bytes()
        ),
        "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
    );
    // contract §5.1 v3 vector.
    assert_eq!(
        signature_v3(
            SECRET,
            "POST",
            "https://www.example.com/webhook_uri",
            b2.as_bytes(),
            1_700_000_000_000
        ),
        "rQEKkaNUiu+1qGF//O/pw4BCzstSqO1PyUnGICmf+7o="
    );
}

#[test]
fn v3_decodes_exactly_the_listed_escapes() {
    // contract §5.1: decode %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B; nothing else.
    assert_eq!(
        decode_uri_for_v3("https://h/p%3Aa%2fb?q=%40x%20y%2C%3b%25"),
        "https://h/p:a/b?q=@x%20y,;%25"
    );
}

#[derive(Default)]
struct Received {
    requests: Vec<(HeaderMap, String, String)>,
    fail_first: usize,
}

type Rx = Arc<Mutex<Received>>;

async fn hook(State(rx): State<Rx>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut r = rx.lock().unwrap();
    let n = r.requests.len();
    r.requests.push((
        headers,
        uri.to_string(),
        String::from_utf8_lossy(&body).into_owned(),
    ));
    if n < r.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn receiver(fail_first: usize) -> (String, Rx) {
    let rx: Rx = Arc::new(Mutex::new(Received {
        requests: Vec::new(),
        fail_first,
    }));
    let app = Router::new()
        .route("/hooks/{*rest}", axum::routing::post(hook))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), rx)
}

async fn wait_for(rx: &Rx, n: usize) -> Vec<(HeaderMap, String, String)> {
    for _ in 0..300 {
        if rx.lock().unwrap().requests.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rx.lock().unwrap().requests.clone()
}

async fn sim_with_hook(url: String, faults: WebhookFaults) -> Ctx {
    let mut cfg = config();
    cfg.webhook_url = Some(url);
    cfg.webhook_retry_base_ms = 10;
    cfg.webhook_tick_ms = 5;
    let c = start_with(cfg).await;
    c.sim.admin().set_webhook_faults(faults);
    c
}

#[tokio::test]
async fn delivers_signed_generic_events() {
    let (base, rx) = receiver(0).await;
    // contract §8.8: real percent-encoded callback URLs and query strings.
    let url = format!("{base}/hooks/a%3Ab?tenant=x%40y");
    let c = sim_with_hook(url.clone(), WebhookFaults::default()).await;
    let id = c.create("subscriptions", json!({"hs_name": "s"})).await;
    let got = wait_for(&rx, 1).await;
    assert_eq!(got.len(), 1);
    let (headers, _, body) = &got[0];
    let events: Vec<Value> = serde_json::from_str(body).unwrap();
    // contract §5.2: generic creation + propertyChange(hs_status) events with objectTypeId.
    let creation = events
        .iter()
        .find(|e| e["subscriptionType"] == json!("object.creation"))
        .unwrap();
    assert_eq!(creation["objectId"].as_u64().unwrap().to_string(), id);
    assert_eq!(creation["objectTypeId"], json!("0-69"));
    assert_eq!(creation["attemptNumber"], json!(0));
    let change = events
        .iter()
        .find(|e| e["subscriptionType"] == json!("object.propertyChange"))
        .unwrap();
    assert_eq!(change["propertyName"], json!("hs_status"));
    assert_eq!(change["propertyValue"], json!("active"));
    assert_eq!(change["changeSource"], json!("INTEGRATION"));
    assert!(change["occurredAt"].is_i64());
    // contract §5.1: v1 and v3 headers; the timestamp is integer milliseconds.
    assert_eq!(headers["x-hubspot-signature-version"], "v1");
    assert_eq!(
        headers["x-hubspot-signature"].to_str().unwrap(),
        signature_v1(SECRET, body.as_bytes())
    );
    let ts = headers["x-hubspot-request-timestamp"].to_str().unwrap();
    let ts_ms: i64 = ts.parse().expect("integer ms timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now - ts_ms).abs() < 300_000);
    // Independent v3 check: the URI with the listed escapes decoded.
    let decoded = format!("{base}/hooks/a:b?tenant=x@y");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("POST{decoded}{body}{ts}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(
        headers["x-hubspot-signature-v3"].to_str().unwrap(),
        expected
    );
}

#[tokio::test]
async fn retries_failed_deliveries_with_attempt_numbers() {
    let (base, rx) = receiver(2).await;
    let c = sim_with_hook(format!("{base}/hooks/x"), WebhookFaults::default()).await;
    c.create("subscriptions", json!({"hs_name": "s"})).await;
    // contract §5.3: any non-2xx is retried; attemptNumber counts from 0.
    let got = wait_for(&rx, 3).await;
    assert_eq!(got.len(), 3);
    for (i, (_, _, body)) in got.iter().enumerate() {
        let events: Vec<Value> = serde_json::from_str(body).unwrap();
        assert!(events.iter().all(|e| e["attemptNumber"] == json!(i)));
    }
    let deliveries = c.sim.admin().webhook_deliveries();
    assert_eq!(
        deliveries.iter().filter(|d| d.status == Some(500)).count(),
        2
    );
}

#[tokio::test]
async fn duplicate_and_reorder_faults() {
    let (base, rx) = receiver(0).await;
    let faults = WebhookFaults {
        duplicate: true,
        reorder: true,
        ..WebhookFaults::default()
    };
    let c = sim_with_hook(format!("{base}/hooks/x"), faults).await;
    c.create("subscriptions", json!({"hs_name": "s"})).await;
    let got = wait_for(&rx, 2).await;
    // contract §8.9: duplicates happen, and propertyChange may precede creation.
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].2, got[1].2);
    let events: Vec<Value> = serde_json::from_str(&got[0].2).unwrap();
    assert_eq!(
        events[0]["subscriptionType"],
        json!("object.propertyChange")
    );
    assert_eq!(events[1]["subscriptionType"], json!("object.creation"));
}

#[tokio::test]
async fn stale_timestamp_fault() {
    let (base, rx) = receiver(0).await;
    let faults = WebhookFaults {
        stale_timestamp: true,
        ..WebhookFaults::default()
    };
    let c = sim_with_hook(format!("{base}/hooks/x"), faults).await;
    c.create("subscriptions", json!({"hs_name": "s"})).await;
    let got = wait_for(&rx, 1).await;
    let ts: i64 = got[0].0["x-hubspot-request-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // contract §5.1: older than the 5-minute window receivers enforce.
    assert!(now - ts > 300_000);
}

#[tokio::test]
async fn payment_failure_fires_status_change_events() {
    let (base, rx) = receiver(0).await;
    let c = sim_with_hook(format!("{base}/hooks/x"), WebhookFaults::default()).await;
    let co = c.create("companies", json!({"name": "t"})).await;
    let (s, v) = c
        .post("/crm/objects/2026-09/subscriptions", json!({"properties": {"hs_name": "s"},
            "associations": [{"to": {"id": co}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 297}]}]}))
        .await;
    assert_eq!(s, 201);
    let sub = v["id"].as_str().unwrap().to_string();
    c.patch(
        &format!("/crm/objects/2026-09/subscriptions/{sub}"),
        json!({"properties": {"hs_invoice_creation": "on"}}),
    )
    .await;
    c.sim
        .admin()
        .set_company_payments_failing(co.parse().unwrap(), true);
    c.sim.admin().advance_clock(1000);
    // contract §0: payment failure surfaces as propertyChange on hs_status and hs_latest_status.
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = rx
            .lock()
            .unwrap()
            .requests
            .iter()
            .flat_map(|(_, _, b)| serde_json::from_str::<Vec<Value>>(b).unwrap())
            .collect();
        let has_past_due = seen.iter().any(|e| {
            e["propertyName"] == json!("hs_status") && e["propertyValue"] == json!("past_due")
        });
        let has_failed = seen.iter().any(|e| {
            e["propertyName"] == json!("hs_latest_status") && e["propertyValue"] == json!("failed")
        });
        if has_past_due && has_failed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("events not delivered: {seen:?}");
}

#[tokio::test]
async fn legacy_subscription_type_shape() {
    let (base, rx) = receiver(0).await;
    let c = sim_with_hook(format!("{base}/hooks/x"), WebhookFaults::default()).await;
    c.sim
        .admin()
        .set_webhook_subscriptions(vec![hubspot_sim::config::WebhookSubscription {
            id: 1,
            subscription_type: "deal.propertyChange".into(),
            object_type_id: "0-3".into(),
            property_name: Some("dealstage".into()),
        }]);
    let id = c.create("deals", deal_props("d")).await;
    let got = wait_for(&rx, 1).await;
    let events: Vec<Value> = serde_json::from_str(&got[0].2).unwrap();
    // contract §5.2: legacy `deal.propertyChange` events carry no objectTypeId.
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["subscriptionType"], json!("deal.propertyChange"));
    assert_eq!(events[0]["objectId"].as_u64().unwrap().to_string(), id);
    assert!(events[0].get("objectTypeId").is_none());
}

#[tokio::test]
async fn delay_fault_holds_events() {
    let (base, rx) = receiver(0).await;
    let faults = WebhookFaults {
        delay_ms: 300,
        ..WebhookFaults::default()
    };
    let c = sim_with_hook(format!("{base}/hooks/x"), faults).await;
    c.create("subscriptions", json!({"hs_name": "s"})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.lock().unwrap().requests.is_empty());
    assert_eq!(wait_for(&rx, 1).await.len(), 1);
}

#[tokio::test]
async fn subscription_changes_propagate_after_a_delay() {
    let (base, rx) = receiver(0).await;
    let mut cfg = config();
    cfg.webhook_url = Some(format!("{base}/hooks/x"));
    cfg.webhook_tick_ms = 5;
    // Long enough that "early" is created well inside it even on a loaded machine.
    let settings_delay = Duration::from_millis(1_000);
    cfg.webhook_settings_delay_ms = settings_delay.as_millis() as u64;
    cfg.webhook_subscriptions = Vec::new();
    let c = start_with(cfg).await;
    let settings_changed = tokio::time::Instant::now();
    c.sim
        .admin()
        .set_webhook_subscriptions(hubspot_sim::config::default_webhook_subscriptions());
    // contract §5.3: settings are cached; the new subscription is not active yet.
    c.create("subscriptions", json!({"hs_name": "early"})).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        settings_changed.elapsed() < settings_delay,
        "the machine was too slow to create the event before the settings took effect"
    );
    assert!(rx.lock().unwrap().requests.is_empty());
    // Once the cache has expired, the next change is delivered.
    tokio::time::sleep_until(settings_changed + settings_delay + Duration::from_millis(50)).await;
    c.create("subscriptions", json!({"hs_name": "late"})).await;
    assert_eq!(wait_for(&rx, 1).await.len(), 1);
}

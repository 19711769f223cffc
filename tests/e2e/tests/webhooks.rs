//! HubSpot webhooks end to end, with no drift audit: the simulator delivers signed webhooks
//! to the operator's own HTTP endpoint on 127.0.0.1, the endpoint verifies them and forwards
//! hints, the hint consumer re-reads HubSpot and posts news, and the subscription controller
//! suspends and restores a subscription and its Entitlements on payment failure and recovery.
//! Duplicated and reordered deliveries do not inflate the status history; a forged delivery
//! is refused with 401 and changes nothing.
//! One test: the controllers serve the whole cluster, so only one set runs here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hubspot_sim::WebhookFaults;
use kube::ResourceExt;
use marketplace_e2e::controllers::{self, OperatorWorld};
use marketplace_e2e::eventually;
use marketplace_e2e::subscriptions::{
    CONVERGED, active_subscription, all_entitlements, condition, deliveries_settled, history,
    phase_of,
};
use marketplace_operator::api::EntitlementState;
use marketplace_operator::api::conditions::types::{READY, SYNCED};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::controllers::Enabled;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deliveries the simulator made whose body mentions `needle`, with their HTTP status.
fn deliveries_with(sim: &hubspot_sim::RunningSimulator, needle: &str) -> Vec<Option<u16>> {
    sim.admin()
        .webhook_deliveries()
        .into_iter()
        .filter(|d| d.body.contains(needle))
        .map(|d| d.status)
        .collect()
}

/// One HubSpot `hs_status` change event for a subscription, as HubSpot's body would carry it.
fn event(subscription_id: &str, value: &str, occurred_at_ms: i64) -> String {
    json!([{
        "eventId": 99_999_999u64, "subscriptionId": 7_662_269u64, "portalId": 62515u64,
        "occurredAt": occurred_at_ms, "subscriptionType": "object.propertyChange", "attemptNumber": 0,
        "objectTypeId": "0-69", "objectId": subscription_id.parse::<u64>().expect("numeric id"),
        "propertyName": "hs_status", "propertyValue": value, "changeSource": "CRM_UI",
    }])
    .to_string()
}

/// A minimal HTTP/1.1 POST over a loopback socket (the e2e crate has no HTTP client);
/// returns the response's status code.
async fn post_raw(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read response");
    let response = String::from_utf8_lossy(&response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"))
}

#[tokio::test]
async fn webhooks_alone_suspend_and_restore_a_subscription() {
    let started = std::time::Instant::now();
    // The simulator, and our endpoint it delivers to.
    let world = OperatorWorld::start().await;
    let OperatorWorld {
        client,
        sim,
        client_secret,
        ..
    } = &world;
    // No audit runs in this test: webhooks alone must do it.
    let ctx = world.webhooks_only("e2e-webhooks");
    // As the operator process wires it: the endpoint marks subscriptions, the leader re-reads.
    let endpoint = world.webhook_endpoint(&ctx).await;
    let (addr, public_url) = (endpoint.addr, endpoint.public_url.clone());
    let running = controllers::start(ctx.clone(), Enabled::TENANTS_AND_SUBSCRIPTIONS);

    // 1. A Published Instant listing, a Tenant, and an Active subscription.
    let (subs, entitlements, company, hs_sub_id) = active_subscription(client).await;
    // The creation webhook reached us and was accepted.
    eventually("the creation webhook accepted", CONVERGED, || async {
        (ctx.metrics.webhook_count("accepted") >= 1).then_some(())
    })
    .await;
    deliveries_settled(sim).await;
    assert_eq!(
        history(&subs.get("routes").await.expect("get")),
        vec![Phase::Provisioning, Phase::Active]
    );

    // 2. Payments fail; the next billing cycle makes HubSpot's subscription past_due; only the
    // webhook tells the operator.
    let accepted_before = ctx.metrics.webhook_count("accepted");
    sim.admin().set_company_payments_failing(company, true);
    sim.admin().advance_clock(32 * 24 * 3600 * 1000);
    let suspended = phase_of(&subs, "routes", Phase::Suspended).await;
    assert!(
        condition(&suspended, READY).starts_with("False PaymentFailed"),
        "{}",
        condition(&suspended, READY)
    );
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Suspended).await;
    assert!(ctx.metrics.webhook_count("accepted") > accepted_before);
    assert!(
        deliveries_with(sim, "\"past_due\"").contains(&Some(200)),
        "the past_due webhook was delivered and answered 200"
    );
    // The news came from the webhook's re-read (no audit runs): Synced says what changed in
    // HubSpot, that the cluster followed, and where the news came from; HubSpot is the actor.
    let synced = condition(&suspended, SYNCED);
    assert!(
        synced.starts_with("True Healed")
            && synced.contains("past_due")
            && synced.contains("(webhook at "),
        "{synced}"
    );
    let last = suspended
        .status
        .as_ref()
        .and_then(|s| s.history.last())
        .expect("history");
    assert_eq!(last.actor, "hubspot");

    // 3. Payments recover: the webhook brings it back.
    sim.admin().set_company_payments_failing(company, false);
    phase_of(&subs, "routes", Phase::Active).await;
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Active).await;
    deliveries_settled(sim).await;
    let expected = vec![
        Phase::Provisioning,
        Phase::Active,
        Phase::Suspended,
        Phase::Active,
    ];
    assert_eq!(history(&subs.get("routes").await.expect("get")), expected);

    // 4. Duplicated and reordered deliveries: the next failure and recovery still converge,
    // and each real transition is written once.
    sim.admin().set_webhook_faults(WebhookFaults {
        duplicate: true,
        reorder: true,
        ..WebhookFaults::default()
    });
    let deliveries_before = sim.admin().webhook_deliveries().len();
    sim.admin().set_company_payments_failing(company, true);
    sim.admin().advance_clock(32 * 24 * 3600 * 1000);
    phase_of(&subs, "routes", Phase::Suspended).await;
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Suspended).await;
    sim.admin().set_company_payments_failing(company, false);
    phase_of(&subs, "routes", Phase::Active).await;
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Active).await;
    deliveries_settled(sim).await;
    let faulty: Vec<_> = sim.admin().webhook_deliveries()[deliveries_before..].to_vec();
    let mut bodies: Vec<&str> = faulty.iter().map(|d| d.body.as_str()).collect();
    bodies.sort_unstable();
    let total = bodies.len();
    bodies.dedup();
    assert!(
        bodies.len() < total,
        "the duplicate fault sent some batch twice: {faulty:#?}"
    );
    let after_faults = subs.get("routes").await.expect("get");
    let expected = vec![
        Phase::Provisioning,
        Phase::Active,
        Phase::Suspended,
        Phase::Active,
        Phase::Suspended,
        Phase::Active,
    ];
    assert_eq!(
        history(&after_faults),
        expected,
        "{:#?}",
        after_faults.status
    );
    eprintln!(
        "webhooks: accepted {}, duplicate {}, replayed {}",
        ctx.metrics.webhook_count("accepted"),
        ctx.metrics.webhook_count("duplicate"),
        ctx.metrics.webhook_count("replayed")
    );

    // 5. A forged delivery, claiming the subscription was cancelled: 401, nothing changes.
    sim.admin().set_webhook_faults(WebhookFaults::default());
    let version = after_faults.resource_version();
    let forged_before = ctx.metrics.webhook_count("forged");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_millis() as i64;
    let body = event(&hs_sub_id, "canceled", now_ms);
    let status = post_raw(
        addr,
        "/webhooks/hubspot",
        &[
            ("X-HubSpot-Signature-v3", "Zm9yZ2VkIHNpZ25hdHVyZQ==".into()),
            ("X-HubSpot-Signature-Version", "v3".into()),
            ("X-HubSpot-Request-Timestamp", now_ms.to_string()),
        ],
        &body,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(ctx.metrics.webhook_count("forged"), forged_before + 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unchanged = subs.get("routes").await.expect("get");
    assert_eq!(unchanged.resource_version(), version);
    assert_eq!(history(&unchanged), expected);
    all_entitlements(&entitlements, "routes", 2, EntitlementState::Active).await;

    // The control case: the same kind of request correctly signed (as HubSpot signs it) is
    // accepted; the re-read finds HubSpot in agreement, and Synced names the webhook as source.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_millis() as i64;
    let body = event(&hs_sub_id, "active", now_ms);
    let signature = hubspot_sim::webhooks::signature_v3(
        client_secret,
        "POST",
        &public_url,
        body.as_bytes(),
        now_ms,
    );
    let status = post_raw(
        addr,
        "/webhooks/hubspot",
        &[
            ("X-HubSpot-Signature-v3", signature),
            ("X-HubSpot-Request-Timestamp", now_ms.to_string()),
        ],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    let synced = eventually("Synced to name the webhook", CONVERGED, || async {
        let s = subs.get("routes").await.ok()?;
        let synced = condition(&s, SYNCED);
        (synced.starts_with("True InSync") || synced.starts_with("True Healed"))
            .then_some((s, synced))
    })
    .await;
    assert!(synced.1.contains("(webhook at "), "{}", synced.1);
    assert_eq!(
        synced.0.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Active)
    );
    assert_eq!(history(&synced.0), expected);

    endpoint.stop().await;
    running.stop().await;
    eprintln!("webhooks e2e took {:?}", started.elapsed());
}

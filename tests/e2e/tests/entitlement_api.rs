//! The entitlement API (`marketplace api`) on a real apiserver: callers are real
//! ServiceAccount tokens (TokenRequest), checked by TokenReview and SubjectAccessReview against
//! the RBAC the Tenant reconciler writes. A viewer of tenant A reads A (REST and OFREP, ETags and
//! 304s), never B; an outsider gets 403, no token 401. Then the official OpenFeature OFREP
//! provider for Python (installed by `scripts/install-test-clients`) evaluates flags through it.
//! Meanwhile a paid subscription's payment fails in the HubSpot simulator, whose webhook the
//! operator follows: the time from delivery to OFREP answering `false` and the change stream
//! saying so is measured. One test: the controllers serve the whole cluster, so one set runs.

use std::path::PathBuf;
use std::time::Duration;

use hubspot_sim::RunningSimulator;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use marketplace_e2e::api_process::{api_settings, service_account_token, start_api};
use marketplace_e2e::controllers::OperatorWorld;
use marketplace_e2e::subscriptions::{CONVERGED, all_entitlements, apply, phase_of};
use marketplace_e2e::tenants::{entitlement, in_app_listing, tenant};
use marketplace_e2e::{controllers, eventually, review_count, unique_name, workspace_root};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Entitlement, EntitlementState, Listing, TenantSubscription};
use marketplace_operator::controllers::Enabled;
use reqwest::StatusCode;
use serde_json::{Value, json};

const FEATURES: [&str; 3] = ["route_optimization", "eta_predictions", "gigsafe_checks"];
const PLAN_EXTRA: &str = "fleet_reports";

struct Caller<'a> {
    http: &'a reqwest::Client,
    base: String,
    token: Option<&'a str>,
}

impl Caller<'_> {
    fn auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn get(&self, path: &str, etag: Option<&str>) -> (StatusCode, Option<String>, String) {
        let mut request = self.auth(self.http.get(format!("{}{path}", self.base)));
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        answer(request).await
    }

    async fn ofrep(
        &self,
        path: &str,
        body: Value,
        etag: Option<&str>,
    ) -> (StatusCode, Option<String>, String) {
        let mut request = self
            .auth(
                self.http
                    .post(format!("{}/ofrep/v1/evaluate/flags{path}", self.base)),
            )
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.to_string());
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        answer(request).await
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Option<String>, String) {
    let response = request.send().await.expect("the API answers");
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().expect("ascii etag").to_string());
    (
        response.status(),
        etag,
        response.text().await.expect("body"),
    )
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The API under test and the callers the scenarios share.
struct Fixture<'a> {
    client: Client,
    http: &'a reqwest::Client,
    base: String,
    portal: String,
    viewer: String,
    outsider: String,
}

impl Fixture<'_> {
    fn caller<'t>(&'t self, token: Option<&'t str>) -> Caller<'t> {
        Caller {
            http: self.http,
            base: self.base.clone(),
            token,
        }
    }

    /// A Tenant whose viewer is the portal's service account.
    async fn tenant(&self) -> (String, String) {
        let portal =
            json!([{"kind": "ServiceAccount", "name": "acme-portal", "namespace": self.portal}]);
        tenant(&self.client, "api", json!({"viewers": portal})).await
    }
}

#[tokio::test]
async fn entitlements_are_read_only_by_the_tenants_people_and_changes_reach_checks_and_streams() {
    let started = std::time::Instant::now();
    // HubSpot, the operator's webhook endpoint it delivers to, and the controllers.
    let world = OperatorWorld::start().await;
    let (control_plane, client) = (world.control_plane, world.client.clone());
    let ctx = world.webhooks_only("e2e-entitlement-api");
    let endpoint = world.webhook_endpoint(&ctx).await;
    let running = controllers::start(ctx, Enabled::TENANTS_AND_SUBSCRIPTIONS);

    let portal = control_plane
        .create_namespace("portal")
        .await
        .expect("namespace");
    let viewer = service_account_token(&client, &portal, "acme-portal").await;
    let outsider = service_account_token(&client, &portal, "outsider").await;

    // The API process, with a short review TTL and frequent heartbeats.
    let mut settings = api_settings(Duration::from_secs(2), "marketplace-system");
    settings.streams.heartbeat = Duration::from_secs(1);
    let api = start_api(control_plane, settings).await;
    let http = reqwest::Client::new();
    let fixture = Fixture {
        client: client.clone(),
        http: &http,
        base: api.base.clone(),
        portal,
        viewer,
        outsider,
    };
    eventually("the API is ready", CONVERGED, || async {
        (fixture.caller(None).get("/readyz", None).await.0 == StatusCode::OK).then_some(())
    })
    .await;

    // The propagation scenario prepares its subscription meanwhile, and calls the API only
    // once the reads are done (they count the reviews the apiserver makes).
    let (reads_done, reads_finished) = tokio::sync::oneshot::channel();
    tokio::join!(
        async {
            reads(&fixture).await;
            let _ = reads_done.send(());
        },
        propagation(&fixture, &world.sim, reads_finished),
    );
    eprintln!("entitlement_api: {:?}", started.elapsed());
    drop(api);
    endpoint.stop().await;
    running.stop().await;
}

/// REST and OFREP reads, who may make them, and the official Python provider.
async fn reads(fixture: &Fixture<'_>) {
    let client = &fixture.client;
    let (a, a_ns) = fixture.tenant().await;
    let (b, b_ns) = tenant(client, "api", json!({"viewers": []})).await;
    let listing = unique_name("routes");
    apply(&Api::<Listing>::all(client.clone()), json!({"apiVersion": "marketplace.dev/v1alpha1",
        "kind": "Listing", "metadata": {"name": listing}, "spec": {
            "displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
            "category": "Operations", "lifecycle": "Published", "features": FEATURES,
            "plans": [{"name": "standard", "displayName": "Standard", "extraFeatures": [PLAN_EXTRA],
                "pricing": {"model": "Flat", "amount": "12.00", "currency": "USD", "interval": "Month"}}]}}))
    .await;
    entitlement(client, &a_ns, &a, "route_optimization", "Active").await;
    entitlement(client, &a_ns, &a, "eta_predictions", "Trialing").await;
    entitlement(client, &a_ns, &a, PLAN_EXTRA, "Suspended").await;
    entitlement(client, &b_ns, &b, "gigsafe_checks", "Active").await;
    let as_viewer = fixture.caller(Some(&fixture.viewer));
    let as_outsider = fixture.caller(Some(&fixture.outsider));
    let anonymous = fixture.caller(None);
    let forged = fixture.caller(Some("not-a-token"));
    let list_a = format!("/v1/tenants/{a}/entitlements");
    let (_, etag, body) = eventually(
        "the viewer reads tenant A's three features",
        CONVERGED,
        || async {
            let (status, etag, body) = as_viewer.get(&list_a, None).await;
            (status == StatusCode::OK && json_of(&body)["entitlements"].as_array()?.len() == 3)
                .then_some((status, etag, body))
        },
    )
    .await;
    let features: Vec<Value> = json_of(&body)["entitlements"]
        .as_array()
        .expect("list")
        .clone();
    assert_eq!(features[0]["feature"], "eta_predictions");
    assert_eq!(features[0]["state"], "Trialing");
    assert_eq!(features[0]["sourceSubscription"], "route-optimization");
    let etag = etag.expect("a strong ETag");
    assert!(!etag.starts_with("W/"), "{etag}");
    assert_eq!(
        as_viewer.get(&list_a, Some(&etag)).await.0,
        StatusCode::NOT_MODIFIED
    );

    // Once a caller is known, reads cost the apiserver nothing: at most one refresh of each
    // review if the TTL runs out during the burst.
    let before = review_count(client).await;
    assert!(before > 0, "the apiserver counted the reviews made so far");
    for _ in 0..20 {
        assert_eq!(as_viewer.get(&list_a, None).await.0, StatusCode::OK);
        let context = json!({"context": {"targetingKey": a}});
        assert_eq!(
            as_viewer
                .ofrep("/route_optimization", context, None)
                .await
                .0,
            StatusCode::OK
        );
    }
    let reviews = review_count(client).await - before;
    assert!(reviews <= 2, "40 reads made {reviews} reviews");

    // Who may read: no token and forged tokens 401, an outsider 403, A's viewer not B.
    assert_eq!(
        anonymous.get(&list_a, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(forged.get(&list_a, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        as_outsider.get(&list_a, None).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _, body) = as_viewer
        .get(&format!("/v1/tenants/{b}/entitlements"), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        !body.contains("gigsafe") && !body.contains(&b),
        "a refusal reveals nothing: {body}"
    );

    // One feature: enabled only when Active or Trialing; known but lacking → false; unknown → 404.
    for (feature, enabled, reason) in [
        ("route_optimization", true, "Entitled"),
        ("eta_predictions", true, "Trialing"),
        (PLAN_EXTRA, false, "Suspended"),
        ("gigsafe_checks", false, "NotEntitled"),
    ] {
        let (status, _, body) = as_viewer.get(&format!("{list_a}/{feature}"), None).await;
        assert_eq!(status, StatusCode::OK, "{feature}: {body}");
        let check = json_of(&body);
        assert_eq!(
            (
                check["feature"].as_str(),
                check["enabled"].as_bool(),
                check["reason"].as_str()
            ),
            (Some(feature), Some(enabled), Some(reason)),
            "{body}"
        );
    }
    assert_eq!(
        as_viewer
            .get(&format!("{list_a}/no_such_feature"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // OFREP, single flags.
    let context_a = json!({"context": {"targetingKey": a}});
    let (status, _, body) = as_viewer
        .ofrep("/route_optimization", context_a.clone(), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let flag = json_of(&body);
    assert_eq!(
        (flag["value"].clone(), flag["variant"].clone()),
        (json!(true), json!("on"))
    );
    let flag = json_of(
        &as_viewer
            .ofrep("/gigsafe_checks", json!({"context": {"tenant": a}}), None)
            .await
            .2,
    );
    assert_eq!(
        (
            flag["value"].clone(),
            flag["variant"].clone(),
            flag["reason"].clone()
        ),
        (json!(false), json!("off"), json!("DISABLED"))
    );
    let (status, _, body) = as_viewer
        .ofrep("/no_such_feature", context_a.clone(), None)
        .await;
    assert_eq!(
        (status, json_of(&body)["errorCode"].clone()),
        (StatusCode::NOT_FOUND, json!("FLAG_NOT_FOUND"))
    );
    assert!(json_of(&body)["errorDetails"].is_string());
    let (status, _, body) = as_viewer
        .ofrep("/route_optimization", json!({"context": {}}), None)
        .await;
    assert_eq!(
        (status, json_of(&body)["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("TARGETING_KEY_MISSING"))
    );
    let (status, _, body) = as_viewer
        .ofrep(
            "/gigsafe_checks",
            json!({"context": {"targetingKey": b}}),
            None,
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::FORBIDDEN, ""),
        "403 has no body"
    );
    let (status, _, body) = anonymous
        .ofrep("/route_optimization", context_a.clone(), None)
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, ""),
        "401 has no body"
    );

    // OFREP bulk: the ETag follows the context and the data.
    let (status, bulk_etag, body) = as_viewer.ofrep("", context_a.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(json_of(&body)["flags"].as_array().expect("flags").len() >= 4);
    let bulk_etag = bulk_etag.expect("bulk ETag");
    assert_eq!(
        as_viewer
            .ofrep("", context_a.clone(), Some(&bulk_etag))
            .await
            .0,
        StatusCode::NOT_MODIFIED
    );
    let other_context = json!({"context": {"targetingKey": a, "user": "ann"}});
    let (status, other_etag, _) = as_viewer.ofrep("", other_context, Some(&bulk_etag)).await;
    assert_eq!(status, StatusCode::OK, "another context is another answer");
    assert_ne!(other_etag.as_deref(), Some(bulk_etag.as_str()));
    Api::<Entitlement>::namespaced(client.clone(), &a_ns)
        .patch(
            "route-optimization",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"state": "Revoked"}})),
        )
        .await
        .expect("revoke");
    eventually(
        "the bulk answer changes with the data",
        CONVERGED,
        || async {
            let (status, _, body) = as_viewer
                .ofrep("", context_a.clone(), Some(&bulk_etag))
                .await;
            (status == StatusCode::OK).then_some(body)
        },
    )
    .await;
    entitlement(client, &a_ns, &a, "route_optimization", "Active").await;
    eventually("route_optimization is on again", CONVERGED, || async {
        let body = as_viewer
            .ofrep("/route_optimization", context_a.clone(), None)
            .await
            .2;
        (json_of(&body)["value"] == json!(true)).then_some(())
    })
    .await;

    python_provider(&format!("{}/", fixture.base), &fixture.viewer, &a).await;
}

/// An event of a change stream, as a client parses it (a heartbeat is a comment).
#[derive(Debug)]
struct StreamEvent {
    id: String,
    name: String,
    data: String,
    comment: bool,
}

/// A change stream, read as a browser's EventSource reads it: blocks split at blank lines.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(fixture: &Fixture<'_>, path: &str, last_event_id: Option<&str>) -> EventStream {
        let mut request = fixture
            .http
            .get(format!("{}{path}", fixture.base))
            .bearer_auth(&fixture.viewer);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the API answers");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        EventStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event or heartbeat.
    async fn next(&mut self) -> StreamEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = StreamEvent {
                    id: String::new(),
                    name: String::new(),
                    data: String::new(),
                    comment: false,
                };
                for line in block.lines() {
                    match line.split_once(':') {
                        Some(("", _)) => event.comment = true,
                        Some(("id", v)) => event.id = v.trim().to_string(),
                        Some(("event", v)) => event.name = v.trim().to_string(),
                        Some(("data", v)) => event.data.push_str(v.trim()),
                        _ => {}
                    }
                }
                return event;
            }
            let chunk = tokio::time::timeout(CONVERGED, self.response.chunk())
                .await
                .expect("the stream moves")
                .expect("the stream reads")
                .expect("the stream goes on");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// The next event that is not a heartbeat.
    async fn next_event(&mut self) -> StreamEvent {
        loop {
            let event = self.next().await;
            if !event.comment {
                return event;
            }
        }
    }
}

const ALERTS: [&str; 2] = ["dispatch_alerts", "driver_chat"];

/// A paid subscription's payment fails in HubSpot; only the webhook tells the operator. From
/// the delivery to OFREP answering `false`, and to the open stream saying `enabled: false`.
async fn propagation(
    fixture: &Fixture<'_>,
    sim: &RunningSimulator,
    reads_finished: tokio::sync::oneshot::Receiver<()>,
) {
    let client = &fixture.client;
    let (tenant, namespace) = fixture.tenant().await;
    let listing = in_app_listing(client, "alerts", &ALERTS).await;
    let subs: Api<TenantSubscription> = Api::namespaced(client.clone(), &namespace);
    apply(
        &subs,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
            "metadata": {"name": "alerts", "namespace": namespace},
            "spec": {"listing": listing, "plan": "standard"}}),
    )
    .await;
    let active = phase_of(&subs, "alerts", Phase::Active).await;
    let entitlements: Api<Entitlement> = Api::namespaced(client.clone(), &namespace);
    all_entitlements(&entitlements, "alerts", 2, EntitlementState::Active).await;
    let company: u64 = active
        .status
        .and_then(|s| s.hubspot)
        .and_then(|ids| ids.company_id)
        .and_then(|id| id.parse().ok())
        .expect("the HubSpot company id");
    let _ = reads_finished.await;

    // The stream: refused before it starts, then a snapshot, then heartbeats.
    let path = format!("/v1/tenants/{tenant}/entitlements/stream");
    assert_eq!(
        fixture.caller(None).get(&path, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let outsider = fixture.caller(Some(&fixture.outsider));
    assert_eq!(outsider.get(&path, None).await.0, StatusCode::FORBIDDEN);
    let mut stream = EventStream::open(fixture, &path, None).await;
    let snapshot = stream.next_event().await;
    assert_eq!(snapshot.name, "snapshot", "{snapshot:?}");
    let enabled: Vec<(Value, Value)> = json_of(&snapshot.data)["entitlements"]
        .as_array()
        .expect("entitlements")
        .iter()
        .map(|c| (c["feature"].clone(), c["enabled"].clone()))
        .collect();
    assert_eq!(
        enabled,
        [
            (json!(ALERTS[0]), json!(true)),
            (json!(ALERTS[1]), json!(true))
        ]
    );
    assert!(stream.next().await.comment, "a heartbeat within the second");
    let as_viewer = fixture.caller(Some(&fixture.viewer));
    let context = json!({"context": {"targetingKey": tenant}});
    let flag = format!("/{}", ALERTS[0]);
    let on = json_of(&as_viewer.ofrep(&flag, context.clone(), None).await.2);
    assert_eq!(on["value"], json!(true), "{on}");

    // Payments fail; the next billing cycle makes the HubSpot subscription past_due.
    let deliveries_before = sim.admin().webhook_deliveries().len();
    sim.admin().set_company_payments_failing(company, true);
    sim.admin().advance_clock(32 * 24 * 3600 * 1000);
    let ofrep_off = async {
        loop {
            let body = as_viewer.ofrep(&flag, context.clone(), None).await.2;
            if json_of(&body)["value"] == json!(false) {
                return wall_ms();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let stream_off = async {
        loop {
            let event = stream.next_event().await;
            let check = json_of(&event.data);
            if event.name == "entitlement"
                && check["feature"] == json!(ALERTS[0])
                && check["enabled"] == json!(false)
            {
                assert_eq!(check["reason"], json!("Suspended"), "{check}");
                return wall_ms();
            }
        }
    };
    let (ofrep_off, stream_off) =
        tokio::time::timeout(CONVERGED, async { tokio::join!(ofrep_off, stream_off) })
            .await
            .expect("the payment failure reaches OFREP and the stream");
    let delivered = eventually("the past_due webhook accepted", CONVERGED, || async {
        sim.admin().webhook_deliveries()[deliveries_before..]
            .iter()
            .filter(|d| d.body.contains("\"past_due\"") && d.status == Some(200))
            .map(|d| d.timestamp_ms)
            .min()
    })
    .await;
    let (to_ofrep, to_stream) = (ofrep_off - delivered, stream_off - delivered);
    eprintln!(
        "propagation: webhook delivered → OFREP false in {to_ofrep} ms, → the stream said so in {to_stream} ms"
    );
    assert!(
        to_ofrep.max(to_stream) < 5_000,
        "a payment failure took {to_ofrep} ms to OFREP and {to_stream} ms to the stream"
    );

    // Back with the snapshot's id: the changes since, each feature once, not a snapshot.
    drop(stream);
    let mut resumed = EventStream::open(fixture, &path, Some(&snapshot.id)).await;
    let mut changed = Vec::new();
    for _ in ALERTS {
        let event = resumed.next_event().await;
        assert_eq!(event.name, "entitlement", "{event:?}");
        let check = json_of(&event.data);
        changed.push((check["feature"].clone(), check["enabled"].clone()));
    }
    changed.sort_by_key(|(feature, _)| feature.to_string());
    assert_eq!(
        changed,
        [
            (json!(ALERTS[0]), json!(false)),
            (json!(ALERTS[1]), json!(false))
        ]
    );
}

fn wall_ms() -> i64 {
    hubspot_sim::clock::wall_ms()
}

/// The official Python OFREP provider as the client: on, off (DISABLED) and the caller's
/// default on FLAG_NOT_FOUND. Skips loudly, with pip's reason, when the client cannot be installed.
async fn python_provider(base: &str, token: &str, tenant: &str) {
    let root = workspace_root();
    let install = std::process::Command::new(root.join("scripts/install-test-clients"))
        .output()
        .expect("scripts/install-test-clients runs");
    if !install.status.success() {
        eprintln!(
            "SKIPPED: the OpenFeature OFREP provider for Python could not be installed, so the \
             official-client check did not run:\n{}",
            String::from_utf8_lossy(&install.stderr)
        );
        return;
    }
    let python = std::process::Command::new(root.join("scripts/install-test-clients"))
        .arg("--print-python")
        .output()
        .expect("print python");
    let python = PathBuf::from(String::from_utf8(python.stdout).expect("utf-8").trim());
    let script = r#"
import json, sys
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.contrib.provider.ofrep import OFREPProvider
base, token, tenant = sys.argv[1:4]
api.set_provider(OFREPProvider(base, headers_factory=lambda: {"Authorization": "Bearer " + token}))
client = api.get_client()
context = EvaluationContext(targeting_key=tenant)
out = {}
for flag, default in [("route_optimization", False), ("gigsafe_checks", True), ("no_such_feature", True)]:
    d = client.get_boolean_details(flag, default, context)
    out[flag] = {"value": d.value, "variant": d.variant,
                 "error": d.error_code.value if d.error_code else None}
print(json.dumps(out))
"#;
    let output = tokio::process::Command::new(python)
        .args(["-c", script, base, token, tenant])
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = json_of(&stdout);
    assert_eq!(out["route_optimization"]["value"], json!(true), "{stdout}");
    assert_eq!(
        out["route_optimization"]["variant"],
        json!("on"),
        "{stdout}"
    );
    assert_eq!(out["gigsafe_checks"]["value"], json!(false), "{stdout}");
    assert_eq!(
        out["no_such_feature"]["value"],
        json!(true),
        "the default on 404: {stdout}"
    );
    assert_eq!(
        out["no_such_feature"]["error"],
        json!("FLAG_NOT_FOUND"),
        "{stdout}"
    );
}

//! Prepaid credits end to end: a real apiserver with the operator's controllers, the API
//! process with an embedded usage store, and the HubSpot simulator. A superadmin grants credits
//! over the API (a retried grant grants once); usage is posted; at the month's end (each round
//! given its time) the usage bill is paid from the grant that is not expired and only the
//! remainder is billed, the line item showing the credit as its discount, once across retries
//! and a restart; the tenant sees the deduction and the expired grant. The balance falling
//! below the tenant's threshold sends one CreditBalanceLow webhook, and an automatic top-up
//! makes one HubSpot charge and one grant even when an earlier attempt made the charge and
//! died before granting. One test: the controllers serve the whole cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hubspot_sim::{ObjectType, RunningSimulator, SimConfig, Simulator};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use marketplace_e2e::api_process::{RunningApi, api_settings, service_account_token, start_api};
use marketplace_e2e::controllers::{self, context};
use marketplace_e2e::storefront_world::grant_superadmin;
use marketplace_e2e::subscriptions::{CONVERGED, apply, hubspot_client, phase_of};
use marketplace_e2e::tenants::tenant;
use marketplace_e2e::{control_plane, eventually, unique_name};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Listing, NotificationChannel, TenantSubscription};
use marketplace_operator::billing::{CHARGE_KEY, CREDITS_APPLIED, ChargeRequest, USAGE_PERIOD_KEY};
use marketplace_operator::controllers::credit_balance::check_balances;
use marketplace_operator::controllers::usage_report::{UsageReportSettings, report_due};
use marketplace_operator::controllers::{Context, ControllerConfig, Enabled};
use marketplace_operator::front_door::api_keys::secrets::create_api_key;
use marketplace_operator::metering::{AnyUsageStore, UsagePeriod, UsageStoreLocation};
use marketplace_operator::notify::NotifyConfig;
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct World {
    client: Client,
    sim: RunningSimulator,
    namespace: String,
    listing: String,
    meter: String,
    api: RunningApi,
    superadmin: String,
    location: UsageStoreLocation,
    http: reqwest::Client,
}

/// A tenant with a metered subscription and a backend key.
struct Subscriber {
    name: String,
    key: String,
    subscription: TenantSubscription,
}

impl World {
    async fn subscriber(&self, base: &str, credits: Value) -> Subscriber {
        let (name, namespace) = tenant(&self.client, base, json!({"credits": credits})).await;
        let subs: Api<TenantSubscription> = Api::namespaced(self.client.clone(), &namespace);
        apply(
            &subs,
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
                "metadata": {"name": "pages", "namespace": namespace},
                "spec": {"listing": self.listing, "plan": "starter"}}),
        )
        .await;
        let subscription = phase_of(&subs, "pages", Phase::Active).await;
        let key = create_api_key(
            &self.client,
            &name,
            "billing server",
            None,
            Timestamp::now(),
        )
        .await
        .expect("a key")
        .key;
        let subscriber = Subscriber {
            name,
            key,
            subscription,
        };
        // The API's caches hold the subscription once its meter shows.
        eventually("the API knows the subscription", CONVERGED, || async {
            let view = self.tenant_get(&subscriber, "usage").await;
            (view["meters"].as_array()?.len() == 1).then_some(())
        })
        .await;
        subscriber
    }

    async fn tenant_get(&self, s: &Subscriber, what: &str) -> Value {
        self.http
            .get(format!("{}/v1/tenants/{}/{what}", self.api.base, s.name))
            .header("X-API-Key", &s.key)
            .send()
            .await
            .expect("the API answers")
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// A superadmin's grant: the status and the body.
    async fn grant(&self, tenant: &str, key: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!(
                "{}/v1/admin/tenants/{tenant}/credits",
                self.api.base
            ))
            .bearer_auth(&self.superadmin)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .expect("the API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post_usage(&self, s: &Subscriber, count: usize) {
        let events: Vec<Value> = (0..count)
            .map(|i| {
                json!({"specversion": "1.0", "id": format!("e{i}"), "source": "/pages",
                       "type": self.meter, "time": Timestamp::now().to_string(), "data": {}})
            })
            .collect();
        let response = self
            .http
            .post(format!("{}/v1/usage", self.api.base))
            .header("X-API-Key", &s.key)
            .header("Content-Type", "application/cloudevents-batch+json")
            .body(Value::from(events).to_string())
            .send()
            .await
            .expect("the API answers");
        assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    }

    /// The properties of the line items on `deal` whose `key` property is set.
    fn line_items(&self, deal: &str, key: &str) -> Vec<Value> {
        let deal: u64 = deal.parse().expect("numeric deal id");
        let admin = self.sim.admin();
        let ids = admin.associated(ObjectType::Deals, deal, ObjectType::LineItems);
        admin
            .objects(ObjectType::LineItems)
            .into_iter()
            .filter(|li| {
                let id: u64 = li["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                ids.contains(&id) && li["properties"][key].is_string()
            })
            .map(|li| li["properties"].clone())
            .collect()
    }

    /// The deals of charges to `tenant`.
    fn charges(&self, tenant: &str) -> Vec<String> {
        self.sim
            .admin()
            .objects(ObjectType::Deals)
            .into_iter()
            .filter(|d| {
                d["properties"][CHARGE_KEY]
                    .as_str()
                    .is_some_and(|k| k.starts_with(&format!("{tenant}/")))
            })
            .filter_map(|d| d["id"].as_str().map(str::to_string))
            .collect()
    }

    /// An operator context (a restart when fresh) billing and reading the store.
    async fn operator(&self, instance: &str) -> Arc<Context> {
        let store = AnyUsageStore::open(&self.location)
            .await
            .expect("usage store");
        let ctx = context(&self.client, self.config(), instance)
            .with_billing(hubspot_client(&self.sim).await)
            .with_usage_store(Arc::new(store));
        ctx.stores.wait_until_ready().await;
        Arc::new(ctx)
    }

    fn config(&self) -> ControllerConfig {
        ControllerConfig {
            namespace: self.namespace.clone(),
            audit_interval: Duration::from_secs(3600),
            usage_report: UsageReportSettings {
                interval: Duration::from_secs(3600),
                settle: SignedDuration::from_secs(60),
            },
            ..ControllerConfig::default()
        }
    }
}

fn deal_of(s: &Subscriber) -> String {
    s.subscription
        .status
        .as_ref()
        .and_then(|st| st.hubspot.as_ref())
        .and_then(|h| h.deal_id.clone())
        .expect("a deal")
}

fn store_of(ctx: &Context) -> &AnyUsageStore {
    ctx.usage_store.as_ref().expect("store")
}

/// A loopback webhook receiver: the bodies it was sent.
async fn receiver() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                kept.lock().expect("lock").push(value);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, received)
}

fn alerts(received: &Mutex<Vec<Value>>, tenant_display: &str) -> usize {
    received
        .lock()
        .expect("lock")
        .iter()
        .filter(|b| b["type"] == "marketplace.CreditBalanceLow")
        .filter(|b| b["data"]["facts"]["tenant"] == tenant_display)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credits_pay_usage_first_once_alert_once_and_top_up_once() {
    let control_plane = control_plane().await;
    let client = control_plane.client().await.expect("client");
    let namespace = control_plane
        .create_namespace("marketplace")
        .await
        .expect("operator namespace");
    let sim = Simulator::start(SimConfig {
        search_lag_ms: 0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let listing = unique_name("pages");
    let meter = format!("e2e.{}", listing.replace('-', "_"));
    apply(&Api::<Listing>::all(client.clone()), json!({"apiVersion": "marketplace.dev/v1alpha1",
        "kind": "Listing", "metadata": {"name": listing}, "spec": {
            "displayName": "Document Pages", "tagline": "Read documents", "type": "InApp",
            "category": "AI", "lifecycle": "Published", "features": ["pages_report"],
            "plans": [{"name": "starter", "displayName": "Starter",
                "pricing": {"model": "Flat", "amount": "9.00", "currency": "USD", "interval": "Month"},
                "metered": {"meter": meter, "unit": "page", "unitPrice": "1.00",
                            "includedQuantity": 2}}]}}))
    .await;
    // Credit alerts to superadmins' webhook.
    let (port, received) = receiver().await;
    apply(
        &Api::<Secret>::namespaced(client.clone(), &namespace),
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "credit-hook", "namespace": namespace},
            "stringData": {"secret": SECRET}}),
    )
    .await;
    apply(
        &Api::<NotificationChannel>::namespaced(client.clone(), &namespace),
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "NotificationChannel",
            "metadata": {"name": "credit-alerts", "namespace": namespace},
            "spec": {"audience": "Superadmins", "events": ["CreditBalanceLow"],
                "webhook": {"url": format!("http://127.0.0.1:{port}/hook"),
                            "signingSecretRef": {"name": "credit-hook"}}}}),
    )
    .await;
    let people = control_plane
        .create_namespace("people")
        .await
        .expect("namespace");
    let superadmin = service_account_token(&client, &people, "superadmin").await;
    grant_superadmin(&client, &namespace, &people, "superadmin").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let location = UsageStoreLocation::Sqlite(dir.path().join("usage.sqlite"));
    let mut settings = api_settings(Duration::from_secs(2), &namespace);
    settings.usage_store = Some(location.clone());
    let api = start_api(control_plane, settings).await;
    let world = World {
        client: client.clone(),
        sim,
        namespace: namespace.clone(),
        listing,
        meter,
        api,
        superadmin,
        location,
        http: reqwest::Client::new(),
    };
    // The controllers that make tenants, bill subscriptions and deliver notifications; periods
    // and balances are acted on by the test, which gives each round its time.
    let store = AnyUsageStore::open(&world.location)
        .await
        .expect("usage store");
    let ctx = Arc::new(
        context(&client, world.config(), "e2e-credits")
            .with_billing(hubspot_client(&world.sim).await)
            .with_notifications(NotifyConfig::default())
            .with_usage_store(Arc::new(store)),
    );
    let running = controllers::start(
        ctx.clone(),
        Enabled {
            tenants: true,
            subscriptions: true,
            notifications: true,
            ..Enabled::NONE
        },
    );
    let period = UsagePeriod::containing(Timestamp::now());
    let month_end = period.end() + SignedDuration::from_mins(2);

    // ---- credits pay first; an expired grant never ----
    let paying = world
        .subscriber(
            "credits",
            json!({"currency": "USD", "lowBalanceThreshold": "5"}),
        )
        .await;
    let a_year = (Timestamp::now() + SignedDuration::from_hours(24 * 365)).to_string();
    let grant = json!({"amount": "10.00", "currency": "USD", "expiresAt": a_year,
                       "reason": "welcome"});
    let (status, view) = world.grant(&paying.name, "welcome", grant.clone()).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(
        view["balances"],
        json!([{"currency": "USD", "available": "10"}])
    );
    // Retried: granted once. The same key for another grant, or a bad amount: refused.
    let (status, view) = world.grant(&paying.name, "welcome", grant.clone()).await;
    assert_eq!(
        (status, view["grants"].as_array().map(Vec::len)),
        (201, Some(1))
    );
    let mut other = grant.clone();
    other["amount"] = json!("11");
    let (status, view) = world.grant(&paying.name, "welcome", other).await;
    assert_eq!(
        (status, view["code"].clone()),
        (422, json!("IdempotencyKeyReused"))
    );
    let mut bad = grant.clone();
    bad["amount"] = json!("-3");
    let (status, view) = world.grant(&paying.name, "bad", bad).await;
    assert_eq!(
        (status, view["field"].clone()),
        (422, json!("amount")),
        "{view}"
    );
    // A backend key is no superadmin.
    let refused = world
        .http
        .post(format!(
            "{}/v1/admin/tenants/{}/credits",
            world.api.base, paying.name
        ))
        .header("X-API-Key", &paying.key)
        .json(&grant)
        .send()
        .await
        .expect("the API answers");
    assert_eq!(refused.status(), 403);
    // A bigger grant that expires in seconds: gone by the period's end.
    let soon = (Timestamp::now() + SignedDuration::from_secs(3)).to_string();
    let (status, _) = world
        .grant(
            &paying.name,
            "bonus",
            json!({"amount": "100", "currency": "USD", "expiresAt": soon}),
        )
        .await;
    assert_eq!(status, 201);

    // 14 pages, 2 included: 12 USD, 10 paid by credits, 2 billed.
    world.post_usage(&paying, 14).await;
    let round = report_due(&ctx, store_of(&ctx), month_end).await;
    assert!(round.failures.is_empty(), "{round:?}");
    let uid = paying.subscription.metadata.uid.clone().expect("uid");
    let lines = world.line_items(&deal_of(&paying), USAGE_PERIOD_KEY);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line[USAGE_PERIOD_KEY], format!("{uid}/{period}"));
    // 10 over 12 units is no exact per-unit discount: one unit at 12, 10 off.
    assert_eq!(
        (
            &line["quantity"],
            &line["price"],
            &line["discount"],
            &line[CREDITS_APPLIED]
        ),
        (&json!("1"), &json!("12"), &json!("10"), &json!("10")),
        "{line}"
    );
    // Again, and after a restart: nothing more billed or deducted.
    assert!(
        report_due(&ctx, store_of(&ctx), month_end)
            .await
            .reported
            .is_empty()
    );
    let restarted = world.operator("e2e-credits-2").await;
    let later = month_end + SignedDuration::from_hours(2);
    assert!(
        report_due(&restarted, store_of(&restarted), later)
            .await
            .reported
            .is_empty()
    );
    assert_eq!(
        world.line_items(&deal_of(&paying), USAGE_PERIOD_KEY).len(),
        1
    );

    // The tenant sees the deduction, the spent grant and the expired one.
    let wait = Timestamp::now().duration_until(soon.parse().expect("time"));
    if wait.is_positive() {
        tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    }
    let credits = world.tenant_get(&paying, "credits").await;
    assert_eq!(
        credits["balances"],
        json!([{"currency": "USD", "available": "0"}]),
        "{credits}"
    );
    let deductions = credits["deductions"].as_array().expect("deductions");
    assert_eq!(deductions.len(), 1, "{credits}");
    assert_eq!(
        (&deductions[0]["grantId"], &deductions[0]["amount"]),
        (&json!("welcome"), &json!("10"))
    );
    let bonus = credits["grants"]
        .as_array()
        .expect("grants")
        .iter()
        .find(|g| g["id"] == "bonus")
        .expect("the bonus grant")
        .clone();
    assert_eq!(
        (&bonus["expired"], &bonus["remaining"]),
        (&json!(true), &json!("100"))
    );
    assert!(credits["grants"][0].get("grantedBy").is_none(), "{credits}");
    let usage = world.tenant_get(&paying, "usage").await;
    assert_eq!(usage["credits"], credits["balances"]);

    // ---- the balance fell below 5: one alert, however often it is looked at ----
    let first = check_balances(&ctx, store_of(&ctx), month_end).await;
    assert_eq!(first.alerts.len(), 1, "{first:?}");
    // Looked at again (later in the episode, and after a restart): the same outbox record.
    check_balances(&ctx, store_of(&ctx), later).await;
    check_balances(&restarted, store_of(&restarted), later).await;
    eventually("the CreditBalanceLow webhook", CONVERGED, || async {
        (alerts(&received, "Acme Logistics") >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(alerts(&received, "Acme Logistics"), 1);

    // ---- automatic top-up: one charge and one grant, across a crash and a restart ----
    let buying = world
        .subscriber(
            "topup",
            json!({"currency": "USD",
                   "autoTopUp": {"threshold": "5", "amount": "20", "validDays": 30}}),
        )
        .await;
    let (status, _) = world
        .grant(
            &buying.name,
            "start",
            json!({"amount": "8", "currency": "USD", "expiresAt": a_year}),
        )
        .await;
    assert_eq!(status, 201);
    // 7 pages: 5 USD from credits, 3 left, below 5.
    world.post_usage(&buying, 7).await;
    let round = report_due(&ctx, store_of(&ctx), month_end).await;
    assert!(round.failures.is_empty(), "{round:?}");
    // An earlier attempt made the charge and died before granting (the episode began at the
    // settlement, at the round's time).
    let key = format!("{}/topup-USD-{}", buying.name, month_end.as_millisecond());
    let made = hubspot_client(&world.sim)
        .await
        .ensure_charge(&ChargeRequest {
            key: key.clone(),
            tenant_id: buying.name.clone(),
            tenant_name: "Acme Logistics".into(),
            name: "made before a crash".into(),
            description: String::new(),
            amount: "20".into(),
            currency: "USD".into(),
        })
        .await
        .expect("charge");
    let restarted = world.operator("e2e-credits-3").await;
    let topped = check_balances(&restarted, store_of(&restarted), later).await;
    assert!(topped.failures.is_empty(), "{topped:?}");
    assert_eq!(topped.top_ups.len(), 1, "{topped:?}");
    assert!(
        topped.top_ups[0].reason.contains(&made.line_item_id),
        "{topped:?}"
    );
    // Again, and on the first context: nothing more.
    let again = check_balances(&ctx, store_of(&ctx), later + SignedDuration::from_hours(1)).await;
    assert!(again.top_ups.is_empty(), "{again:?}");
    let deals = world.charges(&buying.name);
    assert_eq!(deals.len(), 1, "{deals:?}");
    assert_eq!(deals[0], made.deal_id);
    let charge_lines = world.line_items(&made.deal_id, CHARGE_KEY);
    assert_eq!(charge_lines.len(), 1, "{charge_lines:?}");
    assert_eq!(
        (&charge_lines[0]["price"], &charge_lines[0][CHARGE_KEY]),
        (&json!("20"), &json!(key))
    );
    let credits = world.tenant_get(&buying, "credits").await;
    assert_eq!(
        credits["balances"],
        json!([{"currency": "USD", "available": "23"}]),
        "{credits}"
    );
    assert!(world.charges(&paying.name).is_empty());
    running.stop().await;
}

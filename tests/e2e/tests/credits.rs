//! Prepaid credits end to end, with each usage store: a real apiserver with the operator's
//! controllers, the API process with the store, and the HubSpot simulator. A superadmin grants
//! credits over the API (a retried grant grants once); usage is posted; at the month's end (each
//! round given its time) the usage bill is paid from the grant that is not expired and only the
//! remainder is billed, the line item showing the credit as its discount, once across retries
//! and a restart; the tenant sees the deduction and the expired grant. The balance falling
//! below the tenant's threshold sends one CreditBalanceLow webhook, and an automatic top-up
//! makes one HubSpot charge and one grant even when an earlier attempt made the charge and
//! died before granting. One test: the controllers serve the whole cluster, so one set runs
//! here; the two stores' scenarios run at once, each with its own API, store and tenants.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use marketplace_e2e::api_process::{
    Caller, RunningApi, api_settings, service_account_token, start_api,
};
use marketplace_e2e::controllers::{self, OperatorWorld};
use marketplace_e2e::eventually;
use marketplace_e2e::metered::{
    MeteredListing, Subscriber, event_ids, keyed_line_items, metered_listing, reported_by_hand,
    reporting_operator,
};
use marketplace_e2e::storefront_world::grant_superadmin;
use marketplace_e2e::subscriptions::{CONVERGED, apply};
use marketplace_harness::postgres::Postgres;
use marketplace_operator::api::NotificationChannel;
use marketplace_operator::billing::{CHARGE_KEY, CREDITS_APPLIED, ChargeRequest, USAGE_PERIOD_KEY};
use marketplace_operator::controllers::credit_balance::check_balances;
use marketplace_operator::controllers::usage_report::{ReportRound, report_due};
use marketplace_operator::controllers::{Context, Enabled};
use marketplace_operator::metering::{AnyUsageStore, UsagePeriod, UsageStoreLocation};
use marketplace_operator::notify::NotifyConfig;
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What both stores' scenarios share.
struct Credits {
    world: OperatorWorld,
    /// The running controllers' context (billing, notifications); the scenarios run their
    /// rounds on it, each with its own store.
    ctx: Arc<Context>,
    listing: MeteredListing,
    superadmin: String,
    /// The bodies the credit alerts' webhook received.
    received: Arc<Mutex<Vec<Value>>>,
}

/// One store's scenario: its API and store, and its tenants' display name.
struct Scenario<'a> {
    credits: &'a Credits,
    /// `sqlite` or `postgres`: part of its tenants' and operators' names.
    name: &'a str,
    display: String,
    location: UsageStoreLocation,
    store: AnyUsageStore,
    api: RunningApi,
}

impl Scenario<'_> {
    async fn start<'a>(
        credits: &'a Credits,
        name: &'a str,
        location: UsageStoreLocation,
    ) -> Scenario<'a> {
        let mut settings = api_settings(Duration::from_secs(2), &credits.world.operator_namespace);
        settings.usage_store = Some(location.clone());
        let api = start_api(credits.world.control_plane, settings).await;
        let store = AnyUsageStore::open(&location).await.expect("usage store");
        Scenario {
            credits,
            name,
            display: format!("Acme {name}"),
            location,
            store,
            api,
        }
    }

    /// A subscriber whose tenant has `credits` settings, known to the API.
    async fn subscriber(&self, base: &str, credits: Value) -> Subscriber {
        let spec = json!({"displayName": self.display, "credits": credits});
        let base = format!("{base}-{}", self.name);
        let world = &self.credits.world;
        let s = Subscriber::subscribe(&world.client, &self.credits.listing.name, &base, spec).await;
        s.caller(&self.api.base).known_to_the_api(&s.name).await;
        s
    }

    /// What `s`'s tenant reads at `/v1/tenants/<tenant>/<what>` with its key.
    async fn tenant_get(&self, s: &Subscriber, what: &str) -> Value {
        let path = format!("/v1/tenants/{}/{what}", s.name);
        s.caller(&self.api.base).get_ok(&path).await
    }

    /// A superadmin's grant: the status and the body.
    async fn grant(&self, tenant: &str, key: &str, body: Value) -> (u16, Value) {
        let admin = Caller {
            http: reqwest::Client::new(),
            base: self.api.base.clone(),
            token: self.credits.superadmin.clone(),
        };
        let path = format!("/v1/admin/tenants/{tenant}/credits");
        let (status, _, body) = admin.post(&path, Some(key), body).await;
        (status.as_u16(), body)
    }

    /// The deals of charges to `tenant`.
    fn charges(&self, tenant: &str) -> Vec<String> {
        self.credits
            .world
            .sim
            .admin()
            .objects(hubspot_sim::ObjectType::Deals)
            .into_iter()
            .filter(|d| {
                d["properties"][CHARGE_KEY]
                    .as_str()
                    .is_some_and(|k| k.starts_with(&format!("{tenant}/")))
            })
            .filter_map(|d| d["id"].as_str().map(str::to_string))
            .collect()
    }

    /// An operator restarted (replica `instance`), reporting from this scenario's store.
    async fn restarted(&self, instance: &str) -> Arc<Context> {
        let instance = format!("e2e-credits-{}-{instance}", self.name);
        reporting_operator(&self.credits.world, &self.location, &instance).await
    }

    /// CreditBalanceLow webhooks received about this scenario's tenants.
    fn alerts(&self) -> usize {
        self.credits
            .received
            .lock()
            .expect("lock")
            .iter()
            .filter(|b| b["type"] == "marketplace.CreditBalanceLow")
            .filter(|b| b["data"]["facts"]["tenant"] == self.display.as_str())
            .count()
    }
}

fn store_of(ctx: &Context) -> &AnyUsageStore {
    ctx.usage_store.as_ref().expect("store")
}

/// Periods of `s` that `round` reported (rounds report every subscription in the cluster).
fn reported_to(round: &ReportRound, s: &Subscriber) -> usize {
    round
        .reported
        .iter()
        .filter(|r| r.key.tenant == s.name)
        .count()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credits_pay_usage_first_once_alert_once_and_top_up_once_with_each_store() {
    // PostgreSQL starts while the rest is set up.
    let postgres = tokio::task::spawn_blocking(Postgres::start_temporary);
    let world = OperatorWorld::start().await;
    let client = world.client.clone();
    let namespace = world.operator_namespace.clone();
    let listing = metered_listing(
        &client,
        "pages_report",
        json!({"unitPrice": "1.00", "includedQuantity": 2}),
    )
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
    let people = world
        .control_plane
        .create_namespace("people")
        .await
        .expect("namespace");
    let superadmin = service_account_token(&client, &people, "superadmin").await;
    grant_superadmin(&client, &namespace, &people, "superadmin").await;
    // The controllers that make tenants, bill subscriptions and deliver notifications; periods
    // and balances are acted on by the scenarios, which give each round its time.
    let ctx = Arc::new(
        world
            .context("e2e-credits", reported_by_hand())
            .with_notifications(NotifyConfig::default()),
    );
    let running = controllers::start(
        ctx.clone(),
        Enabled {
            notifications: true,
            ..Enabled::TENANTS_AND_SUBSCRIPTIONS
        },
    );
    let credits = Credits {
        world,
        ctx,
        listing,
        superadmin,
        received,
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let server = postgres
        .await
        .expect("PostgreSQL starts")
        .expect("PostgreSQL (scripts/install-postgres)");
    tokio::join!(
        scenario(
            &credits,
            "sqlite",
            UsageStoreLocation::Sqlite(dir.path().join("usage.sqlite"))
        ),
        scenario(
            &credits,
            "postgres",
            UsageStoreLocation::Postgres(server.url().to_string())
        ),
    );
    running.stop().await;
}

/// Both parts with one store.
async fn scenario(credits: &Credits, name: &str, location: UsageStoreLocation) {
    let scenario = Scenario::start(credits, name, location).await;
    let period = UsagePeriod::containing(Timestamp::now());
    let month_end = period.end() + SignedDuration::from_mins(2);
    let paying = credits_pay_first(&scenario, period, month_end).await;
    top_up_once(&scenario, month_end).await;
    assert!(scenario.charges(&paying.name).is_empty());
}

/// Credits pay first, an expired grant never; the balance falls below 5: one alert, however
/// often it is looked at.
async fn credits_pay_first(
    s: &Scenario<'_>,
    period: UsagePeriod,
    month_end: Timestamp,
) -> Subscriber {
    let ctx = &s.credits.ctx;
    let paying = s
        .subscriber(
            "credits",
            json!({"currency": "USD", "lowBalanceThreshold": "5"}),
        )
        .await;
    let a_year = (Timestamp::now() + SignedDuration::from_hours(24 * 365)).to_string();
    let grant = json!({"amount": "10.00", "currency": "USD", "expiresAt": a_year,
                       "reason": "welcome"});
    let (status, view) = s.grant(&paying.name, "welcome", grant.clone()).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(
        view["balances"],
        json!([{"currency": "USD", "available": "10"}])
    );
    // Retried: granted once. The same key for another grant, or a bad amount: refused.
    let (status, view) = s.grant(&paying.name, "welcome", grant.clone()).await;
    assert_eq!(
        (status, view["grants"].as_array().map(Vec::len)),
        (201, Some(1))
    );
    let mut other = grant.clone();
    other["amount"] = json!("11");
    let (status, view) = s.grant(&paying.name, "welcome", other).await;
    assert_eq!(
        (status, view["code"].clone()),
        (422, json!("IdempotencyKeyReused"))
    );
    let mut bad = grant.clone();
    bad["amount"] = json!("-3");
    let (status, view) = s.grant(&paying.name, "bad", bad).await;
    assert_eq!(
        (status, view["field"].clone()),
        (422, json!("amount")),
        "{view}"
    );
    // A backend key is no superadmin.
    let path = format!("/v1/admin/tenants/{}/credits", paying.name);
    let (status, _) = paying
        .caller(&s.api.base)
        .post(&path, &grant, "application/json")
        .await;
    assert_eq!(status, 403);
    // A bigger grant that expires in seconds: gone by the period's end.
    let soon = (Timestamp::now() + SignedDuration::from_secs(3)).to_string();
    let (status, _) = s
        .grant(
            &paying.name,
            "bonus",
            json!({"amount": "100", "currency": "USD", "expiresAt": soon}),
        )
        .await;
    assert_eq!(status, 201);

    // 14 pages, 2 included: 12 USD, 10 paid by credits, 2 billed.
    let meter = &s.credits.listing.meter;
    paying
        .caller(&s.api.base)
        .post_usage(meter, &event_ids("e", 14))
        .await;
    let round = report_due(ctx, &s.store, month_end).await;
    assert!(round.failures.is_empty(), "{round:?}");
    let usage_lines =
        || keyed_line_items(&s.credits.world.sim, &paying.deal_id(), USAGE_PERIOD_KEY);
    let lines = usage_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line[USAGE_PERIOD_KEY], format!("{}/{period}", paying.uid()));
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
    assert_eq!(
        reported_to(&report_due(ctx, &s.store, month_end).await, &paying),
        0
    );
    let restarted = s.restarted("2").await;
    let later = month_end + SignedDuration::from_hours(2);
    let round = report_due(&restarted, store_of(&restarted), later).await;
    assert_eq!(reported_to(&round, &paying), 0);
    assert_eq!(usage_lines().len(), 1);

    // The tenant sees the deduction, the spent grant and the expired one.
    let wait = Timestamp::now().duration_until(soon.parse().expect("time"));
    if wait.is_positive() {
        tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    }
    let view = s.tenant_get(&paying, "credits").await;
    assert_eq!(
        view["balances"],
        json!([{"currency": "USD", "available": "0"}]),
        "{view}"
    );
    let deductions = view["deductions"].as_array().expect("deductions");
    assert_eq!(deductions.len(), 1, "{view}");
    assert_eq!(
        (&deductions[0]["grantId"], &deductions[0]["amount"]),
        (&json!("welcome"), &json!("10"))
    );
    let bonus = view["grants"]
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
    assert!(view["grants"][0].get("grantedBy").is_none(), "{view}");
    let usage = s.tenant_get(&paying, "usage").await;
    assert_eq!(usage["credits"], view["balances"]);

    // Below 5 now: one alert (only this store's tenants have a ledger in it). Looked at again
    // (later in the episode, and after a restart): the same outbox record.
    let first = check_balances(ctx, &s.store, month_end).await;
    assert_eq!(first.alerts.len(), 1, "{first:?}");
    check_balances(ctx, &s.store, later).await;
    check_balances(&restarted, store_of(&restarted), later).await;
    eventually("the CreditBalanceLow webhook", CONVERGED, || async {
        (s.alerts() >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.alerts(), 1);
    paying
}

/// Automatic top-up: one charge and one grant, across a crash and a restart.
async fn top_up_once(s: &Scenario<'_>, month_end: Timestamp) {
    let ctx = &s.credits.ctx;
    let later = month_end + SignedDuration::from_hours(2);
    let a_year = (Timestamp::now() + SignedDuration::from_hours(24 * 365)).to_string();
    let buying = s
        .subscriber(
            "topup",
            json!({"currency": "USD",
                   "autoTopUp": {"threshold": "5", "amount": "20", "validDays": 30}}),
        )
        .await;
    let (status, _) = s
        .grant(
            &buying.name,
            "start",
            json!({"amount": "8", "currency": "USD", "expiresAt": a_year}),
        )
        .await;
    assert_eq!(status, 201);
    // 7 pages: 5 USD from credits, 3 left, below 5.
    buying
        .caller(&s.api.base)
        .post_usage(&s.credits.listing.meter, &event_ids("e", 7))
        .await;
    let round = report_due(ctx, &s.store, month_end).await;
    assert!(round.failures.is_empty(), "{round:?}");
    // An earlier attempt made the charge and died before granting (the episode began at the
    // settlement, at the round's time).
    let key = format!("{}/topup-USD-{}", buying.name, month_end.as_millisecond());
    let made = s
        .credits
        .world
        .hubspot
        .ensure_charge(&ChargeRequest {
            key: key.clone(),
            tenant_id: buying.name.clone(),
            tenant_name: s.display.clone(),
            name: "made before a crash".into(),
            description: String::new(),
            amount: "20".into(),
            currency: "USD".into(),
        })
        .await
        .expect("charge");
    let restarted = s.restarted("3").await;
    let topped = check_balances(&restarted, store_of(&restarted), later).await;
    assert!(topped.failures.is_empty(), "{topped:?}");
    assert_eq!(topped.top_ups.len(), 1, "{topped:?}");
    assert!(
        topped.top_ups[0].reason.contains(&made.line_item_id),
        "{topped:?}"
    );
    // Again, and on the first context: nothing more.
    let again = check_balances(ctx, &s.store, later + SignedDuration::from_hours(1)).await;
    assert!(again.top_ups.is_empty(), "{again:?}");
    let deals = s.charges(&buying.name);
    assert_eq!(deals, std::slice::from_ref(&made.deal_id));
    let charge_lines = keyed_line_items(&s.credits.world.sim, &made.deal_id, CHARGE_KEY);
    assert_eq!(charge_lines.len(), 1, "{charge_lines:?}");
    assert_eq!(
        (&charge_lines[0]["price"], &charge_lines[0][CHARGE_KEY]),
        (&json!("20"), &json!(key))
    );
    let view = s.tenant_get(&buying, "credits").await;
    assert_eq!(
        view["balances"],
        json!([{"currency": "USD", "available": "23"}]),
        "{view}"
    );
}

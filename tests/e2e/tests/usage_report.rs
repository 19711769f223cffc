//! Period-end usage reporting on a real apiserver with the operator's controllers and the HubSpot
//! simulator, with each usage store: tenants' keys post usage this month; at the month's end (the
//! round is given its time) each metered subscription's period becomes exactly one line item on
//! its deal, with the billable units and price: when HubSpot's response to the create is lost,
//! when an earlier attempt made the line item and died before recording it, after an operator
//! restart, and when the round repeats. The tenant's usage view shows the reported period.
//! One test: the controllers serve the whole cluster, so only one set runs here.

use std::sync::Arc;
use std::time::Duration;

use hubspot_sim::{FaultKind, FaultRule, ObjectType, RunningSimulator};
use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use marketplace_e2e::api_process::{api_settings, start_api};
use marketplace_e2e::controllers::{self, OperatorWorld, context};
use marketplace_e2e::subscriptions::{CONVERGED, apply, hubspot_client, phase_of};
use marketplace_e2e::tenants::tenant;
use marketplace_e2e::{control_plane, eventually, unique_name};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Listing, TenantSubscription};
use marketplace_operator::billing::{HubSpotClient, USAGE_PERIOD_KEY, UsageLineItemRequest};
use marketplace_operator::controllers::usage_report::{
    ReportRound, UsageReportSettings, report_due,
};
use marketplace_operator::controllers::{Context, ControllerConfig, Enabled};
use marketplace_operator::front_door::api_keys::secrets::create_api_key;
use marketplace_operator::metering::report::period_key;
use marketplace_operator::metering::{
    AnyUsageStore, PeriodReport, UsagePeriod, UsageStoreLocation,
};
use serde_json::{Value, json};

/// What the scenarios share: one control plane, simulator and set of controllers.
struct World {
    client: Client,
    sim: RunningSimulator,
    namespace: String,
    listing: String,
    meter: String,
}

/// A tenant subscribed to the metered listing, with a backend key, once billing made its deal.
struct Subscriber {
    name: String,
    key: String,
    subscription: TenantSubscription,
}

impl World {
    async fn subscriber(&self, base: &str) -> Subscriber {
        let (name, namespace) = tenant(&self.client, base, json!({})).await;
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
        Subscriber {
            name,
            key,
            subscription,
        }
    }

    /// The usage line items on `subscriber`'s deal, as (period key, quantity, price).
    fn usage_line_items(&self, subscriber: &Subscriber) -> Vec<(String, String, String)> {
        let deal: u64 = deal_id(subscriber).parse().expect("numeric deal id");
        let admin = self.sim.admin();
        let ids = admin.associated(ObjectType::Deals, deal, ObjectType::LineItems);
        admin
            .objects(ObjectType::LineItems)
            .into_iter()
            .filter(|li| {
                let id: u64 = li["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                ids.contains(&id) && li["properties"][USAGE_PERIOD_KEY].is_string()
            })
            .map(|li| {
                let p = &li["properties"];
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (
                    text(&p[USAGE_PERIOD_KEY]),
                    text(&p["quantity"]),
                    text(&p["price"]),
                )
            })
            .collect()
    }
}

fn deal_id(subscriber: &Subscriber) -> String {
    subscriber
        .subscription
        .status
        .as_ref()
        .and_then(|s| s.hubspot.as_ref())
        .and_then(|h| h.deal_id.clone())
        .expect("a deal")
}

fn uid(subscriber: &Subscriber) -> String {
    subscriber.subscription.metadata.uid.clone().expect("uid")
}

/// An operator (context) billing through `hubspot` and reporting from the store at `location`:
/// a fresh one stands for a restarted process.
async fn operator(
    world: &World,
    hubspot: HubSpotClient,
    location: &UsageStoreLocation,
    instance: &str,
) -> Arc<Context> {
    let config = ControllerConfig {
        namespace: world.namespace.clone(),
        audit_interval: Duration::from_secs(3600),
        usage_report: UsageReportSettings {
            interval: Duration::from_secs(3600),
            settle: SignedDuration::from_secs(60),
        },
        ..ControllerConfig::default()
    };
    let store = AnyUsageStore::open(location).await.expect("usage store");
    let ctx = context(&world.client, config, instance)
        .with_billing(hubspot)
        .with_usage_store(Arc::new(store));
    ctx.stores.wait_until_ready().await;
    Arc::new(ctx)
}

async fn post_usage(base: &str, subscriber: &Subscriber, meter: &str, ids: &[&str]) {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"specversion": "1.0", "id": id, "source": "/pages", "type": meter,
                   "time": Timestamp::now().to_string(), "data": {}})
        })
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/usage"))
        .header("X-API-Key", &subscriber.key)
        .header("Content-Type", "application/cloudevents-batch+json")
        .body(Value::from(events).to_string())
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
}

/// Waits until the API's caches hold `subscriber`'s subscription (its meter shows).
async fn known_to_the_api(base: &str, subscriber: &Subscriber) {
    eventually("the API knows the subscription", CONVERGED, || async {
        let view: Value = reqwest::Client::new()
            .get(format!("{base}/v1/tenants/{}/usage", subscriber.name))
            .header("X-API-Key", &subscriber.key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (view["meters"].as_array()?.len() == 1).then_some(())
    })
    .await;
}

fn reported_for<'a>(round: &'a ReportRound, subscriber: &Subscriber) -> Vec<&'a PeriodReport> {
    let uid = uid(subscriber);
    round
        .reported
        .iter()
        .filter(|r| r.key.subscription == uid)
        .collect()
}

/// The scenario with one store: two subscribers, one period.
async fn scenario(world: &World, location: UsageStoreLocation, base: &str) {
    let control_plane = control_plane().await;
    let mut settings = api_settings(Duration::from_secs(2), &world.namespace);
    settings.usage_store = Some(location.clone());
    let api = start_api(control_plane, settings).await;
    let ids: Vec<String> = (0..7).map(|i| format!("e{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let period = UsagePeriod::containing(Timestamp::now());
    // Two minutes into next month (past the minute to settle).
    let month_end = period.end() + SignedDuration::from_mins(2);

    // 5 pages, 3 of them included.
    let crashed = world.subscriber(&format!("{base}-crash")).await;
    known_to_the_api(&api.base, &crashed).await;
    post_usage(&api.base, &crashed, &world.meter, &ids[..5]).await;
    let hubspot = hubspot_client(&world.sim).await;
    let first = operator(world, hubspot.clone(), &location, &format!("{base}-1")).await;
    let store = first.usage_store.clone().expect("store");
    // Within the month nothing is due.
    let round = report_due(&first, &store, Timestamp::now()).await;
    assert!(reported_for(&round, &crashed).is_empty(), "{round:?}");

    // An earlier attempt made the line item, then died before recording it: it is found.
    let made = hubspot
        .ensure_usage_line_item(&UsageLineItemRequest {
            deal_id: deal_id(&crashed),
            period_key: period_key(&uid(&crashed), period),
            subscription_uid: uid(&crashed),
            name: "made before a crash".into(),
            description: String::new(),
            quantity: "2".into(),
            price: "0.1".into(),
            credit: None,
        })
        .await
        .expect("line item");
    let round = report_due(&first, &store, month_end).await;
    let recorded = reported_for(&round, &crashed);
    assert_eq!(recorded.len(), 1, "{round:?}");
    assert_eq!(recorded[0].reference, made.id);
    assert_eq!(
        (recorded[0].billable_units, recorded[0].amount.as_str()),
        (2, "0.2")
    );
    assert_eq!(world.usage_line_items(&crashed).len(), 1);

    // 7 pages (a retry of the first three among them); HubSpot commits the line item but its
    // response is lost (the deal has no line items yet, so that POST is the create).
    let lost = world.subscriber(&format!("{base}-lost")).await;
    known_to_the_api(&api.base, &lost).await;
    post_usage(&api.base, &lost, &world.meter, &ids[..3]).await;
    post_usage(&api.base, &lost, &world.meter, &ids).await;
    world.sim.admin().add_fault(FaultRule {
        id: 0,
        method: Some("POST".into()),
        path_contains: Some("/line_items".into()),
        kind: FaultKind::CommitThenFail {
            status: 502,
            delay_ms: 0,
        },
        probability: 1.0,
        times: Some(1),
    });
    let round = report_due(&first, &store, month_end).await;
    assert_eq!(reported_for(&round, &lost).len(), 1, "{round:?}");
    assert!(reported_for(&round, &crashed).is_empty(), "{round:?}");
    let key = period_key(&uid(&lost), period);
    assert_eq!(
        world.usage_line_items(&lost),
        [(key, "4".to_string(), "0.1".to_string())]
    );

    // Again, and after a restart (a fresh client and store handle): nothing more.
    let again = report_due(&first, &store, month_end).await;
    assert!(reported_for(&again, &lost).is_empty(), "{again:?}");
    let restarted = operator(
        world,
        hubspot_client(&world.sim).await,
        &location,
        &format!("{base}-2"),
    )
    .await;
    let later = month_end + SignedDuration::from_hours(3);
    let after = report_due(&restarted, restarted.usage_store.as_ref().unwrap(), later).await;
    assert!(reported_for(&after, &lost).is_empty(), "{after:?}");
    assert!(reported_for(&after, &crashed).is_empty(), "{after:?}");
    assert_eq!(world.usage_line_items(&lost).len(), 1);
    assert_eq!(world.usage_line_items(&crashed).len(), 1);

    // The tenant sees the reported period; the subscription has an Event saying so.
    let view: Value = reqwest::Client::new()
        .get(format!("{}/v1/tenants/{}/usage", api.base, lost.name))
        .header("X-API-Key", &lost.key)
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("JSON");
    let reported = view["reported"].as_array().expect("reported periods");
    assert_eq!(reported.len(), 1, "{view}");
    assert_eq!(reported[0]["subscription"], "pages", "{view}");
    assert_eq!(reported[0]["period"], period.to_string(), "{view}");
    assert_eq!(reported[0]["quantity"], 7.0, "{view}");
    assert_eq!(
        (
            reported[0]["billableUnits"].clone(),
            reported[0]["amount"].clone()
        ),
        (json!(4), json!("0.4")),
        "{view}"
    );
    assert!(reported[0]["lineItemId"].is_string(), "{view}");
    let namespace = lost.subscription.namespace().expect("namespace");
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(world.client.clone(), &namespace);
    eventually("the UsageReported Event", CONVERGED, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .find(|e| e.reason.as_deref() == Some("UsageReported"))
            .and_then(|e| e.message.clone())
            .filter(|m| m.contains("4 billable") && m.contains("0.4 USD"))
    })
    .await;
}

#[tokio::test]
async fn closed_periods_are_billed_once_as_deal_line_items_with_each_store() {
    let operator_world = OperatorWorld::start().await;
    let client = operator_world.client.clone();
    let listing = unique_name("pages");
    let meter = format!("e2e.{}", listing.replace('-', "_"));
    apply(&Api::<Listing>::all(client.clone()), json!({"apiVersion": "marketplace.dev/v1alpha1",
        "kind": "Listing", "metadata": {"name": listing}, "spec": {
            "displayName": "Document Pages", "tagline": "Read documents", "type": "InApp",
            "category": "AI", "lifecycle": "Published", "features": ["pages_report"],
            "plans": [{"name": "starter", "displayName": "Starter",
                "pricing": {"model": "Flat", "amount": "9.00", "currency": "USD", "interval": "Month"},
                "metered": {"meter": meter, "unit": "page", "unitPrice": "0.10",
                            "includedQuantity": 3}}]}}))
    .await;
    // The controllers that make tenants and bill subscriptions (periods are reported by the
    // scenarios, which give each round its time).
    let ctx = Arc::new(operator_world.context(
        "e2e-usage-report",
        ControllerConfig {
            audit_interval: Duration::from_secs(3600),
            ..ControllerConfig::default()
        },
    ));
    let running = controllers::start(ctx, Enabled::TENANTS_AND_SUBSCRIPTIONS);
    let OperatorWorld {
        sim,
        operator_namespace,
        ..
    } = operator_world;
    let world = World {
        client,
        sim,
        namespace: operator_namespace,
        listing,
        meter,
    };

    let dir = tempfile::tempdir().expect("temp dir");
    scenario(
        &world,
        UsageStoreLocation::Sqlite(dir.path().join("usage.sqlite")),
        "report-sqlite",
    )
    .await;
    let server = marketplace_harness::postgres::Postgres::start_temporary()
        .expect("PostgreSQL (scripts/install-postgres)");
    scenario(
        &world,
        UsageStoreLocation::Postgres(server.url().to_string()),
        "report-postgres",
    )
    .await;
    running.stop().await;
}

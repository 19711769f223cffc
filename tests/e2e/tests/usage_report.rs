//! Period-end usage reporting on a real apiserver with the operator's controllers and the HubSpot
//! simulator, with each usage store: tenants' keys post usage this month; at the month's end (the
//! round is given its time) each metered subscription's period becomes exactly one line item on
//! its deal, with the billable units and price: when HubSpot's response to the create is lost,
//! when an earlier attempt made the line item and died before recording it, after an operator
//! restart, and when the round repeats. The tenant's usage view shows the reported period.
//! Usage that arrives while its period is being reported is not billed, and the round says so
//! with a Warning Event (UsageArrivedWhileReporting) on the subscription. One test: the controllers
//! serve the whole cluster, so only one set runs here.

use std::sync::Arc;
use std::time::Duration;

use hubspot_sim::{FaultKind, FaultRule};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use marketplace_e2e::api_process::{api_settings, start_api};
use marketplace_e2e::controllers::{self, OperatorWorld};
use marketplace_e2e::metered::{
    MeteredListing, Subscriber, event_ids, keyed_line_items, metered_listing, reported_by_hand,
    reporting_operator,
};
use marketplace_e2e::subscriptions::CONVERGED;
use marketplace_e2e::{control_plane, eventually};
use marketplace_harness::postgres::Postgres;
use marketplace_operator::billing::{USAGE_PERIOD_KEY, UsageLineItemRequest};
use marketplace_operator::controllers::usage_report::{ReportRound, USAGE_UNBILLED, report_due};
use marketplace_operator::controllers::{Context, Enabled};
use marketplace_operator::metering::report::period_key;
use marketplace_operator::metering::{PeriodReport, UsagePeriod, UsageStoreLocation};
use serde_json::{Value, json};

/// What the scenarios share: one control plane, simulator and set of controllers.
struct World {
    operator: OperatorWorld,
    listing: MeteredListing,
}

impl World {
    /// A tenant subscribed to the metered listing, billed, known to the API at `api`.
    async fn subscriber(&self, base: &str, api: &str) -> Subscriber {
        let listing = &self.listing.name;
        let s = Subscriber::subscribe(&self.operator.client, listing, base, json!({})).await;
        s.caller(api).known_to_the_api(&s.name).await;
        s
    }

    /// The usage line items on `subscriber`'s deal, as (period key, quantity, price).
    fn usage_line_items(&self, subscriber: &Subscriber) -> Vec<(String, String, String)> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        keyed_line_items(&self.operator.sim, &subscriber.deal_id(), USAGE_PERIOD_KEY)
            .iter()
            .map(|p| {
                (
                    text(&p[USAGE_PERIOD_KEY]),
                    text(&p["quantity"]),
                    text(&p["price"]),
                )
            })
            .collect()
    }
}

fn reported_for<'a>(round: &'a ReportRound, subscriber: &Subscriber) -> Vec<&'a PeriodReport> {
    let uid = subscriber.uid();
    round
        .reported
        .iter()
        .filter(|r| r.key.subscription == uid)
        .collect()
}

/// The scenario with one store: two subscribers, one period.
async fn scenario(world: &World, location: UsageStoreLocation, base: &str) {
    let control_plane = control_plane().await;
    let mut settings = api_settings(Duration::from_secs(2), &world.operator.operator_namespace);
    settings.usage_store = Some(location.clone());
    let api = start_api(control_plane, settings).await;
    let meter = &world.listing.meter;
    let ids = event_ids("e", 7);
    let period = UsagePeriod::containing(Timestamp::now());
    // Two minutes into next month (past the minute to settle).
    let month_end = period.end() + SignedDuration::from_mins(2);

    // 5 pages, 3 of them included.
    let crashed = world.subscriber(&format!("{base}-crash"), &api.base).await;
    crashed.caller(&api.base).post_usage(meter, &ids[..5]).await;
    let first = reporting_operator(&world.operator, &location, &format!("{base}-1")).await;
    let store = first.usage_store.clone().expect("store");
    // Within the month nothing is due.
    let round = report_due(&first, &store, Timestamp::now()).await;
    assert!(reported_for(&round, &crashed).is_empty(), "{round:?}");

    // An earlier attempt made the line item, then died before recording it: it is found. A
    // 6th page arrives while the round waits for HubSpot: it is not billed, and said so.
    let made = world
        .operator
        .hubspot
        .ensure_usage_line_item(&UsageLineItemRequest {
            deal_id: crashed.deal_id(),
            period_key: period_key(&crashed.uid(), period),
            subscription_uid: crashed.uid(),
            name: "made before a crash".into(),
            description: String::new(),
            quantity: "2".into(),
            price: "0.1".into(),
            credit: None,
        })
        .await
        .expect("line item");
    let round = usage_while_reporting(world, &api.base, &first, &crashed, month_end).await;
    let recorded = reported_for(&round, &crashed);
    assert_eq!(recorded.len(), 1, "{round:?}");
    assert_eq!(recorded[0].reference, made.id);
    assert_eq!(
        (
            recorded[0].quantity,
            recorded[0].billable_units,
            recorded[0].amount.as_str()
        ),
        (5.0, 2, "0.2")
    );
    assert_eq!(world.usage_line_items(&crashed).len(), 1);
    let warning = subscription_event(world, &crashed, |e| {
        e.reason.as_deref() == Some(USAGE_UNBILLED)
    })
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"), "{warning:?}");
    let message = warning.message.unwrap_or_default();
    assert!(
        message.contains(&format!(
            "usage of {period} reached 6 while it was reported with 5"
        )),
        "{message}"
    );

    // 7 pages (a retry of the first three among them); HubSpot commits the line item but its
    // response is lost (the deal has no line items yet, so that POST is the create).
    let lost = world.subscriber(&format!("{base}-lost"), &api.base).await;
    let lost_usage = lost.caller(&api.base);
    lost_usage.post_usage(meter, &ids[..3]).await;
    lost_usage.post_usage(meter, &ids).await;
    world.operator.sim.admin().add_fault(FaultRule {
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
    let key = period_key(&lost.uid(), period);
    assert_eq!(
        world.usage_line_items(&lost),
        [(key, "4".to_string(), "0.1".to_string())]
    );

    // Again, and after a restart (a fresh client and store handle): nothing more.
    let again = report_due(&first, &store, month_end).await;
    assert!(reported_for(&again, &lost).is_empty(), "{again:?}");
    let restarted = reporting_operator(&world.operator, &location, &format!("{base}-2")).await;
    let later = month_end + SignedDuration::from_hours(3);
    let after = report_due(&restarted, restarted.usage_store.as_ref().unwrap(), later).await;
    for subscriber in [&lost, &crashed] {
        assert!(reported_for(&after, subscriber).is_empty(), "{after:?}");
        assert_eq!(world.usage_line_items(subscriber).len(), 1);
    }

    // The tenant sees the reported period; the subscription has an Event saying so.
    let view = lost_usage
        .get_ok(&format!("/v1/tenants/{}/usage", lost.name))
        .await;
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
    let event = subscription_event(world, &lost, |e| {
        e.reason.as_deref() == Some("UsageReported")
            && e.message
                .as_deref()
                .is_some_and(|m| m.contains("4 billable") && m.contains("0.4 USD"))
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Normal"));
}

/// A report round of `ctx` at `month_end` during which `subscriber`'s backend posts one more
/// event: HubSpot is slow to answer the round's look-up of the subscriber's deal's line items
/// (after the round read the period's quantity, before it recorded the report), and the event
/// arrives meanwhile (its month is not reported yet, so the API takes it).
async fn usage_while_reporting(
    world: &World,
    api: &str,
    ctx: &Context,
    subscriber: &Subscriber,
    month_end: Timestamp,
) -> ReportRound {
    let admin = world.operator.sim.admin();
    // Only the usage report reads a deal's line items.
    let slow = admin.add_fault(FaultRule {
        id: 0,
        method: Some("GET".into()),
        path_contains: Some(format!(
            "/deals/{}/associations/line_items",
            subscriber.deal_id()
        )),
        kind: FaultKind::Latency { ms: 1500 },
        probability: 1.0,
        times: Some(1),
    });
    let store = ctx.usage_store.clone().expect("store");
    let (round, ()) = tokio::join!(report_due(ctx, &store, month_end), async {
        // The fault is used up once HubSpot has the look-up.
        eventually("the round to ask HubSpot", CONVERGED, || async {
            let waiting = admin.with_state(|st| st.faults.rules.iter().any(|r| r.id == slow));
            (!waiting).then_some(())
        })
        .await;
        let during = event_ids("during-", 1);
        let backend = subscriber.caller(api);
        backend.post_usage(&world.listing.meter, &during).await;
    });
    round
}

/// Waits for an Event about `subscriber`'s subscription that `wanted` picks.
async fn subscription_event(
    world: &World,
    subscriber: &Subscriber,
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    let namespace = subscriber.subscription.namespace().expect("namespace");
    let events: Api<Event> = Api::namespaced(world.operator.client.clone(), &namespace);
    let name = subscriber.subscription.name_any();
    eventually("the subscription's Event", CONVERGED, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.involved_object.kind.as_deref() == Some("TenantSubscription")
                && e.involved_object.name.as_deref() == Some(name.as_str())
                && wanted(e)
        })
    })
    .await
}

#[tokio::test]
async fn closed_periods_are_billed_once_as_deal_line_items_with_each_store() {
    // PostgreSQL starts while the rest is set up.
    let postgres = tokio::task::spawn_blocking(Postgres::start_temporary);
    let operator = OperatorWorld::start().await;
    let listing = metered_listing(
        &operator.client,
        "pages_report",
        json!({"unitPrice": "0.10", "includedQuantity": 3}),
    )
    .await;
    // The controllers that make tenants and bill subscriptions (periods are reported by the
    // scenarios, which give each round its time).
    let ctx = Arc::new(operator.context("e2e-usage-report", reported_by_hand()));
    let running = controllers::start(ctx, Enabled::TENANTS_AND_SUBSCRIPTIONS);
    let world = World { operator, listing };

    // One store after the other: the simulator's faults are not scoped to one scenario.
    let dir = tempfile::tempdir().expect("temp dir");
    scenario(
        &world,
        UsageStoreLocation::Sqlite(dir.path().join("usage.sqlite")),
        "report-sqlite",
    )
    .await;
    let server = postgres
        .await
        .expect("PostgreSQL starts")
        .expect("PostgreSQL (scripts/install-postgres)");
    scenario(
        &world,
        UsageStoreLocation::Postgres(server.url().to_string()),
        "report-postgres",
    )
    .await;
    running.stop().await;
}

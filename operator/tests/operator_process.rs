//! The real `marketplace operator` binary against a real control plane and the HubSpot
//! simulator: SIGKILL at the worst moments, then restart and prove convergence (one live
//! commerce subscription per TenantSubscription, the right phase and Entitlements); leader
//! election across two processes; graceful SIGTERM; HubSpot faults during activation; the
//! audit sweeps what a SIGKILL between the line item and the subscription left behind.

mod process_support;

use std::time::{Duration, Instant};

use hubspot_sim::FaultKind;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use marketplace_operator::api::EntitlementState;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::controllers::billing_audit::ORPHAN_SWEPT;
use process_support::{
    Env, Operator, TENANT_NAMESPACE, eventually, marketplace_watches, steady_marketplace_watches,
};

/// Converging after a restart: caches, bootstrap, then one reconcile.
const CONVERGE: Duration = Duration::from_secs(45);
/// The commerce subscription create: the client coalesces creates into batch creates.
const SUBSCRIPTIONS: &str = "/subscriptions/batch/create";

/// Asserts the end state of an activated subscription: Active, exactly one live HubSpot
/// subscription, both features Active.
async fn assert_active(env: &Env, name: &str, uid: &str, features: &[String]) {
    env.wait_phase(name, Phase::Active, CONVERGE).await;
    env.wait_entitlements(name, features, EntitlementState::Active)
        .await;
    let live = env.live_subscriptions(uid);
    assert_eq!(
        live.len(),
        1,
        "{name}: live HubSpot subscriptions {live:?} (all: {:?})\n{}",
        env.hubspot_subscriptions(uid),
        env.log_tails()
    );
    assert_eq!(env.deals(uid), 1, "{name}: one deal");
}

/// Asserts the end state of a cancelled subscription: Cancelled, its HubSpot subscriptions all
/// canceled, both features Revoked.
async fn assert_cancelled(env: &Env, name: &str, uid: &str, features: &[String]) {
    env.wait_phase(name, Phase::Cancelled, CONVERGE).await;
    env.wait_entitlements(name, features, EntitlementState::Revoked)
        .await;
    let all = env.hubspot_subscriptions(uid);
    assert!(
        !all.is_empty() && env.live_subscriptions(uid).is_empty(),
        "{name}: HubSpot subscriptions {all:?} should exist and all be canceled\n{}",
        env.log_tails()
    );
}

/// Kill points of a cancellation.
#[derive(Debug, Clone, Copy)]
enum CancelKill {
    /// Kill this long after spec.cancellation was set.
    After(u64),
    /// HubSpot's cancel is held 2 s before it runs; kill once it arrived.
    InFlight,
    /// HubSpot cancelled, its answer is held 2 s; kill once it committed.
    CommittedUnanswered,
}

const CANCEL_POINTS: [CancelKill; 4] = [
    CancelKill::After(30),
    CancelKill::After(150),
    CancelKill::InFlight,
    CancelKill::CommittedUnanswered,
];

#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// The create is held 2 s by the simulator before it runs; kill once it arrived.
    CreateInFlight,
    /// The create commits, the answer is held 2 s; kill once it committed.
    CreateCommittedUnanswered,
    /// Kill this long after the TenantSubscription was created.
    AfterCreate(u64),
}

/// Kill points of a coalesced batch of subscription creates.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BatchKill {
    /// The batch is held 2 s before HubSpot runs it.
    InFlight,
    /// HubSpot commits the first inputs, then (2 s later) fails the request.
    HalfCommitted,
    /// HubSpot commits the whole batch; its answer is held 2 s.
    CommittedUnanswered,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_batch_converges_to_one_record_each() {
    const BURST: usize = 4;
    const POINTS: [BatchKill; 3] = [
        BatchKill::InFlight,
        BatchKill::HalfCommitted,
        BatchKill::CommittedUnanswered,
    ];
    let started = Instant::now();
    let env = Env::start("batch-crash").await;
    let mut listings = Vec::new();
    for i in 0..POINTS.len() * BURST {
        let name = format!("batch-{i}");
        let features = env.create_listing(&name, &format!("batch{i}")).await;
        listings.push((name, features));
    }
    // A long linger, so each burst's creates meet in one batch however the reconciles drift.
    let linger = [("HUBSPOT_BATCH_LINGER_MS", "300")];
    let mut operator = env.spawn_operator_with("batch-op-0", None, &linger);
    env.create_tenant().await;
    let mut all = Vec::new();
    for (p, point) in POINTS.into_iter().enumerate() {
        let kind = match point {
            BatchKill::InFlight => FaultKind::Latency { ms: 2000 },
            BatchKill::HalfCommitted => FaultKind::PartialBatchCommit {
                inputs: BURST / 2,
                status: 504,
                delay_ms: 2000,
            },
            BatchKill::CommittedUnanswered => FaultKind::CommitThenFail {
                status: 504,
                delay_ms: 2000,
            },
        };
        let fault = env.fault(kind, "POST", SUBSCRIPTIONS, Some(1));
        let mut burst = Vec::new();
        for (name, features) in &listings[p * BURST..(p + 1) * BURST] {
            let sub = format!("sub-{name}");
            let uid = env.create_subscription(&sub, name).await;
            burst.push((sub, uid, features.clone()));
        }
        env.wait_fault_reached(fault, "the subscription batch create")
            .await;
        operator.kill().await;
        let committed = burst
            .iter()
            .filter(|(_, uid, _)| !env.hubspot_subscriptions(uid).is_empty())
            .count();
        eprintln!("batch kill point {point:?}: {committed}/{BURST} subscriptions committed");
        match point {
            BatchKill::InFlight => assert_eq!(committed, 0, "killed before HubSpot ran the batch"),
            BatchKill::HalfCommitted => assert!(
                (1..=BURST / 2).contains(&committed),
                "HubSpot committed part of the batch: {committed}"
            ),
            BatchKill::CommittedUnanswered => {
                assert!(committed >= 1, "HubSpot committed the batch")
            }
        }
        env.sim.admin().clear_faults();
        operator = env.spawn_operator_with(&format!("batch-op-{}", p + 1), None, &linger);
        for (sub, uid, features) in &burst {
            assert_active(&env, sub, uid, features).await;
        }
        all.extend(burst);
    }
    // Nothing moved since: still one live record each.
    for (sub, uid, features) in &all {
        assert_active(&env, sub, uid, features).await;
    }
    assert_eq!(
        env.orphans().1,
        Vec::<u64>::new(),
        "no subscription without a deal"
    );
    operator.kill().await;
    eprintln!("batch crash test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_point_converges_to_one_billing_record() {
    let started = Instant::now();
    let env = Env::start("crash").await;
    let points = [
        KillPoint::CreateInFlight,
        KillPoint::CreateCommittedUnanswered,
        KillPoint::AfterCreate(50),
        KillPoint::AfterCreate(100),
        KillPoint::AfterCreate(150),
        KillPoint::AfterCreate(200),
        KillPoint::AfterCreate(250),
        KillPoint::AfterCreate(400),
        KillPoint::AfterCreate(700),
    ];
    // One listing per subscription: a tenant may request a listing once per hour.
    let mut listings = Vec::new();
    for i in 0..points.len() + CANCEL_POINTS.len() {
        let name = format!("crash-{i}");
        let features = env.create_listing(&name, &format!("crash{i}")).await;
        listings.push((name, features));
    }
    let mut generation = 0;
    let mut operator = env.spawn_operator("crash-op-0", None);
    env.create_tenant().await;

    // (a) and (b): kills during activation.
    for (i, point) in points.iter().enumerate() {
        let (listing, features) = &listings[i];
        let name = format!("sub-{i}");
        let fault = match point {
            KillPoint::CreateInFlight => Some(env.fault(
                FaultKind::Latency { ms: 2000 },
                "POST",
                SUBSCRIPTIONS,
                Some(1),
            )),
            KillPoint::CreateCommittedUnanswered => Some(env.fault(
                FaultKind::CommitThenFail {
                    status: 504,
                    delay_ms: 2000,
                },
                "POST",
                SUBSCRIPTIONS,
                Some(1),
            )),
            KillPoint::AfterCreate(_) => None,
        };
        let uid = env.create_subscription(&name, listing).await;
        let created = Instant::now();
        match point {
            KillPoint::AfterCreate(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            _ => {
                let id = fault.expect("fault");
                env.wait_fault_reached(id, "the subscription create").await;
            }
        }
        operator.kill().await;
        let at_kill = (env.phase(&name).await, env.hubspot_subscriptions(&uid));
        eprintln!(
            "kill point {point:?}: killed {:?} after create; phase then {:?}, HubSpot subscriptions {:?}",
            created.elapsed(),
            at_kill.0,
            at_kill.1
        );
        if matches!(point, KillPoint::CreateCommittedUnanswered) {
            assert_eq!(
                at_kill.1.len(),
                1,
                "the kill point is after HubSpot committed the create"
            );
        }
        if matches!(point, KillPoint::CreateInFlight) {
            assert!(
                at_kill.1.is_empty(),
                "the kill point is before HubSpot committed the create"
            );
        }
        env.sim.admin().clear_faults();
        generation += 1;
        operator = env.spawn_operator(&format!("crash-op-{generation}"), None);
        assert_active(&env, &name, &uid, features).await;
    }

    // (c): kills during cancellation, after a short delay and while HubSpot's cancel is held.
    for (j, point) in CANCEL_POINTS.into_iter().enumerate() {
        let i = points.len() + j;
        let (listing, features) = &listings[i];
        let name = format!("sub-{i}");
        let uid = env.create_subscription(&name, listing).await;
        assert_active(&env, &name, &uid, features).await;
        let fault = match point {
            CancelKill::After(_) => None,
            CancelKill::InFlight => {
                Some(env.fault(FaultKind::Latency { ms: 2000 }, "POST", "/cancel", Some(1)))
            }
            CancelKill::CommittedUnanswered => Some(env.fault(
                FaultKind::CommitThenFail {
                    status: 504,
                    delay_ms: 2000,
                },
                "POST",
                "/cancel",
                Some(1),
            )),
        };
        env.cancel_immediately(&name).await;
        match (point, fault) {
            (_, Some(id)) => env.wait_fault_reached(id, "the cancel").await,
            (CancelKill::After(ms), None) => tokio::time::sleep(Duration::from_millis(ms)).await,
            (_, None) => unreachable!(),
        }
        operator.kill().await;
        let at_kill = (env.phase(&name).await, env.hubspot_subscriptions(&uid));
        eprintln!(
            "cancel kill point {point:?}: phase then {:?}, HubSpot subscriptions {:?}",
            at_kill.0, at_kill.1
        );
        match point {
            CancelKill::InFlight => assert_eq!(
                env.live_subscriptions(&uid).len(),
                1,
                "the kill point is before HubSpot cancelled"
            ),
            CancelKill::CommittedUnanswered => assert!(
                env.live_subscriptions(&uid).is_empty(),
                "the kill point is after HubSpot cancelled"
            ),
            CancelKill::After(_) => {}
        }
        env.sim.admin().clear_faults();
        generation += 1;
        operator = env.spawn_operator(&format!("crash-op-{generation}"), None);
        assert_cancelled(&env, &name, &uid, features).await;
    }

    // Nothing else moved: the activated ones are still Active with one live record each.
    for (i, (_, features)) in listings.iter().enumerate().take(points.len()) {
        let name = format!("sub-{i}");
        let uid = env
            .tenant_subscriptions()
            .get(&name)
            .await
            .expect("subscription")
            .metadata
            .uid
            .expect("uid");
        assert_active(&env, &name, &uid, features).await;
        eprintln!(
            "{name}: HubSpot subscriptions at the end {:?}",
            env.hubspot_subscriptions(&uid)
        );
    }
    operator.kill().await;
    // Every replica's audit log survived its SIGKILL with an intact hash chain.
    let mut records = 0;
    for generation in 0..=points.len() + CANCEL_POINTS.len() {
        let path = env.audit_log(&format!("crash-op-{generation}"));
        if path.exists() {
            let report = marketplace_operator::audit_log::verify(&path)
                .unwrap_or_else(|e| panic!("audit log {} after SIGKILL: {e}", path.display()));
            records += report.records;
        }
    }
    assert!(records > 0, "the operators wrote audit records");
    eprintln!("crash test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leader_dies_and_sigterm_exits_cleanly() {
    let started = Instant::now();
    let env = Env::start("leader").await;
    let lease = "marketplace-operator-leader-test";
    let (first_listing, first_features) = (
        "leader-0".to_string(),
        env.create_listing("leader-0", "leader0").await,
    );
    let (second_listing, second_features) = (
        "leader-1".to_string(),
        env.create_listing("leader-1", "leader1").await,
    );
    let mut a = env.spawn_operator("replica-a", Some(lease));
    let mut b = env.spawn_operator("replica-b", Some(lease));
    env.create_tenant().await;

    let uid = env.create_subscription("first", &first_listing).await;
    assert_active(&env, "first", &uid, &first_features).await;
    let leader = env.lease_holder(lease).await.expect("a lease holder");
    assert!(
        leader == "replica-a" || leader == "replica-b",
        "holder {leader:?}"
    );
    let (dead, survivor) = if leader == "replica-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // One watch per kind per process: two replicas, two watches of each marketplace kind.
    let with_two = steady_marketplace_watches(&env.client).await;
    dead.kill().await;
    let killed = Instant::now();
    let killed_at = jiff::Timestamp::now();

    let uid = env.create_subscription("second", &second_listing).await;
    env.wait_phase("second", Phase::Active, Duration::from_secs(40))
        .await;
    eprintln!(
        "takeover: second Active {:?} after the kill",
        killed.elapsed()
    );
    assert_active(&env, "second", &uid, &second_features).await;
    let holder = env.lease_holder(lease).await.expect("a lease holder");
    assert_eq!(holder, survivor.name, "the lease moved to the survivor");
    assert!(survivor.running(), "the survivor still runs");
    report_takeover(survivor, killed_at);

    let with_one = steady_marketplace_watches(&env.client).await;

    let exit = survivor.terminate(Duration::from_secs(10)).await;
    let Some(exit) = exit else {
        survivor.kill().await;
        panic!(
            "SIGTERM: {} did not exit within 10 s\n{}",
            survivor.name,
            env.log_tails()
        );
    };
    assert!(
        exit.success(),
        "SIGTERM: {} exited with {exit}\n{}",
        survivor.name,
        env.log_tails()
    );
    let without = eventually(
        "the survivor's watches to close",
        Duration::from_secs(10),
        || async {
            let now = marketplace_watches(&env.client).await;
            (now.get("tenantsubscriptions") < with_one.get("tenantsubscriptions")).then_some(now)
        },
    )
    .await;
    let kinds = [
        "listings",
        "tenants",
        "tenantsubscriptions",
        "entitlements",
        "catalogsources",
        "subscriptionactions",
    ];
    for kind in kinds {
        let count = |m: &std::collections::BTreeMap<String, u64>| m.get(kind).copied().unwrap_or(0);
        let (two, one, none) = (count(&with_two), count(&with_one), count(&without));
        eprintln!("watches of {kind}: two replicas {two}, one {one}, none {none}");
        assert_eq!(one - none, 1, "the leader watches {kind} once");
        assert_eq!(two - none, 2, "each replica watches {kind} once");
    }
    eprintln!("leader test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_faults_during_activation_leave_one_billing_record() {
    let started = Instant::now();
    let env = Env::start("faults").await;
    let burst = env.create_listing("faults-0", "faults0").await;
    let committed = env.create_listing("faults-1", "faults1").await;
    let mut operator = env.spawn_operator("faults-op", None);
    env.create_tenant().await;

    // A 503 burst on the create.
    env.fault(
        FaultKind::Error { status: 503 },
        "POST",
        SUBSCRIPTIONS,
        Some(3),
    );
    let uid = env.create_subscription("burst", "faults-0").await;
    assert_active(&env, "burst", &uid, &burst).await;
    env.sim.admin().clear_faults();

    // The create commits but the operator is told it failed.
    let id = env.fault(
        FaultKind::CommitThenFail {
            status: 503,
            delay_ms: 0,
        },
        "POST",
        SUBSCRIPTIONS,
        Some(1),
    );
    let uid = env.create_subscription("committed", "faults-1").await;
    assert_active(&env, "committed", &uid, &committed).await;
    assert!(!env.fault_pending(id), "the commit_then_fail fault fired");
    assert_eq!(
        env.hubspot_subscriptions(&uid).len(),
        1,
        "no second subscription was created: {:?}",
        env.hubspot_subscriptions(&uid)
    );
    // A 429 storm: the portal's real budget is far below the tier the operator was told
    // (another app shares it), so three purchases at once run into HubSpot's 10-second limit.
    let mut storm = Vec::new();
    for i in 2..5 {
        let listing = format!("faults-{i}");
        let features = env.create_listing(&listing, &format!("faults{i}")).await;
        storm.push((format!("storm-{i}"), listing, features));
    }
    env.sim
        .admin()
        .with_state(|st| st.config.ten_second_limit = Some(12));
    let rate_limited_before = env.sim.admin().counters().rate_limited_ten_secondly;
    let mut uids = Vec::new();
    for (name, listing, _) in &storm {
        uids.push(env.create_subscription(name, listing).await);
    }
    for ((name, _, features), uid) in storm.iter().zip(&uids) {
        assert_active(&env, name, uid, features).await;
    }
    let rate_limited = env.sim.admin().counters().rate_limited_ten_secondly - rate_limited_before;
    assert!(rate_limited > 0, "the storm produced 429s");
    env.sim
        .admin()
        .with_state(|st| st.config.ten_second_limit = None);

    assert!(operator.running());
    operator.kill().await;
    eprintln!(
        "faults test took {:?} ({rate_limited} 429s in the storm)",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_sweeps_the_line_item_a_sigkill_before_the_subscription_left() {
    let started = Instant::now();
    let env = Env::start("sweep").await;
    let features = env.create_listing("sweep-0", "sweep0").await;
    let mut operator = env.spawn_operator("sweep-op-0", None);
    env.create_tenant().await;

    // The line item is created, the subscription create is held: SIGKILL in between.
    const HELD_MS: u64 = 3000;
    let held = env.fault(
        FaultKind::Latency { ms: HELD_MS },
        "POST",
        SUBSCRIPTIONS,
        Some(1),
    );
    let uid = env.create_subscription("swept", "sweep-0").await;
    env.wait_fault_reached(held, "the subscription create")
        .await;
    operator.kill().await;
    // Whatever the simulator still held has run its course by now.
    tokio::time::sleep(Duration::from_millis(HELD_MS)).await;
    let (line_items, subscriptions) = env.orphans();
    assert_eq!(
        (line_items.len(), subscriptions.len()),
        (1, 0),
        "the kill left exactly one orphan line item (and no subscription): {:?}",
        env.all_subscriptions()
    );
    let orphan = line_items[0];

    // A restart with a 1 s audit: the subscription activates with a line item of its own, and
    // the second audit that still finds the orphan deletes it.
    env.sim.admin().clear_faults();
    let restarted = Instant::now();
    operator = env.spawn_operator_with(
        "sweep-op-1",
        None,
        &[("MARKETPLACE_AUDIT_INTERVAL_SECONDS", "1")],
    );
    assert_active(&env, "swept", &uid, &features).await;
    process_support::eventually("no orphans in HubSpot", CONVERGE, || async {
        (env.orphans() == (vec![], vec![])).then_some(())
    })
    .await;
    eprintln!("orphan swept {:?} after the restart", restarted.elapsed());

    // Reported: the audit log records the deletion, the subscription has an Event (the drift
    // report lists it too, until the next audit's report replaces it).
    let record = format!("hubspot-line_item/{orphan}");
    let log = std::fs::read_to_string(env.audit_log("sweep-op-1")).expect("audit log");
    assert!(
        log.lines()
            .any(|l| l.contains("billing.delete") && l.contains(&record)),
        "no billing.delete of {record} in the audit log:\n{log}"
    );
    let events: Api<Event> = Api::namespaced(env.client.clone(), TENANT_NAMESPACE);
    process_support::eventually("an OrphanSwept Event", CONVERGE, || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some(ORPHAN_SWEPT)
                    && e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid.as_str())
            })
    })
    .await;
    assert_active(&env, "swept", &uid, &features).await;
    operator.kill().await;
    eprintln!("sweep test took {:?}", started.elapsed());
}

/// Prints how the takeover went, from the survivor's log: how long the Lease took, and how soon
/// after leading its first TenantSubscription reconcile finished (its caches were already warm).
fn report_takeover(survivor: &Operator, killed_at: jiff::Timestamp) {
    let log = std::fs::read_to_string(&survivor.log).unwrap_or_default();
    let at = |needle: &str| {
        log.lines()
            .filter(|line| line.contains(needle))
            .find_map(|line| {
                line.split_whitespace()
                    .next()?
                    .parse::<jiff::Timestamp>()
                    .ok()
            })
    };
    let led = at("became leader").expect("the survivor logged becoming leader");
    let reconciled = log
        .lines()
        .filter(|l| l.contains("first reconcile done") && l.contains("TenantSubscription"))
        .find_map(|l| l.split_whitespace().next()?.parse::<jiff::Timestamp>().ok())
        .expect("the survivor reconciled");
    eprintln!(
        "takeover: Lease acquired {:.2} s after the kill; first TenantSubscription reconcile done {:.3} s after leading",
        led.duration_since(killed_at).as_secs_f64(),
        reconciled.duration_since(led).as_secs_f64()
    );
}

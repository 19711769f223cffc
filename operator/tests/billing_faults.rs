//! The ensure algorithm (contract §2.6) under every fault the simulator injects (contract §8.10,
//! §9): after any sequence there is exactly one live billing record, and the orphans the faults
//! leave behind are swept.
mod billing_support;

use billing_support::*;
use hubspot_sim::{FaultKind, ObjectType, RunningSimulator};
use marketplace_operator::billing::{HubSpotClient, OrphanSweeper, Repair, Tier};
use std::time::Duration;

/// Creates go out as batch creates (coalesced, see `billing/coalesce.rs`).
const SUBS: &str = "/subscriptions/batch/create";
const LINE_ITEMS: &str = "/line_items/batch/create";

/// Two sweeps with no grace: the first marks, the second deletes.
async fn sweep(c: &HubSpotClient) {
    let mut s = OrphanSweeper::new(Duration::ZERO);
    c.sweep_orphans(&mut s).await.expect("sweep 1");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = c.sweep_orphans(&mut s).await.expect("sweep 2");
    assert!(r.unowned_billable.is_empty(), "{r:?}");
}

fn commit_then_fail(status: u16) -> FaultKind {
    FaultKind::CommitThenFail {
        status,
        delay_ms: 0,
    }
}

async fn setup() -> (RunningSimulator, HubSpotClient) {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    (sim, c)
}

#[tokio::test]
async fn subscription_response_lost_after_commit_is_found_by_the_lookup() {
    let (sim, c) = setup().await;
    sim.admin()
        .add_fault(fault(commit_then_fail(502), "POST", SUBS, Some(1)));
    let req = request(1);
    // One call: the ambiguous create goes back to the deal lookup and finds the subscription.
    let r = c.ensure_billing_record(&req).await.expect("ensure");
    let sid = assert_one_record(&sim, &req.subscription_uid);
    assert_eq!(r.subscription_id, Some(sid.to_string()));
    assert_eq!(live(&sim, ObjectType::Subscriptions).len(), 1);
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 1);
    assert_eq!(c.stats().ambiguous, 1);
}

#[tokio::test]
async fn line_item_response_lost_leaves_an_orphan_that_is_swept() {
    let (sim, c) = setup().await;
    sim.admin()
        .add_fault(fault(commit_then_fail(500), "POST", LINE_ITEMS, Some(1)));
    let req = request(1);
    c.ensure_billing_record(&req).await.expect("ensure");
    assert_one_record(&sim, &req.subscription_uid);
    assert_eq!(orphan_counts(&sim), (1, 0));
    sweep(&c).await;
    assert_eq!(orphan_counts(&sim), (0, 0));
    assert_one_record(&sim, &req.subscription_uid);
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 1);
}

#[tokio::test]
async fn lost_inline_associations_with_a_201_are_relinked() {
    let (sim, c) = setup().await;
    sim.admin().add_fault(fault(
        FaultKind::CreateWithoutAssociation { status: None },
        "POST",
        SUBS,
        Some(1),
    ));
    let req = request(1);
    let r = c.ensure_billing_record(&req).await.expect("ensure");
    let sid = assert_one_record(&sim, &req.subscription_uid);
    assert_eq!(
        r.repairs,
        vec![Repair::Relinked {
            subscription_id: sid.to_string()
        }]
    );
    assert_eq!(live(&sim, ObjectType::Subscriptions).len(), 1);
    assert_eq!(orphan_counts(&sim), (0, 0));
}

#[tokio::test]
async fn lost_associations_and_lost_response_reuse_the_line_item() {
    let (sim, c) = setup().await;
    sim.admin().add_fault(fault(
        FaultKind::CreateWithoutAssociation { status: Some(503) },
        "POST",
        SUBS,
        Some(1),
    ));
    let req = request(1);
    c.ensure_billing_record(&req).await.expect("ensure");
    assert_one_record(&sim, &req.subscription_uid);
    // The first subscription has no association at all; it is non-billable and carries the
    // marker, so the sweep removes it. The line item was reused, not duplicated.
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 1);
    assert_eq!(orphan_counts(&sim), (0, 1));
    sweep(&c).await;
    assert_eq!(orphan_counts(&sim), (0, 0));
    assert_eq!(live(&sim, ObjectType::Subscriptions).len(), 1);
    assert_one_record(&sim, &req.subscription_uid);
}

#[tokio::test]
async fn crash_between_line_item_and_subscription() {
    let (sim, c) = setup().await;
    // The subscription create hangs; the "process" dies while it is in flight.
    sim.admin().add_fault(fault(
        FaultKind::Latency { ms: 1_500 },
        "POST",
        SUBS,
        Some(1),
    ));
    let req = request(1);
    let task = {
        let c = c.clone();
        let req = req.clone();
        tokio::spawn(async move { c.ensure_billing_record(&req).await })
    };
    for _ in 0..200 {
        if !live(&sim, ObjectType::LineItems).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    let _ = task.await;
    // Let a request the server kept processing (if any) finish.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 1);
    // Normally the server dropped the hung request with the connection: no subscription, and
    // the line item is an orphan. (Had it been applied, the lookup below would find it.)
    let crashed_before_commit = live(&sim, ObjectType::Subscriptions).is_empty();
    println!("crash before the subscription committed: {crashed_before_commit}");
    // A new process (new client, nothing in memory) reconciles.
    let fresh = ready(&sim, Tier::Professional).await;
    fresh
        .ensure_billing_record(&req)
        .await
        .expect("ensure after crash");
    assert_one_record(&sim, &req.subscription_uid);
    if crashed_before_commit {
        assert_eq!(orphan_counts(&sim), (1, 0));
    }
    sweep(&fresh).await;
    assert_eq!(orphan_counts(&sim), (0, 0));
    assert_one_record(&sim, &req.subscription_uid);
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 1);
}

#[tokio::test]
async fn association_failures_and_5xx_on_safe_calls_are_retried() {
    let (sim, c) = setup().await;
    let a = sim.admin();
    // The deal → company association fails twice, the deal upsert once with a lock, a read
    // with 504.
    a.add_fault(fault(
        FaultKind::Error { status: 500 },
        "POST",
        "/deals/companies/batch/create",
        Some(2),
    ));
    a.add_fault(fault(
        FaultKind::Error { status: 423 },
        "POST",
        "/deals/batch/upsert",
        Some(1),
    ));
    a.add_fault(fault(
        FaultKind::Error { status: 504 },
        "POST",
        "/deals/subscriptions/batch/read",
        Some(1),
    ));
    let req = request(1);
    c.ensure_billing_record(&req).await.expect("ensure");
    assert_one_record(&sim, &req.subscription_uid);
    assert_eq!(c.stats().retries, 4);
    // A create is never retried blindly: a 5xx before commit goes back to the lookup, which
    // finds nothing, and the same line item is reused.
    let other = request(2);
    a.add_fault(fault(
        FaultKind::Error { status: 502 },
        "POST",
        SUBS,
        Some(2),
    ));
    c.ensure_billing_record(&other).await.expect("ensure 2");
    assert_one_record(&sim, &other.subscription_uid);
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 2);
    assert_eq!(orphan_counts(&sim), (0, 0));
}

#[tokio::test]
async fn five_xx_bursts_converge_to_one_record() {
    let (sim, c) = setup().await;
    let a = sim.admin();
    for (status, path) in [
        (500, ""),
        (502, "/deals"),
        (503, SUBS),
        (504, LINE_ITEMS),
        (423, "/companies"),
    ] {
        a.add_fault(hubspot_sim::FaultRule {
            probability: 0.25,
            method: None,
            ..fault(FaultKind::Error { status }, "", path, Some(12))
        });
    }
    a.add_fault(hubspot_sim::FaultRule {
        probability: 0.3,
        ..fault(commit_then_fail(500), "POST", "", Some(6))
    });
    let reqs: Vec<_> = (0..4).map(request).collect();
    for r in &reqs {
        ensure_until_ok(&c, r, 10).await;
    }
    a.clear_faults();
    for r in &reqs {
        ensure_until_ok(&c, r, 2).await;
        assert_one_record(&sim, &r.subscription_uid);
    }
    sweep(&c).await;
    assert_eq!(orphan_counts(&sim), (0, 0));
    for r in &reqs {
        assert_one_record(&sim, &r.subscription_uid);
    }
    assert_eq!(live(&sim, ObjectType::Subscriptions).len(), reqs.len());
    assert_eq!(live(&sim, ObjectType::LineItems).len(), reqs.len());
}

#[tokio::test]
async fn duplicates_made_outside_the_operator_are_retired() {
    let (sim, c) = setup().await;
    let req = request(1);
    let first = c.ensure_billing_record(&req).await.expect("ensure");
    // Another writer's create with the full associations: two live subscriptions on the deal.
    let http = reqwest::Client::new();
    let li = http
        .post(format!("{}/crm/objects/2026-09/line_items", sim.base_url()))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"properties": {"name": "dup", "price": "1", "quantity": "1"}}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let link = |id: &str, t: u32| serde_json::json!({"to": {"id": id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t}]});
    let dup = http
        .post(format!("{}/crm/objects/2026-09/subscriptions", sim.base_url()))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"properties": {"hs_name": "dup"}, "associations": [
            link(&first.deal_id, 299), link(&first.company_id, 297), link(li["id"].as_str().unwrap(), 301)]}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let dup_id = dup["id"].as_str().unwrap().to_string();
    let r = c.ensure_billing_record(&req).await.expect("ensure");
    assert_eq!(r.subscription_id, first.subscription_id, "keeps the oldest");
    assert_eq!(
        r.repairs,
        vec![Repair::RetiredDuplicate {
            subscription_id: dup_id,
            deleted: true
        }]
    );
    assert_one_record(&sim, &req.subscription_uid);
}

/// A reproducible random walk through every fault kind, many reconciles, several uids.
#[tokio::test]
async fn random_fault_sequences_keep_exactly_one_record() {
    let (sim, c) = setup().await;
    let a = sim.admin();
    let reqs: Vec<_> = (0..3).map(request).collect();
    let mut seed: u64 = 0x5EED_1234_ABCD_0001;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..24 {
        let kind = match next(7) {
            0 => commit_then_fail([500, 502, 504][next(3) as usize]),
            1 => FaultKind::CreateWithoutAssociation { status: None },
            2 => FaultKind::CreateWithoutAssociation { status: Some(502) },
            3 => FaultKind::Error {
                status: [500, 502, 503, 504, 423][next(5) as usize],
            },
            4 => FaultKind::Latency { ms: 50 },
            5 => commit_then_fail(503),
            _ => FaultKind::Error { status: 500 },
        };
        let (method, path) = [
            ("POST", SUBS),
            ("POST", LINE_ITEMS),
            ("PUT", "/associations/"),
            ("POST", "/crm/associations/"),
            ("POST", "/batch/upsert"),
            ("POST", "/subscriptions/batch/update"),
        ][next(6) as usize];
        a.add_fault(fault(kind, method, path, Some(1 + next(2) as u32)));
        let req = &reqs[next(reqs.len() as u64) as usize];
        ensure_until_ok(&c, req, 8).await;
        // Occasionally the record is canceled and re-activated (a new generation).
        if next(8) == 0 {
            let _ = c.cancel_billing_record(&req.subscription_uid).await;
        }
    }
    a.clear_faults();
    for r in &reqs {
        ensure_until_ok(&c, r, 2).await;
    }
    sweep(&c).await;
    assert_eq!(orphan_counts(&sim), (0, 0));
    for r in &reqs {
        assert_one_record(&sim, &r.subscription_uid);
    }
}

//! Coalesced billing (`billing/coalesce.rs`): concurrent ensures share batch calls, each gets
//! its own result, a 207 fails only the inputs it names, and a batch that commits part of its
//! inputs before failing still ends with exactly one live record per subscription.
mod billing_support;

use billing_support::*;
use hubspot_sim::{FaultKind, ObjectType, RunningSimulator, ValidationRule};
use marketplace_operator::billing::{BillingRecord, BillingRequest, HubSpotClient, Tier};

/// Runs one ensure per request at once, as concurrent reconciles do.
async fn ensure_all(
    c: &HubSpotClient,
    reqs: &[BillingRequest],
) -> Vec<Result<BillingRecord, marketplace_operator::billing::HubSpotError>> {
    let tasks: Vec<_> = reqs
        .iter()
        .map(|r| {
            let (c, r) = (c.clone(), r.clone());
            tokio::spawn(async move { c.ensure_billing_record(&r).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("join"));
    }
    out
}

fn requests(sim: &RunningSimulator) -> u64 {
    sim.admin().counters().total_requests
}

#[tokio::test]
async fn concurrent_ensures_share_batch_calls() {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    let reqs: Vec<_> = (0..40).map(request).collect();
    let before = requests(&sim);
    let records = ensure_all(&c, &reqs).await;
    let calls = requests(&sim) - before;
    for (r, rec) in reqs.iter().zip(&records) {
        let rec = rec.as_ref().expect("ensure");
        let sid = assert_one_record(&sim, &r.subscription_uid);
        assert_eq!(rec.subscription_id, Some(sid.to_string()));
        assert!(rec.line_item_id.is_some());
    }
    // 7 tenants, one company each, whatever the number of their subscriptions.
    assert_eq!(live(&sim, ObjectType::Companies).len(), 7);
    // Single calls would be about 9 per record (360); batched, each step is a few requests
    // for all 40 (product search once).
    println!("40 concurrent ensures: {calls} HubSpot calls");
    assert!(calls <= 30, "{calls} calls for 40 ensures");
    // Steady state: again, all at once, nothing created; the company comes from the cache.
    let before = requests(&sim);
    let again = ensure_all(&c, &reqs).await;
    let steady = requests(&sim) - before;
    for (a, b) in again.iter().zip(&records) {
        assert_eq!(a.as_ref().expect("again"), b.as_ref().expect("first"));
    }
    println!("40 concurrent steady-state ensures: {steady} HubSpot calls");
    assert!(steady <= 15, "{steady} calls");
    assert_eq!(live(&sim, ObjectType::Subscriptions).len(), 40);
    assert_eq!(live(&sim, ObjectType::LineItems).len(), 40);
}

#[tokio::test]
async fn a_207_fails_only_the_inputs_it_names() {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    // A portal validation rule (contract §1.1) refuses one line item of the batch.
    sim.admin().add_validation_rule(ValidationRule {
        object_type: "line_items".into(),
        property_name: "quantity".into(),
        rejected_values: Some(vec!["7".into()]),
        message: "Quantity 7 is not sold.".into(),
    });
    let mut reqs: Vec<_> = (0..6).map(request).collect();
    reqs[3].quantity = 7;
    let results = ensure_all(&c, &reqs).await;
    for (i, (r, res)) in reqs.iter().zip(&results).enumerate() {
        if i == 3 {
            let e = res.as_ref().expect_err("refused");
            assert_eq!(e.category(), "validation", "{e}");
            assert!(live_subscriptions(&sim, &r.subscription_uid).is_empty());
        } else {
            res.as_ref().expect("the others are billed");
            assert_one_record(&sim, &r.subscription_uid);
        }
    }
    // Once the rule is gone the refused one is billed from its lookup, without duplicates.
    sim.admin().with_state(|st| st.validation_rules.clear());
    ensure_until_ok(&c, &reqs[3], 2).await;
    for r in &reqs {
        assert_one_record(&sim, &r.subscription_uid);
    }
    assert_eq!(orphan_counts(&sim), (0, 0));
}

#[tokio::test]
async fn a_half_committed_subscription_batch_converges_to_one_record_each() {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    // The subscription batch create commits 4 of its inputs, then answers 502: every caller's
    // create is ambiguous, so each goes back to its deal lookup.
    sim.admin().add_fault(fault(
        FaultKind::PartialBatchCommit {
            inputs: 4,
            status: 502,
            delay_ms: 0,
        },
        "POST",
        "/subscriptions/batch/create",
        Some(1),
    ));
    // The deal upsert batch too: upserts converge when repeated.
    sim.admin().add_fault(fault(
        FaultKind::PartialBatchCommit {
            inputs: 3,
            status: 503,
            delay_ms: 0,
        },
        "POST",
        "/deals/batch/upsert",
        Some(1),
    ));
    let reqs: Vec<_> = (0..10).map(request).collect();
    for res in ensure_all(&c, &reqs).await {
        if let Err(e) = res {
            assert!(e.is_retryable(), "{e}");
        }
    }
    for r in &reqs {
        ensure_until_ok(&c, r, 3).await;
        assert_one_record(&sim, &r.subscription_uid);
        assert_eq!(deal_count(&sim, &r.subscription_uid), 1);
    }
    assert!(c.stats().ambiguous >= 1);
    assert_eq!(live(&sim, ObjectType::Subscriptions).len(), 10);
    assert_eq!(orphan_counts(&sim), (0, 0));
}

fn deal_count(sim: &RunningSimulator, uid: &str) -> usize {
    live(sim, ObjectType::Deals)
        .iter()
        .filter(|d| d["properties"]["mkt_subscription_uid"].as_str() == Some(uid))
        .count()
}

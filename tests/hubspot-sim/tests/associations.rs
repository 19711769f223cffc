//! Associations (contract §1.7, §2.6 step 4, §9).
mod common;

use common::*;
use hubspot_sim::{FaultKind, FaultRule, ObjectType};
use serde_json::json;

#[tokio::test]
async fn labels_endpoint_serves_contract_type_ids() {
    let c = start().await;
    // contract §1.7: subscription → deal 299; deal → company 341 and 5 (primary).
    let (s, v) = c
        .get("/crm/associations/2026-09/subscriptions/deals/labels")
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["results"][0]["typeId"], json!(299));
    assert_eq!(v["results"][0]["category"], json!("HUBSPOT_DEFINED"));
    let (_, v) = c.get("/crm/v4/associations/deals/companies/labels").await;
    let ids: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["typeId"].as_u64().unwrap())
        .collect();
    assert!(ids.contains(&341) && ids.contains(&5));
}

#[tokio::test]
async fn put_labeled_replaces_and_delete_removes_pair() {
    let c = start().await;
    let deal = c.create("deals", deal_props("d")).await;
    let co = c.create("companies", json!({"name": "c"})).await;
    let path = format!("/crm/objects/2026-09/deals/{deal}/associations/companies/{co}");
    let (s, v) = c.put(&path, Some(json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}, {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]))).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["labels"], json!(["Primary"]));
    // contract §1.7: a labeled PUT replaces the labels.
    c.put(
        &path,
        Some(json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}])),
    )
    .await;
    let (_, v) = c
        .get(&format!(
            "/crm/v4/objects/deals/{deal}/associations/companies"
        ))
        .await;
    assert_eq!(
        v["results"][0]["toObjectId"].as_u64().unwrap().to_string(),
        co
    );
    let types: Vec<_> = v["results"][0]["associationTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["typeId"].clone())
        .collect();
    assert_eq!(types, vec![json!(341)]);
    // The reverse direction exists with its own id (342).
    let (_, v) = c
        .get(&format!(
            "/crm/objects/2026-09/companies/{co}/associations/deals"
        ))
        .await;
    assert_eq!(v["results"][0]["associationTypes"][0]["typeId"], json!(342));
    // A type id of another pair is a 400.
    let (s, _) = c
        .put(
            &path,
            Some(json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 299}])),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(c.delete(&path).await, 204);
    let (_, v) = c
        .get(&format!(
            "/crm/objects/2026-09/deals/{deal}/associations/companies"
        ))
        .await;
    assert_eq!(v["results"], json!([]));
    // Default association.
    let (s, v) = c
        .put(
            &format!("/crm/v4/objects/deals/{deal}/associations/default/companies/{co}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["results"][0]["associationSpec"]["associationTypeId"],
        json!(341)
    );
}

#[tokio::test]
async fn inline_associations_on_create_are_atomic() {
    let c = start().await;
    let deal = c.create("deals", deal_props("d")).await;
    // contract §2.6 step 4: create the subscription with inline associations; atomic by default.
    let (s, v) = c
        .post("/crm/objects/2026-09/subscriptions", json!({"properties": {"hs_name": "s"},
            "associations": [
                {"to": {"id": deal}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 299}]},
                {"to": {"id": "424242"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 297}]}]}))
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(c.sim.admin().objects(ObjectType::Subscriptions).is_empty());
    let (s, v) = c
        .post("/crm/objects/2026-09/subscriptions", json!({"properties": {"hs_name": "s"},
            "associations": [{"to": {"id": deal}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 299}]}]}))
        .await;
    assert_eq!(s, 201);
    let (_, l) = c
        .get(&format!(
            "/crm/objects/2026-09/deals/{deal}/associations/subscriptions"
        ))
        .await;
    assert_eq!(
        l["results"][0]["toObjectId"].as_u64().unwrap().to_string(),
        v["id"].as_str().unwrap()
    );
    assert_eq!(l["results"][0]["associationTypes"][0]["typeId"], json!(300));
}

#[tokio::test]
async fn create_without_association_fault() {
    let c = start().await;
    let deal = c.create("deals", deal_props("d")).await;
    c.sim.admin().add_fault(FaultRule {
        id: 0,
        method: Some("POST".into()),
        path_contains: Some("/subscriptions".into()),
        kind: FaultKind::CreateWithoutAssociation { status: Some(500) },
        probability: 1.0,
        times: Some(1),
    });
    let body = json!({"properties": {"hs_name": "s"},
        "associations": [{"to": {"id": deal}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 299}]}]});
    // contract §2.6: "object created but association failed" as an injectable fault.
    let (s, _) = c.post("/crm/objects/2026-09/subscriptions", body).await;
    assert_eq!(s, 500);
    let subs = c.sim.admin().objects(ObjectType::Subscriptions);
    assert_eq!(subs.len(), 1);
    let deal_id: u64 = deal.parse().unwrap();
    assert!(
        c.sim
            .admin()
            .associated(ObjectType::Deals, deal_id, ObjectType::Subscriptions)
            .is_empty()
    );
}

#[tokio::test]
async fn batch_association_endpoints() {
    let c = start().await;
    let deal = c.create("deals", deal_props("d")).await;
    let co = c.create("companies", json!({"name": "c"})).await;
    let (s, v) = c
        .post("/crm/associations/2026-09/deals/companies/batch/create", json!({"inputs": [
            {"from": {"id": deal}, "to": {"id": co}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]}))
        .await;
    assert_eq!(s, 201, "{v}");
    // contract §6: batch read returns {from:{id}, to:[{toObjectId, associationTypes}]}.
    let (s, v) = c
        .post(
            "/crm/v4/associations/deals/companies/batch/read",
            json!({"inputs": [{"id": deal}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["from"]["id"], json!(deal));
    assert_eq!(
        v["results"][0]["to"][0]["associationTypes"][0]["label"],
        json!("Primary")
    );
    let (s, _) = c
        .post(
            "/crm/v4/associations/deals/companies/batch/archive",
            json!({"inputs": [{"from": {"id": deal}, "to": [{"id": co}]}]}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = c
        .post(
            "/crm/v4/associations/deals/companies/batch/read",
            json!({"inputs": [{"id": deal}]}),
        )
        .await;
    assert_eq!(s, 207);
    assert_eq!(v["numErrors"], json!(1));
    // contract §1.7: batch read takes at most 1,000 inputs.
    let many: Vec<_> = (0..1001).map(|i| json!({"id": i.to_string()})).collect();
    assert_eq!(
        c.post(
            "/crm/v4/associations/deals/companies/batch/read",
            json!({"inputs": many})
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn line_item_has_a_single_parent() {
    let c = start().await;
    let deal = c.create("deals", deal_props("d")).await;
    let li = c
        .create("line_items", json!({"name": "li", "price": "1"}))
        .await;
    let (s, _) = c
        .put(
            &format!("/crm/objects/2026-09/deals/{deal}/associations/default/line_items/{li}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    // contract §1.3 / §8.12: reusing a deal's line item on a subscription is invalid.
    let (s, v) = c
        .post("/crm/objects/2026-09/subscriptions", json!({"properties": {"hs_name": "s"},
            "associations": [{"to": {"id": li}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 301}]}]}))
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(c.sim.admin().objects(ObjectType::Subscriptions).is_empty());
    let sub = c.create("subscriptions", json!({"hs_name": "s"})).await;
    let (s, _) = c
        .put(
            &format!("/crm/objects/2026-09/subscriptions/{sub}/associations/line_items/{li}"),
            Some(json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 301}])),
        )
        .await;
    assert_eq!(s, 400);
}

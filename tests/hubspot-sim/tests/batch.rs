//! Batch endpoints (contract §2.3, §3 "Batch sizes", §4 207, §8.5, §8.6).
mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn more_than_100_inputs_is_400() {
    let c = start().await;
    let inputs: Vec<_> = (0..101)
        .map(|i| json!({"properties": {"name": format!("c{i}")}}))
        .collect();
    // contract §3: object batch endpoints take at most 100 inputs.
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/companies/batch/create",
            json!({"inputs": inputs}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["category"], json!("VALIDATION_ERROR"));
    assert!(
        c.sim
            .admin()
            .objects(hubspot_sim::ObjectType::Companies)
            .is_empty()
    );
}

#[tokio::test]
async fn duplicate_ids_reject_the_whole_batch() {
    let c = start().await;
    let a = c.create("companies", json!({"name": "a"})).await;
    // contract §2.3: "Duplicate IDs found in batch input: [..]. IDs must be unique", context.ids.
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/companies/batch/update",
            json!({"inputs": [
            {"id": a, "properties": {"city": "x"}}, {"id": a, "properties": {"city": "y"}}]}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["message"],
        json!(format!(
            "Duplicate IDs found in batch input: [{a}]. IDs must be unique"
        ))
    );
    assert_eq!(v["context"]["ids"], json!([a]));
    let (_, v) = c
        .get(&format!(
            "/crm/objects/2026-09/companies/{a}?properties=city"
        ))
        .await;
    assert_eq!(v["properties"]["city"], json!(null));
}

#[tokio::test]
async fn partial_failure_is_207_keyed_by_object_write_trace_id() {
    let c = start().await;
    // contract §4 / §8.5: 207 with numErrors and errors[].context.objectWriteTraceId.
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/deals/batch/create",
            json!({"inputs": [
            {"properties": deal_props("ok"), "objectWriteTraceId": "t1"},
            {"properties": {"dealname": "bad"}, "objectWriteTraceId": "t2"}]}),
        )
        .await;
    assert_eq!(s, 207, "{v}");
    assert_eq!(v["status"], json!("COMPLETE"));
    assert_eq!(v["numErrors"], json!(1));
    assert_eq!(
        v["errors"][0]["context"]["objectWriteTraceId"],
        json!(["t2"])
    );
    assert_eq!(v["errors"][0]["category"], json!("VALIDATION_ERROR"));
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    // Without trace ids the same batch is rejected as a whole and nothing is written.
    let (s, _) = c
        .post(
            "/crm/objects/2026-09/deals/batch/create",
            json!({"inputs": [
            {"properties": deal_props("ok2")}, {"properties": {"dealname": "bad"}}]}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        c.sim.admin().objects(hubspot_sim::ObjectType::Deals).len(),
        1
    );
}

#[tokio::test]
async fn upsert_by_unique_property_reports_new() {
    let c = start().await;
    c.unique_property("companies", "mkt_tenant_id").await;
    let body = json!({"inputs": [{"idProperty": "mkt_tenant_id", "id": "tenant-a", "properties": {"name": "A"}}]});
    // contract §2.3: upsert results carry new: true|false.
    let (s, v) = c
        .post("/crm/objects/2026-09/companies/batch/upsert", body.clone())
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["new"], json!(true));
    assert_eq!(
        v["results"][0]["properties"]["mkt_tenant_id"],
        json!("tenant-a")
    );
    let id = v["results"][0]["id"].clone();
    let (s, v) = c
        .post("/crm/objects/2026-09/companies/batch/upsert", body)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["results"][0]["new"], json!(false));
    assert_eq!(v["results"][0]["id"], id);
    assert_eq!(
        c.sim
            .admin()
            .objects(hubspot_sim::ObjectType::Companies)
            .len(),
        1
    );
}

#[tokio::test]
async fn upsert_by_non_unique_property_is_400() {
    let c = start().await;
    // contract §2.3 / §8.6: "Unable to perform update/upsert by non-unique 0-2 property ... in portal ID ...".
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/companies/batch/upsert",
            json!({"inputs": [
            {"idProperty": "hs_object_id", "id": "1", "properties": {"name": "A"}}]}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["message"],
        json!(
            "Unable to perform update/upsert by non-unique 0-2 property hs_object_id in portal ID 62515"
        )
    );
    // Contacts may upsert by email.
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/contacts/batch/upsert",
            json!({"inputs": [
            {"idProperty": "email", "id": "b@example.com", "properties": {"firstname": "B"}}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["new"], json!(true));
}

#[tokio::test]
async fn batch_read_reports_missing_ids_in_207() {
    let c = start().await;
    let a = c.create("companies", json!({"name": "a"})).await;
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/companies/batch/read",
            json!({"inputs": [{"id": a}, {"id": "999"}], "properties": ["name"]}),
        )
        .await;
    assert_eq!(s, 207);
    assert_eq!(v["results"][0]["properties"]["name"], json!("a"));
    assert_eq!(v["errors"][0]["category"], json!("OBJECT_NOT_FOUND"));
    assert_eq!(v["errors"][0]["context"]["ids"], json!(["999"]));
    // Archive is 204.
    let (s, _) = c
        .post(
            "/crm/objects/2026-09/companies/batch/archive",
            json!({"inputs": [{"id": a}]}),
        )
        .await;
    assert_eq!(s, 204);
    assert!(
        c.sim
            .admin()
            .objects(hubspot_sim::ObjectType::Companies)
            .is_empty()
    );
}

#[tokio::test]
async fn upsert_and_update_207_are_keyed_by_object_write_trace_id() {
    let c = start().await;
    c.unique_property("deals", "mkt_subscription_uid").await;
    // contract §4 / §8.5: per-input failures of an upsert come back in a 207; the good input
    // is committed and echoes its trace id.
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/deals/batch/upsert",
            json!({"inputs": [
            {"idProperty": "mkt_subscription_uid", "id": "u1", "properties": deal_props("one"),
             "objectWriteTraceId": "0"},
            {"idProperty": "mkt_subscription_uid", "id": "u2", "properties": {"dealname": "bad"},
             "objectWriteTraceId": "1"}]}),
        )
        .await;
    assert_eq!(s, 207, "{v}");
    assert_eq!(v["numErrors"], json!(1));
    assert_eq!(v["results"][0]["objectWriteTraceId"], json!("0"));
    assert_eq!(v["results"][0]["new"], json!(true));
    assert_eq!(
        v["errors"][0]["context"]["objectWriteTraceId"],
        json!(["1"])
    );
    let id = v["results"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/deals/batch/update",
            json!({"inputs": [
            {"id": id, "properties": {"amount": "5"}, "objectWriteTraceId": "a"},
            {"id": "999", "properties": {"amount": "5"}, "objectWriteTraceId": "b"}]}),
        )
        .await;
    assert_eq!(s, 207, "{v}");
    assert_eq!(v["results"][0]["objectWriteTraceId"], json!("a"));
    assert_eq!(v["results"][0]["properties"]["amount"], json!("5"));
    assert_eq!(v["errors"][0]["category"], json!("OBJECT_NOT_FOUND"));
    assert_eq!(
        v["errors"][0]["context"]["objectWriteTraceId"],
        json!(["b"])
    );
}

fn partial(inputs: usize, path: &str) -> hubspot_sim::FaultRule {
    hubspot_sim::FaultRule {
        id: 0,
        method: Some("POST".into()),
        path_contains: Some(path.into()),
        kind: hubspot_sim::FaultKind::PartialBatchCommit {
            inputs,
            status: 502,
            delay_ms: 0,
        },
        probability: 1.0,
        times: Some(1),
    }
}

#[tokio::test]
async fn a_partial_commit_fault_writes_the_first_inputs_then_fails() {
    let c = start().await;
    // contract §8.5: batches are not atomic; the fault commits two of four inputs, then 502s.
    c.sim.admin().add_fault(partial(2, "/deals/batch/create"));
    let inputs: Vec<_> = (0..4)
        .map(|i| json!({"properties": deal_props(&format!("d{i}"))}))
        .collect();
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/deals/batch/create",
            json!({"inputs": inputs}),
        )
        .await;
    assert_eq!(s, 502, "{v}");
    let names: Vec<String> = c
        .sim
        .admin()
        .objects(hubspot_sim::ObjectType::Deals)
        .iter()
        .map(|d| d["properties"]["dealname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["d0".to_string(), "d1".to_string()]);
    // The rule is used up: the same batch now commits whole.
    let (s, _) = c
        .post(
            "/crm/objects/2026-09/deals/batch/create",
            json!({"inputs": [{"properties": deal_props("d9")}]}),
        )
        .await;
    assert_eq!(s, 201);

    // Association batch creates are cut the same way.
    let d: Vec<String> = c
        .sim
        .admin()
        .objects(hubspot_sim::ObjectType::Deals)
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let co = c.create("companies", json!({"name": "co"})).await;
    c.sim
        .admin()
        .add_fault(partial(1, "/deals/companies/batch/create"));
    let pair = |deal: &str| {
        json!({"from": {"id": deal}, "to": {"id": co},
               "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]})
    };
    let (s, _) = c
        .post(
            "/crm/associations/2026-09/deals/companies/batch/create",
            json!({"inputs": [pair(&d[0]), pair(&d[1])]}),
        )
        .await;
    assert_eq!(s, 502);
    let (s, v) = c
        .post(
            "/crm/associations/2026-09/deals/companies/batch/read",
            json!({"inputs": [{"id": d[0]}, {"id": d[1]}]}),
        )
        .await;
    assert_eq!(s, 207, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert_eq!(v["results"][0]["from"]["id"], json!(d[0]));
}

//! Search (contract §2.5, §6, §8.1, §8.4).
mod common;

use common::*;
use serde_json::{Value, json};

async fn search(c: &Ctx, body: Value) -> (u16, Value) {
    c.post("/crm/objects/2026-09/deals/search", body).await
}

fn eq(prop: &str, op: &str, value: Value) -> Value {
    json!({"filterGroups": [{"filters": [{"propertyName": prop, "operator": op, "value": value}]}]})
}

#[tokio::test]
async fn search_lags_writes() {
    let mut cfg = config();
    cfg.search_lag_ms = 3000;
    let c = start_with(cfg).await;
    c.create("deals", deal_props("Alpha")).await;
    // contract §8.1: a search right after an insert returns nothing.
    let (s, v) = search(&c, eq("dealname", "EQ", json!("alpha"))).await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], json!(0));
    c.sim.admin().advance_clock(3000);
    let (_, v) = search(&c, eq("dealname", "EQ", json!("alpha"))).await;
    assert_eq!(v["total"], json!(1));
    assert_eq!(v["results"][0]["properties"]["dealname"], json!("Alpha"));
    // Updates lag too: the old value stays visible until the lag passes.
    let id = v["results"][0]["id"].as_str().unwrap().to_string();
    c.patch(
        &format!("/crm/objects/2026-09/deals/{id}"),
        json!({"properties": {"dealname": "Beta"}}),
    )
    .await;
    c.sim.admin().advance_clock(1001);
    let (_, v) = search(&c, eq("dealname", "EQ", json!("beta"))).await;
    assert_eq!(v["total"], json!(0));
    c.sim.admin().advance_clock(3000);
    let (_, v) = search(&c, eq("dealname", "EQ", json!("beta"))).await;
    assert_eq!(v["total"], json!(1));
    // Archived records never appear.
    c.delete(&format!("/crm/objects/2026-09/deals/{id}")).await;
    c.sim.admin().advance_clock(4000);
    let (_, v) = search(&c, eq("dealname", "EQ", json!("beta"))).await;
    assert_eq!(v["total"], json!(0));
}

#[tokio::test]
async fn operators_and_case_rules() {
    let mut cfg = config();
    cfg.search_per_second = 1000;
    let c = start_with(cfg).await;
    for (name, amount, stage) in [
        ("Big Deal", "500", "closedwon"),
        ("small deal", "20", "closedlost"),
        ("Other", "100", "closedwon"),
    ] {
        let mut p = deal_props(name);
        p["amount"] = json!(amount);
        p["dealstage"] = json!(stage);
        c.create("deals", p).await;
    }
    let total = |v: &Value| v["total"].as_u64().unwrap();
    assert_eq!(
        total(&search(&c, eq("amount", "GT", json!("50"))).await.1),
        2
    );
    assert_eq!(
        total(&search(&c, eq("amount", "LTE", json!(100))).await.1),
        2
    );
    assert_eq!(total(&search(&c, json!({"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "BETWEEN", "value": "20", "highValue": "100"}]}]})).await.1), 2);
    // contract §2.5: enumeration values are case-sensitive; strings are not.
    assert_eq!(
        total(
            &search(&c, eq("dealstage", "EQ", json!("closedwon")))
                .await
                .1
        ),
        2
    );
    assert_eq!(
        total(
            &search(&c, eq("dealstage", "EQ", json!("CLOSEDWON")))
                .await
                .1
        ),
        0
    );
    assert_eq!(
        total(&search(&c, eq("dealname", "EQ", json!("OTHER"))).await.1),
        1
    );
    // contract §2.5: IN on strings needs lowercase values.
    let in_f = |vals: Value| json!({"filterGroups": [{"filters": [{"propertyName": "dealname", "operator": "IN", "values": vals}]}]});
    assert_eq!(total(&search(&c, in_f(json!(["other"]))).await.1), 1);
    assert_eq!(total(&search(&c, in_f(json!(["Other"]))).await.1), 0);
    assert_eq!(
        total(
            &search(&c, eq("dealname", "CONTAINS_TOKEN", json!("deal")))
                .await
                .1
        ),
        2
    );
    assert_eq!(
        total(
            &search(&c, eq("dealname", "NOT_CONTAINS_TOKEN", json!("deal")))
                .await
                .1
        ),
        1
    );
    assert_eq!(total(&search(&c, json!({"filterGroups": [{"filters": [{"propertyName": "closedate", "operator": "NOT_HAS_PROPERTY"}]}]})).await.1), 3);
    // OR across groups.
    let (_, v) = search(&c, json!({"filterGroups": [
        {"filters": [{"propertyName": "amount", "operator": "EQ", "value": "20"}]},
        {"filters": [{"propertyName": "amount", "operator": "EQ", "value": "500"}]}],
        "sorts": [{"propertyName": "amount", "direction": "DESCENDING"}], "properties": ["amount"]})).await;
    assert_eq!(v["total"], json!(2));
    assert_eq!(v["results"][0]["properties"]["amount"], json!("500"));
    // Paging: after is an offset string.
    let (_, v) = search(&c, json!({"limit": 2})).await;
    assert_eq!(v["paging"]["next"]["after"], json!("2"));
    let (_, v) = search(&c, json!({"limit": 2, "after": "2"})).await;
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert!(v.get("paging").is_none());
}

#[tokio::test]
async fn limits_are_400() {
    let mut cfg = config();
    cfg.search_per_second = 1000;
    let c = start_with(cfg).await;
    // contract §2.5: limit ≤ 200.
    assert_eq!(search(&c, json!({"limit": 201})).await.0, 400);
    // contract §8.4: paging past 10,000 results is a 400.
    let (s, v) = search(&c, json!({"limit": 100, "after": "9950"})).await;
    assert_eq!(s, 400);
    assert_eq!(v["category"], json!("VALIDATION_ERROR"));
    // contract §2.5: ≤5 groups, ≤6 filters per group, ≤18 filters.
    let f = json!({"propertyName": "amount", "operator": "HAS_PROPERTY"});
    let groups: Vec<_> = (0..6).map(|_| json!({"filters": [f.clone()]})).collect();
    assert_eq!(search(&c, json!({"filterGroups": groups})).await.0, 400);
    let filters: Vec<_> = (0..7).map(|_| f.clone()).collect();
    assert_eq!(
        search(&c, json!({"filterGroups": [{"filters": filters}]}))
            .await
            .0,
        400
    );
    let four: Vec<_> = (0..4)
        .map(|_| json!({"filters": (0..5).map(|_| f.clone()).collect::<Vec<_>>()}))
        .collect();
    assert_eq!(search(&c, json!({"filterGroups": four})).await.0, 400);
    assert_eq!(search(&c, json!({"query": "x".repeat(3001)})).await.0, 400);
    assert_eq!(search(&c, eq("amount", "LIKE", json!("1"))).await.0, 400);
}

#[tokio::test]
async fn associations_pseudo_property() {
    let c = start().await;
    let co = c.create("companies", json!({"name": "c"})).await;
    let d1 = c.create("deals", deal_props("d1")).await;
    c.create("deals", deal_props("d2")).await;
    c.put(
        &format!("/crm/objects/2026-09/deals/{d1}/associations/default/companies/{co}"),
        None,
    )
    .await;
    // contract §2.5: associations.{type} pseudo-properties search by association.
    let (s, v) = search(&c, eq("associations.company", "EQ", json!(co))).await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], json!(1));
    assert_eq!(v["results"][0]["id"], json!(d1));
}

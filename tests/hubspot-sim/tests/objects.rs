//! Objects CRUD, properties and error shapes (contract §1.1, §1.3, §1.5, §2.2-§2.4, §4, §6).
mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn create_returns_201_with_numeric_string_id_and_string_values() {
    let c = start().await;
    // contract §4: create returns 201; §6: values are strings, ids are numeric strings.
    let (s, v) = c
        .post("/crm/objects/2026-09/deals", json!({"properties": {"dealname": "d", "dealstage": "appointmentscheduled", "pipeline": "default", "amount": 100}}))
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    assert!(id.parse::<u64>().is_ok());
    assert_eq!(v["properties"]["amount"], json!("100"));
    assert_eq!(v["properties"]["hs_object_id"], json!(id));
    assert!(v["createdAt"].as_str().unwrap().ends_with('Z'));
    // Legacy v3 path, same handler.
    let (s, v) = c
        .get(&format!(
            "/crm/v3/objects/deals/{id}?properties=amount,dealname"
        ))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["properties"]["dealname"], json!("d"));
    assert_eq!(v["archived"], json!(false));
    // objectTypeId and singular name address the same type (contract §9).
    assert_eq!(
        c.get(&format!("/crm/objects/2026-09/0-3/{id}")).await.0,
        200
    );
    assert_eq!(
        c.get(&format!("/crm/objects/2026-09/deal/{id}")).await.0,
        200
    );
}

#[tokio::test]
async fn missing_or_wrong_token_gives_401_shape() {
    let c = start().await;
    // contract §4 / §6: 401 INVALID_AUTHENTICATION.
    let r = c
        .http
        .get(c.url("/crm/objects/2026-09/deals"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["category"], json!("INVALID_AUTHENTICATION"));
    assert_eq!(v["status"], json!("error"));
    assert!(v["correlationId"].as_str().unwrap().len() == 36);
    let r = c
        .http
        .get(c.url("/crm/objects/2026-09/deals"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn unknown_property_bad_option_and_non_midnight_date_are_400() {
    let c = start().await;
    // contract §9: unknown property -> PROPERTY_DOESNT_EXIST with context.propertyName.
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/companies",
            json!({"properties": {"name": "x", "nope": "1"}}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["category"], json!("VALIDATION_ERROR"));
    assert_eq!(v["errors"][0]["code"], json!("PROPERTY_DOESNT_EXIST"));
    assert_eq!(v["errors"][0]["context"]["propertyName"], json!(["nope"]));
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Property values were not valid")
    );
    // Enumeration options are case-sensitive.
    let (s, v) = c.post("/crm/objects/2026-09/deals", json!({"properties": {"dealname": "d", "dealstage": "ClosedWon", "pipeline": "default"}})).await;
    assert_eq!(s, 400);
    assert_eq!(v["errors"][0]["code"], json!("INVALID_OPTION"));
    // contract §1.3 / §8.11: date properties must be midnight UTC.
    let (s, v) = c.post("/crm/objects/2026-09/line_items", json!({"properties": {"name": "li", "hs_recurring_billing_start_date": "1563441421000"}})).await;
    assert_eq!(s, 400);
    assert_eq!(v["errors"][0]["code"], json!("INVALID_DATE"));
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not midnight")
    );
    let (s, v) = c.post("/crm/objects/2026-09/line_items", json!({"properties": {"name": "li", "hs_recurring_billing_start_date": "1563408000000"}})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["properties"]["hs_recurring_billing_start_date"],
        json!("2019-07-18")
    );
}

#[tokio::test]
async fn required_properties_per_object() {
    let c = start().await;
    // contract §1.5: deals need dealname, dealstage, pipeline.
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/deals",
            json!({"properties": {"dealname": "x"}}),
        )
        .await;
    assert_eq!(s, 400);
    let codes: Vec<_> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["context"]["propertyName"][0].clone())
        .collect();
    assert!(codes.contains(&json!("dealstage")) && codes.contains(&json!("pipeline")));
    // Companies need domain or name.
    assert_eq!(
        c.post(
            "/crm/objects/2026-09/companies",
            json!({"properties": {"city": "x"}})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        c.post(
            "/crm/objects/2026-09/companies",
            json!({"properties": {"domain": "x.com"}})
        )
        .await
        .0,
        201
    );
    // contract §1.5: companies are not deduplicated by domain.
    assert_eq!(
        c.post(
            "/crm/objects/2026-09/companies",
            json!({"properties": {"domain": "x.com"}})
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn unique_property_enforced_and_read_by_id_property() {
    let c = start().await;
    c.unique_property("deals", "mkt_subscription_uid").await;
    let mut p = deal_props("a");
    p["mkt_subscription_uid"] = json!("uid-1");
    let id = c.create("deals", p.clone()).await;
    // contract §2.4: a second record with the same unique value is rejected ("already has that value").
    let (s, v) = c
        .post("/crm/objects/2026-09/deals", json!({"properties": p}))
        .await;
    assert_eq!(s, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("already has that value"),
        "{v}"
    );
    // contract §2.3: read by idProperty.
    let (s, v) = c
        .get("/crm/objects/2026-09/deals/uid-1?idProperty=mkt_subscription_uid")
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["id"], json!(id));
    // Update of another deal to the taken value is rejected too.
    let other = c.create("deals", deal_props("b")).await;
    let (s, _) = c
        .patch(
            &format!("/crm/objects/2026-09/deals/{other}"),
            json!({"properties": {"mkt_subscription_uid": "uid-1"}}),
        )
        .await;
    assert_eq!(s, 400);
    // contract §2.3: idProperty must be unique.
    let (s, v) = c
        .get("/crm/objects/2026-09/deals/a?idProperty=dealname")
        .await;
    assert_eq!(s, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Unable to perform update/upsert by non-unique 0-3 property dealname")
    );
}

#[tokio::test]
async fn unique_flag_only_at_creation_and_limited_to_ten() {
    let c = start().await;
    c.unique_property("companies", "mkt_tenant_id").await;
    // contract §2.2: hasUniqueValue can't be changed later.
    let (s, _) = c
        .patch(
            "/crm/properties/2026-09/companies/mkt_tenant_id",
            json!({"hasUniqueValue": false}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, v) = c
        .get("/crm/properties/2026-09/companies/mkt_tenant_id")
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["hasUniqueValue"], json!(true));
    for i in 1..10 {
        c.unique_property("companies", &format!("u{i}")).await;
    }
    // contract §2.2: at most 10 unique properties per object.
    let (s, _) = c.post("/crm/properties/2026-09/companies", json!({"name": "u10", "label": "u", "type": "string", "fieldType": "text", "groupName": "information", "hasUniqueValue": true})).await;
    assert_eq!(s, 400);
    // Creating an existing property is a conflict.
    let (s, _) = c.post("/crm/properties/2026-09/companies", json!({"name": "u1", "label": "u", "type": "string", "fieldType": "text", "groupName": "information"})).await;
    assert_eq!(s, 409);
    // hs_status options come from the property definition (contract §1.2).
    let (s, v) = c
        .get("/crm/properties/2026-09/subscriptions/hs_status")
        .await;
    assert_eq!(s, 200);
    let opts: Vec<_> = v["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap().to_string())
        .collect();
    assert!(opts.contains(&"unpaid".to_string()) && opts.contains(&"paused".to_string()));
}

#[tokio::test]
async fn contacts_deduplicate_by_email_with_409() {
    let c = start().await;
    let id = c
        .create("contacts", json!({"email": "A@example.com"}))
        .await;
    // contract §2.4: 409 CONFLICT "Contact already exists. Existing ID: N".
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/contacts",
            json!({"properties": {"email": "a@example.com"}}),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(v["category"], json!("CONFLICT"));
    assert_eq!(
        v["message"],
        json!(format!("Contact already exists. Existing ID: {id}"))
    );
}

#[tokio::test]
async fn list_pages_with_after_and_archive_is_204() {
    let c = start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            c.create("companies", json!({"name": format!("c{i}")}))
                .await,
        );
    }
    // contract §6: limit + after; no paging.next on the last page.
    let (s, v) = c.get("/crm/objects/2026-09/companies?limit=2").await;
    assert_eq!(s, 200);
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    let after = v["paging"]["next"]["after"].as_str().unwrap().to_string();
    let (_, v2) = c
        .get(&format!(
            "/crm/objects/2026-09/companies?limit=2&after={after}"
        ))
        .await;
    assert_eq!(v2["results"][0]["id"], json!(ids[2]));
    let (_, v3) = c.get("/crm/objects/2026-09/companies?limit=100").await;
    assert!(v3.get("paging").is_none());
    // contract §4: archive returns 204; the object is then 404 with OBJECT_NOT_FOUND.
    assert_eq!(
        c.delete(&format!("/crm/objects/2026-09/companies/{}", ids[0]))
            .await,
        204
    );
    let (s, v) = c
        .get(&format!("/crm/objects/2026-09/companies/{}", ids[0]))
        .await;
    assert_eq!(s, 404);
    assert_eq!(v["category"], json!("OBJECT_NOT_FOUND"));
    let (s, v) = c
        .get(&format!(
            "/crm/objects/2026-09/companies/{}?archived=true",
            ids[0]
        ))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["archived"], json!(true));
}

#[tokio::test]
async fn payments_and_invoices_are_read_only() {
    let c = start().await;
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/commerce_payments",
            json!({"properties": {"hs_initial_amount": "1", "hs_initiated_date": "1"}}),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(v["category"], json!("MISSING_SCOPES"));
    assert_eq!(c.get("/crm/objects/2026-09/0-101").await.0, 200);
}

#[tokio::test]
async fn properties_with_history_and_associations_on_read() {
    let c = start().await;
    let co = c.create("companies", json!({"name": "v1"})).await;
    c.patch(
        &format!("/crm/objects/2026-09/companies/{co}"),
        json!({"properties": {"name": "v2"}}),
    )
    .await;
    let (s, v) = c
        .get(&format!(
            "/crm/objects/2026-09/companies/{co}?propertiesWithHistory=name"
        ))
        .await;
    assert_eq!(s, 200);
    let hist = v["propertiesWithHistory"]["name"].as_array().unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0]["value"], json!("v2"));
    let deal = c.create("deals", deal_props("d")).await;
    c.put(
        &format!("/crm/objects/2026-09/deals/{deal}/associations/default/companies/{co}"),
        None,
    )
    .await;
    let (_, v) = c
        .get(&format!(
            "/crm/objects/2026-09/deals/{deal}?associations=companies"
        ))
        .await;
    assert_eq!(
        v["associations"]["companies"]["results"][0]["id"],
        json!(co)
    );
}

#[tokio::test]
async fn unique_properties_only_on_documented_types() {
    let c = start().await;
    // contract §2.2: unique properties are documented for companies, deals and contacts only.
    let (s, _) = c
        .post(
            "/crm/properties/2026-09/line_items",
            json!({"name": "mkt_uid", "label": "u", "type": "string",
            "fieldType": "text", "groupName": "information", "hasUniqueValue": true}),
        )
        .await;
    assert_eq!(s, 400);
    // A plain custom property is fine (contract §2.6: line_items.mkt_subscription_uid is plain).
    let (s, _) = c
        .post(
            "/crm/properties/2026-09/line_items",
            json!({"name": "mkt_subscription_uid", "label": "u", "type": "string",
            "fieldType": "text", "groupName": "information"}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        c.post(
            "/crm/objects/2026-09/line_items",
            json!({"properties": {"name": "x", "mkt_subscription_uid": "u"}})
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn line_items_copy_products_and_reject_negative_prices() {
    let c = start().await;
    let product = c.create("products", json!({"name": "Gold plan", "price": "30", "hs_sku": "gold", "recurringbillingfrequency": "monthly"})).await;
    // contract §1.3: create with hs_product_id copies the product.
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/line_items",
            json!({"properties": {"hs_product_id": product, "quantity": "2"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["properties"]["name"], json!("Gold plan"));
    assert_eq!(v["properties"]["price"], json!("30"));
    assert_eq!(
        v["properties"]["recurringbillingfrequency"],
        json!("monthly")
    );
    assert_eq!(
        c.post(
            "/crm/objects/2026-09/line_items",
            json!({"properties": {"hs_product_id": "123"}})
        )
        .await
        .0,
        400
    );
    // contract §1.3: price must not be negative.
    assert_eq!(
        c.post(
            "/crm/objects/2026-09/line_items",
            json!({"properties": {"name": "x", "price": "-1"}})
        )
        .await
        .0,
        400
    );
    // Properties batch read.
    let (s, v) = c
        .post(
            "/crm/properties/2026-09/line_items/batch/read",
            json!({"inputs": [{"name": "price"}, {"name": "nope"}]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
}

//! Commerce subscriptions (contract §1.2, §9 "Commerce subscription state machine", "Billing clock").
mod common;

use common::*;
use hubspot_sim::ObjectType;
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;

/// Company + line item + subscription associated to both; returns (company, subscription).
async fn setup(c: &Ctx) -> (String, String) {
    let co = c.create("companies", json!({"name": "tenant"})).await;
    let li = c.create("line_items", json!({"name": "plan", "price": "25", "quantity": "2", "recurringbillingfrequency": "monthly"})).await;
    let (s, v) = c
        .post("/crm/objects/2026-09/subscriptions", json!({"properties": {"hs_name": "s", "hs_currency_code": "EUR",
            "hs_recurring_billing_frequency": "monthly", "hs_collection_process": "manual_payments"},
            "associations": [
                {"to": {"id": co}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 297}]},
                {"to": {"id": li}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 301}]}]}))
        .await;
    assert_eq!(s, 201, "{v}");
    (co, v["id"].as_str().unwrap().to_string())
}

async fn status(c: &Ctx, sub: &str) -> Value {
    let (_, v) = c.get(&format!("/crm/objects/2026-09/subscriptions/{sub}?properties=hs_status,hs_next_payment_due_date,hs_last_payment_amount,hs_invoice_creation")).await;
    v["properties"].clone()
}

#[tokio::test]
async fn new_subscription_is_non_billable_and_billable_patch_is_restricted() {
    let c = start().await;
    let (_, sub) = setup(&c).await;
    // contract §1.2: hs_invoice_creation defaults to "off".
    assert_eq!(status(&c, &sub).await["hs_invoice_creation"], json!("off"));
    // Non-billable: anything may change, and it may be deleted in any state.
    let path = format!("/crm/objects/2026-09/subscriptions/{sub}");
    assert_eq!(
        c.patch(&path, json!({"properties": {"hs_currency_code": "USD"}}))
            .await
            .0,
        200
    );
    let (s, v) = c
        .patch(&path, json!({"properties": {"hs_invoice_creation": "on"}}))
        .await;
    assert_eq!(s, 200, "{v}");
    // contract §2.6 step 5: repeating the PATCH is harmless.
    assert_eq!(
        c.patch(&path, json!({"properties": {"hs_invoice_creation": "on"}}))
            .await
            .0,
        200
    );
    // contract §1.2: once billable only the listed properties may change.
    let (s, v) = c
        .patch(&path, json!({"properties": {"hs_currency_code": "EUR"}}))
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["category"], json!("VALIDATION_ERROR"));
    assert_eq!(
        c.patch(
            &path,
            json!({"properties": {"hs_name": "renamed", "hs_recipient_billing_email": "x@y.z"}})
        )
        .await
        .0,
        200
    );
    // A billable, active subscription can't be deleted; once canceled it can.
    assert_eq!(c.delete(&path).await, 400);
    let (s, _) = c
        .post(
            &format!("/payments-subscriptions/v1/subscriptions/crm/{sub}/cancel"),
            json!(null),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(c.delete(&path).await, 204);
}

#[tokio::test]
async fn lifecycle_pause_unpause_cancel() {
    let c = start().await;
    let (_, sub) = setup(&c).await;
    let base = format!("/payments-subscriptions/v1/subscriptions/crm/{sub}");
    assert_eq!(
        c.post(&format!("{base}/pause"), json!({"pauseReason": "admin"}))
            .await
            .0,
        204
    );
    assert_eq!(status(&c, &sub).await["hs_status"], json!("paused"));
    // contract §1.2: proposedNextBillingDate is required.
    assert_eq!(c.post(&format!("{base}/unpause"), json!({})).await.0, 400);
    let when = c.sim.admin().now_ms() + 5 * DAY;
    assert_eq!(
        c.post(
            &format!("{base}/unpause"),
            json!({"proposedNextBillingDate": when})
        )
        .await
        .0,
        204
    );
    assert_eq!(status(&c, &sub).await["hs_status"], json!("active"));
    assert_eq!(c.post(&format!("{base}/cancel"), json!(null)).await.0, 204);
    assert_eq!(status(&c, &sub).await["hs_status"], json!("canceled"));
    // contract §9: lifecycle calls on terminal subscriptions give a 400.
    assert_eq!(
        c.post(&format!("{base}/pause"), json!({"pauseReason": "x"}))
            .await
            .0,
        400
    );
    assert_eq!(c.post(&format!("{base}/cancel"), json!(null)).await.0, 400);
    assert_eq!(
        c.post(
            "/payments-subscriptions/v1/subscriptions/crm/1/cancel",
            json!(null)
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn billing_clock_payment_failure_and_recovery() {
    let c = start().await;
    let (co, sub) = setup(&c).await;
    let path = format!("/crm/objects/2026-09/subscriptions/{sub}");
    c.patch(&path, json!({"properties": {"hs_invoice_creation": "on"}}))
        .await;
    let admin = c.sim.admin();
    // First cycle is due today: advancing the clock bills it.
    admin.advance_clock(1000);
    let p = status(&c, &sub).await;
    assert_eq!(p["hs_status"], json!("active"));
    assert_eq!(p["hs_last_payment_amount"], json!("50"));
    assert_eq!(admin.objects(ObjectType::CommercePayments).len(), 1);
    assert_eq!(admin.objects(ObjectType::Invoices).len(), 1);
    // The tenant's payment fails: → past_due, then unpaid on the retry.
    let co_id: u64 = co.parse().unwrap();
    admin.set_company_payments_failing(co_id, true);
    admin.advance_clock(31 * DAY);
    assert_eq!(status(&c, &sub).await["hs_status"], json!("past_due"));
    let payments = admin.objects(ObjectType::CommercePayments);
    assert_eq!(
        payments.last().unwrap()["properties"]["hs_latest_status"],
        json!("failed")
    );
    admin.advance_clock(4 * DAY);
    assert_eq!(status(&c, &sub).await["hs_status"], json!("unpaid"));
    // Recovery collects the outstanding payment: → active.
    admin.set_company_payments_failing(co_id, false);
    assert_eq!(status(&c, &sub).await["hs_status"], json!("active"));
    let payments = admin.objects(ObjectType::CommercePayments);
    assert_eq!(
        payments.last().unwrap()["properties"]["hs_latest_status"],
        json!("succeeded")
    );
    // The payment is associated with the subscription (contract §1.7: 393).
    let pay_id: u64 = payments.last().unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        admin.associated(
            ObjectType::CommercePayments,
            pay_id,
            ObjectType::Subscriptions
        ),
        vec![sub.parse::<u64>().unwrap()]
    );
}

#[tokio::test]
async fn payments_not_set_up_rejects_subscription_create() {
    let mut cfg = config();
    cfg.payments_enabled = false;
    let c = start_with(cfg).await;
    // contract §1.2 prerequisite / §9 "payments not set up".
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/subscriptions",
            json!({"properties": {"hs_name": "s"}}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["subCategory"], json!("PAYMENTS_NOT_SET_UP"));
    c.sim.admin().set_payments_enabled(true);
    assert_eq!(
        c.post(
            "/crm/objects/2026-09/subscriptions",
            json!({"properties": {"hs_name": "s"}})
        )
        .await
        .0,
        201
    );
    // contract §1.2: hs_name is the only required property.
    assert_eq!(
        c.post(
            "/crm/objects/2026-09/subscriptions",
            json!({"properties": {}})
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn subscription_expires_at_term_end_and_scheduled_starts_later() {
    let c = start().await;
    let now = c.sim.admin().now_ms();
    let start_ms = now - now.rem_euclid(DAY) + 3 * DAY;
    let end_ms = start_ms + 40 * DAY;
    let (s, v) = c
        .post(
            "/crm/objects/2026-09/subscriptions",
            json!({"properties": {"hs_name": "s",
            "hs_recurring_billing_start_date": start_ms.to_string(),
            "hs_recurring_billing_end_date": end_ms.to_string()}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let sub = v["id"].as_str().unwrap().to_string();
    // contract §9: scheduled → active once the start date is reached; → expired at term end.
    assert_eq!(status(&c, &sub).await["hs_status"], json!("scheduled"));
    c.patch(
        &format!("/crm/objects/2026-09/subscriptions/{sub}"),
        json!({"properties": {"hs_invoice_creation": "on"}}),
    )
    .await;
    c.sim.admin().advance_clock(3 * DAY);
    assert_eq!(status(&c, &sub).await["hs_status"], json!("active"));
    c.sim.admin().advance_clock(41 * DAY);
    assert_eq!(status(&c, &sub).await["hs_status"], json!("expired"));
    // Expired billable subscriptions may be deleted.
    assert_eq!(
        c.delete(&format!("/crm/objects/2026-09/subscriptions/{sub}"))
            .await,
        204
    );
}

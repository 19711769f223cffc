//! The tenant-level HubSpot record against the simulator over real HTTP: the company upserted by
//! `mkt_tenant_id` and the billing contact upserted by `email` and associated with it
//! (contract §1.5, §1.7, §1.8, §2.3), idempotent and convergent under faults (§8.10).
mod billing_support;

use billing_support::*;
use hubspot_sim::{ObjectType, RunningSimulator};
use marketplace_operator::billing::{
    CompanyRecord, CompanyRepair, CompanyRequest, ContactRequest, HubSpotClient, HubSpotError, Tier,
};
use serde_json::{Value, json};

const COMPANY_UPSERT: &str = "/companies/batch/upsert";
const CONTACT_UPSERT: &str = "/contacts/batch/upsert";
const CONTACT_COMPANY_PUT: &str = "/associations/companies/";

/// contract §1.7: the contact's primary company (1) and the unlabeled type (279).
const PRIMARY_AND_UNLABELED: [u32; 2] = [1, 279];

async fn setup() -> (RunningSimulator, HubSpotClient) {
    let sim = start(sim_config()).await;
    let c = ready(&sim, Tier::Professional).await;
    (sim, c)
}

/// A client that gives up after two attempts, so a fault can outlast one call.
async fn impatient(sim: &RunningSimulator) -> HubSpotClient {
    let mut cfg = config(sim, Tier::Professional);
    cfg.retry.max_attempts = 2;
    let c = HubSpotClient::new(cfg).expect("client");
    c.bootstrap().await.expect("bootstrap");
    c
}

fn requests(sim: &RunningSimulator) -> u64 {
    sim.admin().counters().total_requests
}

fn num(v: &Value) -> u64 {
    v["id"].as_str().and_then(|s| s.parse().ok()).expect("id")
}

/// Object counts of the types `ensure_company` writes.
fn counts(sim: &RunningSimulator) -> (usize, usize) {
    (
        live(sim, ObjectType::Companies).len(),
        live(sim, ObjectType::Contacts).len(),
    )
}

/// Exactly one company for the tenant and one contact for the email, associated as the
/// contact's primary company; returns their ids.
fn assert_one_tenant_record(sim: &RunningSimulator, req: &CompanyRequest) -> (u64, u64) {
    let companies = companies_of(sim, &req.tenant_id);
    assert_eq!(companies.len(), 1, "companies: {companies:#?}");
    let email = &req.billing_contact.as_ref().expect("contact").email;
    let contacts = contacts_with_email(sim, email);
    assert_eq!(contacts.len(), 1, "contacts: {contacts:#?}");
    let (company, contact) = (num(&companies[0]), num(&contacts[0]));
    assert_eq!(
        contact_company_types(sim, contact, company),
        PRIMARY_AND_UNLABELED
    );
    (company, contact)
}

/// A property as text; absent, null and empty are all "" (HubSpot clears with "").
fn text<'a>(v: &'a Value, name: &str) -> &'a str {
    v["properties"][name].as_str().unwrap_or_default()
}

fn record_ids(r: &CompanyRecord) -> (u64, u64) {
    (
        r.company_id.parse().unwrap(),
        r.contact_id
            .as_deref()
            .expect("contact id")
            .parse()
            .unwrap(),
    )
}

#[tokio::test]
async fn creates_company_contact_and_association_then_changes_nothing() {
    let (sim, c) = setup().await;
    let req = company_request(1);
    let before = requests(&sim);
    let r = c.ensure_company(&req).await.expect("ensure");
    // First call on this portal: 400 PROPERTY_DOESNT_EXIST, 2 property creates, company upsert,
    // contact read (404), contact upsert, association PUT.
    assert_eq!(requests(&sim) - before, 7, "first call on a fresh portal");
    assert!(r.repairs.is_empty(), "{:?}", r.repairs);
    assert_eq!(assert_one_tenant_record(&sim, &req), record_ids(&r));
    let company = companies_of(&sim, &req.tenant_id).remove(0);
    assert_eq!(company["properties"]["name"], json!("Tenant 1"));
    assert_eq!(company["properties"]["mkt_segment"], json!("smb"));
    assert_eq!(company["properties"]["mkt_region"], json!("eu-west"));
    let contact = live(&sim, ObjectType::Contacts).remove(0);
    assert_eq!(
        contact["properties"]["email"],
        json!("billing@tenant-1.example")
    );
    assert_eq!(contact["properties"]["firstname"], json!("Ada"));
    assert_eq!(contact["properties"]["lastname"], json!("Lovelace"));

    // Repeat: same ids, nothing created, two calls (company upsert, contact read).
    let state = counts(&sim);
    let before = requests(&sim);
    let again = c.ensure_company(&req).await.expect("again");
    assert_eq!(requests(&sim) - before, 2, "steady-state calls");
    assert_eq!(again, r);
    assert_eq!(counts(&sim), state);
    assert_eq!(counts(&sim), (1, 1));

    // Another tenant on the same portal: the properties exist now.
    let before = requests(&sim);
    let other = c.ensure_company(&company_request(2)).await.expect("other");
    assert_eq!(requests(&sim) - before, 4, "first call for a new tenant");
    assert_ne!(other.company_id, r.company_id);
    assert_eq!(counts(&sim), (2, 2));
}

#[tokio::test]
async fn without_a_contact_only_the_company_is_written() {
    let (sim, c) = setup().await;
    let mut req = company_request(1);
    req.billing_contact = None;
    req.segment = None;
    let r = c.ensure_company(&req).await.expect("ensure");
    assert_eq!(r.contact_id, None);
    assert_eq!(counts(&sim), (1, 0));
    let before = requests(&sim);
    assert_eq!(c.ensure_company(&req).await.expect("again"), r);
    assert_eq!(requests(&sim) - before, 1);
    let company = companies_of(&sim, &req.tenant_id).remove(0);
    assert_eq!(text(&company, "mkt_segment"), "");
}

#[tokio::test]
async fn changes_update_the_company_and_contact_in_place() {
    let (sim, c) = setup().await;
    let mut req = company_request(1);
    let r = c.ensure_company(&req).await.expect("ensure");
    req.name = "Tenant One Ltd".into();
    req.segment = None;
    req.region = Some("us-east".into());
    req.billing_contact = Some(ContactRequest {
        email: "billing@tenant-1.example".into(),
        name: "Ada King Lovelace".into(),
    });
    let changed = c.ensure_company(&req).await.expect("changed");
    assert_eq!(changed.company_id, r.company_id);
    assert_eq!(changed.contact_id, r.contact_id);
    assert!(changed.repairs.is_empty());
    assert_eq!(counts(&sim), (1, 1));
    let company = companies_of(&sim, &req.tenant_id).remove(0);
    assert_eq!(company["properties"]["name"], json!("Tenant One Ltd"));
    assert_eq!(text(&company, "mkt_segment"), "", "cleared");
    assert_eq!(company["properties"]["mkt_region"], json!("us-east"));
    let contact = live(&sim, ObjectType::Contacts).remove(0);
    assert_eq!(contact["properties"]["firstname"], json!("Ada King"));
    assert_eq!(contact["properties"]["lastname"], json!("Lovelace"));
    assert_one_tenant_record(&sim, &req);

    // A new billing e-mail is another contact; the old one keeps its association.
    let old_contact: u64 = r.contact_id.as_deref().unwrap().parse().unwrap();
    req.billing_contact = Some(ContactRequest {
        email: "finance@tenant-1.example".into(),
        name: "Grace Hopper".into(),
    });
    let moved = c.ensure_company(&req).await.expect("new contact");
    assert_ne!(moved.contact_id, r.contact_id);
    assert_eq!(counts(&sim), (1, 2));
    assert_one_tenant_record(&sim, &req);
    let company: u64 = r.company_id.parse().unwrap();
    assert_eq!(
        contact_company_types(&sim, old_contact, company),
        PRIMARY_AND_UNLABELED
    );
}

#[tokio::test]
async fn an_existing_contact_is_reused_and_linked() {
    let (sim, c) = setup().await;
    // The person is already in the CRM (as a lead, say), e-mail in another case.
    let existing = sim
        .admin()
        .create_object(
            ObjectType::Contacts,
            serde_json::Map::from_iter([
                ("email".to_string(), json!("Billing@Tenant-1.example")),
                ("firstname".to_string(), json!("Ada")),
                ("lastname".to_string(), json!("Lovelace")),
            ]),
        )
        .expect("contact");
    let req = company_request(1);
    let r = c.ensure_company(&req).await.expect("ensure");
    assert_eq!(r.contact_id, Some(existing.to_string()));
    assert_eq!(
        r.repairs,
        vec![CompanyRepair::LinkedExistingContact {
            contact_id: existing.to_string()
        }]
    );
    assert_eq!(assert_one_tenant_record(&sim, &req), record_ids(&r));
    let again = c.ensure_company(&req).await.expect("again");
    assert!(again.repairs.is_empty());
}

#[tokio::test]
async fn lost_company_upsert_response_converges_to_one_company() {
    let (sim, c) = setup().await;
    c.ensure_company(&company_request(2))
        .await
        .expect("warm the portal");
    let req = company_request(1);
    // Committed, then a 5xx: the upsert is repeated in-line and finds the company.
    sim.admin().add_fault(fault(
        commit_then_fail(500),
        "POST",
        COMPANY_UPSERT,
        Some(1),
    ));
    let retries = c.stats().retries;
    let r = c.ensure_company(&req).await.expect("ensure");
    assert!(c.stats().retries > retries, "the upsert was retried");
    assert_eq!(assert_one_tenant_record(&sim, &req), record_ids(&r));
    assert_eq!(counts(&sim), (2, 2));

    // Failures that outlast one call: the call fails, the next converges.
    let req = company_request(3);
    let c = impatient(&sim).await;
    sim.admin().add_fault(fault(
        commit_then_fail(503),
        "POST",
        COMPANY_UPSERT,
        Some(2),
    ));
    let err = c.ensure_company(&req).await.expect_err("5xx twice");
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        companies_of(&sim, &req.tenant_id).len(),
        1,
        "committed once"
    );
    assert!(contacts_with_email(&sim, "billing@tenant-3.example").is_empty());
    let r = c.ensure_company(&req).await.expect("second call");
    assert_eq!(assert_one_tenant_record(&sim, &req), record_ids(&r));
    assert!(r.repairs.is_empty());
    assert_eq!(counts(&sim), (3, 3));
}

#[tokio::test]
async fn failures_after_the_company_converge_on_the_next_call() {
    let (sim, c) = setup().await;
    let c2 = impatient(&sim).await;
    c.ensure_company(&company_request(2))
        .await
        .expect("warm the portal");

    // The contact upsert commits twice but never answers.
    let req = company_request(1);
    sim.admin().add_fault(fault(
        commit_then_fail(500),
        "POST",
        CONTACT_UPSERT,
        Some(2),
    ));
    let err = c2.ensure_company(&req).await.expect_err("contact upsert");
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        contacts_with_email(&sim, "billing@tenant-1.example").len(),
        1
    );
    // The association PUT fails as well, after the contact is in place.
    sim.admin()
        .add_fault(fault(fails_with(500), "PUT", CONTACT_COMPANY_PUT, Some(2)));
    let err = c2.ensure_company(&req).await.expect_err("association");
    assert!(err.is_retryable(), "{err}");

    // Next call: the contact is found by e-mail and linked; nothing is created.
    let r = c.ensure_company(&req).await.expect("converges");
    assert_eq!(assert_one_tenant_record(&sim, &req), record_ids(&r));
    assert_eq!(
        r.repairs,
        vec![CompanyRepair::LinkedExistingContact {
            contact_id: r.contact_id.clone().unwrap()
        }]
    );
    assert_eq!(counts(&sim), (2, 2));
    let again = c.ensure_company(&req).await.expect("again");
    assert!(again.repairs.is_empty());
    assert_eq!(again.contact_id, r.contact_id);
}

#[tokio::test]
async fn the_billing_record_uses_the_same_company_and_keeps_its_properties() {
    let (sim, c) = setup().await;
    let tenant = c.ensure_company(&company_request(1)).await.expect("tenant");
    let billing = c
        .ensure_billing_record(&request(1))
        .await
        .expect("billing record");
    assert_eq!(billing.company_id, tenant.company_id);
    assert_eq!(counts(&sim).0, 1);
    let company = companies_of(&sim, &request(1).tenant_id).remove(0);
    assert_eq!(company["properties"]["mkt_segment"], json!("smb"));
    assert_eq!(company["properties"]["mkt_region"], json!("eu-west"));
    assert_one_record(&sim, &request(1).subscription_uid);
}

/// Makes one field of a request invalid.
type Spoil = fn(&mut CompanyRequest);

#[tokio::test]
async fn invalid_input_is_refused_before_any_call() {
    let (sim, c) = setup().await;
    let before = (requests(&sim), c.stats().requests);
    let cases: [(&str, Spoil); 5] = [
        ("tenant_id", |r| r.tenant_id = "  ".into()),
        ("name", |r| r.name = String::new()),
        ("segment", |r| r.segment = Some(String::new())),
        ("billing_contact.email", |r| {
            r.billing_contact.as_mut().unwrap().email = "ada.example.com".into()
        }),
        ("billing_contact.name", |r| {
            r.billing_contact.as_mut().unwrap().name = " ".into()
        }),
    ];
    for (field, spoil) in cases {
        let mut req = company_request(1);
        spoil(&mut req);
        match c.ensure_company(&req).await {
            Err(HubSpotError::Invalid(m)) => assert!(m.contains(field), "{field}: {m}"),
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }
    for bad in [
        "ada@",
        "@x.io",
        "a b@x.io",
        "ada@x",
        "a@b@c.io",
        "ada@x..io",
    ] {
        let mut req = company_request(1);
        req.billing_contact.as_mut().unwrap().email = bad.into();
        let err = c.ensure_company(&req).await.expect_err(bad);
        assert_eq!(err.category(), "invalid", "{bad}: {err}");
    }
    assert_eq!((requests(&sim), c.stats().requests), before);
    assert_eq!(counts(&sim), (0, 0));
}

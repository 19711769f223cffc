//! With a state file the portal survives a restart: the same records, properties, associations
//! and counters, and new ids keep counting up from where they stopped.
mod common;

use common::start_with;
use hubspot_sim::{SimConfig, SimError, Simulator};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A state file path of its own for one test, removed (with its folder) when dropped.
struct StateDir(PathBuf);

impl StateDir {
    fn new(test: &str) -> StateDir {
        let dir = std::env::temp_dir().join(format!(
            "hubspot-sim-{test}-{}-{}",
            std::process::id(),
            hubspot_sim::clock::wall_ms()
        ));
        std::fs::create_dir_all(&dir).expect("create the state folder");
        StateDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("hubspot-sim.json")
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(state_file: &Path) -> SimConfig {
    SimConfig {
        state_file: Some(state_file.to_path_buf()),
        // Nothing listens there: events are queued and numbered, never delivered.
        webhook_url: Some("http://127.0.0.1:9/webhooks".into()),
        // Long enough that only the save at shutdown can have written the file.
        state_save_interval_ms: 60_000,
        ..common::config()
    }
}

#[tokio::test]
async fn a_restarted_simulator_finds_the_same_portal() {
    let dir = StateDir::new("restart");
    let first = start_with(config(&dir.file())).await;
    first.unique_property("companies", "mkt_tenant_id").await;
    let company = first
        .create(
            "companies",
            json!({"name": "Acme", "mkt_tenant_id": "acme"}),
        )
        .await;
    let (s, sub) = first
        .post(
            "/crm/objects/2026-09/subscriptions",
            json!({"properties": {"hs_name": "Route optimization"},
                   "associations": [{"to": {"id": company},
                                     "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 297}]}]}),
        )
        .await;
    assert_eq!(s, 201, "{sub}");
    let sub = sub["id"].as_str().expect("id").to_string();
    let gone = first
        .create("contacts", json!({"email": "gone@example.com"}))
        .await;
    assert_eq!(
        first
            .delete(&format!("/crm/objects/2026-09/contacts/{gone}"))
            .await,
        204
    );
    let (s, _) = first
        .patch(
            &format!("/crm/objects/2026-09/companies/{company}"),
            json!({"properties": {"name": "Acme Logistics"}}),
        )
        .await;
    assert_eq!(s, 200);
    let before = first.sim.admin().counters();
    let clock_before = first.sim.admin().now_ms();
    let events_before = first.sim.admin().with_state(|st| st.webhooks.next_event_id);
    assert!(events_before > 0, "the writes emitted webhook events");
    first.sim.shutdown().await.expect("shutdown");
    assert!(dir.file().exists(), "the shutdown saved the state");

    let second = start_with(config(&dir.file())).await;
    let (s, v) = second
        .get("/crm/objects/2026-09/companies/acme?idProperty=mkt_tenant_id&propertiesWithHistory=name")
        .await;
    assert_eq!(s, 200, "the unique property and its value are back: {v}");
    assert_eq!(v["id"], json!(company));
    assert_eq!(v["properties"]["name"], "Acme Logistics");
    let history: Vec<&str> = v["propertiesWithHistory"]["name"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["value"].as_str())
        .collect();
    assert_eq!(history, ["Acme Logistics", "Acme"]);
    let (s, v) = second
        .get(&format!(
            "/crm/objects/2026-09/subscriptions/{sub}?associations=companies&properties=hs_name"
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["associations"]["companies"]["results"][0]["id"],
        json!(company)
    );
    assert_eq!(v["properties"]["hs_name"], "Route optimization");
    let (s, _) = second
        .get(&format!("/crm/objects/2026-09/contacts/{gone}"))
        .await;
    assert_eq!(s, 404, "an archived record stays archived");
    let (s, v) = second
        .post(
            "/crm/objects/2026-09/companies/search",
            json!({"filterGroups": [{"filters": [{"propertyName": "mkt_tenant_id", "operator": "EQ", "value": "acme"}]}]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], 1, "the restored records are searchable: {v}");
    let (s, v) = second
        .post(
            "/crm/objects/2026-09/companies",
            json!({"properties": {"name": "Other", "mkt_tenant_id": "acme"}}),
        )
        .await;
    assert_eq!(s, 400, "uniqueness still holds: {v}");
    let newest = [&company, &sub, &gone]
        .iter()
        .map(|id| id.parse::<u64>().expect("numeric id"))
        .max()
        .expect("ids");
    let next = second.create("companies", json!({"name": "Next"})).await;
    assert!(
        next.parse::<u64>().expect("numeric id") > newest,
        "no id is reused: {next} after {newest}"
    );
    let events_after = second
        .sim
        .admin()
        .with_state(|st| st.webhooks.next_event_id);
    assert_eq!(
        events_after, events_before,
        "webhook event ids continue from where they stopped"
    );
    let after = second.sim.admin().counters();
    assert!(after.total_requests > before.total_requests);
    assert_eq!(
        after
            .requests_per_route
            .get("POST /crm/objects/2026-09/{ty}"),
        before
            .requests_per_route
            .get("POST /crm/objects/2026-09/{ty}")
            .map(|n| n + 2)
            .as_ref(),
        "the counters continue"
    );
    assert_eq!(
        second.sim.admin().now_ms(),
        clock_before,
        "a frozen clock stays put"
    );
    second.sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_damaged_state_file_is_refused_with_its_name() {
    let dir = StateDir::new("damaged");
    std::fs::write(dir.file(), b"{\"format\": 1, \"objects\": [").expect("write");
    let err = Simulator::start(config(&dir.file()))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, SimError::State { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&dir.file().display().to_string()),
        "{message}"
    );
}

//! Shared test helpers: a simulator on 127.0.0.1:0 with a frozen clock and no search lag.
#![allow(dead_code)]

use hubspot_sim::{RunningSimulator, SimConfig, Simulator};
use serde_json::Value;

pub const TOKEN: &str = "pat-na1-simulator-token";

pub fn config() -> SimConfig {
    SimConfig {
        clock_frozen: true,
        search_lag_ms: 0,
        ..SimConfig::default()
    }
}

pub struct Ctx {
    pub sim: RunningSimulator,
    pub http: reqwest::Client,
}

pub async fn start_with(cfg: SimConfig) -> Ctx {
    let sim = Simulator::start(cfg).await.expect("start simulator");
    Ctx {
        sim,
        http: reqwest::Client::new(),
    }
}

pub async fn start() -> Ctx {
    start_with(config()).await
}

impl Ctx {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, self.url(path)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("json body")
        };
        (status, v, headers)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (s, v, _) = self.call("GET", path, None).await;
        (s, v)
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, v, _) = self.call("POST", path, Some(body)).await;
        (s, v)
    }
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, v, _) = self.call("PATCH", path, Some(body)).await;
        (s, v)
    }
    pub async fn put(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let (s, v, _) = self.call("PUT", path, body).await;
        (s, v)
    }
    pub async fn delete(&self, path: &str) -> u16 {
        self.call("DELETE", path, None).await.0
    }

    /// Creates a unique custom property.
    pub async fn unique_property(&self, ty: &str, name: &str) {
        let (s, v) = self
            .post(
                &format!("/crm/properties/2026-09/{ty}"),
                serde_json::json!({"name": name, "label": name, "type": "string", "fieldType": "text",
                                   "groupName": "information", "hasUniqueValue": true}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    pub async fn create(&self, ty: &str, props: Value) -> String {
        let (s, v) = self
            .post(
                &format!("/crm/objects/2026-09/{ty}"),
                serde_json::json!({"properties": props}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("id").to_string()
    }
}

pub fn deal_props(name: &str) -> Value {
    serde_json::json!({"dealname": name, "dealstage": "appointmentscheduled", "pipeline": "default"})
}

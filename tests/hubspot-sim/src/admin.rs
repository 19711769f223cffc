//! Simulator-only admin API under `/_sim` (contract §9 "Fault injection", "Billing clock"), and
//! the same operations in-process through [`SimHandle`]. Not authenticated, not rate limited.

use crate::billing;
use crate::config::WebhookSubscription;
use crate::error::{ApiError, ApiResult};
use crate::faults::{FaultRule, ValidationRule};
use crate::model::ObjectType;
use crate::ratelimit::Counters;
use crate::state::{Selection, Sim, SimState, lock};
use crate::webhooks::{ChangeSource, DeliveryRecord, WebhookFaults};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// In-process access to everything the admin API offers.
#[derive(Clone)]
pub struct SimHandle {
    sim: Sim,
}

fn dump_object(st: &SimState, o: &crate::model::CrmObject) -> Value {
    let sel = Selection {
        all_set: true,
        ..Selection::default()
    };
    let mut v = st.render(o, &sel);
    let assoc: Vec<Value> = st
        .assoc
        .all_of(o.object_type, o.id)
        .into_iter()
        .map(|(t, id, types)| {
            json!({"toObjectType": t.plural(), "toObjectTypeId": t.type_id(),
                                     "toObjectId": id.to_string(), "typeIds": types})
        })
        .collect();
    if let Value::Object(m) = &mut v {
        m.insert("objectType".into(), json!(o.object_type.plural()));
        m.insert("associationsAll".into(), Value::Array(assoc));
    }
    v
}

impl SimHandle {
    pub fn new(sim: Sim) -> Self {
        SimHandle { sim }
    }

    /// Runs `f` with the locked state (escape hatch for tests).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        f(&mut lock(&self.sim))
    }

    /// All objects (archived included) with properties and associations, by plural type name.
    pub fn dump(&self) -> Value {
        let st = lock(&self.sim);
        let mut out = Map::new();
        for t in ObjectType::ALL {
            let list: Vec<Value> = st
                .objects
                .get(&t)
                .into_iter()
                .flat_map(|m| m.values())
                .map(|o| dump_object(&st, o))
                .collect();
            out.insert(t.plural().into(), Value::Array(list));
        }
        json!({"now": st.now(), "objects": out})
    }

    /// Live (non-archived) objects of one type.
    pub fn objects(&self, t: ObjectType) -> Vec<Value> {
        let st = lock(&self.sim);
        st.live(t).map(|o| dump_object(&st, o)).collect()
    }

    /// Ids of `to` objects associated with one object.
    pub fn associated(&self, from: ObjectType, id: u64, to: ObjectType) -> Vec<u64> {
        lock(&self.sim)
            .assoc
            .list(from, id, to)
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    pub fn counters(&self) -> Counters {
        lock(&self.sim).counters.clone()
    }

    pub fn now_ms(&self) -> i64 {
        lock(&self.sim).now()
    }

    /// Moves the simulated clock and runs the billing cycles that fall due.
    pub fn advance_clock(&self, ms: i64) {
        let mut st = lock(&self.sim);
        st.clock.advance(ms);
        billing::run_cycles(&mut st);
    }

    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        lock(&self.sim).faults.add(rule)
    }

    pub fn clear_faults(&self) {
        lock(&self.sim).faults.clear();
    }

    pub fn add_validation_rule(&self, rule: ValidationRule) {
        lock(&self.sim).validation_rules.push(rule);
    }

    pub fn set_company_payments_failing(&self, company_id: u64, failing: bool) {
        billing::set_company_failing(&mut lock(&self.sim), company_id, failing);
    }

    pub fn set_subscription_payments_failing(&self, sub_id: u64, failing: bool) {
        billing::set_subscription_failing(&mut lock(&self.sim), sub_id, failing);
    }

    pub fn set_payments_enabled(&self, enabled: bool) {
        lock(&self.sim).billing.payments_enabled = enabled;
    }

    pub fn exhaust_daily_limit(&self) {
        let mut st = lock(&self.sim);
        let now = st.now();
        let cfg = st.config.clone();
        st.rate.exhaust_daily(&cfg, now);
    }

    pub fn set_search_lag_ms(&self, ms: u64) {
        lock(&self.sim).config.search_lag_ms = ms;
    }

    pub fn set_retry_after(&self, on: bool) {
        lock(&self.sim).config.retry_after_on_429 = on;
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        lock(&self.sim).webhooks.url = url;
    }

    /// Replaces the app's webhook subscriptions, after `webhook_settings_delay_ms`.
    pub fn set_webhook_subscriptions(&self, subs: Vec<WebhookSubscription>) {
        let mut st = lock(&self.sim);
        let delay = st.config.webhook_settings_delay_ms;
        if delay == 0 {
            st.webhooks.subscriptions = subs;
            st.webhooks.pending_subscriptions = None;
        } else {
            let at = std::time::Instant::now() + std::time::Duration::from_millis(delay);
            st.webhooks.pending_subscriptions = Some((at, subs));
        }
    }

    pub fn set_webhook_faults(&self, faults: WebhookFaults) {
        lock(&self.sim).webhooks.faults = faults;
    }

    pub fn webhook_deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.sim).webhooks.deliveries.clone()
    }

    pub fn pending_webhook_events(&self) -> usize {
        lock(&self.sim).webhooks.pending.len()
    }

    /// Creates an object as HubSpot itself would (no API checks), e.g. a payment.
    pub fn create_object(&self, t: ObjectType, properties: Map<String, Value>) -> ApiResult<u64> {
        lock(&self.sim).create(t, &properties, &[], ChangeSource::Admin)
    }

    pub fn reset(&self) {
        lock(&self.sim).reset();
    }
}

fn h(sim: &Sim) -> SimHandle {
    SimHandle::new(sim.clone())
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    crate::routes::parse_body(body)
}

async fn state(State(sim): State<Sim>) -> Json<Value> {
    Json(h(&sim).dump())
}

async fn objects_of(State(sim): State<Sim>, Path(ty): Path<String>) -> ApiResult<Json<Value>> {
    let t = ObjectType::parse_or_400(&ty)?;
    Ok(Json(json!({"results": h(&sim).objects(t)})))
}

async fn create_object(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let v: Value = parse(&body)?;
    let props = v
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let id = h(&sim).create_object(t, props)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id.to_string()}))).into_response())
}

async fn counters(State(sim): State<Sim>) -> Json<Counters> {
    Json(h(&sim).counters())
}

async fn reset(State(sim): State<Sim>) -> StatusCode {
    h(&sim).reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Advance {
    #[serde(default)]
    ms: i64,
    #[serde(default)]
    days: i64,
}

async fn clock_get(State(sim): State<Sim>) -> Json<Value> {
    let now = h(&sim).now_ms();
    Json(json!({"nowMs": now, "now": crate::clock::iso(now)}))
}

async fn clock_advance(State(sim): State<Sim>, body: Bytes) -> ApiResult<Json<Value>> {
    let a: Advance = parse(&body)?;
    let hd = h(&sim);
    hd.advance_clock(a.ms + a.days * 86_400_000);
    let now = hd.now_ms();
    Ok(Json(json!({"nowMs": now, "now": crate::clock::iso(now)})))
}

async fn faults_add(State(sim): State<Sim>, body: Bytes) -> ApiResult<Json<Value>> {
    let rule: FaultRule = parse(&body)?;
    Ok(Json(json!({"id": h(&sim).add_fault(rule)})))
}

async fn faults_list(State(sim): State<Sim>) -> Json<Vec<FaultRule>> {
    Json(lock(&sim).faults.rules.clone())
}

async fn faults_clear(State(sim): State<Sim>) -> StatusCode {
    h(&sim).clear_faults();
    lock(&sim).validation_rules.clear();
    StatusCode::NO_CONTENT
}

async fn rule_add(State(sim): State<Sim>, body: Bytes) -> ApiResult<StatusCode> {
    let rule: ValidationRule = parse(&body)?;
    h(&sim).add_validation_rule(rule);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentTarget {
    #[serde(default)]
    company_id: Option<Value>,
    #[serde(default)]
    subscription_id: Option<Value>,
}

fn id_of(v: &Option<Value>) -> Option<u64> {
    match v {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    }
}

fn payments(sim: &Sim, body: &Bytes, failing: bool) -> ApiResult<StatusCode> {
    let t: PaymentTarget = parse(body)?;
    let hd = h(sim);
    match (id_of(&t.company_id), id_of(&t.subscription_id)) {
        (Some(c), _) => hd.set_company_payments_failing(c, failing),
        (None, Some(s)) => hd.set_subscription_payments_failing(s, failing),
        _ => {
            return Err(ApiError::validation(
                "companyId or subscriptionId is required",
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn payments_fail(State(sim): State<Sim>, body: Bytes) -> ApiResult<StatusCode> {
    payments(&sim, &body, true)
}

async fn payments_recover(State(sim): State<Sim>, body: Bytes) -> ApiResult<StatusCode> {
    payments(&sim, &body, false)
}

async fn payments_enabled(State(sim): State<Sim>, body: Bytes) -> ApiResult<StatusCode> {
    let v: Value = parse(&body)?;
    h(&sim).set_payments_enabled(v.get("enabled").and_then(Value::as_bool).unwrap_or(true));
    Ok(StatusCode::NO_CONTENT)
}

async fn daily_exhausted(State(sim): State<Sim>) -> StatusCode {
    h(&sim).exhaust_daily_limit();
    StatusCode::NO_CONTENT
}

/// Adjusts limits and switches at run time: `tenSecondLimit`, `dailyLimit`, `searchPerSecond`,
/// `retryAfterOn429`, `dailyHeaders`, `searchLagMs`.
async fn config_patch(State(sim): State<Sim>, body: Bytes) -> ApiResult<StatusCode> {
    let v: Value = parse(&body)?;
    let mut st = lock(&sim);
    let c = &mut st.config;
    if let Some(n) = v.get("tenSecondLimit").and_then(Value::as_u64) {
        c.ten_second_limit = u32::try_from(n).ok();
    }
    if let Some(n) = v.get("dailyLimit").and_then(Value::as_u64) {
        c.daily_limit = Some(n);
    }
    if let Some(n) = v.get("searchPerSecond").and_then(Value::as_u64) {
        c.search_per_second = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(b) = v.get("retryAfterOn429").and_then(Value::as_bool) {
        c.retry_after_on_429 = b;
    }
    if let Some(b) = v.get("dailyHeaders").and_then(Value::as_bool) {
        c.daily_headers = b;
    }
    if let Some(n) = v.get("searchLagMs").and_then(Value::as_u64) {
        c.search_lag_ms = n;
    }
    if let Some(n) = v.get("webhookSettingsDelayMs").and_then(Value::as_u64) {
        c.webhook_settings_delay_ms = n;
    }
    if let Some(b) = v.get("enforceUiEditConstraints").and_then(Value::as_bool) {
        c.enforce_ui_edit_constraints = b;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookSettings {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    subscriptions: Option<Vec<WebhookSubscription>>,
    #[serde(default)]
    faults: Option<WebhookFaults>,
}

async fn webhooks_set(State(sim): State<Sim>, body: Bytes) -> ApiResult<StatusCode> {
    let s: WebhookSettings = parse(&body)?;
    let hd = h(&sim);
    if s.url.is_some() {
        hd.set_webhook_url(s.url);
    }
    if let Some(subs) = s.subscriptions {
        hd.set_webhook_subscriptions(subs);
    }
    if let Some(f) = s.faults {
        hd.set_webhook_faults(f);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn webhook_deliveries(State(sim): State<Sim>) -> Json<Vec<DeliveryRecord>> {
    Json(h(&sim).webhook_deliveries())
}

async fn billing_run(State(sim): State<Sim>) -> StatusCode {
    billing::run_cycles(&mut lock(&sim));
    StatusCode::NO_CONTENT
}

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/state", get(state))
        .route("/objects/{ty}", get(objects_of).post(create_object))
        .route("/counters", get(counters))
        .route("/reset", post(reset))
        .route("/clock", get(clock_get))
        .route("/clock/advance", post(clock_advance))
        .route(
            "/faults",
            post(faults_add).get(faults_list).delete(faults_clear),
        )
        .route("/validation-rules", post(rule_add))
        .route("/validation-rules", delete(faults_clear))
        .route("/payments/fail", post(payments_fail))
        .route("/payments/recover", post(payments_recover))
        .route("/payments/enabled", post(payments_enabled))
        .route("/rate-limits/daily-exhausted", post(daily_exhausted))
        .route("/config", post(config_patch))
        .route("/webhooks", post(webhooks_set))
        .route("/webhooks/deliveries", get(webhook_deliveries))
        .route("/billing/run", post(billing_run))
}

//! Simulator configuration. Every limit that HubSpot has changed over time is configuration,
//! not a constant (contract §3: "The simulator's numbers must be configuration, not constants").

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Account/app tier: chooses the 10-second and daily buckets (contract §3 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Free,
    Starter,
    Professional,
    Enterprise,
    /// "API Limit Increase" pack (any tier): 250 per 10 s.
    Increase,
}

impl Tier {
    /// contract §3: 100 (Free/Starter), 190 (Pro/Enterprise), 250 (limit increase) per 10 s.
    pub fn ten_second_limit(self) -> u32 {
        match self {
            Tier::Free | Tier::Starter => 100,
            Tier::Professional | Tier::Enterprise => 190,
            Tier::Increase => 250,
        }
    }

    /// contract §3: 250k / 625k / 1M per day; an increase adds 1M (one pack assumed).
    pub fn daily_limit(self) -> u64 {
        match self {
            Tier::Free | Tier::Starter => 250_000,
            Tier::Professional => 625_000,
            Tier::Enterprise => 1_000_000,
            Tier::Increase => 2_000_000,
        }
    }
}

/// How a violated custom unique property is reported. contract §2.4 / §10 q6: unverified,
/// "the simulator should emit one shape, configurable".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UniqueViolationShape {
    /// 400 VALIDATION_ERROR mentioning "already has that value" (integrator tests).
    BadRequest,
    /// 409 CONFLICT.
    Conflict,
}

/// Shape of the contact-email 409 (contract §2.4: legacy `CONFLICT` or newer `OBJECT_ALREADY_EXISTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactConflictShape {
    Legacy,
    ObjectAlreadyExists,
}

/// One webhook subscription of the simulated app (contract §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSubscription {
    pub id: u64,
    /// `object.propertyChange`, `object.creation`, `object.deletion`, or a legacy
    /// `deal.propertyChange`-style type.
    pub subscription_type: String,
    /// e.g. `0-69`. For legacy types this is derived from the prefix.
    pub object_type_id: String,
    #[serde(default)]
    pub property_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SimConfig {
    /// Address to bind; tests use 127.0.0.1:0.
    pub listen: String,
    /// The only Bearer token accepted (contract §6).
    pub token: String,
    pub portal_id: u64,
    pub app_id: u64,
    pub tier: Tier,
    /// Override of the tier's 10-second bucket.
    pub ten_second_limit: Option<u32>,
    /// Override of the tier's daily bucket.
    pub daily_limit: Option<u64>,
    /// contract §2.5: 5 search requests per second per account.
    pub search_per_second: u32,
    /// contract §3: search probably also counts toward the general limits (open question §10 q7).
    pub search_counts_toward_general: bool,
    /// contract §3.1: the daily headers are absent for OAuth; `false` mimics that.
    pub daily_headers: bool,
    /// contract §3.1: `Retry-After` is not documented on REST 429s; off by default.
    pub retry_after_on_429: bool,
    /// Account time zone offset from UTC in minutes, for the daily reset (contract §3).
    pub account_utc_offset_minutes: i32,
    /// Search index lag in ms (contract §8.1, §2.5).
    pub search_lag_ms: u64,
    /// Start of the simulated clock, epoch ms.
    pub clock_start_ms: i64,
    /// Frozen clock: time moves only through the admin API (deterministic tests).
    pub clock_frozen: bool,
    /// Seed for fault randomness and correlation ids.
    pub seed: u64,
    /// contract §1.2 prerequisite: HubSpot payments or Stripe.
    pub payments_enabled: bool,
    /// contract §1.2: `hs_status` options; configurable because the real enum is unverified.
    pub subscription_statuses: Vec<String>,
    /// contract §1.2 UI-side constraints (only Active/Scheduled editable, no edits within two
    /// days of the due date). How the API rejects them is unverified, so off by default.
    pub enforce_ui_edit_constraints: bool,
    /// Required properties per object type (plural name); an entry `a|b` means "a or b".
    pub required_properties: BTreeMap<String, Vec<String>>,
    /// Object types (plural names) that may carry custom unique properties (contract §2.2).
    pub unique_property_types: Vec<String>,
    pub max_unique_properties: usize,
    pub unique_violation_shape: UniqueViolationShape,
    pub contact_conflict_shape: ContactConflictShape,
    /// Webhook target URL (contract §5); no webhooks when unset.
    pub webhook_url: Option<String>,
    /// App client secret used for v1/v3 signatures (contract §5.1).
    pub client_secret: String,
    pub webhook_subscriptions: Vec<WebhookSubscription>,
    /// contract §5.3: ≤100 events per request.
    pub webhook_max_batch: usize,
    /// contract §5.3: 10 retries over 24 h; the spacing is compressed to this many ms per attempt.
    pub webhook_retry_base_ms: u64,
    pub webhook_max_retries: u32,
    /// contract §5.3: 5-second timeout.
    pub webhook_timeout_ms: u64,
    /// How often the dispatcher looks for due events (real ms).
    pub webhook_tick_ms: u64,
    /// contract §5.3: at most 10 in-flight requests per account (settable).
    pub webhook_max_concurrency: usize,
    /// contract §5.3: webhook settings are cached up to 5 minutes; subscription changes made
    /// through the admin API take effect after this many real ms (0 = at once).
    pub webhook_settings_delay_ms: u64,
    /// Where the portal's data is kept across restarts (loaded at start when present, saved
    /// after changes and at shutdown); `None` keeps it in memory only.
    pub state_file: Option<std::path::PathBuf>,
    /// How often (real ms) changes are saved to `state_file`.
    pub state_save_interval_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        let mut required = BTreeMap::new();
        // contract §1.5 and §9: deal needs dealname, dealstage, pipeline; company domain or name.
        required.insert(
            "deals".to_string(),
            vec!["dealname".into(), "dealstage".into(), "pipeline".into()],
        );
        required.insert("companies".to_string(), vec!["domain|name".into()]);
        // contract §1.2: creating a subscription requires only hs_name.
        required.insert("subscriptions".to_string(), vec!["hs_name".into()]);
        // contract §1.4: the 2026-09 guide's stricter product list is unconfirmed; only name here.
        required.insert("products".to_string(), vec!["name".into()]);
        // contract §1.6.
        required.insert("invoices".to_string(), vec!["hs_currency".into()]);
        required.insert(
            "commerce_payments".to_string(),
            vec!["hs_initial_amount".into(), "hs_initiated_date".into()],
        );
        SimConfig {
            listen: "127.0.0.1:0".into(),
            token: "pat-na1-simulator-token".into(),
            portal_id: 62515,
            app_id: 54321,
            tier: Tier::Professional,
            ten_second_limit: None,
            daily_limit: None,
            search_per_second: 5,
            search_counts_toward_general: true,
            daily_headers: true,
            retry_after_on_429: false,
            account_utc_offset_minutes: 0,
            search_lag_ms: 2000,
            // 2026-11-22T00:00:00Z, the contract's research date.
            clock_start_ms: 1_795_305_600_000,
            clock_frozen: false,
            seed: 42,
            payments_enabled: true,
            subscription_statuses: [
                "active",
                "past_due",
                "unpaid",
                "paused",
                "canceled",
                "expired",
                "scheduled",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            enforce_ui_edit_constraints: false,
            required_properties: required,
            unique_property_types: vec!["contacts".into(), "companies".into(), "deals".into()],
            max_unique_properties: 10,
            unique_violation_shape: UniqueViolationShape::BadRequest,
            contact_conflict_shape: ContactConflictShape::Legacy,
            webhook_url: None,
            client_secret: "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy".into(),
            webhook_subscriptions: default_webhook_subscriptions(),
            webhook_max_batch: 100,
            webhook_retry_base_ms: 200,
            webhook_max_retries: 10,
            webhook_timeout_ms: 5000,
            webhook_tick_ms: 20,
            webhook_max_concurrency: 10,
            webhook_settings_delay_ms: 0,
            state_file: None,
            state_save_interval_ms: 500,
        }
    }
}

/// contract §0 / §5.2: the operator subscribes to `hs_status` on subscriptions and
/// `hs_latest_status` on payments.
pub fn default_webhook_subscriptions() -> Vec<WebhookSubscription> {
    vec![
        WebhookSubscription {
            id: 7_662_269,
            subscription_type: "object.propertyChange".into(),
            object_type_id: "0-69".into(),
            property_name: Some("hs_status".into()),
        },
        WebhookSubscription {
            id: 7_662_270,
            subscription_type: "object.propertyChange".into(),
            object_type_id: "0-101".into(),
            property_name: Some("hs_latest_status".into()),
        },
        WebhookSubscription {
            id: 7_662_271,
            subscription_type: "object.creation".into(),
            object_type_id: "0-69".into(),
            property_name: None,
        },
        WebhookSubscription {
            id: 7_662_272,
            subscription_type: "object.deletion".into(),
            object_type_id: "0-69".into(),
            property_name: None,
        },
    ]
}

impl SimConfig {
    pub fn ten_second_limit(&self) -> u32 {
        self.ten_second_limit
            .unwrap_or(self.tier.ten_second_limit())
    }
    pub fn daily_limit(&self) -> u64 {
        self.daily_limit.unwrap_or(self.tier.daily_limit())
    }
}

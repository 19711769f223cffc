//! The client handle and its settings. Clone it freely: every clone shares one transport, one
//! rate limiter (contract §8.3) and what the bootstrap learned about the portal.

use super::algorithm::BillingMode;
use super::api::{Api, assoc};
use super::coalesce::Lanes;
use super::error::Result;
use super::http::{StatsSnapshot, Transport};
use super::ratelimit::{RateLimitConfig, RateLimiter, Tier};
use super::retry::RetryPolicy;
use super::status::StatusMap;
use super::token::ApiToken;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// HubSpot's public API host.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";
/// contract §0: pin the date-based version.
pub const DEFAULT_API_VERSION: &str = "2026-09";

/// Default linger of the coalescer: long enough for concurrent reconciles to meet, short next
/// to the ~50 ms a HubSpot call takes anyway.
pub const DEFAULT_BATCH_LINGER: Duration = Duration::from_millis(25);

/// Everything the client needs. `Debug` is safe: the token's is redacted.
#[derive(Debug, Clone)]
pub struct HubSpotConfig {
    pub base_url: String,
    pub token: ApiToken,
    pub api_version: String,
    /// Payments (commerce subscriptions) or the explicit CRM-only mode (contract §1.8).
    pub mode: BillingMode,
    pub rate_limits: RateLimitConfig,
    pub retry: RetryPolicy,
    pub request_timeout: Duration,
    /// Deal pipeline and stages (contract §1.5: `pipeline`, `dealstage` are required).
    pub deal_pipeline: String,
    pub deal_stage_active: String,
    /// contract §1.8: on cancel, move the deal to closed-lost or churned.
    pub deal_stage_canceled: String,
    /// Deal → company labels sent on every PUT (it replaces labels, contract §1.7).
    pub deal_company_types: Vec<u32>,
    /// contract §1.2: `hs_collection_process`; API-created subscriptions in practice invoice.
    pub collection_process: String,
    pub net_payment_terms_days: u32,
    /// Look up products by SKU (search, cached) to set `hs_product_id` (contract §1.4).
    pub resolve_products: bool,
    pub product_cache_ttl: Duration,
    /// How long the coalescer gathers work from concurrent reconciles before it sends a batch
    /// (a full batch of 100 goes at once). Zero still batches whatever is waiting.
    pub batch_linger: Duration,
    /// How long a tenant's company id, once upserted, is reused without another upsert.
    pub company_cache_ttl: Duration,
    /// Bootstrap probes whether the portal can hold subscriptions (a create and a delete of a
    /// non-billable probe) so a portal without payments fails at start-up, not at first use.
    pub probe_payments: bool,
}

impl HubSpotConfig {
    pub fn new(base_url: impl Into<String>, token: ApiToken, tier: Tier) -> Self {
        HubSpotConfig {
            base_url: base_url.into(),
            token,
            api_version: DEFAULT_API_VERSION.into(),
            mode: BillingMode::Payments,
            rate_limits: RateLimitConfig::for_tier(tier),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            deal_pipeline: "default".into(),
            deal_stage_active: "closedwon".into(),
            deal_stage_canceled: "closedlost".into(),
            deal_company_types: vec![assoc::DEAL_TO_COMPANY_PRIMARY, assoc::DEAL_TO_COMPANY],
            collection_process: "manual_payments".into(),
            net_payment_terms_days: 30,
            resolve_products: true,
            product_cache_ttl: Duration::from_secs(600),
            batch_linger: DEFAULT_BATCH_LINGER,
            company_cache_ttl: Duration::from_secs(600),
            probe_payments: true,
        }
    }
}

/// What the start-up bootstrap learned about the portal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalInfo {
    pub statuses: StatusMap,
    /// `recurringbillingfrequency` options of line items (contract §1.3), when read.
    pub frequencies: Option<Vec<String>>,
    pub bootstrapped: bool,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub api: Api,
    pub cfg: HubSpotConfig,
    pub portal: RwLock<PortalInfo>,
    /// SKU → product id (or none), with when it was looked up.
    pub products: Mutex<HashMap<String, (Option<String>, Instant)>>,
    /// Batches being gathered (see `coalesce.rs`).
    pub lanes: Lanes,
    /// Tenant id → (company name written, company id, when): the company is upserted once per
    /// tenant, not once per subscription.
    pub companies: Mutex<HashMap<String, (String, String, Instant)>>,
}

/// The HubSpot billing client.
#[derive(Debug, Clone)]
pub struct HubSpotClient {
    pub(crate) inner: Arc<Inner>,
}

impl HubSpotClient {
    /// A client with its own rate limiter sized from `cfg.rate_limits`.
    pub fn new(cfg: HubSpotConfig) -> Result<Self> {
        let limiter = RateLimiter::new(cfg.rate_limits.clone());
        Self::with_limiter(cfg, limiter)
    }

    /// A client sharing `limiter` with other clients of the same HubSpot app.
    pub fn with_limiter(cfg: HubSpotConfig, limiter: Arc<RateLimiter>) -> Result<Self> {
        let http = Transport::new(
            &cfg.base_url,
            &cfg.token,
            limiter,
            cfg.retry.clone(),
            cfg.request_timeout,
        )?;
        Ok(HubSpotClient {
            inner: Arc::new(Inner {
                api: Api {
                    http,
                    version: cfg.api_version.clone(),
                },
                cfg,
                portal: RwLock::new(PortalInfo::default()),
                products: Mutex::new(HashMap::new()),
                lanes: Lanes::default(),
                companies: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn mode(&self) -> BillingMode {
        self.inner.cfg.mode
    }

    pub fn config(&self) -> &HubSpotConfig {
        &self.inner.cfg
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.inner.api.http.stats()
    }

    pub fn limiter(&self) -> Arc<RateLimiter> {
        Arc::clone(self.inner.api.http.limiter())
    }

    pub fn portal(&self) -> PortalInfo {
        self.inner
            .portal
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_portal(&self, info: PortalInfo) {
        *self.inner.portal.write().unwrap_or_else(|p| p.into_inner()) = info;
    }

    pub(crate) fn api(&self) -> &Api {
        &self.inner.api
    }
}

//! HubSpot billing client: the operator's side of the HubSpot contract (`shared/notes/hubspot-contract.md`, beside the project).
//!
//! HubSpot is the billing source of truth (contract §0). One tenant add-on subscription maps to
//! a company (per tenant, unique `mkt_tenant_id`), a deal (the idempotency anchor, unique
//! `mkt_subscription_uid`), a line item and a commerce subscription (contract §1.8).
//!
//! - [`HubSpotClient::bootstrap`]: start-up checks (contract §2.6 preconditions, §1.7, §1.2).
//! - [`HubSpotClient::ensure_company`]: the tenant's company and billing contact (contract §1.5,
//!   §1.8), for `Tenant.status.hubspotCompanyId`; in `company.rs`.
//! - [`HubSpotClient::ensure_billing_record`]: the idempotent algorithm of contract §2.6, decided
//!   by the pure [`algorithm::next_step`] and executed in `ensure.rs`; its calls from concurrent
//!   reconciles are coalesced into batch calls (`coalesce.rs`, planned by [`batch`]).
//! - lifecycle ([`HubSpotClient::cancel_billing_record`], pause, unpause, status), the batch
//!   [`HubSpotClient::audit`] for drift checks, and [`HubSpotClient::sweep_orphans`].
//! - [`ratelimit::RateLimiter`]: one limiter shared by all reconcilers (contract §3).
//! - [`HubSpotClient::ensure_usage_line_item`]: a closed usage period as a line item on the
//!   deal, exactly once (`usage.rs`).
//! - [`webhook::WebhookVerifier`]: v1/v3 signatures (contract §5.1).
//!
//! This module must never share code with the simulator in `tests/hubspot-sim`: it follows the
//! contract document, so a misunderstanding of HubSpot cannot hide in both.

pub mod algorithm;
pub mod api;
pub mod api_batch;
pub mod audit;
pub mod batch;
pub mod bootstrap;
pub mod charge;
pub mod client;
mod coalesce;
pub mod company;
mod ensure;
pub mod error;
pub mod http;
pub mod lifecycle;
pub mod model;
pub mod ratelimit;
pub mod retry;
pub mod status;
pub mod sweep;
pub mod token;
pub mod usage;
pub mod webhook;
pub mod wire;

pub use algorithm::BillingMode;
pub use audit::{AuditedRecord, Drift};
pub use bootstrap::{BootstrapReport, PaymentsCheck};
pub use charge::{CHARGE_KEY, ChargeRecord, ChargeRequest};
pub use client::{
    DEFAULT_API_VERSION, DEFAULT_BASE_URL, DEFAULT_BATCH_LINGER, HubSpotClient, HubSpotConfig,
    PortalInfo,
};
pub use company::{CompanyRecord, CompanyRepair, CompanyRequest, ContactRequest};
pub use error::{ApiErrorBody, HubSpotError};
pub use http::{CALL_OUTCOMES, StatsSnapshot};
pub use lifecycle::{CancelOutcome, SubscriptionState};
pub use model::{BillingRecord, BillingRequest, BillingStatus, LineDiscount, Repair};
pub use ratelimit::{RateLimitConfig, RateLimiter, Tier};
pub use retry::RetryPolicy;
pub use status::{StatusClass, StatusMap};
pub use sweep::{Orphan, OrphanSweeper, OurDeal, SweepCandidates, SweepReport, sweep_candidates};
pub use token::ApiToken;
pub use usage::{
    CREDITS_APPLIED, USAGE_PERIOD_KEY, UsageCredit, UsageLineItem, UsageLineItemRequest,
};
pub use webhook::{
    SignatureHeaders, SignatureVersion, WebhookError, WebhookSecret, WebhookVerifier,
};

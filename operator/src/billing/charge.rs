//! A one-time charge to a tenant (an automatic credit top-up), exactly once per key.
//!
//! Invoices are read-only to us (contract §9) and a line item has exactly one parent (§1.3), so
//! a charge is a deal of its own, upserted by the unique deal property [`CHARGE_KEY`] (§2.2,
//! §2.3: repeating the upsert converges), associated with the tenant's company, with one
//! one-time line item carrying `quantity` 1, the `price` and the same key (found by the deal's
//! associations, never by search, §2.6). A lost response, a crash or a restart finds what was
//! made instead of making another.

use std::collections::BTreeMap;

use super::api::Obj;
use super::client::HubSpotClient;
use super::error::Result;

/// The deal (unique) and line item (plain) property naming a charge.
pub const CHARGE_KEY: &str = "mkt_charge_key";

/// A charge to make once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Unique across the portal, e.g. `<tenant>/topup-USD-1796083200000`.
    pub key: String,
    /// The company's `mkt_tenant_id` and the tenant's display name.
    pub tenant_id: String,
    pub tenant_name: String,
    pub name: String,
    pub description: String,
    /// A positive decimal in `currency`.
    pub amount: String,
    pub currency: String,
}

/// The charge's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRecord {
    pub deal_id: String,
    pub line_item_id: String,
    /// `false`: an earlier attempt had made the line item.
    pub created: bool,
}

impl HubSpotClient {
    /// Makes sure the charge `req.key` exists: its deal (linked to the tenant's company) and its
    /// line item. Safe to call again after any error or crash.
    pub async fn ensure_charge(&self, req: &ChargeRequest) -> Result<ChargeRecord> {
        let company_id = self
            .tenant_company_id(&req.tenant_id, &req.tenant_name)
            .await?;
        let cfg = self.config();
        let deal: BTreeMap<String, String> = [
            ("dealname", format!("{} · {}", req.tenant_name, req.name)),
            ("pipeline", cfg.deal_pipeline.clone()),
            ("dealstage", cfg.deal_stage_active.clone()),
            ("amount", req.amount.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let (deal_id, _) = self
            .upsert_batched(Obj::Deals, CHARGE_KEY, &req.key, deal)
            .await?;
        self.link_batched(
            Obj::Deals,
            &deal_id,
            Obj::Companies,
            &company_id,
            &cfg.deal_company_types,
        )
        .await?;
        let line: BTreeMap<String, String> = [
            ("name", req.name.clone()),
            ("description", req.description.clone()),
            ("quantity", "1".to_string()),
            ("price", req.amount.clone()),
            (CHARGE_KEY, req.key.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let line_item = self
            .ensure_deal_line_item(&deal_id, CHARGE_KEY, &req.key, line)
            .await?;
        Ok(ChargeRecord {
            deal_id,
            line_item_id: line_item.id,
            created: line_item.created,
        })
    }
}

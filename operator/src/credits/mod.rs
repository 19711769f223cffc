//! Prepaid credits: a tenant's grants (money in a currency, with an expiry), consumed by its
//! metered usage at period end before anything is billed to HubSpot.
//!
//! - [`ledger`]: the records, balances and the split of a bill over grants; pure.
//! - [`store`]: the ledger's storage interface, implemented by both usage stores
//!   ([`sqlite`], [`postgres`]): the ledger lives beside the usage it pays for.
//! - [`view`]: what the tenant and superadmins are shown; pure.

pub mod episode;
pub mod grant;
pub mod ledger;
pub mod postgres;
pub mod sqlite;
pub mod store;
pub mod view;

pub use ledger::{CreditDeduction, CreditGrant, Settlement, TenantLedger};
pub use store::CreditStore;

use crate::metering::{AnyUsageStore, StoreError};

impl CreditStore for AnyUsageStore {
    async fn add_grant(&self, grant: &CreditGrant) -> Result<bool, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.add_grant(grant).await,
            AnyUsageStore::Postgres(s) => s.add_grant(grant).await,
        }
    }

    async fn ledger(&self, tenant: &str) -> Result<TenantLedger, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.ledger(tenant).await,
            AnyUsageStore::Postgres(s) => s.ledger(tenant).await,
        }
    }

    async fn settle(
        &self,
        settlement: &Settlement,
        deductions: &[CreditDeduction],
    ) -> Result<bool, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.settle(settlement, deductions).await,
            AnyUsageStore::Postgres(s) => s.settle(settlement, deductions).await,
        }
    }

    async fn settlement(
        &self,
        tenant: &str,
        usage_key: &str,
    ) -> Result<Option<Settlement>, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.settlement(tenant, usage_key).await,
            AnyUsageStore::Postgres(s) => s.settlement(tenant, usage_key).await,
        }
    }

    async fn settlements(&self, tenant: &str) -> Result<Vec<Settlement>, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.settlements(tenant).await,
            AnyUsageStore::Postgres(s) => s.settlements(tenant).await,
        }
    }
}

/// Settles `usage_micros` of usage under `usage_key` once: the settlement recorded earlier if
/// there is one (a retry, a restart), else the split of the tenant's ledger at `now`, recorded.
/// Returns the settlement in force.
pub async fn settle_once(
    store: &impl CreditStore,
    tenant: &str,
    usage_key: &str,
    currency: &str,
    usage_micros: i64,
    now: jiff::Timestamp,
) -> Result<Settlement, StoreError> {
    if let Some(settled) = store.settlement(tenant, usage_key).await? {
        return Ok(settled);
    }
    let ledger = store.ledger(tenant).await?;
    let (settlement, deductions) =
        ledger::settle(&ledger, tenant, usage_key, currency, usage_micros, now);
    if store.settle(&settlement, &deductions).await? {
        return Ok(settlement);
    }
    // Another writer settled it between the look-up and the insert: theirs stands.
    store
        .settlement(tenant, usage_key)
        .await?
        .ok_or_else(|| StoreError(format!("settlement {usage_key} of {tenant} vanished")))
}

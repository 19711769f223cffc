//! Where the credit ledger is kept: the usage store (SQLite or PostgreSQL), beside the usage it
//! pays for. Append-only: grants and settlements are inserted once (by their keys) and never
//! changed; a balance is computed from them ([`super::ledger`]).

use std::future::Future;

use super::ledger::{CreditDeduction, CreditGrant, Settlement, TenantLedger};
use crate::metering::StoreError;

/// The ledger's storage, implemented by the usage stores.
pub trait CreditStore: Send + Sync {
    /// Records `grant` unless the tenant has a grant of that id: `true` when recorded now.
    fn add_grant(
        &self,
        grant: &CreditGrant,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The tenant's grants and deductions.
    fn ledger(&self, tenant: &str)
    -> impl Future<Output = Result<TenantLedger, StoreError>> + Send;

    /// Records `settlement` with its `deductions`, all or nothing, unless its usage key was
    /// settled already: `true` when recorded now (the first settlement stays).
    fn settle(
        &self,
        settlement: &Settlement,
        deductions: &[CreditDeduction],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The settlement of `usage_key`, if any.
    fn settlement(
        &self,
        tenant: &str,
        usage_key: &str,
    ) -> impl Future<Output = Result<Option<Settlement>, StoreError>> + Send;

    /// The tenant's settlements, oldest first.
    fn settlements(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<Settlement>, StoreError>> + Send;
}

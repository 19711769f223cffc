//! The credit ledger in the embedded usage store: a settlement and its deductions are one
//! transaction.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::ledger::{CreditDeduction, CreditGrant, Settlement, TenantLedger};
use super::store::CreditStore;
use crate::metering::StoreError;
use crate::metering::sqlite::SqliteUsageStore;

/// The ledger's tables (created with the usage store's).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS credit_grants (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_micros INTEGER NOT NULL,
    granted_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    granted_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS credit_settlements (
    tenant TEXT NOT NULL,
    usage_key TEXT NOT NULL,
    currency TEXT NOT NULL,
    usage_micros INTEGER NOT NULL,
    credited_micros INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, usage_key)
);
CREATE TABLE IF NOT EXISTS credit_deductions (
    tenant TEXT NOT NULL,
    usage_key TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    amount_micros INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, usage_key, grant_id)
);
";

/// The columns a grant is read from (both stores).
pub(crate) const GRANT_COLUMNS: &str =
    "tenant, id, currency, amount_micros, granted_at_ms, expires_at_ms, granted_by, reason";
/// The columns a settlement is read from (both stores).
pub(crate) const SETTLEMENT_COLUMNS: &str =
    "tenant, usage_key, currency, usage_micros, credited_micros, at_ms";
/// The columns a deduction is read from (both stores).
pub(crate) const DEDUCTION_COLUMNS: &str = "tenant, usage_key, grant_id, amount_micros, at_ms";

pub(crate) fn time(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn grant_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CreditGrant> {
    Ok(CreditGrant {
        tenant: row.get(0)?,
        id: row.get(1)?,
        currency: row.get(2)?,
        amount_micros: row.get(3)?,
        granted_at: time(row.get(4)?),
        expires_at: time(row.get(5)?),
        granted_by: row.get(6)?,
        reason: row.get(7)?,
    })
}

fn settlement_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Settlement> {
    Ok(Settlement {
        tenant: row.get(0)?,
        usage_key: row.get(1)?,
        currency: row.get(2)?,
        usage_micros: row.get(3)?,
        credited_micros: row.get(4)?,
        at: time(row.get(5)?),
    })
}

fn deduction_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CreditDeduction> {
    Ok(CreditDeduction {
        tenant: row.get(0)?,
        usage_key: row.get(1)?,
        grant_id: row.get(2)?,
        amount_micros: row.get(3)?,
        at: time(row.get(4)?),
    })
}

impl CreditStore for SqliteUsageStore {
    async fn add_grant(&self, grant: &CreditGrant) -> Result<bool, StoreError> {
        let g = grant.clone();
        self.with(move |connection| {
            let inserted = connection.execute(
                "INSERT OR IGNORE INTO credit_grants VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    g.tenant,
                    g.id,
                    g.currency,
                    g.amount_micros,
                    g.granted_at.as_millisecond(),
                    g.expires_at.as_millisecond(),
                    g.granted_by,
                    g.reason
                ],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn ledger(&self, tenant: &str) -> Result<TenantLedger, StoreError> {
        let tenant = tenant.to_string();
        self.with(move |connection| {
            let grants = connection
                .prepare_cached(&format!(
                    "SELECT {GRANT_COLUMNS} FROM credit_grants WHERE tenant = ?1
                     ORDER BY granted_at_ms, id"
                ))?
                .query_map(params![tenant], grant_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let deductions = connection
                .prepare_cached(&format!(
                    "SELECT {DEDUCTION_COLUMNS} FROM credit_deductions WHERE tenant = ?1
                     ORDER BY at_ms, usage_key, grant_id"
                ))?
                .query_map(params![tenant], deduction_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(TenantLedger { grants, deductions })
        })
        .await
    }

    async fn settle(
        &self,
        settlement: &Settlement,
        deductions: &[CreditDeduction],
    ) -> Result<bool, StoreError> {
        let (s, deductions) = (settlement.clone(), deductions.to_vec());
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            let inserted = transaction.execute(
                "INSERT OR IGNORE INTO credit_settlements VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.tenant,
                    s.usage_key,
                    s.currency,
                    s.usage_micros,
                    s.credited_micros,
                    s.at.as_millisecond()
                ],
            )?;
            if inserted == 0 {
                return Ok(false);
            }
            for d in &deductions {
                transaction.execute(
                    "INSERT INTO credit_deductions VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        d.tenant,
                        d.usage_key,
                        d.grant_id,
                        d.amount_micros,
                        d.at.as_millisecond()
                    ],
                )?;
            }
            transaction.commit()?;
            Ok(true)
        })
        .await
    }

    async fn settlement(
        &self,
        tenant: &str,
        usage_key: &str,
    ) -> Result<Option<Settlement>, StoreError> {
        let (tenant, usage_key) = (tenant.to_string(), usage_key.to_string());
        self.with(move |connection| {
            connection
                .query_row(
                    &format!(
                        "SELECT {SETTLEMENT_COLUMNS} FROM credit_settlements
                         WHERE tenant = ?1 AND usage_key = ?2"
                    ),
                    params![tenant, usage_key],
                    settlement_row,
                )
                .optional()
        })
        .await
    }

    async fn settlements(&self, tenant: &str) -> Result<Vec<Settlement>, StoreError> {
        let tenant = tenant.to_string();
        self.with(move |connection| {
            connection
                .prepare_cached(&format!(
                    "SELECT {SETTLEMENT_COLUMNS} FROM credit_settlements WHERE tenant = ?1
                     ORDER BY at_ms, usage_key"
                ))?
                .query_map(params![tenant], settlement_row)?
                .collect()
        })
        .await
    }
}

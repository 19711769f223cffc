//! The credit ledger in the shared usage store. A settlement and its deductions are one
//! statement (data-modifying CTEs run once and atomically): the deductions are inserted only
//! when the settlement was, so two attempts at one usage key can never both deduct.

use super::ledger::{CreditDeduction, CreditGrant, Settlement, TenantLedger};
use super::sqlite::{DEDUCTION_COLUMNS, GRANT_COLUMNS, SETTLEMENT_COLUMNS, time};
use super::store::CreditStore;
use crate::metering::StoreError;
use crate::metering::postgres::PostgresUsageStore;

/// The ledger's tables, created under the usage schema's lock.
pub(crate) const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7340512);
CREATE TABLE IF NOT EXISTS credit_grants (
    tenant text NOT NULL,
    id text NOT NULL,
    currency text NOT NULL,
    amount_micros bigint NOT NULL,
    granted_at_ms bigint NOT NULL,
    expires_at_ms bigint NOT NULL,
    granted_by text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS credit_settlements (
    tenant text NOT NULL,
    usage_key text NOT NULL,
    currency text NOT NULL,
    usage_micros bigint NOT NULL,
    credited_micros bigint NOT NULL,
    at_ms bigint NOT NULL,
    PRIMARY KEY (tenant, usage_key)
);
CREATE TABLE IF NOT EXISTS credit_deductions (
    tenant text NOT NULL,
    usage_key text NOT NULL,
    grant_id text NOT NULL,
    amount_micros bigint NOT NULL,
    at_ms bigint NOT NULL,
    PRIMARY KEY (tenant, usage_key, grant_id)
);
COMMIT;
";

const SETTLE: &str = "WITH settled AS (
        INSERT INTO credit_settlements VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT DO NOTHING RETURNING tenant
    ),
    deducted AS (
        INSERT INTO credit_deductions (tenant, usage_key, grant_id, amount_micros, at_ms)
        SELECT $1, $2, d.grant_id, d.amount, $6
        FROM unnest($7::text[], $8::int8[]) AS d(grant_id, amount)
        WHERE EXISTS (SELECT 1 FROM settled)
    )
    SELECT count(*)::int8 FROM settled";

fn grant_row(row: &tokio_postgres::Row) -> CreditGrant {
    CreditGrant {
        tenant: row.get(0),
        id: row.get(1),
        currency: row.get(2),
        amount_micros: row.get(3),
        granted_at: time(row.get(4)),
        expires_at: time(row.get(5)),
        granted_by: row.get(6),
        reason: row.get(7),
    }
}

fn settlement_row(row: &tokio_postgres::Row) -> Settlement {
    Settlement {
        tenant: row.get(0),
        usage_key: row.get(1),
        currency: row.get(2),
        usage_micros: row.get(3),
        credited_micros: row.get(4),
        at: time(row.get(5)),
    }
}

fn deduction_row(row: &tokio_postgres::Row) -> CreditDeduction {
    CreditDeduction {
        tenant: row.get(0),
        usage_key: row.get(1),
        grant_id: row.get(2),
        amount_micros: row.get(3),
        at: time(row.get(4)),
    }
}

impl CreditStore for PostgresUsageStore {
    async fn add_grant(&self, g: &CreditGrant) -> Result<bool, StoreError> {
        let connection = self.connection().await?;
        let inserted = connection
            .client
            .execute(
                "INSERT INTO credit_grants VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT DO NOTHING",
                &[
                    &g.tenant,
                    &g.id,
                    &g.currency,
                    &g.amount_micros,
                    &g.granted_at.as_millisecond(),
                    &g.expires_at.as_millisecond(),
                    &g.granted_by,
                    &g.reason,
                ],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(inserted == 1)
    }

    async fn ledger(&self, tenant: &str) -> Result<TenantLedger, StoreError> {
        let connection = self.connection().await?;
        let grants = connection
            .client
            .query(
                &format!(
                    "SELECT {GRANT_COLUMNS} FROM credit_grants WHERE tenant = $1
                     ORDER BY granted_at_ms, id"
                ),
                &[&tenant],
            )
            .await
            .map_err(StoreError::from_display)?;
        let deductions = connection
            .client
            .query(
                &format!(
                    "SELECT {DEDUCTION_COLUMNS} FROM credit_deductions WHERE tenant = $1
                     ORDER BY at_ms, usage_key, grant_id"
                ),
                &[&tenant],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(TenantLedger {
            grants: grants.iter().map(grant_row).collect(),
            deductions: deductions.iter().map(deduction_row).collect(),
        })
    }

    async fn settle(
        &self,
        s: &Settlement,
        deductions: &[CreditDeduction],
    ) -> Result<bool, StoreError> {
        let connection = self.connection().await?;
        let grant_ids: Vec<&str> = deductions.iter().map(|d| d.grant_id.as_str()).collect();
        let amounts: Vec<i64> = deductions.iter().map(|d| d.amount_micros).collect();
        let row = connection
            .client
            .query_one(
                SETTLE,
                &[
                    &s.tenant,
                    &s.usage_key,
                    &s.currency,
                    &s.usage_micros,
                    &s.credited_micros,
                    &s.at.as_millisecond(),
                    &grant_ids,
                    &amounts,
                ],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(row.get::<_, i64>(0) == 1)
    }

    async fn settlement(
        &self,
        tenant: &str,
        usage_key: &str,
    ) -> Result<Option<Settlement>, StoreError> {
        let connection = self.connection().await?;
        let row = connection
            .client
            .query_opt(
                &format!(
                    "SELECT {SETTLEMENT_COLUMNS} FROM credit_settlements
                     WHERE tenant = $1 AND usage_key = $2"
                ),
                &[&tenant, &usage_key],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(row.as_ref().map(settlement_row))
    }

    async fn settlements(&self, tenant: &str) -> Result<Vec<Settlement>, StoreError> {
        let connection = self.connection().await?;
        let rows = connection
            .client
            .query(
                &format!(
                    "SELECT {SETTLEMENT_COLUMNS} FROM credit_settlements WHERE tenant = $1
                     ORDER BY at_ms, usage_key"
                ),
                &[&tenant],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(rows.iter().map(settlement_row).collect())
    }
}

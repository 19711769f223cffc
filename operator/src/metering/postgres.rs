//! The shared usage store: PostgreSQL, for API replicas that must see one another's usage.
//! One connection per process (tokio-postgres pipelines concurrent queries over it), opened
//! again after it drops; a batch is one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
//! NOTHING`, so dedupe is the primary key's and costs no extra round trip.

use std::sync::{Arc, Mutex};

use tokio_postgres::{Client, NoTls, Statement};

use super::event::UsageEvent;
use super::period::UsagePeriod;
use super::sqlite::REPORT_COLUMNS;
use super::store::{
    MeterQuery, MeterTotals, PeriodReport, Recorded, ReportKey, StoreError, UsageStore,
};

/// Tables, created once by whichever replica comes first (the advisory lock serializes
/// replicas starting together: concurrent `CREATE TABLE IF NOT EXISTS` can fail).
const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7340512);
CREATE TABLE IF NOT EXISTS usage_events (
    tenant text NOT NULL,
    source text NOT NULL,
    id text NOT NULL,
    meter text NOT NULL,
    period bigint NOT NULL,
    time_ms bigint NOT NULL,
    data jsonb,
    PRIMARY KEY (tenant, source, id)
);
CREATE INDEX IF NOT EXISTS usage_events_by_meter ON usage_events (tenant, meter, period);
CREATE TABLE IF NOT EXISTS usage_period_reports (
    tenant text NOT NULL,
    meter text NOT NULL,
    period bigint NOT NULL,
    subscription text NOT NULL,
    quantity double precision NOT NULL,
    billable_units bigint NOT NULL,
    amount text NOT NULL,
    reference text NOT NULL,
    reported_at_ms bigint NOT NULL,
    PRIMARY KEY (tenant, meter, period, subscription)
);
CREATE INDEX IF NOT EXISTS usage_period_reports_by_period ON usage_period_reports (period);
COMMIT;
";

const INSERT: &str = "INSERT INTO usage_events (tenant, source, id, meter, period, time_ms, data)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                         $7::text[]::jsonb[])
    ON CONFLICT DO NOTHING";

const TOTALS: &str = "SELECT COUNT(*)::int8,
        COALESCE(SUM(CASE WHEN jsonb_typeof(data -> $4::text) = 'number'
                          THEN (data ->> $4::text)::float8 END), 0)::float8,
        MAX(CASE WHEN jsonb_typeof(data -> $4::text) = 'number'
                 THEN (data ->> $4::text)::float8 END),
        COUNT(DISTINCT data -> $4::text)::int8
    FROM usage_events WHERE tenant = $1 AND meter = $2 AND period = $3";

/// A connection and its prepared statements.
struct Connection {
    client: Client,
    insert: Statement,
    totals: Statement,
}

/// Usage in PostgreSQL.
pub struct PostgresUsageStore {
    url: String,
    current: Mutex<Arc<Connection>>,
    /// One reconnect at a time.
    reconnecting: tokio::sync::Mutex<()>,
}

async fn connect(url: &str) -> Result<Connection, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| StoreError(format!("connecting to PostgreSQL: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "usage store: the PostgreSQL connection ended");
        }
    });
    let insert = client
        .prepare(INSERT)
        .await
        .map_err(StoreError::from_display)?;
    let totals = client
        .prepare(TOTALS)
        .await
        .map_err(StoreError::from_display)?;
    Ok(Connection {
        client,
        insert,
        totals,
    })
}

impl PostgresUsageStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and creates the tables if needed.
    pub async fn connect(url: &str) -> Result<PostgresUsageStore, StoreError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| StoreError(format!("connecting to PostgreSQL: {e}")))?;
        let setup = tokio::spawn(connection);
        client
            .batch_execute(SCHEMA)
            .await
            .map_err(|e| StoreError(format!("creating the tables: {e}")))?;
        drop(client);
        let _ = setup.await;
        Ok(PostgresUsageStore {
            url: url.to_string(),
            current: Mutex::new(Arc::new(connect(url).await?)),
            reconnecting: tokio::sync::Mutex::new(()),
        })
    }

    /// The open connection, reopened if it dropped.
    async fn connection(&self) -> Result<Arc<Connection>, StoreError> {
        let lock = || self.current.lock().unwrap_or_else(|p| p.into_inner());
        let current = lock().clone();
        if !current.client.is_closed() {
            return Ok(current);
        }
        let _one = self.reconnecting.lock().await;
        let current = lock().clone();
        if !current.client.is_closed() {
            return Ok(current);
        }
        let fresh = Arc::new(connect(&self.url).await?);
        *lock() = fresh.clone();
        Ok(fresh)
    }
}

impl UsageStore for PostgresUsageStore {
    async fn record(&self, events: &[UsageEvent]) -> Result<Recorded, StoreError> {
        let connection = self.connection().await?;
        let column = |f: fn(&UsageEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
        let tenants = column(|e| e.tenant.clone());
        let sources = column(|e| e.source.clone());
        let ids = column(|e| e.id.clone());
        let meters = column(|e| e.meter.clone());
        let periods: Vec<i64> = events
            .iter()
            .map(|e| UsagePeriod::containing(e.time).key())
            .collect();
        let times: Vec<i64> = events.iter().map(|e| e.time.as_millisecond()).collect();
        let data: Vec<Option<String>> = events
            .iter()
            .map(|e| (!e.data.is_null()).then(|| e.data.to_string()))
            .collect();
        let accepted = connection
            .client
            .execute(
                &connection.insert,
                &[&tenants, &sources, &ids, &meters, &periods, &times, &data],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(Recorded {
            accepted,
            duplicates: events.len() as u64 - accepted,
        })
    }

    async fn totals(&self, query: MeterQuery<'_>) -> Result<MeterTotals, StoreError> {
        super::sqlite::json_path(query.property)?;
        let connection = self.connection().await?;
        let row = connection
            .client
            .query_one(
                &connection.totals,
                &[
                    &query.tenant,
                    &query.meter,
                    &query.period.key(),
                    &query.property,
                ],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(MeterTotals {
            count: row.get::<_, i64>(0) as u64,
            sum: row.get(1),
            max: row.get(2),
            unique: row.get::<_, i64>(3) as u64,
        })
    }

    async fn mark_reported(&self, report: &PeriodReport) -> Result<bool, StoreError> {
        let connection = self.connection().await?;
        let inserted = connection
            .client
            .execute(
                "INSERT INTO usage_period_reports VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT DO NOTHING",
                &[
                    &report.key.tenant,
                    &report.key.meter,
                    &report.key.period.key(),
                    &report.key.subscription,
                    &report.quantity,
                    &report.billable_units,
                    &report.amount,
                    &report.reference,
                    &report.reported_at.as_millisecond(),
                ],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(inserted == 1)
    }

    async fn reported(&self, key: &ReportKey) -> Result<Option<PeriodReport>, StoreError> {
        let connection = self.connection().await?;
        let row = connection
            .client
            .query_opt(
                &format!(
                    "SELECT {REPORT_COLUMNS} FROM usage_period_reports
                     WHERE tenant = $1 AND meter = $2 AND period = $3 AND subscription = $4"
                ),
                &[
                    &key.tenant,
                    &key.meter,
                    &key.period.key(),
                    &key.subscription,
                ],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(row.as_ref().map(report_row))
    }

    async fn reports(
        &self,
        tenant: Option<&str>,
        since: UsagePeriod,
    ) -> Result<Vec<PeriodReport>, StoreError> {
        let connection = self.connection().await?;
        let rows = connection
            .client
            .query(
                &format!(
                    "SELECT {REPORT_COLUMNS} FROM usage_period_reports
                     WHERE period >= $1 AND ($2::text IS NULL OR tenant = $2)
                     ORDER BY period, tenant, subscription"
                ),
                &[&since.key(), &tenant],
            )
            .await
            .map_err(StoreError::from_display)?;
        Ok(rows.iter().map(report_row).collect())
    }
}

fn report_row(row: &tokio_postgres::Row) -> PeriodReport {
    let key = ReportKey::from_columns(row.get(0), row.get(1), row.get(2), row.get(3));
    PeriodReport::from_columns(
        key,
        row.get(4),
        row.get(5),
        row.get(6),
        row.get(7),
        row.get(8),
    )
}

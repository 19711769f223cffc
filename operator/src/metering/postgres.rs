//! The shared usage store: PostgreSQL, for API replicas that must see one another's usage.
//! One connection per process (tokio-postgres pipelines concurrent queries over it), opened
//! again after it drops; a batch is one statement: `INSERT ... SELECT FROM unnest(...) ON
//! CONFLICT DO NOTHING`, so dedupe is the primary key's and costs no extra round trip, and the
//! inserted events' rollup deltas ([`super::rollup`]) in the same statement.

use std::sync::{Arc, Mutex};

use tokio_postgres::{Client, Statement};

use super::event::UsageEvent;
use super::period::UsagePeriod;
use super::postgres_tls::PostgresTarget;
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
CREATE TABLE IF NOT EXISTS usage_rollup (
    tenant text NOT NULL,
    meter text NOT NULL,
    period bigint NOT NULL,
    property text NOT NULL,
    count bigint NOT NULL,
    sum double precision NOT NULL,
    max double precision,
    uniq bigint NOT NULL,
    PRIMARY KEY (tenant, meter, period, property)
);
CREATE TABLE IF NOT EXISTS usage_unique_values (
    tenant text NOT NULL,
    meter text NOT NULL,
    period bigint NOT NULL,
    property text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (tenant, meter, period, property, value)
);
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
    ON CONFLICT DO NOTHING
    RETURNING tenant, meter, period, data";

/// Adds the events of `fresh` (tenant, meter, period, data) to the rollup, as
/// [`super::rollup`] defines it, in the statement that selects them: data-modifying CTEs run
/// once and atomically, so a batch and its rollup commit together without a transaction on
/// the shared connection. Returns how many events there were. Rows are upserted in key order,
/// so concurrent batches lock them in the same order.
fn roll_up(fresh: &str) -> String {
    format!(
        "WITH fresh AS ({fresh}),
        props AS (
            SELECT f.tenant, f.meter, f.period, kv.key AS property, kv.value
            FROM fresh f CROSS JOIN LATERAL jsonb_each(
                CASE WHEN jsonb_typeof(f.data) = 'object' THEN f.data ELSE '{{}}'::jsonb END) kv
            WHERE jsonb_typeof(kv.value) <> 'null' AND kv.key ~ '^[A-Za-z_][A-Za-z0-9_]*$'
        ),
        new_values AS (
            INSERT INTO usage_unique_values (tenant, meter, period, property, value)
            SELECT DISTINCT tenant, meter, period, property,
                CASE WHEN jsonb_typeof(value) = 'number'
                     THEN (value #>> '{{}}')::float8::text ELSE value::text END
            FROM props
            ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT DO NOTHING
            RETURNING tenant, meter, period, property
        ),
        new_value_counts AS (
            SELECT tenant, meter, period, property, count(*)::int8 AS uniq
            FROM new_values GROUP BY tenant, meter, period, property
        ),
        numbers AS (
            SELECT tenant, meter, period, property,
                COALESCE(SUM(CASE WHEN jsonb_typeof(value) = 'number'
                                  THEN (value #>> '{{}}')::float8 END), 0)::float8 AS sum,
                MAX(CASE WHEN jsonb_typeof(value) = 'number'
                         THEN (value #>> '{{}}')::float8 END) AS max
            FROM props GROUP BY tenant, meter, period, property
        ),
        deltas AS (
            SELECT tenant, meter, period, ''::text AS property, count(*)::int8 AS count,
                0::float8 AS sum, NULL::float8 AS max, 0::int8 AS uniq
            FROM fresh GROUP BY tenant, meter, period
            UNION ALL
            SELECT n.tenant, n.meter, n.period, n.property, 0::int8, n.sum, n.max,
                COALESCE(c.uniq, 0)::int8
            FROM numbers n LEFT JOIN new_value_counts c USING (tenant, meter, period, property)
        ),
        rolled AS (
            INSERT INTO usage_rollup AS r (tenant, meter, period, property, count, sum, max, uniq)
            SELECT * FROM deltas ORDER BY 1, 2, 3, 4
            ON CONFLICT (tenant, meter, period, property) DO UPDATE SET
                count = r.count + EXCLUDED.count,
                sum = r.sum + EXCLUDED.sum,
                max = GREATEST(r.max, EXCLUDED.max),
                uniq = r.uniq + EXCLUDED.uniq
        )
        SELECT count(*)::int8 FROM fresh"
    )
}

/// Rolls up the events of a store made before the rollup existed (under the schema's lock,
/// once: the rollup is empty).
const BACKFILL_CHECK: &str = "SELECT NOT EXISTS (SELECT 1 FROM usage_rollup)
    AND EXISTS (SELECT 1 FROM usage_events)";

/// A period's totals from its rollup rows: the events' row and the property's.
const TOTALS: &str = "SELECT
        COALESCE(SUM(CASE WHEN property = '' THEN count END), 0)::int8,
        COALESCE(SUM(CASE WHEN property = $4::text THEN sum END), 0)::float8,
        MAX(CASE WHEN property = $4::text THEN max END),
        COALESCE(SUM(CASE WHEN property = $4::text THEN uniq END), 0)::int8
    FROM usage_rollup
    WHERE tenant = $1 AND meter = $2 AND period = $3
        AND property IN ('', COALESCE($4::text, ''))";

/// A connection and its prepared statements.
pub(crate) struct Connection {
    pub(crate) client: Client,
    insert: Statement,
    totals: Statement,
}

/// Usage in PostgreSQL.
pub struct PostgresUsageStore {
    target: PostgresTarget,
    current: Mutex<Arc<Connection>>,
    /// One reconnect at a time.
    reconnecting: tokio::sync::Mutex<()>,
}

async fn connect(target: &PostgresTarget) -> Result<Connection, StoreError> {
    let (client, _running) = target.open().await?;
    let insert = client
        .prepare(&roll_up(INSERT))
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

/// [`BACKFILL_CHECK`], then the roll-up of every event, in one transaction holding the schema's
/// lock (so replicas starting together backfill once).
async fn backfill(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(7340512);")
        .await?;
    let needed: bool = client.query_one(BACKFILL_CHECK, &[]).await?.get(0);
    if needed {
        let all = "SELECT tenant, meter, period, data FROM usage_events";
        client.query_one(&roll_up(all), &[]).await?;
    }
    client.batch_execute("COMMIT").await
}

impl PostgresUsageStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and creates the tables if needed.
    pub async fn connect(url: &str) -> Result<PostgresUsageStore, StoreError> {
        let target = PostgresTarget::parse(url)?;
        let (client, setup) = target.open().await?;
        client
            .batch_execute(SCHEMA)
            .await
            .map_err(|e| StoreError(format!("creating the tables: {e}")))?;
        client
            .batch_execute(crate::credits::postgres::SCHEMA)
            .await
            .map_err(|e| StoreError(format!("creating the credit tables: {e}")))?;
        backfill(&client)
            .await
            .map_err(|e| StoreError(format!("rolling up earlier usage: {e}")))?;
        drop(client);
        let _ = setup.await;
        Ok(PostgresUsageStore {
            current: Mutex::new(Arc::new(connect(&target).await?)),
            target,
            reconnecting: tokio::sync::Mutex::new(()),
        })
    }

    /// The open connection, reopened if it dropped.
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>, StoreError> {
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
        let fresh = Arc::new(connect(&self.target).await?);
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
        let row = connection
            .client
            .query_one(
                &connection.insert,
                &[&tenants, &sources, &ids, &meters, &periods, &times, &data],
            )
            .await
            .map_err(StoreError::from_display)?;
        let accepted = row.get::<_, i64>(0) as u64;
        Ok(Recorded {
            accepted,
            duplicates: events.len() as u64 - accepted,
        })
    }

    async fn totals(&self, query: MeterQuery<'_>) -> Result<MeterTotals, StoreError> {
        super::sqlite::check_property(query.property)?;
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

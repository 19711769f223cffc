//! The embedded usage store: one SQLite file (WAL), for an API with one replica. Calls run on
//! tokio's blocking pool behind one connection; a batch is one transaction, so dedupe costs one
//! primary-key probe per event.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::event::UsageEvent;
use super::period::UsagePeriod;
use super::store::{
    MeterQuery, MeterTotals, PeriodReport, Recorded, ReportKey, StoreError, UsageStore,
};

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA busy_timeout = 5000;
CREATE TABLE IF NOT EXISTS usage_events (
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    meter TEXT NOT NULL,
    period INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    data TEXT,
    PRIMARY KEY (tenant, source, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_events_by_meter ON usage_events (tenant, meter, period);
CREATE TABLE IF NOT EXISTS usage_period_reports (
    tenant TEXT NOT NULL,
    meter TEXT NOT NULL,
    period INTEGER NOT NULL,
    subscription TEXT NOT NULL,
    quantity REAL NOT NULL,
    billable_units INTEGER NOT NULL,
    amount TEXT NOT NULL,
    reference TEXT NOT NULL,
    reported_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, meter, period, subscription)
);
CREATE INDEX IF NOT EXISTS usage_period_reports_by_period ON usage_period_reports (period);
";

/// Usage in one SQLite file.
#[derive(Clone)]
pub struct SqliteUsageStore {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteUsageStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<SqliteUsageStore, StoreError> {
        let connection = Connection::open(path)
            .map_err(|e| StoreError(format!("opening {}: {e}", path.display())))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(|e| StoreError(format!("creating the tables in {}: {e}", path.display())))?;
        Ok(SqliteUsageStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` on the connection, off the async threads.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(StoreError::from_display)?
        .map_err(StoreError::from_display)
    }
}

/// `$.property` for SQLite's JSON functions; the property is a plain identifier (schema).
pub(super) fn json_path(property: Option<&str>) -> Result<Option<String>, StoreError> {
    match property {
        None => Ok(None),
        Some(p)
            if !p.is_empty()
                && !p.starts_with(|c: char| c.is_ascii_digit())
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Ok(Some(format!("$.{p}")))
        }
        Some(p) => Err(StoreError(format!("{p:?} is not a property name"))),
    }
}

fn data_text(event: &UsageEvent) -> Option<String> {
    (!event.data.is_null()).then(|| event.data.to_string())
}

impl UsageStore for SqliteUsageStore {
    async fn record(&self, events: &[UsageEvent]) -> Result<Recorded, StoreError> {
        let events = events.to_vec();
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            let mut accepted = 0;
            {
                let mut insert = transaction.prepare_cached(
                    "INSERT OR IGNORE INTO usage_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for event in &events {
                    accepted += insert.execute(params![
                        event.tenant,
                        event.source,
                        event.id,
                        event.meter,
                        UsagePeriod::containing(event.time).key(),
                        event.time.as_millisecond(),
                        data_text(event),
                    ])? as u64;
                }
            }
            transaction.commit()?;
            Ok(Recorded {
                accepted,
                duplicates: events.len() as u64 - accepted,
            })
        })
        .await
    }

    async fn totals(&self, query: MeterQuery<'_>) -> Result<MeterTotals, StoreError> {
        let path = json_path(query.property)?;
        let (tenant, meter, period) = (
            query.tenant.to_string(),
            query.meter.to_string(),
            query.period.key(),
        );
        self.with(move |connection| {
            let mut select = connection.prepare_cached(
                "SELECT COUNT(*),
                    TOTAL(CASE WHEN json_type(data, ?4) IN ('integer', 'real') THEN json_extract(data, ?4) END),
                    MAX(CASE WHEN json_type(data, ?4) IN ('integer', 'real') THEN json_extract(data, ?4) END),
                    COUNT(DISTINCT json_extract(data, ?4))
                 FROM usage_events WHERE tenant = ?1 AND meter = ?2 AND period = ?3",
            )?;
            select.query_row(params![tenant, meter, period, path], |row| {
                Ok(MeterTotals {
                    count: row.get::<_, i64>(0)? as u64,
                    sum: row.get(1)?,
                    max: row.get(2)?,
                    unique: row.get::<_, i64>(3)? as u64,
                })
            })
        })
        .await
    }

    async fn mark_reported(&self, report: &PeriodReport) -> Result<bool, StoreError> {
        let report = report.clone();
        self.with(move |connection| {
            let inserted = connection.execute(
                "INSERT OR IGNORE INTO usage_period_reports VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    report.key.tenant,
                    report.key.meter,
                    report.key.period.key(),
                    report.key.subscription,
                    report.quantity,
                    report.billable_units,
                    report.amount,
                    report.reference,
                    report.reported_at.as_millisecond(),
                ],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn reported(&self, key: &ReportKey) -> Result<Option<PeriodReport>, StoreError> {
        let key = key.clone();
        self.with(move |connection| {
            connection
                .query_row(
                    &format!(
                        "SELECT {REPORT_COLUMNS} FROM usage_period_reports
                     WHERE tenant = ?1 AND meter = ?2 AND period = ?3 AND subscription = ?4"
                    ),
                    params![key.tenant, key.meter, key.period.key(), key.subscription],
                    report_row,
                )
                .optional()
        })
        .await
    }

    async fn reports(
        &self,
        tenant: Option<&str>,
        since: UsagePeriod,
    ) -> Result<Vec<PeriodReport>, StoreError> {
        let tenant = tenant.map(str::to_string);
        self.with(move |connection| {
            let mut select = connection.prepare_cached(&format!(
                "SELECT {REPORT_COLUMNS} FROM usage_period_reports
                 WHERE period >= ?1 AND (?2 IS NULL OR tenant = ?2)
                 ORDER BY period, tenant, subscription"
            ))?;
            select
                .query_map(params![since.key(), tenant], report_row)?
                .collect()
        })
        .await
    }
}

/// The columns a [`PeriodReport`] is read from (both stores): the key's, then the report's.
pub(super) const REPORT_COLUMNS: &str = "tenant, meter, period, subscription, quantity, billable_units, amount, reference, reported_at_ms";

fn report_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PeriodReport> {
    let key = ReportKey::from_columns(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
    Ok(PeriodReport::from_columns(
        key,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

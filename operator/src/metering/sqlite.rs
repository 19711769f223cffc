//! The embedded usage store: one SQLite file (WAL), for an API with one replica. Calls run on
//! tokio's blocking pool behind one connection; a batch is one transaction, so dedupe costs one
//! primary-key probe per event, and the batch's rollup deltas ([`super::rollup`]) are added in
//! the same transaction: totals are a read of at most two rollup rows.

use std::path::Path;
use std::sync::{Arc, Mutex};

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::event::UsageEvent;
use super::period::UsagePeriod;
use super::rollup::{RollupKey, batch_deltas, is_rolled_up, rolled_values};
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
CREATE TABLE IF NOT EXISTS usage_rollup (
    tenant TEXT NOT NULL,
    meter TEXT NOT NULL,
    period INTEGER NOT NULL,
    property TEXT NOT NULL,
    count INTEGER NOT NULL,
    sum REAL NOT NULL,
    max REAL,
    uniq INTEGER NOT NULL,
    PRIMARY KEY (tenant, meter, period, property)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_unique_values (
    tenant TEXT NOT NULL,
    meter TEXT NOT NULL,
    period INTEGER NOT NULL,
    property TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (tenant, meter, period, property, value)
) WITHOUT ROWID;
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
        let mut connection = connection;
        connection
            .execute_batch(SCHEMA)
            .and_then(|()| connection.execute_batch(crate::credits::sqlite::SCHEMA))
            .and_then(|()| backfill_rollup(&mut connection))
            .map_err(|e| StoreError(format!("creating the tables in {}: {e}", path.display())))?;
        Ok(SqliteUsageStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` on the connection, off the async threads.
    pub(crate) async fn with<T: Send + 'static>(
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

/// A property totals may read: a plain identifier (the catalog schema allows nothing else).
pub(super) fn check_property(property: Option<&str>) -> Result<(), StoreError> {
    match property {
        Some(p) if !is_rolled_up(p) => Err(StoreError(format!("{p:?} is not a property name"))),
        _ => Ok(()),
    }
}

/// A period's totals from its rollup rows: the events' row and the property's.
const TOTALS: &str = "SELECT
        COALESCE(SUM(CASE WHEN property = '' THEN count END), 0),
        COALESCE(SUM(CASE WHEN property = ?4 THEN sum END), 0),
        MAX(CASE WHEN property = ?4 THEN max END),
        COALESCE(SUM(CASE WHEN property = ?4 THEN uniq END), 0)
    FROM usage_rollup
    WHERE tenant = ?1 AND meter = ?2 AND period = ?3 AND property IN ('', COALESCE(?4, ''))";

fn data_text(event: &UsageEvent) -> Option<String> {
    (!event.data.is_null()).then(|| event.data.to_string())
}

/// Adds a rollup delta (the row is made on first use).
const UPSERT_ROLLUP: &str = "INSERT INTO usage_rollup VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (tenant, meter, period, property) DO UPDATE SET
        count = count + excluded.count,
        sum = sum + excluded.sum,
        max = CASE WHEN max IS NULL OR excluded.max > max THEN excluded.max ELSE max END,
        uniq = uniq + excluded.uniq";

/// Adds newly recorded events (tenant, meter, period key, data) to the rollup; inside the
/// transaction that recorded them.
fn roll_up(
    transaction: &rusqlite::Transaction<'_>,
    events: &[(&str, &str, i64, &Value)],
) -> rusqlite::Result<()> {
    let mut distinct: BTreeMap<RollupKey, i64> = BTreeMap::new();
    {
        let mut insert = transaction.prepare_cached(
            "INSERT OR IGNORE INTO usage_unique_values VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for &(tenant, meter, period, data) in events {
            for (property, value, _) in rolled_values(data) {
                if insert.execute(params![tenant, meter, period, property, value])? == 1 {
                    let key = (tenant.into(), meter.into(), period, property.into());
                    *distinct.entry(key).or_default() += 1;
                }
            }
        }
    }
    let mut upsert = transaction.prepare_cached(UPSERT_ROLLUP)?;
    for (key, delta) in batch_deltas(events.iter().copied()) {
        let new_values = distinct.get(&key).copied().unwrap_or(0);
        upsert.execute(params![
            key.0,
            key.1,
            key.2,
            key.3,
            delta.count as i64,
            delta.sum,
            delta.max,
            new_values
        ])?;
    }
    Ok(())
}

/// Rolls up the events of a store made before the rollup existed (once: the rollup is empty).
fn backfill_rollup(connection: &mut Connection) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    let (rolled, events): (bool, bool) = transaction.query_row(
        "SELECT EXISTS (SELECT 1 FROM usage_rollup), EXISTS (SELECT 1 FROM usage_events)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if rolled || !events {
        return Ok(());
    }
    let rows: Vec<(String, String, i64, Value)> = transaction
        .prepare("SELECT tenant, meter, period, data FROM usage_events")?
        .query_map([], |row| {
            let data: Option<String> = row.get(3)?;
            let data = data
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or(Value::Null);
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, data))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let events: Vec<(&str, &str, i64, &Value)> = rows
        .iter()
        .map(|(t, m, p, d)| (t.as_str(), m.as_str(), *p, d))
        .collect();
    roll_up(&transaction, &events)?;
    transaction.commit()
}

impl UsageStore for SqliteUsageStore {
    async fn record(&self, events: &[UsageEvent]) -> Result<Recorded, StoreError> {
        let events = events.to_vec();
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            let mut fresh = Vec::new();
            {
                let mut insert = transaction.prepare_cached(
                    "INSERT OR IGNORE INTO usage_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for event in &events {
                    let period = UsagePeriod::containing(event.time).key();
                    let inserted = insert.execute(params![
                        event.tenant,
                        event.source,
                        event.id,
                        event.meter,
                        period,
                        event.time.as_millisecond(),
                        data_text(event),
                    ])?;
                    if inserted == 1 {
                        fresh.push((
                            event.tenant.as_str(),
                            event.meter.as_str(),
                            period,
                            &event.data,
                        ));
                    }
                }
            }
            roll_up(&transaction, &fresh)?;
            transaction.commit()?;
            let accepted = fresh.len() as u64;
            Ok(Recorded {
                accepted,
                duplicates: events.len() as u64 - accepted,
            })
        })
        .await
    }

    async fn totals(&self, query: MeterQuery<'_>) -> Result<MeterTotals, StoreError> {
        check_property(query.property)?;
        let (tenant, meter, period, property) = (
            query.tenant.to_string(),
            query.meter.to_string(),
            query.period.key(),
            query.property.map(str::to_string),
        );
        self.with(move |connection| {
            let mut select = connection.prepare_cached(TOTALS)?;
            select.query_row(params![tenant, meter, period, property], |row| {
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

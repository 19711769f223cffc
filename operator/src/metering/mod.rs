//! Usage-based plans: usage events in, per tenant × meter × calendar month totals out, billed
//! past a plan's included quantity (`spec.plans[].metered`). Named so because
//! [`crate::front_door::usage`] already counts entitlement checks.
//!
//! - [`event`]: `POST /v1/usage` bodies (CloudEvents JSON), checked; pure.
//! - [`late`]: events of a month already billed, refused; pure.
//! - [`period`]: usage periods (calendar months, UTC); pure.
//! - [`price`]: what a period's quantity costs, as line items, and hard limits; pure.
//! - [`report`]: which closed periods are due to be billed, and their bill; pure.
//! - [`rollup`]: running totals per period, so totals cost the same whatever the events; pure.
//! - [`store`]: the one storage interface, with [`sqlite`] (embedded) and [`postgres`].
//! - [`view`]: a tenant's usage this period, as the API shows it; pure.
//! - [`meters`]: the store behind the API, with a short cache of totals for entitlement checks.

pub mod event;
pub mod late;
pub mod meters;
pub mod period;
pub mod postgres;
mod postgres_tls;
pub mod price;
pub mod report;
pub mod rollup;
pub mod sqlite;
pub mod store;
pub mod view;

use std::path::PathBuf;
use std::str::FromStr;

pub use event::{MeterCatalog, UsageEvent};
pub use period::UsagePeriod;
pub use store::{
    MeterQuery, MeterTotals, PeriodReport, Recorded, ReportKey, StoreError, UsageStore,
};

use postgres::PostgresUsageStore;
use sqlite::SqliteUsageStore;

/// Where usage is kept, as `--usage-store` gives it: `sqlite:PATH` or `postgres://...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsageStoreLocation {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` connection URL.
    Postgres(String),
}

impl FromStr for UsageStoreLocation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(
                    "sqlite: needs a file path, e.g. sqlite:/var/lib/marketplace/usage.sqlite"
                        .into(),
                );
            }
            return Ok(UsageStoreLocation::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(UsageStoreLocation::Postgres(text.to_string()));
        }
        Err(format!(
            "{:?}: give sqlite:PATH or a postgres:// URL",
            // A URL may carry a password: show only its scheme.
            text.split(':').next().unwrap_or_default()
        ))
    }
}

impl std::fmt::Display for UsageStoreLocation {
    /// Without credentials, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsageStoreLocation::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            UsageStoreLocation::Postgres(url) => {
                let host = url.rsplit('@').next().unwrap_or(url);
                let host = host
                    .trim_start_matches("postgresql://")
                    .trim_start_matches("postgres://");
                write!(f, "postgres://{host}")
            }
        }
    }
}

/// `--usage-store` of both processes (one variable, `MARKETPLACE_USAGE_STORE`): where usage is
/// kept, or `none` (the API's usage routes answer 503; the operator reports no usage).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageStoreFlag(pub Option<UsageStoreLocation>);

impl FromStr for UsageStoreFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "none" {
            return Ok(UsageStoreFlag(None));
        }
        text.parse()
            .map(|location| UsageStoreFlag(Some(location)))
            .map_err(|e| format!("{e}, or none"))
    }
}

/// Either store, chosen at start-up.
pub enum AnyUsageStore {
    Sqlite(SqliteUsageStore),
    /// Boxed: its connection settings make it far larger than the SQLite handle.
    Postgres(Box<PostgresUsageStore>),
}

impl AnyUsageStore {
    /// Opens the store at `location` (creating its tables).
    pub async fn open(location: &UsageStoreLocation) -> Result<AnyUsageStore, StoreError> {
        Ok(match location {
            UsageStoreLocation::Sqlite(path) => {
                AnyUsageStore::Sqlite(SqliteUsageStore::open(path)?)
            }
            UsageStoreLocation::Postgres(url) => {
                AnyUsageStore::Postgres(Box::new(PostgresUsageStore::connect(url).await?))
            }
        })
    }
}

impl UsageStore for AnyUsageStore {
    async fn record(&self, events: &[UsageEvent]) -> Result<Recorded, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.record(events).await,
            AnyUsageStore::Postgres(s) => s.record(events).await,
        }
    }

    async fn totals(&self, query: MeterQuery<'_>) -> Result<MeterTotals, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.totals(query).await,
            AnyUsageStore::Postgres(s) => s.totals(query).await,
        }
    }

    async fn mark_reported(&self, report: &PeriodReport) -> Result<bool, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.mark_reported(report).await,
            AnyUsageStore::Postgres(s) => s.mark_reported(report).await,
        }
    }

    async fn reported(&self, key: &ReportKey) -> Result<Option<PeriodReport>, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.reported(key).await,
            AnyUsageStore::Postgres(s) => s.reported(key).await,
        }
    }

    async fn reports(
        &self,
        tenant: Option<&str>,
        since: UsagePeriod,
    ) -> Result<Vec<PeriodReport>, StoreError> {
        match self {
            AnyUsageStore::Sqlite(s) => s.reports(tenant, since).await,
            AnyUsageStore::Postgres(s) => s.reports(tenant, since).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_takes_a_sqlite_path_or_a_postgres_url() {
        assert_eq!(
            "sqlite:/data/usage.sqlite".parse(),
            Ok(UsageStoreLocation::Sqlite("/data/usage.sqlite".into()))
        );
        let pg: UsageStoreLocation = "postgres://app:secret@db:5432/usage".parse().unwrap();
        assert_eq!(pg.to_string(), "postgres://db:5432/usage");
        assert!("sqlite:".parse::<UsageStoreLocation>().is_err());
        let err = "mysql://u:pw@h/db"
            .parse::<UsageStoreLocation>()
            .unwrap_err();
        assert!(!err.contains("pw"), "{err}");
    }

    #[test]
    fn the_flag_may_switch_the_store_off_and_explains_a_bad_one() {
        assert_eq!("none".parse(), Ok(UsageStoreFlag(None)));
        assert_eq!(
            "sqlite:/data/usage.sqlite".parse(),
            Ok(UsageStoreFlag(Some(UsageStoreLocation::Sqlite(
                "/data/usage.sqlite".into()
            ))))
        );
        let bad = "mysql://x".parse::<UsageStoreFlag>().unwrap_err();
        assert!(
            bad.contains("postgres://") && bad.ends_with("or none"),
            "{bad}"
        );
        assert!("None".parse::<UsageStoreFlag>().is_err(), "only `none`");
    }
}

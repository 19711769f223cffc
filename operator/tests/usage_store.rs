//! The usage store's contract, one suite run against both backends: embedded SQLite (a file in
//! a temporary folder) and PostgreSQL (Debian's, started on 127.0.0.1 by the harness, one
//! server for this binary). Tests run concurrently, so each uses its own tenant.

use jiff::Timestamp;
use marketplace_operator::credits::{CreditGrant, CreditStore, settle_once};
use marketplace_operator::metering::postgres::PostgresUsageStore;
use marketplace_operator::metering::sqlite::SqliteUsageStore;
use marketplace_operator::metering::{
    MeterQuery, PeriodReport, ReportKey, UsageEvent, UsagePeriod, UsageStore,
};
use serde_json::{Value, json};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn event(tenant: &str, id: &str, meter: &str, time: &str, data: Value) -> UsageEvent {
    UsageEvent {
        tenant: tenant.into(),
        source: "/tests".into(),
        id: id.into(),
        meter: meter.into(),
        time: at(time),
        data,
    }
}

fn november() -> UsagePeriod {
    UsagePeriod::containing(at("2026-11-15T00:00:00Z"))
}

fn query<'a>(tenant: &'a str, meter: &'a str, property: Option<&'a str>) -> MeterQuery<'a> {
    MeterQuery {
        tenant,
        meter,
        period: november(),
        property,
    }
}

/// The suite: each function takes a fresh-enough store (its tenant is unique to the test).
mod suite {
    use super::*;

    pub async fn duplicates_are_counted_once(store: &impl UsageStore, tenant: &str) {
        let batch = [
            event(tenant, "a", "api_call", "2026-11-02T10:00:00Z", Value::Null),
            event(tenant, "b", "api_call", "2026-11-02T10:00:01Z", Value::Null),
            // A retry inside the same batch.
            event(tenant, "a", "api_call", "2026-11-02T10:00:00Z", Value::Null),
        ];
        let first = store.record(&batch).await.unwrap();
        assert_eq!((first.accepted, first.duplicates), (2, 1));
        // The whole batch retried, plus one new event.
        let mut again = batch.to_vec();
        again.push(event(
            tenant,
            "c",
            "api_call",
            "2026-11-03T00:00:00Z",
            Value::Null,
        ));
        let second = store.record(&again).await.unwrap();
        assert_eq!((second.accepted, second.duplicates), (1, 3));
        let totals = store.totals(query(tenant, "api_call", None)).await.unwrap();
        assert_eq!(totals.count, 3);
    }

    pub async fn ids_are_scoped_to_tenant_and_source(store: &impl UsageStore, tenant: &str) {
        let other = format!("{tenant}-other");
        let mut from_elsewhere =
            event(tenant, "x", "api_call", "2026-11-02T00:00:00Z", Value::Null);
        from_elsewhere.source = "/elsewhere".into();
        let recorded = store
            .record(&[
                event(tenant, "x", "api_call", "2026-11-02T00:00:00Z", Value::Null),
                event(&other, "x", "api_call", "2026-11-02T00:00:00Z", Value::Null),
                from_elsewhere,
            ])
            .await
            .unwrap();
        assert_eq!(recorded.accepted, 3);
        let mine = store.totals(query(tenant, "api_call", None)).await.unwrap();
        let theirs = store.totals(query(&other, "api_call", None)).await.unwrap();
        assert_eq!((mine.count, theirs.count), (2, 1));
    }

    pub async fn totals_aggregate_a_property(store: &impl UsageStore, tenant: &str) {
        let events = [
            event(
                tenant,
                "1",
                "llm.tokens",
                "2026-11-01T00:00:00Z",
                json!({"tokens": 100, "user": "ana"}),
            ),
            event(
                tenant,
                "2",
                "llm.tokens",
                "2026-11-10T00:00:00Z",
                json!({"tokens": 250.5, "user": "bo"}),
            ),
            event(
                tenant,
                "3",
                "llm.tokens",
                "2026-11-30T23:59:59Z",
                json!({"tokens": 50, "user": "ana"}),
            ),
            // Not a number: counted, but not summed.
            event(
                tenant,
                "4",
                "llm.tokens",
                "2026-11-11T00:00:00Z",
                json!({"tokens": "n/a", "user": "cy"}),
            ),
            // Next period, another meter: not in November's tokens.
            event(
                tenant,
                "5",
                "llm.tokens",
                "2026-12-01T00:00:00Z",
                json!({"tokens": 1000, "user": "dee"}),
            ),
            event(
                tenant,
                "6",
                "api_call",
                "2026-11-05T00:00:00Z",
                json!({"tokens": 7}),
            ),
        ];
        store.record(&events).await.unwrap();
        let tokens = store
            .totals(query(tenant, "llm.tokens", Some("tokens")))
            .await
            .unwrap();
        assert_eq!(tokens.count, 4);
        assert_eq!(tokens.sum, 400.5);
        assert_eq!(tokens.max, Some(250.5));
        assert_eq!(tokens.unique, 4);
        let users = store
            .totals(query(tenant, "llm.tokens", Some("user")))
            .await
            .unwrap();
        assert_eq!((users.unique, users.sum, users.max), (3, 0.0, None));
        let december = MeterQuery {
            period: november().next(),
            ..query(tenant, "llm.tokens", Some("tokens"))
        };
        assert_eq!(store.totals(december).await.unwrap().sum, 1000.0);
        let nothing = store
            .totals(query(tenant, "unknown", Some("tokens")))
            .await
            .unwrap();
        assert_eq!((nothing.count, nothing.sum, nothing.max), (0, 0.0, None));
        assert!(
            store
                .totals(query(tenant, "llm.tokens", Some("x'); --")))
                .await
                .is_err()
        );
    }

    pub async fn a_period_is_reported_once(store: &impl UsageStore, tenant: &str) {
        let key = ReportKey {
            tenant: tenant.into(),
            meter: "api_call".into(),
            period: november(),
            subscription: "docs".into(),
        };
        assert_eq!(store.reported(&key).await.unwrap(), None);
        let report = PeriodReport {
            key: key.clone(),
            quantity: 1500.0,
            billable_units: 500,
            amount: "5".into(),
            reference: "line-item-1".into(),
            reported_at: at("2026-12-01T00:05:00Z"),
        };
        assert!(store.mark_reported(&report).await.unwrap());
        let retry = PeriodReport {
            reference: "line-item-2".into(),
            ..report.clone()
        };
        assert!(!store.mark_reported(&retry).await.unwrap());
        assert_eq!(store.reported(&key).await.unwrap(), Some(report.clone()));
        let other = ReportKey {
            period: november().next(),
            ..key.clone()
        };
        assert_eq!(store.reported(&other).await.unwrap(), None);
        // The tenant's reports since a period, oldest first; others' are not among them.
        let december = PeriodReport {
            key: other,
            ..report.clone()
        };
        assert!(store.mark_reported(&december).await.unwrap());
        let elsewhere = PeriodReport {
            key: ReportKey {
                tenant: format!("{tenant}-other"),
                ..key.clone()
            },
            ..report.clone()
        };
        assert!(store.mark_reported(&elsewhere).await.unwrap());
        let mine = store.reports(Some(tenant), november()).await.unwrap();
        assert_eq!(mine, [report.clone(), december.clone()]);
        let since_december = store
            .reports(Some(tenant), november().next())
            .await
            .unwrap();
        assert_eq!(since_december, [december]);
        let everyone = store.reports(None, november()).await.unwrap();
        assert!(everyone.contains(&elsewhere) && everyone.contains(&report));
    }
}

/// The credit ledger: grants kept once by id, a usage key settled once with its deductions
/// (earliest expiry first), whatever is asked again later.
pub async fn credits_are_granted_once_and_settled_once(store: &impl CreditStore, tenant: &str) {
    let grant = |id: &str, micros: i64, expires: &str| CreditGrant {
        tenant: tenant.into(),
        id: id.into(),
        currency: "USD".into(),
        amount_micros: micros,
        granted_at: at("2026-10-01T00:00:00Z"),
        expires_at: at(expires),
        granted_by: "ana".into(),
        reason: "welcome".into(),
    };
    let later = grant("later", 5_000_000, "2027-06-01T00:00:00Z");
    assert!(store.add_grant(&later).await.unwrap());
    assert!(!store.add_grant(&later).await.unwrap());
    let sooner = grant("sooner", 2_000_000, "2027-01-01T00:00:00Z");
    assert!(store.add_grant(&sooner).await.unwrap());
    let ledger = store.ledger(tenant).await.unwrap();
    assert_eq!(ledger.grants, [later.clone(), sooner.clone()]);

    let now = at("2026-12-01T01:00:00Z");
    let key = "sub/2026-11";
    let settled = settle_once(store, tenant, key, "USD", 3_000_000, now)
        .await
        .unwrap();
    assert_eq!(
        (settled.credited_micros, settled.remainder_micros()),
        (3_000_000, 0)
    );
    // Asked again (a retry, a restart, with other usage): the first settlement stands.
    let again = settle_once(store, tenant, key, "USD", 9_000_000, now)
        .await
        .unwrap();
    assert_eq!(again, settled);
    let ledger = store.ledger(tenant).await.unwrap();
    let paid: Vec<(&str, i64)> = ledger
        .deductions
        .iter()
        .map(|d| (d.grant_id.as_str(), d.amount_micros))
        .collect();
    assert_eq!(paid, [("later", 1_000_000), ("sooner", 2_000_000)]);
    // A second writer's settlement of the same key records nothing.
    let mut other = settled.clone();
    other.credited_micros = 1;
    assert!(!store.settle(&other, &ledger.deductions[..1]).await.unwrap());
    assert_eq!(store.ledger(tenant).await.unwrap().deductions.len(), 2);
    assert_eq!(
        store.settlements(tenant).await.unwrap(),
        std::slice::from_ref(&settled)
    );
    assert_eq!(store.settlement(tenant, key).await.unwrap(), Some(settled));
    // Another tenant has nothing.
    let elsewhere = format!("{tenant}-other");
    assert_eq!(store.ledger(&elsewhere).await.unwrap().grants.len(), 0);
    assert_eq!(store.settlement(&elsewhere, key).await.unwrap(), None);
}

/// One `#[tokio::test]` per suite function, for a backend made by `$store` (an async
/// expression).
macro_rules! store_suite {
    ($backend:ident, $store:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn duplicates_are_counted_once() {
                let store = $store;
                suite::duplicates_are_counted_once(&store, concat!(stringify!($backend), "-dup"))
                    .await;
            }

            #[tokio::test]
            async fn ids_are_scoped_to_tenant_and_source() {
                let store = $store;
                suite::ids_are_scoped_to_tenant_and_source(
                    &store,
                    concat!(stringify!($backend), "-ids"),
                )
                .await;
            }

            #[tokio::test]
            async fn totals_aggregate_a_property() {
                let store = $store;
                suite::totals_aggregate_a_property(&store, concat!(stringify!($backend), "-sum"))
                    .await;
            }

            #[tokio::test]
            async fn credits_are_granted_once_and_settled_once() {
                let store = $store;
                super::credits_are_granted_once_and_settled_once(
                    &store,
                    concat!(stringify!($backend), "-credits"),
                )
                .await;
            }

            #[tokio::test]
            async fn a_period_is_reported_once() {
                let store = $store;
                suite::a_period_is_reported_once(&store, concat!(stringify!($backend), "-report"))
                    .await;
            }
        }
    };
}

/// A SQLite store in its own temporary folder (kept until the binary ends).
fn sqlite_store() -> SqliteUsageStore {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    SqliteUsageStore::open(&dir.path().join("usage.sqlite")).unwrap()
}

/// The binary's PostgreSQL server, started once.
fn postgres_url() -> &'static str {
    static SERVER: std::sync::OnceLock<marketplace_harness::postgres::Postgres> =
        std::sync::OnceLock::new();
    SERVER
        .get_or_init(|| {
            marketplace_harness::postgres::Postgres::start_temporary()
                .unwrap_or_else(|e| panic!("starting PostgreSQL (scripts/install-postgres): {e}"))
        })
        .url()
}

store_suite!(sqlite, sqlite_store());
store_suite!(
    postgres,
    PostgresUsageStore::connect(postgres_url()).await.unwrap()
);

#[tokio::test]
async fn sqlite_keeps_usage_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    let events = [event(
        "reopen",
        "a",
        "api_call",
        "2026-11-02T00:00:00Z",
        Value::Null,
    )];
    SqliteUsageStore::open(&path)
        .unwrap()
        .record(&events)
        .await
        .unwrap();
    let reopened = SqliteUsageStore::open(&path).unwrap();
    let again = reopened.record(&events).await.unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 1));
    assert_eq!(
        reopened
            .totals(query("reopen", "api_call", None))
            .await
            .unwrap()
            .count,
        1
    );
}

/// TLS as libpq's URL parameters ask: `sslmode=require` with `sslrootcert` connects and works;
/// without the CA the server's certificate is refused, and a server without TLS is refused.
#[tokio::test]
async fn postgres_over_tls_verifies_the_server() {
    let (server, ca) = marketplace_harness::postgres::Postgres::start_temporary_with_tls()
        .unwrap_or_else(|e| panic!("starting PostgreSQL (scripts/install-postgres): {e}"));
    let url = format!(
        "{}?sslmode=require&sslrootcert={}",
        server.url(),
        ca.display()
    );
    let store = PostgresUsageStore::connect(&url).await.unwrap();
    let events = [event(
        "tls",
        "a",
        "api_call",
        "2026-11-02T00:00:00Z",
        Value::Null,
    )];
    assert_eq!(store.record(&events).await.unwrap().accepted, 1);

    let untrusted = PostgresUsageStore::connect(&format!("{}?sslmode=require", server.url()))
        .await
        .err()
        .expect("a certificate from an unknown CA is refused");
    assert!(untrusted.to_string().contains("certificate"), "{untrusted}");

    let plain = PostgresUsageStore::connect(&format!("{}?sslmode=require", postgres_url()))
        .await
        .err()
        .expect("a server without TLS is refused when TLS is required");
    assert!(plain.to_string().contains("TLS"), "{plain}");
}

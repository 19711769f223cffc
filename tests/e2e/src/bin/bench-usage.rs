//! `bench-usage`: the usage stores' ingest rate with dedupe on, and the delay from an event to
//! the aggregate that shows it, for SQLite (a temporary file) and PostgreSQL (Debian's, started
//! on 127.0.0.1 by the harness). Run by `scripts/bench-usage`; bounded in count and time.
//!
//! Per store: N new events in batches of B from C concurrent senders (events/s, every event a
//! primary-key dedupe probe); the same N again (all duplicates); then D single events, each
//! followed by totals until the count shows it (p50/p95/max delay).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use jiff::Timestamp;
use marketplace_operator::metering::postgres::PostgresUsageStore;
use marketplace_operator::metering::sqlite::SqliteUsageStore;
use marketplace_operator::metering::{MeterQuery, UsageEvent, UsagePeriod, UsageStore};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Events ingested per store.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Events per request (the API takes at most 1000).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Single events timed from record to aggregate.
    #[arg(long, default_value_t = 200)]
    delays: usize,
}

fn events(tenant: &str, from: usize, count: usize, now: Timestamp) -> Vec<UsageEvent> {
    (from..from + count)
        .map(|i| UsageEvent {
            tenant: tenant.to_string(),
            source: "/bench".into(),
            id: format!("event-{i}"),
            meter: "api_call".into(),
            time: now,
            data: json!({"tokens": i % 100}),
        })
        .collect()
}

/// Records `all` in batches from `concurrency` tasks; returns (accepted, duplicates, seconds).
async fn ingest<S: UsageStore + 'static>(
    store: Arc<S>,
    all: Arc<Vec<UsageEvent>>,
    batch: usize,
    concurrency: usize,
) -> (u64, u64, f64) {
    let started = Instant::now();
    let chunks: Vec<(usize, usize)> = (0..all.len())
        .step_by(batch)
        .map(|i| (i, (i + batch).min(all.len())))
        .collect();
    let per_task = chunks.len().div_ceil(concurrency);
    let mut tasks = Vec::new();
    for mine in chunks.chunks(per_task.max(1)) {
        let (store, all, mine) = (store.clone(), all.clone(), mine.to_vec());
        tasks.push(tokio::spawn(async move {
            let (mut accepted, mut duplicates) = (0, 0);
            for (from, to) in mine {
                let recorded = store.record(&all[from..to]).await.expect("record");
                accepted += recorded.accepted;
                duplicates += recorded.duplicates;
            }
            (accepted, duplicates)
        }));
    }
    let (mut accepted, mut duplicates) = (0, 0);
    for task in tasks {
        let (a, d) = task.await.expect("task");
        accepted += a;
        duplicates += d;
    }
    (accepted, duplicates, started.elapsed().as_secs_f64())
}

async fn run<S: UsageStore + 'static>(name: &str, store: S, args: &Args) {
    let store = Arc::new(store);
    let now = Timestamp::now();
    let all = Arc::new(events("bench", 0, args.events, now));
    let (accepted, _, secs) =
        ingest(store.clone(), all.clone(), args.batch, args.concurrency).await;
    assert_eq!(accepted as usize, args.events);
    println!(
        "{name}: ingest {} new events, batches of {}, {} senders: {:.2} s, {:.0} events/s",
        args.events,
        args.batch,
        args.concurrency,
        secs,
        args.events as f64 / secs
    );
    let (_, duplicates, secs) = ingest(store.clone(), all, args.batch, args.concurrency).await;
    assert_eq!(duplicates as usize, args.events);
    println!(
        "{name}: the same {} again (all duplicates): {:.2} s, {:.0} events/s",
        args.events,
        secs,
        args.events as f64 / secs
    );
    let query = MeterQuery {
        tenant: "bench",
        meter: "api_call",
        period: UsagePeriod::containing(now),
        property: Some("tokens"),
    };
    let mut count = store.totals(query).await.expect("totals").count;
    let mut delays = Vec::new();
    for i in 0..args.delays {
        let event = events("bench", args.events + i, 1, now);
        let started = Instant::now();
        store.record(&event).await.expect("record");
        loop {
            let totals = store.totals(query).await.expect("totals");
            if totals.count > count {
                count = totals.count;
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the event never showed"
            );
        }
        delays.push(started.elapsed());
    }
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{name}: event -> aggregate over {} events in the period ({} samples): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        count,
        delays.len(),
        at(0.5),
        at(0.95),
        at(1.0)
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteUsageStore::open(&dir.path().join("usage.sqlite")).expect("sqlite");
    run("sqlite", sqlite, &args).await;
    let server = marketplace_harness::postgres::Postgres::start_temporary()
        .expect("PostgreSQL (scripts/install-postgres)");
    let postgres = PostgresUsageStore::connect(server.url())
        .await
        .expect("postgres");
    run("postgres", postgres, &args).await;
}

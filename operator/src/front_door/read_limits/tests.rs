use std::time::{Duration, Instant};

use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_minute_of_reads_passes_at_once_then_one_a_second() {
    let t0 = Instant::now();
    let mut bucket = None;
    for n in 0..60 {
        let (after, verdict) = take(bucket, 60, t0);
        assert_eq!(verdict, Ok(()), "read {n}");
        bucket = Some(after);
    }
    let (after, verdict) = take(bucket, 60, t0);
    assert_eq!(verdict, Err(1), "the 61st waits a second");
    // Half a second later it still waits (rounded up to whole seconds).
    let (after, verdict) = take(Some(after), 60, t0 + Duration::from_millis(500));
    assert_eq!(verdict, Err(1));
    let (after, verdict) = take(Some(after), 60, t0 + secs(1));
    assert_eq!(verdict, Ok(()));
    // A minute idle refills the bucket, never beyond a minute's worth.
    let mut bucket = Some(after);
    let later = t0 + secs(3600);
    for _ in 0..60 {
        let (after, verdict) = take(bucket, 60, later);
        assert_eq!(verdict, Ok(()));
        bucket = Some(after);
    }
    assert_eq!(take(bucket, 60, later).1, Err(1));
}

#[test]
fn retry_after_is_whole_seconds_until_the_next_token() {
    let t0 = Instant::now();
    // 6 a minute: one token every 10 s.
    let empty = Bucket {
        tokens: 0.0,
        at: t0,
    };
    assert_eq!(take(Some(empty), 6, t0).1, Err(10));
    assert_eq!(take(Some(empty), 6, t0 + secs(4)).1, Err(6));
    assert_eq!(take(Some(empty), 6, t0 + secs(10)).1, Ok(()));
    // A clock that goes backwards refills nothing and panics nowhere.
    let ahead = Bucket {
        tokens: 0.0,
        at: t0 + secs(5),
    };
    assert_eq!(take(Some(ahead), 6, t0).1, Err(10));
}

fn limiter(tracked: usize) -> ReadLimiter {
    ReadLimiter::new(ReadLimitSettings {
        checks_per_minute: 1000,
        browse_per_minute: 10,
        details_per_minute: 2,
        tracked_tenants: tracked,
    })
}

#[test]
fn tenants_and_classes_have_their_own_buckets() {
    let t0 = Instant::now();
    let limits = limiter(100);
    assert_eq!(limits.admit("acme", ReadClass::Detail, t0), Ok(()));
    assert_eq!(limits.admit("acme", ReadClass::Detail, t0), Ok(()));
    assert_eq!(limits.admit("acme", ReadClass::Detail, t0), Err(30));
    // Another tenant, or another class of the same tenant, is not affected.
    assert_eq!(limits.admit("globex", ReadClass::Detail, t0), Ok(()));
    assert_eq!(limits.admit("acme", ReadClass::Browse, t0), Ok(()));
    assert_eq!(limits.admit("acme", ReadClass::Check, t0), Ok(()));
    assert_eq!(
        limits.admit("acme", ReadClass::Detail, t0 + secs(30)),
        Ok(())
    );
}

#[test]
fn zero_means_unlimited() {
    let t0 = Instant::now();
    let limits = ReadLimiter::new(ReadLimitSettings::UNLIMITED);
    for _ in 0..10_000 {
        assert_eq!(limits.admit("acme", ReadClass::Detail, t0), Ok(()));
    }
    assert_eq!(limits.tracked(), 0, "nothing is kept for unlimited classes");
}

#[test]
fn memory_stays_bounded_and_busy_tenants_keep_their_buckets() {
    let t0 = Instant::now();
    let limits = limiter(10);
    // acme is over its detail rate and keeps reading.
    for _ in 0..3 {
        let _ = limits.admit("acme", ReadClass::Detail, t0);
    }
    // Many tenants read once each, a second apart.
    for n in 0..1000u64 {
        let _ = limits.admit(&format!("t{n}"), ReadClass::Browse, t0 + secs(n / 100));
        assert!(limits.tracked() <= 10, "{} tracked", limits.tracked());
        let _ = limits.admit("acme", ReadClass::Check, t0 + secs(n / 100));
    }
    assert!(
        limits
            .admit("acme", ReadClass::Detail, t0 + secs(9))
            .is_err(),
        "the busy tenant's bucket was not reset by the crowd"
    );
}

#[test]
fn full_buckets_are_dropped_first() {
    let t0 = Instant::now();
    let limits = limiter(2);
    assert_eq!(limits.admit("a", ReadClass::Detail, t0), Ok(()));
    assert_eq!(limits.admit("b", ReadClass::Detail, t0), Ok(()));
    // A minute later both are full again: both go, the newcomer fits.
    assert_eq!(limits.admit("c", ReadClass::Detail, t0 + secs(60)), Ok(()));
    assert_eq!(limits.tracked(), 1);
}

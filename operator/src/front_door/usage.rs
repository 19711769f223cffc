//! Entitlement checks counted per tenant and feature, and flushed to each Entitlement's
//! `status.usage` now and then (`--usage-flush-seconds`): the durable "last checked" that the
//! idle-feature nudge reads, summed across replicas. Checks are counted in memory on the read
//! path (no I/O); the flusher writes with an optimistic-concurrency retry, so two replicas
//! flushing at once both add their counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::{debug, warn};

use crate::api::entitlement::{Entitlement, Usage};
use crate::controllers::tenant_rbac::namespace_name;
use crate::runtime::Stores;

/// Checks of one feature of one tenant since the last flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    pub checks: u64,
    pub last: Timestamp,
}

/// Most (tenant, feature) pairs held between flushes; checks of new pairs beyond it are not
/// counted until the next flush (the ledger never grows without bound).
pub const LEDGER_CAPACITY: usize = 200_000;

/// The checks seen since the last flush.
#[derive(Clone, Default)]
pub struct UsageLedger {
    tallies: Arc<Mutex<HashMap<(String, String), Tally>>>,
}

impl UsageLedger {
    /// Counts a check of `feature` by `tenant` at `now`.
    pub fn record(&self, tenant: &str, feature: &str, now: Timestamp) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.to_string(), feature.to_string());
        let full = tallies.len() >= LEDGER_CAPACITY;
        match tallies.get_mut(&key) {
            Some(tally) => {
                tally.checks += 1;
                tally.last = tally.last.max(now);
            }
            None if !full => {
                tallies.insert(
                    key,
                    Tally {
                        checks: 1,
                        last: now,
                    },
                );
            }
            None => {}
        }
    }

    /// Takes everything counted so far.
    pub fn drain(&self) -> Vec<((String, String), Tally)> {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        tallies.drain().collect()
    }

    /// Puts back what could not be written, to try again at the next flush.
    pub fn restore(&self, key: (String, String), tally: Tally) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let entry = tallies.entry(key).or_insert(Tally {
            checks: 0,
            last: tally.last,
        });
        entry.checks += tally.checks;
        entry.last = entry.last.max(tally.last);
    }
}

/// The usage to record: what the Entitlement says plus what this replica counted.
pub fn merged_usage(recorded: Option<&Usage>, tally: Tally) -> Usage {
    let checks = i64::try_from(tally.checks).unwrap_or(i64::MAX);
    match recorded {
        Some(usage) => Usage {
            last_checked_at: Time(usage.last_checked_at.0.max(tally.last)),
            checks: usage.checks.saturating_add(checks),
        },
        None => Usage {
            last_checked_at: Time(tally.last),
            checks,
        },
    }
}

/// Writes the ledger to the Entitlements every `interval` until `stop`, then once more.
pub async fn run_flusher(
    client: Client,
    stores: Stores,
    ledger: UsageLedger,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let stopping = tokio::select! {
            _ = &mut stop => true,
            _ = tokio::time::sleep(interval) => false,
        };
        flush(&client, &stores, &ledger).await;
        if stopping {
            return;
        }
    }
}

/// Writes every tally to the tenant's Entitlements for that feature.
pub async fn flush(client: &Client, stores: &Stores, ledger: &UsageLedger) {
    for ((tenant, feature), tally) in ledger.drain() {
        if let Err(e) = flush_one(client, stores, &tenant, &feature, tally).await {
            warn!(%tenant, %feature, error = %e, "could not record usage; will retry");
            ledger.restore((tenant, feature), tally);
        }
    }
}

async fn flush_one(
    client: &Client,
    stores: &Stores,
    tenant: &str,
    feature: &str,
    tally: Tally,
) -> Result<(), kube::Error> {
    let namespace = namespace_name(tenant);
    let api: Api<Entitlement> = Api::namespaced(client.clone(), &namespace);
    let grants = stores
        .entitlements_in(&namespace)
        .into_iter()
        .filter(|e| e.spec.tenant.as_str() == tenant && e.spec.feature.as_str() == feature);
    for grant in grants {
        let name = grant.name_any();
        let mut current = Entitlement::clone(&grant);
        for attempt in 0..5 {
            let usage = merged_usage(
                current.status.as_ref().and_then(|s| s.usage.as_ref()),
                tally,
            );
            // resourceVersion makes this a compare-and-swap: a replica that flushed in between
            // makes it fail with 409, and the counts are merged again over its write.
            let patch = json!({
                "metadata": {"resourceVersion": current.resource_version()},
                "status": {"usage": usage},
            });
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => break,
                Err(kube::Error::Api(status)) if status.code == 409 && attempt < 4 => {
                    debug!(%name, "usage write raced another replica; merging again");
                    current = api.get(&name).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn checks_add_up_and_the_latest_time_wins() {
        let ledger = UsageLedger::default();
        ledger.record("acme", "routes", ts("2026-12-01T10:00:00Z"));
        ledger.record("acme", "routes", ts("2026-12-01T09:00:00Z"));
        ledger.record("acme", "chat", ts("2026-12-01T11:00:00Z"));
        let mut drained = ledger.drain();
        drained.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            drained[1],
            (
                ("acme".into(), "routes".into()),
                Tally {
                    checks: 2,
                    last: ts("2026-12-01T10:00:00Z")
                }
            )
        );
        assert!(ledger.drain().is_empty());
        let (key, tally) = drained.remove(0);
        ledger.restore(key.clone(), tally);
        ledger.record("acme", "chat", ts("2026-12-01T12:00:00Z"));
        assert_eq!(
            ledger.drain(),
            [(
                key,
                Tally {
                    checks: 2,
                    last: ts("2026-12-01T12:00:00Z")
                }
            )]
        );
    }

    #[test]
    fn recorded_usage_is_summed_with_what_this_replica_counted() {
        let tally = Tally {
            checks: 3,
            last: ts("2026-12-01T10:00:00Z"),
        };
        let first = merged_usage(None, tally);
        assert_eq!(first.checks, 3);
        let older = Tally {
            checks: 2,
            last: ts("2026-12-01T09:00:00Z"),
        };
        let second = merged_usage(Some(&first), older);
        assert_eq!(second.checks, 5);
        assert_eq!(second.last_checked_at.0, ts("2026-12-01T10:00:00Z"));
    }
}

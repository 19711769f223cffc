//! Leader election: every replica keeps its caches and endpoint; only the holder of the Lease
//! runs the writers. Losing the Lease stops the writers and reports it, so the process can exit
//! and compete afresh.

use std::future::Future;

use kube::Client;
use tracing::info;

use super::Shutdown;

/// The Lease the replicas compete for.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// Seconds a Lease is held without renewal.
    pub duration_seconds: u64,
    /// Seconds before expiry a holder renews.
    pub renew_grace_seconds: u64,
}

/// How leading ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderOutcome {
    /// Shutdown was requested (before or while leading).
    Stopped,
    /// Another replica took the Lease.
    LostLeadership,
}

/// Waits for the Lease, then runs `lead(stop)` while holding it; `stop` flips on shutdown or
/// when the Lease is lost. The Lease is released on return, so a standby takes over at once.
pub async fn run_while_leader<F, Fut>(
    client: Client,
    settings: &LeaseSettings,
    shutdown: &Shutdown,
    lead: F,
) -> Result<LeaderOutcome, String>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = ()>,
{
    let leases = kube_lease_manager::LeaseManagerBuilder::new(client, &settings.name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.duration_seconds)
        .with_grace(settings.renew_grace_seconds)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let (mut leader, lease_task) = leases.watch().await;
    info!(identity = %settings.identity, lease = %settings.name, "waiting for leadership");
    loop {
        if *leader.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = leader.changed() => {
                if changed.is_err() {
                    return Err("the lease task ended".into());
                }
            }
            _ = shutdown.requested() => {
                drop(leader);
                let _ = lease_task.await;
                return Ok(LeaderOutcome::Stopped);
            }
        }
    }
    info!("became leader");
    let lost = {
        let mut leader = leader.clone();
        async move {
            let _ = leader.wait_for(|is_leader| !*is_leader).await;
        }
    };
    let stop = shutdown.or(lost);
    lead(stop).await;
    let lost_leadership = !*leader.borrow() && !shutdown.is_requested();
    // Dropping the receiver releases the Lease.
    drop(leader);
    let _ = lease_task.await;
    Ok(if lost_leadership {
        LeaderOutcome::LostLeadership
    } else {
        LeaderOutcome::Stopped
    })
}

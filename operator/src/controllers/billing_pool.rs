//! The billing pool: billing calls of entitled-first subscriptions run here, a bounded number at
//! once, instead of inside a reconcile. A reconcile that needs such a call starts it and goes on
//! without it; the job wakes the subscription when it is done, and that reconcile takes the
//! outcome and reports it as if it had made the call itself. So entitling never waits behind
//! billing for a reconcile slot while HubSpot's rate budget is spent.
//!
//! Nothing here is durable, and nothing needs to be: every call is the idempotent ensure (or a
//! read), so an outcome lost to a crash or a restart is made again by the next reconcile, which
//! finds the record the lost job created.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument;

use super::subscription_billing::{BillingInputs, BillingOutcome, execute};
use crate::api::TenantSubscription;
use crate::api::listing::ListingSpec;
use crate::api::tenant::TenantSpec;
use crate::api::tenant_subscription::AppliedPromotion;
use crate::billing::{HubSpotClient, HubSpotError};
use crate::lifecycle::BillingIntent;
use crate::lifecycle::phase::plan_of;

/// Billing jobs running at once by default: enough for the client to fill its batches of 100.
pub const DEFAULT_BILLING_CONCURRENCY: usize = 128;
/// An outcome nobody took (its subscription was deleted) is dropped after this long.
const UNCLAIMED_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a finished job waits to wake its subscription.
const WAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a job was started for: an outcome serves only a reconcile that needs the same call for
/// the same spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKey {
    pub generation: Option<i64>,
    pub intent: BillingIntent,
}

/// Everything a job needs, owned (it outlives the reconcile that started it).
pub struct JobInputs {
    pub subscription: TenantSubscription,
    pub tenant_name: String,
    pub tenant: Option<TenantSpec>,
    pub listing: Option<ListingSpec>,
    pub started: Timestamp,
    /// The promotion the subscription keeps (possibly recorded in the reconcile that started
    /// the job), and that reconcile's time, which decides whether its discount still applies.
    pub promotion: Option<AppliedPromotion>,
    /// A bundle member's discount, likewise.
    pub bundle: Option<crate::api::tenant_subscription::AppliedBundle>,
    pub now: Timestamp,
}

struct Finished {
    key: JobKey,
    outcome: Result<BillingOutcome, HubSpotError>,
    at: Instant,
}

#[derive(Default)]
struct Jobs {
    running: HashSet<String>,
    finished: HashMap<String, Finished>,
}

/// The pool, shared by all reconciles of the process.
pub struct BillingPool {
    jobs: Arc<Mutex<Jobs>>,
    permits: Arc<Semaphore>,
}

impl BillingPool {
    pub fn new(concurrency: usize) -> Self {
        BillingPool {
            jobs: Arc::default(),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Whether a job of the subscription `uid` is running.
    pub fn is_running(&self, uid: &str) -> bool {
        self.jobs
            .lock()
            .expect("billing pool lock")
            .running
            .contains(uid)
    }

    /// The outcome of the subscription `uid`'s finished job if it was made for `key`; otherwise
    /// starts one (unless one is running) and returns `None`. A finished outcome for another key
    /// (the spec changed meanwhile) is dropped and the call made again.
    pub fn take_or_start(
        &self,
        client: &HubSpotClient,
        wake: mpsc::Sender<ObjectRef<TenantSubscription>>,
        uid: &str,
        key: JobKey,
        inputs: JobInputs,
    ) -> Option<Result<BillingOutcome, HubSpotError>> {
        let mut jobs = self.jobs.lock().expect("billing pool lock");
        if let Some(done) = jobs.finished.remove(uid)
            && done.key == key
        {
            return Some(done.outcome);
        }
        if !jobs.running.insert(uid.to_string()) {
            return None;
        }
        drop(jobs);
        let (client, jobs, permits) = (client.clone(), self.jobs.clone(), self.permits.clone());
        let uid = uid.to_string();
        let span = tracing::debug_span!(
            "billing_job",
            namespace = inputs.subscription.metadata.namespace.as_deref(),
            name = inputs.subscription.metadata.name.as_deref(),
            intent = ?key.intent,
        );
        let job = async move {
            let outcome = {
                let _permit = permits.acquire().await.expect("the pool is never closed");
                tracing::debug!("started");
                run(&client, key.intent, &inputs).await
            };
            tracing::debug!(ok = outcome.is_ok(), "done");
            {
                let mut jobs = jobs.lock().expect("billing pool lock");
                jobs.running.remove(&uid);
                jobs.finished.retain(|_, f| f.at.elapsed() < UNCLAIMED_TTL);
                jobs.finished.insert(
                    uid,
                    Finished {
                        key,
                        outcome,
                        at: Instant::now(),
                    },
                );
            }
            // Waits for room in the wake-up channel rather than dropping the wake-up (a full
            // channel would leave the outcome to the periodic re-check); bounded all the same.
            let object = ObjectRef::from_obj(&inputs.subscription);
            let _ = tokio::time::timeout(WAKE_TIMEOUT, wake.send(object)).await;
        };
        tokio::spawn(job.instrument(span));
        None
    }
}

async fn run(
    client: &HubSpotClient,
    intent: BillingIntent,
    i: &JobInputs,
) -> Result<BillingOutcome, HubSpotError> {
    let listing = i.listing.as_ref();
    let inputs = BillingInputs {
        subscription: &i.subscription,
        tenant_name: &i.tenant_name,
        tenant: i.tenant.as_ref(),
        listing,
        plan: plan_of(listing, &i.subscription.spec),
        started: i.started,
        promotion: i.promotion.as_ref(),
        bundle: i.bundle.as_ref(),
        now: i.now,
    };
    execute(Some(client), intent, &inputs).await
}

//! The reconcilers, one per kind, and what they share: a small [`Context`], the [`Error`] type,
//! per-object backoff, status writes and Events. Every controller is driven by the process's
//! shared caches ([`crate::runtime::Stores`], [`OperatorStores`]): one watch per kind, warm
//! before the first reconcile. [`run`] starts a chosen set of them through [`runner`].

pub mod announcements;
pub mod applied;
pub mod backoff;
pub mod billing_audit;
pub mod billing_pool;
pub mod bundle_subscription;
pub mod catalog_source;
pub mod connection_check;
pub mod credit_balance;
pub mod entitlements;
pub mod news;
pub mod notifications;
pub mod runner;
pub mod status;
pub mod subscription_action;
pub mod subscription_billing;
pub mod tenant;
pub mod tenant_owned;
pub mod tenant_rbac;
pub mod tenant_subscription;
pub mod usage_report;
pub mod webhook_hints;

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource, ResourceExt};
use tracing::warn;

use crate::api::{CatalogSource, SubscriptionAction};
use crate::runtime::event_recorder::Reporter;
use crate::runtime::{EventRecorder, SharedCache, Shutdown, Stores};
use backoff::Backoff;

/// What every reconciler gets.
pub struct Context {
    pub client: Client,
    /// Shared by all reconciles so repeated Events aggregate into series.
    pub recorder: EventRecorder,
    pub backoff: Backoff,
    pub config: ControllerConfig,
    /// Cached git repositories of CatalogSources.
    pub git: crate::catalog::git::GitCache,
    /// Always-warm caches of Listings, Tenants, subscriptions and Entitlements.
    pub stores: Stores,
    /// Caches of the kinds only the operator reconciles.
    pub operator_stores: OperatorStores,
    /// The HubSpot client; `None` when billing is not configured (subscriptions then wait in
    /// Provisioning with a condition saying so).
    pub billing: Option<crate::billing::HubSpotClient>,
    /// What webhooks and the drift audit learned about billing records, for the next reconcile.
    pub news: news::NewsBoard,
    /// What the Tenant controller knows of the objects it made, started with that controller.
    pub tenant_owned: std::sync::OnceLock<tenant_owned::TenantOwnedRecords>,
    /// Billing calls of entitled-first subscriptions, made outside the reconciles.
    pub billing_pool: billing_pool::BillingPool,
    /// The hash-chained record of every transition and billing call (disabled unless a path
    /// is configured).
    pub audit: crate::audit_log::AuditLog,
    pub metrics: Arc<crate::server::Metrics>,
    /// Notifications (channels, outbox, settings); `None` when they are off.
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    /// The usage store, for period-end usage reporting; `None`: usage is not reported.
    pub usage_store: Option<Arc<crate::metering::AnyUsageStore>>,
}

/// TenantSubscriptions reconciled at once by default. A reconcile mostly waits on HubSpot, and
/// the billing client coalesces the calls of concurrent reconciles into batches of ≤100
/// (`billing/coalesce.rs`): the more reconcile at once, the fewer calls a burst of purchases
/// costs (1,000 purchases: 9 calls each one at a time, well under one batched).
pub const DEFAULT_SUBSCRIPTION_CONCURRENCY: u16 = 128;

/// Settings of the controllers (from flags and environment).
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// The namespace the operator runs in (CatalogSources and SubscriptionActions live there).
    pub namespace: String,
    /// How long one git fetch may take.
    pub git_timeout: Duration,
    /// Where fetched repositories are cached.
    pub git_cache_dir: std::path::PathBuf,
    /// CatalogSources reconciled at once.
    pub catalog_concurrency: u16,
    /// Tenants reconciled at once.
    pub tenant_concurrency: u16,
    /// TenantSubscriptions reconciled at once.
    pub subscription_concurrency: u16,
    /// SubscriptionActions reconciled at once.
    pub action_concurrency: u16,
    /// Billing calls of entitled-first subscriptions made at once ([`billing_pool`]).
    pub billing_concurrency: usize,
    /// The platform's version, checked against listings' platformVersion ranges.
    pub platform_version: Option<semver::Version>,
    /// How often the HubSpot drift audit runs.
    pub audit_interval: Duration,
    /// What integration connection tests may reach.
    pub probe: crate::connection::ProbePolicy,
    /// Cancel HubSpot billing records that no subscription owns (otherwise only reported).
    pub cancel_orphans: bool,
    /// Deals younger than this are never called orphans (their subscription may not be cached
    /// yet).
    pub orphan_grace: Duration,
    /// Bill first or entitle first, for listings that do not choose; the EntitleFirst grace.
    pub billing_order: crate::lifecycle::billing_order::BillingOrderSettings,
    /// When closed usage periods are reported to HubSpot.
    pub usage_report: usage_report::UsageReportSettings,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: "marketplace-system".into(),
            git_timeout: Duration::from_secs(60),
            git_cache_dir: std::env::temp_dir().join("marketplace-git-cache"),
            catalog_concurrency: 2,
            tenant_concurrency: 4,
            subscription_concurrency: DEFAULT_SUBSCRIPTION_CONCURRENCY,
            action_concurrency: 4,
            billing_concurrency: billing_pool::DEFAULT_BILLING_CONCURRENCY,
            platform_version: None,
            audit_interval: Duration::from_secs(600),
            probe: crate::connection::ProbePolicy::default(),
            cancel_orphans: false,
            orphan_grace: Duration::from_secs(15 * 60),
            billing_order: Default::default(),
            usage_report: Default::default(),
        }
    }
}

/// Caches of the kinds that live in the operator's namespace and only the operator reads.
#[derive(Clone)]
pub struct OperatorStores {
    pub catalog_sources: SharedCache<CatalogSource>,
    pub actions: SharedCache<SubscriptionAction>,
}

impl OperatorStores {
    /// Starts one watch per kind in `namespace`.
    pub fn start(client: &Client, namespace: &str) -> Self {
        OperatorStores {
            catalog_sources: SharedCache::start(Api::namespaced(client.clone(), namespace)),
            actions: SharedCache::start(Api::namespaced(client.clone(), namespace)),
        }
    }

    pub async fn wait_until_ready(&self) {
        let _ = tokio::join!(
            self.catalog_sources.wait_until_ready(),
            self.actions.wait_until_ready(),
        );
    }
}

impl Context {
    /// A context reading the process's shared `stores`; the operator-only caches start here.
    pub fn new(
        client: Client,
        stores: Stores,
        config: ControllerConfig,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: status::OPERATOR_MANAGER.into(),
            instance,
        };
        let metrics = Arc::new(crate::server::Metrics::new());
        metrics.observe_stores(&stores);
        Self {
            recorder: EventRecorder::new(client.clone(), reporter),
            operator_stores: OperatorStores::start(&client, &config.namespace),
            stores,
            client,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            git: crate::catalog::git::GitCache::new(config.git_cache_dir.clone()),
            billing: None,
            news: news::NewsBoard::default(),
            billing_pool: billing_pool::BillingPool::new(config.billing_concurrency),
            tenant_owned: Default::default(),
            config,
            audit: crate::audit_log::AuditLog::disabled(),
            metrics,
            notifier: None,
            usage_store: None,
        }
    }

    /// The same context, sending notifications with `config` (starts the watches of
    /// NotificationChannels and Notifications in the operator's namespace).
    pub fn with_notifications(mut self, config: crate::notify::NotifyConfig) -> Self {
        let notifier = crate::notify::Notifier::start(&self.client, &self.config.namespace, config);
        self.metrics.observe_outbox(&notifier.records);
        self.notifier = Some(Arc::new(notifier));
        self
    }

    /// The same context, reporting closed usage periods from `store`.
    pub fn with_usage_store(mut self, store: Arc<crate::metering::AnyUsageStore>) -> Self {
        self.usage_store = Some(store);
        self
    }

    /// The same context, recording to `audit`.
    pub fn with_audit_log(mut self, audit: crate::audit_log::AuditLog) -> Self {
        self.audit = audit;
        self
    }

    /// Appends to the audit log; a failure is logged and counted, never fails a reconcile
    /// (the apiserver and HubSpot remain the sources of truth).
    pub fn record(&self, entry: crate::audit_log::AuditEntry) {
        if let Err(error) = self.audit.append(entry) {
            warn!(%error, "could not append to the audit log");
        }
    }

    /// The same context, billing through `client`.
    pub fn with_billing(mut self, client: crate::billing::HubSpotClient) -> Self {
        self.metrics.observe_hubspot(&client);
        self.billing = Some(client);
        self
    }

    /// Publishes an Event about `object`. Failing to record an Event never fails a reconcile.
    pub async fn event<K>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            // The Events API caps notes at 1 kB.
            note: Some(truncate(note, 1000)),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            warn!(%error, reason, "could not record an Event");
        }
    }
}

/// Which controllers and tasks [`run`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enabled {
    pub catalog_sources: bool,
    pub tenants: bool,
    pub subscriptions: bool,
    pub actions: bool,
    /// The periodic HubSpot drift audit.
    pub billing_audit: bool,
    /// Notification delivery and the scheduled messages (when the context has a notifier).
    pub notifications: bool,
    /// Period-end usage reporting (when the context has billing and a usage store).
    pub usage_reports: bool,
}

impl Enabled {
    /// Everything: what `marketplace operator` runs.
    pub const ALL: Enabled = Enabled {
        catalog_sources: true,
        tenants: true,
        subscriptions: true,
        actions: true,
        billing_audit: true,
        notifications: true,
        usage_reports: true,
    };
    /// Tenants and their subscriptions: what most suites and the activation benchmark need.
    pub const TENANTS_AND_SUBSCRIPTIONS: Enabled = Enabled {
        tenants: true,
        subscriptions: true,
        ..Enabled::NONE
    };
    /// Nothing; switch on what a test needs.
    pub const NONE: Enabled = Enabled {
        catalog_sources: false,
        tenants: false,
        subscriptions: false,
        actions: false,
        billing_audit: false,
        notifications: false,
        usage_reports: false,
    };
}

/// Runs the `enabled` controllers until `shutdown` (with the subscriptions, the re-reads that
/// webhooks ask for). Waits for the caches first, so no controller decides from an empty one.
pub async fn run(ctx: Arc<Context>, enabled: Enabled, shutdown: Shutdown) {
    tokio::join!(
        ctx.stores.wait_until_ready(),
        ctx.operator_stores.wait_until_ready()
    );
    let notifier = ctx.notifier.clone().filter(|_| enabled.notifications);
    if let Some(notifier) = &notifier {
        notifier.wait_until_ready().await;
    }
    let c = &ctx.config;
    let when = |on: bool, task: futures::future::BoxFuture<'static, ()>| async move {
        if on {
            task.await
        }
    };
    use futures::FutureExt;
    use runner::run_controller;
    tokio::join!(
        when(
            enabled.catalog_sources,
            run_controller(
                "CatalogSource",
                catalog_source::controller(&ctx),
                c.catalog_concurrency,
                catalog_source::reconcile,
                ctx.clone(),
                shutdown.clone(),
            )
            .boxed()
        ),
        when(
            enabled.tenants,
            run_controller(
                "Tenant",
                tenant::controller(&ctx),
                c.tenant_concurrency,
                tenant::reconcile,
                ctx.clone(),
                shutdown.clone(),
            )
            .boxed()
        ),
        when(
            enabled.subscriptions,
            run_controller(
                "TenantSubscription",
                tenant_subscription::controller(&ctx),
                c.subscription_concurrency,
                tenant_subscription::reconcile,
                ctx.clone(),
                shutdown.clone(),
            )
            .boxed()
        ),
        when(
            enabled.subscriptions,
            run_controller(
                "BundleSubscription",
                bundle_subscription::controller(&ctx),
                c.action_concurrency,
                bundle_subscription::reconcile,
                ctx.clone(),
                shutdown.clone(),
            )
            .boxed()
        ),
        when(
            enabled.actions,
            run_controller(
                "SubscriptionAction",
                subscription_action::controller(&ctx),
                c.action_concurrency,
                subscription_action::reconcile,
                ctx.clone(),
                shutdown.clone(),
            )
            .boxed()
        ),
        when(
            enabled.billing_audit,
            billing_audit::run(ctx.clone(), shutdown.requested()).boxed()
        ),
        when(
            enabled.subscriptions,
            webhook_hints::run(ctx.clone(), shutdown.requested()).boxed()
        ),
        when(
            enabled.usage_reports,
            usage_report::run(ctx.clone(), shutdown.requested()).boxed()
        ),
        async {
            if let Some(notifier) = &notifier {
                tokio::join!(
                    run_controller(
                        "Notification",
                        notifications::controller(notifier),
                        notifier.config.concurrency,
                        notifications::deliver,
                        ctx.clone(),
                        shutdown.clone(),
                    ),
                    notifications::run_schedules(ctx.clone(), shutdown.requested()),
                    announcements::run(ctx.clone(), shutdown.requested()),
                );
            }
        },
    );
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max.saturating_sub(3);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// Errors of reconciles. Each has a static category for metrics and logs (object names never
/// become metric labels).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Git(#[from] crate::catalog::git::GitError),
    #[error("the object is invalid: {0}")]
    InvalidObject(String),
    #[error("HubSpot: {0}")]
    Billing(#[from] crate::billing::HubSpotError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The reconcile wrote what it could and must be retried (e.g. entitlements failed after
    /// billing succeeded); the status says why.
    #[error("{0}")]
    Retry(String),
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    /// The reconciler's own error when the finalizer helper reports one of ours.
    fn from(error: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as Finalizer;
        match error {
            Finalizer::ApplyFailed(e) | Finalizer::CleanupFailed(e) => e,
            other => Error::Finalizer(Box::new(other)),
        }
    }
}

impl Error {
    /// A write refused because the object changed since it was read (409): the next reconcile
    /// decides again from the newer object; not a failure.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(status)) if status.code == 409)
    }

    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) if self.is_conflict() => "conflict",
            Error::Kube(_) => "kube",
            Error::Git(_) => "git",
            Error::InvalidObject(_) => "invalid_object",
            Error::Billing(_) => "billing",
            Error::Finalizer(_) => "finalizer",
            Error::Retry(_) => "retry",
        }
    }
}

/// The key backoff is tracked under: `namespace/name` or `name`.
pub fn object_key<K: Resource>(object: &K) -> String {
    match object.namespace() {
        Some(namespace) => format!("{namespace}/{}", object.name_any()),
        None => object.name_any(),
    }
}

/// The shared error policy: log, then retry with the object's own exponential backoff.
pub fn error_policy<K: Resource>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = object_key(object.as_ref());
    if error.is_conflict() {
        tracing::debug!(object = %key, "decided from a stale read; deciding again");
        return Action::requeue(Duration::from_millis(200));
    }
    let delay = ctx.backoff.failed(&key);
    // The failure itself is logged by the runner, inside the reconcile's span.
    tracing::debug!(object = %key, retry_in = ?delay, "retrying after backoff");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("short".into(), 10), "short");
        let cut = truncate("ééééé".into(), 6);
        assert!(cut.len() <= 6 && cut.ends_with("..."), "{cut}");
    }
}

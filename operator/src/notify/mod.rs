//! Notifications: the words ([`templates`]), the senders ([`send`]) and what the controllers
//! share ([`Notifier`]: the caches of channels and outbox records, the settings). The decisions
//! are in [`crate::lifecycle::notify`]; the outbox writer and the delivery reconciler in
//! [`crate::controllers::notifications`].

pub mod send;
pub mod templates;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::reflector::ObjectRef;

use crate::api::listing::ListingSpec;
use crate::api::tenant_subscription::TenantSubscriptionSpec;
use crate::api::{Notification, NotificationChannel};
use crate::lifecycle::notify::{RetryPolicy, ScheduleConfig};
use crate::runtime::SharedCache;

/// Settings of notifications (from flags).
#[derive(Clone, Debug, PartialEq)]
pub struct NotifyConfig {
    pub retry: RetryPolicy,
    pub schedule: ScheduleConfig,
    /// How often the scheduled messages are looked for.
    pub schedule_interval: Duration,
    /// Transitions older than this are not notified (after an outage, or when notifications
    /// are first switched on, old history is not announced).
    pub horizon: Duration,
    /// Outbox records delivered at once.
    pub concurrency: u16,
    /// How long Sent records are kept (see [`NotifyConfig::retention`]).
    pub retention: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            retry: RetryPolicy::default(),
            schedule: ScheduleConfig::default(),
            schedule_interval: Duration::from_secs(3600),
            horizon: Duration::from_secs(24 * 3600),
            concurrency: 16,
            retention: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

impl NotifyConfig {
    /// How long Sent records are kept: at least the horizon (a deleted record of a recent
    /// transition would be recorded and sent again) and the idle-nudge interval (the last
    /// nudge is read from the outbox).
    pub fn retention(&self) -> Duration {
        self.retention
            .max(self.horizon.saturating_mul(2))
            .max(self.schedule.idle_every)
    }
}

/// What the notification code shares: the channels and the outbox, watched in the operator's
/// namespace, and one HTTP client for webhooks.
pub struct Notifier {
    pub config: NotifyConfig,
    pub channels: SharedCache<NotificationChannel>,
    pub records: SharedCache<Notification>,
    pub http: reqwest::Client,
}

impl Notifier {
    /// Starts the two watches in `namespace`.
    pub fn start(client: &kube::Client, namespace: &str, config: NotifyConfig) -> Self {
        Notifier {
            config,
            channels: SharedCache::start(Api::namespaced(client.clone(), namespace)),
            records: SharedCache::start(Api::namespaced(client.clone(), namespace)),
            // Redirects could carry a signed request elsewhere: none are followed.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    pub async fn wait_until_ready(&self) {
        tokio::join!(
            self.channels.wait_until_ready(),
            self.records.wait_until_ready()
        );
    }

    /// Whether the outbox already holds a record of this name.
    pub fn recorded(&self, namespace: &str, name: &str) -> bool {
        self.records
            .get(&ObjectRef::new(name).within(namespace))
            .is_some()
    }
}

/// The facts a message is rendered from (see [`templates::VARIABLES`]).
pub struct MessageFacts<'a> {
    pub tenant_name: &'a str,
    pub tenant_display: Option<&'a str>,
    pub listing_name: &'a str,
    pub listing: Option<&'a ListingSpec>,
    pub spec: &'a TenantSubscriptionSpec,
    pub subscription: String,
    pub date: jiff::Timestamp,
    pub reason: Option<&'a str>,
}

/// The template variables of `facts`.
pub fn variables(facts: &MessageFacts<'_>) -> BTreeMap<String, String> {
    let plan = facts
        .listing
        .and_then(|l| l.plans.iter().find(|p| p.name == facts.spec.plan));
    let listing_display = facts
        .listing
        .map(|l| l.display_name.clone())
        .unwrap_or_else(|| facts.listing_name.to_string());
    let quickstart = facts
        .listing
        .and_then(|l| l.navigation.first())
        .map(|n| format!("open {} → {} in the product", n.menu, n.label))
        .unwrap_or_else(|| format!("{listing_display} is ready to use in the product"));
    let date = facts.date.strftime("%Y-%m-%d").to_string();
    [
        (
            "tenant",
            facts
                .tenant_display
                .unwrap_or(facts.tenant_name)
                .to_string(),
        ),
        ("listing", listing_display),
        (
            "plan",
            plan.map(|p| p.display_name.clone())
                .unwrap_or_else(|| facts.spec.plan.to_string()),
        ),
        (
            "price",
            plan.map(|p| {
                crate::front_door::storefront::price::total(&p.pricing, facts.spec.quantity)
            })
            .unwrap_or_else(|| "the agreed price".into()),
        ),
        ("quickstart", quickstart),
        ("subscription", facts.subscription.clone()),
        ("date", date),
        ("reason", facts.reason.unwrap_or("none given").to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

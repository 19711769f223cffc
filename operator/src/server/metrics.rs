//! `GET /metrics`: the operator's Prometheus metrics, in the OpenMetrics text format that
//! Prometheus scrapes natively.
//!
//! Every label value is a `&'static str` chosen by the code (a kind, a result, a finding
//! category, a webhook outcome), never an object name: label cardinality stays fixed however
//! many tenants there are. The one exception is a listing's name on the subscription gauges
//! ([`fleet`]), bounded by the catalog.
//!
//! Counters and histograms are kept as things happen; what the shared caches and the HubSpot
//! client already know (subscriptions by phase, revenue, HubSpot calls) is read at scrape time
//! by [`scraped::Sources`], so it can never drift from the truth. [`requests`] is the API process's.

pub mod fleet;
pub mod outbox;
pub mod requests;
pub mod scraped;

pub use scraped::{SCRAPED_METRICS, Sources};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::billing::HubSpotClient;
use crate::runtime::Stores;

/// `Content-Type` of the OpenMetrics text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Webhook outcomes, counted by `marketplace_webhooks_total{outcome}`. Refusals count once per
/// request (the [`crate::billing::WebhookError::category`] values, plus `bad_body` and
/// `too_large`); a verified request counts once per event it carried: `accepted` (forwarded as a
/// hint), `duplicate` (seen before) or `dropped` (the hint channel was full).
pub const WEBHOOK_OUTCOMES: &[&str] = &[
    "accepted",
    "forged",
    "stale",
    "replayed",
    "missing_signature",
    "bad_timestamp",
    "v1_not_accepted",
    "bad_body",
    "too_large",
    "duplicate",
    "dropped",
];

/// The kinds the controllers reconcile (`marketplace_reconciles_total{kind}`).
pub const RECONCILED_KINDS: &[&str] = &[
    "CatalogSource",
    "Tenant",
    "TenantSubscription",
    "SubscriptionAction",
];

/// Drift finding categories (`marketplace_drift_findings_total{kind}`): those of
/// [`crate::lifecycle::billing_drift::compare`] and the audit's orphans.
pub const DRIFT_KINDS: &[&str] = &[
    "missing_record",
    "cancelled_in_hubspot",
    "duplicate_subscriptions",
    "not_invoicing",
    "status_changed",
    "orphan_record",
    "unowned_billable_subscription",
];

/// Kinds of HubSpot objects the audit's orphan sweep deletes, counted by
/// `marketplace_billing_orphans_swept_total{kind}`.
pub const ORPHAN_KINDS: &[&str] = &[ORPHAN_LINE_ITEM, ORPHAN_SUBSCRIPTION];
pub const ORPHAN_LINE_ITEM: &str = "line_item";
pub const ORPHAN_SUBSCRIPTION: &str = "subscription";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindResult {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdmissionLabels {
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    channel: &'static str,
    event: &'static str,
    outcome: &'static str,
}

/// Outcomes of a notification delivery attempt (`marketplace_notifications_total{outcome}`):
/// accepted by the receiver, failed (tried again later), or failed for the last time.
pub const NOTIFICATION_OUTCOMES: &[&str] = &["sent", "failed", "dead_lettered"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// 5 ms … ~41 s: a reconcile is a few API calls, or a HubSpot round trip under rate limiting.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Creation to first Active: seconds for an Instant listing, up to days through approvals.
fn activation_histogram() -> Histogram {
    Histogram::new([
        0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 604800.0,
    ])
}

/// A gauge of seconds or a timestamp.
type FloatGauge = Gauge<f64, AtomicU64>;

/// The operator's metrics. Share one `Arc<Metrics>` between the controllers and the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindResult, Counter>,
    reconcile_duration: Family<KindLabel, Histogram>,
    drift_findings: Family<KindLabel, Counter>,
    orphans_swept: Family<KindLabel, Counter>,
    webhooks: Family<OutcomeLabel, Counter>,
    admissions: Family<AdmissionLabels, Counter>,
    billing_calls: Counter,
    activations: Counter,
    activation_latency: Histogram,
    leader: Gauge,
    audit_last_success: FloatGauge,
    audit_interval: FloatGauge,
    audit_findings: Gauge,
    notifications: Family<NotificationLabels, Counter>,
    sources: Arc<Sources>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let reconciles = Family::<KindResult, Counter>::default();
        let reconcile_duration =
            Family::<KindLabel, Histogram>::new_with_constructor(duration_histogram as fn() -> _);
        let drift_findings = Family::<KindLabel, Counter>::default();
        let orphans_swept = Family::<KindLabel, Counter>::default();
        let webhooks = Family::<OutcomeLabel, Counter>::default();
        let admissions = Family::<AdmissionLabels, Counter>::default();
        let billing_calls = Counter::default();
        let activations = Counter::default();
        let activation_latency = activation_histogram();
        let leader = Gauge::default();
        let audit_last_success = FloatGauge::default();
        let audit_interval = FloatGauge::default();
        let audit_findings = Gauge::default();
        let notifications = Family::<NotificationLabels, Counter>::default();
        let sources = Arc::new(Sources::default());
        // Known outcomes start at 0, so `rate()` and alerts see the first refusal.
        for outcome in WEBHOOK_OUTCOMES {
            let _ = webhooks.get_or_create(&OutcomeLabel { outcome });
        }
        for kind in ORPHAN_KINDS {
            let _ = orphans_swept.get_or_create(&KindLabel { kind });
        }
        for kind in DRIFT_KINDS {
            let _ = drift_findings.get_or_create(&KindLabel { kind });
        }
        for kind in RECONCILED_KINDS {
            let _ = reconciles.get_or_create(&KindResult { kind, result: "ok" });
            let _ = reconcile_duration.get_or_create(&KindLabel { kind });
        }
        // The common answer, so the family is exported before the first review.
        let _ = admissions.get_or_create(&AdmissionLabels {
            result: "allowed",
            reason: "Valid",
        });

        let mut registry = Registry::default();
        // Counters are registered without `_total`: the encoder appends it.
        registry.register(
            "marketplace_reconciles",
            "Reconciles finished, by kind and result",
            reconciles.clone(),
        );
        registry.register(
            "marketplace_reconcile_duration_seconds",
            "Time spent in one reconcile, by kind",
            reconcile_duration.clone(),
        );
        registry.register(
            "marketplace_drift_findings",
            "Drift found between the cluster and HubSpot, by finding category",
            drift_findings.clone(),
        );
        registry.register(
            "marketplace_billing_orphans_swept",
            "HubSpot objects left by a crash or a lost response that the audit deleted, by kind (line_item, subscription)",
            orphans_swept.clone(),
        );
        registry.register(
            "marketplace_webhooks",
            "HubSpot webhook requests refused (by reason) and events received (by outcome)",
            webhooks.clone(),
        );
        registry.register(
            "marketplace_admission_reviews",
            "TenantSubscription admission reviews answered, by result and rule reason",
            admissions.clone(),
        );
        registry.register(
            "marketplace_billing_calls",
            "Calls made to the billing system",
            billing_calls.clone(),
        );
        registry.register(
            "marketplace_activations",
            "Subscriptions activated",
            activations.clone(),
        );
        registry.register(
            "marketplace_activation_duration_seconds",
            "Time from a subscription's creation to its first Active phase",
            activation_latency.clone(),
        );
        registry.register(
            "marketplace_leader",
            "1 while this replica holds the leader lease, else 0",
            leader.clone(),
        );
        registry.register(
            "marketplace_billing_audit_last_success_timestamp_seconds",
            "When the last HubSpot drift audit finished without error (Unix seconds); when this replica started auditing before the first; 0 when it does not audit",
            audit_last_success.clone(),
        );
        registry.register(
            "marketplace_billing_audit_interval_seconds",
            "Seconds between HubSpot drift audits while this replica audits (the leader, with billing), else 0",
            audit_interval.clone(),
        );
        registry.register(
            "marketplace_billing_audit_findings",
            "Drift findings and orphans the last HubSpot drift audit reported",
            audit_findings.clone(),
        );
        registry.register(
            "marketplace_notifications",
            "Notification delivery attempts, by channel kind (smtp, slack, webhook), event and outcome (sent, failed, dead_lettered)",
            notifications.clone(),
        );
        registry.register_collector(Box::new(sources.clone()));
        Metrics {
            registry,
            reconciles,
            reconcile_duration,
            drift_findings,
            orphans_swept,
            webhooks,
            admissions,
            billing_calls,
            activations,
            activation_latency,
            leader,
            audit_last_success,
            audit_interval,
            audit_findings,
            notifications,
            sources,
        }
    }

    /// Reads subscriptions and listings from `stores` at every scrape (the first call wins).
    pub fn observe_stores(&self, stores: &Stores) {
        let _ = self.sources.stores.set(stores.clone());
    }

    /// Reads the notification outbox at every scrape (the first call wins).
    pub fn observe_outbox(&self, records: &crate::runtime::SharedCache<crate::api::Notification>) {
        let _ = self.sources.outbox.set(records.clone());
    }

    /// A notification delivery attempt over a `channel` kind about `event` ended in `outcome`
    /// (one of [`NOTIFICATION_OUTCOMES`]).
    pub fn notification_attempt(
        &self,
        channel: &'static str,
        event: &'static str,
        outcome: &'static str,
    ) {
        self.notifications
            .get_or_create(&NotificationLabels {
                channel,
                event,
                outcome,
            })
            .inc();
    }

    /// Attempts counted with these labels so far (for tests).
    pub fn notification_attempts(
        &self,
        channel: &'static str,
        event: &'static str,
        outcome: &'static str,
    ) -> u64 {
        self.notifications
            .get_or_create(&NotificationLabels {
                channel,
                event,
                outcome,
            })
            .get()
    }

    /// Reads the HubSpot client's call counters at every scrape (the first call wins).
    pub fn observe_hubspot(&self, client: &HubSpotClient) {
        let _ = self.sources.hubspot.set(client.clone());
    }

    /// This replica starts auditing every `interval`, at Unix time `now` (the clock of "audit
    /// not run" starts here, not at the epoch).
    pub fn auditing(&self, interval: Duration, now: f64) {
        self.audit_interval.set(interval.as_secs_f64());
        self.audit_last_success.set(now);
    }

    /// This replica stops auditing (it lost the lease, or is stopping).
    pub fn stopped_auditing(&self) {
        self.audit_interval.set(0.0);
    }

    /// An audit finished at Unix time `now`; `findings` counts its drift and orphans; `ok`
    /// when it ran to the end.
    pub fn audit_finished(&self, ok: bool, findings: usize, now: f64) {
        self.audit_findings
            .set(i64::try_from(findings).unwrap_or(i64::MAX));
        if ok {
            self.audit_last_success.set(now);
        }
    }

    /// One reconcile of `kind` ended with `result` (e.g. "ok", "error", "requeue").
    pub fn reconciled(&self, kind: &'static str, result: &'static str, elapsed: Duration) {
        self.reconciles
            .get_or_create(&KindResult { kind, result })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabel { kind })
            .observe(elapsed.as_secs_f64());
    }

    /// One drift finding of a static category (e.g. "missing_billing_record").
    pub fn drift_found(&self, kind: &'static str) {
        self.drift_findings.get_or_create(&KindLabel { kind }).inc();
    }

    /// One orphaned HubSpot object deleted by the audit's sweep (see [`ORPHAN_KINDS`]).
    pub fn orphan_swept(&self, kind: &'static str) {
        self.orphans_swept.get_or_create(&KindLabel { kind }).inc();
    }

    /// One webhook outcome (see [`WEBHOOK_OUTCOMES`]).
    pub fn webhook(&self, outcome: &'static str) {
        self.webhooks.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// The current count of one webhook outcome (for tests and diagnostics).
    pub fn webhook_count(&self, outcome: &'static str) -> u64 {
        self.webhooks
            .get(&OutcomeLabel { outcome })
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// One admission review answered: allowed or denied, with the rule's reason (e.g.
    /// `PlanNotFound`, or `Valid`, `Waits`, `SpecUnchanged` when allowed).
    pub fn admission(&self, allowed: bool, reason: &'static str) {
        let result = if allowed { "allowed" } else { "denied" };
        self.admissions
            .get_or_create(&AdmissionLabels { result, reason })
            .inc();
    }

    /// The count of admission reviews with `result` and `reason` (for tests and diagnostics).
    pub fn admission_count(&self, result: &'static str, reason: &'static str) -> u64 {
        self.admissions
            .get(&AdmissionLabels { result, reason })
            .map(|c| c.get())
            .unwrap_or(0)
    }

    pub fn billing_call(&self) {
        self.billing_calls.inc();
    }

    /// A subscription became Active for the first time, `latency` after it was created.
    pub fn activation(&self, latency: Option<Duration>) {
        self.activations.inc();
        if let Some(latency) = latency {
            self.activation_latency.observe(latency.as_secs_f64());
        }
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

pub(crate) fn routes(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    exposition(metrics.encode())
}

/// The scrape's answer: the OpenMetrics text, or an honest 500.
pub(crate) fn exposition(encoded: Result<String, std::fmt::Error>) -> Response {
    match encoded {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        // Writing into a String cannot fail; answer honestly if it ever does.
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn metrics_endpoint_lists_every_metric() {
        let m = Arc::new(Metrics::new());
        m.reconciled("TenantSubscription", "ok", Duration::from_millis(12));
        m.drift_found("missing_billing_record");
        m.orphan_swept("line_item");
        m.webhook("accepted");
        m.admission(false, "PlanNotFound");
        m.billing_call();
        m.activation(Some(Duration::from_secs(3)));
        m.set_leader(true);
        m.auditing(Duration::from_secs(600), 1_000.0);
        m.audit_finished(true, 2, 1_600.0);
        m.audit_finished(false, 5, 2_200.0);
        let res = routes(m.clone())
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        for line in [
            r#"marketplace_reconciles_total{kind="TenantSubscription",result="ok"} 1"#,
            r#"marketplace_reconcile_duration_seconds_count{kind="TenantSubscription"} 1"#,
            r#"marketplace_drift_findings_total{kind="missing_billing_record"} 1"#,
            r#"marketplace_billing_orphans_swept_total{kind="line_item"} 1"#,
            r#"marketplace_billing_orphans_swept_total{kind="subscription"} 0"#,
            r#"marketplace_webhooks_total{outcome="accepted"} 1"#,
            r#"marketplace_webhooks_total{outcome="forged"} 0"#,
            r#"marketplace_admission_reviews_total{result="denied",reason="PlanNotFound"} 1"#,
            "marketplace_billing_calls_total 1",
            "marketplace_activations_total 1",
            r#"marketplace_activation_duration_seconds_bucket{le="5.0"} 1"#,
            "marketplace_leader 1",
            "marketplace_billing_audit_last_success_timestamp_seconds 1600.0",
            "marketplace_billing_audit_interval_seconds 600.0",
            "marketplace_billing_audit_findings 5",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        m.set_leader(false);
        assert!(
            m.encode()
                .unwrap()
                .lines()
                .any(|l| l == "marketplace_leader 0")
        );
        assert_eq!(m.webhook_count("accepted"), 1);
        assert_eq!(m.webhook_count("stale"), 0);
    }

    #[tokio::test]
    async fn the_scrape_reads_the_caches_and_the_hubspot_client_once_given() {
        use crate::billing::{ApiToken, CALL_OUTCOMES, HubSpotConfig, Tier};
        let m = Metrics::new();
        let declared = |text: &str, name: &str| {
            let base = name.trim_end_matches("_total");
            text.lines()
                .any(|l| l.starts_with(&format!("# TYPE {base} ")))
        };
        let before = m.encode().unwrap();
        assert!(SCRAPED_METRICS.iter().all(|n| !declared(&before, n)));
        assert!(outbox::OUTBOX_METRICS.iter().all(|n| declared(&before, n)));
        m.observe_stores(&Stores::never_filled());
        let token = ApiToken::new("pat-na1-00000000-0000-0000-0000-000000000000").unwrap();
        let config = HubSpotConfig::new("http://127.0.0.1:9", token, Tier::Starter);
        m.observe_hubspot(&HubSpotClient::new(config).unwrap());
        let text = m.encode().unwrap();
        for name in SCRAPED_METRICS {
            assert!(declared(&text, name), "{name} missing in\n{text}");
        }
        for outcome in CALL_OUTCOMES {
            let line = format!(r#"marketplace_hubspot_calls_total{{outcome="{outcome}"}} 0"#);
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(
            text.lines()
                .any(|l| l == "marketplace_hubspot_rate_limit_wait_seconds_total 0.0")
        );
    }
}

//! `marketplace operator`: its flags, parsed and checked into [`OperatorSettings`]; the process
//! itself is [`crate::process::operator`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use jiff::SignedDuration;

use crate::api::listing::BillingOrder;
use crate::billing::{BillingMode, Tier};
use crate::controllers::ControllerConfig;
use crate::lifecycle::billing_order::{BillingOrderSettings, DEFAULT_ENTITLE_FIRST_GRACE};
use crate::process::operator::{HubSpotSettings, OperatorSettings, TokenSource};
use crate::runtime::LeaseSettings;
use crate::runtime::endpoint::EndpointSettings;

pub use crate::process::operator::OperatorError;

/// Settings of the controller process; every flag also reads an environment variable.
#[derive(Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Namespace the operator runs in.
    #[arg(
        long,
        env = "MARKETPLACE_NAMESPACE",
        default_value = "marketplace-system"
    )]
    pub namespace: String,
    /// Name of this replica (Events and leader election); the pod name in a cluster.
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// Folder for cached git repositories of CatalogSources.
    #[arg(
        long,
        env = "MARKETPLACE_GIT_CACHE",
        default_value = "/tmp/marketplace-git-cache"
    )]
    pub git_cache_dir: PathBuf,
    /// Time limit of one git fetch, in seconds.
    #[arg(long, env = "MARKETPLACE_GIT_TIMEOUT_SECONDS", default_value_t = 60)]
    pub git_timeout_seconds: u64,
    /// CatalogSources reconciled at once.
    #[arg(long, env = "MARKETPLACE_CATALOG_CONCURRENCY", default_value_t = 2)]
    pub catalog_concurrency: u16,
    /// Tenants reconciled at once.
    #[arg(long, env = "MARKETPLACE_TENANT_CONCURRENCY", default_value_t = 4)]
    pub tenant_concurrency: u16,
    /// TenantSubscriptions reconciled at once.
    #[arg(
        long,
        env = "MARKETPLACE_SUBSCRIPTION_CONCURRENCY",
        default_value_t = crate::controllers::DEFAULT_SUBSCRIPTION_CONCURRENCY
    )]
    pub subscription_concurrency: u16,
    /// SubscriptionActions reconciled at once.
    #[arg(long, env = "MARKETPLACE_ACTION_CONCURRENCY", default_value_t = 4)]
    pub action_concurrency: u16,
    /// Billing calls of EntitleFirst subscriptions made at once, outside the reconciles (the
    /// client batches what they send, so this bounds the batch size too).
    #[arg(
        long,
        env = "MARKETPLACE_BILLING_CONCURRENCY",
        default_value_t = crate::controllers::billing_pool::DEFAULT_BILLING_CONCURRENCY
    )]
    pub billing_concurrency: usize,
    /// The platform's version, checked against listings' platformVersion ranges.
    #[arg(long, env = "MARKETPLACE_PLATFORM_VERSION")]
    pub platform_version: Option<semver::Version>,
    /// Cancel HubSpot billing records tagged with our uid that no TenantSubscription owns
    /// (found by the drift audit); without it they are only reported.
    #[arg(long, env = "MARKETPLACE_CANCEL_ORPHANS")]
    pub cancel_orphans: bool,
    /// BillFirst (features once the HubSpot billing record exists) or EntitleFirst (features at
    /// once, billing right after), for listings whose spec.billing.order does not choose.
    #[arg(long, env = "MARKETPLACE_BILLING_ORDER", default_value = "BillFirst", value_parser = parse_billing_order)]
    pub billing_order: BillingOrder,
    /// Seconds an EntitleFirst subscription may stay without an established HubSpot billing
    /// record before it is Suspended (until billing succeeds).
    #[arg(
        long,
        env = "MARKETPLACE_ENTITLE_FIRST_GRACE_SECONDS",
        default_value_t = DEFAULT_ENTITLE_FIRST_GRACE.as_secs() as u64
    )]
    pub entitle_first_grace_seconds: u64,
    /// Seconds between HubSpot drift audits.
    #[arg(
        long,
        env = "MARKETPLACE_AUDIT_INTERVAL_SECONDS",
        default_value_t = 600
    )]
    pub audit_interval_seconds: u64,
    /// Let integration test connections reach loopback, private and link-local addresses
    /// (off: a tenant's connection settings must not make the operator probe its own network).
    #[arg(long, env = "MARKETPLACE_PROBE_ALLOW_PRIVATE")]
    pub probe_allow_private_targets: bool,
    /// PEM file of extra CA certificates trusted by test connections (e.g. a corporate CA).
    #[arg(long, env = "MARKETPLACE_PROBE_CA_FILE")]
    pub probe_ca_file: Option<PathBuf>,
    /// HubSpot API base URL.
    #[arg(long, env = "HUBSPOT_BASE_URL", default_value = crate::billing::DEFAULT_BASE_URL)]
    pub hubspot_base_url: String,
    /// HubSpot private-app token. Prefer --hubspot-token-secret in a cluster.
    #[arg(long, env = "HUBSPOT_TOKEN", hide_env_values = true)]
    pub hubspot_token: Option<String>,
    /// Secret (in the operator's namespace) whose key `token` holds the HubSpot token.
    #[arg(long, env = "HUBSPOT_TOKEN_SECRET")]
    pub hubspot_token_secret: Option<String>,
    /// HubSpot account tier (free, starter, professional, enterprise, limit-increase): sets the
    /// shared rate budget.
    #[arg(long, env = "HUBSPOT_TIER", default_value = "professional")]
    pub hubspot_tier: String,
    /// `payments` (commerce subscriptions invoice tenants) or `crm-only` (deals only; never
    /// chosen silently).
    #[arg(long, env = "HUBSPOT_BILLING_MODE", default_value = "payments")]
    pub billing_mode: String,
    /// Milliseconds the HubSpot client gathers billing work from concurrent reconciles before
    /// sending it as one batch call (≤100 inputs; a full batch goes at once). 0 sends whatever
    /// is waiting without lingering.
    #[arg(long, env = "HUBSPOT_BATCH_LINGER_MS", default_value_t = crate::billing::DEFAULT_BATCH_LINGER.as_millis() as u64)]
    pub hubspot_batch_linger_ms: u64,
    /// The usage store the API records usage events in (`sqlite:PATH` on a file it shares, or
    /// its `postgres://` URL): closed periods of metered plans are then billed to HubSpot.
    /// `none` (the default, as when the API's store is `none`): usage is not reported.
    #[arg(long, env = "MARKETPLACE_USAGE_STORE", default_value = "none")]
    pub usage_store: crate::metering::UsageStoreFlag,
    /// Seconds between looks for closed usage periods to report.
    #[arg(
        long,
        env = "MARKETPLACE_USAGE_REPORT_INTERVAL_SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub usage_report_interval_seconds: u64,
    /// Seconds after a period's end before it is reported (usage events may arrive late).
    #[arg(
        long,
        env = "MARKETPLACE_USAGE_SETTLE_SECONDS",
        default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(0..=2_678_400)
    )]
    pub usage_settle_seconds: u64,
    /// Run without HubSpot: subscriptions wait in Provisioning with a condition saying so.
    #[arg(long, env = "MARKETPLACE_NO_BILLING")]
    pub no_billing: bool,
    /// Elect a leader with a Lease; without it this replica always writes (one replica only).
    #[arg(long, env = "MARKETPLACE_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader Lease in the operator's namespace.
    #[arg(
        long,
        env = "MARKETPLACE_LEASE_NAME",
        default_value = "marketplace-operator"
    )]
    pub lease_name: String,
    /// Address of the HTTP endpoint: /healthz, /readyz, /metrics and /webhooks/hubspot.
    #[arg(long, env = "MARKETPLACE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// The HubSpot app's client secret, to verify webhook signatures; without it the webhook
    /// route is off (the periodic audit still heals). Prefer the Secret's `clientSecret` key.
    #[arg(long, env = "HUBSPOT_CLIENT_SECRET", hide_env_values = true)]
    pub hubspot_client_secret: Option<String>,
    /// The public URL HubSpot calls for webhooks (v3 signs the full URL, which behind an
    /// ingress is not the one this process sees), e.g. https://ops.example.com/webhooks/hubspot.
    #[arg(long, env = "HUBSPOT_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Append-only, hash-chained audit log of transitions and billing calls (JSON Lines).
    #[arg(long, env = "MARKETPLACE_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// PEM certificate chain: serve the endpoint over HTTPS (HubSpot calls HTTPS URLs only);
    /// without it, terminate TLS at an ingress.
    #[arg(long, env = "MARKETPLACE_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "MARKETPLACE_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Seconds a shutdown may take before the process exits anyway.
    #[arg(long, env = "MARKETPLACE_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
    /// Send notifications: deliver the Notification outbox over the NotificationChannels of
    /// the operator's namespace, and record scheduled messages (needs the chart's
    /// `notifications.enabled`, which grants the rights).
    #[arg(long, env = "MARKETPLACE_NOTIFICATIONS")]
    pub notifications: bool,
    #[command(flatten)]
    pub notify: NotifyArgs,
    // ---- Admission webhook (flags in crate::admission::flags) ----
    #[command(flatten)]
    pub admission: crate::admission::AdmissionArgs,
    #[command(flatten)]
    pub logging: crate::runtime::logging::LogArgs,
}

/// Settings of notification delivery and schedules (days may be fractions, to shorten them).
#[derive(Args, Debug, Clone)]
pub struct NotifyArgs {
    /// Delivery attempts before a notification is dead-lettered.
    #[arg(
        long,
        env = "MARKETPLACE_NOTIFICATION_MAX_ATTEMPTS",
        default_value_t = 8
    )]
    pub notification_max_attempts: u32,
    /// Seconds before the second attempt; doubled after each failure (at most an hour).
    #[arg(
        long,
        env = "MARKETPLACE_NOTIFICATION_RETRY_SECONDS",
        default_value_t = 10.0
    )]
    pub notification_retry_seconds: f64,
    /// Seconds between looks for scheduled messages (overdue, trial ending, idle).
    #[arg(
        long,
        env = "MARKETPLACE_NOTIFICATION_SCHEDULE_SECONDS",
        default_value_t = 3600.0
    )]
    pub notification_schedule_seconds: f64,
    /// Days after the invoice before it is overdue (then reminded daily).
    #[arg(long, env = "MARKETPLACE_INVOICE_OVERDUE_DAYS", default_value_t = 7.0)]
    pub invoice_overdue_days: f64,
    /// Days between overdue reminders.
    #[arg(long, env = "MARKETPLACE_INVOICE_REMINDER_DAYS", default_value_t = 1.0)]
    pub invoice_reminder_days: f64,
    /// Days before a trial's end that the tenant is told.
    #[arg(long, env = "MARKETPLACE_TRIAL_NOTICE_DAYS", default_value_t = 3.0)]
    pub trial_notice_days: f64,
    /// Days without a feature check after which an add-on is idle.
    #[arg(long, env = "MARKETPLACE_IDLE_DAYS", default_value_t = 30.0)]
    pub idle_days: f64,
    /// Days between idle nudges of one add-on.
    #[arg(long, env = "MARKETPLACE_IDLE_NUDGE_DAYS", default_value_t = 60.0)]
    pub idle_nudge_days: f64,
    /// Minutes a subscription's billing drift may stay unhealed (Synced False, DriftFound)
    /// before superadmins are alerted (once per episode).
    #[arg(long, env = "MARKETPLACE_DRIFT_ALERT_MINUTES", default_value_t = 30.0)]
    pub drift_alert_minutes: f64,
    /// Days a Sent notification is kept (at least two days and the idle-nudge interval).
    #[arg(
        long,
        env = "MARKETPLACE_NOTIFICATION_RETENTION_DAYS",
        default_value_t = 90.0
    )]
    pub notification_retention_days: f64,
}

fn days(days: f64) -> Duration {
    Duration::from_secs_f64((days * 86_400.0).clamp(0.001, 3650.0 * 86_400.0))
}

impl NotifyArgs {
    pub fn config(&self) -> crate::notify::NotifyConfig {
        use crate::lifecycle::notify::{RetryPolicy, ScheduleConfig};
        crate::notify::NotifyConfig {
            retry: RetryPolicy {
                max_attempts: self.notification_max_attempts.max(1),
                first_delay: days(self.notification_retry_seconds / 86_400.0),
                ..RetryPolicy::default()
            },
            schedule: ScheduleConfig {
                overdue_after: days(self.invoice_overdue_days),
                overdue_every: days(self.invoice_reminder_days),
                trial_notice: days(self.trial_notice_days),
                idle_after: days(self.idle_days),
                idle_every: days(self.idle_nudge_days),
                drift_unhealed_after: days(self.drift_alert_minutes / 1440.0),
            },
            schedule_interval: days(self.notification_schedule_seconds / 86_400.0),
            retention: days(self.notification_retention_days),
            ..crate::notify::NotifyConfig::default()
        }
    }
}

impl OperatorArgs {
    pub fn controller_config(&self) -> ControllerConfig {
        ControllerConfig {
            namespace: self.namespace.clone(),
            git_timeout: Duration::from_secs(self.git_timeout_seconds),
            git_cache_dir: self.git_cache_dir.clone(),
            catalog_concurrency: self.catalog_concurrency,
            tenant_concurrency: self.tenant_concurrency,
            subscription_concurrency: self.subscription_concurrency,
            action_concurrency: self.action_concurrency,
            billing_concurrency: self.billing_concurrency,
            platform_version: self.platform_version.clone(),
            audit_interval: Duration::from_secs(self.audit_interval_seconds.max(1)),
            cancel_orphans: self.cancel_orphans,
            orphan_grace: ControllerConfig::default().orphan_grace,
            billing_order: BillingOrderSettings {
                default: self.billing_order,
                grace: SignedDuration::from_secs(
                    i64::try_from(self.entitle_first_grace_seconds).unwrap_or(i64::MAX),
                ),
            },
            probe: crate::connection::ProbePolicy {
                allow_private_targets: self.probe_allow_private_targets,
                ..crate::connection::ProbePolicy::default()
            },
            usage_report: crate::controllers::usage_report::UsageReportSettings {
                interval: Duration::from_secs(self.usage_report_interval_seconds),
                settle: SignedDuration::from_secs(
                    i64::try_from(self.usage_settle_seconds).unwrap_or(i64::MAX),
                ),
            },
        }
    }

    fn identity(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// The HubSpot settings, or why the flags do not make any.
    fn hubspot(&self) -> Result<Option<HubSpotSettings>, OperatorError> {
        if self.no_billing {
            return Ok(None);
        }
        let bad = OperatorError::HubSpotConfig;
        let token = match (&self.hubspot_token, &self.hubspot_token_secret) {
            (Some(token), _) => TokenSource::Value(token.clone()),
            (None, Some(name)) => TokenSource::Secret(name.clone()),
            (None, None) => {
                return Err(bad(
                    "set --hubspot-token-secret (or HUBSPOT_TOKEN), or run with --no-billing"
                        .into(),
                ));
            }
        };
        let tier = Tier::parse(&self.hubspot_tier).ok_or_else(|| {
            bad(format!(
                "--hubspot-tier {:?} is not a HubSpot tier",
                self.hubspot_tier
            ))
        })?;
        let mode = match self.billing_mode.as_str() {
            "payments" => BillingMode::Payments,
            "crm-only" => BillingMode::CrmOnly,
            other => {
                return Err(bad(format!(
                    "--billing-mode {other:?}: use payments or crm-only"
                )));
            }
        };
        // A linger is a wait every purchase pays; beyond a second it only delays.
        if self.hubspot_batch_linger_ms > 1000 {
            return Err(bad(format!(
                "--hubspot-batch-linger-ms {}: at most 1000",
                self.hubspot_batch_linger_ms
            )));
        }
        Ok(Some(HubSpotSettings {
            base_url: self.hubspot_base_url.clone(),
            token,
            tier,
            mode,
            batch_linger: std::time::Duration::from_millis(self.hubspot_batch_linger_ms),
            client_secret: self.hubspot_client_secret.clone(),
        }))
    }

    /// Every setting of the process, checked before anything starts.
    pub fn settings(&self) -> Result<OperatorSettings, OperatorError> {
        Ok(OperatorSettings {
            controllers: self.controller_config(),
            instance: self.instance.clone(),
            hubspot: self.hubspot()?,
            endpoint: EndpointSettings {
                listen: self.listen,
                tls: self.tls_cert_file.clone().zip(self.tls_key_file.clone()),
            },
            webhook_url: self.webhook_url.clone(),
            lease: self.leader_election.then(|| LeaseSettings {
                name: self.lease_name.clone(),
                namespace: self.namespace.clone(),
                identity: self.identity(),
                duration_seconds: 15,
                renew_grace_seconds: 5,
            }),
            audit_log: self.audit_log.clone(),
            probe_ca_file: self.probe_ca_file.clone(),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            admission: self
                .admission
                .config(&self.namespace, self.platform_version.clone()),
            notifications: self.notifications.then(|| self.notify.config()),
            usage_store: self.usage_store.0.clone(),
        })
    }
}

fn parse_billing_order(value: &str) -> Result<BillingOrder, String> {
    BillingOrder::parse(value).ok_or_else(|| format!("{value:?}: use BillFirst or EntitleFirst"))
}

/// Sets up logging (`RUST_LOG`, default `info`, in `--log-format`) and runs the operator on a
/// multi-threaded runtime.
pub fn start(args: OperatorArgs) -> Result<(), OperatorError> {
    let settings = args.settings()?;
    crate::runtime::logging::init(args.logging.log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(crate::process::ProcessError::Runtime)?
        .block_on(crate::process::operator::run(settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: OperatorArgs,
    }

    fn hubspot(extra: &[&str]) -> Result<Option<HubSpotSettings>, OperatorError> {
        let mut argv = vec!["marketplace", "--hubspot-token", "pat-na1-x"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv)
            .expect("flags parse")
            .args
            .hubspot()
    }

    #[test]
    fn usage_reporting_needs_the_store_and_takes_its_timing() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["marketplace"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|c| c.args)
        };
        let off = parse(&[]).expect("flags parse");
        assert_eq!(off.usage_store.0, None);
        let none = parse(&["--usage-store", "none"]).expect("flags parse");
        assert_eq!(none.usage_store.0, None, "none as the API takes it");
        assert_eq!(
            off.controller_config().usage_report,
            crate::controllers::usage_report::UsageReportSettings::default()
        );
        let on = parse(&[
            "--usage-store",
            "postgres://app@db:5432/usage",
            "--usage-report-interval-seconds",
            "60",
            "--usage-settle-seconds",
            "0",
        ])
        .expect("flags parse");
        assert!(matches!(
            on.usage_store.0,
            Some(crate::metering::UsageStoreLocation::Postgres(_))
        ));
        let timing = on.controller_config().usage_report;
        assert_eq!(timing.interval, Duration::from_secs(60));
        assert_eq!(timing.settle, SignedDuration::ZERO);
        assert!(parse(&["--usage-store", "mysql://db/usage"]).is_err());
        assert!(parse(&["--usage-report-interval-seconds", "0"]).is_err());
    }

    #[test]
    fn billing_order_defaults_to_bill_first_and_is_checked() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["marketplace"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|c| c.args.controller_config().billing_order)
        };
        let default = parse(&[]).expect("flags parse");
        assert_eq!(default.default, BillingOrder::BillFirst);
        assert_eq!(default.grace, DEFAULT_ENTITLE_FIRST_GRACE);
        let chosen = parse(&[
            "--billing-order",
            "EntitleFirst",
            "--entitle-first-grace-seconds",
            "60",
        ])
        .expect("flags parse");
        assert_eq!(chosen.default, BillingOrder::EntitleFirst);
        assert_eq!(chosen.grace, SignedDuration::from_secs(60));
        let err = parse(&["--billing-order", "Later"]).expect_err("refused");
        assert!(
            err.to_string().contains("use BillFirst or EntitleFirst"),
            "{err}"
        );
    }

    #[test]
    fn batch_linger_defaults_and_is_bounded() {
        let s = hubspot(&[]).unwrap().expect("billing on");
        assert_eq!(s.batch_linger, crate::billing::DEFAULT_BATCH_LINGER);
        let s = hubspot(&["--hubspot-batch-linger-ms", "0"])
            .unwrap()
            .unwrap();
        assert_eq!(s.batch_linger, std::time::Duration::ZERO);
        let err = hubspot(&["--hubspot-batch-linger-ms", "5000"]).expect_err("refused");
        assert!(
            err.to_string().contains("--hubspot-batch-linger-ms 5000"),
            "{err}"
        );
    }
}

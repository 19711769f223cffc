//! `marketplace api`: its flags, parsed into [`ApiSettings`]; the process itself is
//! [`crate::process::api`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::front_door::read_limits::ReadLimitSettings;
use crate::front_door::web::{Theme, WebSettings};
use crate::front_door::{ReviewCacheSettings, StreamSettings};
use crate::process::api::ApiSettings;
use crate::runtime::endpoint::EndpointSettings;

pub use crate::process::ProcessError as ApiError;

/// Settings of the API process; every flag also reads an environment variable.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// Address of the API (and of /healthz, /readyz).
    #[arg(long, env = "MARKETPLACE_API_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: std::net::SocketAddr,
    /// PEM certificate chain: serve HTTPS; without it, terminate TLS at an ingress.
    #[arg(long, env = "MARKETPLACE_API_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "MARKETPLACE_API_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Seconds a TokenReview or SubjectAccessReview answer is reused (a revoked token or role
    /// keeps working at most this long).
    #[arg(long, env = "MARKETPLACE_API_REVIEW_TTL_SECONDS", default_value_t = 10)]
    pub review_ttl_seconds: u64,
    /// Most review answers kept (per kind).
    #[arg(
        long,
        env = "MARKETPLACE_API_REVIEW_CACHE_SIZE",
        default_value_t = 10_000
    )]
    pub review_cache_size: usize,
    /// Accept backend keys (`X-API-Key`, made with `marketplace api-key create`). Needs list and
    /// watch on Secrets cluster-wide (only those labelled marketplace.dev/api-key=true are
    /// watched); false refuses every key.
    #[arg(long, env = "MARKETPLACE_API_KEYS", default_value_t = true, action = clap::ArgAction::Set)]
    pub api_keys: bool,
    /// Entitlement checks (REST, OFREP) per minute per tenant; 0: unlimited.
    #[arg(
        long,
        env = "MARKETPLACE_API_CHECKS_PER_MINUTE",
        default_value_t = ReadLimitSettings::default().checks_per_minute
    )]
    pub checks_per_minute: u32,
    /// Catalog page and subscription reads per minute per tenant; 0: unlimited.
    #[arg(
        long,
        env = "MARKETPLACE_API_BROWSE_PER_MINUTE",
        default_value_t = ReadLimitSettings::default().browse_per_minute
    )]
    pub browse_per_minute: u32,
    /// Listing detail reads per minute per tenant (scraping with leaked credentials); 0:
    /// unlimited.
    #[arg(
        long,
        env = "MARKETPLACE_API_DETAILS_PER_MINUTE",
        default_value_t = ReadLimitSettings::default().details_per_minute
    )]
    pub details_per_minute: u32,
    /// The operator's namespace: superadmins are whoever may create SubscriptionActions there,
    /// and the support view reads its drift report.
    #[arg(
        long,
        env = "MARKETPLACE_NAMESPACE",
        default_value = "marketplace-system"
    )]
    pub namespace: String,
    /// Seconds between heartbeat comments on an open entitlement stream.
    #[arg(
        long,
        env = "MARKETPLACE_API_STREAM_HEARTBEAT_SECONDS",
        default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub stream_heartbeat_seconds: u64,
    /// Events queued for one stream client before it counts as not reading and is cut.
    #[arg(
        long,
        env = "MARKETPLACE_API_STREAM_BUFFER",
        default_value_t = 64,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub stream_buffer: usize,
    /// Seconds between writes of the checks counted (per tenant and feature) to the
    /// Entitlements' status.usage; the last ones are written at shutdown too.
    #[arg(
        long,
        env = "MARKETPLACE_API_USAGE_FLUSH_SECONDS",
        default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub usage_flush_seconds: u64,
    /// Where usage events of metered plans are kept: `sqlite:PATH` (embedded; one API replica)
    /// or a `postgres://user@host:port/db` URL (shared by replicas).
    #[arg(
        long,
        env = "MARKETPLACE_USAGE_STORE",
        default_value = "sqlite:/tmp/marketplace-usage.sqlite"
    )]
    pub usage_store: crate::metering::UsageStoreLocation,
    /// Let wizard test connections reach loopback, private and link-local addresses (off: a
    /// tenant's settings must not make the API probe its own network); as the operator's flag.
    #[arg(long, env = "MARKETPLACE_PROBE_ALLOW_PRIVATE")]
    pub probe_allow_private_targets: bool,
    /// The web UI's product name (white-label), shown in its header and titles.
    #[arg(long, env = "MARKETPLACE_WEB_PRODUCT_NAME", default_value_t = Theme::default().product_name)]
    pub web_product_name: String,
    /// The web UI's brand colour, #rrggbb; white text on it must reach contrast 4.5:1.
    #[arg(long, env = "MARKETPLACE_WEB_BRAND_COLOR", default_value_t = Theme::default().brand_color)]
    pub web_brand_color: String,
    /// The web UI's logo: an https:// URL or a path on the API's host.
    #[arg(long, env = "MARKETPLACE_WEB_LOGO_URL")]
    pub web_logo_url: Option<String>,
    /// The web UI's footer text.
    #[arg(long, env = "MARKETPLACE_WEB_FOOTER", default_value_t = Theme::default().footer)]
    pub web_footer: String,
    /// Seconds a shutdown may take before the process exits anyway.
    #[arg(long, env = "MARKETPLACE_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
    #[command(flatten)]
    pub logging: crate::runtime::logging::LogArgs,
}

impl ApiArgs {
    /// The settings (the theme as given: [`start`] refuses one that fails its checks).
    pub fn settings(&self) -> ApiSettings {
        let theme = Theme {
            product_name: self.web_product_name.clone(),
            brand_color: self.web_brand_color.clone(),
            logo_url: self.web_logo_url.clone(),
            footer: self.web_footer.clone(),
        };
        ApiSettings {
            endpoint: EndpointSettings {
                listen: self.listen,
                tls: self.tls_cert_file.clone().zip(self.tls_key_file.clone()),
            },
            reviews: ReviewCacheSettings {
                ttl: Duration::from_secs(self.review_ttl_seconds),
                capacity: self.review_cache_size,
            },
            api_keys: self.api_keys,
            read_limits: ReadLimitSettings {
                checks_per_minute: self.checks_per_minute,
                browse_per_minute: self.browse_per_minute,
                details_per_minute: self.details_per_minute,
                ..ReadLimitSettings::default()
            },
            streams: StreamSettings {
                heartbeat: Duration::from_secs(self.stream_heartbeat_seconds),
                client_buffer: self.stream_buffer,
            },
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            operator_namespace: self.namespace.clone(),
            usage_flush: Duration::from_secs(self.usage_flush_seconds),
            probe: crate::connection::ProbePolicy {
                allow_private_targets: self.probe_allow_private_targets,
                ..crate::connection::ProbePolicy::default()
            },
            web: WebSettings { theme },
            usage_store: Some(self.usage_store.clone()),
        }
    }
}

/// Sets up logging (as the operator's) and runs the API on a multi-threaded runtime.
pub fn start(args: ApiArgs) -> Result<(), ApiError> {
    let mut settings = args.settings();
    settings.web.theme = settings
        .web
        .theme
        .checked()
        .map_err(|e| ApiError::Config(e.to_string()))?;
    crate::runtime::logging::init(args.logging.log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ApiError::Runtime)?
        .block_on(crate::process::api::run(settings))
}

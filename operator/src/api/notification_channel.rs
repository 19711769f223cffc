//! `NotificationChannel`: where notifications go (SMTP e-mail, a Slack-compatible incoming
//! webhook, or a Standard Webhooks-signed HTTPS webhook) and which events it receives
//! (namespaced, in the operator's namespace, next to the Secrets it names).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A destination for notifications and the events routed to it. Exactly one of `smtp`, `slack`
/// and `webhook` is set. Credentials are only ever read from Secrets in the channel's namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "NotificationChannel",
    doc = "Where notifications go (SMTP, Slack, Standard Webhooks) and which events (superadmin alerts, tenant messages, tasks) are routed there.",
    namespaced,
    shortname = "nch",
    category = "marketplace",
    printcolumn(name = "Audience", type_ = "string", json_path = ".spec.audience"),
    printcolumn(name = "Events", type_ = "string", json_path = ".spec.events"),
    printcolumn(name = "SMTP Host", type_ = "string", json_path = ".spec.smtp.host"),
    printcolumn(name = "Webhook", type_ = "string", json_path = ".spec.webhook.url"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("[has(self.smtp), has(self.slack), has(self.webhook)].filter(x, x).size() == 1")
        .message("set exactly one of spec.smtp, spec.slack and spec.webhook"),
    validation = Rule::new("self.audience != 'Tenants' || has(self.smtp)")
        .message("a Tenants channel sends e-mail to each tenant's contacts: it needs spec.smtp")
        .field_path(".audience"),
    validation = Rule::new("!has(self.smtp) || self.audience == 'Tenants' || (has(self.to) && self.to.size() > 0)")
        .message("an e-mail channel for Superadmins or Tasks needs spec.to (the addresses to write to)")
        .field_path(".to"),
    validation = Rule::new("!has(self.to) || has(self.smtp)")
        .message("spec.to is only for e-mail (smtp) channels")
        .field_path(".to"),
    validation = Rule::new("!has(self.smtp) || !has(self.smtp.caSecretRef) || self.smtp.security != 'None'")
        .message("spec.smtp.caSecretRef needs TLS: set spec.smtp.security to StartTls or Tls")
        .field_path(".smtp.caSecretRef"),
)]
#[serde(rename_all = "camelCase")]
pub struct NotificationChannelSpec {
    /// Who the channel speaks to: Superadmins (alerts), Tenants (each tenant's billing contact
    /// and admins, by e-mail) or Tasks (work items for internal teams, e.g. Jira or ServiceNow
    /// automation behind a webhook).
    pub audience: NotificationAudience,
    /// The events routed here; empty: every event of the audience.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub events: Vec<NotificationEventKind>,
    /// Addresses an e-mail channel for Superadmins or Tasks writes to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub to: Vec<EmailAddress>,
    /// E-mail through an SMTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpChannel>,
    /// A Slack-compatible incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackChannel>,
    /// An HTTPS webhook signed per the Standard Webhooks specification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookChannel>,
}

/// An e-mail address.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct EmailAddress(
    #[schemars(
        length(min = 3, max = 254),
        regex(pattern = r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
    )]
    pub String,
);

/// Who a channel speaks to.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotificationAudience {
    Superadmins,
    Tenants,
    Tasks,
}

/// What happened. Which audiences hear of each is fixed by the templates (see the README).
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum NotificationEventKind {
    /// A subscription needs review before it can be activated.
    NewRequest,
    /// An invoice was sent for a subscription.
    InvoiceReady,
    /// An invoice has not been paid after the configured number of days.
    InvoiceOverdue,
    /// A subscription (or its trial) is in service.
    Activated,
    /// A payment failed; the add-on is paused.
    PaymentFailed,
    /// Provisioning failed and was rolled back.
    ProvisioningFailed,
    /// The tenant asked to cancel.
    CancellationRequested,
    /// The subscription ended.
    CancellationConfirmed,
    /// A trial ends in a few days.
    TrialEnding,
    /// An add-on paid for has not been used for a long time (marketing).
    IdleAddOn,
    /// A listing was published for the first time (marketing).
    NewListing,
    /// A listing's major version went up (marketing).
    MajorRelease,
    /// Billing drift was found and healing it keeps failing.
    DriftUnhealed,
    /// A tenant's prepaid credit balance fell below its threshold (once per episode).
    CreditBalanceLow,
}

impl NotificationEventKind {
    /// The kind's name, for metric labels.
    pub fn label(self) -> &'static str {
        use NotificationEventKind as K;
        match self {
            K::NewRequest => "NewRequest",
            K::InvoiceReady => "InvoiceReady",
            K::InvoiceOverdue => "InvoiceOverdue",
            K::Activated => "Activated",
            K::PaymentFailed => "PaymentFailed",
            K::ProvisioningFailed => "ProvisioningFailed",
            K::CancellationRequested => "CancellationRequested",
            K::CancellationConfirmed => "CancellationConfirmed",
            K::TrialEnding => "TrialEnding",
            K::IdleAddOn => "IdleAddOn",
            K::NewListing => "NewListing",
            K::MajorRelease => "MajorRelease",
            K::DriftUnhealed => "DriftUnhealed",
            K::CreditBalanceLow => "CreditBalanceLow",
        }
    }
}

impl NotificationChannelSpec {
    /// What the channel sends through, for metric labels: smtp, slack or webhook.
    pub fn kind(&self) -> &'static str {
        match (&self.smtp, &self.slack) {
            (Some(_), _) => "smtp",
            (None, Some(_)) => "slack",
            (None, None) => "webhook",
        }
    }
}

/// TLS on an SMTP connection. With StartTls and Tls the server's certificate must be valid for
/// `host` and signed by a CA the system trusts or one in `caSecretRef`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SmtpSecurity {
    /// Plain text (only for a relay on the same host or network).
    None,
    /// Upgrade with STARTTLS (usually port 587); refused if the server does not offer it.
    #[default]
    StartTls,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

/// An SMTP server.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmtpChannel {
    /// Host name of the server.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// TLS on the connection.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Secret with keys `username` and `password`; absent: no authentication. Credentials are
    /// only sent over TLS (StartTls or Tls), never with security None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<super::shared::SecretRef>,
    /// Secret whose key `ca.crt` holds PEM CA certificates trusted for the server's certificate,
    /// besides the system's (a private CA, or a self-signed relay). Only with StartTls or Tls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<super::shared::SecretRef>,
    /// The From address, e.g. `Marketplace <marketplace@example.com>` or a bare address.
    #[schemars(length(min = 3, max = 320))]
    pub from: String,
}

/// A Slack-compatible incoming webhook. Its URL is a credential, so it lives in a Secret.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlackChannel {
    /// Secret whose key `url` holds the webhook URL.
    pub url_secret_ref: super::shared::SecretRef,
}

/// A generic webhook signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookChannel {
    /// Where to POST, an http(s) URL (http only for receivers on loopback or a trusted network).
    #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://\S+$"))]
    pub url: String,
    /// Secret whose key `secret` holds the signing secret (`whsec_` followed by base64).
    pub signing_secret_ref: super::shared::SecretRef,
}

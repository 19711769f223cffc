//! `Notification`: the outbox. One record per event and recipient (namespaced, in the
//! operator's namespace), written before anything is sent; its status says what delivery did.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::notification_channel::{NotificationAudience, NotificationEventKind};

/// Annotation a superadmin sets (to any new value) on a DeadLetter notification to send it again.
pub const RETRY_ANNOTATION: &str = "marketplace.dev/retry";
/// Label: the subscription (uid) a notification is about.
pub const SUBSCRIPTION_UID_LABEL: &str = "marketplace.dev/subscription-uid";
/// Label: the listing a catalog announcement is about.
pub const LISTING_LABEL: &str = "marketplace.dev/listing";
/// Label: the event kind.
pub const EVENT_LABEL: &str = "marketplace.dev/event";

/// One message to one recipient over one channel, rendered when the event was recorded.
/// Its name is derived from the event id, the channel and the recipient, so recording the same
/// event twice is a no-op, and the same name is the e-mail Message-ID and the `webhook-id`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "marketplace.dev",
    version = "v1alpha1",
    kind = "Notification",
    doc = "One message of the outbox: an event for one recipient over one channel, with its delivery state (Pending, Sent, DeadLetter).",
    namespaced,
    status = "NotificationStatus",
    shortname = "ntf",
    category = "marketplace",
    printcolumn(name = "Event", type_ = "string", json_path = ".spec.event"),
    printcolumn(name = "Channel", type_ = "string", json_path = ".spec.channel"),
    printcolumn(name = "Recipient", type_ = "string", json_path = ".spec.recipient"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Attempts", type_ = "integer", json_path = ".status.attempts"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf")
    .message("a Notification is immutable; annotate it with marketplace.dev/retry to send it again"))]
#[serde(rename_all = "camelCase")]
pub struct NotificationSpec {
    /// The event's id (stable: the same event always has the same id).
    #[schemars(length(min = 1, max = 128))]
    pub event_id: String,
    /// What happened.
    pub event: NotificationEventKind,
    /// Who it is for.
    pub audience: NotificationAudience,
    /// The NotificationChannel it goes through.
    #[schemars(length(min = 1, max = 253))]
    pub channel: String,
    /// The e-mail address, for e-mail channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254))]
    pub recipient: Option<String>,
    /// When the event happened.
    pub occurred_at: Time,
    /// The message's subject (e-mail) or headline.
    #[schemars(length(max = 1000))]
    pub subject: String,
    /// The plain-text body.
    #[schemars(length(max = 20000))]
    pub text: String,
    /// The HTML body (e-mail only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 60000))]
    pub html: Option<String>,
    /// The facts the message was rendered from (tenant, listing, plan, ...), sent as the
    /// webhook's `data`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

/// Delivery phases.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeliveryPhase {
    /// Not delivered yet; the next attempt is at nextAttemptAt.
    #[default]
    Pending,
    /// The receiver accepted it.
    Sent,
    /// Every attempt failed; waits for a superadmin (annotation marketplace.dev/retry).
    DeadLetter,
}

/// What delivery did.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NotificationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DeliveryPhase>,
    /// Attempts made (since the last retry asked for by a superadmin).
    #[serde(default)]
    pub attempts: i32,
    /// When the next attempt is due, while Pending after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Time>,
    /// When the receiver accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Time>,
    /// Why the last attempt failed (never a credential or a secret URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The value of marketplace.dev/retry last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_for: Option<String>,
}

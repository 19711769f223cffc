//! Notifications, acted on: the outbox writer (events of a subscription → one `Notification`
//! per recipient, created before anything is sent, named so that writing twice is a no-op),
//! the delivery reconciler (one attempt per due record, status after it), and the scheduled
//! pass (overdue invoices, trials ending, idle add-ons).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use tracing::{info, warn};

use super::status::apply_status;
use super::tenant_subscription::TENANT_NAMESPACE_PREFIX;
use super::{Context, Error};
use crate::api::listing::Activation;
use crate::api::notification::{
    DeliveryPhase, EVENT_LABEL, Notification, NotificationSpec, RETRY_ANNOTATION,
    SUBSCRIPTION_UID_LABEL,
};
use crate::api::notification_channel::{NotificationChannel, NotificationEventKind};
use crate::api::tenant_subscription::{TenantSubscription, TenantSubscriptionStatus};
use crate::lifecycle::notify::schedule::ScheduleFacts;
use crate::lifecycle::notify::{
    Delivery, DeliveryStep, SubscriptionEvent, after_attempt, events_of_history, expired,
    next_step, route, scheduled_events,
};
use crate::notify::send::{Destination, send};
use crate::notify::templates::{OVERRIDES_CONFIG_MAP, has_message, render};
use crate::notify::{MessageFacts, Notifier, variables};

fn notifier(ctx: &Context) -> Option<&Arc<Notifier>> {
    ctx.notifier.as_ref()
}

/// Records the notifications of `sub`'s recent transitions (in `status`, as just written).
/// Called by the subscription reconciler after its status write: a transition is notified only
/// once it is recorded, and a crash before the outbox write is repaired by the next reconcile,
/// which finds the transition still recent and its records missing.
pub async fn record_transitions(
    ctx: &Context,
    sub: &TenantSubscription,
    status: &TenantSubscriptionStatus,
    now: Timestamp,
) -> Result<(), Error> {
    let Some(notifier) = notifier(ctx) else {
        return Ok(());
    };
    let needs_approval = ctx
        .stores
        .listing(sub.spec.listing.as_str())
        .is_some_and(|l| l.spec.activation == Activation::Approval);
    let horizon = jiff::SignedDuration::try_from(notifier.config.horizon).unwrap_or_default();
    let since = now.checked_sub(horizon).unwrap_or(now);
    let uid = sub.metadata.uid.clone().unwrap_or_default();
    let events = events_of_history(&uid, &status.history, needs_approval, since);
    record(ctx, notifier, sub, &events).await
}

/// Writes the outbox records of `events` that do not exist yet.
async fn record(
    ctx: &Context,
    notifier: &Notifier,
    sub: &TenantSubscription,
    events: &[SubscriptionEvent],
) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let namespace = sub.namespace().unwrap_or_default();
    let tenant_name = namespace
        .strip_prefix(TENANT_NAMESPACE_PREFIX)
        .unwrap_or_default();
    let tenant = ctx.stores.tenant(tenant_name);
    let listing = ctx.stores.listing(sub.spec.listing.as_str());
    let channels = notifier.channels.store().state();
    let named: Vec<(String, &NotificationChannel)> = channels
        .iter()
        .map(|c| (c.name_any(), c.as_ref()))
        .collect();
    let mut overrides: Option<BTreeMap<String, String>> = None;
    for event in events {
        let deliveries = route(
            &event.id,
            event.kind,
            named.iter().map(|(n, c)| (n.as_str(), &c.spec)),
            tenant.as_ref().map(|t| &t.spec),
            has_message,
        );
        let vars = variables(&MessageFacts {
            tenant_name,
            tenant_display: tenant.as_ref().map(|t| t.spec.display_name.as_str()),
            listing_name: sub.spec.listing.as_str(),
            listing: listing.as_ref().map(|l| &l.spec),
            spec: &sub.spec,
            subscription: format!("{namespace}/{}", sub.name_any()),
            date: event.date,
            reason: event.reason.as_deref(),
        });
        let labels = BTreeMap::from([(
            SUBSCRIPTION_UID_LABEL.to_string(),
            sub.metadata.uid.clone().unwrap_or_default(),
        )]);
        record_deliveries(
            ctx,
            notifier,
            event,
            deliveries,
            (&vars, &labels),
            &mut overrides,
        )
        .await?;
    }
    Ok(())
}

/// Writes the records of `deliveries` of `event` that the outbox does not hold yet, rendered
/// from `facts` (variables, labels); reads the template overrides once, into `overrides`.
pub(super) async fn record_deliveries(
    ctx: &Context,
    notifier: &Notifier,
    event: &SubscriptionEvent,
    deliveries: Vec<Delivery>,
    facts: (&BTreeMap<String, String>, &BTreeMap<String, String>),
    overrides: &mut Option<BTreeMap<String, String>>,
) -> Result<usize, Error> {
    let own = ctx.config.namespace.as_str();
    let api: Api<Notification> = Api::namespaced(ctx.client.clone(), own);
    let mut written = 0;
    for delivery in deliveries {
        if notifier.recorded(own, &delivery.name) {
            continue;
        }
        if overrides.is_none() {
            *overrides = Some(template_overrides(ctx).await?);
        }
        let overrides = overrides.as_ref().expect("read above");
        let (vars, labels) = (facts.0.clone(), facts.1.clone());
        write_record(&api, event, &delivery, vars, labels, overrides).await?;
        written += 1;
    }
    Ok(written)
}

/// Writes the outbox record of `event` for `delivery`, rendered from `vars` (409: an earlier
/// pass wrote it).
async fn write_record(
    api: &Api<Notification>,
    event: &SubscriptionEvent,
    delivery: &Delivery,
    vars: BTreeMap<String, String>,
    mut labels: BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> Result<(), Error> {
    // A broken override must not silence the message: say so, and use the built-in words
    // (which a unit test renders for every message).
    let message = render(delivery.audience, event.kind, &vars, overrides)
        .or_else(|error| {
            let config_map = format!(
                "{}/{OVERRIDES_CONFIG_MAP}",
                api.namespace().unwrap_or_default()
            );
            warn!(%error, config_map,
                "template override unusable; sending the built-in words");
            render(delivery.audience, event.kind, &vars, &BTreeMap::new())
        })
        .map_err(|e| Error::InvalidObject(e.to_string()))?;
    // Only e-mail deliveries have a recipient address, and only e-mail carries HTML.
    let email = delivery.recipient.is_some();
    labels.insert(EVENT_LABEL.to_string(), format!("{:?}", event.kind));
    let record = Notification {
        metadata: ObjectMeta {
            name: Some(delivery.name.clone()),
            namespace: api.namespace().map(str::to_string),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: NotificationSpec {
            event_id: event.id.clone(),
            event: event.kind,
            audience: delivery.audience,
            channel: delivery.channel.clone(),
            recipient: delivery.recipient.clone(),
            occurred_at: Time(event.at),
            subject: message.subject,
            text: message.text,
            html: email.then_some(message.html),
            data: vars,
        },
        status: None,
    };
    match api.create(&PostParams::default(), &record).await {
        Ok(_) => info!(
            record = delivery.name,
            event = ?event.kind,
            channel = delivery.channel,
            "notification recorded"
        ),
        // Recorded by an earlier pass the cache had not seen yet.
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// The installation's template overrides (none when the ConfigMap does not exist).
async fn template_overrides(ctx: &Context) -> Result<BTreeMap<String, String>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    Ok(api
        .get_opt(OVERRIDES_CONFIG_MAP)
        .await?
        .and_then(|c| c.data)
        .unwrap_or_default())
}

/// The delivery controller, driven by the outbox cache.
pub fn controller(notifier: &Notifier) -> Controller<Notification> {
    Controller::for_shared_stream(notifier.records.changes(), notifier.records.store().clone())
}

/// One outbox record: send it when due, record what happened.
pub async fn deliver(record: Arc<Notification>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(notifier) = notifier(&ctx) else {
        return Ok(Action::await_change());
    };
    let api: Api<Notification> =
        Api::namespaced(ctx.client.clone(), &record.namespace().unwrap_or_default());
    // Decide from the apiserver, not the cache: a reconcile queued before our last status write
    // reached the cache would otherwise send a Sent record again.
    let Some(record) = api.get_opt(&record.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let record = Arc::new(record);
    let now = Timestamp::now();
    let status = record.status.clone().unwrap_or_default();
    let retry = record
        .annotations()
        .get(RETRY_ANNOTATION)
        .map(String::as_str);
    match next_step(&status, retry, now) {
        DeliveryStep::Done => Ok(Action::await_change()),
        DeliveryStep::WaitUntil(at) => Ok(Action::requeue(until(now, at))),
        DeliveryStep::Restart(fresh) => {
            info!(
                record = record.name_any(),
                "dead letter sent again on request"
            );
            apply_status(&api, record.as_ref(), record.status.as_ref(), &fresh).await?;
            Ok(Action::await_change())
        }
        DeliveryStep::Send => {
            let outcome = match destination(&ctx, notifier, &record.spec.channel).await {
                Ok(destination) => {
                    send(
                        &notifier.http,
                        &destination,
                        &record.name_any(),
                        &record.spec,
                        now,
                    )
                    .await
                }
                Err(why) => Err(why),
            };
            if let Err(error) = &outcome {
                warn!(record = record.name_any(), channel = record.spec.channel, %error, "delivery failed");
            }
            let next = after_attempt(&status, outcome, &notifier.config.retry, Timestamp::now());
            ctx.metrics.notification_attempt(
                channel_kind(notifier, &ctx.config.namespace, &record.spec.channel),
                record.spec.event.label(),
                match next.phase.unwrap_or_default() {
                    DeliveryPhase::Sent => "sent",
                    DeliveryPhase::Pending => "failed",
                    DeliveryPhase::DeadLetter => "dead_lettered",
                },
            );
            apply_status(&api, record.as_ref(), record.status.as_ref(), &next).await?;
            Ok(match next.next_attempt_at {
                Some(at) => Action::requeue(until(Timestamp::now(), at.0)),
                None => Action::await_change(),
            })
        }
    }
}

/// The kind of the channel `name` (smtp, slack, webhook), or `missing`.
fn channel_kind(notifier: &Notifier, namespace: &str, name: &str) -> &'static str {
    notifier
        .channels
        .store()
        .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
        .map_or("missing", |c| c.spec.kind())
}

fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// The channel named `name`, with its secrets read (errors name the object and key, never a
/// value).
async fn destination(
    ctx: &Context,
    notifier: &Notifier,
    name: &str,
) -> Result<Destination, String> {
    let namespace = &ctx.config.namespace;
    let channel = notifier
        .channels
        .store()
        .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
        .ok_or_else(|| format!("NotificationChannel {namespace}/{name} does not exist"))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let read = |secret: String, key: &'static str| {
        let secrets = secrets.clone();
        async move {
            let found = secrets
                .get_opt(&secret)
                .await
                .map_err(|e| format!("reading Secret {namespace}/{secret}: {e}"))?
                .ok_or_else(|| format!("Secret {namespace}/{secret} does not exist"))?;
            found
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
                .map(|v| v.trim().to_string())
                .ok_or_else(|| format!("Secret {namespace}/{secret} has no key {key}"))
        }
    };
    let spec = &channel.spec;
    if let Some(smtp) = &spec.smtp {
        let credentials = match &smtp.credentials_secret_ref {
            Some(r) => Some((
                read(r.name.clone(), "username").await?,
                read(r.name.clone(), "password").await?,
            )),
            None => None,
        };
        let ca = match &smtp.ca_secret_ref {
            Some(r) => Some(read(r.name.clone(), "ca.crt").await?),
            None => None,
        };
        return Ok(Destination::Smtp {
            host: smtp.host.clone(),
            port: smtp.port,
            security: smtp.security,
            credentials,
            ca,
            from: smtp.from.clone(),
        });
    }
    if let Some(slack) = &spec.slack {
        return Ok(Destination::Slack {
            url: read(slack.url_secret_ref.name.clone(), "url").await?,
        });
    }
    if let Some(webhook) = &spec.webhook {
        return Ok(Destination::Webhook {
            url: webhook.url.clone(),
            secret: read(webhook.signing_secret_ref.name.clone(), "secret").await?,
        });
    }
    Err(format!(
        "NotificationChannel {namespace}/{name} names no destination"
    ))
}

/// The scheduled pass, every `schedule_interval` until `stop`.
pub async fn run_schedules(ctx: Arc<Context>, stop: impl std::future::Future<Output = ()>) {
    let Some(notifier) = notifier(&ctx).cloned() else {
        return;
    };
    let pass = async {
        loop {
            scheduled_pass(&ctx, &notifier, Timestamp::now()).await;
            tokio::time::sleep(notifier.config.schedule_interval).await;
        }
    };
    tokio::select! {
        _ = pass => {}
        _ = stop => {}
    }
}

/// Records the scheduled messages due at `now` for every subscription, then deletes the Sent
/// records past their retention.
async fn scheduled_pass(ctx: &Context, notifier: &Notifier, now: Timestamp) {
    record_scheduled(ctx, notifier, now).await;
    let api: Api<Notification> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    let retention = notifier.config.retention();
    for record in notifier.records.store().state() {
        if expired(record.status.as_ref(), now, retention) {
            match api.delete(&record.name_any(), &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => warn!(%error, "could not delete a delivered notification"),
            }
        }
    }
}

async fn record_scheduled(ctx: &Context, notifier: &Notifier, now: Timestamp) {
    for sub in ctx.stores.subscriptions.store().state() {
        let uid = sub.metadata.uid.clone().unwrap_or_default();
        let namespace = sub.namespace().unwrap_or_default();
        let Some(status) = sub.status.as_ref() else {
            continue;
        };
        let last_checked = ctx
            .stores
            .entitlements_in(&namespace)
            .iter()
            .filter(|e| e.spec.source_subscription == sub.name_any())
            .filter_map(|e| {
                e.status
                    .as_ref()?
                    .usage
                    .as_ref()
                    .map(|u| u.last_checked_at.0)
            })
            .max();
        let last_idle_nudge = notifier
            .records
            .store()
            .state()
            .iter()
            .filter(|r| {
                r.labels().get(SUBSCRIPTION_UID_LABEL) == Some(&uid)
                    && r.spec.event == NotificationEventKind::IdleAddOn
            })
            .map(|r| r.spec.occurred_at.0)
            .max();
        let events = scheduled_events(
            &ScheduleFacts {
                uid: &uid,
                status,
                last_checked,
                last_idle_nudge,
                now,
            },
            &notifier.config.schedule,
        );
        if let Err(error) = record(ctx, notifier, &sub, &events).await {
            warn!(subscription = %super::object_key(sub.as_ref()), %error, "could not record scheduled notifications");
        }
    }
}

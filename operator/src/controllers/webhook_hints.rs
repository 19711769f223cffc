//! HubSpot webhooks are hints (contract §5.2), and they reach the leader through the cluster
//! (`lifecycle::billing_recheck`): every replica's endpoint marks the subscriptions a hint
//! names ([`RecheckMarks`]); the leader re-reads the marked ones in batches ([`run`]) and posts
//! what differs as news for their next reconcile, which removes the mark once its status holds
//! it. A duplicated or out-of-order event changes nothing extra, and a mark left by a leader
//! that died is handled by the next one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::Context;
use super::billing_audit::check;
use crate::api::TenantSubscription;
use crate::lifecycle::billing_recheck::{
    Dispatched, RECHECK_ANNOTATION, REDISPATCH_AFTER, billed_through,
};
use crate::runtime::caches::{CacheUpdate, SharedCache};
use crate::server::{HintSink, WebhookHint};

/// Subscriptions re-read in one batch (the batch read's own limit).
const BATCH: usize = 100;
/// Marks written at once by one delivery.
const CONCURRENT_MARKS: usize = 16;

/// The endpoint's sink on every replica: marks the subscriptions the hints name.
#[derive(Clone)]
pub struct RecheckMarks {
    client: Client,
    subscriptions: SharedCache<TenantSubscription>,
}

impl RecheckMarks {
    pub fn new(client: Client, subscriptions: SharedCache<TenantSubscription>) -> Self {
        RecheckMarks {
            client,
            subscriptions,
        }
    }

    async fn mark(&self, hints: Vec<WebhookHint>) -> Result<(), String> {
        let ids: BTreeSet<&str> = hints.iter().map(|h| h.object_id.as_str()).collect();
        let named = billed_through(self.subscriptions.state().iter(), &ids);
        if named.is_empty() {
            tracing::debug!(
                hints = hints.len(),
                "webhook hints name no known subscription"
            );
            return Ok(());
        }
        let mark = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
            .to_string();
        let patch = json!({"metadata": {"annotations": {RECHECK_ANNOTATION: mark}}});
        futures::stream::iter(named)
            .map(|sub| {
                let patch = &patch;
                async move {
                    let namespace = sub.namespace().unwrap_or_default();
                    let api: Api<TenantSubscription> =
                        Api::namespaced(self.client.clone(), &namespace);
                    match api
                        .patch_metadata(
                            &sub.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(patch),
                        )
                        .await
                    {
                        Ok(_) => Ok(()),
                        // Deleted since: nothing left to re-read.
                        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                        Err(e) => Err(format!(
                            "marking TenantSubscription {namespace}/{} for a billing re-read: {e}",
                            sub.name_any()
                        )),
                    }
                }
            })
            .buffer_unordered(CONCURRENT_MARKS)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }
}

impl HintSink for RecheckMarks {
    fn record(&self, hints: Vec<WebhookHint>) -> BoxFuture<'_, Result<(), String>> {
        self.mark(hints).boxed()
    }
}

/// Removes `sub`'s recheck mark if it is still `mark` (a newer webhook's mark stays).
pub async fn clear_recheck_mark(ctx: &Context, sub: &TenantSubscription, mark: &str) {
    let namespace = sub.namespace().unwrap_or_default();
    let api: Api<TenantSubscription> = Api::namespaced(ctx.client.clone(), &namespace);
    let path = format!(
        "/metadata/annotations/{}",
        RECHECK_ANNOTATION.replace('~', "~0").replace('/', "~1")
    );
    let patch: json_patch::Patch = match serde_json::from_value(json!([
        {"op": "test", "path": path, "value": mark},
        {"op": "remove", "path": path},
    ])) {
        Ok(patch) => patch,
        Err(e) => {
            tracing::error!(%e, "recheck mark patch");
            return;
        }
    };
    match api
        .patch_metadata(
            &sub.name_any(),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => {}
        // Marked again since (the test failed), or gone: nothing to remove.
        Err(kube::Error::Api(e)) if e.code == 422 || e.code == 404 => {}
        Err(e) => tracing::warn!(
            subscription = %format!("{namespace}/{}", sub.name_any()),
            error = %e,
            "could not remove the billing recheck mark; it is re-read again later"
        ),
    }
}

/// The leader's side: re-reads marked subscriptions in batches until `shutdown`. Starts with
/// every mark in the cache, so marks left by a previous leader are handled first.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(client) = ctx.billing.clone() else {
        return;
    };
    tokio::pin!(shutdown);
    let mut updates = ctx.stores.subscriptions.updates().boxed();
    let mut dispatched = Dispatched::default();
    let mut stale_marks = tokio::time::interval(REDISPATCH_AFTER);
    stale_marks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut due = Vec::new();
        tokio::select! {
            _ = &mut shutdown => return,
            update = updates.next() => match update {
                Some(update) => consider(&ctx, update, &mut dispatched, &mut due),
                None => return,
            },
            _ = stale_marks.tick() => {
                let all = ctx.stores.subscriptions.state();
                consider(&ctx, CacheUpdate::Snapshot(all), &mut dispatched, &mut due);
            }
        }
        // Whatever else is ready joins the batch.
        while due.len() < BATCH {
            match updates.next().now_or_never() {
                Some(Some(update)) => consider(&ctx, update, &mut dispatched, &mut due),
                _ => break,
            }
        }
        if due.is_empty() {
            continue;
        }
        for chunk in due.chunks(BATCH) {
            let marks: BTreeMap<String, String> = chunk
                .iter()
                .filter_map(|(s, mark)| Some((s.metadata.uid.clone()?, mark.clone())))
                .collect();
            let subs = chunk.iter().map(|(s, _)| s.clone()).collect();
            let report = check(&ctx, &client, subs, "webhook", &marks).await;
            if report.error.is_some() {
                // Handed out again at the next look rather than after the redispatch delay.
                for uid in marks.keys() {
                    dispatched.forget(uid);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tracing::info!(
                checked = report.subscriptions_audited,
                findings = report.findings.len(),
                error = report.error.as_deref().unwrap_or(""),
                "re-read HubSpot after webhooks"
            );
        }
    }
}

/// Adds the subscriptions of `update` whose marks are due to `due`, as the cache holds them now
/// (a change may describe an object deleted since).
fn consider(
    ctx: &Context,
    update: CacheUpdate<TenantSubscription>,
    dispatched: &mut Dispatched,
    due: &mut Vec<(Arc<TenantSubscription>, String)>,
) {
    let now = Timestamp::now();
    let objects = match update {
        CacheUpdate::Changed(object) => vec![object],
        CacheUpdate::Snapshot(all) => all,
    };
    for object in objects {
        let Some(current) = ctx.stores.subscriptions.get(&ObjectRef::from_obj(&*object)) else {
            continue;
        };
        if let Some(mark) = dispatched.take_due(&current, now) {
            due.push((current, mark));
        }
    }
}

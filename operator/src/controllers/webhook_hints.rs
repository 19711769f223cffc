//! HubSpot webhooks are hints (contract §5.2): the endpoint verifies and forwards them; here
//! each hint names a HubSpot object, the subscriptions billed through it are found in the cache,
//! and their billing records are re-read in one batch. What differs becomes news for their next
//! reconcile, so a duplicated or out-of-order event changes nothing extra.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Context;
use super::billing_audit::check;
use crate::api::TenantSubscription;
use crate::server::WebhookHint;

/// Hints handled in one batch read.
const BATCH: usize = 100;

/// Consumes hints until `shutdown` (only the leader runs this; a standby's endpoint drops the
/// hints it cannot queue, and the periodic audit covers them).
pub async fn run(
    ctx: Arc<Context>,
    mut hints: mpsc::Receiver<WebhookHint>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(client) = ctx.billing.clone() else {
        return;
    };
    tokio::pin!(shutdown);
    loop {
        let first = tokio::select! {
            _ = &mut shutdown => return,
            hint = hints.recv() => match hint {
                Some(hint) => hint,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match hints.try_recv() {
                Ok(hint) => batch.push(hint),
                Err(_) => break,
            }
        }
        let subs = affected(&ctx, &batch);
        if subs.is_empty() {
            tracing::debug!(
                hints = batch.len(),
                "webhook hints name no known subscription"
            );
            continue;
        }
        let report = check(&ctx, &client, subs, "webhook").await;
        tracing::info!(
            hints = batch.len(),
            checked = report.subscriptions_audited,
            findings = report.findings.len(),
            "re-read HubSpot after webhooks"
        );
    }
}

/// The subscriptions whose HubSpot records (company, deal, line item, subscription) the hints name.
pub fn affected(ctx: &Context, hints: &[WebhookHint]) -> Vec<Arc<TenantSubscription>> {
    let ids: BTreeSet<&str> = hints.iter().map(|h| h.object_id.as_str()).collect();
    ctx.stores.subscriptions.state_filter(|s| {
        s.status
            .as_ref()
            .and_then(|st| st.hubspot.as_ref())
            .is_some_and(|h| {
                [
                    &h.subscription_id,
                    &h.deal_id,
                    &h.line_item_id,
                    &h.company_id,
                ]
                .iter()
                .any(|id| id.as_deref().is_some_and(|id| ids.contains(id)))
            })
    })
}

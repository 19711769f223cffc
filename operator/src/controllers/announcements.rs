//! Catalog announcements, acted on: on every change of the Listings cache (and every schedule
//! interval, to retry), read the ledger ConfigMap [`LEDGER_CONFIG_MAP`], decide
//! ([`announcements`]), write one outbox record per tenant × channel × recipient, then the
//! ledger. The ledger is written after the records and with its resourceVersion: a pass that
//! dies in between, or races another replica, writes the same records again (no-ops) and the
//! ledger once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use tracing::{info, warn};

use super::notifications::record_deliveries;
use super::status::OPERATOR_MANAGER;
use super::{Context, Error};
use crate::api::notification::LISTING_LABEL;
use crate::lifecycle::notify::announce::{Announcement, Ledger, announcements, tenant_event};
use crate::lifecycle::notify::route;
use crate::lifecycle::visibility::Viewer;
use crate::notify::Notifier;
use crate::notify::templates::has_message;

/// The ConfigMap (operator namespace) recording what was announced: listing name → major.
pub const LEDGER_CONFIG_MAP: &str = "marketplace-notification-announcements";

/// Announces until `stop`: after the Listings change (bursts coalesced) and every schedule
/// interval.
pub async fn run(ctx: Arc<Context>, stop: impl std::future::Future<Output = ()>) {
    let Some(notifier) = ctx.notifier.clone() else {
        return;
    };
    let mut changes = ctx.stores.listings.updates().boxed();
    let pass = async {
        loop {
            // A catalog sync applies many listings at once: one pass after the burst.
            tokio::time::sleep(Duration::from_millis(300)).await;
            while let Some(Some(_)) = changes.next().now_or_never() {}
            if let Err(error) = announce_once(&ctx, &notifier, Timestamp::now()).await {
                warn!(%error, "could not announce catalog news; trying again");
            }
            tokio::select! {
                _ = changes.next() => {}
                _ = tokio::time::sleep(notifier.config.schedule_interval) => {}
            }
        }
    };
    tokio::select! {
        _ = pass => {}
        _ = stop => {}
    }
}

/// One pass: decide from the ledger and the listings, record, then write the ledger.
pub async fn announce_once(
    ctx: &Context,
    notifier: &Notifier,
    now: Timestamp,
) -> Result<(), Error> {
    let own = ctx.config.namespace.as_str();
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), own);
    let current = maps.get_opt(LEDGER_CONFIG_MAP).await?;
    let ledger: Option<Ledger> = current.as_ref().map(|m| m.data.clone().unwrap_or_default());
    let listings = ctx.stores.listings.state();
    let (news, next) = announcements(
        listings
            .iter()
            .map(|l| (l.metadata.name.as_deref().unwrap_or_default(), &l.spec)),
        ledger.as_ref(),
    );
    if ledger.as_ref() == Some(&next) {
        return Ok(());
    }
    for announcement in &news {
        record(ctx, notifier, announcement, now).await?;
    }
    // Server-side apply, with the resourceVersion read when there was a ledger: a replica
    // that raced this pass gets a conflict and decides again from the newer ledger.
    let map = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": LEDGER_CONFIG_MAP,
            "namespace": own,
            "resourceVersion": current.as_ref().and_then(|m| m.resource_version()),
        },
        "data": next,
    });
    maps.patch(
        LEDGER_CONFIG_MAP,
        &PatchParams::apply(OPERATOR_MANAGER).force(),
        &Patch::Apply(&map),
    )
    .await?;
    if ledger.is_none() {
        info!(
            listings = next.len(),
            "catalog announcements start: what is published now is not announced"
        );
    }
    Ok(())
}

/// The outbox records of one announcement: each tenant who may see the listing, over each
/// channel routing it, to each recipient (none for a tenant who opted out of marketing).
async fn record(
    ctx: &Context,
    notifier: &Notifier,
    announcement: &Announcement,
    now: Timestamp,
) -> Result<(), Error> {
    let Some(listing) = ctx.stores.listing(&announcement.listing) else {
        return Ok(());
    };
    let channels = notifier.channels.store().state();
    let mut overrides: Option<BTreeMap<String, String>> = None;
    let mut written = 0usize;
    for tenant in ctx.stores.tenants.state() {
        if tenant.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = tenant.name_any();
        let Some(event) =
            tenant_event(announcement, &listing.spec, Viewer::of(&name, &tenant), now)
        else {
            continue;
        };
        let deliveries = route(
            &event.id,
            event.kind,
            channels
                .iter()
                .map(|c| (c.metadata.name.as_deref().unwrap_or_default(), &c.spec)),
            Some(&tenant.spec),
            has_message,
        );
        let vars = BTreeMap::from([
            ("tenant".to_string(), tenant.spec.display_name.clone()),
            ("listing".to_string(), listing.spec.display_name.clone()),
            (
                "version".to_string(),
                announcement.version.clone().unwrap_or_default(),
            ),
            ("summary".to_string(), announcement.summary.clone()),
            (
                "date".to_string(),
                announcement
                    .released_on
                    .clone()
                    .unwrap_or_else(|| now.strftime("%Y-%m-%d").to_string()),
            ),
        ]);
        let labels = BTreeMap::from([(LISTING_LABEL.to_string(), announcement.listing.clone())]);
        written += record_deliveries(
            ctx,
            notifier,
            &event,
            deliveries,
            (&vars, &labels),
            &mut overrides,
        )
        .await?;
    }
    info!(
        listing = announcement.listing,
        event = ?announcement.kind,
        records = written,
        "catalog news recorded"
    );
    Ok(())
}

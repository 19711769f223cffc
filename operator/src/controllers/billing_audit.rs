//! The periodic HubSpot billing audit: batch-reads the billing records of every subscription in
//! service (≤100 per call, within the shared rate budget), posts what changed as news for the
//! subscriptions' next reconcile (which heals: recreate, suspend, resume), reports deals no
//! subscription owns, sweeps the line items and subscriptions a crash or a lost response left
//! without a parent, records Events, and writes a summary to the ConfigMap
//! `marketplace-drift-report` (`marketplace drift report`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use serde::{Deserialize, Serialize};

use super::news::BillingNews;
use super::status::OPERATOR_MANAGER;
use super::webhook_hints::clear_recheck_mark;
use super::{Context, ControllerConfig};
use crate::api::TenantSubscription;
use crate::api::conditions::types::SYNCED;
use crate::api::conditions::{TRUE, find_condition};
use crate::api::tenant_subscription::Phase;
use crate::billing::api::Obj;
use crate::billing::{HubSpotClient, Orphan, OrphanSweeper};
use crate::lifecycle::BillingFact;
use crate::lifecycle::billing_drift::{compare, orphan_deals};
use crate::server::metrics::{ORPHAN_LINE_ITEM, ORPHAN_SUBSCRIPTION};

/// Name of the ConfigMap holding the last audit's summary.
pub const REPORT_CONFIG_MAP: &str = "marketplace-drift-report";
/// Its key.
pub const REPORT_KEY: &str = "report.json";
/// Event reason of a deleted orphan.
pub const ORPHAN_SWEPT: &str = "OrphanSwept";
/// Who the audit log names for the audit's own billing calls.
const AUDIT_ACTOR: &str = "controller/billing-audit";

/// The summary of one audit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    pub finished_at: String,
    pub subscriptions_audited: usize,
    pub hubspot_calls: u64,
    pub in_sync: usize,
    /// `namespace/name: finding` lines.
    pub findings: Vec<String>,
    /// Billing records no subscription owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphans: Vec<String>,
    /// Orphaned line items and subscriptions this audit deleted (not drift: cleaned up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swept: Vec<String>,
    /// Orphans seen but still inside their grace period (deleted by a later audit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sweep_pending: usize,
    /// Set when the audit could not finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Audits every `audit_interval` until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(client) = ctx.billing.clone() else {
        return;
    };
    let mut sweeper = OrphanSweeper::new(sweep_grace(&ctx.config));
    ctx.metrics
        .auditing(ctx.config.audit_interval, unix_seconds());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(ctx.config.audit_interval) => {}
        }
        let report = audit_once(&ctx, &client, &mut sweeper).await;
        ctx.metrics.audit_finished(
            report.error.is_none(),
            report.findings.len() + report.orphans.len(),
            unix_seconds(),
        );
        tracing::info!(
            audited = report.subscriptions_audited,
            findings = report.findings.len(),
            swept = report.swept.len(),
            calls = report.hubspot_calls,
            "HubSpot drift audit finished"
        );
    }
    ctx.metrics.stopped_auditing();
}

fn unix_seconds() -> f64 {
    Timestamp::now().as_millisecond() as f64 / 1000.0
}

/// How long an orphan must stay orphaned before the sweep deletes it: it is deleted by the first
/// audit that finds it again at least this long after the first sighting. A reconcile sits
/// between its line-item and subscription creates for one request (and its rate-limit wait),
/// far less than an audit interval; never longer than the grace given to deals.
pub fn sweep_grace(config: &ControllerConfig) -> Duration {
    config.audit_interval.min(config.orphan_grace)
}

/// One audit pass over every subscription in service; writes the report ConfigMap. `sweeper`
/// remembers orphans between passes.
pub async fn audit_once(
    ctx: &Context,
    client: &HubSpotClient,
    sweeper: &mut OrphanSweeper,
) -> DriftReport {
    let subs = ctx
        .stores
        .subscriptions
        .state()
        .into_iter()
        .filter(|s| {
            matches!(
                s.status.as_ref().and_then(|st| st.phase),
                Some(Phase::Active | Phase::Trialing | Phase::Suspended)
            )
        })
        .collect();
    let mut report = check(ctx, client, subs, "audit", &BTreeMap::new()).await;
    if report.error.is_none() {
        orphans(ctx, client, &mut report).await;
    }
    let mut swept = Vec::new();
    if report.error.is_none() {
        swept = sweep(ctx, client, sweeper, &mut report).await;
    }
    match write_report(ctx, &report).await {
        Ok(map) => announce_swept(ctx, &map, &swept).await,
        Err(error) => tracing::warn!(%error, "could not write the drift report"),
    }
    report
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Deletes the line items and subscriptions a crash or a lost response left without a parent
/// (after the grace period), and reports billable ones without a deal as drift.
async fn sweep(
    ctx: &Context,
    client: &HubSpotClient,
    sweeper: &mut OrphanSweeper,
    report: &mut DriftReport,
) -> Vec<Orphan> {
    let calls_before = client.stats().requests;
    let swept = match client.sweep_orphans(sweeper).await {
        Ok(swept) => swept,
        Err(error) => {
            report.error = Some(format!("sweeping orphans: {error}"));
            return Vec::new();
        }
    };
    report.hubspot_calls += client.stats().requests.saturating_sub(calls_before);
    report.sweep_pending = swept.pending;
    for orphan in &swept.deleted {
        ctx.metrics.orphan_swept(orphan_kind(orphan));
        ctx.record(crate::audit_log::AuditEntry::new(
            AUDIT_ACTOR,
            "billing.delete",
            format!("hubspot-{}/{}", orphan_kind(orphan), orphan.id),
            "orphaned by a crash or a lost response",
            serde_json::json!({"uid": orphan.subscription_uid}),
        ));
        report.swept.push(describe_orphan(orphan));
    }
    for id in &swept.unowned_billable {
        ctx.metrics.drift_found("unowned_billable_subscription");
        report.orphans.push(format!(
            "HubSpot subscription {id} is ours and invoices, but no deal owns it; not deleted"
        ));
    }
    swept.deleted
}

/// The metric label of an orphan.
fn orphan_kind(orphan: &Orphan) -> &'static str {
    match orphan.object {
        Obj::LineItems => ORPHAN_LINE_ITEM,
        _ => ORPHAN_SUBSCRIPTION,
    }
}

fn describe_orphan(orphan: &Orphan) -> String {
    let what = match orphan.object {
        Obj::LineItems => "line item",
        _ => "subscription",
    };
    match &orphan.subscription_uid {
        Some(uid) => format!(
            "deleted orphan HubSpot {what} {} of subscription uid {uid}",
            orphan.id
        ),
        None => format!("deleted orphan HubSpot {what} {}", orphan.id),
    }
}

/// An Event per swept object: on the TenantSubscription it was made for when it still exists,
/// else on the report ConfigMap.
async fn announce_swept(ctx: &Context, report_map: &ConfigMap, swept: &[Orphan]) {
    let subscriptions = ctx.stores.subscriptions.state();
    for orphan in swept {
        let owner = subscriptions
            .iter()
            .find(|s| s.metadata.uid.is_some() && s.metadata.uid == orphan.subscription_uid);
        let note = describe_orphan(orphan);
        match owner {
            Some(sub) => {
                ctx.event(sub.as_ref(), EventType::Normal, ORPHAN_SWEPT, "Sweep", note)
                    .await
            }
            None => {
                ctx.event(report_map, EventType::Normal, ORPHAN_SWEPT, "Sweep", note)
                    .await
            }
        }
    }
}

/// Batch-reads the billing records of `subs` and posts what differs from their status as news
/// (from `source`: `audit` or `webhook`) for their next reconcile. `marks` are the webhook
/// recheck marks (by uid) this read answers: a mark rides with the news and its reconcile
/// removes it once the status holds what was read; a mark that brings no news is removed here.
pub async fn check(
    ctx: &Context,
    client: &HubSpotClient,
    subs: Vec<Arc<TenantSubscription>>,
    source: &'static str,
    marks: &BTreeMap<String, String>,
) -> DriftReport {
    let calls_before = client.stats().requests;
    let by_uid: BTreeMap<String, _> = subs
        .iter()
        .filter_map(|s| s.metadata.uid.clone().map(|u| (u, s.clone())))
        .collect();
    let uids: Vec<String> = by_uid.keys().cloned().collect();
    let mut report = DriftReport {
        subscriptions_audited: uids.len(),
        ..DriftReport::default()
    };
    let mut posted = BTreeSet::new();
    match client.audit(&uids).await {
        Ok(entries) => {
            for entry in entries {
                let Some(sub) = by_uid.get(&entry.subscription_uid) else {
                    continue;
                };
                let status = sub.status.clone().unwrap_or_default();
                let recorded = BillingFact::from_recorded(
                    status.hubspot.as_ref().and_then(|h| h.status.as_deref()),
                );
                let finding = compare(&entry, &recorded);
                let key = format!(
                    "{}/{}",
                    sub.metadata.namespace.as_deref().unwrap_or_default(),
                    sub.metadata.name.as_deref().unwrap_or_default()
                );
                let in_sync = finding.findings.is_empty();
                if in_sync {
                    report.in_sync += 1;
                    // Agreement is news only to a subscription not already marked Synced.
                    let synced = find_condition(&status.conditions, SYNCED)
                        .is_some_and(|c| c.status == TRUE);
                    if synced {
                        continue;
                    }
                }
                for kind in &finding.kinds {
                    ctx.metrics.drift_found(kind);
                }
                for line in &finding.findings {
                    report.findings.push(format!("{key}: {line}"));
                }
                posted.insert(entry.subscription_uid.clone());
                ctx.news.post(
                    &entry.subscription_uid,
                    ObjectRef::from_obj(sub.as_ref()),
                    BillingNews {
                        fact: finding.fact,
                        source,
                        finding: (!in_sync).then(|| finding.findings.join("; ")),
                        recheck: marks.get(&entry.subscription_uid).cloned(),
                    },
                );
            }
            // Read, and nothing new: the mark is answered.
            for (uid, mark) in marks {
                if let (Some(sub), false) = (by_uid.get(uid), posted.contains(uid)) {
                    clear_recheck_mark(ctx, sub, mark).await;
                }
            }
        }
        Err(error) => report.error = Some(error.to_string()),
    }
    report.hubspot_calls = client.stats().requests.saturating_sub(calls_before);
    report.finished_at = Timestamp::now().to_string();
    report
}

/// Billing records tagged with our uid that no TenantSubscription owns (deleted while its
/// finalizer was removed by hand, a cluster restored from an old backup): reported, and
/// cancelled when the operator is configured to.
async fn orphans(ctx: &Context, client: &HubSpotClient, report: &mut DriftReport) {
    let calls_before = client.stats().requests;
    let deals = match client.our_deals().await {
        Ok(deals) => deals,
        Err(error) => {
            report.error = Some(format!("listing deals: {error}"));
            return;
        }
    };
    let known = ctx
        .stores
        .subscriptions
        .state()
        .iter()
        .filter_map(|s| s.metadata.uid.clone())
        .collect();
    let cancelled_stage = client.config().deal_stage_canceled.clone();
    let grace = jiff::SignedDuration::try_from(ctx.config.orphan_grace).unwrap_or_default();
    let found = orphan_deals(&deals, &known, &cancelled_stage, Timestamp::now(), grace);
    for deal in found {
        ctx.metrics.drift_found("orphan_record");
        let mut line = format!(
            "HubSpot deal {} bills subscription uid {}, which no TenantSubscription owns",
            deal.deal_id, deal.subscription_uid
        );
        if ctx.config.cancel_orphans {
            match client.cancel_billing_record(&deal.subscription_uid).await {
                Ok(_) => line.push_str("; cancelled"),
                Err(error) => line.push_str(&format!("; cancelling failed: {error}")),
            }
            ctx.record(crate::audit_log::AuditEntry::new(
                AUDIT_ACTOR,
                "billing.cancel",
                format!("hubspot-deal/{}", deal.deal_id),
                "orphan billing record",
                serde_json::json!({"uid": deal.subscription_uid}),
            ));
        }
        report.orphans.push(line);
    }
    report.hubspot_calls += client.stats().requests.saturating_sub(calls_before);
}

async fn write_report(ctx: &Context, report: &DriftReport) -> Result<ConfigMap, kube::Error> {
    let body = serde_json::to_string_pretty(report).unwrap_or_default();
    let map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(REPORT_CONFIG_MAP.into()),
            namespace: Some(ctx.config.namespace.clone()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(REPORT_KEY.to_string(), body)])),
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(ctx.client.clone(), &ctx.config.namespace)
        .patch(
            REPORT_CONFIG_MAP,
            &PatchParams::apply(OPERATOR_MANAGER).force(),
            &Patch::Apply(&map),
        )
        .await
}

//! The periodic HubSpot drift audit: batch-reads the billing records of every subscription in
//! service (≤100 per call, within the shared rate budget), posts what changed as news for the
//! subscriptions' next reconcile (which heals: recreate, suspend, resume), records Events, and
//! writes a summary to the ConfigMap `marketplace-drift-report` (`marketplace drift report`).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde::{Deserialize, Serialize};

use super::Context;
use super::news::BillingNews;
use super::status::OPERATOR_MANAGER;
use crate::api::TenantSubscription;
use crate::api::conditions::find_condition;
use crate::api::tenant_subscription::Phase;
use crate::billing::HubSpotClient;
use crate::lifecycle::BillingFact;
use crate::lifecycle::drift::{compare, orphan_deals};

/// Name of the ConfigMap holding the last audit's summary.
pub const REPORT_CONFIG_MAP: &str = "marketplace-drift-report";
/// Its key.
pub const REPORT_KEY: &str = "report.json";

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
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(ctx.config.audit_interval) => {}
        }
        let report = audit_once(&ctx, &client).await;
        tracing::info!(
            audited = report.subscriptions_audited,
            findings = report.findings.len(),
            calls = report.hubspot_calls,
            "HubSpot drift audit finished"
        );
    }
}

/// One audit pass over every subscription in service; writes the report ConfigMap.
pub async fn audit_once(ctx: &Context, client: &HubSpotClient) -> DriftReport {
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
    let mut report = check(ctx, client, subs, "audit").await;
    if report.error.is_none() {
        orphans(ctx, client, &mut report).await;
    }
    if let Err(error) = write_report(ctx, &report).await {
        tracing::warn!(%error, "could not write the drift report");
    }
    report
}

/// Batch-reads the billing records of `subs` and posts what differs from their status as news
/// (from `source`: `audit` or `webhook`) for their next reconcile.
pub async fn check(
    ctx: &Context,
    client: &HubSpotClient,
    subs: Vec<Arc<TenantSubscription>>,
    source: &'static str,
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
                    let synced = find_condition(&status.conditions, "Synced")
                        .is_some_and(|c| c.status == "True");
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
                ctx.news.post(
                    &entry.subscription_uid,
                    ObjectRef::from_obj(sub.as_ref()),
                    BillingNews {
                        fact: finding.fact,
                        source,
                        finding: (!in_sync).then(|| finding.findings.join("; ")),
                    },
                );
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
                "controller/drift",
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

async fn write_report(ctx: &Context, report: &DriftReport) -> Result<(), kube::Error> {
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
        .await?;
    Ok(())
}

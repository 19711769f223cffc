//! Garbage collection of orphans left by crashes and ambiguous creates (contract §2.6 step 4):
//! - line items tagged with `mkt_subscription_uid` that have no subscription and no deal parent
//!   (crash between the line item and the subscription);
//! - non-billable subscriptions carrying our name marker and no deal association (a create whose
//!   response and inline associations were both lost, or a lost probe delete).
//!
//! It lists instead of searching (contract §8.4; no index lag either). Deletion is two-phase: an
//! orphan is only deleted when a later sweep, at least `grace` after the first sighting, still
//! finds it orphaned, so a reconcile that is between its two creates is never disturbed. Billable
//! subscriptions are never deleted here; they are reported.

use super::api::Obj;
use super::client::HubSpotClient;
use super::error::Result;
use super::model::NAME_MARKER;
use super::wire::ObjectJson;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;

/// Guard against a portal that pages forever.
const MAX_PAGES: usize = 10_000;

/// Remembers orphan sightings between sweeps.
#[derive(Debug)]
pub struct OrphanSweeper {
    grace: Duration,
    seen: HashMap<(Obj, String), Instant>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub deleted_line_items: Vec<String>,
    pub deleted_subscriptions: Vec<String>,
    /// Orphans seen but still inside their grace period.
    pub pending: usize,
    /// Billable subscriptions of ours without a deal: drift to alert on, never auto-deleted.
    pub unowned_billable: Vec<String>,
}

/// Why an object counts as an orphan (pure, for tests).
pub fn is_orphan_line_item(li: &ObjectJson) -> bool {
    li.prop("mkt_subscription_uid").is_some()
        && li.associated(Obj::Subscriptions.assoc_keys()).is_empty()
        && li.associated(Obj::Deals.assoc_keys()).is_empty()
}

/// Ours and without a deal.
pub fn is_unowned_subscription(s: &ObjectJson) -> bool {
    s.prop("hs_name").is_some_and(|n| n.contains(NAME_MARKER))
        && s.associated(Obj::Deals.assoc_keys()).is_empty()
}

impl OrphanSweeper {
    pub fn new(grace: Duration) -> Self {
        OrphanSweeper {
            grace,
            seen: HashMap::new(),
        }
    }

    /// Records this sweep's orphans; returns those due for deletion and how many still wait.
    fn mark(&mut self, orphans: Vec<(Obj, String)>) -> (Vec<(Obj, String)>, usize) {
        let now = Instant::now();
        let current: HashSet<(Obj, String)> = orphans.iter().cloned().collect();
        self.seen.retain(|k, _| current.contains(k));
        let mut due = Vec::new();
        let mut pending = 0;
        for key in orphans {
            let first = *self.seen.entry(key.clone()).or_insert(now);
            // `first < now` also requires a second sweep when the grace period is zero.
            if first < now && now.duration_since(first) >= self.grace {
                due.push(key);
            } else {
                pending += 1;
            }
        }
        (due, pending)
    }

    fn forget(&mut self, key: &(Obj, String)) {
        self.seen.remove(key);
    }
}

impl HubSpotClient {
    async fn list_all(&self, t: Obj, props: &[&str], assocs: &[Obj]) -> Result<Vec<ObjectJson>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let (page, next) = self
                .api()
                .list_page(t, after.as_deref(), props, assocs)
                .await?;
            out.extend(page);
            after = next;
            if after.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// One sweep over line items and subscriptions.
    pub async fn sweep_orphans(&self, sweeper: &mut OrphanSweeper) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let mut orphans = Vec::new();
        let line_items = self
            .list_all(
                Obj::LineItems,
                &["mkt_subscription_uid", "hs_createdate"],
                &[Obj::Subscriptions, Obj::Deals],
            )
            .await?;
        orphans.extend(
            line_items
                .iter()
                .filter(|li| is_orphan_line_item(li))
                .map(|li| (Obj::LineItems, li.id.clone())),
        );
        if self.mode() == super::algorithm::BillingMode::Payments {
            let subs = self
                .list_all(
                    Obj::Subscriptions,
                    &["hs_name", "hs_invoice_creation", "hs_status"],
                    &[Obj::Deals],
                )
                .await?;
            for s in subs.iter().filter(|s| is_unowned_subscription(s)) {
                if s.prop("hs_invoice_creation") == Some("on") {
                    report.unowned_billable.push(s.id.clone());
                } else {
                    orphans.push((Obj::Subscriptions, s.id.clone()));
                }
            }
        }
        let (due, pending) = sweeper.mark(orphans);
        report.pending = pending;
        for key in due {
            self.api().archive(key.0, &key.1).await?;
            tracing::info!(object = key.0.path(), id = %key.1, "deleted orphan");
            match key.0 {
                Obj::LineItems => report.deleted_line_items.push(key.1.clone()),
                _ => report.deleted_subscriptions.push(key.1.clone()),
            }
            sweeper.forget(&key);
        }
        if !report.unowned_billable.is_empty() {
            tracing::warn!(ids = ?report.unowned_billable, "drift: billable subscriptions without a deal");
        }
        Ok(report)
    }
}

/// A deal anchoring one of our subscriptions (it carries `mkt_subscription_uid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurDeal {
    pub deal_id: String,
    pub subscription_uid: String,
    pub stage: Option<String>,
    /// `createdAt` as HubSpot wrote it (RFC 3339).
    pub created: String,
}

impl HubSpotClient {
    /// Every deal carrying `mkt_subscription_uid`, for comparing with the cluster's subscriptions
    /// (lists, never searches: contract §8.4).
    pub async fn our_deals(&self) -> Result<Vec<OurDeal>> {
        let deals = self
            .list_all(Obj::Deals, &["mkt_subscription_uid", "dealstage"], &[])
            .await?;
        Ok(deals
            .iter()
            .filter(|d| !d.archived)
            .filter_map(|d| {
                Some(OurDeal {
                    deal_id: d.id.clone(),
                    subscription_uid: d.prop("mkt_subscription_uid")?.to_string(),
                    stage: d.prop("dealstage").map(str::to_string),
                    created: d.created(),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: serde_json::Value) -> ObjectJson {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn recognises_orphans() {
        let li = obj(serde_json::json!({"id": "1", "properties": {"mkt_subscription_uid": "u"}}));
        assert!(is_orphan_line_item(&li));
        let owned = obj(
            serde_json::json!({"id": "1", "properties": {"mkt_subscription_uid": "u"},
            "associations": {"subscriptions": {"results": [{"id": "5"}]}}}),
        );
        assert!(!is_orphan_line_item(&owned));
        let foreign = obj(serde_json::json!({"id": "1", "properties": {}}));
        assert!(!is_orphan_line_item(&foreign));
        let sub = obj(serde_json::json!({"id": "2", "properties": {"hs_name": "x [mkt:u] #1"}}));
        assert!(is_unowned_subscription(&sub));
        let other = obj(serde_json::json!({"id": "2", "properties": {"hs_name": "manual"}}));
        assert!(!is_unowned_subscription(&other));
    }

    #[tokio::test(start_paused = true)]
    async fn deletes_only_after_the_grace_period_and_a_second_sighting() {
        let mut s = OrphanSweeper::new(Duration::from_secs(60));
        let k = (Obj::LineItems, "1".to_string());
        assert_eq!(s.mark(vec![k.clone()]), (vec![], 1));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(s.mark(vec![k.clone()]), (vec![], 1));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(s.mark(vec![k.clone()]), (vec![k.clone()], 0));
        // Adopted in between: forgotten, the clock starts over.
        let mut s = OrphanSweeper::new(Duration::ZERO);
        assert_eq!(s.mark(vec![k.clone()]), (vec![], 1));
        assert_eq!(s.mark(vec![]), (vec![], 0));
        assert_eq!(s.mark(vec![k.clone()]), (vec![], 1));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(s.mark(vec![k.clone()]), (vec![k], 0));
    }
}

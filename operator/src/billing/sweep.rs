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

/// One orphan: what it is, its id, and the TenantSubscription uid it was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub object: Obj,
    pub id: String,
    pub subscription_uid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Orphans deleted by this sweep (line items and subscriptions).
    pub deleted: Vec<Orphan>,
    /// Orphans seen but still inside their grace period.
    pub pending: usize,
    /// Billable subscriptions of ours without a deal: drift to alert on, never auto-deleted.
    pub unowned_billable: Vec<String>,
}

/// What one listing of line items and (in payments mode) subscriptions holds that is ours and
/// unowned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepCandidates {
    /// Safe to delete once still orphaned after the grace period.
    pub orphans: Vec<Orphan>,
    /// Billable subscriptions without a deal: reported only.
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
    marked_uid(s).is_some() && s.associated(Obj::Deals.assoc_keys()).is_empty()
}

/// The TenantSubscription uid in a subscription's name (`… [mkt:<uid>] #n`).
fn marked_uid(s: &ObjectJson) -> Option<String> {
    let name = s.prop("hs_name")?;
    let rest = &name[name.find(NAME_MARKER)? + NAME_MARKER.len()..];
    Some(rest[..rest.find(']').unwrap_or(rest.len())].to_string())
}

/// Decides what of the listed objects is an orphan (pure). `subscriptions` is `None` in
/// CRM-only mode, where there are none.
pub fn sweep_candidates(
    line_items: &[ObjectJson],
    subscriptions: Option<&[ObjectJson]>,
) -> SweepCandidates {
    let mut out = SweepCandidates::default();
    out.orphans.extend(
        line_items
            .iter()
            .filter(|li| is_orphan_line_item(li))
            .map(|li| Orphan {
                object: Obj::LineItems,
                id: li.id.clone(),
                subscription_uid: li.prop("mkt_subscription_uid").map(str::to_string),
            }),
    );
    for s in subscriptions
        .unwrap_or_default()
        .iter()
        .filter(|s| is_unowned_subscription(s))
    {
        if s.prop("hs_invoice_creation") == Some("on") {
            out.unowned_billable.push(s.id.clone());
        } else {
            out.orphans.push(Orphan {
                object: Obj::Subscriptions,
                id: s.id.clone(),
                subscription_uid: marked_uid(s),
            });
        }
    }
    out
}

impl OrphanSweeper {
    pub fn new(grace: Duration) -> Self {
        OrphanSweeper {
            grace,
            seen: HashMap::new(),
        }
    }

    /// Records this sweep's orphans, seen at `now`; returns those due for deletion (seen
    /// before, at least `grace` ago, and orphaned ever since) and how many still wait.
    pub fn mark(&mut self, orphans: Vec<Orphan>, now: Instant) -> (Vec<Orphan>, usize) {
        let current: HashSet<(Obj, String)> =
            orphans.iter().map(|o| (o.object, o.id.clone())).collect();
        self.seen.retain(|k, _| current.contains(k));
        let mut due = Vec::new();
        let mut pending = 0;
        for orphan in orphans {
            let key = (orphan.object, orphan.id.clone());
            let first = *self.seen.entry(key).or_insert(now);
            // `first < now` also requires a second sweep when the grace period is zero.
            if first < now && now.duration_since(first) >= self.grace {
                due.push(orphan);
            } else {
                pending += 1;
            }
        }
        (due, pending)
    }

    fn forget(&mut self, orphan: &Orphan) {
        self.seen.remove(&(orphan.object, orphan.id.clone()));
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
        let line_items = self
            .list_all(
                Obj::LineItems,
                &["mkt_subscription_uid", "hs_createdate"],
                &[Obj::Subscriptions, Obj::Deals],
            )
            .await?;
        let subscriptions = if self.mode() == super::algorithm::BillingMode::Payments {
            Some(
                self.list_all(
                    Obj::Subscriptions,
                    &["hs_name", "hs_invoice_creation", "hs_status"],
                    &[Obj::Deals],
                )
                .await?,
            )
        } else {
            None
        };
        let candidates = sweep_candidates(&line_items, subscriptions.as_deref());
        let (due, pending) = sweeper.mark(candidates.orphans, Instant::now());
        let mut report = SweepReport {
            pending,
            unowned_billable: candidates.unowned_billable,
            ..SweepReport::default()
        };
        for orphan in due {
            self.api().archive(orphan.object, &orphan.id).await?;
            tracing::info!(object = orphan.object.path(), id = %orphan.id, "deleted orphan");
            sweeper.forget(&orphan);
            report.deleted.push(orphan);
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

    fn line_item(id: &str) -> Orphan {
        Orphan {
            object: Obj::LineItems,
            id: id.into(),
            subscription_uid: Some("u".into()),
        }
    }

    #[test]
    fn candidates_are_unowned_line_items_and_non_billable_subscriptions() {
        let items = [
            obj(serde_json::json!({"id": "1", "properties": {"mkt_subscription_uid": "u1"}})),
            obj(
                serde_json::json!({"id": "2", "properties": {"mkt_subscription_uid": "u2"},
                "associations": {"deals": {"results": [{"id": "9"}]}}}),
            ),
        ];
        let subs = [
            obj(serde_json::json!({"id": "3", "properties": {"hs_name": "a/b for T [mkt:u3] #1"}})),
            obj(serde_json::json!({"id": "4", "properties":
                {"hs_name": "a/b for T [mkt:u4] #1", "hs_invoice_creation": "on"}})),
            obj(
                serde_json::json!({"id": "5", "properties": {"hs_name": "a/b for T [mkt:u5] #1"},
                "associations": {"deals": {"results": [{"id": "9"}]}}}),
            ),
        ];
        let found = sweep_candidates(&items, Some(&subs));
        assert_eq!(
            found.orphans,
            vec![
                Orphan {
                    object: Obj::LineItems,
                    id: "1".into(),
                    subscription_uid: Some("u1".into())
                },
                Orphan {
                    object: Obj::Subscriptions,
                    id: "3".into(),
                    subscription_uid: Some("u3".into())
                },
            ]
        );
        assert_eq!(found.unowned_billable, vec!["4".to_string()]);
        // CRM-only: no subscriptions are listed.
        assert_eq!(sweep_candidates(&items, None).orphans.len(), 1);
    }

    #[test]
    fn deletes_only_after_the_grace_period_and_a_second_sighting() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = OrphanSweeper::new(Duration::from_secs(60));
        let k = line_item("1");
        assert_eq!(s.mark(vec![k.clone()], at(0)), (vec![], 1));
        assert_eq!(s.mark(vec![k.clone()], at(30)), (vec![], 1));
        assert_eq!(s.mark(vec![k.clone()], at(60)), (vec![k.clone()], 0));
        // Adopted in between: forgotten, the clock starts over.
        let mut s = OrphanSweeper::new(Duration::ZERO);
        assert_eq!(s.mark(vec![k.clone()], at(0)), (vec![], 1));
        assert_eq!(s.mark(vec![], at(1)), (vec![], 0));
        assert_eq!(s.mark(vec![k.clone()], at(2)), (vec![], 1));
        assert_eq!(s.mark(vec![k.clone()], at(2)), (vec![], 1));
        assert_eq!(s.mark(vec![k.clone()], at(3)), (vec![k], 0));
    }
}

//! Webhooks reach the leader through the cluster. Whichever replica receives a HubSpot webhook
//! marks the subscriptions it names with [`RECHECK_ANNOTATION`]; the leader re-reads their
//! billing records and the mark is removed once what was read is in their status. A mark
//! outlives the leader that was handling it, so the next leader handles it instead.
//!
//! The decisions here are pure: which subscriptions a webhook names, and which marks are due.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::api::TenantSubscription;

/// Set on a TenantSubscription by the replica that received a webhook naming its HubSpot
/// records; the value (the receiving replica's time, in epoch ms) tells one mark from the next.
pub const RECHECK_ANNOTATION: &str = "marketplace.dev/billing-recheck";

/// A mark handed to a re-read and not yet removed is handed out again after this long: the
/// re-read failed, or the reconcile that should have removed it did not run to the end.
pub const REDISPATCH_AFTER: Duration = Duration::from_secs(30);

/// The subscription's pending mark, if any.
pub fn recheck_mark(sub: &TenantSubscription) -> Option<&str> {
    sub.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECHECK_ANNOTATION))
        .map(String::as_str)
}

/// The subscriptions billed through any of `object_ids` (company, deal, line item or
/// subscription).
pub fn billed_through<'a>(
    subscriptions: impl IntoIterator<Item = &'a Arc<TenantSubscription>>,
    object_ids: &BTreeSet<&str>,
) -> Vec<Arc<TenantSubscription>> {
    subscriptions
        .into_iter()
        .filter(|s| {
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
                    .any(|id| id.as_deref().is_some_and(|id| object_ids.contains(id)))
                })
        })
        .cloned()
        .collect()
}

/// Which marks the leader has handed to a re-read, and when: the leader's memory, lost with
/// it on purpose (a new leader hands out every mark it finds).
#[derive(Debug, Default)]
pub struct Dispatched {
    by_uid: HashMap<String, (String, Timestamp)>,
}

impl Dispatched {
    /// Whether `sub`'s mark should be re-read now: it has one, and it was not handed out
    /// already (or was, longer than [`REDISPATCH_AFTER`] ago). Marks it handed out if so.
    pub fn take_due(&mut self, sub: &TenantSubscription, now: Timestamp) -> Option<String> {
        let uid = sub.metadata.uid.as_deref()?;
        let Some(mark) = recheck_mark(sub) else {
            self.by_uid.remove(uid);
            return None;
        };
        if sub.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let due = match self.by_uid.get(uid) {
            Some((handed, at)) if handed == mark => {
                now.duration_since(*at).unsigned_abs() >= REDISPATCH_AFTER
            }
            _ => true,
        };
        due.then(|| {
            self.by_uid.insert(uid.to_string(), (mark.to_string(), now));
            mark.to_string()
        })
    }

    /// Forgets a mark that failed to be re-read, so the next look hands it out again.
    pub fn forget(&mut self, uid: &str) {
        self.by_uid.remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tenant_subscription::{HubSpotIds, TenantSubscriptionStatus};
    use crate::lifecycle::fixtures::subscription;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn marked(uid: &str, mark: Option<&str>) -> TenantSubscription {
        let mut sub = TenantSubscription::new("sub", subscription("{listing: route, plan: flat}"));
        sub.metadata.uid = Some(uid.into());
        if let Some(mark) = mark {
            sub.metadata.annotations =
                Some([(RECHECK_ANNOTATION.to_string(), mark.to_string())].into());
        }
        sub
    }

    #[test]
    fn a_mark_is_handed_out_once_until_it_changes_or_goes_stale() {
        let t0: Timestamp = "2026-12-03T00:00:00Z".parse().unwrap();
        let mut d = Dispatched::default();
        let sub = marked("u1", Some("100"));
        assert_eq!(d.take_due(&sub, t0).as_deref(), Some("100"));
        assert_eq!(d.take_due(&sub, t0 + Duration::from_secs(5)), None);
        // A newer webhook marks it again: handed out at once.
        let newer = marked("u1", Some("200"));
        assert_eq!(
            d.take_due(&newer, t0 + Duration::from_secs(6)).as_deref(),
            Some("200")
        );
        // Still there long after: the re-read or its reconcile did not finish; again.
        assert_eq!(
            d.take_due(&newer, t0 + Duration::from_secs(6) + REDISPATCH_AFTER)
                .as_deref(),
            Some("200")
        );
        // Removed, then marked with the old value again: a new mark.
        assert_eq!(d.take_due(&marked("u1", None), t0), None);
        assert_eq!(
            d.take_due(&marked("u1", Some("200")), t0).as_deref(),
            Some("200")
        );
        d.forget("u1");
        assert_eq!(
            d.take_due(&marked("u1", Some("200")), t0).as_deref(),
            Some("200")
        );
    }

    #[test]
    fn unmarked_or_deleting_subscriptions_are_not_due() {
        let t0: Timestamp = "2026-12-03T00:00:00Z".parse().unwrap();
        let mut d = Dispatched::default();
        assert_eq!(d.take_due(&marked("u1", None), t0), None);
        let mut deleting = marked("u2", Some("1"));
        deleting.metadata.deletion_timestamp = Some(Time(t0));
        assert_eq!(d.take_due(&deleting, t0), None);
    }

    #[test]
    fn webhooks_name_subscriptions_by_any_of_their_hubspot_ids() {
        let billed = |uid: &str, deal: &str, company: &str| {
            let mut sub = marked(uid, None);
            sub.status = Some(TenantSubscriptionStatus {
                hubspot: Some(HubSpotIds {
                    deal_id: Some(deal.into()),
                    company_id: Some(company.into()),
                    ..HubSpotIds::default()
                }),
                ..TenantSubscriptionStatus::default()
            });
            Arc::new(sub)
        };
        let subs = [
            billed("a", "d1", "c1"),
            billed("b", "d2", "c1"),
            billed("c", "d3", "c2"),
            Arc::new(marked("unbilled", None)),
        ];
        let uids = |ids: &[&str]| {
            let ids: BTreeSet<&str> = ids.iter().copied().collect();
            billed_through(&subs, &ids)
                .iter()
                .map(|s| s.metadata.uid.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(uids(&["d2"]), ["b"]);
        assert_eq!(uids(&["c1"]), ["a", "b"]);
        assert_eq!(uids(&["d3", "nothing"]), ["c"]);
        assert!(uids(&["nothing"]).is_empty());
    }
}

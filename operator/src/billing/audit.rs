//! Batch reads for the periodic drift check. contract §2.6 "Rules" and §8.4: the drift job
//! batch-reads or lists, never searches (lag, 10,000-result cap). Every call carries at most 100
//! inputs (contract §3).

use super::api::{MAX_BATCH, Obj};
use super::client::HubSpotClient;
use super::ensure::SUBSCRIPTION_PROPS;
use super::error::Result;
use super::lifecycle::SubscriptionState;
use std::collections::BTreeMap;

/// What HubSpot holds for one tenant subscription uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditedRecord {
    pub subscription_uid: String,
    pub deal_id: Option<String>,
    /// Every subscription associated with the deal, terminal ones included.
    pub subscriptions: Vec<SubscriptionState>,
}

/// A difference between what should exist (one live, billable subscription) and what does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// No deal: the record was never created, or was deleted in HubSpot.
    MissingDeal,
    /// A deal without a live subscription.
    NoLiveSubscription,
    /// More than one live subscription (contract §2.6 step 3 drift alarm).
    Duplicates(Vec<String>),
    /// The live subscription does not invoice (`hs_invoice_creation` off).
    NotInvoicing(String),
}

impl AuditedRecord {
    pub fn live(&self) -> Vec<&SubscriptionState> {
        self.subscriptions
            .iter()
            .filter(|s| s.class.is_live())
            .collect()
    }

    /// Findings for payments mode; an empty list means the record is as it should be.
    pub fn drift(&self) -> Vec<Drift> {
        if self.deal_id.is_none() {
            return vec![Drift::MissingDeal];
        }
        let live = self.live();
        let mut out = Vec::new();
        match live.as_slice() {
            [] => out.push(Drift::NoLiveSubscription),
            [_] => {}
            many => out.push(Drift::Duplicates(
                many.iter().map(|s| s.id.clone()).collect(),
            )),
        }
        out.extend(
            live.iter()
                .filter(|s| !s.invoicing)
                .map(|s| Drift::NotInvoicing(s.id.clone())),
        );
        out
    }
}

impl HubSpotClient {
    /// Reads the billing state of many tenant subscriptions: per 100 uids, one deal batch read
    /// by `mkt_subscription_uid`, one association batch read and one subscription batch read.
    pub async fn audit(&self, subscription_uids: &[String]) -> Result<Vec<AuditedRecord>> {
        let api = self.api();
        let mut out = Vec::with_capacity(subscription_uids.len());
        for chunk in subscription_uids.chunks(MAX_BATCH) {
            let deals = api
                .batch_read(
                    Obj::Deals,
                    chunk,
                    &["mkt_subscription_uid"],
                    Some("mkt_subscription_uid"),
                )
                .await?;
            let deal_of: BTreeMap<String, String> = deals
                .into_iter()
                .filter(|d| !d.archived)
                .filter_map(|d| {
                    d.prop("mkt_subscription_uid")
                        .map(|uid| (uid.to_string(), d.id.clone()))
                })
                .collect();
            let deal_ids: Vec<String> = deal_of.values().cloned().collect();
            let links = api
                .batch_associated(Obj::Deals, Obj::Subscriptions, &deal_ids)
                .await?;
            let sub_ids: Vec<String> = links.values().flatten().cloned().collect();
            let states: BTreeMap<String, SubscriptionState> = self
                .audit_subscriptions(&sub_ids)
                .await?
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect();
            for uid in chunk {
                let deal_id = deal_of.get(uid).cloned();
                let subscriptions = deal_id
                    .as_ref()
                    .and_then(|d| links.get(d))
                    .map(|ids| ids.iter().filter_map(|i| states.get(i).cloned()).collect())
                    .unwrap_or_default();
                out.push(AuditedRecord {
                    subscription_uid: uid.clone(),
                    deal_id,
                    subscriptions,
                });
            }
        }
        Ok(out)
    }

    /// Batch-reads subscription states, 100 ids per call.
    pub async fn audit_subscriptions(&self, ids: &[String]) -> Result<Vec<SubscriptionState>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH) {
            let subs = self
                .api()
                .batch_read(Obj::Subscriptions, chunk, SUBSCRIPTION_PROPS, None)
                .await?;
            out.extend(
                subs.iter()
                    .filter(|s| !s.archived)
                    .map(|s| self.subscription_state(s)),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::status::StatusClass;

    fn st(id: &str, class: StatusClass, invoicing: bool) -> SubscriptionState {
        SubscriptionState {
            id: id.into(),
            status: String::new(),
            class,
            invoicing,
            name: None,
            next_payment_due_date: None,
            last_payment_amount: None,
        }
    }

    #[test]
    fn drift_findings() {
        let mut e = AuditedRecord {
            subscription_uid: "u".into(),
            deal_id: None,
            subscriptions: vec![],
        };
        assert_eq!(e.drift(), vec![Drift::MissingDeal]);
        e.deal_id = Some("1".into());
        assert_eq!(e.drift(), vec![Drift::NoLiveSubscription]);
        e.subscriptions = vec![
            st("2", StatusClass::Ok, true),
            st("3", StatusClass::Terminal, true),
        ];
        assert!(e.drift().is_empty());
        e.subscriptions.push(st("4", StatusClass::Ok, false));
        assert_eq!(
            e.drift(),
            vec![
                Drift::Duplicates(vec!["2".into(), "4".into()]),
                Drift::NotInvoicing("4".into())
            ]
        );
    }
}

//! Subscription lifecycle (contract §1.2 lifecycle spec, §1.8 mapping table): read status,
//! cancel, pause, unpause. The lifecycle endpoints are `POST`s whose success status and error
//! shapes are undocumented (contract §10 q4), so every failure is settled by re-reading
//! `hs_status`: if the subscription is already where it should be, the call counts as done.

use super::algorithm::BillingMode;
use super::api::{MAX_BATCH, Obj};
use super::client::HubSpotClient;
use super::ensure::SUBSCRIPTION_PROPS;
use super::error::{HubSpotError, Result};
use super::status::StatusClass;
use super::wire::ObjectJson;
use jiff::civil::Date;
use serde_json::json;
use std::collections::BTreeMap;

/// A subscription's billing state as read from HubSpot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub id: String,
    /// Raw `hs_status`.
    pub status: String,
    pub class: StatusClass,
    pub invoicing: bool,
    pub name: Option<String>,
    pub next_payment_due_date: Option<String>,
    pub last_payment_amount: Option<String>,
}

/// What [`HubSpotClient::cancel_billing_record`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelOutcome {
    /// `None` when no deal exists for the uid (nothing was ever billed).
    pub deal_id: Option<String>,
    pub canceled: Vec<String>,
    /// Non-billable subscriptions, deleted instead (contract §1.2 "Delete").
    pub deleted: Vec<String>,
}

impl HubSpotClient {
    pub(crate) fn subscription_state(&self, s: &ObjectJson) -> SubscriptionState {
        let status = s.prop("hs_status").unwrap_or_default().to_string();
        SubscriptionState {
            id: s.id.clone(),
            class: self.portal().statuses.classify(&status),
            status,
            invoicing: s.prop("hs_invoice_creation") == Some("on"),
            name: s.prop("hs_name").map(str::to_string),
            next_payment_due_date: s.prop("hs_next_payment_due_date").map(str::to_string),
            last_payment_amount: s.prop("hs_last_payment_amount").map(str::to_string),
        }
    }

    /// Reads one subscription's status (contract §5.2: webhooks are hints; re-read the object).
    pub async fn read_status(&self, subscription_id: &str) -> Result<SubscriptionState> {
        let s = self
            .api()
            .read(Obj::Subscriptions, subscription_id, SUBSCRIPTION_PROPS, &[])
            .await?;
        Ok(self.subscription_state(&s))
    }

    /// Runs a lifecycle action; on any failure other than the daily limit, re-reads the status
    /// and accepts it when `done` says the action has taken effect.
    async fn lifecycle(
        &self,
        id: &str,
        action: &str,
        body: Option<serde_json::Value>,
        done: impl Fn(StatusClass) -> bool,
    ) -> Result<SubscriptionState> {
        match self.api().lifecycle(id, action, body).await {
            Ok(()) => self.read_status(id).await,
            Err(e @ HubSpotError::DailyLimitExhausted { .. }) => Err(e),
            Err(e) => {
                let state = self.read_status(id).await?;
                if done(state.class) { Ok(state) } else { Err(e) }
            }
        }
    }

    /// `POST …/cancel`; an already canceled or expired subscription counts as success
    /// (contract §1.8 "canceled counts as success").
    pub async fn cancel_subscription(&self, subscription_id: &str) -> Result<SubscriptionState> {
        self.lifecycle(subscription_id, "cancel", None, |c| {
            c == StatusClass::Terminal
        })
        .await
    }

    /// `POST …/pause {pauseReason}`.
    pub async fn pause_subscription(
        &self,
        subscription_id: &str,
        reason: &str,
    ) -> Result<SubscriptionState> {
        self.lifecycle(
            subscription_id,
            "pause",
            Some(json!({"pauseReason": reason})),
            |c| c == StatusClass::Paused,
        )
        .await
    }

    /// `POST …/unpause {proposedNextBillingDate}` (required; epoch ms, sent at midnight UTC as
    /// date values must be, contract §1.3).
    pub async fn unpause_subscription(
        &self,
        subscription_id: &str,
        next_billing_date: Date,
    ) -> Result<SubscriptionState> {
        let ms = next_billing_date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| HubSpotError::Invalid(format!("next billing date: {e}")))?
            .timestamp()
            .as_millisecond();
        self.lifecycle(
            subscription_id,
            "unpause",
            Some(json!({"proposedNextBillingDate": ms})),
            |c| c != StatusClass::Paused && c.is_live(),
        )
        .await
    }

    /// The deal anchoring `subscription_uid`, if any (read by unique `idProperty`, not search).
    pub(crate) async fn deal_for_uid(&self, subscription_uid: &str) -> Result<Option<String>> {
        let found = self
            .api()
            .batch_read(
                Obj::Deals,
                &[subscription_uid.to_string()],
                &["mkt_subscription_uid"],
                Some("mkt_subscription_uid"),
            )
            .await?;
        Ok(found.into_iter().find(|d| !d.archived).map(|d| d.id))
    }

    /// CR deleted (finalizer) or canceled: ends every live subscription of the deal and moves
    /// the deal to the canceled stage (contract §1.8). Idempotent.
    pub async fn cancel_billing_record(&self, subscription_uid: &str) -> Result<CancelOutcome> {
        let Some(deal_id) = self.deal_for_uid(subscription_uid).await? else {
            return Ok(CancelOutcome::default());
        };
        let mut out = CancelOutcome {
            deal_id: Some(deal_id.clone()),
            ..CancelOutcome::default()
        };
        if self.mode() == BillingMode::Payments {
            let api = self.api();
            let ids = api
                .associated_ids(Obj::Deals, &deal_id, Obj::Subscriptions)
                .await?;
            for chunk in ids.chunks(MAX_BATCH) {
                let subs = api
                    .batch_read(Obj::Subscriptions, chunk, SUBSCRIPTION_PROPS, None)
                    .await?;
                for s in subs.iter().filter(|s| !s.archived) {
                    let st = self.subscription_state(s);
                    if !st.class.is_live() {
                        continue;
                    }
                    if st.invoicing {
                        self.cancel_subscription(&st.id).await?;
                        out.canceled.push(st.id);
                    } else {
                        api.archive(Obj::Subscriptions, &st.id).await?;
                        out.deleted.push(st.id);
                    }
                }
            }
        }
        let stage = BTreeMap::from([(
            "dealstage".to_string(),
            self.config().deal_stage_canceled.clone(),
        )]);
        self.api().update(Obj::Deals, &deal_id, &stage).await?;
        Ok(out)
    }
}

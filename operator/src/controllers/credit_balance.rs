//! Low credit balances, acted on. After each usage-report round (the round that deducts), for
//! every Tenant with `spec.credits`, the ledger is read and [`balance_actions`] decides:
//! - CreditBalanceLow: one outbox record per channel and recipient, named after the episode, so
//!   the next round, a restart or another replica writes nothing new;
//! - an automatic top-up: the HubSpot charge keyed by the episode ([`HubSpotClient::ensure_charge`]),
//!   then, once HubSpot has it, the grant under the same key. A crash between the two finds the
//!   charge and records the grant; a second round finds the grant and does nothing.

use std::collections::BTreeMap;

use jiff::Timestamp;
use kube::ResourceExt;
use serde_json::json;
use tracing::warn;

use super::Context;
use super::notifications::record_deliveries;
use crate::api::Tenant;
use crate::api::notification_channel::NotificationEventKind;
use crate::billing::{ChargeRequest, HubSpotClient};
use crate::credits::episode::{BalanceAction, balance_actions};
use crate::credits::{CreditGrant, CreditStore};
use crate::lifecycle::notify::{SubscriptionEvent, route};
use crate::metering::AnyUsageStore;
use crate::metering::price::format_micros;
use crate::notify::templates::has_message;

/// Who the ledger and the audit log name for automatic top-ups.
pub const TOP_UP_ACTOR: &str = "controller/credit-top-up";

/// What one pass did.
#[derive(Debug, Default)]
pub struct BalanceRound {
    /// Event ids of low-balance alerts recorded now (records already there are not counted).
    pub alerts: Vec<String>,
    /// Top-up grants recorded now.
    pub top_ups: Vec<CreditGrant>,
    /// `tenant: why`, retried next pass.
    pub failures: Vec<String>,
}

/// Acts on every tenant's low balance at `now`; safe to repeat.
pub async fn check_balances(ctx: &Context, store: &AnyUsageStore, now: Timestamp) -> BalanceRound {
    let mut round = BalanceRound::default();
    for tenant in ctx.stores.tenants.state() {
        let Some(settings) = &tenant.spec.credits else {
            continue;
        };
        if tenant.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = tenant.name_any();
        let ledger = match store.ledger(&name).await {
            Ok(ledger) => ledger,
            Err(e) => {
                round.failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for action in balance_actions(&name, settings, &ledger, now) {
            let outcome = match &action {
                BalanceAction::Alert { event_id, .. } => {
                    match alert(ctx, &tenant, &action, now).await {
                        Ok(true) => {
                            round.alerts.push(event_id.clone());
                            Ok(())
                        }
                        Ok(false) => Ok(()),
                        Err(why) => Err(why),
                    }
                }
                BalanceAction::TopUp { grant_id, .. } => {
                    let Some(hubspot) = &ctx.billing else {
                        continue;
                    };
                    if ledger.grants.iter().any(|g| &g.id == grant_id) {
                        continue;
                    }
                    top_up(hubspot, store, &tenant, &action, now)
                        .await
                        .map(|grant| round.top_ups.extend(grant))
                }
            };
            if let Err(why) = outcome {
                warn!(tenant = %name, error = %why, "credit balance action not done; retrying next round");
                round.failures.push(format!("{name}: {why}"));
            }
        }
    }
    for grant in &round.top_ups {
        ctx.record(crate::audit_log::AuditEntry::new(
            TOP_UP_ACTOR,
            "credits.top-up",
            grant.tenant.clone(),
            grant.reason.clone(),
            json!({"grant": grant.id, "amount": format_micros(grant.amount_micros),
                   "currency": grant.currency}),
        ));
    }
    round
}

/// Records the CreditBalanceLow notifications of `action` (when notifications are on):
/// `true` when a record was written now.
async fn alert(
    ctx: &Context,
    tenant: &Tenant,
    action: &BalanceAction,
    now: Timestamp,
) -> Result<bool, String> {
    let (
        Some(notifier),
        BalanceAction::Alert {
            event_id,
            since,
            balance_micros,
            threshold_micros,
        },
    ) = (&ctx.notifier, action)
    else {
        return Ok(false);
    };
    let currency = currency_of(tenant);
    let kind = NotificationEventKind::CreditBalanceLow;
    let event = SubscriptionEvent {
        id: event_id.clone(),
        kind,
        at: now,
        date: *since,
        reason: None,
    };
    let channels = notifier.channels.store().state();
    let deliveries = route(
        event_id,
        kind,
        channels
            .iter()
            .map(|c| (c.metadata.name.as_deref().unwrap_or_default(), &c.spec)),
        Some(&tenant.spec),
        has_message,
    );
    let money = |micros: i64| format!("{} {currency}", format_micros(micros));
    let vars = BTreeMap::from([
        ("tenant".to_string(), tenant.spec.display_name.clone()),
        ("balance".to_string(), money(*balance_micros)),
        ("threshold".to_string(), money(*threshold_micros)),
        ("date".to_string(), since.strftime("%Y-%m-%d").to_string()),
    ]);
    let mut overrides = None;
    let written = record_deliveries(
        ctx,
        notifier,
        &event,
        deliveries,
        (&vars, &BTreeMap::new()),
        &mut overrides,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(written > 0)
}

/// The currency of the tenant's credit settings.
fn currency_of(tenant: &Tenant) -> String {
    tenant
        .spec
        .credits
        .as_ref()
        .map(|c| c.currency.clone())
        .unwrap_or_default()
}

/// The top-up of `action`: the HubSpot charge, then the grant (`None` when it was there).
async fn top_up(
    hubspot: &HubSpotClient,
    store: &AnyUsageStore,
    tenant: &Tenant,
    action: &BalanceAction,
    now: Timestamp,
) -> Result<Option<CreditGrant>, String> {
    let BalanceAction::TopUp {
        grant_id,
        amount_micros,
        expires_at,
    } = action
    else {
        return Ok(None);
    };
    let name = tenant.name_any();
    let currency = currency_of(tenant);
    let amount = format_micros(*amount_micros);
    let charge = hubspot
        .ensure_charge(&ChargeRequest {
            key: format!("{name}/{grant_id}"),
            tenant_id: name.clone(),
            tenant_name: tenant.spec.display_name.clone(),
            name: format!("Prepaid credits top-up {amount} {currency}"),
            description: format!(
                "Automatic top-up of {amount} {currency} of prepaid credits, valid until {}",
                expires_at.strftime("%Y-%m-%d")
            ),
            amount: amount.clone(),
            currency: currency.clone(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let grant = CreditGrant {
        tenant: name,
        id: grant_id.clone(),
        currency,
        amount_micros: *amount_micros,
        granted_at: now,
        expires_at: *expires_at,
        granted_by: TOP_UP_ACTOR.to_string(),
        reason: format!(
            "automatic top-up, HubSpot line item {} on deal {}",
            charge.line_item_id, charge.deal_id
        ),
    };
    let recorded = store.add_grant(&grant).await.map_err(|e| e.to_string())?;
    Ok(recorded.then_some(grant))
}

//! Start-up bootstrap (contract §2.6 "Preconditions", §1.7, §1.2, §1.8), idempotent:
//! custom properties exist (with the unique flag where the algorithm needs it), the association
//! type ids used match the portal's labels, the `hs_status` options are read, and a portal
//! without payments fails clearly unless CRM-only mode was chosen explicitly.

use super::algorithm::BillingMode;
use super::api::{Obj, assoc};
use super::client::{HubSpotClient, PortalInfo};
use super::error::{HubSpotError, Result};
use super::model::NAME_MARKER;
use super::status::StatusMap;
use serde_json::json;
use std::collections::BTreeMap;

/// A custom property the algorithm relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropertySpec {
    pub object: Obj,
    pub name: &'static str,
    pub label: &'static str,
    pub group: &'static str,
    /// contract §2.2: unique values only on companies, deals (and contacts).
    pub unique: bool,
}

/// contract §2.6 "Preconditions".
pub const PROPERTIES: &[PropertySpec] = &[
    PropertySpec {
        object: Obj::Companies,
        name: "mkt_tenant_id",
        label: "Marketplace tenant id",
        group: "companyinformation",
        unique: true,
    },
    PropertySpec {
        object: Obj::Deals,
        name: "mkt_subscription_uid",
        label: "Marketplace subscription uid",
        group: "dealinformation",
        unique: true,
    },
    PropertySpec {
        object: Obj::LineItems,
        name: "mkt_subscription_uid",
        label: "Marketplace subscription uid",
        group: "lineiteminformation",
        unique: false,
    },
    // Plain: line items take no unique properties (contract §2.2); the deal's association
    // read finds a period's line item (`usage.rs`).
    PropertySpec {
        object: Obj::LineItems,
        name: super::usage::USAGE_PERIOD_KEY,
        label: "Marketplace usage period",
        group: "lineiteminformation",
        unique: false,
    },
    PropertySpec {
        object: Obj::Deals,
        name: super::charge::CHARGE_KEY,
        label: "Marketplace charge key",
        group: "dealinformation",
        unique: true,
    },
    PropertySpec {
        object: Obj::LineItems,
        name: super::charge::CHARGE_KEY,
        label: "Marketplace charge key",
        group: "lineiteminformation",
        unique: false,
    },
    PropertySpec {
        object: Obj::LineItems,
        name: super::usage::CREDITS_APPLIED,
        label: "Marketplace prepaid credits applied",
        group: "lineiteminformation",
        unique: false,
    },
];

/// Association type ids the client writes, per mode (contract §1.7).
pub fn association_checks(mode: BillingMode, deal_company: &[u32]) -> Vec<(Obj, Obj, u32)> {
    let mut v: Vec<(Obj, Obj, u32)> = deal_company
        .iter()
        .map(|t| (Obj::Deals, Obj::Companies, *t))
        .collect();
    // Usage periods are billed as deal line items in both modes.
    v.push((Obj::LineItems, Obj::Deals, assoc::LINE_ITEM_TO_DEAL));
    match mode {
        BillingMode::Payments => v.extend([
            (Obj::Subscriptions, Obj::Deals, assoc::SUBSCRIPTION_TO_DEAL),
            (
                Obj::Subscriptions,
                Obj::Companies,
                assoc::SUBSCRIPTION_TO_COMPANY,
            ),
            (
                Obj::Subscriptions,
                Obj::LineItems,
                assoc::SUBSCRIPTION_TO_LINE_ITEM,
            ),
        ]),
        BillingMode::CrmOnly => {}
    }
    v
}

/// How the payments prerequisite was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentsCheck {
    /// A probe subscription could be created (and was deleted again).
    Verified,
    /// `probe_payments` is off; a missing prerequisite surfaces at the first create.
    NotProbed,
    /// CRM-only mode: subscriptions are not used.
    CrmOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapReport {
    /// `type.name` of the properties this run created.
    pub created_properties: Vec<String>,
    /// `hs_status` options the operator does not know (treated as live, never replaced).
    pub unknown_status_options: Vec<String>,
    pub payments: PaymentsCheck,
}

impl HubSpotClient {
    /// Runs the start-up checks and keeps what they learned for later calls. Idempotent.
    pub async fn bootstrap(&self) -> Result<BootstrapReport> {
        let api = self.api();
        let mut created = Vec::new();
        for spec in PROPERTIES {
            if self.ensure_property(spec).await? {
                created.push(format!("{}.{}", spec.object.path(), spec.name));
            }
        }
        self.check_labels().await?;
        let frequencies = api
            .property(Obj::LineItems, "recurringbillingfrequency")
            .await?
            .map(|p| p.options.into_iter().map(|o| o.value).collect::<Vec<_>>())
            .filter(|o| !o.is_empty());
        let (statuses, payments) = match self.mode() {
            BillingMode::CrmOnly => (StatusMap::default(), PaymentsCheck::CrmOnly),
            BillingMode::Payments => {
                let statuses = match api.property(Obj::Subscriptions, "hs_status").await? {
                    Some(p) if !p.options.is_empty() => {
                        StatusMap::from_options(p.options.into_iter().map(|o| o.value))
                    }
                    _ => {
                        return Err(HubSpotError::Portal(
                            "the portal has no subscriptions.hs_status options; commerce \
                             subscriptions look unavailable (contract §1.2)"
                                .into(),
                        ));
                    }
                };
                let payments = if self.config().probe_payments {
                    self.probe_payments().await?;
                    PaymentsCheck::Verified
                } else {
                    PaymentsCheck::NotProbed
                };
                (statuses, payments)
            }
        };
        let unknown: Vec<String> = statuses
            .unknown_options()
            .into_iter()
            .map(str::to_string)
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(
                ?unknown,
                "hs_status options the operator does not know; treated as live"
            );
        }
        self.set_portal(PortalInfo {
            statuses,
            frequencies,
            bootstrapped: true,
        });
        Ok(BootstrapReport {
            created_properties: created,
            unknown_status_options: unknown,
            payments,
        })
    }

    /// GET, and POST on 404. A conflict on POST means someone else created it: fine.
    /// Returns whether this call created it.
    async fn ensure_property(&self, spec: &PropertySpec) -> Result<bool> {
        let api = self.api();
        let qualified = format!("{}.{}", spec.object.path(), spec.name);
        if let Some(p) = api.property(spec.object, spec.name).await? {
            if spec.unique && !p.has_unique_value {
                // contract §2.2: the unique flag can only be set at creation.
                return Err(HubSpotError::Portal(format!(
                    "property {qualified} exists but is not unique; the flag can only be set when \
                     a property is created, so delete and recreate it (contract §2.2)"
                )));
            }
            return Ok(false);
        }
        let def = json!({
            "name": spec.name,
            "label": spec.label,
            "type": "string",
            "fieldType": "text",
            "groupName": spec.group,
            "hasUniqueValue": spec.unique,
            "description": "Managed by the marketplace operator; do not edit.",
        });
        match api.create_property(spec.object, def).await {
            Ok(()) => {
                tracing::info!(property = %qualified, "created HubSpot property");
                Ok(true)
            }
            Err(HubSpotError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// contract §1.7: check the HubSpot-defined ids against the portal's labels.
    async fn check_labels(&self) -> Result<()> {
        let api = self.api();
        let mut by_pair: BTreeMap<(&'static str, &'static str), Vec<u32>> = BTreeMap::new();
        for (from, to, type_id) in
            association_checks(self.mode(), &self.config().deal_company_types)
        {
            let key = (from.path(), to.path());
            if let std::collections::btree_map::Entry::Vacant(slot) = by_pair.entry(key) {
                let labels = api.labels(from, to).await?;
                slot.insert(
                    labels
                        .into_iter()
                        .filter(|l| l.category.as_deref().is_none_or(|c| c == "HUBSPOT_DEFINED"))
                        .map(|l| l.type_id)
                        .collect(),
                );
            }
            if !by_pair.get(&key).is_some_and(|ids| ids.contains(&type_id)) {
                return Err(HubSpotError::Portal(format!(
                    "association type {type_id} ({} → {}) is not defined in the portal (contract §1.7)",
                    key.0, key.1
                )));
            }
        }
        Ok(())
    }

    /// contract §1.2 prerequisite: creating a subscription fails without payments. The probe is
    /// non-billable and deleted at once (allowed in any state, §1.2); if the delete is lost, the
    /// orphan sweep removes it (its name carries the marker, it has no deal).
    async fn probe_payments(&self) -> Result<()> {
        let api = self.api();
        let props = BTreeMap::from([(
            "hs_name".to_string(),
            format!("{NAME_MARKER}payments-probe] marketplace operator start-up check"),
        )]);
        match api.create(Obj::Subscriptions, &props, Vec::new()).await {
            Ok(probe) => {
                api.archive(Obj::Subscriptions, &probe.id).await?;
                Ok(())
            }
            Err(e @ HubSpotError::PaymentsNotEnabled { .. }) => Err(e),
            Err(HubSpotError::Validation { body, .. }) | Err(HubSpotError::Auth { body, .. })
                if body.is_payments_not_set_up() =>
            {
                Err(HubSpotError::PaymentsNotEnabled { body })
            }
            Err(e) => Err(e),
        }
    }
}

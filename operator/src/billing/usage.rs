//! A closed usage period as a HubSpot line item on the subscription's deal, exactly once.
//!
//! Why the deal: a billable commerce subscription's line items cannot change any more (contract
//! §1.2 lists what stays updatable), a line item has exactly one parent (§1.3), and invoices are
//! read-only to us (§9). So each period becomes a one-time line item associated with the deal
//! (type 20, §1.7), carrying `quantity` and `price` and the plain custom property
//! `mkt_usage_period_key` (line items take no unique properties, §2.2). Idempotency follows
//! §2.6: "does it exist?" is an association read of the deal and a batch read of its line items,
//! never a search; the create carries its deal association inline, so a lost response is found
//! by the next look-up; a create is never retried blindly.

use std::collections::BTreeMap;

use super::api::{MAX_BATCH, Obj, assoc, inline_assoc};
use super::client::HubSpotClient;
use super::error::{HubSpotError, Result};
use super::wire::ObjectJson;

/// The line-item property naming the period a usage line item bills.
pub const USAGE_PERIOD_KEY: &str = "mkt_usage_period_key";

/// The line-item property saying how much of the usage prepaid credits paid (a decimal in the
/// plan's currency); the line item's `discount` takes it off the price.
pub const CREDITS_APPLIED: &str = "mkt_credits_applied";

/// One closed period's usage, as the line item to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageLineItemRequest {
    /// The subscription's deal (its `status.hubspot.dealId`).
    pub deal_id: String,
    /// `<subscription uid>/<period>`, e.g. `6f1c…/2026-11`.
    pub period_key: String,
    /// The TenantSubscription's uid (tags the line item as ours, for the orphan sweep).
    pub subscription_uid: String,
    pub name: String,
    pub description: String,
    /// Whole units, as HubSpot takes them.
    pub quantity: String,
    /// A non-negative decimal.
    pub price: String,
    /// Prepaid credits applied: the `discount` off each unit and the whole credit, decimals.
    pub credit: Option<UsageCredit>,
}

/// What prepaid credits paid of a usage line item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageCredit {
    /// Off each unit (HubSpot's `discount`).
    pub discount: String,
    /// The whole credit ([`CREDITS_APPLIED`]).
    pub total: String,
}

/// What was found or made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageLineItem {
    pub id: String,
    /// `false`: it existed already (made by an earlier attempt whose outcome was lost).
    pub created: bool,
}

/// The line item among `items` that bills `period_key`: the oldest, should drift have made two.
pub fn usage_line_item_for<'a>(items: &'a [ObjectJson], period_key: &str) -> Option<&'a str> {
    keyed_line_item(items, USAGE_PERIOD_KEY, period_key)
}

/// The line item among `items` whose `key_property` is `key`: the oldest, should drift have
/// made two.
pub fn keyed_line_item<'a>(
    items: &'a [ObjectJson],
    key_property: &str,
    key: &str,
) -> Option<&'a str> {
    items
        .iter()
        .filter(|li| li.prop(key_property) == Some(key))
        .min_by_key(|li| (li.created(), li.id.parse::<u64>().unwrap_or(u64::MAX)))
        .map(|li| li.id.as_str())
}

/// Whether a line item bills usage (not the plan's recurring price).
pub fn is_usage_line_item(li: &ObjectJson) -> bool {
    li.prop(USAGE_PERIOD_KEY).is_some()
}

impl HubSpotClient {
    /// The deal's line items with their creation time and `key_property` (which tells a usage
    /// period's or a charge's line item from the recurring price's).
    pub(crate) async fn deal_line_items(
        &self,
        deal_id: &str,
        key_property: &str,
    ) -> Result<Vec<ObjectJson>> {
        let api = self.api();
        let ids = api
            .associated_ids(Obj::Deals, deal_id, Obj::LineItems)
            .await?;
        let mut items = Vec::new();
        for chunk in ids.chunks(MAX_BATCH) {
            items.extend(
                api.batch_read(
                    Obj::LineItems,
                    chunk,
                    &["hs_createdate", key_property],
                    None,
                )
                .await?,
            );
        }
        Ok(items)
    }

    /// Makes sure the deal has the line item of `req.period_key`, creating it only when a fresh
    /// look-up finds none. Safe to call again after any error or crash.
    pub async fn ensure_usage_line_item(
        &self,
        req: &UsageLineItemRequest,
    ) -> Result<UsageLineItem> {
        let credit = req.credit.iter().flat_map(|c| {
            [
                ("discount", c.discount.clone()),
                (CREDITS_APPLIED, c.total.clone()),
            ]
        });
        let props: BTreeMap<String, String> = [
            ("name", req.name.clone()),
            ("description", req.description.clone()),
            ("quantity", req.quantity.clone()),
            ("price", req.price.clone()),
            (USAGE_PERIOD_KEY, req.period_key.clone()),
            ("mkt_subscription_uid", req.subscription_uid.clone()),
        ]
        .into_iter()
        .chain(credit)
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        self.ensure_deal_line_item(&req.deal_id, USAGE_PERIOD_KEY, &req.period_key, props)
            .await
    }

    /// Makes sure the deal has the one-time line item whose `key_property` is `key` (`props`
    /// carry it), creating it only when a fresh look-up finds none. Safe to call again after
    /// any error or crash.
    pub(crate) async fn ensure_deal_line_item(
        &self,
        deal_id: &str,
        key_property: &str,
        key: &str,
        props: BTreeMap<String, String>,
    ) -> Result<UsageLineItem> {
        let existing = self.deal_line_items(deal_id, key_property).await?;
        if let Some(id) = keyed_line_item(&existing, key_property, key) {
            return Ok(UsageLineItem {
                id: id.to_string(),
                created: false,
            });
        }
        let links = vec![inline_assoc(deal_id, assoc::LINE_ITEM_TO_DEAL)];
        match self.api().create(Obj::LineItems, &props, links).await {
            Ok(li) => Ok(UsageLineItem {
                id: li.id,
                created: true,
            }),
            // Committed or not, nobody knows: look again (the association came with the create).
            Err(HubSpotError::AmbiguousAfterCommit { op, status }) => {
                let again = self.deal_line_items(deal_id, key_property).await?;
                match keyed_line_item(&again, key_property, key) {
                    Some(id) => Ok(UsageLineItem {
                        id: id.to_string(),
                        created: true,
                    }),
                    None => Err(HubSpotError::AmbiguousAfterCommit { op, status }),
                }
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn li(id: &str, created: &str, key: Option<&str>) -> ObjectJson {
        let mut properties = json!({"hs_createdate": created});
        if let Some(key) = key {
            properties[USAGE_PERIOD_KEY] = json!(key);
        }
        serde_json::from_value(json!({"id": id, "properties": properties})).unwrap()
    }

    #[test]
    fn the_oldest_line_item_of_the_period_is_the_one() {
        let items = [
            li("7", "2026-12-01T00:00:02Z", Some("u/2026-11")),
            li("5", "2026-11-01T00:00:00Z", None),
            li("9", "2026-12-01T00:00:01Z", Some("u/2026-11")),
            li("3", "2026-11-01T00:00:01Z", Some("u/2026-10")),
        ];
        assert_eq!(usage_line_item_for(&items, "u/2026-11"), Some("9"));
        assert_eq!(usage_line_item_for(&items, "u/2026-09"), None);
        assert!(!is_usage_line_item(&items[1]));
        assert!(is_usage_line_item(&items[3]));
    }
}

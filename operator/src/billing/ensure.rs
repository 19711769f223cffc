//! Executor of the contract §2.6 algorithm: runs the HTTP call for each [`BillingStep`] chosen by
//! [`next_step`] and records the outcome in the [`BillingObservation`].

use super::algorithm::{
    BillingObservation, BillingStep, LineItemParent, ObservedLineItem, ObservedSubscription,
    PendingLineItem, next_step,
};
use super::api::{Obj, assoc, inline_assoc};
use super::api_batch::NewObject;
use super::client::HubSpotClient;
use super::error::{HubSpotError, Result};
use super::model::{BillingRecord, BillingRequest, Repair};
use super::usage::is_usage_line_item;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// Properties read from subscriptions to decide (contract §1.2).
pub(crate) const SUBSCRIPTION_PROPS: &[&str] = &[
    "hs_status",
    "hs_invoice_creation",
    "hs_name",
    "hs_createdate",
    "hs_next_payment_due_date",
    "hs_last_payment_amount",
];

/// Upper bound on steps in one call; the algorithm needs about a dozen at most.
const MAX_STEPS: usize = 64;

fn props<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

impl HubSpotClient {
    /// Makes sure exactly one live billing record exists for `req` (contract §2.6) and returns
    /// it. Safe to call on every reconcile; after an error, simply call it again later.
    pub async fn ensure_billing_record(&self, req: &BillingRequest) -> Result<BillingRecord> {
        req.validate()?;
        self.check_interval(&req.interval)?;
        let result = self.run_ensure(req).await;
        if result.is_err() {
            // The cached company may be what failed (deleted or merged in HubSpot).
            self.forget_company(&req.tenant_id);
        }
        result
    }

    async fn run_ensure(&self, req: &BillingRequest) -> Result<BillingRecord> {
        let mut o = BillingObservation::new(self.mode());
        for _ in 0..MAX_STEPS {
            match next_step(&o) {
                BillingStep::Done(record) => return Ok(record),
                BillingStep::GiveUp => {
                    return Err(HubSpotError::AmbiguousAfterCommit {
                        op: "ensure billing record".into(),
                        status: None,
                    });
                }
                step => self.apply(req, &mut o, step).await?,
            }
        }
        Err(HubSpotError::Decode {
            op: "ensure billing record".into(),
            reason: "the algorithm did not converge".into(),
        })
    }

    /// contract §1.3: frequencies come from the portal, not from a hard-coded list.
    fn check_interval(&self, interval: &str) -> Result<()> {
        match self.portal().frequencies {
            Some(options) if !options.iter().any(|o| o == interval) => {
                Err(HubSpotError::Invalid(format!(
                    "interval {interval:?} is not a recurringbillingfrequency option of the portal ({})",
                    options.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }

    async fn apply(
        &self,
        req: &BillingRequest,
        o: &mut BillingObservation,
        step: BillingStep,
    ) -> Result<()> {
        let api = self.api();
        let cfg = self.config();
        match step {
            BillingStep::UpsertCompany => {
                o.company_id = Some(
                    self.tenant_company_id(&req.tenant_id, &req.tenant_name)
                        .await?,
                );
            }
            BillingStep::UpsertDeal => {
                let p = props([
                    ("dealname", req.deal_name()),
                    ("pipeline", cfg.deal_pipeline.clone()),
                    ("dealstage", cfg.deal_stage_active.clone()),
                    ("amount", req.amount()?),
                ]);
                let (id, _) = self
                    .upsert_batched(Obj::Deals, "mkt_subscription_uid", &req.subscription_uid, p)
                    .await?;
                o.deal_id = Some(id);
            }
            BillingStep::LinkDealToCompany {
                deal_id,
                company_id,
            } => {
                self.link_batched(
                    Obj::Deals,
                    &deal_id,
                    Obj::Companies,
                    &company_id,
                    &cfg.deal_company_types,
                )
                .await?;
                o.deal_linked_to_company = true;
            }
            BillingStep::ReadDealSubscriptions { deal_id } => {
                let mut subs = self.deal_subscriptions(&deal_id).await?;
                if let Some(created) = &o.unverified_create
                    && subs.iter().any(|s| &s.id == created)
                {
                    // Its line item association was written by the same create.
                    if let Some(PendingLineItem {
                        id,
                        parent: LineItemParent::Subscription(owner),
                    }) = &o.pending_line_item
                        && owner == created
                    {
                        for s in subs.iter_mut().filter(|s| &s.id == created) {
                            s.line_item_id.get_or_insert_with(|| id.clone());
                        }
                    }
                    o.unverified_create = None;
                    o.pending_line_item = None;
                }
                o.subscriptions = Some(subs);
                o.line_item_read = false;
            }
            BillingStep::RetireDuplicates { keep, retire } => {
                tracing::warn!(deal = ?o.deal_id, %keep, extra = retire.len(), "drift: more than one live subscription on a deal");
                for s in retire {
                    // Non-billable ones may be deleted in any state; billable ones are canceled
                    // (contract §1.2 "Delete").
                    let deleted = !s.invoicing;
                    if deleted {
                        api.archive(Obj::Subscriptions, &s.id).await?;
                    } else {
                        self.cancel_subscription(&s.id).await?;
                    }
                    o.repairs.push(Repair::RetiredDuplicate {
                        subscription_id: s.id.clone(),
                        deleted,
                    });
                    if let Some(list) = &mut o.subscriptions {
                        list.retain(|x| x.id != s.id);
                    }
                }
            }
            BillingStep::ReadSubscriptionLineItem { subscription_id } => {
                let ids = self
                    .associated_batched(Obj::Subscriptions, &subscription_id, Obj::LineItems)
                    .await?;
                if let Some(list) = &mut o.subscriptions {
                    for s in list.iter_mut().filter(|s| s.id == subscription_id) {
                        s.line_item_id = ids.first().cloned();
                    }
                }
                o.line_item_read = true;
            }
            BillingStep::ReadLineItemParent { line_item_id } => {
                let parent = match api
                    .associated_ids(Obj::LineItems, &line_item_id, Obj::Subscriptions)
                    .await
                {
                    Ok(ids) => match ids.into_iter().next() {
                        Some(sub) => Some(LineItemParent::Subscription(sub)),
                        None => Some(LineItemParent::None),
                    },
                    // The line item is gone: start the create path over.
                    Err(HubSpotError::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                o.pending_line_item = parent.map(|parent| PendingLineItem {
                    id: line_item_id,
                    parent,
                });
            }
            BillingStep::Relink {
                subscription_id,
                line_item_id,
            } => self.relink(o, &subscription_id, line_item_id).await?,
            BillingStep::CreateLineItem => {
                let p = self.line_item_props(req).await?;
                let item = NewObject {
                    properties: p,
                    associations: Vec::new(),
                };
                match self.create_batched(Obj::LineItems, item).await {
                    Ok(li) => {
                        o.pending_line_item = Some(PendingLineItem {
                            id: li.id,
                            parent: LineItemParent::None,
                        })
                    }
                    // The line item may exist; we do not know its id. Back to the lookup; a
                    // committed one stays an orphan for the sweep (contract §2.6 step 4).
                    Err(HubSpotError::AmbiguousAfterCommit { .. }) => {
                        o.ambiguous_creates += 1;
                        o.subscriptions = None;
                    }
                    Err(e) => return Err(e),
                }
            }
            BillingStep::CreateSubscription {
                line_item_id,
                generation,
            } => {
                self.create_subscription(req, o, &line_item_id, generation)
                    .await?
            }
            BillingStep::EnableInvoicing { subscription_id } => {
                let p = props([("hs_invoice_creation", "on".to_string())]);
                self.update_batched(Obj::Subscriptions, &subscription_id, p)
                    .await?;
                if let Some(list) = &mut o.subscriptions {
                    for s in list.iter_mut().filter(|s| s.id == subscription_id) {
                        s.invoicing = true;
                    }
                }
            }
            BillingStep::ReadDealLineItems { deal_id } => {
                // Usage periods' line items share the deal; only the plan's own is ours here.
                let items: Vec<ObservedLineItem> = self
                    .deal_line_items(&deal_id, super::usage::USAGE_PERIOD_KEY)
                    .await?
                    .into_iter()
                    .filter(|li| !is_usage_line_item(li))
                    .map(|li| ObservedLineItem {
                        created_at: li.created(),
                        id: li.id,
                    })
                    .collect();
                if let Some(created) = &o.unverified_create
                    && items.iter().any(|i| &i.id == created)
                {
                    o.unverified_create = None;
                }
                o.deal_line_items = Some(items);
            }
            BillingStep::CreateDealLineItem => {
                let p = self.line_item_props(req).await?;
                let deal = o.deal_id.clone().unwrap_or_default();
                let links = vec![inline_assoc(&deal, assoc::LINE_ITEM_TO_DEAL)];
                match api.create(Obj::LineItems, &p, links).await {
                    Ok(li) => {
                        o.unverified_create = Some(li.id);
                        o.deal_line_items = None;
                    }
                    Err(HubSpotError::AmbiguousAfterCommit { .. }) => {
                        o.ambiguous_creates += 1;
                        o.deal_line_items = None;
                    }
                    Err(e) => return Err(e),
                }
            }
            BillingStep::RemoveDuplicateLineItems { keep, remove } => {
                tracing::warn!(deal = ?o.deal_id, %keep, extra = remove.len(), "drift: more than one line item on a CRM-only deal");
                for id in remove {
                    api.archive(Obj::LineItems, &id).await?;
                    if let Some(list) = &mut o.deal_line_items {
                        list.retain(|i| i.id != id);
                    }
                    o.repairs
                        .push(Repair::RemovedDuplicateLineItem { line_item_id: id });
                }
            }
            BillingStep::RelinkLineItem { line_item_id } => {
                let deal = o.deal_id.clone().unwrap_or_default();
                o.relinks += 1;
                api.associate(
                    Obj::LineItems,
                    &line_item_id,
                    Obj::Deals,
                    &deal,
                    &[assoc::LINE_ITEM_TO_DEAL],
                )
                .await?;
                o.repairs.push(Repair::RelinkedLineItem {
                    line_item_id: line_item_id.clone(),
                });
                o.unverified_create = None;
                if let Some(list) = &mut o.deal_line_items {
                    list.push(ObservedLineItem {
                        id: line_item_id,
                        created_at: String::new(),
                    });
                }
            }
            BillingStep::Done(_) | BillingStep::GiveUp => {}
        }
        Ok(())
    }

    /// contract §2.6 step 3: the deal's subscriptions with their status (an association read
    /// and a read of each, both coalesced with other reconciles'). Their line items are not read
    /// here: the algorithm asks when it needs one.
    async fn deal_subscriptions(&self, deal_id: &str) -> Result<Vec<ObservedSubscription>> {
        let ids = self
            .associated_batched(Obj::Deals, deal_id, Obj::Subscriptions)
            .await?;
        let statuses = self.portal().statuses;
        let reads = ids
            .iter()
            .map(|id| self.read_batched(Obj::Subscriptions, id, SUBSCRIPTION_PROPS));
        let mut out = Vec::new();
        for read in futures::future::join_all(reads).await {
            if let Some(s) = read? {
                let status = s.prop("hs_status").unwrap_or_default().to_string();
                out.push(ObservedSubscription {
                    class: statuses.classify(&status),
                    status,
                    invoicing: s.prop("hs_invoice_creation") == Some("on"),
                    created_at: s.created(),
                    line_item_id: None,
                    id: s.id,
                });
            }
        }
        Ok(out)
    }

    /// contract §1.3 / §1.8: the subscription's own line item, tagged with the uid so an orphan
    /// can be found later.
    async fn line_item_props(&self, req: &BillingRequest) -> Result<BTreeMap<String, String>> {
        let mut p = props([
            ("name", req.line_item_name()),
            ("hs_sku", req.sku.clone()),
            ("price", req.unit_price.clone()),
            ("quantity", req.quantity.to_string()),
            ("recurringbillingfrequency", req.interval.clone()),
            ("hs_recurring_billing_start_date", req.billing_start()?),
            ("mkt_subscription_uid", req.subscription_uid.clone()),
        ]);
        for (name, value) in req.discount.iter().flat_map(|d| d.properties()) {
            p.insert(name.into(), value);
        }
        if let Some(product) = self.product_id(&req.sku).await? {
            p.insert("hs_product_id".into(), product);
        }
        Ok(p)
    }

    /// contract §1.4: products are looked up by SKU through search (lag acceptable) and cached.
    /// This is a catalog lookup, not an existence check, so search is fine here. Lookups of
    /// concurrent reconciles share one `IN` search (`coalesce.rs`).
    async fn product_id(&self, sku: &str) -> Result<Option<String>> {
        if !self.config().resolve_products || sku.is_empty() {
            return Ok(None);
        }
        if let Some(id) = self.cached_product(sku) {
            return Ok(id);
        }
        self.product_batched(sku).await
    }

    /// The cached product id of `sku` (`Some(None)`: known to have no product).
    pub(crate) fn cached_product(&self, sku: &str) -> Option<Option<String>> {
        let ttl = self.config().product_cache_ttl;
        self.inner
            .products
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sku)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(id, _)| id.clone())
    }

    pub(crate) fn remember_product(&self, sku: &str, id: Option<String>) {
        self.inner
            .products
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sku.to_string(), (id, Instant::now()));
    }

    /// contract §2.6 step 4: one request with inline associations (deal 299, company 297,
    /// line item 301).
    async fn create_subscription(
        &self,
        req: &BillingRequest,
        o: &mut BillingObservation,
        line_item_id: &str,
        generation: usize,
    ) -> Result<()> {
        let cfg = self.config();
        let p = props([
            ("hs_name", req.subscription_name(generation)),
            ("hs_currency_code", req.currency.clone()),
            ("hs_recurring_billing_frequency", req.interval.clone()),
            ("hs_recurring_billing_start_date", req.billing_start()?),
            ("hs_collection_process", cfg.collection_process.clone()),
            (
                "hs_net_payment_terms",
                cfg.net_payment_terms_days.to_string(),
            ),
        ]);
        let deal = o.deal_id.clone().unwrap_or_default();
        let company = o.company_id.clone().unwrap_or_default();
        let links = vec![
            inline_assoc(&deal, assoc::SUBSCRIPTION_TO_DEAL),
            inline_assoc(&company, assoc::SUBSCRIPTION_TO_COMPANY),
            inline_assoc(line_item_id, assoc::SUBSCRIPTION_TO_LINE_ITEM),
        ];
        let subscription = NewObject {
            properties: p,
            associations: links,
        };
        match self.create_batched(Obj::Subscriptions, subscription).await {
            Ok(s) => {
                // Verify through the deal before trusting the inline associations.
                o.unverified_create = Some(s.id.clone());
                o.pending_line_item = Some(PendingLineItem {
                    id: line_item_id.to_string(),
                    parent: LineItemParent::Subscription(s.id),
                });
                o.subscriptions = None;
            }
            Err(HubSpotError::AmbiguousAfterCommit { .. }) => {
                o.ambiguous_creates += 1;
                o.pending_line_item = Some(PendingLineItem {
                    id: line_item_id.to_string(),
                    parent: LineItemParent::Unknown,
                });
                o.subscriptions = None;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Writes a subscription's associations again and takes it into the observation.
    async fn relink(
        &self,
        o: &mut BillingObservation,
        subscription_id: &str,
        line_item_id: Option<String>,
    ) -> Result<()> {
        let api = self.api();
        o.relinks += 1;
        let deal = o.deal_id.clone().unwrap_or_default();
        let company = o.company_id.clone().unwrap_or_default();
        let mut links = vec![
            (Obj::Deals, deal, assoc::SUBSCRIPTION_TO_DEAL),
            (Obj::Companies, company, assoc::SUBSCRIPTION_TO_COMPANY),
        ];
        if let Some(li) = &line_item_id {
            links.push((Obj::LineItems, li.clone(), assoc::SUBSCRIPTION_TO_LINE_ITEM));
        }
        for (to, to_id, type_id) in links {
            match api
                .associate(Obj::Subscriptions, subscription_id, to, &to_id, &[type_id])
                .await
            {
                Ok(()) => {}
                // The subscription is gone after all: forget it and look again.
                Err(HubSpotError::NotFound { .. }) => {
                    o.unverified_create = None;
                    o.pending_line_item = line_item_id.map(|id| PendingLineItem {
                        id,
                        parent: LineItemParent::Unknown,
                    });
                    o.subscriptions = None;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(
            subscription = subscription_id,
            "relinked a subscription whose inline associations were lost"
        );
        o.repairs.push(Repair::Relinked {
            subscription_id: subscription_id.to_string(),
        });
        let s = api
            .read(Obj::Subscriptions, subscription_id, SUBSCRIPTION_PROPS, &[])
            .await?;
        let status = s.prop("hs_status").unwrap_or_default().to_string();
        let observed = ObservedSubscription {
            class: self.portal().statuses.classify(&status),
            status,
            invoicing: s.prop("hs_invoice_creation") == Some("on"),
            created_at: s.created(),
            line_item_id,
            id: s.id,
        };
        o.unverified_create = None;
        o.pending_line_item = None;
        let list = o.subscriptions.get_or_insert_with(Vec::new);
        list.retain(|x| x.id != observed.id);
        list.push(observed);
        Ok(())
    }
}

//! The idempotent "ensure billing record" algorithm of contract §2.6, as a pure decision:
//! given what has been read so far, what must happen next. The executor in `ensure.rs` does the
//! HTTP and feeds the outcome back into the [`BillingObservation`].
//!
//! Invariants (contract §2.6 "Rules"):
//! - existence is decided by association reads from the deal, never by search;
//! - a create is never repeated blindly: after an ambiguous failure the algorithm goes back to
//!   the lookup (`subscriptions = None`), and a line item it created is reused only once it is
//!   known to have no parent (line items have a single parent, contract §1.3);
//! - at most [`MAX_AMBIGUOUS_CREATES`] ambiguous creates per attempt, then it gives up and lets the
//!   next reconcile start over from the lookup.

use super::model::{BillingRecord, BillingStatus, Repair};
use super::status::StatusClass;

/// Ambiguous creates tolerated within one `ensure_billing_record` call.
pub const MAX_AMBIGUOUS_CREATES: u32 = 3;
/// Relinks tolerated within one call (a portal whose association writes do not stick).
pub const MAX_RELINKS: u32 = 2;

/// Whether commerce subscriptions bill, or the explicit CRM-only fallback (contract §1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingMode {
    Payments,
    /// Deal plus a deal line item; HubSpot records but does not bill. Never chosen silently.
    CrmOnly,
}

/// One commerce subscription associated with the deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSubscription {
    pub id: String,
    /// Raw `hs_status`.
    pub status: String,
    pub class: StatusClass,
    /// `hs_invoice_creation = on` (contract §1.2: new subscriptions are non-billable).
    pub invoicing: bool,
    /// `createdAt` (ISO-8601, one format, so it orders as text).
    pub created_at: String,
    /// Its line item, when read.
    pub line_item_id: Option<String>,
}

/// A line item seen on the deal (CRM-only mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLineItem {
    pub id: String,
    pub created_at: String,
}

/// What is known about the parent of a line item this attempt created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineItemParent {
    /// After an ambiguous subscription create: must be read before anything else.
    Unknown,
    /// No parent: free to become the new subscription's line item.
    None,
    /// Owned by this subscription, which the deal does not list (lost inline associations).
    Subscription(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLineItem {
    pub id: String,
    pub parent: LineItemParent,
}

/// Everything read or done so far in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingObservation {
    pub mode: BillingMode,
    pub company_id: Option<String>,
    pub deal_id: Option<String>,
    pub deal_linked_to_company: bool,
    /// Payments mode, contract §2.6 step 3: the deal's subscriptions. `None` = (re-)read needed.
    pub subscriptions: Option<Vec<ObservedSubscription>>,
    /// The kept subscription's line item has been looked up (it may have none).
    pub line_item_read: bool,
    /// CRM-only mode: the deal's line items. `None` = (re-)read needed.
    pub deal_line_items: Option<Vec<ObservedLineItem>>,
    /// A line item this attempt created for a subscription that does not exist yet.
    pub pending_line_item: Option<PendingLineItem>,
    /// An object this attempt created with inline associations that the deal has not been seen
    /// to list yet (a subscription, or in CRM-only mode a line item).
    pub unverified_create: Option<String>,
    pub ambiguous_creates: u32,
    pub relinks: u32,
    pub repairs: Vec<Repair>,
}

impl BillingObservation {
    pub fn new(mode: BillingMode) -> Self {
        BillingObservation {
            mode,
            company_id: None,
            deal_id: None,
            deal_linked_to_company: false,
            subscriptions: None,
            line_item_read: false,
            deal_line_items: None,
            pending_line_item: None,
            unverified_create: None,
            ambiguous_creates: 0,
            relinks: 0,
            repairs: Vec::new(),
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingStep {
    /// contract §2.6 step 1.
    UpsertCompany,
    /// contract §2.6 step 2.
    UpsertDeal,
    /// contract §2.6 step 2: the upsert input cannot carry associations.
    LinkDealToCompany { deal_id: String, company_id: String },
    /// contract §2.6 step 3.
    ReadDealSubscriptions { deal_id: String },
    /// contract §2.6 step 3: more than one live subscription: keep the oldest, retire the rest.
    RetireDuplicates {
        keep: String,
        retire: Vec<ObservedSubscription>,
    },
    /// The kept subscription's line item, for the record.
    ReadSubscriptionLineItem { subscription_id: String },
    /// After an ambiguous subscription create: does our line item now have a parent?
    ReadLineItemParent { line_item_id: String },
    /// Write the subscription's associations again (deal 299, company 297, line item 301).
    Relink {
        subscription_id: String,
        line_item_id: Option<String>,
    },
    /// contract §2.6 step 4, first half.
    CreateLineItem,
    /// contract §2.6 step 4: one request with inline associations.
    CreateSubscription {
        line_item_id: String,
        generation: usize,
    },
    /// contract §2.6 step 5.
    EnableInvoicing { subscription_id: String },
    /// CRM-only: the deal's line items.
    ReadDealLineItems { deal_id: String },
    /// CRM-only: a line item with an inline association to the deal.
    CreateDealLineItem,
    /// CRM-only: more than one line item on the deal: keep the oldest.
    RemoveDuplicateLineItems { keep: String, remove: Vec<String> },
    /// CRM-only: associate a created line item with the deal again.
    RelinkLineItem { line_item_id: String },
    /// The record is complete.
    Done(BillingRecord),
    /// Too many ambiguous outcomes in one attempt; the caller retries later from the lookup.
    GiveUp,
}

/// Oldest first: by `createdAt`, then by numeric id.
fn age_key(created_at: &str, id: &str) -> (String, u128) {
    (created_at.to_string(), id.parse().unwrap_or(u128::MAX))
}

/// The next step of contract §2.6 for what has been observed.
pub fn next_step(o: &BillingObservation) -> BillingStep {
    let Some(company_id) = &o.company_id else {
        return BillingStep::UpsertCompany;
    };
    let Some(deal_id) = &o.deal_id else {
        return BillingStep::UpsertDeal;
    };
    if !o.deal_linked_to_company {
        return BillingStep::LinkDealToCompany {
            deal_id: deal_id.clone(),
            company_id: company_id.clone(),
        };
    }
    match o.mode {
        BillingMode::Payments => payments_step(o, company_id, deal_id),
        BillingMode::CrmOnly => crm_only_step(o, company_id, deal_id),
    }
}

fn payments_step(o: &BillingObservation, company_id: &str, deal_id: &str) -> BillingStep {
    let Some(subs) = &o.subscriptions else {
        return BillingStep::ReadDealSubscriptions {
            deal_id: deal_id.to_string(),
        };
    };
    if let Some(created) = &o.unverified_create
        && !subs.iter().any(|s| &s.id == created)
    {
        // The create answered 2xx but the deal does not list it: its inline associations were
        // lost (contract §2.6 "object created but association failed").
        if o.relinks >= MAX_RELINKS {
            return BillingStep::GiveUp;
        }
        return BillingStep::Relink {
            subscription_id: created.clone(),
            line_item_id: o.pending_line_item.as_ref().map(|p| p.id.clone()),
        };
    }
    let mut live: Vec<&ObservedSubscription> = subs.iter().filter(|s| s.class.is_live()).collect();
    live.sort_by_key(|s| age_key(&s.created_at, &s.id));
    match live.as_slice() {
        [] => create_path(o, subs.len()),
        [kept] => finish(o, company_id, deal_id, kept),
        [kept, rest @ ..] => BillingStep::RetireDuplicates {
            keep: kept.id.clone(),
            retire: rest.iter().map(|s| (*s).clone()).collect(),
        },
    }
}

fn create_path(o: &BillingObservation, existing: usize) -> BillingStep {
    match &o.pending_line_item {
        Some(PendingLineItem {
            id,
            parent: LineItemParent::Unknown,
        }) => BillingStep::ReadLineItemParent {
            line_item_id: id.clone(),
        },
        Some(PendingLineItem {
            id,
            parent: LineItemParent::Subscription(sub),
        }) => {
            if o.relinks >= MAX_RELINKS {
                return BillingStep::GiveUp;
            }
            BillingStep::Relink {
                subscription_id: sub.clone(),
                line_item_id: Some(id.clone()),
            }
        }
        Some(PendingLineItem {
            id,
            parent: LineItemParent::None,
        }) => {
            if o.ambiguous_creates >= MAX_AMBIGUOUS_CREATES {
                return BillingStep::GiveUp;
            }
            BillingStep::CreateSubscription {
                line_item_id: id.clone(),
                generation: existing + 1,
            }
        }
        None => {
            if o.ambiguous_creates >= MAX_AMBIGUOUS_CREATES {
                return BillingStep::GiveUp;
            }
            BillingStep::CreateLineItem
        }
    }
}

fn finish(
    o: &BillingObservation,
    company_id: &str,
    deal_id: &str,
    kept: &ObservedSubscription,
) -> BillingStep {
    if kept.line_item_id.is_none() && !o.line_item_read {
        return BillingStep::ReadSubscriptionLineItem {
            subscription_id: kept.id.clone(),
        };
    }
    // contract §2.6 step 5 / §1.2: a new subscription is non-billable until this PATCH. An
    // unknown status is left alone (conservative, contract §1.2).
    if !kept.invoicing && kept.class != StatusClass::Unknown {
        return BillingStep::EnableInvoicing {
            subscription_id: kept.id.clone(),
        };
    }
    BillingStep::Done(BillingRecord {
        company_id: company_id.to_string(),
        deal_id: deal_id.to_string(),
        line_item_id: kept.line_item_id.clone(),
        subscription_id: Some(kept.id.clone()),
        status: BillingStatus::Subscription {
            value: kept.status.clone(),
            class: kept.class,
            invoicing: kept.invoicing,
        },
        repairs: o.repairs.clone(),
    })
}

fn crm_only_step(o: &BillingObservation, company_id: &str, deal_id: &str) -> BillingStep {
    let Some(items) = &o.deal_line_items else {
        return BillingStep::ReadDealLineItems {
            deal_id: deal_id.to_string(),
        };
    };
    if let Some(created) = &o.unverified_create
        && !items.iter().any(|i| &i.id == created)
    {
        if o.relinks >= MAX_RELINKS {
            return BillingStep::GiveUp;
        }
        return BillingStep::RelinkLineItem {
            line_item_id: created.clone(),
        };
    }
    let mut sorted: Vec<&ObservedLineItem> = items.iter().collect();
    sorted.sort_by_key(|i| age_key(&i.created_at, &i.id));
    match sorted.as_slice() {
        [] if o.ambiguous_creates >= MAX_AMBIGUOUS_CREATES => BillingStep::GiveUp,
        [] => BillingStep::CreateDealLineItem,
        [kept] => BillingStep::Done(BillingRecord {
            company_id: company_id.to_string(),
            deal_id: deal_id.to_string(),
            line_item_id: Some(kept.id.clone()),
            subscription_id: None,
            status: BillingStatus::CrmOnly,
            repairs: o.repairs.clone(),
        }),
        [kept, rest @ ..] => BillingStep::RemoveDuplicateLineItems {
            keep: kept.id.clone(),
            remove: rest.iter().map(|i| i.id.clone()).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, status: &str, class: StatusClass, invoicing: bool) -> ObservedSubscription {
        ObservedSubscription {
            id: id.into(),
            status: status.into(),
            class,
            invoicing,
            created_at: format!("2026-11-22T00:00:{:0>2}.000Z", id),
            line_item_id: Some(format!("li{id}")),
        }
    }

    fn linked() -> BillingObservation {
        let mut o = BillingObservation::new(BillingMode::Payments);
        o.company_id = Some("1".into());
        o.deal_id = Some("2".into());
        o.deal_linked_to_company = true;
        o
    }

    #[test]
    fn walks_the_anchor_steps_in_order() {
        let mut o = BillingObservation::new(BillingMode::Payments);
        assert_eq!(next_step(&o), BillingStep::UpsertCompany);
        o.company_id = Some("1".into());
        assert_eq!(next_step(&o), BillingStep::UpsertDeal);
        o.deal_id = Some("2".into());
        assert_eq!(
            next_step(&o),
            BillingStep::LinkDealToCompany {
                deal_id: "2".into(),
                company_id: "1".into()
            }
        );
        o.deal_linked_to_company = true;
        assert_eq!(
            next_step(&o),
            BillingStep::ReadDealSubscriptions {
                deal_id: "2".into()
            }
        );
    }

    #[test]
    fn no_subscription_creates_line_item_then_subscription() {
        let mut o = linked();
        o.subscriptions = Some(vec![]);
        assert_eq!(next_step(&o), BillingStep::CreateLineItem);
        o.pending_line_item = Some(PendingLineItem {
            id: "9".into(),
            parent: LineItemParent::None,
        });
        assert_eq!(
            next_step(&o),
            BillingStep::CreateSubscription {
                line_item_id: "9".into(),
                generation: 1
            }
        );
    }

    #[test]
    fn terminal_subscriptions_do_not_count_but_raise_the_generation() {
        let mut o = linked();
        o.subscriptions = Some(vec![sub("3", "canceled", StatusClass::Terminal, true)]);
        o.pending_line_item = Some(PendingLineItem {
            id: "9".into(),
            parent: LineItemParent::None,
        });
        assert_eq!(
            next_step(&o),
            BillingStep::CreateSubscription {
                line_item_id: "9".into(),
                generation: 2
            }
        );
    }

    #[test]
    fn one_live_subscription_is_reused_and_made_billable() {
        let mut o = linked();
        o.subscriptions = Some(vec![sub("3", "active", StatusClass::Ok, false)]);
        assert_eq!(
            next_step(&o),
            BillingStep::EnableInvoicing {
                subscription_id: "3".into()
            }
        );
        o.subscriptions = Some(vec![sub("3", "active", StatusClass::Ok, true)]);
        let BillingStep::Done(r) = next_step(&o) else {
            panic!("expected Done")
        };
        assert_eq!(r.subscription_id.as_deref(), Some("3"));
        assert_eq!(r.line_item_id.as_deref(), Some("li3"));
    }

    #[test]
    fn unknown_status_is_live_and_left_alone() {
        let mut o = linked();
        o.subscriptions = Some(vec![sub("3", "on_hold", StatusClass::Unknown, false)]);
        assert!(matches!(next_step(&o), BillingStep::Done(_)));
    }

    #[test]
    fn kept_line_item_is_read_once() {
        let mut o = linked();
        let mut s = sub("3", "active", StatusClass::Ok, true);
        s.line_item_id = None;
        o.subscriptions = Some(vec![s]);
        assert_eq!(
            next_step(&o),
            BillingStep::ReadSubscriptionLineItem {
                subscription_id: "3".into()
            }
        );
        o.line_item_read = true;
        assert!(matches!(next_step(&o), BillingStep::Done(_)));
    }

    #[test]
    fn duplicates_keep_the_oldest() {
        let mut o = linked();
        o.subscriptions = Some(vec![
            sub("7", "active", StatusClass::Ok, true),
            sub("4", "active", StatusClass::Ok, false),
            sub("5", "canceled", StatusClass::Terminal, true),
        ]);
        let BillingStep::RetireDuplicates { keep, retire } = next_step(&o) else {
            panic!("expected RetireDuplicates")
        };
        assert_eq!(keep, "4");
        assert_eq!(
            retire.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            vec!["7"]
        );
    }

    #[test]
    fn ambiguous_subscription_create_reads_the_line_item_parent() {
        let mut o = linked();
        o.subscriptions = Some(vec![]);
        o.ambiguous_creates = 1;
        o.pending_line_item = Some(PendingLineItem {
            id: "9".into(),
            parent: LineItemParent::Unknown,
        });
        assert_eq!(
            next_step(&o),
            BillingStep::ReadLineItemParent {
                line_item_id: "9".into()
            }
        );
        // Parent found: the create committed without the deal association → relink, no create.
        o.pending_line_item = Some(PendingLineItem {
            id: "9".into(),
            parent: LineItemParent::Subscription("12".into()),
        });
        assert_eq!(
            next_step(&o),
            BillingStep::Relink {
                subscription_id: "12".into(),
                line_item_id: Some("9".into())
            }
        );
        // No parent: the same line item is reused.
        o.pending_line_item = Some(PendingLineItem {
            id: "9".into(),
            parent: LineItemParent::None,
        });
        assert!(matches!(
            next_step(&o),
            BillingStep::CreateSubscription { .. }
        ));
    }

    #[test]
    fn a_created_subscription_missing_from_the_deal_is_relinked() {
        let mut o = linked();
        o.subscriptions = Some(vec![]);
        o.unverified_create = Some("12".into());
        assert_eq!(
            next_step(&o),
            BillingStep::Relink {
                subscription_id: "12".into(),
                line_item_id: None
            }
        );
        o.relinks = MAX_RELINKS;
        assert_eq!(next_step(&o), BillingStep::GiveUp);
        // Seen on the deal: verified.
        o.relinks = 0;
        o.subscriptions = Some(vec![sub("12", "active", StatusClass::Ok, false)]);
        assert!(matches!(next_step(&o), BillingStep::EnableInvoicing { .. }));
    }

    #[test]
    fn too_many_ambiguous_creates_give_up() {
        let mut o = linked();
        o.subscriptions = Some(vec![]);
        o.ambiguous_creates = MAX_AMBIGUOUS_CREATES;
        assert_eq!(next_step(&o), BillingStep::GiveUp);
        o.pending_line_item = Some(PendingLineItem {
            id: "9".into(),
            parent: LineItemParent::None,
        });
        assert_eq!(next_step(&o), BillingStep::GiveUp);
    }

    #[test]
    fn crm_only_mode_uses_deal_line_items() {
        let mut o = linked();
        o.mode = BillingMode::CrmOnly;
        assert_eq!(
            next_step(&o),
            BillingStep::ReadDealLineItems {
                deal_id: "2".into()
            }
        );
        o.deal_line_items = Some(vec![]);
        assert_eq!(next_step(&o), BillingStep::CreateDealLineItem);
        o.unverified_create = Some("8".into());
        assert_eq!(
            next_step(&o),
            BillingStep::RelinkLineItem {
                line_item_id: "8".into()
            }
        );
        o.unverified_create = None;
        let li = |id: &str, at: &str| ObservedLineItem {
            id: id.into(),
            created_at: at.into(),
        };
        o.deal_line_items = Some(vec![li("8", "b"), li("6", "a")]);
        assert_eq!(
            next_step(&o),
            BillingStep::RemoveDuplicateLineItems {
                keep: "6".into(),
                remove: vec!["8".into()]
            }
        );
        o.deal_line_items = Some(vec![li("6", "a")]);
        let BillingStep::Done(r) = next_step(&o) else {
            panic!("expected Done")
        };
        assert_eq!(r.status, BillingStatus::CrmOnly);
        assert_eq!(r.subscription_id, None);
    }
}

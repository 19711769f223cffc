//! Object types the simulator serves (contract §1.1), addressed by plural name, singular name or
//! `objectTypeId` (contract §9).

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    Contacts,
    Companies,
    Deals,
    Products,
    LineItems,
    Invoices,
    Subscriptions,
    CommercePayments,
}

impl ObjectType {
    pub const ALL: [ObjectType; 8] = [
        ObjectType::Contacts,
        ObjectType::Companies,
        ObjectType::Deals,
        ObjectType::Products,
        ObjectType::LineItems,
        ObjectType::Invoices,
        ObjectType::Subscriptions,
        ObjectType::CommercePayments,
    ];

    /// contract §1.1 object type ids.
    pub fn type_id(self) -> &'static str {
        match self {
            ObjectType::Contacts => "0-1",
            ObjectType::Companies => "0-2",
            ObjectType::Deals => "0-3",
            ObjectType::Products => "0-7",
            ObjectType::LineItems => "0-8",
            ObjectType::Invoices => "0-53",
            ObjectType::Subscriptions => "0-69",
            ObjectType::CommercePayments => "0-101",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Companies => "companies",
            ObjectType::Deals => "deals",
            ObjectType::Products => "products",
            ObjectType::LineItems => "line_items",
            ObjectType::Invoices => "invoices",
            ObjectType::Subscriptions => "subscriptions",
            ObjectType::CommercePayments => "commerce_payments",
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contact",
            ObjectType::Companies => "company",
            ObjectType::Deals => "deal",
            ObjectType::Products => "product",
            ObjectType::LineItems => "line_item",
            ObjectType::Invoices => "invoice",
            ObjectType::Subscriptions => "subscription",
            ObjectType::CommercePayments => "commerce_payment",
        }
    }

    /// Accepts the plural, the singular or the type id (case-insensitive names).
    pub fn parse(s: &str) -> Option<ObjectType> {
        let lower = s.to_ascii_lowercase();
        ObjectType::ALL.into_iter().find(|t| {
            t.type_id() == s
                || t.plural() == lower
                || t.singular() == lower
                || (lower == "payments" && *t == ObjectType::CommercePayments)
                || (lower == "lineitems" && *t == ObjectType::LineItems)
        })
    }

    pub fn parse_or_400(s: &str) -> Result<ObjectType, ApiError> {
        ObjectType::parse(s)
            .ok_or_else(|| ApiError::validation(format!("Unable to infer object type from: {s}")))
    }

    /// Payments and invoices are read-only for the operator (brief; contract §1.6: "The operator
    /// only reads invoices and payments"); the simulator creates them from its billing clock.
    pub fn api_writable(self) -> bool {
        !matches!(self, ObjectType::Invoices | ObjectType::CommercePayments)
    }
}

/// One CRM record. Property values are always strings (contract §6).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmObject {
    pub id: u64,
    pub object_type: ObjectType,
    pub properties: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived: bool,
    pub archived_at: Option<i64>,
}

#[cfg(test)]
impl CrmObject {
    /// A live record holding `props`, for unit tests.
    pub fn test_record(id: u64, object_type: ObjectType, props: &[(&str, &str)]) -> Self {
        CrmObject {
            id,
            object_type,
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created_at: 0,
            updated_at: 0,
            archived: false,
            archived_at: None,
        }
    }
}

//! Association types and edges (contract §1.7). Every HubSpot-defined type has its own id per
//! direction; writing one direction writes its reverse too.

use crate::model::ObjectType;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct AssocType {
    pub from: ObjectType,
    pub to: ObjectType,
    pub type_id: u32,
    pub reverse_id: u32,
    pub label: Option<&'static str>,
}

/// contract §1.7 table, both directions. Entries marked "assumption" are not in the table.
pub fn hubspot_defined() -> Vec<AssocType> {
    use ObjectType::*;
    let pairs: [(ObjectType, ObjectType, u32, u32, Option<&'static str>); 12] = [
        (Subscriptions, LineItems, 301, 302, None),
        (Subscriptions, Contacts, 295, 296, None),
        (Subscriptions, Companies, 297, 298, None),
        (Subscriptions, Deals, 299, 300, None),
        (Subscriptions, Invoices, 623, 622, None),
        // contract §1.7: payment → subscription is 393; the reverse id is not in the table, 392
        // is an assumption of this simulator.
        (CommercePayments, Subscriptions, 393, 392, None),
        (Deals, Companies, 341, 342, None),
        (Deals, Companies, 5, 6, Some("Primary")),
        (Deals, LineItems, 19, 20, None),
        (Contacts, Companies, 279, 280, None),
        // Long-standing HubSpot ids, not in the contract table.
        (Contacts, Companies, 1, 2, Some("Primary")),
        (Deals, Contacts, 3, 4, None),
    ];
    let mut out = Vec::new();
    for (from, to, id, rev, label) in pairs {
        out.push(AssocType {
            from,
            to,
            type_id: id,
            reverse_id: rev,
            label,
        });
        out.push(AssocType {
            from: to,
            to: from,
            type_id: rev,
            reverse_id: id,
            label,
        });
    }
    out
}

#[derive(Debug, Clone)]
pub struct AssocStore {
    pub types: Vec<AssocType>,
    /// (from type, from id, to type, to id) → type ids.
    pub edges: BTreeMap<(ObjectType, u64, ObjectType, u64), BTreeSet<u32>>,
}

impl Default for AssocStore {
    fn default() -> Self {
        AssocStore {
            types: hubspot_defined(),
            edges: BTreeMap::new(),
        }
    }
}

impl AssocStore {
    pub fn types_for(&self, from: ObjectType, to: ObjectType) -> Vec<&AssocType> {
        self.types
            .iter()
            .filter(|t| t.from == from && t.to == to)
            .collect()
    }

    /// The unlabeled default type for a pair (used by `.../associations/default/...`).
    pub fn default_type(&self, from: ObjectType, to: ObjectType) -> Option<u32> {
        self.types_for(from, to)
            .into_iter()
            .find(|t| t.label.is_none())
            .map(|t| t.type_id)
    }

    pub fn find(&self, from: ObjectType, to: ObjectType, type_id: u32) -> Option<&AssocType> {
        self.types
            .iter()
            .find(|t| t.from == from && t.to == to && t.type_id == type_id)
    }

    pub fn label_of(&self, from: ObjectType, to: ObjectType, type_id: u32) -> Option<&'static str> {
        self.find(from, to, type_id).and_then(|t| t.label)
    }

    /// Adds one type between a pair, and its reverse.
    pub fn add(
        &mut self,
        from: ObjectType,
        from_id: u64,
        to: ObjectType,
        to_id: u64,
        type_id: u32,
    ) {
        let reverse = self.find(from, to, type_id).map(|t| t.reverse_id);
        self.edges
            .entry((from, from_id, to, to_id))
            .or_default()
            .insert(type_id);
        if let Some(rev) = reverse {
            self.edges
                .entry((to, to_id, from, from_id))
                .or_default()
                .insert(rev);
        }
    }

    /// Removes every association between a pair (contract §1.7: DELETE removes all of them).
    pub fn remove_pair(&mut self, from: ObjectType, from_id: u64, to: ObjectType, to_id: u64) {
        self.edges.remove(&(from, from_id, to, to_id));
        self.edges.remove(&(to, to_id, from, from_id));
    }

    /// Removes specific types (and their reverses) between a pair.
    pub fn remove_types(
        &mut self,
        from: ObjectType,
        from_id: u64,
        to: ObjectType,
        to_id: u64,
        type_ids: &[u32],
    ) {
        let reverses: Vec<u32> = type_ids
            .iter()
            .filter_map(|id| self.find(from, to, *id).map(|t| t.reverse_id))
            .collect();
        for (key, ids) in [
            ((from, from_id, to, to_id), type_ids.to_vec()),
            ((to, to_id, from, from_id), reverses),
        ] {
            if let Some(set) = self.edges.get_mut(&key) {
                for id in ids {
                    set.remove(&id);
                }
                if set.is_empty() {
                    self.edges.remove(&key);
                }
            }
        }
    }

    /// contract §1.7: a labeled PUT *replaces* the labels between the pair.
    pub fn replace(
        &mut self,
        from: ObjectType,
        from_id: u64,
        to: ObjectType,
        to_id: u64,
        type_ids: &[u32],
    ) {
        self.remove_pair(from, from_id, to, to_id);
        for id in type_ids {
            self.add(from, from_id, to, to_id, *id);
        }
    }

    /// Associated ids of `to` type with their type ids, ordered by id.
    pub fn list(&self, from: ObjectType, from_id: u64, to: ObjectType) -> Vec<(u64, Vec<u32>)> {
        self.edges
            .range((from, from_id, to, 0)..=(from, from_id, to, u64::MAX))
            .map(|((_, _, _, to_id), ids)| (*to_id, ids.iter().copied().collect()))
            .collect()
    }

    /// All associations of one object, for the admin dump.
    pub fn all_of(&self, t: ObjectType, id: u64) -> Vec<(ObjectType, u64, Vec<u32>)> {
        self.edges
            .iter()
            .filter(|((ft, fid, _, _), _)| *ft == t && *fid == id)
            .map(|((_, _, tt, tid), ids)| (*tt, *tid, ids.iter().copied().collect()))
            .collect()
    }

    /// v4 `associationTypes` entries.
    pub fn types_json(&self, from: ObjectType, to: ObjectType, ids: &[u32]) -> Vec<Value> {
        ids.iter()
            .map(|id| {
                json!({"category": "HUBSPOT_DEFINED", "typeId": id,
                       "label": self.label_of(from, to, *id)})
            })
            .collect()
    }
}

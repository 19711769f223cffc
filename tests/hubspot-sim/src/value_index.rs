//! Look-up of live records by a property's value (an upsert's `idProperty`, a unique value's
//! owner, a contact's email), as HubSpot answers it: from an index, not by reading every record.
//! A scan per write made the simulator the bottleneck of a 10,000-tenant benchmark.
//!
//! The index of a (type, property) is built on its first look-up and kept current by
//! [`ValueIndex::record`], which every write of a record calls (create, update, archive); a
//! portal loaded from a file starts with none. A hit is checked against the record, so a stale
//! entry can never answer wrongly.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{CrmObject, ObjectType};

type Key = (ObjectType, String);

/// Property values → ids of the live records holding them, per indexed (type, property).
#[derive(Clone, Debug, Default)]
pub struct ValueIndex {
    // Built lazily from `&self` look-ups; the state is only ever used under its mutex.
    by_property: RefCell<HashMap<Key, HashMap<String, BTreeSet<u64>>>>,
}

/// How a value is compared: contacts' email ignores ASCII case (contract §1.5).
fn normalized(t: ObjectType, prop: &str, value: &str) -> String {
    if t == ObjectType::Contacts && prop == "email" {
        value.to_ascii_lowercase()
    } else {
        value.to_string()
    }
}

fn holds(o: &CrmObject, prop: &str, key: &str) -> bool {
    !o.archived
        && o.properties
            .get(prop)
            .is_some_and(|v| !v.is_empty() && normalized(o.object_type, prop, v) == key)
}

impl ValueIndex {
    /// The lowest id of a live record of `records` (all of type `t`) whose `prop` is `value`.
    pub fn find(
        &self,
        records: Option<&BTreeMap<u64, CrmObject>>,
        t: ObjectType,
        prop: &str,
        value: &str,
    ) -> Option<u64> {
        let key = normalized(t, prop, value);
        let mut index = self.by_property.borrow_mut();
        let values = index.entry((t, prop.to_string())).or_insert_with(|| {
            let mut values: HashMap<String, BTreeSet<u64>> = HashMap::new();
            for o in records.into_iter().flat_map(|m| m.values()) {
                if let Some(v) = o.properties.get(prop).filter(|v| !v.is_empty())
                    && !o.archived
                {
                    values
                        .entry(normalized(t, prop, v))
                        .or_default()
                        .insert(o.id);
                }
            }
            values
        });
        let ids = values.get(&key)?;
        ids.iter().copied().find(|id| {
            records
                .and_then(|m| m.get(id))
                .is_some_and(|o| holds(o, prop, &key))
        })
    }

    /// Keeps the indexes current after record `id` of type `t` changed from `before` (none: it
    /// is new) to `after` (archived or none: it is gone).
    pub fn record(
        &self,
        t: ObjectType,
        id: u64,
        before: Option<&CrmObject>,
        after: Option<&CrmObject>,
    ) {
        let mut index = self.by_property.borrow_mut();
        for ((kind, prop), values) in index.iter_mut() {
            if *kind != t {
                continue;
            }
            let value_of = |o: Option<&CrmObject>| {
                o.filter(|o| !o.archived)
                    .and_then(|o| o.properties.get(prop))
                    .filter(|v| !v.is_empty())
                    .map(|v| normalized(t, prop, v))
            };
            let (old, new) = (value_of(before), value_of(after));
            if old == new {
                continue;
            }
            if let Some(old) = old
                && let Some(ids) = values.get_mut(&old)
            {
                ids.remove(&id);
                if ids.is_empty() {
                    values.remove(&old);
                }
            }
            if let Some(new) = new {
                values.entry(new).or_default().insert(id);
            }
        }
    }

    /// Forgets every index (they are rebuilt on the next look-up).
    pub fn clear(&self) {
        self.by_property.borrow_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, t: ObjectType, props: &[(&str, &str)], archived: bool) -> CrmObject {
        CrmObject {
            archived,
            ..CrmObject::test_record(id, t, props)
        }
    }

    fn records(list: Vec<CrmObject>) -> BTreeMap<u64, CrmObject> {
        list.into_iter().map(|o| (o.id, o)).collect()
    }

    #[test]
    fn finds_the_lowest_live_id_and_ignores_archived_and_empty_values() {
        let t = ObjectType::Deals;
        let m = records(vec![
            record(1, t, &[("uid", "a")], true),
            record(2, t, &[("uid", "a")], false),
            record(3, t, &[("uid", "a")], false),
            record(4, t, &[("uid", "")], false),
        ]);
        let index = ValueIndex::default();
        assert_eq!(index.find(Some(&m), t, "uid", "a"), Some(2));
        assert_eq!(index.find(Some(&m), t, "uid", ""), None);
        assert_eq!(index.find(Some(&m), t, "uid", "b"), None);
        assert_eq!(index.find(None, t, "other", "a"), None);
    }

    #[test]
    fn follows_creates_updates_and_archives() {
        let t = ObjectType::Companies;
        let mut m = records(vec![record(1, t, &[("tenant", "x")], false)]);
        let index = ValueIndex::default();
        assert_eq!(index.find(Some(&m), t, "tenant", "y"), None);

        let created = record(2, t, &[("tenant", "y")], false);
        index.record(t, 2, None, Some(&created));
        m.insert(2, created.clone());
        assert_eq!(index.find(Some(&m), t, "tenant", "y"), Some(2));

        let updated = record(2, t, &[("tenant", "z")], false);
        index.record(t, 2, Some(&created), Some(&updated));
        m.insert(2, updated.clone());
        assert_eq!(index.find(Some(&m), t, "tenant", "y"), None);
        assert_eq!(index.find(Some(&m), t, "tenant", "z"), Some(2));

        let archived = record(2, t, &[("tenant", "z")], true);
        index.record(t, 2, Some(&updated), Some(&archived));
        m.insert(2, archived);
        assert_eq!(index.find(Some(&m), t, "tenant", "z"), None);
        // Another type's writes leave this index alone.
        index.record(ObjectType::Deals, 1, None, None);
        assert_eq!(index.find(Some(&m), t, "tenant", "x"), Some(1));
    }

    #[test]
    fn contact_email_ignores_case_and_a_stale_entry_never_answers() {
        let t = ObjectType::Contacts;
        let mut m = records(vec![record(5, t, &[("email", "Ann@Example.com")], false)]);
        let index = ValueIndex::default();
        assert_eq!(index.find(Some(&m), t, "email", "ann@example.COM"), Some(5));
        // Changed behind the index's back: the hit is checked against the record.
        m.insert(5, record(5, t, &[("email", "bob@example.com")], false));
        assert_eq!(index.find(Some(&m), t, "email", "ann@example.com"), None);
        index.clear();
        assert_eq!(index.find(Some(&m), t, "email", "bob@example.com"), Some(5));
    }
}

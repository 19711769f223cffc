//! What a catalog change does to the storefront, against a base revision: listings it adds,
//! listings it changes (which fields: price, plans, version, status ...) and listings it retires
//! (deleted, or Archived). Pure: `marketplace catalog preview` reads both revisions and renders
//! the answer as `changes.html`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::listing::{Lifecycle, Listing, ListingSpec, Plan};
use crate::api::wizard_config::WizardConfig;
use crate::front_door::storefront::catalog::newest_release;
use crate::front_door::storefront::price;

/// One changed field, in words a product team reads: `what` names the field
/// (`status`, `price of plan pro`, `plans`, `version`, `description` ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub what: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A listing present in both revisions whose spec differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingChange {
    pub name: String,
    pub display_name: String,
    pub fields: Vec<FieldChange>,
}

/// How a listing leaves the storefront.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retirement {
    /// Its file is gone.
    Deleted,
    /// Set to Archived: no new subscriptions, existing ones keep running.
    Archived,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retired {
    pub name: String,
    pub display_name: String,
    pub how: Retirement,
}

/// A listing new in this revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    pub name: String,
    pub display_name: String,
    pub lifecycle: Lifecycle,
}

/// A wizard added, changed (which fields) or removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WizardChange {
    pub name: String,
    /// Empty when the wizard is new (`added`) or gone (`removed`).
    pub fields: Vec<String>,
    pub added: bool,
    pub removed: bool,
}

/// Everything a change does, each list sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogDiff {
    pub added: Vec<Added>,
    pub changed: Vec<ListingChange>,
    pub retired: Vec<Retired>,
    pub wizards: Vec<WizardChange>,
}

impl CatalogDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.retired.is_empty()
            && self.wizards.is_empty()
    }
}

fn name_of(listing: &Listing) -> String {
    listing.metadata.name.clone().unwrap_or_default()
}

fn by_name(listings: &[Listing]) -> BTreeMap<String, &Listing> {
    listings.iter().map(|l| (name_of(l), l)).collect()
}

fn change(what: impl Into<String>, before: Option<String>, after: Option<String>) -> FieldChange {
    FieldChange {
        what: what.into(),
        before,
        after,
    }
}

fn plan_changes(before: &[Plan], after: &[Plan]) -> Vec<FieldChange> {
    let find = |plans: &[Plan], name: &str| plans.iter().find(|p| p.name.as_str() == name).cloned();
    let names = |plans: &[Plan]| -> Vec<String> {
        plans.iter().map(|p| p.name.as_str().to_owned()).collect()
    };
    let mut out = Vec::new();
    let (was, now) = (names(before), names(after));
    if was != now {
        out.push(change("plans", Some(was.join(", ")), Some(now.join(", "))));
    }
    for plan in after {
        let Some(old) = find(before, plan.name.as_str()) else {
            continue;
        };
        let (old_price, new_price) = (
            price::describe(&old.pricing),
            price::describe(&plan.pricing),
        );
        if old.pricing != plan.pricing {
            out.push(change(
                format!("price of plan {}", plan.name.as_str()),
                Some(old_price),
                Some(new_price),
            ));
        }
        if old.trial_days != plan.trial_days {
            let days = |d: Option<i32>| d.map(|d| format!("{d} days")).or(Some("none".into()));
            out.push(change(
                format!("trial of plan {}", plan.name.as_str()),
                days(old.trial_days),
                days(plan.trial_days),
            ));
        }
        let rest = |p: &Plan| {
            let mut p = p.clone();
            p.pricing = plan.pricing.clone();
            p.trial_days = None;
            p
        };
        if rest(&old) != rest(plan) {
            out.push(change(
                format!("plan {} (name, features or SKU)", plan.name.as_str()),
                None,
                None,
            ));
        }
    }
    out
}

/// A spec's top-level fields as JSON, to find the ones no dedicated rule describes.
fn fields(spec: &impl serde::Serialize) -> BTreeMap<String, Value> {
    match serde_json::to_value(spec) {
        Ok(Value::Object(map)) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

/// Short, for a table cell: strings as they are, the rest as JSON, long text cut.
fn shown(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(if text.chars().count() > 80 {
        format!("{}…", text.chars().take(79).collect::<String>())
    } else {
        text
    })
}

/// The fields of `after` that differ from `before`, described.
pub fn listing_changes(before: &ListingSpec, after: &ListingSpec) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if before.lifecycle != after.lifecycle {
        out.push(change(
            "status",
            Some(format!("{:?}", before.lifecycle)),
            Some(format!("{:?}", after.lifecycle)),
        ));
    }
    let version = |spec: &ListingSpec| {
        let listing = Listing::new("", spec.clone());
        newest_release(&listing).map(|r| r.version.clone())
    };
    let (old_version, new_version) = (version(before), version(after));
    if old_version != new_version {
        out.push(change("version", old_version.clone(), new_version.clone()));
    }
    out.extend(plan_changes(&before.plans, &after.plans));
    // Described above; the rest by field name.
    let described = ["lifecycle", "plans"];
    let (old, new) = (fields(before), fields(after));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if described.contains(&key.as_str()) || old.get(key) == new.get(key) {
            continue;
        }
        if key == "releases" {
            // A new release shows as the version above; notes edits still count.
            if old_version == new_version {
                out.push(change("releases", None, None));
            }
            continue;
        }
        out.push(change(
            key.clone(),
            shown(old.get(key)),
            shown(new.get(key)),
        ));
    }
    out
}

fn wizard_changes(base: &[WizardConfig], head: &[WizardConfig]) -> Vec<WizardChange> {
    let named = |list: &[WizardConfig]| -> BTreeMap<String, BTreeMap<String, Value>> {
        list.iter()
            .map(|w| (w.metadata.name.clone().unwrap_or_default(), fields(&w.spec)))
            .collect()
    };
    let (old, new) = (named(base), named(head));
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let entry = |fields, added, removed| WizardChange {
            name: name.clone(),
            fields,
            added,
            removed,
        };
        match (old.get(name), new.get(name)) {
            (None, Some(_)) => out.push(entry(Vec::new(), true, false)),
            (Some(_), None) => out.push(entry(Vec::new(), false, true)),
            (Some(a), Some(b)) if a != b => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                let changed = keys
                    .into_iter()
                    .filter(|k| a.get(*k) != b.get(*k))
                    .cloned()
                    .collect();
                out.push(entry(changed, false, false));
            }
            _ => {}
        }
    }
    out
}

/// What `head` does to the catalog `base` held.
pub fn diff(
    base: &[Listing],
    head: &[Listing],
    base_wizards: &[WizardConfig],
    head_wizards: &[WizardConfig],
) -> CatalogDiff {
    let (old, new) = (by_name(base), by_name(head));
    let mut out = CatalogDiff {
        wizards: wizard_changes(base_wizards, head_wizards),
        ..CatalogDiff::default()
    };
    for (name, listing) in &new {
        let display_name = listing.spec.display_name.clone();
        match old.get(name) {
            None => out.added.push(Added {
                name: name.clone(),
                display_name,
                lifecycle: listing.spec.lifecycle,
            }),
            Some(before) => {
                let fields = listing_changes(&before.spec, &listing.spec);
                let archived = listing.spec.lifecycle == Lifecycle::Archived
                    && before.spec.lifecycle != Lifecycle::Archived;
                if archived {
                    out.retired.push(Retired {
                        name: name.clone(),
                        display_name: display_name.clone(),
                        how: Retirement::Archived,
                    });
                }
                if !fields.is_empty() {
                    out.changed.push(ListingChange {
                        name: name.clone(),
                        display_name,
                        fields,
                    });
                }
            }
        }
    }
    for (name, listing) in &old {
        if !new.contains_key(name) {
            out.retired.push(Retired {
                name: name.clone(),
                display_name: listing.spec.display_name.clone(),
                how: Retirement::Deleted,
            });
        }
    }
    out.retired.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;

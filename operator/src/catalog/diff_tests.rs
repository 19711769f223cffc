use serde_json::json;

use super::*;
use crate::lifecycle::fixtures::listing;

fn named(name: &str, extra: &str) -> Listing {
    Listing::new(name, listing(extra))
}

fn wizard(title: &str) -> WizardConfig {
    WizardConfig::new(
        "quickbooks",
        serde_json::from_value(json!({
            "title": title,
            "connectionSchema": {"type": "object", "properties": {"realmId": {"type": "string"}}},
            "testConnection": {"method": "GET", "urlTemplate": "https://qb.example.com/{{realmId}}"},
            "billingConfirmation": "Billed monthly.",
        }))
        .expect("wizard"),
    )
}

const RELEASE_1: &str = "releases: [{version: '1.0.0', date: '2026-01-01', summary: First}]";
const RELEASE_2: &str = "releases: [{version: '1.1.0', date: '2026-03-01', summary: Faster}, {version: '1.0.0', date: '2026-01-01', summary: First}]";

#[test]
fn same_catalog_is_no_change() {
    let catalog = [named("routes", ""), named("fuel", "displayName: Fuel")];
    assert!(diff(&catalog, &catalog, &[], &[]).is_empty());
}

#[test]
fn new_listing_is_added_and_missing_one_is_retired_as_deleted() {
    let base = [named("routes", ""), named("fuel", "")];
    let head = [
        named("routes", ""),
        named("quotes", "lifecycle: ComingSoon"),
    ];
    let found = diff(&base, &head, &[], &[]);
    assert_eq!(
        found.added,
        vec![Added {
            name: "quotes".into(),
            display_name: "Route Optimization".into(),
            lifecycle: Lifecycle::ComingSoon,
        }]
    );
    assert_eq!(found.retired.len(), 1);
    assert_eq!(found.retired[0].name, "fuel");
    assert_eq!(found.retired[0].how, Retirement::Deleted);
    assert!(found.changed.is_empty());
}

#[test]
fn archiving_retires_and_shows_the_status_change() {
    let found = diff(
        &[named("routes", "")],
        &[named("routes", "lifecycle: Archived")],
        &[],
        &[],
    );
    assert_eq!(found.retired[0].how, Retirement::Archived);
    assert_eq!(
        found.changed[0].fields,
        vec![FieldChange {
            what: "status".into(),
            before: Some("Published".into()),
            after: Some("Archived".into()),
        }]
    );
}

#[test]
fn price_plans_and_version_are_named() {
    let base = named("routes", RELEASE_1);
    let mut head = named("routes", RELEASE_2);
    head.spec.plans[0].pricing.amount = "15.00".into();
    head.spec.plans.pop();
    let fields = diff(&[base], &[head], &[], &[]).changed.remove(0).fields;
    let whats: Vec<&str> = fields.iter().map(|f| f.what.as_str()).collect();
    assert_eq!(
        whats,
        ["version", "plans", "price of plan standard"],
        "{fields:?}"
    );
    assert_eq!(fields[0].before.as_deref(), Some("1.0.0"));
    assert_eq!(fields[0].after.as_deref(), Some("1.1.0"));
    assert_eq!(fields[1].after.as_deref(), Some("standard"));
    let price = &fields[2];
    assert!(
        price.before.as_deref().is_some_and(|p| p.contains("12.00")),
        "{price:?}"
    );
    assert!(
        price.after.as_deref().is_some_and(|p| p.contains("15.00")),
        "{price:?}"
    );
}

#[test]
fn other_fields_are_named_by_their_catalog_name() {
    let fields = listing_changes(
        &listing(""),
        &listing("tagline: Faster routes\nfeatured: true"),
    );
    let whats: Vec<&str> = fields.iter().map(|f| f.what.as_str()).collect();
    assert_eq!(whats, ["featured", "tagline"]);
    assert_eq!(fields[1].after.as_deref(), Some("Faster routes"));
}

#[test]
fn wizards_added_changed_and_removed() {
    let changed = diff(
        &[],
        &[],
        &[wizard("Connect")],
        &[wizard("Connect QuickBooks")],
    );
    assert_eq!(changed.wizards[0].fields, ["title"]);
    let added = diff(&[], &[], &[], &[wizard("Connect")]);
    assert!(added.wizards[0].added);
    let removed = diff(&[], &[], &[wizard("Connect")], &[]);
    assert!(removed.wizards[0].removed);
}

//! Bundles against the catalog: each member is a Published InApp listing's plan, listed once,
//! all in one currency and interval, and the discount leaves something to pay. The rules are
//! [`crate::lifecycle::bundle::quote`]'s, which the storefront and the billing of members use
//! too, so a bundle that lints is one that can be sold.

use std::collections::{BTreeMap, HashSet};

use super::Parsed;
use super::diagnostic::{Diagnostic, Rule};
use super::file::{At, FileRef};
use crate::api::bundle::BundleSpec;
use crate::api::listing::ListingSpec;
use crate::lifecycle::bundle::quote;

type ByName<'a> = BTreeMap<&'a str, (usize, FileRef<'a>)>;

pub fn check(
    parsed: &[Parsed],
    listings: &ByName<'_>,
    bundles: &ByName<'_>,
    unreadable_listings: &HashSet<String>,
) -> Vec<Diagnostic> {
    // Listings whose spec does not parse have schema errors of their own; their members are
    // not reported again.
    let specs: BTreeMap<&str, Option<ListingSpec>> = listings
        .iter()
        .map(|(name, (_, file))| {
            let spec = file
                .value()
                .get("spec")
                .and_then(|s| serde_json::from_value(s.clone()).ok());
            (*name, spec)
        })
        .collect();
    let mut diagnostics = Vec::new();
    for (i, file) in bundles.values() {
        if !parsed[*i].linted {
            continue;
        }
        let Some(spec) = file
            .value()
            .get("spec")
            .and_then(|s| serde_json::from_value::<BundleSpec>(s.clone()).ok())
        else {
            continue;
        };
        let found = |name: &str| specs.get(name).and_then(Option::as_ref);
        let skipped = |name: &str| {
            unreadable_listings.contains(name) || specs.get(name).is_some_and(Option::is_none)
        };
        if let Err(problems) = quote(&spec, found, skipped) {
            for problem in problems {
                diagnostics.push(file.error(
                    &problem.pointer,
                    At::Auto,
                    Rule::BundleInvalid,
                    problem.message,
                    problem.hint,
                ));
            }
        }
    }
    diagnostics
}

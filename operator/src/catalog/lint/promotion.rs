//! Promotions against the catalog: every target is a listing (and plan) or a bundle that exists, a price
//! override lowers the price, and no two promotions offer the same plan or bundle to the same buyers at
//! the same time (the buyer would get one of them by chance). The window's order is a CEL rule
//! of the CRD, checked by the CEL stage like at `kubectl apply`.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::Parsed;
use super::diagnostic::{Diagnostic, Rule};
use super::file::{At, FileRef, closest};
use super::path::{child, index};
use crate::api::promotion::PromotionSpec;
use crate::front_door::storefront::price::parse_amount;
use crate::lifecycle::promotion::window;

type ByName<'a> = BTreeMap<&'a str, (usize, FileRef<'a>)>;

pub fn check(
    parsed: &[Parsed],
    listings: &ByName<'_>,
    bundles: &ByName<'_>,
    promotions: &ByName<'_>,
    unreadable_listings: &HashSet<String>,
) -> Vec<Diagnostic> {
    let specs: Vec<(&str, bool, FileRef<'_>, PromotionSpec)> = promotions
        .iter()
        .filter_map(|(name, (i, file))| {
            // A spec that does not parse has schema errors of its own.
            let spec = serde_json::from_value(file.value().get("spec")?.clone()).ok()?;
            Some((*name, parsed[*i].linted, *file, spec))
        })
        .collect();
    let mut diagnostics = Vec::new();
    for (_, _, file, spec) in specs.iter().filter(|s| s.1) {
        diagnostics.extend(targets(file, spec, listings, unreadable_listings));
        diagnostics.extend(bundle_targets(file, spec, bundles));
    }
    for (a, first) in specs.iter().enumerate() {
        for second in &specs[a + 1..] {
            if let Some(plan) = overlap(&first.3, &second.3) {
                for (this, other) in [(first, second), (second, first)] {
                    if !this.1 {
                        continue;
                    }
                    let message = format!(
                        "overlaps Promotion {:?}: both offer {plan} to the same segments and regions in the same window",
                        other.0
                    );
                    let hint = "make the windows follow each other, or split the segments or regions between them".to_owned();
                    let pointer = if plan.starts_with("bundle ") {
                        "/spec/bundles"
                    } else {
                        "/spec/targets"
                    };
                    diagnostics.push(this.2.error(
                        pointer,
                        At::Auto,
                        Rule::PromotionOverlap,
                        message,
                        hint,
                    ));
                }
            }
        }
    }
    diagnostics
}

/// Unknown listings and plans, and price overrides that do not lower a plan's price.
fn targets(
    file: &FileRef<'_>,
    spec: &PromotionSpec,
    listings: &ByName<'_>,
    unreadable: &HashSet<String>,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for (t, target) in spec.targets.iter().enumerate() {
        let pointer = index("/spec/targets", t);
        let name = target.listing.as_str();
        let Some((_, listing)) = listings.get(name) else {
            if !unreadable.contains(name) {
                let message = format!("targets listing {name:?}, which is not in the catalog");
                let hint = match closest(name, listings.keys().copied()) {
                    Some(guess) => format!("did you mean {guess:?}?"),
                    None => "name an existing listing (its metadata.name)".to_owned(),
                };
                diagnostics.push(file.error(
                    &child(&pointer, "listing"),
                    At::Auto,
                    Rule::PromotionTargetMissing,
                    message,
                    hint,
                ));
            }
            continue;
        };
        let plans = plans_of(listing.value());
        for (p, plan) in target.plans.iter().enumerate() {
            if !plans.iter().any(|(n, _)| n == plan.as_str()) {
                let message = format!("listing {name:?} has no plan {:?}", plan.as_str());
                let hint = match closest(plan.as_str(), plans.iter().map(|(n, _)| n.as_str())) {
                    Some(guess) => format!("did you mean {guess:?}?"),
                    None => {
                        "name one of the listing's spec.plans, or leave plans empty for all of them"
                            .to_owned()
                    }
                };
                diagnostics.push(file.error(
                    &index(&child(&pointer, "plans"), p),
                    At::Auto,
                    Rule::PromotionTargetMissing,
                    message,
                    hint,
                ));
            }
        }
        let Some(price) = spec.discount.price.as_deref().and_then(parse_amount) else {
            continue;
        };
        let targeted = plans.iter().filter(|(n, _)| {
            target.plans.is_empty() || target.plans.iter().any(|p| p.as_str() == n)
        });
        for (plan, list) in targeted {
            if list.is_some_and(|list| price >= list) {
                let message = format!(
                    "the promoted price is not below the list price of {name}/{plan}, so it would never apply"
                );
                let hint =
                    "set a price below the plan's, or leave that plan out of the target".to_owned();
                diagnostics.push(file.error(
                    "/spec/discount/price",
                    At::Auto,
                    Rule::PromotionNoCut,
                    message,
                    hint,
                ));
            }
        }
    }
    diagnostics
}

/// Bundles that are not in the catalog.
fn bundle_targets(
    file: &FileRef<'_>,
    spec: &PromotionSpec,
    bundles: &ByName<'_>,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for (b, bundle) in spec.bundles.iter().enumerate() {
        let name = bundle.as_str();
        if bundles.contains_key(name) {
            continue;
        }
        let message = format!("targets bundle {name:?}, which is not in the catalog");
        let hint = match closest(name, bundles.keys().copied()) {
            Some(guess) => format!("did you mean {guess:?}?"),
            None => "name an existing bundle (its metadata.name)".to_owned(),
        };
        diagnostics.push(file.error(
            &index("/spec/bundles", b),
            At::Auto,
            Rule::PromotionTargetMissing,
            message,
            hint,
        ));
    }
    diagnostics
}

/// A listing's plans: name and list price.
fn plans_of(listing: &Value) -> Vec<(String, Option<i128>)> {
    listing
        .pointer("/spec/plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|plan| {
            let name = plan.get("name")?.as_str()?.to_owned();
            let amount = plan
                .pointer("/pricing/amount")
                .and_then(Value::as_str)
                .and_then(parse_amount);
            Some((name, amount))
        })
        .collect()
}

/// The plan or bundle two promotions both offer to the same buyers at the same time (with the
/// same code), if any, as `listing/plan` (`listing` when both target all its plans) or
/// `bundle <name>`.
fn overlap(a: &PromotionSpec, b: &PromotionSpec) -> Option<String> {
    let (Some((a_start, a_end)), Some((b_start, b_end))) = (window(a), window(b)) else {
        return None;
    };
    let meet = |x: &[String], y: &[String]| {
        x.is_empty() || y.is_empty() || x.iter().any(|v| y.contains(v))
    };
    let together = a_start < b_end
        && b_start < a_end
        && a.code == b.code
        && meet(&a.segments, &b.segments)
        && meet(&a.regions, &b.regions);
    if !together {
        return None;
    }
    if let Some(bundle) = a.bundles.iter().find(|x| b.bundles.contains(x)) {
        return Some(format!("bundle {}", bundle.as_str()));
    }
    for x in &a.targets {
        for y in b.targets.iter().filter(|y| y.listing == x.listing) {
            let listing = x.listing.as_str();
            match (x.plans.is_empty(), y.plans.is_empty()) {
                (true, true) => return Some(listing.to_owned()),
                (true, false) => return Some(format!("{listing}/{}", y.plans[0].as_str())),
                (false, true) => return Some(format!("{listing}/{}", x.plans[0].as_str())),
                (false, false) => {
                    if let Some(plan) = x.plans.iter().find(|p| y.plans.contains(p)) {
                        return Some(format!("{listing}/{}", plan.as_str()));
                    }
                }
            }
        }
    }
    None
}

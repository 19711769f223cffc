//! Checks of one listing beyond its schema and CEL rules: what the CRD cannot express (an ISO
//! currency list, semver ordering, meaningful alt text) or expresses without saying where
//! (plan-name uniqueness, which CEL reports on the whole list).

use std::collections::HashMap;

use serde_json::Value;

use super::currency;
use super::diagnostic::{Diagnostic, Rule};
use super::file::{At, FileRef, closest};
use super::path::{child, index};

pub fn check(file: &FileRef<'_>) -> Vec<Diagnostic> {
    let mut diagnostics = plans(file);
    diagnostics.extend(metered_tiers(file));
    diagnostics.extend(releases(file));
    diagnostics.extend(screenshots(file));
    diagnostics
}

fn items<'a>(file: &FileRef<'a>, pointer: &str) -> &'a [Value] {
    file.value()
        .pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn plans(file: &FileRef<'_>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, plan) in items(file, "/spec/plans").iter().enumerate() {
        let at = index("/spec/plans", i);
        if let Some(name) = text(plan, "/name") {
            if let Some(&j) = first.get(name) {
                let line = file
                    .position(&child(&index("/spec/plans", j), "name"), At::Auto)
                    .line;
                let message =
                    format!("plan name {name:?} is already used by spec.plans[{j}] (line {line})");
                let hint =
                    "give each plan its own name; subscriptions refer to plans by name".to_owned();
                diagnostics.push(file.error(
                    &child(&at, "name"),
                    At::Auto,
                    Rule::PlanNameUnique,
                    message,
                    hint,
                ));
            } else {
                first.insert(name, i);
            }
        }
        let code = text(plan, "/pricing/currency");
        // Other shapes are the schema's to report (pattern ^[A-Z]{3}$).
        if let Some(code) =
            code.filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
            && !currency::is_billable(code)
        {
            let message = format!("{code:?} is not an ISO 4217 code of a currency one can bill in");
            let hint = match closest(code, currency::codes()) {
                Some(guess) => {
                    format!("did you mean {guess:?}? Use the ISO 4217 code, e.g. USD, EUR or GBP")
                }
                None => "use an ISO 4217 currency code, e.g. USD, EUR or GBP".to_owned(),
            };
            diagnostics.push(file.error(
                &format!("{at}/pricing/currency"),
                At::Auto,
                Rule::Currency,
                message,
                hint,
            ));
        }
    }
    diagnostics
}

/// A metered price's tiers must rise: CEL cannot compare neighbours, so this says which tier.
fn metered_tiers(file: &FileRef<'_>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for (i, plan) in items(file, "/spec/plans").iter().enumerate() {
        let tiers = plan
            .pointer("/metered/tiers")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let name = text(plan, "/name").unwrap_or("?");
        let mut previous: Option<(usize, i64)> = None;
        for (j, tier) in tiers.iter().enumerate() {
            let Some(up_to) = tier.pointer("/upTo").and_then(Value::as_i64) else {
                continue;
            };
            if let Some((k, before)) = previous
                && up_to <= before
            {
                let at = format!("{}/metered/tiers/{j}/upTo", index("/spec/plans", i));
                let message = format!(
                    "plan {name:?}: tier {j} ends at {up_to}, not above tier {k}'s upTo {before}"
                );
                let hint = "list tiers lowest first, each upTo above the one before (the last \
                            tier has no upTo)"
                    .to_owned();
                diagnostics.push(file.error(&at, At::Auto, Rule::MeteredTiers, message, hint));
            }
            previous = Some((j, up_to));
        }
    }
    diagnostics
}

fn releases(file: &FileRef<'_>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut previous: Option<(usize, semver::Version)> = None;
    for (i, release) in items(file, "/spec/releases").iter().enumerate() {
        let at = format!("{}/version", index("/spec/releases", i));
        let Some(version) = text(release, "/version") else {
            continue;
        };
        let parsed = match semver::Version::parse(version) {
            Ok(parsed) => parsed,
            Err(error) => {
                let message = format!("{version:?} is not a semantic version: {error}");
                let hint = "write MAJOR.MINOR.PATCH, e.g. 2.3.0 (no `v` prefix, no leading zeros)"
                    .to_owned();
                diagnostics.push(file.error(&at, At::Auto, Rule::ReleaseVersion, message, hint));
                continue;
            }
        };
        if let Some((j, before)) = &previous {
            let line = file
                .position(
                    &format!("{}/version", index("/spec/releases", *j)),
                    At::Auto,
                )
                .line;
            match parsed.cmp_precedence(before) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    let message = format!(
                        "version {version} is listed twice (also spec.releases[{j}], line {line})"
                    );
                    let hint = "merge the two entries, or fix the version of one".to_owned();
                    diagnostics.push(file.error(
                        &at,
                        At::Auto,
                        Rule::ReleaseVersion,
                        message,
                        hint,
                    ));
                }
                std::cmp::Ordering::Greater => {
                    let message = format!(
                        "version {version} is newer than {before} listed before it; releases are listed newest first"
                    );
                    let hint = format!("move this release above version {before} (line {line})");
                    diagnostics.push(file.error(&at, At::Auto, Rule::ReleaseOrder, message, hint));
                }
            }
        }
        previous = Some((i, parsed));
    }
    diagnostics
}

fn screenshots(file: &FileRef<'_>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for (i, screenshot) in items(file, "/spec/screenshots").iter().enumerate() {
        let Some(alt) = text(screenshot, "/alt") else {
            continue;
        };
        let at = format!("{}/alt", index("/spec/screenshots", i));
        let hint = "describe what the screenshot shows, for people using screen readers \
                    (e.g. \"Field mapping screen pairing QuickBooks fields with ours\")"
            .to_owned();
        let image = text(screenshot, "/url")
            .and_then(|url| url.rsplit('/').next())
            .unwrap_or_default();
        let lower = alt.trim().to_lowercase();
        if lower.is_empty() {
            let message = "alt text is blank".to_owned();
            diagnostics.push(file.error(&at, At::Auto, Rule::ScreenshotAlt, message, hint));
        } else if matches!(
            lower.as_str(),
            "screenshot" | "image" | "picture" | "photo" | "img" | "alt" | "todo" | "tbd"
        ) || lower == image.to_lowercase()
        {
            let message = format!("alt text {alt:?} does not describe the screenshot");
            diagnostics.push(
                file.error(&at, At::Auto, Rule::ScreenshotAlt, message, hint)
                    .warning(),
            );
        }
    }
    diagnostics
}

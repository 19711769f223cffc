//! Checks across files: names are unique per kind, `requires` points at listings that exist and
//! form no cycle, integrations name a WizardConfig that exists. Context files (the rest of the
//! catalog when only some files are linted) count as existing but are never reported on.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::Parsed;
use super::diagnostic::{Diagnostic, Rule};
use super::file::{At, FileRef, closest};
use super::openapi::CatalogKind;
use super::path::index;

pub fn check(parsed: &[Parsed]) -> Vec<Diagnostic> {
    let mut diagnostics = unique_names(parsed);
    let listings = by_name(parsed, CatalogKind::Listing);
    let wizards = by_name(parsed, CatalogKind::WizardConfig);
    let unreadable = Unreadable::of(parsed);
    diagnostics.extend(requires(parsed, &listings, &unreadable));
    diagnostics.extend(cycles(parsed, &listings));
    diagnostics.extend(wizard_refs(parsed, &listings, &wizards, &unreadable));
    let promotions = by_name(parsed, CatalogKind::Promotion);
    let bundles = by_name(parsed, CatalogKind::Bundle);
    diagnostics.extend(super::promotion::check(
        parsed,
        &listings,
        &bundles,
        &promotions,
        &unreadable.listings,
    ));
    diagnostics.extend(super::bundle::check(
        parsed,
        &listings,
        &bundles,
        &unreadable.listings,
    ));
    diagnostics
}

/// Files whose YAML could not be read (reported as such). Their objects are assumed from the
/// catalog layout (`listings/<name>.yaml`), so that one broken file does not also turn every
/// reference to it into an error; and their own references are unknown.
struct Unreadable {
    listings: HashSet<String>,
    wizards: HashSet<String>,
    any: bool,
}

impl Unreadable {
    fn of(parsed: &[Parsed]) -> Self {
        let names = |kind: CatalogKind| {
            parsed
                .iter()
                .filter(|e| e.document.is_none())
                .filter(|e| {
                    let folder = e.path.parent().and_then(|p| p.file_name());
                    folder.is_some_and(|f| f == kind.folder())
                })
                .filter_map(|e| Some(e.path.file_stem()?.to_str()?.to_owned()))
                .collect()
        };
        Unreadable {
            listings: names(CatalogKind::Listing),
            wizards: names(CatalogKind::WizardConfig),
            any: parsed.iter().any(|e| e.document.is_none()),
        }
    }
}

/// The first object of each name, by kind (duplicates are reported by `unique_names`).
pub(super) fn by_name(
    parsed: &[Parsed],
    kind: CatalogKind,
) -> BTreeMap<&str, (usize, FileRef<'_>)> {
    let mut found = BTreeMap::new();
    for (i, entry) in parsed.iter().enumerate() {
        if entry.kind == Some(kind)
            && let (Some(name), Some(file)) = (entry.name(), entry.file())
        {
            found.entry(name).or_insert((i, file));
        }
    }
    found
}

fn unique_names(parsed: &[Parsed]) -> Vec<Diagnostic> {
    let mut groups: HashMap<(CatalogKind, &str), Vec<&Parsed>> = HashMap::new();
    for entry in parsed {
        if let (Some(kind), Some(name)) = (entry.kind, entry.name()) {
            groups.entry((kind, name)).or_default().push(entry);
        }
    }
    let mut diagnostics = Vec::new();
    for ((kind, name), entries) in groups.into_iter().filter(|(_, e)| e.len() > 1) {
        for (i, entry) in entries.iter().enumerate() {
            let (Some(file), true) = (entry.file(), entry.linted) else {
                continue;
            };
            let other = entries[if i == 0 { 1 } else { 0 }];
            let line = other
                .file()
                .map_or(1, |f| f.position("/metadata/name", At::Auto).line);
            let message = format!(
                "{} {name:?} is also defined in {}:{line}",
                kind.name(),
                other.path.display()
            );
            let hint = "rename one of them: in the cluster one would silently overwrite the other"
                .to_owned();
            diagnostics.push(file.error(
                "/metadata/name",
                At::Auto,
                Rule::UniqueName,
                message,
                hint,
            ));
        }
    }
    diagnostics
}

/// `spec.requires.listings` of a listing: (pointer, name) pairs.
fn required(file: &FileRef<'_>) -> Vec<(String, String)> {
    let pointer = "/spec/requires/listings";
    let items = file.value().pointer(pointer).and_then(Value::as_array);
    items
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, item)| Some((index(pointer, i), item.as_str()?.to_owned())))
        .collect()
}

fn lifecycle<'a>(file: &FileRef<'a>) -> Option<&'a str> {
    file.value()
        .pointer("/spec/lifecycle")
        .and_then(Value::as_str)
}

fn requires(
    parsed: &[Parsed],
    listings: &BTreeMap<&str, (usize, FileRef<'_>)>,
    unreadable: &Unreadable,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for entry in parsed
        .iter()
        .filter(|e| e.linted && e.kind == Some(CatalogKind::Listing))
    {
        let Some(file) = entry.file() else { continue };
        for (pointer, name) in required(&file) {
            match listings.get(name.as_str()) {
                None if unreadable.listings.contains(&name) => {}
                None => {
                    let message = format!("requires listing {name:?}, which is not in the catalog");
                    let hint = match closest(&name, listings.keys().copied()) {
                        Some(guess) => format!("did you mean {guess:?}?"),
                        None => "name an existing listing (its metadata.name), or add that listing"
                            .to_owned(),
                    };
                    diagnostics.push(file.error(
                        &pointer,
                        At::Auto,
                        Rule::RequiresMissing,
                        message,
                        hint,
                    ));
                }
                Some((_, target)) if lifecycle(&file) == Some("Published") => {
                    let state = lifecycle(target).unwrap_or("not Published");
                    if state != "Published" {
                        let message = format!(
                            "this Published listing requires {name:?}, which is {state}: no tenant can subscribe to it, so none can buy this one"
                        );
                        let hint = format!("publish {name:?} first, or drop the requirement");
                        diagnostics.push(
                            file.error(
                                &pointer,
                                At::Auto,
                                Rule::RequiresUnavailable,
                                message,
                                hint,
                            )
                            .warning(),
                        );
                    }
                }
                Some(_) => {}
            }
        }
    }
    diagnostics
}

/// Reports every `requires` entry that lies on a cycle, naming the cycle.
fn cycles(parsed: &[Parsed], listings: &BTreeMap<&str, (usize, FileRef<'_>)>) -> Vec<Diagnostic> {
    let edges: BTreeMap<&str, Vec<(String, String)>> = listings
        .iter()
        .map(|(name, (_, file))| (*name, required(file)))
        .collect();
    let mut diagnostics = Vec::new();
    for (name, (_, file)) in listings.iter().filter(|(_, (i, _))| parsed[*i].linted) {
        for (pointer, target) in &edges[name] {
            // The entry is on a cycle when `name` is reachable back from `target`.
            let Some(path) = route(&edges, target, name) else {
                continue;
            };
            let cycle = std::iter::once(*name)
                .chain(path.iter().copied())
                .collect::<Vec<_>>()
                .join(" → ");
            let message = format!("requires cycle: {cycle}");
            let hint = "remove one requirement of the cycle: no tenant could subscribe to any of these first".to_owned();
            diagnostics.push(file.error(pointer, At::Auto, Rule::RequiresCycle, message, hint));
        }
    }
    diagnostics
}

/// Shortest route of `requires` edges from `from` to `to` (both included), if any.
fn route<'a>(
    edges: &'a BTreeMap<&str, Vec<(String, String)>>,
    from: &'a str,
    to: &str,
) -> Option<Vec<&'a str>> {
    let mut previous: HashMap<&str, &str> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::from([from]);
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        if node == to {
            let mut path = vec![node];
            let mut current = node;
            while let Some(&before) = previous.get(current) {
                path.push(before);
                current = before;
            }
            path.reverse();
            return Some(path);
        }
        for (_, next) in edges.get(node).into_iter().flatten() {
            if seen.insert(next.as_str()) {
                previous.insert(next.as_str(), node);
                queue.push_back(next.as_str());
            }
        }
    }
    None
}

fn wizard_refs(
    parsed: &[Parsed],
    listings: &BTreeMap<&str, (usize, FileRef<'_>)>,
    wizards: &BTreeMap<&str, (usize, FileRef<'_>)>,
    unreadable: &Unreadable,
) -> Vec<Diagnostic> {
    let pointer = "/spec/integration/wizardConfigRef";
    let mut diagnostics = Vec::new();
    for entry in parsed
        .iter()
        .filter(|e| e.linted && e.kind == Some(CatalogKind::Listing))
    {
        let Some(file) = entry.file() else { continue };
        let Some(wizard) = file.value().pointer(pointer).and_then(Value::as_str) else {
            continue;
        };
        if !wizards.contains_key(wizard) && !unreadable.wizards.contains(wizard) {
            let message = format!("WizardConfig {wizard:?} is not in the catalog");
            let hint = match closest(wizard, wizards.keys().copied()) {
                Some(guess) => format!("did you mean {guess:?}?"),
                None => format!(
                    "add the connection wizard as wizards/{wizard}.yaml, or name an existing WizardConfig"
                ),
            };
            diagnostics.push(file.error(pointer, At::Auto, Rule::WizardMissing, message, hint));
        }
    }
    if unreadable.any {
        return diagnostics;
    }
    let used: HashSet<&str> = listings
        .values()
        .filter_map(|(_, file)| file.value().pointer(pointer).and_then(Value::as_str))
        .collect();
    for (name, (i, file)) in wizards {
        if parsed[*i].linted && !used.contains(name) {
            let message = format!("no listing uses WizardConfig {name:?}");
            let hint = "name it in an Integration listing's spec.integration.wizardConfigRef, or delete it".to_owned();
            diagnostics.push(
                file.error(
                    "/metadata/name",
                    At::Auto,
                    Rule::WizardUnused,
                    message,
                    hint,
                )
                .warning(),
            );
        }
    }
    diagnostics
}

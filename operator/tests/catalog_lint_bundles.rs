//! `marketplace catalog lint` on Bundles: unknown members, a listing twice, a member listing that
//! is retired, plans of another currency, and a discount that leaves nothing to pay, each named
//! by file and field; a good bundle is clean and typed.

use marketplace_operator::catalog::SourceFile;
use marketplace_operator::catalog::lint::{CatalogObject, LintOptions, LintReport, Rule, lint};

fn listing(name: &str, amount: &str, currency: &str, lifecycle: &str) -> String {
    format!(
        r#"apiVersion: marketplace.dev/v1alpha1
kind: Listing
metadata:
  name: {name}
spec:
  displayName: {name}
  tagline: A listing sold in bundles.
  type: InApp
  category: Operations
  lifecycle: {lifecycle}
  plans:
    - name: pro
      displayName: Pro
      pricing: {{model: Flat, amount: "{amount}", currency: {currency}, interval: Month}}
"#
    )
}

const SUITE: &str = r#"apiVersion: marketplace.dev/v1alpha1
kind: Bundle
metadata:
  name: suite
spec:
  displayName: Suite
  members:
    - {listing: routes, plan: pro}
    - {listing: reports, plan: pro}
  discount: {amount: "8.00", currency: USD}
"#;

fn run(reports: &str, bundle: &str) -> LintReport {
    run_with(reports, bundle, &[])
}

/// The bundle's catalog with `promotions` (name, file text) beside it.
fn run_with(reports: &str, bundle: &str, promotions: &[(&str, String)]) -> LintReport {
    let mut files = vec![
        (
            "listings/routes.yaml".to_owned(),
            listing("routes", "30.00", "USD", "Published"),
        ),
        ("listings/reports.yaml".to_owned(), reports.to_owned()),
        ("bundles/suite.yaml".to_owned(), bundle.to_owned()),
    ];
    for (name, text) in promotions {
        files.push((format!("promotions/{name}.yaml"), text.clone()));
    }
    let files: Vec<SourceFile> = files
        .into_iter()
        .map(|(path, text)| SourceFile {
            path: path.into(),
            contents: text.into_bytes(),
        })
        .collect();
    lint(&files, &LintOptions::default())
}

/// The (rule, field) of every error of the bundle's file.
fn errors(report: &LintReport) -> Vec<(Rule, String)> {
    report
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && d.file.ends_with("bundles/suite.yaml"))
        .map(|d| (d.rule, d.field_path.clone()))
        .collect()
}

fn published_reports() -> String {
    listing("reports", "10.00", "USD", "Published")
}

#[test]
fn a_good_bundle_is_clean_and_typed() {
    let report = run(&published_reports(), SUITE);
    // Only the fixtures' missing editor-schema modelines are reported (warnings).
    assert!(
        report.diagnostics.iter().all(|d| !d.is_error()),
        "{:#?}",
        report.diagnostics
    );
    assert!(
        report
            .objects
            .iter()
            .any(|o| matches!(o, CatalogObject::Bundle { .. }))
    );
}

#[test]
fn members_must_exist_once_and_be_published() {
    let unknown = run(
        &published_reports(),
        &SUITE.replace("plan: pro}\n  discount", "plan: gold}\n  discount"),
    );
    assert_eq!(
        errors(&unknown),
        [(Rule::BundleInvalid, "spec.members[1].plan".into())]
    );
    let twice = run(
        &published_reports(),
        &SUITE.replace("listing: reports", "listing: routes"),
    );
    assert_eq!(
        errors(&twice)[0],
        (Rule::Cel, "spec.members".into()),
        "CEL, as at kubectl apply"
    );
    let retired = run(&listing("reports", "10.00", "USD", "Archived"), SUITE);
    assert_eq!(
        errors(&retired),
        [(Rule::BundleInvalid, "spec.members[1].listing".into())]
    );
    assert!(
        retired
            .diagnostics
            .iter()
            .any(|d| d.message.contains("Archived"))
    );
}

#[test]
fn prices_must_agree_and_the_discount_leave_something_to_pay() {
    let euros = run(&listing("reports", "10.00", "EUR", "Published"), SUITE);
    assert_eq!(
        errors(&euros),
        [(Rule::BundleInvalid, "spec.members[1].plan".into())]
    );
    let too_much = run(&published_reports(), &SUITE.replace("8.00", "40.00"));
    assert_eq!(
        errors(&too_much),
        [(Rule::BundleInvalid, "spec.discount.amount".into())]
    );
    let both = run(
        &published_reports(),
        &SUITE.replace(
            "{amount: \"8.00\", currency: USD}",
            "{percentage: 5, amount: \"8.00\", currency: USD}",
        ),
    );
    assert_eq!(errors(&both)[0].0, Rule::Cel);
}

/// A promotion on bundle `target` for segment `smb` in March 2027.
fn bundle_promotion(name: &str, target: &str, starts: &str) -> String {
    format!(
        r#"apiVersion: marketplace.dev/v1alpha1
kind: Promotion
metadata:
  name: {name}
spec:
  displayName: Suite sale
  bundles: [{target}]
  discount: {{percentage: 20}}
  startsAt: "{starts}"
  endsAt: "2027-04-01T00:00:00Z"
  segments: [smb]
  periods: 3
"#
    )
}

/// The (rule, field) of every error of the promotions' files.
fn promotion_errors(promotions: &[(&str, String)]) -> Vec<(Rule, String, String)> {
    run_with(&published_reports(), SUITE, promotions)
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.rule, d.field_path.clone(), d.message.clone()))
        .collect()
}

#[test]
fn promotions_on_bundles_name_known_bundles_and_do_not_overlap() {
    let spring = bundle_promotion("spring", "suite", "2027-03-01T00:00:00Z");
    assert_eq!(promotion_errors(&[("spring", spring.clone())]), vec![]);
    let unknown = promotion_errors(&[(
        "typo",
        bundle_promotion("typo", "suit", "2027-03-01T00:00:00Z"),
    )]);
    assert_eq!(unknown.len(), 1, "{unknown:#?}");
    assert_eq!(
        (unknown[0].0, unknown[0].1.as_str()),
        (Rule::PromotionTargetMissing, "spec.bundles[0]")
    );
    assert!(unknown[0].2.contains("bundle \"suit\""), "{unknown:#?}");
    assert!(
        unknown.iter().all(|e| e.0 != Rule::Cel),
        "bundles alone satisfy the target rule"
    );
    let summer = bundle_promotion("summer", "suite", "2027-03-15T00:00:00Z");
    let overlap = promotion_errors(&[("spring", spring.clone()), ("summer", summer.clone())]);
    assert_eq!(overlap.len(), 2, "{overlap:#?}");
    assert!(
        overlap
            .iter()
            .all(|(rule, field, message)| *rule == Rule::PromotionOverlap
                && field == "spec.bundles"
                && message.contains("bundle suite"))
    );
    let other_segment = summer.replace("[smb]", "[enterprise]");
    assert_eq!(
        promotion_errors(&[("spring", spring), ("summer", other_segment)]),
        vec![]
    );
    // Neither listings nor bundles: refused like at `kubectl apply`.
    let nothing = bundle_promotion("empty", "suite", "2027-03-01T00:00:00Z")
        .replace("  bundles: [suite]\n", "");
    let refused = promotion_errors(&[("empty", nothing)]);
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0].0, Rule::Cel);
}

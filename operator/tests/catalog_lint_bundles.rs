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
    let files = [
        (
            "listings/routes.yaml",
            listing("routes", "30.00", "USD", "Published"),
        ),
        ("listings/reports.yaml", reports.to_owned()),
        ("bundles/suite.yaml", bundle.to_owned()),
    ];
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

//! `marketplace catalog lint` on Promotions: a window that ends before it starts, an unknown
//! listing or plan, a price override that lowers nothing, two promotions offering the same plan
//! to the same buyers at once, and a discount that is not exactly one kind.

use marketplace_operator::catalog::SourceFile;
use marketplace_operator::catalog::lint::{CatalogObject, LintOptions, LintReport, Rule, lint};

const LISTING: &str = r#"# yaml-language-server: $schema=../schemas/listing.schema.json
apiVersion: marketplace.dev/v1alpha1
kind: Listing
metadata:
  name: route
spec:
  displayName: Route Optimization
  tagline: Plan the fastest routes for every driver.
  type: InApp
  category: Operations
  lifecycle: Published
  plans:
    - name: basic
      displayName: Basic
      pricing: {model: Flat, amount: "29.00", currency: USD, interval: Month}
    - name: fleet
      displayName: Fleet
      pricing: {model: PerUnit, amount: "4.50", currency: USD, interval: Month, unit: vehicle}
"#;

const SPRING: &str = r#"# yaml-language-server: $schema=../schemas/promotion.schema.json
apiVersion: marketplace.dev/v1alpha1
kind: Promotion
metadata:
  name: spring
spec:
  displayName: Spring sale
  targets:
    - listing: route
      plans: [basic]
  discount: {percentage: 20}
  startsAt: "2027-03-01T00:00:00Z"
  endsAt: "2027-04-01T00:00:00Z"
  segments: [smb]
  periods: 3
"#;

fn run(promotions: &[(&str, &str)]) -> LintReport {
    let mut files = vec![SourceFile {
        path: "listings/route.yaml".into(),
        contents: LISTING.as_bytes().to_vec(),
    }];
    for (name, text) in promotions {
        files.push(SourceFile {
            path: format!("promotions/{name}.yaml").into(),
            contents: text.as_bytes().to_vec(),
        });
    }
    lint(&files, &LintOptions::default())
}

fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture has no {from:?}");
    text.replacen(from, to, 1)
}

/// The (rule, file, field) of every error, in report order.
fn errors(report: &LintReport) -> Vec<(Rule, String, String)> {
    report
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.rule, d.file.display().to_string(), d.field_path.clone()))
        .collect()
}

#[test]
fn a_good_promotion_is_clean_and_typed() {
    let report = run(&[("spring", SPRING)]);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    assert!(
        report
            .objects
            .iter()
            .any(|o| matches!(o, CatalogObject::Promotion { .. }))
    );
}

#[test]
fn a_window_must_end_after_it_starts() {
    let text = edit(SPRING, "2027-04-01T00:00:00Z", "2027-02-01T00:00:00Z");
    let report = run(&[("spring", &text)]);
    assert_eq!(
        errors(&report),
        [(
            Rule::Cel,
            "promotions/spring.yaml".into(),
            "spec.endsAt".into()
        )]
    );
    assert!(
        report.diagnostics[0]
            .message
            .contains("after spec.startsAt")
    );
}

#[test]
fn targets_must_exist() {
    let text = edit(SPRING, "listing: route", "listing: rout");
    let report = run(&[("spring", &text)]);
    let file = "promotions/spring.yaml".to_string();
    assert_eq!(
        errors(&report),
        [(
            Rule::PromotionTargetMissing,
            file.clone(),
            "spec.targets[0].listing".into()
        )]
    );
    assert!(report.diagnostics[0].hint.contains("\"route\""));
    let text = edit(SPRING, "plans: [basic]", "plans: [basik]");
    assert_eq!(
        errors(&run(&[("spring", &text)])),
        [(
            Rule::PromotionTargetMissing,
            file,
            "spec.targets[0].plans[0]".into()
        )]
    );
}

#[test]
fn a_price_override_must_lower_the_price() {
    let text = edit(SPRING, "{percentage: 20}", "{price: \"29.00\"}");
    assert_eq!(
        errors(&run(&[("spring", &text)])),
        [(
            Rule::PromotionNoCut,
            "promotions/spring.yaml".into(),
            "spec.discount.price".into()
        )]
    );
    let text = edit(SPRING, "{percentage: 20}", "{price: \"19.00\"}");
    assert!(errors(&run(&[("spring", &text)])).is_empty());
}

#[test]
fn a_discount_is_exactly_one_kind() {
    let text = edit(
        SPRING,
        "{percentage: 20}",
        "{percentage: 20, amount: \"5\"}",
    );
    let report = run(&[("spring", &text)]);
    assert_eq!(errors(&report).len(), 1, "{:#?}", report.diagnostics);
    assert_eq!(report.diagnostics[0].rule, Rule::Cel);
    assert!(report.diagnostics[0].message.contains("exactly one"));
}

#[test]
fn overlapping_promotions_on_the_same_plan_and_buyers_are_errors() {
    let summer = edit(SPRING, "name: spring", "name: summer");
    // The same plan (summer targets all of route's plans), segment and window overlap.
    let summer_all = edit(&summer, "      plans: [basic]\n", "");
    let summer_all = edit(&summer_all, "2027-03-01", "2027-03-15");
    let report = run(&[("spring", SPRING), ("summer", &summer_all)]);
    let found = errors(&report);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found
            .iter()
            .all(|(rule, _, field)| *rule == Rule::PromotionOverlap && field == "spec.targets")
    );
    assert!(report.diagnostics[0].message.contains("route/basic"));

    // Back to back, other segments, another plan or another code: no overlap.
    let after = edit(&summer_all, "2027-03-15", "2027-04-01");
    let after = edit(
        &after,
        "2027-04-01T00:00:00Z\"\n  segments",
        "2027-05-01T00:00:00Z\"\n  segments",
    );
    let enterprise = edit(&summer_all, "[smb]", "[enterprise]");
    let fleet = edit(&summer, "plans: [basic]", "plans: [fleet]");
    let coded = format!("{summer_all}  code: SUMMER27\n");
    for other in [after, enterprise, fleet, coded] {
        let report = run(&[("spring", SPRING), ("summer", &other)]);
        assert!(
            errors(&report).is_empty(),
            "{other}\n{:#?}",
            report.diagnostics
        );
    }
}

//! `marketplace catalog lint` end to end: the real catalog is clean; each rule fires, exactly
//! once, at the right file, line, column and field path, on a small catalog that breaks only
//! that rule; malformed input gives errors and never a panic; `--base` compares with a git
//! revision; the output formats and exit codes are what CI relies on.

use std::path::{Path, PathBuf};
use std::process::Command;

use marketplace_operator::catalog::SourceFile;
use marketplace_operator::catalog::lint::{
    Diagnostic, LintOptions, LintReport, Rule, Severity, lint,
};

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
  features: [route_optimization]
  screenshots:
    - url: https://cdn.example.com/route/map.png
      alt: Map with three optimized routes
  plans:
    - name: basic
      displayName: Basic
      pricing: {model: Flat, amount: "29.00", currency: USD, interval: Month}
      trialDays: 14
    - name: fleet
      displayName: Fleet
      pricing:
        model: PerUnit
        amount: "4.50"
        currency: USD
        interval: Month
        unit: vehicle
  releases:
    - {version: 2.0.0, date: "2026-05-01", summary: Fleet plan}
    - {version: 1.0.0, date: "2025-01-01", summary: First release}
"#;

const PARTNER: &str = r#"# yaml-language-server: $schema=../schemas/listing.schema.json
apiVersion: marketplace.dev/v1alpha1
kind: Listing
metadata:
  name: gigsafe
spec:
  displayName: GigSafe
  tagline: Insurance for gig drivers.
  type: Partner
  category: Insurance
  lifecycle: Published
  partner:
    name: GigSafe
    url: https://gigsafe.example.com
"#;

const INTEGRATION: &str = r#"# yaml-language-server: $schema=../schemas/listing.schema.json
apiVersion: marketplace.dev/v1alpha1
kind: Listing
metadata:
  name: books
spec:
  displayName: Books
  tagline: Sync invoices to your books.
  type: Integration
  category: Finance
  lifecycle: Published
  plans:
    - name: standard
      displayName: Standard
      pricing: {model: Flat, amount: "0", currency: EUR, interval: Year}
  integration:
    wizardConfigRef: books
"#;

const WIZARD: &str = r#"# yaml-language-server: $schema=../schemas/wizardconfig.schema.json
apiVersion: marketplace.dev/v1alpha1
kind: WizardConfig
metadata:
  name: books
spec:
  title: Connect Books
  connectionSchema:
    type: object
    required: [apiKey]
    properties:
      apiKey: {type: string, minLength: 20}
  secretFields: [apiKey]
  testConnection:
    method: GET
    urlTemplate: "https://books.example.com/ping"
  billingConfirmation: Free.
"#;

fn source(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.into(),
        contents: text.as_bytes().to_vec(),
    }
}

/// A clean little catalog; each test replaces one file with a broken version.
fn catalog() -> Vec<SourceFile> {
    vec![
        source("listings/route.yaml", LISTING),
        source("listings/gigsafe.yaml", PARTNER),
        source("listings/books.yaml", INTEGRATION),
        source("wizards/books.yaml", WIZARD),
    ]
}

fn with(path: &str, text: &str) -> Vec<SourceFile> {
    let mut files = catalog();
    match files.iter_mut().find(|f| f.path == Path::new(path)) {
        Some(file) => file.contents = text.as_bytes().to_vec(),
        None => files.push(source(path, text)),
    }
    files
}

fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture has no {from:?}");
    text.replacen(from, to, 1)
}

/// The line and 1-based column where `needle` starts in `text` (first occurrence).
fn position(text: &str, needle: &str) -> (usize, usize) {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in text"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// The report's only diagnostic (of any severity), after checking it is an error of `rule`
/// at `file`, at the position of `needle` in `text`, about `field`.
fn only_error(
    report: &LintReport,
    rule: Rule,
    file: &str,
    text: &str,
    needle: &str,
    field: &str,
) -> Diagnostic {
    assert_eq!(report.diagnostics.len(), 1, "{:#?}", report.diagnostics);
    let d = report.diagnostics[0].clone();
    assert_eq!((d.rule, d.severity), (rule, Severity::Error), "{d:#?}");
    assert_eq!(d.file, PathBuf::from(file));
    assert_eq!((d.line, d.column), position(text, needle), "{d:#?}");
    assert_eq!(d.field_path, field);
    assert!(!d.message.is_empty() && !d.hint.is_empty(), "{d:#?}");
    d
}

fn run(files: &[SourceFile]) -> LintReport {
    lint(files, &LintOptions::default())
}

fn read_tree(root: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if marketplace_operator::catalog::is_catalog_file(&path) {
                let contents = std::fs::read(&path).expect("readable file");
                files.push(SourceFile { path, contents });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_real_catalog_is_clean() {
    let files = read_tree(&repo_root().join("catalog"));
    assert_eq!(
        files.len(),
        24,
        "18 listings, 4 wizards, 1 promotion and 1 bundle"
    );
    let report = run(&files);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    assert_eq!(report.objects.len(), 24);
}

#[test]
fn the_fixture_catalog_is_clean() {
    let report = run(&catalog());
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    assert_eq!(report.objects.len(), 4);
}

#[test]
fn committed_editor_schemas_match_the_generated_ones() {
    let dir = repo_root().join("catalog/schemas");
    for (file, text) in
        marketplace_operator::cli::catalog::rendered_schemas().expect("schemas render")
    {
        let on_disk = std::fs::read_to_string(dir.join(&file)).unwrap_or_default();
        assert!(
            on_disk == text,
            "catalog/schemas/{file} is out of date; run `cargo run -p marketplace-operator --bin marketplace -- catalog schema`"
        );
    }
}

// ---- schema -------------------------------------------------------------------------------

#[test]
fn unknown_fields_are_errors_with_a_suggestion() {
    let text = edit(
        LISTING,
        "  type: InApp\n",
        "  type: InApp\n  tagLine: typo\n",
    );
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::UnknownField,
        "listings/route.yaml",
        &text,
        "tagLine",
        "spec.tagLine",
    );
    assert!(d.hint.contains("\"tagline\""), "{d:#?}");
}

#[test]
fn prices_must_be_non_negative_decimal_strings() {
    let text = edit(LISTING, "amount: \"29.00\"", "amount: \"-29.00\"");
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "\"-29.00\"",
        "spec.plans[0].pricing.amount",
    );
    assert!(
        d.hint.contains("non-negative decimal"),
        "the hint quotes the field's doc: {d:#?}"
    );

    let text = edit(LISTING, "amount: \"29.00\"", "amount: 29.00");
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "29.00,",
        "spec.plans[0].pricing.amount",
    );
    assert!(d.hint.contains("quote"), "{d:#?}");
}

#[test]
fn currencies_are_iso_4217() {
    let text = edit(
        LISTING,
        "currency: USD, interval",
        "currency: usd, interval",
    );
    let report = run(&with("listings/route.yaml", &text));
    only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "usd,",
        "spec.plans[0].pricing.currency",
    );

    let text = edit(
        LISTING,
        "currency: USD, interval",
        "currency: USX, interval",
    );
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::Currency,
        "listings/route.yaml",
        &text,
        "USX",
        "spec.plans[0].pricing.currency",
    );
    assert!(d.hint.contains("\"USD\""), "{d:#?}");
}

#[test]
fn trial_days_are_bounded() {
    let text = edit(LISTING, "trialDays: 14", "trialDays: 120");
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "120",
        "spec.plans[0].trialDays",
    );
    assert!(d.message.contains("maximum 90"), "{d:#?}");
}

#[test]
fn feature_codes_have_one_format() {
    let text = edit(
        LISTING,
        "features: [route_optimization]",
        "features: [Route-Optimization]",
    );
    let report = run(&with("listings/route.yaml", &text));
    only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "Route-Optimization",
        "spec.features[0]",
    );
}

#[test]
fn enums_suggest_the_closest_value() {
    let text = edit(LISTING, "interval: Month}", "interval: Monthly}");
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "Monthly",
        "spec.plans[0].pricing.interval",
    );
    assert!(d.hint.contains("\"Month\""), "{d:#?}");
}

#[test]
fn missing_required_fields_are_named_at_their_parent() {
    let text = edit(LISTING, "      displayName: Basic\n", "");
    let report = run(&with("listings/route.yaml", &text));
    only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "name: basic",
        "spec.plans[0].displayName",
    );
}

#[test]
fn every_screenshot_has_alt_text() {
    let text = edit(LISTING, "      alt: Map with three optimized routes\n", "");
    let report = run(&with("listings/route.yaml", &text));
    only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "url: https://cdn",
        "spec.screenshots[0].alt",
    );

    let text = edit(
        LISTING,
        "alt: Map with three optimized routes",
        "alt: \"  \"",
    );
    let report = run(&with("listings/route.yaml", &text));
    only_error(
        &report,
        Rule::ScreenshotAlt,
        "listings/route.yaml",
        &text,
        "\"  \"",
        "spec.screenshots[0].alt",
    );
}

#[test]
fn metadata_names_are_dns_labels() {
    // Reported by the schema, not as a file-name mismatch: renaming the file would not help.
    let text = edit(LISTING, "name: route\n", "name: Route_Opt\n");
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "Route_Opt",
        "metadata.name",
    );
    assert!(d.hint.contains("DNS label"), "{d:#?}");
}

// ---- CEL ----------------------------------------------------------------------------------

#[test]
fn per_unit_plans_name_a_unit() {
    let text = edit(LISTING, "        unit: vehicle\n", "");
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::Cel,
        "listings/route.yaml",
        &text,
        "pricing:\n        model: PerUnit",
        "spec.plans[1].pricing.unit",
    );
    assert!(
        d.message.contains("PerUnit price must name its unit"),
        "{d:#?}"
    );
}

#[test]
fn taglines_are_at_most_90_characters() {
    let long = "A".repeat(91);
    let text = edit(
        LISTING,
        "tagline: Plan the fastest routes for every driver.",
        &format!("tagline: {long}"),
    );
    let report = run(&with("listings/route.yaml", &text));
    only_error(
        &report,
        Rule::Cel,
        "listings/route.yaml",
        &text,
        &long,
        "spec.tagline",
    );
}

#[test]
fn partner_urls_are_https() {
    let text = edit(PARTNER, "url: https://gigsafe", "url: http://gigsafe");
    let report = run(&with("listings/gigsafe.yaml", &text));
    only_error(
        &report,
        Rule::Cel,
        "listings/gigsafe.yaml",
        &text,
        "http://gigsafe",
        "spec.partner.url",
    );
}

#[test]
fn partner_listings_have_no_plans() {
    let text = format!(
        "{PARTNER}  plans:\n    - name: x\n      displayName: X\n      pricing: {{model: Flat, amount: \"1\", currency: USD, interval: Month}}\n"
    );
    let report = run(&with("listings/gigsafe.yaml", &text));
    only_error(
        &report,
        Rule::Cel,
        "listings/gigsafe.yaml",
        &text,
        "partner:",
        "spec.partner",
    );
}

#[test]
fn plan_names_are_unique_per_listing_and_reported_once() {
    let text = edit(LISTING, "name: fleet", "name: basic");
    let report = run(&with("listings/route.yaml", &text));
    // At the second plan's name; the CEL rule on the whole list says the same and is left out.
    let d = only_error(
        &report,
        Rule::PlanNameUnique,
        "listings/route.yaml",
        &text,
        "basic\n      displayName: Fleet",
        "spec.plans[1].name",
    );
    assert!(d.message.contains("spec.plans[0]"), "{d:#?}");
}

// ---- listing checks -----------------------------------------------------------------------

#[test]
fn releases_are_newest_first() {
    let text = edit(
        LISTING,
        "    - {version: 2.0.0, date: \"2026-05-01\", summary: Fleet plan}\n    - {version: 1.0.0",
        "    - {version: 1.0.0, date: \"2026-05-01\", summary: Fleet plan}\n    - {version: 2.0.0",
    );
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::ReleaseOrder,
        "listings/route.yaml",
        &text,
        "2.0.0",
        "spec.releases[1].version",
    );
    assert!(d.hint.contains("1.0.0"), "{d:#?}");
}

#[test]
fn release_versions_are_semver() {
    let text = edit(LISTING, "version: 1.0.0,", "version: 1.0.0-01,");
    let report = run(&with("listings/route.yaml", &text));
    only_error(
        &report,
        Rule::ReleaseVersion,
        "listings/route.yaml",
        &text,
        "1.0.0-01",
        "spec.releases[1].version",
    );

    let text = edit(LISTING, "version: 1.0.0,", "version: v1.0.0,");
    let report = run(&with("listings/route.yaml", &text));
    only_error(
        &report,
        Rule::Schema,
        "listings/route.yaml",
        &text,
        "v1.0.0",
        "spec.releases[1].version",
    );
}

// ---- identity -----------------------------------------------------------------------------

#[test]
fn only_listings_and_wizards_belong_in_a_catalog() {
    let text = edit(LISTING, "kind: Listing", "kind: Tenant");
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::Kind,
        "listings/route.yaml",
        &text,
        "Tenant",
        "kind",
    );
    assert!(d.hint.contains("Listing and WizardConfig"), "{d:#?}");

    let text = edit(
        LISTING,
        "apiVersion: marketplace.dev/v1alpha1",
        "apiVersion: marketplace.dev/v1",
    );
    let report = run(&with("listings/route.yaml", &text));
    only_error(
        &report,
        Rule::Kind,
        "listings/route.yaml",
        &text,
        "marketplace.dev/v1\n",
        "apiVersion",
    );
}

#[test]
fn files_are_named_after_their_object() {
    let report = run(&with("listings/route-optimization.yaml", LISTING)
        .into_iter()
        .filter(|f| f.path != Path::new("listings/route.yaml"))
        .collect::<Vec<_>>());
    let d = only_error(
        &report,
        Rule::FileName,
        "listings/route-optimization.yaml",
        LISTING,
        "route\n",
        "metadata.name",
    );
    assert!(d.hint.contains("route.yaml"), "{d:#?}");

    let files: Vec<SourceFile> = catalog()
        .into_iter()
        .map(|f| {
            if f.path == Path::new("wizards/books.yaml") {
                source("listings/books-wizard.yaml", WIZARD)
            } else {
                f
            }
        })
        .collect();
    let report = run(&files);
    let errors: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.rule, d.field_path.as_str()))
        .collect();
    assert_eq!(
        errors,
        [(Rule::FileName, "kind"), (Rule::FileName, "metadata.name")],
        "{:#?}",
        report.diagnostics
    );
}

// ---- across files -------------------------------------------------------------------------

#[test]
fn names_are_unique_per_kind() {
    let report = run(&with("other/route.yaml", LISTING));
    assert_eq!(report.diagnostics.len(), 2, "{:#?}", report.diagnostics);
    for (d, other) in report
        .diagnostics
        .iter()
        .zip(["other/route.yaml", "listings/route.yaml"])
    {
        assert_eq!(
            (d.rule, d.field_path.as_str()),
            (Rule::UniqueName, "metadata.name")
        );
        assert_eq!((d.line, d.column), position(LISTING, "route\n"));
        assert!(d.message.contains(other), "{d:#?}");
    }
}

#[test]
fn requires_points_to_existing_listings() {
    let text = format!("{LISTING}  requires:\n    listings: [gigsafe, gigsaf]\n");
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::RequiresMissing,
        "listings/route.yaml",
        &text,
        "gigsaf]",
        "spec.requires.listings[1]",
    );
    assert!(d.hint.contains("\"gigsafe\""), "{d:#?}");
}

#[test]
fn requires_has_no_cycles() {
    let route = format!("{LISTING}  requires:\n    listings: [books]\n");
    let books = format!("{INTEGRATION}  requires:\n    listings: [route]\n");
    let mut files = with("listings/route.yaml", &route);
    if let Some(f) = files
        .iter_mut()
        .find(|f| f.path == Path::new("listings/books.yaml"))
    {
        f.contents = books.clone().into_bytes();
    }
    let report = run(&files);
    assert_eq!(report.diagnostics.len(), 2, "{:#?}", report.diagnostics);
    let d = &report.diagnostics[0];
    assert_eq!(
        (d.rule, d.file.as_path(), d.field_path.as_str()),
        (
            Rule::RequiresCycle,
            Path::new("listings/books.yaml"),
            "spec.requires.listings[0]"
        )
    );
    assert_eq!((d.line, d.column), position(&books, "route]"));
    assert!(d.message.contains("books → route → books"), "{d:#?}");

    let itself = format!("{LISTING}  requires:\n    listings: [route]\n");
    let report = run(&with("listings/route.yaml", &itself));
    let d = only_error(
        &report,
        Rule::RequiresCycle,
        "listings/route.yaml",
        &itself,
        "route]",
        "spec.requires.listings[0]",
    );
    assert!(d.message.contains("route → route"), "{d:#?}");
}

#[test]
fn integrations_reference_an_existing_wizard() {
    let text = edit(
        INTEGRATION,
        "wizardConfigRef: books",
        "wizardConfigRef: bookz",
    );
    let report = run(&with("listings/books.yaml", &text));
    let errors: Vec<_> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{:#?}", report.diagnostics);
    let d = errors[0];
    assert_eq!(
        (d.rule, d.field_path.as_str()),
        (Rule::WizardMissing, "spec.integration.wizardConfigRef")
    );
    assert_eq!((d.line, d.column), position(&text, "bookz"));
    assert!(d.hint.contains("\"books\""));
    // The wizard nobody uses now is worth a warning.
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.rule == Rule::WizardUnused && d.severity == Severity::Warning)
    );
}

#[test]
fn connection_schemas_are_valid_json_schemas() {
    let text = edit(
        WIZARD,
        "apiKey: {type: string, minLength: 20}",
        "apiKey: {type: strin, minLength: 20}",
    );
    let report = run(&with("wizards/books.yaml", &text));
    only_error(
        &report,
        Rule::ConnectionSchema,
        "wizards/books.yaml",
        &text,
        "strin",
        "spec.connectionSchema.properties.apiKey.type",
    );

    let text = edit(
        WIZARD,
        "apiKey: {type: string, minLength: 20}",
        "apiKey: {type: string, minLength: -1}",
    );
    let report = run(&with("wizards/books.yaml", &text));
    only_error(
        &report,
        Rule::ConnectionSchema,
        "wizards/books.yaml",
        &text,
        "-1",
        "spec.connectionSchema.properties.apiKey.minLength",
    );
}

#[test]
fn a_broken_file_does_not_break_references_to_it() {
    // books.yaml is unreadable; the wizard it uses and the listing requiring it are not blamed.
    let route = format!("{LISTING}  requires:\n    listings: [books]\n");
    let mut files = with("listings/route.yaml", &route);
    files[2].contents = b"kind: Listing\nkind: Listing\n".to_vec();
    let report = run(&files);
    let rules: Vec<Rule> = report.diagnostics.iter().map(|d| d.rule).collect();
    assert_eq!(rules, [Rule::Yaml], "{:#?}", report.diagnostics);
}

#[test]
fn context_files_resolve_names_but_are_not_reported() {
    let text = format!("{LISTING}  requires:\n    listings: [gigsafe]\n");
    let broken_context = edit(PARTNER, "type: Partner", "type: Nonsense");
    let options = LintOptions {
        context: vec![source("listings/gigsafe.yaml", &broken_context)],
        base: None,
    };
    let report = lint(&[source("listings/route.yaml", &text)], &options);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    assert_eq!(report.files_checked, 1);
}

#[test]
fn several_errors_in_several_files_are_reported_in_one_run() {
    let route = edit(
        &edit(LISTING, "trialDays: 14", "trialDays: -1"),
        "currency: USD, interval",
        "currency: USX, interval",
    );
    let partner = edit(PARTNER, "url: https://", "url: ftp://");
    let mut files = with("listings/route.yaml", &route);
    files[1].contents = partner.into_bytes();
    let report = run(&files);
    assert_eq!(report.error_count(), 3, "{:#?}", report.diagnostics);
    assert_eq!(report.files_with_errors(), 2);
    assert_eq!(
        report.objects.len(),
        2,
        "the two clean files still yield objects"
    );
}

// ---- base revision --------------------------------------------------------------------------

#[test]
fn a_published_listing_cannot_be_deleted_or_unpublished() {
    let base = catalog();
    let archived = edit(PARTNER, "lifecycle: Published", "lifecycle: Archived");
    let mut base_with_archived = base.clone();
    base_with_archived[1].contents = archived.into_bytes();

    // Deleted while Published: an error at the base file's lifecycle.
    let now: Vec<SourceFile> = catalog()
        .into_iter()
        .filter(|f| f.path != Path::new("listings/gigsafe.yaml"))
        .collect();
    let report = lint(
        &now,
        &LintOptions {
            context: Vec::new(),
            base: Some(base.clone()),
        },
    );
    let d = only_error(
        &report,
        Rule::PublishedDeleted,
        "listings/gigsafe.yaml",
        PARTNER,
        "Published",
        "spec.lifecycle",
    );
    assert!(d.hint.contains("Archived"), "{d:#?}");
    assert_eq!(report.files_checked, 4);

    // Deleted after being Archived: fine.
    let report = lint(
        &now,
        &LintOptions {
            context: Vec::new(),
            base: Some(base_with_archived),
        },
    );
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);

    // Back to Draft: an error at the current file.
    let draft = edit(LISTING, "lifecycle: Published", "lifecycle: Draft");
    let report = lint(
        &with("listings/route.yaml", &draft),
        &LintOptions {
            context: Vec::new(),
            base: Some(base),
        },
    );
    only_error(
        &report,
        Rule::LifecycleRegression,
        "listings/route.yaml",
        &draft,
        "Draft",
        "spec.lifecycle",
    );
}

/// A repository made by the test: a Published listing committed, then deleted in the work tree.
fn repository_with_deleted_listing() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = git2::Repository::init(dir.path()).expect("git init");
    for file in catalog() {
        let path = dir.path().join("catalog").join(&file.path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &file.contents).expect("write");
    }
    let mut index = repo.index().expect("index");
    index
        .add_all(["catalog"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let signature = git2::Signature::now("test", "test@example.com").expect("signature");
    repo.commit(Some("HEAD"), &signature, &signature, "catalog", &tree, &[])
        .expect("commit");
    std::fs::remove_file(dir.path().join("catalog/listings/gigsafe.yaml")).expect("delete");
    dir
}

fn marketplace(dir: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_marketplace"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("marketplace runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn the_cli_compares_with_a_base_revision() {
    let repo = repository_with_deleted_listing();
    let (code, out) = marketplace(repo.path(), &["catalog", "lint", "--base", "HEAD"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(
            "catalog/listings/gigsafe.yaml:11:14: error[published-deleted] spec.lifecycle: "
        ),
        "{out}"
    );
    assert!(out.ends_with("1 error in 1 of 4 files\n"), "{out}");

    // Linting one file (as a pre-commit hook does) still sees the whole catalog and the deletion.
    let (code, out) = marketplace(
        repo.path(),
        &[
            "catalog",
            "lint",
            "--base",
            "HEAD",
            "catalog/listings/route.yaml",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error[published-deleted]"), "{out}");

    let (code, _) = marketplace(repo.path(), &["catalog", "lint", "--base", "no-such-ref"]);
    assert_eq!(code, 2, "a revision that does not resolve is a usage error");
    let (code, _) = marketplace(repo.path(), &["catalog", "lint", "missing-folder"]);
    assert_eq!(code, 2);
}

// ---- output formats -------------------------------------------------------------------------

#[test]
fn the_cli_prints_text_github_and_json() {
    let repo = repository_with_deleted_listing();
    let (code, out) = marketplace(repo.path(), &["catalog", "lint"]);
    assert_eq!((code, out.as_str()), (0, "no problems in 3 files\n"));

    let route = repo.path().join("catalog/listings/route.yaml");
    let text = edit(LISTING, "trialDays: 14", "trialDays: 91");
    std::fs::write(&route, &text).expect("write");
    let (line, column) = position(&text, "91");

    let (code, out) = marketplace(repo.path(), &["catalog", "lint"]);
    assert_eq!(code, 1);
    let expected = format!(
        "catalog/listings/route.yaml:{line}:{column}: error[schema] spec.plans[0].trialDays: 91 is above the maximum 90\n"
    );
    assert!(out.starts_with(&expected), "{out}");
    assert!(
        out.contains("\n  help: use a value at most 90; Days of free trial"),
        "{out}"
    );
    assert!(out.ends_with("\n\n1 error in 1 of 3 files\n"), "{out}");

    let (code, out) = marketplace(repo.path(), &["catalog", "lint", "--format", "github"]);
    assert_eq!(code, 1);
    let expected = format!(
        "::error file=catalog/listings/route.yaml,line={line},col={column},title=schema%3A spec.plans[0].trialDays::91 is above the maximum 90%0Ahelp: "
    );
    assert!(out.starts_with(&expected), "{out}");

    let (code, out) = marketplace(repo.path(), &["catalog", "lint", "--format", "json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(json[0]["file"], "catalog/listings/route.yaml");
    assert_eq!(
        (json[0]["line"].as_u64(), json[0]["column"].as_u64()),
        (Some(line as u64), Some(column as u64))
    );
    assert_eq!(json[0]["field_path"], "spec.plans[0].trialDays");
    assert_eq!(
        (json[0]["rule"].as_str(), json[0]["severity"].as_str()),
        (Some("schema"), Some("error"))
    );
    assert!(json[0]["hint"].as_str().is_some_and(|h| !h.is_empty()));
}

#[test]
fn the_cli_writes_the_editor_schemas() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _) = marketplace(dir.path(), &["catalog", "schema", "--output-dir", "out"]);
    assert_eq!(code, 0);
    for file in ["listing.schema.json", "wizardconfig.schema.json"] {
        let written = std::fs::read_to_string(dir.path().join("out").join(file)).expect("written");
        let committed = std::fs::read_to_string(repo_root().join("catalog/schemas").join(file))
            .expect("committed");
        assert_eq!(written, committed, "{file}");
    }
}

// ---- malformed input ------------------------------------------------------------------------

#[test]
fn malformed_files_give_clear_errors_and_no_panic() {
    let huge = format!(
        "{LISTING}  description: \"{}\"\n",
        "x".repeat(2 * 1024 * 1024)
    );
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let cases: Vec<(&str, Vec<u8>, Rule, &str)> = vec![
        (
            "invalid YAML",
            b"spec: [unclosed\n".to_vec(),
            Rule::Yaml,
            "invalid YAML",
        ),
        (
            "duplicate keys",
            edit(
                LISTING,
                "  type: InApp\n",
                "  type: InApp\n  type: Partner\n",
            )
            .into_bytes(),
            Rule::Yaml,
            "duplicate key \"type\" (first defined on line 9)",
        ),
        ("binary bytes", binary, Rule::Yaml, "binary"),
        (
            "2 MiB file",
            huge.into_bytes(),
            Rule::Yaml,
            "larger than the 1048576-byte limit",
        ),
        (
            "wrong kind",
            edit(LISTING, "kind: Listing", "kind: ConfigMap").into_bytes(),
            Rule::Kind,
            "does not belong in a catalog",
        ),
        (
            "unknown field",
            edit(LISTING, "spec:\n", "spec:\n  colour: red\n").into_bytes(),
            Rule::UnknownField,
            "unknown field \"colour\"",
        ),
        (
            "two documents",
            format!("{LISTING}---\n{LISTING}").into_bytes(),
            Rule::Yaml,
            "a second YAML document",
        ),
        (
            "not UTF-8",
            b"kind: caf\xe9\n".to_vec(),
            Rule::Yaml,
            "not valid UTF-8",
        ),
        ("empty", Vec::new(), Rule::Yaml, "no YAML document"),
        (
            "a list",
            b"- a\n- b\n".to_vec(),
            Rule::Yaml,
            "not a mapping",
        ),
        (
            "a tag",
            edit(LISTING, "type: InApp", "type: !custom InApp").into_bytes(),
            Rule::Yaml,
            "tag !custom",
        ),
    ];
    for (case, contents, rule, message) in cases {
        let report = run(&[SourceFile {
            path: "listings/route.yaml".into(),
            contents,
        }]);
        let errors: Vec<&Diagnostic> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 1, "{case}: {:#?}", report.diagnostics);
        assert_eq!(errors[0].rule, rule, "{case}: {:#?}", errors[0]);
        assert!(
            errors[0].message.contains(message),
            "{case}: {:#?}",
            errors[0]
        );
        assert!(errors[0].line >= 1 && errors[0].column >= 1, "{case}");
        assert!(report.objects.is_empty(), "{case}");
    }
}

#[test]
fn the_second_document_and_duplicate_key_are_located() {
    let text = format!("{LISTING}---\n{LISTING}");
    let report = run(&[source("listings/route.yaml", &text)]);
    let (line, _) = position(&text, "---");
    assert_eq!(
        (report.diagnostics[0].line, report.diagnostics[0].column),
        (line, 1)
    );

    let text = edit(
        LISTING,
        "  type: InApp\n",
        "  type: InApp\n  type: Partner\n",
    );
    let report = run(&[source("listings/route.yaml", &text)]);
    let d = only_error(
        &report,
        Rule::Yaml,
        "listings/route.yaml",
        &text,
        "type: Partner",
        "spec.type",
    );
    assert!(d.hint.contains("keep one"), "{d:#?}");
}

// ---- no panics on any input -----------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so failures reproduce without a fuzzer.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of a real catalog file: truncation, byte flips, inserted YAML tokens, deep
/// nesting, long strings, shuffled lines, an alias bomb (rare: each costs the full node budget)
/// or junk bytes.
fn mutate(random: &mut Random, seed: &[u8]) -> Vec<u8> {
    const TOKENS: &[&str] = &[
        ":",
        "- ",
        "---\n",
        "&a ",
        "*a",
        "!!str ",
        "!!int ",
        "!x ",
        "{",
        "}",
        "[",
        "]",
        "\"",
        "'",
        "? ",
        "\n  ",
        "\t",
        "#",
        "|\n",
        ">-\n",
        "~",
        "null",
        "yes",
        "1e999",
        "<<: *a\n",
        "%YAML 1.2\n",
        "\u{feff}",
        "spec:",
        "plans:",
        "requires:\n    listings: [route]\n",
        "kind: WizardConfig\n",
        "\\u0000",
    ];
    let mut bytes = seed.to_vec();
    match random.below(40) {
        0..=6 => bytes.truncate(random.below(bytes.len() + 1)),
        7..=13 => {
            for _ in 0..=random.below(8) {
                let at = random.below(bytes.len());
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 1 << random.below(8);
                }
            }
        }
        14..=20 => {
            for _ in 0..=random.below(6) {
                let token = TOKENS[random.below(TOKENS.len())].as_bytes();
                let at = random.below(bytes.len() + 1);
                bytes.splice(at..at, token.iter().copied());
            }
        }
        21..=24 => {
            let depth = random.below(5000);
            let nested = format!("spec: {}{}\n", "[".repeat(depth), "]".repeat(depth));
            bytes.extend_from_slice(nested.as_bytes());
        }
        25..=27 => {
            let long = "y".repeat(random.below(20_000));
            let text = String::from_utf8_lossy(&bytes).replacen(
                "tagline: ",
                &format!("tagline: {long}"),
                1,
            );
            bytes = text.into_bytes();
        }
        28..=34 => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut lines: Vec<&str> = text.lines().collect();
            for _ in 0..=random.below(4) {
                let (a, b) = (random.below(lines.len()), random.below(lines.len()));
                lines.swap(a, b);
            }
            bytes = lines.join("\n").into_bytes();
        }
        35 => {
            let block = format!("a: &a [{}]\n", vec!["x"; 50].join(","));
            let mut bomb = block;
            for level in 0..random.below(12) {
                let previous = if level == 0 {
                    "a".to_owned()
                } else {
                    format!("b{}", level - 1)
                };
                bomb.push_str(&format!(
                    "b{level}: &b{level} [{}]\n",
                    vec![format!("*{previous}"); 20].join(",")
                ));
            }
            bytes = bomb.into_bytes();
        }
        _ => {
            bytes = (0..random.below(512))
                .map(|_| random.next() as u8)
                .collect()
        }
    }
    bytes
}

/// 2,400 inputs (300 runs of 8 files) in a few seconds of a debug build; the cargo-fuzz target
/// in `operator/fuzz` explores further where a nightly toolchain exists.
#[test]
fn thousands_of_mutated_inputs_never_panic() {
    let seeds: Vec<SourceFile> = read_tree(&repo_root().join("catalog"))
        .into_iter()
        .chain(catalog())
        .collect();
    let mut random = Random(0x5eed_cafe_f00d_d00d);
    let mut errors = 0;
    for round in 0..300 {
        // Several files per run, so cross-file checks see junk too; now and then with a base.
        let files: Vec<SourceFile> = (0..8)
            .map(|i| {
                let seed = &seeds[random.below(seeds.len())];
                let name = format!("listings/f{round}-{i}.yaml");
                SourceFile {
                    path: name.into(),
                    contents: mutate(&mut random, &seed.contents),
                }
            })
            .collect();
        let base = (round % 25 == 0).then(|| seeds.clone());
        let report = lint(
            &files,
            &LintOptions {
                context: Vec::new(),
                base,
            },
        );
        errors += report.error_count();
        for d in &report.diagnostics {
            assert!(
                d.line >= 1 && d.column >= 1 && !d.message.is_empty() && !d.hint.is_empty(),
                "{d:#?}"
            );
        }
    }
    assert!(errors > 0, "the mutations do break files");
}

// ---- metered prices -----------------------------------------------------------------------

/// The Basic plan of [`LISTING`] with a metered price (`metered` is the block's YAML body).
fn metered_listing(metered: &str) -> String {
    edit(
        LISTING,
        "      trialDays: 14\n",
        &format!("      trialDays: 14\n      metered:\n{metered}"),
    )
}

#[test]
fn a_metered_plan_with_tiers_is_clean() {
    let text = metered_listing(
        "        meter: api_call\n        unit: API call\n        includedQuantity: 1000\n        hardLimit: true\n        tiersMode: Volume\n        tiers:\n          - {upTo: 10000, unitPrice: \"0.01\"}\n          - {unitPrice: \"0.005\"}\n",
    );
    let report = run(&with("listings/route.yaml", &text));
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
}

/// A metered block (YAML body) that breaks a CEL rule: one error at the block, on `field`.
fn metered_cel_error(metered: &str, field: &str, says: &str) {
    let text = metered_listing(metered);
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::Cel,
        "listings/route.yaml",
        &text,
        "metered:",
        field,
    );
    assert!(d.message.contains(says), "{d:#?}");
}

#[test]
fn summed_meters_name_the_property_they_read() {
    metered_cel_error(
        "        meter: vision.scan\n        aggregation: Sum\n        unit: page\n        unitPrice: \"0.10\"\n",
        "spec.plans[0].metered.valueProperty",
        "needs valueProperty",
    );
}

#[test]
fn a_hard_limit_needs_an_included_quantity() {
    metered_cel_error(
        "        meter: api_call\n        unit: API call\n        unitPrice: \"0.01\"\n        hardLimit: true\n",
        "spec.plans[0].metered.includedQuantity",
        "hard limit",
    );
}

#[test]
fn metered_tiers_rise_and_the_error_names_plan_and_tier() {
    let text = metered_listing(
        "        meter: api_call\n        unit: API call\n        tiers:\n          - {upTo: 5000, unitPrice: \"0.01\"}\n          - {upTo: 4000, unitPrice: \"0.008\"}\n          - {unitPrice: \"0.005\"}\n",
    );
    let report = run(&with("listings/route.yaml", &text));
    let d = only_error(
        &report,
        Rule::MeteredTiers,
        "listings/route.yaml",
        &text,
        "4000",
        "spec.plans[0].metered.tiers[1].upTo",
    );
    assert!(d.message.contains("plan \"basic\""), "{d:#?}");
    // Only the last tier is open-ended.
    let text = metered_listing(
        "        meter: api_call\n        unit: API call\n        tiers:\n          - {unitPrice: \"0.01\"}\n          - {upTo: 4000, unitPrice: \"0.008\"}\n",
    );
    let report = run(&with("listings/route.yaml", &text));
    assert_eq!(report.diagnostics.len(), 1, "{:#?}", report.diagnostics);
    assert_eq!(
        report.diagnostics[0].field_path,
        "spec.plans[0].metered.tiers"
    );
}

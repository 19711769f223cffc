//! Unit tests of the stages' plumbing; the rules themselves are tested end to end in
//! `operator/tests/catalog_lint.rs`.

use super::*;

fn source(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.into(),
        contents: text.as_bytes().to_vec(),
    }
}

/// A rule kube-cel cannot compile would be skipped (as `cel-unevaluated`) at lint time; this
/// makes sure every rule of the catalog kinds is really evaluated offline.
#[test]
fn every_cel_rule_of_the_catalog_kinds_compiles() {
    fn walk(schema: &kube::core::cel::CompiledSchema, path: &str, out: &mut Vec<String>) {
        for error in schema.compilation_errors() {
            out.push(format!("{path}: {error}"));
        }
        for (name, child) in &schema.properties {
            walk(child, &format!("{path}.{name}"), out);
        }
        if let Some(items) = &schema.items {
            walk(items, &format!("{path}[]"), out);
        }
        if let Some(additional) = &schema.additional_properties {
            walk(additional, &format!("{path}{{}}"), out);
        }
    }
    let mut failures = Vec::new();
    for kind in CatalogKind::ALL {
        let schema = openapi::crd_schema(kind).expect("CRD schema");
        walk(
            &kube::core::cel::compile_schema(schema),
            kind.name(),
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_file_with_yaml_errors_gets_only_yaml_errors() {
    let report = lint(
        &[source("listings/x.yaml", "kind: Listing\nkind: Listing\n")],
        &LintOptions::default(),
    );
    assert_eq!(report.diagnostics.len(), 1, "{:#?}", report.diagnostics);
    assert_eq!(report.diagnostics[0].rule, Rule::Yaml);
    assert_eq!(report.diagnostics[0].field_path, "kind");
    assert!(report.objects.is_empty());
}

#[test]
fn one_field_is_reported_once() {
    let long = "x".repeat(1001);
    let text = format!(
        "apiVersion: marketplace.dev/v1alpha1\nkind: Listing\nmetadata:\n  name: x\nspec:\n  displayName: X\n  tagline: {long}\n  type: InApp\n  category: AI\n  lifecycle: Draft\n"
    );
    let report = lint(&[source("listings/x.yaml", &text)], &LintOptions::default());
    let tagline: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| d.field_path == "spec.tagline")
        .collect();
    assert_eq!(tagline.len(), 1, "{tagline:#?}");
    assert_eq!(tagline[0].rule, Rule::Schema);
}

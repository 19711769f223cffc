//! `crds/` is generated from the Rust types; this fails when a file differs from what
//! `marketplace crds` prints, so the committed YAML can never drift from the code.

use std::path::PathBuf;

use marketplace_operator::cli::crds::rendered;

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds")
}

#[test]
fn crds_folder_matches_generated_yaml() {
    let mut stale = Vec::new();
    let expected = rendered().expect("CRDs render to YAML");
    for (file, yaml) in &expected {
        let on_disk = std::fs::read_to_string(crds_dir().join(file)).unwrap_or_default();
        if &on_disk != yaml {
            stale.push(file.clone());
        }
    }
    let mut extra: Vec<String> = std::fs::read_dir(crds_dir())
        .expect("crds/ exists")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| !expected.iter().any(|(file, _)| file == name))
        .collect();
    extra.sort();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "crds/ is out of date (stale: {stale:?}, not generated: {extra:?}); \
         run `cargo run -p marketplace-operator --bin marketplace -- crds --output-dir crds`"
    );
}

/// Formats the apiserver does not recognise (e.g. schemars' `uint32`) make it warn on every
/// install; only Kubernetes' known formats may appear.
#[test]
fn crds_use_only_formats_kubernetes_knows() {
    const KNOWN: &[&str] = &[
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "date",
        "date-time",
        "email",
        "uri",
    ];
    for crd in marketplace_operator::api::crds() {
        let json = serde_json::to_value(&crd).expect("CRD serializes");
        let mut formats = Vec::new();
        collect_formats(&json, &mut formats);
        for format in formats {
            assert!(
                KNOWN.contains(&format.as_str()),
                "{:?} uses format {format}",
                crd.metadata.name
            );
        }
    }
}

fn collect_formats(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("format", serde_json::Value::String(format)) => out.push(format.clone()),
                    _ => collect_formats(child, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_formats(item, out)),
        _ => {}
    }
}

#[test]
fn every_kind_is_in_the_marketplace_category_with_short_names_and_columns() {
    for crd in marketplace_operator::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        assert_eq!(crd.spec.group, "marketplace.dev", "{name}");
        assert!(
            crd.spec
                .names
                .categories
                .as_ref()
                .is_some_and(|c| c.contains(&"marketplace".to_owned())),
            "{name}"
        );
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{name}"
        );
        for version in &crd.spec.versions {
            assert!(
                version
                    .additional_printer_columns
                    .as_ref()
                    .is_some_and(|c| c.len() >= 3),
                "{name}"
            );
        }
    }
}

/// Every property carries a description, so `kubectl explain` documents the whole API.
#[test]
fn every_property_has_a_description() {
    let mut missing = Vec::new();
    for crd in marketplace_operator::api::crds() {
        let json = serde_json::to_value(&crd).expect("CRD serializes");
        let root = &json["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        undocumented(root, crd.spec.names.kind.clone(), &mut missing);
    }
    assert!(
        missing.is_empty(),
        "properties without a description: {missing:#?}"
    );
}

fn undocumented(schema: &serde_json::Value, path: String, out: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, child) in properties {
            let child_path = format!("{path}.{name}");
            // apiVersion, kind and metadata are Kubernetes' own; explain documents them already.
            let standard = matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
            if !standard && child.get("description").is_none() {
                out.push(child_path.clone());
            }
            undocumented(child, child_path, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(items, format!("{path}[]"), out);
    }
}

//! `marketplace crds`: the CRDs generated from the Rust types, the only source of `crds/`.

use std::io::Write;
use std::path::Path;

use super::CliError;
use crate::api;

/// First line of every generated file, so nobody edits one by hand.
pub const GENERATED_HEADER: &str =
    "# Generated from the Rust types by `marketplace crds --output-dir crds`. Do not edit.\n";

/// Each CRD's file name and YAML text, in `api::crds()` order.
pub fn rendered() -> Result<Vec<(String, String)>, CliError> {
    api::crds()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let yaml = serde_saphyr::to_string(&crd).map_err(|source| CliError::Yaml {
                name: name.clone(),
                source,
            })?;
            Ok((format!("{name}.yaml"), format!("{GENERATED_HEADER}{yaml}")))
        })
        .collect()
}

pub fn run(output_dir: Option<&Path>) -> Result<(), CliError> {
    let files = rendered()?;
    match output_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| CliError::Write {
                path: dir.to_owned(),
                source,
            })?;
            for (file, yaml) in files {
                let path = dir.join(file);
                std::fs::write(&path, yaml).map_err(|source| CliError::Write { path, source })?;
            }
        }
        None => {
            let documents: Vec<String> = files.into_iter().map(|(_, yaml)| yaml).collect();
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(documents.join("---\n").as_bytes())
                .map_err(|source| CliError::Write {
                    path: "<stdout>".into(),
                    source,
                })?;
        }
    }
    Ok(())
}

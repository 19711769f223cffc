//! `marketplace openapi`: the API's OpenAPI document, the only source of `docs/openapi.json`.

use std::io::Write;
use std::path::Path;

use super::CliError;
use crate::front_door::openapi_document::rendered;

pub fn run(output: Option<&Path>) -> Result<(), CliError> {
    let text = rendered();
    match output {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| CliError::Write {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            std::fs::write(path, text).map_err(|source| CliError::Write {
                path: path.to_owned(),
                source,
            })
        }
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|source| CliError::Write {
                path: "<stdout>".into(),
                source,
            }),
    }
}

//! HTTP handlers, one module per object family. The same routers serve the date-based
//! `2026-09` (and `2026-03`) paths and the legacy `/crm/v3` and `/crm/v4` paths (contract §1.1).

pub mod associations;
pub mod batch;
pub mod lifecycle;
pub mod objects;
pub mod properties;
pub mod search;

use crate::error::{ApiError, ApiResult};
use crate::model::ObjectType;
use crate::state::Selection;
use axum::body::Bytes;
use serde::de::DeserializeOwned;

/// Parses a JSON body; a malformed body is a HubSpot-shaped 400, not axum's plain-text one.
pub fn parse_body<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::validation(format!(
            "Invalid input JSON on line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
        .sub_category("INVALID_JSON")
    })
}

/// Query parameters of object reads. `properties` may be comma-separated or repeated.
#[derive(Debug, Default)]
pub struct ReadParams {
    pub selection: Selection,
    pub archived: bool,
    pub limit: Option<String>,
    pub after: Option<String>,
    pub id_property: Option<String>,
}

fn split(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

pub fn read_params(q: &[(String, String)]) -> ReadParams {
    let mut p = ReadParams::default();
    let mut props: Option<Vec<String>> = None;
    for (k, v) in q {
        match k.as_str() {
            "properties" => props.get_or_insert_with(Vec::new).extend(split(v)),
            "propertiesWithHistory" => p.selection.with_history.extend(split(v)),
            "associations" => p
                .selection
                .associations
                .extend(split(v).filter_map(|s| ObjectType::parse(&s))),
            "archived" => p.archived = v == "true",
            "limit" => p.limit = Some(v.clone()),
            "after" => p.after = Some(v.clone()),
            "idProperty" => p.id_property = Some(v.clone()),
            _ => {}
        }
    }
    p.selection.properties = props;
    p
}

/// Batch and list limits as HubSpot states them.
pub fn check_batch_size(n: usize, max: usize) -> ApiResult<()> {
    if n > max {
        // contract §3: "Object API batch endpoints are limited to 100 inputs per request".
        return Err(ApiError::validation(format!(
            "Batch input size {n} exceeds the maximum of {max} inputs per request."
        ))
        .sub_category("BATCH_TOO_LARGE")
        .context("maxInputs", serde_json::json!([max.to_string()])));
    }
    Ok(())
}

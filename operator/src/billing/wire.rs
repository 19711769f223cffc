//! JSON shapes of HubSpot responses (contract §6), parsed leniently: unknown fields are
//! ignored, ids may arrive as strings or numbers (v4 association reads type `toObjectId` as an
//! integer), property values are strings or null.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// An id that may be a JSON string or number; kept as the numeric string HubSpot uses in paths.
pub fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "id is not a string or number: {other}"
        ))),
    }
}

/// `SimplePublicObject` (and the upsert variant with `new`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectJson {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub archived: bool,
    /// Present on reads with `associations=…`: `{ "line_items": { "results": [{id, type}] } }`.
    #[serde(default)]
    pub associations: Option<BTreeMap<String, AssocPage>>,
    /// Upsert results: whether the record was created (contract §2.3).
    #[serde(default)]
    pub new: Option<bool>,
    /// Batch write results echo the input's trace id (contract §2.1, §4 207).
    #[serde(default)]
    pub object_write_trace_id: Option<String>,
}

impl ObjectJson {
    /// A property as text (`None` for absent, null or empty).
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// `createdAt`, or `hs_createdate` when only properties came back.
    pub fn created(&self) -> String {
        self.created_at
            .clone()
            .or_else(|| self.prop("hs_createdate").map(str::to_string))
            .unwrap_or_default()
    }

    /// Ids of associated objects of one type, whatever key spelling the read used.
    pub fn associated(&self, keys: &[&str]) -> Vec<String> {
        let Some(map) = &self.associations else {
            return Vec::new();
        };
        let mut ids: Vec<String> = keys
            .iter()
            .filter_map(|k| map.get(*k))
            .flat_map(|p| p.results.iter().map(|r| r.id.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssocPage {
    #[serde(default)]
    pub results: Vec<AssocRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssocRef {
    #[serde(deserialize_with = "id_string", alias = "toObjectId")]
    pub id: String,
}

/// Batch envelope (contract §6): `{status, results, numErrors?, errors?}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchJson<T> {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    #[serde(default)]
    pub num_errors: Option<u64>,
    #[serde(default)]
    pub errors: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssocType {
    #[serde(default)]
    pub category: Option<String>,
    pub type_id: u32,
    #[serde(default)]
    pub label: Option<String>,
}

/// One row of `GET …/associations/{toType}` (contract §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssocTarget {
    #[serde(deserialize_with = "id_string")]
    pub to_object_id: String,
    #[serde(default)]
    pub association_types: Vec<AssocType>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub next: Option<PagingNext>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PagingNext {
    #[serde(deserialize_with = "id_string")]
    pub after: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

impl<T> Page<T> {
    pub fn next_after(&self) -> Option<String> {
        self.paging
            .as_ref()
            .and_then(|p| p.next.as_ref())
            .map(|n| n.after.clone())
    }
}

/// Batch association read row: `{from:{id}, to:[{toObjectId, associationTypes}]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AssocBatchRow {
    pub from: AssocFrom,
    #[serde(default)]
    pub to: Vec<AssocTarget>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssocFrom {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
}

/// One result of an association batch create: the pair it wrote.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssocWritten {
    #[serde(deserialize_with = "id_string")]
    pub from_object_id: String,
    #[serde(deserialize_with = "id_string")]
    pub to_object_id: String,
}

/// A property definition (contract §2.2, §1.2 options).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyJson {
    pub name: String,
    #[serde(default)]
    pub options: Vec<PropertyOption>,
    #[serde(default)]
    pub has_unique_value: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PropertyOption {
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_as_strings_or_numbers() {
        let p: Page<AssocTarget> = serde_json::from_str(
            r#"{"results":[{"toObjectId":12,"associationTypes":[{"category":"HUBSPOT_DEFINED","typeId":300,"label":null}]},
                           {"toObjectId":"13","associationTypes":[]}],
                "paging":{"next":{"after":"14"}}}"#,
        )
        .unwrap();
        assert_eq!(p.results[0].to_object_id, "12");
        assert_eq!(p.results[1].to_object_id, "13");
        assert_eq!(p.results[0].association_types[0].type_id, 300);
        assert_eq!(p.next_after().as_deref(), Some("14"));
        let o: ObjectJson = serde_json::from_str(
            r#"{"id":"5","properties":{"hs_status":"active","x":null,"y":""},"createdAt":"2026-11-22T00:00:00.000Z",
                "associations":{"line_items":{"results":[{"id":"9","type":"subscription_to_line_item"}]}},"new":true}"#,
        )
        .unwrap();
        assert_eq!(o.prop("hs_status"), Some("active"));
        assert_eq!(o.prop("x"), None);
        assert_eq!(o.prop("y"), None);
        assert_eq!(o.associated(&["line_items", "0-8"]), vec!["9".to_string()]);
        assert_eq!(o.new, Some(true));
    }
}

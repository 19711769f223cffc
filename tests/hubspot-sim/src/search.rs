//! Search (contract §2.5, §6, §8.1, §8.4, §9): served from an index that trails writes by a
//! configurable lag, with HubSpot's operators, case rules and limits.

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::model::{CrmObject, ObjectType};
use crate::properties::{PropType, Registry};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// contract §2.5 limits.
pub const MAX_PAGE: i64 = 200;
pub const MAX_RESULTS: i64 = 10_000;
pub const MAX_GROUPS: usize = 5;
pub const MAX_FILTERS_PER_GROUP: usize = 6;
pub const MAX_FILTERS_TOTAL: usize = 18;
pub const MAX_QUERY_CHARS: usize = 3000;

/// Versions of each record with the time they were written; search sees the newest version
/// older than `now - lag` (contract §8.1: "serves search from a snapshot that trails writes").
/// (write time, document; `None` once archived).
type Version = (i64, Option<CrmObject>);

#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    versions: BTreeMap<(ObjectType, u64), VecDeque<Version>>,
}

impl SearchIndex {
    pub fn record(&mut self, obj: &CrmObject, now: i64) {
        let doc = (!obj.archived).then(|| obj.clone());
        self.versions
            .entry((obj.object_type, obj.id))
            .or_default()
            .push_back((now, doc));
    }

    pub fn clear(&mut self) {
        self.versions.clear();
    }

    /// Records of `t` visible to search at `now` with `lag_ms`.
    pub fn visible(&mut self, t: ObjectType, now: i64, lag_ms: i64) -> Vec<CrmObject> {
        let cutoff = now - lag_ms;
        let mut out = Vec::new();
        for ((ot, _), versions) in self.versions.range_mut((t, 0)..=(t, u64::MAX)) {
            debug_assert_eq!(*ot, t);
            // Drop versions superseded by a newer one that is already visible.
            while versions.len() > 1 && versions.get(1).is_some_and(|(ts, _)| *ts <= cutoff) {
                versions.pop_front();
            }
            if let Some((ts, Some(doc))) = versions.front()
                && *ts <= cutoff
            {
                out.push(doc.clone());
            }
        }
        out
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub property_name: String,
    pub operator: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub high_value: Option<Value>,
    #[serde(default)]
    pub values: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FilterGroup {
    #[serde(default)]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default)]
    pub filter_groups: Vec<FilterGroup>,
    #[serde(default)]
    pub sorts: Vec<Value>,
    #[serde(default)]
    pub properties: Option<Vec<String>>,
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub after: Option<Value>,
    #[serde(default)]
    pub query: Option<String>,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl SearchRequest {
    /// contract §2.5 limits, each a 400.
    pub fn validate(&self) -> ApiResult<(usize, usize)> {
        let limit = self.limit.unwrap_or(10);
        if !(0..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::validation(format!(
                "limit must be between 0 and {MAX_PAGE}, got {limit}"
            )));
        }
        let after = match &self.after {
            None => 0,
            Some(v) => scalar(v).parse::<i64>().map_err(|_| {
                ApiError::validation(format!("after must be an integer, got {}", scalar(v)))
            })?,
        };
        // contract §8.4: paging past 10,000 results is a 400.
        if after + limit > MAX_RESULTS {
            return Err(ApiError::validation(format!(
                "Search results are limited to {MAX_RESULTS} records; after ({after}) + limit ({limit}) exceeds it."
            ))
            .sub_category("SEARCH_RESULT_LIMIT_EXCEEDED"));
        }
        if self.filter_groups.len() > MAX_GROUPS {
            return Err(ApiError::validation(format!(
                "Too many filter groups: {}. The maximum is {MAX_GROUPS}.",
                self.filter_groups.len()
            )));
        }
        let mut total = 0;
        for g in &self.filter_groups {
            if g.filters.len() > MAX_FILTERS_PER_GROUP {
                return Err(ApiError::validation(format!(
                    "Too many filters in a filter group: {}. The maximum is {MAX_FILTERS_PER_GROUP}.",
                    g.filters.len()
                )));
            }
            total += g.filters.len();
        }
        if total > MAX_FILTERS_TOTAL {
            return Err(ApiError::validation(format!(
                "Too many filters: {total}. The maximum is {MAX_FILTERS_TOTAL}."
            )));
        }
        if self
            .query
            .as_deref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
        {
            return Err(ApiError::validation(format!(
                "query is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        if self.sorts.len() > 1 {
            return Err(ApiError::validation("Only one sort is allowed per search."));
        }
        for g in &self.filter_groups {
            for f in &g.filters {
                if !OPERATORS.contains(&f.operator.as_str()) {
                    return Err(ApiError::validation(format!(
                        "Unknown filter operator: {}",
                        f.operator
                    )));
                }
            }
        }
        Ok((
            usize::try_from(after).unwrap_or(0),
            usize::try_from(limit).unwrap_or(0),
        ))
    }
}

pub const OPERATORS: &[&str] = &[
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Enum,
    Num,
    Time,
}

fn kind_of(registry: &Registry, t: ObjectType, prop: &str) -> Kind {
    match registry.get(t, prop).map(|p| p.ptype) {
        Some(PropType::Number) => Kind::Num,
        Some(PropType::Date) | Some(PropType::DateTime) => Kind::Time,
        Some(PropType::Enumeration) | Some(PropType::Bool) => Kind::Enum,
        _ => Kind::Text,
    }
}

fn as_time(s: &str) -> Option<f64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms as f64);
    }
    clock::parse_iso(s)
        .or_else(|| clock::parse_ymd(s))
        .map(|v| v as f64)
}

fn as_num(kind: Kind, s: &str) -> Option<f64> {
    match kind {
        Kind::Num => s.trim().parse::<f64>().ok(),
        Kind::Time => as_time(s),
        _ => None,
    }
}

/// contract §2.5: values are case-insensitive except enumerations.
fn eq(kind: Kind, stored: &str, given: &str) -> bool {
    match kind {
        Kind::Enum => stored == given,
        Kind::Num | Kind::Time => match (as_num(kind, stored), as_num(kind, given)) {
            (Some(a), Some(b)) => a == b,
            _ => stored == given,
        },
        Kind::Text => stored.eq_ignore_ascii_case(given),
    }
}

fn cmp(kind: Kind, stored: &str, given: &str) -> Option<std::cmp::Ordering> {
    match (as_num(kind, stored), as_num(kind, given)) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => Some(stored.to_lowercase().cmp(&given.to_lowercase())),
    }
}

fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            if !rest.starts_with(part) {
                return false;
            }
            rest = &rest[part.len()..];
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    parts.last().is_some_and(|l| l.is_empty()) || rest.is_empty() || parts.len() == 1
}

fn contains_token(stored: &str, given: &str) -> bool {
    let stored = stored.to_lowercase();
    let given = given.to_lowercase();
    if given.contains('*') {
        return wildcard(&given, &stored)
            || stored.split_whitespace().any(|tok| wildcard(&given, tok));
    }
    stored == given || stored.split_whitespace().any(|tok| tok == given)
}

/// Evaluates one filter. `assoc_ids` answers `associations.{type}` pseudo-properties.
fn matches_filter(
    registry: &Registry,
    obj: &CrmObject,
    f: &Filter,
    assoc_ids: &dyn Fn(ObjectType, u64, ObjectType) -> Vec<u64>,
) -> bool {
    let given = f.value.as_ref().map(scalar).unwrap_or_default();
    if let Some(to) = f.property_name.strip_prefix("associations.") {
        let Some(to_t) = ObjectType::parse(to) else {
            return false;
        };
        let ids: Vec<String> = assoc_ids(obj.object_type, obj.id, to_t)
            .iter()
            .map(|i| i.to_string())
            .collect();
        let values: Vec<String> = f
            .values
            .as_ref()
            .map(|v| v.iter().map(scalar).collect())
            .unwrap_or_default();
        return match f.operator.as_str() {
            "EQ" => ids.contains(&given),
            "NEQ" => !ids.contains(&given),
            "IN" => ids.iter().any(|i| values.contains(i)),
            "NOT_IN" => !ids.iter().any(|i| values.contains(i)),
            "HAS_PROPERTY" => !ids.is_empty(),
            "NOT_HAS_PROPERTY" => ids.is_empty(),
            _ => false,
        };
    }
    let kind = kind_of(registry, obj.object_type, &f.property_name);
    let stored = obj
        .properties
        .get(&f.property_name)
        .filter(|v| !v.is_empty());
    let values: Vec<String> = f
        .values
        .as_ref()
        .map(|v| v.iter().map(scalar).collect())
        .unwrap_or_default();
    // contract §2.5: IN / NOT_IN on strings need lowercase values: the stored value is lowercased
    // and compared exactly, so mixed-case filter values never match.
    let in_match = |s: &str| match kind {
        Kind::Text => values.iter().any(|v| *v == s.to_lowercase()),
        _ => values.iter().any(|v| eq(kind, s, v)),
    };
    match (f.operator.as_str(), stored) {
        ("HAS_PROPERTY", s) => s.is_some(),
        ("NOT_HAS_PROPERTY", s) => s.is_none(),
        ("NEQ", None) | ("NOT_IN", None) | ("NOT_CONTAINS_TOKEN", None) => true,
        (_, None) => false,
        ("EQ", Some(s)) => eq(kind, s, &given),
        ("NEQ", Some(s)) => !eq(kind, s, &given),
        ("LT", Some(s)) => cmp(kind, s, &given).is_some_and(|o| o.is_lt()),
        ("LTE", Some(s)) => cmp(kind, s, &given).is_some_and(|o| o.is_le()),
        ("GT", Some(s)) => cmp(kind, s, &given).is_some_and(|o| o.is_gt()),
        ("GTE", Some(s)) => cmp(kind, s, &given).is_some_and(|o| o.is_ge()),
        ("BETWEEN", Some(s)) => {
            let high = f.high_value.as_ref().map(scalar).unwrap_or_default();
            cmp(kind, s, &given).is_some_and(|o| o.is_ge())
                && cmp(kind, s, &high).is_some_and(|o| o.is_le())
        }
        ("IN", Some(s)) => in_match(s),
        ("NOT_IN", Some(s)) => !in_match(s),
        ("CONTAINS_TOKEN", Some(s)) => contains_token(s, &given),
        ("NOT_CONTAINS_TOKEN", Some(s)) => !contains_token(s, &given),
        _ => false,
    }
}

/// Default searchable properties for `query` (contract §1.4 lists the product ones).
fn query_properties(t: ObjectType) -> &'static [&'static str] {
    match t {
        ObjectType::Contacts => &["firstname", "lastname", "email", "phone", "company"],
        ObjectType::Companies => &["name", "domain", "phone", "website"],
        ObjectType::Deals => &["dealname", "pipeline", "dealstage", "description"],
        ObjectType::Products => &["name", "description", "price", "hs_sku"],
        _ => &["name", "hs_name", "description"],
    }
}

/// Filters and sorts visible records; returns (total, page, next offset).
pub fn run(
    registry: &Registry,
    t: ObjectType,
    docs: Vec<CrmObject>,
    req: &SearchRequest,
    assoc_ids: &dyn Fn(ObjectType, u64, ObjectType) -> Vec<u64>,
) -> ApiResult<(usize, Vec<CrmObject>, Option<usize>)> {
    let (after, limit) = req.validate()?;
    let mut hits: Vec<CrmObject> = docs
        .into_iter()
        .filter(|o| {
            // OR of groups, AND within a group.
            req.filter_groups.is_empty()
                || req.filter_groups.iter().any(|g| {
                    g.filters
                        .iter()
                        .all(|f| matches_filter(registry, o, f, assoc_ids))
                })
        })
        .filter(|o| match req.query.as_deref() {
            None | Some("") => true,
            Some(q) => {
                let q = q.to_lowercase();
                query_properties(t).iter().any(|p| {
                    o.properties
                        .get(*p)
                        .is_some_and(|v| v.to_lowercase().contains(&q))
                })
            }
        })
        .collect();
    if let Some(sort) = req.sorts.first() {
        let (prop, desc) = match sort {
            Value::String(s) => match s.strip_prefix('-') {
                Some(p) => (p.to_string(), true),
                None => (s.clone(), false),
            },
            other => (
                other
                    .get("propertyName")
                    .and_then(Value::as_str)
                    .unwrap_or("hs_object_id")
                    .to_string(),
                other.get("direction").and_then(Value::as_str) == Some("DESCENDING"),
            ),
        };
        let kind = kind_of(registry, t, &prop);
        hits.sort_by(|a, b| {
            let av = a.properties.get(&prop).map(String::as_str).unwrap_or("");
            let bv = b.properties.get(&prop).map(String::as_str).unwrap_or("");
            let o = cmp(kind, av, bv).unwrap_or(std::cmp::Ordering::Equal);
            let o = o.then(a.id.cmp(&b.id));
            if desc { o.reverse() } else { o }
        });
    } else {
        hits.sort_by_key(|o| o.id);
    }
    let total = hits.len();
    let page: Vec<CrmObject> = hits.into_iter().skip(after).take(limit).collect();
    let next = after + limit;
    let next = (next < total && limit > 0 && (next as i64) < MAX_RESULTS).then_some(next);
    Ok((total, page, next))
}

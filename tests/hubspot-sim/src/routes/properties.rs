//! Properties API (contract §2.2, §9 "Properties"): read, custom create with `hasUniqueValue`
//! (set only at creation, ≤10 per object), batch create, enumeration options.

use super::parse_body;
use crate::error::{ApiError, ApiResult};
use crate::model::ObjectType;
use crate::properties::{PropType, PropertyDef};
use crate::state::{Sim, SimState, lock};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyCreate {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub ptype: String,
    #[serde(default)]
    pub field_type: Option<String>,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub options: Vec<OptionInput>,
    #[serde(default)]
    pub has_unique_value: bool,
}

#[derive(Debug, Deserialize)]
pub struct OptionInput {
    pub value: String,
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        format!("Unable to find property with name: {name}"),
    )
}

pub async fn list(State(sim): State<Sim>, Path(ty): Path<String>) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let st = lock(&sim);
    let results: Vec<Value> = st
        .registry
        .by_type
        .get(&t)
        .map(|m| m.values().map(PropertyDef::to_json).collect())
        .unwrap_or_default();
    Ok(Json(json!({"results": results})).into_response())
}

pub async fn read(
    State(sim): State<Sim>,
    Path((ty, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let st = lock(&sim);
    let def = st.registry.get(t, &name).ok_or_else(|| not_found(&name))?;
    Ok(Json(def.to_json()).into_response())
}

fn create_one(st: &mut SimState, t: ObjectType, input: PropertyCreate) -> ApiResult<Value> {
    if st.registry.get(t, &input.name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            format!("Property named '{}' already exists.", input.name),
        )
        .sub_category("PropertyDefinitionError.PROPERTY_EXISTS"));
    }
    let valid_name = !input.name.is_empty()
        && input
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase())
        && input
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return Err(ApiError::validation(format!(
            "Property name '{}' must start with a lowercase letter and contain only lowercase letters, digits and underscores.",
            input.name
        )));
    }
    let ptype = PropType::parse(&input.ptype)
        .ok_or_else(|| ApiError::validation(format!("Unknown property type: {}", input.ptype)))?;
    if input.has_unique_value {
        // contract §2.2: unique properties are documented only for some object types.
        if !st
            .config
            .unique_property_types
            .iter()
            .any(|n| n == t.plural())
        {
            return Err(ApiError::validation(format!(
                "Unique value properties are not supported for object type {}",
                t.type_id()
            )));
        }
        // contract §2.2: up to 10 unique properties per object.
        if st.registry.unique_names(t).len() >= st.config.max_unique_properties {
            return Err(ApiError::validation(format!(
                "Can't create property {}: object type {} already has the maximum of {} unique value properties.",
                input.name,
                t.type_id(),
                st.config.max_unique_properties
            ))
            .sub_category("PropertyDefinitionError.TOO_MANY_UNIQUE_PROPERTIES"));
        }
    }
    let now = st.now();
    let mut def = PropertyDef::standard(&input.name, ptype);
    def.label = input.label.unwrap_or_else(|| input.name.clone());
    if let Some(ft) = input.field_type {
        def.field_type = ft;
    }
    def.group_name = input.group_name.unwrap_or_else(|| "information".into());
    def.description = input.description.unwrap_or_default();
    def.options = input.options.into_iter().map(|o| o.value).collect();
    def.has_unique_value = input.has_unique_value;
    def.hubspot_defined = false;
    def.created_at = now;
    def.updated_at = now;
    let json = def.to_json();
    st.registry
        .by_type
        .entry(t)
        .or_default()
        .insert(def.name.clone(), def);
    Ok(json)
}

pub async fn create(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let input: PropertyCreate = parse_body(&body)?;
    let mut st = lock(&sim);
    let v = create_one(&mut st, t, input)?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

#[derive(Debug, Deserialize)]
struct BatchCreate {
    inputs: Vec<PropertyCreate>,
}

pub async fn batch_create(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let input: BatchCreate = parse_body(&body)?;
    let mut st = lock(&sim);
    let started = st.now();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for p in input.inputs {
        match create_one(&mut st, t, p) {
            Ok(v) => results.push(v),
            Err(e) => errors.push(e.to_standard_error(None)),
        }
    }
    let mut body = json!({"status": "COMPLETE", "results": results,
        "startedAt": crate::clock::iso(started), "completedAt": crate::clock::iso(st.now())});
    let status = if errors.is_empty() {
        StatusCode::CREATED
    } else {
        if let Value::Object(m) = &mut body {
            m.insert("numErrors".into(), json!(errors.len()));
            m.insert("errors".into(), Value::Array(errors));
        }
        StatusCode::MULTI_STATUS
    };
    Ok((status, Json(body)).into_response())
}

/// PATCH: label, description, group and options may change. contract §2.2: `hasUniqueValue`
/// "can't be changed" once the property exists, so a different value is a 400.
pub async fn update(
    State(sim): State<Sim>,
    Path((ty, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let input: Value = parse_body(&body)?;
    let mut st = lock(&sim);
    let now = st.now();
    let def = st
        .registry
        .by_type
        .get_mut(&t)
        .and_then(|m| m.get_mut(&name))
        .ok_or_else(|| not_found(&name))?;
    if let Some(u) = input.get("hasUniqueValue").and_then(Value::as_bool)
        && u != def.has_unique_value
    {
        return Err(ApiError::validation(format!(
            "hasUniqueValue can only be set when a property is created; property {name} can't be changed."
        )));
    }
    if def.hubspot_defined && input.get("type").is_some() {
        return Err(ApiError::validation(format!(
            "Can't change the type of HubSpot-defined property {name}"
        )));
    }
    if let Some(l) = input.get("label").and_then(Value::as_str) {
        def.label = l.into();
    }
    if let Some(d) = input.get("description").and_then(Value::as_str) {
        def.description = d.into();
    }
    if let Some(g) = input.get("groupName").and_then(Value::as_str) {
        def.group_name = g.into();
    }
    if let Some(opts) = input.get("options").and_then(Value::as_array) {
        def.options = opts
            .iter()
            .filter_map(|o| o.get("value").and_then(Value::as_str).map(String::from))
            .collect();
    }
    def.updated_at = now;
    Ok(Json(def.to_json()).into_response())
}

pub async fn archive(
    State(sim): State<Sim>,
    Path((ty, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let mut st = lock(&sim);
    let def = st.registry.get(t, &name).ok_or_else(|| not_found(&name))?;
    if def.hubspot_defined {
        return Err(ApiError::validation(format!(
            "HubSpot-defined property {name} can't be archived"
        )));
    }
    if let Some(m) = st.registry.by_type.get_mut(&t) {
        m.remove(&name);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct NameRef {
    name: String,
}

#[derive(Debug, Deserialize)]
struct BatchRead {
    inputs: Vec<NameRef>,
}

/// `POST /{type}/batch/read` with `{inputs:[{name}]}`; unknown names are left out.
pub async fn batch_read(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let input: BatchRead = parse_body(&body)?;
    let st = lock(&sim);
    let results: Vec<Value> = input
        .inputs
        .iter()
        .filter_map(|n| st.registry.get(t, &n.name))
        .map(PropertyDef::to_json)
        .collect();
    let now = crate::clock::iso(st.now());
    Ok(Json(
        json!({"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}),
    )
    .into_response())
}

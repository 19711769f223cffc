//! Single-object CRUD and list (contract §1.1 standard operations, §6 pagination).

use super::{parse_body, read_params};
use crate::error::{ApiError, ApiResult};
use crate::faults::FaultKind;
use crate::model::ObjectType;
use crate::state::{InlineAssoc, Selection, Sim, lock};
use crate::webhooks::ChangeSource;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Set by the fault middleware when a "create without association" fault fires.
#[derive(Debug, Clone)]
pub struct SkipAssociations(pub Option<u16>);

#[derive(Debug, Deserialize)]
pub struct CreateInput {
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub associations: Vec<InlineAssoc>,
}

#[derive(Debug, Deserialize)]
pub struct UpdateInput {
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// `GET /{type}`: `limit` (default 10, max 100) and `after` = next record id (contract §6).
pub async fn list(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    uri: Uri,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let p = read_params(&q);
    let limit = match &p.limit {
        None => 10,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::validation(format!("limit must be between 1 and 100, got {l}"))
            })?,
    };
    let after = match &p.after {
        None => 0,
        Some(a) => a
            .parse::<u64>()
            .map_err(|_| ApiError::validation(format!("Invalid after cursor: {a}")))?,
    };
    let st = lock(&sim);
    let mut rows: Vec<_> = st
        .objects
        .get(&t)
        .into_iter()
        .flat_map(|m| m.range(after..))
        .map(|(_, o)| o)
        .filter(|o| o.archived == p.archived)
        .take(limit + 1)
        .collect();
    let next = if rows.len() > limit {
        rows.pop().map(|_| ())
    } else {
        None
    };
    let next_id = next.and_then(|_| {
        st.objects
            .get(&t)
            .into_iter()
            .flat_map(|m| m.range(after..))
            .map(|(_, o)| o)
            .filter(|o| o.archived == p.archived)
            .nth(limit)
            .map(|o| o.id)
    });
    let results: Vec<Value> = rows.iter().map(|o| st.render(o, &p.selection)).collect();
    let mut body = json!({"results": results});
    if let (Some(id), Value::Object(map)) = (next_id, &mut body) {
        map.insert(
            "paging".into(),
            json!({"next": {"after": id.to_string(), "link": format!("{}?after={id}", uri.path())}}),
        );
    }
    Ok(Json(body).into_response())
}

/// `POST /{type}`: 201 with the created object (contract §4: create returns 201).
pub async fn create(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    skip: Option<axum::Extension<SkipAssociations>>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let input: CreateInput = parse_body(&body)?;
    let mut st = lock(&sim);
    st.skip_inline_associations = skip.is_some();
    let res = st.create(
        t,
        &input.properties,
        &input.associations,
        ChangeSource::Integration,
    );
    st.skip_inline_associations = false;
    let id = res?;
    if let Some(axum::Extension(SkipAssociations(Some(status)))) = skip {
        return Err(crate::faults::injected_error(status));
    }
    let obj = st
        .get(t, id)
        .cloned()
        .ok_or_else(|| ApiError::object_not_found(&id.to_string()))?;
    let sel = Selection {
        all_set: true,
        ..Selection::default()
    };
    Ok((StatusCode::CREATED, Json(st.render(&obj, &sel))).into_response())
}

/// Whether a fault kind is the create-without-association family.
pub fn is_skip_assoc(k: &FaultKind) -> bool {
    matches!(k, FaultKind::CreateWithoutAssociation { .. })
}

/// `GET /{type}/{id}` with optional `idProperty` (contract §2.3).
pub async fn read(
    State(sim): State<Sim>,
    Path((ty, id)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let p = read_params(&q);
    let st = lock(&sim);
    let found = if p.archived && p.id_property.is_none() {
        id.parse::<u64>()
            .ok()
            .and_then(|n| st.get_any(t, n))
            .filter(|o| o.archived)
            .map(|o| o.id)
    } else {
        st.resolve(t, &id, p.id_property.as_deref())?
    };
    let obj = found
        .and_then(|n| st.get_any(t, n))
        .ok_or_else(|| ApiError::object_not_found(&id))?;
    Ok(Json(st.render(obj, &p.selection)).into_response())
}

/// `PATCH /{type}/{id}` with optional `idProperty`.
pub async fn update(
    State(sim): State<Sim>,
    Path((ty, id)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let p = read_params(&q);
    let input: UpdateInput = parse_body(&body)?;
    let mut st = lock(&sim);
    let n = st
        .resolve(t, &id, p.id_property.as_deref())?
        .ok_or_else(|| ApiError::object_not_found(&id))?;
    st.update(t, n, &input.properties, ChangeSource::Integration)?;
    let obj = st
        .get(t, n)
        .cloned()
        .ok_or_else(|| ApiError::object_not_found(&id))?;
    let sel = Selection {
        all_set: true,
        ..Selection::default()
    };
    Ok(Json(st.render(&obj, &sel)).into_response())
}

/// `DELETE /{type}/{id}`: 204 (contract §4).
pub async fn archive(
    State(sim): State<Sim>,
    Path((ty, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let mut st = lock(&sim);
    if let Ok(n) = id.parse::<u64>() {
        st.archive(t, n, ChangeSource::Integration)?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

//! Associations v4 and date-based (contract §1.7, §6 "Associations list", §9).

use super::{check_batch_size, parse_body};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::faults::PartialCommit;
use crate::model::ObjectType;
use crate::state::{AssocSpec, IdRef, Sim, SimState, lock};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// contract §1.7: batch read ≤1,000 inputs, batch create ≤2,000.
pub const MAX_READ: usize = 1000;
pub const MAX_CREATE: usize = 2000;

fn object_id(st: &SimState, t: ObjectType, id: &str) -> ApiResult<u64> {
    id.parse::<u64>()
        .ok()
        .filter(|n| st.get(t, *n).is_some())
        .ok_or_else(|| ApiError::object_not_found(id))
}

fn check_types(
    st: &SimState,
    from: ObjectType,
    to: ObjectType,
    specs: &[AssocSpec],
) -> ApiResult<Vec<u32>> {
    let mut ids = Vec::new();
    for s in specs {
        let category = s
            .association_category
            .as_deref()
            .unwrap_or("HUBSPOT_DEFINED");
        if category != "HUBSPOT_DEFINED" || st.assoc.find(from, to, s.association_type_id).is_none()
        {
            return Err(ApiError::validation(format!(
                "{category} {} is not a valid association type between {} and {}",
                s.association_type_id,
                from.type_id(),
                to.type_id()
            ))
            .sub_category("INVALID_ASSOCIATION_TYPE"));
        }
        ids.push(s.association_type_id);
    }
    Ok(ids)
}

fn default_type(st: &SimState, from: ObjectType, to: ObjectType) -> ApiResult<u32> {
    st.assoc.default_type(from, to).ok_or_else(|| {
        ApiError::validation(format!(
            "There is no default association type between {} and {}",
            from.type_id(),
            to.type_id()
        ))
    })
}

fn labels_of(st: &SimState, from: ObjectType, to: ObjectType, ids: &[u32]) -> Vec<Value> {
    ids.iter()
        .filter_map(|i| st.assoc.label_of(from, to, *i))
        .map(|l| json!(l))
        .collect()
}

fn labeled_result(
    st: &SimState,
    from: ObjectType,
    fid: u64,
    to: ObjectType,
    tid: u64,
    ids: &[u32],
) -> Value {
    json!({"fromObjectTypeId": from.type_id(), "fromObjectId": fid,
           "toObjectTypeId": to.type_id(), "toObjectId": tid,
           "labels": labels_of(st, from, to, ids)})
}

fn default_result(fid: u64, tid: u64, type_id: u32) -> Value {
    json!({"from": {"id": fid.to_string()}, "to": {"id": tid.to_string()},
           "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}})
}

fn complete(
    started: i64,
    st: &SimState,
    results: Vec<Value>,
    errors: Vec<Value>,
    ok: StatusCode,
) -> Response {
    let mut body = json!({"status": "COMPLETE", "results": results,
        "startedAt": clock::iso(started), "completedAt": clock::iso(st.now())});
    let status = if errors.is_empty() {
        ok
    } else {
        if let Value::Object(m) = &mut body {
            m.insert("numErrors".into(), json!(errors.len()));
            m.insert("errors".into(), Value::Array(errors));
        }
        StatusCode::MULTI_STATUS
    };
    (status, Json(body)).into_response()
}

/// `PUT .../{from}/{id}/associations/default/{to}/{toId}`.
pub async fn put_default(
    State(sim): State<Sim>,
    Path((from, id, to, to_id)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let mut st = lock(&sim);
    let started = st.now();
    let fid = object_id(&st, ft, &id)?;
    let tid = object_id(&st, tt, &to_id)?;
    let ty = default_type(&st, ft, tt)?;
    st.check_line_item_parent(ft, fid, tt, tid)?;
    st.assoc.add(ft, fid, tt, tid, ty);
    let r = default_result(fid, tid, ty);
    Ok(complete(started, &st, vec![r], Vec::new(), StatusCode::OK))
}

/// `PUT .../{from}/{id}/associations/{to}/{toId}` with `[{associationCategory, associationTypeId}]`:
/// replaces the labels between the pair (contract §1.7).
pub async fn put_labeled(
    State(sim): State<Sim>,
    Path((from, id, to, to_id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let specs: Vec<AssocSpec> = parse_body(&body)?;
    let mut st = lock(&sim);
    let fid = object_id(&st, ft, &id)?;
    let tid = object_id(&st, tt, &to_id)?;
    let ids = check_types(&st, ft, tt, &specs)?;
    st.check_line_item_parent(ft, fid, tt, tid)?;
    st.assoc.replace(ft, fid, tt, tid, &ids);
    let v = labeled_result(&st, ft, fid, tt, tid, &ids);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `DELETE .../{from}/{id}/associations/{to}/{toId}` removes every association of the pair.
pub async fn delete_pair(
    State(sim): State<Sim>,
    Path((from, id, to, to_id)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let mut st = lock(&sim);
    if let (Ok(fid), Ok(tid)) = (id.parse::<u64>(), to_id.parse::<u64>()) {
        st.assoc.remove_pair(ft, fid, tt, tid);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET .../{from}/{id}/associations/{to}` with `limit` (default 500) and `after`.
pub async fn list(
    State(sim): State<Sim>,
    Path((from, id, to)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let st = lock(&sim);
    let fid = object_id(&st, ft, &id)?;
    let limit = q
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(500)
        .clamp(1, 500);
    let after = q
        .iter()
        .find(|(k, _)| k == "after")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0);
    let all: Vec<(u64, Vec<u32>)> = st
        .assoc
        .list(ft, fid, tt)
        .into_iter()
        .filter(|(tid, _)| *tid >= after && st.get(tt, *tid).is_some())
        .collect();
    let results: Vec<Value> = all
        .iter()
        .take(limit)
        .map(|(tid, ids)| json!({"toObjectId": tid, "associationTypes": st.assoc.types_json(ft, tt, ids)}))
        .collect();
    let mut body = json!({"results": results});
    if let (Some((next, _)), Value::Object(m)) = (all.get(limit), &mut body) {
        m.insert(
            "paging".into(),
            json!({"next": {"after": next.to_string()}}),
        );
    }
    Ok(Json(body).into_response())
}

/// `GET /crm/associations/2026-09/{from}/{to}/labels` (contract §1.7).
pub async fn labels(
    State(sim): State<Sim>,
    Path((from, to)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let st = lock(&sim);
    let results: Vec<Value> = st
        .assoc
        .types_for(ft, tt)
        .into_iter()
        .map(|t| json!({"category": "HUBSPOT_DEFINED", "typeId": t.type_id, "label": t.label}))
        .collect();
    Ok(Json(json!({"results": results})).into_response())
}

#[derive(Debug, Deserialize)]
struct Inputs<T> {
    inputs: Vec<T>,
}

#[derive(Debug, Deserialize)]
struct PairInput {
    from: IdRef,
    to: IdRef,
    #[serde(default)]
    types: Vec<AssocSpec>,
}

#[derive(Debug, Deserialize)]
struct ArchiveInput {
    from: IdRef,
    to: Vec<IdRef>,
}

pub async fn batch_read(
    State(sim): State<Sim>,
    Path((from, to)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let input: Inputs<IdRef> = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_READ)?;
    let st = lock(&sim);
    let started = st.now();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for i in &input.inputs {
        let id = i.as_string();
        let list: Vec<Value> = id
            .parse::<u64>()
            .ok()
            .filter(|n| st.get(ft, *n).is_some())
            .map(|fid| {
                st.assoc
                    .list(ft, fid, tt)
                    .into_iter()
                    .filter(|(tid, _)| st.get(tt, *tid).is_some())
                    .map(|(tid, ids)| json!({"toObjectId": tid, "associationTypes": st.assoc.types_json(ft, tt, &ids)}))
                    .collect()
            })
            .unwrap_or_default();
        if list.is_empty() {
            errors.push(json!({"status": "error", "category": "OBJECT_NOT_FOUND",
                "message": format!("No {} is associated with {} {id}.", tt.singular(), ft.singular()),
                "context": {"fromObjectId": [id]}, "errors": [], "links": {}}));
        } else {
            results.push(json!({"from": {"id": id}, "to": list}));
        }
    }
    Ok(complete(started, &st, results, errors, StatusCode::OK))
}

pub async fn batch_create(
    State(sim): State<Sim>,
    Path((from, to)): Path<(String, String)>,
    partial: Option<axum::Extension<PartialCommit>>,
    body: Bytes,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let mut input: Inputs<PairInput> = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_CREATE)?;
    PartialCommit::truncate(partial, &mut input.inputs);
    let mut st = lock(&sim);
    let started = st.now();
    let mut planned = Vec::new();
    for i in &input.inputs {
        let fid = object_id(&st, ft, &i.from.as_string())?;
        let tid = object_id(&st, tt, &i.to.as_string())?;
        let ids = check_types(&st, ft, tt, &i.types)?;
        st.check_line_item_parent(ft, fid, tt, tid)?;
        planned.push((fid, tid, ids));
    }
    let mut results = Vec::new();
    for (fid, tid, ids) in planned {
        st.assoc.replace(ft, fid, tt, tid, &ids);
        results.push(labeled_result(&st, ft, fid, tt, tid, &ids));
    }
    Ok(complete(
        started,
        &st,
        results,
        Vec::new(),
        StatusCode::CREATED,
    ))
}

pub async fn batch_default(
    State(sim): State<Sim>,
    Path((from, to)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let input: Inputs<PairInput> = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_CREATE)?;
    let mut st = lock(&sim);
    let started = st.now();
    let ty = default_type(&st, ft, tt)?;
    let mut planned = Vec::new();
    for i in &input.inputs {
        let fid = object_id(&st, ft, &i.from.as_string())?;
        let tid = object_id(&st, tt, &i.to.as_string())?;
        st.check_line_item_parent(ft, fid, tt, tid)?;
        planned.push((fid, tid));
    }
    let mut results = Vec::new();
    for (fid, tid) in planned {
        st.assoc.add(ft, fid, tt, tid, ty);
        results.push(default_result(fid, tid, ty));
    }
    Ok(complete(started, &st, results, Vec::new(), StatusCode::OK))
}

pub async fn batch_archive(
    State(sim): State<Sim>,
    Path((from, to)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let input: Inputs<ArchiveInput> = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_CREATE)?;
    let mut st = lock(&sim);
    for i in &input.inputs {
        if let Ok(fid) = i.from.as_string().parse::<u64>() {
            for t in &i.to {
                if let Ok(tid) = t.as_string().parse::<u64>() {
                    st.assoc.remove_pair(ft, fid, tt, tid);
                }
            }
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn batch_labels_archive(
    State(sim): State<Sim>,
    Path((from, to)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let (ft, tt) = (
        ObjectType::parse_or_400(&from)?,
        ObjectType::parse_or_400(&to)?,
    );
    let input: Inputs<PairInput> = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_CREATE)?;
    let mut st = lock(&sim);
    for i in &input.inputs {
        if let (Ok(fid), Ok(tid)) = (
            i.from.as_string().parse::<u64>(),
            i.to.as_string().parse::<u64>(),
        ) {
            let ids: Vec<u32> = i.types.iter().map(|s| s.association_type_id).collect();
            st.assoc.remove_types(ft, fid, tt, tid, &ids);
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

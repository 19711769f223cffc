//! Batch create/read/update/upsert/archive (contract §2.3, §3 "Batch sizes", §4 207, §8.5).

use super::{check_batch_size, parse_body};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::faults::PartialCommit;
use crate::model::ObjectType;
use crate::routes::objects::SkipAssociations;
use crate::state::{IdRef, InlineAssoc, Selection, Sim, SimState, lock};
use crate::webhooks::ChangeSource;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// contract §3: object batch endpoints take at most 100 inputs.
pub const MAX_BATCH: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateItem {
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    associations: Vec<InlineAssoc>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateItem {
    id: Value,
    #[serde(default)]
    id_property: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Inputs<T> {
    inputs: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadBody {
    inputs: Vec<IdRef>,
    #[serde(default)]
    properties: Option<Vec<String>>,
    #[serde(default)]
    properties_with_history: Vec<String>,
    #[serde(default)]
    id_property: Option<String>,
}

fn id_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// contract §2.3: the same id twice fails the whole request with
/// "Duplicate IDs found in batch input: [..]. IDs must be unique" and `context.ids`.
fn reject_duplicates(ids: &[String]) -> ApiResult<()> {
    let mut seen = std::collections::BTreeSet::new();
    let mut dups = Vec::new();
    for id in ids {
        if !seen.insert(id.as_str()) && !dups.contains(id) {
            dups.push(id.clone());
        }
    }
    if dups.is_empty() {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "Duplicate IDs found in batch input: [{}]. IDs must be unique",
        dups.join(", ")
    ))
    .context("ids", json!(dups)))
}

fn envelope(
    started: i64,
    st: &SimState,
    results: Vec<Value>,
    errors: Vec<Value>,
    ok: StatusCode,
) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": clock::iso(started),
        "completedAt": clock::iso(st.now()),
    });
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

fn all_set() -> Selection {
    Selection {
        all_set: true,
        ..Selection::default()
    }
}

/// Runs `f` for each input. With trace ids (contract §4: 207 "only when objectWriteTraceId is
/// supplied") failures are reported per item; without, the first failure rejects the whole batch
/// and nothing is written (the state is restored). Each input's write is atomic on its own
/// (validated before anything is written), so only the inputs before a failing one need undoing:
/// a batch of one takes no snapshot (copying the whole portal per call made a single upsert
/// cost O(records)).
fn run_items<T>(
    st: &mut SimState,
    items: &[T],
    trace: impl Fn(&T) -> Option<String>,
    mut f: impl FnMut(&mut SimState, &T) -> ApiResult<Value>,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let partial = items.iter().any(|i| trace(i).is_some());
    let snapshot = (!partial && items.len() > 1).then(|| st.clone());
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        match f(st, item) {
            Ok(v) => results.push(v),
            Err(e) if partial => errors.push(e.to_standard_error(trace(item).as_deref())),
            Err(e) => {
                if let Some(s) = snapshot {
                    *st = s;
                }
                return Err(e);
            }
        }
    }
    Ok((results, errors))
}

pub async fn create(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    partial: Option<Extension<PartialCommit>>,
    skip: Option<Extension<SkipAssociations>>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let mut input: Inputs<CreateItem> = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_BATCH)?;
    PartialCommit::truncate(partial, &mut input.inputs);
    let mut st = lock(&sim);
    let started = st.now();
    // contract §2.6 "object created but association failed", for every input of the batch.
    st.skip_inline_associations = skip.is_some();
    let ran = run_items(
        &mut st,
        &input.inputs,
        |i| i.object_write_trace_id.clone(),
        |st, item| {
            let id = st.create(
                t,
                &item.properties,
                &item.associations,
                ChangeSource::Integration,
            )?;
            let obj = st
                .get(t, id)
                .cloned()
                .ok_or_else(|| ApiError::object_not_found(&id.to_string()))?;
            let mut v = st.render(&obj, &all_set());
            if let (Some(tr), Value::Object(m)) = (&item.object_write_trace_id, &mut v) {
                m.insert("objectWriteTraceId".into(), json!(tr));
            }
            Ok(v)
        },
    );
    st.skip_inline_associations = false;
    let (results, errors) = ran?;
    if let Some(Extension(SkipAssociations(Some(status)))) = skip {
        return Err(crate::faults::injected_error(status));
    }
    Ok(envelope(started, &st, results, errors, StatusCode::CREATED))
}

pub async fn read(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let input: ReadBody = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_BATCH)?;
    let ids: Vec<String> = input.inputs.iter().map(IdRef::as_string).collect();
    reject_duplicates(&ids)?;
    let st = lock(&sim);
    let started = st.now();
    let sel = Selection {
        properties: input.properties.clone(),
        with_history: input.properties_with_history.clone(),
        ..Selection::default()
    };
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for id in &ids {
        match st.resolve(t, id, input.id_property.as_deref())? {
            Some(n) => {
                if let Some(o) = st.get(t, n) {
                    results.push(st.render(o, &sel));
                }
            }
            None => missing.push(id.clone()),
        }
    }
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![json!({
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": format!("Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.", t.singular().to_uppercase()),
            "context": {"ids": missing},
            "errors": [],
            "links": {},
        })]
    };
    Ok(envelope(started, &st, results, errors, StatusCode::OK))
}

pub async fn update(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    partial: Option<Extension<PartialCommit>>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let mut input: Inputs<UpdateItem> = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_BATCH)?;
    reject_duplicates(
        &input
            .inputs
            .iter()
            .map(|i| id_string(&i.id))
            .collect::<Vec<_>>(),
    )?;
    PartialCommit::truncate(partial, &mut input.inputs);
    let mut st = lock(&sim);
    for item in &input.inputs {
        if let Some(p) = item.id_property.as_deref().filter(|p| *p != "hs_object_id") {
            st.check_id_property(t, p)?;
        }
    }
    let started = st.now();
    let (results, errors) = run_items(
        &mut st,
        &input.inputs,
        |i| i.object_write_trace_id.clone(),
        |st, item| {
            let id = id_string(&item.id);
            let n = st
                .resolve(t, &id, item.id_property.as_deref())?
                .ok_or_else(|| ApiError::object_not_found(&id))?;
            st.update(t, n, &item.properties, ChangeSource::Integration)?;
            let obj = st
                .get(t, n)
                .cloned()
                .ok_or_else(|| ApiError::object_not_found(&id))?;
            let mut v = st.render(&obj, &all_set());
            if let (Some(tr), Value::Object(m)) = (&item.object_write_trace_id, &mut v) {
                m.insert("objectWriteTraceId".into(), json!(tr));
            }
            Ok(v)
        },
    )?;
    Ok(envelope(started, &st, results, errors, StatusCode::OK))
}

/// contract §2.3: `idProperty` required per input and must be unique (or contact `email`);
/// results carry `new`.
pub async fn upsert(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    partial: Option<Extension<PartialCommit>>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let mut input: Inputs<UpdateItem> = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_BATCH)?;
    reject_duplicates(
        &input
            .inputs
            .iter()
            .map(|i| id_string(&i.id))
            .collect::<Vec<_>>(),
    )?;
    PartialCommit::truncate(partial, &mut input.inputs);
    let mut st = lock(&sim);
    for item in &input.inputs {
        let prop = item.id_property.as_deref().unwrap_or("hs_object_id");
        st.check_id_property(t, prop)?;
    }
    let started = st.now();
    let (results, errors) = run_items(
        &mut st,
        &input.inputs,
        |i| i.object_write_trace_id.clone(),
        |st, item| {
            let id = id_string(&item.id);
            let prop = item.id_property.clone().unwrap_or_default();
            let (n, is_new) = match st.find_by_value(t, &prop, &id) {
                Some(n) => {
                    st.update(t, n, &item.properties, ChangeSource::Integration)?;
                    (n, false)
                }
                None => {
                    let mut props = item.properties.clone();
                    props.insert(prop.clone(), json!(id));
                    (st.create(t, &props, &[], ChangeSource::Integration)?, true)
                }
            };
            let obj = st
                .get(t, n)
                .cloned()
                .ok_or_else(|| ApiError::object_not_found(&id))?;
            let mut v = st.render(&obj, &all_set());
            if let Value::Object(m) = &mut v {
                m.insert("new".into(), json!(is_new));
                if let Some(tr) = &item.object_write_trace_id {
                    m.insert("objectWriteTraceId".into(), json!(tr));
                }
            }
            Ok(v)
        },
    )?;
    Ok(envelope(started, &st, results, errors, StatusCode::OK))
}

pub async fn archive(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let input: Inputs<IdRef> = parse_body(&body)?;
    check_batch_size(input.inputs.len(), MAX_BATCH)?;
    let ids: Vec<String> = input.inputs.iter().map(IdRef::as_string).collect();
    reject_duplicates(&ids)?;
    let mut st = lock(&sim);
    // As in `run_items`: one archive is atomic on its own.
    let snapshot = (ids.len() > 1).then(|| st.clone());
    for id in &ids {
        if let Ok(n) = id.parse::<u64>()
            && let Err(e) = st.archive(t, n, ChangeSource::Integration)
        {
            if let Some(snapshot) = snapshot {
                *st = snapshot;
            }
            return Err(e);
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

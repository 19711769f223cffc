//! `POST /{type}/search` (contract §2.5, §6, §8.1, §8.4).

use super::parse_body;
use crate::error::ApiResult;
use crate::model::ObjectType;
use crate::search::{self, SearchRequest};
use crate::state::{Selection, Sim, lock};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn search(
    State(sim): State<Sim>,
    Path(ty): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = ObjectType::parse_or_400(&ty)?;
    let req: SearchRequest = parse_body(&body)?;
    req.validate()?;
    let mut st = lock(&sim);
    let now = st.now();
    let lag = i64::try_from(st.config.search_lag_ms).unwrap_or(i64::MAX / 4);
    // contract §8.1: search reads a snapshot trailing writes by the configured lag.
    let docs = st.search.visible(t, now, lag);
    let assoc = st.assoc.clone();
    let lookup = move |from: ObjectType, id: u64, to: ObjectType| -> Vec<u64> {
        assoc
            .list(from, id, to)
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    };
    let (total, page, next) = search::run(&st.registry, t, docs, &req, &lookup)?;
    let sel = Selection {
        properties: req.properties.clone(),
        ..Selection::default()
    };
    let results: Vec<Value> = page.iter().map(|o| st.render(o, &sel)).collect();
    let mut body = json!({"total": total, "results": results});
    if let (Some(n), Value::Object(m)) = (next, &mut body) {
        m.insert("paging".into(), json!({"next": {"after": n.to_string()}}));
    }
    Ok(Json(body).into_response())
}

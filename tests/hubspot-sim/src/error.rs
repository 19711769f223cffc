//! HubSpot error bodies (contract §4) and the simulator's own startup errors.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

static CORRELATION: AtomicU64 = AtomicU64::new(1);

/// UUID-shaped correlation ids, reproducible within one process (contract §4 `correlationId`).
pub fn correlation_id() -> String {
    let n = CORRELATION.fetch_add(1, Ordering::Relaxed);
    let mut rng = crate::rng::SimRng::new(n);
    rng.uuid()
}

/// Errors starting or running the simulator process.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("state file {}: {reason} (delete it to start from an empty portal)", path.display())]
    State {
        path: std::path::PathBuf,
        reason: String,
    },
}

/// An HTTP error in HubSpot's shape:
/// `{status:"error", message, correlationId, category, subCategory?, errors?, context?, links?}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {body:?}")]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Map<String, Value>,
    pub headers: Vec<(String, String)>,
}

impl ApiError {
    /// contract §4 standard shape.
    pub fn new(status: StatusCode, category: &str, message: impl Into<String>) -> Self {
        let mut body = Map::new();
        body.insert("status".into(), json!("error"));
        body.insert("message".into(), json!(message.into()));
        body.insert("correlationId".into(), json!(correlation_id()));
        body.insert("category".into(), json!(category));
        ApiError {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// A body with arbitrary fields (used for the 429 shapes of contract §3.1, which carry
    /// `errorType`/`policyName` instead of `category`).
    pub fn raw(status: StatusCode, body: Map<String, Value>) -> Self {
        ApiError {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    /// contract §4: 404 `OBJECT_NOT_FOUND` ("Object not found. objectId are usually numeric.").
    pub fn object_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "Object not found.  objectId are usually numeric.",
        )
        .context("id", json!([id]))
    }

    pub fn sub_category(mut self, sub: &str) -> Self {
        self.body.insert("subCategory".into(), json!(sub));
        self
    }

    pub fn error_detail(mut self, detail: Value) -> Self {
        let entry = self
            .body
            .entry("errors")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(detail);
        }
        self
    }

    pub fn context(mut self, key: &str, value: Value) -> Self {
        let entry = self
            .body
            .entry("context")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(key.into(), value);
        }
        self
    }

    pub fn link(mut self, key: &str, url: &str) -> Self {
        let entry = self
            .body
            .entry("links")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(key.into(), json!(url));
        }
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn message(&self) -> &str {
        self.body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The batch 207 per-item `StandardError` (contract §4: required `status`, `category`,
    /// `message`, `errors`, `context`, `links`).
    pub fn to_standard_error(&self, trace_id: Option<&str>) -> Value {
        let mut body = self.body.clone();
        body.remove("correlationId");
        body.entry("errors").or_insert_with(|| json!([]));
        body.entry("links").or_insert_with(|| json!({}));
        let ctx = body.entry("context").or_insert_with(|| json!({}));
        if let (Some(trace), Value::Object(map)) = (trace_id, ctx) {
            map.insert("objectWriteTraceId".into(), json!([trace]));
        }
        Value::Object(body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(Value::Object(self.body))).into_response();
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                axum::http::HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                resp.headers_mut().insert(name, value);
            }
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

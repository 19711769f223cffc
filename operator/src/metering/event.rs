//! Usage events as `POST /v1/usage` receives them: CloudEvents 1.0 in structured JSON mode, one
//! event (`application/cloudevents+json` or `application/json`) or a batch
//! (`application/cloudevents-batch+json`, a JSON array). Pure: the body, the caller's tenant,
//! the catalog's meters and the time in; checked events or the first problem out, naming the
//! event's index and field.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

use super::late::LateEvent;
use crate::api::listing::ListingSpec;
use crate::api::metered::Aggregation;

/// Most events in one request (a larger batch is split by the sender).
pub const MAX_BATCH: usize = 1000;
/// Most bytes of one event's `data`, serialized.
pub const MAX_DATA_BYTES: usize = 4096;
/// Most characters of `id` and `source`.
const MAX_ID_CHARS: usize = 256;
/// How far in the future an event's `time` may be (senders' clocks drift).
const FUTURE_SLACK: SignedDuration = SignedDuration::from_secs(300);

/// The batch media type of the CloudEvents JSON format.
pub const BATCH_MEDIA_TYPE: &str = "application/cloudevents-batch+json";

/// One checked usage event. Deduplicated by (tenant, source, id): CloudEvents makes
/// (source, id) unique, and scoping it to the tenant keeps one tenant's ids from hiding
/// another's events.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageEvent {
    pub tenant: String,
    pub source: String,
    pub id: String,
    /// The meter: the event's `type`.
    pub meter: String,
    /// When the usage happened (`time`, or when it was received).
    pub time: Timestamp,
    /// The event's `data` (an object, or null).
    pub data: Value,
}

/// What each meter's plans read from its events' data: the properties that must be numbers
/// (Sum, Max) and those that must be present (UniqueCount).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterCatalog {
    meters: BTreeMap<String, MeterNeeds>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MeterNeeds {
    numbers: BTreeSet<String>,
    present: BTreeSet<String>,
}

impl MeterCatalog {
    /// The meters of every plan of `listings`.
    pub fn of<'a>(listings: impl IntoIterator<Item = &'a ListingSpec>) -> MeterCatalog {
        let mut meters: BTreeMap<String, MeterNeeds> = BTreeMap::new();
        for plan in listings.into_iter().flat_map(|l| &l.plans) {
            let Some(metered) = &plan.metered else {
                continue;
            };
            let needs = meters
                .entry(metered.meter.as_str().to_string())
                .or_default();
            if let Some(property) = &metered.value_property {
                match metered.aggregation {
                    Aggregation::Sum | Aggregation::Max => {
                        needs.numbers.insert(property.clone());
                    }
                    Aggregation::UniqueCount => {
                        needs.present.insert(property.clone());
                    }
                    Aggregation::Count => {}
                }
            }
        }
        MeterCatalog { meters }
    }

    pub fn contains(&self, meter: &str) -> bool {
        self.meters.contains_key(meter)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.meters.keys().map(String::as_str)
    }
}

/// Why a request's events are refused: the status, and which event and field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventProblem {
    /// 400 (malformed), 403 (another tenant), 413 (too many), 415 (media type), 422 (invalid).
    pub status: u16,
    pub code: &'static str,
    /// The event's index in the batch (0 for a single event); `None` for the whole body.
    pub index: Option<usize>,
    /// The field, e.g. `time` or `data.tokens`; empty for the whole event or body.
    pub field: String,
    pub message: String,
    /// Every event of a month already reported to billing ([`super::late`]), when that is why.
    pub late: Vec<LateEvent>,
}

impl EventProblem {
    fn body(status: u16, code: &'static str, message: String) -> EventProblem {
        EventProblem {
            status,
            code,
            index: None,
            field: String::new(),
            message,
            late: Vec::new(),
        }
    }

    fn event(index: usize, field: &str, status: u16, code: &'static str, why: String) -> Self {
        EventProblem {
            status,
            code,
            index: Some(index),
            field: field.to_string(),
            message: format!("event {index}: {field}: {why}"),
            late: Vec::new(),
        }
    }
}

/// Whether `content_type` says a batch (`Some(true)`), a single event (`Some(false)`), or
/// neither (`None`: 415).
pub fn is_batch(content_type: Option<&str>) -> Option<bool> {
    let media = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        BATCH_MEDIA_TYPE => Some(true),
        "application/cloudevents+json" | "application/json" => Some(false),
        _ => None,
    }
}

/// The events of a request body. `default_tenant` is the caller's own tenant (a backend key's):
/// an event's `subject`, when given, names its tenant and must be that one; a caller without a
/// tenant of its own (a token) must give `subject` on every event.
pub fn parse_events(
    body: &[u8],
    content_type: Option<&str>,
    default_tenant: Option<&str>,
    meters: &MeterCatalog,
    now: Timestamp,
) -> Result<Vec<UsageEvent>, EventProblem> {
    let batch = is_batch(content_type).ok_or_else(|| {
        EventProblem::body(
            415,
            "UnsupportedMediaType",
            format!(
                "send application/cloudevents+json (one event) or {BATCH_MEDIA_TYPE} (a JSON array)"
            ),
        )
    })?;
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        EventProblem::body(400, "MalformedJson", format!("the body is not JSON: {e}"))
    })?;
    let raw = match (batch, value) {
        (true, Value::Array(events)) => events,
        (true, _) => {
            return Err(EventProblem::body(
                400,
                "NotABatch",
                format!("a {BATCH_MEDIA_TYPE} body is a JSON array of events"),
            ));
        }
        (false, Value::Array(_)) => {
            return Err(EventProblem::body(
                400,
                "UnexpectedBatch",
                format!("a JSON array is a batch: send it as {BATCH_MEDIA_TYPE}"),
            ));
        }
        (false, event) => vec![event],
    };
    if raw.is_empty() {
        return Err(EventProblem::body(
            400,
            "EmptyBatch",
            "the batch has no events".into(),
        ));
    }
    if raw.len() > MAX_BATCH {
        return Err(EventProblem::body(
            413,
            "BatchTooLarge",
            format!(
                "{} events in one request; send at most {MAX_BATCH}",
                raw.len()
            ),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, event)| one_event(i, event, default_tenant, meters, now))
        .collect()
}

fn one_event(
    i: usize,
    event: Value,
    default_tenant: Option<&str>,
    meters: &MeterCatalog,
    now: Timestamp,
) -> Result<UsageEvent, EventProblem> {
    let invalid =
        |field: &str, why: String| EventProblem::event(i, field, 422, "InvalidEvent", why);
    let Value::Object(mut event) = event else {
        return Err(EventProblem::event(
            i,
            "",
            400,
            "MalformedEvent",
            "an event is a JSON object".into(),
        ));
    };
    match event.get("specversion").and_then(Value::as_str) {
        Some("1.0") => {}
        Some(other) => {
            return Err(invalid(
                "specversion",
                format!("{other:?} is not supported; send \"1.0\""),
            ));
        }
        None => return Err(invalid("specversion", "required (\"1.0\")".into())),
    }
    let id = required_text(&event, "id").map_err(|why| invalid("id", why))?;
    let source = required_text(&event, "source").map_err(|why| invalid("source", why))?;
    let meter = required_text(&event, "type").map_err(|why| invalid("type", why))?;
    if !meters.contains(&meter) {
        let known: Vec<&str> = meters.names().collect();
        return Err(invalid(
            "type",
            format!(
                "no plan meters {meter:?}; the catalog's meters are {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let tenant = match (event.get("subject"), default_tenant) {
        (None | Some(Value::Null), Some(own)) => own.to_string(),
        (None | Some(Value::Null), None) => {
            return Err(invalid(
                "subject",
                "required: the tenant the usage belongs to".into(),
            ));
        }
        (Some(Value::String(subject)), Some(own)) if subject != own => {
            return Err(EventProblem::event(
                i,
                "subject",
                403,
                "OtherTenant",
                format!("names tenant {subject:?}; this key reports usage for {own:?} only"),
            ));
        }
        (Some(Value::String(subject)), _) if !subject.is_empty() => subject.clone(),
        (Some(_), _) => return Err(invalid("subject", "a tenant name (a string)".into())),
    };
    let time = match event.get("time") {
        None | Some(Value::Null) => now,
        Some(Value::String(text)) => text
            .parse::<Timestamp>()
            .map_err(|e| invalid("time", format!("{text:?} is not an RFC 3339 time: {e}")))?,
        Some(_) => return Err(invalid("time", "an RFC 3339 time (a string)".into())),
    };
    if time > now.checked_add(FUTURE_SLACK).unwrap_or(Timestamp::MAX) {
        return Err(invalid(
            "time",
            format!("{time} is in the future (now is {now})"),
        ));
    }
    let data = match event.remove("data") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Object(data)) => Value::Object(data),
        Some(_) => {
            return Err(invalid(
                "data",
                "an object of the usage's properties".into(),
            ));
        }
    };
    if serde_json::to_vec(&data).map_or(0, |b| b.len()) > MAX_DATA_BYTES {
        return Err(invalid(
            "data",
            format!("larger than {MAX_DATA_BYTES} bytes"),
        ));
    }
    check_needs(&meters.meters[&meter], data.as_object())
        .map_err(|(field, why)| invalid(&format!("data.{field}"), why))?;
    Ok(UsageEvent {
        tenant,
        source,
        id,
        meter,
        time,
        data,
    })
}

fn required_text(event: &Map<String, Value>, field: &str) -> Result<String, String> {
    match event.get(field) {
        Some(Value::String(text)) if !text.is_empty() && text.chars().count() <= MAX_ID_CHARS => {
            Ok(text.clone())
        }
        Some(Value::String(text)) if !text.is_empty() => {
            Err(format!("longer than {MAX_ID_CHARS} characters"))
        }
        Some(Value::String(_)) => Err("must not be empty".into()),
        Some(_) => Err("must be a string".into()),
        None => Err("required".into()),
    }
}

fn check_needs(
    needs: &MeterNeeds,
    data: Option<&Map<String, Value>>,
) -> Result<(), (String, String)> {
    let get = |p: &String| data.and_then(|d| d.get(p));
    for property in &needs.numbers {
        match get(property) {
            Some(Value::Number(n)) if n.as_f64().is_some_and(|v| v >= 0.0) => {}
            Some(_) => {
                return Err((property.clone(), "must be a non-negative number".into()));
            }
            None => return Err((property.clone(), "required by this meter".into())),
        }
    }
    for property in &needs.present {
        match get(property) {
            Some(Value::String(_) | Value::Number(_)) => {}
            Some(_) => return Err((property.clone(), "must be a string or a number".into())),
            None => return Err((property.clone(), "required by this meter".into())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

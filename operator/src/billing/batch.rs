//! Pure planning and result mapping of coalesced batch calls (contract §2.3, §3 "Batch sizes",
//! §4 207, §8.5): which inputs go into one request, and which per-input outcome goes back to which
//! caller. The I/O around it lives in `coalesce.rs`.
//!
//! Rules:
//! - callers asking for the same key (the same tenant's company, the same id) share one input:
//!   HubSpot rejects a whole batch that names an id twice (contract §2.3);
//! - results and 207 errors are matched to inputs by `objectWriteTraceId` (the input's position
//!   in the request), and by the input's key when HubSpot does not echo the trace id;
//! - an input with neither a result nor an error is *unanswered*: for a create that is ambiguous
//!   (it may have committed), never a reason to create again.

use super::error::{ApiErrorBody, HubSpotError};
use super::wire::ObjectJson;
use serde_json::Value;
use std::collections::BTreeMap;

/// Which callers share which input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    /// For each input to send, the caller whose input it is (the last caller with that key, so
    /// the newest properties win).
    pub sent: Vec<usize>,
    /// For each caller, the position of its input among `sent`.
    pub of_caller: Vec<usize>,
}

/// Groups callers by key, keeping the order of first appearance.
pub fn dedup<K: Ord>(keys: &[K]) -> Dedup {
    let mut position: BTreeMap<&K, usize> = BTreeMap::new();
    let mut sent = Vec::new();
    let mut of_caller = Vec::with_capacity(keys.len());
    for (caller, key) in keys.iter().enumerate() {
        let at = *position.entry(key).or_insert_with(|| {
            sent.push(caller);
            sent.len() - 1
        });
        sent[at] = caller;
        of_caller.push(at);
    }
    Dedup { sent, of_caller }
}

/// The trace id of the input at `position` of a request.
pub fn trace_id(position: usize) -> String {
    position.to_string()
}

/// What HubSpot said about one input of a batch write.
#[derive(Debug, Clone)]
pub enum InputOutcome {
    Done(ObjectJson),
    Failed(ApiErrorBody),
    Unanswered,
}

/// Matches results and 207 `errors[]` to `n` inputs: by `objectWriteTraceId`, else by
/// `key_of(result)` (the position of the input it answers), else, for a single input, the only
/// result.
pub fn match_outcomes(
    n: usize,
    results: Vec<ObjectJson>,
    errors: &[Value],
    key_of: impl Fn(&ObjectJson) -> Option<usize>,
) -> Vec<InputOutcome> {
    let mut out = vec![InputOutcome::Unanswered; n];
    let single = n == 1 && results.len() == 1;
    for r in results {
        let at = r
            .object_write_trace_id
            .as_deref()
            .and_then(|t| t.parse::<usize>().ok())
            .filter(|i| *i < n)
            .or_else(|| key_of(&r))
            .or(single.then_some(0));
        if let Some(i) = at.filter(|i| *i < n) {
            out[i] = InputOutcome::Done(r);
        }
    }
    for e in errors {
        let body = ApiErrorBody::parse(e.to_string().as_bytes());
        for i in error_trace_positions(e, n) {
            if matches!(out[i], InputOutcome::Unanswered) {
                out[i] = InputOutcome::Failed(body.clone());
            }
        }
    }
    out
}

/// `context.objectWriteTraceId` of one 207 error (a list of trace ids, contract §4).
fn error_trace_positions(error: &Value, n: usize) -> Vec<usize> {
    let ids = &error["context"]["objectWriteTraceId"];
    let list: Vec<&Value> = match ids {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    };
    list.into_iter()
        .filter_map(|v| match v {
            Value::String(s) => s.parse::<usize>().ok(),
            Value::Number(x) => x.as_u64().map(|x| x as usize),
            _ => None,
        })
        .filter(|i| *i < n)
        .collect()
}

/// The error of one failed input, by its `category` (contract §4 table).
pub fn input_error(op: &str, body: ApiErrorBody) -> HubSpotError {
    let status = match body.category.as_deref() {
        Some("OBJECT_NOT_FOUND") => 404,
        Some("CONFLICT" | "OBJECT_ALREADY_EXISTS") => 409,
        Some("VALIDATION_ERROR" | "INVALID_PARAMS" | "PROPERTY_DOESNT_EXIST") => 400,
        _ => {
            return HubSpotError::Retryable {
                op: op.to_string(),
                status: None,
                body: Box::new(body),
                retry_after: None,
            };
        }
    };
    HubSpotError::from_status(op, status, body)
}

/// Whether a whole batch was refused for its content (nothing written, contract §2.3 / §4), so
/// its inputs may be sent again one by one, and one bad input cannot hold up the others.
pub fn refused_as_a_whole(e: &HubSpotError, inputs: usize) -> bool {
    inputs > 1
        && matches!(
            e,
            HubSpotError::Validation { .. }
                | HubSpotError::Conflict { .. }
                | HubSpotError::NotFound { .. }
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> ObjectJson {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn dedup_shares_one_input_per_key_and_keeps_the_last_caller() {
        let d = dedup(&["acme", "beta", "acme", "gamma", "beta"]);
        assert_eq!(d.sent, vec![2, 4, 3]);
        assert_eq!(d.of_caller, vec![0, 1, 0, 2, 1]);
        let none: [&str; 0] = [];
        assert_eq!(dedup(&none).sent, Vec::<usize>::new());
    }

    #[test]
    fn results_and_207_errors_are_matched_by_trace_id_in_any_order() {
        let results = vec![
            obj(json!({"id": "12", "objectWriteTraceId": "2"})),
            obj(json!({"id": "10", "objectWriteTraceId": "0"})),
        ];
        let errors = vec![json!({"status": "error", "category": "VALIDATION_ERROR",
            "message": "Property values were not valid", "context": {"objectWriteTraceId": ["1"]}})];
        let out = match_outcomes(4, results, &errors, |_| None);
        assert!(matches!(&out[0], InputOutcome::Done(o) if o.id == "10"));
        assert!(
            matches!(&out[1], InputOutcome::Failed(b) if b.category.as_deref() == Some("VALIDATION_ERROR"))
        );
        assert!(matches!(&out[2], InputOutcome::Done(o) if o.id == "12"));
        // Neither a result nor an error: unanswered, which for a create means "may exist".
        assert!(matches!(out[3], InputOutcome::Unanswered));
    }

    #[test]
    fn without_trace_ids_results_match_by_key_or_as_the_only_answer() {
        let results = vec![
            obj(json!({"id": "7", "properties": {"mkt_subscription_uid": "u-b"}})),
            obj(json!({"id": "6", "properties": {"mkt_subscription_uid": "u-a"}})),
        ];
        let keys = ["u-a", "u-b"];
        let out = match_outcomes(2, results, &[], |o| {
            let v = o.prop("mkt_subscription_uid")?;
            keys.iter().position(|k| *k == v)
        });
        assert!(matches!(&out[0], InputOutcome::Done(o) if o.id == "6"));
        assert!(matches!(&out[1], InputOutcome::Done(o) if o.id == "7"));
        let out = match_outcomes(1, vec![obj(json!({"id": "5"}))], &[], |_| None);
        assert!(matches!(&out[0], InputOutcome::Done(o) if o.id == "5"));
        // Out-of-range trace ids and unknown results answer nobody.
        let out = match_outcomes(
            2,
            vec![obj(json!({"id": "5", "objectWriteTraceId": "9"}))],
            &[json!({"context": {"objectWriteTraceId": "7"}})],
            |_| None,
        );
        assert!(out.iter().all(|o| matches!(o, InputOutcome::Unanswered)));
    }

    #[test]
    fn a_result_wins_over_an_error_naming_the_same_input() {
        let out = match_outcomes(
            1,
            vec![obj(json!({"id": "5", "objectWriteTraceId": "0"}))],
            &[json!({"category": "CONFLICT", "context": {"objectWriteTraceId": ["0"]}})],
            |_| None,
        );
        assert!(matches!(&out[0], InputOutcome::Done(_)));
    }

    #[test]
    fn input_errors_map_by_category() {
        let body = |c: &str| ApiErrorBody {
            category: Some(c.into()),
            ..ApiErrorBody::default()
        };
        assert_eq!(
            input_error("x", body("OBJECT_NOT_FOUND")).category(),
            "not_found"
        );
        assert_eq!(input_error("x", body("CONFLICT")).category(), "conflict");
        assert_eq!(
            input_error("x", body("VALIDATION_ERROR")).category(),
            "validation"
        );
        assert_eq!(input_error("x", body("SOMETHING")).category(), "retryable");
        let v = input_error("x", body("VALIDATION_ERROR"));
        assert!(refused_as_a_whole(&v, 2));
        assert!(!refused_as_a_whole(&v, 1));
        assert!(!refused_as_a_whole(
            &HubSpotError::AmbiguousAfterCommit {
                op: "x".into(),
                status: Some(502)
            },
            5
        ));
    }
}

//! Whether a server-side apply would change anything: the pure decision that lets reconcilers
//! compare what they want with their cache and write only what differs, so a restarted
//! operator's pass over objects it made already writes nothing.

use kube::Resource;
use serde::Serialize;

/// Whether `desired` must be applied over `live` (the cached object): it is missing, being
/// deleted, or some field `desired` sets does not hold its value in `live` (see [`is_applied`]).
pub fn needs_apply<K: Resource + Serialize>(live: Option<&K>, desired: &K) -> bool {
    let Some(live) = live else {
        return true;
    };
    if live.meta().deletion_timestamp.is_some() {
        return true;
    }
    match (serde_json::to_value(live), serde_json::to_value(desired)) {
        (Ok(live), Ok(desired)) => !is_applied(&live, &desired),
        // Unreachable for API types; applying is always safe.
        _ => true,
    }
}

/// Whether applying `desired` would change nothing in `live` (both as JSON): every field
/// `desired` sets holds the same value in `live`. Objects may hold more fields (the server's
/// defaults, other writers' labels); lists have the same length, item by item. An empty value
/// (`""`, `[]`, `{}`) is what the server leaves out of what it stores and returns (`omitempty`):
/// a ServiceAccount subject's `apiGroup: ""`, a binding's `subjects: []` when nobody holds it.
pub fn is_applied(live: &serde_json::Value, desired: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (live, desired) {
        (Value::Object(live), Value::Object(desired)) => {
            desired.iter().all(|(key, want)| match live.get(key) {
                Some(have) => is_applied(have, want),
                None => is_empty(want),
            })
        }
        (Value::Array(live), Value::Array(desired)) => {
            live.len() == desired.len() && live.iter().zip(desired).all(|(l, d)| is_applied(l, d))
        }
        (live, desired) => live == desired,
    }
}

/// A value the server does not store: `omitempty` drops it.
fn is_empty(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests;

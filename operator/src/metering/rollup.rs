//! Running totals per tenant × meter × period (the rollup), kept by the stores as events are
//! recorded, so neither recording nor reading totals costs more as a period's events pile up:
//! one row per period for the event count, and one per top-level property of the events' data
//! with its sum and max (numbers only) and its number of distinct values (kept in a table of
//! the values seen). Only properties a plan could read are rolled up (the catalog's
//! `valueProperty` pattern). Pure: what one batch adds; [`super::sqlite`] applies it, and
//! [`super::postgres`] does the same in SQL.

use std::collections::BTreeMap;

use serde_json::Value;

/// The rollup row of the events themselves (no property is named so: see [`is_rolled_up`]).
pub const EVENTS_ROW: &str = "";

/// Whether a data property is rolled up: a plain identifier, as `valueProperty` must be.
pub fn is_rolled_up(property: &str) -> bool {
    property.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && property
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What a batch adds to one rollup row.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RollupDelta {
    pub count: u64,
    pub sum: f64,
    pub max: Option<f64>,
}

/// A rollup row's key: tenant, meter, period key, property ([`EVENTS_ROW`] for the count).
pub type RollupKey = (String, String, i64, String);

/// The rolled-up properties of one event's `data`, each with its value as the distinct-values
/// table keeps it (numbers canonical, so 1 and 1.0 are one value; anything else as JSON) and
/// its number, if it is one. Nulls are not values.
pub fn rolled_values(data: &Value) -> Vec<(&str, String, Option<f64>)> {
    let Some(object) = data.as_object() else {
        return Vec::new();
    };
    object
        .iter()
        .filter(|(property, value)| is_rolled_up(property) && !value.is_null())
        .map(|(property, value)| match value.as_f64() {
            Some(number) => (property.as_str(), number.to_string(), Some(number)),
            None => (property.as_str(), value.to_string(), None),
        })
        .collect()
}

/// The deltas of a batch of newly recorded events, given as (tenant, meter, period key, data):
/// the event count, and each property's sum and max. (Distinct values are counted as they are
/// inserted, by the store.)
pub fn batch_deltas<'a>(
    events: impl IntoIterator<Item = (&'a str, &'a str, i64, &'a Value)>,
) -> BTreeMap<RollupKey, RollupDelta> {
    let mut deltas: BTreeMap<RollupKey, RollupDelta> = BTreeMap::new();
    for (tenant, meter, period, data) in events {
        let key = |property: &str| {
            (
                tenant.to_string(),
                meter.to_string(),
                period,
                property.to_string(),
            )
        };
        deltas.entry(key(EVENTS_ROW)).or_default().count += 1;
        for (property, _, number) in rolled_values(data) {
            let delta = deltas.entry(key(property)).or_default();
            if let Some(number) = number {
                delta.sum += number;
                delta.max = Some(delta.max.map_or(number, |m| m.max(number)));
            }
        }
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_batch_adds_counts_sums_and_maxima_per_row() {
        let a = json!({"tokens": 100, "user": "ana"});
        let b = json!({"tokens": 250.5, "user": null, "bad-key": 3});
        let c = Value::Null;
        let deltas = batch_deltas([
            ("t", "llm", 1, &a),
            ("t", "llm", 1, &b),
            ("t", "llm", 1, &c),
            ("t", "llm", 2, &a),
        ]);
        let row = |period, property: &str| {
            deltas[&(
                "t".to_string(),
                "llm".to_string(),
                period,
                property.to_string(),
            )]
        };
        assert_eq!(row(1, EVENTS_ROW).count, 3);
        assert_eq!(row(2, EVENTS_ROW).count, 1);
        assert_eq!(
            (row(1, "tokens").sum, row(1, "tokens").max),
            (350.5, Some(250.5))
        );
        assert_eq!((row(1, "user").sum, row(1, "user").max), (0.0, None));
        assert_eq!(deltas.len(), 6, "{deltas:?}");
    }

    #[test]
    fn values_are_canonical_and_only_identifiers_count() {
        let data = json!({"n": 1.0, "s": "1", "o": {"x": 1}, "": 2, "z": null});
        let mut values: Vec<_> = rolled_values(&data)
            .into_iter()
            .map(|(p, v, _)| (p, v))
            .collect();
        values.sort();
        assert_eq!(
            values,
            [
                ("n", "1".to_string()),
                ("o", "{\"x\":1}".to_string()),
                ("s", "\"1\"".to_string())
            ]
        );
        assert_eq!(rolled_values(&json!({"n": 1}))[0].1, "1");
        assert!(is_rolled_up("_x9") && !is_rolled_up("9x") && !is_rolled_up("a.b"));
    }
}

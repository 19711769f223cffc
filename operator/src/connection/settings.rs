//! A tenant's connection settings: read from its Secret, checked against the WizardConfig's
//! `connectionSchema`, and kept with the knowledge of which ones are secret.
//!
//! Pure: no I/O. Nothing here ever puts a secret setting's value into an error or a `Debug`
//! string.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use k8s_openapi::ByteString;
use serde_json::{Map, Number, Value};

use super::redact::{REDACTED, redact};
use crate::api::WizardConfigSpec;

/// Validated connection settings, by name. `Debug` shows secret values as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionSettings {
    values: BTreeMap<String, String>,
    secret_names: BTreeSet<String>,
}

impl ConnectionSettings {
    /// Settings as given, without validation (see [`validate_settings`] for a tenant's Secret).
    /// `secret_names` lists the settings whose values are secret, whether set or not.
    pub fn new<K, V, S>(
        values: impl IntoIterator<Item = (K, V)>,
        secret_names: impl IntoIterator<Item = S>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
        S: Into<String>,
    {
        Self {
            values: values
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            secret_names: secret_names.into_iter().map(Into::into).collect(),
        }
    }

    /// The value of a setting, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// True if the setting is one of the WizardConfig's `secretFields`.
    pub fn is_secret(&self, name: &str) -> bool {
        self.secret_names.contains(name)
    }

    /// Names of the settings that have a value, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Values of the secret settings that are set.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.values
            .iter()
            .filter(|(name, _)| self.is_secret(name))
            .map(|(_, value)| value.as_str())
    }

    /// `text` with every secret value replaced by `<redacted>`; use it on any text that may
    /// quote what was sent (library errors, server responses) before showing or logging it.
    pub fn redact(&self, text: &str) -> String {
        redact(text, self.secret_values())
    }
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.values {
            if self.is_secret(name) {
                map.entry(name, &REDACTED);
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

/// One problem with one connection setting. `reason` never quotes a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// The setting's name (the Secret key, i.e. the schema property); empty when the problem is
    /// about the settings as a whole.
    pub setting: String,
    /// What is wrong, e.g. `is required` or `must match pattern ^[0-9]+$`.
    pub reason: String,
}

impl fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.setting.is_empty() {
            write!(f, "connection settings: {}", self.reason)
        } else {
            write!(f, "connection setting {:?}: {}", self.setting, self.reason)
        }
    }
}

/// The connection settings do not satisfy the WizardConfig's `connectionSchema`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join(.problems))]
pub struct SettingsError {
    /// Every problem found, ordered by setting name.
    pub problems: Vec<SettingProblem>,
}

fn join(problems: &[SettingProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks a tenant's Secret `data` against the wizard's `connectionSchema` and returns the
/// settings.
///
/// - Values must be UTF-8. A Secret only holds strings, so a value whose property is typed
///   `integer`, `number` or `boolean` (and not also `string`) is parsed into that JSON type
///   first; if it does not parse it stays a string and the schema reports the type.
/// - Keys that are not schema properties are ignored, unless the schema constrains them itself
///   (`additionalProperties`, `patternProperties` or `unevaluatedProperties`).
/// - A property absent from the Secret that has a scalar `default` in the schema takes it.
/// - `format` is asserted (e.g. `hostname`, `uri`), not just annotated.
pub fn validate_settings(
    wizard: &WizardConfigSpec,
    data: &BTreeMap<String, ByteString>,
) -> Result<ConnectionSettings, SettingsError> {
    let schema = Value::Object(
        wizard
            .connection_schema
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|error| SettingsError {
            problems: vec![SettingProblem {
                setting: String::new(),
                reason: format!("connectionSchema cannot be used to validate settings: {error}"),
            }],
        })?;

    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let schema_judges_extras = [
        "additionalProperties",
        "patternProperties",
        "unevaluatedProperties",
    ]
    .iter()
    .any(|k| schema.get(*k).is_some());
    let mut settings = ConnectionSettings::new(
        std::iter::empty::<(String, String)>(),
        wizard.secret_fields.iter().cloned(),
    );

    let mut instance = Map::new();
    let mut problems = Vec::new();
    let mut not_utf8 = BTreeSet::new();
    for (key, ByteString(bytes)) in data {
        let property = properties.get(key);
        if property.is_none() && !schema_judges_extras {
            continue;
        }
        let Ok(text) = String::from_utf8(bytes.clone()) else {
            problems.push(problem(key, "is not valid UTF-8 text"));
            not_utf8.insert(key.clone());
            continue;
        };
        instance.insert(key.clone(), coerce(&text, property));
        settings.values.insert(key.clone(), text);
    }
    for (name, property) in properties {
        if data.contains_key(name) {
            continue;
        }
        let default = match property.get("default") {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => continue,
        };
        instance.insert(name.clone(), property["default"].clone());
        settings.values.insert(name.clone(), default);
    }

    let instance = Value::Object(instance);
    for error in validator.iter_errors(&instance) {
        problems.extend(describe(&error, &settings));
    }
    // A key already reported as not UTF-8 is not also "required".
    problems.retain(|p| !(p.reason == "is required" && not_utf8.contains(&p.setting)));
    if problems.is_empty() {
        return Ok(settings);
    }
    problems.sort_by(|a, b| (&a.setting, &a.reason).cmp(&(&b.setting, &b.reason)));
    problems.dedup();
    Err(SettingsError { problems })
}

/// Parses a Secret's string into the JSON type its property asks for, when it is not a string.
fn coerce(text: &str, property: Option<&Value>) -> Value {
    let types: Vec<&str> = match property.and_then(|p| p.get("type")) {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let string = Value::String(text.to_owned());
    if types.is_empty() || types.contains(&"string") {
        return string;
    }
    if types.contains(&"boolean") {
        match text {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
    }
    if types.contains(&"integer") || types.contains(&"number") {
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return Value::from(u);
        }
        // "3.0" is an integer to JSON Schema; the validator decides.
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    string
}

fn problem(setting: &str, reason: impl Into<String>) -> SettingProblem {
    SettingProblem {
        setting: setting.to_owned(),
        reason: reason.into(),
    }
}

/// The setting a JSON pointer names (`/realmId` → `realmId`).
fn setting_of(pointer: &str) -> String {
    let first = pointer.strip_prefix('/').unwrap_or(pointer);
    let first = first.split('/').next().unwrap_or_default();
    first.replace("~1", "/").replace("~0", "~")
}

/// Our own wording for each kind of violation: it names limits from the schema, never the
/// value (jsonschema's own messages quote it, e.g. `"abc" is too short`).
fn describe(error: &ValidationError<'_>, settings: &ConnectionSettings) -> Vec<SettingProblem> {
    let setting = setting_of(error.instance_path().as_str());
    let reason = match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            return vec![problem(&name, "is required")];
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            return unexpected
                .iter()
                .map(|key| problem(key, "is not a setting of this integration"))
                .collect();
        }
        ValidationErrorKind::Type { kind } => format!("must be {}", expected_types(kind)),
        ValidationErrorKind::Pattern { pattern } => format!("must match pattern {pattern}"),
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} characters long")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("must be at most {limit} characters long")
        }
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be greater than {limit}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        ValidationErrorKind::MultipleOf { multiple_of } => {
            format!("must be a multiple of {multiple_of}")
        }
        ValidationErrorKind::Enum { options } => match options.as_array() {
            Some(options) => format!(
                "must be one of: {}",
                options
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("must be one of: {options}"),
        },
        ValidationErrorKind::Constant { expected_value } => format!("must be {expected_value}"),
        ValidationErrorKind::Format { format } => format!("must be a valid {format}"),
        ValidationErrorKind::FalseSchema => "is not allowed".to_owned(),
        // Anything else: jsonschema's message with the value masked, and redacted again in case
        // a secret is quoted some other way.
        _ => settings.redact(&error.masked_with("the value").to_string()),
    };
    vec![problem(&setting, reason)]
}

fn expected_types(kind: &TypeKind) -> String {
    let article = |t: &str| match t {
        "integer" | "array" | "object" => format!("an {t}"),
        "null" => "null".to_owned(),
        _ => format!("a {t}"),
    };
    match kind {
        TypeKind::Single(t) => article(t.as_str()),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| article(t.as_str()))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::wizard_config::{HttpMethod, TestConnection};
    use serde_json::json;

    const SECRET: &str = "sk_live_9f8e7d6c5b4a";

    fn wizard(schema: Value, secret_fields: &[&str]) -> WizardConfigSpec {
        WizardConfigSpec {
            title: "Connect".into(),
            connection_schema: serde_json::from_value(schema).unwrap(),
            secret_fields: secret_fields.iter().map(|s| s.to_string()).collect(),
            test_connection: TestConnection {
                method: HttpMethod::Get,
                url_template: "https://api.example.com/{{realmId}}".into(),
                headers_template: BTreeMap::new(),
                expected_status: 200,
                timeout_seconds: 10,
            },
            field_mapping: None,
            billing_confirmation: "ok".into(),
        }
    }

    fn quickbooks() -> WizardConfigSpec {
        wizard(
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["realmId", "apiKey"],
                "properties": {
                    "realmId": {"type": "string", "pattern": "^[0-9]+$"},
                    "apiKey": {"type": "string", "minLength": 40, "pattern": "^sk_"},
                    "pageSize": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "ratio": {"type": "number"},
                    "sandbox": {"type": "boolean"},
                    "region": {"type": "string", "enum": ["us", "eu"], "default": "us"},
                },
            }),
            &["apiKey"],
        )
    }

    fn data(pairs: &[(&str, &[u8])]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
            .collect()
    }

    const LONG_KEY: &[u8] = b"sk_0123456789012345678901234567890123456789";

    #[test]
    fn valid_settings_are_returned_with_defaults() {
        let settings = validate_settings(
            &quickbooks(),
            &data(&[
                ("realmId", b"12345"),
                ("apiKey", LONG_KEY),
                ("pageSize", b"100"),
                ("ratio", b"0.5"),
                ("sandbox", b"true"),
                ("unrelated", b"ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.get("realmId"), Some("12345"));
        assert_eq!(settings.get("pageSize"), Some("100"));
        assert_eq!(settings.get("region"), Some("us"));
        assert_eq!(settings.get("unrelated"), None);
        assert!(settings.is_secret("apiKey"));
        assert!(!settings.is_secret("realmId"));
    }

    #[test]
    fn required_missing_and_pattern() {
        let err = validate_settings(&quickbooks(), &data(&[("realmId", b"12a")])).unwrap_err();
        assert_eq!(
            err.problems,
            vec![
                problem("apiKey", "is required"),
                problem("realmId", "must match pattern ^[0-9]+$"),
            ]
        );
        assert_eq!(
            err.to_string(),
            "connection setting \"apiKey\": is required; \
             connection setting \"realmId\": must match pattern ^[0-9]+$"
        );
    }

    #[test]
    fn integers_are_parsed_and_checked() {
        let base: &[(&str, &[u8])] = &[("realmId", b"1"), ("apiKey", LONG_KEY)];
        let with = |extra: (&str, &'static [u8])| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            validate_settings(&quickbooks(), &data(&pairs))
        };
        assert!(with(("pageSize", b"1000")).is_ok());
        assert_eq!(
            with(("pageSize", b"1001")).unwrap_err().problems,
            vec![problem("pageSize", "must be at most 1000")]
        );
        assert_eq!(
            with(("pageSize", b"ten")).unwrap_err().problems,
            vec![problem("pageSize", "must be an integer")]
        );
        assert_eq!(
            with(("pageSize", b"2.5")).unwrap_err().problems,
            vec![problem("pageSize", "must be an integer")]
        );
        assert_eq!(
            with(("sandbox", b"yes")).unwrap_err().problems,
            vec![problem("sandbox", "must be a boolean")]
        );
        assert_eq!(
            with(("region", b"apac")).unwrap_err().problems,
            vec![problem("region", "must be one of: \"us\", \"eu\"")]
        );
    }

    #[test]
    fn bad_utf8_is_reported_once() {
        let err = validate_settings(
            &quickbooks(),
            &data(&[("realmId", b"1"), ("apiKey", &[0xff, 0xfe, 0x41])]),
        )
        .unwrap_err();
        assert_eq!(
            err.problems,
            vec![problem("apiKey", "is not valid UTF-8 text")]
        );
    }

    #[test]
    fn secret_value_never_in_message() {
        // Too short, wrong pattern: jsonschema's own messages would quote it.
        let err = validate_settings(
            &quickbooks(),
            &data(&[("realmId", b"1"), ("apiKey", SECRET.as_bytes())]),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("connection setting \"apiKey\""), "{text}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(!format!("{err:?}").contains(SECRET));

        // Every other kind of violation, on a secret field.
        let strict = wizard(
            json!({
                "type": "object",
                "properties": {
                    "token": {
                        "type": "string",
                        "not": {"const": "x"},
                        "anyOf": [{"maxLength": 3}, {"pattern": "^zz"}],
                        "format": "email",
                    },
                },
            }),
            &["token"],
        );
        let err = validate_settings(&strict, &data(&[("token", SECRET.as_bytes())])).unwrap_err();
        assert!(err.problems.len() >= 2, "{err}");
        assert!(!err.to_string().contains(SECRET), "{err}");
    }

    #[test]
    fn additional_properties_false_refuses_extra_keys() {
        let strict = wizard(
            json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {"realmId": {"type": "string"}},
            }),
            &[],
        );
        let err =
            validate_settings(&strict, &data(&[("realmId", b"1"), ("extra", b"x")])).unwrap_err();
        assert_eq!(
            err.problems,
            vec![problem("extra", "is not a setting of this integration")]
        );
    }

    #[test]
    fn broken_schema_is_a_problem_not_a_panic() {
        let broken = wizard(
            json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}),
            &[],
        );
        let err = validate_settings(&broken, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert!(err.problems[0].setting.is_empty());
        assert!(
            err.to_string()
                .starts_with("connection settings: connectionSchema cannot be used")
        );
    }

    #[test]
    fn debug_redacts_secret_values() {
        let settings =
            ConnectionSettings::new([("apiKey", SECRET), ("realmId", "123")], ["apiKey"]);
        let debug = format!("{settings:?}");
        assert_eq!(debug, r#"{"apiKey": "<redacted>", "realmId": "123"}"#);
        assert_eq!(
            settings.redact(&format!("bad key {SECRET}")),
            "bad key <redacted>"
        );
        assert_eq!(settings.secret_values().collect::<Vec<_>>(), vec![SECRET]);
    }
}

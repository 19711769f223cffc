//! The connection wizard through the API: settings checked against the WizardConfig's schema
//! (before a purchase, and on their own), and the safe test connection run without
//! subscribing. Messages never quote a setting's value.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::wizard_config::WizardConfigSpec;
use crate::connection::{
    ConnectionSettings, ProbeError, ProbeSuccess, SettingsError, validate_settings,
};

/// `POST /v1/tenants/{t}/catalog/{listing}/wizard/test`.
#[derive(Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WizardTestRequest {
    /// The wizard's fields, as the purchase's `connection` would carry them.
    #[serde(default)]
    pub connection: BTreeMap<String, String>,
}

/// The settings as a Secret would hold them, checked against the wizard's schema.
pub fn check_settings(
    wizard: &WizardConfigSpec,
    settings: &BTreeMap<String, String>,
) -> Result<ConnectionSettings, SettingsError> {
    let data: BTreeMap<String, ByteString> = settings
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
        .collect();
    validate_settings(wizard, &data)
}

/// A field mapping that fits the wizard: known targets and sources, every required target
/// mapped. The error names the field (`fieldMapping.<target>`) and the reason.
pub fn check_mapping(
    wizard: &WizardConfigSpec,
    mapping: &BTreeMap<String, String>,
) -> Result<(), (String, String)> {
    let Some(offered) = &wizard.field_mapping else {
        return match mapping.keys().next() {
            Some(target) => Err((
                format!("fieldMapping.{target}"),
                "this wizard maps no fields".into(),
            )),
            None => Ok(()),
        };
    };
    for (target, source) in mapping {
        let field = format!("fieldMapping.{target}");
        if !offered.targets.iter().any(|t| &t.name == target) {
            return Err((field, format!("{target:?} is not a target of this wizard")));
        }
        if !offered.sources.iter().any(|s| &s.name == source) {
            return Err((field, format!("{source:?} is not a source of this wizard")));
        }
    }
    match offered.required.iter().find(|r| !mapping.contains_key(*r)) {
        Some(missing) => Err((
            format!("fieldMapping.{missing}"),
            format!("{missing:?} must be mapped"),
        )),
        None => Ok(()),
    }
}

/// 422 `ConnectionInvalid`: settings that do not fit the wizard's schema, one problem per
/// field (never quoting a value).
#[derive(Serialize, JsonSchema, Clone, Debug)]
pub struct SettingsInvalid {
    /// `ConnectionInvalid`.
    pub code: String,
    /// `connection`.
    pub field: String,
    pub message: String,
    pub problems: Vec<SettingsProblem>,
}

/// One setting that does not fit.
#[derive(Serialize, JsonSchema, Clone, Debug)]
pub struct SettingsProblem {
    /// The setting's name; empty when the problem is about the settings as a whole.
    pub field: String,
    /// What is wrong, e.g. `is required`.
    pub reason: String,
}

/// What the wizard shows after "Test connection": `ok` with the status, time and target, or
/// not, with `code` `ConnectionTestFailed` and the failure's `category`.
#[derive(Serialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct WizardTestResult {
    pub ok: bool,
    /// The HTTP status the test received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// `host:port` probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why it failed: `template`, `invalid-header`, `config`, `forbidden-target`, `dns`,
    /// `timeout`, `connect`, `tls`, `http` or `unexpected-status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub message: String,
}

/// The 422 body for settings that do not fit the schema: one problem per field.
pub fn invalid_settings_body(error: &SettingsError) -> Value {
    json!(SettingsInvalid {
        code: "ConnectionInvalid".into(),
        field: "connection".into(),
        message: error.to_string(),
        problems: error
            .problems
            .iter()
            .map(|p| SettingsProblem {
                field: p.setting.clone(),
                reason: p.reason.clone(),
            })
            .collect(),
    })
}

/// What the wizard shows after "Test connection".
pub fn test_result_body(result: &Result<ProbeSuccess, ProbeError>) -> Value {
    let result = match result {
        Ok(success) => WizardTestResult {
            ok: true,
            status: Some(success.status),
            elapsed_ms: Some(u64::try_from(success.elapsed.as_millis()).unwrap_or(u64::MAX)),
            target: Some(success.target.clone()),
            code: None,
            category: None,
            message: format!("connected to {} (HTTP {})", success.target, success.status),
        },
        Err(e) => WizardTestResult {
            ok: false,
            status: None,
            elapsed_ms: None,
            target: None,
            code: Some("ConnectionTestFailed".into()),
            category: Some(e.category().into()),
            message: format!("the test connection failed: {e}"),
        },
    };
    json!(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wizard() -> WizardConfigSpec {
        serde_json::from_value(json!({
            "title": "Connect QuickBooks",
            "connectionSchema": {"type": "object",
                "properties": {"realmId": {"type": "string", "pattern": "^[0-9]+$"},
                               "apiKey": {"type": "string", "minLength": 12}},
                "required": ["realmId", "apiKey"]},
            "secretFields": ["apiKey"],
            "testConnection": {"method": "GET", "urlTemplate": "https://quickbooks.example.com/v3/company/{{realmId}}",
                               "headersTemplate": {"Authorization": "Bearer {{apiKey}}"}},
            "billingConfirmation": "QuickBooks is billed monthly.",
        }))
        .expect("wizard")
    }

    #[test]
    fn bad_settings_name_each_field_and_never_their_values() {
        let settings = BTreeMap::from([
            ("realmId".to_string(), "acme".to_string()),
            ("apiKey".to_string(), "tiny-secret".to_string()),
        ]);
        let error = check_settings(&wizard(), &settings).expect_err("invalid");
        let body = invalid_settings_body(&error);
        let text = body.to_string();
        assert!(
            text.contains("realmId") && text.contains("apiKey"),
            "{text}"
        );
        assert!(
            !text.contains("tiny-secret") && !text.contains("\"acme\""),
            "{text}"
        );
        assert_eq!(body["problems"].as_array().map(Vec::len), Some(2));
        let good = BTreeMap::from([
            ("realmId".to_string(), "1234".to_string()),
            ("apiKey".to_string(), "a-long-enough-key".to_string()),
        ]);
        assert!(check_settings(&wizard(), &good).is_ok());
    }

    #[test]
    fn a_field_mapping_must_fit_the_wizard() {
        let mut spec = wizard();
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(t, s)| ((*t).to_owned(), (*s).to_owned()))
                .collect()
        };
        assert_eq!(check_mapping(&spec, &map(&[])), Ok(()));
        let (field, _) = check_mapping(&spec, &map(&[("email", "contact")])).expect_err("none");
        assert_eq!(field, "fieldMapping.email");
        spec.field_mapping = Some(
            serde_json::from_value(json!({
                "sources": [{"name": "customer_email", "label": "Customer email"}],
                "targets": [{"name": "email", "label": "Email"}, {"name": "phone", "label": "Phone"}],
                "required": ["email"]}))
            .expect("mapping"),
        );
        assert_eq!(
            check_mapping(&spec, &map(&[("email", "customer_email")])),
            Ok(())
        );
        for (pairs, field, words) in [
            (map(&[]), "fieldMapping.email", "must be mapped"),
            (
                map(&[("fax", "customer_email")]),
                "fieldMapping.fax",
                "not a target",
            ),
            (
                map(&[("email", "nope")]),
                "fieldMapping.email",
                "not a source",
            ),
        ] {
            let (found, why) = check_mapping(&spec, &pairs).expect_err("refused");
            assert_eq!(found, field);
            assert!(why.contains(words), "{why}");
        }
    }
}

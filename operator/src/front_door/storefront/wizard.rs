//! The connection wizard through the API: settings checked against the WizardConfig's schema
//! (before a purchase, and on their own), and the safe test connection run without
//! subscribing. Messages never quote a setting's value.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::wizard_config::WizardConfigSpec;
use crate::connection::{
    ConnectionSettings, ProbeError, ProbeSuccess, SettingsError, validate_settings,
};

/// `POST /v1/tenants/{t}/catalog/{listing}/wizard/test`.
#[derive(Deserialize, Clone, Debug, Default)]
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

/// The 422 body for settings that do not fit the schema: one problem per field.
pub fn invalid_settings_body(error: &SettingsError) -> Value {
    json!({
        "code": "ConnectionInvalid",
        "field": "connection",
        "message": error.to_string(),
        "problems": error.problems.iter().map(|p| json!({"field": p.setting, "reason": p.reason})).collect::<Vec<_>>(),
    })
}

/// What the wizard shows after "Test connection".
pub fn test_result_body(result: &Result<ProbeSuccess, ProbeError>) -> Value {
    match result {
        Ok(success) => json!({
            "ok": true,
            "status": success.status,
            "elapsedMs": u64::try_from(success.elapsed.as_millis()).unwrap_or(u64::MAX),
            "target": success.target,
            "message": format!("connected to {} (HTTP {})", success.target, success.status),
        }),
        Err(e) => json!({
            "ok": false,
            "code": "ConnectionTestFailed",
            "category": e.category(),
            "message": format!("the test connection failed: {e}"),
        }),
    }
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
}

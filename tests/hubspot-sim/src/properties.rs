//! Property definitions and value validation (contract §1.3, §2.2, §4, §9 "Validation errors").

use crate::clock;
use crate::error::ApiError;
use crate::model::ObjectType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PropType {
    String,
    Number,
    Date,
    DateTime,
    Enumeration,
    Bool,
}

impl PropType {
    pub fn as_str(self) -> &'static str {
        match self {
            PropType::String => "string",
            PropType::Number => "number",
            PropType::Date => "date",
            PropType::DateTime => "datetime",
            PropType::Enumeration => "enumeration",
            PropType::Bool => "bool",
        }
    }

    pub fn parse(s: &str) -> Option<PropType> {
        Some(match s {
            "string" | "phone_number" => PropType::String,
            "number" => PropType::Number,
            "date" => PropType::Date,
            "datetime" => PropType::DateTime,
            "enumeration" => PropType::Enumeration,
            "bool" => PropType::Bool,
            _ => return None,
        })
    }

    fn default_field_type(self) -> &'static str {
        match self {
            PropType::String => "text",
            PropType::Number => "number",
            PropType::Date | PropType::DateTime => "date",
            PropType::Enumeration => "select",
            PropType::Bool => "booleancheckbox",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDef {
    pub name: String,
    pub label: String,
    pub ptype: PropType,
    pub field_type: String,
    pub group_name: String,
    pub description: String,
    pub options: Vec<String>,
    pub has_unique_value: bool,
    pub hubspot_defined: bool,
    pub read_only_value: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl PropertyDef {
    pub fn standard(name: &str, ptype: PropType) -> Self {
        PropertyDef {
            name: name.into(),
            label: name.into(),
            ptype,
            field_type: ptype.default_field_type().into(),
            group_name: "information".into(),
            description: String::new(),
            options: Vec::new(),
            has_unique_value: false,
            hubspot_defined: true,
            read_only_value: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn read_only(mut self) -> Self {
        self.read_only_value = true;
        self
    }

    fn options(mut self, opts: &[&str]) -> Self {
        self.options = opts.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The `Property` schema of the properties API.
    pub fn to_json(&self) -> Value {
        let options: Vec<Value> = self
            .options
            .iter()
            .enumerate()
            .map(|(i, o)| json!({"label": o, "value": o, "displayOrder": i, "hidden": false}))
            .collect();
        json!({
            "name": self.name,
            "label": self.label,
            "type": self.ptype.as_str(),
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": options,
            "displayOrder": -1,
            "calculated": false,
            "externalOptions": false,
            "hasUniqueValue": self.has_unique_value,
            "hidden": false,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": !self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only_value,
            },
            "formField": !self.read_only_value,
            "createdAt": clock::iso(self.created_at),
            "updatedAt": clock::iso(self.updated_at),
            "archived": false,
        })
    }
}

/// contract §1.3: observed `recurringbillingfrequency` values.
pub const FREQUENCIES: &[&str] = &[
    "weekly",
    "biweekly",
    "monthly",
    "quarterly",
    "per_six_months",
    "annually",
    "per_two_years",
    "per_three_years",
    "per_four_years",
    "per_five_years",
];

/// Properties that every object has and that only HubSpot writes (contract §9: `hs_object_id`,
/// `hs_createdate`, `hs_lastmodifieddate` are maintained).
fn common() -> Vec<PropertyDef> {
    use PropType::*;
    vec![
        PropertyDef::standard("hs_object_id", Number).read_only(),
        PropertyDef::standard("hs_createdate", DateTime).read_only(),
        PropertyDef::standard("hs_lastmodifieddate", DateTime).read_only(),
        PropertyDef::standard("hubspot_owner_id", String),
    ]
}

/// The standard (HubSpot-defined) properties per object type.
pub fn standard_properties(t: ObjectType, statuses: &[String]) -> Vec<PropertyDef> {
    use PropType::*;
    let s = |n: &str| PropertyDef::standard(n, String);
    let n = |n: &str| PropertyDef::standard(n, Number);
    let d = |n: &str| PropertyDef::standard(n, Date);
    let mut v = common();
    match t {
        ObjectType::Contacts => {
            v.extend([
                s("email"),
                s("firstname"),
                s("lastname"),
                s("phone"),
                s("company"),
                s("lifecyclestage"),
                PropertyDef::standard("createdate", DateTime).read_only(),
                PropertyDef::standard("lastmodifieddate", DateTime).read_only(),
            ]);
        }
        ObjectType::Companies => {
            v.extend([
                s("name"),
                s("domain"),
                s("phone"),
                s("city"),
                s("country"),
                s("industry"),
                s("description"),
                n("numberofemployees"),
                PropertyDef::standard("createdate", DateTime).read_only(),
            ]);
        }
        ObjectType::Deals => {
            v.extend([
                s("dealname"),
                PropertyDef::standard("dealstage", Enumeration).options(&[
                    "appointmentscheduled",
                    "qualifiedtobuy",
                    "presentationscheduled",
                    "decisionmakerboughtin",
                    "contractsent",
                    "closedwon",
                    "closedlost",
                ]),
                PropertyDef::standard("pipeline", Enumeration).options(&["default"]),
                n("amount"),
                PropertyDef::standard("closedate", DateTime),
                s("description"),
                s("deal_currency_code"),
                PropertyDef::standard("createdate", DateTime).read_only(),
            ]);
        }
        ObjectType::Products => {
            v.extend([
                s("name"),
                s("description"),
                n("price"),
                s("hs_sku"),
                s("hs_folder"),
                n("hs_cost_of_goods_sold"),
                PropertyDef::standard("recurringbillingfrequency", Enumeration)
                    .options(FREQUENCIES),
                s("hs_recurring_billing_period"),
            ]);
        }
        ObjectType::LineItems => {
            v.extend([
                s("name"),
                s("description"),
                n("price"),
                n("quantity"),
                n("amount"),
                n("discount"),
                n("hs_discount_percentage"),
                s("hs_product_id"),
                s("hs_sku"),
                s("hs_external_id"),
                s("hs_tax_rate_group_id"),
                PropertyDef::standard("recurringbillingfrequency", Enumeration)
                    .options(FREQUENCIES),
                d("hs_recurring_billing_start_date"),
                d("hs_recurring_billing_end_date"),
                s("hs_recurring_billing_period"),
                n("hs_recurring_billing_number_of_payments"),
                s("hs_recurring_billing_terms"),
                s("hs_billing_start_delay_type"),
                n("hs_billing_start_delay_days"),
                n("hs_billing_start_delay_months"),
            ]);
        }
        ObjectType::Subscriptions => {
            let status_opts: Vec<&str> = statuses.iter().map(|x| x.as_str()).collect();
            v.extend([
                s("hs_name"),
                PropertyDef::standard("hs_status", Enumeration).options(&status_opts),
                PropertyDef::standard("hs_invoice_creation", Enumeration).options(&["on", "off"]),
                PropertyDef::standard("hs_collection_process", Enumeration)
                    .options(&["manual_payments", "automatic_payments"]),
                s("hs_currency_code"),
                n("hs_net_payment_terms"),
                d("hs_recurring_billing_start_date"),
                d("hs_recurring_billing_end_date"),
                PropertyDef::standard("hs_recurring_billing_frequency", Enumeration)
                    .options(FREQUENCIES),
                n("hs_last_payment_amount"),
                d("hs_last_payment_date"),
                n("hs_next_payment_amount"),
                d("hs_next_payment_due_date"),
                s("hs_owner"),
                PropertyDef::standard("hs_automatically_email_invoices", Bool),
                s("hs_allowed_payment_methods"),
                s("hs_collect_address_types"),
                s("hs_invoice_comments"),
                s("hs_language"),
                s("hs_locale"),
                s("hs_recipient_billing_first_name"),
                s("hs_recipient_billing_last_name"),
                s("hs_recipient_billing_email"),
                s("hs_recipient_billing_address_line_1"),
                s("hs_recipient_billing_city"),
                s("hs_recipient_billing_state"),
                s("hs_recipient_billing_postal_code"),
                s("hs_recipient_billing_country"),
                PropertyDef::standard("hs_payment_enabled", Bool),
                s("hs_tax_ids"),
                s("hs_pause_reason"),
            ]);
        }
        ObjectType::CommercePayments => {
            v.extend([
                PropertyDef::standard("hs_latest_status", Enumeration).options(&[
                    "succeeded",
                    "refunded",
                    "processing",
                    "failed",
                ]),
                n("hs_initial_amount"),
                PropertyDef::standard("hs_initiated_date", DateTime),
                s("hs_currency_code"),
                s("hs_payment_method_type"),
            ]);
        }
        ObjectType::Invoices => {
            v.extend([
                s("hs_currency"),
                PropertyDef::standard("hs_invoice_status", Enumeration)
                    .options(&["draft", "open", "paid", "voided"]),
                n("hs_amount_billed"),
                d("hs_due_date"),
                PropertyDef::standard("hs_invoice_date", DateTime),
            ]);
        }
    }
    v
}

/// Default properties returned when a read names none (HubSpot's per-object defaults).
pub fn default_read_properties(t: ObjectType) -> &'static [&'static str] {
    match t {
        ObjectType::Contacts => &[
            "createdate",
            "email",
            "firstname",
            "hs_object_id",
            "lastmodifieddate",
            "lastname",
        ],
        ObjectType::Companies => &[
            "createdate",
            "domain",
            "hs_lastmodifieddate",
            "hs_object_id",
            "name",
        ],
        ObjectType::Deals => &[
            "amount",
            "closedate",
            "createdate",
            "dealname",
            "dealstage",
            "hs_lastmodifieddate",
            "hs_object_id",
            "pipeline",
        ],
        ObjectType::Products => &[
            "createdate",
            "description",
            "hs_lastmodifieddate",
            "hs_object_id",
            "name",
            "price",
        ],
        ObjectType::LineItems => &[
            "createdate",
            "hs_lastmodifieddate",
            "hs_object_id",
            "hs_product_id",
            "name",
            "price",
            "quantity",
        ],
        ObjectType::Subscriptions => &[
            "hs_createdate",
            "hs_lastmodifieddate",
            "hs_name",
            "hs_object_id",
            "hs_status",
        ],
        ObjectType::CommercePayments => &[
            "hs_createdate",
            "hs_lastmodifieddate",
            "hs_latest_status",
            "hs_object_id",
        ],
        ObjectType::Invoices => &[
            "hs_createdate",
            "hs_lastmodifieddate",
            "hs_invoice_status",
            "hs_object_id",
        ],
    }
}

/// Per-object property registry.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub by_type: BTreeMap<ObjectType, BTreeMap<String, PropertyDef>>,
}

impl Registry {
    pub fn new(statuses: &[String]) -> Self {
        let mut by_type = BTreeMap::new();
        for t in ObjectType::ALL {
            let map = standard_properties(t, statuses)
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect();
            by_type.insert(t, map);
        }
        Registry { by_type }
    }

    pub fn get(&self, t: ObjectType, name: &str) -> Option<&PropertyDef> {
        self.by_type.get(&t).and_then(|m| m.get(name))
    }

    pub fn is_unique(&self, t: ObjectType, name: &str) -> bool {
        self.get(t, name).is_some_and(|p| p.has_unique_value)
    }

    pub fn unique_names(&self, t: ObjectType) -> Vec<String> {
        self.by_type
            .get(&t)
            .map(|m| {
                m.values()
                    .filter(|p| p.has_unique_value)
                    .map(|p| p.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One invalid property value, rendered both in the legacy message and in `errors[]`.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub name: String,
    pub code: &'static str,
    pub message: String,
}

/// contract §4: HubSpot's 400 for bad property values. The message embeds the JSON list of
/// invalid values (the long-standing format clients parse), and `errors[]` carries
/// `code` + `context.propertyName`.
pub fn invalid_error(portal_id: u64, invalid: &[Invalid]) -> ApiError {
    let list: Vec<Value> = invalid
        .iter()
        .map(|i| {
            json!({"isValid": false, "message": i.message, "error": i.code, "name": i.name,
                   "localizedErrorMessage": i.message, "portalId": portal_id})
        })
        .collect();
    let msg = format!("Property values were not valid: {}", Value::Array(list));
    let mut err = ApiError::validation(msg);
    for i in invalid {
        err = err.error_detail(json!({
            "message": i.message,
            "code": i.code,
            "context": {"propertyName": [i.name]},
        }));
    }
    err
}

fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// contract §1.3 / §8.11: a date property takes `YYYY-MM-DD` or epoch ms at midnight UTC.
fn normalize_date(raw: &str) -> Result<String, (&'static str, String)> {
    if let Some(ms) = clock::parse_ymd(raw) {
        return Ok(clock::ymd(ms));
    }
    if let Ok(ms) = raw.parse::<i64>() {
        let rem = ms.rem_euclid(86_400_000);
        if rem != 0 {
            // HubSpot's wording: "1563441421000 is at 9:17:1.0 UTC, not midnight!"
            let h = rem / 3_600_000;
            let m = (rem / 60_000) % 60;
            let s = (rem / 1000) % 60;
            let frac = rem % 1000;
            return Err((
                "INVALID_DATE",
                format!("{raw} is at {h}:{m}:{s}.{frac} UTC, not midnight!"),
            ));
        }
        return Ok(clock::ymd(ms));
    }
    if let Some(ms) = clock::parse_iso(raw) {
        if ms.rem_euclid(86_400_000) != 0 {
            return Err(("INVALID_DATE", format!("{raw} is not at midnight UTC!")));
        }
        return Ok(clock::ymd(ms));
    }
    Err(("INVALID_DATE", format!("{raw} is not a valid date")))
}

fn normalize_datetime(raw: &str) -> Result<String, (&'static str, String)> {
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(clock::iso(ms));
    }
    if let Some(ms) = clock::parse_iso(raw) {
        return Ok(clock::iso(ms));
    }
    if let Some(ms) = clock::parse_ymd(raw) {
        return Ok(clock::iso(ms));
    }
    Err(("INVALID_DATETIME", format!("{raw} is not a valid datetime")))
}

/// Checks and normalizes one value against its definition.
pub fn normalize_value(def: &PropertyDef, raw: &str) -> Result<String, (&'static str, String)> {
    if raw.is_empty() {
        // Empty clears the value (HubSpot accepts "" to unset).
        return Ok(String::new());
    }
    match def.ptype {
        PropType::String => Ok(raw.to_string()),
        PropType::Number => match raw.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(raw.trim().to_string()),
            _ => Err(("INVALID_INTEGER", format!("{raw} was not a valid number."))),
        },
        PropType::Bool => match raw.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(raw.to_ascii_lowercase()),
            _ => Err(("INVALID_BOOLEAN", format!("{raw} was not a valid boolean."))),
        },
        // contract §2.5: enumeration values are case-sensitive.
        PropType::Enumeration => {
            let parts: Vec<&str> = raw.split(';').collect();
            for p in &parts {
                if !def.options.iter().any(|o| o == p) {
                    return Err((
                        "INVALID_OPTION",
                        format!(
                            "{p} was not one of the allowed options: [{}]",
                            def.options.join(", ")
                        ),
                    ));
                }
            }
            Ok(raw.to_string())
        }
        PropType::Date => normalize_date(raw),
        PropType::DateTime => normalize_datetime(raw),
    }
}

/// Validates an input `properties` object: unknown properties (contract §9:
/// `PROPERTY_DOESNT_EXIST`), read-only values, type/option/date checks. Returns the normalized
/// string values.
pub fn validate_input(
    registry: &Registry,
    t: ObjectType,
    input: &Map<String, Value>,
    portal_id: u64,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    let mut invalid = Vec::new();
    for (name, v) in input {
        let Some(def) = registry.get(t, name) else {
            invalid.push(Invalid {
                name: name.clone(),
                code: "PROPERTY_DOESNT_EXIST",
                message: format!("Property \"{name}\" does not exist"),
            });
            continue;
        };
        if def.read_only_value {
            invalid.push(Invalid {
                name: name.clone(),
                code: "READ_ONLY_VALUE",
                message: format!("\"{name}\" is a read only property; its value cannot be set."),
            });
            continue;
        }
        let Some(raw) = value_to_string(v) else {
            invalid.push(Invalid {
                name: name.clone(),
                code: "INVALID_PROPERTY_VALUE",
                message: format!("Property \"{name}\" must be a string"),
            });
            continue;
        };
        match normalize_value(def, &raw) {
            Ok(val) => {
                out.insert(name.clone(), val);
            }
            Err((code, message)) => invalid.push(Invalid {
                name: name.clone(),
                code,
                message,
            }),
        }
    }
    if invalid.is_empty() {
        Ok(out)
    } else {
        Err(invalid_error(portal_id, &invalid))
    }
}

/// Required properties on create (contract §1.5, §1.2, §9). `a|b` means either.
pub fn check_required(
    required: &[String],
    props: &BTreeMap<String, String>,
    portal_id: u64,
) -> Result<(), ApiError> {
    let mut invalid = Vec::new();
    for req in required {
        let alternatives: Vec<&str> = req.split('|').collect();
        let present = alternatives
            .iter()
            .any(|a| props.get(*a).is_some_and(|v| !v.is_empty()));
        if !present {
            let name = alternatives.join(" or ");
            invalid.push(Invalid {
                name: alternatives
                    .first()
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
                code: "MISSING_REQUIRED_PROPERTY",
                message: format!("Property \"{name}\" is required"),
            });
        }
    }
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(invalid_error(portal_id, &invalid))
    }
}

//! The simulator's in-memory store and the write paths shared by single and batch endpoints.

use crate::associations::AssocStore;
use crate::billing::{self, BillingState};
use crate::clock::{self, SimClock};
use crate::config::{ContactConflictShape, SimConfig, UniqueViolationShape};
use crate::cycle_index::CycleIndex;
use crate::error::{ApiError, ApiResult};
use crate::faults::{Faults, ValidationRule};
use crate::model::{CrmObject, ObjectType};
use crate::properties::{self, Invalid, Registry};
use crate::ratelimit::{Counters, RateLimiter};
use crate::rng::SimRng;
use crate::search::SearchIndex;
use crate::value_index::ValueIndex;
use crate::webhooks::{ChangeSource, EventInput, EventKind, WebhookState};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub type Sim = Arc<Mutex<SimState>>;

/// (type, id, property name).
pub type HistoryKey = (ObjectType, u64, String);
/// (value, timestamp ms, change source).
pub type HistoryEntry = (String, i64, &'static str);

/// Locks the state; a poisoned lock (a panicking handler) still yields the data.
pub fn lock(sim: &Sim) -> MutexGuard<'_, SimState> {
    match sim.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// One inline association of a create request (contract §1.1: `associations[]` on create).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineAssoc {
    pub to: IdRef,
    #[serde(default)]
    pub types: Vec<AssocSpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdRef {
    pub id: Value,
}

impl IdRef {
    pub fn as_string(&self) -> String {
        match &self.id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssocSpec {
    #[serde(default)]
    pub association_category: Option<String>,
    pub association_type_id: u32,
}

/// What a read returns (`properties`, `propertiesWithHistory`, `associations`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub properties: Option<Vec<String>>,
    pub with_history: Vec<String>,
    pub associations: Vec<ObjectType>,
    /// Create/update responses return every set property.
    pub all_set: bool,
}

#[derive(Clone)]
pub struct SimState {
    pub config: SimConfig,
    pub clock: SimClock,
    pub rng: SimRng,
    pub next_id: u64,
    pub objects: BTreeMap<ObjectType, BTreeMap<u64, CrmObject>>,
    /// Live records by property value; every write of `objects` keeps it current.
    pub value_index: ValueIndex,
    /// Billable subscriptions by when something is next due; every write of one keeps it current.
    pub cycle_index: CycleIndex,
    /// (type, id, property) → [(value, timestamp, source)], for `propertiesWithHistory`.
    pub history: BTreeMap<HistoryKey, Vec<HistoryEntry>>,
    pub registry: Registry,
    pub assoc: AssocStore,
    pub search: SearchIndex,
    pub rate: RateLimiter,
    pub counters: Counters,
    pub faults: Faults,
    pub validation_rules: Vec<ValidationRule>,
    pub billing: BillingState,
    pub webhooks: WebhookState,
    /// Set by the create-without-association fault for the current request.
    pub skip_inline_associations: bool,
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        let clock = SimClock::new(config.clock_start_ms, config.clock_frozen);
        let rng = SimRng::new(config.seed);
        let registry = Registry::new(&config.subscription_statuses);
        let webhooks = WebhookState {
            url: config.webhook_url.clone(),
            subscriptions: config.webhook_subscriptions.clone(),
            ..WebhookState::default()
        };
        let billing = BillingState {
            payments_enabled: config.payments_enabled,
            ..BillingState::default()
        };
        SimState {
            clock,
            rng,
            // Numeric ids in the range HubSpot uses for new portals' records.
            next_id: 10_000_000_000,
            objects: BTreeMap::new(),
            value_index: ValueIndex::default(),
            cycle_index: CycleIndex::default(),
            history: BTreeMap::new(),
            registry,
            assoc: AssocStore::default(),
            search: SearchIndex::default(),
            rate: RateLimiter::default(),
            counters: Counters::default(),
            faults: Faults::default(),
            validation_rules: Vec::new(),
            billing,
            webhooks,
            skip_inline_associations: false,
            config,
        }
    }

    /// Clears data, counters and faults but keeps configuration and custom property definitions
    /// out (they are reset too, like a fresh portal).
    pub fn reset(&mut self) {
        let cfg = self.config.clone();
        *self = SimState::new(cfg);
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn alloc_id(&mut self) -> u64 {
        self.next_id += 1 + self.rng.next_u64() % 7;
        self.next_id
    }

    pub fn get(&self, t: ObjectType, id: u64) -> Option<&CrmObject> {
        self.objects
            .get(&t)
            .and_then(|m| m.get(&id))
            .filter(|o| !o.archived)
    }

    pub fn get_any(&self, t: ObjectType, id: u64) -> Option<&CrmObject> {
        self.objects.get(&t).and_then(|m| m.get(&id))
    }

    pub fn live(&self, t: ObjectType) -> impl Iterator<Item = &CrmObject> {
        self.objects
            .get(&t)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|o| !o.archived)
    }

    /// contract §2.3: `idProperty` must be a unique property (or `email` for contacts);
    /// otherwise "Unable to perform update/upsert by non-unique ..." (400 VALIDATION_ERROR).
    pub fn check_id_property(&self, t: ObjectType, prop: &str) -> ApiResult<()> {
        if self.registry.is_unique(t, prop) || (t == ObjectType::Contacts && prop == "email") {
            return Ok(());
        }
        if self.registry.get(t, prop).is_none() {
            return Err(properties::invalid_error(
                self.config.portal_id,
                &[Invalid {
                    name: prop.into(),
                    code: "PROPERTY_DOESNT_EXIST",
                    message: format!("Property \"{prop}\" does not exist"),
                }],
            ));
        }
        Err(ApiError::validation(format!(
            "Unable to perform update/upsert by non-unique {} property {prop} in portal ID {}",
            t.type_id(),
            self.config.portal_id
        )))
    }

    /// The lowest id of a live record of type `t` whose `prop` is `value` (a contact's email
    /// compared ignoring ASCII case).
    pub fn find_by_value(&self, t: ObjectType, prop: &str, value: &str) -> Option<u64> {
        self.value_index.find(self.objects.get(&t), t, prop, value)
    }

    /// Resolves a path/batch id, honouring `idProperty` (contract §2.3). `Ok(None)` = not found.
    pub fn resolve(
        &self,
        t: ObjectType,
        id: &str,
        id_property: Option<&str>,
    ) -> ApiResult<Option<u64>> {
        match id_property {
            None | Some("hs_object_id") => {
                Ok(id.parse::<u64>().ok().filter(|n| self.get(t, *n).is_some()))
            }
            Some(prop) => {
                self.check_id_property(t, prop)?;
                Ok(self.find_by_value(t, prop, id))
            }
        }
    }

    fn check_validation_rules(
        &self,
        t: ObjectType,
        props: &BTreeMap<String, String>,
    ) -> ApiResult<()> {
        let mut invalid = Vec::new();
        for rule in &self.validation_rules {
            if ObjectType::parse(&rule.object_type) != Some(t) {
                continue;
            }
            let Some(v) = props.get(&rule.property_name) else {
                continue;
            };
            let hit = match &rule.rejected_values {
                Some(list) => list.iter().any(|x| x == v),
                None => !v.is_empty(),
            };
            if hit {
                invalid.push(Invalid {
                    name: rule.property_name.clone(),
                    code: "VALIDATION_RULE_VIOLATION",
                    message: rule.message.clone(),
                });
            }
        }
        if invalid.is_empty() {
            Ok(())
        } else {
            // contract §1.1: admin validation rules fail writes with 400 VALIDATION_ERROR.
            Err(properties::invalid_error(self.config.portal_id, &invalid)
                .sub_category("PROPERTY_VALIDATION_RULE"))
        }
    }

    /// Unique values (contract §2.2, §2.4) and contact email deduplication (contract §1.5).
    fn check_unique(
        &self,
        t: ObjectType,
        self_id: Option<u64>,
        props: &BTreeMap<String, String>,
    ) -> ApiResult<()> {
        if t == ObjectType::Contacts
            && let Some(email) = props.get("email").filter(|e| !e.is_empty())
            && let Some(other) = self.find_by_value(t, "email", email)
            && Some(other) != self_id
        {
            let msg = format!("Contact already exists. Existing ID: {other}");
            return Err(match self.config.contact_conflict_shape {
                // contract §2.4: the id only appears in the message.
                ContactConflictShape::Legacy => {
                    ApiError::new(StatusCode::CONFLICT, "CONFLICT", msg)
                }
                ContactConflictShape::ObjectAlreadyExists => {
                    let mut e =
                        ApiError::new(StatusCode::CONFLICT, "OBJECT_ALREADY_EXISTS", msg.clone())
                            .error_detail(
                                json!({"message": msg, "in": "email", "code": "CONTACT_EXISTS"}),
                            );
                    e.body.insert("error".into(), json!("CONTACT_EXISTS"));
                    e
                }
            });
        }
        for name in self.registry.unique_names(t) {
            let Some(v) = props.get(&name).filter(|v| !v.is_empty()) else {
                continue;
            };
            let Some(other) = self.find_by_value(t, &name, v) else {
                continue;
            };
            if Some(other) == self_id {
                continue;
            }
            let message = format!("A {} with ID {other} already has that value.", t.singular());
            return Err(match self.config.unique_violation_shape {
                UniqueViolationShape::BadRequest => properties::invalid_error(
                    self.config.portal_id,
                    &[Invalid {
                        name: name.clone(),
                        code: "VALUE_NOT_UNIQUE",
                        message,
                    }],
                ),
                UniqueViolationShape::Conflict => {
                    ApiError::new(StatusCode::CONFLICT, "CONFLICT", message)
                        .context("propertyName", json!([name]))
                        .context("existingId", json!([other.to_string()]))
                }
            });
        }
        Ok(())
    }

    /// contract §1.3: `price` must not be negative; on create, `hs_product_id` must name a
    /// product, whose catalog fields are copied when not given (the line item is a copy made at
    /// the time of sale, contract §1.4).
    fn line_item_rules(
        &self,
        props: &mut BTreeMap<String, String>,
        creating: bool,
    ) -> ApiResult<()> {
        if let Some(p) = props.get("price")
            && p.parse::<f64>().is_ok_and(|v| v < 0.0)
        {
            return Err(properties::invalid_error(
                self.config.portal_id,
                &[Invalid {
                    name: "price".into(),
                    code: "INVALID_PROPERTY_VALUE",
                    message: format!("price must not be negative, got {p}"),
                }],
            ));
        }
        let percentage = props.get("hs_discount_percentage");
        if let Some(p) = percentage
            && p.parse::<f64>().is_ok_and(|v| !(0.0..=100.0).contains(&v))
        {
            return Err(properties::invalid_error(
                self.config.portal_id,
                &[Invalid {
                    name: "hs_discount_percentage".into(),
                    code: "INVALID_PROPERTY_VALUE",
                    message: format!("hs_discount_percentage must be between 0 and 100, got {p}"),
                }],
            ));
        }
        if let Some(d) = props.get("discount")
            && d.parse::<f64>().is_ok_and(|v| v < 0.0)
        {
            return Err(properties::invalid_error(
                self.config.portal_id,
                &[Invalid {
                    name: "discount".into(),
                    code: "INVALID_PROPERTY_VALUE",
                    message: format!("discount must not be negative, got {d}"),
                }],
            ));
        }
        if !creating {
            return Ok(());
        }
        let Some(pid) = props.get("hs_product_id").cloned() else {
            return Ok(());
        };
        let Some(product) = pid
            .parse::<u64>()
            .ok()
            .and_then(|n| self.get(ObjectType::Products, n))
        else {
            return Err(properties::invalid_error(
                self.config.portal_id,
                &[Invalid {
                    name: "hs_product_id".into(),
                    code: "INVALID_PROPERTY_VALUE",
                    message: format!("Product with ID {pid} does not exist"),
                }],
            ));
        };
        for key in [
            "name",
            "description",
            "price",
            "hs_sku",
            "recurringbillingfrequency",
            "hs_recurring_billing_period",
        ] {
            if !props.contains_key(key)
                && let Some(v) = product.properties.get(key)
            {
                props.insert(key.to_string(), v.clone());
            }
        }
        Ok(())
    }

    /// contract §1.3 / §8.12: a line item belongs to exactly one parent (deal, subscription,
    /// invoice; quotes and payment links are not simulated). Associating it with a second
    /// parent is rejected.
    pub fn check_line_item_parent(
        &self,
        a: ObjectType,
        a_id: u64,
        b: ObjectType,
        b_id: u64,
    ) -> ApiResult<()> {
        const PARENTS: [ObjectType; 3] = [
            ObjectType::Deals,
            ObjectType::Subscriptions,
            ObjectType::Invoices,
        ];
        let (li, parent_t, parent_id) = match (a, b) {
            (ObjectType::LineItems, p) if PARENTS.contains(&p) => (a_id, p, b_id),
            (p, ObjectType::LineItems) if PARENTS.contains(&p) => (b_id, p, a_id),
            _ => return Ok(()),
        };
        for p in PARENTS {
            for (pid, _) in self.assoc.list(ObjectType::LineItems, li, p) {
                if (p, pid) != (parent_t, parent_id) && self.get(p, pid).is_some() {
                    return Err(ApiError::validation(format!(
                        "Line item {li} already belongs to {} {pid}; a line item can only have one parent.",
                        p.singular()
                    ))
                    .sub_category("LINE_ITEM_ALREADY_HAS_PARENT"));
                }
            }
        }
        Ok(())
    }

    /// Parses inline associations into (target type, target id, type ids), all validated
    /// before anything is written (atomic create, contract §2.6).
    fn plan_associations(
        &self,
        t: ObjectType,
        assocs: &[InlineAssoc],
    ) -> ApiResult<Vec<(ObjectType, u64, Vec<u32>)>> {
        let mut plan: Vec<(ObjectType, u64, Vec<u32>)> = Vec::new();
        for a in assocs {
            let to_id_str = a.to.as_string();
            if a.types.is_empty() {
                return Err(ApiError::validation(
                    "associations[].types must not be empty",
                ));
            }
            for spec in &a.types {
                let Some(def) = self
                    .assoc
                    .types
                    .iter()
                    .find(|d| d.from == t && d.type_id == spec.association_type_id)
                else {
                    return Err(ApiError::validation(format!(
                        "{} is not a valid association type id from {}",
                        spec.association_type_id,
                        t.type_id()
                    ))
                    .sub_category("INVALID_ASSOCIATION_TYPE"));
                };
                let to_t = def.to;
                let Some(to_id) = to_id_str
                    .parse::<u64>()
                    .ok()
                    .filter(|id| self.get(to_t, *id).is_some())
                else {
                    return Err(ApiError::validation(format!(
                        "One or more associated objects were not found: {} {to_id_str}",
                        to_t.singular()
                    ))
                    .sub_category("INVALID_ASSOCIATION")
                    .context("id", json!([to_id_str])));
                };
                self.check_line_item_parent(t, 0, to_t, to_id)?;
                match plan
                    .iter_mut()
                    .find(|(pt, pid, _)| *pt == to_t && *pid == to_id)
                {
                    Some((_, _, ids)) => ids.push(spec.association_type_id),
                    None => plan.push((to_t, to_id, vec![spec.association_type_id])),
                }
            }
        }
        Ok(plan)
    }

    fn record_history(
        &mut self,
        t: ObjectType,
        id: u64,
        changes: &BTreeMap<String, String>,
        now: i64,
        source: ChangeSource,
    ) {
        for (k, v) in changes {
            self.history
                .entry((t, id, k.clone()))
                .or_default()
                .insert(0, (v.clone(), now, source.as_str()));
        }
    }

    fn emit(
        &mut self,
        kind: EventKind,
        t: ObjectType,
        id: u64,
        prop: Option<(&str, &str)>,
        source: ChangeSource,
    ) {
        let input = EventInput {
            kind,
            object_type: t,
            object_id: id,
            property: prop,
            source,
            occurred_at: self.now(),
            portal_id: self.config.portal_id,
            app_id: self.config.app_id,
        };
        self.webhooks.emit(&input);
    }

    /// Creates an object after validating everything (contract §9 behaviour list).
    pub fn create(
        &mut self,
        t: ObjectType,
        input: &Map<String, Value>,
        assocs: &[InlineAssoc],
        source: ChangeSource,
    ) -> ApiResult<u64> {
        if !t.api_writable() && source == ChangeSource::Integration {
            return Err(read_only_type(t));
        }
        let mut props =
            properties::validate_input(&self.registry, t, input, self.config.portal_id)?;
        props.retain(|_, v| !v.is_empty());
        if t == ObjectType::LineItems {
            self.line_item_rules(&mut props, true)?;
        }
        self.check_validation_rules(t, &props)?;
        if let Some(req) = self.config.required_properties.get(t.plural()) {
            properties::check_required(req, &props, self.config.portal_id)?;
        }
        self.check_unique(t, None, &props)?;
        if t == ObjectType::Subscriptions {
            billing::prepare_create(self, &mut props)?;
        }
        let plan = self.plan_associations(t, assocs)?;
        if t == ObjectType::LineItems
            && plan
                .iter()
                .filter(|(pt, _, _)| {
                    matches!(
                        pt,
                        ObjectType::Deals | ObjectType::Subscriptions | ObjectType::Invoices
                    )
                })
                .count()
                > 1
        {
            return Err(ApiError::validation(
                "A line item can only have one parent (deal, subscription, invoice, quote or payment link).",
            )
            .sub_category("LINE_ITEM_ALREADY_HAS_PARENT"));
        }
        let now = self.now();
        let id = self.alloc_id();
        let mut all = props.clone();
        all.insert("hs_object_id".into(), id.to_string());
        all.insert("hs_createdate".into(), clock::iso(now));
        all.insert("hs_lastmodifieddate".into(), clock::iso(now));
        if matches!(
            t,
            ObjectType::Contacts | ObjectType::Companies | ObjectType::Deals
        ) {
            all.insert("createdate".into(), clock::iso(now));
        }
        if t == ObjectType::Contacts {
            all.insert("lastmodifieddate".into(), clock::iso(now));
        }
        let obj = CrmObject {
            id,
            object_type: t,
            properties: all,
            created_at: now,
            updated_at: now,
            archived: false,
            archived_at: None,
        };
        self.search.record(&obj, now);
        self.value_index.record(t, id, None, Some(&obj));
        self.reindex_cycle(&obj);
        self.objects.entry(t).or_default().insert(id, obj);
        self.record_history(t, id, &props, now, source);
        if !self.skip_inline_associations {
            for (to_t, to_id, ids) in plan {
                for type_id in ids {
                    self.assoc.add(t, id, to_t, to_id, type_id);
                }
            }
        }
        self.emit(EventKind::Creation, t, id, None, source);
        if t == ObjectType::Subscriptions
            && let Some(obj) = self.get(t, id).cloned()
        {
            // A subscription created with invoice creation on is billable at once.
            let mut before = obj.clone();
            before
                .properties
                .insert("hs_invoice_creation".into(), "off".into());
            billing::after_update(self, &before, &obj);
        }
        for (k, v) in &props {
            self.emit(EventKind::PropertyChange, t, id, Some((k, v)), source);
        }
        Ok(id)
    }

    /// Validates an update without writing it. Returns the normalized changes.
    pub fn check_update(
        &self,
        t: ObjectType,
        id: u64,
        input: &Map<String, Value>,
        source: ChangeSource,
    ) -> ApiResult<BTreeMap<String, String>> {
        if !t.api_writable() && source == ChangeSource::Integration {
            return Err(read_only_type(t));
        }
        let Some(obj) = self.get(t, id) else {
            return Err(ApiError::object_not_found(&id.to_string()));
        };
        let changes = properties::validate_input(&self.registry, t, input, self.config.portal_id)?;
        if t == ObjectType::LineItems {
            let mut c = changes.clone();
            self.line_item_rules(&mut c, false)?;
        }
        self.check_validation_rules(t, &changes)?;
        self.check_unique(t, Some(id), &changes)?;
        if t == ObjectType::Subscriptions && source == ChangeSource::Integration {
            billing::check_update(self, obj, &changes)?;
        }
        Ok(changes)
    }

    pub fn update(
        &mut self,
        t: ObjectType,
        id: u64,
        input: &Map<String, Value>,
        source: ChangeSource,
    ) -> ApiResult<()> {
        let changes = self.check_update(t, id, input, source)?;
        self.apply_changes(t, id, changes, source);
        Ok(())
    }

    /// Writes already-validated values, maintaining timestamps, history, index and events.
    pub fn apply_changes(
        &mut self,
        t: ObjectType,
        id: u64,
        changes: BTreeMap<String, String>,
        source: ChangeSource,
    ) {
        let now = self.now();
        let mut changed = Vec::new();
        let before;
        {
            let Some(obj) = self.objects.get_mut(&t).and_then(|m| m.get_mut(&id)) else {
                return;
            };
            before = obj.clone();
            for (k, v) in &changes {
                let old = obj.properties.get(k).cloned().unwrap_or_default();
                if old != *v {
                    changed.push((k.clone(), v.clone()));
                }
                if v.is_empty() {
                    obj.properties.remove(k);
                } else {
                    obj.properties.insert(k.clone(), v.clone());
                }
            }
            obj.updated_at = now;
            obj.properties
                .insert("hs_lastmodifieddate".into(), clock::iso(now));
            if t == ObjectType::Contacts {
                obj.properties
                    .insert("lastmodifieddate".into(), clock::iso(now));
            }
        }
        self.record_history(t, id, &changes, now, source);
        if let Some(obj) = self.get_any(t, id).cloned() {
            self.search.record(&obj, now);
            self.value_index.record(t, id, Some(&before), Some(&obj));
            self.reindex_cycle(&obj);
            if t == ObjectType::Subscriptions {
                billing::after_update(self, &before, &obj);
            }
        }
        for (k, v) in changed {
            self.emit(EventKind::PropertyChange, t, id, Some((&k, &v)), source);
        }
    }

    /// Keeps the cycle index current after a write of `obj` (only subscriptions are indexed).
    fn reindex_cycle(&mut self, obj: &CrmObject) {
        if obj.object_type == ObjectType::Subscriptions {
            let next = billing::next_cycle_at(&self.billing, obj);
            self.cycle_index.update(obj.id, next);
        }
    }

    pub fn archive(&mut self, t: ObjectType, id: u64, source: ChangeSource) -> ApiResult<()> {
        if !t.api_writable() && source == ChangeSource::Integration {
            return Err(read_only_type(t));
        }
        let Some(obj) = self.get(t, id) else {
            // HubSpot answers 204 for an unknown id on archive.
            return Ok(());
        };
        if t == ObjectType::Subscriptions && source == ChangeSource::Integration {
            billing::check_delete(obj)?;
        }
        let now = self.now();
        let before = obj.clone();
        if let Some(obj) = self.objects.get_mut(&t).and_then(|m| m.get_mut(&id)) {
            obj.archived = true;
            obj.archived_at = Some(now);
            obj.updated_at = now;
        }
        if let Some(obj) = self.get_any(t, id).cloned() {
            self.search.record(&obj, now);
            self.value_index.record(t, id, Some(&before), Some(&obj));
            self.reindex_cycle(&obj);
        }
        self.emit(EventKind::Deletion, t, id, None, source);
        Ok(())
    }

    /// v3 `SimplePublicObject` JSON.
    pub fn render(&self, obj: &CrmObject, sel: &Selection) -> Value {
        let t = obj.object_type;
        let mut props = Map::new();
        let always = [
            "hs_object_id",
            "hs_createdate",
            "hs_lastmodifieddate",
            "createdate",
        ];
        let wanted: Vec<String> = if sel.all_set {
            obj.properties.keys().cloned().collect()
        } else {
            match &sel.properties {
                Some(list) => list.clone(),
                None => properties::default_read_properties(t)
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            }
        };
        for name in wanted.iter().map(String::as_str).chain(always) {
            if name == "createdate" && !obj.properties.contains_key("createdate") {
                continue;
            }
            if self.registry.get(t, name).is_none() {
                continue;
            }
            props.insert(
                name.to_string(),
                obj.properties
                    .get(name)
                    .map(|v| json!(v))
                    .unwrap_or(Value::Null),
            );
        }
        let mut out = json!({
            "id": obj.id.to_string(),
            "properties": props,
            "createdAt": clock::iso(obj.created_at),
            "updatedAt": clock::iso(obj.updated_at),
            "archived": obj.archived,
        });
        if let Value::Object(map) = &mut out {
            if let Some(at) = obj.archived_at {
                map.insert("archivedAt".into(), json!(clock::iso(at)));
            }
            if !sel.with_history.is_empty() {
                let mut hist = Map::new();
                for name in &sel.with_history {
                    let entries: Vec<Value> = self
                        .history
                        .get(&(t, obj.id, name.clone()))
                        .map(|v| {
                            v.iter()
                                .map(|(val, ts, src)| {
                                    json!({"value": val, "timestamp": clock::iso(*ts), "sourceType": src})
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    hist.insert(name.clone(), Value::Array(entries));
                }
                map.insert("propertiesWithHistory".into(), Value::Object(hist));
            }
            if !sel.associations.is_empty() {
                let mut assoc = Map::new();
                for to in &sel.associations {
                    let results: Vec<Value> = self
                        .assoc
                        .list(t, obj.id, *to)
                        .into_iter()
                        .filter(|(id, _)| self.get(*to, *id).is_some())
                        .flat_map(|(id, types)| types.into_iter().map(move |ty| (id, ty)))
                        .map(|(id, ty)| {
                            json!({"id": id.to_string(),
                                   "type": format!("{}_to_{}", t.singular(), to.singular()),
                                   "typeId": ty})
                        })
                        .collect();
                    if !results.is_empty() {
                        assoc.insert(to.plural().to_string(), json!({"results": results}));
                    }
                }
                if !assoc.is_empty() {
                    map.insert("associations".into(), Value::Object(assoc));
                }
            }
        }
        out
    }
}

/// Payments and invoices: the simulated app only holds read scopes for them.
pub fn read_only_type(t: ObjectType) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call.",
    )
    .error_detail(json!({
        "message": "One or more of the following scopes are required.",
        "context": {"requiredGranularScopes": [format!("crm.objects.{}.write", t.plural())]}
    }))
    .link("scopes", "https://developers.hubspot.com/scopes")
}

//! Typed HubSpot endpoints over [`Transport`], pinned to one date-based API version (contract §0:
//! `2026-09`; §1.1 path families). Each function is one documented call; the algorithms live
//! elsewhere.

use super::error::{HubSpotError, Result};
use super::http::{Call, Transport};
use super::wire::{
    AssocBatchRow, AssocTarget, AssocType, BatchJson, ObjectJson, Page, PropertyJson,
};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use crate::text::percent_encode;

/// Batch endpoints take at most 100 inputs (contract §3).
pub const MAX_BATCH: usize = 100;
/// Guard against a portal that pages forever.
const MAX_PAGES: usize = 1000;

/// The CRM object types the client touches (contract §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Obj {
    Contacts,
    Companies,
    Deals,
    Products,
    LineItems,
    Subscriptions,
}

impl Obj {
    pub fn path(self) -> &'static str {
        match self {
            Obj::Contacts => "contacts",
            Obj::Companies => "companies",
            Obj::Deals => "deals",
            Obj::Products => "products",
            Obj::LineItems => "line_items",
            Obj::Subscriptions => "subscriptions",
        }
    }

    /// Keys under which reads with `associations=` may report this type.
    pub fn assoc_keys(self) -> &'static [&'static str] {
        match self {
            Obj::Contacts => &["contacts", "contact", "0-1"],
            Obj::Companies => &["companies", "company", "0-2"],
            Obj::Deals => &["deals", "deal", "0-3"],
            Obj::Products => &["products", "product", "0-7"],
            Obj::LineItems => &["line_items", "line_item", "line items", "0-8"],
            Obj::Subscriptions => &["subscriptions", "subscription", "0-69"],
        }
    }
}

/// HubSpot-defined association type ids (contract §1.7).
pub mod assoc {
    pub const SUBSCRIPTION_TO_LINE_ITEM: u32 = 301;
    pub const SUBSCRIPTION_TO_COMPANY: u32 = 297;
    pub const SUBSCRIPTION_TO_DEAL: u32 = 299;
    pub const DEAL_TO_COMPANY: u32 = 341;
    pub const DEAL_TO_COMPANY_PRIMARY: u32 = 5;
    pub const LINE_ITEM_TO_DEAL: u32 = 20;
    pub const CONTACT_TO_COMPANY: u32 = 279;
    /// The contact's primary company. Not in the contract's §1.7 table (which lists only the
    /// unlabeled 279/280); it is HubSpot's long-standing id for the "Primary" label, the
    /// contact-side twin of [`DEAL_TO_COMPANY_PRIMARY`].
    pub const CONTACT_TO_COMPANY_PRIMARY: u32 = 1;
}

/// Ids go into URL paths: accept only HubSpot's numeric strings (contract §6).
pub fn path_id(id: &str) -> Result<&str> {
    if !id.is_empty() && id.len() <= 30 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(HubSpotError::Invalid(format!(
            "{id:?} is not a HubSpot object id"
        )))
    }
}

pub(crate) fn type_spec(type_id: u32) -> Value {
    json!({"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id})
}

/// An inline association of a create (contract §2.6 step 4).
pub fn inline_assoc(to_id: &str, type_id: u32) -> Value {
    json!({"to": {"id": to_id}, "types": [type_spec(type_id)]})
}

pub(crate) fn props_json(props: &BTreeMap<String, String>) -> Value {
    Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// The endpoints of one API version.
#[derive(Debug)]
pub struct Api {
    pub http: Transport,
    pub version: String,
}

impl Api {
    fn objects(&self, t: Obj) -> String {
        format!("/crm/objects/{}/{}", self.version, t.path())
    }

    /// contract §2.3: `batch/upsert` with a unique `idProperty`; returns the id and `new`.
    pub async fn upsert_unique(
        &self,
        t: Obj,
        id_property: &str,
        id_value: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<(String, bool)> {
        let op = format!("upsert {}", t.path());
        let call = Call::new(
            &op,
            Method::POST,
            format!("{}/batch/upsert", self.objects(t)),
        )
        .json(
            json!({"inputs": [{"idProperty": id_property, "id": id_value,
                                     "properties": props_json(props)}]}),
        )
        // Upsert by a unique key converges however often it is repeated (contract §2.3).
        .idempotent();
        let mut attempt = 0;
        let batch: BatchJson<ObjectJson> = loop {
            attempt += 1;
            match self.http.json(&call).await {
                // contract §2.4: a unique-value conflict means a concurrent writer (another
                // subscription of the same tenant) created the record first; the next upsert
                // finds it and updates it.
                Err(HubSpotError::Conflict { .. }) if attempt < 3 => continue,
                other => break other?,
            }
        };
        if let Some(err) = batch.errors.first() {
            let body = super::error::ApiErrorBody::parse(err.to_string().as_bytes());
            return Err(HubSpotError::from_status(&op, 400, body));
        }
        let first = batch
            .results
            .into_iter()
            .next()
            .ok_or_else(|| HubSpotError::Decode {
                op: op.clone(),
                reason: "upsert returned no result".into(),
            })?;
        Ok((first.id, first.new.unwrap_or(false)))
    }

    /// `POST /{type}` with inline associations. Never retried blindly.
    pub async fn create(
        &self,
        t: Obj,
        props: &BTreeMap<String, String>,
        associations: Vec<Value>,
    ) -> Result<ObjectJson> {
        let call = Call::new(
            format!("create {}", t.path()),
            Method::POST,
            self.objects(t),
        )
        .json(json!({"properties": props_json(props), "associations": associations}));
        self.http.json(&call).await
    }

    /// `GET /{type}/{id}` with chosen properties and associations.
    pub async fn read(
        &self,
        t: Obj,
        id: &str,
        props: &[&str],
        associations: &[Obj],
    ) -> Result<ObjectJson> {
        let mut call = Call::new(
            format!("read {}", t.path()),
            Method::GET,
            format!("{}/{}", self.objects(t), path_id(id)?),
        )
        .query("properties", props.join(","));
        if !associations.is_empty() {
            let list: Vec<&str> = associations.iter().map(|a| a.path()).collect();
            call = call.query("associations", list.join(","));
        }
        self.http.json(&call).await
    }

    /// `GET /{type}/{value}?idProperty=…` (contract §2.3): one live object by a unique property
    /// (or `email` for contacts), with chosen properties and associations; `None` when no live
    /// object has that value. An object read, so read-your-writes, unlike search (§2.5).
    pub async fn read_by_unique(
        &self,
        t: Obj,
        id_property: &str,
        value: &str,
        props: &[&str],
        associations: &[Obj],
    ) -> Result<Option<ObjectJson>> {
        if value.is_empty() {
            return Err(HubSpotError::Invalid(format!(
                "empty {id_property} to read {} by",
                t.path()
            )));
        }
        let mut call = Call::new(
            format!("read {} by {id_property}", t.path()),
            Method::GET,
            // A unique value (e.g. a contact's email) as one path segment.
            format!("{}/{}", self.objects(t), percent_encode(value)),
        )
        .query("idProperty", id_property)
        .query("properties", props.join(","));
        if !associations.is_empty() {
            let list: Vec<&str> = associations.iter().map(|a| a.path()).collect();
            call = call.query("associations", list.join(","));
        }
        match self.http.json::<ObjectJson>(&call).await {
            Ok(o) if !o.archived => Ok(Some(o)),
            Ok(_) | Err(HubSpotError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PATCH /{type}/{id}`: repeating it is harmless (contract §2.6 step 5).
    pub async fn update(&self, t: Obj, id: &str, props: &BTreeMap<String, String>) -> Result<()> {
        let call = Call::new(
            format!("update {}", t.path()),
            Method::PATCH,
            format!("{}/{}", self.objects(t), path_id(id)?),
        )
        .json(json!({"properties": props_json(props)}));
        self.http.send(&call).await.map(|_| ())
    }

    /// `DELETE /{type}/{id}`; an object already gone counts as deleted.
    pub async fn archive(&self, t: Obj, id: &str) -> Result<()> {
        let call = Call::new(
            format!("archive {}", t.path()),
            Method::DELETE,
            format!("{}/{}", self.objects(t), path_id(id)?),
        );
        match self.http.send(&call).await {
            Ok(_) | Err(HubSpotError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `batch/read` of ≤100 ids (by `hs_object_id`, or by a unique `id_property`).
    pub async fn batch_read(
        &self,
        t: Obj,
        ids: &[String],
        props: &[&str],
        id_property: Option<&str>,
    ) -> Result<Vec<ObjectJson>> {
        if ids.len() > MAX_BATCH {
            return Err(HubSpotError::Invalid(format!(
                "batch read of {} ids (max {MAX_BATCH})",
                ids.len()
            )));
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = json!({
            "inputs": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "properties": props,
        });
        if let (Some(p), Value::Object(m)) = (id_property, &mut body) {
            m.insert("idProperty".into(), json!(p));
        }
        let call = Call::new(
            format!("batch read {}", t.path()),
            Method::POST,
            format!("{}/batch/read", self.objects(t)),
        )
        .json(body)
        .idempotent();
        let batch: BatchJson<ObjectJson> = self.http.json(&call).await?;
        Ok(batch.results)
    }

    /// One page of `GET /{type}` (contract §6: `limit` ≤100, `after`).
    pub async fn list_page(
        &self,
        t: Obj,
        after: Option<&str>,
        props: &[&str],
        associations: &[Obj],
    ) -> Result<(Vec<ObjectJson>, Option<String>)> {
        let mut call = Call::new(format!("list {}", t.path()), Method::GET, self.objects(t))
            .query("limit", MAX_BATCH.to_string())
            .query("properties", props.join(","));
        if !associations.is_empty() {
            let list: Vec<&str> = associations.iter().map(|a| a.path()).collect();
            call = call.query("associations", list.join(","));
        }
        if let Some(a) = after {
            call = call.query("after", a);
        }
        let page: Page<ObjectJson> = self.http.json(&call).await?;
        let next = page.next_after();
        Ok((page.results, next))
    }

    /// `POST /{type}/search` with one `EQ` filter (contract §2.5; search bucket).
    pub async fn search_eq(
        &self,
        t: Obj,
        property: &str,
        value: &str,
        props: &[&str],
    ) -> Result<Vec<ObjectJson>> {
        let call = Call::new(
            format!("search {}", t.path()),
            Method::POST,
            format!("{}/search", self.objects(t)),
        )
        .json(json!({
            "filterGroups": [{"filters": [{"propertyName": property, "operator": "EQ", "value": value}]}],
            "properties": props,
            "limit": 10,
        }))
        .idempotent()
        .search();
        let page: Page<ObjectJson> = self.http.json(&call).await?;
        Ok(page.results)
    }

    /// `GET /{from}/{id}/associations/{to}`, all pages (contract §2.6 step 3: an association
    /// read, never a search).
    pub async fn associated_ids(&self, from: Obj, id: &str, to: Obj) -> Result<Vec<String>> {
        let path = format!(
            "{}/{}/associations/{}",
            self.objects(from),
            path_id(id)?,
            to.path()
        );
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut call = Call::new(
                format!("list {} associations of {}", to.path(), from.path()),
                Method::GET,
                path.clone(),
            )
            .query("limit", "500");
            if let Some(a) = &after {
                call = call.query("after", a.clone());
            }
            let page: Page<AssocTarget> = self.http.json(&call).await?;
            ids.extend(page.results.iter().map(|r| r.to_object_id.clone()));
            after = page.next_after();
            if after.is_none() {
                break;
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// `PUT /{from}/{id}/associations/{to}/{toId}` with labels; it replaces the pair's labels,
    /// so all wanted labels are sent every time (contract §1.7). Repeating it is harmless.
    pub async fn associate(
        &self,
        from: Obj,
        id: &str,
        to: Obj,
        to_id: &str,
        type_ids: &[u32],
    ) -> Result<()> {
        let call = Call::new(
            format!("associate {} with {}", from.path(), to.path()),
            Method::PUT,
            format!(
                "{}/{}/associations/{}/{}",
                self.objects(from),
                path_id(id)?,
                to.path(),
                path_id(to_id)?
            ),
        )
        .json(Value::Array(
            type_ids.iter().map(|t| type_spec(*t)).collect(),
        ));
        self.http.send(&call).await.map(|_| ())
    }

    /// Batch association read (≤1,000 inputs per the contract; we send ≤100 to match object
    /// batches): `from id → [to ids]`.
    pub async fn batch_associated(
        &self,
        from: Obj,
        to: Obj,
        ids: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>> {
        let mut out = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let call = Call::new(
            format!("batch read {} associations of {}", to.path(), from.path()),
            Method::POST,
            format!(
                "/crm/associations/{}/{}/{}/batch/read",
                self.version,
                from.path(),
                to.path()
            ),
        )
        .json(json!({"inputs": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()}))
        .idempotent();
        let batch: BatchJson<AssocBatchRow> = self.http.json(&call).await?;
        for row in batch.results {
            let mut to_ids: Vec<String> = row.to.into_iter().map(|t| t.to_object_id).collect();
            to_ids.sort();
            out.insert(row.from.id, to_ids);
        }
        Ok(out)
    }

    /// `GET /crm/associations/{v}/{from}/{to}/labels` (contract §1.7).
    pub async fn labels(&self, from: Obj, to: Obj) -> Result<Vec<AssocType>> {
        let call = Call::new(
            format!("read {}→{} association labels", from.path(), to.path()),
            Method::GET,
            format!(
                "/crm/associations/{}/{}/{}/labels",
                self.version,
                from.path(),
                to.path()
            ),
        );
        let page: Page<AssocType> = self.http.json(&call).await?;
        Ok(page.results)
    }

    /// `GET /crm/properties/{v}/{type}/{name}`; `None` on 404.
    pub async fn property(&self, t: Obj, name: &str) -> Result<Option<PropertyJson>> {
        let call = Call::new(
            format!("read property {}.{name}", t.path()),
            Method::GET,
            format!("/crm/properties/{}/{}/{name}", self.version, t.path()),
        );
        match self.http.json(&call).await {
            Ok(p) => Ok(Some(p)),
            Err(HubSpotError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /crm/properties/{v}/{type}`. Creating a property that exists is a conflict, which
    /// the bootstrap treats as success (contract §2.6 preconditions), so it may be repeated.
    pub async fn create_property(&self, t: Obj, definition: Value) -> Result<()> {
        let call = Call::new(
            format!("create property on {}", t.path()),
            Method::POST,
            format!("/crm/properties/{}/{}", self.version, t.path()),
        )
        .json(definition)
        .idempotent();
        self.http.send(&call).await.map(|_| ())
    }

    /// `POST /payments-subscriptions/v1/subscriptions/crm/{id}/{action}` (contract §1.2).
    pub async fn lifecycle(&self, id: &str, action: &str, body: Option<Value>) -> Result<()> {
        let mut call = Call::new(
            format!("{action} subscription"),
            Method::POST,
            format!(
                "/payments-subscriptions/v1/subscriptions/crm/{}/{action}",
                path_id(id)?
            ),
        );
        if let Some(b) = body {
            call = call.json(b);
        }
        self.http.send(&call).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numeric_ids_reach_paths() {
        assert_eq!(path_id("123").unwrap(), "123");
        for bad in ["", "12/../x", "1?a=b", "abc", "1 2"] {
            assert!(path_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inline_association_shape() {
        assert_eq!(
            inline_assoc("7", 299),
            json!({"to": {"id": "7"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 299}]})
        );
    }
}

//! Batch endpoints of [`Api`] used by the coalescer (contract §1.1 "Standard operations",
//! §1.7 association batches, §2.3, §3 "Batch sizes"). Each function is one documented call of
//! ≤100 inputs; every input carries its position as `objectWriteTraceId`, so a 207 names the
//! inputs that failed (contract §4: only when trace ids are sent).

use super::api::{Api, MAX_BATCH, Obj, props_json, type_spec};
use super::batch::trace_id;
use super::error::{HubSpotError, Result};
use super::http::Call;
use super::wire::{AssocWritten, BatchJson, ObjectJson, Page};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One object to create, with its inline associations (contract §2.6 step 4).
#[derive(Debug, Clone)]
pub struct NewObject {
    pub properties: BTreeMap<String, String>,
    pub associations: Vec<Value>,
}

/// One upsert by a unique property (contract §2.3): `id` is the property's value.
#[derive(Debug, Clone)]
pub struct UpsertInput {
    pub id: String,
    pub properties: BTreeMap<String, String>,
}

fn check_size(op: &str, n: usize) -> Result<()> {
    if n > MAX_BATCH {
        return Err(HubSpotError::Invalid(format!(
            "{op} of {n} inputs (max {MAX_BATCH})"
        )));
    }
    Ok(())
}

impl Api {
    fn batch_path(&self, t: Obj, action: &str) -> String {
        format!("/crm/objects/{}/{}/batch/{action}", self.version, t.path())
    }

    /// `POST /{type}/batch/upsert` by a unique `id_property`: converges however often it is
    /// repeated, so it is retried like a read (contract §2.3).
    pub async fn batch_upsert(
        &self,
        t: Obj,
        id_property: &str,
        inputs: &[&UpsertInput],
    ) -> Result<BatchJson<ObjectJson>> {
        let op = format!("batch upsert {}", t.path());
        check_size(&op, inputs.len())?;
        let inputs: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, u)| {
                json!({"idProperty": id_property, "id": u.id,
                       "properties": props_json(&u.properties), "objectWriteTraceId": trace_id(i)})
            })
            .collect();
        let call = Call::new(&op, Method::POST, self.batch_path(t, "upsert"))
            .json(json!({ "inputs": inputs }))
            .idempotent();
        self.http.json(&call).await
    }

    /// `POST /{type}/batch/create` with inline associations per input. A create: never retried
    /// blindly; a failure after sending is ambiguous for every input (contract §2.6 "Rules").
    pub async fn batch_create(
        &self,
        t: Obj,
        inputs: &[&NewObject],
    ) -> Result<BatchJson<ObjectJson>> {
        let op = format!("batch create {}", t.path());
        check_size(&op, inputs.len())?;
        let inputs: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                json!({"properties": props_json(&o.properties), "associations": o.associations,
                       "objectWriteTraceId": trace_id(i)})
            })
            .collect();
        let call = Call::new(&op, Method::POST, self.batch_path(t, "create"))
            .json(json!({ "inputs": inputs }));
        self.http.json(&call).await
    }

    /// `POST /{type}/batch/update` by object id. Repeating it is harmless.
    pub async fn batch_update(
        &self,
        t: Obj,
        inputs: &[(&str, &BTreeMap<String, String>)],
    ) -> Result<BatchJson<ObjectJson>> {
        let op = format!("batch update {}", t.path());
        check_size(&op, inputs.len())?;
        let inputs: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, (id, p))| {
                json!({"id": id, "properties": props_json(p), "objectWriteTraceId": trace_id(i)})
            })
            .collect();
        let call = Call::new(&op, Method::POST, self.batch_path(t, "update"))
            .json(json!({ "inputs": inputs }))
            .idempotent();
        self.http.json(&call).await
    }

    /// `POST /crm/associations/{v}/{from}/{to}/batch/create` (≤2,000 inputs per the contract;
    /// the coalescer sends ≤100). Like the PUT it replaces the pair's labels, so all wanted
    /// labels are sent; repeating it is harmless (contract §1.7).
    pub async fn batch_link(
        &self,
        from: Obj,
        to: Obj,
        type_ids: &[u32],
        pairs: &[(&str, &str)],
    ) -> Result<BatchJson<AssocWritten>> {
        let op = format!("batch associate {} with {}", from.path(), to.path());
        check_size(&op, pairs.len())?;
        let types: Vec<Value> = type_ids.iter().map(|t| type_spec(*t)).collect();
        let inputs: Vec<Value> = pairs
            .iter()
            .map(|(f, t)| json!({"from": {"id": f}, "to": {"id": t}, "types": types}))
            .collect();
        let call = Call::new(
            &op,
            Method::POST,
            format!(
                "/crm/associations/{}/{}/{}/batch/create",
                self.version,
                from.path(),
                to.path()
            ),
        )
        .json(json!({ "inputs": inputs }))
        .idempotent();
        self.http.json(&call).await
    }

    /// `POST /{type}/search` with one `IN` filter: objects whose `property` is one of `values`
    /// (contract §2.5: `IN` on strings takes lowercase values and matches case-insensitively;
    /// the caller compares exactly). One page of ≤200 (search bucket, contract §3).
    pub async fn search_in(
        &self,
        t: Obj,
        property: &str,
        values: &[&str],
        props: &[&str],
    ) -> Result<Vec<ObjectJson>> {
        let lower: Vec<String> = values.iter().map(|v| v.to_lowercase()).collect();
        let call = Call::new(
            format!("search {}", t.path()),
            Method::POST,
            format!("/crm/objects/{}/{}/search", self.version, t.path()),
        )
        .json(json!({
            "filterGroups": [{"filters": [{"propertyName": property, "operator": "IN", "values": lower}]}],
            "properties": props,
            "limit": 200,
        }))
        .idempotent()
        .search();
        let page: Page<ObjectJson> = self.http.json(&call).await?;
        Ok(page.results)
    }
}

//! The coalescer: billing work from concurrent reconciles is gathered for a short linger
//! ([`HubSpotConfig::batch_linger`](super::HubSpotConfig::batch_linger)) and sent as batch calls
//! of ≤100 inputs, so a burst of purchases costs a few requests per step instead of one per
//! purchase. The rate limiter counts one request per batch (it sees one HTTP call).
//!
//! Every caller gets its own result back (a oneshot per input). What goes into a request and how
//! per-input outcomes map back is decided in [`super::batch`]; here inputs only queue ([`lane`])
//! and are sent.
//!
//! Safety is the single-call algorithm's (contract §2.6): a batch create that fails after it was
//! sent is ambiguous for each of its inputs, so each caller goes back to its lookup; an input a
//! 207 reports as failed was not written; a failed or unanswered upsert is looked up by its unique
//! property, never created blindly. A whole batch refused for its content (a 4xx: nothing was
//! written) is sent again input by input, so one bad input cannot hold up the others.
//!
//! Not batched, because HubSpot documents no batch endpoint for them: the subscription lifecycle
//! calls (cancel, pause, unpause, contract §1.2) and the product search (cached per SKU). The
//! rare repair paths (relink, retiring duplicates, CRM-only mode) stay single calls too.

use super::api::Obj;
use super::api_batch::{NewObject, UpsertInput};
use super::batch::{InputOutcome, dedup, input_error, match_outcomes, refused_as_a_whole};
use super::client::HubSpotClient;
use super::error::{HubSpotError, Result};
use super::wire::ObjectJson;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod lane;

use lane::Lane;

/// The lanes of one kind of call, by their key.
type LaneMap<K, I, O> = Mutex<HashMap<K, Arc<Lane<I, O>>>>;
/// Properties to write, by name.
type Props = BTreeMap<String, String>;

/// Lanes by what they batch. Within one key every caller passes the same parameters (the
/// object type and unique property, the association types, the properties read).
#[derive(Default)]
pub(crate) struct Lanes {
    upserts: LaneMap<(Obj, &'static str), UpsertInput, (String, bool)>,
    creates: LaneMap<Obj, NewObject, ObjectJson>,
    updates: LaneMap<Obj, (String, Props), ()>,
    links: LaneMap<(Obj, Obj), (String, String), ()>,
    associated: LaneMap<(Obj, Obj), String, Vec<String>>,
    reads: LaneMap<Obj, String, Option<ObjectJson>>,
    products: LaneMap<(), String, Option<String>>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lanes")
    }
}

fn lane<K: Hash + Eq, I: Send + 'static, O: Send + 'static>(
    map: &LaneMap<K, I, O>,
    key: K,
    op: impl FnOnce() -> String,
) -> Arc<Lane<I, O>> {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(m.entry(key).or_insert_with(|| Arc::new(Lane::new(op()))))
}

/// One result for every caller: what their shared input got.
fn fan_out<T: Clone>(of_caller: &[usize], answers: &[Result<T>]) -> Vec<Result<T>> {
    of_caller.iter().map(|u| answers[*u].clone()).collect()
}

impl HubSpotClient {
    fn linger(&self) -> Duration {
        self.config().batch_linger
    }

    /// Upsert by a unique property (contract §2.3), coalesced; returns the id and `new`.
    pub(crate) async fn upsert_batched(
        &self,
        t: Obj,
        id_property: &'static str,
        id: &str,
        properties: BTreeMap<String, String>,
    ) -> Result<(String, bool)> {
        let lane = lane(&self.inner.lanes.upserts, (t, id_property), || {
            format!("upsert {}", t.path())
        });
        let client = self.clone();
        let input = UpsertInput {
            id: id.to_string(),
            properties,
        };
        lane.submit(input, self.linger(), move |inputs| {
            let client = client.clone();
            async move { client.run_upserts(t, id_property, inputs).await }
        })
        .await
    }

    async fn run_upserts(
        &self,
        t: Obj,
        id_property: &'static str,
        inputs: Vec<UpsertInput>,
    ) -> Vec<Result<(String, bool)>> {
        let api = self.api();
        let plan = dedup(&inputs.iter().map(|i| i.id.as_str()).collect::<Vec<_>>());
        let sent: Vec<&UpsertInput> = plan.sent.iter().map(|c| &inputs[*c]).collect();
        let answers: Vec<Result<(String, bool)>> = match api
            .batch_upsert(t, id_property, &sent)
            .await
        {
            Err(e) if refused_as_a_whole(&e, sent.len()) => {
                futures::future::join_all(
                    sent.iter()
                        .map(|u| api.upsert_unique(t, id_property, &u.id, &u.properties)),
                )
                .await
            }
            Err(e) => vec![Err(e); sent.len()],
            Ok(batch) => {
                let outcomes = match_outcomes(sent.len(), batch.results, &batch.errors, |o| {
                    let v = o.prop(id_property)?;
                    sent.iter().position(|u| u.id == v)
                });
                let mut answers = Vec::new();
                for (u, outcome) in sent.iter().zip(outcomes) {
                    answers.push(match outcome {
                        InputOutcome::Done(o) => Ok((o.id, o.new.unwrap_or(false))),
                        // Back to the lookup: the unique property finds what exists (its
                        // properties are written by a later ensure).
                        InputOutcome::Failed(body) => {
                            tracing::warn!(op = %api_op(t), id = %u.id, error = %body, "HubSpot refused one input of a batch upsert; looking it up");
                            self.lookup_unique(t, id_property, &u.id)
                                .await
                                .and_then(|found| {
                                    found.ok_or_else(|| input_error(&api_op(t), body))
                                })
                        }
                        InputOutcome::Unanswered => self
                            .lookup_unique(t, id_property, &u.id)
                            .await
                            .and_then(|found| {
                                found.ok_or_else(|| HubSpotError::Decode {
                                    op: api_op(t),
                                    reason: format!("no result for {id_property} {}", u.id),
                                })
                            }),
                    });
                }
                answers
            }
        };
        fan_out(&plan.of_caller, &answers)
    }

    async fn lookup_unique(
        &self,
        t: Obj,
        id_property: &str,
        value: &str,
    ) -> Result<Option<(String, bool)>> {
        Ok(self
            .api()
            .read_by_unique(t, id_property, value, &[id_property], &[])
            .await?
            .map(|o| (o.id, false)))
    }

    /// A create with inline associations, coalesced. A failure after sending is ambiguous.
    pub(crate) async fn create_batched(&self, t: Obj, object: NewObject) -> Result<ObjectJson> {
        let lane = lane(&self.inner.lanes.creates, t, || {
            format!("create {}", t.path())
        });
        let client = self.clone();
        lane.submit(object, self.linger(), move |inputs| {
            let client = client.clone();
            async move { client.run_creates(t, inputs).await }
        })
        .await
    }

    async fn run_creates(&self, t: Obj, inputs: Vec<NewObject>) -> Vec<Result<ObjectJson>> {
        let api = self.api();
        let refs: Vec<&NewObject> = inputs.iter().collect();
        let op = format!("create {}", t.path());
        match api.batch_create(t, &refs).await {
            // Refused as a whole for its content: nothing was written; each input alone.
            Err(e) if refused_as_a_whole(&e, refs.len()) => {
                futures::future::join_all(
                    refs.iter()
                        .map(|o| api.create(t, &o.properties, o.associations.clone())),
                )
                .await
            }
            Err(e) => vec![Err(e); refs.len()],
            Ok(batch) => match_outcomes(refs.len(), batch.results, &batch.errors, |_| None)
                .into_iter()
                .map(|outcome| match outcome {
                    InputOutcome::Done(o) => Ok(o),
                    InputOutcome::Failed(body) => Err(input_error(&op, body)),
                    InputOutcome::Unanswered => Err(HubSpotError::AmbiguousAfterCommit {
                        op: op.clone(),
                        status: None,
                    }),
                })
                .collect(),
        }
    }

    /// A property update by object id, coalesced. Repeating it is harmless.
    pub(crate) async fn update_batched(
        &self,
        t: Obj,
        id: &str,
        properties: BTreeMap<String, String>,
    ) -> Result<()> {
        let lane = lane(&self.inner.lanes.updates, t, || {
            format!("update {}", t.path())
        });
        let client = self.clone();
        lane.submit((id.to_string(), properties), self.linger(), move |inputs| {
            let client = client.clone();
            async move { client.run_updates(t, inputs).await }
        })
        .await
    }

    async fn run_updates(
        &self,
        t: Obj,
        inputs: Vec<(String, BTreeMap<String, String>)>,
    ) -> Vec<Result<()>> {
        let api = self.api();
        let plan = dedup(&inputs.iter().map(|i| i.0.as_str()).collect::<Vec<_>>());
        let sent: Vec<(&str, &BTreeMap<String, String>)> = plan
            .sent
            .iter()
            .map(|c| (inputs[*c].0.as_str(), &inputs[*c].1))
            .collect();
        let op = format!("update {}", t.path());
        let answers: Vec<Result<()>> = match api.batch_update(t, &sent).await {
            Err(e) if refused_as_a_whole(&e, sent.len()) => {
                futures::future::join_all(sent.iter().map(|(id, p)| api.update(t, id, p))).await
            }
            Err(e) => vec![Err(e); sent.len()],
            Ok(batch) => {
                let outcomes = match_outcomes(sent.len(), batch.results, &batch.errors, |o| {
                    sent.iter().position(|(id, _)| *id == o.id)
                });
                let mut answers = Vec::new();
                for (s, outcome) in sent.iter().zip(outcomes) {
                    answers.push(match outcome {
                        InputOutcome::Done(_) => Ok(()),
                        InputOutcome::Failed(body) => Err(input_error(&op, body)),
                        // An update is safe to repeat: ask again for this one alone.
                        InputOutcome::Unanswered => api.update(t, s.0, s.1).await,
                    });
                }
                answers
            }
        };
        fan_out(&plan.of_caller, &answers)
    }

    /// An association with labels (`type_ids`, the same for every caller of `from`→`to`),
    /// coalesced into association batch creates. Repeating it is harmless (contract §1.7).
    pub(crate) async fn link_batched(
        &self,
        from: Obj,
        from_id: &str,
        to: Obj,
        to_id: &str,
        type_ids: &[u32],
    ) -> Result<()> {
        let lane = lane(&self.inner.lanes.links, (from, to), || {
            format!("associate {} with {}", from.path(), to.path())
        });
        let client = self.clone();
        let pair = (from_id.to_string(), to_id.to_string());
        let types: Arc<[u32]> = type_ids.into();
        lane.submit(pair, self.linger(), move |inputs| {
            let client = client.clone();
            let types = Arc::clone(&types);
            async move { client.run_links(from, to, &types, inputs).await }
        })
        .await
    }

    async fn run_links(
        &self,
        from: Obj,
        to: Obj,
        type_ids: &[u32],
        inputs: Vec<(String, String)>,
    ) -> Vec<Result<()>> {
        let api = self.api();
        let plan = dedup(&inputs);
        let sent: Vec<(&str, &str)> = plan
            .sent
            .iter()
            .map(|c| (inputs[*c].0.as_str(), inputs[*c].1.as_str()))
            .collect();
        let answers: Vec<Result<()>> = match api.batch_link(from, to, type_ids, &sent).await {
            Err(e) if refused_as_a_whole(&e, sent.len()) => {
                futures::future::join_all(
                    sent.iter()
                        .map(|(f, t)| api.associate(from, f, to, t, type_ids)),
                )
                .await
            }
            Err(e) => vec![Err(e); sent.len()],
            Ok(batch) => {
                let written: HashSet<(String, String)> = batch
                    .results
                    .into_iter()
                    .map(|r| (r.from_object_id, r.to_object_id))
                    .collect();
                let mut answers = Vec::new();
                for s in &sent {
                    // A pair the answer does not confirm is written again alone (a PUT).
                    let confirmed = written.contains(&(s.0.to_string(), s.1.to_string()));
                    answers.push(if confirmed {
                        Ok(())
                    } else {
                        api.associate(from, s.0, to, s.1, type_ids).await
                    });
                }
                answers
            }
        };
        fan_out(&plan.of_caller, &answers)
    }

    /// Ids associated with `id` (an association read, contract §2.6 step 3), coalesced into
    /// association batch reads.
    pub(crate) async fn associated_batched(
        &self,
        from: Obj,
        id: &str,
        to: Obj,
    ) -> Result<Vec<String>> {
        let lane = lane(&self.inner.lanes.associated, (from, to), || {
            format!("read {} associations of {}", to.path(), from.path())
        });
        let client = self.clone();
        lane.submit(id.to_string(), self.linger(), move |ids| {
            let client = client.clone();
            async move {
                let plan = dedup(&ids);
                let sent: Vec<String> = plan.sent.iter().map(|c| ids[*c].clone()).collect();
                let answers: Vec<Result<Vec<String>>> =
                    match client.api().batch_associated(from, to, &sent).await {
                        // No row: nothing associated (HubSpot reports that as a 207 error).
                        Ok(map) => sent
                            .iter()
                            .map(|id| Ok(map.get(id).cloned().unwrap_or_default()))
                            .collect(),
                        Err(e) => vec![Err(e); sent.len()],
                    };
                fan_out(&plan.of_caller, &answers)
            }
        })
        .await
    }

    /// One object by id with the properties `props` (the same for every caller of type `t`),
    /// coalesced into batch reads; `None` when it does not exist or is archived.
    pub(crate) async fn read_batched(
        &self,
        t: Obj,
        id: &str,
        props: &'static [&'static str],
    ) -> Result<Option<ObjectJson>> {
        let lane = lane(&self.inner.lanes.reads, t, || format!("read {}", t.path()));
        let client = self.clone();
        lane.submit(id.to_string(), self.linger(), move |ids| {
            let client = client.clone();
            async move {
                let plan = dedup(&ids);
                let sent: Vec<String> = plan.sent.iter().map(|c| ids[*c].clone()).collect();
                let answers: Vec<Result<Option<ObjectJson>>> =
                    match client.api().batch_read(t, &sent, props, None).await {
                        Ok(objs) => sent
                            .iter()
                            .map(|id| Ok(objs.iter().find(|o| &o.id == id && !o.archived).cloned()))
                            .collect(),
                        Err(e) => vec![Err(e); sent.len()],
                    };
                fan_out(&plan.of_caller, &answers)
            }
        })
        .await
    }
}

impl HubSpotClient {
    /// The product of `sku` (contract §1.4), looked up with other reconciles' SKUs in one `IN`
    /// search and cached; `None` when the portal has no product with exactly that SKU.
    pub(crate) async fn product_batched(&self, sku: &str) -> Result<Option<String>> {
        let lane = lane(&self.inner.lanes.products, (), || "search products".into());
        let client = self.clone();
        lane.submit(sku.to_string(), self.linger(), move |skus| {
            let client = client.clone();
            async move {
                let plan = dedup(&skus);
                let sent: Vec<&str> = plan.sent.iter().map(|c| skus[*c].as_str()).collect();
                // A batch that waited behind the previous one may find its SKU cached now.
                let unknown: Vec<&str> = sent
                    .iter()
                    .copied()
                    .filter(|s| client.cached_product(s).is_none())
                    .collect();
                let found = if unknown.is_empty() {
                    Ok(Vec::new())
                } else {
                    client
                        .api()
                        .search_in(Obj::Products, "hs_sku", &unknown, &["hs_sku", "name"])
                        .await
                };
                let answers: Vec<Result<Option<String>>> = match found {
                    Ok(products) => {
                        for sku in &unknown {
                            let id = products
                                .iter()
                                .find(|p| p.prop("hs_sku") == Some(*sku))
                                .map(|p| p.id.clone());
                            client.remember_product(sku, id);
                        }
                        sent.iter()
                            .map(|s| Ok(client.cached_product(s).flatten()))
                            .collect()
                    }
                    Err(e) => vec![Err(e); sent.len()],
                };
                fan_out(&plan.of_caller, &answers)
            }
        })
        .await
    }
}

fn api_op(t: Obj) -> String {
    format!("upsert {}", t.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_gives_each_caller_its_shared_answer() {
        let answers: Vec<Result<u32>> = vec![Ok(1), Err(HubSpotError::Invalid("x".into()))];
        let out = fan_out(&[1, 0, 1], &answers);
        assert!(out[0].is_err() && out[2].is_err());
        assert_eq!(out[1].as_ref().unwrap(), &1);
    }
}

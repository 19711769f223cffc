//! The CatalogSource reconciler: fetch the revision, lint all of it, and apply it only if it is
//! all valid; an invalid revision applies nothing and the last good one keeps running.
//!
//! observe (git, cluster) → decide (`catalog::sync::plan_sync`, `catalog::source_status`) →
//! act (server-side apply, prune) → report (one status write, Events on change).
//!
//! A finalizer removes the source's git cache when the source is deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::info;

use super::{Context, Error, object_key, status::apply_status};
use crate::api::catalog_source::{CatalogCounts, CatalogSource};
use crate::api::conditions::find_condition;
use crate::api::conditions::reasons::{APPLIED, CONFLICT, FETCH_FAILED, PRUNE_REFUSED};
use crate::api::conditions::types::STALLED;
use crate::api::tenant_subscription::Phase;
use crate::api::{Bundle, Listing, Promotion, TenantSubscription, WizardConfig};
use crate::catalog::CatalogKind;
use crate::catalog::git::{FetchRequest, GitCredentials};
use crate::catalog::lint::{CatalogObject, LintOptions, lint};
use crate::catalog::source_status::{SyncOutcome, next_status, parse_interval};
use crate::catalog::sync::{
    DesiredObject, LiveObject, SOURCE_ANNOTATION, SyncInputs, SyncPlan, plan_sync,
};
use crate::runtime::spec_changes;

/// Field manager of the catalog objects the operator applies.
pub const CATALOG_MANAGER: &str = "marketplace-catalog";
/// Removes the source's git cache before the source goes.
pub const FINALIZER: &str = "marketplace.dev/git-cache";

/// How many lint errors a status message quotes.
const QUOTED_ERRORS: usize = 5;

/// The CatalogSource controller, driven by the shared cache of the operator's namespace. Only
/// spec changes (generation) and finalizer changes trigger a sync; our own status writes do
/// not, or every sync would cause another one. The interval requeue drives polling.
pub fn controller(ctx: &Context) -> Controller<CatalogSource> {
    let sources = &ctx.operator_stores.catalog_sources;
    Controller::for_shared_stream(
        spec_changes(sources.changes(), sources.store().clone()),
        sources.store().clone(),
    )
}

pub async fn reconcile(source: Arc<CatalogSource>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = object_key(source.as_ref());
    let namespace = source
        .namespace()
        .ok_or_else(|| Error::InvalidObject(format!("CatalogSource {key} has no namespace")))?;
    let api: Api<CatalogSource> = Api::namespaced(ctx.client.clone(), &namespace);
    let action = finalizer(&api, FINALIZER, source, |event| async {
        match event {
            FinalizerEvent::Apply(source) => sync(&source, &ctx, &key, &api, &namespace).await,
            FinalizerEvent::Cleanup(source) => remove_cache(&source, &ctx, &key).await,
        }
    })
    .await
    .map_err(Error::from)?;
    Ok(action)
}

/// Deletes the source's cache repository. It depends on the object's key only, so a source
/// whose spec is invalid (or that never fetched) is still released; a missing cache is fine.
async fn remove_cache(source: &CatalogSource, ctx: &Context, key: &str) -> Result<Action, Error> {
    ctx.git.remove(key).await?;
    info!(
        source = key,
        "CatalogSource deleted; its git cache is removed"
    );
    ctx.event(
        source,
        EventType::Normal,
        "CacheRemoved",
        "Delete",
        format!("removed the git cache of {key}"),
    )
    .await;
    Ok(Action::await_change())
}

async fn sync(
    source: &CatalogSource,
    ctx: &Context,
    key: &str,
    api: &Api<CatalogSource>,
    namespace: &str,
) -> Result<Action, Error> {
    let previous = source.status.clone().unwrap_or_default();
    let interval = parse_interval(&source.spec.interval).unwrap_or(Duration::from_secs(300));
    let requeue = Action::requeue(interval + super::backoff::jitter(interval / 10, key, 0));
    let now = Time(Timestamp::now());
    let report = |outcome: SyncOutcome<'_>| {
        next_status(&previous, source.metadata.generation, &outcome, &now)
    };

    if source.spec.suspend {
        apply_status(
            api,
            source,
            source.status.as_ref(),
            &report(SyncOutcome::Suspended),
        )
        .await?;
        return Ok(Action::await_change());
    }

    // Observe: the revision.
    let fetched = match fetch(source, ctx, key, namespace).await {
        Ok(fetched) => fetched,
        Err(error) => {
            let message = error.to_string();
            if apply_status(
                api,
                source,
                source.status.as_ref(),
                &report(SyncOutcome::FetchFailed {
                    message: message.clone(),
                }),
            )
            .await?
            {
                ctx.event(source, EventType::Warning, FETCH_FAILED, "Fetch", message)
                    .await;
            }
            return Err(error);
        }
    };
    let (revision, files) = fetched;

    // Decide whether the revision may be applied at all: every file must lint clean, and
    // against the revision running now (a Published listing must be Archived before deletion).
    let base = match previous
        .last_applied_revision
        .as_deref()
        .and_then(commit_of)
    {
        Some(applied) => ctx.git.files(key, applied, &source.spec.path).await.ok(),
        None => None,
    };
    let linted = lint(
        &files,
        &LintOptions {
            base,
            ..LintOptions::default()
        },
    );
    let errors: Vec<_> = linted.diagnostics.iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        let summary = errors
            .iter()
            .take(QUOTED_ERRORS)
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let outcome = SyncOutcome::Invalid {
            revision: &revision,
            errors: errors.len(),
            summary,
        };
        let status = report(outcome);
        if apply_status(api, source, source.status.as_ref(), &status).await? {
            let message = find_condition(&status.conditions, STALLED)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            ctx.event(
                source,
                EventType::Warning,
                "RevisionInvalid",
                "Lint",
                message,
            )
            .await;
        }
        return Ok(requeue);
    }

    // Observe: the cluster.
    let desired = desired_objects(&linted.objects)?;
    let live = live_objects(&ctx.client).await?;
    let in_use = live_subscriptions(&ctx.client, Timestamp::now()).await?;
    let plan = plan_sync(&SyncInputs {
        source: key,
        desired: &desired,
        live: &live,
        previous_inventory: &previous.inventory,
        live_subscriptions: &in_use.listings,
        promoted_subscriptions: &in_use.promotions,
        bundled_subscriptions: &in_use.bundles,
        prune: source.spec.prune,
    });

    // Act.
    apply_plan(&ctx.client, key, &plan).await?;

    // Report.
    let counts = CatalogCounts {
        listings: count(&desired, CatalogKind::Listing),
        wizard_configs: count(&desired, CatalogKind::WizardConfig),
    };
    let status = report(SyncOutcome::Applied {
        revision: &revision,
        plan: &plan,
        counts,
    });
    apply_status(api, source, source.status.as_ref(), &status).await?;
    if !plan.is_noop() {
        let note = format!(
            "applied {revision}: {} object(s) changed, {} unchanged, {} pruned",
            plan.apply.len(),
            plan.unchanged,
            plan.prune.len()
        );
        info!(source = key, %note);
        ctx.event(source, EventType::Normal, APPLIED, "Apply", note)
            .await;
    }
    for refused in &plan.prune_refused {
        let note = format!(
            "{} {} left the catalog but has {} live subscription(s); it is kept until they end",
            refused.entry.kind, refused.entry.name, refused.live_subscriptions
        );
        ctx.event(source, EventType::Warning, PRUNE_REFUSED, "Prune", note)
            .await;
    }
    for conflict in &plan.conflicts {
        let note = format!(
            "{} {} is managed by CatalogSource {}; left alone",
            conflict.entry.kind, conflict.entry.name, conflict.managed_by
        );
        ctx.event(source, EventType::Warning, CONFLICT, "Apply", note)
            .await;
    }
    Ok(requeue)
}

/// Fetches the source's revision and reads the catalog files under `spec.path`.
async fn fetch(
    source: &CatalogSource,
    ctx: &Context,
    key: &str,
    namespace: &str,
) -> Result<(String, Vec<crate::catalog::SourceFile>), Error> {
    let credentials = credentials(&ctx.client, namespace, source).await?;
    // The fetcher takes a revision string as is; an unchanged remote head then costs no fetch.
    let last_commit = source
        .status
        .as_ref()
        .and_then(|s| s.last_attempted_revision.clone());
    let request = FetchRequest {
        source_key: key.to_owned(),
        url: source.spec.url.clone(),
        git_ref: source.spec.git_ref.clone(),
        credentials,
        timeout: ctx.config.git_timeout,
        last_commit,
    };
    let (outcome, revision) = ctx.git.fetch(request).await?;
    let files = ctx
        .git
        .files(key, outcome.commit(), &source.spec.path)
        .await?;
    Ok((revision.display, files))
}

/// The commit of a revision string such as `main@sha1:<hex>`.
fn commit_of(revision: &str) -> Option<git2::Oid> {
    revision
        .rsplit("sha1:")
        .next()
        .and_then(|hex| git2::Oid::from_str(hex).ok())
}

/// Credentials from `spec.secretRef` (key names as Flux's GitRepository uses them).
async fn credentials(
    client: &Client,
    namespace: &str,
    source: &CatalogSource,
) -> Result<GitCredentials, Error> {
    let Some(reference) = &source.spec.secret_ref else {
        return Ok(GitCredentials::None);
    };
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&reference.name)
        .await?
        .ok_or_else(|| {
            Error::InvalidObject(format!(
                "spec.secretRef: Secret {namespace}/{} does not exist",
                reference.name
            ))
        })?;
    GitCredentials::from_secret_data(&secret.data.unwrap_or_default()).map_err(|e| {
        Error::InvalidObject(format!(
            "spec.secretRef: Secret {namespace}/{}: {e}",
            reference.name
        ))
    })
}

fn desired_objects(objects: &[CatalogObject]) -> Result<Vec<DesiredObject>, Error> {
    let spec = |value: Result<serde_json::Value, serde_json::Error>| {
        value.map_err(|e| Error::InvalidObject(e.to_string()))
    };
    objects
        .iter()
        .map(|object| {
            Ok(match object {
                CatalogObject::Listing { listing, .. } => DesiredObject {
                    kind: CatalogKind::Listing,
                    name: listing.name_any(),
                    spec: spec(serde_json::to_value(&listing.spec))?,
                },
                CatalogObject::WizardConfig { wizard, .. } => DesiredObject {
                    kind: CatalogKind::WizardConfig,
                    name: wizard.name_any(),
                    spec: spec(serde_json::to_value(&wizard.spec))?,
                },
                CatalogObject::Promotion { promotion, .. } => DesiredObject {
                    kind: CatalogKind::Promotion,
                    name: promotion.name_any(),
                    spec: spec(serde_json::to_value(&promotion.spec))?,
                },
                CatalogObject::Bundle { bundle, .. } => DesiredObject {
                    kind: CatalogKind::Bundle,
                    name: bundle.name_any(),
                    spec: spec(serde_json::to_value(&bundle.spec))?,
                },
            })
        })
        .collect()
}

/// Every catalog object in the cluster, read through the same types as the desired ones.
async fn live_objects(client: &Client) -> Result<Vec<LiveObject>, Error> {
    let managed_by =
        |annotations: &BTreeMap<String, String>| annotations.get(SOURCE_ANNOTATION).cloned();
    let mut live = Vec::new();
    for listing in Api::<Listing>::all(client.clone())
        .list(&ListParams::default())
        .await?
    {
        live.push(LiveObject {
            kind: CatalogKind::Listing,
            name: listing.name_any(),
            managed_by: managed_by(listing.annotations()),
            spec: serde_json::to_value(&listing.spec)
                .map_err(|e| Error::InvalidObject(e.to_string()))?,
        });
    }
    for wizard in Api::<WizardConfig>::all(client.clone())
        .list(&ListParams::default())
        .await?
    {
        live.push(LiveObject {
            kind: CatalogKind::WizardConfig,
            name: wizard.name_any(),
            managed_by: managed_by(wizard.annotations()),
            spec: serde_json::to_value(&wizard.spec)
                .map_err(|e| Error::InvalidObject(e.to_string()))?,
        });
    }
    for promotion in Api::<Promotion>::all(client.clone())
        .list(&ListParams::default())
        .await?
    {
        live.push(LiveObject {
            kind: CatalogKind::Promotion,
            name: promotion.name_any(),
            managed_by: managed_by(promotion.annotations()),
            spec: serde_json::to_value(&promotion.spec)
                .map_err(|e| Error::InvalidObject(e.to_string()))?,
        });
    }
    for bundle in Api::<Bundle>::all(client.clone())
        .list(&ListParams::default())
        .await?
    {
        live.push(LiveObject {
            kind: CatalogKind::Bundle,
            name: bundle.name_any(),
            managed_by: managed_by(bundle.annotations()),
            spec: serde_json::to_value(&bundle.spec)
                .map_err(|e| Error::InvalidObject(e.to_string()))?,
        });
    }
    Ok(live)
}

/// Live subscriptions counted by what they use: catalog objects still in use are never pruned.
#[derive(Default)]
struct InUse {
    /// Per listing.
    listings: BTreeMap<String, u32>,
    /// Per promotion, those that keep its price at `now`.
    promotions: BTreeMap<String, u32>,
    /// Per bundle, its purchases' members.
    bundles: BTreeMap<String, u32>,
}

async fn live_subscriptions(client: &Client, now: Timestamp) -> Result<InUse, Error> {
    let mut in_use = InUse::default();
    let (counts, promoted) = (&mut in_use.listings, &mut in_use.promotions);
    for subscription in Api::<TenantSubscription>::all(client.clone())
        .list(&ListParams::default())
        .await?
    {
        let phase = subscription.status.as_ref().and_then(|s| s.phase);
        if !matches!(
            phase,
            Some(Phase::Cancelled | Phase::Rejected | Phase::Failed)
        ) {
            *counts
                .entry(subscription.spec.listing.to_string())
                .or_insert(0) += 1;
            if let Some(kept) = subscription
                .status
                .as_ref()
                .and_then(|s| s.promotion.as_ref())
                .filter(|p| crate::lifecycle::promotion::in_force(p, now))
            {
                *promoted.entry(kept.name.to_string()).or_insert(0) += 1;
            }
            if let Some(member) = &subscription.spec.bundle {
                *in_use.bundles.entry(member.name.to_string()).or_insert(0) += 1;
            }
        }
    }
    Ok(in_use)
}

/// Applies and prunes with a few requests in flight: a first sync of a large catalog is
/// otherwise bound by one round trip per object.
const WRITES_IN_FLIGHT: usize = 8;

async fn apply_plan(client: &Client, key: &str, plan: &SyncPlan<'_>) -> Result<(), Error> {
    // Owned data only inside the futures: they run concurrently and must be `Send + 'static`-like.
    let applies: Vec<_> = plan
        .apply
        .iter()
        .map(|object| {
            let manifest = json!({
                "apiVersion": "marketplace.dev/v1alpha1",
                "kind": object.kind.name(),
                "metadata": { "name": object.name, "annotations": { SOURCE_ANNOTATION: key } },
                "spec": object.spec,
            });
            apply_one(client.clone(), object.kind, object.name.clone(), manifest)
        })
        .collect();
    futures::stream::iter(applies)
        .buffer_unordered(WRITES_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    let prunes: Vec<_> = plan
        .prune
        .iter()
        .filter_map(|entry| {
            Some(prune_one(
                client.clone(),
                CatalogKind::from_name(&entry.kind)?,
                entry.name.clone(),
            ))
        })
        .collect();
    futures::stream::iter(prunes)
        .buffer_unordered(WRITES_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn apply_one(
    client: Client,
    kind: CatalogKind,
    name: String,
    manifest: serde_json::Value,
) -> Result<(), Error> {
    let params = PatchParams::apply(CATALOG_MANAGER).force();
    match kind {
        CatalogKind::Listing => Api::<Listing>::all(client)
            .patch(&name, &params, &Patch::Apply(manifest))
            .await
            .map(drop)?,
        CatalogKind::WizardConfig => Api::<WizardConfig>::all(client)
            .patch(&name, &params, &Patch::Apply(manifest))
            .await
            .map(drop)?,
        CatalogKind::Promotion => Api::<Promotion>::all(client)
            .patch(&name, &params, &Patch::Apply(manifest))
            .await
            .map(drop)?,
        CatalogKind::Bundle => Api::<Bundle>::all(client)
            .patch(&name, &params, &Patch::Apply(manifest))
            .await
            .map(drop)?,
    }
    Ok(())
}

/// Deletes one catalog object; already gone counts as done.
async fn prune_one(client: Client, kind: CatalogKind, name: String) -> Result<(), Error> {
    let deleted = match kind {
        CatalogKind::Listing => Api::<Listing>::all(client)
            .delete(&name, &DeleteParams::default())
            .await
            .map(drop),
        CatalogKind::WizardConfig => Api::<WizardConfig>::all(client)
            .delete(&name, &DeleteParams::default())
            .await
            .map(drop),
        CatalogKind::Promotion => Api::<Promotion>::all(client)
            .delete(&name, &DeleteParams::default())
            .await
            .map(drop),
        CatalogKind::Bundle => Api::<Bundle>::all(client)
            .delete(&name, &DeleteParams::default())
            .await
            .map(drop),
    };
    match deleted {
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        other => Ok(other?),
    }
}

fn count(objects: &[DesiredObject], kind: CatalogKind) -> i32 {
    i32::try_from(objects.iter().filter(|o| o.kind == kind).count()).unwrap_or(i32::MAX)
}

//! The one way a controller runs, in the operator, the e2e suites and the benchmarks alike:
//! the shared error policy with per-object backoff, the backoff reset after every success,
//! reconcile metrics for every kind, configurable concurrency and graceful shutdown. Each
//! reconcile runs in a `reconcile` span with the object reference (`kind`, `namespace`, `name`)
//! and a fresh `trace_id`, so every log line of it says which object and which pass.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::{Context, Error, error_policy, object_key};
use crate::runtime::Shutdown;

/// Runs `controller` with `reconcile` until `shutdown`, `concurrency` objects at once.
pub async fn run_controller<K, R, Fut>(
    kind: &'static str,
    controller: Controller<K>,
    concurrency: u16,
    reconcile: R,
    ctx: Arc<Context>,
    shutdown: Shutdown,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    R: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    // Logged once: how soon a new leader acts (its caches are warm before it leads).
    let first = Arc::new(std::sync::Once::new());
    controller
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown.requested())
        .run(
            move |object: Arc<K>, ctx: Arc<Context>| {
                let reconcile = reconcile.clone();
                let first = first.clone();
                let span =
                    reconcile_span(kind, object.meta().namespace.as_deref(), &object.name_any());
                async move {
                    let key = object_key(object.as_ref());
                    let started = Instant::now();
                    let result = reconcile(object, ctx.clone()).await;
                    let outcome = match &result {
                        Ok(_) => "ok",
                        Err(error) => error.category(),
                    };
                    // Logged here, inside the reconcile's span (object reference, trace id);
                    // the error policy only schedules the retry.
                    match &result {
                        Err(error) if !error.is_conflict() => {
                            tracing::warn!(category = outcome, %error, "reconcile failed")
                        }
                        _ => {}
                    }
                    ctx.metrics.reconciled(kind, outcome, started.elapsed());
                    if result.is_ok() {
                        ctx.backoff.succeeded(&key);
                    }
                    first.call_once(|| tracing::info!(kind, "first reconcile done"));
                    result
                }
                .instrument(span)
            },
            error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, kind, "reconcile did not complete");
            }
        })
        .await;
}

/// The span one reconcile runs in: the object reference and a fresh trace id, which every log
/// line of the reconcile carries (`--log-format json` flattens them into each line).
pub fn reconcile_span(kind: &'static str, namespace: Option<&str>, name: &str) -> tracing::Span {
    tracing::info_span!(
        "reconcile",
        kind,
        namespace,
        name,
        trace_id = %crate::runtime::logging::new_trace_id(),
    )
}

#[cfg(test)]
mod tests {
    use super::reconcile_span;
    use crate::runtime::logging::capture_json;

    #[test]
    fn each_reconcile_logs_its_object_and_its_own_trace_id() {
        let parsed = capture_json(|| {
            for _ in 0..2 {
                let span = reconcile_span("TenantSubscription", Some("tenant-acme"), "routes");
                span.in_scope(|| tracing::info!("decided"));
            }
            reconcile_span("Tenant", None, "acme").in_scope(|| tracing::info!("decided"));
        });
        assert_eq!(parsed.len(), 3, "{parsed:?}");
        assert_eq!(parsed[0]["kind"], "TenantSubscription");
        assert_eq!(parsed[0]["namespace"], "tenant-acme");
        assert_eq!(parsed[0]["name"], "routes");
        assert_eq!(parsed[0]["trace_id"].as_str().map(str::len), Some(32));
        assert_ne!(
            parsed[0]["trace_id"], parsed[1]["trace_id"],
            "one trace id per reconcile"
        );
        assert_eq!(parsed[2]["kind"], "Tenant");
        assert!(parsed[2].get("namespace").is_none(), "{}", parsed[2]);
    }
}

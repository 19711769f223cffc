//! `POST /validate/tenantsubscriptions`: reads the AdmissionReview, gathers facts from the
//! caches (and the namespace's subscriptions from the apiserver), asks
//! [`decide_admission`](super::review::decide_admission) and answers.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::response::{StatusCause, StatusDetails};

use super::review::{Facts, Verdict, Write, decide_admission, needs_facts, tenant_name};
use crate::api::{BundleSubscription, TenantSubscription};
use crate::lifecycle::Sibling;
use crate::lifecycle::validation::entitled_features;
use crate::runtime::Stores;
use crate::server::Metrics;

/// The path the ValidatingWebhookConfiguration calls.
pub const PATH: &str = "/validate/tenantsubscriptions";

/// What the handler reads from.
#[derive(Clone)]
pub struct Reviewer {
    pub client: Client,
    pub stores: Stores,
    pub platform_version: Option<semver::Version>,
    pub metrics: Arc<Metrics>,
}

pub fn routes(reviewer: Reviewer) -> Router {
    Router::new().route(PATH, post(review)).with_state(reviewer)
}

async fn review(State(reviewer): State<Reviewer>, body: Bytes) -> Response {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an AdmissionReview: {e}"),
            )
                .into_response();
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "an AdmissionReview without a request",
            )
                .into_response();
        }
    };
    let verdict = match (typed(&request.object), typed(&request.old_object)) {
        (Ok(object), Ok(old_object)) => {
            reviewer
                .decide(&request, object.as_ref(), old_object.as_ref())
                .await
        }
        // Never block a write over our own reading problem: the reconciler validates anyway.
        (Err(e), _) | (_, Err(e)) => Verdict::Allow {
            why: "NotChecked",
            warnings: vec![format!(
                "the marketplace operator could not read the object: {e}"
            )],
        },
    };
    tracing::debug!(
        operation = ?request.operation,
        name = %request.name,
        ?verdict,
        "admission review"
    );
    let allowed = matches!(verdict, Verdict::Allow { .. });
    reviewer.metrics.admission(allowed, verdict.reason());
    Json(answer(&request, verdict).into_review()).into_response()
}

impl Reviewer {
    async fn decide(
        &self,
        request: &AdmissionRequest<DynamicObject>,
        object: Option<&TenantSubscription>,
        old_object: Option<&TenantSubscription>,
    ) -> Verdict {
        let namespace = request.namespace.clone().unwrap_or_default();
        let write = Write {
            operation: &request.operation,
            namespace: &namespace,
            name: &request.name,
            object,
            old_object,
        };
        let now = Timestamp::now();
        let no_features = Default::default();
        let mut facts = Facts {
            listing: None,
            tenant: None,
            siblings: &[],
            entitled_features: &no_features,
            platform_version: self.platform_version.as_ref(),
            bundle_cancelling: false,
        };
        if !needs_facts(&write) {
            return decide_admission(&write, &facts, now);
        }
        let listing = object.and_then(|o| self.stores.listing(o.spec.listing.as_str()));
        let tenant = self.stores.tenant(tenant_name(&namespace));
        let siblings = self.siblings(&namespace, now).await;
        let entitled = entitled_features(
            self.stores
                .entitlements_in(&namespace)
                .iter()
                .map(|e| e.as_ref()),
        );
        facts.listing = listing.as_ref().map(|l| &l.spec);
        facts.tenant = tenant.as_deref();
        facts.siblings = &siblings;
        facts.entitled_features = &entitled;
        if let Some(member) = object.and_then(|o| o.spec.bundle.as_ref())
            && object.is_some_and(|o| o.spec.cancellation.is_some())
        {
            facts.bundle_cancelling = self
                .bundle_cancelling(&namespace, member.subscription.as_str())
                .await;
        }
        decide_admission(&write, &facts, now)
    }

    /// Whether bundle purchase `name` asks for cancellation, read from the apiserver (the
    /// operator cancels members right after the purchase changes; the cache may not have it).
    async fn bundle_cancelling(&self, namespace: &str, name: &str) -> bool {
        let api: Api<BundleSubscription> = Api::namespaced(self.client.clone(), namespace);
        let fresh = match api.get_opt(name).await {
            Ok(found) => found,
            Err(error) => {
                tracing::debug!(%error, namespace, name, "reading the bundle purchase failed; using the cache");
                self.stores
                    .bundle_subscriptions
                    .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
                    .map(|p| (*p).clone())
            }
        };
        // A purchase already gone leaves its members to the garbage collector: nothing to keep.
        fresh.is_none_or(|p| p.spec.cancellation.is_some())
    }

    /// The namespace's subscriptions, read from the apiserver so that one created a moment ago
    /// counts (the cache may lag behind); the cache if the read fails.
    async fn siblings(&self, namespace: &str, now: Timestamp) -> Vec<Sibling> {
        let api: Api<TenantSubscription> = Api::namespaced(self.client.clone(), namespace);
        match api.list(&ListParams::default()).await {
            Ok(list) => list.items.iter().map(|s| Sibling::of(s, now)).collect(),
            Err(error) => {
                tracing::debug!(%error, namespace, "listing subscriptions failed; using the cache");
                self.stores
                    .subscriptions_in(namespace)
                    .iter()
                    .map(|s| Sibling::of(s, now))
                    .collect()
            }
        }
    }
}

fn typed(object: &Option<DynamicObject>) -> Result<Option<TenantSubscription>, serde_json::Error> {
    object
        .as_ref()
        .map(|o| serde_json::to_value(o).and_then(serde_json::from_value))
        .transpose()
}

/// The AdmissionResponse for `verdict`. A denial carries the rule's reason and the field as a
/// cause, the way the apiserver reports its own validation errors.
fn answer(request: &AdmissionRequest<DynamicObject>, verdict: Verdict) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    match verdict {
        Verdict::Allow { warnings, .. } => {
            let mut response = response;
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            response
        }
        Verdict::Deny {
            reason,
            field,
            message,
        } => {
            let mut response = response.deny(&message);
            response.result.code = 422;
            response.result.reason = reason.to_string();
            response.result.details = Some(StatusDetails {
                name: request.name.clone(),
                group: "marketplace.dev".into(),
                kind: "TenantSubscription".into(),
                causes: vec![StatusCause {
                    reason: reason.to_string(),
                    message,
                    field: field.to_string(),
                }],
                uid: String::new(),
                retry_after_seconds: 0,
            });
            response
        }
    }
}

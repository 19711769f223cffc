//! What the storefront suites (the JSON API's and the browser's) share: a real control plane
//! with the operator's tenant, subscription and action controllers billing through the HubSpot
//! simulator; a billing admin, a viewer and a superadmin with real ServiceAccount tokens; the
//! tenants they belong to; listings.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::Api;
use marketplace_operator::api::Tenant;
use marketplace_operator::controllers::{ControllerConfig, Enabled};
use serde_json::{Value, json};

use crate::api_process::{Caller, RunningApi, api_settings, service_account_token, start_api};
use crate::controllers::{self, OperatorWorld, RunningControllers};
use crate::eventually;
use crate::subscriptions::{CONVERGED, apply};

/// An InApp listing `name` (Route Optimization, one $49.00/mo plan), with `extra` spec fields.
pub fn listing(name: &str, extra: Value) -> Value {
    let mut spec = json!({
        "displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
        "category": "Operations", "lifecycle": "Published", "features": ["route_optimization"],
        "plans": [{"name": "pro", "displayName": "Pro",
            "pricing": {"model": "Flat", "amount": "49.00", "currency": "USD", "interval": "Month"}}],
    });
    for (k, v) in extra.as_object().expect("object") {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing", "metadata": {"name": name}, "spec": spec})
}

/// The running operator and its people.
pub struct StorefrontWorld {
    /// The control plane, operator namespace and simulator the controllers bill through.
    pub operator: OperatorWorld,
    /// The namespace of the people's ServiceAccounts.
    pub people: String,
    pub buyer: String,
    pub viewer: String,
    pub superadmin: String,
    pub controllers: RunningControllers,
}

/// The controllers of a storefront world: tenants, subscriptions and actions.
pub const STOREFRONT_CONTROLLERS: Enabled = Enabled {
    actions: true,
    ..Enabled::TENANTS_AND_SUBSCRIPTIONS
};

/// Starts the simulator and the controllers (as `instance`), and makes the three people.
pub async fn start_world(instance: &str) -> StorefrontWorld {
    let operator = OperatorWorld::start().await;
    let ctx = Arc::new(operator.context(instance, ControllerConfig::default()));
    let controllers = controllers::start(ctx, STOREFRONT_CONTROLLERS);
    let client = &operator.client;
    let people = operator
        .control_plane
        .create_namespace("people")
        .await
        .expect("namespace");
    let buyer = service_account_token(client, &people, "buyer").await;
    let viewer = service_account_token(client, &people, "viewer").await;
    let superadmin = service_account_token(client, &people, "superadmin").await;
    grant_superadmin(client, &operator.operator_namespace, &people, "superadmin").await;
    StorefrontWorld {
        operator,
        people,
        buyer,
        viewer,
        superadmin,
        controllers,
    }
}

/// Makes ServiceAccount `people/name` a superadmin: whoever may create SubscriptionActions in
/// the operator's namespace; like the chart's superadmin role, it also reads HealthPolicies
/// there (the health routes read them as the caller).
pub async fn grant_superadmin(client: &Client, operator_namespace: &str, people: &str, name: &str) {
    apply(
        &Api::<Role>::namespaced(client.clone(), operator_namespace),
        json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name, "namespace": operator_namespace},
        "rules": [{"apiGroups": ["marketplace.dev"], "resources": ["subscriptionactions"],
            "verbs": ["create", "get", "list"]},
            {"apiGroups": ["marketplace.dev"], "resources": ["healthpolicies"],
            "verbs": ["get", "list"]}]}),
    )
    .await;
    apply(
        &Api::<RoleBinding>::namespaced(client.clone(), operator_namespace),
        json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": operator_namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": people}]}),
    )
    .await;
}

impl StorefrontWorld {
    /// The API (as the process starts it) serving this world, and the buyer calling it.
    pub async fn api_as_buyer(&self) -> (RunningApi, Caller) {
        let settings = api_settings(Duration::from_secs(2), &self.operator.operator_namespace);
        let api = start_api(self.operator.control_plane, settings).await;
        let buyer = Caller {
            http: reqwest::Client::new(),
            base: api.base.clone(),
            token: self.buyer.clone(),
        };
        (api, buyer)
    }

    /// A Tenant `name` (Acme, Professional, segment smb) whose billing admin is the buyer and
    /// whose viewer is the viewer; returns its namespace once the reconciler made it.
    pub async fn tenant(&self, name: &str, internal: bool) -> String {
        self.tenant_with(name, json!({"internal": internal})).await
    }

    /// [`Self::tenant`] with `extra` spec fields (e.g. segment and region).
    pub async fn tenant_with(&self, name: &str, extra: Value) -> String {
        let tenants: Api<Tenant> = Api::all(self.operator.client.clone());
        let people = &self.people;
        let mut spec = json!({"displayName": "Acme", "basePlan": "Professional",
            "billingContact": {"name": "Ann", "email": "ann@acme.example"},
            "billingAdmins": [{"kind": "ServiceAccount", "name": "buyer", "namespace": people}],
            "viewers": [{"kind": "ServiceAccount", "name": "viewer", "namespace": people}]});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        apply(
            &tenants,
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name, "labels": {"segment": "smb"}}, "spec": spec}),
        )
        .await;
        eventually("the tenant namespace", CONVERGED, || async {
            tenants.get(name).await.ok()?.status?.namespace
        })
        .await
    }
}

//! Running the entitlement API (`marketplace api`) inside a test, exactly as the process starts
//! it (`process::api::start`), on a free loopback port, with a stop handle.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};
use marketplace_harness::ControlPlane;
use marketplace_operator::front_door::read_limits::ReadLimitSettings;
use marketplace_operator::front_door::{ReviewCacheSettings, StreamSettings};
use marketplace_operator::process::api::{ApiSettings, start};
use marketplace_operator::runtime::Shutdown;
use marketplace_operator::runtime::endpoint::EndpointSettings;
use marketplace_operator::runtime::shutdown::ShutdownTrigger;

use crate::eventually;
use crate::subscriptions::{CONVERGED, apply};

/// A ServiceAccount `namespace/name` and a one-hour token for it (TokenRequest): a real caller.
pub async fn service_account_token(client: &Client, namespace: &str, name: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    apply(
        &accounts,
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace}}),
    )
    .await;
    token_request(&accounts, name, None).await
}

/// A one-hour token of ServiceAccount `name` (TokenRequest), bound to `bound` if given.
pub async fn token_request(
    accounts: &Api<ServiceAccount>,
    name: &str,
    bound: Option<BoundObjectReference>,
) -> String {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            bound_object_ref: bound,
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("token request")
        .status
        .expect("token status")
        .token
        .expect("a token")
}

/// The API serving in the background; stops when dropped.
pub struct RunningApi {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    stop: ShutdownTrigger,
}

impl Drop for RunningApi {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// Settings for a test's API: a free loopback port, `review_ttl` for its cached reviews (short
/// in tests: RBAC lands shortly after a Tenant, and a denial is cached that long), and
/// `operator_namespace`, where superadmins create SubscriptionActions.
pub fn api_settings(review_ttl: Duration, operator_namespace: &str) -> ApiSettings {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    ApiSettings {
        endpoint: EndpointSettings { listen, tls: None },
        reviews: ReviewCacheSettings {
            ttl: review_ttl,
            capacity: 100,
        },
        api_keys: true,
        read_limits: ReadLimitSettings::default(),
        streams: StreamSettings::default(),
        shutdown_grace: Duration::from_secs(5),
        operator_namespace: operator_namespace.to_string(),
        usage_flush: Duration::from_secs(1),
        probe: Default::default(),
        web: Default::default(),
        usage_store: None,
    }
}

/// Starts the API as the process does and waits until it is ready.
pub async fn start_api(control_plane: &ControlPlane, settings: ApiSettings) -> RunningApi {
    let listen = settings.endpoint.listen;
    let (stop, shutdown) = Shutdown::manual();
    start(control_plane.config().clone(), &settings, &shutdown)
        .await
        .expect("the API starts");
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    eventually("the API is ready", CONVERGED, || async {
        let response = http.get(format!("{base}/readyz")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    RunningApi { base, stop }
}

/// A caller of the API with a bearer token.
pub struct Caller {
    pub http: reqwest::Client,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub token: String,
}

impl Caller {
    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("answer");
        (
            response.status(),
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: serde_json::Value,
    ) -> (
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        serde_json::Value,
    ) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("answer");
        let status = response.status();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: serde_json::Value,
    ) -> (
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        serde_json::Value,
    ) {
        self.send(reqwest::Method::POST, path, key, body).await
    }
}

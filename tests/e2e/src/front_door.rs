//! Fixtures of the marketplace API suites: real callers (ServiceAccount tokens) and the API
//! process on a free loopback port.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};
use marketplace_harness::ControlPlane;
use marketplace_operator::front_door::ReviewCacheSettings;
use marketplace_operator::process::api::{ApiSettings, start};
use marketplace_operator::runtime::Shutdown;
use marketplace_operator::runtime::endpoint::EndpointSettings;
use marketplace_operator::runtime::shutdown::ShutdownTrigger;
use serde_json::json;

use crate::subscriptions::apply;

/// A ServiceAccount `namespace/name` and a one-hour token for it (TokenRequest).
pub async fn service_account_token(client: &Client, namespace: &str, name: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    apply(
        &accounts,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace}}),
    )
    .await;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
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

/// A running `marketplace api`: its base URL, and the trigger that stops it.
pub struct RunningApi {
    pub base: String,
    pub stop: ShutdownTrigger,
}

/// Starts the API on a free loopback port with a short review TTL (RBAC lands shortly after a
/// Tenant is created; a denial is cached that long).
pub async fn start_api(control_plane: &ControlPlane) -> RunningApi {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    let settings = ApiSettings {
        endpoint: EndpointSettings { listen, tls: None },
        reviews: ReviewCacheSettings {
            ttl: Duration::from_secs(2),
            capacity: 100,
        },
        shutdown_grace: Duration::from_secs(5),
    };
    let (stop, shutdown) = Shutdown::manual();
    start(control_plane.config().clone(), &settings, &shutdown)
        .await
        .expect("the API starts");
    RunningApi {
        base: format!("http://{listen}"),
        stop,
    }
}

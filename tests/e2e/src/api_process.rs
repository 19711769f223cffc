//! Running the entitlement API (`marketplace api`) inside a test, exactly as the process starts
//! it (`process::api::start`), on a free loopback port, with a stop handle.

use std::net::SocketAddr;
use std::time::Duration;

use kube::Client;
use marketplace_operator::front_door::ReviewCacheSettings;
use marketplace_operator::process::api::{ApiSettings, start};
use marketplace_operator::runtime::Shutdown;
use marketplace_operator::runtime::endpoint::EndpointSettings;
use marketplace_operator::runtime::shutdown::ShutdownTrigger;

use crate::eventually;
use crate::subscriptions::CONVERGED;

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

/// Starts the API with `review_ttl` for its cached reviews (short in tests: RBAC lands shortly
/// after a Tenant, and a denial is cached that long) and waits until it is ready.
pub async fn start_api(client: &Client, review_ttl: Duration) -> RunningApi {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    let settings = ApiSettings {
        endpoint: EndpointSettings { listen, tls: None },
        reviews: ReviewCacheSettings {
            ttl: review_ttl,
            capacity: 100,
        },
        shutdown_grace: Duration::from_secs(5),
    };
    let (stop, shutdown) = Shutdown::manual();
    start(client.clone(), &settings, &shutdown)
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

//! Propagation: how long after an Entitlement changes in the apiserver the API's OFREP answer
//! flips. Each change suspends one Active Entitlement (a payment failure, as the operator writes
//! it) and polls the flag every millisecond until it reads `false`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use marketplace_operator::api::Entitlement;
use marketplace_operator::controllers::tenant_rbac::namespace_name;
use serde_json::json;

use crate::Result;
use crate::dataset::Dataset;
use crate::load::Endpoint;
use crate::servers::Probe;

/// Change → answer flipped, and the patch's own round trip, for each change.
pub struct Propagation {
    pub flips: Vec<Duration>,
    pub writes: Vec<Duration>,
}

pub async fn measure(
    client: &Client,
    http: &reqwest::Client,
    server: SocketAddr,
    token: &str,
    dataset: &Dataset,
    changes: usize,
) -> Result<Propagation> {
    let mut result = Propagation {
        flips: Vec::with_capacity(changes),
        writes: Vec::with_capacity(changes),
    };
    for k in 0..changes {
        // Distinct tenants, each with an enabled feature ((i + j) % 3 == 0).
        let i = (k * 97 + 5) % dataset.tenants;
        let j = (3 - i % 3) % 3;
        let (tenant, feature) = (dataset.tenant(i), dataset.feature(j));
        let probe = Probe {
            endpoint: Endpoint::Ofrep,
            credential: token,
            tenant: &tenant,
            feature: &feature,
        };
        if !probe.enabled(http, server).await? {
            return Err(format!("{tenant}/{feature} is off before its change").into());
        }
        let api: Api<Entitlement> = Api::namespaced(client.clone(), &namespace_name(&tenant));
        let started = Instant::now();
        api.patch(
            &dataset.entitlement_name(j),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"state": "Suspended"}})),
        )
        .await?;
        result.writes.push(started.elapsed());
        loop {
            if !probe.enabled(http, server).await? {
                result.flips.push(started.elapsed());
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!("{tenant}/{feature} still on 30 s after its change").into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(result)
}

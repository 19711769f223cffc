//! What the suites about metered plans share (usage, usage_report, credits): a metered listing,
//! a tenant subscribed to it with a backend key, that key's calls to the API (usage events among
//! them), the keyed line items billed on a deal, and operators that report periods when the test
//! gives each round its time.

use std::sync::Arc;
use std::time::Duration;

use hubspot_sim::{ObjectType, RunningSimulator};
use jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::Api;
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Listing, TenantSubscription};
use marketplace_operator::controllers::usage_report::UsageReportSettings;
use marketplace_operator::controllers::{Context, ControllerConfig};
use marketplace_operator::front_door::api_keys::secrets::create_api_key;
use marketplace_operator::metering::{AnyUsageStore, UsageStoreLocation};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::controllers::OperatorWorld;
use crate::subscriptions::{CONVERGED, apply, phase_of};
use crate::tenants::tenant;
use crate::{eventually, unique_name};

/// The content type of a batch of usage events.
pub const BATCH: &str = "application/cloudevents-batch+json";

/// A Published metered listing: its name and its plan's meter.
pub struct MeteredListing {
    pub name: String,
    pub meter: String,
}

/// A Published in-app listing `pages-…` granting `feature`, whose one plan `starter` costs $9.00
/// a month plus the pages of meter `e2e.<name>` as `price` says (the plan's `metered` fields but
/// the meter and the unit, e.g. `{"unitPrice": "0.10", "includedQuantity": 3}`).
pub async fn metered_listing(client: &Client, feature: &str, price: Value) -> MeteredListing {
    let name = unique_name("pages");
    let meter = format!("e2e.{}", name.replace('-', "_"));
    let mut metered = json!({"meter": meter, "unit": "page"});
    if let (Some(metered), Some(price)) = (metered.as_object_mut(), price.as_object()) {
        metered.extend(price.clone());
    }
    apply(&Api::<Listing>::all(client.clone()), json!({"apiVersion": "marketplace.dev/v1alpha1",
        "kind": "Listing", "metadata": {"name": name}, "spec": {
            "displayName": "Document Pages", "tagline": "Read documents", "type": "InApp",
            "category": "AI", "lifecycle": "Published", "features": [feature],
            "plans": [{"name": "starter", "displayName": "Starter",
                "pricing": {"model": "Flat", "amount": "9.00", "currency": "USD", "interval": "Month"},
                "metered": metered}]}}))
    .await;
    MeteredListing { name, meter }
}

/// A usage event (CloudEvents JSON) of `meter` with `id`, happening now.
pub fn usage_event(id: &str, meter: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/pages", "type": meter,
           "time": Timestamp::now().to_string(), "data": {"pages": 1}})
}

/// A tenant's backend calling the API with its key (`X-API-Key`).
pub struct KeyCaller {
    pub http: reqwest::Client,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub key: String,
}

impl KeyCaller {
    pub fn new(base: &str, key: &str) -> KeyCaller {
        KeyCaller {
            http: reqwest::Client::new(),
            base: base.to_string(),
            key: key.to_string(),
        }
    }

    /// A request to `path` carrying the key.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("X-API-Key", &self.key)
    }

    /// Sends `request`: the status and the JSON body (null when there is none).
    async fn send(request: RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        Self::send(self.request(Method::GET, path)).await
    }

    /// The JSON at `path`, which must answer 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: &Value, content_type: &str) -> (StatusCode, Value) {
        let request = self
            .request(Method::POST, path)
            .header("Content-Type", content_type)
            .body(body.to_string());
        Self::send(request).await
    }

    /// Posts one batch of events of `meter` with `ids` (happening now), which must be accepted.
    pub async fn post_usage(&self, meter: &str, ids: &[String]) {
        let events: Vec<Value> = ids.iter().map(|id| usage_event(id, meter)).collect();
        let (status, body) = self.post("/v1/usage", &Value::from(events), BATCH).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    /// Waits until the API's caches hold `tenant`'s subscription to a metered plan (its meter
    /// shows in the tenant's usage).
    pub async fn known_to_the_api(&self, tenant: &str) {
        let path = format!("/v1/tenants/{tenant}/usage");
        eventually("the API knows the subscription", CONVERGED, || async {
            let (_, view) = self.get(&path).await;
            (view["meters"].as_array()?.len() == 1).then_some(())
        })
        .await;
    }
}

/// Event ids `<prefix>0`, `<prefix>1`, … (`count` of them).
pub fn event_ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

/// A tenant subscribed (`pages`, plan `starter`) to a metered listing, billed (Active), with a
/// backend key.
pub struct Subscriber {
    pub name: String,
    pub key: String,
    pub subscription: TenantSubscription,
}

impl Subscriber {
    /// A fresh Tenant `<base>-…` (the usual spec plus `spec`) subscribed to `listing`, once the
    /// operator has billed the subscription, with a key of its billing server.
    pub async fn subscribe(client: &Client, listing: &str, base: &str, spec: Value) -> Subscriber {
        let (name, namespace) = tenant(client, base, spec).await;
        let subs: Api<TenantSubscription> = Api::namespaced(client.clone(), &namespace);
        apply(
            &subs,
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
                "metadata": {"name": "pages", "namespace": namespace},
                "spec": {"listing": listing, "plan": "starter"}}),
        )
        .await;
        let subscription = phase_of(&subs, "pages", Phase::Active).await;
        let key = create_api_key(client, &name, "billing server", None, Timestamp::now())
            .await
            .expect("a key")
            .key;
        Subscriber {
            name,
            key,
            subscription,
        }
    }

    /// The subscription's HubSpot deal.
    pub fn deal_id(&self) -> String {
        self.subscription
            .status
            .as_ref()
            .and_then(|s| s.hubspot.as_ref())
            .and_then(|h| h.deal_id.clone())
            .expect("a deal")
    }

    pub fn uid(&self) -> String {
        self.subscription.metadata.uid.clone().expect("uid")
    }

    /// The tenant's billing server calling the API at `base`.
    pub fn caller(&self, base: &str) -> KeyCaller {
        KeyCaller::new(base, &self.key)
    }
}

/// The properties of the line items on deal `deal` (as the simulator holds them) whose property
/// `key` is set.
pub fn keyed_line_items(sim: &RunningSimulator, deal: &str, key: &str) -> Vec<Value> {
    let deal: u64 = deal.parse().expect("numeric deal id");
    let admin = sim.admin();
    let ids = admin.associated(ObjectType::Deals, deal, ObjectType::LineItems);
    admin
        .objects(ObjectType::LineItems)
        .into_iter()
        .filter(|li| {
            let id: u64 = li["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
            ids.contains(&id) && li["properties"][key].is_string()
        })
        .map(|li| li["properties"].clone())
        .collect()
}

/// Settings of controllers whose periods the test reports itself, giving each round its time:
/// the background reporter and the drift audit wait an hour; a period settles for a minute.
pub fn reported_by_hand() -> ControllerConfig {
    ControllerConfig {
        audit_interval: Duration::from_secs(3600),
        usage_report: UsageReportSettings {
            interval: Duration::from_secs(3600),
            settle: SignedDuration::from_secs(60),
        },
        ..ControllerConfig::default()
    }
}

/// An operator of `world` (replica `instance`, [`reported_by_hand`]) reporting from the usage
/// store at `location`, with its own HubSpot client, caches and store handle: a fresh one stands
/// for a restarted process.
pub async fn reporting_operator(
    world: &OperatorWorld,
    location: &UsageStoreLocation,
    instance: &str,
) -> Arc<Context> {
    let store = AnyUsageStore::open(location).await.expect("usage store");
    let ctx = world
        .restarted(instance, reported_by_hand())
        .await
        .with_usage_store(Arc::new(store));
    ctx.stores.wait_until_ready().await;
    Arc::new(ctx)
}

//! The TenantSubscription admission webhook on a real apiserver, which calls it over HTTPS on
//! loopback (a URL clientConfig) with the certificate the operator made and the caBundle it
//! injected: every refusal names the object and the field, valid and waiting subscriptions are
//! admitted, certificates rotate (CA included) without a failed call, and with the webhook down
//! the apiserver admits and the reconciler refuses.
//! One test: the webhook configuration applies to the whole control plane.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use marketplace_e2e::controllers;
use marketplace_e2e::subscriptions::{CONVERGED, apply, phase_of, ready_reason};
use marketplace_e2e::{
    control_plane, eventually, kubectl, unique_name, workspace_root, yaml_documents,
};
use marketplace_operator::admission::certs::{self, CertLifetimes, ServingNames};
use marketplace_operator::admission::{AdmissionConfig, CertSource, PATH, rotator};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{Listing, Tenant, TenantSubscription};
use marketplace_operator::controllers::{ControllerConfig, Enabled};
use marketplace_operator::runtime::{Shutdown, Stores};
use marketplace_operator::server::tls::ReloadableCert;
use serde_json::{Value, json};

/// Short enough that the CA rotates during the test: it is due after two thirds (8 s).
const LIFETIMES: CertLifetimes = CertLifetimes {
    ca: Duration::from_secs(12),
    leaf: Duration::from_secs(4),
};

struct Env {
    client: Client,
    control_plane: &'static marketplace_harness::ControlPlane,
    operator_namespace: String,
    secret: String,
    webhook_config: String,
    /// Namespace of a tenant on the Professional base plan.
    namespace: String,
    /// A Published listing with plans `standard` (per unit) and `flat`.
    open: String,
    /// The caches the webhook decides from.
    stores: Stores,
}

fn listing(name: &str, extra: Value) -> Value {
    let mut spec = json!({
        "displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
        "category": "Operations", "lifecycle": "Published", "features": ["route_optimization"],
        "plans": [
            {"name": "standard", "displayName": "Standard",
             "pricing": {"model": "PerUnit", "amount": "12.00", "currency": "USD", "interval": "Month", "unit": "vehicle"}},
            {"name": "flat", "displayName": "Flat",
             "pricing": {"model": "Flat", "amount": "49.00", "currency": "USD", "interval": "Month"}},
        ],
    });
    for (k, v) in extra.as_object().expect("object") {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing", "metadata": {"name": name}, "spec": spec})
}

fn subscription(name: &str, namespace: &str, listing: &str, plan: &str, quantity: i32) -> Value {
    json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"listing": listing, "plan": plan, "quantity": quantity},
    })
}

fn typed(object: &Value) -> TenantSubscription {
    serde_json::from_value(object.clone()).expect("a TenantSubscription")
}

impl Env {
    fn subs(&self, namespace: &str) -> Api<TenantSubscription> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// `kubectl apply` of `object`, off the async threads (the webhook answers on them).
    async fn kubectl_apply(&self, object: Value) -> std::process::Output {
        let control_plane = self.control_plane;
        tokio::task::spawn_blocking(move || {
            kubectl(
                control_plane,
                &["apply", "-f", "-"],
                Some(&object.to_string()),
            )
        })
        .await
        .expect("kubectl")
    }

    async fn listing(&self, base: &str, extra: Value) -> String {
        let name = unique_name(base);
        apply(
            &Api::<Listing>::all(self.client.clone()),
            listing(&name, extra),
        )
        .await;
        // The webhook knows a listing once its cache has it; before, it lets subscriptions wait.
        eventually("the listing in the cache", CONVERGED, || async {
            self.stores.listing(&name).map(|_| ())
        })
        .await;
        name
    }

    async fn create(
        &self,
        object: &Value,
        dry_run: bool,
    ) -> Result<TenantSubscription, kube::Error> {
        let namespace = object["metadata"]["namespace"].as_str().expect("namespace");
        let params = PostParams {
            dry_run,
            ..PostParams::default()
        };
        self.subs(namespace).create(&params, &typed(object)).await
    }

    /// Creating `object` is denied: returns the message after checking it names the object and
    /// `field`, and carries `reason`.
    async fn denied(&self, object: &Value, field: &str, reason: &str) -> String {
        let message = match self.create(object, false).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{status:?}");
                assert_eq!(status.reason, reason, "{status:?}");
                status.message
            }
            other => panic!("expected the webhook to deny {object}, got {other:?}"),
        };
        let key = format!(
            "TenantSubscription {}/{}: {field}: ",
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        );
        assert!(message.contains(&key), "{message:?} does not name {key:?}");
        message
    }
}

/// A Tenant on `base_plan` and its namespace, once the tenant controller made it.
async fn tenant_namespace(client: &Client, base_plan: &str) -> String {
    let name = unique_name("acme");
    let tenants: Api<Tenant> = Api::all(client.clone());
    apply(
        &tenants,
        json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
               "spec": {"displayName": "Acme", "basePlan": base_plan,
                        "billingContact": {"name": "Ann Example", "email": "ann@acme.example"}}}),
    )
    .await;
    eventually("the tenant namespace", CONVERGED, || async {
        tenants.get(&name).await.ok()?.status?.namespace
    })
    .await
}

/// The shipped ValidatingWebhookConfiguration, renamed and pointed at `url`.
fn webhook_configuration(name: &str, url: &str) -> ValidatingWebhookConfiguration {
    let path = workspace_root().join("deploy/admission-webhook.yaml");
    let mut doc = yaml_documents(&path)
        .into_iter()
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .expect("deploy/admission-webhook.yaml has the webhook configuration");
    doc["metadata"]["name"] = json!(name);
    for webhook in doc["webhooks"].as_array_mut().expect("webhooks") {
        assert_eq!(webhook["failurePolicy"], "Ignore");
        assert_eq!(webhook["clientConfig"]["service"]["path"], PATH);
        webhook["clientConfig"] = json!({ "url": url });
    }
    serde_json::from_value(doc).expect("a ValidatingWebhookConfiguration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_refuses_subscriptions_that_cannot_be_billed() {
    let started = Instant::now();
    let control_plane = control_plane().await;
    let client = control_plane.client().await.expect("client");
    let operator_namespace = controllers::operator_namespace(control_plane).await;
    let ctx = Arc::new(controllers::context(
        &client,
        ControllerConfig {
            namespace: operator_namespace.clone(),
            ..ControllerConfig::default()
        },
        "e2e-admission",
    ));
    let running = controllers::start(ctx.clone(), Enabled::TENANTS_AND_SUBSCRIPTIONS);
    let (stop, stopped) = Shutdown::manual();

    // The webhook is registered but nothing listens yet.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("address").port()
    };
    let webhook_config = unique_name("marketplace-operator");
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configs
        .create(
            &PostParams::default(),
            &webhook_configuration(&webhook_config, &format!("https://127.0.0.1:{port}{PATH}")),
        )
        .await
        .expect("webhook configuration");
    let namespace = tenant_namespace(&client, "Professional").await;
    let open = unique_name("route-opt");
    apply(
        &Api::<Listing>::all(client.clone()),
        listing(&open, json!({})),
    )
    .await;
    let env = Env {
        client: client.clone(),
        control_plane,
        operator_namespace: operator_namespace.clone(),
        secret: unique_name("webhook-cert"),
        webhook_config: webhook_config.clone(),
        namespace: namespace.clone(),
        open,
        stores: ctx.stores.clone(),
    };
    let rejected = webhook_down_means_the_reconciler_refuses(&env).await;

    // Start the webhook: it makes its certificate, injects the caBundle and serves.
    let metrics = ctx.metrics.clone();
    let config = AdmissionConfig {
        listen: format!("127.0.0.1:{port}").parse().expect("address"),
        namespace: operator_namespace.clone(),
        certificate: CertSource::Managed {
            secret: env.secret.clone(),
            names: ServingNames {
                dns: Vec::new(),
                ips: vec!["127.0.0.1".parse().expect("ip")],
            },
            lifetimes: LIFETIMES,
            webhook_config: Some(webhook_config.clone()),
        },
        platform_version: None,
    };
    let webhook = tokio::spawn(marketplace_operator::admission::serve(
        client.clone(),
        ctx.stores.clone(),
        config,
        metrics.clone(),
        stopped.requested(),
    ));
    let probe = subscription(&unique_name("probe"), &namespace, &env.open, "gold", 1);
    eventually("the webhook to answer", CONVERGED, || async {
        matches!(env.create(&probe, true).await, Err(kube::Error::Api(_))).then_some(())
    })
    .await;
    let up = Instant::now();

    tokio::join!(
        refusals_name_the_field(&env),
        one_live_subscription_and_one_request_per_hour(&env, &rejected),
        waiting_and_valid_subscriptions_are_admitted(&env),
        certificates_rotate_without_a_failed_call(&env),
        replicas_share_one_certificate(&env),
    );
    assert!(metrics.admission_count("denied", "PlanNotFound") > 0);
    assert!(metrics.admission_count("allowed", "Valid") > 0);
    eprintln!(
        "admission: webhook up after {:?}; scenarios took {:?}",
        up.duration_since(started),
        up.elapsed()
    );

    configs
        .delete(&webhook_config, &DeleteParams::default())
        .await
        .expect("webhook configuration deleted");
    stop.stop();
    tokio::time::timeout(Duration::from_secs(30), webhook)
        .await
        .expect("webhook stops")
        .expect("webhook task")
        .expect("webhook served");
    running.stop().await;
}

/// With `failurePolicy: Ignore` and no webhook listening, a plan typo is created and the
/// reconciler rejects it. Returns the Rejected subscription's name.
async fn webhook_down_means_the_reconciler_refuses(env: &Env) -> String {
    let name = unique_name("typo");
    env.create(
        &subscription(&name, &env.namespace, &env.open, "gold", 1),
        false,
    )
    .await
    .expect("admitted while the webhook is down");
    let sub = phase_of(&env.subs(&env.namespace), &name, Phase::Rejected).await;
    assert!(
        ready_reason(&sub).starts_with("PlanNotFound"),
        "{}",
        ready_reason(&sub)
    );
    name
}

async fn refusals_name_the_field(env: &Env) {
    let ns = env.namespace.as_str();
    // kubectl apply says no, naming object and field, and stores nothing.
    let name = unique_name("gold");
    let out = env
        .kubectl_apply(subscription(&name, ns, &env.open, "gold", 1))
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for part in [
        "PlanNotFound",
        &format!("TenantSubscription {ns}/{name}: spec.plan: "),
        "has no plan \"gold\"; its plans are: standard, flat",
    ] {
        assert!(stderr.contains(part), "{part:?} missing in {stderr}");
    }
    assert!(env.subs(ns).get_opt(&name).await.expect("get").is_none());

    for (lifecycle, why) in [
        ("ComingSoon", "is coming soon"),
        ("Draft", "is a draft"),
        ("Archived", "is archived"),
    ] {
        let listing = env
            .listing("unpublished", json!({"lifecycle": lifecycle}))
            .await;
        let message = env
            .denied(
                &subscription(&unique_name("early"), ns, &listing, "standard", 1),
                "spec.listing",
                "ListingNotPublished",
            )
            .await;
        assert!(message.contains(why), "{message}");
    }
    let message = env
        .denied(
            &subscription(&unique_name("flat"), ns, &env.open, "flat", 3),
            "spec.quantity",
            "InvalidQuantity",
        )
        .await;
    assert!(message.contains("quantity must be 1, not 3"), "{message}");
    let enterprise = env
        .listing(
            "enterprise-only",
            json!({"availableOnPlans": ["Enterprise"]}),
        )
        .await;
    let message = env
        .denied(
            &subscription(&unique_name("base"), ns, &enterprise, "standard", 1),
            "spec.listing",
            "BasePlanNotAllowed",
        )
        .await;
    assert!(
        message.contains("the tenant is on Professional"),
        "{message}"
    );
    let needs = env
        .listing("needs-open", json!({"requires": {"listings": [env.open]}}))
        .await;
    let message = env
        .denied(
            &subscription(&unique_name("prereq"), ns, &needs, "standard", 1),
            "spec.listing",
            "PrerequisiteMissing",
        )
        .await;
    assert!(
        message.contains("requires an active subscription to"),
        "{message}"
    );
}

async fn one_live_subscription_and_one_request_per_hour(env: &Env, rejected: &str) {
    let ns = env.namespace.as_str();
    // A spec edit of the Rejected subscription is refused with what to do instead.
    let status = match env
        .subs(ns)
        .patch(
            rejected,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"plan": "standard"}})),
        )
        .await
    {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected the edit of a Rejected subscription to be denied: {other:?}"),
    };
    assert_eq!(status.reason, "SubscriptionEnded");
    for part in [
        &format!("TenantSubscription {ns}/{rejected}: spec.plan: "),
        "the subscription is Rejected (PlanNotFound",
        "create a new TenantSubscription (or delete this one)",
    ] {
        assert!(
            status.message.contains(part),
            "{part:?} missing in {}",
            status.message
        );
    }
    // Metadata-only writes still pass.
    env.subs(ns)
        .patch(
            rejected,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"seen": "yes"}}})),
        )
        .await
        .expect("a label on a Rejected subscription");
    // The Rejected request was made less than an hour ago. (Within the same second of it the
    // names would decide which came first, so let that second pass.)
    let made = env.subs(ns).get(rejected).await.expect("rejected");
    let made = made.metadata.creation_timestamp.expect("created").0;
    while jiff::Timestamp::now() < made + jiff::SignedDuration::from_millis(1100) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = env
        .denied(
            &subscription(&unique_name("again"), ns, &env.open, "standard", 2),
            "spec.listing",
            "RateLimited",
        )
        .await;
    assert!(message.contains("at most once per hour"), "{message}");

    // A second live subscription to a listing is refused at once.
    let other_ns = tenant_namespace(&env.client, "Professional").await;
    let listing = env.listing("fleet", json!({})).await;
    let first = unique_name("first");
    env.create(
        &subscription(&first, &other_ns, &listing, "standard", 2),
        false,
    )
    .await
    .expect("the first subscription is valid");
    let message = env
        .denied(
            &subscription(&unique_name("second"), &other_ns, &listing, "flat", 1),
            "spec.listing",
            "AlreadySubscribed",
        )
        .await;
    assert!(
        message.contains(&format!("already has subscription {first}")),
        "{message}"
    );
}

async fn waiting_and_valid_subscriptions_are_admitted(env: &Env) {
    let ns = env.namespace.as_str();
    let valid = unique_name("valid");
    let created = env
        .create(
            &subscription(
                &valid,
                ns,
                &env.listing("analytics", json!({})).await,
                "standard",
                4,
            ),
            false,
        )
        .await
        .expect("a valid subscription is admitted");
    assert_eq!(created.name_any(), valid);

    // A listing not in the catalog (yet): admitted with a warning; it waits in Requested.
    let name = unique_name("later");
    let missing = unique_name("not-yet");
    let out = env
        .kubectl_apply(subscription(&name, ns, &missing, "standard", 1))
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Warning: spec.listing: there is no listing {missing:?}"
        )),
        "{stderr}"
    );
    let sub = phase_of(&env.subs(ns), &name, Phase::Requested).await;
    assert!(
        ready_reason(&sub).starts_with("ListingNotFound"),
        "{}",
        ready_reason(&sub)
    );

    // A namespace with no Tenant behind it (yet): admitted too.
    let stray = env
        .control_plane
        .create_namespace("tenant-unknown")
        .await
        .expect("namespace");
    env.create(
        &subscription(&unique_name("stray"), &stray, &env.open, "gold", 1),
        false,
    )
    .await
    .expect("a subscription in a namespace without a tenant waits");
}

/// Plan typos keep being denied (a failed call would admit them: `failurePolicy: Ignore`)
/// while the leaf renews, a new CA joins the caBundle, signs the served leaf and the old CA
/// leaves the bundle.
async fn certificates_rotate_without_a_failed_call(env: &Env) {
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.operator_namespace);
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(env.client.clone());
    let read = || async {
        let secret = secrets.get(&env.secret).await.expect("certificate Secret");
        let data = secret.data.unwrap_or_default();
        let text = |k: &str| String::from_utf8_lossy(&data[k].0).into_owned();
        let cas = certs::parse_certs("ca.crt", &text(certs::CA_CERT_KEY)).expect("CAs");
        let leaf = certs::parse_certs("tls.crt", &text(certs::TLS_CERT_KEY))
            .expect("leaf")
            .remove(0);
        let config = configs
            .get(&env.webhook_config)
            .await
            .expect("configuration");
        let bundle = config.webhooks.unwrap_or_default()[0]
            .client_config
            .ca_bundle
            .clone()
            .expect("caBundle injected")
            .0;
        (cas, leaf, bundle)
    };
    let (first_cas, first_leaf, first_bundle) = read().await;
    assert_eq!(first_cas.len(), 1);
    assert!(certs::bundle_contains(&first_bundle, &first_cas[0].der));
    assert_eq!(first_leaf.issuer, first_cas[0].subject);

    let (mut leaves, mut calls) = (std::collections::BTreeSet::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let typo = subscription(
            &unique_name("rotating"),
            &env.namespace,
            &env.open,
            "gold",
            1,
        );
        match env.create(&typo, true).await {
            Err(kube::Error::Api(status)) if status.reason == "PlanNotFound" => calls += 1,
            other => panic!("call {calls} during rotation was not denied: {other:?}"),
        }
        let (cas, leaf, bundle) = read().await;
        leaves.insert(leaf.der.clone());
        let new_ca_serves = leaf.issuer != first_cas[0].subject;
        let old_ca_gone = !certs::bundle_contains(&bundle, &first_cas[0].der);
        if new_ca_serves && old_ca_gone && cas.len() == 1 && leaves.len() >= 3 {
            assert!(certs::bundle_contains(&bundle, &cas[0].der));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no full rotation: {} leaves seen, new CA serving {new_ca_serves}, old CA gone {old_ca_gone}",
            leaves.len()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    eprintln!(
        "admission: {calls} calls denied during rotation, {} leaves served",
        leaves.len()
    );
}

/// Two replicas starting on an empty Secret at once end up serving the same certificate.
async fn replicas_share_one_certificate(env: &Env) {
    let source = CertSource::Managed {
        secret: unique_name("shared-cert"),
        names: ServingNames::for_service("marketplace-operator-webhook", &env.operator_namespace),
        lifetimes: CertLifetimes::default(),
        webhook_config: None,
    };
    let (a, b) = (ReloadableCert::default(), ReloadableCert::default());
    let now = jiff::Timestamp::now();
    let (ra, rb) = tokio::join!(
        rotator::sync_once(&env.client, &env.operator_namespace, &source, &a, now),
        rotator::sync_once(&env.client, &env.operator_namespace, &source, &b, now),
    );
    ra.expect("replica a");
    rb.expect("replica b");
    let served = |c: &ReloadableCert| c.current().expect("a certificate").cert.clone();
    assert_eq!(served(&a), served(&b));
}

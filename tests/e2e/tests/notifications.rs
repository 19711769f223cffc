//! Notifications end to end: the operator's controllers (tenants, subscriptions, actions,
//! notifications) on a real apiserver, billing through the HubSpot simulator, e-mail to a real
//! SMTP server (aiosmtpd) and webhooks to a receiver that verifies each one with the Standard
//! Webhooks reference library (both in one Python process on loopback, from
//! `scripts/install-test-clients`). A purchase, an approval walk (with an overdue invoice), a
//! payment failure, an idle add-on, a cancellation and a trial each produce exactly the expected
//! messages, to the right people, once; a webhook answering 500 three times then 200 gets its
//! message once; a channel that is down dead-letters without holding up the others, and a
//! superadmin's retry annotation sends it again. The schedules are shortened by configuration.
//! One test: the controllers serve the whole cluster. Without the Python clients it skips,
//! saying why, or fails under CI (`MARKETPLACE_REQUIRE_TEST_TOOLS`, set by `.ci/run`, or `CI`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use marketplace_e2e::controllers::{self, OperatorWorld};
use marketplace_e2e::subscriptions::{CONVERGED, apply, phase_of};
use marketplace_e2e::{eventually, skip_unless_required, unique_name, workspace_root};
use marketplace_operator::api::notification::{DeliveryPhase, RETRY_ANNOTATION};
use marketplace_operator::api::tenant_subscription::Phase;
use marketplace_operator::api::{
    Entitlement, Listing, Notification, SubscriptionAction, Tenant, TenantSubscription,
};
use marketplace_operator::controllers::{ControllerConfig, Enabled, billing_audit};
use marketplace_operator::lifecycle::notify::{RetryPolicy, ScheduleConfig};
use marketplace_operator::notify::NotifyConfig;
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OPS: &str = "ops@saas.example";
/// Where the drift alert goes over the TLS servers.
const TLS_OPS: &str = "tls-ops@saas.example";
/// A STARTTLS channel that does not trust the test CA.
const UNTRUSTED_OPS: &str = "untrusted@saas.example";

/// The Python receivers, stopped (stdin closed, then killed) when dropped.
struct Receivers {
    child: Child,
    smtp: u16,
    /// STARTTLS required, then AUTH (mailer / s3cret).
    starttls: u16,
    /// Implicit TLS, then AUTH.
    smtps: u16,
    http: u16,
    /// The PEM CA the TLS servers' certificate is signed by.
    ca: String,
    /// Where the servers' certificate and key are (removed on drop).
    dir: std::path::PathBuf,
}

impl Drop for Receivers {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_receivers() -> Option<Receivers> {
    let root = workspace_root();
    let install = Command::new(root.join("scripts/install-test-clients"))
        .status()
        .expect("scripts/install-test-clients runs");
    if !install.success() {
        skip_unless_required(
            "the notifications suite",
            "the Python test clients (aiosmtpd, standardwebhooks) could not be installed (see above)",
        );
        return None;
    }
    let python = Command::new(root.join("scripts/install-test-clients"))
        .arg("--print-python")
        .output()
        .expect("print python");
    let python = String::from_utf8(python.stdout).expect("utf-8");
    // A throw-away CA and a loopback serving certificate (the harness's PKI) for the SMTP
    // servers that speak TLS.
    let pki = marketplace_harness::pki::Pki::generate().expect("a PKI");
    let dir = std::env::temp_dir().join(unique_name("smtp-tls"));
    std::fs::create_dir_all(&dir).expect("a folder for the certificate");
    std::fs::write(dir.join("tls.crt"), &pki.oidc_issuer_cert).expect("write the certificate");
    std::fs::write(dir.join("tls.key"), &pki.oidc_issuer_key).expect("write the key");
    let mut child = Command::new(python.trim())
        .arg(root.join("tests/e2e/tests/notifications_support/receivers.py"))
        .arg(SECRET)
        .arg(dir.join("tls.crt"))
        .arg(dir.join("tls.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("receivers start");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ports");
    let ports: Value = serde_json::from_str(&line).expect("ports JSON");
    let port = |name: &str| ports[name].as_u64().expect(name) as u16;
    Some(Receivers {
        child,
        smtp: port("smtp"),
        starttls: port("starttls"),
        smtps: port("smtps"),
        http: port("http"),
        ca: pki.ca_cert,
        dir,
    })
}

struct Env {
    client: Client,
    namespace: String,
    http: reqwest::Client,
    receivers: Receivers,
}

impl Env {
    async fn received(&self) -> Value {
        let url = format!("http://127.0.0.1:{}/received", self.receivers.http);
        self.http
            .get(url)
            .send()
            .await
            .expect("receivers answer")
            .json()
            .await
            .expect("JSON")
    }

    /// The outbox record over `channel` about subscription `about` (namespace/name), if any.
    async fn record(&self, channel: &str, about: &str) -> Option<Notification> {
        let records: Api<Notification> = Api::namespaced(self.client.clone(), &self.namespace);
        records
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|r| {
                r.spec.channel == channel
                    && r.spec.data.get("subscription").map(String::as_str) == Some(about)
            })
    }

    /// The first e-mail received that `matches`.
    async fn first_mail(&self, matches: impl Fn(&Value) -> bool) -> Value {
        let received = self.received().await;
        received["mail"]
            .as_array()
            .expect("mail")
            .iter()
            .find(|m| matches(m))
            .cloned()
            .unwrap_or_else(|| panic!("no such mail in {received}"))
    }

    /// Subjects of the e-mails to `address` whose text mentions `about`, sorted.
    async fn mail_to(&self, address: &str, about: &str) -> Vec<String> {
        let received = self.received().await;
        let mut subjects: Vec<String> = received["mail"]
            .as_array()
            .expect("mail")
            .iter()
            .filter(|m| {
                m["to"]
                    .as_array()
                    .is_some_and(|to| to.iter().any(|t| t == address))
            })
            .filter(|m| about.is_empty() || m["text"].as_str().is_some_and(|t| t.contains(about)))
            .map(|m| m["subject"].as_str().unwrap_or_default().to_string())
            .collect();
        subjects.sort();
        subjects
    }

    /// Waits until `address` received `want` (sorted subjects) about `about`, then a moment
    /// more to be sure nothing else follows.
    async fn expect_mail(&self, address: &str, about: &str, want: &[&str]) {
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        let what = format!("{address} to receive {want:?}");
        eventually(&what, CONVERGED, || async {
            (self.mail_to(address, about).await.len() >= want.len()).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let got = self.mail_to(address, about).await;
        if got != want {
            let received = self.received().await;
            let ids: Vec<&Value> = received["mail"]
                .as_array()
                .expect("mail")
                .iter()
                .filter(|m| {
                    m["to"]
                        .as_array()
                        .is_some_and(|to| to.iter().any(|t| t == address))
                })
                .map(|m| &m["messageId"])
                .collect();
            panic!("mail to {address}: got {got:?}, want {want:?}; Message-IDs {ids:?}");
        }
    }

    /// Verified webhook deliveries to `path` whose data mention `about`: (type, id).
    async fn hooks(&self, path: &str, about: &str) -> Vec<(String, String)> {
        let received = self.received().await;
        received["hooks"]
            .as_array()
            .expect("hooks")
            .iter()
            .filter(|h| h["path"] == path)
            .filter(|h| {
                h["payload"]["data"]["facts"]["subscription"]
                    .as_str()
                    .is_some_and(|s| s.contains(about))
            })
            .map(|h| {
                assert_eq!(h["verified"], true, "every webhook verifies: {h}");
                (
                    h["payload"]["type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    h["id"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    async fn tenant(&self, base: &str, extra: Value) -> (String, String, String, String) {
        let name = unique_name(base);
        let billing = format!("billing@{name}.example");
        let admin = format!("admin@{name}.example");
        let mut spec = json!({"displayName": "Acme Logistics", "basePlan": "Professional",
            "billingContact": {"name": "Ann Example", "email": billing},
            "notifications": {"adminEmails": [admin]}});
        for (k, v) in extra.as_object().expect("object") {
            spec["notifications"][k] = v.clone();
        }
        let tenants: Api<Tenant> = Api::all(self.client.clone());
        apply(
            &tenants,
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Tenant",
                   "metadata": {"name": name}, "spec": spec}),
        )
        .await;
        let namespace = eventually("the tenant namespace", CONVERGED, || async {
            tenants.get(&name).await.ok()?.status?.namespace
        })
        .await;
        (name, namespace, billing, admin)
    }

    async fn listing(&self, base: &str, extra: Value) -> String {
        let name = unique_name(base);
        let mut spec = json!({
            "displayName": "Route Optimization", "tagline": "Fast routes", "type": "InApp",
            "category": "Operations", "lifecycle": "Published",
            "features": ["route_optimization"],
            "navigation": [{"menu": "Dispatch", "label": "Routes", "path": "/dispatch/routes"}],
            "plans": [{"name": "standard", "displayName": "Standard", "trialDays": 14,
                "pricing": {"model": "Flat", "amount": "12.00", "currency": "USD", "interval": "Month"}}],
        });
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        apply(
            &Api::<Listing>::all(self.client.clone()),
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "Listing",
                "metadata": {"name": name}, "spec": spec}),
        )
        .await;
        name
    }

    async fn channel(&self, name: &str, spec: Value) {
        apply(
            &Api::<marketplace_operator::api::NotificationChannel>::namespaced(
                self.client.clone(),
                &self.namespace,
            ),
            json!({"apiVersion": "marketplace.dev/v1alpha1", "kind": "NotificationChannel",
                "metadata": {"name": name, "namespace": self.namespace}, "spec": spec}),
        )
        .await;
    }

    async fn act(&self, namespace: &str, sub: &str, action: &str, extra: Value) {
        let actions: Api<SubscriptionAction> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let mut spec =
            json!({"subscriptionRef": {"namespace": namespace, "name": sub}, "action": action});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        let name = unique_name(&action.to_lowercase());
        let object: SubscriptionAction = serde_json::from_value(json!({
            "apiVersion": "marketplace.dev/v1alpha1", "kind": "SubscriptionAction",
            "metadata": {"name": name, "namespace": self.namespace}, "spec": spec,
        }))
        .expect("action");
        actions
            .create(&PostParams::default(), &object)
            .await
            .expect("create action");
    }
}

fn subscription(name: &str, namespace: &str, listing: &str, trial: bool) -> TenantSubscription {
    serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"listing": listing, "plan": "standard", "quantity": 1, "trial": trial},
    }))
    .expect("a TenantSubscription")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_right_people_hear_of_every_step_once() {
    let Some(receivers) = start_receivers() else {
        return;
    };
    let world = OperatorWorld::start().await;
    let (client, namespace) = (world.client.clone(), world.operator_namespace.clone());
    let ctx = Arc::new(
        world
            .context(
                "e2e-notifications",
                ControllerConfig {
                    audit_interval: Duration::from_secs(3600),
                    orphan_grace: Duration::ZERO,
                    ..ControllerConfig::default()
                },
            )
            .with_notifications(NotifyConfig {
                retry: RetryPolicy {
                    max_attempts: 5,
                    first_delay: Duration::from_millis(100),
                    max_delay: Duration::from_millis(400),
                },
                schedule: ScheduleConfig {
                    overdue_after: Duration::from_secs(3),
                    overdue_every: Duration::from_secs(3600),
                    trial_notice: Duration::from_secs(15 * 24 * 3600),
                    idle_after: Duration::from_secs(24 * 3600),
                    idle_every: Duration::from_secs(3600),
                    drift_unhealed_after: Duration::from_secs(1),
                },
                schedule_interval: Duration::from_millis(500),
                ..NotifyConfig::default()
            }),
    );
    let running = controllers::start(
        ctx.clone(),
        Enabled {
            tenants: true,
            subscriptions: true,
            actions: true,
            notifications: true,
            ..Enabled::NONE
        },
    );
    let env = Env {
        client: client.clone(),
        namespace: namespace.clone(),
        http: reqwest::Client::new(),
        receivers,
    };

    // Channels: tenants by e-mail, superadmins by e-mail and a filtered webhook, tasks by a
    // flaky webhook, and one webhook nobody listens on.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &namespace);
    apply(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hook-signing", "namespace": namespace},
        "stringData": {"secret": SECRET}}),
    )
    .await;
    let smtp = json!({"host": "127.0.0.1", "port": env.receivers.smtp, "security": "None",
        "from": "Marketplace <marketplace@saas.example>"});
    let hook = |path: &str, port: u16| {
        json!({"url": format!("http://127.0.0.1:{port}{path}"),
            "signingSecretRef": {"name": "hook-signing"}})
    };
    // Catalog news goes through its own channel, created by the announcements step: the
    // listings of the steps before are news to nobody.
    env.channel(
        "tenant-mail",
        json!({"audience": "Tenants", "smtp": smtp, "events": ["NewRequest", "InvoiceReady",
            "InvoiceOverdue", "Activated", "PaymentFailed", "CancellationRequested",
            "CancellationConfirmed", "TrialEnding", "IdleAddOn"]}),
    )
    .await;
    env.channel(
        "ops-mail",
        json!({"audience": "Superadmins", "to": [OPS], "smtp": smtp}),
    )
    .await;
    env.channel(
        "ops-hook",
        json!({"audience": "Superadmins",
        "events": ["PaymentFailed"], "webhook": hook("/alerts", env.receivers.http)}),
    )
    .await;
    apply(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "ops-slack", "namespace": namespace},
        "stringData": {"url": format!("http://127.0.0.1:{}/slack", env.receivers.http)}}),
    )
    .await;
    env.channel(
        "ops-slack",
        json!({"audience": "Superadmins", "events": ["PaymentFailed"],
            "slack": {"urlSecretRef": {"name": "ops-slack"}}}),
    )
    .await;
    env.channel(
        "tasks",
        json!({"audience": "Tasks", "webhook": hook("/flaky", env.receivers.http)}),
    )
    .await;
    // Port 9 (discard) on loopback: nothing listens, every attempt fails at once.
    env.channel(
        "down",
        json!({"audience": "Superadmins", "events": ["NewRequest"],
        "webhook": hook("/down", 9)}),
    )
    .await;
    tls_channels(&env).await;
    refused_channels(&env, &smtp).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    purchase_idle_payment_failure_and_cancellation(&env, &world.sim, &ctx, &world.hubspot).await;
    approval_walk(&env).await;
    trial(&env).await;
    let running = announcements(&env, &smtp, ctx, running).await;

    running.stop().await;
}

/// An instant purchase: Activated to the billing contact and the admin; its features unused
/// for longer than the idle threshold: one nudge; a payment failure: the tenant told what to
/// do, superadmins alerted by e-mail and webhook; a cancellation: confirmed.
async fn purchase_idle_payment_failure_and_cancellation(
    env: &Env,
    sim: &hubspot_sim::RunningSimulator,
    ctx: &Arc<marketplace_operator::controllers::Context>,
    hubspot: &marketplace_operator::billing::HubSpotClient,
) {
    let listing = env.listing("routes", json!({})).await;
    let (_, namespace, billing, admin) = env.tenant("buyer", json!({})).await;
    let subs: Api<TenantSubscription> = Api::namespaced(env.client.clone(), &namespace);
    subs.create(
        &PostParams::default(),
        &subscription("routes", &namespace, &listing, false),
    )
    .await
    .expect("create");
    let active = phase_of(&subs, "routes", Phase::Active).await;
    let about = format!("{namespace}/routes");
    for to in [&billing, &admin] {
        env.expect_mail(to, "", &["Activated: Route Optimization"])
            .await;
    }
    let activated = env.first_mail(|m| m["to"][0] == billing.as_str()).await;
    assert!(
        activated["text"]
            .as_str()
            .is_some_and(|t| t.contains("Dispatch → Routes") && t.contains("12.00")),
        "quickstart and price: {activated}"
    );
    assert!(
        activated["html"]
            .as_str()
            .is_some_and(|h| h.contains("<p>"))
    );
    assert!(
        activated["messageId"]
            .as_str()
            .is_some_and(|id| id.starts_with("<ntf-") && id.ends_with("@marketplace.dev>")),
        "{activated}"
    );

    // Idle: the feature was last checked two days ago (as the API records it).
    let entitlements: Api<Entitlement> = Api::namespaced(env.client.clone(), &namespace);
    let checked = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    entitlements
        .patch_status(
            "routes-route-optimization",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"usage": {"lastCheckedAt": checked.to_string(), "checks": 3}}}),
            ),
        )
        .await
        .expect("usage");
    for to in [&billing, &admin] {
        env.expect_mail(
            to,
            "",
            &[
                "Activated: Route Optimization",
                "Getting the most out of Route Optimization",
            ],
        )
        .await;
    }

    // Payment failure, found by the audit.
    let company: u64 = active
        .status
        .and_then(|s| s.hubspot)
        .and_then(|h| h.company_id)
        .and_then(|c| c.parse().ok())
        .expect("company");
    sim.admin().set_company_payments_failing(company, true);
    sim.admin().advance_clock(32 * 24 * 3600 * 1000);
    billing_audit::audit_once(
        ctx,
        hubspot,
        &mut marketplace_operator::billing::OrphanSweeper::new(Duration::from_secs(3600)),
    )
    .await;
    phase_of(&subs, "routes", Phase::Suspended).await;
    sim.admin().set_company_payments_failing(company, false);
    env.expect_mail(
        OPS,
        &about,
        &["Payment failed: Route Optimization for Acme Logistics"],
    )
    .await;
    for to in [&billing, &admin] {
        env.expect_mail(
            to,
            "",
            &[
                "Activated: Route Optimization",
                "Getting the most out of Route Optimization",
                "Payment problem: Route Optimization is paused",
            ],
        )
        .await;
    }
    let slack = eventually("the Slack alert", CONVERGED, || async {
        let received = env.received().await;
        let texts: Vec<String> = received["hooks"]
            .as_array()?
            .iter()
            .filter(|h| h["path"] == "/slack")
            .filter_map(|h| h["payload"]["text"].as_str().map(str::to_string))
            .filter(|t| t.contains(&about))
            .collect();
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert!(
        slack[0].starts_with("*Payment failed: Route Optimization"),
        "{slack:?}"
    );
    let alerts = env.hooks("/alerts", &about).await;
    assert_eq!(
        alerts.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["marketplace.PaymentFailed"]
    );

    // Cancellation.
    subs.patch(
        "routes",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"cancellation": {"effective": "Immediately", "reason": "switching"}}}),
        ),
    )
    .await
    .expect("cancel");
    phase_of(&subs, "routes", Phase::Cancelled).await;
    let history: Vec<Phase> = subs
        .get("routes")
        .await
        .expect("routes")
        .status
        .expect("status")
        .history
        .iter()
        .map(|t| t.to)
        .collect();
    let mut want = vec![
        "Activated: Route Optimization",
        "Getting the most out of Route Optimization",
        "Payment problem: Route Optimization is paused",
        "Cancelled: Route Optimization",
    ];
    if history.contains(&Phase::CancelRequested) {
        want.push("Cancellation received: Route Optimization");
    }
    for to in [&billing, &admin] {
        env.expect_mail(to, "", &want).await;
    }
}

/// An approval listing: the tenant hears "Submitted for review", "Invoice ready", a reminder
/// when the invoice is overdue, then "Activated"; superadmins hear of the request and the
/// overdue invoice; the task webhook (500 three times, then 200) gets the request once; the
/// channel that is down dead-letters, and is sent again when a superadmin asks.
async fn approval_walk(env: &Env) {
    let listing = env
        .listing(
            "support",
            json!({"activation": "Approval", "displayName": "Dedicated Support"}),
        )
        .await;
    let (_, namespace, billing, admin) = env.tenant("walker", json!({})).await;
    let subs: Api<TenantSubscription> = Api::namespaced(env.client.clone(), &namespace);
    subs.create(
        &PostParams::default(),
        &subscription("support", &namespace, &listing, false),
    )
    .await
    .expect("create");
    phase_of(&subs, "support", Phase::Requested).await;
    let about = format!("{namespace}/support");
    env.expect_mail(
        OPS,
        &about,
        &["New request: Dedicated Support for Acme Logistics"],
    )
    .await;
    let tasks = eventually("the task webhook to accept", CONVERGED, || async {
        let hooks = env.hooks("/flaky", &about).await;
        (!hooks.is_empty()).then_some(hooks)
    })
    .await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].0, "marketplace.NewRequest");
    let attempts = env.received().await["attempts"][&tasks[0].1].as_u64();
    assert_eq!(attempts, Some(4), "three 500s, then accepted");

    env.act(
        &namespace,
        "support",
        "Invoice",
        json!({"invoice": {"amount": "1200.00", "currency": "USD"}}),
    )
    .await;
    phase_of(&subs, "support", Phase::Invoiced).await;
    // Overdue after 3 s (shortened), reminded once (the next reminder is an hour away).
    env.expect_mail(
        OPS,
        &about,
        &[
            "Invoice overdue: Dedicated Support for Acme Logistics",
            "New request: Dedicated Support for Acme Logistics",
        ],
    )
    .await;
    env.act(&namespace, "support", "MarkPaid", json!({})).await;
    phase_of(&subs, "support", Phase::Paid).await;
    env.act(&namespace, "support", "Approve", json!({})).await;
    phase_of(&subs, "support", Phase::Active).await;
    for to in [&billing, &admin] {
        env.expect_mail(
            to,
            "",
            &[
                "Submitted for review: Dedicated Support",
                "Invoice ready: Dedicated Support",
                "Reminder: your invoice for Dedicated Support is unpaid",
                "Activated: Dedicated Support",
            ],
        )
        .await;
    }
    // No tenant copy says how the marketplace works inside.
    for m in env.received().await["mail"].as_array().expect("mail") {
        if m["to"][0] == billing.as_str() {
            let words = format!("{} {} {}", m["subject"], m["text"], m["html"]).to_lowercase();
            for word in marketplace_operator::notify::templates::INTERNAL_WORDS {
                assert!(!words.contains(word), "{word:?} in {m}");
            }
        }
    }

    // The channel that is down: dead-lettered, visible, sent again on request.
    let records: Api<Notification> = Api::namespaced(env.client.clone(), &env.namespace);
    let dead = eventually(
        "the down channel's record to be dead-lettered",
        CONVERGED,
        || async {
            env.record("down", &about).await.filter(|r| {
                r.status.as_ref().and_then(|s| s.phase) == Some(DeliveryPhase::DeadLetter)
            })
        },
    )
    .await;
    let status = dead.status.clone().expect("status");
    assert_eq!(status.attempts, 5);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("webhook")),
        "{status:?}"
    );
    records
        .patch(
            &dead.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {RETRY_ANNOTATION: "1"}}})),
        )
        .await
        .expect("retry");
    eventually(
        "the retried record to be dead again after 5 more attempts",
        CONVERGED,
        || async {
            let r = records.get(&dead.name_any()).await.ok()?;
            let s = r.status?;
            (s.retried_for.as_deref() == Some("1")
                && s.phase == Some(DeliveryPhase::DeadLetter)
                && s.attempts == 5)
                .then_some(())
        },
    )
    .await;
}

/// A trial: Activated, and the trial-ending notice (due at once: the notice period is longer
/// than the trial); a tenant opted out of marketing still gets both.
async fn trial(env: &Env) {
    let listing = env
        .listing("eta", json!({"displayName": "ETA Predictions"}))
        .await;
    let (_, namespace, billing, admin) =
        env.tenant("trier", json!({"marketingOptOut": true})).await;
    let subs: Api<TenantSubscription> = Api::namespaced(env.client.clone(), &namespace);
    subs.create(
        &PostParams::default(),
        &subscription("eta", &namespace, &listing, true),
    )
    .await
    .expect("create");
    phase_of(&subs, "eta", Phase::Trialing).await;
    let ends = subs
        .get("eta")
        .await
        .expect("eta")
        .status
        .and_then(|s| s.trial_ends_at)
        .expect("trial end")
        .0
        .strftime("%Y-%m-%d")
        .to_string();
    for to in [&billing, &admin] {
        env.expect_mail(
            to,
            "",
            &[
                "Activated: ETA Predictions",
                &format!("Your ETA Predictions trial ends on {ends}"),
            ],
        )
        .await;
    }
    let per_subject: BTreeMap<String, usize> =
        env.mail_to(&billing, "")
            .await
            .into_iter()
            .fold(BTreeMap::new(), |mut m, s| {
                *m.entry(s).or_default() += 1;
                m
            });
    assert!(per_subject.values().all(|n| *n == 1), "{per_subject:?}");

    // Drift the audit found and the reconcile could not heal (the condition it writes then,
    // applied here under its own field manager): superadmins hear of it once.
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(40);
    subs.patch_status(
        "eta",
        &PatchParams::apply("e2e-drift").force(),
        &Patch::Apply(json!({
            "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
            "status": {"conditions": [{"type": "Synced", "status": "False", "reason": "DriftFound",
                "message": "the HubSpot subscription was cancelled or deleted outside the operator (audit); healing failed: HubSpot answered 503",
                "lastTransitionTime": since.to_string()}]},
        })),
    )
    .await
    .expect("the drift condition");
    let about = format!("{namespace}/eta");
    env.expect_mail(
        OPS,
        &about,
        &["Billing drift not healed: ETA Predictions for Acme Logistics"],
    )
    .await;
    let alert = env
        .first_mail(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Billing drift not healed"))
        })
        .await;
    assert!(
        alert["text"]
            .as_str()
            .is_some_and(|t| t.contains("HubSpot answered 503") && t.contains(&about)),
        "{alert}"
    );
    assert!(
        env.mail_to(&billing, "drift").await.is_empty(),
        "tenants never hear of it"
    );

    // The same alert over STARTTLS and implicit TLS, authenticated, trusting the channel's CA.
    for channel in ["ops-starttls", "ops-smtps"] {
        let status = eventually(&format!("{channel} to deliver"), CONVERGED, || async {
            env.record(channel, &about)
                .await?
                .status
                .filter(|s| s.phase.is_some_and(|p| p != DeliveryPhase::Pending))
        })
        .await;
        assert_eq!(
            status.phase,
            Some(DeliveryPhase::Sent),
            "{channel}: {status:?}"
        );
    }
    let subject = "Billing drift not healed: ETA Predictions for Acme Logistics";
    env.expect_mail(TLS_OPS, &about, &[subject, subject]).await;
    let received = env.received().await;
    let mut servers: Vec<&str> = received["mail"]
        .as_array()
        .expect("mail")
        .iter()
        .filter(|m| m["to"][0] == TLS_OPS)
        .map(|m| {
            assert_eq!(m["tls"], true, "over TLS: {m}");
            assert_eq!(m["authenticated"], true, "authenticated: {m}");
            m["server"].as_str().unwrap_or_default()
        })
        .collect();
    servers.sort();
    assert_eq!(servers, ["smtps", "starttls"]);
    // Without the CA the server's certificate is not trusted: nothing is sent.
    let untrusted = eventually("the untrusted channel to fail", CONVERGED, || async {
        env.record("ops-untrusted", &about)
            .await?
            .status?
            .last_error
    })
    .await;
    assert!(untrusted.contains("SMTP 127.0.0.1"), "{untrusted}");
    assert!(!untrusted.contains("s3cret"), "{untrusted}");
    assert!(env.mail_to(UNTRUSTED_OPS, "").await.is_empty());
}

/// Superadmin e-mail channels for drift alerts over the TLS servers: STARTTLS and implicit
/// TLS with credentials and the test CA from Secrets, and STARTTLS without the CA.
async fn tls_channels(env: &Env) {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(env.client.clone(), &env.namespace);
    for (name, data) in [
        (
            "smtp-login",
            json!({"username": "mailer", "password": "s3cret"}),
        ),
        ("smtp-ca", json!({"ca.crt": env.receivers.ca})),
    ] {
        apply(
            &secrets,
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": env.namespace}, "stringData": data}),
        )
        .await;
    }
    let smtp = |port: u16, security: &str, ca: bool| {
        let mut smtp = json!({"host": "127.0.0.1", "port": port, "security": security,
            "credentialsSecretRef": {"name": "smtp-login"},
            "from": "Marketplace <marketplace@saas.example>"});
        if ca {
            smtp["caSecretRef"] = json!({"name": "smtp-ca"});
        }
        smtp
    };
    for (name, to, smtp) in [
        (
            "ops-starttls",
            TLS_OPS,
            smtp(env.receivers.starttls, "StartTls", true),
        ),
        ("ops-smtps", TLS_OPS, smtp(env.receivers.smtps, "Tls", true)),
        (
            "ops-untrusted",
            UNTRUSTED_OPS,
            smtp(env.receivers.starttls, "StartTls", false),
        ),
    ] {
        env.channel(
            name,
            json!({"audience": "Superadmins", "events": ["DriftUnhealed"], "to": [to], "smtp": smtp}),
        )
        .await;
    }
}

/// Bad channels fail at apply, naming the field.
async fn refused_channels(env: &Env, smtp: &Value) {
    let channels: Api<marketplace_operator::api::NotificationChannel> =
        Api::namespaced(env.client.clone(), &env.namespace);
    for (spec, says) in [
        (
            json!({"audience": "Superadmins", "to": [OPS], "smtp": smtp,
                "slack": {"urlSecretRef": {"name": "s"}}}),
            "set exactly one of spec.smtp, spec.slack and spec.webhook",
        ),
        (
            json!({"audience": "Tenants", "slack": {"urlSecretRef": {"name": "s"}}}),
            "spec.audience",
        ),
        (json!({"audience": "Superadmins", "smtp": smtp}), "spec.to"),
        (
            json!({"audience": "Superadmins", "to": [OPS],
                "smtp": {"host": "h", "port": 25, "security": "None", "from": "a@b.example",
                    "caSecretRef": {"name": "smtp-ca"}}}),
            "spec.smtp.caSecretRef needs TLS",
        ),
        (
            json!({"audience": "Tasks", "webhook": {"url": "ftp://x", "signingSecretRef": {"name": "s"}}}),
            "spec.webhook.url",
        ),
    ] {
        let object = serde_json::from_value(json!({
            "apiVersion": "marketplace.dev/v1alpha1", "kind": "NotificationChannel",
            "metadata": {"name": unique_name("bad"), "namespace": env.namespace}, "spec": spec,
        }))
        .expect("a NotificationChannel");
        let error = channels
            .create(&PostParams::default(), &object)
            .await
            .expect_err("refused");
        assert!(error.to_string().contains(says), "{says}: {error}");
    }
}

/// Catalog news: a listing published for the first time and its major release reach every
/// tenant who may see it (not one who opted out of marketing, nor one an Internal listing is
/// hidden from), once, also after a restart; a minor release is not news, and listings that
/// existed before are never announced.
async fn announcements(
    env: &Env,
    smtp: &Value,
    ctx: Arc<marketplace_operator::controllers::Context>,
    running: controllers::RunningControllers,
) -> controllers::RunningControllers {
    env.channel(
        "tenant-news",
        json!({"audience": "Tenants", "events": ["NewListing", "MajorRelease"], "smtp": smtp}),
    )
    .await;
    let (_, _, reader, reader_admin) = env.tenant("reader", json!({})).await;
    let (_, _, quiet, _) = env.tenant("quiet", json!({"marketingOptOut": true})).await;
    let release = |version: &str, summary: &str| json!({"version": version, "date": "2026-11-30", "summary": summary});
    let listing = env
        .listing(
            "fleet",
            json!({"displayName": "Fleet Insights", "lifecycle": "ComingSoon",
                "releases": [release("1.0.0", "first")]}),
        )
        .await;
    let listings: Api<Listing> = Api::all(env.client.clone());
    let set = |releases: Value, lifecycle: &str| {
        let listings = listings.clone();
        let listing = listing.clone();
        let lifecycle = lifecycle.to_string();
        async move {
            listings
                .patch(
                    &listing,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"lifecycle": lifecycle, "releases": releases}})),
                )
                .await
                .expect("listing update");
        }
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        env.mail_to(&reader, "Fleet Insights").await.is_empty(),
        "coming soon is not news"
    );
    set(json!([release("1.0.0", "first")]), "Published").await;
    for to in [&reader, &reader_admin] {
        env.expect_mail(
            to,
            "Fleet Insights",
            &["New in the marketplace: Fleet Insights"],
        )
        .await;
    }
    set(
        json!([release("1.2.0", "faster"), release("1.0.0", "first")]),
        "Published",
    )
    .await;
    set(
        json!([
            release("2.0.0", "live maps"),
            release("1.2.0", "faster"),
            release("1.0.0", "first")
        ]),
        "Published",
    )
    .await;
    let both = [
        "Fleet Insights 2.0.0 is out",
        "New in the marketplace: Fleet Insights",
    ];
    for to in [&reader, &reader_admin] {
        env.expect_mail(to, "Fleet Insights", &both).await;
    }
    let news = env
        .first_mail(|m| m["subject"] == "Fleet Insights 2.0.0 is out")
        .await;
    assert!(
        news["text"]
            .as_str()
            .is_some_and(|t| t.contains("live maps") && t.contains("2026-11-30")),
        "{news}"
    );
    assert!(
        env.mail_to(&quiet, "").await.is_empty(),
        "opted out of marketing"
    );
    // Earlier steps' listings were published before the news channel existed: never announced.
    assert!(env.mail_to(&reader, "Route Optimization").await.is_empty());

    // An internal listing is news only to internal tenants.
    env.listing(
        "internal",
        json!({"displayName": "Staff Tools", "visibility": "Internal"}),
    )
    .await;

    // A restart decides again from the ledger: nothing is repeated.
    running.stop().await;
    let running = controllers::start(
        ctx,
        Enabled {
            tenants: true,
            subscriptions: true,
            actions: true,
            notifications: true,
            ..Enabled::NONE
        },
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for to in [&reader, &reader_admin] {
        env.expect_mail(to, "Fleet Insights", &both).await;
    }
    assert!(env.mail_to(&reader, "Staff Tools").await.is_empty());
    running
}

//! The CatalogSource reconciler against a real apiserver and real git repositories made by the
//! tests (served over file://). Each test runs its own controller, scoped to its own namespace.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use marketplace_e2e::controllers;
use marketplace_e2e::git_repo::Repo;
use marketplace_e2e::{control_plane, eventually, example, unique_name};
use marketplace_operator::api::catalog_source::{CatalogSource, CatalogSourceStatus};
use marketplace_operator::api::conditions::reasons::{LINT_FAILED, PRUNE_REFUSED, SUSPENDED};
use marketplace_operator::api::conditions::types::{READY, STALLED};
use marketplace_operator::api::conditions::{FALSE, TRUE, find_condition};
use marketplace_operator::api::{Listing, TenantSubscription, WizardConfig};
use marketplace_operator::catalog::git::GitCache;
use marketplace_operator::controllers::{ControllerConfig, Enabled};
use serde_json::{Value, json};

/// A listing from the examples, renamed for this test; its wizard reference, if any, renamed too.
fn listing(file: &str, name: &str) -> Value {
    let mut object = example(file);
    object["metadata"] = json!({ "name": name });
    object
}

/// A test's world: a namespace, a controller serving it, a repository and names of its own.
struct World {
    client: Client,
    namespace: String,
    prefix: String,
    repo: Repo,
    cache: GitCache,
    running: Option<controllers::RunningControllers>,
}

impl World {
    async fn new(test: &str) -> Self {
        let control_plane = control_plane().await;
        let client = control_plane.client().await.expect("client");
        let namespace = control_plane
            .create_namespace(test)
            .await
            .expect("namespace");
        let config = ControllerConfig {
            namespace: namespace.clone(),
            git_timeout: Duration::from_secs(30),
            git_cache_dir: std::env::temp_dir().join(format!("catalog-cache-{namespace}")),
            catalog_concurrency: 2,
            tenant_concurrency: 2,
            ..ControllerConfig::default()
        };
        let cache = GitCache::new(config.git_cache_dir.clone());
        let ctx = Arc::new(controllers::context(
            &client,
            config,
            &format!("e2e-{test}"),
        ));
        let running = controllers::start(
            ctx,
            Enabled {
                catalog_sources: true,
                ..Enabled::NONE
            },
        );
        Self {
            client,
            namespace,
            prefix: unique_name(test),
            repo: Repo::new(),
            cache,
            running: Some(running),
        }
    }

    fn name(&self, base: &str) -> String {
        format!("{}-{base}", self.prefix)
    }

    /// Writes the standard three-object catalog (an in-app listing, an integration and its wizard).
    fn write_catalog(&self) {
        self.repo.write(
            &format!("catalog/listings/{}.yaml", self.name("route")),
            &listing("listing-route-optimization.yaml", &self.name("route")),
        );
        self.repo.write(
            &format!("catalog/listings/{}.yaml", self.name("gigsafe")),
            &listing("listing-gigsafe.yaml", &self.name("gigsafe")),
        );
        let mut quickbooks = listing("listing-quickbooks.yaml", &self.name("quickbooks"));
        quickbooks["spec"]["integration"]["wizardConfigRef"] = json!(self.name("quickbooks"));
        self.repo.write(
            &format!("catalog/listings/{}.yaml", self.name("quickbooks")),
            &quickbooks,
        );
        let mut wizard = example("wizardconfig-quickbooks.yaml");
        wizard["metadata"] = json!({ "name": self.name("quickbooks") });
        self.repo.write(
            &format!("catalog/wizards/{}.yaml", self.name("quickbooks")),
            &wizard,
        );
        self.repo
            .write_raw("README.md", "not part of the catalog\n");
    }

    async fn create_source(&self, git_ref: Value, prune: bool) -> String {
        let name = "catalog".to_owned();
        let source: CatalogSource = serde_json::from_value(json!({
            "apiVersion": "marketplace.dev/v1alpha1",
            "kind": "CatalogSource",
            "metadata": { "name": name, "namespace": self.namespace },
            "spec": { "url": self.repo.url(), "ref": git_ref, "path": "catalog", "interval": "1s", "prune": prune },
        }))
        .expect("a CatalogSource");
        self.sources()
            .create(&PostParams::default(), &source)
            .await
            .expect("created");
        name
    }

    fn sources(&self) -> Api<CatalogSource> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn patch_source(&self, spec: Value) {
        self.sources()
            .patch(
                "catalog",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .expect("patched");
    }

    async fn status(&self) -> CatalogSourceStatus {
        self.sources()
            .get("catalog")
            .await
            .expect("source")
            .status
            .unwrap_or_default()
    }

    /// Waits until the source's status satisfies `done` (up to 60 s), returning it.
    async fn status_until(
        &self,
        what: &str,
        done: impl Fn(&CatalogSourceStatus) -> bool,
    ) -> CatalogSourceStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; status: {status:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `main@sha1:<commit>` is applied.
    async fn applied(&self, commit: &str) -> CatalogSourceStatus {
        self.revision_applied(&format!("main@sha1:{commit}")).await
    }

    /// Waits until exactly `revision` (e.g. `v1.0.0@sha1:<commit>`) is applied.
    async fn revision_applied(&self, revision: &str) -> CatalogSourceStatus {
        self.status_until(&format!("{revision} applied"), |s| {
            s.last_applied_revision.as_deref() == Some(revision)
        })
        .await
    }

    /// Sets `spec.lifecycle` of one of this test's listings in the repository (not committed).
    fn set_lifecycle(&self, base: &str, example_file: &str, lifecycle: &str) {
        let mut object = listing(example_file, &self.name(base));
        object["spec"]["lifecycle"] = json!(lifecycle);
        self.repo.write(
            &format!("catalog/listings/{}.yaml", self.name(base)),
            &object,
        );
    }

    async fn listings(&self) -> Vec<Listing> {
        let all = Api::<Listing>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .expect("listings");
        all.items
            .into_iter()
            .filter(|l| l.name_any().starts_with(&self.prefix))
            .collect()
    }

    async fn listing(&self, base: &str) -> Option<Listing> {
        Api::<Listing>::all(self.client.clone())
            .get_opt(&self.name(base))
            .await
            .expect("get listing")
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

fn condition(status: &CatalogSourceStatus, type_: &str) -> (String, String, String) {
    let c = find_condition(&status.conditions, type_)
        .unwrap_or_else(|| panic!("no {type_} condition: {status:#?}"));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[tokio::test]
async fn first_sync_applies_the_catalog_and_records_an_inventory() {
    let world = World::new("first-sync").await;
    world.write_catalog();
    let head = world.repo.commit("catalog");
    world.create_source(json!({ "branch": "main" }), true).await;

    let status = world.applied(&head).await;
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(format!("main@sha1:{head}").as_str())
    );
    assert_eq!(condition(&status, READY).0, TRUE);
    assert_eq!(status.inventory.len(), 4, "{:?}", status.inventory);
    let counts = status.counts.expect("counts");
    assert_eq!((counts.listings, counts.wizard_configs), (3, 1));
    let listings = world.listings().await;
    assert_eq!(listings.len(), 3);
    for listing in &listings {
        let annotation = listing
            .annotations()
            .get("marketplace.dev/catalog-source")
            .map(String::as_str);
        assert_eq!(
            annotation,
            Some(format!("{}/catalog", world.namespace).as_str())
        );
    }
    let wizard = Api::<WizardConfig>::all(world.client.clone())
        .get(&world.name("quickbooks"))
        .await
        .expect("wizard applied");
    assert_eq!(wizard.spec.title, "Connect QuickBooks Online");
    world.stop().await;
}

#[tokio::test]
async fn an_update_is_applied_and_an_unchanged_revision_writes_nothing() {
    let world = World::new("update").await;
    world.write_catalog();
    let first = world.repo.commit("catalog");
    world.create_source(json!({ "branch": "main" }), true).await;
    world.applied(&first).await;

    // No writes while nothing changes: resource versions stay put over several intervals.
    let versions = |listings: Vec<Listing>| {
        listings
            .into_iter()
            .map(|l| (l.name_any(), l.resource_version()))
            .collect::<Vec<_>>()
    };
    let before = versions(world.listings().await);
    let source_before = world
        .sources()
        .get("catalog")
        .await
        .expect("source")
        .resource_version();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        versions(world.listings().await),
        before,
        "an unchanged revision rewrote listings"
    );
    assert_eq!(
        world
            .sources()
            .get("catalog")
            .await
            .expect("source")
            .resource_version(),
        source_before,
        "status rewritten"
    );

    let mut route = listing("listing-route-optimization.yaml", &world.name("route"));
    route["spec"]["tagline"] = json!("Faster routes, now with live traffic for every plan.");
    world.repo.write(
        &format!("catalog/listings/{}.yaml", world.name("route")),
        &route,
    );
    let second = world.repo.commit("new tagline");
    world.applied(&second).await;
    let updated = world.listing("route").await.expect("listing");
    assert_eq!(
        updated.spec.tagline,
        "Faster routes, now with live traffic for every plan."
    );
    let untouched = world.listing("gigsafe").await.expect("listing");
    assert_eq!(
        Some(untouched.resource_version()),
        before
            .iter()
            .find(|(n, _)| *n == world.name("gigsafe"))
            .map(|(_, v)| v.clone()),
        "an unchanged listing was rewritten"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_bad_revision_applies_nothing_and_keeps_the_last_good_one() {
    let world = World::new("bad-revision").await;
    world.write_catalog();
    let good = world.repo.commit("catalog");
    world.create_source(json!({ "branch": "main" }), true).await;
    world.applied(&good).await;

    // One valid change and one invalid file in the same revision: neither may be applied.
    let mut route = listing("listing-route-optimization.yaml", &world.name("route"));
    route["spec"]["tagline"] = json!("This change must not land, because another file is broken.");
    world.repo.write(
        &format!("catalog/listings/{}.yaml", world.name("route")),
        &route,
    );
    let mut broken = listing("listing-gigsafe.yaml", &world.name("gigsafe"));
    broken["spec"]["tagline"] = json!("x".repeat(120));
    world.repo.write(
        &format!("catalog/listings/{}.yaml", world.name("gigsafe")),
        &broken,
    );
    let bad = world.repo.commit("broken");

    let status = world
        .status_until("the bad revision to be attempted", |s| {
            s.last_attempted_revision
                .as_deref()
                .is_some_and(|r| r.ends_with(&bad))
        })
        .await;
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(format!("main@sha1:{good}").as_str())
    );
    let (stalled, reason, message) = condition(&status, STALLED);
    assert_eq!((stalled.as_str(), reason.as_str()), (TRUE, LINT_FAILED));
    assert!(
        message.contains("tagline"),
        "the message quotes the lint error: {message}"
    );
    assert_eq!(condition(&status, READY).0, FALSE);
    let route = world.listing("route").await.expect("listing");
    assert_ne!(
        route.spec.tagline,
        "This change must not land, because another file is broken."
    );

    // Fixing the file applies the fixed revision.
    world.repo.write(
        &format!("catalog/listings/{}.yaml", world.name("gigsafe")),
        &listing("listing-gigsafe.yaml", &world.name("gigsafe")),
    );
    let fixed = world.repo.commit("fixed");
    let status = world.applied(&fixed).await;
    assert_eq!(condition(&status, STALLED).0, FALSE);
    world.stop().await;
}

#[tokio::test]
async fn prune_deletes_what_left_the_catalog_but_never_a_subscribed_listing() {
    let world = World::new("prune").await;
    world.write_catalog();
    let first = world.repo.commit("catalog");
    world.create_source(json!({ "branch": "main" }), true).await;
    world.applied(&first).await;

    // A tenant subscribes to the route listing.
    let tenant_ns = control_plane()
        .await
        .create_namespace("tenant-prune")
        .await
        .expect("namespace");
    let mut subscription = example("subscription-route-optimization.yaml");
    subscription["metadata"] = json!({ "name": "route", "namespace": tenant_ns });
    subscription["spec"]["listing"] = json!(world.name("route"));
    let subscription: TenantSubscription =
        serde_json::from_value(subscription).expect("subscription");
    Api::<TenantSubscription>::namespaced(world.client.clone(), &tenant_ns)
        .create(&PostParams::default(), &subscription)
        .await
        .expect("subscribed");

    // Deleting a Published listing outright is refused: it must be Archived first.
    world
        .repo
        .remove(&format!("catalog/listings/{}.yaml", world.name("gigsafe")));
    let refused = world.repo.commit("delete a published listing");
    let refused_revision = format!("main@sha1:{refused}");
    let status = world
        .status_until("the deletion to be refused", |s| {
            s.last_attempted_revision.as_deref() == Some(refused_revision.as_str())
        })
        .await;
    let (_, reason, message) = condition(&status, STALLED);
    assert_eq!(reason, LINT_FAILED);
    assert!(message.contains("published-deleted"), "{message}");
    assert!(
        world.listing("gigsafe").await.is_some(),
        "a refused revision prunes nothing"
    );

    // The supported way: archive in one change, delete in the next.
    world.set_lifecycle("gigsafe", "listing-gigsafe.yaml", "Archived");
    world.set_lifecycle("route", "listing-route-optimization.yaml", "Archived");
    let archived = world.repo.commit("archive two listings");
    world.applied(&archived).await;
    world
        .repo
        .remove(&format!("catalog/listings/{}.yaml", world.name("route")));
    world
        .repo
        .remove(&format!("catalog/listings/{}.yaml", world.name("gigsafe")));
    let second = world.repo.commit("remove two listings");
    let status = world.applied(&second).await;

    assert!(
        world.listing("gigsafe").await.is_none(),
        "an unsubscribed listing is pruned"
    );
    assert!(
        world.listing("route").await.is_some(),
        "a subscribed listing is kept"
    );
    let (ready, reason, message) = condition(&status, READY);
    assert_eq!((ready.as_str(), reason.as_str()), (FALSE, PRUNE_REFUSED));
    assert!(
        message.contains(&world.name("route")) && message.contains("1 live subscription"),
        "{message}"
    );
    assert!(
        status
            .inventory
            .iter()
            .any(|e| e.name == world.name("route")),
        "still tracked, so it is pruned once free"
    );
    world.stop().await;
}

#[tokio::test]
async fn suspend_stops_syncing() {
    let world = World::new("suspend").await;
    world.write_catalog();
    let first = world.repo.commit("catalog");
    world.create_source(json!({ "branch": "main" }), true).await;
    world.applied(&first).await;

    world.patch_source(json!({ "suspend": true })).await;
    world
        .status_until("Suspended", |s| {
            find_condition(&s.conditions, READY).is_some_and(|c| c.reason == SUSPENDED)
        })
        .await;
    world.set_lifecycle("gigsafe", "listing-gigsafe.yaml", "Archived");
    let second = world.repo.commit("while suspended");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lifecycle = |l: Listing| serde_json::to_value(l.spec.lifecycle).expect("serializes");
    let gigsafe = world.listing("gigsafe").await.expect("listing");
    assert_eq!(
        lifecycle(gigsafe),
        json!("Published"),
        "nothing is applied while suspended"
    );
    let attempted = world
        .status()
        .await
        .last_attempted_revision
        .unwrap_or_default();
    assert!(
        !attempted.ends_with(&second),
        "nothing is fetched while suspended"
    );

    world.patch_source(json!({ "suspend": false })).await;
    world.applied(&second).await;
    let gigsafe = world.listing("gigsafe").await.expect("listing");
    assert_eq!(lifecycle(gigsafe), json!("Archived"));
    world.stop().await;
}

#[tokio::test]
async fn tags_and_commits_pin_the_revision() {
    let world = World::new("pinning").await;
    world.write_catalog();
    let tagged = world.repo.commit("v1");
    world
        .repo
        .git(&["tag", "-a", "v1.0.0", "-m", "first release"]);
    let second_tagline = "Second revision of the route optimization tagline.";
    let mut route = listing("listing-route-optimization.yaml", &world.name("route"));
    route["spec"]["tagline"] = json!(second_tagline);
    world.repo.write(
        &format!("catalog/listings/{}.yaml", world.name("route")),
        &route,
    );
    let later = world.repo.commit("after the tag");

    // An annotated tag pins the revision although the branch moved on.
    world.create_source(json!({ "tag": "v1.0.0" }), true).await;
    world
        .revision_applied(&format!("v1.0.0@sha1:{tagged}"))
        .await;
    let tagline = world.listing("route").await.expect("listing").spec.tagline;
    assert_ne!(tagline, second_tagline);

    // A commit pin.
    world
        .patch_source(json!({ "ref": { "tag": null, "commit": later } }))
        .await;
    world.revision_applied(&format!("sha1:{later}")).await;
    let tagline = world.listing("route").await.expect("listing").spec.tagline;
    assert_eq!(tagline, second_tagline);

    // Back to following the branch.
    world
        .patch_source(json!({ "ref": { "commit": null, "branch": "main" } }))
        .await;
    world.applied(&later).await;
    world.stop().await;
}

#[tokio::test]
async fn deleting_a_source_removes_its_git_cache() {
    let world = World::new("delete").await;
    world.write_catalog();
    let head = world.repo.commit("catalog");
    world
        .create_source(json!({ "branch": "main" }), false)
        .await;
    world.applied(&head).await;
    // A second source that never fetched: its cleanup needs nothing from its spec.
    let broken: CatalogSource = serde_json::from_value(json!({
        "apiVersion": "marketplace.dev/v1alpha1",
        "kind": "CatalogSource",
        "metadata": { "name": "broken", "namespace": world.namespace },
        "spec": { "url": "file:///nonexistent/catalog.git", "ref": { "branch": "main" }, "interval": "1s" },
    }))
    .expect("a CatalogSource");
    world
        .sources()
        .create(&PostParams::default(), &broken)
        .await
        .expect("created");

    let sources = world.sources();
    let cache = world
        .cache
        .repo_dir(&format!("{}/catalog", world.namespace));
    assert!(cache.is_dir(), "{} is the source's cache", cache.display());
    for name in ["catalog", "broken"] {
        eventually(
            &format!("{name} to carry the finalizer"),
            Duration::from_secs(30),
            || async {
                let source = sources.get_opt(name).await.ok().flatten()?;
                source
                    .finalizers()
                    .iter()
                    .any(|f| f == marketplace_operator::controllers::catalog_source::FINALIZER)
                    .then_some(())
            },
        )
        .await;
        sources
            .delete(name, &DeleteParams::default())
            .await
            .expect("deleted");
    }
    for name in ["catalog", "broken"] {
        eventually(
            &format!("{name} to be gone"),
            Duration::from_secs(30),
            || async { sources.get_opt(name).await.ok()?.is_none().then_some(()) },
        )
        .await;
    }
    assert!(!cache.exists(), "{} was not removed", cache.display());
    world.stop().await;
}

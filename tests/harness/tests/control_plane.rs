//! The harness against the real binaries: one shared control plane for the whole file, one
//! namespace and one client per test.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::{Api, Client};
use marketplace_harness::oidc::Es256Key;
use marketplace_harness::{ControlPlane, OIDC_PREFIX, TEST_NAMESPACE_LABEL, review_token, shared};

/// Polls `check` every 250 ms until it returns true; panics after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("key".to_owned(), "value".to_owned())])),
        ..ConfigMap::default()
    }
}

fn is_forbidden(result: &Result<kube::core::ObjectList<ConfigMap>, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.is_forbidden())
}

#[tokio::test]
async fn starts_reports_its_version_and_works_with_kubectl() {
    let control_plane = shared();
    eprintln!(
        "control plane start-up took {:?}",
        control_plane.startup_time()
    );

    let client = control_plane.client().await.unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.36.3");

    let output = control_plane
        .kubectl()
        .args(["get", "namespace", "default", "--output=name"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "namespace/default"
    );

    // Self-contained: the kubeconfig embeds its certificates instead of pointing at files.
    let kubeconfig = std::fs::read_to_string(control_plane.kubeconfig_path()).unwrap();
    assert!(kubeconfig.contains("certificate-authority-data:"));
    assert!(kubeconfig.contains("client-key-data:"));
    assert!(control_plane.server_url().starts_with("https://127.0.0.1:"));
}

#[tokio::test]
async fn create_namespace_gives_unique_labelled_namespaces() {
    let control_plane = shared();
    let client = control_plane.client().await.unwrap();
    let first = control_plane
        .create_namespace("Unique_Names")
        .await
        .unwrap();
    let second = control_plane
        .create_namespace("Unique_Names")
        .await
        .unwrap();
    assert_ne!(first, second);
    assert!(first.starts_with("unique-names-"), "{first}");
    let namespace = Api::<Namespace>::all(client).get(&first).await.unwrap();
    let labels = namespace.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get(TEST_NAMESPACE_LABEL).map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
async fn deleted_namespace_disappears_with_its_contents() {
    let control_plane = shared();
    let client = control_plane.client().await.unwrap();
    let namespace = control_plane.create_namespace("ns-deletion").await.unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &config_map("content"))
        .await
        .unwrap();

    let namespaces: Api<Namespace> = Api::all(client);
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .unwrap();
    // Only KCM's namespace controller empties a Terminating namespace and removes it.
    eventually(
        "the namespace to be deleted",
        Duration::from_secs(120),
        || async { matches!(namespaces.get_opt(&namespace).await, Ok(None)) },
    )
    .await;
}

#[tokio::test]
async fn owned_config_map_is_garbage_collected() {
    let control_plane = shared();
    let client = control_plane.client().await.unwrap();
    let namespace = control_plane.create_namespace("gc").await.unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &namespace);

    let owner = config_maps
        .create(&PostParams::default(), &config_map("owner"))
        .await
        .unwrap();
    let mut dependent = config_map("dependent");
    dependent.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".to_owned(),
        kind: "ConfigMap".to_owned(),
        name: "owner".to_owned(),
        uid: owner.metadata.uid.clone().unwrap(),
        ..OwnerReference::default()
    }]);
    config_maps
        .create(&PostParams::default(), &dependent)
        .await
        .unwrap();

    config_maps
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    // The garbage collector works from its informers and can lag on a busy machine.
    eventually(
        "the dependent to be collected",
        Duration::from_secs(120),
        || async { matches!(config_maps.get_opt("dependent").await, Ok(None)) },
    )
    .await;
}

/// Forbidden first, allowed once the Role and RoleBinding exist (RBAC is served from an
/// informer, so "allowed" is awaited).
async fn assert_rbac_grant(
    control_plane: &ControlPlane,
    namespace: &str,
    as_subject: Client,
    subject: Subject,
) {
    let admin = control_plane.client().await.unwrap();
    let subject_config_maps: Api<ConfigMap> = Api::namespaced(as_subject, namespace);
    let listed = subject_config_maps.list(&ListParams::default()).await;
    assert!(
        is_forbidden(&listed),
        "expected Forbidden before the grant, got {listed:?}"
    );

    let role_name = format!("read-config-maps-{}", subject.name.replace(':', "-"));
    let role = Role {
        metadata: ObjectMeta {
            name: Some(role_name.clone()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".to_owned()]),
            verbs: vec!["get".to_owned(), "list".to_owned(), "watch".to_owned()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(role_name.clone()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: role_name,
        },
        subjects: Some(vec![subject]),
    };
    Api::<RoleBinding>::namespaced(admin, namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    eventually(
        "the grant to take effect",
        Duration::from_secs(60),
        || async {
            subject_config_maps
                .list(&ListParams::default())
                .await
                .is_ok()
        },
    )
    .await;
    // The grant is for configmaps only.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(subject_config_maps.into_client(), namespace);
    let secret_list = secrets.list(&ListParams::default()).await;
    assert!(
        matches!(&secret_list, Err(kube::Error::Api(status)) if status.is_forbidden()),
        "secrets must stay forbidden, got {secret_list:?}"
    );
}

#[tokio::test]
async fn rbac_applies_to_an_impersonated_user() {
    let control_plane = shared();
    let namespace = control_plane.create_namespace("rbac-user").await.unwrap();
    let user = "harness-test-user";
    let as_user = control_plane
        .client_as_user(user, &["harness-testers"])
        .await
        .unwrap();
    let subject = Subject {
        api_group: Some("rbac.authorization.k8s.io".to_owned()),
        kind: "User".to_owned(),
        name: user.to_owned(),
        namespace: None,
    };
    assert_rbac_grant(control_plane, &namespace, as_user, subject).await;
}

#[tokio::test]
async fn rbac_applies_to_an_impersonated_service_account() {
    let control_plane = shared();
    let admin = control_plane.client().await.unwrap();
    let namespace = control_plane.create_namespace("rbac-sa").await.unwrap();
    let service_account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("worker".to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    Api::<ServiceAccount>::namespaced(admin, &namespace)
        .create(&PostParams::default(), &service_account)
        .await
        .unwrap();
    let as_sa = control_plane
        .client_as_service_account(&namespace, "worker")
        .await
        .unwrap();
    let subject = Subject {
        api_group: None,
        kind: "ServiceAccount".to_owned(),
        name: "worker".to_owned(),
        namespace: Some(namespace.clone()),
    };
    assert_rbac_grant(control_plane, &namespace, as_sa, subject).await;
}

#[tokio::test]
async fn the_apiserver_authenticates_the_local_oidc_issuers_tokens() {
    let control_plane = shared();
    let admin = control_plane.client().await.unwrap();
    let issuer = control_plane.oidc_issuer();
    let hour = Duration::from_secs(3600);
    let token = issuer
        .mint("ann@acme.example", &["acme:staff"], hour)
        .unwrap();
    let user = review_token(&admin, &token)
        .await
        .unwrap()
        .expect("the issuer's token is authenticated");
    assert_eq!(
        user.username.as_deref(),
        Some(format!("{OIDC_PREFIX}ann@acme.example").as_str())
    );
    let groups = user.groups.unwrap_or_default();
    assert!(
        groups.contains(&format!("{OIDC_PREFIX}acme:staff"))
            && groups.contains(&"system:authenticated".to_owned()),
        "{groups:?}"
    );

    // Refused: another key, expired, another audience, another issuer.
    let claims = issuer.id_token("ann@acme.example", &["acme:staff"], hour);
    let mut expired = claims.clone();
    expired.issued_at -= 2 * hour;
    expired.expires_at -= 2 * hour;
    let mut other_audience = claims.clone();
    other_audience.audience = "someone-else".to_owned();
    let mut other_issuer = claims.clone();
    other_issuer.issuer = "https://127.0.0.1:1".to_owned();
    for (what, token) in [
        ("another key", claims.sign(&Es256Key::generate().unwrap())),
        ("expired", issuer.sign(&expired)),
        ("another audience", issuer.sign(&other_audience)),
        ("another issuer", issuer.sign(&other_issuer)),
    ] {
        let user = review_token(&admin, &token.unwrap()).await.unwrap();
        assert!(user.is_none(), "{what}: authenticated as {user:?}");
    }

    // `oidc-token` mints the same from the control plane's folder (how scripts/dev gets them).
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oidc-token"))
        .arg("--dir")
        .arg(control_plane.dir())
        .args(["--user", "bob@acme.example", "--group", "acme:staff"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "oidc-token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let user = review_token(&admin, printed.trim()).await.unwrap();
    assert_eq!(
        user.and_then(|u| u.username),
        Some(format!("{OIDC_PREFIX}bob@acme.example"))
    );

    // As a client credential, with RBAC on the prefixed group.
    let namespace = control_plane.create_namespace("oidc").await.unwrap();
    let as_oidc_user = control_plane.client_with_token(&token).await.unwrap();
    let subject = Subject {
        api_group: Some("rbac.authorization.k8s.io".to_owned()),
        kind: "Group".to_owned(),
        name: format!("{OIDC_PREFIX}acme:staff"),
        namespace: None,
    };
    assert_rbac_grant(control_plane, &namespace, as_oidc_user, subject).await;
}

#[tokio::test]
async fn installed_crd_is_established_and_usable() {
    let control_plane = shared();
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.harness.marketplace.dev" },
        "spec": {
            "group": "harness.marketplace.dev",
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": { "type": "object", "properties": { "size": { "type": "integer" } } } }
                } }
            }]
        }
    }))
    .unwrap();
    // Twice: server-side apply is idempotent.
    control_plane
        .install_crds(std::slice::from_ref(&crd))
        .await
        .unwrap();
    control_plane.install_crds(&[crd]).await.unwrap();

    let namespace = control_plane.create_namespace("crd").await.unwrap();
    let gvk = GroupVersionKind::gvk("harness.marketplace.dev", "v1", "Widget");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(control_plane.client().await.unwrap(), &namespace, &resource);
    let mut widget = DynamicObject::new("small", &resource);
    widget.data = serde_json::json!({ "spec": { "size": 3 } });
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();

    // The real apiserver validates against the schema.
    widget.metadata.name = Some("invalid".to_owned());
    widget.data = serde_json::json!({ "spec": { "size": "three" } });
    let rejected = widgets.create(&PostParams::default(), &widget).await;
    assert!(
        matches!(&rejected, Err(kube::Error::Api(status)) if status.is_invalid()),
        "expected Invalid, got {rejected:?}"
    );
}

//! The generated CRDs on a real kube-apiserver: they install cleanly and document themselves.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionCondition,
};
use kube::api::Api;
use marketplace_e2e::{control_plane, kubectl, workspace_root};

/// `kubectl apply --server-side` of the committed `crds/` folder succeeds with no warning
/// (the apiserver warns on unknown formats and on schemas it only half understands).
#[tokio::test]
async fn crd_files_install_without_warnings() {
    let control_plane = control_plane().await;
    let crds = workspace_root().join("crds");
    let output = kubectl(
        control_plane,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crds.to_str().expect("utf-8 path"),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl apply failed: {stderr}");
    assert!(
        !stderr.to_lowercase().contains("warning"),
        "the apiserver warned: {stderr}"
    );

    let api: Api<CustomResourceDefinition> =
        Api::all(control_plane.client().await.expect("client"));
    for crd in marketplace_operator::api::crds() {
        let name = crd.metadata.name.expect("CRD has a name");
        let installed = api.get(&name).await.expect("CRD is installed");
        let conditions = installed
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default();
        for (type_, wanted) in [("Established", "True"), ("NamesAccepted", "True")] {
            let status = conditions
                .iter()
                .find(|c| c.type_ == type_)
                .map(|c| c.status.as_str());
            assert_eq!(status, Some(wanted), "{name}: {type_}");
        }
        let complaints: Vec<_> = conditions.iter().filter(|c| is_complaint(c)).collect();
        assert!(complaints.is_empty(), "{name}: {complaints:?}");
    }
}

/// A condition by which the apiserver objects to a CRD: a schema it could not make structural
/// (`NonStructuralSchema=True`), or a protected group without an approved API review
/// (`KubernetesAPIApprovalPolicyConformant=False`).
fn is_complaint(condition: &CustomResourceDefinitionCondition) -> bool {
    match condition.type_.as_str() {
        "NonStructuralSchema" => condition.status == "True",
        "KubernetesAPIApprovalPolicyConformant" => condition.status == "False",
        _ => false,
    }
}

#[test]
fn each_complaint_is_recognised() {
    let condition = |type_: &str, status: &str| CustomResourceDefinitionCondition {
        type_: type_.into(),
        status: status.into(),
        ..CustomResourceDefinitionCondition::default()
    };
    assert!(is_complaint(&condition("NonStructuralSchema", "True")));
    assert!(!is_complaint(&condition("NonStructuralSchema", "False")));
    assert!(is_complaint(&condition(
        "KubernetesAPIApprovalPolicyConformant",
        "False"
    )));
    assert!(!is_complaint(&condition(
        "KubernetesAPIApprovalPolicyConformant",
        "True"
    )));
    assert!(!is_complaint(&condition("Established", "False")));
}

/// `kubectl explain` shows the descriptions written on the Rust fields.
#[tokio::test]
async fn kubectl_explain_prints_field_descriptions() {
    let control_plane = control_plane().await;
    let cases = [
        (
            "listing.spec.plans",
            &[
                "Plans a tenant can choose from",
                "pricing",
                "trialDays",
                "hubspotSku",
            ][..],
        ),
        (
            "listing.spec.plans.pricing.amount",
            &["non-negative decimal string"][..],
        ),
        ("tenantsubscription.spec.listing", &["Immutable"][..]),
        (
            "tenantsubscription.status.conditions",
            &["Ready", "observedGeneration", "lastTransitionTime"][..],
        ),
        (
            "catalogsource.spec.ref",
            &["exactly one of branch, tag or commit"][..],
        ),
        (
            "subscriptionaction.spec.action",
            &[
                "Invoice",
                "MarkPaid",
                "Approve",
                "Reject",
                "ConfirmCancel",
                "Rollback",
            ][..],
        ),
    ];
    for (field, expected) in cases {
        let output = explain_when_published(control_plane, field).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kubectl explain {field}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for text in expected {
            assert!(
                stdout.contains(text),
                "kubectl explain {field} lacks {text:?}:\n{stdout}"
            );
        }
    }
}

/// The apiserver publishes a new CRD's OpenAPI a few seconds after it is Established; explain
/// fails with "couldn't find resource" until then.
async fn explain_when_published(
    control_plane: &marketplace_harness::ControlPlane,
    field: &str,
) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let output = kubectl(control_plane, &["explain", field], None);
        let not_yet = String::from_utf8_lossy(&output.stderr).contains("couldn't find resource");
        if !not_yet || std::time::Instant::now() > deadline {
            return output;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

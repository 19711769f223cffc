//! Every CEL rule of the CRDs, seen from the real apiserver: a valid example broken in exactly
//! one way is rejected, and the message names the field and says why.

use kube::Resource;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use marketplace_e2e::{control_plane, dynamic_api, example, unique_name};
use marketplace_operator::api::{
    CatalogSource, Entitlement, Listing, SubscriptionAction, Tenant, TenantSubscription,
    WizardConfig,
};
use serde_json::{Value, json};

/// Creates `object` (an example with `name`, and `namespace` for namespaced kinds) and returns
/// the API to act on it.
async fn api_for<K: Resource<DynamicType = ()>>(
    namespaced: bool,
) -> (Api<DynamicObject>, Option<String>) {
    let control_plane = control_plane().await;
    let client = control_plane.client().await.expect("client");
    let namespace = if namespaced {
        Some(
            control_plane
                .create_namespace("validation")
                .await
                .expect("namespace"),
        )
    } else {
        None
    };
    (dynamic_api::<K>(client, namespace.as_deref()), namespace)
}

/// An example object renamed (and moved to `namespace`) so tests do not collide.
fn fresh(mut object: Value, namespace: Option<&str>) -> Value {
    let base = object["metadata"]["name"]
        .as_str()
        .expect("example has a name")
        .to_owned();
    object["metadata"]["name"] = json!(unique_name(&base));
    if let Some(ns) = namespace {
        object["metadata"]["namespace"] = json!(ns);
    }
    object
}

fn to_dynamic(object: &Value) -> DynamicObject {
    serde_json::from_value(object.clone()).expect("a Kubernetes object")
}

/// The apiserver's message for a rejected request; panics if the request succeeded.
fn rejection<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "expected 422 Invalid, got {status:?}");
            status.message
        }
        other => panic!("expected the apiserver to reject the object, got {other:?}"),
    }
}

fn assert_names(message: &str, field: &str, reason: &str) {
    assert!(
        message.contains(field),
        "message does not name {field:?}: {message}"
    );
    assert!(
        message.contains(reason),
        "message does not say {reason:?}: {message}"
    );
}

/// Creating `example` changed by `break_it` is rejected with a message naming `field` and `reason`.
async fn rejected_on_create<K: Resource<DynamicType = ()>>(
    namespaced: bool,
    file: &str,
    break_it: impl FnOnce(&mut Value),
    field: &str,
    reason: &str,
) {
    let (api, namespace) = api_for::<K>(namespaced).await;
    let mut object = fresh(example(file), namespace.as_deref());
    api.create(&PostParams::default(), &to_dynamic(&object))
        .await
        .unwrap_or_else(|e| panic!("the unbroken example {file} must be valid: {e}"));
    object["metadata"]["name"] = json!(unique_name("broken"));
    break_it(&mut object);
    let message = rejection(
        api.create(&PostParams::default(), &to_dynamic(&object))
            .await,
    );
    assert_names(&message, field, reason);
}

/// Updating a created `example` with `change` (a merge patch) is rejected, after `status` (if
/// any) was written through the status subresource.
async fn rejected_on_update<K: Resource<DynamicType = ()>>(
    namespaced: bool,
    file: &str,
    status: Option<Value>,
    change: Patch<Value>,
    field: &str,
    reason: &str,
) {
    let (api, namespace) = api_for::<K>(namespaced).await;
    let object = fresh(example(file), namespace.as_deref());
    let name = object["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    api.create(&PostParams::default(), &to_dynamic(&object))
        .await
        .expect("example is valid");
    if let Some(status) = status {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .expect("status written");
    }
    let message = rejection(api.patch(&name, &PatchParams::default(), &change).await);
    assert_names(&message, field, reason);
}

/// The value at `path` (object keys, or array indices written as numbers).
fn at<'a>(mut target: &'a mut Value, path: &[String]) -> &'a mut Value {
    for key in path {
        target = match key.parse::<usize>() {
            Ok(i) => &mut target[i],
            Err(_) => &mut target[key.as_str()],
        };
    }
    target
}

fn owned(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| (*s).to_owned()).collect()
}

fn set(path: &[&str], value: Value) -> impl FnOnce(&mut Value) {
    let path = owned(path);
    move |object| *at(object, &path) = value
}

fn remove(path: &[&str]) -> impl FnOnce(&mut Value) {
    let path = owned(path);
    move |object| {
        let (last, parent) = path.split_last().expect("a non-empty path");
        at(object, parent)
            .as_object_mut()
            .expect("an object")
            .remove(last);
    }
}

// ---- Listing -----------------------------------------------------------------------------

const ROUTE: &str = "listing-route-optimization.yaml";
const QUICKBOOKS: &str = "listing-quickbooks.yaml";
const GIGSAFE: &str = "listing-gigsafe.yaml";

#[tokio::test]
async fn listing_tagline_longer_than_90_characters() {
    let long = "x".repeat(91);
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(&["spec", "tagline"], json!(long)),
        "spec.tagline",
        "at most 90 characters",
    )
    .await;
}

#[tokio::test]
async fn partner_listing_without_partner() {
    rejected_on_create::<Listing>(
        false,
        GIGSAFE,
        remove(&["spec", "partner"]),
        "spec.partner",
        "Partner listing needs spec.partner",
    )
    .await;
}

#[tokio::test]
async fn partner_listing_with_plans() {
    let plans = example(ROUTE)["spec"]["plans"].clone();
    rejected_on_create::<Listing>(
        false,
        GIGSAFE,
        set(&["spec", "plans"], plans),
        "spec.partner",
        "must not have spec.plans",
    )
    .await;
}

#[tokio::test]
async fn partner_settings_on_an_in_app_listing() {
    let partner = example(GIGSAFE)["spec"]["partner"].clone();
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(&["spec", "partner"], partner),
        "spec.partner",
        "only allowed on listings of type Partner",
    )
    .await;
}

#[tokio::test]
async fn integration_listing_without_wizard() {
    rejected_on_create::<Listing>(
        false,
        QUICKBOOKS,
        remove(&["spec", "integration"]),
        "spec.integration",
        "needs spec.integration.wizardConfigRef",
    )
    .await;
}

#[tokio::test]
async fn integration_settings_on_an_in_app_listing() {
    let integration = example(QUICKBOOKS)["spec"]["integration"].clone();
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(&["spec", "integration"], integration),
        "spec.integration",
        "only allowed on listings of type Integration",
    )
    .await;
}

#[tokio::test]
async fn published_listing_without_plans() {
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        remove(&["spec", "plans"]),
        "spec.plans",
        "at least one plan",
    )
    .await;
}

#[tokio::test]
async fn listing_with_duplicate_plan_names() {
    let mut plans = example(ROUTE)["spec"]["plans"].clone();
    plans[1]["name"] = plans[0]["name"].clone();
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(&["spec", "plans"], plans),
        "spec.plans",
        "plan names must be unique",
    )
    .await;
}

#[tokio::test]
async fn icon_url_that_is_not_https() {
    let icon = json!({"kind": "Url", "value": "http://cdn.example.com/icon.svg"});
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(&["spec", "icon"], icon),
        "spec.icon.value",
        "must be an https:// URL",
    )
    .await;
}

#[tokio::test]
async fn screenshot_url_that_is_not_https() {
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(
            &["spec", "screenshots", "0", "url"],
            json!("http://cdn.example.com/a.png"),
        ),
        "spec.screenshots[0].url",
        "https://",
    )
    .await;
}

#[tokio::test]
async fn per_unit_price_without_unit() {
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        remove(&["spec", "plans", "0", "pricing", "unit"]),
        "spec.plans[0].pricing.unit",
        "must name its unit",
    )
    .await;
}

#[tokio::test]
async fn flat_price_with_unit() {
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(&["spec", "plans", "0", "pricing", "model"], json!("Flat")),
        "spec.plans[0].pricing.unit",
        "only allowed on PerUnit prices",
    )
    .await;
}

#[tokio::test]
async fn summed_meter_without_a_value_property() {
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(
            &["spec", "plans", "0", "metered"],
            json!({"meter": "api_call", "aggregation": "Sum", "unit": "call", "unitPrice": "0.01"}),
        ),
        "spec.plans[0].metered.valueProperty",
        "needs valueProperty",
    )
    .await;
}

#[tokio::test]
async fn metered_tiers_whose_last_tier_is_bounded() {
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(
            &["spec", "plans", "0", "metered"],
            json!({"meter": "api_call", "unit": "call", "includedQuantity": 100, "hardLimit": true,
                   "tiers": [{"upTo": 1000, "unitPrice": "0.01"}, {"upTo": 2000, "unitPrice": "0.005"}]}),
        ),
        "spec.plans[0].metered.tiers",
        "only the last tier",
    )
    .await;
}

#[tokio::test]
async fn partner_url_that_is_not_https() {
    rejected_on_create::<Listing>(
        false,
        GIGSAFE,
        set(
            &["spec", "partner", "url"],
            json!("http://gigsafe.example.com"),
        ),
        "spec.partner.url",
        "https://",
    )
    .await;
}

// ---- WizardConfig ------------------------------------------------------------------------

const WIZARD: &str = "wizardconfig-quickbooks.yaml";

#[tokio::test]
async fn secret_field_that_is_not_a_connection_setting() {
    rejected_on_create::<WizardConfig>(
        false,
        WIZARD,
        set(&["spec", "secretFields"], json!(["apiKey", "password"])),
        "spec.secretFields",
        "must name a property of connectionSchema",
    )
    .await;
}

#[tokio::test]
async fn connection_schema_requiring_an_unknown_setting() {
    rejected_on_create::<WizardConfig>(
        false,
        WIZARD,
        set(
            &["spec", "connectionSchema", "required"],
            json!(["realmId", "clientSecret"]),
        ),
        "spec.connectionSchema.required",
        "must name one of its properties",
    )
    .await;
}

#[tokio::test]
async fn test_connection_url_that_is_not_https() {
    rejected_on_create::<WizardConfig>(
        false,
        WIZARD,
        set(
            &["spec", "testConnection", "urlTemplate"],
            json!("http://quickbooks.example.com/{{realmId}}"),
        ),
        "spec.testConnection.urlTemplate",
        "must start with https://",
    )
    .await;
}

#[tokio::test]
async fn required_mapping_that_is_not_a_target() {
    rejected_on_create::<WizardConfig>(
        false,
        WIZARD,
        set(
            &["spec", "fieldMapping", "required"],
            json!(["customer_name", "tax_code"]),
        ),
        "spec.fieldMapping.required",
        "must name one of the targets",
    )
    .await;
}

// ---- Tenant ------------------------------------------------------------------------------

const TENANT: &str = "tenant-acme-logistics.yaml";

#[tokio::test]
async fn tenant_name_too_long_for_its_namespace() {
    let long = format!("t{}", "a".repeat(56));
    rejected_on_create::<Tenant>(
        false,
        TENANT,
        set(&["metadata", "name"], json!(long)),
        "metadata.name",
        "at most 56 characters",
    )
    .await;
}

#[tokio::test]
async fn service_account_subject_without_namespace() {
    rejected_on_create::<Tenant>(
        false,
        TENANT,
        remove(&["spec", "viewers", "1", "namespace"]),
        "spec.viewers[1].namespace",
        "needs a namespace",
    )
    .await;
}

#[tokio::test]
async fn user_subject_with_namespace() {
    rejected_on_create::<Tenant>(
        false,
        TENANT,
        set(
            &["spec", "billingAdmins", "0", "namespace"],
            json!("default"),
        ),
        "spec.billingAdmins[0].namespace",
        "only allowed on ServiceAccount subjects",
    )
    .await;
}

// ---- TenantSubscription ------------------------------------------------------------------

const SUBSCRIPTION: &str = "subscription-route-optimization.yaml";

#[tokio::test]
async fn subscription_listing_is_immutable() {
    rejected_on_update::<TenantSubscription>(
        true,
        SUBSCRIPTION,
        None,
        Patch::Merge(json!({"spec": {"listing": "premium-analytics"}})),
        "spec.listing",
        "listing is immutable",
    )
    .await;
}

#[tokio::test]
async fn subscription_trial_is_chosen_at_creation() {
    rejected_on_update::<TenantSubscription>(
        true,
        SUBSCRIPTION,
        None,
        Patch::Merge(json!({"spec": {"trial": false}})),
        "spec.trial",
        "cannot change",
    )
    .await;
}

#[tokio::test]
async fn cancellation_cannot_be_withdrawn_once_cancelled() {
    let (api, namespace) = api_for::<TenantSubscription>(true).await;
    let mut object = fresh(example(SUBSCRIPTION), namespace.as_deref());
    object["spec"]["cancellation"] = json!({"reason": "moving to another provider"});
    let name = object["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    api.create(&PostParams::default(), &to_dynamic(&object))
        .await
        .expect("valid");
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Cancelled"}})),
    )
    .await
    .expect("status written");
    let withdraw = Patch::Merge(json!({"spec": {"cancellation": null}}));
    let message = rejection(api.patch(&name, &PatchParams::default(), &withdraw).await);
    assert_names(&message, "spec.cancellation", "cannot be withdrawn");
}

#[tokio::test]
async fn cancelled_subscription_cannot_change_plan() {
    rejected_on_update::<TenantSubscription>(
        true,
        SUBSCRIPTION,
        Some(json!({"phase": "Cancelled"})),
        Patch::Merge(json!({"spec": {"plan": "fleet"}})),
        "spec.plan",
        "cannot change plan or quantity",
    )
    .await;
}

// ---- SubscriptionAction ------------------------------------------------------------------

const ACTION: &str = "subscriptionaction-premium-analytics-invoice.yaml";

#[tokio::test]
async fn subscription_action_is_immutable() {
    rejected_on_update::<SubscriptionAction>(
        true,
        ACTION,
        None,
        Patch::Merge(json!({"spec": {"reason": "edited afterwards"}})),
        "spec",
        "SubscriptionAction is immutable",
    )
    .await;
}

#[tokio::test]
async fn invoice_action_without_invoice() {
    rejected_on_create::<SubscriptionAction>(
        true,
        ACTION,
        remove(&["spec", "invoice"]),
        "spec.invoice",
        "needs spec.invoice",
    )
    .await;
}

#[tokio::test]
async fn invoice_on_an_approve_action() {
    rejected_on_create::<SubscriptionAction>(
        true,
        ACTION,
        set(&["spec", "action"], json!("Approve")),
        "spec.invoice",
        "only allowed on Invoice actions",
    )
    .await;
}

#[tokio::test]
async fn reject_action_without_reason() {
    rejected_on_create::<SubscriptionAction>(
        true,
        ACTION,
        |object: &mut Value| {
            object["spec"]["action"] = json!("Reject");
            let spec = object["spec"].as_object_mut().expect("spec");
            spec.remove("invoice");
            spec.remove("reason");
        },
        "spec.reason",
        "need a reason",
    )
    .await;
}

// ---- Entitlement -------------------------------------------------------------------------

#[tokio::test]
async fn entitlement_ending_before_it_starts() {
    rejected_on_create::<Entitlement>(
        true,
        "entitlement-route-optimization.yaml",
        set(&["spec", "endsAt"], json!("2026-10-01T00:00:00Z")),
        "spec.endsAt",
        "must be after startsAt",
    )
    .await;
}

// ---- CatalogSource -----------------------------------------------------------------------

const SOURCE: &str = "catalogsource-main.yaml";

#[tokio::test]
async fn catalog_source_with_unsupported_url() {
    rejected_on_create::<CatalogSource>(
        true,
        SOURCE,
        set(&["spec", "url"], json!("ftp://git.example.com/catalog.git")),
        "spec.url",
        "url must be an https://",
    )
    .await;
}

#[tokio::test]
async fn catalog_source_with_two_refs() {
    rejected_on_create::<CatalogSource>(
        true,
        SOURCE,
        set(&["spec", "ref", "tag"], json!("v1.0.0")),
        "spec.ref",
        "exactly one of branch, tag or commit",
    )
    .await;
}

#[tokio::test]
async fn catalog_source_path_escaping_the_repository() {
    rejected_on_create::<CatalogSource>(
        true,
        SOURCE,
        set(&["spec", "path"], json!("../secrets")),
        "spec.path",
        "must not contain '..'",
    )
    .await;
}

// ---- Names that references can use ---------------------------------------------------------

#[tokio::test]
async fn listing_name_that_is_not_a_dns_label() {
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(&["metadata", "name"], json!("route.optimization")),
        "metadata.name",
        "must be a DNS label",
    )
    .await;
}

#[tokio::test]
async fn release_date_that_does_not_exist() {
    rejected_on_create::<Listing>(
        false,
        ROUTE,
        set(&["spec", "releases", "0", "date"], json!("2026-02-30")),
        "spec.releases[0].date",
        "date",
    )
    .await;
}

//! The `marketplace.dev/v1alpha1` API: one module per kind, plus shared value types and
//! condition helpers. No I/O here.

// Each `printcolumn(...)` of the CustomResource derive repeats keys such as `type_ = "string"`,
// which this lint mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod bundle;
pub mod catalog_source;
pub mod conditions;
pub mod entitlement;
pub mod health_policy;
pub mod listing;
pub mod metered;
pub mod notification;
pub mod notification_channel;
pub mod promotion;
pub mod shared;
pub mod subscription_action;
pub mod tenant;
pub mod tenant_subscription;
pub mod wizard_config;

pub use bundle::{Bundle, BundleSpec, BundleSubscription, BundleSubscriptionSpec};
pub use catalog_source::{CatalogSource, CatalogSourceSpec, CatalogSourceStatus};
pub use entitlement::{Entitlement, EntitlementSpec, EntitlementState};
pub use health_policy::{HealthPolicy, HealthPolicySpec};
pub use listing::{Listing, ListingSpec};
pub use notification::{Notification, NotificationSpec, NotificationStatus};
pub use notification_channel::{NotificationChannel, NotificationChannelSpec};
pub use promotion::{Promotion, PromotionSpec};
pub use subscription_action::{
    SubscriptionAction, SubscriptionActionSpec, SubscriptionActionStatus,
};
pub use tenant::{Tenant, TenantSpec, TenantStatus};
pub use tenant_subscription::{
    TenantSubscription, TenantSubscriptionSpec, TenantSubscriptionStatus,
};
pub use wizard_config::{WizardConfig, WizardConfigSpec};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

/// The API group of every kind.
pub const GROUP: &str = "marketplace.dev";

/// Every CRD of the API, in a stable order (also the order of the files in `crds/`).
pub fn crds() -> Vec<CustomResourceDefinition> {
    [
        Listing::crd(),
        WizardConfig::crd(),
        Tenant::crd(),
        TenantSubscription::crd(),
        SubscriptionAction::crd(),
        Entitlement::crd(),
        CatalogSource::crd(),
        NotificationChannel::crd(),
        Notification::crd(),
        HealthPolicy::crd(),
        Promotion::crd(),
        Bundle::crd(),
        BundleSubscription::crd(),
    ]
    .into_iter()
    .map(reflow_descriptions)
    .collect()
}

/// Doc comments wrap at the source's line width; joining the lines of each paragraph lets
/// `kubectl explain` and editors wrap descriptions to their own width.
fn reflow_descriptions(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        reflow_schema(schema);
    }
    crd
}

fn reflow_schema(schema: &mut JSONSchemaProps) {
    if let Some(description) = schema.description.as_mut() {
        *description = reflow(description);
    }
    let children = schema
        .properties
        .iter_mut()
        .flat_map(|p| p.values_mut())
        .chain(schema.items.iter_mut().filter_map(|items| match items {
            JSONSchemaPropsOrArray::Schema(s) => Some(s.as_mut()),
            JSONSchemaPropsOrArray::Schemas(_) => None,
        }))
        .chain(
            schema
                .additional_properties
                .iter_mut()
                .filter_map(|a| match a {
                    JSONSchemaPropsOrBool::Schema(s) => Some(s.as_mut()),
                    JSONSchemaPropsOrBool::Bool(_) => None,
                }),
        );
    for child in children {
        reflow_schema(child);
    }
}

/// Joins the lines within each paragraph; blank lines still separate paragraphs.
fn reflow(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .split('\n')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

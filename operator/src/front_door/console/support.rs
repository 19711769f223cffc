//! A tenant as support sees it: everything the tenant sees, plus HubSpot ids, conditions, who
//! moved each subscription, and the last billing audit's findings about the tenant.

use serde::Serialize;

use crate::api::entitlement::Entitlement;
use crate::api::tenant::Tenant;
use crate::api::tenant_subscription::{HubSpotIds, TenantSubscription, Transition};
use crate::controllers::billing_audit::DriftReport;
use crate::front_door::decide::{EntitlementView, tenant_features};
use crate::front_door::storefront::detail::{SubscriptionView, subscription_view};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// One subscription, with what only support may see.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SupportSubscription {
    #[serde(flatten)]
    pub view: SubscriptionView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hubspot: Option<HubSpotIds>,
    pub conditions: Vec<Condition>,
    /// Every transition with its actor and the action that caused it.
    pub transitions: Vec<Transition>,
}

/// `GET /v1/admin/tenants/{t}`.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SupportView {
    pub tenant: String,
    pub display_name: String,
    pub base_plan: String,
    pub internal: bool,
    pub suspended: bool,
    pub billing_contact: crate::api::tenant::BillingContact,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hubspot_company_id: Option<String>,
    pub subscriptions: Vec<SupportSubscription>,
    pub entitlements: Vec<EntitlementView>,
    /// The last audit's findings and orphans that name the tenant's namespace.
    pub drift_findings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_audit: Option<String>,
}

pub fn support_view(
    name: &str,
    tenant: &Tenant,
    subscriptions: &[&TenantSubscription],
    entitlements: &[&Entitlement],
    report: Option<&DriftReport>,
) -> SupportView {
    let namespace_prefix = format!("{}/", crate::controllers::tenant_rbac::namespace_name(name));
    let mut subs: Vec<SupportSubscription> = subscriptions
        .iter()
        .map(|s| {
            let status = s.status.clone().unwrap_or_default();
            SupportSubscription {
                view: subscription_view(s),
                hubspot: status.hubspot,
                conditions: status.conditions,
                transitions: status.history,
            }
        })
        .collect();
    subs.sort_by(|a, b| {
        b.view
            .created_at
            .cmp(&a.view.created_at)
            .then(a.view.name.cmp(&b.view.name))
    });
    SupportView {
        tenant: name.to_string(),
        display_name: tenant.spec.display_name.clone(),
        base_plan: tenant.spec.base_plan.clone(),
        internal: tenant.spec.internal,
        suspended: tenant.spec.suspended,
        billing_contact: tenant.spec.billing_contact.clone(),
        hubspot_company_id: tenant
            .status
            .as_ref()
            .and_then(|s| s.hubspot_company_id.clone()),
        subscriptions: subs,
        entitlements: tenant_features(entitlements.iter().map(|e| &e.spec)),
        drift_findings: report
            .map(|r| {
                r.findings
                    .iter()
                    .chain(&r.orphans)
                    .filter(|line| line.starts_with(&namespace_prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
        last_audit: report.map(|r| r.finished_at.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tenant_subscription::TenantSubscriptionStatus;
    use crate::lifecycle::fixtures::{subscription, tenant};

    #[test]
    fn support_sees_hubspot_ids_and_the_tenants_own_findings() {
        let acme = Tenant::new("acme", tenant("Professional"));
        let mut sub =
            TenantSubscription::new("route-1", subscription("{listing: route, plan: flat}"));
        sub.status = Some(TenantSubscriptionStatus {
            hubspot: Some(HubSpotIds {
                deal_id: Some("42".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let report = DriftReport {
            finished_at: "2026-12-01T10:00:00Z".into(),
            findings: vec![
                "tenant-acme/route-1: line item missing".into(),
                "tenant-globex/chat: suspended".into(),
            ],
            ..Default::default()
        };
        let view = support_view("acme", &acme, &[&sub], &[], Some(&report));
        assert_eq!(
            view.drift_findings,
            ["tenant-acme/route-1: line item missing"]
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["subscriptions"][0]["hubspot"]["dealId"], "42");
    }
}

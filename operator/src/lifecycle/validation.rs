//! Validation of a subscription request before anything is billed. Each refusal names the field
//! at fault, a reason (UpperCamelCase, for conditions) and a sentence a tenant can act on.
//! The connection Secret and the test connection need I/O and are checked at the edge
//! (`crate::connection`), after these rules pass.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::is_terminal;
use super::is_usable;
use super::visibility::{Viewer, visible_to};
use crate::api::entitlement::Entitlement;
use crate::api::listing::{Lifecycle, ListingSpec, ListingType, Plan, PricingModel};
use crate::api::tenant::Tenant;
use crate::api::tenant_subscription::{Phase, TenantSubscription, TenantSubscriptionSpec};

/// A tenant may create at most one subscription request per listing in this window.
pub const REQUEST_WINDOW: SignedDuration = SignedDuration::from_hours(1);

/// Why a subscription cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Condition reason, e.g. `ListingNotPublished`.
    pub reason: &'static str,
    /// The field at fault, e.g. `spec.plan`.
    pub field: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            field,
            message: message.into(),
        }
    }
}

impl Refusal {
    /// Refusals that may resolve by themselves (the catalog or the tenant has not arrived yet,
    /// as when a GitOps tool applies everything at once), or that the tenant fixes without a new
    /// subscription (its connection Secret): the subscription waits in Requested, unbilled,
    /// instead of being Rejected.
    pub fn waits(&self) -> bool {
        matches!(
            self.reason,
            "ListingNotFound"
                | "TenantNotFound"
                | "WizardConfigNotFound"
                | "ConnectionSecretNotFound"
                | "ConnectionInvalid"
                | "ConnectionTestFailed"
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Another subscription of the same tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    pub name: String,
    pub listing: String,
    pub phase: Option<Phase>,
    pub created_at: Timestamp,
}

impl Sibling {
    /// The sibling facts of a stored subscription; `now` stands in for a creation time not
    /// yet set.
    pub fn of(sub: &TenantSubscription, now: Timestamp) -> Sibling {
        Sibling {
            name: sub.metadata.name.clone().unwrap_or_default(),
            listing: sub.spec.listing.as_str().to_string(),
            phase: sub.status.as_ref().and_then(|s| s.phase),
            created_at: sub
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(now, |t| t.0),
        }
    }
}

/// The features a tenant may use now: those of its Active or Trialing Entitlements.
pub fn entitled_features<'a>(
    entitlements: impl IntoIterator<Item = &'a Entitlement>,
) -> BTreeSet<String> {
    entitlements
        .into_iter()
        .filter(|e| e.spec.state.is_usable())
        .map(|e| e.spec.feature.as_str().to_string())
        .collect()
}

/// Everything validation looks at.
#[derive(Debug, Clone)]
pub struct RequestContext<'a> {
    pub name: &'a str,
    pub created_at: Timestamp,
    pub spec: &'a TenantSubscriptionSpec,
    pub listing: Option<&'a ListingSpec>,
    pub tenant_name: &'a str,
    /// The Tenant object (its labels decide listings offered by tenantSelector).
    pub tenant: Option<&'a Tenant>,
    /// The tenant's other subscriptions (this one may be included; it is skipped).
    pub siblings: &'a [Sibling],
    /// Features the tenant may use now (from its Entitlements).
    pub entitled_features: &'a BTreeSet<String>,
    /// The platform's version, when the operator is told it.
    pub platform_version: Option<&'a semver::Version>,
}

/// Checks the rules in the order a tenant would fix them.
pub fn validate_request(r: &RequestContext<'_>) -> Result<(), Refusal> {
    let spec = r.spec;
    let Some(tenant_object) = r.tenant else {
        return Err(Refusal::new(
            "TenantNotFound",
            "metadata.namespace",
            format!(
                "there is no Tenant {:?} for this namespace; subscriptions live in tenant-<name> namespaces",
                r.tenant_name
            ),
        ));
    };
    let Some(listing) = r.listing else {
        return Err(Refusal::new(
            "ListingNotFound",
            "spec.listing",
            format!(
                "there is no listing {:?} in the catalog",
                spec.listing.as_str()
            ),
        ));
    };
    let listing_name = spec.listing.as_str();
    let tenant = &tenant_object.spec;
    if !visible_to(listing, Viewer::of(r.tenant_name, tenant_object)) {
        return Err(Refusal::new(
            "ListingNotOffered",
            "spec.listing",
            format!(
                "listing {listing_name} is not offered to tenant {}",
                r.tenant_name
            ),
        ));
    }
    if listing.type_ == ListingType::Partner {
        let url = listing
            .partner
            .as_ref()
            .map(|p| p.url.as_str())
            .unwrap_or("");
        return Err(Refusal::new(
            "PartnerListing",
            "spec.listing",
            format!(
                "{listing_name} is a partner add-on and is never billed here; sign up on the partner's site: {url}"
            ),
        ));
    }
    if listing.lifecycle != Lifecycle::Published {
        let why = match listing.lifecycle {
            Lifecycle::ComingSoon => "is coming soon and cannot be bought yet",
            Lifecycle::Draft => "is a draft and cannot be bought",
            Lifecycle::Archived => "is archived and takes no new subscriptions",
            Lifecycle::Published => unreachable!(),
        };
        return Err(Refusal::new(
            "ListingNotPublished",
            "spec.listing",
            format!("listing {listing_name} {why}"),
        ));
    }
    let plan = find_plan(listing, spec)?;
    if !listing.available_on_plans.is_empty()
        && !listing.available_on_plans.contains(&tenant.base_plan)
    {
        return Err(Refusal::new(
            "BasePlanNotAllowed",
            "spec.listing",
            format!(
                "listing {listing_name} is available on base plans {}; the tenant is on {}",
                listing.available_on_plans.join(", "),
                tenant.base_plan
            ),
        ));
    }
    check_quantity(plan, spec)?;
    if spec.trial && plan.trial_days.unwrap_or(0) <= 0 {
        return Err(Refusal::new(
            "NoTrial",
            "spec.trial",
            format!(
                "plan {} has no free trial; set trial: false",
                plan.name.as_str()
            ),
        ));
    }
    check_platform(listing, r.platform_version)?;
    check_prerequisites(r, listing)?;
    check_duplicates(r)?;
    if listing.type_ == ListingType::Integration && spec.connection.is_none() {
        return Err(Refusal::new(
            "ConnectionMissing",
            "spec.connection.secretRef",
            format!(
                "{listing_name} is an integration: name the Secret with its connection settings in spec.connection.secretRef"
            ),
        ));
    }
    Ok(())
}

/// The rules a plan or quantity change of a live subscription must pass: the plan exists and
/// allows the quantity (the other rules held when the subscription was admitted).
pub fn check_plan_change(
    spec: &TenantSubscriptionSpec,
    listing: &ListingSpec,
) -> Result<(), Refusal> {
    check_quantity(find_plan(listing, spec)?, spec)
}

fn find_plan<'a>(
    listing: &'a ListingSpec,
    spec: &TenantSubscriptionSpec,
) -> Result<&'a Plan, Refusal> {
    listing
        .plans
        .iter()
        .find(|p| p.name == spec.plan)
        .ok_or_else(|| {
            let names: Vec<&str> = listing.plans.iter().map(|p| p.name.as_str()).collect();
            Refusal::new(
                "PlanNotFound",
                "spec.plan",
                format!(
                    "listing {} has no plan {:?}; its plans are: {}",
                    spec.listing.as_str(),
                    spec.plan.as_str(),
                    names.join(", ")
                ),
            )
        })
}

fn check_quantity(plan: &Plan, spec: &TenantSubscriptionSpec) -> Result<(), Refusal> {
    if plan.pricing.model == PricingModel::Flat && spec.quantity != 1 {
        return Err(Refusal::new(
            "InvalidQuantity",
            "spec.quantity",
            format!(
                "plan {} has a flat price; quantity must be 1, not {}",
                plan.name.as_str(),
                spec.quantity
            ),
        ));
    }
    Ok(())
}

fn check_platform(listing: &ListingSpec, version: Option<&semver::Version>) -> Result<(), Refusal> {
    let (Some(range), Some(version)) = (listing.platform_version.as_deref(), version) else {
        return Ok(());
    };
    match semver::VersionReq::parse(range) {
        Ok(req) if req.matches(version) => Ok(()),
        Ok(_) => Err(Refusal::new(
            "IncompatiblePlatform",
            "spec.listing",
            format!("the add-on works with platform versions {range}; this platform is {version}"),
        )),
        Err(e) => Err(Refusal::new(
            "InvalidListing",
            "spec.listing",
            format!("the listing's platformVersion {range:?} is not a version range: {e}"),
        )),
    }
}

fn check_prerequisites(r: &RequestContext<'_>, listing: &ListingSpec) -> Result<(), Refusal> {
    let Some(requires) = &listing.requires else {
        return Ok(());
    };
    for needed in &requires.listings {
        let held = r.siblings.iter().any(|s| {
            s.name != r.name && s.listing == needed.as_str() && s.phase.is_some_and(is_usable)
        });
        if !held {
            return Err(Refusal::new(
                "PrerequisiteMissing",
                "spec.listing",
                format!(
                    "{} requires an active subscription to {}; subscribe to it first",
                    r.spec.listing.as_str(),
                    needed.as_str()
                ),
            ));
        }
    }
    for feature in &requires.features {
        if !r.entitled_features.contains(feature.as_str()) {
            return Err(Refusal::new(
                "PrerequisiteMissing",
                "spec.listing",
                format!(
                    "{} requires the feature {}, which the tenant is not entitled to",
                    r.spec.listing.as_str(),
                    feature.as_str()
                ),
            ));
        }
    }
    Ok(())
}

/// One live subscription per listing, and one request per listing per hour. "Earlier" is by
/// creation time, then name, so both subscriptions of a race agree on which one wins.
fn check_duplicates(r: &RequestContext<'_>) -> Result<(), Refusal> {
    let me = (r.created_at, r.name);
    let listing = r.spec.listing.as_str();
    let earlier = r.siblings.iter().filter(|s| {
        s.name != r.name && s.listing == listing && (s.created_at, s.name.as_str()) < me
    });
    for s in earlier.clone() {
        if !s.phase.is_some_and(is_terminal) {
            return Err(Refusal::new(
                "AlreadySubscribed",
                "spec.listing",
                format!(
                    "the tenant already has subscription {} to {listing}; change its plan instead",
                    s.name
                ),
            ));
        }
    }
    for s in earlier {
        if r.created_at.duration_since(s.created_at) < REQUEST_WINDOW {
            return Err(Refusal::new(
                "RateLimited",
                "spec.listing",
                format!(
                    "a tenant can request {listing} at most once per hour; subscription {} was requested at {}; try again after {}",
                    s.name,
                    s.created_at,
                    s.created_at + REQUEST_WINDOW
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

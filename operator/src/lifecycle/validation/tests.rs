use super::*;
use crate::api::tenant::TenantSpec;
use crate::lifecycle::fixtures::*;

struct Case {
    spec: TenantSubscriptionSpec,
    listing: Option<ListingSpec>,
    tenant: Option<TenantSpec>,
    siblings: Vec<Sibling>,
    features: BTreeSet<String>,
    platform: Option<semver::Version>,
}

impl Case {
    fn new(spec: &str) -> Case {
        Case {
            spec: subscription(spec),
            listing: Some(listing("")),
            tenant: Some(tenant("Professional")),
            siblings: Vec::new(),
            features: no_features(),
            platform: None,
        }
    }

    fn check(&self) -> Result<(), Refusal> {
        let tenant = self
            .tenant
            .clone()
            .map(|spec| crate::api::tenant::Tenant::new("acme", spec));
        validate_request(&RequestContext {
            name: "mine",
            created_at: ts("2026-11-22T10:00:00Z"),
            spec: &self.spec,
            listing: self.listing.as_ref(),
            tenant_name: "acme",
            tenant: tenant.as_ref(),
            siblings: &self.siblings,
            entitled_features: &self.features,
            platform_version: self.platform.as_ref(),
        })
    }

    fn reason(&self) -> &'static str {
        self.check().expect_err("expected a refusal").reason
    }
}

const GOOD: &str = "{listing: route-optimization, plan: standard, quantity: 5}";

#[test]
fn a_good_request_passes() {
    assert_eq!(Case::new(GOOD).check(), Ok(()));
    assert_eq!(Case::new("{listing: x, plan: flat}").check(), Ok(()));
}

#[test]
fn missing_tenant_listing_and_plan_are_refused() {
    let mut c = Case::new(GOOD);
    c.tenant = None;
    assert_eq!(c.reason(), "TenantNotFound");
    let mut c = Case::new(GOOD);
    c.listing = None;
    assert_eq!(c.reason(), "ListingNotFound");
    let c = Case::new("{listing: route-optimization, plan: gold}");
    let r = c.check().unwrap_err();
    assert_eq!((r.reason, r.field), ("PlanNotFound", "spec.plan"));
    assert!(r.message.contains("standard, flat"), "{}", r.message);
}

#[test]
fn a_listing_not_offered_to_the_tenant_is_refused_before_anything_else() {
    let mut c = Case::new(GOOD);
    c.listing = Some(listing(
        "{visibility: Private, audience: {tenants: [globex]}, lifecycle: ComingSoon}",
    ));
    let r = c.check().unwrap_err();
    assert_eq!((r.reason, r.field), ("ListingNotOffered", "spec.listing"));
    assert!(!r.waits());
    c.listing = Some(listing(
        "{visibility: Private, audience: {tenants: [acme]}}",
    ));
    assert_eq!(c.check(), Ok(()));
    c.listing = Some(listing("visibility: Internal"));
    assert_eq!(c.reason(), "ListingNotOffered");
    c.tenant.as_mut().unwrap().internal = true;
    assert_eq!(c.check(), Ok(()));
}

#[test]
fn unpublished_and_partner_listings_are_refused() {
    for (lifecycle, word) in [
        ("ComingSoon", "coming soon"),
        ("Draft", "draft"),
        ("Archived", "archived"),
    ] {
        let mut c = Case::new(GOOD);
        c.listing = Some(listing(&format!("lifecycle: {lifecycle}")));
        let r = c.check().unwrap_err();
        assert_eq!(r.reason, "ListingNotPublished");
        assert!(r.message.contains(word), "{}", r.message);
    }
    let mut c = Case::new(GOOD);
    c.listing = Some(listing(
        "{type: Partner, plans: [], partner: {name: GigSafe, url: 'https://gigsafe.example.com'}}",
    ));
    let r = c.check().unwrap_err();
    assert_eq!(r.reason, "PartnerListing");
    assert!(r.message.contains("https://gigsafe.example.com"));
}

#[test]
fn base_plan_quantity_trial_and_platform_rules() {
    let mut c = Case::new(GOOD);
    c.listing = Some(listing("availableOnPlans: [Enterprise]"));
    assert_eq!(c.reason(), "BasePlanNotAllowed");
    assert_eq!(
        Case::new("{listing: x, plan: flat, quantity: 3}").reason(),
        "InvalidQuantity"
    );
    assert_eq!(
        Case::new("{listing: x, plan: flat, trial: true}").reason(),
        "NoTrial"
    );
    assert_eq!(
        Case::new("{listing: x, plan: standard, trial: true}").check(),
        Ok(())
    );
    let mut c = Case::new(GOOD);
    c.listing = Some(listing("platformVersion: '>=4.2, <6'"));
    c.platform = Some(semver::Version::new(6, 1, 0));
    assert_eq!(c.reason(), "IncompatiblePlatform");
    c.platform = Some(semver::Version::new(5, 0, 0));
    assert_eq!(c.check(), Ok(()));
}

fn sibling(name: &str, listing: &str, phase: Option<Phase>, at: &str) -> Sibling {
    Sibling {
        name: name.into(),
        listing: listing.into(),
        phase,
        created_at: ts(at),
    }
}

#[test]
fn prerequisites_need_usable_subscriptions_and_features() {
    let mut c = Case::new(GOOD);
    c.listing = Some(listing(
        "requires: {listings: [fleet-tracking], features: [gps]}",
    ));
    assert_eq!(c.reason(), "PrerequisiteMissing");
    c.siblings = vec![sibling(
        "ft",
        "fleet-tracking",
        Some(Phase::Requested),
        "2026-11-01T00:00:00Z",
    )];
    assert_eq!(c.reason(), "PrerequisiteMissing");
    c.siblings[0].phase = Some(Phase::Active);
    let r = c.check().unwrap_err();
    assert!(r.message.contains("gps"), "{}", r.message);
    c.features.insert("gps".into());
    assert_eq!(c.check(), Ok(()));
}

#[test]
fn one_live_subscription_and_one_request_per_hour_per_listing() {
    let mut c = Case::new(GOOD);
    c.siblings = vec![sibling(
        "old",
        "route-optimization",
        Some(Phase::Active),
        "2026-11-01T00:00:00Z",
    )];
    assert_eq!(c.reason(), "AlreadySubscribed");
    c.siblings[0].phase = Some(Phase::Cancelled);
    assert_eq!(c.check(), Ok(()));
    // Cancelled 20 minutes ago and asked again: one request per hour.
    c.siblings = vec![sibling(
        "recent",
        "route-optimization",
        Some(Phase::Rejected),
        "2026-11-22T09:40:00Z",
    )];
    let r = c.check().unwrap_err();
    assert_eq!(r.reason, "RateLimited");
    assert!(r.message.contains("10:40"), "{}", r.message);
    // A later request never blocks an earlier one, and other listings do not count.
    c.siblings = vec![
        sibling("later", "route-optimization", None, "2026-11-22T10:05:00Z"),
        sibling(
            "other",
            "analytics",
            Some(Phase::Active),
            "2026-11-22T09:59:00Z",
        ),
    ];
    assert_eq!(c.check(), Ok(()));
    // Same second: the name breaks the tie, so exactly one of the two wins.
    c.siblings = vec![sibling(
        "aaa",
        "route-optimization",
        None,
        "2026-11-22T10:00:00Z",
    )];
    assert_eq!(c.reason(), "AlreadySubscribed");
    c.siblings = vec![sibling(
        "zzz",
        "route-optimization",
        None,
        "2026-11-22T10:00:00Z",
    )];
    assert_eq!(c.check(), Ok(()));
}

#[test]
fn integrations_need_a_connection() {
    let mut c = Case::new(GOOD);
    c.listing = Some(listing(
        "{type: Integration, integration: {wizardConfigRef: qb}}",
    ));
    let r = c.check().unwrap_err();
    assert_eq!(
        (r.reason, r.field),
        ("ConnectionMissing", "spec.connection.secretRef")
    );
    c.spec = subscription(
        "{listing: qb, plan: standard, quantity: 2, connection: {secretRef: {name: qb}}}",
    );
    assert_eq!(c.check(), Ok(()));
}

#[test]
fn a_plan_change_needs_an_existing_plan_and_a_fitting_quantity() {
    let l = listing("lifecycle: Archived");
    let ok = subscription("{listing: route-optimization, plan: standard, quantity: 7}");
    assert_eq!(check_plan_change(&ok, &l), Ok(()));
    let gold = subscription("{listing: route-optimization, plan: gold}");
    assert_eq!(
        check_plan_change(&gold, &l).unwrap_err().reason,
        "PlanNotFound"
    );
    let flat = subscription("{listing: route-optimization, plan: flat, quantity: 2}");
    let r = check_plan_change(&flat, &l).unwrap_err();
    assert_eq!((r.reason, r.field), ("InvalidQuantity", "spec.quantity"));
}

#[test]
fn siblings_and_entitled_features_come_from_stored_objects() {
    let stored: TenantSubscription = serde_json::from_value(serde_json::json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": "ft", "namespace": "tenant-acme",
                     "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": {"listing": "fleet-tracking", "plan": "standard"},
        "status": {"phase": "Active"},
    }))
    .unwrap();
    let now = ts("2026-11-22T10:00:00Z");
    assert_eq!(
        Sibling::of(&stored, now),
        sibling(
            "ft",
            "fleet-tracking",
            Some(Phase::Active),
            "2026-11-01T00:00:00Z"
        )
    );
    let mut fresh = stored.clone();
    fresh.metadata.creation_timestamp = None;
    fresh.status = None;
    assert_eq!(Sibling::of(&fresh, now).created_at, now);
    assert_eq!(Sibling::of(&fresh, now).phase, None);

    let entitlement = |feature: &str, state: &str| -> Entitlement {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "marketplace.dev/v1alpha1", "kind": "Entitlement",
            "metadata": {"name": feature, "namespace": "tenant-acme"},
            "spec": {"tenant": "acme", "feature": feature, "state": state,
                     "startsAt": "2026-11-01T00:00:00Z", "sourceSubscription": "ft"},
        }))
        .unwrap()
    };
    let all = [
        entitlement("gps", "Active"),
        entitlement("eta", "Trialing"),
        entitlement("old", "Revoked"),
        entitlement("held", "Suspended"),
    ];
    let features: Vec<String> = entitled_features(&all).into_iter().collect();
    assert_eq!(features, ["eta", "gps"]);
}

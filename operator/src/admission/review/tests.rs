use super::*;
use crate::api::tenant::TenantSpec;
use crate::lifecycle::fixtures::{listing, tenant, ts};

const NOW: &str = "2026-11-22T10:00:00Z";

fn sub(name: &str, spec: serde_json::Value, phase: Option<&str>) -> TenantSubscription {
    let mut object = serde_json::json!({
        "apiVersion": "marketplace.dev/v1alpha1", "kind": "TenantSubscription",
        "metadata": {"name": name, "namespace": "tenant-acme"},
        "spec": spec,
    });
    if let Some(phase) = phase {
        object["metadata"]["creationTimestamp"] = "2026-11-22T09:00:00Z".into();
        object["status"] = serde_json::json!({"phase": phase, "conditions": [{
            "type": "Ready", "status": "False", "reason": "PlanNotFound",
            "message": "no plan gold", "lastTransitionTime": "2026-11-22T09:00:00Z",
        }]});
    }
    serde_json::from_value(object).unwrap()
}

fn spec(plan: &str, quantity: i32) -> serde_json::Value {
    serde_json::json!({"listing": "route-optimization", "plan": plan, "quantity": quantity})
}

struct World {
    listing: Option<ListingSpec>,
    tenant: Option<TenantSpec>,
    siblings: Vec<Sibling>,
    features: BTreeSet<String>,
    bundle_cancelling: bool,
}

impl World {
    fn new() -> World {
        World {
            listing: Some(listing("")),
            tenant: Some(tenant("Professional")),
            siblings: Vec::new(),
            features: BTreeSet::new(),
            bundle_cancelling: false,
        }
    }

    fn decide(
        &self,
        operation: Operation,
        new: &TenantSubscription,
        old: Option<&TenantSubscription>,
    ) -> Verdict {
        let write = Write {
            operation: &operation,
            namespace: "tenant-acme",
            name: new.metadata.name.as_deref().unwrap_or(""),
            object: Some(new),
            old_object: old,
        };
        let tenant = self
            .tenant
            .clone()
            .map(|spec| crate::api::tenant::Tenant::new("acme", spec));
        let facts = Facts {
            listing: self.listing.as_ref(),
            tenant: tenant.as_ref(),
            siblings: &self.siblings,
            entitled_features: &self.features,
            platform_version: None,
            bundle_cancelling: self.bundle_cancelling,
        };
        decide_admission(&write, &facts, ts(NOW))
    }

    fn create(&self, new: &TenantSubscription) -> Verdict {
        self.decide(Operation::Create, new, None)
    }
}

fn denial(v: Verdict) -> (&'static str, &'static str, String) {
    match v {
        Verdict::Deny {
            reason,
            field,
            message,
        } => (reason, field, message),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn a_bundle_member_is_cancelled_only_with_its_bundle() {
    let mut member = spec("flat", 1);
    member["bundle"] = serde_json::json!({"name": "suite", "subscription": "suite-1"});
    let old = sub("suite-1-route-optimization", member.clone(), Some("Active"));
    let mut cancelled = old.clone();
    cancelled.spec.cancellation = Some(serde_json::from_value(serde_json::json!({})).unwrap());
    let mut world = World::new();
    let (reason, field, message) = denial(world.decide(Operation::Update, &cancelled, Some(&old)));
    assert_eq!(
        (reason, field),
        ("BundleMemberCancelledAlone", "spec.cancellation")
    );
    assert!(
        message.contains("BundleSubscription \"suite-1\""),
        "{message}"
    );
    world.bundle_cancelling = true;
    assert_eq!(
        world.decide(Operation::Update, &cancelled, Some(&old)),
        Verdict::allow("Valid")
    );
}

#[test]
fn a_valid_create_is_allowed() {
    let v = World::new().create(&sub("mine", spec("standard", 3), None));
    assert_eq!(v, Verdict::allow("Valid"));
}

#[test]
fn a_refusal_names_the_object_and_the_field() {
    let (reason, field, message) = denial(World::new().create(&sub("mine", spec("gold", 3), None)));
    assert_eq!((reason, field), ("PlanNotFound", "spec.plan"));
    assert!(
        message.starts_with("TenantSubscription tenant-acme/mine: spec.plan: "),
        "{message}"
    );
    assert!(message.contains("standard, flat"), "{message}");
    let (reason, field, _) = denial(World::new().create(&sub("mine", spec("flat", 3), None)));
    assert_eq!((reason, field), ("InvalidQuantity", "spec.quantity"));
}

#[test]
fn generate_name_is_shown_when_there_is_no_name_yet() {
    let mut new = sub("", spec("gold", 1), None);
    new.metadata.name = None;
    new.metadata.generate_name = Some("route-".into());
    let (_, _, message) = denial(World::new().create(&new));
    assert!(
        message.starts_with("TenantSubscription tenant-acme/route-: "),
        "{message}"
    );
}

#[test]
fn refusals_that_wait_are_allowed_with_a_warning() {
    let mut world = World::new();
    world.listing = None;
    match world.create(&sub("mine", spec("standard", 3), None)) {
        Verdict::Allow { why, warnings } => {
            assert_eq!(why, "Waits");
            assert!(warnings[0].starts_with("spec.listing: "), "{warnings:?}");
            assert!(warnings[0].contains("waits in Requested"), "{warnings:?}");
        }
        other => panic!("{other:?}"),
    }
    let mut world = World::new();
    world.tenant = None;
    assert_eq!(
        world.create(&sub("m", spec("gold", 3), None)).reason(),
        "Waits"
    );
}

#[test]
fn a_new_object_is_later_than_every_sibling_whatever_the_clocks() {
    // The apiserver's clock is ahead: a sibling stamped after our "now" still counts.
    let mut world = World::new();
    world.siblings = vec![Sibling {
        name: "zzz".into(),
        listing: "route-optimization".into(),
        phase: None,
        created_at: ts("2026-11-22T10:00:02Z"),
    }];
    let (reason, field, _) = denial(world.create(&sub("aaa", spec("standard", 3), None)));
    assert_eq!((reason, field), ("AlreadySubscribed", "spec.listing"));
    world.siblings[0].phase = Some(Phase::Rejected);
    let (reason, _, message) = denial(world.create(&sub("aaa", spec("standard", 3), None)));
    assert_eq!(reason, "RateLimited");
    assert!(message.contains("at most once per hour"), "{message}");
}

#[test]
fn writes_that_leave_the_spec_alone_always_pass() {
    let world = World::new();
    let old = sub("mine", spec("gold", 3), Some("Rejected"));
    let mut new = old.clone();
    new.metadata.finalizers = Some(Vec::new());
    let write = Write {
        operation: &Operation::Update,
        namespace: "tenant-acme",
        name: "mine",
        object: Some(&new),
        old_object: Some(&old),
    };
    assert!(!needs_facts(&write));
    assert_eq!(
        world.decide(Operation::Update, &new, Some(&old)),
        Verdict::allow("SpecUnchanged")
    );
    // On the way out, even a spec change passes.
    let mut leaving = sub("mine", spec("standard", 3), Some("Rejected"));
    leaving.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts(NOW)),
    );
    assert_eq!(
        world.decide(Operation::Update, &leaving, Some(&old)),
        Verdict::allow("Deleting")
    );
    assert_eq!(
        world.decide(Operation::Delete, &old, Some(&old)),
        Verdict::allow("NotChecked")
    );
}

#[test]
fn a_terminal_subscription_cannot_be_edited() {
    let world = World::new();
    for phase in ["Rejected", "Cancelled", "Failed"] {
        let old = sub("mine", spec("gold", 3), Some(phase));
        let mut new = old.clone();
        new.spec.plan = "standard".into();
        let (reason, field, message) = denial(world.decide(Operation::Update, &new, Some(&old)));
        assert_eq!((reason, field), ("SubscriptionEnded", "spec.plan"));
        assert!(
            message.contains(&format!("is {phase} (PlanNotFound: no plan gold)")),
            "{message}"
        );
        assert!(
            message.contains("create a new TenantSubscription (or delete this one)"),
            "{message}"
        );
    }
    let old = sub("mine", spec("standard", 3), Some("Failed"));
    let mut new = old.clone();
    new.spec.quantity = 4;
    assert_eq!(
        denial(world.decide(Operation::Update, &new, Some(&old))).1,
        "spec.quantity"
    );
}

#[test]
fn a_live_subscription_may_change_to_an_existing_plan_only() {
    let world = World::new();
    let old = sub("mine", spec("standard", 3), Some("Active"));
    let mut new = old.clone();
    new.spec.quantity = 5;
    assert_eq!(
        world.decide(Operation::Update, &new, Some(&old)),
        Verdict::allow("Valid")
    );
    new.spec.plan = "gold".into();
    let (reason, field, _) = denial(world.decide(Operation::Update, &new, Some(&old)));
    assert_eq!((reason, field), ("PlanNotFound", "spec.plan"));
    new.spec.plan = "flat".into();
    assert_eq!(
        denial(world.decide(Operation::Update, &new, Some(&old))).0,
        "InvalidQuantity"
    );
    // Cancelling is never refused, whatever became of the listing.
    let mut archived = World::new();
    archived.listing = Some(listing("lifecycle: Archived"));
    let mut cancel = old.clone();
    cancel.spec.cancellation = Some(serde_json::from_value(serde_json::json!({})).unwrap());
    assert_eq!(
        archived.decide(Operation::Update, &cancel, Some(&old)),
        Verdict::allow("Valid")
    );
}

#[test]
fn a_waiting_subscription_is_validated_again_when_its_spec_changes() {
    let world = World::new();
    let old = sub("mine", spec("standard", 3), Some("Requested"));
    let mut new = old.clone();
    new.spec.plan = "gold".into();
    assert_eq!(
        denial(world.decide(Operation::Update, &new, Some(&old))).0,
        "PlanNotFound"
    );
    new.spec.plan = "flat".into();
    new.spec.quantity = 1;
    assert_eq!(
        world.decide(Operation::Update, &new, Some(&old)),
        Verdict::allow("Valid")
    );
}

#[test]
fn the_tenant_is_the_namespace_without_its_prefix() {
    assert_eq!(tenant_name("tenant-acme"), "acme");
    assert_eq!(tenant_name("default"), "default");
}

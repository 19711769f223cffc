//! The admission decision for one TenantSubscription write: a pure function over the request
//! (operation, old and new object) and facts from the caches, with the time as an argument.
//!
//! It applies the same rules as the reconciler ([`validate_request`]), with three differences
//! that come from answering *before* the object is stored:
//! - refusals that merely wait in the reconciler ([`Refusal::waits`]: the listing or tenant has
//!   not arrived yet, as when a GitOps tool applies everything at once) are allowed, with a
//!   warning saying what the subscription will wait for;
//! - writes that leave the spec alone (status, finalizers, labels, deletion) always pass;
//! - a spec change of a terminal subscription (Rejected, Cancelled, Failed) is refused with what
//!   to do instead, since the reconciler never looks at it again; a plan or quantity change of a
//!   live one is checked against the plan ([`check_plan_change`]).

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use kube::core::admission::Operation;

use crate::api::listing::ListingSpec;
use crate::api::tenant::Tenant;
use crate::api::tenant_subscription::{Phase, TenantSubscription, TenantSubscriptionSpec};
use crate::controllers::tenant_subscription::TENANT_NAMESPACE_PREFIX;
use crate::lifecycle::bundle::member_cancel_refusal;
use crate::lifecycle::validation::check_plan_change;
use crate::lifecycle::{Refusal, RequestContext, Sibling, is_terminal, validate_request};

/// The write under review.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub operation: &'a Operation,
    pub namespace: &'a str,
    /// The object's name (empty for a create with `generateName`).
    pub name: &'a str,
    pub object: Option<&'a TenantSubscription>,
    pub old_object: Option<&'a TenantSubscription>,
}

/// What the caches know about the subscription's surroundings.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub listing: Option<&'a ListingSpec>,
    pub tenant: Option<&'a Tenant>,
    /// The namespace's subscriptions (the one under review may be included; it is skipped).
    pub siblings: &'a [Sibling],
    pub entitled_features: &'a BTreeSet<String>,
    pub platform_version: Option<&'a semver::Version>,
    /// A bundle member's BundleSubscription asks for cancellation (members end only with it).
    pub bundle_cancelling: bool,
}

/// The answer to the apiserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow {
        /// Why, for metrics: `Valid`, `Waits`, `SpecUnchanged`, `Deleting` or `NotChecked`.
        why: &'static str,
        /// Shown by kubectl as `Warning: ...`.
        warnings: Vec<String>,
    },
    Deny {
        /// The rule's reason, e.g. `PlanNotFound` (the Status reason kubectl prints).
        reason: &'static str,
        /// The field at fault, e.g. `spec.plan`.
        field: &'static str,
        /// `TenantSubscription <namespace>/<name>: <field>: <why and what to do>`.
        message: String,
    },
}

impl Verdict {
    fn allow(why: &'static str) -> Verdict {
        Verdict::Allow {
            why,
            warnings: Vec::new(),
        }
    }

    /// The label counted in `marketplace_admission_reviews_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            Verdict::Allow { why, .. } => why,
            Verdict::Deny { reason, .. } => reason,
        }
    }
}

/// The tenant a namespace belongs to (`tenant-<name>`), or the namespace itself when it does
/// not follow the convention (validation then finds no such tenant).
pub fn tenant_name(namespace: &str) -> &str {
    namespace
        .strip_prefix(TENANT_NAMESPACE_PREFIX)
        .unwrap_or(namespace)
}

/// Whether deciding `write` looks at [`Facts`] at all: writes that leave the spec alone (most
/// of them: status, finalizers) are answered without reading anything.
pub fn needs_facts(write: &Write<'_>) -> bool {
    let Some(new) = write.object else {
        return false;
    };
    match (write.operation, write.old_object) {
        _ if new.metadata.deletion_timestamp.is_some() => false,
        (Operation::Create, _) => true,
        (Operation::Update, Some(old)) => old.spec != new.spec,
        _ => false,
    }
}

/// Decides whether `write` may be stored.
pub fn decide_admission(write: &Write<'_>, facts: &Facts<'_>, now: Timestamp) -> Verdict {
    let Some(new) = write.object else {
        return Verdict::allow("NotChecked");
    };
    if new.metadata.deletion_timestamp.is_some() {
        // Finalizer removal and anything else on the way out must never be blocked.
        return Verdict::allow("Deleting");
    }
    let old = match (write.operation, write.old_object) {
        (Operation::Create, _) => None,
        (Operation::Update, Some(old)) => Some(old),
        _ => return Verdict::allow("NotChecked"),
    };
    let named = |field: &'static str, reason: &'static str, why: &str| Verdict::Deny {
        reason,
        field,
        message: format!(
            "TenantSubscription {}/{}: {field}: {why}",
            write.namespace,
            display_name(write.name, new)
        ),
    };
    if let Some(old) = old {
        if old.spec == new.spec {
            return Verdict::allow("SpecUnchanged");
        }
        if old.spec.cancellation.is_none()
            && new.spec.cancellation.is_some()
            && let Some(why) = member_cancel_refusal(&new.spec, facts.bundle_cancelling)
        {
            return named("spec.cancellation", "BundleMemberCancelledAlone", &why);
        }
        let phase = old.status.as_ref().and_then(|s| s.phase);
        match phase {
            Some(phase) if is_terminal(phase) => {
                let field = changed_field(&old.spec, &new.spec);
                return named(field, "SubscriptionEnded", &terminal_message(old, phase));
            }
            None | Some(Phase::Requested) => {}
            Some(_) => {
                // Live: billing follows the new plan, so the plan must exist and fit.
                let plan_moved =
                    old.spec.plan != new.spec.plan || old.spec.quantity != new.spec.quantity;
                return match facts.listing {
                    Some(listing) if plan_moved => match check_plan_change(&new.spec, listing) {
                        Ok(()) => Verdict::allow("Valid"),
                        Err(r) => named(r.field, r.reason, &r.message),
                    },
                    _ => Verdict::allow("Valid"),
                };
            }
        }
    }
    let created_at = match new.metadata.creation_timestamp.as_ref() {
        Some(t) => t.0,
        None => created_now(now, facts.siblings),
    };
    let request = RequestContext {
        name: write.name,
        created_at,
        spec: &new.spec,
        listing: facts.listing,
        tenant_name: tenant_name(write.namespace),
        tenant: facts.tenant,
        siblings: facts.siblings,
        entitled_features: facts.entitled_features,
        platform_version: facts.platform_version,
    };
    match validate_request(&request) {
        Ok(()) => Verdict::allow("Valid"),
        Err(refusal) if refusal.waits() => Verdict::Allow {
            why: "Waits",
            warnings: vec![waiting_warning(&refusal)],
        },
        Err(r) => named(r.field, r.reason, &r.message),
    }
}

/// The creation time of an object being created: now, but never before an existing sibling
/// (the apiserver's clock stamps those, and they are all older than this one).
fn created_now(now: Timestamp, siblings: &[Sibling]) -> Timestamp {
    let latest = siblings.iter().map(|s| s.created_at).max();
    match latest {
        Some(latest) if latest >= now => latest + SignedDuration::from_secs(1),
        _ => now,
    }
}

fn display_name<'a>(name: &'a str, object: &'a TenantSubscription) -> &'a str {
    if name.is_empty() {
        object.metadata.generate_name.as_deref().unwrap_or("")
    } else {
        name
    }
}

fn waiting_warning(refusal: &Refusal) -> String {
    format!(
        "{}: {}; the subscription waits in Requested until this is resolved",
        refusal.field, refusal.message
    )
}

fn terminal_message(old: &TenantSubscription, phase: Phase) -> String {
    let because = old
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| !c.message.is_empty())
        .map(|c| format!(" ({}: {})", c.reason, c.message))
        .unwrap_or_default();
    format!(
        "the subscription is {phase:?}{because} and is never reconciled again, so this change would have no effect; create a new TenantSubscription (or delete this one) instead"
    )
}

/// The first spec field that differs, as a tenant would name it.
fn changed_field(old: &TenantSubscriptionSpec, new: &TenantSubscriptionSpec) -> &'static str {
    if old.listing != new.listing {
        "spec.listing"
    } else if old.plan != new.plan {
        "spec.plan"
    } else if old.quantity != new.quantity {
        "spec.quantity"
    } else if old.trial != new.trial {
        "spec.trial"
    } else if old.connection != new.connection {
        "spec.connection"
    } else if old.cancellation != new.cancellation {
        "spec.cancellation"
    } else {
        "spec"
    }
}

#[cfg(test)]
mod tests;

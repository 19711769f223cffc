//! Buying through the API: what a purchase request becomes (a TenantSubscription and, for an
//! integration, its connection Secret), whether it may go through, and idempotency keys the way
//! Stripe defines them (same key and body: the same subscription; same key, another body: 422).
//! The key lives on the subscription it created, so every replica and every restart sees it for
//! as long as the subscription exists.

use std::collections::BTreeMap;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::catalog::{TenantFacts, shown_to};
use super::price::{self, QuotedPrice};
use crate::api::listing::{Listing, Plan};
use crate::api::shared::SecretRef;
use crate::api::tenant_subscription::{Connection, TenantSubscriptionSpec};
use crate::lifecycle::promotion::{self, Buyer, Offer};
use crate::lifecycle::validation::REQUEST_WINDOW;

/// Annotation: the Idempotency-Key the subscription was created with.
pub const IDEMPOTENCY_KEY_ANNOTATION: &str = "marketplace.dev/idempotency-key";
/// Annotation: the hash of the request body the key was first used with.
pub const REQUEST_HASH_ANNOTATION: &str = "marketplace.dev/request-hash";
/// Annotation: the sentence the buyer confirmed.
pub const CONFIRMED_ANNOTATION: &str = "marketplace.dev/confirmed-price";

/// `POST /v1/tenants/{tenant}/subscriptions`.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurchaseRequest {
    pub listing: String,
    pub plan: String,
    #[serde(default = "one")]
    pub quantity: i32,
    #[serde(default)]
    pub trial: bool,
    /// The price the buyer saw; required unless the plan is free.
    #[serde(default)]
    pub confirmed_price: Option<QuotedPrice>,
    /// An integration's connection settings (the wizard's fields), stored in a Secret.
    #[serde(default)]
    pub connection: Option<BTreeMap<String, String>>,
    /// An integration's field mapping (target field to source field), checked against the
    /// wizard's `fieldMapping` and kept in `spec.connection.fieldMapping`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_mapping: Option<BTreeMap<String, String>>,
    /// A promotion code the buyer entered; the confirmed price is then the promoted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_code: Option<String>,
}

fn one() -> i32 {
    1
}

/// Why a purchase is refused, as the API answers it.
#[derive(Debug, Clone, PartialEq)]
pub enum PurchaseRefusal {
    /// 404: no such listing for this tenant (hidden listings included: their existence is not
    /// revealed).
    ListingNotFound,
    /// 422: a rule of the subscription (the same as admission's), naming the field.
    Invalid {
        code: String,
        field: String,
        message: String,
    },
    /// 409: the subscription is not in a state that allows this (e.g. already cancelling).
    Conflict { code: String, message: String },
    /// 409: the price the buyer confirmed is not the plan's price now.
    PriceChanged {
        current: QuotedPrice,
        confirmation: String,
    },
    /// 429: the per-tenant purchase limit (one request per listing per window).
    TooSoon {
        retry_after_seconds: u64,
        message: String,
    },
}

/// What to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    pub spec: TenantSubscriptionSpec,
    /// The connection Secret's name and data, for integrations.
    pub connection_secret: Option<(String, BTreeMap<String, String>)>,
    pub confirmation: String,
}

/// The subscription name an idempotency key maps to: the same key for the same tenant always
/// names the same object, so a retry on any replica collides with the first attempt.
pub fn subscription_name(listing: &str, tenant: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}\n{key}").as_bytes());
    let suffix: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    let prefix: String = listing.chars().take(63 - 11).collect();
    format!("{}-{suffix}", prefix.trim_end_matches('-'))
}

/// The connection Secret of a subscription.
pub fn connection_secret_name(subscription: &str) -> String {
    let prefix: String = subscription.chars().take(63 - 11).collect();
    format!("{}-connection", prefix.trim_end_matches('-'))
}

/// A hash of the request body (its parsed form, so key order and spacing do not matter).
pub fn request_hash(request: &PurchaseRequest) -> String {
    let canonical = serde_json::to_vec(request).unwrap_or_default();
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An Idempotency-Key is 1 to 255 visible ASCII characters (Stripe's limit).
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A promotion code as a buyer typed it into a form: trimmed and upper-cased, as purchases
/// record codes; none when left blank.
pub fn entered_code(raw: Option<&str>) -> Option<String> {
    raw.map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
}

/// The promotion a purchase of `plan` of `listing` is priced with now: the best one on offer to
/// the tenant, those of `code` included. With a code, refused (422 `PromotionCodeInvalid`, field
/// `promotionCode`) when no promotion of that code is on offer for the plan to the tenant now.
pub fn priced_offer(
    listing: &str,
    plan: &Plan,
    facts: &TenantFacts<'_>,
    code: Option<&str>,
    now: Timestamp,
) -> Result<Option<Offer>, PurchaseRefusal> {
    if let Some(code) = code {
        let coded = facts
            .promotions
            .iter()
            .filter(|p| p.spec.code.as_deref() == Some(code))
            .map(|p| p.as_ref());
        let buyer = Buyer::of(&facts.tenant.spec);
        if promotion::offer(listing, plan, &buyer, coded, Some(code), now).is_none() {
            return Err(PurchaseRefusal::Invalid {
                code: "PromotionCodeInvalid".into(),
                field: "promotionCode".into(),
                message: format!(
                    "promotion code {code:?} is not on offer for {listing}/{} to this tenant now (unknown, expired, or for other plans, segments or regions)",
                    plan.name
                ),
            });
        }
    }
    Ok(facts.offer(listing, plan, code, now))
}

/// Decides a purchase from the cached facts: the listing must be visible to the tenant, the
/// subscription must pass the same rules admission applies, and the confirmed price must be
/// the plan's price now.
pub fn decide_purchase(
    request: &PurchaseRequest,
    subscription_name: &str,
    listing: Option<&Listing>,
    facts: &TenantFacts<'_>,
    now: Timestamp,
) -> Result<Purchase, PurchaseRefusal> {
    let listing = listing
        .filter(|l| shown_to(l, facts))
        .ok_or(PurchaseRefusal::ListingNotFound)?;
    let invalid = |code: &str, field: &str, message: String| PurchaseRefusal::Invalid {
        code: code.to_string(),
        field: field.to_string(),
        message,
    };
    let secret_name = connection_secret_name(subscription_name);
    let spec = TenantSubscriptionSpec {
        listing: request.listing.as_str().into(),
        plan: request.plan.as_str().into(),
        quantity: request.quantity,
        trial: request.trial,
        connection: request.connection.as_ref().map(|_| Connection {
            secret_ref: SecretRef {
                name: secret_name.clone(),
            },
            field_mapping: request.field_mapping.clone().unwrap_or_default(),
        }),
        promotion_code: request
            .promotion_code
            .as_deref()
            .map(|c| c.trim().to_ascii_uppercase()),
        cancellation: None,
        bundle: None,
    };
    let siblings = facts.siblings(now);
    if let Err(refusal) = facts.validate(subscription_name, &spec, listing, &siblings, now) {
        if refusal.reason == "RateLimited" {
            let last = siblings
                .iter()
                .filter(|s| s.listing == request.listing && s.name != subscription_name)
                .map(|s| s.created_at)
                .max()
                .unwrap_or(now);
            let wait = (last + REQUEST_WINDOW).duration_since(now).as_secs().max(1);
            return Err(PurchaseRefusal::TooSoon {
                retry_after_seconds: u64::try_from(wait).unwrap_or(1),
                message: refusal.message,
            });
        }
        let field = match refusal.field {
            "spec.plan" => "plan",
            "spec.quantity" => "quantity",
            "spec.trial" => "trial",
            "spec.connection.secretRef" => "connection",
            _ => "listing",
        };
        return Err(invalid(refusal.reason, field, refusal.message));
    }
    if request.connection.is_some() && listing.spec.integration.is_none() {
        return Err(invalid(
            "ConnectionNotExpected",
            "connection",
            format!(
                "{} is not an integration; send no connection settings",
                request.listing
            ),
        ));
    }
    // validate_request found the plan.
    let Some(plan) = listing.spec.plans.iter().find(|p| p.name == spec.plan) else {
        return Err(invalid("PlanNotFound", "plan", "no such plan".into()));
    };
    let code = spec.promotion_code.as_deref();
    let offer = priced_offer(request.listing.as_str(), plan, facts, code, now)?;
    let priced = price::promoted_plan(plan, offer.as_ref());
    let confirmation = price::promoted_confirmation(plan, request.quantity, offer.as_ref());
    let free = price::is_free(&priced.pricing);
    match &request.confirmed_price {
        Some(quote) if quote.matches(&priced.pricing) => {}
        None if free => {}
        Some(_) => {
            return Err(PurchaseRefusal::PriceChanged {
                current: QuotedPrice::of(&priced.pricing),
                confirmation,
            });
        }
        None => {
            return Err(invalid(
                "PriceNotConfirmed",
                "confirmedPrice",
                format!(
                    "send the price the buyer confirmed: {{amount: {:?}, currency: {:?}, interval: {:?}}} ({confirmation})",
                    priced.pricing.amount, priced.pricing.currency, priced.pricing.interval
                ),
            ));
        }
    }
    Ok(Purchase {
        connection_secret: request.connection.clone().map(|data| (secret_name, data)),
        spec,
        confirmation,
    })
}

#[cfg(test)]
#[path = "purchase_tests.rs"]
mod tests;

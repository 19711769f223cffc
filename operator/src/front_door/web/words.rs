//! The tenant's words for what the catalog decides: a state pill, a primary action, a phase in
//! a timeline. A tenant never reads "superadmin" or "manual approval": a request is "pending
//! review", an invoice "issued", a paid request "awaiting activation".

use jiff::Timestamp;

use crate::api::listing::{Activation, ListingType};
use crate::api::tenant_subscription::Phase;
use crate::front_door::storefront::catalog::{Card, CardState};

/// A phase as a tenant reads it.
pub fn phase_words(phase: Phase) -> &'static str {
    match phase {
        Phase::Requested => "Pending review",
        Phase::Invoiced => "Invoice issued",
        Phase::Paid => "Awaiting activation",
        Phase::Provisioning => "Setting up",
        Phase::Trialing => "Installed (trial)",
        Phase::Active => "Installed",
        Phase::Suspended => "Payment failed",
        Phase::CancelRequested => "Cancellation pending",
        Phase::Cancelled => "Cancelled",
        Phase::Rejected => "Declined",
        Phase::Failed => "Could not be set up",
    }
}

/// The pill of a card: its words and its style class.
pub fn pill(state: &CardState) -> (String, &'static str) {
    match state {
        CardState::Available => ("Available".into(), "available"),
        CardState::Installed { trial: true, .. } => ("Installed (trial)".into(), "installed"),
        CardState::Installed { .. } => ("Installed".into(), "installed"),
        CardState::Pending { phase, .. } => (phase_words(*phase).into(), "pending"),
        CardState::Suspended { .. } => ("Payment failed".into(), "suspended"),
        CardState::CancelRequested { .. } => ("Cancellation pending".into(), "pending"),
        CardState::ComingSoon => ("Coming soon".into(), "soon"),
        CardState::Locked { .. } => ("Locked".into(), "locked"),
    }
}

/// What the primary button of an available listing says, by type and activation.
pub fn buy_verb(type_: ListingType, activation: Activation) -> &'static str {
    match (type_, activation) {
        (ListingType::Partner, _) => "Visit partner",
        (_, Activation::Approval) => "Request",
        (ListingType::Integration, _) => "Connect",
        (ListingType::InApp, _) => "Add",
    }
}

/// The primary action of a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Primary {
    /// Go to the buying flow (needs the right to buy).
    Buy(&'static str),
    /// The partner's site (anyone may go; nothing is billed).
    Partner,
    /// Manage an installed or cancelling add-on.
    Manage,
    /// Follow a request that is on its way.
    Follow,
    /// Nothing to do yet: the words on the disabled button.
    Disabled(&'static str),
}

pub fn primary(card: &Card) -> Primary {
    match &card.state {
        CardState::Available if card.type_ == ListingType::Partner => Primary::Partner,
        CardState::Available => Primary::Buy(buy_verb(card.type_, card.activation)),
        CardState::Installed { .. } | CardState::CancelRequested { .. } => Primary::Manage,
        CardState::Suspended { .. } => Primary::Manage,
        CardState::Pending { .. } => Primary::Follow,
        CardState::ComingSoon => Primary::Disabled("Coming soon"),
        CardState::Locked { .. } => Primary::Disabled("Locked"),
    }
}

/// "updated today", "updated 1 day ago", "updated 12 days ago" from a `YYYY-MM-DD` date.
pub fn updated_ago(date: &str, now: Timestamp) -> Option<String> {
    let day: jiff::civil::Date = date.parse().ok()?;
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let days = (today - day).get_days();
    Some(match days {
        i32::MIN..=0 => "updated today".into(),
        1 => "updated 1 day ago".into(),
        n => format!("updated {n} days ago"),
    })
}

/// A timestamp as a date a person reads ("2026-12-03").
pub fn date(at: Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::UTC).date().to_string()
}

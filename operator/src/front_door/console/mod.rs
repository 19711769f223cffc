//! The superadmin console's API: the approval inbox across tenants, the ladder's actions (each
//! a SubscriptionAction created as the caller) and a tenant's support view. Superadmins are
//! whoever may create SubscriptionActions in the operator's namespace. Decisions are pure
//! ([`inbox`], [`support`]); [`routes`] gathers and acts.

pub mod inbox;
pub mod routes;
pub mod support;

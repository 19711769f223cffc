//! Tenant health and revenue for finance and customer success: pure functions over the cached
//! objects (time as an argument). The API ([`crate::front_door::health_routes`]) and the
//! console gather the facts and render what these decide.
//!
//! - [`policy`]: which HealthPolicy's thresholds apply to a base plan, and conflicts between
//!   policies.
//! - [`assess`]: one tenant's add-ons, feature adoption, usage against included quantities,
//!   payment problems and cancellations, and its verdict (AtRisk, UpsellReady, Healthy).
//! - [`revenue`]: monthly recurring revenue by listing, plan and currency.
//! - [`filter`]: the query parameters of the health and revenue routes, checked.
//! - [`csv`]: both as CSV.

pub mod assess;
pub mod csv;
pub mod filter;
pub mod policy;
pub mod revenue;
#[cfg(test)]
mod tests;

pub use assess::{TenantHealth, Verdict, assess};
pub use policy::{PolicyBook, PolicyProblem};
pub use revenue::{Revenue, mrr};

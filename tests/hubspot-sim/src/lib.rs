//! A local simulator of HubSpot's public API (CRM objects, properties, associations, commerce
//! subscriptions, rate limits, webhooks) for testing the operator's HubSpot client.
//! It follows the HubSpot contract (`shared/notes/hubspot-contract.md`, beside the project); comments cite its sections.
//! It shares no code with the operator: a misunderstanding of HubSpot must not hide in both.
#![forbid(unsafe_code)]

pub mod admin;
pub mod associations;
pub mod billing;
pub mod clock;
pub mod config;
pub mod cycle_index;
pub mod delivery;
pub mod error;
pub mod faults;
pub mod model;
pub mod persist;
pub mod properties;
pub mod ratelimit;
pub mod rng;
pub mod routes;
pub mod search;
pub mod server;
pub mod state;
pub mod value_index;
pub mod webhooks;

pub use admin::SimHandle;
pub use config::{SimConfig, Tier};
pub use error::SimError;
pub use faults::{FaultKind, FaultRule, ValidationRule};
pub use model::ObjectType;
pub use server::{RunningSimulator, Simulator};
pub use webhooks::WebhookFaults;

//! The marketplace's front door: the HTTP API product code calls (`marketplace api`). Named so
//! because [`crate::api`] already holds the custom resource types. It answers entitlement checks
//! over REST and over OFREP (OpenFeature's remote evaluation protocol) from the shared caches
//! ([`crate::runtime::Stores`]) alone; Kubernetes decides who may read what ([`auth`]).
//!
//! - [`decide`], [`ofrep`] and [`sse`]: the answers and the change stream's events, as pure
//!   functions.
//! - [`tenant_index`]: every tenant's entitlements by tenant and feature, kept current from the
//!   caches by [`live_index`] (with the catalog's feature set).
//! - [`auth`]: TokenReview and SubjectAccessReview, cached ([`review_cache`]); backend keys
//!   ([`api_keys`]); per-tenant read rates ([`read_limits`]).
//! - [`routes`] and [`stream`]: the handlers, which only gather and render.
//! - [`openapi_document`]: the OpenAPI document of all of it, served at `/openapi.json`.
//! - [`web`]: the storefront in the browser (server-rendered HTML over the same deciders).
//! - [`metering_routes`]: usage events in (`POST /v1/usage`), a tenant's usage out, and the
//!   allowances a hard-limited feature's check depends on ([`crate::metering`]).
//! - [`health_routes`]: tenant health and MRR for superadmins ([`crate::health`]).

pub mod api_keys;
pub mod auth;
pub mod console;
pub mod credit_routes;
pub mod decide;
pub mod health_routes;
pub mod impersonation;
#[cfg(test)]
mod key_routes_tests;
pub mod live_index;
pub mod metering_routes;
pub mod ofrep;
pub mod openapi_document;
pub mod read_limits;
pub mod review_cache;
pub mod routes;
#[cfg(test)]
mod routes_tests;
pub mod sse;
pub mod storefront;
pub mod stream;
pub mod tenant_index;
pub mod usage;
pub mod web;

pub use auth::{Authorizer, ReviewCacheSettings};
pub use routes::{FrontDoor, router};
pub use stream::StreamSettings;

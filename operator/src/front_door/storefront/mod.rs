//! The storefront API for the SaaS's own UI: the catalog as one tenant sees it, a listing's
//! detail, and buying. Decisions are pure ([`catalog`], [`price`]); the handlers gather.

pub mod bundle_offers;
pub mod bundles;
pub mod catalog;
pub mod changes;
pub mod detail;
pub mod navigation;
pub mod price;
pub mod purchase;
pub mod routes;
pub mod wizard;

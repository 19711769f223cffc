//! The reference web UI of the storefront, served by `marketplace api` itself: server-rendered
//! HTML from the same pure functions the JSON API answers with ([`super::storefront`]), plus a
//! little own JavaScript (embedded, like the CSS) that writes through the JSON API, listens to
//! the entitlement stream and refreshes the parts of a page that change.
//!
//! - [`html`], [`words`], [`markdown`], [`theme`], [`links`]: escaping, the tenant's words for
//!   states, safe Markdown, the white-label theme ([`theme_file`]: from a file and flags), where
//!   links point (the server, or a static preview's files). Pure.
//! - [`catalog_page`], [`detail_page`], [`subscriptions_page`], [`bundle_page`]: the pages, as
//!   pure functions of plain view data; [`preview`] and [`changes_page`] render them as static files for
//!   `marketplace catalog preview`.
//! - [`promotion_code`]: the promotion code field of the buy forms.
//! - [`oidc`] and [`oidc_flow`]: signing in through the OIDC provider (code flow + PKCE).
//! - [`session`]: signing in (a bearer token in an HttpOnly cookie, or a proxy's
//!   `Authorization`), CSRF checks on every state-changing request.
//! - [`console_page`] and [`console_handlers`]: the superadmin console (`/admin`);
//!   [`health_page`]: its tenant health and MRR page (`/admin/health`).
//! - [`handlers`] and [`bundle_handlers`]: gather from the caches, ask the storefront's
//!   deciders, render.

pub mod assets;
pub mod bundle_handlers;
pub mod bundle_page;
pub mod catalog_page;
pub mod changes_page;
pub mod console_handlers;
pub mod console_page;
pub mod detail_page;
pub mod forms;
pub mod handlers;
pub mod health_page;
pub mod html;
pub mod links;
pub mod markdown;
pub mod oidc;
pub mod oidc_flow;
pub mod preview;
pub mod promotion_code;
pub mod session;
pub mod subscriptions_page;
#[cfg(test)]
mod tests;
pub mod theme;
pub mod theme_file;
pub mod words;

pub use theme::Theme;

/// What the web UI is configured with (`--web-*` flags of `marketplace api`).
#[derive(Clone, Debug, Default)]
pub struct WebSettings {
    pub theme: Theme,
    /// Signing in through the organisation's OIDC provider; none: tokens and proxies only.
    pub oidc: Option<oidc::OidcSettings>,
}

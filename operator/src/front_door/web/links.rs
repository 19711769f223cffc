//! Where a page's links point: the live server's paths, or the files of a static catalog
//! preview (`marketplace catalog preview`), which sit in one folder so that every link is a
//! file name that works from `file://` or an uploaded CI artifact.

use super::html::url_part;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Links {
    #[default]
    Live,
    Static,
}

impl Links {
    pub fn is_static(self) -> bool {
        self == Links::Static
    }

    /// A tenant's storefront index.
    pub fn marketplace(self, tenant: &str) -> String {
        match self {
            Links::Live => format!("/t/{}/marketplace", url_part(tenant)),
            Links::Static => "index.html".into(),
        }
    }

    /// A listing's detail page (a deep link Sales can send).
    pub fn detail(self, tenant: &str, listing: &str) -> String {
        match self {
            Links::Live => format!("/t/{}/marketplace/{}", url_part(tenant), url_part(listing)),
            Links::Static => Self::detail_file(listing),
        }
    }

    /// The file a static preview writes a listing's page to.
    pub fn detail_file(listing: &str) -> String {
        format!("listing-{}.html", url_part(listing))
    }

    /// A bundle's page.
    pub fn bundle(self, tenant: &str, bundle: &str) -> String {
        match self {
            Links::Live => format!("/t/{}/bundles/{}", url_part(tenant), url_part(bundle)),
            Links::Static => Self::bundle_file(bundle),
        }
    }

    /// The file a static preview writes a bundle's page to.
    pub fn bundle_file(bundle: &str) -> String {
        format!("bundle-{}.html", url_part(bundle))
    }

    /// A tenant's subscriptions; a preview has none, so it points at the index.
    pub fn subscriptions(self, tenant: &str) -> String {
        match self {
            Links::Live => format!("/t/{}/subscriptions", url_part(tenant)),
            Links::Static => "index.html".into(),
        }
    }

    pub fn stylesheet(self) -> &'static str {
        match self {
            Links::Live => "/web/assets/site.css",
            Links::Static => "site.css",
        }
    }
}

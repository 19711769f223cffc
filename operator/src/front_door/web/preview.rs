//! A catalog folder as static storefront pages (`marketplace catalog preview`): the index (with
//! its band of bundles), each listing's and each bundle's page from the same page functions and
//! the same offers the live UI serves, as a tenant with no add-ons sees them (promotions that
//! need no code, segment or region applied), plus `changes.html` and the stylesheet. Pure: the
//! command writes the files this returns. No script: the pages are for reading, from `file://`
//! or a CI artifact.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::json;

use super::catalog_page::{self, Viewer};
use super::changes_page::{self, Revisions};
use super::html::{Frame, page};
use super::links::Links;
use super::{assets, bundle_page, detail_page, theme::Theme};
use crate::api::listing::Listing;
use crate::api::tenant::Tenant;
use crate::api::wizard_config::WizardConfig;
use crate::api::{Bundle, Promotion};
use crate::catalog::diff::CatalogDiff;
use crate::front_door::storefront::bundle_offers::{
    BundleOffer, BundleStanding, Promoting, bundle_offers,
};
use crate::front_door::storefront::catalog::{
    CatalogQuery, MAX_PAGE_SIZE, TenantFacts, catalog_page,
};
use crate::front_door::storefront::detail::listing_detail;
use crate::lifecycle::promotion::Buyer;

/// The tenant a preview shows the catalog to: no add-ons yet, and internal, so Internal
/// listings show too.
pub const PREVIEW_TENANT: &str = "preview";

/// What a preview is rendered from.
pub struct PreviewInput<'a> {
    /// The catalog as the change leaves it.
    pub listings: &'a [Listing],
    pub wizards: &'a [WizardConfig],
    pub bundles: &'a [Bundle],
    /// The catalog's promotions: those a tenant gets without a code, segment or region apply.
    pub promotions: &'a [Promotion],
    pub diff: &'a CatalogDiff,
    pub revisions: &'a Revisions,
    pub theme: &'a Theme,
    pub now: Timestamp,
}

/// A file of the preview: its name in the output folder and its contents.
pub type PreviewFile = (String, String);

fn preview_tenant() -> Tenant {
    let spec = serde_json::from_value(json!({
        "displayName": "Preview",
        "basePlan": "",
        "internal": true,
        "billingContact": {"name": "Preview", "email": "preview@example.com"},
    }))
    .unwrap_or_else(|e| unreachable!("a fixed tenant spec: {e}"));
    Tenant::new(PREVIEW_TENANT, spec)
}

fn arcs<T: Clone>(items: &[T]) -> Vec<Arc<T>> {
    items.iter().cloned().map(Arc::new).collect()
}

/// The bundles on offer to the preview tenant, as the live storefront offers them to a tenant
/// (promotions it reaches included), each available (it has no add-ons).
fn bundle_offers_of(
    input: &PreviewInput<'_>,
    tenant: &Tenant,
    promotions: &[Arc<Promotion>],
) -> Vec<(BundleOffer, BundleStanding)> {
    let bundles: Vec<Arc<Bundle>> = arcs(input.bundles);
    let listings: Vec<Arc<Listing>> = arcs(input.listings);
    let promoting = Promoting {
        buyer: Buyer::of(&tenant.spec),
        promotions,
        code: None,
        now: input.now,
    };
    bundle_offers(
        &bundles,
        &listings,
        crate::lifecycle::visibility::Viewer::of(PREVIEW_TENANT, tenant),
        &promoting,
    )
    .into_iter()
    .map(|offer| (offer, BundleStanding::Available))
    .collect()
}

/// Every page and the stylesheet.
pub fn render_site(input: &PreviewInput<'_>) -> Vec<PreviewFile> {
    let tenant = preview_tenant();
    let features = Default::default();
    let promotions = arcs(input.promotions);
    let facts = TenantFacts {
        name: PREVIEW_TENANT,
        tenant: &tenant,
        subscriptions: &[],
        entitled_features: &features,
        promotions: &promotions,
    };
    let viewer = Viewer {
        tenant: PREVIEW_TENANT.into(),
        may_buy: true,
        may_change: false,
        who_can_buy: String::new(),
        now: input.now,
        links: Links::Static,
        form: Default::default(),
    };
    let frame = Frame {
        theme: input.theme.clone(),
        tenant: Some(PREVIEW_TENANT.into()),
        tenant_display_name: "Preview".into(),
        links: Links::Static,
        ..Frame::default()
    };
    let query = CatalogQuery {
        page_size: Some(MAX_PAGE_SIZE),
        ..CatalogQuery::default()
    };
    let cards = catalog_page(input.listings, &facts, &query, input.now);
    let notice = format!(
        "<p class=\"note\">Preview of {}: <a href=\"changes.html\">what this change adds, changes and retires</a>.</p>",
        super::html::escape(&input.revisions.head)
    );
    let bundles = bundle_offers_of(input, &tenant, &promotions);
    let band = bundle_page::offers_section(&bundles, &viewer);
    let index = format!(
        "{notice}{}",
        catalog_page::render(&cards, &query, &band, &viewer)
    );
    let mut files = vec![
        ("site.css".to_string(), assets::SITE_CSS.to_string()),
        ("index.html".to_string(), page(&frame, "Add-ons", &index)),
        (
            "changes.html".to_string(),
            page(
                &frame,
                "Catalog changes",
                &changes_page::render(input.diff, input.revisions),
            ),
        ),
    ];
    // Every listing gets its page, Draft and private ones too: reviewers read them before
    // they are shown to anyone.
    for listing in input.listings {
        let name = listing.metadata.name.clone().unwrap_or_default();
        let detail = listing_detail(listing, &facts, input.now);
        let wizard = listing.spec.integration.as_ref().and_then(|i| {
            input
                .wizards
                .iter()
                .find(|w| w.metadata.name.as_deref() == Some(i.wizard_config_ref.as_str()))
        });
        let main = format!(
            "{notice}{}",
            detail_page::render(
                &detail,
                wizard.map(|w| &w.spec),
                &viewer,
                &Default::default(),
            )
        );
        files.push((
            Links::detail_file(&name),
            page(&frame, &detail.card.display_name, &main),
        ));
    }
    for (offer, standing) in &bundles {
        let main = format!(
            "{notice}{}",
            bundle_page::render_detail(
                offer,
                standing,
                &[],
                &BTreeMap::new(),
                &viewer,
                &Default::default(),
            )
        );
        files.push((
            Links::bundle_file(&offer.name),
            page(&frame, &offer.display_name, &main),
        ));
    }
    files
}

#[cfg(test)]
#[path = "preview_tests.rs"]
mod tests;

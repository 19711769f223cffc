//! A catalog folder as static storefront pages (`marketplace catalog preview`): the index and
//! each listing's detail page from the same page functions the live UI serves, as a tenant with
//! no add-ons sees them, plus `changes.html` and the stylesheet. Pure: the command writes the
//! files this returns. No script: the pages are for reading, from `file://` or a CI artifact.

use jiff::Timestamp;
use serde_json::json;

use super::catalog_page::{self, Viewer};
use super::changes_page::{self, Revisions};
use super::html::{Frame, page};
use super::links::Links;
use super::{assets, detail_page, theme::Theme};
use crate::api::listing::Listing;
use crate::api::tenant::Tenant;
use crate::api::wizard_config::WizardConfig;
use crate::catalog::diff::CatalogDiff;
use crate::front_door::storefront::catalog::{
    CatalogQuery, MAX_PAGE_SIZE, TenantFacts, catalog_page,
};
use crate::front_door::storefront::detail::listing_detail;

/// The tenant a preview shows the catalog to: no add-ons yet, and internal, so Internal
/// listings show too.
pub const PREVIEW_TENANT: &str = "preview";

/// What a preview is rendered from.
pub struct PreviewInput<'a> {
    /// The catalog as the change leaves it.
    pub listings: &'a [Listing],
    pub wizards: &'a [WizardConfig],
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

/// Every page and the stylesheet.
pub fn render_site(input: &PreviewInput<'_>) -> Vec<PreviewFile> {
    let tenant = preview_tenant();
    let features = Default::default();
    let facts = TenantFacts {
        name: PREVIEW_TENANT,
        tenant: &tenant,
        subscriptions: &[],
        entitled_features: &features,
        promotions: &[],
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
    let index = format!(
        "{notice}{}",
        catalog_page::render(&cards, &query, "", &viewer)
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
    files
}

use super::*;
use crate::api::promotion::PromotionSpec;
use crate::lifecycle::fixtures::{listing, ts};

const NOW: &str = "2026-03-02T00:00:00Z";

fn listings() -> Vec<Listing> {
    let priced = |name: &str, shown: &str, amount: &str| {
        let spec = listing(&format!(
            "{{displayName: \"{shown}\", plans: [{{name: pro, displayName: Pro, pricing: {{model: Flat, amount: \"{amount}\", currency: USD, interval: Month}}}}]}}"
        ));
        Listing::new(name, spec)
    };
    vec![
        priced("routes", "Routes", "30.00"),
        priced("reports", "Reports <b>", "10.00"),
    ]
}

fn suite() -> Bundle {
    let spec = serde_saphyr::from_str(
        "{displayName: Suite, description: Routes and reports, members: [{listing: routes, plan: pro}, {listing: reports, plan: pro}], discount: {percentage: 10}}",
    )
    .unwrap();
    Bundle::new("suite", spec)
}

fn promotion(name: &str, yaml: &str) -> Promotion {
    let base = format!(
        "startsAt: \"2026-03-01T00:00:00Z\"\nendsAt: \"2026-03-08T00:00:00Z\"\nperiods: 2\n{yaml}"
    );
    let spec: PromotionSpec = serde_saphyr::from_str(&base).unwrap();
    Promotion::new(name, spec)
}

/// The preview's files of `bundles` and `promotions` with the two listings, by name.
fn site(bundles: &[Bundle], promotions: &[Promotion]) -> BTreeMap<String, String> {
    let listings = listings();
    let input = PreviewInput {
        listings: &listings,
        wizards: &[],
        bundles,
        promotions,
        diff: &CatalogDiff::default(),
        revisions: &Revisions {
            base: None,
            head: "catalog".into(),
        },
        theme: &Theme::default(),
        now: ts(NOW),
    };
    render_site(&input).into_iter().collect()
}

#[test]
fn bundles_show_on_the_index_and_on_their_own_page_with_members_and_prices() {
    let files = site(&[suite()], &[]);
    let index = &files["index.html"];
    let band = index
        .split("aria-labelledby=\"bundles-h\"")
        .nth(1)
        .expect("the band of bundles");
    for words in [
        "id=\"bundle-suite\"",
        "<a href=\"bundle-suite.html\">Suite</a>",
        "<a href=\"listing-routes.html\">Routes</a> · Pro",
        "Reports &lt;b&gt;</a> · Pro",
        "<p class=\"price\">$36.00/mo</p>",
        "List total $40.00/mo",
        "You save $4.00/mo (10% off every add-on)",
        "href=\"bundle-suite.html#buy\"",
    ] {
        assert!(band.contains(words), "{words}: {band}");
    }
    let page = files.get("bundle-suite.html").expect("the bundle's page");
    for words in [
        "<h1>Suite</h1>",
        "What the bundle includes",
        "<a href=\"listing-routes.html\">Routes</a></th><td>Pro</td><td>$30.00/mo</td><td>$27.00/mo</td>",
        "<td>$40.00/mo</td><td>$36.00/mo</td></tr></tfoot>",
        "href=\"index.html\">All add-ons",
    ] {
        assert!(page.contains(words), "{words}: {page}");
    }
    assert!(!page.contains("<b>"), "catalog text escaped: {page}");
    assert!(!page.contains("action=\"/forms"), "a preview posts nowhere");
    assert!(!page.contains("<script"), "no script in a preview");
}

#[test]
fn a_catalog_without_bundles_has_no_band() {
    let files = site(&[], &[]);
    assert!(!files["index.html"].contains("bundles-h"));
    assert!(!files.keys().any(|f| f.starts_with("bundle-")));
}

#[test]
fn promotions_apply_as_the_live_storefront_applies_them_to_a_tenant_without_a_code() {
    let promotions = [
        promotion(
            "suite-week",
            "displayName: Suite week\nbundles: [suite]\ndiscount: {price: \"30.00\"}",
        ),
        promotion(
            "reports-launch",
            "displayName: Reports launch\ntargets: [{listing: reports}]\ndiscount: {percentage: 50}",
        ),
        // Behind a code, or for a segment: not what a tenant sees without them.
        promotion(
            "routes-code",
            "displayName: Routes code\ntargets: [{listing: routes}]\ndiscount: {percentage: 50}\ncode: ROUTES",
        ),
        promotion(
            "routes-smb",
            "displayName: Routes for small fleets\ntargets: [{listing: routes}]\ndiscount: {percentage: 40}\nsegments: [smb]",
        ),
    ];
    let files = site(&[suite()], &promotions);
    let index = &files["index.html"];
    let card = index
        .split("id=\"bundle-suite\"")
        .nth(1)
        .and_then(|c| c.split("</article>").next())
        .expect("the bundle's card");
    assert!(card.contains("<p class=\"price\">$30.00/mo</p>"), "{card}");
    assert!(
        card.contains("Suite week until 2026-03-08, then $36.00/mo"),
        "{card}"
    );
    let page = &files["bundle-suite.html"];
    assert!(
        page.contains("data-confirm=\"Confirm addition of $30.00/mo to your bill for Suite?"),
        "{page}"
    );
    let reports = &files["listing-reports.html"];
    assert!(
        reports.contains("Reports launch until 2026-03-08"),
        "{reports}"
    );
    let routes = &files["listing-routes.html"];
    assert!(!routes.contains("Routes code"), "{routes}");
    assert!(!routes.contains("small fleets"), "{routes}");
}

use super::*;
use crate::api::tenant_subscription::TenantSubscriptionStatus;
use crate::lifecycle::fixtures::{listing, subscription, tenant, ts};

const NOW: &str = "2026-12-01T12:00:00Z";

fn named(name: &str, extra: &str) -> Listing {
    Listing::new(name, listing(extra))
}

fn sub(name: &str, listing: &str, phase: Option<Phase>) -> TenantSubscription {
    let mut s = TenantSubscription::new(
        name,
        subscription(&format!("{{listing: {listing}, plan: flat}}")),
    );
    s.metadata.namespace = Some("tenant-acme".into());
    s.status = phase.map(|phase| TenantSubscriptionStatus {
        phase: Some(phase),
        ..Default::default()
    });
    s
}

fn state_of(listing: &Listing, subs: &[&TenantSubscription], tenant: &Tenant) -> CardState {
    let features = BTreeSet::new();
    let facts = TenantFacts {
        name: "acme",
        tenant,
        subscriptions: subs,
        entitled_features: &features,
        promotions: &[],
    };
    card_state(listing, &facts, ts(NOW))
}

#[test]
fn a_listing_reads_as_its_live_subscription_says() {
    let acme = Tenant::new("acme", tenant("Professional"));
    let route = named("route", "");
    assert_eq!(state_of(&route, &[], &acme), CardState::Available);
    let cases = [
        (Phase::Active, "Installed"),
        (Phase::Trialing, "Installed"),
        (Phase::Invoiced, "Pending"),
        (Phase::Provisioning, "Pending"),
        (Phase::Suspended, "Suspended"),
        (Phase::CancelRequested, "CancelRequested"),
        (Phase::Cancelled, "Available"),
        (Phase::Rejected, "Available"),
    ];
    for (phase, expected) in cases {
        let s = sub("s1", "route", Some(phase));
        assert_eq!(state_of(&route, &[&s], &acme).name(), expected, "{phase:?}");
    }
    let fresh = sub("s1", "route", None);
    assert_eq!(
        state_of(&route, &[&fresh], &acme),
        CardState::Pending {
            phase: Phase::Requested,
            subscription: "s1".into()
        }
    );
}

#[test]
fn locked_listings_say_what_would_unlock_them() {
    let starter = Tenant::new("acme", tenant("Starter"));
    let enterprise_only = named("big", "availableOnPlans: [Enterprise]");
    let CardState::Locked { reason, message } = state_of(&enterprise_only, &[], &starter) else {
        panic!("expected Locked");
    };
    assert_eq!(reason, "BasePlanNotAllowed");
    assert!(message.contains("Enterprise"), "{message}");
    let needs_route = named("addon", "requires: {listings: [route]}");
    assert_eq!(state_of(&needs_route, &[], &starter).name(), "Locked");
    let route_sub = sub("r1", "route", Some(Phase::Active));
    assert_eq!(
        state_of(&needs_route, &[&route_sub], &starter),
        CardState::Available
    );
    let soon = named("soon", "lifecycle: ComingSoon");
    assert_eq!(state_of(&soon, &[], &starter), CardState::ComingSoon);
}

#[test]
fn the_catalog_shows_only_what_the_tenant_may_see_filtered_and_paged() {
    let acme = Tenant::new("acme", tenant("Professional"));
    let listings = [
        named("zeta", "{displayName: Zeta Maps, tagline: Maps for fleets}"),
        named(
            "alpha",
            "{displayName: Alpha Chat, category: Communication}",
        ),
        named("star", "{displayName: Star, featured: true}"),
        named("draft", "lifecycle: Draft"),
        named("archived", "lifecycle: Archived"),
        named("staff", "visibility: Internal"),
        named("mine", "{visibility: Private, audience: {tenants: [acme]}}"),
        named(
            "theirs",
            "{visibility: Private, audience: {tenants: [globex]}}",
        ),
    ];
    let features = BTreeSet::new();
    let facts = TenantFacts {
        name: "acme",
        tenant: &acme,
        subscriptions: &[],
        entitled_features: &features,
        promotions: &[],
    };
    let names = |query: CatalogQuery| -> Vec<String> {
        catalog_page(&listings, &facts, &query, ts(NOW))
            .items
            .into_iter()
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(
        names(CatalogQuery::default()),
        ["star", "alpha", "mine", "zeta"]
    );
    let q = |q: &str| CatalogQuery {
        q: Some(q.into()),
        ..Default::default()
    };
    assert_eq!(names(q("maps FLEETS")), ["zeta"]);
    assert_eq!(names(q("maps chat")), Vec::<String>::new());
    let chat = CatalogQuery {
        category: Some(Category::Communication),
        ..Default::default()
    };
    assert_eq!(names(chat), ["alpha"]);
    let second_page = CatalogQuery {
        page: Some(2),
        page_size: Some(3),
        ..Default::default()
    };
    let page = catalog_page(&listings, &facts, &second_page, ts(NOW));
    assert_eq!((page.total, page.items.len()), (4, 1));
    assert_eq!(page.items[0].name, "zeta");
}

#[test]
fn a_card_carries_its_price_and_newest_release() {
    let l = named(
        "route",
        "releases: [{version: 1.0.0, date: '2026-01-01', summary: First}, {version: 1.2.0, date: '2026-06-01', summary: Faster}]",
    );
    assert_eq!(
        price_summary(&l).as_deref(),
        Some("from $12.00 per vehicle/mo")
    );
    assert_eq!(
        newest_release(&l).map(|r| r.version.as_str()),
        Some("1.2.0")
    );
}

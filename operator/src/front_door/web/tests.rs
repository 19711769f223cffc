//! The web UI's renderers and checks, without a cluster.

use std::collections::BTreeSet;

use axum::http::{HeaderMap, HeaderValue, Method, header};

use super::catalog_page::{self, Viewer};
use super::detail_page;
use super::html::{Frame, escape, page};
use super::markdown;
use super::session::{CsrfRefusal, check_request, csrf_token, safe_next, same_origin};
use super::theme::{Theme, contrast};
use crate::api::listing::Listing;
use crate::api::tenant::Tenant;
use crate::api::tenant_subscription::Phase;
use crate::front_door::storefront::catalog::{
    CardState, CatalogPage, CatalogQuery, TenantFacts, card,
};
use crate::front_door::storefront::detail::listing_detail;
use crate::lifecycle::fixtures::{listing, tenant, ts};

pub(super) fn viewer(may_buy: bool) -> Viewer {
    Viewer {
        tenant: "acme".into(),
        may_buy,
        may_change: may_buy,
        who_can_buy: "Only Acme's billing admins can add, change or cancel add-ons: ask Ann".into(),
        now: ts("2026-12-03T00:00:00Z"),
        links: Default::default(),
        form: Default::default(),
    }
}

fn one_page(cards: Vec<crate::front_door::storefront::catalog::Card>) -> CatalogPage {
    CatalogPage {
        total: cards.len(),
        items: cards,
        page: 1,
        page_size: 24,
    }
}

#[test]
fn escaping_covers_text_and_attributes() {
    assert_eq!(
        escape(r#"<a href="x" onclick='y'>&"#),
        "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;"
    );
}

#[test]
fn markdown_from_the_catalog_renders_inert() {
    let html = markdown::render(
        "Hello **world**\n\n<script>alert(1)</script>\n\nInline <img src=x onerror=alert(2)> and [a](javascript:alert(3)) [b](https://ok.example)",
    );
    assert!(html.contains("<strong>world</strong>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(html.contains("href=\"https://ok.example\""), "{html}");
}

#[test]
fn catalog_text_is_escaped_on_cards_and_colours_are_checked() {
    let mut spec = listing("heroColor: 'red;background:url(x)'");
    spec.display_name = "<b>Bold</b>".into();
    let l = Listing::new("bold", spec);
    let html = catalog_page::card_html(&card(&l, CardState::Available), &viewer(true), "card-");
    assert!(html.contains("&lt;b&gt;Bold&lt;/b&gt;"), "{html}");
    assert!(!html.contains("url(x)"), "{html}");
}

#[test]
fn tenants_read_their_own_words_for_every_pending_phase() {
    let l = Listing::new("premium", listing("activation: Approval"));
    let cards = [
        Phase::Requested,
        Phase::Invoiced,
        Phase::Paid,
        Phase::Provisioning,
    ]
    .into_iter()
    .map(|phase| {
        card(
            &l,
            CardState::Pending {
                phase,
                subscription: "premium-1".into(),
            },
        )
    })
    .collect();
    let html = catalog_page::render(
        &one_page(cards),
        &CatalogQuery::default(),
        "",
        &viewer(true),
    );
    for words in ["Pending review", "Invoice issued", "Awaiting activation"] {
        assert!(html.contains(words), "{words}");
    }
    let lower = html.to_lowercase();
    assert!(!lower.contains("superadmin") && !lower.contains("manual approval"));
    let available = card(&l, CardState::Available);
    let html = catalog_page::card_html(&available, &viewer(true), "card-");
    assert!(html.contains(">Request</a>"), "{html}");
}

#[test]
fn people_who_may_not_buy_see_disabled_buttons_that_say_who_can() {
    let l = Listing::new("route", listing(""));
    let html = catalog_page::card_html(&card(&l, CardState::Available), &viewer(false), "card-");
    assert!(html.contains("disabled"), "{html}");
    assert!(
        html.contains("title=\"Only Acme&#39;s billing admins"),
        "{html}"
    );
    assert!(
        !html.contains("href=\"/t/acme/marketplace/route#buy\""),
        "{html}"
    );
    let html = catalog_page::card_html(&card(&l, CardState::Available), &viewer(true), "card-");
    assert!(
        html.contains("href=\"/t/acme/marketplace/route#buy\">Add</a>"),
        "{html}"
    );
}

#[test]
fn an_empty_search_says_so() {
    let query = CatalogQuery {
        q: Some("nothing".into()),
        ..CatalogQuery::default()
    };
    let html = catalog_page::render(&one_page(Vec::new()), &query, "", &viewer(true));
    assert!(html.contains("No add-ons match"), "{html}");
}

#[test]
fn a_detail_page_with_many_listings_worth_of_text_stays_small() {
    let acme = Tenant::new("acme", tenant("Professional"));
    let features = BTreeSet::new();
    let facts = TenantFacts {
        name: "acme",
        tenant: &acme,
        subscriptions: &[],
        entitled_features: &features,
        promotions: &[],
    };
    let l = Listing::new(
        "route",
        listing("description: \"# Routes\\n\\n<script>alert(1)</script>\""),
    );
    let detail = listing_detail(&l, &facts, ts("2026-12-03T00:00:00Z"));
    let main = detail_page::render(&detail, None, &viewer(true), &Default::default());
    assert!(!main.contains("<script>"), "{main}");
    let cards = (0..100)
        .map(|i| {
            card(
                &Listing::new(&format!("l{i}"), listing("")),
                CardState::Available,
            )
        })
        .collect();
    let index = page(
        &Frame::default(),
        "Add-ons",
        &catalog_page::render(
            &one_page(cards),
            &CatalogQuery::default(),
            "",
            &viewer(true),
        ),
    );
    assert!(index.len() < 100_000, "{} bytes", index.len());
}

#[test]
fn the_buy_form_takes_a_promotion_code_and_says_next_to_it_why_one_was_refused() {
    use super::promotion_code::CodeField;
    let acme = Tenant::new("acme", tenant("Professional"));
    let features = BTreeSet::new();
    let facts = TenantFacts {
        name: "acme",
        tenant: &acme,
        subscriptions: &[],
        entitled_features: &features,
        promotions: &[],
    };
    let detail = listing_detail(
        &Listing::new("route", listing("")),
        &facts,
        ts("2026-12-03T00:00:00Z"),
    );
    let buy_form = |html: &str| {
        let start = html.find("<form id=\"buy-form\"").expect("a buy form");
        let end = start + html[start..].find("</form>").expect("its end");
        html[start..end].to_string()
    };
    let blank = buy_form(&detail_page::render(
        &detail,
        None,
        &viewer(true),
        &CodeField::default(),
    ));
    assert!(
        blank.contains("<label for=\"promotion-code\">Promotion code"),
        "{blank}"
    );
    assert!(blank.contains("name=\"promotionCode\""), "{blank}");
    let refused = buy_form(&detail_page::render(
        &detail,
        None,
        &viewer(true),
        &CodeField::refused("<i>nope", "promotion code \"<I>NOPE\" is not on offer"),
    ));
    assert!(refused.contains("value=\"&lt;i&gt;nope\""), "{refused}");
    assert!(refused.contains("aria-invalid=\"true\""), "{refused}");
    assert!(
        refused.contains("Promotion code &quot;&lt;I&gt;NOPE&quot; is not on offer.</p>"),
        "{refused}"
    );
    assert!(!refused.contains("<i>"), "{refused}");
    let watching = detail_page::render(&detail, None, &viewer(false), &CodeField::default());
    assert!(!watching.contains("promotion-code"), "no form, no field");
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn writes_with_a_session_cookie_need_the_csrf_token_and_this_origin() {
    let cookie = ("cookie", "a=b; marketplace_session=tok123");
    let host = ("host", "shop.example");
    // Reading needs nothing more; the cookie stands for the token.
    assert_eq!(
        check_request(&Method::GET, &headers(&[cookie, host]), false),
        Ok(Some("tok123".into()))
    );
    assert_eq!(
        check_request(&Method::POST, &headers(&[cookie, host]), false),
        Err(CsrfRefusal::TokenMissing)
    );
    assert_eq!(
        check_request(
            &Method::POST,
            &headers(&[cookie, host, ("x-csrf-token", "nope")]),
            false
        ),
        Err(CsrfRefusal::TokenMissing)
    );
    let good = csrf_token("tok123");
    assert_eq!(
        check_request(
            &Method::POST,
            &headers(&[cookie, host, ("x-csrf-token", &good)]),
            false
        ),
        Ok(Some("tok123".into()))
    );
    // Another site's page is refused whatever it sends, a proxy's bearer token included.
    let evil = ("origin", "https://evil.example");
    assert_eq!(
        check_request(
            &Method::POST,
            &headers(&[cookie, host, evil, ("x-csrf-token", &good)]),
            false
        ),
        Err(CsrfRefusal::CrossSite)
    );
    assert_eq!(
        check_request(
            &Method::POST,
            &headers(&[host, evil, ("authorization", "Bearer x")]),
            false
        ),
        Err(CsrfRefusal::CrossSite)
    );
    // Scripts and servers (no Origin, their own Authorization) pass untouched.
    assert_eq!(
        check_request(
            &Method::POST,
            &headers(&[("authorization", "Bearer x")]),
            false
        ),
        Ok(None)
    );
    assert!(same_origin(&headers(&[
        ("origin", "http://shop.example"),
        host
    ])));
    assert!(!same_origin(&headers(&[("origin", "null"), host])));
    assert_eq!(csrf_token("a"), csrf_token("a"));
    assert_ne!(csrf_token("a"), csrf_token("b"));
    let _ = header::COOKIE;
}

#[test]
fn sign_in_returns_only_to_this_site() {
    assert_eq!(
        safe_next(Some("/t/acme/marketplace")),
        "/t/acme/marketplace"
    );
    assert_eq!(safe_next(Some("//evil.example")), "/");
    assert_eq!(safe_next(Some("https://evil.example")), "/");
    assert_eq!(safe_next(None), "/");
}

#[test]
fn the_theme_keeps_white_text_readable() {
    assert!(Theme::default().checked().is_ok());
    let pale = Theme {
        brand_color: "#ffee00".into(),
        ..Theme::default()
    };
    assert!(pale.checked().is_err());
    let script_logo = Theme {
        logo_url: Some("javascript:alert(1)".into()),
        ..Theme::default()
    };
    assert!(script_logo.checked().is_err());
    assert!(contrast("#000000", "#ffffff").unwrap() > 20.0);
}

#[test]
fn the_console_offers_each_fitting_step_with_its_fields() {
    use crate::api::subscription_action::ActionKind;
    use crate::front_door::console::inbox::InboxItem;
    let item = InboxItem {
        tenant: "acme".into(),
        namespace: "tenant-acme".into(),
        subscription: "premium-1".into(),
        listing: "premium".into(),
        listing_display_name: "<Premium>".into(),
        plan: "pro".into(),
        quantity: 1,
        phase: Phase::Requested,
        since: None,
        price: Some("$49.00/mo".into()),
        actions: vec![ActionKind::Invoice, ActionKind::Reject],
        message: None,
    };
    let tokens = super::forms::FormTokens {
        csrf: Some("c5rf".into()),
        key: "k3y".into(),
    };
    let html = super::console_page::render_inbox(&[item], Some(Phase::Requested), &tokens);
    // Without JavaScript each step posts as a form with the session's token and its own key.
    assert!(
        html.contains("method=\"post\" action=\"/forms/v1/admin/tenants/"),
        "{html}"
    );
    assert!(
        html.contains("<input type=\"hidden\" name=\"csrf\" value=\"c5rf\">"),
        "{html}"
    );
    assert!(html.contains("name=\"key\" value=\"k3y-"), "{html}");
    assert!(html.contains("data-action=\"Invoice\""), "{html}");
    assert!(
        html.contains("name=\"amount\"") && html.contains("name=\"currency\""),
        "{html}"
    );
    assert!(html.contains("name=\"reason\" required"), "{html}");
    assert!(
        html.contains("&lt;Premium&gt;") && !html.contains("<Premium>"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"Requested\" selected>"),
        "{html}"
    );
    assert!(!html.contains("data-action=\"Approve\""), "{html}");
}

#[test]
fn a_failed_payment_shows_a_banner_naming_the_suspended_add_ons_on_every_page() {
    let frame = Frame {
        tenant: Some("acme".into()),
        suspended_addons: vec!["Route Optimization".into(), "<Chat>".into()],
        ..Frame::default()
    };
    let html = page(&frame, "Any page", "<p>content</p>");
    assert!(
        html.contains(
            "Update your payment details to keep using Route Optimization, &lt;Chat&gt;."
        ),
        "{html}"
    );
    let calm = page(&Frame::default(), "Any page", "");
    assert!(!calm.contains("Payment failed"));
}

mod routed {
    //! The middleware on the real router (no cluster: nothing here needs a review).
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use crate::front_door::routes_tests::door;
    use crate::front_door::web::session::csrf_token;

    async fn status(request: Request<Body>) -> (StatusCode, Option<String>, String) {
        let response = door().oneshot(request).await.expect("answer");
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            location,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    fn purchase() -> axum::http::request::Builder {
        Request::post("/v1/tenants/acme/subscriptions")
            .header(header::HOST, "shop.example")
            .header(header::COOKIE, "marketplace_session=tok123")
            .header(header::CONTENT_TYPE, "application/json")
    }

    #[tokio::test]
    async fn a_cookie_write_without_the_csrf_token_or_from_another_site_is_refused() {
        let (code, _, body) = status(purchase().body(Body::from("{}")).unwrap()).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("CsrfRefused"), "{body}");
        let (code, _, body) = status(
            purchase()
                .header("x-csrf-token", csrf_token("tok123"))
                .header(header::ORIGIN, "https://evil.example")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("another site"), "{body}");
    }

    #[tokio::test]
    async fn pages_send_strangers_to_sign_in_and_serve_their_assets() {
        let (code, location, _) = status(
            Request::get("/t/acme/marketplace")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(code, StatusCode::SEE_OTHER);
        assert_eq!(
            location.as_deref(),
            Some("/signin?next=%2Ft%2Facme%2Fmarketplace")
        );
        let (code, _, page) = status(Request::get("/signin").body(Body::empty()).unwrap()).await;
        assert_eq!(code, StatusCode::OK);
        assert!(page.contains("<label for=\"token\">"), "{page}");
        let (code, _, js) = status(
            Request::get("/web/assets/site.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        assert!(js.contains("EventSource"));
    }
}

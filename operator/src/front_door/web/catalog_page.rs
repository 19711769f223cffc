//! The storefront's index (`/t/{tenant}/marketplace`): a featured band, search, category chips,
//! a type filter and a responsive grid of cards, each in the state the catalog decided.

use std::fmt::Write;

use jiff::Timestamp;

use super::forms::FormTokens;
use super::html::{escape, url_part};
use super::links::Links;
use super::theme::contrast;
use super::words::{Primary, pill, primary, updated_ago};
use crate::api::listing::{Category, IconKind, ListingType};
use crate::front_door::storefront::catalog::{Card, CardState, CatalogPage, CatalogQuery};

/// What a page needs to draw cards for one person of one tenant.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub tenant: String,
    pub may_buy: bool,
    pub may_change: bool,
    /// Who may buy, for the tooltip of a disabled button.
    pub who_can_buy: String,
    pub now: Timestamp,
    pub links: Links,
    /// The hidden fields of the page's forms (for posting without JavaScript).
    pub form: FormTokens,
}

pub const CATEGORIES: [Category; 10] = [
    Category::Operations,
    Category::Analytics,
    Category::AI,
    Category::Communication,
    Category::Finance,
    Category::Healthcare,
    Category::Insurance,
    Category::Storage,
    Category::Seats,
    Category::Compliance,
];

const TYPES: [(ListingType, &str); 3] = [
    (ListingType::InApp, "In-app"),
    (ListingType::Integration, "Integration"),
    (ListingType::Partner, "Partner"),
];

pub fn category_name(c: Category) -> String {
    format!("{c:?}")
}

pub fn type_name(t: ListingType) -> String {
    format!("{t:?}")
}

/// A catalog colour as CSS, only if it is a plain `#rrggbb` (nothing else reaches `style`).
pub fn safe_color(color: Option<&str>) -> Option<&str> {
    color.filter(|c| {
        c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|d| d.is_ascii_hexdigit())
    })
}

/// The icon tile: the listing's image, or its initial on its hero colour.
pub fn tile(card: &Card) -> String {
    let color = safe_color(card.hero_color.as_deref()).unwrap_or("#475569");
    // Text on the tile: whichever of white and near-black contrasts more with it.
    let ink =
        if contrast(color, "#ffffff").unwrap_or(0.0) >= contrast(color, "#111827").unwrap_or(0.0) {
            "#ffffff"
        } else {
            "#111827"
        };
    let initial = escape(
        &card
            .display_name
            .chars()
            .next()
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default(),
    );
    // The image lies over the initial, which shows if the image cannot load.
    let inner = match &card.icon {
        Some(icon) if icon.kind == IconKind::Url && icon.value.starts_with("https://") => format!(
            "{initial}<img src=\"{}\" alt=\"\" width=\"40\" height=\"40\" loading=\"lazy\">",
            escape(&icon.value)
        ),
        _ => initial,
    };
    format!(
        "<div class=\"tile\" style=\"background:{color};color:{ink}\" aria-hidden=\"true\">{inner}</div>"
    )
}

/// A disabled button that says why, to pointer users (title) and screen readers alike.
pub fn disabled_button(words: &str, why: &str) -> String {
    format!(
        "<span class=\"disabled-wrap\" title=\"{why}\"><button type=\"button\" class=\"primary\" disabled aria-disabled=\"true\">{words}</button><span class=\"sr-only\"> ({why})</span></span>",
        words = escape(words),
        why = escape(why)
    )
}

/// The primary action of a card, for this viewer.
pub fn action(card: &Card, viewer: &Viewer) -> String {
    let detail = viewer.links.detail(&viewer.tenant, &card.name);
    let subscriptions = viewer.links.subscriptions(&viewer.tenant);
    match primary(card) {
        Primary::Buy(verb) if viewer.may_buy => {
            format!("<a class=\"button primary\" href=\"{detail}#buy\">{verb}</a>")
        }
        Primary::Buy(verb) => disabled_button(verb, &viewer.who_can_buy),
        Primary::Partner => {
            format!("<a class=\"button primary\" href=\"{detail}#buy\">Visit partner</a>")
        }
        Primary::Manage => format!("<a class=\"button\" href=\"{subscriptions}\">Manage</a>"),
        Primary::Follow => {
            format!("<a class=\"button\" href=\"{detail}#requests\">View request</a>")
        }
        Primary::Disabled(words) => {
            let why = match &card.state {
                CardState::Locked { message, .. } => message.as_str(),
                _ => "Not available yet",
            };
            disabled_button(words, why)
        }
    }
}

/// A card's version and age (the version after `version_label`), and why it is locked (empty
/// unless it is), escaped; shared by the catalog's cards and the detail page's hero.
pub fn card_notes(card: &Card, viewer: &Viewer, version_label: &str) -> (Vec<String>, String) {
    let mut meta = Vec::new();
    if let Some(v) = &card.version {
        meta.push(format!("{version_label}{}", escape(v)));
    }
    if let Some(ago) = card
        .updated
        .as_deref()
        .and_then(|d| updated_ago(d, viewer.now))
    {
        meta.push(ago);
    }
    let why = match &card.state {
        CardState::Locked { message, .. } => format!("<p class=\"why\">{}</p>", escape(message)),
        _ => String::new(),
    };
    (meta, why)
}

/// One card. Its size does not depend on its state (no layout shift when it changes).
pub fn card_html(card: &Card, viewer: &Viewer, id_prefix: &str) -> String {
    let (pill_words, pill_class) = pill(&card.state);
    let (meta, why) = card_notes(card, viewer, "v");
    let pending = matches!(card.state, CardState::Pending { .. })
        .then_some(" data-pending")
        .unwrap_or_default();
    format!(
        "<article class=\"card is-{pill_class}\" id=\"{id_prefix}{id}\" data-live data-state=\"{state}\"{pending}>\
{tile}<div class=\"card-body\"><h3><a href=\"{href}\">{name}</a></h3><p class=\"tagline\">{tagline}</p>\
<p class=\"meta\">{meta}</p><p class=\"price\">{price}</p>{why}</div>\
<div class=\"card-foot\"><span class=\"pill pill-{pill_class}\">{pill_words}</span>{action}</div></article>",
        id = escape(&card.name),
        state = card.state.name(),
        tile = tile(card),
        href = viewer.links.detail(&viewer.tenant, &card.name),
        name = escape(&card.display_name),
        tagline = escape(&card.tagline),
        meta = meta.join(" · "),
        price = card
            .price
            .as_deref()
            .map(escape)
            .unwrap_or_else(|| "No charge from us".into()),
        pill_words = escape(&pill_words),
        action = action(card, viewer),
    )
}

fn filters(query: &CatalogQuery, viewer: &Viewer) -> String {
    let base = viewer.links.marketplace(&viewer.tenant);
    let q = query.q.clone().unwrap_or_default();
    let mut out = format!(
        "<form class=\"filters\" role=\"search\" method=\"get\" action=\"{base}\">\
<label for=\"q\">Search add-ons</label><input id=\"q\" name=\"q\" type=\"search\" value=\"{}\">\
<label for=\"type\">Type</label><select id=\"type\" name=\"type\"><option value=\"\">All types</option>",
        escape(&q)
    );
    for (t, words) in TYPES {
        let selected = if query.type_ == Some(t) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<option value=\"{}\"{selected}>{words}</option>",
            type_name(t)
        );
    }
    out.push_str("</select>");
    if let Some(c) = query.category {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"category\" value=\"{}\">",
            category_name(c)
        );
    }
    out.push_str("<button type=\"submit\" class=\"primary\">Search</button></form><nav class=\"chips\" aria-label=\"Categories\">");
    let link = |category: Option<Category>| {
        let mut parts = Vec::new();
        if !q.is_empty() {
            parts.push(format!("q={}", url_part(&q)));
        }
        if let Some(t) = query.type_ {
            parts.push(format!("type={}", type_name(t)));
        }
        if let Some(c) = category {
            parts.push(format!("category={}", category_name(c)));
        }
        if parts.is_empty() {
            base.clone()
        } else {
            format!("{base}?{}", parts.join("&amp;"))
        }
    };
    let current = |on: bool| if on { " aria-current=\"page\"" } else { "" };
    let _ = write!(
        out,
        "<a class=\"chip\" href=\"{}\"{}>All</a>",
        link(None),
        current(query.category.is_none())
    );
    for c in CATEGORIES {
        let _ = write!(
            out,
            "<a class=\"chip\" href=\"{}\"{}>{}</a>",
            link(Some(c)),
            current(query.category == Some(c)),
            category_name(c)
        );
    }
    out.push_str("</nav>");
    out
}

/// The index page's content; `bundles` (HTML, may be empty) follows the featured band on the
/// first page when nothing is filtered.
pub fn render(page: &CatalogPage, query: &CatalogQuery, bundles: &str, viewer: &Viewer) -> String {
    let mut out = String::from("<h1>Add-ons</h1>");
    // A static preview has no server to search with.
    if !viewer.links.is_static() {
        out.push_str(&filters(query, viewer));
    }
    let filtered = query.q.is_some() || query.category.is_some() || query.type_.is_some();
    let featured: Vec<&Card> = page.items.iter().filter(|c| c.featured).collect();
    if !filtered && page.page == 1 && !featured.is_empty() {
        out.push_str("<section class=\"featured\" aria-labelledby=\"featured-h\"><h2 id=\"featured-h\">Featured</h2><div class=\"grid\">");
        for card in featured {
            out.push_str(&card_html(card, viewer, "featured-"));
        }
        out.push_str("</div></section>");
    }
    if !filtered && page.page == 1 {
        out.push_str(bundles);
    }
    let _ = write!(
        out,
        "<section aria-labelledby=\"all-h\"><h2 id=\"all-h\">{} add-on{}</h2>",
        page.total,
        if page.total == 1 { "" } else { "s" }
    );
    if page.items.is_empty() {
        let _ = write!(
            out,
            "<div class=\"empty\"><p>No add-ons match your search.</p><a class=\"button\" href=\"{}\">Show all add-ons</a></div>",
            viewer.links.marketplace(&viewer.tenant)
        );
    } else {
        out.push_str("<div class=\"grid\" id=\"grid\">");
        for card in &page.items {
            out.push_str(&card_html(card, viewer, "card-"));
        }
        out.push_str("</div>");
    }
    if page.page * page.page_size < page.total {
        let mut next = format!(
            "{}?page={}",
            viewer.links.marketplace(&viewer.tenant),
            page.page + 1
        );
        if let Some(q) = &query.q {
            let _ = write!(next, "&amp;q={}", url_part(q));
        }
        if let Some(c) = query.category {
            let _ = write!(next, "&amp;category={}", category_name(c));
        }
        if let Some(t) = query.type_ {
            let _ = write!(next, "&amp;type={}", type_name(t));
        }
        let _ = write!(
            out,
            "<p><a class=\"button\" href=\"{next}\">Next page</a></p>"
        );
    }
    out.push_str("</section>");
    out
}

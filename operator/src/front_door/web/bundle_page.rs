//! Bundles on the storefront's pages: their cards on the marketplace page, a bundle's page
//! (`/t/{tenant}/bundles/{bundle}`) with its buy form, and the tenant's bundle purchases with
//! their members (on the bundle's page and on My subscriptions). Pure functions of what the
//! storefront decided ([`crate::front_door::storefront::bundle_offers`]); catalog text is
//! escaped like everywhere else.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::catalog_page::{Viewer, disabled_button};
use super::html::{escape, url_part};
use super::promotion_code::{self, CodeField};
use super::subscriptions_page::ListingFacts;
use super::words::phase_words;
use crate::api::bundle::BundlePhase;
use crate::front_door::storefront::bundle_offers::{BundleOffer, BundleStanding};
use crate::front_door::storefront::bundles::BundlePurchaseView;
use crate::front_door::storefront::price::per_interval;

/// A bundle purchase as a page shows it: the view, and why it cannot be cancelled now (none:
/// it can), as the storefront decided.
#[derive(Clone, Debug)]
pub struct PurchaseRow {
    pub view: BundlePurchaseView,
    pub cannot_cancel: Option<String>,
}

fn money(offer: &BundleOffer, amount: &str) -> String {
    escape(&per_interval(amount, &offer.currency, offer.interval))
}

/// "20% off every add-on" or "$11.80/mo off the total".
pub fn discount_words(offer: &BundleOffer) -> String {
    match (&offer.discount.percentage, &offer.discount.amount) {
        (Some(percent), _) => format!("{percent}% off every add-on"),
        (None, Some(amount)) => format!("{} off the total", money(offer, amount)),
        (None, None) => String::new(),
    }
}

/// The bundle's price (with its promotion and the price after it), the members' list total and
/// what it saves.
fn price_lines(offer: &BundleOffer) -> String {
    let promotion = offer
        .promotion
        .as_ref()
        .map(|p| {
            format!(
                "<p class=\"promotion\">{}</p>",
                super::detail_page::promotion_words(p)
            )
        })
        .unwrap_or_default();
    format!(
        "<p class=\"price\">{price}</p>{promotion}<p class=\"list-total\">List total {list} · \
<span class=\"saving\">You save {savings} ({discount})</span></p>",
        price = money(offer, &offer.price),
        list = money(offer, &offer.list_total),
        savings = money(offer, &offer.savings),
        discount = discount_words(offer),
    )
}

fn members_list(offer: &BundleOffer, viewer: &Viewer) -> String {
    let mut out = String::from("<ul class=\"members\">");
    for m in &offer.members {
        let _ = write!(
            out,
            "<li><a href=\"{href}\">{name}</a> · {plan} <span class=\"muted\">({price})</span></li>",
            href = viewer.links.detail(&viewer.tenant, &m.listing),
            name = escape(&m.display_name),
            plan = escape(&m.plan_display_name),
            price = money(offer, &m.list_price),
        );
    }
    out.push_str("</ul>");
    out
}

fn pill(standing: &BundleStanding) -> (&'static str, &'static str) {
    match standing {
        BundleStanding::Available => ("Available", "available"),
        BundleStanding::Bought { .. } => ("Bought", "installed"),
        BundleStanding::Unavailable { .. } => ("Unavailable", "locked"),
    }
}

/// A bundle's card on the marketplace page.
pub fn offer_card(offer: &BundleOffer, standing: &BundleStanding, viewer: &Viewer) -> String {
    let href = viewer.links.bundle(&viewer.tenant, &offer.name);
    let (pill_words, pill_class) = pill(standing);
    let action = match standing {
        BundleStanding::Available if viewer.may_buy => {
            format!("<a class=\"button primary\" href=\"{href}#buy\">View bundle</a>")
        }
        BundleStanding::Available => disabled_button("Buy bundle", &viewer.who_can_buy),
        BundleStanding::Bought { .. } => format!(
            "<a class=\"button\" href=\"{}\">Manage</a>",
            viewer.links.subscriptions(&viewer.tenant)
        ),
        BundleStanding::Unavailable { message } => disabled_button("Buy bundle", message),
    };
    format!(
        "<article class=\"card bundle is-{pill_class}\" id=\"bundle-{id}\" data-live>\
<div class=\"card-body\"><h3><a href=\"{href}\">{name}</a></h3><p class=\"tagline\">{description}</p>\
{members}{prices}</div><div class=\"card-foot\"><span class=\"pill pill-{pill_class}\">{pill_words}</span>{action}</div></article>",
        id = escape(&offer.name),
        name = escape(&offer.display_name),
        description = escape(offer.description.as_deref().unwrap_or("")),
        members = members_list(offer, viewer),
        prices = price_lines(offer),
    )
}

/// The marketplace page's band of bundles; empty when none is on offer.
pub fn offers_section(offers: &[(BundleOffer, BundleStanding)], viewer: &Viewer) -> String {
    if offers.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section class=\"bundles\" aria-labelledby=\"bundles-h\"><h2 id=\"bundles-h\">Bundles</h2>\
<p class=\"muted\">Add-ons sold together for less, bought and cancelled as one.</p><div class=\"grid\">",
    );
    for (offer, standing) in offers {
        out.push_str(&offer_card(offer, standing, viewer));
    }
    out.push_str("</div></section>");
    out
}

fn buy_panel(
    offer: &BundleOffer,
    standing: &BundleStanding,
    viewer: &Viewer,
    code: &CodeField,
) -> String {
    let mut out = String::from(
        "<section id=\"buy\" class=\"panel\" data-live aria-labelledby=\"buy-h\"><h2 id=\"buy-h\">Buy this bundle</h2>",
    );
    match standing {
        BundleStanding::Bought { purchase } => {
            let _ = write!(
                out,
                "<p>You have this bundle.</p><a class=\"button\" href=\"#bundle-sub-{}\">See your purchase</a>",
                escape(purchase)
            );
        }
        BundleStanding::Unavailable { message } => {
            let _ = write!(
                out,
                "<p class=\"why\">{}</p>{}",
                escape(&sentence(message)),
                disabled_button("Buy bundle", message)
            );
        }
        BundleStanding::Available if !viewer.may_buy => {
            let _ = write!(
                out,
                "<p class=\"why\">{}.</p>{}",
                escape(&viewer.who_can_buy),
                disabled_button("Buy bundle", &viewer.who_can_buy)
            );
        }
        BundleStanding::Available => {
            // Without JavaScript the form posts to /forms (a confirmation page, then the
            // purchase); with it, the page's dialog confirms the same sentence. With a
            // promotion code, the sentence and price confirmed are the code's (the script asks
            // the confirmation URL for them).
            let quote = serde_json::to_string(&offer.quoted_price()).unwrap_or_default();
            // A static preview's form posts nowhere.
            let no_script = if viewer.links.is_static() {
                String::new()
            } else {
                format!(
                    " method=\"post\" action=\"/forms/t/{}/bundles/{}/buy\"",
                    url_part(&viewer.tenant),
                    url_part(&offer.name)
                )
            };
            let _ = write!(
                out,
                "<form id=\"bundle-buy-form\"{no_script} \
data-url=\"/v1/tenants/{t}/bundle-subscriptions\" data-bundle=\"{bundle}\" data-confirm=\"{confirm}\" \
data-quote=\"{quote}\" data-confirm-url=\"/t/{t}/bundles/{b}/confirmation\" \
data-note=\"Each add-on of the bundle is set up within a minute; the bundle is billed as one.\">{hidden}\
<p>{price} for {count} add-ons, billed together.</p>{code}\
<button type=\"submit\" class=\"primary\" id=\"bundle-buy-submit\">Buy bundle</button></form>",
                t = url_part(&viewer.tenant),
                code = promotion_code::render(code),
                b = url_part(&offer.name),
                bundle = escape(&offer.name),
                confirm = escape(&offer.confirmation),
                quote = escape(&quote),
                hidden = viewer.form.hidden("bundle"),
                price = money(offer, &offer.price),
                count = offer.members.len(),
            );
        }
    }
    out.push_str("</section>");
    out
}

/// An API message ("the tenant already ...") as a sentence on a page.
fn sentence(message: &str) -> String {
    let mut chars = message.trim_end_matches('.').chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// A bundle's page: what it includes at what price, the buy form (its promotion code field
/// showing `code`), and the tenant's purchases.
pub fn render_detail(
    offer: &BundleOffer,
    standing: &BundleStanding,
    purchases: &[PurchaseRow],
    listings: &BTreeMap<String, ListingFacts>,
    viewer: &Viewer,
    code: &CodeField,
) -> String {
    let mut out = format!(
        "<p class=\"crumbs\"><a href=\"{}\">All add-ons</a></p>\
<section class=\"hero bundle-hero\" id=\"bundle-hero\"><div class=\"hero-body\"><h1>{}</h1><p class=\"tagline\">{}</p>{}</div></section>",
        viewer.links.marketplace(&viewer.tenant),
        escape(&offer.display_name),
        escape(offer.description.as_deref().unwrap_or("")),
        price_lines(offer),
    );
    out.push_str(
        "<section class=\"panel\" aria-labelledby=\"includes-h\"><h2 id=\"includes-h\">What the bundle includes</h2>\
<table class=\"subs\"><thead><tr><th scope=\"col\">Add-on</th><th scope=\"col\">Plan</th><th scope=\"col\">On its own</th>\
<th scope=\"col\">In the bundle</th></tr></thead><tbody>",
    );
    for m in &offer.members {
        let _ = write!(
            out,
            "<tr><th scope=\"row\"><a href=\"{}\">{}</a></th><td>{}</td><td>{}</td><td>{}</td></tr>",
            viewer.links.detail(&viewer.tenant, &m.listing),
            escape(&m.display_name),
            escape(&m.plan_display_name),
            money(offer, &m.list_price),
            money(offer, &m.price),
        );
    }
    let _ = write!(
        out,
        "</tbody><tfoot><tr><th scope=\"row\" colspan=\"2\">Total</th><td>{}</td><td>{}</td></tr></tfoot></table></section>",
        money(offer, &offer.list_total),
        money(offer, &offer.price),
    );
    out.push_str(&buy_panel(offer, standing, viewer, code));
    let pending = purchases.iter().any(|p| is_moving(&p.view));
    let _ = write!(
        out,
        "<section id=\"bundle-purchases\" class=\"panel\" data-live{} aria-labelledby=\"purchases-h\"><h2 id=\"purchases-h\">Your purchases of this bundle</h2>",
        if pending { " data-pending" } else { "" }
    );
    if purchases.is_empty() {
        out.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        let names = BTreeMap::from([(offer.name.clone(), offer.display_name.clone())]);
        out.push_str(&purchases_table(purchases, &names, listings, viewer));
    }
    out.push_str("</section>");
    out
}

/// Whether the operator has yet to act on a purchase (the page looks again until it has): its
/// members are being set up, or its cancellation has not reached them yet. A cancellation at the
/// end of the period then stays Cancelling for weeks, which is no reason to keep looking.
fn is_moving(view: &BundlePurchaseView) -> bool {
    match view.status.as_ref().and_then(|s| s.phase) {
        None | Some(BundlePhase::Pending) => true,
        Some(BundlePhase::Active) => view.cancellation.is_some(),
        _ => false,
    }
}

fn bundle_phase_words(view: &BundlePurchaseView) -> &'static str {
    match view.status.as_ref().and_then(|s| s.phase) {
        None | Some(BundlePhase::Pending) => "Setting up",
        Some(BundlePhase::Active) if view.cancellation.is_some() => "Cancellation pending",
        Some(BundlePhase::Active) => "Active",
        Some(BundlePhase::Cancelling) => "Cancellation pending",
        Some(BundlePhase::Cancelled) => "Cancelled",
        Some(BundlePhase::Failed) => "Could not be set up",
    }
}

fn cancel_action(
    row: &PurchaseRow,
    bundle_name: &str,
    members: &[String],
    viewer: &Viewer,
) -> String {
    let view = &row.view;
    if let Some(why) = &row.cannot_cancel {
        return format!("<small>{}</small>", escape(&sentence(why)));
    }
    if !viewer.may_change {
        return disabled_button("Cancel bundle", &viewer.who_can_buy);
    }
    let (t, n) = (url_part(&viewer.tenant), url_part(&view.name));
    // Without JavaScript the form posts (a confirmation page, then the cancellation).
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/forms/t/{t}/bundle-subscriptions/{n}/cancel\">{hidden}\
<button type=\"submit\" data-call=\"POST /v1/tenants/{t}/bundle-subscriptions/{n}/cancel\" data-body='{{\"effective\":\"EndOfPeriod\"}}' \
data-confirm=\"{confirm}\">Cancel bundle</button></form>",
        hidden = viewer.form.hidden(&format!("cancel-bundle-{}", view.name)),
        confirm = escape(&cancel_sentence(bundle_name, members)),
    )
}

/// What cancelling a bundle does, in the words the buyer confirms.
pub fn cancel_sentence(bundle_name: &str, members: &[String]) -> String {
    format!(
        "Cancel {bundle_name} at the end of the period? All of its add-ons end together: {}.",
        members.join(", ")
    )
}

/// The tenant's bundle purchases: each with its members and their states, and a cancel form.
pub fn purchases_table(
    purchases: &[PurchaseRow],
    bundle_names: &BTreeMap<String, String>,
    listings: &BTreeMap<String, ListingFacts>,
    viewer: &Viewer,
) -> String {
    let mut out = String::from(
        "<table class=\"subs\"><caption class=\"sr-only\">Your bundles</caption><thead><tr><th scope=\"col\">Bundle</th>\
<th scope=\"col\">Add-ons</th><th scope=\"col\">State</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
    );
    for row in purchases {
        let view = &row.view;
        let name = bundle_names
            .get(&view.bundle)
            .cloned()
            .unwrap_or_else(|| view.bundle.clone());
        let members = view.status.as_ref().map(|s| &s.members[..]).unwrap_or(&[]);
        let mut member_names = Vec::new();
        let mut items = String::new();
        for m in members {
            let facts = listings.get(m.listing.as_str());
            let listing = facts
                .map(|f| f.display_name.clone())
                .unwrap_or_else(|| m.listing.to_string());
            let plan = facts
                .and_then(|f| f.plans.iter().find(|p| p.name == m.plan.as_str()))
                .map(|p| p.display_name.clone())
                .unwrap_or_else(|| m.plan.to_string());
            let _ = write!(
                items,
                "<li id=\"bundle-member-{id}\"><a href=\"{href}\">{listing}</a> · {plan} · <span class=\"member-phase\">{phase}</span></li>",
                id = escape(&m.subscription),
                href = viewer.links.detail(&viewer.tenant, m.listing.as_str()),
                listing = escape(&listing),
                plan = escape(&plan),
                phase = m.phase.map(phase_words).unwrap_or("Setting up"),
            );
            member_names.push(listing);
        }
        if items.is_empty() {
            items.push_str("<li class=\"muted\">Being set up…</li>");
        }
        let message = view
            .status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .filter(|_| bundle_phase_words(view) == "Could not be set up")
            .map(|m| format!("<p class=\"why\">{}</p>", escape(m)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr id=\"bundle-sub-{id}\" data-phase=\"{phase}\"><th scope=\"row\"><a href=\"{href}\">{name}</a></th>\
<td><ul class=\"members\">{items}</ul></td><td>{state}{message}</td><td class=\"row-actions\">{actions}</td></tr>",
            id = escape(&view.name),
            phase = view
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .map(|p| format!("{p:?}"))
                .unwrap_or_default(),
            href = viewer.links.bundle(&viewer.tenant, &view.bundle),
            name = escape(&name),
            state = bundle_phase_words(view),
            actions = cancel_action(row, &name, &member_names, viewer),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// My subscriptions' section of bundles; empty when the tenant bought none.
pub fn purchases_section(
    purchases: &[PurchaseRow],
    bundle_names: &BTreeMap<String, String>,
    listings: &BTreeMap<String, ListingFacts>,
    viewer: &Viewer,
) -> String {
    if purchases.is_empty() {
        return String::new();
    }
    let pending = purchases.iter().any(|p| is_moving(&p.view));
    format!(
        "<section id=\"bundle-subscriptions\" data-live{} aria-labelledby=\"my-bundles-h\"><h2 id=\"my-bundles-h\">Bundles</h2>\
<p class=\"muted\">A bundle's add-ons are cancelled together, from here.</p>{}</section>",
        if pending { " data-pending" } else { "" },
        purchases_table(purchases, bundle_names, listings, viewer)
    )
}

/// A member's row on My subscriptions, in place of its cancel button: it ends with its bundle.
pub fn member_note(purchase: &str, bundle_name: &str) -> String {
    format!(
        "<small class=\"bundle-note\">Part of the bundle {}: <a href=\"#bundle-sub-{}\">cancel the bundle</a> to end it.</small>",
        escape(bundle_name),
        escape(purchase)
    )
}

#[cfg(test)]
#[path = "bundle_page_tests.rs"]
mod tests;

//! My subscriptions (`/t/{tenant}/subscriptions`): each add-on's plan, state, next renewal or
//! end, and what the person may do with it (cancel at the end of the period and undo, change
//! plan or quantity), each with a confirmation. A bundle's members say so instead: they end
//! with their bundle ([`super::bundle_page`] draws the bundles).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::bundle_page::member_note;
use super::catalog_page::{Viewer, disabled_button};
use super::html::{escape, url_part};
use super::words::{date, phase_words};
use crate::api::tenant_subscription::Phase;
use crate::front_door::storefront::detail::{PlanView, SubscriptionView};

/// What the page knows of a listing a subscription is to.
#[derive(Clone, Debug, Default)]
pub struct ListingFacts {
    pub display_name: String,
    pub plans: Vec<PlanView>,
}

fn in_service(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Trialing | Phase::Active | Phase::CancelRequested | Phase::Suspended
    )
}

fn when(sub: &SubscriptionView) -> String {
    if let (Some(_), Some(end)) = (&sub.cancellation, sub.current_period_end) {
        return format!("Ends on {}", date(end));
    }
    if sub.phase == Phase::Trialing
        && let Some(end) = sub.trial_ends_at
    {
        return format!("Trial ends on {}", date(end));
    }
    match sub.current_period_end {
        Some(end) if in_service(sub.phase) => format!("Renews on {}", date(end)),
        _ => "—".into(),
    }
}

fn change_form(sub: &SubscriptionView, facts: &ListingFacts, viewer: &Viewer) -> String {
    let mut out = format!(
        "<details class=\"change\"><summary>Change plan or quantity</summary><form method=\"post\" action=\"/forms/t/{t}/subscriptions/{n}\" data-change=\"/v1/tenants/{t}/subscriptions/{n}\" data-confirm-url=\"{href}/confirmation\">\
<input type=\"hidden\" name=\"op\" value=\"change\"><input type=\"hidden\" name=\"listing\" value=\"{listing}\">{hidden}\
<label for=\"plan-{id}\">Plan</label><select id=\"plan-{id}\" name=\"plan\">",
        listing = escape(&sub.listing),
        hidden = viewer.form.hidden(&format!("change-{}", sub.name)),
        t = url_part(&viewer.tenant),
        n = url_part(&sub.name),
        id = escape(&sub.name),
        href = viewer.links.detail(&viewer.tenant, &sub.listing),
    );
    for plan in &facts.plans {
        let _ = write!(
            out,
            "<option value=\"{}\"{}>{} · {}</option>",
            escape(&plan.name),
            if plan.name == sub.plan {
                " selected"
            } else {
                ""
            },
            escape(&plan.display_name),
            escape(&plan.price)
        );
    }
    let _ = write!(
        out,
        "</select><label for=\"qty-{id}\">Quantity</label><input id=\"qty-{id}\" name=\"quantity\" type=\"number\" min=\"1\" value=\"{q}\">\
<button type=\"submit\" class=\"primary\">Review change</button></form></details>",
        id = escape(&sub.name),
        q = sub.quantity
    );
    out
}

fn actions(
    sub: &SubscriptionView,
    facts: &ListingFacts,
    bundle_names: &BTreeMap<String, String>,
    viewer: &Viewer,
) -> String {
    if !in_service(sub.phase) {
        return String::new();
    }
    // A bundle's member ends (and changes) only with its bundle.
    if let Some(bundle) = &sub.bundle {
        let name = bundle.name.as_str();
        let shown = bundle_names.get(name).map(String::as_str).unwrap_or(name);
        return member_note(bundle.subscription.as_str(), shown);
    }
    let cancel_url = format!(
        "/v1/tenants/{}/subscriptions/{}/cancel",
        url_part(&viewer.tenant),
        url_part(&sub.name)
    );
    let name = escape(&facts.display_name);
    if !viewer.may_change {
        let what = if sub.cancellation.is_some() {
            "Undo cancellation"
        } else {
            "Cancel"
        };
        return disabled_button(what, &viewer.who_can_buy);
    }
    // Without JavaScript each button posts its form (a confirmation page, then the change).
    let form = |op: &str| {
        format!(
            "<form class=\"inline\" method=\"post\" action=\"/forms/t/{}/subscriptions/{}\"><input type=\"hidden\" name=\"op\" value=\"{op}\">{}",
            url_part(&viewer.tenant),
            url_part(&sub.name),
            viewer.form.hidden(&format!("{op}-{}", sub.name))
        )
    };
    if sub.cancellation.is_some() {
        return format!(
            "{}<button type=\"submit\" data-call=\"DELETE {cancel_url}\" data-confirm=\"Keep {name}? Its cancellation is withdrawn and it renews as before.\">Undo cancellation</button></form>",
            form("undo")
        );
    }
    let end = sub
        .current_period_end
        .map(|e| format!(" It stays on until {}.", date(e)))
        .unwrap_or_default();
    format!(
        "{}<button type=\"submit\" data-call=\"POST {cancel_url}\" data-body='{{\"effective\":\"EndOfPeriod\"}}' \
data-confirm=\"Cancel {name} at the end of the period?{end}\">Cancel at end of period</button></form>{}",
        form("cancel"),
        change_form(sub, facts, viewer)
    )
}

/// An integration's field mapping as the tenant chose it ("Synced fields: target ← source").
pub fn mapping_note(sub: &SubscriptionView) -> String {
    if sub.field_mapping.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = sub
        .field_mapping
        .iter()
        .map(|(target, source)| format!("{} ← {}", escape(target), escape(source)))
        .collect();
    format!(
        "<small class=\"mapping-note\">Synced fields: {}</small>",
        pairs.join(", ")
    )
}

/// The page's content: the tenant's subscriptions, newest first (`bundle_names`: the display
/// names of the bundles their members belong to).
pub fn render(
    subscriptions: &[SubscriptionView],
    listings: &BTreeMap<String, ListingFacts>,
    bundle_names: &BTreeMap<String, String>,
    viewer: &Viewer,
) -> String {
    let mut out = String::from("<h1>My subscriptions</h1>");
    if subscriptions.is_empty() {
        let _ = write!(
            out,
            "<div class=\"empty\"><p>No add-ons yet.</p><a class=\"button primary\" href=\"{}\">Browse add-ons</a></div>",
            viewer.links.marketplace(&viewer.tenant)
        );
        return out;
    }
    out.push_str("<div id=\"subscriptions\" data-live><table class=\"subs\"><caption class=\"sr-only\">Your add-ons</caption><thead><tr><th scope=\"col\">Add-on</th><th scope=\"col\">Plan</th><th scope=\"col\">State</th><th scope=\"col\">Renewal or end</th><th scope=\"col\">Actions</th></tr></thead><tbody>");
    for sub in subscriptions {
        let facts = listings
            .get(&sub.listing)
            .cloned()
            .unwrap_or_else(|| ListingFacts {
                display_name: sub.listing.clone(),
                plans: Vec::new(),
            });
        let plan = facts
            .plans
            .iter()
            .find(|p| p.name == sub.plan)
            .map(|p| p.display_name.clone())
            .unwrap_or_else(|| sub.plan.clone());
        let _ = write!(
            out,
            "<tr id=\"sub-{id}\" data-phase=\"{phase:?}\"><th scope=\"row\"><a href=\"{href}\">{name}</a></th><td>{plan}{qty}{mapping}</td><td>{state}</td><td>{when}</td><td class=\"row-actions\">{actions}</td></tr>",
            id = escape(&sub.name),
            phase = sub.phase,
            href = viewer.links.detail(&viewer.tenant, &sub.listing),
            name = escape(&facts.display_name),
            plan = escape(&plan),
            mapping = mapping_note(sub),
            qty = if sub.quantity > 1 {
                format!(" × {}", sub.quantity)
            } else {
                String::new()
            },
            state = if sub.cancellation.is_some()
                && in_service(sub.phase)
                && sub.phase != Phase::CancelRequested
            {
                "Cancellation pending"
            } else {
                phase_words(sub.phase)
            },
            when = when(sub),
            actions = actions(sub, &facts, bundle_names, viewer),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

//! The superadmin console (`/admin`): the approval inbox (filter by phase, oldest first) with
//! each fitting step behind a confirmation, a tenant's support page, and the catalog as the
//! cluster holds it (read-only: the catalog changes by pull request).

use std::fmt::Write;

use super::forms::FormTokens;
use super::html::{escape, url_part};
use super::words::date;
use crate::api::catalog_source::CatalogSource;
use crate::api::listing::Listing;
use crate::api::subscription_action::ActionKind;
use crate::api::tenant_subscription::Phase;
use crate::front_door::console::inbox::InboxItem;
use crate::front_door::console::support::SupportView;

const PHASES: [Phase; 5] = [
    Phase::Requested,
    Phase::Invoiced,
    Phase::Paid,
    Phase::CancelRequested,
    Phase::Failed,
];

pub(super) fn nav() -> &'static str {
    "<nav class=\"chips\" aria-label=\"Console\"><a class=\"chip\" href=\"/admin\">Inbox</a><a class=\"chip\" href=\"/admin/catalog\">Catalog</a><a class=\"chip\" href=\"/admin/health\">Health</a></nav>"
}

fn action_words(action: ActionKind) -> &'static str {
    match action {
        ActionKind::Invoice => "Invoice",
        ActionKind::MarkPaid => "Mark paid",
        ActionKind::Approve => "Approve",
        ActionKind::Reject => "Reject",
        ActionKind::ConfirmCancel => "Confirm cancel",
        ActionKind::Rollback => "Roll back",
    }
}

/// One step on one request: a small form the page's script confirms and posts.
fn action_form(item: &InboxItem, action: ActionKind, form: &FormTokens) -> String {
    let url = format!(
        "/v1/admin/tenants/{}/subscriptions/{}/actions",
        url_part(&item.tenant),
        url_part(&item.subscription)
    );
    let id = format!("{}-{:?}", item.subscription, action).to_lowercase();
    let what = format!("{} for {}", item.listing_display_name, item.tenant);
    let (fields, confirm) = match action {
        ActionKind::Invoice => (
            format!(
                "<label for=\"amount-{id}\">Amount</label><input id=\"amount-{id}\" name=\"amount\" required pattern=\"[0-9]+(\\.[0-9]{{1,4}})?\" inputmode=\"decimal\">\
<label for=\"currency-{id}\">Currency</label><input id=\"currency-{id}\" name=\"currency\" required pattern=\"[A-Z]{{3}}\" value=\"USD\" maxlength=\"3\">"
            ),
            format!("Send an invoice for {what}?"),
        ),
        ActionKind::Reject => (
            format!(
                "<label for=\"reason-{id}\">Reason</label><input id=\"reason-{id}\" name=\"reason\" required>"
            ),
            format!("Reject {what}? The tenant sees it declined."),
        ),
        ActionKind::MarkPaid => (String::new(), format!("Mark the invoice for {what} paid?")),
        ActionKind::Approve => (
            String::new(),
            format!("Approve {what}? Its features are granted now."),
        ),
        ActionKind::ConfirmCancel => (String::new(), format!("End {what} now?")),
        ActionKind::Rollback => (
            String::new(),
            format!("Roll back {what}? Its billing is cancelled and it is marked failed."),
        ),
    };
    format!(
        "<form class=\"step\" method=\"post\" action=\"/forms{url}\" data-action-url=\"{url}\" data-action=\"{action:?}\" data-confirm=\"{confirm}\">\
<input type=\"hidden\" name=\"action\" value=\"{action:?}\">{hidden}{fields}<button type=\"submit\" class=\"primary\">{words}</button></form>",
        confirm = escape(&confirm),
        words = action_words(action),
        hidden = form.hidden(&id),
    )
}

/// The inbox's content.
pub fn render_inbox(items: &[InboxItem], phase: Option<Phase>, form: &FormTokens) -> String {
    let mut out = format!(
        "<h1>Approval inbox</h1>{}<form class=\"filters\" method=\"get\" action=\"/admin\"><label for=\"phase\">Phase</label><select id=\"phase\" name=\"phase\"><option value=\"\">All phases</option>",
        nav()
    );
    for p in PHASES {
        let _ = write!(
            out,
            "<option value=\"{p:?}\"{}>{p:?}</option>",
            if phase == Some(p) { " selected" } else { "" }
        );
    }
    out.push_str(
        "</select><span></span><button type=\"submit\" class=\"primary\">Filter</button></form>",
    );
    if items.is_empty() {
        out.push_str(
            "<div id=\"inbox\" data-live class=\"empty\"><p>Nothing waits for you.</p></div>",
        );
        return out;
    }
    out.push_str("<div id=\"inbox\" data-live data-pending><table class=\"subs\"><caption class=\"sr-only\">Requests, oldest first</caption><thead><tr><th scope=\"col\">Tenant</th><th scope=\"col\">Add-on</th><th scope=\"col\">Phase</th><th scope=\"col\">Since</th><th scope=\"col\">Steps</th></tr></thead><tbody>");
    for item in items {
        let steps: String = item
            .actions
            .iter()
            .map(|a| action_form(item, *a, form))
            .collect();
        let _ = write!(
            out,
            "<tr id=\"item-{id}\" data-phase=\"{phase:?}\"><td><a href=\"/admin/tenants/{t}\">{tenant}</a></td><td>{listing}<br><small>{plan} × {qty}{price}</small>{message}</td><td>{phase:?}</td><td>{since}</td><td class=\"row-actions\">{steps}</td></tr>",
            id = escape(&item.subscription),
            phase = item.phase,
            t = url_part(&item.tenant),
            tenant = escape(&item.tenant),
            listing = escape(&item.listing_display_name),
            plan = escape(&item.plan),
            qty = item.quantity,
            price = item
                .price
                .as_deref()
                .map(|p| format!(" · {}", escape(p)))
                .unwrap_or_default(),
            message = item
                .message
                .as_deref()
                .map(|m| format!("<br><small>{}</small>", escape(m)))
                .unwrap_or_default(),
            since = item.since.map(date).unwrap_or_default(),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A tenant's support page.
pub fn render_tenant(view: &SupportView) -> String {
    let mut out = format!(
        "<h1>{}</h1>{}<p>Tenant <code>{}</code> · base plan {} · HubSpot company {}{}{}</p><p>Billing contact: {} ({})</p>",
        escape(&view.display_name),
        nav(),
        escape(&view.tenant),
        escape(&view.base_plan),
        escape(view.hubspot_company_id.as_deref().unwrap_or("none yet")),
        if view.internal { " · internal" } else { "" },
        if view.suspended { " · suspended" } else { "" },
        escape(&view.billing_contact.name),
        escape(&view.billing_contact.email),
    );
    out.push_str("<section id=\"support\" data-live><h2>Subscriptions</h2>");
    for sub in &view.subscriptions {
        let ids = sub
            .hubspot
            .as_ref()
            .map(|h| {
                format!(
                    "deal {} · line item {}",
                    escape(h.deal_id.as_deref().unwrap_or("—")),
                    escape(h.line_item_id.as_deref().unwrap_or("—"))
                )
            })
            .unwrap_or_else(|| "no HubSpot records".into());
        let _ = write!(
            out,
            "<article class=\"panel\" id=\"sub-{}\"><h3>{} <small>{} · plan {} × {} · {:?}</small></h3><p>{ids}</p><ul>",
            escape(&sub.view.name),
            escape(&sub.view.listing),
            escape(&sub.view.name),
            escape(&sub.view.plan),
            sub.view.quantity,
            sub.view.phase,
        );
        for c in &sub.conditions {
            let _ = write!(
                out,
                "<li>{} = {} ({}): {}</li>",
                escape(&c.type_),
                escape(&c.status),
                escape(&c.reason),
                escape(&c.message)
            );
        }
        out.push_str("</ul><ol class=\"timeline\">");
        for t in &sub.transitions {
            let _ = write!(
                out,
                "<li>{} {:?} → {:?} by {}{}</li>",
                date(t.at.0),
                t.from,
                t.to,
                escape(&t.actor),
                t.reason
                    .as_deref()
                    .map(|r| format!(": {}", escape(r)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</ol></article>");
    }
    out.push_str("<h2>Entitlements</h2><ul>");
    for e in &view.entitlements {
        let _ = write!(
            out,
            "<li><code>{}</code> {:?} (from {})</li>",
            escape(&e.feature),
            e.state,
            escape(&e.source_subscription)
        );
    }
    out.push_str("</ul><h2>Last drift audit</h2>");
    if view.drift_findings.is_empty() {
        let _ = write!(
            out,
            "<p>No findings{}.</p>",
            view.last_audit
                .as_deref()
                .map(|a| format!(" ({})", escape(a)))
                .unwrap_or_default()
        );
    } else {
        out.push_str("<ul>");
        for f in &view.drift_findings {
            let _ = write!(out, "<li>{}</li>", escape(f));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    out
}

/// The catalog as the cluster holds it, with the git revision each source applied; `sources`
/// is the reason when they could not be read (they are read as the caller).
pub fn render_catalog(
    listings: &[&Listing],
    sources: &Result<Vec<CatalogSource>, String>,
) -> String {
    let mut out = format!(
        "<h1>Catalog</h1>{}<p>Read-only: the catalog changes by pull request.</p><ul>",
        nav()
    );
    if let Err(why) = sources {
        let _ = write!(
            out,
            "<li>The CatalogSources (and their git revision) cannot be read with your rights: {}</li>",
            escape(why)
        );
    }
    for source in sources.iter().flatten() {
        let status = source.status.clone().unwrap_or_default();
        let _ = write!(
            out,
            "<li>Source <code>{}</code>: applied revision <code>{}</code></li>",
            escape(source.metadata.name.as_deref().unwrap_or_default()),
            escape(
                status
                    .last_applied_revision
                    .as_deref()
                    .unwrap_or("none yet")
            )
        );
    }
    out.push_str("</ul><table class=\"subs\"><thead><tr><th scope=\"col\">Listing</th><th scope=\"col\">Type</th><th scope=\"col\">Lifecycle</th><th scope=\"col\">Visibility</th><th scope=\"col\">Plans</th></tr></thead><tbody>");
    for l in listings {
        let spec = &l.spec;
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{} <small><code>{}</code></small></th><td>{:?}</td><td>{:?}</td><td>{:?}</td><td>{}</td></tr>",
            escape(&spec.display_name),
            escape(l.metadata.name.as_deref().unwrap_or_default()),
            spec.type_,
            spec.lifecycle,
            spec.visibility,
            spec.plans.len()
        );
    }
    out.push_str("</tbody></table>");
    out
}

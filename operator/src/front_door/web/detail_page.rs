//! A listing's page (`/t/{tenant}/marketplace/{listing}`, a deep link Sales can send): hero with
//! the primary action, the buying flow of its type, tabs (Overview, Screenshots, What's new,
//! FAQ, Pricing) and the tenant's requests for it with their timelines.

use std::fmt::Write;

use serde_json::Value;

use super::catalog_page::{Viewer, action, card_notes, disabled_button, tile};
use super::html::{escape, url_part};
use super::markdown;
use super::promotion_code::{self, CodeField};
use super::words::{buy_verb, date, phase_words, pill};
use crate::api::listing::{Activation, ListingType};
use crate::api::tenant_subscription::Phase;
use crate::api::wizard_config::WizardConfigSpec;
use crate::front_door::storefront::catalog::CardState;
use crate::front_door::storefront::detail::{ListingDetail, PlanView, SubscriptionView};

fn hero(detail: &ListingDetail, viewer: &Viewer) -> String {
    let card = &detail.card;
    let (pill_words, pill_class) = pill(&card.state);
    let (meta, why) = card_notes(card, viewer, "Version ");
    let badges: String = detail
        .security_badges
        .iter()
        .map(|b| format!("<li>{}</li>", escape(b)))
        .collect();
    format!(
        "<section class=\"hero is-{pill_class}\" id=\"hero\" data-live data-state=\"{state}\"{pending}>{tile}\
<div class=\"hero-body\"><h1>{name}</h1><p class=\"tagline\">{tagline}</p><p class=\"meta\">{meta}</p>\
<p class=\"price\">{price}</p>{why}<ul class=\"badges\" aria-label=\"Security\">{badges}</ul></div>\
<div class=\"hero-action\"><span class=\"pill pill-{pill_class}\">{pill_words}</span>{action}</div></section>",
        state = card.state.name(),
        pending = matches!(card.state, CardState::Pending { .. })
            .then_some(" data-pending")
            .unwrap_or_default(),
        tile = tile(card),
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

/// " · Spring sale until 2027-04-01, then $49.00/mo" for a promoted plan; empty otherwise.
fn promotion_note(plan: &PlanView) -> String {
    plan.promotion
        .as_ref()
        .map(|p| format!(" · {}", promotion_words(p)))
        .unwrap_or_default()
}

/// "Spring sale until 2027-04-01, then $49.00/mo", escaped: a promotion and the price after it.
pub(super) fn promotion_words(p: &crate::front_door::storefront::detail::PromotionView) -> String {
    let until = p.ends_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    format!(
        "{} until {until}, then {}",
        escape(&p.display_name),
        escape(&p.list_price)
    )
}

fn plan_choices(plans: &[PlanView]) -> String {
    let mut out = String::from("<fieldset class=\"plans\"><legend>Plan</legend>");
    for (i, plan) in plans.iter().enumerate() {
        let trial = plan
            .trial_days
            .map(|d| format!(" · {d}-day free trial"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<label class=\"plan\"><input type=\"radio\" name=\"plan\" value=\"{value}\"{checked}{unit}> <strong>{name}</strong> <span>{price}{promotion}{trial}</span></label>",
            value = escape(&plan.name),
            checked = if i == 0 { " checked" } else { "" },
            unit = plan
                .unit
                .as_ref()
                .map(|u| format!(" data-unit=\"{}\"", escape(u)))
                .unwrap_or_default(),
            name = escape(&plan.display_name),
            price = escape(&plan.price),
            promotion = promotion_note(plan),
        );
    }
    out.push_str("</fieldset>");
    if plans.iter().any(|p| p.unit.is_some()) {
        out.push_str("<label for=\"quantity\">Quantity</label><input id=\"quantity\" name=\"quantity\" type=\"number\" min=\"1\" value=\"1\" inputmode=\"numeric\">");
    }
    if plans.iter().any(|p| p.trial_days.is_some()) {
        out.push_str("<label class=\"check\"><input type=\"checkbox\" name=\"trial\"> Start with the free trial</label>");
    }
    out
}

/// The fields of a WizardConfig's connection schema: one labelled control each, secrets masked.
pub fn wizard_fields(wizard: &WizardConfigSpec) -> String {
    let schema = &wizard.connection_schema;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::new();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    for (name, property) in properties {
        let id = format!("field-{}", url_part(name));
        let label = property
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or(name);
        let needed = required.contains(&name.as_str());
        let hint = property
            .get("description")
            .and_then(Value::as_str)
            .map(|d| format!("<small id=\"{id}-hint\">{}</small>", escape(d)))
            .unwrap_or_default();
        let described = if hint.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{id}-hint\"")
        };
        let _ = write!(
            out,
            "<label for=\"{id}\">{}{}</label>",
            escape(label),
            if needed { " (required)" } else { "" }
        );
        let req = if needed { " required" } else { "" };
        if let Some(choices) = property.get("enum").and_then(Value::as_array) {
            let _ = write!(
                out,
                "<select id=\"{id}\" data-field=\"{}\"{req}{described}>",
                escape(name)
            );
            for choice in choices.iter().filter_map(Value::as_str) {
                let _ = write!(out, "<option>{}</option>", escape(choice));
            }
            out.push_str("</select>");
        } else {
            let kind = if wizard.secret_fields.iter().any(|s| s == name) {
                "password"
            } else if matches!(
                property.get("type").and_then(Value::as_str),
                Some("integer" | "number")
            ) {
                "number"
            } else {
                "text"
            };
            let _ = write!(
                out,
                "<input id=\"{id}\" type=\"{kind}\" data-field=\"{}\" autocomplete=\"off\"{req}{described}>",
                escape(name)
            );
        }
        out.push_str(&hint);
    }
    out
}

fn field_mapping(wizard: &WizardConfigSpec) -> String {
    let Some(mapping) = &wizard.field_mapping else {
        return String::new();
    };
    let mut out = String::from("<fieldset class=\"mapping\"><legend>Field mapping</legend>");
    for target in &mapping.targets {
        let id = format!("map-{}", url_part(&target.name));
        let needed = mapping.required.contains(&target.name);
        let _ = write!(
            out,
            "<label for=\"{id}\">{}{}</label><select id=\"{id}\" data-mapping=\"{}\"{}><option value=\"\">Not synced</option>",
            escape(&target.label),
            if needed { " (required)" } else { "" },
            escape(&target.name),
            if needed { " required" } else { "" }
        );
        for source in &mapping.sources {
            let _ = write!(
                out,
                "<option value=\"{}\">{}</option>",
                escape(&source.name),
                escape(&source.label)
            );
        }
        out.push_str("</select>");
    }
    out.push_str("</fieldset>");
    out
}

/// The buying flow of an available listing, by type.
fn buy_panel(
    detail: &ListingDetail,
    wizard: Option<&WizardConfigSpec>,
    viewer: &Viewer,
    code: &CodeField,
) -> String {
    let card = &detail.card;
    let mut out =
        String::from("<section id=\"buy\" class=\"panel\" data-live aria-labelledby=\"buy-h\">");
    if card.type_ == ListingType::Partner {
        let Some(partner) = &detail.partner else {
            return String::new();
        };
        let _ = write!(
            out,
            "<h2 id=\"buy-h\">Set up with {name}</h2><p>{name} runs this on its own site; nothing is added to your bill here.</p>\
<a class=\"button primary\" id=\"partner-go\" href=\"{url}\" target=\"_blank\" rel=\"noopener noreferrer\">Visit partner</a>\
<p id=\"partner-note\" class=\"note\" role=\"status\" hidden>Redirecting to the partner's site; setup completes there.</p></section>",
            name = escape(&partner.name),
            url = escape(&partner.url),
        );
        return out;
    }
    let verb = buy_verb(card.type_, card.activation);
    if card.state != CardState::Available {
        return String::from("<section id=\"buy\" data-live hidden></section>");
    }
    let _ = write!(out, "<h2 id=\"buy-h\">{verb}</h2>");
    if !viewer.may_buy {
        out.push_str(&disabled_button(verb, &viewer.who_can_buy));
        out.push_str("</section>");
        return out;
    }
    let approval = card.activation == Activation::Approval;
    let note = match (wizard, approval) {
        (Some(w), _) => w.billing_confirmation.clone(),
        (None, true) => {
            "Your request is reviewed first; you are billed only once it is accepted.".into()
        }
        (None, false) => "It is ready within a minute.".into(),
    };
    // Without JavaScript the form posts to /forms (a confirmation page, then the purchase);
    // an integration's wizard needs the script (its connection test).
    let no_script = if wizard.is_none() && !viewer.links.is_static() {
        format!(
            " method=\"post\" action=\"/forms/t/{}/buy\"",
            url_part(&viewer.tenant)
        )
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<form id=\"buy-form\"{no_script} data-listing=\"{listing}\" data-confirm-url=\"{href}/confirmation\" data-note=\"{note}\"{wizard_attr}>\
<input type=\"hidden\" name=\"listing\" value=\"{listing}\">{hidden}",
        listing = escape(&card.name),
        href = viewer.links.detail(&viewer.tenant, &card.name),
        note = escape(&note),
        wizard_attr = if wizard.is_some() { " data-wizard" } else { "" },
        hidden = viewer.form.hidden("buy"),
    );
    out.push_str(&plan_choices(&detail.plans));
    out.push_str(&promotion_code::render(code));
    if let Some(w) = wizard {
        let _ = write!(
            out,
            "<fieldset class=\"wizard\"><legend>{}</legend>{}</fieldset>{}\
<div class=\"test-row\"><button type=\"button\" id=\"test-connection\" data-url=\"/v1/tenants/{}/catalog/{}/wizard/test\">Test connection</button>\
<span class=\"spinner\" id=\"test-spinner\" hidden aria-hidden=\"true\"></span>\
<p id=\"test-result\" role=\"status\" aria-live=\"polite\"></p></div>",
            escape(&w.title),
            wizard_fields(w),
            field_mapping(w),
            url_part(&viewer.tenant),
            url_part(&card.name),
        );
        out.push_str("<button type=\"submit\" class=\"primary\" id=\"buy-submit\" disabled>Save &amp; sync</button><small id=\"buy-why\"> Test the connection first.</small>");
    } else {
        let _ = write!(
            out,
            "<button type=\"submit\" class=\"primary\" id=\"buy-submit\">{verb}</button>"
        );
    }
    out.push_str("</form></section>");
    out
}

fn timeline(sub: &SubscriptionView) -> String {
    let mut out = format!(
        "<li class=\"request\" id=\"request-{}\"><p><strong>{}</strong> · plan {} · since {}</p><ol class=\"timeline\">",
        escape(&sub.name),
        phase_words(sub.phase),
        escape(&sub.plan),
        sub.created_at.map(date).unwrap_or_default()
    );
    for step in &sub.history {
        let _ = write!(
            out,
            "<li><time datetime=\"{at}\">{day}</time> {words}</li>",
            at = step.at,
            day = date(step.at),
            words = phase_words(step.to)
        );
    }
    out.push_str("</ol></li>");
    out
}

fn requests(detail: &ListingDetail) -> String {
    let pending = detail.your_subscriptions.iter().any(|s| {
        matches!(
            s.phase,
            Phase::Requested | Phase::Invoiced | Phase::Paid | Phase::Provisioning
        )
    });
    let mut out = format!(
        "<section id=\"requests\" data-live{} aria-labelledby=\"requests-h\"><h2 id=\"requests-h\">Your requests for this app</h2>",
        if pending { " data-pending" } else { "" }
    );
    if detail.your_subscriptions.is_empty() {
        out.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        out.push_str("<ul class=\"requests\">");
        for sub in &detail.your_subscriptions {
            out.push_str(&timeline(sub));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    out
}

fn tabs(detail: &ListingDetail) -> String {
    let mut out = String::from(
        "<nav class=\"tabs\" aria-label=\"About this add-on\"><a href=\"#overview\">Overview</a><a href=\"#screenshots\">Screenshots</a>\
<a href=\"#whats-new\">What's new</a><a href=\"#faq\">FAQ</a><a href=\"#pricing\">Pricing</a></nav>",
    );
    out.push_str(
        "<section id=\"overview\" class=\"tab-panel\"><h2>Overview</h2><div class=\"prose\">",
    );
    out.push_str(&markdown::render(
        detail.description.as_deref().unwrap_or(""),
    ));
    out.push_str("</div>");
    if !detail.what_you_get.is_empty() {
        out.push_str("<h3>What you get</h3><ul>");
        for item in &detail.what_you_get {
            let _ = write!(out, "<li>{}</li>", escape(item));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section><section id=\"screenshots\" class=\"tab-panel\"><h2>Screenshots</h2>");
    if detail.screenshots.is_empty() {
        out.push_str("<p class=\"muted\">No screenshots yet.</p>");
    }
    for shot in &detail.screenshots {
        if shot.url.starts_with("https://") {
            let _ = write!(
                out,
                "<figure><img src=\"{}\" alt=\"{alt}\" loading=\"lazy\" width=\"640\" height=\"400\"><figcaption>{alt}</figcaption></figure>",
                escape(&shot.url),
                alt = escape(&shot.alt)
            );
        }
    }
    out.push_str("</section><section id=\"whats-new\" class=\"tab-panel\"><h2>What's new</h2>");
    for release in &detail.releases {
        let _ = write!(
            out,
            "<article class=\"release\"><h3>{}{} <small>{}</small></h3><p>{}</p><div class=\"prose\">{}</div></article>",
            escape(&release.version),
            if release.major {
                " · breaking changes"
            } else {
                ""
            },
            escape(&release.date),
            escape(&release.summary),
            markdown::render(release.notes.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</section><section id=\"faq\" class=\"tab-panel\"><h2>FAQ</h2>");
    for entry in &detail.faq {
        let _ = write!(
            out,
            "<details><summary>{}</summary><div class=\"prose\">{}</div></details>",
            escape(&entry.q),
            markdown::render(&entry.a)
        );
    }
    out.push_str("</section><section id=\"pricing\" class=\"tab-panel\"><h2>Pricing</h2><div class=\"plans-row\">");
    if detail.plans.is_empty() {
        out.push_str("<p>Billed by the partner, not by us.</p>");
    }
    for plan in &detail.plans {
        let _ = write!(
            out,
            "<div class=\"plan-box\"><h3>{}</h3><p class=\"price\">{}</p>{}{}</div>",
            escape(&plan.display_name),
            escape(&plan.price),
            match promotion_note(plan).strip_prefix(" · ") {
                Some(note) => format!("<p class=\"promotion\">{note}</p>"),
                None => String::new(),
            },
            plan.trial_days
                .map(|d| format!("<p>{d}-day free trial</p>"))
                .unwrap_or_default()
        );
    }
    out.push_str("</div></section>");
    out
}

/// The detail page's content; the buy form's promotion code field shows `code`.
pub fn render(
    detail: &ListingDetail,
    wizard: Option<&WizardConfigSpec>,
    viewer: &Viewer,
    code: &CodeField,
) -> String {
    let mut out = format!(
        "<p class=\"crumbs\"><a href=\"{}\">All add-ons</a></p>",
        viewer.links.marketplace(&viewer.tenant)
    );
    out.push_str(&hero(detail, viewer));
    out.push_str(&buy_panel(detail, wizard, viewer, code));
    out.push_str(&requests(detail));
    out.push_str(&tabs(detail));
    out
}

//! The words of every message: a subject, a text part and an HTML part per audience and event,
//! with `{{variable}}` placeholders. An installation overrides any part with a key of the
//! ConfigMap [`OVERRIDES_CONFIG_MAP`] named `<audience>.<Event>.<part>` (e.g.
//! `Tenants.Activated.subject`). Tenant copy speaks of what the tenant sees ("Submitted for
//! review", "Invoice ready", "Activated"), never of how the marketplace works inside.

use std::collections::BTreeMap;

use crate::api::notification_channel::{NotificationAudience as A, NotificationEventKind as K};

/// The ConfigMap (operator namespace) whose keys override template parts.
pub const OVERRIDES_CONFIG_MAP: &str = "marketplace-notification-templates";

/// Words tenant copy never contains (internal mechanics and system names), lower case.
pub const INTERNAL_WORDS: &[&str] = &[
    "superadmin",
    "manual approval",
    "approval",
    "hubspot",
    "deal",
    "line item",
    "operator",
    "reconcil",
    "entitlement",
    "kubernetes",
    "namespace",
    "subscriptionaction",
    "cluster",
];

/// Every variable a template may use, with what it is.
pub const VARIABLES: &[(&str, &str)] = &[
    ("tenant", "the tenant's display name"),
    ("listing", "the add-on's display name"),
    ("plan", "the plan's display name"),
    ("price", "the price as the tenant reads it"),
    ("quickstart", "where to find the add-on in the product"),
    (
        "subscription",
        "namespace/name of the subscription (internal copy only)",
    ),
    ("date", "when it happened, or the date it refers to"),
    ("reason", "the recorded reason (internal copy only)"),
    ("version", "the add-on's newest version (announcements)"),
    (
        "summary",
        "the add-on's tagline, or the release's summary (announcements)",
    ),
    (
        "balance",
        "prepaid credits left, with the currency (credit alerts)",
    ),
    (
        "threshold",
        "the balance below which credits count as low, with the currency (credit alerts)",
    ),
];

/// One message: its subject and text body (the HTML part is derived from the text unless
/// overridden).
pub struct Template {
    pub audience: A,
    pub event: K,
    pub subject: &'static str,
    pub text: &'static str,
}

const fn t(audience: A, event: K, subject: &'static str, text: &'static str) -> Template {
    Template {
        audience,
        event,
        subject,
        text,
    }
}

/// The built-in messages. An (audience, event) pair absent here is not sent to that audience.
pub const TEMPLATES: &[Template] = &[
    t(
        A::Tenants,
        K::NewRequest,
        "Submitted for review: {{listing}}",
        "Hello {{tenant}},\n\nyour request for {{listing}} ({{plan}}, {{price}}) was submitted for review. We will write again when your invoice is ready.",
    ),
    t(
        A::Tenants,
        K::InvoiceReady,
        "Invoice ready: {{listing}}",
        "Hello {{tenant}},\n\nyour invoice for {{listing}} ({{plan}}, {{price}}) is ready. {{listing}} is pending activation until it is paid.",
    ),
    t(
        A::Tenants,
        K::InvoiceOverdue,
        "Reminder: your invoice for {{listing}} is unpaid",
        "Hello {{tenant}},\n\nyour invoice for {{listing}} ({{plan}}, {{price}}) sent on {{date}} is still unpaid. {{listing}} stays pending activation until it is paid.",
    ),
    t(
        A::Tenants,
        K::Activated,
        "Activated: {{listing}}",
        "Hello {{tenant}},\n\n{{listing}} ({{plan}}, {{price}}) is active.\n\nGet started: {{quickstart}}",
    ),
    t(
        A::Tenants,
        K::PaymentFailed,
        "Payment problem: {{listing}} is paused",
        "Hello {{tenant}},\n\nwe could not collect the payment for {{listing}} ({{plan}}, {{price}}), so it is paused. Please update your payment method or pay the open invoice; {{listing}} resumes as soon as the payment succeeds. Your data is kept.",
    ),
    t(
        A::Tenants,
        K::CancellationRequested,
        "Cancellation received: {{listing}}",
        "Hello {{tenant}},\n\nwe received your request to cancel {{listing}} ({{plan}}). We will confirm when it ends.",
    ),
    t(
        A::Tenants,
        K::CancellationConfirmed,
        "Cancelled: {{listing}}",
        "Hello {{tenant}},\n\n{{listing}} ({{plan}}) is cancelled as of {{date}}. You will not be charged for it again.",
    ),
    t(
        A::Tenants,
        K::TrialEnding,
        "Your {{listing}} trial ends on {{date}}",
        "Hello {{tenant}},\n\nyour free trial of {{listing}} ends on {{date}}. After that, {{plan}} costs {{price}}. To stop before then, cancel it in the marketplace.",
    ),
    t(
        A::Tenants,
        K::IdleAddOn,
        "Getting the most out of {{listing}}",
        "Hello {{tenant}},\n\nyou have {{listing}} ({{plan}}, {{price}}) but nobody seems to have used it lately. Here is where to start: {{quickstart}}",
    ),
    t(
        A::Tenants,
        K::NewListing,
        "New in the marketplace: {{listing}}",
        "Hello {{tenant}},\n\n{{listing}} is now available in the marketplace: {{summary}}\n\nOpen the marketplace to see its plans and prices.",
    ),
    t(
        A::Tenants,
        K::MajorRelease,
        "{{listing}} {{version}} is out",
        "Hello {{tenant}},\n\n{{listing}} {{version}} was released on {{date}}: {{summary}}\n\nThe release notes are on its page in the marketplace.",
    ),
    t(
        A::Tenants,
        K::CreditBalanceLow,
        "Your prepaid credits are running low",
        "Hello {{tenant}},\n\nyour prepaid credits fell below {{threshold}} on {{date}}; {{balance}} are left. Usage beyond your credits is invoiced at your plan's prices. To keep paying with credits, ask us for a top-up or turn on automatic top-ups.",
    ),
    t(
        A::Superadmins,
        K::NewRequest,
        "New request: {{listing}} for {{tenant}}",
        "{{tenant}} asked for {{listing}} ({{plan}}, {{price}}); it waits for an invoice and manual approval.\n\nSubscription: {{subscription}}",
    ),
    t(
        A::Superadmins,
        K::ProvisioningFailed,
        "Provisioning failed: {{listing}} for {{tenant}}",
        "Provisioning {{listing}} ({{plan}}) for {{tenant}} failed and was rolled back: {{reason}}\n\nSubscription: {{subscription}}",
    ),
    t(
        A::Superadmins,
        K::PaymentFailed,
        "Payment failed: {{listing}} for {{tenant}}",
        "The payment of {{tenant}} for {{listing}} ({{plan}}, {{price}}) failed; its features are suspended: {{reason}}\n\nSubscription: {{subscription}}",
    ),
    t(
        A::Superadmins,
        K::CancellationRequested,
        "Cancellation requested: {{listing}} for {{tenant}}",
        "{{tenant}} asked to cancel {{listing}} ({{plan}}): {{reason}}\n\nSubscription: {{subscription}}",
    ),
    t(
        A::Superadmins,
        K::InvoiceOverdue,
        "Invoice overdue: {{listing}} for {{tenant}}",
        "The invoice of {{tenant}} for {{listing}} ({{plan}}, {{price}}) sent on {{date}} is unpaid.\n\nSubscription: {{subscription}}",
    ),
    t(
        A::Superadmins,
        K::CreditBalanceLow,
        "Credits low: {{tenant}}",
        "The prepaid credits of {{tenant}} fell below {{threshold}} on {{date}}; {{balance}} are left.",
    ),
    t(
        A::Superadmins,
        K::DriftUnhealed,
        "Billing drift not healed: {{listing}} for {{tenant}}",
        "The billing record of {{tenant}} for {{listing}} ({{plan}}) disagrees with the subscription, and healing it has kept failing since {{date}}: {{reason}}\n\nSubscription: {{subscription}}\nRunbook: MarketplaceDriftNotHealed in the README.",
    ),
    t(
        A::Tasks,
        K::NewRequest,
        "Review and invoice {{listing}} for {{tenant}}",
        "{{tenant}} asked for {{listing}} ({{plan}}, {{price}}). Send the invoice, then mark it paid and approve.\n\nSubscription: {{subscription}}",
    ),
    t(
        A::Tasks,
        K::ProvisioningFailed,
        "Investigate failed provisioning of {{listing}} for {{tenant}}",
        "Provisioning {{listing}} ({{plan}}) for {{tenant}} failed: {{reason}}\n\nSubscription: {{subscription}}",
    ),
    t(
        A::Tasks,
        K::CancellationRequested,
        "Confirm the cancellation of {{listing}} for {{tenant}}",
        "{{tenant}} asked to cancel {{listing}} ({{plan}}): {{reason}}\n\nSubscription: {{subscription}}",
    ),
];

/// Whether `audience` has a message for `event`.
pub fn has_message(audience: A, event: K) -> bool {
    TEMPLATES
        .iter()
        .any(|t| t.audience == audience && t.event == event)
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a template could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("no message for {0:?} about {1:?}")]
    NoMessage(A, K),
    #[error("template {key}: unknown variable {{{{{variable}}}}}")]
    UnknownVariable { key: String, variable: String },
    #[error("template {key}: unclosed {{{{")]
    Unclosed { key: String },
}

/// The ConfigMap key of one part.
pub fn override_key(audience: A, event: K, part: &str) -> String {
    format!("{audience:?}.{event:?}.{part}")
}

/// Renders the message of `audience` about `event` with `vars`, taking any part found in
/// `overrides` (the ConfigMap's data) instead of the built-in one.
pub fn render(
    audience: A,
    event: K,
    vars: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> Result<Rendered, TemplateError> {
    let template = TEMPLATES
        .iter()
        .find(|t| t.audience == audience && t.event == event)
        .ok_or(TemplateError::NoMessage(audience, event))?;
    let part = |name: &str, builtin: &str| {
        let key = override_key(audience, event, name);
        let source = overrides.get(&key).map(String::as_str).unwrap_or(builtin);
        (key, source.to_string())
    };
    let (key, subject) = part("subject", template.subject);
    let subject = fill(&key, &subject, vars, |v| v.replace(['\r', '\n'], " "))?;
    let (key, text) = part("text", template.text);
    let text_body = fill(&key, &text, vars, str::to_string)?;
    let html = match overrides.get(&override_key(audience, event, "html")) {
        Some(source) => fill(
            &override_key(audience, event, "html"),
            source,
            vars,
            escape_html,
        )?,
        None => html_of_text(&key, &text, &subject, vars)?,
    };
    Ok(Rendered {
        subject,
        text: text_body,
        html,
    })
}

/// The HTML part of a text template: the static words escaped, paragraphs kept, every value
/// escaped.
fn html_of_text(
    key: &str,
    text: &str,
    subject: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    let mut body = String::new();
    for paragraph in text.split("\n\n") {
        // Static words are escaped as text; placeholders become values, escaped too.
        let filled = fill(key, &escape_html(paragraph), vars, escape_html)?;
        body.push_str("<p>");
        body.push_str(&filled.replace('\n', "<br>"));
        body.push_str("</p>\n");
    }
    Ok(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family:sans-serif\">\n{body}</body></html>\n",
        escape_html(subject)
    ))
}

/// Replaces each `{{name}}` of `source` with `escape(value)`; unknown names are errors.
fn fill(
    key: &str,
    source: &str,
    vars: &BTreeMap<String, String>,
    escape: impl Fn(&str) -> String,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
            key: key.to_string(),
        })?;
        let name = after[..end].trim();
        let value = vars
            .get(name)
            .ok_or_else(|| TemplateError::UnknownVariable {
                key: key.to_string(),
                variable: name.to_string(),
            })?;
        out.push_str(&escape(value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn escape_html(text: &str) -> String {
    crate::front_door::web::html::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sample values, with characters HTML must escape.
    fn sample() -> BTreeMap<String, String> {
        VARIABLES
            .iter()
            .map(|(name, _)| (name.to_string(), format!("<{name} & \"co\">")))
            .collect()
    }

    #[test]
    fn every_template_renders_with_every_variable_filled_escaped_and_no_internal_word_for_tenants()
    {
        let vars = sample();
        for t in TEMPLATES {
            let r = render(t.audience, t.event, &vars, &BTreeMap::new())
                .unwrap_or_else(|e| panic!("{:?}/{:?}: {e}", t.audience, t.event));
            for part in [&r.subject, &r.text, &r.html] {
                assert!(!part.contains("{{") && !part.contains("}}"), "{part}");
            }
            assert!(!r.html.contains("<listing"), "unescaped value: {}", r.html);
            if r.html.contains("listing") {
                assert!(r.html.contains("&lt;listing &amp; &quot;co&quot;&gt;"));
            }
            assert!(!r.subject.contains('\n'));
            if t.audience == A::Tenants {
                for (name, _) in [("subscription", ()), ("reason", ())] {
                    assert!(
                        !t.text.contains(&format!("{{{{{name}}}}}")),
                        "tenant copy shows internal {name}"
                    );
                }
                let words = format!("{} {} {}", t.subject, t.text, r.html).to_lowercase();
                for word in INTERNAL_WORDS {
                    assert!(
                        !words.contains(word),
                        "{:?}/{:?} says {word:?}",
                        t.audience,
                        t.event
                    );
                }
            }
        }
    }

    #[test]
    fn overrides_replace_parts_and_unknown_variables_are_named() {
        let vars = sample();
        let key = override_key(A::Tenants, K::Activated, "subject");
        assert_eq!(key, "Tenants.Activated.subject");
        let overrides = BTreeMap::from([
            (key.clone(), "Ready: {{listing}}".to_string()),
            (
                override_key(A::Tenants, K::Activated, "html"),
                "<b>{{listing}}</b>".to_string(),
            ),
        ]);
        let r = render(A::Tenants, K::Activated, &vars, &overrides).unwrap();
        assert_eq!(r.subject, "Ready: <listing & \"co\">");
        assert_eq!(r.html, "<b>&lt;listing &amp; &quot;co&quot;&gt;</b>");
        let bad = BTreeMap::from([(key.clone(), "Hi {{nope}}".to_string())]);
        assert_eq!(
            render(A::Tenants, K::Activated, &vars, &bad),
            Err(TemplateError::UnknownVariable {
                key,
                variable: "nope".into()
            })
        );
        assert!(!has_message(A::Tenants, K::ProvisioningFailed));
    }
}

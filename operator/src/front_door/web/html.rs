//! Escaping and the page frame every page shares (head, header, payment banner, footer).

use std::fmt::Write;

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::links::Links;
use super::theme::Theme;

/// Only this server's own scripts, styles, forms and connections (catalog images may come from
/// https); no framing by other sites (a framed Confirm button could be clicked by deception).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; connect-src 'self'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page as a response: one person's, so never cached; with the policy above even if
/// escaping ever slipped.
pub fn respond(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        Html(body),
    )
        .into_response()
}

/// `text` safe inside HTML text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment or query value, percent-encoded.
pub fn url_part(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What every page of a tenant's storefront knows besides its own content.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    pub theme: Theme,
    /// The tenant's name (`/t/{tenant}`), if the page is a tenant's.
    pub tenant: Option<String>,
    pub tenant_display_name: String,
    /// Whoever is signed in, as the cluster names them.
    pub signed_in_as: Option<String>,
    /// Sent back with every write (`X-CSRF-Token`); none when signed in through a proxy.
    pub csrf_token: Option<String>,
    /// Display names of the add-ons suspended because a payment failed.
    pub suspended_addons: Vec<String>,
    /// Static previews have no script, no sign-in and file-name links.
    pub links: Links,
}

/// A whole page: `title`, and `main` (already HTML) inside the shared frame.
pub fn page(frame: &Frame, title: &str, main: &str) -> String {
    let theme = &frame.theme;
    let brand = escape(&theme.brand_color);
    let product = escape(&theme.product_name);
    let mut out = String::with_capacity(main.len() + 4096);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · {product}</title>\
<link rel=\"stylesheet\" href=\"{css}\">\
<style>:root{{--brand:{brand}}}</style>",
        title = escape(title),
        css = frame.links.stylesheet(),
    );
    if let Some(token) = &frame.csrf_token {
        let _ = write!(
            out,
            "<meta name=\"csrf-token\" content=\"{}\">",
            escape(token)
        );
    }
    if !frame.links.is_static() {
        out.push_str("<script src=\"/web/assets/site.js\" defer></script>");
    }
    let _ = write!(
        out,
        "</head><body{}>",
        frame
            .tenant
            .as_ref()
            .map(|t| format!(" data-tenant=\"{}\"", escape(t)))
            .unwrap_or_default()
    );
    out.push_str("<a class=\"skip\" href=\"#main\">Skip to content</a><header class=\"top\"><div class=\"wrap top-row\">");
    let home = frame
        .tenant
        .as_ref()
        .map(|t| frame.links.marketplace(t))
        .unwrap_or_else(|| "/".into());
    let _ = write!(out, "<a class=\"brand\" href=\"{home}\">");
    if let Some(logo) = &theme.logo_url {
        let _ = write!(
            out,
            "<img src=\"{}\" alt=\"\" width=\"28\" height=\"28\">",
            escape(logo)
        );
    }
    let _ = write!(out, "<span>{product}</span></a><nav aria-label=\"Main\">");
    if let Some(t) = &frame.tenant {
        let _ = write!(
            out,
            "<a href=\"{}\">Marketplace</a>",
            frame.links.marketplace(t)
        );
        if !frame.links.is_static() {
            let _ = write!(
                out,
                "<a href=\"{}\">My subscriptions</a>",
                frame.links.subscriptions(t)
            );
        }
    }
    out.push_str("</nav><div class=\"who\">");
    match &frame.signed_in_as {
        _ if frame.links.is_static() => out.push_str("<span>Preview</span>"),
        Some(who) => {
            let _ = write!(
                out,
                "<span>{}</span><form method=\"post\" action=\"/signout\">{}<button class=\"link\" type=\"submit\">Sign out</button></form>",
                escape(who),
                frame
                    .csrf_token
                    .as_ref()
                    .map(|t| format!(
                        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
                        escape(t)
                    ))
                    .unwrap_or_default()
            );
        }
        None => out.push_str("<a href=\"/signin\">Sign in</a>"),
    }
    out.push_str("</div></div></header>");
    out.push_str(&payment_banner(frame));
    let _ = write!(
        out,
        "<main id=\"main\" class=\"wrap\" tabindex=\"-1\"><div id=\"flash\" role=\"status\" aria-live=\"polite\"></div>{main}</main>\
<dialog id=\"confirm\" aria-labelledby=\"confirm-text\"><form method=\"dialog\"><p id=\"confirm-text\"></p>\
<p id=\"confirm-note\" class=\"muted\"></p><div class=\"actions\"><button value=\"cancel\" class=\"secondary\">Cancel</button>\
<button value=\"ok\" id=\"confirm-ok\" class=\"primary\">Confirm</button></div></form></dialog>\
<footer class=\"foot\"><div class=\"wrap\">{}</div></footer></body></html>",
        escape(&theme.footer)
    );
    out
}

/// "Update your payment details to keep using ...": on every page while a payment failed.
pub fn payment_banner(frame: &Frame) -> String {
    if frame.suspended_addons.is_empty() {
        return "<div id=\"banner\" data-live></div>".into();
    }
    let names: Vec<String> = frame.suspended_addons.iter().map(|n| escape(n)).collect();
    format!(
        "<div id=\"banner\" data-live class=\"banner\" role=\"alert\"><div class=\"wrap\">\
<strong>Payment failed.</strong> Update your payment details to keep using {}.</div></div>",
        names.join(", ")
    )
}

//! The console's tenant health page (`/admin/health`): the filters as a form, one row per
//! tenant with its verdict as a badge that says it in words (colour only repeats it), a CSV
//! link for the same filters, and the MRR by listing, plan and currency. Pure.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::html::{escape, url_part};
use crate::front_door::health_routes::HealthReport;
use crate::health::filter::{FilterProblem, HEALTH_PARAMETERS};
use crate::health::{Revenue, Verdict};

fn badge(verdict: Verdict) -> String {
    let class = match verdict {
        Verdict::AtRisk => "pill-suspended",
        Verdict::UpsellReady => "pill-available",
        Verdict::Healthy => "pill-installed",
    };
    format!(
        "<span class=\"pill {class}\" data-verdict=\"{}\">{}</span>",
        verdict.name(),
        verdict.words()
    )
}

/// The query string of `query`'s filters (format aside), for the CSV link.
fn query_string(query: &BTreeMap<String, String>) -> String {
    query
        .iter()
        .filter(|(k, v)| k.as_str() != "format" && !v.trim().is_empty())
        .filter(|(k, _)| HEALTH_PARAMETERS.contains(&k.as_str()))
        .map(|(k, v)| format!("{}={}&", url_part(k), url_part(v.trim())))
        .collect()
}

fn text_field(out: &mut String, name: &str, label: &str, query: &BTreeMap<String, String>) {
    let value = query.get(name).map(String::as_str).unwrap_or_default();
    let _ = write!(
        out,
        "<div><label for=\"f-{name}\">{label}</label><input id=\"f-{name}\" name=\"{name}\" value=\"{}\"></div>",
        escape(value)
    );
}

fn days_field(out: &mut String, name: &str, label: &str, query: &BTreeMap<String, String>) {
    let value = query.get(name).map(String::as_str).unwrap_or_default();
    let _ = write!(
        out,
        "<div><label for=\"f-{name}\">{label}</label><input id=\"f-{name}\" name=\"{name}\" type=\"number\" min=\"0\" max=\"36500\" inputmode=\"numeric\" value=\"{}\"></div>",
        escape(value)
    );
}

fn filters(query: &BTreeMap<String, String>) -> String {
    let mut out = String::from(
        "<form class=\"health-filters\" method=\"get\" action=\"/admin/health\" aria-label=\"Filter tenants\">",
    );
    text_field(&mut out, "plan", "Base plan", query);
    text_field(&mut out, "region", "Region", query);
    text_field(&mut out, "segment", "Segment", query);
    days_field(&mut out, "minAgeDays", "Age at least (days)", query);
    days_field(&mut out, "maxAgeDays", "Age at most (days)", query);
    let chosen = query.get("verdict").map(String::as_str).unwrap_or_default();
    out.push_str("<div><label for=\"f-verdict\">Verdict</label><select id=\"f-verdict\" name=\"verdict\"><option value=\"\">All verdicts</option>");
    for v in Verdict::ALL {
        let _ = write!(
            out,
            "<option value=\"{}\"{}>{}</option>",
            v.name(),
            if chosen == v.name() { " selected" } else { "" },
            v.words()
        );
    }
    out.push_str(
        "</select></div><div><button type=\"submit\" class=\"primary\">Filter</button></div></form>",
    );
    out
}

fn tenant_rows(report: &HealthReport) -> String {
    let mut out = String::new();
    for t in &report.tenants {
        let usage = t
            .max_usage_percent()
            .map(|p| format!("{p}% of included"))
            .unwrap_or_else(|| "—".into());
        let adoption = t
            .adoption_percent
            .map(|p| format!("{p}% ({} of {})", t.features_adopted(), t.features.len()))
            .unwrap_or_else(|| "no features".into());
        let reasons: String = t
            .reasons
            .iter()
            .map(|r| format!("<li>{}</li>", escape(r)))
            .collect();
        let _ = write!(
            out,
            "<tr id=\"health-{id}\"><th scope=\"row\"><a href=\"/admin/tenants/{link}\">{name}</a><br><small>{id}</small></th><td>{plan}</td><td>{region}</td><td>{segment}</td><td>{age}</td><td>{addons}</td><td>{adoption}</td><td>{usage}</td><td>{payments}</td><td>{cancellations}</td><td>{badge}<ul class=\"timeline\">{reasons}</ul></td></tr>",
            id = escape(&t.tenant),
            link = url_part(&t.tenant),
            name = escape(&t.display_name),
            plan = escape(&t.base_plan),
            region = escape(t.region.as_deref().unwrap_or("—")),
            segment = escape(t.segment.as_deref().unwrap_or("—")),
            age = t.age_days.map(|d| d.to_string()).unwrap_or_default(),
            addons = t.add_ons_active.len(),
            payments = t.payment_problems,
            cancellations = t.cancellations,
            badge = badge(t.verdict),
        );
    }
    out
}

fn revenue_table(revenue: &Revenue) -> String {
    let mut out = String::from(
        "<section aria-labelledby=\"mrr-title\"><h2 id=\"mrr-title\">Monthly recurring revenue</h2><p><a href=\"/v1/revenue/mrr?format=csv\" download>Download MRR as CSV</a></p>",
    );
    if revenue.lines.is_empty() {
        out.push_str("<p class=\"empty\">No billed subscriptions yet.</p></section>");
        return out;
    }
    out.push_str("<table class=\"subs\" id=\"mrr\"><caption class=\"sr-only\">MRR by listing, plan and currency</caption><thead><tr><th scope=\"col\">Listing</th><th scope=\"col\">Plan</th><th scope=\"col\">Currency</th><th scope=\"col\">Subscriptions</th><th scope=\"col\">MRR</th></tr></thead><tbody>");
    for l in &revenue.lines {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&l.listing),
            escape(&l.plan),
            escape(&l.currency),
            l.subscriptions,
            escape(&l.mrr)
        );
    }
    out.push_str("</tbody><tfoot>");
    for t in &revenue.totals {
        let _ = write!(
            out,
            "<tr><th scope=\"row\" colspan=\"2\">Total</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&t.currency),
            t.subscriptions,
            escape(&t.mrr)
        );
    }
    out.push_str("</tfoot></table></section>");
    out
}

/// The page's content: `report` for the filters in `query` (or `problem`, the parameter that
/// was refused), and `revenue`.
pub fn render_health(
    nav: &str,
    query: &BTreeMap<String, String>,
    report: Result<&HealthReport, &FilterProblem>,
    revenue: &Revenue,
) -> String {
    let mut out = format!("<h1>Tenant health</h1>{nav}{}", filters(query));
    match report {
        Err(problem) => {
            let _ = write!(
                out,
                "<p class=\"error\" role=\"alert\">{}: {}</p>",
                escape(&problem.parameter),
                escape(&problem.reason)
            );
        }
        Ok(report) => {
            let _ = write!(
                out,
                "<p><a href=\"/v1/health/tenants?{}format=csv\" download>Download these tenants as CSV</a></p>",
                escape(&query_string(query))
            );
            if !report.usage_available {
                out.push_str("<p class=\"note\">Usage against included quantities is not shown: the usage store is off or did not answer.</p>");
            }
            for p in &report.policy_problems {
                let _ = write!(
                    out,
                    "<p class=\"note\">HealthPolicy {} {}: {}</p>",
                    escape(&p.policy),
                    escape(&p.field),
                    escape(&p.message)
                );
            }
            if report.tenants.is_empty() {
                out.push_str("<p class=\"empty\">No tenant matches these filters.</p>");
            } else {
                out.push_str("<table class=\"subs\" id=\"health\"><caption class=\"sr-only\">Tenant health</caption><thead><tr><th scope=\"col\">Tenant</th><th scope=\"col\">Base plan</th><th scope=\"col\">Region</th><th scope=\"col\">Segment</th><th scope=\"col\">Age (days)</th><th scope=\"col\">Add-ons</th><th scope=\"col\">Adoption</th><th scope=\"col\">Usage</th><th scope=\"col\">Payment problems</th><th scope=\"col\">Cancellations</th><th scope=\"col\">Verdict</th></tr></thead><tbody>");
                out.push_str(&tenant_rows(report));
                out.push_str("</tbody></table>");
            }
        }
    }
    out.push_str(&revenue_table(revenue));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::assess::TenantHealth;
    use crate::health::revenue::{MrrLine, MrrTotal};

    fn report(display_name: &str, verdict: Verdict) -> HealthReport {
        HealthReport {
            generated_at: "2026-06-30T00:00:00Z".parse().unwrap(),
            tenants: vec![TenantHealth {
                tenant: "acme".into(),
                display_name: display_name.into(),
                base_plan: "Starter".into(),
                region: None,
                segment: Some("smb".into()),
                age_days: Some(3),
                add_ons_active: vec!["routes".into()],
                features: Vec::new(),
                adoption_percent: None,
                usage: Vec::new(),
                payment_problems: 1,
                cancellations: 0,
                verdict,
                reasons: vec!["1 subscription(s) with payment problems (more than 0)".into()],
                policy: "built-in".into(),
            }],
            policy_problems: Vec::new(),
            usage_available: true,
        }
    }

    #[test]
    fn verdicts_are_words_and_catalog_text_is_escaped() {
        let query: BTreeMap<String, String> =
            [("segment".to_string(), "smb & co".to_string())].into();
        let revenue = Revenue {
            lines: vec![MrrLine {
                listing: "routes".into(),
                plan: "pro".into(),
                currency: "USD".into(),
                subscriptions: 2,
                mrr: "98.00".into(),
            }],
            totals: vec![MrrTotal {
                currency: "USD".into(),
                subscriptions: 2,
                mrr: "98.00".into(),
            }],
        };
        let page = render_health(
            "",
            &query,
            Ok(&report("<b>Acme</b>", Verdict::AtRisk)),
            &revenue,
        );
        assert!(page.contains("&lt;b&gt;Acme&lt;/b&gt;") && !page.contains("<b>Acme"));
        assert!(
            page.contains("data-verdict=\"AtRisk\">At risk</span>"),
            "{page}"
        );
        assert!(page.contains("value=\"smb &amp; co\""), "{page}");
        assert!(
            page.contains("/v1/health/tenants?segment=smb%20%26%20co&amp;format=csv"),
            "{page}"
        );
        assert!(page.contains("<label for=\"f-minAgeDays\">"));
        assert!(page.contains("<td>98.00</td>"));
        let refused = FilterProblem {
            parameter: "minAgeDays".into(),
            reason: "\"x\" is not a whole number".into(),
        };
        let page = render_health("", &query, Err(&refused), &revenue);
        assert!(
            page.contains("role=\"alert\">minAgeDays: &quot;x&quot;"),
            "{page}"
        );
    }
}

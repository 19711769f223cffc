//! `changes.html` of a catalog preview: what a pull request adds, changes (field by field) and
//! retires, against its base revision. Every catalog value is escaped.

use std::fmt::Write;

use super::html::escape;
use super::links::Links;
use crate::catalog::diff::{CatalogDiff, FieldChange, Retirement};

/// Which revisions the page compares, as the command line named them.
#[derive(Clone, Debug, Default)]
pub struct Revisions {
    /// None: no base given, so everything is new.
    pub base: Option<String>,
    pub head: String,
}

fn listing_link(name: &str, display_name: &str, shown: bool) -> String {
    if shown {
        format!(
            "<a href=\"{}\">{}</a> <code>{}</code>",
            Links::detail_file(name),
            escape(display_name),
            escape(name)
        )
    } else {
        format!("{} <code>{}</code>", escape(display_name), escape(name))
    }
}

fn value_cell(value: &Option<String>) -> String {
    value
        .as_deref()
        .map(|v| format!("<td>{}</td>", escape(v)))
        .unwrap_or_else(|| "<td class=\"muted\">—</td>".into())
}

fn field_rows(fields: &[FieldChange]) -> String {
    let mut out = String::from(
        "<table class=\"subs\"><thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Before</th><th scope=\"col\">After</th></tr></thead><tbody>",
    );
    for field in fields {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th>{}{}</tr>",
            escape(&field.what),
            value_cell(&field.before),
            value_cell(&field.after)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The page's content.
pub fn render(diff: &CatalogDiff, revisions: &Revisions) -> String {
    let mut out = String::from("<h1>Catalog changes</h1>");
    match &revisions.base {
        Some(base) => {
            let _ = write!(
                out,
                "<p>{} compared with <code>{}</code>. <a href=\"index.html\">The storefront as this change shows it</a>.</p>",
                escape(&revisions.head),
                escape(base)
            );
        }
        None => out.push_str(
            "<p>No base revision given (<code>--base</code>): every listing counts as added.</p>",
        ),
    }
    if diff.is_empty() {
        out.push_str("<p class=\"empty\">This change does not change the storefront.</p>");
        return out;
    }
    let _ = write!(
        out,
        "<section id=\"added\" aria-labelledby=\"added-h\"><h2 id=\"added-h\">Added ({})</h2><ul>",
        diff.added.len()
    );
    for added in &diff.added {
        let _ = write!(
            out,
            "<li>{} · {:?}</li>",
            listing_link(&added.name, &added.display_name, true),
            added.lifecycle
        );
    }
    let _ = write!(
        out,
        "</ul></section><section id=\"changed\" aria-labelledby=\"changed-h\"><h2 id=\"changed-h\">Changed ({})</h2>",
        diff.changed.len()
    );
    for change in &diff.changed {
        let _ = write!(
            out,
            "<article class=\"change\" id=\"changed-{}\"><h3>{}</h3>{}</article>",
            escape(&change.name),
            listing_link(&change.name, &change.display_name, true),
            field_rows(&change.fields)
        );
    }
    let _ = write!(
        out,
        "</section><section id=\"retired\" aria-labelledby=\"retired-h\"><h2 id=\"retired-h\">Retired ({})</h2><ul>",
        diff.retired.len()
    );
    for retired in &diff.retired {
        let how = match retired.how {
            Retirement::Deleted => "deleted: gone from the catalog",
            Retirement::Archived => "archived: no new subscriptions, existing ones keep running",
        };
        let _ = write!(
            out,
            "<li>{} · {how}</li>",
            listing_link(
                &retired.name,
                &retired.display_name,
                retired.how == Retirement::Archived
            )
        );
    }
    out.push_str("</ul></section>");
    if !diff.wizards.is_empty() {
        out.push_str("<section id=\"wizards\" aria-labelledby=\"wizards-h\"><h2 id=\"wizards-h\">Connection wizards</h2><ul>");
        for wizard in &diff.wizards {
            let what = if wizard.added {
                "added".to_string()
            } else if wizard.removed {
                "removed".to_string()
            } else {
                format!("changed: {}", escape(&wizard.fields.join(", ")))
            };
            let _ = write!(
                out,
                "<li><code>{}</code> · {what}</li>",
                escape(&wizard.name)
            );
        }
        out.push_str("</ul></section>");
    }
    out
}

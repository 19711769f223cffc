//! `kubectl marketplace`'s tables: plain text a person reads in a terminal, from the same data
//! `-o json|yaml` prints.

use crate::api::SubscriptionAction;
use crate::api::conditions::find_condition;
use crate::api::conditions::types::READY;
use crate::front_door::console::inbox::InboxItem;
use crate::front_door::console::support::SupportView;

/// Rows under a header, each column as wide as its widest cell, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

/// `kubectl marketplace status <tenant>`.
pub fn status(view: &SupportView) -> String {
    let mut out = format!(
        "Tenant {} ({}), base plan {}",
        view.tenant, view.display_name, view.base_plan
    );
    if view.suspended {
        out.push_str(", SUSPENDED");
    }
    if view.internal {
        out.push_str(", internal");
    }
    out.push_str(&format!(
        "\nHubSpot company: {}\n\n",
        or_dash(view.hubspot_company_id.as_deref())
    ));
    let rows: Vec<Vec<String>> = view
        .subscriptions
        .iter()
        .map(|s| {
            let ready = find_condition(&s.conditions, READY)
                .map(|c| format!("{}: {}", c.reason, c.message))
                .unwrap_or_default();
            let ids = s.hubspot.clone().unwrap_or_default();
            vec![
                s.view.name.clone(),
                s.view.listing.clone(),
                s.view.plan.clone(),
                format!("{:?}", s.view.phase),
                or_dash(ids.deal_id.as_deref()),
                or_dash(ids.subscription_id.as_deref()),
                or_dash(Some(&ready)),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("No subscriptions.\n");
    } else {
        out.push_str(&table(
            &[
                "SUBSCRIPTION",
                "LISTING",
                "PLAN",
                "PHASE",
                "DEAL",
                "HUBSPOT SUBSCRIPTION",
                "READY",
            ],
            &rows,
        ));
    }
    let rows: Vec<Vec<String>> = view
        .entitlements
        .iter()
        .map(|e| {
            vec![
                e.feature.clone(),
                format!("{:?}", e.state),
                e.source_subscription.clone(),
            ]
        })
        .collect();
    out.push('\n');
    if rows.is_empty() {
        out.push_str("No entitlements.\n");
    } else {
        out.push_str(&table(&["FEATURE", "STATE", "FROM"], &rows));
    }
    out.push('\n');
    match &view.last_audit {
        None => out.push_str("No drift audit has run yet.\n"),
        Some(at) if view.drift_findings.is_empty() => {
            out.push_str(&format!(
                "Drift audit {at}: nothing found for this tenant.\n"
            ));
        }
        Some(at) => {
            out.push_str(&format!("Drift audit {at}:\n"));
            for finding in &view.drift_findings {
                out.push_str(&format!("  {finding}\n"));
            }
        }
    }
    out
}

/// `kubectl marketplace inbox`.
pub fn inbox(items: &[InboxItem]) -> String {
    if items.is_empty() {
        return "Nothing waits for a superadmin.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                format!("{}/{}", i.tenant, i.subscription),
                i.listing.clone(),
                i.plan.clone(),
                format!("{:?}", i.phase),
                i.since.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                or_dash(i.price.as_deref()),
                i.actions
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(","),
                or_dash(i.message.as_deref()),
            ]
        })
        .collect();
    table(
        &[
            "SUBSCRIPTION",
            "LISTING",
            "PLAN",
            "PHASE",
            "SINCE",
            "PRICE",
            "NEXT",
            "WHY",
        ],
        &rows,
    )
}

/// The operator's answer to a step.
pub fn answer(action: &SubscriptionAction) -> String {
    let status = action.status.clone().unwrap_or_default();
    let result = status
        .result
        .map(|r| format!("{r:?}"))
        .unwrap_or_else(|| "Waiting".into());
    format!(
        "{:?} {}/{}: {result}: {}\n",
        action.spec.action,
        action.spec.subscription_ref.namespace.as_str(),
        action.spec.subscription_ref.name,
        status.message.unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_the_last_one_is_not_padded() {
        let text = table(
            &["NAME", "PHASE"],
            &[
                vec!["analytics".into(), "Paid".into()],
                vec!["a".into(), "Active".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME       PHASE\nanalytics  Paid\na          Active\n"
        );
    }

    #[test]
    fn an_empty_inbox_says_so() {
        assert_eq!(inbox(&[]), "Nothing waits for a superadmin.\n");
    }
}

//! `marketplace drift report`: the last HubSpot drift audit, as the operator wrote it to the
//! ConfigMap `marketplace-drift-report` in its namespace. Swept orphans are listed but are not
//! drift: they were cleaned up.

use clap::Subcommand;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

use super::CliError;
use crate::controllers::billing_audit::{DriftReport, REPORT_CONFIG_MAP, REPORT_KEY};

#[derive(Subcommand, Debug)]
pub enum DriftCommand {
    /// Print the summary of the last drift audit (exit 1 when it found drift).
    Report {
        /// The operator's namespace.
        #[arg(
            long,
            env = "MARKETPLACE_NAMESPACE",
            default_value = "marketplace-system"
        )]
        namespace: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: DriftCommand) -> Result<(), CliError> {
    let DriftCommand::Report { namespace, json } = command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Cluster(format!("cannot start the async runtime: {e}")))?;
    let report = runtime.block_on(read(&namespace))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", render(&report));
    }
    if report.findings.is_empty() && report.orphans.is_empty() && report.error.is_none() {
        Ok(())
    } else {
        Err(CliError::DriftFound {
            findings: report.findings.len() + report.orphans.len(),
        })
    }
}

async fn read(namespace: &str) -> Result<DriftReport, CliError> {
    let client = Client::try_default()
        .await
        .map_err(|e| CliError::Cluster(format!("cannot reach the Kubernetes API: {e}")))?;
    read_report(&client, namespace).await
}

/// The last drift report the operator in `namespace` wrote.
pub async fn read_report(client: &Client, namespace: &str) -> Result<DriftReport, CliError> {
    let map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(REPORT_CONFIG_MAP)
        .await
        .map_err(|e| CliError::Cluster(format!("ConfigMap {namespace}/{REPORT_CONFIG_MAP}: {e}")))?
        .ok_or_else(|| {
            CliError::Cluster(format!(
                "no drift audit has run yet (ConfigMap {namespace}/{REPORT_CONFIG_MAP} does not exist)"
            ))
        })?;
    let text = map
        .data
        .and_then(|d| d.get(REPORT_KEY).cloned())
        .unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| {
        CliError::Cluster(format!(
            "ConfigMap {namespace}/{REPORT_CONFIG_MAP} key {REPORT_KEY}: {e}"
        ))
    })
}

/// The report as a person reads it.
pub fn render(report: &DriftReport) -> String {
    let mut out = format!(
        "last audit: {}\nsubscriptions audited: {}, in sync: {}, HubSpot calls: {}\n",
        report.finished_at, report.subscriptions_audited, report.in_sync, report.hubspot_calls
    );
    if let Some(error) = &report.error {
        out.push_str(&format!("the audit did not finish: {error}\n"));
    }
    if report.findings.is_empty() && report.orphans.is_empty() {
        out.push_str("no drift found\n");
    }
    for line in report.findings.iter().chain(&report.orphans) {
        out.push_str(&format!("  drift: {line}\n"));
    }
    for line in &report.swept {
        out.push_str(&format!("  swept: {line}\n"));
    }
    if report.sweep_pending > 0 {
        out.push_str(&format!(
            "orphans waiting for their grace period: {} (a later audit deletes them)\n",
            report.sweep_pending
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_findings_and_orphans() {
        let report = DriftReport {
            finished_at: "2026-11-22T10:00:00Z".into(),
            subscriptions_audited: 3,
            hubspot_calls: 3,
            in_sync: 2,
            findings: vec![
                "tenant-acme/routes: HubSpot status changed from active to past_due".into(),
            ],
            orphans: vec![
                "HubSpot deal 7 bills subscription uid u, which no TenantSubscription owns".into(),
            ],
            swept: vec!["deleted orphan HubSpot line item 9 of subscription uid u".into()],
            sweep_pending: 1,
            error: None,
        };
        let text = render(&report);
        assert!(text.contains("in sync: 2"), "{text}");
        assert!(text.contains("drift: tenant-acme/routes"), "{text}");
        assert!(text.contains("drift: HubSpot deal 7"), "{text}");
        assert!(
            text.contains("swept: deleted orphan HubSpot line item 9"),
            "{text}"
        );
        assert!(text.contains("waiting for their grace period: 1"), "{text}");
        assert!(render(&DriftReport::default()).contains("no drift found"));
    }
}

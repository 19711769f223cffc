//! `kubectl marketplace`: the kubectl plugin for superadmins. It takes the approval ladder's
//! steps (each a SubscriptionAction, as the console makes them, waited for until the operator
//! Accepts or Refuses it), shows a tenant as support sees it, the inbox, the last drift audit,
//! and lints catalog files. It reads the kubeconfig as kubectl does (`KUBECONFIG`,
//! `--kubeconfig`, `--context`); `-n` is the operator's namespace.
//!
//! Everything it shows comes from the console's pure functions ([`crate::front_door::console`])
//! over what it reads; [`render`] turns that into tables.

pub mod render;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Serialize;

use crate::api::subscription_action::{
    ActionKind, ActionResult, Invoice, SubscriptionActionSpec, SubscriptionRef,
};
use crate::api::{Listing, SubscriptionAction, Tenant, TenantSubscription};
use crate::cli::CliError;
use crate::cli::catalog::{CatalogCommand, LintArgs};
use crate::controllers::tenant_rbac::namespace_name;
use crate::front_door::console::inbox::{InboxQuery, inbox};
use crate::front_door::console::routes::new_action;
use crate::front_door::console::support::support_view;

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-marketplace",
    bin_name = "kubectl marketplace",
    version,
    about = "Run the marketplace from kubectl: the approval ladder, tenants, the inbox, drift."
)]
pub struct PluginCli {
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The operator's namespace (SubscriptionActions and the drift report live there).
    #[arg(
        short = 'n',
        long,
        global = true,
        env = "MARKETPLACE_NAMESPACE",
        default_value = "marketplace-system"
    )]
    pub namespace: String,
    /// Output: a table for people, or the data as JSON or YAML.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Requested → Invoiced: an invoice was sent (--amount and --currency required).
    Invoice(StepArgs),
    /// Invoiced → Paid.
    MarkPaid(StepArgs),
    /// Paid → Active: grant the features.
    Approve(StepArgs),
    /// Any phase before Active → Rejected.
    Reject(StepArgs),
    /// CancelRequested → Cancelled: end it now.
    ConfirmCancel(StepArgs),
    /// After a provisioning failure: cancel the HubSpot subscription, mark it Failed.
    Rollback(StepArgs),
    /// A tenant as support sees it: subscriptions (phase, Ready message, HubSpot ids),
    /// entitlements and the last drift audit's findings about it.
    Status {
        /// The Tenant's name.
        tenant: String,
    },
    /// Everything waiting for a superadmin, oldest first.
    Inbox,
    /// The last drift audit (exit code 1 when it found drift).
    Drift,
    /// Check catalog files offline (as `marketplace catalog lint`).
    Lint {
        /// Catalog files or folders.
        #[arg(default_value = "catalog")]
        paths: Vec<PathBuf>,
    },
}

/// One step of the approval ladder on one subscription.
#[derive(clap::Args, Debug)]
pub struct StepArgs {
    /// `<tenant>/<subscription>`.
    pub target: String,
    /// The invoice's amount (Invoice), e.g. 1200.00.
    #[arg(long)]
    pub amount: Option<String>,
    /// The invoice's currency (Invoice), e.g. USD.
    #[arg(long)]
    pub currency: Option<String>,
    /// Why (kept on the action and in the subscription's history).
    #[arg(long)]
    pub reason: Option<String>,
    /// How long to wait for the operator's answer, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// The same key names the same action: a retried command never takes a step twice
    /// (default: a fresh key each time).
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

impl PluginCommand {
    fn step(&self) -> Option<(ActionKind, &StepArgs)> {
        Some(match self {
            PluginCommand::Invoice(a) => (ActionKind::Invoice, a),
            PluginCommand::MarkPaid(a) => (ActionKind::MarkPaid, a),
            PluginCommand::Approve(a) => (ActionKind::Approve, a),
            PluginCommand::Reject(a) => (ActionKind::Reject, a),
            PluginCommand::ConfirmCancel(a) => (ActionKind::ConfirmCancel, a),
            PluginCommand::Rollback(a) => (ActionKind::Rollback, a),
            _ => return None,
        })
    }
}

/// `<tenant>/<subscription>`, checked.
pub fn parse_target(target: &str) -> Result<(String, String), CliError> {
    match target.split_once('/') {
        Some((tenant, name)) if !tenant.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((tenant.to_owned(), name.to_owned()))
        }
        _ => Err(CliError::Usage(format!(
            "{target:?}: expected <tenant>/<subscription>, e.g. acme/premium-analytics"
        ))),
    }
}

/// The SubscriptionAction for `kind` on `args.target` (checked: an invoice needs its amount and
/// currency, nothing else takes them).
pub fn step_action(
    operator_namespace: &str,
    kind: ActionKind,
    args: &StepArgs,
    key: &str,
) -> Result<SubscriptionAction, CliError> {
    let (tenant, name) = parse_target(&args.target)?;
    let invoice = match (kind, &args.amount, &args.currency) {
        (ActionKind::Invoice, Some(amount), Some(currency)) => Some(Invoice {
            amount: amount.clone(),
            currency: currency.clone(),
        }),
        (ActionKind::Invoice, _, _) => {
            return Err(CliError::Usage(
                "invoice: --amount and --currency are required (e.g. --amount 1200.00 --currency USD)"
                    .into(),
            ));
        }
        (_, None, None) => None,
        (other, _, _) => {
            return Err(CliError::Usage(format!(
                "{other:?}: --amount and --currency belong to invoice only"
            )));
        }
    };
    Ok(new_action(
        operator_namespace,
        SubscriptionActionSpec {
            subscription_ref: SubscriptionRef {
                namespace: namespace_name(&tenant).as_str().into(),
                name,
            },
            action: kind,
            invoice,
            reason: args.reason.clone(),
        },
        key,
    ))
}

/// A client from `--kubeconfig` / `--context`, else as kubectl infers it.
async fn client(cli: &PluginCli) -> Result<Client, CliError> {
    let cluster = |e: String| CliError::Cluster(format!("kubeconfig: {e}"));
    let options = KubeConfigOptions {
        context: cli.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&cli.kubeconfig, &cli.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| cluster(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| cluster(e.to_string()))?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| cluster(e.to_string()))?,
        (None, None) => Config::infer().await.map_err(|e| cluster(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| CliError::Cluster(e.to_string()))
}

fn cluster_error(what: &str) -> impl Fn(kube::Error) -> CliError + '_ {
    move |e| CliError::Cluster(format!("{what}: {e}"))
}

impl PluginCli {
    /// Runs the command; the process's exit code is the error's.
    pub fn run(self) -> Result<(), CliError> {
        if let PluginCommand::Lint { paths } = &self.command {
            let format = match self.output {
                Output::Json => crate::catalog::report::Format::Json,
                _ => crate::catalog::report::Format::Text,
            };
            return crate::cli::catalog::run(CatalogCommand::Lint(LintArgs {
                paths: paths.clone(),
                format,
                base: None,
            }));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Cluster(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(self.run_async())
    }

    async fn run_async(&self) -> Result<(), CliError> {
        let client = client(self).await?;
        if let Some((kind, args)) = self.command.step() {
            return self.take_step(&client, kind, args).await;
        }
        match &self.command {
            PluginCommand::Status { tenant } => {
                let view = self.status(&client, tenant).await?;
                self.print(&view, || render::status(&view))
            }
            PluginCommand::Inbox => {
                let subscriptions = Api::<TenantSubscription>::all(client.clone())
                    .list(&Default::default())
                    .await
                    .map_err(cluster_error("TenantSubscriptions"))?;
                let listings = Api::<Listing>::all(client)
                    .list(&Default::default())
                    .await
                    .map_err(cluster_error("Listings"))?;
                let items = inbox(
                    subscriptions.items.iter(),
                    |name| {
                        listings
                            .items
                            .iter()
                            .find(|l| l.metadata.name.as_deref() == Some(name))
                            .cloned()
                            .map(std::sync::Arc::new)
                    },
                    &InboxQuery::default(),
                );
                self.print(&items, || render::inbox(&items))
            }
            PluginCommand::Drift => {
                let report = crate::cli::drift::read_report(&client, &self.namespace).await?;
                self.print(&report, || crate::cli::drift::render(&report))?;
                let findings = report.findings.len() + report.orphans.len();
                if findings == 0 && report.error.is_none() {
                    Ok(())
                } else {
                    Err(CliError::DriftFound { findings })
                }
            }
            _ => Ok(()),
        }
    }

    async fn status(
        &self,
        client: &Client,
        tenant: &str,
    ) -> Result<crate::front_door::console::support::SupportView, CliError> {
        let found = Api::<Tenant>::all(client.clone())
            .get_opt(tenant)
            .await
            .map_err(cluster_error("Tenant"))?
            .ok_or_else(|| CliError::Cluster(format!("there is no Tenant {tenant:?}")))?;
        let namespace = namespace_name(tenant);
        let subscriptions = Api::<TenantSubscription>::namespaced(client.clone(), &namespace)
            .list(&Default::default())
            .await
            .map_err(cluster_error("TenantSubscriptions"))?;
        let entitlements = Api::<crate::api::Entitlement>::namespaced(client.clone(), &namespace)
            .list(&Default::default())
            .await
            .map_err(cluster_error("Entitlements"))?;
        // No report yet (or no right to read it) leaves the findings empty, as in the console.
        let report = crate::cli::drift::read_report(client, &self.namespace)
            .await
            .ok();
        Ok(support_view(
            tenant,
            &found,
            &subscriptions.items.iter().collect::<Vec<_>>(),
            &entitlements.items.iter().collect::<Vec<_>>(),
            report.as_ref(),
        ))
    }

    /// Creates the step's SubscriptionAction (or finds the one this key made) and waits for
    /// the operator's answer.
    async fn take_step(
        &self,
        client: &Client,
        kind: ActionKind,
        args: &StepArgs,
    ) -> Result<(), CliError> {
        let key = args
            .idempotency_key
            .clone()
            .unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond().to_string());
        let action = step_action(&self.namespace, kind, args, &key)?;
        let name = action.metadata.name.clone().unwrap_or_default();
        let actions: Api<SubscriptionAction> = Api::namespaced(client.clone(), &self.namespace);
        match actions.create(&PostParams::default(), &action).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let existing = actions
                    .get(&name)
                    .await
                    .map_err(cluster_error("SubscriptionAction"))?;
                if existing.spec != action.spec {
                    return Err(CliError::Usage(format!(
                        "--idempotency-key {key:?} was used for another action ({name})"
                    )));
                }
            }
            Err(e) => return Err(cluster_error("creating the SubscriptionAction")(e)),
        }
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        let answered = loop {
            let current = actions
                .get(&name)
                .await
                .map_err(cluster_error("SubscriptionAction"))?;
            if current.status.as_ref().is_some_and(|s| s.result.is_some()) {
                break current;
            }
            if Instant::now() >= deadline {
                return Err(CliError::Cluster(format!(
                    "SubscriptionAction {}/{name}: no answer within {}s (is the operator running?)",
                    self.namespace, args.timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        self.print(&answered, || render::answer(&answered))?;
        match answered.status.and_then(|s| s.result.zip(s.message)) {
            Some((ActionResult::Refused, message)) => Err(CliError::Refused(message)),
            _ => Ok(()),
        }
    }

    fn print<T: Serialize>(
        &self,
        data: &T,
        table: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        let text = match self.output {
            Output::Table => table(),
            Output::Json => {
                let mut text = serde_json::to_string_pretty(data)
                    .map_err(|e| CliError::Cluster(format!("JSON: {e}")))?;
                text.push('\n');
                text
            }
            Output::Yaml => serde_saphyr::to_string(data)
                .map_err(|e| CliError::Cluster(format!("YAML: {e}")))?,
        };
        print!("{text}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(target: &str, amount: Option<&str>) -> StepArgs {
        StepArgs {
            target: target.into(),
            amount: amount.map(str::to_owned),
            currency: amount.map(|_| "USD".to_owned()),
            reason: None,
            timeout: 1,
            idempotency_key: None,
        }
    }

    #[test]
    fn targets_are_tenant_slash_subscription() {
        assert_eq!(
            parse_target("acme/analytics").unwrap(),
            ("acme".to_owned(), "analytics".to_owned())
        );
        for bad in ["acme", "/x", "acme/", "a/b/c"] {
            let error = parse_target(bad).unwrap_err().to_string();
            assert!(error.contains("<tenant>/<subscription>"), "{error}");
        }
    }

    #[test]
    fn an_invoice_names_its_amount_and_lands_in_the_operators_namespace() {
        let invoice = || {
            step_action(
                "marketplace-system",
                ActionKind::Invoice,
                &args("acme/analytics", Some("499.00")),
                "k1",
            )
            .unwrap()
        };
        let action = invoice();
        assert_eq!(
            action.metadata.namespace.as_deref(),
            Some("marketplace-system")
        );
        assert_eq!(
            action.spec.subscription_ref.namespace.as_str(),
            "tenant-acme"
        );
        assert_eq!(action.spec.invoice.unwrap().amount, "499.00");
        let again = invoice();
        assert_eq!(
            action.metadata.name, again.metadata.name,
            "one key, one action"
        );
    }

    #[test]
    fn amounts_belong_to_invoices_only() {
        let missing = step_action("m", ActionKind::Invoice, &args("a/b", None), "k");
        assert!(missing.unwrap_err().to_string().contains("--amount"));
        let stray = step_action("m", ActionKind::Approve, &args("a/b", Some("1.00")), "k");
        assert!(stray.unwrap_err().to_string().contains("invoice only"));
    }
}

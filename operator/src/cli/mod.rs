//! The `marketplace` command line.

pub mod api;
pub mod api_key;
pub mod audit;
pub mod catalog;
pub mod catalog_preview;
pub mod crds;
pub mod drift;
pub mod openapi;
pub mod operator;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Runs a SaaS add-on marketplace as code on Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "marketplace", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Lint the catalog offline, and write the JSON Schemas editors use for catalog files.
    Catalog {
        #[command(subcommand)]
        command: catalog::CatalogCommand,
    },
    /// Run the controllers (CatalogSource sync, and more as they land) against the cluster of
    /// the current kubeconfig or service account.
    // Boxed: the operator's many flags would make every `Command` that large.
    Operator(Box<operator::OperatorArgs>),
    /// Serve the marketplace API (entitlement checks over REST and OpenFeature OFREP) from
    /// the shared caches; stateless, any number of replicas.
    // Boxed like the operator's: its flags (the web theme's included) are many.
    Api(Box<api::ApiArgs>),
    /// Create, list and revoke the backend keys product servers send as `X-API-Key` to read
    /// one tenant.
    ApiKey {
        #[command(subcommand)]
        command: api_key::ApiKeyCommand,
    },
    /// Print every CustomResourceDefinition as YAML, or write one file per kind.
    Crds {
        /// Write `<crd name>.yaml` files into this folder instead of printing to stdout.
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
    /// Print the API's OpenAPI 3.1 document (what `marketplace api` serves at `/openapi.json`),
    /// or write it to a file.
    Openapi {
        /// Write the document to this file instead of printing it (`docs/openapi.json`).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Show what the last HubSpot drift audit found.
    Drift {
        #[command(subcommand)]
        command: drift::DriftCommand,
    },
    /// Check the operator's hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
}

/// Errors the CLI reports to the user.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot serialize CRD {name} to YAML: {source}")]
    Yaml {
        name: String,
        #[source]
        source: serde_saphyr::ser::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the catalog at the base revision")]
    Git {
        #[source]
        source: crate::catalog::git::GitError,
    },
    #[error(transparent)]
    Schema {
        #[from]
        source: crate::catalog::lint::SchemaError,
    },
    #[error(transparent)]
    Operator(#[from] operator::OperatorError),
    #[error(transparent)]
    Api(#[from] api::ApiError),
    /// The catalog has errors; they are printed already.
    #[error("catalog lint failed: {summary}")]
    LintFailed { summary: String },
    /// The cluster could not be read.
    #[error("{0}")]
    Cluster(String),
    /// A command line that cannot be carried out as given.
    #[error("{0}")]
    Usage(String),
    /// The operator refused a SubscriptionAction; its answer is printed already.
    #[error("refused: {0}")]
    Refused(String),
    /// The last drift audit found drift; the report is printed already.
    #[error("the last drift audit found {findings} finding(s)")]
    DriftFound { findings: usize },
    /// The audit log's chain is broken at `line` (the first broken one).
    #[error("audit log {} line {line}: {why}", path.display())]
    AuditBroken {
        path: PathBuf,
        line: u64,
        why: crate::audit_log::ChainBreak,
    },
}

impl CliError {
    /// The process exit code: 1 when the command ran and found problems (or for the older
    /// commands' errors), 2 when it could not run (unreadable files, bad git revision), so CI
    /// can tell "the catalog is wrong" from "the check is broken".
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Read { .. }
            | CliError::Git { .. }
            | CliError::Schema { .. }
            | CliError::Operator(_)
            | CliError::Api(_)
            | CliError::Usage(_)
            | CliError::Cluster(_) => 2,
            CliError::Yaml { .. }
            | CliError::Write { .. }
            | CliError::LintFailed { .. }
            | CliError::AuditBroken { .. }
            | CliError::Refused(_)
            | CliError::DriftFound { .. } => 1,
        }
    }
}

/// The exit code of a command's `result`, after printing its error (prefixed `program: `) with
/// its causes.
pub fn exit_code(program: &str, result: Result<(), CliError>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{program}: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            std::process::ExitCode::from(error.exit_code())
        }
    }
}

impl Cli {
    pub fn run(self) -> Result<(), CliError> {
        match self.command {
            Command::Catalog { command } => catalog::run(command),
            Command::Operator(args) => Ok(operator::start(*args)?),
            Command::Api(args) => Ok(api::start(*args)?),
            Command::ApiKey { command } => api_key::run(command),
            Command::Crds { output_dir } => crds::run(output_dir.as_deref()),
            Command::Openapi { output } => openapi::run(output.as_deref()),
            Command::Audit { command } => audit::run(command),
            Command::Drift { command } => drift::run(command),
        }
    }
}

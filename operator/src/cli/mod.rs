//! The `marketplace` command line.

pub mod crds;

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
    /// Print every CustomResourceDefinition as YAML, or write one file per kind.
    Crds {
        /// Write `<crd name>.yaml` files into this folder instead of printing to stdout.
        #[arg(long)]
        output_dir: Option<PathBuf>,
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
}

impl Cli {
    pub fn run(self) -> Result<(), CliError> {
        match self.command {
            Command::Crds { output_dir } => crds::run(output_dir.as_deref()),
        }
    }
}

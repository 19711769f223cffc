//! `marketplace audit …`: checks on the operator's hash-chained audit log.

use super::CliError;
use crate::audit_log::{self, VerifyError};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check an audit log: every line parses, hashes to its own hash and links to the line
    /// before. Exit 0 when the chain is intact, 1 at the first broken line, 2 when the file
    /// cannot be read.
    Verify {
        /// The log file (JSON Lines).
        path: PathBuf,
    },
}

pub fn run(command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Verify { path } => verify(&path),
    }
}

fn verify(path: &Path) -> Result<(), CliError> {
    match audit_log::verify(path) {
        Ok(report) => {
            let noun = if report.records == 1 {
                "record"
            } else {
                "records"
            };
            println!(
                "ok: {} {noun}, chain intact, last hash {}",
                report.records, report.last_hash
            );
            Ok(())
        }
        Err(VerifyError::Io { path, source }) => Err(CliError::Read { path, source }),
        Err(VerifyError::Broken { path, line, why }) => {
            Err(CliError::AuditBroken { path, line, why })
        }
    }
}

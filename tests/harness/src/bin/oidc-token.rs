//! `oidc-token`: prints an ID token from the local OIDC issuer of a control plane started with
//! `control-plane --dir DIR`; its apiserver authenticates it as user `oidc:<user>` in groups
//! `oidc:<group>`, as a cluster trusting a SaaS's identity provider would.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::builder::NonEmptyStringValueParser;
use marketplace_harness::OidcIssuer;

/// Mint an ID token for a user of the control plane in DIR (it must be running to accept it).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The control plane's folder, as given to `control-plane --dir`.
    #[arg(long)]
    dir: PathBuf,
    /// The token's subject; Kubernetes names the user `oidc:<user>`.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    user: String,
    /// A group of the user (repeat for more); Kubernetes names it `oidc:<group>`.
    #[arg(long = "group", value_parser = NonEmptyStringValueParser::new())]
    groups: Vec<String>,
    /// How long the token is valid, in seconds.
    #[arg(long, default_value_t = 24 * 3600)]
    valid_seconds: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let groups: Vec<&str> = args.groups.iter().map(String::as_str).collect();
    let minted = OidcIssuer::load(&args.dir).and_then(|issuer| {
        issuer.mint(&args.user, &groups, Duration::from_secs(args.valid_seconds))
    });
    match minted {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oidc-token: {e}");
            ExitCode::FAILURE
        }
    }
}

#![forbid(unsafe_code)]

use clap::Parser;
use marketplace_operator::cli::Cli;

fn main() -> std::process::ExitCode {
    marketplace_operator::cli::exit_code("marketplace", Cli::parse().run())
}

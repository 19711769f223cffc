#![forbid(unsafe_code)]

use clap::Parser;
use marketplace_operator::plugin::PluginCli;

fn main() -> std::process::ExitCode {
    marketplace_operator::cli::exit_code("kubectl marketplace", PluginCli::parse().run())
}

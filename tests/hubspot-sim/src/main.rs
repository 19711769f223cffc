//! `hubspot-sim` binary: serves the simulator until interrupted.
#![forbid(unsafe_code)]

use clap::Parser;
use hubspot_sim::{SimConfig, Simulator, Tier};
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser, Debug)]
#[command(name = "hubspot-sim", about = "Local HubSpot API simulator")]
struct Args {
    /// Address to listen on (loopback only is intended).
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: String,
    /// Rate-limit tier: free/starter 100, professional/enterprise 190, increase 250 per 10 s.
    #[arg(long, value_enum, default_value = "professional")]
    tier: Tier,
    /// Search index lag in milliseconds.
    #[arg(long, default_value_t = 2000)]
    search_lag_ms: u64,
    /// The Bearer token accepted.
    #[arg(
        long,
        env = "HUBSPOT_SIM_TOKEN",
        default_value = "pat-na1-simulator-token"
    )]
    token: String,
    /// Webhook target URL.
    #[arg(long)]
    webhook_url: Option<String>,
    /// App client secret used to sign webhooks.
    #[arg(
        long,
        env = "HUBSPOT_SIM_CLIENT_SECRET",
        default_value = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
    )]
    client_secret: String,
    /// Whether the account has HubSpot payments/Stripe set up.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    payments_enabled: bool,
    /// Send Retry-After on 429 responses.
    #[arg(long)]
    retry_after: bool,
    /// Seed for fault randomness.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep the portal's data in this file across restarts: loaded at start when it exists,
    /// saved (atomically) after changes and on SIGTERM/SIGINT.
    #[arg(long)]
    state_file: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubspot-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = SimConfig {
        listen: args.listen,
        tier: args.tier,
        search_lag_ms: args.search_lag_ms,
        token: args.token,
        webhook_url: args.webhook_url,
        client_secret: args.client_secret,
        payments_enabled: args.payments_enabled,
        retry_after_on_429: args.retry_after,
        seed: args.seed,
        state_file: args.state_file,
        ..SimConfig::default()
    };
    // Installed before serving, so a stop request never finds the default (unsaved) exit.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let sim = Simulator::start(config).await?;
    tracing::info!(url = %sim.base_url(), "hubspot-sim listening");
    println!("hubspot-sim listening on {}", sim.base_url());
    sim.serve_until(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
    .await?;
    Ok(())
}

//! `postgres`: runs a PostgreSQL server on 127.0.0.1 in the foreground for `scripts/dev` and
//! `scripts/bench-usage`, until SIGINT/SIGTERM; it prints `url postgres://...` once ready.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use marketplace_harness::postgres::Postgres;
use tokio::signal::unix::{SignalKind, signal};

/// Start PostgreSQL on 127.0.0.1 (a free port) until SIGINT/SIGTERM.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Folder for the cluster, kept across runs (fsync on); without it, a temporary cluster
    /// (fsync off) removed at exit.
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postgres: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let server = match &args.dir {
        Some(dir) => Postgres::start_in(dir, true)?,
        None => Postgres::start_temporary()?,
    };
    println!("url {}", server.url());
    println!(
        "ready (pid {}, folder {})",
        server.pid(),
        server.dir().display()
    );
    let mut health = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            _ = health.tick() => server.check_running()?,
        }
    }
}

//! `control-plane`: runs the test harness's control plane in the foreground for local
//! development (`scripts/dev`), with its state in a folder that survives restarts.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use marketplace_harness::{ControlPlane, ControlPlaneOptions};
use tokio::signal::unix::{SignalKind, signal};

/// Start etcd + kube-apiserver + kube-controller-manager on 127.0.0.1 until SIGINT/SIGTERM.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Folder for the state (PKI, etcd data, logs/); created if missing, never deleted.
    #[arg(long)]
    dir: PathBuf,
    /// Where to write the admin kubeconfig [default: <dir>/kubeconfig].
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Fixed apiserver port, so an existing kubeconfig keeps working across restarts.
    #[arg(long)]
    port: Option<u16>,
    /// Fixed port of the local OIDC issuer, so its tokens (minted by `oidc-token`) keep
    /// working across restarts.
    #[arg(long)]
    oidc_port: Option<u16>,
    /// Folder with etcd, kube-apiserver, kube-controller-manager and kubectl.
    #[arg(long, env = marketplace_harness::BIN_DIR_ENV)]
    bin_dir: Option<PathBuf>,
    /// Start-up time limit in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,kube_client::client::builder=off")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("control-plane: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Install the handlers before starting, so a signal during start-up still stops cleanly.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let options = ControlPlaneOptions {
        bin_dir: args.bin_dir,
        dir: Some(args.dir),
        kubeconfig_path: args.kubeconfig,
        apiserver_port: args.port,
        oidc_port: args.oidc_port,
        start_timeout: Duration::from_secs(args.timeout),
        ..ControlPlaneOptions::default()
    };
    let control_plane = tokio::select! {
        started = ControlPlane::start(options) => started?,
        _ = terminate.recv() => return Ok(()),
        _ = interrupt.recv() => return Ok(()),
    };

    println!("KUBECONFIG={}", control_plane.kubeconfig_path().display());
    println!("server {}", control_plane.server_url());
    println!("oidc issuer {}", control_plane.oidc_issuer().url());
    for (name, pid, log) in control_plane.components() {
        println!("{name} pid {pid} log {}", log.display());
    }
    println!(
        "ready in {:.1}s (Ctrl-C to stop)",
        control_plane.startup_time().as_secs_f64()
    );

    let mut health = tokio::time::interval(Duration::from_secs(1));
    let outcome = loop {
        tokio::select! {
            _ = terminate.recv() => break Ok(()),
            _ = interrupt.recv() => break Ok(()),
            _ = health.tick() => {
                if let Err(e) = control_plane.check_running() {
                    break Err(e.into());
                }
            }
        }
    };
    eprintln!("control-plane: stopping");
    drop(control_plane);
    eprintln!("control-plane: stopped");
    outcome
}

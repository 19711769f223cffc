//! The marketplace's long-running processes, assembled from [`crate::runtime`] from plain
//! settings (the command line parses flags into them).

pub mod api;
pub mod operator;
pub mod permissions;

/// Errors that stop any marketplace process before it serves.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(
        "cannot reach the Kubernetes API (is KUBECONFIG set, or is this running in a cluster?): {0}"
    )]
    Client(#[source] kube::Error),
    #[error("cannot listen for shutdown signals: {0}")]
    Signals(#[source] std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

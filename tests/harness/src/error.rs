//! The one error type of the harness.
//!
//! Start-up failures carry the tail of the failing component's log, because "kube-apiserver did
//! not become ready" is useless without the reason the apiserver printed.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting or using a [`crate::ControlPlane`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The binary folder could not be determined (script missing or failing).
    #[error(
        "cannot locate the control-plane binaries: {reason}. Run scripts/install-control-plane, \
         or set MARKETPLACE_CONTROL_PLANE_BIN to a folder holding etcd, kube-apiserver, \
         kube-controller-manager and kubectl"
    )]
    BinaryDir {
        /// Why the lookup failed.
        reason: String,
    },

    /// One of the four binaries is not in the binary folder.
    #[error(
        "missing control-plane binary {}: run scripts/install-control-plane to build it \
         (or point MARKETPLACE_CONTROL_PLANE_BIN at a folder that has it)",
        path.display()
    )]
    MissingBinary {
        /// The file that should exist.
        path: PathBuf,
    },

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Certificate or key generation failed.
    #[error("generating the control plane's certificates: {0}")]
    Pki(#[from] rcgen::Error),

    /// The generated kubeconfig could not be turned into a client configuration.
    #[error("loading the generated kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),

    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),

    /// A component process exited while it should be running.
    #[error("{component} exited ({status}); last lines of {}:\n{log_tail}", log.display())]
    ComponentExited {
        /// `etcd`, `kube-apiserver` or `kube-controller-manager`.
        component: &'static str,
        /// The exit status as printed by the OS.
        status: String,
        /// The component's log file.
        log: PathBuf,
        /// Its last lines.
        log_tail: String,
    },

    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}{details}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the harness waited.
        after: Duration,
        /// Last observed error and/or the tail of the relevant log (starts with a newline or is
        /// empty).
        details: String,
    },

    /// The local OIDC issuer could not be set up or used.
    #[error("local OIDC issuer: {0}")]
    Oidc(String),

    /// The caller passed something unusable (e.g. a CRD without a served version).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl HarnessError {
    /// Shorthand for [`HarnessError::Io`].
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// True when a component died because one of its ports was taken between the moment the
    /// harness picked it and the moment the component bound it; start-up is then retried.
    pub(crate) fn is_port_clash(&self) -> bool {
        matches!(self, Self::ComponentExited { log_tail, .. } if log_tail.contains("address already in use"))
    }
}

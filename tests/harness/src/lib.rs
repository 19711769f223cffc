//! A real Kubernetes control plane for the operator's integration tests.
//!
//! Like Go's envtest, it runs the genuine etcd and kube-apiserver binaries (built by
//! `scripts/install-control-plane`), so CRD validation, server-side apply, RBAC and admission
//! behave exactly as in a cluster. Unlike envtest it also runs kube-controller-manager with the
//! namespace and garbage-collector controllers, so namespace deletion and ownerReference
//! cascades work too. No kubelet or scheduler: Pods stay Pending.
//!
//! Environment:
//! - `MARKETPLACE_CONTROL_PLANE_BIN`: folder with `etcd`, `kube-apiserver`,
//!   `kube-controller-manager` and `kubectl`; default: what
//!   `scripts/install-control-plane --print-dir` prints (run that script to build them).
//! - `MARKETPLACE_KEEP_CONTROL_PLANE=1`: keep the temporary folder (component logs under
//!   `logs/`, etcd data, kubeconfig) and print where it is.
//!
//! The apiserver also trusts a local OpenID Connect issuer ([`oidc`]), so tests can call it with
//! ID tokens as a SaaS's identity provider would issue them.
//!
//! Everything listens on 127.0.0.1 only. Typical use in a test:
//!
//! ```no_run
//! # async fn test() -> Result<(), marketplace_harness::HarnessError> {
//! let control_plane = marketplace_harness::shared();
//! let client = control_plane.client().await?; // one client per test/runtime
//! let namespace = control_plane.create_namespace("my-test").await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod apiserver_metrics;
pub mod binaries;
mod control_plane;
mod error;
pub mod kubeconfig;
pub mod oidc;
pub mod pki;
pub mod postgres;
pub mod process;
mod wait;

use std::sync::OnceLock;

pub use apiserver_metrics::{
    Sample, WriteCounts, apiserver_requests, apiserver_samples, apiserver_writes, writes_between,
};
pub use binaries::{BIN_DIR_ENV, Binaries};
pub use control_plane::{
    ControlPlane, ControlPlaneOptions, FIELD_MANAGER, KEEP_ENV, TEST_NAMESPACE_LABEL,
};
pub use error::HarnessError;
pub use oidc::{IdToken, OIDC_AUDIENCE, OIDC_PREFIX, OidcIssuer, review_token};
pub use wait::eventually;

static SHARED: OnceLock<Result<ControlPlane, HarnessError>> = OnceLock::new();

/// The control plane shared by all tests of one test binary, started on first use.
///
/// It is started on a dedicated thread with its own runtime, so this may be called from any
/// `#[tokio::test]` (each has its own runtime) or plain `#[test]`. Statics are never dropped:
/// when the test process exits, however it exits, the watchdogs stop the components and the
/// janitor removes the folder (see [`process`]).
pub fn try_shared() -> Result<&'static ControlPlane, &'static HarnessError> {
    SHARED
        .get_or_init(|| ControlPlane::start_blocking(ControlPlaneOptions::default()))
        .as_ref()
}

/// [`try_shared`] for tests.
///
/// # Panics
///
/// If the control plane cannot start; the message says why (missing binary, log tail...).
pub fn shared() -> &'static ControlPlane {
    match try_shared() {
        Ok(control_plane) => control_plane,
        Err(e) => panic!("the shared control plane failed to start: {e}"),
    }
}

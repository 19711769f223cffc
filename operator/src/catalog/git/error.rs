//! Errors of git operations. Remote errors always name the catalog source, the URL (with any
//! credentials redacted) and the ref, because they end up in `CatalogSource` conditions and events
//! where an operator reading them has nothing else to go on.

use std::path::PathBuf;
use std::time::Duration;

/// Errors of git operations, naming the repository and what was asked.
///
/// URLs in these messages are always redacted (`https://***@host/...`), and messages coming from
/// libgit2 are scrubbed of the credentials in use: they are safe to log and to put in a status.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot open git repository {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("git revision {revision:?} not found: {source}")]
    Revision {
        revision: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot read {path:?} at {revision}: {source}")]
    Read {
        revision: String,
        path: String,
        #[source]
        source: git2::Error,
    },
    /// The `ref` of the source is unusable (none or several of branch/tag/commit, bad name).
    #[error("catalog source {source_key}: invalid ref: {reason}")]
    InvalidRef { source_key: String, reason: String },
    /// The credentials do not fit the URL (e.g. ssh without known_hosts, a token for an ssh URL).
    #[error("catalog source {source_key}: cannot use the credentials for {url}: {reason}")]
    Credentials {
        source_key: String,
        url: String,
        reason: String,
    },
    /// The branch or tag does not exist on the remote, or the pinned commit is not reachable.
    #[error("catalog source {source_key}: {git_ref} not found in {url}")]
    RefNotFound {
        source_key: String,
        url: String,
        git_ref: String,
    },
    /// The remote wanted credentials we do not have, or rejected the ones we sent.
    #[error("catalog source {source_key}: authentication failed for {url} ({git_ref}): {hint}")]
    Authentication {
        source_key: String,
        url: String,
        git_ref: String,
        hint: String,
    },
    /// The ssh host key is not in `known_hosts`, does not match it, or is revoked.
    #[error("catalog source {source_key}: host key verification failed for {url}: {reason}")]
    HostKey {
        source_key: String,
        url: String,
        reason: String,
    },
    /// The fetch took longer than the source's timeout.
    #[error(
        "catalog source {source_key}: fetching {git_ref} from {url} timed out after {timeout:?}{detail}"
    )]
    Timeout {
        source_key: String,
        url: String,
        git_ref: String,
        timeout: Duration,
        /// Extra context, e.g. that a previous fetch of the same source was still running.
        detail: &'static str,
    },
    /// Any other failure talking to the remote (network, protocol, server errors).
    #[error("catalog source {source_key}: cannot fetch {git_ref} from {url}: {message}")]
    Fetch {
        source_key: String,
        url: String,
        git_ref: String,
        message: String,
    },
    /// The local cache repository could not be created, opened or repaired.
    #[error("catalog source {source_key}: git cache {path}: {message}")]
    Cache {
        source_key: String,
        path: PathBuf,
        message: String,
    },
    /// Files were asked for a commit that no fetch has brought into the cache.
    #[error(
        "catalog source {source_key}: commit {commit} is not in the git cache (fetch it first)"
    )]
    NotCached { source_key: String, commit: String },
    /// Another git operation on the same source held the cache for too long.
    #[error(
        "catalog source {source_key}: the git cache is busy (a previous fetch is still running)"
    )]
    Busy { source_key: String },
    /// The blocking worker thread panicked or was cancelled.
    #[error("catalog source {source_key}: git worker failed: {message}")]
    Worker { source_key: String, message: String },
}

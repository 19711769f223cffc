//! `GitCache`: the async face of the git layer. Each source has its own bare repository under
//! the cache root and its own lock, so one source is never fetched twice at once while different
//! sources fetch in parallel. Locks are process-wide, keyed by repository directory, so two
//! `GitCache` values on the same root (e.g. one built per reconcile) still exclude each other. libgit2 work runs on tokio's blocking pool, bounded by the
//! request's timeout both outside (the caller stops waiting) and inside (libgit2 callbacks abort
//! the transfer at the same deadline).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use git2::Oid;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio::time::Instant;

use super::credentials::GitCredentials;
use super::error::GitError;
use super::redact::redact_url;
use super::refs::{Revision, Wanted, parse_last_commit};
use super::remote::{FetchOutcome, Job, fetch_blocking};
use super::{files_at, store};
use crate::api::catalog_source::GitRef;
use crate::catalog::SourceFile;

/// Flux's default git timeout.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long reading files waits for a running fetch of the same source.
const FILES_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// One fetch of a catalog source.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    /// Identifies the source and its cache repository, e.g. `namespace/name`.
    pub source_key: String,
    pub url: String,
    pub git_ref: GitRef,
    pub credentials: GitCredentials,
    /// Bounds the whole fetch, including waiting for a previous fetch of the same source.
    pub timeout: Duration,
    /// The commit seen last time: a SHA or a revision string (`main@sha1:<sha>`). When the remote
    /// still points there and the cache has it, nothing is downloaded.
    pub last_commit: Option<String>,
}

impl FetchRequest {
    /// A request with no credentials, the default timeout and no previous commit.
    pub fn new(source_key: impl Into<String>, url: impl Into<String>, git_ref: GitRef) -> Self {
        Self {
            source_key: source_key.into(),
            url: url.into(),
            git_ref,
            credentials: GitCredentials::None,
            timeout: DEFAULT_FETCH_TIMEOUT,
            last_commit: None,
        }
    }
}

/// Per-repository locks of the whole process (a few bytes per source, never removed).
static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<AsyncMutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// Bare repositories of all catalog sources, under one root directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GitCache {
    root: PathBuf,
}

impl GitCache {
    /// A cache under `root` (created on first fetch). Repositories there survive restarts.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cache repository of a source: a readable name plus a digest, so keys with any
    /// characters map to distinct, valid directory names.
    pub fn repo_dir(&self, source_key: &str) -> PathBuf {
        let readable: String = source_key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let digest = store::digest(source_key);
        self.root.join(format!("{readable}-{}.git", &digest[..16]))
    }

    /// Makes the commit the request's ref points at available in the cache, downloading only
    /// when the cache lacks it, and returns it with its revision string.
    pub async fn fetch(&self, request: FetchRequest) -> Result<(FetchOutcome, Revision), GitError> {
        let started = Instant::now();
        let deadline = started + request.timeout;
        let wanted =
            Wanted::from_spec(&request.git_ref).map_err(|reason| GitError::InvalidRef {
                source_key: request.source_key.clone(),
                reason,
            })?;
        let job = Job {
            last_commit: request.last_commit.as_deref().and_then(parse_last_commit),
            source_key: request.source_key,
            url: request.url,
            wanted,
            credentials: request.credentials,
            deadline: deadline.into_std(),
            timeout: request.timeout,
        };
        let guard = match tokio::time::timeout_at(deadline, self.lock(&job.source_key)).await {
            Ok(guard) => guard,
            Err(_) => {
                return Err(
                    job.timeout_error_with(" (a previous fetch of this source was still running)")
                );
            }
        };
        let dir = self.repo_dir(&job.source_key);
        let job = Arc::new(job);
        let worker_job = Arc::clone(&job);
        let worker = tokio::task::spawn_blocking(move || {
            // Held until libgit2 is done, even if the caller stopped waiting.
            let _guard = guard;
            fetch_blocking(&dir, &worker_job)
        });
        let result = match tokio::time::timeout_at(deadline, worker).await {
            Err(_) => Err(job.timeout_error()),
            Ok(Err(join)) => Err(GitError::Worker {
                source_key: job.source_key.clone(),
                message: join.to_string(),
            }),
            Ok(Ok(result)) => result,
        };
        match &result {
            Ok((outcome, revision)) => tracing::debug!(
                source = %job.source_key, url = %redact_url(&job.url), %revision,
                unchanged = matches!(outcome, FetchOutcome::Unchanged { .. }),
                elapsed_ms = started.elapsed().as_millis(), "git fetch done"
            ),
            Err(error) => tracing::debug!(source = %job.source_key, %error, "git fetch failed"),
        }
        result
    }

    /// The catalog files under `folder` at `commit`, from the source's cache repository (the
    /// commit must have been fetched). Runs on a blocking thread.
    pub async fn files(
        &self,
        source_key: &str,
        commit: Oid,
        folder: &str,
    ) -> Result<Vec<SourceFile>, GitError> {
        let busy = || GitError::Busy {
            source_key: source_key.to_owned(),
        };
        let guard = tokio::time::timeout(FILES_LOCK_TIMEOUT, self.lock(source_key))
            .await
            .map_err(|_| busy())?;
        let dir = self.repo_dir(source_key);
        let (key, folder) = (source_key.to_owned(), folder.to_owned());
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let not_cached = || GitError::NotCached {
                source_key: key.clone(),
                commit: commit.to_string(),
            };
            let repo = store::open_existing(&dir).ok_or_else(not_cached)?;
            if repo.find_commit(commit).is_err() {
                return Err(not_cached());
            }
            files_at(&repo, commit, &folder)
        })
        .await
        .map_err(|join| GitError::Worker {
            source_key: source_key.to_owned(),
            message: join.to_string(),
        })?
    }

    /// Deletes the cache repository of a source (when its `CatalogSource` is deleted).
    pub async fn remove(&self, source_key: &str) -> Result<(), GitError> {
        let busy = || GitError::Busy {
            source_key: source_key.to_owned(),
        };
        let guard = tokio::time::timeout(FILES_LOCK_TIMEOUT, self.lock(source_key))
            .await
            .map_err(|_| busy())?;
        let dir = self.repo_dir(source_key);
        let key = source_key.to_owned();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            store::remove(&dir).map_err(|message| GitError::Cache {
                source_key: key,
                path: dir.clone(),
                message,
            })
        })
        .await
        .map_err(|join| GitError::Worker {
            source_key: source_key.to_owned(),
            message: join.to_string(),
        })?
    }

    /// The lock of a source's cache repository.
    async fn lock(&self, source_key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(self.repo_dir(source_key)).or_default())
        };
        lock.lock_owned().await
    }
}

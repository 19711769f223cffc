//! Git access for the catalog, on libgit2 (git2).
//!
//! - [`GitCache`] fetches catalog sources into cached bare repositories (async; libgit2 runs on
//!   blocking threads with a deadline) and reads their files.
//! - [`files_at`], [`resolve_commit`] and [`open_containing`] read local repositories; they are
//!   blocking, for the CLI and for async callers on a blocking thread.

mod cache;
mod credentials;
mod error;
mod known_hosts;
mod redact;
mod refs;
mod remote;
mod store;

use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use super::{SourceFile, is_catalog_file};

pub use cache::{DEFAULT_FETCH_TIMEOUT, FetchRequest, GitCache};
pub use credentials::{CredentialsError, GitCredentials, secret_keys};
pub use error::GitError;
pub use redact::redact_url;
pub use refs::Revision;
pub use remote::FetchOutcome;

/// The catalog files (YAML) under `folder` in the tree of `commit`, with paths relative to the
/// repository root. A missing folder yields no files (a catalog may start empty).
pub fn files_at(repo: &Repository, commit: Oid, folder: &str) -> Result<Vec<SourceFile>, GitError> {
    let read_error = |source| GitError::Read {
        revision: commit.to_string(),
        path: folder.to_owned(),
        source,
    };
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(read_error)?;
    let folder = folder.trim_start_matches("./").trim_end_matches('/');
    let subtree = if folder.is_empty() || folder == "." {
        tree
    } else {
        match tree.get_path(Path::new(folder)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Tree) => {
                repo.find_tree(entry.id()).map_err(read_error)?
            }
            Ok(_) => return Ok(Vec::new()),
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(read_error(e)),
        }
    };
    let prefix = if folder.is_empty() || folder == "." {
        PathBuf::new()
    } else {
        PathBuf::from(folder)
    };
    let mut blobs = Vec::new();
    subtree
        .walk(TreeWalkMode::PreOrder, |dir, entry| {
            let path = prefix.join(dir).join(entry.name().unwrap_or_default());
            if entry.kind() == Some(ObjectType::Blob) && is_catalog_file(&path) {
                blobs.push((path, entry.id()));
            }
            TreeWalkResult::Ok
        })
        .map_err(read_error)?;
    blobs
        .into_iter()
        .map(|(path, id)| {
            let blob = repo.find_blob(id).map_err(read_error)?;
            Ok(SourceFile {
                path,
                contents: blob.content().to_vec(),
            })
        })
        .collect()
}

/// Resolves a revision (branch, tag, `HEAD~2`, a SHA) in a local repository to its commit.
pub fn resolve_commit(repo: &Repository, revision: &str) -> Result<Oid, GitError> {
    repo.revparse_single(revision)
        .and_then(|object| object.peel_to_commit())
        .map(|commit| commit.id())
        .map_err(|source| GitError::Revision {
            revision: revision.to_owned(),
            source,
        })
}

/// Opens the repository that contains `path` (searching upwards, as `git` does).
pub fn open_containing(path: &Path) -> Result<Repository, GitError> {
    Repository::discover(path).map_err(|source| GitError::Open {
        path: path.to_owned(),
        source,
    })
}

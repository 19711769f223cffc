//! The on-disk cache: one bare repository per catalog source. Fetches are incremental into it,
//! so an unchanged source costs one ref listing, and a changed one only the new objects.
//!
//! The repository records a digest of the URL it mirrors (config `marketplace.urlDigest`; a
//! digest because users put tokens in URLs); a source whose URL
//! changes starts from an empty repository, so objects and shallow roots of another repository
//! never mix in. A repository that cannot be opened (disk trouble, a crash during creation) is
//! removed and created again: it is only a cache.

use std::path::Path;

use git2::Repository;

/// Config key holding the SHA-256 of the URL the cache repository mirrors.
const URL_KEY: &str = "marketplace.urlDigest";

/// libgit2 cannot repack, so every fetch adds a pack file; past this many, lookups slow down and
/// a fresh shallow clone is cheaper than keeping the history of small packs.
const MAX_PACKS: usize = 64;

/// Opens the cache repository for `url` at `dir`, creating or re-creating it as needed.
pub(super) fn open_or_create(dir: &Path, url: &str) -> Result<Repository, String> {
    if !dir.exists() {
        return create(dir, url);
    }
    let repo = match Repository::open_bare(dir) {
        Ok(repo) => repo,
        Err(e) => {
            tracing::warn!(path = %dir.display(), error = %e.message(), "git cache cannot be opened; re-creating it");
            return recreate(dir, url);
        }
    };
    let recorded = repo.config().and_then(|c| c.get_string(URL_KEY)).ok();
    if recorded.as_deref() != Some(url_digest(url).as_str()) {
        tracing::info!(path = %dir.display(), "source URL changed; starting a new git cache");
        drop(repo);
        return recreate(dir, url);
    }
    if pack_count(dir) > MAX_PACKS {
        tracing::info!(path = %dir.display(), "git cache has too many packs; starting a new one");
        drop(repo);
        return recreate(dir, url);
    }
    Ok(repo)
}

/// Removes whatever is at `dir` and creates an empty cache repository for `url`.
pub(super) fn recreate(dir: &Path, url: &str) -> Result<Repository, String> {
    remove(dir)?;
    create(dir, url)
}

/// Removes a cache repository (missing is fine).
pub(super) fn remove(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove: {e}")),
    }
}

fn create(dir: &Path, url: &str) -> Result<Repository, String> {
    let repo = Repository::init_bare(dir).map_err(|e| format!("cannot create: {}", e.message()))?;
    repo.config()
        .and_then(|mut config| config.set_str(URL_KEY, &url_digest(url)))
        .map_err(|e| format!("cannot write config: {}", e.message()))?;
    Ok(repo)
}

/// Hex SHA-256, used for the URL record and for directory names.
pub(super) fn digest(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn url_digest(url: &str) -> String {
    digest(url)
}

fn pack_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("objects").join("pack"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "pack"))
                .count()
        })
        .unwrap_or(0)
}

/// Opens an existing cache repository for reading (no repair: reads never modify the cache).
pub(super) fn open_existing(dir: &Path) -> Option<Repository> {
    Repository::open_bare(dir).ok()
}

//! The git ref a source asks for, and the Flux-style revision strings derived from it
//! (`main@sha1:<sha>`, `v1.2.0@sha1:<sha>`, `sha1:<sha>`), which the status shows and which a
//! later fetch hands back as `last_commit`.

use std::fmt;

use git2::{Oid, Reference};

use crate::api::catalog_source::GitRef;

/// A commit with the revision string shown in status and events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    pub commit: Oid,
    /// Flux style: `main@sha1:<40 hex>` (branch), `v1.2.0@sha1:<40 hex>` (tag), `sha1:<40 hex>` (commit).
    pub display: String,
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// What to fetch, validated from a [`GitRef`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Wanted {
    Branch(String),
    Tag(String),
    Commit(Oid),
}

impl Wanted {
    /// Exactly one of branch, tag or commit must be set (the CRD enforces it; this guards
    /// against objects written before the rule, and against tests).
    pub(super) fn from_spec(git_ref: &GitRef) -> Result<Self, String> {
        let wanted = match (&git_ref.branch, &git_ref.tag, &git_ref.commit) {
            (Some(branch), None, None) => Self::Branch(branch.clone()),
            (None, Some(tag), None) => Self::Tag(tag.clone()),
            (None, None, Some(commit)) => {
                let valid = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
                let oid = Oid::from_str(commit).ok().filter(|_| valid);
                Self::Commit(
                    oid.ok_or_else(|| format!("commit {commit:?} is not a full 40-hex SHA-1"))?,
                )
            }
            _ => return Err("set exactly one of branch, tag or commit".to_owned()),
        };
        if let Some(name) = wanted.remote_ref()
            && !Reference::is_valid_name(&name)
        {
            return Err(format!("{wanted} is not a valid git ref name"));
        }
        Ok(wanted)
    }

    /// The full ref name on the remote (none for a commit pin).
    pub(super) fn remote_ref(&self) -> Option<String> {
        match self {
            Self::Branch(branch) => Some(format!("refs/heads/{branch}")),
            Self::Tag(tag) => Some(format!("refs/tags/{tag}")),
            Self::Commit(_) => None,
        }
    }

    pub(super) fn revision(&self, commit: Oid) -> Revision {
        let display = match self {
            Self::Branch(name) | Self::Tag(name) => format!("{name}@sha1:{commit}"),
            Self::Commit(_) => format!("sha1:{commit}"),
        };
        Revision { commit, display }
    }
}

impl fmt::Display for Wanted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Branch(name) => write!(f, "branch {name}"),
            Self::Tag(name) => write!(f, "tag {name}"),
            Self::Commit(oid) => write!(f, "commit {oid}"),
        }
    }
}

/// The commit of a previous revision: a bare SHA, or a revision string as in status
/// (`main@sha1:<sha>`, `sha1:<sha>`), so callers can pass `status.lastAttemptedRevision` as is.
/// Anything else is treated as "no previous commit" (the fetch then simply happens).
pub(super) fn parse_last_commit(text: &str) -> Option<Oid> {
    let sha = text
        .rsplit_once("sha1:")
        .map_or(text, |(_, sha)| sha)
        .trim();
    (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Oid::from_str(sha).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn spec(branch: Option<&str>, tag: Option<&str>, commit: Option<&str>) -> GitRef {
        GitRef {
            branch: branch.map(Into::into),
            tag: tag.map(Into::into),
            commit: commit.map(Into::into),
        }
    }

    #[test]
    fn validates_refs() {
        assert_eq!(
            Wanted::from_spec(&spec(Some("main"), None, None)),
            Ok(Wanted::Branch("main".into()))
        );
        assert_eq!(
            Wanted::from_spec(&spec(None, Some("v1.0.0"), None)),
            Ok(Wanted::Tag("v1.0.0".into()))
        );
        assert!(Wanted::from_spec(&spec(None, None, Some(SHA))).is_ok());
        assert!(Wanted::from_spec(&spec(None, None, Some("abc"))).is_err());
        assert!(Wanted::from_spec(&spec(Some("main"), Some("v1"), None)).is_err());
        assert!(Wanted::from_spec(&spec(None, None, None)).is_err());
        assert!(Wanted::from_spec(&spec(Some("bad..name"), None, None)).is_err());
    }

    #[test]
    fn formats_flux_revisions_and_parses_them_back() {
        let oid = Oid::from_str(SHA).unwrap();
        assert_eq!(
            Wanted::Branch("main".into()).revision(oid).display,
            format!("main@sha1:{SHA}")
        );
        assert_eq!(
            Wanted::Tag("v1.2.0".into()).revision(oid).display,
            format!("v1.2.0@sha1:{SHA}")
        );
        assert_eq!(
            Wanted::Commit(oid).revision(oid).display,
            format!("sha1:{SHA}")
        );
        assert_eq!(parse_last_commit(&format!("main@sha1:{SHA}")), Some(oid));
        assert_eq!(parse_last_commit(&format!("sha1:{SHA}")), Some(oid));
        assert_eq!(parse_last_commit(SHA), Some(oid));
        assert_eq!(parse_last_commit("main@sha1:zz"), None);
    }
}

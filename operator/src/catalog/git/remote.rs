//! The blocking libgit2 work of one fetch: list the remote's refs, skip the transfer when the
//! cache already holds the wanted commit, otherwise fetch it (shallow when the transport allows).
//!
//! libgit2 cannot be cancelled from outside, so the deadline is enforced from inside: every
//! callback libgit2 makes (credentials, certificate, transfer and sideband progress) checks it
//! and aborts the operation once it has passed.

use std::cell::RefCell;
use std::path::Path;
use std::time::{Duration, Instant};

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, Direction, ErrorClass, ErrorCode,
    FetchOptions, Oid, ProxyOptions, RemoteCallbacks, Repository,
};

use super::credentials::GitCredentials;
use super::error::GitError;
use super::known_hosts::{HostKeyError, KnownHosts, ssh_host_port};
use super::redact::{redact_url, scrub};
use super::refs::{Revision, Wanted};
use super::store;

const REFLOG_MESSAGE: &str = "marketplace-operator: fetch";

/// libgit2's `GIT_FETCH_DEPTH_UNSHALLOW`: fetch the history that a shallow repository lacks.
const DEPTH_UNSHALLOW: i32 = i32::MAX;

/// Everything one fetch needs, owned so that it can move to a blocking thread.
#[derive(Debug)]
pub(super) struct Job {
    pub source_key: String,
    pub url: String,
    pub wanted: Wanted,
    pub credentials: GitCredentials,
    pub last_commit: Option<Oid>,
    pub deadline: Instant,
    pub timeout: Duration,
}

/// What a fetch found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The ref still points at `last_commit`, which is in the cache: nothing was downloaded.
    Unchanged { commit: Oid },
    /// The ref points at another commit than `last_commit` (or there was none); the commit is
    /// now in the cache (downloaded, unless the cache already had it, e.g. after a revert).
    Fetched { commit: Oid },
}

impl FetchOutcome {
    pub fn commit(&self) -> Oid {
        match self {
            Self::Unchanged { commit } | Self::Fetched { commit } => *commit,
        }
    }
}

/// How one attempt failed: local damage is repaired by re-creating the cache (once).
enum Failure {
    Damage(String),
    Fatal(GitError),
}

type Attempt<T> = Result<T, Failure>;

/// What the callbacks observed, to tell apart why libgit2 gave up.
#[derive(Default)]
struct CallState {
    offered_credentials: bool,
    auth_failure: Option<String>,
    host_key_failure: Option<String>,
    timed_out: bool,
}

/// Checks done once per fetch before any connection.
struct Prepared {
    known_hosts: Option<KnownHosts>,
    ssh_port: u16,
    /// libgit2's local (file://) transport refuses shallow fetches; everything else gets depth 1.
    shallow: bool,
}

/// Runs the fetch into the cache repository at `dir`.
pub(super) fn fetch_blocking(dir: &Path, job: &Job) -> Result<(FetchOutcome, Revision), GitError> {
    if Instant::now() >= job.deadline {
        return Err(job.timeout_error());
    }
    let prepared = prepare(job)?;
    let cache_error = |message: String| GitError::Cache {
        source_key: job.source_key.clone(),
        path: dir.to_owned(),
        message,
    };
    let repo = store::open_or_create(dir, &job.url).map_err(cache_error)?;
    let commit = match sync(&repo, job, &prepared) {
        Ok(commit) => commit,
        Err(Failure::Fatal(error)) => return Err(error),
        Err(Failure::Damage(message)) => {
            tracing::warn!(source = %job.source_key, %message, "git cache damaged; re-creating it");
            drop(repo);
            let repo = store::recreate(dir, &job.url).map_err(cache_error)?;
            match sync(&repo, job, &prepared) {
                Ok(commit) => commit,
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Damage(message)) => return Err(cache_error(message)),
            }
        }
    };
    let outcome = if job.last_commit == Some(commit) {
        FetchOutcome::Unchanged { commit }
    } else {
        FetchOutcome::Fetched { commit }
    };
    Ok((outcome, job.wanted.revision(commit)))
}

/// Refuses credential/URL combinations that cannot work or would be unsafe, before connecting.
fn prepare(job: &Job) -> Result<Prepared, GitError> {
    let refuse = |reason: &str| GitError::Credentials {
        source_key: job.source_key.clone(),
        url: redact_url(&job.url),
        reason: reason.to_owned(),
    };
    let url = job.url.as_str();
    let ssh = ssh_host_port(url);
    let local = url.starts_with("file://") || (!url.contains("://") && ssh.is_none());
    let known_hosts = match (&job.credentials, &ssh) {
        (GitCredentials::Ssh { known_hosts, .. }, Some(_)) => {
            let text = known_hosts.as_deref().ok_or_else(|| {
                refuse("ssh needs secret key `known_hosts` to verify the server; refusing to trust an unknown host key")
            })?;
            let parsed = KnownHosts::parse(text)
                .ok_or_else(|| refuse("secret key `known_hosts` has no usable known_hosts line"))?;
            Some(parsed)
        }
        (GitCredentials::None, Some(_)) => {
            return Err(refuse(
                "ssh URLs need a secretRef with keys `identity` and `known_hosts`",
            ));
        }
        (GitCredentials::Token { .. }, Some(_)) => {
            return Err(refuse(
                "the secret holds a token, which only works with https URLs; use keys `identity` and `known_hosts` for ssh",
            ));
        }
        (GitCredentials::Ssh { .. }, None) => {
            return Err(refuse(
                "the secret holds an ssh key (`identity`) but the URL is not an ssh URL",
            ));
        }
        (GitCredentials::Token { .. }, None)
            if url.starts_with("http://") && !is_loopback_http(url) =>
        {
            return Err(refuse(
                "refusing to send a token over plain http; use https",
            ));
        }
        (GitCredentials::Token { .. } | GitCredentials::None, None) => None,
    };
    Ok(Prepared {
        known_hosts,
        ssh_port: ssh.map_or(22, |(_, port)| port),
        shallow: !local,
    })
}

/// Plain http is only for tests against a server on this machine.
fn is_loopback_http(url: &str) -> bool {
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map_or_else(
            || host.split(':').next().unwrap_or_default(),
            |(inside, _)| inside,
        );
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Brings the wanted commit into the cache if needed; returns it.
fn sync(repo: &Repository, job: &Job, prepared: &Prepared) -> Attempt<Oid> {
    match &job.wanted {
        Wanted::Commit(oid) => {
            if !has_commit(repo, *oid)? {
                fetch_commit(repo, job, prepared, *oid)?;
            }
            Ok(*oid)
        }
        Wanted::Branch(_) | Wanted::Tag(_) => fetch_ref(
            repo,
            job,
            prepared,
            &job.wanted.remote_ref().unwrap_or_default(),
        ),
    }
}

/// Lists the remote's refs (like `git ls-remote`) and, unless the cache already has the
/// advertised commit, fetches the ref over the same connection (one ref listing per sync).
fn fetch_ref(repo: &Repository, job: &Job, prepared: &Prepared, name: &str) -> Attempt<Oid> {
    let state = RefCell::new(CallState::default());
    let mut remote = repo
        .remote_anonymous(&job.url)
        .map_err(|e| Failure::Fatal(job.fetch_error(&e)))?;
    let mut connection = remote
        .connect_auth(
            Direction::Fetch,
            Some(callbacks(job, prepared, &state)),
            Some(proxy_options()),
        )
        .map_err(|e| remote_failure(job, &state, &e))?;
    let advertised = {
        let heads = connection
            .list()
            .map_err(|e| remote_failure(job, &state, &e))?;
        // Annotated tags are advertised twice: the tag object, and `^{}` peeled to the commit.
        let peeled = format!("{name}^{{}}");
        heads
            .iter()
            .find(|head| head.name() == peeled)
            .or_else(|| heads.iter().find(|head| head.name() == name))
            .map(|head| head.oid())
    };
    let advertised = advertised.ok_or_else(|| Failure::Fatal(job.not_found()))?;
    if has_commit(repo, advertised)? {
        return Ok(advertised);
    }
    let refspec = format!("+{name}:{name}");
    let mut options = fetch_options(job, prepared, &state, if prepared.shallow { 1 } else { 0 });
    connection
        .remote()
        .fetch(
            &[refspec.as_str()],
            Some(&mut options),
            Some(REFLOG_MESSAGE),
        )
        .map_err(|e| remote_failure(job, &state, &e))?;
    drop(connection);
    // The ref may have moved since the listing: the fetched ref is the truth.
    let commit = repo
        .find_reference(name)
        .and_then(|r| r.peel_to_commit())
        .map_err(|e| damage("reading the fetched ref", &e))?;
    Ok(commit.id())
}

/// Fetches a pinned commit by its SHA; servers that refuse SHA wants (no
/// `allow-reachable-sha1-in-want`) get a full fetch of all branches and tags instead.
fn fetch_commit(repo: &Repository, job: &Job, prepared: &Prepared, oid: Oid) -> Attempt<()> {
    let spec = oid.to_string();
    match fetch(
        repo,
        job,
        prepared,
        &[spec.as_str()],
        if prepared.shallow { 1 } else { 0 },
    ) {
        Ok(()) => {}
        Err(Failure::Fatal(GitError::Fetch { message, .. })) => {
            tracing::debug!(source = %job.source_key, %message, "fetching a commit by SHA failed; fetching all branches and tags");
            let depth = if repo.is_shallow() {
                DEPTH_UNSHALLOW
            } else {
                0
            };
            fetch(
                repo,
                job,
                prepared,
                &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                depth,
            )?;
        }
        Err(other) => return Err(other),
    }
    if has_commit(repo, oid)? {
        Ok(())
    } else {
        Err(Failure::Fatal(job.not_found()))
    }
}

/// Whether the commit and its tree are in the cache (so its files can be read without fetching).
fn has_commit(repo: &Repository, oid: Oid) -> Attempt<bool> {
    match repo.find_commit(oid).and_then(|commit| commit.tree()) {
        Ok(_) => Ok(true),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(false),
        Err(e) => Err(damage("looking up a commit", &e)),
    }
}

fn fetch(
    repo: &Repository,
    job: &Job,
    prepared: &Prepared,
    refspecs: &[&str],
    depth: i32,
) -> Attempt<()> {
    let state = RefCell::new(CallState::default());
    let mut remote = repo
        .remote_anonymous(&job.url)
        .map_err(|e| Failure::Fatal(job.fetch_error(&e)))?;
    let mut options = fetch_options(job, prepared, &state, depth);
    remote
        .fetch(refspecs, Some(&mut options), Some(REFLOG_MESSAGE))
        .map_err(|e| remote_failure(job, &state, &e))
}

/// Only the asked-for refs (no tag auto-following: a catalog needs one commit, not all tags).
fn fetch_options<'a>(
    job: &'a Job,
    prepared: &'a Prepared,
    state: &'a RefCell<CallState>,
    depth: i32,
) -> FetchOptions<'a> {
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks(job, prepared, state))
        .proxy_options(proxy_options())
        .download_tags(AutotagOption::None)
        .depth(depth);
    options
}

/// Proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`), as every other controller honours them.
fn proxy_options() -> ProxyOptions<'static> {
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    proxy
}

fn callbacks<'a>(
    job: &'a Job,
    prepared: &'a Prepared,
    state: &'a RefCell<CallState>,
) -> RemoteCallbacks<'a> {
    let expired = move || {
        let expired = Instant::now() >= job.deadline;
        if expired {
            state.borrow_mut().timed_out = true;
        }
        expired
    };
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |_url, username_from_url, allowed| {
        if expired() {
            return Err(git2::Error::from_str("deadline passed"));
        }
        credentials(job, &mut state.borrow_mut(), username_from_url, allowed)
    });
    callbacks.certificate_check(move |cert, host| {
        if expired() {
            return Err(git2::Error::from_str("deadline passed"));
        }
        let Some(hostkey) = cert.as_hostkey() else {
            // TLS: let libgit2 and OpenSSL verify the chain against the system roots.
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let verdict = match (&prepared.known_hosts, hostkey.hostkey()) {
            (Some(known), Some(key)) => known.verify(host, prepared.ssh_port, key),
            (None, _) => Err(HostKeyError::Unknown(host.to_owned())),
            (_, None) => Err(HostKeyError::NoKey),
        };
        verdict
            .map(|()| CertificateCheckStatus::CertificateOk)
            .map_err(|e| {
                state.borrow_mut().host_key_failure = Some(e.to_string());
                git2::Error::new(ErrorCode::Certificate, ErrorClass::Ssh, "host key rejected")
            })
    });
    callbacks.transfer_progress(move |_| !expired());
    callbacks.sideband_progress(move |_| !expired());
    callbacks
}

/// Answers libgit2's credential requests; a second request for the same secret means the remote
/// rejected it (libgit2 would otherwise ask forever).
fn credentials(
    job: &Job,
    state: &mut CallState,
    username_from_url: Option<&str>,
    allowed: CredentialType,
) -> Result<Cred, git2::Error> {
    let mut refuse = |hint: String| {
        state.auth_failure = Some(hint);
        Err(git2::Error::new(
            ErrorCode::Auth,
            ErrorClass::Net,
            "authentication failed",
        ))
    };
    if allowed.contains(CredentialType::USERNAME) {
        return Cred::username(username_from_url.unwrap_or("git"));
    }
    if state.offered_credentials {
        return refuse(job.credentials.rejected_hint());
    }
    match &job.credentials {
        GitCredentials::Token { username, token }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
        {
            state.offered_credentials = true;
            Cred::userpass_plaintext(
                username.as_deref().or(username_from_url).unwrap_or("git"),
                token,
            )
        }
        GitCredentials::Ssh {
            private_key,
            passphrase,
            ..
        } if allowed.intersects(CredentialType::SSH_KEY | CredentialType::SSH_MEMORY) => {
            state.offered_credentials = true;
            Cred::ssh_key_from_memory(
                username_from_url.unwrap_or("git"),
                None,
                private_key,
                passphrase.as_deref(),
            )
        }
        GitCredentials::None => refuse(job.credentials.rejected_hint()),
        GitCredentials::Token { .. } => {
            refuse("the remote does not accept a token (secret key `token`) here".to_owned())
        }
        GitCredentials::Ssh { .. } => {
            refuse("the remote does not accept an ssh key (secret key `identity`) here".to_owned())
        }
    }
}

/// Classifies a libgit2 error from a remote operation, using what the callbacks saw.
fn remote_failure(job: &Job, state: &RefCell<CallState>, error: &git2::Error) -> Failure {
    let state = state.borrow();
    if state.timed_out || Instant::now() >= job.deadline {
        return Failure::Fatal(job.timeout_error());
    }
    if let Some(reason) = &state.host_key_failure {
        return Failure::Fatal(GitError::HostKey {
            source_key: job.source_key.clone(),
            url: redact_url(&job.url),
            reason: reason.clone(),
        });
    }
    let auth_hint = state.auth_failure.clone().or_else(|| {
        let ssh_key_unusable = state.offered_credentials && error.class() == ErrorClass::Ssh;
        (error.code() == ErrorCode::Auth || ssh_key_unusable).then(|| {
            format!(
                "{} ({})",
                job.credentials.rejected_hint(),
                job.scrub(error.message())
            )
        })
    });
    if let Some(hint) = auth_hint {
        return Failure::Fatal(GitError::Authentication {
            source_key: job.source_key.clone(),
            url: redact_url(&job.url),
            git_ref: job.wanted.to_string(),
            hint,
        });
    }
    if error.code() == ErrorCode::Locked {
        return Failure::Damage(format!("stale lock file: {}", job.scrub(error.message())));
    }
    Failure::Fatal(job.fetch_error(error))
}

fn damage(action: &str, error: &git2::Error) -> Failure {
    Failure::Damage(format!("{action}: {}", error.message()))
}

impl Job {
    fn scrub(&self, text: &str) -> String {
        scrub(text, &self.credentials.secrets())
    }

    pub(super) fn timeout_error(&self) -> GitError {
        self.timeout_error_with("")
    }

    pub(super) fn timeout_error_with(&self, detail: &'static str) -> GitError {
        GitError::Timeout {
            source_key: self.source_key.clone(),
            url: redact_url(&self.url),
            git_ref: self.wanted.to_string(),
            timeout: self.timeout,
            detail,
        }
    }

    fn not_found(&self) -> GitError {
        GitError::RefNotFound {
            source_key: self.source_key.clone(),
            url: redact_url(&self.url),
            git_ref: self.wanted.to_string(),
        }
    }

    fn fetch_error(&self, error: &git2::Error) -> GitError {
        GitError::Fetch {
            source_key: self.source_key.clone(),
            url: redact_url(&self.url),
            git_ref: self.wanted.to_string(),
            message: self.scrub(error.message()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local repository with enough objects that libgit2 reports transfer progress.
    fn remote_repo(dir: &Path) -> Oid {
        let repo = Repository::init(dir).unwrap();
        let mut tree = repo.treebuilder(None).unwrap();
        for i in 0..200 {
            let blob = repo
                .blob(format!("kind: Listing\nname: l{i}\n").as_bytes())
                .unwrap();
            tree.insert(format!("l{i}.yaml"), blob, 0o100_644).unwrap();
        }
        let tree = repo.find_tree(tree.write().unwrap()).unwrap();
        let signature = git2::Signature::now("Test", "test@example.com").unwrap();
        repo.commit(
            Some("refs/heads/main"),
            &signature,
            &signature,
            "listings",
            &tree,
            &[],
        )
        .unwrap()
    }

    fn job(url: String, deadline: Instant) -> Job {
        Job {
            source_key: "ns/source".into(),
            url,
            wanted: Wanted::Branch("main".into()),
            credentials: GitCredentials::None,
            last_commit: None,
            deadline,
            timeout: Duration::from_millis(1),
        }
    }

    /// The deadline is enforced inside libgit2's work: once it has passed, the transfer callback
    /// aborts the fetch and nothing is written to the cache.
    #[test]
    fn transfer_callbacks_abort_the_fetch_after_the_deadline() {
        let tmp = tempfile::tempdir().unwrap();
        let head = remote_repo(&tmp.path().join("remote"));
        let url = format!("file://{}", tmp.path().join("remote").display());
        let cache = store::open_or_create(&tmp.path().join("cache"), &url).unwrap();

        let passed = job(url.clone(), Instant::now());
        let prepared = prepare(&passed).unwrap();
        let error = fetch(
            &cache,
            &passed,
            &prepared,
            &["+refs/heads/main:refs/heads/main"],
            0,
        )
        .err();
        assert!(matches!(
            error,
            Some(Failure::Fatal(GitError::Timeout { .. }))
        ));
        assert!(
            !has_commit(&cache, head).ok().unwrap(),
            "the aborted transfer left no commit"
        );

        let in_time = job(url, Instant::now() + Duration::from_secs(30));
        assert_eq!(sync(&cache, &in_time, &prepared).ok(), Some(head));
        assert!(has_commit(&cache, head).ok().unwrap());
    }

    #[test]
    fn a_passed_deadline_returns_before_touching_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let error =
            fetch_blocking(&dir, &job("file:///nowhere".into(), Instant::now())).unwrap_err();
        assert!(matches!(error, GitError::Timeout { .. }), "{error:?}");
        assert!(!dir.exists());
    }

    #[test]
    fn plain_http_tokens_only_to_loopback() {
        assert!(is_loopback_http("http://127.0.0.1:8080/r.git"));
        assert!(is_loopback_http("http://u@localhost/r.git"));
        assert!(is_loopback_http("http://[::1]:80/r.git"));
        assert!(!is_loopback_http("http://example.com/r.git"));
        assert!(!is_loopback_http("http://10.0.0.1/r.git"));
    }
}

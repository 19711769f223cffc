//! The git fetching layer against real repositories made here: a local "remote" served as
//! file:// and, for shallow fetches, token auth and SHA wants, through git's smart-HTTP protocol
//! (`git http-backend` behind a tiny loopback HTTP server). Nothing leaves the machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use git2::{Oid, Repository};
use marketplace_operator::api::catalog_source::GitRef;
use marketplace_operator::catalog::git::{
    FetchOutcome, FetchRequest, GitCache, GitCredentials, GitError,
};

use support::{GitHttpServer, StallServer, Work};

fn branch(name: &str) -> GitRef {
    GitRef {
        branch: Some(name.into()),
        tag: None,
        commit: None,
    }
}

fn tag(name: &str) -> GitRef {
    GitRef {
        branch: None,
        tag: Some(name.into()),
        commit: None,
    }
}

fn commit(sha: &str) -> GitRef {
    GitRef {
        branch: None,
        tag: None,
        commit: Some(sha.into()),
    }
}

fn request(url: &str, git_ref: GitRef) -> FetchRequest {
    let mut request = FetchRequest::new("marketplace/catalog", url, git_ref);
    request.timeout = Duration::from_secs(30);
    request
}

fn oid(sha: &str) -> Oid {
    Oid::from_str(sha).unwrap()
}

/// A catalog with files the reader must skip: other folders and non-YAML files.
fn seed_catalog(work: &Work) -> String {
    work.write("catalog/listings/crm.yaml", "kind: Listing\nname: crm\n");
    work.write("catalog/wizards/setup.yml", "kind: WizardConfig\n");
    work.write("catalog/README.md", "# not a catalog file\n");
    work.write("other/ignored.yaml", "kind: Listing\nname: elsewhere\n");
    work.write("top.yaml", "kind: Listing\nname: top\n");
    work.commit("seed catalog")
}

fn paths(files: &[marketplace_operator::catalog::SourceFile]) -> Vec<String> {
    let mut paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    paths.sort();
    paths
}

/// Everything under the cache repository's objects/ and its FETCH_HEAD, with modification times:
/// identical snapshots mean no fetch wrote anything.
fn snapshot(dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, SystemTime)>) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push((path.clone(), entry.metadata().unwrap().modified().unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("objects"), &mut out);
    let fetch_head = dir.join("FETCH_HEAD");
    out.push((
        fetch_head.clone(),
        std::fs::metadata(&fetch_head).unwrap().modified().unwrap(),
    ));
    out.sort();
    out
}

#[tokio::test]
async fn branch_fetch_reads_the_folder_then_skips_unchanged_then_follows_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("remote"));
    let first = seed_catalog(&work);
    let cache = GitCache::new(tmp.path().join("cache"));

    let (outcome, revision) = cache
        .fetch(request(&work.file_url(), branch("main")))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&first)
        }
    );
    assert_eq!(revision.display, format!("main@sha1:{first}"));
    let files = cache
        .files("marketplace/catalog", oid(&first), "catalog")
        .await
        .unwrap();
    assert_eq!(
        paths(&files),
        ["catalog/listings/crm.yaml", "catalog/wizards/setup.yml"]
    );
    assert_eq!(
        files
            .iter()
            .find(|f| f.path.ends_with("crm.yaml"))
            .unwrap()
            .contents,
        b"kind: Listing\nname: crm\n"
    );
    let root = cache
        .files("marketplace/catalog", oid(&first), ".")
        .await
        .unwrap();
    assert_eq!(paths(&root).len(), 4, "{:?}", paths(&root));

    // Unchanged: the status revision string is accepted as last_commit, and nothing is written.
    let dir = cache.repo_dir("marketplace/catalog");
    let before = snapshot(&dir);
    std::thread::sleep(Duration::from_millis(20));
    let mut again = request(&work.file_url(), branch("main"));
    again.last_commit = Some(revision.display.clone());
    let (outcome, revision) = cache.fetch(again).await.unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Unchanged {
            commit: oid(&first)
        }
    );
    assert_eq!(revision.display, format!("main@sha1:{first}"));
    assert_eq!(
        snapshot(&dir),
        before,
        "an unchanged remote must not be fetched"
    );

    // A new commit on the branch is fetched.
    work.write(
        "catalog/listings/crm.yaml",
        "kind: Listing\nname: crm\nversion: 2\n",
    );
    work.remove("catalog/wizards/setup.yml");
    let second = work.commit("update crm");
    let mut update = request(&work.file_url(), branch("main"));
    update.last_commit = Some(first.clone());
    let (outcome, revision) = cache.fetch(update).await.unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&second)
        }
    );
    assert_eq!(revision.display, format!("main@sha1:{second}"));
    let files = cache
        .files("marketplace/catalog", oid(&second), "catalog/")
        .await
        .unwrap();
    assert_eq!(paths(&files), ["catalog/listings/crm.yaml"]);
    assert!(String::from_utf8_lossy(&files[0].contents).contains("version: 2"));
    // The old commit stays readable (the reconciler may still be applying it).
    assert_eq!(
        cache
            .files("marketplace/catalog", oid(&first), "catalog")
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn tags_pin_lightweight_and_annotated() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("remote"));
    let first = seed_catalog(&work);
    work.git(&["tag", "v1.0.0"]);
    work.write("catalog/listings/new.yaml", "kind: Listing\nname: new\n");
    let second = work.commit("second");
    work.git(&["tag", "-a", "v2.0.0", "-m", "release 2"]);
    work.write(
        "catalog/listings/later.yaml",
        "kind: Listing\nname: later\n",
    );
    work.commit("after the tags");
    let cache = GitCache::new(tmp.path().join("cache"));

    let (outcome, revision) = cache
        .fetch(request(&work.file_url(), tag("v1.0.0")))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&first)
        }
    );
    assert_eq!(revision.display, format!("v1.0.0@sha1:{first}"));

    let (outcome, revision) = cache
        .fetch(request(&work.file_url(), tag("v2.0.0")))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&second)
        },
        "annotated tags are peeled to their commit"
    );
    assert_eq!(revision.display, format!("v2.0.0@sha1:{second}"));
    let files = cache
        .files("marketplace/catalog", oid(&second), "catalog")
        .await
        .unwrap();
    assert_eq!(
        paths(&files),
        [
            "catalog/listings/crm.yaml",
            "catalog/listings/new.yaml",
            "catalog/wizards/setup.yml"
        ]
    );

    let mut again = request(&work.file_url(), tag("v2.0.0"));
    again.last_commit = Some(revision.display);
    assert_eq!(
        cache.fetch(again).await.unwrap().0,
        FetchOutcome::Unchanged {
            commit: oid(&second)
        }
    );
}

#[tokio::test]
async fn commit_pin_fetches_a_commit_that_is_no_branch_head() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("remote"));
    seed_catalog(&work);
    work.write(
        "catalog/listings/middle.yaml",
        "kind: Listing\nname: middle\n",
    );
    let middle = work.commit("middle");
    work.write("catalog/listings/head.yaml", "kind: Listing\nname: head\n");
    work.commit("head");
    let cache = GitCache::new(tmp.path().join("cache"));

    let (outcome, revision) = cache
        .fetch(request(&work.file_url(), commit(&middle)))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&middle)
        }
    );
    assert_eq!(revision.display, format!("sha1:{middle}"));
    let files = cache
        .files("marketplace/catalog", oid(&middle), "catalog/listings")
        .await
        .unwrap();
    assert_eq!(
        paths(&files),
        ["catalog/listings/crm.yaml", "catalog/listings/middle.yaml"]
    );

    let dir = cache.repo_dir("marketplace/catalog");
    let before = snapshot(&dir);
    let mut again = request(&work.file_url(), commit(&middle));
    again.last_commit = Some(middle.clone());
    assert_eq!(
        cache.fetch(again).await.unwrap().0,
        FetchOutcome::Unchanged {
            commit: oid(&middle)
        }
    );
    assert_eq!(snapshot(&dir), before);
}

#[tokio::test]
async fn missing_branch_tag_and_commit_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("remote"));
    seed_catalog(&work);
    let cache = GitCache::new(tmp.path().join("cache"));
    let url = work.file_url();

    let error = cache
        .fetch(request(&url, branch("nope")))
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::RefNotFound { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("catalog source marketplace/catalog: branch nope not found in {url}")
    );

    let error = cache.fetch(request(&url, tag("v9"))).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("catalog source marketplace/catalog: tag v9 not found in {url}")
    );

    let missing = "0123456789abcdef0123456789abcdef01234567";
    let error = cache
        .fetch(request(&url, commit(missing)))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("catalog source marketplace/catalog: commit {missing} not found in {url}")
    );

    let error = cache
        .fetch(request(&url, commit("abc123")))
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::InvalidRef { .. }), "{error:?}");

    let error = cache
        .fetch(request(
            &format!("file://{}", tmp.path().join("absent").display()),
            branch("main"),
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::Fetch { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("cannot fetch branch main from file://"),
        "{error}"
    );

    let error = cache
        .files("marketplace/catalog", oid(missing), "catalog")
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::NotCached { .. }), "{error:?}");
}

#[tokio::test]
async fn zero_timeout_fails_fast_with_a_timeout_error() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("remote"));
    seed_catalog(&work);
    let cache = GitCache::new(tmp.path().join("cache"));
    let mut zero = request(&work.file_url(), branch("main"));
    zero.timeout = Duration::ZERO;
    let started = Instant::now();
    let error = cache.fetch(zero).await.unwrap_err();
    assert!(matches!(error, GitError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        error
            .to_string()
            .contains("fetching branch main from file://"),
        "{error}"
    );
    // The cache is still usable afterwards.
    cache
        .fetch(request(&work.file_url(), branch("main")))
        .await
        .unwrap();
}

/// A server that accepts and never answers: libgit2 blocks in a read no callback interrupts, so
/// only the async timeout can return to the caller, and the source stays locked until the
/// blocked thread is released.
#[tokio::test]
async fn a_stalled_server_times_out_and_keeps_the_source_locked_until_released() {
    let tmp = tempfile::tempdir().unwrap();
    let stall = StallServer::start(Duration::from_millis(1500));
    let cache = GitCache::new(tmp.path().join("cache"));
    let mut stalled = request(&stall.url(), branch("main"));
    stalled.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let error = cache.fetch(stalled).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, GitError::Timeout { .. }), "{error:?}");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1200),
        "{elapsed:?}"
    );
    assert!(
        error.to_string().contains("timed out after 300ms"),
        "{error}"
    );

    let mut next = request(&stall.url(), branch("main"));
    next.timeout = Duration::from_millis(100);
    let error = cache.fetch(next).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("a previous fetch of this source was still running"),
        "{error}"
    );

    // Another source is not blocked meanwhile.
    let work = Work::init(&tmp.path().join("remote"));
    seed_catalog(&work);
    let mut other = request(&work.file_url(), branch("main"));
    other.source_key = "marketplace/other".into();
    other.timeout = Duration::from_millis(1000);
    cache.fetch(other).await.unwrap();

    // Once the server lets go, the source is usable again (the blocked fetch ended).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut after = request(&work.file_url(), branch("main"));
    after.timeout = Duration::from_secs(5);
    cache.fetch(after).await.unwrap();
}

#[tokio::test]
async fn concurrent_fetches_of_one_source_are_serialised_and_all_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("remote"));
    let head = seed_catalog(&work);
    let cache = GitCache::new(tmp.path().join("cache"));
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            // A separate GitCache value on the same root shares the locks.
            let cache = if i % 2 == 0 {
                cache.clone()
            } else {
                GitCache::new(tmp.path().join("cache"))
            };
            let request = request(&work.file_url(), branch("main"));
            tokio::spawn(async move { cache.fetch(request).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().0.commit(), oid(&head));
    }
}

#[tokio::test]
async fn a_damaged_cache_is_recreated_and_a_new_url_starts_a_new_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("remote"));
    let head = seed_catalog(&work);
    let cache = GitCache::new(tmp.path().join("cache"));
    cache
        .fetch(request(&work.file_url(), branch("main")))
        .await
        .unwrap();
    let dir = cache.repo_dir("marketplace/catalog");
    std::fs::remove_file(dir.join("HEAD")).unwrap();
    std::fs::remove_dir_all(dir.join("objects")).unwrap();
    assert!(Repository::open_bare(&dir).is_err());
    let mut again = request(&work.file_url(), branch("main"));
    again.last_commit = Some(head.clone());
    assert_eq!(
        cache.fetch(again).await.unwrap().0,
        FetchOutcome::Unchanged { commit: oid(&head) }
    );

    // Another repository at a new URL: the cache starts over, nothing of the old one is left.
    let other = Work::init(&tmp.path().join("other"));
    other.write(
        "catalog/listings/other.yaml",
        "kind: Listing\nname: other\n",
    );
    let other_head = seed_catalog(&other);
    assert_ne!(other_head, head);
    let (outcome, _) = cache
        .fetch(request(&other.file_url(), branch("main")))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&other_head)
        }
    );
    assert!(
        Repository::open_bare(&dir)
            .unwrap()
            .find_commit(oid(&head))
            .is_err()
    );

    cache.remove("marketplace/catalog").await.unwrap();
    assert!(!dir.exists());
}

#[tokio::test]
async fn ssh_is_refused_without_known_hosts_before_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = GitCache::new(tmp.path().join("cache"));
    // Port 9 (discard) on loopback: never contacted, the refusal happens first.
    let url = "ssh://git@127.0.0.1:9/catalog.git";
    let mut ssh = request(url, branch("main"));
    ssh.credentials = GitCredentials::Ssh {
        private_key: "PRIVATE KEY".into(),
        passphrase: None,
        known_hosts: None,
    };
    let error = cache.fetch(ssh).await.unwrap_err();
    assert!(matches!(error, GitError::Credentials { .. }), "{error:?}");
    assert!(error.to_string().contains("known_hosts"), "{error}");
    assert!(!error.to_string().contains("PRIVATE KEY"));

    let error = cache.fetch(request(url, branch("main"))).await.unwrap_err();
    assert!(
        error.to_string().contains("ssh URLs need a secretRef"),
        "{error}"
    );

    let mut token_over_ssh = request(url, branch("main"));
    token_over_ssh.credentials = GitCredentials::Token {
        username: None,
        token: "tok-123456".into(),
    };
    assert!(matches!(
        cache.fetch(token_over_ssh).await.unwrap_err(),
        GitError::Credentials { .. }
    ));
}

#[tokio::test]
async fn http_fetches_are_shallow_skip_unchanged_heads_and_stay_shallow_across_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("repos/catalog"));
    let first = seed_catalog(&work);
    work.write(
        "catalog/listings/crm.yaml",
        "kind: Listing\nname: crm\nversion: 2\n",
    );
    let second = work.commit("second");
    let server = GitHttpServer::start(&tmp.path().join("repos"), None);
    let url = server.url("catalog");
    let cache = GitCache::new(tmp.path().join("cache"));
    let dir = cache.repo_dir("marketplace/catalog");

    let (outcome, revision) = cache.fetch(request(&url, branch("main"))).await.unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&second)
        }
    );
    let repo = Repository::open_bare(&dir).unwrap();
    assert!(repo.is_shallow());
    assert!(
        repo.find_commit(oid(&first)).is_err(),
        "depth 1: the parent is not fetched"
    );
    // One ref listing, reused for the fetch; a shallow negotiation takes two upload-pack rounds.
    let requests = server.take_requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("GET /catalog/info/refs"))
            .count(),
        1,
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r == "POST /catalog/git-upload-pack"),
        "{requests:?}"
    );

    let mut again = request(&url, branch("main"));
    again.last_commit = Some(revision.display);
    assert_eq!(
        cache.fetch(again).await.unwrap().0,
        FetchOutcome::Unchanged {
            commit: oid(&second)
        }
    );
    assert_eq!(
        server.take_requests(),
        ["GET /catalog/info/refs?service=git-upload-pack"],
        "only the ref listing"
    );

    work.write(
        "catalog/listings/crm.yaml",
        "kind: Listing\nname: crm\nversion: 3\n",
    );
    let third = work.commit("third");
    let mut update = request(&url, branch("main"));
    update.last_commit = Some(second.clone());
    assert_eq!(
        cache.fetch(update).await.unwrap().0,
        FetchOutcome::Fetched {
            commit: oid(&third)
        }
    );
    let repo = Repository::open_bare(&dir).unwrap();
    assert!(repo.is_shallow());
    assert!(repo.find_commit(oid(&first)).is_err());
    let files = cache
        .files("marketplace/catalog", oid(&third), "catalog/listings")
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&files[0].contents).contains("version: 3"));

    // An annotated tag, shallow too.
    work.git(&["tag", "-a", "v3", "-m", "three", &second]);
    let (outcome, revision) = cache.fetch(request(&url, tag("v3"))).await.unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&second)
        }
    );
    assert_eq!(revision.display, format!("v3@sha1:{second}"));
}

#[tokio::test]
async fn http_commit_pins_use_sha_wants_or_fall_back_to_a_full_fetch() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("repos/catalog"));
    let first = seed_catalog(&work);
    work.write("catalog/listings/b.yaml", "kind: Listing\nname: b\n");
    let middle = work.commit("middle");
    work.write("catalog/listings/c.yaml", "kind: Listing\nname: c\n");
    work.commit("head");
    let server = GitHttpServer::start(&tmp.path().join("repos"), None);
    let url = server.url("catalog");

    // git's default: no SHA wants, so the pin falls back to fetching all branches and tags.
    let cache = GitCache::new(tmp.path().join("cache-a"));
    let (outcome, _) = cache.fetch(request(&url, commit(&middle))).await.unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&middle)
        }
    );
    let posts = server
        .take_requests()
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!(
        posts, 1,
        "the SHA want is refused before any upload-pack request, then one full fetch"
    );
    assert!(
        Repository::open_bare(cache.repo_dir("marketplace/catalog"))
            .unwrap()
            .find_commit(oid(&first))
            .is_ok()
    );

    // With SHA wants allowed, one shallow fetch of just that commit.
    work.git(&["config", "uploadpack.allowReachableSHA1InWant", "true"]);
    let cache = GitCache::new(tmp.path().join("cache-b"));
    let (outcome, revision) = cache.fetch(request(&url, commit(&middle))).await.unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            commit: oid(&middle)
        }
    );
    assert_eq!(revision.display, format!("sha1:{middle}"));
    let repo = Repository::open_bare(cache.repo_dir("marketplace/catalog")).unwrap();
    assert!(repo.is_shallow());
    assert!(repo.find_commit(oid(&first)).is_err());
    assert_eq!(
        cache
            .files("marketplace/catalog", oid(&middle), "catalog/listings")
            .await
            .unwrap()
            .len(),
        2
    );

    let missing = "0123456789abcdef0123456789abcdef01234567";
    let error = cache
        .fetch(request(&url, commit(missing)))
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::RefNotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn http_token_auth_reports_missing_and_rejected_tokens_without_leaking_them() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("repos/catalog"));
    let head = seed_catalog(&work);
    let server = GitHttpServer::start(&tmp.path().join("repos"), Some(("git", "s3cret-token")));
    let url = server.url("catalog");
    let cache = GitCache::new(tmp.path().join("cache"));

    let error = cache
        .fetch(request(&url, branch("main")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitError::Authentication { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("authentication failed for"),
        "{error}"
    );
    assert!(error.to_string().contains("no secretRef"), "{error}");

    let mut wrong = request(&url, branch("main"));
    wrong.credentials = GitCredentials::Token {
        username: None,
        token: "wrong-token-value".into(),
    };
    let error = cache.fetch(wrong).await.unwrap_err();
    assert!(
        matches!(error, GitError::Authentication { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("secret key `token`"), "{error}");
    assert!(!format!("{error} {error:?}").contains("wrong-token-value"));

    // A token in the URL itself is redacted in messages too.
    let authority = url.trim_start_matches("http://");
    let in_url = format!("http://git:url-token-value@{authority}");
    let error = cache
        .fetch(request(&in_url, branch("nope")))
        .await
        .unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains("url-token-value"),
        "{error}"
    );
    assert!(
        error.to_string().contains("http://***@127.0.0.1"),
        "{error}"
    );

    let mut right = request(&url, branch("main"));
    right.credentials = GitCredentials::Token {
        username: None,
        token: "s3cret-token".into(),
    };
    assert_eq!(
        cache.fetch(right).await.unwrap().0,
        FetchOutcome::Fetched { commit: oid(&head) }
    );
}

/// Prints first fetch / unchanged check / update timings on a small repository (run with
/// `--nocapture` to see them); asserts only generous bounds.
#[tokio::test]
async fn timings_on_a_small_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let work = Work::init(&tmp.path().join("repos/catalog"));
    for i in 0..40 {
        work.write(
            &format!("catalog/listings/l{i}.yaml"),
            &format!("kind: Listing\nname: l{i}\n"),
        );
    }
    let head = work.commit("forty listings");
    let server = GitHttpServer::start(&tmp.path().join("repos"), None);
    for (transport, url) in [("file", work.file_url()), ("http", server.url("catalog"))] {
        let cache = GitCache::new(tmp.path().join(format!("cache-{transport}")));
        let started = Instant::now();
        cache.fetch(request(&url, branch("main"))).await.unwrap();
        let first = started.elapsed();
        let mut again = request(&url, branch("main"));
        again.last_commit = Some(head.clone());
        let started = Instant::now();
        cache.fetch(again).await.unwrap();
        let unchanged = started.elapsed();
        work.write(
            &format!("catalog/listings/{transport}.yaml"),
            "kind: Listing\n",
        );
        let next = work.commit(transport);
        let mut update = request(&url, branch("main"));
        update.last_commit = Some(head.clone());
        let started = Instant::now();
        assert_eq!(
            cache.fetch(update).await.unwrap().0,
            FetchOutcome::Fetched { commit: oid(&next) }
        );
        let updated = started.elapsed();
        eprintln!(
            "{transport}: first fetch {first:?}, unchanged check {unchanged:?}, update {updated:?}"
        );
        assert!(
            first < Duration::from_secs(10)
                && unchanged < Duration::from_secs(10)
                && updated < Duration::from_secs(10)
        );
    }
}

mod support {
    //! Test repositories (made with the `git` CLI, isolated from any user config) and loopback
    //! HTTP servers.

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use base64::Engine as _;

    fn git_command(dir: &Path) -> Command {
        let mut command = Command::new("git");
        command
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com");
        command
    }

    /// A non-bare repository playing the remote.
    pub struct Work {
        dir: PathBuf,
    }

    impl Work {
        pub fn init(dir: &Path) -> Self {
            std::fs::create_dir_all(dir).unwrap();
            let work = Self {
                dir: dir.to_owned(),
            };
            work.git(&["init", "-q", "-b", "main"]);
            work
        }

        pub fn file_url(&self) -> String {
            format!("file://{}", self.dir.display())
        }

        pub fn write(&self, path: &str, contents: &str) {
            let path = self.dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }

        pub fn remove(&self, path: &str) {
            std::fs::remove_file(self.dir.join(path)).unwrap();
        }

        /// Commits everything; returns the new commit's SHA.
        pub fn commit(&self, message: &str) -> String {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-q", "-m", message]);
            self.git(&["rev-parse", "HEAD"])
        }

        pub fn git(&self, args: &[&str]) -> String {
            let output = git_command(&self.dir).args(args).output().unwrap();
            assert!(
                output.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        }
    }

    /// Accepts connections on a non-blocking listener until dropped.
    struct Acceptor {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Acceptor {
        fn start(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let handle = Arc::new(handle);
            let thread = {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                stream.set_nonblocking(false).unwrap();
                                let handle = Arc::clone(&handle);
                                std::thread::spawn(move || handle(stream));
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(2)),
                        }
                    }
                })
            };
            Self {
                addr,
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for Acceptor {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Accepts connections and holds them silently for a while, then closes them.
    pub struct StallServer {
        acceptor: Acceptor,
    }

    impl StallServer {
        pub fn start(hold: Duration) -> Self {
            Self {
                acceptor: Acceptor::start(move |stream| {
                    std::thread::sleep(hold);
                    drop(stream);
                }),
            }
        }

        pub fn url(&self) -> String {
            format!("http://{}/catalog", self.acceptor.addr)
        }
    }

    /// git's smart-HTTP protocol: `git http-backend` as CGI behind a minimal HTTP/1.1 server
    /// (one request per connection), optionally demanding basic auth, logging request lines.
    pub struct GitHttpServer {
        acceptor: Acceptor,
        requests: Arc<Mutex<Vec<String>>>,
    }

    impl GitHttpServer {
        pub fn start(project_root: &Path, basic_auth: Option<(&str, &str)>) -> Self {
            let requests = Arc::new(Mutex::new(Vec::new()));
            let expected = basic_auth.map(|(user, password)| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                )
            });
            let (root, log) = (project_root.to_owned(), Arc::clone(&requests));
            let acceptor =
                Acceptor::start(move |stream| serve(stream, &root, expected.as_deref(), &log));
            Self { acceptor, requests }
        }

        pub fn url(&self, repo: &str) -> String {
            format!("http://{}/{repo}", self.acceptor.addr)
        }

        /// Request lines (method and target) of authorised requests since the last call.
        pub fn take_requests(&self) -> Vec<String> {
            std::mem::take(&mut *self.requests.lock().unwrap())
        }
    }

    fn serve(
        stream: TcpStream,
        root: &Path,
        expected_auth: Option<&str>,
        log: &Mutex<Vec<String>>,
    ) {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let body = read_body(&mut reader, &headers);
        if let Some(expected) = expected_auth
            && headers.get("authorization").map(String::as_str) != Some(expected)
        {
            let _ = writer.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        log.lock().unwrap().push(format!("{method} {target}"));
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut cgi = Command::new("git")
            .arg("http-backend")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env(
                "CONTENT_TYPE",
                headers.get("content-type").cloned().unwrap_or_default(),
            )
            .env("CONTENT_LENGTH", body.len().to_string())
            .env(
                "HTTP_CONTENT_ENCODING",
                headers.get("content-encoding").cloned().unwrap_or_default(),
            )
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = cgi.stdin.take().unwrap();
        let writer_thread = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let output = cgi.wait_with_output().unwrap();
        let _ = writer_thread.join();
        let out = output.stdout;
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4));
        let split = split.or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
        let (head_len, sep) = split.unwrap_or((0, 0));
        let head = String::from_utf8_lossy(&out[..head_len]).into_owned();
        let body = &out[head_len + sep..];
        let mut status = "200 OK".to_owned();
        let mut response = Vec::new();
        for header in head.lines().filter(|l| !l.is_empty()) {
            match header.strip_prefix("Status:") {
                Some(value) => status = value.trim().to_owned(),
                None => response.extend_from_slice(format!("{header}\r\n").as_bytes()),
            }
        }
        let mut message = format!("HTTP/1.1 {status}\r\n").into_bytes();
        message.extend_from_slice(&response);
        message.extend_from_slice(
            format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        message.extend_from_slice(body);
        let _ = writer.write_all(&message);
    }

    fn read_body(reader: &mut impl BufRead, headers: &HashMap<String, String>) -> Vec<u8> {
        let mut body = Vec::new();
        if headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                    .unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = headers
            .get("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            body.resize(length, 0);
            reader.read_exact(&mut body).unwrap();
        }
        body
    }
}

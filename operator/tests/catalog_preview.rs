//! `marketplace catalog preview` as a pull request's CI runs it: the real binary against a git
//! repository made here with two commits (the repository's own catalog, then a change that
//! raises a price, releases a version, archives one listing, deletes another and adds one).
//! The output folder must hold static pages (the catalog's bundle's too) whose links all resolve
//! to its own files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from)
        .expect("read dir")
        .map(Result::unwrap)
    {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn commit(repo: &git2::Repository, message: &str) {
    let mut index = repo.index().expect("index");
    index
        .add_all(["catalog"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index
        .update_all(["catalog"], None)
        .expect("stage deletions");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let signature = git2::Signature::now("test", "test@example.com").expect("signature");
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )
    .expect("commit");
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

/// The repository's catalog committed, then the pull request's change committed on top.
fn repository_with_a_change() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = git2::Repository::init(dir.path()).expect("git init");
    let catalog = dir.path().join("catalog");
    copy_tree(&repo_root().join("catalog"), &catalog);
    commit(&repo, "catalog");
    let listings = catalog.join("listings");
    let route = listings.join("route-optimization.yaml");
    edit(&route, "amount: \"12.00\"", "amount: \"15.00\"");
    edit(
        &route,
        "  releases:\n",
        "  releases:\n    - version: 2.2.0\n      date: \"2026-11-20\"\n      summary: Depot breaks\n",
    );
    edit(
        &listings.join("gigsafe.yaml"),
        "lifecycle: Published",
        "lifecycle: Archived",
    );
    std::fs::remove_file(listings.join("electronic-visit-verification.yaml")).expect("delete");
    let vault = std::fs::read_to_string(listings.join("storage-pack.yaml"))
        .expect("read")
        .replace("name: storage-pack", "name: storage-vault")
        .replace("displayName: Storage Pack", "displayName: Storage Vault")
        .replace("[extra_storage]", "[vault_storage]")
        .replace("STORAGE-100GB", "VAULT-100GB")
        .replace(
            "    Every base plan",
            "    <script>alert('preview')</script>\n\n    Every base plan",
        );
    std::fs::write(listings.join("storage-vault.yaml"), vault).expect("write");
    commit(&repo, "a pull request's change");
    dir
}

fn marketplace(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_marketplace"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("marketplace runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Every `href="..."` and `src="..."` of a page that is relative (not https, and not a path
/// on the product's host that the catalog's own Markdown may link to).
fn local_links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        for piece in html.split(attribute).skip(1) {
            let target = piece.split('"').next().unwrap_or_default();
            if !target.starts_with("https://") && !target.starts_with(['#', '/']) {
                out.push(target.split('#').next().unwrap_or_default().to_owned());
            }
        }
    }
    out
}

#[test]
fn a_pull_request_previews_its_storefront_and_its_changes() {
    let repo = repository_with_a_change();
    let (code, stdout, stderr) = marketplace(
        repo.path(),
        &[
            "catalog", "preview", "catalog", "--out", "preview", "--base", "HEAD~1",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1 added, 2 changed, 2 retired"), "{stdout}");
    let out = repo.path().join("preview");

    let changes = read(&out, "changes.html");
    let added = changes
        .split("id=\"added\"")
        .nth(1)
        .and_then(|s| s.split("id=\"changed\"").next())
        .expect("added section");
    assert!(
        added.contains("href=\"listing-storage-vault.html\">Storage Vault</a>"),
        "{added}"
    );
    let route = changes
        .split("id=\"changed-route-optimization\"")
        .nth(1)
        .and_then(|s| s.split("</article>").next())
        .expect("route optimization's changes");
    assert!(
        route.contains("<th scope=\"row\">version</th><td>2.1.0</td><td>2.2.0</td>"),
        "{route}"
    );
    assert!(route.contains("price of plan standard"), "{route}");
    assert!(
        route.contains("$12.00") && route.contains("$15.00"),
        "{route}"
    );
    let retired = changes.split("id=\"retired\"").nth(1).expect("retired");
    assert!(
        retired.contains("<code>gigsafe</code> · archived"),
        "{retired}"
    );
    assert!(
        retired.contains("<code>electronic-visit-verification</code> · deleted"),
        "{retired}"
    );

    let index = read(&out, "index.html");
    assert!(
        index.contains("href=\"listing-route-optimization.html\""),
        "{index}"
    );
    assert!(
        index.contains("href=\"listing-storage-vault.html\""),
        "{index}"
    );
    assert!(
        !index.contains("listing-gigsafe.html"),
        "archived: not in the storefront"
    );
    // The catalog's bundle, on the index and on its own page, with its members and prices.
    assert!(
        index.contains("href=\"bundle-records-suite.html\""),
        "{index}"
    );
    let suite = read(&out, "bundle-records-suite.html");
    assert!(
        suite.contains("<h1>Field operations suite</h1>")
            && suite.contains("href=\"listing-mrn.html\"")
            && suite.contains("What the bundle includes"),
        "{suite}"
    );
    let vault = read(&out, "listing-storage-vault.html");
    assert!(
        vault.contains("&lt;script&gt;alert"),
        "markdown's HTML shows as text"
    );

    let css = read(&out, "site.css");
    let mut pages = 0;
    for entry in std::fs::read_dir(&out).expect("out").map(Result::unwrap) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".html") {
            continue;
        }
        pages += 1;
        let html = read(&out, &name);
        assert!(
            !html.contains("<script"),
            "{name}: a preview runs no script"
        );
        assert!(
            html.contains("<link rel=\"stylesheet\" href=\"site.css\">"),
            "{name}"
        );
        assert!(html.len() < 100_000, "{name}: {} bytes", html.len());
        assert!(
            !html.contains("href=\"/t/") && !html.contains("/web/assets/"),
            "{name}: a server path in a static page"
        );
        for link in local_links(&html) {
            assert!(
                out.join(&link).is_file(),
                "{name} links to {link:?}, which the preview does not hold"
            );
        }
    }
    // The catalog's listings minus the deleted one plus the new one, its bundle, index and
    // changes.
    assert_eq!(pages, 18 + 1 + 2);
    assert!(css.contains("--brand"), "the embedded stylesheet");
}

#[test]
fn a_broken_catalog_is_refused_naming_the_file_and_field() {
    let repo = repository_with_a_change();
    edit(
        &repo.path().join("catalog/listings/storage-vault.yaml"),
        "amount: \"10.00\"",
        "amount: \"ten\"",
    );
    let (code, stdout, stderr) = marketplace(
        repo.path(),
        &["catalog", "preview", "--out", "preview", "--base", "HEAD"],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("catalog/listings/storage-vault.yaml:")
            && stderr.contains("spec.plans[0].pricing.amount"),
        "{stderr}"
    );
    assert!(!repo.path().join("preview").exists(), "nothing written");
}

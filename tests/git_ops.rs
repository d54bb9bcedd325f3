//! Git operations against a real smart-HTTP server on loopback: clone through the cached
//! mirror with token auth into a bare session git directory and a `.git`-free work tree,
//! repeat checkouts, diffs and commits built from content in memory, pushes to the clone URL
//! only, credentials for its origin only, and reverts that never follow links.

mod support;

use std::path::{Path, PathBuf};

use patchpilot::agent::git::{
    FileChange, GitAuth, GitError, Publication, RepoCache, Signature, TamperKind, commit_and_push,
    diff, git_dir_for, push_branch, restore_paths,
};
use secrecy::SecretString;
use support::git_http::{
    commit_files, file_at, init_bare_repo, ref_sha, reject_all_pushes, serve_git,
};

const TOKEN: &str = "ghs_TestInstallationToken1234567890";

struct World {
    _dir: tempfile::TempDir,
    server_root: PathBuf,
    cache: RepoCache,
    work: PathBuf,
    bare: PathBuf,
    url: String,
}

impl World {
    /// A server requiring `TOKEN`, one repository `acme/widget.git` and an empty cache.
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let server_root = dir.path().join("server");
        let bare = init_bare_repo(
            &server_root,
            "acme/widget.git",
            &[
                ("README.md", "# widget\n"),
                (
                    "src/lib.rs",
                    "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n",
                ),
                (".gitignore", "target/\n"),
            ],
        );
        let (addr, _handle) = serve_git(server_root.clone(), Some(TOKEN.into())).await;
        World {
            cache: RepoCache::new(dir.path().join("cache")),
            work: dir.path().join("work"),
            url: format!("http://{addr}/acme/widget.git"),
            server_root,
            bare,
            _dir: dir,
        }
    }

    fn work_dir(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    fn git_dir(&self, name: &str) -> PathBuf {
        git_dir_for(&self.work_dir(name))
    }

    /// Commits `changes` on `base` in session `name`'s git directory and pushes `branch`.
    async fn publish(
        &self,
        name: &str,
        base: &str,
        changes: Vec<FileChange>,
        branch: &str,
        force: bool,
    ) -> Result<String, GitError> {
        let (git_dir, base, url, branch) = (
            self.git_dir(name),
            base.to_owned(),
            self.url.clone(),
            branch.to_owned(),
        );
        blocking(move || {
            let author = bot();
            let publication = Publication {
                clone_url: &url,
                branch: &branch,
                message: "Fix add\n\nFixes #7",
                author: &author,
                force,
            };
            commit_and_push(&git_dir, &base, &changes, &publication, &auth())
        })
        .await
    }
}

fn change(path: &str, content: &str) -> FileChange {
    FileChange {
        path: path.into(),
        content: content.as_bytes().to_vec(),
    }
}

const FIXED_LIB: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";

fn auth() -> GitAuth {
    GitAuth::with_token(SecretString::from(TOKEN))
}

fn bot() -> Signature {
    Signature {
        name: "patchpilot[bot]".into(),
        email: "123+patchpilot[bot]@users.noreply.github.com".into(),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            hits.push(path);
        }
    }
    hits
}

async fn checkout(world: &World, name: &str, auth: GitAuth) -> Result<String, GitError> {
    let (cache, url, git_dir, work) = (
        world.cache.clone(),
        world.url.clone(),
        world.git_dir(name),
        world.work_dir(name),
    );
    blocking(move || {
        cache
            .checkout(&url, "main", &auth, &git_dir, &work)
            .map(|c| c.base_sha)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn clones_over_http_with_the_token_and_never_stores_it() {
    let world = World::new().await;
    let base_sha = checkout(&world, "one", auth()).await.unwrap();

    assert_eq!(Some(base_sha), ref_sha(&world.bare, "refs/heads/main"));
    let work = world.work_dir("one");
    let lib = std::fs::read_to_string(work.join("src/lib.rs")).unwrap();
    assert!(lib.contains("a - b"));
    // The work tree has no git metadata at all: the git directory is beside it.
    assert!(!work.join(".git").exists());
    let git_dir = world.git_dir("one");
    assert!(!git_dir.starts_with(&work));
    let repo = git2::Repository::open_bare(&git_dir).unwrap();
    assert!(repo.is_bare());
    assert!(
        repo.remotes().unwrap().is_empty(),
        "no remote URL is stored: pushes name the clone URL"
    );
    assert_eq!(repo.head().unwrap().shorthand().ok(), Some("main"));
    assert_eq!(files_containing(&work, TOKEN), Vec::<PathBuf>::new());
    assert_eq!(files_containing(&git_dir, TOKEN), Vec::<PathBuf>::new());
    assert_eq!(
        files_containing(&world.cache.mirror_path(&world.url), TOKEN),
        Vec::<PathBuf>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_wrong_token_is_an_authentication_error() {
    let world = World::new().await;
    let err = checkout(&world, "anon", GitAuth::anonymous())
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("no token"), "{err}");

    let wrong = GitAuth::with_token(SecretString::from("ghs_wrong"));
    let err = checkout(&world, "wrong", wrong).await.unwrap_err();
    assert!(matches!(err, GitError::Auth { .. }), "{err}");
    assert!(!err.to_string().contains("ghs_wrong"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_answers_401_with_a_challenge_without_credentials() {
    let world = World::new().await;
    let url = format!("{}/info/refs?service=git-upload-pack", world.url);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
}

#[tokio::test(flavor = "multi_thread")]
async fn repeat_checkout_reuses_the_mirror_and_fetches_new_commits() {
    let world = World::new().await;
    let first = checkout(&world, "one", auth()).await.unwrap();
    let mirror = world.cache.mirror_path(&world.url);
    let marker = mirror.join("patchpilot-test-marker");
    std::fs::write(&marker, "kept").unwrap();

    let bare = world.bare.clone();
    let second_sha = blocking(move || {
        commit_files(
            &bare,
            "main",
            &[("src/new.rs", "pub fn new() {}\n")],
            "Add new.rs",
        )
    })
    .await;
    let second = checkout(&world, "two", auth()).await.unwrap();

    assert_ne!(first, second);
    assert_eq!(second, second_sha);
    assert!(
        marker.exists(),
        "the mirror was recreated instead of reused"
    );
    assert!(world.work_dir("two").join("src/new.rs").exists());
    assert!(!world.work_dir("one").join("src/new.rs").exists());
    // The second session's git directory is independent and has the whole history.
    let repo = git2::Repository::open_bare(world.git_dir("two")).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.parent(0).unwrap().id().to_string(), first);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_checkouts_of_one_repository_all_succeed() {
    let world = World::new().await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (cache, url, git_dir, work) = (
            world.cache.clone(),
            world.url.clone(),
            world.git_dir(&format!("c{i}")),
            world.work_dir(&format!("c{i}")),
        );
        tasks.push(tokio::task::spawn_blocking(move || {
            cache
                .checkout(&url, "main", &auth(), &git_dir, &work)
                .map(|c| c.base_sha)
        }));
    }
    let expected = ref_sha(&world.bare, "refs/heads/main");
    for task in tasks {
        assert_eq!(task.await.unwrap().ok(), expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_base_branch_is_reported() {
    let world = World::new().await;
    let (cache, url, git_dir, work) = (
        world.cache.clone(),
        world.url.clone(),
        world.git_dir("x"),
        world.work_dir("x"),
    );
    let err = blocking(move || cache.checkout(&url, "no-such-branch", &auth(), &git_dir, &work))
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::BranchNotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_diff_comes_from_the_given_content_not_the_work_tree() {
    let world = World::new().await;
    let base = checkout(&world, "one", auth()).await.unwrap();
    // Whatever a command left in the work tree plays no part.
    let work = world.work_dir("one");
    std::fs::write(work.join("src/lib.rs"), "// rewritten by the repro\n").unwrap();
    let changes = vec![
        change("src/lib.rs", FIXED_LIB),
        change("src/extra.rs", "// new\n"),
    ];
    let (git_dir, b) = (world.git_dir("one"), base.clone());
    let patch = blocking(move || diff(&git_dir, &b, &changes))
        .await
        .unwrap();
    assert!(patch.contains("-    a - b\n+    a + b\n"), "{patch}");
    assert!(patch.contains("+++ b/src/extra.rs\n"), "{patch}");
    assert!(patch.contains("+// new\n"), "{patch}");
    assert!(!patch.contains("rewritten"), "{patch}");
    assert!(!patch.contains("README"), "only the given paths: {patch}");
    let git_dir = world.git_dir("one");
    assert_eq!(
        blocking(move || diff(&git_dir, &base, &[])).await.unwrap(),
        ""
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_only_the_given_content_and_pushes_the_branch() {
    let world = World::new().await;
    let base = checkout(&world, "one", auth()).await.unwrap();
    let work = world.work_dir("one");
    // The work tree holds something else entirely: the commit must not read it.
    std::fs::write(work.join("src/lib.rs"), "HOST CONTENT\n").unwrap();
    std::fs::write(work.join("junk.log"), "left by the repro command").unwrap();

    let sha = world
        .publish(
            "one",
            &base,
            vec![change("src/lib.rs", FIXED_LIB)],
            "patchpilot/issue-7",
            false,
        )
        .await
        .unwrap();

    assert_eq!(
        ref_sha(&world.bare, "refs/heads/patchpilot/issue-7"),
        Some(sha.clone())
    );
    assert_eq!(
        file_at(&world.bare, &sha, "src/lib.rs").as_deref(),
        Some(FIXED_LIB)
    );
    assert_eq!(file_at(&world.bare, &sha, "junk.log"), None);
    assert_eq!(
        file_at(&world.bare, &sha, "README.md").as_deref(),
        Some("# widget\n")
    );
    let repo = git2::Repository::open(&world.bare).unwrap();
    let commit = repo
        .find_commit(git2::Oid::from_str(&sha).unwrap())
        .unwrap();
    assert_eq!(commit.author().name().ok(), Some("patchpilot[bot]"));
    assert_eq!(commit.parent_id(0).unwrap().to_string(), base);
    assert_eq!(commit.message().ok(), Some("Fix add\n\nFixes #7"));
    assert_eq!(
        ref_sha(&world.bare, "refs/heads/main"),
        Some(base),
        "main is untouched"
    );
    assert!(
        work.join("junk.log").exists(),
        "the work tree is left alone"
    );
    assert_eq!(
        files_containing(&world.git_dir("one"), TOKEN),
        Vec::<PathBuf>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_directory_planted_in_the_work_tree_is_never_read() {
    let world = World::new().await;
    let base = checkout(&world, "one", auth()).await.unwrap();
    let work = world.work_dir("one");
    // What a repro would leave: a `.git` whose origin is someone else's server.
    support::git_http::git(&work, &["init", "-q"]);
    support::git_http::git(
        &work,
        &["remote", "add", "origin", "http://127.0.0.1:9/evil.git"],
    );
    let sha = world
        .publish(
            "one",
            &base,
            vec![change("src/lib.rs", FIXED_LIB)],
            "pp/planted",
            false,
        )
        .await
        .unwrap();
    assert_eq!(ref_sha(&world.bare, "refs/heads/pp/planted"), Some(sha));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_to_commit_and_bad_paths_are_errors() {
    let world = World::new().await;
    let base = checkout(&world, "one", auth()).await.unwrap();
    let same = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n";
    let err = world
        .publish(
            "one",
            &base,
            vec![change("src/lib.rs", same)],
            "pp/noop",
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::NothingToCommit), "{err}");
    for bad in ["../outside", ".git/config", "/etc/passwd", "a/.GIT/hooks/x"] {
        let err = world
            .publish("one", &base, vec![change(bad, "x\n")], "pp/bad", false)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::InvalidPath(_)), "{bad}: {err}");
    }
    assert_eq!(ref_sha(&world.bare, "refs/heads/pp/noop"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_the_server_rejects_is_an_error() {
    let world = World::new().await;
    let base = checkout(&world, "one", auth()).await.unwrap();
    reject_all_pushes(&world.bare);
    let err = world
        .publish(
            "one",
            &base,
            vec![change("README.md", "# changed\n")],
            "pp/rejected",
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::PushRejected { .. }), "{err}");
    // The server's per-ref verdict (reported through push_update_reference) is surfaced.
    assert!(err.to_string().contains("hook declined"), "{err}");
    assert_eq!(ref_sha(&world.bare, "refs/heads/pp/rejected"), None);

    // Once the server accepts pushes again, the committed branch can be pushed as it is.
    std::fs::remove_file(world.bare.join("hooks/pre-receive")).unwrap();
    let (git_dir, url) = (world.git_dir("one"), world.url.clone());
    blocking(move || push_branch(&git_dir, &url, "pp/rejected", &auth(), false))
        .await
        .unwrap();
    let head = git2::Repository::open_bare(world.git_dir("one"))
        .unwrap()
        .refname_to_id("refs/heads/pp/rejected")
        .unwrap();
    assert_eq!(
        ref_sha(&world.bare, "refs/heads/pp/rejected"),
        Some(head.to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn non_fast_forward_needs_force() {
    let world = World::new().await;
    // Someone else already pushed to the branch.
    let bare = world.bare.clone();
    let theirs =
        blocking(move || commit_files(&bare, "pp/iter", &[("other.txt", "x\n")], "Other")).await;
    let base = checkout(&world, "one", auth()).await.unwrap();
    let err = world
        .publish(
            "one",
            &base,
            vec![change("README.md", "# ours\n")],
            "pp/iter",
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::PushRejected { .. }), "{err}");
    assert_eq!(ref_sha(&world.bare, "refs/heads/pp/iter"), Some(theirs));

    let ours = world
        .publish(
            "one",
            &base,
            vec![change("README.md", "# ours, again\n")],
            "pp/iter",
            true,
        )
        .await
        .unwrap();
    assert_eq!(ref_sha(&world.bare, "refs/heads/pp/iter"), Some(ours));
    let _ = &world.server_root;
}

#[tokio::test(flavor = "multi_thread")]
async fn git_router_works_when_nested_in_a_larger_app() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("server");
    let bare = init_bare_repo(&root, "acme/nested.git", &[("a.txt", "a\n")]);
    let app = axum::Router::new()
        .route("/api", axum::routing::get(|| async { "api" }))
        .nest("/git", support::git_http::git_router(root, None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let url = format!("http://{addr}/git/acme/nested.git");
    let cache = RepoCache::new(dir.path().join("cache"));
    let work = dir.path().join("work");
    let git_dir = git_dir_for(&work);
    let sha =
        blocking(move || cache.checkout(&url, "main", &GitAuth::anonymous(), &git_dir, &work))
            .await
            .unwrap()
            .base_sha;
    assert_eq!(Some(sha), ref_sha(&bare, "refs/heads/main"));
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_paths_undoes_edits_and_removes_created_files() {
    let world = World::new().await;
    let base = checkout(&world, "one", auth()).await.unwrap();
    let work = world.work_dir("one");
    std::fs::write(work.join("src/lib.rs"), FIXED_LIB).unwrap();
    std::fs::write(work.join("src/new.rs"), "// new\n").unwrap();
    std::fs::write(work.join("keep.txt"), "setup artefact\n").unwrap();
    let (git_dir, w) = (world.git_dir("one"), work.clone());
    blocking(move || {
        restore_paths(
            &git_dir,
            &base,
            &w,
            &["src/lib.rs".into(), "src/new.rs".into()],
        )
    })
    .await
    .unwrap();
    assert!(
        std::fs::read_to_string(work.join("src/lib.rs"))
            .unwrap()
            .contains("a - b")
    );
    assert!(!work.join("src/new.rs").exists());
    assert!(
        work.join("keep.txt").exists(),
        "files not named are left alone"
    );
}

/// A repro swapped an edited path for a link to host files: the revert refuses, and neither
/// writes nor deletes anything through the link.
#[tokio::test(flavor = "multi_thread")]
async fn restore_paths_never_writes_or_deletes_through_links() {
    let world = World::new().await;
    let base = checkout(&world, "one", auth()).await.unwrap();
    let work = world.work_dir("one");
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("lib.rs"), "host file\n").unwrap();
    std::fs::write(host.path().join("new.rs"), "host file\n").unwrap();
    let restore = |paths: Vec<String>| {
        let (git_dir, w, b) = (world.git_dir("one"), work.clone(), base.clone());
        blocking(move || restore_paths(&git_dir, &b, &w, &paths))
    };
    let host_untouched = || {
        for name in ["lib.rs", "new.rs"] {
            assert_eq!(
                std::fs::read_to_string(host.path().join(name)).unwrap(),
                "host file\n"
            );
        }
        assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 2);
    };

    // The directory of the edited files is a link to a host directory.
    std::fs::remove_dir_all(work.join("src")).unwrap();
    std::os::unix::fs::symlink(host.path(), work.join("src")).unwrap();
    let err = restore(vec!["src/lib.rs".into(), "src/new.rs".into()])
        .await
        .unwrap_err();
    let GitError::Tampered(what) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        what.kind,
        TamperKind::LinkOnPath {
            component: "src".into()
        }
    );
    host_untouched();
    let err = restore(vec!["src/new.rs".into()]).await.unwrap_err();
    assert!(matches!(err, GitError::Tampered(_)), "{err}");
    host_untouched();

    // The edited file itself is a link to a host file, or a hard link to one.
    std::fs::remove_file(work.join("src")).unwrap();
    std::fs::create_dir(work.join("src")).unwrap();
    std::os::unix::fs::symlink(host.path().join("lib.rs"), work.join("src/lib.rs")).unwrap();
    let err = restore(vec!["src/lib.rs".into()]).await.unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    host_untouched();
    std::fs::remove_file(work.join("src/lib.rs")).unwrap();
    std::fs::hard_link(host.path().join("lib.rs"), work.join("src/lib.rs")).unwrap();
    let err = restore(vec!["src/lib.rs".into()]).await.unwrap_err();
    assert!(err.to_string().contains("hard-linked"), "{err}");
    host_untouched();
}

/// A server that redirects every request to an attacker's server, which asks for Basic
/// credentials: libgit2 follows the redirect, and the token must not follow it.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_sent_only_to_the_clone_urls_origin() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let attacker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let attacker_addr = attacker.local_addr().unwrap();
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = attacker.accept().await {
            let mut buf = vec![0u8; 16 * 1024];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            sink.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = socket
                .write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let redirect = axum::Router::new().fallback(move |uri: axum::http::Uri| async move {
        let to = format!("http://{attacker_addr}{uri}");
        (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, to)],
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/acme/widget.git", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirect).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(dir.path().join("cache"));
    let work = dir.path().join("work");
    let git_dir = git_dir_for(&work);
    let err = blocking(move || cache.checkout(&url, "main", &auth(), &git_dir, &work))
        .await
        .unwrap_err();
    let requests = seen.lock().unwrap().clone();
    assert!(
        !requests.is_empty(),
        "libgit2 followed the redirect (else this test proves nothing): {err}"
    );
    for request in &requests {
        assert!(
            !request.to_ascii_lowercase().contains("authorization:"),
            "credentials reached another origin: {request}"
        );
    }
    assert!(matches!(err, GitError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("only sent to"), "{err}");
}

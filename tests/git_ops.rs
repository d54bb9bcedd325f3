//! Git operations against a real smart-HTTP server on loopback: clone through the cached
//! mirror with token auth, repeat checkouts, changed files and diffs, commit and push.

mod support;

use std::path::{Path, PathBuf};

use patchpilot::agent::git::{
    GitAuth, GitError, RepoCache, Signature, changed_files, commit_and_push, diff, push_branch,
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
}

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
    let (cache, url, work) = (world.cache.clone(), world.url.clone(), world.work_dir(name));
    blocking(move || {
        cache
            .checkout(&url, "main", &auth, &work)
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
    let repo = git2::Repository::open(&work).unwrap();
    assert!(!repo.is_bare());
    assert_eq!(
        repo.find_remote("origin").unwrap().url().ok(),
        Some(world.url.as_str())
    );
    assert_eq!(repo.head().unwrap().shorthand().ok(), Some("main"));
    let config = std::fs::read_to_string(work.join(".git/config")).unwrap();
    assert!(!config.contains(TOKEN), "{config}");
    assert_eq!(files_containing(&work, TOKEN), Vec::<PathBuf>::new());
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
    // The second work tree is independent and has the whole history of the branch.
    let repo = git2::Repository::open(world.work_dir("two")).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.parent(0).unwrap().id().to_string(), first);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_checkouts_of_one_repository_all_succeed() {
    let world = World::new().await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (cache, url, work) = (
            world.cache.clone(),
            world.url.clone(),
            world.work_dir(&format!("c{i}")),
        );
        tasks.push(tokio::task::spawn_blocking(move || {
            cache
                .checkout(&url, "main", &auth(), &work)
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
    let (cache, url, work) = (world.cache.clone(), world.url.clone(), world.work_dir("x"));
    let err = blocking(move || cache.checkout(&url, "no-such-branch", &auth(), &work))
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::BranchNotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_files_and_diff_see_edits_and_new_files_but_not_ignored_ones() {
    let world = World::new().await;
    checkout(&world, "one", auth()).await.unwrap();
    let work = world.work_dir("one");
    std::fs::write(
        work.join("src/lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
    )
    .unwrap();
    std::fs::write(work.join("src/extra.rs"), "// new\n").unwrap();
    std::fs::create_dir_all(work.join("target/debug")).unwrap();
    std::fs::write(work.join("target/debug/out"), "binary").unwrap();
    std::fs::remove_file(work.join("README.md")).unwrap();

    assert_eq!(
        changed_files(&work).unwrap(),
        vec!["README.md", "src/extra.rs", "src/lib.rs"]
    );
    let patch = diff(&work, &["src/lib.rs".into(), "src/extra.rs".into()]).unwrap();
    assert!(patch.contains("-    a - b\n+    a + b\n"), "{patch}");
    assert!(patch.contains("+++ b/src/extra.rs\n"), "{patch}");
    assert!(patch.contains("+// new\n"), "{patch}");
    assert!(!patch.contains("README"), "only the listed paths: {patch}");
    assert_eq!(diff(&work, &[]).unwrap(), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_only_the_listed_paths_and_pushes_the_branch() {
    let world = World::new().await;
    let base = checkout(&world, "one", auth()).await.unwrap();
    let work = world.work_dir("one");
    std::fs::write(
        work.join("src/lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
    )
    .unwrap();
    std::fs::write(work.join("junk.log"), "left by the repro command").unwrap();

    let w = work.clone();
    let sha = blocking(move || {
        commit_and_push(
            &w,
            &["src/lib.rs".into()],
            "Fix add\n\nFixes #7",
            &bot(),
            "patchpilot/issue-7",
            &auth(),
            false,
        )
    })
    .await
    .unwrap();

    assert_eq!(
        ref_sha(&world.bare, "refs/heads/patchpilot/issue-7"),
        Some(sha.clone())
    );
    assert!(
        file_at(&world.bare, &sha, "src/lib.rs")
            .unwrap()
            .contains("a + b")
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
        "untracked files stay in the work tree"
    );
    assert_eq!(
        files_containing(&work.join(".git"), TOKEN),
        Vec::<PathBuf>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_listed_file_is_committed() {
    let world = World::new().await;
    checkout(&world, "one", auth()).await.unwrap();
    let work = world.work_dir("one");
    std::fs::remove_file(work.join("README.md")).unwrap();
    let w = work.clone();
    let sha = blocking(move || {
        commit_and_push(
            &w,
            &["README.md".into()],
            "Remove README",
            &bot(),
            "pp/del",
            &auth(),
            false,
        )
    })
    .await
    .unwrap();
    assert_eq!(file_at(&world.bare, &sha, "README.md"), None);
    assert!(file_at(&world.bare, &sha, "src/lib.rs").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_to_commit_and_bad_paths_are_errors() {
    let world = World::new().await;
    checkout(&world, "one", auth()).await.unwrap();
    let work = world.work_dir("one");
    let w = work.clone();
    let err = blocking(move || {
        commit_and_push(
            &w,
            &["src/lib.rs".into()],
            "noop",
            &bot(),
            "pp/noop",
            &auth(),
            false,
        )
    })
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::NothingToCommit), "{err}");
    for bad in ["../outside", ".git/config", "/etc/passwd"] {
        let w = work.clone();
        let err = blocking(move || {
            commit_and_push(
                &w,
                &[bad.to_string()],
                "bad",
                &bot(),
                "pp/bad",
                &auth(),
                false,
            )
        })
        .await
        .unwrap_err();
        assert!(matches!(err, GitError::InvalidPath(_)), "{bad}: {err}");
    }
    assert_eq!(ref_sha(&world.bare, "refs/heads/pp/noop"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_the_server_rejects_is_an_error() {
    let world = World::new().await;
    checkout(&world, "one", auth()).await.unwrap();
    reject_all_pushes(&world.bare);
    let work = world.work_dir("one");
    std::fs::write(work.join("README.md"), "# changed\n").unwrap();
    let err = blocking(move || {
        commit_and_push(
            &work,
            &["README.md".into()],
            "Change",
            &bot(),
            "pp/rejected",
            &auth(),
            false,
        )
    })
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::PushRejected { .. }), "{err}");
    // The server's per-ref verdict (reported through push_update_reference) is surfaced.
    assert!(err.to_string().contains("hook declined"), "{err}");
    assert_eq!(ref_sha(&world.bare, "refs/heads/pp/rejected"), None);

    // Once the server accepts pushes again, the committed branch can be pushed as it is.
    std::fs::remove_file(world.bare.join("hooks/pre-receive")).unwrap();
    let w = world.work_dir("one");
    blocking(move || push_branch(&w, "pp/rejected", &auth(), false))
        .await
        .unwrap();
    let head = git2::Repository::open(world.work_dir("one"))
        .unwrap()
        .head()
        .unwrap()
        .target()
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
    checkout(&world, "one", auth()).await.unwrap();
    let work = world.work_dir("one");
    std::fs::write(work.join("README.md"), "# ours\n").unwrap();

    let w = work.clone();
    let err = blocking(move || {
        commit_and_push(
            &w,
            &["README.md".into()],
            "Ours",
            &bot(),
            "pp/iter",
            &auth(),
            false,
        )
    })
    .await
    .unwrap_err();
    assert!(matches!(err, GitError::PushRejected { .. }), "{err}");
    assert_eq!(ref_sha(&world.bare, "refs/heads/pp/iter"), Some(theirs));

    std::fs::write(work.join("README.md"), "# ours, again\n").unwrap();
    let w = work.clone();
    let ours = blocking(move || {
        commit_and_push(
            &w,
            &["README.md".into()],
            "Ours",
            &bot(),
            "pp/iter",
            &auth(),
            true,
        )
    })
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
    let sha = blocking(move || cache.checkout(&url, "main", &GitAuth::anonymous(), &work))
        .await
        .unwrap()
        .base_sha;
    assert_eq!(Some(sha), ref_sha(&bare, "refs/heads/main"));
}

#[test]
fn restore_paths_undoes_edits_and_removes_created_files() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    support::git_http::git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("a.py"), "x = 1\n").unwrap();
    support::git_http::git(&work, &["add", "a.py"]);
    support::git_http::git(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "init",
        ],
    );
    std::fs::write(work.join("a.py"), "x = 2\n").unwrap();
    std::fs::write(work.join("new.py"), "y = 1\n").unwrap();
    std::fs::write(work.join("keep.txt"), "setup artefact\n").unwrap();
    patchpilot::agent::git::restore_paths(&work, &["a.py".into(), "new.py".into()]).unwrap();
    assert_eq!(
        std::fs::read_to_string(work.join("a.py")).unwrap(),
        "x = 1\n"
    );
    assert!(!work.join("new.py").exists());
    assert!(
        work.join("keep.txt").exists(),
        "files not named are left alone"
    );
}

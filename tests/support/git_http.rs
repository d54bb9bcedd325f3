//! A git smart-HTTP server for bare repositories on loopback, for tests.
//!
//! It runs the real `git http-backend` as a CGI program for each request, so clients
//! (libgit2 in PatchPilot) speak the real wire protocol: ref advertisement, upload-pack
//! for fetches and receive-pack for pushes. Optional HTTP Basic authentication mirrors
//! GitHub's installation-token scheme (`x-access-token:<token>`): a request without valid
//! credentials gets 401 with `WWW-Authenticate`, which is what makes git clients ask their
//! credential callback.
//!
//! `git_router` can be nested into a larger fake (the fake GitHub); paths it sees are
//! relative to `root`, e.g. `/owner/name.git/info/refs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

#[derive(Clone)]
struct GitHttp {
    root: Arc<PathBuf>,
    required_token: Option<Arc<String>>,
}

/// A router serving every bare repository under `root` over git smart HTTP. With
/// `required_token`, every request needs HTTP Basic `x-access-token:<token>`.
pub fn git_router(root: PathBuf, required_token: Option<String>) -> Router {
    let state = GitHttp {
        root: Arc::new(root),
        required_token: required_token.map(Arc::new),
    };
    Router::new()
        .route("/{*path}", any(handle))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serves [`git_router`] on an ephemeral loopback port.
pub async fn serve_git(root: PathBuf, token: Option<String>) -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let app = git_router(root, token);
    let handle = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("git http server");
    });
    (addr, handle)
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("x-access-token:{token}").as_bytes()
}

async fn handle(State(state): State<GitHttp>, request: Request) -> Response {
    if let Some(token) = &state.required_token
        && !authorized(request.headers(), token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")],
            "authentication required\n",
        )
            .into_response();
    }
    match run_backend(&state, request).await {
        Ok(response) => response,
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}

async fn run_backend(state: &GitHttp, request: Request) -> Result<Response, String> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| format!("reading body: {e}"))?;
    let header_str = |name: HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", state.root.as_os_str())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", state.root.as_os_str())
        .env("GIT_HTTP_EXPORT_ALL", "1")
        // Enable pushes for every repository served (off by default without REMOTE_USER).
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header_str(header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env(
            "HTTP_CONTENT_ENCODING",
            header_str(header::CONTENT_ENCODING),
        )
        .env(
            "GIT_PROTOCOL",
            header_str(HeaderName::from_static("git-protocol")),
        )
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if state.required_token.is_some() {
        command.env("REMOTE_USER", "x-access-token");
    }
    let mut child = command.spawn().map_err(|e| format!("spawning git: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Write the request while the backend runs, so a large response cannot deadlock us.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("running git http-backend: {e}"))?;
    let _ = writer.await;
    parse_cgi(&output.stdout).ok_or_else(|| {
        format!(
            "bad CGI output from git http-backend: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Turns CGI output (headers, a blank line, the body) into an HTTP response.
fn parse_cgi(output: &[u8]) -> Option<Response> {
    let (head, body) = split_head(output)?;
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    for line in std::str::from_utf8(head).ok()?.lines() {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next()?.parse().ok()?;
            status = StatusCode::from_u16(code).ok()?;
        } else {
            headers.append(
                HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
                HeaderValue::from_str(value).ok()?,
            );
        }
    }
    let mut response = Response::new(Body::from(body.to_vec()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Some(response)
}

fn split_head(output: &[u8]) -> Option<(&[u8], &[u8])> {
    let crlf = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = output.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let (at, len) = match (crlf, lf) {
        (Some(a), Some(b)) => {
            if a.0 < b.0 {
                a
            } else {
                b
            }
        }
        (a, b) => a.or(b)?,
    };
    Some((&output[..at], &output[at + len..]))
}

/// Runs the git CLI in `dir` with a fixed identity and no user/system config; panics on
/// failure (this is test set-up). Returns trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Test Author",
            "-c",
            "user.email=test@example.com",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(full, content).expect("write file");
    }
}

/// Creates the bare repository `root/<name>` (e.g. `owner/name.git`) whose `main` branch
/// has one commit containing `files`. Returns its path.
pub fn init_bare_repo(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let bare = root.join(name);
    std::fs::create_dir_all(&bare).expect("mkdir bare repo");
    git(&bare, &["init", "--bare", "--quiet"]);
    let scratch = tempfile::tempdir().expect("tempdir");
    git(scratch.path(), &["init", "--quiet"]);
    write_files(scratch.path(), files);
    git(scratch.path(), &["add", "--all"]);
    git(
        scratch.path(),
        &["commit", "--quiet", "-m", "Initial commit"],
    );
    git(
        scratch.path(),
        &["push", "--quiet", bare.to_str().expect("utf-8"), "main"],
    );
    bare
}

/// Adds a commit writing `files` on `branch` of the bare repository (creating the branch
/// from `main` if needed) and returns its sha.
pub fn commit_files(bare: &Path, branch: &str, files: &[(&str, &str)], message: &str) -> String {
    let scratch = tempfile::tempdir().expect("tempdir");
    let bare_str = bare.to_str().expect("utf-8");
    git(scratch.path(), &["clone", "--quiet", bare_str, "."]);
    let start = match ref_sha(bare, &format!("refs/heads/{branch}")) {
        Some(_) => format!("origin/{branch}"),
        None => "origin/main".to_owned(),
    };
    git(
        scratch.path(),
        &["checkout", "--quiet", "-B", branch, &start],
    );
    write_files(scratch.path(), files);
    git(scratch.path(), &["add", "--all"]);
    git(scratch.path(), &["commit", "--quiet", "-m", message]);
    git(scratch.path(), &["push", "--quiet", "origin", branch]);
    git(scratch.path(), &["rev-parse", "HEAD"])
}

/// The sha a ref points to in a repository, if it exists.
pub fn ref_sha(repo: &Path, refname: &str) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--verify", "--quiet", refname])
        .current_dir(repo)
        .output()
        .expect("run git");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The content of `path` at `rev` in a repository, if it exists there.
pub fn file_at(repo: &Path, rev: &str, path: &str) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["show", &format!("{rev}:{path}")])
        .current_dir(repo)
        .output()
        .expect("run git");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Installs a `pre-receive` hook that rejects every push, to test rejected refs.
pub fn reject_all_pushes(bare: &Path) {
    let hook = bare.join("hooks").join("pre-receive");
    std::fs::create_dir_all(hook.parent().expect("hooks dir")).expect("mkdir hooks");
    std::fs::write(&hook, "#!/bin/sh\necho 'pushes are frozen' >&2\nexit 1\n").expect("hook");
    let status = std::process::Command::new("chmod")
        .args(["+x", hook.to_str().expect("utf-8")])
        .status()
        .expect("chmod");
    assert!(status.success());
}

//! A stateful fake GitHub served over real HTTP on loopback.
//!
//! It speaks GitHub's REST routes and JSON shapes for what PatchPilot uses: App JWT
//! (verified with the test RSA public key in `tests/fixtures/`), installation tokens,
//! repositories, branches, contents, issues, comments (create, update via PATCH and the
//! POST octocrab sends, list), reactions, collaborator permissions, check runs, pulls,
//! search and the manifest conversion. Every call is recorded. Failure switches make the
//! next N matching calls answer 5xx, 429 with `Retry-After`, a 403 secondary rate limit, or
//! answer slowly. [`FakeGitHub::finish`] is the strict teardown: it fails on calls the fake
//! could not serve or authorise and on bot comments the test never looked at.
//!
//! "Could not serve" is any call it did not know (route or method), any call without valid
//! credentials, and any 404 except the few where GitHub answers 404 for something absent
//! and PatchPilot branches on it (a missing file in `contents`, a missing branch). Those
//! calls are listed by [`FakeGitHub::unanswered`], which the end-to-end world checks when
//! it is torn down.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use chrono::{TimeDelta, Utc};
use serde_json::Value;

pub const TEST_APP_ID: u64 = 4242;
pub const TEST_APP_SLUG: &str = "patchpilot";
pub const BOT_LOGIN: &str = "patchpilot[bot]";
pub const PRIVATE_KEY_PEM: &str = include_str!("../../fixtures/test-app-key.pem");
pub const PUBLIC_KEY_PEM: &str = include_str!("../../fixtures/test-app-key.pub.pem");

/// What an injected failure does.
#[derive(Clone, Debug)]
pub enum FailureKind {
    ServerError,
    /// 429 with `Retry-After: seconds`.
    TooManyRequests {
        retry_after: u64,
    },
    /// 403 secondary rate limit with `Retry-After: seconds`.
    SecondaryRateLimit {
        retry_after: u64,
    },
    /// Answer normally after a delay.
    Slow(Duration),
}

#[derive(Clone, Debug)]
struct Failure {
    method: Method,
    path_contains: String,
    remaining: u32,
    kind: FailureKind,
}

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub body: Value,
}

#[derive(Clone, Debug)]
pub struct FakeComment {
    pub id: u64,
    pub issue: u64,
    pub author: String,
    pub body: String,
    pub edits: u32,
}

#[derive(Clone, Debug)]
pub struct FakeReaction {
    /// `comment:<id>` or `issue:<n>`.
    pub target: String,
    pub content: String,
    pub by: String,
}

#[derive(Clone, Debug)]
pub struct FakeCheckRun {
    pub id: u64,
    pub head_sha: String,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub external_id: Option<String>,
    pub details_url: Option<String>,
    pub output: Value,
}

#[derive(Clone, Debug)]
pub struct FakePull {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub draft: bool,
}

#[derive(Clone, Debug)]
struct FakeIssue {
    number: u64,
    title: String,
    body: Option<String>,
    author: String,
    is_pr: bool,
    state: String,
}

#[derive(Default)]
struct FakeRepo {
    owner: String,
    name: String,
    default_branch: String,
    branches: BTreeMap<String, String>,
    files: BTreeMap<(String, String), String>,
    issues: BTreeMap<u64, FakeIssue>,
    comments: Vec<FakeComment>,
    reactions: Vec<FakeReaction>,
    check_runs: Vec<FakeCheckRun>,
    pulls: Vec<FakePull>,
    roles: BTreeMap<String, String>,
    reviews: Vec<iterations::FakeReview>,
    ci_jobs: Vec<iterations::FakeCiJob>,
}

struct Token {
    value: String,
    installation: u64,
    repos: Vec<String>,
    expires_at: chrono::DateTime<Utc>,
}

struct World {
    base_url: String,
    git_base_url: String,
    /// When set, branches are read from the bare repositories `{root}/{owner}/{name}.git`
    /// (what the git server serves), so pushes show up like on GitHub.
    git_repo_root: Option<std::path::PathBuf>,
    installations: BTreeMap<u64, Vec<String>>,
    tokens: Vec<Token>,
    token_lifetime: TimeDelta,
    repos: BTreeMap<String, FakeRepo>,
    next_id: u64,
    calls: Vec<Call>,
    failures: Vec<Failure>,
    problems: Vec<String>,
    seen_comments: HashSet<u64>,
    manifest_codes: HashSet<String>,
    kill_switches: Vec<KillSwitch>,
    /// Routes the fake answers as unknown (see [`FakeGitHub::forget_route`]).
    forgotten_routes: Vec<(Method, String)>,
}

/// SIGKILLs a process right after the fake carried out a matching write and before the answer
/// leaves: GitHub has done it, the caller never learns (the crash window of kill -9 tests).
#[derive(Clone, Debug)]
pub struct KillSwitch {
    pub method: Method,
    pub path_contains: String,
    /// Matched against the JSON request body, serialised.
    pub body_contains: String,
    pub pid: u32,
}

/// The running fake. Clone-free: share it by reference in a test.
pub struct FakeGitHub {
    pub url: String,
    world: Arc<Mutex<World>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Shared = Arc<Mutex<World>>;

impl FakeGitHub {
    pub async fn start() -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let world = Arc::new(Mutex::new(World {
            base_url: url.clone(),
            git_base_url: format!("{url}/git"),
            git_repo_root: None,
            installations: BTreeMap::new(),
            tokens: Vec::new(),
            token_lifetime: TimeDelta::hours(1),
            repos: BTreeMap::new(),
            next_id: 1000,
            calls: Vec::new(),
            failures: Vec::new(),
            problems: Vec::new(),
            seen_comments: HashSet::new(),
            manifest_codes: HashSet::new(),
            kill_switches: Vec::new(),
            forgotten_routes: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(world.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGitHub { url, world, server }
    }

    fn w(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    /// Base URL for clone URLs (`{git_base}/{owner}/{name}.git`), e.g. a nested git server.
    pub fn set_git_base_url(&self, url: &str) {
        self.w().git_base_url = url.trim_end_matches('/').to_owned();
    }

    /// Backs repositories with the bare git repositories under `root` (see `World`).
    pub fn set_git_repo_root(&self, root: &std::path::Path) {
        self.w().git_repo_root = Some(root.to_owned());
    }

    /// How long minted installation tokens live (default one hour).
    pub fn set_token_lifetime(&self, lifetime: TimeDelta) {
        self.w().token_lifetime = lifetime;
    }

    /// A repository `owner/name` with branch `main` at a fixed commit.
    pub fn add_repo(&self, full_name: &str) {
        let (owner, name) = full_name.split_once('/').unwrap();
        let mut repo = FakeRepo {
            owner: owner.into(),
            name: name.into(),
            default_branch: "main".into(),
            ..FakeRepo::default()
        };
        repo.branches.insert("main".into(), "a".repeat(40));
        self.w().repos.insert(full_name.into(), repo);
    }

    pub fn add_installation(&self, id: u64, repos: &[&str]) {
        self.w()
            .installations
            .insert(id, repos.iter().map(|r| r.to_string()).collect());
    }

    /// Gives `login` a role (`admin`, `maintain`, `write`, `triage`, `read`).
    pub fn set_role(&self, repo: &str, login: &str, role: &str) {
        self.w()
            .repos
            .get_mut(repo)
            .unwrap()
            .roles
            .insert(login.into(), role.into());
    }

    pub fn set_branch(&self, repo: &str, branch: &str, sha: &str) {
        self.w()
            .repos
            .get_mut(repo)
            .unwrap()
            .branches
            .insert(branch.into(), sha.into());
    }

    pub fn set_file(&self, repo: &str, git_ref: &str, path: &str, text: &str) {
        let mut w = self.w();
        let r = w.repos.get_mut(repo).unwrap();
        r.files.insert((git_ref.into(), path.into()), text.into());
    }

    pub fn add_issue(&self, repo: &str, number: u64, title: &str, body: &str, author: &str) {
        self.insert_issue(repo, number, title, body, author, false);
    }

    pub fn add_pull_issue(&self, repo: &str, number: u64, title: &str, author: &str) {
        self.insert_issue(repo, number, title, "", author, true);
    }

    fn insert_issue(
        &self,
        repo: &str,
        number: u64,
        title: &str,
        body: &str,
        author: &str,
        is_pr: bool,
    ) {
        let issue = FakeIssue {
            number,
            title: title.into(),
            body: (!body.is_empty()).then(|| body.into()),
            author: author.into(),
            is_pr,
            state: "open".into(),
        };
        self.w()
            .repos
            .get_mut(repo)
            .unwrap()
            .issues
            .insert(number, issue);
    }

    /// A comment written by someone (a human, or a forged/real bot comment).
    pub fn add_comment(&self, repo: &str, issue: u64, author: &str, body: &str) -> u64 {
        let mut w = self.w();
        let id = w.id();
        w.seen_comments.insert(id);
        let comment = FakeComment {
            id,
            issue,
            author: author.into(),
            body: body.into(),
            edits: 0,
        };
        w.repos.get_mut(repo).unwrap().comments.push(comment);
        id
    }

    /// A manifest code the conversion endpoint accepts once.
    pub fn add_manifest_code(&self, code: &str) {
        self.w().manifest_codes.insert(code.into());
    }

    /// The next `times` calls of `method` whose path contains `path_contains` fail.
    pub fn fail_next(&self, method: Method, path_contains: &str, times: u32, kind: FailureKind) {
        self.w().failures.push(Failure {
            method,
            path_contains: path_contains.into(),
            remaining: times,
            kind,
        });
    }

    /// Arms a one-shot [`KillSwitch`].
    pub fn kill_after(&self, switch: KillSwitch) {
        self.w().kill_switches.push(switch);
    }

    /// Kill switches that have not fired yet.
    pub fn armed_kill_switches(&self) -> usize {
        self.w().kill_switches.len()
    }

    /// From now on the fake answers `method` calls whose path contains `path_contains` as a
    /// route it does not know: a test-only way to show that the strict teardown catches a call
    /// the fake cannot serve.
    pub fn forget_route(&self, method: Method, path_contains: &str) {
        self.w()
            .forgotten_routes
            .push((method, path_contains.into()));
    }

    /// The calls the fake could not answer meaningfully, in order, each as
    /// `METHOD /path answered STATUS (why)`: an unknown route or method, a request it could
    /// not authenticate, or a 404 because nothing it holds matched.
    pub fn unanswered(&self) -> Vec<String> {
        self.w().problems.clone()
    }

    /// Marks every comment as seen (tests that assert counts rather than texts).
    pub fn see_all_comments(&self) {
        let mut w = self.w();
        let ids: Vec<u64> = w
            .repos
            .values()
            .flat_map(|r| r.comments.iter().map(|c| c.id))
            .collect();
        w.seen_comments.extend(ids);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.w().calls.clone()
    }

    /// How many recorded calls match (any status).
    pub fn count(&self, method: Method, path_contains: &str) -> usize {
        self.w()
            .calls
            .iter()
            .filter(|c| c.method == method && c.path.contains(path_contains))
            .count()
    }

    pub fn tokens_minted(&self) -> usize {
        self.w().tokens.len()
    }

    /// The repositories the most recent token was scoped to.
    pub fn last_token_repos(&self) -> Vec<String> {
        self.w()
            .tokens
            .last()
            .map(|t| t.repos.clone())
            .unwrap_or_default()
    }

    /// All comments on an issue, marking them as seen by the test.
    pub fn comments(&self, repo: &str, issue: u64) -> Vec<FakeComment> {
        let mut w = self.w();
        let comments: Vec<FakeComment> = w.repos[repo]
            .comments
            .iter()
            .filter(|c| c.issue == issue)
            .cloned()
            .collect();
        w.seen_comments.extend(comments.iter().map(|c| c.id));
        comments
    }

    pub fn reactions(&self, repo: &str) -> Vec<FakeReaction> {
        self.w().repos[repo].reactions.clone()
    }

    pub fn check_runs(&self, repo: &str) -> Vec<FakeCheckRun> {
        self.w().repos[repo].check_runs.clone()
    }

    pub fn pulls(&self, repo: &str) -> Vec<FakePull> {
        self.w().repos[repo].pulls.clone()
    }

    /// Strict teardown: fails on calls the fake refused or did not know, and on comments
    /// the test never looked at.
    pub fn finish(self) {
        let w = self.w();
        let mut problems = w.problems.clone();
        for repo in w.repos.values() {
            for c in repo
                .comments
                .iter()
                .filter(|c| !w.seen_comments.contains(&c.id))
            {
                problems.push(format!(
                    "unexpected comment {} by {}: {:?}",
                    c.id, c.author, c.body
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "fake GitHub saw unexpected things:\n{}",
            problems.join("\n")
        );
    }
}

pub mod iterations;
mod routes;
use routes::handle;

impl World {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn fire_kill_switches(&mut self, method: &Method, path: &str, body: &Value) {
        let text = body.to_string();
        let fired: Vec<KillSwitch> = self
            .kill_switches
            .extract_if(.., |k| {
                k.method == method
                    && path.contains(&k.path_contains)
                    && text.contains(&k.body_contains)
            })
            .collect();
        for switch in fired {
            // SIGKILL through kill(1): the test crate has no libc binding, and this is test code.
            let _ = std::process::Command::new("kill")
                .args(["-9", &switch.pid.to_string()])
                .status();
        }
    }
}

/// Retries fast enough for tests (rate-limit waits are capped at 20 ms).
pub fn fast_retry() -> patchpilot::github::retry::RetryPolicy {
    patchpilot::github::retry::RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_rate_limit_wait: Duration::from_millis(20),
    }
}

impl FakeGitHub {
    /// The real octocrab-backed client, authenticating as the test App against this fake.
    pub fn client(&self) -> Arc<patchpilot::github::octo::OctocrabGitHub> {
        let creds = patchpilot::github::auth::AppCredentials::from_pem(
            TEST_APP_ID,
            PRIVATE_KEY_PEM.as_bytes(),
        )
        .unwrap();
        Arc::new(
            patchpilot::github::octo::OctocrabGitHub::new(
                &self.url,
                creds,
                None,
                Duration::from_secs(5),
                fast_retry(),
            )
            .unwrap(),
        )
    }
}

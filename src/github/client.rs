//! The one GitHub facade the core talks to: a small trait of domain verbs.
//!
//! The core (triggers, the pipeline, the reporter) depends on [`GitHub`] only, so it can be
//! tested without HTTP and never sees octocrab's types. The production implementation is
//! [`crate::github::octo::OctocrabGitHub`]; tests run it against the fake GitHub under
//! `tests/support/`.
//!
//! Every call names the installation it acts for: installation tokens are minted (and
//! cached) per installation and repository behind the trait.

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::types::{CheckRunId, CommentId, CommitSha, InstallationId, IssueNumber, RepoName};

/// Open or closed, for issues and pull requests alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    Open,
    Closed,
}

/// The parts of an issue (or pull request) the core uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub title: String,
    /// Empty when the issue has no body.
    pub body: String,
    pub state: IssueState,
    pub is_pull_request: bool,
    /// Login of the author.
    pub author: String,
}

/// An issue comment as listed on an issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub id: CommentId,
    /// Login of the author (`<app-slug>[bot]` for comments the App wrote).
    pub author: String,
    pub body: String,
}

/// What a reaction is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReactionTarget {
    /// The comment that triggered a session.
    Comment(CommentId),
    /// The issue itself (label triggers have no comment to react to).
    Issue(IssueNumber),
}

/// The reactions PatchPilot uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// 👀: "seen, working on it".
    Eyes,
    /// 🚀: "done".
    Rocket,
    /// 😕: "could not do it".
    Confused,
}

impl Reaction {
    /// GitHub's `content` value for the reaction.
    pub fn content(self) -> &'static str {
        match self {
            Reaction::Eyes => "eyes",
            Reaction::Rocket => "rocket",
            Reaction::Confused => "confused",
        }
    }
}

/// A user's role on a repository, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
    None,
}

impl Permission {
    /// Parses GitHub's `role_name` / `permission` value; unknown values are `None`
    /// (custom roles without write access must not be able to run code).
    pub fn from_github(value: &str) -> Permission {
        match value {
            "admin" => Permission::Admin,
            "maintain" => Permission::Maintain,
            "write" => Permission::Write,
            "triage" => Permission::Triage,
            "read" => Permission::Read,
            _ => Permission::None,
        }
    }
}

/// The conclusion of a completed check run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckConclusion {
    Success,
    Failure,
    /// "Could not reproduce": not the code's fault, not a pass either.
    Neutral,
    Cancelled,
    TimedOut,
    ActionRequired,
}

impl CheckConclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckConclusion::Success => "success",
            CheckConclusion::Failure => "failure",
            CheckConclusion::Neutral => "neutral",
            CheckConclusion::Cancelled => "cancelled",
            CheckConclusion::TimedOut => "timed_out",
            CheckConclusion::ActionRequired => "action_required",
        }
    }
}

/// Where a check run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    Queued,
    InProgress,
    Completed(CheckConclusion),
}

/// A check run's visible output. Build it with
/// [`crate::report::messages::check_run_output`], which enforces GitHub's size limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutput {
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
}

/// The fields PatchPilot sets when creating or updating a check run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRunUpdate {
    /// Always `PatchPilot` in production; a field so the name lives with the caller.
    pub name: String,
    pub status: CheckStatus,
    /// Link to the live session page.
    pub details_url: Option<String>,
    /// The session id, so a rerequested check run maps back to its session.
    pub external_id: Option<String>,
    pub output: Option<CheckOutput>,
}

/// A check run as listed on a commit: what is needed to find PatchPilot's own run again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRun {
    pub id: CheckRunId,
    pub external_id: Option<String>,
    pub details_url: Option<String>,
    /// Whether it has a conclusion already.
    pub completed: bool,
}

/// A pull request to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPullRequest {
    pub title: String,
    /// Branch name in the same repository, e.g. `patchpilot/issue-7`.
    pub head: String,
    pub base: String,
    pub body: String,
    pub draft: bool,
}

/// An opened (or already existing) pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    pub number: IssueNumber,
    pub html_url: String,
}

/// One result of an issue / PR search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchHit {
    pub number: IssueNumber,
    pub title: String,
    pub html_url: String,
    pub is_pr: bool,
    pub state: IssueState,
}

/// One file changed by a pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestFile {
    pub filename: String,
    /// `added`, `modified`, `removed`, `renamed`, ...
    pub status: String,
    pub additions: u64,
    pub deletions: u64,
}

/// A pull request as iterations need it: who opened it and where its branch is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestInfo {
    pub number: IssueNumber,
    pub title: String,
    pub author: String,
    pub head_branch: String,
    pub head_sha: CommitSha,
    pub base_branch: String,
    pub html_url: String,
    pub open: bool,
}

/// A submitted pull request review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub id: u64,
    /// `CHANGES_REQUESTED`, `COMMENTED`, `APPROVED`, `DISMISSED`, `PENDING`.
    pub state: String,
    pub author: String,
    pub author_is_bot: bool,
    pub body: String,
}

/// One line comment of a review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewComment {
    pub id: u64,
    pub author: String,
    pub author_is_bot: bool,
    pub body: String,
    pub path: String,
    /// The line in the file the comment is on (`None` when it is outdated).
    pub line: Option<u64>,
    /// The diff context GitHub shows above the comment.
    pub diff_hunk: String,
}

/// A CI job or check run that ran on a commit. A workflow job's id is also its check run's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiJob {
    pub id: u64,
    pub name: String,
    pub conclusion: Option<String>,
    /// The check run's own summary and text, when it reported some.
    pub summary: String,
}

/// An annotation a check run left on a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub path: String,
    pub start_line: u64,
    pub level: String,
    pub title: String,
    pub message: String,
}

/// The repository facts the pipeline needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    pub default_branch: String,
    /// HTTPS clone URL (GitHub Enterprise and local test servers work unchanged).
    pub clone_url: String,
}

/// Why a GitHub call failed. Messages never contain a token: they name the route template,
/// the status and GitHub's own `message`.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub answered {status} to {route}: {message}")]
    Api {
        status: u16,
        route: String,
        message: String,
    },
    #[error("GitHub rate limit on {route} did not clear after {attempts} attempts")]
    RateLimited { route: String, attempts: u32 },
    #[error("could not reach GitHub for {route}: {message}")]
    Transport { route: String, message: String },
    #[error("unexpected response from GitHub for {route}: {message}")]
    Decode { route: String, message: String },
    #[error("GitHub App authentication failed: {0}")]
    Auth(String),
}

impl GitHubError {
    /// The HTTP status GitHub answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Shorthand for results of GitHub calls.
pub type GitHubResult<T> = Result<T, GitHubError>;

/// Everything PatchPilot asks of GitHub, in domain terms.
#[async_trait]
pub trait GitHub: Send + Sync {
    /// The login the App comments as (`<slug>[bot]`); only comments by this login are trusted.
    async fn bot_login(&self) -> GitHubResult<String>;

    /// An installation token scoped to `repo` (for git clone/push through git2's
    /// credential callback). Cached; refreshed well before expiry.
    async fn installation_token(
        &self,
        inst: InstallationId,
        repo: &RepoName,
    ) -> GitHubResult<SecretString>;

    async fn repository(&self, inst: InstallationId, repo: &RepoName) -> GitHubResult<Repo>;

    /// The commit a branch points at.
    async fn branch_head(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        branch: &str,
    ) -> GitHubResult<CommitSha>;

    async fn get_issue(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        issue: IssueNumber,
    ) -> GitHubResult<Issue>;

    async fn post_comment(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        issue: IssueNumber,
        body: &str,
    ) -> GitHubResult<CommentId>;

    async fn update_comment(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        comment: CommentId,
        body: &str,
    ) -> GitHubResult<()>;

    /// All comments on an issue, oldest first.
    async fn list_comments(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        issue: IssueNumber,
    ) -> GitHubResult<Vec<Comment>>;

    /// Adds a reaction; adding one that already exists succeeds.
    async fn add_reaction(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        target: ReactionTarget,
        reaction: Reaction,
    ) -> GitHubResult<()>;

    /// A user's role on the repository; `Permission::None` for strangers.
    async fn permission(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        login: &str,
    ) -> GitHubResult<Permission>;

    async fn create_check_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        head_sha: &CommitSha,
        update: &CheckRunUpdate,
    ) -> GitHubResult<CheckRunId>;

    async fn update_check_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        check_run: CheckRunId,
        update: &CheckRunUpdate,
    ) -> GitHubResult<()>;

    /// This App's check runs named `name` on `head_sha`, newest first: the lookup that makes
    /// creating a check run idempotent across crashes.
    async fn list_check_runs(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        head_sha: &CommitSha,
        name: &str,
    ) -> GitHubResult<Vec<CheckRun>>;

    /// Opens a pull request; if one is already open for the head branch, updates its
    /// title and body and returns it instead of failing.
    async fn open_pull_request(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: &NewPullRequest,
    ) -> GitHubResult<PullRequest>;

    /// A text file at `git_ref`, or `None` when it does not exist.
    async fn get_file(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        path: &str,
        git_ref: &str,
    ) -> GitHubResult<Option<String>>;

    /// Issues and PRs of `repo` matching `query` (GitHub search syntax), best first.
    async fn search_issues(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        query: &str,
        limit: u8,
    ) -> GitHubResult<Vec<SearchHit>>;

    async fn pull_request_files(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
    ) -> GitHubResult<Vec<PullRequestFile>>;

    /// One pull request (`GET /repos/{o}/{r}/pulls/{n}`).
    async fn get_pull_request(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
    ) -> GitHubResult<PullRequestInfo>;

    /// One review of a pull request.
    async fn get_review(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
        review: u64,
    ) -> GitHubResult<Review>;

    /// The line comments of one review, oldest first.
    async fn review_comments(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
        review: u64,
    ) -> GitHubResult<Vec<ReviewComment>>;

    /// The jobs of a GitHub Actions workflow run.
    async fn workflow_run_jobs(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        run: u64,
    ) -> GitHubResult<Vec<CiJob>>;

    /// The check runs of a check suite.
    async fn check_suite_runs(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        suite: u64,
    ) -> GitHubResult<Vec<CiJob>>;

    /// A check run's annotations.
    async fn check_run_annotations(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        check_run: u64,
    ) -> GitHubResult<Vec<Annotation>>;

    /// A workflow job's log as text (GitHub redirects to a short-lived download URL).
    async fn job_log(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        job: u64,
    ) -> GitHubResult<String>;
}

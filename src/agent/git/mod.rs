//! Git operations for the pipeline, all through git2 (libgit2): clone into a per-session
//! work tree from a cached mirror, list and diff the changes, commit and push.
//!
//! Design and invariants:
//! - **Credentials only through the callback.** The installation token is handed to libgit2
//!   by `RemoteCallbacks::credentials` as HTTP Basic `x-access-token:<token>`. It never
//!   appears in a URL, an argument vector, `.git/config`, an error message or a log line.
//!   Clone URLs that carry their own user-info are refused for the same reason.
//! - **One bare mirror per repository** ([`RepoCache`]) is reused across sessions, so a
//!   repeat session fetches only new objects. Only the base branch is fetched. A per-repo
//!   lock file serialises fetches and copies, across threads and processes.
//! - **Work trees are self-contained copies** (no hard links, no alternates): untrusted repro
//!   commands run inside them, so nothing they do can reach the shared mirror, and tools in
//!   the sandbox (e.g. `git describe`) see a complete repository.
//! - **Commit only what the edits changed** ([`commit_and_push`] takes explicit paths):
//!   projects often leave `.venv/` or `node_modules/` unignored, so `add -A` is never used.
//! - **A rejected ref is an error.** libgit2 reports per-ref rejections through
//!   `push_update_reference`, not as an `Err`; [`commit_and_push`] turns them into one.
//!
//! Everything here is blocking; async callers use `tokio::task::spawn_blocking`.

mod auth;
mod cache;
mod changes;
mod publish;

pub use auth::GitAuth;
pub use cache::{Checkout, RepoCache};
pub use changes::{changed_files, diff, restore_paths};
pub use publish::{Signature, commit_and_push, push_branch};

/// Errors from git operations. Messages are safe to show a maintainer: they never contain
/// a token, and URLs in them are the (credential-free) clone URL.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The clone URL is unusable (e.g. it embeds credentials).
    #[error("invalid clone URL: {0}")]
    InvalidUrl(String),
    /// A branch name that is not a valid git reference name.
    #[error("invalid branch name `{0}`")]
    InvalidBranch(String),
    /// A path that is absolute, escapes the work tree or points into `.git`.
    #[error("invalid path `{0}`: paths must be relative and stay inside the work tree")]
    InvalidPath(String),
    /// The server asked for credentials and we had none, or it refused the ones we sent.
    #[error("authentication to {url} failed: {reason}")]
    Auth { url: String, reason: String },
    /// The base branch does not exist on the remote.
    #[error("branch `{branch}` was not found in {url}")]
    BranchNotFound { url: String, branch: String },
    /// The given paths contain no change relative to `HEAD`.
    #[error("nothing to commit: the given paths have no changes")]
    NothingToCommit,
    /// The server (or a local fast-forward check) refused to update the ref.
    #[error("push of `{refname}` was rejected: {reason}")]
    PushRejected { refname: String, reason: String },
    /// Reading or writing local files (cache directory, lock files, work tree).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Any other libgit2 failure, with what we were doing at the time.
    #[error("{context}: {message}")]
    Git { context: String, message: String },
}

impl GitError {
    pub(crate) fn git(context: impl Into<String>, err: &git2::Error) -> Self {
        GitError::Git {
            context: context.into(),
            message: err.message().to_owned(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        GitError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Checks that `branch` makes a valid `refs/heads/<branch>` name.
pub(crate) fn validate_branch(branch: &str) -> Result<String, GitError> {
    let refname = format!("refs/heads/{branch}");
    if branch.is_empty() || branch.starts_with('-') || !git2::Reference::is_valid_name(&refname) {
        return Err(GitError::InvalidBranch(branch.to_owned()));
    }
    Ok(refname)
}

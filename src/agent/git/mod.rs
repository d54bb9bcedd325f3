//! Git operations for the pipeline, all through git2 (libgit2): a session's repository from
//! a cached mirror, the diff of the edits, commit and push.
//!
//! Design and invariants:
//! - **Git metadata never lives where a sandboxed command can write.** A session has a bare
//!   git directory of its own ([`git_dir_for`]: beside the work tree, `<work root>/<id>.git`)
//!   and a work tree checked out from it with *no* `.git` inside. Every tier lends the
//!   sandbox the work tree only, and host code opens the git directory by its path, so a
//!   `.git` a repro plants (config, hooks, refs, index, a link to a crafted repository) is
//!   never read. Tools in the sandbox that need git metadata (`git describe`,
//!   setuptools_scm) see none; see the README.
//! - **Credentials only through the callback, and only for the clone URL's origin.** The
//!   installation token is handed to libgit2 by `RemoteCallbacks::credentials` as HTTP Basic
//!   `x-access-token:<token>` when the server asking is the clone URL's scheme, host and
//!   port. It never appears in a URL, an argument vector, a config file, an error message or
//!   a log line. Clone URLs that carry their own user-info are refused for the same reason.
//! - **Push to the clone URL, named explicitly** (an anonymous remote), never to a remote
//!   read from a configuration.
//! - **Commit only what PatchPilot wrote** ([`commit_and_push`] takes the edited files'
//!   bytes, kept in memory when the edits applied): the tree is the base tree plus those
//!   blobs, and the work tree is not read. Before publishing, the caller compares the work
//!   tree with those bytes ([`worktree::check_unchanged`]) to notice a command that changed
//!   them after the edits. The diff for the model and the PR comes from the same bytes.
//! - **One bare mirror per repository** ([`RepoCache`]) is reused across sessions, so a
//!   repeat session fetches only new objects. Only the base branch is fetched. A per-repo
//!   lock file serialises fetches and copies, across threads and processes. A session's git
//!   directory is a full copy (no hard links, no alternates) of it.
//! - **A rejected ref is an error.** libgit2 reports per-ref rejections through
//!   `push_update_reference`, not as an `Err`; [`commit_and_push`] turns them into one.
//!
//! Everything here is blocking; async callers use `tokio::task::spawn_blocking`.

mod auth;
mod cache;
mod changes;
mod publish;
pub mod worktree;

use std::path::{Path, PathBuf};

pub use auth::GitAuth;
pub use cache::{Checkout, RepoCache};
pub use changes::{base_content, diff, restore_paths};
pub(crate) use publish::check_path;
pub use publish::{Publication, Signature, commit_and_push, push_branch};
pub use worktree::{TamperKind, Tampering};

/// New content for one path of the work tree, as PatchPilot's edits produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    /// Repo-relative, `/`-separated.
    pub path: String,
    pub content: Vec<u8>,
}

/// The session's git directory for the work tree `work_dir`: its sibling `<name>.git`,
/// outside every path a sandboxed command is given.
pub fn git_dir_for(work_dir: &Path) -> PathBuf {
    let mut name = work_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".git");
    work_dir.with_file_name(name)
}

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
    /// A sandboxed command changed what PatchPilot wrote (see [`Tampering`]).
    #[error("{0}")]
    Tampered(Tampering),
    /// The given changes leave the base tree as it is.
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

//! The session record and its lifecycle.
//!
//! A session is one attempt to fix one issue (or one local `patchpilot run`). This is the
//! stored record; the API's JSON form is its own type (`server::session_json`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a session stands. Terminal states never change again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Recorded, waiting for a worker.
    Queued,
    /// A worker runs its pipeline.
    Running,
    /// A pull request was opened with a verified fix.
    Succeeded,
    /// The pipeline stopped; `errorMessage` says why.
    Failed,
    /// The repro command passed before any change.
    NotReproduced,
    /// A maintainer cancelled it.
    Cancelled,
    /// The sender was not allowed to start work; nothing ran.
    Rejected,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 7] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::NotReproduced,
        Self::Cancelled,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::NotReproduced => "not_reproduced",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
        }
    }

    /// Queued and running sessions are active: at most one per issue.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown session status `{s}`"))
    }
}

/// What started a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Label,
    Comment,
    Retry,
    CheckRun,
    PullRequestFeedback,
    Api,
    Cli,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Label => "label",
            Self::Comment => "comment",
            Self::Retry => "retry",
            Self::CheckRun => "check_run",
            Self::PullRequestFeedback => "pull_request_feedback",
            Self::Api => "api",
            Self::Cli => "cli",
        }
    }
}

impl FromStr for TriggerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Label,
            Self::Comment,
            Self::Retry,
            Self::CheckRun,
            Self::PullRequestFeedback,
            Self::Api,
            Self::Cli,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == s)
        .ok_or_else(|| format!("unknown trigger kind `{s}`"))
    }
}

/// Where on GitHub a session lives: all three are known, or the session is not GitHub's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHubIssue {
    pub installation_id: i64,
    /// `owner/name`.
    pub repository: String,
    /// The issue the session reports on (for a round: its pull request).
    pub issue_number: i64,
}

impl GitHubIssue {
    /// The coordinates when all three parts are known.
    pub fn from_parts(
        installation_id: Option<i64>,
        repository: Option<String>,
        issue_number: Option<i64>,
    ) -> Option<Self> {
        Some(Self {
            installation_id: installation_id?,
            repository: repository?,
            issue_number: issue_number?,
        })
    }
}

/// A stored session.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub id: String,
    pub repo_url: String,
    /// Base branch; `None` means the repository's default branch.
    pub branch: Option<String>,
    pub bug_description: String,
    pub repro_command: Option<String>,
    pub status: SessionStatus,
    pub patch_diff: Option<String>,
    pub pr_url: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where on GitHub the session reports; `None` for API and local sessions. (Its JSON keeps
    /// the prototype's flat `installationId`, `repository`, `issueNumber`: see
    /// `server::session_json`.)
    pub github: Option<GitHubIssue>,
    pub issue_title: Option<String>,
    pub trigger_kind: TriggerKind,
    pub triggered_by: Option<String>,
    pub trigger_comment_id: Option<i64>,
    pub delivery_id: Option<String>,
    /// Maintainer feedback for a new iteration on an existing PR branch.
    pub feedback: Option<String>,
    pub attempt_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub base_sha: Option<String>,
    pub head_sha: Option<String>,
    pub head_branch: Option<String>,
    pub check_run_id: Option<i64>,
    pub progress_comment_id: Option<i64>,
    pub pr_number: Option<i64>,
    pub cancel_requested: bool,
    /// The repository is private, or its visibility is unknown: reading the session needs
    /// the API token or a signed link (see `server::access`).
    pub private: bool,
    /// For an iteration on a pull request: the session that opened it (the first one).
    pub parent_session_id: Option<String>,
    /// What started the iteration (`comment:<id>`, `review:<id>`, `ci:<head sha>`).
    pub iteration_key: Option<String>,
    /// The iteration's request as JSON (see `session::iteration::IterationRequest`).
    pub iteration_request: Option<String>,
}

/// What is known when a session is created.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewSession {
    pub repo_url: String,
    pub branch: Option<String>,
    pub bug_description: String,
    pub repro_command: Option<String>,
    pub installation_id: Option<i64>,
    pub repository: Option<String>,
    pub issue_number: Option<i64>,
    pub issue_title: Option<String>,
    pub trigger_kind: Option<TriggerKind>,
    pub triggered_by: Option<String>,
    pub trigger_comment_id: Option<i64>,
    pub feedback: Option<String>,
    /// `repository.private` from the webhook payload; `None` (unknown) is stored as private.
    pub private: Option<bool>,
    /// Iterations on a pull request (see [`Session`]); `None` for first sessions.
    pub parent_session_id: Option<String>,
    pub iteration_key: Option<String>,
    pub iteration_request: Option<String>,
    /// The pull request an iteration works on, and its branch.
    pub pr_number: Option<i64>,
    pub head_branch: Option<String>,
}

/// Severity of a session event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventLevel {
    Info,
    Warn,
    Error,
    /// A line of a sandboxed command's output.
    Output,
}

impl EventLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Output => "output",
        }
    }
}

impl FromStr for EventLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Info, Self::Warn, Self::Error, Self::Output]
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or_else(|| format!("unknown event level `{s}`"))
    }
}

/// One entry of a session's append-only log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEvent {
    pub id: i64,
    pub session_id: String,
    pub at: DateTime<Utc>,
    pub step: String,
    pub level: EventLevel,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for status in SessionStatus::ALL {
            assert_eq!(status.as_str().parse::<SessionStatus>(), Ok(status));
        }
        assert!("pending".parse::<SessionStatus>().is_err());
    }

    #[test]
    fn only_queued_and_running_are_active() {
        let active: Vec<_> = SessionStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, [SessionStatus::Queued, SessionStatus::Running]);
    }
}

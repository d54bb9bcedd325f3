//! Iterations: follow-up rounds on a pull request PatchPilot opened.
//!
//! An iteration is a session of its own, linked to the session that opened the pull request
//! (`parent_session_id`), working on the same branch. Its request says what started it; the
//! details (review comments, CI annotations and logs) are read from GitHub when it runs, so
//! the stored request stays small. The key derived from the request is unique per parent
//! (see `migrations/*/0003_iterations.sql`): one iteration per review, one CI round per
//! head commit, however many deliveries say the same thing.

use serde::{Deserialize, Serialize};

/// Branches PatchPilot pushes: `patchpilot/issue-<n>`.
pub const BRANCH_PREFIX: &str = "patchpilot/issue-";

/// What an iteration was asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IterationRequest {
    /// `/patchpilot <text>` on the pull request.
    Feedback { comment_id: i64, text: String },
    /// A submitted review (changes requested, or line comments).
    Review { review_id: i64 },
    /// A failed CI run on the branch head: a `workflow_run` or a `check_suite`.
    CiFailure {
        head_sha: String,
        #[serde(default)]
        workflow_run_id: Option<i64>,
        #[serde(default)]
        check_suite_id: Option<i64>,
    },
}

impl IterationRequest {
    /// The key that makes a request start at most one iteration.
    pub fn key(&self) -> String {
        match self {
            Self::Feedback { comment_id, .. } => format!("comment:{comment_id}"),
            Self::Review { review_id } => format!("review:{review_id}"),
            Self::CiFailure { head_sha, .. } => format!("{CI_KEY_PREFIX}{head_sha}"),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|err| format!("bad iteration request: {err}"))
    }
}

/// Prefix of the keys of CI fix-up rounds (counted against the per-PR cap).
pub const CI_KEY_PREFIX: &str = "ci:";

/// The issue a PatchPilot branch belongs to: `patchpilot/issue-7` → 7.
pub fn issue_of_branch(branch: &str) -> Option<i64> {
    branch
        .strip_prefix(BRANCH_PREFIX)?
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_what_started_the_iteration() {
        let ci = IterationRequest::CiFailure {
            head_sha: "abc".into(),
            workflow_run_id: Some(5),
            check_suite_id: None,
        };
        assert_eq!(ci.key(), "ci:abc");
        // A workflow run and a check suite for the same head are the same round.
        let suite = IterationRequest::CiFailure {
            head_sha: "abc".into(),
            workflow_run_id: None,
            check_suite_id: Some(9),
        };
        assert_eq!(suite.key(), ci.key());
        assert_eq!(IterationRequest::Review { review_id: 3 }.key(), "review:3");
        let round_trip = IterationRequest::from_json(&ci.to_json()).unwrap();
        assert_eq!(round_trip, ci);
    }

    #[test]
    fn only_patchpilot_branches_name_an_issue() {
        assert_eq!(issue_of_branch("patchpilot/issue-12"), Some(12));
        assert_eq!(issue_of_branch("patchpilot/issue-0"), None);
        assert_eq!(issue_of_branch("patchpilot/issue-1x"), None);
        assert_eq!(issue_of_branch("feature/issue-12"), None);
    }
}

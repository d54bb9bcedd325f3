//! A session as the API shows it: the JSON of `GET /api/sessions`, `GET /api/sessions/{id}`
//! (plus its `logs` and `url`) and the event stream's `session` event.
//!
//! The wire format is the API's contract, kept apart from the stored record
//! ([`Session`]): the store may rename, split or group its fields without a client noticing,
//! and which fields the API shows is decided here. It keeps the seed prototype's camelCase
//! names (`repoUrl`, `bugDescription`, `reproCommand`, `status`, `patchDiff`, `prUrl`,
//! `errorMessage`, `createdAt`, `updatedAt`) and adds what GitHub sessions carry.
//! `tests/session_api.rs` pins every field name and value format.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{Session, SessionStatus, TriggerKind};

/// The JSON form of one session, borrowed from the record it shows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionJson<'a> {
    id: &'a str,
    repo_url: &'a str,
    /// Base branch; `null` means the repository's default branch.
    branch: Option<&'a str>,
    bug_description: &'a str,
    repro_command: Option<&'a str>,
    status: SessionStatus,
    patch_diff: Option<&'a str>,
    pr_url: Option<&'a str>,
    error_message: Option<&'a str>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The session's GitHub coordinates, flat as in the seed prototype; all three are `null`
    /// for API and local sessions.
    installation_id: Option<i64>,
    repository: Option<&'a str>,
    issue_number: Option<i64>,
    issue_title: Option<&'a str>,
    trigger_kind: TriggerKind,
    triggered_by: Option<&'a str>,
    trigger_comment_id: Option<i64>,
    delivery_id: Option<&'a str>,
    feedback: Option<&'a str>,
    attempt_count: i64,
    input_tokens: i64,
    output_tokens: i64,
    base_sha: Option<&'a str>,
    head_sha: Option<&'a str>,
    head_branch: Option<&'a str>,
    check_run_id: Option<i64>,
    progress_comment_id: Option<i64>,
    pr_number: Option<i64>,
    cancel_requested: bool,
    private: bool,
    parent_session_id: Option<&'a str>,
    iteration_key: Option<&'a str>,
    iteration_request: Option<&'a str>,
}

impl<'a> From<&'a Session> for SessionJson<'a> {
    fn from(session: &'a Session) -> Self {
        Self {
            id: &session.id,
            repo_url: &session.repo_url,
            branch: session.branch.as_deref(),
            bug_description: &session.bug_description,
            repro_command: session.repro_command.as_deref(),
            status: session.status,
            patch_diff: session.patch_diff.as_deref(),
            pr_url: session.pr_url.as_deref(),
            error_message: session.error_message.as_deref(),
            created_at: session.created_at,
            updated_at: session.updated_at,
            installation_id: session.github.as_ref().map(|g| g.installation_id),
            repository: session.github.as_ref().map(|g| g.repository.as_str()),
            issue_number: session.github.as_ref().map(|g| g.issue_number),
            issue_title: session.issue_title.as_deref(),
            trigger_kind: session.trigger_kind,
            triggered_by: session.triggered_by.as_deref(),
            trigger_comment_id: session.trigger_comment_id,
            delivery_id: session.delivery_id.as_deref(),
            feedback: session.feedback.as_deref(),
            attempt_count: session.attempt_count,
            input_tokens: session.input_tokens,
            output_tokens: session.output_tokens,
            base_sha: session.base_sha.as_deref(),
            head_sha: session.head_sha.as_deref(),
            head_branch: session.head_branch.as_deref(),
            check_run_id: session.check_run_id,
            progress_comment_id: session.progress_comment_id,
            pr_number: session.pr_number,
            cancel_requested: session.cancel_requested,
            private: session.private,
            parent_session_id: session.parent_session_id.as_deref(),
            iteration_key: session.iteration_key.as_deref(),
            iteration_request: session.iteration_request.as_deref(),
        }
    }
}

//! Before a session runs: its sender is checked against the rules of `crate::authorization`
//! (read through the collaborator-permission API when the job runs, label triggers too), and
//! only one session at a time works on an issue and its pull request's branch. A refused
//! sender gets a short reply, rate-limited per user and per issue (`reporter::reply_limited`),
//! so a crowd of drive-by triggers cannot flood the issue.

use crate::authorization;
use crate::github::client::ReactionTarget;
use crate::github::reporter::{reply_limited, reply_once};
use crate::github::types::CommentId;
use crate::report::messages::{already_running_reply, unauthorised_reply};
use crate::store::SessionPatch;
use crate::store::{Session, SessionStatus};
use crate::worker::JobError;

use crate::agent::deps::{PipelineDeps, public_session_link};
use crate::agent::progress::{Progress, github_ref};

/// Whether the session may run; refusals are recorded and answered here.
pub async fn authorize(deps: &PipelineDeps, session: &Session) -> Result<bool, JobError> {
    let Some(session_ref) = github_ref(session) else {
        return Ok(true); // API and CLI sessions: the API token already authorised them.
    };
    let Some(github) = &deps.github else {
        reject(
            deps,
            session,
            "the GitHub App is not configured on this server (GITHUB_APP_ID and its private key)",
        )
        .await;
        return Ok(false);
    };
    if let Some(login) = &session.triggered_by {
        let permission = github
            .permission(session_ref.installation, &session_ref.repo, login)
            .await
            .map_err(|err| JobError::Transient(err.to_string()))?;
        if !authorization::may_run_code(permission) {
            let s = &session_ref;
            if let Err(err) = reply_limited(
                github.as_ref(),
                s.installation,
                &s.repo,
                s.issue,
                "unauthorised",
                login,
                &unauthorised_reply(login),
                chrono::Utc::now(),
            )
            .await
            {
                tracing::warn!(error = %err, "could not post the unauthorised reply");
            }
            reject(
                deps,
                session,
                &format!(
                    "@{login} has {permission:?} permission; write, maintain or admin is required"
                ),
            )
            .await;
            return Ok(false);
        }
    }
    let repo = session_ref.repo.to_string();
    let active = other_active_session(deps, session, &repo, session_ref.issue.0 as i64)
        .await
        .map_err(|err| JobError::Transient(err.to_string()))?;
    if let Some(other) = active {
        let link = public_session_link(deps, &other);
        if let Err(err) = reply_once(
            github.as_ref(),
            session_ref.installation,
            &session_ref.repo,
            session_ref.issue,
            &format!("session-{}", session.id),
            &already_running_reply(&link),
        )
        .await
        {
            tracing::warn!(error = %err, "could not post the already-running reply");
        }
        reject(
            deps,
            session,
            &format!("session {} is already working on this issue", other.id),
        )
        .await;
        return Ok(false);
    }
    Ok(true)
}

/// The session that runs before this one on the same issue, pull request or branch, if any.
/// An issue's sessions and the rounds on its pull request all push to `patchpilot/issue-N`,
/// so only the oldest active one runs; a retry on the issue never races a round on the PR.
async fn other_active_session(
    deps: &PipelineDeps,
    session: &Session,
    repository: &str,
    number: i64,
) -> crate::store::StoreResult<Option<Session>> {
    let store = &deps.store;
    let branch_issue = match &session.parent_session_id {
        Some(parent) => store
            .get_session(parent)
            .await?
            .and_then(|first| first.github.map(|g| g.issue_number))
            .unwrap_or(number),
        None => number,
    };
    let same_thread = store.active_session_for_issue(repository, number).await?;
    let same_branch = store
        .active_session_on_branch(repository, branch_issue)
        .await?;
    Ok([same_thread, same_branch]
        .into_iter()
        .flatten()
        .find(|other| other.id != session.id))
}

async fn reject(deps: &PipelineDeps, session: &Session, why: &str) {
    tracing::info!(session = %session.id, reason = %why, "session rejected");
    let patch = SessionPatch {
        status: Some(SessionStatus::Rejected),
        error_message: Some(format!("Not started: {why}.")),
        ..SessionPatch::default()
    };
    deps.record(&session.id, &patch).await;
    if let Some(delivery) = &session.delivery_id
        && let Err(err) = deps
            .store
            .set_delivery_outcome(delivery, &format!("rejected: {why}"))
            .await
    {
        tracing::warn!(delivery = %delivery, error = %err, "could not record the delivery's outcome");
    }
}

/// 👀 on the triggering comment, or on the issue for a label.
pub async fn acknowledge(progress: &Progress, session: &Session) {
    let Some(reporter) = progress.reporter() else {
        return;
    };
    let target = match session.trigger_comment_id {
        Some(id) => ReactionTarget::Comment(CommentId(id as u64)),
        None => ReactionTarget::Issue(reporter.session().issue),
    };
    if let Err(err) = reporter.acknowledge(target).await {
        tracing::warn!(session = %session.id, error = %err, "could not add the 👀 reaction");
    }
}

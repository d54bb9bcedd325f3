//! Slash commands that do not start a session by themselves: cancel, status, help, and
//! feedback on a PatchPilot pull request (which starts a new iteration on the same branch).
//! The sender's permission is checked like for any trigger.

use crate::github::client::{GitHub, Reaction, ReactionTarget};
use crate::github::messages::{
    Outcome, PipelineStep, ProgressView, StepState, StepView, help_text, status_reply,
};
use crate::github::types::{CommentId, InstallationId, IssueNumber, RepoName};
use crate::session::{NewSession, Session, SessionEvent, SessionStatus, TriggerKind};
use crate::store::SessionFilter;
use crate::webhook::triggers::{CommandJob, CommandKind};
use crate::worker::JobError;

use super::progress::step_name;
use super::{PipelineDeps, session_url};

fn transient(err: impl std::fmt::Display) -> JobError {
    JobError::Transient(err.to_string())
}

pub async fn run_command(deps: &PipelineDeps, payload: &serde_json::Value) -> Result<(), JobError> {
    let job: CommandJob = serde_json::from_value(payload.clone())
        .map_err(|err| JobError::Permanent(format!("bad command payload: {err}")))?;
    let Some(github) = deps.github.clone() else {
        return Err(JobError::Permanent(
            "the GitHub App is not configured".to_owned(),
        ));
    };
    let repo = RepoName::parse(&job.repository)
        .ok_or_else(|| JobError::Permanent(format!("bad repository `{}`", job.repository)))?;
    let (inst, issue) = (
        InstallationId(job.installation_id as u64),
        IssueNumber(job.issue_number as u64),
    );
    let reply = |body: String| {
        let github = github.clone();
        let repo = repo.clone();
        async move {
            github
                .post_comment(inst, &repo, issue, &body)
                .await
                .map(|_| ())
                .map_err(transient)
        }
    };
    if job.command == CommandKind::Help {
        // Help is harmless: anyone may ask.
        return reply(help_text(&deps.label)).await;
    }
    let permission = github
        .permission(inst, &repo, &job.sender)
        .await
        .map_err(transient)?;
    if !permission.can_trigger() {
        tracing::info!(sender = %job.sender, "command refused: no write permission");
        return Ok(());
    }
    let active = deps
        .store
        .active_session_for_issue(&job.repository, job.issue_number)
        .await
        .map_err(transient)?;
    match job.command {
        CommandKind::Help => Ok(()),
        CommandKind::Cancel => match active {
            Some(session) => {
                deps.store
                    .request_cancel(&session.id)
                    .await
                    .map_err(transient)?;
                let _ = github
                    .add_reaction(
                        inst,
                        &repo,
                        ReactionTarget::Comment(CommentId(job.comment_id as u64)),
                        Reaction::Eyes,
                    )
                    .await;
                Ok(())
            }
            None => {
                reply("There is no running PatchPilot session on this issue to cancel.".to_owned())
                    .await
            }
        },
        CommandKind::Status => {
            let latest = match active {
                Some(session) => Some(session),
                None => latest_session(deps, &job).await?,
            };
            let view = match &latest {
                Some(session) => Some(status_view(deps, session).await?),
                None => None,
            };
            reply(status_reply(view.as_ref())).await
        }
        CommandKind::Feedback => feedback(deps, github.as_ref(), &job, inst, &repo, issue).await,
    }
}

async fn latest_session(
    deps: &PipelineDeps,
    job: &CommandJob,
) -> Result<Option<Session>, JobError> {
    let filter = SessionFilter {
        repository: Some(job.repository.clone()),
        issue_number: Some(job.issue_number),
        status: None,
        limit: 1,
    };
    Ok(deps
        .store
        .list_sessions(&filter)
        .await
        .map_err(transient)?
        .into_iter()
        .next())
}

/// Rebuilds a session's step states from its events (for `/patchpilot status`).
async fn status_view(deps: &PipelineDeps, session: &Session) -> Result<ProgressView, JobError> {
    let events = deps
        .store
        .events_after(&session.id, 0, 10_000)
        .await
        .map_err(transient)?;
    let steps = PipelineStep::ALL
        .iter()
        .map(|&step| StepView {
            step,
            state: step_state(step, &events),
            duration: None,
        })
        .collect();
    let outcome = match session.status {
        SessionStatus::Succeeded => Outcome::PullRequest {
            url: session.pr_url.clone().unwrap_or_default(),
        },
        SessionStatus::Cancelled => Outcome::Cancelled { by: None },
        SessionStatus::Queued | SessionStatus::Running => Outcome::InProgress,
        _ => Outcome::Stopped {
            reason: session.error_message.clone().unwrap_or_default(),
            remedy: "Comment `/patchpilot retry` to try again.".to_owned(),
        },
    };
    Ok(ProgressView {
        session_id: session.id.clone(),
        session_url: session_url(deps, &session.id),
        steps,
        outcome,
    })
}

fn step_state(step: PipelineStep, events: &[SessionEvent]) -> StepState {
    let name = step_name(step);
    let mine: Vec<&SessionEvent> = events
        .iter()
        .filter(|e| e.step == name && e.level != crate::session::EventLevel::Output)
        .collect();
    match mine.last() {
        None => StepState::Pending,
        Some(last) if last.level == crate::session::EventLevel::Error => StepState::Failed,
        Some(last) if last.message.starts_with("skipped:") => StepState::Skipped,
        Some(last) if last.message.ends_with('…') => StepState::Running,
        Some(_) => StepState::Done,
    }
}

/// `/patchpilot <feedback>` on a pull request PatchPilot opened: a new session for its issue.
async fn feedback(
    deps: &PipelineDeps,
    github: &dyn GitHub,
    job: &CommandJob,
    inst: InstallationId,
    repo: &RepoName,
    pr: IssueNumber,
) -> Result<(), JobError> {
    let pull = github.get_issue(inst, repo, pr).await.map_err(transient)?;
    let bot = github.bot_login().await.map_err(transient)?;
    let issue_number = pull
        .title
        .strip_prefix("Fix #")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|_| pull.author.eq_ignore_ascii_case(&bot));
    let Some(issue_number) = issue_number else {
        return github
            .post_comment(
                inst,
                repo,
                pr,
                "PatchPilot only takes feedback on pull requests it opened.",
            )
            .await
            .map(|_| ())
            .map_err(transient);
    };
    let new = NewSession {
        repo_url: job.clone_url.clone(),
        installation_id: Some(job.installation_id),
        repository: Some(job.repository.clone()),
        issue_number: Some(issue_number),
        trigger_kind: Some(TriggerKind::PullRequestFeedback),
        triggered_by: Some(job.sender.clone()),
        feedback: Some(job.text.clone()).filter(|t| !t.trim().is_empty()),
        ..NewSession::default()
    };
    let session = deps.store.create_session(new).await.map_err(transient)?;
    tracing::info!(session = %session.id, pr = %pr, "feedback session queued");
    let _ = github
        .add_reaction(
            inst,
            repo,
            ReactionTarget::Comment(CommentId(job.comment_id as u64)),
            Reaction::Eyes,
        )
        .await;
    Ok(())
}

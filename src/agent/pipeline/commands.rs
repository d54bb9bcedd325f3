//! Slash commands that do not start a session by themselves: cancel, status, help, and
//! what starts an iteration on a PatchPilot pull request (feedback, a review, its own failing
//! CI; see `iteration_start.rs`).
//! The sender's permission is checked like for any trigger. Help is answered to anyone, but
//! to people without write access only within the reply rate limit.

use crate::authorization::{self, Action, Verdict};
use crate::github::client::{Reaction, ReactionTarget};
use crate::github::reporter::{reply_limited, reply_once};
use crate::github::types::{CommentId, InstallationId, IssueNumber, RepoName};
use crate::report::messages::{help_text, status_reply};
use crate::report::{Outcome, PipelineStep, ProgressView, StepState, StepView};
use crate::store::SessionFilter;
use crate::store::{Session, SessionEvent, SessionStatus};
use crate::webhook::triggers::{CommandJob, CommandKind};
use crate::worker::JobError;

use super::iteration_start;
use crate::agent::deps::{PipelineDeps, public_session_link};
use crate::report::{start_message, step_name};

/// What a command asks for, in the terms of `crate::authorization`.
fn action_of(command: CommandKind) -> Action {
    match command {
        CommandKind::Help => Action::Help,
        CommandKind::Cancel => Action::Cancel,
        CommandKind::Status => Action::Status,
        CommandKind::Feedback | CommandKind::Review | CommandKind::CiFailure => Action::Round,
    }
}

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
    // Once per triggering comment: a command job run again after a crash does not reply twice.
    let reply_key = format!("comment-{}", job.comment_id);
    let reply = |body: String| {
        let github = github.clone();
        let repo = repo.clone();
        let key = reply_key.clone();
        async move {
            reply_once(github.as_ref(), inst, &repo, issue, &key, &body)
                .await
                .map(|_| ())
                .map_err(transient)
        }
    };
    let at = || iteration_start::Place { inst, repo: &repo };
    // CI rounds have no sender to check: the round runs the command a writer approved.
    if job.command == CommandKind::CiFailure {
        return iteration_start::ci_failure(deps, github.as_ref(), &job, at()).await;
    }
    let permission = github
        .permission(inst, &repo, &job.sender)
        .await
        .map_err(transient)?;
    let verdict = authorization::verdict(action_of(job.command), permission);
    if job.command == CommandKind::Help {
        if verdict == Verdict::Allowed {
            return reply(help_text(&deps.label)).await;
        }
        return reply_limited(
            github.as_ref(),
            inst,
            &repo,
            issue,
            "help",
            &job.sender,
            &help_text(&deps.label),
            chrono::Utc::now(),
        )
        .await
        .map(|_| ())
        .map_err(transient);
    }
    if verdict == Verdict::Refused {
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
        CommandKind::Feedback => iteration_start::feedback(deps, github.as_ref(), &job, at()).await,
        CommandKind::Review => iteration_start::review(deps, github.as_ref(), &job, at()).await,
        CommandKind::CiFailure => Ok(()),
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
    let running = session.status == SessionStatus::Running;
    let steps = step_states(&events, running)
        .into_iter()
        .map(|(step, state)| StepView {
            step,
            state,
            duration: None,
        })
        .collect();
    let outcome = match session.status {
        SessionStatus::Succeeded => Outcome::PullRequest {
            url: session.pr_url.clone().unwrap_or_default(),
        },
        SessionStatus::Cancelled => Outcome::Cancelled { by: None },
        SessionStatus::Queued => Outcome::Queued,
        SessionStatus::Running => Outcome::InProgress,
        _ => Outcome::Stopped {
            reason: session.error_message.clone().unwrap_or_default(),
            remedy: "Comment `/patchpilot retry` to try again.".to_owned(),
        },
    };
    Ok(ProgressView {
        session: public_session_link(deps, session),
        steps,
        outcome,
    })
}

/// Each step's state from the session's events. Steps run one after another (patch and
/// verify alternate), so in a running session the step started last is the running one and
/// every other started step is done, unless it logged an error or was skipped. A step's other
/// events (`$ command`, exit codes, output) say nothing about whether it finished.
pub(crate) fn step_states(
    events: &[SessionEvent],
    running: bool,
) -> Vec<(PipelineStep, StepState)> {
    use crate::store::EventLevel;
    let started = |step: PipelineStep| {
        let (name, marker) = (step_name(step), start_message(step));
        events
            .iter()
            .rposition(|e| e.step == name && e.level == EventLevel::Info && e.message == marker)
    };
    let last_started = PipelineStep::ALL
        .iter()
        .filter_map(|&step| started(step).map(|at| (at, step)))
        .max_by_key(|(at, _)| *at)
        .map(|(_, step)| step);
    PipelineStep::ALL
        .iter()
        .map(|&step| {
            let name = step_name(step);
            let mine = |e: &&SessionEvent| e.step == name && e.level != EventLevel::Output;
            let state = if events
                .iter()
                .filter(mine)
                .any(|e| e.message.starts_with("skipped:"))
            {
                StepState::Skipped
            } else if let Some(at) = started(step) {
                if events[at..]
                    .iter()
                    .filter(mine)
                    .any(|e| e.level == EventLevel::Error)
                {
                    StepState::Failed
                } else if running && last_started == Some(step) {
                    StepState::Running
                } else {
                    StepState::Done
                }
            } else {
                StepState::Pending
            };
            (step, state)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventLevel;

    fn events(list: &[(&str, EventLevel, &str)]) -> Vec<SessionEvent> {
        list.iter()
            .enumerate()
            .map(|(i, (step, level, message))| SessionEvent {
                id: i as i64 + 1,
                session_id: "s".into(),
                at: chrono::Utc::now(),
                step: (*step).into(),
                level: *level,
                message: (*message).into(),
            })
            .collect()
    }

    fn states(events: &[SessionEvent], running: bool) -> Vec<StepState> {
        step_states(events, running)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    #[test]
    fn the_running_repro_is_named_while_its_command_logs() {
        use EventLevel::{Error, Info, Output};
        let log = events(&[
            ("clone", Info, &start_message(PipelineStep::Clone)),
            ("clone", Info, "cloned main at abc"),
            ("reproduce", Info, &start_message(PipelineStep::Reproduce)),
            ("reproduce", Info, "$ sleep 600"),
            ("reproduce", Output, "zzz"),
        ]);
        use StepState::{Done, Failed, Pending, Running, Skipped};
        assert_eq!(
            states(&log, true),
            [Done, Running, Pending, Pending, Pending, Pending, Pending]
        );
        assert_eq!(
            states(&log, false)[1],
            Done,
            "a finished session has no running step"
        );
        let mut more = log.clone();
        more.extend(events(&[
            ("reproduce", Info, "exit code 1 after 1.0s"),
            ("localise", Info, &start_message(PipelineStep::Localise)),
            ("localise", Info, "3 candidates"),
            ("similar_fixes", Info, "skipped: no search configured"),
            ("patch", Info, &start_message(PipelineStep::Patch)),
            ("verify", Info, &start_message(PipelineStep::Verify)),
            ("verify", Error, "still failing"),
            ("patch", Info, &start_message(PipelineStep::Patch)),
        ]));
        let mut renumbered = more;
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.id = i as i64 + 1;
        }
        assert_eq!(
            states(&renumbered, true),
            [Done, Done, Done, Skipped, Running, Failed, Pending]
        );
    }
}

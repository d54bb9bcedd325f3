//! Running an iteration session and reporting it on the pull request.
//!
//! The reply is the session's progress comment on the pull request (one per round, edited in
//! place while the steps run); when the round ends it is rewritten to say what changed, with
//! the evidence, or why nothing was pushed. The check run is created only on a commit the
//! round pushed, so a failed round never paints the pull request's head red.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::finish::{remove_work_tree, set_status};
use crate::agent::deps::{PipelineDeps, public_session_link};
use crate::agent::progress::{Progress, github_ref};
use crate::agent::steps::iteration::{self, IterationState, Pushed, ask_of};
use crate::agent::steps::{StepEnv, Stop};
use crate::github::types::CommentId;
use crate::report::iteration::{
    CommentView, IterationAsk, IterationEnd, IterationReplyView, iteration_reply,
};
use crate::store::{Session, SessionStatus};
use crate::worker::JobError;

/// What maintainers can do after a round that pushed nothing.
const ASK_AGAIN: &str =
    "Comment `/patchpilot <what to change>` on this pull request to try again with more detail.";

pub async fn run_iteration(
    deps: &Arc<PipelineDeps>,
    session: &Session,
    progress: &mut Progress,
    cancel: CancellationToken,
) -> Result<(), JobError> {
    let work_dir = deps.work_root.join(&session.id);
    let git_dir = crate::agent::git::git_dir_for(&work_dir);
    remove_work_tree(&work_dir).await;
    remove_work_tree(&git_dir).await;
    let env = StepEnv::new(deps.clone(), session.clone(), work_dir.clone(), cancel);
    let mut state = IterationState::default();
    let result = iteration::run(&env, progress, &mut state).await;
    remove_work_tree(&work_dir).await;
    remove_work_tree(&git_dir).await;
    finish(deps, &env, progress, &state, result).await
}

async fn finish(
    deps: &PipelineDeps,
    env: &StepEnv,
    progress: &mut Progress,
    state: &IterationState,
    result: Result<Pushed, Stop>,
) -> Result<(), JobError> {
    let id = env.session.id.as_str();
    let end = match result {
        Ok(pushed) => {
            progress.finish_pull_request(&pushed.pr_url).await;
            IterationEnd::Pushed {
                head_sha: pushed.head_sha,
                previous_head: pushed.previous_head,
                files_changed: pushed.files_changed,
                summary: pushed.summary,
                repro_command: pushed.repro_command,
                output_after: pushed.output_after,
            }
        }
        Err(Stop::Transient(error)) => return Err(JobError::Transient(error)),
        Err(Stop::Cancelled) => {
            progress.fail_running("cancelled").await;
            progress.finish_cancelled(None).await;
            set_status(
                deps,
                id,
                SessionStatus::Cancelled,
                Some("Cancelled on request."),
            )
            .await;
            return Ok(());
        }
        Err(Stop::Failed { reason, .. } | Stop::NotReproduced { reason, .. }) => {
            progress.fail_running(&reason).await;
            progress.finish_stopped(&reason, ASK_AGAIN).await;
            IterationEnd::NotPushed {
                head_sha: state.start_head.clone(),
                reason,
                remedy: ASK_AGAIN.to_owned(),
            }
        }
    };
    let pushed = matches!(end, IterationEnd::Pushed { .. });
    let error = match &end {
        IterationEnd::NotPushed { reason, .. } => Some(reason.clone()),
        IterationEnd::Pushed { .. } => None,
    };
    reply(deps, env, progress, state, end).await;
    let status = if pushed {
        SessionStatus::Succeeded
    } else {
        SessionStatus::Failed
    };
    set_status(deps, id, status, error.as_deref()).await;
    Ok(())
}

/// Rewrites the round's comment with its outcome (the progress comment stays if that fails).
async fn reply(
    deps: &PipelineDeps,
    env: &StepEnv,
    progress: &Progress,
    state: &IterationState,
    end: IterationEnd,
) {
    let (Some(github), Some(s), Some(reporter)) =
        (&deps.github, github_ref(&env.session), progress.reporter())
    else {
        return;
    };
    let mut ask = match &state.request {
        Some(request) => ask_of(request, env),
        None => IterationAsk::Feedback {
            by: env.session.triggered_by.clone(),
        },
    };
    if let IterationAsk::Review { comments, .. } = &mut ask {
        *comments = state
            .comments
            .iter()
            .map(|c| CommentView {
                path: c.path.clone(),
                line: c.line,
                body: c.body.clone(),
                addressed: matches!(&end, IterationEnd::Pushed { files_changed, .. } if files_changed.contains(&c.path)),
            })
            .collect();
    }
    let view = IterationReplyView {
        session: public_session_link(deps, &env.session),
        branch: state.branch.clone().unwrap_or_default(),
        ask,
        end,
    };
    let body = iteration_reply(&view);
    let comment = match reporter.comment_id().await {
        Some(id) => Some(id),
        None => env
            .session
            .progress_comment_id
            .map(|id| CommentId(id as u64)),
    };
    let result = match comment {
        Some(id) => {
            github
                .update_comment(s.installation, &s.repo, id, &body)
                .await
        }
        None => github
            .post_comment(s.installation, &s.repo, s.issue, &body)
            .await
            .map(|_| ()),
    };
    if let Err(err) = result {
        tracing::warn!(session = %env.session.id, error = %err, "could not post the iteration reply");
    }
}

//! One session, start to finish: authorise, prepare, then the seven steps, then the outcome.
//!
//! Every way a session can end is a `Stop` with a sentence for the maintainer; only
//! transient infrastructure errors (GitHub 5xx, network) go back to the worker for a retry.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::authorize;
use super::finish::{remove_work_tree, set_status};
use crate::agent::deps::PipelineDeps;
use crate::agent::progress::Progress;
use crate::agent::steps::{self, StepEnv, Stop};
use crate::store::{Session, SessionStatus};
use crate::worker::JobError;

pub async fn run_session(
    deps: &Arc<PipelineDeps>,
    session_id: &str,
    cancel: CancellationToken,
) -> Result<(), JobError> {
    let store = &deps.store;
    let session = store
        .get_session(session_id)
        .await
        .map_err(|err| JobError::Transient(err.to_string()))?
        .ok_or_else(|| JobError::Permanent(format!("session {session_id} does not exist")))?;
    if !session.status.is_active() {
        return Ok(());
    }
    if !authorize::authorize(deps, &session).await? {
        return Ok(());
    }
    set_status(deps, session_id, SessionStatus::Running, None).await;
    let mut progress = Progress::for_session(deps, &session).await;
    authorize::acknowledge(&progress, &session).await;
    if session.cancel_requested {
        return finish(deps, &session, &mut progress, Err(Stop::Cancelled)).await;
    }
    if session.parent_session_id.is_some() {
        return super::iterate::run_iteration(deps, &session, &mut progress, cancel).await;
    }
    let work_dir = deps.work_root.join(session_id);
    let git_dir = crate::agent::git::git_dir_for(&work_dir);
    remove_work_tree(&work_dir).await;
    remove_work_tree(&git_dir).await;
    let env = StepEnv::new(deps.clone(), session.clone(), work_dir.clone(), cancel);
    let result = steps::run_all(&env, &mut progress).await;
    remove_work_tree(&work_dir).await;
    remove_work_tree(&git_dir).await;
    finish(deps, &session, &mut progress, result).await
}

async fn finish(
    deps: &PipelineDeps,
    session: &Session,
    progress: &mut Progress,
    result: Result<String, Stop>,
) -> Result<(), JobError> {
    let id = session.id.as_str();
    // GitHub is told first, then the status is stored: whoever sees the session finished (the
    // API, a test, the next trigger) sees its final comment and completed check runs too.
    match result {
        Ok(pr_url) => {
            progress.finish_pull_request(&pr_url).await;
            set_status(deps, id, SessionStatus::Succeeded, None).await;
            Ok(())
        }
        Err(Stop::NotReproduced { reason, remedy }) => {
            progress.finish_not_reproduced(&reason, &remedy).await;
            set_status(deps, id, SessionStatus::NotReproduced, Some(&reason)).await;
            Ok(())
        }
        Err(Stop::Failed { reason, remedy }) => {
            progress.fail_running(&reason).await;
            progress.finish_stopped(&reason, &remedy).await;
            set_status(deps, id, SessionStatus::Failed, Some(&reason)).await;
            Ok(())
        }
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
            Ok(())
        }
        Err(Stop::Transient(error)) => Err(JobError::Transient(error)),
    }
}

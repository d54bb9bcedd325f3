//! The pipeline: what a worker runs for a claimed job.
//!
//! A `session` job runs one session's seven steps (see `run.rs`); a `command` job carries out
//! a slash command that does not start a session by itself (`commands.rs`). Every step is
//! recorded as session events and shown on the issue (one progress comment edited in place)
//! and on the `PatchPilot` check run (`agent/progress.rs`). The steps themselves are in
//! `agent/steps/`, one file each. Steps are idempotent, so a job resumed
//! after a crash simply runs again: the progress comment is found by its marker, the branch is
//! force-pushed, an existing PR is reused.

mod authorize;
mod commands;
mod finish;
mod iterate;
mod iteration_start;
mod run;

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::agent::deps::PipelineDeps;
use crate::agent::progress::Progress;
use crate::store::{Job, JobKind, SessionPatch, SessionStatus};
use crate::worker::{JobError, JobHandler};

/// The `JobHandler` the worker runs.
pub struct Pipeline {
    deps: Arc<PipelineDeps>,
}

impl Pipeline {
    pub fn new(deps: PipelineDeps) -> Self {
        Self {
            deps: Arc::new(deps),
        }
    }

    pub fn deps(&self) -> &PipelineDeps {
        &self.deps
    }
}

#[async_trait]
impl JobHandler for Pipeline {
    async fn run(&self, job: &Job, cancel: CancellationToken) -> Result<(), JobError> {
        match (job.kind, &job.session_id) {
            (JobKind::Session, Some(session_id)) => {
                run::run_session(&self.deps, session_id, cancel).await
            }
            (JobKind::Session, None) => Err(JobError::Permanent(
                "a session job without a session".to_owned(),
            )),
            (JobKind::Command, _) => commands::run_command(&self.deps, &job.payload).await,
        }
    }

    async fn give_up(&self, job: &Job, error: &str) {
        let Some(session_id) = &job.session_id else {
            return;
        };
        let Ok(Some(session)) = self.deps.store.get_session(session_id).await else {
            return;
        };
        if !session.status.is_active() {
            return;
        }
        let message = format!("PatchPilot could not finish this session: {error}");
        // GitHub is told first, then the status is stored, as when a session ends normally:
        // whoever sees the session failed also sees the final comment and check run.
        let progress = Progress::for_session(&self.deps, &session).await;
        progress
            .finish_stopped(&message, "Comment `/patchpilot retry` to try again.")
            .await;
        let patch = SessionPatch {
            status: Some(SessionStatus::Failed),
            error_message: Some(message.clone()),
            ..SessionPatch::default()
        };
        self.deps.record(session_id, &patch).await;
    }
}

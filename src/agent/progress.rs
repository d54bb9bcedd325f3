//! Step tracking and reporting: session events always; on GitHub sessions also the progress
//! comment (edited in place) and the check run.
//!
//! Reporting never fails a session: a GitHub error here is logged (the client has already
//! retried), and the next update tries again. Ids of the comment and check run are stored so a
//! resumed session edits the same ones.

use std::time::{Duration, Instant};

use crate::github::client::{CheckConclusion, CheckStatus};
use crate::github::reporter::{Reporter, SessionRef};
use crate::github::types::{
    CheckRunId, CommentId, CommitSha, InstallationId, IssueNumber, RepoName,
};
use crate::report::messages::{
    CheckRunView, check_run_output, progress_comment, superseded_check_output,
};
use crate::report::{
    Outcome, PipelineStep, ProgressView, SessionLink, StepState, StepView, start_message, step_name,
};
use crate::store::SessionPatch;
use crate::store::Store;
use crate::store::{EventLevel, Session};

use super::deps::{PipelineDeps, public_session_link, record};

/// Tracks one session's steps and shows them wherever the session is visible.
pub struct Progress {
    store: std::sync::Arc<dyn Store>,
    session_id: String,
    session: SessionLink,
    reporter: Option<Reporter>,
    steps: Vec<StepView>,
    running_since: Option<Instant>,
    sandbox: String,
    /// Commit the check run is on: the base while working, the PR head once pushed.
    check_sha: Option<CommitSha>,
    pub repro_command: Option<String>,
    pub output_before: Option<String>,
    pub output_after: Option<String>,
}

impl Progress {
    /// Progress for `session`, reporting to GitHub when it came from GitHub and the App is set.
    pub async fn for_session(deps: &PipelineDeps, session: &Session) -> Self {
        let reporter = match (&deps.github, github_ref(session)) {
            (Some(github), Some(session_ref)) => {
                let check = match (&session.head_sha, &session.base_sha, session.check_run_id) {
                    (Some(sha), _, Some(id)) | (None, Some(sha), Some(id)) => {
                        Some((CommitSha(sha.clone()), CheckRunId(id as u64)))
                    }
                    _ => None,
                };
                let comment = session.progress_comment_id.map(|id| CommentId(id as u64));
                let reporter = Reporter::resume(github.clone(), session_ref, comment, check);
                // A crashed attempt may have left runs on these commits (see the reporter).
                let earlier = [&session.base_sha, &session.head_sha];
                reporter
                    .remember_commits(earlier.into_iter().flatten().cloned().map(CommitSha))
                    .await;
                Some(reporter)
            }
            _ => None,
        };
        Self {
            store: deps.store.clone(),
            session_id: session.id.clone(),
            session: public_session_link(deps, session),
            reporter,
            steps: PipelineStep::ALL
                .iter()
                .map(|&step| StepView {
                    step,
                    state: StepState::Pending,
                    duration: None,
                })
                .collect(),
            running_since: None,
            sandbox: deps.sandbox.describe(),
            check_sha: session
                .head_sha
                .clone()
                .or(session.base_sha.clone())
                .map(CommitSha),
            repro_command: session.repro_command.clone(),
            output_before: None,
            output_after: None,
        }
    }

    pub fn reporter(&self) -> Option<&Reporter> {
        self.reporter.as_ref()
    }

    /// How public text links this session (no link without a public URL).
    pub fn session_link(&self) -> SessionLink {
        self.session.clone()
    }

    /// Writes `patch` to the session's record; a failure is logged, not fatal.
    pub async fn record(&self, patch: &SessionPatch) {
        record(self.store.as_ref(), &self.session_id, patch).await;
    }

    /// Records an event for `step`; store failures are logged, not fatal.
    pub async fn log(&self, step: &str, level: EventLevel, message: &str) {
        if let Err(err) = self
            .store
            .append_event(&self.session_id, step, level, message)
            .await
        {
            tracing::warn!(session = %self.session_id, error = %err, "could not record an event");
        }
    }

    fn set(&mut self, step: PipelineStep, state: StepState) {
        let now = Instant::now();
        if let Some(view) = self.steps.iter_mut().find(|s| s.step == step) {
            view.state = state;
            view.duration = match state {
                StepState::Running => Some(Duration::ZERO),
                StepState::Pending | StepState::Skipped => None,
                StepState::Done | StepState::Failed => {
                    Some(self.running_since.map(|t| now - t).unwrap_or_default())
                }
            };
        }
        self.running_since = (state == StepState::Running).then_some(now);
    }

    pub async fn start(&mut self, step: PipelineStep) {
        self.set(step, StepState::Running);
        self.log(step_name(step), EventLevel::Info, &start_message(step))
            .await;
        self.publish(Outcome::InProgress).await;
    }

    pub async fn done(&mut self, step: PipelineStep, message: &str) {
        self.set(step, StepState::Done);
        self.log(step_name(step), EventLevel::Info, message).await;
    }

    pub async fn failed(&mut self, step: PipelineStep, message: &str) {
        self.set(step, StepState::Failed);
        self.log(step_name(step), EventLevel::Error, message).await;
    }

    pub async fn skipped(&mut self, step: PipelineStep, why: &str) {
        self.set(step, StepState::Skipped);
        self.log(
            step_name(step),
            EventLevel::Info,
            &format!("skipped: {why}"),
        )
        .await;
    }

    /// Marks the running step (if any) failed; used when a session stops mid-step.
    pub async fn fail_running(&mut self, message: &str) {
        if let Some(step) = self
            .steps
            .iter()
            .find(|s| s.state == StepState::Running)
            .map(|s| s.step)
        {
            self.failed(step, message).await;
        }
    }

    /// Moves the check run to the pushed PR head.
    pub fn set_check_commit(&mut self, sha: &str) {
        self.check_sha = Some(CommitSha(sha.to_owned()));
    }

    pub async fn finish_pull_request(&mut self, url: &str) {
        self.publish(Outcome::PullRequest {
            url: url.to_owned(),
        })
        .await;
    }

    pub async fn finish_stopped(&self, reason: &str, remedy: &str) {
        let outcome = Outcome::Stopped {
            reason: reason.to_owned(),
            remedy: remedy.to_owned(),
        };
        self.publish(outcome).await;
    }

    pub async fn finish_not_reproduced(&self, reason: &str, remedy: &str) {
        let outcome = Outcome::Stopped {
            reason: reason.to_owned(),
            remedy: remedy.to_owned(),
        };
        self.publish_with(outcome, Some(CheckConclusion::Neutral))
            .await;
    }

    pub async fn finish_cancelled(&self, by: Option<String>) {
        self.publish(Outcome::Cancelled { by }).await;
    }

    async fn publish(&self, outcome: Outcome) {
        self.publish_with(outcome, None).await;
    }

    /// Shows the current state on the issue and the check run.
    async fn publish_with(&self, outcome: Outcome, conclusion: Option<CheckConclusion>) {
        let Some(reporter) = &self.reporter else {
            return;
        };
        let view = ProgressView {
            session: self.session.clone(),
            steps: self.steps.clone(),
            outcome: outcome.clone(),
        };
        let mut patch = SessionPatch::default();
        match reporter.progress(&progress_comment(&view)).await {
            Ok(id) => patch.progress_comment_id = Some(id.0 as i64),
            Err(err) => {
                tracing::warn!(session = %self.session_id, error = %err, "could not update the progress comment")
            }
        }
        if let Some(sha) = &self.check_sha {
            let status = match (&outcome, conclusion) {
                (_, Some(conclusion)) => CheckStatus::Completed(conclusion),
                (Outcome::Queued, None) => CheckStatus::Queued,
                (Outcome::InProgress, None) => CheckStatus::InProgress,
                (Outcome::PullRequest { .. }, None) => {
                    CheckStatus::Completed(CheckConclusion::Success)
                }
                (Outcome::Stopped { .. }, None) => CheckStatus::Completed(CheckConclusion::Failure),
                (Outcome::Cancelled { .. }, None) => {
                    CheckStatus::Completed(CheckConclusion::Cancelled)
                }
            };
            let output = check_run_output(&CheckRunView {
                session: self.session.clone(),
                steps: self.steps.clone(),
                outcome,
                sandbox_tier: self.sandbox.clone(),
                repro_command: self.repro_command.clone(),
                output_before: self.output_before.clone(),
                output_after: self.output_after.clone(),
            });
            let superseded = superseded_check_output(&output, &sha.0);
            match reporter
                .check(sha, status, self.session.url.clone(), output, superseded)
                .await
            {
                Ok(id) => patch.check_run_id = Some(id.0 as i64),
                Err(err) => {
                    tracing::warn!(session = %self.session_id, error = %err, "could not update the check run")
                }
            }
        }
        if patch != SessionPatch::default() {
            self.record(&patch).await;
        }
    }
}

/// The GitHub coordinates of a session, when it has them.
pub fn github_ref(session: &Session) -> Option<SessionRef> {
    let github = session.github.as_ref()?;
    Some(SessionRef {
        installation: InstallationId(u64::try_from(github.installation_id).ok()?),
        repo: RepoName::parse(&github.repository)?,
        issue: IssueNumber(u64::try_from(github.issue_number).ok()?),
        session_id: session.id.clone(),
    })
}

//! The pipeline: what a worker runs for a claimed job.
//!
//! A `session` job runs one session's seven steps (see `run.rs`); a `command` job carries out
//! a slash command that does not start a session by itself (`commands.rs`). Every step is
//! recorded as session events and shown on the issue (one progress comment edited in place)
//! and on the `PatchPilot` check run (`progress.rs`). Steps are idempotent, so a job resumed
//! after a crash simply runs again: the progress comment is found by its marker, the branch is
//! force-pushed, an existing PR is reused.

mod authorize;
mod commands;
mod iterate;
mod iteration_start;
pub mod progress;
mod run;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::agent::git::RepoCache;
use crate::github::client::GitHub;
use crate::llm::{Model, SessionBudget};
use crate::report::SessionLink;
use crate::sandbox::{Limits, Sandbox};
use crate::store::SessionPatch;
use crate::store::{Job, Store};
use crate::store::{Session, SessionStatus};
use crate::worker::{JobError, JobHandler};

pub use progress::Progress;
pub use run::Stop;

/// Everything the pipeline needs from the outside world.
pub struct PipelineDeps {
    pub store: Arc<dyn Store>,
    /// `None` when the GitHub App is not configured (API and CLI sessions still run).
    pub github: Option<Arc<dyn GitHub>>,
    /// `None` when no model is configured: sessions stop before the patch step, saying so.
    pub model: Option<Arc<dyn Model>>,
    /// Web search for similar fixes; `None` without `EXA_API_KEY`.
    pub exa: Option<crate::agent::exa::ExaClient>,
    pub sandbox: Arc<dyn Sandbox>,
    pub repo_cache: RepoCache,
    /// Per-session work trees are created (and removed) under this directory.
    pub work_root: PathBuf,
    pub public_url: Option<url::Url>,
    /// Signs links to private repositories' session pages (from the webhook secret).
    pub link_signer: Option<crate::session::links::LinkSigner>,
    /// The trigger label, for help texts.
    pub label: String,
    /// Server-wide sandbox limits; the repository config may lower the timeout.
    pub limits: Limits,
    pub budget: SessionBudget,
}

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
        match (job.kind.as_str(), &job.session_id) {
            ("session", Some(session_id)) => run::run_session(&self.deps, session_id, cancel).await,
            ("command", _) => commands::run_command(&self.deps, &job.payload).await,
            (kind, _) => Err(JobError::Permanent(format!("unknown job kind `{kind}`"))),
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
        let patch = SessionPatch {
            status: Some(SessionStatus::Failed),
            error_message: Some(message.clone()),
            ..SessionPatch::default()
        };
        if let Err(err) = self.deps.store.update_session(session_id, &patch).await {
            tracing::error!(session = %session_id, error = %err, "could not mark the session failed");
        }
        let progress = Progress::for_session(&self.deps, &session).await;
        progress
            .finish_stopped(&message, "Comment `/patchpilot retry` to try again.")
            .await;
    }
}

/// How public text on GitHub links a session: its page only when `PATCHPILOT_PUBLIC_URL` is
/// set (a relative link on GitHub points at github.com). The one place to swap in a signed
/// link for private repositories.
pub fn public_session_link(deps: &PipelineDeps, session: &Session) -> SessionLink {
    SessionLink {
        id: session.id.clone(),
        url: crate::session::links::session_link(
            deps.public_url.as_ref(),
            &session.id,
            session.private,
            deps.link_signer.as_ref(),
            chrono::Utc::now(),
        ),
    }
}

/// Link to a session's live page (for the API and local runs, where a relative link is fine).
pub fn session_url(deps: &PipelineDeps, session_id: &str) -> String {
    crate::session::links::session_page_url(deps.public_url.as_ref(), session_id)
}

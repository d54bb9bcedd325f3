//! What the pipeline and its steps use of the outside world, and the one place a session's
//! record is written from them.

use std::path::PathBuf;
use std::sync::Arc;

use crate::agent::git::RepoCache;
use crate::github::client::GitHub;
use crate::llm::{Model, SessionBudget};
use crate::report::SessionLink;
use crate::sandbox::{Limits, Sandbox};
use crate::store::{Session, SessionPatch, Store};

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

impl PipelineDeps {
    /// Writes `patch` to the session's record (see [`record`]).
    pub async fn record(&self, session_id: &str, patch: &SessionPatch) {
        record(self.store.as_ref(), session_id, patch).await;
    }
}

/// Writes `patch` to a session's record: the one place the pipeline and its steps do. The
/// pipeline never stops on a failed write (the step's work is done; the record catches up on
/// the next write or on resume), so the failure is logged here, once, for every caller.
pub async fn record(store: &dyn Store, session_id: &str, patch: &SessionPatch) {
    if let Err(err) = store.update_session(session_id, patch).await {
        tracing::error!(session = %session_id, error = %err, "could not store the session's progress");
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

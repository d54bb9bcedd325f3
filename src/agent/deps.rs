//! What the pipeline and its steps use of the outside world, the one way to assemble it, and
//! the one place a session's record is written from them.
//!
//! `serve`, `run`, the end-to-end tests and the benches all get their [`PipelineDeps`] from
//! [`PipelineDeps::builder`]. Its defaults are `serve`'s with default settings: no GitHub App,
//! no model, no web search, no public URL (so no signed links), the `patchpilot` label, the
//! default sandbox limits and session budget. The layout of the data directory lives in
//! [`DataDir`], and how links are signed in [`PipelineDepsBuilder::webhook_secrets`]; a caller
//! sets only what it configures (`app::pipeline_deps` sets everything `serve`'s settings name).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::agent::exa::ExaClient;
use crate::agent::git::RepoCache;
use crate::github::client::GitHub;
use crate::llm::{Model, SessionBudget};
use crate::report::SessionLink;
use crate::sandbox::{Limits, Sandbox, SandboxArgs};
use crate::session::links::LinkSigner;
use crate::store::{Session, SessionPatch, Store};
use crate::webhook::signature::WebhookSecrets;

/// The trigger label when none is configured (`PATCHPILOT_LABEL`'s default).
pub const DEFAULT_LABEL: &str = "patchpilot";

/// Everything the pipeline needs from the outside world. Built with [`PipelineDeps::builder`].
pub struct PipelineDeps {
    pub store: Arc<dyn Store>,
    /// `None` when the GitHub App is not configured (API and CLI sessions still run).
    pub github: Option<Arc<dyn GitHub>>,
    /// `None` when no model is configured: sessions stop before the patch step, saying so.
    pub model: Option<Arc<dyn Model>>,
    /// Web search for similar fixes; `None` without `EXA_API_KEY`.
    pub exa: Option<ExaClient>,
    pub sandbox: Arc<dyn Sandbox>,
    pub repo_cache: RepoCache,
    /// Per-session work trees are created (and removed) under this directory.
    pub work_root: PathBuf,
    pub public_url: Option<url::Url>,
    /// Signs links to private repositories' session pages (from the webhook secret).
    pub link_signer: Option<LinkSigner>,
    /// The trigger label, for help texts.
    pub label: String,
    /// Server-wide sandbox limits; the repository config may lower the timeout.
    pub limits: Limits,
    pub budget: SessionBudget,
}

impl PipelineDeps {
    /// `serve`'s wiring with default settings, on `store`, `sandbox` and `data_dir` (see the
    /// module docs); the setters change only what a caller configures.
    pub fn builder(
        store: Arc<dyn Store>,
        sandbox: Arc<dyn Sandbox>,
        data_dir: &DataDir,
    ) -> PipelineDepsBuilder {
        PipelineDepsBuilder {
            deps: PipelineDeps {
                store,
                github: None,
                model: None,
                exa: None,
                sandbox,
                repo_cache: RepoCache::new(data_dir.repos()),
                work_root: data_dir.work(),
                public_url: None,
                link_signer: None,
                label: DEFAULT_LABEL.to_owned(),
                limits: Limits::default(),
                budget: SessionBudget::default(),
            },
        }
    }

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

/// Assembles [`PipelineDeps`]; see [`PipelineDeps::builder`].
pub struct PipelineDepsBuilder {
    deps: PipelineDeps,
}

impl PipelineDepsBuilder {
    /// The GitHub App client; `None` (the default) runs API and CLI sessions only.
    pub fn github(mut self, github: Option<Arc<dyn GitHub>>) -> Self {
        self.deps.github = github;
        self
    }

    /// The model; `None` (the default) stops sessions before the patch step.
    pub fn model(mut self, model: Option<Arc<dyn Model>>) -> Self {
        self.deps.model = model;
        self
    }

    /// Web search for similar fixes; `None` by default.
    pub fn exa(mut self, exa: Option<ExaClient>) -> Self {
        self.deps.exa = exa;
        self
    }

    /// `PATCHPILOT_PUBLIC_URL`: without it (the default) comments link no session page.
    pub fn public_url(mut self, public_url: Option<url::Url>) -> Self {
        self.deps.public_url = public_url;
        self
    }

    /// Links to private repositories' session pages are signed with keys derived from the
    /// webhook secrets (all of them during a rotation; the first signs), the same keys the
    /// server checks them with. Without secrets (the default) no link is signed.
    pub fn webhook_secrets(mut self, secrets: Option<&WebhookSecrets>) -> Self {
        self.deps.link_signer = secrets.and_then(WebhookSecrets::link_signer);
        self
    }

    /// The trigger label named in help texts; [`DEFAULT_LABEL`] by default.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.deps.label = label.into();
        self
    }

    /// Server-wide sandbox limits; [`Limits::default`] by default.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.deps.limits = limits;
        self
    }

    /// Each session's model budget; [`SessionBudget::default`] by default.
    pub fn budget(mut self, budget: SessionBudget) -> Self {
        self.deps.budget = budget;
        self
    }

    pub fn build(self) -> PipelineDeps {
        self.deps
    }
}

/// `PATCHPILOT_DATA_DIR` and what lives under it, the one home of its layout:
/// - `repos/`: the repository cache (a bare mirror per repository, and its localiser indexes);
/// - `work/`: one work tree per running session, removed when the session ends;
/// - `caches/`: the dependency caches, unless `PATCHPILOT_CACHE_DIR` names another directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Creates the directory (and `work/`) if needed. The path is made absolute, because work
    /// trees are handed to sandboxed commands that run elsewhere.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        std::fs::create_dir_all(path.join("work")).with_context(|| {
            format!("could not create {} (PATCHPILOT_DATA_DIR)", path.display())
        })?;
        let root = path.canonicalize().with_context(|| {
            format!("could not resolve {} (PATCHPILOT_DATA_DIR)", path.display())
        })?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The repository cache's directory.
    pub fn repos(&self) -> PathBuf {
        self.root.join("repos")
    }

    /// Where sessions' work trees are created.
    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    /// The dependency caches' default directory.
    pub fn caches(&self) -> PathBuf {
        self.root.join("caches")
    }

    /// `args` with the cache directory defaulting to [`DataDir::caches`].
    pub fn sandbox_args(&self, args: &SandboxArgs) -> SandboxArgs {
        let mut args = args.clone();
        args.cache_dir.get_or_insert_with(|| self.caches());
        args
    }
}

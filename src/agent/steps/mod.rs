//! The pipeline steps, one file each. A step takes what it needs and returns what it
//! produced; [`run_all`] passes each output on to the steps that read it:
//!
//! prepare → [`Prepared`] (issue, repository config, repro command) · clone → [`Cloned`] ·
//! reproduce → [`Reproduced`] · localise → [`Localised`] · similar fixes → [`SimilarFixes`] ·
//! patch + verify → [`Patched`] (one loop: each failed verification goes back to the model) ·
//! publish → the pull request's URL.
//!
//! Every step also gets the [`StepEnv`] (the outside world, the session as claimed, its
//! directories and cancel token, all read-only) and the session's [`Progress`]. Each returns
//! `Err(Stop)` to end the session with a reason. A new step is a new file here, its output
//! type, a line in [`run_all`], and its label in `report::model`.

mod clone;
pub mod iteration;
pub mod iteration_request;
mod localise;
mod patch;
mod prepare;
mod publish;
mod reproduce;
mod similar;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::agent::deps::PipelineDeps;
use crate::agent::git;
use crate::agent::progress::Progress;
use crate::github::client::GitHubError;
use crate::report::Outcome;
use crate::sandbox::{RunOutcome, SandboxCommand, SandboxError};
use crate::session::repo_config::RepoConfig;
use crate::store::{EventLevel, Session, SessionPatch};

pub use clone::Cloned;
pub use localise::Localised;
pub use patch::Patched;
pub use prepare::Prepared;
pub use reproduce::Reproduced;
pub use similar::SimilarFixes;

/// At most this many output lines of one command are recorded as events (all of the output
/// is still captured, bounded, for the model and the reports).
const MAX_STREAMED_LINES: usize = 400;

/// Why a session stopped short of a pull request.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The repro command passed before any change.
    NotReproduced {
        reason: String,
        remedy: String,
    },
    /// It stopped; `reason` says exactly why, `remedy` what the maintainer can do.
    Failed {
        reason: String,
        remedy: String,
    },
    Cancelled,
    /// An infrastructure hiccup: the job is retried later.
    Transient(String),
}

impl Stop {
    pub fn failed(reason: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self::Failed {
            reason: reason.into(),
            remedy: remedy.into(),
        }
    }

    /// A stop worded by `report::messages` (which returns `Outcome::Stopped`).
    pub fn from_outcome(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Stopped { reason, remedy } => Self::Failed { reason, remedy },
            other => Self::failed(format!("{other:?}"), String::new()),
        }
    }
}

/// What every step may use and none may change: the outside world, the session as it was
/// claimed, its directories and its cancel token.
pub struct StepEnv {
    pub deps: Arc<PipelineDeps>,
    pub session: Session,
    pub work_dir: PathBuf,
    /// The session's bare git directory, outside the work tree (see `agent::git`).
    pub git_dir: PathBuf,
    pub cancel: CancellationToken,
}

impl StepEnv {
    pub fn new(
        deps: Arc<PipelineDeps>,
        session: Session,
        work_dir: PathBuf,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            deps,
            session,
            git_dir: git::git_dir_for(&work_dir),
            work_dir,
            cancel,
        }
    }

    /// Writes `patch` to the session's record; a failure is logged once, not fatal.
    pub async fn record(&self, patch: SessionPatch) {
        self.deps.record(&self.session.id, &patch).await;
    }

    pub fn check_cancel(&self) -> Result<(), Stop> {
        if self.cancel.is_cancelled() {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Runs `script` in the sandbox in the work tree, streaming its first lines as events.
    /// `config` is the repository's: its environment and its (tighter) limits apply.
    pub async fn sandboxed(
        &self,
        progress: &Progress,
        config: &RepoConfig,
        step: &str,
        script: &str,
        network: bool,
    ) -> Result<RunOutcome, Stop> {
        let mut command = SandboxCommand::new(script, self.work_dir.clone());
        command.network = network;
        command.env = config.env.clone();
        // Python checks cached bytecode by source mtime (whole seconds) and size: an edit of
        // the same size within a second of the repro run would be verified against the old
        // code. Not writing bytecode in the sandbox keeps every run on the current source.
        command
            .env
            .entry("PYTHONDONTWRITEBYTECODE".to_owned())
            .or_insert_with(|| "1".to_owned());
        command.limits = self.deps.limits.clone();
        // This repository's dependency caches: filled by set-up, read by every later run.
        command.cache = Some(self.session.repo_url.clone());
        // The repository may tighten the operator's limits, never loosen them.
        let repo = &config.limits;
        let limits = &mut command.limits;
        limits.timeout = limits
            .timeout
            .min(std::time::Duration::from_secs(repo.timeout_seconds));
        limits.memory_bytes = limits
            .memory_bytes
            .min(repo.memory_mb.saturating_mul(1024 * 1024));
        limits.max_processes = limits.max_processes.min(u64::from(repo.max_processes));
        limits.output_bytes = limits
            .output_bytes
            .min(usize::try_from(repo.max_output_kb.saturating_mul(1024)).unwrap_or(usize::MAX));
        progress
            .log(step, EventLevel::Info, &format!("$ {script}"))
            .await;
        let (lines, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let sandbox = self.deps.sandbox.clone();
        let cancel = self.cancel.clone();
        let run = tokio::spawn(async move { sandbox.run(command, Some(lines), cancel).await });
        let mut streamed = 0usize;
        while let Some(line) = receiver.recv().await {
            streamed += 1;
            if streamed <= MAX_STREAMED_LINES {
                progress.log(step, EventLevel::Output, &line).await;
            } else if streamed == MAX_STREAMED_LINES + 1 {
                progress
                    .log(
                        step,
                        EventLevel::Output,
                        "… (further lines are kept in the captured output only)",
                    )
                    .await;
            }
        }
        let outcome = run
            .await
            .map_err(|err| {
                Stop::failed(
                    format!("the sandbox task failed: {err}"),
                    "This is a PatchPilot bug; please report it.",
                )
            })?
            .map_err(sandbox_stop)?;
        if outcome.cancelled {
            return Err(Stop::Cancelled);
        }
        let summary = match (outcome.exit_code, outcome.signal, outcome.timed_out) {
            (_, _, true) => format!("timed out after {:.0?}", outcome.duration),
            (Some(code), _, _) => format!("exit code {code} after {:.1?}", outcome.duration),
            (None, Some(signal), _) => format!("killed by signal {signal}"),
            (None, None, false) => "ended".to_owned(),
        };
        progress.log(step, EventLevel::Info, &summary).await;
        Ok(outcome)
    }
}

fn sandbox_stop(err: SandboxError) -> Stop {
    match err {
        SandboxError::Refused => Stop::failed(
            err.to_string(),
            "Ask the operator to install bubblewrap (or enable Landlock) on the PatchPilot server.",
        ),
        other => Stop::failed(
            format!("the sandbox could not run the command: {other}"),
            "Ask the PatchPilot operator to check the server logs.",
        ),
    }
}

/// GitHub errors: retry the job on 5xx, rate limits and network errors; stop otherwise.
pub fn github_stop(err: GitHubError, what: &str) -> Stop {
    match err.status() {
        None | Some(429) | Some(500..=599) => Stop::Transient(format!("{what}: {err}")),
        Some(_) => Stop::failed(
            format!("{what}: {err}"),
            "Check that the PatchPilot App is installed on this repository with its permissions, then comment `/patchpilot retry`.",
        ),
    }
}

/// Runs the steps in order, each on what the earlier ones produced.
pub async fn run_all(env: &StepEnv, progress: &mut Progress) -> Result<String, Stop> {
    let mut prepared = prepare::run(env, progress).await?;
    env.check_cancel()?;
    let cloned = clone::run(env, progress, &prepared).await?;
    if let Some(config) = cloned.repo_config.clone() {
        prepared.config = config;
    }
    env.check_cancel()?;
    let reproduced = reproduce::run(env, progress, &prepared).await?;
    env.check_cancel()?;
    let localised = localise::run(env, progress, &prepared, &cloned, &reproduced).await?;
    env.check_cancel()?;
    let similar = similar::run(env, progress, &prepared, &reproduced).await;
    env.check_cancel()?;
    let input = patch::PatchInput {
        prepared: &prepared,
        cloned: &cloned,
        reproduced: &reproduced,
        localised: &localised,
        similar: &similar,
    };
    let patched = patch::run(env, progress, &input).await?;
    env.check_cancel()?;
    let url = publish::run(env, progress, &prepared, &cloned, &patched).await?;
    match patched.unverified {
        // Out of attempts with `draft: true`: the last attempt became a draft PR.
        Some(Stop::Failed { reason, remedy }) => Err(Stop::failed(
            format!("{reason}; the last attempt is in draft pull request {url}"),
            remedy,
        )),
        Some(stop) => Err(stop),
        None => Ok(url),
    }
}

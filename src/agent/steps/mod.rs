//! The pipeline steps, one file each, sharing a [`SessionContext`].
//!
//! Order: prepare (issue, repository config, repro command), clone, reproduce, localise,
//! similar fixes, patch + verify (one loop: each failed verification goes back to the model),
//! publish. Each returns `Err(Stop)` to end the session with a reason.

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

use crate::agent::edits::AppliedFile;
use crate::agent::git::{self, GitAuth};
use crate::agent::localize::Candidate;
use crate::agent::pipeline::{PipelineDeps, Progress, Stop};
use crate::agent::prompt::{RepoInstructions, SimilarFix};
use crate::github::client::GitHubError;
use crate::sandbox::{RunOutcome, SandboxCommand, SandboxError};
use crate::session::repo_config::RepoConfig;
use crate::store::{EventLevel, Session};

/// At most this many output lines of one command are recorded as events (all of the output
/// is still captured, bounded, for the model and the reports).
const MAX_STREAMED_LINES: usize = 400;

/// What the steps know about the session as it advances.
pub struct SessionContext {
    pub deps: Arc<PipelineDeps>,
    pub session: Session,
    pub work_dir: PathBuf,
    /// The session's bare git directory, outside the work tree (see `agent::git`).
    pub git_dir: PathBuf,
    /// The base commit the work tree was checked out at (set by the clone step).
    pub base_sha: String,
    pub cancel: CancellationToken,
    pub config: RepoConfig,
    pub auth: GitAuth,
    pub clone_url: String,
    pub base_branch: String,
    pub repro: String,
    pub title: String,
    pub description: String,
    pub failing_output: String,
    pub candidates: Vec<Candidate>,
    pub similar: Vec<SimilarFix>,
    pub instructions: Option<RepoInstructions>,
    pub changed_files: Vec<String>,
    /// What the applied edits read and wrote, per changed file: publishing commits these
    /// bytes and checks the work tree still holds them.
    pub applied: Vec<AppliedFile>,
    pub diff: String,
    pub passing_output: String,
    pub summary: String,
    /// The last reply whose edits applied but did not pass verification.
    pub last_unverified_reply: Option<String>,
    pub model_name: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl SessionContext {
    pub fn new(
        deps: Arc<PipelineDeps>,
        session: Session,
        work_dir: PathBuf,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            clone_url: session.repo_url.clone(),
            title: session.issue_title.clone().unwrap_or_default(),
            description: session.bug_description.clone(),
            repro: session.repro_command.clone().unwrap_or_default(),
            base_branch: session.branch.clone().unwrap_or_else(|| "main".to_owned()),
            deps,
            session,
            git_dir: git::git_dir_for(&work_dir),
            base_sha: String::new(),
            work_dir,
            cancel,
            config: RepoConfig::default(),
            auth: GitAuth::anonymous(),
            failing_output: String::new(),
            candidates: Vec::new(),
            similar: Vec::new(),
            instructions: None,
            changed_files: Vec::new(),
            applied: Vec::new(),
            diff: String::new(),
            passing_output: String::new(),
            summary: String::new(),
            last_unverified_reply: None,
            model_name: String::new(),
            input_tokens: 0,
            output_tokens: 0,
        }
    }

    pub fn check_cancel(&self) -> Result<(), Stop> {
        if self.cancel.is_cancelled() {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Runs `script` in the sandbox in the work tree, streaming its first lines as events.
    pub async fn sandboxed(
        &self,
        progress: &Progress,
        step: &str,
        script: &str,
        network: bool,
    ) -> Result<RunOutcome, Stop> {
        let mut command = SandboxCommand::new(script, self.work_dir.clone());
        command.network = network;
        command.env = self.config.env.clone();
        // Python checks cached bytecode by source mtime (whole seconds) and size: an edit of
        // the same size within a second of the repro run would be verified against the old
        // code. Not writing bytecode in the sandbox keeps every run on the current source.
        command
            .env
            .entry("PYTHONDONTWRITEBYTECODE".to_owned())
            .or_insert_with(|| "1".to_owned());
        command.limits = self.deps.limits.clone();
        // This repository's dependency caches: filled by set-up, read by every later run.
        command.cache = Some(self.clone_url.clone());
        // The repository may tighten the operator's limits, never loosen them.
        let repo = &self.config.limits;
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

/// Runs the steps in order.
pub async fn run_all(ctx: &mut SessionContext, progress: &mut Progress) -> Result<String, Stop> {
    prepare::run(ctx, progress).await?;
    ctx.check_cancel()?;
    clone::run(ctx, progress).await?;
    ctx.check_cancel()?;
    reproduce::run(ctx, progress).await?;
    ctx.check_cancel()?;
    localise::run(ctx, progress).await?;
    ctx.check_cancel()?;
    similar::run(ctx, progress).await;
    ctx.check_cancel()?;
    match patch::run(ctx, progress).await {
        Ok(()) => {}
        // Out of attempts: with `draft: true` the last attempt still becomes a draft PR.
        Err(Stop::Failed { reason, remedy })
            if ctx.config.draft && patch::reapply_last(ctx).await =>
        {
            let url = publish::run(ctx, progress, Some(&reason)).await?;
            return Err(Stop::failed(
                format!("{reason}; the last attempt is in draft pull request {url}"),
                remedy,
            ));
        }
        Err(stop) => return Err(stop),
    }
    ctx.check_cancel()?;
    publish::run(ctx, progress, None).await
}

//! `patchpilot run`: the whole pipeline on a local path or URL, without GitHub.
//!
//! The session is recorded in the same store as the server's (so it shows on the live page if
//! a server shares the database) and its events are printed as they happen. The verified diff
//! is printed at the end; nothing is pushed anywhere.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::agent::deps::{DataDir, PipelineDeps};
use crate::agent::pipeline::Pipeline;
use crate::llm::ModelArgs;
use crate::sandbox::SandboxArgs;
use crate::store::DatabaseArgs;
use crate::store::{EventLevel, NewSession, SessionStatus, TriggerKind};
use crate::worker::JobHandler;
use crate::worker::WorkerArgs;

/// `patchpilot run` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The repository: a local path or a clone URL.
    #[arg(long)]
    pub repo: String,
    /// What is wrong (the issue text).
    #[arg(long)]
    pub description: String,
    /// A command that fails because of the bug, and passes once it is fixed.
    #[arg(long)]
    pub repro: String,
    /// Base branch (default: the checked-out branch of a local repository, else `main`).
    #[arg(long)]
    pub branch: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Runs one session locally; `Ok(true)` when a verified fix was found.
pub async fn run_local(args: RunArgs) -> anyhow::Result<bool> {
    let store = crate::app::open_store(&args.database.database_url).await?;
    let (repo_url, branch) = resolve_repo(&args)?;
    let model = crate::llm::from_args(&args.model).map_err(|err| anyhow::anyhow!("{err}"))?;
    let data_dir = DataDir::create(&args.worker.data_dir)?;
    let sandbox = crate::app::probe_sandbox(&args.sandbox, &data_dir).await?;
    eprintln!("sandbox: {}", sandbox.describe());
    // No GitHub, no web search, no public page: the session is printed here.
    let deps = PipelineDeps::builder(store.clone(), sandbox, &data_dir)
        .model(model)
        .limits(args.sandbox.limits())
        .budget(args.model.budget())
        .build();
    let pipeline = Pipeline::new(deps);
    let session = store
        .create_session(NewSession {
            repo_url,
            branch: Some(branch),
            bug_description: args.description.clone(),
            repro_command: Some(args.repro.clone()),
            trigger_kind: Some(TriggerKind::Cli),
            ..NewSession::default()
        })
        .await?;
    eprintln!("session {}", session.id);
    let job = store
        .claim_session_job(&session.id, "cli", Duration::from_secs(3600))
        .await?
        .context("the session's job was taken by a server worker sharing this database")?;
    let cancel = CancellationToken::new();
    let printer = tokio::spawn(print_events(store.clone(), session.id.clone()));
    let ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("cancelling…");
                cancel.cancel();
            }
        })
    };
    let result = pipeline.run(&job, cancel).await;
    ctrl_c.abort();
    let outcome = match &result {
        Ok(()) => crate::store::JobOutcome::Done,
        Err(err) => crate::store::JobOutcome::Failed(err.to_string()),
    };
    store.finish_job(job.id, "cli", &outcome).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    printer.abort();
    let session = store
        .get_session(&session.id)
        .await?
        .context("session vanished")?;
    println!("\nstatus: {}", session.status);
    if let Some(error) = &session.error_message {
        println!("{error}");
    }
    if let Some(diff) = session.patch_diff.as_deref().filter(|d| !d.is_empty()) {
        println!("\n{diff}");
    }
    result.map_err(|err| anyhow::anyhow!("{err}"))?;
    Ok(session.status == SessionStatus::Succeeded)
}

/// A local path becomes an absolute path (its checked-out branch the default base).
fn resolve_repo(args: &RunArgs) -> anyhow::Result<(String, String)> {
    let path = std::path::Path::new(&args.repo);
    if path.exists() {
        let path = path.canonicalize()?;
        let branch = match &args.branch {
            Some(branch) => branch.clone(),
            None => git2::Repository::open(&path)
                .ok()
                .and_then(|repo| {
                    repo.head()
                        .ok()
                        .and_then(|h| h.shorthand().ok().map(str::to_owned))
                })
                .context("could not tell the checked-out branch; pass --branch")?,
        };
        return Ok((path.display().to_string(), branch));
    }
    Ok((
        args.repo.clone(),
        args.branch.clone().unwrap_or_else(|| "main".to_owned()),
    ))
}

async fn print_events(store: Arc<dyn crate::store::Store>, session_id: String) {
    let mut after = 0;
    loop {
        if let Ok(events) = store.events_after(&session_id, after, 500).await {
            for event in events {
                after = event.id;
                match event.level {
                    EventLevel::Output => eprintln!("    {}", event.message),
                    _ => eprintln!("[{}] {}", event.step, event.message),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

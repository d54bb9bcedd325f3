//! Step 3: stack traces and `file:line` references from the issue and the failing output,
//! then BM25 over the tracked files: a short list of files, each with why it was chosen.

use crate::agent::localize::{LocalizeInput, localize};
use crate::agent::pipeline::{Progress, Stop};
use crate::github::messages::PipelineStep;
use crate::session::EventLevel;

use super::SessionContext;

/// How many files the patch prompt considers.
const FILES: usize = 8;

pub async fn run(ctx: &mut SessionContext, progress: &mut Progress) -> Result<(), Stop> {
    progress.start(PipelineStep::Localise).await;
    let (dir, issue, failure) = (
        ctx.work_dir.clone(),
        ctx.description.clone(),
        ctx.failing_output.clone(),
    );
    let candidates = tokio::task::spawn_blocking(move || {
        localize(
            &dir,
            &LocalizeInput {
                issue_text: &issue,
                failure_output: Some(&failure),
                limit: FILES,
            },
        )
    })
    .await
    .map_err(|err| Stop::Transient(format!("localise task failed: {err}")))?
    .map_err(|err| {
        Stop::failed(
            format!("could not search the repository: {err:#}"),
            "Comment `/patchpilot retry`; if it persists, report it.",
        )
    })?;
    for candidate in &candidates {
        progress
            .log(
                "localise",
                EventLevel::Info,
                &format!("{} — {}", candidate.path, candidate.reasons.join("; ")),
            )
            .await;
    }
    let message = if candidates.is_empty() {
        "no file stood out; the model will work from the description".to_owned()
    } else {
        format!(
            "{} candidate files, top: {}",
            candidates.len(),
            candidates[0].path
        )
    };
    ctx.candidates = candidates;
    progress.done(PipelineStep::Localise, &message).await;
    Ok(())
}

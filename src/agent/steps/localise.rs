//! Step 3: stack traces, `file:line` references, quoted messages, flags and names from the
//! issue and the failing output, then BM25 over the tracked files, implementation files
//! in the repository's own languages first: a short list of files, each with its kind and
//! why it was chosen.

use crate::agent::localize::{
    Candidate, IndexCache, IndexUse, LocalizeInput, PendingIndex, localize_deferring_index,
};
use crate::agent::progress::Progress;
use crate::report::PipelineStep;
use crate::store::EventLevel;

use super::{Cloned, Prepared, Reproduced, StepEnv, Stop};

/// The files most likely to hold the bug, best first.
#[derive(Clone, Debug, Default)]
pub struct Localised {
    pub candidates: Vec<Candidate>,
}

/// How many files the patch prompt considers.
const FILES: usize = 8;

pub async fn run(
    env: &StepEnv,
    progress: &mut Progress,
    prepared: &Prepared,
    cloned: &Cloned,
    reproduced: &Reproduced,
) -> Result<Localised, Stop> {
    progress.start(PipelineStep::Localise).await;
    let (dir, issue, failure, commit) = (
        env.work_dir.clone(),
        prepared.description.clone(),
        reproduced.failing_output.clone(),
        cloned.base_sha.clone(),
    );
    // The index of each commit lives next to the repository's git mirror.
    let cache = IndexCache::new(
        env.deps
            .repo_cache
            .mirror_path(&env.session.repo_url)
            .with_extension("localize"),
    );
    let (localized, pending) = tokio::task::spawn_blocking(move || {
        localize_deferring_index(
            &dir,
            &LocalizeInput {
                issue_text: &issue,
                failure_output: Some(&failure),
                limit: FILES,
            },
            &cache,
            &commit,
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
    progress
        .log(
            "localise",
            EventLevel::Info,
            &format!(
                "{}; read {} files",
                localized.index.describe(),
                localized.files_read
            ),
        )
        .await;
    if let Some(pending) = pending {
        build_in_background(pending);
    }
    let candidates = localized.candidates;
    for candidate in &candidates {
        progress
            .log("localise", EventLevel::Info, &candidate_line(candidate))
            .await;
    }
    let message = if candidates.is_empty() {
        "no file stood out; the model will work from the description".to_owned()
    } else {
        format!(
            "{} candidate files, top: {} ({})",
            candidates.len(),
            candidates[0].path,
            candidates[0].kind
        )
    };
    progress.done(PipelineStep::Localise, &message).await;
    Ok(Localised { candidates })
}

/// Builds and stores the commit's index off the step's time: the next steps wait on the
/// model, and a later session on the same commit reuses the index. Nothing waits for it; a
/// failure only means the next localisation scans again.
fn build_in_background(pending: PendingIndex) {
    tokio::task::spawn_blocking(move || match pending.build() {
        IndexUse::Built | IndexUse::Rebuilt(_) => tracing::debug!("localisation index stored"),
        other => tracing::info!(index = %other.describe(), "localisation index not stored"),
    });
}

/// One event-log line per candidate: path, kind, then the reasons.
fn candidate_line(c: &Candidate) -> String {
    format!("{} ({}) — {}", c.path, c.kind, c.reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_lines_show_kind_and_reasons() {
        let c = Candidate {
            path: "src/options.go".into(),
            kind: "implementation".into(),
            score: 2.0,
            reasons: vec![
                "contains the flag `--height` from the issue (line 6)".into(),
                "implementation in Go, a main language of this repository".into(),
            ],
            lines: vec![6],
        };
        assert_eq!(
            candidate_line(&c),
            "src/options.go (implementation) — contains the flag `--height` from the issue (line 6); implementation in Go, a main language of this repository"
        );
    }
}

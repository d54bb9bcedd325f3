//! Steps 5 and 6: ask the model for edits, apply them inside the work tree, verify with the
//! repro command (and the repository's test command). A failed verification, an edit that
//! does not apply, or a reply without edits goes back to the model, up to `max_attempts`.
//! Between attempts the edited files are restored, so each reply is applied to the original.

use crate::agent::edits::{AppliedFile, EditPolicy, apply_edits, parse_edits};
use crate::agent::git;
use crate::agent::progress::Progress;
use crate::agent::prompt::{
    AttemptFeedback, BYTES_PER_TOKEN, PatchPromptInput, PreviousAttempt, PromptFile, PromptFit,
    build_fitting_request, request_bytes,
};
use crate::llm::{BudgetedModel, Model};
use crate::report::PipelineStep;
use crate::store::EventLevel;
use crate::store::SessionPatch;

use super::{Cloned, Localised, Prepared, Reproduced, SimilarFixes, StepEnv, Stop};

/// Bytes of a localised file read for the prompt (the prompt budget trims further).
const MAX_FILE_READ: u64 = 256 * 1024;

/// What the patch step reads: everything the earlier steps produced.
pub struct PatchInput<'a> {
    pub prepared: &'a Prepared,
    pub cloned: &'a Cloned,
    pub reproduced: &'a Reproduced,
    pub localised: &'a Localised,
    pub similar: &'a SimilarFixes,
}

/// Edits applied to the work tree (PatchPilot's own record of the bytes it wrote).
#[derive(Clone, Debug, Default)]
pub struct Edited {
    /// What each edit read and wrote: publishing commits these bytes and checks the work
    /// tree still holds them.
    pub applied: Vec<AppliedFile>,
    pub changed_files: Vec<String>,
    pub diff: String,
}

/// A fix: verified, or (with `draft: true`, out of attempts) the last attempt re-applied.
#[derive(Clone, Debug)]
pub struct Patched {
    pub edited: Edited,
    /// The model's explanation of the change.
    pub summary: String,
    /// Output of the verification runs (passing, unless `unverified`).
    pub output_after: String,
    pub model_name: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Why the change is not verified, when it is the last attempt kept for a draft.
    pub unverified: Option<Stop>,
}

/// The model's running token count, recorded as it grows.
struct Usage {
    model_name: String,
    input_tokens: u64,
    output_tokens: u64,
}

pub async fn run(
    env: &StepEnv,
    progress: &mut Progress,
    given: &PatchInput<'_>,
) -> Result<Patched, Stop> {
    progress.start(PipelineStep::Patch).await;
    let prepared = given.prepared;
    let config = &prepared.config;
    let Some(model) = env.deps.model.clone() else {
        return Err(Stop::failed(
            "no language model is configured on this PatchPilot server",
            "Ask the operator to set ANTHROPIC_API_KEY or OPENAI_API_KEY / OPENAI_BASE_URL (and PATCHPILOT_MODEL).",
        ));
    };
    // A repository may ask for another model of the operator's provider; the session budget
    // applies all the same.
    let model = match config.model.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => model.with_model(name),
        _ => model,
    };
    let model = BudgetedModel::new(model, env.deps.budget);
    let mut usage = Usage {
        model_name: model.name(),
        input_tokens: 0,
        output_tokens: 0,
    };
    let generation = model.generation();
    let fit = PromptFit::new(model.context_tokens().await, generation.max_output_tokens);
    log_fit(progress, &fit, generation.max_output_tokens).await;
    let mut input = PatchPromptInput {
        title: prepared.title.clone(),
        description: prepared.description.clone(),
        repro_command: prepared.repro.clone(),
        failing_output: given.reproduced.failing_output.clone(),
        files: prompt_files(env, given.localised),
        similar_fixes: given.similar.fixes.clone(),
        instructions: prepared.instructions.clone(),
        previous_attempts: Vec::new(),
    };
    let policy = EditPolicy {
        protected_paths: config.protected_paths.clone(),
        ..EditPolicy::default()
    };
    let base_sha = &given.cloned.base_sha;
    let attempts = config.max_attempts.max(1);
    let mut last_output = String::new();
    let mut last_unverified_reply = None;
    let mut last_diff = String::new();
    for attempt in 1..=attempts {
        env.check_cancel()?;
        env.record(SessionPatch {
            attempt_count: Some(i64::from(attempt)),
            ..SessionPatch::default()
        })
        .await;
        progress
            .log(
                "patch",
                EventLevel::Info,
                &format!(
                    "attempt {attempt} of {attempts}: asking {}",
                    usage.model_name
                ),
            )
            .await;
        let request = build_fitting_request(&input, &fit, generation.temperature);
        if let Some(limit) = fit
            .max_prompt_bytes
            .filter(|&l| request_bytes(&request) > l)
        {
            progress
                .log(
                    "patch",
                    EventLevel::Warn,
                    &format!(
                        "even the smallest prompt ({} bytes) is larger than the {limit} bytes the model's context window leaves; raise PATCHPILOT_MODEL_CONTEXT_TOKENS or use a model with a larger window",
                        request_bytes(&request)
                    ),
                )
                .await;
        }
        let response = tokio::select! {
            response = model.complete(&request) => response,
            () = env.cancel.cancelled() => return Err(Stop::Cancelled),
        }
        .map_err(|err| Stop::failed(format!("the model call failed: {err}"), "Comment `/patchpilot retry` later; if it keeps failing, ask the operator to check the model settings."))?;
        record_usage(
            env,
            &mut usage,
            response.usage.input_tokens,
            response.usage.output_tokens,
        )
        .await;
        let reply = response.text;
        let (edited, verdict) =
            try_reply(env, progress, prepared, base_sha, &reply, &policy).await?;
        if !edited.applied.is_empty() {
            last_diff = edited.diff.clone();
        }
        let feedback = match verdict {
            Ok(output_after) => {
                progress
                    .done(
                        PipelineStep::Verify,
                        &format!("verified on attempt {attempt}"),
                    )
                    .await;
                return Ok(Patched {
                    edited,
                    summary: summary_of(&reply),
                    output_after,
                    model_name: usage.model_name,
                    input_tokens: usage.input_tokens,
                    output_tokens: usage.output_tokens,
                    unverified: None,
                });
            }
            Err(feedback) => feedback,
        };
        if let AttemptFeedback::StillFailing { output, .. } = &feedback {
            last_output = output.clone();
            last_unverified_reply = Some(reply.clone());
        }
        progress
            .log("patch", EventLevel::Warn, &feedback_summary(&feedback))
            .await;
        restore(env, base_sha, &edited).await?;
        input
            .previous_attempts
            .push(PreviousAttempt { reply, feedback });
    }
    env.record(SessionPatch {
        patch_diff: Some(last_diff),
        ..SessionPatch::default()
    })
    .await;
    progress.output_after = (!last_output.is_empty()).then_some(last_output.clone());
    let stop = Stop::failed(
        format!(
            "no verified fix after {attempts} attempts; the last diff and output are on the session page"
        ),
        "Add detail to the issue (where it goes wrong, expected behaviour), then comment `/patchpilot retry`, or raise `max_attempts`.",
    );
    // Out of attempts: with `draft: true` the last attempt still becomes a draft PR.
    if config.draft
        && let Some(reply) = last_unverified_reply
        && let Some(edited) = reapply(env, base_sha, &reply, &policy).await
    {
        return Ok(Patched {
            edited,
            summary: summary_of(&reply),
            output_after: last_output,
            model_name: usage.model_name,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            unverified: Some(stop),
        });
    }
    Err(stop)
}

/// Says how the prompt is sized, when the model's context window shapes it.
async fn log_fit(progress: &mut Progress, fit: &PromptFit, configured_output: u32) {
    let Some(bytes) = fit.max_prompt_bytes else {
        return;
    };
    let mut line = format!(
        "prompt limited to {bytes} bytes (about {} tokens) to fit the model's context window",
        bytes / BYTES_PER_TOKEN
    );
    if fit.max_tokens < configured_output {
        line.push_str(&format!(
            "; replies limited to {} tokens (half the window) instead of {configured_output}",
            fit.max_tokens
        ));
    }
    progress.log("patch", EventLevel::Info, &line).await;
}

/// Applies one reply and verifies it: what it edited, and `Ok(output)` when verified or
/// `Err(feedback)` for "tell the model and retry".
async fn try_reply(
    env: &StepEnv,
    progress: &mut Progress,
    prepared: &Prepared,
    base_sha: &str,
    reply: &str,
    policy: &EditPolicy,
) -> Result<(Edited, Result<String, AttemptFeedback>), Stop> {
    let nothing = Edited::default();
    let edits = match parse_edits(reply) {
        Ok(edits) if !edits.is_empty() => edits,
        Ok(_) => return Ok((nothing, Err(AttemptFeedback::NoEdits))),
        Err(err) => {
            let error = err.to_string();
            return Ok((nothing, Err(AttemptFeedback::EditError { error })));
        }
    };
    let (dir, policy) = (env.work_dir.clone(), policy.clone());
    let applied = tokio::task::spawn_blocking(move || apply_edits(&dir, &edits, &policy))
        .await
        .map_err(|err| Stop::Transient(format!("edit task failed: {err}")))?;
    let applied = match applied {
        Ok(applied) => applied,
        Err(err) => {
            progress
                .log("patch", EventLevel::Warn, &format!("edit refused: {err}"))
                .await;
            let error = err.to_string();
            return Ok((nothing, Err(AttemptFeedback::EditError { error })));
        }
    };
    let edited = edited_from(env, base_sha, applied.files, applied.changed_files).await;
    progress
        .done(
            PipelineStep::Patch,
            &format!("edited {}", edited.changed_files.join(", ")),
        )
        .await;
    progress.start(PipelineStep::Verify).await;
    let config = &prepared.config;
    let mut commands = vec![prepared.repro.clone()];
    commands.extend(config.test_command.clone().filter(|t| *t != prepared.repro));
    let mut outputs = String::new();
    for command in commands {
        let outcome = env
            .sandboxed(progress, config, "verify", &command, false)
            .await?;
        if let Some(failure) = crate::sandbox::environment::environment_failure(&outcome) {
            return Err(super::reproduce::could_not_run(
                &command, &failure, &outcome,
            ));
        }
        outputs.push_str(&outcome.output.text());
        if !outcome.success() {
            progress.output_after = Some(outputs.clone());
            let diff = edited.diff.clone();
            let feedback = AttemptFeedback::StillFailing {
                diff,
                output: outputs,
            };
            return Ok((edited, Err(feedback)));
        }
    }
    progress.output_after = Some(outputs.clone());
    Ok((edited, Ok(outputs)))
}

/// Applies a reply that applied before but failed verification again (for a draft PR);
/// `None` when it no longer applies.
async fn reapply(
    env: &StepEnv,
    base_sha: &str,
    reply: &str,
    policy: &EditPolicy,
) -> Option<Edited> {
    let edits = parse_edits(reply).ok()?;
    let (dir, policy) = (env.work_dir.clone(), policy.clone());
    let applied = tokio::task::spawn_blocking(move || apply_edits(&dir, &edits, &policy))
        .await
        .ok()?
        .ok()?;
    Some(edited_from(env, base_sha, applied.files, applied.changed_files).await)
}

/// The record of applied edits, with their diff against the base commit.
async fn edited_from(
    env: &StepEnv,
    base_sha: &str,
    applied: Vec<AppliedFile>,
    changed_files: Vec<String>,
) -> Edited {
    let mut edited = Edited {
        applied,
        changed_files,
        diff: String::new(),
    };
    edited.diff = diff_of(env, base_sha, &edited).await;
    edited
}

/// The localised files with their content, for the prompt.
fn prompt_files(env: &StepEnv, localised: &Localised) -> Vec<PromptFile> {
    localised
        .candidates
        .iter()
        .filter_map(|candidate| {
            let path = env.work_dir.join(&candidate.path);
            let meta = std::fs::symlink_metadata(&path).ok()?;
            if !meta.is_file() || meta.len() > MAX_FILE_READ {
                return None;
            }
            let content = std::fs::read_to_string(&path).ok()?;
            Some(PromptFile {
                path: candidate.path.clone(),
                reason: candidate.reasons.join("; "),
                content,
                lines: candidate.lines.clone(),
            })
        })
        .collect()
}

/// The diff of what the edits wrote (PatchPilot's own bytes, not the work tree).
async fn diff_of(env: &StepEnv, base_sha: &str, edited: &Edited) -> String {
    let (git_dir, base, changes) = (env.git_dir.clone(), base_sha.to_owned(), edited.changes());
    tokio::task::spawn_blocking(move || git::diff(&git_dir, &base, &changes))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

impl Edited {
    /// The applied edits as the content to commit.
    pub fn changes(&self) -> Vec<git::FileChange> {
        self.applied
            .iter()
            .map(|file| git::FileChange {
                path: file.path.clone(),
                content: file.content.clone().into_bytes(),
            })
            .collect()
    }
}

/// Puts the edited files back as they were at the base commit, never through a link: a
/// sandboxed command that swapped an edited path for one ends the session.
async fn restore(env: &StepEnv, base_sha: &str, edited: &Edited) -> Result<(), Stop> {
    let (git_dir, base, dir, files) = (
        env.git_dir.clone(),
        base_sha.to_owned(),
        env.work_dir.clone(),
        edited.changed_files.clone(),
    );
    tokio::task::spawn_blocking(move || git::restore_paths(&git_dir, &base, &dir, &files))
        .await
        .map_err(|err| Stop::Transient(format!("restore task failed: {err}")))?
        .map_err(super::publish::git_stop)
}

async fn record_usage(env: &StepEnv, usage: &mut Usage, input: u64, output: u64) {
    usage.input_tokens += input;
    usage.output_tokens += output;
    env.record(SessionPatch {
        add_input_tokens: Some(i64::try_from(input).unwrap_or(i64::MAX)),
        add_output_tokens: Some(i64::try_from(output).unwrap_or(i64::MAX)),
        ..SessionPatch::default()
    })
    .await;
}

fn feedback_summary(feedback: &AttemptFeedback) -> String {
    match feedback {
        AttemptFeedback::StillFailing { .. } => {
            "the reproduction command still fails with these edits".to_owned()
        }
        AttemptFeedback::EditError { error } => format!("the edits could not be applied: {error}"),
        AttemptFeedback::NoEdits => "the reply contained no edits".to_owned(),
    }
}

/// The model's explanation: its text before the first edit, trimmed.
fn summary_of(reply: &str) -> String {
    let cut = ["<<<<<<< SEARCH", "```"]
        .iter()
        .filter_map(|marker| reply.find(marker))
        .min()
        .unwrap_or(reply.len());
    let text = reply[..cut].trim();
    // Drop a trailing path line that introduces the first edit block.
    let text = text
        .rsplit_once('\n')
        .map_or(text, |(head, last)| {
            if last.contains('/') || last.contains('.') {
                head
            } else {
                text
            }
        })
        .trim();
    let text: String = text.chars().take(2_000).collect();
    if text.is_empty() {
        "PatchPilot's fix, verified by the reproduction command.".to_owned()
    } else {
        text
    }
}
